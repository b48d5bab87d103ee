//! Rounding of real numbers to a [`Format`].
//!
//! [`round`] is the exact reference: one round-to-nearest-even from an f64 to the format, with
//! subnormals and the format's overflow rule. [`round_stochastic`] rounds up with probability equal
//! to the distance from the lower neighbour in units of the gap (unbiased: E[fl(x)] = x).
//! The fast `f32` path used by emulated arithmetic lives in [`super::scalar`].

use super::format::{Format, Overflow, pow2};
use rand::RngExt;

/// Round `x` to the nearest value of `fmt` (ties to even), with `fmt`'s default overflow rule.
///
/// Below 2^emin the spacing is the fixed subnormal quantum 2^(emin - p + 1); a value whose rounded
/// magnitude (with unbounded exponent) exceeds `max_finite` overflows. NaN stays NaN; +-inf stays
/// +-inf where the format has infinities and follows the overflow rule where it has none.
#[inline]
pub fn round(x: f64, fmt: Format) -> f64 {
    round_with(x, fmt, fmt.overflow())
}

/// [`round`] with an explicit overflow rule (e.g. saturating E5M2 as NVIDIA's `satfinite`).
#[inline]
pub fn round_with(x: f64, fmt: Format, overflow: Overflow) -> f64 {
    if fmt == Format::Fp64 {
        return x;
    }
    if fmt == Format::Fp32 && overflow == Overflow::Inf {
        // Rust's f64 -> f32 cast is IEEE round-to-nearest-even with subnormals and overflow to inf.
        return x as f32 as f64;
    }
    if x.is_nan() {
        return x;
    }
    let a = x.abs();
    if a == 0.0 {
        return x;
    }
    let r = if a.is_infinite() {
        a
    } else {
        let p = fmt.precision() as i32;
        // floor(log2 a) for normal f64; f64 subnormals are far below every format's emin.
        let e = (((a.to_bits() >> 52) & 0x7ff) as i32 - 1023).max(fmt.emin());
        let q = pow2(e - p + 1);
        // a / q and the product by q are exact: q is a power of two and the quotient has <= 53 bits.
        (a / q).round_ties_even() * q
    };
    let r = if r > fmt.max_finite() {
        match overflow {
            Overflow::Inf => f64::INFINITY,
            Overflow::Saturate => fmt.max_finite(),
            Overflow::Nan => f64::NAN,
        }
    } else {
        r
    };
    r.copysign(x)
}

/// The two neighbours `lo <= x <= hi` of `x` in `fmt` (equal when x is representable), ignoring
/// overflow (the upper neighbour of a value above max may be past max).
pub fn neighbours(x: f64, fmt: Format) -> (f64, f64) {
    if fmt == Format::Fp64 || !x.is_finite() || x == 0.0 {
        return (x, x);
    }
    let a = x.abs();
    let p = fmt.precision() as i32;
    let e = (((a.to_bits() >> 52) & 0x7ff) as i32 - 1023).max(fmt.emin());
    let q = pow2(e - p + 1);
    let lo = (a / q).floor() * q;
    let hi = (a / q).ceil() * q;
    if x > 0.0 { (lo, hi) } else { (-hi, -lo) }
}

/// Stochastic rounding: `x` goes to its upper neighbour `hi` with probability (x - lo) / (hi - lo)
/// and to `lo` otherwise, so E[fl(x)] = x and |fl(x) - x| < hi - lo <= 2u|x| (normal range).
/// Overflow follows `fmt`'s rule. The caller owns the seeded generator.
pub fn round_stochastic<R: rand::Rng + ?Sized>(x: f64, fmt: Format, rng: &mut R) -> f64 {
    let (lo, hi) = neighbours(x, fmt);
    if lo == hi {
        return round(x, fmt);
    }
    let p_up = (x - lo) / (hi - lo);
    let u: f64 = rng.random();
    let r = if u < p_up { hi } else { lo };
    // Apply the overflow rule to the chosen neighbour.
    round(r, fmt)
}

/// The spacing q of the grid of a format of precision `p` and minimum exponent `emin` around
/// `a` >= 0 (normal or zero in f64), and 1 / q: q = 2^(max(floor(log2 a), emin) - p + 1).
#[inline(always)]
pub(crate) fn grid_step(a: f64, p: i32, emin: i32) -> (f64, f64) {
    let e = (((a.to_bits() >> 52) & 0x7ff) as i32 - 1023).max(emin) - p + 1;
    (
        f64::from_bits(((e + 1023) as u64) << 52),
        f64::from_bits(((1023 - e) as u64) << 52),
    )
}

/// Round-to-nearest-even of `t` (finite, |t| < 2^1000) to a format of precision `p` and minimum
/// exponent `emin`, saturating at `max`: [`round_with`]`(t, fmt, Overflow::Saturate)` for the
/// fp8 formats, in multiplications by powers of two (exact) instead of divisions (the hot loop
/// of scaled quantization, `fno::quant`); the tests check it against `round_with`.
#[inline(always)]
pub(crate) fn round_saturate(t: f64, p: i32, emin: i32, max: f64) -> f64 {
    let a = t.abs();
    let (q, inv_q) = grid_step(a, p, emin);
    ((a * inv_q).round_ties_even() * q).min(max).copysign(t)
}

/// Stochastic rounding of `t` (finite, |t| < 2^1000) to a format of precision `p` and minimum
/// exponent `emin`: [`round_stochastic`]`(t, fmt, rng)` for the fp8 formats within their range
/// (the caller clamps t to +-max first), bit for bit and drawing from `rng` exactly when it does
/// (not for a representable t); multiplications by powers of two instead of divisions. With
/// a = |t| = (k + f) q, f in [0, 1): |t| goes up to (k + 1) q with probability f.
#[inline(always)]
pub(crate) fn round_stochastic_fast<R: rand::Rng>(t: f64, p: i32, emin: i32, rng: &mut R) -> f64 {
    let a = t.abs();
    let (q, inv_q) = grid_step(a, p, emin);
    let k = (a * inv_q).floor();
    // a - k q is exact (a and k q share their binade, k q has fewer bits), and so is / q.
    let f = a * inv_q - k;
    if f == 0.0 {
        return t;
    }
    let u: f64 = rng.random();
    // round_stochastic compares u with the probability of its upper neighbour: f for t > 0;
    // for t < 0 the upper neighbour is -k q, with probability 1 - f (exact: f has few bits).
    // Branch-free (the comparison is random, so a branch mispredicts half the time).
    let up = ((t > 0.0) & (u < f)) | ((t < 0.0) & (u >= 1.0 - f));
    ((k + f64::from(up as u8)) * q).copysign(t)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// Random f32 values: sign and magnitude 2^e, e uniform in (-spread, spread).
    pub(crate) fn random_f32(n: usize, seed: u64, spread: f64) -> Vec<f32> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let e: f64 = rng.random_range(-spread..spread);
                let s = if rng.random::<bool>() { 1.0 } else { -1.0 };
                (s * 2f64.powf(e)) as f32
            })
            .collect()
    }

    /// The multiplication-only rounding is `round_with` with saturation, bit for bit: every
    /// significand of 13 bits (so every fp8 value, every midpoint between two and the values
    /// next to them) at every exponent from far below the subnormals to far above max, both
    /// signs, and zero.
    #[test]
    fn fast_rounding_is_round_with_saturate() {
        for fmt in [Format::E4m3, Format::E5m2] {
            let (p, emin, max) = (fmt.precision() as i32, fmt.emin(), fmt.max_finite());
            let mut checked = 0;
            for e in -40..40 {
                for m in 0..(1u64 << 13) {
                    let a = (1.0 + m as f64 / 8192.0) * pow2(e);
                    for t in [a, -a] {
                        let want = round_with(t, fmt, Overflow::Saturate);
                        let got = round_saturate(t, p, emin, max);
                        assert_eq!(got.to_bits(), want.to_bits(), "{fmt} {t:e}");
                        checked += 1;
                    }
                }
            }
            for t in [0.0, -0.0, f64::MIN_POSITIVE, 1e-300, 3e200] {
                let want = round_with(t, fmt, Overflow::Saturate);
                assert_eq!(
                    round_saturate(t, p, emin, max).to_bits(),
                    want.to_bits(),
                    "{t:e}"
                );
            }
            assert_eq!(checked, 80 * 8192 * 2);
        }
    }

    /// The fast stochastic rounding is `round_stochastic` bit for bit from the same stream, and
    /// leaves the stream where it does (so the draws of later values agree too): values on the
    /// grid, between grid points, subnormal, at +-max, both signs, one shared stream per format.
    #[test]
    fn fast_stochastic_rounding_is_round_stochastic() {
        for fmt in [Format::E4m3, Format::E5m2] {
            let (p, emin, max) = (fmt.precision() as i32, fmt.emin(), fmt.max_finite());
            let mut a = Xoshiro256PlusPlus::seed_from_u64(5);
            let mut b = a.clone();
            let mut values = random_f32(200_000, 3, 24.0);
            values.extend([0.0, -0.0, 1.0, -1.5, 448.0, -448.0, 57344.0, 1e-9, -3e-7]);
            for v in values {
                let t = (v as f64).clamp(-max, max);
                let want = round_stochastic(t, fmt, &mut a);
                let got = round_stochastic_fast(t, p, emin, &mut b);
                assert_eq!(got.to_bits(), want.to_bits(), "{fmt} {t:e}");
            }
            assert_eq!(
                a.random::<u64>(),
                b.random::<u64>(),
                "{fmt}: the streams drifted"
            );
        }
    }
}
