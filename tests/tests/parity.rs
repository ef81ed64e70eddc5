//! The firmware (thumbv7em-none-eabihf, under QEMU), the host core and the trainer compute the
//! same bits on recorded flights: every feature and every score compared with `to_bits`, and
//! the alarm decisions. Needs `qemu-system-arm` and the thumbv7em-none-eabihf target (installed
//! by scripts/setup.sh); it fails, never skips, without them.
//!
//! Snapshot of the firmware's output on its embedded segment: `tests/snapshots/firmware_demo.txt`;
//! `AVM_BLESS=1 cargo test -p avm-parity` rewrites it after an intended change.

use avm_parity::*;
use avm_trainer::config::PipelineConfig;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn elf() -> &'static PathBuf {
    static ELF: OnceLock<PathBuf> = OnceLock::new();
    ELF.get_or_init(|| build_firmware().expect("building the firmware"))
}

fn c_elf() -> &'static PathBuf {
    static ELF: OnceLock<PathBuf> = OnceLock::new();
    ELF.get_or_init(|| build_c_firmware(false).expect("building the C firmware"))
}

fn bundle() -> Vec<u8> {
    std::fs::read(firmware_dir().join("data/detector.avmb")).unwrap()
}

/// A firmware ELF under QEMU on `samples` and `bundle` (host files through semihosting).
fn run_on(elf: &Path, samples: &Samples, bundle: &[u8]) -> Report {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("avm-input.avmi"), samples.to_avmi()).unwrap();
    std::fs::write(dir.path().join("avm-detector.avmb"), bundle).unwrap();
    let run = run_firmware(elf, dir.path()).unwrap();
    assert_eq!(run.code, Some(0), "{} failed:\n{}", elf.display(), run.stdout);
    parse_report(&run.stdout).unwrap()
}

/// The Rust firmware example.
fn firmware_on(samples: &Samples, bundle: &[u8]) -> Report {
    run_on(elf(), samples, bundle)
}

/// The C example firmware (avm's C API) on the same inputs.
fn c_firmware_on(samples: &Samples, bundle: &[u8]) -> Report {
    run_on(c_elf(), samples, bundle)
}

fn assert_same(what: &str, fw: &Report, host: &Report) {
    assert!(!host.windows.is_empty(), "{what}: no windows");
    assert_eq!(fw.windows.len(), host.windows.len(), "{what}: window count");
    for (a, b) in fw.windows.iter().zip(&host.windows) {
        assert_eq!(a, b, "{what}: window {} differs (firmware vs host)", b.index);
    }
    assert_eq!(fw.alerts, host.alerts, "{what}: alert events differ (firmware vs host)");
}

#[test]
fn embedded_segment_matches_host_and_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_firmware(elf(), dir.path()).unwrap();
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    let seg = std::fs::read(firmware_dir().join("data/flight_segment.avmq")).unwrap();
    let host = host_reference(&Samples::from_avmq(&seg).unwrap(), &bundle()).unwrap();
    assert_same("embedded segment", &parse_report(&run.stdout).unwrap(), &host);
    assert!(!host.alerts.is_empty(), "the embedded segment holds a gross fault: it must raise an alert");
    // The stack high-water line varies with code layout only; everything else is snapshotted.
    let text: String =
        run.stdout.lines().filter(|l| !l.contains("stack high-water")).map(|l| format!("{l}\n")).collect();
    let snap = Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots/firmware_demo.txt");
    if std::env::var_os("AVM_BLESS").is_some() {
        std::fs::write(&snap, &text).unwrap();
    }
    let want = std::fs::read_to_string(&snap).expect("snapshot missing: run with AVM_BLESS=1");
    assert_eq!(
        text, want,
        "firmware output changed; if intended, rerun with AVM_BLESS=1 and review the diff"
    );
}

#[test]
fn c_firmware_on_board_and_on_host_matches_the_rust_firmware() {
    // The C example, linked with avm's C API for the Cortex-M4F (under QEMU) and for this
    // machine, streams the embedded segment (16-bit counts through avm_extractor_push_i16, the
    // speed as tachometer updates): the same W and A lines as the Rust firmware's snapshot.
    let want: Vec<String> =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots/firmware_demo.txt"))
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("W ") || l.starts_with("A "))
            .map(str::to_owned)
            .collect();
    assert!(want.len() > 5 && want.iter().any(|l| l.starts_with("A R")));
    let dir = tempfile::tempdir().unwrap();
    let host_bin = build_c_firmware(true).unwrap();
    for (what, run) in [
        ("QEMU", run_firmware(c_elf(), dir.path()).unwrap()),
        ("host", run_c_host(&host_bin, dir.path()).unwrap()),
    ] {
        assert_eq!(run.code, Some(0), "C firmware on {what}:\n{}", run.stdout);
        let got: Vec<&str> =
            run.stdout.lines().filter(|l| l.starts_with("W ") || l.starts_with("A ")).collect();
        assert_eq!(got, want, "C firmware on {what} vs the Rust firmware");
        assert!(run.stdout.contains("1 alerts raised"), "{}", run.stdout);
    }
}

#[test]
fn refuses_corrupted_and_foreign_bundles() {
    let good = bundle();
    let mut corrupt = good.clone();
    corrupt[200] ^= 0x01;
    let mut schema = good.clone();
    schema[6..8].copy_from_slice(&(avm_core::FEATURE_SCHEMA_VERSION + 1).to_le_bytes());
    let body = schema.len() - 4;
    let crc = avm_core::bundle::crc32(&schema[..body]);
    schema[body..].copy_from_slice(&crc.to_le_bytes());
    let foreign = format!("feature schema v{}", avm_core::FEATURE_SCHEMA_VERSION + 1);
    for (b, want) in [(&corrupt, "checksum mismatch"), (&schema, foreign.as_str())] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("avm-detector.avmb"), b).unwrap();
        for elf in [elf(), c_elf()] {
            let run = run_firmware(elf, dir.path()).unwrap();
            assert_eq!(run.code, Some(1), "{}: {}", elf.display(), run.stdout);
            assert!(
                run.stdout.contains("refusing the detector bundle") && run.stdout.contains(want),
                "{}",
                run.stdout
            );
            assert!(!run.stdout.contains("\nW "));
        }
    }
}

#[test]
fn simulated_flights_firmware_host_and_trainer_agree() {
    let tmp = tempfile::tempdir().unwrap();
    // The default config as a typed value (its paths resolved against configs/), with a
    // smaller fleet written under the temporary directory.
    let mut cfg = PipelineConfig::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/engine_vibration_config.yaml"),
    )
    .unwrap();
    cfg.paths.data = tmp.path().join("DATA");
    cfg.paths.models = tmp.path().join("MODELS");
    cfg.paths.registry = tmp.path().join("REGISTRY");
    let sim = cfg.simulate.as_mut().unwrap();
    sim.aircraft = 2;
    sim.flights_per_aircraft = 2;
    sim.engine_fault_probability = 0.7;
    sim.sensor_event_probability = 0.7;
    let split = &mut cfg.split;
    (split.training, split.validation, split.test) = (0.5, 0.25, 0.25);
    cfg.validate().unwrap();
    avm_trainer::stages::simulate::run(cfg.simulate.as_ref().unwrap(), &cfg.paths.raw()).unwrap();
    avm_trainer::stages::preprocess::run(&cfg).unwrap();
    avm_trainer::stages::featurize::run(&cfg).unwrap();
    let mut trainer_rows = Vec::new();
    for split in avm_trainer::stages::featurize::SPLITS {
        trainer_rows.extend(avm_trainer::stages::featurize::load_split(&cfg, split).unwrap().rows);
    }
    let labels = std::fs::read_to_string(cfg.paths.raw_labels()).unwrap();
    let with = |cat: &str| -> String {
        labels
            .lines()
            .find(|l| l.contains(&format!(",{cat},")))
            .expect(cat)
            .split(',')
            .next()
            .unwrap()
            .to_string()
    };
    let contract = cfg.load_contract().unwrap();
    let b = bundle();
    for flight in [with("engine"), with("sensor")] {
        let path = cfg.paths.raw_recordings().join(format!("{flight}.parquet"));
        let (_, samples) = load_recording(&path, &contract).unwrap();
        let host = host_reference(&samples, &b).unwrap();
        let fw = firmware_on(&samples, &b);
        assert_same(&flight, &fw, &host);
        let c = c_firmware_on(&samples, &b);
        assert_same(&format!("{flight} (C firmware)"), &c, &host);
        // The trainer's featurize output for the same recording: the same feature bits, and
        // the same window phase (the trainer's per-hop counts vs the core's tally on board).
        let mut rows: Vec<_> = trainer_rows.iter().filter(|r| r.flight_id == flight).collect();
        rows.sort_by_key(|r| r.window_index);
        assert_eq!(rows.len(), host.windows.len(), "{flight}: trainer windows");
        for (r, h) in rows.iter().zip(&host.windows) {
            let bits: Vec<u32> = r.features.iter().map(|x| x.to_bits()).collect();
            assert_eq!((r.window_index, &bits), (h.index, &h.features), "{flight}: trainer features");
            let code = contract.phases.iter().position(|p| *p == r.phase).map_or(255, |i| i as u8);
            assert_eq!(code, h.phase, "{flight}: window {} phase", r.window_index);
        }
        // `avm score` (the ground station) on the same recording: the same verdicts and alerts.
        let model = avm_trainer::stages::score::Model {
            dir: firmware_dir().join("data"),
            name: "firmware-example".into(),
            version: "embedded".into(),
            bundle: b.clone(),
            contract: contract.clone(),
            units: None,
        };
        let scored =
            avm_trainer::stages::score::score(&model, std::slice::from_ref(&path), None, 60.0).unwrap();
        assert_eq!(scored.windows.len(), fw.windows.len(), "{flight}: avm score windows");
        for (s, f) in scored.windows.iter().zip(&fw.windows) {
            let v = &s.verdict;
            assert_eq!(
                (s.window.window_index, v.score.to_bits(), v.phase, v.judged, v.alarm),
                (f.index, f.score, f.phase, f.judged, f.alarm),
                "{flight}: avm score vs firmware"
            );
        }
        assert_eq!(scored.events[0].1, fw.alerts, "{flight}: avm score's alerts vs the firmware's");
        eprintln!(
            "{flight}: {} windows, {} alarms, {} alert events: firmware = host = trainer = avm score",
            host.windows.len(),
            host.windows.iter().filter(|w| w.alarm).count(),
            host.alerts.len()
        );
    }
}

#[test]
fn real_cwru_recording_firmware_and_host_agree() {
    // CWRU record 109 (inner-race fault, 48 kHz): the drive-end and fan-end accelerometers as
    // the two channels, the motor speed from the file as both speed references.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/cwru-bearing");
    let bytes = std::fs::read(dir.join("48k_drive_end/48k_Drive_End_IR007_0_109.mat"))
        .expect("the CWRU data set must be beside the checkout (../shared/datasets/cwru-bearing)");
    let arrays = avm_trainer::formats::matfile::read(&bytes).unwrap();
    let get = |name: &str| arrays.iter().find(|a| a.name == name).unwrap_or_else(|| panic!("{name}"));
    let (de, fe) = (get("X109_DE_time"), get("X109_FE_time"));
    let rpm = get("X109RPM").data[0] as f32;
    let n = de.data.len().min(fe.data.len());
    let samples = Samples {
        vib: (0..n).map(|i| [de.data[i] as f32, fe.data[i] as f32]).collect(),
        rpm: vec![[rpm, rpm]; n],
        phase: vec![avm_core::PHASE_UNKNOWN; n],
    };
    // A bundle for 48 kHz: 0.128 s windows every 0.064 s (6 144 = 12 x 512 samples), a
    // fixed small network (parity is about bits, not about this model's skill).
    let cfg = avm_core::ExtractorConfig {
        sample_rate_hz: 48_000,
        window_len_samples: 12_288,
        hop_len_samples: 6_144,
        fft_len: 1024,
        order_band_bins: 1,
        max_gap_samples: 8,
        spike_policy: avm_core::SpikePolicy::DEFAULT,
        spike_k_sigma: 6.0,
        full_scale_g: 50.0,
        max_shaft_speed_rpm: 5000.0,
        features: avm_core::FeatureSettings::default()
            .feature_set(48_000, 1024)
            .expect("default set at 48 kHz"),
    };
    let f = 2 * cfg.features.per_channel();
    let w1: Vec<f32> = (0..f * 6).map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.02).collect();
    let w2: Vec<f32> = (0..6 * f).map(|i| ((i * 29 % 19) as f32 - 9.0) * 0.03).collect();
    let layers = [
        avm_core::LayerSpec {
            d_in: f,
            d_out: 6,
            activation: avm_core::Activation::Sigmoid,
            w: &w1,
            b: &[0.1; 6],
        },
        avm_core::LayerSpec {
            d_in: 6,
            d_out: f,
            activation: avm_core::Activation::Linear,
            w: &w2,
            b: &vec![0.0; f],
        },
    ];
    let mean = vec![0.1f32; f];
    let std = vec![1.5f32; f];
    let spec = avm_core::bundle::BundleSpec {
        config: cfg,
        channels: &["vib_de", "vib_fe"],
        mean: &mean,
        std: &std,
        layers: &layers,
        threshold: 5.0,
        phases: &[],
        alert: avm_core::AlertPolicy {
            raise_count: 2,
            raise_window: 3,
            clear_count: 2,
            clear_fraction: 0.9,
            latch: false,
        },
        version: [0, 0, 1],
    };
    let mut b = vec![0u8; avm_core::bundle::encoded_len(&spec).unwrap()];
    avm_core::bundle::encode(&spec, &mut b).unwrap();
    let host = host_reference(&samples, &b).unwrap();
    assert!(host.windows.len() >= 35, "{} windows", host.windows.len());
    assert_same("CWRU 109", &firmware_on(&samples, &b), &host);
    assert_same("CWRU 109 (C firmware)", &c_firmware_on(&samples, &b), &host);
}

#[test]
fn defmt_log_decodes_to_the_same_verdicts() {
    // The logging path real firmware uses: defmt frames over semihosting, decoded on the host
    // with defmt-print. f32 values print in Rust's shortest round-trip form, so they parse back
    // to the same bits.
    let elf = build_firmware_defmt().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = run_firmware_defmt(&elf, dir.path()).unwrap();
    let seg = std::fs::read(firmware_dir().join("data/flight_segment.avmq")).unwrap();
    let host = host_reference(&Samples::from_avmq(&seg).unwrap(), &bundle()).unwrap().windows;
    let got = parse_defmt_windows(&text).unwrap();
    assert_eq!(got.len(), host.len(), "{text}");
    for ((i, score, alarm, feats), h) in got.iter().zip(&host) {
        assert_eq!((*i, score.to_bits(), *alarm), (h.index, h.score, h.alarm), "{text}");
        let bits: Vec<u32> = feats.iter().map(|x| x.to_bits()).collect();
        assert_eq!(bits, h.features);
    }
    assert!(text.contains("avm-firmware: detector v1.0.0"), "{text}");
}
