#!/usr/bin/env python3
"""The same per-window features in vectorised numpy, timed on this machine, against avm-core.

Peer for `cargo bench -p avm-core --bench extract`: 2048 Hz, 10 s windows every 5 s, 1024-point
Welch segments with 50 % overlap, 1 and 2 channels. numpy computes each 20 480-sample window
from scratch (what a batch pipeline does); avm-core streams, so each sample is processed once.
Both are reported as time per emitted window (one every 5 s of signal) and samples per second.

    cargo bench -p avm-core --bench extract     # writes target/criterion/...
    python3 core-nostd/benches/numpy_features.py

The Rust figures are read from criterion's estimates if present. Numbers are the best of
several repeats (timeit), single-threaded numpy (the OPENBLAS variables are not involved: no
BLAS call is made).
"""

import json
import pathlib
import timeit

import numpy as np

RATE_HZ = 2048
WIN = 10 * RATE_HZ
HOP = 5 * RATE_HZ
NFFT = 1024
BAND = 1
HANN = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(NFFT) / NFFT)
ROOT = pathlib.Path(__file__).resolve().parents[2]


def window_features(x, rpm):
    """x: (channels, WIN); rpm: (channels, WIN). Same definitions as reference/features_ref.py."""
    mean = x.mean(axis=1)
    d = x - mean[:, None]
    d2 = d * d
    m2 = d2.mean(axis=1)
    m4 = (d2 * d2).mean(axis=1)
    std = np.sqrt(m2)
    rms = np.sqrt((x * x).mean(axis=1))
    peak = np.abs(x).max(axis=1)
    crest = peak / rms
    kurt = m4 / (m2 * m2)
    half = NFFT // 2
    seg = np.lib.stride_tricks.sliding_window_view(x, NFFT, axis=1)[:, ::half] * HANN
    spec = np.fft.rfft(seg, axis=-1)  # (channels, segments, NFFT/2 + 1)
    p = spec.real ** 2 + spec.imag ** 2
    p[..., 1:half] *= 2
    total = p[..., 1:].sum(axis=-1)
    speed = np.lib.stride_tricks.sliding_window_view(rpm, NFFT, axis=1)[:, ::half].mean(axis=-1)
    out = []
    for order in (1, 2):
        k = np.floor(order * speed / 60 * NFFT / RATE_HZ + 0.5).astype(int)
        bins = np.clip(k[..., None] + np.arange(-BAND, BAND + 1), 1, half)
        e = np.take_along_axis(p, bins, axis=-1).sum(axis=-1)
        out.append(e.sum(axis=-1) / total.sum(axis=-1))
    return np.stack([mean, std, rms, peak, crest, kurt, out[0], out[1]], axis=1)


def rust_estimate(channels):
    est = ROOT / "target" / "criterion" / f"extract_{channels}ch_2048hz_fft1024" / "60s_stream" / "new" / "estimates.json"
    if not est.exists():
        return None
    ns = json.loads(est.read_text())["mean"]["point_estimate"]
    # The bench streams 60 s: 11 windows, 122 880 samples per channel.
    return ns * 1e-9


def main():
    rng = np.random.default_rng(1)
    for channels in (1, 2):
        t = np.arange(60 * RATE_HZ) / RATE_HZ
        x = np.stack([2 + np.sin(2 * np.pi * (80 + 10 * c) * t) + 0.2 * (rng.random(len(t)) - 0.5)
                      for c in range(channels)]).astype(np.float32).astype(np.float64)
        rpm = np.full_like(x, 4800.0)
        n_windows = (x.shape[1] - WIN) // HOP + 1

        def all_windows():
            for i in range(n_windows):
                s = i * HOP
                window_features(x[:, s:s + WIN], rpm[:, s:s + WIN])

        best = min(timeit.repeat(all_windows, number=1, repeat=7))
        per_window_ms = best / n_windows * 1e3
        samples_per_s = x.shape[1] / best
        line = (f"{channels} channel(s): numpy {per_window_ms:.3f} ms/window "
                f"({samples_per_s / 1e6:.2f} M samples/s of stream)")
        rust = rust_estimate(channels)
        if rust is not None:
            rust_ms = rust / n_windows * 1e3
            line += (f"; avm-core {rust_ms:.3f} ms/window ({x.shape[1] / rust / 1e6:.1f} M samples/s); "
                     f"numpy/avm-core time ratio {best / rust:.1f}x")
        else:
            line += "; run `cargo bench -p avm-core --bench extract` for the Rust figure"
        print(line)


if __name__ == "__main__":
    main()
