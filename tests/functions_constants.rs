//! L and M of every built-in are never below what a dense grid shows (max |v| and the largest
//! difference quotient, both lower bounds of the true values), and within a few percent of it.

use mpno::functions::{ConstantsSource, Function, FunctionOptions, parse};

const ONE_D: &[&str] = &[
    "one",
    "const:c=-2.5",
    "x",
    "linear:a=1000",
    "linear:a=-3",
    "x2",
    "poly:c=1;-2;3;0.5",
    "poly:c=0.3;-1.7;2.2;-0.9;0.4;1.3;-0.6;0.8;-0.2",
    "poly:c=0.21;-1;1",
    "trig:c=0.5,f=1;3,cos=1;0.5,sin=0;2",
    "trig:f=2,sin=1",
    "aliased",
    "aliased:w=-2",
    "square",
    "abs_half",
    "expsin",
    "lowercos",
    "lowercos:L=10",
    "randsines",
    "randsines:k=5,fmax=40,seed=7",
    "randsines:k=30,fmax=3,seed=123",
    "randsines:k=300,fmax=30,seed=11",
];

/// (max |v|, max |v(x_{j+1}) - v(x_j)| / h) on n + 1 points.
fn dense_1d(f: &dyn Function, n: usize) -> (f64, f64) {
    let h = 1.0 / n as f64;
    let mut prev = f.eval(&[0.0]);
    let (mut m, mut l) = (prev.abs(), 0.0f64);
    for j in 1..=n {
        let v = f.eval(&[j as f64 * h]);
        m = m.max(v.abs());
        l = l.max((v - prev).abs() / h);
        prev = v;
    }
    (m, l)
}

/// Many terms at high frequencies: the constants come from an FFT of the coefficients in
/// under a second (a direct sum on the grid took over ten minutes), stay above the values at
/// random points, and are far tighter than the crude sums of amplitudes.
#[test]
fn many_random_sines_have_fast_safe_constants() {
    use rand::{RngExt, SeedableRng};
    let o = FunctionOptions::default();
    let t = std::time::Instant::now();
    let f = parse("randsines:k=100000,fmax=100000,seed=2", 1, &o).unwrap();
    let (lf, mf) = (f.lipschitz(), f.sup());
    eprintln!(
        "k = 1e5, fmax = 1e5: L = {lf:e}, M = {mf:e} in {:.2?}",
        t.elapsed()
    );
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);
    let (mut m, mut l) = (0.0f64, 0.0f64);
    let h = 1e-9;
    for _ in 0..300 {
        let x: f64 = rng.random::<f64>() * (1.0 - h);
        let (a, b) = (f.eval(&[x]), f.eval(&[x + h]));
        m = m.max(a.abs());
        l = l.max((b - a).abs() / h);
    }
    assert!(mf >= m, "M = {mf} below a sampled value {m}");
    assert!(lf >= 0.99 * l, "L = {lf} below a sampled slope {l}");
    // Amplitudes are uniform on [-1, 1): their sum is ~5e4; the maximum of the sum is ~ its
    // standard deviation (~180) times a few.
    assert!(mf < 5e3, "M = {mf} is not from the grid");
}

#[test]
fn one_d_constants_are_safe_and_tight() {
    let o = FunctionOptions {
        seed: 5,
        ..Default::default()
    };
    for spec in ONE_D {
        let fam = parse(spec, 1, &o).unwrap();
        let f = fam.at_resolution(16).unwrap_or(fam);
        let n = 1 << 20;
        let (m, l) = dense_1d(f.as_ref(), n);
        let (lf, mf) = (f.lipschitz(), f.sup());
        assert!(mf >= m, "{spec}: M = {mf} below the sampled max {m}");
        // A difference quotient of rounded values carries up to ~2 ulp(M) / h of rounding noise.
        let noise = 4.0 * f64::EPSILON * m * n as f64;
        assert!(
            lf >= l - noise,
            "{spec}: L = {lf} below the sampled slope {l}"
        );
        assert!(
            mf <= m * 1.03 + 1e-300,
            "{spec}: M = {mf} loose vs sampled {m}"
        );
        if lf.is_finite() {
            assert!(
                lf <= l * 1.03 + 1e-300,
                "{spec}: L = {lf} loose vs sampled {l}"
            );
        } else {
            assert_eq!(*spec, "square");
            assert!(l > 1e5, "square: the jump shows as a huge slope");
        }
        assert!(matches!(
            f.constants_source(),
            ConstantsSource::Exact | ConstantsSource::Bound(_)
        ));
    }
}

#[test]
fn exact_constants_are_exact_values() {
    let o = FunctionOptions::default();
    let tau = std::f64::consts::TAU;
    let cases: &[(&str, f64, f64)] = &[
        ("one", 0.0, 1.0),
        ("x", 1.0, 1.0),
        ("linear:a=1000", 1000.0, 1000.0),
        ("x2", 2.0, 1.0),
        ("abs_half", 1.0, 0.5),
        ("square", f64::INFINITY, 1.0),
    ];
    for &(spec, l, m) in cases {
        let f = parse(spec, 1, &o).unwrap();
        assert_eq!((f.lipschitz(), f.sup()), (l, m), "{spec}");
    }
    let e = parse("expsin", 1, &o).unwrap();
    assert!((e.lipschitz() - 9.164_205_074_636_544).abs() < 1e-13);
    assert!((e.sup() - std::f64::consts::E).abs() < 1e-15 && e.sup() > std::f64::consts::E);
    let a = parse("aliased:w=3", 1, &o)
        .unwrap()
        .at_resolution(64)
        .unwrap();
    assert!((a.lipschitz() - tau * 67.0).abs() < 1e-12 && a.sup() == 1.0);
    let lb = parse("lowercos:L=2", 1, &o)
        .unwrap()
        .at_resolution(64)
        .unwrap();
    assert_eq!(lb.lipschitz(), 2.0);
    assert!((lb.sup() - 2.0 / (tau * 64.0)).abs() < 1e-17);
}

/// Max |v| and max gradient-norm estimate (forward differences on an n^d grid, and the largest
/// single-axis difference quotient, which is a true lower bound of L).
fn dense_nd(f: &dyn Function, n: usize) -> (f64, f64, f64) {
    let d = f.dim();
    let h = 1.0 / n as f64;
    let p = n + 1;
    let total = p.pow(d as u32);
    let point = |mut i: usize| {
        let mut x = [0.0; 3];
        let mut idx = [0usize; 3];
        for k in (0..d).rev() {
            idx[k] = i % p;
            x[k] = (i % p) as f64 * h;
            i /= p;
        }
        (x, idx)
    };
    let (mut m, mut axis, mut grad) = (0.0f64, 0.0f64, 0.0f64);
    for i in 0..total {
        let (x, idx) = point(i);
        let v = f.eval(&x[..d]);
        m = m.max(v.abs());
        if idx[..d].iter().all(|&j| j < n) {
            let mut g2 = 0.0;
            for k in 0..d {
                let mut y = x;
                y[k] += h;
                let dk = (f.eval(&y[..d]) - v) / h;
                axis = axis.max(dk.abs());
                g2 += dk * dk;
            }
            grad = grad.max(g2.sqrt());
        }
    }
    (m, axis, grad)
}

#[test]
fn multi_d_constants_are_safe() {
    let o = FunctionOptions::default();
    let cases: &[(&str, usize, bool)] = &[
        // (spec, dim, L attained: the product bound is exact when the factors' maxima align)
        ("x", 2, true),
        ("prod(x,expsin)", 2, false),
        ("prod(abs_half,x2)", 2, false),
        ("expsin_diag", 2, true),
        ("x", 3, true),
        ("prod(x,x2,expsin)", 3, false),
        ("expsin_diag", 3, true),
    ];
    for &(spec, d, attained) in cases {
        let f = parse(spec, d, &o).unwrap();
        let n = if d == 2 { 1024 } else { 96 };
        let (m, axis, grad) = dense_nd(f.as_ref(), n);
        assert!(
            f.sup() >= m && f.sup() <= m * 1.01,
            "{spec} d={d}: M {} vs {m}",
            f.sup()
        );
        assert!(
            f.lipschitz() >= axis,
            "{spec} d={d}: L {} < axis slope {axis}",
            f.lipschitz()
        );
        assert!(
            f.lipschitz() >= grad * 0.999,
            "{spec} d={d}: L {} < gradient {grad}",
            f.lipschitz()
        );
        if attained {
            assert!(
                f.lipschitz() <= grad * 1.03,
                "{spec} d={d}: L {} loose vs {grad}",
                f.lipschitz()
            );
        }
    }
}
