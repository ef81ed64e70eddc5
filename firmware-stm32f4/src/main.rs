//! avm on a real Cortex-M4F board: an STM32F407 (168 MHz, e.g. STM32F4-Discovery) sampling two
//! accelerometers with ADC1, timer-triggered at the detector's rate, into a DMA ring buffer,
//! with a tachometer on a GPIO; every 256-instant half-buffer goes through avm-core, every
//! window is scored in place from flash, and the bundle's alert policy raises and clears alerts
//! (LED + defmt over RTT).
//!
//! Wiring (see README.md): PA0 / PA1 = the two conditioned accelerometer signals (0..3.3 V,
//! mid-scale = 0 g), PB0 = one tachometer pulse per shaft revolution (3.3 V logic), PD14 = the
//! red LED of the Discovery board (alert up). Clock: 8 MHz HSE crystal, PLL to 168 MHz.
//!
//! The same bundle as the QEMU examples (`firmware-example/data/detector.avmb`), embedded in
//! flash and parsed in place. It cannot run in CI (no board there); CI builds and links it, and
//! `scripts/firmware_budget.py`-style sizes are reported for it in README.md.

#![no_std]
#![no_main]

use avm_core::wire::counts_to_g;
use avm_core::{AlertKind, Alerter, Detector, FeatureExtractor, PHASE_UNKNOWN, PhaseTally};
use core::sync::atomic::{AtomicU32, Ordering};
use defmt::{error, info, warn};
use embassy_executor::Spawner;
use embassy_stm32::adc::{Adc, AdcChannel as _, Exten, SampleTime};
use embassy_stm32::exti::{self, ExtiInput};
use embassy_stm32::gpio::{Level, Output, Pull, Speed};
use embassy_stm32::mode::Async;
use embassy_stm32::time::Hertz;
use embassy_stm32::timer::low_level::{MasterMode, RoundTo, Timer as LlTimer};
use embassy_stm32::{Config, bind_interrupts, dma, interrupt, peripherals};
use embassy_time::{Duration, Instant, with_timeout};
use static_cell::ConstStaticCell;
use {defmt_rtt as _, panic_probe as _};

/// Vibration channels (ADC1 IN0 = PA0, IN1 = PA1).
const CH: usize = 2;
/// Largest FFT the extractor runs (checked against the bundle at parse time).
const FFT_MAX: usize = 1024;
/// Sample instants per half of the DMA ring (one avm block): 125 ms at 2048 Hz.
const BLOCK: usize = 256;
/// g per ADC count of each channel: the sensor chain's sensitivity. Here a 100 mV/g
/// accelerometer conditioned to 0..3.3 V around mid-scale with a gain of 0.5 (±33 g full
/// scale): 3.3 V / 4096 counts / (0.1 V/g x 0.5) = 0.016 113 g per count. Set yours.
const G_PER_COUNT: [f32; CH] = [0.016_113_281, 0.016_113_281];
/// The 12-bit ADC's mid-scale (0 g).
const MID_SCALE: i32 = 2048;
/// Tachometer pulses per shaft revolution.
const PULSES_PER_REV: f32 = 1.0;

/// Keeps the bundle 4-byte aligned in flash, so the evaluator reads its weights as `f32` in
/// place (avm-core falls back to byte reads at any other address: same bits, slower).
#[repr(C, align(4))]
struct Aligned<T: ?Sized>(T);

static BUNDLE: &Aligned<[u8]> = &Aligned(*include_bytes!("../../firmware-example/data/detector.avmb"));
/// The extractor (23.9 KB, all-zero until configured: .bss, no flash image).
static FX: ConstStaticCell<FeatureExtractor<CH, FFT_MAX>> =
    ConstStaticCell::new(FeatureExtractor::UNCONFIGURED);
static TALLY: ConstStaticCell<PhaseTally> = ConstStaticCell::new(PhaseTally::UNCONFIGURED);
/// The DMA ring: two halves of BLOCK instants x CH channels, interleaved (the ADC's scan order).
static DMA_BUF: ConstStaticCell<[u16; 2 * BLOCK * CH]> = ConstStaticCell::new([0; 2 * BLOCK * CH]);
/// The shaft speed (rpm, as `f32` bits) from the tachometer task.
static SHAFT_RPM: AtomicU32 = AtomicU32::new(0);

bind_interrupts!(struct Irqs {
    DMA2_STREAM0 => dma::InterruptHandler<peripherals::DMA2_CH0>;
    EXTI0 => exti::InterruptHandler<interrupt::typelevel::EXTI0>;
});

/// Measures the time between tachometer pulses; 0 rpm after a second without one.
#[embassy_executor::task]
async fn tachometer(mut pin: ExtiInput<'static, Async>) {
    let mut last: Option<Instant> = None;
    loop {
        match with_timeout(Duration::from_secs(1), pin.wait_for_rising_edge()).await {
            Ok(()) => {
                let now = Instant::now();
                if let Some(before) = last {
                    let us = (now - before).as_micros().max(1) as f32;
                    SHAFT_RPM.store((60e6 / us / PULSES_PER_REV).to_bits(), Ordering::Relaxed);
                }
                last = Some(now);
            }
            Err(_) => {
                SHAFT_RPM.store(0f32.to_bits(), Ordering::Relaxed);
                last = None;
            }
        }
    }
}

fn clocks() -> Config {
    use embassy_stm32::rcc::{
        AHBPrescaler, APBPrescaler, Hse, HseMode, Pll, PllMul, PllPDiv, PllPreDiv, PllQDiv, PllSource, Sysclk,
    };
    let mut config = Config::default();
    config.rcc.hse = Some(Hse { freq: Hertz(8_000_000), mode: HseMode::Oscillator });
    config.rcc.pll_src = PllSource::HSE;
    config.rcc.pll = Some(Pll {
        prediv: PllPreDiv::DIV4,
        mul: PllMul::MUL168,
        divp: Some(PllPDiv::DIV2), // 168 MHz
        divq: Some(PllQDiv::DIV7),
        divr: None,
    });
    config.rcc.ahb_pre = AHBPrescaler::DIV1;
    config.rcc.apb1_pre = APBPrescaler::DIV4; // 42 MHz (timers 84 MHz)
    config.rcc.apb2_pre = APBPrescaler::DIV2; // 84 MHz (ADC clock 21 MHz after /4)
    config.rcc.sys = Sysclk::PLL1_P;
    config
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let p = embassy_stm32::init(clocks());
    let mut core = cortex_m::Peripherals::take().unwrap();
    core.DCB.enable_trace();
    core.DWT.enable_cycle_counter();
    let mut led = Output::new(p.PD14, Level::Low, Speed::Low);

    // The bundle, checked in place against this build (channels, FFT capacity).
    let det = match Detector::parse_for::<CH, FFT_MAX>(&BUNDLE.0) {
        Ok(d) => d,
        Err(e) => {
            error!("refusing the detector bundle: {}", defmt::Display2Format(&e));
            loop {
                cortex_m::asm::wfi();
            }
        }
    };
    let cfg = det.config();
    let fx = FX.take();
    if let Err(e) = fx.configure(cfg) {
        error!("refusing the detector bundle: {}", defmt::Display2Format(&e));
        loop {
            cortex_m::asm::wfi();
        }
    }
    let tally = TALLY.take();
    *tally = PhaseTally::new(&cfg);
    let Ok(mut alerter) = Alerter::new(det.alert_policy()) else {
        error!("refusing the detector bundle: bad alert policy");
        loop {
            cortex_m::asm::wfi();
        }
    };
    let [major, minor, patch] = det.version();
    info!(
        "avm-stm32f4: detector v{=u16}.{=u16}.{=u16}, {=usize} features, {=u32} Hz, window {=u32} / hop {=u32} samples",
        major,
        minor,
        patch,
        det.features(),
        cfg.sample_rate_hz,
        cfg.window_len_samples,
        cfg.hop_len_samples
    );

    let tach = ExtiInput::new(p.PB0, p.EXTI0, Pull::Down, Irqs);
    spawner.spawn(tachometer(tach)).unwrap();

    // TIM2 update events at the detector's sample rate trigger each ADC scan (TRGO = update).
    // 84 MHz / 2048 Hz is 41 015.6 timer clocks: the nearest period gives 2047.98 Hz (-11 ppm).
    let tim = LlTimer::new(p.TIM2);
    tim.set_frequency(Hertz(cfg.sample_rate_hz), RoundTo::Slower);
    tim.set_master_mode(MasterMode::UPDATE);

    let adc = Adc::new(p.ADC1);
    let mut ring = adc.into_ring_buffered(
        p.DMA2_CH0,
        DMA_BUF.take(),
        Irqs,
        [(p.PA0.degrade_adc(), SampleTime::CYCLES112), (p.PA1.degrade_adc(), SampleTime::CYCLES112)]
            .into_iter(),
        embassy_stm32::triggers::TIM2_TRGO,
        Exten::RISING_EDGE,
    );
    ring.start();
    tim.start();

    let mut counts = [0u16; BLOCK * CH];
    let mut vib = [[0.0f32; CH]; BLOCK];
    let mut blocks: u32 = 0;
    loop {
        match ring.read(&mut counts).await {
            Ok(_) => {}
            Err(_) => {
                // The loop fell a whole ring behind: samples were lost. The stream restarts
                // (the partial window is dropped), so no window mixes samples across the gap.
                warn!("ADC overrun after {=u32} blocks: restarting the stream", blocks);
                let _ = fx.finish();
                tally.reset();
                ring.clear();
                continue;
            }
        }
        blocks = blocks.wrapping_add(1);
        for (v, c) in vib.iter_mut().zip(counts.chunks_exact(CH)) {
            for ((g, &n), k) in v.iter_mut().zip(c).zip(G_PER_COUNT) {
                *g = counts_to_g((i32::from(n) - MID_SCALE) as i16, k);
            }
        }
        // One speed per block (the tachometer's latest, sample-and-hold), and no flight-phase
        // input on this board: unknown phase, the detector's global threshold.
        let rpm = [[f32::from_bits(SHAFT_RPM.load(Ordering::Relaxed)); CH]; BLOCK];
        tally.push_run(PHASE_UNKNOWN, BLOCK as u32);
        let start = cortex_m::peripheral::DWT::cycle_count();
        let _ = fx.push_slice(&vib, &rpm, |frame| {
            let Ok(code) = tally.majority(frame.window_index) else { return };
            let Ok(v) = det.assess_in_phase(&frame, code) else { return };
            info!(
                "window {=u32}: score {=f32} threshold {=f32} valid {=bool} alarm {=bool}",
                v.window_index, v.score, v.threshold, v.valid, v.alarm
            );
            if let Some(e) = alerter.step(&v) {
                match e.kind {
                    AlertKind::Raised => {
                        led.set_high();
                        warn!("ALERT raised at window {=u32}: {=u8} of {=u8}", e.window_index, e.count, e.of);
                    }
                    AlertKind::Cleared => {
                        led.set_low();
                        info!("alert cleared at window {=u32}", e.window_index);
                    }
                }
            }
        });
        let cycles = cortex_m::peripheral::DWT::cycle_count().wrapping_sub(start);
        if blocks.is_multiple_of(40) {
            // 40 blocks = 5 s at 2048 Hz: the measured cost, to replace the QEMU/CPI estimate.
            info!(
                "block {=u32}: {=u32} cycles for {=usize} instants x {=usize} channels",
                blocks, cycles, BLOCK, CH
            );
        }
    }
}
