//! Experiments in the bases of src/basis: a `sweep` with `basis` other than fourier, and the
//! `bases` kind (the precision floor of one format across bases, side by side).

use super::toml_list;
use super::{Checker, ErrorStudy, ExperimentError, Plan, plot_choice, runtime};
use crate::basis::spherical::SphereFunction;
use crate::basis::sweep::{self, BasisSweepConfig, Target};
use crate::basis::{BasisError, BasisKind};
use crate::cli::{self, UsageError};
use crate::error::{Kind, Row};
use crate::plot::{Dash, LegendEntry, LogLogFigure, Marker, Panel, Series, model_marker, palette};
use crate::precision::{Format, Model};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The largest nlat an experiment may ask for (the SHT table grows like nlat^3).
pub const MAX_NLAT: usize = 512;

/// A `bases` experiment file: entry i is (bases[i], functions[i], sizes[i], modes[i]).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BasesStudy {
    /// "bases".
    pub kind: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Basis per entry (fourier, haar, db1..db10, chebyshev, spherical).
    pub bases: Vec<String>,
    /// Function per entry (on [0,1]; for spherical: ylm:l=L,m=M, cap[:kappa=K], abscos).
    pub functions: Vec<String>,
    /// Sizes per entry, as on the command line.
    pub sizes: Vec<String>,
    /// One mode per entry (`3`, `2:1`, `2:0`).
    pub modes: Vec<String>,
    /// Legend labels (default "basis: function, mode").
    #[serde(default)]
    pub labels: Vec<String>,
    /// One format.
    pub format: String,
    /// Models: one panel each.
    #[serde(deserialize_with = "toml_list::list_text")]
    pub models: String,
    #[serde(default)]
    pub seed: u64,
}

/// A validated `bases` experiment.
pub struct BasesPlan {
    pub study: BasesStudy,
    /// (label, config, target) per entry.
    pub entries: Vec<(String, BasisSweepConfig, Target)>,
}

fn basis_field(c: &Checker, key: &str, e: BasisError) -> UsageError {
    match e {
        BasisError::Usage { message, .. } => c.field(key, UsageError::new(key, message)),
        other => c.field(key, UsageError::new(key, other.to_string())),
    }
}

/// Refuse, at load, sizes whose SHT plan or wavelet projection does not fit in memory (as
/// `mpno errors` does).
fn check_memory(
    c: &Checker,
    kind: &BasisKind,
    sizes: &[usize],
    dim: usize,
    models: &[Model],
    formats: usize,
) -> Result<(), UsageError> {
    sweep::check_memory(kind, sizes, dim, models, formats, cli::available_memory())
        .map_err(|e| basis_field(c, "sizes", e))
}

/// A sphere expression's finer plan (its continuous coefficients) must fit too.
fn check_expression_memory(c: &Checker, t: &Target, sizes: &[usize]) -> Result<(), UsageError> {
    match t {
        Target::Sphere(SphereFunction::Expr(_)) => {
            sweep::check_sphere_expression_memory(sizes, cli::available_memory())
                .map_err(|e| basis_field(c, "sizes", e))
        }
        _ => Ok(()),
    }
}

/// The function of a basis: on the sphere for spherical, on [0,1]^dim otherwise.
fn target(
    c: &Checker,
    key: &str,
    kind: &BasisKind,
    spec: &str,
    dim: usize,
    seed: u64,
) -> Result<Target, UsageError> {
    if *kind == BasisKind::Spherical {
        SphereFunction::parse(spec)
            .map(Target::Sphere)
            .map_err(|e| c.field(key, UsageError::new(key, e)))
    } else {
        Ok(Target::Interval(Arc::from(
            c.function(key, spec, dim, seed)?,
        )))
    }
}

fn check_models(c: &Checker, kind: &BasisKind, models: &[Model]) -> Result<(), UsageError> {
    if matches!(kind, BasisKind::Wavelet(_) | BasisKind::Spherical) {
        for &m in models {
            crate::basis::check_model(&kind.name(), m).map_err(|e| basis_field(c, "models", e))?;
        }
    }
    Ok(())
}

/// x-axis label of a basis' grid size.
pub fn x_axis(kind: &BasisKind, dim: usize) -> String {
    match kind {
        BasisKind::Fourier => "grid size s".into(),
        BasisKind::Wavelet(_) => "grid size s = 2^J (samples)".into(),
        BasisKind::Chebyshev if dim > 1 => format!(
            "N per axis ((N + 1){} Chebyshev-Lobatto points)",
            if dim == 2 { "²" } else { "³" }
        ),
        BasisKind::Chebyshev => "N (N + 1 Chebyshev-Lobatto points)".into(),
        BasisKind::Spherical => "nlat (nlat × 2 nlat Gauss-Legendre grid)".into(),
    }
}

/// The label of a mode in figures: "w = 3", "k = 3", "j:k = 3:2", "l:m = 2:0".
pub fn mode_label(kind: &BasisKind, mode: &[i64]) -> String {
    let m = mode
        .iter()
        .map(|k| k.to_string())
        .collect::<Vec<_>>()
        .join(":");
    match kind {
        BasisKind::Fourier => format!("w = {m}"),
        BasisKind::Chebyshev => format!("k = {m}"),
        BasisKind::Wavelet(_) if mode.len() > 2 => format!("j:t:k = {m}"),
        BasisKind::Wavelet(_) => format!("j:k = {m}"),
        BasisKind::Spherical => format!("l:m = {m}"),
    }
}

/// A `sweep` file whose basis is not fourier.
pub(super) fn load_basis_sweep(c: &Checker, mut study: ErrorStudy) -> Result<Plan, UsageError> {
    let kind = BasisKind::parse(&study.basis).map_err(|e| basis_field(c, "basis", e))?;
    let dim = study.dim;
    let nd = matches!(kind, BasisKind::Chebyshev | BasisKind::Wavelet(_));
    if dim != 1 && !(nd && (2..=3).contains(&dim)) {
        return Err(c.field(
            "dim",
            UsageError::new(
                "dim",
                format!(
                    "{} takes dim = 1{}",
                    kind.name(),
                    if nd {
                        ", 2 or 3"
                    } else {
                        " (fourier, chebyshev and the wavelets take 2 and 3)"
                    }
                ),
            ),
        ));
    }
    let sizes = cli::parse_sizes(&study.sizes).map_err(|e| c.field("sizes", e))?;
    // In d > 1, k means (k, ..., k), as for Fourier.
    let parse_modes = |key: &str, list: &str| {
        if dim > 1 && kind == BasisKind::Chebyshev {
            cli::parse_modes_of(key, list, dim).map_err(|e| c.field(key, e))
        } else {
            sweep::parse_modes(list).map_err(|e| basis_field(c, key, e))
        }
    };
    let modes = parse_modes("modes", &study.modes)?;
    sweep::validate(&kind, &sizes, &modes, dim, MAX_NLAT).map_err(|e| match &e {
        BasisError::Usage { field, .. } if field == "--modes" => basis_field(c, "modes", e),
        _ => basis_field(c, "sizes", e),
    })?;
    let formats = c.formats("formats", &study.formats)?;
    let models = c.models("models", &study.models)?;
    check_models(c, &kind, &models)?;
    check_memory(c, &kind, &sizes, dim, &models, formats.len())?;
    if dim > 1 && kind == BasisKind::Chebyshev {
        // The transforms run on the (2N)^d extension: the Fourier sweep's cost model.
        let ext: Vec<usize> = sizes.iter().map(|&n| 2 * n).collect();
        cli::check_sweep_work(
            "sizes",
            &ext,
            dim,
            crate::fft::Algorithm::Auto,
            formats.len(),
            &models,
            1,
        )
        .map_err(|e| c.field("sizes", e))?;
    }
    let target = target(c, "function", &kind, &study.function, dim, study.seed)?;
    check_expression_memory(c, &target, &sizes)?;
    let plot_mode = match &study.plot_mode {
        Some(m) => {
            let m = parse_modes("plot_mode", m)?;
            if m.len() != 1 || !modes.contains(&m[0]) {
                return Err(c.field(
                    "plot_mode",
                    UsageError::new("plot_mode", "must be exactly one of `modes`"),
                ));
            }
            m[0].clone()
        }
        None => modes.last().cloned().expect("parse_modes is non-empty"),
    };
    let (plot_models, plot_formats) = plot_choice(c, &mut study, &plot_mode, &models, &formats)?;
    Ok(Plan::BasisSweep {
        config: BasisSweepConfig {
            kind,
            sizes,
            modes,
            formats,
            models,
            progress: false,
        },
        study,
        target,
        plot_mode,
        plot_models,
        plot_formats,
    })
}

/// A `bases` file.
pub(super) fn load_bases(c: &Checker) -> Result<Plan, UsageError> {
    let study: BasesStudy = c.parse()?;
    c.kind(&Some(study.kind.clone()), "bases")?;
    let n = study.bases.len();
    if n == 0 {
        return Err(c.field(
            "bases",
            UsageError::new("bases", "empty; give at least one basis"),
        ));
    }
    for (key, len) in [
        ("functions", study.functions.len()),
        ("sizes", study.sizes.len()),
        ("modes", study.modes.len()),
    ] {
        if len != n {
            return Err(c.field(
                key,
                UsageError::new(
                    key,
                    format!("{len} entries for {n} bases; give one per basis"),
                ),
            ));
        }
    }
    if !study.labels.is_empty() && study.labels.len() != n {
        return Err(c.field(
            "labels",
            UsageError::new(
                "labels",
                format!("{} labels for {n} bases", study.labels.len()),
            ),
        ));
    }
    let formats = c.formats("format", &study.format)?;
    if formats.len() != 1 {
        return Err(c.field(
            "format",
            UsageError::new("format", "give exactly one format"),
        ));
    }
    let models = c.models("models", &study.models)?;
    let mut entries = Vec::with_capacity(n);
    for i in 0..n {
        let kind = BasisKind::parse(&study.bases[i]).map_err(|e| basis_field(c, "bases", e))?;
        check_models(c, &kind, &models)?;
        let sizes = cli::parse_sizes(&study.sizes[i]).map_err(|e| c.field("sizes", e))?;
        let modes = sweep::parse_modes(&study.modes[i]).map_err(|e| basis_field(c, "modes", e))?;
        if modes.len() != 1 {
            return Err(c.field("modes", UsageError::new("modes", "one mode per basis")));
        }
        sweep::validate(&kind, &sizes, &modes, 1, MAX_NLAT).map_err(|e| match &e {
            BasisError::Usage { field, .. } if field == "--modes" => basis_field(c, "modes", e),
            _ => basis_field(c, "sizes", e),
        })?;
        check_memory(c, &kind, &sizes, 1, &models, formats.len())?;
        let t = target(c, "functions", &kind, &study.functions[i], 1, study.seed)?;
        check_expression_memory(c, &t, &sizes)?;
        let label = study.labels.get(i).cloned().unwrap_or_else(|| {
            format!(
                "{}: {}, w = {}",
                kind.name(),
                study.functions[i],
                study.modes[i]
            )
        });
        entries.push((
            label,
            BasisSweepConfig {
                kind,
                sizes,
                modes,
                formats: formats.clone(),
                models: models.clone(),
                progress: false,
            },
            t,
        ));
    }
    Ok(Plan::Bases(BasesPlan { study, entries }))
}

/// Run a `bases` experiment: the rows of every entry in one CSV, and the figure.
pub(super) fn run_bases(
    plan: &BasesPlan,
    out_dir: &Path,
    name: &str,
) -> Result<Vec<PathBuf>, ExperimentError> {
    let mut all = Vec::new();
    let mut per_entry = Vec::new();
    for (label, cfg, t) in &plan.entries {
        let rows = sweep::run(t, cfg).map_err(runtime)?;
        all.extend(rows.iter().cloned());
        per_entry.push((label.clone(), rows));
    }
    let csv_path = out_dir.join(format!("{name}.csv"));
    super::write_rows(&csv_path, &all)?;
    let study = &plan.study;
    let cfg0 = &plan.entries[0].1;
    let fig = bases_figure(
        study.title.as_deref().unwrap_or(&study.description),
        &per_entry,
        cfg0.formats[0],
        &cfg0.models,
    );
    Ok(super::figure_and_config(
        out_dir,
        name,
        vec![csv_path],
        &fig,
        study,
    )?)
}

/// One panel per model; per basis (one colour each) the measured precision error (markers) and
/// its bound (solid line).
pub fn bases_figure(
    title: &str,
    per_entry: &[(String, Vec<Row>)],
    fmt: Format,
    models: &[Model],
) -> LogLogFigure {
    let mut fig = LogLogFigure::new(title);
    let mut zeros = Vec::new();
    for &model in models {
        let mut p = Panel::new(
            &format!("{fmt}, model {}: {}", model_roman(model), model.name()),
            "grid size (s; Chebyshev N; spherical nlat)",
            "error of one coefficient",
            2,
        );
        for (i, (label, rows)) in per_entry.iter().enumerate() {
            let color = palette(i);
            let prec: Vec<&Row> = rows
                .iter()
                .filter(|r| r.kind == Kind::Precision && r.model == Some(model))
                .collect();
            p.series.push(Series::line(
                color,
                Dash::Solid,
                prec.iter()
                    .filter(|r| r.bound.is_finite())
                    .map(|r| (r.s as f64, r.bound))
                    .collect(),
            ));
            p.series.push(Series::markers(
                color,
                model_marker(model),
                prec.iter()
                    .filter(|r| r.measured.is_finite() && r.measured > 0.0)
                    .map(|r| (r.s as f64, r.measured))
                    .collect(),
            ));
            for r in prec.iter().filter(|r| r.measured.is_infinite()) {
                p.overflow.push((r.s as f64, color));
            }
            let z = prec.iter().filter(|r| r.measured == 0.0).count();
            if z > 0 {
                zeros.push(format!("{label} model {}: {z} sizes", model_roman(model)));
            }
        }
        fig.panels.push(p);
    }
    fig.legend.push(LegendEntry::header("basis, coefficient"));
    for (i, (label, _)) in per_entry.iter().enumerate() {
        fig.legend.push(LegendEntry::new(
            label,
            palette(i),
            Some(Marker::Square),
            Some(Dash::Solid),
        ));
    }
    let grey = plotters::style::RGBColor(110, 110, 110);
    fig.legend.push(LegendEntry::header("symbols"));
    for &m in models {
        fig.legend.push(LegendEntry::new(
            &format!("measured, model {}", model_roman(m)),
            grey,
            Some(model_marker(m)),
            None,
        ));
    }
    fig.legend.push(LegendEntry::new(
        "precision bound",
        grey,
        None,
        Some(Dash::Solid),
    ));
    if !zeros.is_empty() {
        fig.notes.push(format!(
            "Precision error exactly 0 (not drawn): {}.",
            zeros.join("; ")
        ));
    }
    fig
}

fn model_roman(m: Model) -> &'static str {
    match m {
        Model::Input => "I",
        Model::Storage => "II",
        Model::Arithmetic => "III",
        Model::ArithmeticScaled => "III scaled",
        Model::Gemm => "G",
    }
}
