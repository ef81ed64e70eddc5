#!/usr/bin/env python3
"""Per-unit baselines across operating conditions (FEMTO/PRONOSTIA, leave one condition out).

    python3 scripts/loco_baseline.py [--datasets ../shared/datasets] [--seed 0] [--k 10]

The protocol of `scripts/loco_eval.py` (same windows, feature definitions, models and
calibration), with the trainer's per-unit baselines (config `baseline`, README "Per-unit
baselines") added: the unit is the bearing. Each bearing's K earliest early-life snapshots are
its baseline (commissioning: in the held-out condition too, as `baseline.commission_flights`
does for a unit never trained on) and are judged by no model; every other window is centred by
its bearing's baseline, and the scaler's spread is fitted on the centred training windows, as
`avm featurize` fits it. "fleet" is the same protocol without centring (the baseline snapshots
left out all the same, so both rows judge the same windows).
"""

import argparse
import pathlib
import sys
import tempfile

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import loco_eval as L  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", type=pathlib.Path, default=L.ROOT.parent / "shared" / "datasets")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--k", type=int, default=10, help="baseline snapshots per bearing")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        v2, v3 = L.references(tmp)
        cfgs = {k: v for k, v in L.configs(v3).items() if k in ("v3", "v3 frac")}
        X, meta = L.femto_windows(args.datasets / "femto-pronostia", {k: v3 for k in cfgs}, cfgs)
    cond = np.array([m[0] for m in meta])
    y = np.array([m[1] for m in meta])
    bearing = np.array([m[2] for m in meta])
    snap = np.array([m[3] for m in meta])
    base = np.zeros(len(y), bool)
    for b in np.unique(bearing):
        first = np.unique(snap[(bearing == b) & (y == 0)])[: args.k]
        base |= (bearing == b) & np.isin(snap, first)

    def centred(x):
        z = x.copy()
        for b in np.unique(bearing):
            m = bearing == b
            z[m] = x[m] - x[m & base].mean(0)
        return z

    print(f"FEMTO: {len(y)} windows; baseline: the {args.k} earliest snapshots of each of "
          f"{len(np.unique(bearing))} bearings ({int(base.sum())} windows, not judged)")
    print(f"{'test condition':<15} {'features':<8} {'scaling':<9} {'model':<17} {'AUC':>6} {'prec':>6} {'recall':>6} {'FAR':>6}")
    res = {}
    for fset, x0 in X.items():
        for scaling, x in (("fleet", x0), ("per unit", centred(x0))):
            for held in (1, 2, 3):
                pool = (cond != held) & (y == 0) & ~base
                val, train = pool & (snap % 4 == 0), pool & (snap % 4 != 0)
                test = (cond == held) & ~base
                for model, (sv, st) in L.score_models(x[train], x[val], x[test], args.seed).items():
                    m = L.metrics(st, y[test], L.calibrate(sv))
                    res.setdefault((fset, scaling, model), []).append(m)
                    print(f"{held:<15} {fset:<8} {scaling:<9} {model:<17} {m['auc']:>6.3f} {m['precision']:>6.3f} "
                          f"{m['recall']:>6.3f} {m['far']:>6.3f}", flush=True)
    for (fset, scaling, model), ms in res.items():
        print(f"mean {fset:<8} {scaling:<9} {model:<17} AUC {np.mean([m['auc'] for m in ms]):.3f} "
              f"recall {np.mean([m['recall'] for m in ms]):.3f} FAR {np.mean([m['far'] for m in ms]):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
