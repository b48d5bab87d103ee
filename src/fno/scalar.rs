//! The scalar the FNO computes in: `f32` for training (values may additionally be rounded to a
//! lower storage format by the precision policy) and `f64` for gradient checks.

use crate::precision::Real;

/// A native float the FNO layers compute in (`f32` or `f64`), with the elementary functions the
/// layers need. Low formats are not scalars here: they enter as roundings of `f32` values
/// (storage) and as emulated FFT/contraction arithmetic (see `policy`).
pub trait Scalar: Real + std::iter::Sum + std::fmt::Display {
    fn sqrt(self) -> Self;
    fn exp(self) -> Self;
    fn tanh(self) -> Self;
    fn abs(self) -> Self;
    /// The error function (libm), for the exact GELU x Phi(x).
    fn erf(self) -> Self;
    fn max(self, other: Self) -> Self;
    fn min(self, other: Self) -> Self;
    /// `self as f32` (exact for f32).
    fn to_f32(self) -> f32;
    /// Conversion from f32 (exact for both scalars).
    fn from_f32(x: f32) -> Self;
}

macro_rules! scalar {
    ($t:ty, $erf:path) => {
        impl Scalar for $t {
            #[inline]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline]
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            #[inline]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline]
            fn erf(self) -> Self {
                $erf(self)
            }
            #[inline]
            fn max(self, other: Self) -> Self {
                <$t>::max(self, other)
            }
            #[inline]
            fn min(self, other: Self) -> Self {
                <$t>::min(self, other)
            }
            #[inline]
            fn to_f32(self) -> f32 {
                self as f32
            }
            #[inline]
            fn from_f32(x: f32) -> Self {
                x as $t
            }
        }
    };
}

scalar!(f32, libm::erff);
scalar!(f64, libm::erf);
