//! Test functions on \[0,1)^d (d = 1..3) with their continuous Fourier coefficients, Lipschitz
//! constant L and sup M: what the discretization and precision bounds of docs/bounds.md need.
//!
//! Conventions: F(v)(w) = integral over \[0,1)^d of v(x) exp(-2 pi i <w, x>) dx for w in Z^d;
//! the grid is x_j = j / s. L is the Lipschitz constant for the Euclidean norm on \[0,1\]^d (not
//! periodic: y = x has L = 1), M = sup |v| on \[0,1\]^d. Both must be exact or safe
//! over-estimates: an under-estimate makes a measured error exceed its bound.
//!
//! - Built-ins ([`builtins`]) have closed-form coefficients and exact (or rigorously bounded) L, M.
//! - `prod(f,g[,h])`, or a 1-D built-in name in dimension d > 1, is a separable product.
//! - `expsin_diag` is a non-separable exp(sin(2 pi (x_1 + ... + x_d))) with exact coefficients.
//! - Anything else is parsed as an expression in x, y, z ([`Expression`]): coefficients by guarded
//!   adaptive Gauss-Kronrod quadrature (target 1e-13 absolute), L and M certified by interval
//!   branch and bound ([`certify`]) unless given.
//!
//! Spec grammar for built-ins: `name` or `name:key=value,key=value`; list values are separated by
//! `;` (e.g. `poly:c=1;-2;3` is 1 - 2x + 3x^2).

mod builtin;
pub mod certify;
mod expr;
mod multi;
pub mod quad;
mod spec;
pub mod special;

pub use builtin::{AbsHalf, Aliased, ExpSin, LowerBound, Poly, SquareWave, TrigPoly, random_sines};
pub use expr::{BINARY_FUNCTIONS, CONSTANTS};
pub use expr::{CERTIFY_BOXES, CHECK_INTERVALS, Expression, QUAD_TOL, VARIABLES};
pub use multi::{ExpSinDiag, Product};
pub use spec::{builtin_names, builtins, parse};

use num_complex::Complex;
use rayon::prelude::*;
use std::fmt;
use std::sync::Arc;

/// Where a function's continuous coefficients come from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CoefficientSource {
    /// Closed form (to f64 rounding).
    Exact,
    /// Numerical quadrature; `abs_tol` is the target absolute accuracy, or the worst achieved
    /// error estimate so far when that is larger; `converged` is false when some coefficient's
    /// quadrature ran out of panels before meeting its target (its estimate then says how far
    /// it got).
    Quadrature { abs_tol: f64, converged: bool },
}

/// A continuous coefficient with its accuracy ([`Function::coefficient_checked`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Checked {
    pub value: Complex<f64>,
    /// Absolute error bound (closed forms: 0) or quadrature error estimate.
    pub abs_err: f64,
    /// False when the quadrature ran out of panels before meeting its target.
    pub converged: bool,
}

impl Checked {
    /// How the coefficient was obtained, for result files ("" for closed forms).
    pub fn note(&self) -> String {
        if self.abs_err == 0.0 {
            String::new()
        } else if self.converged {
            format!(
                "continuous coefficient by quadrature (abs err {:.1e})",
                self.abs_err
            )
        } else {
            format!(
                "continuous coefficient NOT resolved: quadrature budget spent at error estimate \
                 {:.1e} (target {:.0e}); the bound includes the estimate",
                self.abs_err,
                expr::QUAD_TOL
            )
        }
    }
}

/// How L and M were obtained. Every variant but the user-given ones is proven.
#[derive(Clone, Debug, PartialEq)]
pub enum ConstantsSource {
    /// Exact values (closed form, or maxima located exactly), up to an upward rounding nudge.
    Exact,
    /// Rigorous upper bounds from an analytic argument that need not be attained (the text
    /// says how).
    Bound(String),
    /// Upper bounds certified by interval arithmetic ([`certify`]; the text gives the bounds,
    /// the values attained and the boxes).
    Interval(String),
    /// Both given by the user (FunctionOptions::lipschitz and ::sup): not checked.
    Given,
    /// One given by the user, the other certified (the text says which).
    PartlyGiven(String),
}

impl ConstantsSource {
    /// One word for result files (the `constants` column): exact, bound, interval, user, or
    /// user+interval.
    pub fn tag(&self) -> &'static str {
        match self {
            ConstantsSource::Exact => "exact",
            ConstantsSource::Bound(_) => "bound",
            ConstantsSource::Interval(_) => "interval",
            ConstantsSource::Given => "user",
            ConstantsSource::PartlyGiven(_) => "user+interval",
        }
    }
    /// Whether both constants are proven (not taken from the user).
    pub fn certified(&self) -> bool {
        !matches!(
            self,
            ConstantsSource::Given | ConstantsSource::PartlyGiven(_)
        )
    }
}

impl fmt::Display for ConstantsSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConstantsSource::Exact => write!(f, "exact"),
            ConstantsSource::Bound(how) => write!(f, "upper bound ({how})"),
            ConstantsSource::Interval(how) => write!(f, "certified by intervals ({how})"),
            ConstantsSource::Given => write!(f, "given by the user"),
            ConstantsSource::PartlyGiven(how) => write!(f, "partly given by the user ({how})"),
        }
    }
}

/// A real test function on \[0,1\]^d.
pub trait Function: Send + Sync {
    /// Canonical name written to result files, e.g. "x", "linear:a=1000", "expsin", "prod(x,expsin)".
    /// Parsing the name again gives the same function.
    fn name(&self) -> String;
    fn dim(&self) -> usize;
    /// v(x) for x in \[0,1\]^d (x.len() == dim).
    fn eval(&self, x: &[f64]) -> f64;
    /// Continuous Fourier coefficient over \[0,1)^d at integer frequency w (w.len() == dim).
    fn coefficient(&self, w: &[i64]) -> Complex<f64>;
    /// Closed form, or numerical quadrature with the achieved/target absolute accuracy.
    fn coefficient_source(&self) -> CoefficientSource;
    /// The coefficient at w with its own accuracy: closed forms have error 0; quadrature reports
    /// its error estimate for this w and whether it met the target.
    fn coefficient_checked(&self, w: &[i64]) -> Checked {
        let value = self.coefficient(w);
        match self.coefficient_source() {
            CoefficientSource::Exact => Checked {
                value,
                abs_err: 0.0,
                converged: true,
            },
            CoefficientSource::Quadrature { abs_tol, converged } => Checked {
                value,
                abs_err: abs_tol,
                converged,
            },
        }
    }
    /// Euclidean Lipschitz constant on \[0,1\]^d; f64::INFINITY when not Lipschitz.
    fn lipschitz(&self) -> f64;
    /// sup |v| on \[0,1\]^d.
    fn sup(&self) -> f64;
    /// How L and M were obtained.
    fn constants_source(&self) -> ConstantsSource;
    /// Non-empty when a certified constant is valid but possibly loose (the certification ran
    /// out of its budget before the bound met the largest value found): says by how much.
    /// Written to the discretization rows' note.
    fn constants_note(&self) -> String {
        String::new()
    }
    /// Families whose definition depends on the grid size s (the aliased sine, the lower-bound
    /// cosine) return their instance for grid size s; others return None (meaning: use self).
    fn at_resolution(&self, _s: usize) -> Option<Box<dyn Function>> {
        None
    }
    /// Interval bounds on v over a box, for the resolution check of a quadrature of v
    /// ([`quad::gauss_kronrod_guarded`]): coordinates before `axis` fixed at `prefix`, `axis`
    /// over \[a, b\], the later ones over \[0, 1\]. None for functions without enclosures
    /// (the built-ins, whose coefficients are closed forms).
    fn panel_bounds(
        &self,
        _prefix: &[f64],
        _axis: usize,
        _a: f64,
        _b: f64,
    ) -> Option<quad::PanelBounds> {
        None
    }
    /// For separable products v(x) = f_1(x_1) ... f_d(x_d): the 1-D factors, in coordinate order.
    /// [`sample`] uses them for an outer-product fast path.
    fn factors(&self) -> Option<&[Arc<dyn Function>]> {
        None
    }
    /// A proven upper bound on the jump of the periodised v across the faces normal to `axis`:
    /// sup over \[0,1\]^d of |v(x with x_axis = 1) - v(x with x_axis = 0)| (the periodic
    /// wavelets' discretization bound charges it to the cells whose support wraps). None when
    /// the function has no such proof (the caller then uses min(L, 2M), which always holds).
    fn face_jump(&self, _axis: usize) -> Option<f64> {
        None
    }
}

/// Options for [`parse`]: user-given constants (used instead of the certified bounds of
/// expressions, unchecked; ignored by built-ins, whose constants are exact) and the default seed
/// of random families.
#[derive(Clone, Debug, Default)]
pub struct FunctionOptions {
    pub lipschitz: Option<f64>,
    pub sup: Option<f64>,
    pub seed: u64,
}

/// Errors from [`parse`]; each names the spec and the problem.
#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    #[error(
        "function '{spec}' is neither a built-in nor a valid expression: {message}\nBuilt-ins: {builtins}"
    )]
    Parse {
        spec: String,
        message: String,
        builtins: String,
    },
    #[error(
        "function '{spec}': unknown variable '{var}' at column {column} in dimension {dim} (variables: {allowed}). Built-ins: {builtins}"
    )]
    UnknownVariable {
        spec: String,
        var: String,
        column: usize,
        dim: usize,
        allowed: String,
        builtins: String,
    },
    #[error("function '{spec}' is not finite at {at}: value {value}")]
    NotFinite {
        spec: String,
        at: String,
        value: f64,
    },
    #[error(
        "function '{spec}' is unbounded near {at} (a pole: no finite bound on |v| holds there, so \
         no error bound would); keep poles outside [0,1]^d"
    )]
    Unbounded { spec: String, at: String },
    #[error(
        "function '{spec}' is undefined near {at} (sqrt or log of a negative number, asin or acos \
         outside [-1,1], or a fractional power of a negative number)"
    )]
    Undefined { spec: String, at: String },
    #[error("function '{spec}': parameter '{param}': {message}")]
    BadParameter {
        spec: String,
        param: String,
        message: String,
    },
    #[error("function '{spec}': {message}")]
    Dimension { spec: String, message: String },
}

/// Grid points x_j = j / s.
pub fn grid(s: usize) -> Vec<f64> {
    (0..s).map(|j| j as f64 / s as f64).collect()
}

/// Values on the grid x_j = j/s, j in {0..s-1}^d, row-major (last coordinate fastest), computed
/// in parallel. Uses `f.at_resolution(s)` when it is Some, and an outer product of the 1-D
/// factors' samples for separable products (same values as `eval`: the product is formed left
/// to right in both).
pub fn sample(f: &dyn Function, s: usize) -> Vec<f64> {
    let resolved = f.at_resolution(s);
    let f = resolved.as_deref().unwrap_or(f);
    let d = f.dim();
    let n = s
        .checked_pow(d as u32)
        .expect("sample: grid size s^d overflows usize");
    if let Some(fs) = f.factors() {
        let rows: Vec<Vec<f64>> = fs.iter().map(|g| sample(g.as_ref(), s)).collect();
        let mut out = vec![0.0; n];
        let inner = s.pow(d as u32 - 1);
        out.par_chunks_mut(inner.max(1))
            .enumerate()
            .for_each(|(i0, chunk)| {
                let a = rows[0][i0];
                match d {
                    1 => chunk[0] = a,
                    2 => {
                        for (c, &b) in chunk.iter_mut().zip(&rows[1]) {
                            *c = a * b;
                        }
                    }
                    _ => {
                        for (i1, c1) in chunk.chunks_mut(s).enumerate() {
                            let ab = a * rows[1][i1];
                            for (c, &z) in c1.iter_mut().zip(&rows[2]) {
                                *c = ab * z;
                            }
                        }
                    }
                }
            });
        return out;
    }
    let g = grid(s);
    let mut out = vec![0.0; n];
    out.par_chunks_mut(s.max(1))
        .enumerate()
        .for_each(|(row, chunk)| {
            // row indexes the leading d-1 coordinates.
            let mut x = [0.0; 3];
            let mut r = row;
            for k in (0..d.saturating_sub(1)).rev() {
                x[k] = g[r % s];
                r /= s;
            }
            for (j, c) in chunk.iter_mut().enumerate() {
                x[d - 1] = g[j];
                *c = f.eval(&x[..d]);
            }
        });
    out
}
