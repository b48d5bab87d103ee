//! Heavy PDE checks at the paper's sizes (ignored by default; run with
//! `cargo test --release --test pde_heavy -- --ignored --nocapture`).

use mpno::pde::burgers::{BurgersParams, BurgersSolver, steps_for};
use mpno::pde::darcy::{DarcyGenerator, DarcyParams};
use mpno::pde::navier_stokes::{NsSolver, Scheme, Stepping};
use mpno::pde::sample_rng;
use std::f64::consts::PI;

#[test]
#[ignore = "5e5 time steps at 64 x 64 (about two minutes)"]
fn taylor_green_at_paper_settings() {
    // r = 64, nu = 1e-3, dt = 1e-4, T = 50 (5e5 steps), one |k| per run (modes with different
    // |k| would interact through u.grad w): k = 1 (decay e^-3.9) and k = 2 (e^-15.8). Error
    // model as in tests/pde_navier_stokes.rs: N z^3 / 12 from Crank-Nicolson (1.3e-9 for k = 2)
    // plus rounding.
    let (r, nu, t) = (64usize, 1e-3, 50.0);
    for k in [1.0f64, 2.0] {
        let w0: Vec<f64> = (0..r * r)
            .map(|p| {
                let (x, y) = ((p / r) as f64 / r as f64, (p % r) as f64 / r as f64);
                (2.0 * PI * k * x).sin() * (2.0 * PI * k * y).sin()
                    + 0.5 * (2.0 * PI * k * (x + y)).cos()
            })
            .collect();
        let st = Stepping {
            viscosity: nu,
            times: vec![t],
            dt_max: 1e-4,
            cfl: 0.25,
            scheme: Scheme::Euler,
        };
        let run = NsSolver::new(r).run(&w0, None, &st);
        let factor = (-2.0 * nu * (2.0 * PI * k).powi(2) * t).exp();
        let wmax = w0.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let err = run.snapshots[0]
            .iter()
            .zip(&w0)
            .map(|(a, b)| (a - b * factor).abs())
            .fold(0.0, f64::max)
            / (wmax * factor);
        println!("k {k}: {} steps, relative error {err:.3e}", run.steps);
        assert!(err < 1e-6, "k {k}: {err:.3e}");
    }
}

#[test]
#[ignore = "the FNO's 421 x 421 Darcy grid, 4 samples"]
fn darcy_at_421_solves_below_1e8() {
    let p = DarcyParams {
        r: 421,
        ..DarcyParams::default()
    };
    let mut g = DarcyGenerator::new(p.clone());
    for i in 0..4 {
        let t = std::time::Instant::now();
        let s = g.sample(&mut sample_rng(1, i));
        println!(
            "sample {i}: {} iterations, residual {:.3e}, {:.2} s",
            s.solution.iterations,
            s.solution.residual,
            t.elapsed().as_secs_f64()
        );
        assert!(s.solution.residual <= p.tol);
    }
}

#[test]
#[ignore = "r = 8192, the paper's Burgers grid"]
fn burgers_8192_matches_cole_hopf() {
    // Reference by Cole-Hopf with the Bessel series (see tests/pde_burgers.rs), at the paper's
    // nu = 0.1 and r = 8192.
    fn bessel_i(k: usize, b: f64) -> f64 {
        let h = b / 2.0;
        let mut term = (1..=k).fold(1.0, |t, j| t * h / j as f64);
        let (mut sum, mut m) = (0.0, 0);
        while term > 1e-18 * sum || m == 0 {
            sum += term;
            m += 1;
            term *= h * h / (m * (m + k)) as f64;
        }
        sum
    }
    let (a, nu, r) = (2.0, 0.1, 8192usize);
    let b = a / (4.0 * PI * nu);
    let ik: Vec<f64> = (0..120).map(|k| bessel_i(k, b)).collect();
    let exact: Vec<f64> = (0..r)
        .map(|j| {
            let x = j as f64 / r as f64;
            let (mut num, mut den) = (0.0, ik[0]);
            for (k, &i) in ik.iter().enumerate().skip(1) {
                let w = 2.0 * PI * k as f64;
                let e = i * (-nu * w * w).exp();
                den += 2.0 * e * (w * x).cos();
                num += 2.0 * e * w * (w * x).sin();
            }
            2.0 * nu * num / den
        })
        .collect();
    let u0: Vec<f64> = (0..r)
        .map(|j| a * (2.0 * PI * j as f64 / r as f64).sin())
        .collect();
    let p = BurgersParams::default();
    let steps = steps_for(a, nu, 1.0, p.dt_max, p.cfl);
    let u = BurgersSolver::new(r).solve(&u0, nu, 1.0, steps);
    let umax = exact.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let err = u
        .iter()
        .zip(&exact)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
        / umax;
    println!("r 8192: {steps} steps, relative max error {err:.3e}");
    assert!(err < 1e-6);
}
