//! Experiments: one TOML file per figure or table in experiments/; running one writes its results
//! into figures/: NAME.csv (the data), NAME.svg and NAME.png (the figure drawn from it), the
//! resolved config NAME.toml, and per kind NAME_crossover.csv or NAME.md.
//!
//! The `kind` field selects what the file describes (default "sweep"):
//! - `sweep`: one function, error vs s (discretization and precision beside their bounds), in the
//!   results-file contract; the figure has one panel per model of `plot_models`, and a star where
//!   the discretization bound meets each format's precision bound (s*).
//! - `crossover`: several functions at one mode; the table of s* per function, format and model
//!   (CSV and markdown) and a grouped bar chart of log2 s*.
//! - `stats`: precision error over all modes of random inputs vs n (max and RMS over modes) beside
//!   the worst-case, RMS and probabilistic bounds.
//! - `models`: several functions in one format, one panel per precision model (e.g. what a NumPy
//!   cast measures, model I, beside true fp16 arithmetic, model III).

mod audit_study;
mod bases;
mod contraction_study;
mod figures;
pub mod gpu_report;
mod toml_list;
pub mod training;

pub use training::Session;

use crate::cli::{self, UsageError};
use crate::error::{self, Row, StatsConfig, SweepConfig};
use crate::fft::Algorithm;
use crate::functions::{self, Function, FunctionOptions};
use crate::precision::{Format, Model};
use indicatif::{ProgressBar, ProgressStyle};
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

/// A `sweep` experiment file: one function, every size, mode, format and model.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorStudy {
    /// "sweep" (the default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// One sentence: what the study shows.
    pub description: String,
    /// Figure title (default: the description).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Basis: fourier, haar, db1..db10, chebyshev, spherical.
    #[serde(default = "default_basis")]
    pub basis: String,
    /// Built-in function name or expression.
    pub function: String,
    /// Dimension 1..3.
    #[serde(default = "default_dim")]
    pub dim: usize,
    /// Grid sizes, as on the command line ("2^3..2^16").
    #[serde(deserialize_with = "toml_list::list_text")]
    pub sizes: String,
    /// Modes, as on the command line ("0,3").
    #[serde(deserialize_with = "toml_list::list_text")]
    pub modes: String,
    /// Formats, as on the command line.
    #[serde(deserialize_with = "toml_list::list_text")]
    pub formats: String,
    /// Models, as on the command line.
    #[serde(deserialize_with = "toml_list::list_text")]
    pub models: String,
    /// FFT algorithm.
    #[serde(default = "default_algorithm")]
    pub algorithm: String,
    /// Seed for random function families.
    #[serde(default)]
    pub seed: u64,
    /// The mode drawn in the figure (one of `modes`; default: the last).
    #[serde(
        default,
        deserialize_with = "toml_list::opt_list_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub plot_mode: Option<String>,
    /// Models drawn, one panel each (default: input and arithmetic, those of `models`).
    #[serde(
        default,
        deserialize_with = "toml_list::opt_list_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub plot_models: Option<String>,
    /// Formats drawn (default: all of `formats`).
    #[serde(
        default,
        deserialize_with = "toml_list::opt_list_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub plot_formats: Option<String>,
}

/// A `crossover` experiment file: s* for several functions at one mode.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CrossoverStudy {
    /// "crossover".
    pub kind: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Built-in names or expressions.
    pub functions: Vec<String>,
    /// Short labels of the functions for the figure (default: the names).
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default = "default_dim")]
    pub dim: usize,
    #[serde(deserialize_with = "toml_list::list_text")]
    pub sizes: String,
    /// One mode.
    #[serde(deserialize_with = "toml_list::list_text")]
    pub mode: String,
    #[serde(deserialize_with = "toml_list::list_text")]
    pub formats: String,
    /// Models: one bar-chart panel each.
    #[serde(deserialize_with = "toml_list::list_text")]
    pub models: String,
    #[serde(default = "default_algorithm")]
    pub algorithm: String,
    #[serde(default)]
    pub seed: u64,
}

/// A `models` experiment file: several functions in one format, one panel per model.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelsStudy {
    /// "models".
    pub kind: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub functions: Vec<String>,
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default = "default_dim")]
    pub dim: usize,
    #[serde(deserialize_with = "toml_list::list_text")]
    pub sizes: String,
    /// One mode.
    #[serde(deserialize_with = "toml_list::list_text")]
    pub mode: String,
    /// One format.
    pub format: String,
    /// Models: one panel each.
    #[serde(deserialize_with = "toml_list::list_text")]
    pub models: String,
    #[serde(default = "default_algorithm")]
    pub algorithm: String,
    #[serde(default)]
    pub seed: u64,
}

/// A `stats` experiment file: precision error over all modes of random 1-D inputs.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StatsStudy {
    /// "stats".
    pub kind: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// "noise" (independent samples uniform in [-1, 1)) or a 1-D function; random families
    /// (randsines) get seed + trial in trial number `trial`.
    pub input: String,
    /// Transform sizes n.
    #[serde(deserialize_with = "toml_list::list_text")]
    pub sizes: String,
    #[serde(deserialize_with = "toml_list::list_text")]
    pub formats: String,
    /// Models: one panel each.
    #[serde(deserialize_with = "toml_list::list_text")]
    pub models: String,
    #[serde(default = "default_algorithm")]
    pub algorithm: String,
    /// Independent inputs per size.
    pub trials: usize,
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

/// The kinds an experiment file may name.
pub const KINDS: [&str; 8] = [
    "sweep",
    "crossover",
    "stats",
    "models",
    "bases",
    "training",
    "audit",
    "contraction",
];

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
                || t.starts_with(&format!("[[{key}]]"))
        })
        .map_or(0, |i| i + 1)
}

/// One function of a multi-function study, with its figure label.
pub struct Labelled {
    pub label: String,
    pub function: Box<dyn Function>,
}

/// What a prepared experiment runs.
pub enum Plan {
    Sweep {
        study: ErrorStudy,
        config: SweepConfig,
        function: Box<dyn Function>,
        plot_mode: Vec<i64>,
        plot_models: Vec<Model>,
        plot_formats: Vec<Format>,
    },
    Crossover {
        study: CrossoverStudy,
        config: SweepConfig,
        functions: Vec<Labelled>,
    },
    Models {
        study: ModelsStudy,
        config: SweepConfig,
        functions: Vec<Labelled>,
    },
    Stats {
        study: StatsStudy,
        config: StatsConfig,
        /// None: noise.
        function: Option<String>,
    },
    /// A `sweep` in a basis other than Fourier (src/basis).
    BasisSweep {
        study: ErrorStudy,
        config: crate::basis::sweep::BasisSweepConfig,
        target: crate::basis::sweep::Target,
        plot_mode: Vec<i64>,
        plot_models: Vec<Model>,
        plot_formats: Vec<Format>,
    },
    /// The `bases` kind.
    Bases(bases::BasesPlan),
    /// The `training` kind (FNO training runs).
    Training(training::TrainingPlan),
    /// The `audit` kind (trained FNOs' spectral layers audited).
    Audit(audit_study::AuditPlan),
    /// The `contraction` kind (the spectral contraction's error against its bound).
    Contraction(contraction_study::ContractionPlan),
}

/// A validated, runnable experiment.
pub struct Prepared {
    pub name: String,
    pub plan: Plan,
}

/// Parses and validates the fields of one file, naming the file, line and field in errors.
struct Checker<'a> {
    file: String,
    text: &'a str,
}

impl Checker<'_> {
    fn field(&self, key: &str, e: UsageError) -> UsageError {
        UsageError::new(
            &format!("{}:{} field '{key}'", self.file, line_of(self.text, key)),
            e.message,
        )
    }
    fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, UsageError> {
        toml::from_str(self.text).map_err(|e| match e.span() {
            // Name the field as the checks do: FILE:LINE field 'KEY'.
            Some(sp) => {
                let (line, key) = cli::toml_field_at(self.text, sp.start);
                UsageError::new(
                    &format!("{}:{line} field '{key}'", self.file),
                    e.message().trim(),
                )
            }
            None => UsageError::new(&self.file, e.message().trim()),
        })
    }
    fn dim(&self, d: usize) -> Result<usize, UsageError> {
        cli::check_dim(d).map_err(|e| self.field("dim", e))
    }
    fn sizes(&self, s: &str, dim: usize, alg: Algorithm) -> Result<Vec<usize>, UsageError> {
        let sizes = cli::parse_sizes(s).map_err(|e| self.field("sizes", e))?;
        cli::check_sizes(
            &sizes,
            dim,
            alg,
            rayon::current_num_threads(),
            cli::available_memory(),
        )
        .map_err(|e| self.field("sizes", e))?;
        Ok(sizes)
    }
    /// The sweep's transforms (`repeats` per size, format and model) within the work limit.
    fn work(
        &self,
        sizes: &[usize],
        dim: usize,
        alg: Algorithm,
        formats: &[Format],
        models: &[Model],
        repeats: usize,
    ) -> Result<(), UsageError> {
        cli::check_sweep_work("sizes", sizes, dim, alg, formats.len(), models, repeats)
            .map_err(|e| self.field("sizes", e))
    }
    fn modes(&self, key: &str, s: &str, dim: usize) -> Result<Vec<Vec<i64>>, UsageError> {
        cli::parse_modes(s, dim).map_err(|e| self.field(key, e))
    }
    fn one_mode(&self, key: &str, s: &str, dim: usize) -> Result<Vec<i64>, UsageError> {
        let m = self.modes(key, s, dim)?;
        if m.len() != 1 {
            return Err(self.field(
                key,
                UsageError::new(key, format!("'{s}' must be exactly one mode")),
            ));
        }
        Ok(m[0].clone())
    }
    fn formats(&self, key: &str, s: &str) -> Result<Vec<Format>, UsageError> {
        cli::parse_formats(s).map_err(|e| self.field(key, e))
    }
    fn models(&self, key: &str, s: &str) -> Result<Vec<Model>, UsageError> {
        cli::parse_models(s).map_err(|e| self.field(key, e))
    }
    fn algorithm(&self, s: &str) -> Result<Algorithm, UsageError> {
        s.parse()
            .map_err(|e: String| self.field("algorithm", UsageError::new("algorithm", e)))
    }
    fn function(
        &self,
        key: &str,
        spec: &str,
        dim: usize,
        seed: u64,
    ) -> Result<Box<dyn Function>, UsageError> {
        let opts = FunctionOptions {
            lipschitz: None,
            sup: None,
            seed,
        };
        functions::parse(spec, dim, &opts)
            .map_err(|e| self.field(key, UsageError::new(key, e.to_string())))
    }
    fn labelled(
        &self,
        specs: &[String],
        labels: &[String],
        dim: usize,
        seed: u64,
    ) -> Result<Vec<Labelled>, UsageError> {
        if specs.is_empty() {
            return Err(self.field(
                "functions",
                UsageError::new("functions", "empty; give at least one function"),
            ));
        }
        if !labels.is_empty() && labels.len() != specs.len() {
            return Err(self.field(
                "labels",
                UsageError::new(
                    "labels",
                    format!(
                        "{} labels for {} functions; give one per function or none",
                        labels.len(),
                        specs.len()
                    ),
                ),
            ));
        }
        specs
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let function = self.function("functions", spec, dim, seed)?;
                let label = labels.get(i).cloned().unwrap_or_else(|| function.name());
                Ok(Labelled { label, function })
            })
            .collect()
    }
    fn kind(&self, kind: &Option<String>, expected: &str) -> Result<(), UsageError> {
        match kind.as_deref() {
            None | Some("sweep") if expected == "sweep" => Ok(()),
            Some(k) if k == expected => Ok(()),
            _ => Err(self.field(
                "kind",
                UsageError::new("kind", format!("expected '{expected}'")),
            )),
        }
    }
}

fn sweep_config(
    dim: usize,
    sizes: Vec<usize>,
    modes: Vec<Vec<i64>>,
    formats: Vec<Format>,
    models: Vec<Model>,
    algorithm: Algorithm,
) -> SweepConfig {
    SweepConfig {
        dim,
        sizes,
        modes,
        formats,
        scaled: vec![],
        models,
        algorithm,
        progress: false,
    }
}

/// Read and validate `path`; errors name the file, the line and the field.
pub fn load(path: &Path) -> Result<Prepared, UsageError> {
    let file = path.display().to_string();
    let text = crate::cli::read_input_to_string(path)
        .map_err(|e| UsageError::new(&file, format!("cannot read: {e}")))?;
    let c = Checker {
        file: file.clone(),
        text: &text,
    };
    // The kind decides the schema; read it alone first (a table parse keeps no field rules).
    let table: toml::Table = c.parse()?;
    let kind = match table.get("kind") {
        None => "sweep".to_string(),
        Some(toml::Value::String(k)) if KINDS.contains(&k.as_str()) => k.clone(),
        Some(v) => {
            return Err(c.field(
                "kind",
                UsageError::new(
                    "kind",
                    format!("unknown kind {v}; allowed: {}", KINDS.join(", ")),
                ),
            ));
        }
    };
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("experiment")
        .to_string();
    let plan = match kind.as_str() {
        "sweep" => load_sweep(&c)?,
        "bases" => bases::load_bases(&c)?,
        "training" => training::load_training(&c, path.parent().unwrap_or(Path::new(".")))?,
        "audit" => audit_study::load_audit(&c, path.parent().unwrap_or(Path::new(".")))?,
        "contraction" => contraction_study::load_contraction(&c)?,
        "crossover" => {
            let study: CrossoverStudy = c.parse()?;
            c.kind(&Some(study.kind.clone()), "crossover")?;
            let dim = c.dim(study.dim)?;
            let algorithm = c.algorithm(&study.algorithm)?;
            let sizes = c.sizes(&study.sizes, dim, algorithm)?;
            let mode = c.one_mode("mode", &study.mode, dim)?;
            let formats = c.formats("formats", &study.formats)?;
            let models = c.models("models", &study.models)?;
            let functions = c.labelled(&study.functions, &study.labels, dim, study.seed)?;
            c.work(&sizes, dim, algorithm, &formats, &models, functions.len())?;
            Plan::Crossover {
                config: sweep_config(dim, sizes, vec![mode], formats, models, algorithm),
                study,
                functions,
            }
        }
        "models" => {
            let study: ModelsStudy = c.parse()?;
            c.kind(&Some(study.kind.clone()), "models")?;
            let dim = c.dim(study.dim)?;
            let algorithm = c.algorithm(&study.algorithm)?;
            let sizes = c.sizes(&study.sizes, dim, algorithm)?;
            let mode = c.one_mode("mode", &study.mode, dim)?;
            let formats = c.formats("format", &study.format)?;
            if formats.len() != 1 {
                return Err(c.field(
                    "format",
                    UsageError::new("format", "give exactly one format"),
                ));
            }
            let models = c.models("models", &study.models)?;
            let functions = c.labelled(&study.functions, &study.labels, dim, study.seed)?;
            c.work(&sizes, dim, algorithm, &formats, &models, functions.len())?;
            Plan::Models {
                config: sweep_config(dim, sizes, vec![mode], formats, models, algorithm),
                study,
                functions,
            }
        }
        _ => {
            let study: StatsStudy = c.parse()?;
            c.kind(&Some(study.kind.clone()), "stats")?;
            let algorithm = c.algorithm(&study.algorithm)?;
            let sizes = c.sizes(&study.sizes, 1, algorithm)?;
            let formats = c.formats("formats", &study.formats)?;
            let models = c.models("models", &study.models)?;
            if study.trials == 0 {
                return Err(c.field("trials", UsageError::new("trials", "must be >= 1")));
            }
            c.work(&sizes, 1, algorithm, &formats, &models, study.trials)?;
            // Every trial's input is kept for all formats and models: the work limit allows
            // ~1e9 trials of tiny sizes, far more than fits. Blame `sizes` only when a single
            // trial would not fit either.
            let threads = rayon::current_num_threads();
            let need = error::stats_memory(&sizes, study.trials, threads);
            let one = error::stats_memory(&sizes, 1, threads);
            let field = if cli::check_memory("sizes", one, "one trial").is_err() {
                "sizes"
            } else {
                "trials"
            };
            cli::check_memory(
                field,
                need,
                &format!(
                    "{} trials of sizes up to {} (every input kept until all {} formats x {} \
                     models are done)",
                    study.trials,
                    sizes.iter().max().unwrap_or(&0),
                    formats.len(),
                    models.len()
                ),
            )
            .map_err(|e| c.field(field, e))?;
            let function = if study.input == "noise" {
                None
            } else {
                // Validate now (a bad spec stops before any output); sampled per trial later.
                c.function("input", &study.input, 1, study.seed)?;
                Some(study.input.clone())
            };
            Plan::Stats {
                config: StatsConfig {
                    sizes,
                    formats,
                    models,
                    algorithm,
                    trials: study.trials,
                },
                study,
                function,
            }
        }
    };
    Ok(Prepared { name, plan })
}

fn load_sweep(c: &Checker) -> Result<Plan, UsageError> {
    let mut study: ErrorStudy = c.parse()?;
    c.kind(&study.kind, "sweep")?;
    if study.basis != "fourier" {
        return bases::load_basis_sweep(c, study);
    }
    let dim = c.dim(study.dim)?;
    let algorithm = c.algorithm(&study.algorithm)?;
    let sizes = c.sizes(&study.sizes, dim, algorithm)?;
    let modes = c.modes("modes", &study.modes, dim)?;
    // Plain formats and scaled fp8 ones (ELEM@SCALING, models input and storage).
    let (formats, scaled) =
        cli::parse_format_list(&study.formats, dim).map_err(|e| c.field("formats", e))?;
    let models = c.models("models", &study.models)?;
    if let Some(message) = cli::scaled_without_model(&scaled, &models) {
        return Err(c.field("models", UsageError::new("models", message)));
    }
    // Work: a scaled format costs what its element format does (counted under every model: an
    // over-estimate).
    let counted: Vec<Format> = formats
        .iter()
        .copied()
        .chain(scaled.iter().map(|sf| sf.elem))
        .collect();
    c.work(&sizes, dim, algorithm, &counted, &models, 1)?;
    let function = c.function("function", &study.function, dim, study.seed)?;
    let plot_mode = match &study.plot_mode {
        Some(m) => {
            let m = c.one_mode("plot_mode", m, dim)?;
            if !modes.contains(&m) {
                return Err(c.field(
                    "plot_mode",
                    UsageError::new("plot_mode", "must be one of `modes`"),
                ));
            }
            m
        }
        None => modes.last().cloned().expect("parse_modes is non-empty"),
    };
    let (plot_models, plot_formats) = plot_choice(c, &mut study, &plot_mode, &models, &formats)?;
    Ok(Plan::Sweep {
        config: SweepConfig {
            scaled,
            ..sweep_config(dim, sizes, modes, formats, models, algorithm)
        },
        study,
        function,
        plot_mode,
        plot_models,
        plot_formats,
    })
}

/// The models and formats a sweep figure draws (`plot_models`, `plot_formats`, checked against
/// `models` and `formats`); writes the resolved choices (and `plot_mode`) into the study.
fn plot_choice(
    c: &Checker,
    study: &mut ErrorStudy,
    plot_mode: &[i64],
    models: &[Model],
    formats: &[Format],
) -> Result<(Vec<Model>, Vec<Format>), UsageError> {
    let plot_models = match &study.plot_models {
        Some(m) => {
            let m = c.models("plot_models", m)?;
            if let Some(x) = m.iter().find(|x| !models.contains(x)) {
                return Err(c.field(
                    "plot_models",
                    UsageError::new("plot_models", format!("'{x}' is not in `models`")),
                ));
            }
            m
        }
        None => {
            let m: Vec<Model> = [Model::Input, Model::Arithmetic]
                .into_iter()
                .filter(|x| models.contains(x))
                .collect();
            if m.is_empty() { models.to_vec() } else { m }
        }
    };
    let plot_formats = match &study.plot_formats {
        Some(f) => {
            let f = c.formats("plot_formats", f)?;
            if let Some(x) = f.iter().find(|x| !formats.contains(x)) {
                return Err(c.field(
                    "plot_formats",
                    UsageError::new("plot_formats", format!("'{x}' is not in `formats`")),
                ));
            }
            f
        }
        None => formats.to_vec(),
    };
    // The resolved config names what was drawn.
    study.plot_mode = Some(
        plot_mode
            .iter()
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
            .join(":"),
    );
    study.plot_models = Some(
        plot_models
            .iter()
            .map(|m| m.name())
            .collect::<Vec<_>>()
            .join(","),
    );
    study.plot_formats = Some(
        plot_formats
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(","),
    );
    Ok((plot_models, plot_formats))
}

fn runtime(e: impl Into<anyhow::Error>) -> ExperimentError {
    ExperimentError::Runtime(e.into())
}

fn write_rows(path: &Path, rows: &[Row]) -> Result<(), ExperimentError> {
    cli::write_atomically(path, |w| error::write_csv(w, rows).map_err(Into::into))?;
    Ok(())
}

fn write_resolved<T: Serialize>(out_dir: &Path, name: &str, study: &T) -> anyhow::Result<PathBuf> {
    let path = out_dir.join(format!("{name}.toml"));
    let resolved = toml::to_string(study)?;
    cli::write_atomically(&path, |w| {
        writeln!(
            w,
            "# resolved config of experiments/{name}.toml, written by mpno {}",
            env!("CARGO_PKG_VERSION")
        )?;
        w.write_all(resolved.as_bytes())?;
        Ok(())
    })?;
    Ok(path)
}

/// After the data files `data` (already written): the figure drawn from them (`NAME.svg`,
/// `NAME.png`) and the resolved config (`NAME.toml`). Returns every path, in that order.
fn figure_and_config<T: Serialize>(
    out_dir: &Path,
    name: &str,
    data: Vec<PathBuf>,
    fig: &impl crate::plot::Draw,
    study: &T,
) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = data;
    written.extend(crate::plot::save(
        fig,
        &out_dir.join(name),
        crate::plot::SIZE,
    )?);
    written.push(write_resolved(out_dir, name, study)?);
    Ok(written)
}

/// CSV of the crossovers of a set of rows (per function): the bound and measured s*, how each
/// was obtained, and the error level where the curves meet.
fn write_crossover_csv(
    path: &Path,
    per_function: &[(String, Vec<error::Crossover>)],
) -> anyhow::Result<()> {
    let opt = |x: f64| {
        if x.is_finite() {
            format!("{x:e}")
        } else {
            String::new()
        }
    };
    cli::write_atomically(path, |w| {
        let mut wr = csv::Writer::from_writer(w);
        wr.write_record([
            "function",
            "mode",
            "format",
            "model",
            "s_star_bounds",
            "bounds_how",
            "level_bounds",
            "s_star_measured",
            "measured_how",
            "level_measured",
        ])?;
        for (f, cs) in per_function {
            for c in cs {
                let mode: Vec<String> = c.mode.iter().map(|k| k.to_string()).collect();
                wr.write_record([
                    f.clone(),
                    mode.join(":"),
                    c.format_name(),
                    c.model.to_string(),
                    opt(c.bounds.s),
                    c.bounds.how.to_string(),
                    opt(c.bounds.level),
                    opt(c.measured.s),
                    c.measured.how.to_string(),
                    opt(c.measured.level),
                ])?;
            }
        }
        wr.flush()?;
        Ok(())
    })
}

fn run_sweep(f: &dyn Function, cfg: &SweepConfig) -> Result<Vec<Row>, ExperimentError> {
    error::run_sweep(f, cfg).map_err(runtime)
}

/// Run a prepared experiment, writing its files into `out_dir`. Returns the paths written.
/// Training runs and generated data are shared through `session` (see [`Session`]).
pub fn run(
    p: &Prepared,
    out_dir: &Path,
    session: &mut Session,
) -> Result<Vec<PathBuf>, ExperimentError> {
    std::fs::create_dir_all(out_dir).map_err(runtime)?;
    let name = &p.name;
    let mut written = Vec::new();
    match &p.plan {
        Plan::Sweep {
            study,
            config,
            function,
            plot_mode,
            plot_models,
            plot_formats,
        } => {
            let rows = run_sweep(function.as_ref(), config)?;
            let csv_path = out_dir.join(format!("{name}.csv"));
            write_rows(&csv_path, &rows)?;
            let cross = error::crossovers(&rows);
            let cross_path = out_dir.join(format!("{name}_crossover.csv"));
            write_crossover_csv(&cross_path, &[(function.name(), cross.clone())])?;
            let fig = figures::sweep_figure(
                study.title.as_deref().unwrap_or(&study.description),
                function.as_ref(),
                &rows,
                &cross,
                plot_mode,
                plot_models,
                plot_formats,
                &config.scaled,
            );
            written.extend(figure_and_config(
                out_dir,
                name,
                vec![csv_path, cross_path],
                &fig,
                study,
            )?);
        }
        Plan::Crossover {
            study,
            config,
            functions,
        } => {
            let mut per_function = Vec::new();
            for l in functions {
                let rows = run_sweep(l.function.as_ref(), config)?;
                per_function.push((l.function.name(), error::crossovers(&rows)));
            }
            let csv_path = out_dir.join(format!("{name}.csv"));
            write_crossover_csv(&csv_path, &per_function)?;
            let labels: Vec<String> = functions.iter().map(|l| l.label.clone()).collect();
            let md_path = out_dir.join(format!("{name}.md"));
            let md = figures::crossover_markdown(
                study.title.as_deref().unwrap_or(&study.description),
                &labels,
                &per_function,
                &config.formats,
                &config.models,
            );
            cli::write_atomically(&md_path, |w| Ok(w.write_all(md.as_bytes())?))?;
            let fig = figures::crossover_figure(
                study.title.as_deref().unwrap_or(&study.description),
                &labels,
                &per_function,
                &config.formats,
                &config.models,
            );
            written.extend(figure_and_config(
                out_dir,
                name,
                vec![csv_path, md_path],
                &fig,
                study,
            )?);
        }
        Plan::Models {
            study,
            config,
            functions,
        } => {
            let mut all = Vec::new();
            let mut per_function = Vec::new();
            for l in functions {
                let rows = run_sweep(l.function.as_ref(), config)?;
                all.extend(rows.iter().cloned());
                per_function.push((l.label.clone(), rows));
            }
            let csv_path = out_dir.join(format!("{name}.csv"));
            write_rows(&csv_path, &all)?;
            let fig = figures::models_figure(
                study.title.as_deref().unwrap_or(&study.description),
                &per_function,
                config.formats[0],
                &config.models,
                config.dim,
            );
            written.extend(figure_and_config(
                out_dir,
                name,
                vec![csv_path],
                &fig,
                study,
            )?);
        }
        Plan::BasisSweep {
            study,
            config,
            target,
            plot_mode,
            plot_models,
            plot_formats,
        } => {
            let rows = crate::basis::sweep::run(target, config).map_err(runtime)?;
            let csv_path = out_dir.join(format!("{name}.csv"));
            write_rows(&csv_path, &rows)?;
            let cross = error::crossovers(&rows);
            let cross_path = out_dir.join(format!("{name}_crossover.csv"));
            let fname = rows
                .first()
                .map_or(study.function.clone(), |r| r.function.clone());
            write_crossover_csv(&cross_path, &[(fname, cross.clone())])?;
            let fig = figures::sweep_figure_axis(
                study.title.as_deref().unwrap_or(&study.description),
                &bases::x_axis(&config.kind, study.dim),
                &bases::mode_label(&config.kind, plot_mode),
                &rows,
                &cross,
                plot_mode,
                plot_models,
                plot_formats,
                &[],
            );
            written.extend(figure_and_config(
                out_dir,
                name,
                vec![csv_path, cross_path],
                &fig,
                study,
            )?);
        }
        Plan::Bases(plan) => written.extend(bases::run_bases(plan, out_dir, name)?),
        Plan::Audit(plan) => written.extend(audit_study::run_audit(plan, out_dir, name, session)?),
        Plan::Contraction(plan) => {
            written.extend(contraction_study::run_contraction(plan, out_dir, name)?)
        }
        Plan::Training(plan) => {
            written.extend(training::run_training(plan, out_dir, name, session)?)
        }
        Plan::Stats {
            study,
            config,
            function,
        } => {
            let seed = study.seed;
            let input_name;
            let rows = match function {
                None => {
                    input_name = "noise:uniform".to_string();
                    let sample = move |n: usize, t: usize| noise(n, seed, t);
                    error::precision_stats(&input_name, &sample, config)
                }
                Some(spec) => {
                    // Trial t uses the family's instance with seed + t (the same function for
                    // deterministic families).
                    let fs: Vec<Box<dyn Function>> = (0..config.trials)
                        .map(|t| {
                            let opts = FunctionOptions {
                                lipschitz: None,
                                sup: None,
                                seed: seed + t as u64,
                            };
                            functions::parse(spec, 1, &opts).map_err(runtime)
                        })
                        .collect::<Result<_, _>>()?;
                    input_name = spec.clone();
                    let sample = |n: usize, t: usize| {
                        let f = fs[t].at_resolution(n);
                        functions::sample(f.as_deref().unwrap_or(fs[t].as_ref()), n)
                    };
                    error::precision_stats(&input_name, &sample, config)
                }
            }
            .map_err(runtime)?;
            let csv_path = out_dir.join(format!("{name}.csv"));
            cli::write_atomically(&csv_path, |w| {
                error::write_stats_csv(w, &rows).map_err(Into::into)
            })?;
            let fig = figures::stats_figure(
                study.title.as_deref().unwrap_or(&study.description),
                &rows,
                &config.formats,
                &config.models,
            );
            written.extend(figure_and_config(
                out_dir,
                name,
                vec![csv_path],
                &fig,
                study,
            )?);
        }
    }
    Ok(written)
}

/// n samples independent and uniform in [-1, 1) for trial `trial` (Xoshiro256++ seeded with
/// seed and trial: the same seed gives the same bytes).
pub fn noise(n: usize, seed: u64, trial: usize) -> Vec<f64> {
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(
        seed ^ (trial as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (n as u64) << 32,
    );
    (0..n).map(|_| rng.random::<f64>() * 2.0 - 1.0).collect()
}

/// Every file an experiment named `name` may write into `out_dir` (what each kind writes is a
/// subset).
pub fn outputs(out_dir: &Path, name: &str) -> Vec<PathBuf> {
    ["csv", "svg", "png", "toml", "md"]
        .iter()
        .map(|e| out_dir.join(format!("{name}.{e}")))
        .chain(
            [
                "_crossover.csv",
                "_epochs.csv",
                "_end_to_end.csv",
                "_ratio.svg",
                "_ratio.png",
                "_training.csv",
                "_training.svg",
                "_training.png",
            ]
            .iter()
            .map(|e| out_dir.join(format!("{name}{e}"))),
        )
        .collect()
}

/// Check, before any work, that `out_dir` (--figures) is a folder mpno can write in and that
/// none of the experiments' files there is a device, FIFO, folder or symbolic link.
fn check_outputs<'a>(
    out_dir: &Path,
    names: impl IntoIterator<Item = &'a str>,
) -> Result<(), UsageError> {
    let files: Vec<PathBuf> = names
        .into_iter()
        .flat_map(|n| outputs(out_dir, n))
        .collect();
    cli::check_output_files("--figures", out_dir, files.iter().map(PathBuf::as_path))
}

/// The experiment folder must exist (say so rather than list no experiments), and must not be
/// the results folder: each experiment's resolved copy NAME.toml would replace its source.
fn check_experiments_dir(exp_dir: &Path, out_dir: &Path) -> Result<(), UsageError> {
    if !exp_dir.is_dir() {
        return Err(UsageError::new(
            "--experiments",
            format!(
                "{} is not a folder (the experiment files, default: experiments)",
                exp_dir.display()
            ),
        ));
    }
    let same = match (
        std::fs::canonicalize(exp_dir),
        std::fs::canonicalize(out_dir),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same {
        return Err(UsageError::new(
            "--figures",
            format!(
                "{} is also the experiments folder: the resolved configs (NAME.toml) written \
                 there would replace the experiment files; give another folder (default: \
                 figures)",
                out_dir.display()
            ),
        ));
    }
    Ok(())
}

/// `mpno figure NAME`: run one experiment; an unknown name lists the known ones.
pub fn run_named(name: &str, exp_dir: &Path, out_dir: &Path) -> Result<(), ExperimentError> {
    check_experiments_dir(exp_dir, out_dir)?;
    let path = exp_dir.join(format!("{name}.toml"));
    if !path.is_file() {
        let known = list(exp_dir);
        return Err(UsageError::new(
            "figure",
            if known.is_empty() {
                format!(
                    "unknown experiment '{name}': {} holds no experiment files (*.toml)",
                    exp_dir.display()
                )
            } else {
                format!("unknown experiment '{name}'; known: {}", known.join(", "))
            },
        )
        .into());
    }
    let p = load(&path)?;
    check_outputs(out_dir, [name])?;
    let mut session = Session::default();
    if std::io::stderr().is_terminal() && matches!(p.plan, Plan::Training(_) | Plan::Audit(_)) {
        let pb = ProgressBar::new_spinner();
        pb.enable_steady_tick(std::time::Duration::from_millis(200));
        session.progress = Some(pb);
    }
    let files = run(&p, out_dir, &mut session);
    if let Some(pb) = &session.progress {
        pb.finish_and_clear();
    }
    for f in files? {
        println!("wrote {}", f.display());
    }
    Ok(())
}

/// `mpno reproduce`: validate every experiment first (a broken file stops before any output),
/// then run them all with a progress bar, printing where each result went. With
/// `skip_training` the `training` experiments (minutes of FNO training each) are left out.
pub fn reproduce(
    exp_dir: &Path,
    out_dir: &Path,
    skip_training: bool,
) -> Result<(), ExperimentError> {
    check_experiments_dir(exp_dir, out_dir)?;
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
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|p| !(skip_training && matches!(p.plan, Plan::Training(_) | Plan::Audit(_))))
        .collect();
    check_outputs(out_dir, prepared.iter().map(|p| p.name.as_str()))?;
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
    pb.enable_steady_tick(std::time::Duration::from_millis(250));
    let start = std::time::Instant::now();
    let mut session = Session::default();
    session.progress = Some(pb.clone());
    for p in &prepared {
        pb.set_message(p.name.clone());
        let t = std::time::Instant::now();
        let files = run(p, out_dir, &mut session)?;
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
        "reproduced {} experiments in {:.1} s into {}{}",
        prepared.len(),
        start.elapsed().as_secs_f64(),
        out_dir.display(),
        if session.trained + session.reused > 0 {
            format!(
                " ({} FNO training runs, {} more reused by a later experiment)",
                session.trained, session.reused
            )
        } else {
            String::new()
        }
    );
    Ok(())
}
