//! Scaled low-precision formats: a tensor stored as fp8 values times a power-of-two scale.
//!
//! A [`ScaledFormat`] is an element format (E4M3 or E5M2) and a [`Scaling`] that splits a
//! row-major tensor into groups sharing one scale:
//! - [`Scaling::Tensor`]: one group (NVIDIA Transformer Engine's per-tensor scaling);
//! - [`Scaling::Channel`]: one group per index along an axis (per-channel scaling);
//! - [`Scaling::Block`]: blocks of k consecutive elements along the last axis, the OCP
//!   Microscaling (MX v1.0) layout (k = 32 in the spec), with an E8M0 scale.
//!
//! Every group g gets a dequantization scale S_g = 2^X_g and each value is stored as
//! P_i = fl(V_i / S_g) and read back as S_g P_i, fl the exact round-to-nearest-even of
//! [`round_with`] **with saturation** (a scaled value beyond the element format's largest finite
//! value becomes +-max_finite). Division and multiplication by a power of two are exact in f64,
//! so the only error is that of fl.
//!
//! The exponent X_g (clamped to the E8M0 range -127..=127, so every scale is an E8M0 value):
//! - MX ([`Scaling::Block`]): X = floor(log2(amax)) - emax_elem (OCP MX v1.0 §6.3), emax_elem the
//!   element format's largest exponent (E4M3: 8, E5M2: 15). amax / S then lies in
//!   [2^emax, 2^(emax+1)), which can exceed max_finite (448 for E4M3, 57344 for E5M2): the spec's
//!   conversion clamps such values to the largest element value, hence saturation.
//! - Tensor and channel (the Transformer Engine recipe scale = fmt_max / amax, times 2^-margin):
//!   we use the power-of-two version, X = the smallest integer with amax <= max_finite 2^X, plus
//!   `margin`. Rounding the scale down to a power of two (TE's `power_2_scale` option) costs at
//!   most one binade of headroom and makes scaling exact, so the error is fl's alone and the
//!   bound of docs/bounds.md ("Scaled formats") is clean; an exact f32 scale fmt_max / amax
//!   would add its own rounding of V_i * scale.
//!
//! amax is the group's max |V_i| (current scaling), or a value the caller supplies (delayed
//! scaling: the maximum of an amax history, as in Transformer Engine); a supplied amax below the
//! group's true maximum can saturate, which [`Quantized::saturated`] reports.
//!
//! Special cases: a group whose amax is 0 (all zeros) gets X = -127 and stays zero; a group
//! containing NaN or +-inf has no finite scale (E8M0's NaN code): every value of it reads back as
//! NaN and [`Quantized::nonfinite`] is set; a subnormal or tiny amax is clamped at X = -127, below
//! which the elements' own subnormals carry the values.

use super::format::{Format, Overflow, pow2};
use super::round::round_with;
use std::fmt;
use std::str::FromStr;

/// Smallest and largest exponent of an E8M0 scale (2^-127 ..= 2^127; code 0xFF is NaN).
pub const E8M0_MIN_EXP: i32 = -127;
/// Largest exponent of an E8M0 scale.
pub const E8M0_MAX_EXP: i32 = 127;

/// How a tensor is split into groups that share a scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scaling {
    /// One scale for the whole tensor, from its amax (power-of-two TE recipe).
    Tensor,
    /// One scale per index along `axis` (power-of-two TE recipe per channel).
    Channel { axis: usize },
    /// OCP MX: one E8M0 scale per block of `k` consecutive elements along the last axis (the last
    /// block of a row may be shorter), X = floor(log2 amax) - emax_elem.
    Block { k: usize },
}

/// An element format with a scaling: the "format" of scaled rows in the results files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScaledFormat {
    /// The element format: E4M3 or E5M2.
    pub elem: Format,
    pub scaling: Scaling,
    /// Transformer Engine's margin: the tensor/channel scale exponent is raised by `margin`
    /// (headroom of 2^margin against a growing amax). Ignored by MX blocks.
    pub margin: i32,
}

/// Why a scaled format was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScaledError {
    #[error(
        "format '{0}' cannot be scaled; scaled element formats: {allowed}",
        allowed = ScaledFormat::ELEMENTS.map(|f| f.name()).join(", ")
    )]
    NotScalable(String),
    #[error(
        "unknown scaling '{0}'; allowed: tensor, channel, channel:AXIS, mx (= mx32), mxK (block of K >= 1 values)"
    )]
    UnknownScaling(String),
    #[error("block size 0 in '{0}': an MX block holds K >= 1 values (mx32 is the OCP MX block)")]
    ZeroBlock(String),
    #[error("channel axis {axis} of a {dims}-D tensor")]
    Axis { axis: usize, dims: usize },
    #[error(
        "'{0}': a margin ~mN takes N = 0..={max} and applies to tensor or channel scaling (e.g. e4m3@tensor~m1); an MX block's scale follows the OCP rule",
        max = ScaledFormat::MAX_MARGIN
    )]
    Margin(String),
}

impl ScaledFormat {
    /// Largest margin `~mN` accepted by parsing (2^16 of headroom is far beyond any use).
    pub const MAX_MARGIN: i32 = 16;

    /// This format with Transformer Engine's margin m (tensor and channel scaling): the scale
    /// exponent raised by m, headroom 2^m against an amax that grows (delayed scaling).
    /// Refuses an MX block scaling or m outside 0..=[`Self::MAX_MARGIN`].
    pub fn with_margin(self, m: i32) -> Result<Self, ScaledError> {
        if (matches!(self.scaling, Scaling::Block { .. }) && m != 0)
            || !(0..=Self::MAX_MARGIN).contains(&m)
        {
            return Err(ScaledError::Margin(format!("{}~m{m}", self.name())));
        }
        Ok(Self { margin: m, ..self })
    }

    /// The element formats that can be scaled (fp8: the formats whose range needs it).
    /// E4M3 with saturation is the same element format here (scaled conversion saturates).
    pub const ELEMENTS: [Format; 2] = [Format::E4m3, Format::E5m2];

    /// A scaled format with margin 0; refuses a non-fp8 element format or a block size of 0.
    pub fn new(elem: Format, scaling: Scaling) -> Result<Self, ScaledError> {
        let elem = match elem {
            Format::E4m3 | Format::E4m3Sat => Format::E4m3,
            Format::E5m2 => Format::E5m2,
            f => return Err(ScaledError::NotScalable(f.name().to_string())),
        };
        if scaling == (Scaling::Block { k: 0 }) {
            return Err(ScaledError::ZeroBlock(format!("{}@mx0", elem.name())));
        }
        Ok(Self {
            elem,
            scaling,
            margin: 0,
        })
    }

    /// The canonical name: `e4m3@tensor`, `e4m3@channel` (axis 0) or `e4m3@channel:A`,
    /// `e4m3@mx32` (blocks of 32); a margin m > 0 as `~mM` (`e4m3@tensor~m1`).
    pub fn name(&self) -> String {
        let s = match self.scaling {
            Scaling::Tensor => "tensor".to_string(),
            Scaling::Channel { axis: 0 } => "channel".to_string(),
            Scaling::Channel { axis } => format!("channel:{axis}"),
            Scaling::Block { k } => format!("mx{k}"),
        };
        let m = if self.margin != 0 {
            format!("~m{}", self.margin)
        } else {
            String::new()
        };
        format!("{}@{s}{m}", self.elem.name())
    }

    /// Unit roundoff u of the element format.
    pub fn unit_roundoff(&self) -> f64 {
        self.elem.unit_roundoff()
    }

    /// The scale exponent X for a group with largest magnitude `amax` (finite, >= 0), clamped to
    /// the E8M0 range. See the module docs for the two recipes.
    pub fn scale_exponent(&self, amax: f64) -> i32 {
        if amax == 0.0 {
            return E8M0_MIN_EXP;
        }
        let e = floor_log2(amax);
        let x = match self.scaling {
            Scaling::Block { .. } => e - self.elem.emax(),
            Scaling::Tensor | Scaling::Channel { .. } => {
                // amax / 2^(e - emax) lies in [2^emax, 2^(emax+1)); one more binade if it is
                // above max_finite, then amax / 2^X <= max_finite with X smallest.
                let x = e - self.elem.emax();
                let x = if amax / pow2_wide(x) > self.elem.max_finite() {
                    x + 1
                } else {
                    x
                };
                x.saturating_add(self.margin)
            }
        };
        x.clamp(E8M0_MIN_EXP, E8M0_MAX_EXP)
    }

    /// The groups of a row-major tensor of `shape`: the group of each element and their count.
    pub fn groups(&self, shape: &[usize]) -> Result<(Vec<usize>, usize), ScaledError> {
        let n: usize = shape.iter().product();
        match self.scaling {
            Scaling::Tensor => Ok((vec![0; n], 1)),
            Scaling::Channel { axis } => {
                if axis >= shape.len() {
                    return Err(ScaledError::Axis {
                        axis,
                        dims: shape.len(),
                    });
                }
                let stride: usize = shape[axis + 1..].iter().product();
                let len = shape[axis];
                Ok(((0..n).map(|i| (i / stride) % len).collect(), len))
            }
            Scaling::Block { k } => {
                let last = shape.last().copied().unwrap_or(1).max(1);
                let per_row = last.div_ceil(k);
                let rows = n / last;
                Ok((
                    (0..n)
                        .map(|i| (i / last) * per_row + (i % last) / k)
                        .collect(),
                    rows * per_row,
                ))
            }
        }
    }
}

/// floor(log2 a) for finite a > 0, f64 subnormals included (exact, from the bits).
fn floor_log2(a: f64) -> i32 {
    let bits = a.to_bits();
    let e = ((bits >> 52) & 0x7ff) as i32;
    if e == 0 {
        // Subnormal: value = m 2^-1074 with m < 2^52.
        let m = bits & ((1u64 << 52) - 1);
        63 - m.leading_zeros() as i32 - 1074
    } else {
        e - 1023
    }
}

/// 2^k for any k, as f64 (0 or inf outside the f64 range): used only in comparisons.
fn pow2_wide(k: i32) -> f64 {
    if k > 1023 {
        f64::INFINITY
    } else if k < -1074 {
        0.0
    } else {
        pow2(k)
    }
}

/// A quantized tensor, read back in f64.
#[derive(Clone, Debug, PartialEq)]
pub struct Quantized {
    /// S_g fl(V_i / S_g) per element (NaN for the elements of a non-finite group).
    pub values: Vec<f64>,
    /// The scale exponent X_g of each group (S_g = 2^X_g); `None` for a group with NaN or inf.
    pub exponents: Vec<Option<i32>>,
    /// The group of each element.
    pub group: Vec<usize>,
    /// Some scaled value V_i / S_g exceeded max_finite (it was clipped to +-max_finite).
    pub saturated: bool,
    /// Some group held NaN or inf.
    pub nonfinite: bool,
}

impl Quantized {
    /// The dequantization scale S_g = 2^X_g of each group (NaN for a non-finite group).
    pub fn scales(&self) -> Vec<f64> {
        self.exponents
            .iter()
            .map(|x| x.map_or(f64::NAN, pow2))
            .collect()
    }
}

/// Quantize a row-major tensor of `shape` with scales from each group's current amax.
pub fn quantize(x: &[f64], shape: &[usize], sf: &ScaledFormat) -> Result<Quantized, ScaledError> {
    quantize_with_amax(x, shape, sf, None)
}

/// Quantize with scales from `amax` per group (delayed scaling: e.g. the maximum of an amax
/// history), or from the current amax when `None`. A NaN or inf in a group makes the group
/// non-finite whatever its supplied amax.
pub fn quantize_with_amax(
    x: &[f64],
    shape: &[usize],
    sf: &ScaledFormat,
    amax: Option<&[f64]>,
) -> Result<Quantized, ScaledError> {
    assert_eq!(
        x.len(),
        shape.iter().product::<usize>(),
        "quantize: shape does not match the data"
    );
    let (group, count) = sf.groups(shape)?;
    let mut current = vec![0.0f64; count];
    let mut bad = vec![false; count];
    for (&v, &g) in x.iter().zip(&group) {
        if v.is_finite() {
            current[g] = current[g].max(v.abs());
        } else {
            bad[g] = true;
        }
    }
    if let Some(a) = amax {
        assert_eq!(a.len(), count, "quantize: one amax per group");
    }
    let exponents: Vec<Option<i32>> = (0..count)
        .map(|g| {
            let a = amax.map_or(current[g], |a| a[g]);
            (!bad[g] && a.is_finite() && a >= 0.0).then(|| sf.scale_exponent(a))
        })
        .collect();
    let max = sf.elem.max_finite();
    let mut saturated = false;
    let values = x
        .iter()
        .zip(&group)
        .map(|(&v, &g)| match exponents[g] {
            None => f64::NAN,
            Some(xg) => {
                let s = pow2(xg);
                // V / 2^X is exact (no f64 overflow: |V| <= amax-ish and X >= -127 keeps it
                // below 2^1024 for |V| < 2^896; beyond that the quotient is inf and saturates).
                let scaled = v / s;
                saturated |= scaled.abs() > max;
                round_with(scaled, sf.elem, Overflow::Saturate) * s
            }
        })
        .collect();
    Ok(Quantized {
        values,
        nonfinite: exponents.iter().any(Option::is_none),
        exponents,
        group,
        saturated,
    })
}

impl fmt::Display for ScaledFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl FromStr for ScaledFormat {
    type Err = ScaledError;
    /// `ELEM@SCALING[~mN]`: ELEM e4m3 or e5m2; SCALING `tensor`, `channel` (axis 0),
    /// `channel:A`, `mx` (= mx32, the OCP block) or `mxK`; `~mN` a margin (tensor, channel).
    fn from_str(s: &str) -> Result<Self, ScaledError> {
        let t = s.trim().to_ascii_lowercase();
        if let Some((body, m)) = t.split_once('~') {
            let margin = m
                .strip_prefix('m')
                .and_then(|n| n.parse::<i32>().ok())
                .ok_or_else(|| ScaledError::Margin(s.trim().to_string()))?;
            return body.parse::<ScaledFormat>()?.with_margin(margin);
        }
        let (e, sc) = t
            .split_once('@')
            .ok_or_else(|| ScaledError::UnknownScaling(s.to_string()))?;
        let elem: Format = e
            .parse()
            .map_err(|_| ScaledError::NotScalable(e.to_string()))?;
        let scaling = match sc {
            "tensor" => Scaling::Tensor,
            "channel" => Scaling::Channel { axis: 0 },
            "mx" => Scaling::Block { k: 32 },
            _ => {
                if let Some(a) = sc.strip_prefix("channel:") {
                    Scaling::Channel {
                        axis: a
                            .parse()
                            .map_err(|_| ScaledError::UnknownScaling(sc.to_string()))?,
                    }
                } else if let Some(k) = sc.strip_prefix("mx") {
                    let k: usize = k
                        .parse()
                        .map_err(|_| ScaledError::UnknownScaling(sc.to_string()))?;
                    if k == 0 {
                        return Err(ScaledError::ZeroBlock(s.trim().to_string()));
                    }
                    Scaling::Block { k }
                } else {
                    return Err(ScaledError::UnknownScaling(sc.to_string()));
                }
            }
        };
        ScaledFormat::new(elem, scaling)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// Independent decoding of an OCP fp8 code (no use of Format or round): E4M3 bias 7, no inf,
    /// S.1111.111 NaN; E5M2 bias 15, exponent 31 inf/NaN. None for the non-finite codes.
    fn decode(code: u8, e4m3: bool) -> Option<f64> {
        let sign = if code & 0x80 != 0 { -1.0 } else { 1.0 };
        let (ebits, mbits, bias) = if e4m3 { (4, 3, 7) } else { (5, 2, 15) };
        let e = ((code >> mbits) & ((1 << ebits) - 1)) as i32;
        let m = (code & ((1 << mbits) - 1)) as f64;
        let frac = m / (1u32 << mbits) as f64;
        if e4m3 && e == 15 && m == 7.0 {
            return None;
        }
        if !e4m3 && e == 31 {
            return None;
        }
        let v = if e == 0 {
            frac * 2f64.powi(1 - bias)
        } else {
            (1.0 + frac) * 2f64.powi(e - bias)
        };
        Some(sign * v)
    }

    fn finite_codes(e4m3: bool) -> Vec<(u8, f64)> {
        (0..=255u8)
            .filter_map(|c| decode(c, e4m3).map(|v| (c, v)))
            .collect()
    }

    fn fmt_of(e4m3: bool) -> Format {
        if e4m3 { Format::E4m3 } else { Format::E5m2 }
    }

    const SCALINGS: [Scaling; 3] = [
        Scaling::Tensor,
        Scaling::Channel { axis: 0 },
        Scaling::Block { k: 32 },
    ];

    #[test]
    fn decoder_agrees_with_the_documented_constants() {
        // The oracle itself: E4M3 max 448, min subnormal 2^-9; E5M2 max 57344, min 2^-16.
        let max4 = finite_codes(true).iter().fold(0.0f64, |m, c| m.max(c.1));
        let max5 = finite_codes(false).iter().fold(0.0f64, |m, c| m.max(c.1));
        assert_eq!((max4, max5), (448.0, 57344.0));
        assert_eq!(decode(1, true), Some(2f64.powi(-9)));
        assert_eq!(decode(1, false), Some(2f64.powi(-16)));
        assert_eq!(finite_codes(true).len(), 254);
        assert_eq!(finite_codes(false).len(), 248);
    }

    /// Every finite code c times every scale 2^t (t in -20..=20), in a group whose amax is
    /// max_finite 2^t (so both recipes choose X = t): quantization returns c 2^t exactly.
    #[test]
    fn every_code_times_every_scale_is_exact() {
        for e4m3 in [true, false] {
            let elem = fmt_of(e4m3);
            let max = elem.max_finite();
            for scaling in SCALINGS {
                let sf = ScaledFormat::new(elem, scaling).unwrap();
                for t in -20..=20 {
                    let s = 2f64.powi(t);
                    let codes = finite_codes(e4m3);
                    // One row [c 2^t, max 2^t] per code: shape [codes, 2]; per-channel along
                    // axis 0 gives each row its own group, blocks of 32 along the last axis too.
                    let mut x = Vec::new();
                    for &(_, c) in &codes {
                        x.extend([c * s, max * s]);
                    }
                    let shape = [codes.len(), 2];
                    let q = quantize(&x, &shape, &sf).unwrap();
                    assert_eq!(q.values, x, "{} t = {t}", sf.name());
                    assert!(q.exponents.iter().all(|&e| e == Some(t)));
                    assert!(!q.saturated && !q.nonfinite);
                }
            }
        }
    }

    /// Brute-force nearest over every finite code times 2^t, ties to the even code: the
    /// saturating round-to-nearest-even of an independent definition.
    fn brute_nearest(v: f64, codes: &[(u8, f64)], s: f64) -> f64 {
        let mut best = (f64::INFINITY, 0u8, 0.0);
        for &(c, val) in codes {
            let d = (v - val * s).abs();
            if d < best.0 || (d == best.0 && c & 1 == 0 && best.1 & 1 == 1) {
                best = (d, c, val * s);
            }
        }
        // Signed zero: keep the input's sign (the codes hold both zeros, at distance equal).
        if best.2 == 0.0 {
            0.0f64.copysign(v)
        } else {
            best.2
        }
    }

    #[test]
    fn random_values_round_to_the_brute_force_nearest() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(23);
        for e4m3 in [true, false] {
            let elem = fmt_of(e4m3);
            let codes = finite_codes(e4m3);
            let max = elem.max_finite();
            for t in [-20, -7, 0, 3, 20] {
                let s = 2f64.powi(t);
                // Log-uniform magnitudes over the element range and past max (saturation),
                // plus exact midpoints of neighbouring codes (ties).
                let mut x = Vec::new();
                for _ in 0..3000 {
                    let e: f64 = rng.random_range(-18.0..17.0);
                    let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
                    x.push(sign * 2f64.powf(e) * s);
                }
                let mut pos: Vec<f64> = codes.iter().map(|c| c.1).filter(|&v| v >= 0.0).collect();
                pos.sort_by(f64::total_cmp);
                for w in pos.windows(2) {
                    x.push(0.5 * (w[0] + w[1]) * s);
                    x.push(-0.5 * (w[0] + w[1]) * s);
                }
                // Delayed amax max 2^t: the group's scale is 2^t whatever the values.
                for scaling in [Scaling::Tensor, Scaling::Block { k: 32 }] {
                    let sf = ScaledFormat::new(elem, scaling).unwrap();
                    let (_, groups) = sf.groups(&[x.len()]).unwrap();
                    let amax = vec![max * s; groups];
                    let q = quantize_with_amax(&x, &[x.len()], &sf, Some(&amax)).unwrap();
                    for (v, got) in x.iter().zip(&q.values) {
                        let want = brute_nearest(*v, &codes, s);
                        assert_eq!(got.to_bits(), want.to_bits(), "{} {v:e}", sf.name());
                    }
                    assert!(q.saturated, "values past max were generated");
                }
            }
        }
    }

    /// Worked examples of OCP MX v1.0 §6.3 (X = floor(log2 amax) - emax_elem, P_i = fl(V_i / 2^X)
    /// clamped to the element range), derived by hand.
    #[test]
    fn mx_blocks_worked_examples() {
        let mx4 = ScaledFormat::new(Format::E4m3, Scaling::Block { k: 32 }).unwrap();
        let mx5 = ScaledFormat::new(Format::E5m2, Scaling::Block { k: 32 }).unwrap();

        // E4M3, amax 5: floor(log2 5) = 2, X = 2 - 8 = -6. 5 * 64 = 320 = 1.25 2^8 (exact);
        // 0.3 * 64 = 19.2 lies in [16, 32) with spacing 2: 20, read back 20/64 = 0.3125;
        // 1 * 64 = 64 exact; -0.01 * 64 = -0.64 lies in [0.5, 1) spacing 1/16: -0.625 -> -0.625/64.
        let q = quantize(&[1.0, 0.3, -5.0, -0.01], &[4], &mx4).unwrap();
        assert_eq!(q.exponents, vec![Some(-6)]);
        assert_eq!(q.values, vec![1.0, 0.3125, -5.0, -0.625 / 64.0]);

        // E4M3, amax 500: floor(log2 500) = 8, X = 0; 500 > 448 = max: clamped to 448 (the
        // spec's amax lands in [256, 512) but E4M3 stops at 448). 300 is in [256, 512) with
        // spacing 32: 288 (300 - 288 = 12 < 20).
        let q = quantize(&[500.0, 300.0], &[2], &mx4).unwrap();
        assert_eq!(
            (q.exponents[0], q.values.clone()),
            (Some(0), vec![448.0, 288.0])
        );
        assert!(q.saturated);

        // E5M2, amax 1: X = 0 - 15 = -15. 0.1 * 2^15 = 3276.8 in [2048, 4096), spacing 512:
        // 6.4 spacings -> 6 -> 3072, read back 3072 / 2^15 = 0.09375.
        let q = quantize(&[1.0, 0.1], &[2], &mx5).unwrap();
        assert_eq!(q.exponents, vec![Some(-15)]);
        assert_eq!(q.values, vec![1.0, 0.09375]);

        // Two blocks along a row of 40: [0, 32) has amax 2 (X = 1 - 8 = -7), [32, 40) amax 0.5
        // (X = -1 - 8 = -9). 0.3 in the first block: 0.3 * 128 = 38.4 in [32, 64) spacing 4 ->
        // 40 -> 0.3125; in the second block 0.3 * 512 = 153.6 in [128, 256) spacing 16 -> 160
        // -> 0.3125 as well; 0.26 in the first: 33.28 -> 32 -> 0.25.
        let mut x = vec![0.0; 40];
        x[0] = 2.0;
        x[1] = 0.3;
        x[2] = 0.26;
        x[32] = 0.5;
        x[33] = 0.3;
        x[34] = 0.27; // 0.27 * 512 = 138.24 -> 144 -> 0.28125
        let q = quantize(&x, &[40], &mx4).unwrap();
        assert_eq!(q.exponents, vec![Some(-7), Some(-9)]);
        assert_eq!(&q.values[..3], &[2.0, 0.3125, 0.25]);
        assert_eq!(&q.values[32..35], &[0.5, 0.3125, 0.28125]);

        // Blocks run along the last axis only: shape [2, 3] with k = 2 gives per row the blocks
        // {0, 1}, {2}: groups 0 0 1 | 2 2 3.
        let sf = ScaledFormat::new(Format::E4m3, Scaling::Block { k: 2 }).unwrap();
        assert_eq!(sf.groups(&[2, 3]).unwrap(), (vec![0, 0, 1, 2, 2, 3], 4));
    }

    #[test]
    fn zero_nonfinite_and_tiny_groups() {
        let mx4 = ScaledFormat::new(Format::E4m3, Scaling::Block { k: 2 }).unwrap();
        // Zero block: X = -127 (E8M0 minimum), values stay (signed) zero.
        let q = quantize(&[0.0, -0.0, 1.0, 2.0], &[4], &mx4).unwrap();
        assert_eq!(q.exponents[0], Some(-127));
        assert_eq!(q.values[0].to_bits(), 0.0f64.to_bits());
        assert_eq!(q.values[1].to_bits(), (-0.0f64).to_bits());
        // NaN or inf poisons its own block only.
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let q = quantize(&[bad, 1.0, 1.0, 2.0], &[4], &mx4).unwrap();
            assert!(q.nonfinite && q.exponents[0].is_none());
            assert!(q.values[0].is_nan() && q.values[1].is_nan());
            assert_eq!(&q.values[2..], &[1.0, 2.0]);
        }
        // Tiny and f64-subnormal amax: X clamped at -127; 2^-200 2^127 = 2^-73 is far below
        // E4M3's smallest subnormal 2^-9 and becomes 0; 2^-133 * 2^127 = 2^-6 stays exact
        // (E4M3 min normal) and 2^-136 2^127 = 2^-9 (min subnormal) too.
        for sf in [
            mx4,
            ScaledFormat::new(Format::E4m3, Scaling::Tensor).unwrap(),
        ] {
            let q = quantize(&[2f64.powi(-200), 1e-310], &[2], &sf).unwrap();
            assert_eq!(q.exponents, vec![Some(-127)]);
            assert_eq!(q.values, vec![0.0, 0.0]);
            let q = quantize(&[2f64.powi(-133), 2f64.powi(-136)], &[2], &sf).unwrap();
            assert_eq!(q.values, vec![2f64.powi(-133), 2f64.powi(-136)]);
        }
        // Huge amax: X clamped at 127; 2^200 / 2^127 = 2^73 saturates to 448 2^127.
        let q = quantize(&[2f64.powi(200), 1.0], &[2], &mx4).unwrap();
        assert_eq!(q.exponents, vec![Some(127)]);
        assert_eq!(q.values[0], 448.0 * 2f64.powi(127));
        assert!(q.saturated);
        // floor_log2 on subnormals and normals.
        for a in [1e-310, 5e-324, 2.2e-308, 1.0, 3.0, 1e300] {
            let e = floor_log2(a);
            assert!(pow2_wide(e) <= a && a < 2.0 * pow2_wide(e), "{a:e} -> {e}");
        }
    }

    #[test]
    fn tensor_and_channel_recipe() {
        let te = ScaledFormat::new(Format::E4m3, Scaling::Tensor).unwrap();
        // amax 1000: floor(log2) = 9, X = 1 gives 500 > 448, so X = 2 (1000 / 4 = 250 <= 448):
        // the smallest power of two with amax <= 448 2^X, i.e. 2^floor(log2(448 / amax)) as
        // the TE multiplier.
        assert_eq!(te.scale_exponent(1000.0), 2);
        assert_eq!(te.scale_exponent(448.0), 0);
        assert_eq!(te.scale_exponent(449.0), 1);
        assert_eq!(te.scale_exponent(224.0), -1);
        let margin = ScaledFormat { margin: 1, ..te };
        assert_eq!(margin.scale_exponent(1000.0), 3);
        assert_eq!(margin.name(), "e4m3@tensor~m1");
        assert_eq!("e4m3@tensor~m1".parse::<ScaledFormat>(), Ok(margin));
        assert_eq!("e4m3@tensor~m0".parse::<ScaledFormat>(), Ok(te));
        for bad in [
            "e4m3@mx32~m1",
            "e4m3@tensor~m17",
            "e4m3@tensor~m-1",
            "e4m3@tensor~x",
        ] {
            assert!(
                matches!(bad.parse::<ScaledFormat>(), Err(ScaledError::Margin(_))),
                "{bad}"
            );
        }
        // Current scaling never saturates; delayed amax 100 (X = -2: 100 * 4 = 400 <= 448) with a
        // current value 1000 saturates: 1000 * 4 -> 448, read back 112.
        let q = quantize(&[1000.0, -3.0], &[2], &te).unwrap();
        assert!(!q.saturated);
        let q = quantize_with_amax(&[1000.0, -3.0], &[2], &te, Some(&[100.0])).unwrap();
        assert_eq!(q.exponents, vec![Some(-2)]);
        assert_eq!(q.values, vec![112.0, -3.0]);
        assert!(q.saturated);
        // Per channel: shape [2, 3]; axis 0 groups rows, axis 1 columns.
        let ch0 = ScaledFormat::new(Format::E5m2, Scaling::Channel { axis: 0 }).unwrap();
        let ch1 = ScaledFormat::new(Format::E5m2, Scaling::Channel { axis: 1 }).unwrap();
        assert_eq!(ch0.groups(&[2, 3]).unwrap(), (vec![0, 0, 0, 1, 1, 1], 2));
        assert_eq!(ch1.groups(&[2, 3]).unwrap(), (vec![0, 1, 2, 0, 1, 2], 3));
        assert!(matches!(
            ch1.groups(&[4]),
            Err(ScaledError::Axis { axis: 1, dims: 1 })
        ));
        // E5M2 per row: amax 1e6 -> floor(log2) = 19, X = 4: 1e6 / 16 = 62500 > 57344 -> X = 5.
        let q = quantize(&[1e6, 1.0, 2.0, 1e-3, 0.0, 0.0], &[2, 3], &ch0).unwrap();
        assert_eq!(q.exponents, vec![Some(5), Some(-25)]);
    }

    #[test]
    fn names_parse_and_refuse() {
        for s in [
            "e4m3@tensor",
            "e5m2@channel",
            "e4m3@channel:2",
            "e4m3@mx32",
            "e5m2@mx7",
        ] {
            let sf: ScaledFormat = s.parse().unwrap();
            assert_eq!(sf.name(), s);
        }
        assert_eq!(
            "E4M3@MX".parse::<ScaledFormat>().unwrap().name(),
            "e4m3@mx32"
        );
        assert_eq!(
            "e4m3sat@tensor".parse::<ScaledFormat>().unwrap().name(),
            "e4m3@tensor"
        );
        assert!(matches!(
            "fp32@tensor".parse::<ScaledFormat>(),
            Err(ScaledError::NotScalable(_))
        ));
        assert!(matches!(
            "e4m3@mx0".parse::<ScaledFormat>(),
            Err(ScaledError::ZeroBlock(_))
        ));
        assert!(matches!(
            "e4m3@row".parse::<ScaledFormat>(),
            Err(ScaledError::UnknownScaling(_))
        ));
        assert!(matches!(
            "e4m3@mxa".parse::<ScaledFormat>(),
            Err(ScaledError::UnknownScaling(_))
        ));
        assert!(ScaledFormat::new(Format::E5m2, Scaling::Block { k: 0 }).is_err());
    }
}
