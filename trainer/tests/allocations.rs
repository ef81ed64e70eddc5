//! No per-sample allocation in preprocess's data path (issue 16): a counting global allocator
//! around `preprocess::recording_windows` (read in chunks, checksum, validate, synchronise,
//! avm-core features, window rows) on two recordings that differ only in length. The extra
//! allocations of the longer one must come from its extra chunks and windows, not its samples.
//! (The one test of this binary: the counter is process-wide.)

use avm_trainer::config::PipelineConfig;
use avm_trainer::formats::contract::Contract;
use avm_trainer::formats::recording::{
    ChannelData, ChannelMeta, FORMAT, FORMAT_VERSION, Recording, RecordingMeta, Samples, write_parquet,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `seconds` of one engine in cruise, shaped as the default contract asks.
fn recording(seconds: usize) -> Recording {
    let fs = 2048.0;
    let n = seconds * 2048;
    let ch = |name: &str, unit: &str, rate: f64| ChannelMeta {
        name: name.into(),
        unit: unit.into(),
        sample_rate_hz: rate,
        start_s: 0.0,
    };
    let t: Vec<f64> = (0..n).map(|i| i as f64 / fs).collect();
    let vib = |f: f64, a: f64| -> Vec<f32> {
        t.iter().map(|&t| (a * (2.0 * std::f64::consts::PI * f * t).sin()) as f32).collect()
    };
    let slow = |k: usize| -> Vec<f64> { (0..n).step_by(k).map(|i| i as f64 / fs).collect() };
    let numeric = |times: Vec<f64>, v: Vec<f32>| ChannelData {
        times_s: times,
        samples: Samples::Numeric(v),
        rows: Vec::new(),
    };
    Recording {
        meta: RecordingMeta {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            aircraft_id: "AC99".into(),
            engine_id: "AC99-E1".into(),
            flight_id: format!("AC99-F{seconds}-E1"),
            source: "allocation test".into(),
            channels: vec![
                ch("vib_fan", "g", fs),
                ch("vib_core", "g", fs),
                ch("n1_rpm", "rpm", 16.0),
                ch("n2_rpm", "rpm", 16.0),
                ch("phase", "-", 1.0),
            ],
            content_crc32: None,
            attributes: Default::default(),
        },
        data: vec![
            numeric(t.clone(), vib(80.0, 0.5)),
            numeric(t.clone(), vib(200.0, 0.2)),
            numeric(slow(128), vec![4800.0; n.div_ceil(128)]),
            numeric(slow(128), vec![12_000.0; n.div_ceil(128)]),
            ChannelData {
                times_s: slow(2048),
                samples: Samples::Text(vec!["cruise".into(); n.div_ceil(2048)]),
                rows: Vec::new(),
            },
        ],
        path: PathBuf::new(),
    }
}

#[test]
fn preprocess_allocates_per_chunk_and_window_not_per_sample() {
    let d = tempfile::tempdir().unwrap();
    let cfg = PipelineConfig::load(&repo().join("configs/engine_vibration_config.yaml")).unwrap();
    let contract = Contract::load(&repo().join("configs/contracts/engine_vibration.yaml")).unwrap();
    let xcfg = cfg.extractor_config(&contract).unwrap();
    let mut counts = Vec::new();
    for seconds in [300, 900] {
        let p = d.path().join(format!("r{seconds}.parquet"));
        write_parquet(&recording(seconds), &p).unwrap();
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        let (summary, rows) = avm_trainer::stages::preprocess::recording_windows(
            &p,
            &contract,
            xcfg,
            &[],
            avm_trainer::formats::recording::CHUNK_ROWS,
        )
        .unwrap();
        let n = ALLOCATIONS.load(Ordering::Relaxed) - before;
        assert_eq!(rows.len(), summary.windows);
        counts.push((seconds, n, rows.len()));
    }
    let (s0, a0, _) = counts[0];
    let (s1, a1, w1) = counts[1];
    let extra_samples = ((s1 - s0) * 2048 * 2) as f64; // two vibration channels
    let per_sample = (a1 - a0) as f64 / extra_samples;
    println!(
        "allocations: {s0} s -> {a0}, {s1} s -> {a1} ({w1} windows): {per_sample:.5} per extra channel-sample"
    );
    // Per-sample allocation would be >= 1 here; chunks (65 536 rows) and windows (10 240
    // samples) give a few hundredths at most.
    assert!(per_sample < 0.01, "{per_sample} allocations per channel-sample");
}
