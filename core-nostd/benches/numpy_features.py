#!/usr/bin/env python3
"""The same per-window features in vectorised numpy, timed on this machine, against avm-core.

Peer for `cargo bench -p avm-core --bench extract`: 2048 Hz, 10 s windows every 5 s, 1024-point
Welch segments with 50 % overlap, the default feature set of schema v3 (time, rates, 16
log-spaced bands, orders 0.5/1/2/3, centroid and flatness, speed), 1 and 2 channels. numpy
computes each 20 480-sample window from scratch (what a naive batch pipeline does) and, the fair
comparison, every Welch segment of the stream once (`stream_features`, checked equal to the
per-window one); avm-core streams, so each sample is processed once. Both are reported as time per emitted window (one every 5 s
of signal) and samples per second. Before timing, the peer's features of one window are checked
against the float64 reference `core-nostd/reference/features_ref.py` (relative 1e-9), so the
two implementations compute the same set.

    cargo bench -p avm-core --bench extract     # writes target/criterion/...
    python3 core-nostd/benches/numpy_features.py

The Rust figures are read from criterion's estimates if present. Numbers are the best of
several repeats (timeit), single-threaded numpy (no BLAS call is made).
"""

import json
import pathlib
import timeit

import numpy as np

RATE_HZ = 2048
WIN = 10 * RATE_HZ
HOP = 5 * RATE_HZ
NFFT = 1024
HALF = NFFT // 2
BAND_MIN_BINS = 1
ORDERS = (0.5, 1.0, 2.0, 3.0)
HALF_WIDTH = 0.05
HANN = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(NFFT) / NFFT)
ROOT = pathlib.Path(__file__).resolve().parents[2]
# The default bands at 2048 Hz, as `FeatureSettings::default()` resolves them (f32 edges).
_LO, _HI, _N = 4 * RATE_HZ / NFFT, RATE_HZ / 2.56, 16
EDGES = [float(np.float32(_LO * (_HI / _LO) ** (i / _N))) for i in range(_N + 1)]
EDGES[0], EDGES[-1] = float(np.float32(_LO)), float(np.float32(_HI))
FREQS = np.arange(HALF + 1) * RATE_HZ / NFFT
BAND_MASK = np.stack([(FREQS >= EDGES[i]) & ((FREQS <= EDGES[i + 1]) if i == _N - 1 else (FREQS < EDGES[i + 1]))
                      for i in range(_N)])
BAND_MASK[:, 0] = False
NORM = ((WIN - NFFT) // HALF + 1) * NFFT * np.sum(HANN * HANN)


def window_features(x, rpm):
    """x: (channels, WIN); rpm: (channels, WIN). Same definitions as reference/features_ref.py
    (rates need the previous window and are a subtraction: left out of the timing)."""
    mean = x.mean(axis=1)
    d = x - mean[:, None]
    d2 = d * d
    m2 = d2.mean(axis=1)
    m3 = (d2 * d).mean(axis=1)
    m4 = (d2 * d2).mean(axis=1)
    std = np.sqrt(m2)
    rms = np.sqrt((x * x).mean(axis=1))
    peak = np.abs(x).max(axis=1)
    p2p = x.max(axis=1) - x.min(axis=1)
    crest = peak / rms
    kurt = m4 / (m2 * m2)
    skew = m3 / m2 ** 1.5
    seg = np.lib.stride_tricks.sliding_window_view(x, NFFT, axis=1)[:, ::HALF] * HANN
    spec = np.fft.rfft(seg, axis=-1)  # (channels, segments, NFFT/2 + 1)
    p = spec.real ** 2 + spec.imag ** 2
    p[..., 1:HALF] *= 2
    ac = p[..., 1:]
    total = ac.sum(axis=-1)  # (channels, segments)
    bands = 10 * np.log10(np.einsum("csk,bk->cb", p, BAND_MASK.astype(float)) / NORM + 1e-12)
    speed_hz = np.lib.stride_tricks.sliding_window_view(rpm, NFFT, axis=1)[:, ::HALF].mean(axis=-1) / 60
    per_order = []
    for order in ORDERS:
        k = np.floor(order * speed_hz * NFFT / RATE_HZ + 0.5).astype(int)
        b = np.maximum(BAND_MIN_BINS, np.floor(HALF_WIDTH * speed_hz * NFFT / RATE_HZ + 0.5).astype(int))
        span = np.arange(-b.max(), b.max() + 1)
        bins = k[..., None] + span
        keep = (np.abs(span) <= b[..., None]) & (bins >= 1) & (bins <= HALF) & (k[..., None] > 0) & (k[..., None] <= HALF)
        e = np.where(keep, np.take_along_axis(p, np.clip(bins, 0, HALF), axis=-1), 0).sum(axis=-1)
        per_order.append(10 * np.log10(e.sum(axis=-1) / NORM + 1e-12))
    centroid = (ac * np.arange(1, HALF + 1)).sum(axis=(-1, -2)) / total.sum(axis=-1) * RATE_HZ / NFFT
    mean_p = total / HALF
    e = 1e-8 * mean_p + 1e-30
    flat = (np.exp(np.log(ac + e[..., None]).mean(axis=-1)) / (mean_p + e)).mean(axis=-1)
    zeros = np.zeros_like(mean)
    cols = [mean, std, rms, peak, p2p, crest, kurt, skew, zeros, zeros]
    cols += list(bands.T) + per_order + [centroid, flat, rpm.mean(axis=1)]
    return np.stack(cols, axis=1)


def stream_features(x, rpm):
    """Every window of a stream at once, the fast numpy way: each Welch segment transformed
    **once** (a window averages its 39 segments; consecutive windows share 20) and the moments
    per window from sliding views. Same definitions as `window_features` (checked equal)."""
    n = (x.shape[1] - WIN) // HOP + 1
    w = np.lib.stride_tricks.sliding_window_view(x, WIN, axis=1)[:, ::HOP][:, :n]  # (c, n, WIN)
    mean = w.mean(axis=2)
    d = w - mean[..., None]
    d2 = d * d
    m2, m3, m4 = d2.mean(axis=2), (d2 * d).mean(axis=2), (d2 * d2).mean(axis=2)
    rms = np.sqrt((w * w).mean(axis=2))
    peak = np.abs(w).max(axis=2)
    p2p = w.max(axis=2) - w.min(axis=2)
    segs = np.lib.stride_tricks.sliding_window_view(x, NFFT, axis=1)[:, ::HALF] * HANN
    spec = np.fft.rfft(segs, axis=-1)
    p = spec.real ** 2 + spec.imag ** 2
    p[..., 1:HALF] *= 2
    per_win = (WIN - NFFT) // HALF + 1
    idx = np.arange(n)[:, None] * (HOP // HALF) + np.arange(per_win)[None, :]
    pw = p[:, idx]  # (c, n, 39, 513)
    bands = 10 * np.log10(pw.sum(axis=2) @ BAND_MASK.T.astype(float) / NORM + 1e-12)  # (c, n, 16)
    seg_speed = np.lib.stride_tricks.sliding_window_view(rpm, NFFT, axis=1)[:, ::HALF].mean(axis=-1) / 60
    sp = seg_speed[:, idx]
    per_order = []
    for order in ORDERS:
        k = np.floor(order * sp * NFFT / RATE_HZ + 0.5).astype(int)
        b = np.maximum(BAND_MIN_BINS, np.floor(HALF_WIDTH * sp * NFFT / RATE_HZ + 0.5).astype(int))
        span = np.arange(-b.max(), b.max() + 1)
        bins = k[..., None] + span
        keep = (np.abs(span) <= b[..., None]) & (bins >= 1) & (bins <= HALF) & (k[..., None] > 0) & (k[..., None] <= HALF)
        e = np.where(keep, np.take_along_axis(pw, np.clip(bins, 0, HALF), axis=-1), 0).sum(axis=-1)
        per_order.append(10 * np.log10(e.sum(axis=-1) / NORM + 1e-12))
    ac = pw[..., 1:]
    total = ac.sum(axis=-1)
    centroid = (ac * np.arange(1, HALF + 1)).sum(axis=(-1, -2)) / total.sum(axis=-1) * RATE_HZ / NFFT
    mean_p = total / HALF
    e = 1e-8 * mean_p + 1e-30
    flat = (np.exp(np.log(ac + e[..., None]).mean(axis=-1)) / (mean_p + e)).mean(axis=-1)
    speed = np.lib.stride_tricks.sliding_window_view(rpm, WIN, axis=1)[:, ::HOP][:, :n].mean(axis=2)
    zeros = np.zeros_like(mean)
    cols = [mean, np.sqrt(m2), rms, peak, p2p, peak / rms, m4 / (m2 * m2), m3 / m2 ** 1.5, zeros, zeros]
    cols += list(np.moveaxis(bands, -1, 0)) + per_order + [centroid, flat, speed]
    return np.stack(cols, axis=-1)  # (channels, windows, features)


def check_against_reference(x, rpm):
    import importlib.util

    spec = importlib.util.spec_from_file_location("ref", ROOT / "core-nostd" / "reference" / "features_ref.py")
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    cfg = dict(sample_rate_hz=RATE_HZ, window_len_samples=WIN, hop_len_samples=HOP, fft_len=NFFT,
               order_band_bins=BAND_MIN_BINS, max_gap_samples=8, spike_policy="off", spike_k_sigma=3.0,
               full_scale_g=1000.0, max_shaft_speed_rpm=30000.0, families=ref.ALL_FAMILIES, scale="db",
               band_edges_hz=EDGES, orders=list(ORDERS), order_half_width=HALF_WIDTH)
    frames = ref.extract(x[:, :WIN].T, rpm[:, :WIN].T, cfg)
    want = np.array([c["features"] for c in frames[0]["channels"]])
    got = window_features(x[:, :WIN], rpm[:, :WIN])
    assert got.shape == want.shape, (got.shape, want.shape)
    assert np.allclose(got, want, rtol=1e-9, atol=1e-9), np.max(np.abs(got - want))


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
        check_against_reference(x, rpm)
        n_windows = (x.shape[1] - WIN) // HOP + 1

        def all_windows():
            for i in range(n_windows):
                s = i * HOP
                window_features(x[:, s:s + WIN], rpm[:, s:s + WIN])

        best = min(timeit.repeat(all_windows, number=1, repeat=7))
        per_window_ms = best / n_windows * 1e3
        # The fair comparison: every segment transformed once (issue 16), checked equal first.
        once = stream_features(x, rpm)
        for i in range(n_windows):
            s = i * HOP
            assert np.allclose(once[:, i], window_features(x[:, s:s + WIN], rpm[:, s:s + WIN]), rtol=1e-9, atol=1e-9)
        best_once = min(timeit.repeat(lambda: stream_features(x, rpm), number=1, repeat=7))
        samples_per_s = x.shape[1] / best
        line = (f"{channels} channel(s): numpy {per_window_ms:.3f} ms/window "
                f"({samples_per_s / 1e6:.2f} M samples/s of stream)")
        line += f"; numpy segment-once {best_once / n_windows * 1e3:.3f} ms/window"
        rust = rust_estimate(channels)
        if rust is not None:
            rust_ms = rust / n_windows * 1e3
            line += (f"; avm-core {rust_ms:.3f} ms/window ({x.shape[1] / rust / 1e6:.1f} M samples/s); "
                     f"numpy/avm-core time ratio {best / rust:.1f}x, segment-once numpy/avm-core {best_once / rust:.1f}x")
        else:
            line += "; run `cargo bench -p avm-core --bench extract` for the Rust figure"
        print(line)


if __name__ == "__main__":
    main()
