#!/usr/bin/env bash
# README's "Your own data" walkthrough, executed: test-cell CSV exports (columns and units avm
# does not use) -> `avm import` with a mapping -> `avm init` -> `avm validate` -> `avm run` ->
# `avm score` on new runs. scripts/test.sh runs it (so README's commands stay true); run it
# yourself with a release build:  AVM=target/release/avm bash scripts/walkthrough.sh [WORK_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
AVM=$(realpath "${AVM:-target/release/avm}")
W=${1:-$(mktemp -d)}
rm -rf "$W" && mkdir -p "$W"
check() { grep -q -- "$1" "$2" || { echo "walkthrough: expected \"$1\" in $2:"; cat "$2"; exit 1; }; }

# 1. The recordings as the lab exported them: 36 runs of 90 s, CSV, m/s^2, a tachometer, ms.
python3 examples/test_cell/make_recordings.py "$W/csv"
# 2. Import with the mapping (examples/test_cell/import.yaml says what each column is).
"$AVM" import --mapping examples/test_cell/import.yaml --out "$W/DATA/raw" "$W/csv/*.csv" | tee "$W/import.txt"
check "imported 36 recordings (12 label intervals)" "$W/import.txt"
# 3. A starter config and contract from the imported recordings (read their comments).
"$AVM" init "$W" --name test_cell
# 4. Check the data, then the whole pipeline: features, training, evaluation, gates, registry.
"$AVM" validate --config "$W/config.yaml"
(cd "$W" && "$AVM" run --config config.yaml) | tee "$W/run.txt"
check "registered test_cell 1.0.0" "$W/run.txt"
# 5. Last night's runs: import them the same way and score them with the registered detector.
python3 examples/test_cell/make_recordings.py "$W/new-csv" --new
"$AVM" import --mapping examples/test_cell/import.yaml --out "$W/new" "$W/new-csv/*.csv"
"$AVM" score --model test_cell@latest --registry "$W/REGISTRY" --labels "$W/new/labels.csv" \
  --out "$W/scores" "$W"/new/recordings/*.parquet | tee "$W/score.txt"
check "fault flights alerted after onset 100 %" "$W/score.txt"
check "false alerts: 0 in" "$W/score.txt"
echo "walkthrough passed in $W (repo $REPO)"
