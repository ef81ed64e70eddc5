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
    expected.json   config (with the feature set), the feature names of one channel, and per
                    window: index, start, valid, roc_valid, per channel the features (in the
                    set's order) and the sanitiser counts

Feature definitions, schema v3 (window x of n samples after sanitising, shaft speed r in rpm):
  time    mean_g = mean(x); std_g = np.std(x) (ddof 0); rms_g = sqrt(mean(x^2));
          peak_g = max|x|; p2p_g = max(x) - min(x); crest_factor = peak/rms (0 if rms == 0);
          kurtosis = scipy.stats.kurtosis(fisher=False, bias=True); skewness =
          scipy.stats.skew(bias=True) (both 0 if std == 0)
  rates   rms_roc_g_per_s, kurtosis_roc_per_s = (value - previous window's) / hop_s; 0 for
          the first window and after an invalid window
  Welch   segments of N = fft_len samples every N/2 inside the window, periodic Hann w,
          P[k] = |rfft|^2 with P[1..N/2-1] doubled; DC never counted; S segments;
          energy of a bin set B: E = sum_seg sum_{k in B} P[k] / (S * N * sum(w^2))  [g^2]
          (checked against scipy.signal.welch(scaling="density") * fs/N)
  bands   B = {k >= 1 : lo <= k fs/N < hi} (last band: k fs/N <= hi)
  orders  k_p = floor(p * f * N/fs + 0.5), f = mean(r over the segment)/60,
          b = max(order_band_bins, floor(half_width * f * N/fs + 0.5)),
          B = k_p-b..k_p+b clipped to 1..N/2, empty if k_p == 0 or k_p > N/2
          band/order value: 10 log10(E + 1e-12) (scale db) or E / E_total (scale fraction)
  envelope (family "envelope"; band [lo, hi] Hz, decimation D, segment N_e, orders):
          two cascaded band-pass biquads (RBJ cookbook "BPF, 0 dB peak", centre sqrt(lo*hi),
          bandwidth log2(hi/lo) octaves), squared, two cascaded low-pass biquads (Q = 1/sqrt 2,
          cut-off 0.4 fs/D), every D-th sample (indices D-1, 2D-1, ...), a = sqrt(max(s, 0));
          coefficients designed in float64 and rounded to float32 as the core stores them, the
          filtering itself in float64 (scipy.signal.lfilter, zero initial state at stream start);
          env_rms_g = sqrt(mean(a^2)), env_kurtosis = Pearson kurtosis of a (window's envelope
          samples); env orders: Welch of a (N_e-sample segments every N_e/2 inside the window,
          segment mean removed, periodic Hann), bins and half-width as the orders at rate fs/D
  shape   centroid_hz = sum_seg sum_k k P / sum_seg sum_k P * fs/N (0 without AC energy);
          flatness = mean over segments of exp(mean(ln(P + e))) / (mean(P) + e) over
          k = 1..N/2, e = 1e-8 mean(P) + 1e-30
  speed   shaft_speed_rpm = mean(r) over the window
Spike policies (bounds from the most recent valid window ending before the sample):
  off       nothing clipped
  isolated  B = mean +- 2 dev (dev = max|x - mean|), J = dev, replaced by the neighbours' mean
  k_sigma   B = mean +- k std, J = k std, clipped to the nearer bound
  a good sample is a spike when it is outside B, both raw neighbours are inside B and
  |x - (x[-1] + x[+1]) / 2| > J
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

ALL_FAMILIES = ["time", "rates", "bands", "orders", "shape", "speed"]
NO_ENVELOPE = dict(env_band_hz=[1.0, 2.0], env_decimation=1, env_fft_len=64, env_orders=[])
SMALL = dict(sample_rate_hz=1024, window_len_samples=2048, hop_len_samples=1024, fft_len=256,
             order_band_bins=1, max_gap_samples=4, spike_policy="k_sigma", spike_k_sigma=3.0,
             full_scale_g=100.0, max_shaft_speed_rpm=20000.0,
             families=ALL_FAMILIES, scale="db",
             band_edges_hz=[4.0, 16.0, 26.0, 38.0, 58.0, 70.0, 128.0, 400.0, 512.0],
             orders=[0.5, 1.0, 2.0, 3.5], order_half_width=0.05, **NO_ENVELOPE)
DEFAULT = dict(sample_rate_hz=2048, window_len_samples=20480, hop_len_samples=10240, fft_len=1024,
               order_band_bins=1, max_gap_samples=8, spike_policy="isolated", spike_k_sigma=3.0,
               full_scale_g=1000.0, max_shaft_speed_rpm=30000.0,
               families=ALL_FAMILIES, scale="db",
               band_edges_hz=[8.0, 16.0, 32.0, 64.0, 90.0, 98.0, 128.0, 256.0, 512.0, 800.0],
               orders=[0.5, 1.0, 2.0, 3.0], order_half_width=0.05, **NO_ENVELOPE)

TIME = ["mean_g", "std_g", "rms_g", "peak_g", "p2p_g", "crest_factor", "kurtosis", "skewness"]
RATES = ["rms_roc_g_per_s", "kurtosis_roc_per_s"]
SHAPE = ["centroid_hz", "flatness"]


def order_suffix(p):
    milli = int(math.floor(p * 1000 + 0.5))
    whole, frac = divmod(milli, 1000)
    return f"{whole}" + (f"p{frac:03d}".rstrip("0") if frac else "")


def feature_names(cfg):
    """One channel's feature names (without the channel prefix), in schema order."""
    fam = set(cfg["families"])
    scale = "db" if cfg["scale"] == "db" else "frac"
    names = []
    if "time" in fam:
        names += TIME
    if "rates" in fam:
        names += RATES
    if "bands" in fam:
        names += [f"band{i:02d}_{scale}" for i in range(len(cfg["band_edges_hz"]) - 1)]
    if "orders" in fam:
        names += [f"order{order_suffix(p)}_{scale}" for p in cfg["orders"]]
    if "envelope" in fam:
        names += ["env_rms_g", "env_kurtosis"] + [f"env_order{order_suffix(p)}_{scale}" for p in cfg["env_orders"]]
    if "shape" in fam:
        names += SHAPE
    if "speed" in fam:
        names += ["shaft_speed_rpm"]
    return names

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


def order_energy(p, order, f_shaft, n_fft, rate, cfg):
    """Energy of one segment's one-sided power p at shaft order `order` (f_shaft in Hz, the
    segment's sample rate `rate`): centre k = floor(order f N / rate + 0.5), half-width
    max(order_band_bins, floor(order_half_width f N / rate + 0.5)), clipped to 1..N/2."""
    half = n_fft // 2
    k = math.floor(order * f_shaft * n_fft / rate + 0.5)
    if k == 0 or k > half:
        return 0.0
    b = max(cfg["order_band_bins"], math.floor(cfg["order_half_width"] * f_shaft * n_fft / rate + 0.5))
    return p[max(k - b, 1):min(k + b, half) + 1].sum()


def welch_features(x, r, cfg):
    """Band, order and shape values of one window (x, r: its sanitised samples and speeds)."""
    n_fft = cfg["fft_len"]
    fs = cfg["sample_rate_hz"]
    half = n_fft // 2
    w = scipy.signal.get_window("hann", n_fft)  # periodic
    freqs = np.fft.rfftfreq(n_fft, 1.0 / fs)
    edges = cfg["band_edges_hz"]
    band_masks = []
    for i in range(len(edges) - 1):
        last = i == len(edges) - 2
        m = (freqs >= edges[i]) & ((freqs <= edges[i + 1]) if last else (freqs < edges[i + 1]))
        m[0] = False
        band_masks.append(m)
    e_bands = np.zeros(len(band_masks))
    e_orders = np.zeros(len(cfg["orders"]))
    tot = weighted = 0.0
    flat = []
    starts = range(0, len(x) - n_fft + 1, half)
    for s in starts:
        spec = np.fft.rfft(x[s:s + n_fft] * w)
        p = np.abs(spec) ** 2
        p[1:half] *= 2.0
        f_shaft = np.mean(r[s:s + n_fft]) / 60.0
        for i, m in enumerate(band_masks):
            e_bands[i] += p[m].sum()
        for i, order in enumerate(cfg["orders"]):
            e_orders[i] += order_energy(p, order, f_shaft, n_fft, fs, cfg)
        ac = p[1:]
        tot += ac.sum()
        weighted += (np.arange(1, half + 1) * ac).sum()
        mean = ac.mean()
        e = 1e-8 * mean + 1e-30
        flat.append(math.exp(np.mean(np.log(ac + e))) / (mean + e))
    norm = len(starts) * n_fft * np.sum(w * w)
    # The energy convention against scipy: E of a band = sum of the density PSD * fs / N.
    _, pxx = scipy.signal.welch(x, fs=fs, window="hann", nperseg=n_fft, noverlap=half,
                                detrend=False, scaling="density")
    for i, m in enumerate(band_masks):
        ref = pxx[m].sum() * fs / n_fft
        assert abs(ref - e_bands[i] / norm) <= 1e-9 * (ref + pxx[1:].sum() * fs / n_fft), (ref, e_bands[i] / norm)

    def value(e):
        if cfg["scale"] == "db":
            return 10.0 * math.log10(e / norm + 1e-12)
        return min(max(e / tot, 0.0), 1.0) if tot > 0 else 0.0

    centroid = weighted / tot * fs / n_fft if tot > 0 else 0.0
    return [value(e) for e in e_bands], [value(e) for e in e_orders], [centroid, float(np.mean(flat))]


def rbj_band_pass(f0, bw_oct, fs):
    w0 = 2 * math.pi * f0 / fs
    alpha = math.sin(w0) * math.sinh(math.log(2) / 2 * bw_oct * w0 / math.sin(w0))
    a0 = 1 + alpha
    b = np.array([alpha, 0.0, -alpha]) / a0
    a = np.array([1.0, -2 * math.cos(w0) / a0, (1 - alpha) / a0])
    return b.astype(np.float32).astype(np.float64), a.astype(np.float32).astype(np.float64)


def rbj_low_pass(fc, q, fs):
    w0 = 2 * math.pi * fc / fs
    alpha = math.sin(w0) / (2 * q)
    a0 = 1 + alpha
    c = 1 - math.cos(w0)
    b = np.array([c / 2, c, c / 2]) / a0
    a = np.array([1.0, -2 * math.cos(w0) / a0, (1 - alpha) / a0])
    return b.astype(np.float32).astype(np.float64), a.astype(np.float32).astype(np.float64)


def envelope_signal(y, cfg):
    """The decimated envelope a of the whole sanitised stream y."""
    fs = cfg["sample_rate_hz"]
    lo, hi = cfg["env_band_hz"]
    d = cfg["env_decimation"]
    bb, ba = rbj_band_pass(math.sqrt(lo * hi), math.log2(hi / lo), fs)
    lb, la = rbj_low_pass(0.4 * fs / d, 1 / math.sqrt(2), fs)
    band = scipy.signal.lfilter(bb, ba, scipy.signal.lfilter(bb, ba, y))
    s = scipy.signal.lfilter(lb, la, scipy.signal.lfilter(lb, la, band * band))
    return np.sqrt(np.maximum(s[d - 1::d], 0.0))


def envelope_features(a, r, start, cfg):
    """Envelope features of the window starting at sample `start` (a: the stream's envelope)."""
    d, n_e = cfg["env_decimation"], cfg["env_fft_len"]
    win = cfg["window_len_samples"]
    rate = cfg["sample_rate_hz"] / d
    aw = a[start // d:(start + win) // d]
    rms = float(np.sqrt(np.mean(aw * aw)))
    kurt = float(scipy.stats.kurtosis(aw, fisher=False, bias=True)) if np.std(aw) > 0 else 0.0
    half = n_e // 2
    w = scipy.signal.get_window("hann", n_e)
    e = np.zeros(len(cfg["env_orders"]))
    tot = 0.0
    starts = range(0, len(aw) - n_e + 1, half)
    for j in starts:
        seg = aw[j:j + n_e]
        spec = np.fft.rfft((seg - seg.mean()) * w)
        p = np.abs(spec) ** 2
        p[1:half] *= 2.0
        f_shaft = np.mean(r[start + j * d:start + (j + n_e) * d]) / 60.0
        tot += p[1:].sum()
        for i, order in enumerate(cfg["env_orders"]):
            e[i] += order_energy(p, order, f_shaft, n_e, rate, cfg)
    norm = len(starts) * n_e * np.sum(w * w)

    def value(x):
        if cfg["scale"] == "db":
            return 10.0 * math.log10(x / norm + 1e-12)
        return min(max(x / tot, 0.0), 1.0) if tot > 0 else 0.0

    return [rms, kurt] + [value(x) for x in e]


def moments(x):
    mean = float(np.mean(x))
    std = float(np.std(x, ddof=0))
    rms = float(np.sqrt(np.mean(x * x)))
    peak = float(np.max(np.abs(x)))
    p2p = float(np.ptp(x))
    crest = peak / rms if rms > 0 else 0.0
    kurt = float(scipy.stats.kurtosis(x, fisher=False, bias=True)) if std > 0 else 0.0
    skew = float(scipy.stats.skew(x, bias=True)) if std > 0 else 0.0
    return dict(mean_g=mean, std_g=std, rms_g=rms, peak_g=peak, p2p_g=p2p, crest_factor=crest,
                kurtosis=kurt, skewness=skew)


def spike_bounds(cfg, t):
    """(lo, hi, jump, replace) after a valid window with time-domain values t, or None."""
    policy = cfg["spike_policy"]
    mean = t["mean_g"]
    if policy == "off":
        return None
    if policy == "k_sigma":
        j = cfg["spike_k_sigma"] * t["std_g"]
        return (mean - j, mean + j, j, False)
    assert policy == "isolated", policy
    dev = max(t["max"] - mean, mean - t["min"])
    return (mean - 2 * dev, mean + 2 * dev, dev, True)


def extract(vib, rpm, cfg):
    """All frames of a recording (vib, rpm: n x channels)."""
    n, chans = vib.shape
    win, hop = cfg["window_len_samples"], cfg["hop_len_samples"]
    n_windows = (n - win) // hop + 1 if n >= win else 0
    names = feature_names(cfg)
    fam = set(cfg["families"])
    per_channel = []
    for c in range(chans):
        x, tag = fill_gaps(vib[:, c], cfg)
        r, held = hold_speed(rpm[:, c], cfg)
        # Spike rule, window by window: samples after the end of window w are judged against
        # the bounds of the most recent valid window ending before them.
        clipped = np.zeros(n, dtype=bool)
        y = x.copy()
        bounds = None
        lo_n = 0
        feats = []
        ends = [w * hop + win - 1 for w in range(n_windows)]
        for w in range(n_windows + 1):
            hi_n = ends[w] + 1 if w < n_windows else n
            if bounds is not None:
                lo, hi, jump, replace = bounds
                for m in range(max(lo_n, 1), min(hi_n, n - 1)):
                    if tag[m] != GOOD:
                        continue
                    out = lambda v: v < lo or v > hi  # noqa: E731
                    isolated = not out(x[m - 1]) and not out(x[m + 1])
                    if out(x[m]) and isolated and abs(x[m] - (x[m - 1] + x[m + 1]) / 2) > jump:
                        if replace:
                            # The f32 arithmetic of the core: 0.5 * (a + b), rounded to f32.
                            y[m] = float(np.float32(0.5) * (np.float32(x[m - 1]) + np.float32(x[m + 1])))
                        else:
                            y[m] = hi if x[m] > hi else lo
                        clipped[m] = True
            lo_n = hi_n
            if w == n_windows:
                break
            s = w * hop
            xs, rs = y[s:s + win], r[s:s + win]
            t = moments(xs)
            bands, orders, shape = welch_features(xs, rs, cfg)
            q = dict(gap_filled=int(np.sum(tag[s:s + win] == FILLED)),
                     clipped=int(np.sum(clipped[s:s + win])),
                     unrepaired=int(np.sum(tag[s:s + win] == UNREPAIRED)),
                     speed_held=int(np.sum(held[s:s + win])))
            if q["unrepaired"] == 0:
                t2 = dict(t, max=float(np.max(xs)), min=float(np.min(xs)))
                b = spike_bounds(cfg, t2)
                # f32 bounds, as the core keeps them.
                bounds = None if b is None else (float(np.float32(b[0])), float(np.float32(b[1])),
                                                 float(np.float32(b[2])), b[3])
            f = []
            if "time" in fam:
                f += [t[k] for k in TIME]
            if "rates" in fam:
                f += [0.0, 0.0]
            if "bands" in fam:
                f += bands
            if "orders" in fam:
                f += orders
            if "shape" in fam:
                f += shape
            if "speed" in fam:
                f += [float(np.mean(rs))]
            feats.append((f, q, t["rms_g"], t["kurtosis"]))
        if "envelope" in fam:
            # The envelope of the final sanitised stream; its features go after the orders.
            a = envelope_signal(y, cfg)
            at = sum(len(g) for g, on in ((TIME, "time" in fam), (RATES, "rates" in fam)) if on)
            at += (len(cfg["band_edges_hz"]) - 1) if "bands" in fam else 0
            at += len(cfg["orders"]) if "orders" in fam else 0
            feats = [(f[:at] + envelope_features(a, r, w * hop, cfg) + f[at:], q, rms, kurt)
                     for w, (f, q, rms, kurt) in enumerate(feats)]
        for f, *_ in feats:
            assert len(f) == len(names), (len(f), names)
        per_channel.append(feats)

    frames = []
    prev = None
    per_s = cfg["sample_rate_hz"] / hop
    rate_at = names.index("rms_roc_g_per_s") if "rates" in fam else None
    for w in range(n_windows):
        chs = [per_channel[c][w] for c in range(chans)]
        valid = all(q["unrepaired"] == 0 for _, q, _, _ in chs)
        roc_valid = prev is not None and prev["valid"]
        out = []
        for c, (f, q, rms, kurt) in enumerate(chs):
            f = list(f)
            if roc_valid and rate_at is not None:
                f[rate_at] = (rms - prev["base"][c][0]) * per_s
                f[rate_at + 1] = (kurt - prev["base"][c][1]) * per_s
            out.append(dict(features=f, quality=q))
        frame = dict(window_index=w, start_sample=w * hop, valid=valid, roc_valid=roc_valid,
                     channels=out)
        frames.append(frame)
        prev = dict(valid=valid, base=[(rms, kurt) for _, _, rms, kurt in chs])
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
    # The same stream with the policy off.
    out["spikes_off"] = (dict(cfg, spike_policy="off"), x[:, None], np.full((n, 1), 1920.0))
    # Two lone glitches (replaced) and a two-sample excursion (kept) for the isolated policy.
    x = 0.2 * rng.standard_normal(n) + tone(n, fs, 32.0, 0.5)
    x[[4100, 7000]] += [9.0, -9.0]
    x[[7900, 7901]] += 9.0
    out["spikes_isolated"] = (dict(cfg, spike_policy="isolated"), x[:, None], np.full((n, 1), 1920.0))

    # Impacts: a 300 Hz resonance struck 7.3 times per second (a bearing-like fault), on noise.
    # The isolated-glitch policy must leave every impact alone.
    t = np.arange(n) / fs
    x = 0.05 * rng.standard_normal(n)
    for t0 in np.arange(0.05, n / fs, 1 / 7.3):
        m = t >= t0
        x[m] += 1.5 * np.exp(-(t[m] - t0) * 60.0) * np.sin(2 * np.pi * 300.0 * (t[m] - t0))
    out["impacts"] = (dict(cfg, spike_policy="isolated"), x[:, None], np.full((n, 1), 1920.0))

    # Envelope: a 300 Hz carrier amplitude-modulated at 24 Hz (0.75 order of a 32 Hz shaft).
    env = dict(cfg, families=["time", "envelope", "speed"], spike_policy="isolated",
               env_band_hz=[200.0, 400.0], env_decimation=4, env_fft_len=128, env_orders=[0.75, 1.5, 0.3])
    x = 0.5 * (1 + 0.8 * np.sin(2 * np.pi * 24 * t)) * np.sin(2 * np.pi * 300 * t) + 0.02 * rng.standard_normal(n)
    out["envelope_am"] = (env, x[:, None], np.full((n, 1), 1920.0))
    # Impacts on the 300 Hz resonance 7.3 times per second: the defect order 7.3 / 32 Hz.
    x = 0.05 * rng.standard_normal(n)
    for t0 in np.arange(0.05, n / fs, 1 / 7.3):
        m = t >= t0
        x[m] += 1.5 * np.exp(-(t[m] - t0) * 60.0) * np.sin(2 * np.pi * 300.0 * (t[m] - t0))
    imp = dict(env, env_fft_len=256, env_orders=[7.3 / 32, 2 * 7.3 / 32, 0.35], scale="db")
    out["envelope_impacts"] = (imp, x[:, None], np.full((n, 1), 1920.0))

    # Another layout: bands and speed only, as fractions of the total.
    x = tone(n, fs, 20.0, 0.5) + tone(n, fs, 200.0, 0.25) + 0.02 * rng.standard_normal(n)
    sub = dict(cfg, families=["bands", "speed"], scale="fraction")
    out["bands_fraction"] = (sub, x[:, None], np.full((n, 1), 1200.0))

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

    # A 30 Hz shaft sampled at 64 kHz (a lab gearbox): 16384-point segments (3.9 Hz bins, the
    # core's `fft-32768` build) resolve 0.5P, 1P, 2P and a 27-tooth mesh; at 4096 points 0.5P
    # and 1P would share bins 1-2.
    fs = 64000
    n = 48000
    long = dict(SMALL, sample_rate_hz=fs, window_len_samples=32768, hop_len_samples=8192,
                fft_len=16384, max_gap_samples=8, spike_policy="isolated",
                band_edges_hz=[16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
                               8192.0, 16000.0, 32000.0],
                orders=[0.5, 1.0, 2.0, 27.0])
    r = np.full(n, 1800.0)
    x = (order_tone(r, fs, 0.5, 0.1) + order_tone(r, fs, 1, 0.5, 0.3) + order_tone(r, fs, 2, 0.2, 1.1)
         + order_tone(r, fs, 27, 0.3, 2.0) + 0.02 * rng.standard_normal(n))
    out["orders_64k"] = (long, x[:, None], r[:, None])
    return out


def as_f32(a):
    return np.ascontiguousarray(a, dtype="<f4")


def compute(name, cfg, vib, rpm):
    vib32, rpm32 = as_f32(vib), as_f32(rpm)
    # The reference sees exactly the f32 samples the Rust code sees.
    frames = extract(vib32.astype(np.float64), rpm32.astype(np.float64), cfg)
    expected = dict(case=name, config=cfg, feature_names=feature_names(cfg), channels=vib.shape[1],
                    n_samples=vib.shape[0], numpy=np.__version__, scipy=scipy.__version__, frames=frames)
    return vib32, rpm32, expected


def sanity(name, expected):
    """Properties the signals were built to have, so a broken reference cannot go unnoticed."""
    fr = expected["frames"]
    names = expected["feature_names"]
    at = names.index
    db = lambda a: 10 * math.log10(a * a / 2)  # noqa: E731  a sine of amplitude a, dB re 1 g^2
    if name == "tones_1p_2p":
        f = fr[-1]["channels"][0]["features"]
        assert abs(f[at("order1_db")] - db(0.8)) < 0.1, f
        assert abs(f[at("order2_db")] - db(0.3)) < 0.1, f
        assert abs(f[at("band02_db")] - db(0.8)) < 0.1, f  # 26-38 Hz holds the 32 Hz tone
        assert abs(f[at("band04_db")] - db(0.3)) < 0.1, f  # 58-70 Hz holds the 64 Hz tone
        assert f[at("flatness")] < 0.1, f
    if name == "orders_64k":
        for w in fr:
            f = w["channels"][0]["features"]
            for order, amp in (("0p5", 0.1), ("1", 0.5), ("2", 0.2), ("27", 0.3)):
                assert abs(f[at(f"order{order}_db")] - db(amp)) < 0.2, (order, f)
    if name == "white_noise":
        f = fr[-1]["channels"][0]["features"]
        assert f[at("flatness")] > 0.4, f  # exp(-gamma) = 0.56 for chi-square(2) bins
        assert abs(f[at("centroid_hz")] - 256) < 15, f
    if name == "speed_ramp":
        for w in fr:
            f = w["channels"][0]["features"]
            assert f[at("order1_db")] > db(0.6) - 1.5, ("1P not tracked", f)
    if name == "gaps":
        assert [w["valid"] for w in fr][3:6] == [True, False, False], [w["valid"] for w in fr]
    if name == "spikes":
        assert sum(w["channels"][0]["quality"]["clipped"] for w in fr) > 0
    if name == "spikes_isolated":
        # 4100 is in windows 3 and 4, 7000 in window 5 (windows of 2048 every 1024, 7 windows).
        assert [w["channels"][0]["quality"]["clipped"] for w in fr] == [0, 0, 0, 1, 1, 1, 1], fr
    if name in ("spikes_off", "impacts"):
        assert sum(w["channels"][0]["quality"]["clipped"] for w in fr) == 0
    if name == "impacts":
        assert all(w["channels"][0]["features"][at("kurtosis")] > 5 for w in fr)
    if name == "envelope_am":
        for w in fr[1:]:
            f = w["channels"][0]["features"]
            assert f[at("env_order0p75_db")] > f[at("env_order1p5_db")] + 10, f
            assert f[at("env_order0p75_db")] > f[at("env_order0p3_db")] + 10, f
    if name == "envelope_impacts":
        for w in fr[1:]:
            f = w["channels"][0]["features"]
            assert f[at("env_order0p228_db")] > f[at("env_order0p35_db")] + 6, f
            assert f[at("env_kurtosis")] > 2, f
    if name == "bands_fraction":
        f = fr[-1]["channels"][0]["features"]
        assert names == [f"band{i:02d}_frac" for i in range(8)] + ["shaft_speed_rpm"], names
        assert abs(f[at("band01_frac")] - 0.8) < 0.01, f  # 20 Hz: 0.125 of 0.15625 g^2
        assert abs(f[at("band06_frac")] - 0.2) < 0.01, f  # 200 Hz


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
