#!/usr/bin/env bash
# README's run command: the main job, end to end, on the bundled default data set.
#
# The default data set is the simulated fleet, generated deterministically from the config's
# seed when DATA/raw does not exist yet. Pass another config as the first argument.
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-configs/engine_vibration_config.yaml}

bash scripts/setup.sh
cargo build --release --locked -p avm-trainer
avm=target/release/avm

data=$(sed -n 's/^ *data: *//p' "$config" | head -n 1)
if [ ! -d "$data/raw/recordings" ]; then
  echo "==> no raw recordings in $data/raw: simulating the default fleet"
  "$avm" simulate --config "$config"
fi
echo "==> validate"
"$avm" validate --config "$config"
for stage in preprocess featurize train evaluate; do
  echo "==> $stage"
  "$avm" "$stage" --config "$config"
done
