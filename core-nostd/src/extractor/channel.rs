//! One channel's per-sample pipeline: sanitiser → moments and Welch segments → hop blocks →
//! the channel's part of a window; with the speed bookkeeping (sample-and-hold, sums per
//! half-segment and block) and the scratch the channels share.

use super::block::{BLOCK_SLOTS, BlockSummary, CHUNK, ChannelWindow};
use super::envelope::{EnvLane, EnvPlan, EnvSums};
use super::tap::{SampleFate, SampleTap};
use crate::config::ExtractorConfig;
use crate::features::{
    ChannelQuality, ENERGY_FLOOR_G2, EnvKind, Feature, FeatureSet, MAX_ENV_ORDERS, MAX_FEATURES_PER_CHANNEL,
    ShapeKind, SpectralScale, TimeKind,
};
use crate::fft::sealed::Engine;
use crate::moments::{BlockAccumulator, CHUNK_LEN, Moments};
use crate::sanitize::{
    Bounds, Clipped, GapFiller, GapStep, SpeedHold, SpikeClipper, SpikePolicy, Tag, interpolate,
};
use crate::spectrum::{SpecSums, SpectralPlan};

#[cfg(test)]
std::thread_local! {
    /// Tests: every sample through the general sanitiser path (to compare it with the fast one).
    pub(super) static GENERAL_PATH_ONLY: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
}

/// Tests may turn the sanitiser's fast path off ([`GENERAL_PATH_ONLY`]); builds cannot.
#[inline(always)]
fn general_path_only() -> bool {
    #[cfg(test)]
    return GENERAL_PATH_ONLY.with(|g| g.get());
    #[cfg(not(test))]
    false
}

/// The values a sample may take to be good for the gap filler (finite, within `±full_scale`)
/// and inside the spike bounds `b`: `lo ..= hi`, both finite; empty (`lo > hi`) when a bound is
/// NaN (and in tests that turn the fast path off).
#[inline]
fn plain_range(b: Bounds, full_scale: f32) -> (f32, f32) {
    if b.lo.is_nan() || b.hi.is_nan() || full_scale.is_nan() || general_path_only() {
        return (1.0, 0.0);
    }
    (b.lo.max(-full_scale).max(-f32::MAX), b.hi.min(full_scale).min(f32::MAX))
}

/// The pipeline of one channel: sanitiser → moments + Welch → hop blocks → windows.
///
/// Positions are kept as wrapping counters rather than derived from a sample index with `%`:
/// 64-bit division is a library call on the Cortex-M4 and would dominate the per-sample cost.
#[derive(Clone, Debug)]
pub(super) struct Channel<const FFT_MAX: usize, const ENV_MAX: usize> {
    pub(super) gap: GapFiller,
    pub(super) clip: SpikeClipper,
    pub(super) speed: SpeedHold,
    /// Input samples seen (speed runs at input time; the vibration output may lag).
    pub(super) n_in: u64,
    /// Position of the input within its hop block and half-segment.
    pub(super) in_pos_block: u32,
    pub(super) in_pos_half: u32,
    /// Parity of the input's hop block; half-segment number modulo 4.
    pub(super) in_block_parity: u8,
    pub(super) in_half_slot: u8,
    /// Sum of the speed over the half-segment being filled, and completed half-segment sums.
    pub(super) speed_sum: f32,
    pub(super) speed_halves: [f32; 4],
    /// Implausible speed samples per hop block, by parity (input is at most one block ahead).
    pub(super) speed_held: [u32; 2],
    /// Speed sums per hop block (by parity) and of the block being filled, from the
    /// half-segment sums (f32 over 128..2048 samples, then f64).
    pub(super) speed_block: [f64; 2],
    pub(super) speed_block_partial: f64,
    /// Position of the sanitised output within its hop block and half-segment, and in `ring`.
    pub(super) out_pos_block: u32,
    pub(super) out_pos_half: u32,
    pub(super) out_half_slot: u8,
    pub(super) out_block_parity: u8,
    pub(super) ring_pos: u32,
    pub(super) ring_full: bool,
    /// The last `fft_len` sanitised samples; the oldest at `ring_pos`.
    pub(super) ring: [f32; FFT_MAX],
    /// Sanitised samples waiting to be accumulated as one chunk, and their counts. Every
    /// boundary (half-segment, hop, window) is a multiple of the chunk length, so a chunk never
    /// straddles one.
    pub(super) stage: [f32; CHUNK],
    pub(super) stage_len: u32,
    pub(super) stage_quality: ChannelQuality,
    pub(super) acc: BlockAccumulator,
    pub(super) block_quality: ChannelQuality,
    pub(super) last_block_mean: Option<f32>,
    /// Summaries by block, `cur_slot` is the block being filled (slots wrap at hops + 1).
    pub(super) blocks: [BlockSummary; BLOCK_SLOTS],
    pub(super) cur_slot: u8,
    pub(super) blocks_closed: u32,
    pub(super) bounds: Bounds,
    pub(super) ready: Option<ChannelWindow>,
    /// The envelope path (zero-sized ring without envelope capacity).
    pub(super) env: EnvLane<ENV_MAX>,
}

impl<const FFT_MAX: usize, const ENV_MAX: usize> Channel<FFT_MAX, ENV_MAX> {
    /// A channel before its first sample.
    pub(super) const FRESH: Self = Channel {
        gap: GapFiller::new(),
        clip: SpikeClipper::new(),
        speed: SpeedHold::new(),
        n_in: 0,
        in_pos_block: 0,
        in_pos_half: 0,
        in_block_parity: 0,
        in_half_slot: 0,
        speed_sum: 0.0,
        speed_halves: [0.0; 4],
        speed_held: [0; 2],
        speed_block: [0.0; 2],
        speed_block_partial: 0.0,
        out_pos_block: 0,
        out_pos_half: 0,
        out_half_slot: 0,
        out_block_parity: 0,
        ring_pos: 0,
        ring_full: false,
        ring: [0.0; FFT_MAX],
        stage: [0.0; CHUNK],
        stage_len: 0,
        stage_quality: ChannelQuality::ZERO,
        acc: BlockAccumulator::new(),
        block_quality: ChannelQuality::ZERO,
        last_block_mean: None,
        blocks: [BlockSummary::ZERO; BLOCK_SLOTS],
        cur_slot: 0,
        blocks_closed: 0,
        bounds: Bounds::NONE,
        ready: None,
        env: EnvLane::FRESH,
    };
}

impl<const FFT_MAX: usize, const ENV_MAX: usize> Channel<FFT_MAX, ENV_MAX> {
    /// A channel of an unconfigured extractor: all bytes zero (`configure` replaces it with
    /// [`Channel::FRESH`]), so an unconfigured `static` extractor is `.bss`.
    pub(super) const UNCONFIGURED: Self =
        Channel { bounds: Bounds::ZERO, acc: BlockAccumulator::ZERO, ..Channel::FRESH };
}

/// What a channel's pipeline needs besides its own state.
pub(super) struct Ctx<'a, T, F, const FFT_MAX: usize, const ENV_MAX: usize> {
    pub(super) sh: &'a mut Shared<FFT_MAX, ENV_MAX, F>,
    pub(super) tap: &'a mut T,
    pub(super) channel: usize,
}

/// Scratch shared by the channels: the Hann window, the FFT buffer, and what the
/// configuration resolves to once.
#[derive(Clone, Debug)]
pub(super) struct Shared<const FFT_MAX: usize, const ENV_MAX: usize, F> {
    pub(super) cfg: ExtractorConfig,
    /// `cfg.hops_per_window()`, computed once (a division).
    pub(super) hops: u32,
    pub(super) plan: SpectralPlan,
    /// `1 / (S·N·Σw²)`: turns a window's summed one-sided power into g² (S segments).
    pub(super) power_to_g2: f64,
    /// `1 / S`.
    pub(super) segments_inv: f64,
    pub(super) env_plan: EnvPlan,
    /// `1 / (S_e·N_e·Σw_e²)` for the envelope spectrum.
    pub(super) env_power_to_g2: f64,
    pub(super) env_hann: [f32; ENV_MAX],
    pub(super) hann: [f32; FFT_MAX],
    pub(super) fft: [f32; FFT_MAX],
    /// The FFT (microfft, or on hosts microfft's arithmetic laid out for SIMD: [`crate::fft`]).
    pub(super) fft_engine: F,
}

impl<const FFT_MAX: usize, const ENV_MAX: usize, F: Engine<FFT_MAX>> Shared<FFT_MAX, ENV_MAX, F> {
    pub(super) const UNCONFIGURED: Self = Shared {
        cfg: ExtractorConfig {
            sample_rate_hz: 0,
            window_len_samples: 0,
            hop_len_samples: 0,
            fft_len: 0,
            order_band_bins: 0,
            max_gap_samples: 0,
            spike_policy: SpikePolicy::Off,
            spike_k_sigma: 0.0,
            full_scale_g: 0.0,
            max_shaft_speed_rpm: 0.0,
            features: FeatureSet::EMPTY,
        },
        hops: 0,
        plan: SpectralPlan::NONE,
        power_to_g2: 0.0,
        segments_inv: 0.0,
        env_plan: EnvPlan::NONE,
        env_power_to_g2: 0.0,
        env_hann: [0.0; ENV_MAX],
        hann: [0.0; FFT_MAX],
        fft: [0.0; FFT_MAX],
        fft_engine: F::UNCONFIGURED,
    };
}

impl<const FFT_MAX: usize, const ENV_MAX: usize> Channel<FFT_MAX, ENV_MAX> {
    /// Pushes the samples of channel `c` of a run of instants.
    ///
    /// The loop-carried state (counters, speed sum, sanitiser state) lives in locals for the
    /// whole run and is written back at the end, so the per-sample path runs in registers;
    /// the rare events (end of chunk, half-segment, block) go through `self`.
    #[inline(always)]
    pub(super) fn push_run<const CH: usize, T: SampleTap, F: Engine<FFT_MAX>>(
        &mut self,
        cx: &mut Ctx<'_, T, F, FFT_MAX, ENV_MAX>,
        vib: &[[f32; CH]],
        rpm: &[[f32; CH]],
    ) {
        let cfg = &cx.sh.cfg;
        let (max_rpm, hop_len, max_gap, full_scale) =
            (cfg.max_shaft_speed_rpm, cfg.hop_len_samples, cfg.max_gap_samples, cfg.full_scale_g);
        let c = cx.channel;
        let half = cfg.fft_len / 2;
        let mut speed = self.speed;
        let mut speed_sum = self.speed_sum;
        let mut in_pos_block = self.in_pos_block;
        let mut in_pos_half = self.in_pos_half;
        let mut parity = usize::from(self.in_block_parity);
        let mut held_now = self.speed_held[parity];
        let mut half_slot = usize::from(self.in_half_slot);
        let mut gap = self.gap;
        let mut clip = self.clip;
        let mut stage_len = self.stage_len;
        // The sanitiser's common case as a one-sample delay line: while no gap is open and the
        // clipper holds a good sample inside the spike bounds, a sample that is good (finite,
        // within ±full scale) and inside the bounds releases the held sample unchanged (it is
        // no spike: it is inside the bounds) and is held in turn; exactly what `gap.push` and
        // `release` do with it, without their per-sample decisions. `plain` is that state;
        // `accumulate` may move the bounds, so it is re-derived after a chunk and after any
        // sample the general path took.
        let mut range = plain_range(self.bounds, full_scale);
        let mut plain = gap.is_clear() && clip.releases_unchanged(self.bounds);
        for (v, r) in vib.iter().zip(rpm) {
            // Speed first: it is indexed by input time, never behind the vibration output.
            let (rpm, held) = speed.push(r[c], max_rpm);
            if held {
                held_now += 1;
            }
            speed_sum += rpm;
            // A block ends on a half-segment boundary: fold the half into the block first.
            in_pos_half += 1;
            if in_pos_half == half {
                in_pos_half = 0;
                self.speed_halves[half_slot] = speed_sum;
                self.speed_block_partial += f64::from(speed_sum);
                speed_sum = 0.0;
                half_slot = (half_slot + 1) % 4;
            }
            in_pos_block += 1;
            if in_pos_block == hop_len {
                in_pos_block = 0;
                self.speed_held[parity] = held_now;
                self.speed_block[parity] = core::mem::take(&mut self.speed_block_partial);
                parity ^= 1;
                held_now = 0;
            }
            let x = v[c];
            if plain && x >= range.0 && x <= range.1 {
                let h = clip.pass(x);
                gap.pass_good(x);
                if let Some(slot) = self.stage.get_mut(stage_len as usize) {
                    *slot = h;
                }
                cx.tap.sample(c, h, SampleFate::Good);
                stage_len += 1;
                if stage_len == CHUNK_LEN {
                    stage_len = 0;
                    self.accumulate(cx.sh);
                    range = plain_range(self.bounds, full_scale);
                    plain = clip.releases_unchanged(self.bounds);
                }
            } else {
                let step = gap.push(x, max_gap, full_scale);
                self.release(cx, &mut clip, &mut stage_len, step);
                range = plain_range(self.bounds, full_scale);
                plain = gap.is_clear() && clip.releases_unchanged(self.bounds);
            }
        }
        self.n_in += vib.len() as u64;
        self.speed = speed;
        self.speed_sum = speed_sum;
        self.in_pos_block = in_pos_block;
        self.in_pos_half = in_pos_half;
        self.speed_held[parity] = held_now;
        self.in_block_parity = parity as u8;
        self.in_half_slot = half_slot as u8;
        self.gap = gap;
        self.clip = clip;
        self.stage_len = stage_len;
    }

    /// Passes what the gap filler released through the clipper into the chunk stage.
    #[inline(always)]
    pub(super) fn release<T: SampleTap, F: Engine<FFT_MAX>>(
        &mut self,
        cx: &mut Ctx<'_, T, F, FFT_MAX, ENV_MAX>,
        clip: &mut SpikeClipper,
        stage_len: &mut u32,
        step: GapStep,
    ) {
        match step {
            GapStep::Hold => {}
            GapStep::Good(v) => self.clip_stage(cx, clip, stage_len, v, Tag::Good),
            GapStep::Fill { from, to, count } => {
                for i in 1..=count {
                    self.clip_stage(cx, clip, stage_len, interpolate(from, to, i, count), Tag::Filled);
                }
                self.clip_stage(cx, clip, stage_len, to, Tag::Good);
            }
            GapStep::Unrepaired { value, count } => {
                for _ in 0..count {
                    self.clip_stage(cx, clip, stage_len, value, Tag::Unrepaired);
                }
            }
        }
    }

    pub(super) fn finish<T: SampleTap, F: Engine<FFT_MAX>>(
        &mut self,
        cx: &mut Ctx<'_, T, F, FFT_MAX, ENV_MAX>,
    ) {
        let mut clip = self.clip;
        let mut stage_len = self.stage_len;
        let step = self.gap.finish();
        self.release(cx, &mut clip, &mut stage_len, step);
        if let Some(c) = clip.finish() {
            self.stage_sample(cx, &mut stage_len, c);
        }
        self.clip = clip;
        self.stage_len = stage_len;
        // A partial chunk left now cannot complete a window (windows end on chunk boundaries).
    }

    #[inline(always)]
    pub(super) fn clip_stage<T: SampleTap, F: Engine<FFT_MAX>>(
        &mut self,
        cx: &mut Ctx<'_, T, F, FFT_MAX, ENV_MAX>,
        clip: &mut SpikeClipper,
        stage_len: &mut u32,
        v: f32,
        tag: Tag,
    ) {
        if let Some(c) = clip.push(v, tag, self.bounds) {
            self.stage_sample(cx, stage_len, c);
        }
    }

    #[inline(always)]
    pub(super) fn stage_sample<T: SampleTap, F: Engine<FFT_MAX>>(
        &mut self,
        cx: &mut Ctx<'_, T, F, FFT_MAX, ENV_MAX>,
        stage_len: &mut u32,
        c: Clipped,
    ) {
        // *stage_len < CHUNK always holds here: it is reset as soon as it reaches CHUNK.
        if let Some(slot) = self.stage.get_mut(*stage_len as usize) {
            *slot = c.value;
        }
        let fate = match c.tag {
            Tag::Good => {
                if c.clipped {
                    self.stage_quality.clipped += 1;
                    SampleFate::Clipped
                } else {
                    SampleFate::Good
                }
            }
            Tag::Filled => {
                self.stage_quality.gap_filled += 1;
                SampleFate::Filled
            }
            Tag::Unrepaired => {
                self.stage_quality.unrepaired += 1;
                SampleFate::Unrepaired
            }
        };
        cx.tap.sample(cx.channel, c.value, fate);
        *stage_len += 1;
        if *stage_len == CHUNK_LEN {
            *stage_len = 0;
            self.accumulate(cx.sh);
        }
    }

    /// Accumulates the staged chunk.
    #[inline(never)]
    pub(super) fn accumulate<F: Engine<FFT_MAX>>(&mut self, sh: &mut Shared<FFT_MAX, ENV_MAX, F>) {
        let (fft_len, hop_len) = (sh.cfg.fft_len, sh.cfg.hop_len_samples);
        let hops = sh.hops as usize;
        let slots = hops + 1;
        if self.out_pos_block == 0 {
            self.acc.reset(self.last_block_mean);
            self.block_quality = ChannelQuality::default();
            self.blocks[usize::from(self.cur_slot)] = BlockSummary::ZERO;
            self.env.block = Moments::ZERO;
        }
        self.acc.push_chunk(&self.stage);
        if sh.env_plan.on {
            self.env.push(&sh.env_plan, &self.stage);
        }
        self.block_quality.add(&core::mem::take(&mut self.stage_quality));
        let pos = self.ring_pos as usize;
        if let Some(dst) = self.ring.get_mut(pos..pos + CHUNK) {
            dst.copy_from_slice(&self.stage);
        }
        self.ring_pos += CHUNK_LEN;
        if self.ring_pos == fft_len {
            self.ring_pos = 0;
            self.ring_full = true;
        }
        self.out_pos_block += CHUNK_LEN;
        self.out_pos_half += CHUNK_LEN;

        if self.out_pos_half == fft_len / 2 {
            self.out_pos_half = 0;
            let h1 = usize::from(self.out_half_slot);
            self.out_half_slot = (self.out_half_slot + 1) % 4;
            // Without a spectral family no number needs the transform.
            if self.ring_full && sh.plan.spectral {
                self.segment(sh, h1, slots);
            }
            if sh.env_plan.on {
                self.env_half(sh, h1, slots);
            }
        }

        if self.out_pos_block == hop_len {
            self.out_pos_block = 0;
            let moments = self.acc.finish();
            self.last_block_mean = Some(moments.mean as f32);
            let mut quality = self.block_quality;
            quality.speed_held = self.speed_held[usize::from(self.out_block_parity)];
            let speed_sum = self.speed_block[usize::from(self.out_block_parity)];
            self.out_block_parity ^= 1;
            let slot = &mut self.blocks[usize::from(self.cur_slot)];
            slot.moments = moments;
            slot.max = self.acc.max;
            slot.min = self.acc.min;
            slot.quality = quality;
            slot.speed_sum = speed_sum;
            slot.env = self.env.block;
            self.blocks_closed += 1;
            if self.blocks_closed as usize >= hops {
                // Blocks of the window: the `hops` most recent, oldest first.
                let first_slot = (usize::from(self.cur_slot) + 2) % slots;
                self.close_window(sh, hops, first_slot, self.blocks_closed - hops as u32);
            }
            self.cur_slot = ((usize::from(self.cur_slot) + 1) % slots) as u8;
        }
    }

    /// The Welch segment that ends with the sample just accumulated (`h1`: slot of its second
    /// half in `speed_halves`).
    pub(super) fn segment<F: Engine<FFT_MAX>>(
        &mut self,
        sh: &mut Shared<FFT_MAX, ENV_MAX, F>,
        h1: usize,
        slots: usize,
    ) {
        let fft_len = sh.cfg.fft_len;
        let len = fft_len as usize;
        let speed_sum = self.speed_halves[(h1 + 3) % 4] + self.speed_halves[h1];
        let speed_rpm = speed_sum / fft_len as f32;
        // Oldest sample first: ring[ring_pos..] then ring[..ring_pos].
        let start = self.ring_pos as usize;
        let (older, newer) = self.ring[..len].split_at(start);
        let buf = &mut sh.fft[..len];
        let (head, tail) = buf.split_at_mut(len - start);
        let (w_head, w_tail) = sh.hann[..len].split_at(len - start);
        for ((d, x), w) in head.iter_mut().zip(newer).zip(w_head) {
            *d = x * w;
        }
        for ((d, x), w) in tail.iter_mut().zip(older).zip(w_tail) {
            *d = x * w;
        }
        let Some(spec) = sh.fft_engine.rfft(buf) else { return };
        let e = sh.plan.analyse(spec, speed_rpm);
        let (nb, no) = (sh.plan.bands, sh.plan.order_count);
        // The segment ends `out_pos_block` (1..=hop) samples into the current block.
        if self.out_pos_block >= fft_len {
            self.blocks[usize::from(self.cur_slot)].interior.add(&e, nb, no);
        } else {
            // Started in the previous block (hop >= fft_len / 2 keeps it within one block back).
            let prev = (usize::from(self.cur_slot) + slots - 1) % slots;
            self.blocks[prev].straddle.add(&e, nb, no);
        }
    }

    /// A main half-segment ended: count it into the envelope lane's half-segment and, when that
    /// ends too, sum the envelope segment that ends here.
    fn env_half<F: Engine<FFT_MAX>>(
        &mut self,
        sh: &mut Shared<FFT_MAX, ENV_MAX, F>,
        h1: usize,
        slots: usize,
    ) {
        let plan = sh.env_plan;
        self.env.speed_acc += f64::from(self.speed_halves[h1]);
        self.env.out_pos_half += sh.cfg.fft_len / 2;
        if self.env.out_pos_half < plan.half_in {
            return;
        }
        self.env.out_pos_half = 0;
        self.env.speed_halves = [self.env.speed_halves[1], core::mem::take(&mut self.env.speed_acc)];
        if !self.env.ring_full {
            return;
        }
        let n = plan.fft_len as usize;
        let span = plan.decimation * plan.fft_len;
        let speed = ((self.env.speed_halves[0] + self.env.speed_halves[1]) / f64::from(span)) as f32;
        let (Some(hann), Some(buf)) = (sh.env_hann.get(..n), sh.fft.get_mut(..n)) else { return };
        let e = self.env.segment(&plan, hann, buf, &mut sh.fft_engine, speed);
        if self.out_pos_block >= span {
            self.blocks[usize::from(self.cur_slot)].env_interior.add(&e);
        } else {
            // Started in the previous block (the hop is a multiple of the lane half-segment).
            let prev = (usize::from(self.cur_slot) + slots - 1) % slots;
            self.blocks[prev].env_straddle.add(&e);
        }
    }

    pub(super) fn close_window<F>(
        &mut self,
        sh: &Shared<FFT_MAX, ENV_MAX, F>,
        hops: usize,
        first_slot: usize,
        window_index: u32,
    ) {
        let cfg = &sh.cfg;
        let (nb, no) = (sh.plan.bands, sh.plan.order_count);
        let mut m = Moments::default();
        let mut max = f32::NEG_INFINITY;
        let mut min = f32::INFINITY;
        let mut quality = ChannelQuality::default();
        // Per-block sums are f32 (a few segments each); the window's are f64.
        let mut bands = [0.0f64; crate::features::MAX_BANDS];
        let mut orders = [0.0f64; crate::features::MAX_ORDERS];
        let (mut total, mut weighted, mut flatness) = (0.0f64, 0.0f64, 0.0f64);
        let mut add = |e: &SpecSums| {
            for (a, b) in bands[..nb].iter_mut().zip(&e.bands[..nb]) {
                *a += f64::from(*b);
            }
            for (a, b) in orders[..no].iter_mut().zip(&e.orders[..no]) {
                *a += f64::from(*b);
            }
            total += f64::from(e.total);
            weighted += f64::from(e.weighted);
            flatness += f64::from(e.flatness);
        };
        let mut speed_sum = 0.0f64;
        let mut em = Moments::ZERO;
        let mut env_orders = [0.0f64; MAX_ENV_ORDERS];
        let mut env_total = 0.0f64;
        let mut add_env = |e: &EnvSums| {
            for (a, b) in env_orders.iter_mut().zip(&e.orders) {
                *a += f64::from(*b);
            }
            env_total += f64::from(e.total);
        };
        for j in 0..hops {
            let blk = &self.blocks[(first_slot + j) % (hops + 1)];
            m = m.merge(&blk.moments);
            em = em.merge(&blk.env);
            max = max.max(blk.max);
            min = min.min(blk.min);
            quality.add(&blk.quality);
            speed_sum += blk.speed_sum;
            add(&blk.interior);
            add_env(&blk.env_interior);
            // The last block's straddling segments end after the window.
            if j + 1 < hops {
                add(&blk.straddle);
                add_env(&blk.env_straddle);
            }
        }
        let var = m.variance();
        let std = libm::sqrt(var);
        let rms = m.rms();
        let peak = max.max(-min);
        let crest = if rms > 0.0 { f64::from(peak) / rms } else { 0.0 };
        let kurt = m.kurtosis();
        let skew = if m.m2 > 0.0 { libm::sqrt(m.n) * m.m3 / (m.m2 * libm::sqrt(m.m2)) } else { 0.0 };
        let scale = cfg.features.scale;
        let mut f = [0.0f32; MAX_FEATURES_PER_CHANNEL];
        for (slot, feature) in f.iter_mut().zip(cfg.features.iter()) {
            let v = match feature {
                Feature::Time(k) => match k {
                    TimeKind::MeanG => m.mean,
                    TimeKind::StdG => std,
                    TimeKind::RmsG => rms,
                    TimeKind::PeakG => f64::from(peak),
                    TimeKind::P2pG => f64::from(max) - f64::from(min),
                    TimeKind::CrestFactor => crest,
                    TimeKind::Kurtosis => kurt,
                    TimeKind::Skewness => skew,
                },
                // Filled in by the extractor, which sees the previous window.
                Feature::Rate(_) => 0.0,
                Feature::Band(i) => level(scale, bands[usize::from(i)], total, sh.power_to_g2),
                Feature::Order(i) => level(scale, orders[usize::from(i)], total, sh.power_to_g2),
                Feature::Shape(ShapeKind::CentroidHz) => {
                    if total > 0.0 {
                        weighted / total * f64::from(cfg.sample_rate_hz) / f64::from(cfg.fft_len)
                    } else {
                        0.0
                    }
                }
                Feature::Shape(ShapeKind::Flatness) => flatness * sh.segments_inv,
                Feature::Env(EnvKind::RmsG) => em.rms(),
                Feature::Env(EnvKind::Kurtosis) => em.kurtosis(),
                Feature::EnvOrder(i) => {
                    level(scale, env_orders[usize::from(i)], env_total, sh.env_power_to_g2)
                }
                Feature::ShaftSpeedRpm => speed_sum / f64::from(cfg.window_len_samples),
            };
            *slot = v as f32;
        }
        if quality.unrepaired == 0 {
            let dev = (f64::from(max) - m.mean).max(m.mean - f64::from(min));
            self.bounds = Bounds::for_policy(
                cfg.spike_policy,
                m.mean as f32,
                std as f32,
                dev as f32,
                cfg.spike_k_sigma,
            );
        }
        self.ready = Some(ChannelWindow {
            window_index,
            features: f,
            quality,
            rms_g: rms as f32,
            kurtosis: kurt as f32,
        });
    }
}

/// A band's or order's feature value from its summed one-sided power `sum`: decibels of the
/// mean square (`power_to_g2` turns summed power into g²) or the fraction of `total`.
fn level(scale: SpectralScale, sum: f64, total: f64, power_to_g2: f64) -> f64 {
    match scale {
        SpectralScale::Db => 10.0 * libm::log10(sum * power_to_g2 + ENERGY_FLOOR_G2),
        SpectralScale::Fraction => {
            if total > 0.0 {
                (sum / total).clamp(0.0, 1.0)
            } else {
                0.0
            }
        }
    }
}
