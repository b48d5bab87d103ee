//! Capturing what `mpno audit` measures: the input of each spectral layer's forward transform
//! (after the stabilizer), per channel, as f64, and the constants the bounds take from it.

use crate::backend::{Backend, unravel};
use crate::fno::{Fno, Overflow, Policy, Resident};
use crate::precision::Format;

/// The forward-transform input of one spectral layer for one sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Activation {
    /// Block index (0 = first spectral layer).
    pub layer: usize,
    /// Grid points per axis.
    pub grid: Vec<usize>,
    pub channels: usize,
    /// (channels, grid...) row-major: the model's values (f32 on the CPU backend), exactly.
    pub values: Vec<f64>,
}

impl Activation {
    /// Points per channel, prod(grid).
    pub fn points(&self) -> usize {
        self.grid.iter().product()
    }

    /// The samples of channel `c`, row-major over the grid.
    pub fn channel(&self, c: usize) -> &[f64] {
        let n = self.points();
        &self.values[c * n..(c + 1) * n]
    }
}

/// Run `model` on one encoded sample `x` (in_channels, grid...) under `policy` and capture the
/// transform inputs of the blocks in `layers`. Returns the (encoded) output
/// (out_channels, grid...) and the activations in block order.
pub fn forward_capture<B: Backend<T = f32>>(
    be: &B,
    model: &Fno,
    params: &Resident<B>,
    x: &[f32],
    grid: &[usize],
    policy: &Policy,
    layers: &[usize],
) -> Result<(Vec<f32>, Vec<Activation>), Overflow> {
    let mut shape = vec![1, model.cfg.in_channels];
    shape.extend_from_slice(grid);
    let xt = be.upload(&shape, x, Format::Fp32);
    let mut acts = Vec::new();
    let mut record = |l: usize, z: &B::Tensor| {
        if layers.contains(&l) {
            let sh = be.shape(z);
            acts.push(Activation {
                layer: l,
                grid: sh[2..].to_vec(),
                channels: sh[1],
                values: be.download(z).iter().map(|&v| v as f64).collect(),
            });
        }
    };
    let (y, cache) = model.forward_capture(be, params, &xt, policy, &mut record)?;
    drop(cache);
    Ok((be.download(&y), acts))
}

/// What the bounds take from one channel's samples v_j on a grid of `grid` points per axis.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GridConstants {
    /// max_j |v_j|: the sup M of the samples (exact for the discrete transform; only a lower
    /// estimate of the sup of a function between the grid points).
    pub max_abs: f64,
    /// n^-1 sum_j |v_j| (the input-rounding bound's u mean|v|).
    pub mean_abs: f64,
    /// L_est = sqrt(sum_a (s_a max_j |v(x_j + e_a / s_a) - v(x_j)|)^2), neighbours along each
    /// axis without wrapping around ([0,1]^d is not periodic for the bounds): per axis the
    /// largest slope between neighbouring grid points, a LOWER bound of that axis' Lipschitz
    /// constant (a chord's slope never exceeds it, and a feature between grid points is
    /// invisible), combined as a Euclidean norm (which may exceed the gradient's sup). An
    /// estimate of L, not a bound.
    pub lipschitz_estimate: f64,
}

/// [`GridConstants`] of samples `v` (row-major over `grid`).
pub fn grid_constants(v: &[f64], grid: &[usize]) -> GridConstants {
    let n = v.len();
    assert_eq!(n, grid.iter().product::<usize>(), "samples for the grid");
    let max_abs = v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let mean_abs = v.iter().map(|x| x.abs()).sum::<f64>() / n.max(1) as f64;
    let d = grid.len();
    let mut strides = vec![1usize; d];
    for a in (0..d.saturating_sub(1)).rev() {
        strides[a] = strides[a + 1] * grid[a + 1];
    }
    let mut slope = vec![0.0f64; d];
    for p in 0..n {
        let idx = unravel(p, grid);
        for a in 0..d {
            if idx[a] + 1 < grid[a] {
                let diff = (v[p + strides[a]] - v[p]).abs();
                slope[a] = slope[a].max(diff * grid[a] as f64);
            }
        }
    }
    GridConstants {
        max_abs,
        mean_abs,
        lipschitz_estimate: slope.iter().map(|s| s * s).sum::<f64>().sqrt(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_of_a_linear_ramp_are_its_slope_and_extremes() {
        // v(x, y) = 3x - 4y on the 8 x 8 grid x = i/8: neighbour slopes 3 and 4 exactly, so
        // L_est = 5 = |grad v|, M = max |v| = 4 * 7/8 = 3.5 at (0, 7/8).
        let s = 8;
        let v: Vec<f64> = (0..s * s)
            .map(|p| 3.0 * (p / s) as f64 / s as f64 - 4.0 * (p % s) as f64 / s as f64)
            .collect();
        let c = grid_constants(&v, &[s, s]);
        assert!((c.lipschitz_estimate - 5.0).abs() < 1e-12, "{c:?}");
        assert!((c.max_abs - 3.5).abs() < 1e-15, "{c:?}");
        let mean = v.iter().map(|x| x.abs()).sum::<f64>() / 64.0;
        assert_eq!(c.mean_abs, mean);
    }

    #[test]
    fn the_estimate_does_not_wrap_around() {
        // A sawtooth j/s jumps by (s-1)/s from the last point to the first: a periodic
        // neighbour would report slope s - 1, the grid's own chords report 1.
        let s = 16;
        let v: Vec<f64> = (0..s).map(|j| j as f64 / s as f64).collect();
        let c = grid_constants(&v, &[s]);
        assert!((c.lipschitz_estimate - 1.0).abs() < 1e-12, "{c:?}");
    }
}
