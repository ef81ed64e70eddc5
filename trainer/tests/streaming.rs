//! Recordings are read, validated, synchronised and featurised in chunks (bounded memory for
//! long flights). The chunk size must change nothing: not one feature bit, not one word of a
//! contract violation. Chunks of 1 000, 4 097 and 65 536 rows are compared with the recording
//! taken whole, in Parquet and CSV, on simulated flights with faults, dropouts and spikes, and
//! on broken copies whose faults straddle chunk boundaries.

use avm_trainer::config::{FeatureSettings, extractor_at};
use avm_trainer::formats::contract::Contract;
use avm_trainer::formats::recording::{self, ChannelData, Recording, RecordingStream, Samples};
use avm_trainer::stages::preprocess;
use avm_trainer::stages::simulate::{self, EngineFault, Plan, SensorEvent, SimConfig};
use avm_trainer::stages::validate::{self, RecordingCheck};
use std::path::Path;

const CHUNKS: [usize; 3] = [1_000, 4_097, 65_536];

mod common;

/// One 90-second flight of the small test fleet, no random faults (the tests choose them).
fn sim_cfg() -> SimConfig {
    SimConfig {
        aircraft: 1,
        engines_per_aircraft: 1,
        flights_per_aircraft: 1,
        flight_duration_s: [90.0, 90.0],
        engine_fault_probability: 0.0,
        sensor_event_probability: 0.0,
        subtle_fraction: 0.0,
        flight_profile: Default::default(),
        fault_growth_s: [15.0, 15.0],
        ..common::small_config().simulate.unwrap()
    }
}

fn contract() -> Contract {
    Contract::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/contracts/engine_vibration.yaml"))
        .unwrap()
}

/// The small test config's feature settings.
fn params() -> FeatureSettings {
    common::small_config().features
}

fn simulated(plan: &Plan) -> simulate::Simulated {
    simulate::render(&sim_cfg(), 0, plan)
}

/// The recording's samples with source rows in `range`, per channel.
fn rows_in(rec: &Recording, range: std::ops::Range<u32>) -> Vec<ChannelData> {
    rec.data
        .iter()
        .map(|d| {
            let keep: Vec<usize> = (0..d.rows.len()).filter(|&k| range.contains(&d.rows[k])).collect();
            ChannelData {
                times_s: keep.iter().map(|&k| d.times_s[k]).collect(),
                samples: match &d.samples {
                    Samples::Numeric(v) => Samples::Numeric(keep.iter().map(|&k| v[k]).collect()),
                    Samples::Text(v) => Samples::Text(keep.iter().map(|&k| v[k].clone()).collect()),
                },
                rows: keep.iter().map(|&k| d.rows[k]).collect(),
            }
        })
        .collect()
}

/// The contract's verdict on `rec` fed in chunks of `chunk` rows.
fn violations_chunked(c: &Contract, rec: &Recording, chunk: u32) -> Vec<String> {
    let text = rec.text_channels();
    let mut check = RecordingCheck::new(c, &rec.path, &rec.meta, &text);
    let rows = rec.data.iter().flat_map(|d| d.rows.last().copied()).max().unwrap_or(0) + 1;
    let mut r0 = 0;
    while r0 < rows {
        check.push(&rows_in(rec, r0..(r0 + chunk).min(rows)));
        r0 += chunk;
    }
    check.finish().iter().map(ToString::to_string).collect()
}

/// Rows of the recording: sample `k` of every channel sits in the row of its time.
fn with_rows(mut rec: Recording) -> Recording {
    let mut times: Vec<f64> = rec.data.iter().flat_map(|d| d.times_s.iter().copied()).collect();
    times.sort_by(f64::total_cmp);
    times.dedup();
    for d in &mut rec.data {
        d.rows = d.times_s.iter().map(|t| times.partition_point(|x| x < t) as u32).collect();
    }
    rec
}

/// One channel with floats as bits: times, numeric values, text values, rows.
type ChannelBits = (Vec<u64>, Vec<u32>, Vec<String>, Vec<u32>);

/// Channel data with floats as bits (NaN dropouts compare equal to themselves).
fn bits(data: &[ChannelData]) -> Vec<ChannelBits> {
    data.iter()
        .map(|d| {
            let (num, text) = match &d.samples {
                Samples::Numeric(v) => (v.iter().map(|x| x.to_bits()).collect(), Vec::new()),
                Samples::Text(v) => (Vec::new(), v.clone()),
            };
            (d.times_s.iter().map(|t| t.to_bits()).collect(), num, text, d.rows.clone())
        })
        .collect()
}

#[test]
fn reading_in_chunks_gives_the_same_recording() {
    let sim =
        simulated(&Plan { engine_fault: None, sensor: Some((SensorEvent::Dropout, 0, 30.0, 32.0, 1.0)) });
    let dir = tempfile::tempdir().unwrap();
    for ext in ["parquet", "csv"] {
        let path = dir.path().join(format!("r.{ext}"));
        match ext {
            "parquet" => recording::write_parquet(&sim.recording, &path).unwrap(),
            _ => recording::write_csv(&sim.recording, &path).unwrap(),
        }
        let whole = recording::read(&path).unwrap();
        for chunk in [1, 999, 4_097] {
            let mut s = RecordingStream::open_chunked(&path, chunk).unwrap();
            let mut data: Vec<ChannelData> = Vec::new();
            let mut chunks = 0;
            while let Some(c) = s.next_chunk().unwrap() {
                chunks += 1;
                if data.is_empty() {
                    data = c;
                } else {
                    data.iter_mut().zip(c).for_each(|(d, c)| d.append(c));
                }
            }
            s.finish().unwrap();
            assert!(chunks > 1 || chunk > 100_000, "{ext}: {chunks} chunks of {chunk} rows");
            assert_eq!(bits(&data), bits(&whole.data), "{ext}, chunks of {chunk} rows");
        }
    }
}

/// A simulated flight streamed from memory (`simulate.stream`) gives the chunks that writing it
/// as Parquet and reading it back gives: rows, times and values, bit for bit.
#[test]
fn an_in_memory_recording_streams_as_its_parquet_file_reads() {
    let sim = simulated(&Plan {
        engine_fault: Some((EngineFault::BearingDefect, 40.0, 0.6)),
        sensor: Some((SensorEvent::Dropout, 0, 30.0, 32.0, 1.0)),
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.parquet");
    recording::write_parquet(&sim.recording, &path).unwrap();
    let drain =
        |mut s: RecordingStream| -> (Vec<Vec<ChannelBits>>, avm_trainer::formats::recording::RecordingMeta) {
            let mut chunks = Vec::new();
            while let Some(c) = s.next_chunk().unwrap() {
                chunks.push(bits(&c));
            }
            (chunks, s.finish().unwrap())
        };
    for chunk in [1_000, 4_097] {
        let (file, file_meta) = drain(RecordingStream::open_chunked(&path, chunk).unwrap());
        let (mem, mem_meta) =
            drain(RecordingStream::from_recording(sim.recording.clone(), Path::new("simulated/r"), chunk));
        assert!(file.len() > 10, "{} chunks", file.len());
        assert_eq!(mem, file, "chunks of {chunk} rows");
        assert_eq!(mem_meta.channels, file_meta.channels);
    }
}

#[test]
fn features_and_labels_do_not_depend_on_the_chunk_size() {
    let c = contract();
    let xcfg = extractor_at(&params(), 2048.0).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let plans = [
        Plan { engine_fault: Some((EngineFault::BearingDefect, 40.0, 0.6)), sensor: None },
        Plan { engine_fault: None, sensor: Some((SensorEvent::Spike, 1, 20.0, 60.0, 8.0)) },
        Plan { engine_fault: None, sensor: Some((SensorEvent::Dropout, 0, 45.0, 47.0, 1.0)) },
    ];
    for (i, plan) in plans.iter().enumerate() {
        let sim = simulated(plan);
        for ext in ["parquet", "csv"] {
            let path = dir.path().join(format!("p{i}.{ext}"));
            match ext {
                "parquet" => recording::write_parquet(&sim.recording, &path).unwrap(),
                _ => recording::write_csv(&sim.recording, &path).unwrap(),
            }
            let whole = preprocess::recording_windows(&path, &c, xcfg, &sim.labels, usize::MAX).unwrap();
            assert!(whole.1.len() >= 15, "{} windows", whole.1.len());
            for chunk in CHUNKS {
                let chunked = preprocess::recording_windows(&path, &c, xcfg, &sim.labels, chunk).unwrap();
                assert_eq!(chunked, whole, "plan {i}, {ext}, chunks of {chunk} rows");
            }
        }
    }
}

#[test]
fn violations_do_not_depend_on_the_chunk_size() {
    let c = contract();
    let base = with_rows(simulated(&Plan { engine_fault: None, sensor: None }).recording);
    let vib = base.channel_index("vib_fan").unwrap();
    let edit = |f: &dyn Fn(&mut ChannelData)| {
        let mut r = base.clone();
        f(&mut r.data[vib]);
        r
    };
    let nan_run = |d: &mut ChannelData| {
        // 1 100 NaN (0.54 s; the contract allows 0.5 s) straddling row 65 536 and the
        // boundaries of the smaller chunks, after a short run that is allowed.
        if let Samples::Numeric(v) = &mut d.samples {
            let k = d.rows.iter().position(|&r| r >= 3_990).unwrap();
            v[k..k + 20].iter_mut().for_each(|x| *x = f32::NAN);
            let k = d.rows.iter().position(|&r| r >= 64_600).unwrap();
            v[k..k + 1_100].iter_mut().for_each(|x| *x = f32::NAN);
        }
    };
    let out_of_range = |d: &mut ChannelData| {
        if let Samples::Numeric(v) = &mut d.samples {
            for k in [1_200, 65_540, 70_000] {
                v[k] = 1e6;
            }
        }
    };
    let backwards = |d: &mut ChannelData| {
        let k = d.rows.iter().position(|&r| r >= 65_536).unwrap();
        d.times_s.swap(k - 1, k);
    };
    let off_grid = |d: &mut ChannelData| {
        let k = d.rows.iter().position(|&r| r >= 4_097).unwrap();
        d.times_s[k] += 0.25 / 2048.0;
    };
    let trailing_nan = |d: &mut ChannelData| {
        if let Samples::Numeric(v) = &mut d.samples {
            let n = v.len();
            v[n - 1_500..].iter_mut().for_each(|x| *x = f32::NAN);
        }
    };
    let cases: [(&str, Recording); 6] = [
        ("valid", base.clone()),
        ("nan run", edit(&nan_run)),
        ("out of range", edit(&out_of_range)),
        ("time backwards", edit(&backwards)),
        ("off grid", edit(&off_grid)),
        ("nan at the end", edit(&trailing_nan)),
    ];
    for (name, rec) in &cases {
        let whole: Vec<String> = validate::recording(&c, rec).iter().map(ToString::to_string).collect();
        assert_eq!(whole.is_empty(), *name == "valid", "{name}: {whole:?}");
        for chunk in CHUNKS {
            assert_eq!(violations_chunked(&c, rec, chunk as u32), whole, "{name}, chunks of {chunk} rows");
        }
    }
    // The rule each broken copy breaks, and where.
    let rule = |i: usize| validate::recording(&c, &cases[i].1)[0].rule;
    assert_eq!(
        [rule(1), rule(2), rule(3), rule(4), rule(5)],
        ["channel.gap", "channel.range", "time.monotonic", "channel.grid", "channel.gap"]
    );
    let range = validate::recording(&c, &cases[2].1)[0].detail.clone();
    assert!(range.contains("3 sample(s) in all"), "{range}");
}
