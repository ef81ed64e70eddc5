#!/usr/bin/env python3
"""An honest Python peer of `avm run`'s stages on the default fleet, for the speed comparison
of issue 16 (`scripts/bench_peer.sh` runs both and prints the ratios).

Same recordings (DATA/raw, pyarrow), same windows (10 s every 5 s at 2048 Hz), the same
default feature set (schema v3: time, rates, 16 bands in dB, orders 0.5/1/2/3, centroid,
flatness, speed; definitions of core-nostd/reference/features_ref.py: `stream_features` of
core-nostd/benches/numpy_features.py) computed the fast numpy way: each recording's Welch
segments are transformed **once** and every window averages its 39 segments; NaN gaps are
filled by linear interpolation (avm's repair; spikes are left alone: the default fleet's
isolated-spike policy changes few samples). Speeds are sample-and-held onto the vibration
timeline. Then avm's own split (flight ids read from DATA/features), a z-score scaler on the
clean normal training windows, a scikit-learn MLP autoencoder of avm's widths
(128-64-16-64-128, ReLU, Adam lr 0.001, batch 64, the number of epochs avm's training ran),
a threshold at the 95th percentile of validation normal scores, test AUC, and 5-fold
cross-validation over flights (5 more trainings, as `avm run` does).

    python3 scripts/python_peer.py [DATA_DIR] [--epochs N] [--json OUT]

Before anything is timed as "done", the peer's features are compared with avm's window table
(DATA/processed/windows.parquet) on the windows avm marks clean: the largest relative
difference per feature family is printed, so the two compute the same thing.
"""

import importlib.util
import json
import re
import pathlib
import resource
import sys
import time

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sklearn.metrics import roc_auc_score
from sklearn.neural_network import MLPRegressor

ROOT = pathlib.Path(__file__).resolve().parents[1]
# The vectorised features (avm's definitions, checked against the float64 reference there) are
# the numpy feature bench's segment-once implementation: one definition, imported.
_spec = importlib.util.spec_from_file_location("numpy_features", ROOT / "core-nostd" / "benches" / "numpy_features.py")
nf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nf)
RATE, WIN, HOP = nf.RATE_HZ, nf.WIN, nf.HOP
CHANNELS = (("vib_fan", "n1_rpm"), ("vib_core", "n2_rpm"))


def read_recording(path):
    t = pq.read_table(path)
    time_s = t.column("time_s").to_numpy()
    out = {}
    for vib, spd in CHANNELS:
        v = t.column(vib)
        rows = pc.is_valid(v).to_numpy(zero_copy_only=False)
        x = v.filter(rows).to_numpy().astype(np.float64)
        nan = np.isnan(x)
        if nan.any():  # avm repairs short gaps by linear interpolation
            idx = np.arange(x.size)
            x[nan] = np.interp(idx[nan], idx[~nan], x[~nan])
        s = t.column(spd)
        srows = pc.is_valid(s).to_numpy(zero_copy_only=False)
        st, sv = time_s[srows], s.filter(srows).to_numpy().astype(np.float64)
        vt = time_s[rows]
        k = np.clip(np.searchsorted(st, vt, side="right") - 1, 0, len(st) - 1)  # sample and hold
        out[vib] = (x, sv[k])
    return out


def features(chans):
    """All windows of both channels: (windows, 44) in avm's column order, rates filled in."""
    x = np.stack([chans[v][0] for v, _ in CHANNELS])
    rpm = np.stack([chans[v][1] for v, _ in CHANNELS])
    if x.shape[1] < WIN:
        return np.zeros((0, 22 * len(CHANNELS)))
    f = nf.stream_features(x, rpm)  # (channels, windows, 22), every Welch segment once
    hop_s = HOP / RATE
    f[:, 1:, 8] = (f[:, 1:, 2] - f[:, :-1, 2]) / hop_s  # rms rate of change
    f[:, 1:, 9] = (f[:, 1:, 6] - f[:, :-1, 6]) / hop_s  # kurtosis rate of change
    return np.concatenate(list(f), axis=1)


def label_windows(flight, n, labels):
    mid = (np.arange(n) * HOP + WIN / 2) / RATE
    y = np.zeros(n, dtype=int)
    for f, a, b, cat in labels:
        if f == flight and cat == "engine":
            y |= (mid >= a) & (mid < b)
    return y


def autoencoder(seed, epochs):
    return MLPRegressor(hidden_layer_sizes=(128, 64, 16, 64, 128), activation="relu", solver="adam",
                        learning_rate_init=0.001, batch_size=64, max_iter=epochs, shuffle=True,
                        random_state=seed, tol=0.0, n_iter_no_change=epochs + 1)


def fit_score(xtr, xva, xte, seed, epochs):
    mu, sd = xtr.mean(axis=0), xtr.std(axis=0) + 1e-12
    z = lambda a: (a - mu) / sd
    m = autoencoder(seed, epochs)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(z(xtr), z(xtr))
    score = lambda a: ((m.predict(z(a)) - z(a)) ** 2).mean(axis=1)
    return score(xva), score(xte)


def main():
    args = sys.argv[1:]
    data = pathlib.Path(args[0] if args and not args[0].startswith("--") else "DATA")
    epochs = int(args[args.index("--epochs") + 1]) if "--epochs" in args else 165
    out_json = args[args.index("--json") + 1] if "--json" in args else None
    timings = {}
    t0 = time.perf_counter()
    files = sorted((data / "raw" / "recordings").glob("*.parquet"))
    recs = {f.stem: read_recording(f) for f in files}
    labels = []
    for line in (data / "raw" / "labels.csv").read_text().splitlines()[1:]:
        c = line.split(",")
        labels.append((c[0], float(c[1]), float(c[2]), c[4]))
    timings["read"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    rows, meta = [], []
    for flight, chans in recs.items():
        rows.append(features(chans))
        meta += [(flight, i) for i in range(len(rows[-1]))]
    x = np.vstack(rows)
    y = np.concatenate([label_windows(f, len(r), labels) for f, r in zip(recs, rows)])
    timings["features"] = time.perf_counter() - t1

    # Same windows as avm's table? Compare on the windows avm marks clean.
    avm = pq.read_table(data / "processed" / "windows.parquet").to_pandas()
    names = json.loads((data / "processed" / "manifest.json").read_text())["feature_names"]
    key = {m: i for i, m in enumerate(meta)}
    # Clean: valid, rates valid, no sensor event, and no sample touched by avm's sanitiser
    # (gap fill, clipping, spike repair, held speed) in this or the previous window (the rates).
    quality = [c for c in avm.columns if c.split(".")[-1] in ("gap_filled", "clipped", "unrepaired", "speed_held")]
    touched = (avm[quality].to_numpy() > 0).any(axis=1)
    prev = np.concatenate([[True], touched[:-1]]) & (avm["window_index"].to_numpy() > 0)
    clean = avm[avm["valid"] & avm["roc_valid"] & (avm["sensor_event"] == "none") & ~touched & ~prev]
    mine = np.array([key[(f, w)] for f, w in zip(clean["flight_id"], clean["window_index"])])
    theirs = clean[names].to_numpy(dtype=np.float64)
    rel = np.abs(x[mine] - theirs) / np.maximum(np.abs(theirs), 1e-3)
    worst = {}
    for j, name in enumerate(names):
        feat = name.split(".")[1]
        fam = next((p for p in ("band", "order", "rms_roc", "kurtosis_roc") if feat.startswith(p)), feat.split("_")[0])
        med, p99 = float(np.median(rel[:, j])), float(np.quantile(rel[:, j], 0.99))
        a, b = worst.get(fam, (0.0, 0.0))
        worst[fam] = (max(a, med), max(b, p99))
    labels_agree = float((y[mine] == clean["label"].to_numpy()).mean())

    t2 = time.perf_counter()
    split = {}
    for s in ("training", "validation", "test"):
        t = pq.read_table(data / "features" / s / "features.parquet", columns=["flight_id"])
        for f in set(t.column("flight_id").to_pylist()):
            split[f] = s
    which = np.array([split[f] for f, _ in meta])
    ok = np.isfinite(x).all(axis=1)
    tr = (which == "training") & (y == 0) & ok
    va, te = (which == "validation") & ok, (which == "test") & ok
    sva, ste = fit_score(x[tr], x[va], x[te], 42, epochs)
    threshold = np.quantile(sva[y[va] == 0], 0.95)
    auc = roc_auc_score(y[te], ste)
    far = float((ste[y[te] == 0] > threshold).mean())
    recall = float((ste[y[te] == 1] > threshold).mean())
    timings["train+evaluate"] = time.perf_counter() - t2

    t3 = time.perf_counter()
    flights = np.array(sorted(recs))
    rng = np.random.default_rng(7)
    rng.shuffle(flights)
    fold_of = {f: i % 5 for i, f in enumerate(flights)}
    fold = np.array([fold_of[f] for f, _ in meta])
    aucs = []
    for k in range(5):
        te_k, va_k = (fold == k) & ok, (fold == (k + 1) % 5) & ok
        tr_k = ~(fold == k) & ~(fold == (k + 1) % 5) & (y == 0) & ok
        _, s_k = fit_score(x[tr_k], x[va_k], x[te_k], 42 + k, epochs)
        aucs.append(roc_auc_score(y[te_k], s_k))
    timings["cross-validation"] = time.perf_counter() - t3
    timings["total"] = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = {
        "recordings": len(recs), "windows": int(len(x)), "features": int(x.shape[1]),
        "checked_windows": int(len(mine)),
        "feature_check_rel_diff_by_family_median_p99": worst, "labels_agree": labels_agree,
        "test_auc": float(auc), "test_recall": recall, "test_far": far,
        "cv_auc_mean": float(np.mean(aucs)), "cv_auc_sd": float(np.std(aucs)),
        "seconds": timings, "peak_rss_mb": peak_mb, "epochs": epochs,
    }
    print(json.dumps(report, indent=2))
    if out_json:
        pathlib.Path(out_json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
