//! The training loop: data, normalisation, model, precision policy (with schedule), loss scaling,
//! overflow handling, Adam + StepLR, per-epoch evaluation at every test resolution, metrics and
//! checkpoints with exact resume. Generic over the [`Backend`], so the GPU trainer is this loop.

use super::audit_log::AuditLog;
use super::checkpoint::Checkpoint;

use super::config::{Factorization as FactorizationName, NormalizerKind, OnOverflow, TrainConfig};
use super::data::{self, Batches, Split, UnitGaussianNormalizer};
use super::loss::LossKind;
use super::metrics::{self, EpochRecord, MetricsLog, TestMetrics};
use super::model::{Factorization, Fno, FnoConfig, Overflow};
use super::optim::{Adam, LossScaler, StepLr};
use super::params::Params;
use super::policy::{Policy, Stabilizer};
use super::resident::{Resident, ResidentAdam};
use crate::backend::Backend;
use crate::backend::counting::{Counting, OpCount};
use crate::cli::UsageError;
use crate::precision::Format;
use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The checkpoint's `extra` key of the delayed-scaling amax histories (exact resume).
const QUANT_HISTORIES: &str = "quant_histories";

/// How a run is driven (beyond its config).
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Continue from `out_dir/checkpoint.safetensors` when it exists.
    pub resume: bool,
    /// Stop after this many epochs of this invocation (tests of interruption); None: run to the end.
    pub stop_after: Option<usize>,
    /// Draw a progress bar (only when stderr is a terminal).
    pub progress: bool,
}

/// What a finished (or stopped) run reports.
#[derive(Clone, Debug)]
pub struct RunReport {
    pub records: Vec<EpochRecord>,
    /// Parameters (scalars).
    pub n_params: usize,
    /// Peak bytes over the run: live tensors at their storage width, plus the fp32 master weights,
    /// their gradients and Adam's two moments.
    pub peak_bytes: u64,
    /// Where inf/NaN stopped the run (layer, op, global step), when `on_overflow = "stop"`.
    pub stopped: Option<(Overflow, u64)>,
    pub out_dir: PathBuf,
}

/// The model configuration a training config describes.
pub fn model_config(cfg: &TrainConfig) -> FnoConfig {
    let m = &cfg.model;
    let modes = if m.modes.len() == 1 {
        vec![m.modes[0]; m.dim]
    } else {
        m.modes.clone()
    };
    FnoConfig {
        dim: m.dim,
        in_channels: m.in_channels,
        out_channels: m.out_channels,
        width: m.width,
        modes,
        n_layers: m.n_layers,
        lifting_channels: m.lifting_channels,
        projection_channels: m.projection_channels,
        mlp_expansion: if m.use_mlp { m.mlp_expansion } else { 0.0 },
        factorization: match m.factorization {
            FactorizationName::Dense => Factorization::Dense,
            FactorizationName::Cp => Factorization::Cp {
                rank: m.rank.unwrap_or(super::config::DEFAULT_CP_RANK) as f64,
            },
        },
        positional_embedding: m.positional_embedding,
        gelu_before_last_mlp: m.gelu_before_last_mlp,
        spectral_transform: m.spectral_transform.clone(),
        contraction: m.contraction,
    }
}

/// The policy of epoch `epoch` (schedule applied).
pub fn policy_at(cfg: &TrainConfig, epoch: usize) -> Policy {
    let f = cfg.precision.policy_at(epoch);
    // Validation checked the value against the kind; a failure here is a bug.
    let stabilizer = Stabilizer::from_parts(
        cfg.precision.stabilizer.name(),
        cfg.precision.stabilizer_value,
    )
    .expect("validated stabilizer");
    Policy {
        fwd_fft: f.fwd_fft,
        contraction: f.contraction,
        inv_fft: f.inv_fft,
        mlp: f.mlp,
        stabilizer,
        seed: 0,
    }
}

fn policy_name(p: &Policy) -> String {
    format!(
        "{}/{}/{}/{}",
        p.fwd_fft,
        p.contraction,
        p.inv_fft,
        p.mlp.name()
    )
}

/// Normalisers fitted on the training split, as `[data] normalizer` says.
fn fit(
    kind: NormalizerKind,
    split: &Split<f32>,
) -> (
    Option<UnitGaussianNormalizer>,
    Option<UnitGaussianNormalizer>,
) {
    match kind {
        NormalizerKind::None => (None, None),
        NormalizerKind::Global => (
            Some(UnitGaussianNormalizer::fit_global(&split.x)),
            Some(UnitGaussianNormalizer::fit_global(&split.y)),
        ),
        NormalizerKind::Pointwise => (
            Some(UnitGaussianNormalizer::fit_pointwise(&split.x)),
            Some(UnitGaussianNormalizer::fit_pointwise(&split.y)),
        ),
    }
}

/// Predict a batch of encoded inputs (batch, in, grid...).
pub fn predict<B: Backend<T = f32>>(
    be: &B,
    model: &Fno,
    params: &Resident<B>,
    x: &[f32],
    batch: usize,
    grid: &[usize],
    policy: &Policy,
) -> Result<Vec<f32>, Overflow> {
    let mut shape = vec![batch, model.cfg.in_channels];
    shape.extend_from_slice(grid);
    let xt = be.upload(&shape, x, Format::Fp32);
    let (y, _) = model.forward(be, params, &xt, policy)?;
    Ok(be.download(&y))
}

/// Evaluate `params` on every test split (mean relative L2 and H1 in physical units).
pub fn evaluate_all<B: Backend<T = f32>>(
    be: &B,
    model: &Fno,
    params: &Resident<B>,
    tests: &[Split<f32>],
    norms: &(
        Option<UnitGaussianNormalizer>,
        Option<UnitGaussianNormalizer>,
    ),
    batch_size: usize,
    policy: &Policy,
) -> anyhow::Result<Vec<TestMetrics>> {
    tests
        .iter()
        .map(|split| {
            let grid = split.x.grid.clone();
            let mut warned = false;
            metrics::evaluate(
                split,
                batch_size,
                norms.0.as_ref(),
                norms.1.as_ref(),
                |x, b| {
                    // An overflow in evaluation (a run that skips overflowing steps, a grid
                    // whose transform overflows in the policy's format) is a NaN error,
                    // reported as such and said on stderr, not a failure of the run.
                    Ok(
                        predict(be, model, params, x, b, &grid, policy).unwrap_or_else(|o| {
                            if !std::mem::replace(&mut warned, true) {
                                eprintln!(
                                    "warning: evaluating at {} points per axis overflowed ({o}); its test \
                                     error is NaN (spectral blocks in fp32, a stabilizer or \
                                     scaled formats avoid it)",
                                    grid[0]
                                );
                            }
                            vec![
                                f32::NAN;
                                b * model.cfg.out_channels * grid.iter().product::<usize>()
                            ]
                        }),
                    )
                },
            )
        })
        .collect()
}

/// The checkpoint's file name in `train.out_dir`.
pub const CHECKPOINT: &str = "checkpoint.safetensors";
const CONFIG: &str = "config.toml";

/// The files a run writes into `train.out_dir` (the last three only with `[audit] every`).
pub const RUN_FILES: [&str; 7] = [
    CHECKPOINT,
    "metrics.csv",
    "metrics.json",
    CONFIG,
    super::audit_log::CSV,
    "audit_training.svg",
    "audit_training.png",
];

/// Check `train.out_dir` before any work: a folder mpno can write in, whose run files are
/// regular files; `resume` needs the checkpoint there; without `resume`, an earlier run's files
/// are only replaced with `force` (which removes them now, so no stale checkpoint outlives the
/// new run's first epochs).
pub fn prepare_out_dir(cfg: &TrainConfig, resume: bool, force: bool) -> Result<(), UsageError> {
    let field = "train.out_dir";
    let dir = cfg.train.out_dir.as_path();
    let files: Vec<PathBuf> = RUN_FILES.iter().map(|f| dir.join(f)).collect();
    crate::cli::check_output_files(field, dir, files.iter().map(PathBuf::as_path))?;
    // --force removes the run files and training rewrites them: neither may be the data.
    let mut inputs = vec![("data.file", cfg.data.file.as_path())];
    if let Some(t) = &cfg.data.test_file {
        inputs.push(("data.test_file", t.as_path()));
    }
    crate::cli::check_not_inputs(field, files.iter().map(PathBuf::as_path), &inputs)?;
    let ck = dir.join(CHECKPOINT);
    if resume {
        if !ck.is_file() {
            return Err(UsageError::new(
                "--resume",
                format!(
                    "no checkpoint {} to resume from; run without --resume to start training",
                    ck.display()
                ),
            ));
        }
        return Ok(());
    }
    let previous: Vec<&str> = RUN_FILES
        .iter()
        .zip(&files)
        .filter(|(_, p)| p.exists())
        .map(|(n, _)| *n)
        .collect();
    if previous.is_empty() {
        return Ok(());
    }
    if !force {
        return Err(UsageError::new(
            field,
            format!(
                "{} holds an earlier run ({}); give --resume to continue it, --force to replace it, or another folder (--out-dir)",
                dir.display(),
                previous.join(", ")
            ),
        ));
    }
    for p in files.iter().filter(|p| p.exists()) {
        std::fs::remove_file(p).map_err(|e| {
            UsageError::new(
                field,
                format!("--force: cannot remove {}: {e}", p.display()),
            )
        })?;
    }
    Ok(())
}

/// Refuse, before anything is allocated, a training or evaluation whose estimated memory (a
/// step at the largest resolution it runs at, plus the data) does not fit, naming the config
/// field whose reduction helps most (see [`super::budget`]).
pub fn check_memory(cfg: &TrainConfig) -> Result<(), UsageError> {
    let file_bytes = |p: &Path| std::fs::metadata(p).map_or(0.0, |m| m.len() as f64);
    check_memory_with_data(
        cfg,
        file_bytes(&cfg.data.file) + cfg.data.test_file.as_deref().map_or(0.0, file_bytes),
    )
}

/// [`check_memory`] with the data files' size given (`file_bytes`, before they exist: an
/// experiment's generated data).
pub fn check_memory_with_data(cfg: &TrainConfig, file_bytes: f64) -> Result<(), UsageError> {
    let mc = model_config(cfg);
    let res = cfg
        .data
        .test_resolutions
        .iter()
        .copied()
        .chain(cfg.data.resolution)
        .max()
        .unwrap_or(1) as f64;
    let batch = cfg.train.batch_size as f64;
    // The file is read whole, converted and split: about three copies at once.
    let data = 3.0 * file_bytes;
    let step = super::budget::step_bytes(&mc, batch, res);
    let mut fields = vec![
        ("model.width", mc.width as f64, 1.0),
        (
            "model.modes",
            mc.modes.iter().copied().max().unwrap_or(1) as f64,
            1.0,
        ),
        ("model.n_layers", mc.n_layers as f64, 1.0),
        ("model.lifting_channels", mc.lifting_channels as f64, 0.0),
        (
            "model.projection_channels",
            mc.projection_channels as f64,
            0.0,
        ),
        ("train.batch_size", batch, 1.0),
        ("data.resolution", res, 2.0),
    ];
    if let super::model::Factorization::Cp { rank } = mc.factorization {
        fields.push(("model.rank", rank, 1.0));
    }
    let estimate = |v: &[f64]| {
        let mut c = mc.clone();
        c.width = v[0] as usize;
        c.modes = vec![v[1] as usize; c.dim];
        c.n_layers = v[2] as usize;
        c.lifting_channels = v[3] as usize;
        c.projection_channels = v[4] as usize;
        if let Some(&r) = v.get(7) {
            c.factorization = super::model::Factorization::Cp { rank: r };
        }
        super::budget::step_bytes(&c, v[5], v[6])
    };
    let field = if data > step {
        "data.file"
    } else {
        crate::cli::culprit(&fields, estimate)
    };
    crate::cli::check_memory(
        field,
        step + data,
        &format!(
            "the model ({:.3e} parameters) and a batch of {batch} at {res} points per axis, with the data,",
            super::budget::param_count(&mc)
        ),
    )
}

/// Run (or resume) the training a config describes on backend `be`.
pub fn run<B: Backend<T = f32>>(
    be: &B,
    cfg: &TrainConfig,
    opts: &RunOptions,
) -> anyhow::Result<RunReport> {
    let out_dir = cfg.train.out_dir.clone();
    // The data first: a bad file leaves no output folder behind.
    let data = data::load::<f32>(&cfg.data_spec())?;
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("train.out_dir: cannot create {}", out_dir.display()))?;
    let mut train = data.train;
    let norms = fit(cfg.data.normalizer, &train);
    if let Some(n) = &norms.0 {
        n.encode(&mut train.x.data);
    }
    if let Some(n) = &norms.1 {
        n.encode(&mut train.y.data);
    }
    let mut model = Fno::new(model_config(cfg)).map_err(anyhow::Error::msg)?;
    model.recompute = cfg.train.recompute_activations;
    model.cp_order = cfg.train.cp_order;
    let seed = cfg.train.seed;
    let mut host: Params<f32> = model.init(seed);
    let mut adam = Adam::new(cfg.train.optimizer.into(), &host, cfg.train.weight_decay);
    let sched = StepLr::new(cfg.train.lr, cfg.train.step_size, cfg.train.gamma);
    let mut scaler = LossScaler::from_config(&cfg.precision);
    let mut log = MetricsLog::new(&out_dir);
    let mut start = 0usize;
    let mut step = 0u64;
    let ckpt_path = out_dir.join(CHECKPOINT);
    if opts.resume && ckpt_path.exists() {
        let ck = Checkpoint::restore(&ckpt_path, &mut host)
            .map_err(|e| UsageError::new("--resume", format!("{e:#}")))?;
        let changed = cfg.resume_differences(&ck.config);
        if !changed.is_empty() {
            return Err(UsageError::new(
                "--resume",
                format!(
                    "the config differs from the run's in {} ({}); an exact resume needs the \
                     same settings except train.epochs: restore them, or start a new run \
                     (another --out-dir, or --force)",
                    out_dir.display(),
                    changed.join("; ")
                ),
            )
            .into());
        }
        adam = ck
            .optimizer
            .clone()
            .context("checkpoint has no optimizer state")?;
        scaler.load_state(&ck.extra)?;
        if let Some(h) = ck.extra.get(QUANT_HISTORIES) {
            model
                .restore_quant_histories(h)
                .map_err(|e| UsageError::new("--resume", e))?;
        }
        start = ck.epoch;
        if start > cfg.train.epochs {
            // Resuming cannot untrain: say so instead of exiting 0 having done nothing.
            return Err(UsageError::new(
                "--epochs",
                format!(
                    "the run in {} has already trained {start} epochs and train.epochs is {}; \
                     give --epochs above {start} to continue it",
                    out_dir.display(),
                    cfg.train.epochs
                ),
            )
            .into());
        }
        if start == cfg.train.epochs {
            eprintln!(
                "the run in {} has already trained its {start} epochs: nothing to do (give --epochs above {start} to continue it)",
                out_dir.display()
            );
        }
        step = ck.step;
        log.records = MetricsLog::records_from_json(&ck.metrics)?;
        log.truncate(start)?;
    }
    // Weights and Adam's moments stay on the backend; they come back for checkpoints only.
    let mut params = Resident::upload(be, &host);
    drop(host);
    let mut adam = ResidentAdam::upload(be, adam);
    let mut audit = AuditLog::new(cfg, &model, &data.tests, norms.0.as_ref(), &out_dir, step)?;
    if let Some(a) = &mut audit
        && step == 0
    {
        a.record(
            be,
            &model,
            &params,
            0,
            start,
            policy_at(cfg, start).stabilizer,
        )?;
    }
    crate::cli::write_atomically(&out_dir.join(CONFIG), |f| {
        Ok(f.write_all(cfg.to_toml().as_bytes())?)
    })?;
    let loss_kind: LossKind = cfg.train.loss.into();
    let grid = train.y.grid.clone();
    let bs = cfg.train.batch_size;
    let n = train.len();
    let mut peak: u64 = 0;
    let mut stopped = None;
    let epochs_end = match opts.stop_after {
        Some(k) => (start + k).min(cfg.train.epochs),
        None => cfg.train.epochs,
    };
    let mut xb = Vec::new();
    let mut yb = Vec::new();
    // Seconds of the epochs run so far in this process, for the progress bar's estimate of
    // the time left in all (a huge train.epochs shows as days or years at the first epoch).
    let mut elapsed = (0.0f64, 0usize);
    'epochs: for epoch in start..epochs_end {
        let t0 = Instant::now();
        // Time spent auditing is not training time (samples/s, seconds per epoch).
        let (mut audit_secs, mut peak_outside_audits) = (0.0f64, 0u64);
        let policy = policy_at(cfg, epoch);
        let lr = sched.lr_at(epoch);
        let batches = Batches::new(n, bs, seed, epoch);
        let bar = progress_bar(
            opts.progress,
            Batches::per_epoch(n, bs) as u64,
            epoch,
            cfg.train.epochs,
        );
        let (mut loss_sum, mut loss_n) = (0.0, 0usize);
        let (mut skipped, mut events, mut saturated) = (0u64, 0u64, 0u64);
        be.reset_peak();
        for idx in batches {
            step += 1;
            train.x.gather_into(&idx, &mut xb);
            train.y.gather_into(&idx, &mut yb);
            let b = idx.len();
            let mut shape = vec![b, model.cfg.in_channels];
            shape.extend_from_slice(&grid);
            let xt = be.upload(&shape, &xb, Format::Fp32);
            // Stochastic rounding (stages with ~sr) draws from the seed and the global step:
            // the same seed gives the same bytes, and a resumed run continues the same streams.
            let policy = Policy {
                seed: super::quant::step_seed(seed, step),
                ..policy
            };
            let result = model
                .forward(be, &params, &xt, &policy)
                .and_then(|(y, cache)| {
                    let s = scaler.scale as f32;
                    let mut gshape = vec![b, model.cfg.out_channels];
                    gshape.extend_from_slice(&grid);
                    // On the backend: only per-sample sums travel (see Backend::rel_l2_loss, h1_loss).
                    let target = be.upload(&gshape, &yb, Format::Fp32);
                    let (loss, gt) = loss_kind.on_backend(be, &y, &target, s);
                    // The backward pass does not need the target: free it first, or it counts
                    // in the step's peak memory (it did between d0ccb26 and this change, 41 kB
                    // more at batch 10 on 32 x 32, which moved the committed 77.3 MB to 77.4).
                    drop(target);
                    let grads = model.backward(be, &params, cache, &gt, &policy)?;
                    Ok((loss, grads))
                });
            match result {
                Ok((loss, mut grads)) => {
                    let finite = scaler.unscale_on(be, &mut grads);
                    scaler.update(!finite);
                    if finite && loss.is_finite() {
                        adam.step(be, &mut params, &grads, lr);
                        loss_sum += loss * b as f64;
                        loss_n += b;
                    } else {
                        events += 1;
                        skipped += 1;
                        if cfg.precision.on_overflow == OnOverflow::Stop && !scaler.dynamic {
                            stopped = Some((
                                Overflow {
                                    layer: "parameters".into(),
                                    op: "gradient".into(),
                                    phase: "backward",
                                },
                                step,
                            ));
                        }
                    }
                }
                Err(o) => {
                    events += 1;
                    skipped += 1;
                    scaler.update(true);
                    if cfg.precision.on_overflow == OnOverflow::Stop
                        && !(scaler.dynamic && o.phase == "backward")
                    {
                        stopped = Some((o, step));
                    }
                }
            }
            saturated += model.take_quant_counts().saturated;
            if let Some(a) = &mut audit
                && a.due(step)
            {
                let t = Instant::now();
                // The audit's forward passes (at the finest test grid) are not the step's
                // memory: keep the peak so far, and start afresh after the audit.
                peak_outside_audits = peak_outside_audits.max(be.mem().peak_bytes as u64);
                a.record(be, &model, &params, step, epoch, policy.stabilizer)?;
                be.reset_peak();
                audit_secs += t.elapsed().as_secs_f64();
            }
            if let Some(bar) = &bar {
                let secs = t0.elapsed().as_secs_f64() - audit_secs;
                let left = if elapsed.1 > 0 {
                    let per_epoch = elapsed.0 / elapsed.1 as f64;
                    format!(
                        "  ~{} left in all",
                        human_seconds(per_epoch * (epochs_end - epoch) as f64)
                    )
                } else {
                    String::new()
                };
                bar.set_message(format!(
                    "loss {:.4}  {:.1} samples/s{left}",
                    loss_sum / loss_n.max(1) as f64,
                    loss_n as f64 / secs.max(1e-9)
                ));
                bar.inc(1);
            }
            if stopped.is_some() {
                break;
            }
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        be.synchronize();
        let train_secs = t0.elapsed().as_secs_f64() - audit_secs;
        elapsed = (elapsed.0 + t0.elapsed().as_secs_f64(), elapsed.1 + 1);
        // Everything the step holds (weights, gradients, Adam's moments, activations) lives
        // on the backend, at its storage width.
        let train_peak = (be.mem().peak_bytes as u64).max(peak_outside_audits);
        peak = peak.max(train_peak);
        // Zero-shot resolutions cost up to (r / r_train)^d of an epoch: only after the last one.
        let final_epoch = epoch + 1 == cfg.train.epochs;
        let splits = if final_epoch {
            &data.tests[..]
        } else {
            &data.tests[..data.tests.len().min(1)]
        };
        let test = if stopped.is_some() {
            Vec::new()
        } else {
            evaluate_all(be, &model, &params, splits, &norms, bs, &policy.nearest())?
        };
        // Saturations are counted over the training steps only.
        model.take_quant_counts();
        let rec = EpochRecord {
            epoch,
            train_loss: if loss_n > 0 {
                loss_sum / loss_n as f64
            } else {
                f64::NAN
            },
            test,
            lr,
            seconds: t0.elapsed().as_secs_f64() - audit_secs,
            samples_per_s: loss_n as f64 / train_secs.max(1e-9),
            peak_memory_bytes: train_peak,
            skipped_steps: skipped,
            overflow_events: events,
            saturated_values: saturated,
            loss_scale: scaler.scale,
            policy: policy_name(&policy),
        };
        log.push(rec)?;
        let last = epoch + 1 == cfg.train.epochs;
        let every = cfg.train.checkpoint_every;
        if stopped.is_some() {
            break 'epochs;
        }
        if last || (every > 0 && (epoch + 1) % every == 0) || epoch + 1 == epochs_end {
            let mut ck = Checkpoint::new(params.download(be));
            ck.optimizer = Some(adam.download(be, &params));
            ck.epoch = epoch + 1;
            ck.step = step;
            ck.seed = seed;
            ck.config = cfg.to_toml();
            log.flush()?;
            ck.metrics = log.to_json();
            scaler.save_state(&mut ck.extra);
            if let Some(h) = model.quant_histories() {
                ck.extra.insert(QUANT_HISTORIES.into(), h);
            }
            for (i, nrm) in [&norms.0, &norms.1].into_iter().enumerate() {
                if let Some(nrm) = nrm {
                    for (k, t) in nrm.to_tensors(if i == 0 { "norm_x" } else { "norm_y" }) {
                        ck.tensors.insert(k, t);
                    }
                }
            }
            ck.save(&ckpt_path)?;
        }
    }
    log.flush()?;
    if let Some(a) = &audit {
        a.write_figure(&format!(
            "Spectral layers over training ({}): errors, M and L of the forward-transform inputs",
            out_dir.display()
        ))?;
    }
    Ok(RunReport {
        records: log.records.clone(),
        n_params: params.numel(),
        peak_bytes: peak,
        stopped,
        out_dir,
    })
}

/// A duration for the progress bar: "45 s", "12 min", "3.2 h", "4.5 days", "2.1e3 years".
fn human_seconds(s: f64) -> String {
    const DAY: f64 = 86400.0;
    if !s.is_finite() {
        "?".into()
    } else if s < 90.0 {
        format!("{s:.0} s")
    } else if s < 5400.0 {
        format!("{:.0} min", s / 60.0)
    } else if s < 2.0 * DAY {
        format!("{:.1} h", s / 3600.0)
    } else if s < 730.0 * DAY {
        format!("{:.1} days", s / DAY)
    } else {
        format!("{:.1e} years", s / (365.25 * DAY))
    }
}

fn progress_bar(enabled: bool, len: u64, epoch: usize, epochs: usize) -> Option<ProgressBar> {
    if !enabled || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "epoch {}/{epochs} {{bar:30}} {{pos}}/{{len}} {{msg}}",
            epoch + 1
        ))
        .expect("valid template"),
    );
    Some(bar)
}

/// Evaluate a checkpoint on a data file at its resolutions (the `mpno eval` command).
pub fn eval_checkpoint<B: Backend<T = f32>>(
    be: &B,
    checkpoint: &Path,
    cfg_override: Option<&TrainConfig>,
) -> anyhow::Result<Vec<TestMetrics>> {
    let bad = |e: String| UsageError::new("--checkpoint", e);
    let ck = Checkpoint::<f32>::load(checkpoint).map_err(|e| bad(format!("{e:#}")))?;
    let cfg = match cfg_override {
        Some(c) => c.clone(),
        None => {
            let mut c = TrainConfig::from_toml(&ck.config).map_err(|e| {
                bad(format!(
                    "the config stored in {}: {e}",
                    checkpoint.display()
                ))
            })?;
            c.check_data().map_err(|e| {
                UsageError::new(
                    &e.field,
                    format!("{} (config stored in {})", e.message, checkpoint.display()),
                )
            })?;
            c
        }
    };
    check_memory(&cfg)?;
    let model = Fno::new(model_config(&cfg)).map_err(anyhow::Error::msg)?;
    model
        .check_params(&ck.params)
        .map_err(|e| bad(format!("{}: {e}", checkpoint.display())))?;
    let data = data::load::<f32>(&cfg.data_spec())?;
    let get = |p: &str| -> anyhow::Result<Option<UnitGaussianNormalizer>> {
        if ck.tensors.keys().any(|k| k.starts_with(p)) {
            Ok(Some(UnitGaussianNormalizer::from_tensors(&ck.tensors, p)?))
        } else {
            Ok(None)
        }
    };
    let norms = (
        get("norm_x").map_err(|e| bad(format!("{}: {e:#}", checkpoint.display())))?,
        get("norm_y").map_err(|e| bad(format!("{}: {e:#}", checkpoint.display())))?,
    );
    if data.tests.is_empty() {
        bail!("data.n_test: no test samples to evaluate");
    }
    // The statistics the trained config asks for must be there, of its kind: a checkpoint
    // without them would run unnormalised, silently.
    // Without --config, `cfg` is the stored config already: parse it once.
    let trained = match cfg_override {
        None => Some(cfg.data.normalizer),
        Some(_) => TrainConfig::from_toml(&ck.config)
            .ok()
            .map(|c| c.data.normalizer),
    };
    if let Some(kind) = trained {
        for (which, norm) in [("norm_x", &norms.0), ("norm_y", &norms.1)] {
            let found = match norm {
                None => NormalizerKind::None,
                Some(n) if n.is_global() => NormalizerKind::Global,
                Some(_) => NormalizerKind::Pointwise,
            };
            if found != kind {
                let name = |k: NormalizerKind| match k {
                    NormalizerKind::None => "none",
                    NormalizerKind::Global => "global",
                    NormalizerKind::Pointwise => "pointwise",
                };
                return Err(bad(format!(
                    "{}: its config says data.normalizer = \"{}\" but its '{which}' statistics \
                     are {}; the checkpoint is damaged",
                    checkpoint.display(),
                    name(kind),
                    match found {
                        NormalizerKind::None => "missing",
                        k => name(k),
                    }
                ))
                .into());
            }
        }
    }
    // Point-wise statistics hold one value per point of the grid they were fitted on: a test
    // set on another grid (or a corrupted checkpoint) cannot be encoded with them.
    for (which, norm) in [("norm_x", &norms.0), ("norm_y", &norms.1)] {
        let Some(norm) = norm.as_ref().filter(|n| !n.is_global()) else {
            continue;
        };
        for t in &data.tests {
            let set = if which == "norm_x" { &t.x } else { &t.y };
            if set.sample_len() != norm.mean.len() {
                let field = if cfg_override.is_some() {
                    "--config"
                } else {
                    "--checkpoint"
                };
                return Err(UsageError::new(
                    field,
                    format!(
                        "the checkpoint's '{which}' normaliser is point-wise with {} values per \
                         sample, but the test data on the {:?} grid has {} (channels x points): \
                         point-wise statistics apply only on the grid they were fitted on; \
                         evaluate on the training grid, or train with data.normalizer = \
                         \"global\"",
                        norm.mean.len(),
                        set.grid,
                        set.sample_len()
                    ),
                )
                .into());
            }
        }
    }
    let policy = policy_at(&cfg, cfg.train.epochs.saturating_sub(1)).nearest();
    evaluate_all(
        be,
        &model,
        &Resident::upload(be, &ck.params),
        &data.tests,
        &norms,
        cfg.train.batch_size,
        &policy,
    )
}

/// What [`time_step`] measured.
#[derive(Clone, Debug)]
pub struct StepTiming {
    /// Fastest of the timed steps, seconds.
    pub best_seconds: f64,
    /// Median of the timed steps, seconds (the upper one of an even count, as
    /// neuraloperator's anchor script takes `ts[len // 2]`), for side-by-side comparisons.
    pub median_seconds: f64,
    /// Peak bytes: live tensors at their storage width plus fp32 master weights, gradients and
    /// Adam's two moments.
    pub peak_bytes: u64,
    pub n_params: usize,
    /// Process CPU time (user + system, all threads) over the timed steps divided by their wall
    /// time: how many cores the step kept busy (2.0 = two cores throughout).
    pub cores_busy: f64,
}

/// User + system CPU seconds of this process so far, all threads.
fn process_cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return f64::NAN;
    }
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    s(u.ru_utime) + s(u.ru_stime)
}

/// The state one benchmark step runs on: seeded parameters and AdamW moments, and a seeded
/// random batch (batch, in_channels, grid...) with its target, all on the backend.
struct BenchState<B: Backend> {
    params: Resident<B>,
    adam: ResidentAdam<B>,
    x: B::Tensor,
    y: B::Tensor,
}

impl<B: Backend<T = f32>> BenchState<B> {
    fn upload(be: &B, model: &Fno, batch: usize, grid: &[usize], seed: u64) -> Self {
        let host: Params<f32> = model.init(seed);
        let adam = Adam::new(super::optim::OptimizerKind::AdamW, &host, 1e-4);
        let points: usize = grid.iter().product();
        let random = |channels: usize, trial: usize| -> Vec<f32> {
            crate::experiments::noise(batch * channels * points, seed, trial)
                .iter()
                .map(|v| *v as f32)
                .collect()
        };
        let shape = |channels: usize| {
            let mut s = vec![batch, channels];
            s.extend_from_slice(grid);
            s
        };
        let (cin, cout) = (model.cfg.in_channels, model.cfg.out_channels);
        BenchState {
            params: Resident::upload(be, &host),
            adam: ResidentAdam::upload(be, adam),
            x: be.upload(&shape(cin), &random(cin, 0), Format::Fp32),
            y: be.upload(&shape(cout), &random(cout, 1), Format::Fp32),
        }
    }

    /// One training step: forward, relative L2 loss, backward, AdamW at lr 1e-3, then wait
    /// for the backend.
    fn step(&mut self, be: &B, model: &Fno, policy: &Policy) -> Result<(), Overflow> {
        let (out, cache) = model.forward(be, &self.params, &self.x, policy)?;
        let (_, gt) = be.rel_l2_loss(&out, &self.y, 1.0);
        let grads = model.backward(be, &self.params, cache, &gt, policy)?;
        self.adam.step(be, &mut self.params, &grads, 1e-3);
        be.synchronize();
        Ok(())
    }
}

/// Time one training step (forward, relative L2 loss, backward, AdamW at lr 1e-3) of `model`
/// on a seeded random batch of shape (batch, in_channels, grid...): one warm-up step, then
/// `steps` timed ones; the minimum is reported (the machines are noisy). An overflow names the
/// step (0 = warm-up) and where it happened.
pub fn time_step<B: Backend<T = f32>>(
    be: &B,
    model: &Fno,
    policy: &Policy,
    batch: usize,
    grid: &[usize],
    steps: usize,
    seed: u64,
) -> Result<StepTiming, (usize, Overflow)> {
    let mut st = BenchState::upload(be, model, batch, grid, seed);
    be.reset_peak();
    let mut times = Vec::with_capacity(steps);
    let (mut cpu0, mut wall0) = (0.0, Instant::now());
    for i in 0..=steps {
        if i == 1 {
            (cpu0, wall0) = (process_cpu_seconds(), Instant::now());
        }
        let t = Instant::now();
        st.step(be, model, policy).map_err(|o| (i, o))?;
        if i > 0 {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    let cores_busy = (process_cpu_seconds() - cpu0) / wall0.elapsed().as_secs_f64();
    times.sort_by(f64::total_cmp);
    Ok(StepTiming {
        cores_busy,
        best_seconds: times.first().copied().unwrap_or(f64::INFINITY),
        median_seconds: times.get(times.len() / 2).copied().unwrap_or(f64::INFINITY),
        peak_bytes: be.mem().peak_bytes as u64,
        n_params: st.params.numel(),
    })
}

/// What [`count_step`] counted in one training step.
#[derive(Clone, Debug)]
pub struct StepCount {
    /// Every op of the step in call order, with the bytes it must move and its flops
    /// ([`crate::backend::counting`]).
    pub ops: Vec<OpCount>,
    /// Bytes of the tensors (GPU: buffers, op temporaries included) the backend allocated
    /// during the step ([`crate::backend::MemStats::allocated_bytes`]).
    pub allocated_bytes: u64,
}

/// Count the ops of one training step exactly as [`time_step`] runs it (same seeds, same
/// state as its first step), through [`Counting`]; nothing is timed. The setup's uploads are
/// not part of the step.
pub fn count_step<B: Backend<T = f32>>(
    be: &B,
    model: &Fno,
    policy: &Policy,
    batch: usize,
    grid: &[usize],
    seed: u64,
) -> Result<StepCount, Overflow> {
    let counting = Counting::new(be);
    let mut st = BenchState::upload(&counting, model, batch, grid, seed);
    counting.take();
    let before = be.mem().allocated_bytes;
    st.step(&counting, model, policy)?;
    Ok(StepCount {
        ops: counting.take(),
        allocated_bytes: be.mem().allocated_bytes - before,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_read_in_their_unit() {
        use super::human_seconds as h;
        assert_eq!(h(42.0), "42 s");
        assert_eq!(h(720.0), "12 min");
        assert_eq!(h(3.2 * 3600.0), "3.2 h");
        assert_eq!(h(4.5 * 86400.0), "4.5 days");
        assert_eq!(h(2100.0 * 365.25 * 86400.0), "2.1e3 years");
        assert_eq!(h(f64::INFINITY), "?");
    }
}
