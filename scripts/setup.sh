#!/usr/bin/env bash
# Installs what avm's builds and tests need, idempotently. Safe to run again.
# - the pinned Rust toolchain with the Cortex-M4F target, rustfmt and clippy
# - numpy/scipy/scikit-learn (independent references), onnxruntime (its shared library is
#   what `avm export` validates models with), onnx and PyYAML (consumer checks)
# - qemu-system-arm (Debian), which runs the firmware examples for the parity tests; make,
#   gcc-arm-none-eabi and newlib (Debian), which build the C example firmware; Java 17 (Debian)
#   for pyspark's local mode; maturin, pytest and pyspark (PyPI) for the Python package; and
#   defmt-print (cargo install), which decodes its defmt log
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

missing=()
command -v qemu-system-arm >/dev/null 2>&1 || missing+=(qemu-system-arm)
command -v make >/dev/null 2>&1 || missing+=(make)
command -v arm-none-eabi-gcc >/dev/null 2>&1 || missing+=(gcc-arm-none-eabi)
[ -e /usr/lib/arm-none-eabi/lib/thumb/v7e-m+fp/hard/libc.a ] || missing+=(libnewlib-arm-none-eabi)
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
if [ "${#missing[@]}" -gt 0 ]; then
  sudo_cmd=""
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# defmt-print decodes the firmware's defmt log (the parity suite checks it).
if ! command -v defmt-print >/dev/null 2>&1; then
  cargo install defmt-print --version 1.0.0 --locked --quiet
fi
