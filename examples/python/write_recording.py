"""Writes an avm recording (format 2, docs/recording.schema.json) with pyarrow: the way to
bring data from Python without `avm import`, and to save a recording again after editing it.

    python3 examples/python/write_recording.py OUT.parquet

README ("Recordings from Python") explains each step; trainer/tests/python_recording.rs runs
this file and reads its output with avm.
"""
import json
import sys
import zlib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def content_crc32(table, channels):
    """avm's content checksum: per channel in metadata order, the times of its rows (float64
    little-endian) then its values (float32 little-endian; text as UTF-8 plus a NUL byte)."""
    crc = 0
    for ch in channels:
        col = table.column(ch["name"])
        valid = col.is_valid()
        times = table.column("time_s").filter(valid).to_numpy().astype("<f8")
        crc = zlib.crc32(times.tobytes(), crc)
        values = col.filter(valid)
        if pa.types.is_string(values.type):
            crc = zlib.crc32(b"".join(s.encode() + b"\0" for s in values.to_pylist()), crc)
        else:
            crc = zlib.crc32(values.to_numpy().astype("<f4").tobytes(), crc)
    return crc


def write_recording(path, table, meta):
    """Stores `meta` (with a fresh content_crc32) in the file; Parquet page checksums on."""
    meta = dict(meta, content_crc32=content_crc32(table, meta["channels"]))
    table = table.replace_schema_metadata({"avm.recording": json.dumps(meta)})
    pq.write_table(table, path, write_page_checksum=True)


if __name__ == "__main__":
    # 90 s of one engine in cruise, shaped as configs/contracts/engine_vibration.yaml asks.
    fs, seconds = 2048.0, 90.0
    n = np.arange(int(fs * seconds))
    t = n / fs                                                  # one row per vibration sample
    speed = lambda rpm: np.where(n % 128 == 0, rpm, np.nan)     # 16 Hz: every 128th row
    table = pa.table({
        "time_s": pa.array(t, pa.float64()),
        "vib_fan": pa.array(0.5 * np.sin(2 * np.pi * 80.0 * t), pa.float32()),   # g
        "vib_core": pa.array(0.2 * np.sin(2 * np.pi * 200.0 * t), pa.float32()),  # g
        "n1_rpm": pa.array(speed(4800.0), pa.float32(), from_pandas=True),  # NaN -> null
        "n2_rpm": pa.array(speed(12000.0), pa.float32(), from_pandas=True),
        "phase": pa.array(np.where(n % 2048 == 0, "cruise", None), pa.string()),  # 1 Hz
    })
    channel = lambda name, unit, rate: {"name": name, "unit": unit, "sample_rate_hz": rate, "start_s": 0.0}
    meta = {
        "format": "avm-recording", "format_version": 2,
        "aircraft_id": "AC99", "engine_id": "AC99-E1", "flight_id": "AC99-F0001-E1",
        "source": "examples/python/write_recording.py",
        "channels": [channel("vib_fan", "g", fs), channel("vib_core", "g", fs),
                     channel("n1_rpm", "rpm", 16.0), channel("n2_rpm", "rpm", 16.0),
                     channel("phase", "-", 1.0)],
        "attributes": {"test_cell": "TC-2", "ambient_c": 21.5},
    }
    write_recording(sys.argv[1], table, meta)
