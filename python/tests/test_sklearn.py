"""The scikit-learn wrapper: avm's scores and thresholds under scikit-learn's outlier conventions,
the calibration against numpy's order statistics, and next to an IsolationForest."""
import math

import numpy as np
import pyarrow.compute as pc
import pytest
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score

import avm
from avm.sklearn import AvmDetector


def features(processed, names, mask):
    t = processed.filter(mask)
    return np.stack([t[n].to_numpy() for n in names], axis=1), t


def test_fit_predict_follow_avm_and_sklearn_conventions(processed, model_dir):
    det = avm.Detector.load(model_dir)
    names = det.feature_config.names
    clean = pc.and_(pc.and_(pc.equal(processed["label"], 0), processed["valid"]),
                    pc.equal(processed["sensor_event"], "none"))
    xn, _ = features(processed, names, clean)
    x_all, t_all = features(processed, names, processed["valid"])
    d = AvmDetector(model=str(model_dir), target_far=0.05, calibration="conformal").fit(xn)
    s = np.sort(det.score(xn).astype(np.float64))
    r = math.ceil((len(s) + 1) * (1 - 0.05))  # split conformal: the r-th smallest score
    assert d.threshold_ == s[r - 1]
    scores = det.score(x_all).astype(np.float64)
    assert np.array_equal(d.score_samples(x_all), -scores)
    assert np.array_equal(d.predict(x_all), np.where(scores > d.threshold_, -1, 1))
    assert np.all((d.decision_function(x_all) < 0) == (scores > d.threshold_))
    kept = AvmDetector(model=str(model_dir), recalibrate=False).fit(xn)
    assert kept.threshold_ == np.float32(det.threshold)
    # Next to a scikit-learn model on the same features: both rank the engine faults.
    y = t_all["label"].to_numpy()
    iso = IsolationForest(random_state=0).fit(xn)
    auc_avm = roc_auc_score(y, -d.score_samples(x_all))
    auc_iso = roc_auc_score(y, -iso.score_samples(x_all))
    print(f"ROC AUC on the walkthrough's windows: avm {auc_avm:.3f}, IsolationForest {auc_iso:.3f}")
    assert auc_avm > 0.5


def test_wrong_columns_are_refused(processed, model_dir):
    det = avm.Detector.load(model_dir)
    names = list(det.feature_config.names)
    t = processed.select(names[::-1]).to_pandas()
    with pytest.raises(ValueError, match="not the detector's features in its order"):
        AvmDetector(model=str(model_dir)).fit(t)
    with pytest.raises(ValueError, match=r"the detector takes \(n, \d+\)"):
        AvmDetector(model=str(model_dir)).fit(np.zeros((20, 3)))
