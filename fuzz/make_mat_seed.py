"""Writes fuzz/corpus/matfile/ok-scipy.mat: a small level-5 MAT file from scipy, an independent
MAT writer (CWRU-like variable names: a float64 column vector and a scalar rpm)."""
import pathlib

import numpy as np
import scipy.io

out = pathlib.Path(__file__).parent / "corpus" / "matfile" / "ok-scipy.mat"
out.parent.mkdir(parents=True, exist_ok=True)
de = np.sin(np.arange(40) * 0.3).reshape(-1, 1)
scipy.io.savemat(out, {"X042_DE_time": de, "X042RPM": np.array([[1797.0]])}, format="5")
print(out)
