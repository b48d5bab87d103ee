//! The f64 transforms the PDE solvers share: a 2-D complex FFT on an r x r grid and the DCT-I on a
//! vertex grid, both on top of rustfft plans made once and reused (plans are `Arc`s, so clones of
//! a transform share them; each clone owns its scratch memory).

use num_complex::Complex64;
use rustfft::{Fft, FftPlanner};
use std::sync::Arc;

/// Integer frequency of DFT index `i` on `n` points: 0, 1, ..., ceil(n/2)-1, then -floor(n/2),
/// ..., -1. For even n the Nyquist index n/2 maps to -n/2 (its sign is a convention; every user
/// here either squares it or zeroes it).
pub fn freq(i: usize, n: usize) -> i64 {
    if i < n.div_ceil(2) {
        i as i64
    } else {
        i as i64 - n as i64
    }
}

/// Wavenumber for an odd derivative of DFT index `i`: [`freq`], except 0 at the Nyquist index of
/// an even n. There cos(pi j) has no derivative that is real on the grid, so keeping i k there
/// would give a real field a complex derivative.
pub fn deriv_freq(i: usize, n: usize) -> i64 {
    if n.is_multiple_of(2) && i == n / 2 {
        0
    } else {
        freq(i, n)
    }
}

/// Unnormalised 2-D DFT on row-major r x r complex arrays:
/// forward `X[a,b] = sum_{i,j} x[i,j] exp(-2 pi i (a i + b j) / r)`, inverse with exp(+...), no 1/r^2.
#[derive(Clone)]
pub struct Fft2 {
    n: usize,
    fwd: Arc<dyn Fft<f64>>,
    inv: Arc<dyn Fft<f64>>,
    scratch: Vec<Complex64>,
    tmp: Vec<Complex64>,
}

impl Fft2 {
    pub fn new(n: usize) -> Self {
        let mut planner = FftPlanner::new();
        let fwd = planner.plan_fft_forward(n);
        let inv = planner.plan_fft_inverse(n);
        let len = fwd
            .get_inplace_scratch_len()
            .max(inv.get_inplace_scratch_len());
        Fft2 {
            n,
            fwd,
            inv,
            scratch: vec![Complex64::default(); len],
            tmp: vec![Complex64::default(); n * n],
        }
    }

    pub fn n(&self) -> usize {
        self.n
    }

    fn run(&mut self, data: &mut [Complex64], forward: bool) {
        assert_eq!(data.len(), self.n * self.n, "Fft2: array is not r x r");
        let plan = if forward { &self.fwd } else { &self.inv };
        // Rows, transpose, rows (= columns), transpose back: every FFT runs on contiguous memory.
        plan.process_with_scratch(data, &mut self.scratch);
        transpose(data, &mut self.tmp, self.n);
        plan.process_with_scratch(&mut self.tmp, &mut self.scratch);
        transpose(&self.tmp, data, self.n);
    }

    pub fn forward(&mut self, data: &mut [Complex64]) {
        self.run(data, true);
    }

    pub fn inverse(&mut self, data: &mut [Complex64]) {
        self.run(data, false);
    }
}

fn transpose(src: &[Complex64], dst: &mut [Complex64], n: usize) {
    // Blocks of 16 x 16 keep both the rows read and the rows written in cache.
    const B: usize = 16;
    for i0 in (0..n).step_by(B) {
        for j0 in (0..n).step_by(B) {
            for i in i0..(i0 + B).min(n) {
                for j in j0..(j0 + B).min(n) {
                    dst[j * n + i] = src[i * n + j];
                }
            }
        }
    }
}

/// DCT-I synthesis on the vertex grid of r = N + 1 points (N >= 1):
/// u_j = sum_{k=0}^{N} c_k cos(pi k j / N), j = 0..N, computed from one complex FFT of length 2N
/// of the even extension of c (O(N log N)).
#[derive(Clone)]
pub struct Dct1 {
    r: usize,
    inv: Arc<dyn Fft<f64>>,
    buf: Vec<Complex64>,
    scratch: Vec<Complex64>,
}

impl Dct1 {
    /// Transform for `r` >= 2 points.
    pub fn new(r: usize) -> Self {
        assert!(r >= 2, "Dct1 needs at least 2 points");
        let m = 2 * (r - 1);
        let inv = FftPlanner::new().plan_fft_inverse(m);
        let s = inv.get_inplace_scratch_len();
        Dct1 {
            r,
            inv,
            buf: vec![Complex64::default(); m],
            scratch: vec![Complex64::default(); s],
        }
    }

    /// Replace the coefficients `c` (length r) by the values u_j.
    pub fn synthesize(&mut self, c: &mut [f64]) {
        let r = self.r;
        let nn = r - 1;
        assert_eq!(c.len(), r);
        // Even extension b_m = c_m (m <= N), b_{2N-m} = c_m (0 < m < N):
        // sum_m b_m e^{i pi m j / N} = c_0 + c_N (-1)^j + 2 sum_{0<k<N} c_k cos(pi k j / N).
        for (m, b) in self.buf.iter_mut().enumerate() {
            let k = if m <= nn { m } else { 2 * nn - m };
            *b = Complex64::new(c[k], 0.0);
        }
        self.inv
            .process_with_scratch(&mut self.buf, &mut self.scratch);
        let (c0, cn) = (c[0], c[nn]);
        for (j, u) in c.iter_mut().enumerate() {
            let sign = if j % 2 == 0 { 1.0 } else { -1.0 };
            *u = 0.5 * (self.buf[j].re + c0 + cn * sign);
        }
    }

    /// DCT-I synthesis along both axes of a row-major r x r array.
    pub fn synthesize_2d(&mut self, c: &mut [f64]) {
        let r = self.r;
        assert_eq!(c.len(), r * r);
        for row in c.chunks_exact_mut(r) {
            self.synthesize(row);
        }
        let mut col = vec![0.0; r];
        for j in 0..r {
            for i in 0..r {
                col[i] = c[i * r + j];
            }
            self.synthesize(&mut col);
            for i in 0..r {
                c[i * r + j] = col[i];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    #[test]
    fn fft2_matches_naive_dft() {
        let n = 6;
        let x: Vec<Complex64> = (0..n * n)
            .map(|p| Complex64::new((p as f64 * 0.37).sin(), (p as f64 * 0.11).cos()))
            .collect();
        let mut y = x.clone();
        Fft2::new(n).forward(&mut y);
        for a in 0..n {
            for b in 0..n {
                let mut s = Complex64::default();
                for i in 0..n {
                    for j in 0..n {
                        let th = -2.0 * PI * ((a * i + b * j) as f64) / n as f64;
                        s += x[i * n + j] * Complex64::from_polar(1.0, th);
                    }
                }
                // error model: eps * n^2 terms * max|x| (|x| <= sqrt 2)
                assert!((s - y[a * n + b]).norm() < 1e-16 * 36.0 * 1.5 * 10.0);
            }
        }
    }

    #[test]
    fn dct1_matches_cosine_sum() {
        for r in [2usize, 3, 9, 16] {
            let c: Vec<f64> = (0..r).map(|k| 1.0 / (1.0 + k as f64)).collect();
            let mut u = c.clone();
            Dct1::new(r).synthesize(&mut u);
            let nn = (r - 1) as f64;
            for (j, &uj) in u.iter().enumerate() {
                let want: f64 = c
                    .iter()
                    .enumerate()
                    .map(|(k, ck)| ck * (PI * (k * j) as f64 / nn).cos())
                    .sum();
                assert!((uj - want).abs() < 1e-15 * 4.0 * r as f64, "r {r} j {j}");
            }
        }
    }
}
