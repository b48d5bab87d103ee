//! Experiments: one TOML file per study in experiments/, each run writes its results into
//! figures/ (NAME.csv in the results-file contract, NAME_crossover.csv, and the resolved config
//! NAME.toml beside them).

use crate::cli::{self, UsageError};
use crate::error::{self, SweepConfig};
use crate::fft::Algorithm;
use crate::functions::{self, FunctionOptions};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

/// An error-study experiment file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorStudy {
    /// One sentence: what the study shows.
    pub description: String,
    /// Basis (fourier).
    #[serde(default = "default_basis")]
    pub basis: String,
    /// Built-in function name or expression.
    pub function: String,
    /// Dimension 1..3.
    #[serde(default = "default_dim")]
    pub dim: usize,
    /// Grid sizes, as on the command line ("2^3..2^16").
    pub sizes: String,
    /// Modes, as on the command line ("0,3").
    pub modes: String,
    /// Formats, as on the command line.
    pub formats: String,
    /// Models, as on the command line.
    pub models: String,
    /// FFT algorithm.
    #[serde(default = "default_algorithm")]
    pub algorithm: String,
    /// Seed for random function families.
    #[serde(default)]
    pub seed: u64,
}

fn default_basis() -> String {
    "fourier".into()
}
fn default_dim() -> usize {
    1
}
fn default_algorithm() -> String {
    "auto".into()
}

/// Bad experiment file or name (exit 2), or a failure while running (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    #[error(transparent)]
    Usage(#[from] UsageError),
    #[error(transparent)]
    Runtime(#[from] anyhow::Error),
}

/// Names (file stems) of the experiments in `dir`, sorted.
pub fn list(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let p = e.path();
            (p.extension()? == "toml").then(|| p.file_stem()?.to_str().map(String::from))?
        })
        .collect();
    names.sort();
    names
}

fn line_of(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| {
            let t = l.trim_start();
            t.strip_prefix(key)
                .is_some_and(|r| r.trim_start().starts_with('='))
        })
        .map_or(0, |i| i + 1)
}

/// A validated, runnable study.
pub struct Prepared {
    pub name: String,
    pub study: ErrorStudy,
    pub config: SweepConfig,
    pub function: Box<dyn functions::Function>,
}

/// Read and validate `path`; errors name the file, the line and the field.
pub fn load(path: &Path) -> Result<Prepared, UsageError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError::new(&file, format!("cannot read: {e}")))?;
    let study: ErrorStudy = toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|sp| text[..sp.start.min(text.len())].matches('\n').count() + 1);
        let at = line.map_or(String::new(), |l| format!("line {l}: "));
        UsageError::new(&file, format!("{at}{}", e.message()))
    })?;
    let field = |key: &str, e: UsageError| {
        UsageError::new(
            &format!("{file}:{} field '{key}'", line_of(&text, key)),
            e.message,
        )
    };
    if study.basis != "fourier" {
        return Err(field(
            "basis",
            UsageError::new(
                "basis",
                format!("unknown basis '{}'; allowed: fourier", study.basis),
            ),
        ));
    }
    let dim = cli::check_dim(study.dim).map_err(|e| field("dim", e))?;
    let sizes = cli::parse_sizes(&study.sizes).map_err(|e| field("sizes", e))?;
    let modes = cli::parse_modes(&study.modes, dim).map_err(|e| field("modes", e))?;
    let formats = cli::parse_formats(&study.formats).map_err(|e| field("formats", e))?;
    let models = cli::parse_models(&study.models).map_err(|e| field("models", e))?;
    let algorithm: Algorithm = study
        .algorithm
        .parse()
        .map_err(|e: String| field("algorithm", UsageError::new("algorithm", e)))?;
    cli::check_sizes(
        &sizes,
        dim,
        algorithm,
        rayon::current_num_threads(),
        cli::available_memory(),
    )
    .map_err(|e| field("sizes", e))?;
    let opts = FunctionOptions {
        lipschitz: None,
        sup: None,
        seed: study.seed,
    };
    let function = functions::parse(&study.function, dim, &opts)
        .map_err(|e| field("function", UsageError::new("function", e.to_string())))?;
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("experiment")
        .to_string();
    Ok(Prepared {
        name,
        config: SweepConfig {
            dim,
            sizes,
            modes,
            formats,
            models,
            algorithm,
            progress: false,
        },
        study,
        function,
    })
}

/// Run a prepared study, writing NAME.csv, NAME_crossover.csv and NAME.toml into `out_dir`.
/// Returns the paths written.
pub fn run(p: &Prepared, out_dir: &Path) -> Result<Vec<PathBuf>, ExperimentError> {
    let rows = error::run_sweep(p.function.as_ref(), &p.config)
        .map_err(|e| ExperimentError::Runtime(e.into()))?;
    let csv_path = out_dir.join(format!("{}.csv", p.name));
    cli::write_atomically(&csv_path, |w| {
        error::write_csv(w, &rows).map_err(Into::into)
    })?;
    let cross_path = out_dir.join(format!("{}_crossover.csv", p.name));
    cli::write_atomically(&cross_path, |w| {
        writeln!(
            w,
            "function,mode,format,model,s_star_bounds,s_star_measured"
        )?;
        for c in error::crossovers(&rows) {
            let mode: Vec<String> = c.mode.iter().map(|k| k.to_string()).collect();
            writeln!(
                w,
                "{},{},{},{},{:e},{}",
                p.function.name(),
                mode.join(":"),
                c.format,
                c.model,
                c.from_bounds,
                c.measured.map_or(String::new(), |s| s.to_string())
            )?;
        }
        Ok(())
    })?;
    let toml_path = out_dir.join(format!("{}.toml", p.name));
    let resolved = toml::to_string(&p.study).map_err(anyhow::Error::from)?;
    cli::write_atomically(&toml_path, |w| {
        writeln!(
            w,
            "# resolved config of experiments/{}.toml, written by mpno {}",
            p.name,
            env!("CARGO_PKG_VERSION")
        )?;
        w.write_all(resolved.as_bytes())?;
        Ok(())
    })?;
    Ok(vec![csv_path, cross_path, toml_path])
}

/// `mpno figure NAME`: run one experiment; an unknown name lists the known ones.
pub fn run_named(name: &str, exp_dir: &Path, out_dir: &Path) -> Result<(), ExperimentError> {
    let path = exp_dir.join(format!("{name}.toml"));
    if !path.is_file() {
        return Err(UsageError::new(
            "figure",
            format!(
                "unknown experiment '{name}'; known: {}",
                list(exp_dir).join(", ")
            ),
        )
        .into());
    }
    let p = load(&path)?;
    for f in run(&p, out_dir)? {
        println!("wrote {}", f.display());
    }
    Ok(())
}

/// `mpno reproduce`: validate every experiment first (a broken file stops before any output),
/// then run them all with a progress bar, printing where each result went.
pub fn reproduce(exp_dir: &Path, out_dir: &Path) -> Result<(), ExperimentError> {
    let names = list(exp_dir);
    if names.is_empty() {
        return Err(UsageError::new(
            "reproduce",
            format!("no experiments found in {}", exp_dir.display()),
        )
        .into());
    }
    let prepared: Vec<Prepared> = names
        .iter()
        .map(|n| load(&exp_dir.join(format!("{n}.toml"))))
        .collect::<Result<_, _>>()?;
    let pb = if std::io::stderr().is_terminal() {
        ProgressBar::new(prepared.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} reproduce [{bar:40}] {pos}/{len} {msg} ({elapsed})",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    let start = std::time::Instant::now();
    for p in &prepared {
        pb.set_message(p.name.clone());
        let t = std::time::Instant::now();
        let files = run(p, out_dir)?;
        pb.suspend(|| {
            println!(
                "{:<28} {:>6.1} s  -> {}",
                p.name,
                t.elapsed().as_secs_f64(),
                files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        });
        pb.inc(1);
    }
    pb.finish_and_clear();
    println!(
        "reproduced {} experiments in {:.1} s into {}",
        prepared.len(),
        start.elapsed().as_secs_f64(),
        out_dir.display()
    );
    Ok(())
}
