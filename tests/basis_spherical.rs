//! Spherical harmonics: Gauss-Legendre rule, orthonormal Legendre functions to degree 1024, round
//! trips of random band-limited coefficients to l = 256, exact coefficients of sampled harmonics,
//! the test functions' coefficients, and measured <= bound; expressions in x, y, z on the sphere
//! against closed forms (x, y, z are multiples of the degree-1 harmonics; exp(z) is zonal) and
//! against the built-in cap written as an expression.

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

/// An expression in x, y, z on the sphere.
fn sphere(spec: &str) -> SphereFunction {
    let f = SphereFunction::parse(spec).unwrap();
    assert!(matches!(f, SphereFunction::Expr(_)), "{spec}: {f:?}");
    f
}

#[test]
fn cartesian_coordinates_are_degree_one_harmonics() {
    // Y_1^1 = sqrt(3/(4 pi)) x, Y_1^-1 = sqrt(3/(4 pi)) y, Y_1^0 = sqrt(3/(4 pi)) z (real,
    // no Condon-Shortley phase), so each coordinate has the one coefficient sqrt(4 pi/3).
    let c = (4.0 * PI / 3.0).sqrt();
    let modes = [vec![0, 0], vec![1, -1], vec![1, 0], vec![1, 1], vec![2, 1]];
    for (spec, hit) in [("x", [1, 1]), ("y", [1, -1]), ("z", [1, 0])] {
        let f = sphere(spec);
        // The certified constants on the cube are exact here: |v| <= 1, Lipschitz 1.
        assert!((f.sup() - 1.0).abs() < 1e-12, "{spec}: M = {}", f.sup());
        assert!(
            (f.lipschitz() - 1.0).abs() < 1e-12,
            "{spec}: L = {}",
            f.lipschitz()
        );
        let b = SphericalBasis::new(8).unwrap();
        let samples = b.sample(&f);
        let discrete = b.forward(&samples);
        for (mode, cont) in modes.iter().zip(b.continuous(&f, &modes)) {
            let want = if mode[..] == hit[..] { c } else { 0.0 };
            assert!(
                (cont.value.re - want).abs() <= 1e-13,
                "{spec} {mode:?}: continuous {} vs {want}",
                cont.value.re
            );
            // Proven error allowances hold (and are far larger than the true error here).
            assert!(
                (cont.value.re - want).abs() <= cont.abs_err,
                "{spec} {mode:?}"
            );
            let idx = b.index(mode).unwrap();
            let err = (discrete[idx].re - want).abs();
            assert!(err <= 1e-14, "{spec} {mode:?}: SHT off by {err:e}");
            assert!(
                err <= b.discretization_bound(&f, &samples, mode),
                "{spec} {mode:?}"
            );
        }
    }
}

#[test]
fn a_zonal_expression_matches_its_closed_form() {
    // exp(z): c_00 = int e^z Y_0^0 = 2 pi (e - 1/e) / sqrt(4 pi) = sqrt(pi) (e - 1/e).
    let f = sphere("exp(z)");
    let want = PI.sqrt() * (std::f64::consts::E - (-1f64).exp());
    let b = SphericalBasis::new(16).unwrap();
    let cont = &b.continuous(&f, &[vec![0, 0]])[0];
    assert!(
        (cont.value.re - want).abs() <= 1e-13,
        "{} vs {want}",
        cont.value.re
    );
    let samples = b.sample(&f);
    let c = b.forward(&samples)[b.index(&[0, 0]).unwrap()].re;
    assert!((c - want).abs() <= 1e-13, "{c} vs {want}");
}

#[test]
fn the_cap_as_an_expression_agrees_with_the_builtin() {
    let builtin = SphereFunction::parse("cap:kappa=4").unwrap();
    let expr = sphere("exp(-4*(1 - z))");
    let b = SphericalBasis::new(16).unwrap();
    let (sb, se) = (b.sample(&builtin), b.sample(&expr));
    for (x, y) in sb.iter().zip(&se) {
        assert!((x - y).abs() <= 1e-15, "{x} vs {y}");
    }
    let modes: Vec<Vec<i64>> = vec![vec![0, 0], vec![2, 0], vec![5, 0], vec![3, 2]];
    let cb = b.continuous(&builtin, &modes);
    let ce = b.continuous(&expr, &modes);
    for ((m, x), y) in modes.iter().zip(&cb).zip(&ce) {
        // The builtin's value is a closed-form quadrature; the expression's comes from the
        // 4x finer SHT, which resolves this smooth cap to rounding.
        assert!(
            (x.value.re - y.value.re).abs() <= 1e-13,
            "{m:?}: {} vs {}",
            x.value.re,
            y.value.re
        );
        assert!((x.value.re - y.value.re).abs() <= y.abs_err + x.abs_err);
    }
    // The cube's certified constants can only be looser than the cap's analytic ones.
    assert!(expr.lipschitz() >= builtin.lipschitz());
    assert!(expr.sup() >= builtin.sup() * (1.0 - 1e-12));
}

#[test]
fn expression_precision_errors_stay_below_their_bounds() {
    let specs = [
        "exp(x)*sin(3*y) + z^2",
        "abs(x*y) - 0.3*z",
        "1e4*tanh(5*x*z)",
    ];
    let formats = [Format::Fp16, Format::Bf16, Format::Fp32, Format::E4m3];
    let models = [Model::Input, Model::Storage, Model::Arithmetic];
    let modes = [vec![0, 0], vec![1, 1], vec![3, -2], vec![6, 4]];
    let mut rows = 0;
    for spec in specs {
        let f = sphere(spec);
        for nlat in [8, 24] {
            let b = SphericalBasis::new(nlat).unwrap();
            let samples = b.sample(&f);
            let exact = b.forward(&samples);
            for fmt in formats {
                for model in models {
                    let out = b.forward_model(&samples, fmt, model).unwrap();
                    for mode in &modes {
                        let idx = b.index(mode).unwrap();
                        let err = (out.coeffs[idx] - exact[idx]).norm();
                        let bound = b.precision_bound(&samples, fmt, model, mode).bound;
                        rows += 1;
                        if out.overflow {
                            // 1e4 is beyond e4m3's range: no number, and no finite bound.
                            assert!(bound.is_infinite(), "{spec} {fmt} {model:?}: {bound:e}");
                            continue;
                        }
                        assert!(
                            err <= bound,
                            "{spec} nlat {nlat} {fmt} {model:?} {mode:?}: {err:e} > {bound:e}"
                        );
                    }
                }
            }
        }
    }
    assert_eq!(rows, 3 * 2 * 4 * 3 * 4);
}

#[test]
fn bad_expressions_are_refused_with_the_reason() {
    // Undefined on the cube around the sphere (x < 0 there).
    let e = SphereFunction::parse("sqrt(x)").unwrap_err();
    assert!(e.contains("[-1,1]^3") && e.contains("x"), "{e}");
    // The pole at the origin is inside the cube, though not on the sphere.
    let e = SphereFunction::parse("1/(x^2 + y^2 + z^2)").unwrap_err();
    assert!(e.contains("[-1,1]^3"), "{e}");
    let e = SphereFunction::parse("theta + 1").unwrap_err();
    assert!(e.contains("variables are x, y, z"), "{e}");
    let e = SphereFunction::parse("exp(").unwrap_err();
    assert!(e.contains("ylm:l=L,m=M"), "{e}");
    // Built-ins keep their errors.
    let e = SphereFunction::parse("ylm:l=2,m=3").unwrap_err();
    assert!(e.contains("|m| <= l"), "{e}");
}
