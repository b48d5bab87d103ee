//! Darcy flow: second-order convergence on a manufactured solution, the PCG residual, and the
//! solver against a dense Cholesky solve of the same 5-point system.

use mpno::pde::darcy::{Averaging, DarcyGenerator, DarcyParams, solve};
use mpno::pde::sample_rng;
use std::f64::consts::PI;

/// u* = sin(pi x) sin(2 pi y) e^x (zero on the boundary), a = 2 + sin(2 pi x) cos(pi y) + x y,
/// f = -div(a grad u*) in closed form.
fn manufactured(x: f64, y: f64) -> (f64, f64, f64) {
    let (sx, cx) = (PI * x).sin_cos();
    let (s2y, c2y) = (2.0 * PI * y).sin_cos();
    let ex = x.exp();
    let u = sx * s2y * ex;
    let ux = (PI * cx + sx) * s2y * ex;
    let uxx = (2.0 * PI * cx + sx - PI * PI * sx) * s2y * ex;
    let uy = 2.0 * PI * sx * c2y * ex;
    let uyy = -4.0 * PI * PI * u;
    let a = 2.0 + (2.0 * PI * x).sin() * (PI * y).cos() + x * y;
    let ax = 2.0 * PI * (2.0 * PI * x).cos() * (PI * y).cos() + y;
    let ay = -PI * (2.0 * PI * x).sin() * (PI * y).sin() + x;
    let f = -(ax * ux + a * uxx + ay * uy + a * uyy);
    (u, a, f)
}

fn grid_error(r: usize, avg: Averaging) -> (f64, f64) {
    let h = 1.0 / (r - 1) as f64;
    let (mut a, mut f, mut exact) = (vec![0.0; r * r], vec![0.0; r * r], vec![0.0; r * r]);
    for i in 0..r {
        for j in 0..r {
            let (u, aa, ff) = manufactured(i as f64 * h, j as f64 * h);
            a[i * r + j] = aa;
            f[i * r + j] = ff;
            exact[i * r + j] = u;
        }
    }
    let sol = solve(&a, &f, r, avg, 1e-13, 100_000);
    let err = sol
        .u
        .iter()
        .zip(&exact)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    (err, sol.residual)
}

#[test]
fn manufactured_solution_converges_at_order_two() {
    // Max-norm errors on r = 17, 33, 65, 129 (h halving). The 5-point scheme with either face
    // average has truncation error C h^2 for smooth a and u, so the least-squares slope of
    // log(error) against log(h) must be 2 +- 0.1. The algebraic error (residual 1e-13 times the
    // condition number ~ h^-2 ~ 1.6e4) is below 1e-8, under 1% of the smallest error (~5e-5).
    for avg in [Averaging::Arithmetic, Averaging::Harmonic] {
        let rs = [17usize, 33, 65, 129];
        let pts: Vec<(f64, f64)> = rs
            .iter()
            .map(|&r| {
                let (e, res) = grid_error(r, avg);
                assert!(res < 1e-12, "residual {res}");
                ((1.0 / (r - 1) as f64).ln(), e.ln())
            })
            .collect();
        let n = pts.len() as f64;
        let (mx, my) = pts
            .iter()
            .fold((0.0, 0.0), |(a, b), p| (a + p.0 / n, b + p.1 / n));
        let slope = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f64>()
            / pts.iter().map(|p| (p.0 - mx).powi(2)).sum::<f64>();
        let errs: Vec<String> = pts.iter().map(|p| format!("{:.3e}", p.1.exp())).collect();
        println!("{avg:?}: errors {errs:?}, slope {slope:.4}");
        assert!((slope - 2.0).abs() < 0.1, "{avg:?}: slope {slope}");
    }
}

#[test]
fn fno_coefficients_solve_below_1e8_relative_residual() {
    // Ten FNO-parameter samples at the default 128 x 128: the residual recomputed from u is
    // below the requested 1e-10 (and so far below the required 1e-8).
    let p = DarcyParams::default();
    let mut g = DarcyGenerator::new(p.clone());
    for i in 0..10 {
        let s = g.sample(&mut sample_rng(21, i));
        println!(
            "sample {i}: {} iterations, residual {:.3e}",
            s.solution.iterations, s.solution.residual
        );
        assert!(s.solution.residual <= p.tol, "{}", s.solution.residual);
        assert!(s.a.iter().all(|&a| a == 12.0 || a == 3.0));
        let n12 = s.a.iter().filter(|&&a| a == 12.0).count();
        // both phases present (a sign field of a zero-mean GRF)
        assert!(n12 > 0 && n12 < s.a.len());
        // u > 0 inside (maximum principle for f = 1 > 0), 0 on the boundary
        let r = p.r;
        for q in 0..r * r {
            let (x, y) = (q / r, q % r);
            if x == 0 || y == 0 || x == r - 1 || y == r - 1 {
                assert_eq!(s.solution.u[q], 0.0);
            } else {
                assert!(s.solution.u[q] > 0.0);
            }
        }
    }
}

/// Dense Cholesky solve of the same 5-point system, assembled independently from the stencil
/// formula (the oracle for the PCG solver).
fn dense_solution(a: &[f64], f: &[f64], r: usize, avg: Averaging) -> Vec<f64> {
    let m = r - 2;
    let n = m * m;
    let h2 = 1.0 / ((r - 1) * (r - 1)) as f64;
    let face = |p: f64, q: f64| match avg {
        Averaging::Arithmetic => 0.5 * (p + q),
        Averaging::Harmonic => 2.0 * p * q / (p + q),
    };
    let mut mat = vec![0.0; n * n];
    let mut b = vec![0.0; n];
    for i in 1..=m {
        for j in 1..=m {
            let p = (i - 1) * m + (j - 1);
            b[p] = h2 * f[i * r + j];
            for (di, dj) in [(1i64, 0i64), (-1, 0), (0, 1), (0, -1)] {
                let (ni, nj) = ((i as i64 + di) as usize, (j as i64 + dj) as usize);
                let c = face(a[i * r + j], a[ni * r + nj]);
                mat[p * n + p] += c;
                if (1..=m).contains(&ni) && (1..=m).contains(&nj) {
                    mat[p * n + (ni - 1) * m + (nj - 1)] -= c;
                }
            }
        }
    }
    // Cholesky in place (lower triangle)
    for k in 0..n {
        let d = (mat[k * n + k] - (0..k).map(|j| mat[k * n + j].powi(2)).sum::<f64>()).sqrt();
        mat[k * n + k] = d;
        for i in k + 1..n {
            let s = (0..k).map(|j| mat[i * n + j] * mat[k * n + j]).sum::<f64>();
            mat[i * n + k] = (mat[i * n + k] - s) / d;
        }
    }
    let mut y = b;
    for i in 0..n {
        let s = (0..i).map(|j| mat[i * n + j] * y[j]).sum::<f64>();
        y[i] = (y[i] - s) / mat[i * n + i];
    }
    for i in (0..n).rev() {
        let s = (i + 1..n).map(|j| mat[j * n + i] * y[j]).sum::<f64>();
        y[i] = (y[i] - s) / mat[i * n + i];
    }
    let mut u = vec![0.0; r * r];
    for p in 0..n {
        u[(p / m + 1) * r + p % m + 1] = y[p];
    }
    u
}

#[test]
fn pcg_matches_dense_cholesky() {
    // Random piecewise-constant coefficients (contrast 4) and a smooth f on r = 14, both face
    // averages. Error model: |u - u_dense| <= kappa(A) * tol * |u| with kappa ~ 4 (contrast) *
    // (r-1)^2 * 4 / pi^2 (5-point Laplacian) ~ 300; allowed 10 kappa tol |u|_max plus the dense
    // solve's own rounding n eps kappa |u|_max.
    let r = 14;
    let p = DarcyParams {
        r,
        ..DarcyParams::default()
    };
    let mut g = DarcyGenerator::new(p);
    for (seed, avg) in [(1, Averaging::Arithmetic), (2, Averaging::Harmonic)] {
        let a = g.sample(&mut sample_rng(seed, 0)).a;
        let f: Vec<f64> = (0..r * r)
            .map(|q| 1.0 + ((q % r) as f64 * 0.3).sin())
            .collect();
        let tol = 1e-12;
        let sol = solve(&a, &f, r, avg, tol, 10_000);
        let dense = dense_solution(&a, &f, r, avg);
        let umax = dense.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let kappa = 4.0 * ((r - 1) * (r - 1)) as f64 * 4.0 / (PI * PI);
        let bound = (10.0 * kappa * tol + (r * r) as f64 * f64::EPSILON * kappa) * umax;
        let err = sol
            .u
            .iter()
            .zip(&dense)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max);
        assert!(err < bound, "{avg:?}: {err:.3e} vs {bound:.3e}");
    }
}
