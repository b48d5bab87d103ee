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
    /// Whether the function is the same at every grid size (not a family defined per s, such as
    /// the aliased sine).
    fn size_free(&self, s: usize) -> bool {
        match self {
            Target::Interval(f) => f.at_resolution(s).is_none(),
            Target::Sphere(_) => true,
        }
    }
    /// The dimension of the transform: the function's (the sphere's basis is planned by nlat
    /// alone: 1).
    fn dim(&self) -> usize {
        match self {
            Target::Interval(f) => f.dim(),
            Target::Sphere(_) => 1,
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

/// Run the sweep, in the dimension of the target function (Fourier, Chebyshev and the wavelets:
/// 1 to 3; the sphere 1). Fails (a usage error) before measuring when a mode does not exist at some
/// size, a size is invalid for the basis, or a sample is not finite.
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
    let mut kept: Option<Arc<Vec<super::Continuous>>> = None;
    for &s in &cfg.sizes {
        let basis = cfg.kind.plan_nd(s, target.dim())?;
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
        // Chebyshev's continuous coefficients do not depend on N: computed once (a nested
        // quadrature in 3-D takes seconds), unless the function itself depends on s.
        let reuse = cfg.kind == BasisKind::Chebyshev && target.size_free(s);
        let continuous = match &kept {
            Some(c) if reuse => Arc::clone(c),
            _ => Arc::new(basis.continuous(f.as_ref(), &cfg.modes)),
        };
        if reuse {
            kept = Some(Arc::clone(&continuous));
        }
        let not_lipschitz = !f.lipschitz().is_finite();
        for ((mode, &i), c) in cfg.modes.iter().zip(&idx).zip(continuous.iter()) {
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
            Ok(p) if !p.is_empty() && p.len() <= 5 => out.push(p),
            _ => {
                return Err(BasisError::usage(
                    "--modes",
                    format!(
                        "'{item}' is not an integer or a ':'-separated list of at most 5 integers"
                    ),
                ));
            }
        }
    }
    if out.is_empty() {
        return Err(BasisError::usage("--modes", "no modes given"));
    }
    Ok(out)
}

/// Default modes per basis and dimension: Fourier/Chebyshev `0,3`; wavelets `-1:0,0:0,2:1`
/// (2-D `-1:0:0:0,0:3:0:0,2:1:1:2`, 3-D `-1:0:0:0:0,0:7:0:0:0,2:5:1:2:3`: the scaling
/// coefficient, the coarsest all-detail one and a mixed one at level 2); spherical
/// `0:0,2:0,3:2`.
pub fn default_modes(kind: &BasisKind, dim: usize) -> &'static str {
    match (kind, dim) {
        (BasisKind::Fourier | BasisKind::Chebyshev, _) => "0,3",
        (BasisKind::Wavelet(_), 2) => "-1:0:0:0,0:3:0:0,2:1:1:2",
        (BasisKind::Wavelet(_), 3) => "-1:0:0:0:0,0:7:0:0:0,2:5:1:2:3",
        (BasisKind::Wavelet(_), _) => "-1:0,0:0,2:1",
        (BasisKind::Spherical, _) => "0:0,2:0,3:2",
    }
}

/// Default sizes per basis and dimension (the SHT's table grows like nlat^3; Chebyshev in d > 1
/// transforms (2N)^d points: 2^22 at most by default, as in 1-D).
pub fn default_sizes(kind: &BasisKind, dim: usize) -> &'static str {
    match (kind, dim) {
        (BasisKind::Spherical, _) => "2^3..2^7",
        (BasisKind::Chebyshev, 2) => "2^4..2^10",
        (BasisKind::Chebyshev, 3) => "2^3..2^6",
        (BasisKind::Wavelet(_), 2) => "2^3..2^9",
        (BasisKind::Wavelet(_), 3) => "2^3..2^6",
        _ => "2^4..2^12",
    }
}

/// Bytes the sweep's largest plan needs at grid size `s`, with `jobs` (format, model)
/// transforms at once, for the bases whose plan or reference grows past the samples:
/// - spherical (nlat = s, lmax = s - 1, nh = ceil(s/2)): the f64 Legendre table, (lmax + 1)
///   (lmax + 2) / 2 nh values of 8 bytes (2.0 GiB at nlat = 1024; measured peak 2.3 GB), its
///   per-order diagonal (8 (lmax + 1) nh), the samples and reference (8 and 16 bytes per
///   point), and per job the output and ring buffers (16 bytes per point each) and, under the
///   models that compute in the format (not input or storage), a copy of the table in it
///   (counted at 8 bytes a value);
/// - wavelets other than Haar: the continuous coefficients come from a projection at level
///   r = max(log2 s + 4, 20), four vectors of 2^r f64 (samples, DWT scratch, the error bound's
///   unit response and its scratch: 2 GiB at s = 2^22; measured peak 1.9 GB), plus the sweep's
///   samples, reference and per job input copy, scratch and output (8 + 16 + 32 s bytes).
///
/// - Chebyshev in dimension `dim`: its transforms run on the even extension, (2s)^dim points:
///   the samples and reference (8 + 16 bytes per point) and per job the larger of an emulated
///   transform's arrays (3 x 16) and the f64 reference's (`fft::reference_bytes`), plus each
///   job's FFT plans (`fft::plan_bytes`) and the shared root cache (64 MiB).
///
/// Other bases: 0 (their arrays are a few vectors of s points, within `check_sizes`' limits).
pub fn memory_needed(kind: &BasisKind, s: usize, dim: usize, models: &[Model], jobs: usize) -> f64 {
    let sf = s as f64;
    let jobs = jobs as f64;
    match kind {
        BasisKind::Spherical => {
            let l1 = sf; // lmax + 1
            let nh = s.div_ceil(2) as f64;
            let table = 8.0 * l1 * (l1 + 1.0) / 2.0 * nh;
            let points = sf * 2.0 * sf;
            let in_format = models
                .iter()
                .any(|m| !matches!(m, Model::Input | Model::Storage));
            let per_job = 32.0 * points + if in_format { table } else { 0.0 };
            table + 8.0 * l1 * nh + 24.0 * points + jobs * per_job
        }
        BasisKind::Wavelet(w) if dim == 1 && *w != super::wavelet::Wavelet::HAAR => {
            let r = (s.trailing_zeros() + 4).max(20);
            32.0 * 2f64.powi(r as i32) + 24.0 * sf + jobs * 32.0 * sf
        }
        BasisKind::Wavelet(_) if dim > 1 => {
            // The d-D projection (when the function is not separable) at level
            // min(J + 4, 24 / d), at least J, and the cube's arrays.
            let j = s.trailing_zeros();
            let r = (j + 4)
                .min(super::wavelet_basis::FINE_POINTS_LOG2 / dim as u32)
                .max(j);
            let fine = 2f64.powi((r * dim as u32) as i32);
            let pts = sf.powi(dim as i32);
            32.0 * fine + 24.0 * pts + jobs * 32.0 * pts
        }
        BasisKind::Chebyshev => {
            let pts = (2.0 * sf).powi(dim as i32);
            let ext = vec![2 * s; dim];
            let plans = jobs * crate::fft::plan_bytes(&ext, crate::fft::Algorithm::Auto)
                + crate::fft::ROOT_CACHE_BYTES;
            24.0 * pts
                + (jobs * 48.0 * pts).max(crate::fft::reference_bytes(&ext, jobs as usize))
                + plans
        }
        _ => 0.0,
    }
}

/// Refuse (field `--sizes`) a sweep of `formats` formats whose [`memory_needed`] at some size
/// is more than `available` (None: unknown; see [`crate::cli::check_memory_with`]): the SHT
/// plan and the wavelet projection are allocated whole, so an allocation failure would abort.
/// Its (format, model) jobs run one per thread.
pub fn check_memory(
    kind: &BasisKind,
    sizes: &[usize],
    dim: usize,
    models: &[Model],
    formats: usize,
    available: Option<u64>,
) -> Result<(), BasisError> {
    let jobs = (formats * models.len()).min(rayon::current_num_threads());
    for &s in sizes {
        let what = match kind {
            BasisKind::Spherical => format!("the spherical plan at nlat = {s} (Legendre table)"),
            BasisKind::Chebyshev => format!(
                "chebyshev at s = {s} in dimension {dim} (transforms of the even extension, \
                 2s points per axis)"
            ),
            _ => format!(
                "{} at s = {s} (the projection at a 16x finer level for the reference)",
                kind.name()
            ),
        };
        crate::cli::check_memory_with(
            "--sizes",
            memory_needed(kind, s, dim, models, jobs),
            &what,
            available,
        )
        .map_err(|e| BasisError::usage(&e.field, e.message))?;
    }
    Ok(())
}

/// A sphere expression's continuous coefficients come from the SHT at 4 nlat
/// (`SphericalBasis::continuous`): refuse the sizes whose finer plan would not fit in memory
/// (its Legendre table grows like nlat^3: 17 GB for nlat = 512).
pub fn check_sphere_expression_memory(
    sizes: &[usize],
    available: Option<u64>,
) -> Result<(), BasisError> {
    for &s in sizes {
        let need = memory_needed(&BasisKind::Spherical, s, 2, &[], 0)
            + memory_needed(&BasisKind::Spherical, 4 * s, 2, &[], 0);
        crate::cli::check_memory_with(
            "--sizes",
            need,
            &format!(
                "an expression on the sphere at nlat = {s} (its continuous coefficients use the \
                 SHT at nlat = {}, Legendre table)",
                4 * s
            ),
            available,
        )
        .map_err(|e| BasisError::usage(&e.field, e.message))?;
    }
    Ok(())
}

/// The most grid points (s^d) a wavelet sweep transforms: the 1-D limit of `mpno errors`
/// (2^22) has room for a few emulated passes; the cube's d passes per level cost about as much.
pub const WAVELET_MAX_POINTS: usize = 1 << 24;

/// Check sizes and modes for a basis without planning it (cheap; the SHT plan is not): wavelet
/// lengths are powers of two >= 2 and modes j:k exist at every size, Chebyshev N >= 1 and k < N,
/// spherical 2 <= nlat <= `max_nlat` and l <= nlat - 1, |m| <= l, Fourier one integer per mode.
pub fn validate(
    kind: &BasisKind,
    sizes: &[usize],
    modes: &[Vec<i64>],
    dim: usize,
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
                if (s as f64).powi(dim as i32) > WAVELET_MAX_POINTS as f64 {
                    return Err(BasisError::usage(
                        "--sizes",
                        format!(
                            "the {} transform in dimension {dim} at s = {s} has s^{dim} points; \
                             at most {WAVELET_MAX_POINTS} (2^24)",
                            w.name()
                        ),
                    ));
                }
                for m in modes {
                    super::dwt_nd::mode_index(m, s.trailing_zeros(), dim)?;
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
                let d = modes.first().map_or(1, |m| m.len());
                for m in modes {
                    let ok = m.len() == d && m.iter().all(|&k| k >= 0 && (k as usize) < s);
                    if !ok {
                        let what = if d == 1 {
                            "one degree 0 <= k".to_string()
                        } else {
                            format!("{d} degrees 0 <= k_i")
                        };
                        return Err(BasisError::usage(
                            "--modes",
                            format!("a Chebyshev mode is {what} < N = {s}, got {m:?}"),
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

#[cfg(test)]
mod memory_tests {
    use super::*;

    #[test]
    fn spherical_1024_and_db10_2_22_need_about_2_gib() {
        let sph = memory_needed(&BasisKind::Spherical, 1024, 1, &[Model::Input], 1);
        assert!((2.1e9..2.6e9).contains(&sph), "{sph:e}");
        let db10 = BasisKind::parse("db10").unwrap();
        let w = memory_needed(&db10, 1 << 22, 1, &[Model::Input], 1);
        assert!((1.9e9..2.6e9).contains(&w), "{w:e}");
        let e = check_memory(&db10, &[1 << 22], 1, &[Model::Input], 1, Some(1 << 30)).unwrap_err();
        assert!(
            matches!(&e, BasisError::Usage { field, message } if field == "--sizes" && message.contains("memory")),
            "{e}"
        );
        let e = check_memory(
            &BasisKind::Spherical,
            &[8, 1024],
            1,
            &[Model::Input],
            1,
            Some(1 << 30),
        );
        assert!(e.is_err());
        assert!(
            check_memory(
                &BasisKind::Spherical,
                &[256],
                1,
                &[Model::Input],
                4,
                Some(1 << 30)
            )
            .is_ok()
        );
        let haar = BasisKind::parse("haar").unwrap();
        assert_eq!(memory_needed(&haar, 1 << 22, 1, &[Model::Input], 1), 0.0);
    }

    #[test]
    fn chebyshev_memory_grows_with_the_extension_in_every_axis() {
        let m = [Model::Input];
        let one = memory_needed(&BasisKind::Chebyshev, 4096, 1, &m, 1);
        let two = memory_needed(&BasisKind::Chebyshev, 4096, 2, &m, 1);
        // 2-D: (2 s)^2 = 2^26 points, at least 24 + 48 bytes each.
        assert!(two >= 72.0 * 2f64.powi(26), "{two:e}");
        assert!(two > 40.0 * one, "{one:e} {two:e}");
        let e = check_memory(&BasisKind::Chebyshev, &[16, 4096], 3, &m, 1, Some(1 << 34));
        assert!(
            matches!(&e, Err(BasisError::Usage { field, message }) if field == "--sizes" && message.contains("dimension 3")),
            "{e:?}"
        );
        assert!(check_memory(&BasisKind::Chebyshev, &[64], 3, &m, 1, Some(1 << 34)).is_ok());
    }
}
