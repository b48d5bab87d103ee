//! One-dimensional built-ins with closed-form coefficients and exact (or rigorously bounded)
//! Lipschitz constant L and sup M on \[0,1\].

use super::special::{
    cos_turns, expsin_coefficient, expsin_slope_max, poly_deriv, poly_eval, poly_fourier,
    poly_max_abs, poly_trim, sin_turns,
};
use super::{CoefficientSource, ConstantsSource, Function};
use num_complex::Complex;
use rand::{RngExt, SeedableRng};
use std::f64::consts::{E, PI, TAU};

/// Round a computed irrational constant up by two ulps, so the f64 value is never below the
/// real number it approximates (e.g. f64 TAU and E are both below 2 pi and e).
pub(crate) fn up(x: f64) -> f64 {
    x.next_up().next_up()
}

fn czero() -> Complex<f64> {
    Complex::new(0.0, 0.0)
}

/// Polynomial p(x) = sum_k c\[k\] x^k on \[0,1\] (covers `one`, `const`, `x`, `linear`, `x2`, `poly`).
///
/// Coefficients: exact integrals of the monomials ([`super::special::monomial_fourier`]).
/// M = max |p| and L = max |p'| over \[0,1\], located at the endpoints and the real roots of p'
/// (resp. p'') found by recursive root isolation ([`super::special::poly_max_abs`]): exact up to a
/// rounding margin of ~1e-12 relative at interior extrema.
#[derive(Clone, Debug)]
pub struct Poly {
    c: Vec<f64>,
    name: String,
    l: f64,
    m: f64,
}

impl Poly {
    pub fn new(c: Vec<f64>, name: String) -> Poly {
        let c = poly_trim(&c);
        let l = poly_max_abs(&poly_deriv(&c));
        let m = poly_max_abs(&c);
        Poly { c, name, l, m }
    }
    /// Coefficients c\[0\], c\[1\], ... (trailing zeros removed).
    pub fn coeffs(&self) -> &[f64] {
        &self.c
    }
}

impl Function for Poly {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn dim(&self) -> usize {
        1
    }
    fn eval(&self, x: &[f64]) -> f64 {
        poly_eval(&self.c, x[0])
    }
    fn coefficient(&self, w: &[i64]) -> Complex<f64> {
        poly_fourier(&self.c, w[0])
    }
    fn coefficient_source(&self) -> CoefficientSource {
        CoefficientSource::Exact
    }
    fn lipschitz(&self) -> f64 {
        self.l
    }
    fn sup(&self) -> f64 {
        self.m
    }
    fn constants_source(&self) -> ConstantsSource {
        ConstantsSource::Exact
    }
}

/// Trigonometric polynomial c + sum_k (a_k cos(2 pi f_k x) + b_k sin(2 pi f_k x)) with integer
/// frequencies f_k >= 0 (periodic, so only smooth aliasing). Also the storage of `randsines`.
///
/// Coefficients: c + sum_{f_k = 0} a_k at w = 0; a_k / 2 at w = +-f_k; -i b_k / 2 at w = f_k and
/// +i b_k / 2 at w = -f_k (f_k > 0), summed over equal frequencies.
///
/// L and M: rigorous upper bounds, each the smaller of (1) the crude bound sum_k (2 pi f_k)^p r_k
/// with r_k = hypot(a_k, b_k) (plus |c| for M), and (2) the maximum of |v| (resp. |v'|) on the
/// grid x_j = j / N (N = 256 max f_k rounded up to a power of two, clamped to \[4096, 2^22\];
/// periodic, so x = 1 is x = 0) plus the correction h^2 / 8 * max|v''| (resp. max|v'''|,
/// bounded by the crude sums), h = 1 / N: at an interior maximum of a smooth |g| the derivative
/// vanishes, so the nearest grid point (within h/2) is at most max|g''| (h/2)^2 / 2 below it.
/// For a single term both are attained and the bound is exact.
///
/// The grid values are one inverse radix-4 FFT of the N coefficients (and one of 2 pi i w
/// times them for v'): O(N log N) rather than O(N K) for K terms (`randsines:k=100000,
/// fmax=100000` ran for over ten minutes as a direct sum). Their rounding is added, not
/// guessed: building the coefficients errs by at most gamma_{K+4} sum_k (2 pi f_k)^p
/// (|a_k| + |b_k|) summed over the bins (each bin sums at most K + 1 exact halves; the
/// derivative's 2 pi w adds three roundings), which bounds the effect on any value; the
/// transform errs in any one value by at most its normwise error eps sqrt(N) ||X||_2 (Higham's
/// radix-2 bound, which holds for radix 4, with u = 2^-53 and the f64 twiddles' error
/// u + (1 + u) 2^-53, `fft::twiddle_error`). Both are doubled for the error of the computed
/// norms and sums.
#[derive(Clone, Debug)]
pub struct TrigPoly {
    c: f64,
    /// (f, a (cos), b (sin))
    terms: Vec<(u64, f64, f64)>,
    name: String,
    l: f64,
    m: f64,
}

impl TrigPoly {
    /// `terms` as (frequency, cos amplitude, sin amplitude).
    pub fn new(c: f64, terms: Vec<(u64, f64, f64)>, name: String) -> TrigPoly {
        let mut t = TrigPoly {
            c,
            terms,
            name,
            l: 0.0,
            m: 0.0,
        };
        (t.l, t.m) = t.bound_constants();
        t
    }

    /// Terms as (frequency, cos amplitude, sin amplitude), and the constant.
    pub fn terms(&self) -> (f64, &[(u64, f64, f64)]) {
        (self.c, &self.terms)
    }

    /// sum_k (2 pi f_k)^p r_k: a bound on |v^(p)| (without the constant term).
    fn crude(&self, p: i32) -> f64 {
        self.terms
            .iter()
            .map(|&(f, a, b)| (TAU * f as f64).powi(p) * a.hypot(b))
            .sum()
    }

    /// p-th derivative at x (p = 0 or 1).
    fn deriv(&self, p: u32, x: f64) -> f64 {
        let mut s = if p == 0 { self.c } else { 0.0 };
        for &(f, a, b) in &self.terms {
            let ff = f as f64;
            let (sn, cs) = (sin_turns(ff, x), cos_turns(ff, x));
            s += if p == 0 {
                a * cs + b * sn
            } else {
                TAU * ff * (b * cs - a * sn)
            };
        }
        s
    }

    fn bound_constants(&self) -> (f64, f64) {
        let m_crude = up(self.c.abs() + self.crude(0));
        let l_crude = up(self.crude(1));
        let fmax = self.terms.iter().map(|t| t.0).max().unwrap_or(0);
        let n = (256 * fmax.min(1 << 22) as usize)
            .next_power_of_two()
            .clamp(4096, 1 << 22);
        // The grid must hold every frequency without aliasing (|w| < N / 2).
        if 2 * fmax >= n as u64 {
            return (l_crude, m_crude);
        }
        let h = 1.0 / n as f64;
        let [(gm, em), (gl, el)] = self.grid_maxima(n);
        let m_sampled = (gm + em + h * h / 8.0 * up(self.crude(2))) * (1.0 + 1e-12);
        let l_sampled = (gl + el + h * h / 8.0 * up(self.crude(3))) * (1.0 + 1e-12);
        (l_sampled.min(l_crude), m_sampled.min(m_crude))
    }

    /// (max_j |v^(p)(j / n)| as computed, a bound on its rounding error) for p = 0, 1 (see the
    /// type's doc); `n` a power of two above 2 max f_k.
    fn grid_maxima(&self, n: usize) -> [(f64, f64); 2] {
        use crate::fft::{Algorithm, Direction, Fft};
        let mut x = vec![czero(); n];
        x[0].re += self.c;
        for &(f, a, b) in &self.terms {
            if f == 0 {
                x[0].re += a;
            } else {
                let i = f as usize;
                x[i] += Complex::new(a / 2.0, -b / 2.0);
                x[n - i] += Complex::new(a / 2.0, b / 2.0);
            }
        }
        // v' has coefficients 2 pi i w X_w, w the signed frequency of bin i.
        let mut y: Vec<Complex<f64>> = x
            .iter()
            .enumerate()
            .map(|(i, z)| {
                let w = if i < n / 2 {
                    i as f64
                } else {
                    i as f64 - n as f64
                };
                z * Complex::new(0.0, TAU * w)
            })
            .collect();
        let u = f64::EPSILON / 2.0;
        let eps = crate::fft::relative_error_bound_u(
            &[n],
            Algorithm::Radix4,
            u,
            crate::precision::Model::Arithmetic,
        );
        let k = self.terms.len() as f64 + 4.0;
        let gamma = k * f64::EPSILON / 2.0 / (1.0 - k * f64::EPSILON / 2.0);
        let sum_abs = |p: i32| -> f64 {
            let s: f64 = self
                .terms
                .iter()
                .map(|&(f, a, b)| (TAU * f as f64).powi(p) * (a.abs() + b.abs()))
                .sum();
            if p == 0 { s + self.c.abs() } else { s }
        };
        let plan =
            Fft::<f64>::new(n, Direction::Inverse, Algorithm::Radix4).expect("a power of two");
        let mut out = [(0.0, 0.0); 2];
        for (p, data) in [&mut x, &mut y].into_iter().enumerate() {
            let norm = data.iter().map(|z| z.norm_sqr()).sum::<f64>().sqrt();
            plan.process(data);
            let max = data.iter().map(|z| z.re.abs()).fold(0.0, f64::max);
            let err = 2.0 * (gamma * up(sum_abs(p as i32)) + eps * norm * (n as f64).sqrt());
            out[p] = (max, err);
        }
        out
    }
}

impl Function for TrigPoly {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn dim(&self) -> usize {
        1
    }
    fn eval(&self, x: &[f64]) -> f64 {
        self.deriv(0, x[0])
    }
    fn coefficient(&self, w: &[i64]) -> Complex<f64> {
        let w = w[0];
        let mut z = czero();
        if w == 0 {
            z.re += self.c;
        }
        for &(f, a, b) in &self.terms {
            if f == 0 {
                if w == 0 {
                    z.re += a;
                }
            } else if f == w.unsigned_abs() {
                z.re += a / 2.0;
                z.im += if w > 0 { -b / 2.0 } else { b / 2.0 };
            }
        }
        z
    }
    fn coefficient_source(&self) -> CoefficientSource {
        CoefficientSource::Exact
    }
    fn lipschitz(&self) -> f64 {
        self.l
    }
    fn sup(&self) -> f64 {
        self.m
    }
    fn constants_source(&self) -> ConstantsSource {
        ConstantsSource::Bound(
            "min of sum_k (2 pi f_k)^p |amp_k| and the dense-grid maximum plus h^2/8 times a \
             bound on the next derivative"
                .into(),
        )
    }
}

/// Seeded sum of `k` random sines: v(x) = sum_{i<k} a_i sin(2 pi (f_i x + phi_i)), stored as a
/// [`TrigPoly`]. Distribution (Xoshiro256PlusPlus seeded with `seed`, drawn in the order f, a,
/// phi for each i): f_i uniform on the integers 1..=fmax, a_i uniform on [-1, 1), phi_i uniform
/// on [0, 1) turns. Name: `randsines:k=K,fmax=F,seed=S`.
pub fn random_sines(k: usize, fmax: u64, seed: u64) -> TrigPoly {
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut terms = Vec::with_capacity(k);
    for _ in 0..k {
        let f: u64 = rng.random_range(1..=fmax.max(1));
        let a = 2.0 * rng.random::<f64>() - 1.0;
        let phi = rng.random::<f64>();
        // a sin(2 pi f x + 2 pi phi) = a sin(2 pi phi) cos(2 pi f x) + a cos(2 pi phi) sin(2 pi f x)
        let (s, c) = (TAU * phi).sin_cos();
        terms.push((f, a * s, a * c));
    }
    TrigPoly::new(
        0.0,
        terms,
        format!("randsines:k={k},fmax={fmax},seed={seed}"),
    )
}

/// The aliased sine sin(2 pi (s + w) x) of grid size s: on the grid x_j = j / s it equals
/// sin(2 pi w x_j), but its continuous coefficient at w is 0 (its energy sits at +-(s + w)).
/// [`Function::at_resolution`] gives the instance for grid size s; the family object itself is
/// the instance at s = 1. Every instance reports the family name `aliased:w=W`.
/// L = 2 pi |s + w|, M = 1 (0 when s + w = 0), exact.
#[derive(Clone, Debug)]
pub struct Aliased {
    pub w: i64,
    pub s: usize,
}

impl Aliased {
    fn freq(&self) -> i64 {
        self.s as i64 + self.w
    }
}

impl Function for Aliased {
    fn name(&self) -> String {
        format!("aliased:w={}", self.w)
    }
    fn dim(&self) -> usize {
        1
    }
    fn eval(&self, x: &[f64]) -> f64 {
        sin_turns(self.freq() as f64, x[0])
    }
    fn coefficient(&self, w: &[i64]) -> Complex<f64> {
        let m = self.freq();
        if m == 0 {
            czero()
        } else if w[0] == m {
            Complex::new(0.0, -0.5)
        } else if w[0] == -m {
            Complex::new(0.0, 0.5)
        } else {
            czero()
        }
    }
    fn coefficient_source(&self) -> CoefficientSource {
        CoefficientSource::Exact
    }
    fn lipschitz(&self) -> f64 {
        up(TAU * self.freq().unsigned_abs() as f64)
    }
    fn sup(&self) -> f64 {
        if self.freq() == 0 { 0.0 } else { 1.0 }
    }
    fn constants_source(&self) -> ConstantsSource {
        ConstantsSource::Exact
    }
    fn at_resolution(&self, s: usize) -> Option<Box<dyn Function>> {
        Some(Box::new(Aliased { w: self.w, s }))
    }
}

/// The lower-bound family of docs/bounds.md: v(x) = L / (2 pi s) cos(2 pi s x), Lipschitz
/// constant exactly L, with F(v)(0) = 0 but F_s(v)(0) = L / (2 pi s), so the discretization error
/// at w = 0 is L / (2 pi s) = sqrt(3) / (2 pi) of the bound. [`Function::at_resolution`] gives the
/// instance for grid size s; the family object is the instance at s = 1. Name: `lowercos:L=..`.
/// M = L / (2 pi s) (rounded up).
#[derive(Clone, Debug)]
pub struct LowerBound {
    pub l: f64,
    pub s: usize,
}

impl LowerBound {
    fn amp(&self) -> f64 {
        self.l / (TAU * self.s as f64)
    }
}

impl Function for LowerBound {
    fn name(&self) -> String {
        format!("lowercos:L={}", self.l)
    }
    fn dim(&self) -> usize {
        1
    }
    fn eval(&self, x: &[f64]) -> f64 {
        self.amp() * cos_turns(self.s as f64, x[0])
    }
    fn coefficient(&self, w: &[i64]) -> Complex<f64> {
        if w[0].unsigned_abs() == self.s as u64 {
            Complex::new(self.amp() / 2.0, 0.0)
        } else {
            czero()
        }
    }
    fn coefficient_source(&self) -> CoefficientSource {
        CoefficientSource::Exact
    }
    fn lipschitz(&self) -> f64 {
        self.l
    }
    fn sup(&self) -> f64 {
        up(self.amp())
    }
    fn constants_source(&self) -> ConstantsSource {
        ConstantsSource::Exact
    }
    fn at_resolution(&self, s: usize) -> Option<Box<dyn Function>> {
        Some(Box::new(LowerBound {
            l: self.l,
            s: s.max(1),
        }))
    }
}

/// Square wave sign(sin(2 pi x)): 1 on (0, 1/2), -1 on (1/2, 1), 0 at 0, 1/2 and 1 (decided by
/// exact comparisons, not by a rounded sine). Coefficients 2 / (i pi w) for odd w, 0 otherwise.
/// L = infinity (a jump), M = 1.
#[derive(Clone, Debug)]
pub struct SquareWave;

impl Function for SquareWave {
    fn name(&self) -> String {
        "square".into()
    }
    fn dim(&self) -> usize {
        1
    }
    fn eval(&self, x: &[f64]) -> f64 {
        let x = x[0];
        if x > 0.0 && x < 0.5 {
            1.0
        } else if x > 0.5 && x < 1.0 {
            -1.0
        } else {
            0.0
        }
    }
    fn coefficient(&self, w: &[i64]) -> Complex<f64> {
        let w = w[0];
        if w % 2 == 0 {
            czero()
        } else {
            Complex::new(0.0, -2.0 / (PI * w as f64))
        }
    }
    fn coefficient_source(&self) -> CoefficientSource {
        CoefficientSource::Exact
    }
    fn lipschitz(&self) -> f64 {
        f64::INFINITY
    }
    fn sup(&self) -> f64 {
        1.0
    }
    fn constants_source(&self) -> ConstantsSource {
        ConstantsSource::Exact
    }
}

/// |x - 1/2|: a kink at 1/2, periodic extension continuous. Coefficients 1/4 at w = 0,
/// 1 / (pi^2 w^2) for odd w, 0 for even w != 0. L = 1, M = 1/2.
#[derive(Clone, Debug)]
pub struct AbsHalf;

impl Function for AbsHalf {
    fn name(&self) -> String {
        "abs_half".into()
    }
    fn dim(&self) -> usize {
        1
    }
    fn eval(&self, x: &[f64]) -> f64 {
        (x[0] - 0.5).abs()
    }
    fn coefficient(&self, w: &[i64]) -> Complex<f64> {
        let w = w[0];
        if w == 0 {
            Complex::new(0.25, 0.0)
        } else if w % 2 == 0 {
            czero()
        } else {
            Complex::new(1.0 / (PI * PI * (w as f64) * (w as f64)), 0.0)
        }
    }
    fn coefficient_source(&self) -> CoefficientSource {
        CoefficientSource::Exact
    }
    fn lipschitz(&self) -> f64 {
        1.0
    }
    fn sup(&self) -> f64 {
        0.5
    }
    fn constants_source(&self) -> ConstantsSource {
        ConstantsSource::Exact
    }
}

/// exp(sin(2 pi x)): smooth and periodic. Coefficients I_w(1) (-i)^w (modified Bessel I by its
/// power series). L = 2 pi max |cos t| e^{sin t} = 2 pi * 1.458528537... (at sin t = (sqrt 5 - 1)/2)
/// = 9.164205..., M = e; both rounded up.
#[derive(Clone, Debug)]
pub struct ExpSin;

impl Function for ExpSin {
    fn name(&self) -> String {
        "expsin".into()
    }
    fn dim(&self) -> usize {
        1
    }
    fn eval(&self, x: &[f64]) -> f64 {
        sin_turns(1.0, x[0]).exp()
    }
    fn coefficient(&self, w: &[i64]) -> Complex<f64> {
        expsin_coefficient(w[0])
    }
    fn coefficient_source(&self) -> CoefficientSource {
        CoefficientSource::Exact
    }
    fn lipschitz(&self) -> f64 {
        up(TAU * expsin_slope_max())
    }
    fn sup(&self) -> f64 {
        up(E)
    }
    fn constants_source(&self) -> ConstantsSource {
        ConstantsSource::Exact
    }
}
