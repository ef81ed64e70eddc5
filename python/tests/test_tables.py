"""The package against the avm CLI's own outputs in the walkthrough's work directory: the window
table `avm preprocess` wrote, the scores `avm score` wrote, and recordings read and written."""
import glob
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import avm


def bits_equal(a: pa.ChunkedArray, b: pa.ChunkedArray) -> bool:
    if pa.types.is_floating(a.type):
        x, y = a.to_numpy(), b.to_numpy()
        return x.dtype == y.dtype and np.array_equal(x.view(f"u{x.itemsize}"), y.view(f"u{y.itemsize}"))
    return a.equals(b)


def rows_of(table: pa.Table, flight: str) -> pa.Table:
    return table.filter(pc.equal(table["flight_id"], flight))


def test_windows_table_is_what_avm_preprocess_wrote(work, recordings, processed):
    config, labels = work / "config.yaml", work / "DATA" / "raw" / "labels.csv"
    fc = avm.FeatureConfig.from_file(config)
    assert list(fc.names) == [n for n in processed.column_names if n in set(fc.names)]
    seen = 0
    for path in recordings:
        t = avm.windows_table(path, config, labels)
        assert t.column_names == processed.column_names
        want = rows_of(processed, t["flight_id"][0].as_py())
        assert t.num_rows == want.num_rows > 0
        for name in t.column_names:
            assert bits_equal(t[name], want[name]), f"{path}: column {name}"
        seen += t.num_rows
    assert seen == processed.num_rows


def test_score_is_avm_score(work, model_dir, tmp_path):
    new = sorted(glob.glob(str(work / "new" / "recordings" / "*.parquet")))
    labels = work / "new" / "labels.csv"
    cli = pq.read_table(work / "scores" / "scores.parquet")
    summary = avm.score("test_cell@latest", new, tmp_path / "out", labels=labels, registry=work / "REGISTRY")
    got = pq.read_table(tmp_path / "out" / "scores.parquet")
    assert got.equals(cli)
    assert [f["flight_id"] for f in summary["flights"]] == [
        f["flight_id"] for f in json.loads((work / "scores" / "flights.json").read_text())["flights"]]
    # The same through the streaming pieces: window rows, Detector.assess by phase name, Alerter.
    det = avm.Detector.load(model_dir)
    alerts = pq.read_table(work / "scores" / "scores.parquet")
    for path in new:
        t = avm.windows_table(path, work / "config.yaml", labels)
        flight = t["flight_id"][0].as_py()
        want = rows_of(alerts, flight)
        x = np.stack([t[n].to_numpy() for n in det.feature_config.names], axis=1)
        v = det.assess(x, t["valid"].to_numpy(), t["window_index"].to_numpy(), t["phase"].to_pylist())
        assert np.array_equal(v["score"].view(np.uint32), want["score"].to_numpy().view(np.uint32)), flight
        assert np.array_equal(v["threshold"], want["threshold"].to_numpy())
        assert v["alarm"].tolist() == want["alarm"].to_pylist()
        assert v["judged"].tolist() == want["judged"].to_pylist()
        assert v["phase"].tolist() == want["phase_code"].to_pylist()
        # An alert is up after a window from its raising to its clearing.
        up, state = [], False
        events = {e["window_index"]: e["kind"] for e in avm.Alerter(det).run(t["window_index"].to_numpy(), v,
                                                                               t["valid"].to_numpy())}
        for w in t["window_index"].to_pylist():
            state = {"raised": True, "cleared": False}.get(events.get(w), state)
            up.append(state)
        assert up == want["alert"].to_pylist(), flight


def test_recordings_round_trip_and_refusals(recordings, tmp_path, work):
    r = avm.read_recording(recordings[0])
    assert r.meta["format"] == "avm-recording" and r.channels
    out = tmp_path / "copy.parquet"
    avm.write_recording(out, r)
    back = avm.read_recording(out)
    assert back.meta == r.meta  # the same content: the same CRC-32
    for name, (t, v) in r.channels.items():
        t2, v2 = back.channels[name]
        assert np.array_equal(t, t2)
        if isinstance(v, list):
            assert v == v2
        else:
            assert np.array_equal(v.view(np.uint32), v2.view(np.uint32))
    a = avm.windows_table(recordings[0], work / "config.yaml")
    b = avm.windows_table(out, work / "config.yaml")
    assert a.drop(["flight_id"]).equals(b.drop(["flight_id"]))
    # Times that go backwards: refused, naming the channel; nothing written.
    name = next(n for n, (_, v) in r.channels.items() if not isinstance(v, list))
    t, v = r.channels[name]
    bad = avm.Recording(dict(r.meta), dict(r.channels))
    bad.channels[name] = (t[::-1].copy(), v)
    with pytest.raises(ValueError, match=f"channel {name}: times_s must be finite and strictly increasing"):
        avm.write_recording(tmp_path / "bad.parquet", bad)
    assert not (tmp_path / "bad.parquet").exists()
    # An id that would write outside the data directory: refused by avm's reader, nothing left.
    evil = avm.Recording(dict(r.meta, flight_id="../escape"), dict(r.channels))
    with pytest.raises(ValueError, match="flight_id"):
        avm.write_recording(tmp_path / "evil.parquet", evil)
    assert not (tmp_path / "evil.parquet").exists()
    assert not list(tmp_path.glob(".avm-recording-*")), "no temporary file left behind"
