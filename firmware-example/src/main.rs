//! avm on a Cortex-M4F: a sensor loop that streams vibration and shaft-speed samples through
//! avm-core frame by frame (no heap), scores every window with the detector bundle and reports
//! the verdict.
//!
//! Inputs (the bundle and the flight), in this order of preference:
//! - `avm-detector.avmb` and `avm-input.avmi` in the host's working directory, read through
//!   semihosting (the parity tests use this to stream whole recorded flights);
//! - the bundle and the 20 s flight segment embedded in flash (`data/`, see `data/README.md`).
//!
//! Each sample comes with its flight-phase code (the contract's phase order, 255 unknown); a
//! [`PhaseTally`] turns them into each window's phase, the detector applies that phase's
//! threshold (by index; a "no verdict" phase gives none), and the bundle's alert policy
//! ([`Alerter`]: M of N, hysteresis, latching) turns verdicts into alerts.
//!
//! Output, one pair of lines per window (semihosting stdout):
//! `window <i> t=<s> s: phase <p>: score <x> threshold <t> -> ok|ALARM|no verdict`, then the
//! exact bits `W <i> v<valid> r<roc_valid> p<phase> j<judged> a<alarm> s<score bits> f<feature
//! bits,...>`, and for an alert event `ALERT raised|cleared at window <i> t=<s> s ...` then
//! `A <R|C> ...` ([`avm_core::wire`]); the parity tests compare them with the host. With the
//! `defmt` feature the same facts go through defmt instead. A refused bundle or input prints
//! why and exits with status 1; so does a panic.

#![no_std]
#![no_main]

use avm_core::{AlertKind, Alerter, Detector, FeatureExtractor, FeatureFrame, PhaseTally};
use cortex_m_rt::entry;
use cortex_m_semihosting::debug;
use panic_semihosting as _;
use static_cell::ConstStaticCell;

#[cfg(feature = "defmt")]
use defmt_semihosting as _;

/// CPU cost of the core on the target (feature `cost`): SysTick ticks spent extracting and
/// scoring. Under `qemu-system-arm -icount shift=0` the virtual clock advances 1 ns per
/// instruction and mps2-an386's SysTick runs at 25 MHz, so one tick is 40 instructions
/// (`scripts/firmware_cost.sh`). Off by default: the tick counts depend on the host's clock
/// without `-icount`, and the parity snapshot must not.
#[cfg(feature = "cost")]
mod cost {
    use core::sync::atomic::{AtomicU32, Ordering};
    use cortex_m::peripheral::{SYST, syst::SystClkSource};

    /// Ticks spent in `push_slice` (extraction and, inside its callback, scoring).
    pub static PUSH: AtomicU32 = AtomicU32::new(0);
    /// Ticks spent in `Detector::assess`.
    pub static SCORE: AtomicU32 = AtomicU32::new(0);

    pub fn start() {
        if let Some(p) = cortex_m::Peripherals::take() {
            let mut syst = p.SYST;
            syst.set_clock_source(SystClkSource::Core);
            syst.set_reload(0x00FF_FFFF);
            syst.clear_current();
            syst.enable_counter();
        }
    }

    /// Runs `f`, adding the ticks it took to `into` (SysTick counts down, 24 bits).
    pub fn time<R>(into: &AtomicU32, f: impl FnOnce() -> R) -> R {
        let a = SYST::get_current();
        let r = f();
        let b = SYST::get_current();
        into.fetch_add(a.wrapping_sub(b) & 0x00FF_FFFF, Ordering::Relaxed);
        r
    }

    pub fn ticks(of: &AtomicU32) -> u32 {
        of.load(Ordering::Relaxed)
    }
}

/// Vibration channels this firmware is built for.
const CH: usize = 2;
/// Largest FFT the extractor can run (fft_len of the bundle's config must not exceed it).
const FFT_MAX: usize = 1024;
/// Samples per block handed to the core (one DMA half-buffer of a real sensor loop). The phase
/// tally counts a block before the extractor sees it, so a block must be shorter than a hop
/// minus the extractor's latency (`max_gap_samples + 1`); checked at start-up.
const BLOCK: usize = 256;

/// Keeps a byte buffer 4-byte aligned, so the evaluator reads the bundle's weights as `f32`
/// in place (avm-core falls back to byte reads at any other address: same bits, slower).
#[repr(C, align(4))]
struct Aligned<T: ?Sized>(T);

static EMBEDDED_BUNDLE: &Aligned<[u8]> = &Aligned(*include_bytes!("../data/detector.avmb"));
static EMBEDDED_FLIGHT: &[u8] = include_bytes!("../data/flight_segment.avmq");

mod host;
mod input;
mod stack;

macro_rules! say {
    ($($arg:tt)*) => {
        #[cfg(not(feature = "defmt"))]
        cortex_m_semihosting::hprintln!($($arg)*);
    };
}

fn fail(_what: &str) -> ! {
    say!("avm-firmware: {}", _what);
    #[cfg(feature = "defmt")]
    defmt::error!("avm-firmware: {=str}", _what);
    debug::exit(debug::EXIT_FAILURE);
    #[allow(clippy::empty_loop)]
    loop {}
}

/// A bundle given by the host is read here (160 KiB of .bss).
static BUNDLE_BUF: ConstStaticCell<Aligned<[u8; 160 * 1024]>> =
    ConstStaticCell::new(Aligned([0; 160 * 1024]));
/// The extractor lives in static RAM and is configured in place: no copy of its 23 KB on the
/// stack, and no flash image either (`UNCONFIGURED` is all zero bytes: .bss).
static FX: ConstStaticCell<FeatureExtractor<CH, FFT_MAX>> =
    ConstStaticCell::new(FeatureExtractor::UNCONFIGURED);
/// Phase-code counts of the last hops (1.1 KB).
static TALLY: ConstStaticCell<PhaseTally> = ConstStaticCell::new(PhaseTally::UNCONFIGURED);

/// The state kept across windows: the alert machine and the counts.
struct Watch {
    alerter: Alerter,
    alarms: u32,
    no_verdict: u32,
    alerts: u32,
}

fn report(det: &Detector<'_>, frame: &FeatureFrame<CH>, phase: u8, hop_s: f32, watch: &mut Watch) {
    #[cfg(feature = "cost")]
    let assessed = cost::time(&cost::SCORE, || det.assess_in_phase(frame, phase));
    #[cfg(not(feature = "cost"))]
    let assessed = det.assess_in_phase(frame, phase);
    let v = match assessed {
        Ok(v) => v,
        Err(e) => {
            let mut msg = input::Msg::new();
            let _ = core::fmt::write(&mut msg, format_args!("scoring window {}: {e}", frame.window_index));
            fail(msg.as_str())
        }
    };
    watch.alarms += u32::from(v.alarm);
    watch.no_verdict += u32::from(!v.judged);
    let _verdict = if !v.judged {
        "no verdict"
    } else if v.alarm {
        "ALARM"
    } else {
        "ok"
    };
    let _t = frame.window_index as f32 * hop_s;
    let _phase = det.phase(usize::from(v.phase)).map_or("unknown", |p| p.name);
    say!(
        "window {} t={:.1} s: phase {}: score {:.5} threshold {:.5} -> {}",
        v.window_index,
        _t,
        _phase,
        v.score,
        v.threshold,
        _verdict
    );
    // The frame's flat, channel-major feature vector.
    let mut flat = [0.0f32; CH * avm_core::MAX_FEATURES_PER_CHANNEL];
    let n = frame.flat_len().min(flat.len());
    for (d, x) in flat.iter_mut().zip(frame.flat()) {
        *d = x;
    }
    let features = &flat[..n];
    #[cfg(not(feature = "defmt"))]
    {
        let mut line = input::Msg::new();
        let w = avm_core::wire::WindowLine {
            window_index: v.window_index,
            valid: v.valid,
            roc_valid: frame.roc_valid,
            phase: v.phase,
            judged: v.judged,
            alarm: v.alarm,
            score_bits: v.score.to_bits(),
        };
        let _ = w.write(&mut line, features);
        cortex_m_semihosting::hprintln!("{}", line.as_str());
    }
    #[cfg(feature = "defmt")]
    defmt::info!(
        "window {=u32}: score {=f32} threshold {=f32} valid {=bool} alarm {=bool} features {=[?]}",
        v.window_index,
        v.score,
        v.threshold,
        v.valid,
        v.alarm,
        features
    );
    if let Some(e) = watch.alerter.step(&v) {
        watch.alerts += u32::from(e.kind == AlertKind::Raised);
        let _what = match e.kind {
            AlertKind::Raised => "raised",
            AlertKind::Cleared => "cleared",
        };
        say!(
            "ALERT {} at window {} t={:.1} s: score {:.5} threshold {:.5}, {} of {} (raised at window {}, peak {:.5})",
            _what,
            e.window_index,
            e.window_index as f32 * hop_s,
            e.score,
            e.threshold,
            e.count,
            e.of,
            e.raised_window,
            e.peak_score
        );
        #[cfg(not(feature = "defmt"))]
        {
            let mut line = input::Msg::new();
            let _ = avm_core::wire::AlertLine::write(&mut line, &e);
            cortex_m_semihosting::hprintln!("{}", line.as_str());
        }
        #[cfg(feature = "defmt")]
        defmt::warn!(
            "alert {=str} at window {=u32}: score {=f32} threshold {=f32}, {=u8} of {=u8}",
            _what,
            e.window_index,
            e.score,
            e.threshold,
            e.count,
            e.of
        );
    }
}

#[entry]
fn main() -> ! {
    stack::paint();
    #[cfg(feature = "cost")]
    cost::start();
    // The bundle: from the host if it offers one, else the embedded one.
    // `take` hands out each static once (a second call would panic): no `static mut`, no unsafe.
    let buf: &'static mut [u8] = &mut BUNDLE_BUF.take().0;
    let bundle: &[u8] = match host::read_file(b"avm-detector.avmb\0", buf) {
        Ok(Some(n)) => &buf[..n],
        Ok(None) => &EMBEDDED_BUNDLE.0,
        Err(e) => fail(e),
    };
    // Checks the bundle and that it fits this build (channel count, FFT capacity) in one call.
    let det = match Detector::parse_for::<CH, FFT_MAX>(bundle) {
        Ok(d) => d,
        Err(e) => {
            let mut msg = input::Msg::new();
            let _ = core::fmt::write(&mut msg, format_args!("refusing the detector bundle: {e}"));
            fail(msg.as_str())
        }
    };
    let cfg = det.config();
    let fx: &'static mut FeatureExtractor<CH, FFT_MAX> = FX.take();
    if let Err(e) = fx.configure(cfg) {
        // E.g. an envelope feature set on this build without envelope capacity (ENV_MAX = 0).
        let mut msg = input::Msg::new();
        let _ = core::fmt::write(&mut msg, format_args!("refusing the detector bundle: {e}"));
        fail(msg.as_str())
    }
    if BLOCK + cfg.max_gap_samples as usize + 1 >= cfg.hop_len_samples as usize {
        fail("refusing the detector bundle: its hop is too short for this firmware's 256-sample blocks");
    }
    let tally: &'static mut PhaseTally = TALLY.take();
    *tally = PhaseTally::new(&cfg);
    let mut watch = match Alerter::new(det.alert_policy()) {
        Ok(alerter) => Watch { alerter, alarms: 0, no_verdict: 0, alerts: 0 },
        Err(_) => fail("refusing the detector bundle: bad alert policy"),
    };
    let [major, minor, patch] = det.version();
    say!(
        "avm-firmware: detector v{}.{}.{} ({} bytes, crc32 {:08x}), {} channels, {} features, {} layers, threshold {:.5}, {} phases; window {} / hop {} samples at {} Hz; alert {} of {} windows, clear after {} below {} x threshold{}",
        major,
        minor,
        patch,
        det.len_bytes(),
        det.checksum(),
        det.channels(),
        det.features(),
        det.network().layers(),
        det.threshold(),
        det.phase_count(),
        cfg.window_len_samples,
        cfg.hop_len_samples,
        cfg.sample_rate_hz,
        det.alert_policy().raise_count,
        det.alert_policy().raise_window,
        det.alert_policy().clear_count,
        det.alert_policy().clear_fraction,
        if det.alert_policy().latch { ", latched" } else { "" }
    );
    #[cfg(feature = "defmt")]
    defmt::info!(
        "avm-firmware: detector v{=u16}.{=u16}.{=u16}, threshold {=f32}",
        major,
        minor,
        patch,
        det.threshold()
    );

    let mut source = match input::Source::open(EMBEDDED_FLIGHT) {
        Ok(s) => s,
        Err(e) => fail(e),
    };
    say!("avm-firmware: input {} ({} samples)", source.name(), source.samples());
    let hop_s = cfg.hop_len_samples as f32 / cfg.sample_rate_hz as f32;
    let mut windows = 0u32;
    let mut vib = [[0.0f32; CH]; BLOCK];
    let mut rpm = [[0.0f32; CH]; BLOCK];
    let mut phase = [0u8; BLOCK];
    let phase_of = |tally: &PhaseTally, w: u32| match tally.majority(w) {
        Ok(p) => p,
        Err(_) => fail("internal: the phase tally lost a window"),
    };
    loop {
        let n = match source.next_block(&mut vib, &mut rpm, &mut phase) {
            Ok(n) => n,
            Err(e) => fail(e),
        };
        if n == 0 {
            break;
        }
        for &p in &phase[..n] {
            tally.push(p);
        }
        let mut push = || {
            fx.push_slice(&vib[..n], &rpm[..n], |frame| {
                windows += 1;
                let p = phase_of(tally, frame.window_index);
                report(&det, &frame, p, hop_s, &mut watch);
            })
        };
        #[cfg(feature = "cost")]
        let r = cost::time(&cost::PUSH, &mut push);
        #[cfg(not(feature = "cost"))]
        let r = push();
        if r.is_err() {
            fail("internal: block length mismatch");
        }
    }
    if let Some(frame) = fx.finish() {
        windows += 1;
        let p = phase_of(tally, frame.window_index);
        report(&det, &frame, p, hop_s, &mut watch);
    }
    #[cfg(feature = "cost")]
    say!(
        "avm-firmware: cost: {} samples x {} channels, {} windows; SysTick ticks: push_slice {} (scoring included), scoring {}",
        source.samples(),
        CH,
        windows,
        cost::ticks(&cost::PUSH),
        cost::ticks(&cost::SCORE)
    );
    let stack_bytes = stack::high_water_bytes();
    say!(
        "avm-firmware: {} windows, {} alarms, {} without verdict, {} alerts raised{}; stack high-water {} bytes",
        windows,
        watch.alarms,
        watch.no_verdict,
        watch.alerts,
        if watch.alerter.raised_at().is_some() { " (one still up)" } else { "" },
        stack_bytes
    );
    #[cfg(feature = "defmt")]
    defmt::info!(
        "avm-firmware: {=u32} windows, {=u32} alarms, {=u32} alerts, stack {=u32} bytes",
        windows,
        watch.alarms,
        watch.alerts,
        stack_bytes
    );
    debug::exit(debug::EXIT_SUCCESS);
    #[allow(clippy::empty_loop)]
    loop {}
}
