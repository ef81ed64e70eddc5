"""Writes fuzz/corpus/matfile/ok-scipy.mat and ok-scipy-compressed.mat: small level-5 MAT files
from scipy, an independent MAT writer (CWRU-like variable names: a float64 column vector and a
scalar rpm), uncompressed (`save -v6`) and zlib-compressed per variable (MATLAB's default
`save -v7`)."""
import pathlib

import numpy as np
import scipy.io

out = pathlib.Path(__file__).parent / "corpus" / "matfile"
out.mkdir(parents=True, exist_ok=True)
de = np.sin(np.arange(40) * 0.3).reshape(-1, 1)
variables = {"X042_DE_time": de, "X042RPM": np.array([[1797.0]])}
for name, compress in [("ok-scipy.mat", False), ("ok-scipy-compressed.mat", True)]:
    scipy.io.savemat(out / name, variables, format="5", do_compression=compress)
    print(out / name)
