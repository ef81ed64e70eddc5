//! avm on a Cortex-M4F: a sensor loop that streams vibration and shaft-speed samples through
//! avm-core frame by frame (no heap), scores every window with the detector bundle and reports
//! the verdict.
//!
//! Inputs (the bundle and the flight), in this order of preference:
//! - `avm-detector.avmb` and `avm-input.avmi` in the host's working directory, read through
//!   semihosting (the parity tests use this to stream whole recorded flights);
//! - the bundle and the 20 s flight segment embedded in flash (`data/`, see `data/README.md`).
//!
//! Output, one pair of lines per window (semihosting stdout):
//! `window <i> t=<s> s: score <x> threshold <t> -> ok|ALARM|no verdict`, then the exact bits
//! `W <i> v<valid> r<roc_valid> a<alarm> s<score bits> f<feature bits,...>` the parity tests
//! compare with the host. With the `defmt` feature the same facts go through defmt instead.
//! A refused bundle or input prints why and exits with status 1; so does a panic.

#![no_std]
#![no_main]

use avm_core::{Detector, FeatureExtractor, FeatureFrame};
use cortex_m_rt::entry;
use cortex_m_semihosting::debug;
use panic_semihosting as _;

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
/// Samples per block handed to the core (one DMA half-buffer of a real sensor loop).
const BLOCK: usize = 256;

static EMBEDDED_BUNDLE: &[u8] = include_bytes!("../data/detector.avmb");
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

static mut BUNDLE_BUF: [u8; 160 * 1024] = [0; 160 * 1024];

/// The extractor lives in static RAM and is configured in place: no copy of its 21 KB on the stack.
static mut FX: FeatureExtractor<CH, FFT_MAX> = FeatureExtractor::UNCONFIGURED;

fn report(det: &Detector<'_>, frame: &FeatureFrame<CH>, hop_s: f32, alarms: &mut u32, no_verdict: &mut u32) {
    #[cfg(feature = "cost")]
    let assessed = cost::time(&cost::SCORE, || det.assess(frame));
    #[cfg(not(feature = "cost"))]
    let assessed = det.assess(frame);
    let v = match assessed {
        Ok(v) => v,
        Err(e) => {
            let mut msg = input::Msg::new();
            let _ = core::fmt::write(&mut msg, format_args!("scoring window {}: {e}", frame.window_index));
            fail(msg.as_str())
        }
    };
    *alarms += u32::from(v.alarm);
    *no_verdict += u32::from(!v.valid);
    let _verdict = if !v.valid {
        "no verdict"
    } else if v.alarm {
        "ALARM"
    } else {
        "ok"
    };
    let _t = frame.window_index as f32 * hop_s;
    say!(
        "window {} t={:.1} s: score {:.5} threshold {:.5} -> {}",
        v.window_index,
        _t,
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
}

#[entry]
fn main() -> ! {
    stack::paint();
    #[cfg(feature = "cost")]
    cost::start();
    // The bundle: from the host if it offers one, else the embedded one.
    // SAFETY: BUNDLE_BUF is only touched here, once, before anything else reads it.
    let buf: &'static mut [u8] = unsafe { &mut *core::ptr::addr_of_mut!(BUNDLE_BUF) };
    let bundle: &[u8] = match host::read_file(b"avm-detector.avmb\0", buf) {
        Ok(Some(n)) => &buf[..n],
        Ok(None) => EMBEDDED_BUNDLE,
        Err(e) => fail(e),
    };
    let det = match Detector::parse(bundle) {
        Ok(d) => d,
        Err(e) => {
            let mut msg = input::Msg::new();
            let _ = core::fmt::write(&mut msg, format_args!("refusing the detector bundle: {e}"));
            fail(msg.as_str())
        }
    };
    if det.channels() != CH {
        fail("refusing the detector bundle: it is not for 2 vibration channels");
    }
    let cfg = det.config();
    if cfg.fft_len as usize > FFT_MAX {
        fail("refusing the detector bundle: its fft_len is above this firmware's FFT_MAX (1024)");
    }
    // SAFETY: FX is only ever touched here, once.
    let fx: &'static mut FeatureExtractor<CH, FFT_MAX> = unsafe { &mut *core::ptr::addr_of_mut!(FX) };
    if let Err(e) = fx.configure(cfg) {
        // E.g. an envelope feature set on this build without envelope capacity (ENV_MAX = 0).
        let mut msg = input::Msg::new();
        let _ = core::fmt::write(&mut msg, format_args!("refusing the detector bundle: {e}"));
        fail(msg.as_str())
    }
    let [major, minor, patch] = det.version();
    say!(
        "avm-firmware: detector v{}.{}.{} ({} bytes, crc32 {:08x}), {} channels, {} features, {} layers, threshold {:.5}; window {} / hop {} samples at {} Hz",
        major,
        minor,
        patch,
        det.len_bytes(),
        det.checksum(),
        det.channels(),
        det.features(),
        det.network().layers(),
        det.threshold(),
        cfg.window_len_samples,
        cfg.hop_len_samples,
        cfg.sample_rate_hz
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
    let (mut windows, mut alarms, mut no_verdict) = (0u32, 0u32, 0u32);
    let mut vib = [[0.0f32; CH]; BLOCK];
    let mut rpm = [[0.0f32; CH]; BLOCK];
    loop {
        let n = match source.next_block(&mut vib, &mut rpm) {
            Ok(n) => n,
            Err(e) => fail(e),
        };
        if n == 0 {
            break;
        }
        let mut push = || {
            fx.push_slice(&vib[..n], &rpm[..n], |frame| {
                windows += 1;
                report(&det, &frame, hop_s, &mut alarms, &mut no_verdict);
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
        report(&det, &frame, hop_s, &mut alarms, &mut no_verdict);
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
        "avm-firmware: {} windows, {} alarms, {} without verdict; stack high-water {} bytes",
        windows,
        alarms,
        no_verdict,
        stack_bytes
    );
    #[cfg(feature = "defmt")]
    defmt::info!(
        "avm-firmware: {=u32} windows, {=u32} alarms, stack {=u32} bytes",
        windows,
        alarms,
        stack_bytes
    );
    debug::exit(debug::EXIT_SUCCESS);
    #[allow(clippy::empty_loop)]
    loop {}
}
