//! Certified continuous coefficients of the sphere's axisymmetric built-ins, c_l0 =
//! 2 pi N_l int_{-1}^{1} g(x) P_l(x) dx, N_l = sqrt((2l + 1) / (4 pi)), as intervals.
//!
//! - **cap** g = exp(-kappa (1 - x)): int e^{kappa x} P_l(x) dx = 2 i_l(kappa), the modified
//!   spherical Bessel function, so c_l = sqrt(4 pi (2l+1)) e^-kappa i_l(kappa) with
//!   i_l(kappa) = kappa^l sum_k (kappa^2 / 2)^k / (k! (2l + 2k + 1)!!) (DLMF 10.53.3; the
//!   integral is DLMF 10.54.2 at z = -i kappa). Every term is positive, so the series sums in
//!   interval arithmetic without cancellation; after the ratio
//!   r_k = (kappa^2 / 2) / (k (2l + 2k + 1)) drops below 1/2 the tail after term t is at most
//!   t r / (1 - r) (the ratios decrease). e^-kappa is 2^-j e^{j ln 2 - kappa}, and a running
//!   power of two keeps terms in range (kappa up to 1e4, l up to thousands).
//! - **abscos** g = |x|: 0 for odd l; for even l = 2n, int |x| P_l = 2 a_n with
//!   a_n = int_0^1 x P_2n = (-1)^{n+1} (2n-2)! / (4^n (n-1)! (n+1)!) (a_0 = 1/2), so
//!   a_1 = 1/8 and a_{n+1} / a_n = -(2n - 1) / (2 (n + 2)); c_l = sqrt(4 pi (2l+1)) a_n.

use crate::interval::{Certified, Interval, elementary, point, times_pow2};

/// X 2^e kept with X's upper end in [2^-500, 2^500] (so nothing overflows or underflows).
fn rebalance(parts: &mut [&mut Interval], e: &mut i64) {
    let top = parts.iter().fold(0.0f64, |a, p| a.max(p.sup()));
    if top > 2f64.powi(500) {
        for p in parts.iter_mut() {
            **p *= point(2f64.powi(-500));
        }
        *e += 500;
    } else if top > 0.0 && top < 2f64.powi(-500) {
        for p in parts.iter_mut() {
            **p *= point(2f64.powi(500));
        }
        *e -= 500;
    }
}

/// sqrt(4 pi (2l + 1)) = 4 pi N_l.
fn four_pi_norm(l: usize) -> Interval {
    (point(4.0) * Interval::PI * point((2 * l + 1) as f64)).sqrt()
}

/// c_l0 of exp(-kappa (1 - cos theta)), kappa > 0, enclosed.
pub fn cap(l: usize, kappa: f64) -> Interval {
    let k = point(kappa);
    let j = (kappa / std::f64::consts::LN_2).floor();
    // e^-kappa = 2^-j e^{j ln2 - kappa}, the second factor in (1/2, 1] up to rounding.
    let mut term = elementary::exp::<Certified>(point(j) * Interval::LN_2 - k);
    let mut e = -(j as i64);
    let mut sum = point(0.0);
    for i in 1..=l {
        term *= k / point((2 * i + 1) as f64);
        rebalance(&mut [&mut term], &mut e);
    }
    sum += term;
    let half_k2 = k * k / point(2.0);
    let lf = l as f64;
    let mut kk = 1u64;
    loop {
        let ratio = half_k2 / point(kk as f64 * (2.0 * lf + 2.0 * kk as f64 + 1.0));
        term *= ratio;
        sum += term;
        rebalance(&mut [&mut term, &mut sum], &mut e);
        let next = half_k2 / point((kk + 1) as f64 * (2.0 * lf + 2.0 * (kk + 1) as f64 + 1.0));
        let r = next.sup();
        if r < 0.5 && term.sup() < sum.inf() * 2f64.powi(-60) {
            let tail = (term * point(r) / (point(1.0) - point(r))).sup();
            sum += Interval::try_from((0.0, tail)).expect("tail >= 0");
            break;
        }
        kk += 1;
    }
    times_pow2(four_pi_norm(l) * sum, e)
}

/// c_l0 of |cos theta|, enclosed (exactly 0 for odd l).
pub fn abscos(l: usize) -> Interval {
    if l % 2 == 1 {
        return point(0.0);
    }
    let n = l / 2;
    let mut a = if n == 0 { point(0.5) } else { point(0.125) };
    for i in 1..n {
        a *= -point((2 * i - 1) as f64) / point((2 * (i + 2)) as f64);
    }
    four_pi_norm(l) * a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::basis::spherical::{gauss_legendre, legendre_column};
    use std::f64::consts::PI;

    /// 2 pi int g lambda_l0 by q-point Gauss-Legendre on each hemisphere (the old way).
    fn quadrature(l: usize, q: usize, g: impl Fn(f64) -> f64) -> f64 {
        let (x, w) = gauss_legendre(q);
        let mut total = 0.0;
        for (a, b) in [(-1.0, 0.0), (0.0, 1.0)] {
            let (c, h) = ((a + b) / 2.0, (b - a) / 2.0);
            for (xi, wi) in x.iter().zip(&w) {
                let t: f64 = c + h * xi;
                let lam = legendre_column(0, l, t, ((1.0 - t) * (1.0 + t)).sqrt())[l];
                total += h * wi * g(t) * lam;
            }
        }
        2.0 * PI * total
    }

    #[test]
    fn cap_matches_closed_form_and_quadrature() {
        // c_00 = sqrt(pi) (1 - e^{-2 kappa}) / kappa.
        for kappa in [0.5, 4.0, 30.0] {
            let c = cap(0, kappa);
            let want = PI.sqrt() * (-(-2.0 * kappa).exp_m1()) / kappa;
            assert!(
                c.contains(want) || (c.mid() - want).abs() < 1e-15 * want,
                "{c:?} {want}"
            );
            assert!(c.wid() < 1e-13 * want, "kappa {kappa}: {c:?}");
        }
        for (l, kappa) in [(1, 4.0), (5, 4.0), (40, 4.0), (7, 50.0), (100, 300.0)] {
            let c = cap(l, kappa);
            let q = quadrature(l, l + 2 * kappa as usize + 64, |x| {
                (-kappa * (1.0 - x)).exp()
            });
            assert!(
                (c.mid() - q).abs() < 1e-13,
                "l {l} kappa {kappa}: {c:?} vs {q}"
            );
        }
        // Large kappa: nothing overflows, and the enclosure stays tight.
        let c = cap(1000, 1e4);
        assert!(c.inf() > 0.0 && c.wid() < 1e-10 * c.sup(), "{c:?}");
    }

    #[test]
    fn abscos_matches_quadrature() {
        for l in 0..=60 {
            let c = abscos(l);
            let q = quadrature(l, l / 2 + 4, f64::abs);
            assert!((c.mid() - q).abs() < 1e-14, "l {l}: {c:?} vs {q}");
            assert!(c.wid() < 1e-14);
        }
        // c_00 = sqrt(pi), c_20 = sqrt(5 pi) / 4.
        assert!((abscos(0).mid() - PI.sqrt()).abs() < 1e-15);
        assert!((abscos(2).mid() - (5.0 * PI).sqrt() / 4.0).abs() < 1e-15);
    }
}
