//! Real-to-complex and complex-to-real transforms of any length.
//!
//! Computed through the complex transform of the same length (imaginary parts zero on input; the
//! Hermitian half on output), so the error models and bounds of the complex transform apply
//! unchanged. (A half-length packing would halve the work; it is left for when a caller needs it.)

use super::{Algorithm, Complex, Direction, Fft, FftError};
use crate::precision::Real;

/// A planned real transform pair of length n.
pub struct RealFft<T: Real> {
    n: usize,
    fwd: Fft<T>,
    inv: Fft<T>,
}

impl<T: Real> RealFft<T> {
    /// Plan length `n` (>= 1).
    pub fn new(n: usize, alg: Algorithm) -> Result<Self, FftError> {
        Ok(RealFft {
            n,
            fwd: Fft::new(n, Direction::Forward, alg)?,
            inv: Fft::new(n, Direction::Inverse, alg)?,
        })
    }

    /// Number of complex outputs of the forward transform: n/2 + 1.
    pub fn spectrum_len(&self) -> usize {
        self.n / 2 + 1
    }

    /// Forward: X_k = sum_j x_j exp(-2 pi i jk/n) for k = 0..=n/2 (unnormalised).
    pub fn forward(&self, x: &[T]) -> Vec<Complex<T>> {
        assert_eq!(
            x.len(),
            self.n,
            "real FFT of length {} given {} values",
            self.n,
            x.len()
        );
        let mut data: Vec<Complex<T>> = x.iter().map(|&v| Complex::new(v, T::zero())).collect();
        self.fwd.process(&mut data);
        data.truncate(self.spectrum_len());
        data
    }

    /// Inverse: x_j = sum_k X_k exp(+2 pi i jk/n) over the Hermitian extension of the n/2 + 1
    /// given coefficients (unnormalised: inverse(forward(x)) = n x). Imaginary parts of X_0 and,
    /// for even n, X_{n/2} are ignored, as for any C2R transform.
    pub fn inverse(&self, spectrum: &[Complex<T>]) -> Vec<T> {
        assert_eq!(
            spectrum.len(),
            self.spectrum_len(),
            "inverse real FFT of length {} needs {} coefficients, given {}",
            self.n,
            self.spectrum_len(),
            spectrum.len()
        );
        let n = self.n;
        let mut full = vec![Complex::new(T::zero(), T::zero()); n];
        for k in 0..n {
            full[k] = if k < spectrum.len() {
                spectrum[k]
            } else {
                let z = spectrum[n - k];
                Complex::new(z.re, -z.im)
            };
        }
        full[0].im = T::zero();
        if n.is_multiple_of(2) {
            full[n / 2].im = T::zero();
        }
        self.inv.process(&mut full);
        full.into_iter().map(|z| z.re).collect()
    }
}
