//! Chebyshev: interpolation of polynomials exact, round trips, continuous coefficients against
//! closed forms, measured <= bound, and the spectral convergence of smooth non-periodic functions.

use mpno::basis::chebyshev::{ChebyshevBasis, clenshaw, points};
use mpno::basis::sweep::{self, BasisSweepConfig, Target};
use mpno::basis::{Basis, BasisKind, OnInterval};
use mpno::error::Kind;
use mpno::fft::Complex;
use mpno::functions::{self, FunctionOptions};
use mpno::precision::{Format, Model};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::sync::Arc;

#[test]
fn polynomials_are_interpolated_exactly() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
    for n in [1usize, 2, 7, 16, 33, 64, 255] {
        for degree in [0, n / 2, n - 1] {
            let a: Vec<f64> = (0..=degree)
                .map(|_| rng.random::<f64>() * 2.0 - 1.0)
                .collect();
            let b = ChebyshevBasis::new(n).unwrap();
            let samples: Vec<f64> = points(n).iter().map(|&t| clenshaw(&a, t)).collect();
            let c = b.forward(&samples);
            let scale: f64 = a.iter().map(|x| x.abs()).sum::<f64>().max(1.0);
            for (k, ck) in c.iter().enumerate().take(n) {
                let want = a.get(k).copied().unwrap_or(0.0);
                assert!(
                    (ck.re - want).abs() <= 1e-13 * scale,
                    "n = {n}, degree {degree}, k = {k}: {} vs {want}",
                    ck.re
                );
            }
            // The interpolant equals the polynomial everywhere, not only at the nodes.
            let coeffs: Vec<f64> = c.iter().map(|z| z.re).collect();
            for _ in 0..20 {
                let t = rng.random::<f64>() * 2.0 - 1.0;
                let err = (clenshaw(&coeffs, t) - clenshaw(&a, t)).abs();
                assert!(
                    err <= 1e-13 * scale,
                    "n = {n}, degree {degree}, t = {t}: {err:e}"
                );
            }
            // Round trip.
            let back = b.inverse(&c);
            for (x, y) in samples.iter().zip(&back) {
                assert!(
                    (x - y).abs() <= 1e-13 * scale,
                    "n = {n}: inverse {x} vs {y}"
                );
            }
        }
    }
}

#[test]
fn continuous_coefficients_match_closed_forms() {
    let opts = FunctionOptions::default();
    // x = (t + 1)/2 = 1/2 T_0 + 1/2 T_1.
    let x = OnInterval::chebyshev(Arc::from(functions::parse("x", 1, &opts).unwrap()));
    // |x - 1/2| = |t| / 2: a_0 = 1/pi, a_2k = (-1)^(k+1) 2 / (pi (4k^2 - 1)), odd 0.
    let abs = OnInterval::chebyshev(Arc::from(functions::parse("abs_half", 1, &opts).unwrap()));
    let b = ChebyshevBasis::new(32).unwrap();
    let modes: Vec<Vec<i64>> = (0..8).map(|k| vec![k]).collect();
    let pi = std::f64::consts::PI;
    for (k, c) in b.continuous(&x, &modes).iter().enumerate() {
        let want = if k <= 1 { 0.5 } else { 0.0 };
        assert!(
            (c.value - Complex::new(want, 0.0)).norm() <= 1e-13,
            "x: k = {k}"
        );
    }
    for (k, c) in b.continuous(&abs, &modes).iter().enumerate() {
        let want = if k == 0 {
            1.0 / pi
        } else if k % 2 == 1 {
            0.0
        } else {
            let h = (k / 2) as f64;
            let sign = if (k / 2) % 2 == 1 { 1.0 } else { -1.0 };
            sign * 2.0 / (pi * (4.0 * h * h - 1.0))
        };
        assert!(
            (c.value.re - want).abs() <= 1e-13,
            "|t|/2: k = {k}: {} vs {want}",
            c.value.re
        );
    }
}

fn rows(name: &str, sizes: Vec<usize>) -> Vec<mpno::error::Row> {
    let f = functions::parse(name, 1, &FunctionOptions::default()).unwrap();
    let cfg = BasisSweepConfig {
        kind: BasisKind::Chebyshev,
        sizes,
        modes: sweep::parse_modes("0,1,3").unwrap(),
        formats: vec![Format::Fp32, Format::Bf16, Format::Fp16, Format::E4m3],
        models: Model::ALL.to_vec(),
        progress: false,
    };
    sweep::run(&Target::Interval(Arc::from(f)), &cfg).unwrap()
}

#[test]
fn measured_errors_stay_below_their_bounds() {
    for name in ["x", "x2", "abs_half", "expsin", "linear:a=1000"] {
        for r in rows(name, vec![4, 16, 64, 256, 1024]) {
            assert!(
                r.measured <= r.bound,
                "{name} s={} {:?} {} {} {:?}: {:e} > {:e}",
                r.s,
                r.mode,
                r.kind,
                r.format,
                r.model,
                r.measured,
                r.bound
            );
        }
    }
}

#[test]
fn smooth_functions_converge_spectrally_lipschitz_ones_algebraically() {
    // expsin is smooth on [-1,1] (not periodic there): error at N = 64 is at rounding level.
    let smooth = rows("expsin", vec![8, 64]);
    let err = |rs: &[mpno::error::Row], s: usize| {
        rs.iter()
            .filter(|r| r.kind == Kind::Discretization && r.s == s && r.mode == [1])
            .map(|r| r.measured)
            .next()
            .unwrap()
    };
    assert!(
        err(&smooth, 64) < 1e-12,
        "expsin N = 64: {:e}",
        err(&smooth, 64)
    );
    assert!(
        err(&smooth, 8) > 1e-6,
        "expsin N = 8: {:e}",
        err(&smooth, 8)
    );
    // |t|/2 has a kink: the error decays like 1/N^2, far above rounding.
    let kink = rows("abs_half", vec![64]);
    let e = kink
        .iter()
        .filter(|r| r.kind == Kind::Discretization && r.mode == [0])
        .map(|r| r.measured)
        .next()
        .unwrap();
    assert!(e > 1e-6 && e < 1e-3, "abs_half N = 64: {e:e}");
}
