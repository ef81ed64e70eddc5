#!/usr/bin/env bash
# The firmware's CPU cost per window on the Cortex-M4F, as instruction counts: builds the
# firmware example with the `cost` feature and runs its embedded 36 s flight segment (2 channels
# at 2048 Hz, the default detector) under QEMU with `-icount shift=0`, where the virtual clock
# advances 1 ns per instruction and mps2-an386's SysTick (25 MHz) ticks once per 40
# instructions. QEMU counts instructions, not cycles: cycles depend on the part's flash wait
# states and pipeline (README gives the conversion used).
set -euo pipefail
cd "$(dirname "$0")/../firmware-example"
cargo build -q --release --locked --features cost --target-dir target/cost
out=$(qemu-system-arm -cpu cortex-m4 -machine mps2-an386 -nographic \
  -semihosting-config enable=on,target=native -icount shift=0 \
  -kernel target/cost/thumbv7em-none-eabihf/release/avm-firmware-example | grep 'cost:')
echo "$out"
python3 - "$out" <<'PY'
import re, sys
m = re.search(r"cost: (\d+) samples x (\d+) channels, (\d+) windows; SysTick ticks: push_slice (\d+) \(scoring included\), scoring (\d+)", sys.argv[1])
samples, ch, windows, push, score = map(int, m.groups())
per_tick = 40  # 1 GHz virtual clock (icount shift 0) / 25 MHz SysTick
hops = samples / 10240  # the default hop: 5 s at 2048 Hz
extract = (push - score) * per_tick
print(f"extraction: {extract / hops / 1e6:.2f} M instructions per 5 s hop ({extract / samples / ch:.0f} per channel-sample)")
print(f"scoring: {score * per_tick / windows / 1e6:.2f} M instructions per window")
PY
