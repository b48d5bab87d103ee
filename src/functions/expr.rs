//! User expressions in x, y, z (exmex): coefficients by adaptive quadrature, L and M given or
//! estimated on a fine grid.

use super::quad::{self, QuadOptions};
use super::special::{cis_turns_neg, reduce_turns};
use super::{CoefficientSource, ConstantsSource, Function, FunctionError, FunctionOptions};
use exmex::prelude::*;
use exmex::{FloatOpsFactory, MakeOperators, Operator};
use num_complex::Complex;
use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// exmex's float operators plus `pi` (exmex knows `PI`, `π`, `E`, `e`, `TAU`) and `sign`
/// (exmex calls it `signum`).
#[derive(Clone, Debug)]
pub struct Ops;

impl MakeOperators<f64> for Ops {
    fn make<'a>() -> Vec<Operator<'a, f64>> {
        let mut ops = FloatOpsFactory::<f64>::make();
        ops.push(Operator::make_constant("pi", std::f64::consts::PI));
        ops.push(Operator::make_unary("sign", |a| {
            if a == 0.0 { 0.0 } else { a.signum() }
        }));
        ops
    }
}

type Expr = FlatEx<f64, Ops>;

/// Coefficient and its error estimate, per frequency.
type CoefficientCache = HashMap<Vec<i64>, (Complex<f64>, f64)>;

/// Variable names by coordinate.
pub const VARIABLES: [&str; 3] = ["x", "y", "z"];

/// Target absolute accuracy of the coefficient quadrature.
pub const QUAD_TOL: f64 = 1e-13;

/// Grid intervals per axis for the finiteness check and the L, M estimates, by dimension:
/// 2^16 (1-D), 1024 (2-D), 128 (3-D); the grid includes both ends, so all corners.
pub const ESTIMATE_INTERVALS: [usize; 3] = [1 << 16, 1024, 128];

/// Safety factor on the largest sampled slope.
pub const SLOPE_SAFETY: f64 = 1.05;

/// A function given by an expression in x (1-D), x, y (2-D) or x, y, z (3-D).
///
/// - Variables: x, y, z (a variable beyond the dimension is an error); constants pi, e (also PI,
///   E, TAU); functions sin cos tan exp log (natural) ln sqrt abs sign and the rest of exmex's float
///   operators; `^` for powers.
/// - Checked finite on the estimation grid (see [`ESTIMATE_INTERVALS`]); a NaN or infinity is an
///   error naming the point.
/// - Coefficients: adaptive G7-K15 quadrature ([`quad`]) of v(x) e^{-2 pi i <w, x>}, nested in
///   2-D/3-D, to [`QUAD_TOL`] absolute (each axis starts with max(2, 2|w_i|) panels, so 1/2 is a
///   breakpoint); results are cached per w. [`Expression::coefficient_with_error`] gives the
///   error estimate, and `coefficient_source` reports max(target, worst estimate so far).
/// - L, M: the user's values when given; otherwise L = 1.05 x the largest slope seen on the grid
///   (forward differences along each axis, and in 2-D/3-D also the norm of the central-difference
///   gradient at interior points), and M = max |v| on the grid + L h sqrt(d) / 2 (any point is
///   within h sqrt(d) / 2 of a grid point). These are estimates: a feature narrower than the grid
///   spacing can escape them.
pub struct Expression {
    spec: String,
    expr: Expr,
    /// For each exmex variable (alphabetical order), its coordinate index.
    var_index: Vec<usize>,
    dim: usize,
    lipschitz: f64,
    sup: f64,
    constants: ConstantsSource,
    cache: Mutex<CoefficientCache>,
    worst_err: AtomicU64,
}

impl Expression {
    /// Parse and check `spec` as an expression in dimension `dim`, and estimate L, M where not
    /// given in `opts`.
    pub fn new(spec: &str, dim: usize, opts: &FunctionOptions) -> Result<Self, FunctionError> {
        let spec = spec.trim();
        let expr = Expr::parse(spec).map_err(|e| FunctionError::Parse {
            spec: spec.to_string(),
            message: e.to_string(),
            builtins: super::builtin_names(),
        })?;
        let allowed = &VARIABLES[..dim];
        let mut var_index = Vec::new();
        for v in expr.var_names() {
            match allowed.iter().position(|a| a == v) {
                Some(i) => var_index.push(i),
                None => {
                    return Err(FunctionError::UnknownVariable {
                        spec: spec.to_string(),
                        var: v.clone(),
                        dim,
                        allowed: allowed.join(", "),
                        builtins: super::builtin_names(),
                    });
                }
            }
        }
        let mut f = Expression {
            spec: spec.to_string(),
            expr,
            var_index,
            dim,
            lipschitz: 0.0,
            sup: 0.0,
            constants: ConstantsSource::Given,
            cache: Mutex::new(HashMap::new()),
            worst_err: AtomicU64::new(0f64.to_bits()),
        };
        let est = f.scan()?;
        let l = opts.lipschitz.unwrap_or(est.slope * SLOPE_SAFETY);
        let m = opts
            .sup
            .unwrap_or(est.max_abs + l * est.h * (dim as f64).sqrt() / 2.0);
        let n = ESTIMATE_INTERVALS[dim - 1];
        let how_l = format!(
            "L = {SLOPE_SAFETY} x max finite-difference slope on a {} grid",
            vec![(n + 1).to_string(); dim].join("x")
        );
        let how_m = format!("M = max |v| on that grid + L h sqrt(d)/2 with h = 1/{n}");
        f.constants = match (opts.lipschitz.is_some(), opts.sup.is_some()) {
            (true, true) => ConstantsSource::Given,
            (true, false) => ConstantsSource::Estimated(format!("L given by the user; {how_m}")),
            (false, true) => ConstantsSource::Estimated(format!("{how_l}; M given by the user")),
            (false, false) => ConstantsSource::Estimated(format!("{how_l}; {how_m}")),
        };
        f.lipschitz = l;
        f.sup = m;
        Ok(f)
    }

    /// The expression text.
    pub fn spec(&self) -> &str {
        &self.spec
    }

    fn value(&self, x: &[f64]) -> f64 {
        let mut buf = [0.0; 3];
        for (i, &k) in self.var_index.iter().enumerate() {
            buf[i] = x[k];
        }
        self.expr
            .eval(&buf[..self.var_index.len()])
            .unwrap_or(f64::NAN)
    }

    /// Evaluate on the estimation grid: check finiteness, find max |v| and the largest slope.
    fn scan(&self) -> Result<Scan, FunctionError> {
        let d = self.dim;
        let n = ESTIMATE_INTERVALS[d - 1];
        let p = n + 1; // points per axis
        let h = 1.0 / n as f64;
        let total = p.pow(d as u32);
        let coord = |i: usize| i as f64 / n as f64;
        let point = |idx: usize| {
            let mut x = [0.0; 3];
            let mut r = idx;
            for k in (0..d).rev() {
                x[k] = coord(r % p);
                r /= p;
            }
            x
        };
        let vals: Vec<f64> = (0..total)
            .into_par_iter()
            .map(|i| self.value(&point(i)[..d]))
            .collect();
        if let Some((i, &v)) = vals.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            let x = point(i);
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
        let max_abs = vals.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let strides: Vec<usize> = (0..d).map(|k| p.pow((d - 1 - k) as u32)).collect();
        let slope = (0..total)
            .into_par_iter()
            .map(|i| {
                let mut r = i;
                let mut idx = [0usize; 3];
                for k in (0..d).rev() {
                    idx[k] = r % p;
                    r /= p;
                }
                let mut best = 0.0f64;
                let mut g2 = 0.0;
                let mut interior = true;
                for k in 0..d {
                    if idx[k] + 1 < p {
                        best = best.max((vals[i + strides[k]] - vals[i]).abs() / h);
                    }
                    if idx[k] == 0 || idx[k] + 1 == p {
                        interior = false;
                    } else if d > 1 {
                        let c = (vals[i + strides[k]] - vals[i - strides[k]]) / (2.0 * h);
                        g2 += c * c;
                    }
                }
                if interior && d > 1 {
                    best = best.max(g2.sqrt());
                }
                best
            })
            .reduce(|| 0.0, f64::max);
        Ok(Scan { max_abs, slope, h })
    }

    /// The coefficient at w with its quadrature error estimate (cached).
    pub fn coefficient_with_error(&self, w: &[i64]) -> (Complex<f64>, f64) {
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
            cis_turns_neg(t) * self.value(x)
        };
        let panels: Vec<usize> = w
            .iter()
            .map(|&wi| (2 * wi.unsigned_abs() as usize).clamp(2, 1 << 16))
            .collect();
        let breaks = vec![vec![0.0, 1.0]; d];
        let r = if d == 1 {
            quad::gauss_kronrod(
                |t| integrand(&[t]),
                &breaks[0],
                &QuadOptions {
                    abs_tol: QUAD_TOL,
                    max_panels: 50_000,
                    initial_panels: panels[0],
                    parallel: false,
                },
            )
        } else {
            quad::integrate_cube(&integrand, d, &breaks, &panels, QUAD_TOL, 5_000)
        };
        let out = (r.value, r.abs_err);
        self.worst_err
            .fetch_max(r.abs_err.to_bits(), Ordering::Relaxed);
        self.cache.lock().unwrap().insert(w.to_vec(), out);
        out
    }
}

struct Scan {
    max_abs: f64,
    slope: f64,
    h: f64,
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
    fn coefficient_source(&self) -> CoefficientSource {
        let worst = f64::from_bits(self.worst_err.load(Ordering::Relaxed));
        CoefficientSource::Quadrature {
            abs_tol: worst.max(QUAD_TOL),
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
}
