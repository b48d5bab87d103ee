//! Memory of a training step estimated from the model's configuration alone, before anything
//! is allocated, so `mpno train`, `eval` and `bench fno` refuse a model that cannot fit (a usage
//! error naming the field to change, the estimate and the limit) instead of growing until an
//! allocation aborts the process.
//!
//! The estimate is deliberately generous (about 1.2x to 1.6x the measured peak of the CPU
//! backend's counter, which leaves out host copies): parameters cost 28 bytes each (the fp32
//! master weights, their gradients and Adam's two moments on the backend, and the host copies
//! made at initialisation), activations 4 bytes per value of every tensor a block keeps for the
//! backward pass plus a few transient ones, and the kept Fourier modes 16 bytes per complex
//! value (the cached transform and its gradient). Everything is computed in f64, so absurd
//! sizes give a huge estimate rather than an overflow.

use super::model::{Factorization, FnoConfig};

/// Bytes per parameter: backend weights, gradients, Adam m and v (4 each), host copies (12).
const BYTES_PER_PARAM: f64 = 28.0;

/// The parameter count of `cfg` (as `Fno::init` lays the parameters out), in f64.
pub fn param_count(cfg: &FnoConfig) -> f64 {
    let f = |x: usize| x as f64;
    let (w, d) = (f(cfg.width), cfg.dim);
    let lifted_in = f(cfg.in_channels) + if cfg.positional_embedding { f(d) } else { 0.0 };
    let chain = |hidden: f64, i: f64, o: f64| {
        if hidden > 0.0 {
            hidden * i + hidden + o * hidden + o
        } else {
            o * i + o
        }
    };
    let kept: Vec<f64> = cfg
        .modes
        .iter()
        .enumerate()
        .map(|(i, &m)| if i + 1 < d { 2.0 * f(m) } else { f(m) })
        .collect();
    let nk: f64 = kept.iter().product();
    let spectral = match cfg.factorization {
        Factorization::Dense => 2.0 * w * w * nk,
        Factorization::Cp { rank } => {
            let r = if rank >= 1.0 {
                rank.floor()
            } else {
                (rank * w * w * nk / (2.0 * w + kept.iter().sum::<f64>()))
                    .round()
                    .max(1.0)
            };
            2.0 * r + 2.0 * r * (2.0 * w + kept.iter().sum::<f64>())
        }
    };
    let h = (w * cfg.mlp_expansion).round();
    let mlp = if h > 0.0 {
        2.0 * h * w + h + w + w
    } else {
        0.0
    };
    chain(f(cfg.lifting_channels), lifted_in, w)
        + f(cfg.n_layers) * (spectral + w + w * w + mlp)
        + chain(f(cfg.projection_channels), w, f(cfg.out_channels))
}

/// Estimated peak bytes of a training step (forward, loss, backward, Adam) of `cfg` on a batch
/// of `batch` samples with `res` points per axis.
pub fn step_bytes(cfg: &FnoConfig, batch: f64, res: f64) -> f64 {
    let f = |x: usize| x as f64;
    let (w, d) = (f(cfg.width), cfg.dim);
    let points = res.powi(d as i32);
    let h = (w * cfg.mlp_expansion).round();
    let (lift, proj) = (f(cfg.lifting_channels), f(cfg.projection_channels));
    // Values per grid point of one sample: the input with coordinates, the lifting's cached
    // input and pre-activation, per block its input, sum, pre-activation and GELU output and the
    // channel MLP's two hidden tensors plus three transient ones, the projection's, and three
    // gradient tensors alive at once in the backward pass.
    let per_point = f(cfg.in_channels)
        + f(d)
        + 2.0 * lift
        + f(cfg.n_layers) * (7.0 * w + 2.0 * h)
        + 2.0 * proj
        + f(cfg.out_channels)
        + 3.0 * w.max(lift).max(proj);
    let kept: f64 = cfg
        .modes
        .iter()
        .enumerate()
        .map(|(i, &m)| if i + 1 < d { 2.0 * f(m) } else { f(m) })
        .product();
    let spectral = f(cfg.n_layers) * w * kept * 16.0;
    BYTES_PER_PARAM * param_count(cfg) + batch * (4.0 * points * per_point + spectral)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::Cpu;
    use crate::fno::{Fno, Policy};

    #[test]
    fn parameter_count_is_the_models() {
        for cfg in [
            FnoConfig::darcy_small(),
            FnoConfig {
                factorization: Factorization::Cp { rank: 0.05 },
                ..FnoConfig::darcy_small()
            },
            FnoConfig {
                factorization: Factorization::Cp { rank: 7.0 },
                mlp_expansion: 0.0,
                lifting_channels: 0,
                dim: 1,
                modes: vec![5],
                ..FnoConfig::darcy_small()
            },
        ] {
            let m = Fno::new(cfg.clone()).unwrap();
            assert_eq!(
                param_count(&cfg),
                m.init::<f32>(0).numel() as f64,
                "{cfg:?}"
            );
        }
    }

    #[test]
    fn step_estimate_covers_the_measured_peak_without_gross_excess() {
        let cfg = FnoConfig {
            width: 16,
            modes: vec![6, 6],
            lifting_channels: 32,
            projection_channels: 32,
            ..FnoConfig::darcy_small()
        };
        let model = Fno::new(cfg.clone()).unwrap();
        let be = Cpu::<f32>::new();
        let t =
            crate::fno::train::time_step(&be, &model, &Policy::full(), 4, &[32, 32], 1, 0).unwrap();
        let est = step_bytes(&cfg, 4.0, 32.0);
        let peak = t.peak_bytes as f64;
        assert!(
            est >= peak && est <= 3.0 * peak,
            "estimate {est:.3e}, measured {peak:.3e}"
        );
    }

    #[test]
    fn absurd_sizes_give_huge_finite_or_infinite_estimates_not_overflows() {
        let cfg = FnoConfig {
            factorization: Factorization::Cp { rank: 1e9 },
            ..FnoConfig::darcy_small()
        };
        assert!(step_bytes(&cfg, 16.0, 16.0) > 1e11);
        let e = step_bytes(&FnoConfig::darcy_small(), 16.0, 2f64.powi(40));
        assert!(e > 1e20);
    }
}
