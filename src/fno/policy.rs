//! Precision policies: the format of each stage of a spectral block and of the dense layers, and
//! the stabilizer applied before the forward FFT.

use crate::precision::Format;
use std::fmt;

/// Applied to the spectral-convolution input before each forward FFT (not on the skip paths), so
/// that the unnormalised transform stays within the format's range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stabilizer {
    None,
    /// tanh(x) (the paper's choice): |x| < 1, so |FFT| <= n.
    Tanh,
    /// Clamp to [-c, c].
    Clip(f64),
    /// Clamp to mean +- k standard deviations of the block input (per forward pass).
    KSigma(f64),
    /// x / c.
    Divide(f64),
}

impl fmt::Display for Stabilizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stabilizer::None => write!(f, "none"),
            Stabilizer::Tanh => write!(f, "tanh"),
            Stabilizer::Clip(c) => write!(f, "clip({c})"),
            Stabilizer::KSigma(k) => write!(f, "ksigma({k})"),
            Stabilizer::Divide(c) => write!(f, "divide({c})"),
        }
    }
}

/// Formats of the stages of every FNO block and of the dense layers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Policy {
    /// Forward FFT (inputs rounded, arithmetic emulated in this format).
    pub fwd_fft: Format,
    /// Spectral contraction: operands and result in this format, fp32 accumulation.
    pub contraction: Format,
    /// Inverse FFT.
    pub inv_fft: Format,
    /// Lifting, projection, skips and channel MLPs (AMP-like: operands rounded, fp32 accumulation).
    pub mlp: Format,
    pub stabilizer: Stabilizer,
}

impl Policy {
    /// Everything in fp32 (f64 when the backend scalar is f64), no stabilizer.
    pub fn full() -> Self {
        Policy {
            fwd_fft: Format::Fp32,
            contraction: Format::Fp32,
            inv_fft: Format::Fp32,
            mlp: Format::Fp32,
            stabilizer: Stabilizer::None,
        }
    }

    /// Everything in f64: the gradient-check policy.
    pub fn exact() -> Self {
        Policy {
            fwd_fft: Format::Fp64,
            contraction: Format::Fp64,
            inv_fft: Format::Fp64,
            mlp: Format::Fp64,
            stabilizer: Stabilizer::None,
        }
    }

    /// The spectral block in `fmt` (forward FFT, contraction, inverse FFT), the rest fp32.
    pub fn half_block(fmt: Format, stabilizer: Stabilizer) -> Self {
        Policy {
            fwd_fft: fmt,
            contraction: fmt,
            inv_fft: fmt,
            mlp: Format::Fp32,
            stabilizer,
        }
    }

    /// One of the paper's eight combinations, written as three letters for (forward FFT,
    /// contraction, inverse FFT): F = fp32, H = `half`; e.g. "FHH" is the paper's "mixed".
    pub fn from_letters(code: &str, half: Format, stabilizer: Stabilizer) -> Result<Self, String> {
        let f: Vec<Format> = code
            .chars()
            .map(|c| match c {
                'F' | 'f' => Ok(Format::Fp32),
                'H' | 'h' => Ok(half),
                _ => Err(format!(
                    "policy code '{code}': letters must be F (fp32) or H (half), got '{c}'"
                )),
            })
            .collect::<Result<_, _>>()?;
        if f.len() != 3 {
            return Err(format!(
                "policy code '{code}' must have three letters (forward FFT, contraction, inverse FFT)"
            ));
        }
        Ok(Policy {
            fwd_fft: f[0],
            contraction: f[1],
            inv_fft: f[2],
            mlp: Format::Fp32,
            stabilizer,
        })
    }

    /// Whether any stage runs below fp32 (overflow checks are on then).
    pub fn is_low(&self) -> bool {
        [self.fwd_fft, self.contraction, self.inv_fft, self.mlp]
            .iter()
            .any(|f| *f > Format::Fp32)
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "fft {}/contract {}/ifft {}/mlp {}/stabilizer {}",
            self.fwd_fft.name(),
            self.contraction.name(),
            self.inv_fft.name(),
            self.mlp.name(),
            self.stabilizer
        )
    }
}
