//! Forward-mode slope arithmetic: a value enclosure V and slope enclosures S_1..S_N with
//!
//! ```text
//! v(y) - v(x) = sum_i s_i (y_i - x_i)   for some s_i in S_i,   for all x, y in the box.
//! ```
//!
//! Rules (x, y in the box; primes are values at y): sums add slopes; a product
//! a'b' - ab = a' (b' - b) + b (a' - a) gives S = A S_b + B S_a; a quotient
//! a'/b' - a/b = ((a' - a) - (a/b)(b' - b)) / b' gives S = (S_a - (A/B) S_b) / B; a unary f gives
//! f(u') - f(u) = F' (u' - u) with F' = [`slope_factor`] (the mean value theorem where f is
//! differentiable, the sign hull for abs, the whole line for a jump of sign); min and max lie
//! between the two operands' increments, so their slopes lie in the hull of both.
//!
//! Hence |v(y) - v(x)| <= sqrt(sum_i mag(S_i)^2) |y - x|: a Lipschitz bound on the box (where
//! v is differentiable the S_i also enclose the partial derivatives).

use super::elementary::{self, Func, div, slope_factor};
use super::{Directed, Interval, point};

#[derive(Clone, Copy, Debug)]
pub struct Slope<const N: usize> {
    /// Enclosure of the value over the box.
    pub v: Interval,
    /// Enclosures of the slopes along each seeded coordinate.
    pub s: [Interval; N],
}

impl<const N: usize> Slope<N> {
    /// A constant (zero slopes).
    pub fn constant(v: Interval) -> Self {
        Slope {
            v,
            s: [point(0.0); N],
        }
    }

    /// The coordinate ranging over `range`, with slope 1 along seed `axis` (None: held fixed
    /// as far as the slopes go, e.g. a coordinate that is not seeded).
    pub fn variable(range: Interval, axis: Option<usize>) -> Self {
        let mut s = [point(0.0); N];
        if let Some(a) = axis {
            s[a] = point(1.0);
        }
        Slope { v: range, s }
    }

    fn map_s(self, f: impl Fn(Interval) -> Interval) -> [Interval; N] {
        self.s.map(f)
    }

    /// sqrt(sum_i mag(S_i)^2), rounded up: the Lipschitz bound on the box (infinite when a
    /// slope is unbounded, NaN when the value is empty). Computed as s sqrt(sum (mag_i / s)^2)
    /// with s = max mag_i, so slopes above ~1e154 do not overflow the squares to inf (1e200 x
    /// had L = inf).
    pub fn slope_norm(&self) -> f64 {
        if self.v.is_empty() || self.s.iter().any(|s| s.is_empty()) {
            return f64::NAN;
        }
        let mags: Vec<f64> = self.s.iter().map(|s| s.mag()).collect();
        let scale = mags.iter().fold(0.0f64, |a, &m| a.max(m));
        if scale.is_infinite() {
            return f64::INFINITY;
        }
        if scale == 0.0 {
            return 0.0;
        }
        let mut sq = point(0.0);
        for &m in &mags {
            sq += (point(m) / point(scale)).sqr();
        }
        (sq.sqrt() * point(scale)).sup()
    }

    pub fn apply<D: Directed>(self, f: Func) -> Self {
        let v = elementary::apply::<D>(f, self.v);
        let k = slope_factor::<D>(f, self.v, v);
        Slope {
            v,
            s: self.map_s(|s| k * s),
        }
    }

    pub fn powi(self, n: i32) -> Self {
        let v = elementary::powi(self.v, n);
        let k = point(n as f64) * elementary::powi(self.v, n - 1);
        Slope {
            v,
            s: self.map_s(|s| k * s),
        }
    }

    /// u^c for a real non-integer constant c (slope factor c u^(c-1), unbounded at u = 0 when
    /// c < 1).
    pub fn powc<D: Directed>(self, c: Interval) -> Self {
        let v = elementary::powc::<D>(self.v, c);
        let k = c * elementary::powc::<D>(self.v, c - point(1.0));
        Slope {
            v,
            s: self.map_s(|s| k * s),
        }
    }

    /// u^w = exp(w ln u) for a non-constant exponent.
    pub fn pow<D: Directed>(self, w: Self) -> Self {
        (w * self.apply::<D>(Func::Ln)).apply::<D>(Func::Exp)
    }

    pub fn min(self, o: Self) -> Self {
        self.select(o, self.v.min(o.v), true)
    }

    pub fn max(self, o: Self) -> Self {
        self.select(o, self.v.max(o.v), false)
    }

    /// min or max: the slope of the operand that wins on the whole box, else the hull of both.
    fn select(self, o: Self, v: Interval, min: bool) -> Self {
        let self_wins = if min {
            self.v.sup() < o.v.inf()
        } else {
            self.v.inf() > o.v.sup()
        };
        let other_wins = if min {
            o.v.sup() < self.v.inf()
        } else {
            o.v.inf() > self.v.sup()
        };
        let mut s = self.s;
        for (i, si) in s.iter_mut().enumerate() {
            *si = if self_wins {
                self.s[i]
            } else if other_wins {
                o.s[i]
            } else {
                self.s[i].convex_hull(o.s[i])
            };
        }
        Slope { v, s }
    }
}

impl<const N: usize> std::ops::Add for Slope<N> {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        let mut s = self.s;
        for (a, b) in s.iter_mut().zip(o.s) {
            *a += b;
        }
        Slope { v: self.v + o.v, s }
    }
}

impl<const N: usize> std::ops::Sub for Slope<N> {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        let mut s = self.s;
        for (a, b) in s.iter_mut().zip(o.s) {
            *a -= b;
        }
        Slope { v: self.v - o.v, s }
    }
}

impl<const N: usize> std::ops::Neg for Slope<N> {
    type Output = Self;
    fn neg(self) -> Self {
        Slope {
            v: -self.v,
            s: self.map_s(|s| -s),
        }
    }
}

impl<const N: usize> std::ops::Mul for Slope<N> {
    type Output = Self;
    fn mul(self, o: Self) -> Self {
        let mut s = self.s;
        for (i, si) in s.iter_mut().enumerate() {
            *si = self.v * o.s[i] + o.v * self.s[i];
        }
        Slope { v: self.v * o.v, s }
    }
}

impl<const N: usize> std::ops::Div for Slope<N> {
    type Output = Self;
    fn div(self, o: Self) -> Self {
        let q = div(self.v, o.v);
        let mut s = self.s;
        for (i, si) in s.iter_mut().enumerate() {
            *si = div(self.s[i] - q * o.s[i], o.v);
        }
        Slope { v: q, s }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Certified, iv};
    use super::*;

    #[test]
    fn product_rule_and_chain_rule_bound_the_gradient() {
        // v(x, y) = sin(3 x) * y^2 on [0, 1]^2: |grad v| <= sqrt(9 + 4) on the whole box.
        let x = Slope::<2>::variable(iv(0.0, 1.0), Some(0));
        let y = Slope::<2>::variable(iv(0.0, 1.0), Some(1));
        let v = (Slope::constant(point(3.0)) * x).apply::<Certified>(Func::Sin) * y.powi(2);
        assert!(v.v.contains(0.0) && v.v.sup() <= 1.0);
        let l = v.slope_norm();
        assert!((13f64.sqrt()..=5.0).contains(&l), "{l}");
        // At a point the slopes are the partial derivatives.
        let x = Slope::<2>::variable(point(0.5), Some(0));
        let y = Slope::<2>::variable(point(0.7), Some(1));
        let v = (Slope::constant(point(3.0)) * x).apply::<Certified>(Func::Sin) * y.powi(2);
        let dx = 3.0 * 1.5f64.cos() * 0.49;
        let dy = 1.5f64.sin() * 1.4;
        assert!(v.s[0].contains(dx) && v.s[0].wid() < 1e-14);
        assert!(v.s[1].contains(dy) && v.s[1].wid() < 1e-14);
    }

    #[test]
    fn quotient_kink_and_jump() {
        let x = Slope::<1>::variable(iv(1.0, 2.0), Some(0));
        // 1/x on [1, 2]: slope in [-1, -1/4].
        let r = Slope::constant(point(1.0)) / x;
        assert!(r.s[0].inf() >= -1.0 - 1e-12 && r.s[0].sup() <= -0.25 + 1e-12);
        assert!(r.s[0].contains(-1.0) && r.s[0].contains(-0.25));
        let x = Slope::<1>::variable(iv(-1.0, 1.0), Some(0));
        let a = x.apply::<Certified>(Func::Abs);
        assert_eq!(a.slope_norm(), 1.0);
        let s = x.apply::<Certified>(Func::Sign);
        assert_eq!(s.slope_norm(), f64::INFINITY);
        // sign of a constant has slope 0 even where the constant's enclosure straddles 0.
        let c = Slope::<1>::constant(iv(-1e-20, 1e-20)).apply::<Certified>(Func::Sign);
        assert_eq!(c.slope_norm(), 0.0);
        // max(x, 0.5) on [-1, 1]: slopes between 0 and 1.
        let m = x.max(Slope::constant(point(0.5)));
        assert_eq!((m.s[0].inf(), m.s[0].sup()), (0.0, 1.0));
    }

    #[test]
    fn huge_slopes_have_a_finite_norm() {
        // 1e200 (x + y): the squares overflow f64, the norm sqrt(2) 1e200 does not.
        let x = Slope::<2>::variable(iv(0.0, 1.0), Some(0));
        let y = Slope::<2>::variable(iv(0.0, 1.0), Some(1));
        let v = Slope::constant(point(1e200)) * (x + y);
        let l = v.slope_norm();
        assert!(
            l >= 2f64.sqrt() * 1e200 && l <= 2f64.sqrt() * 1e200 * (1.0 + 1e-14),
            "{l:e}"
        );
        // Small ones keep their digits: 3-4-5.
        let w = Slope::constant(point(3.0)) * x + Slope::constant(point(4.0)) * y;
        assert!(w.slope_norm() >= 5.0 && w.slope_norm() <= 5.0 * (1.0 + 1e-15));
    }
}
