/* avm from C: the Rust firmware example's sensor loop, written against the C API (avm.h).
 *
 * Streams a recorded flight through avm's feature extractor in blocks, as a DMA half-buffer
 * would deliver them, with the shaft speed set only when a tachometer update changes it; scores
 * every window with the detector bundle in its flight phase; feeds the verdicts to the bundle's
 * alert policy; prints one human line and one exact-bits line per window (`W ...`, and `A ...`
 * per alert event: avm-core's wire format, which the parity suite compares with the Rust
 * firmware and the host).
 *
 * Inputs, in this order of preference:
 * - `avm-detector.avmb` and `avm-input.avmi` (f32 samples) from the host (semihosting);
 * - the bundle and the 36 s flight segment (16-bit ADC counts) embedded in flash.
 *
 * No heap, no libc stdio: every object is a static (the extractor is .bss, 24 KiB); output is
 * formatted by hand. A refused bundle or input prints why and exits with status 1. */
#include <stdint.h>
#include <string.h>

#include "avm.h"
#include "platform.h"

/* Sample instants per block handed to the core (one DMA half-buffer). */
#define BLOCK 256
/* Largest bundle read from the host. */
#define BUNDLE_MAX (160u * 1024u)

extern const uint8_t avm_embedded_bundle[], avm_embedded_bundle_end[];
extern const uint8_t avm_embedded_flight[], avm_embedded_flight_end[];

static uint8_t bundle_buf[BUNDLE_MAX];
static avm_detector det;
static avm_extractor fx;
static avm_phase_tally tally;
static avm_alerter alerter;

/* ---- text out: a line buffer and the few formats needed -------------------------------- */

static char line[1280];
static size_t line_len;

static void put(const char *s) {
    while (*s && line_len + 1 < sizeof line) line[line_len++] = *s++;
}

static void put_u64(uint64_t v) {
    char d[21];
    int n = 0;
    do {
        d[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n && line_len + 1 < sizeof line) line[line_len++] = d[--n];
}

static void put_hex8(uint32_t v) {
    static const char hex[] = "0123456789abcdef";
    for (int s = 28; s >= 0 && line_len + 1 < sizeof line; s -= 4) line[line_len++] = hex[(v >> s) & 15];
}

static uint32_t bits(float x) {
    uint32_t b;
    memcpy(&b, &x, 4);
    return b;
}

/* A float with `decimals` digits after the point, for people (the exact bits go in W/A lines). */
static void put_fixed(float x, int decimals) {
    if (x != x) {
        put("NaN");
        return;
    }
    if (x < 0) {
        put("-");
        x = -x;
    }
    uint64_t scale = 1;
    for (int i = 0; i < decimals; i++) scale *= 10;
    if (x > 1e12f) {
        put("inf");
        return;
    }
    uint64_t v = (uint64_t)((double)x * (double)scale + 0.5);
    put_u64(v / scale);
    if (decimals) {
        put(".");
        uint64_t frac = v % scale;
        for (uint64_t s = scale / 10; s; s /= 10) {
            char d[2] = {(char)('0' + frac / s % 10), 0};
            put(d);
        }
    }
}

static void flush(void) {
    line[line_len++] = '\n';
    line[line_len] = 0;
    plat_puts(line);
    line_len = 0;
}

static void fail(const char *what, const char *why) {
    line_len = 0;
    put("avm-c-firmware: ");
    put(what);
    if (why) {
        put(": ");
        put(why);
    }
    flush();
    plat_exit(1);
}

static void fail_status(const char *what, avm_status st) { fail(what, avm_status_text(st)); }

/* ---- per window: assess, report, alert --------------------------------------------------- */

struct watch {
    float hop_s;
    uint32_t windows, alarms, no_verdict, alerts;
    uint8_t alert_up;
    uint32_t push_ticks, score_ticks;
};

static void on_frame(void *user, const avm_frame *frame) {
    struct watch *w = user;
    uint8_t phase;
    avm_status st = avm_phase_tally_window(&tally, frame->window_index, &phase);
    if (st != AVM_STATUS_OK) fail_status("internal: the phase tally lost a window", st);
    avm_verdict v;
    uint32_t t0 = plat_ticks();
    st = avm_assess(&det, frame, phase, &v);
    w->score_ticks += plat_ticks_between(t0, plat_ticks());
    if (st != AVM_STATUS_OK) fail_status("scoring a window", st);
    w->windows++;
    w->alarms += v.alarm;
    w->no_verdict += !v.judged;

    char name[40] = "unknown";
    if (v.phase != AVM_PHASE_UNKNOWN) avm_detector_phase(&det, v.phase, name, sizeof name, NULL, NULL);
    put("window ");
    put_u64(v.window_index);
    put(" t=");
    put_fixed((float)v.window_index * w->hop_s, 1);
    put(" s: phase ");
    put(name);
    put(": score ");
    put_fixed(v.score, 5);
    put(" threshold ");
    put_fixed(v.threshold, 5);
    put(!v.judged ? " -> no verdict" : v.alarm ? " -> ALARM" : " -> ok");
    flush();

    /* W <window> v<valid> r<roc_valid> p<phase> j<judged> a<alarm> s<score bits> f<bits,...> */
    put("W ");
    put_u64(v.window_index);
    put(v.valid ? " v1" : " v0");
    put(frame->roc_valid ? " r1" : " r0");
    put(" p");
    put_u64(v.phase);
    put(v.judged ? " j1" : " j0");
    put(v.alarm ? " a1 s" : " a0 s");
    put_hex8(bits(v.score));
    put(" f");
    for (uint16_t i = 0; i < frame->n_features; i++) {
        if (i) put(",");
        put_hex8(bits(frame->features[i]));
    }
    flush();

    avm_alert_event e;
    st = avm_alerter_step(&alerter, &v, &e);
    if (st != AVM_STATUS_OK) fail_status("internal: alert policy", st);
    if (e.kind == AVM_ALERT_NONE) return;
    w->alerts += e.kind == AVM_ALERT_RAISED;
    w->alert_up = e.kind == AVM_ALERT_RAISED;
    put(e.kind == AVM_ALERT_RAISED ? "ALERT raised at window " : "ALERT cleared at window ");
    put_u64(e.window_index);
    put(": score ");
    put_fixed(e.score, 5);
    put(" threshold ");
    put_fixed(e.threshold, 5);
    put(", ");
    put_u64(e.count);
    put(" of ");
    put_u64(e.of);
    flush();
    /* A <R|C> <window> n<count>/<of> w<raised window> s<score> t<threshold> k<peak score> */
    put(e.kind == AVM_ALERT_RAISED ? "A R " : "A C ");
    put_u64(e.window_index);
    put(" n");
    put_u64(e.count);
    put("/");
    put_u64(e.of);
    put(" w");
    put_u64(e.raised_window);
    put(" s");
    put_hex8(bits(e.score));
    put(" t");
    put_hex8(bits(e.threshold));
    put(" k");
    put_hex8(bits(e.peak_score));
    flush();
}

/* ---- input: avm-core's wire formats (AVMI f32 from the host, AVMQ 16-bit embedded) -------- */

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static float lef32(const uint8_t *p) {
    uint32_t b = le32(p);
    float f;
    memcpy(&f, &b, 4);
    return f;
}

struct source {
    int host;                /* host file handle, or -1 for the embedded segment */
    const uint8_t *embedded; /* next embedded sample */
    uint32_t left;           /* samples left */
    uint32_t samples;
    size_t sample_bytes;
    int q16, has_phase;
    float lsb_g[AVM_CHANNELS];
};

static void open_source(struct source *s) {
    uint8_t h[16];
    s->host = plat_open("avm-input.avmi");
    if (s->host >= 0) {
        if (plat_read(s->host, h, 12) != 12) fail("input", "avm-input.avmi is shorter than its header");
        if (memcmp(h, "AVMI", 4) != 0) fail("input", "avm-input.avmi: wrong magic");
        s->q16 = 0;
    } else {
        if (avm_embedded_flight_end - avm_embedded_flight < 16) fail("input", "embedded segment truncated");
        memcpy(h, avm_embedded_flight, 16);
        if (memcmp(h, "AVMQ", 4) != 0) fail("input", "embedded segment: wrong magic");
        s->q16 = 1;
    }
    if (le16(h + 4) != AVM_CHANNELS) fail("input", "not 2 channels");
    uint16_t flags = le16(h + 6);
    if (flags & ~1u) fail("input", "unknown header flags (only bit 0, phase, is defined)");
    s->has_phase = flags & 1u;
    s->samples = s->left = le32(h + 8);
    s->sample_bytes = AVM_CHANNELS * (s->q16 ? 4u : 8u) + (s->has_phase ? 1u : 0u);
    size_t header = s->q16 ? 16u : 12u;
    uint64_t want = header + (uint64_t)s->samples * s->sample_bytes;
    if (s->q16) {
        for (int c = 0; c < AVM_CHANNELS; c++) s->lsb_g[c] = lef32(h + 12);
        if ((uint64_t)(avm_embedded_flight_end - avm_embedded_flight) != want)
            fail("input", "embedded segment length does not match its header");
        s->embedded = avm_embedded_flight + 16;
    } else if ((uint64_t)plat_length(s->host) != want) {
        fail("input", "avm-input.avmi length does not match its header");
    }
}

/* One block as the core takes it: interleaved vibration (f32 g or i16 counts), the speed and
 * the phase code of every instant. */
static uint8_t raw[BLOCK * (AVM_CHANNELS * 8 + 1)];
static float vib_g[BLOCK * AVM_CHANNELS];
static int16_t counts[BLOCK * AVM_CHANNELS];
static float rpm[BLOCK][AVM_CHANNELS];
static uint8_t phase[BLOCK];

static uint32_t next_block(struct source *s) {
    uint32_t n = s->left < BLOCK ? s->left : BLOCK;
    if (n == 0) return 0;
    const uint8_t *p;
    size_t bytes = n * s->sample_bytes;
    if (s->host >= 0) {
        size_t at = 0;
        while (at < bytes) {
            long got = plat_read(s->host, raw + at, bytes - at);
            if (got <= 0) fail("input", "avm-input.avmi: read failed or truncated");
            at += (size_t)got;
        }
        p = raw;
    } else {
        p = s->embedded;
        s->embedded += bytes;
    }
    for (uint32_t i = 0; i < n; i++, p += s->sample_bytes) {
        for (int c = 0; c < AVM_CHANNELS; c++) {
            if (s->q16) {
                counts[i * AVM_CHANNELS + c] = (int16_t)le16(p + 4 * c);
                rpm[i][c] = (float)le16(p + 4 * c + 2);
            } else {
                vib_g[i * AVM_CHANNELS + c] = lef32(p + 8 * c);
                rpm[i][c] = lef32(p + 8 * c + 4);
            }
        }
        phase[i] = s->has_phase ? p[AVM_CHANNELS * (s->q16 ? 4 : 8)] : AVM_PHASE_UNKNOWN;
    }
    s->left -= n;
    return n;
}

/* ---- the loop ------------------------------------------------------------------------------ */

int main(void) {
    plat_stack_paint();
    (void)plat_ticks();
    char why[200];

    const uint8_t *bundle = avm_embedded_bundle;
    size_t bundle_len = (size_t)(avm_embedded_bundle_end - avm_embedded_bundle);
    int h = plat_open("avm-detector.avmb");
    if (h >= 0) {
        long n = plat_length(h);
        if (n < 0 || (unsigned long)n > BUNDLE_MAX)
            fail("refusing the detector bundle", "larger than the firmware's bundle buffer (160 KiB)");
        for (long at = 0; at < n;) {
            long got = plat_read(h, bundle_buf + at, (size_t)(n - at));
            if (got <= 0) fail("refusing the detector bundle", "host file read failed");
            at += got;
        }
        plat_close(h);
        bundle = bundle_buf;
        bundle_len = (size_t)n;
    }
    avm_status st = avm_detector_parse(&det, bundle, bundle_len, why, sizeof why);
    if (st != AVM_STATUS_OK) fail("refusing the detector bundle", why);
    st = avm_extractor_init(&fx, &det, why, sizeof why);
    if (st != AVM_STATUS_OK) fail("refusing the detector bundle", why);
    avm_detector_info info;
    avm_detector_get_info(&det, &info);
    if (BLOCK + info.max_gap_samples + 1 >= info.hop_len_samples)
        fail("refusing the detector bundle", "its hop is too short for this firmware's 256-sample blocks");
    if ((st = avm_phase_tally_init(&tally, &det)) != AVM_STATUS_OK) fail_status("phase tally", st);
    if ((st = avm_alerter_init(&alerter, &det)) != AVM_STATUS_OK) fail_status("alert policy", st);

    put("avm-c-firmware: detector v");
    put_u64(info.version[0]);
    put(".");
    put_u64(info.version[1]);
    put(".");
    put_u64(info.version[2]);
    put(" (");
    put_u64(info.len_bytes);
    put(" bytes, crc32 ");
    put_hex8(info.checksum);
    put("), ");
    put_u64(info.channels);
    put(" channels, ");
    put_u64(info.features);
    put(" features, threshold ");
    put_fixed(info.threshold, 5);
    put(", ");
    put_u64(info.phases);
    put(" phases; window ");
    put_u64(info.window_len_samples);
    put(" / hop ");
    put_u64(info.hop_len_samples);
    put(" samples at ");
    put_u64(info.sample_rate_hz);
    put(" Hz; alert ");
    put_u64(info.raise_count);
    put(" of ");
    put_u64(info.raise_window);
    put(" windows");
    flush();

    struct source src;
    open_source(&src);
    put("avm-c-firmware: input ");
    put(src.host >= 0 ? "avm-input.avmi (host)" : "embedded segment");
    put(" (");
    put_u64(src.samples);
    put(" samples)");
    flush();

    struct watch w = {.hop_s = (float)info.hop_len_samples / (float)info.sample_rate_hz};
    float held[AVM_CHANNELS];
    uint8_t have_held = 0;
    uint32_t n;
    while ((n = next_block(&src)) != 0) {
        /* The tally counts a block's phase codes before the extractor sees the block. */
        for (uint32_t i = 0; i < n;) {
            uint32_t j = i + 1;
            while (j < n && phase[j] == phase[i]) j++;
            avm_phase_tally_push(&tally, phase[i], j - i);
            i = j;
        }
        /* Runs of constant speed: a tachometer update (set_speed) where it changes. */
        for (uint32_t i = 0; i < n;) {
            for (int c = 0; c < AVM_CHANNELS; c++) {
                if (!have_held || bits(rpm[i][c]) != bits(held[c])) {
                    avm_extractor_set_speed(&fx, (uint32_t)c, rpm[i][c]);
                    held[c] = rpm[i][c];
                }
            }
            have_held = 1;
            uint32_t j = i + 1;
            while (j < n && memcmp(rpm[j], rpm[i], sizeof rpm[i]) == 0) j++;
            uint32_t t0 = plat_ticks();
            if (src.q16)
                st = avm_extractor_push_i16(&fx, &counts[i * AVM_CHANNELS], j - i, src.lsb_g, on_frame, &w);
            else
                st = avm_extractor_push_f32(&fx, &vib_g[i * AVM_CHANNELS], j - i, on_frame, &w);
            w.push_ticks += plat_ticks_between(t0, plat_ticks());
            if (st != AVM_STATUS_OK) fail_status("pushing samples", st);
            i = j;
        }
    }
    if (src.host >= 0) plat_close(src.host);
    if ((st = avm_extractor_finish(&fx, on_frame, &w)) != AVM_STATUS_OK) fail_status("finishing", st);

#ifdef AVM_COST
    put("avm-c-firmware: cost: ");
    put_u64(src.samples);
    put(" samples x 2 channels, ");
    put_u64(w.windows);
    put(" windows; SysTick ticks: push_slice ");
    put_u64(w.push_ticks);
    put(" (scoring included), scoring ");
    put_u64(w.score_ticks);
    flush();
#endif
    put("avm-c-firmware: ");
    put_u64(w.windows);
    put(" windows, ");
    put_u64(w.alarms);
    put(" alarms, ");
    put_u64(w.no_verdict);
    put(" without verdict, ");
    put_u64(w.alerts);
    put(" alerts raised");
    put(w.alert_up ? " (one still up)" : "");
    put("; stack high-water ");
    put_u64(plat_stack_high_water());
    put(" bytes");
    flush();
    return 0;
}
