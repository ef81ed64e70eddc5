//! avm-core for C: an `extern "C"` API over the same feature extractor, detector, phase tally
//! and alert policy the Rust firmware and the trainer use, for firmware written in C.
//!
//! The header `include/avm.h` is generated from this file by cbindgen (`build.rs`; a test
//! fails when the committed header is stale: `AVM_BLESS=1 cargo test -p avm-capi` rewrites it).
//! The library is a `staticlib`: `libavm_capi.a` for `thumbv7em-none-eabihf` (no heap, no
//! OS; `cargo build -p avm-capi --target thumbv7em-none-eabihf --profile firmware`) and for the
//! host.
//!
//! # Contract
//! - **Memory**: the library allocates nothing. Every object lives in storage the caller
//!   declares (`static avm_extractor_t fx;`: the types carry their size and alignment, also
//!   exported as `AVM_*_SIZE` and `AVM_STORAGE_ALIGN`), typically in `.bss`. An `*_init`
//!   function makes storage usable; every other function refuses storage that was not
//!   initialised (`AVM_STATUS_NOT_INITIALISED`), including zeroed `.bss`.
//! - **Bundles are parsed in place**: [`avm_detector_parse`] keeps a pointer to the bundle's
//!   bytes, which must stay valid and unchanged while the detector (or an extractor, tally or
//!   alerter initialised from it) is used. Any alignment.
//! - **Errors**: every fallible function returns an [`AvmStatus`] (0 = `AVM_STATUS_OK`, negative
//!   = refused, nothing changed); [`avm_status_text`] names it, and the two functions that refuse
//!   untrusted input ([`avm_detector_parse`], [`avm_extractor_init`]) also write the exact
//!   reason (for example `bundle checksum mismatch: ...`) to an optional caller buffer.
//! - **No panics across the boundary**: every argument is checked; there is no panic path by
//!   design. Should one happen (a bug), the target build's panic handler executes a permanent
//!   undefined instruction (`udf`), i.e. your firmware's HardFault handler runs; the host build
//!   aborts (Rust's `extern "C"` functions never unwind into C).
//! - **Threads and interrupts**: objects are not shared. Call the functions on one object from
//!   one context at a time. A frame callback must not call `avm_extractor_*` on the extractor
//!   that is calling it (`AVM_STATUS_BUSY`); it may use every other object.
//! - **Bits**: the frames, scores, verdicts and alerts are those of avm-core in Rust, bit for
//!   bit (the parity suite runs the C example firmware under QEMU against the Rust firmware and
//!   the host).
//!
//! This build's capacities are compile-time constants ([`AVM_CHANNELS`], [`AVM_FFT_MAX`]; no
//! envelope path): a bundle for another channel count or a longer FFT is refused at parse time.

#![cfg_attr(target_os = "none", no_std)]
#![deny(missing_docs)]

use avm_core::{
    AlertKind, Alerter, Detector, FeatureExtractor, FeatureFrame, PHASE_UNKNOWN, PhaseTally, Verdict,
};
use core::ffi::{c_char, c_void};
use core::fmt::{self, Write as _};
use core::mem::{align_of, size_of};
use core::ptr;

/// Vibration channels of this build.
pub const AVM_CHANNELS: usize = 2;
/// Largest FFT this build's extractor runs (a bundle's `fft_len` must not exceed it).
pub const AVM_FFT_MAX: usize = 1024;
/// Most features one channel can have (`avm_core::MAX_FEATURES_PER_CHANNEL`).
pub const AVM_MAX_FEATURES_PER_CHANNEL: usize = 47;
/// Capacity of a frame's flat feature vector: `AVM_CHANNELS * AVM_MAX_FEATURES_PER_CHANNEL`.
pub const AVM_MAX_FEATURES: usize = 94;
/// The phase code of a sample whose flight phase is not known.
pub const AVM_PHASE_UNKNOWN: u8 = 255;
/// Bytes of an [`AvmExtractor`] (`AVM_EXTRACTOR_WORDS` 64-bit words).
pub const AVM_EXTRACTOR_SIZE: usize = 24576;
/// Bytes of an [`AvmDetector`] (`AVM_DETECTOR_WORDS` 64-bit words).
pub const AVM_DETECTOR_SIZE: usize = 512;
/// Bytes of an [`AvmPhaseTally`] (`AVM_PHASE_TALLY_WORDS` 64-bit words).
pub const AVM_PHASE_TALLY_SIZE: usize = 1152;
/// Bytes of an [`AvmAlerter`] (`AVM_ALERTER_WORDS` 64-bit words).
pub const AVM_ALERTER_SIZE: usize = 64;
/// 64-bit words of an [`AvmExtractor`].
pub const AVM_EXTRACTOR_WORDS: usize = 3072;
/// 64-bit words of an [`AvmDetector`].
pub const AVM_DETECTOR_WORDS: usize = 64;
/// 64-bit words of an [`AvmPhaseTally`].
pub const AVM_PHASE_TALLY_WORDS: usize = 144;
/// 64-bit words of an [`AvmAlerter`].
pub const AVM_ALERTER_WORDS: usize = 8;
/// Alignment of every storage type (bytes).
pub const AVM_STORAGE_ALIGN: usize = 8;
/// [`AvmAlertEvent::kind`]: no event.
pub const AVM_ALERT_NONE: u8 = 0;
/// [`AvmAlertEvent::kind`]: an alert was raised.
pub const AVM_ALERT_RAISED: u8 = 1;
/// [`AvmAlertEvent::kind`]: the alert was cleared.
pub const AVM_ALERT_CLEARED: u8 = 2;

type Fx = FeatureExtractor<AVM_CHANNELS, AVM_FFT_MAX>;

/// What a function did. 0 is success; every refusal is negative and changed nothing.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AvmStatus {
    /// Done.
    Ok = 0,
    /// A required pointer was NULL.
    NullPointer = -1,
    /// Storage not aligned to `AVM_STORAGE_ALIGN`.
    Misaligned = -2,
    /// Storage not initialised by its `*_init` function (or zeroed).
    NotInitialised = -3,
    /// The bundle was refused (corrupted, foreign, or not for this build); see the reason.
    BundleRefused = -4,
    /// The bundle's extractor configuration cannot run in this build; see the reason.
    ConfigRefused = -5,
    /// A phase code outside the bundle's phase table (and not `AVM_PHASE_UNKNOWN`).
    Phase = -6,
    /// The frame's feature count is not the detector's.
    FeatureCount = -7,
    /// The window's phase is not known yet: not all of its samples were counted.
    PhasePending = -8,
    /// The window's phase is no longer known: the tally keeps the last few hops only.
    PhaseStale = -9,
    /// A channel index at or above `AVM_CHANNELS`.
    Channel = -10,
    /// A length whose byte count overflows the address space.
    Length = -11,
    /// The extractor is delivering a frame: a frame callback called back into it.
    Busy = -12,
}

/// The text of a status code (a static, NUL-terminated string; never NULL).
#[unsafe(no_mangle)]
pub extern "C" fn avm_status_text(status: i32) -> *const c_char {
    let s: &'static core::ffi::CStr = match status {
        0 => c"ok",
        -1 => c"a required pointer is NULL",
        -2 => c"storage is not aligned to AVM_STORAGE_ALIGN",
        -3 => c"storage was not initialised by its *_init function",
        -4 => c"the detector bundle was refused",
        -5 => c"the bundle's extractor configuration cannot run in this build",
        -6 => c"phase code outside the bundle's phase table",
        -7 => c"the frame's feature count is not the detector's",
        -8 => c"the window's phase is not known yet (samples still to come)",
        -9 => c"the window's phase is no longer known (older than the tally keeps)",
        -10 => c"channel index out of range",
        -11 => c"length overflows the address space",
        -12 => c"the extractor is busy delivering a frame (callback re-entered it)",
        _ => c"unknown status code",
    };
    s.as_ptr()
}

// The four storage types are written out (not made by a macro) because cbindgen reads the
// source as written and would leave macro-made structs opaque in the header.

/// Storage of a feature extractor (`AVM_EXTRACTOR_SIZE` bytes): [`avm_extractor_init`].
#[repr(C)]
pub struct AvmExtractor {
    /// Opaque: initialise with `avm_extractor_init`.
    pub opaque: [u64; AVM_EXTRACTOR_WORDS],
}

/// Storage of a parsed detector bundle (`AVM_DETECTOR_SIZE` bytes): [`avm_detector_parse`].
#[repr(C)]
pub struct AvmDetector {
    /// Opaque: initialise with `avm_detector_parse`.
    pub opaque: [u64; AVM_DETECTOR_WORDS],
}

/// Storage of a flight-phase tally (`AVM_PHASE_TALLY_SIZE` bytes): [`avm_phase_tally_init`].
#[repr(C)]
pub struct AvmPhaseTally {
    /// Opaque: initialise with `avm_phase_tally_init`.
    pub opaque: [u64; AVM_PHASE_TALLY_WORDS],
}

/// Storage of an alert state machine (`AVM_ALERTER_SIZE` bytes): [`avm_alerter_init`].
#[repr(C)]
pub struct AvmAlerter {
    /// Opaque: initialise with `avm_alerter_init`.
    pub opaque: [u64; AVM_ALERTER_WORDS],
}

/// What lives in a storage type: a state word (a magic when initialised), then the object.
#[repr(C)]
struct Slot<T> {
    state: u32,
    value: T,
}

struct Extractor {
    fx: Fx,
    /// The shaft speed each channel is referenced to, held until the next update (rpm).
    speed_rpm: [f32; AVM_CHANNELS],
}

const MAGIC_EXTRACTOR: u32 = u32::from_le_bytes(*b"AVMX");
const MAGIC_DETECTOR: u32 = u32::from_le_bytes(*b"AVMD");
const MAGIC_TALLY: u32 = u32::from_le_bytes(*b"AVMT");
const MAGIC_ALERTER: u32 = u32::from_le_bytes(*b"AVMA");
/// The extractor's state word while it delivers frames.
const BUSY_EXTRACTOR: u32 = u32::from_le_bytes(*b"avmx");

// The storage types hold their objects on every target (the sizes are literals so that
// cbindgen can write them into the header).
const _: () = {
    assert!(AVM_MAX_FEATURES_PER_CHANNEL == avm_core::MAX_FEATURES_PER_CHANNEL);
    assert!(AVM_MAX_FEATURES == AVM_CHANNELS * AVM_MAX_FEATURES_PER_CHANNEL);
    assert!(AVM_PHASE_UNKNOWN == PHASE_UNKNOWN);
    assert!(size_of::<Slot<Extractor>>() <= size_of::<AvmExtractor>());
    assert!(size_of::<Slot<Detector<'static>>>() <= size_of::<AvmDetector>());
    assert!(size_of::<Slot<PhaseTally>>() <= size_of::<AvmPhaseTally>());
    assert!(size_of::<Slot<Alerter>>() <= size_of::<AvmAlerter>());
    assert!(align_of::<Slot<Extractor>>() <= AVM_STORAGE_ALIGN);
    assert!(align_of::<Slot<Detector<'static>>>() <= AVM_STORAGE_ALIGN);
    assert!(align_of::<Slot<PhaseTally>>() <= AVM_STORAGE_ALIGN);
    assert!(align_of::<Slot<Alerter>>() <= AVM_STORAGE_ALIGN);
    assert!(align_of::<AvmExtractor>() == AVM_STORAGE_ALIGN);
    assert!(AVM_EXTRACTOR_SIZE == 8 * AVM_EXTRACTOR_WORDS && AVM_DETECTOR_SIZE == 8 * AVM_DETECTOR_WORDS);
    assert!(AVM_PHASE_TALLY_SIZE == 8 * AVM_PHASE_TALLY_WORDS && AVM_ALERTER_SIZE == 8 * AVM_ALERTER_WORDS);
};

/// Checks a storage pointer (non-NULL, aligned) and returns it as its slot.
fn slot_ptr<S, T>(p: *const S) -> Result<*mut Slot<T>, AvmStatus> {
    if p.is_null() {
        Err(AvmStatus::NullPointer)
    } else if !(p as usize).is_multiple_of(AVM_STORAGE_ALIGN) {
        Err(AvmStatus::Misaligned)
    } else {
        Ok(p.cast_mut().cast())
    }
}

/// The object in initialised storage.
///
/// # Safety
/// `p` is NULL or points to storage of type `S` that no other live reference aliases.
unsafe fn object<'a, S, T>(p: *const S, magic: u32) -> Result<&'a mut T, AvmStatus> {
    let slot = slot_ptr::<S, T>(p)?;
    // SAFETY: `slot` is aligned and points to at least size_of::<Slot<T>>() bytes (the const
    // assertions above); the state word is plain data, readable whatever the bytes are.
    let state = unsafe { ptr::addr_of!((*slot).state).read() };
    if state == magic {
        // SAFETY: the state word is written only after `value` was initialised.
        Ok(unsafe { &mut *ptr::addr_of_mut!((*slot).value) })
    } else if state == BUSY_EXTRACTOR && magic == MAGIC_EXTRACTOR {
        Err(AvmStatus::Busy)
    } else {
        Err(AvmStatus::NotInitialised)
    }
}

/// Writes `value` into storage and marks it initialised.
///
/// # Safety
/// `p` is NULL or points to storage of type `S` that nothing else references.
unsafe fn init<S, T>(p: *mut S, magic: u32, value: T) -> AvmStatus {
    match slot_ptr::<S, T>(p) {
        Ok(slot) => {
            // SAFETY: aligned, large enough, exclusively ours (caller's contract).
            unsafe {
                ptr::addr_of_mut!((*slot).value).write(value);
                ptr::addr_of_mut!((*slot).state).write(magic);
            }
            AvmStatus::Ok
        }
        Err(e) => e,
    }
}

/// Writes `args` to a caller buffer of `len` bytes as a NUL-terminated string, cut to fit.
///
/// # Safety
/// `buf` is NULL or valid for `len` bytes of writes.
unsafe fn write_reason(buf: *mut c_char, len: usize, args: fmt::Arguments<'_>) {
    if buf.is_null() || len == 0 {
        return;
    }
    // SAFETY: caller's contract.
    let out = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), len) };
    struct Cut<'b> {
        out: &'b mut [u8],
        at: usize,
    }
    impl fmt::Write for Cut<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let room = self.out.len() - 1 - self.at;
            let n = s.len().min(room);
            self.out[self.at..self.at + n].copy_from_slice(&s.as_bytes()[..n]);
            self.at += n;
            Ok(())
        }
    }
    let mut w = Cut { out, at: 0 };
    let _ = w.write_fmt(args);
    let at = w.at;
    w.out[at] = 0;
}

/// Parses and checks a detector bundle in place (CRC-32, format, feature schema, scaler,
/// network, phases, alert policy) and that it fits this build ([`AVM_CHANNELS`] channels, an
/// `fft_len` of at most [`AVM_FFT_MAX`]).
///
/// On refusal returns `AVM_STATUS_BUNDLE_REFUSED` and, when `why` is not NULL, writes the
/// reason there (NUL-terminated, cut to `why_len` bytes). `bytes` must outlive the detector.
/// Any address works; at a 4-byte-aligned address the scoring reads the network's weights as
/// `float`s directly (about twice as fast on a Cortex-M4F; the same results).
///
/// # Safety
/// `det` points to an [`AvmDetector`]; `bytes` is valid for `len` bytes of reads (may be NULL
/// only when `len` is 0); `why` is NULL or valid for `why_len` bytes of writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn avm_detector_parse(
    det: *mut AvmDetector,
    bytes: *const u8,
    len: usize,
    why: *mut c_char,
    why_len: usize,
) -> AvmStatus {
    if let Err(e) = slot_ptr::<_, Detector<'static>>(det) {
        return e;
    }
    let bytes: &'static [u8] = if len == 0 {
        &[]
    } else if bytes.is_null() {
        return AvmStatus::NullPointer;
    } else {
        // SAFETY: caller's contract: valid for `len` bytes for as long as the detector is used.
        unsafe { core::slice::from_raw_parts(bytes, len) }
    };
    match Detector::parse_for::<AVM_CHANNELS, AVM_FFT_MAX>(bytes) {
        // SAFETY: `det` checked above; the caller gives it to us.
        Ok(d) => unsafe { init(det, MAGIC_DETECTOR, d) },
        Err(e) => {
            // SAFETY: caller's contract on `why`.
            unsafe { write_reason(why, why_len, format_args!("{e}")) };
            AvmStatus::BundleRefused
        }
    }
}

/// A detector's facts, for logs and start-up checks.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct AvmDetectorInfo {
    /// The model's version: major, minor, patch.
    pub version: [u16; 3],
    /// Vibration channels.
    pub channels: u16,
    /// Features per window (all channels).
    pub features: u16,
    /// Phases in the phase table (codes 0 .. phases-1).
    pub phases: u16,
    /// Layers of the network.
    pub layers: u16,
    /// The bundle's length, bytes.
    pub len_bytes: u32,
    /// The bundle's CRC-32.
    pub checksum: u32,
    /// The global threshold (unknown phase).
    pub threshold: f32,
    /// Sample rate the extractor expects, Hz.
    pub sample_rate_hz: u32,
    /// Window length, samples.
    pub window_len_samples: u32,
    /// Hop between windows, samples.
    pub hop_len_samples: u32,
    /// FFT length, samples.
    pub fft_len: u32,
    /// Longest run of missing samples repaired by interpolation.
    pub max_gap_samples: u32,
    /// Alert policy: alarms among the watched windows that raise an alert (M).
    pub raise_count: u8,
    /// Alert policy: judged windows watched (N).
    pub raise_window: u8,
    /// Alert policy: consecutive quiet windows that clear an alert.
    pub clear_count: u8,
    /// Alert policy: an alert once raised stays up until the flight ends (0/1).
    pub latch: u8,
    /// Alert policy: a window is quiet when its score is at most this times its threshold.
    pub clear_fraction: f32,
}

/// Fills `info` with a parsed detector's facts.
///
/// # Safety
/// `det` and `info` point to their types.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn avm_detector_get_info(
    det: *const AvmDetector,
    info: *mut AvmDetectorInfo,
) -> AvmStatus {
    // SAFETY: caller's contract.
    let d: &Detector<'static> = match unsafe { object(det, MAGIC_DETECTOR) } {
        Ok(d) => d,
        Err(e) => return e,
    };
    if info.is_null() {
        return AvmStatus::NullPointer;
    }
    let cfg = d.config();
    let policy = d.alert_policy();
    let [major, minor, patch] = d.version();
    let narrow = |n: usize| u16::try_from(n).unwrap_or(u16::MAX);
    let out = AvmDetectorInfo {
        version: [major, minor, patch],
        channels: narrow(d.channels()),
        features: narrow(d.features()),
        phases: narrow(d.phase_count()),
        layers: narrow(d.network().layers()),
        len_bytes: u32::try_from(d.len_bytes()).unwrap_or(u32::MAX),
        checksum: d.checksum(),
        threshold: d.threshold(),
        sample_rate_hz: cfg.sample_rate_hz,
        window_len_samples: cfg.window_len_samples,
        hop_len_samples: cfg.hop_len_samples,
        fft_len: cfg.fft_len,
        max_gap_samples: cfg.max_gap_samples,
        raise_count: policy.raise_count,
        raise_window: policy.raise_window,
        clear_count: policy.clear_count,
        latch: u8::from(policy.latch),
        clear_fraction: policy.clear_fraction,
    };
    // SAFETY: non-NULL; caller's contract.
    unsafe { info.write(out) };
    AvmStatus::Ok
}

/// Copies the name of phase `code` (as the data contract spells it) to `name` as a
/// NUL-terminated string cut to `name_len` bytes, and its threshold and "no verdict" flag to
/// the optional outputs. `AVM_STATUS_PHASE` for a code outside the table.
///
/// # Safety
/// `det` points to an [`AvmDetector`]; each output is NULL or valid for writes (`name` for
/// `name_len` bytes).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn avm_detector_phase(
    det: *const AvmDetector,
    code: u8,
    name: *mut c_char,
    name_len: usize,
    threshold: *mut f32,
    no_verdict: *mut u8,
) -> AvmStatus {
    // SAFETY: caller's contract.
    let d: &Detector<'static> = match unsafe { object(det, MAGIC_DETECTOR) } {
        Ok(d) => d,
        Err(e) => return e,
    };
    let Some(p) = d.phase(usize::from(code)) else { return AvmStatus::Phase };
    // SAFETY: caller's contract on each output.
    unsafe {
        write_reason(name, name_len, format_args!("{}", p.name));
        if !threshold.is_null() {
            threshold.write(p.threshold);
        }
        if !no_verdict.is_null() {
            no_verdict.write(u8::from(p.no_verdict));
        }
    }
    AvmStatus::Ok
}

/// What the sanitiser did to one channel in one window.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AvmChannelQuality {
    /// Samples replaced by linear interpolation across a short gap.
    pub gap_filled: u32,
    /// Samples replaced as isolated spikes.
    pub clipped: u32,
    /// Samples from gaps too long to repair (any makes the window invalid).
    pub unrepaired: u32,
    /// Implausible shaft-speed samples replaced by the last plausible one.
    pub speed_held: u32,
}

/// The features of one window.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct AvmFrame {
    /// Index (from the start of the stream) of the window's first sample.
    pub start_sample: u64,
    /// 0 for the first window of the stream, then +1 per hop.
    pub window_index: u32,
    /// Features per channel.
    pub per_channel: u16,
    /// Features in `features`: `AVM_CHANNELS * per_channel`.
    pub n_features: u16,
    /// 1 when no channel has an unrepaired sample in the window.
    pub valid: u8,
    /// 1 when the rates of change were computed against the previous window.
    pub roc_valid: u8,
    /// Per-channel sanitiser counts.
    pub quality: [AvmChannelQuality; AVM_CHANNELS],
    /// The flat, channel-major feature vector: feature `k` of channel `c` at
    /// `c * per_channel + k`; entries from `n_features` on are 0.
    pub features: [f32; AVM_MAX_FEATURES],
}

impl AvmFrame {
    fn from_frame(f: &FeatureFrame<AVM_CHANNELS>) -> AvmFrame {
        let mut features = [0.0f32; AVM_MAX_FEATURES];
        let mut n = 0;
        for (d, x) in features.iter_mut().zip(f.flat()) {
            *d = x;
            n += 1;
        }
        AvmFrame {
            start_sample: f.start_sample,
            window_index: f.window_index,
            per_channel: f.per_channel,
            n_features: n as u16,
            valid: u8::from(f.valid),
            roc_valid: u8::from(f.roc_valid),
            quality: f.quality.map(|q| AvmChannelQuality {
                gap_filled: q.gap_filled,
                clipped: q.clipped,
                unrepaired: q.unrepaired,
                speed_held: q.speed_held,
            }),
            features,
        }
    }
}

/// Called with every frame an extractor completes; `user` is the pointer given with the
/// samples. The frame is valid during the call only.
pub type AvmFrameFn = Option<unsafe extern "C" fn(user: *mut c_void, frame: *const AvmFrame)>;

/// Initialises an extractor for a parsed detector's configuration, in place (it is never
/// copied: keep it in static storage). The held shaft speed of every channel starts at 0 rpm.
/// On refusal (`AVM_STATUS_CONFIG_REFUSED`) the reason goes to `why` as for
/// [`avm_detector_parse`].
///
/// # Safety
/// `fx` points to an [`AvmExtractor`] nothing else references; `det` to a parsed detector;
/// `why` is NULL or valid for `why_len` bytes of writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn avm_extractor_init(
    fx: *mut AvmExtractor,
    det: *const AvmDetector,
    why: *mut c_char,
    why_len: usize,
) -> AvmStatus {
    // SAFETY: caller's contract.
    let d: &Detector<'static> = match unsafe { object(det, MAGIC_DETECTOR) } {
        Ok(d) => d,
        Err(e) => return e,
    };
    let slot = match slot_ptr::<_, Extractor>(fx) {
        Ok(s) => s,
        Err(e) => return e,
    };
    // SAFETY: aligned, large enough, exclusively ours. All-zero bytes are a valid unconfigured
    // extractor (`FeatureExtractor::UNCONFIGURED` is all zero: a test checks it) and 0.0 rpm, so
    // the 24 KB object is never built on the stack nor copied from a flash image.
    let x = unsafe {
        ptr::write_bytes(slot.cast::<u8>(), 0, size_of::<Slot<Extractor>>());
        &mut *ptr::addr_of_mut!((*slot).value)
    };
    if let Err(e) = x.fx.configure(d.config()) {
        // SAFETY: caller's contract on `why`.
        unsafe { write_reason(why, why_len, format_args!("bundle extractor config: {e}")) };
        return AvmStatus::ConfigRefused;
    }
    // SAFETY: as above.
    unsafe { ptr::addr_of_mut!((*slot).state).write(MAGIC_EXTRACTOR) };
    AvmStatus::Ok
}

/// Sets the shaft speed channel `channel` is referenced to, from this sample on (rpm; held
/// until the next update, as a tachometer update would be). Any value is accepted: an
/// implausible one (NaN, negative, above the configuration's maximum) is replaced by the last
/// plausible speed and counted in the window's `speed_held`.
///
/// # Safety
/// `fx` points to an [`AvmExtractor`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn avm_extractor_set_speed(fx: *mut AvmExtractor, channel: u32, rpm: f32) -> AvmStatus {
    // SAFETY: caller's contract.
    let x: &mut Extractor = match unsafe { object(fx, MAGIC_EXTRACTOR) } {
        Ok(x) => x,
        Err(e) => return e,
    };
    match x.speed_rpm.get_mut(channel as usize) {
        Some(s) => {
            *s = rpm;
            AvmStatus::Ok
        }
        None => AvmStatus::Channel,
    }
}

/// Sets the shaft speed of every channel (one shaft), as [`avm_extractor_set_speed`].
///
/// # Safety
/// `fx` points to an [`AvmExtractor`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn avm_extractor_set_speed_all(fx: *mut AvmExtractor, rpm: f32) -> AvmStatus {
    // SAFETY: caller's contract.
    let x: &mut Extractor = match unsafe { object(fx, MAGIC_EXTRACTOR) } {
        Ok(x) => x,
        Err(e) => return e,
    };
    x.speed_rpm = [rpm; AVM_CHANNELS];
    AvmStatus::Ok
}

/// Instants staged per call into the core (2 channels: 1 KiB of stack for vibration and speed).
const STAGE: usize = 64;

/// Pushes `instants` sample instants through the extractor, `sample(i, c)` giving channel `c`
/// of instant `i` in g, and delivers every completed frame to `on_frame`.
///
/// # Safety
/// `fx` points to an [`AvmExtractor`]; `on_frame` is safe to call with `user`.
unsafe fn push_with(
    fx: *mut AvmExtractor,
    instants: usize,
    sample: impl Fn(usize, usize) -> f32,
    on_frame: AvmFrameFn,
    user: *mut c_void,
) -> AvmStatus {
    // SAFETY: caller's contract.
    let x: &mut Extractor = match unsafe { object(fx, MAGIC_EXTRACTOR) } {
        Ok(x) => x,
        Err(e) => return e,
    };
    let Some(callback) = on_frame else { return AvmStatus::NullPointer };
    let state = fx.cast::<Slot<Extractor>>();
    // The state word is outside `x` (disjoint field), so marking the extractor busy does not
    // touch the reference; a callback that calls back into this extractor sees it.
    // SAFETY: `state` was checked by `object`.
    unsafe { ptr::addr_of_mut!((*state).state).write(BUSY_EXTRACTOR) };
    let mut vib = [[0.0f32; AVM_CHANNELS]; STAGE];
    let mut i = 0;
    while i < instants {
        let n = (instants - i).min(STAGE);
        for (k, v) in vib[..n].iter_mut().enumerate() {
            for (c, s) in v.iter_mut().enumerate() {
                *s = sample(i + k, c);
            }
        }
        push_stage(x, &vib[..n], callback, user);
        i += n;
    }
    // SAFETY: as above.
    unsafe { ptr::addr_of_mut!((*state).state).write(MAGIC_EXTRACTOR) };
    AvmStatus::Ok
}

/// One staged block into the core. Not inlined: the `f32` and `i16` entry points share this
/// one copy of the extractor's per-sample code (2.7 KiB of flash each when inlined).
#[inline(never)]
fn push_stage(
    x: &mut Extractor,
    vib: &[[f32; AVM_CHANNELS]],
    callback: unsafe extern "C" fn(*mut c_void, *const AvmFrame),
    user: *mut c_void,
) {
    let rpm = [x.speed_rpm; STAGE];
    // The lengths are equal by construction: push_slice cannot refuse them.
    let _ = x.fx.push_slice(vib, &rpm[..vib.len()], |f| {
        let frame = AvmFrame::from_frame(&f);
        // SAFETY: the entry points' contract on the callback.
        unsafe { callback(user, &frame) };
    });
}

/// Pushes `instants` sample instants of vibration in g, interleaved by channel
/// (`vib_g[i * AVM_CHANNELS + c]`), calling `on_frame(user, frame)` for every window completed
/// (see avm-core's latency contract: window `k`'s frame comes with sample
/// `k·hop + window - 1 + L`, `L` ≤ `max_gap_samples + 1`). Each instant uses the held shaft
/// speeds. Any float is accepted (NaN/Inf are gaps). How a stream is cut into calls never
/// changes a frame.
///
/// # Safety
/// `fx` points to an [`AvmExtractor`]; `vib_g` is valid for `instants * AVM_CHANNELS` reads
/// (may be NULL when `instants` is 0); `on_frame` may be called with `user`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn avm_extractor_push_f32(
    fx: *mut AvmExtractor,
    vib_g: *const f32,
    instants: usize,
    on_frame: AvmFrameFn,
    user: *mut c_void,
) -> AvmStatus {
    let Some(total) = instants.checked_mul(AVM_CHANNELS) else { return AvmStatus::Length };
    let data: &[f32] = if total == 0 {
        &[]
    } else if vib_g.is_null() {
        return AvmStatus::NullPointer;
    } else {
        // SAFETY: caller's contract.
        unsafe { core::slice::from_raw_parts(vib_g, total) }
    };
    // SAFETY: caller's contract.
    unsafe { push_with(fx, instants, |i, c| data[i * AVM_CHANNELS + c], on_frame, user) }
}

/// [`avm_extractor_push_f32`] for 16-bit ADC counts, interleaved by channel: channel `c`'s
/// sample in g is `counts * g_per_count[c]` (its sensitivity), computed in `float` exactly as
/// avm-core's `wire::counts_to_g`. `INT16_MIN` is not special: as a value far outside the
/// configuration's full scale it is treated as a missing sample.
///
/// # Safety
/// As [`avm_extractor_push_f32`]; `g_per_count` is valid for `AVM_CHANNELS` reads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn avm_extractor_push_i16(
    fx: *mut AvmExtractor,
    counts: *const i16,
    instants: usize,
    g_per_count: *const f32,
    on_frame: AvmFrameFn,
    user: *mut c_void,
) -> AvmStatus {
    let Some(total) = instants.checked_mul(AVM_CHANNELS) else { return AvmStatus::Length };
    if g_per_count.is_null() {
        return AvmStatus::NullPointer;
    }
    // SAFETY: caller's contract.
    let scale: [f32; AVM_CHANNELS] = unsafe { g_per_count.cast::<[f32; AVM_CHANNELS]>().read_unaligned() };
    let data: &[i16] = if total == 0 {
        &[]
    } else if counts.is_null() {
        return AvmStatus::NullPointer;
    } else {
        // SAFETY: caller's contract.
        unsafe { core::slice::from_raw_parts(counts, total) }
    };
    // SAFETY: caller's contract.
    unsafe {
        push_with(
            fx,
            instants,
            |i, c| avm_core::wire::counts_to_g(data[i * AVM_CHANNELS + c], scale[c]),
            on_frame,
            user,
        )
    }
}

/// Ends the stream: releases the samples the sanitiser holds back and delivers the frame they
/// complete, if any. The extractor then starts a new stream (same configuration, held speeds
/// kept).
///
/// # Safety
/// As [`avm_extractor_push_f32`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn avm_extractor_finish(
    fx: *mut AvmExtractor,
    on_frame: AvmFrameFn,
    user: *mut c_void,
) -> AvmStatus {
    // SAFETY: caller's contract.
    let x: &mut Extractor = match unsafe { object(fx, MAGIC_EXTRACTOR) } {
        Ok(x) => x,
        Err(e) => return e,
    };
    let Some(callback) = on_frame else { return AvmStatus::NullPointer };
    if let Some(f) = x.fx.finish() {
        let frame = AvmFrame::from_frame(&f);
        let state = fx.cast::<Slot<Extractor>>();
        // SAFETY: checked by `object`; the callback may not re-enter (see push_with).
        unsafe {
            ptr::addr_of_mut!((*state).state).write(BUSY_EXTRACTOR);
            callback(user, &frame);
            ptr::addr_of_mut!((*state).state).write(MAGIC_EXTRACTOR);
        }
    }
    AvmStatus::Ok
}

/// Forgets the stream (back to sample 0), keeping the configuration and the held speeds.
///
/// # Safety
/// `fx` points to an [`AvmExtractor`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn avm_extractor_reset(fx: *mut AvmExtractor) -> AvmStatus {
    // SAFETY: caller's contract.
    match unsafe { object::<_, Extractor>(fx, MAGIC_EXTRACTOR) } {
        Ok(x) => {
            x.fx.reset();
            AvmStatus::Ok
        }
        Err(e) => e,
    }
}

/// Samples (instants) pushed since the stream started, or 0 for unusable storage.
///
/// # Safety
/// `fx` points to an [`AvmExtractor`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn avm_extractor_samples(fx: *const AvmExtractor) -> u64 {
    // SAFETY: caller's contract.
    unsafe { object::<_, Extractor>(fx, MAGIC_EXTRACTOR) }.map_or(0, |x| x.fx.samples_pushed())
}

/// The verdict on one window.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AvmVerdict {
    /// The frame's window index.
    pub window_index: u32,
    /// The anomaly score (reconstruction MSE of the scaled features).
    pub score: f32,
    /// The threshold it was compared with (the phase's, or the global one).
    pub threshold: f32,
    /// 1 when the window had no unrepaired gap.
    pub valid: u8,
    /// 1 when the window got a verdict (valid, and its phase is not "no verdict").
    pub judged: u8,
    /// 1 when judged and `score > threshold`.
    pub alarm: u8,
    /// The window's phase code (`AVM_PHASE_UNKNOWN` when not known).
    pub phase: u8,
}

impl AvmVerdict {
    fn from_verdict(v: &Verdict) -> AvmVerdict {
        AvmVerdict {
            window_index: v.window_index,
            score: v.score,
            threshold: v.threshold,
            valid: u8::from(v.valid),
            judged: u8::from(v.judged),
            alarm: u8::from(v.alarm),
            phase: v.phase,
        }
    }

    fn to_verdict(self) -> Verdict {
        Verdict {
            window_index: self.window_index,
            score: self.score,
            threshold: self.threshold,
            valid: self.valid != 0,
            judged: self.judged != 0,
            phase: self.phase,
            alarm: self.alarm != 0,
        }
    }
}

/// Scores a frame and judges it in flight phase `phase` (its threshold; a "no verdict" phase
/// gives none; `AVM_PHASE_UNKNOWN` uses the global threshold): exactly avm-core's
/// `Detector::assess_in_phase`.
///
/// # Safety
/// `det` points to a parsed detector, `frame` to a frame, `out` to a verdict.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn avm_assess(
    det: *const AvmDetector,
    frame: *const AvmFrame,
    phase: u8,
    out: *mut AvmVerdict,
) -> AvmStatus {
    // SAFETY: caller's contract.
    let d: &Detector<'static> = match unsafe { object(det, MAGIC_DETECTOR) } {
        Ok(d) => d,
        Err(e) => return e,
    };
    if frame.is_null() || out.is_null() {
        return AvmStatus::NullPointer;
    }
    // SAFETY: non-NULL; caller's contract. Read unaligned-tolerant, as a copy.
    let f: AvmFrame = unsafe { frame.read_unaligned() };
    let n = usize::from(f.n_features);
    if n != d.features() || n > AVM_MAX_FEATURES {
        return AvmStatus::FeatureCount;
    }
    // `assess_in_phase` is `score` of the flat features, then `judge`: the same two calls here.
    let Ok(score) = d.score(&f.features[..n]) else { return AvmStatus::FeatureCount };
    match d.judge(f.window_index, score, f.valid != 0, phase) {
        Ok(v) => {
            // SAFETY: non-NULL; caller's contract.
            unsafe { out.write(AvmVerdict::from_verdict(&v)) };
            AvmStatus::Ok
        }
        Err(_) => AvmStatus::Phase,
    }
}

/// Initialises a flight-phase tally for a detector's windows. Push every sample's phase code
/// (in sample order, before the extractor sees the sample); ask the phase of a window when
/// its frame arrives.
///
/// # Safety
/// `tally` points to an [`AvmPhaseTally`] nothing else references; `det` to a parsed detector.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn avm_phase_tally_init(
    tally: *mut AvmPhaseTally,
    det: *const AvmDetector,
) -> AvmStatus {
    // SAFETY: caller's contract.
    let d: &Detector<'static> = match unsafe { object(det, MAGIC_DETECTOR) } {
        Ok(d) => d,
        Err(e) => return e,
    };
    // SAFETY: caller's contract.
    unsafe { init(tally, MAGIC_TALLY, PhaseTally::new(&d.config())) }
}

/// Counts `n` consecutive samples of phase `code` (`AVM_PHASE_UNKNOWN` when not known).
///
/// # Safety
/// `tally` points to an [`AvmPhaseTally`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn avm_phase_tally_push(tally: *mut AvmPhaseTally, code: u8, n: u32) -> AvmStatus {
    // SAFETY: caller's contract.
    match unsafe { object::<_, PhaseTally>(tally, MAGIC_TALLY) } {
        Ok(t) => {
            t.push_run(code, n);
            AvmStatus::Ok
        }
        Err(e) => e,
    }
}

/// The phase of window `window_index`: the code most of its samples had (ties to the lower
/// code; unknown loses ties), as the trainer computes it.
///
/// # Safety
/// `tally` points to an [`AvmPhaseTally`]; `code` to a byte.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn avm_phase_tally_window(
    tally: *const AvmPhaseTally,
    window_index: u32,
    code: *mut u8,
) -> AvmStatus {
    // SAFETY: caller's contract.
    let t: &PhaseTally = match unsafe { object(tally, MAGIC_TALLY) } {
        Ok(t) => t,
        Err(e) => return e,
    };
    if code.is_null() {
        return AvmStatus::NullPointer;
    }
    match t.majority(window_index) {
        Ok(c) => {
            // SAFETY: non-NULL; caller's contract.
            unsafe { code.write(c) };
            AvmStatus::Ok
        }
        Err(avm_core::phase::PhaseError::Stale { .. }) => AvmStatus::PhaseStale,
        Err(avm_core::phase::PhaseError::Incomplete { .. }) => AvmStatus::PhasePending,
        Err(_) => AvmStatus::NotInitialised,
    }
}

/// An alert going up or down.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AvmAlertEvent {
    /// `AVM_ALERT_NONE`, `AVM_ALERT_RAISED` or `AVM_ALERT_CLEARED`.
    pub kind: u8,
    /// Raised: alarms among the watched windows; cleared: the quiet run's length.
    pub count: u8,
    /// Raised: judged windows watched; cleared: the policy's clear count.
    pub of: u8,
    /// The window at which it happened.
    pub window_index: u32,
    /// That window's score.
    pub score: f32,
    /// That window's threshold.
    pub threshold: f32,
    /// The window the alert was raised at.
    pub raised_window: u32,
    /// The highest score while the alert was up (cleared), or the raising score.
    pub peak_score: f32,
}

/// Initialises the alert state machine of one flight with a detector's alert policy.
///
/// # Safety
/// `alerter` points to an [`AvmAlerter`] nothing else references; `det` to a parsed detector.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn avm_alerter_init(alerter: *mut AvmAlerter, det: *const AvmDetector) -> AvmStatus {
    // SAFETY: caller's contract.
    let d: &Detector<'static> = match unsafe { object(det, MAGIC_DETECTOR) } {
        Ok(d) => d,
        Err(e) => return e,
    };
    // The parser validated the policy; a refusal here would be a bug, reported as such.
    match Alerter::new(d.alert_policy()) {
        // SAFETY: caller's contract.
        Ok(a) => unsafe { init(alerter, MAGIC_ALERTER, a) },
        Err(_) => AvmStatus::BundleRefused,
    }
}

/// Feeds one window's verdict to the alert policy (M of N, hysteresis, latch). `event->kind`
/// is `AVM_ALERT_NONE` when nothing happened, else the event.
///
/// # Safety
/// `alerter` points to an [`AvmAlerter`], `verdict` to a verdict, `event` to an event.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn avm_alerter_step(
    alerter: *mut AvmAlerter,
    verdict: *const AvmVerdict,
    event: *mut AvmAlertEvent,
) -> AvmStatus {
    // SAFETY: caller's contract.
    let a: &mut Alerter = match unsafe { object(alerter, MAGIC_ALERTER) } {
        Ok(a) => a,
        Err(e) => return e,
    };
    if verdict.is_null() || event.is_null() {
        return AvmStatus::NullPointer;
    }
    // SAFETY: non-NULL; caller's contract.
    let v = unsafe { verdict.read_unaligned() }.to_verdict();
    let out = match a.step(&v) {
        None => AvmAlertEvent::default(),
        Some(e) => AvmAlertEvent {
            kind: match e.kind {
                AlertKind::Raised => AVM_ALERT_RAISED,
                AlertKind::Cleared => AVM_ALERT_CLEARED,
            },
            count: e.count,
            of: e.of,
            window_index: e.window_index,
            score: e.score,
            threshold: e.threshold,
            raised_window: e.raised_window,
            peak_score: e.peak_score,
        },
    };
    // SAFETY: non-NULL; caller's contract.
    unsafe { event.write(out) };
    AvmStatus::Ok
}

/// Starts a new flight: no alert up, no history.
///
/// # Safety
/// `alerter` points to an [`AvmAlerter`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn avm_alerter_reset(alerter: *mut AvmAlerter) -> AvmStatus {
    // SAFETY: caller's contract.
    match unsafe { object::<_, Alerter>(alerter, MAGIC_ALERTER) } {
        Ok(a) => {
            a.reset();
            AvmStatus::Ok
        }
        Err(e) => e,
    }
}

/// On the target a panic (there is no panic path by design: every argument is checked) stops
/// on a permanent undefined instruction: the firmware's HardFault handler runs.
#[cfg(all(target_os = "none", not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {
        #[cfg(target_arch = "arm")]
        // SAFETY: `udf` only raises a fault.
        unsafe {
            core::arch::asm!("udf #0")
        };
    }
}

#[cfg(test)]
mod tests;
