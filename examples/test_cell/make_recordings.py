"""Writes the CSV files of README's "Your own data" walkthrough: an engine test cell's
recordings as a lab would export them, in units and columns avm does not use.

    python3 examples/test_cell/make_recordings.py OUT_DIR [--new]

Each file is one run of 90 s: `TC1_run<NN>_load<PCT>_<healthy|faulty>.csv` with columns
t_ms (time, milliseconds), acc_x_ms2 and acc_y_ms2 (accelerometers, m/s^2), tach_v (a
once-per-revolution tachometer, volts) and load_pct. Shaft speed rises with load (1500, 1600,
1700 rpm); a faulty run adds bearing impacts at 3.6 x shaft speed ringing a 310 Hz resonance.
36 runs (8 healthy and 4 faulty per load); with --new, 6 other runs ("last night's tests").
"""
import pathlib
import sys

import numpy as np

FS = 1000  # Hz
SECONDS = 90
G = 9.80665


def run(path, load_pct, faulty, rng):
    n = np.arange(FS * SECONDS)
    t = n / FS
    f_shaft = (1500 + 4 * (load_pct - 50)) / 60.0
    phase = 2 * np.pi * f_shaft * t
    base = 0.30 * np.sin(phase) + 0.10 * np.sin(2 * phase + 0.7) + 0.04 * rng.standard_normal(n.size)
    if faulty:
        impacts = np.zeros(n.size)
        period = FS / (3.6 * f_shaft)
        impacts[np.round(np.arange(0, n.size - 1, period)).astype(int)] = 1.0
        ring = np.exp(-np.arange(40) / 6.0) * np.sin(2 * np.pi * 310.0 * np.arange(40) / FS)
        base = base + 0.8 * np.convolve(impacts, ring)[: n.size]
    acc_x = G * base
    acc_y = G * (0.6 * base + 0.03 * rng.standard_normal(n.size))
    tach = np.where((phase / (2 * np.pi)) % 1.0 < 0.2, 5.0, 0.0)
    rows = np.column_stack([n, acc_x, acc_y, tach, np.full(n.size, load_pct)])
    np.savetxt(path, rows, delimiter=",", fmt=["%d", "%.4f", "%.4f", "%.0f", "%d"],
               header="t_ms,acc_x_ms2,acc_y_ms2,tach_v,load_pct", comments="")


def main():
    out = pathlib.Path(sys.argv[1])
    new = "--new" in sys.argv[2:]
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7 if not new else 8)
    runs = range(90, 96) if new else range(1, 37)
    for k, r in enumerate(runs):
        load = (50, 75, 100)[k % 3]
        faulty = (k // 3) % 3 == 2 if not new else (k // 3) % 2 == 1
        name = f"TC1_run{r:02d}_load{load}_{'faulty' if faulty else 'healthy'}.csv"
        run(out / name, load, faulty, rng)
    print(f"wrote {len(runs)} runs into {out}")


if __name__ == "__main__":
    main()
