//! The scalar the FNO computes in: `f32` for training (values may additionally be rounded to a
//! lower storage format by the precision policy) and `f64` for gradient checks.

use crate::precision::{
    Bf16, E4m3, E4m3Sat, E5m2, Format, Fp16, Real, Tf32, round, round_slice_f32,
};

/// A native float the FNO layers compute in (`f32` or `f64`), with the elementary functions the
/// layers need. Low formats are not scalars here: they enter as roundings of `f32` values
/// (storage) and as emulated FFT/contraction arithmetic (see `policy`).
pub trait Scalar: Real + std::iter::Sum + std::fmt::Display {
    fn sqrt(self) -> Self;
    fn exp(self) -> Self;
    fn tanh(self) -> Self;
    fn abs(self) -> Self;
    /// The error function, for the exact GELU x Phi(x) (f64: libm; f32: `fastmath`, 5e-7).
    fn erf(self) -> Self;
    fn max(self, other: Self) -> Self;
    fn min(self, other: Self) -> Self;
    /// `self as f32` (exact for f32).
    fn to_f32(self) -> f32;
    /// Conversion from f32 (exact for both scalars).
    fn from_f32(x: f32) -> Self;
    /// Whether `fmt` is at least as wide as this scalar (rounding to it is the identity).
    fn holds(fmt: Format) -> bool;
    /// Round every value to `fmt` (nearest even, the format's overflow rule); identity when
    /// [`Scalar::holds`] the format.
    fn round_slice(xs: &mut [Self], fmt: Format);
    /// `C = alpha A B + beta C` for row/column strides: matrixmultiply's sgemm/dgemm, or the
    /// `gemm` crate (faer's kernels) for the shapes it runs faster, see [`faer_suits`]. Either
    /// way the result is a function of the operands alone (no threads inside), so the bits do
    /// not depend on the caller's thread count.
    ///
    /// # Safety
    /// The strides must describe valid, non-overlapping-with-C views of the given lengths.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );
}

/// Whether the `gemm` crate runs `C (m x n) = A (m x k) B (k x n)` faster than matrixmultiply
/// (measured single-threaded on the FNO's 1x1-convolution shapes, k or n = 4096 grid points):
/// a B read along k (the weight gradient G X^T: 16-64 rows, 1.5-2.6x faster) and a single row
/// or few (the projection to one output channel: 10-20x faster). matrixmultiply stays faster
/// for the forward and input-gradient products W X and W^T G (1.3-1.6x).
fn faer_suits(m: usize, rsb: isize, csb: isize) -> bool {
    m <= 4 || (rsb == 1 && csb != 1)
}

macro_rules! scalar {
    ($t:ty, $erf:path, $exp:path, $tanh:path, $gemm:path) => {
        impl Scalar for $t {
            #[inline]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline]
            fn exp(self) -> Self {
                $exp(self)
            }
            #[inline]
            fn tanh(self) -> Self {
                $tanh(self)
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
            fn holds(fmt: Format) -> bool {
                fmt <= <$t as Real>::FORMAT
            }
            fn round_slice(xs: &mut [Self], fmt: Format) {
                round_impl(xs, fmt)
            }
            unsafe fn gemm(
                m: usize,
                k: usize,
                n: usize,
                alpha: Self,
                a: *const Self,
                rsa: isize,
                csa: isize,
                b: *const Self,
                rsb: isize,
                csb: isize,
                beta: Self,
                c: *mut Self,
                rsc: isize,
                csc: isize,
            ) {
                if faer_suits(m, rsb, csb) {
                    // SAFETY: forwarded contract; `gemm` computes dst := alpha' dst + beta' lhs
                    // rhs (its alpha and beta are BLAS's beta and alpha) and reads dst only
                    // when asked to.
                    unsafe {
                        gemm::gemm(
                            m,
                            n,
                            k,
                            c,
                            csc,
                            rsc,
                            beta != 0.0,
                            a,
                            csa,
                            rsa,
                            b,
                            csb,
                            rsb,
                            beta,
                            alpha,
                            false,
                            false,
                            false,
                            gemm::Parallelism::None,
                        )
                    }
                } else {
                    // SAFETY: forwarded contract.
                    unsafe { $gemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
                }
            }
        }
    };
}

scalar!(
    f32,
    super::fastmath::erf,
    super::fastmath::exp,
    super::fastmath::tanh,
    matrixmultiply::sgemm
);
scalar!(f64, libm::erf, f64::exp, f64::tanh, matrixmultiply::dgemm);

trait RoundImpl: Sized {
    fn round_impl(xs: &mut [Self], fmt: Format);
}

fn round_impl<T: RoundImpl>(xs: &mut [T], fmt: Format) {
    T::round_impl(xs, fmt)
}

impl RoundImpl for f32 {
    fn round_impl(xs: &mut [f32], fmt: Format) {
        match fmt {
            Format::Fp64 | Format::Fp32 => {}
            Format::Tf32 => round_slice_f32::<Tf32>(xs),
            Format::Bf16 => round_slice_f32::<Bf16>(xs),
            Format::Fp16 => round_slice_f32::<Fp16>(xs),
            Format::E5m2 => round_slice_f32::<E5m2>(xs),
            Format::E4m3 => round_slice_f32::<E4m3>(xs),
            Format::E4m3Sat => round_slice_f32::<E4m3Sat>(xs),
        }
    }
}

impl RoundImpl for f64 {
    fn round_impl(xs: &mut [f64], fmt: Format) {
        match fmt {
            Format::Fp64 => {}
            Format::Fp32 => xs.iter_mut().for_each(|x| *x = *x as f32 as f64),
            _ => xs.iter_mut().for_each(|x| *x = round(*x, fmt)),
        }
    }
}
