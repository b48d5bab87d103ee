use crate::bounds;
use crate::fft::{self, Algorithm, Complex};
use crate::functions::{self, Function};
use crate::precision::{Format, Model, ScaledFormat};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use std::collections::HashMap;
use std::fmt;

/// What a row measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Continuous coefficient vs DFT on the grid.
    Discretization,
    /// DFT under a precision model vs the f64 DFT.
    Precision,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Discretization => "discretization",
            Kind::Precision => "precision",
        })
    }
}

/// One row of the results-file contract (docs/results-files.md), plus three trailing columns.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub basis: String,
    pub function: String,
    pub dim: usize,
    pub s: usize,
    /// Integer frequency per axis (written joined by ':').
    pub mode: Vec<i64>,
    pub kind: Kind,
    /// fp64 for discretization rows; the element format of a scaled-format row.
    pub format: Format,
    /// The scaled format of a scaled-format row (`format` is then its element format, and the
    /// `format` column carries the scaled name, e.g. `e4m3@mx32`); None otherwise.
    pub scaled: Option<ScaledFormat>,
    /// None for discretization rows.
    pub model: Option<Model>,
    pub measured: f64,
    pub bound: f64,
    pub lower_bound: Option<f64>,
    /// Probabilistic companion bound (precision rows, model I part), when defined.
    pub prob_bound: Option<f64>,
    /// What the bound rests on: for discretization rows how L and M were obtained
    /// ([`crate::functions::ConstantsSource::tag`]: exact, bound, interval, user,
    /// user+interval); `samples` for precision rows, whose bounds use the sampled values only.
    pub constants: String,
    /// Empty, or why the bound is infinite / the measurement is a range failure, and how the
    /// continuous coefficient was obtained when not in closed form.
    pub note: String,
}

impl Row {
    /// measured / bound (0 when the bound is infinite and the measurement finite, or when the
    /// measurement is 0: a zero error meets any bound, including a zero one).
    pub fn ratio(&self) -> f64 {
        if self.measured == 0.0 {
            0.0
        } else {
            self.measured / self.bound
        }
    }
    /// The `format` column: the scaled name for scaled-format rows, else the format's name.
    pub fn format_name(&self) -> String {
        self.scaled
            .map_or_else(|| self.format.to_string(), |s| s.name())
    }
    /// The mode as written in result files: entries joined by ':'.
    pub fn mode_string(&self) -> String {
        self.mode
            .iter()
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
            .join(":")
    }
}

/// A validated sweep request.
#[derive(Clone, Debug)]
pub struct SweepConfig {
    pub dim: usize,
    pub sizes: Vec<usize>,
    pub modes: Vec<Vec<i64>>,
    pub formats: Vec<Format>,
    /// Scaled formats (src/precision/scaled.rs); measured under the models of `models` that
    /// take them (`fft::takes_scaled`: input, storage, gemm; channel scaling under input only),
    /// the others skipped.
    pub scaled: Vec<ScaledFormat>,
    pub models: Vec<Model>,
    pub algorithm: Algorithm,
    /// Show a progress bar (only drawn when stderr is a terminal).
    pub progress: bool,
}

/// Errors a sweep can meet after validation (bad samples).
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("--function: '{function}' is {value} at x = {at:?} on the s = {s} grid")]
    NonFinite {
        function: String,
        value: f64,
        at: Vec<f64>,
        s: usize,
    },
    #[error("fft: {0}")]
    Fft(#[from] fft::FftError),
}

struct Grid {
    s: usize,
    reference: Vec<Complex<f64>>,
    samples: Vec<f64>,
    mean_abs: f64,
    max_abs: f64,
}

fn flat_index(mode: &[i64], s: usize) -> usize {
    mode.iter()
        .fold(0usize, |acc, &k| acc * s + k.rem_euclid(s as i64) as usize)
}

fn grid_point(idx: usize, s: usize, d: usize) -> Vec<f64> {
    let mut x = vec![0.0; d];
    let mut r = idx;
    for a in (0..d).rev() {
        x[a] = (r % s) as f64 / s as f64;
        r /= s;
    }
    x
}

fn sample_grid(f: &dyn Function, s: usize, d: usize) -> Result<Grid, SweepError> {
    let samples = functions::sample(f, s);
    if let Some(i) = samples.iter().position(|v| !v.is_finite()) {
        return Err(SweepError::NonFinite {
            function: f.name(),
            value: samples[i],
            at: grid_point(i, s, d),
            s,
        });
    }
    let shape = vec![s; d];
    let reference = fft::reference_f64(&samples, &shape);
    let n = samples.len() as f64;
    let mean_abs = samples.iter().map(|v| v.abs()).sum::<f64>() / n;
    let max_abs = samples.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    Ok(Grid {
        s,
        reference,
        samples,
        mean_abs,
        max_abs,
    })
}

/// Run the sweep: every size, mode, format and model, in parallel. Rows are sorted by
/// (s, mode, kind, format, model).
pub fn run_sweep(f: &dyn Function, cfg: &SweepConfig) -> Result<Vec<Row>, SweepError> {
    let d = cfg.dim;
    let scaled_jobs: Vec<(&ScaledFormat, Model)> = cfg
        .scaled
        .iter()
        .flat_map(|sf| {
            cfg.models
                .iter()
                .filter(|&&m| fft::takes_scaled(sf, m))
                .map(move |&m| (sf, m))
        })
        .collect();
    let jobs_per_size = 1 + cfg.formats.len() * cfg.models.len() + scaled_jobs.len();
    let pb = if cfg.progress {
        let pb = ProgressBar::new((cfg.sizes.len() * jobs_per_size) as u64);
        pb.set_style(
            ProgressStyle::with_template(
                "{spinner} errors [{bar:40}] {pos}/{len} transforms  {elapsed_precise} (eta {eta})",
            )
            .expect("static template")
            .progress_chars("=> "),
        );
        pb
    } else {
        ProgressBar::hidden()
    };
    let grids: Vec<Grid> = cfg
        .sizes
        .par_iter()
        .map(|&s| {
            let specialised = f.at_resolution(s);
            let g = sample_grid(specialised.as_deref().unwrap_or(f), s, d);
            pb.inc(1);
            g
        })
        .collect::<Result<_, _>>()?;
    let by_s: HashMap<usize, &Grid> = grids.iter().map(|g| (g.s, g)).collect();

    let mut rows = Vec::new();
    for g in &grids {
        rows.extend(discretization_rows(f, g, cfg));
    }
    let jobs: Vec<(usize, Format, Model)> = cfg
        .sizes
        .iter()
        .flat_map(|&s| {
            cfg.formats
                .iter()
                .flat_map(move |&fm| cfg.models.iter().map(move |&m| (s, fm, m)))
        })
        .collect();
    let precision: Vec<Vec<Row>> = jobs
        .par_iter()
        .map(|&(s, fmt, model)| {
            let r = precision_rows(f, by_s[&s], fmt, model, cfg);
            pb.inc(1);
            r
        })
        .collect::<Result<_, _>>()?;
    let scaled: Vec<Vec<Row>> = cfg
        .sizes
        .iter()
        .flat_map(|&s| scaled_jobs.iter().map(move |&(sf, m)| (s, sf, m)))
        .collect::<Vec<_>>()
        .par_iter()
        .map(|&(s, sf, m)| {
            let r = scaled_rows(f, by_s[&s], sf, m, cfg);
            pb.inc(1);
            r
        })
        .collect::<Result<_, _>>()?;
    pb.finish_and_clear();
    rows.extend(precision.into_iter().flatten());
    rows.extend(scaled.into_iter().flatten());
    rows.sort_by(|a, b| {
        (a.s, &a.mode, a.kind, a.format, a.scaled, a.model)
            .cmp(&(b.s, &b.mode, b.kind, b.format, b.scaled, b.model))
    });
    Ok(rows)
}

fn discretization_rows(f: &dyn Function, g: &Grid, cfg: &SweepConfig) -> Vec<Row> {
    let specialised = f.at_resolution(g.s);
    let fs: &dyn Function = specialised.as_deref().unwrap_or(f);
    let (l, m) = (fs.lipschitz(), fs.sup());
    cfg.modes
        .iter()
        .map(|w| {
            let exact = fs.coefficient_checked(w);
            let discrete = g.reference[flat_index(w, g.s)];
            let measured = (exact.value - discrete).norm();
            // The measurement carries the coefficient's own error: the bound allows for it.
            let mut bound = bounds::discretization_upper(l, m, w, g.s) + exact.abs_err;
            let mut note = join_notes(&exact.note(), &fs.constants_note());
            if !l.is_finite() {
                note = join_notes(&note, "not Lipschitz (L = inf): no discretization bound");
            }
            let n = g.samples.len();
            bound += bounds::f64_reference_error(m, n);
            let lower = l
                .is_finite()
                .then(|| bounds::discretization_lower(l, m, w, g.s));
            Row {
                basis: "fourier".into(),
                function: f.name(),
                dim: cfg.dim,
                s: g.s,
                mode: w.clone(),
                kind: Kind::Discretization,
                format: Format::Fp64,
                scaled: None,
                model: None,
                measured,
                bound,
                lower_bound: lower,
                prob_bound: None,
                constants: fs.constants_source().tag().to_string(),
                note,
            }
        })
        .collect()
}

fn join_notes(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}; {b}"),
    }
}

fn precision_rows(
    f: &dyn Function,
    g: &Grid,
    fmt: Format,
    model: Model,
    cfg: &SweepConfig,
) -> Result<Vec<Row>, SweepError> {
    let shape = vec![g.s; cfg.dim];
    let out = fft::transform_under_model(&g.samples, &shape, fmt, model, cfg.algorithm)?;
    // Bounds use the sampled sup (<= M): the bound is about this discrete transform.
    let b = bounds::precision(&shape, cfg.algorithm, fmt, model, g.mean_abs, g.max_abs);
    Ok(cfg
        .modes
        .iter()
        .map(|w| {
            let i = flat_index(w, g.s);
            let (measured, mut note) = if out.overflow {
                (f64::INFINITY, format!("overflow: {fmt} produced inf/NaN"))
            } else {
                ((out.coeffs[i] - g.reference[i]).norm(), String::new())
            };
            if out.saturated {
                note = join_notes(&note, &format!("saturated at {fmt} max"));
            }
            Row {
                basis: "fourier".into(),
                function: f.name(),
                dim: cfg.dim,
                s: g.s,
                mode: w.clone(),
                kind: Kind::Precision,
                format: fmt,
                scaled: None,
                model: Some(model),
                measured,
                bound: b.bound,
                lower_bound: None,
                prob_bound: Some(b.probabilistic),
                constants: "samples".into(),
                note: join_notes(&note, &b.note),
            }
        })
        .collect())
}

/// Rows of a scaled format under model I (samples quantized: scaled, rounded, scaled back; the
/// transform exact in f64; bound bounds::scaled_input_rounding), model II (every stage's
/// output quantized too; bound bounds::scaled_storage) or model G (an fp8 GEMM with scales;
/// bound bounds::gemm_scaled_precision): docs/bounds.md, "Scaled formats", "Scaled storage",
/// "Model G in a scaled format". The scale moves every group into range: the only range condition is
/// E8M0's ceiling 2^127.
fn scaled_rows(
    f: &dyn Function,
    g: &Grid,
    sf: &ScaledFormat,
    model: Model,
    cfg: &SweepConfig,
) -> Result<Vec<Row>, SweepError> {
    let shape = vec![g.s; cfg.dim];
    let out = fft::transform_scaled(&g.samples, &shape, sf, model, cfg.algorithm)?;
    let (bound, bound_note) = match model {
        Model::Storage => match bounds::scaled_storage(&g.samples, &shape, cfg.algorithm, sf) {
            Ok(b) => (b, String::new()),
            Err(why) => (f64::INFINITY, why),
        },
        Model::Gemm => {
            let b = bounds::gemm_scaled_precision(&shape, sf, g.mean_abs, g.max_abs);
            (b.bound, b.note)
        }
        _ => (
            bounds::scaled_input_rounding(&g.samples, &shape, sf),
            String::new(),
        ),
    };
    // The Hoeffding companion with u times the largest block amax (each |delta_j| <= u amax_g
    // + S_g sigma / 2 <= that, up to the subnormal term it ignores, as the unscaled one does).
    let n = g.samples.len();
    let prob = bounds::input_rounding_probabilistic(sf.elem, g.max_abs, n, 1e-3);
    Ok(cfg
        .modes
        .iter()
        .map(|w| {
            let i = flat_index(w, g.s);
            let (measured, mut note) = if out.overflow {
                (f64::INFINITY, format!("overflow: {sf} produced NaN"))
            } else {
                ((out.coeffs[i] - g.reference[i]).norm(), String::new())
            };
            if out.saturated {
                note = join_notes(&note, &format!("saturated at {} max in a block", sf.elem));
            }
            Row {
                basis: "fourier".into(),
                function: f.name(),
                dim: cfg.dim,
                s: g.s,
                mode: w.clone(),
                kind: Kind::Precision,
                format: sf.elem,
                scaled: Some(*sf),
                model: Some(model),
                measured,
                bound,
                lower_bound: None,
                prob_bound: Some(prob.min(bound)),
                constants: "samples".into(),
                note: join_notes(&note, &bound_note),
            }
        })
        .collect())
}
