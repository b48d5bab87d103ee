//! The rounding of spectral stages beyond the backends' own: scaled fp8 formats and stochastic
//! rounding ([`Stage`]). A plain round-to-nearest stage never comes here: the backend ops round
//! to it themselves, as they always have.
//!
//! A scaled stage quantizes each tensor it reads or writes as [`crate::precision::quantize`]
//! defines (that function is the reference the tests compare with, bit for bit): the groups of
//! the [`Scaling`] (the whole tensor; each index along axis 1; blocks of k consecutive values
//! along the last axis, a complex tensor's last axis read as its interleaved (re, im) values),
//! per group the power-of-two scale S = 2^X of [`ScaledFormat::scale_exponent`] from the group's
//! current amax, and each value v stored as S fl(v / S), fl the element format's
//! round-to-nearest-even with saturation (or stochastic rounding between the two neighbours of
//! v / S, after clamping to +-max). A group holding NaN or inf has no scale: its values become
//! NaN (the pass's finiteness checks report it). The dequantized values are exact in fp32.
//!
//! Stochastic rounding draws from a xoshiro256++ stream per site of a pass (block, operation,
//! forward or backward) and per chunk of [`CHUNK`] values, seeded from [`Policy::seed`] (the
//! trainer's seed and the step): the same seed gives the same bits whatever the thread count.
//!
//! [`Policy::seed`]: super::policy::Policy::seed

use super::policy::Stage;
use super::scalar::Scalar;
use crate::backend::Backend;
use crate::precision::{
    Format, ScaledFormat, Scaling, pow2, round_saturate, round_stochastic, round_stochastic_fast,
};
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Values per chunk of the rounding pass (and per stochastic-rounding stream).
pub const CHUNK: usize = 4096;

/// What one quantization saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuantCount {
    /// Values whose scaled magnitude |v| / S exceeded the element format's largest finite value
    /// and were clipped to it (scaled stages only; a plain stage overflows by its format's rule).
    pub saturated: u64,
    /// Groups holding NaN or inf (their values became NaN).
    pub nonfinite_groups: u64,
}

/// The model's quantization state: the counts since the last [`QuantState::take`], added up by
/// the passes (atomics: a model is shared by reference), and the amax history of each site of a
/// delayed stage (by [`Site::id`]). A clone starts from zero counts and empty histories.
#[derive(Default)]
pub struct QuantState {
    saturated: AtomicU64,
    nonfinite_groups: AtomicU64,
    histories: Mutex<HashMap<u64, AmaxHistory>>,
}

/// A place in the model where a tensor is quantized: `id` names it across steps (the key of its
/// amax history), `seed` seeds its stochastic rounding in this pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Site {
    pub id: u64,
    pub seed: u64,
}

impl Site {
    /// Site `id` of a pass seeded `pass`.
    pub fn new(pass: u64, id: u64) -> Self {
        Site {
            id,
            seed: site_seed(pass, id),
        }
    }
}

impl QuantState {
    pub fn add(&self, c: QuantCount) {
        self.saturated.fetch_add(c.saturated, Ordering::Relaxed);
        self.nonfinite_groups
            .fetch_add(c.nonfinite_groups, Ordering::Relaxed);
    }

    /// The counts so far, resetting them to zero.
    pub fn take(&self) -> QuantCount {
        QuantCount {
            saturated: self.saturated.swap(0, Ordering::Relaxed),
            nonfinite_groups: self.nonfinite_groups.swap(0, Ordering::Relaxed),
        }
    }
}

impl Clone for QuantState {
    fn clone(&self) -> Self {
        QuantState::default()
    }
}

impl fmt::Debug for QuantState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "QuantState {{ saturated: {}, nonfinite_groups: {} }}",
            self.saturated.load(Ordering::Relaxed),
            self.nonfinite_groups.load(Ordering::Relaxed)
        )
    }
}

/// SplitMix64's finaliser: a bijective mix of 64 bits.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The stochastic-rounding seed of site `site` in a pass seeded `pass`.
pub fn site_seed(pass: u64, site: u64) -> u64 {
    mix(pass ^ mix(site))
}

/// The seed of a training step's passes: `train.seed` and the global step.
pub fn step_seed(seed: u64, step: u64) -> u64 {
    mix(mix(seed) ^ step)
}

/// The groups of a row-major tensor of `shape` under a [`Scaling`] (the layout of
/// [`ScaledFormat::groups`], computed without storing it), walked as runs: consecutive flat
/// indices sharing a group (the whole tensor; `stride` values of one channel; one block of k
/// along a row), so the passes touch each value in a plain loop.
#[derive(Clone, Copy)]
struct Groups {
    n: usize,
    kind: GroupKind,
    count: usize,
}

#[derive(Clone, Copy)]
enum GroupKind {
    Tensor,
    /// Channel c of index i: (i / stride) % channels.
    Channel {
        stride: usize,
        channels: usize,
    },
    /// Block (i / last) * per_row + (i % last) / k.
    Block {
        last: usize,
        k: usize,
        per_row: usize,
    },
}

impl Groups {
    fn new(scaling: Scaling, shape: &[usize]) -> Self {
        let n: usize = shape.iter().product();
        let (kind, count) = match scaling {
            Scaling::Tensor => (GroupKind::Tensor, 1),
            Scaling::Channel { axis } => {
                assert!(axis < shape.len(), "channel axis {axis} of shape {shape:?}");
                let stride = shape[axis + 1..].iter().product::<usize>().max(1);
                let channels = shape[axis].max(1);
                (GroupKind::Channel { stride, channels }, shape[axis])
            }
            Scaling::Block { k } => {
                let last = shape.last().copied().unwrap_or(1).max(1);
                let per_row = last.div_ceil(k);
                (GroupKind::Block { last, k, per_row }, n / last * per_row)
            }
        };
        Groups { n, kind, count }
    }

    /// The group of flat index `i`.
    fn group(&self, i: usize) -> usize {
        match self.kind {
            GroupKind::Tensor => 0,
            GroupKind::Channel { stride, channels } => (i / stride) % channels,
            GroupKind::Block { last, k, per_row } => (i / last) * per_row + (i % last) / k,
        }
    }

    /// One past the last index of the run holding `i`.
    fn run_end(&self, i: usize) -> usize {
        let e = match self.kind {
            GroupKind::Tensor => self.n,
            GroupKind::Channel { stride, .. } => (i / stride + 1) * stride,
            GroupKind::Block { last, k, .. } => {
                let (row, pos) = (i / last, i % last);
                row * last + ((pos / k + 1) * k).min(last)
            }
        };
        e.min(self.n)
    }

    /// The runs of flat indices `base..base + len`: (group, range of offsets from `base`).
    fn runs(&self, base: usize, len: usize) -> impl Iterator<Item = (usize, Range<usize>)> + '_ {
        let end = base + len;
        let mut i = base;
        std::iter::from_fn(move || {
            (i < end).then(|| {
                let e = self.run_end(i).min(end);
                let run = (self.group(i), i - base..e - base);
                i = e;
                run
            })
        })
    }

    /// Whether groups are blocks, contiguous along the row-major order.
    fn blocks(&self) -> bool {
        matches!(self.kind, GroupKind::Block { .. })
    }
}

/// Round the row-major values `x` of `shape` in place as `stage` rounds (scaled and/or
/// stochastic; see the module docs), stochastic streams seeded from `seed`, scales from each
/// group's current amax.
pub fn quantize_in_place<T: Scalar>(
    x: &mut [T],
    shape: &[usize],
    stage: &Stage,
    seed: u64,
) -> QuantCount {
    quantize_with_history(x, shape, stage, seed, None)
}

/// [`quantize_in_place`], the scales of a delayed stage (`stage.history > 0`) from the maximum
/// of `history` (the amax of each group at the last `stage.history` quantizations of this site;
/// the current amax while it is empty), the current amax then appended to it.
pub fn quantize_with_history<T: Scalar>(
    x: &mut [T],
    shape: &[usize],
    stage: &Stage,
    seed: u64,
    history: Option<&mut AmaxHistory>,
) -> QuantCount {
    assert_eq!(
        x.len(),
        shape.iter().product::<usize>(),
        "quantize: shape {shape:?} does not match {} values",
        x.len()
    );
    let Some(sf) = stage.scaled_format() else {
        // Plain format, stochastic: each value to one of its two neighbours in the format
        // (the format's own overflow rule beyond its range).
        assert!(stage.stochastic, "a plain nearest stage is the backend's");
        let fmt = stage.format;
        x.par_chunks_mut(CHUNK).enumerate().for_each(|(c, xs)| {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(site_seed(seed, c as u64));
            for v in xs {
                *v = T::from_f64(round_stochastic(v.to_f64(), fmt, &mut rng));
            }
        });
        return QuantCount::default();
    };
    let groups = Groups::new(sf.scaling, shape);
    let (current, bad) = group_amax(x, &groups);
    let amax = match history {
        Some(h) if stage.history > 0 => h.delayed(&current, stage.history as usize),
        _ => current,
    };
    scaled_in_place(x, &groups, &sf, &amax, &bad, stage.stochastic, seed)
}

/// The amax of each group at the last quantizations of one site (delayed scaling, as
/// Transformer Engine's `DelayedScaling` with `amax_compute_algo = "max"`).
#[derive(Clone, Debug, Default)]
pub struct AmaxHistory {
    entries: std::collections::VecDeque<Vec<f64>>,
}

impl AmaxHistory {
    /// The amax to scale with now: per group the maximum of the history (the current amax when
    /// the history is empty or had another group count); `current` is then appended, the
    /// history kept to its last `len` entries.
    pub fn delayed(&mut self, current: &[f64], len: usize) -> Vec<f64> {
        self.entries.retain(|e| e.len() == current.len());
        let used = if self.entries.is_empty() {
            current.to_vec()
        } else {
            (0..current.len())
                .map(|g| self.entries.iter().map(|e| e[g]).fold(0.0, f64::max))
                .collect()
        };
        self.entries.push_back(current.to_vec());
        while self.entries.len() > len {
            self.entries.pop_front();
        }
        used
    }
}

fn scaled_in_place<T: Scalar>(
    x: &mut [T],
    groups: &Groups,
    sf: &ScaledFormat,
    amax: &[f64],
    bad: &[bool],
    stochastic: bool,
    seed: u64,
) -> QuantCount {
    // The scale 2^X of each group; NaN for a group without one.
    let scales: Vec<f64> = (0..groups.count)
        .map(|g| {
            if bad[g] || !amax[g].is_finite() {
                f64::NAN
            } else {
                pow2(sf.scale_exponent(amax[g]))
            }
        })
        .collect();
    let elem = sf.elem;
    let max = elem.max_finite();
    let (p, emin) = (elem.precision() as i32, elem.emin());
    let saturated: u64 = x
        .par_chunks_mut(CHUNK)
        .enumerate()
        .map(|(c, xs)| {
            let mut rng =
                stochastic.then(|| Xoshiro256PlusPlus::seed_from_u64(site_seed(seed, c as u64)));
            let mut sat = 0u64;
            for (g, range) in groups.runs(c * CHUNK, xs.len()) {
                let run = &mut xs[range];
                let s = scales[g];
                if s.is_nan() {
                    run.iter_mut().for_each(|v| *v = T::from_f64(f64::NAN));
                    continue;
                }
                // Division and product by a power of two: exact (module docs).
                let inv = 1.0 / s;
                match rng.as_mut() {
                    None => {
                        for v in run.iter_mut() {
                            let t = v.to_f64() * inv;
                            sat += (t.abs() > max) as u64;
                            *v = T::from_f64(round_saturate(t, p, emin, max) * s);
                        }
                    }
                    Some(rng) => {
                        for v in run.iter_mut() {
                            let t = v.to_f64() * inv;
                            sat += (t.abs() > max) as u64;
                            let r = round_stochastic_fast(t.clamp(-max, max), p, emin, rng);
                            *v = T::from_f64(r * s);
                        }
                    }
                }
            }
            sat
        })
        .sum();
    QuantCount {
        saturated,
        nonfinite_groups: bad.iter().filter(|b| **b).count() as u64,
    }
}

/// Per group: the largest finite |value|, and whether a value is inf or NaN.
type Maxima = (Vec<f64>, Vec<bool>);

/// Per group: the largest |value| and whether a value is inf or NaN (the amax of such a group
/// is not used). Chunks in parallel, each with its own table of every group (tensor, channel:
/// few groups, interleaved), or, for blocks (contiguous groups along the row-major order), of
/// its own groups alone; max and "or" do not depend on the order, so neither does the result.
fn group_amax<T: Scalar>(x: &[T], groups: &Groups) -> Maxima {
    let fold = |(amax, bad): &mut Maxima, base: usize, g0: usize, xs: &[T]| {
        for (g, range) in groups.runs(base, xs.len()) {
            let run = &xs[range];
            let (mut m, mut nan) = (0.0f64, false);
            for v in run {
                let a = v.to_f64().abs();
                // f64::max ignores a NaN; an inf wins and marks the group below.
                m = m.max(a);
                nan |= a.is_nan();
            }
            amax[g - g0] = amax[g - g0].max(m);
            bad[g - g0] |= nan || m.is_infinite();
        }
    };
    let count = groups.count;
    let init = |n: usize| (vec![0.0f64; n], vec![false; n]);
    if !groups.blocks() {
        return x
            .par_chunks(CHUNK)
            .enumerate()
            .map(|(c, xs)| {
                let mut t = init(count);
                fold(&mut t, c * CHUNK, 0, xs);
                t
            })
            .reduce(
                || init(count),
                |mut a, b| {
                    for g in 0..count {
                        a.0[g] = a.0[g].max(b.0[g]);
                        a.1[g] |= b.1[g];
                    }
                    a
                },
            );
    }
    // Blocks of k along the last axis: the group index never decreases along
    // the row-major order, so each chunk covers the groups group(first)..=group(last) alone,
    // and a group split between two chunks is merged where they meet.
    let parts: Vec<(usize, Maxima)> = x
        .par_chunks(CHUNK)
        .enumerate()
        .map(|(c, xs)| {
            let base = c * CHUNK;
            let (g0, g1) = (groups.group(base), groups.group(base + xs.len() - 1));
            let mut t = init(g1 - g0 + 1);
            fold(&mut t, base, g0, xs);
            (g0, t)
        })
        .collect();
    let (mut amax, mut bad) = init(count);
    for (g0, (a, b)) in parts {
        for (i, (a, b)) in a.into_iter().zip(b).enumerate() {
            amax[g0 + i] = amax[g0 + i].max(a);
            bad[g0 + i] |= b;
        }
    }
    (amax, bad)
}

/// The storage format a quantized tensor is tagged with: a plain stochastic stage's format (the
/// values lie in it), fp32 for a scaled stage (fp8 values times scales: exact in fp32).
fn tag(stage: &Stage) -> Format {
    if stage.scaling.is_some() {
        Format::Fp32
    } else {
        stage.format
    }
}

impl QuantState {
    /// Quantize the values `v` of `shape` at `site` as `stage` rounds (a delayed stage with the
    /// site's amax history), the counts added.
    fn quantize<T: Scalar>(&self, v: &mut [T], shape: &[usize], stage: &Stage, site: Site) {
        let c = if stage.history > 0 {
            let mut h = self.histories.lock().unwrap_or_else(|e| e.into_inner());
            let h = h.entry(site.id).or_default();
            quantize_with_history(v, shape, stage, site.seed, Some(h))
        } else {
            quantize_in_place(v, shape, stage, site.seed)
        };
        self.add(c);
    }
}

impl QuantState {
    /// The amax histories as JSON (`{"site": [[amax per group], ...oldest first]}`; f64
    /// written in the shortest form that reads back to the same bits), for checkpoints; `None`
    /// when there are none.
    pub fn histories_json(&self) -> Option<String> {
        let h = self.histories.lock().unwrap_or_else(|e| e.into_inner());
        if h.is_empty() {
            return None;
        }
        let map: std::collections::BTreeMap<String, Vec<&Vec<f64>>> = h
            .iter()
            .map(|(k, v)| (k.to_string(), v.entries.iter().collect()))
            .collect();
        Some(serde_json::to_string(&map).expect("amax histories serialise"))
    }

    /// Replace the amax histories by those of [`QuantState::histories_json`].
    pub fn restore_histories(&self, json: &str) -> Result<(), String> {
        let map: std::collections::BTreeMap<String, Vec<Vec<f64>>> =
            serde_json::from_str(json).map_err(|e| format!("amax histories: {e}"))?;
        let mut h = self.histories.lock().unwrap_or_else(|e| e.into_inner());
        h.clear();
        for (k, entries) in map {
            let site: u64 = k
                .parse()
                .map_err(|_| format!("amax histories: site '{k}' is not a number"))?;
            if entries
                .iter()
                .flatten()
                .any(|a| !(a.is_finite() && *a >= 0.0))
            {
                return Err(format!(
                    "amax histories: site {site} has a negative or non-finite amax"
                ));
            }
            h.insert(
                site,
                AmaxHistory {
                    entries: entries.into(),
                },
            );
        }
        Ok(())
    }
}

/// `x` (real, row-major) rounded as `stage` rounds at `site`, the counts added to `state`.
pub fn quantize_real<B: Backend>(
    be: &B,
    x: &B::Tensor,
    stage: &Stage,
    site: Site,
    state: &QuantState,
) -> B::Tensor {
    let shape = be.shape(x).to_vec();
    let mut v = be.download(x);
    state.quantize(&mut v, &shape, stage, site);
    be.upload(&shape, &v, tag(stage))
}

/// `x` (complex) rounded as `stage` rounds: its values read as the real tensor of interleaved
/// (re, im) pairs, the last axis twice as long (so an MX block holds k / 2 complex values).
pub fn quantize_complex<B: Backend>(
    be: &B,
    x: &B::CTensor,
    stage: &Stage,
    site: Site,
    state: &QuantState,
) -> B::CTensor {
    let cshape = be.cshape(x).to_vec();
    let mut shape = cshape.clone();
    if let Some(l) = shape.last_mut() {
        *l *= 2;
    }
    let mut v = be.download_complex(x);
    state.quantize(&mut v, &shape, stage, site);
    be.upload_complex(&cshape, &v, tag(stage))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::precision::{neighbours, quantize, quantize_with_amax};

    fn stage(s: &str) -> Stage {
        s.parse().unwrap()
    }

    use crate::precision::random_f32 as random;

    /// Against the reference [`quantize`] (its own group layout, its own rounding loop): every
    /// scaling, both element formats, shapes whose blocks and channels do not divide evenly.
    #[test]
    fn nearest_equals_the_reference_bit_for_bit() {
        for name in [
            "e4m3@tensor",
            "e4m3@channel",
            "e4m3@mx32",
            "e4m3@mx5",
            "e5m2@tensor",
            "e5m2@channel",
            "e5m2@mx32",
            // Transformer Engine's margin: the scale exponent raised by N.
            "e4m3@tensor~m2",
            "e5m2@channel~m1",
        ] {
            let st = stage(name);
            let sf = st.scaled_format().unwrap();
            for (shape, spread) in [
                (vec![3, 5, 7, 9], 12.0),
                (vec![2, 4, 40], 30.0),
                (vec![4, 3, 8, 70], 4.0),
                // Many chunks of CHUNK values (the group maxima are found per chunk in
                // parallel), 100 channels, blocks split between chunks.
                (vec![3, 100, 9, 11], 20.0),
            ] {
                let n: usize = shape.iter().product();
                let x = random(n, n as u64, spread);
                let mut got = x.clone();
                let c = quantize_in_place(&mut got, &shape, &st, 0);
                let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
                let want = quantize(&x64, &shape, &sf).unwrap();
                for (i, (g, w)) in got.iter().zip(&want.values).enumerate() {
                    assert_eq!((*g as f64).to_bits(), w.to_bits(), "{name} {shape:?} [{i}]");
                }
                assert_eq!(c.saturated > 0, want.saturated, "{name} {shape:?}");
                assert_eq!(c.nonfinite_groups, 0);
            }
        }
    }

    /// Quantizing a quantized tensor again with the same stage changes nothing (the model skips
    /// that second pass when two neighbouring stages agree).
    #[test]
    fn quantizing_twice_is_quantizing_once() {
        for name in [
            "e4m3@tensor",
            "e4m3@channel",
            "e4m3@mx32",
            "e5m2@tensor",
            "e5m2@mx32",
            "e4m3@tensor~sr",
            "e5m2@mx32~sr",
        ] {
            let st = stage(name);
            let shape = [4, 6, 50];
            for seed in 0..20 {
                let mut once = random(1200, seed, 10.0);
                quantize_in_place(&mut once, &shape, &st, seed);
                let mut twice = once.clone();
                quantize_in_place(&mut twice, &shape, &st, seed + 1);
                assert_eq!(once, twice, "{name} seed {seed}");
            }
        }
    }

    #[test]
    fn nonfinite_groups_become_nan_and_are_counted() {
        let st = stage("e4m3@channel");
        // Shape (1, 3, 4): channel 1 holds an inf.
        let mut x = vec![1.0f32; 12];
        x[5] = f32::INFINITY;
        let c = quantize_in_place(&mut x, &[1, 3, 4], &st, 0);
        assert_eq!(c.nonfinite_groups, 1);
        assert!(x[4..8].iter().all(|v| v.is_nan()));
        assert!(x[..4].iter().chain(&x[8..]).all(|&v| v == 1.0));
    }

    #[test]
    fn mx_saturation_is_counted() {
        // A block with amax 1.9 (significand above 1.75): X = 0 - 8, 1.9 * 256 = 486 > 448.
        let st = stage("e4m3@mx32");
        let mut x = vec![0.5f32; 32];
        x[3] = 1.9;
        let c = quantize_in_place(&mut x, &[1, 1, 32], &st, 0);
        assert_eq!(c.saturated, 1);
        assert_eq!(x[3], 448.0 / 256.0);
    }

    /// Stochastic rounding lands on one of the two scaled neighbours, is seeded (same seed, same
    /// bits; other seed, other bits), does not depend on the thread count, and is unbiased.
    #[test]
    fn stochastic_is_a_neighbour_seeded_and_unbiased() {
        for name in [
            "e4m3@tensor~sr",
            "e5m2@mx32~sr",
            "e4m3@channel~sr",
            "fp16~sr",
        ] {
            let st = stage(name);
            let shape = [2, 3, 5000];
            let x = random(30000, 7, 8.0);
            let run = |seed: u64| {
                let mut v = x.clone();
                quantize_in_place(&mut v, &shape, &st, seed);
                v
            };
            let a = run(1);
            assert_eq!(a, run(1), "{name}: same seed");
            assert_ne!(a, run(2), "{name}: another seed");
            let one = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap()
                .install(|| run(1));
            assert_eq!(a, one, "{name}: thread count");
            // Each stochastic value is a neighbour of v / S times S, S the reference's scale.
            let sf = st.scaled_format();
            let scales: Vec<f64> = match &sf {
                Some(sf) => {
                    let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
                    let q = quantize(&x64, &shape, sf).unwrap();
                    q.group.iter().map(|&g| q.scales()[g]).collect()
                }
                None => vec![1.0; x.len()],
            };
            let fmt = st.format;
            for i in 0..x.len() {
                let s = scales[i];
                let (lo, hi) = neighbours(x[i] as f64 / s, fmt);
                let r = a[i] as f64 / s;
                assert!(
                    r == lo || r == hi,
                    "{name} [{i}]: {r} not in {{{lo}, {hi}}}"
                );
            }
        }
        // Unbiased: 1/3 (between E4M3 neighbours 0.328125 and 0.34375 at scale 1) averages to
        // 1/3 within 4 standard errors over 40000 draws.
        let st = stage("e4m3@tensor~sr");
        let n = 40_000;
        let mut x = vec![(1.0f64 / 3.0) as f32; n];
        x[0] = 448.0; // the tensor's amax: scale 1
        quantize_in_place(&mut x, &[1, 1, n], &st, 11);
        let mean = x[1..].iter().map(|&v| v as f64).sum::<f64>() / (n - 1) as f64;
        let (lo, hi) = (0.328125, 0.34375);
        let p = ((1.0f32 / 3.0) as f64 - lo) / (hi - lo);
        let se = (hi - lo) * (p * (1.0 - p) / n as f64).sqrt();
        assert!(
            (mean - (1.0f32 / 3.0) as f64).abs() < 4.0 * se,
            "mean {mean} vs 1/3 (se {se})"
        );
    }

    /// Delayed scaling: each quantization's scales come from the maximum amax of the previous
    /// `len` quantizations of the site (the current amax at the first), bit for bit as the
    /// reference [`quantize_with_amax`] with that amax; a tensor that outgrows its history
    /// saturates and is counted; a history drops entries older than `len`.
    #[test]
    fn delayed_scaling_uses_the_amax_history() {
        for name in ["e4m3@tensor~d3", "e5m2@channel~d2", "e4m3@channel~d1"] {
            let st = stage(name);
            let sf = st.scaled_format().unwrap();
            let len = st.history as usize;
            let shape = [2, 4, 30];
            let mut hist = AmaxHistory::default();
            let mut past: Vec<Vec<f64>> = Vec::new();
            // Amax grows 8x per step, then falls: saturation while it grows.
            for (step, spread) in [1.0, 8.0, 64.0, 2.0, 0.5, 0.25].into_iter().enumerate() {
                let x: Vec<f32> = random(240, step as u64, 3.0)
                    .iter()
                    .map(|v| v * spread as f32)
                    .collect();
                let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
                let current = quantize(&x64, &shape, &sf).unwrap();
                let (groups, count) = sf.groups(&shape).unwrap();
                let mut cur = vec![0.0f64; count];
                for (v, g) in x64.iter().zip(&groups) {
                    cur[*g] = cur[*g].max(v.abs());
                }
                let used: Vec<f64> = if past.is_empty() {
                    cur.clone()
                } else {
                    let recent = &past[past.len().saturating_sub(len)..];
                    (0..count)
                        .map(|g| recent.iter().map(|a| a[g]).fold(0.0, f64::max))
                        .collect()
                };
                let want = quantize_with_amax(&x64, &shape, &sf, Some(&used)).unwrap();
                let mut got = x.clone();
                let c = quantize_with_history(&mut got, &shape, &st, 0, Some(&mut hist));
                for (i, (g, w)) in got.iter().zip(&want.values).enumerate() {
                    assert_eq!(
                        (*g as f64).to_bits(),
                        w.to_bits(),
                        "{name} step {step} [{i}]"
                    );
                }
                assert_eq!(c.saturated > 0, want.saturated, "{name} step {step}");
                // Growing amax under a delayed scale saturates; the current scale never does
                // for these recipes.
                assert!(!current.saturated);
                if step == 1 || step == 2 {
                    assert!(c.saturated > 0, "{name} step {step}: no saturation");
                }
                past.push(cur);
            }
            assert_eq!(hist.entries.len(), len);
        }
    }

    /// A delayed stage's histories live in the model's state, one per site; the current-amax
    /// path (`quantize_in_place`) leaves them alone.
    #[test]
    fn histories_are_per_site() {
        let st = stage("e4m3@tensor~d4");
        let state = QuantState::default();
        let shape = [1, 1, 64];
        let small: Vec<f32> = vec![0.5; 64];
        let big: Vec<f32> = vec![8.0; 64];
        let mut a = small.clone();
        state.quantize(&mut a, &shape, &st, Site::new(0, 1));
        // Site 1 saw amax 0.5 (scale 2^-9): 8.0 saturates there (at 448 * 2^-9), not at a
        // fresh site 2.
        let mut b = big.clone();
        state.quantize(&mut b, &shape, &st, Site::new(0, 1));
        assert_eq!(state.take().saturated, 64);
        let mut c = big.clone();
        state.quantize(&mut c, &shape, &st, Site::new(0, 2));
        assert_eq!(state.take().saturated, 0);
        assert!(b.iter().all(|&v| v == 448.0 / 512.0), "{}", b[0]);
        assert_eq!(c, big);
    }

    /// The histories survive a checkpoint bit for bit: quantizing after a restore gives the
    /// bits the original state gives.
    #[test]
    fn histories_round_trip_through_json() {
        let st = stage("e5m2@channel~d3");
        let a = QuantState::default();
        assert_eq!(a.histories_json(), None);
        let shape = [2, 3, 40];
        for step in 0..4 {
            for site in [1, 17] {
                let mut v = random(240, step * 31 + site, 9.0);
                a.quantize(&mut v, &shape, &st, Site::new(step, site));
            }
        }
        let json = a.histories_json().unwrap();
        let b = QuantState::default();
        b.restore_histories(&json).unwrap();
        assert_eq!(b.histories_json().unwrap(), json);
        let x = random(240, 99, 14.0);
        let (mut va, mut vb) = (x.clone(), x.clone());
        a.quantize(&mut va, &shape, &st, Site::new(9, 17));
        b.quantize(&mut vb, &shape, &st, Site::new(9, 17));
        assert_eq!(va, vb);
        assert!(
            b.restore_histories("{\"x\": []}")
                .unwrap_err()
                .contains("site 'x'")
        );
        assert!(
            b.restore_histories("{\"1\": [[-1.0]]}")
                .unwrap_err()
                .contains("negative")
        );
    }
}
