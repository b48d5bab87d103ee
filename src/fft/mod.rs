//! TEMPORARY STUB (replaced by the fft branch): the API the error module codes against.
use crate::precision::{Format, Model};
pub use num_complex::Complex;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Auto,
    Radix2,
    Radix4,
    MixedRadix,
    Bluestein,
    Naive,
}
impl std::str::FromStr for Algorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Algorithm::Auto),
            "radix2" => Ok(Algorithm::Radix2),
            _ => Err(format!("unknown algorithm '{s}'")),
        }
    }
}
impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self)
    }
}
#[derive(Debug, thiserror::Error)]
pub enum FftError {
    #[error("bad length {0}")]
    BadLength(usize),
}
pub struct ModelOutput {
    pub coeffs: Vec<Complex<f64>>,
    pub overflow: bool,
    pub saturated: bool,
}
pub fn reference_f64(samples: &[f64], shape: &[usize]) -> Vec<Complex<f64>> {
    assert_eq!(shape.len(), 1);
    let n = samples.len();
    let mut p = rustfft::FftPlanner::new();
    let f = p.plan_fft_forward(n);
    let mut d: Vec<Complex<f64>> = samples.iter().map(|&x| Complex::new(x, 0.0)).collect();
    f.process(&mut d);
    for x in &mut d {
        *x /= n as f64;
    }
    d
}
pub fn transform_under_model(
    samples: &[f64],
    shape: &[usize],
    fmt: Format,
    _model: Model,
    _alg: Algorithm,
) -> Result<ModelOutput, FftError> {
    let r: Vec<f64> = samples
        .iter()
        .map(|&x| crate::precision::round(x, fmt))
        .collect();
    let c = reference_f64(&r, shape);
    let overflow = c.iter().any(|z| !z.re.is_finite() || !z.im.is_finite());
    Ok(ModelOutput {
        coeffs: c,
        overflow,
        saturated: false,
    })
}
pub fn relative_error_bound(shape: &[usize], _alg: Algorithm, fmt: Format, model: Model) -> f64 {
    if model == Model::Input {
        return 0.0;
    }
    let l: f64 = shape.iter().map(|&s| (s as f64).log2()).sum();
    let u = fmt.unit_roundoff();
    let g4 = 4.0 * u / (1.0 - 4.0 * u);
    let eta = u + g4 * (2f64.sqrt() + u);
    if l * eta >= 1.0 {
        f64::INFINITY
    } else {
        l * eta / (1.0 - l * eta)
    }
}
