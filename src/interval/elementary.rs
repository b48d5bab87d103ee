//! Interval extensions of the elementary functions: `f(X)` contains f(x) for every real x in X.
//!
//! Monotone pieces use the directed endpoint values of [`Directed`]; sin, cos and tan find which
//! extrema or poles X covers from its quadrants (x / (pi/2) in interval arithmetic, rounded
//! outward, so an endpoint within rounding of a multiple of pi/2 counts on both sides: the result
//! can only get wider). Domain errors give the empty interval, poles infinite endpoints (see the
//! module docs of [`super`]).

use super::{Directed, Elem, Interval, iv, point};

/// The unary functions of expressions, with their interval extension ([`apply`]) and the
/// interval factor of their slope ([`slope_factor`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Func {
    Exp,
    Ln,
    Sqrt,
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Tanh,
    Abs,
    Sign,
}

impl Func {
    /// All functions with their names in expressions.
    pub const ALL: [(&'static str, Func); 15] = [
        ("exp", Func::Exp),
        ("log", Func::Ln),
        ("ln", Func::Ln),
        ("sqrt", Func::Sqrt),
        ("sin", Func::Sin),
        ("cos", Func::Cos),
        ("tan", Func::Tan),
        ("asin", Func::Asin),
        ("acos", Func::Acos),
        ("atan", Func::Atan),
        ("sinh", Func::Sinh),
        ("cosh", Func::Cosh),
        ("tanh", Func::Tanh),
        ("abs", Func::Abs),
        ("sign", Func::Sign),
    ];

    /// The point function in f64 (std, round to nearest): what sampling evaluates.
    pub fn eval(self, x: f64) -> f64 {
        match self {
            Func::Exp => x.exp(),
            Func::Ln => x.ln(),
            Func::Sqrt => x.sqrt(),
            Func::Sin => x.sin(),
            Func::Cos => x.cos(),
            Func::Tan => x.tan(),
            Func::Asin => x.asin(),
            Func::Acos => x.acos(),
            Func::Atan => x.atan(),
            Func::Sinh => x.sinh(),
            Func::Cosh => x.cosh(),
            Func::Tanh => x.tanh(),
            Func::Abs => x.abs(),
            Func::Sign => {
                if x == 0.0 {
                    0.0
                } else {
                    x.signum()
                }
            }
        }
    }
}

/// f(X).
pub fn apply<D: Directed>(f: Func, x: Interval) -> Interval {
    if x.is_empty() {
        return x;
    }
    match f {
        Func::Exp => exp::<D>(x),
        Func::Ln => ln::<D>(x),
        Func::Sqrt => sqrt(x),
        Func::Sin => sin::<D>(x),
        Func::Cos => cos::<D>(x),
        Func::Tan => tan::<D>(x),
        Func::Asin => monotone::<D>(Elem::Asin, restrict(x, -1.0, 1.0)),
        Func::Acos => {
            let x = restrict(x, -1.0, 1.0);
            if x.is_empty() {
                return x;
            }
            iv(D::down(Elem::Acos, x.sup()), D::up(Elem::Acos, x.inf()))
        }
        Func::Atan => monotone::<D>(Elem::Atan, x),
        Func::Sinh => sinh::<D>(x),
        Func::Cosh => cosh::<D>(x),
        Func::Tanh => clamp(monotone::<D>(Elem::Tanh, x), -1.0, 1.0),
        Func::Abs => x.abs(),
        Func::Sign => sign(x),
    }
}

/// An interval F' with f(y) - f(x) = F' (y - x) for some F' in it, for all x, y in X (a slope
/// enclosure: f' over X by the mean value theorem where f is differentiable; for abs the sign
/// hull; for sign 0 or the whole line). `fx` is f(X).
pub fn slope_factor<D: Directed>(f: Func, x: Interval, fx: Interval) -> Interval {
    let one = point(1.0);
    match f {
        Func::Exp => fx,
        Func::Ln => div(one, x),
        Func::Sqrt => div(point(0.5), fx),
        Func::Sin => cos::<D>(x),
        Func::Cos => -sin::<D>(x),
        Func::Tan => one + fx.sqr(),
        Func::Asin => div(one, sqrt(one - x.sqr())),
        Func::Acos => -div(one, sqrt(one - x.sqr())),
        Func::Atan => div(one, one + x.sqr()),
        Func::Sinh => cosh::<D>(x),
        Func::Cosh => sinh::<D>(x),
        Func::Tanh => one - fx.sqr(),
        Func::Abs => {
            if x.inf() >= 0.0 {
                one
            } else if x.sup() <= 0.0 {
                -one
            } else {
                iv(-1.0, 1.0)
            }
        }
        // A jump where the argument changes sign: no finite slope (0 times it stays 0).
        Func::Sign => {
            if x.inf() > 0.0 || x.sup() < 0.0 || (x.inf() == 0.0 && x.sup() == 0.0) {
                point(0.0)
            } else {
                Interval::ENTIRE
            }
        }
    }
}

/// X / Y; division by exactly zero is a pole (the whole line), not the empty set.
pub fn div(x: Interval, y: Interval) -> Interval {
    if x.is_empty() || y.is_empty() {
        return Interval::EMPTY;
    }
    if y.inf() == 0.0 && y.sup() == 0.0 {
        return Interval::ENTIRE;
    }
    x / y
}

/// X ∩ [lo, hi] when X lies inside, the empty interval (a domain error) when it does not.
fn restrict(x: Interval, lo: f64, hi: f64) -> Interval {
    if x.inf() < lo || x.sup() > hi {
        Interval::EMPTY
    } else {
        x
    }
}

fn clamp(x: Interval, lo: f64, hi: f64) -> Interval {
    if x.is_empty() {
        return x;
    }
    iv(x.inf().max(lo), x.sup().min(hi))
}

fn monotone<D: Directed>(f: Elem, x: Interval) -> Interval {
    if x.is_empty() {
        return x;
    }
    iv(D::down(f, x.inf()), D::up(f, x.sup()))
}

/// Beyond this |x|, exp, sinh and cosh leave the f64 range.
const BIG: f64 = 709.0;
/// exp(x) < f64::MIN_POSITIVE for x < SMALL (exp(-708.5) = 2.0e-308).
const SMALL: f64 = -708.5;

pub fn exp<D: Directed>(x: Interval) -> Interval {
    if x.is_empty() {
        return x;
    }
    let (a, b) = (x.inf(), x.sup());
    let lo = if a < SMALL {
        0.0
    } else if a > BIG {
        f64::MAX
    } else {
        D::down(Elem::Exp, a).max(0.0)
    };
    let hi = if b > BIG {
        f64::INFINITY
    } else if b < SMALL {
        f64::MIN_POSITIVE
    } else {
        D::up(Elem::Exp, b)
    };
    iv(lo, hi)
}

/// ln X: empty if X has a negative part, -inf lower end if it touches 0.
pub fn ln<D: Directed>(x: Interval) -> Interval {
    if x.is_empty() || x.inf() < 0.0 {
        return Interval::EMPTY;
    }
    let (a, b) = (x.inf(), x.sup());
    let lo = if a == 0.0 {
        f64::NEG_INFINITY
    } else if a == f64::INFINITY {
        f64::MAX
    } else {
        D::down(Elem::Ln, a)
    };
    let hi = if b == 0.0 {
        f64::MIN
    } else if b == f64::INFINITY {
        f64::INFINITY
    } else {
        D::up(Elem::Ln, b)
    };
    iv(lo, hi)
}

/// sqrt X (inari, correctly rounded outward); empty if X has a negative part.
pub fn sqrt(x: Interval) -> Interval {
    if x.is_empty() || x.inf() < 0.0 {
        return Interval::EMPTY;
    }
    x.sqrt()
}

/// sign X as an interval of {-1, 0, 1} values (their hull).
pub fn sign(x: Interval) -> Interval {
    if x.is_empty() {
        return x;
    }
    let s = |v: f64| {
        if v > 0.0 {
            1.0
        } else if v < 0.0 {
            -1.0
        } else {
            0.0
        }
    };
    iv(s(x.inf()), s(x.sup()))
}

pub fn sinh<D: Directed>(x: Interval) -> Interval {
    if x.is_empty() {
        return x;
    }
    let (a, b) = (x.inf(), x.sup());
    let lo = if a < -BIG {
        f64::NEG_INFINITY
    } else if a > BIG {
        f64::MAX
    } else {
        D::down(Elem::Sinh, a)
    };
    let hi = if b > BIG {
        f64::INFINITY
    } else if b < -BIG {
        f64::MIN
    } else {
        D::up(Elem::Sinh, b)
    };
    iv(lo, hi)
}

pub fn cosh<D: Directed>(x: Interval) -> Interval {
    if x.is_empty() {
        return x;
    }
    let (m, n) = (x.mig(), x.mag());
    let lo = if m > BIG {
        f64::MAX
    } else {
        D::down(Elem::Cosh, m).max(1.0)
    };
    let hi = if n > BIG {
        f64::INFINITY
    } else {
        D::up(Elem::Cosh, n)
    };
    iv(lo, hi)
}

/// Quadrant indices (qa, qb) with a in quadrant qa or later and b in quadrant qb or earlier,
/// quadrant q being [q pi/2, (q+1) pi/2]: floor of x / (pi/2) computed in interval arithmetic,
/// taking the lower candidate for a and the upper for b. None when X is too wide (>= 6, so it
/// may cover a whole period) or too far out for the quotient to resolve quadrants.
fn quadrants(x: Interval) -> Option<(i64, i64)> {
    let (a, b) = (x.inf(), x.sup());
    if !(a.abs() <= 1e15 && b.abs() <= 1e15) || b - a >= 6.0 {
        return None;
    }
    let ta = point(a) / Interval::FRAC_PI_2;
    let tb = point(b) / Interval::FRAC_PI_2;
    Some((ta.inf().floor() as i64, tb.sup().floor() as i64))
}

/// Whether some q with q = r (mod 4) satisfies qa < q <= qb: X crosses the quadrant boundary
/// q pi/2.
fn crosses(qa: i64, qb: i64, r: i64) -> bool {
    let q = qa + 1 + (r - (qa + 1)).rem_euclid(4);
    q <= qb
}

/// sin or cos from its endpoint values and which extrema X covers (max at boundaries
/// q = r_max mod 4, min at r_min mod 4).
fn periodic<D: Directed>(f: Elem, x: Interval, r_max: i64, r_min: i64) -> Interval {
    if x.is_empty() {
        return x;
    }
    let Some((qa, qb)) = quadrants(x) else {
        return iv(-1.0, 1.0);
    };
    let (a, b) = (x.inf(), x.sup());
    let lo = if crosses(qa, qb, r_min) {
        -1.0
    } else {
        D::down(f, a).min(D::down(f, b))
    };
    let hi = if crosses(qa, qb, r_max) {
        1.0
    } else {
        D::up(f, a).max(D::up(f, b))
    };
    iv(lo.max(-1.0), hi.min(1.0))
}

/// sin X: maximum at pi/2 + 2 k pi (boundary q = 1 mod 4), minimum at q = 3 mod 4.
pub fn sin<D: Directed>(x: Interval) -> Interval {
    periodic::<D>(Elem::Sin, x, 1, 3)
}

/// cos X: maximum at 2 k pi (q = 0 mod 4), minimum at pi + 2 k pi (q = 2 mod 4).
pub fn cos<D: Directed>(x: Interval) -> Interval {
    periodic::<D>(Elem::Cos, x, 0, 2)
}

/// tan X: increasing between its poles at odd multiples of pi/2; the whole line across one.
pub fn tan<D: Directed>(x: Interval) -> Interval {
    if x.is_empty() {
        return x;
    }
    match quadrants(x) {
        Some((qa, qb)) if !crosses(qa, qb, 1) && !crosses(qa, qb, 3) => {
            iv(D::down(Elem::Tan, x.inf()), D::up(Elem::Tan, x.sup()))
        }
        _ => Interval::ENTIRE,
    }
}

/// [a, a]^n by binary powering in interval arithmetic (each product rounded outward).
fn pow_point(a: f64, n: u32) -> Interval {
    let mut result = point(1.0);
    let mut base = point(a);
    let mut n = n;
    while n > 0 {
        if n & 1 == 1 {
            result *= base;
        }
        n >>= 1;
        if n > 0 {
            base *= base;
        }
    }
    result
}

/// X^n for an integer n (n = 0 gives 1, as f64's powi does even at 0); a negative n is
/// 1 / X^|n|, a pole when X contains 0.
pub fn powi(x: Interval, n: i32) -> Interval {
    if x.is_empty() {
        return x;
    }
    if n == 0 {
        return point(1.0);
    }
    let m = n.unsigned_abs();
    let pos = if m.is_multiple_of(2) {
        let (a, b) = (x.mig(), x.mag());
        iv(pow_point(a, m).inf(), pow_point(b, m).sup())
    } else {
        iv(pow_point(x.inf(), m).inf(), pow_point(x.sup(), m).sup())
    };
    if n > 0 { pos } else { div(point(1.0), pos) }
}

/// X^c for a real, non-integer constant c: defined for X >= 0 (empty otherwise), increasing for
/// c > 0 and decreasing for c < 0 (a pole at 0), computed as exp(c ln x) at the endpoints.
pub fn powc<D: Directed>(x: Interval, c: Interval) -> Interval {
    if x.is_empty() || c.is_empty() || x.inf() < 0.0 {
        return Interval::EMPTY;
    }
    let at = |t: f64| {
        if t == 0.0 {
            if c.inf() > 0.0 {
                point(0.0)
            } else {
                Interval::ENTIRE
            }
        } else {
            exp::<D>(c * ln::<D>(point(t)))
        }
    };
    let (ea, eb) = (at(x.inf()), at(x.sup()));
    ea.convex_hull(eb).intersection(iv(0.0, f64::INFINITY))
}

/// X^Y for a non-constant exponent: exp(Y ln X), empty if X has a negative part.
pub fn pow<D: Directed>(x: Interval, y: Interval) -> Interval {
    exp::<D>(y * ln::<D>(x))
}

#[cfg(test)]
mod tests {
    use super::super::{Certified, Guard};
    use super::*;
    use std::f64::consts::{FRAC_PI_2, PI};

    /// Every point value of f on a fine grid of X (and the ends) lies in f(X).
    fn encloses<D: Directed>(f: Func, a: f64, b: f64) {
        let y = apply::<D>(f, iv(a, b));
        for i in 0..=400 {
            let x = a + (b - a) * i as f64 / 400.0;
            let v = f.eval(x.min(b));
            if v.is_nan() {
                continue;
            }
            assert!(
                y.contains(v) || (v.is_infinite() && y.sup().is_infinite()),
                "{f:?}([{a}, {b}]) = {y:?} misses f({x}) = {v}"
            );
        }
    }

    #[test]
    fn enclosures_contain_every_point_value() {
        let boxes = [
            (-3.0, 2.5),
            (0.1, 0.2),
            (1.5, 1.6),
            (FRAC_PI_2 - 1e-9, FRAC_PI_2 + 1e-9),
            (4.0, 9.0),
            (-20.0, -19.0),
            (-0.5, 0.5),
            (1e-3, 7.0),
        ];
        for (_, f) in Func::ALL {
            for &(a, b) in &boxes {
                let (a, b) = match f {
                    Func::Ln | Func::Sqrt => (a.abs().min(b.abs()), a.abs().max(b.abs())),
                    Func::Asin | Func::Acos => (a.clamp(-1.0, 1.0), b.clamp(-1.0, 1.0)),
                    _ => (a, b),
                };
                encloses::<Certified>(f, a, b);
                encloses::<Guard>(f, a, b);
            }
        }
    }

    #[test]
    fn extrema_and_poles_are_found() {
        let s = sin::<Certified>(iv(1.5, 1.6));
        assert_eq!(s.sup(), 1.0);
        assert!(s.inf() > 0.99);
        let c = cos::<Certified>(iv(3.0, 3.3));
        assert_eq!(c.inf(), -1.0);
        assert!(c.sup() < -0.98);
        // Monotone piece: tight to an ulp.
        let s = sin::<Certified>(iv(0.1, 0.2));
        assert!(s.inf() <= 0.1f64.sin() && s.inf() >= 0.1f64.sin().next_down());
        assert!(tan::<Certified>(iv(1.5, 1.6)).is_entire());
        assert!(tan::<Certified>(iv(-1.5, 1.5)).sup() < 15.0);
        // f64 pi/2 is just below pi/2: [pi/2 - 1e-9, f64 pi/2] must still be treated with care.
        assert!(tan::<Certified>(iv(FRAC_PI_2 - 1e-9, FRAC_PI_2)).sup() > 1e9);
        assert!(sin::<Certified>(iv(0.0, 2.0 * PI)).inf() == -1.0);
    }

    #[test]
    fn domains_and_poles() {
        assert!(ln::<Certified>(iv(-1.0, 2.0)).is_empty());
        assert!(sqrt(iv(-1e-300, 1.0)).is_empty());
        assert_eq!(ln::<Certified>(iv(0.0, 1.0)).inf(), f64::NEG_INFINITY);
        assert!(apply::<Certified>(Func::Asin, iv(0.5, 1.5)).is_empty());
        assert!(div(point(1.0), iv(-0.1, 0.2)).is_entire());
        assert!(div(point(1.0), point(0.0)).is_entire());
        assert!(powi(iv(-0.1, 0.2), -1).is_entire());
        assert!(powc::<Certified>(iv(-0.1, 0.2), point(0.5)).is_empty());
        // Empty propagates through everything.
        assert!(exp::<Certified>(Interval::EMPTY + point(1.0)).is_empty());
    }

    #[test]
    fn powers() {
        let p = powi(iv(-1.0, 2.0), 3);
        assert_eq!((p.inf(), p.sup()), (-1.0, 8.0));
        let p = powi(iv(-3.0, 2.0), 2);
        assert_eq!((p.inf(), p.sup()), (0.0, 9.0));
        let p = powi(iv(2.0, 4.0), -2);
        assert!(p.inf() <= 1.0 / 16.0 && p.sup() >= 0.25 && p.sup() < 0.2501);
        let p = powc::<Certified>(iv(0.0, 4.0), point(0.5));
        assert!(p.inf() == 0.0 && p.sup() >= 2.0 && p.sup() < 2.0 + 1e-12);
        let p = powc::<Certified>(iv(0.25, 4.0), point(-0.5));
        assert!(p.inf() <= 0.5 && p.inf() > 0.5 - 1e-12 && p.sup() >= 2.0);
        let p = pow::<Certified>(iv(2.0, 2.0), iv(3.0, 3.0));
        assert!(p.contains(8.0) && p.wid() < 1e-12);
    }

    #[test]
    fn slope_factors_contain_the_derivative() {
        // The derivative at interior points lies in the slope factor over X.
        for (_, f) in Func::ALL {
            let (a, b) = match f {
                Func::Ln | Func::Sqrt => (0.3, 0.9),
                Func::Asin | Func::Acos => (-0.6, 0.7),
                Func::Sign => (0.2, 0.4),
                _ => (-0.7, 1.2),
            };
            let x = iv(a, b);
            let s = slope_factor::<Certified>(f, x, apply::<Certified>(f, x));
            for i in 1..100 {
                let t = a + (b - a) * i as f64 / 100.0;
                let h = 1e-6;
                let d = (f.eval(t + h) - f.eval(t - h)) / (2.0 * h);
                assert!(
                    s.inf() - 1e-6 <= d && d <= s.sup() + 1e-6,
                    "{f:?} at {t}: {d} not in {s:?}"
                );
            }
        }
        assert!(slope_factor::<Certified>(Func::Sign, iv(-0.1, 0.1), iv(-1.0, 1.0)).is_entire());
        let a = slope_factor::<Certified>(Func::Abs, iv(-0.1, 0.1), iv(0.0, 0.1));
        assert_eq!((a.inf(), a.sup()), (-1.0, 1.0));
    }
}
