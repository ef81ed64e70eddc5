#!/usr/bin/env python3
"""Instructions per 5 s hop on the Cortex-M4F, per function group, under QEMU.

Runs the Rust firmware example (the `cost` build of `scripts/firmware_cost.sh`: the embedded
36 s segment, 2 channels at 2048 Hz, the default detector) under qemu-system-arm with the
translation and execution logs on (`-d in_asm,exec,nochain`): every translated block's guest
instructions are listed once, and every execution of a block is logged with its address and
function. Summing "instructions in the block" over its executions gives exact guest
instruction counts per function (the same counting as `-icount`, which firmware_cost.sh uses
for the totals). The log is streamed through a pipe, never written to disk (about 2 GB).

Functions are as linked: with LTO, code inlined into a caller counts for the caller (the
per-sample path of avm-core is inlined into the firmware's main loop). Groups are chosen by
the (demangled) function name, first match wins; `--functions` lists the functions too.

    python3 scripts/firmware_profile.py [--functions N] [--no-build]
"""

import argparse
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FW = ROOT / "firmware-example"
ELF = FW / "target/cost/thumbv7em-none-eabihf/release/avm-firmware-example"
HOP_SAMPLES = 10240  # the default hop: 5 s at 2048 Hz

# Compiler builtins (soft float, memcpy, ...): leaves whose cost is also charged to their caller.
BUILTIN = r"^__|compiler_builtins"

# (group, regular expression on the demangled name), first match wins.
GROUPS = [
    ("FFT (microfft)", r"microfft::|spectrum::rfft"),
    ("spectral sums (bands, orders, shape; logf)", r"spectrum::|logf|log2f|libm::math::log"),
    ("window close (moments, features, rates)", r"extractor::block|features::|moments::|Channel<.*>::(accumulate|finish|close)"),
    ("sanitiser, staging, Hann, per-sample path", r"extractor::|sanitize::|channel::|FeatureExtractor"),
    ("scoring (scaler + network)", r"model::|scaler::|bundle::.*assess|Detector.*(assess|score)"),
    ("phase tally, alert policy", r"phase::|alert::"),
    ("input decode (AVMQ counts to g)", r"wire::|input::"),
    ("firmware main loop (inlined core code)", r"__cortex_m_rt_main|avm_firmware_example::main"),
    ("text output (formatting, semihosting)", r"core::fmt|report|hprint|semihosting|Msg|write_str|fmt::"),
    ("bundle parse, CRC, start-up", r"crc|bundle::|Reset|__pre_init|stack::paint|memclr|memset|memcpy"),
    ("soft float, compiler builtins", BUILTIN),
]


def demangle(sym):
    """Legacy Rust mangling (_ZN<len><name>...E) to a::b::c, without the hash."""
    m = re.match(r"_ZN(.*)E$", sym)
    if not m:
        return sym
    s, parts, i = m.group(1), [], 0
    while i < len(s) and s[i].isdigit():
        j = i
        while s[j].isdigit():
            j += 1
        n = int(s[i:j])
        parts.append(s[j:j + n])
        i = j + n
    if parts and re.fullmatch(r"h[0-9a-f]{16}", parts[-1]):
        parts.pop()
    name = "::".join(parts)
    for a, b in (("$LT$", "<"), ("$GT$", ">"), ("$u20$", " "), ("$C$", ","), ("..", "::"), ("$RF$", "&"),
                 ("$u7b$", "{"), ("$u7d$", "}"), ("$BP$", "*"), ("$u27$", "'"), ("$u5b$", "["), ("$u5d$", "]"),
                 ("$u3b$", ";")):
        name = name.replace(a, b)
    return name


def group_of(name):
    for g, rx in GROUPS:
        if re.search(rx, name):
            return g
    return "other"


def run(args):
    if not args.no_build:
        subprocess.run(["cargo", "build", "-q", "--release", "--locked", "--features", "cost",
                        "--target-dir", "target/cost"], cwd=FW, check=True)
    r, w = os.pipe()
    cmd = ["qemu-system-arm", "-cpu", "cortex-m4", "-machine", "mps2-an386", "-nographic",
           "-semihosting-config", "enable=on,target=native", "-kernel", str(ELF),
           "-d", "in_asm,exec,nochain", "-D", f"/dev/fd/{w}"]
    q = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(w,))
    os.close(w)
    size = {}  # guest pc of a block -> instructions in it (latest translation)
    execs = Counter()  # guest pc of a block -> executions
    sym = {}  # guest pc -> function
    builtin = {}  # guest pc -> its function is a compiler builtin (soft float, memcpy, ...)
    # Builtins are leaves: the last other function executed before one is its caller.
    caller_execs = Counter()  # (caller pc's function, builtin block pc) -> executions
    owner = b""
    cur_pc, cur_n = None, 0
    with os.fdopen(r, "rb", buffering=1 << 20) as log:
        for line in log:
            c = line[:1]
            if c == b"T":  # Trace 0: 0xHOST [cs_base/pc/flags/cflags] symbol
                if cur_pc is not None:
                    size[cur_pc] = cur_n
                    cur_pc = None
                a = line.index(b"/") + 1
                pc = line[a:line.index(b"/", a)]
                execs[pc] += 1
                if pc not in sym:
                    name = line[line.index(b"]") + 1:].strip().decode()
                    sym[pc] = name
                    builtin[pc] = re.search(BUILTIN, name) is not None
                if builtin[pc]:
                    caller_execs[(owner, pc)] += 1
                else:
                    owner = pc
            elif c == b"0":  # 0x0000040a:  4281  cmp r1, r0
                if cur_pc is None:
                    cur_pc, cur_n = line[2:10], 0
                cur_n += 1
            elif c == b"-":
                if cur_pc is not None:
                    size[cur_pc] = cur_n
                cur_pc = None
    out, err = q.communicate()
    text = out.decode(errors="replace")
    m = re.search(r"cost: (\d+) samples x (\d+) channels, (\d+) windows", text)
    if q.returncode != 0 or not m:
        sys.exit(f"firmware run failed (exit {q.returncode}):\n{text[-2000:]}\n{err.decode(errors='replace')[-2000:]}")
    samples, channels, windows = map(int, m.groups())
    hops = samples / HOP_SAMPLES
    per_fn = Counter()
    missing = [pc for pc in execs if pc not in size]
    if missing:
        sys.exit(f"{len(missing)} executed blocks were never listed as translated (log format changed?)")
    for pc, n in execs.items():
        # Trace lines print the pc as 8 hex digits, IN: lines as 0x and the same 8 digits.
        per_fn[demangle(sym[pc])] += n * size[pc]
    builtins_by_caller = Counter()
    for (caller, pc), n in caller_execs.items():
        builtins_by_caller[demangle(sym.get(caller, "(start)"))] += n * size[pc]
    return per_fn, builtins_by_caller, samples, channels, windows, hops


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--functions", type=int, default=0, help="also list the N costliest functions")
    ap.add_argument("--no-build", action="store_true", help="use the existing cost build")
    args = ap.parse_args()
    per_fn, builtins_by_caller, samples, channels, windows, hops = run(args)
    total = sum(per_fn.values())
    groups = defaultdict(int)
    for f, n in per_fn.items():
        groups[group_of(f)] += n
    print(f"{samples} samples x {channels} channels = {hops:.2f} hops of 5 s, {windows} windows; "
          f"{total / 1e6:.1f} M instructions in all (start-up and text output included)")
    print(f"{'group':<46} {'M instr per hop':>16} {'share':>7}")
    for g, n in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"{g:<46} {n / hops / 1e6:>16.3f} {100 * n / total:>6.1f}%")
    print(f"\n{'compiler builtins (soft f64, memcpy, ...) by caller':<70} {'M instr per hop':>16}")
    for f, n in builtins_by_caller.most_common(8):
        print(f"{f[:70]:<70} {n / hops / 1e6:>16.3f}")
    if args.functions:
        print(f"\n{'function':<90} {'M instr per hop':>16}")
        for f, n in per_fn.most_common(args.functions):
            print(f"{f[:90]:<90} {n / hops / 1e6:>16.3f}")


if __name__ == "__main__":
    main()
