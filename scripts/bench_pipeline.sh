#!/usr/bin/env bash
# Times each pipeline stage on the default simulated fleet (wall time and peak memory, from
# GNU time) with the release build. The figures in README come from this script.
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-configs/engine_vibration_config.yaml}
cargo build --release --locked -p avm-trainer >/dev/null
for stage in simulate preprocess featurize train evaluate; do
  /usr/bin/time -f "$stage: %e s wall, %M KB peak RSS" target/release/avm "$stage" --config "$config" >/dev/null
done
