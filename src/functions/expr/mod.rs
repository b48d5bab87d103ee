//! User expressions in x, y, z: coefficients by adaptive quadrature that checks it resolved the
//! function, and certified L and M by interval branch and bound unless the user gives them.
//!
//! - Grammar ([`parse`]): standard precedence (`-x^2` is -(x^2), `^` right-associative, `**` as
//!   `^`), scientific literals, functions exp log ln sqrt sin cos tan asin acos atan sinh cosh
//!   tanh abs sign and min max pow, constants pi e tau; errors point at the column.
//! - One compiled [`program::Program`] evaluates the function in f64 (sampling, quadrature),
//!   in intervals and in slopes (enclosures; [`crate::interval`]).
//! - M = sup |v| and L = sup |grad v| over \[0,1\]^d are certified upper bounds
//!   ([`super::certify`]): a partition of the cube into boxes on each of which an interval
//!   enclosure (value; slopes, [`crate::interval::Slope`]) is proven, phase 1 searching with
//!   guard intervals, phase 2 certifying with correctly rounded ones. Within the box budget
//!   they end within a few percent of the true values (the lower bounds found say how close);
//!   otherwise the (valid, looser) bound is reported and the source text says so. A function
//!   with no finite bound on |v| (a pole) or undefined somewhere is refused; L = inf (not
//!   Lipschitz: a jump, sqrt at 0) is reported as such.
//! - Coefficients: guarded adaptive G7-K15 quadrature ([`crate::functions::quad`]) of
//!   v(x) e^{-2 pi i <w, x>}, nested in 2-D/3-D, to [`QUAD_TOL`] absolute (each axis starts with
//!   max(2, 2|w_i|) panels); a panel counts as resolved only when the v values its nodes saw
//!   spread as widely as v's enclosure over the panel allows, so a spike between nodes is found
//!   instead of integrated as 0. When the panel budget runs out first, the coefficient says so
//!   ([`CoefficientSource::Quadrature`] `converged: false`).

mod parse;
mod program;

use super::certify::{self, Cell, Certificate, Objective, Outcome};
use super::quad::{
    self, CubeGuard, EvalBudget, PanelBounds, QuadOptions, Resolution, Sample,
    gauss_kronrod_guarded,
};
use super::special::{cis_turns_neg, reduce_turns};
use super::{CoefficientSource, ConstantsSource, Function, FunctionError, FunctionOptions};
use crate::interval::{Certified, Directed, Guard, Interval, Slope, iv, mag, mig, point, wid};
use num_complex::Complex;
pub use parse::{BINARY_FUNCTIONS, CONSTANTS, ParseError};
use program::{CompileError, Program};
use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// Coefficient, its error estimate and whether the quadrature converged, per frequency.
type CoefficientCache = HashMap<Vec<i64>, (Complex<f64>, f64, bool)>;

/// Variable names by coordinate.
pub const VARIABLES: [&str; 3] = ["x", "y", "z"];

/// Target absolute accuracy of the coefficient quadrature.
pub const QUAD_TOL: f64 = 1e-13;

/// Grid intervals per axis of the finiteness check, by dimension: 4096 (1-D), 128 (2-D), 32
/// (3-D); the grid includes both ends, so every corner and the midpoints. It names a bad point
/// early; the enclosures check the rest of the domain.
pub const CHECK_INTERVALS: [usize; 3] = [1 << 12, 128, 32];

/// Cap on (point evaluations x program length) of one 2-D or 3-D coefficient quadrature, about
/// 10 s of work on 2 cores: beyond it the coefficient is reported as not resolved instead of
/// taking minutes (1-D quadratures are bounded by their panel budget). A 3-D Gaussian
/// exp(-400 |x - c|^2) needs ~2.7e9 to reach 1e-13.
pub const QUAD_OP_EVALS: usize = 4_000_000_000;

/// Box budgets of the branch and bound for L and M, by dimension.
pub const CERTIFY_BOXES: [usize; 3] = [4_000, 20_000, 20_000];

/// A function given by an expression in x (1-D), x, y (2-D) or x, y, z (3-D).
pub struct Expression {
    spec: String,
    program: Program,
    dim: usize,
    lipschitz: f64,
    sup: f64,
    constants: ConstantsSource,
    /// Empty, or which certificate is loose (see [`Function::constants_note`]).
    loose: String,
    cache: Mutex<CoefficientCache>,
    worst_err: AtomicU64,
    all_converged: AtomicBool,
    /// The user's variables are lo + scale t for t in \[0,1\]^d (0 and 1 unless built by
    /// [`Expression::on_box`]): error messages name points in the user's coordinates.
    lo: f64,
    scale: f64,
    /// Certified face jumps per axis ([`Function::face_jump`]), computed on first use.
    face_jumps: [OnceLock<Option<f64>>; 3],
}

/// Where an expression is evaluated for an objective: the box as intervals, seeded slopes.
fn slope_vars<const N: usize>(c: &Cell) -> [Slope<N>; N] {
    std::array::from_fn(|k| Slope::variable(iv(c.lo[k], c.hi[k]), Some(k)))
}

/// Upper bound of |v| over the box: the natural enclosure intersected with the mean value
/// form v(c) + sum_k S_k (X_k - c_k). NaN when v is undefined somewhere in the box.
fn sup_over<D: Directed, const N: usize>(p: &Program, c: &Cell) -> f64 {
    let s = p.eval::<Slope<N>, D>(&slope_vars::<N>(c));
    let m = c.centre();
    let centre: [Interval; N] = std::array::from_fn(|k| point(m[k]));
    let vc = p.eval::<Interval, D>(&centre);
    if s.v.is_empty() || vc.is_empty() || s.s.iter().any(|x| x.is_empty()) {
        return f64::NAN;
    }
    let mut mv = vc;
    for (k, sk) in s.s.iter().enumerate() {
        mv += *sk * (iv(c.lo[k], c.hi[k]) - point(m[k]));
    }
    let e = s.v.intersection(mv);
    if e.is_empty() { mag(s.v) } else { mag(e) }
}

/// Upper bound of |grad v| over the box (slope norm); NaN when v is undefined in it.
fn slope_over<D: Directed, const N: usize>(p: &Program, c: &Cell) -> f64 {
    p.eval::<Slope<N>, D>(&slope_vars::<N>(c)).slope_norm()
}

/// |grad v(x)| from below where v is differentiable at x (slope enclosures at a point).
fn slope_at<const N: usize>(p: &Program, x: &[f64; 3]) -> f64 {
    let vars: [Slope<N>; N] = std::array::from_fn(|k| Slope::variable(point(x[k]), Some(k)));
    let s = p.eval::<Slope<N>, Guard>(&vars);
    // A plain hypot chain: no overflow of the squares for slopes above ~1e154.
    let norm = s.s.iter().fold(0.0f64, |a, v| a.hypot(mig(*v)));
    if norm.is_nan() { 0.0 } else { norm }
}

struct Sup<'a>(&'a Program, usize);
struct Lip<'a>(&'a Program, usize);

macro_rules! by_dim {
    ($d:expr, $f:ident :: < $D:ty > ($($arg:expr),*)) => {
        match $d {
            1 => $f::<$D, 1>($($arg),*),
            2 => $f::<$D, 2>($($arg),*),
            _ => $f::<$D, 3>($($arg),*),
        }
    };
}

impl Objective for Sup<'_> {
    fn upper_guard(&self, c: &Cell) -> f64 {
        by_dim!(self.1, sup_over::<Guard>(self.0, c))
    }
    fn upper_certified(&self, c: &Cell) -> f64 {
        by_dim!(self.1, sup_over::<Certified>(self.0, c))
    }
    fn lower_at(&self, x: &[f64; 3]) -> f64 {
        let v: Vec<Interval> = x[..self.1].iter().map(|&t| point(t)).collect();
        let m = mig(self.0.eval::<Interval, Guard>(&v));
        if m.is_nan() { 0.0 } else { m }
    }
}

impl Objective for Lip<'_> {
    fn upper_guard(&self, c: &Cell) -> f64 {
        by_dim!(self.1, slope_over::<Guard>(self.0, c))
    }
    fn upper_certified(&self, c: &Cell) -> f64 {
        by_dim!(self.1, slope_over::<Certified>(self.0, c))
    }
    fn lower_at(&self, x: &[f64; 3]) -> f64 {
        match self.1 {
            1 => slope_at::<1>(self.0, x),
            2 => slope_at::<2>(self.0, x),
            _ => slope_at::<3>(self.0, x),
        }
    }
}

/// Upper bound of |v(x with x_a = 1) - v(x with x_a = 0)| over the box (its coordinate a
/// ignored): the natural enclosure of the difference intersected with its mean value form
/// (v(c^1) - v(c^0)) + sum_{k != a} (S^1_k - S^0_k) (X_k - c_k), which shrinks with the box even
/// where the two faces agree. NaN when v is undefined somewhere.
fn face_jump_over<D: Directed, const N: usize>(p: &Program, c: &Cell, axis: usize) -> f64 {
    let mut v1 = slope_vars::<N>(c);
    let mut v0 = slope_vars::<N>(c);
    v1[axis] = Slope::constant(point(1.0));
    v0[axis] = Slope::constant(point(0.0));
    let s = p.eval::<Slope<N>, D>(&v1) - p.eval::<Slope<N>, D>(&v0);
    let m = c.centre();
    let mut c1: [Interval; N] = std::array::from_fn(|k| point(m[k]));
    let mut c0 = c1;
    c1[axis] = point(1.0);
    c0[axis] = point(0.0);
    let vc = p.eval::<Interval, D>(&c1) - p.eval::<Interval, D>(&c0);
    if s.v.is_empty() || vc.is_empty() || s.s.iter().any(|x| x.is_empty()) {
        return f64::NAN;
    }
    let mut mv = vc;
    for (k, sk) in s.s.iter().enumerate() {
        if k != axis {
            mv += *sk * (iv(c.lo[k], c.hi[k]) - point(m[k]));
        }
    }
    let e = s.v.intersection(mv);
    if e.is_empty() { mag(s.v) } else { mag(e) }
}

struct FaceJump<'a>(&'a Program, usize, usize);

impl Objective for FaceJump<'_> {
    fn upper_guard(&self, c: &Cell) -> f64 {
        by_dim!(self.1, face_jump_over::<Guard>(self.0, c, self.2))
    }
    fn upper_certified(&self, c: &Cell) -> f64 {
        by_dim!(self.1, face_jump_over::<Certified>(self.0, c, self.2))
    }
    fn lower_at(&self, x: &[f64; 3]) -> f64 {
        let at = |t: f64| {
            let v: Vec<Interval> = (0..self.1)
                .map(|k| point(if k == self.2 { t } else { x[k] }))
                .collect();
            self.0.eval::<Interval, Guard>(&v)
        };
        let m = mig(at(1.0) - at(0.0));
        if m.is_nan() { 0.0 } else { m }
    }
}

fn at_text(near: &[f64]) -> String {
    let coords: Vec<String> = near.iter().map(|c| format!("{c:.6}")).collect();
    if near.len() == 1 {
        format!("x ~ {}", coords[0])
    } else {
        format!(
            "({}) ~ ({})",
            VARIABLES[..near.len()].join(", "),
            coords.join(", ")
        )
    }
}

fn describe(name: &str, c: &Certificate) -> String {
    let tight = match c.outcome {
        Outcome::Tight => "tight".to_string(),
        _ => "box budget spent: valid but possibly loose".to_string(),
    };
    format!(
        "{name} <= {:.6e} certified, >= {:.6e} attained ({tight}; {} boxes, {} certified)",
        c.upper, c.lower, c.boxes, c.certified_evals
    )
}

impl Expression {
    /// Parse and check `spec` as an expression in dimension `dim`, and certify L, M where not
    /// given in `opts`.
    pub fn new(spec: &str, dim: usize, opts: &FunctionOptions) -> Result<Self, FunctionError> {
        Self::on_box(spec, dim, opts, 0.0, 1.0)
    }

    /// An expression whose variables range over \[lo, hi\]^d (lo, hi and hi - lo exact in
    /// f64), seen as a function of t in \[0,1\]^d through x = lo + (hi - lo) t: eval, L and M
    /// are those of t -> v(lo + (hi - lo) t), so L is (hi - lo) times v's Lipschitz constant in
    /// its own variables (a given `opts.lipschitz` is read in those and scaled the same way).
    pub fn on_box(
        spec: &str,
        dim: usize,
        opts: &FunctionOptions,
        lo: f64,
        hi: f64,
    ) -> Result<Self, FunctionError> {
        let scale = hi - lo;
        assert!(
            scale > 0.0 && lo + scale == hi,
            "on_box: [{lo}, {hi}] must be a box with an exact width"
        );
        let mut opts = opts.clone();
        opts.lipschitz = opts.lipschitz.map(|l| l * scale);
        let opts = &opts;
        let spec = spec.trim();
        let parse_error = |e: &ParseError| FunctionError::Parse {
            spec: spec.to_string(),
            message: parse::render(spec, e),
            builtins: super::builtin_names(),
        };
        let mut node = parse::parse(spec).map_err(|e| parse_error(&e))?;
        if (lo, scale) != (0.0, 1.0) {
            node = parse::affine_vars(node, lo, scale);
        }
        let allowed = &VARIABLES[..dim];
        let program = Program::compile(&node, allowed).map_err(|e| match e {
            CompileError::UnknownVariable(var, column) => FunctionError::UnknownVariable {
                spec: spec.to_string(),
                var,
                column,
                dim,
                allowed: allowed.join(", "),
                builtins: super::builtin_names(),
            },
            CompileError::TooDeep(depth) => parse_error(&ParseError {
                column: 1,
                message: format!(
                    "the expression needs {depth} nested operands (at most {})",
                    program::MAX_STACK
                ),
            }),
            CompileError::TooLarge(n) => parse_error(&ParseError {
                column: 1,
                message: format!(
                    "the expression is too long ({n} operations or constants; at most {})",
                    program::MAX_OPS
                ),
            }),
        })?;
        let mut f = Expression {
            spec: spec.to_string(),
            program,
            dim,
            lipschitz: 0.0,
            sup: 0.0,
            constants: ConstantsSource::Given,
            loose: String::new(),
            cache: Mutex::new(HashMap::new()),
            worst_err: AtomicU64::new(0f64.to_bits()),
            all_converged: AtomicBool::new(true),
            lo,
            scale,
            face_jumps: Default::default(),
        };
        f.check_grid()?;
        let budget = certify::Budget {
            boxes: CERTIFY_BOXES[dim - 1],
            // A certified enclosure costs ~4 correctly rounded end points (~15 us each) per
            // elementary function: cap phase 2 at about 6 s of such work on one core.
            certified: (100_000 / (1 + f.program.elementary_ops())).clamp(64, 40_000),
        };
        let axes = f.program.reads(dim);
        let m_cert = match opts.sup {
            Some(_) => None,
            None => Some(certify::certify(&Sup(&f.program, dim), dim, &axes, budget)),
        };
        if let Some(c) = &m_cert {
            f.refuse_unless_bounded(c)?;
        }
        let l_cert = match opts.lipschitz {
            Some(_) => None,
            None => Some(certify::certify(&Lip(&f.program, dim), dim, &axes, budget)),
        };
        if let Some(Certificate {
            outcome: Outcome::Undefined { near },
            ..
        }) = &l_cert
        {
            return Err(f.undefined(near));
        }
        f.sup = opts.sup.or(m_cert.as_ref().map(|c| c.upper)).unwrap();
        // L = inf is an answer (not Lipschitz), not an error.
        f.lipschitz = opts
            .lipschitz
            .or(l_cert.as_ref().map(|c| {
                if c.upper.is_nan() {
                    f64::INFINITY
                } else {
                    c.upper
                }
            }))
            .unwrap();
        let how =
            format!("interval branch and bound over [{lo},{hi}]^{dim} (src/functions/certify.rs)");
        let loose: Vec<String> = [("L", &l_cert), ("M", &m_cert)]
            .iter()
            .filter_map(|(name, c)| c.as_ref().map(|c| (name, c)))
            .filter(|(_, c)| c.outcome == Outcome::Budget)
            .map(|(name, c)| {
                format!(
                    "{name} = {:.3e} is certified but may be loose (largest value found {:.3e}; \
                     box budget spent)",
                    c.upper, c.lower
                )
            })
            .collect();
        f.loose = loose.join("; ");
        f.constants = match (&l_cert, &m_cert) {
            (None, None) => ConstantsSource::Given,
            (Some(l), Some(m)) => ConstantsSource::Interval(format!(
                "{}; {}; {how}",
                describe("L", l),
                describe("M", m)
            )),
            (Some(l), None) => ConstantsSource::PartlyGiven(format!(
                "M given by the user; {}; {how}",
                describe("L", l)
            )),
            (None, Some(m)) => ConstantsSource::PartlyGiven(format!(
                "L given by the user; {}; {how}",
                describe("M", m)
            )),
        };
        Ok(f)
    }

    fn undefined(&self, near: &[f64]) -> FunctionError {
        FunctionError::Undefined {
            spec: self.spec.clone(),
            at: at_text(&self.user(near)),
        }
    }

    /// A certificate for M without a finite bound means a pole, a domain error, or a function
    /// the enclosures cannot bound within the budget: no bound of ours would hold, so refuse.
    fn refuse_unless_bounded(&self, c: &Certificate) -> Result<(), FunctionError> {
        match &c.outcome {
            Outcome::Undefined { near } => Err(self.undefined(near)),
            Outcome::Unbounded { near } => Err(FunctionError::Unbounded {
                spec: self.spec.clone(),
                at: at_text(&self.user(near)),
            }),
            _ if !c.upper.is_finite() => Err(FunctionError::Unbounded {
                spec: self.spec.clone(),
                at: "some point (the box budget ran out before |v| could be bounded)".into(),
            }),
            _ => Ok(()),
        }
    }

    /// The expression text.
    pub fn spec(&self) -> &str {
        &self.spec
    }

    /// Evaluate on the check grid ([`CHECK_INTERVALS`]): the first NaN or infinity is an error
    /// naming the point.
    fn check_grid(&self) -> Result<(), FunctionError> {
        let d = self.dim;
        let n = CHECK_INTERVALS[d - 1];
        let p = n + 1; // points per axis
        let total = p.pow(d as u32);
        let point_of = |idx: usize| {
            let mut x = [0.0; 3];
            let mut r = idx;
            for k in (0..d).rev() {
                x[k] = (r % p) as f64 / n as f64;
                r /= p;
            }
            x
        };
        let bad = (0..total)
            .into_par_iter()
            .map(|i| (i, self.value(&point_of(i)[..d])))
            .find_first(|(_, v)| !v.is_finite());
        if let Some((i, v)) = bad {
            let x = self.user(&point_of(i)[..d]);
            let at = if d == 1 {
                format!("x = {}", x[0])
            } else {
                format!(
                    "({}) = ({})",
                    VARIABLES[..d].join(", "),
                    x[..d]
                        .iter()
                        .map(|c| c.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            return Err(FunctionError::NotFinite {
                spec: self.spec.clone(),
                at,
                value: v,
            });
        }
        Ok(())
    }

    /// A point of \[0,1\]^d in the user's coordinates.
    fn user(&self, t: &[f64]) -> Vec<f64> {
        t.iter().map(|c| self.lo + self.scale * c).collect()
    }

    fn value(&self, x: &[f64]) -> f64 {
        self.program.eval::<f64, Guard>(x)
    }

    /// Guard-interval bounds on v over the box with coordinates before `axis` at `prefix`,
    /// `axis` in [a, b] and the later ones in [0, 1] (the quadrature's resolution check).
    fn enclose(&self, prefix: &[f64], axis: usize, a: f64, b: f64) -> PanelBounds {
        let vars: Vec<Slope<1>> = (0..self.dim)
            .map(|k| {
                if k < axis {
                    Slope::variable(point(prefix[k]), None)
                } else if k == axis {
                    Slope::variable(iv(a, b), Some(0))
                } else {
                    Slope::variable(iv(0.0, 1.0), None)
                }
            })
            .collect();
        let s = self.program.eval::<Slope<1>, Guard>(&vars);
        if s.v.is_empty() || s.s[0].is_empty() {
            return PanelBounds {
                slope: f64::NAN,
                width: f64::NAN,
                sup: f64::NAN,
            };
        }
        PanelBounds {
            slope: mag(s.s[0]),
            width: wid(s.v),
            sup: mag(s.v),
        }
    }

    /// The coefficient at w with its quadrature error estimate (cached).
    pub fn coefficient_with_error(&self, w: &[i64]) -> (Complex<f64>, f64) {
        let (c, e, _) = self.coefficient_full(w);
        (c, e)
    }

    /// The coefficient at w, its error estimate, and whether the quadrature met its target.
    pub fn coefficient_full(&self, w: &[i64]) -> (Complex<f64>, f64, bool) {
        assert_eq!(w.len(), self.dim, "frequency dimension");
        if let Some(&r) = self.cache.lock().unwrap().get(w) {
            return r;
        }
        let d = self.dim;
        let integrand = |x: &[f64]| {
            let t: f64 = x
                .iter()
                .zip(w)
                .map(|(&xi, &wi)| reduce_turns(wi as f64, xi))
                .sum();
            let v = self.value(x);
            Sample {
                g: cis_turns_neg(t) * v,
                v_lo: v,
                v_hi: v,
            }
        };
        let panels: Vec<usize> = w
            .iter()
            .map(|&wi| (2 * wi.unsigned_abs() as usize).clamp(2, 1 << 16))
            .collect();
        let breaks = vec![vec![0.0, 1.0]; d];
        let r = if d == 1 {
            let bounds = |a: f64, b: f64| self.enclose(&[], 0, a, b);
            gauss_kronrod_guarded(
                |t| integrand(&[t]),
                &breaks[0],
                &QuadOptions {
                    abs_tol: QUAD_TOL,
                    max_panels: 50_000,
                    initial_panels: panels[0],
                    parallel: false,
                },
                &Resolution {
                    bounds: &bounds,
                    freq: w[0].unsigned_abs() as f64,
                    budget: None,
                },
            )
        } else {
            let bounds =
                |prefix: &[f64], axis: usize, a: f64, b: f64| self.enclose(prefix, axis, a, b);
            let mut freqs = [0.0; 3];
            for (f, &wi) in freqs.iter_mut().zip(w) {
                *f = wi.unsigned_abs() as f64;
            }
            quad::integrate_cube_guarded(
                &integrand,
                d,
                &breaks,
                &panels,
                QUAD_TOL,
                5_000,
                &CubeGuard {
                    bounds: &bounds,
                    freqs,
                    budget: Some(&EvalBudget::new(
                        (QUAD_OP_EVALS / self.program.len().max(1)).max(1_000_000),
                    )),
                },
            )
        };
        let out = (r.value, r.abs_err, r.converged);
        self.worst_err
            .fetch_max(r.abs_err.to_bits(), Ordering::Relaxed);
        if !r.converged {
            self.all_converged.store(false, Ordering::Relaxed);
        }
        self.cache.lock().unwrap().insert(w.to_vec(), out);
        out
    }
}

impl Function for Expression {
    fn name(&self) -> String {
        self.spec.clone()
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn eval(&self, x: &[f64]) -> f64 {
        self.value(x)
    }
    fn coefficient(&self, w: &[i64]) -> Complex<f64> {
        self.coefficient_with_error(w).0
    }
    fn coefficient_checked(&self, w: &[i64]) -> super::Checked {
        let (value, abs_err, converged) = self.coefficient_full(w);
        super::Checked {
            value,
            abs_err: abs_err.max(QUAD_TOL),
            converged,
        }
    }
    fn coefficient_source(&self) -> CoefficientSource {
        let worst = f64::from_bits(self.worst_err.load(Ordering::Relaxed));
        CoefficientSource::Quadrature {
            abs_tol: worst.max(QUAD_TOL),
            converged: self.all_converged.load(Ordering::Relaxed),
        }
    }
    fn lipschitz(&self) -> f64 {
        self.lipschitz
    }
    fn sup(&self) -> f64 {
        self.sup
    }
    fn constants_source(&self) -> ConstantsSource {
        self.constants.clone()
    }
    fn constants_note(&self) -> String {
        self.loose.clone()
    }
    fn panel_bounds(&self, prefix: &[f64], axis: usize, a: f64, b: f64) -> Option<PanelBounds> {
        Some(self.enclose(prefix, axis, a, b))
    }
    /// Interval branch and bound of the face difference over the other coordinates
    /// ([`certify::certify`] with the [`FaceJump`] objective; the box budget of L and M, a
    /// tenth of their certified one).
    fn face_jump(&self, axis: usize) -> Option<f64> {
        if axis >= self.dim {
            return None;
        }
        *self.face_jumps[axis].get_or_init(|| {
            let d = self.dim;
            // A tenth of L's and M's certified budget: where the faces agree (a periodic v) the
            // search never meets its relative tolerance, and phase 2 would spend all of it on a
            // sup that is 0 (the accepted boxes' looser bounds stay valid).
            let budget = certify::Budget {
                boxes: CERTIFY_BOXES[d - 1],
                certified: (10_000 / (1 + self.program.elementary_ops())).clamp(64, 4_000),
            };
            let axes: Vec<usize> = self
                .program
                .reads(d)
                .into_iter()
                .filter(|&k| k != axis)
                .collect();
            let c = certify::certify(&FaceJump(&self.program, d, axis), d, &axes, budget);
            (c.upper.is_finite()).then_some(c.upper)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::parse::parse;
    use super::program::Program;
    use crate::interval::{Certified, Interval, Slope, iv, point};
    use rand::{RngExt, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// A random expression in x and y of bounded depth, over every operation of the grammar.
    fn random_expr(rng: &mut Xoshiro256PlusPlus, depth: u32) -> String {
        if depth == 0 || rng.random::<f64>() < 0.2 {
            return match rng.random_range(0..6) {
                0 | 1 => "x".into(),
                2 | 3 => "y".into(),
                4 => ["0.3", "2", "1e-2", "pi", "e", "1.5"][rng.random_range(0..6)].into(),
                _ => format!("{:.3}", 4.0 * rng.random::<f64>() - 2.0),
            };
        }
        let a = random_expr(rng, depth - 1);
        let b = random_expr(rng, depth - 1);
        match rng.random_range(0..22) {
            0 => format!("({a}) + ({b})"),
            1 => format!("({a}) - ({b})"),
            2 => format!("({a}) * ({b})"),
            3 => format!("({a}) / (1 + ({b})^2)"),
            4 => format!("-({a})"),
            5 => format!("exp(({a})/3)"),
            6 => format!("sin(3*({a}))"),
            7 => format!("cos(2*pi*({a}))"),
            8 => format!("tan(({a})/4)"),
            9 => format!("atan(5*({a}))"),
            10 => format!("tanh(({a})*7)"),
            11 => format!("abs({a})"),
            12 => format!("sqrt(abs({a}))"),
            13 => format!("log(1 + abs({a}))"),
            14 => format!("({a})^2"),
            15 => format!("({a})^3"),
            16 => format!("(1 + abs({a}))^1.5"),
            17 => format!("min({a}, {b})"),
            18 => format!("max({a}, {b})"),
            19 => format!("sinh(({a})/2) + cosh(({b})/2)"),
            20 => format!("asin(tanh({a})) + acos(tanh({b}))"),
            _ => format!("sign({a}) * ({b})"),
        }
    }

    /// Interval and slope enclosures contain the true values: for random expressions, boxes
    /// and points, the box enclosure meets the (certified) point enclosure, and the increment
    /// between two points meets the slope enclosure times the step. Tolerance-free: both sides
    /// are rigorous enclosures of the same real number, so they must intersect.
    #[test]
    fn enclosures_of_random_expressions_contain_the_true_values() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(20261204);
        let (mut checked, mut slopes) = (0usize, 0usize);
        for _ in 0..300 {
            let text = random_expr(&mut rng, 4);
            let p = Program::compile(&parse(&text).unwrap(), &["x", "y"]).unwrap();
            for _ in 0..8 {
                let w = 10f64.powf(-6.0 * rng.random::<f64>());
                let lo: [f64; 2] = std::array::from_fn(|_| rng.random::<f64>() * (1.0 - w));
                let bx: [Interval; 2] = std::array::from_fn(|k| iv(lo[k], lo[k] + w));
                let enc = p.eval::<Interval, Certified>(&bx);
                let sl: [Slope<2>; 2] = std::array::from_fn(|k| Slope::variable(bx[k], Some(k)));
                let s = p.eval::<Slope<2>, Certified>(&sl);
                if enc.is_empty() || s.v.is_empty() {
                    continue; // a domain error somewhere in the box: nothing to check
                }
                let at = |t: [f64; 2]| p.eval::<Interval, Certified>(&[point(t[0]), point(t[1])]);
                let mut prev: Option<([f64; 2], Interval)> = None;
                for _ in 0..6 {
                    let t: [f64; 2] = std::array::from_fn(|k| lo[k] + w * rng.random::<f64>());
                    let pt = at(t);
                    if pt.is_empty() {
                        continue;
                    }
                    assert!(
                        !pt.disjoint(enc),
                        "{text} on {bx:?}: f({t:?}) in {pt:?}, box {enc:?}"
                    );
                    assert!(!pt.disjoint(s.v), "{text}: slope value {:?} vs {pt:?}", s.v);
                    checked += 1;
                    if let Some((t0, p0)) = prev {
                        let step = s.s[0] * (point(t[0]) - point(t0[0]))
                            + s.s[1] * (point(t[1]) - point(t0[1]));
                        assert!(
                            !(pt - p0).disjoint(step),
                            "{text} on {bx:?}: increment {:?} outside slopes x step {step:?}",
                            pt - p0
                        );
                        slopes += 1;
                    }
                    prev = Some((t, pt));
                }
            }
        }
        assert!(checked > 5000 && slopes > 3000, "{checked} {slopes}");
    }
}
