//! TEMPORARY STUB (replaced by the functions branch).
use num_complex::Complex;
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CoefficientSource {
    Exact,
    Quadrature { abs_tol: f64 },
}
#[derive(Clone, Debug, PartialEq)]
pub enum ConstantsSource {
    Exact,
    Estimated(String),
    Given,
}
pub trait Function: Send + Sync {
    fn name(&self) -> String;
    fn dim(&self) -> usize;
    fn eval(&self, x: &[f64]) -> f64;
    fn coefficient(&self, w: &[i64]) -> Complex<f64>;
    fn coefficient_source(&self) -> CoefficientSource;
    fn lipschitz(&self) -> f64;
    fn sup(&self) -> f64;
    fn constants_source(&self) -> ConstantsSource;
    fn at_resolution(&self, _s: usize) -> Option<Box<dyn Function>> {
        None
    }
}
#[derive(Clone, Debug, Default)]
pub struct FunctionOptions {
    pub lipschitz: Option<f64>,
    pub sup: Option<f64>,
    pub seed: u64,
}
#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    #[error("unknown function '{0}'")]
    Unknown(String),
}
struct X;
impl Function for X {
    fn name(&self) -> String {
        "x".into()
    }
    fn dim(&self) -> usize {
        1
    }
    fn eval(&self, x: &[f64]) -> f64 {
        x[0]
    }
    fn coefficient(&self, w: &[i64]) -> Complex<f64> {
        if w[0] == 0 {
            Complex::new(0.5, 0.0)
        } else {
            Complex::new(0.0, 1.0 / (2.0 * std::f64::consts::PI * w[0] as f64))
        }
    }
    fn coefficient_source(&self) -> CoefficientSource {
        CoefficientSource::Exact
    }
    fn lipschitz(&self) -> f64 {
        1.0
    }
    fn sup(&self) -> f64 {
        1.0
    }
    fn constants_source(&self) -> ConstantsSource {
        ConstantsSource::Exact
    }
}
pub fn parse(
    spec: &str,
    _dim: usize,
    _o: &FunctionOptions,
) -> Result<Box<dyn Function>, FunctionError> {
    if spec == "x" {
        Ok(Box::new(X))
    } else {
        Err(FunctionError::Unknown(spec.into()))
    }
}
pub fn sample(f: &dyn Function, s: usize) -> Vec<f64> {
    let g = f.at_resolution(s);
    let f = g.as_deref().unwrap_or(f);
    (0..s).map(|j| f.eval(&[j as f64 / s as f64])).collect()
}
pub fn builtins() -> Vec<(&'static str, &'static str)> {
    vec![("x", "y = x")]
}
