//! Training losses, as neuraloperator's `LpLoss` (p = 2) and `H1Loss` define them (relative form):
//! per sample `||pred - y|| / ||y||`, then the mean over the batch.
//!
//! Layout: `pred` and `target` hold `batch` samples one after the other, each a row-major
//! `(channels, grid[0], ..., grid[d-1])` block. Norms run over a whole sample (every channel and
//! point). Quadrature weights (the cell volume) cancel in the ratio and are left out.
//! (neuraloperator takes the norms per channel; for the single-channel Darcy, Navier-Stokes and
//! Burgers fields the two agree.)
//!
//! H1 uses neuraloperator's central finite differences with periodic wrap on a grid of spacing
//! `h = 1 / n` along each of the `d` (1 to 3) axes: `D u[i] = (u[i+1] - u[i-1]) / (2 h)`, and
//! `||v||_H1^2 = ||v||^2 + sum_axes ||D v||^2`. neuraloperator sums over the batch by default;
//! here it is the mean (the FNO trainers divide by the number of samples afterwards anyway; Adam is
//! invariant to the scale up to its eps).
//!
//! Everything is accumulated in f64; the gradient `d loss / d pred` is rounded to `T` at the end.
//! A sample whose target is zero has an infinite (or NaN) relative error, as in neuraloperator.

use super::scalar::Scalar;
use crate::backend::Backend;

fn sample_len(pred_len: usize, target_len: usize, batch: usize) -> usize {
    assert_eq!(
        pred_len, target_len,
        "loss: pred has {pred_len} values, target {target_len}"
    );
    assert!(batch >= 1, "loss: batch must be >= 1");
    assert_eq!(
        pred_len % batch,
        0,
        "loss: {pred_len} values are not {batch} equal samples"
    );
    pred_len / batch
}

/// Relative L2 error of every sample, in f64 (for evaluation).
pub fn l2_per_sample<T: Scalar>(pred: &[T], target: &[T], batch: usize) -> Vec<f64> {
    let len = sample_len(pred.len(), target.len(), batch);
    (0..batch)
        .map(|b| {
            let r = b * len..(b + 1) * len;
            let (mut d2, mut y2) = (0.0f64, 0.0f64);
            for (p, y) in pred[r.clone()].iter().zip(&target[r]) {
                let (p, y) = (p.to_f64(), y.to_f64());
                d2 += (p - y) * (p - y);
                y2 += y * y;
            }
            d2.sqrt() / y2.sqrt()
        })
        .collect()
}

/// Mean relative L2 loss over the batch and its gradient with respect to `pred`.
///
/// Per sample `r_b = ||p_b - y_b|| / ||y_b||`, `d r_b / d p_b = (p_b - y_b) / (||p_b - y_b|| ||y_b||)`
/// (zero where `p_b = y_b`); the loss is `mean_b r_b`.
pub fn rel_l2<T: Scalar>(pred: &[T], target: &[T], batch: usize) -> (f64, Vec<T>) {
    let len = sample_len(pred.len(), target.len(), batch);
    let (mut d2, mut y2) = (vec![0.0f64; batch], vec![0.0f64; batch]);
    for b in 0..batch {
        let r = b * len..(b + 1) * len;
        for (p, y) in pred[r.clone()].iter().zip(&target[r]) {
            let (p, y) = (p.to_f64(), y.to_f64());
            d2[b] += (p - y) * (p - y);
            y2[b] += y * y;
        }
    }
    let (loss, coef) = rel_l2_coefficients(&d2, &y2);
    let grad = pred
        .iter()
        .zip(target)
        .enumerate()
        .map(|(i, (p, y))| match coef[i / len.max(1)] {
            // A sample with no error (or a non-finite one) contributes no gradient.
            0.0 => T::zero(),
            c => T::from_f64((p.to_f64() - y.to_f64()) * c),
        })
        .collect();
    (loss, grad)
}

/// The loss and gradient coefficients of [`rel_l2`] from the per-sample sums
/// `d2[b] = ||p_b - y_b||^2` and `y2[b] = ||y_b||^2`: the loss `mean_b sqrt(d2/y2)` and
/// `coef[b] = 1 / (||p_b - y_b|| ||y_b|| batch)` (0 where `d2 = 0`), so that the gradient is
/// `(p - y) coef[b]`. Shared by the GPU, which computes the sums on the device.
pub fn rel_l2_coefficients(d2: &[f64], y2: &[f64]) -> (f64, Vec<f64>) {
    let batch = d2.len();
    let mut total = 0.0;
    let coef = d2
        .iter()
        .zip(y2)
        .map(|(&d2, &y2)| {
            let (dn, yn) = (d2.sqrt(), y2.sqrt());
            total += dn / yn;
            if dn > 0.0 {
                1.0 / (dn * yn * batch as f64)
            } else {
                0.0
            }
        })
        .collect();
    (total / batch as f64, coef)
}

/// Periodic central difference along `axis` of one `(channels, grid...)` block:
/// `out[i] = (v[i+1] - v[i-1]) * n / 2` along that axis.
fn central_diff(v: &[f64], grid: &[usize], axis: usize, out: &mut [f64]) {
    let n = grid[axis];
    let inner: usize = grid[axis + 1..].iter().product();
    let outer = v.len() / (n * inner);
    let scale = n as f64 / 2.0;
    for o in 0..outer {
        let base = o * n * inner;
        for i in 0..n {
            let ip = (i + 1) % n;
            let im = (i + n - 1) % n;
            for k in 0..inner {
                out[base + i * inner + k] =
                    (v[base + ip * inner + k] - v[base + im * inner + k]) * scale;
            }
        }
    }
}

fn check_grid(len: usize, grid: &[usize]) {
    assert!(
        (1..=3).contains(&grid.len()),
        "H1 loss: grid must have 1 to 3 axes, got {grid:?}"
    );
    let points: usize = grid.iter().product();
    assert!(
        points > 0 && len.is_multiple_of(points),
        "H1 loss: a sample of {len} values is not channels x grid {grid:?}"
    );
}

/// Per sample: (||d||_H1^2, ||y||_H1^2) with d = pred - target, and the H1 gradient direction
/// `d + sum_axes D^T D d` (D^T = -D for the periodic central difference) if asked for.
fn h1_sample(p: &[f64], y: &[f64], grid: &[usize], want_dir: bool) -> (f64, f64, Vec<f64>) {
    let d: Vec<f64> = p.iter().zip(y).map(|(a, b)| a - b).collect();
    let mut d2: f64 = d.iter().map(|x| x * x).sum();
    let mut y2: f64 = y.iter().map(|x| x * x).sum();
    let mut dir = if want_dir { d.clone() } else { Vec::new() };
    let mut dd = vec![0.0; d.len()];
    let mut dy = vec![0.0; d.len()];
    let mut ddd = if want_dir {
        vec![0.0; d.len()]
    } else {
        Vec::new()
    };
    for axis in 0..grid.len() {
        central_diff(&d, grid, axis, &mut dd);
        central_diff(y, grid, axis, &mut dy);
        d2 += dd.iter().map(|x| x * x).sum::<f64>();
        y2 += dy.iter().map(|x| x * x).sum::<f64>();
        if want_dir {
            central_diff(&dd, grid, axis, &mut ddd);
            for (o, x) in dir.iter_mut().zip(&ddd) {
                *o -= x;
            }
        }
    }
    (d2, y2, dir)
}

/// Relative H1 error of every sample, in f64 (for evaluation); `grid` as in [`h1`].
pub fn h1_per_sample<T: Scalar>(
    pred: &[T],
    target: &[T],
    batch: usize,
    grid: &[usize],
) -> Vec<f64> {
    let len = sample_len(pred.len(), target.len(), batch);
    check_grid(len, grid);
    (0..batch)
        .map(|b| {
            let r = b * len..(b + 1) * len;
            let p: Vec<f64> = pred[r.clone()].iter().map(|x| x.to_f64()).collect();
            let y: Vec<f64> = target[r].iter().map(|x| x.to_f64()).collect();
            let (d2, y2, _) = h1_sample(&p, &y, grid, false);
            d2.sqrt() / y2.sqrt()
        })
        .collect()
}

/// Mean relative H1 loss over the batch and its gradient with respect to `pred`; `grid` is the
/// spatial shape (1 to 3 axes) of each channel of a sample.
pub fn h1<T: Scalar>(pred: &[T], target: &[T], batch: usize, grid: &[usize]) -> (f64, Vec<T>) {
    let len = sample_len(pred.len(), target.len(), batch);
    check_grid(len, grid);
    let mut grad = vec![T::zero(); pred.len()];
    let mut total = 0.0;
    for b in 0..batch {
        let r = b * len..(b + 1) * len;
        let p: Vec<f64> = pred[r.clone()].iter().map(|x| x.to_f64()).collect();
        let y: Vec<f64> = target[r.clone()].iter().map(|x| x.to_f64()).collect();
        let (d2, y2, dir) = h1_sample(&p, &y, grid, true);
        let (dn, yn) = (d2.sqrt(), y2.sqrt());
        total += dn / yn;
        if dn > 0.0 {
            let s = 1.0 / (dn * yn * batch as f64);
            for (g, x) in grad[r].iter_mut().zip(&dir) {
                *g = T::from_f64(x * s);
            }
        }
    }
    (total / batch as f64, grad)
}

/// The training loss a config names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossKind {
    L2,
    H1,
}

impl LossKind {
    /// Mean loss over the batch and its gradient, on host slices (`grid` is used by H1 only).
    pub fn eval<T: Scalar>(
        self,
        pred: &[T],
        target: &[T],
        batch: usize,
        grid: &[usize],
    ) -> (f64, Vec<T>) {
        match self {
            LossKind::L2 => rel_l2(pred, target, batch),
            LossKind::H1 => h1(pred, target, batch, grid),
        }
    }

    /// Mean loss over the batch of `pred` against `target` (both (batch, channels, grid...)) and
    /// its gradient with respect to `pred` times `scale`, computed by the backend
    /// ([`Backend::rel_l2_loss`], [`Backend::h1_loss`]).
    pub fn on_backend<B: Backend>(
        self,
        be: &B,
        pred: &B::Tensor,
        target: &B::Tensor,
        scale: f32,
    ) -> (f64, B::Tensor) {
        match self {
            LossKind::L2 => be.rel_l2_loss(pred, target, scale),
            LossKind::H1 => be.h1_loss(pred, target, scale),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: u64) -> Vec<f64> {
        // A small deterministic pseudo-random sequence (LCG) in [-1, 1).
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
            })
            .collect()
    }

    fn check_grad(f: impl Fn(&[f64]) -> (f64, Vec<f64>), p: &[f64]) {
        let (_, g) = f(p);
        let eps = 1e-6;
        let mut q = p.to_vec();
        let mut num = vec![0.0; p.len()];
        for i in 0..p.len() {
            q[i] = p[i] + eps;
            let lp = f(&q).0;
            q[i] = p[i] - eps;
            let lm = f(&q).0;
            q[i] = p[i];
            num[i] = (lp - lm) / (2.0 * eps);
        }
        let diff: f64 = g.iter().zip(&num).map(|(a, b)| (a - b) * (a - b)).sum();
        let norm: f64 = num.iter().map(|a| a * a).sum();
        let rel = (diff / norm).sqrt();
        assert!(rel < 1e-6, "relative gradient error {rel}");
    }

    #[test]
    fn l2_matches_definition_and_gradient() {
        let (batch, len) = (3, 10);
        let p = data(batch * len, 1);
        let y = data(batch * len, 2);
        let (loss, _) = rel_l2(&p, &y, batch);
        let per = l2_per_sample(&p, &y, batch);
        let mean = per.iter().sum::<f64>() / batch as f64;
        assert!((loss - mean).abs() < 1e-15);
        // By hand for sample 1.
        let r = len..2 * len;
        let d: f64 = p[r.clone()]
            .iter()
            .zip(&y[r.clone()])
            .map(|(a, b)| (a - b).powi(2))
            .sum();
        let yy: f64 = y[r].iter().map(|b| b * b).sum();
        assert!((per[1] - (d / yy).sqrt()).abs() < 1e-15);
        check_grad(|q| rel_l2(q, &y, batch), &p);
    }

    #[test]
    fn h1_gradient_1d_2d_3d_with_channels() {
        for grid in [vec![7usize], vec![5, 4], vec![3, 4, 5]] {
            let channels = 2;
            let batch = 2;
            let len = channels * grid.iter().product::<usize>();
            let p = data(batch * len, 3);
            let y = data(batch * len, 4);
            check_grad(|q| h1(q, &y, batch, &grid), &p);
            let (loss, _) = h1(&p, &y, batch, &grid);
            let per = h1_per_sample(&p, &y, batch, &grid);
            assert!((loss - per.iter().sum::<f64>() / batch as f64).abs() < 1e-15);
        }
    }

    #[test]
    fn h1_of_a_sine_uses_spacing_one_over_n() {
        // y = sin(2 pi x), pred = 0: ||y||^2 + ||Dy||^2 with D y = sin(2 pi / n) n cos(2 pi x).
        let n = 16;
        let y: Vec<f64> = (0..n)
            .map(|i| (std::f64::consts::TAU * i as f64 / n as f64).sin())
            .collect();
        let p = vec![0.0; n];
        let k = (std::f64::consts::TAU / n as f64).sin() * n as f64;
        // sum sin^2 = sum cos^2 = n / 2, so the relative error is 1 for pred = 0 ...
        assert!((h1_per_sample(&p, &y, 1, &[n])[0] - 1.0).abs() < 1e-14);
        // ... and for pred = 2y the derivative term enters with weight k^2.
        let p2: Vec<f64> = y.iter().map(|v| 2.0 * v).collect();
        assert!((h1_per_sample(&p2, &y, 1, &[n])[0] - 1.0).abs() < 1e-14);
        // pred = y + 1: the constant has zero derivative: error^2 = n / (n/2 (1 + k^2)).
        let p3: Vec<f64> = y.iter().map(|v| v + 1.0).collect();
        let want = (n as f64 / (n as f64 / 2.0 * (1.0 + k * k))).sqrt();
        assert!((h1_per_sample(&p3, &y, 1, &[n])[0] - want).abs() < 1e-14);
    }

    #[test]
    fn exact_prediction_has_zero_loss_and_gradient() {
        let y: Vec<f32> = data(12, 5).iter().map(|&x| x as f32).collect();
        let (l, g) = rel_l2(&y, &y, 2);
        assert_eq!(l, 0.0);
        assert!(g.iter().all(|&x| x == 0.0));
        let (l, g) = h1(&y, &y, 2, &[2, 3]);
        assert_eq!(l, 0.0);
        assert!(g.iter().all(|&x| x == 0.0));
    }
}
