//! `avm init <dir>`: a starter pipeline config and data contract for the user's own recordings,
//! written from what the recordings say (channels, units, rates, phases, fault types), with the
//! valid range of every field in a comment beside it, so nobody edits YAML blind.
//!
//! The raw data is expected where the config will look for it: `<data>/raw/recordings/` (as
//! `avm import --out <data>/raw` leaves it) and `<data>/raw/labels.csv`. Channels are told apart
//! by unit: `g` (or `m/s2`, `mm/s`) is vibration, `rpm` speed, `-` (text) the phase. Windows are
//! chosen from the vibration rate and the shortest recording (at most 10 s, at least 4 per
//! recording, a whole number of FFT half-segments) and checked by avm-core before anything is
//! written. Both files are written atomically; existing ones are kept unless `--force`.

use crate::config::{PipelineConfig, extractor_at};
use crate::error::UsageError;
use crate::formats::recording::{self, Samples};
use anyhow::{Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What `avm init` wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Initialised {
    /// The config file.
    pub config: PathBuf,
    /// The contract file.
    pub contract: PathBuf,
    /// Recordings looked at.
    pub recordings: usize,
    /// Vibration channels found.
    pub vibration: Vec<String>,
    /// Window and hop chosen, s.
    pub window_s: f64,
    /// Hop, s.
    pub hop_s: f64,
}

impl std::fmt::Display for Initialised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "wrote {} and {} from {} recording(s): vibration channels {}, windows of {} s every {} s; \
             read the comments, then `avm validate --config {}`",
            self.config.display(),
            self.contract.display(),
            self.recordings,
            self.vibration.join(", "),
            self.window_s,
            self.hop_s,
            self.config.display()
        )
    }
}

/// Per channel, what the recordings show.
#[derive(Default)]
struct Seen {
    unit: String,
    rate_hz: f64,
    text: bool,
    max_abs: f64,
    values: BTreeSet<String>,
}

/// Writes `<dir>/config.yaml` and `<dir>/contract.yaml` for the raw data under `data`
/// (`<data>/raw`), named `name`.
pub fn run(dir: &Path, data: &Path, name: &str, force: bool) -> Result<Initialised> {
    crate::ids::check("name", name).map_err(UsageError)?;
    let config = dir.join("config.yaml");
    let contract_path = dir.join("contract.yaml");
    for p in [&config, &contract_path] {
        if p.exists() && !force {
            anyhow::bail!(UsageError(format!("{} exists: pass --force to replace it", p.display())));
        }
    }
    let recdir = data.join("raw").join("recordings");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&recdir)
        .map_err(|e| {
            UsageError(format!(
                "cannot read {} ({e}): import your recordings first (`avm import --mapping M --out {}`)",
                recdir.display(),
                data.join("raw").display()
            ))
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("parquet") | Some("csv")))
        .collect();
    files.sort();
    anyhow::ensure!(
        !files.is_empty(),
        UsageError(format!("no recordings (*.parquet, *.csv) in {}", recdir.display()))
    );
    // Look at up to 50 recordings, spread over the data set.
    let step = files.len().div_ceil(50);
    let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let (mut shortest_s, mut looked) = (f64::INFINITY, 0);
    for f in files.iter().step_by(step) {
        let rec = recording::read(f)?;
        looked += 1;
        let (a, b) = rec.span_s();
        shortest_s = shortest_s.min(b - a);
        for (m, d) in rec.meta.channels.iter().zip(&rec.data) {
            let s = seen.entry(m.name.clone()).or_insert_with(|| {
                order.push(m.name.clone());
                Seen { unit: m.unit.clone(), rate_hz: m.sample_rate_hz, ..Seen::default() }
            });
            anyhow::ensure!(
                s.unit == m.unit && s.rate_hz == m.sample_rate_hz,
                UsageError(format!(
                    "{}: channel {} is {} at {} Hz here, {} at {} Hz in another recording: one contract cannot hold both",
                    f.display(),
                    m.name,
                    m.unit,
                    m.sample_rate_hz,
                    s.unit,
                    s.rate_hz
                ))
            );
            match &d.samples {
                Samples::Numeric(v) => {
                    s.max_abs =
                        v.iter().filter(|x| x.is_finite()).fold(s.max_abs, |m, x| m.max(f64::from(x.abs())))
                }
                Samples::Text(v) => {
                    s.text = true;
                    s.values.extend(v.iter().filter(|x| !x.is_empty()).cloned());
                }
            }
        }
    }
    let kind = |s: &Seen| {
        if s.text {
            "phase"
        } else if s.unit == "rpm" {
            "speed"
        } else if matches!(s.unit.as_str(), "g" | "m/s2" | "m/s^2" | "mm/s" | "in/s") {
            "vibration"
        } else {
            "other"
        }
    };
    let vibration: Vec<&String> = order.iter().filter(|c| kind(&seen[*c]) == "vibration").collect();
    anyhow::ensure!(
        !vibration.is_empty(),
        UsageError(format!(
            "no vibration channel (unit g, m/s2, mm/s or in/s) among {}: set the units in the import mapping",
            order.join(", ")
        ))
    );
    let fs = seen[vibration[0]].rate_hz;
    for v in &vibration {
        anyhow::ensure!(
            seen[*v].rate_hz == fs,
            UsageError(format!(
                "vibration channels at {} Hz and {fs} Hz: avm needs one vibration rate",
                seen[*v].rate_hz
            ))
        );
    }
    anyhow::ensure!(
        fs.fract() == 0.0,
        UsageError(format!(
            "the vibration rate {fs} Hz is fractional: avm-core's extractor needs a whole number of Hz"
        ))
    );
    let speed = order.iter().find(|c| kind(&seen[*c]) == "speed");
    let phase = order.iter().find(|c| kind(&seen[*c]) == "phase");

    // Windows: at most 10 s and short enough for 4 per recording (window 0.4 x the shortest
    // recording, hop = window / 2); the FFT (Welch segment) about 0.5 s (bins of about 2 Hz,
    // so low shaft orders resolve at any rate: a 30 Hz shaft at 64 kHz gets 16384 points) but
    // no longer than the window, a power of two in avm_core::FFT_LEN_RANGE; the hop a whole
    // number of FFT half-segments.
    let (fft_min, fft_max) = (*avm_core::FFT_LEN_RANGE.start(), avm_core::FFT_LEN_MAX);
    let max_window = (10.0 * fs).min(0.4 * shortest_s * fs).round();
    anyhow::ensure!(
        max_window >= f64::from(fft_min),
        UsageError(format!(
            "the shortest recording ({shortest_s} s) holds fewer than {} samples: too short for \
             windows of at least {fft_min} samples (the shortest FFT)",
            2.5 * f64::from(fft_min)
        ))
    );
    let prev_pow2 = |x: f64| 1u32 << (x.max(1.0).log2().floor() as u32);
    let fft = prev_pow2((fs * 0.5).min(max_window)).clamp(fft_min, fft_max);
    let half = f64::from(fft / 2);
    let hops = ((max_window / 2.0) / half).floor().max(1.0);
    let hop_samples = hops * half;
    let (window_s, hop_s) = (2.0 * hop_samples / fs, hop_samples / fs);
    let mut families = vec!["time", "bands", "shape"];
    if speed.is_some() {
        families.insert(1, "rates");
        families.insert(3, "orders");
        families.push("speed");
    }

    // Labels: fault types and severities from labels.csv.
    let labels_path = data.join("raw").join(crate::layout::LABELS_CSV);
    let labels = if labels_path.is_file() { crate::formats::labels::read(&labels_path)? } else { Vec::new() };
    let mut faults: BTreeMap<String, &str> = BTreeMap::new();
    let mut max_sev = 1.0f64;
    for l in &labels {
        faults.insert(
            l.fault_type.clone(),
            if l.category == crate::formats::contract::FaultCategory::Engine { "engine" } else { "sensor" },
        );
        max_sev = max_sev.max(l.severity);
    }

    let mut c = String::new();
    c.push_str(&format!(
        "# Data contract written by `avm init` from {looked} of the {} recording(s) in {}.\n\
         # Every rule is checked by `avm validate` and `avm preprocess`; the rule names in brackets\n\
         # appear in their errors (README, \"Data contract\").\n\
         name: {name}\nversion: 1\n\
         # [channel.grid] sample k of a channel must sit at start_s + k / rate within this, s (> 0).\n\
         grid_tolerance_s: {}\n\
         # [time.base] speeds and phase may start at most this far from the vibration channels, s (>= 0).\n\
         max_start_offset_s: 1.0\n\
         # [recording.duration] shortest usable recording, s (>= 0); the shortest seen is {shortest_s:.3} s.\n\
         min_duration_s: {}\n\
         # [channel.gap] longest run of missing (NaN) samples in a numeric channel, s (>= 0).\n\
         max_gap_s: 0.5\n\
         # [phase.allowed] the phase names the recordings may use (seen: {}).\n\
         phases: [{}]\n\
         channels:\n",
        files.len(),
        recdir.display(),
        (0.1 / fs).max(1e-9),
        window_s,
        if phase.is_some() { "below" } else { "none, no phase channel" },
        phase.map(|p| seen[p].values.iter().cloned().collect::<Vec<_>>().join(", ")).unwrap_or_default(),
    ));
    for name in &order {
        let s = &seen[name];
        let k = kind(s);
        if k == "other" {
            c.push_str(&format!(
                "  # {name} ({}) is not vibration, speed or phase: not in the contract (avm ignores it)\n",
                s.unit
            ));
            continue;
        }
        c.push_str(&format!(
            "  - name: {name}\n    kind: {k}\n    unit: \"{}\"\n    sample_rate_hz: {}\n",
            s.unit, s.rate_hz
        ));
        match k {
            "vibration" => {
                let fs_g = (s.max_abs * 1.25).max(50.0).ceil();
                c.push_str(&format!(
                    "    # [channel.range] your sensor's full scale (largest |value| seen: {:.3}).\n    valid_range: [-{fs_g}, {fs_g}]\n",
                    s.max_abs
                ));
                if let Some(sp) = speed {
                    c.push_str(&format!("    speed_reference: {sp}\n"));
                }
            }
            "speed" => c.push_str(&format!(
                "    # [channel.range] largest seen: {:.0} rpm.\n    valid_range: [0.0, {}]\n",
                s.max_abs,
                (s.max_abs * 1.5).ceil().max(1.0)
            )),
            _ => {}
        }
        c.push_str("    required: true\n");
    }
    c.push_str("labels:\n  # [label.fault_type] every fault type labels.csv may use: engine (what to detect) or sensor.\n  fault_types:\n");
    if faults.is_empty() {
        c.push_str("    # none in labels.csv yet: add `name: engine` lines\n    bearing_fault: engine\n");
    }
    for (f, cat) in &faults {
        c.push_str(&format!("    {f}: {cat}\n"));
    }
    c.push_str(&format!(
        "  # [label.severity] range of the severity column.\n  severity_range: [0.0, {max_sev}]\n"
    ));

    let data_rel = crate::io::relative_to(dir, data).unwrap_or_else(|_| data.to_path_buf());
    let mut y = String::new();
    y.push_str(&format!(
        "# Pipeline config written by `avm init` (README, \"Your own data\"). Ranges are in comments;\n\
         # `avm validate`, then `avm run --config` this file.\n\
         # name: 1-64 characters from A-Z a-z 0-9 . _ - (the detector's model directory).\n\
         name: {name}\n\
         # Relative paths are relative to this file's directory.\n\
         paths:\n  data: {}            # raw data in <data>/raw; processed, features, labels beside it\n  models: MODELS\n  registry: REGISTRY\n\
         contract: contract.yaml\n\n\
         # avm-core's extractor (core-nostd/README.md defines every feature).\n\
         features:\n\
         \x20 # Windows at {fs} Hz: window_s a whole multiple of hop_s (at most 6 hops), hop_s a whole\n\
         \x20 # multiple of fft_len / 2 samples ({} s); a bad value is refused with the nearest valid one.\n\
         \x20 # (window_samples / hop_samples instead give them in samples.)\n\
         \x20 window_s: {window_s}\n  hop_s: {hop_s}\n\
         \x20 fft_len: {fft}                 # a power of two, {fft_min} to {fft_max} (Welch segment); the firmware builds take at most 1024\n\
         \x20 order_band_bins: 1             # >= 1: least half-width of an order band, FFT bins\n\
         \x20 max_gap_samples: 8             # 0 to window: longest NaN run repaired by interpolation\n\
         \x20 spike_policy: isolated         # off | isolated | k_sigma\n\
         \x20 spike_k_sigma: 3.0             # > 0, for spike_policy k_sigma\n\
         \x20 full_scale_g: {}             # > 0: the sensor's full scale, g (clipping detection)\n\
         \x20 max_shaft_speed_rpm: {}       # > 0: speeds above it are invalid\n\
         \x20 families: [{}]   # time, rates, bands, orders, envelope, shape, speed\n\
         \x20 scale: db                      # db | fraction (band energies)\n\
         \x20 bands: {{count: 16}}             # 1 to 20 log-spaced bands, or edges_hz: [..]\n",
        data_rel.display(),
        half / fs,
        vibration.iter().map(|v| (seen[*v].max_abs * 1.25).max(50.0).ceil()).fold(0.0, f64::max),
        speed.map_or(20_000.0, |s| (seen[s].max_abs * 2.0).ceil().max(1000.0)),
        families.join(", "),
    ));
    if speed.is_some() {
        y.push_str("  orders: [0.5, 1, 2, 3]         # up to 8 shaft orders\n  order_half_width: 0.05         # > 0, orders\n");
    }
    y.push_str(
        "\n# Train / validation / test: fractions of recordings (sum 1), never dividing a group\n\
         # (group_by: flight | engine | aircraft | {attribute: NAME}).\n\
         split:\n  training: 0.6\n  validation: 0.2\n  test: 0.2\n  seed: 7\n  group_by: flight\n\n\
         # The autoencoder (burn): hidden widths 1 to 4096, at most 16 layers.\n\
         train:\n  hidden: [64, 16, 64]\n  activation: relu            # relu | sigmoid | linear\n  learning_rate: 0.001         # > 0\n  lr_schedule: {factor: 0.5, patience: 8, min_learning_rate: 0.00001}\n  batch_size: 64              # 1 to 65536\n  max_epochs: 200             # 1 to 100000\n  patience: 30                # early stopping: epochs without a better validation loss\n  seed: 42\n\n\
         # Threshold: calibrated on validation normal windows to this false-alarm rate, (0, 1).\n\
         evaluate:\n  target_far: 0.05\n  per_phase_thresholds: false\n  min_phase_windows: 20\n  cv_folds: 5                 # 0 (off) or 3 to 20\n\
         CALIBRATION\n\n\
         # Alerts (in the bundle): raise when raise_count of the last raise_window (<= 32) judged\n\
         # windows alarm; clear after clear_count below clear_fraction x threshold.\n\
         alerts:\n  raise_count: 3\n  raise_window: 4\n  clear_count: 4\n  clear_fraction: 0.8\n  latch: false\n  no_verdict_phases: []\n\n\
         tracking:\n  tensorboard_dir: logs/tensorboard\n",
    );

    // Calibration: the tolerance bound (a stated guarantee) needs 45 validation normal windows
    // at FAR 0.05 and confidence 0.9; fewer expected -> the empirical rule, said so.
    let labelled: BTreeSet<&str> = labels.iter().map(|l| l.flight_id.as_str()).collect();
    let normal_recordings = files.len().saturating_sub(labelled.len());
    let per_recording =
        ((shortest_s * fs + 1.0 - 2.0 * hop_samples) / hop_samples + 1.0).floor().max(1.0) as usize;
    let expected = normal_recordings * per_recording / 5;
    let calibration = if expected >= 45 {
        format!(
            "  # About {expected} validation normal windows expected: enough for the tolerance bound (>= 45).\n\
             \x20 # tolerance (a stated guarantee) | conformal | empirical (none)\n\
             \x20 calibration: {{method: tolerance, confidence: 0.9}}"
        )
    } else {
        format!(
            "  # About {expected} validation normal windows expected: too few for the tolerance bound\n\
             \x20 # (45 at FAR 0.05, confidence 0.9) or conformal (19): the empirical rule, which has no\n\
             \x20 # out-of-sample guarantee. Record more healthy data, then switch to tolerance.\n\
             \x20 calibration: {{method: empirical}}"
        )
    };
    let healthy_validation = normal_recordings / 5;
    let calibration = format!(
        "{calibration}\n\
         \x20 # Flight level (optional): every threshold raised until at most this fraction of new\n\
         \x20 # healthy recordings is expected to raise an alert (split conformal over the healthy\n\
         \x20 # validation recordings: it needs 1/fraction - 1 of them; about {healthy_validation} expected here).\n\
         \x20 # flight_calibration: {{target_alerting_fraction: 0.1}}"
    );
    let y = y.replace("CALIBRATION", &calibration);

    // Each file is written to a temporary path beside its destination, loaded back (the
    // contract alone, then the config against it) and only then renamed into place.
    std::fs::create_dir_all(dir)?;
    let c_tmp = crate::io::temp_path(&contract_path);
    std::fs::write(&c_tmp, &c)?;
    let contract = crate::formats::contract::Contract::load(&c_tmp);
    let contract = match contract {
        Ok(k) => k,
        Err(e) => {
            let _ = std::fs::remove_file(&c_tmp);
            return Err(e.context("the contract avm init made does not load (a bug: please report it)"));
        }
    };
    let y_tmp = crate::io::temp_path(&config);
    std::fs::write(
        &y_tmp,
        y.replace(
            "contract: contract.yaml",
            &format!("contract: {}", c_tmp.file_name().unwrap_or_default().to_string_lossy()),
        ),
    )?;
    let checked = PipelineConfig::load(&y_tmp)
        .and_then(|cfg| Ok(extractor_at(&cfg.features, contract.vibration_rate_hz())?));
    let _ = std::fs::remove_file(&y_tmp);
    if let Err(e) = checked {
        let _ = std::fs::remove_file(&c_tmp);
        return Err(e.context("the config avm init made does not load (a bug: please report it)"));
    }
    std::fs::rename(&c_tmp, &contract_path)
        .with_context(|| format!("writing {}", contract_path.display()))?;
    crate::io::write_bytes_atomic(&config, y.as_bytes())?;
    Ok(Initialised {
        config,
        contract: contract_path,
        recordings: looked,
        vibration: vibration.into_iter().cloned().collect(),
        window_s,
        hop_s,
    })
}
