"""avm in Python: the engine vibration features, detector and alert policy of the avm CLI and the
firmware, computed by the same Rust code (``avm._native``), bit for bit.

    import avm, numpy as np
    cfg = avm.FeatureConfig.from_file("configs/engine_vibration_config.yaml")
    fx = avm.Extractor(cfg)
    frames = fx.push(vib_g, rpm)             # float32 (n, channels) each; frames.features: (k, features)
    det = avm.Detector.load("MODELS/engine_vibration/1.0.0/detector.avmb")
    scores = det.score(frames.features)      # the firmware's scores

Streaming: ``push`` blocks in time order and call ``finish`` at the end of a stream; how the
stream is cut never changes a bit. Errors are ``ValueError`` with avm's own message.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import _native
from ._native import AVM_VERSION, FEATURE_SCHEMA_VERSION, PHASE_UNKNOWN

__all__ = [
    "AVM_VERSION",
    "FEATURE_SCHEMA_VERSION",
    "PHASE_UNKNOWN",
    "Alerter",
    "Detector",
    "Extractor",
    "FeatureConfig",
    "Frames",
    "Recording",
    "calibrate",
    "read_recording",
    "score",
    "windows_table",
    "write_recording",
]

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class FeatureConfig:
    """An extractor configuration and the feature schema it gives for a list of channels."""

    json: str
    channels: Tuple[str, ...]
    names: Tuple[str, ...]
    units: Tuple[str, ...]

    @staticmethod
    def from_file(path: PathLike) -> "FeatureConfig":
        """The features a pipeline config (YAML) computes, for its contract's channels."""
        j, ch, names, units = _native.config_from_file(os.fspath(path))
        return FeatureConfig(j, tuple(ch), tuple(names), tuple(units))

    @staticmethod
    def default(sample_rate_hz: int, channels: Sequence[str]) -> "FeatureConfig":
        """avm-core's default features at ``sample_rate_hz`` for ``channels``."""
        return FeatureConfig.from_json(_native.default_config(int(sample_rate_hz)), channels)

    @staticmethod
    def from_json(config_json: str, channels: Sequence[str]) -> "FeatureConfig":
        names, units = _native.feature_schema(config_json, list(channels))
        return FeatureConfig(config_json, tuple(channels), tuple(names), tuple(units))

    @property
    def settings(self) -> dict:
        """The extractor config as a dict (sample rate, window, hop, FFT, feature set...)."""
        return json.loads(self.json)


@dataclass
class Frames:
    """Windows completed by a push: one entry per window, features channel-major."""

    window_index: np.ndarray  # uint32 (k,)
    start_sample: np.ndarray  # uint64 (k,)
    valid: np.ndarray  # bool (k,): no unrepaired sample
    roc_valid: np.ndarray  # bool (k,): rates of change computed against the previous window
    features: np.ndarray  # float32 (k, features)
    quality: np.ndarray  # uint32 (k, channels, 4): gap_filled, clipped, unrepaired, speed_held

    def __len__(self) -> int:
        return int(self.window_index.shape[0])

    @staticmethod
    def concat(parts: Sequence["Frames"]) -> "Frames":
        parts = [p for p in parts if len(p)] or list(parts[:1])
        return Frames(*(np.concatenate([getattr(p, f) for p in parts]) for f in Frames.__dataclass_fields__))


class Extractor:
    """avm-core's streaming extractor (1 to 4 channels): push blocks, get the windows they close."""

    def __init__(self, config: FeatureConfig):
        self.config = config
        self._x = _native.Extractor(len(config.channels), config.json)

    def push(self, vib_g: np.ndarray, rpm: Union[np.ndarray, float]) -> Frames:
        """``vib_g``: (n, channels) in g; ``rpm``: the shaft speed each channel is referenced to,
        (n, channels), (n,) or a scalar. Converted to float32 (the core's input type)."""
        vib = np.ascontiguousarray(np.asarray(vib_g, dtype=np.float32).reshape(len(vib_g), -1))
        r = np.asarray(rpm, dtype=np.float32)
        if r.ndim == 0:
            r = np.full(vib.shape, r, dtype=np.float32)
        elif r.ndim == 1:
            r = np.repeat(r[:, None], vib.shape[1], axis=1)
        return Frames(**self._x.push(vib, np.ascontiguousarray(r)))

    def push_arrow(self, batch, vib_columns: Sequence[str], rpm_columns: Optional[Sequence[str]] = None,
                   rpm: Optional[float] = None) -> Frames:
        """A block as a pyarrow RecordBatch or Table: the vibration columns (g) in channel order,
        and per channel the speed column it is referenced to (``rpm_columns``) or one constant
        speed (``rpm``). Nulls are missing samples (NaN: gaps for the sanitiser)."""
        def col(name):
            c = batch.column(name)
            return np.asarray(c.to_numpy(zero_copy_only=False), dtype=np.float32)

        if len(vib_columns) != len(self.config.channels):
            raise ValueError(f"{len(vib_columns)} vibration columns; this extractor has {len(self.config.channels)} channels")
        vib = np.column_stack([col(c) for c in vib_columns])
        if rpm_columns is not None:
            if len(rpm_columns) != len(vib_columns):
                raise ValueError("rpm_columns must name one speed column per vibration column")
            r = np.column_stack([col(c) for c in rpm_columns])
        elif rpm is not None:
            r = float(rpm)
        else:
            raise ValueError("give rpm_columns or a constant rpm")
        return self.push(vib, r)

    def finish(self) -> Frames:
        """Ends the stream; the extractor is then ready for the next one."""
        return Frames(**self._x.finish())

    def run(self, vib_g: np.ndarray, rpm: Union[np.ndarray, float]) -> Frames:
        """A whole stream at once: ``push`` then ``finish``."""
        return Frames.concat([self.push(vib_g, rpm), self.finish()])


class Detector:
    """A detector bundle (``detector.avmb``): scaler, network, thresholds by phase, alert policy."""

    def __init__(self, bundle: bytes):
        self._d = _native.Detector(bytes(bundle))

    @staticmethod
    def load(path: PathLike) -> "Detector":
        """A bundle file, or a model version directory holding ``detector.avmb``."""
        p = Path(path)
        if p.is_dir():
            p = p / "detector.avmb"
        return Detector(p.read_bytes())

    channel_names = property(lambda self: self._d.channel_names)
    features = property(lambda self: self._d.features)
    threshold = property(lambda self: self._d.threshold)
    version = property(lambda self: self._d.version)
    checksum = property(lambda self: self._d.checksum)
    phases = property(lambda self: self._d.phases)
    alert_policy = property(lambda self: self._d.alert_policy)

    @property
    def feature_config(self) -> FeatureConfig:
        """The features this detector was trained on, for its channels."""
        return FeatureConfig.from_json(self._d.config_json, self.channel_names)

    def phase_code(self, name: str) -> int:
        """The phase's code in the bundle's table, or ``PHASE_UNKNOWN``."""
        c = self._d.phase_code(name)
        return PHASE_UNKNOWN if c is None else int(c)

    def _x(self, features) -> np.ndarray:
        x = np.asarray(features, dtype=np.float32)
        if x.ndim == 1:
            x = x.reshape(1, -1)  # one window
        if x.ndim != 2:
            raise ValueError(f"features must be (n, {self.features}); got shape {x.shape}")
        return np.ascontiguousarray(x)

    def scale(self, features) -> np.ndarray:
        """z-scored features, float32 (n, features)."""
        return self._d.scale(self._x(features))

    def score(self, features) -> np.ndarray:
        """Anomaly scores (reconstruction MSE of the scaled features), float32 (n,)."""
        return self._d.score(self._x(features))

    def assess(self, features, valid, window_index=None, phase=None) -> Dict[str, np.ndarray]:
        """Scores and verdicts: ``phase`` is per window a code or a phase name (unknown: the global
        threshold). Returns score, threshold, judged, alarm and phase arrays."""
        x = self._x(features)
        n = x.shape[0]
        wi = np.arange(n, dtype=np.uint32) if window_index is None else np.asarray(window_index, dtype=np.uint32)
        if phase is None:
            codes = np.full(n, PHASE_UNKNOWN, dtype=np.uint8)
        else:
            codes = np.asarray([self.phase_code(p) if isinstance(p, str) else int(p) for p in phase], dtype=np.uint8)
        s = self._d.score(x)
        out = self._d.judge(wi, s, np.asarray(valid, dtype=bool), codes)
        out["score"] = s
        return out


class Alerter:
    """The bundle's alert policy over one flight's verdicts (reset between flights)."""

    def __init__(self, detector: Detector):
        self._a = _native.Alerter(detector._d)

    def step(self, window_index: int, score: float, threshold: float, valid: bool, judged: bool,
             alarm: bool, phase: int = PHASE_UNKNOWN) -> Optional[dict]:
        return self._a.step(int(window_index), float(score), float(threshold), bool(valid), bool(judged),
                            bool(alarm), int(phase))

    def run(self, window_index, verdicts: Mapping[str, np.ndarray], valid) -> List[dict]:
        """Every event of one flight, from ``Detector.assess``'s output."""
        events = []
        for i, w in enumerate(np.asarray(window_index)):
            e = self.step(w, verdicts["score"][i], verdicts["threshold"][i], valid[i], verdicts["judged"][i],
                          verdicts["alarm"][i], verdicts["phase"][i])
            if e is not None:
                events.append(e)
        return events

    def reset(self) -> None:
        self._a.reset()


@dataclass
class Recording:
    """A recording in avm's format: metadata and per channel (times_s float64, values)."""

    meta: dict
    channels: Dict[str, Tuple[np.ndarray, Union[np.ndarray, List[str]]]] = field(default_factory=dict)


def read_recording(path: PathLike) -> Recording:
    """Reads a recording (Parquet or CSV + sidecar), checking its CRC-32 and metadata."""
    meta, chans = _native.read_recording(os.fspath(path))
    return Recording(json.loads(meta), {name: (t, v) for name, t, v in chans})


def write_recording(path: PathLike, recording: Recording) -> None:
    """Writes ``recording`` as avm Parquet (CRC-32 computed); read back and checked before it
    replaces ``path``. The metadata's ``channels`` give the column order."""
    order = [c["name"] for c in recording.meta.get("channels", [])]
    chans = []
    for name in order:
        if name not in recording.channels:
            raise ValueError(f"channel {name!r} is in the metadata but has no data")
        t, v = recording.channels[name]
        t = np.ascontiguousarray(np.asarray(t, dtype=np.float64))
        if not isinstance(v, list):
            v = np.ascontiguousarray(np.asarray(v, dtype=np.float32))
        chans.append((name, t, v))
    extra = set(recording.channels) - set(order)
    if extra:
        raise ValueError(f"channels {sorted(extra)} have data but are not in the metadata")
    _native.write_recording(os.fspath(path), json.dumps(recording.meta), chans)


def windows_table(recording: PathLike, config: PathLike, labels: Optional[PathLike] = None):
    """The window rows ``avm preprocess`` computes for one recording under a pipeline config, as
    a pyarrow Table with the window table's columns (ids, labels, quality counts, features)."""
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory(prefix="avm-windows-") as d:
        out = os.path.join(d, "windows.parquet")
        _native.write_windows(os.fspath(recording), os.fspath(config), out,
                              None if labels is None else os.fspath(labels))
        return pq.read_table(out)


def score(model: str, recordings: Sequence[PathLike], out: PathLike, labels: Optional[PathLike] = None,
          registry: Optional[PathLike] = None, deadline_s: float = 60.0) -> dict:
    """``avm score``: writes its outputs (scores.parquet/csv, alerts.csv, flights.json/csv) to
    ``out`` and returns the flight summaries."""
    j = _native.score_recordings(str(model), [os.fspath(r) for r in recordings], os.fspath(out),
                                 None if labels is None else os.fspath(labels),
                                 None if registry is None else os.fspath(registry), float(deadline_s))
    return json.loads(j)


def calibrate(normal_scores, target_far: float, method: str = "conformal", confidence: float = 0.9) -> dict:
    """A threshold from normal calibration scores by avm's rule (see the trainer's calibration)."""
    t, n, above, guarantee = _native.calibrate([float(s) for s in np.asarray(normal_scores).ravel()],
                                               float(target_far), method, float(confidence))
    return {"threshold": t, "n": n, "above": above, "guarantee": guarantee}
