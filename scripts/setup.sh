#!/usr/bin/env bash
# Installs what avm's builds and tests need, idempotently. Safe to run again.
# - the pinned Rust toolchain with the Cortex-M4F target, rustfmt and clippy
# - numpy/scipy (the float64 reference the core is tested against)
set -euo pipefail
cd "$(dirname "$0")/.."

toolchain=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
  rustup toolchain install "$toolchain" --profile minimal
fi
installed_targets=$(rustup target list --installed --toolchain "$toolchain")
if ! grep -qx thumbv7em-none-eabihf <<<"$installed_targets"; then
  rustup target add --toolchain "$toolchain" thumbv7em-none-eabihf
fi
rustup component add --toolchain "$toolchain" rustfmt clippy >/dev/null 2>&1 || true

python3 -m pip install --quiet --disable-pip-version-check -r scripts/requirements.txt
