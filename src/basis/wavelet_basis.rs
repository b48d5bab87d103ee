//! The periodic wavelet basis on \[0,1)^d (d = 1..3): the grid x_i = i / n (n = 2^J points per
//! axis, C order), the Mallat decomposition of [`super::dwt_nd`], and its bounds.
//!
//! Sample-based coefficients: a_{J,i} = 2^{-dJ/2} v(x_i) (the usual "samples are the finest
//! approximation"), i.e. the transform of the raw samples divided by sqrt(n^d) in f64 (the
//! unnormalised transform runs in the format, as the unnormalised DFT does). Every basis function
//! Psi of a mode is a product prod_a f_a(x_a) of 1-D periodised phi_{j,k} or psi_{j,k}
//! (`dwt_nd`), and lies in V_J^d = span of Phi_{J,i}(x) = prod_a phi_{J,i_a}(x_a).
//!
//! ## Discretization bound (proof)
//! With P the orthogonal projection onto V_J^d, <v, Psi> = sum_i <v, Phi_{J,i}> gamma_i,
//! gamma_i = <Phi_{J,i}, Psi> (the inverse DWT of the unit vector of the mode: computable
//! exactly), while the sample-based coefficient is sum_i 2^{-dJ/2} v(x_i) gamma_i. Since the
//! integral of phi is 1,
//!     e_i = <v, Phi_{J,i}> - 2^{-dJ/2} v(x_i) = 2^{-dJ/2} int prod_a phi(t_a) (v~((i + t)/n) -
//!     v(i/n)) dt
//! over t in \[0, 2N-1\]^d, v~ the periodised v. Go from x_i to y = (i + t)/n along the straight
//! segment: v~ changes by at most L |y - x_i|_2 <= L |t|_1 / n along it, plus, at each crossing
//! of a face y_a = m (m = 1, 2, ...), the jump J_a = sup |v(x with x_a = 1) - v(x with x_a = 0)|
//! ([`DomainFunction::face_jump`]; min(L, 2M) without one). Axis a is crossed at most
//! w_a(i_a) = floor((i_a + 2N - 2) / n) times (t_a < 2N - 1). With A = int |phi| and
//! C0 = int |t| |phi(t)| dt,
//!     |e_i| <= 2^{-dJ/2} (L d C0 A^(d-1) / n + A^d sum_a w_a(i_a) J_a),
//! and |c - c^s| <= sum_i |gamma_i| |e_i|. In 1-D with n >= 2N - 1 this is the earlier
//! L C0 / n + [i + 2N - 1 > n] J_v A. For Haar (phi = 1 on \[0,1)) the 1-D term is 2^{-j/2} L /
//! (2 n). C0, C1, A are certified upper bounds for the exact dbN filter
//! ([`super::wavelet_constants`]).
//!
//! ## Continuous coefficients
//! The scaling coefficient is the mean (the Fourier coefficient at 0). Otherwise the same
//! projection argument at a fine level R with samples at the centres of mass (i + mu_1) / 2^R of
//! each Phi_{R,i} (mu_1 = int t phi = sum m h_m / sqrt2), then the f64 DWT: its error is bounded
//! as above with C1 = int |t - mu_1| |phi| for C0 and is reported as the coefficient's error
//! (added to the bound). 1-D: R = max(J + 4, 20) (Haar: adaptive Gauss-Kronrod on the two
//! halves of psi). d-D: a separable v = v_1(x_1) ... v_d(x_d) gives <v, Psi> = prod_a
//! <v_a, f_a>, each from the 1-D projection (or Gauss-Kronrod for Haar) with the product's error
//! (prod (|c_a| + e_a) - prod |c_a|); any other v runs the d-D projection at
//! R = max(J, min(J + 4, [`FINE_POINTS_LOG2`] / d)) (2^24 points at most).
//!
//! ## Precision bounds (proof sketch)
//! Model I: the input errors delta_i (|delta_i| <= u |v_i| + sigma/2) reach the coefficient through
//! gamma: |dc| <= (u sum |gamma_i| |v_i| + sigma/2 ||gamma||_1) / sqrt(n^d).
//! Models II and III: the transform is d J passes (every level, every axis), each an orthogonal
//! map W on the cube (one 1-D level on every line of the current sub-cube, the identity
//! elsewhere). Computed, each output is a sum of 2N products with rounded filters, so
//! componentwise |W^ a - W a| <= eta |W| |a| with eta = u + gamma_{2N} (1 + u) (III) or
//! u + eta_64 (1 + u) (II: f64 arithmetic, output rounded), and || |W| ||_2 <= H1 = sum |h_m|
//! (row and column sums); in III, k taps below the smallest normal number (db10's last taps in
//! fp16) are rounded with absolute error sigma/2 and add k sigma to eta H1. Errors pass later
//! passes unamplified, so ||e||_2 <= ((1 + eta H1)^(dJ) - 1) ||v~||_2, divided by sqrt(n^d) for
//! the normalised coefficient, plus underflow: at most N sigma (III; sigma/2 in II) per output
//! per pass, sum over the passes of sqrt(len^d) of them. Range: every intermediate value is at
//! most H1 (1 + eta H1)^(dJ) ||v~||_2; beyond the format's max the bound is infinite.
//!
//! ## The f64 table in place of dbN
//! Everything above runs with the f64 table h~, whose levels L~ are not exactly orthogonal and
//! not exactly dbN's. Two certified numbers (`super::wavelet_constants`) charge for it:
//! ||L~||_2 <= nu = sqrt(1 + D) (D the table's orthonormality defect, [`Wavelet::table_defect`])
//! and ||L - L~||_2 <= 2N r (r the table-to-dbN distance); a pass applies L~ on lines, so the
//! same numbers hold per pass. So: the arithmetic terms carry nu^(dJ) ([`Wavelet::table_gain`]);
//! gamma is the table's inverse DWT computed in f64, and the sums over |gamma_i| add
//! ||fl(gamma) - gamma||_2 ||e||_2; and the coefficient a bound is about is dbN's, which differs
//! from the table's sum_i a_i gamma_i by at most ||W - W~||_2 ||a||_2 <= dJ 2N r nu^(dJ-1) M
//! ([`Wavelet::table_to_exact`]; ||a||_2 <= ||v||_L2 <= M by Bessel). Proofs in docs/bounds.md
//! ("The f64 table in place of dbN", "Wavelets in d dimensions").

use super::dwt_nd::{DwtNd, cube_point, factors_of, index_mode, mode_index};
use super::wavelet::{Dwt, Wavelet};
use super::{
    Basis, BasisError, Continuous, DomainFunction, ModeConstants, Quadrature, check_model, gamma,
    infinite, model_output, round_samples,
};
use super::{quadrature_note, quadrature_of};
use crate::bounds::PrecisionBound;
use crate::fft::{Complex, ModelOutput};
use crate::functions::quad::QuadOptions;
use crate::precision::{Format, Model, Real};
use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// log2 of the most points the d-D projection behind a continuous coefficient samples (2^24:
/// 128 MiB per f64 vector).
pub const FINE_POINTS_LOG2: u32 = 24;

/// The wavelet basis on the grid x_i = i / n, n = 2^J per axis, d = 1..3 axes.
pub struct WaveletBasis {
    wavelet: Wavelet,
    n: usize,
    d: usize,
    plan: DwtNd<f64>,
    /// gamma = inverse DWT of each mode's unit vector (see module docs), cached.
    gammas: Mutex<HashMap<usize, Arc<Vec<f64>>>>,
}

impl WaveletBasis {
    /// Plan for n = 2^J samples (1-D).
    pub fn new(wavelet: Wavelet, n: usize) -> Result<Self, BasisError> {
        Self::new_nd(wavelet, n, 1)
    }
    /// Plan for n = 2^J samples per axis in dimension d = 1..3.
    pub fn new_nd(wavelet: Wavelet, n: usize, d: usize) -> Result<Self, BasisError> {
        Ok(WaveletBasis {
            wavelet,
            n,
            d,
            plan: DwtNd::new(wavelet, n, d)?,
            gammas: Mutex::new(HashMap::new()),
        })
    }
    /// The wavelet.
    pub fn wavelet(&self) -> Wavelet {
        self.wavelet
    }
    fn levels(&self) -> u32 {
        self.plan.levels()
    }
    /// Passes of the transform: d per level.
    fn passes(&self) -> f64 {
        (self.d as u32 * self.levels()) as f64
    }
    fn gamma(&self, index: usize) -> Arc<Vec<f64>> {
        if let Some(g) = self.gammas.lock().expect("poisoned").get(&index) {
            return g.clone();
        }
        let g = Arc::new(unit_inverse(&self.plan, index));
        self.gammas
            .lock()
            .expect("poisoned")
            .insert(index, g.clone());
        g
    }
    /// f64 rounding error of one unnormalised DWT per normalised coefficient, relative to rms(v).
    fn f64_rel(&self) -> f64 {
        f64_levels_error(self.wavelet, self.passes())
    }
    /// How large the f64 filter sums of samples bounded by `max_abs` may grow: each pass's
    /// reach at most sum |h_k| = h1 times the previous largest value, over d log2 n passes
    /// (with a 1e-6 margin for the powers' rounding).
    fn filter_reach(&self, max_abs: f64) -> f64 {
        max_abs * self.wavelet.h1().powf(self.passes()) * (1.0 + 1e-6)
    }
    /// Index of sample i along each axis.
    fn split(&self, i: usize) -> [usize; 3] {
        cube_point(i, self.n, self.d)
    }
    /// The fine level of the d-D projection behind a continuous coefficient (module docs).
    fn fine_level_nd(&self) -> u32 {
        (self.levels() + 4)
            .min(FINE_POINTS_LOG2 / self.d as u32)
            .max(self.levels())
    }
}

fn unit_inverse(plan: &DwtNd<f64>, index: usize) -> Vec<f64> {
    let mut e = vec![0.0; plan.len()];
    e[index] = 1.0;
    plan.inverse(&mut e);
    e
}

fn run_in<T: Real>(
    w: Wavelet,
    n: usize,
    d: usize,
    samples: &[f64],
    store: Option<Format>,
) -> (Vec<f64>, bool) {
    let plan = DwtNd::<T>::new(w, n, d).expect("validated length");
    let mut x: Vec<T> = samples.iter().map(|&v| T::from_f64(v)).collect();
    let clipped = plan.forward(&mut x, store);
    (x.iter().map(|v| v.to_f64()).collect(), clipped)
}

impl Basis for WaveletBasis {
    fn family(&self) -> String {
        self.wavelet.name()
    }
    fn size(&self) -> usize {
        self.n
    }
    fn dim(&self) -> usize {
        self.d
    }
    fn num_samples(&self) -> usize {
        self.plan.len()
    }
    fn num_coeffs(&self) -> usize {
        self.plan.len()
    }
    fn quadrature(&self) -> Quadrature {
        let total = self.plan.len();
        let h = 1.0 / self.n as f64;
        Quadrature {
            nodes: (0..total)
                .map(|i| {
                    let p = self.split(i);
                    p[..self.d].iter().map(|&k| k as f64 * h).collect()
                })
                .collect(),
            weights: vec![h.powi(self.d as i32); total],
        }
    }
    fn sample(&self, f: &dyn DomainFunction) -> Vec<f64> {
        let h = 1.0 / self.n as f64;
        (0..self.plan.len())
            .into_par_iter()
            .map(|i| {
                let p = self.split(i);
                let x = [p[0] as f64 * h, p[1] as f64 * h, p[2] as f64 * h];
                f.eval(&x[..self.d])
            })
            .collect()
    }
    fn mode(&self, index: usize) -> Vec<i64> {
        index_mode(index, self.levels(), self.d)
    }
    fn index(&self, mode: &[i64]) -> Result<usize, BasisError> {
        mode_index(mode, self.levels(), self.d)
    }
    fn forward(&self, samples: &[f64]) -> Vec<Complex<f64>> {
        let (c, _) = run_in::<f64>(self.wavelet, self.n, self.d, samples, None);
        let s = 1.0 / (self.plan.len() as f64).sqrt();
        c.iter().map(|&v| Complex::new(v * s, 0.0)).collect()
    }
    fn forward_model(
        &self,
        samples: &[f64],
        fmt: Format,
        model: Model,
    ) -> Result<ModelOutput, BasisError> {
        check_model(&self.family(), model)?;
        let (w, n, d) = (self.wavelet, self.n, self.d);
        let total = self.plan.len();
        let (raw, clipped) = match model {
            Model::Input => {
                let (r, overflow, sat) = round_samples(samples, fmt);
                if overflow {
                    return Ok(model_output(vec![Complex::new(f64::NAN, 0.0); total], sat));
                }
                (run_in::<f64>(w, n, d, &r, None).0, sat)
            }
            Model::Storage => {
                let (r, _, sat) = round_samples(samples, fmt);
                let (c, clip) = run_in::<f64>(w, n, d, &r, Some(fmt));
                (c, sat | clip)
            }
            _ => crate::with_real!(fmt, T => run_in::<T>(w, n, d, samples, None)),
        };
        let s = 1.0 / (total as f64).sqrt();
        Ok(model_output(
            raw.iter().map(|&v| Complex::new(v * s, 0.0)).collect(),
            clipped,
        ))
    }
    fn inverse(&self, coeffs: &[Complex<f64>]) -> Vec<f64> {
        let s = (self.plan.len() as f64).sqrt();
        let mut c: Vec<f64> = coeffs.iter().map(|z| z.re * s).collect();
        self.plan.inverse(&mut c);
        c
    }
    fn continuous(&self, f: &dyn DomainFunction, modes: &[Vec<i64>]) -> Vec<Continuous> {
        let family = self.family();
        let factors = if self.d > 1 { f.factors() } else { None };
        let mut fine_1d: Vec<Option<FineLine>> = (0..self.d).map(|_| None).collect();
        let mut fine_nd: Option<(Vec<f64>, u32)> = None;
        modes
            .iter()
            .map(|mode| {
                if let Some(c) = f.exact_coefficient(&family, mode) {
                    return c;
                }
                let parts = factors_of(mode, self.d);
                if self.d == 1 {
                    let (j, k, detail) = parts[0];
                    return line_coefficient(self.wavelet, f, self.levels(), &mut fine_1d[0], j, k, detail);
                }
                if let Some(fs) = factors.as_ref().filter(|fs| fs.len() == self.d) {
                    let cs: Vec<Continuous> = parts
                        .iter()
                        .zip(fs)
                        .zip(fine_1d.iter_mut())
                        .map(|((&(j, k, detail), g), fine)| {
                            line_coefficient(self.wavelet, g.as_ref(), self.levels(), fine, j, k, detail)
                        })
                        .collect();
                    return product(&cs);
                }
                let (coeffs, r) = fine_nd.get_or_insert_with(|| {
                    let r = self.fine_level_nd();
                    (fine_projection(self.wavelet, f, r, self.d), r)
                });
                let idx = mode_index(mode, *r, self.d).expect("mode exists at the finer level");
                let err = projection_error(self.wavelet, f, *r, self.d, idx);
                Continuous {
                    value: Complex::new(coeffs[idx], 0.0),
                    abs_err: err,
                    how: format!(
                        "continuous coefficient by projection at level {r} ((2^{r})^{} centred samples) and the f64 DWT; error bound {err:.1e}",
                        self.d
                    ),
                }
            })
            .collect()
    }
    fn constants(&self, mode: &[i64]) -> ModeConstants {
        let c = self.wavelet.shape();
        let j = mode[0];
        if j < 0 {
            // Periodised phi_{0,0} = 1 on every axis.
            return ModeConstants {
                sup_norm: 1.0,
                lipschitz: 0.0,
                breaks: Vec::new(),
            };
        }
        let scale = 2f64.powi(j as i32);
        let breaks = if self.wavelet.order() == 1 && self.d == 1 {
            let a = mode[1] as f64 / scale;
            vec![a, a + 0.5 / scale, a + 1.0 / scale]
        } else {
            Vec::new()
        };
        // ||prod_a f_a||_inf = prod_a 2^{j/2} ||f_a||_inf: certified where every factor is psi
        // (psi_sup); phi's sup is not certified (no wavelet bound takes it), so a mode with a
        // scaling factor says infinity rather than a guess.
        let details = factors_of(mode, self.d).iter().filter(|p| p.2).count();
        let sup = if details == self.d {
            (scale.sqrt() * c.psi_sup).powi(self.d as i32)
        } else {
            f64::INFINITY
        };
        ModeConstants {
            sup_norm: sup,
            // Not certified (no wavelet bound takes it): Haar jumps, db2 is only Hoelder-0.55,
            // and a proven Lipschitz constant of the smoother ones needs phi' enclosed as well.
            lipschitz: f64::INFINITY,
            breaks,
        }
    }
    fn discretization_bound(&self, f: &dyn DomainFunction, samples: &[f64], mode: &[i64]) -> f64 {
        let idx = match self.index(mode) {
            Ok(i) => i,
            Err(_) => return f64::NAN,
        };
        let m = f.sup();
        // The f64 transform overflows past f64's maximum (see precision_bound): no bound.
        let (max_abs, norm2) = crate::bounds::max_and_norm(samples);
        if self.filter_reach(max_abs) > f64::MAX {
            return f64::INFINITY;
        }
        let rms = norm2 / (self.plan.len() as f64).sqrt();
        let jumps = face_jumps(f, self.d);
        projection_bound(
            self.wavelet,
            f,
            self.levels(),
            self.d,
            &self.gamma(idx),
            false,
            &jumps,
        ) + 2.0 * self.f64_rel() * rms.max(m)
    }
    fn precision_bound(
        &self,
        samples: &[f64],
        fmt: Format,
        model: Model,
        mode: &[i64],
    ) -> PrecisionBound {
        if model == Model::ArithmeticScaled {
            return infinite("arithmetic-scaled is not defined for wavelets".into());
        }
        if model == Model::Gemm {
            return infinite("gemm is not defined for wavelets".into());
        }
        let idx = match self.index(mode) {
            Ok(i) => i,
            Err(e) => return infinite(e.to_string()),
        };
        let g = self.gamma(idx);
        let sq = (self.plan.len() as f64).sqrt();
        let (u, sigma) = if fmt == Format::Fp64 {
            (0.0, 0.0)
        } else {
            (fmt.unit_roundoff(), fmt.min_subnormal())
        };
        let (max_abs, norm2) = crate::bounds::max_and_norm(samples);
        // Past f64's maximum the transforms (and the reference) overflow.
        if self.filter_reach(max_abs) > f64::MAX {
            return infinite(format!(
                "range: the f64 filter sums may reach M h1^passes (M = {max_abs:e}, h1 = {:.4}, \
                 {} passes), beyond f64 max {:e}",
                self.wavelet.h1(),
                self.passes(),
                f64::MAX
            ));
        }
        let f64_rel = self.f64_rel();
        let f64_ref = f64_rel * norm2 / sq;
        let probabilistic =
            crate::bounds::input_rounding_probabilistic(fmt, max_abs, self.plan.len(), 1e-3);
        if max_abs > fmt.max_finite() {
            return PrecisionBound {
                bound: f64::INFINITY,
                probabilistic,
                note: format!(
                    "range: M = {max_abs:e} exceeds {fmt} max {:e}",
                    fmt.max_finite()
                ),
            };
        }
        let weighted: f64 = g.iter().zip(samples).map(|(a, v)| a.abs() * v.abs()).sum();
        let g1: f64 = g.iter().map(|a| a.abs()).sum();
        // g is the table's inverse DWT computed in f64, within f64_rel (relative, 2-norm) of
        // the exact one: charge it against ||delta||_2 <= u ||v||_2 + sigma/2 sqrt(n).
        let g_err = f64_rel * (u * norm2 + 0.5 * sigma * sq);
        let input = (u * weighted + 0.5 * sigma * g1 + g_err) / sq;
        if model == Model::Input {
            return PrecisionBound {
                bound: input + 2.0 * f64_ref,
                probabilistic,
                note: String::new(),
            };
        }
        let taps = self.wavelet.lowpass().len() as f64;
        let u64 = Format::Fp64.unit_roundoff();
        let eta64 = u64 + gamma(taps, u64) * (1.0 + u64);
        // Filter taps below the format's smallest normal number are rounded with an absolute
        // error of up to sigma/2 (not u |h|): k such taps add k sigma to the level's gain.
        let small = self
            .wavelet
            .lowpass()
            .iter()
            .filter(|h| h.abs() < fmt.min_normal())
            .count() as f64;
        let eta = if model == Model::Storage {
            (u + eta64 * (1.0 + u)) * self.wavelet.h1()
        } else {
            (u + gamma(taps, u) * (1.0 + u)) * self.wavelet.h1() + small * sigma
        };
        let passes = self.passes();
        let growth = (1.0 + eta).powi(passes as i32);
        // The table's passes are not exactly orthogonal: each has norm <= nu, and
        // (nu + eta)^P - nu^P <= nu^P ((1 + eta)^P - 1) over P = d J passes.
        let nu_j = self.wavelet.table_gain(passes);
        if !growth.is_finite() || eta.is_infinite() {
            return PrecisionBound {
                bound: f64::INFINITY,
                probabilistic,
                note: format!(
                    "no finite bound: 2N u >= 1 for {} in {fmt}",
                    self.wavelet.name()
                ),
            };
        }
        let norm_rounded = norm2 * (1.0 + u) + 0.5 * sigma * sq;
        let peak = self.wavelet.h1() * nu_j * growth * norm_rounded;
        if peak > fmt.max_finite() {
            return PrecisionBound {
                bound: f64::INFINITY,
                probabilistic,
                note: format!(
                    "range: intermediate values may reach {peak:.3e} (H1 (1+eta)^(dJ) ||v||_2) > {fmt} max {:e}",
                    fmt.max_finite()
                ),
            };
        }
        let per_output = if model == Model::Storage {
            0.5 * sigma
        } else {
            self.wavelet.order() as f64 * sigma
        };
        // Every pass of a level writes len^d outputs (d passes per level).
        let mut level_sum = 0.0;
        let mut len = self.n;
        while len >= 2 {
            level_sum += self.d as f64 * (len as f64).powi(self.d as i32).sqrt();
            len /= 2;
        }
        let underflow = per_output * level_sum * nu_j * growth / sq;
        PrecisionBound {
            bound: input + nu_j * (growth - 1.0) * norm_rounded / sq + underflow + f64_ref,
            probabilistic,
            note: String::new(),
        }
    }
}

/// The level-R projection of a 1-D function, kept across the modes of one `continuous` call:
/// its samples' DWT run to the end (for the psi coefficients) and down to each level j whose
/// phi coefficients were asked for.
struct FineLine {
    r: u32,
    /// a_{R,i} = 2^{-R/2} v((i + mu_1) / 2^R).
    samples: Vec<f64>,
    /// By the side 2^j of the approximation the DWT stopped at.
    transformed: HashMap<usize, Vec<f64>>,
}

impl FineLine {
    fn new(w: Wavelet, f: &dyn DomainFunction, levels: u32) -> Self {
        let r = (levels + 4).max(20);
        FineLine {
            r,
            samples: fine_samples(w, f, r, 1),
            transformed: HashMap::new(),
        }
    }
    /// The DWT of the samples down to approximations of length `stop`.
    fn down_to(&mut self, w: Wavelet, stop: usize) -> &[f64] {
        let samples = &self.samples;
        self.transformed.entry(stop).or_insert_with(|| {
            let n = samples.len();
            let plan = Dwt::<f64>::new(w, n).expect("power of two");
            let mut a = samples.clone();
            let mut scratch = vec![0.0; n];
            plan.forward_to(&mut a, &mut scratch, None, stop);
            a
        })
    }
}

/// <v, psi_{j,k}> (`detail`) or <v, phi_{j,k}> of a 1-D function with its error: the scaling
/// coefficient (phi_{0,0}) as the mean where known; Haar by adaptive Gauss-Kronrod on the
/// support; dbN by the projection at level R = max(J + 4, 20) (the DWT run to the end for psi,
/// down to level j for phi), with the error bound of [`projection_bound`] for centred samples.
fn line_coefficient(
    w: Wavelet,
    f: &dyn DomainFunction,
    levels: u32,
    fine: &mut Option<FineLine>,
    j: i64,
    k: i64,
    detail: bool,
) -> Continuous {
    if !detail
        && j == 0
        && let Some(c) = f.exact_coefficient(&w.name(), &[-1, 0])
    {
        return c;
    }
    if w.order() == 1 {
        return haar_coefficient(f, j, k, detail);
    }
    let line = fine.get_or_insert_with(|| FineLine::new(w, f, levels));
    let r = line.r;
    let n = 1usize << r;
    let stop = if detail { 1 } else { 1usize << j };
    let idx = if detail {
        (1usize << j) + k as usize
    } else {
        k as usize
    };
    let value = line.down_to(w, stop)[idx];
    let plan = Dwt::<f64>::new(w, n).expect("power of two");
    let mut g = vec![0.0; n];
    g[idx] = 1.0;
    let mut scratch = vec![0.0; n];
    plan.inverse_from(&mut g, &mut scratch, stop);
    let err = fine_error(w, f, r, 1, &g);
    let how = if detail {
        format!(
            "continuous coefficient by projection at level {r} (2^{r} centred samples) and the f64 DWT; error bound {err:.1e}"
        )
    } else {
        format!(
            "phi_{{{j},{k}}} factor by projection at level {r} (2^{r} centred samples) and the f64 DWT; error bound {err:.1e}"
        )
    };
    Continuous {
        value: Complex::new(value, 0.0),
        abs_err: err,
        how,
    }
}

/// The coefficient of a separable product from its factors' ([`super::product_of`]).
fn product(parts: &[Continuous]) -> Continuous {
    let (value, err) = super::product_of(parts);
    let unresolved = parts.iter().any(|c| c.how.contains("NOT resolved"));
    Continuous {
        value: Complex::new(value, 0.0),
        abs_err: err,
        how: if unresolved {
            format!(
                "continuous coefficient NOT resolved: a factor's quadrature budget was spent; \
                 product of 1-D coefficients, error {err:.1e} (the bound includes it)"
            )
        } else {
            format!("continuous coefficient as the product of 1-D ones (error bound {err:.1e})")
        },
    }
}

/// Haar's <v, psi_{j,k}> (`detail`: +1 on the first half of the support, -1 on the second) or
/// <v, phi_{j,k}> (1 on the support), times 2^{j/2}, by adaptive Gauss-Kronrod on the halves.
fn haar_coefficient(f: &dyn DomainFunction, j: i64, k: i64, detail: bool) -> Continuous {
    let scale = 2f64.powi(j as i32);
    let a = k as f64 / scale;
    let mid = a + 0.5 / scale;
    let b = a + 1.0 / scale;
    let opts = QuadOptions::default();
    let res = quadrature_of(
        |x| {
            let s = if !detail || x < mid { 1.0 } else { -1.0 };
            let v = f.eval(&[x]);
            (s * v, v)
        },
        |p, q| f.panel_bounds(p, q),
        &[a, mid, b],
        &opts,
        // The sign change sits at a break: the integrand does not oscillate within a panel.
        0.0,
    );
    let err = res.abs_err.max(opts.abs_tol) * scale.sqrt();
    Continuous {
        value: Complex::new(res.value.re * scale.sqrt(), 0.0),
        abs_err: err,
        how: quadrature_note("adaptive Gauss-Kronrod", err, res.converged),
    }
}

/// a_{R,i} = 2^{-dR/2} v((i + mu_1) / 2^R) on the (2^R)^d cube (C order), wrapped into \[0,1).
fn fine_samples(w: Wavelet, f: &dyn DomainFunction, r: u32, d: usize) -> Vec<f64> {
    let n = 1usize << r;
    let mu1 = w.shape().mu1;
    let total = n.pow(d as u32);
    let scale = 1.0 / (total as f64).sqrt();
    let coord = |i: usize| ((i as f64 + mu1) / n as f64).rem_euclid(1.0);
    (0..total)
        .into_par_iter()
        .map(|i| {
            let p = cube_point(i, n, d);
            let x = [coord(p[0]), coord(p[1]), coord(p[2])];
            f.eval(&x[..d]) * scale
        })
        .collect()
}

/// The normalised d-D DWT of the level-R projection estimate ([`fine_samples`]).
fn fine_projection(w: Wavelet, f: &dyn DomainFunction, r: u32, d: usize) -> Vec<f64> {
    let mut a = fine_samples(w, f, r, d);
    let plan = DwtNd::<f64>::new(w, 1usize << r, d).expect("power of two");
    plan.forward(&mut a, None);
    a
}

/// Error bound of the level-R projection estimate at cube index `idx` (centred samples).
fn projection_error(w: Wavelet, f: &dyn DomainFunction, r: u32, d: usize, idx: usize) -> f64 {
    let plan = DwtNd::<f64>::new(w, 1usize << r, d).expect("power of two");
    fine_error(w, f, r, d, &unit_inverse(&plan, idx))
}

/// Error bound of a level-R projection estimate (centred samples) whose coefficient has the
/// unit response `g` on the (2^R)^d cube: [`projection_bound`] plus the f64 DWT's rounding of
/// the estimate (relative to ||a||_2 <= M, with 1% to spare).
fn fine_error(w: Wavelet, f: &dyn DomainFunction, r: u32, d: usize, g: &[f64]) -> f64 {
    projection_bound(w, f, r, d, g, true, &face_jumps(f, d))
        + f64_levels_error(w, (d as u32 * r) as f64) * f.sup() * 1.01
}

/// Relative f64 rounding error (2-norm) of `passes` DWT passes of `w`'s table, forward or
/// inverse: nu^passes ((1 + eta)^passes - 1) with eta = (u + gamma_{2L}(u)(1 + u)) h1 per pass
/// (L filter taps, u = 2^-53) and nu >= the table level's norm ([`Wavelet::table_gain`]).
fn f64_levels_error(w: Wavelet, passes: f64) -> f64 {
    let u = Format::Fp64.unit_roundoff();
    let eta = (u + gamma(2.0 * w.lowpass().len() as f64, u) * (1.0 + u)) * w.h1();
    w.table_gain(passes) * crate::precision::compound(&[(eta, passes)])
}

/// J_a for every axis (module docs): the function's proof where it has one; for a separable
/// product |v_a(1) - v_a(0)| prod_{b != a} M_b; else min(L, 2M) (|x - x'| = 1 across the
/// faces, and |v| <= M on both). In 1-D without a proof: |v(1) - v(0)| in f64.
fn face_jumps(f: &dyn DomainFunction, d: usize) -> Vec<f64> {
    let point_jump = |g: &dyn DomainFunction| {
        g.face_jump(0)
            .unwrap_or_else(|| (g.eval(&[1.0]) - g.eval(&[0.0])).abs())
    };
    if d == 1 {
        return vec![point_jump(f)];
    }
    let factors = f.factors().filter(|fs| fs.len() == d);
    (0..d)
        .map(|a| {
            if let Some(j) = f.face_jump(a) {
                return j;
            }
            if let Some(fs) = &factors {
                let others: f64 = (0..d).filter(|&b| b != a).map(|b| fs[b].sup()).product();
                return point_jump(fs[a].as_ref()) * others;
            }
            f.lipschitz().min(2.0 * f.sup())
        })
        .collect()
}

/// sum_i |gamma_i| |e_i| with |e_i| <= 2^{-dJ/2} (L d C A^(d-1) / n + A^d sum_a w_a(i_a) J_a)
/// (module docs; C = C1 for centred samples, else C0), plus what the f64 table costs:
/// ||gamma - fl(gamma~)||_2 ||e||_2 for the computed gamma (f64 rounding of the table's inverse
/// DWT) and ||W - W~||_2 M for the table in place of dbN.
fn projection_bound(
    w: Wavelet,
    f: &dyn DomainFunction,
    levels: u32,
    d: usize,
    g: &[f64],
    centred: bool,
    jumps: &[f64],
) -> f64 {
    let c = w.shape();
    let l = f.lipschitz();
    let n = 1usize << levels;
    let cc = if centred { c.c1 } else { c.c0 };
    let a = c.abs_integral;
    let support = w.lowpass().len() - 1;
    let passes = (d as u32 * levels) as f64;
    let scale = 2f64.powf(-passes / 2.0);
    let base = l * d as f64 * cc * a.powi(d as i32 - 1) / n as f64;
    // The wrap term of each axis by the index along it: w_a(i) J_a A^d.
    let ad = a.powi(d as i32);
    let wraps: Vec<Vec<f64>> = jumps
        .iter()
        .map(|&jump| {
            (0..n)
                .map(|i| {
                    let crossings = (i + support).saturating_sub(1) / n;
                    if crossings == 0 {
                        0.0
                    } else {
                        crossings as f64 * jump * ad
                    }
                })
                .collect()
        })
        .collect();
    let e_of = |i: usize| {
        let p = cube_point(i, n, d);
        let mut e = base;
        for axis in (0..d).rev() {
            let w = wraps[axis][p[axis]];
            if w != 0.0 {
                e += w;
            }
        }
        e
    };
    let mut total = 0.0;
    for (i, gi) in g.iter().enumerate() {
        if *gi == 0.0 {
            continue;
        }
        total += gi.abs() * e_of(i);
    }
    // ||e||_2 over every cell, scaled by the largest e (so huge functions do not overflow the
    // squares).
    let emax = base
        + wraps
            .iter()
            .map(|w| w.iter().fold(0.0f64, |m, &x| m.max(x)))
            .sum::<f64>();
    let e2 = if emax > 0.0 && emax.is_finite() {
        emax * (0..g.len())
            .map(|i| (e_of(i) / emax).powi(2))
            .sum::<f64>()
            .sqrt()
    } else {
        emax
    };
    let rounding = f64_levels_error(w, passes) * e2;
    // ||a||_2 <= ||v||_{L2} <= M for a_i = <v, Phi_{J,i}> (Bessel).
    let table = w.table_to_exact(passes) * f.sup();
    (total + rounding) * scale + table
}
