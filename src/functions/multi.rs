//! Functions of d = 2, 3 variables: separable products of 1-D functions, and the non-separable
//! exp(sin(2 pi (x_1 + ... + x_d))) with exact coefficients on the diagonal.

use super::builtin::up;
use super::special::{expsin_coefficient, expsin_slope_max, reduce_turns};
use super::{CoefficientSource, ConstantsSource, Function};
use num_complex::Complex;
use std::f64::consts::{E, TAU};
use std::sync::Arc;

/// v(x) = f_1(x_1) f_2(x_2) ... f_d(x_d) of 1-D factors. Name `prod(f_1,...,f_d)`.
///
/// Coefficient: product of the factors' coefficients. M = prod M_i (exact when the M_i are).
/// L = sqrt(sum_i (L_i prod_{j != i} M_j)^2), a safe bound for the gradient norm
/// |grad v| = sqrt(sum_i (f_i' prod_{j != i} f_j)^2); infinite when any factor's L is.
/// [`Function::at_resolution`] resolves every factor that depends on s.
#[derive(Clone)]
pub struct Product {
    factors: Vec<Arc<dyn Function>>,
}

impl Product {
    /// Panics unless every factor is 1-D and there are 1 to 3 of them.
    pub fn new(factors: Vec<Arc<dyn Function>>) -> Product {
        assert!(
            (1..=3).contains(&factors.len()) && factors.iter().all(|f| f.dim() == 1),
            "Product needs 1 to 3 one-dimensional factors"
        );
        Product { factors }
    }
}

impl Function for Product {
    fn name(&self) -> String {
        let names: Vec<String> = self.factors.iter().map(|f| f.name()).collect();
        format!("prod({})", names.join(","))
    }
    fn dim(&self) -> usize {
        self.factors.len()
    }
    fn eval(&self, x: &[f64]) -> f64 {
        let mut v = self.factors[0].eval(&x[..1]);
        for (i, f) in self.factors.iter().enumerate().skip(1) {
            v *= f.eval(&x[i..i + 1]);
        }
        v
    }
    fn coefficient(&self, w: &[i64]) -> Complex<f64> {
        self.factors
            .iter()
            .enumerate()
            .map(|(i, f)| f.coefficient(&w[i..i + 1]))
            .fold(Complex::new(1.0, 0.0), |a, b| a * b)
    }
    fn coefficient_source(&self) -> CoefficientSource {
        // Error of a product of approximations: sum_i tol_i prod_{j != i} M_j (|c_j| <= M_j).
        let mut tol = 0.0;
        let mut any = false;
        let mut all_converged = true;
        for (i, f) in self.factors.iter().enumerate() {
            if let CoefficientSource::Quadrature { abs_tol, converged } = f.coefficient_source() {
                any = true;
                all_converged &= converged;
                let others: f64 = self
                    .factors
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != i)
                    .map(|(_, g)| g.sup())
                    .product();
                tol += abs_tol * others.max(1.0);
            }
        }
        if any {
            CoefficientSource::Quadrature {
                abs_tol: tol,
                converged: all_converged,
            }
        } else {
            CoefficientSource::Exact
        }
    }
    fn lipschitz(&self) -> f64 {
        if self.factors.iter().any(|f| f.lipschitz().is_infinite()) {
            return f64::INFINITY;
        }
        let mut s = 0.0;
        for (i, f) in self.factors.iter().enumerate() {
            let others: f64 = self
                .factors
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, g)| g.sup())
                .product();
            let t = f.lipschitz() * others;
            s += t * t;
        }
        up(s.sqrt())
    }
    fn sup(&self) -> f64 {
        let m: f64 = self.factors.iter().map(|f| f.sup()).product();
        if self.factors.len() > 1 { up(m) } else { m }
    }
    fn constants_source(&self) -> ConstantsSource {
        if self.factors.len() == 1 {
            return self.factors[0].constants_source();
        }
        let parts: Vec<String> = self
            .factors
            .iter()
            .map(|f| format!("{}: {}", f.name(), f.constants_source()))
            .collect();
        ConstantsSource::Bound(format!(
            "M = prod M_i, L = sqrt(sum_i (L_i prod_(j!=i) M_j)^2) from the factors [{}]",
            parts.join("; ")
        ))
    }
    fn at_resolution(&self, s: usize) -> Option<Box<dyn Function>> {
        let resolved: Vec<Option<Box<dyn Function>>> =
            self.factors.iter().map(|f| f.at_resolution(s)).collect();
        if resolved.iter().all(|r| r.is_none()) {
            return None;
        }
        let factors = resolved
            .into_iter()
            .zip(&self.factors)
            .map(|(r, f)| match r {
                Some(b) => Arc::from(b),
                None => Arc::clone(f),
            })
            .collect();
        Some(Box::new(Product { factors }))
    }
    fn factors(&self) -> Option<&[Arc<dyn Function>]> {
        Some(&self.factors)
    }
}

/// exp(sin(2 pi (x_1 + ... + x_d))), d = 2 or 3, name `expsin_diag`: not separable, but its
/// coefficients are exact: I_k(1) (-i)^k at w = (k, ..., k), 0 off the diagonal (expand
/// exp(sin(2 pi t)) = sum_k c_k e^{2 pi i k t} with t = x_1 + ... + x_d).
/// L = sqrt(d) 2 pi 1.458528... (the gradient is (1, ..., 1) times the 1-D derivative, and the
/// sum t covers a whole period), M = e; both rounded up.
#[derive(Clone, Debug)]
pub struct ExpSinDiag {
    pub dim: usize,
}

impl Function for ExpSinDiag {
    fn name(&self) -> String {
        "expsin_diag".into()
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn eval(&self, x: &[f64]) -> f64 {
        // Reduce each coordinate separately (exact), then sum the reduced turns.
        let t: f64 = x.iter().map(|&xi| reduce_turns(1.0, xi)).sum();
        (TAU * t).sin().exp()
    }
    fn coefficient(&self, w: &[i64]) -> Complex<f64> {
        if w.iter().all(|&k| k == w[0]) {
            expsin_coefficient(w[0])
        } else {
            Complex::new(0.0, 0.0)
        }
    }
    fn coefficient_source(&self) -> CoefficientSource {
        CoefficientSource::Exact
    }
    fn lipschitz(&self) -> f64 {
        up((self.dim as f64).sqrt() * TAU * expsin_slope_max())
    }
    fn sup(&self) -> f64 {
        up(E)
    }
    fn constants_source(&self) -> ConstantsSource {
        ConstantsSource::Exact
    }
    /// Shifting one coordinate by 1 shifts t by a whole period: no jump.
    fn face_jump(&self, _axis: usize) -> Option<f64> {
        Some(0.0)
    }
}
