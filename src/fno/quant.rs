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
    Format, Overflow, ScaledFormat, Scaling, pow2, round_stochastic, round_with,
};
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use std::fmt;
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

/// Counts of the quantizations since the last [`QuantStats::take`], added up by the model's
/// passes (atomics: a model is shared by reference). A clone starts from zero.
#[derive(Default)]
pub struct QuantStats {
    saturated: AtomicU64,
    nonfinite_groups: AtomicU64,
}

impl QuantStats {
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

impl Clone for QuantStats {
    fn clone(&self) -> Self {
        QuantStats::default()
    }
}

impl fmt::Debug for QuantStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "QuantStats {{ saturated: {}, nonfinite_groups: {} }}",
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

/// The group of each flat index of a row-major tensor of `shape` under `scaling`, and the group
/// count (the layout of [`ScaledFormat::groups`], computed without storing it).
fn group_fn(scaling: Scaling, shape: &[usize]) -> (impl Fn(usize) -> usize + Sync, usize) {
    let n: usize = shape.iter().product();
    let (div, modulo, last, k, count) = match scaling {
        Scaling::Tensor => (1, 1, 1, 1, 1),
        Scaling::Channel { axis } => {
            assert!(axis < shape.len(), "channel axis {axis} of shape {shape:?}");
            let stride: usize = shape[axis + 1..].iter().product();
            (stride.max(1), shape[axis].max(1), 0, 0, shape[axis])
        }
        Scaling::Block { k } => {
            let last = shape.last().copied().unwrap_or(1).max(1);
            let per_row = last.div_ceil(k);
            (0, per_row, last, k, n / last * per_row)
        }
    };
    let block = matches!(scaling, Scaling::Block { .. });
    let f = move |i: usize| {
        if block {
            (i / last) * modulo + (i % last) / k
        } else {
            (i / div) % modulo
        }
    };
    (f, count)
}

/// Round the row-major values `x` of `shape` in place as `stage` rounds (scaled and/or
/// stochastic; see the module docs), stochastic streams seeded from `seed`.
pub fn quantize_in_place<T: Scalar>(
    x: &mut [T],
    shape: &[usize],
    stage: &Stage,
    seed: u64,
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
    scaled_in_place(x, shape, &sf, stage.stochastic, seed)
}

fn scaled_in_place<T: Scalar>(
    x: &mut [T],
    shape: &[usize],
    sf: &ScaledFormat,
    stochastic: bool,
    seed: u64,
) -> QuantCount {
    let (group, count) = group_fn(sf.scaling, shape);
    let blocks = matches!(sf.scaling, Scaling::Block { .. });
    let (amax, bad) = group_amax(x, &group, count, blocks);
    // The scale 2^X of each group; NaN for a group without one.
    let scales: Vec<f64> = (0..count)
        .map(|g| {
            if bad[g] {
                f64::NAN
            } else {
                pow2(sf.scale_exponent(amax[g]))
            }
        })
        .collect();
    let elem = sf.elem;
    let max = elem.max_finite();
    let saturated: u64 = x
        .par_chunks_mut(CHUNK)
        .enumerate()
        .map(|(c, xs)| {
            let mut rng =
                stochastic.then(|| Xoshiro256PlusPlus::seed_from_u64(site_seed(seed, c as u64)));
            let mut sat = 0u64;
            for (j, v) in xs.iter_mut().enumerate() {
                let s = scales[group(c * CHUNK + j)];
                if s.is_nan() {
                    *v = T::from_f64(f64::NAN);
                    continue;
                }
                // Division and product by a power of two: exact (module docs).
                let t = v.to_f64() / s;
                sat += (t.abs() > max) as u64;
                let r = match rng.as_mut() {
                    None => round_with(t, elem, Overflow::Saturate),
                    Some(rng) => round_stochastic(t.clamp(-max, max), elem, rng),
                };
                *v = T::from_f64(r * s);
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

/// Per group: the largest finite |value| and whether a value is inf or NaN. Chunks in parallel,
/// each with its own table of every group (tensor, channel: few groups, interleaved), or with
/// `blocks` (contiguous groups along the row-major order) of its own groups alone; max and "or"
/// do not depend on the order, so neither does the result.
fn group_amax<T: Scalar>(
    x: &[T],
    group: &(impl Fn(usize) -> usize + Sync),
    count: usize,
    blocks: bool,
) -> Maxima {
    let fold = |(amax, bad): &mut Maxima, base: usize, g0: usize, xs: &[T]| {
        for (j, v) in xs.iter().enumerate() {
            let v = v.to_f64();
            let g = group(base + j) - g0;
            if v.is_finite() {
                amax[g] = amax[g].max(v.abs());
            } else {
                bad[g] = true;
            }
        }
    };
    let init = |n: usize| (vec![0.0f64; n], vec![false; n]);
    if !blocks {
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
            let (g0, g1) = (group(base), group(base + xs.len() - 1));
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

/// `x` (real, row-major) rounded as `stage` rounds, the counts added to `stats`.
pub fn quantize_real<B: Backend>(
    be: &B,
    x: &B::Tensor,
    stage: &Stage,
    seed: u64,
    stats: &QuantStats,
) -> B::Tensor {
    let shape = be.shape(x).to_vec();
    let mut v = be.download(x);
    stats.add(quantize_in_place(&mut v, &shape, stage, seed));
    be.upload(&shape, &v, tag(stage))
}

/// `x` (complex) rounded as `stage` rounds: its values read as the real tensor of interleaved
/// (re, im) pairs, the last axis twice as long (so an MX block holds k / 2 complex values).
pub fn quantize_complex<B: Backend>(
    be: &B,
    x: &B::CTensor,
    stage: &Stage,
    seed: u64,
    stats: &QuantStats,
) -> B::CTensor {
    let cshape = be.cshape(x).to_vec();
    let mut shape = cshape.clone();
    if let Some(l) = shape.last_mut() {
        *l *= 2;
    }
    let mut v = be.download_complex(x);
    stats.add(quantize_in_place(&mut v, &shape, stage, seed));
    be.upload_complex(&cshape, &v, tag(stage))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::precision::{neighbours, quantize};
    use rand::RngExt;

    fn stage(s: &str) -> Stage {
        s.parse().unwrap()
    }

    fn random(n: usize, seed: u64, spread: f64) -> Vec<f32> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let e: f64 = rng.random_range(-spread..spread);
                let s = if rng.random::<bool>() { 1.0 } else { -1.0 };
                (s * 2f64.powf(e)) as f32
            })
            .collect()
    }

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
}
