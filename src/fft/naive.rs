//! The O(n^2) DFT in f64: the oracle every fast path is tested against.

use super::{Complex, Direction};

/// exp(sign 2 pi i k / n) with k reduced mod n first, so the angle is accurate for any k.
pub(crate) fn root(k: u64, n: u64, dir: Direction) -> Complex<f64> {
    let k = k % n;
    let theta = 2.0 * std::f64::consts::PI * (k as f64) / (n as f64);
    let (s, c) = theta.sin_cos();
    match dir {
        Direction::Forward => Complex::new(c, -s),
        Direction::Inverse => Complex::new(c, s),
    }
}

/// X_k = sum_j x_j exp(-+2 pi i j k / n), unnormalised, with j k reduced mod n and a compensated
/// (Kahan) sum, so its own error is O(n u) at worst and ~ u in practice.
pub fn naive_dft(x: &[Complex<f64>], dir: Direction) -> Vec<Complex<f64>> {
    let n = x.len() as u64;
    let table: Vec<Complex<f64>> = (0..n).map(|k| root(k, n, dir)).collect();
    (0..n)
        .map(|k| {
            let (mut sum, mut comp) = (Complex::new(0.0, 0.0), Complex::new(0.0, 0.0));
            for (j, &xj) in x.iter().enumerate() {
                let term = xj * table[((j as u64 * k) % n) as usize] - comp;
                let t = sum + term;
                comp = (t - sum) - term;
                sum = t;
            }
            sum
        })
        .collect()
}

/// The d-D naive DFT of a row-major array (last axis fastest): 1-D naive DFTs along every axis.
pub fn naive_dft_nd(x: &[Complex<f64>], shape: &[usize], dir: Direction) -> Vec<Complex<f64>> {
    let mut data = x.to_vec();
    super::nd::for_each_line(&mut data, shape, |line| {
        let y = naive_dft(line, dir);
        line.copy_from_slice(&y);
    });
    data
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fft::TWIDDLE_F64_ERROR;
    use crate::interval::{Certified, Interval, elementary, point};

    /// Certified enclosures of (cos, sin) of 2 pi p / q, the angle first reduced exactly to
    /// [0, pi/4] by the symmetries of the circle (rational arithmetic on p / q), so the
    /// enclosures are a few ulps wide: inari's pi, then cos and sin with correctly rounded
    /// endpoints.
    fn exact_root(mut p: u128, mut q: u128) -> (Interval, Interval) {
        let (mut cs, mut ss, mut swap) = (1.0, 1.0, false);
        if 2 * p > q {
            // 2 pi - x: cos x, -sin x
            p = q - p;
            ss = -ss;
        }
        if 4 * p > q {
            // pi - x: -cos x, sin x
            (p, q) = (q - 2 * p, 2 * q);
            cs = -cs;
        }
        if 8 * p > q {
            // pi/2 - x: (sin x, cos x)
            (p, q) = (q - 4 * p, 4 * q);
            swap = true;
        }
        let theta = Interval::PI * point(2.0) * point(p as f64) / point(q as f64);
        let (c, s) = (
            elementary::cos::<Certified>(theta),
            elementary::sin::<Certified>(theta),
        );
        let (c, s) = if swap { (s, c) } else { (c, s) };
        (c * point(cs), s * point(ss))
    }

    /// The largest |w - exp(-2 pi i k / n)| over the certified enclosure of the exact twiddle:
    /// an upper bound on the twiddle's true error.
    fn certified_error(w: Complex<f64>, k: u64, n: u64) -> f64 {
        let (c, s) = exact_root(k as u128, n as u128);
        let far = |x: f64, e: Interval| (x - e.inf()).abs().max((x - e.sup()).abs());
        far(w.re, c).hypot(far(-w.im, s))
    }

    /// Every twiddle of ours (`root(k, n)`, k < n: the power-of-two levels, the naive and GEMM
    /// tables, Bluestein's chirps at 2n) and rustfft's `compute_twiddle` (replicated: angle
    /// ((-2 pi) / n) k) for all n up to 64, the powers of two up to 2^12 and a few chirp sizes is
    /// within TWIDDLE_F64_ERROR of the exact value, the hypothesis of every FFT bound. The
    /// bound rests on the libm's 1-ulp sin/cos; this is the exhaustive check where it is cheap.
    #[test]
    fn twiddles_within_their_certified_error() {
        let mut sizes: Vec<u64> = (1..=64).collect();
        sizes.extend((7..=12).map(|b| 1u64 << b));
        // Bluestein's chirp angles pi k^2 / n = 2 pi (k^2 mod 2n) / 2n.
        sizes.extend([2 * 100, 2 * 127, 2 * 1000, 2 * 1023]);
        let (mut worst, mut count) = (0.0f64, 0usize);
        for &n in &sizes {
            let rust_constant = -2f64 * std::f64::consts::PI / n as f64;
            for k in 0..n {
                let ours = certified_error(root(k, n, Direction::Forward), k, n);
                let angle = rust_constant * k as f64;
                let theirs = certified_error(Complex::new(angle.cos(), angle.sin()), k, n);
                for e in [ours, theirs] {
                    assert!(e <= TWIDDLE_F64_ERROR, "n = {n}, k = {k}: {e:e}");
                    worst = worst.max(e);
                }
                count += 2;
            }
        }
        // The check can fail: a twiddle off by 1e-14 is caught.
        let off = root(3, 40, Direction::Forward) * (1.0 + 1e-14);
        assert!(certified_error(off, 3, 40) > TWIDDLE_F64_ERROR);
        eprintln!(
            "{count} twiddles: worst certified error {worst:.3e} = {:.2} x 2^-53 (bound 32 x 2^-53)",
            worst / 2f64.powi(-53)
        );
    }
}
