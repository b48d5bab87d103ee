//! Chebyshev polynomials T_k on \[-1,1\] through a DCT-I on the N + 1 Chebyshev-Lobatto points
//! t_j = cos(pi j / N), j = 0..N (the grid size s is N).
//!
//! Coefficients are those of v = sum_k a_k T_k: a_k = c_k int_0^pi v(cos theta) cos(k theta)
//! d theta with c_0 = 1/pi and c_k = 2/pi (k >= 1). The discrete a^N_k (the interpolant's
//! coefficients, 0 <= k < N) is the trapezoid rule in theta with step pi/N, computed as the FFT of
//! the even extension (v_0, ..., v_N, v_{N-1}, ..., v_1) of length 2N: a^N_k = 2 Re X_k / (2N)
//! (k >= 1), X_0 / (2N) for k = 0. So every precision model of [`crate::fft`] applies unchanged,
//! and the precision bound is the FFT's for length 2N times 2 (times 1 for k = 0). Functions on
//! \[0,1\] are mapped by x = (t + 1)/2 ([`super::OnInterval::chebyshev`]).
//!
//! Discretization bound (proof): g(theta) = v(cos theta) cos(k theta) is Lipschitz in theta with
//! constant L_t + k M (|d cos theta / d theta| <= 1); the trapezoid rule errs by at most
//! L_g h^2 / 4 per panel of width h = pi / N, so |a_k - a^N_k| <= c_k (L_t + k M) pi^2 / (4 N).
//! That is the Lipschitz rate; smooth functions converge spectrally under it, the contrast with
//! the Fourier basis on non-periodic functions (y = x: a jump of the periodic extension).

use super::{Basis, BasisError, Continuous, DomainFunction, ModeConstants, Quadrature};
use super::{quadrature_note, quadrature_of};
use crate::bounds::{self, PrecisionBound};
use crate::fft::{self, Algorithm, Complex, ModelOutput};
use crate::functions::quad::QuadOptions;
use crate::precision::{Format, Model};
use std::f64::consts::PI;

/// The DCT-I on N + 1 Chebyshev-Lobatto points.
pub struct ChebyshevBasis {
    n: usize,
}

impl ChebyshevBasis {
    /// Plan for N >= 1 (N + 1 points).
    pub fn new(n: usize) -> Result<Self, BasisError> {
        if n < 1 {
            return Err(BasisError::usage(
                "--sizes",
                "Chebyshev needs N >= 1 (N + 1 points)",
            ));
        }
        Ok(ChebyshevBasis { n })
    }
    fn extend(&self, samples: &[f64]) -> Vec<f64> {
        assert_eq!(
            samples.len(),
            self.n + 1,
            "Chebyshev N = {} takes N + 1 samples",
            self.n
        );
        let mut ext = samples.to_vec();
        ext.extend(samples[1..self.n].iter().rev());
        ext
    }
    fn coefficients_of(&self, x: &[Complex<f64>]) -> Vec<Complex<f64>> {
        (0..=self.n)
            .map(|k| {
                let f = if k == 0 || k == self.n { 1.0 } else { 2.0 };
                Complex::new(f * x[k].re, 0.0)
            })
            .collect()
    }
    fn weight(k: i64) -> f64 {
        if k == 0 { 1.0 / PI } else { 2.0 / PI }
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
        self.n
    }
    fn dim(&self) -> usize {
        1
    }
    fn num_samples(&self) -> usize {
        self.n + 1
    }
    fn num_coeffs(&self) -> usize {
        self.n + 1
    }
    fn quadrature(&self) -> Quadrature {
        // Clenshaw-Curtis-type weights of the trapezoid rule in theta: pi/N (pi/(2N) at the ends)
        // for the measure d theta = dt / sqrt(1 - t^2).
        let h = PI / self.n as f64;
        Quadrature {
            nodes: points(self.n).into_iter().map(|t| vec![t]).collect(),
            weights: (0..=self.n)
                .map(|j| if j == 0 || j == self.n { h / 2.0 } else { h })
                .collect(),
        }
    }
    fn mode(&self, index: usize) -> Vec<i64> {
        vec![index as i64]
    }
    fn index(&self, mode: &[i64]) -> Result<usize, BasisError> {
        match mode {
            [k] if *k >= 0 && (*k as usize) < self.n => Ok(*k as usize),
            _ => Err(BasisError::usage(
                "--modes",
                format!(
                    "a Chebyshev mode is one degree 0 <= k < N = {} (the interpolant's last coefficient is not an estimate of a_N), got {mode:?}",
                    self.n
                ),
            )),
        }
    }
    fn forward(&self, samples: &[f64]) -> Vec<Complex<f64>> {
        let ext = self.extend(samples);
        self.coefficients_of(&fft::reference_f64(&ext, &[2 * self.n]))
    }
    fn forward_model(
        &self,
        samples: &[f64],
        fmt: Format,
        model: Model,
    ) -> Result<ModelOutput, BasisError> {
        let ext = self.extend(samples);
        let out = fft::transform_under_model(&ext, &[2 * self.n], fmt, model, Algorithm::Auto)?;
        Ok(ModelOutput {
            coeffs: self.coefficients_of(&out.coeffs),
            overflow: out.overflow,
            saturated: out.saturated,
        })
    }
    fn inverse(&self, coeffs: &[Complex<f64>]) -> Vec<f64> {
        let n = self.n;
        assert_eq!(
            coeffs.len(),
            n + 1,
            "Chebyshev N = {n} takes N + 1 coefficients"
        );
        let mut b = vec![0.0; 2 * n];
        b[0] = coeffs[0].re;
        for k in 1..n {
            b[k] = coeffs[k].re / 2.0;
            b[2 * n - k] = coeffs[k].re / 2.0;
        }
        b[n] += coeffs[n].re;
        let x = fft::reference_f64(&b, &[2 * n]);
        x[..=n].iter().map(|z| z.re * (2 * n) as f64).collect()
    }
    fn continuous(&self, f: &dyn DomainFunction, modes: &[Vec<i64>]) -> Vec<Continuous> {
        modes
            .iter()
            .map(|mode| {
                if let Some(c) = f.exact_coefficient("chebyshev", mode) {
                    return c;
                }
                let k = mode[0];
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
                Continuous {
                    value: Complex::new(c * res.value.re, 0.0),
                    abs_err: err,
                    how: quadrature_note("adaptive Gauss-Kronrod in theta", err, res.converged),
                }
            })
            .collect()
    }
    fn constants(&self, mode: &[i64]) -> ModeConstants {
        ModeConstants {
            sup_norm: 1.0,
            // |T_k'| <= k^2 on [-1,1] (Markov); in theta the Lipschitz constant is k.
            lipschitz: (mode[0] * mode[0]) as f64,
            breaks: Vec::new(),
        }
    }
    fn discretization_bound(&self, f: &dyn DomainFunction, _samples: &[f64], mode: &[i64]) -> f64 {
        let k = mode[0];
        let m = f.sup();
        Self::weight(k) * (f.lipschitz() + k as f64 * m) * PI * PI / (4.0 * self.n as f64)
            + 2.0 * bounds::f64_reference_error(m, 2 * self.n)
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
        let mut b = bounds::precision(&[ext.len()], Algorithm::Auto, fmt, model, mean_abs, max_abs);
        let factor = if mode[0] == 0 { 1.0 } else { 2.0 };
        b.bound *= factor;
        b.probabilistic *= factor;
        b
    }
}
