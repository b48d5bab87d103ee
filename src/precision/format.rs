//! Floating-point formats and their constants.
//!
//! Every format is a binary format with `p` significand bits (hidden bit included), minimum normal
//! exponent `emin` and a largest finite value `max`. Its unit roundoff (round to nearest) is
//! `u = 2^-p`, its smallest normal `2^emin` and its smallest subnormal `2^(emin - p + 1)`.
//! fp8 formats follow the OCP 8-bit floating point specification (E5M2 is IEEE-like with inf;
//! E4M3 has no inf, one NaN pattern per sign, and max 448).

use std::fmt;
use std::str::FromStr;

/// What rounding does with a value whose rounded magnitude exceeds the largest finite value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Overflow {
    /// IEEE behaviour: the result is +-inf.
    Inf,
    /// The result is +-max (NVIDIA's `satfinite`, and the `float8` crate's conversions).
    Saturate,
    /// The result is NaN (OCP E4M3 non-saturating conversion: the format has no inf).
    Nan,
}

/// A floating-point format that values can be rounded to and arithmetic emulated in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    /// IEEE binary64 (the reference: "exact" for every measurement in mpno).
    Fp64,
    /// IEEE binary32.
    Fp32,
    /// NVIDIA TensorFloat-32: fp32 range with a 10-bit stored mantissa (p = 11).
    Tf32,
    /// bfloat16: fp32 range with a 7-bit stored mantissa (p = 8).
    Bf16,
    /// IEEE binary16.
    Fp16,
    /// OCP fp8 E5M2 (p = 3, fp16 range, has inf), overflow to inf.
    E5m2,
    /// OCP fp8 E4M3 (p = 4, max 448, no inf), overflow to NaN.
    E4m3,
    /// OCP fp8 E4M3 with saturating conversion (overflow to +-448).
    E4m3Sat,
}

impl Format {
    /// All formats, widest first.
    pub const ALL: [Format; 8] = [
        Format::Fp64,
        Format::Fp32,
        Format::Tf32,
        Format::Bf16,
        Format::Fp16,
        Format::E5m2,
        Format::E4m3,
        Format::E4m3Sat,
    ];

    /// The canonical lower-case name used on the command line and in result files.
    pub const fn name(self) -> &'static str {
        match self {
            Format::Fp64 => "fp64",
            Format::Fp32 => "fp32",
            Format::Tf32 => "tf32",
            Format::Bf16 => "bf16",
            Format::Fp16 => "fp16",
            Format::E5m2 => "e5m2",
            Format::E4m3 => "e4m3",
            Format::E4m3Sat => "e4m3sat",
        }
    }

    /// Comma-separated list of the accepted names, for error messages.
    pub fn allowed_names() -> String {
        Self::ALL.map(|f| f.name()).join(", ")
    }

    /// Significand bits p, the hidden bit included.
    pub const fn precision(self) -> u32 {
        match self {
            Format::Fp64 => 53,
            Format::Fp32 => 24,
            Format::Tf32 | Format::Fp16 => 11,
            Format::Bf16 => 8,
            Format::E5m2 => 3,
            Format::E4m3 | Format::E4m3Sat => 4,
        }
    }

    /// Minimum normal exponent: the smallest normal number is 2^emin.
    pub const fn emin(self) -> i32 {
        match self {
            Format::Fp64 => -1022,
            Format::Fp32 | Format::Tf32 | Format::Bf16 => -126,
            Format::Fp16 | Format::E5m2 => -14,
            Format::E4m3 | Format::E4m3Sat => -6,
        }
    }

    /// Maximum exponent of a finite number.
    pub const fn emax(self) -> i32 {
        match self {
            Format::Fp64 => 1023,
            Format::Fp32 | Format::Tf32 | Format::Bf16 => 127,
            Format::Fp16 | Format::E5m2 => 15,
            Format::E4m3 | Format::E4m3Sat => 8,
        }
    }

    /// Unit roundoff u = 2^-p: |fl(x) - x| <= u |x| for x in the normal range.
    pub fn unit_roundoff(self) -> f64 {
        pow2(-(self.precision() as i32))
    }

    /// Machine epsilon 2^(1-p), the gap between 1 and the next larger number.
    pub fn epsilon(self) -> f64 {
        2.0 * self.unit_roundoff()
    }

    /// Largest finite value: (2 - 2^(1-p)) 2^emax, except E4M3 whose all-ones pattern is NaN,
    /// so its largest value is 1.75 * 2^8 = 448.
    pub fn max_finite(self) -> f64 {
        match self {
            Format::Fp64 => f64::MAX,
            Format::E4m3 | Format::E4m3Sat => 448.0,
            f => (2.0 - f.epsilon()) * pow2(f.emax()),
        }
    }

    /// Smallest positive normal number 2^emin.
    pub fn min_normal(self) -> f64 {
        pow2(self.emin())
    }

    /// Smallest positive subnormal number 2^(emin - p + 1).
    pub fn min_subnormal(self) -> f64 {
        pow2(self.emin() - self.precision() as i32 + 1)
    }

    /// Whether the format has infinities (E4M3 has none).
    pub const fn has_inf(self) -> bool {
        !matches!(self, Format::E4m3 | Format::E4m3Sat)
    }

    /// The default overflow behaviour of this format's round-to-nearest conversion.
    pub const fn overflow(self) -> Overflow {
        match self {
            Format::E4m3 => Overflow::Nan,
            Format::E4m3Sat => Overflow::Saturate,
            _ => Overflow::Inf,
        }
    }

    /// Storage width in bits.
    pub const fn bits(self) -> u32 {
        match self {
            Format::Fp64 => 64,
            Format::Fp32 | Format::Tf32 => 32,
            Format::Bf16 | Format::Fp16 => 16,
            Format::E5m2 | Format::E4m3 | Format::E4m3Sat => 8,
        }
    }
}

/// 2^k as an f64, exact for -1074 <= k <= 1023.
pub fn pow2(k: i32) -> f64 {
    if k >= -1022 {
        f64::from_bits(((k + 1023) as u64) << 52)
    } else {
        f64::from_bits(1u64 << (k + 1074))
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error for an unknown format name; it lists the accepted names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format '{0}'; allowed: {allowed}", allowed = Format::allowed_names())]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        let f = match t.as_str() {
            "fp64" | "f64" | "double" => Format::Fp64,
            "fp32" | "f32" | "single" => Format::Fp32,
            "tf32" => Format::Tf32,
            "bf16" | "bfloat16" => Format::Bf16,
            "fp16" | "f16" | "half" => Format::Fp16,
            "e5m2" | "fp8e5m2" | "fp8-e5m2" => Format::E5m2,
            "e4m3" | "fp8e4m3" | "fp8-e4m3" => Format::E4m3,
            "e4m3sat" | "e4m3-sat" | "e4m3fn-sat" => Format::E4m3Sat,
            _ => return Err(UnknownFormat(s.to_string())),
        };
        Ok(f)
    }
}
