//! Closed-form coefficients of every built-in against adaptive quadrature of v(x) e^{-2 pi i w x}
//! (the crate's Gauss-Kronrod rule, itself checked against closed forms in its unit tests), with
//! breakpoints at 1/2 where the square wave jumps and |x - 1/2| has its kink.

use mpno::functions::quad::{QuadOptions, gauss_kronrod, integrate_cube};
use mpno::functions::special::{cis_turns_neg, reduce_turns};
use mpno::functions::{CoefficientSource, Function, FunctionOptions, parse};
use num_complex::Complex;

const ONE_D: &[&str] = &[
    "one",
    "const:c=-2.5",
    "x",
    "linear:a=1000",
    "x2",
    "poly:c=1;-2;3;0.5",
    "poly:c=0.3;-1.7;2.2;-0.9;0.4;1.3;-0.6;0.8;-0.2",
    "trig:c=0.5,f=1;3,cos=1;0.5,sin=0;2",
    "trig:f=0;2;2,cos=0.25;1;-0.5,sin=0;1;0.5",
    "aliased",
    "aliased:w=-2",
    "square",
    "abs_half",
    "expsin",
    "lowercos",
    "lowercos:L=10",
    "randsines",
    "randsines:k=5,fmax=40,seed=7",
];

fn opts() -> FunctionOptions {
    FunctionOptions {
        seed: 11,
        ..Default::default()
    }
}

/// Quadrature of the coefficient of a 1-D function at w, with its error estimate.
fn quad_1d(f: &dyn Function, w: i64) -> (Complex<f64>, f64) {
    let r = gauss_kronrod(
        |x| cis_turns_neg(reduce_turns(w as f64, x)) * f.eval(&[x]),
        &[0.0, 0.5, 1.0],
        &QuadOptions {
            abs_tol: 1e-13,
            max_panels: 100_000,
            initial_panels: (2 * w.unsigned_abs() as usize).max(2),
            parallel: false,
        },
    );
    assert!(r.converged, "{} at w = {w}: {r:?}", f.name());
    (r.value, r.abs_err)
}

fn quad_nd(f: &dyn Function, w: &[i64]) -> (Complex<f64>, f64) {
    let d = f.dim();
    let g = |x: &[f64]| {
        let t: f64 = x
            .iter()
            .zip(w)
            .map(|(&xi, &wi)| reduce_turns(wi as f64, xi))
            .sum();
        cis_turns_neg(t) * f.eval(x)
    };
    let breaks = vec![vec![0.0, 0.5, 1.0]; d];
    let panels: Vec<usize> = w
        .iter()
        .map(|&k| (2 * k.unsigned_abs() as usize).max(1))
        .collect();
    let r = integrate_cube(&g, d, &breaks, &panels, 1e-13, 5000);
    assert!(r.converged, "{} at {w:?}: {r:?}", f.name());
    (r.value, r.abs_err)
}

#[test]
fn one_d_builtins_match_quadrature() {
    let freqs: Vec<i64> = (-6..=6).chain([17, -23, 40]).collect();
    for spec in ONE_D {
        let fam = parse(spec, 1, &opts()).unwrap();
        assert_eq!(fam.coefficient_source(), CoefficientSource::Exact);
        // Families that depend on the grid: check two instances.
        let instances: Vec<Box<dyn Function>> = match fam.at_resolution(8) {
            Some(a) => vec![a, fam.at_resolution(16).unwrap()],
            None => vec![parse(spec, 1, &opts()).unwrap()],
        };
        for f in &instances {
            for &w in &freqs {
                let exact = f.coefficient(&[w]);
                let (q, est) = quad_1d(f.as_ref(), w);
                let scale = f.sup().max(1.0);
                let tol = 1e-12 * scale + 2.0 * est;
                assert!(
                    (exact - q).norm() <= tol,
                    "{spec} w={w}: closed form {exact} vs quadrature {q} (diff {:e}, tol {tol:e})",
                    (exact - q).norm()
                );
                assert!((exact - q).norm() <= 1e-11 * scale, "{spec} w={w}");
            }
        }
    }
}

#[test]
fn known_values() {
    let o = opts();
    let tau = std::f64::consts::TAU;
    // y = x: 1/2 at w = 0, i / (2 pi w) otherwise.
    let x = parse("x", 1, &o).unwrap();
    assert_eq!(x.coefficient(&[0]), Complex::new(0.5, 0.0));
    assert!((x.coefficient(&[3]) - Complex::new(0.0, 1.0 / (tau * 3.0))).norm() < 1e-17);
    assert!((x.coefficient(&[-3]) - Complex::new(0.0, -1.0 / (tau * 3.0))).norm() < 1e-17);
    // Square wave: 2 / (i pi w) at odd w.
    let sq = parse("square", 1, &o).unwrap();
    let pi = std::f64::consts::PI;
    assert!((sq.coefficient(&[1]) - Complex::new(0.0, -2.0 / pi)).norm() < 1e-16);
    assert!((sq.coefficient(&[-3]) - Complex::new(0.0, 2.0 / (3.0 * pi))).norm() < 1e-16);
    assert_eq!(sq.coefficient(&[2]), Complex::new(0.0, 0.0));
    // Aliased sine at s: coefficient 0 at w, -i/2 at s + w.
    let al = parse("aliased", 1, &o).unwrap().at_resolution(32).unwrap();
    assert_eq!(al.coefficient(&[3]), Complex::new(0.0, 0.0));
    assert_eq!(al.coefficient(&[35]), Complex::new(0.0, -0.5));
    assert_eq!(al.coefficient(&[-35]), Complex::new(0.0, 0.5));
    // expsin: I_0(1) at 0, -i I_1(1) at 1.
    let e = parse("expsin", 1, &o).unwrap();
    assert!((e.coefficient(&[0]).re - 1.266_065_877_752_008_3).abs() < 5e-16);
    assert!((e.coefficient(&[1]) - Complex::new(0.0, -0.565_159_103_992_485)).norm() < 5e-16);
    assert!((e.coefficient(&[-1]) - Complex::new(0.0, 0.565_159_103_992_485)).norm() < 5e-16);
}

#[test]
fn products_and_diagonal_2d() {
    let o = opts();
    let cases: &[(&str, &[[i64; 2]])] = &[
        ("prod(x,expsin)", &[[0, 0], [1, -2], [-3, 4], [5, 0]]),
        ("prod(abs_half,square)", &[[0, 1], [1, 1], [-3, 3], [2, -1]]),
        (
            "prod(linear:a=1000,randsines:k=3,fmax=4,seed=2)",
            &[[0, 1], [2, -4], [1, 3]],
        ),
        ("x2", &[[0, 0], [1, 2], [-2, 3]]),
        (
            "expsin_diag",
            &[[0, 0], [1, 1], [-2, -2], [3, 3], [1, 0], [2, -2]],
        ),
    ];
    for (spec, ws) in cases {
        let f = parse(spec, 2, &o).unwrap();
        assert_eq!(f.dim(), 2);
        for w in *ws {
            let exact = f.coefficient(w);
            let (q, est) = quad_nd(f.as_ref(), w);
            let scale = f.sup().max(1.0);
            let diff = (exact - q).norm();
            assert!(
                diff <= 1e-11 * scale && diff <= 1e-12 * scale + 2.0 * est,
                "{spec} {w:?}: {exact} vs {q} (diff {diff:e}, est {est:e})"
            );
        }
    }
}

#[test]
fn products_and_diagonal_3d() {
    let o = opts();
    let cases: &[(&str, &[[i64; 3]])] = &[
        ("prod(x,x2,expsin)", &[[0, 0, 0], [1, -1, 2]]),
        ("expsin_diag", &[[1, 1, 1], [0, 1, 0], [-2, -2, -2]]),
    ];
    for (spec, ws) in cases {
        let f = parse(spec, 3, &o).unwrap();
        for w in *ws {
            let exact = f.coefficient(w);
            let (q, _) = quad_nd(f.as_ref(), w);
            assert!(
                (exact - q).norm() <= 1e-11 * f.sup().max(1.0),
                "{spec} {w:?}: {exact} vs {q}"
            );
        }
    }
}
