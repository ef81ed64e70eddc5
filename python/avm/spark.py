"""avm on Spark: featurise or score a data lake of recordings, one flight per task.

    python -m avm.spark featurize --recordings LAKE --config CONFIG.yaml --out OUT [--labels L.csv]
    python -m avm.spark score     --recordings LAKE --model MODEL_DIR     --out OUT [--labels L.csv]
    options: --master local[2] (default: what spark-submit gives, else local[*]); --app-name NAME

``LAKE`` is a directory (local, or any path every executor can open: a shared mount, DBFS's
``/dbfs/...``) holding avm recordings as Parquet, one file per flight in any layout
(``recordings/<flight>.parquet`` as avm writes them, or ``flight_id=<id>/<file>.parquet``).
Each flight is one stream: one Spark task reads the whole file and runs avm's own code on it
(``avm.windows_table`` = ``avm preprocess``'s window rows; ``avm.score`` = ``avm score``), and
``mapInArrow`` hands the rows back to Spark, which writes ``OUT`` as Parquet partitioned by
``flight_id``. The values are avm's, bit for bit; the column types are Spark's (unsigned integers
widen to signed: window_index and the quality counts to bigint, label and phase_code to int).

The trainer stays on one machine: its input is this feature table (kilobytes per flight hour).
"""
from __future__ import annotations

import argparse
import glob
import os
import sys
import time
from typing import Iterator, List, Optional, Sequence

import pyarrow as pa

# The window table's fixed columns and their Spark types (formats/windows.rs in the trainer).
_WINDOW_FIXED = [
    ("flight_id", pa.string()), ("aircraft_id", pa.string()), ("engine_id", pa.string()),
    ("window_index", pa.int64()), ("start_s", pa.float64()), ("end_s", pa.float64()),
    ("phase", pa.string()), ("label", pa.int32()), ("fault_type", pa.string()), ("severity", pa.float64()),
    ("sensor_event", pa.string()), ("valid", pa.bool_()), ("roc_valid", pa.bool_()),
]
_QUALITY = ["gap_filled", "clipped", "unrepaired", "speed_held"]
# avm score's per-window columns (formats/scores.rs).
_SCORES = [
    ("flight_id", pa.string()), ("window_index", pa.int64()), ("start_s", pa.float64()), ("end_s", pa.float64()),
    ("phase", pa.string()), ("phase_code", pa.int32()), ("score", pa.float32()), ("threshold", pa.float32()),
    ("valid", pa.bool_()), ("judged", pa.bool_()), ("alarm", pa.bool_()), ("alert", pa.bool_()),
    ("label", pa.int32()), ("fault_type", pa.string()), ("severity", pa.float64()), ("sensor_event", pa.string()),
]


def find_recordings(lake: str) -> List[str]:
    """Every Parquet recording under ``lake`` (a directory or a glob), sorted."""
    if os.path.isdir(lake):
        paths = glob.glob(os.path.join(lake, "**", "*.parquet"), recursive=True)
    else:
        paths = glob.glob(lake, recursive=True)
    paths = sorted(os.path.abspath(p) for p in paths if not os.path.basename(p).startswith("."))
    if not paths:
        raise ValueError(f"{lake}: no .parquet recordings found")
    return paths


def windows_schema(config: str) -> pa.Schema:
    """The Arrow schema (Spark's types) of the window table for a pipeline config."""
    import avm

    fc = avm.FeatureConfig.from_file(config)
    fields = [pa.field(n, t) for n, t in _WINDOW_FIXED]
    fields += [pa.field(f"{c}.{q}", pa.int64()) for c in fc.channels for q in _QUALITY]
    fields += [pa.field(n, pa.float32()) for n in fc.names]
    return pa.schema(fields)


def scores_schema() -> pa.Schema:
    return pa.schema([pa.field(n, t) for n, t in _SCORES])


def _spark_schema(schema: pa.Schema):
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)


def _session(master: Optional[str], app_name: str):
    from pyspark.sql import SparkSession

    b = SparkSession.builder.appName(app_name)
    if master:
        b = b.master(master)
    elif not os.environ.get("SPARK_MASTER") and "spark.master" not in os.environ.get("PYSPARK_SUBMIT_ARGS", ""):
        b = b.master("local[*]")
    return b.getOrCreate()


def _paths_frame(spark, paths: Sequence[str]):
    # One path per partition: one flight per task, whatever the cluster's default parallelism.
    rdd = spark.sparkContext.parallelize([(p,) for p in paths], numSlices=len(paths))
    return spark.createDataFrame(rdd, "path string")


def featurize(spark, lake: str, config: str, out: str, labels: Optional[str] = None) -> dict:
    """Writes the window table of every recording under ``lake`` to ``out`` (Parquet,
    partitioned by flight_id); returns the counts and wall time."""
    paths = find_recordings(lake)
    schema = windows_schema(config)
    config = os.path.abspath(config)
    labels = None if labels is None else os.path.abspath(labels)

    def per_flight(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import avm

        for b in batches:
            for p in b.column("path").to_pylist():
                t = avm.windows_table(p, config, labels)
                yield from t.cast(schema).to_batches()

    t0 = time.perf_counter()
    df = _paths_frame(spark, paths).mapInArrow(per_flight, _spark_schema(schema))
    df.write.mode("overwrite").partitionBy("flight_id").parquet(out)
    return {"recordings": len(paths), "wall_s": time.perf_counter() - t0, "out": out}


def score(spark, lake: str, model: str, out: str, labels: Optional[str] = None, deadline_s: float = 60.0) -> dict:
    """``avm score`` per flight on Spark: writes every window's score, verdict and alert state
    to ``out`` (Parquet, partitioned by flight_id)."""
    paths = find_recordings(lake)
    schema = scores_schema()
    model = os.path.abspath(model)
    labels = None if labels is None else os.path.abspath(labels)

    def per_flight(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import tempfile

        import avm
        import pyarrow.parquet as pq

        for b in batches:
            for p in b.column("path").to_pylist():
                with tempfile.TemporaryDirectory(prefix="avm-score-") as d:
                    avm.score(model, [p], os.path.join(d, "out"), labels=labels, deadline_s=deadline_s)
                    t = pq.read_table(os.path.join(d, "out", "scores.parquet"))
                yield from t.cast(schema).to_batches()

    t0 = time.perf_counter()
    df = _paths_frame(spark, paths).mapInArrow(per_flight, _spark_schema(schema))
    df.write.mode("overwrite").partitionBy("flight_id").parquet(out)
    return {"recordings": len(paths), "wall_s": time.perf_counter() - t0, "out": out}


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m avm.spark", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("featurize", "score"):
        p = sub.add_parser(name)
        p.add_argument("--recordings", required=True, help="directory (or glob) of Parquet recordings")
        p.add_argument("--out", required=True, help="output directory (Parquet, partitioned by flight_id)")
        p.add_argument("--labels", help="labels CSV (avm's format)")
        p.add_argument("--master", help="Spark master (default: spark-submit's, else local[*])")
        p.add_argument("--app-name", default=f"avm-{name}")
        if name == "featurize":
            p.add_argument("--config", required=True, help="pipeline config (YAML)")
        else:
            p.add_argument("--model", required=True, help="model version directory (detector.avmb, contract)")
            p.add_argument("--deadline-s", type=float, default=60.0)
    a = ap.parse_args(argv)
    try:
        find_recordings(a.recordings)  # fail before a JVM starts
    except ValueError as e:
        print(f"avm.spark: {e}", file=sys.stderr)
        return 1
    spark = _session(a.master, a.app_name)
    try:
        if a.cmd == "featurize":
            r = featurize(spark, a.recordings, a.config, a.out, a.labels)
        else:
            r = score(spark, a.recordings, a.model, a.out, a.labels, a.deadline_s)
    except Exception as e:  # avm's ValueError, or a task's error as Spark reports it
        print(f"avm.spark: {str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}", file=sys.stderr)
        return 1
    finally:
        spark.stop()
    print(f"avm.spark {a.cmd}: {r['recordings']} recordings in {r['wall_s']:.1f} s -> {r['out']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
