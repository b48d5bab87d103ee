//! Directed-rounded values of the elementary point functions: the endpoints of the interval
//! functions in [`super::elementary`].

use dashu_float::round::mode::{Down, Up};
use dashu_float::{ConstCache, Context, FBig};
use std::cell::RefCell;

/// An elementary point function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Elem {
    Exp,
    Ln,
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Tanh,
}

/// Where endpoint values come from: `down(f, x) <= f(x) <= up(f, x)` for the exact real f(x).
///
/// Callers pass only x inside f's domain (x > 0 for ln, |x| <= 1 for asin and acos) and, for the
/// growing functions, |x| <= 709 (exp, sinh, cosh), so every result is finite.
pub trait Directed: Copy + Send + Sync + 'static {
    fn down(f: Elem, x: f64) -> f64;
    fn up(f: Elem, x: f64) -> f64;
}

/// Correctly rounded in the requested direction (dashu-float, Ziv's strategy): proven endpoints.
#[derive(Clone, Copy, Debug, Default)]
pub struct Certified;

/// `libm` in round-to-nearest, widened by two ulps on each side: fast, and sound as long as the
/// library's documented error (< 1 ulp) holds, which is not proven here.
#[derive(Clone, Copy, Debug, Default)]
pub struct Guard;

thread_local! {
    /// dashu's cache of pi, ln 2 and friends: without it every call recomputes them.
    static CACHE: RefCell<ConstCache> = const { RefCell::new(ConstCache::new()) };
}

/// Values below this (in magnitude) may be subnormal in f64, where the conversion of a 53-bit
/// result rounds; they are widened by `TINY` instead.
const NEAR_SUBNORMAL: f64 = 1e-290;
const TINY: f64 = 1e-300;

macro_rules! dashu_call {
    ($mode:ty, $f:expr, $x:expr) => {{
        let arg = FBig::<$mode>::try_from($x).expect("finite f64 converts exactly");
        let ctx = Context::<$mode>::new(53);
        CACHE.with(|c| {
            let mut cache = c.borrow_mut();
            let c = Some(&mut *cache);
            let r = match $f {
                Elem::Exp => ctx.exp(arg.repr(), c),
                Elem::Ln => ctx.ln(arg.repr(), c),
                Elem::Sin => ctx.sin(arg.repr(), c),
                Elem::Cos => ctx.cos(arg.repr(), c),
                Elem::Tan => ctx.tan(arg.repr(), c),
                Elem::Asin => ctx.asin(arg.repr(), c),
                Elem::Acos => ctx.acos(arg.repr(), c),
                Elem::Atan => ctx.atan(arg.repr(), c),
                Elem::Sinh => ctx.sinh(arg.repr(), c),
                Elem::Cosh => ctx.cosh(arg.repr(), c),
                Elem::Tanh => ctx.tanh(arg.repr(), c),
            };
            r.map(|v| v.value().to_f64().value())
        })
    }};
}

impl Directed for Certified {
    fn down(f: Elem, x: f64) -> f64 {
        match dashu_call!(Down, f, x) {
            Ok(y) if y.abs() < NEAR_SUBNORMAL => y - TINY,
            Ok(y) if y == f64::INFINITY => f64::MAX,
            Ok(y) if !y.is_nan() => y,
            // Outside the callers' contract: the weakest true statement.
            _ => f64::NEG_INFINITY,
        }
    }
    fn up(f: Elem, x: f64) -> f64 {
        match dashu_call!(Up, f, x) {
            Ok(y) if y.abs() < NEAR_SUBNORMAL => y + TINY,
            Ok(y) if y == f64::NEG_INFINITY => f64::MIN,
            Ok(y) if !y.is_nan() => y,
            _ => f64::INFINITY,
        }
    }
}

fn nearest(f: Elem, x: f64) -> f64 {
    match f {
        Elem::Exp => libm::exp(x),
        Elem::Ln => libm::log(x),
        Elem::Sin => libm::sin(x),
        Elem::Cos => libm::cos(x),
        Elem::Tan => libm::tan(x),
        Elem::Asin => libm::asin(x),
        Elem::Acos => libm::acos(x),
        Elem::Atan => libm::atan(x),
        Elem::Sinh => libm::sinh(x),
        Elem::Cosh => libm::cosh(x),
        Elem::Tanh => libm::tanh(x),
    }
}

impl Directed for Guard {
    fn down(f: Elem, x: f64) -> f64 {
        let y = nearest(f, x);
        if y.is_nan() {
            f64::NEG_INFINITY
        } else if y == f64::INFINITY {
            f64::MAX
        } else if y.abs() < NEAR_SUBNORMAL {
            y - TINY
        } else {
            y.next_down().next_down()
        }
    }
    fn up(f: Elem, x: f64) -> f64 {
        let y = nearest(f, x);
        if y.is_nan() {
            f64::INFINITY
        } else if y == f64::NEG_INFINITY {
            f64::MIN
        } else if y.abs() < NEAR_SUBNORMAL {
            y + TINY
        } else {
            y.next_up().next_up()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Elem; 11] = [
        Elem::Exp,
        Elem::Ln,
        Elem::Sin,
        Elem::Cos,
        Elem::Tan,
        Elem::Asin,
        Elem::Acos,
        Elem::Atan,
        Elem::Sinh,
        Elem::Cosh,
        Elem::Tanh,
    ];

    fn domain(f: Elem, t: f64) -> f64 {
        // t in [0, 1) mapped into a domain-valid argument.
        match f {
            Elem::Ln => 1e-3 + 50.0 * t,
            Elem::Asin | Elem::Acos => 2.0 * t - 1.0,
            _ => 40.0 * t - 20.0,
        }
    }

    #[test]
    fn certified_endpoints_bracket_libm_within_an_ulp() {
        // dashu rounds correctly, libm to within an ulp: down <= up, at most one ulp apart, and
        // libm's nearest value lies between down and up or one ulp outside.
        for f in ALL {
            for i in 0..200 {
                let x = domain(f, (i as f64 + 0.37) / 200.0);
                let (lo, hi) = (Certified::down(f, x), Certified::up(f, x));
                let y = nearest(f, x);
                assert!(lo <= hi && hi <= lo.next_up(), "{f:?}({x}): [{lo}, {hi}]");
                assert!(
                    y >= lo.next_down() && y <= hi.next_up(),
                    "{f:?}({x}): libm {y} vs [{lo}, {hi}]"
                );
                assert!(
                    Guard::down(f, x) <= lo && Guard::up(f, x) >= hi,
                    "{f:?}({x})"
                );
            }
        }
    }

    #[test]
    fn exact_cases() {
        assert_eq!(Certified::down(Elem::Exp, 0.0), 1.0);
        assert_eq!(Certified::up(Elem::Exp, 0.0), 1.0);
        // ln 1 = 0 exactly; results this close to 0 are widened by 1e-300 (f64 may not hold them).
        let z = Certified::up(Elem::Ln, 1.0);
        assert!((0.0..=1e-300).contains(&z), "{z:e}");
        // f64 pi is below pi, so sin(f64 pi) is a tiny positive number (about 1.22e-16).
        let s = Certified::down(Elem::Sin, std::f64::consts::PI);
        assert!(s > 1.2246e-16 && s < 1.2247e-16, "{s:e}");
        // e^1 is irrational: the two directions differ by exactly one ulp around it.
        let (lo, hi) = (
            Certified::down(Elem::Exp, 1.0),
            Certified::up(Elem::Exp, 1.0),
        );
        assert_eq!(hi, lo.next_up());
        assert!(lo <= std::f64::consts::E.next_up() && hi >= std::f64::consts::E);
    }
}
