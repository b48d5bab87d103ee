//! User expressions: quadrature coefficients against the built-ins' closed forms, certified and
//! given constants, and errors that name the problem.

use mpno::functions::quad::{QuadOptions, gauss_kronrod};
use mpno::functions::special::{cis_turns_neg, reduce_turns};
use mpno::functions::{
    CoefficientSource, ConstantsSource, Expression, Function, FunctionError, FunctionOptions, parse,
};
use num_complex::Complex;
use std::f64::consts::TAU;

fn o() -> FunctionOptions {
    FunctionOptions::default()
}

#[test]
fn expsin_expression_matches_builtin() {
    let e = parse("exp(sin(2*pi*x))", 1, &o()).unwrap();
    let b = parse("expsin", 1, &o()).unwrap();
    assert_eq!(e.name(), "exp(sin(2*pi*x))");
    for w in -6..=6 {
        let d = (e.coefficient(&[w]) - b.coefficient(&[w])).norm();
        assert!(d < 1e-12, "w={w}: {d:e}");
    }
    match e.coefficient_source() {
        CoefficientSource::Quadrature { abs_tol, converged } => {
            assert!((1e-13..1e-12).contains(&abs_tol) && converged)
        }
        s => panic!("{s:?}"),
    }
}

#[test]
fn product_expressions_match_builtins() {
    let e = parse("x*y", 2, &o()).unwrap();
    let b = parse("prod(x,x)", 2, &o()).unwrap();
    for w in [[0, 0], [1, 0], [0, -2], [3, 4], [-5, 1]] {
        let d = (e.coefficient(&w) - b.coefficient(&w)).norm();
        assert!(d < 1e-12, "{w:?}: {d:e}");
    }
    // Variables need not all appear, nor in order.
    let e = parse("exp(sin(2*pi*y))*x^2", 2, &o()).unwrap();
    let b = parse("prod(x2,expsin)", 2, &o()).unwrap();
    for w in [[0, 0], [1, -1], [-2, 3]] {
        let d = (e.coefficient(&w) - b.coefficient(&w)).norm();
        assert!(d < 1e-12, "{w:?}: {d:e}");
    }
    let e = parse("exp(sin(2*pi*(x+y)))", 2, &o()).unwrap();
    let b = parse("expsin_diag", 2, &o()).unwrap();
    for w in [[0, 0], [1, 1], [2, 2], [1, 0], [-1, -1]] {
        let d = (e.coefficient(&w) - b.coefficient(&w)).norm();
        assert!(d < 1e-12, "{w:?}: {d:e}");
    }
    let e = parse("x*y*z", 3, &o()).unwrap();
    let b = parse("x", 3, &o()).unwrap();
    for w in [[0, 0, 0], [1, -1, 2]] {
        let d = (e.coefficient(&w) - b.coefficient(&w)).norm();
        assert!(d < 1e-12, "{w:?}: {d:e}");
    }
}

#[test]
fn kinked_expression_without_breakpoint() {
    // |x - 0.3| has its kink where no panel boundary is: the adaptive rule must find it.
    let e = Expression::new("abs(x - 0.3)", 1, &o()).unwrap();
    for w in [0i64, 1, -2, 5] {
        let (c, est) = e.coefficient_with_error(&[w]);
        let r = gauss_kronrod(
            |x| cis_turns_neg(reduce_turns(w as f64, x)) * (x - 0.3).abs(),
            &[0.0, 0.3, 1.0],
            &QuadOptions::default(),
        );
        let d = (c - r.value).norm();
        assert!(
            d <= est.max(1e-13) + r.abs_err,
            "w={w}: {d:e} vs est {est:e}"
        );
    }
    assert!((e.coefficient(&[0]) - Complex::new(0.29, 0.0)).norm() < 1e-13);
}

#[test]
fn certified_constants() {
    let f = parse("2*x", 1, &o()).unwrap();
    assert!(
        f.lipschitz() >= 2.0 && f.lipschitz() <= 2.0 * 1.04,
        "{}",
        f.lipschitz()
    );
    assert!(f.sup() >= 2.0 && f.sup() <= 2.0 * 1.04, "{}", f.sup());
    let f = parse("sin(2*pi*x)", 1, &o()).unwrap();
    assert!(f.lipschitz() >= TAU && f.lipschitz() <= TAU * 1.04);
    assert!(f.sup() >= 1.0 && f.sup() <= 1.04);
    match f.constants_source() {
        ConstantsSource::Interval(how) => {
            assert!(
                how.contains("L <=") && how.contains("M <=") && how.contains("certified"),
                "{how}"
            )
        }
        s => panic!("{s:?}"),
    }
    // 2-D: the gradient of x + y has norm sqrt 2, more than either axis slope.
    let f = parse("x + y", 2, &o()).unwrap();
    assert!(f.lipschitz() >= 2f64.sqrt() && f.lipschitz() <= 2f64.sqrt() * 1.07);
    assert!(f.sup() >= 2.0 && f.sup() <= 2.0 * 1.07);
    let f = parse("sin(2*pi*x)*cos(2*pi*y)*z", 3, &o()).unwrap();
    assert!(f.lipschitz() >= TAU && f.sup() >= 1.0);
    // A jump has no Lipschitz constant (the old sampled estimate said ~1e5).
    let f = parse("sign(x - 0.5)", 1, &o()).unwrap();
    assert!(f.lipschitz().is_infinite());
}

#[test]
fn given_constants() {
    let given = FunctionOptions {
        lipschitz: Some(7.0),
        sup: Some(1.5),
        seed: 0,
    };
    let f = parse("sin(2*pi*x)", 1, &given).unwrap();
    assert_eq!((f.lipschitz(), f.sup()), (7.0, 1.5));
    assert_eq!(f.constants_source(), ConstantsSource::Given);
    let only_l = FunctionOptions {
        lipschitz: Some(7.0),
        ..o()
    };
    let f = parse("sin(2*pi*x)", 1, &only_l).unwrap();
    assert_eq!(f.lipschitz(), 7.0);
    match f.constants_source() {
        ConstantsSource::PartlyGiven(how) => assert!(how.contains("L given by the user")),
        s => panic!("{s:?}"),
    }
    // Built-ins keep their exact constants.
    let f = parse("x", 1, &given).unwrap();
    assert_eq!(f.lipschitz(), 1.0);
    let bad = FunctionOptions {
        lipschitz: Some(f64::NAN),
        ..o()
    };
    assert!(parse("x", 1, &bad).is_err());
}

fn err(spec: &str, d: usize) -> (FunctionError, String) {
    match parse(spec, d, &o()) {
        Ok(f) => panic!("'{spec}' parsed as {}", f.name()),
        Err(e) => {
            let m = e.to_string();
            (e, m)
        }
    }
}

#[test]
fn errors_name_the_problem() {
    let (e, m) = err("sin(2*pi*x", 1);
    assert!(matches!(e, FunctionError::Parse { .. }), "{m}");
    assert!(
        m.contains("sin(2*pi*x") && m.contains("expsin") && m.contains("aliased"),
        "{m}"
    );
    // The column and a caret under it; no Rust Debug output.
    assert!(
        m.contains("column 11") && m.contains("\n            ^"),
        "{m}"
    );
    let (_, m) = err("x+*2", 1);
    assert!(
        m.contains("column 3") && m.contains("'*'") && !m.contains("0x"),
        "{m}"
    );
    let (_, m) = err("2x", 1);
    assert!(m.contains("2*x"), "{m}");

    let (e, m) = err("y", 1);
    assert!(matches!(e, FunctionError::UnknownVariable { .. }), "{m}");
    assert!(m.contains("'y'") && m.contains("dimension 1"), "{m}");
    let (_, m) = err("x*w", 2);
    assert!(
        m.contains("'w'") && m.contains("x, y") && m.contains("column 3"),
        "{m}"
    );
    let (_, m) = err("expsn", 1);
    assert!(m.contains("'expsn'") && m.contains("expsin"), "{m}");

    let (e, m) = err("log(x - 0.5)", 1);
    assert!(matches!(e, FunctionError::NotFinite { .. }), "{m}");
    assert!(m.contains("log(x - 0.5)") && m.contains("x = 0"), "{m}");
    let (_, m) = err("sqrt(x-0.5)", 1);
    assert!(m.contains("x = 0") && m.contains("NaN"), "{m}");
    let (_, m) = err("1/(x - 0.5)", 1);
    assert!(m.contains("x = 0.5") && m.contains("inf"), "{m}");
    let (_, m) = err("sqrt(y - 0.5)", 2);
    assert!(m.contains("(x, y) = (0, 0)"), "{m}");
    let (_, m) = err("1/(z - 1)", 3);
    assert!(m.contains("(x, y, z) = (0, 0, 1)"), "{m}");
}

#[test]
fn huge_expressions_get_finite_certified_constants() {
    // The Lipschitz norm squared the slopes: past ~1e154 it overflowed, and 1e200 x (2-D:
    // 1e200 (x + y)) was reported as not Lipschitz (L = inf), so it had no discretization bound.
    let f = parse("1e200*x", 1, &o()).unwrap();
    assert!(f.lipschitz() >= 1e200 && f.lipschitz() <= 1e200 * 1.04);
    assert!(f.sup() >= 1e200 && f.sup() <= 1e200 * 1.04);
    let g = parse("1e200*(x+y)", 2, &o()).unwrap();
    let want = 2f64.sqrt() * 1e200;
    assert!(g.lipschitz() >= want && g.lipschitz() <= want * 1.04);
}
