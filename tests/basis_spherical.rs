//! Spherical harmonics: Gauss-Legendre rule, orthonormal Legendre functions to degree 1024, round
//! trips of random band-limited coefficients to l = 256, exact coefficients of sampled harmonics,
//! the test functions' coefficients, and measured <= bound.

use mpno::basis::spherical::{
    Sht, SphereFunction, SphericalBasis, gauss_legendre, legendre_column, lm_index, real_ylm,
};
use mpno::basis::sweep::{self, BasisSweepConfig, Target};
use mpno::basis::{Basis, BasisKind, DomainFunction};
use mpno::precision::{Emu, Format, Fp16, Model};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::f64::consts::PI;

#[test]
fn gauss_legendre_integrates_polynomials_exactly() {
    for n in [1usize, 2, 5, 64, 257, 1000] {
        let (x, w) = gauss_legendre(n);
        for k in 0..n {
            // int x^(2k) = 2 / (2k + 1), degree 2k <= 2n - 1.
            let got: f64 = x
                .iter()
                .zip(&w)
                .map(|(xi, wi)| wi * xi.powi(2 * k as i32))
                .sum();
            let want = 2.0 / (2 * k + 1) as f64;
            assert!(
                (got - want).abs() <= 1e-13,
                "n = {n}, k = {k}: {got} vs {want}"
            );
            if k > 8 {
                break;
            }
        }
        assert!(
            x.windows(2).all(|p| p[0] > p[1]),
            "n = {n}: nodes descending"
        );
    }
}

#[test]
fn legendre_functions_are_orthonormal_to_degree_1024() {
    let lmax = 1024;
    let nq = lmax + 2;
    let (x, w) = gauss_legendre(nq);
    for m in [0usize, 1, 17, 300, 700, 1024] {
        let cols: Vec<Vec<f64>> = x
            .iter()
            .map(|&xi| legendre_column(m, lmax, xi, ((1.0 - xi) * (1.0 + xi)).sqrt()))
            .collect();
        let dot = |a: usize, b: usize| -> f64 {
            2.0 * PI
                * (0..nq)
                    .map(|i| w[i] * cols[i][a - m] * cols[i][b - m])
                    .sum::<f64>()
        };
        for l in m..=lmax {
            let d = dot(l, l);
            assert!((d - 1.0).abs() <= 1e-12, "m = {m}, l = {l}: norm {d}");
            if l < lmax {
                assert!(dot(l, l + 1).abs() <= 1e-12, "m = {m}, l = {l}: <l, l+1>");
            }
            if l + 2 <= lmax {
                assert!(dot(l, l + 2).abs() <= 1e-12, "m = {m}, l = {l}: <l, l+2>");
            }
        }
        // No NaN or inf anywhere (no overflow).
        assert!(cols.iter().flatten().all(|v| v.is_finite()));
    }
}

#[test]
fn random_band_limited_coefficients_round_trip_to_l_256() {
    let nlat = 257;
    let plan = Sht::new(nlat).unwrap();
    assert_eq!(plan.lmax(), 256);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
    let c: Vec<f64> = (0..(plan.lmax() + 1).pow(2))
        .map(|_| rng.random::<f64>() * 2.0 - 1.0)
        .collect();
    let samples = plan.inverse(&c);
    let back = plan.forward(&samples);
    let err = c
        .iter()
        .zip(&back)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let scale = c.iter().map(|a| a.abs()).fold(0.0, f64::max);
    assert!(err <= 1e-12 * scale, "round trip max error {err:e}");
}

#[test]
fn sampled_harmonics_give_unit_coefficients() {
    let b = SphericalBasis::new(24).unwrap();
    for (l, m) in [
        (0usize, 0i64),
        (1, -1),
        (3, 2),
        (10, -7),
        (23, 23),
        (23, -23),
    ] {
        let f = SphereFunction::Ylm { l, m };
        let c = b.forward(&b.sample(&f));
        for (i, z) in c.iter().enumerate() {
            let want = if i == lm_index(l, m) { 1.0 } else { 0.0 };
            assert!(
                (z.re - want).abs() <= 1e-13,
                "Y({l},{m}) index {i}: {}",
                z.re
            );
        }
        // sup bound sqrt((2l+1)/(4pi)) holds at the nodes.
        let s = b.sample(&f);
        let sup = s.iter().map(|v| v.abs()).fold(0.0, f64::max);
        assert!(
            sup <= f.sup() * (1.0 + 1e-12),
            "Y({l},{m}) sup {sup} > {}",
            f.sup()
        );
    }
    // Through the trait: inverse then forward.
    let y = real_ylm(5, -3, 1.0, 2.0);
    assert!(y.is_finite());
}

#[test]
fn test_function_coefficients_match_a_fine_sht() {
    // The closed-form/quadrature coefficients against the SHT at nlat = 256 (the cap is smooth:
    // exact there; |cos| converges like l^-2, checked at low degree with the bound).
    let fine = SphericalBasis::new(256).unwrap();
    for f in [SphereFunction::Cap { kappa: 4.0 }, SphereFunction::AbsCos] {
        let c = fine.forward(&fine.sample(&f));
        for (l, m) in [(0i64, 0i64), (1, 0), (2, 0), (4, 0), (6, 0), (3, 1)] {
            let exact = f.exact_coefficient("spherical", &[l, m]).unwrap();
            let got = c[lm_index(l as usize, m)].re;
            let tol = if matches!(f, SphereFunction::Cap { .. }) {
                1e-13
            } else {
                fine.discretization_bound(&f, &[], &[l, m])
            };
            assert!(
                (got - exact.value.re).abs() <= tol,
                "{} ({l},{m}): {got} vs {}",
                f.name(),
                exact.value.re
            );
        }
    }
    // The mean of |cos theta| over the sphere is 1/2: c_00 = sqrt(4 pi)/2.
    let c00 = SphereFunction::AbsCos
        .exact_coefficient("spherical", &[0, 0])
        .unwrap();
    assert!((c00.value.re - (4.0 * PI).sqrt() / 2.0).abs() < 1e-14);
}

#[test]
fn table_is_reused_across_scalar_types() {
    let plan = Sht::new(32).unwrap();
    let half = Sht::<Emu<Fp16>>::convert(&plan).unwrap();
    let f = SphereFunction::Cap { kappa: 2.0 };
    let b = SphericalBasis::new(32).unwrap();
    let s = b.sample(&f);
    let (c16, _) = half.forward_raw(&s, None);
    let c64 = plan.forward(&s);
    let err = c16
        .iter()
        .zip(&c64)
        .map(|(a, b)| (a.re / 64.0 - b).abs())
        .fold(0.0, f64::max);
    assert!(err > 0.0 && err < 0.05, "fp16 SHT error {err:e}");
    assert!(SphericalBasis::new(1).is_err());
}

#[test]
fn measured_errors_stay_below_their_bounds() {
    for f in [
        SphereFunction::Ylm { l: 3, m: 2 },
        SphereFunction::Cap { kappa: 4.0 },
        SphereFunction::AbsCos,
    ] {
        let cfg = BasisSweepConfig {
            kind: BasisKind::Spherical,
            sizes: vec![4, 8, 32, 64],
            modes: sweep::parse_modes("0:0,1:0,2:0,1:-1").unwrap(),
            formats: vec![Format::Fp32, Format::Bf16, Format::Fp16, Format::E5m2],
            models: vec![Model::Input, Model::Storage, Model::Arithmetic],
            progress: false,
        };
        let rows = sweep::run(&Target::Sphere(f.clone()), &cfg).unwrap();
        assert_eq!(rows.len(), 4 * 4 * (1 + 12));
        for r in &rows {
            assert!(
                r.measured <= r.bound,
                "{} s={} {:?} {} {} {:?}: {:e} > {:e}",
                f.name(),
                r.s,
                r.mode,
                r.kind,
                r.format,
                r.model,
                r.measured,
                r.bound
            );
            assert_eq!(r.mode.len(), 2);
        }
    }
}
