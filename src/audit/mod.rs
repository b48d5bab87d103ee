//! `mpno audit`: the precision and discretization errors of a trained FNO's spectral layers, on
//! the activations the model actually transforms.
//!
//! For test inputs of a data file, the model (fp32, the checkpoint's stabilizer) runs at the
//! file's native resolution S and at coarser grids s (every (S/s)-th point, as training
//! subsamples). Every spectral layer's forward-transform input (after the stabilizer) is captured
//! ([`capture`]) and measured per sample and kept mode ([`measure`]):
//! - precision: the transform of each channel under each requested format and model against f64
//!   on the same samples, beside the proven bound with M = max |v|, mean |v| of the samples;
//! - discretization: the coarse grid's coefficients against the fine grid's at the same mode,
//!   beside D(s) + D(S) with L and M estimated from the activation (an estimate, labelled so);
//! - end to end: the output's relative L2 difference with the spectral blocks in each format vs
//!   fp32, beside the difference coarse vs fine (the fine output at the coarse grid's points).
//!
//! [`prepare`] checks everything (files, layers, resolutions, memory, work) before any work or
//! output; [`run`] measures; [`report`] writes the CSV, the summary and the figures.

pub mod capture;
pub mod measure;
pub mod report;

use crate::backend::Modes;
use crate::backend::cpu::Cpu;
use crate::cli::{self, UsageError};
use crate::fno::checkpoint::Checkpoint;
use crate::fno::config::TrainConfig;
use crate::fno::data::{FieldSet, UnitGaussianNormalizer};
use crate::fno::train::{model_config, policy_at};
use crate::fno::{Fno, Params, Policy, Resident, Stabilizer};
use crate::pde::dataset::Dataset;
use crate::precision::{Format, Model};
pub use capture::{Activation, GridConstants, forward_capture, grid_constants};
pub use measure::{AuditRow, kept_modes, layer_name};
use std::path::{Path, PathBuf};

/// What the command line asks for (parsed, not yet checked against the files).
#[derive(Clone, Debug)]
pub struct AuditRequest {
    pub checkpoint: PathBuf,
    pub data: PathBuf,
    /// Grid sizes per axis to audit besides the native one (None: the training resolution).
    pub resolutions: Option<Vec<usize>>,
    /// Block indices (None: all).
    pub layers: Option<Vec<usize>>,
    /// The last `samples` samples of the data file.
    pub samples: usize,
    pub formats: Vec<Format>,
    pub models: Vec<Model>,
    /// Output folder (checked for writability; the caller lists the files).
    pub out: PathBuf,
}

/// A checked audit: everything [`run`] needs, loaded.
pub struct Plan {
    pub model: Fno,
    params: Params<f32>,
    norm_x: Option<UnitGaussianNormalizer>,
    norm_y: Option<UnitGaussianNormalizer>,
    /// The audited samples at the native resolution, (n, in_channels, grid...).
    inputs: FieldSet<f32>,
    /// Their indices in the data file.
    pub sample_ids: Vec<usize>,
    /// Native points per axis (the fine reference).
    pub native: usize,
    /// Audited resolutions, ascending, the native one last.
    pub resolutions: Vec<usize>,
    pub layers: Vec<usize>,
    pub formats: Vec<Format>,
    pub models: Vec<Model>,
    pub stabilizer: Stabilizer,
    pub checkpoint: PathBuf,
    pub data: PathBuf,
}

/// The output difference at one resolution for one sample.
#[derive(Clone, Debug, PartialEq)]
pub struct EndToEnd {
    pub s: usize,
    pub sample: usize,
    pub format: Format,
    /// ||y_fmt - y_fp32||_2 / ||y_fp32||_2 of the decoded output (inf: the run overflowed).
    pub precision: f64,
    /// ||y_fp32(s) - y_fp32(S)|_s||_2 / ||y_fp32(S)|_s||_2 (None at the native resolution).
    pub discretization: Option<f64>,
    /// Where the format's run overflowed, if it did.
    pub note: String,
}

/// What [`run`] measured.
pub struct Audit {
    pub rows: Vec<AuditRow>,
    pub end_to_end: Vec<EndToEnd>,
    /// The first audited layer's activation of the first sample at the coarsest resolution and
    /// at the native one (for independent checks, `--save-activation`).
    pub first: Option<(Activation, Activation)>,
}

fn bad(field: &str, msg: impl Into<String>) -> UsageError {
    UsageError::new(field, msg)
}

/// Work above which an audit is refused (about one f64 operation, in nanoseconds on one core):
/// twice a sweep's, about 3 minutes of one core. An audit is one analysis of a trained model,
/// whose every channel takes an f64 reference in double words ([`cli::transform_work`] of
/// model I) and one per format under model I; the reproduce config's estimate is about 1e11.
pub const WORK_LIMIT: f64 = 2.0 * cli::SWEEP_WORK_LIMIT;

/// Estimated work of an audit (f64-operation units, see [`cli::transform_work`]): per sample,
/// resolution, layer and channel a reference transform (computed once, shared by the precision
/// and discretization rows) and one per format and model; per sample and resolution one forward pass in fp32 and
/// one per format. A forward pass costs its dense maps (points x channel products, fp32 in every
/// run: only the spectral blocks take the format) plus per layer and channel a forward and an
/// inverse transform and the contraction over the kept modes, emulated in the formats' runs.
pub fn work(
    model: &Fno,
    samples: usize,
    resolutions: &[usize],
    layers: usize,
    formats: &[Format],
    models: &[Model],
) -> f64 {
    let cfg = &model.cfg;
    let d = cfg.dim;
    let w = cfg.width as f64;
    let dense = (cfg.in_channels + d) as f64 * cfg.lifting_channels.max(cfg.width) as f64
        + cfg.lifting_channels as f64 * w
        + cfg.n_layers as f64 * w * w * (1.0 + 2.0 * cfg.mlp_expansion)
        + w * cfg.projection_channels.max(1) as f64
        + cfg.projection_channels as f64 * cfg.out_channels as f64;
    let kept = Modes(cfg.modes.clone())
        .kept_shape()
        .iter()
        .product::<usize>() as f64;
    let mut total = 0.0;
    for &s in resolutions {
        let points = (s as f64).powi(d as i32);
        let transforms: f64 = formats.len() as f64
            * models
                .iter()
                .map(|&m| cli::transform_work(s, d, measure::ALGORITHM, m))
                .sum::<f64>()
            + cli::transform_work(s, d, measure::ALGORITHM, Model::Input);
        total += layers as f64 * w * transforms;
        let spectral = |m: Model, factor: f64| {
            cfg.n_layers as f64
                * w
                * (2.0 * cli::transform_work(s, d, measure::ALGORITHM, m) + factor * kept * w)
        };
        // The fp32 forward pass's transforms are fast FFTs: charged like model II's f64 FFT
        // (model I's cost is the double-word reference's).
        total += (1.0 + formats.len() as f64) * points * dense
            + spectral(Model::Storage, 1.0)
            + formats.len() as f64 * spectral(Model::Arithmetic, cli::EMULATED);
    }
    total * samples as f64
}

/// Check the request against the files and load what the audit needs; every failure is a
/// [`UsageError`] naming the option. Nothing is written.
pub fn prepare(req: &AuditRequest) -> Result<Plan, UsageError> {
    // The checkpoint and the model it describes.
    cli::check_input("--checkpoint", &req.checkpoint)?;
    let ckf = |e: String| bad("--checkpoint", format!("{}: {e}", req.checkpoint.display()));
    let ck = Checkpoint::<f32>::load(&req.checkpoint).map_err(|e| ckf(format!("{e:#}")))?;
    let cfg = TrainConfig::from_toml(&ck.config)
        .map_err(|e| ckf(format!("the config stored in it: {e}")))?;
    let model = Fno::new(model_config(&cfg)).map_err(ckf)?;
    model.check_params(&ck.params).map_err(ckf)?;
    let norm = |p: &str| -> Result<Option<UnitGaussianNormalizer>, UsageError> {
        if ck.tensors.keys().any(|k| k.starts_with(p)) {
            UnitGaussianNormalizer::from_tensors(&ck.tensors, p)
                .map(Some)
                .map_err(|e| ckf(format!("{e:#}")))
        } else {
            Ok(None)
        }
    };
    let (norm_x, norm_y) = (norm("norm_x")?, norm("norm_y")?);
    let mc = &model.cfg;

    // Layers.
    let layers = match &req.layers {
        None => (0..mc.n_layers).collect(),
        Some(l) => {
            let mut l = l.clone();
            l.sort_unstable();
            l.dedup();
            if let Some(&bad_l) = l.iter().find(|&&x| x >= mc.n_layers) {
                return Err(bad(
                    "--layers",
                    format!(
                        "layer {bad_l} does not exist: the model has {} spectral layers, 0..={}",
                        mc.n_layers,
                        mc.n_layers - 1
                    ),
                ));
            }
            if l.is_empty() {
                return Err(bad("--layers", "empty; give block indices such as 0,1"));
            }
            l
        }
    };

    // The data: the checkpoint's input tensor, the model's channels, a square grid.
    cli::check_input("--data", &req.data)?;
    let size = std::fs::metadata(&req.data).map_or(0, |m| m.len()) as f64;
    cli::check_memory("--data", 3.0 * size, "reading the data file")?;
    let dataf = |e: String| bad("--data", format!("{}: {e}", req.data.display()));
    let ds = Dataset::load(&req.data).map_err(|e| dataf(format!("{e:#}")))?;
    let name = &cfg.data.input;
    let t = ds.get(name).map_err(|_| {
        dataf(format!(
            "no tensor '{name}' (the checkpoint's data.input; the file has: {})",
            ds.tensors.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    })?;
    let all = FieldSet::<f32>::from_tensor(t, mc.dim)
        .map_err(|e| dataf(format!("tensor '{name}': {e:#}")))?;
    drop(ds);
    if all.channels != mc.in_channels {
        return Err(dataf(format!(
            "tensor '{name}' has {} channels (shape axes between samples and the {}-D grid); the \
             checkpoint's model takes {}: checkpoint and data do not match",
            all.channels, mc.dim, mc.in_channels
        )));
    }
    if all.grid.iter().any(|&g| g != all.grid[0]) {
        return Err(dataf(format!(
            "tensor '{name}' has grid {:?}; every axis must have the same number of points",
            all.grid
        )));
    }
    let native = all.grid[0];
    let modes = Modes(mc.modes.clone());
    modes.check_grid(&all.grid).map_err(|e| {
        dataf(format!(
            "its {native}-point grid cannot hold the model's kept modes: {e}"
        ))
    })?;
    if req.samples == 0 || req.samples > all.n {
        return Err(bad(
            "--samples",
            format!(
                "must be in 1..={} (the samples in {}), got {}",
                all.n,
                req.data.display(),
                req.samples
            ),
        ));
    }
    let first = all.n - req.samples;
    let inputs = all.select(first..all.n);
    drop(all);
    if let Some((j, v)) = inputs.data.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(dataf(format!(
            "tensor '{name}' holds {v} in sample {} (value {}); the audit needs finite inputs",
            first + j / inputs.sample_len(),
            j % inputs.sample_len()
        )));
    }
    // Point-wise statistics live on one grid: only the native one can be encoded.
    for (which, n) in [("norm_x", &norm_x), ("norm_y", &norm_y)] {
        if let Some(n) = n
            && !n.is_global()
        {
            return Err(bad(
                "--checkpoint",
                format!(
                    "its '{which}' normaliser is point-wise (fitted on the training grid), so the \
                     model cannot be run on other grids; audit a model trained with \
                     data.normalizer = \"global\" or \"none\""
                ),
            ));
        }
    }

    // Resolutions: divide the native grid (the coarse points are fine points), hold the modes.
    let train_res = cfg
        .data
        .resolution
        .or(cfg.data.subsample.map(|k| native.div_ceil(k)))
        .unwrap_or(native);
    let fits = |r: usize| modes.check_grid(&vec![r; mc.dim]);
    // The coarser grids that can be audited, finest first: native / k for every divisor k.
    let coarser: Vec<usize> = (2..native)
        .filter(|k| native % k == 0 && fits(native / k).is_ok())
        .map(|k| native / k)
        .collect();
    let mut resolutions = match &req.resolutions {
        Some(r) => r.clone(),
        None if train_res < native && native % train_res == 0 => vec![train_res],
        // Training took every k-th point of a grid with its end point (33 -> 17): not a
        // uniform periodic subgrid, so the finest coarser grid that holds the modes.
        None if train_res < native => coarser.iter().copied().take(1).collect(),
        None if native % 2 == 0 && fits(native / 2).is_ok() => vec![native / 2],
        None => vec![],
    };
    let grids_that_work = || {
        if coarser.is_empty() {
            format!("no coarser grid of {native} points holds the model's kept modes")
        } else {
            coarser
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    for &r in &resolutions {
        let field = "--resolutions";
        if r > native {
            return Err(bad(
                field,
                format!(
                    "{r} is finer than the data's native {native} points per axis (the reference)"
                ),
            ));
        }
        if native % r != 0 {
            return Err(bad(
                field,
                format!(
                    "{r} does not divide the native {native} points per axis: the coarse grid's \
                     points j/{r} must be points of the fine grid (every k-th, k = {native}/{r}); \
                     grids that work here: {}",
                    grids_that_work()
                ),
            ));
        }
        fits(r).map_err(|e| {
            bad(
                field,
                format!("{r} points per axis cannot hold the model's kept modes: {e}"),
            )
        })?;
    }
    resolutions.push(native);
    resolutions.sort_unstable();
    resolutions.dedup();

    // Memory: the model at the native grid, the captured activations of two grids (8 bytes a
    // value) with their f64 reference coefficients (16), the transforms' buffers per thread;
    // work: see [`work`].
    let points = (native as f64).powi(mc.dim as i32);
    let threads = rayon::current_num_threads() as f64;
    let need = crate::fno::budget::step_bytes(mc, 1.0, native as f64)
        + 2.0 * layers.len() as f64 * mc.width as f64 * points * (8.0 + 16.0)
        + threads * points * 16.0 * 6.0
        + 3.0 * size;
    cli::check_memory(
        "--data",
        need,
        &format!("auditing this model at the data's {native} points per axis"),
    )?;
    let fields = [
        ("--samples", req.samples as f64, 1.0),
        ("--formats", req.formats.len() as f64, 1.0),
        ("--layers", layers.len() as f64, 1.0),
    ];
    let estimate = |v: &[f64]| {
        work(
            &model,
            v[0] as usize,
            &resolutions,
            v[2] as usize,
            &req.formats[..(v[1] as usize).min(req.formats.len())],
            &req.models,
        )
    };
    let total = estimate(&[
        req.samples as f64,
        req.formats.len() as f64,
        layers.len() as f64,
    ]);
    cli::check_work(
        cli::culprit(&fields, estimate),
        total,
        WORK_LIMIT,
        "operations",
        &format!(
            "the audit's transforms and forward passes ({} samples, {} layers of width {}, grids \
             up to {native} points per axis, {} formats x {} models)",
            req.samples,
            layers.len(),
            mc.width,
            req.formats.len(),
            req.models.len()
        ),
        "audit fewer samples, layers or formats",
    )?;
    let stabilizer = policy_at(&cfg, cfg.train.epochs.saturating_sub(1)).stabilizer;
    Ok(Plan {
        model,
        params: ck.params,
        norm_x,
        norm_y,
        inputs,
        sample_ids: (first..first + req.samples).collect(),
        native,
        resolutions,
        layers,
        formats: req.formats.clone(),
        models: req.models.clone(),
        stabilizer,
        checkpoint: req.checkpoint.clone(),
        data: req.data.clone(),
    })
}

/// Relative L2 distance ||a - b|| / ||b|| (0 when both are 0).
fn rel_l2(a: &[f32], b: &[f32]) -> f64 {
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        num += (x as f64 - y as f64).powi(2);
        den += (y as f64).powi(2);
    }
    if num == 0.0 { 0.0 } else { (num / den).sqrt() }
}

/// Every `step`-th point of each channel of a (channels, grid...) field on a `grid[0]^d` grid.
fn subsample(values: &[f32], channels: usize, grid: &[usize], step: usize) -> Vec<f32> {
    let f = FieldSet {
        n: 1,
        channels,
        grid: grid.to_vec(),
        data: values.to_vec(),
    };
    f.subsample(step).data
}

/// Run the audit `plan` describes on the CPU backend (every format emulated exactly).
pub fn run(plan: &Plan) -> anyhow::Result<Audit> {
    let be = Cpu::<f32>::new();
    let model = &plan.model;
    let params = Resident::upload(&be, &plan.params);
    let d = model.cfg.dim;
    let modes = kept_modes(&Modes(model.cfg.modes.clone()));
    let fp32 = Policy {
        stabilizer: plan.stabilizer,
        ..Policy::full()
    };
    let decode = |mut y: Vec<f32>| {
        if let Some(n) = &plan.norm_y {
            n.decode(&mut y);
        }
        y
    };
    let mut rows = Vec::new();
    let mut end_to_end = Vec::new();
    let mut first = None;
    let overflow = |o: crate::fno::Overflow, s: usize, id: usize| {
        anyhow::anyhow!("the fp32 model overflowed at s = {s} on sample {id}: {o}")
    };
    for (i, &id) in plan.sample_ids.iter().enumerate() {
        // The native grid first: its activations and output are the fine reference.
        let mut fine: Option<(Vec<f32>, Vec<Activation>, Vec<measure::References>)> = None;
        for &s in plan.resolutions.iter().rev() {
            let step = plan.native / s;
            let grid = vec![s; d];
            let mut x = plan.inputs.select(i..i + 1).subsample(step).data;
            if let Some(n) = &plan.norm_x {
                n.encode(&mut x);
            }
            let (y, acts) = forward_capture(&be, model, &params, &x, &grid, &fp32, &plan.layers)
                .map_err(|o| overflow(o, s, id))?;
            let y = decode(y);
            // Each activation's references once: its precision rows, and (native grid) the
            // discretization rows of every coarser grid.
            let refs: Vec<measure::References> = acts.iter().map(measure::references).collect();
            for (a, r) in acts.iter().zip(&refs) {
                rows.extend(measure::precision_rows(
                    a,
                    r,
                    id,
                    &modes,
                    &plan.formats,
                    &plan.models,
                )?);
            }
            let disc_out = match &fine {
                None => None,
                Some((yf, af, rf)) => {
                    for ((a, r), (f, fr)) in acts.iter().zip(&refs).zip(af.iter().zip(rf)) {
                        rows.extend(measure::discretization_rows((a, r), (f, fr), id, &modes));
                    }
                    // Overwritten down to the coarsest grid (the last one run).
                    if i == 0 {
                        first = Some((acts[0].clone(), af[0].clone()));
                    }
                    let sub = subsample(yf, model.cfg.out_channels, &vec![plan.native; d], step);
                    Some(rel_l2(&y, &sub))
                }
            };
            for &fmt in &plan.formats {
                let policy = Policy::half_block(fmt, plan.stabilizer);
                let (precision, note) =
                    match forward_capture(&be, model, &params, &x, &grid, &policy, &[]) {
                        Ok((yq, _)) => (rel_l2(&decode(yq), &y), String::new()),
                        Err(o) => (f64::INFINITY, format!("overflow: {o}")),
                    };
                end_to_end.push(EndToEnd {
                    s,
                    sample: id,
                    format: fmt,
                    precision,
                    discretization: disc_out,
                    note,
                });
            }
            if fine.is_none() {
                fine = Some((y, acts, refs));
            }
        }
    }
    rows.sort_by(|a, b| {
        (
            &a.row.function,
            a.row.s,
            a.sample,
            a.row.kind,
            a.row.format,
            a.row.model,
            &a.row.mode,
        )
            .cmp(&(
                &b.row.function,
                b.row.s,
                b.sample,
                b.row.kind,
                b.row.format,
                b.row.model,
                &b.row.mode,
            ))
    });
    end_to_end.sort_by_key(|a| (a.s, a.sample, a.format));
    Ok(Audit {
        rows,
        end_to_end,
        first,
    })
}

/// The files `mpno audit --out DIR` writes, in DIR.
pub fn output_files(dir: &Path, save_activation: bool) -> Vec<PathBuf> {
    let mut names = vec![
        report::CSV,
        report::LAYERS_CSV,
        report::END_TO_END_CSV,
        report::SUMMARY,
        "audit.svg",
        "audit.png",
        "audit_ratio.svg",
        "audit_ratio.png",
    ];
    if save_activation {
        names.push(report::ACTIVATION);
    }
    names.into_iter().map(|n| dir.join(n)).collect()
}
