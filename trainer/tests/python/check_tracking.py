#!/usr/bin/env python3
"""Reads what `avm train` / `avm evaluate` logged, with the real tools.

usage:
  check_tracking.py tensorboard <run_dir> <metrics.jsonl>
  check_tracking.py mlflow <tracking_uri> <run_id> <metrics.jsonl> <local_artifact_dir>

tensorboard: the event accumulator finds every scalar of the metric log with the same steps and
values (float32), the final test metrics, and the ROC / confusion images as decodable PNGs.
mlflow: MlflowClient finds the run FINISHED, its hyperparameters, the full history of every
training metric (steps and values), the final metrics, and the artifacts (config, checkpoint,
evaluation plots), one of them downloaded and compared byte for byte.
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
    print(f"mlflow ok: {len(p)} params, {len(run.data.metrics)} metrics, {len(arts)} artifacts")


if __name__ == "__main__":
    if sys.argv[1] == "tensorboard":
        check_tensorboard(sys.argv[2], sys.argv[3])
    else:
        check_mlflow(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])
