//! Precision policies: the format of each stage of a spectral block and of the dense layers, and
//! the stabilizer applied before the forward FFT.
//!
//! A spectral stage (forward FFT, contraction, inverse FFT) takes a [`Stage`]: a plain format
//! (`fp16`, `e4m3`: the stage's operands and results rounded to it, FFT arithmetic emulated in
//! it), a scaled fp8 format (`e4m3@tensor`, `e4m3@channel`, `e4m3@mx32`, `e5m2@...`: operands
//! and results stored as fp8 values times power-of-two scales from the current amax, arithmetic
//! in fp32), either with the suffix `~sr` for stochastic rounding (see [`super::quant`]).

use crate::precision::{Format, ScaledError, ScaledFormat, Scaling};
use std::fmt;
use std::str::FromStr;

/// The format of one spectral stage: a format, optionally scaled, rounded to nearest or
/// stochastically.
///
/// - plain, nearest (`fp16`, `e4m3`, ...): the stage's inputs are rounded to `format` (nearest
///   even, the format's overflow rule), its FFT arithmetic is emulated in it (model III), the
///   contraction accumulates in fp32, results are stored in it. This is the historical policy.
/// - scaled (`e4m3@tensor`, `e5m2@channel`, `e4m3@mx32`, `e4m3@mxK`): every tensor the stage
///   reads or writes is quantized to fp8 values times power-of-two scales (per tensor; per
///   channel, the tensors' axis 1; or per block of K values along the last axis, OCP MX) chosen
///   from the tensor's current amax ([`crate::precision::quantize`]), with saturation; the
///   arithmetic between (FFT, contraction accumulation) runs in fp32 on the dequantized values.
/// - `~sr` (stochastic rounding): the rounding of those quantizations (scaled), or of the stage's
///   inputs and contraction results (plain; the emulated FFT arithmetic stays round-to-nearest),
///   is stochastic, seeded per pass ([`Policy::seed`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Stage {
    /// The format (for a scaled stage, the element format: E4M3 or E5M2).
    pub format: Format,
    /// Groups sharing a scale; `None`: unscaled. `Channel` is always axis 1 (the channel axis
    /// of (batch, channel, grid...) activations and the output channel of (in, out, modes...)
    /// spectral weights).
    pub scaling: Option<Scaling>,
    /// Stochastic instead of round-to-nearest-even.
    pub stochastic: bool,
    /// Delayed scaling (tensor and channel scalings): the scales come from the maximum amax of
    /// the last `history` quantizations at the same place of the model, not from the current
    /// tensor (`~dN`, Transformer Engine's amax history); 0: the current amax.
    pub history: u16,
    /// Transformer Engine's margin (tensor and channel scalings, `~mN`): the scale exponent
    /// raised by N, 2^N of headroom against an amax that outgrows the (delayed) scale; 0: none.
    pub margin: u8,
}

/// The accepted forms of a stage format, for error messages.
pub const STAGE_FORMS: &str = "a format (fp64, fp32, tf32, bf16, fp16, e5m2, e4m3, e4m3sat), \
     or a scaled fp8 format ELEM@SCALING with ELEM e4m3 or e5m2 and SCALING tensor, channel, \
     mx (= mx32) or mxK; either may end in ~sr (stochastic rounding, formats below fp32), and \
     a tensor or channel scaling in ~dN (delayed scaling from the amax history of the last N \
     steps, 1 <= N <= 1024) and ~mN (Transformer Engine's margin: scales 2^N larger, \
     1 <= N <= 16)";

impl Stage {
    /// An unscaled, round-to-nearest stage (the historical policy).
    pub const fn plain(format: Format) -> Self {
        Stage {
            format,
            scaling: None,
            stochastic: false,
            history: 0,
            margin: 0,
        }
    }

    /// Unscaled and round-to-nearest: the backends' own rounding does everything.
    pub fn is_plain(&self) -> bool {
        self.scaling.is_none() && !self.stochastic
    }

    /// Whether the stage runs below fp32 (overflow checks are on then).
    pub fn is_low(&self) -> bool {
        self.format > Format::Fp32 || !self.is_plain()
    }

    /// The scaled format of a scaled stage (channel scaling on axis 1).
    pub fn scaled_format(&self) -> Option<ScaledFormat> {
        let scaling = match self.scaling? {
            Scaling::Channel { .. } => Scaling::Channel { axis: 1 },
            s => s,
        };
        Some(
            ScaledFormat::new(self.format, scaling)
                .and_then(|sf| sf.with_margin(self.margin as i32))
                .expect("validated scaled stage"),
        )
    }

    /// This stage with round-to-nearest and, if delayed, scales from the current amax (what
    /// evaluation uses: it reads tensors the training steps never saw, at other resolutions,
    /// and must leave the training's amax histories alone).
    pub fn nearest(self) -> Self {
        Stage {
            stochastic: false,
            history: 0,
            ..self
        }
    }

    /// The name: `fp16`, `e4m3@tensor`, `e5m2@mx32~sr`, ...
    pub fn name(&self) -> String {
        let mut s = self.format.name().to_string();
        match self.scaling {
            None => {}
            Some(Scaling::Tensor) => s.push_str("@tensor"),
            Some(Scaling::Channel { .. }) => s.push_str("@channel"),
            Some(Scaling::Block { k }) => s.push_str(&format!("@mx{k}")),
        }
        if self.margin > 0 {
            s.push_str(&format!("~m{}", self.margin));
        }
        if self.history > 0 {
            s.push_str(&format!("~d{}", self.history));
        }
        if self.stochastic {
            s.push_str("~sr");
        }
        s
    }
}

impl From<Format> for Stage {
    fn from(f: Format) -> Self {
        Stage::plain(f)
    }
}

/// A stage equals a format when it is that format, unscaled, rounded to nearest.
impl PartialEq<Format> for Stage {
    fn eq(&self, f: &Format) -> bool {
        self.is_plain() && self.format == *f
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl FromStr for Stage {
    type Err = String;
    /// `FORMAT`, `ELEM@SCALING`, either with `~sr`; see [`STAGE_FORMS`].
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim().to_ascii_lowercase();
        let mut parts = t.split('~');
        let body = parts.next().unwrap_or_default();
        let (mut stochastic, mut history, mut margin) = (false, 0u16, 0u8);
        for r in parts {
            if let Some(m) = r.strip_prefix('m')
                && margin == 0
            {
                margin = match m.parse::<u8>() {
                    Ok(n @ 1..=16) => n,
                    _ => {
                        return Err(format!(
                            "'{s}': a margin '~{r}' takes 1 to 16 (Transformer Engine's margin: \
                             scales 2^N larger, e.g. e4m3@tensor~m1~d16)"
                        ));
                    }
                };
                continue;
            }
            let n = r.strip_prefix('d').map(str::parse::<u16>);
            match (r, n) {
                ("sr", _) if !stochastic => stochastic = true,
                (_, Some(Ok(n @ 1..=1024))) if history == 0 => history = n,
                (_, Some(_)) if history == 0 => {
                    return Err(format!(
                        "'{s}': delayed scaling '~{r}' needs a history of 1 to 1024 steps \
                         (e.g. ~d16)"
                    ));
                }
                _ => {
                    return Err(format!(
                        "'{s}': unknown or repeated suffix '~{r}'; allowed: ~sr (stochastic \
                         rounding), ~dN (delayed scaling, N = 1..1024) and ~mN (margin, \
                         N = 1..16), each at most once"
                    ));
                }
            }
        }
        let stage = match body.split_once('@') {
            None => Stage {
                format: body
                    .parse::<Format>()
                    .map_err(|_| format!("unknown format '{s}'; allowed: {STAGE_FORMS}"))?,
                scaling: None,
                stochastic,
                history,
                margin,
            },
            Some((_, sc)) if sc.starts_with("channel:") => {
                return Err(format!(
                    "'{s}': a policy's channel scaling is per channel of the FNO's tensors \
                     (axis 1) and takes no axis; allowed scalings: tensor, channel, mx, mxK"
                ));
            }
            Some(_) => {
                let sf: ScaledFormat = body.parse().map_err(|e| match e {
                    ScaledError::UnknownScaling(sc) => format!(
                        "'{s}': unknown scaling '{sc}'; allowed: tensor, channel, mx (= mx32, \
                         the OCP MX block), mxK (blocks of K >= 1 values)"
                    ),
                    e => format!("'{s}': {e}"),
                })?;
                Stage {
                    format: sf.elem,
                    scaling: Some(sf.scaling),
                    stochastic,
                    history,
                    margin,
                }
            }
        };
        let tensor_or_channel = matches!(
            stage.scaling,
            Some(Scaling::Tensor | Scaling::Channel { .. })
        );
        if margin > 0 && !tensor_or_channel {
            return Err(format!(
                "'{s}': a margin (~mN) applies to a tensor or channel scaling \
                 (e.g. e4m3@tensor~m1); an MX block's scale follows the OCP rule"
            ));
        }
        if history > 0 && !tensor_or_channel {
            return Err(format!(
                "'{s}': delayed scaling (~dN) applies to a tensor or channel scaling \
                 (e.g. e4m3@tensor~d16); an MX block's scale is always its current amax"
            ));
        }
        if stochastic && stage.scaling.is_none() && stage.format <= Format::Fp32 {
            return Err(format!(
                "'{s}': stochastic rounding (~sr) needs a format below fp32 (tf32, bf16, fp16, \
                 e5m2, e4m3, e4m3sat) or a scaled fp8 format"
            ));
        }
        Ok(stage)
    }
}

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
    /// Forward FFT (inputs rounded, arithmetic emulated in this format; see [`Stage`]).
    pub fwd_fft: Stage,
    /// Spectral contraction: operands and result in this format, fp32 accumulation.
    pub contraction: Stage,
    /// Inverse FFT.
    pub inv_fft: Stage,
    /// Lifting, projection, skips and channel MLPs (AMP-like: operands rounded, fp32 accumulation).
    pub mlp: Format,
    pub stabilizer: Stabilizer,
    /// Seed of this pass's stochastic rounding (stages with `~sr`): the trainer sets it from
    /// `train.seed` and the step, so one seed gives the same bytes. Unused without `~sr`.
    pub seed: u64,
}

impl Policy {
    /// Everything in fp32 (f64 when the backend scalar is f64), no stabilizer.
    pub fn full() -> Self {
        Policy {
            fwd_fft: Stage::plain(Format::Fp32),
            contraction: Stage::plain(Format::Fp32),
            inv_fft: Stage::plain(Format::Fp32),
            mlp: Format::Fp32,
            stabilizer: Stabilizer::None,
            seed: 0,
        }
    }

    /// Everything in f64: the gradient-check policy.
    pub fn exact() -> Self {
        Policy {
            fwd_fft: Stage::plain(Format::Fp64),
            contraction: Stage::plain(Format::Fp64),
            inv_fft: Stage::plain(Format::Fp64),
            mlp: Format::Fp64,
            stabilizer: Stabilizer::None,
            seed: 0,
        }
    }

    /// The spectral block in `fmt` (forward FFT, contraction, inverse FFT), the rest fp32.
    pub fn half_block(fmt: impl Into<Stage>, stabilizer: Stabilizer) -> Self {
        let fmt = fmt.into();
        Policy {
            fwd_fft: fmt,
            contraction: fmt,
            inv_fft: fmt,
            mlp: Format::Fp32,
            stabilizer,
            seed: 0,
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
            fwd_fft: f[0].into(),
            contraction: f[1].into(),
            inv_fft: f[2].into(),
            mlp: Format::Fp32,
            stabilizer,
            seed: 0,
        })
    }

    /// Whether any stage runs below fp32 (overflow checks are on then).
    pub fn is_low(&self) -> bool {
        self.stages().iter().any(Stage::is_low) || self.mlp > Format::Fp32
    }

    /// The three spectral stages: forward FFT, contraction, inverse FFT.
    pub fn stages(&self) -> [Stage; 3] {
        [self.fwd_fft, self.contraction, self.inv_fft]
    }

    /// Whether a stage rounds stochastically.
    pub fn is_stochastic(&self) -> bool {
        self.stages().iter().any(|s| s.stochastic)
    }

    /// This policy with every stage rounded to nearest: evaluation's policy (stochastic
    /// rounding is for training; a model is evaluated deterministically).
    pub fn nearest(&self) -> Self {
        Policy {
            fwd_fft: self.fwd_fft.nearest(),
            contraction: self.contraction.nearest(),
            inv_fft: self.inv_fft.nearest(),
            ..*self
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "fft {}/contract {}/ifft {}/mlp {}/stabilizer {}",
            self.fwd_fft,
            self.contraction,
            self.inv_fft,
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

#[cfg(test)]
mod stage_tests {
    use super::{Format, Policy, Stabilizer, Stage};
    use crate::precision::Scaling;

    #[test]
    fn stage_names_round_trip() {
        for s in [
            "fp32",
            "fp16",
            "e4m3",
            "e4m3sat",
            "e4m3@tensor",
            "e4m3@channel",
            "e4m3@mx32",
            "e5m2@mx7",
            "e5m2@tensor~sr",
            "fp16~sr",
            "e4m3@mx32~sr",
            "e4m3@tensor~d16",
            "e5m2@channel~d1~sr",
            "e4m3@tensor~m2~d16",
            "e5m2@channel~m1~sr",
        ] {
            let st: Stage = s.parse().unwrap();
            assert_eq!(st.name(), s);
            assert_eq!(st.to_string().parse::<Stage>(), Ok(st));
        }
        let st: Stage = " E4M3@MX~SR ".parse().unwrap();
        assert_eq!(
            st,
            Stage {
                format: Format::E4m3,
                scaling: Some(Scaling::Block { k: 32 }),
                stochastic: true,
                history: 0,
                margin: 0,
            }
        );
        // The suffixes in either order.
        let d: Stage = "e4m3@tensor~sr~d8".parse().unwrap();
        assert_eq!(
            (d.stochastic, d.history, d.name().as_str()),
            (true, 8, "e4m3@tensor~d8~sr")
        );
        // The saturating element is the same element format once scaled.
        assert_eq!(
            "e4m3sat@tensor".parse::<Stage>().unwrap().name(),
            "e4m3@tensor"
        );
        // Channel scaling runs along axis 1 of the FNO's tensors.
        let ch: Stage = "e5m2@channel".parse().unwrap();
        assert_eq!(
            ch.scaled_format().unwrap().scaling,
            Scaling::Channel { axis: 1 }
        );
        // A plain nearest stage is its format; a scaled or stochastic one is not.
        assert_eq!(Stage::plain(Format::Fp16), Format::Fp16);
        assert_ne!("fp16~sr".parse::<Stage>().unwrap(), Format::Fp16);
        assert_ne!("e4m3@tensor".parse::<Stage>().unwrap(), Format::E4m3);
        assert!(!Stage::plain(Format::Fp32).is_low());
        assert!("e4m3@tensor".parse::<Stage>().unwrap().is_low());
    }

    #[test]
    fn bad_stages_name_the_allowed_forms() {
        for (bad, says) in [
            ("fp12", "unknown format 'fp12'; allowed: a format (fp64"),
            (
                "e4m3@row",
                "unknown scaling 'row'; allowed: tensor, channel",
            ),
            (
                "fp16@tensor",
                "format 'fp16' cannot be scaled; scaled element formats: e4m3, e5m2",
            ),
            ("e4m3@mx0", "block size 0"),
            ("e4m3@channel:2", "takes no axis"),
            ("e4m3~rz", "unknown or repeated suffix '~rz'; allowed: ~sr"),
            ("e4m3@tensor~sr~sr", "unknown or repeated suffix '~sr'"),
            ("e4m3@tensor~d0", "needs a history of 1 to 1024 steps"),
            ("e4m3@tensor~d2000", "needs a history of 1 to 1024 steps"),
            ("e4m3@tensor~dx", "needs a history of 1 to 1024 steps"),
            ("e4m3@tensor~d4~d8", "unknown or repeated suffix '~d8'"),
            ("e4m3@mx32~d16", "applies to a tensor or channel scaling"),
            (
                "e4m3@mx32~m1",
                "a margin (~mN) applies to a tensor or channel",
            ),
            ("fp16~m1", "a margin (~mN) applies to a tensor or channel"),
            ("e4m3@tensor~m0", "takes 1 to 16"),
            ("e4m3@tensor~m17", "takes 1 to 16"),
            ("e4m3@tensor~m1~m2", "unknown or repeated suffix '~m2'"),
            ("fp16~d16", "applies to a tensor or channel scaling"),
            ("fp32~sr", "needs a format below fp32"),
            ("fp64~sr", "needs a format below fp32"),
        ] {
            let e = bad.parse::<Stage>().unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn policy_nearest_drops_stochastic_rounding_and_delay_only() {
        let p = Policy {
            contraction: "e4m3@mx32~sr".parse().unwrap(),
            inv_fft: "e4m3@channel~m2~d16".parse().unwrap(),
            seed: 9,
            ..Policy::half_block("e5m2@tensor~sr".parse::<Stage>().unwrap(), Stabilizer::Tanh)
        };
        assert!(p.is_stochastic() && p.is_low());
        let n = p.nearest();
        assert!(!n.is_stochastic());
        assert_eq!(n.contraction.name(), "e4m3@mx32");
        assert_eq!(n.fwd_fft.name(), "e5m2@tensor");
        // The margin is part of the scale, not of the delay: it stays.
        assert_eq!(n.inv_fft.name(), "e4m3@channel~m2");
        assert_eq!(n.inv_fft.scaled_format().unwrap().margin, 2);
        assert_eq!((n.seed, n.stabilizer), (9, Stabilizer::Tanh));
        assert_eq!(Policy::full().nearest(), Policy::full());
    }
}
