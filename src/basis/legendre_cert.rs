//! Certified error bounds for the SHT's f64 Legendre values and Gauss-Legendre rule.
//!
//! ## A column of lambda_lm(x) (proof)
//! lambda_lm(x), l >= m, solves lambda_mm = (4 pi)^-1/2 prod_{k<=m} sqrt((2k+1)/(2k)) s^m
//! (s = sqrt((1-x)(1+x))), lambda_{m+1,m} = sqrt(2m+3) x lambda_mm and
//! lambda_l = a_l x lambda_{l-1} - (a_l / a_{l-1}) lambda_{l-2}, a_l = sqrt((4l^2-1)/(l^2-m^2)).
//! Any f64 sequence mu~ (the table's own values, or a copy scaled by 2^k where lambda_mm is
//! tiny) satisfies the same relations with residuals r_l, enclosed in interval arithmetic on
//! mu~'s exact values: one step, no propagation, so r is a few ulps wide. The error
//! e_l = mu~_l - 2^k lambda_l then solves e_l = a_l x e_{l-1} - (a_l / a_{l-1}) e_{l-2} + r_l
//! exactly, with e_m = r_m and e_{m+1} = sqrt(2m+3) x e_m + r_{m+1}.
//!
//! Bounding |e| by absolute values step by step grows like the golden ratio per step (the reason
//! the interval version of the recurrence blows up). Instead the state s_l = (e_l, e_{l-1}) is
//! tracked in coordinates z_l = F_l^-1 s_l of a moving frame F_l = [c1 c2]: c1 is the unit
//! vector along (mu~_l, mu~_{l-1}), c2 the previous c2 pushed through the recurrence and
//! normalised (a second solution), reset perpendicular to c1 where the two close up. With M_l
//! the step matrix, z_l = U_l z_{l-1} + F_l^-1 (r_l, 0) and U_l = F_l^-1 M_l F_{l-1}: the frame
//! follows the solutions, so U_l stays nearly diagonal and the bound neither wraps nor grows
//! faster than the solutions do. Componentwise, Z_l = |U_l| Z_{l-1} + |F_l^-1| (|r_l|, 0)
//! bounds |z_l| (all in intervals, upper ends), and |e_l| <= |F_l|_{row 0} Z_l. F_l is any
//! invertible matrix: U_l and F_l^-1 are enclosed from F's f64 entries, so the frame's own
//! rounding costs nothing. The tests check the bounds against 400-bit references; they stay
//! below 1e-9 of the column's largest value there.
//!
//! ## The Gauss-Legendre rule (proof)
//! P_n has exactly floor(n/2) roots in (0, 1), simple, and its roots are symmetric (0 is one for
//! odd n). At each f64 node x~_i > 0, Taylor's theorem gives lambda_n0(x~_i +- d) =
//! lambda_n0(x~_i) +- d lambda_n0'(x~_i) + R, |R| <= K d^2 / 2 with K = N_n n^4 >= |lambda''|
//! (Markov's |p'| <= deg^2 max|p| on [-1, 1] twice, |P| <= 1); lambda_n0 and lambda_n0'
//! (P_l' = l (x P_l - P_{l-1}) / (x^2 - 1)) come from the column at x~_i with its certified
//! errors. Once d |lambda'| beats |lambda_n0(x~_i)|, its error and K d^2 / 2, the signs at
//! x~_i +- d are certified opposite. The enclosures lie in (0, 1) and are disjoint: then each
//! holds exactly one root, in order, so |x~_i - x_i| <= d_i. The weight
//! w_i = 2 (1 - x_i^2) / (n P_{n-1}(x_i))^2 is enclosed from lambda_{n-1,0}(x~_i), its certified
//! error and d_i times N_{n-1} min((n-1)^2, (n-1) / sqrt(1 - x^2)) over the enclosure (Markov,
//! Bernstein). The colatitudes are enclosed by correctly rounded acos.

use crate::interval::elementary::{Func, apply};
use crate::interval::{Certified, Interval, iv, mag, mig, point, times_pow2};

const ZERO: Interval = inari::const_interval!(0.0, 0.0);

/// a_l = sqrt((4 l^2 - 1) / (l^2 - m^2)), l > m, enclosed (the integers are exact in f64).
fn a_enc(l: usize, m: usize) -> Interval {
    let (l, m) = (l as f64, m as f64);
    (point(4.0 * l * l - 1.0) / point(l * l - m * m)).sqrt()
}

/// v 2^-k for v >= 0, rounded up (never 0 for v > 0).
fn scale_down_up(v: f64, k: i32) -> f64 {
    times_pow2(point(v), -i64::from(k)).sup()
}

/// N_l = sqrt((2l + 1) / (4 pi)), lambda_l0 = N_l P_l, enclosed (l a whole number).
fn norm_enc(l: f64) -> Interval {
    (point(2.0 * l + 1.0) / (point(4.0) * Interval::PI)).sqrt()
}

/// lambda_mm(x) = 2^-k P: the enclosure P and the exponent k (P rescaled by 2^600 whenever its
/// upper end falls below 2^-600, so nothing underflows).
fn diag_enclosure(m: usize, x: f64) -> (Interval, i32) {
    let s = ((point(1.0) - point(x)) * (point(1.0) + point(x))).sqrt();
    let mut p = point(1.0) / (point(4.0) * Interval::PI).sqrt();
    let mut k = 0;
    for j in 1..=m {
        p = p * (point((2 * j + 1) as f64) / point((2 * j) as f64)).sqrt() * s;
        if p.sup() < 2f64.powi(-600) {
            p *= point(2f64.powi(600));
            k += 600;
        }
    }
    (p, k)
}

/// The recurrence's coefficients for one m, enclosed: a_l, 1 / a_{l-1} and a_l / a_{l-1} at
/// index l - m (entries below m + 2 unused), and sqrt(2m + 3). Shared by every x of a column.
pub struct Coefficients {
    m: usize,
    a: Vec<Interval>,
    inv_prev: Vec<Interval>,
    ratio: Vec<Interval>,
    c1: Interval,
    /// The f64 values the table's recurrence uses (for a rescaled copy).
    a64: Vec<f64>,
}

impl Coefficients {
    /// For l = m..=lmax.
    pub fn new(m: usize, lmax: usize) -> Self {
        let n = (lmax + 1).saturating_sub(m);
        let mut a = vec![ZERO; n];
        let mut a64 = vec![0.0; n];
        for (i, (ai, a6)) in a.iter_mut().zip(a64.iter_mut()).enumerate().skip(1) {
            let l = m + i;
            *ai = a_enc(l, m);
            *a6 = super::spherical::recurrence_a(l, m);
        }
        let mut inv_prev = vec![ZERO; n];
        let mut ratio = vec![ZERO; n];
        for i in 2..n {
            inv_prev[i] = point(1.0) / a[i - 1];
            ratio[i] = a[i] / a[i - 1];
        }
        Coefficients {
            m,
            a,
            inv_prev,
            ratio,
            c1: point((2 * m + 3) as f64).sqrt(),
            a64,
        }
    }
}

/// Unit vector along (a, b), or None when it has no direction.
fn unit(a: f64, b: f64) -> Option<[f64; 2]> {
    let h = a.hypot(b);
    if !(h.is_finite() && h > 0.0) {
        return None;
    }
    Some([a / h, b / h])
}

/// A frame F = [c1 c2] (columns) and its inverse enclosed from F's f64 entries, or None when
/// F is not certainly invertible.
struct Frame {
    f: [[f64; 2]; 2],
    inv: [[Interval; 2]; 2],
}

fn frame(c1: [f64; 2], c2: [f64; 2]) -> Option<Frame> {
    let f = [[c1[0], c2[0]], [c1[1], c2[1]]];
    let det = point(f[0][0]) * point(f[1][1]) - point(f[0][1]) * point(f[1][0]);
    if det.contains(0.0) || det.is_empty() {
        return None;
    }
    let r = point(1.0) / det;
    let inv = [
        [point(f[1][1]) * r, -point(f[0][1]) * r],
        [-point(f[1][0]) * r, point(f[0][0]) * r],
    ];
    Some(Frame { f, inv })
}

/// Upper bound of u . z for interval u and nonnegative z.
fn dot_mag(u: [Interval; 2], z: [f64; 2]) -> Interval {
    point(mag(u[0])) * point(z[0]) + point(mag(u[1])) * point(z[1])
}

/// Certified bounds b[i] >= |lam[i] - lambda_{m+i,m}(x)| for a column of f64 values `lam`
/// (l = m..m + lam.len() - 1) at an f64 point x in (-1, 1); infinite where none is proven.
pub fn column_error(m: usize, x: f64, lam: &[f64]) -> Vec<f64> {
    let coef = Coefficients::new(m, m + lam.len().saturating_sub(1));
    column_error_with(&coef, x, lam)
}

/// [`column_error`] with the coefficients computed once (`coef` must cover lam's length).
pub fn column_error_with(coef: &Coefficients, x: f64, lam: &[f64]) -> Vec<f64> {
    let m = coef.m;
    let n = lam.len();
    let mut out = vec![f64::INFINITY; n];
    if n == 0 || n > coef.a.len() || x.is_nan() || x.abs() >= 1.0 {
        return out;
    }
    let (p, k) = diag_enclosure(m, x);
    // The sequence whose residuals are certified: the table itself when lambda_mm is not tiny,
    // else the same recurrence in f64 from 2^k lambda_mm (any f64 values would do).
    let own = k == 0 && lam.iter().all(|v| v.is_finite());
    let mu: Vec<f64> = if own {
        lam.to_vec()
    } else {
        let mut mu = Vec::with_capacity(n);
        mu.push(p.mid());
        if n > 1 {
            mu.push((2.0 * m as f64 + 3.0).sqrt() * x * mu[0]);
        }
        for i in 2..n {
            mu.push(coef.a64[i] * (x * mu[i - 1] - mu[i - 2] / coef.a64[i - 1]));
        }
        mu
    };
    let xi = point(x);
    let resid = |i: usize| -> Interval {
        let r = match i {
            0 => point(mu[0]) - p,
            1 => point(mu[1]) - coef.c1 * xi * point(mu[0]),
            _ => {
                point(mu[i])
                    - coef.a[i] * (xi * point(mu[i - 1]) - point(mu[i - 2]) * coef.inv_prev[i])
            }
        };
        point(mag(r))
    };
    // Bounds on |e_l| (mu~'s scale), then moved to lam's.
    let mut e = vec![f64::INFINITY; n];
    e[0] = resid(0).sup();
    if n > 1 {
        e[1] = (coef.c1 * point(x.abs()) * point(e[0]) + resid(1)).sup();
    }
    let start = unit(mu[1.min(n - 1)], mu[0]).and_then(|c| frame(c, [-c[1], c[0]]));
    if n > 2
        && let Some(mut prev) = start
    {
        let mut c2 = [prev.f[0][1], prev.f[1][1]];
        let mut z = [
            dot_mag(prev.inv[0], [e[1], e[0]]).sup(),
            dot_mag(prev.inv[1], [e[1], e[0]]).sup(),
        ];
        for i in 2..n {
            let Some(c1) = unit(mu[i], mu[i - 1]) else {
                break;
            };
            // The second column follows the recurrence (a second solution, so U stays close
            // to diagonal); where it turns towards the first it is reset perpendicular.
            let ax = coef.a64[i] * x;
            let ratio = coef.a64[i] / coef.a64[i - 1];
            c2 = unit(ax * c2[0] - ratio * c2[1], c2[0]).unwrap_or([-c1[1], c1[0]]);
            if (c1[0] * c2[1] - c1[1] * c2[0]).abs() < 0.3 {
                c2 = [-c1[1], c1[0]];
            }
            let Some(cur) = frame(c1, c2) else {
                break;
            };
            // M_l F_{l-1}: row 0 = a_l x f0 - (a_l / a_{l-1}) f1, row 1 = f0 (exact).
            let axi = coef.a[i] * xi;
            let mf0 = [
                axi * point(prev.f[0][0]) - coef.ratio[i] * point(prev.f[1][0]),
                axi * point(prev.f[0][1]) - coef.ratio[i] * point(prev.f[1][1]),
            ];
            let mf1 = [point(prev.f[0][0]), point(prev.f[0][1])];
            let ri = resid(i);
            let mut znew = [0.0; 2];
            for (r, zr) in znew.iter_mut().enumerate() {
                let u = [
                    cur.inv[r][0] * mf0[0] + cur.inv[r][1] * mf1[0],
                    cur.inv[r][0] * mf0[1] + cur.inv[r][1] * mf1[1],
                ];
                *zr = (dot_mag(u, z) + point(mag(cur.inv[r][0])) * ri).sup();
            }
            z = znew;
            e[i] = dot_mag([point(cur.f[0][0]), point(cur.f[0][1])], z).sup();
            prev = cur;
        }
    }
    for i in 0..n {
        if !e[i].is_finite() {
            break;
        }
        out[i] = if own {
            e[i]
        } else {
            // |lam - lambda| <= |lam - 2^-k mu~| + 2^-k |e|.
            let d = if k == 0 {
                mag(point(lam[i]) - point(mu[i]))
            } else {
                lam[i].abs() + scale_down_up(mu[i].abs(), k)
            };
            (point(d) + point(scale_down_up(e[i], k))).sup()
        };
    }
    out
}

/// Certified enclosures of a Gauss-Legendre rule's exact nodes and weights near the f64 ones.
#[derive(Clone, Debug)]
pub struct RuleCertificate {
    /// |x~_i - x_i| <= dx[i].
    pub dx: Vec<f64>,
    /// |w~_i - w_i| <= dw[i].
    pub dw: Vec<f64>,
    /// The exact colatitude acos(x_i) enclosed.
    pub theta: Vec<Interval>,
}

/// One positive node: the enclosure of its exact root and of its exact weight.
fn certify_node(coef: &Coefficients, n: usize, xt: f64) -> Result<(Interval, Interval), String> {
    let nf = n as f64;
    let col = super::spherical::legendre_column(0, n, xt, ((1.0 - xt) * (1.0 + xt)).sqrt());
    let err = column_error_with(coef, xt, &col);
    let near = |l: usize| point(col[l]) + iv(-err[l], err[l]);
    let xi = point(xt);
    // lambda_n0' at x~ (P_l' = l (x P_l - P_{l-1}) / (x^2 - 1), lambda_l = N_l P_l).
    let ratio = (point(2.0 * nf + 1.0) / point(2.0 * nf - 1.0)).sqrt();
    let slope = point(nf) * (xi * near(n) - ratio * near(n - 1)) / (xi * xi - point(1.0));
    let norm_n = norm_enc(nf);
    // |lambda_n0''| <= N_n n^4 on [-1, 1] (Markov twice, |P_n| <= 1).
    let curv = norm_n * point(nf.powi(4));
    let value = point((point(col[n].abs()) + point(err[n])).sup());
    let s = mig(slope);
    if s.is_nan() || s <= 0.0 {
        return Err(format!(
            "x = {xt:e}: the slope of P_n is not certified away from 0"
        ));
    }
    // lambda_n(x~ +- d) = lambda_n(x~) +- d lambda_n'(x~) + O(curv d^2 / 2): opposite signs at
    // the two ends once d |lambda_n'| beats the value, its error and the remainder.
    let mut d = (point(2.0) * value / point(s)).sup().max(f64::MIN_POSITIVE);
    for _ in 0..40 {
        let margin = point(s) * point(d) - value - point(0.5) * curv * point(d) * point(d);
        if margin.inf() > 0.0 {
            let xs = xi + iv(-d, d);
            if !(xs.inf() > 0.0 && xs.sup() < 1.0) {
                break;
            }
            // lambda_{n-1,0} at the exact root: |lambda'| <= N_{n-1} min((n-1)^2,
            // (n-1) / sqrt(1 - x^2)) on the enclosure (Markov, Bernstein).
            let l = nf - 1.0;
            let norm_l = norm_enc(l);
            let root1 = (point(1.0) - xs.sqr()).sqrt().inf();
            let lip = if root1 > 0.0 {
                (point(l) / point(root1)).sup().min(l * l)
            } else {
                l * l
            };
            let shift = (norm_l * point(lip) * point(d)).sup();
            let lam = near(n - 1) + iv(-shift, shift);
            let wi = point(2.0) * (point(1.0) - xs.sqr()) / (point(nf) * lam / norm_l).sqr();
            if !(wi.inf() > 0.0 && wi.sup().is_finite()) {
                break;
            }
            return Ok((xs, wi));
        }
        d *= 2.0;
    }
    Err(format!("x = {xt:e}: no certified sign change of P_n"))
}

/// Certify the n-point rule (`x` descending, exactly antisymmetric, `w` symmetric, as
/// `spherical::gauss_legendre` makes them), or say why not.
pub fn certify_rule(x: &[f64], w: &[f64]) -> Result<RuleCertificate, String> {
    use rayon::prelude::*;
    let n = x.len();
    if n < 1 || w.len() != n {
        return Err("empty rule".into());
    }
    let coef = Coefficients::new(0, n);
    let pos = n / 2;
    let mut cells: Vec<(Interval, Interval)> = x[..pos]
        .par_iter()
        .map(|&xt| certify_node(&coef, n, xt))
        .collect::<Result<_, _>>()?;
    for i in 1..pos {
        if cells[i].0.sup() >= cells[i - 1].0.inf() {
            return Err(format!(
                "nodes {} and {i} of {n}: enclosures overlap",
                i - 1
            ));
        }
    }
    if n % 2 == 1 {
        // The middle root of an odd rule is 0 exactly; w = 2 / (n P_{n-1}(0))^2.
        if x[pos] != 0.0 {
            return Err("the middle node of an odd rule is not 0".into());
        }
        let nf = n as f64;
        let col = super::spherical::legendre_column(0, n - 1, 0.0, 1.0);
        let err = column_error_with(&coef, 0.0, &col)[n - 1];
        let norm = norm_enc(nf - 1.0);
        let p = (point(col[n - 1]) + iv(-err, err)) / norm;
        cells.push((ZERO, point(2.0) / (point(nf) * p).sqr()));
    }
    let mut dx = vec![0.0; n];
    let mut dw = vec![0.0; n];
    let mut theta = vec![ZERO; n];
    for (i, (xs, wi)) in cells.iter().enumerate() {
        let j = n - 1 - i;
        dx[i] = mag(*xs - point(x[i]));
        dx[j] = dx[i];
        dw[i] = mag(*wi - point(w[i]));
        dw[j] = mag(*wi - point(w[j]));
        theta[i] = apply::<Certified>(Func::Acos, *xs);
        theta[j] = apply::<Certified>(Func::Acos, -*xs);
    }
    Ok(RuleCertificate { dx, dw, theta })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::basis::spherical::{gauss_legendre, legendre_column};
    use dashu_float::FBig;
    use dashu_float::round::mode::HalfEven;

    type Big = FBig<HalfEven>;

    fn big(v: f64) -> Big {
        Big::try_from(v).unwrap().with_precision(400).value()
    }

    /// lambda_lm(x) for l = m..=lmax in 400-bit arithmetic (the forward recurrence is stable for
    /// this solution; 400 bits leave far more than f64's 53 after any growth seen here).
    fn reference(m: usize, lmax: usize, x: f64) -> Vec<f64> {
        let xb = big(x);
        let one = big(1.0);
        let s = ((&one - &xb) * (&one + &xb)).sqrt();
        let pi = dashu_float::Context::<HalfEven>::new(400).pi(None).value();
        let mut p = &one / (big(4.0) * pi).sqrt();
        for k in 1..=m {
            p = p * (big((2 * k + 1) as f64) / big((2 * k) as f64)).sqrt() * &s;
        }
        let mut out = vec![p.clone()];
        if lmax > m {
            out.push(big((2 * m + 3) as f64).sqrt() * &xb * &p);
        }
        let a = |l: usize| {
            let (l, m) = (l as f64, m as f64);
            (big(4.0 * l * l - 1.0) / big(l * l - m * m)).sqrt()
        };
        for l in m + 2..=lmax {
            let i = l - m;
            let v = a(l) * (&xb * &out[i - 1] - &out[i - 2] / a(l - 1));
            out.push(v);
        }
        out.iter().map(|v| v.to_f64().value()).collect()
    }

    fn check(m: usize, lmax: usize, x: f64, lam: &[f64]) -> f64 {
        let exact = reference(m, lmax, x);
        let bound = column_error(m, x, lam);
        let mut worst: f64 = 0.0;
        for (i, ((&v, &r), &b)) in lam.iter().zip(&exact).zip(&bound).enumerate() {
            let err = (v - r).abs();
            // The reference is rounded to f64 once: half an ulp of slack.
            let slack = 0.5 * (r.abs().next_up() - r.abs()) + f64::from_bits(1);
            assert!(
                err <= b + slack,
                "m {m} x {x} l {}: error {err:e} above the bound {b:e}",
                m + i
            );
            let scale = exact.iter().fold(0.0f64, |a, v| a.max(v.abs()));
            worst = worst.max(b / scale);
        }
        worst
    }

    #[test]
    fn column_bounds_hold_and_are_small() {
        let cases = [
            (0, 300, 0.3),
            (0, 300, 0.9993),
            (3, 300, 0.0),
            (40, 300, 0.9),
            (150, 300, 0.99),
            (200, 300, 0.5),
            (100, 256, 0.95),
            (250, 300, -0.2),
        ];
        for (m, lmax, x) in cases {
            let lam = legendre_column(m, lmax, x, ((1.0 - x) * (1.0 + x)).sqrt());
            let worst = check(m, lmax, x, &lam);
            // Relative to the column's largest value: tight enough for every use (the true
            // error is ~1e-15; the proof's cost stays below 1e-9, 4e-10 at m = 0 near x = 1).
            assert!(worst < 1e-9, "m {m} x {x}: bound / max = {worst:e}");
        }
    }

    #[test]
    fn tiny_columns_are_scaled_not_lost() {
        // lambda_mm underflows: the stored values are 0 or subnormal, the true ones tiny.
        for (m, x) in [(400, 0.999), (300, 0.9999)] {
            let lam = legendre_column(m, m + 60, x, ((1.0 - x) * (1.0 + x)).sqrt());
            let b = column_error(m, x, &lam);
            assert!(b.iter().all(|v| v.is_finite() && *v < 1e-290), "{b:?}");
        }
    }

    #[test]
    fn a_wrong_value_is_charged() {
        // A column perturbed at one l (as a broken table would be): the bound must cover it.
        let (m, lmax, x) = (7, 120, 0.61);
        let mut lam = legendre_column(m, lmax, x, ((1.0 - x) * (1.0 + x)).sqrt());
        lam[50] *= 1.0 + 1e-9;
        check(m, lmax, x, &lam);
        let b = column_error(m, x, &lam);
        assert!(
            b[50] >= 1e-9 * lam[50].abs() * 0.99 && b[50] < 1e-7,
            "{}",
            b[50]
        );
    }

    #[test]
    fn every_small_rule_is_certified() {
        for n in 1..=100 {
            let (x, w) = gauss_legendre(n);
            let c = certify_rule(&x, &w).unwrap_or_else(|e| panic!("n {n}: {e}"));
            // sum w_i = 2 exactly for the true weights.
            let mut s = ZERO;
            for (wi, dw) in w.iter().zip(&c.dw) {
                s += point(*wi) + iv(-dw, *dw);
            }
            assert!(s.contains(2.0), "n {n}: sum of weights {s:?}");
        }
    }

    #[test]
    fn rule_enclosures_integrate_exactly() {
        for n in [2usize, 3, 7, 16, 33, 64, 129, 256] {
            let (x, w) = gauss_legendre(n);
            let c = certify_rule(&x, &w).unwrap_or_else(|e| panic!("n {n}: {e}"));
            let dx = c.dx.iter().fold(0.0f64, |a, v| a.max(*v));
            let dw = c.dw.iter().zip(&w).fold(0.0f64, |a, (d, w)| a.max(d / w));
            // Nodes to a few ulps; weights to 1e-10 relative at n = 64, 2e-8 at 256 (the
            // column bound near x = 1 is loose there, see column_bounds_hold_and_are_small).
            assert!(dx < 1e-14 && dw < 1e-7, "n {n}: dx {dx:e} dw/w {dw:e}");
            // The exact rule integrates x^(2k) exactly for 2k <= 2n - 1: the enclosures of
            // sum w_i x_i^(2k) must contain 2 / (2k + 1).
            for k in [0usize, 1, n / 2, n.saturating_sub(1)] {
                let mut s = ZERO;
                for i in 0..n {
                    let xi = point(x[i]) + iv(-c.dx[i], c.dx[i]);
                    let wi = point(w[i]) + iv(-c.dw[i], c.dw[i]);
                    s += wi * crate::interval::elementary::powi(xi, 2 * k as i32);
                }
                let exact = point(2.0) / point((2 * k + 1) as f64);
                assert!(
                    !(s.inf() > exact.sup() || s.sup() < exact.inf()),
                    "n {n} k {k}: {s:?} misses 2/(2k+1)"
                );
            }
        }
    }
}
