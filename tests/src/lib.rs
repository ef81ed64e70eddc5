//! Helpers of the parity suite: the firmware's input formats, running it under QEMU, parsing
//! its per-window output, and the host-side reference computed by the same avm-core.

use anyhow::{Context, Result, bail, ensure};
use avm_core::Detector;
use avm_core::wire::{AlertLine, Header, SampleFormat, WindowLine};
use avm_trainer::formats::contract::Contract;
use avm_trainer::stages::extract;
use avm_trainer::stages::sync::Synced;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Vibration channels the firmware example is built for.
pub const CH: usize = 2;

/// The firmware example's directory.
pub fn firmware_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware-example")
}

/// Per-sample firmware inputs: `vib[i][c]` (g), `rpm[i][c]` (the channel's shaft speed) and
/// the phase code of sample `i` ([`avm_core::PHASE_UNKNOWN`] when not known).
#[derive(Clone, Debug, PartialEq)]
pub struct Samples {
    /// Vibration, g.
    pub vib: Vec<[f32; CH]>,
    /// Shaft speed of each channel's reference, rpm.
    pub rpm: Vec<[f32; CH]>,
    /// Phase code per sample.
    pub phase: Vec<u8>,
}

impl Samples {
    /// The samples the trainer feeds the core for a synchronised recording.
    pub fn from_synced(s: &Synced) -> Result<Samples> {
        ensure!(s.vib.len() == CH, "{} vibration channels; the firmware example has {CH}", s.vib.len());
        let n = s.len();
        Ok(Samples {
            vib: (0..n).map(|i| std::array::from_fn(|c| s.vib[c][i])).collect(),
            rpm: (0..n).map(|i| std::array::from_fn(|c| s.speed[s.speed_ref[c]][i])).collect(),
            phase: s.phase.clone(),
        })
    }

    /// `AVMI`: the host-file input format ([`avm_core::wire`], the firmware's own codec).
    pub fn to_avmi(&self) -> Vec<u8> {
        self.encode(Header {
            format: SampleFormat::F32,
            channels: CH as u16,
            samples: self.vib.len() as u32,
            vib_lsb_g: 0.0,
            phase: true,
        })
    }

    fn encode(&self, h: Header) -> Vec<u8> {
        let mut out = vec![0u8; h.file_bytes()];
        let at = h.encode(&mut out);
        for (i, (v, r)) in self.vib.iter().zip(&self.rpm).enumerate() {
            let sample = &mut out[at + i * h.sample_bytes()..at + (i + 1) * h.sample_bytes()];
            for c in 0..CH {
                h.encode_sample(v[c], r[c], sample, c);
            }
            h.encode_phase(self.phase.get(i).copied().unwrap_or(avm_core::PHASE_UNKNOWN), sample);
        }
        out
    }

    /// `AVMQ`: the embedded 16-bit format, and the samples it decodes to (what the firmware
    /// sees). Vibration is quantised with `lsb_g` per count, speed to whole rpm.
    pub fn to_avmq(&self, lsb_g: f32) -> (Vec<u8>, Samples) {
        let h = Header {
            format: SampleFormat::Q16,
            channels: CH as u16,
            samples: self.vib.len() as u32,
            vib_lsb_g: lsb_g,
            phase: true,
        };
        let bytes = self.encode(h);
        let decoded = Samples::decode(&bytes, SampleFormat::Q16).expect("just encoded");
        (bytes, decoded)
    }

    /// Decodes an `AVMQ` segment with the firmware's codec.
    pub fn from_avmq(b: &[u8]) -> Result<Samples> {
        Samples::decode(b, SampleFormat::Q16)
    }

    fn decode(b: &[u8], format: SampleFormat) -> Result<Samples> {
        let h = Header::parse(b, format).map_err(|e| anyhow::anyhow!("not an {format:?} file: {e}"))?;
        ensure!(usize::from(h.channels) == CH, "{} channels; the firmware example has {CH}", h.channels);
        h.check_len(b.len()).map_err(|e| anyhow::anyhow!("{e}"))?;
        let size = h.sample_bytes();
        let mut s = Samples {
            vib: Vec::with_capacity(h.samples as usize),
            rpm: Vec::with_capacity(h.samples as usize),
            phase: Vec::with_capacity(h.samples as usize),
        };
        for sample in b[format.header_bytes()..].chunks_exact(size) {
            let mut v = [0.0; CH];
            let mut r = [0.0; CH];
            for c in 0..CH {
                (v[c], r[c]) = h.decode(sample, c);
            }
            s.vib.push(v);
            s.rpm.push(r);
            s.phase.push(h.decode_phase(sample));
        }
        Ok(s)
    }

    /// Samples `[start, start + n)`.
    pub fn slice(&self, start: usize, n: usize) -> Samples {
        Samples {
            vib: self.vib[start..start + n].to_vec(),
            rpm: self.rpm[start..start + n].to_vec(),
            phase: self.phase[start..start + n].to_vec(),
        }
    }
}

/// Reads a recording and synchronises it like the trainer does.
pub fn load_recording(path: &Path, contract: &Contract) -> Result<(Synced, Samples)> {
    let rec = avm_trainer::formats::recording::read(path)?;
    let s = avm_trainer::stages::sync::synchronise(&rec, contract)?;
    let samples = Samples::from_synced(&s)?;
    Ok((s, samples))
}

/// One window as reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowBits {
    /// Window index.
    pub index: u32,
    /// Valid.
    pub valid: bool,
    /// Rates of change valid.
    pub roc_valid: bool,
    /// Phase code.
    pub phase: u8,
    /// Judged (has a verdict).
    pub judged: bool,
    /// Alarm.
    pub alarm: bool,
    /// Score bits.
    pub score: u32,
    /// Feature bits.
    pub features: Vec<u32>,
}

/// What a run reports: every window, and the alert events.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Report {
    /// Windows, in order.
    pub windows: Vec<WindowBits>,
    /// Alert events, in order.
    pub alerts: Vec<avm_core::AlertEvent>,
}

/// The host reference: avm-core's extractor (host build, the trainer's FFT capacity
/// [`extract::FFT_MAX`]) fed in blocks with the phase tally ahead of it, the bundle's detector
/// by phase code and its alert policy.
pub fn host_reference(samples: &Samples, bundle: &[u8]) -> Result<Report> {
    let det = Detector::parse(bundle).map_err(|e| anyhow::anyhow!("{e}"))?;
    let cfg = det.config();
    let mut fx = extract::new_core::<CH>(cfg).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut tally = avm_core::PhaseTally::new(&cfg);
    let mut alerter = avm_core::Alerter::new(det.alert_policy()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut out = Report::default();
    let mut err = None;
    let mut on_frame = |f: avm_core::FeatureFrame<CH>, tally: &avm_core::PhaseTally, out: &mut Report| {
        let r = (|| -> Result<()> {
            let code = tally.majority(f.window_index).map_err(|e| anyhow::anyhow!("{e}"))?;
            let v = det.assess_in_phase(&f, code).map_err(|e| anyhow::anyhow!("{e}"))?;
            out.windows.push(WindowBits {
                index: f.window_index,
                valid: f.valid,
                roc_valid: f.roc_valid,
                phase: v.phase,
                judged: v.judged,
                alarm: v.alarm,
                score: v.score.to_bits(),
                features: f.flat().map(|x| x.to_bits()).collect(),
            });
            out.alerts.extend(alerter.step(&v));
            Ok(())
        })();
        if let Err(e) = r {
            err.get_or_insert(e);
        }
    };
    // The firmware's block size: the tally runs at most one block ahead of the extractor.
    const BLOCK: usize = 256;
    for start in (0..samples.vib.len()).step_by(BLOCK) {
        let end = (start + BLOCK).min(samples.vib.len());
        for &p in &samples.phase[start..end] {
            tally.push(p);
        }
        fx.push_slice(&samples.vib[start..end], &samples.rpm[start..end], |f| on_frame(f, &tally, &mut out))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    if let Some(f) = fx.finish() {
        on_frame(f, &tally, &mut out);
    }
    match err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Parses the firmware's `W` and `A` lines ([`avm_core::wire`], the firmware's own writer).
pub fn parse_report(stdout: &str) -> Result<Report> {
    let mut out = Report::default();
    let mut features = [0u32; avm_core::model::MAX_LAYER_WIDTH];
    for line in stdout.lines() {
        if line.starts_with("W ") {
            let (w, n) =
                WindowLine::parse(line, &mut features).map_err(|e| anyhow::anyhow!("{e}: {line:?}"))?;
            out.windows.push(WindowBits {
                index: w.window_index,
                valid: w.valid,
                roc_valid: w.roc_valid,
                phase: w.phase,
                judged: w.judged,
                alarm: w.alarm,
                score: w.score_bits,
                features: features[..n].to_vec(),
            });
        } else if line.starts_with("A ") {
            out.alerts.push(AlertLine::parse(line).map_err(|e| anyhow::anyhow!("{e}: {line:?}"))?);
        }
    }
    Ok(out)
}

/// Builds the firmware (release) and returns the ELF path.
pub fn build_firmware() -> Result<PathBuf> {
    build(&[], "target")
}

/// Builds the firmware with the `defmt` feature (its own target directory) and returns the ELF.
pub fn build_firmware_defmt() -> Result<PathBuf> {
    build(&["--features", "defmt", "--target-dir", "target/defmt"], "target/defmt")
}

fn build(extra: &[&str], target_dir: &str) -> Result<PathBuf> {
    let dir = firmware_dir();
    let st = Command::new("cargo")
        .args(["build", "--release", "--locked"])
        .args(extra)
        .current_dir(&dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .status()
        .context("running cargo for the firmware")?;
    ensure!(st.success(), "building firmware-example {extra:?} failed");
    Ok(dir.join(target_dir).join("thumbv7em-none-eabihf/release/avm-firmware-example"))
}

/// The C example firmware's directory (`firmware-c/`: avm's C API linked into plain C).
pub fn c_firmware_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware-c")
}

/// Builds the C example firmware with its Makefile (`make`: libavm_capi.a for
/// thumbv7em-none-eabihf by cargo, then arm-none-eabi-gcc) and returns the ELF path; with
/// `host`, the same program for the build machine (`make host`, gcc).
pub fn build_c_firmware(host: bool) -> Result<PathBuf> {
    let dir = c_firmware_dir();
    let out = Command::new("make")
        .arg("-s")
        .args(if host { &["host"][..] } else { &[][..] })
        .current_dir(&dir)
        .env_remove("RUSTFLAGS")
        .output()
        .context(
            "running make in firmware-c (apt-get install make gcc-arm-none-eabi libnewlib-arm-none-eabi)",
        )?;
    ensure!(
        out.status.success(),
        "building the C firmware (host {host}) failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(dir.join(if host { "build/avm-c-host" } else { "build/avm-c-firmware.elf" }))
}

/// Runs the host build of the C example in `workdir`.
pub fn run_c_host(bin: &Path, workdir: &Path) -> Result<Run> {
    let out = Command::new(bin).current_dir(workdir).stdin(std::process::Stdio::null()).output()?;
    Ok(Run { code: out.status.code(), stdout: String::from_utf8_lossy(&out.stdout).into_owned() })
}

/// Runs the defmt firmware in `workdir` and decodes its log with `defmt-print -e <elf>`.
pub fn run_firmware_defmt(elf: &Path, workdir: &Path) -> Result<String> {
    let out = qemu(elf, workdir)?;
    ensure!(out.status.code() == Some(0), "defmt firmware exited with {}", out.status);
    let mut child = Command::new("defmt-print")
        .arg("-e")
        .arg(elf)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context(
            "running defmt-print (cargo install defmt-print --version 1.0.0 --locked; scripts/setup.sh does)",
        )?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().context("defmt-print stdin")?;
        stdin.write_all(&out.stdout)?;
    }
    let dec = child.wait_with_output()?;
    ensure!(dec.status.success(), "defmt-print failed: {}", String::from_utf8_lossy(&dec.stderr));
    Ok(String::from_utf8_lossy(&dec.stdout).into_owned())
}

/// One decoded defmt window line: `(index, score, alarm, features)`.
pub type DefmtWindow = (u32, f32, bool, Vec<f32>);

/// Parses the decoded defmt window lines.
pub fn parse_defmt_windows(text: &str) -> Result<Vec<DefmtWindow>> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| l.contains(" window ") && l.contains(" features [")) {
        let rest = line.split_once(" window ").context("window")?.1;
        let (idx, rest) = rest.split_once(": score ").context("score")?;
        let (score, rest) = rest.split_once(' ').context("score value")?;
        let alarm = rest.split_once(" alarm ").context("alarm")?.1.starts_with("true");
        let feats = rest.split_once('[').context("[")?.1.trim_end().trim_end_matches(']');
        out.push((
            idx.trim().parse()?,
            score.parse()?,
            alarm,
            feats.split(", ").map(str::parse).collect::<Result<_, _>>()?,
        ));
    }
    Ok(out)
}

/// Output of one firmware run.
pub struct Run {
    /// Exit status code.
    pub code: Option<i32>,
    /// Semihosting stdout.
    pub stdout: String,
}

/// The firmware's run under QEMU (the runner of firmware-example/.cargo/config.toml).
fn qemu(elf: &Path, workdir: &Path) -> Result<std::process::Output> {
    Command::new("qemu-system-arm")
        .args(["-cpu", "cortex-m4", "-machine", "mps2-an386", "-nographic"])
        .args(["-semihosting-config", "enable=on,target=native", "-kernel"])
        .arg(elf)
        .current_dir(workdir)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| {
            anyhow::anyhow!("running qemu-system-arm: {e} (install it: apt-get install qemu-system-arm)")
        })
}

/// Runs the firmware under QEMU in `workdir` (where it finds `avm-detector.avmb` and
/// `avm-input.avmi`, if present).
pub fn run_firmware(elf: &Path, workdir: &Path) -> Result<Run> {
    let out = qemu(elf, workdir)?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.code().is_none() {
        bail!("qemu was killed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(Run { code: out.status.code(), stdout })
}

/// Vibration count of the embedded segment: the 50 g full scale over 16 bits.
pub const SEGMENT_LSB_G: f32 = 50.0 / 32767.0;
