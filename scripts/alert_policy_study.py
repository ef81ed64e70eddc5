#!/usr/bin/env python3
"""Chooses the alert policy by measurement, on the cross-validation folds' per-window scores.

`avm evaluate` writes every fold's test windows (scores, applied thresholds, phases, labels) to
MODELS/<name>/evaluation/cv/fold_<k>/scores.csv; every flight of the data set is tested in
exactly one fold, so together they are the whole fleet scored out of sample. This script
re-implements the alert state machine (M of N judged windows, clear after C quiet windows below
a fraction of the threshold, optional latch; avm-core's `alert.rs` rules, written again here
from the documentation as an independent check) and

1. checks it against the `alert` column avm wrote for the configured policy (must agree on
   every window), then
2. sweeps policies and no-verdict phase sets and prints, per policy, the flight-level figures
   pooled over all folds: false alerts per 1000 healthy flight hours (with its exact Poisson
   95 % interval), fault flights alerted after onset, gross within 60 s, subtle before the end,
   median / p90 detection delay.

usage: python3 scripts/alert_policy_study.py [MODELS/engine_vibration] [DATA/raw/labels.csv]
"""
import csv
import json
import glob
import itertools
import math
import os
import sys

from scipy.stats import chi2
import numpy as np

model_dir = sys.argv[1] if len(sys.argv) > 1 else "MODELS/engine_vibration"
labels_path = sys.argv[2] if len(sys.argv) > 2 else "DATA/raw/labels.csv"
SUBTLE_BELOW = 0.35
DEADLINE_S = 60.0


def read_rows():
    rows = []
    for path in sorted(glob.glob(os.path.join(model_dir, "evaluation", "cv", "fold_*", "scores.csv"))):
        with open(path) as f:
            rows.extend(csv.DictReader(f))
    if not rows:
        sys.exit(f"no cv/fold_*/scores.csv under {model_dir}/evaluation: run avm evaluate with cv_folds > 0")
    return rows


def onsets():
    out = {}
    with open(labels_path) as f:
        for r in csv.DictReader(f):
            if r["category"] == "engine":
                out[r["flight_id"]] = min(out.get(r["flight_id"], math.inf), float(r["start_s"]))
    return out


def flights_of(rows):
    by = {}
    for r in rows:
        by.setdefault(r["flight_id"], []).append(r)
    for ws in by.values():
        ws.sort(key=lambda r: int(r["window_index"]))
    return by


def run_policy(ws, m, n, clear, frac, latch, no_verdict):
    """Alert up after each window, and the raise times (window end_s), by the documented rules."""
    history, up, quiet, raised, states = [], False, 0, [], []
    for r in ws:
        judged = r["valid"] == "true" and r["phase"] not in no_verdict
        score, thr = np.float32(r["score"]), np.float32(r["threshold"])
        if judged:
            if not up:
                history = (history + [bool(score > thr)])[-n:]
                if sum(history) >= m:
                    up, quiet = True, 0
                    raised.append(float(r["end_s"]))
            elif not latch:
                quiet = quiet + 1 if score <= np.float32(frac) * thr else 0
                if quiet >= clear:
                    up, history, quiet = False, [], 0
        states.append(up)
    return states, raised


def study(by, onset, m, n, clear, frac, latch, no_verdict):
    false_alerts, healthy_h, delays, gross, subtle, sensor_alerts = 0, 0.0, [], [], [], 0
    for fid, ws in by.items():
        _, raised = run_policy(ws, m, n, clear, frac, latch, no_verdict)
        start, end = float(ws[0]["start_s"]), max(float(r["end_s"]) for r in ws)
        faulty = [r for r in ws if r["label"] == "1"]
        if faulty:
            o = onset.get(fid, min(float(r["start_s"]) for r in faulty))
            healthy_h += max(0.0, min(o - start, end - start)) / 3600
            false_alerts += sum(1 for t in raised if t <= o)
            after = [t - o for t in raised if t > o]
            d = after[0] if after else None
            delays.append(d)
            sev = max(float(r["severity"]) for r in faulty)
            (subtle if sev < SUBTLE_BELOW else gross).append(d)
        elif any(r["sensor_event"] != "none" for r in ws):
            sensor_alerts += len(raised)
        else:
            healthy_h += (end - start) / 3600
            false_alerts += len(raised)
    got = [d for d in delays if d is not None]
    lo = 0.0 if false_alerts == 0 else chi2.ppf(0.025, 2 * false_alerts) / 2
    hi = chi2.ppf(0.975, 2 * false_alerts + 2) / 2
    return {
        "fa_per_1000h": 1000 * false_alerts / healthy_h,
        "ci": (1000 * lo / healthy_h, 1000 * hi / healthy_h),
        "false_alerts": false_alerts,
        "healthy_h": healthy_h,
        "fault_alerted": len(got) / len(delays) if delays else float("nan"),
        "gross_in_time": sum(1 for d in gross if d is not None and d <= DEADLINE_S) / max(1, len(gross)),
        "subtle_alerted": sum(1 for d in subtle if d is not None) / max(1, len(subtle)),
        "median": float(np.median(got)) if got else float("nan"),
        "p90": float(np.percentile(got, 90)) if got else float("nan"),
        "sensor_alerts": sensor_alerts,
        "n_gross": len(gross),
        "n_subtle": len(subtle),
    }


def main():
    rows = read_rows()
    by = flights_of(rows)
    onset = onsets()
    # 1. The configured policy, as avm ran it (metrics.json reports it): avm's `alert` column
    # must equal this re-implementation's on every window. AVM_NO_VERDICT=a,b names the
    # config's no-verdict phases, if any.
    pol = json.load(open(os.path.join(model_dir, "evaluation", "metrics.json")))["flights"]["policy"]
    nv = set(os.environ.get("AVM_NO_VERDICT", "").split(",")) - {""}
    mismatches = 0
    for ws in by.values():
        states, _ = run_policy(
            ws, pol["raise_count"], pol["raise_window"], pol["clear_count"], pol["clear_fraction"], pol["latch"], nv
        )
        mismatches += sum(1 for r, s in zip(ws, states) if (r["alert"] == "true") != s)
    print(f"configured policy {pol}: {len(rows)} windows, {len(by)} flights; "
          f"alert column vs this re-implementation: {mismatches} mismatches")
    if mismatches:
        sys.exit("the re-implementation disagrees with avm's alert column")
    phases = sorted({r["phase"] for r in rows})
    print(f"phases: {phases}")
    print(f"{'policy':<34} {'FA/1000h':>9} {'95% CI':>15} {'fault':>6} {'gross60':>7} {'subtle':>6} {'med s':>6} {'p90 s':>6} {'sensor':>6}")
    nv_sets = [(), ("takeoff",), ("takeoff", "landing"), ("taxi", "takeoff", "landing")]
    for (m, n), (clear, frac), latch, nvs in itertools.product(
        [(1, 1), (2, 3), (3, 4), (3, 5), (4, 5), (4, 6), (5, 6), (6, 8)],
        [(6, 0.8)],
        [False],
        nv_sets,
    ):
        if any(p not in phases for p in nvs):
            continue
        r = study(by, onset, m, n, clear, frac, latch, set(nvs))
        name = f"{m}/{n} clear {clear}@{frac}{' latch' if latch else ''} nv={'+'.join(nvs) or '-'}"
        print(f"{name:<34} {r['fa_per_1000h']:>9.0f} {r['ci'][0]:>7.0f}-{r['ci'][1]:<7.0f} "
              f"{r['fault_alerted']:>6.2f} {r['gross_in_time']:>7.2f} {r['subtle_alerted']:>6.2f} "
              f"{r['median']:>6.0f} {r['p90']:>6.0f} {r['sensor_alerts']:>6}")
    print(f"(pooled over the folds: {r['healthy_h']:.2f} healthy flight hours, "
          f"{r['n_gross']} gross and {r['n_subtle']} subtle fault flights)")


if __name__ == "__main__":
    main()
