#!/usr/bin/env python3
"""Golden cases for avm-trainer's metrics, computed by scikit-learn.

    python3 trainer/tests/golden/metrics_golden.py          # writes metrics.json beside it
    python3 trainer/tests/golden/metrics_golden.py --check  # recompute the metrics of the stored inputs

Conventions mirrored from trainer/src/metrics.rs: alarm when score > threshold;
precision with zero_division=0; FAR = FP / (FP + TN); ROC with drop_intermediate=False.
"""
import argparse
import json
import pathlib
import sys

import numpy as np
from sklearn.metrics import (confusion_matrix, f1_score, precision_score, recall_score,
                             roc_auc_score, roc_curve)

OUT = pathlib.Path(__file__).with_name("metrics.json")


def case(name, scores, labels, thresholds):
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    c = dict(name=name, scores=scores.tolist(), labels=labels.tolist(), at=[])
    if len(set(labels.tolist())) < 2:
        # scikit-learn raises (older) or warns and returns NaN (1.9): undefined either way.
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                v = roc_auc_score(labels, scores)
            except ValueError:
                v = float("nan")
        assert not np.isfinite(v), f"{name}: scikit-learn gave a single-class AUC {v}"
        c["auc_undefined"] = True
    else:
        c["auc"] = roc_auc_score(labels, scores)
        fpr, tpr, thr = roc_curve(labels, scores, drop_intermediate=False)
        c["roc"] = [[float(a), float(b), float(t) if np.isfinite(t) else "inf"] for a, b, t in zip(fpr, tpr, thr)]
    for t in thresholds:
        pred = (scores > t).astype(np.int64)
        tn, fp, fn, tp = confusion_matrix(labels, pred, labels=[0, 1]).ravel()
        c["at"].append(dict(
            threshold=t, tp=int(tp), fp=int(fp), tn=int(tn), fn=int(fn),
            precision=precision_score(labels, pred, zero_division=0),
            recall=recall_score(labels, pred, zero_division=0),
            f1=f1_score(labels, pred, zero_division=0),
            far=float(fp) / (fp + tn) if fp + tn else 0.0))
    return c


def cases():
    rng = np.random.default_rng(42)
    out = [
        case("tiny", [0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], [0.36, 0.0, 1.0]),
        case("all_tied", [1.0] * 6, [0, 1, 0, 1, 1, 0], [0.5, 1.0]),
        case("single_class", [0.3, 0.2, 0.9], [0, 0, 0], [0.25]),
        case("perfect", [0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1], [0.5]),
        case("inverted", [0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1], [0.5]),
    ]
    # Heavy ties: scores rounded to one decimal.
    s = np.round(rng.normal(size=200), 1)
    l = (rng.random(200) < 0.3).astype(int)
    s = s + 0.4 * l
    out.append(case("ties_200", s, l, [-0.5, 0.0, 0.35, 1.2]))
    # Realistic: lognormal anomaly scores, 5 % positives.
    n = 1000
    l = (rng.random(n) < 0.05).astype(int)
    s = np.exp(rng.normal(size=n) + 1.5 * l)
    out.append(case("lognormal_1000", s, l, [1.0, 2.5, 5.0]))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    data = dict(generator="trainer/tests/golden/metrics_golden.py", sklearn=__import__("sklearn").__version__, cases=cases())
    if a.check:
        # scikit-learn's outputs recomputed on the stored inputs: the inputs themselves come
        # from numpy's vectorised exp, whose last bit depends on the CPU's SIMD path (AVX2 vs
        # AVX-512 gave 1-ulp differences), so they are data, not something to regenerate.
        old = json.loads(OUT.read_text())
        again = [case(c["name"], c["scores"], c["labels"], [t["threshold"] for t in c["at"]]) for c in old["cases"]]
        same = json.dumps(old["cases"], sort_keys=True) == json.dumps(again, sort_keys=True)
        print(f"metrics golden: {'ok' if same else 'DIFFERS'}")
        sys.exit(0 if same else 1)
    OUT.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
