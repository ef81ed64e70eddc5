"""A scikit-learn outlier detector around an avm detector bundle, so notebook users can put avm's
detector next to their own models on the same feature table.

    from avm.sklearn import AvmDetector
    d = AvmDetector("MODELS/engine_vibration/1.0.0").fit(X_normal)   # X: avm's feature columns
    d.predict(X_test)            # +1 normal, -1 anomaly (scikit-learn's outlier convention)
    d.decision_function(X_test)  # threshold - score: negative = anomaly
    d.score_samples(X_test)      # -score: higher = more normal

The network and scaler are the bundle's (avm trains them; ``fit`` does not). ``fit`` checks the
columns against the bundle's feature names and, with ``recalibrate=True`` (the default),
calibrates the threshold on ``X`` — normal windows — by avm's rule (``calibration``: conformal,
tolerance or empirical, at ``target_far``); with ``recalibrate=False`` the bundle's global
threshold is kept.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils.validation import check_is_fitted

from . import Detector, calibrate


class AvmDetector(OutlierMixin, BaseEstimator):
    def __init__(self, model: Optional[str] = None, target_far: float = 0.05, calibration: str = "conformal",
                 confidence: float = 0.9, recalibrate: bool = True):
        self.model = model
        self.target_far = target_far
        self.calibration = calibration
        self.confidence = confidence
        self.recalibrate = recalibrate

    def _matrix(self, X) -> np.ndarray:
        names = getattr(X, "columns", None)
        if names is not None and hasattr(self, "feature_names_in_"):
            got = [str(c) for c in names]
            want = list(self.feature_names_in_)
            if got != want:
                diff = [i for i, (a, b) in enumerate(zip(got, want)) if a != b]
                where = f"column {diff[0]}: {got[diff[0]]!r}, expected {want[diff[0]]!r}" if diff else \
                    f"{len(got)} columns, expected {len(want)}"
                raise ValueError(f"X's columns are not the detector's features in its order ({where})")
        x = np.asarray(X, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.detector_.features:
            raise ValueError(f"X has shape {x.shape}; the detector takes (n, {self.detector_.features})")
        return x

    def fit(self, X, y=None):
        if self.model is None:
            raise ValueError("AvmDetector(model=...): give a detector.avmb or a model version directory")
        self.detector_ = Detector.load(self.model)
        self.feature_names_in_ = np.asarray(self.detector_.feature_config.names, dtype=object)
        x = self._matrix(X)
        self.n_features_in_ = x.shape[1]
        if self.recalibrate:
            c = calibrate(self.detector_.score(x).astype(np.float64), self.target_far, self.calibration,
                          self.confidence)
            self.threshold_ = float(c["threshold"])
            self.calibration_ = c
        else:
            self.threshold_ = float(self.detector_.threshold)
            self.calibration_ = None
        # OutlierMixin's convention: decision_function = score_samples - offset_.
        self.offset_ = -self.threshold_
        return self

    def score_samples(self, X) -> np.ndarray:
        """``-score``: higher is more normal (scikit-learn's convention)."""
        check_is_fitted(self, "threshold_")
        return -self.detector_.score(self._matrix(X)).astype(np.float64)

    def decision_function(self, X) -> np.ndarray:
        """``threshold - score``: negative for windows avm would alarm on."""
        return self.score_samples(X) - self.offset_

    def predict(self, X) -> np.ndarray:
        """+1 normal, -1 anomaly (``score > threshold``, avm's alarm rule)."""
        return np.where(self.decision_function(X) < 0, -1, 1)
