//! The real scalar types that numerical kernels are generic over.
//!
//! [`Real`] is implemented by `f64`, `f32` (native arithmetic) and [`Emu<F>`], an emulated scalar
//! whose every `+ - * /` is rounded to the format `F` (round to nearest even, subnormals, the
//! format's overflow rule). `Emu` stores an f32 and computes each operation in f32 before rounding
//! to `F`: for p <= 11 significand bits the f32 result (24 bits >= 2p + 2) makes this double
//! rounding innocuous, so the result is the correctly rounded one (Figueroa 1995). The one case
//! where f32 itself rounds first at a coarser spacing (products and quotients below 2^-126 in the
//! fp32-range formats bf16/tf32) is recomputed in f64.

use super::format::{Format, Overflow};
use super::lanes::{Arr8, EmuLanes, Lanes};
use super::round::round;
use std::fmt::Debug;
use std::marker::PhantomData;
use std::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};

/// A real scalar with a known format: native `f64`/`f32` or an emulated low-precision type.
pub trait Real:
    Copy
    + Send
    + Sync
    + Debug
    + Default
    + PartialEq
    + PartialOrd
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
{
    /// The format every value and every operation result of this type lies in.
    const FORMAT: Format;
    /// Eight lanes of this scalar whose operations round exactly as the scalar's do.
    type Lanes: Lanes<Self>;
    /// One rounding of an f64 to this type (exact reference rounding).
    fn from_f64(x: f64) -> Self;
    /// The exact value as an f64 (always representable).
    fn to_f64(self) -> f64;
    /// Zero.
    #[inline]
    fn zero() -> Self {
        Self::default()
    }
    /// Whether the value is finite (neither inf nor NaN).
    #[inline]
    fn is_finite(self) -> bool {
        self.to_f64().is_finite()
    }
}

impl Real for f64 {
    const FORMAT: Format = Format::Fp64;
    type Lanes = Arr8<f64>;
    #[inline]
    fn from_f64(x: f64) -> Self {
        x
    }
    #[inline]
    fn to_f64(self) -> f64 {
        self
    }
}

impl Real for f32 {
    const FORMAT: Format = Format::Fp32;
    type Lanes = Arr8<f32>;
    #[inline]
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    #[inline]
    fn to_f64(self) -> f64 {
        self as f64
    }
}

/// A format narrower than fp32, as a type: the constants of its fast rounding from f32.
pub trait LowFormat:
    Copy + Send + Sync + Debug + Default + PartialEq + PartialOrd + 'static
{
    /// The runtime format.
    const FORMAT: Format;
    /// Significand bits, hidden bit included.
    const P: u32;
    /// Minimum normal exponent.
    const EMIN: i32;
    /// Bit pattern (as f32) of the largest finite value.
    const MAX_BITS: u32;
    /// Bit pattern (as f32, sign cleared) an overflowing magnitude becomes.
    const OVERFLOW_BITS: u32;
    /// Whether the exponent range equals fp32's, so f32 products can lose bits below 2^-126.
    const F32_RANGE: bool;
}

macro_rules! low_format {
    ($(#[$m:meta])* $name:ident, $fmt:expr, $p:expr, $emin:expr, $max:expr, $ovf:expr, $wide:expr) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, PartialOrd)]
        pub struct $name;
        impl LowFormat for $name {
            const FORMAT: Format = $fmt;
            const P: u32 = $p;
            const EMIN: i32 = $emin;
            const MAX_BITS: u32 = ($max as f32).to_bits();
            const OVERFLOW_BITS: u32 = $ovf;
            const F32_RANGE: bool = $wide;
        }
    };
}

const INF_BITS: u32 = 0x7f80_0000;
const NAN_BITS: u32 = 0x7fc0_0000;

low_format!(
    /// TensorFloat-32 (p = 11, fp32 range).
    Tf32, Format::Tf32, 11, -126, 3.4011621e38_f64, INF_BITS, true);
low_format!(
    /// bfloat16 (p = 8, fp32 range).
    Bf16, Format::Bf16, 8, -126, 3.3895314e38_f64, INF_BITS, true);
low_format!(
    /// IEEE binary16 (p = 11, max 65504).
    Fp16, Format::Fp16, 11, -14, 65504.0, INF_BITS, false);
low_format!(
    /// OCP fp8 E5M2 (p = 3, max 57344).
    E5m2, Format::E5m2, 3, -14, 57344.0, INF_BITS, false);
low_format!(
    /// OCP fp8 E4M3 (p = 4, max 448), overflow to NaN.
    E4m3, Format::E4m3, 4, -6, 448.0, NAN_BITS, false);
low_format!(
    /// OCP fp8 E4M3 with saturation (overflow to +-448).
    E4m3Sat, Format::E4m3Sat, 4, -6, 448.0, 0x43e0_0000, false);

/// Round an f32 to the format `F` (ties to even). Exact single rounding of the f32 value, written
/// branch-free on the bit pattern so that loops over slices vectorise.
#[inline(always)]
pub fn round_f32<F: LowFormat>(x: f32) -> f32 {
    let bits = x.to_bits();
    let sign = bits & 0x8000_0000;
    let abs = bits & 0x7fff_ffff;
    let shift = 24 - F::P;
    // Normal range: round the significand on the bit pattern; a carry correctly bumps the exponent.
    let lsb = (abs >> shift) & 1;
    let rn = (abs + ((1u32 << (shift - 1)) - 1) + lsb) & !((1u32 << shift) - 1);
    // Below 2^emin the spacing is the subnormal quantum q = 2^(emin - p + 1): adding c = 2^23 q
    // rounds to a multiple of q (f32 has 24 bits) and subtracting c is exact.
    let c = f32::from_bits(((F::EMIN - F::P as i32 + 1 + 23 + 127) as u32) << 23);
    let rs = ((f32::from_bits(abs) + c) - c).to_bits();
    let min_normal = ((F::EMIN + 127) as u32) << 23;
    let r = if abs < min_normal { rs } else { rn };
    let r = if r > F::MAX_BITS { F::OVERFLOW_BITS } else { r };
    let r = if abs > INF_BITS { abs } else { r };
    f32::from_bits(r | sign)
}

/// Round every element of a slice of f32 to `F` in place.
pub fn round_slice_f32<F: LowFormat>(xs: &mut [f32]) {
    for x in xs {
        *x = round_f32::<F>(*x);
    }
}

/// An emulated scalar in format `F`: every arithmetic result is rounded to `F`.
#[derive(Clone, Copy, Debug, Default, PartialEq, PartialOrd)]
#[repr(transparent)]
pub struct Emu<F: LowFormat>(f32, PhantomData<F>);

impl<F: LowFormat> Emu<F> {
    /// Wrap an f32 that is already representable in `F` (not checked in release builds).
    #[inline(always)]
    pub fn from_raw(x: f32) -> Self {
        debug_assert!(x.is_nan() || round_f32::<F>(x) == x);
        Emu(x, PhantomData)
    }
    /// Round an f32 to `F`.
    #[inline(always)]
    pub fn from_f32(x: f32) -> Self {
        Emu(round_f32::<F>(x), PhantomData)
    }
    /// The stored value.
    #[inline(always)]
    pub fn raw(self) -> f32 {
        self.0
    }
    #[inline(always)]
    fn exact_f64(a: f64) -> Self {
        Emu(round(a, F::FORMAT) as f32, PhantomData)
    }
}

impl<F: LowFormat> Add for Emu<F> {
    type Output = Self;
    #[inline(always)]
    fn add(self, rhs: Self) -> Self {
        Self::from_f32(self.0 + rhs.0)
    }
}
impl<F: LowFormat> Sub for Emu<F> {
    type Output = Self;
    #[inline(always)]
    fn sub(self, rhs: Self) -> Self {
        Self::from_f32(self.0 - rhs.0)
    }
}
impl<F: LowFormat> Mul for Emu<F> {
    type Output = Self;
    #[inline(always)]
    fn mul(self, rhs: Self) -> Self {
        let p = self.0 * rhs.0;
        if F::F32_RANGE && p.abs() < f32::MIN_POSITIVE && p != 0.0 {
            return Self::exact_f64(self.0 as f64 * rhs.0 as f64);
        }
        Self::from_f32(p)
    }
}
impl<F: LowFormat> Div for Emu<F> {
    type Output = Self;
    #[inline(always)]
    fn div(self, rhs: Self) -> Self {
        let q = self.0 / rhs.0;
        if F::F32_RANGE && q.abs() < f32::MIN_POSITIVE {
            return Self::exact_f64(self.0 as f64 / rhs.0 as f64);
        }
        Self::from_f32(q)
    }
}
impl<F: LowFormat> Neg for Emu<F> {
    type Output = Self;
    #[inline(always)]
    fn neg(self) -> Self {
        Emu(-self.0, PhantomData)
    }
}
impl<F: LowFormat> AddAssign for Emu<F> {
    #[inline(always)]
    fn add_assign(&mut self, rhs: Self) {
        *self = *self + rhs;
    }
}
impl<F: LowFormat> SubAssign for Emu<F> {
    #[inline(always)]
    fn sub_assign(&mut self, rhs: Self) {
        *self = *self - rhs;
    }
}
impl<F: LowFormat> MulAssign for Emu<F> {
    #[inline(always)]
    fn mul_assign(&mut self, rhs: Self) {
        *self = *self * rhs;
    }
}

impl<F: LowFormat> Real for Emu<F> {
    const FORMAT: Format = F::FORMAT;
    type Lanes = EmuLanes<F>;
    #[inline]
    fn from_f64(x: f64) -> Self {
        Self::exact_f64(x)
    }
    #[inline]
    fn to_f64(self) -> f64 {
        self.0 as f64
    }
}

/// Sum of `xs` as a GPU reduction does it: values in storage type `S`, each partial sum rounded
/// to the accumulation type `A` (e.g. fp16 storage with fp32 accumulation), the result rounded
/// once back to `S`. With `A = S` this is plain recursive summation in `S`.
pub fn sum_acc<S: Real, A: Real>(xs: &[S]) -> S {
    let mut acc = A::zero();
    for &x in xs {
        acc += A::from_f64(x.to_f64());
    }
    S::from_f64(acc.to_f64())
}

/// Dot product with products and partial sums in the accumulation type `A`, result stored in `S`
/// (the semantics of a GEMM with fp16 inputs and fp32 accumulation).
pub fn dot_acc<S: Real, A: Real>(xs: &[S], ys: &[S]) -> S {
    assert_eq!(xs.len(), ys.len(), "dot_acc: length mismatch");
    let mut acc = A::zero();
    for (&x, &y) in xs.iter().zip(ys) {
        acc += A::from_f64(x.to_f64()) * A::from_f64(y.to_f64());
    }
    S::from_f64(acc.to_f64())
}

/// Whether `x` rounds without overflow in `fmt` under its overflow rule.
pub fn fits(x: f64, fmt: Format) -> bool {
    let r = super::round::round_with(x, fmt, Overflow::Inf);
    r.is_finite() || !x.is_finite()
}

/// Run `$body` with the type alias `$T` bound to the [`Real`] type of the runtime format `$fmt`.
///
/// ```
/// use mpno::precision::{Format, Real};
/// fn one_third<T: Real>() -> f64 { (T::from_f64(1.0) / T::from_f64(3.0)).to_f64() }
/// let x = mpno::with_real!(Format::Bf16, T => one_third::<T>());
/// assert_eq!(x, 0.333984375);
/// ```
#[macro_export]
macro_rules! with_real {
    ($fmt:expr, $T:ident => $body:expr) => {{
        use $crate::precision::Format as __F;
        match $fmt {
            __F::Fp64 => {
                type $T = f64;
                $body
            }
            __F::Fp32 => {
                type $T = f32;
                $body
            }
            __F::Tf32 => {
                type $T = $crate::precision::Emu<$crate::precision::Tf32>;
                $body
            }
            __F::Bf16 => {
                type $T = $crate::precision::Emu<$crate::precision::Bf16>;
                $body
            }
            __F::Fp16 => {
                type $T = $crate::precision::Emu<$crate::precision::Fp16>;
                $body
            }
            __F::E5m2 => {
                type $T = $crate::precision::Emu<$crate::precision::E5m2>;
                $body
            }
            __F::E4m3 => {
                type $T = $crate::precision::Emu<$crate::precision::E4m3>;
                $body
            }
            __F::E4m3Sat => {
                type $T = $crate::precision::Emu<$crate::precision::E4m3Sat>;
                $body
            }
        }
    }};
}
