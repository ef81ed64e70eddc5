"""The streaming extractor, detector and alert policy against the firmware: the Rust firmware's
snapshot (tests/snapshots/firmware_demo.txt, the exact bits it printed under QEMU) on the
embedded flight segment, decoded here with numpy from its 16-bit file."""
import struct

import numpy as np
import pytest

import avm

from conftest import REPO

DATA = REPO / "firmware-example" / "data"


def segment():
    b = (DATA / "flight_segment.avmq").read_bytes()
    magic, ch, flags, n, lsb = struct.unpack_from("<4sHHIf", b, 0)
    assert magic == b"AVMQ" and ch == 2 and flags == 1
    rec = np.dtype([("c0", "<i2"), ("r0", "<u2"), ("c1", "<i2"), ("r1", "<u2"), ("phase", "u1")])
    s = np.frombuffer(b, dtype=rec, offset=16, count=n)
    lsb = np.float32(lsb)
    vib = np.stack([s["c0"].astype(np.float32) * lsb, s["c1"].astype(np.float32) * lsb], axis=1)
    rpm = np.stack([s["r0"], s["r1"]], axis=1).astype(np.float32)
    return vib, rpm, s["phase"].copy()


def snapshot():
    windows, alerts = [], []
    for line in (REPO / "tests" / "snapshots" / "firmware_demo.txt").read_text().splitlines():
        p = line.split(" ")
        if p[0] == "W":
            windows.append({
                "index": int(p[1]), "valid": p[2] == "v1", "phase": int(p[4][1:]), "judged": p[5] == "j1",
                "alarm": p[6] == "a1", "score": int(p[7][1:], 16),
                "features": [int(h, 16) for h in p[8][1:].split(",")],
            })
        elif p[0] == "A":
            alerts.append({"kind": "raised" if p[1] == "R" else "cleared", "window_index": int(p[2]),
                           "count": int(p[3][1:].split("/")[0]), "of": int(p[3].split("/")[1]),
                           "raised_window": int(p[4][1:]), "score": int(p[5][1:], 16),
                           "threshold": int(p[6][1:], 16), "peak_score": int(p[7][1:], 16)})
    return windows, alerts


def bits(x):
    return np.asarray(x, dtype=np.float32).view(np.uint32)


@pytest.mark.parametrize("blocks", ["one", "random"])
def test_features_scores_and_alerts_equal_the_firmware(blocks):
    det = avm.Detector.load(DATA / "detector.avmb")
    vib, rpm, phase = segment()
    fx = avm.Extractor(det.feature_config)
    if blocks == "one":
        frames = fx.run(vib, rpm)
    else:
        rng = np.random.default_rng(7)
        cuts = np.sort(rng.choice(np.arange(1, len(vib)), size=40, replace=False))
        parts = [fx.push(v, r) for v, r in zip(np.split(vib, cuts), np.split(rpm, cuts))]
        frames = avm.Frames.concat(parts + [fx.finish()])
    want, want_alerts = snapshot()
    assert len(frames) == len(want) >= 5
    for i, w in enumerate(want):
        assert frames.window_index[i] == w["index"]
        assert bool(frames.valid[i]) == w["valid"]
        assert bits(frames.features[i]).tolist() == w["features"], f"window {i}: features"
    # The window's phase: the majority of its samples' codes (what the firmware's tally says).
    cfg = det.feature_config.settings
    hop, win = cfg["hop_len_samples"], cfg["window_len_samples"]
    codes = []
    for k in frames.window_index:
        c = np.bincount(phase[k * hop:k * hop + win], minlength=256)
        codes.append(int(np.argmax(c)))  # ties to the lower code, as the core
    assert codes == [w["phase"] for w in want]
    v = det.assess(frames.features, frames.valid, frames.window_index, codes)
    assert bits(v["score"]).tolist() == [w["score"] for w in want]
    assert v["alarm"].tolist() == [w["alarm"] for w in want]
    assert v["judged"].tolist() == [w["judged"] for w in want]
    events = avm.Alerter(det).run(frames.window_index, v, frames.valid)
    got = [{**e, "score": int(bits(e["score"])), "threshold": int(bits(e["threshold"])),
            "peak_score": int(bits(e["peak_score"]))} for e in events]
    assert got == want_alerts and got, "alert events"


def test_arrow_blocks_give_the_numpy_bits():
    import pyarrow as pa

    det = avm.Detector.load(DATA / "detector.avmb")
    vib, rpm, _ = segment()
    want = avm.Extractor(det.feature_config).run(vib, rpm)
    fx = avm.Extractor(det.feature_config)
    t = pa.table({"fan": vib[:, 0], "core": vib[:, 1], "n1": rpm[:, 0], "n2": rpm[:, 1]})
    parts = [fx.push_arrow(b, ["fan", "core"], ["n1", "n2"]) for b in t.to_batches(max_chunksize=5000)]
    got = avm.Frames.concat(parts + [fx.finish()])
    assert np.array_equal(bits(got.features), bits(want.features))


def test_bad_input_is_refused_with_the_rule():
    det = avm.Detector.load(DATA / "detector.avmb")
    fx = avm.Extractor(det.feature_config)
    with pytest.raises(ValueError, match="3 columns; this extractor has 2 channels"):
        fx.push(np.zeros((10, 3), np.float32), np.zeros((10, 3), np.float32))
    with pytest.raises(ValueError, match="checksum mismatch"):
        b = bytearray((DATA / "detector.avmb").read_bytes())
        b[200] ^= 1
        avm.Detector(bytes(b))
    with pytest.raises(ValueError, match="features have 3 columns; the detector takes 66"):
        det.score(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="phase"):
        det.assess(np.zeros((1, 66), np.float32), [True], [0], [200])
