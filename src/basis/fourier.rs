//! The Fourier basis exp(2 pi i <w, x>) on \[0,1)^d as a [`Basis`]: an adapter onto
//! [`crate::fft`] (normalised DFT X_w / n, the precision models of
//! [`crate::fft::transform_under_model`]) and the bounds of [`crate::bounds`]. It gives the same
//! numbers as [`crate::error::run_sweep`] (tested in tests/basis_fourier.rs).

use super::{Basis, BasisError, Continuous, DomainFunction, ModeConstants, Quadrature};
use crate::bounds::{self, PrecisionBound};
use crate::fft::{self, Algorithm, Complex, Direction, FftNd, ModelOutput};
use crate::precision::{Format, Model};
use std::f64::consts::PI;

/// The DFT on the grid x_j = j / s of \[0,1)^d.
pub struct FourierBasis {
    shape: Vec<usize>,
    alg: Algorithm,
}

impl FourierBasis {
    /// Plan for a grid of `shape` (each s >= 1, d = 1..3), FFT algorithm Auto.
    pub fn new(shape: &[usize]) -> Result<Self, BasisError> {
        Self::with_algorithm(shape, Algorithm::Auto)
    }
    /// Plan with a given FFT algorithm for models II and III.
    pub fn with_algorithm(shape: &[usize], alg: Algorithm) -> Result<Self, BasisError> {
        if shape.is_empty() || shape.len() > 3 {
            return Err(BasisError::usage(
                "--dim",
                format!("Fourier grids have 1 to 3 axes, got {}", shape.len()),
            ));
        }
        if shape.contains(&0) {
            return Err(BasisError::usage("--sizes", "grid sizes must be >= 1"));
        }
        for &s in shape {
            if matches!(alg, Algorithm::Radix2 | Algorithm::Radix4) && !s.is_power_of_two() {
                return Err(fft::FftError::NotPowerOfTwo { alg, n: s }.into());
            }
        }
        Ok(FourierBasis {
            shape: shape.to_vec(),
            alg,
        })
    }
    fn n(&self) -> usize {
        self.shape.iter().product()
    }
}

impl Basis for FourierBasis {
    fn family(&self) -> String {
        "fourier".into()
    }
    fn size(&self) -> usize {
        self.shape[0]
    }
    fn dim(&self) -> usize {
        self.shape.len()
    }
    fn num_samples(&self) -> usize {
        self.n()
    }
    fn num_coeffs(&self) -> usize {
        self.n()
    }
    fn quadrature(&self) -> Quadrature {
        let n = self.n();
        let d = self.shape.len();
        let nodes = (0..n)
            .map(|i| {
                let mut x = vec![0.0; d];
                let mut r = i;
                for a in (0..d).rev() {
                    x[a] = (r % self.shape[a]) as f64 / self.shape[a] as f64;
                    r /= self.shape[a];
                }
                x
            })
            .collect();
        Quadrature {
            nodes,
            weights: vec![1.0 / n as f64; n],
        }
    }
    fn mode(&self, index: usize) -> Vec<i64> {
        let mut w = vec![0i64; self.shape.len()];
        let mut r = index;
        for a in (0..self.shape.len()).rev() {
            w[a] = (r % self.shape[a]) as i64;
            r /= self.shape[a];
        }
        w
    }
    fn index(&self, mode: &[i64]) -> Result<usize, BasisError> {
        if mode.len() != self.shape.len() {
            return Err(BasisError::usage(
                "--modes",
                format!(
                    "a Fourier mode in dimension {} has {} entries, got {mode:?}",
                    self.shape.len(),
                    self.shape.len()
                ),
            ));
        }
        Ok(mode.iter().zip(&self.shape).fold(0usize, |acc, (&k, &s)| {
            acc * s + k.rem_euclid(s as i64) as usize
        }))
    }
    fn forward(&self, samples: &[f64]) -> Vec<Complex<f64>> {
        fft::reference_f64(samples, &self.shape)
    }
    fn forward_model(
        &self,
        samples: &[f64],
        fmt: Format,
        model: Model,
    ) -> Result<ModelOutput, BasisError> {
        Ok(fft::transform_under_model(
            samples,
            &self.shape,
            fmt,
            model,
            self.alg,
        )?)
    }
    fn inverse(&self, coeffs: &[Complex<f64>]) -> Vec<f64> {
        let plan = FftNd::<f64>::new(&self.shape, Direction::Inverse, Algorithm::Auto)
            .expect("shape validated at plan time");
        let mut data = coeffs.to_vec();
        plan.process(&mut data);
        data.iter().map(|z| z.re).collect()
    }
    fn continuous(&self, f: &dyn DomainFunction, modes: &[Vec<i64>]) -> Vec<Continuous> {
        modes
            .iter()
            .map(|w| {
                f.exact_coefficient("fourier", w)
                    .expect("functions on [0,1]^d have Fourier coefficients")
            })
            .collect()
    }
    fn constants(&self, mode: &[i64]) -> ModeConstants {
        ModeConstants {
            sup_norm: 1.0,
            lipschitz: 2.0 * PI * bounds::mode_norm(mode),
            breaks: Vec::new(),
        }
    }
    fn discretization_bound(&self, f: &dyn DomainFunction, _samples: &[f64], mode: &[i64]) -> f64 {
        bounds::discretization_upper(f.lipschitz(), f.sup(), mode, self.shape[0])
            + bounds::f64_reference_error(f.sup(), self.n())
    }
    fn discretization_lower(&self, f: &dyn DomainFunction, mode: &[i64]) -> Option<f64> {
        let l = f.lipschitz();
        l.is_finite()
            .then(|| bounds::discretization_lower(l, f.sup(), mode, self.shape[0]))
    }
    fn precision_bound(
        &self,
        samples: &[f64],
        fmt: Format,
        model: Model,
        _mode: &[i64],
    ) -> PrecisionBound {
        let n = samples.len() as f64;
        let mean_abs = samples.iter().map(|v| v.abs()).sum::<f64>() / n;
        let max_abs = samples.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        bounds::precision(&self.shape, self.alg, fmt, model, mean_abs, max_abs)
    }
}
