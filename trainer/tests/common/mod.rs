//! What the end-to-end tests share: a small simulated fleet's pipeline config.

use avm_trainer::config::PipelineConfig;
use std::path::Path;

/// A small fleet (12 recordings of 2.5 min), a small autoencoder, no cross-validation, gates
/// that any working model passes. `CONTRACT` is replaced by the contract's path.
pub const SMALL_CONFIG: &str = r#"
name: small
paths: {data: DATA}
contract: CONTRACT
simulate:
  seed: 11
  aircraft: 2
  engines_per_aircraft: 2
  flights_per_aircraft: 3
  flight_duration_s: [150.0, 170.0]
  vibration_rate_hz: 2048.0
  speed_rate_hz: 16.0
  phase_rate_hz: 1.0
  engine_fault_probability: 0.6
  sensor_event_probability: 0.3
  subtle_fraction: 0.3
features:
  window_s: 10.0
  hop_s: 5.0
  fft_len: 1024
  order_band_bins: 1
  max_gap_samples: 8
  spike_k_sigma: 3.0
  full_scale_g: 50.0
  max_shaft_speed_rpm: 20000.0
split: {training: 0.5, validation: 0.25, test: 0.25, seed: 3}
train:
  hidden: [12, 6, 12]
  activation: relu
  learning_rate: 0.003
  batch_size: 32
  max_epochs: 8
  patience: 10
  seed: 5
evaluate:
  target_far: 0.1
  per_phase_thresholds: true
  min_phase_windows: 10
  cv_folds: 0
gates:
  {min_auc: 0.5, min_precision: 0.0, min_recall: 0.0, max_far: 1.0, max_latency_p99_ms: 1000.0,
   min_gross_flights_alerted_in_time: 0.0, min_subtle_flights_alerted: 0.0,
   max_false_alerts_per_100_flight_hours: 1.0e9}
"#;

/// `SMALL_CONFIG` as a typed value (the contract path filled in).
#[allow(dead_code)]
pub fn small_config() -> PipelineConfig {
    let contract = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/contracts/engine_vibration.yaml");
    serde_saphyr::from_str(&SMALL_CONFIG.replace("CONTRACT", &contract.display().to_string())).unwrap()
}

/// Writes the small config, edited as a typed value, as `<dir>/c.yaml`.
#[allow(dead_code)]
pub fn write_small_config(dir: &Path, edit: impl FnOnce(&mut PipelineConfig)) {
    let mut c = small_config();
    edit(&mut c);
    std::fs::write(dir.join("c.yaml"), serde_saphyr::to_string(&c).unwrap()).unwrap();
}

/// Writes `SMALL_CONFIG` with `edit` applied to its text: for the tests of what a user may
/// write (values no typed config would hold, the user's own words in the messages).
#[allow(dead_code)]
pub fn write_small_config_text(dir: &Path, edit: impl FnOnce(String) -> String) {
    let contract = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/contracts/engine_vibration.yaml");
    let text = SMALL_CONFIG.replace("CONTRACT", &contract.display().to_string());
    std::fs::write(dir.join("c.yaml"), edit(text)).unwrap();
}
