//! Burgers: the ETDRK4 pseudo-spectral solver against the Cole-Hopf exact solution.
//!
//! For u0 = A sin(2 pi x), Cole-Hopf gives u = -2 nu phi_x / phi with
//! phi(x, t) = I_0(B) + 2 sum_{k>=1} I_k(B) exp(-nu (2 pi k)^2 t) cos(2 pi k x), B = A / (4 pi nu)
//! (exp(B cos theta) = I_0(B) + 2 sum I_k(B) cos(k theta), the heat kernel acting on each mode),
//! with I_k the modified Bessel functions, summed here from their power series (all terms
//! positive, so f64 keeps ~1e-16 relative accuracy).

use mpno::pde::burgers::{BurgersGenerator, BurgersParams, BurgersSolver, steps_for};
use mpno::pde::sample_rng;
use std::f64::consts::PI;

fn bessel_i(k: usize, b: f64) -> f64 {
    let h = b / 2.0;
    let mut term = (1..=k).fold(1.0, |t, j| t * h / j as f64);
    let mut sum = 0.0;
    let mut m = 0;
    while term > 1e-18 * sum || m == 0 {
        sum += term;
        m += 1;
        term *= h * h / (m * (m + k)) as f64;
    }
    sum
}

fn cole_hopf(a: f64, nu: f64, t: f64, r: usize) -> Vec<f64> {
    let b = a / (4.0 * PI * nu);
    // I_k(B) < (B/2)^k / k! e^{B^2/4}: below 1e-30 of I_0 long before k = 120 for B <= 8.
    let ik: Vec<f64> = (0..120).map(|k| bessel_i(k, b)).collect();
    (0..r)
        .map(|j| {
            let x = j as f64 / r as f64;
            let (mut num, mut den) = (0.0, ik[0]);
            for (k, &i) in ik.iter().enumerate().skip(1) {
                let w = 2.0 * PI * k as f64;
                let e = i * (-nu * w * w * t).exp();
                den += 2.0 * e * (w * x).cos();
                num += 2.0 * e * w * (w * x).sin();
            }
            2.0 * nu * num / den
        })
        .collect()
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn max_abs(a: &[f64]) -> f64 {
    a.iter().fold(0.0f64, |m, x| m.max(x.abs()))
}

#[test]
fn cole_hopf_reference_reproduces_the_initial_condition() {
    // The reference itself: at t = 0 it must give A sin(2 pi x) to round-off (eps times the
    // ratio of the largest Bessel sum to the result, ~ e^B / A).
    for (a, nu) in [(1.0, 0.1), (2.0, 0.1), (1.0, 0.02)] {
        let r = 256;
        let u = cole_hopf(a, nu, 0.0, r);
        let want: Vec<f64> = (0..r)
            .map(|j| a * (2.0 * PI * j as f64 / r as f64).sin())
            .collect();
        let b = a / (4.0 * PI * nu);
        let tol = 1e3 * f64::EPSILON * b.exp() * a;
        assert!(max_abs_diff(&u, &want) < tol, "A {a} nu {nu}");
    }
}

#[test]
fn matches_cole_hopf_to_1e6() {
    // Paper viscosity (0.1) and a steeper case (0.02), r = 1024, T = 1, default step rule.
    // Error model: time error of ETDRK4 (order 4) estimated by Richardson from a run with
    // twice the steps, |u_h - u_exact| ~ 16/15 |u_h - u_{h/2}|, plus round-off of the spectral
    // solve, eps sqrt(steps) log2(r) max|u| (bounded by 100 eps max|u| here); allowed: twice that.
    let p = BurgersParams::default();
    for (a, nu) in [(1.0, 0.1), (2.0, 0.1), (1.0, 0.02)] {
        let r = 1024;
        let u0: Vec<f64> = (0..r)
            .map(|j| a * (2.0 * PI * j as f64 / r as f64).sin())
            .collect();
        let exact = cole_hopf(a, nu, 1.0, r);
        let steps = steps_for(a, nu, 1.0, p.dt_max, p.cfl);
        let mut s = BurgersSolver::new(r);
        let u = s.solve(&u0, nu, 1.0, steps);
        let u2 = s.solve(&u0, nu, 1.0, 2 * steps);
        let err = max_abs_diff(&u, &exact) / max_abs(&exact);
        let model = (16.0 / 15.0 * max_abs_diff(&u, &u2) + 100.0 * f64::EPSILON * max_abs(&exact))
            / max_abs(&exact);
        println!("A {a} nu {nu}: {steps} steps, relative max error {err:.3e}, model {model:.3e}");
        assert!(err < 1e-6, "A {a} nu {nu}: relative error {err:.3e}");
        assert!(
            err <= 2.0 * model,
            "A {a} nu {nu}: {err:.3e} vs model {model:.3e}"
        );
    }
}

#[test]
fn etdrk4_is_fourth_order() {
    // Error ratios for halved steps, in the range where time error dominates round-off:
    // 2^4 = 16; allowed 16 +- 30% for the pre-asymptotic terms.
    let (a, nu, r) = (2.0, 0.1, 256);
    let u0: Vec<f64> = (0..r)
        .map(|j| a * (2.0 * PI * j as f64 / r as f64).sin())
        .collect();
    let exact = cole_hopf(a, nu, 1.0, r);
    let mut s = BurgersSolver::new(r);
    let errs: Vec<f64> = [40usize, 80, 160]
        .iter()
        .map(|&n| max_abs_diff(&s.solve(&u0, nu, 1.0, n), &exact))
        .collect();
    for w in errs.windows(2) {
        let ratio = w[0] / w[1];
        assert!((11.2..=20.8).contains(&ratio), "errors {errs:?}");
    }
}

#[test]
fn generated_samples_are_converged_in_time() {
    // GRF samples at the paper settings (r = 1024 here): the time error, estimated by Richardson
    // from a run with twice the steps, is below the f32 unit roundoff 2^-24 of the stored field.
    // These rough initial data show order ~3 (initial transient), so the Richardson factor is
    // 1 / (1 - 2^-3) = 8/7.
    let p = BurgersParams {
        r: 1024,
        ..BurgersParams::default()
    };
    let mut g = BurgersGenerator::new(p.clone());
    for i in 0..3 {
        let s = g.sample(&mut sample_rng(5, i));
        let mut solver = BurgersSolver::new(p.r);
        let fine = solver.solve(&s.u0, p.viscosity, p.t_final, 2 * s.steps);
        let err = 8.0 / 7.0 * max_abs_diff(&s.u, &fine) / max_abs(&fine);
        assert!(err < 2f64.powi(-24), "sample {i}: {err:.3e}");
        assert!(s.u.iter().all(|x| x.is_finite()));
    }
}

/// A viscosity so large that h L overflows the contour formulas (1e300) damps every mode but
/// the mean within the first step: the solution is the initial mean, finite everywhere.
#[test]
fn huge_viscosity_leaves_the_mean() {
    let r = 256;
    let u0: Vec<f64> = (0..r)
        .map(|j| 0.3 + (2.0 * std::f64::consts::PI * j as f64 / r as f64).sin())
        .collect();
    let mut s = BurgersSolver::new(r);
    for nu in [1e60, 1e300] {
        let u = s.solve(&u0, nu, 1.0, 10);
        assert!(
            u.iter().all(|v| (v - 0.3).abs() < 1e-12),
            "nu = {nu}: {u:?}"
        );
    }
}
