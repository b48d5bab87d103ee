//! Roots of unity exp(-2 pi i k / n) with proven errors: in double words (cos and sin correctly
//! rounded to 110 bits by dashu-float for O(sqrt n) of them, the rest as double-word products,
//! within 2^-98: the f64 reference's twiddles) and in f64 (those double words rounded once,
//! within 2^-53: every twiddle, chirp and table of the compared transforms and of the backend's
//! DFT tables). No libm sin or cos is involved, so no bound rests on a platform's accuracy claim.

use super::{Complex, Direction};
use dashu_float::round::mode::HalfEven;
use dashu_float::{ConstCache, Context, FBig};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use twofloat::TwoFloat;

/// Standard-model unit roundoff of twofloat's operations: fl(a op b) = (a op b)(1 + d) with
/// |d| <= 2^-100 for each operation the transform uses, on double words with u = 2^-53
/// (Joldes, Muller, Popescu, ACM TOMS 44(2), 2017): the sum of two double words (their
/// Algorithm 6) within 3u^2 / (1 - 4u), the product (Algorithm 12) within 5u^2 (proofs of the
/// products corrected and formally checked by Muller and Rideau, ACM TOMS 48(1), 2022), and the
/// division by an f64 (Algorithm 15) within 3u^2; 2^-100 = 64 u^2 covers them all.
pub const DW_UNIT_ROUNDOFF: f64 = 7.888609052210118e-31;

/// Bound on the error of a double-word twiddle, |w^ - w| <= 2^-98 in modulus. A table of N roots
/// of unity takes O(sqrt N) correctly rounded ones (dashu) and forms the rest as products
/// w_(aB + b) = W_a w_b: each factor's components are cos or sin correctly rounded to 110 bits
/// (within 2^-110 relative), then split into hi = RN_53(v) and lo = RN_53(v - hi) (v - hi is
/// exact and |v - hi| <= 2^-53 |v|, so lo errs by at most 2^-106 |v|), then stored
/// ([`Cw::snapped`]: an exact zero made exact, which only lowers the error, and low words below
/// [`TABLE_FLOOR`] zeroed, c = sqrt2 2^-250 (1 + 2^-53) at most in modulus): within
/// t0 = 2^-105 + c. The double-word complex product adds at most sqrt2 gamma_2(u_w) (1 + t0)^2
/// (Higham's Lemma 3.5 with u = [`DW_UNIT_ROUNDOFF`]) and its storing c again, so
/// |w^ - w| <= 2 t0 (1 + t0) + sqrt2 gamma_2(2^-100) (1 + t0)^2 + c < 2^-104 + 2^-98.4 < 2^-98.
pub const DW_TWIDDLE_ERROR: f64 = 3.1554436208840472e-30;

/// Data words (in the f64 reference's scaled units, where max|x| is in [2^500, 2^501)) below
/// phi = 2^-700 are zeroed before every double-word product and division ([`Cw::flushed`]), so
/// that no operation of the reference underflows: with table words 0 or at least
/// [`TABLE_FLOOR`], every product a b it forms has quanta q(a) q(b) >= 2^-753 2^-303 =
/// 2^-1056 >= 2^-1074 (q(v) = 2^(ilogb v - 52)), and then every operation returns what it would
/// with an unbounded exponent, the setting of the double-word proofs. A flush moves a component
/// by less than phi (1 + 2^-53); what the flushes cost in all is `DW_UNDERFLOW_BOUND`'s proof.
pub(super) const FLUSH: f64 = 1.90109156629516e-211;

/// Table words (twiddles, chirps, Bluestein's spectrum) below 2^-250 are zeroed when a table is
/// built ([`Cw::cleaned`]): a component moves by less than 2^-250 (1 + 2^-53).
pub(super) const TABLE_FLOOR: f64 = 5.527147875260445e-76;

/// A root's component whose high word is below 2^-97 is exactly zero: the exact component is 0
/// or at least 1/n >= 2^-64 in magnitude (|sin(2 pi j / n)| >= 4/n for n >= 4, cos likewise
/// >= sin(pi / 2n) >= 1/n), and the computed one is within 2^-98 of it.
const ZERO_SNAP: f64 = 6.310887241768095e-30;

/// `v` with a high word below `hi_floor` made 0 (both words), else with a low word below
/// `lo_floor` made 0.
fn flush_word(v: TwoFloat, hi_floor: f64, lo_floor: f64) -> TwoFloat {
    if v.hi().abs() < hi_floor {
        TwoFloat::from_f64(0.0)
    } else if v.lo().abs() < lo_floor {
        TwoFloat::from_f64(v.hi())
    } else {
        v
    }
}

/// Whether the product a b of two f64 words is a multiple of 2^-1074 (a or b zero, or
/// ilogb a + ilogb b - 104 >= -1074), so that its rounding cannot underflow: what
/// [`FLUSH`] and [`TABLE_FLOOR`] guarantee for every product of the reference (checked on every
/// product in test builds).
#[cfg(test)]
pub(super) fn product_in_range(a: f64, b: f64) -> bool {
    a == 0.0 || b == 0.0 || libm::ilogb(a) + libm::ilogb(b) >= -970
}

/// Bits of the correctly rounded cos and sin behind a double-word twiddle.
const TWIDDLE_BITS: usize = 110;

/// A complex number in double words.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Cw {
    pub(super) re: TwoFloat,
    pub(super) im: TwoFloat,
}

impl Cw {
    pub(super) fn real(x: f64) -> Self {
        Cw {
            re: TwoFloat::from_f64(x),
            im: TwoFloat::from_f64(0.0),
        }
    }
    pub(super) fn add(self, o: Cw) -> Cw {
        Cw {
            re: self.re + o.re,
            im: self.im + o.im,
        }
    }
    pub(super) fn sub(self, o: Cw) -> Cw {
        Cw {
            re: self.re - o.re,
            im: self.im - o.im,
        }
    }
    /// (ac - bd) + i(ad + bc): four products and two sums, each within DW_UNIT_ROUNDOFF. The
    /// reference multiplies a [`Cw::flushed`] value by a table entry only, so that no product
    /// underflows (checked in test builds).
    pub(super) fn mul(self, o: Cw) -> Cw {
        #[cfg(test)]
        for (a, b) in [
            (self.re, o.re),
            (self.im, o.im),
            (self.re, o.im),
            (self.im, o.re),
        ] {
            for (x, y) in [
                (a.hi(), b.hi()),
                (a.lo(), b.lo()),
                (a.hi(), b.lo()),
                (a.lo(), b.hi()),
            ] {
                assert!(product_in_range(x, y), "{x:e} * {y:e} may underflow");
            }
        }
        Cw {
            re: self.re * o.re - self.im * o.im,
            im: self.re * o.im + self.im * o.re,
        }
    }
    /// Both components through [`flush_word`] with these floors.
    fn flush_words(self, hi_floor: f64, lo_floor: f64) -> Cw {
        Cw {
            re: flush_word(self.re, hi_floor, lo_floor),
            im: flush_word(self.im, hi_floor, lo_floor),
        }
    }
    /// Each component's words below [`FLUSH`] zeroed (see there): a data value before a product.
    pub(super) fn flushed(self) -> Cw {
        self.flush_words(FLUSH, FLUSH)
    }
    /// Each component's words below [`TABLE_FLOOR`] zeroed: a table entry as it is stored.
    pub(super) fn cleaned(self) -> Cw {
        self.flush_words(TABLE_FLOOR, TABLE_FLOOR)
    }
    /// A root of unity as it is stored: a component with a high word below [`ZERO_SNAP`] made
    /// exactly 0 (its exact value), low words below [`TABLE_FLOOR`] zeroed (as
    /// [`Cw::cleaned`]; a high word at least 2^-97 is above that floor).
    fn snapped(self) -> Cw {
        self.flush_words(ZERO_SNAP, TABLE_FLOOR)
    }
    pub(super) fn conj(self) -> Cw {
        Cw {
            re: self.re,
            im: -self.im,
        }
    }
}

thread_local! {
    /// dashu's cache of pi: without it every twiddle recomputes it.
    static CONSTS: RefCell<ConstCache> = const { RefCell::new(ConstCache::new()) };
}

/// A double word within 2^-105 |v| of the 110-bit value v (see [`DW_TWIDDLE_ERROR`]).
fn split(v: &FBig<HalfEven>) -> TwoFloat {
    let hi = v.to_f64().value();
    let rest = v - FBig::<HalfEven>::try_from(hi).expect("finite f64 converts exactly");
    let lo = rest.to_f64().value();
    TwoFloat::try_from((hi, lo)).expect("hi = RN(v), lo = RN(v - hi) do not overlap")
}

/// exp(-2 pi i k / n) in double words, k < n.
pub(super) fn root(k: u64, n: u64) -> Cw {
    let ctx = Context::<HalfEven>::new(TWIDDLE_BITS);
    let x = FBig::<HalfEven>::from(k);
    CONSTS.with(|c| {
        let mut cache = c.borrow_mut();
        let (s, c) = ctx.sin_cos_unit(x.repr(), n as usize, Some(&mut *cache));
        let (s, c) = (
            s.expect("sin of a finite angle").value(),
            c.expect("cos of a finite angle").value(),
        );
        Cw {
            re: split(&c),
            im: -split(&s),
        }
        .snapped()
    })
}

/// exp(-2 pi i r / n) for every r of `indices` (each < n), in double words within
/// [`DW_TWIDDLE_ERROR`]: r = a B + b with B = ceil(sqrt n), the product of the correctly rounded
/// roots W_a = root(a B, n) and w_b = root(b, n), 2 sqrt(n) calls to dashu in all.
pub(super) fn roots(n: u64, indices: &[u64]) -> Vec<Cw> {
    use rayon::prelude::*;
    let b = (n as f64).sqrt().ceil() as u64;
    let small: Vec<Cw> = (0..b).into_par_iter().map(|r| root(r, n)).collect();
    let big: Vec<Cw> = (0..n.div_ceil(b))
        .into_par_iter()
        .map(|a| root(a * b, n))
        .collect();
    indices
        .iter()
        .map(|&r| big[(r / b) as usize].mul(small[(r % b) as usize]).snapped())
        .collect()
}

/// Bound on the error of an f64 root of unity from [`f64_roots`], |w^ - w| <= 2^-53 in modulus.
/// Each component is RN(v), v = hi + lo the double word of [`roots`], within e_c of the exact
/// component c (|c| <= 1, sqrt(e_re^2 + e_im^2) <= [`DW_TWIDDLE_ERROR`] = 2^-98). For |v| < 1,
/// |RN(v) - v| <= 2^-54 (half an ulp below 1); for 1 <= |v| <= 1 + 2^-98, RN(v) = +-1 and
/// |RN(v) - v| <= 2^-98. So each component errs by at most 2^-54 + e_c and the modulus by at most
/// sqrt2 2^-54 + 2^-98 < 2^-53 (Minkowski). The same bound holds for the inverse direction (the
/// conjugate, exact).
pub const TWIDDLE_F64_ERROR: f64 = 1.1102230246251565e-16;

type Tables<K, T> = (HashMap<K, Arc<Vec<T>>>, usize);

/// Tables computed once and kept while a budget of entries lasts: past it the cache is emptied
/// before the next table goes in, and a table longer than `max_len` is computed for each caller.
/// A table's values do not depend on whether it was cached, so neither do results.
pub(super) struct TableCache<K, T> {
    /// The tables and their entries in all.
    tables: OnceLock<Mutex<Tables<K, T>>>,
    entries: usize,
    max_len: usize,
}

impl<K: Copy + Eq + std::hash::Hash, T> TableCache<K, T> {
    pub(super) const fn new(entries: usize, max_len: usize) -> Self {
        TableCache {
            tables: OnceLock::new(),
            entries,
            max_len,
        }
    }

    /// The table of `key`, from the cache or from `compute` (run without the lock held, so it
    /// may use the cache itself).
    pub(super) fn get(&self, key: K, compute: impl FnOnce() -> Vec<T>) -> Arc<Vec<T>> {
        let tables = self.tables.get_or_init(Default::default);
        if let Some(t) = tables.lock().expect("table cache lock").0.get(&key) {
            return t.clone();
        }
        let t = Arc::new(compute());
        if t.len() <= self.max_len {
            let mut guard = tables.lock().expect("table cache lock");
            let (map, entries) = &mut *guard;
            if *entries + t.len() > self.entries {
                map.clear();
                *entries = 0;
            }
            if map.insert(key, t.clone()).is_none() {
                *entries += t.len();
            }
        }
        t
    }
}

/// The entries kept in the f64 root cache in all (16 bytes each: 64 MiB at most); tables
/// longer than 2^20 are not kept.
const F64_CACHE_ENTRIES: usize = 1 << 22;

/// The f64 root cache's largest size in bytes (shared by every plan), for memory budgets.
pub const ROOT_CACHE_BYTES: f64 = (F64_CACHE_ENTRIES * 16) as f64;

/// The f64 roots exp(-2 pi i k / n), k < n, each component the double word of [`roots`] rounded
/// once to f64: within [`TWIDDLE_F64_ERROR`] = 2^-53 of the exact root. For the inverse
/// direction take the conjugate ([`f64_root`]). Computed once per n while the cache has room
/// (2 sqrt(n) dashu evaluations and n double-word products; the values do not depend on what
/// was cached).
pub fn f64_roots(n: usize) -> Arc<Vec<Complex<f64>>> {
    static TABLES: TableCache<usize, Complex<f64>> = TableCache::new(F64_CACHE_ENTRIES, 1 << 20);
    TABLES.get(n, || {
        let k: Vec<u64> = (0..n as u64).collect();
        let round = |v: TwoFloat| v.hi() + v.lo();
        roots(n.max(1) as u64, &k)
            .into_iter()
            .map(|w| Complex::new(round(w.re), round(w.im)))
            .collect()
    })
}

/// Entry k mod n of a table of [`f64_roots`] of length n: exp(-+2 pi i k / n) for `dir`.
pub fn f64_root(table: &[Complex<f64>], k: u64, dir: Direction) -> Complex<f64> {
    let w = table[(k % table.len() as u64) as usize];
    match dir {
        Direction::Forward => w,
        Direction::Inverse => w.conj(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interval::{Certified, Interval, elementary, point};

    #[test]
    fn constants_are_the_stated_powers_of_two() {
        assert_eq!(DW_UNIT_ROUNDOFF, 2f64.powi(-100));
        assert_eq!(DW_TWIDDLE_ERROR, 2f64.powi(-98));
        assert_eq!(FLUSH, 2f64.powi(-700));
        assert_eq!(TABLE_FLOOR, 2f64.powi(-250));
        assert_eq!(ZERO_SNAP, 2f64.powi(-97));
        // 2 t0 (1 + t0) + sqrt2 gamma_2(u_w) (1 + t0)^2 + c with t0 = 2^-105 + c and
        // c = sqrt2 2^-250 (1 + 2^-53) (a table's low words below 2^-250 zeroed), rounded up.
        let c = 2f64.sqrt() * TABLE_FLOOR * (1.0 + 2f64.powi(-53));
        let (t0, u) = (2f64.powi(-105) + c, DW_UNIT_ROUNDOFF);
        let g2 = 2.0 * u / (1.0 - 2.0 * u);
        let bound = 2.0 * t0 * (1.0 + t0) + 2f64.sqrt() * g2 * (1.0 + t0).powi(2) + c;
        assert!(bound * (1.0 + 1e-15) < DW_TWIDDLE_ERROR, "{bound:e}");
        assert_eq!(TWIDDLE_F64_ERROR, 2f64.powi(-53));
        assert!(2f64.sqrt() * 2f64.powi(-54) + DW_TWIDDLE_ERROR < TWIDDLE_F64_ERROR);
    }

    /// Stored roots: exact zeros exactly 0 (the 2^-98 error of a product would otherwise leave
    /// values like 1e-33, as n = 2048, k = 1536 did), every other high word at least 2^-97 and
    /// every low word 0 or at least 2^-250, in the double words and the f64 tables.
    #[test]
    fn stored_roots_have_exact_zeros_and_no_tiny_words() {
        let mut sizes: Vec<u64> = (1..=256).collect();
        sizes.extend([1000, 1024, 2048, 4096, 3 * 1024, 2 * 1023]);
        for n in sizes {
            let all: Vec<u64> = (0..n).collect();
            let f = f64_roots(n as usize);
            for (k, w) in roots(n, &all).into_iter().enumerate() {
                let k = k as u64;
                // cos(2 pi k / n) = 0 iff 4k / n is an odd integer; sin = 0 iff 2k / n is one.
                let cos_zero = (4 * k).is_multiple_of(n) && ((4 * k) / n) % 2 == 1;
                let sin_zero = (2 * k).is_multiple_of(n);
                for (v, zero, fv) in [
                    (w.re, cos_zero, f[k as usize].re),
                    (w.im, sin_zero, f[k as usize].im),
                ] {
                    if zero {
                        assert_eq!((v.hi(), v.lo(), fv), (0.0, 0.0, 0.0), "{k}/{n}");
                    } else {
                        assert!(v.hi().abs() >= ZERO_SNAP, "{k}/{n}: {:e}", v.hi());
                        assert!(v.lo() == 0.0 || v.lo().abs() >= TABLE_FLOOR, "{k}/{n}");
                    }
                }
            }
        }
        // The check can fail: an unsnapped product leaves a tiny component at 1536 / 2048.
        let b = (2048f64).sqrt().ceil() as u64;
        let raw = root(1536 / b * b, 2048).mul(root(1536 % b, 2048));
        assert!(
            raw.re.hi() != 0.0 && raw.re.hi().abs() < ZERO_SNAP,
            "{:e}",
            raw.re.hi()
        );
    }

    /// Flushing zeroes exactly the words below the floor.
    #[test]
    fn flushing_zeroes_the_words_below_the_floor() {
        let w = |hi: f64, lo: f64| TwoFloat::try_from((hi, lo)).unwrap();
        let c = |re: TwoFloat| Cw {
            re,
            im: w(-3.0 * FLUSH, 0.0),
        };
        let tiny_hi = c(w(0.75 * FLUSH, 0.0)).flushed();
        assert_eq!((tiny_hi.re.hi(), tiny_hi.im.hi()), (0.0, -3.0 * FLUSH));
        let tiny_lo = c(w(1.0, 0.5 * FLUSH)).flushed();
        assert_eq!((tiny_lo.re.hi(), tiny_lo.re.lo()), (1.0, 0.0));
        let kept = c(w(1.0, 2.0 * FLUSH)).flushed();
        assert_eq!(kept.re.lo(), 2.0 * FLUSH);
        let table = c(w(1.0, 0.5 * TABLE_FLOOR)).cleaned();
        assert_eq!((table.re.lo(), table.im.hi()), (0.0, 0.0));
        // The smallest words the flushes leave multiply without underflow; smaller ones may not.
        assert!(product_in_range(FLUSH, TABLE_FLOOR));
        assert!(!product_in_range(FLUSH * 2f64.powi(-30), TABLE_FLOOR));
    }

    /// |w - exp(-2 pi i k / n)| of a double-word root against the 300-bit oracle (the
    /// differences exact in FBig, then rounded to f64).
    fn dw_error(w: Cw, k: u64, n: u64) -> f64 {
        let (c, s) = oracle(k, n);
        // hi + lo at 300 bits: a sum of two 53-bit FBigs would round to 53 bits.
        let f = |x: TwoFloat| {
            FBig::<HalfEven>::try_from(x.hi())
                .unwrap()
                .with_precision(300)
                .value()
                + FBig::<HalfEven>::try_from(x.lo()).unwrap()
        };
        let dr = (f(w.re) - c).to_f64().value();
        let di = (f(w.im) + s).to_f64().value();
        dr.hypot(di)
    }

    /// The double-word roots: the directly computed ones within t0 = 2^-105 of the exact
    /// value, the table's products within [`DW_TWIDDLE_ERROR`] = 2^-98 (the bound the f64
    /// reference's proof takes), against the 300-bit oracle.
    #[test]
    fn double_word_roots_within_their_proven_error() {
        let mut worst = (0.0f64, 0.0f64);
        for n in [3u64, 5, 6, 7, 12, 100, 1000, 1024] {
            let all: Vec<u64> = (0..n).collect();
            for (k, w) in roots(n, &all).into_iter().enumerate() {
                let k = k as u64;
                let direct = dw_error(root(k, n), k, n);
                assert!(direct <= 2f64.powi(-105), "{k}/{n}: {direct:e}");
                let product = dw_error(w, k, n);
                assert!(product <= DW_TWIDDLE_ERROR, "{k}/{n}: {product:e}");
                worst = (worst.0.max(direct), worst.1.max(product));
            }
        }
        // The check can fail: a root whose low word is dropped is caught.
        let w = root(3, 40);
        let cut = Cw {
            re: TwoFloat::from_f64(w.re.hi()),
            im: w.im,
        };
        assert!(dw_error(cut, 3, 40) > DW_TWIDDLE_ERROR);
        eprintln!(
            "double-word roots: worst direct {:.3e} (2^{:.1}), product {:.3e} (2^{:.1})",
            worst.0,
            worst.0.log2(),
            worst.1,
            worst.1.log2()
        );
    }

    /// Certified enclosures of (cos, sin) of 2 pi p / q, the angle first reduced exactly to
    /// [0, pi/4] by the symmetries of the circle (rational arithmetic on p / q), so the
    /// enclosures are a few ulps wide: inari's pi, then cos and sin with correctly rounded
    /// endpoints.
    fn exact_root(mut p: u128, mut q: u128) -> (Interval, Interval) {
        let (mut cs, mut ss, mut swap) = (1.0, 1.0, false);
        if 2 * p > q {
            // 2 pi - x: cos x, -sin x
            p = q - p;
            ss = -ss;
        }
        if 4 * p > q {
            // pi - x: -cos x, sin x
            (p, q) = (q - 2 * p, 2 * q);
            cs = -cs;
        }
        if 8 * p > q {
            // pi/2 - x: (sin x, cos x)
            (p, q) = (q - 4 * p, 4 * q);
            swap = true;
        }
        let theta = Interval::PI * point(2.0) * point(p as f64) / point(q as f64);
        let (c, s) = (
            elementary::cos::<Certified>(theta),
            elementary::sin::<Certified>(theta),
        );
        let (c, s) = if swap { (s, c) } else { (c, s) };
        (c * point(cs), s * point(ss))
    }

    /// (cos, sin) of 2 pi k / n to 300 bits (dashu), checked to lie in the certified
    /// enclosures of [`exact_root`] (inari, independent of dashu): an oracle within 2^-299 of
    /// the exact values, tight enough to measure errors of 2^-53 that the enclosures (a few
    /// ulps wide) cannot resolve.
    fn oracle(k: u64, n: u64) -> (FBig<HalfEven>, FBig<HalfEven>) {
        let ctx = Context::<HalfEven>::new(300);
        let (s, c) = ctx.sin_cos_unit(FBig::<HalfEven>::from(k).repr(), n as usize, None);
        let (s, c) = (s.unwrap().value(), c.unwrap().value());
        let (ci, si) = exact_root(k as u128, n as u128);
        let f = |x: f64| FBig::<HalfEven>::try_from(x).unwrap();
        for (v, e) in [(&c, ci), (&s, si)] {
            assert!(
                *v >= f(e.inf()) && *v <= f(e.sup()),
                "{k}/{n}: dashu outside the enclosure"
            );
        }
        (c, s)
    }

    /// |w - exp(-2 pi i k / n)| against the 300-bit oracle: the differences are exact in
    /// FBig, then rounded to f64 (relative error 2^-53 in the error itself, far inside the
    /// margin of the bound checked).
    fn root_error(w: Complex<f64>, k: u64, n: u64) -> f64 {
        let (c, s) = oracle(k, n);
        let f = |x: f64| FBig::<HalfEven>::try_from(x).unwrap();
        let dr = (f(w.re) - c).to_f64().value();
        let di = (f(w.im) + s).to_f64().value();
        dr.hypot(di)
    }

    /// Every root of the f64 tables of `sizes` within TWIDDLE_F64_ERROR = 2^-53 of the exact
    /// value, the inverse direction the conjugate; returns (roots checked, worst error).
    fn check_f64_roots(sizes: &[usize]) -> (usize, f64) {
        let (mut worst, mut count) = (0.0f64, 0usize);
        for &n in sizes {
            let table = f64_roots(n);
            assert_eq!(table.len(), n);
            for k in 0..n as u64 {
                let w = f64_root(&table, k, Direction::Forward);
                let e = root_error(w, k, n as u64);
                assert!(e <= TWIDDLE_F64_ERROR, "n = {n}, k = {k}: {e:e}");
                let v = f64_root(&table, k + n as u64, Direction::Inverse);
                assert_eq!((v.re, v.im), (w.re, -w.im));
                worst = worst.max(e);
                count += 1;
            }
        }
        (count, worst)
    }

    /// Every f64 root of ours (the power-of-two levels, the naive and GEMM tables, Bluestein's
    /// chirps at 2n), for all n up to 64, the powers of two up to 2^12 and a few chirp lengths.
    #[test]
    fn f64_roots_within_their_proven_error() {
        let mut sizes: Vec<usize> = (1..=64).collect();
        sizes.extend((7..=12).map(|b| 1usize << b));
        // Bluestein's chirp angles pi k^2 / n = 2 pi (k^2 mod 2n) / 2n.
        sizes.extend([2 * 100, 2 * 127, 2 * 1000, 2 * 1023]);
        let (count, worst) = check_f64_roots(&sizes);
        // The check can fail: a root off by one ulp in one component is caught.
        let w = f64_roots(40)[3];
        let off = Complex::new(w.re + 2f64.powi(-53), w.im);
        assert!(root_error(off, 3, 40) > TWIDDLE_F64_ERROR);
        eprintln!(
            "{count} roots: worst error {worst:.3e} = {:.3} x 2^-53 (bound 2^-53)",
            worst / 2f64.powi(-53)
        );
    }

    /// The same for every length up to 1024 (524800 roots; heavy: run with --ignored).
    #[test]
    #[ignore]
    fn f64_roots_within_their_proven_error_every_length_to_1024() {
        let sizes: Vec<usize> = (1..=1024).collect();
        let (count, worst) = check_f64_roots(&sizes);
        eprintln!(
            "{count} roots: worst error {worst:.3e} = {:.3} x 2^-53 (bound 2^-53)",
            worst / 2f64.powi(-53)
        );
    }
}
