//! Certified bounds for user expressions (issue: "Certified bounds for any user function"):
//! - certified L and M are upper bounds of the true values and within 2x of them, for the
//!   built-in families written as expressions (1-D to 3-D);
//! - the issue's three reproductions give the right numbers;
//! - 30 expressions (narrow Gaussians, kinks, jumps, steep tanh fronts, singular derivatives,
//!   2-D and 3-D products and non-separable ones): the coefficients agree with mpmath
//!   (tests/fixtures/expr_coefficients.json, scripts/expr_fixture.py) to the stated error, and
//!   every row of a sweep has measured <= bound;
//! - poles and domain errors are refused, naming where.

use mpno::error::{Kind, SweepConfig, run_sweep};
use mpno::fft::Algorithm;
use mpno::functions::{
    CoefficientSource, ConstantsSource, Expression, Function, FunctionError, FunctionOptions,
    builtins, parse,
};
use mpno::precision::{Format, Model};
use num_complex::Complex;
use std::f64::consts::{E, PI, TAU};

fn o() -> FunctionOptions {
    FunctionOptions::default()
}

/// (expression, dim, true L, true M), with L and M from closed forms.
/// sup of |grad (x e^{sin 2 pi y})| = max_t e^{sin t} sqrt(1 + 4 pi^2 cos^2 t) (at x = 1), on a
/// fine grid (a lower estimate of the maximum, which the certified L must exceed).
fn xexpsin_slope() -> f64 {
    (0..=1_000_000)
        .map(|i| {
            let t = TAU * i as f64 / 1e6;
            t.sin().exp() * (1.0 + (TAU * t.cos()).powi(2)).sqrt()
        })
        .fold(0.0, f64::max)
}

fn families() -> Vec<(String, usize, f64, f64)> {
    let expsin_l = TAU * mpno::functions::special::expsin_slope_max();
    let mut v: Vec<(String, usize, f64, f64)> = vec![
        ("1".into(), 1, 0.0, 1.0),
        ("(x)".into(), 1, 1.0, 1.0),
        ("1000*x".into(), 1, 1000.0, 1000.0),
        ("(x)^2".into(), 1, 2.0, 1.0),
        // p = 1 - 2x + 3x^2: p(1) = 2 is the max of |p|; |p'| = |6x - 2| peaks at x = 1.
        ("1 - 2*x + 3*x^2".into(), 1, 4.0, 2.0),
        ("exp(sin(2*pi*x))".into(), 1, expsin_l, E),
        ("abs(x - 1/2)".into(), 1, 1.0, 0.5),
        ("sin(2*pi*3*x)".into(), 1, 6.0 * PI, 1.0),
        ("sign(sin(2*pi*x))".into(), 1, f64::INFINITY, 1.0),
        (
            "exp(-((x-0.3)*1e8)^2)".into(),
            1,
            1e8 * (2.0 / E).sqrt(),
            1.0,
        ),
        ("x*y".into(), 2, 2f64.sqrt(), 1.0),
        ("exp(sin(2*pi*(x+y)))".into(), 2, 2f64.sqrt() * expsin_l, E),
        ("sin(2*pi*x)*cos(2*pi*y)".into(), 2, TAU, 1.0),
        ("x*exp(sin(2*pi*y))".into(), 2, xexpsin_slope(), E),
        ("x*y*z".into(), 3, 3f64.sqrt(), 1.0),
        (
            "exp(sin(2*pi*(x+y+z)))".into(),
            3,
            3f64.sqrt() * expsin_l,
            E,
        ),
        ("sin(2*pi*x)*y^2*exp(z)".into(), 3, 0.0, E),
    ];
    // sin(2 pi x) y^2 e^z: |grad|^2 = e^{2z} y^2 (4 pi^2 cos^2 y^2 + 4 sin^2 + sin^2 y^2), largest
    // at y = z = 1 and x = 0 (2 pi e) or x = 1/4 (sqrt(5) e): 2 pi e.
    v.last_mut().unwrap().2 = TAU * E;
    // The trigonometric built-ins as expressions; their own L, M are tight bounds.
    for spec in [
        "trig:c=0.5,f=1;3,cos=1;0.5,sin=0;2",
        "randsines:k=5,fmax=8,seed=3",
    ] {
        let f = parse(spec, 1, &o()).unwrap();
        let text = match spec.split(':').next().unwrap() {
            "trig" => "0.5 + cos(2*pi*x) + 0.5*cos(2*pi*3*x) + 2*sin(2*pi*3*x)".to_string(),
            _ => {
                // Rebuild from the coefficients: a_k cos + b_k sin at f_k = 1..8.
                let mut t = String::from("0");
                for k in 1..=8 {
                    let c = f.coefficient(&[k]);
                    // c_k = (a - i b) / 2 for a cos + b sin.
                    let (a, b) = (2.0 * c.re, -2.0 * c.im);
                    if a.abs() + b.abs() > 0.0 {
                        t += &format!(" + {a:e}*cos(2*pi*{k}*x) + {b:e}*sin(2*pi*{k}*x)");
                    }
                }
                t
            }
        };
        v.push((text, 1, f.lipschitz(), f.sup()));
    }
    v
}

#[test]
fn certified_constants_bound_the_true_values_within_2x() {
    for (text, d, l, m) in families() {
        let f = parse(&text, d, &o()).unwrap();
        let (lc, mc) = (f.lipschitz(), f.sup());
        let src = f.constants_source();
        assert!(
            matches!(src, ConstantsSource::Interval(_)),
            "{text}: {src:?}"
        );
        assert_eq!(src.tag(), "interval");
        // The trigonometric references are themselves bounds a hair above the truth.
        let slack = 1.0 - 1e-9;
        assert!(
            mc >= m * slack && mc <= 2.0 * m,
            "{text}: M = {mc}, true {m}"
        );
        if l.is_infinite() {
            assert!(lc.is_infinite(), "{text}: L = {lc} for a jump");
        } else {
            assert!(
                lc >= l * slack && lc <= 2.0 * l.max(1e-300),
                "{text}: L = {lc}, true {l}"
            );
        }
        println!("{text} (d = {d}): L {lc:.6e} / {l:.6e}, M {mc:.6e} / {m:.6e}");
    }
}

#[test]
fn issue_reproductions() {
    // 1. Precedence: exp(-x^2) is exp(-(x^2)); its coefficient at w = 1 has modulus 1.0257396
    //    (the DFT at s = 1 is v(0) = 1, so the measured error is |F(v)(1) - 1|).
    let f = parse("exp(-x^2)", 1, &o()).unwrap();
    let g = parse("exp(-(x^2))", 1, &o()).unwrap();
    let c = f.coefficient(&[1]);
    assert!((c - g.coefficient(&[1])).norm() < 1e-15);
    assert!(((c - Complex::new(1.0, 0.0)).norm() - 1.0257396).abs() < 5e-8);
    assert_eq!(parse("2^3^2", 1, &o()).unwrap().eval(&[0.0]), 512.0);
    assert_eq!(parse("1e-3*x", 1, &o()).unwrap().eval(&[1.0]), 1e-3);

    // 2. A narrow feature: certified L = 1e8 sqrt(2/e), M = 1, and the discretization error
    //    (the coefficient is sqrt(pi) 1e-8, the grid misses the spike) below its bound.
    let f = parse("exp(0-((x-0.3)*1e8)^2)", 1, &o()).unwrap();
    assert!(f.sup() >= 1.0 && f.sup() < 1.01);
    let l = 1e8 * (2.0 / E).sqrt();
    assert!(
        f.lipschitz() >= l && f.lipschitz() < 1.1 * l,
        "{}",
        f.lipschitz()
    );
    let rows = sweep(f.as_ref(), 1, &[16, 1024], &[vec![0]]);
    for r in rows.iter().filter(|r| r.kind == Kind::Discretization) {
        assert!((r.measured - PI.sqrt() * 1e-8).abs() < 1e-13, "{r:?}");
        assert!(r.measured <= r.bound, "{r:?}");
    }

    // 3. Quadrature that would have missed the spike: the coefficient is the erf closed form
    //    sqrt(pi)/3000 (erf(2100) = erf(900) = 1 to f64), 5.9e-4.
    let f = parse("exp(0-((x-0.3)*3000)^2)", 1, &o()).unwrap();
    let rows = sweep(f.as_ref(), 1, &[16], &[vec![0]]);
    let disc = rows
        .iter()
        .find(|r| r.kind == Kind::Discretization)
        .unwrap();
    let exact = PI.sqrt() / 3000.0;
    assert!((disc.measured - exact).abs() < 1e-13, "{disc:?}");
    assert!(disc.note.contains("quadrature (abs err"), "{}", disc.note);
}

fn sweep(
    f: &dyn Function,
    dim: usize,
    sizes: &[usize],
    modes: &[Vec<i64>],
) -> Vec<mpno::error::Row> {
    let cfg = SweepConfig {
        dim,
        sizes: sizes.to_vec(),
        modes: modes.to_vec(),
        formats: vec![Format::Fp32, Format::Bf16, Format::Fp16, Format::E4m3],
        scaled: vec![],
        models: vec![Model::Input, Model::Arithmetic],
        algorithm: Algorithm::Auto,
        progress: false,
    };
    run_sweep(f, &cfg).unwrap()
}

#[derive(serde::Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

#[derive(serde::Deserialize)]
struct Case {
    expr: String,
    dim: usize,
    modes: Vec<Vec<i64>>,
    coefficients: Vec<[String; 2]>,
}

#[test]
fn thirty_expressions_against_mpmath_and_their_bounds() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/expr_coefficients.json"
    ))
    .unwrap();
    let fx: Fixture = serde_json::from_str(&text).unwrap();
    assert!(fx.cases.len() >= 30, "{}", fx.cases.len());
    for case in &fx.cases {
        let e = Expression::new(&case.expr, case.dim, &o()).unwrap();
        for (w, c) in case.modes.iter().zip(&case.coefficients) {
            let want = Complex::new(c[0].parse::<f64>().unwrap(), c[1].parse::<f64>().unwrap());
            let got = e.coefficient_checked(w);
            let err = (got.value - want).norm();
            assert!(got.converged, "{} at {w:?}: not converged", case.expr);
            // The reference's own rounding to f64 is below 1e-16 |want|.
            assert!(
                err <= got.abs_err + 1e-16 * want.norm(),
                "{} at {w:?}: |{} - {want}| = {err:e} above the stated {:e}",
                case.expr,
                got.value,
                got.abs_err
            );
        }
        let sizes: &[usize] = match case.dim {
            1 => &[16, 128, 1024],
            2 => &[16, 64],
            _ => &[8, 16],
        };
        for r in sweep(&e, case.dim, sizes, &case.modes) {
            assert!(
                r.measured <= r.bound || (r.measured.is_infinite() && r.bound.is_infinite()),
                "{}: measured above bound: {r:?}",
                case.expr
            );
            if r.kind == Kind::Discretization {
                assert_eq!(r.constants, "interval", "{r:?}");
            } else {
                assert_eq!(r.constants, "samples", "{r:?}");
            }
        }
    }
}

#[test]
fn poles_and_domain_errors_are_refused_with_the_place() {
    for (text, d, near) in [
        ("1/(x-0.3)", 1, "0.3"),
        ("tan(pi*x)", 1, "0.5"),
        ("1/(x-y+0.3)", 2, ""),
        ("log(abs(x-0.7))", 1, "0.7"),
    ] {
        match parse(text, d, &o()) {
            Err(e @ FunctionError::Unbounded { .. }) => {
                let m = e.to_string();
                assert!(m.contains("unbounded") && m.contains(near), "{m}");
            }
            Err(e) => panic!("{text}: {e}"),
            Ok(f) => panic!("{text} accepted with M = {}", f.sup()),
        }
    }
    // Negative only within 2.3e-5 of x = 0.7501, between the check grid's points.
    match parse("sqrt(sin(2*pi*(x-0.0001)) + 0.99999999)", 1, &o()) {
        Err(e @ FunctionError::Undefined { .. }) => {
            assert!(e.to_string().contains("x ~ 0.750"), "{e}")
        }
        Err(e) => panic!("{e}"),
        Ok(f) => panic!("accepted with M = {}", f.sup()),
    }
    // A jump is not an error: L is infinite and the CSV says why there is no bound.
    let f = parse("sign(x - 0.3)", 1, &o()).unwrap();
    assert!(f.lipschitz().is_infinite() && f.sup() == 1.0);
    // sqrt is bounded but not Lipschitz at 0.
    let f = parse("sqrt(x)", 1, &o()).unwrap();
    assert!(f.lipschitz().is_infinite() && (1.0..1.01).contains(&f.sup()));
}

#[test]
fn user_constants_are_marked_as_such() {
    let given = FunctionOptions {
        lipschitz: Some(7.0),
        sup: Some(1.5),
        seed: 0,
    };
    let f = parse("sin(2*pi*x)", 1, &given).unwrap();
    assert_eq!(f.constants_source().tag(), "user");
    let only_l = FunctionOptions {
        lipschitz: Some(7.0),
        ..o()
    };
    let f = parse("sin(2*pi*x)", 1, &only_l).unwrap();
    assert_eq!(f.lipschitz(), 7.0);
    assert!(f.sup() >= 1.0 && f.sup() < 1.01);
    assert_eq!(f.constants_source().tag(), "user+interval");
    let rows = sweep(f.as_ref(), 1, &[16], &[vec![1]]);
    let disc = rows
        .iter()
        .find(|r| r.kind == Kind::Discretization)
        .unwrap();
    assert_eq!(disc.constants, "user+interval");
    // Built-ins keep their closed forms.
    for (spec, _) in builtins() {
        if spec.starts_with("prod") || spec.starts_with("expsin_diag") {
            continue;
        }
        let f = parse(spec, 1, &o()).unwrap();
        assert!(f.constants_source().certified(), "{spec}");
        assert!(
            matches!(f.coefficient_source(), CoefficientSource::Exact),
            "{spec}"
        );
    }
}

/// The other bases' coefficient quadratures check resolution too: a spike that every panel's
/// nodes miss (width 3e-4 at x = 0.3) is found. References: Haar j = 2, k = 1 is
/// 2 (int_{1/4}^{3/8} v - int_{3/8}^{1/2} v) = 2 sqrt(pi)/3000; Chebyshev c_0 = (1/pi) int_0^pi
/// v((cos t + 1)/2) dt = sqrt(pi) / (3000 pi |dx/dt|) with |dx/dt| = sin(t*)/2, cos(t*) = -0.4
/// (the integrand is a Gaussian in t to 1e-7 relative).
#[test]
fn haar_and_chebyshev_quadratures_find_a_spike() {
    use mpno::basis::BasisKind;
    use mpno::basis::sweep::{BasisSweepConfig, Target, run};
    let f: std::sync::Arc<dyn Function> =
        std::sync::Arc::from(parse("exp(0-((x-0.3)*3000)^2)", 1, &o()).unwrap());
    let g = PI.sqrt() / 3000.0;
    let half_sin = (1.0f64 - 0.16).sqrt() / 2.0;
    for (basis, mode, want) in [
        ("haar", vec![2, 1], 2.0 * g),
        ("haar", vec![-1, 0], g),
        ("chebyshev", vec![0], g / (PI * half_sin)),
    ] {
        let cfg = BasisSweepConfig {
            kind: BasisKind::parse(basis).unwrap(),
            sizes: vec![16],
            modes: vec![mode.clone()],
            formats: vec![Format::Fp16],
            models: vec![Model::Input],
            progress: false,
        };
        let rows = run(&Target::Interval(f.clone()), &cfg).unwrap();
        let d = rows
            .iter()
            .find(|r| r.kind == Kind::Discretization)
            .unwrap();
        // The transform on 16 (17) points sees nothing of the spike: measured = |coefficient|.
        assert!(
            (d.measured - want).abs() < 1e-6 * want,
            "{basis} {mode:?}: {} vs {want}",
            d.measured
        );
        assert!(d.measured <= d.bound && d.constants == "interval", "{d:?}");
    }
}

/// A certificate that ran out of boxes says so in the discretization rows (the bound stays
/// valid): exp(sin(2 pi (x + y + z))) reaches the 3-D budget before its L is within 1/8.
#[test]
fn a_loose_certificate_is_flagged_in_the_rows() {
    let f = parse("exp(sin(2*pi*(x+y+z)))", 3, &o()).unwrap();
    let note = f.constants_note();
    assert!(
        note.contains("L = ") && note.contains("may be loose"),
        "{note}"
    );
    let rows = sweep(f.as_ref(), 3, &[4], &[vec![1, 1, 1]]);
    let d = rows
        .iter()
        .find(|r| r.kind == Kind::Discretization)
        .unwrap();
    assert!(
        d.note.contains("may be loose") && d.measured <= d.bound,
        "{d:?}"
    );
    // Tight certificates add nothing.
    assert!(parse("x*y*z", 3, &o()).unwrap().constants_note().is_empty());
}

/// Work is bounded whatever the expression: too long is refused, and a 3-D coefficient that
/// would take minutes stops at its evaluation budget (~10 s) and says it is not resolved
/// (the budget mechanism itself: quad's unit tests).
#[test]
fn cost_is_bounded() {
    let long = vec!["x"; 5000].join("+");
    match parse(&long, 1, &o()) {
        Err(e @ FunctionError::Parse { .. }) => assert!(e.to_string().contains("too long"), "{e}"),
        other => panic!("{:?}", other.map(|f| f.name())),
    }
}

#[test]
#[ignore = "runs the 3-D quadrature to its evaluation budget (~10 s on 2 cores)"]
fn a_3d_coefficient_stops_at_its_budget() {
    // 60 incommensurate sines in 3-D with user-given constants (no certification): the
    // quadrature's budget ends it in seconds, flagged.
    let terms: Vec<String> = (1..=60)
        .map(|k| format!("sin({k}*x+{}*y-{}*z)", k % 7, k % 5))
        .collect();
    let given = FunctionOptions {
        lipschitz: Some(1e4),
        sup: Some(60.0),
        seed: 0,
    };
    let f = parse(&terms.join("+"), 3, &given).unwrap();
    let t = std::time::Instant::now();
    let c = f.coefficient_checked(&[1, 1, 1]);
    println!("{c:?} in {:?}", t.elapsed());
    assert!(t.elapsed().as_secs() < 60, "{:?}", t.elapsed());
    if !c.converged {
        assert!(
            c.note().contains("NOT resolved") && c.abs_err > 1e-13,
            "{c:?}"
        );
    }
}
