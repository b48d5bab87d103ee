//! Discretization sanity without an FFT: the left Riemann sum
//! F_s(v)(w) = s^-d sum_j v(x_j) e^{-2 pi i <w, x_j>} against the continuous coefficient, beside
//! the bound (L + 2 pi ||w|| M) sqrt(d) / (sqrt(3) s) of docs/bounds.md.

use mpno::functions::{Function, FunctionOptions, parse, sample};
use num_complex::Complex;
use std::f64::consts::{PI, TAU};

/// e^{-2 pi i k / s} with k reduced mod s exactly.
fn root(k: i64, s: usize) -> Complex<f64> {
    let r = k.rem_euclid(s as i64) as f64 / s as f64;
    let (sn, cs) = (TAU * r).sin_cos();
    Complex::new(cs, -sn)
}

/// Left Riemann sum of the (already resolved) function's samples at frequency w.
fn riemann(values: &[f64], s: usize, d: usize, w: &[i64]) -> Complex<f64> {
    let mut acc = Complex::new(0.0, 0.0);
    for (i, &v) in values.iter().enumerate() {
        let mut r = i;
        let mut k = 0i64;
        for axis in (0..d).rev() {
            let j = (r % s) as i64;
            r /= s;
            k += (w[axis] * j).rem_euclid(s as i64);
        }
        acc += root(k, s) * v;
    }
    acc / values.len() as f64
}

fn bound(f: &dyn Function, w: &[i64], s: usize) -> f64 {
    let wn = w.iter().map(|&k| (k * k) as f64).sum::<f64>().sqrt();
    (f.lipschitz() + TAU * wn * f.sup()) * (w.len() as f64).sqrt() / (3f64.sqrt() * s as f64)
}

fn error_and_bound(spec: &str, d: usize, s: usize, w: &[i64]) -> (f64, f64) {
    let fam = parse(spec, d, &FunctionOptions::default()).unwrap();
    let f = fam.at_resolution(s).unwrap_or(fam);
    let v = sample(f.as_ref(), s);
    let err = (riemann(&v, s, d, w) - f.coefficient(w)).norm();
    (err, bound(f.as_ref(), w, s))
}

#[test]
fn y_equals_x_reaches_sqrt3_over_2() {
    let (err, b) = error_and_bound("x", 1, 64, &[0]);
    assert!((err / b - 3f64.sqrt() / 2.0).abs() < 0.01, "{}", err / b);
}

#[test]
fn lower_bound_family_ratio() {
    for s in [16, 64, 1024] {
        let (err, b) = error_and_bound("lowercos", 1, s, &[0]);
        assert!(
            (err / b - 3f64.sqrt() / (2.0 * PI)).abs() < 1e-3,
            "s={s}: {}",
            err / b
        );
        // And the error is L / (2 pi s) exactly.
        assert!((err - 1.0 / (TAU * s as f64)).abs() < 1e-15);
    }
}

#[test]
fn aliased_sine_looks_like_sin_w() {
    // On the grid the aliased sine equals sin(2 pi w x): its DFT at w is -i/2, but the continuous
    // coefficient is 0, so the error is 1/2 at every s.
    for s in [8, 64, 512] {
        let (err, b) = error_and_bound("aliased:w=3", 1, s, &[3]);
        assert!((err - 0.5).abs() < 1e-12, "s={s}: {err}");
        assert!(err <= b);
    }
}

#[test]
fn every_builtin_within_its_bound_1d() {
    let specs = [
        "one",
        "const:c=-2.5",
        "x",
        "linear:a=1000",
        "x2",
        "poly:c=1;-2;3;0.5",
        "poly:c=0.3;-1.7;2.2;-0.9;0.4;1.3;-0.6;0.8;-0.2",
        "trig:c=0.5,f=1;3,cos=1;0.5,sin=0;2",
        "aliased",
        "square",
        "abs_half",
        "expsin",
        "lowercos",
        "lowerbound:L=10",
        "randsines",
        "randsines:k=5,fmax=40,seed=7",
    ];
    for spec in specs {
        for p in 2..=10 {
            let s = 1usize << p;
            for w in 0..=5i64 {
                let (err, b) = error_and_bound(spec, 1, s, &[w]);
                assert!(
                    err <= b * (1.0 + 1e-9) + 1e-14,
                    "{spec} s={s} w={w}: error {err:e} > bound {b:e}"
                );
            }
        }
    }
}

#[test]
fn multi_d_within_bound() {
    let cases: &[(&str, usize)] = &[
        ("x", 2),
        ("prod(x,expsin)", 2),
        ("prod(lowercos,abs_half)", 2),
        ("prod(aliased,x2)", 2),
        ("expsin_diag", 2),
        ("x", 3),
        ("prod(x,square,expsin)", 3),
        ("expsin_diag", 3),
    ];
    for &(spec, d) in cases {
        for p in 2..=(if d == 2 { 7 } else { 5 }) {
            let s = 1usize << p;
            for w in [[0i64, 0, 0], [1, 2, 0], [3, 3, 3], [-1, 0, 2]] {
                let (err, b) = error_and_bound(spec, d, s, &w[..d]);
                assert!(
                    err <= b * (1.0 + 1e-9) + 1e-14,
                    "{spec} d={d} s={s} w={w:?}: {err:e} > {b:e}"
                );
            }
        }
    }
    // y = x1 x2 at w = 0: F = 1/4, F_s = ((s-1)/(2s))^2.
    let (err, _) = error_and_bound("x", 2, 16, &[0, 0]);
    assert!((err - (0.25 - (15.0f64 / 32.0).powi(2))).abs() < 1e-16);
}
