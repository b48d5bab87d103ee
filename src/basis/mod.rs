//! Bases beyond the DFT behind one [`Basis`] trait: Fourier (an adapter onto [`crate::fft`]),
//! periodic wavelets (Haar, Daubechies db2..db10), Chebyshev on \[-1,1\] and real spherical
//! harmonics on S^2 (docs/bounds.md, "Other bases").
//!
//! Every basis answers the same questions for one grid:
//! - the quadrature nodes and weights its discrete transform is built on ([`Basis::quadrature`]);
//! - the forward transform of samples in f64 ([`Basis::forward`]) and under a precision model
//!   ([`Basis::forward_model`]: I rounds the inputs, II rounds every stage's output array, III runs
//!   every operation in the emulated format; each basis' transform is generic over
//!   [`crate::precision::Real`] and dispatched by [`crate::with_real`]), and the inverse;
//! - the exact (or accurately computed) continuous coefficient of a function
//!   ([`Basis::continuous`]), with how it was obtained and its error;
//! - the per-coefficient constants the bounds need ([`ModeConstants`]: sup norm and Lipschitz
//!   constant of the basis function, or its discontinuities), and the bounds themselves.
//!
//! Coefficients are complex (Fourier); the real bases return a zero imaginary part. Modes are
//! integer labels written to result files joined by ':' — `k` (Fourier, Chebyshev), `j:k`
//! (wavelet level and shift; the coarsest scaling coefficient is `-1:0`), `l:m` (spherical).
//! [`sweep`] measures discretization and precision errors for any basis in the results-file
//! contract of [`crate::error::Row`].

pub mod chebyshev;
pub mod dwt_nd;
pub mod fourier;
pub mod legendre_cert;
pub mod sphere_closed_forms;
pub mod spherical;
pub mod sweep;
pub mod wavelet;
pub mod wavelet_basis;
pub mod wavelet_constants;

use crate::bounds::PrecisionBound;
use crate::fft::{Complex, FftError, ModelOutput};
use crate::functions::{Function, quad};
use crate::precision::{Format, Model};
use std::sync::Arc;

/// A real function on a basis' domain: what the continuous coefficients and the bounds need.
/// Coordinates: \[0,1\]^d (Fourier, wavelets), t in \[-1,1\] (Chebyshev), (theta, phi) with
/// colatitude theta in \[0, pi\] and longitude phi in \[0, 2 pi) (spherical).
pub trait DomainFunction: Send + Sync {
    /// Name written to result files.
    fn name(&self) -> String;
    /// Value at a point of the domain.
    fn eval(&self, x: &[f64]) -> f64;
    /// Lipschitz constant in the domain's metric (Euclidean; geodesic on the sphere);
    /// f64::INFINITY when not Lipschitz.
    fn lipschitz(&self) -> f64;
    /// sup |v| over the domain.
    fn sup(&self) -> f64;
    /// Interval bounds on v over \[a, b\] in the domain's coordinate (1-D domains), for the
    /// resolution check of coefficient quadratures; None without enclosures.
    fn panel_bounds(&self, _a: f64, _b: f64) -> Option<crate::functions::quad::PanelBounds> {
        None
    }
    /// Interval bounds on v over a box of a d-D domain, for the resolution check of nested
    /// coefficient quadratures: coordinates before `axis` fixed at `prefix`, `axis` over
    /// \[a, b\], the later ones over their whole range; the slope is along `axis`. None without
    /// enclosures.
    fn slab_bounds(
        &self,
        _prefix: &[f64],
        _axis: usize,
        _a: f64,
        _b: f64,
    ) -> Option<crate::functions::quad::PanelBounds> {
        None
    }
    /// For separable products v(x) = v_1(x_1) ... v_d(x_d) (d > 1): the 1-D factors, seen the
    /// same way, in coordinate order; None otherwise.
    fn factors(&self) -> Option<Vec<Box<dyn DomainFunction>>> {
        None
    }
    /// How L and M were obtained, as in the results files' `constants` column
    /// ([`crate::functions::ConstantsSource::tag`]); the sphere's functions have analytic bounds.
    fn constants(&self) -> &'static str {
        "bound"
    }
    /// A proven upper bound on sup |v(x with x_axis = 1) - v(x with x_axis = 0)| over the
    /// domain \[0,1\]^d (the jump of the periodised function across that axis' faces), when the
    /// function has one ([`crate::functions::Function::face_jump`]).
    fn face_jump(&self, _axis: usize) -> Option<f64> {
        None
    }
    /// The continuous coefficient in closed form (or computed to f64 accuracy), when known:
    /// `basis` is [`Basis::family`], `mode` the coefficient's label.
    fn exact_coefficient(&self, _basis: &str, _mode: &[i64]) -> Option<Continuous> {
        None
    }
}

/// A continuous coefficient with its (estimated or proven) absolute error and how it was obtained.
#[derive(Clone, Debug, PartialEq)]
pub struct Continuous {
    pub value: Complex<f64>,
    /// Absolute error allowance added to the discretization bound (0 for closed forms).
    pub abs_err: f64,
    /// Empty for closed forms, else how the value was computed (written to the row's note).
    pub how: String,
}

impl Continuous {
    /// A closed-form value.
    pub fn exact(value: f64) -> Self {
        Continuous {
            value: Complex::new(value, 0.0),
            abs_err: 0.0,
            how: String::new(),
        }
    }
    /// A proven enclosure: its midpoint, with the distance to its far end as the error.
    pub fn from_enclosure(v: crate::interval::Interval, how: String) -> Self {
        let mid = v.mid();
        Continuous {
            value: Complex::new(mid, 0.0),
            abs_err: crate::interval::mag(v - crate::interval::point(mid)),
            how,
        }
    }
}

/// The coefficient of a separable product from its factors' (value, error) pairs: with every
/// factor known to within e_a, |prod c - prod c~| <= prod (|c~_a| + e_a) - prod |c~_a|; 4 eps
/// of the larger product covers the rounding of both products and their difference. A factor
/// that is exactly 0 (error 0) makes the product exactly 0, whatever the others' errors (an
/// infinite one would otherwise give inf * 0 = NaN).
pub(crate) fn product_of(parts: &[Continuous]) -> (f64, f64) {
    if parts.iter().any(|c| c.value.re == 0.0 && c.abs_err == 0.0) {
        return (0.0, 0.0);
    }
    let value: f64 = parts.iter().map(|c| c.value.re).product();
    let hi: f64 = parts.iter().map(|c| c.value.re.abs() + c.abs_err).product();
    let lo: f64 = parts.iter().map(|c| c.value.re.abs()).product();
    (value, (hi - lo) + 4.0 * f64::EPSILON * hi)
}

/// Quadrature nodes (points of the domain) and weights of a basis' discrete transform.
#[derive(Clone, Debug, PartialEq)]
pub struct Quadrature {
    /// One point per sample, in sample order.
    pub nodes: Vec<Vec<f64>>,
    /// One weight per sample.
    pub weights: Vec<f64>,
}

/// Per-coefficient constants of the basis function phi_k that the bounds need.
#[derive(Clone, Debug, PartialEq)]
pub struct ModeConstants {
    /// ||phi_k||_inf.
    pub sup_norm: f64,
    /// Lipschitz constant of phi_k (f64::INFINITY when discontinuous, see `breaks`, or not
    /// certified).
    pub lipschitz: f64,
    /// Points where phi_k jumps (Haar), in the domain's coordinate; empty when continuous.
    pub breaks: Vec<f64>,
}

/// Why a basis cannot be built or used as asked (a usage error: exit code 2 on the command line).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum BasisError {
    #[error("{field}: {message}")]
    Usage { field: String, message: String },
    #[error("fft: {0}")]
    Fft(#[from] FftError),
}

impl BasisError {
    pub fn usage(field: &str, message: impl Into<String>) -> Self {
        BasisError::Usage {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// One planned basis transform on one grid.
pub trait Basis: Send + Sync {
    /// Family name as used on the command line and in result files ("fourier", "haar", "db4",
    /// "chebyshev", "spherical").
    fn family(&self) -> String;
    /// The grid size s written to result files (Fourier/wavelets: points; Chebyshev: N of the
    /// N + 1 Chebyshev-Lobatto points; spherical: nlat).
    fn size(&self) -> usize;
    /// Dimension written to result files (the grid's: 1 to 3; 2 for the sphere).
    fn dim(&self) -> usize;
    /// Number of samples the transform takes.
    fn num_samples(&self) -> usize;
    /// Number of coefficients it returns.
    fn num_coeffs(&self) -> usize;
    /// The quadrature the discrete transform realises.
    fn quadrature(&self) -> Quadrature;
    /// The label of coefficient `index`.
    fn mode(&self, index: usize) -> Vec<i64>;
    /// Index of a mode, or why it does not exist on this grid.
    fn index(&self, mode: &[i64]) -> Result<usize, BasisError>;
    /// Samples of a function at the quadrature nodes, in sample order.
    fn sample(&self, f: &dyn DomainFunction) -> Vec<f64> {
        self.quadrature().nodes.iter().map(|x| f.eval(x)).collect()
    }
    /// The discrete transform in f64 (the reference of the precision error).
    fn forward(&self, samples: &[f64]) -> Vec<Complex<f64>>;
    /// The discrete transform under a precision model in a format (coefficients in f64).
    fn forward_model(
        &self,
        samples: &[f64],
        fmt: Format,
        model: Model,
    ) -> Result<ModelOutput, BasisError>;
    /// Samples from coefficients (inverse of [`Basis::forward`] on its range).
    fn inverse(&self, coeffs: &[Complex<f64>]) -> Vec<f64>;
    /// Continuous coefficients of `f` at `modes` (exact, or by accurate quadrature).
    fn continuous(&self, f: &dyn DomainFunction, modes: &[Vec<i64>]) -> Vec<Continuous>;
    /// Constants of the basis function of `mode`.
    fn constants(&self, mode: &[i64]) -> ModeConstants;
    /// Upper bound on |continuous - discrete coefficient| (without the continuous coefficient's
    /// own error, which the sweep adds), including the f64 reference's rounding.
    fn discretization_bound(&self, f: &dyn DomainFunction, samples: &[f64], mode: &[i64]) -> f64;
    /// A lower-bound construction, when the basis has one.
    fn discretization_lower(&self, _f: &dyn DomainFunction, _mode: &[i64]) -> Option<f64> {
        None
    }
    /// Upper bound on |forward_model - forward| at `mode` for these samples.
    fn precision_bound(
        &self,
        samples: &[f64],
        fmt: Format,
        model: Model,
        mode: &[i64],
    ) -> PrecisionBound;
}

/// The bases `--basis` accepts.
pub const BASIS_NAMES: &str = "fourier, haar, db1..db10, chebyshev, spherical";

/// A parsed `--basis` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BasisKind {
    Fourier,
    Wavelet(wavelet::Wavelet),
    Chebyshev,
    Spherical,
}

impl BasisKind {
    /// Parse a basis name ("fourier", "haar", "db1".."db10", "chebyshev", "spherical").
    pub fn parse(name: &str) -> Result<Self, BasisError> {
        let t = name.trim().to_ascii_lowercase();
        match t.as_str() {
            "fourier" => Ok(BasisKind::Fourier),
            "chebyshev" => Ok(BasisKind::Chebyshev),
            "spherical" => Ok(BasisKind::Spherical),
            _ => match wavelet::Wavelet::parse(&t) {
                Ok(w) => Ok(BasisKind::Wavelet(w)),
                Err(why) => Err(BasisError::usage(
                    "--basis",
                    format!("unknown basis '{name}' ({why}); allowed: {BASIS_NAMES}"),
                )),
            },
        }
    }
    /// Name used in result files.
    pub fn name(&self) -> String {
        match self {
            BasisKind::Fourier => "fourier".into(),
            BasisKind::Wavelet(w) => w.name(),
            BasisKind::Chebyshev => "chebyshev".into(),
            BasisKind::Spherical => "spherical".into(),
        }
    }
    /// Plan the basis for grid size `s` (see [`Basis::size`]).
    pub fn plan(&self, s: usize) -> Result<Box<dyn Basis>, BasisError> {
        Ok(match self {
            BasisKind::Fourier => Box::new(fourier::FourierBasis::new(&[s])?),
            BasisKind::Wavelet(w) => Box::new(wavelet_basis::WaveletBasis::new(*w, s)?),
            BasisKind::Chebyshev => Box::new(chebyshev::ChebyshevBasis::new(s)?),
            BasisKind::Spherical => Box::new(spherical::SphericalBasis::new(s)?),
        })
    }
    /// Plan the basis for grid size `s` on each of `dim` axes: Fourier, Chebyshev and the
    /// wavelets take 1 to 3; the sphere is planned by nlat alone (`dim` 1).
    pub fn plan_nd(&self, s: usize, dim: usize) -> Result<Box<dyn Basis>, BasisError> {
        match self {
            BasisKind::Fourier => Ok(Box::new(fourier::FourierBasis::new(&vec![s; dim])?)),
            BasisKind::Chebyshev => Ok(Box::new(chebyshev::ChebyshevBasis::new_nd(&vec![s; dim])?)),
            BasisKind::Wavelet(w) => Ok(Box::new(wavelet_basis::WaveletBasis::new_nd(*w, s, dim)?)),
            _ if dim == 1 => self.plan(s),
            _ => Err(BasisError::usage(
                "--dim",
                format!(
                    "the spherical basis is planned by nlat alone (the sphere), not --dim {dim}"
                ),
            )),
        }
    }
}

/// A [`Function`] on \[0,1\]^d seen by a basis: Fourier and wavelets use it as is; Chebyshev maps
/// every coordinate t in \[-1,1\] to x = (t + 1) / 2 (so L_t = L_x / 2, Euclidean).
#[derive(Clone)]
pub struct OnInterval {
    pub f: Arc<dyn Function>,
    /// Map \[-1,1\] onto \[0,1\] (Chebyshev).
    pub chebyshev: bool,
}

impl OnInterval {
    pub fn unit(f: Arc<dyn Function>) -> Self {
        OnInterval {
            f,
            chebyshev: false,
        }
    }
    pub fn chebyshev(f: Arc<dyn Function>) -> Self {
        OnInterval { f, chebyshev: true }
    }
}

impl DomainFunction for OnInterval {
    fn name(&self) -> String {
        self.f.name()
    }
    fn eval(&self, x: &[f64]) -> f64 {
        if self.chebyshev {
            match *x {
                [t] => self.f.eval(&[(t + 1.0) * 0.5]),
                _ => {
                    let mut u = [0.0; 3];
                    for (u, t) in u.iter_mut().zip(x) {
                        *u = (t + 1.0) * 0.5;
                    }
                    self.f.eval(&u[..x.len()])
                }
            }
        } else {
            self.f.eval(x)
        }
    }
    fn lipschitz(&self) -> f64 {
        if self.chebyshev {
            self.f.lipschitz() * 0.5
        } else {
            self.f.lipschitz()
        }
    }
    fn sup(&self) -> f64 {
        self.f.sup()
    }
    fn constants(&self) -> &'static str {
        self.f.constants_source().tag()
    }
    fn panel_bounds(&self, a: f64, b: f64) -> Option<crate::functions::quad::PanelBounds> {
        if self.chebyshev {
            // x = (t + 1) / 2: half the slope in t.
            let mut pb = self
                .f
                .panel_bounds(&[], 0, (a + 1.0) * 0.5, (b + 1.0) * 0.5)?;
            pb.slope *= 0.5;
            Some(pb)
        } else {
            self.f.panel_bounds(&[], 0, a, b)
        }
    }
    fn slab_bounds(
        &self,
        prefix: &[f64],
        axis: usize,
        a: f64,
        b: f64,
    ) -> Option<crate::functions::quad::PanelBounds> {
        if self.chebyshev {
            let mut p = [0.0; 3];
            for (u, t) in p.iter_mut().zip(prefix) {
                *u = (t + 1.0) * 0.5;
            }
            let mut pb =
                self.f
                    .panel_bounds(&p[..prefix.len()], axis, (a + 1.0) * 0.5, (b + 1.0) * 0.5)?;
            pb.slope *= 0.5;
            Some(pb)
        } else {
            self.f.panel_bounds(prefix, axis, a, b)
        }
    }
    fn factors(&self) -> Option<Vec<Box<dyn DomainFunction>>> {
        let fs = self.f.factors()?;
        Some(
            fs.iter()
                .map(|g| {
                    Box::new(OnInterval {
                        f: g.clone(),
                        chebyshev: self.chebyshev,
                    }) as Box<dyn DomainFunction>
                })
                .collect(),
        )
    }
    fn face_jump(&self, axis: usize) -> Option<f64> {
        if self.chebyshev {
            None
        } else {
            self.f.face_jump(axis)
        }
    }
    fn exact_coefficient(&self, basis: &str, mode: &[i64]) -> Option<Continuous> {
        let with = |c: crate::functions::Checked| Continuous {
            value: c.value,
            abs_err: c.abs_err,
            how: c.note(),
        };
        // Wavelet scaling coefficient: `-1:0` in 1-D, `-1:0:0..:0` in d-D.
        let scaling = mode.len() >= 2 && mode[0] == -1 && mode[1..].iter().all(|&k| k == 0);
        match basis {
            "fourier" => Some(with(self.f.coefficient_checked(mode))),
            // Every periodised scaling function at level 0 is 1: the scaling coefficient is the
            // mean, the Fourier coefficient at 0.
            _ if !self.chebyshev && scaling => {
                Some(with(self.f.coefficient_checked(&vec![0; self.f.dim()])))
            }
            _ => None,
        }
    }
}

/// Adaptive Gauss-Kronrod of a real integrand: `sample(t)` returns (g(t), v) with v the value
/// of the function the integrand is built from, `bounds(a, b)` encloses v over a panel (user
/// expressions), so the resolution check of [`quad::gauss_kronrod_guarded`] applies: a narrow
/// feature between nodes is refined until seen. `freq` is g's oscillation in turns per unit t.
/// Without enclosures (closed-form built-ins) the plain rule runs.
pub(crate) fn quadrature_of(
    sample: impl Fn(f64) -> (f64, f64) + Sync,
    bounds: impl Fn(f64, f64) -> Option<quad::PanelBounds> + Sync,
    breaks: &[f64],
    opts: &quad::QuadOptions,
    freq: f64,
) -> quad::QuadResult {
    let to_sample = |t: f64| {
        let (g, v) = sample(t);
        quad::Sample {
            g: Complex::new(g, 0.0),
            v_lo: v,
            v_hi: v,
        }
    };
    if bounds(breaks[0], breaks[breaks.len() - 1]).is_none() {
        return quad::gauss_kronrod(|t| to_sample(t).g, breaks, opts);
    }
    let nan = f64::NAN;
    let panel = |a: f64, b: f64| {
        bounds(a, b).unwrap_or(quad::PanelBounds {
            slope: nan,
            width: nan,
            sup: nan,
        })
    };
    let check = quad::Resolution {
        bounds: &panel,
        freq,
        budget: None,
    };
    quad::gauss_kronrod_guarded(to_sample, breaks, opts, &check)
}

/// The note of a coefficient by quadrature: its error estimate, or that it was not resolved.
pub(crate) fn quadrature_note(rule: &str, err: f64, converged: bool) -> String {
    if converged {
        format!("continuous coefficient by {rule} (abs err {err:.1e})")
    } else {
        format!(
            "continuous coefficient NOT resolved: {rule} budget spent at error estimate \
             {err:.1e}; the bound includes the estimate"
        )
    }
}

pub(crate) use crate::precision::gamma;

/// An infinite precision bound with the reason.
pub(crate) fn infinite(note: String) -> PrecisionBound {
    PrecisionBound {
        bound: f64::INFINITY,
        probabilistic: f64::NAN,
        note,
    }
}

/// Turn f64 coefficients computed in a format into a [`ModelOutput`] (overflow = non-finite).
pub(crate) fn model_output(coeffs: Vec<Complex<f64>>, saturated: bool) -> ModelOutput {
    let overflow = coeffs
        .iter()
        .any(|c| !(c.re.is_finite() && c.im.is_finite()));
    ModelOutput {
        coeffs,
        overflow,
        saturated,
    }
}

/// Model I's rounded samples, and whether rounding overflowed or saturated.
pub(crate) fn round_samples(samples: &[f64], fmt: Format) -> (Vec<f64>, bool, bool) {
    let r: Vec<f64> = samples
        .iter()
        .map(|&x| crate::precision::round(x, fmt))
        .collect();
    let overflow = r.iter().any(|x| !x.is_finite());
    let saturated = fmt.overflow() == crate::precision::Overflow::Saturate
        && r.iter().any(|x| x.abs() >= fmt.max_finite());
    (r, overflow, saturated)
}

/// Reject the FFT's per-stage scaling for transforms that have no radix-2 stages to scale, and
/// model G (the DFT as a matrix product) for transforms that are not a DFT.
pub(crate) fn check_model(basis: &str, model: Model) -> Result<(), BasisError> {
    if model == Model::Gemm {
        return Err(BasisError::usage(
            "--models",
            format!(
                "gemm (the DFT as a matrix product with fp32 accumulation) is defined for the \
                 DFT-based bases (fourier, chebyshev) only, not for {basis}; use input, storage \
                 or arithmetic"
            ),
        ));
    }
    if model == Model::ArithmeticScaled {
        return Err(BasisError::usage(
            "--models",
            format!(
                "arithmetic-scaled (1/2 per radix-2 stage) is defined for the FFT-based bases \
                 (fourier, chebyshev) only, not for {basis}; use input, storage or arithmetic"
            ),
        ));
    }
    Ok(())
}
