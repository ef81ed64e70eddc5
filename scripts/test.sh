#!/usr/bin/env bash
# The whole test suite: formatting, lints, the firmware-target builds, the reference check,
# and every test of the workspace. README's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step line also says how long the previous step took (bash's SECONDS), and the end the
# total: where the test command's time goes, from the log alone.
last=$SECONDS
step() { printf '\n==> (previous step: %d s) %s\n' "$((SECONDS - last))" "$*"; last=$SECONDS; }
trap 'printf "\n==> (last step: %d s) total %d s\n" "$((SECONDS - last))" "$SECONDS"' EXIT

step "set-up: toolchain, targets, Debian and PyPI packages (scripts/setup.sh)"
bash scripts/setup.sh
step "format"
cargo fmt --all -- --check
step "clippy (host, all targets; with and without defmt)"
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy -p avm-core --all-targets --features defmt --locked -- -D warnings
step "avm-core's API documentation builds without a warning (broken links included)"
RUSTDOCFLAGS="-D warnings" cargo doc -p avm-core --no-deps --locked --quiet
step "avm-core for the Cortex-M4F (thumbv7em-none-eabihf), with and without defmt"
cargo build -p avm-core --target thumbv7em-none-eabihf --release --locked
cargo build -p avm-core --target thumbv7em-none-eabihf --release --features defmt --locked
step "avm's C API for the Cortex-M4F (staticlib, firmware profile) and its lints"
cargo rustc -p avm-capi --target thumbv7em-none-eabihf --profile firmware --locked --crate-type staticlib
cargo clippy -p avm-capi --target thumbv7em-none-eabihf --locked -- -D warnings
step "firmware example (thumbv7em-none-eabihf), with and without defmt"
(cd firmware-example && cargo build --release --locked && cargo build --release --locked --features defmt \
  && cargo clippy --release --locked -- -D warnings)
step "real-board example (STM32F407, embassy): builds, links and lints (it runs on a board only)"
(cd firmware-stm32f4 && cargo build --release --locked && cargo clippy --release --locked -- -D warnings)
step "the trainer's modules import each other in no cycle"
python3 scripts/module_cycles.py trainer/src
step "golden files are what the numpy/scipy reference computes"
python3 core-nostd/reference/features_ref.py --check
python3 trainer/tests/golden/metrics_golden.py --check
step "tests (including the QEMU parity suite, tests/, and the fuzz corpus replay)"
cargo test --workspace --locked
step "README's \"Your own data\" walkthrough: CSV exports -> import -> init -> validate -> run -> score"
WALK=$(mktemp -d -t avm-walkthrough.XXXXXX)
AVM="${CARGO_TARGET_DIR:-target}/debug/avm" bash scripts/walkthrough.sh "$WALK"
step "Python package: the abi3 wheel (maturin, dev profile) and its pytest suite against the walkthrough's outputs (notebook API, scikit-learn, Spark local mode)"
rm -rf "${CARGO_TARGET_DIR:-target}/wheels"
maturin build --quiet --locked --profile dev -m python/Cargo.toml -o "${CARGO_TARGET_DIR:-target}/wheels"
python3 -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "${CARGO_TARGET_DIR:-target}"/wheels/avm-*.whl
AVM_WALKTHROUGH="$WALK" python3 -m pytest -q -p no:cacheprovider python/tests
step "bounded fuzzing of every parser of untrusted bytes (10 s per target, fixed seed)"
# `cargo test --workspace` above built the binary with the workspace's features; `cargo run -p
# avm-fuzz` would rebuild the dependency tree with avm-fuzz's own (3-4 min).
"${CARGO_TARGET_DIR:-target}/debug/avm-fuzz" --seconds-per-target 10 --seed 1
