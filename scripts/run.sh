#!/usr/bin/env bash
# README's run command: the main job, end to end, on the bundled default data set.
#
# Installs what it needs (idempotent: the toolchain, ONNX Runtime's library from PyPI), builds
# `avm` and runs `avm run`: simulate the default fleet if DATA/raw has no recordings
# (deterministic, seed in the config) → preprocess → featurize → train → evaluate → export →
# quality gates → registry. Stages whose inputs did not change are skipped. Exit code 4: a
# quality gate failed (the table says which); nothing was registered.
#
# usage: bash scripts/run.sh [config] [avm run options, e.g. --version 1.1.0 --force]
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-configs/engine_vibration_config.yaml}
shift || true

bash scripts/setup.sh
cargo build --release --locked -p avm-trainer
exec "${CARGO_TARGET_DIR:-target}/release/avm" run --config "$config" "$@"
