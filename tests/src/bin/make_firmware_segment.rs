//! Cuts the flight segment the firmware example embeds (`firmware-example/data/flight_segment.avmq`).
//!
//! usage: make_firmware_segment <contract.yaml> <recording> <start_s> <duration_s> <out.avmq>
//!
//! The recording is read and synchronised exactly as the trainer does; vibration is stored as
//! 16-bit counts of 50 g / 32767 (the sensor's full scale), speeds as whole rpm.

use anyhow::{Context, Result, ensure};
use std::path::PathBuf;

fn main() -> Result<()> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    ensure!(
        a.len() == 5,
        "usage: make_firmware_segment <contract.yaml> <recording> <start_s> <duration_s> <out.avmq>"
    );
    let contract = avm_trainer::formats::contract::Contract::load(&PathBuf::from(&a[0]))?;
    let (s, samples) = avm_parity::load_recording(&PathBuf::from(&a[1]), &contract)?;
    let start_s: f64 = a[2].parse().context("start_s")?;
    let dur_s: f64 = a[3].parse().context("duration_s")?;
    let start = (start_s * s.sample_rate_hz).round() as usize;
    let n = (dur_s * s.sample_rate_hz).round() as usize;
    ensure!(start + n <= samples.vib.len(), "the recording has only {} samples", samples.vib.len());
    let (bytes, _) = samples.slice(start, n).to_avmq(avm_parity::SEGMENT_LSB_G);
    std::fs::write(&a[4], &bytes).with_context(|| format!("writing {}", a[4]))?;
    println!("{}: {n} samples from {} at {start_s} s -> {} ({} bytes)", s.flight_id, a[1], a[4], bytes.len());
    Ok(())
}
