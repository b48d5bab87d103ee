//! Real spherical harmonics on S^2: the SHT on a Gauss-Legendre (latitude) x equiangular
//! (longitude) grid, nlat rings at cos(theta_i) = the Gauss-Legendre nodes (north to south) and
//! nlon = 2 nlat longitudes phi_j = 2 pi j / nlon; band limit lmax = nlat - 1 (the rule is exact
//! for degree <= 2 nlat - 1 in cos theta and < nlon in phi, so band-limited functions are
//! recovered exactly).
//!
//! Basis: Y_l^0 = lambda_l0(cos theta), Y_l^m = sqrt2 lambda_lm(cos theta) cos(m phi) and
//! Y_l^-m = sqrt2 lambda_lm(cos theta) sin(m phi) (m > 0), orthonormal on the sphere
//! (int Y^2 dOmega = 1), no Condon-Shortley phase. lambda_lm is computed by the standard stable
//! recurrence (e.g. SHTns; Schaeffer 2013): lambda_mm = (4 pi)^-1/2 prod_{k<=m}
//! sqrt((2k+1)/(2k)) sin^m theta, lambda_{m+1,m} = sqrt(2m+3) x lambda_mm,
//! lambda_lm = a_lm (x lambda_{l-1,m} - lambda_{l-2,m} / a_{l-1,m}),
//! a_lm = sqrt((4 l^2 - 1)/(l^2 - m^2)): no factorials, no overflow; lambda_mm underflows only
//! where lambda_lm is below ~1e-300 for every l <= ~1900 (tests check orthonormality at l = 1024).
//! The table lambda_lm(x_i) for the northern half of the rings (parity gives the south) is
//! computed once per plan ([`Sht::new`]) and reused; a plan in another scalar rounds it once
//! ([`Sht::convert`]).
//!
//! Forward transform: per ring an FFT of length nlon through [`crate::fft::Fft`] (so the
//! precision models apply: II rounds every FFT stage and the final coefficients, III runs all in
//! the format), then per (l, m) a sum over ring pairs of w'_i lambda_lm(x_i) (X_i(m) +- X_i'(m)),
//! w'_i = 2 pi c_m w_i (c_0 = 1, c_m = sqrt2), and the division by nlon in f64. Mode `l:m`.
//!
//! Functions ([`SphereFunction`]): built-ins with closed-form coefficients, or expressions in
//! the Cartesian coordinates x, y, z ([`SphereExpression`]), whose L and M are certified on the
//! cube \[-1,1\]^3 (valid on the sphere: the chord is shorter than the arc) and whose continuous
//! coefficients are the SHT on a 4x finer grid, with that grid's discretization bound and f64
//! rounding bound as their error.
//!
//! ## Discretization bound (proof)
//! The integrand g = v Y_l^m has, along meridians and (in phi) along parallels, Lipschitz
//! constant L_g = L ||Y||_inf + M ||grad Y||_inf with ||Y_l^m||_inf <= sqrt((2l+1)/(4 pi)) and
//! ||grad Y_l^m||_inf <= sqrt(l (l+1) (2l+1)/(4 pi)) (the addition theorem for Y and its gradient).
//! Longitude: the equispaced rule errs by <= L_g pi h_phi per ring (h_phi = 2 pi / nlon), summed
//! against sum w_i = 2. Latitude: Gauss-Legendre with positive weights summing to 2 errs by at most
//! 4 E_{2 nlat - 1}(h), h(x) = int v Y dphi, and by Jackson-Favard E_n <= (pi/2) Lip(h o cos)/(n+1)
//! with Lip(h o cos) <= 2 pi L_g. Total: |c - c^s| <= L_g (2 pi^2 / nlat + 4 pi^2 / nlon)
//! = 4 pi^2 L_g / nlat. Band-limited functions are exact (the measured error is f64 rounding).
//!
//! ## The f64 nodes, weights and table (proof)
//! The grid as computed is not that rule: its nodes x~_i and weights w~_i are f64, the samples
//! are taken at theta^_i = fl(acos x~_i) and phi^_j = fl(2 pi j / nlon), and the table holds
//! f64 values lambda~_i of lambda_lm(x~_i). With S the exact product rule and S~ the computed
//! one in exact arithmetic (rounding is the precision bound's business), per ring
//! T~_i = sum_j (2 pi / nlon) v(theta^_i, phi^_j) c_m lambda~_i trig(m phi_j), so
//! |S~ - S| <= sum_i |w~_i - w_i| |T~_i| + w_i |T~_i - T_i| with |T~_i| <= 2 pi c_m
//! |lambda~_i| A_i / nlon and |T~_i - T_i| <= 2 pi (c_m L (dtheta^_i + dphi) |lambda~_i|
//! plus M (c_m |lambda~_i - lambda_lm(x~_i)| + B_l |acos x~_i - acos x_i|)): v moves by at
//! most L times the geodesic distance (at most |dtheta| + |dphi|), and c_m |d lambda / d theta|
//! is at most B_l = sqrt(l (l+1) (2l+1) / (4 pi)) (the gradient bound above). The certificates
//! ([`super::legendre_cert`]) give |x~_i - x_i|, |w~_i - w_i|, acos x_i enclosed, and
//! |lambda~_i - lambda_lm(x~_i)|, all proven; `SphericalBasis::placement_error` adds the sum.
//!
//! ## Precision bound (proof sketch)
//! With A_i = sum_j |v_ij| (so |X_i(m)| <= A_i) and dX_i the FFT's error bound per coefficient
//! (eps_fft sqrt(nlon) ||v_i||_2 plus its underflow term), each term
//! fl(w^' fl(lambda^ fl(X_i +- X_i'))) carries at most 5 roundings and the sum over nh ring pairs
//! nh - 1 more, so |S^ - S| <= sum_i |w'_i lambda_i| (dX_i + gamma_{nh+4} (A_i + dX_i)); model I
//! adds sum_i |w'_i lambda_i| (u A_i + nlon sigma/2), model II the final rounding u |S|, model
//! III the underflow of table values, weights and products below the smallest normal number
//! (absolute sigma/2 each); all / nlon.
//! The f64 reference's own error is the same formula with u = 2^-53.

use super::{
    Basis, BasisError, Continuous, DomainFunction, ModeConstants, Quadrature, check_model, gamma,
    infinite, model_output, round_samples,
};
use crate::bounds::{self, PrecisionBound};
use crate::fft::{self, Algorithm, Complex, Direction, Fft, ModelOutput, StageOptions};
use crate::precision::{Format, Model, Real, round};
use rayon::prelude::*;
use std::f64::consts::PI;
use std::sync::Arc;

/// Gauss-Legendre nodes (descending, x_0 near 1) and weights on \[-1,1\], by Newton's method on
/// P_n; exactly antisymmetric nodes and symmetric weights.
pub fn gauss_legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut x = vec![0.0; n];
    let mut w = vec![0.0; n];
    let half = n.div_ceil(2);
    for i in 0..half {
        let mut z = (PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut dp = 0.0;
        for _ in 0..100 {
            let (mut p0, mut p1) = (1.0, z);
            for k in 2..=n {
                let p2 = ((2 * k - 1) as f64 * z * p1 - (k - 1) as f64 * p0) / k as f64;
                p0 = p1;
                p1 = p2;
            }
            let p = if n == 0 { 1.0 } else { p1 };
            // P_n' = n (z P_n - P_{n-1}) / (z^2 - 1)
            dp = n as f64 * (z * p - p0) / (z * z - 1.0);
            let dz = p / dp;
            z -= dz;
            if dz.abs() <= 1e-16 * z.abs().max(1e-300) {
                // One more step with the final derivative.
                let (mut p0, mut p1) = (1.0, z);
                for k in 2..=n {
                    let p2 = ((2 * k - 1) as f64 * z * p1 - (k - 1) as f64 * p0) / k as f64;
                    p0 = p1;
                    p1 = p2;
                }
                dp = n as f64 * (z * p1 - p0) / (z * z - 1.0);
                break;
            }
        }
        if n % 2 == 1 && i == half - 1 {
            z = 0.0;
        }
        x[i] = z;
        x[n - 1 - i] = -z;
        let wi = 2.0 / ((1.0 - z * z) * dp * dp);
        w[i] = wi;
        w[n - 1 - i] = wi;
    }
    (x, w)
}

/// a_lm = sqrt((4 l^2 - 1) / (l^2 - m^2)) in f64, the recurrence's coefficient (l > m): the one
/// expression the table, [`legendre_column`] and the certificate's rescaled copy all use.
pub fn recurrence_a(l: usize, m: usize) -> f64 {
    let (l, m) = (l as f64, m as f64);
    ((4.0 * l * l - 1.0) / (l * l - m * m)).sqrt()
}

/// c_m: 1 for m = 0, sqrt 2 otherwise (the real harmonics' normalisation).
fn order_factor(am: usize) -> f64 {
    if am == 0 {
        1.0
    } else {
        std::f64::consts::SQRT_2
    }
}

/// The colatitude the samples of ring x are taken at (`Basis::quadrature`).
fn sample_theta(x: f64) -> f64 {
    x.clamp(-1.0, 1.0).acos()
}

/// The longitude of sample j of nlon (`Basis::quadrature`).
fn sample_phi(j: usize, nlon: usize) -> f64 {
    2.0 * PI * j as f64 / nlon as f64
}

/// lambda_lm(x) for l = m..=lmax (see the module docs); `sin_theta` = sqrt(1 - x^2).
pub fn legendre_column(m: usize, lmax: usize, x: f64, sin_theta: f64) -> Vec<f64> {
    if m > lmax {
        return Vec::new();
    }
    let mut pmm = 1.0 / (4.0 * PI).sqrt();
    for k in 1..=m {
        pmm *= ((2 * k + 1) as f64 / (2 * k) as f64).sqrt() * sin_theta;
    }
    let mut out = Vec::with_capacity(lmax - m + 1);
    out.push(pmm);
    if lmax > m {
        out.push((2.0 * m as f64 + 3.0).sqrt() * x * pmm);
    }
    let a = |l: usize| recurrence_a(l, m);
    for l in m + 2..=lmax {
        let v = a(l) * (x * out[l - m - 1] - out[l - m - 2] / a(l - 1));
        out.push(v);
    }
    out
}

/// The real spherical harmonic Y_l^m at colatitude theta and longitude phi.
pub fn real_ylm(l: usize, m: i64, theta: f64, phi: f64) -> f64 {
    let am = m.unsigned_abs() as usize;
    if am > l {
        return 0.0;
    }
    let lam = legendre_column(am, l, theta.cos(), theta.sin().abs())[l - am];
    match m {
        0 => lam,
        m if m > 0 => std::f64::consts::SQRT_2 * lam * (m as f64 * phi).cos(),
        m => std::f64::consts::SQRT_2 * lam * ((-m) as f64 * phi).sin(),
    }
}

/// Index of mode (l, m) in the coefficient vector: l^2 + l + m.
pub fn lm_index(l: usize, m: i64) -> usize {
    l * l + (l as i64 + m) as usize
}

/// One order m of the forward SHT: (m, (re, im) per l >= m, clipped).
type OrderBlock = (usize, Vec<(f64, f64)>, bool);

/// A planned SHT for nlat rings in scalar T.
pub struct Sht<T: Real> {
    nlat: usize,
    nlon: usize,
    lmax: usize,
    /// Rings in the northern half (incl. the equator when nlat is odd).
    nh: usize,
    x: Vec<f64>,
    w: Vec<f64>,
    /// lambda_lm(x_i), layout [m][l - m][i], i < nh.
    table: Arc<Vec<T>>,
    /// Start of each m's block in `table`.
    offsets: Vec<usize>,
    fft: Fft<T>,
    ifft: Fft<T>,
}

impl Sht<f64> {
    /// Plan for nlat >= 2 rings (nlon = 2 nlat, lmax = nlat - 1); computes the Legendre table.
    pub fn new(nlat: usize) -> Result<Self, BasisError> {
        if nlat < 2 {
            return Err(BasisError::usage(
                "--sizes",
                format!("the spherical grid needs nlat >= 2, got {nlat}"),
            ));
        }
        let (x, w) = gauss_legendre(nlat);
        let lmax = nlat - 1;
        let nh = nlat.div_ceil(2);
        let mut offsets = Vec::with_capacity(lmax + 2);
        let mut acc = 0;
        for m in 0..=lmax {
            offsets.push(acc);
            acc += (lmax - m + 1) * nh;
        }
        offsets.push(acc);
        let mut table = vec![0.0; acc];
        let mut blocks: Vec<&mut [f64]> = Vec::with_capacity(lmax + 1);
        let mut rest: &mut [f64] = &mut table;
        for m in 0..=lmax {
            let (a, b) = rest.split_at_mut(offsets[m + 1] - offsets[m]);
            blocks.push(a);
            rest = b;
        }
        // The same operations as `legendre_column`, in the same order (so the values are
        // identical), but row by row in l over all rings: contiguous and vectorisable.
        // lambda_mm for every m and ring first (a product over k <= m).
        let mut diag = vec![0.0; (lmax + 1) * nh];
        for i in 0..nh {
            let sin_theta = ((1.0 - x[i]) * (1.0 + x[i])).sqrt();
            let mut pmm = 1.0 / (4.0 * PI).sqrt();
            diag[i] = pmm;
            for k in 1..=lmax {
                pmm *= ((2 * k + 1) as f64 / (2 * k) as f64).sqrt() * sin_theta;
                diag[k * nh + i] = pmm;
            }
        }
        let xs = &x[..nh];
        blocks.into_par_iter().enumerate().for_each(|(m, block)| {
            block[..nh].copy_from_slice(&diag[m * nh..(m + 1) * nh]);
            if lmax > m {
                let c = (2.0 * m as f64 + 3.0).sqrt();
                let (first, second) = block.split_at_mut(nh);
                for ((o, &xi), &p) in second[..nh].iter_mut().zip(xs).zip(first.iter()) {
                    *o = c * xi * p;
                }
            }
            let a = |l: usize| recurrence_a(l, m);
            for l in m + 2..=lmax {
                let r = l - m;
                let (al, ap) = (a(l), a(l - 1));
                let (done, rest) = block.split_at_mut(r * nh);
                let row1 = &done[(r - 1) * nh..];
                let row2 = &done[(r - 2) * nh..(r - 1) * nh];
                for (((o, &xi), &p1), &p2) in rest[..nh].iter_mut().zip(xs).zip(row1).zip(row2) {
                    *o = al * (xi * p1 - p2 / ap);
                }
            }
        });
        Ok(Sht {
            nlat,
            nlon: 2 * nlat,
            lmax,
            nh,
            x,
            w,
            table: Arc::new(table),
            offsets,
            fft: Fft::new(2 * nlat, Direction::Forward, Algorithm::Auto)?,
            ifft: Fft::new(2 * nlat, Direction::Inverse, Algorithm::Auto)?,
        })
    }
}

impl<T: Real> Sht<T> {
    /// The same plan in another scalar: the f64 table rounded once to T.
    pub fn convert<S: Real>(plan: &Sht<S>) -> Result<Self, BasisError> {
        Ok(Sht {
            nlat: plan.nlat,
            nlon: plan.nlon,
            lmax: plan.lmax,
            nh: plan.nh,
            x: plan.x.clone(),
            w: plan.w.clone(),
            table: Arc::new(plan.table.iter().map(|v| T::from_f64(v.to_f64())).collect()),
            offsets: plan.offsets.clone(),
            fft: Fft::new(plan.nlon, Direction::Forward, Algorithm::Auto)?,
            ifft: Fft::new(plan.nlon, Direction::Inverse, Algorithm::Auto)?,
        })
    }
    /// Rings.
    pub fn nlat(&self) -> usize {
        self.nlat
    }
    /// Longitudes (2 nlat).
    pub fn nlon(&self) -> usize {
        self.nlon
    }
    /// Band limit nlat - 1.
    pub fn lmax(&self) -> usize {
        self.lmax
    }
    /// cos(theta_i), north to south.
    pub fn nodes(&self) -> &[f64] {
        &self.x
    }
    /// Gauss-Legendre weights.
    pub fn weights(&self) -> &[f64] {
        &self.w
    }
    /// lambda_lm at ring i (any ring: the south by parity).
    pub fn lambda(&self, l: usize, m: usize, i: usize) -> f64 {
        let (ii, sign) = if i < self.nh {
            (i, 1.0)
        } else {
            (
                self.nlat - 1 - i,
                if (l + m).is_multiple_of(2) { 1.0 } else { -1.0 },
            )
        };
        sign * self.table[self.offsets[m] + (l - m) * self.nh + ii].to_f64()
    }

    /// Forward SHT of nlat x nlon samples (row-major, ring by ring) in T: the coefficients times
    /// nlon (divide in f64), l^2 + l + m order. `store` rounds every FFT stage and the results
    /// (model II). Returns (coefficients, whether a saturating format clipped).
    pub fn forward_raw(&self, samples: &[f64], store: Option<Format>) -> (Vec<Complex<f64>>, bool) {
        assert_eq!(samples.len(), self.nlat * self.nlon, "SHT sample count");
        let (nlat, nlon, nh, lmax) = (self.nlat, self.nlon, self.nh, self.lmax);
        let opts = StageOptions {
            store,
            scale: false,
            ..StageOptions::default()
        };
        // Per ring: the first lmax + 1 Fourier coefficients.
        let rings: Vec<(Vec<Complex<T>>, bool)> = (0..nlat)
            .into_par_iter()
            .map(|i| {
                let mut data: Vec<Complex<T>> = samples[i * nlon..(i + 1) * nlon]
                    .iter()
                    .map(|&v| Complex::new(T::from_f64(v), T::zero()))
                    .collect();
                let mut scratch = vec![Complex::new(T::zero(), T::zero()); self.fft.scratch_len()];
                let (_, clipped) = self.fft.process_reporting(&mut data, &mut scratch, &opts);
                data.truncate(lmax + 1);
                (data, clipped)
            })
            .collect();
        let mut clipped = rings.iter().any(|r| r.1);
        let per_m: Vec<OrderBlock> = (0..=lmax)
            .into_par_iter()
            .map(|m| {
                let cm = order_factor(m);
                let wt: Vec<T> = (0..nh)
                    .map(|i| T::from_f64(2.0 * PI * cm * self.w[i]))
                    .collect();
                // Even and odd combinations of ring pairs.
                let mut even = Vec::with_capacity(nh);
                let mut odd = Vec::with_capacity(nh);
                for i in 0..nh {
                    let a = rings[i].0[m];
                    let j = nlat - 1 - i;
                    if j == i {
                        even.push(a);
                        odd.push(Complex::new(T::zero(), T::zero()));
                    } else {
                        let b = rings[j].0[m];
                        even.push(Complex::new(a.re + b.re, a.im + b.im));
                        odd.push(Complex::new(a.re - b.re, a.im - b.im));
                    }
                }
                let mut out = Vec::with_capacity(lmax - m + 1);
                let mut clip = false;
                for l in m..=lmax {
                    let col = &self.table[self.offsets[m] + (l - m) * nh..][..nh];
                    let p = if (l + m).is_multiple_of(2) {
                        &even
                    } else {
                        &odd
                    };
                    let (mut sr, mut si) = (T::zero(), T::zero());
                    for i in 0..nh {
                        let lam = col[i];
                        sr += wt[i] * (lam * p[i].re);
                        si += wt[i] * (lam * p[i].im);
                    }
                    let (mut re, mut im) = (sr.to_f64(), si.to_f64());
                    if let Some(fmt) = store {
                        re = round(re, fmt);
                        im = round(im, fmt);
                        clip |= fmt.overflow() == crate::precision::Overflow::Saturate
                            && (re.abs() >= fmt.max_finite() || im.abs() >= fmt.max_finite());
                    }
                    out.push((re, im));
                }
                (m, out, clip)
            })
            .collect();
        let mut coeffs = vec![Complex::new(0.0, 0.0); (lmax + 1) * (lmax + 1)];
        for (m, vals, clip) in per_m {
            clipped |= clip;
            for (l_m, (re, im)) in vals.into_iter().enumerate() {
                let l = m + l_m;
                coeffs[lm_index(l, m as i64)] = Complex::new(re, 0.0);
                if m > 0 {
                    // X(m) = sum v e^{-i m phi}: -Im X is the sine part.
                    coeffs[lm_index(l, -(m as i64))] = Complex::new(-im, 0.0);
                }
            }
        }
        (coeffs, clipped)
    }

    /// Forward SHT: normalised real coefficients c_lm (index l^2 + l + m).
    pub fn forward(&self, samples: &[f64]) -> Vec<f64> {
        let (c, _) = self.forward_raw(samples, None);
        let s = 1.0 / self.nlon as f64;
        c.iter().map(|z| z.re * s).collect()
    }

    /// Inverse SHT (synthesis) in T: samples (nlat x nlon) of sum c_lm Y_l^m.
    pub fn inverse(&self, coeffs: &[f64]) -> Vec<f64> {
        let (nlat, nlon, lmax) = (self.nlat, self.nlon, self.lmax);
        assert_eq!(
            coeffs.len(),
            (lmax + 1) * (lmax + 1),
            "SHT coefficient count"
        );
        let c: Vec<T> = coeffs.iter().map(|&v| T::from_f64(v)).collect();
        let rows: Vec<Vec<f64>> = (0..nlat)
            .into_par_iter()
            .map(|i| {
                let (ii, south) = if i < self.nh {
                    (i, false)
                } else {
                    (nlat - 1 - i, true)
                };
                let mut z = vec![Complex::new(T::zero(), T::zero()); nlon];
                let s2 = T::from_f64(std::f64::consts::SQRT_2);
                for m in 0..=lmax {
                    let (mut a, mut b) = (T::zero(), T::zero());
                    for l in m..=lmax {
                        let mut lam = self.table[self.offsets[m] + (l - m) * self.nh + ii];
                        if south && (l + m) % 2 == 1 {
                            lam = -lam;
                        }
                        a += lam * c[lm_index(l, m as i64)];
                        if m > 0 {
                            b += lam * c[lm_index(l, -(m as i64))];
                        }
                    }
                    z[m] = if m == 0 {
                        Complex::new(a, T::zero())
                    } else {
                        // sqrt2 (a cos + b sin) = Re[sqrt2 (a - i b) e^{i m phi}]
                        Complex::new(s2 * a, -(s2 * b))
                    };
                }
                let mut scratch = vec![Complex::new(T::zero(), T::zero()); self.ifft.scratch_len()];
                self.ifft.process_with_scratch(&mut z, &mut scratch);
                z.iter().map(|v| v.re.to_f64()).collect()
            })
            .collect();
        rows.concat()
    }
}

/// The spherical-harmonic basis on an nlat x 2 nlat Gauss-Legendre grid.
pub struct SphericalBasis {
    plan: Sht<f64>,
    /// The certified placement of the grid (computed on first use by the discretization bound).
    placement: std::sync::OnceLock<Result<Placement, String>>,
}

/// How far the computed grid is from the exact product rule (module docs, "The f64 nodes,
/// weights and table"): the certified rule, and per ring the colatitude errors of the samples
/// (fl(acos x~_i) against acos x_i) and of the table (acos x~_i against acos x_i); the largest
/// longitude error max_j |fl(2 pi j / nlon) - 2 pi j / nlon|.
struct Placement {
    rule: super::legendre_cert::RuleCertificate,
    dtheta_sample: Vec<f64>,
    dtheta_table: Vec<f64>,
    dphi: f64,
}

impl Placement {
    fn new(plan: &Sht<f64>) -> Result<Self, String> {
        use crate::interval::{Certified, elementary, mag, point};
        let rule = super::legendre_cert::certify_rule(&plan.x, &plan.w)?;
        let acos = |v: inari::Interval| elementary::apply::<Certified>(elementary::Func::Acos, v);
        let mut dtheta_sample = Vec::with_capacity(plan.nlat);
        let mut dtheta_table = Vec::with_capacity(plan.nlat);
        for (i, &x) in plan.x.iter().enumerate() {
            let theta_hat = sample_theta(x);
            dtheta_sample.push(mag(rule.theta[i] - point(theta_hat)));
            dtheta_table.push(mag(rule.theta[i] - acos(point(x))));
        }
        let two_pi = point(2.0) * inari::Interval::PI;
        let nlon = plan.nlon as f64;
        let dphi = (0..plan.nlon)
            .map(|j| {
                let hat = sample_phi(j, plan.nlon);
                mag(point(hat) - two_pi * point(j as f64) / point(nlon))
            })
            .fold(0.0, f64::max);
        Ok(Placement {
            rule,
            dtheta_sample,
            dtheta_table,
            dphi,
        })
    }
}

impl SphericalBasis {
    /// Plan (computes the Legendre table once).
    pub fn new(nlat: usize) -> Result<Self, BasisError> {
        Ok(SphericalBasis {
            plan: Sht::new(nlat)?,
            placement: std::sync::OnceLock::new(),
        })
    }

    /// |S~ - S|: the computed rule (f64 nodes, weights, sample points and table, exact
    /// arithmetic) against the exact Gauss-Legendre product rule S, for mode (l, m) and f's
    /// samples (module docs, "The f64 nodes, weights and table"); infinite when the rule cannot
    /// be certified.
    pub fn placement_error(
        &self,
        f: &dyn DomainFunction,
        samples: &[f64],
        l: usize,
        m: i64,
    ) -> f64 {
        let Ok(pl) = self
            .placement
            .get_or_init(|| Placement::new(&self.plan))
            .as_ref()
        else {
            return f64::INFINITY;
        };
        let (nlat, nlon, nh) = (self.plan.nlat, self.plan.nlon, self.plan.nh);
        if samples.len() != nlat * nlon || l > self.plan.lmax {
            return f64::INFINITY;
        }
        let am = m.unsigned_abs() as usize;
        let cm = order_factor(am);
        // Certified table errors at the northern rings (the south mirrors them by parity).
        let coef = super::legendre_cert::Coefficients::new(am, l);
        let table_err: Vec<f64> = (0..nh)
            .into_par_iter()
            .map(|i| {
                let col: Vec<f64> = (am..=l).map(|k| self.plan.lambda(k, am, i)).collect();
                super::legendre_cert::column_error_with(&coef, self.plan.x[i], &col)[l - am]
            })
            .collect();
        let (lip, sup) = (f.lipschitz(), f.sup());
        let grad = self.constants(&[l as i64, m]).lipschitz;
        let mut total = 0.0;
        for i in 0..nlat {
            let lam = self.plan.lambda(l, am, i).abs();
            let a_i: f64 = samples[i * nlon..(i + 1) * nlon]
                .iter()
                .map(|v| v.abs())
                .sum();
            let (dw, w) = (pl.rule.dw[i], self.plan.w[i] + pl.rule.dw[i]);
            let e = table_err[if i < nh { i } else { nlat - 1 - i }];
            total += dw * cm * lam * a_i / nlon as f64
                + w * (cm * (lip * (pl.dtheta_sample[i] + pl.dphi) * lam + sup * e)
                    + sup * grad * pl.dtheta_table[i]);
        }
        // The f64 evaluation of this sum of nlat positive terms of < 12 operations each errs
        // by less than gamma_(nlat + 12) < 1e-10 relative for nlat <= 2^30.
        2.0 * PI * total * (1.0 + 1e-10)
    }
    /// The f64 plan.
    pub fn plan(&self) -> &Sht<f64> {
        &self.plan
    }
    fn lm(&self, mode: &[i64]) -> Result<(usize, i64), BasisError> {
        match mode {
            [l, m] if *l >= 0 && (*l as usize) <= self.plan.lmax && m.abs() <= *l => {
                Ok((*l as usize, *m))
            }
            _ => Err(BasisError::usage(
                "--modes",
                format!(
                    "a spherical mode is l:m with 0 <= l <= lmax = nlat - 1 = {} and |m| <= l, got {mode:?}",
                    self.plan.lmax
                ),
            )),
        }
    }

    /// sum over rings of |w'_i lambda_lm(x_i)| f_i (w'_i = 2 pi c_m w_i).
    fn weighted(&self, l: usize, m: i64, f: impl Fn(usize) -> f64) -> f64 {
        let am = m.unsigned_abs() as usize;
        let cm = order_factor(am);
        (0..self.plan.nlat)
            .map(|i| 2.0 * PI * cm * self.plan.w[i] * self.plan.lambda(l, am, i).abs() * f(i))
            .sum()
    }

    /// The per-coefficient bound of one transform in a format of unit roundoff u (module docs),
    /// or None when the range may be exceeded (with the peak value).
    fn transform_error(
        &self,
        samples: &[f64],
        fmt: Format,
        model: Model,
        l: usize,
        m: i64,
    ) -> Result<f64, String> {
        let nlon = self.plan.nlon;
        let nlat = self.plan.nlat;
        let (u, sigma) = if fmt == Format::Fp64 {
            (Format::Fp64.unit_roundoff(), 0.0)
        } else {
            (fmt.unit_roundoff(), fmt.min_subnormal())
        };
        let ring_abs: Vec<f64> = samples
            .chunks(nlon)
            .map(|r| r.iter().map(|v| v.abs()).sum())
            .collect();
        let ring_l2: Vec<f64> = samples
            .chunks(nlon)
            .map(|r| crate::bounds::max_and_norm(r).1)
            .collect();
        let input_part = if model == Model::Input && fmt == Format::Fp64 {
            0.0
        } else {
            self.weighted(l, m, |i| u * ring_abs[i] + nlon as f64 * sigma / 2.0)
        };
        if model == Model::Input {
            return Ok(input_part / nlon as f64);
        }
        let shape = [nlon];
        let eps = fft::relative_error_bound(&shape, Algorithm::Auto, fmt, model);
        let uf = fft::underflow_error(&shape, Algorithm::Auto, fmt, model) * nlon as f64;
        let d_x = |i: usize| {
            eps * (nlon as f64).sqrt()
                * (ring_l2[i] * (1.0 + u) + 0.5 * sigma * (nlon as f64).sqrt())
                + uf
        };
        let nh = self.plan.nh as f64;
        let u_leg = if model == Model::Storage {
            Format::Fp64.unit_roundoff()
        } else {
            u
        };
        let g = gamma(nh + 4.0, u_leg);
        let max_abs = samples.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        let lam_max = (0..nlat)
            .map(|i| self.plan.lambda(l, m.unsigned_abs() as usize, i).abs())
            .fold(0.0, f64::max);
        let growth = fft::growth(&shape, Algorithm::Auto, model);
        let s_bound = self.weighted(l, m, |i| ring_abs[i] * (1.0 + u) + d_x(i));
        let peak = (2.0 * growth * max_abs * (1.0 + eps) * lam_max.max(1.0)).max(s_bound);
        if !eps.is_finite() || !g.is_finite() || peak * (1.0 + u) > fmt.max_finite() {
            return Err(format!(
                "intermediate values may reach {peak:.3e} > {fmt} max {:e} (or no finite bound)",
                fmt.max_finite()
            ));
        }
        let mut err =
            input_part + self.weighted(l, m, |i| d_x(i) + g * (ring_abs[i] * (1.0 + u) + d_x(i)));
        if model == Model::Storage {
            err += u * s_bound + 0.5 * sigma * nlon as f64;
        } else if sigma > 0.0 {
            // Underflow in the Legendre stage: a table value or weight below the smallest normal
            // number is rounded with absolute error sigma/2, each product with sigma/2 (sums of
            // subnormals are exact); |X_i +- X_i'| <= p.
            let am = m.unsigned_abs() as usize;
            let cm = order_factor(am);
            let tiny = fmt.min_normal();
            for i in 0..nlat {
                let lam = self.plan.lambda(l, am, i).abs();
                let w = 2.0 * PI * cm * self.plan.w[i];
                let mirror = nlat - 1 - i;
                let p =
                    ring_abs[i] * (1.0 + u) + d_x(i) + ring_abs[mirror] * (1.0 + u) + d_x(mirror);
                let lam_err = if lam < tiny { 0.5 * sigma } else { 0.0 };
                let w_err = if w < tiny { 0.5 * sigma } else { 0.0 };
                err += (w * lam_err + (lam + lam_err) * w_err) * p * (1.0 + u).powi(3)
                    + 0.5 * sigma * (w + w_err + 1.0);
            }
        }
        Ok(err / nlon as f64)
    }
}

fn spherical_run<T: Real>(
    plan: &Sht<f64>,
    samples: &[f64],
) -> Result<(Vec<Complex<f64>>, bool), BasisError> {
    let p = Sht::<T>::convert(plan)?;
    Ok(p.forward_raw(samples, None))
}

impl Basis for SphericalBasis {
    fn family(&self) -> String {
        "spherical".into()
    }
    fn size(&self) -> usize {
        self.plan.nlat
    }
    fn dim(&self) -> usize {
        2
    }
    fn num_samples(&self) -> usize {
        self.plan.nlat * self.plan.nlon
    }
    fn num_coeffs(&self) -> usize {
        (self.plan.lmax + 1) * (self.plan.lmax + 1)
    }
    fn quadrature(&self) -> Quadrature {
        let (nlat, nlon) = (self.plan.nlat, self.plan.nlon);
        let mut nodes = Vec::with_capacity(nlat * nlon);
        let mut weights = Vec::with_capacity(nlat * nlon);
        for i in 0..nlat {
            let theta = sample_theta(self.plan.x[i]);
            for j in 0..nlon {
                nodes.push(vec![theta, sample_phi(j, nlon)]);
                weights.push(self.plan.w[i] * 2.0 * PI / nlon as f64);
            }
        }
        Quadrature { nodes, weights }
    }
    fn mode(&self, index: usize) -> Vec<i64> {
        let l = (index as f64).sqrt() as usize;
        let l = if (l + 1) * (l + 1) <= index { l + 1 } else { l };
        vec![l as i64, index as i64 - (l * l + l) as i64]
    }
    fn index(&self, mode: &[i64]) -> Result<usize, BasisError> {
        let (l, m) = self.lm(mode)?;
        Ok(lm_index(l, m))
    }
    fn forward(&self, samples: &[f64]) -> Vec<Complex<f64>> {
        self.plan
            .forward(samples)
            .into_iter()
            .map(|v| Complex::new(v, 0.0))
            .collect()
    }
    fn forward_model(
        &self,
        samples: &[f64],
        fmt: Format,
        model: Model,
    ) -> Result<ModelOutput, BasisError> {
        check_model("spherical", model)?;
        let (raw, clipped) = match model {
            Model::Input => {
                let (r, overflow, sat) = round_samples(samples, fmt);
                if overflow {
                    return Ok(model_output(
                        vec![Complex::new(f64::NAN, 0.0); self.num_coeffs()],
                        sat,
                    ));
                }
                (self.plan.forward_raw(&r, None).0, sat)
            }
            Model::Storage => {
                let (r, _, sat) = round_samples(samples, fmt);
                let (c, clip) = self.plan.forward_raw(&r, Some(fmt));
                (c, sat | clip)
            }
            _ => crate::with_real!(fmt, T => spherical_run::<T>(&self.plan, samples)?),
        };
        let s = 1.0 / self.plan.nlon as f64;
        Ok(model_output(raw.iter().map(|z| z * s).collect(), clipped))
    }
    fn inverse(&self, coeffs: &[Complex<f64>]) -> Vec<f64> {
        let c: Vec<f64> = coeffs.iter().map(|z| z.re).collect();
        self.plan.inverse(&c)
    }
    fn continuous(&self, f: &dyn DomainFunction, modes: &[Vec<i64>]) -> Vec<Continuous> {
        let mut fine: Option<(SphericalBasis, Vec<f64>, Vec<Complex<f64>>)> = None;
        modes
            .iter()
            .map(|mode| {
                if let Some(c) = f.exact_coefficient("spherical", mode) {
                    return c;
                }
                // High-resolution quadrature: the SHT on a 4x finer grid, with its bound.
                let (b, s, c) = fine.get_or_insert_with(|| {
                    let b = SphericalBasis::new(4 * self.plan.nlat).expect("nlat >= 2");
                    let s = b.sample(f);
                    let c = b.forward(&s);
                    (b, s, c)
                });
                let idx = b.index(mode).expect("mode exists on the finer grid");
                // With the fine samples, so the f64 rounding of that SHT is bounded too.
                let err = b.discretization_bound(f, s, mode);
                Continuous {
                    value: c[idx],
                    abs_err: err,
                    how: format!(
                        "continuous coefficient by the SHT at nlat = {} (error bound {err:.1e})",
                        b.plan.nlat
                    ),
                }
            })
            .collect()
    }
    fn constants(&self, mode: &[i64]) -> ModeConstants {
        let l = mode[0].max(0) as f64;
        ModeConstants {
            sup_norm: ((2.0 * l + 1.0) / (4.0 * PI)).sqrt(),
            lipschitz: (l * (l + 1.0) * (2.0 * l + 1.0) / (4.0 * PI)).sqrt(),
            breaks: Vec::new(),
        }
    }
    fn discretization_bound(&self, f: &dyn DomainFunction, samples: &[f64], mode: &[i64]) -> f64 {
        let c = self.constants(mode);
        let lg = f.lipschitz() * c.sup_norm + f.sup() * c.lipschitz;
        // The f64 transform's rounding, bounded from the samples (without them there is no
        // bound: it was a fixed 1e-14 (1 + M) sqrt(4 pi) once, a guess).
        let rounding = match self.lm(mode) {
            Ok((l, m)) if !samples.is_empty() => {
                2.0 * self
                    .transform_error(samples, Format::Fp64, Model::Arithmetic, l, m)
                    .unwrap_or(f64::INFINITY)
            }
            _ => f64::INFINITY,
        };
        let placement = match self.lm(mode) {
            Ok((l, m)) => self.placement_error(f, samples, l, m),
            Err(_) => f64::INFINITY,
        };
        4.0 * PI * PI * lg / self.plan.nlat as f64 + placement + rounding
    }
    fn precision_bound(
        &self,
        samples: &[f64],
        fmt: Format,
        model: Model,
        mode: &[i64],
    ) -> PrecisionBound {
        if model == Model::ArithmeticScaled {
            return infinite("arithmetic-scaled is not defined for the SHT".into());
        }
        if model == Model::Gemm {
            return infinite("gemm is not defined for the SHT".into());
        }
        let (l, m) = match self.lm(mode) {
            Ok(x) => x,
            Err(e) => return infinite(e.to_string()),
        };
        let max_abs = samples.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        let probabilistic = bounds::input_rounding_probabilistic(fmt, max_abs, samples.len(), 1e-3);
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
        let reference = self
            .transform_error(samples, Format::Fp64, Model::Arithmetic, l, m)
            .unwrap_or(f64::INFINITY);
        match self.transform_error(samples, fmt, model, l, m) {
            Ok(e) => PrecisionBound {
                bound: e + if model == Model::Input { 2.0 } else { 1.0 } * reference,
                probabilistic,
                note: String::new(),
            },
            Err(why) => PrecisionBound {
                bound: f64::INFINITY,
                probabilistic,
                note: format!("range: {why}"),
            },
        }
    }
}

/// Functions on the sphere: the built-ins with known coefficients, `ylm:l=L,m=M` (one
/// harmonic), `cap` or `cap:kappa=K` (the Gaussian cap exp(-K (1 - cos theta)), K = 4 by
/// default), `abscos` (|cos theta|, Lipschitz with a kink on the equator); and any expression in
/// the Cartesian coordinates x = sin theta cos phi, y = sin theta sin phi, z = cos theta
/// ([`SphereExpression`]).
#[derive(Clone, Debug, PartialEq)]
pub enum SphereFunction {
    Ylm { l: usize, m: i64 },
    Cap { kappa: f64 },
    AbsCos,
    Expr(SphereExpression),
}

/// What `--function` accepts with `--basis spherical`.
pub const SPHERE_FUNCTIONS: &str =
    "ylm:l=L,m=M, cap[:kappa=K], abscos, or an expression in x, y, z (the point on the sphere)";

/// A user expression v(x, y, z) read on the unit sphere. Its constants are certified on the cube
/// \[-1,1\]^3, which holds the sphere and the chords between its points: M = sup |v| there
/// bounds sup |v| on the sphere, and the Euclidean Lipschitz constant L there bounds the
/// geodesic one (|v(p) - v(q)| <= L |p - q| <= L d(p, q), the segment lying in the ball).
/// Continuous coefficients come from the SHT on a 4x finer grid with its proven bound.
#[derive(Clone)]
pub struct SphereExpression {
    /// t -> v(2t - 1) on \[0,1\]^3 (so its L is twice v's).
    on_cube: Arc<crate::functions::Expression>,
}

impl SphereExpression {
    /// Parse and certify `spec` in x, y, z over \[-1,1\]^3; a given `opts.lipschitz` /
    /// `opts.sup` is the user's (unchecked) value on the sphere.
    pub fn parse(spec: &str, opts: &crate::functions::FunctionOptions) -> Result<Self, String> {
        use crate::functions::{Expression, FunctionError};
        let e = Expression::on_box(spec, 3, opts, -1.0, 1.0).map_err(|e| match e {
            FunctionError::Parse { message, .. } => format!(
                "function '{}' is neither a sphere built-in nor a valid expression: {message}\n\
                 Allowed: {SPHERE_FUNCTIONS}",
                spec.trim()
            ),
            FunctionError::UnknownVariable { var, column, .. } => format!(
                "function '{}': unknown variable '{var}' at column {column} (on the sphere the \
                 variables are x, y, z). Allowed: {SPHERE_FUNCTIONS}",
                spec.trim()
            ),
            FunctionError::Unbounded { at, .. } => format!(
                "function '{}' is unbounded near {at} (a pole: no finite bound on |v| holds \
                 there); its constants are certified on the cube [-1,1]^3 around the sphere, so \
                 keep poles outside it",
                spec.trim()
            ),
            other => format!(
                "{other} (on the sphere, expressions must be defined on the cube [-1,1]^3 around \
                 it, where their constants are certified)"
            ),
        })?;
        Ok(SphereExpression {
            on_cube: Arc::new(e),
        })
    }
    /// The expression text.
    pub fn spec(&self) -> &str {
        self.on_cube.spec()
    }
    /// v at the Cartesian point (x, y, z).
    pub fn value(&self, x: f64, y: f64, z: f64) -> f64 {
        use crate::functions::Function;
        // t = (p + 1)/2 and the expression's 2t - 1 move p by at most an ulp of 1 (for small
        // |p|); not charged, like the rounding of every function evaluation.
        self.on_cube
            .eval(&[(x + 1.0) * 0.5, (y + 1.0) * 0.5, (z + 1.0) * 0.5])
    }
    /// How L and M were obtained (the certificates, or the user).
    pub fn constants_source(&self) -> crate::functions::ConstantsSource {
        use crate::functions::Function;
        self.on_cube.constants_source()
    }
}

impl std::fmt::Debug for SphereExpression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SphereExpression({:?})", self.spec())
    }
}

impl PartialEq for SphereExpression {
    fn eq(&self, other: &Self) -> bool {
        self.spec() == other.spec()
    }
}

impl SphereFunction {
    /// Parse `ylm:l=3,m=-2`, `cap`, `cap:kappa=10`, `abscos`, or an expression in x, y, z.
    pub fn parse(spec: &str) -> Result<Self, String> {
        Self::parse_with(spec, &crate::functions::FunctionOptions::default())
    }
    /// [`SphereFunction::parse`] with user-given constants for expressions (the built-ins have
    /// their own, and ignore them).
    pub fn parse_with(
        spec: &str,
        opts: &crate::functions::FunctionOptions,
    ) -> Result<Self, String> {
        let t = spec.trim();
        let (name, params) = t.split_once(':').unwrap_or((t, ""));
        let mut kv = std::collections::HashMap::new();
        for p in params.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| format!("function '{spec}': parameter '{p}' is not key=value"))?;
            kv.insert(k.trim().to_string(), v.trim().to_string());
        }
        let num = |k: &str, default: Option<f64>| -> Result<f64, String> {
            match kv.get(k) {
                Some(v) => v.parse::<f64>().map_err(|_| {
                    format!("function '{spec}': parameter '{k}' = '{v}' is not a number")
                }),
                None => {
                    default.ok_or_else(|| format!("function '{spec}': missing parameter '{k}'"))
                }
            }
        };
        match name {
            "ylm" => {
                let l = num("l", None)?;
                let m = num("m", Some(0.0))?;
                if l < 0.0 || l.fract() != 0.0 || m.fract() != 0.0 || m.abs() > l {
                    return Err(format!(
                        "function '{spec}': need integers l >= 0 and |m| <= l"
                    ));
                }
                Ok(SphereFunction::Ylm {
                    l: l as usize,
                    m: m as i64,
                })
            }
            "cap" => {
                let kappa = num("kappa", Some(4.0))?;
                if !(kappa > 0.0 && kappa <= 1e4) {
                    return Err(format!("function '{spec}': kappa must be in (0, 1e4]"));
                }
                Ok(SphereFunction::Cap { kappa })
            }
            "abscos" if params.is_empty() => Ok(SphereFunction::AbsCos),
            _ if t.contains(':') => Err(format!(
                "unknown function on the sphere '{spec}'; allowed: {SPHERE_FUNCTIONS}"
            )),
            _ => SphereExpression::parse(t, opts).map(SphereFunction::Expr),
        }
    }
}

impl DomainFunction for SphereFunction {
    fn name(&self) -> String {
        match self {
            SphereFunction::Ylm { l, m } => format!("ylm:l={l},m={m}"),
            SphereFunction::Cap { kappa } => format!("cap:kappa={kappa}"),
            SphereFunction::AbsCos => "abscos".into(),
            SphereFunction::Expr(e) => e.spec().to_string(),
        }
    }
    fn eval(&self, x: &[f64]) -> f64 {
        let (theta, phi) = (x[0], x[1]);
        match self {
            SphereFunction::Ylm { l, m } => real_ylm(*l, *m, theta, phi),
            SphereFunction::Cap { kappa } => (-kappa * (1.0 - theta.cos())).exp(),
            SphereFunction::AbsCos => theta.cos().abs(),
            SphereFunction::Expr(e) => {
                let (st, ct) = theta.sin_cos();
                let (sp, cp) = phi.sin_cos();
                e.value(st * cp, st * sp, ct)
            }
        }
    }
    fn lipschitz(&self) -> f64 {
        let up = 1.0 + 1e-12;
        match self {
            SphereFunction::Ylm { l, .. } => {
                let l = *l as f64;
                (l * (l + 1.0) * (2.0 * l + 1.0) / (4.0 * PI)).sqrt() * up
            }
            // kappa sin(g) e^{-kappa (1 - cos g)} <= sqrt(kappa) e^{-1/2} (sin g <= sqrt(2 (1 - cos g))).
            SphereFunction::Cap { kappa } => kappa.sqrt() * (-0.5f64).exp() * up,
            SphereFunction::AbsCos => 1.0,
            // The cube's t-coordinates are half the sphere's: halving is exact.
            SphereFunction::Expr(e) => crate::functions::Function::lipschitz(&*e.on_cube) * 0.5,
        }
    }
    fn sup(&self) -> f64 {
        match self {
            SphereFunction::Ylm { l, .. } => ((2.0 * *l as f64 + 1.0) / (4.0 * PI)).sqrt(),
            SphereFunction::Expr(e) => crate::functions::Function::sup(&*e.on_cube),
            _ => 1.0,
        }
    }
    fn constants(&self) -> &'static str {
        match self {
            SphereFunction::Expr(e) => e.constants_source().tag(),
            _ => "bound",
        }
    }
    fn exact_coefficient(&self, basis: &str, mode: &[i64]) -> Option<Continuous> {
        if basis != "spherical" || mode.len() != 2 {
            return None;
        }
        let (l, m) = (mode[0], mode[1]);
        let lu = l.max(0) as usize;
        Some(match self {
            SphereFunction::Ylm { l: fl, m: fm } => {
                Continuous::exact(if *fl as i64 == l && *fm == m {
                    1.0
                } else {
                    0.0
                })
            }
            SphereFunction::Expr(_) => return None,
            _ if m != 0 => Continuous::exact(0.0),
            SphereFunction::Cap { kappa } => Continuous::from_enclosure(
                super::sphere_closed_forms::cap(lu, *kappa),
                "continuous coefficient from the series of e^-kappa i_l(kappa) in interval \
                     arithmetic (proven)"
                    .into(),
            ),
            SphereFunction::AbsCos => Continuous::from_enclosure(
                super::sphere_closed_forms::abscos(lu),
                "continuous coefficient from its closed form in interval arithmetic (proven)"
                    .into(),
            ),
        })
    }
}
