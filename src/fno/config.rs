//! Training configuration: `mpno train --config FILE.toml`.
//!
//! ```toml
//! [data]
//! file = "data/darcy_r64.safetensors"   # written by `mpno datagen`; relative to the working dir
//! input = "a"                            # tensor names in the file
//! output = "u"
//! n_train = 1000                         # the first n_train samples
//! n_test = 100                           # the last n_test samples (or the first of test_file)
//! resolution = 64                        # or subsample = k (keep every k-th point); default: file's
//! test_resolutions = [64, 128]           # zero-shot evaluation (subsamplings of the test file)
//! normalizer = "global"                  # "global" | "pointwise" (on x and y)
//!
//! [model]
//! dim = 2
//! width = 32
//! modes = [12, 12]                       # per axis; one entry is used for every axis
//! n_layers = 4
//! gelu_before_last_mlp = false           # neuraloperator 2.0.0's last block (true: 0.3.0's)
//! spectral_transform = "fft"             # or "gemm" (DFT as a matrix product), or one per block
//! contraction = "standard"               # or "gauss" (3 real products per complex one)
//!
//! [train]
//! epochs = 100
//! lr = 5e-3
//! cp_order = "auto"                      # CP weights: "auto" (fewer operations), "memory",
//!                                        # "expand" or "factorized" (backend::CpOrder)
//!
//! [precision]
//! fwd_fft = "fp16"                       # or scaled fp8 "e4m3@tensor", "e5m2@mx32"; "~sr" suffix:
//! stabilizer = "tanh"                    # stochastic rounding (see fno::policy::Stage)
//! [[precision.schedule]]
//! epoch = 50
//! policy = "full"
//!
//! [audit]                                # optional: per-layer error audit during training
//! every = 100                            # steps between audits (0: none)
//! samples = 2                            # the first test samples
//! formats = ["fp16", "bf16"]             # default: the forward FFT's format, or fp16
//! ```
//! Every section and field is optional except `data.file`; defaults are the paper's small-scale
//! Darcy setup (64 x 64, width 32, 12 modes, 4 layers, AdamW with lr 5e-3, weight decay 1e-4,
//! StepLR halving every 60 epochs) and full fp32 precision. Unknown fields are errors.
//!
//! Errors are [`UsageError`]s whose `field` is the dotted field name (`model.width`,
//! `model.modes[0]`, `data.file`); TOML syntax and type errors also give the line.

use crate::backend::{ContractForm, CpOrder, SpectralTransform};
use crate::cli::UsageError;
use crate::fno::data::{DataSpec, subsample_step};
use crate::fno::loss::LossKind;
use crate::fno::optim::OptimizerKind;
use crate::fno::policy::Stage;
use crate::precision::Format;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The whole training config.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub data: DataConfig,
    pub model: ModelConfig,
    pub train: TrainSection,
    pub precision: PrecisionConfig,
    /// `[audit]`: per-layer error audits during training (off unless `every` > 0).
    #[serde(skip_serializing_if = "AuditSection::is_off")]
    pub audit: AuditSection,
}

/// `[audit]`: every `every` optimizer steps (and before the first), the spectral layers'
/// forward-transform inputs of the first `samples` test samples are captured and measured as
/// `mpno audit` does (precision under models I and III for each format, against the proven
/// bound; discretization against the finest test resolution), and one line per layer, format
/// and model is appended to `audit.csv` in `train.out_dir`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSection {
    /// Steps between audits; 0: no audit.
    pub every: u64,
    /// Test samples audited (the first of the test split).
    pub samples: usize,
    /// Formats of the precision measurements; empty: the forward FFT's format when it is below
    /// fp32, else fp16.
    #[serde(with = "formats_serde")]
    pub formats: Vec<Format>,
}

impl Default for AuditSection {
    fn default() -> Self {
        AuditSection {
            every: 0,
            samples: 2,
            formats: Vec::new(),
        }
    }
}

impl AuditSection {
    pub fn is_off(&self) -> bool {
        *self == AuditSection::default()
    }
}

/// Normalisation of inputs and outputs (see [`crate::fno::data::UnitGaussianNormalizer`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NormalizerKind {
    /// No normalisation.
    None,
    /// One mean and std over all training values: valid at any resolution.
    Global,
    /// Mean and std per grid point (the FNO paper): only at the training resolution.
    Pointwise,
}

/// `[data]`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Data set written by `mpno datagen` (relative paths: to the working directory).
    pub file: PathBuf,
    /// Input tensor name.
    pub input: String,
    /// Output tensor name.
    pub output: String,
    pub n_train: usize,
    pub n_test: usize,
    /// Test samples from this file instead of the end of `file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_file: Option<PathBuf>,
    /// Training grid points per axis (a subsampling of the file's grid).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution: Option<usize>,
    /// Keep every k-th grid point (instead of `resolution`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subsample: Option<usize>,
    /// Further resolutions the test set is evaluated at (zero-shot super-resolution).
    pub test_resolutions: Vec<usize>,
    pub normalizer: NormalizerKind,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            file: PathBuf::new(),
            input: "a".into(),
            output: "u".into(),
            n_train: 1000,
            n_test: 100,
            test_file: None,
            resolution: None,
            subsample: None,
            test_resolutions: Vec::new(),
            normalizer: NormalizerKind::Global,
        }
    }
}

/// Spectral weight layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Factorization {
    /// Full complex tensor (c_in, c_out, modes...).
    Dense,
    /// CP (canonical polyadic) factors of rank `model.rank`.
    Cp,
}

/// Skip connection of an FNO block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SkipKind {
    /// 1x1 convolution (a linear map over channels).
    Linear,
}

/// The CP rank of `factorization = "cp"` when `model.rank` is not given.
pub const DEFAULT_CP_RANK: usize = 16;

/// `[model]`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Spatial dimension, 1 to 3.
    pub dim: usize,
    /// Channels of the input field (the positional embedding adds `dim` more).
    pub in_channels: usize,
    pub out_channels: usize,
    /// Hidden channels of the FNO blocks.
    pub width: usize,
    /// Kept Fourier modes per axis (one entry: the same on every axis).
    pub modes: Vec<usize>,
    pub n_layers: usize,
    /// Hidden channels of the lifting MLP (0: one linear layer).
    pub lifting_channels: usize,
    /// Hidden channels of the projection MLP (0: one linear layer).
    pub projection_channels: usize,
    pub factorization: Factorization,
    /// CP rank (factorization = "cp"; default [`DEFAULT_CP_RANK`], filled in by the checks).
    /// A user's config that sets it for a dense model is refused ([`TrainConfig::load`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rank: Option<usize>,
    /// Channel MLP in each block.
    pub use_mlp: bool,
    /// Hidden channels of the channel MLP = round(width * mlp_expansion).
    pub mlp_expansion: f64,
    pub skip: SkipKind,
    /// Append the grid coordinates as input channels.
    pub positional_embedding: bool,
    /// The GELU between the last block's spectral sum and its channel MLP: false (default)
    /// leaves it out as neuraloperator 2.0.0 does; true applies it as neuraloperator 0.3.0 (and
    /// mpno before 2026-12-05) did.
    pub gelu_before_last_mlp: bool,
    /// How the blocks compute their truncated spectral transforms: "fft" (default) or "gemm"
    /// (matrix products with a rounded cos/sin table, fp32 sums: tensor-core arithmetic), one
    /// value for every block or a list with one per block.
    #[serde(deserialize_with = "one_or_many", serialize_with = "as_list")]
    pub spectral_transform: Vec<SpectralTransform>,
    /// How the spectral contraction forms its complex products: "standard" (default, four real
    /// products) or "gauss" (three: three real GEMMs on the GPU). Error bound: docs/bounds.md,
    /// "Spectral contraction".
    pub contraction: ContractForm,
}

/// A string or a list of strings, each a [`SpectralTransform`] name (errors list the allowed
/// names).
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<SpectralTransform>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let names = match OneOrMany::deserialize(d).map_err(|_| {
        serde::de::Error::custom("expected \"fft\", \"gemm\" or a list of them (one per block)")
    })? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    };
    names
        .iter()
        .map(|s| s.parse().map_err(serde::de::Error::custom))
        .collect()
}

fn as_list<S: serde::Serializer>(v: &[SpectralTransform], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|t| t.name()))
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            dim: 2,
            in_channels: 1,
            out_channels: 1,
            width: 32,
            modes: vec![12],
            n_layers: 4,
            lifting_channels: 64,
            projection_channels: 128,
            factorization: Factorization::Dense,
            rank: None,
            use_mlp: true,
            mlp_expansion: 0.5,
            skip: SkipKind::Linear,
            positional_embedding: true,
            gelu_before_last_mlp: false,
            spectral_transform: Vec::new(),
            contraction: ContractForm::Standard,
        }
    }
}

/// Training loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LossName {
    L2,
    H1,
}

impl From<LossName> for LossKind {
    fn from(l: LossName) -> LossKind {
        match l {
            LossName::L2 => LossKind::L2,
            LossName::H1 => LossKind::H1,
        }
    }
}

/// Optimizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerName {
    Adam,
    Adamw,
}

impl From<OptimizerName> for OptimizerKind {
    fn from(o: OptimizerName) -> OptimizerKind {
        match o {
            OptimizerName::Adam => OptimizerKind::Adam,
            OptimizerName::Adamw => OptimizerKind::AdamW,
        }
    }
}

/// `[train]`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSection {
    pub epochs: usize,
    pub batch_size: usize,
    /// Initial learning rate.
    pub lr: f64,
    pub weight_decay: f64,
    pub optimizer: OptimizerName,
    /// StepLR: multiply the learning rate by `gamma` every `step_size` epochs.
    pub step_size: usize,
    pub gamma: f64,
    pub loss: LossName,
    pub seed: u64,
    /// Write a checkpoint every this many epochs (and after the last; 0: only after the last).
    pub checkpoint_every: usize,
    /// Folder of checkpoints, metrics and the resolved config.
    pub out_dir: PathBuf,
    /// Recompute GELU outputs in the backward pass instead of keeping them from the forward
    /// (activation recomputation, see `Fno::recompute`): less memory, a little more time, the
    /// same results.
    pub recompute_activations: bool,
    /// How CP weights meet the spectrum: "auto" (the order with fewer operations for the
    /// batch), "memory" (the smaller largest intermediate), "expand" (the dense weight) or
    /// "factorized" (factor by factor); see `backend::CpOrder`. An execution choice: the model
    /// is the same, the rounding of its sums differs.
    pub cp_order: CpOrder,
}

impl Default for TrainSection {
    fn default() -> Self {
        TrainSection {
            epochs: 100,
            batch_size: 32,
            lr: 5e-3,
            weight_decay: 1e-4,
            optimizer: OptimizerName::Adamw,
            step_size: 60,
            gamma: 0.5,
            loss: LossName::L2,
            seed: 0,
            checkpoint_every: 10,
            out_dir: PathBuf::from("runs/train"),
            recompute_activations: false,
            cp_order: CpOrder::Auto,
        }
    }
}

/// Keeping activations in range before low-precision FFTs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StabilizerKind {
    None,
    /// tanh before each forward FFT (not on the skip path); no parameter.
    Tanh,
    /// Clip to [-c, c]; `stabilizer_value` = c (required).
    Clip,
    /// Clip to mean +- k std; `stabilizer_value` = k (default 3).
    Ksigma,
    /// Divide by a constant; `stabilizer_value` = the constant (required).
    Divide,
}

impl StabilizerKind {
    /// The name in configs (and in [`crate::fno::Stabilizer::from_parts`]).
    pub fn name(self) -> &'static str {
        match self {
            StabilizerKind::None => "none",
            StabilizerKind::Tanh => "tanh",
            StabilizerKind::Clip => "clip",
            StabilizerKind::Ksigma => "ksigma",
            StabilizerKind::Divide => "divide",
        }
    }
}

/// Loss scaling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LossScaleKind {
    None,
    /// Fixed scale `loss_scale_value` (required).
    Static,
    /// PyTorch GradScaler: start at `loss_scale_value` (default 65536), halve on inf/NaN,
    /// double after `loss_scale_growth_interval` good steps.
    Dynamic,
}

/// What to do when inf/NaN appears.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnOverflow {
    /// Stop the run with an error naming the layer, op and step.
    Stop,
    /// Skip the optimizer step (count it) and go on.
    Skip,
}

/// Storage/arithmetic formats of the four parts of the model a policy sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Formats {
    /// The spectral stages (plain, scaled fp8, stochastic: see [`Stage`]).
    pub fwd_fft: Stage,
    pub contraction: Stage,
    pub inv_fft: Stage,
    /// Lifting, projection and channel MLPs.
    pub mlp: Format,
}

impl Formats {
    pub const FULL: Formats = Formats {
        fwd_fft: Stage::plain(Format::Fp32),
        contraction: Stage::plain(Format::Fp32),
        inv_fft: Stage::plain(Format::Fp32),
        mlp: Format::Fp32,
    };
    /// The paper's "mixed" (middle of its precision schedule): forward FFT in fp32, contraction
    /// and inverse FFT in fp16, MLPs in fp32.
    pub const MIXED: Formats = Formats {
        fwd_fft: Stage::plain(Format::Fp32),
        contraction: Stage::plain(Format::Fp16),
        inv_fft: Stage::plain(Format::Fp16),
        mlp: Format::Fp32,
    };
    /// Everything in fp16.
    pub const HALF: Formats = Formats {
        fwd_fft: Stage::plain(Format::Fp16),
        contraction: Stage::plain(Format::Fp16),
        inv_fft: Stage::plain(Format::Fp16),
        mlp: Format::Fp16,
    };

    /// `full`, `mixed`, `half`, or four formats `FWD_FFT/CONTRACTION/INV_FFT/MLP`
    /// (e.g. `fp16/fp16/fp32/fp32`, `e4m3@tensor/e4m3@mx32~sr/e4m3@tensor/fp32`): the three
    /// stages take any [`Stage`] form, the MLPs a plain format.
    pub fn parse(s: &str) -> Result<Formats, String> {
        match s.trim() {
            "full" => return Ok(Formats::FULL),
            "mixed" => return Ok(Formats::MIXED),
            "half" => return Ok(Formats::HALF),
            _ => {}
        }
        let parts: Vec<&str> = s.split('/').collect();
        if parts.len() != 4 {
            return Err(format!(
                "unknown policy '{s}'; allowed: full, mixed, half, or four formats \
                 FWD_FFT/CONTRACTION/INV_FFT/MLP such as fp16/fp16/fp32/fp32 or \
                 e4m3@tensor/e4m3@tensor/e4m3@tensor~sr/fp32"
            ));
        }
        let stage = |i: usize, what: &str| {
            parts[i]
                .parse::<Stage>()
                .map_err(|e| format!("'{s}', {what}: {e}"))
        };
        Ok(Formats {
            fwd_fft: stage(0, "forward FFT")?,
            contraction: stage(1, "contraction")?,
            inv_fft: stage(2, "inverse FFT")?,
            mlp: parse_mlp(parts[3]).map_err(|e| format!("'{s}', MLPs: {e}"))?,
        })
    }
}

impl std::fmt::Display for Formats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.fwd_fft, self.contraction, self.inv_fft, self.mlp
        )
    }
}

/// One entry of the precision schedule: from `epoch` on, use `policy` (see [`Formats::parse`]).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleEntry {
    pub epoch: usize,
    pub policy: String,
}

/// The MLPs' format: a plain format (scaled formats and `~sr` are the spectral stages' only).
fn parse_mlp(s: &str) -> Result<Format, String> {
    if s.contains('@') || s.contains('~') {
        return Err(format!(
            "'{s}': scaled formats and stochastic rounding (~sr) apply to the spectral stages \
             (fwd_fft, contraction, inv_fft) only; the MLPs take a plain format: {}",
            Format::allowed_names()
        ));
    }
    s.parse()
        .map_err(|e: crate::precision::UnknownFormat| e.to_string())
}

mod format_serde {
    use crate::precision::Format;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(f: &Format, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(f.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Format, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_mlp(&s).map_err(serde::de::Error::custom)
    }
}

mod stage_serde {
    use crate::fno::policy::Stage;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(f: &Stage, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&f.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Stage, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

mod formats_serde {
    use crate::precision::Format;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(f: &[Format], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(f.iter().map(|f| f.name()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Format>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| s.parse().map_err(serde::de::Error::custom))
            .collect()
    }
}

/// `[precision]`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrecisionConfig {
    /// Forward FFT, contraction and inverse FFT: a format, a scaled fp8 format
    /// (`e4m3@tensor`, `e4m3@channel`, `e4m3@mx32`, `e5m2@...`), either with `~sr`
    /// (stochastic rounding), tensor and channel scalings with `~dN` (delayed scaling); see
    /// [`Stage`].
    #[serde(with = "stage_serde")]
    pub fwd_fft: Stage,
    #[serde(with = "stage_serde")]
    pub contraction: Stage,
    #[serde(with = "stage_serde")]
    pub inv_fft: Stage,
    #[serde(with = "format_serde")]
    pub mlp: Format,
    pub stabilizer: StabilizerKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stabilizer_value: Option<f64>,
    pub loss_scale: LossScaleKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_scale_value: Option<f64>,
    /// Dynamic loss scaling: good steps before the scale doubles.
    pub loss_scale_growth_interval: usize,
    pub on_overflow: OnOverflow,
    /// Policy changes at epoch boundaries (strictly increasing epochs).
    pub schedule: Vec<ScheduleEntry>,
}

impl Default for PrecisionConfig {
    fn default() -> Self {
        PrecisionConfig {
            fwd_fft: Stage::plain(Format::Fp32),
            contraction: Stage::plain(Format::Fp32),
            inv_fft: Stage::plain(Format::Fp32),
            mlp: Format::Fp32,
            stabilizer: StabilizerKind::None,
            stabilizer_value: None,
            loss_scale: LossScaleKind::None,
            loss_scale_value: None,
            loss_scale_growth_interval: 2000,
            on_overflow: OnOverflow::Stop,
            schedule: Vec::new(),
        }
    }
}

impl PrecisionConfig {
    /// The formats before any schedule entry.
    pub fn base(&self) -> Formats {
        Formats {
            fwd_fft: self.fwd_fft,
            contraction: self.contraction,
            inv_fft: self.inv_fft,
            mlp: self.mlp,
        }
    }

    /// The formats used during epoch `epoch` (0-based): the last schedule entry starting at or
    /// before it, or the base formats. Call after validation (a bad policy falls back to base).
    pub fn policy_at(&self, epoch: usize) -> Formats {
        self.schedule
            .iter()
            .rev()
            .find(|e| e.epoch <= epoch)
            .and_then(|e| Formats::parse(&e.policy).ok())
            .unwrap_or_else(|| self.base())
    }

    /// The stabilizer parameter, with defaults filled in (k = 3 for ksigma); `None` for none/tanh.
    pub fn stabilizer_param(&self) -> Option<f64> {
        match self.stabilizer {
            StabilizerKind::None | StabilizerKind::Tanh => None,
            StabilizerKind::Ksigma => Some(self.stabilizer_value.unwrap_or(3.0)),
            StabilizerKind::Clip | StabilizerKind::Divide => self.stabilizer_value,
        }
    }

    /// The (initial) loss scale: 1 for none, 65536 by default for dynamic.
    pub fn initial_loss_scale(&self) -> f64 {
        match self.loss_scale {
            LossScaleKind::None => 1.0,
            LossScaleKind::Static => self.loss_scale_value.unwrap_or(1.0),
            LossScaleKind::Dynamic => self.loss_scale_value.unwrap_or(65536.0),
        }
    }
}

/// What [`TrainConfig::check_data`] learnt from the data file's header.
#[derive(Clone, Debug, PartialEq)]
pub struct DataInfo {
    /// Samples in `data.file`.
    pub samples: usize,
    /// Grid points per axis in `data.file`.
    pub file_resolution: usize,
    /// Grid points per axis in `data.test_file` (or `data.file`).
    pub test_file_resolution: usize,
    /// Training grid points per axis.
    pub resolution: usize,
    pub in_channels: usize,
    pub out_channels: usize,
}

fn err(field: impl AsRef<str>, message: impl Into<String>) -> UsageError {
    UsageError::new(field.as_ref(), message)
}

/// Shapes of the tensors in a safetensors file, read from its header alone.
fn header_shapes(path: &Path) -> anyhow::Result<BTreeMap<String, Vec<usize>>> {
    let mut f = crate::cli::open_input(path)?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len)?;
    let n = u64::from_le_bytes(len);
    anyhow::ensure!(
        n < 100_000_000,
        "not a safetensors file (header of {n} bytes)"
    );
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header)?;
    let v: serde_json::Value = serde_json::from_slice(&header)?;
    let obj = v
        .as_object()
        .ok_or_else(|| anyhow::anyhow!("not a safetensors file (header is not a JSON object)"))?;
    let mut out = BTreeMap::new();
    for (k, t) in obj {
        if k == "__metadata__" {
            continue;
        }
        let shape = t
            .get("shape")
            .and_then(|s| s.as_array())
            .ok_or_else(|| anyhow::anyhow!("tensor '{k}' has no shape"))?
            .iter()
            .map(|x| x.as_u64().map(|x| x as usize))
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| anyhow::anyhow!("tensor '{k}' has a bad shape"))?;
        out.insert(k.clone(), shape);
    }
    Ok(out)
}

impl TrainConfig {
    /// Parse TOML and check every field that does not need the data file.
    pub fn from_toml(text: &str) -> Result<Self, UsageError> {
        let mut c: TrainConfig = toml::from_str(text).map_err(|e| {
            let (line, field) = e.span().map_or((0, "config".to_string()), |s| {
                crate::cli::toml_field_at(text, s.start)
            });
            let at = if line > 0 {
                format!("line {line}: ")
            } else {
                String::new()
            };
            err(field, format!("{at}{}", e.message().trim()))
        })?;
        c.validate()?;
        Ok(c)
    }

    /// Read, parse and fully check `path` (including the data file); the result is resolved
    /// (resolution and modes filled in).
    pub fn load(path: &Path) -> Result<Self, UsageError> {
        let text = crate::cli::read_input_to_string(path)
            .map_err(|e| err("config", format!("cannot read {}: {e}", path.display())))?;
        let mut c = Self::from_user_toml(&text).map_err(|e| UsageError {
            field: e.field,
            message: format!("{} ({})", e.message, path.display()),
        })?;
        c.check_data()?;
        Ok(c)
    }

    /// [`Self::from_toml`] for a config a user wrote, which also refuses fields the model would
    /// ignore: `model.rank` without `factorization = "cp"` (the model would train dense, not at
    /// the rank asked for). Checkpoints keep loading through `from_toml`: their resolved configs
    /// from before this rule carry `rank = 16` beside dense weights.
    pub fn from_user_toml(text: &str) -> Result<Self, UsageError> {
        let c = Self::from_toml(text)?;
        if c.model.factorization == Factorization::Dense
            && let Some(r) = c.model.rank
        {
            return Err(err(
                "model.rank",
                format!(
                    "rank = {r} applies to factorization = \"cp\" only, and this model is dense \
                     (the default); set model.factorization = \"cp\" or remove model.rank"
                ),
            ));
        }
        // An [audit] section without `every` would be off (every = 0) without a word.
        let audit_without_every = text.parse::<toml::Table>().ok().is_some_and(|t| {
            t.get("audit")
                .and_then(toml::Value::as_table)
                .is_some_and(|a| !a.contains_key("every"))
        });
        if audit_without_every {
            return Err(err(
                "audit.every",
                "required in an [audit] section: the steps between audits (e.g. every = 100); \
                 without it no audit runs. Set it, or remove [audit]",
            ));
        }
        Ok(c)
    }

    /// Checks of the fields alone; fills in `model.modes` when one entry is given for all axes.
    pub fn validate(&mut self) -> Result<(), UsageError> {
        let d = &self.data;
        if d.file.as_os_str().is_empty() {
            return Err(err(
                "data.file",
                "required: the data set written by `mpno datagen`",
            ));
        }
        if d.input.is_empty() {
            return Err(err("data.input", "must name a tensor of data.file"));
        }
        if d.output.is_empty() {
            return Err(err("data.output", "must name a tensor of data.file"));
        }
        if d.n_train == 0 {
            return Err(err("data.n_train", "must be >= 1, got 0"));
        }
        if d.n_test == 0 {
            return Err(err("data.n_test", "must be >= 1, got 0"));
        }
        if d.resolution.is_some() && d.subsample.is_some() {
            return Err(err(
                "data.subsample",
                "give either data.resolution or data.subsample, not both",
            ));
        }
        if let Some(r) = d.resolution
            && r < 2
        {
            return Err(err("data.resolution", format!("must be >= 2, got {r}")));
        }
        if d.subsample == Some(0) {
            return Err(err("data.subsample", "must be >= 1, got 0"));
        }
        for (i, &r) in d.test_resolutions.iter().enumerate() {
            if r < 2 {
                return Err(err(
                    format!("data.test_resolutions[{i}]"),
                    format!("must be >= 2, got {r}"),
                ));
            }
        }

        let m = &mut self.model;
        if !(1..=3).contains(&m.dim) {
            return Err(err(
                "model.dim",
                format!("must be 1, 2 or 3, got {}", m.dim),
            ));
        }
        for (name, v) in [
            ("model.in_channels", m.in_channels),
            ("model.out_channels", m.out_channels),
            ("model.width", m.width),
            ("model.n_layers", m.n_layers),
        ] {
            if v == 0 {
                return Err(err(name, "must be >= 1, got 0"));
            }
        }
        match m.modes.len() {
            1 => m.modes = vec![m.modes[0]; m.dim],
            k if k == m.dim => {}
            0 => return Err(err("model.modes", "empty; give the kept modes per axis")),
            k => {
                return Err(err(
                    "model.modes",
                    format!("has {k} entries but model.dim is {}", m.dim),
                ));
            }
        }
        for (i, &k) in m.modes.iter().enumerate() {
            if k == 0 {
                return Err(err(format!("model.modes[{i}]"), "must be >= 1, got 0"));
            }
        }
        let nt = m.spectral_transform.len();
        if nt > 1 && nt != m.n_layers {
            return Err(err(
                "model.spectral_transform",
                format!(
                    "{nt} entries for n_layers = {} (give one for every block or one per block; \
                     allowed values: fft, gemm)",
                    m.n_layers
                ),
            ));
        }
        if m.factorization == Factorization::Cp && m.rank.is_none() {
            m.rank = Some(DEFAULT_CP_RANK);
        }
        if m.factorization == Factorization::Cp && m.rank == Some(0) {
            return Err(err(
                "model.rank",
                "must be >= 1 for factorization = \"cp\", got 0",
            ));
        }
        if m.use_mlp && !(m.mlp_expansion.is_finite() && m.mlp_expansion > 0.0) {
            return Err(err(
                "model.mlp_expansion",
                format!("must be > 0 when model.use_mlp, got {}", m.mlp_expansion),
            ));
        }
        if m.use_mlp && (m.width as f64 * m.mlp_expansion).round() < 1.0 {
            return Err(err(
                "model.mlp_expansion",
                format!(
                    "width {} x {} rounds to 0 hidden channels",
                    m.width, m.mlp_expansion
                ),
            ));
        }
        if let Some(r) = self.data.resolution {
            self.check_modes(r)?;
        }

        let t = &self.train;
        if t.epochs == 0 {
            return Err(err("train.epochs", "must be >= 1, got 0"));
        }
        if t.batch_size == 0 {
            return Err(err("train.batch_size", "must be >= 1, got 0"));
        }
        if !(t.lr.is_finite() && t.lr > 0.0) {
            return Err(err("train.lr", format!("must be > 0, got {}", t.lr)));
        }
        in_f32_range("train.lr", t.lr)?;
        if !(t.weight_decay.is_finite() && t.weight_decay >= 0.0) {
            return Err(err(
                "train.weight_decay",
                format!("must be >= 0, got {}", t.weight_decay),
            ));
        }
        if t.weight_decay > 0.0 {
            in_f32_range("train.weight_decay", t.weight_decay)?;
        }
        if t.step_size == 0 {
            return Err(err("train.step_size", "must be >= 1, got 0"));
        }
        if !(t.gamma.is_finite() && t.gamma > 0.0) {
            return Err(err("train.gamma", format!("must be > 0, got {}", t.gamma)));
        }
        in_f32_range("train.gamma", t.gamma)?;
        if t.out_dir.as_os_str().is_empty() {
            return Err(err("train.out_dir", "must not be empty"));
        }

        let p = &self.precision;
        match (p.stabilizer, p.stabilizer_value) {
            (StabilizerKind::None | StabilizerKind::Tanh, Some(_)) => {
                return Err(err(
                    "precision.stabilizer_value",
                    format!(
                        "stabilizer \"{}\" takes no value; remove it",
                        if p.stabilizer == StabilizerKind::Tanh {
                            "tanh"
                        } else {
                            "none"
                        }
                    ),
                ));
            }
            (StabilizerKind::Clip, None) => {
                return Err(err(
                    "precision.stabilizer_value",
                    "required for stabilizer \"clip\": the bound c of [-c, c]",
                ));
            }
            (StabilizerKind::Divide, None) => {
                return Err(err(
                    "precision.stabilizer_value",
                    "required for stabilizer \"divide\": the constant",
                ));
            }
            (_, Some(v)) if !(v.is_finite() && v > 0.0) => {
                return Err(err(
                    "precision.stabilizer_value",
                    format!("must be > 0, got {v}"),
                ));
            }
            (_, Some(v)) => in_f32_range("precision.stabilizer_value", v)?,
            _ => {}
        }
        match (p.loss_scale, p.loss_scale_value) {
            (LossScaleKind::None, Some(_)) => {
                return Err(err(
                    "precision.loss_scale_value",
                    "loss_scale \"none\" takes no value; remove it or set loss_scale",
                ));
            }
            (LossScaleKind::Static, None) => {
                return Err(err(
                    "precision.loss_scale_value",
                    "required for loss_scale \"static\"",
                ));
            }
            (_, Some(v)) if !(v.is_finite() && v > 0.0) => {
                return Err(err(
                    "precision.loss_scale_value",
                    format!("must be > 0, got {v}"),
                ));
            }
            (_, Some(v)) => in_f32_range("precision.loss_scale_value", v)?,
            _ => {}
        }
        if p.loss_scale_growth_interval == 0 {
            return Err(err(
                "precision.loss_scale_growth_interval",
                "must be >= 1, got 0",
            ));
        }
        let mut prev: Option<usize> = None;
        for (i, e) in p.schedule.iter().enumerate() {
            if let Err(m) = Formats::parse(&e.policy) {
                return Err(err(format!("precision.schedule[{i}].policy"), m));
            }
            if e.epoch >= self.train.epochs {
                return Err(err(
                    format!("precision.schedule[{i}].epoch"),
                    format!(
                        "{} is not before the end of training (train.epochs = {})",
                        e.epoch, self.train.epochs
                    ),
                ));
            }
            if let Some(q) = prev
                && e.epoch <= q
            {
                return Err(err(
                    format!("precision.schedule[{i}].epoch"),
                    format!("{} must be greater than the previous entry's {q}", e.epoch),
                ));
            }
            prev = Some(e.epoch);
        }
        let a = &self.audit;
        if a.every > 0 {
            if a.samples == 0 || a.samples > self.data.n_test {
                return Err(err(
                    "audit.samples",
                    format!(
                        "must be in 1..={} (data.n_test), got {}",
                        self.data.n_test, a.samples
                    ),
                ));
            }
            for (i, f) in a.formats.iter().enumerate() {
                if *f == Format::Fp64 {
                    return Err(err(
                        format!("audit.formats[{i}]"),
                        "fp64 is the reference the audit measures against; allowed: fp32, tf32, \
                         bf16, fp16, e5m2, e4m3, e4m3sat",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The kept modes must fit a grid of `resolution` points per axis
    /// ([`crate::backend::Modes::axis_limit`]): every axis but the last keeps 2m frequencies
    /// (m <= resolution/2), the last, the real FFT's half, m <= resolution/2 + 1.
    fn check_modes(&self, resolution: usize) -> Result<(), UsageError> {
        match self.modes_misfit(resolution) {
            Some((i, why)) => Err(err(format!("model.modes[{i}]"), why)),
            None => Ok(()),
        }
    }

    /// The first axis whose mode count does not fit `resolution` points, and why.
    fn modes_misfit(&self, resolution: usize) -> Option<(usize, String)> {
        let d = self.model.modes.len();
        for (i, &k) in self.model.modes.iter().enumerate() {
            let limit = crate::backend::Modes::axis_limit(i, d, resolution);
            let rule = if i + 1 < d {
                "resolution/2 (2m frequencies kept on all axes but the last)"
            } else {
                "resolution/2 + 1"
            };
            if k > limit {
                return Some((
                    i,
                    format!("{k} exceeds {rule} = {limit} for a {resolution}-point grid"),
                ));
            }
        }
        None
    }

    /// Check the data files against the config (files exist, tensors exist with the right
    /// number of axes and channels, enough samples, resolutions reachable, modes fit the grid)
    /// from the file headers alone, and resolve `data.resolution` (clearing `data.subsample`).
    pub fn check_data(&mut self) -> Result<DataInfo, UsageError> {
        let dim = self.model.dim;
        let inspect =
            |path: &Path, field: &str| -> Result<BTreeMap<String, Vec<usize>>, UsageError> {
                if !path.exists() {
                    return Err(err(field, format!("no such file {}", path.display())));
                }
                header_shapes(path)
                    .map_err(|e| err(field, format!("cannot read {}: {e:#}", path.display())))
            };
        // (samples, channels, resolution) of a field tensor.
        let field_shape = |shapes: &BTreeMap<String, Vec<usize>>,
                           path: &Path,
                           name: &str,
                           field: &str|
         -> Result<(usize, usize, usize), UsageError> {
            let s = shapes.get(name).ok_or_else(|| {
                err(
                    field,
                    format!(
                        "no tensor '{name}' in {} (have: {})",
                        path.display(),
                        shapes.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                )
            })?;
            if s.len() < dim + 1 {
                return Err(err(
                    field,
                    format!(
                        "tensor '{name}' has shape {s:?}: not (samples, [channels,] grid) with \
                         model.dim = {dim} grid axes"
                    ),
                ));
            }
            let grid = &s[s.len() - dim..];
            if grid.iter().any(|&g| g != grid[0]) {
                return Err(err(
                    field,
                    format!("tensor '{name}' has grid {grid:?}; every axis needs as many points"),
                ));
            }
            Ok((s[0], s[1..s.len() - dim].iter().product(), grid[0]))
        };
        let d = self.data.clone();
        let shapes = inspect(&d.file, "data.file")?;
        let (n, cin, r) = field_shape(&shapes, &d.file, &d.input, "data.input")?;
        let (n_out, cout, r_out) = field_shape(&shapes, &d.file, &d.output, "data.output")?;
        if (n_out, r_out) != (n, r) {
            return Err(err(
                "data.output",
                format!(
                    "tensor '{}' has {n_out} samples on a {r_out}-point grid but data.input '{}' \
                     has {n} on a {r}-point grid",
                    d.output, d.input
                ),
            ));
        }
        if cin != self.model.in_channels {
            return Err(err(
                "model.in_channels",
                format!(
                    "is {} but data.input '{}' has {cin} channel(s)",
                    self.model.in_channels, d.input
                ),
            ));
        }
        if cout != self.model.out_channels {
            return Err(err(
                "model.out_channels",
                format!(
                    "is {} but data.output '{}' has {cout} channel(s)",
                    self.model.out_channels, d.output
                ),
            ));
        }
        let test_r = match &d.test_file {
            None => {
                if d.n_train + d.n_test > n {
                    return Err(err(
                        "data.n_train",
                        format!(
                            "data.n_train + data.n_test = {} + {} exceeds the {n} samples in {}",
                            d.n_train,
                            d.n_test,
                            d.file.display()
                        ),
                    ));
                }
                r
            }
            Some(tf) => {
                if d.n_train > n {
                    return Err(err(
                        "data.n_train",
                        format!(
                            "{} exceeds the {n} samples in {}",
                            d.n_train,
                            d.file.display()
                        ),
                    ));
                }
                let ts = inspect(tf, "data.test_file")?;
                let (tn, tc, tr) = field_shape(&ts, tf, &d.input, "data.input")?;
                let (tn2, tc2, tr2) = field_shape(&ts, tf, &d.output, "data.output")?;
                if (tn2, tr2) != (tn, tr) || tc != cin || tc2 != cout {
                    return Err(err(
                        "data.test_file",
                        format!(
                            "tensors '{}' and '{}' in {} do not match those of data.file",
                            d.input,
                            d.output,
                            tf.display()
                        ),
                    ));
                }
                if d.n_test > tn {
                    return Err(err(
                        "data.n_test",
                        format!("{} exceeds the {tn} samples in {}", d.n_test, tf.display()),
                    ));
                }
                tr
            }
        };
        let res = match (d.resolution, d.subsample) {
            (Some(res), _) => {
                if subsample_step(r, res).is_none() || subsample_step(test_r, res).is_none() {
                    return Err(err(
                        "data.resolution",
                        format!(
                            "{res} points per axis cannot be taken from the file's {}-point \
                             grid by keeping every k-th point",
                            if subsample_step(r, res).is_none() {
                                r
                            } else {
                                test_r
                            }
                        ),
                    ));
                }
                res
            }
            (None, Some(k)) => {
                let res = r.div_ceil(k);
                if subsample_step(test_r, res).is_none() {
                    return Err(err(
                        "data.subsample",
                        format!(
                            "gives {res} points per axis, which the test file's {test_r}-point \
                             grid cannot be subsampled to"
                        ),
                    ));
                }
                res
            }
            (None, None) => {
                if subsample_step(test_r, r).is_none() {
                    return Err(err(
                        "data.resolution",
                        format!(
                            "the test file's {test_r}-point grid cannot be subsampled to the \
                             training file's {r} points; set data.resolution"
                        ),
                    ));
                }
                r
            }
        };
        for (i, &tr) in d.test_resolutions.iter().enumerate() {
            if subsample_step(test_r, tr).is_none() {
                return Err(err(
                    format!("data.test_resolutions[{i}]"),
                    format!(
                        "{tr} points per axis cannot be taken from the {test_r}-point grid of \
                         the test data by keeping every k-th point"
                    ),
                ));
            }
            if tr != res && d.normalizer == NormalizerKind::Pointwise {
                return Err(err(
                    "data.normalizer",
                    format!(
                        "\"pointwise\" statistics live on the {res}-point training grid and \
                         cannot normalise the {tr}-point test grid of data.test_resolutions; use \
                         \"global\""
                    ),
                ));
            }
        }
        self.check_modes(res)?;
        for (i, &tr) in d.test_resolutions.iter().enumerate() {
            if let Some((axis, why)) = self.modes_misfit(tr) {
                return Err(err(
                    format!("data.test_resolutions[{i}]"),
                    format!("model.modes[{axis}] does not fit: {why}"),
                ));
            }
        }
        self.data.resolution = Some(res);
        self.data.subsample = None;
        Ok(DataInfo {
            samples: n,
            file_resolution: r,
            test_file_resolution: test_r,
            resolution: res,
            in_channels: cin,
            out_channels: cout,
        })
    }

    /// What [`crate::fno::data::load`] needs.
    pub fn data_spec(&self) -> DataSpec {
        DataSpec {
            file: self.data.file.clone(),
            input: self.data.input.clone(),
            output: self.data.output.clone(),
            dim: self.model.dim,
            n_train: self.data.n_train,
            n_test: self.data.n_test,
            test_file: self.data.test_file.clone(),
            resolution: self.data.resolution,
            test_resolutions: self.data.test_resolutions.clone(),
        }
    }

    /// The config as TOML (every field, defaults included); parses back to the same config.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a training config serialises to TOML")
    }

    /// The settings in which this config differs from `stored` (a run's resolved config, as
    /// its checkpoint keeps it), as `key: was A, now B`, for an exact resume: everything but
    /// `train.epochs` (a resume may train longer) and `train.out_dir` (the run may have moved)
    /// must match. `model.rank` of a dense model is not a setting (configs before 2026-12-06
    /// wrote `rank = 16` for every model).
    pub fn resume_differences(&self, stored: &str) -> Vec<String> {
        let Ok(stored) = stored.parse::<toml::Table>() else {
            return vec!["the stored config is not valid TOML".into()];
        };
        let now: toml::Table = self.to_toml().parse().expect("a config's TOML parses");
        let mut flat_was = BTreeMap::new();
        let mut flat_now = BTreeMap::new();
        flatten("", &toml::Value::Table(stored), &mut flat_was);
        flatten("", &toml::Value::Table(now), &mut flat_now);
        let dense = self.model.factorization == Factorization::Dense;
        let skip =
            |k: &str| k == "train.epochs" || k == "train.out_dir" || (dense && k == "model.rank");
        let keys: std::collections::BTreeSet<&String> =
            flat_was.keys().chain(flat_now.keys()).collect();
        keys.into_iter()
            .filter(|k| !skip(k) && flat_was.get(*k) != flat_now.get(*k))
            .map(|k| {
                let show = |v: Option<&String>| v.map_or("absent".to_string(), |v| v.clone());
                format!(
                    "{k}: was {}, now {}",
                    show(flat_was.get(k)),
                    show(flat_now.get(k))
                )
            })
            .collect()
    }
}

/// A positive constant the f32 trainer multiplies by must be a normal f32: above f32::MAX it
/// becomes inf (every parameter NaN after one step), below f32::MIN_POSITIVE it is flushed or
/// loses bits, so the run would not be the one the config describes.
fn in_f32_range(field: &str, v: f64) -> Result<(), UsageError> {
    let (lo, hi) = (f32::MIN_POSITIVE as f64, f32::MAX as f64);
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(err(
            field,
            format!(
                "{v:e} is outside the range of f32, which the trainer computes in \
                 ({lo:e} to {hi:e})"
            ),
        ))
    }
}

/// `value`'s leaves under dotted keys (`train.lr` -> `0.001`; arrays as one TOML value).
fn flatten(prefix: &str, value: &toml::Value, out: &mut BTreeMap<String, String>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        v => {
            out.insert(prefix.to_string(), v.to_string());
        }
    }
}

impl std::fmt::Display for TrainConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_toml())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_at_names_section_and_key() {
        let text = "[data]\nfile = \"x\"\n\n[model]\nwidht = 3\n";
        let pos = text.find("widht").unwrap();
        assert_eq!(
            crate::cli::toml_field_at(text, pos),
            (5, "model.widht".to_string())
        );
        assert_eq!(crate::cli::toml_field_at(text, 0), (1, "data".to_string()));
    }

    #[test]
    fn policies() {
        assert_eq!(Formats::parse("mixed").unwrap(), Formats::MIXED);
        let f = Formats::parse("fp16/bf16/fp32/e4m3").unwrap();
        assert_eq!(f.contraction, Format::Bf16);
        assert_eq!(f.mlp, Format::E4m3);
        assert_eq!(Formats::parse(&f.to_string()).unwrap(), f);
        assert!(
            Formats::parse("fp16/fp16")
                .unwrap_err()
                .contains("full, mixed, half")
        );
        assert!(
            Formats::parse("fp16/fp12/fp32/fp32")
                .unwrap_err()
                .contains("fp12")
        );
    }
}
