//! Numerical helpers with closed forms: accurate trigonometry in turns, the modified Bessel
//! function I_n at integer order, Fourier integrals of monomials on \[0,1), and polynomial
//! maxima on \[0,1\] by recursive root isolation.

use num_complex::Complex;
use std::f64::consts::TAU;

/// `t` in \[-1/2, 1/2\] with `m * x = t (mod 1)`, accurate to about one ulp of 1 even when
/// `m * x` is large: the rounding error of the product is recovered exactly with an FMA, so
/// `sin(2 pi m x)` keeps full absolute accuracy for large integer frequencies `m`.
pub fn reduce_turns(m: f64, x: f64) -> f64 {
    let p = m * x;
    let e = m.mul_add(x, -p); // exact: m * x = p + e
    let r = p - p.round(); // exact (Sterbenz), |r| <= 1/2
    let t = r + e;
    t - t.round()
}

/// sin(2 pi m x), accurate in absolute terms for large `m * x` (see [`reduce_turns`]).
pub fn sin_turns(m: f64, x: f64) -> f64 {
    (TAU * reduce_turns(m, x)).sin()
}

/// cos(2 pi m x), accurate in absolute terms for large `m * x` (see [`reduce_turns`]).
pub fn cos_turns(m: f64, x: f64) -> f64 {
    (TAU * reduce_turns(m, x)).cos()
}

/// exp(-2 pi i t) for a phase `t` in turns (already reduced or small).
pub fn cis_turns_neg(t: f64) -> Complex<f64> {
    let t = t - t.round();
    let (s, c) = (TAU * t).sin_cos();
    Complex::new(c, -s)
}

/// Modified Bessel function of the first kind I_n(x) for integer order (I_{-n} = I_n), by its
/// power series sum_m (x/2)^(2m+n) / (m! (m+n)!). All terms are positive, so for moderate `x`
/// (|x| <= ~20) the sum is accurate to a few ulps; terms that underflow are genuinely negligible.
pub fn bessel_i(n: i64, x: f64) -> f64 {
    let n = n.unsigned_abs();
    let half = 0.5 * x;
    // t0 = (x/2)^n / n!, as a running product so neither factor overflows.
    let mut term = 1.0;
    for j in 1..=n {
        term *= half / j as f64;
        if term == 0.0 {
            return 0.0;
        }
    }
    let q = half * half;
    let mut sum = term;
    let mut m = 0u64;
    loop {
        m += 1;
        term *= q / (m as f64 * (m + n) as f64);
        sum += term;
        if term <= sum * 1e-18 {
            return sum;
        }
    }
}

/// The Fourier coefficient of exp(sin(2 pi x)) at frequency w: I_w(1) (-i)^w.
/// (From the generating function exp((z/2)(t + 1/t)) = sum_k I_k(z) t^k with t = -i e^{i theta}.)
pub fn expsin_coefficient(w: i64) -> Complex<f64> {
    let b = bessel_i(w, 1.0);
    match w.rem_euclid(4) {
        0 => Complex::new(b, 0.0),
        1 => Complex::new(0.0, -b),
        2 => Complex::new(-b, 0.0),
        _ => Complex::new(0.0, b),
    }
}

/// max over t of |cos t| e^{sin t}, attained where sin t = (sqrt 5 - 1) / 2 (the root of
/// 1 - s - s^2 = 0 from d/ds \[(1 - s^2) e^{2s}\] = 0), nudged up by two ulps so the f64 value
/// never under-estimates the real number (~1.458528).
pub fn expsin_slope_max() -> f64 {
    let s = (5f64.sqrt() - 1.0) / 2.0;
    ((1.0 - s * s).sqrt() * s.exp()).next_up().next_up()
}

/// Integrals I_k = int_0^1 x^k exp(-2 pi i w x) dx for k = 0..=kmax.
///
/// w = 0: 1 / (k + 1). Otherwise, with a = -2 pi i w and e^a = 1, integration by parts gives
/// I_0 = 0 and I_k = (1 - k I_{k-1}) / a. This forward recurrence multiplies errors by k / |a|,
/// so it is used only for k <= |a|; above that the backward form I_{k-1} = (1 - a I_k) / k
/// (errors multiplied by |a| / k < 1) is run down from an index N with I_N = 0, where N is
/// chosen so the starting error (at most 1 / (N + 1)) has decayed below 1e-20.
pub fn monomial_fourier(kmax: usize, w: i64) -> Vec<Complex<f64>> {
    if w == 0 {
        return (0..=kmax)
            .map(|k| Complex::new(1.0 / (k as f64 + 1.0), 0.0))
            .collect();
    }
    let a = Complex::new(0.0, -TAU * w as f64);
    let abs_a = a.norm();
    let kf = kmax.min(abs_a.floor() as usize);
    let mut out = vec![Complex::new(0.0, 0.0); kmax + 1];
    for k in 1..=kf {
        out[k] = (Complex::new(1.0, 0.0) - out[k - 1] * k as f64) / a;
    }
    if kf < kmax {
        // Backward recurrence for k in kf+1..=kmax, all of which satisfy k > |a|.
        let k_lo = kf + 1;
        let mut n_start = kmax + 16;
        loop {
            let mut err = 1.0 / (n_start as f64 + 1.0);
            for i in (k_lo + 1)..=n_start {
                err *= abs_a / i as f64;
            }
            if err < 1e-20 {
                break;
            }
            n_start += 16;
        }
        let mut ik = Complex::new(0.0, 0.0); // I_N ~ 0
        for k in ((k_lo + 1)..=n_start).rev() {
            // ik = I_k; compute I_{k-1}.
            ik = (Complex::new(1.0, 0.0) - a * ik) / k as f64;
            if k - 1 <= kmax {
                out[k - 1] = ik;
            }
        }
    }
    out
}

/// Fourier coefficient int_0^1 p(x) exp(-2 pi i w x) dx of p(x) = sum_k c\[k\] x^k.
pub fn poly_fourier(c: &[f64], w: i64) -> Complex<f64> {
    if c.is_empty() {
        return Complex::new(0.0, 0.0);
    }
    let ik = monomial_fourier(c.len() - 1, w);
    c.iter().zip(&ik).map(|(&ck, &i)| i * ck).sum()
}

/// p(x) = sum_k c\[k\] x^k by Horner's rule.
pub fn poly_eval(c: &[f64], x: f64) -> f64 {
    c.iter().rev().fold(0.0, |acc, &ck| acc.mul_add(x, ck))
}

/// Coefficients of p'.
pub fn poly_deriv(c: &[f64]) -> Vec<f64> {
    c.iter()
        .enumerate()
        .skip(1)
        .map(|(k, &ck)| ck * k as f64)
        .collect()
}

/// Drop trailing zero coefficients.
pub fn poly_trim(c: &[f64]) -> Vec<f64> {
    let mut v = c.to_vec();
    while v.last() == Some(&0.0) {
        v.pop();
    }
    v
}

/// Real roots of p in \[lo, hi\], by recursive isolation: between consecutive roots of p' the
/// polynomial is monotone, so each such interval holds at most one root, found by bisection to
/// full precision. Roots are returned sorted; a root shared with p' (a double root) is found when
/// p vanishes at the isolating point itself.
pub fn poly_roots_in(c: &[f64], lo: f64, hi: f64) -> Vec<f64> {
    let c = poly_trim(c);
    match c.len() {
        0 | 1 => return Vec::new(),
        2 => {
            let r = -c[0] / c[1];
            return if (lo..=hi).contains(&r) {
                vec![r]
            } else {
                Vec::new()
            };
        }
        _ => {}
    }
    let mut pts = vec![lo];
    pts.extend(poly_roots_in(&poly_deriv(&c), lo, hi));
    pts.push(hi);
    let mut roots: Vec<f64> = Vec::new();
    let push = |r: f64, roots: &mut Vec<f64>| {
        if roots.last().is_none_or(|&last| r > last) {
            roots.push(r);
        }
    };
    for win in pts.windows(2) {
        let (mut a, mut b) = (win[0], win[1]);
        let (fa, fb) = (poly_eval(&c, a), poly_eval(&c, b));
        if fa == 0.0 {
            push(a, &mut roots);
            continue;
        }
        if fb == 0.0 {
            push(b, &mut roots);
            continue;
        }
        if (fa > 0.0) == (fb > 0.0) {
            continue;
        }
        let sa = fa > 0.0;
        loop {
            let m = 0.5 * (a + b);
            if m <= a || m >= b {
                break;
            }
            let fm = poly_eval(&c, m);
            if fm == 0.0 {
                a = m;
                b = m;
                break;
            }
            if (fm > 0.0) == sa {
                a = m;
            } else {
                b = m;
            }
        }
        push(0.5 * (a + b), &mut roots);
    }
    roots
}

/// A safe upper bound for max |p(x)| over \[0, 1\], tight to about 1e-12 relative.
///
/// Candidates are the endpoints and the roots of p' in \[0, 1\] (found by [`poly_roots_in`]).
/// At x = 0 the value is c\[0\] exactly. At x = 1 and at interior critical points the Horner value
/// is increased by its rounding-error bound 2 n eps sum |c_k| (zero at x = 1 when every partial
/// sum is an integer below 2^53, so e.g. x^2 gets exactly 1); interior points further get a
/// relative margin of 1e-12 for the located critical point.
pub fn poly_max_abs(c: &[f64]) -> f64 {
    let c = poly_trim(c);
    if c.is_empty() {
        return 0.0;
    }
    let n = c.len() as f64;
    let abs_sum: f64 = c.iter().map(|x| x.abs()).sum();
    let horner_err = 2.0 * n * f64::EPSILON * abs_sum;
    let integer_exact = c.iter().all(|x| x.fract() == 0.0) && abs_sum < 2f64.powi(52);
    let mut best = c[0].abs();
    let at_one = poly_eval(&c, 1.0).abs() + if integer_exact { 0.0 } else { horner_err };
    best = best.max(at_one);
    for r in poly_roots_in(&poly_deriv(&c), 0.0, 1.0) {
        if r > 0.0 && r < 1.0 {
            let v = (poly_eval(&c, r).abs() + horner_err) * (1.0 + 1e-12);
            best = best.max(v);
        }
    }
    best
}

#[cfg(test)]
#[allow(clippy::excessive_precision)] // reference values as published
mod tests {
    use super::*;

    #[test]
    fn bessel_known_values() {
        // Abramowitz & Stegun table 9.8 / mpmath: I_0(1), I_1(1), I_2(1), I_5(1).
        assert!((bessel_i(0, 1.0) - 1.266_065_877_752_008_3).abs() < 5e-16);
        assert!((bessel_i(1, 1.0) - 0.565_159_103_992_485_0).abs() < 3e-16);
        assert!((bessel_i(2, 1.0) - 0.135_747_669_767_038_28).abs() < 1e-16);
        assert!((bessel_i(5, 1.0) - 2.714_631_559_569_718_75e-4).abs() < 1e-19);
        assert_eq!(bessel_i(-3, 1.0), bessel_i(3, 1.0));
        assert!(bessel_i(400, 1.0) == 0.0);
    }

    #[test]
    fn expsin_slope_is_a_max() {
        let l = expsin_slope_max();
        let mut m: f64 = 0.0;
        for j in 0..200_000 {
            let t = TAU * j as f64 / 200_000.0;
            m = m.max(t.cos().abs() * t.sin().exp());
        }
        assert!(l >= m && l - m < 1e-9, "{l} {m}");
    }

    #[test]
    fn monomials_against_closed_forms() {
        // int_0^1 x e^{-2 pi i w x} dx = i / (2 pi w); x^2: i/(2 pi w) + 1/(2 pi^2 w^2).
        for w in [-7i64, -1, 1, 2, 50] {
            let i = monomial_fourier(12, w);
            let wf = w as f64;
            assert!(i[0].norm() < 1e-300);
            assert!((i[1] - Complex::new(0.0, 1.0 / (TAU * wf))).norm() < 1e-17);
            let x2 = Complex::new(
                1.0 / (2.0 * std::f64::consts::PI.powi(2) * wf * wf),
                1.0 / (TAU * wf),
            );
            assert!((i[2] - x2).norm() < 1e-17);
            for (k, v) in i.iter().enumerate() {
                assert!(v.norm() <= 1.0 / (k as f64 + 1.0) + 1e-15);
            }
        }
    }

    #[test]
    fn monomial_recurrences_agree_with_series() {
        // Series: I_k = sum_m a^m / m! / (k + m + 1), fine for small |a| (w = 1) in long double-free
        // f64 because the terms only reach e^{2 pi} ~ 535 before decaying.
        let a = Complex::new(0.0, -TAU);
        let ik = monomial_fourier(40, 1);
        for (k, v) in ik.iter().enumerate() {
            let mut term = Complex::new(1.0, 0.0);
            let mut sum = Complex::new(0.0, 0.0);
            for m in 0..200 {
                sum += term / (k as f64 + m as f64 + 1.0);
                term = term * a / (m as f64 + 1.0);
            }
            assert!((sum - v).norm() < 1e-13, "k={k}: {sum} vs {v}");
        }
    }

    #[test]
    fn poly_max_and_roots() {
        // (x - 0.3)(x - 0.7) = x^2 - x + 0.21: max |.| on [0,1] is 0.21 (ends), min at 0.5 is -0.04.
        let c = [0.21, -1.0, 1.0];
        let r = poly_roots_in(&c, 0.0, 1.0);
        assert_eq!(r.len(), 2);
        assert!((r[0] - 0.3).abs() < 1e-15 && (r[1] - 0.7).abs() < 1e-15);
        let m = poly_max_abs(&c);
        assert!((0.21..0.21 + 1e-14).contains(&m));
        // 1 - 8x + 8x^2 (Chebyshev-like): max |.| = 1 at the ends; interior extremum -1 at 0.5.
        let t = [1.0, -8.0, 8.0];
        let m = poly_max_abs(&t);
        assert!((1.0..1.0 + 1e-11).contains(&m), "{m}");
        assert_eq!(poly_max_abs(&[0.0, 0.0, 1.0]), 1.0);
        assert_eq!(poly_max_abs(&[0.0, 1000.0]), 1000.0);
        // cubic with interior max: x(1-x)(x - 2) ... p = -x^3 + 3x^2 - 2x on [0,1]: extremum at
        // x = 1 - 1/sqrt(3), |p| = 2/(3 sqrt 3) ~ 0.3849.
        let p = [0.0, -2.0, 3.0, -1.0];
        let exact = 2.0 / (3.0 * 3f64.sqrt());
        let m = poly_max_abs(&p);
        assert!(m >= exact && m - exact < 1e-12, "{m} {exact}");
    }

    #[test]
    fn turns_reduction_is_accurate() {
        let x = 0.123_456_789;
        let m = 1_048_579.0;
        let t = reduce_turns(m, x);
        assert!(t.abs() <= 0.5);
        // Compare against exact rational arithmetic via i128: x is a dyadic rational.
        let (mant, exp) = {
            let bits = x.to_bits();
            let e = ((bits >> 52) & 0x7ff) as i32 - 1075;
            let mant = (bits & ((1u64 << 52) - 1)) | (1u64 << 52);
            (mant as i128, e)
        };
        let prod = mant * m as i128; // m * x = prod * 2^exp
        let scale = 1i128 << (-exp);
        let frac = (prod % scale) as f64 / scale as f64;
        let exact = frac - frac.round();
        assert!((t - exact).abs() < 1e-16, "{t} {exact}");
    }
}
