//! Gaussian random fields: the empirical spectrum of 1000 seeded samples against the target
//! eigenvalues, mode by mode, with a stated false-alarm rate.
//!
//! Statistic. For a mode with target variance lambda, the sum over N samples of
//! |coefficient|^2 / lambda is chi-square with nu = 2N degrees of freedom (complex Fourier
//! modes, each of real and imaginary part carrying lambda / 2) or nu = N (real modes: cosine
//! modes, and Fourier modes with k = -k on the grid), times 1/2 in the complex case. The
//! Wilson-Hilferty transform z = ((X/nu)^(1/3) - (1 - 2/(9 nu))) / sqrt(2/(9 nu)) is N(0,1) to
//! better than 1e-3 in the tails for nu >= 1000. Each family of M modes is tested at
//! family-wise level 1e-3 with the Bonferroni correction: reject when some |z| exceeds the
//! normal quantile z* at 1 - 1e-3 / (2M). The aggregate over all modes (sum of chi-squares) is
//! tested the same way; a covariance 5% too large in sigma must fail it (power check).

use mpno::pde::grf::{Boundary, Grf, GrfParams};
use mpno::pde::sample_rng;
use num_complex::Complex64;
use std::f64::consts::PI;

const SAMPLES: usize = 1000;
const FAMILY_LEVEL: f64 = 1e-3;

/// Upper normal quantile: z with P(Z > z) = p, by bisection on erfc.
fn normal_upper_quantile(p: f64) -> f64 {
    let (mut lo, mut hi) = (0.0f64, 40.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if 0.5 * erfc(mid / 2f64.sqrt()) > p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// erfc by its continued fraction (x >= 0), accurate to ~1e-14.
fn erfc(x: f64) -> f64 {
    if x < 2.0 {
        // series for erf
        let mut term = x;
        let mut sum = x;
        let mut n = 0.0;
        loop {
            n += 1.0;
            term *= -x * x / n;
            let add = term / (2.0 * n + 1.0);
            sum += add;
            if add.abs() < 1e-17 {
                break;
            }
        }
        1.0 - 2.0 / PI.sqrt() * sum
    } else {
        // Lentz continued fraction
        let mut f = 0.0;
        for k in (1..200).rev() {
            f = (k as f64 / 2.0) / (x + f);
        }
        (-x * x).exp() / PI.sqrt() / (x + f)
    }
}

fn wilson_hilferty(x: f64, nu: f64) -> f64 {
    let c = 2.0 / (9.0 * nu);
    ((x / nu).cbrt() - (1.0 - c)) / c.sqrt()
}

/// (statistic sum, degrees of freedom) per mode -> the largest |z| and the aggregate z.
fn test_family(stats: &[(f64, f64)]) -> (f64, f64, f64) {
    let m = stats.len() as f64;
    let zmax = stats
        .iter()
        .map(|&(x, nu)| wilson_hilferty(x, nu).abs())
        .fold(0.0, f64::max);
    let (xs, nus) = stats
        .iter()
        .fold((0.0, 0.0), |(a, b), &(x, nu)| (a + x, b + nu));
    let agg = wilson_hilferty(xs, nus);
    let zstar = normal_upper_quantile(FAMILY_LEVEL / (2.0 * m));
    (zmax, agg, zstar)
}

fn naive_dft(u: &[f64], r: usize, dim: usize) -> Vec<Complex64> {
    // normalised: r^-d sum_j u_j exp(-2 pi i k.x_j)
    let tw: Vec<Complex64> = (0..r)
        .map(|j| Complex64::from_polar(1.0, -2.0 * PI * j as f64 / r as f64))
        .collect();
    let n = r.pow(dim as u32);
    let idx = |p: usize| if dim == 1 { (0, p) } else { (p / r, p % r) };
    (0..n)
        .map(|k| {
            let (ka, kb) = idx(k);
            let mut s = Complex64::default();
            for (j, &x) in u.iter().enumerate() {
                let (ja, jb) = idx(j);
                s += x * tw[(ka * ja + kb * jb) % r];
            }
            s / n as f64
        })
        .collect()
}

/// Per-mode chi-square sums for the periodic sampler, one representative per +-k pair.
fn periodic_stats(params: GrfParams, dim: usize, r: usize, seed: u64) -> Vec<(f64, f64)> {
    periodic_stats_against(params, params, dim, r, seed)
}

/// Samples drawn with `drawn`, statistics relative to the eigenvalues of `params`.
fn periodic_stats_against(
    drawn: GrfParams,
    params: GrfParams,
    dim: usize,
    r: usize,
    seed: u64,
) -> Vec<(f64, f64)> {
    let mut g = Grf::new(drawn, Boundary::Periodic, dim, r);
    let n = r.pow(dim as u32);
    let mut power = vec![0.0; n];
    for s in 0..SAMPLES {
        let u = g.sample(&mut sample_rng(seed, s as u64));
        for (p, c) in power.iter_mut().zip(naive_dft(&u, r, dim)) {
            *p += c.norm_sqr();
        }
    }
    let f = |i: usize| mpno::pde::spectral::freq(i, r);
    let neg = |i: usize| (r - i) % r;
    let truth = GrfParams {
        zero_mean: true,
        ..params
    };
    let mut out = Vec::new();
    #[allow(clippy::needless_range_loop)] // k is a flat mode index, also used to find -k
    for k in 1..n {
        let (a, b) = if dim == 1 { (0, k) } else { (k / r, k % r) };
        let kneg = if dim == 1 {
            neg(b)
        } else {
            neg(a) * r + neg(b)
        };
        if kneg < k {
            continue; // the pair was counted at kneg
        }
        let modes: Vec<i64> = if dim == 1 {
            vec![f(b)]
        } else {
            vec![f(a), f(b)]
        };
        let lam = truth.eigenvalue(Boundary::Periodic, &modes);
        if kneg == k {
            out.push((power[k] / lam, SAMPLES as f64));
        } else {
            out.push((2.0 * power[k] / lam, 2.0 * SAMPLES as f64));
        }
    }
    out
}

/// Cosine coefficients by the trapezoid-weighted inverse DCT-I (naive), per axis.
fn cosine_coefficients(u: &[f64], r: usize, dim: usize) -> Vec<f64> {
    let nn = (r - 1) as f64;
    let w = |j: usize| if j == 0 || j == r - 1 { 0.5 } else { 1.0 };
    let e = |k: usize| if k == 0 || k == r - 1 { 0.5 } else { 1.0 };
    let c = |k: usize, j: usize| (PI * (k * j) as f64 / nn).cos();
    if dim == 1 {
        (0..r)
            .map(|k| 2.0 / nn * e(k) * (0..r).map(|j| w(j) * u[j] * c(k, j)).sum::<f64>())
            .collect()
    } else {
        let mut out = vec![0.0; r * r];
        for ka in 0..r {
            for kb in 0..r {
                let mut s = 0.0;
                for ja in 0..r {
                    for jb in 0..r {
                        s += w(ja) * w(jb) * u[ja * r + jb] * c(ka, ja) * c(kb, jb);
                    }
                }
                out[ka * r + kb] = (2.0 / nn).powi(2) * e(ka) * e(kb) * s;
            }
        }
        out
    }
}

fn neumann_stats(params: GrfParams, dim: usize, r: usize, seed: u64) -> Vec<(f64, f64)> {
    let mut g = Grf::new(params, Boundary::Neumann, dim, r);
    let n = r.pow(dim as u32);
    let mut power = vec![0.0; n];
    for s in 0..SAMPLES {
        let u = g.sample(&mut sample_rng(seed, s as u64));
        for (p, c) in power.iter_mut().zip(cosine_coefficients(&u, r, dim)) {
            *p += c * c;
        }
    }
    let truth = GrfParams {
        zero_mean: true,
        ..params
    };
    (1..n)
        .map(|k| {
            let modes: Vec<i64> = if dim == 1 {
                vec![k as i64]
            } else {
                vec![(k / r) as i64, (k % r) as i64]
            };
            // coefficient of prod cos(pi k_i x_i) is sqrt(lambda) xi prod (sqrt 2 if k_i > 0)
            let norm = modes.iter().filter(|&&k| k > 0).count() as i32;
            let lam = truth.eigenvalue(Boundary::Neumann, &modes) * 2f64.powi(norm);
            (power[k] / lam, SAMPLES as f64)
        })
        .collect()
}

fn check(name: &str, stats: &[(f64, f64)]) {
    let (zmax, agg, zstar) = test_family(stats);
    println!(
        "{name}: {} modes, max |z| {zmax:.2}, aggregate z {agg:.2}, Bonferroni threshold {zstar:.2}",
        stats.len()
    );
    assert!(zmax < zstar, "{name}: max |z| {zmax} >= {zstar}");
    let zagg = normal_upper_quantile(FAMILY_LEVEL / 2.0);
    assert!(agg.abs() < zagg, "{name}: aggregate z {agg} >= {zagg}");
}

fn ns_like() -> GrfParams {
    GrfParams {
        alpha: 2.5,
        tau: 7.0,
        sigma: 7f64.powf(1.5),
        zero_mean: true,
    }
}

#[test]
fn quantile_helper_is_right() {
    // Known values: z(0.025) = 1.959964, z(1e-6) = 4.753424.
    assert!((normal_upper_quantile(0.025) - 1.959_963_985).abs() < 1e-6);
    assert!((normal_upper_quantile(1e-6) - 4.753_424_309).abs() < 1e-6);
}

#[test]
fn periodic_2d_spectrum_matches() {
    check("periodic 2-D r=16", &periodic_stats(ns_like(), 2, 16, 1));
}

#[test]
fn periodic_1d_spectrum_matches_odd_grid_too() {
    let p = GrfParams {
        alpha: 2.0,
        tau: 5.0,
        sigma: 25.0,
        zero_mean: true,
    };
    check("periodic 1-D r=64", &periodic_stats(p, 1, 64, 2));
    check("periodic 1-D r=33", &periodic_stats(p, 1, 33, 3));
}

#[test]
fn neumann_2d_spectrum_matches() {
    let p = GrfParams {
        alpha: 2.0,
        tau: 3.0,
        sigma: 1.0,
        zero_mean: true,
    };
    check("neumann 2-D r=12", &neumann_stats(p, 2, 12, 4));
    check("neumann 1-D r=40", &neumann_stats(p, 1, 40, 5));
}

#[test]
fn the_test_detects_a_five_percent_error_in_sigma() {
    // Samples drawn with sigma 5% too large (10% in variance) must fail the aggregate test:
    // the expected aggregate z is ~0.1 sqrt(nu/2) = 0.1 sqrt(M N) ~ 35 here.
    let wrong = GrfParams {
        sigma: 1.05 * ns_like().sigma,
        ..ns_like()
    };
    let biased = periodic_stats_against(wrong, ns_like(), 2, 16, 1);
    let (_, agg, _) = test_family(&biased);
    assert!(
        agg > normal_upper_quantile(FAMILY_LEVEL / 2.0),
        "aggregate z {agg}"
    );
}

#[test]
fn zero_mean_mode_is_zero_and_same_seed_same_field() {
    let mut g = Grf::new(ns_like(), Boundary::Periodic, 2, 32);
    let u = g.sample(&mut sample_rng(9, 0));
    let v = g.sample(&mut sample_rng(9, 0));
    assert_eq!(u, v);
    let mean = u.iter().sum::<f64>() / u.len() as f64;
    let scale = u.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    // the mean is a sum of r^2 values each with relative rounding ~ eps log2(r^2)
    assert!(
        mean.abs() < f64::EPSILON * 10.0 * scale * 10.0,
        "mean {mean}"
    );
    let w = g.sample(&mut sample_rng(9, 1));
    assert_ne!(u, w);
}
