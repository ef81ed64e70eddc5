#!/usr/bin/env python3
"""Leave-one-condition-out evaluation of avm's feature sets on real recordings (issue 13).

    python3 scripts/loco_eval.py [--datasets ../shared/datasets] [--seed 0]

Features: the two feature definitions as their float64 numpy/scipy reference implementations
define them (avm-core matches each within the tolerances of its golden tests):
  - v2, the previous default (11 per channel), from `core-nostd/reference/features_ref.py` at
    commit 02bb789 (read with `git show`);
  - v3, the current default (every family, `isolated` spikes), from the same file today, and
    v3 with `scale: fraction` (band and order energies as fractions of the total), and v3 with
    8 or 20 bands instead of 16 (the band count, measured).
Models (independent of avm's trainer, the same for both feature sets): a scikit-learn MLP
autoencoder (z-scored inputs, hidden widths 2n, n/2, 2n; reconstruction MSE as the score) and an
isolation forest. Threshold: the score quantile that gives FAR 0.05 on validation normal
windows (the lowest threshold meeting it, as avm calibrates). Metrics on test windows: ROC AUC,
precision, recall, FAR at that threshold.

FEMTO/PRONOSTIA (3 operating conditions, 2 bearings each; early-life snapshots normal,
end-of-life faulty): 80 ms windows every 20 ms inside each 0.1 s snapshot, both accelerometers,
shaft speed the condition's nominal rpm.
  - LOCO: train on the early snapshots of two conditions (every 4th snapshot held out as
    validation), test on the held-out condition's early (normal) and late (faulty) snapshots.
  - pooled: all conditions in training; test the held-out half of every condition's snapshots.
CWRU cannot give a leave-one-condition-out protocol (healthy data only at 0 hp); its results
are in README from the trainer's own test.
"""

import argparse
import csv
import importlib.util
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.neural_network import MLPRegressor
from sklearn.preprocessing import StandardScaler

ROOT = pathlib.Path(__file__).resolve().parent.parent
V2_COMMIT = "02bb789"
FS = 25600


def load_module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def references(tmp):
    v2_path = pathlib.Path(tmp) / "features_ref_v2.py"
    v2_path.write_text(subprocess.run(["git", "-C", str(ROOT), "show", f"{V2_COMMIT}:core-nostd/reference/features_ref.py"],
                                      check=True, capture_output=True, text=True).stdout)
    v2 = load_module("features_ref_v2", v2_path)
    v3 = load_module("features_ref_v3", ROOT / "core-nostd" / "reference" / "features_ref.py")
    return v2, v3


def configs(v3):
    base = dict(sample_rate_hz=FS, window_len_samples=2048, hop_len_samples=512, fft_len=1024, order_band_bins=1,
                max_gap_samples=8, spike_k_sigma=3.0, full_scale_g=50.0, max_shaft_speed_rpm=20000.0)
    v2_cfg = dict(base)
    # The v3 default set at this rate, as `FeatureSettings::default()` resolves it: 16 bands
    # log-spaced from 4 bins (100 Hz) to fs/2.56 (10 kHz), orders 0.5/1/2/3 with 0.05 orders.
    def edges(n):
        lo, hi = 4 * FS / 1024, FS / 2.56
        e = [float(np.float32(lo * (hi / lo) ** (i / n))) for i in range(n + 1)]
        e[0], e[-1] = float(np.float32(lo)), float(np.float32(hi))
        return e

    v3_cfg = dict(base, spike_policy="isolated", families=v3.ALL_FAMILIES, scale="db", band_edges_hz=edges(16),
                  orders=[0.5, 1.0, 2.0, 3.0], order_half_width=0.05, **v3.NO_ENVELOPE)
    # The same set with band and order energies as fractions of the total (`scale: fraction`).
    v3_frac = dict(v3_cfg, scale="fraction")
    # The band count, measured: 8 and 20 log-spaced bands instead of 16.
    return {"v2": v2_cfg, "v3": v3_cfg, "v3 frac": v3_frac, "v3 8b": dict(v3_cfg, band_edges_hz=edges(8)),
            "v3 20b": dict(v3_cfg, band_edges_hz=edges(20))}


def femto_windows(root, refs, cfgs):
    """Per feature set: X (windows x features), and per window its condition, label, bearing, snapshot."""
    rows = [r for r in csv.DictReader(open(root / "manifest.csv")) if r["phase"] in ("early", "late")]
    out = {k: [] for k in cfgs}
    meta = []
    for r in rows:
        a = np.loadtxt(root / r["file"], delimiter=",", usecols=(4, 5)).astype(np.float32).astype(np.float64)
        rpm = np.full_like(a, float(r["rpm_nominal"]))
        n_windows = None
        for name, cfg in cfgs.items():
            frames = refs[name].extract(a, rpm, cfg)
            feats = [sum((c["features"] for c in f["channels"]), []) for f in frames]
            out[name].extend(feats)
            n_windows = len(frames)
        for _ in range(n_windows):
            meta.append((int(r["operating_condition"]), 1 if r["phase"] == "late" else 0, r["bearing"],
                         int(r["snapshot_index"])))
    return {k: np.array(v) for k, v in out.items()}, meta


def calibrate(scores_val_normal, target_far=0.05):
    """Lowest threshold whose FAR on the validation normal scores is <= target (alarm: score > t)."""
    s = np.sort(scores_val_normal)
    n = len(s)
    k = int(np.floor(target_far * n))  # at most k alarms allowed
    return s[n - k - 1] if n - k - 1 >= 0 else s[-1]


def metrics(scores, y, threshold):
    pred = scores > threshold
    tp = int(np.sum(pred & (y == 1)))
    fp = int(np.sum(pred & (y == 0)))
    fn = int(np.sum(~pred & (y == 1)))
    tn = int(np.sum(~pred & (y == 0)))
    return dict(auc=roc_auc_score(y, scores), precision=tp / (tp + fp) if tp + fp else 0.0,
                recall=tp / (tp + fn) if tp + fn else 0.0, far=fp / (fp + tn) if fp + tn else 0.0)


def score_models(x_train, x_val, x_test, seed):
    sc = StandardScaler().fit(x_train)
    zt, zv, zs = sc.transform(x_train), sc.transform(x_val), sc.transform(x_test)
    # Constant training columns give inf/nan after scaling in no sklearn version (scale_ = 1), but
    # far-off test values can be huge: clip to keep the MLP finite.
    zt, zv, zs = (np.clip(z, -1e6, 1e6) for z in (zt, zv, zs))
    n = zt.shape[1]
    ae = MLPRegressor(hidden_layer_sizes=(2 * n, max(n // 2, 2), 2 * n), max_iter=400, random_state=seed,
                      early_stopping=True, validation_fraction=0.15, n_iter_no_change=20)
    ae.fit(zt, zt)
    mse = lambda z: np.mean((ae.predict(z) - z) ** 2, axis=1)  # noqa: E731
    iso = IsolationForest(n_estimators=200, random_state=seed).fit(zt)
    return {"autoencoder": (mse(zv), mse(zs)), "isolation forest": (-iso.score_samples(zv), -iso.score_samples(zs))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", type=pathlib.Path, default=ROOT.parent / "shared" / "datasets")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        v2, v3 = references(tmp)
        refs = {"v2": v2, "v3": v3, "v3 frac": v3, "v3 8b": v3, "v3 20b": v3}
        cfgs = configs(v3)
        X, meta = femto_windows(args.datasets / "femto-pronostia", refs, cfgs)
    cond = np.array([m[0] for m in meta])
    y = np.array([m[1] for m in meta])
    snap = np.array([m[3] for m in meta])
    print(f"FEMTO: {len(meta)} windows ({int(np.sum(y == 0))} normal, {int(np.sum(y == 1))} faulty); "
          f"features per window: " + ", ".join(f"{k} {v.shape[1]}" for k, v in X.items()))
    results = []
    protocols = [(f"LOCO, test condition {c}", c) for c in (1, 2, 3)] + [("pooled", None)]
    for label, held in protocols:
        if held is not None:
            train_pool = (cond != held) & (y == 0)
            val = train_pool & (snap % 4 == 0)
            train = train_pool & (snap % 4 != 0)
            test = cond == held
        else:
            half = snap % 2 == 0
            train = (y == 0) & ~half & (snap % 4 != 1)
            val = (y == 0) & ~half & (snap % 4 == 1)
            test = half
        for fset, x in X.items():
            scores = score_models(x[train], x[val], x[test], args.seed)
            for model, (sv, st) in scores.items():
                m = metrics(st, y[test], calibrate(sv))
                results.append((label, fset, model, m))
    print(f"{'protocol':<26} {'features':<8} {'model':<17} {'AUC':>6} {'prec':>6} {'recall':>6} {'FAR':>6}")
    for label, fset, model, m in results:
        print(f"{label:<26} {fset:<8} {model:<17} {m['auc']:>6.3f} {m['precision']:>6.3f} {m['recall']:>6.3f} "
              f"{m['far']:>6.3f}")
    for fset in X:
        for model in ("autoencoder", "isolation forest"):
            loco = [m for (lab, f, mo, m) in results if lab.startswith("LOCO") and f == fset and mo == model]
            print(f"LOCO mean {fset} {model}: AUC {np.mean([m['auc'] for m in loco]):.3f}, "
                  f"recall {np.mean([m['recall'] for m in loco]):.3f}, FAR {np.mean([m['far'] for m in loco]):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
