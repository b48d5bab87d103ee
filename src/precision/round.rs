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
