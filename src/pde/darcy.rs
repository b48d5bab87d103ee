//! Darcy flow -div(a grad u) = f on the unit square, u = 0 on the boundary.
//!
//! Discretisation: vertex grid x_i = i h, h = 1/(r-1), unknowns at the (r-2)^2 interior nodes,
//! the 5-point finite-volume stencil
//!   (A u)_ij = [ a_{i+1/2,j} (u_ij - u_{i+1,j}) + a_{i-1/2,j} (u_ij - u_{i-1,j})
//!              + a_{i,j+1/2} (u_ij - u_{i,j+1}) + a_{i,j-1/2} (u_ij - u_{i,j-1}) ] / h^2 = f_ij,
//! second order for smooth a. The face values a_{i+1/2,j} average the two nodes: arithmetic
//! (a_ij + a_{i+1,j}) / 2 by default, as the FNO data's MATLAB solver `solve_gwf.m` does, or
//! harmonic 2 a_ij a_{i+1,j} / (a_ij + a_{i+1,j}) (the flux-continuous choice across jumps).
//! A is symmetric positive definite.
//!
//! Solver: preconditioned conjugate gradients with the modified incomplete Cholesky
//! factorisation MIC(0) (Gustafsson 1978) of the 5-point matrix, relaxation 0.995. With the FNO
//! coefficients (contrast 4) it needs about 58 iterations at r = 128 and 157 at r = 421 for a
//! relative residual of 1e-10 (relaxation 0.97: 73 and 234, the O(1/h) growth of IC(0); 1.0:
//! 72 and 146). The reported residual ||f - A u||_2 / ||f||_2 is recomputed from u at
//! the end, not taken from the CG recurrence.
//!
//! FNO data (Li et al. 2021, after Bhattacharya et al.): f = 1, a = 12 where g >= 0 and 3 where
//! g < 0, g ~ N(0, (-Delta + 9 I)^(-2)) with Neumann boundary conditions, mean mode removed.

use super::Rng;
use super::grf::{Boundary, Grf, GrfParams};

/// How the coefficient is averaged onto the faces between nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Averaging {
    Arithmetic,
    Harmonic,
}

impl Averaging {
    pub fn name(self) -> &'static str {
        match self {
            Averaging::Arithmetic => "arithmetic",
            Averaging::Harmonic => "harmonic",
        }
    }

    fn face(self, a: f64, b: f64) -> f64 {
        match self {
            Averaging::Arithmetic => 0.5 * (a + b),
            Averaging::Harmonic => 2.0 * a * b / (a + b),
        }
    }
}

impl std::str::FromStr for Averaging {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "arithmetic" => Ok(Averaging::Arithmetic),
            "harmonic" => Ok(Averaging::Harmonic),
            _ => Err(format!(
                "unknown averaging '{s}'; allowed: arithmetic, harmonic"
            )),
        }
    }
}

/// Result of one solve.
#[derive(Clone, Debug)]
pub struct DarcySolution {
    /// u on all r x r nodes (row-major, index i * r + j for x = i h, y = j h), 0 on the boundary.
    pub u: Vec<f64>,
    pub iterations: usize,
    /// ||f - A u||_2 / ||f||_2 over the interior nodes, recomputed from u.
    pub residual: f64,
}

/// The 5-point operator on the interior nodes: m = r - 2 unknowns per axis, interior index
/// p = (i - 1) m + (j - 1). All entries are scaled by h^2 (the system A h^2 u = f h^2).
struct Stencil {
    m: usize,
    diag: Vec<f64>, // (m*m) sum of the four face coefficients
    cx: Vec<f64>,   // (m*m) face coefficient to the +x interior neighbour p + m (0 at the edge)
    cy: Vec<f64>,   // (m*m) face coefficient to the +y interior neighbour p + 1 (0 at the edge)
}

impl Stencil {
    fn new(a: &[f64], r: usize, avg: Averaging) -> Self {
        let m = r - 2;
        let node = |i: usize, j: usize| a[i * r + j];
        let mut diag = vec![0.0; m * m];
        let mut cx = vec![0.0; m * m];
        let mut cy = vec![0.0; m * m];
        for i in 1..=m {
            for j in 1..=m {
                let p = (i - 1) * m + (j - 1);
                let c = node(i, j);
                let e = avg.face(c, node(i + 1, j));
                let w = avg.face(c, node(i - 1, j));
                let n = avg.face(c, node(i, j + 1));
                let s = avg.face(c, node(i, j - 1));
                diag[p] = e + w + n + s;
                if i < m {
                    cx[p] = e;
                }
                if j < m {
                    cy[p] = n;
                }
            }
        }
        Stencil { m, diag, cx, cy }
    }

    fn apply(&self, x: &[f64], y: &mut [f64]) {
        // Loops over (i, j) rather than p with p % m: an integer division per unknown costs
        // more than the stencil itself.
        let m = self.m;
        for i in 0..m {
            for j in 0..m {
                let p = i * m + j;
                let mut s = self.diag[p] * x[p] - self.cx[p] * x.get(p + m).copied().unwrap_or(0.0);
                if i > 0 {
                    s -= self.cx[p - m] * x[p - m];
                }
                if j > 0 {
                    s -= self.cy[p - 1] * x[p - 1];
                }
                if j + 1 < m {
                    s -= self.cy[p] * x[p + 1];
                }
                y[p] = s;
            }
        }
    }

    /// MIC(0) pivots d: A ~ (D + L) D^-1 (D + L)^T with L the strict lower part of A.
    /// d_p = a_pp - cw (cw + cw_y) / d_w - cs (cs + cs_x) / d_s, the fill-in terms cw cw_y / d_w
    /// (relaxed by 0.995) moved to the diagonal so that row sums are kept: this is what makes
    /// MIC need O(h^-1/2) iterations where IC(0) needs O(h^-1). A pivot that falls below 1/4 of
    /// the diagonal (possible on rough coefficients) falls back to the diagonal.
    fn mic0(&self) -> Vec<f64> {
        const OMEGA: f64 = 0.995;
        let m = self.m;
        let mut d = vec![0.0; m * m];
        for p in 0..m * m {
            let mut v = self.diag[p];
            if p >= m {
                let (cw, w) = (self.cx[p - m], p - m);
                v -= cw * (cw + OMEGA * self.cy[w]) / d[w];
            }
            if p % m != 0 {
                let (cs, s) = (self.cy[p - 1], p - 1);
                v -= cs * (cs + OMEGA * self.cx[s]) / d[s];
            }
            d[p] = if v < 0.25 * self.diag[p] {
                self.diag[p]
            } else {
                v
            };
        }
        d
    }

    /// z = M^-1 r for M = (D + L) D^-1 (D + L)^T, given `dinv` = 1/d (multiplications: the
    /// forward sweep is a dependency chain, and a division's latency would set its pace).
    fn precondition(&self, dinv: &[f64], r: &[f64], z: &mut [f64]) {
        let m = self.m;
        for i in 0..m {
            for j in 0..m {
                let p = i * m + j;
                let mut v = r[p];
                if i > 0 {
                    v += self.cx[p - m] * z[p - m];
                }
                if j > 0 {
                    v += self.cy[p - 1] * z[p - 1];
                }
                z[p] = v * dinv[p];
            }
        }
        for i in (0..m).rev() {
            for j in (0..m).rev() {
                let p = i * m + j;
                let mut v = 0.0;
                if i + 1 < m {
                    v += self.cx[p] * z[p + m];
                }
                if j + 1 < m {
                    v += self.cy[p] * z[p + 1];
                }
                z[p] += v * dinv[p];
            }
        }
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// A relative residual above which PCG has diverged (rounding, not slow convergence: a
/// working solve stays within a small factor of 1).
pub const DIVERGED: f64 = 1e6;

/// Solve -div(a grad u) = f with u = 0 on the boundary on the r x r vertex grid (r >= 3), by PCG
/// until the relative residual is below `tol` or `max_iter` iterations. `a` and `f` hold node
/// values (r x r, row-major); boundary values of f are not used.
pub fn solve(
    a: &[f64],
    f: &[f64],
    r: usize,
    avg: Averaging,
    tol: f64,
    max_iter: usize,
) -> DarcySolution {
    assert!(r >= 3, "Darcy: need r >= 3");
    assert_eq!(a.len(), r * r);
    assert_eq!(f.len(), r * r);
    let st = Stencil::new(a, r, avg);
    let m = st.m;
    let h2 = 1.0 / ((r - 1) * (r - 1)) as f64;
    let b: Vec<f64> = (0..m * m)
        .map(|p| h2 * f[(p / m + 1) * r + p % m + 1])
        .collect();
    let bnorm = dot(&b, &b).sqrt();
    let dinv: Vec<f64> = st.mic0().iter().map(|d| 1.0 / d).collect();
    let mut x = vec![0.0; m * m];
    let mut res = b.clone();
    let mut z = vec![0.0; m * m];
    let mut q = vec![0.0; m * m];
    let mut iterations = 0;
    let true_residual = |x: &[f64], q: &mut [f64]| {
        st.apply(x, q);
        let s: f64 = b.iter().zip(q.iter()).map(|(b, q)| (b - q).powi(2)).sum();
        if bnorm > 0.0 { s.sqrt() / bnorm } else { 0.0 }
    };
    if bnorm > 0.0 {
        // Restart from the true residual when the recurrence claims convergence but the
        // recomputed residual disagrees (rounding drift), at most a few times.
        'restarts: for _restart in 0..4 {
            st.apply(&x, &mut q);
            for p in 0..m * m {
                res[p] = b[p] - q[p];
            }
            st.precondition(&dinv, &res, &mut z);
            let mut dir = z.clone();
            let mut rz = dot(&res, &z);
            while iterations < max_iter {
                let rn = dot(&res, &res).sqrt();
                if rn <= tol * bnorm {
                    break;
                }
                // inf/NaN, or a residual a million times that of u = 0 (coefficients whose
                // contrast f64 cannot resolve), never recover: stop at once rather than run to
                // max_iter; the caller sees the residual.
                if !(rn.is_finite() && rz.is_finite()) || rn > DIVERGED * bnorm {
                    break 'restarts;
                }
                st.apply(&dir, &mut q);
                let alpha = rz / dot(&dir, &q);
                for p in 0..m * m {
                    x[p] += alpha * dir[p];
                    res[p] -= alpha * q[p];
                }
                st.precondition(&dinv, &res, &mut z);
                let rz_new = dot(&res, &z);
                let beta = rz_new / rz;
                rz = rz_new;
                for p in 0..m * m {
                    dir[p] = z[p] + beta * dir[p];
                }
                iterations += 1;
            }
            if true_residual(&x, &mut q) <= tol || iterations >= max_iter {
                break;
            }
        }
    }
    let residual = true_residual(&x, &mut q);
    let mut u = vec![0.0; r * r];
    for p in 0..m * m {
        u[(p / m + 1) * r + p % m + 1] = x[p];
    }
    DarcySolution {
        u,
        iterations,
        residual,
    }
}

/// Parameters of the Darcy data set.
#[derive(Clone, Debug, PartialEq)]
pub struct DarcyParams {
    /// Points per axis of the vertex grid, boundary included (h = 1/(r-1)).
    pub r: usize,
    /// Covariance of the GRF g whose sign sets the coefficient (Neumann, mean mode removed).
    pub grf: GrfParams,
    /// a where g >= 0.
    pub a_pos: f64,
    /// a where g < 0.
    pub a_neg: f64,
    /// Right-hand side f (constant).
    pub f: f64,
    pub averaging: Averaging,
    pub tol: f64,
    pub max_iter: usize,
}

impl Default for DarcyParams {
    /// The FNO settings: g ~ N(0, (-Delta + 9 I)^(-2)), a in {12, 3}, f = 1, r = 128.
    fn default() -> Self {
        DarcyParams {
            r: 128,
            grf: GrfParams {
                alpha: 2.0,
                tau: 3.0,
                sigma: 1.0,
                zero_mean: true,
            },
            a_pos: 12.0,
            a_neg: 3.0,
            f: 1.0,
            averaging: Averaging::Arithmetic,
            tol: 1e-10,
            max_iter: 100_000,
        }
    }
}

/// One data pair (a, u).
#[derive(Clone, Debug)]
pub struct DarcySample {
    pub a: Vec<f64>, // (r*r)
    pub solution: DarcySolution,
}

/// Sampler holding the GRF plan for one parameter set (clone it per thread).
#[derive(Clone)]
pub struct DarcyGenerator {
    pub params: DarcyParams,
    grf: Grf,
}

impl DarcyGenerator {
    pub fn new(params: DarcyParams) -> Self {
        let grf = Grf::new(params.grf, Boundary::Neumann, 2, params.r);
        DarcyGenerator { params, grf }
    }

    pub fn sample(&mut self, rng: &mut Rng) -> DarcySample {
        let p = &self.params;
        let a: Vec<f64> = self
            .grf
            .sample(rng)
            .into_iter()
            .map(|g| if g >= 0.0 { p.a_pos } else { p.a_neg })
            .collect();
        let f = vec![p.f; p.r * p.r];
        let solution = solve(&a, &f, p.r, p.averaging, p.tol, p.max_iter);
        DarcySample { a, solution }
    }
}
