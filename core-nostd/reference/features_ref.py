#!/usr/bin/env python3
"""Reference definition of avm's per-window features, in float64 numpy/scipy.

This script, not the Rust crate, is the definition a reviewer checks. It computes every feature
from its textbook formula (numpy, scipy.stats, scipy.signal) over whole arrays, with the
sanitising rules of avm-core restated as plain loops, and writes golden files that the Rust
test `core-nostd/tests/golden.rs` compares against at stated tolerances.

    python3 core-nostd/reference/features_ref.py            # (re)write core-nostd/tests/golden/
    python3 core-nostd/reference/features_ref.py --check    # recompute, compare with the files

Golden case layout, `core-nostd/tests/golden/<case>/`:
    vib.f32    little-endian float32, n_samples x channels, row-major (NaN/Inf kept as is)
    rpm.f32    same shape: the shaft speed each channel is referenced to
    expected.json   config, and per window: index, start, valid, roc_valid, per channel
                    the 10 features (schema order) and the sanitiser counts

Feature definitions (window x of n samples after sanitising, shaft speed r in rpm):
    mean_g        mean(x)
    std_g         sqrt(mean((x - mean)^2))                 population, ddof = 0
    rms_g         sqrt(mean(x^2))
    peak_g        max(|x|)
    crest_factor  peak / rms                               0 if rms == 0
    kurtosis      m4 / m2^2  (scipy.stats.kurtosis(fisher=False, bias=True)); 0 if m2 == 0
    order1_ratio  Welch: segments of N = fft_len samples every N/2 within the window,
                  periodic Hann window, P[k] = |rfft|^2 with P[1..N/2-1] doubled,
                  k1 = floor(mean(r over the segment)/60 * N/fs + 0.5), band = k1-b..k1+b
                  clipped to 1..N/2 (empty if k1 == 0 or k1 > N/2);
                  ratio = sum over segments of band energy / sum over segments of sum(P[1..N/2])
    order2_ratio  the same with k2 = floor(2 * mean(r)/60 * N/fs + 0.5)
    rms_roc_g_per_s, order1_ratio_roc_per_s
                  (value - value of the previous window) / hop_s; 0 for the first window and
                  after an invalid window (a window is invalid if any channel has an
                  unrepaired sample)
    shaft_speed_rpm
                  mean(r) over the window (schema v2)
"""

import argparse
import json
import math
import pathlib
import sys

import numpy as np
import scipy.signal
import scipy.stats

HERE = pathlib.Path(__file__).resolve().parent
GOLDEN = HERE.parent / "tests" / "golden"

SMALL = dict(sample_rate_hz=1024, window_len_samples=2048, hop_len_samples=1024, fft_len=256,
             order_band_bins=1, max_gap_samples=4, spike_k_sigma=3.0, full_scale_g=100.0,
             max_shaft_speed_rpm=20000.0)
DEFAULT = dict(sample_rate_hz=2048, window_len_samples=20480, hop_len_samples=10240, fft_len=1024,
               order_band_bins=1, max_gap_samples=8, spike_k_sigma=3.0, full_scale_g=1000.0,
               max_shaft_speed_rpm=30000.0)

GOOD, FILLED, UNREPAIRED = 0, 1, 2


def fill_gaps(x, cfg):
    """Gap rule: bad = non-finite or |x| > full scale. A run of <= max_gap bad samples with a
    good sample on both sides is linearly interpolated; any other run is unrepaired and held at
    the last good value (0 before the first)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(x) | (np.abs(x) > cfg["full_scale_g"])
    out = np.where(bad, 0.0, x)
    tag = np.full(len(x), GOOD)
    n = len(x)
    i = 0
    last_good = 0.0
    while i < n:
        if not bad[i]:
            last_good = out[i]
            i += 1
            continue
        j = i
        while j < n and bad[j]:
            j += 1
        g = j - i
        if i > 0 and j < n and g <= cfg["max_gap_samples"]:
            a, b = out[i - 1], out[j]
            for m in range(1, g + 1):
                out[i + m - 1] = a + (b - a) * (m / (g + 1))
            tag[i:j] = FILLED
        else:
            out[i:j] = last_good
            tag[i:j] = UNREPAIRED
        i = j
    return out, tag


def hold_speed(r, cfg):
    """Speed rule: non-finite, negative or > max is replaced by the last plausible (0 before)."""
    r = np.asarray(r, dtype=np.float64)
    out = np.empty_like(r)
    held = np.zeros(len(r), dtype=bool)
    last = 0.0
    for i, v in enumerate(r):
        if math.isfinite(v) and 0.0 <= v <= cfg["max_shaft_speed_rpm"]:
            last = v
        else:
            held[i] = True
        out[i] = last
    return out, held


def order_ratios(x, r, cfg):
    """Welch order ratios of one window (x, r: the window's sanitised samples and speeds)."""
    n_fft = cfg["fft_len"]
    fs = cfg["sample_rate_hz"]
    b = cfg["order_band_bins"]
    half = n_fft // 2
    w = scipy.signal.get_window("hann", n_fft)  # periodic
    e1 = e2 = tot = 0.0
    for s in range(0, len(x) - n_fft + 1, half):
        spec = np.fft.rfft(x[s:s + n_fft] * w)
        p = np.abs(spec) ** 2
        p[1:half] *= 2.0
        speed = np.mean(r[s:s + n_fft])

        def band(order):
            k = math.floor(order * speed / 60.0 * n_fft / fs + 0.5)
            if k == 0 or k > half:
                return 0.0
            return p[max(k - b, 1):min(k + b, half) + 1].sum()

        e1 += band(1)
        e2 += band(2)
        tot += p[1:].sum()
    if tot <= 0.0:
        return 0.0, 0.0
    # Cross-check the Welch convention against scipy when the speed is constant.
    if np.all(r == r[0]) and len(x) >= n_fft:
        f, pxx = scipy.signal.welch(x, fs=fs, window="hann", nperseg=n_fft, noverlap=half,
                                    detrend=False, scaling="spectrum")
        k = math.floor(r[0] / 60.0 * n_fft / fs + 0.5)
        if 0 < k <= half:
            ratio = pxx[max(k - b, 1):min(k + b, half) + 1].sum() / pxx[1:].sum()
            assert abs(ratio - e1 / tot) < 1e-9, (ratio, e1 / tot)
    return min(max(e1 / tot, 0.0), 1.0), min(max(e2 / tot, 0.0), 1.0)


def moments(x):
    mean = float(np.mean(x))
    std = float(np.std(x, ddof=0))
    rms = float(np.sqrt(np.mean(x * x)))
    peak = float(np.max(np.abs(x)))
    crest = peak / rms if rms > 0 else 0.0
    kurt = float(scipy.stats.kurtosis(x, fisher=False, bias=True)) if std > 0 else 0.0
    return mean, std, rms, peak, crest, kurt


def extract(vib, rpm, cfg):
    """All frames of a recording (vib, rpm: n x channels)."""
    n, chans = vib.shape
    win, hop = cfg["window_len_samples"], cfg["hop_len_samples"]
    n_windows = (n - win) // hop + 1 if n >= win else 0
    per_channel = []
    for c in range(chans):
        x, tag = fill_gaps(vib[:, c], cfg)
        r, held = hold_speed(rpm[:, c], cfg)
        # Spike rule, window by window: samples after the end of window w are judged against
        # the bounds of the most recent valid window ending before them. A good sample is
        # clipped to the nearer bound when it is outside mean +- k*std, both (unclipped)
        # neighbours are inside, and it is more than k*std from their mean.
        clipped = np.zeros(n, dtype=bool)
        y = x.copy()
        bounds = None
        lo_n = 0
        feats = []
        ends = [w * hop + win - 1 for w in range(n_windows)]
        for w in range(n_windows + 1):
            hi_n = ends[w] + 1 if w < n_windows else n
            if bounds is not None:
                lo, hi, jump = bounds
                for m in range(max(lo_n, 1), min(hi_n, n - 1)):
                    if tag[m] != GOOD:
                        continue
                    out = lambda v: v < lo or v > hi  # noqa: E731
                    isolated = not out(x[m - 1]) and not out(x[m + 1])
                    if out(x[m]) and isolated and abs(x[m] - (x[m - 1] + x[m + 1]) / 2) > jump:
                        y[m] = hi if x[m] > hi else lo
                        clipped[m] = True
            lo_n = hi_n
            if w == n_windows:
                break
            s = w * hop
            xs, rs = y[s:s + win], r[s:s + win]
            mean, std, rms, peak, crest, kurt = moments(xs)
            o1, o2 = order_ratios(xs, rs, cfg)
            q = dict(gap_filled=int(np.sum(tag[s:s + win] == FILLED)),
                     clipped=int(np.sum(clipped[s:s + win])),
                     unrepaired=int(np.sum(tag[s:s + win] == UNREPAIRED)),
                     speed_held=int(np.sum(held[s:s + win])))
            if q["unrepaired"] == 0:
                k = cfg["spike_k_sigma"]
                bounds = (mean - k * std, mean + k * std, k * std)
            feats.append(([mean, std, rms, peak, crest, kurt, o1, o2, 0.0, 0.0, float(np.mean(rs))], q))
        per_channel.append(feats)

    frames = []
    prev = None
    per_s = cfg["sample_rate_hz"] / hop
    for w in range(n_windows):
        chs = [per_channel[c][w] for c in range(chans)]
        valid = all(q["unrepaired"] == 0 for _, q in chs)
        roc_valid = prev is not None and prev["valid"]
        out = []
        for c, (f, q) in enumerate(chs):
            f = list(f)
            if roc_valid:
                f[8] = (f[2] - prev["channels"][c]["features"][2]) * per_s
                f[9] = (f[6] - prev["channels"][c]["features"][6]) * per_s
            out.append(dict(features=f, quality=q))
        frame = dict(window_index=w, start_sample=w * hop, valid=valid, roc_valid=roc_valid,
                     channels=out)
        frames.append(frame)
        prev = frame
    return frames


# ---------------------------------------------------------------------------------------------
# Test signals

def tone(n, fs, freq_hz, amp, phase=0.0):
    t = np.arange(n) / fs
    return amp * np.sin(2 * np.pi * freq_hz * t + phase)


def order_tone(speed_rpm, fs, order, amp, phase=0.0):
    """A tone locked to the shaft: phase = integral of order * speed/60."""
    ph = 2 * np.pi * order * np.cumsum(speed_rpm / 60.0) / fs
    return amp * np.sin(ph + phase)


def cases():
    rng = np.random.default_rng(20261126)
    out = {}

    cfg = SMALL
    fs = cfg["sample_rate_hz"]
    n = 8 * fs
    rpm = np.full(n, 1920.0)  # 32 Hz: bin 8 of 256 at 1024 Hz; 2P at bin 16
    x = tone(n, fs, 32.0, 0.8) + tone(n, fs, 64.0, 0.3, 0.4) + 0.05 * rng.standard_normal(n)
    out["tones_1p_2p"] = (cfg, x[:, None], rpm[:, None])

    x = 0.5 * rng.standard_normal(n)
    out["white_noise"] = (cfg, x[:, None], np.full((n, 1), 2400.0))

    x = 0.2 * rng.standard_normal(n) + tone(n, fs, 32.0, 0.5)
    x[[1500, 2600, 4100, 6000]] += [6.0, -5.0, 7.0, -8.0]  # isolated spikes (first one in warm-up)
    x[[5000, 5001]] += 6.0  # a two-sample excursion: not isolated, kept
    out["spikes"] = (cfg, x[:, None], np.full((n, 1), 1920.0))

    x = tone(n, fs, 32.0, 0.5) + 0.1 * rng.standard_normal(n)
    x[1000:1003] = np.nan  # short gap
    x[3000] = np.inf
    x[3500:3504] = [np.nan, -np.inf, 500.0, np.nan]  # beyond full scale counts as a gap
    x[5200:5230] = np.nan  # long gap: invalidates windows 4 and 5
    x[0:2] = np.nan  # leading gap: unrepaired
    r = np.full(n, 1920.0)
    r[200:260] = np.nan  # implausible speed: held
    r[4000:4010] = -5.0
    out["gaps"] = (cfg, x[:, None], r[:, None])

    n2 = 12 * fs
    r = np.linspace(600.0, 7200.0, n2)  # 10 Hz to 120 Hz spool-up
    x = order_tone(r, fs, 1, 0.6) + order_tone(r, fs, 2, 0.2) + 0.02 * rng.standard_normal(n2)
    out["speed_ramp"] = (cfg, x[:, None], r[:, None])

    x = np.zeros(n)
    x[n // 2:] = 3.25
    out["constant"] = (cfg, x[:, None], np.zeros((n, 1)))

    # Two channels at once, with different lags (a short gap on one only, spikes on the other).
    r1 = np.full(n, 1920.0)
    r2 = np.linspace(3000.0, 3600.0, n)
    a = tone(n, fs, 32.0, 0.4) + 0.1 * rng.standard_normal(n)
    b = order_tone(r2, fs, 1, 0.3) + order_tone(r2, fs, 2, 0.3) + 0.1 * rng.standard_normal(n)
    b[2045:2049] = np.nan
    a[4000] += 5.0
    out["two_channels"] = (cfg, np.stack([a, b], axis=1), np.stack([r1, r2], axis=1))

    # The default config: 10 s windows at 2048 Hz, a DC offset ten times the AC amplitude.
    cfg = DEFAULT
    fs = cfg["sample_rate_hz"]
    n = 25 * fs
    r = np.full(n, 5640.0)  # 94 Hz: bin 47 of 1024 at 2048 Hz
    x = 10.0 + order_tone(r, fs, 1, 1.0) + 0.1 * rng.standard_normal(n)
    out["default_dc_offset"] = (cfg, x[:, None], r[:, None])
    return out


def as_f32(a):
    return np.ascontiguousarray(a, dtype="<f4")


def compute(name, cfg, vib, rpm):
    vib32, rpm32 = as_f32(vib), as_f32(rpm)
    # The reference sees exactly the f32 samples the Rust code sees.
    frames = extract(vib32.astype(np.float64), rpm32.astype(np.float64), cfg)
    expected = dict(case=name, config=cfg, channels=vib.shape[1], n_samples=vib.shape[0],
                    numpy=np.__version__, scipy=scipy.__version__, frames=frames)
    return vib32, rpm32, expected


def sanity(name, expected):
    """Properties the signals were built to have, so a broken reference cannot go unnoticed."""
    fr = expected["frames"]
    if name == "tones_1p_2p":
        f = fr[-1]["channels"][0]["features"]
        total = 0.8 ** 2 + 0.3 ** 2 + 0.05 ** 2 * 2  # noise: mean square 0.0025 over 0..fs/2
        assert abs(f[6] - 0.8 ** 2 / total) < 0.02, f
        assert abs(f[7] - 0.3 ** 2 / total) < 0.02, f
    if name == "speed_ramp":
        assert all(w["channels"][0]["features"][6] > 0.8 for w in fr), "1P not tracked"
    if name == "gaps":
        assert [w["valid"] for w in fr][3:6] == [True, False, False], [w["valid"] for w in fr]
    if name == "spikes":
        assert sum(w["channels"][0]["quality"]["clipped"] for w in fr) > 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="compare with the committed files")
    args = ap.parse_args()
    failures = 0
    for name, (cfg, vib, rpm) in cases().items():
        vib32, rpm32, expected = compute(name, cfg, vib, rpm)
        sanity(name, expected)
        d = GOLDEN / name
        if args.check:
            got = json.loads((d / "expected.json").read_text())
            same_inputs = ((d / "vib.f32").read_bytes() == vib32.tobytes()
                           and (d / "rpm.f32").read_bytes() == rpm32.tobytes())
            worst = 0.0
            for fa, fb in zip(got["frames"], expected["frames"]):
                for ca, cb in zip(fa["channels"], fb["channels"]):
                    assert ca["quality"] == cb["quality"], (name, ca["quality"], cb["quality"])
                    for a, b in zip(ca["features"], cb["features"]):
                        worst = max(worst, abs(a - b) / max(abs(b), 1e-12))
            ok = same_inputs and len(got["frames"]) == len(expected["frames"]) and worst < 1e-9
            print(f"{name}: {'ok' if ok else 'DIFFERS'} (inputs identical: {same_inputs}, "
                  f"worst relative feature difference {worst:.2e})")
            failures += not ok
        else:
            d.mkdir(parents=True, exist_ok=True)
            (d / "vib.f32").write_bytes(vib32.tobytes())
            (d / "rpm.f32").write_bytes(rpm32.tobytes())
            (d / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
            print(f"wrote {d} ({len(expected['frames'])} windows)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
