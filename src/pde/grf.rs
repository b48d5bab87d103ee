//! Gaussian random fields u ~ N(0, C), C = sigma^2 (-Delta + tau^2 I)^(-alpha), in 1-D and 2-D.
//!
//! Periodic (torus [0,1)^d, grid x_j = j/r): the eigenfunctions of -Delta are exp(2 pi i k.x),
//! k in Z^d, with eigenvalues 4 pi^2 |k|^2, so C has eigenvalues
//! lambda_k = sigma^2 (4 pi^2 |k|^2 + tau^2)^(-alpha). A sample is
//! u(x_j) = Re sum_k sqrt(lambda_k) (xi_k + i eta_k) exp(2 pi i k.x_j) over the r^d grid
//! frequencies (|k_i| <= r/2), with xi, eta iid N(0,1). Its covariance is
//! sum_k lambda_k cos(2 pi k.(x - y)), the Karhunen-Loeve expansion of C cut at the grid, so
//! E|u_hat_k|^2 = lambda_k for the normalised DFT u_hat_k = r^-d sum_j u_j exp(-2 pi i k.x_j).
//!
//! Neumann (square \[0,1\]^d, vertex grid x_j = j/(r-1)): the eigenfunctions of -Delta with zero
//! normal derivative are prod_i phi_{k_i}(x_i), phi_0 = 1, phi_k = sqrt(2) cos(pi k x), k in N^d,
//! eigenvalues pi^2 |k|^2, so lambda_k = sigma^2 (pi^2 |k|^2 + tau^2)^(-alpha) and a sample is
//! u = sum_k sqrt(lambda_k) xi_k prod_i phi_{k_i}(x_i) over 0 <= k_i <= r-1 (DCT-I).
//!
//! `zero_mean` drops the constant mode k = 0, as every FNO generator does (their `sqrt_eig[0,0] =
//! 0`, `L(1,1) = 0`); Navier-Stokes needs it, since a periodic vorticity has zero mean.
//!
//! Scale conventions of the FNO code (documented here because the defaults elsewhere follow them):
//! its PyTorch `GaussianRF` (used by `ns_2d.py`) multiplies sqrt(lambda_k) by an extra sqrt(2)
//! and takes the real part of a complex sum over all k, so its fields have covariance 2 C, not C;
//! its MATLAB `GRF1.m` (Burgers) samples C itself. This module always samples C exactly.

use super::spectral::{Dct1, Fft2, freq};
use super::{Rng, normal_pair};
use num_complex::Complex64;
use rustfft::{Fft, FftPlanner};
use std::f64::consts::PI;
use std::sync::Arc;

/// Covariance parameters: C = sigma^2 (-Delta + tau^2 I)^(-alpha).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GrfParams {
    pub alpha: f64,
    pub tau: f64,
    pub sigma: f64,
    /// Drop the constant mode (mean zero).
    pub zero_mean: bool,
}

/// Boundary condition of the field: periodic (Fourier) or Neumann (cosine).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Boundary {
    Periodic,
    Neumann,
}

impl GrfParams {
    /// Eigenvalue lambda_k of C for the integer mode k (periodic: 4 pi^2 |k|^2, Neumann:
    /// pi^2 |k|^2 in the operator); 0 for k = 0 when `zero_mean`.
    pub fn eigenvalue(&self, boundary: Boundary, k: &[i64]) -> f64 {
        let k2: f64 = k.iter().map(|&k| (k * k) as f64).sum();
        if self.zero_mean && k2 == 0.0 {
            return 0.0;
        }
        let c = match boundary {
            Boundary::Periodic => 4.0 * PI * PI,
            Boundary::Neumann => PI * PI,
        };
        self.sigma * self.sigma * (c * k2 + self.tau * self.tau).powf(-self.alpha)
    }
}

enum Transform {
    One(Arc<dyn Fft<f64>>, Vec<Complex64>),
    Two(Box<Fft2>),
    Cosine(Dct1),
}

/// A GRF sampler on one grid: r points per axis in `dim` = 1 or 2 dimensions. Clones share the
/// FFT plans and own their scratch memory (one clone per thread).
pub struct Grf {
    pub params: GrfParams,
    pub boundary: Boundary,
    pub dim: usize,
    pub r: usize,
    sqrt_eig: Vec<f64>, // (r^dim), row-major over DFT indices (periodic) or cosine modes (Neumann)
    transform: Transform,
}

impl Clone for Grf {
    fn clone(&self) -> Self {
        Grf {
            params: self.params,
            boundary: self.boundary,
            dim: self.dim,
            r: self.r,
            sqrt_eig: self.sqrt_eig.clone(),
            transform: match &self.transform {
                Transform::One(p, s) => Transform::One(p.clone(), s.clone()),
                Transform::Two(f) => Transform::Two(f.clone()),
                Transform::Cosine(d) => Transform::Cosine(d.clone()),
            },
        }
    }
}

impl Grf {
    /// Sampler for `dim` in {1, 2} and r >= 2 points per axis.
    pub fn new(params: GrfParams, boundary: Boundary, dim: usize, r: usize) -> Self {
        assert!(dim == 1 || dim == 2, "GRF: dim must be 1 or 2");
        assert!(r >= 2, "GRF: need r >= 2");
        let mode = |i: usize| match boundary {
            Boundary::Periodic => freq(i, r),
            Boundary::Neumann => i as i64,
        };
        let sqrt_eig: Vec<f64> = if dim == 1 {
            (0..r)
                .map(|i| params.eigenvalue(boundary, &[mode(i)]).sqrt())
                .collect()
        } else {
            (0..r * r)
                .map(|p| {
                    params
                        .eigenvalue(boundary, &[mode(p / r), mode(p % r)])
                        .sqrt()
                })
                .collect()
        };
        let transform = match (boundary, dim) {
            (Boundary::Periodic, 1) => {
                let plan = FftPlanner::new().plan_fft_inverse(r);
                let s = plan.get_inplace_scratch_len();
                Transform::One(plan, vec![Complex64::default(); s])
            }
            (Boundary::Periodic, _) => Transform::Two(Box::new(Fft2::new(r))),
            (Boundary::Neumann, _) => Transform::Cosine(Dct1::new(r)),
        };
        Grf {
            params,
            boundary,
            dim,
            r,
            sqrt_eig,
            transform,
        }
    }

    /// One sample on the grid (row-major, r^dim values). Draws one (xi, eta) pair per mode in
    /// row-major mode order (Neumann uses xi only, discarding eta, so both layouts consume the
    /// same stream length).
    pub fn sample(&mut self, rng: &mut Rng) -> Vec<f64> {
        match &mut self.transform {
            Transform::One(..) | Transform::Two(_) => {
                let mut c: Vec<Complex64> = self
                    .sqrt_eig
                    .iter()
                    .map(|&s| {
                        let (a, b) = normal_pair(rng);
                        Complex64::new(s * a, s * b)
                    })
                    .collect();
                match &mut self.transform {
                    Transform::One(plan, scratch) => plan.process_with_scratch(&mut c, scratch),
                    Transform::Two(f) => f.inverse(&mut c),
                    Transform::Cosine(_) => unreachable!(),
                }
                c.iter().map(|z| z.re).collect()
            }
            Transform::Cosine(dct) => {
                let r = self.r;
                let mut c: Vec<f64> = self
                    .sqrt_eig
                    .iter()
                    .enumerate()
                    .map(|(p, &s)| {
                        let (a, _) = normal_pair(rng);
                        // phi_k = sqrt(2) cos(pi k x) for k > 0 per axis
                        let axes: &[usize] = if self.dim == 1 { &[p] } else { &[p / r, p % r] };
                        let norm: f64 = axes
                            .iter()
                            .map(|&k| if k > 0 { 2f64.sqrt() } else { 1.0 })
                            .product();
                        s * a * norm
                    })
                    .collect();
                if self.dim == 1 {
                    dct.synthesize(&mut c);
                } else {
                    dct.synthesize_2d(&mut c);
                }
                c
            }
        }
    }
}
