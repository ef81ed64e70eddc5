#!/usr/bin/env python3
"""The firmware budget on the Cortex-M4F: flash, RAM and CPU of avm's core + detector, for the
Rust firmware example and the C example (avm's C API), separated from the demos' embedded flight
segment, host-bundle buffer and text output.

    python3 scripts/firmware_budget.py            # build, measure, print the table
    python3 scripts/firmware_budget.py --readme   # ... and rewrite README's budget table

How each figure is measured (also printed under the table):
- C build: the linker map (`firmware-c/build/avm-c-firmware.map`) attributes every input section
  to its object: everything from `libavm_capi.a` (the C API, avm-core, microfft, libm, heapless,
  compiler-builtins) is "core + detector"; the embedded bundle and flight segment are the
  `.rodata.avm_embedded` section; the rest (main.c, start-up, semihosting, newlib's mem*/str*)
  is the demo.
- Rust build: LTO merges every crate into one object, so the split is by symbol (`nm -S -C`):
  functions of avm_core, microfft, libm and heapless are the core; compiler-builtins and
  core::fmt are counted apart (shared runtime: float printing is the demo's); the example's
  `main` also holds core code inlined into it, so the Rust core figure is a lower bound.
- RAM of core + detector: the objects a firmware keeps (extractor, detector view, phase tally,
  alerter), `size_of` on thumbv7em as the C API's static asserts see them, plus the stack
  high-water of the whole example (painted RAM), which bounds the core's stack use from above.
- CPU: SysTick ticks around the core's calls under `qemu-system-arm -icount shift=0` (1
  instruction per ns; SysTick at 25 MHz = 40 instructions per tick), on the embedded 36 s
  segment (2 channels at 2048 Hz, the default detector), converted to cycles at CPI 1.85 (what
  microfft's published 1024-point rfft count on an M4F, ~108.5 k cycles, implies against the
  58.7 k instructions QEMU counts for it) and to % of a 168 MHz core.
"""
import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FW = ROOT / "firmware-example"
FWC = ROOT / "firmware-c"
QEMU = ["qemu-system-arm", "-cpu", "cortex-m4", "-machine", "mps2-an386", "-nographic",
        "-semihosting-config", "enable=on,target=native"]
CPI = 1.85
CLOCK_HZ = 168e6
INSTR_PER_TICK = 40
HOP_SAMPLES = 10240  # the default hop: 5 s at 2048 Hz
# size_of on thumbv7em-none-eabihf (checked by avm-capi's const assertions against the C storage
# types; printed by `cargo build -p avm-capi --target thumbv7em-none-eabihf`): see sizes().
BEGIN, END = "<!-- firmware-budget:begin -->", "<!-- firmware-budget:end -->"


def run(cmd, cwd=ROOT, **kw):
    return subprocess.run(cmd, cwd=cwd, check=True, text=True, capture_output=True, **kw).stdout


def sizes():
    """size_of the core's objects on the target, from a probe build that fails with them."""
    probe = ROOT / "target" / "budget-probe"
    probe.mkdir(parents=True, exist_ok=True)
    src = probe / "src"
    src.mkdir(exist_ok=True)
    (probe / "Cargo.toml").write_text(
        '[package]\nname = "budget-probe"\nversion = "0.0.0"\nedition = "2024"\n[workspace]\n'
        f'[dependencies]\navm-core = {{ path = "{ROOT / "core-nostd"}" }}\n')
    (src / "lib.rs").write_text(
        "#![no_std]\nuse avm_core::*;\n"
        "const _: [(); 0] = [(); core::mem::size_of::<FeatureExtractor<2, 1024>>()];\n"
        "const _: [(); 1] = [(); core::mem::size_of::<Detector<'static>>()];\n"
        "const _: [(); 2] = [(); core::mem::size_of::<PhaseTally>()];\n"
        "const _: [(); 3] = [(); core::mem::size_of::<Alerter>()];\n")
    p = subprocess.run(["cargo", "build", "--target", "thumbv7em-none-eabihf", "--offline"],
                       cwd=probe, text=True, capture_output=True,
                       env={**os.environ, "CARGO_TARGET_DIR": str(probe / "target")})
    found = re.findall(r"size of (\d+), found one with a size of (\d+)", p.stderr)
    got = {int(k): int(v) for k, v in found}
    if sorted(got) != [0, 1, 2, 3]:
        sys.exit(f"size probe failed:\n{p.stderr[-2000:]}")
    return {"extractor": got[0], "detector": got[1], "tally": got[2], "alerter": got[3]}


def map_sections(map_path):
    """(output section, size, object) for every input section of a GNU ld map."""
    out, current, pending = [], None, None
    lines = map_path.read_text().splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("Linker script and memory map"))
    for line in lines[start:]:
        m = re.match(r"^(\.[\w.]+)\s", line)
        if m and not line.startswith(" "):
            current = m.group(1)
            continue
        m = re.match(r"^ (\.\S+|COMMON)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$", line)
        if m:
            out.append((current, int(m.group(3), 16), m.group(1), m.group(4)))
            pending = None
            continue
        m = re.match(r"^ (\.\S+|COMMON)$", line)
        if m:
            pending = m.group(1)
            continue
        m = re.match(r"^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$", line)
        if m and pending:
            out.append((current, int(m.group(2), 16), pending, m.group(3)))
            pending = None
    return out


def c_build():
    run(["make", "-s", "all", "cost"], cwd=FWC)
    secs = map_sections(FWC / "build/avm-c-firmware.map")
    acc = {}
    for out, size, name, obj in secs:
        if out is None or out.startswith(".debug") or out in (".comment", ".ARM.attributes"):
            continue
        if "libavm_capi.a" in obj:
            group = "core"
        elif name.startswith(".rodata.avm_embedded"):
            group = "embedded"
        elif name in (".bss.fx", ".bss.det", ".bss.tally", ".bss.alerter"):
            group = "objects"  # the C API's storage objects, in the example's statics
        else:
            group = "demo"
        kind = {".isr_vector": "text", ".text": "text", ".ARM.exidx": "rodata", ".rodata": "rodata",
                ".data": "data", ".bss": "bss"}.get(out)
        if kind:
            acc[(group, kind)] = acc.get((group, kind), 0) + size
    return acc


def rust_build():
    run(["cargo", "build", "-q", "--release", "--locked"], cwd=FW)
    elf = FW / "target/thumbv7em-none-eabihf/release/avm-firmware-example"
    acc = {}
    for line in run(["arm-none-eabi-nm", "-S", "-C", str(elf)]).splitlines():
        m = re.match(r"^([0-9a-f]+) ([0-9a-f]+) (\w) (.*)$", line)
        if not m:
            continue
        size, kind, name = int(m.group(2), 16), m.group(3).lower(), m.group(4)
        kind = {"t": "text", "r": "rodata", "d": "data", "b": "bss"}.get(kind)
        if not kind:
            continue
        if re.search(r"avm_firmware_example::(FX|TALLY)$", name):
            group = "objects"  # the core's objects, kept in the example's statics
        elif re.search(r"\b(avm_core|microfft|libm|heapless)::", name):
            group = "core"
        elif re.search(r"\b(compiler_builtins|core)::", name) or name.startswith("__aeabi"):
            group = "runtime"
        elif "EMBEDDED_" in name or kind == "rodata" and size > 100_000:
            group = "embedded"  # the bundle and flight segment (one anonymous constant each)
        else:
            group = "demo"
        acc[(group, kind)] = acc.get((group, kind), 0) + size
    return acc


def qemu_cost(elf):
    out = subprocess.run(QEMU + ["-icount", "shift=0", "-kernel", str(elf)], cwd=ROOT, text=True,
                         capture_output=True, timeout=600).stdout
    m = re.search(r"cost: (\d+) samples x (\d+) channels, (\d+) windows; SysTick ticks: "
                  r"push_slice (\d+) \(scoring included\), scoring (\d+)", out)
    hw = re.search(r"stack high-water (\d+) bytes", out)
    if not m or not hw:
        sys.exit(f"no cost line from {elf}:\n{out[-2000:]}")
    samples, ch, windows, push, score = map(int, m.groups())
    hops = samples / HOP_SAMPLES
    per_hop = push * INSTR_PER_TICK / hops  # extraction + scoring, per 5 s hop (1 window per hop)
    return {
        "per_hop": per_hop,
        "score": score * INSTR_PER_TICK / windows,
        "per_channel_sample": (push - score) * INSTR_PER_TICK / samples / ch,
        "percent": 100 * per_hop * CPI / (HOP_SAMPLES / 2048) / CLOCK_HZ,
        "stack": int(hw.group(1)),
    }


def rust_cost():
    run(["cargo", "build", "-q", "--release", "--locked", "--features", "cost", "--target-dir",
         "target/cost"], cwd=FW)
    return qemu_cost(FW / "target/cost/thumbv7em-none-eabihf/release/avm-firmware-example")


def kb(n):
    return f"{n / 1024:.1f} KiB"


def table():
    objs = sizes()
    c, r = c_build(), rust_build()
    cc, rc = qemu_cost(FWC / "build/avm-c-firmware-cost.elf"), rust_cost()
    ram = sum(objs.values())
    g = lambda acc, grp, kind: acc.get((grp, kind), 0)
    rows = [
        "| build | core + detector code | core read-only data | core RAM (objects) | stack high-water (whole example) | CPU per 5 s hop (extraction + scoring) | scoring per window | % of 168 MHz (CPI 1.85) | demo: code / embedded data / RAM |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| C API (`firmware-c/`, libavm_capi.a, `firmware` profile) | {kb(g(c, 'core', 'text'))} | "
        f"{kb(g(c, 'core', 'rodata'))} | {kb(ram)} | {kb(cc['stack'])} | {cc['per_hop'] / 1e6:.2f} M instr | "
        f"{cc['score'] / 1e6:.3f} M instr | {cc['percent']:.2f} % | {kb(g(c, 'demo', 'text'))} / "
        f"{kb(g(c, 'embedded', 'rodata'))} / {kb(g(c, 'demo', 'bss') + g(c, 'demo', 'data'))} |",
        f"| Rust (`firmware-example/`, release, LTO) | ≥ {kb(g(r, 'core', 'text'))} (+ {kb(g(r, 'runtime', 'text'))} compiler-builtins and core::fmt) | "
        f"{kb(g(r, 'core', 'rodata'))} | {kb(ram)} | {kb(rc['stack'])} | {rc['per_hop'] / 1e6:.2f} M instr | "
        f"{rc['score'] / 1e6:.3f} M instr | {rc['percent']:.2f} % | {kb(g(r, 'demo', 'text'))} / "
        f"{kb(g(r, 'embedded', 'rodata'))} / {kb(g(r, 'demo', 'bss') + g(r, 'demo', 'data'))} |",
    ]
    stamp = (f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on "
             f"{platform.machine()} ({os.cpu_count()} cores) by `python3 scripts/firmware_budget.py`; "
             f"core objects (thumbv7em `size_of`): extractor {objs['extractor']} B, detector view "
             f"{objs['detector']} B, phase tally {objs['tally']} B, alerter {objs['alerter']} B. "
             f"Targets (issue 17): core + detector ≤ 24 KiB RAM, ≤ 40 KiB code, ≤ 1 % of 168 MHz. "
             f"Extraction alone: {cc['per_channel_sample']:.0f} (C) / {rc['per_channel_sample']:.0f} (Rust) "
             f"instructions per channel-sample. The demo RAM is the examples' own statics: the 160 KiB "
             f"host-bundle buffer (a product keeps its bundle in flash), sample blocks and text buffers.")
    return "\n".join(rows) + "\n\n" + stamp


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--readme", action="store_true", help="rewrite README's table between the markers")
    args = ap.parse_args()
    t = table()
    print(t)
    if args.readme:
        readme = ROOT / "README.md"
        text = readme.read_text()
        if BEGIN not in text or END not in text:
            sys.exit(f"README.md has no {BEGIN} ... {END} markers")
        a, rest = text.split(BEGIN, 1)
        _, b = rest.split(END, 1)
        tmp = readme.with_suffix(".md.tmp")
        tmp.write_text(a + BEGIN + "\n" + t + "\n" + END + b)
        tmp.replace(readme)
        print("README.md updated")


if __name__ == "__main__":
    main()
