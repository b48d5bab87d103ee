//! Chebyshev polynomials on \[-1,1\]^d (d = 1..3), the tensor products
//! T_k(t) = T_{k_1}(t_1) ... T_{k_d}(t_d), through a d-D DCT-I on the (N + 1)^d
//! Chebyshev-Lobatto points t_j = (cos(pi j_1 / N), ..., cos(pi j_d / N)) (the grid size s is
//! N, the same on every axis).
//!
//! Coefficients are those of v = sum_k a_k T_k:
//!     a_k = C_k int_{\[0,pi\]^d} g(theta) d theta,  g(theta) = v(cos theta) prod_a cos(k_a theta_a),
//! with C_k = prod_a c_{k_a}, c_0 = 1/pi and c_k = 2/pi (k >= 1). The discrete a^N_k (the
//! interpolant's coefficients, 0 <= k_a < N) is C_k Q(g) with Q the product trapezoid rule in
//! theta of step pi/N, computed as the d-D FFT of the even extension along every axis
//! ((v_0, ..., v_N, v_{N-1}, ..., v_1): 2N points per axis): a^N_k = F_k Re X_k / (2N)^d with
//! F_k = prod_a f(k_a), f(0) = f(N) = 1, f(k) = 2 otherwise (in 1-D: 2 Re X_k / (2N), and
//! X_0 / (2N) for k = 0). So every precision model of [`crate::fft`] applies unchanged, and the
//! precision bound is the FFT's for the (2N)^d grid times F_k (at most 2^d). Functions on
//! \[0,1\]^d are mapped by x = (t + 1)/2 in every coordinate ([`super::OnInterval::chebyshev`]).
//!
//! Discretization bound (proof; docs/bounds.md, "Other bases"). Let I_a be the integral over
//! theta_a on \[0, pi\] and Q_a the trapezoid rule. Telescoping,
//!     I_1 ... I_d - Q_1 ... Q_d = sum_a Q_1 ... Q_{a-1} (I_a - Q_a) I_{a+1} ... I_d.
//! Term a applies I_a - Q_a to a combination with nonnegative weights, of total pi^(d-1), of
//! the functions theta_a -> g(theta) (the other coordinates fixed), each Lipschitz with constant
//! L_t + k_a M: |v(cos theta) - v(cos theta')| <= L_t |cos theta_a - cos theta'_a| <= L_t
//! |theta_a - theta'_a| when only theta_a moves, and |cos k t - cos k t'| <= k |t - t'|. The
//! trapezoid rule errs by at most L_g h^2 / 4 per panel of width h = pi / N, so
//!     |a_k - a^N_k| <= C_k pi^(d-1) sum_a (L_t + k_a M) pi^2 / (4 N),
//! in 1-D c_k (L_t + k M) pi^2 / (4 N). L_t <= L_x / 2 is v's Euclidean Lipschitz constant in t
//! (it bounds every partial one). That is the Lipschitz rate; smooth functions converge
//! spectrally under it, the contrast with the Fourier basis on non-periodic functions (y = x: a
//! jump of the periodic extension).

use super::{Basis, BasisError, Continuous, DomainFunction, ModeConstants, Quadrature};
use super::{quadrature_note, quadrature_of};
use crate::bounds::{self, PrecisionBound};
use crate::fft::{self, Algorithm, Complex, ModelOutput};
use crate::functions::quad::{self, CubeGuard, EvalBudget, PanelBounds, QuadOptions, Sample};
use crate::precision::{Format, Model};
use rayon::prelude::*;
use std::f64::consts::PI;

/// Target absolute accuracy of a d-D coefficient quadrature (before the weight C_k).
const NESTED_TOL: f64 = 1e-13;

/// Cap on the point evaluations of one d-D coefficient quadrature (nested Gauss-Kronrod): a few
/// seconds of a long expression on 2 cores. Beyond it the coefficient is reported as not
/// resolved, with its error estimate in the bound, instead of running for minutes.
pub const NESTED_EVALS: usize = 50_000_000;

/// The DCT-I on (N + 1)^d Chebyshev-Lobatto points.
pub struct ChebyshevBasis {
    /// N per axis.
    shape: Vec<usize>,
}

/// Index `i` of the even extension (length 2N) folded back onto 0..=N.
fn fold(i: usize, n: usize) -> usize {
    if i <= n { i } else { 2 * n - i }
}

/// F's factor f(k) of a^N_k = F_k Re X_k: 1 at k = 0 and k = N, else 2.
fn factor(k: usize, n: usize) -> f64 {
    if k == 0 || k == n { 1.0 } else { 2.0 }
}

impl ChebyshevBasis {
    /// Plan for N >= 1 (N + 1 points) in 1-D.
    pub fn new(n: usize) -> Result<Self, BasisError> {
        Self::new_nd(&[n])
    }
    /// Plan for N_a >= 1 on each of 1 to 3 axes.
    pub fn new_nd(shape: &[usize]) -> Result<Self, BasisError> {
        if shape.is_empty() || shape.len() > 3 {
            return Err(BasisError::usage(
                "--dim",
                format!("Chebyshev grids have 1 to 3 axes, got {}", shape.len()),
            ));
        }
        if shape.contains(&0) {
            return Err(BasisError::usage(
                "--sizes",
                "Chebyshev needs N >= 1 (N + 1 points)",
            ));
        }
        Ok(ChebyshevBasis {
            shape: shape.to_vec(),
        })
    }
    /// The even extension's shape, 2N per axis.
    fn ext_shape(&self) -> Vec<usize> {
        self.shape.iter().map(|&n| 2 * n).collect()
    }
    /// Points per axis, N + 1.
    fn points_shape(&self) -> Vec<usize> {
        self.shape.iter().map(|&n| n + 1).collect()
    }
    /// Row-major multi-index of `i` on axes of lengths `lens`.
    fn split(mut i: usize, lens: &[usize]) -> [usize; 3] {
        let mut out = [0; 3];
        for a in (0..lens.len()).rev() {
            out[a] = i % lens[a];
            i /= lens[a];
        }
        out
    }
    fn extend(&self, samples: &[f64]) -> Vec<f64> {
        assert_eq!(
            samples.len(),
            self.num_samples(),
            "Chebyshev N = {:?} takes prod (N + 1) samples",
            self.shape
        );
        let ext = self.ext_shape();
        let len: usize = ext.iter().product();
        (0..len)
            .map(|i| {
                let e = Self::split(i, &ext);
                let src = self
                    .shape
                    .iter()
                    .enumerate()
                    .fold(0, |acc, (a, &n)| acc * (n + 1) + fold(e[a], n));
                samples[src]
            })
            .collect()
    }
    fn coefficients_of(&self, x: &[Complex<f64>]) -> Vec<Complex<f64>> {
        let pts = self.points_shape();
        (0..self.num_coeffs())
            .map(|c| {
                let k = Self::split(c, &pts);
                let (mut f, mut e) = (1.0, 0);
                for (a, &n) in self.shape.iter().enumerate() {
                    f *= factor(k[a], n);
                    e = e * 2 * n + k[a];
                }
                Complex::new(f * x[e].re, 0.0)
            })
            .collect()
    }
    fn weight(k: i64) -> f64 {
        if k == 0 { 1.0 / PI } else { 2.0 / PI }
    }
    /// The 1-D coefficient of `f` at degree k: adaptive Gauss-Kronrod in theta.
    fn continuous_1d(f: &dyn DomainFunction, k: i64) -> Continuous {
        Self::continuous_1d_checked(f, k).0
    }
    /// [`Self::continuous_1d`] and whether its quadrature met its target.
    fn continuous_1d_checked(f: &dyn DomainFunction, k: i64) -> (Continuous, bool) {
        let opts = QuadOptions {
            initial_panels: 8,
            ..QuadOptions::default()
        };
        // In theta the resolution check encloses v over t = cos(theta) in
        // [cos b, cos a]; |dv/dtheta| = |v'(t) sin(theta)| <= |v'(t)|, and cos(k theta)
        // oscillates like a phase of frequency k / (2 pi).
        let res = quadrature_of(
            |th| {
                let v = f.eval(&[th.cos()]);
                (v * (k as f64 * th).cos(), v)
            },
            |a, b| f.panel_bounds(b.cos(), a.cos()),
            &[0.0, PI / 2.0, PI],
            &opts,
            k.unsigned_abs() as f64 / (2.0 * PI),
        );
        let c = Self::weight(k);
        let err = c * res.abs_err.max(opts.abs_tol);
        let coefficient = Continuous {
            value: Complex::new(c * res.value.re, 0.0),
            abs_err: err,
            how: quadrature_note("adaptive Gauss-Kronrod in theta", err, res.converged),
        };
        (coefficient, res.converged)
    }
    /// A separable v = v_1(t_1) ... v_d(t_d): a_k = prod_a a_{k_a}(v_a), with the product's
    /// error ([`super::product_of`]).
    fn continuous_product(factors: &[Box<dyn DomainFunction>], mode: &[i64]) -> Continuous {
        let (parts, converged): (Vec<Continuous>, Vec<bool>) = factors
            .iter()
            .zip(mode)
            .map(|(g, &k)| Self::continuous_1d_checked(g.as_ref(), k))
            .unzip();
        let (value, err) = super::product_of(&parts);
        let converged = converged.into_iter().all(|c| c);
        Continuous {
            value: Complex::new(value, 0.0),
            abs_err: err,
            how: quadrature_note(
                "products of 1-D adaptive Gauss-Kronrod in theta",
                err,
                converged,
            ),
        }
    }
    /// Nested adaptive Gauss-Kronrod of g over \[0, pi\]^d, guarded by v's enclosures where
    /// the function has them, at most [`NESTED_EVALS`] evaluations.
    fn continuous_nested(f: &dyn DomainFunction, mode: &[i64]) -> Continuous {
        let d = mode.len();
        let ks: Vec<f64> = mode.iter().map(|&k| k as f64).collect();
        let eval = |th: &[f64]| -> (f64, f64) {
            let mut t = [0.0; 3];
            for (t, th) in t.iter_mut().zip(th) {
                *t = th.cos();
            }
            let v = f.eval(&t[..d]);
            let w: f64 = ks.iter().zip(th).map(|(k, th)| (k * th).cos()).product();
            (v * w, v)
        };
        let breaks = vec![vec![0.0, PI / 2.0, PI]; d];
        // cos(k theta) has k / 4 periods on each half.
        let panels: Vec<usize> = mode
            .iter()
            .map(|&k| (k.unsigned_abs() as usize).div_ceil(4).clamp(2, 1 << 14))
            .collect();
        let budget = EvalBudget::new(NESTED_EVALS);
        let res = if f.slab_bounds(&[], 0, -1.0, 1.0).is_some() {
            // theta_a in [a, b] is t_a in [cos b, cos a]; |dv/dtheta_a| <= |dv/dt_a|.
            let bounds = |prefix: &[f64], axis: usize, a: f64, b: f64| {
                let mut p = [0.0; 3];
                for (t, th) in p.iter_mut().zip(prefix) {
                    *t = th.cos();
                }
                f.slab_bounds(&p[..prefix.len()], axis, b.cos(), a.cos())
                    .unwrap_or(PanelBounds {
                        slope: f64::NAN,
                        width: f64::NAN,
                        sup: f64::NAN,
                    })
            };
            let mut freqs = [0.0; 3];
            for (q, k) in freqs.iter_mut().zip(&ks) {
                *q = k.abs() / (2.0 * PI);
            }
            let sample = |th: &[f64]| {
                let (g, v) = eval(th);
                Sample {
                    g: Complex::new(g, 0.0),
                    v_lo: v,
                    v_hi: v,
                }
            };
            quad::integrate_cube_guarded(
                &sample,
                d,
                &breaks,
                &panels,
                NESTED_TOL,
                5_000,
                &CubeGuard {
                    bounds: &bounds,
                    freqs,
                    budget: Some(&budget),
                },
            )
        } else {
            quad::integrate_cube_budgeted(
                &|th: &[f64]| Complex::new(eval(th).0, 0.0),
                d,
                &breaks,
                &panels,
                NESTED_TOL,
                5_000,
                &budget,
            )
        };
        let c: f64 = mode.iter().map(|&k| Self::weight(k)).product();
        let err = c * res.abs_err.max(NESTED_TOL);
        Continuous {
            value: Complex::new(c * res.value.re, 0.0),
            abs_err: err,
            how: quadrature_note("nested adaptive Gauss-Kronrod in theta", err, res.converged),
        }
    }
}

/// Chebyshev-Lobatto points t_j = cos(pi j / N), j = 0..N.
pub fn points(n: usize) -> Vec<f64> {
    (0..=n)
        .map(|j| {
            // sin form is symmetric and exact at the centre.
            (PI * (n as f64 - 2.0 * j as f64) / (2.0 * n as f64)).sin()
        })
        .collect()
}

/// Evaluate sum_k a_k T_k(t) by Clenshaw's recurrence.
pub fn clenshaw(a: &[f64], t: f64) -> f64 {
    let (mut b1, mut b2) = (0.0, 0.0);
    for &c in a.iter().skip(1).rev() {
        let b = 2.0 * t * b1 - b2 + c;
        b2 = b1;
        b1 = b;
    }
    a.first().copied().unwrap_or(0.0) + t * b1 - b2
}

impl Basis for ChebyshevBasis {
    fn family(&self) -> String {
        "chebyshev".into()
    }
    fn size(&self) -> usize {
        self.shape[0]
    }
    fn dim(&self) -> usize {
        self.shape.len()
    }
    fn num_samples(&self) -> usize {
        self.shape.iter().map(|&n| n + 1).product()
    }
    fn num_coeffs(&self) -> usize {
        self.num_samples()
    }
    fn quadrature(&self) -> Quadrature {
        // Clenshaw-Curtis-type weights of the trapezoid rule in theta: pi/N (pi/(2N) at the ends)
        // per axis for the measure d theta = dt / sqrt(1 - t^2), multiplied across axes.
        let axes: Vec<(Vec<f64>, Vec<f64>)> = self
            .shape
            .iter()
            .map(|&n| {
                let h = PI / n as f64;
                let w = (0..=n)
                    .map(|j| if j == 0 || j == n { h / 2.0 } else { h })
                    .collect();
                (points(n), w)
            })
            .collect();
        let pts = self.points_shape();
        let (mut nodes, mut weights) = (Vec::new(), Vec::new());
        for i in 0..self.num_samples() {
            let j = Self::split(i, &pts);
            nodes.push((0..self.shape.len()).map(|a| axes[a].0[j[a]]).collect());
            weights.push((0..self.shape.len()).map(|a| axes[a].1[j[a]]).product());
        }
        Quadrature { nodes, weights }
    }
    fn sample(&self, f: &dyn DomainFunction) -> Vec<f64> {
        let axes: Vec<Vec<f64>> = self.shape.iter().map(|&n| points(n)).collect();
        let pts = self.points_shape();
        let d = self.shape.len();
        (0..self.num_samples())
            .into_par_iter()
            .map(|i| {
                let j = Self::split(i, &pts);
                let mut t = [0.0; 3];
                for a in 0..d {
                    t[a] = axes[a][j[a]];
                }
                f.eval(&t[..d])
            })
            .collect()
    }
    fn mode(&self, index: usize) -> Vec<i64> {
        let k = Self::split(index, &self.points_shape());
        k[..self.shape.len()].iter().map(|&k| k as i64).collect()
    }
    fn index(&self, mode: &[i64]) -> Result<usize, BasisError> {
        let ok = mode.len() == self.shape.len()
            && mode
                .iter()
                .zip(&self.shape)
                .all(|(&k, &n)| k >= 0 && (k as usize) < n);
        if !ok {
            let n = self.shape[0];
            return Err(BasisError::usage(
                "--modes",
                if self.shape.len() == 1 {
                    format!(
                        "a Chebyshev mode is one degree 0 <= k < N = {n} (the interpolant's last coefficient is not an estimate of a_N), got {mode:?}"
                    )
                } else {
                    format!(
                        "a Chebyshev mode in dimension {d} is {d} degrees 0 <= k_i < N = {n} (the interpolant's last coefficients are not estimates), got {mode:?}",
                        d = self.shape.len()
                    )
                },
            ));
        }
        Ok(mode
            .iter()
            .zip(&self.shape)
            .fold(0, |acc, (&k, &n)| acc * (n + 1) + k as usize))
    }
    fn forward(&self, samples: &[f64]) -> Vec<Complex<f64>> {
        let ext = self.extend(samples);
        self.coefficients_of(&fft::reference_f64(&ext, &self.ext_shape()))
    }
    fn forward_model(
        &self,
        samples: &[f64],
        fmt: Format,
        model: Model,
    ) -> Result<ModelOutput, BasisError> {
        let ext = self.extend(samples);
        let out = fft::transform_under_model(&ext, &self.ext_shape(), fmt, model, Algorithm::Auto)?;
        Ok(ModelOutput {
            coeffs: self.coefficients_of(&out.coeffs),
            overflow: out.overflow,
            saturated: out.saturated,
        })
    }
    fn inverse(&self, coeffs: &[Complex<f64>]) -> Vec<f64> {
        assert_eq!(
            coeffs.len(),
            self.num_coeffs(),
            "Chebyshev N = {:?} takes prod (N + 1) coefficients",
            self.shape
        );
        // b on the even extension: a_k times prod_a g(k_a), g = 1 at 0 and N, else 1/2 (each
        // interior degree appears at i and 2N - i); its normalised DFT times (2N)^d is v.
        let ext = self.ext_shape();
        let len: usize = ext.iter().product();
        let b: Vec<f64> = (0..len)
            .map(|i| {
                let e = Self::split(i, &ext);
                let (mut g, mut src) = (1.0, 0);
                for (a, &n) in self.shape.iter().enumerate() {
                    let k = fold(e[a], n);
                    g *= if k == 0 || k == n { 1.0 } else { 0.5 };
                    src = src * (n + 1) + k;
                }
                g * coeffs[src].re
            })
            .collect();
        let x = fft::reference_f64(&b, &ext);
        let scale = len as f64;
        let pts = self.points_shape();
        (0..self.num_samples())
            .map(|i| {
                let j = Self::split(i, &pts);
                let e = self
                    .shape
                    .iter()
                    .enumerate()
                    .fold(0, |acc, (a, &n)| acc * 2 * n + j[a]);
                x[e].re * scale
            })
            .collect()
    }
    fn continuous(&self, f: &dyn DomainFunction, modes: &[Vec<i64>]) -> Vec<Continuous> {
        let factors = if self.shape.len() > 1 {
            f.factors()
        } else {
            None
        };
        modes
            .iter()
            .map(|mode| {
                if let Some(c) = f.exact_coefficient("chebyshev", mode) {
                    return c;
                }
                match &factors {
                    _ if mode.len() == 1 => Self::continuous_1d(f, mode[0]),
                    Some(fs) if fs.len() == mode.len() => Self::continuous_product(fs, mode),
                    _ => Self::continuous_nested(f, mode),
                }
            })
            .collect()
    }
    fn constants(&self, mode: &[i64]) -> ModeConstants {
        ModeConstants {
            sup_norm: 1.0,
            // |T_k'| <= k^2 on [-1,1] (Markov) per axis, so the gradient of the product is at
            // most sqrt(sum_a k_a^4) in norm; in theta the Lipschitz constant is k.
            lipschitz: mode
                .iter()
                .map(|&k| ((k * k) as f64).powi(2))
                .sum::<f64>()
                .sqrt(),
            breaks: Vec::new(),
        }
    }
    fn discretization_bound(&self, f: &dyn DomainFunction, _samples: &[f64], mode: &[i64]) -> f64 {
        let m = f.sup();
        let l = f.lipschitz();
        let c: f64 = mode.iter().map(|&k| Self::weight(k)).product();
        let d = self.shape.len();
        let mut sum = 0.0;
        for (&k, &n) in mode.iter().zip(&self.shape) {
            sum += c * (l + k as f64 * m) * PI * PI / (4.0 * n as f64);
        }
        let ext: usize = self.ext_shape().iter().product();
        sum * PI.powi(d as i32 - 1) + (1u32 << d) as f64 * bounds::f64_reference_error(m, ext)
    }
    fn precision_bound(
        &self,
        samples: &[f64],
        fmt: Format,
        model: Model,
        mode: &[i64],
    ) -> PrecisionBound {
        let ext = self.extend(samples);
        let n = ext.len() as f64;
        let mean_abs = ext.iter().map(|v| v.abs()).sum::<f64>() / n;
        let max_abs = ext.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let mut b = bounds::precision(
            &self.ext_shape(),
            Algorithm::Auto,
            fmt,
            model,
            mean_abs,
            max_abs,
        );
        let factor: f64 = mode
            .iter()
            .map(|&k| if k == 0 { 1.0 } else { 2.0 })
            .product();
        b.bound *= factor;
        b.probabilistic *= factor;
        b
    }
}
