//! Chebyshev in 2-D and 3-D (tensor products T_k(t) = T_{k_1}(t_1) ... T_{k_d}(t_d)): the
//! transform against the naive tensor sum, polynomials interpolated exactly, round trips,
//! continuous coefficients against Bessel closed forms (nested quadrature and the separable
//! path), every row under its bound, and the command line end to end.

mod common;
use common::mpno;
use mpno::basis::chebyshev::{ChebyshevBasis, clenshaw, points};
use mpno::basis::sweep::{self, BasisSweepConfig, Target};
use mpno::basis::{Basis, BasisKind, OnInterval};
use mpno::error::Kind;
use mpno::functions::{self, FunctionOptions};
use mpno::precision::{Format, Model};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::f64::consts::PI;
use std::sync::Arc;

const U: f64 = f64::EPSILON / 2.0;

/// Row-major multi-index of `i` on axes of `lens`.
fn split(mut i: usize, lens: &[usize]) -> Vec<usize> {
    let mut out = vec![0; lens.len()];
    for a in (0..lens.len()).rev() {
        out[a] = i % lens[a];
        i /= lens[a];
    }
    out
}

/// a^N_k by the naive tensor sum: F_k / (2N)^d sum_j v_j prod_a m(j_a) cos(pi k_a j_a / N),
/// m = 1 at the ends and 2 inside (the even extension folded), F_k = prod f(k_a), f = 1 at 0 and
/// N, else 2. Returns the value and sum |terms| F_k / (2N)^d for the error model.
fn naive(samples: &[f64], shape: &[usize], k: &[usize]) -> (f64, f64) {
    let pts: Vec<usize> = shape.iter().map(|&n| n + 1).collect();
    let (mut sum, mut abs) = (0.0, 0.0);
    for (i, &v) in samples.iter().enumerate() {
        let j = split(i, &pts);
        let mut t = v;
        for a in 0..shape.len() {
            let n = shape[a];
            let m = if j[a] == 0 || j[a] == n { 1.0 } else { 2.0 };
            t *= m * (PI * (k[a] * j[a]) as f64 / n as f64).cos();
        }
        sum += t;
        abs += t.abs();
    }
    let mut scale = 1.0;
    for (a, &n) in shape.iter().enumerate() {
        scale *= if k[a] == 0 || k[a] == n { 1.0 } else { 2.0 } / (2 * n) as f64;
    }
    (sum * scale, abs * scale)
}

#[test]
fn the_transform_matches_the_naive_tensor_sum() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(71);
    for shape in [
        vec![1, 1],
        vec![3, 5],
        vec![8, 8],
        vec![6, 13],
        vec![2, 3, 4],
        vec![5, 5, 5],
    ] {
        let b = ChebyshevBasis::new_nd(&shape).unwrap();
        let samples: Vec<f64> = (0..b.num_samples())
            .map(|_| rng.random::<f64>() * 2.0 - 1.0)
            .collect();
        let c = b.forward(&samples);
        assert_eq!(c.len(), b.num_samples());
        let pts: Vec<usize> = shape.iter().map(|&n| n + 1).collect();
        for (i, ci) in c.iter().enumerate() {
            let k = split(i, &pts);
            assert_eq!(
                b.mode(i),
                k.iter().map(|&x| x as i64).collect::<Vec<_>>(),
                "{shape:?}"
            );
            let (want, abs) = naive(&samples, &shape, &k);
            // The naive sum of n terms errs by at most about n u sum |terms| (each term a few
            // roundings more); the reference is within a few u of exact.
            let n = samples.len() as f64;
            let tol = (n + 8.0) * 4.0 * U * abs + 1e-300;
            assert!(
                (ci.re - want).abs() <= tol && ci.im == 0.0,
                "{shape:?} k = {k:?}: {} vs {want} (tol {tol:e})",
                ci.re
            );
        }
    }
}

/// A random polynomial sum_k a_k T_k of degree < N per axis, and its samples on the grid.
fn random_polynomial(rng: &mut Xoshiro256PlusPlus, shape: &[usize]) -> (Vec<f64>, Vec<f64>) {
    let pts: Vec<usize> = shape.iter().map(|&n| n + 1).collect();
    let total: usize = pts.iter().product();
    // Coefficients on the (N + 1)^d index grid, zero at degree N on any axis.
    let a: Vec<f64> = (0..total)
        .map(|i| {
            let k = split(i, &pts);
            if k.iter().zip(shape).any(|(&k, &n)| k == n) {
                0.0
            } else {
                rng.random::<f64>() * 2.0 - 1.0
            }
        })
        .collect();
    let nodes: Vec<Vec<f64>> = shape.iter().map(|&n| points(n)).collect();
    let samples = (0..total)
        .map(|i| {
            let j = split(i, &pts);
            // v(t) = sum_k a_k prod_a T_{k_a}(t_a), with T_k(t) = clenshaw(e_k, t).
            (0..total)
                .map(|c| {
                    let k = split(c, &pts);
                    let mut t = a[c];
                    for ax in 0..shape.len() {
                        let mut e = vec![0.0; k[ax] + 1];
                        e[k[ax]] = 1.0;
                        t *= clenshaw(&e, nodes[ax][j[ax]]);
                    }
                    t
                })
                .sum()
        })
        .collect();
    (a, samples)
}

#[test]
fn polynomials_are_interpolated_exactly_and_round_trip() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(72);
    for shape in [vec![4, 4], vec![3, 7], vec![3, 4, 5]] {
        let b = ChebyshevBasis::new_nd(&shape).unwrap();
        let (a, samples) = random_polynomial(&mut rng, &shape);
        let c = b.forward(&samples);
        let scale: f64 = a.iter().map(|x| x.abs()).sum();
        for (i, (ci, want)) in c.iter().zip(&a).enumerate() {
            assert!(
                (ci.re - want).abs() <= 1e-13 * scale,
                "{shape:?} mode {:?}: {} vs {want}",
                b.mode(i),
                ci.re
            );
        }
        let back = b.inverse(&c);
        for (x, y) in samples.iter().zip(&back) {
            assert!((x - y).abs() <= 1e-13 * scale, "{shape:?}: {x} vs {y}");
        }
    }
}

/// Modified Bessel I_k(x) and Bessel J_k(x) by their power series (|x| <= 2: 40 terms reach
/// f64 accuracy).
fn bessel(k: usize, x: f64, alternating: bool) -> f64 {
    let mut term = (x / 2.0).powi(k as i32) / (1..=k).map(|i| i as f64).product::<f64>();
    let mut sum = 0.0;
    for m in 0..40 {
        sum += term;
        let m1 = (m + 1) as f64;
        term *= (x / 2.0).powi(2) / (m1 * (m1 + k as f64));
        if alternating {
            term = -term;
        }
    }
    sum
}

/// Chebyshev coefficient k of e^{x} with x = (t + 1)/2: e^{1/2} (I_0(1/2), 2 I_k(1/2)).
fn exp_coeff(k: usize) -> f64 {
    let f = if k == 0 { 1.0 } else { 2.0 };
    f * 0.5f64.exp() * bessel(k, 0.5, false)
}

/// Chebyshev coefficient k of cos(3 x) with x = (t + 1)/2, i.e. cos(3/2) cos(3t/2) - sin(3/2)
/// sin(3t/2): cos(b t) = J_0(b) + 2 sum (-1)^j J_2j(b) T_2j, sin(b t) = 2 sum (-1)^j
/// J_2j+1(b) T_2j+1.
fn cos3_coeff(k: usize) -> f64 {
    let j = bessel(k, 1.5, true);
    if k == 0 {
        1.5f64.cos() * j
    } else if k.is_multiple_of(2) {
        2.0 * 1.5f64.cos() * j * if (k / 2) % 2 == 1 { -1.0 } else { 1.0 }
    } else {
        -2.0 * 1.5f64.sin() * j * if ((k - 1) / 2) % 2 == 1 { -1.0 } else { 1.0 }
    }
}

#[test]
fn continuous_coefficients_match_closed_forms() {
    let opts = FunctionOptions::default();
    // An expression (no factors: nested quadrature, guarded by its enclosures) in 2-D and
    // 3-D, and a separable built-in (the product of 1-D quadratures).
    let cases: [(&str, usize, &str); 3] = [
        ("exp(x)*cos(3*y)", 2, "nested"),
        ("exp(x)*cos(3*y)*(1+z)", 3, "nested"),
        ("prod(x,x2)", 2, "products"),
    ];
    for (spec, d, how) in cases {
        let f = OnInterval::chebyshev(Arc::from(functions::parse(spec, d, &opts).unwrap()));
        let b = ChebyshevBasis::new_nd(&vec![8; d]).unwrap();
        let modes: Vec<Vec<i64>> = match d {
            2 => vec![vec![0, 0], vec![1, 2], vec![3, 0], vec![2, 5], vec![6, 1]],
            _ => vec![vec![0, 0, 0], vec![1, 2, 1], vec![3, 0, 0], vec![2, 3, 2]],
        };
        for (m, c) in modes.iter().zip(b.continuous(&f, &modes)) {
            let k: Vec<usize> = m.iter().map(|&k| k as usize).collect();
            let want = match spec {
                // x = (t+1)/2 = T_0/2 + T_1/2; x^2 = 3/8 T_0 + 1/2 T_1 + 1/8 T_2.
                "prod(x,x2)" => {
                    [0.5, 0.5, 0.0].get(k[0]).copied().unwrap_or(0.0)
                        * [0.375, 0.5, 0.125].get(k[1]).copied().unwrap_or(0.0)
                }
                _ => {
                    let z = if d == 3 {
                        [1.5, 0.5].get(k[2]).copied().unwrap_or(0.0)
                    } else {
                        1.0
                    };
                    exp_coeff(k[0]) * cos3_coeff(k[1]) * z
                }
            };
            let err = (c.value.re - want).abs();
            assert!(
                err <= c.abs_err + 1e-15 && c.abs_err < 1e-12,
                "{spec} {m:?}: {} vs {want} (err {err:e}, claimed {:e})",
                c.value.re,
                c.abs_err
            );
            assert!(c.how.contains(how), "{spec}: {}", c.how);
            assert!(!c.how.contains("NOT"), "{spec}: {}", c.how);
        }
    }
}

fn rows(spec: &str, d: usize, sizes: Vec<usize>, modes: &str) -> Vec<mpno::error::Row> {
    let f = functions::parse(spec, d, &FunctionOptions::default()).unwrap();
    let cfg = BasisSweepConfig {
        kind: BasisKind::Chebyshev,
        sizes,
        modes: mpno::cli::parse_modes(modes, d).unwrap(),
        formats: vec![Format::Fp32, Format::Bf16, Format::Fp16, Format::E4m3],
        models: Model::ALL.to_vec(),
        progress: false,
    };
    sweep::run(&Target::Interval(Arc::from(f)), &cfg).unwrap()
}

#[test]
fn measured_errors_stay_below_their_bounds() {
    let cases: [(&str, usize, Vec<usize>, &str); 7] = [
        ("exp(x)*cos(3*y)", 2, vec![3, 8, 16, 33], "0,1:2,2:0"),
        ("x*y", 2, vec![1, 2], "0"),
        // Lipschitz, not smooth: the kinks keep the discretization error near the bound's rate.
        ("abs(x-0.3)+abs(y-0.7)", 2, vec![3, 8, 32], "0,1:1,2:0"),
        ("prod(x,abs_half)", 2, vec![4, 16, 64], "0,1,2:1"),
        ("expsin_diag", 2, vec![4, 16, 64], "0,1,3"),
        ("linear:a=1000", 3, vec![2, 5, 8], "0,1:0:1"),
        ("exp(x*y)*sin(2*z+x)", 3, vec![4, 8, 16], "0,1:2:3"),
    ];
    for (spec, d, sizes, modes) in cases {
        let rs = rows(spec, d, sizes, modes);
        assert!(rs.iter().all(|r| r.dim == d && r.basis == "chebyshev"));
        let disc = rs.iter().filter(|r| r.kind == Kind::Discretization).count();
        assert!(disc > 0, "{spec}");
        for r in &rs {
            assert!(
                r.measured <= r.bound,
                "{spec} s={} {:?} {} {} {:?}: {:e} > {:e} ({})",
                r.s,
                r.mode,
                r.kind,
                r.format,
                r.model,
                r.measured,
                r.bound,
                r.note
            );
        }
    }
}

#[test]
fn the_kink_converges_at_the_lipschitz_rate_and_smooth_functions_spectrally() {
    let kink = rows("abs(x-0.3)+abs(y-0.7)", 2, vec![8, 64], "0");
    // cos(9 (t + 1) / 2): coefficients J_k(4.5) fall below rounding past k ~ 40.
    let smooth = rows("exp(x)*cos(9*y)", 2, vec![8, 32], "0");
    let disc = |rs: &[mpno::error::Row], s: usize| {
        rs.iter()
            .find(|r| r.kind == Kind::Discretization && r.s == s)
            .map(|r| (r.measured, r.bound))
            .unwrap()
    };
    // |t - c| has a kink: in theta the error decays like 1/N^2 and stays far above rounding,
    // within the O(1/N) bound.
    let (e8, b8) = disc(&kink, 8);
    let (e64, b64) = disc(&kink, 64);
    assert!(e64 > 1e-6 && e64 < e8 / 8.0, "kink: {e8:e} -> {e64:e}");
    assert!(e8 <= b8 && e64 <= b64);
    let (s8, _) = disc(&smooth, 8);
    let (s32, _) = disc(&smooth, 32);
    assert!(s8 > 1e-9 && s32 < 1e-13, "smooth: {s8:e} -> {s32:e}");
}

#[test]
fn the_command_line_takes_2d_and_3d_and_refuses_what_it_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = mpno(
        &[
            "errors",
            "--basis",
            "chebyshev",
            "--dim",
            "3",
            "--function",
            "exp(x)*y+z",
            "--sizes",
            "4,6",
            "--modes",
            "0,1:2:3",
            "--formats",
            "fp16",
            "--models",
            "input,gemm",
            "--out",
            "out.csv",
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(dir.path().join("out.csv")).unwrap();
    // (2 sizes) x (2 modes) x (1 discretization + 2 precision rows).
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), 12, "{text}");
    assert!(
        rows.iter()
            .all(|r| r.starts_with("chebyshev,exp(x)*y+z,3,"))
    );
    assert!(rows.iter().any(|r| r.contains(",1:2:3,")));
    std::fs::remove_file(dir.path().join("out.csv")).unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--basis", "spherical", "--dim", "2", "--function", "abscos"],
            "fourier, chebyshev and the wavelets",
        ),
        (&["--basis", "chebyshev", "--dim", "4"], "--dim"),
        // k < N on every axis.
        (
            &[
                "--basis",
                "chebyshev",
                "--dim",
                "2",
                "--sizes",
                "4",
                "--modes",
                "1:4",
            ],
            "--modes",
        ),
        // Three entries in 2-D.
        (
            &[
                "--basis",
                "chebyshev",
                "--dim",
                "2",
                "--sizes",
                "8",
                "--modes",
                "1:2:3",
            ],
            "--modes",
        ),
        // (2 * 4096)^3 points.
        (
            &["--basis", "chebyshev", "--dim", "3", "--sizes", "4096"],
            "--sizes",
        ),
        // A function of z in 2-D.
        (
            &["--basis", "chebyshev", "--dim", "2", "--function", "z"],
            "--function",
        ),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["errors", "--out", "out.csv"];
        if !extra.contains(&"--function") {
            args.extend_from_slice(&["--function", "x"]);
        }
        args.extend_from_slice(extra);
        let (code, _, err) = mpno(&args, dir.path());
        assert_eq!(code, 2, "{extra:?}: exit {code}, stderr {err}");
        assert!(err.contains(needle), "{extra:?}: '{err}' lacks '{needle}'");
        assert!(
            !dir.path().join("out.csv").exists(),
            "{extra:?} wrote a file"
        );
    }
}
