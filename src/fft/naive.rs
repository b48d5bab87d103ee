//! The O(n^2) DFT in f64: the oracle every fast path is tested against.

use super::roots::f64_root;
use super::{Complex, Direction};

/// X_k = sum_j x_j exp(-+2 pi i j k / n), unnormalised, with j k reduced mod n and a compensated
/// (Kahan) sum, so its own error is O(n u) at worst and ~ u in practice.
pub fn naive_dft(x: &[Complex<f64>], dir: Direction) -> Vec<Complex<f64>> {
    let n = x.len() as u64;
    let roots = super::roots::f64_roots(x.len());
    let table: Vec<Complex<f64>> = (0..n).map(|k| f64_root(&roots, k, dir)).collect();
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
