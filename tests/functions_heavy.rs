//! Heavier checks, run with `cargo test --release -- --ignored`: 3-D expression quadrature,
//! kinks off the panel grid in 2-D, and dense-grid checks of the constants at large parameters.

use mpno::functions::{Expression, FunctionOptions, parse};
use std::time::Instant;

fn o() -> FunctionOptions {
    FunctionOptions::default()
}

#[test]
#[ignore]
fn expression_3d_matches_expsin_diag() {
    let e = parse("exp(sin(2*pi*(x+y+z)))", 3, &o()).unwrap();
    let b = parse("expsin_diag", 3, &o()).unwrap();
    for w in [[0, 0, 0], [1, 1, 1], [2, 2, 2], [1, 0, -1], [3, 3, 3]] {
        let t = Instant::now();
        let d = (e.coefficient(&w) - b.coefficient(&w)).norm();
        println!("3-D {w:?}: diff {d:.2e} in {:.2?}", t.elapsed());
        assert!(d < 1e-12, "{w:?}: {d:e}");
    }
}

#[test]
#[ignore]
fn kinks_and_jumps_in_2d() {
    // int |x - y| e^{-2 pi i (w1 x + w2 y)}: at w = 0 it is 1/3; at (k, -k) it is the 1-D
    // coefficient of the triangle-shaped autocorrelation: int_{-1}^{1} |t| (1 - |t|) e^{-2 pi i k t}
    // dt = closed form below (by parts).
    let e = Expression::new("abs(x - y)", 2, &o()).unwrap();
    let t = Instant::now();
    let (c, est) = e.coefficient_with_error(&[0, 0]);
    println!("|x-y| (0,0): {c} est {est:.1e} in {:.2?}", t.elapsed());
    assert!((c.re - 1.0 / 3.0).abs() < 1e-12 && c.im.abs() < 1e-12);
    for k in [1i64, 2, 3] {
        let t = Instant::now();
        let (c, est) = e.coefficient_with_error(&[k, -k]);
        // 2 int_0^1 t (1 - t) cos(2 pi k t) dt = -1 / (pi^2 k^2) for k != 0.
        let exact = -1.0 / (std::f64::consts::PI.powi(2) * (k * k) as f64);
        println!(
            "|x-y| ({k},{}): {c} vs {exact} est {est:.1e} in {:.2?}",
            -k,
            t.elapsed()
        );
        assert!((c.re - exact).abs() < 1e-11 && c.im.abs() < 1e-11);
    }
    // A jump along x = 1/3 (not a panel boundary): int sign(x - 1/3) y = (2/3 - 1/3) / 2.
    let e = Expression::new("sign(x - 1/3)*y", 2, &o()).unwrap();
    let t = Instant::now();
    let (c, est) = e.coefficient_with_error(&[0, 0]);
    println!("sign(x-1/3) y: {c} est {est:.1e} in {:.2?}", t.elapsed());
    assert!((c.re - 1.0 / 6.0).abs() < 1e-11);
}

#[test]
#[ignore]
fn random_sines_constants_many_seeds() {
    // L and M of random sines are never below a dense grid's values (2^20 points), over many seeds.
    for seed in 0..200u64 {
        let f = parse(&format!("randsines:k=10,fmax=16,seed={seed}"), 1, &o()).unwrap();
        let n = 1 << 18;
        let h = 1.0 / n as f64;
        let mut prev = f.eval(&[0.0]);
        let (mut m, mut l) = (prev.abs(), 0.0f64);
        for j in 1..=n {
            let v = f.eval(&[j as f64 * h]);
            m = m.max(v.abs());
            l = l.max((v - prev).abs() / h);
            prev = v;
        }
        assert!(f.sup() >= m && f.sup() <= m * 1.001, "seed {seed}: M");
        assert!(
            f.lipschitz() >= l && f.lipschitz() <= l * 1.001,
            "seed {seed}: L"
        );
    }
}
