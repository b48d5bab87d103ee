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

impl Stabilizer {
    /// From a name and its parameter: none, tanh (no parameter); clip (c > 0, required);
    /// ksigma (k > 0, default 3); divide (c > 0, required).
    pub fn from_parts(name: &str, value: Option<f64>) -> Result<Stabilizer, String> {
        let positive = |what: &str, v: Option<f64>| match v {
            Some(v) if v > 0.0 && v.is_finite() => Ok(v),
            Some(v) => Err(format!("{name}: {what} must be > 0, got {v}")),
            None => Err(format!("{name} needs {what}")),
        };
        match name {
            "none" | "tanh" if value.is_some() => Err(format!("{name} takes no value")),
            "none" => Ok(Stabilizer::None),
            "tanh" => Ok(Stabilizer::Tanh),
            "clip" => positive("the bound c of [-c, c]", value).map(Stabilizer::Clip),
            "ksigma" => positive("k", value.or(Some(3.0))).map(Stabilizer::KSigma),
            "divide" => positive("the constant", value).map(Stabilizer::Divide),
            _ => Err(format!(
                "unknown stabilizer '{name}'; allowed: none, tanh, clip, ksigma, divide"
            )),
        }
    }

    /// From `none`, `tanh`, `clip:C`, `ksigma[:K]` or `divide:C` (the command-line form).
    pub fn parse(spec: &str) -> Result<Stabilizer, String> {
        let (name, value) = match spec.split_once(':') {
            Some((n, v)) => (
                n.trim(),
                Some(
                    v.trim()
                        .parse::<f64>()
                        .map_err(|_| format!("'{v}' is not a number"))?,
                ),
            ),
            None => (spec.trim(), None),
        };
        Self::from_parts(name, value)
            .map_err(|e| format!("{e} (forms: none, tanh, clip:C, ksigma:K, divide:C)"))
    }
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

#[cfg(test)]
mod stabilizer_tests {
    use super::Stabilizer;

    #[test]
    fn parses_every_form_and_rejects_bad_values() {
        assert_eq!(Stabilizer::parse("tanh"), Ok(Stabilizer::Tanh));
        assert_eq!(Stabilizer::parse("none"), Ok(Stabilizer::None));
        assert_eq!(Stabilizer::parse("clip:4"), Ok(Stabilizer::Clip(4.0)));
        assert_eq!(Stabilizer::parse("ksigma"), Ok(Stabilizer::KSigma(3.0)));
        assert_eq!(Stabilizer::parse("ksigma:2.5"), Ok(Stabilizer::KSigma(2.5)));
        assert_eq!(Stabilizer::parse("divide:16"), Ok(Stabilizer::Divide(16.0)));
        for (bad, says) in [
            ("clip", "clip needs"),
            ("clip:-1", "must be > 0"),
            ("divide:0", "must be > 0"),
            ("tanh:2", "takes no value"),
            ("clip:x", "'x' is not a number"),
            ("gelu", "unknown stabilizer 'gelu'"),
        ] {
            let e = Stabilizer::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
