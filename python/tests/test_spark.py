"""The Spark job in local mode (pyspark, Java from Debian) on the walkthrough's recordings: its
partitioned output equals the window table `avm preprocess` wrote and the scores `avm score`
wrote, value for value; the wall times with 1 and 2 executor cores go to
target/spark_timing.json (README's figures)."""
import json
import os
import time

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from avm import spark as avm_spark

from conftest import REPO


@pytest.fixture(scope="module")
def session_factory():
    from pyspark.sql import SparkSession

    def make(master):
        return (SparkSession.builder.master(master).appName("avm-test")
                .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false").config("spark.sql.shuffle.partitions", "2")
                .getOrCreate())
    return make


def read_partitioned(path) -> pa.Table:
    t = ds.dataset(str(path), format="parquet", partitioning="hive").to_table()
    t = t.set_column(t.schema.get_field_index("flight_id"), "flight_id", t["flight_id"].cast(pa.string()))
    return t.sort_by([("flight_id", "ascending"), ("window_index", "ascending")])


def same_values(got: pa.Table, want: pa.Table):
    want = want.sort_by([("flight_id", "ascending"), ("window_index", "ascending")])
    assert sorted(got.column_names) == sorted(want.column_names)
    assert got.num_rows == want.num_rows > 0
    for name in want.column_names:
        a, b = got[name], want[name]
        if pa.types.is_floating(b.type):
            x, y = a.to_numpy(), b.to_numpy()
            assert x.dtype == y.dtype and np.array_equal(x.view(f"u{x.itemsize}"), y.view(f"u{y.itemsize}")), name
        else:
            assert a.to_pylist() == b.to_pylist(), name


def test_spark_featurize_and_score_equal_avm(work, processed, model_dir, tmp_path, session_factory):
    lake = work / "DATA" / "raw" / "recordings"
    config, labels = work / "config.yaml", work / "DATA" / "raw" / "labels.csv"
    timing = {}
    for cores in (1, 2):
        spark = session_factory(f"local[{cores}]")
        try:
            spark.range(1).count()  # the JVM and the session up before the clock starts
            t0 = time.perf_counter()
            r = avm_spark.featurize(spark, str(lake), str(config), str(tmp_path / f"w{cores}"), str(labels))
            timing[f"featurize_local_{cores}_s"] = time.perf_counter() - t0
        finally:
            spark.stop()
        same_values(read_partitioned(tmp_path / f"w{cores}"), processed)
    spark = session_factory("local[2]")
    try:
        new = work / "new" / "recordings"
        t0 = time.perf_counter()
        avm_spark.score(spark, str(new), str(model_dir), str(tmp_path / "s"), str(work / "new" / "labels.csv"))
        timing["score_local_2_s"] = time.perf_counter() - t0
    finally:
        spark.stop()
    same_values(read_partitioned(tmp_path / "s"), pq.read_table(work / "scores" / "scores.parquet"))
    m = json.loads((work / "DATA" / "processed" / "manifest.json").read_text())
    hours = sum(x["samples"] for x in m["recordings"]) / m["sample_rate_hz"] / 3600
    timing.update(recordings=r["recordings"], windows=processed.num_rows, vibration_hours=hours,
                  channels=len(m["channels"]), sample_rate_hz=m["sample_rate_hz"])
    out = REPO / "target" / "spark_timing.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(timing, indent=1))
    print("spark timing:", timing)


def test_cli_reports_a_missing_lake(tmp_path):
    assert avm_spark.main(["featurize", "--recordings", str(tmp_path / "nothing"), "--config", "x.yaml",
                           "--out", str(tmp_path / "o"), "--master", "local[1]"]) == 1
