//! Floating-point formats, rounding, and the emulated scalar.
//!
//! - [`Format`]: fp64, fp32, tf32, bf16, fp16, fp8 E5M2 / E4M3 with their constants.
//! - [`round`]: exact round-to-nearest-even from f64 (the reference), [`round_stochastic`].
//! - [`Real`]: the scalar trait numerical kernels are generic over; [`Emu`] emulates a format.
//! - [`ScaledFormat`]: fp8 values times a per-tensor, per-channel or MX-block power-of-two scale.
//! - [`tensor_core`]: a tensor core's block FMA (truncating alignment and rounding), emulated.
//! - [`Model`]: the precision-error models of docs/bounds.md (I-III for the FFT, G for the
//!   dense transform as a matrix product with fp32 accumulation).

mod format;
pub(crate) mod lanes;
mod round;
mod scalar;
mod scaled;
pub mod tensor_core;

pub use format::{Format, Overflow, UnknownFormat, pow2};
pub use lanes::{Arr8, EmuLanes, LANES, Lanes};
#[cfg(test)]
pub(crate) use round::tests::random_f32;
pub use round::{neighbours, round, round_stochastic, round_with};
pub(crate) use round::{round_saturate, round_stochastic_fast};
pub use scalar::{
    Bf16, E4m3, E4m3Sat, E5m2, Emu, Fp16, LowFormat, Real, Tf32, dot_acc, fits, round_f32,
    round_slice_f32, sum_acc,
};
pub use scaled::{
    E8M0_MAX_EXP, E8M0_MIN_EXP, Quantized, ScaledError, ScaledFormat, Scaling, quantize,
    quantize_with_amax,
};

use std::fmt;
use std::str::FromStr;

/// gamma_k = k u / (1 - k u) (Higham), infinite when k u >= 1.
pub fn gamma(k: f64, u: f64) -> f64 {
    if k * u >= 1.0 {
        f64::INFINITY
    } else {
        k * u / (1.0 - k * u)
    }
}

/// prod_i (1 + x_i)^(k_i) - 1 for x_i, k_i >= 0, the compounding of relative errors, computed
/// as expm1(sum_i k_i log1p(x_i)): the direct product loses every x_i below 2^-53 (1 + x rounds
/// to 1) and most digits of those near it, so it could fall below the true value. The factor
/// (1 + 1e-14) covers the few ulps of log1p, expm1 and the sum: an upper bound. Infinite when
/// some x_i is.
pub fn compound(terms: &[(f64, f64)]) -> f64 {
    let sum: f64 = terms.iter().map(|&(x, k)| k * x.ln_1p()).sum();
    sum.exp_m1() * (1.0 + 1e-14)
}

#[cfg(test)]
mod compound_tests {
    #[test]
    fn compound_keeps_tiny_terms_and_bounds_the_product() {
        assert!(super::compound(&[(1e-30, 2.0), (1e-29, 1.0)]) >= 1.2e-29);
        assert_eq!(super::compound(&[]), 0.0);
        let x: f64 = 3e-8;
        let exact = 3.0 * x + 3.0 * x * x + x * x * x;
        let c = super::compound(&[(x, 3.0)]);
        assert!(
            c >= exact && c <= exact * (1.0 + 1e-13),
            "{c:e} vs {exact:e}"
        );
        assert!(super::compound(&[(f64::INFINITY, 1.0)]).is_infinite());
    }
}

/// How low precision enters a transform (docs/bounds.md, "Precision error").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Model {
    /// Model I: inputs rounded to the format, the transform exact (f64).
    Input,
    /// Model II: inputs and every stage's output array rounded to the format, arithmetic exact.
    Storage,
    /// Model III: every arithmetic operation rounded to the format, twiddles rounded too.
    Arithmetic,
    /// Model III with a factor 1/2 after every radix-2 stage (1/n overall), the standard remedy
    /// for overflow: stored values stay within max|v| (a level's sums reach 2 max|v| before
    /// it halves).
    ArithmeticScaled,
    /// Model G: the dense DFT as a matrix product (tensor-core GEMM): operands and the cos/sin
    /// table rounded to the format, products exact, sums accumulated in fp32; between the axes
    /// of a d-D grid the intermediate is rounded to the format again (src/fft/gemm.rs).
    Gemm,
}

impl Model {
    /// All models.
    pub const ALL: [Model; 5] = [
        Model::Input,
        Model::Storage,
        Model::Arithmetic,
        Model::ArithmeticScaled,
        Model::Gemm,
    ];
    /// The name used on the command line and in result files.
    pub const fn name(self) -> &'static str {
        match self {
            Model::Input => "input",
            Model::Storage => "storage",
            Model::Arithmetic => "arithmetic",
            Model::ArithmeticScaled => "arithmetic-scaled",
            Model::Gemm => "gemm",
        }
    }
    /// Comma-separated accepted names.
    pub fn allowed_names() -> String {
        Self::ALL.map(|m| m.name()).join(", ")
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Model {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "input" | "i" | "1" => Ok(Model::Input),
            "storage" | "ii" | "2" => Ok(Model::Storage),
            "arithmetic" | "iii" | "3" => Ok(Model::Arithmetic),
            "arithmetic-scaled" | "scaled" => Ok(Model::ArithmeticScaled),
            "gemm" | "g" => Ok(Model::Gemm),
            _ => Err(format!(
                "unknown model '{s}'; allowed: {}",
                Self::allowed_names()
            )),
        }
    }
}
