//! 2-D incompressible Navier-Stokes in vorticity form on the torus [0,1)^2:
//!   w_t + u . grad w = nu Delta w + f,   u = (psi_y, -psi_x),   -Delta psi = w,
//! pseudo-spectral on the r x r grid x_i = i/r (row-major w[i r + j] = w(x_i, y_j)), following
//! the FNO generator `ns_2d.py` (Li et al. 2021):
//! - Fourier coefficients w_hat_k = r^-2 DFT(w)_k, Laplacian eigenvalue lambda_k = 4 pi^2 |k|^2;
//! - u . grad w evaluated on the grid, transformed back and cut to |k_x|, |k_y| <= (2/3)(r/2)
//!   (the 2/3 rule, so the quadratic product does not alias into the kept modes);
//! - Crank-Nicolson for nu Delta w, explicit for u . grad w and f:
//!   Euler (as `ns_2d.py`): w+ = [(1 - z/2) w + dt (f - N(w))] / (1 + z/2), z = dt nu lambda_k;
//!   Heun: the same predictor, then N replaced by (N(w) + N(w+pred)) / 2 (second order in dt);
//! - time step dt = min(dt_max, cfl h / max(|u| + |v|)), h = 1/r, shortened to land on each
//!   snapshot time. At the paper's settings (r = 64, max |u| ~ 1) the cap dt_max = 1e-4 of
//!   `ns_2d.py` is the binding one. The largest advective eigenvalue of the dealiased operator
//!   is about theta = dt max|u| 2 pi (r/3) = (2 pi / 3) C for the CFL number C; explicit Euler
//!   amplifies it by sqrt(1 + theta^2) per step and Heun by (1 + theta^4/4)^(1/2), so both rely
//!   on the Crank-Nicolson damping of the high modes (factor ~ 1 - dt nu lambda) when the CFL
//!   limit is active; the default C = 0.25 keeps theta ~ 0.5. At the paper settings theta is
//!   about 0.013 per step and the viscous damping of the top modes is larger than the growth.
//!
//! The mean vorticity is conserved exactly by the equations (the k = 0 mode of u . grad w =
//! div(u w) vanishes and f has mean zero), and the scheme keeps it to round-off.
//!
//! Exact solution used in the tests (Taylor-Green): with f = 0, w0 = sin(2 pi k x) sin(2 pi k y)
//! has psi = w / (8 pi^2 k^2), so u . grad w = 0, and w(t) = w0 exp(-2 nu (2 pi k)^2 t).

use super::Rng;
use super::grf::{Boundary, Grf, GrfParams};
use super::spectral::{Fft2, deriv_freq, freq};
use num_complex::Complex64;
use std::f64::consts::PI;

/// Explicit part of the time stepping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Euler,
    Heun,
}

impl Scheme {
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Euler => "euler",
            Scheme::Heun => "heun",
        }
    }
}

impl std::str::FromStr for Scheme {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "euler" => Ok(Scheme::Euler),
            "heun" => Ok(Scheme::Heun),
            _ => Err(format!("unknown scheme '{s}'; allowed: euler, heun")),
        }
    }
}

/// Time-stepping settings of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Stepping {
    pub viscosity: f64,
    /// Snapshot times, increasing, > 0; the run ends at the last one.
    pub times: Vec<f64>,
    pub dt_max: f64,
    pub cfl: f64,
    pub scheme: Scheme,
}

/// Vorticity snapshots of one run and what the stepping did.
#[derive(Clone, Debug)]
pub struct NsRun {
    pub snapshots: Vec<Vec<f64>>, // (times.len(), r*r)
    pub steps: usize,
    pub dt_min: f64,
}

/// Why a guarded run ([`NsSolver::run_guarded`]) stopped.
#[derive(Clone, Debug, PartialEq)]
pub enum NsStop {
    /// The run would take `projected` steps, more than the limit: at time `t` the step size
    /// was `dt`.
    TooManySteps { projected: f64, t: f64, dt: f64 },
    /// The vorticity became inf/NaN by time `t`, after `steps` steps.
    NonFinite { t: f64, steps: usize },
}

/// Pseudo-spectral solver on one r x r grid (r >= 4); clone per thread.
#[derive(Clone)]
pub struct NsSolver {
    r: usize,
    fft: Fft2,
    lap: Vec<f64>,       // (r*r) 4 pi^2 |k|^2
    inv_lap: Vec<f64>,   // (r*r) 1 / lap, 0 for k = 0 (psi has mean zero)
    cn: Vec<(f64, f64)>, // (r*r) Crank-Nicolson factors ((1 - z/2)/(1 + z/2), dt/(1 + z/2))
    cn_key: (f64, f64),  // (dt, nu) the factors were made for
    kx: Vec<f64>,        // (r*r) 2 pi k_x for d/dx, 0 at Nyquist
    ky: Vec<f64>,        // (r*r) 2 pi k_y for d/dy, 0 at Nyquist
    keep: Vec<f64>,      // (r*r) 1 inside the 2/3 box, 0 outside
    b1: Vec<Complex64>,
    b2: Vec<Complex64>,
}

impl NsSolver {
    pub fn new(r: usize) -> Self {
        assert!(r >= 4, "Navier-Stokes: need r >= 4");
        let kmax = (r / 2) as f64;
        let mut lap = vec![0.0; r * r];
        let mut kx = vec![0.0; r * r];
        let mut ky = vec![0.0; r * r];
        let mut keep = vec![0.0; r * r];
        for a in 0..r {
            for b in 0..r {
                let p = a * r + b;
                let (fa, fb) = (freq(a, r) as f64, freq(b, r) as f64);
                lap[p] = 4.0 * PI * PI * (fa * fa + fb * fb);
                kx[p] = 2.0 * PI * deriv_freq(a, r) as f64;
                ky[p] = 2.0 * PI * deriv_freq(b, r) as f64;
                // ns_2d.py: |k| <= (2/3) k_max on both axes
                if fa.abs() <= 2.0 / 3.0 * kmax && fb.abs() <= 2.0 / 3.0 * kmax {
                    keep[p] = 1.0;
                }
            }
        }
        NsSolver {
            r,
            fft: Fft2::new(r),
            inv_lap: lap
                .iter()
                .map(|&l| if l > 0.0 { 1.0 / l } else { 0.0 })
                .collect(),
            cn: vec![(0.0, 0.0); r * r],
            cn_key: (f64::NAN, f64::NAN),
            lap,
            kx,
            ky,
            keep,
            b1: vec![Complex64::default(); r * r],
            b2: vec![Complex64::default(); r * r],
        }
    }

    pub fn r(&self) -> usize {
        self.r
    }

    /// Fourier coefficients r^-2 DFT(v) of a real grid field.
    pub fn to_spectral(&mut self, v: &[f64]) -> Vec<Complex64> {
        let scale = 1.0 / (self.r * self.r) as f64;
        let mut c: Vec<Complex64> = v.iter().map(|&x| Complex64::new(x, 0.0)).collect();
        self.fft.forward(&mut c);
        c.iter_mut().for_each(|z| *z *= scale);
        c
    }

    /// The real grid field with Fourier coefficients `c`.
    pub fn to_grid(&mut self, c: &[Complex64]) -> Vec<f64> {
        self.b1.copy_from_slice(c);
        self.fft.inverse(&mut self.b1);
        self.b1.iter().map(|z| z.re).collect()
    }

    /// out = dealiased Fourier coefficients of u . grad w; returns max(|u| + |v|) on the grid.
    #[allow(clippy::needless_range_loop)] // one index p runs over six arrays
    fn nonlinear(&mut self, w: &[Complex64], out: &mut [Complex64]) -> f64 {
        let n = self.r * self.r;
        for p in 0..n {
            let psi = w[p] * self.inv_lap[p];
            // Two real fields per complex transform (their spectra are Hermitian):
            // b1 = u_hat + i v_hat with u_hat = i ky psi, v_hat = -i kx psi;
            // b2 = wx_hat + i wy_hat with wx_hat = i kx w, wy_hat = i ky w.
            self.b1[p] = psi * Complex64::new(self.kx[p], self.ky[p]);
            self.b2[p] = w[p] * Complex64::new(-self.ky[p], self.kx[p]);
        }
        self.fft.inverse(&mut self.b1);
        self.fft.inverse(&mut self.b2);
        let mut speed: f64 = 0.0;
        for ((o, uv), wxy) in out.iter_mut().zip(&self.b1).zip(&self.b2) {
            speed = speed.max(uv.re.abs() + uv.im.abs());
            *o = Complex64::new(uv.re * wxy.re + uv.im * wxy.im, 0.0);
        }
        self.fft.forward(out);
        let scale = 1.0 / n as f64;
        for (o, k) in out.iter_mut().zip(&self.keep) {
            *o *= scale * k;
        }
        speed
    }

    /// Integrate from w0 (grid values) with forcing `f` (grid values; None = 0), recording the
    /// vorticity at `st.times`.
    pub fn run(&mut self, w0: &[f64], f: Option<&[f64]>, st: &Stepping) -> NsRun {
        self.run_guarded(w0, f, st, None)
            .expect("an unguarded run always finishes")
    }

    /// [`run`](Self::run), stopped early (`Some(limit)`) when the vorticity becomes inf/NaN, or
    /// when the steps taken plus those the current step size needs to reach the final time
    /// exceed `limit`: a CFL-limited step that has shrunk (large amplitudes) is seen at once, not
    /// after hours.
    pub fn run_guarded(
        &mut self,
        w0: &[f64],
        f: Option<&[f64]>,
        st: &Stepping,
        limit: Option<f64>,
    ) -> Result<NsRun, NsStop> {
        let n = self.r * self.r;
        assert_eq!(w0.len(), n);
        let f_hat = match f {
            Some(f) => self.to_spectral(f),
            None => vec![Complex64::default(); n],
        };
        let mut w = self.to_spectral(w0);
        let mut n1 = vec![Complex64::default(); n];
        let mut n2 = vec![Complex64::default(); n];
        let mut pred = vec![Complex64::default(); n];
        let h = 1.0 / self.r as f64;
        let nu = st.viscosity;
        let mut t = 0.0;
        let mut snapshots = Vec::with_capacity(st.times.len());
        let mut steps = 0;
        let mut dt_min = f64::INFINITY;
        let t_end = st.times.last().copied().unwrap_or(0.0);
        let finite = |w: &[Complex64]| w.iter().all(|z| z.re.is_finite() && z.im.is_finite());
        for &target in &st.times {
            while t < target {
                let speed = self.nonlinear(&w, &mut n1);
                let mut dt = st.dt_max;
                if speed > 0.0 {
                    dt = dt.min(st.cfl * h / speed);
                }
                if let Some(limit) = limit {
                    // inf/NaN stay once they appear: a check every 64 steps finds them.
                    if !speed.is_finite() || (steps % 64 == 0 && !finite(&w)) {
                        return Err(NsStop::NonFinite { t, steps });
                    }
                    let projected = steps as f64 + (t_end - t) / dt;
                    if projected > limit {
                        return Err(NsStop::TooManySteps { projected, t, dt });
                    }
                }
                // Within 1e-6 dt of the snapshot: stretch this step onto it rather than take a
                // round-off-sized extra step.
                let hit = target - t <= dt * (1.0 + 1e-6);
                if hit {
                    dt = target - t;
                }
                // The factors change only when dt does (CFL-limited steps, the last step before
                // a snapshot); at the cap they are reused.
                if self.cn_key != (dt, nu) {
                    for (c, &l) in self.cn.iter_mut().zip(&self.lap) {
                        let hz = 0.5 * dt * nu * l;
                        *c = ((1.0 - hz) / (1.0 + hz), dt / (1.0 + hz));
                    }
                    self.cn_key = (dt, nu);
                }
                let cn = |fac: &[(f64, f64)],
                          w: &[Complex64],
                          nl: &[Complex64],
                          out: &mut [Complex64]| {
                    for p in 0..n {
                        let (a, b) = fac[p];
                        out[p] = a * w[p] + b * (f_hat[p] - nl[p]);
                    }
                };
                match st.scheme {
                    Scheme::Euler => {
                        cn(&self.cn, &w, &n1, &mut pred);
                        std::mem::swap(&mut w, &mut pred);
                    }
                    Scheme::Heun => {
                        cn(&self.cn, &w, &n1, &mut pred);
                        self.nonlinear(&pred, &mut n2);
                        for p in 0..n {
                            n2[p] = 0.5 * (n1[p] + n2[p]);
                        }
                        cn(&self.cn, &w, &n2, &mut pred);
                        std::mem::swap(&mut w, &mut pred);
                    }
                }
                steps += 1;
                dt_min = dt_min.min(dt);
                t = if hit { target } else { t + dt };
            }
            if limit.is_some() && !finite(&w) {
                return Err(NsStop::NonFinite { t, steps });
            }
            snapshots.push(self.to_grid(&w));
        }
        Ok(NsRun {
            snapshots,
            steps,
            dt_min,
        })
    }
}

/// The FNO forcing f(x, y) = amplitude (sin 2 pi (x + y) + cos 2 pi (x + y)) on the r x r grid.
pub fn fno_forcing(r: usize, amplitude: f64) -> Vec<f64> {
    (0..r * r)
        .map(|p| {
            let s = 2.0 * PI * ((p / r) as f64 + (p % r) as f64) / r as f64;
            amplitude * (s.sin() + s.cos())
        })
        .collect()
}

/// Parameters of the Navier-Stokes data set.
#[derive(Clone, Debug, PartialEq)]
pub struct NsParams {
    /// Grid points per axis.
    pub r: usize,
    pub stepping: Stepping,
    /// Initial vorticity distribution (periodic, mean zero).
    pub grf: GrfParams,
    /// Amplitude of the FNO forcing (0.1).
    pub forcing: f64,
}

/// sigma of the initial-vorticity GRF that reproduces `ns_2d.py`'s samples: the paper states
/// N(0, 7^(3/2) (-Delta + 49 I)^(-2.5)) and its code uses sigma = 7^(3/2) as the standard
/// deviation scale together with an extra sqrt(2) (see [`super::grf`]), so the field it generates
/// has covariance (sqrt(2) 7^(3/2))^2 (-Delta + 49 I)^(-2.5).
pub fn fno_sigma() -> f64 {
    2f64.sqrt() * 7f64.powf(1.5)
}

impl Default for NsParams {
    /// The FNO settings: nu = 1e-3, T = 50 with a snapshot every time unit, dt <= 1e-4, Euler,
    /// r = 64, w0 ~ N(0, (sqrt 2 7^1.5)^2 (-Delta + 49 I)^(-2.5)), forcing amplitude 0.1.
    fn default() -> Self {
        NsParams {
            r: 64,
            stepping: Stepping {
                viscosity: 1e-3,
                times: (1..=50).map(|i| i as f64).collect(),
                dt_max: 1e-4,
                cfl: 0.25,
                scheme: Scheme::Euler,
            },
            grf: GrfParams {
                alpha: 2.5,
                tau: 7.0,
                sigma: fno_sigma(),
                zero_mean: true,
            },
            forcing: 0.1,
        }
    }
}

/// One trajectory.
#[derive(Clone, Debug)]
pub struct NsSample {
    pub w0: Vec<f64>, // (r*r)
    pub run: NsRun,
}

/// Sampler for one parameter set; clone per thread.
#[derive(Clone)]
pub struct NsGenerator {
    pub params: NsParams,
    grf: Grf,
    solver: NsSolver,
    forcing: Vec<f64>,
}

impl NsGenerator {
    pub fn new(params: NsParams) -> Self {
        let r = params.r;
        NsGenerator {
            grf: Grf::new(params.grf, Boundary::Periodic, 2, r),
            solver: NsSolver::new(r),
            forcing: fno_forcing(r, params.forcing),
            params,
        }
    }

    pub fn sample(&mut self, rng: &mut Rng) -> NsSample {
        self.sample_guarded(rng, None)
            .expect("an unguarded run always finishes")
    }

    /// [`sample`](Self::sample) with the guards of [`NsSolver::run_guarded`].
    pub fn sample_guarded(
        &mut self,
        rng: &mut Rng,
        limit: Option<f64>,
    ) -> Result<NsSample, NsStop> {
        let w0 = self.grf.sample(rng);
        let run =
            self.solver
                .run_guarded(&w0, Some(&self.forcing), &self.params.stepping, limit)?;
        Ok(NsSample { w0, run })
    }
}
