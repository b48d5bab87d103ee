//! sample() against eval(), row-major order, resolution-dependent families, seeds, names and
//! parameter errors.

use mpno::functions::{FunctionError, FunctionOptions, builtins, parse, sample};
use std::f64::consts::TAU;

fn o() -> FunctionOptions {
    FunctionOptions::default()
}

#[test]
fn sample_matches_eval_row_major() {
    let cases: &[(&str, usize, usize)] = &[
        ("expsin", 1, 64),
        ("prod(x,expsin)", 2, 16),
        ("prod(x2,abs_half)", 2, 8),
        ("expsin_diag", 2, 16),
        ("x*y^2", 2, 8),
        ("prod(x,x2,square)", 3, 8),
        ("expsin_diag", 3, 6),
        ("x + 2*y + 3*z", 3, 5),
    ];
    for &(spec, d, s) in cases {
        let f = parse(spec, d, &o()).unwrap();
        let v = sample(f.as_ref(), s);
        assert_eq!(v.len(), s.pow(d as u32));
        for (i, &vi) in v.iter().enumerate() {
            // Row-major: the last coordinate runs fastest.
            let mut x = [0.0; 3];
            let mut r = i;
            for k in (0..d).rev() {
                x[k] = (r % s) as f64 / s as f64;
                r /= s;
            }
            assert_eq!(vi, f.eval(&x[..d]), "{spec} index {i} at {:?}", &x[..d]);
        }
    }
    // Order made visible: x + 2y + 3z at index 1 is z = 1/5, at index 5 y = 1/5, at 25 x = 1/5.
    let f = parse("x + 2*y + 3*z", 3, &o()).unwrap();
    let v = sample(f.as_ref(), 5);
    assert!(
        (v[1] - 0.6).abs() < 1e-15 && (v[5] - 0.4).abs() < 1e-15 && (v[25] - 0.2).abs() < 1e-15
    );
}

#[test]
fn resolution_families_sample_their_instance() {
    let a = parse("aliased:w=3", 1, &o()).unwrap();
    for s in [8usize, 64, 1024] {
        let v = sample(a.as_ref(), s);
        for (j, &vj) in v.iter().enumerate() {
            let expect = (TAU * 3.0 * j as f64 / s as f64).sin();
            assert!((vj - expect).abs() < 1e-13, "s={s} j={j}: {vj} vs {expect}");
        }
    }
    let l = parse("lowercos:L=3", 1, &o()).unwrap();
    for s in [4usize, 32] {
        let v = sample(l.as_ref(), s);
        let amp = 3.0 / (TAU * s as f64);
        assert!(v.iter().all(|&x| (x - amp).abs() < 1e-15), "{v:?}");
    }
    // In products too.
    let p = parse("prod(aliased,one)", 2, &o()).unwrap();
    let v = sample(p.as_ref(), 16);
    assert!((v[16] - (TAU * 3.0 / 16.0).sin()).abs() < 1e-13);
}

#[test]
fn random_sines_are_seeded() {
    let a = parse("randsines", 1, &FunctionOptions { seed: 42, ..o() }).unwrap();
    let b = parse("randsines", 1, &FunctionOptions { seed: 42, ..o() }).unwrap();
    let c = parse("randsines", 1, &FunctionOptions { seed: 43, ..o() }).unwrap();
    let d = parse("randsines:seed=42", 1, &FunctionOptions { seed: 7, ..o() }).unwrap();
    let (va, vb, vc, vd) = (
        sample(a.as_ref(), 256),
        sample(b.as_ref(), 256),
        sample(c.as_ref(), 256),
        sample(d.as_ref(), 256),
    );
    assert_eq!(va, vb);
    assert_eq!(va, vd);
    assert_ne!(va, vc);
    assert_eq!(a.name(), "randsines:k=10,fmax=16,seed=42");
    assert_eq!(a.coefficient(&[3]), b.coefficient(&[3]));
}

#[test]
fn names_round_trip() {
    let specs: &[(&str, usize)] = &[
        ("one", 1),
        ("const:c=1", 1),
        ("const:c=-2.5", 1),
        ("x", 1),
        ("linear:a=1", 1),
        ("linear:a=1000", 1),
        ("x2", 1),
        ("x^2", 1),
        ("poly:c=1;-2;3", 1),
        ("trig:c=0.5,f=1;3,cos=1;0.5,sin=0;2", 1),
        ("trig:f=-2,sin=1", 1),
        ("aliased", 1),
        ("square", 1),
        ("abs_half", 1),
        ("expsin", 1),
        ("lowercos:L=4", 1),
        ("randsines:k=3,fmax=5,seed=9", 1),
        ("prod(x,expsin)", 2),
        ("prod(linear:a=1000,randsines:k=3,seed=2,fmax=4)", 2),
        ("expsin", 3),
        ("expsin_diag", 2),
        ("sin(2*pi*x)*y", 2),
    ];
    for &(spec, d) in specs {
        let f = parse(spec, d, &o()).unwrap();
        let g = parse(&f.name(), d, &o()).unwrap();
        assert_eq!(f.name(), g.name(), "{spec}");
        assert_eq!(f.dim(), d);
        assert_eq!(sample(f.as_ref(), 8), sample(g.as_ref(), 8), "{spec}");
    }
    assert_eq!(parse("const:c=1", 1, &o()).unwrap().name(), "one");
    assert_eq!(parse("linear:a=1", 1, &o()).unwrap().name(), "x");
    assert_eq!(parse("x", 2, &o()).unwrap().name(), "prod(x,x)");
    // x^2 is the built-in x2 in 1-D, but the expression x^2 (not x^2 y^2) in 2-D.
    assert_eq!(parse("x^2", 1, &o()).unwrap().name(), "x2");
    let sq = parse("x^2", 2, &o()).unwrap();
    assert_eq!(sq.name(), "x^2");
    assert!((sq.coefficient(&[0, 0]).re - 1.0 / 3.0).abs() < 1e-13);
    assert_eq!(parse("aliased", 1, &o()).unwrap().name(), "aliased:w=3");
    assert_eq!(
        parse("aliased", 1, &o())
            .unwrap()
            .at_resolution(64)
            .unwrap()
            .name(),
        "aliased:w=3"
    );
}

#[test]
fn builtins_are_documented_and_parse() {
    let list = builtins();
    assert!(list.len() >= 14);
    for (spec, desc) in list {
        assert!(!desc.is_empty());
        let multi = spec.starts_with("prod") || spec == "expsin_diag";
        for d in 1..=3 {
            let r = parse(spec, d, &o());
            assert_eq!(
                r.is_ok(),
                !(multi && d == 1 || spec.starts_with("prod") && d == 3),
                "{spec} d={d}"
            );
        }
    }
    // The alias of the lower-bound family.
    assert_eq!(
        parse("lowerbound:L=2", 1, &o()).unwrap().name(),
        "lowercos:L=2"
    );
}

#[test]
fn bad_parameters_are_named() {
    let cases: &[(&str, usize, &str)] = &[
        ("linear:b=3", 1, "'b'"),
        ("linear:a=abc", 1, "'a'"),
        ("poly", 1, "'c'"),
        ("trig:f=1.5,cos=1", 1, "'f'"),
        ("trig:f=1;2,cos=1", 1, "'cos'"),
        ("randsines:k=0", 1, "'k'"),
        ("lowercos:L=-1", 1, "'L'"),
        ("square:w=2", 1, "no parameters"),
        ("prod(x,expsin)", 3, "2 factors"),
        ("prod(x,sin(x))", 2, "not a 1-D built-in"),
        ("expsin_diag", 1, "dimension 2 or 3"),
        ("x", 4, "1, 2 or 3"),
        ("", 1, "empty"),
    ];
    for &(spec, d, needle) in cases {
        match parse(spec, d, &o()) {
            Ok(f) => panic!("'{spec}' parsed as {}", f.name()),
            Err(e) => {
                let m = e.to_string();
                assert!(m.contains(needle), "'{spec}': {m}");
                if spec.contains('=') {
                    assert!(matches!(e, FunctionError::BadParameter { .. }), "{m}");
                }
            }
        }
    }
}

#[test]
fn product_structure() {
    let f = parse("prod(x,expsin,abs_half)", 3, &o()).unwrap();
    let fs = f.factors().unwrap();
    assert_eq!(fs.len(), 3);
    assert_eq!(fs[1].name(), "expsin");
    // L = sqrt(sum_i (L_i prod_{j != i} M_j)^2), M = prod M_i.
    let e = std::f64::consts::E;
    let l_expsin = 9.164_205_074_636_544;
    let expect_l =
        ((1.0 * e * 0.5f64).powi(2) + (l_expsin * 1.0 * 0.5f64).powi(2) + (1.0 * 1.0 * e).powi(2))
            .sqrt();
    assert!((f.lipschitz() - expect_l).abs() < 1e-12 && f.lipschitz() >= expect_l);
    assert!((f.sup() - e * 0.5).abs() < 1e-15 && f.sup() >= e * 0.5);
    let sq = parse("prod(square,x)", 2, &o()).unwrap();
    assert_eq!(sq.lipschitz(), f64::INFINITY);
}
