//! The C API against avm-core called directly: the same frames, verdicts and alerts bit for bit
//! on the firmware example's embedded flight segment, and every refusal. (The C example firmware
//! under QEMU is compared with the Rust firmware by the parity suite, tests/.)

use super::*;
use avm_core::wire::{Header, SampleFormat};
use std::path::PathBuf;
use std::vec::Vec;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn bundle() -> &'static [u8] {
    static B: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    B.get_or_init(|| std::fs::read(repo().join("firmware-example/data/detector.avmb")).unwrap())
}

/// The embedded segment: counts per instant and channel, the LSB, rpm and phase per instant.
struct Segment {
    counts: Vec<[i16; AVM_CHANNELS]>,
    lsb_g: f32,
    rpm: Vec<[f32; AVM_CHANNELS]>,
    phase: Vec<u8>,
}

fn segment() -> Segment {
    let b = std::fs::read(repo().join("firmware-example/data/flight_segment.avmq")).unwrap();
    let h = Header::parse(&b, SampleFormat::Q16).unwrap();
    let at = SampleFormat::Q16.header_bytes();
    let n = h.samples as usize;
    let mut s = Segment { counts: Vec::new(), lsb_g: h.vib_lsb_g, rpm: Vec::new(), phase: Vec::new() };
    for i in 0..n {
        let sample = &b[at + i * h.sample_bytes()..at + (i + 1) * h.sample_bytes()];
        let mut c = [0i16; AVM_CHANNELS];
        let mut r = [0f32; AVM_CHANNELS];
        for ch in 0..AVM_CHANNELS {
            c[ch] = i16::from_le_bytes([sample[ch * 4], sample[ch * 4 + 1]]);
            r[ch] = h.decode(sample, ch).1;
        }
        s.counts.push(c);
        s.rpm.push(r);
        s.phase.push(h.decode_phase(sample));
    }
    s
}

/// One window: index, feature bits, score bits, valid, judged, alarm, phase.
type Window = (u32, Vec<u32>, u32, u8, u8, u8, u8);

/// What one run produces: per window the feature bits, the verdict and any alert event.
#[derive(Debug, PartialEq)]
struct Out {
    windows: Vec<Window>,
    alerts: Vec<(u8, u32, u32, u32)>,
}

/// avm-core called from Rust, as the Rust firmware does.
fn reference(s: &Segment) -> Out {
    let det = Detector::parse(bundle()).unwrap();
    let mut fx = Box::new(FeatureExtractor::<AVM_CHANNELS, AVM_FFT_MAX>::UNCONFIGURED);
    fx.configure(det.config()).unwrap();
    let mut tally = PhaseTally::new(&det.config());
    let mut alerter = Alerter::new(det.alert_policy()).unwrap();
    let mut out = Out { windows: Vec::new(), alerts: Vec::new() };
    let vib: Vec<[f32; AVM_CHANNELS]> =
        s.counts.iter().map(|c| c.map(|x| avm_core::wire::counts_to_g(x, s.lsb_g))).collect();
    let mut take = |f: FeatureFrame<AVM_CHANNELS>, tally: &PhaseTally| {
        let p = tally.majority(f.window_index).unwrap();
        let v = det.assess_in_phase(&f, p).unwrap();
        out.windows.push((
            f.window_index,
            f.flat().map(f32::to_bits).collect(),
            v.score.to_bits(),
            u8::from(v.valid),
            u8::from(v.judged),
            u8::from(v.alarm),
            v.phase,
        ));
        if let Some(e) = alerter.step(&v) {
            let k = if e.kind == AlertKind::Raised { AVM_ALERT_RAISED } else { AVM_ALERT_CLEARED };
            out.alerts.push((k, e.window_index, e.raised_window, e.peak_score.to_bits()));
        }
    };
    for ((v, r), p) in vib.iter().zip(&s.rpm).zip(&s.phase) {
        tally.push(*p);
        if let Some(f) = fx.push(v, r) {
            take(f, &tally);
        }
    }
    if let Some(f) = fx.finish() {
        take(f, &tally);
    }
    out
}

struct Ctx {
    det: *const AvmDetector,
    tally: *const AvmPhaseTally,
    alerter: *mut AvmAlerter,
    out: Out,
}

unsafe extern "C" fn on_frame(user: *mut c_void, frame: *const AvmFrame) {
    let cx = unsafe { &mut *user.cast::<Ctx>() };
    let f = unsafe { &*frame };
    let mut phase = 0u8;
    assert_eq!(unsafe { avm_phase_tally_window(cx.tally, f.window_index, &mut phase) }, AvmStatus::Ok);
    let mut v = AvmVerdict::default();
    assert_eq!(unsafe { avm_assess(cx.det, f, phase, &mut v) }, AvmStatus::Ok);
    cx.out.windows.push((
        f.window_index,
        f.features[..usize::from(f.n_features)].iter().map(|x| x.to_bits()).collect(),
        v.score.to_bits(),
        v.valid,
        v.judged,
        v.alarm,
        v.phase,
    ));
    let mut e = AvmAlertEvent::default();
    assert_eq!(unsafe { avm_alerter_step(cx.alerter, &v, &mut e) }, AvmStatus::Ok);
    if e.kind != AVM_ALERT_NONE {
        cx.out.alerts.push((e.kind, e.window_index, e.raised_window, e.peak_score.to_bits()));
    }
}

/// Heap storage for the objects (tests only; firmware uses statics).
struct Objects {
    det: Box<AvmDetector>,
    fx: Box<AvmExtractor>,
    tally: Box<AvmPhaseTally>,
    alerter: Box<AvmAlerter>,
}

fn zeroed<T>() -> Box<T> {
    // SAFETY: the storage types are arrays of u64: all-zero is a valid value.
    unsafe { Box::new_zeroed().assume_init() }
}

fn objects() -> Objects {
    let mut o = Objects { det: zeroed(), fx: zeroed(), tally: zeroed(), alerter: zeroed() };
    let b = bundle();
    unsafe {
        assert_eq!(avm_detector_parse(&mut *o.det, b.as_ptr(), b.len(), ptr::null_mut(), 0), AvmStatus::Ok);
        assert_eq!(avm_extractor_init(&mut *o.fx, &*o.det, ptr::null_mut(), 0), AvmStatus::Ok);
        assert_eq!(avm_phase_tally_init(&mut *o.tally, &*o.det), AvmStatus::Ok);
        assert_eq!(avm_alerter_init(&mut *o.alerter, &*o.det), AvmStatus::Ok);
    }
    o
}

/// Streams the segment through the C API: speed set only when it changes (as tach updates),
/// vibration as `i16` counts or `f32` g, in blocks of `block` instants (cut at speed changes).
fn through_capi(s: &Segment, block: usize, as_f32: bool) -> Out {
    let mut o = objects();
    let mut cx = Ctx {
        det: &*o.det,
        tally: &*o.tally,
        alerter: &mut *o.alerter,
        out: Out { windows: vec![], alerts: vec![] },
    };
    let user = (&mut cx as *mut Ctx).cast::<c_void>();
    let scale = [s.lsb_g; AVM_CHANNELS];
    let fx: *mut AvmExtractor = &mut *o.fx;
    let tally: *mut AvmPhaseTally = &mut *o.tally;
    let n = s.counts.len();
    let mut held = [f32::NAN; AVM_CHANNELS];
    let mut i = 0;
    while i < n {
        for (c, (h, &r)) in held.iter_mut().zip(&s.rpm[i]).enumerate() {
            if r.to_bits() != h.to_bits() {
                assert_eq!(unsafe { avm_extractor_set_speed(fx, c as u32, r) }, AvmStatus::Ok);
                *h = r;
            }
        }
        let mut end = (i + block).min(n);
        if let Some(k) = (i + 1..end).find(|&k| s.rpm[k] != s.rpm[i]) {
            end = k;
        }
        for &p in &s.phase[i..end] {
            assert_eq!(unsafe { avm_phase_tally_push(tally, p, 1) }, AvmStatus::Ok);
        }
        let st = if as_f32 {
            let g: Vec<f32> = s.counts[i..end]
                .iter()
                .flat_map(|c| c.map(|x| avm_core::wire::counts_to_g(x, s.lsb_g)))
                .collect();
            unsafe { avm_extractor_push_f32(fx, g.as_ptr(), end - i, Some(on_frame), user) }
        } else {
            let flat: Vec<i16> = s.counts[i..end].iter().flatten().copied().collect();
            unsafe {
                avm_extractor_push_i16(fx, flat.as_ptr(), end - i, scale.as_ptr(), Some(on_frame), user)
            }
        };
        assert_eq!(st, AvmStatus::Ok);
        i = end;
    }
    assert_eq!(unsafe { avm_extractor_finish(fx, Some(on_frame), user) }, AvmStatus::Ok);
    cx.out
}

#[test]
fn c_api_gives_avm_core_bits_on_the_embedded_segment() {
    let s = segment();
    let want = reference(&s);
    assert!(want.windows.len() >= 5, "{} windows", want.windows.len());
    assert!(!want.alerts.is_empty(), "the segment raises an alert");
    for (block, as_f32) in [(256, false), (1, false), (997, true), (100_000, false)] {
        let got = through_capi(&s, block, as_f32);
        assert_eq!(got, want, "blocks of {block}, f32 {as_f32}");
    }
}

#[test]
fn unconfigured_storage_is_all_zero_bytes() {
    // So an unconfigured static extractor is .bss, and avm_extractor_init may zero the storage
    // instead of building a 24 KB value.
    static FX: FeatureExtractor<AVM_CHANNELS, AVM_FFT_MAX> = FeatureExtractor::UNCONFIGURED;
    static TALLY: PhaseTally = PhaseTally::UNCONFIGURED;
    fn zero<T>(x: &T) -> bool {
        // SAFETY: reads the bytes of a value of T (no padding is read as uninitialised: the
        // statics' bytes are all initialised by the constant's image).
        let b = unsafe { core::slice::from_raw_parts((x as *const T).cast::<u8>(), size_of::<T>()) };
        b.iter().all(|&x| x == 0)
    }
    assert!(zero(&FX), "FeatureExtractor::UNCONFIGURED has a non-zero byte");
    assert!(zero(&TALLY), "PhaseTally::UNCONFIGURED has a non-zero byte");
}

#[test]
fn refusals_name_the_rule_and_change_nothing() {
    let mut o = objects();
    let mut why = [0 as c_char; 256];
    let text = |w: &[c_char]| unsafe { core::ffi::CStr::from_ptr(w.as_ptr()) }.to_str().unwrap().to_owned();
    // A corrupted bundle: the reason names the checksum; the previous detector stays usable.
    let mut bad = bundle().to_vec();
    bad[200] ^= 1;
    let mut det2: Box<AvmDetector> = zeroed();
    let st = unsafe { avm_detector_parse(&mut *det2, bad.as_ptr(), bad.len(), why.as_mut_ptr(), why.len()) };
    assert_eq!(st, AvmStatus::BundleRefused);
    assert!(text(&why).starts_with("bundle checksum mismatch"), "{}", text(&why));
    let mut info = AvmDetectorInfo::default();
    assert_eq!(unsafe { avm_detector_get_info(&*det2, &mut info) }, AvmStatus::NotInitialised);
    assert_eq!(unsafe { avm_detector_get_info(&*o.det, &mut info) }, AvmStatus::Ok);
    assert_eq!((info.channels, info.fft_len), (2, 1024));
    // A short reason buffer is cut and NUL-terminated.
    let mut short = [1 as c_char; 8];
    unsafe { avm_detector_parse(&mut *det2, bad.as_ptr(), bad.len(), short.as_mut_ptr(), short.len()) };
    assert_eq!(text(&short), "bundle ");
    // NULL, zeroed and misaligned storage.
    assert_eq!(unsafe { avm_extractor_reset(ptr::null_mut()) }, AvmStatus::NullPointer);
    let mut fresh: Box<AvmExtractor> = zeroed();
    assert_eq!(unsafe { avm_extractor_set_speed_all(&mut *fresh, 1.0) }, AvmStatus::NotInitialised);
    let odd = unsafe { (&mut *fresh as *mut AvmExtractor).cast::<u8>().add(4) }.cast::<AvmExtractor>();
    assert_eq!(unsafe { avm_extractor_init(odd, &*o.det, ptr::null_mut(), 0) }, AvmStatus::Misaligned);
    assert_eq!(unsafe { avm_extractor_set_speed(&mut *o.fx, 2, 1.0) }, AvmStatus::Channel);
    assert_eq!(
        unsafe { avm_extractor_push_f32(&mut *o.fx, ptr::null(), 3, Some(on_frame), ptr::null_mut()) },
        AvmStatus::NullPointer
    );
    assert_eq!(
        unsafe { avm_extractor_push_f32(&mut *o.fx, [0.0f32; 2].as_ptr(), 1, None, ptr::null_mut()) },
        AvmStatus::NullPointer
    );
    assert_eq!(
        unsafe {
            avm_extractor_push_f32(&mut *o.fx, [0.0f32; 2].as_ptr(), usize::MAX, None, ptr::null_mut())
        },
        AvmStatus::Length
    );
    assert_eq!(unsafe { avm_extractor_samples(&*o.fx) }, 0, "refused pushes consumed nothing");
    // A frame of another feature count; a phase code outside the table.
    let mut frame = AvmFrame {
        start_sample: 0,
        window_index: 0,
        per_channel: 3,
        n_features: 6,
        valid: 1,
        roc_valid: 0,
        quality: [AvmChannelQuality::default(); AVM_CHANNELS],
        features: [0.0; AVM_MAX_FEATURES],
    };
    let mut v = AvmVerdict::default();
    assert_eq!(unsafe { avm_assess(&*o.det, &frame, 255, &mut v) }, AvmStatus::FeatureCount);
    frame.n_features = info.features;
    assert_eq!(unsafe { avm_assess(&*o.det, &frame, 200, &mut v) }, AvmStatus::Phase);
    assert_eq!(unsafe { avm_assess(&*o.det, &frame, 255, &mut v) }, AvmStatus::Ok);
    // The phase of a window not yet counted.
    let mut code = 0u8;
    assert_eq!(unsafe { avm_phase_tally_window(&*o.tally, 0, &mut code) }, AvmStatus::PhasePending);
    // Every status has a text.
    for st in -12..=0 {
        let t = unsafe { core::ffi::CStr::from_ptr(avm_status_text(st)) }.to_str().unwrap();
        assert!(!t.starts_with("unknown"), "{st}");
    }
}

#[test]
fn a_callback_cannot_re_enter_its_extractor() {
    struct Re {
        fx: *mut AvmExtractor,
        seen: Vec<AvmStatus>,
    }
    unsafe extern "C" fn re_enter(user: *mut c_void, _: *const AvmFrame) {
        let r = unsafe { &mut *user.cast::<Re>() };
        r.seen.push(unsafe { avm_extractor_reset(r.fx) });
    }
    let mut o = objects();
    let mut r = Re { fx: &mut *o.fx, seen: vec![] };
    let s = segment();
    let n = 2048 * 12;
    let flat: Vec<i16> = s.counts[..n].iter().flatten().copied().collect();
    let scale = [s.lsb_g; AVM_CHANNELS];
    let st = unsafe {
        avm_extractor_push_i16(
            r.fx,
            flat.as_ptr(),
            n,
            scale.as_ptr(),
            Some(re_enter),
            (&mut r as *mut Re).cast(),
        )
    };
    assert_eq!(st, AvmStatus::Ok);
    assert_eq!(r.seen, vec![AvmStatus::Busy]);
    assert_eq!(unsafe { avm_extractor_samples(r.fx) }, n as u64, "usable again after the call");
}

#[test]
fn committed_header_is_what_cbindgen_generates() {
    let generated = include_str!(concat!(env!("OUT_DIR"), "/avm.h"));
    let committed = repo().join("capi/include/avm.h");
    if std::env::var_os("AVM_BLESS").is_some() {
        std::fs::write(&committed, generated).unwrap();
    }
    let have = std::fs::read_to_string(&committed).unwrap_or_default();
    assert!(
        have == generated,
        "capi/include/avm.h is not what cbindgen generates from capi/src/lib.rs: rerun with AVM_BLESS=1 and review the diff"
    );
}
