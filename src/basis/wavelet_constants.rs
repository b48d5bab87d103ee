//! Certified constants of the Daubechies scaling function phi and wavelet psi (db2..db10): upper
//! bounds, proven in interval arithmetic, on A = int |phi|, C_c = int |t - c| |phi(t)| dt and
//! ||psi||_inf, which the wavelet discretization bounds and the projection error take
//! (`super::wavelet`, module docs). Haar's are exact and written out there.
//!
//! ## Method (proof)
//! 1. **The exact filter.** The published table is within rounding of dbN, but the sum rules the
//!    argument needs (sum h_{2m} = sum h_{2m+1} = 1/sqrt 2) hold only for the exact filter. The
//!    exact filter solves F(h) = 0: sum_m h_m h_{m+2k} = delta_{k0} (k = 0..N-1, orthonormality)
//!    and sum_m (-1)^m t_m^p h_m = 0 (p = 0..N-1, t_m = (2m - 2N + 1)/(2N - 1): N vanishing
//!    moments, in centred and scaled powers for conditioning): 2N equations in 2N unknowns
//!    whose solutions are isolated (the finitely many spectral factorisations). Krawczyk's test
//!    x - R F(x) + (I - R J(X))(X - x) in the interior of X = x + [-r, r] (x the table, R an
//!    approximate inverse of the Jacobian J(x), J(X) its interval enclosure) proves that X holds
//!    exactly one solution, which is dbN (the other solutions are O(1) away). Everything below is
//!    computed in interval arithmetic with h in that enclosure.
//! 2. **phi at the integers.** Phi(x) = (phi(x), phi(x+1), ..., phi(x+L-1)), L = 2N-1, x in
//!    \[0,1\], satisfies Phi(x/2) = T_0 Phi(x) and Phi((x+1)/2) = T_1 Phi(x) with
//!    T_d\[k\]\[j\] = sqrt2 h_{2k+d-j} (the refinement equation phi(y) = sqrt2 sum h_m phi(2y - m)).
//!    Phi(0) is T_0's eigenvector for the eigenvalue 1 with sum 1 (partition of unity): the
//!    linear system (T_0 - I) v = 0 with its last row replaced by sum v = 1, solved with a
//!    certified residual bound (||I - R A|| <= beta < 1 gives |v - v~| <= ||R (b - A v~)|| /
//!    (1 - beta)).
//! 3. **phi at the dyadic points** k / 2^K (K = [`LEVELS`]): phi(y) = sqrt2 sum_m h_m phi(2y - m)
//!    level by level (the cascade algorithm), odd points only (the even ones are the previous
//!    level's).
//! 4. **Between the points.** Column sums of T_d are sqrt2 sum_m h_{2m+d'} = 1, so T_d maps
//!    E = {w : sum w = 0} into itself, and Phi(x) - Phi(y) is in E (partition of unity). Linear
//!    reproduction (N >= 2 vanishing moments): sum_k k phi(t + k) = mu_1 - t, so the line
//!    l = (0, 1, ..., L-1) gives l . (Phi(x) - Phi(y)) = y - x exactly. If x lies in the level-K
//!    interval with left end p and its first a binary digits are d_1..d_a, then
//!    Phi(x) - Phi(p) = P (Phi(x') - Phi(p')), P = T_{d_1}...T_{d_a}, x' = 2^a x - (d_1..d_a)_2
//!    in a level-(K-a) interval with left end p'. For w in E and any vectors c, d,
//!    P w = (P - c 1^T - d l^T) w + d (l . w), so with nu_a = max over the 2^a products of
//!    max_k sum_j |P_kj - c_k - d_k j| and delta_a = max |d_k| (c, d the rows' least-squares
//!    lines), ||Phi(x) - Phi(p)||_inf <= nu_a osc_{K-a} + delta_a 2^(a-K), where osc_m is the
//!    largest ||Phi(x) - Phi(left end)||_inf on a level-m interval. Splitting that interval at the
//!    level-K points, osc_{K-a} <= G_a + osc_K, G_a the largest ||Phi(q) - Phi(p')||_inf over the
//!    grid points q of the interval. Hence (phi is continuous for N >= 2, so osc_K is finite)
//!    osc_K <= (nu_a G_a + delta_a 2^(a-K)) / (1 - nu_a) whenever nu_a < 1; the smallest over
//!    a = 1..8 is used. (Without the line, nu_a alone decays like 2^-a only after a large
//!    constant, ~ L^2/4 sup|phi'|, and osc was 100x larger.)
//! 5. **Constants.** A <= sum_cells 2^-K (|phi(p)| + osc); C_c <= sum_cells 2^-K
//!    max_{t in cell} |t - c| (|phi(p)| + osc); psi(x) = sqrt2 sum_m g_m phi(2x - m) on the level
//!    K + 1 points, each within sqrt2 sum|h| osc of its cell, so
//!    ||psi||_inf <= max |psi(p)| + sqrt2 sum|h| osc. All sums in interval arithmetic, so the
//!    results are upper bounds of the exact constants of dbN.

use crate::interval::{Interval, mag, point};
use rayon::prelude::*;

const ZERO: Interval = inari::const_interval!(0.0, 0.0);
const ONE: Interval = inari::const_interval!(1.0, 1.0);

/// Dyadic level of the grid on which phi is enclosed (2^-16 spacing).
pub const LEVELS: u32 = 16;
/// Longest product T_{d_1}...T_{d_a} whose norm on E is computed (a = 1..=8; module docs step 4).
const PRODUCT_LEVELS: u32 = 8;

/// The constants of phi and psi the wavelet bounds take: certified upper bounds for db2..db10
/// ([`certify`]), exact for Haar (`super::wavelet`).
#[derive(Clone, Debug, PartialEq)]
pub struct ShapeConstants {
    /// mu_1 = sum m h_m / sqrt 2 in f64 (= int t phi(t) dt up to rounding): the centre of the
    /// projection's samples, and the point C1 is taken about.
    pub mu1: f64,
    /// >= int |phi|.
    pub abs_integral: f64,
    /// C0 >= int |t| |phi(t)| dt.
    pub c0: f64,
    /// C1 >= int |t - mu_1| |phi(t)| dt (mu_1 the f64 value above).
    pub c1: f64,
    /// >= ||psi||_inf.
    pub psi_sup: f64,
    /// Radius of the box around the f64 table in which Krawczyk's test proved the exact filter
    /// (0 for Haar, whose constants are exact; infinite when the proof failed).
    pub filter_radius: f64,
    /// osc_K: how far Phi may move (inf-norm) within one level-K interval (0 for Haar; infinite
    /// when the proof failed).
    pub osc: f64,
    /// r >= max_m |h_m - h~_m|: how far the exact dbN filter h lies from the f64 table h~ the
    /// transforms run with (from the Krawczyk enclosure; infinite when the proof failed). One
    /// periodic DWT level of the table is then within 2N r of dbN's in the 2-norm
    /// ([`level_distance`]).
    pub table_distance: f64,
}

impl ShapeConstants {
    /// No proof: every constant infinite, so every bound that takes them is infinite too.
    pub fn unproven(mu1: f64) -> Self {
        ShapeConstants {
            mu1,
            abs_integral: f64::INFINITY,
            c0: f64::INFINITY,
            c1: f64::INFINITY,
            psi_sup: f64::INFINITY,
            filter_radius: f64::INFINITY,
            osc: f64::INFINITY,
            table_distance: f64::INFINITY,
        }
    }
}

/// Certified constants of the Daubechies wavelet with lowpass table `h64` (length 2N, N >= 2);
/// `mu1` is the point C1 is taken about. Errors name what could not be proven.
pub fn certify(h64: &[f64], mu1: f64) -> Result<ShapeConstants, String> {
    if h64.len() < 4 || !h64.len().is_multiple_of(2) {
        return Err(format!(
            "certify: a Daubechies filter of length 2N >= 4 is needed, got {}",
            h64.len()
        ));
    }
    let (h, filter_radius) = exact_filter(h64)?;
    let l = h.len() - 1;
    let s2 = Interval::SQRT_2;
    let t = refinement_matrices(&h);
    let ints = integer_values(&t[0])?;
    let phi = cascade(&h, &ints, LEVELS);
    // osc_K <= (nu_a G_a + delta_a 2^(a-K)) / (1 - nu_a) for every a (module docs step 4).
    let norms = product_norms(&t, PRODUCT_LEVELS);
    let cells = 1usize << LEVELS;
    let best = norms
        .par_iter()
        .enumerate()
        .filter(|(_, (nu, _))| *nu < 1.0)
        .map(|(a, &(nu, delta))| {
            let a = a + 1;
            let g = grid_variation(&phi, l, cells, 1usize << a);
            let reach = point(((1u64 << a) as f64) / cells as f64); // 2^(a-K), exact
            ((point(nu) * point(g) + point(delta) * reach) / (ONE - point(nu))).sup()
        })
        .min_by(f64::total_cmp);
    let Some(osc) = best else {
        return Err(format!(
            "certify: no product of up to {PRODUCT_LEVELS} refinement matrices contracts on \
             sum-zero vectors (norms {norms:?})"
        ));
    };
    let osc_iv = point(osc);
    let step = point(1.0 / cells as f64); // exact: a power of two
    let (mut a, mut c0, mut c1) = (ZERO, ZERO, ZERO);
    let c = point(mu1);
    for (j, p) in phi[..l * cells].iter().enumerate() {
        let bound = point(mag(*p)) + osc_iv;
        let cell = crate::interval::iv(j as f64, (j + 1) as f64) * step;
        a += bound * step;
        c0 += point(mag(cell)) * bound * step;
        c1 += point(mag(cell - c)) * bound * step;
    }
    let table_distance = distance_to_table(&h, h64);
    let h1 = h.iter().fold(ZERO, |s, x| s + point(mag(*x)));
    let psi_sup = (point(psi_max(&h, &phi)) + s2 * h1 * osc_iv).sup();
    Ok(ShapeConstants {
        mu1,
        abs_integral: a.sup(),
        c0: c0.sup(),
        c1: c1.sup(),
        psi_sup,
        filter_radius,
        osc,
        table_distance,
    })
}

/// max_m |h_m - h~_m| over an enclosure `h` of the exact filter and the f64 table `h64`, rounded
/// up.
pub fn distance_to_table(h: &[Interval], h64: &[f64]) -> f64 {
    h.iter()
        .zip(h64)
        .map(|(x, t)| mag(*x - point(*t)))
        .fold(0.0, f64::max)
}

/// D >= ||L L^T - I||_2 for the periodic one-level DWT matrix L of the f64 table `h64` (lowpass
/// rows h, highpass rows g_m = (-1)^m h_{2N-1-m}) at every length 2K >= 2, so ||L||_2 <=
/// sqrt(1 + D) <= 1 + D/2: how far the table's levels are from orthogonal.
///
/// *Proof.* Row k of the lowpass half holds, in column i, the sum of the h_m with
/// m = i - 2k mod 2K, so (H H^T)_{kk'} is the sum of rho(t) = sum_m h_m h_{m+t} over the even t
/// congruent to 2(k' - k) mod 2K; the classes are disjoint as k' runs, so each row of
/// |H H^T - I| sums to at most sum over s in Z of |rho(2s) - delta_{s0}|. G G^T has the same
/// entries (g's autocorrelation at even shifts is h's), and H G^T vanishes exactly for any real
/// h: sum_m h_m g_{m+2s} changes sign under m -> 2N-1-2s-m. A symmetric matrix's 2-norm is at
/// most its largest absolute row sum. All in interval arithmetic on the table's exact values.
pub fn table_defect(h64: &[f64]) -> f64 {
    let h: Vec<Interval> = h64.iter().map(|v| point(*v)).collect();
    let n = h.len();
    let mut d = ZERO;
    for t in (0..n).step_by(2) {
        let mut rho = ZERO;
        for m in 0..n - t {
            rho += h[m] * h[m + t];
        }
        d += if t == 0 {
            point(mag(rho - ONE))
        } else {
            // rho(-t) = rho(t).
            point(2.0) * point(mag(rho))
        };
    }
    d.sup()
}

/// delta >= ||L - L~||_2 for one periodic DWT level of two filters of length `taps` within `r`
/// of each other tap by tap (any length 2K >= 2): every row and every column of L - L~ holds
/// each tap difference at most once (columns: the lowpass rows' taps of one parity, the highpass
/// rows' of the other), so both absolute sums are at most taps r, and ||.||_2 <= sqrt(||.||_1
/// ||.||_inf). Rounded up.
pub fn level_distance(taps: usize, r: f64) -> f64 {
    (point(taps as f64) * point(r)).sup()
}

/// T_0 and T_1 of module docs step 2: T_d\[k\]\[j\] = sqrt2 h_{2k+d-j} (0 outside the filter),
/// L x L with L = 2N - 1.
fn refinement_matrices(h: &[Interval]) -> [Vec<Vec<Interval>>; 2] {
    let l = h.len() - 1;
    [0, 1].map(|d| {
        (0..l)
            .map(|k| {
                (0..l)
                    .map(|j| {
                        let m = 2 * k as isize + d - j as isize;
                        if (0..h.len() as isize).contains(&m) {
                            Interval::SQRT_2 * h[m as usize]
                        } else {
                            ZERO
                        }
                    })
                    .collect()
            })
            .collect()
    })
}

/// Enclosure of the exact Daubechies filter near the table `h64` (Krawczyk, module docs step 1),
/// with the radius of the box in which it was proven.
pub fn exact_filter(h64: &[f64]) -> Result<(Vec<Interval>, f64), String> {
    let n = h64.len();
    let x: Vec<Interval> = h64.iter().map(|v| point(*v)).collect();
    let r = invert(&mid_matrix(&jacobian(&x)))
        .ok_or_else(|| "certify: the filter equations' Jacobian is singular".to_string())?;
    let fx = equations(&x);
    let rfx = mat_vec(&point_matrix(&r), &fx);
    for radius in [1e-16, 1e-15, 1e-14, 1e-13, 1e-12, 1e-11, 1e-10] {
        let xx: Vec<Interval> = h64
            .iter()
            .map(|v| point(*v) + crate::interval::iv(-radius, radius))
            .collect();
        let jx = jacobian(&xx);
        let rj = mat_mul(&point_matrix(&r), &jx);
        let k: Vec<Interval> = (0..n)
            .map(|i| {
                let mut s = x[i] - rfx[i];
                for j in 0..n {
                    let e = if i == j { ONE } else { ZERO } - rj[i][j];
                    s += e * (xx[j] - x[j]);
                }
                s
            })
            .collect();
        if k.iter().zip(&xx).all(|(a, b)| a.interior(*b)) {
            return Ok((k, radius));
        }
    }
    Err(
        "certify: Krawczyk's test failed for every radius up to 1e-10 around the filter table"
            .into(),
    )
}

/// F(h): N orthonormality and N vanishing-moment equations (module docs step 1).
fn equations(h: &[Interval]) -> Vec<Interval> {
    let len = h.len();
    let n = len / 2;
    let mut f = Vec::with_capacity(len);
    for k in 0..n {
        let mut s = if k == 0 { -ONE } else { ZERO };
        for m in 0..len - 2 * k {
            s += h[m] * h[m + 2 * k];
        }
        f.push(s);
    }
    for p in 0..n {
        let mut s = ZERO;
        for (m, hm) in h.iter().enumerate() {
            s += moment_weight(m, p, len) * *hm;
        }
        f.push(s);
    }
    f
}

/// (-1)^m t_m^p with t_m = (2m - (2N-1)) / (2N-1) in [-1, 1] (len = 2N taps), an enclosure.
/// sum_m (-1)^m q(m) h_m = 0 for every polynomial q of degree < N is the same condition in any
/// polynomial basis; centred and scaled powers keep the equations' rows of one size, so the
/// interval residual stays near 1e-16 (with m^p, up to 19^9 ~ 3e11 for db10, it was 1e-5 and
/// the proof needed a box 1e4 times wider).
fn moment_weight(m: usize, p: usize, len: usize) -> Interval {
    let t = point(2.0 * m as f64 - (len as f64 - 1.0)) / point(len as f64 - 1.0);
    let v = (0..p).fold(ONE, |acc, _| acc * t);
    if m % 2 == 1 { -v } else { v }
}

/// Jacobian of [`equations`]: d/dh_q sum_m h_m h_{m+2k} = h_{q+2k} + h_{q-2k}.
fn jacobian(h: &[Interval]) -> Vec<Vec<Interval>> {
    let len = h.len();
    let n = len / 2;
    let mut j = vec![vec![ZERO; len]; len];
    for k in 0..n {
        for q in 0..len {
            let mut s = ZERO;
            if q + 2 * k < len {
                s += h[q + 2 * k];
            }
            if q >= 2 * k {
                s += h[q - 2 * k];
            }
            j[k][q] = s;
        }
    }
    for (p, row) in j[n..].iter_mut().enumerate() {
        for (q, v) in row.iter_mut().enumerate() {
            *v = moment_weight(q, p, len);
        }
    }
    j
}

/// phi(0), ..., phi(L-1) (module docs step 2).
fn integer_values(t0: &[Vec<Interval>]) -> Result<Vec<Interval>, String> {
    let l = t0.len();
    let mut a: Vec<Vec<Interval>> = t0
        .iter()
        .enumerate()
        .map(|(k, row)| {
            row.iter()
                .enumerate()
                .map(|(j, v)| if j == k { *v - ONE } else { *v })
                .collect()
        })
        .collect();
    a[l - 1] = vec![ONE; l];
    let mut b = vec![ZERO; l];
    b[l - 1] = ONE;
    let r = invert(&mid_matrix(&a))
        .ok_or_else(|| "certify: phi's integer values: singular system".to_string())?;
    let rp = point_matrix(&r);
    let v0: Vec<f64> = mat_vec(&rp, &b).iter().map(|v| v.mid()).collect();
    let v0i: Vec<Interval> = v0.iter().map(|v| point(*v)).collect();
    let av = mat_vec(&a, &v0i);
    let resid: Vec<Interval> = b.iter().zip(&av).map(|(x, y)| *x - *y).collect();
    let corr = mat_vec(&rp, &resid);
    let ra = mat_mul(&rp, &a);
    let mut beta = 0.0f64;
    for (i, row) in ra.iter().enumerate() {
        let s = row.iter().enumerate().fold(ZERO, |s, (j, v)| {
            let e = if i == j { ONE } else { ZERO } - *v;
            s + point(mag(e))
        });
        beta = beta.max(s.sup());
    }
    if beta.is_nan() || beta >= 1.0 {
        return Err(format!(
            "certify: phi's integer values: ||I - R A|| = {beta:e} is not below 1"
        ));
    }
    let cn = corr.iter().fold(0.0f64, |m, v| m.max(mag(*v)));
    let eps = (point(cn) / (ONE - point(beta))).sup();
    Ok(v0
        .iter()
        .map(|v| point(*v) + crate::interval::iv(-eps, eps))
        .collect())
}

/// phi at k / 2^levels, k = 0..=L 2^levels, from its integer values (module docs step 3).
fn cascade(h: &[Interval], ints: &[Interval], levels: u32) -> Vec<Interval> {
    let l = ints.len(); // L = 2N - 1; phi(L) = 0
    let s2 = Interval::SQRT_2;
    let taps: Vec<Interval> = h.iter().map(|x| s2 * *x).collect();
    let mut v: Vec<Interval> = ints.to_vec();
    v.push(ZERO);
    for r in 1..=levels {
        let half = 1usize << (r - 1);
        let size = l * (1usize << r) + 1;
        let prev = &v;
        v = (0..size)
            .into_par_iter()
            .map(|k| {
                if k % 2 == 0 {
                    return prev[k / 2];
                }
                let mut acc = ZERO;
                for (m, tm) in taps.iter().enumerate() {
                    if let Some(idx) = k.checked_sub(m * half)
                        && idx < prev.len()
                    {
                        acc += *tm * prev[idx];
                    }
                }
                acc
            })
            .collect();
    }
    v
}

/// max |psi| over the level-(K+1) points, psi(x) = sqrt2 sum_m g_m phi(2x - m).
fn psi_max(h: &[Interval], phi: &[Interval]) -> f64 {
    let len = h.len();
    let half = 1usize << LEVELS;
    let s2 = Interval::SQRT_2;
    // g_m = (-1)^m h_{2N-1-m}
    let g: Vec<Interval> = (0..len)
        .map(|m| {
            let v = s2 * h[len - 1 - m];
            if m % 2 == 0 { v } else { -v }
        })
        .collect();
    // A maximum is exact, so the parallel order cannot change the result.
    (0..2 * (len - 1) * half + 1)
        .into_par_iter()
        .map(|k| {
            let mut acc = ZERO;
            for (m, gm) in g.iter().enumerate() {
                if let Some(idx) = k.checked_sub(m * half)
                    && idx < phi.len()
                {
                    acc += *gm * phi[idx];
                }
            }
            mag(acc)
        })
        .reduce(|| 0.0, f64::max)
}

/// (nu_a, delta_a) for a = 1..=levels: over the 2^a products P = T_{d_1}...T_{d_a}, the largest
/// max_k sum_j |P_kj - c_k - d_k j| and max_k |d_k| (c, d the rows' least-squares lines; module
/// docs step 4).
fn product_norms(t: &[Vec<Vec<Interval>>; 2], levels: u32) -> Vec<(f64, f64)> {
    let mut products = vec![t[0].clone(), t[1].clone()];
    let mut norms = Vec::new();
    for a in 1..=levels {
        if a > 1 {
            products = products
                .iter()
                .flat_map(|p| [mat_mul(p, &t[0]), mat_mul(p, &t[1])])
                .collect();
        }
        norms.push(
            products
                .iter()
                .map(|p| line_norm(p))
                .fold((0.0f64, 0.0f64), |(n, d), (pn, pd)| (n.max(pn), d.max(pd))),
        );
    }
    norms
}

/// (max_k sum_j |P_kj - c_k - d_k j|, max_k |d_k|) with (c_k, d_k) the least-squares line through
/// row k's midpoints (any line gives a valid bound; this one is close to the best).
fn line_norm(p: &[Vec<Interval>]) -> (f64, f64) {
    let (mut nu, mut delta) = (0.0f64, 0.0f64);
    for row in p {
        let n = row.len() as f64;
        let jbar = (n - 1.0) / 2.0;
        let mbar = row.iter().map(|v| v.mid()).sum::<f64>() / n;
        let (mut sxy, mut sxx) = (0.0, 0.0);
        for (j, v) in row.iter().enumerate() {
            sxy += (j as f64 - jbar) * (v.mid() - mbar);
            sxx += (j as f64 - jbar).powi(2);
        }
        let d = if sxx > 0.0 { sxy / sxx } else { 0.0 };
        let c = mbar - d * jbar;
        let s = row.iter().enumerate().fold(ZERO, |s, (j, v)| {
            s + point(mag(*v - point(c) - point(d) * point(j as f64)))
        });
        nu = nu.max(s.sup());
        delta = delta.max(d.abs());
    }
    (nu, delta)
}

/// G: max over the grid points q in [0, 1) of ||Phi(q) - Phi(q0)||_inf, q0 the left end of the
/// block of `block` cells that holds q (phi on the level-K grid of `cells` cells per unit).
fn grid_variation(phi: &[Interval], l: usize, cells: usize, block: usize) -> f64 {
    let mut g = 0.0f64;
    for i in 0..cells {
        let base = i - i % block;
        for k in 0..l {
            g = g.max(mag(phi[i + k * cells] - phi[base + k * cells]));
        }
    }
    g
}

fn point_matrix(m: &[Vec<f64>]) -> Vec<Vec<Interval>> {
    m.iter()
        .map(|r| r.iter().map(|v| point(*v)).collect())
        .collect()
}

fn mid_matrix(m: &[Vec<Interval>]) -> Vec<Vec<f64>> {
    m.iter()
        .map(|r| r.iter().map(|v| v.mid()).collect())
        .collect()
}

fn mat_mul(a: &[Vec<Interval>], b: &[Vec<Interval>]) -> Vec<Vec<Interval>> {
    let n = b.first().map_or(0, Vec::len);
    a.iter()
        .map(|row| {
            (0..n)
                .map(|j| {
                    row.iter()
                        .zip(b)
                        .fold(ZERO, |s, (x, brow)| s + *x * brow[j])
                })
                .collect()
        })
        .collect()
}

fn mat_vec(a: &[Vec<Interval>], x: &[Interval]) -> Vec<Interval> {
    a.iter()
        .map(|row| row.iter().zip(x).fold(ZERO, |s, (p, q)| s + *p * *q))
        .collect()
}

/// Inverse by Gauss-Jordan elimination with partial pivoting (an approximate inverse: its
/// rounding errors are accounted for where it is used); None when singular.
fn invert(a: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let n = a.len();
    let mut m: Vec<Vec<f64>> = a
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut row = r.clone();
            row.extend((0..n).map(|j| if i == j { 1.0 } else { 0.0 }));
            row
        })
        .collect();
    for col in 0..n {
        let piv = (col..n).max_by(|&x, &y| m[x][col].abs().total_cmp(&m[y][col].abs()))?;
        if m[piv][col] == 0.0 || !m[piv][col].is_finite() {
            return None;
        }
        m.swap(col, piv);
        let p = m[col][col];
        for v in m[col].iter_mut() {
            *v /= p;
        }
        for row in 0..n {
            if row != col {
                let f = m[row][col];
                if f != 0.0 {
                    let pivot_row = m[col].clone();
                    for (v, pv) in m[row].iter_mut().zip(&pivot_row) {
                        *v -= f * pv;
                    }
                }
            }
        }
    }
    Some(m.into_iter().map(|r| r[n..].to_vec()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::basis::wavelet::Wavelet;

    #[test]
    fn the_exact_filters_are_enclosed_near_their_tables() {
        for order in 2..=10 {
            let h64 = Wavelet::daubechies(order).unwrap().lowpass();
            let (h, r) = exact_filter(h64).unwrap();
            assert!(r <= 1e-11, "db{order}: radius {r}");
            for (x, t) in h.iter().zip(h64) {
                // Inside the box t +- r where the proof ran (up to the rounding of its ends).
                assert!(x.inf() >= t - r * (1.0 + 1e-9), "db{order}: {x:?} vs {t}");
                assert!(x.sup() <= t + r * (1.0 + 1e-9), "db{order}: {x:?} vs {t}");
            }
            // Sum rules of the exact filter hold inside the enclosure.
            let even = h.iter().step_by(2).fold(ZERO, |s, x| s + *x);
            let odd = h.iter().skip(1).step_by(2).fold(ZERO, |s, x| s + *x);
            assert!(even.contains(std::f64::consts::FRAC_1_SQRT_2), "db{order}");
            assert!(odd.contains(std::f64::consts::FRAC_1_SQRT_2), "db{order}");
        }
    }

    #[test]
    fn a_filter_that_is_not_daubechies_is_refused() {
        let mut h = Wavelet::daubechies(4).unwrap().lowpass().to_vec();
        h[1] += 1e-6; // orthonormality and the moments are now off by ~1e-6
        let e = exact_filter(&h).unwrap_err();
        assert!(e.contains("Krawczyk"), "{e}");
        assert!(certify(&h, 0.0).is_err());
        let e = certify(&[0.5, 0.5], 0.0).unwrap_err();
        assert!(e.contains("length 2N >= 4"), "{e}");
    }

    #[test]
    fn db2_integer_values_enclose_the_closed_form() {
        // phi(1) = (1 + sqrt 3)/2, phi(2) = (1 - sqrt 3)/2, phi(0) = 0 (Daubechies 1992, 6.5).
        let (h, _) = exact_filter(Wavelet::daubechies(2).unwrap().lowpass()).unwrap();
        let [t0, _] = refinement_matrices(&h);
        let v = integer_values(&t0).unwrap();
        let r3 = 3f64.sqrt();
        for (x, want) in v.iter().zip([0.0, (1.0 + r3) / 2.0, (1.0 - r3) / 2.0]) {
            assert!((x.mid() - want).abs() < 1e-14, "{x:?} vs {want}");
            assert!(x.wid() < 1e-13, "{x:?}");
            assert!(
                x.inf() <= want + 1e-15 && want - 1e-15 <= x.sup(),
                "{x:?} vs {want}"
            );
        }
    }

    #[test]
    fn the_line_norm_bounds_every_sum_zero_vector() {
        // ||P w||_inf <= nu ||w||_inf + delta |sum_j j w_j| for random P and sum-zero w.
        let mut state = 7u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        for _ in 0..200 {
            let p: Vec<Vec<Interval>> = (0..5)
                .map(|_| (0..5).map(|_| point(next())).collect())
                .collect();
            let (nu, delta) = line_norm(&p);
            let mut w: Vec<f64> = (0..5).map(|_| next()).collect();
            let mean = w.iter().sum::<f64>() / 5.0;
            w.iter_mut().for_each(|x| *x -= mean);
            let winf = w.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            let l1: f64 = w.iter().enumerate().map(|(j, x)| j as f64 * x).sum();
            let pw = p
                .iter()
                .map(|r| {
                    r.iter()
                        .zip(&w)
                        .map(|(a, b)| a.mid() * b)
                        .sum::<f64>()
                        .abs()
                })
                .fold(0.0f64, f64::max);
            assert!(pw <= (nu * winf + delta * l1.abs()) * (1.0 + 1e-12) + 1e-15);
        }
    }

    /// One periodic DWT level of filter `h` on length `len` as a dense matrix (rows: the
    /// lowpass half a'_k = sum_m h_m x_{(2k+m) mod len}, then the highpass half with g).
    fn level_matrix(h: &[f64], len: usize) -> Vec<Vec<f64>> {
        let taps = h.len();
        let g = crate::basis::wavelet::highpass_of(h);
        let mut l = vec![vec![0.0; len]; len];
        for k in 0..len / 2 {
            for m in 0..taps {
                let i = (2 * k + m) % len;
                l[k][i] += h[m];
                l[len / 2 + k][i] += g[m];
            }
        }
        l
    }

    /// ||A||_2 from below: sqrt of the power iteration's Rayleigh quotient of A^T A.
    fn norm2(a: &[Vec<f64>]) -> f64 {
        let n = a.len();
        let mut x: Vec<f64> = (0..n).map(|i| 1.0 + (i as f64 * 0.7).sin()).collect();
        let mut est = 0.0;
        for _ in 0..500 {
            let ax: Vec<f64> = a
                .iter()
                .map(|r| r.iter().zip(&x).map(|(p, q)| p * q).sum())
                .collect();
            let atax: Vec<f64> = (0..n)
                .map(|j| (0..n).map(|i| a[i][j] * ax[i]).sum())
                .collect();
            let xx: f64 = x.iter().map(|v| v * v).sum();
            est = (ax.iter().map(|v| v * v).sum::<f64>() / xx).sqrt();
            let s = atax.iter().map(|v| v * v).sum::<f64>().sqrt();
            x = atax.iter().map(|v| v / s).collect();
        }
        est
    }

    #[test]
    fn the_table_defect_bounds_every_level_norm() {
        // The real tables: defects of a few ulps (sixteen eps N is what the DWT test allows).
        for w in Wavelet::all() {
            let d = table_defect(w.lowpass());
            assert!(
                d > 0.0 && d < 16.0 * f64::EPSILON * w.order() as f64,
                "{}: {d:e}",
                w.name()
            );
        }
        // A perturbed filter, so that the defect is far above f64 rounding: ||L||_2^2 - 1 <= D at
        // every length, aliased ones (len < taps) included, and D is not loose by more than 4x.
        let mut h = Wavelet::daubechies(4).unwrap().lowpass().to_vec();
        h[2] += 3e-3;
        h[5] -= 2e-3;
        let d = table_defect(&h);
        let mut largest: f64 = 0.0;
        for len in [2, 4, 8, 16, 64] {
            let excess = norm2(&level_matrix(&h, len)).powi(2) - 1.0;
            assert!(
                excess <= d,
                "len {len}: ||L||^2 - 1 = {excess:e} > D = {d:e}"
            );
            largest = largest.max(excess);
        }
        assert!(
            largest >= d / 4.0,
            "D = {d:e} loose: largest excess {largest:e}"
        );
    }

    #[test]
    fn the_level_distance_bounds_two_levels_apart() {
        let h = Wavelet::daubechies(3).unwrap().lowpass().to_vec();
        let r = 1e-4;
        let mut state = 11u64;
        for trial in 0..20 {
            let hp: Vec<f64> = h
                .iter()
                .map(|x| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                    let sign = if (state >> 63) == 1 { 1.0 } else { -1.0 };
                    // Trial 0: every tap moved by the full r, the worst case.
                    let size = if trial == 0 {
                        1.0
                    } else {
                        (state >> 11) as f64 / (1u64 << 53) as f64
                    };
                    x + sign * size * r
                })
                .collect();
            for len in [2, 4, 8, 32] {
                let (a, b) = (level_matrix(&h, len), level_matrix(&hp, len));
                let diff: Vec<Vec<f64>> = a
                    .iter()
                    .zip(&b)
                    .map(|(p, q)| p.iter().zip(q).map(|(x, y)| x - y).collect())
                    .collect();
                let dist = norm2(&diff);
                assert!(dist <= level_distance(h.len(), r), "len {len}: {dist:e}");
            }
        }
    }
}
