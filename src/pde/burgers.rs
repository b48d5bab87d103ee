//! 1-D viscous Burgers u_t + (u^2 / 2)_x = nu u_xx on the periodic [0,1) (grid x_j = j/r),
//! pseudo-spectral with ETDRK4 (Cox-Matthews 2002) and the coefficients of Kassam and Trefethen
//! (2005) computed by contour integrals, which stay accurate where the stiff linear part
//! L_k = -nu (2 pi k)^2 makes the closed forms cancel.
//!
//! In Fourier coefficients v_k = r^-1 DFT(u)_k: v' = L v + N(v),
//! N(v)_k = -(1/2) (2 pi i k) [u^2]_k, with [u^2] cut to |k| <= (2/3)(r/2) (2/3 rule) and i k = 0
//! at the Nyquist mode. One ETDRK4 step of size h (E = e^{hL}, E2 = e^{hL/2}):
//!   a = E2 v + Q N(v),  b = E2 v + Q N(a),  c = E2 a + Q (2 N(b) - N(v)),
//!   v+ = E v + f1 N(v) + 2 f2 (N(a) + N(b)) + f3 N(c),
//! with the coefficients written as contour means over M = 64 points z = hL + e^{i theta}:
//!   Q = h mean((e^{z/2} - 1)/z),  f1 = h mean((-4 - z + e^z (4 - 3z + z^2))/z^3),
//!   f2 = h mean((2 + z + e^z (z - 2))/z^3),  f3 = h mean((-4 - 3z - z^2 + e^z (4 - z))/z^3).
//!
//! Time step: fixed, h = T / ceil(T / h0), h0 = min(dt_max, cfl nu / max|u0|^2). The viscous
//! Burgers maximum principle (max |u(t)| <= max |u0|) makes the bound hold for the whole run.
//! Stability is not what limits h: modes with nu k^2 h >> 1 are damped by E inside a step, and
//! runs with h U^2 / nu = 18 stay stable. Accuracy is: for smooth data the error falls as h^4
//! (1e-6 relative at h U^2 / nu = 0.5), but the FNO initial conditions have spectra decaying only
//! like k^-2, whose fast initial transient costs order (about h^3) and gives ~1e-6 relative at
//! h = 1e-2. The default dt_max = 1e-3 brings the time error of those samples to ~5e-9 relative
//! (measured against 6400 steps at r = 1024 and 8192), below the f32 rounding of the stored
//! fields (6e-8).
//!
//! Exact solution used in the tests (Cole-Hopf): u = -2 nu phi_x / phi with phi_t = nu phi_xx,
//! phi(x, 0) = exp(-(2 nu)^-1 int_0^x u0).

use super::Rng;
use super::grf::{Boundary, Grf, GrfParams};
use super::spectral::{deriv_freq, freq};
use num_complex::Complex64;
use rustfft::{Fft, FftPlanner};
use std::f64::consts::PI;
use std::sync::Arc;

/// Contour points for the ETDRK4 coefficients; 64 points on a circle of radius 1 give the
/// phi-functions to about 1e-15 for every z (Kassam-Trefethen use 32 on a half circle).
const CONTOUR_POINTS: usize = 64;

/// |h L| beyond which a mode's ETDRK4 coefficients take their e^z = 0 forms: the contour
/// formulas divide by z^3, which overflows near |z| = 1e102 (a viscosity of 1e300 gave NaN).
const HUGE_DECAY: f64 = 1e60;

/// ETDRK4 coefficients of one step size for every mode.
#[derive(Clone)]
struct Etdrk4 {
    e: Vec<f64>,
    e2: Vec<f64>,
    q: Vec<f64>,
    f1: Vec<f64>,
    f2: Vec<f64>,
    f3: Vec<f64>,
}

impl Etdrk4 {
    fn new(lin: &[f64], h: f64) -> Self {
        let m = CONTOUR_POINTS;
        let roots: Vec<Complex64> = (0..m)
            .map(|j| Complex64::from_polar(1.0, PI * (2.0 * j as f64 + 1.0) / m as f64))
            .collect();
        let n = lin.len();
        let (mut q, mut f1, mut f2, mut f3) =
            (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        for k in 0..n {
            let hl = h * lin[k];
            if hl < -HUGE_DECAY {
                // z^3 overflows (or hl is -inf); e^z is 0, and by the mean value property the
                // contour means are the functions at z = hL: Q = -h/z, f1 = h(-1/z^2 - 4/z^3),
                // f2 = h(1/z^2 + 2/z^3), f3 = h(-1/z - 3/z^2 - 4/z^3), formed from 1/z.
                let r = 1.0 / hl;
                q[k] = -h * r;
                f1[k] = h * (-r * r - 4.0 * r * r * r);
                f2[k] = h * (r * r + 2.0 * r * r * r);
                f3[k] = h * (-r - 3.0 * r * r - 4.0 * r * r * r);
                continue;
            }
            let (mut sq, mut s1, mut s2, mut s3) = (
                Complex64::default(),
                Complex64::default(),
                Complex64::default(),
                Complex64::default(),
            );
            for &rt in &roots {
                let z = hl + rt;
                let ez = z.exp();
                let z3 = z * z * z;
                sq += ((z / 2.0).exp() - 1.0) / z;
                s1 += (-4.0 - z + ez * (4.0 - 3.0 * z + z * z)) / z3;
                s2 += (2.0 + z + ez * (z - 2.0)) / z3;
                s3 += (-4.0 - 3.0 * z - z * z + ez * (4.0 - z)) / z3;
            }
            let mf = m as f64;
            q[k] = h * sq.re / mf;
            f1[k] = h * s1.re / mf;
            f2[k] = h * s2.re / mf;
            f3[k] = h * s3.re / mf;
        }
        Etdrk4 {
            e: lin.iter().map(|l| (h * l).exp()).collect(),
            e2: lin.iter().map(|l| (0.5 * h * l).exp()).collect(),
            q,
            f1,
            f2,
            f3,
        }
    }
}

/// Spectral Burgers solver on r points (r >= 4); clone per thread (plans are shared).
#[derive(Clone)]
pub struct BurgersSolver {
    r: usize,
    fwd: Arc<dyn Fft<f64>>,
    inv: Arc<dyn Fft<f64>>,
    scratch: Vec<Complex64>,
    g: Vec<Complex64>, // (r) -(1/2) 2 pi i k inside the 2/3 band, 0 outside
    k2: Vec<f64>,      // (r) (2 pi k)^2
    buf: Vec<Complex64>,
    cache: Option<(f64, f64, Etdrk4)>, // (nu, h, coefficients)
}

impl BurgersSolver {
    pub fn new(r: usize) -> Self {
        assert!(r >= 4, "Burgers: need r >= 4");
        let mut planner = FftPlanner::new();
        let fwd = planner.plan_fft_forward(r);
        let inv = planner.plan_fft_inverse(r);
        let s = fwd
            .get_inplace_scratch_len()
            .max(inv.get_inplace_scratch_len());
        let kmax = (r / 2) as f64;
        let g = (0..r)
            .map(|i| {
                let k = deriv_freq(i, r) as f64;
                if k.abs() <= 2.0 / 3.0 * kmax {
                    Complex64::new(0.0, -PI * k)
                } else {
                    Complex64::default()
                }
            })
            .collect();
        let k2 = (0..r)
            .map(|i| (2.0 * PI * freq(i, r) as f64).powi(2))
            .collect();
        BurgersSolver {
            r,
            fwd,
            inv,
            scratch: vec![Complex64::default(); s],
            g,
            k2,
            buf: vec![Complex64::default(); r],
            cache: None,
        }
    }

    fn nonlinear(&mut self, v: &[Complex64], out: &mut [Complex64]) {
        self.buf.copy_from_slice(v);
        self.inv
            .process_with_scratch(&mut self.buf, &mut self.scratch);
        for (o, z) in out.iter_mut().zip(&self.buf) {
            *o = Complex64::new(z.re * z.re, 0.0);
        }
        self.fwd.process_with_scratch(out, &mut self.scratch);
        let scale = 1.0 / self.r as f64;
        for (o, g) in out.iter_mut().zip(&self.g) {
            *o *= g * scale;
        }
    }

    /// u(T) from u0 (grid values) with `steps` ETDRK4 steps of size T / steps.
    pub fn solve(&mut self, u0: &[f64], nu: f64, t_final: f64, steps: usize) -> Vec<f64> {
        let r = self.r;
        assert_eq!(u0.len(), r);
        assert!(steps >= 1);
        let h = t_final / steps as f64;
        let c = match self.cache.take() {
            Some((cn, ch, c)) if cn == nu && ch == h => c,
            _ => {
                let lin: Vec<f64> = self.k2.iter().map(|k2| -nu * k2).collect();
                Etdrk4::new(&lin, h)
            }
        };
        let scale = 1.0 / r as f64;
        let mut v: Vec<Complex64> = u0.iter().map(|&x| Complex64::new(x, 0.0)).collect();
        self.fwd.process_with_scratch(&mut v, &mut self.scratch);
        v.iter_mut().for_each(|z| *z *= scale);
        let z = Complex64::default();
        let (mut nv, mut na, mut nb, mut nc) = (vec![z; r], vec![z; r], vec![z; r], vec![z; r]);
        let (mut a, mut b, mut cc) = (vec![z; r], vec![z; r], vec![z; r]);
        for _ in 0..steps {
            self.nonlinear(&v, &mut nv);
            for k in 0..r {
                a[k] = c.e2[k] * v[k] + c.q[k] * nv[k];
            }
            self.nonlinear(&a, &mut na);
            for k in 0..r {
                b[k] = c.e2[k] * v[k] + c.q[k] * na[k];
            }
            self.nonlinear(&b, &mut nb);
            for k in 0..r {
                cc[k] = c.e2[k] * a[k] + c.q[k] * (2.0 * nb[k] - nv[k]);
            }
            self.nonlinear(&cc, &mut nc);
            for k in 0..r {
                v[k] = c.e[k] * v[k]
                    + c.f1[k] * nv[k]
                    + 2.0 * c.f2[k] * (na[k] + nb[k])
                    + c.f3[k] * nc[k];
            }
        }
        self.cache = Some((nu, h, c));
        self.inv.process_with_scratch(&mut v, &mut self.scratch);
        v.iter().map(|z| z.re).collect()
    }
}

/// Number of ETDRK4 steps for a run: ceil(T / h0), h0 = min(dt_max, cfl nu / max|u0|^2).
pub fn steps_for(u0_max: f64, nu: f64, t_final: f64, dt_max: f64, cfl: f64) -> usize {
    steps_needed(u0_max, nu, t_final, dt_max, cfl) as usize
}

/// [`steps_for`] as an f64, which does not saturate (the step count of absurd parameters is
/// astronomically large; infinite when max|u0| is).
pub fn steps_needed(u0_max: f64, nu: f64, t_final: f64, dt_max: f64, cfl: f64) -> f64 {
    let mut h0 = dt_max;
    if u0_max > 0.0 && nu > 0.0 {
        h0 = h0.min(cfl * nu / (u0_max * u0_max));
    }
    if u0_max.is_nan() {
        return f64::INFINITY;
    }
    (t_final / h0).ceil().max(1.0)
}

/// Parameters of the Burgers data set.
#[derive(Clone, Debug, PartialEq)]
pub struct BurgersParams {
    pub r: usize,
    pub viscosity: f64,
    pub t_final: f64,
    pub dt_max: f64,
    pub cfl: f64,
    /// Initial condition distribution (periodic).
    pub grf: GrfParams,
}

impl Default for BurgersParams {
    /// The FNO paper's settings: u0 ~ N(0, 625 (-Delta + 25 I)^(-2)), nu = 0.1, T = 1, r = 8192.
    fn default() -> Self {
        BurgersParams {
            r: 8192,
            viscosity: 0.1,
            t_final: 1.0,
            dt_max: 1e-3,
            cfl: 0.5,
            grf: GrfParams {
                alpha: 2.0,
                tau: 5.0,
                sigma: 25.0,
                zero_mean: true,
            },
        }
    }
}

/// One pair (u0, u(T)).
#[derive(Clone, Debug)]
pub struct BurgersSample {
    pub u0: Vec<f64>,
    pub u: Vec<f64>,
    pub steps: usize,
}

/// Sampler for one parameter set; clone per thread.
#[derive(Clone)]
pub struct BurgersGenerator {
    pub params: BurgersParams,
    grf: Grf,
    solver: BurgersSolver,
}

impl BurgersGenerator {
    pub fn new(params: BurgersParams) -> Self {
        BurgersGenerator {
            grf: Grf::new(params.grf, Boundary::Periodic, 1, params.r),
            solver: BurgersSolver::new(params.r),
            params,
        }
    }

    pub fn sample(&mut self, rng: &mut Rng) -> BurgersSample {
        self.sample_guarded(rng, f64::INFINITY)
            .expect("an unguarded sample always finishes")
    }

    /// [`sample`](Self::sample), refused before any step when it needs more than `limit` steps
    /// (returned as Err(steps); the count is known from u0 before stepping).
    pub fn sample_guarded(&mut self, rng: &mut Rng, limit: f64) -> Result<BurgersSample, f64> {
        let p = &self.params;
        let u0 = self.grf.sample(rng);
        let umax = u0.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let steps = steps_needed(umax, p.viscosity, p.t_final, p.dt_max, p.cfl);
        if steps > limit {
            return Err(steps);
        }
        let steps = steps as usize;
        let u = self.solver.solve(&u0, p.viscosity, p.t_final, steps);
        Ok(BurgersSample { u0, u, steps })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coefficients_of_huge_decay_are_finite_and_continuous() {
        // Both sides of HUGE_DECAY give the same coefficients (relative 1e-12), and modes far
        // beyond it (nu = 1e300, or h L = -inf) get finite ones.
        let h = 1e-3;
        let lin = [
            0.0,
            -1.0,
            -0.999 * HUGE_DECAY / h,
            -1.001 * HUGE_DECAY / h,
            -1e300 * 4e4,
            f64::NEG_INFINITY,
        ];
        let c = Etdrk4::new(&lin, h);
        for v in [&c.e, &c.e2, &c.q, &c.f1, &c.f2, &c.f3] {
            assert!(v.iter().all(|x| x.is_finite()), "{v:?}");
            let (a, b) = (v[2], v[3] * 1.001 / 0.999);
            // Q and f3 fall like 1/z, f1 and f2 like 1/z^2: compare after undoing the ratio.
            let rel = |x: f64, y: f64| (x - y).abs() <= 1e-12 * x.abs().max(y.abs());
            assert!(
                rel(a, b) || rel(a, v[3] * (1.001f64 / 0.999).powi(2)) || a == 0.0,
                "{a} vs {}",
                v[3]
            );
        }
        // The slow modes are the usual ones: Q = (e^{hL/2} - 1)/L, h/2 at L = 0.
        assert!((c.q[0] - h / 2.0).abs() < 1e-15);
        assert!((c.q[1] - (((-h / 2.0).exp() - 1.0) / -1.0)).abs() < 1e-15);
    }
}
