//! Wavelets in 2-D and 3-D (src/basis/dwt_nd.rs, src/basis/wavelet_basis.rs): the Mallat
//! transform of a separable array against products of 1-D partial transforms, perfect
//! reconstruction and Parseval, Haar coefficients of x y (z) against their closed forms by both
//! routes (separable product, d-D projection), certified face jumps, and every sweep row at or
//! below its bound (built-ins, separable and not, periodic and not, every wavelet family).

use mpno::basis::dwt_nd::{DwtNd, index_mode, mode_index};
use mpno::basis::sweep::{self, BasisSweepConfig, Target};
use mpno::basis::wavelet::{Dwt, Wavelet};
use mpno::basis::wavelet_basis::WaveletBasis;
use mpno::basis::{Basis, BasisKind, OnInterval};
use mpno::error::Kind;
use mpno::functions::{self, FunctionOptions};
use mpno::precision::{Format, Model};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::sync::Arc;

fn random(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    (0..n).map(|_| rng.random::<f64>() * 2.0 - 1.0).collect()
}

/// The 1-D coefficient of a vector at level j, shift k: approximation (the DWT run down to
/// length 2^j) or detail, as the d-D layout's factor.
fn line_factor(w: Wavelet, u: &[f64], j: i64, k: i64, detail: bool) -> f64 {
    let n = u.len();
    let plan = Dwt::<f64>::new(w, n).unwrap();
    let mut a = u.to_vec();
    let mut scratch = vec![0.0; n];
    let (j, k, detail) = if j < 0 { (0, 0, false) } else { (j, k, detail) };
    let stop = 1usize << j;
    plan.forward_to(&mut a, &mut scratch, None, stop);
    a[if detail {
        stop + k as usize
    } else {
        k as usize
    }]
}

#[test]
fn separable_arrays_transform_into_products_of_1d_coefficients() {
    for (w, n, d) in [
        (Wavelet::HAAR, 8, 2),
        (Wavelet::daubechies(2).unwrap(), 16, 2),
        (Wavelet::daubechies(4).unwrap(), 8, 3),
        (Wavelet::daubechies(10).unwrap(), 8, 2),
    ] {
        let lines: Vec<Vec<f64>> = (0..d).map(|a| random(n, 10 + a as u64)).collect();
        let total = n.pow(d as u32);
        let mut x: Vec<f64> = (0..total)
            .map(|i| {
                let mut rest = i;
                let mut v = 1.0;
                for a in (0..d).rev() {
                    v *= lines[a][rest % n];
                    rest /= n;
                }
                v
            })
            .collect();
        let plan = DwtNd::<f64>::new(w, n, d).unwrap();
        plan.forward(&mut x, None);
        let levels = n.trailing_zeros();
        for (i, &c) in x.iter().enumerate() {
            let mode = index_mode(i, levels, d);
            let want: f64 = (0..d)
                .map(|a| {
                    let (j, detail, k) = if mode[0] < 0 {
                        (-1, false, 0)
                    } else {
                        (mode[0], (mode[1] >> a) & 1 == 1, mode[2 + a])
                    };
                    line_factor(w, &lines[a], j, k, detail)
                })
                .product();
            assert!(
                (c - want).abs() <= 1e-13,
                "{} n={n} d={d} {mode:?}: {c} vs {want}",
                w.name()
            );
        }
    }
}

#[test]
fn perfect_reconstruction_and_parseval_in_2d_and_3d() {
    for w in Wavelet::all() {
        for (n, d) in [(2, 2), (8, 2), (32, 2), (4, 3), (8, 3)] {
            let b = WaveletBasis::new_nd(w, n, d).unwrap();
            let x = random(b.num_samples(), n as u64 * 7 + d as u64);
            let c = b.forward(&x);
            let energy: f64 = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
            let coeff: f64 = c.iter().map(|z| z.re * z.re).sum();
            assert!(
                (energy - coeff).abs() <= 1e-13 * energy,
                "{} n={n} d={d}: Parseval {energy} vs {coeff}",
                w.name()
            );
            let back = b.inverse(&c);
            let err = x
                .iter()
                .zip(&back)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(
                err <= 1e-13,
                "{} n={n} d={d}: reconstruction {err:e}",
                w.name()
            );
        }
    }
}

/// Haar: <x, phi_{j,k}> = 2^{-j/2} (k + 1/2) / 2^j and <x, psi_{j,k}> = -2^{-3j/2} / 4.
fn haar_of_x(j: i64, k: i64, detail: bool) -> f64 {
    let (j, k, detail) = if j < 0 { (0, 0, false) } else { (j, k, detail) };
    let s = 2f64.powi(j as i32);
    if detail {
        -0.25 / s.powf(1.5)
    } else {
        (k as f64 + 0.5) / s / s.sqrt()
    }
}

#[test]
fn haar_coefficients_of_products_of_coordinates_match_closed_forms_by_both_routes() {
    let opts = FunctionOptions::default();
    for (d, n, modes) in [
        (2, 16, "-1:0:0:0,0:3:0:0,1:1:1:0,2:2:3:1,3:3:5:6"),
        (3, 8, "-1:0:0:0:0,0:7:0:0:0,1:5:1:0:1,2:2:3:1:0"),
    ] {
        let b = WaveletBasis::new_nd(Wavelet::HAAR, n, d).unwrap();
        let modes = sweep::parse_modes(modes).unwrap();
        // Separable route (a built-in product has factors) and the d-D projection (an
        // expression does not).
        let product = if d == 2 { "prod(x,x)" } else { "prod(x,x,x)" };
        let expr = if d == 2 { "x*y" } else { "x*y*z" };
        for spec in [product, expr] {
            let f = OnInterval::unit(Arc::from(functions::parse(spec, d, &opts).unwrap()));
            let got = b.continuous(&f, &modes);
            for (m, c) in modes.iter().zip(&got) {
                let want: f64 = (0..d)
                    .map(|a| {
                        if m[0] < 0 {
                            haar_of_x(-1, 0, false)
                        } else {
                            haar_of_x(m[0], m[2 + a], (m[1] >> a) & 1 == 1)
                        }
                    })
                    .product();
                let err = (c.value.re - want).abs();
                assert!(
                    err <= c.abs_err + 1e-15,
                    "{spec} {m:?}: {} vs {want} (error {err:e} > allowance {:e}; {})",
                    c.value.re,
                    c.abs_err,
                    c.how
                );
                // Not vacuous: the allowance is small beside the function (M = 1) and the
                // coarse coefficients (the Lipschitz bound is first order, the details of a
                // smooth function decay faster).
                // 3-D projects at level J + 4 = 7 only (2^21 points).
                let limit = if d == 2 { 3e-3 } else { 2e-2 };
                assert!(c.abs_err < limit, "{spec} {m:?}: {c:?}");
            }
        }
    }
}

#[test]
fn face_jumps_are_certified_for_expressions() {
    let opts = FunctionOptions::default();
    let f = functions::parse("sin(2*pi*x)*(1 + y)", 2, &opts).unwrap();
    let jx = f.face_jump(0).unwrap();
    let jy = f.face_jump(1).unwrap();
    // Periodic in x: the jump is 0 (up to the enclosures); across y the jump is sup |sin| = 1.
    assert!(jx < 1e-6, "jump across x: {jx:e}");
    assert!((1.0..1.2).contains(&jy), "jump across y: {jy}");
    let g = functions::parse("x + 2*y*z", 3, &opts).unwrap();
    let j: Vec<f64> = (0..3).map(|a| g.face_jump(a).unwrap()).collect();
    // Within the 3-D branch and bound's tolerance (1/8) of the true sup.
    assert!((1.0..=1.125).contains(&j[0]), "{j:?}");
    assert!(
        (2.0..2.2).contains(&j[1]) && (2.0..2.2).contains(&j[2]),
        "{j:?}"
    );
}

#[test]
fn measured_errors_stay_below_their_bounds_in_2d_and_3d() {
    let opts = FunctionOptions::default();
    let cases: [(&str, usize, &[usize], &str); 6] = [
        (
            "prod(x,expsin)",
            2,
            &[8, 16, 64],
            "-1:0:0:0,0:3:0:0,1:1:1:0,2:2:3:1",
        ),
        ("expsin_diag", 2, &[8, 32], "0:3:0:0,1:2:1:1,2:1:3:0"),
        (
            "abs(x-0.3)*cos(2*pi*y) + x*y",
            2,
            &[8, 32],
            "0:1:0:0,1:3:1:0,2:2:0:3",
        ),
        ("x + y*z", 3, &[4, 16], "-1:0:0:0:0,0:7:0:0:0,1:4:1:0:1"),
        ("abs_half", 3, &[8], "0:7:0:0:0,1:1:1:1:0"),
        ("expsin_diag", 3, &[8], "0:7:0:0:0,2:3:1:2:3"),
    ];
    for (spec, d, sizes, modes) in cases {
        let f = functions::parse(spec, d, &opts).unwrap();
        let target = Target::Interval(Arc::from(f));
        for w in ["haar", "db2", "db6"] {
            let cfg = BasisSweepConfig {
                kind: BasisKind::parse(w).unwrap(),
                sizes: sizes.to_vec(),
                modes: sweep::parse_modes(modes).unwrap(),
                formats: vec![Format::Fp32, Format::Bf16, Format::Fp16],
                models: vec![Model::Input, Model::Storage, Model::Arithmetic],
                progress: false,
            };
            let rows = sweep::run(&target, &cfg).unwrap();
            assert_eq!(rows.len(), sizes.len() * cfg.modes.len() * (1 + 3 * 3));
            for r in &rows {
                assert!(
                    r.measured <= r.bound,
                    "{w} {spec} s={} {:?} {} {} {:?}: {:e} > {:e} ({})",
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
            let disc: Vec<_> = rows
                .iter()
                .filter(|r| r.kind == Kind::Discretization)
                .collect();
            assert!(disc.iter().all(|r| r.bound.is_finite()), "{w} {spec}");
            // Not vacuous: somewhere the discretization error is within 1000x of its bound.
            let best = disc.iter().map(|r| r.ratio()).fold(0.0, f64::max);
            assert!(best > 1e-3, "{w} {spec}: best ratio {best:e}");
        }
    }
}

#[test]
fn labels_name_the_factors() {
    // 2-D: index (p1, p2) = (2^j t_1 + k_1, 2^j t_2 + k_2).
    assert_eq!(mode_index(&[2, 1, 3, 1], 4, 2).unwrap(), (4 + 3) * 16 + 1);
    assert_eq!(index_mode((4 + 3) * 16 + 1, 4, 2), vec![2, 1, 3, 1]);
    assert_eq!(mode_index(&[0, 2, 0, 0], 3, 2).unwrap(), 1);
    let err = mode_index(&[2, 0, 1, 1], 4, 2).unwrap_err().to_string();
    assert!(err.contains("detail type t = 0"), "{err}");
    let err = mode_index(&[2, 1], 4, 2).unwrap_err().to_string();
    assert!(err.contains("j:t:k_1:k_2"), "{err}");
}

#[test]
fn a_jump_times_an_exact_zero_factor_is_zero_not_nan() {
    // square = sign(sin 2 pi x) has L = inf (its psi coefficients carry an infinite error) and
    // mean 0 exactly: a mode with phi_{0,0} along one axis is exactly 0, not inf * 0 = NaN.
    let opts = FunctionOptions::default();
    let f = OnInterval::unit(Arc::from(functions::parse("square", 2, &opts).unwrap()));
    let b = WaveletBasis::new_nd(Wavelet::daubechies(4).unwrap(), 8, 2).unwrap();
    let modes = sweep::parse_modes("0:2:0:0,0:1:0:0,0:3:0:0").unwrap();
    let c = b.continuous(&f, &modes);
    assert_eq!((c[0].value.re, c[0].abs_err), (0.0, 0.0), "{:?}", c[0]);
    assert_eq!((c[1].value.re, c[1].abs_err), (0.0, 0.0), "{:?}", c[1]);
    assert!(c[2].abs_err.is_infinite(), "{:?}", c[2]);
}
