//! PDE data for the FNO experiments (Li et al., "Fourier Neural Operator for Parametric Partial
//! Differential Equations", ICLR 2021): Gaussian random fields, Darcy flow, 2-D Navier-Stokes in
//! vorticity form and 1-D viscous Burgers, with the paper's parameters as defaults, and the
//! safetensors files `mpno datagen` writes (see docs/datagen.md).
//!
//! Grids. Periodic problems (Navier-Stokes, Burgers, periodic GRFs) live on [0,1)^d with
//! x_j = j / r, j = 0..r-1. Darcy flow and the Neumann GRF live on the closed square \[0,1\]^2 with
//! the vertex grid x_j = j / (r - 1), j = 0..r-1 (the boundary nodes included, as in the FNO
//! files, where r = 421).
//!
//! Randomness. Sample `i` of a data set with seed `s` draws from its own Xoshiro256++ stream,
//! seeded by [`sample_seed`]`(s, i)`, so a data set does not depend on the number of threads and
//! sample `i` is the same whatever `n` is.

pub mod burgers;
pub mod darcy;
pub mod datagen;
pub mod dataset;
pub mod figure;
pub mod grf;
pub mod navier_stokes;
pub mod spectral;

use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// The random-number generator every sampler takes.
pub type Rng = Xoshiro256PlusPlus;

/// SplitMix64 finaliser: a bijection of u64 that mixes every input bit into every output bit.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Seed of sample `index` in a data set with seed `seed`: splitmix64(splitmix64(seed) ^ index).
/// Hashing the pair (instead of seed + index) keeps the streams of data sets with nearby seeds
/// from overlapping (seed 1 sample 0 is not seed 0 sample 1).
pub fn sample_seed(seed: u64, index: u64) -> u64 {
    splitmix64(splitmix64(seed) ^ index)
}

/// The generator of sample `index` of a data set with seed `seed`.
pub fn sample_rng(seed: u64, index: u64) -> Rng {
    Rng::seed_from_u64(sample_seed(seed, index))
}

/// Two independent standard normal numbers (Box-Muller). Written out instead of taken from a
/// distribution crate so that the bytes of a data set are fixed by this file alone.
pub fn normal_pair(rng: &mut Rng) -> (f64, f64) {
    // 1 - U is in (0, 1], so the logarithm is finite.
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    let r = (-2.0 * u1.ln()).sqrt();
    let (s, c) = (std::f64::consts::TAU * u2).sin_cos();
    (r * c, r * s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_seeds_differ_between_neighbours() {
        assert_ne!(sample_seed(0, 1), sample_seed(1, 0));
        assert_ne!(sample_seed(0, 0), sample_seed(0, 1));
        assert_eq!(sample_seed(7, 3), sample_seed(7, 3));
    }

    #[test]
    fn normals_have_unit_variance() {
        // 20000 pairs: the sample variance of 40000 N(0,1) has standard deviation sqrt(2/40000)
        // = 0.007; 5 standard deviations is a false-alarm rate below 1e-6.
        let mut rng = sample_rng(11, 0);
        let (mut s1, mut s2) = (0.0, 0.0);
        let m = 20000;
        for _ in 0..m {
            let (a, b) = normal_pair(&mut rng);
            s1 += a + b;
            s2 += a * a + b * b;
        }
        let n = 2.0 * m as f64;
        let mean = s1 / n;
        let var = s2 / n - mean * mean;
        assert!(mean.abs() < 5.0 / n.sqrt(), "mean {mean}");
        assert!((var - 1.0).abs() < 5.0 * (2.0 / n).sqrt(), "var {var}");
    }
}
