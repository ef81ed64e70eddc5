"""Shared fixtures: a real avm work directory made by README's "Your own data" walkthrough
(test-cell CSV exports imported, `avm run` trained and registered `test_cell`, `avm score`
scored new runs), so every test compares the Python package with what the avm CLI wrote.

scripts/test.sh runs the walkthrough once and passes its directory in AVM_WALKTHROUGH; without
it the fixture runs the walkthrough itself (with AVM, default target/debug/avm)."""
import glob
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def work(tmp_path_factory) -> Path:
    w = os.environ.get("AVM_WALKTHROUGH")
    if w:
        w = Path(w)
        assert (w / "run.txt").is_file(), f"AVM_WALKTHROUGH={w} holds no walkthrough output"
        return w
    w = tmp_path_factory.mktemp("walkthrough")
    env = dict(os.environ, AVM=os.environ.get("AVM", str(REPO / "target" / "debug" / "avm")))
    subprocess.run(["bash", str(REPO / "scripts" / "walkthrough.sh"), str(w)], check=True, env=env)
    return w


@pytest.fixture(scope="session")
def model_dir(work) -> Path:
    dirs = sorted(glob.glob(str(work / "MODELS" / "test_cell" / "*" / "detector.avmb")))
    assert dirs, f"no registered test_cell model under {work}/MODELS"
    return Path(dirs[-1]).parent


@pytest.fixture(scope="session")
def recordings(work):
    paths = sorted(glob.glob(str(work / "DATA" / "raw" / "recordings" / "*.parquet")))
    assert len(paths) >= 10
    return paths


@pytest.fixture(scope="session")
def processed(work):
    import pyarrow.parquet as pq

    return pq.read_table(work / "DATA" / "processed" / "windows.parquet")
