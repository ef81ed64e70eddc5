#!/usr/bin/env python3
"""Checks an exported detector version with the tools its consumers use.

usage: check_export.py <version_dir> <features.f32> <core_scores.f32>

- model.onnx passes onnx.checker.check_model(full_check=True); IR and opset as signed.
- ONNX Runtime (Python) on the z-scored features matches avm-core's scores (computed by the Rust
  test through the detector bundle) within the export tolerance |a-b| <= 1e-4 + 1e-4 |b|.
- scaler.pkl loads with pickle into a plain dict equal to scaler.json; thresholds.yaml loads
  with PyYAML and its thresholds are floats; signature.json's sha256s match the files.
Exits non-zero with a message on the first failure.
"""
import hashlib
import json
import pickle
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import yaml


def main() -> None:
    vdir, feats, scores = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    sig = json.loads((vdir / "signature.json").read_text())
    for name, digest in sig["artifacts_sha256"].items():
        got = hashlib.sha256((vdir / name).read_bytes()).hexdigest()
        assert got == digest, f"{name}: sha256 {got} != signature {digest}"

    model = onnx.load(str(vdir / "model.onnx"))
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version == sig["onnx_ir_version"], model.ir_version
    assert model.opset_import[0].version == sig["onnx_opset"]
    assert [i.name for i in model.graph.input] == [t["name"] for t in sig["inputs"]]
    assert [o.name for o in model.graph.output] == [t["name"] for t in sig["outputs"]]

    scaler = json.loads((vdir / "scaler.json").read_text())
    with open(vdir / "scaler.pkl", "rb") as f:
        pk = pickle.load(f)
    assert type(pk) is dict, type(pk)
    assert pk["feature_names"] == scaler["feature_names"] == [x["name"] for x in sig["features"]]
    mean = np.array(scaler["mean"], dtype=np.float32)
    std = np.array(scaler["std"], dtype=np.float32)
    assert np.array_equal(np.array(pk["mean"], dtype=np.float32), mean)
    assert np.array_equal(np.array(pk["scale"], dtype=np.float32), np.where(std == 0, 1, std))

    th = yaml.safe_load((vdir / "thresholds.yaml").read_text())
    assert isinstance(th["global"], float), th["global"]
    assert all(isinstance(v, float) for v in th["per_phase"].values()), th["per_phase"]
    assert isinstance(th["target_far"], float)

    n_feat = len(scaler["feature_names"])
    x = np.fromfile(feats, dtype="<f4").reshape(-1, n_feat)
    core = np.fromfile(scores, dtype="<f4")
    z = ((x - mean) / np.where(std == 0, np.float32(1), std)).astype(np.float32)
    sess = ort.InferenceSession(str(vdir / "model.onnx"), providers=["CPUExecutionProvider"])
    recon, score = sess.run(["reconstruction", "score"], {"features": z})
    assert recon.shape == z.shape and score.shape == (len(z),), (recon.shape, score.shape)
    bad = np.abs(score - core) > 1e-4 + 1e-4 * np.abs(core)
    assert not bad.any(), f"{bad.sum()} scores differ: max |diff| {np.abs(score - core).max()}"
    mse = ((z - recon) ** 2).mean(axis=1)
    assert np.allclose(mse, score, rtol=1e-5, atol=1e-7)
    print(f"ok: {len(z)} windows, max |ORT - avm-core| {np.abs(score - core).max():.3e}")


if __name__ == "__main__":
    main()
