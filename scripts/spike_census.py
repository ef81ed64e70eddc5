#!/usr/bin/env python3
"""How many samples each spike policy alters on real recordings (README, "Sanitising").

Applies avm-core's three spike policies (restated from core-nostd/src/sanitize.rs and
core-nostd/reference/features_ref.py, vectorised) to the shared real data sets, which are
glitch-free lab recordings: every sample a policy alters there is real vibration it destroys.

    python3 scripts/spike_census.py [--datasets ../shared/datasets]

CWRU: the drive-end channel of every record, windows of 8192 samples every 4096 (the bounds of
window w judge the samples after its end, as in the core). FEMTO: every snapshot of the subset
(2560 samples at 25.6 kHz, both accelerometers), windows of 1024 every 512 inside a snapshot.
Prints samples altered per 10 000, per data set, label and policy.
"""

import argparse
import csv
import pathlib

import numpy as np
import scipy.io

K_SIGMA = 3.0


def bounds(policy, w):
    mean = w.mean()
    if policy == "k_sigma":
        j = K_SIGMA * w.std()
        return mean - j, mean + j, j
    dev = max(w.max() - mean, mean - w.min())
    return mean - 2 * dev, mean + 2 * dev, dev


def altered(x, window, hop, policy):
    """Samples of x (1-D) the policy replaces; windows assumed valid (no gaps in lab data)."""
    if policy == "off":
        return 0
    n = len(x)
    count = 0
    y = x.copy()
    w = 0
    while w * hop + window <= n:
        lo, hi, jump = bounds(policy, y[w * hop: w * hop + window])
        start = w * hop + window
        end = min(start + hop, n - 1)
        if start >= end:
            break
        m = np.arange(max(start, 1), end)
        xm, xp, xn = x[m], x[m - 1], x[m + 1]
        out = lambda v: (v < lo) | (v > hi)  # noqa: E731
        hit = out(xm) & ~out(xp) & ~out(xn) & (np.abs(xm - (xp + xn) / 2) > jump)
        count += int(hit.sum())
        y[m[hit]] = (xp[hit] + xn[hit]) / 2 if policy == "isolated" else np.where(xm[hit] > hi, hi, lo)
        w += 1
    return count


def cwru(root):
    rows = list(csv.DictReader(open(root / "manifest.csv")))
    for r in rows:
        mat = scipy.io.loadmat(root / r["file"])
        de = [k for k in mat if k.endswith("_DE_time")]
        if not de:
            continue
        yield f"cwru {r['fs_hz']} Hz {r['label']}", mat[de[0]].ravel().astype(np.float32).astype(np.float64), 8192, 4096


def femto(root):
    rows = list(csv.DictReader(open(root / "manifest.csv")))
    for r in rows:
        if r["phase"] not in ("early", "late"):
            continue
        a = np.loadtxt(root / r["file"], delimiter=",", usecols=(4, 5))
        for c in range(2):
            yield f"femto {r['label']}", a[:, c].astype(np.float32).astype(np.float64), 1024, 512


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = pathlib.Path(__file__).resolve().parent
    ap.add_argument("--datasets", type=pathlib.Path, default=here.parent.parent / "shared" / "datasets")
    args = ap.parse_args()
    totals = {}
    for name, x, window, hop in list(cwru(args.datasets / "cwru-bearing")) + list(femto(args.datasets / "femto-pronostia")):
        t = totals.setdefault(name, dict(samples=0, off=0, isolated=0, k_sigma=0))
        judged = max(len(x) - window, 0)
        t["samples"] += judged
        for p in ("off", "isolated", "k_sigma"):
            t[p] += altered(x, window, hop, p)
    print(f"{'data set, label':<40} {'samples judged':>14} {'off':>6} {'isolated':>9} {'k_sigma':>8}  (altered per 10 000)")
    for name, t in sorted(totals.items()):
        per = lambda k: 1e4 * t[k] / max(t["samples"], 1)  # noqa: E731
        print(f"{name:<40} {t['samples']:>14} {per('off'):>6.2f} {per('isolated'):>9.3f} {per('k_sigma'):>8.2f}")


if __name__ == "__main__":
    main()
