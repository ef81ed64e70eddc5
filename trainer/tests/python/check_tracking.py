#!/usr/bin/env python3
"""Reads what `avm train` / `avm evaluate` logged, with the real tools.

usage:
  check_tracking.py tensorboard <run_dir> <metrics.jsonl>
  check_tracking.py mlflow <tracking_uri> <run_id> <metrics.jsonl> <local_artifact_dir>
  check_tracking.py mlflow_model <tracking_uri> <run_id> <features.f32> <scores.f32> <n_features> <detector>
  check_tracking.py mlflow_production <tracking_uri> <detector>

tensorboard: the event accumulator finds every scalar of the metric log with the same steps and
values (float32), the final test metrics, and the ROC / confusion images as decodable PNGs.
mlflow: MlflowClient finds the run FINISHED, its hyperparameters, the full history of every
training metric (steps and values), the final metrics, and the artifacts (config, checkpoint,
evaluation plots), one of them downloaded and compared byte for byte; the experiment opens in
model-training mode and the run carries its user tag.
mlflow_model: the exported MLflow Model loads with mlflow.pyfunc and mlflow.onnx from
runs:/<run>/model, has a tensor signature of the feature count and the feature names in its
metadata, and its scores on raw features equal avm's (float32 rounding: rtol 1e-4); the run has the
training data as a dataset input; the Model Registry holds the version with avm's version tag
and the candidate alias.
mlflow_production: after `avm registry promote`, the production alias names that version.
"""
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np


def expected(jsonl):
    series = defaultdict(list)
    for line in Path(jsonl).read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            series[r["name"]].append((r["step"], r["value"]))
    assert {"train/loss", "val/loss", "train/learning_rate", "train/grad_norm"} <= set(series), set(series)
    return series


def check_tensorboard(run_dir, jsonl):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(run_dir, size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    for name, pts in expected(jsonl).items():
        got = [(e.step, e.value) for e in acc.Scalars(name)]
        assert [s for s, _ in got] == [s for s, _ in pts], (name, got[:3], pts[:3])
        assert np.array_equal(np.float32([v for _, v in got]), np.float32([v for _, v in pts])), name
    for name in ["test/auc", "test/precision", "test/recall", "test/far"]:
        assert name in tags["scalars"], (name, tags["scalars"])
        assert 0.0 <= acc.Scalars(name)[-1].value <= 1.0
    for img in ["evaluation/roc", "evaluation/confusion"]:
        assert img in tags["images"], tags["images"]
        ev = acc.Images(img)[-1]
        assert ev.width > 100 and ev.height > 100, (ev.width, ev.height)
        assert ev.encoded_image_string[:8] == b"\x89PNG\r\n\x1a\n"
    # Written as training ran: each epoch's events carry the time that epoch ended.
    wall = [e.wall_time for e in acc.Scalars("train/loss")]
    assert wall == sorted(wall) and wall[-1] > wall[0], wall
    n = len(acc.Scalars("train/loss"))
    print(f"tensorboard ok: {len(tags['scalars'])} scalar tags, train/loss {n} steps, 2 images")


def check_mlflow(uri, run_id, jsonl, local_dir):
    import tempfile

    from mlflow.tracking import MlflowClient

    c = MlflowClient(tracking_uri=uri)
    run = c.get_run(run_id)
    assert run.info.status == "FINISHED", run.info.status
    p = run.data.params
    for k in ["train.hidden", "train.learning_rate", "train.seed", "features.window_s", "split.seed"]:
        assert k in p, (k, sorted(p))
    assert json.loads(p["train.hidden"]) == [12, 6, 12], p["train.hidden"]
    for name, pts in expected(jsonl).items():
        hist = sorted((m.step, m.value) for m in c.get_metric_history(run_id, name))
        assert [s for s, _ in hist] == [s for s, _ in pts], (name, hist[:3], pts[:3])
        assert np.allclose([v for _, v in hist], [v for _, v in pts], rtol=1e-12, atol=0), name
    for name in ["test/auc", "test/recall", "test/far"]:
        assert name in run.data.metrics, sorted(run.data.metrics)
    # Sent epoch by epoch while training ran, not all at the end.
    ts = [m.timestamp for m in sorted(c.get_metric_history(run_id, "train/loss"), key=lambda m: m.step)]
    assert ts == sorted(ts) and ts[-1] > ts[0], ts
    def walk(path=None):
        out = []
        for a in c.list_artifacts(run_id, path):
            out += walk(a.path) if a.is_dir else [a.path]
        return out
    arts = set(walk())
    for a in ["config/pipeline_config.yaml", "training/best.json", "training/metrics.jsonl",
              "evaluation/metrics.json", "evaluation/roc.png", "evaluation/confusion.png"]:
        assert a in arts, (a, sorted(arts))
    with tempfile.TemporaryDirectory() as d:
        got = c.download_artifacts(run_id, "training/best.json", d)
        assert Path(got).read_bytes() == (Path(local_dir) / "best.json").read_bytes()
    exp = c.get_experiment(run.info.experiment_id)
    assert exp.tags.get("mlflow.experimentKind") == "custom_model_development", exp.tags
    assert run.data.tags.get("mlflow.user"), run.data.tags
    print(f"mlflow ok: {len(p)} params, {len(run.data.metrics)} metrics, {len(arts)} artifacts")


def check_mlflow_model(uri, run_id, features, scores, n_features, detector):
    import mlflow
    import mlflow.onnx
    import mlflow.pyfunc
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(uri)
    f = int(n_features)
    x = np.fromfile(features, dtype="<f4").reshape(-1, f)
    want = np.fromfile(scores, dtype="<f4")
    m = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    out = m.predict(x)
    got = np.asarray(out["score"], dtype=np.float32).ravel()
    assert got.shape == want.shape and np.allclose(got, want, rtol=1e-4, atol=1e-6), (got[:4], want[:4])
    sig = m.metadata.signature.inputs.to_dict()
    assert sig[0]["name"] == "features" and list(sig[0]["tensor-spec"]["shape"]) == [-1, f], sig
    meta = m.metadata.metadata
    assert len(meta["feature_names"]) == f and meta["detector"] == detector, meta.keys()
    onnx_model = mlflow.onnx.load_model(f"runs:/{run_id}/model")
    assert [i.name for i in onnx_model.graph.input] == ["features"]
    c = MlflowClient(tracking_uri=uri)
    run = c.get_run(run_id)
    ds = [d.dataset for d in run.inputs.dataset_inputs]
    assert any(d.name == f"{detector}-training-features" for d in ds), ds
    mv = c.get_model_version_by_alias(detector, "candidate")
    assert mv.tags.get("avm.version") == "1.0.0" and mv.run_id == run_id, (mv.tags, mv.run_id)
    print(f"mlflow model ok: {len(want)} scores within 1e-4 of avm's (max rel "
          f"{float(np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-12))):.2e}), registry version {mv.version}")


def check_mlflow_production(uri, detector):
    from mlflow.tracking import MlflowClient

    c = MlflowClient(tracking_uri=uri)
    prod = c.get_model_version_by_alias(detector, "production")
    cand = c.get_model_version_by_alias(detector, "candidate")
    assert prod.version == cand.version and prod.tags.get("avm.version") == "1.0.0"
    print(f"mlflow registry ok: {detector} version {prod.version} has alias production")


if __name__ == "__main__":
    if sys.argv[1] == "tensorboard":
        check_tensorboard(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "mlflow_model":
        check_mlflow_model(*sys.argv[2:8])
    elif sys.argv[1] == "mlflow_production":
        check_mlflow_production(sys.argv[2], sys.argv[3])
    else:
        check_mlflow(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])
