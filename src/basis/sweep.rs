//! Discretization and precision errors for any [`Basis`], as rows of the results-file contract
//! ([`crate::error::Row`]): per grid size the function is sampled once at the quadrature nodes and
//! transformed in f64 (the reference); discretization = |continuous coefficient - f64 discrete
//! coefficient| beside [`Basis::discretization_bound`] plus the continuous coefficient's own error;
//! precision = |transform under (format, model) - f64 transform| beside
//! [`Basis::precision_bound`]. Rows are sorted by (s, mode, kind, format, model).

use super::spherical::SphereFunction;
use super::{BasisError, BasisKind, DomainFunction, OnInterval};
use crate::error::{Kind, Row};
use crate::functions::Function;
use crate::precision::{Format, Model};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use std::sync::Arc;

/// What is transformed: a function on \[0,1\] (Fourier, wavelets; mapped to \[-1,1\] for
/// Chebyshev) or a function on the sphere.
#[derive(Clone)]
pub enum Target {
    Interval(Arc<dyn Function>),
    Sphere(SphereFunction),
}

impl Target {
    fn name(&self) -> String {
        match self {
            Target::Interval(f) => f.name(),
            Target::Sphere(f) => f.name(),
        }
    }
    /// The function seen by `kind` at grid size s (grid-dependent families resolved).
    fn at(&self, kind: &BasisKind, s: usize) -> Result<Box<dyn DomainFunction>, BasisError> {
        match (self, kind) {
            (Target::Sphere(f), BasisKind::Spherical) => Ok(Box::new(f.clone())),
            (Target::Interval(f), BasisKind::Spherical) => Err(BasisError::usage(
                "--function",
                format!(
                    "'{}' is a function on [0,1]; --basis spherical takes {}",
                    f.name(),
                    super::spherical::SPHERE_FUNCTIONS
                ),
            )),
            (Target::Sphere(f), _) => Err(BasisError::usage(
                "--function",
                format!(
                    "'{}' is a function on the sphere; use --basis spherical",
                    f.name()
                ),
            )),
            (Target::Interval(f), k) => {
                let resolved: Arc<dyn Function> = match f.at_resolution(s) {
                    Some(b) => Arc::from(b),
                    None => f.clone(),
                };
                Ok(Box::new(if *k == BasisKind::Chebyshev {
                    OnInterval::chebyshev(resolved)
                } else {
                    OnInterval::unit(resolved)
                }))
            }
        }
    }
}

/// A validated request.
#[derive(Clone, Debug)]
pub struct BasisSweepConfig {
    pub kind: BasisKind,
    pub sizes: Vec<usize>,
    pub modes: Vec<Vec<i64>>,
    pub formats: Vec<Format>,
    pub models: Vec<Model>,
    /// Show a progress bar (only drawn when stderr is a terminal).
    pub progress: bool,
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}; {b}"),
    }
}

/// Run the sweep. Fails (a usage error) before measuring when a mode does not exist at some size,
/// a size is invalid for the basis, or a sample is not finite.
pub fn run(target: &Target, cfg: &BasisSweepConfig) -> Result<Vec<Row>, BasisError> {
    if cfg.kind != BasisKind::Fourier && cfg.kind != BasisKind::Chebyshev {
        for &m in &cfg.models {
            super::check_model(&cfg.kind.name(), m)?;
        }
    }
    let pb = if cfg.progress {
        let pb =
            ProgressBar::new((cfg.sizes.len() * (1 + cfg.formats.len() * cfg.models.len())) as u64);
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
    let name = target.name();
    let mut rows = Vec::new();
    for &s in &cfg.sizes {
        let basis = cfg.kind.plan(s)?;
        let idx: Vec<usize> = cfg
            .modes
            .iter()
            .map(|m| basis.index(m))
            .collect::<Result<_, _>>()?;
        let f = target.at(&cfg.kind, s)?;
        let samples = basis.sample(f.as_ref());
        if let Some(i) = samples.iter().position(|v| !v.is_finite()) {
            let q = basis.quadrature();
            return Err(BasisError::usage(
                "--function",
                format!(
                    "'{name}' is {} at {:?} on the s = {s} grid",
                    samples[i], q.nodes[i]
                ),
            ));
        }
        let reference = basis.forward(&samples);
        let continuous = basis.continuous(f.as_ref(), &cfg.modes);
        let not_lipschitz = !f.lipschitz().is_finite();
        for ((mode, &i), c) in cfg.modes.iter().zip(&idx).zip(&continuous) {
            let mut note = c.how.clone();
            if not_lipschitz {
                note = join(&note, "not Lipschitz (L = inf): no discretization bound");
            }
            rows.push(Row {
                basis: basis.family(),
                function: name.clone(),
                dim: basis.dim(),
                s: basis.size(),
                mode: mode.clone(),
                kind: Kind::Discretization,
                format: Format::Fp64,
                scaled: None,
                model: None,
                measured: (c.value - reference[i]).norm(),
                bound: basis.discretization_bound(f.as_ref(), &samples, mode) + c.abs_err,
                lower_bound: basis.discretization_lower(f.as_ref(), mode),
                prob_bound: None,
                constants: f.constants().to_string(),
                note,
            });
        }
        pb.inc(1);
        let jobs: Vec<(Format, Model)> = cfg
            .formats
            .iter()
            .flat_map(|&fm| cfg.models.iter().map(move |&m| (fm, m)))
            .collect();
        let basis_ref = basis.as_ref();
        let precision: Vec<Vec<Row>> = jobs
            .par_iter()
            .map(|&(fmt, model)| {
                let out = basis_ref.forward_model(&samples, fmt, model)?;
                let r = cfg
                    .modes
                    .iter()
                    .zip(&idx)
                    .map(|(mode, &i)| {
                        let (measured, mut note) = if out.overflow {
                            (f64::INFINITY, format!("overflow: {fmt} produced inf/NaN"))
                        } else {
                            ((out.coeffs[i] - reference[i]).norm(), String::new())
                        };
                        if out.saturated {
                            note = join(&note, &format!("saturated at {fmt} max"));
                        }
                        let b = basis_ref.precision_bound(&samples, fmt, model, mode);
                        Row {
                            basis: basis_ref.family(),
                            function: name.clone(),
                            dim: basis_ref.dim(),
                            s: basis_ref.size(),
                            mode: mode.clone(),
                            kind: Kind::Precision,
                            format: fmt,
                            scaled: None,
                            model: Some(model),
                            measured,
                            bound: b.bound,
                            lower_bound: None,
                            prob_bound: b.probabilistic.is_finite().then_some(b.probabilistic),
                            constants: "samples".into(),
                            note: join(&note, &b.note),
                        }
                    })
                    .collect();
                pb.inc(1);
                Ok(r)
            })
            .collect::<Result<_, BasisError>>()?;
        rows.extend(precision.into_iter().flatten());
    }
    pb.finish_and_clear();
    rows.sort_by(|a, b| {
        (a.s, &a.mode, a.kind, a.format, a.model).cmp(&(b.s, &b.mode, b.kind, b.format, b.model))
    });
    Ok(rows)
}

/// Parse a basis mode list: comma-separated entries, each an integer (`3`) or `a:b` (`2:1`,
/// `-1:0`); Fourier in d > 1 uses [`crate::cli::parse_modes`] instead.
pub fn parse_modes(list: &str) -> Result<Vec<Vec<i64>>, BasisError> {
    let mut out = Vec::new();
    let items = crate::cli::split_list("--modes", list)
        .map_err(|e| BasisError::usage("--modes", e.message))?;
    for item in items {
        let parts: Result<Vec<i64>, _> = item.split(':').map(|p| p.trim().parse::<i64>()).collect();
        match parts {
            Ok(p) if !p.is_empty() && p.len() <= 3 => out.push(p),
            _ => {
                return Err(BasisError::usage(
                    "--modes",
                    format!("'{item}' is not an integer or a:b pair of integers"),
                ));
            }
        }
    }
    if out.is_empty() {
        return Err(BasisError::usage("--modes", "no modes given"));
    }
    Ok(out)
}

/// Default modes per basis: Fourier/Chebyshev `0,3`; wavelets `-1:0,0:0,2:1`; spherical
/// `0:0,2:0,3:2`.
pub fn default_modes(kind: &BasisKind) -> &'static str {
    match kind {
        BasisKind::Fourier | BasisKind::Chebyshev => "0,3",
        BasisKind::Wavelet(_) => "-1:0,0:0,2:1",
        BasisKind::Spherical => "0:0,2:0,3:2",
    }
}

/// Default sizes per basis (the SHT's table grows like nlat^3).
pub fn default_sizes(kind: &BasisKind) -> &'static str {
    match kind {
        BasisKind::Spherical => "2^3..2^7",
        _ => "2^4..2^12",
    }
}

/// Check sizes and modes for a basis without planning it (cheap; the SHT plan is not): wavelet
/// lengths are powers of two >= 2 and modes j:k exist at every size, Chebyshev N >= 1 and k < N,
/// spherical 2 <= nlat <= `max_nlat` and l <= nlat - 1, |m| <= l, Fourier one integer per mode.
pub fn validate(
    kind: &BasisKind,
    sizes: &[usize],
    modes: &[Vec<i64>],
    max_nlat: usize,
) -> Result<(), BasisError> {
    for &s in sizes {
        match kind {
            BasisKind::Wavelet(w) => {
                if s < 2 || !s.is_power_of_two() {
                    return Err(BasisError::usage(
                        "--sizes",
                        format!(
                            "the periodic DWT ({}) needs a power-of-two length >= 2, got {s}",
                            w.name()
                        ),
                    ));
                }
                for m in modes {
                    super::wavelet::mode_index(m, s.trailing_zeros())?;
                }
            }
            BasisKind::Spherical => {
                if s < 2 {
                    return Err(BasisError::usage(
                        "--sizes",
                        format!("the spherical grid needs nlat >= 2, got {s}"),
                    ));
                }
                if s > max_nlat {
                    return Err(BasisError::usage(
                        "--sizes",
                        format!(
                            "nlat = {s} is too large: the Legendre table grows like nlat^3 (at most {max_nlat})"
                        ),
                    ));
                }
                for m in modes {
                    let ok = m.len() == 2 && m[0] >= 0 && m[0] < s as i64 && m[1].abs() <= m[0];
                    if !ok {
                        return Err(BasisError::usage(
                            "--modes",
                            format!(
                                "a spherical mode is l:m with 0 <= l <= lmax = nlat - 1 = {} and |m| <= l, got {m:?}",
                                s - 1
                            ),
                        ));
                    }
                }
            }
            BasisKind::Chebyshev => {
                for m in modes {
                    if !(m.len() == 1 && m[0] >= 0 && (m[0] as usize) < s) {
                        return Err(BasisError::usage(
                            "--modes",
                            format!("a Chebyshev mode is one degree 0 <= k < N = {s}, got {m:?}"),
                        ));
                    }
                }
            }
            BasisKind::Fourier => {
                if let Some(m) = modes.iter().find(|m| m.len() != 1) {
                    return Err(BasisError::usage(
                        "--modes",
                        format!("a 1-D Fourier mode is one integer, got {m:?}"),
                    ));
                }
            }
        }
    }
    Ok(())
}
