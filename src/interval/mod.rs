//! Interval arithmetic for certified constants: enclosures [lo, hi] that contain the exact real
//! result of an operation on every real point of the operand intervals.
//!
//! - `+ - * /` and `sqrt` are inari's (IEEE 1788, outward rounding, no GMP).
//! - The elementary functions ([`elementary`]: exp, ln, sin, cos, tan, asin, acos, atan, sinh,
//!   cosh, tanh, real and integer powers) are ours, generic over where their endpoint values come
//!   from ([`Directed`]):
//!   - [`Certified`]: dashu-float's correctly rounded results in round-down and round-up mode
//!     (Ziv's strategy in arbitrary precision): the enclosures are proven, ~40 us per endpoint;
//!   - [`Guard`]: the `libm` crate's f64 results widened by two ulps on each side, ~20 ns. Its
//!     error bounds (< 1 ulp for these functions) are the library authors' analysis, not ours, so
//!     guard enclosures steer searches and flag unresolved quadrature panels but never give a
//!     number that is reported as certified.
//! - Domain errors (sqrt or ln of a negative number, asin outside [-1, 1], a non-integer power of
//!   a negative number) give the empty interval, which every operation propagates ("poison"):
//!   the point function is undefined somewhere in the box. Poles (division by an interval that
//!   contains 0, tan across an odd multiple of pi/2, ln at 0) give infinite endpoints instead:
//!   the function is defined but unbounded there.
//! - [`Slope`] carries a value enclosure and N slope enclosures for forward-mode Lipschitz bounds.

mod directed;
pub mod elementary;
mod slope;

pub use directed::{Certified, Directed, Elem, Guard};
pub use inari::Interval;
pub use slope::Slope;

/// [lo, hi], or the empty interval when lo > hi or either is NaN.
pub fn iv(lo: f64, hi: f64) -> Interval {
    Interval::try_from((lo, hi)).unwrap_or(Interval::EMPTY)
}

/// The degenerate interval [x, x] (empty for NaN).
pub fn point(x: f64) -> Interval {
    iv(x, x)
}

/// An interval that certainly contains the real number a decimal literal denotes, given its
/// nearest f64 `x`: [x, x] when the literal is exactly representable, otherwise x widened by one
/// ulp on each side (round-to-nearest is within half an ulp).
pub fn literal(x: f64, exact: bool) -> Interval {
    if exact {
        point(x)
    } else {
        iv(x.next_down(), x.next_up())
    }
}

/// Largest absolute value in `x` (infinite when unbounded, NaN when empty).
pub fn mag(x: Interval) -> f64 {
    if x.is_empty() { f64::NAN } else { x.mag() }
}

/// Smallest absolute value in `x` (NaN when empty).
pub fn mig(x: Interval) -> f64 {
    if x.is_empty() { f64::NAN } else { x.mig() }
}

/// x 2^e, in steps of at most 2^1000 so every factor is representable (outward rounding, so
/// an underflowing result keeps a nonzero upper end).
pub fn times_pow2(mut x: Interval, mut e: i64) -> Interval {
    while e != 0 {
        let s = e.clamp(-1000, 1000);
        x *= point(2f64.powi(s as i32));
        e -= s;
    }
    x
}

/// Width hi - lo rounded up (infinite when unbounded, NaN when empty).
pub fn wid(x: Interval) -> f64 {
    if x.is_empty() { f64::NAN } else { x.wid() }
}
