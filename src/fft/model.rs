//! The precision models as transforms of real samples, for the error measurements.

use super::reference::reference_f64;
use super::{Algorithm, Complex, Direction, FftError, FftNd, StageOptions};
use crate::precision::{Format, Model, Real, ScaledFormat, Scaling, quantize, round};

/// The result of a transform under a precision model.
#[derive(Clone, Debug)]
pub struct ModelOutput {
    /// Normalised coefficients X_k / n of the whole grid, row-major, in f64.
    pub coeffs: Vec<Complex<f64>>,
    /// Some non-finite value (overflow to inf/NaN) was produced; the coefficients are meaningless.
    pub overflow: bool,
    /// A saturating format clipped at least one value to +-max_finite.
    pub saturated: bool,
}

fn check_shape(len: usize, shape: &[usize]) -> Result<(), FftError> {
    if shape.is_empty() {
        return Err(FftError::EmptyShape);
    }
    if shape.contains(&0) {
        return Err(FftError::ZeroLength);
    }
    if shape.iter().product::<usize>() != len {
        return Err(FftError::ShapeMismatch {
            len,
            shape: shape.to_vec(),
        });
    }
    Ok(())
}

fn run_in<T: Real>(
    samples: &[f64],
    shape: &[usize],
    alg: Algorithm,
    opts: StageOptions,
) -> Result<ModelOutput, FftError> {
    let plan = FftNd::<T>::new(shape, Direction::Forward, alg)?;
    let mut data: Vec<Complex<T>> = samples
        .iter()
        .map(|&x| Complex::new(T::from_f64(x), T::zero()))
        .collect();
    let (factor, saturated) = plan.process_reporting(&mut data, &opts);
    let scale = 1.0 / (factor * samples.len() as f64);
    let mut overflow = false;
    let coeffs = data
        .iter()
        .map(|z| {
            let c = Complex::new(z.re.to_f64(), z.im.to_f64());
            overflow |= !(c.re.is_finite() && c.im.is_finite());
            c * scale
        })
        .collect();
    Ok(ModelOutput {
        coeffs,
        overflow,
        saturated,
    })
}

/// The same discrete transform of the same real samples under precision model `model` in `fmt`,
/// normalised (X / n, the division done in f64):
/// - Input (I): samples rounded to `fmt`, then the f64 reference transform (double words,
///   rounded once: `fft::reference_f64`);
/// - Storage (II): samples rounded, f64 arithmetic with exact twiddles, every stage's output
///   array rounded to `fmt`;
/// - Arithmetic (III): samples and twiddles rounded, every operation in `fmt` (emulated);
/// - ArithmeticScaled: III with a factor 1/2 per radix-2 level (the overflow remedy);
/// - Gemm (G): every coefficient as a matrix product with the cos/sin table, operands and table
///   rounded to `fmt`, products exact, fp32 accumulation, the intermediate rounded to `fmt`
///   between axes (src/fft/gemm.rs); `alg` does not apply (the GEMM is the algorithm).
pub fn transform_under_model(
    samples: &[f64],
    shape: &[usize],
    fmt: Format,
    model: Model,
    alg: Algorithm,
) -> Result<ModelOutput, FftError> {
    check_shape(samples.len(), shape)?;
    match model {
        Model::Input => {
            let rounded: Vec<f64> = samples.iter().map(|&x| round(x, fmt)).collect();
            let overflow = rounded.iter().any(|x| !x.is_finite());
            let saturated = fmt.overflow() == crate::precision::Overflow::Saturate
                && rounded.iter().any(|x| x.abs() >= fmt.max_finite());
            let coeffs = if overflow {
                vec![Complex::new(f64::NAN, f64::NAN); samples.len()]
            } else {
                reference_f64(&rounded, shape)
            };
            Ok(ModelOutput {
                coeffs,
                overflow,
                saturated,
            })
        }
        Model::Storage => {
            let rounded: Vec<f64> = samples.iter().map(|&x| round(x, fmt)).collect();
            let opts = StageOptions {
                store: Some(fmt),
                ..StageOptions::default()
            };
            run_in::<f64>(&rounded, shape, alg, opts)
        }
        Model::Arithmetic | Model::ArithmeticScaled => {
            let opts = StageOptions {
                scale: model == Model::ArithmeticScaled,
                ..StageOptions::default()
            };
            crate::with_real!(fmt, T => run_in::<T>(samples, shape, alg, opts))
        }
        Model::Gemm => Ok(super::gemm::transform(samples, shape, fmt)),
    }
}

/// Model I in a scaled format: the samples quantized with `sf` (each group scaled by its
/// power-of-two scale, rounded to the element format with saturation, scaled back; see
/// crate::precision::scaled), then the f64 transform. `overflow` reports a group with NaN/inf
/// (no finite scale), `saturated` a value beyond the element range (MX blocks; delayed amax).
pub fn transform_scaled_input(
    samples: &[f64],
    shape: &[usize],
    sf: &ScaledFormat,
) -> Result<ModelOutput, FftError> {
    // The only scaling error is a channel axis beyond the grid's dimension, which callers
    // validate; it is reported as a shape error rather than a panic.
    let (values, saturated, nonfinite) = transform_scaled_input_values(samples, shape, sf)?;
    let coeffs = if nonfinite {
        vec![Complex::new(f64::NAN, f64::NAN); samples.len()]
    } else {
        reference_f64(&values, shape)
    };
    Ok(ModelOutput {
        coeffs,
        overflow: nonfinite,
        saturated,
    })
}

/// The models a scaled format is measured under: I (the samples quantized), II (every stage's
/// output quantized too) and G (the DFT as an fp8 GEMM with scales and fp32 accumulation, as
/// fp8 tensor cores compute). Model III would round every operation to fp8 with a scale, which
/// no hardware does.
pub const SCALED_MODELS: [Model; 3] = [Model::Input, Model::Storage, Model::Gemm];

/// Whether [`transform_scaled`] takes `sf` under `model`: the models of [`SCALED_MODELS`],
/// channel scaling under model I only (a transform line has no channel axis).
pub fn takes_scaled(sf: &ScaledFormat, model: Model) -> bool {
    SCALED_MODELS.contains(&model)
        && (model == Model::Input || !matches!(sf.scaling, Scaling::Channel { .. }))
}

/// A scaled format under `model` (one of [`SCALED_MODELS`]), normalised coefficients X / n:
/// - Input (I): [`transform_scaled_input`];
/// - Storage (II): the samples quantized as a grid tensor (as under model I), then f64
///   arithmetic with exact twiddles, every stage's output array stored in `sf`, planar and
///   line by line (each array of a line one tensor: see [`StageOptions::store_scaled`]);
/// - Gemm (G): operands and table as fp8 codes with scales, code products summed in fp32 per
///   block and scaled (src/fft/gemm.rs, `transform_scaled`); `alg` does not apply.
///
/// Refused (an [`FftError::Unsupported`] naming the reason): another model, and channel
/// scaling under models II and G (a transform line has no channel axis).
pub fn transform_scaled(
    samples: &[f64],
    shape: &[usize],
    sf: &ScaledFormat,
    model: Model,
    alg: Algorithm,
) -> Result<ModelOutput, FftError> {
    if !takes_scaled(sf, model) {
        return Err(FftError::Unsupported(if SCALED_MODELS.contains(&model) {
            format!(
                "{sf} under model {model}: channel scaling applies to the grid (model input); a transform line takes tensor or mxK scaling"
            )
        } else {
            format!(
                "{sf} under model {model}: scaled formats are measured under models {}",
                SCALED_MODELS.map(|m| m.name()).join(", ")
            )
        }));
    }
    match model {
        Model::Input => transform_scaled_input(samples, shape, sf),
        Model::Gemm => {
            check_shape(samples.len(), shape)?;
            Ok(super::gemm::transform_scaled(samples, shape, sf))
        }
        Model::Storage => {
            let input = transform_scaled_input_values(samples, shape, sf)?;
            let opts = StageOptions {
                store_scaled: Some(*sf),
                ..StageOptions::default()
            };
            let mut out = run_in::<f64>(&input.0, shape, alg, opts)?;
            out.saturated |= input.1;
            if input.2 {
                out.overflow = true;
                out.coeffs.fill(Complex::new(f64::NAN, f64::NAN));
            }
            Ok(out)
        }
        _ => unreachable!("takes_scaled admits models I, II and G only"),
    }
}

/// The samples quantized with `sf` as a grid tensor: (values, saturated, non-finite group).
fn transform_scaled_input_values(
    samples: &[f64],
    shape: &[usize],
    sf: &ScaledFormat,
) -> Result<(Vec<f64>, bool, bool), FftError> {
    check_shape(samples.len(), shape)?;
    let q = quantize(samples, shape, sf).map_err(|_| FftError::ShapeMismatch {
        len: samples.len(),
        shape: shape.to_vec(),
    })?;
    Ok((q.values, q.saturated, q.nonfinite))
}
