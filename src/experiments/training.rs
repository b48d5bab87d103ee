//! The `training` kind: FNO training runs on PDE data the experiment generates itself, each run a
//! base training config (as `mpno train` reads) with a few fields changed, on the CPU backend.
//!
//! A file names `datagen` (the arguments of `mpno datagen`, without `--out`), `base` (a
//! training config, relative to the experiment file) and `[[runs]]` (a `label` and the fields to
//! change, as TOML tables: `precision = { fwd_fft = "fp16" }`). It writes NAME.csv (one row per
//! run and test resolution: errors after the last epoch, time, memory, overflow), NAME_epochs.csv
//! (every epoch of every run), NAME.md (the table) and a figure chosen by `figure`:
//! - `bars`: test error, training loss, s/epoch and peak memory per run;
//! - `curves`: training loss and test error per epoch;
//! - `zeroshot`: test error against the test resolution (trained at one resolution).
//!
//! Runs are keyed by their whole resolved config: experiments of one `reproduce` that name the
//! same run (the fp32 baseline, the fp16 + tanh run) train it once.

use super::{Checker, ExperimentError, runtime};
use crate::backend::cpu::Cpu;
use crate::cli::{self, UsageError};
use crate::fno::config::TrainConfig;
use crate::fno::metrics::{EpochRecord, TestMetrics};
use crate::fno::train::{self, RunOptions, RunReport};
use crate::pde::datagen::{self, DatagenCommand};
use crate::plot::{
    BarsFigure, BarsPanel, Curve, CurvesFigure, CurvesPanel, LegendEntry, Marker, palette,
};
use clap::Parser;
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A `training` experiment file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingStudy {
    /// "training".
    pub kind: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// bars, curves or zeroshot.
    pub figure: String,
    /// Arguments of `mpno datagen` (e.g. "darcy --n 1100 --res 128 --seed 0"), without --out.
    pub datagen: String,
    /// The training config every run starts from, relative to this file's folder.
    pub base: String,
    /// Each: `label` and the config fields it changes.
    pub runs: Vec<toml::Table>,
}

/// What the figure draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FigureKind {
    Bars,
    Curves,
    ZeroShot,
}

/// One run: its label and resolved config (data.file and train.out_dir set when it runs).
#[derive(Clone, Debug)]
pub struct RunPlan {
    pub label: String,
    pub config: TrainConfig,
}

/// A validated `training` experiment.
pub struct TrainingPlan {
    pub study: TrainingStudy,
    pub figure: FigureKind,
    pub datagen: Vec<String>,
    pub runs: Vec<RunPlan>,
}

/// Data sets and finished runs shared by the experiments of one invocation, and the progress
/// bar the runs report to.
#[derive(Default)]
pub struct Session {
    dir: Option<tempfile::TempDir>,
    data: HashMap<Vec<String>, PathBuf>,
    runs: HashMap<String, Arc<RunReport>>,
    /// Runs trained and runs taken from an earlier experiment.
    pub trained: usize,
    pub reused: usize,
    pub progress: Option<ProgressBar>,
}

impl Session {
    /// The session's scratch folder (generated data, checkpoints), removed when the session
    /// ends: `mpno-reproduce-PID-XXXXXX` in the system's temporary folder. One left by a run
    /// that was killed (its PID gone) is removed here, by the next run that needs one.
    fn dir(&mut self) -> anyhow::Result<PathBuf> {
        if self.dir.is_none() {
            let tmp = std::env::temp_dir();
            cli::remove_stale(&tmp, SCRATCH_PREFIX);
            self.dir = Some(
                tempfile::Builder::new()
                    .prefix(&format!("{SCRATCH_PREFIX}{}-", std::process::id()))
                    .tempdir()?,
            );
        }
        Ok(self.dir.as_ref().expect("set above").path().to_path_buf())
    }

    pub(super) fn say(&self, msg: String) {
        if let Some(pb) = &self.progress {
            pb.set_message(msg);
        }
    }
}

/// Prefix of the sessions' scratch folders.
pub const SCRATCH_PREFIX: &str = "mpno-reproduce-";

#[derive(Parser)]
#[command(name = "datagen", no_binary_name = true)]
struct DatagenLine {
    #[command(subcommand)]
    equation: DatagenCommand,
}

/// Parse `datagen` (with `out` appended) as `mpno datagen` would.
fn datagen_command(args: &[String], out: &Path) -> Result<DatagenCommand, String> {
    let mut argv = args.to_vec();
    argv.push("--out".into());
    argv.push(out.display().to_string());
    DatagenLine::try_parse_from(argv)
        .map(|l| l.equation)
        .map_err(|e| e.to_string().lines().next().unwrap_or("").to_string())
}

/// Deep merge: tables merge key by key, anything else in `over` replaces `base`.
fn merge(base: &mut toml::Table, over: &toml::Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

const GENERATED: &str = "<generated by datagen>";

pub(super) fn load_training(c: &Checker, exp_dir: &Path) -> Result<super::Plan, UsageError> {
    let study: TrainingStudy = c.parse()?;
    c.kind(&Some(study.kind.clone()), "training")?;
    let figure = match study.figure.as_str() {
        "bars" => FigureKind::Bars,
        "curves" => FigureKind::Curves,
        "zeroshot" => FigureKind::ZeroShot,
        f => {
            return Err(c.field(
                "figure",
                UsageError::new(
                    "figure",
                    format!("unknown figure '{f}'; allowed: bars, curves, zeroshot"),
                ),
            ));
        }
    };
    let (datagen, resolution, bytes) = parse_datagen(c, "datagen", &study.datagen)?;
    let runs = resolve_runs(c, exp_dir, &study.base, &study.runs, (resolution, bytes))?;
    Ok(super::Plan::Training(TrainingPlan {
        study,
        figure,
        datagen,
        runs,
    }))
}

/// The `mpno datagen` arguments of field `field`, checked as `mpno datagen` would, the grid
/// points per axis of the data set they make and the bytes of its file.
pub(super) fn parse_datagen(
    c: &Checker,
    field: &str,
    text: &str,
) -> Result<(Vec<String>, usize, f64), UsageError> {
    let datagen: Vec<String> = text.split_whitespace().map(String::from).collect();
    if datagen
        .iter()
        .any(|a| a == "--out" || a.starts_with("--out="))
    {
        return Err(c.field(
            field,
            UsageError::new(field, "--out is chosen by the experiment; leave it out"),
        ));
    }
    let cmd = datagen_command(&datagen, Path::new("unused.safetensors"))
        .map_err(|e| c.field(field, UsageError::new(field, e)))?;
    let job = datagen::prepare(&cmd).map_err(|e| c.field(field, e))?;
    Ok((
        datagen,
        job.equation.resolution(),
        datagen::file_bytes(&job),
    ))
}

/// The `[[runs]]` of an experiment: each a `label` and the fields it changes in the training
/// config `base` (relative to `exp_dir`), resolved and validated; `file`: the grid (points per
/// axis) and the bytes of the data set they will train on.
pub(super) fn resolve_runs(
    c: &Checker,
    exp_dir: &Path,
    base: &str,
    study_runs: &[toml::Table],
    file: (usize, f64),
) -> Result<Vec<RunPlan>, UsageError> {
    let (file_resolution, file_bytes) = file;
    let base_path = exp_dir.join(base);
    let base_text = crate::cli::read_input_to_string(&base_path).map_err(|e| {
        c.field(
            "base",
            UsageError::new("base", format!("cannot read {}: {e}", base_path.display())),
        )
    })?;
    let base: toml::Table = toml::from_str(&base_text).map_err(|e| {
        c.field(
            "base",
            UsageError::new("base", format!("{}: {}", base_path.display(), e.message())),
        )
    })?;
    if study_runs.is_empty() {
        return Err(c.field(
            "runs",
            UsageError::new("runs", "empty; give at least one [[runs]] with a label"),
        ));
    }
    let mut runs: Vec<RunPlan> = Vec::new();
    for (i, r) in study_runs.iter().enumerate() {
        // Errors point at this run's `[[runs]]` line.
        let line = c
            .text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.trim_start().starts_with("[[runs]]"))
            .nth(i)
            .map_or(0, |(n, _)| n + 1);
        let at = |msg: String| UsageError::new(&format!("{}:{line} field 'runs'", c.file), msg);
        let label = match r.get("label") {
            Some(toml::Value::String(s)) if !s.trim().is_empty() => s.clone(),
            _ => {
                return Err(at(format!(
                    "run {} needs a non-empty string `label`",
                    i + 1
                )));
            }
        };
        if runs.iter().any(|p| p.label == label) {
            return Err(at(format!("label '{label}' is used twice")));
        }
        let mut over = r.clone();
        over.remove("label");
        let mut t = base.clone();
        merge(&mut t, &over);
        let data = t
            .entry("data")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(d) = data {
            d.insert("file".into(), toml::Value::String(GENERATED.into()));
        }
        let text = toml::to_string(&t).expect("a TOML table serialises");
        let config = TrainConfig::from_user_toml(&text)
            .map_err(|e| at(format!("run '{label}': {}: {}", e.field, e.message)))?;
        // The memory check of `mpno train` (a step at the largest resolution), now, before any
        // data is generated or run trained: a [[runs]] entry may set any model or batch size.
        // The data file does not exist yet: its grid and size come from the datagen
        // arguments, and `train_run` checks again with the file itself.
        let mut sized = config.clone();
        if sized.data.resolution.is_none() {
            sized.data.resolution =
                Some(file_resolution / sized.data.subsample.unwrap_or(1).max(1));
        }
        train::check_memory_with_data(&sized, file_bytes).map_err(|e| {
            // The data set is the datagen arguments' (data.file is the experiment's own).
            let field = if e.field == "data.file" {
                "the data set of `datagen` (lower its --n or --res)"
            } else {
                e.field.as_str()
            };
            at(format!("run '{label}': {field}: {}", e.message))
        })?;
        runs.push(RunPlan { label, config });
    }
    Ok(runs)
}

/// The report of `run` (trained now, or earlier in this session). With `keep`, the run's
/// folder (checkpoint, metrics, `[audit]` log) stays until the session ends, at the report's
/// `out_dir`; otherwise it is removed at once.
pub(super) fn train_run(
    session: &mut Session,
    data_file: &Path,
    run: &RunPlan,
    what: &str,
    keep: bool,
) -> Result<Arc<RunReport>, ExperimentError> {
    let mut cfg = run.config.clone();
    cfg.data.file = data_file.to_path_buf();
    cfg.train.out_dir = PathBuf::from("-");
    // Checkpoints go to a temporary folder; one at the end is enough.
    cfg.train.checkpoint_every = 0;
    let key = cfg.to_toml();
    if let Some(r) = session.runs.get(&key)
        && (!keep || r.out_dir.is_dir())
    {
        session.reused += 1;
        return Ok(r.clone());
    }
    cfg.train.out_dir = session
        .dir()
        .map_err(runtime)?
        .join(format!("run{}", session.trained));
    cfg.check_data()
        .map_err(|e| runtime(anyhow::anyhow!("run '{}': {e}", run.label)))?;
    // As at load (`resolve_runs`), now with the generated data counted.
    train::check_memory(&cfg).map_err(|e| runtime(anyhow::anyhow!("run '{}': {e}", run.label)))?;
    session.say(format!("{what}: training {}", run.label));
    let be = Cpu::<f32>::new();
    let report = train::run(&be, &cfg, &RunOptions::default()).map_err(runtime)?;
    // The checkpoint (weights and Adam moments) is not a result; free the disk now.
    if !keep {
        let _ = std::fs::remove_dir_all(&cfg.train.out_dir);
    }
    let report = Arc::new(report);
    session.runs.insert(key, report.clone());
    session.trained += 1;
    Ok(report)
}

pub(super) fn data_file(
    session: &mut Session,
    args: &[String],
    what: &str,
) -> anyhow::Result<PathBuf> {
    if let Some(p) = session.data.get(args) {
        return Ok(p.clone());
    }
    let path = session
        .dir()?
        .join(format!("data{}.safetensors", session.data.len()));
    let cmd = datagen_command(args, &path).map_err(anyhow::Error::msg)?;
    let job = datagen::prepare(&cmd).map_err(|e| anyhow::anyhow!("datagen: {e}"))?;
    session.say(format!("{what}: datagen {}", args.join(" ")));
    datagen::run(&job)?;
    session.data.insert(args.to_vec(), path.clone());
    Ok(path)
}

/// The summary of one finished run.
struct Summary<'a> {
    label: &'a str,
    cfg: &'a TrainConfig,
    report: &'a RunReport,
}

impl Summary<'_> {
    fn last(&self) -> Option<&EpochRecord> {
        self.report.records.last()
    }
    fn train_res(&self) -> usize {
        self.cfg.data.resolution.unwrap_or(0)
    }
    /// Test relative L2 at resolution r after the last epoch (NaN when not evaluated).
    fn test_l2(&self, r: usize) -> f64 {
        self.last()
            .and_then(|e| e.test.iter().find(|t| t.resolution == r))
            .map_or(f64::NAN, |t| t.l2)
    }
    fn stabilizer(&self) -> String {
        let p = &self.cfg.precision;
        let name = p.stabilizer.name();
        match p.stabilizer_param() {
            Some(v) => format!("{name}:{v}"),
            None => name.to_string(),
        }
    }
    fn schedule(&self) -> String {
        self.cfg
            .precision
            .schedule
            .iter()
            .map(|e| format!("{}:{}", e.epoch, e.policy))
            .collect::<Vec<_>>()
            .join(" ")
    }
    fn skipped(&self) -> u64 {
        self.report.records.iter().map(|r| r.skipped_steps).sum()
    }
    /// Values a scaled stage clipped to +-max of its element format, over all epochs.
    fn saturated(&self) -> u64 {
        self.report.records.iter().map(|r| r.saturated_values).sum()
    }
    fn stopped(&self) -> String {
        self.report
            .stopped
            .as_ref()
            .map_or(String::new(), |(o, step)| format!("step {step}: {o}"))
    }
    /// Mean seconds of the epochs without zero-shot evaluation (all but the last when there
    /// are several: the last evaluates every test resolution).
    fn seconds_per_epoch(&self) -> f64 {
        let r = &self.report.records;
        let n = if r.len() > 1 { r.len() - 1 } else { r.len() };
        r[..n].iter().map(|e| e.seconds).sum::<f64>() / n.max(1) as f64
    }
    fn samples_per_s(&self) -> f64 {
        let r = &self.report.records;
        r.iter().map(|e| e.samples_per_s).sum::<f64>() / r.len().max(1) as f64
    }
    fn peak_mb(&self) -> f64 {
        self.report.peak_bytes as f64 / 1e6
    }
    fn train_loss(&self) -> f64 {
        self.last().map_or(f64::NAN, |e| e.train_loss)
    }
}

fn num(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.6e}")
    } else {
        "nan".into()
    }
}

fn write_summary_csv(path: &Path, runs: &[Summary]) -> anyhow::Result<()> {
    cli::write_atomically(path, |w| {
        let mut wr = csv::Writer::from_writer(w);
        wr.write_record([
            "run",
            "policy",
            "stabilizer",
            "schedule",
            "epochs",
            "train_resolution",
            "resolution",
            "test_l2",
            "test_h1",
            "train_loss",
            "skipped_steps",
            "saturated_values",
            "stopped",
            "parameters",
            "peak_memory_mb",
            "seconds_per_epoch",
            "samples_per_s",
        ])?;
        for s in runs {
            let tests: Vec<(usize, f64, f64)> = match s.last() {
                Some(e) if !e.test.is_empty() => {
                    e.test.iter().map(|t| (t.resolution, t.l2, t.h1)).collect()
                }
                _ => vec![(s.train_res(), f64::NAN, f64::NAN)],
            };
            for (res, l2, h1) in tests {
                wr.write_record([
                    s.label.to_string(),
                    s.cfg.precision.base().to_string(),
                    s.stabilizer(),
                    s.schedule(),
                    s.report.records.len().to_string(),
                    s.train_res().to_string(),
                    res.to_string(),
                    num(l2),
                    num(h1),
                    num(s.train_loss()),
                    s.skipped().to_string(),
                    s.saturated().to_string(),
                    s.stopped(),
                    s.report.n_params.to_string(),
                    format!("{:.1}", s.peak_mb()),
                    format!("{:.2}", s.seconds_per_epoch()),
                    format!("{:.2}", s.samples_per_s()),
                ])?;
            }
        }
        wr.flush()?;
        Ok(())
    })
}

fn write_epochs_csv(path: &Path, runs: &[Summary]) -> anyhow::Result<()> {
    cli::write_atomically(path, |w| {
        let mut wr = csv::Writer::from_writer(w);
        wr.write_record([
            "run",
            "epoch",
            "policy",
            "lr",
            "train_loss",
            "resolution",
            "test_l2",
            "test_h1",
            "skipped_steps",
            "overflow_events",
            "saturated_values",
            "loss_scale",
            "peak_memory_mb",
            "seconds",
            "samples_per_s",
        ])?;
        for s in runs {
            for e in &s.report.records {
                let t = e.test.iter().find(|t| t.resolution == s.train_res());
                wr.write_record([
                    s.label.to_string(),
                    (e.epoch + 1).to_string(),
                    e.policy.clone(),
                    format!("{:e}", e.lr),
                    num(e.train_loss),
                    s.train_res().to_string(),
                    num(t.map_or(f64::NAN, |t| t.l2)),
                    num(t.map_or(f64::NAN, |t| t.h1)),
                    e.skipped_steps.to_string(),
                    e.overflow_events.to_string(),
                    e.saturated_values.to_string(),
                    format!("{}", e.loss_scale),
                    format!("{:.1}", e.peak_memory_bytes as f64 / 1e6),
                    format!("{:.2}", e.seconds),
                    format!("{:.2}", e.samples_per_s),
                ])?;
            }
        }
        wr.flush()?;
        Ok(())
    })
}

fn fmt_err(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.4}")
    } else {
        "NaN".into()
    }
}

fn markdown(plan: &TrainingPlan, runs: &[Summary]) -> String {
    let title = plan
        .study
        .title
        .as_deref()
        .unwrap_or(&plan.study.description);
    let mut s = format!("# {title}\n\n{}\n\n", plan.study.description);
    let c0 = runs[0].cfg;
    s.push_str(&format!(
        "Data: `mpno datagen {}` (generated in-process); {} train / {} test samples at {} x {}\
         {}. FNO width {}, modes {:?}, {} layers, {} parameters; {} epochs, \
         batch {}, lr {} (StepLR {} epochs x {}), {} loss, seed {}. CPU backend: low formats are \
         emulated exactly (every FFT operation rounded to the format, contraction operands and \
         results rounded, fp32 accumulation), so time per epoch measures emulation cost, not \
         hardware speed; memory counts live tensors at their storage width plus fp32 master \
         weights, gradients and Adam moments. s/epoch: mean over the epochs before the last \
         (the last also evaluates every test resolution).\n\n",
        plan.datagen.join(" "),
        c0.data.n_train,
        c0.data.n_test,
        runs[0].train_res(),
        runs[0].train_res(),
        if c0.data.test_resolutions.is_empty() {
            String::new()
        } else {
            let z: Vec<String> = c0
                .data
                .test_resolutions
                .iter()
                .map(|r| r.to_string())
                .collect();
            format!(" (zero-shot also at {})", z.join(", "))
        },
        c0.model.width,
        c0.model.modes,
        c0.model.n_layers,
        runs[0].report.n_params,
        c0.train.epochs,
        c0.train.batch_size,
        c0.train.lr,
        c0.train.step_size,
        c0.train.gamma,
        format!("{:?}", c0.train.loss).to_lowercase(),
        c0.train.seed,
    ));
    let zs: Vec<usize> = c0.data.test_resolutions.clone();
    s.push_str(&format!(
        "| run | fwd FFT / contraction / iFFT / MLPs | stabilizer | schedule | test L2 @{} |",
        runs[0].train_res()
    ));
    for r in &zs {
        s.push_str(&format!(" L2 @{r} |"));
    }
    s.push_str(" train loss | skipped steps | clipped values | s/epoch | peak MB | stopped |\n|");
    s.push_str(&"---|".repeat(11 + zs.len()));
    s.push('\n');
    for r in runs {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} |",
            r.label,
            r.cfg.precision.base(),
            r.stabilizer(),
            if r.schedule().is_empty() {
                "-".into()
            } else {
                r.schedule()
            },
            fmt_err(r.test_l2(r.train_res()))
        ));
        for z in &zs {
            s.push_str(&format!(" {} |", fmt_err(r.test_l2(*z))));
        }
        s.push_str(&format!(
            " {} | {} | {} | {:.1} | {:.1} | {} |\n",
            fmt_err(r.train_loss()),
            r.skipped(),
            r.saturated(),
            r.seconds_per_epoch(),
            r.peak_mb(),
            if r.stopped().is_empty() {
                "-".into()
            } else {
                r.stopped()
            }
        ));
    }
    s
}

fn missing_text(s: &Summary) -> String {
    if s.report.stopped.is_some() {
        "overflow (stopped)".into()
    } else if s.skipped() > 0 {
        format!("NaN ({} steps skipped)", s.skipped())
    } else {
        "NaN".into()
    }
}

fn bars_figure(title: &str, runs: &[Summary]) -> BarsFigure {
    let labels: Vec<String> = runs.iter().map(|r| r.label.to_string()).collect();
    let res = runs[0].train_res();
    let opt = |x: f64| x.is_finite().then_some(x);
    let missing: Vec<String> = runs.iter().map(missing_text).collect();
    let panel = |title: &str, y: &str, values: Vec<Option<f64>>, decimals| {
        BarsPanel::new(title, y, values, &missing, decimals)
    };
    let stabs: Vec<String> = runs.iter().map(|r| r.stabilizer()).collect();
    let same_stab = stabs.iter().all(|s| *s == stabs[0]);
    let legend: Vec<LegendEntry> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut text = format!("{}: {}", r.label, compact_policy(r));
            if !same_stab {
                text.push_str(&format!(", {}", r.stabilizer()));
            }
            LegendEntry::new(&text, palette(i), Some(Marker::Square), None)
        })
        .collect();
    let mut notes = vec![
        "Low formats are emulated on the CPU (exact rounding), so time is emulation cost; \
         memory counts tensors at their storage width."
            .to_string(),
        "A red label instead of a bar: the run overflowed (inf/NaN) and has no finite value."
            .to_string(),
    ];
    if same_stab {
        notes.insert(0, format!("Stabilizer in every run: {}.", stabs[0]));
    }
    let mut panels = vec![
        panel(
            &format!("test relative L2 at {res} x {res}"),
            "relative L2",
            runs.iter().map(|r| opt(r.test_l2(res))).collect(),
            4,
        ),
        panel(
            "training loss, last epoch",
            "loss",
            runs.iter().map(|r| opt(r.train_loss())).collect(),
            4,
        ),
        panel(
            "seconds per epoch (CPU, emulated)",
            "s",
            runs.iter().map(|r| opt(r.seconds_per_epoch())).collect(),
            1,
        ),
        panel(
            "peak memory",
            "MB",
            runs.iter().map(|r| opt(r.peak_mb())).collect(),
            1,
        ),
    ];
    // Overflow counts, each panel when a run has any: steps skipped for inf/NaN, and values
    // scaled stages clipped to their element format's max. Counts are finite even for a run
    // that ended in NaN: no red label there.
    let none = vec![String::new(); runs.len()];
    if runs.iter().any(|r| r.skipped() > 0) {
        panels.push(BarsPanel::new(
            "steps skipped (inf/NaN)",
            "steps",
            runs.iter().map(|r| Some(r.skipped() as f64)).collect(),
            &none,
            0,
        ));
    }
    if runs.iter().any(|r| r.saturated() > 0) {
        panels.push(BarsPanel::new(
            "values clipped to max (scaled stages), millions",
            "values / 1e6",
            runs.iter()
                .map(|r| Some(r.saturated() as f64 / 1e6))
                .collect(),
            &none,
            2,
        ));
    }
    BarsFigure {
        title: title.into(),
        categories: labels,
        colors: (0..runs.len()).map(palette).collect(),
        panels,
        legend: std::iter::once(LegendEntry::header("fwd FFT/contr./iFFT"))
            .chain(legend)
            .collect(),
        notes,
        legend_width: 260,
    }
}

/// The policy in a few characters: "fp16 block" when the three stages agree, else
/// "fwd/contr./iFFT"; "+ fp16 MLPs" when the MLPs are not fp32; a schedule as such.
fn compact_policy(r: &Summary) -> String {
    if !r.schedule().is_empty() {
        return format!("schedule from {}", r.cfg.precision.base().fwd_fft);
    }
    let f = r.cfg.precision.base();
    let mut s = if f.fwd_fft == f.contraction && f.contraction == f.inv_fft {
        // A scaled form ("e4m3@tensor~sr") is long enough alone for the legend.
        let stage = f.fwd_fft.to_string();
        if stage.contains('@') {
            stage
        } else {
            format!("{stage} block")
        }
    } else {
        format!("{}/{}/{}", f.fwd_fft, f.contraction, f.inv_fft)
    };
    if f.mlp != crate::precision::Format::Fp32 {
        s.push_str(&format!(" + {} MLPs", f.mlp));
    }
    s
}

fn curves_figure(title: &str, runs: &[Summary], zero_shot: bool) -> CurvesFigure {
    let markers = [
        Marker::Circle,
        Marker::Square,
        Marker::Triangle,
        Marker::Diamond,
    ];
    let curve = |i: usize, points: Vec<(f64, f64)>| Curve {
        color: palette(i),
        marker: markers[i % markers.len()],
        points,
    };
    let panels = if zero_shot {
        let res = runs[0].train_res();
        // After the last epoch, one point per test resolution.
        let per_resolution = |f: &dyn Fn(&TestMetrics) -> f64| -> Vec<Curve> {
            runs.iter()
                .enumerate()
                .map(|(i, r)| {
                    let pts = r
                        .last()
                        .map(|e| e.test.iter().map(|t| (t.resolution as f64, f(t))).collect())
                        .unwrap_or_default();
                    curve(i, pts)
                })
                .collect()
        };
        vec![
            CurvesPanel {
                title: format!("trained at {res} x {res}: test relative L2"),
                x_label: "test resolution (points per axis)".into(),
                y_label: "relative L2".into(),
                log2_x: true,
                curves: per_resolution(&|t| t.l2),
            },
            CurvesPanel {
                title: "test relative H1".into(),
                x_label: "test resolution (points per axis)".into(),
                y_label: "relative H1".into(),
                log2_x: true,
                curves: per_resolution(&|t| t.h1),
            },
        ]
    } else {
        let per_epoch = |f: &dyn Fn(&Summary, &EpochRecord) -> f64| -> Vec<Curve> {
            runs.iter()
                .enumerate()
                .map(|(i, r)| {
                    curve(
                        i,
                        r.report
                            .records
                            .iter()
                            .map(|e| ((e.epoch + 1) as f64, f(r, e)))
                            .collect(),
                    )
                })
                .collect()
        };
        let res = runs[0].train_res();
        vec![
            CurvesPanel {
                title: "training loss".into(),
                x_label: "epoch".into(),
                y_label: "relative L2 loss".into(),
                log2_x: false,
                curves: per_epoch(&|_, e| e.train_loss),
            },
            CurvesPanel {
                title: format!("test relative L2 at {res} x {res}"),
                x_label: "epoch".into(),
                y_label: "relative L2".into(),
                log2_x: false,
                curves: per_epoch(&|r, e| {
                    e.test
                        .iter()
                        .find(|t| t.resolution == r.train_res())
                        .map_or(f64::NAN, |t| t.l2)
                }),
            },
        ]
    };
    let legend = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut text = r.label.to_string();
            if r.report.stopped.is_some() || !r.test_l2(r.train_res()).is_finite() {
                text.push_str(" (no finite error)");
            }
            LegendEntry::new(
                &text,
                palette(i),
                Some(markers[i % markers.len()]),
                Some(crate::plot::Dash::Solid),
            )
        })
        .collect();
    CurvesFigure {
        title: title.into(),
        panels,
        legend,
        notes: vec![
            "Runs that overflowed have no finite points and are named in the legend.".into(),
        ],
        legend_width: 230,
    }
}

/// Generate (or reuse) the data `datagen` names and train (or reuse) every run on it, in order;
/// `keep` as in [`train_run`].
pub(super) fn train_runs(
    session: &mut Session,
    datagen: &[String],
    runs: &[RunPlan],
    name: &str,
    keep: bool,
) -> Result<Vec<Arc<RunReport>>, ExperimentError> {
    let file = data_file(session, datagen, name).map_err(runtime)?;
    let mut reports = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        let what = format!("{name} {}/{}", i + 1, runs.len());
        reports.push(train_run(session, &file, r, &what, keep)?);
    }
    Ok(reports)
}

/// Run every run of `plan` (reusing runs of this session) and write its files.
pub fn run_training(
    plan: &TrainingPlan,
    out_dir: &Path,
    name: &str,
    session: &mut Session,
) -> Result<Vec<PathBuf>, ExperimentError> {
    let reports = train_runs(session, &plan.datagen, &plan.runs, name, false)?;
    let runs: Vec<Summary> = plan
        .runs
        .iter()
        .zip(&reports)
        .map(|(r, rep)| Summary {
            label: &r.label,
            cfg: &r.config,
            report: rep,
        })
        .collect();
    let mut written = Vec::new();
    let csv_path = out_dir.join(format!("{name}.csv"));
    write_summary_csv(&csv_path, &runs).map_err(runtime)?;
    let epochs_path = out_dir.join(format!("{name}_epochs.csv"));
    write_epochs_csv(&epochs_path, &runs).map_err(runtime)?;
    let md_path = out_dir.join(format!("{name}.md"));
    let md = markdown(plan, &runs);
    cli::write_atomically(&md_path, |w| Ok(w.write_all(md.as_bytes())?)).map_err(runtime)?;
    let title = plan
        .study
        .title
        .as_deref()
        .unwrap_or(&plan.study.description);
    let stem = out_dir.join(name);
    let figs = match plan.figure {
        FigureKind::Bars => crate::plot::save(&bars_figure(title, &runs), &stem, crate::plot::SIZE),
        FigureKind::Curves => crate::plot::save(
            &curves_figure(title, &runs, false),
            &stem,
            crate::plot::SIZE,
        ),
        FigureKind::ZeroShot => {
            crate::plot::save(&curves_figure(title, &runs, true), &stem, crate::plot::SIZE)
        }
    }
    .map_err(runtime)?;
    written.push(csv_path);
    written.push(epochs_path);
    written.push(md_path);
    written.extend(figs);
    written.push(super::write_resolved(out_dir, name, &plan.study).map_err(runtime)?);
    Ok(written)
}
