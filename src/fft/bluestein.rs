//! Bluestein's chirp-z algorithm: for any n, with c_k = exp(-+ i pi k^2 / n),
//! X_k = c_k sum_j (x_j c_j) conj(c_{k-j}), a circular convolution of length m >= 2n - 1 computed
//! with two power-of-two transforms and a pointwise product with B = FFT_m(b),
//! b_k = conj(c_k) (|k| < n, wrapped mod m). B is computed in f64 (our radix 4) and rounded once
//! to T.

use super::pow2::{Pow2, store};
use super::{Complex, Direction, StageOptions};
use crate::precision::{Overflow, Real};

pub(crate) struct Bluestein<T: Real> {
    n: usize,
    m: usize,
    chirp: Vec<Complex<T>>,
    spectrum: Vec<Complex<T>>,
    fwd: Pow2<T>,
    inv: Pow2<T>,
}

/// The chirp exp(-+ i pi k^2 / n) in f64, with k^2 reduced mod 2n for an accurate angle.
pub(crate) fn chirp_f64(n: usize, dir: Direction) -> Vec<Complex<f64>> {
    let roots = super::f64_roots(2 * n);
    (0..n as u64)
        .map(|k| super::f64_root(&roots, (k * k) % (2 * n as u64), dir))
        .collect()
}

/// m = the power of two >= 2n - 1, and B = FFT_m(b) in f64 (b_k = conj(c_k), wrapped).
pub(crate) fn spectrum_f64(n: usize, dir: Direction) -> (usize, Vec<Complex<f64>>) {
    let m = (2 * n - 1).next_power_of_two();
    let c = chirp_f64(n, dir);
    let mut b = vec![Complex::new(0.0, 0.0); m];
    for k in 0..n {
        b[k] = c[k].conj();
        if k > 0 {
            b[m - k] = c[k].conj();
        }
    }
    // Our radix 4 in f64 (not rustfft), so B's error is the proven bound of
    // `bounds::bluestein_spectrum_error`.
    super::Fft::<f64>::new(m, Direction::Forward, super::Algorithm::Radix4)
        .expect("m is a power of two")
        .process(&mut b);
    (m, b)
}

impl<T: Real> Bluestein<T> {
    pub(crate) fn new(n: usize, dir: Direction) -> Self {
        let (m, spec) = spectrum_f64(n, dir);
        let to_t = |z: &Complex<f64>| Complex::new(T::from_f64(z.re), T::from_f64(z.im));
        Bluestein {
            n,
            m,
            chirp: chirp_f64(n, dir).iter().map(to_t).collect(),
            spectrum: spec.iter().map(to_t).collect(),
            fwd: Pow2::new(m, Direction::Forward, true),
            inv: Pow2::new(m, Direction::Inverse, true),
        }
    }

    pub(crate) fn m(&self) -> usize {
        self.m
    }

    /// Returns the overall scaling factor (1, or 1/m with per-stage scaling) and whether a
    /// saturating format clipped.
    pub(crate) fn process(
        &self,
        data: &mut [Complex<T>],
        scratch: &mut [Complex<T>],
        opts: &StageOptions,
    ) -> (f64, bool) {
        let (n, m) = (self.n, self.m);
        let reals: &mut [T] = unsafe {
            std::slice::from_raw_parts_mut(scratch.as_mut_ptr() as *mut T, 2 * scratch.len())
        };
        let (re, rest) = reals.split_at_mut(m);
        let im = &mut rest[..m];
        let sat = T::FORMAT.overflow() == Overflow::Saturate;
        // a = x c (zero-padded to m)
        for k in 0..m {
            if k < n {
                let (x, c) = (data[k], self.chirp[k]);
                re[k] = x.re * c.re - x.im * c.im;
                im[k] = x.re * c.im + x.im * c.re;
            } else {
                re[k] = T::zero();
                im[k] = T::zero();
            }
        }
        let mut clipped = store(re, im, opts, sat);
        let (f1, c1) = self.fwd.process_split(re, im, opts);
        for k in 0..m {
            let (ar, ai, b) = (re[k], im[k], self.spectrum[k]);
            re[k] = ar * b.re - ai * b.im;
            im[k] = ar * b.im + ai * b.re;
        }
        clipped |= store(re, im, opts, sat) | c1;
        let (f2, c2) = self.inv.process_split(re, im, opts);
        clipped |= c2;
        // conv = V / m: exact (m is a power of two) barring underflow. With scaling, the two
        // inner transforms applied 1/m each, so V is already conv / m.
        let inv_m = T::from_f64(1.0 / m as f64);
        for k in 0..n {
            let (mut vr, mut vi) = (re[k], im[k]);
            if !opts.scale {
                vr *= inv_m;
                vi *= inv_m;
            }
            let c = self.chirp[k];
            data[k] = Complex::new(vr * c.re - vi * c.im, vr * c.im + vi * c.re);
        }
        let (mut ore, mut oim): (Vec<T>, Vec<T>) = data.iter().map(|z| (z.re, z.im)).unzip();
        clipped |= store(&mut ore, &mut oim, opts, sat);
        super::pow2::join(&ore, &oim, data);
        let factor = if opts.scale { f1 * f2 * m as f64 } else { 1.0 };
        (factor, clipped)
    }
}
