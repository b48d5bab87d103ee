//! d-dimensional transforms by 1-D transforms along every axis of a row-major array.

use super::{Algorithm, Complex, Direction, Fft, FftError, StageOptions};
use crate::precision::Real;

/// Start indices of the 1-D lines along `axis` of a row-major array of `shape` (where that
/// axis's index is 0), and the stride between a line's elements.
pub(crate) fn lines(shape: &[usize], axis: usize) -> (impl Iterator<Item = usize>, usize) {
    let n: usize = shape.iter().product();
    let len = shape[axis];
    let stride: usize = shape[axis + 1..].iter().product();
    (
        (0..n).filter(move |s| (s / stride).is_multiple_of(len)),
        stride,
    )
}

/// Apply `f` to every 1-D line of a row-major array along each axis in turn (last axis first).
pub(crate) fn for_each_line<T: Copy + Default>(
    data: &mut [T],
    shape: &[usize],
    mut f: impl FnMut(&mut [T]),
) {
    let n: usize = shape.iter().product();
    assert_eq!(
        data.len(),
        n,
        "array length {} does not match shape {shape:?}",
        data.len()
    );
    let mut line = Vec::new();
    for axis in (0..shape.len()).rev() {
        line.resize(shape[axis], T::default());
        let (starts, stride) = lines(shape, axis);
        for start in starts {
            for (i, v) in line.iter_mut().enumerate() {
                *v = data[start + i * stride];
            }
            f(&mut line);
            for (i, v) in line.iter().enumerate() {
                data[start + i * stride] = *v;
            }
        }
    }
}

/// A d-D complex transform (d = 1..3 or more) of a row-major array.
pub struct FftNd<T: Real> {
    shape: Vec<usize>,
    plans: Vec<Fft<T>>,
}

impl<T: Real> FftNd<T> {
    /// Plan a transform of the given shape; every axis uses `alg`.
    pub fn new(shape: &[usize], dir: Direction, alg: Algorithm) -> Result<Self, FftError> {
        if shape.is_empty() {
            return Err(FftError::EmptyShape);
        }
        let plans = shape
            .iter()
            .map(|&s| Fft::new(s, dir, alg))
            .collect::<Result<_, _>>()?;
        Ok(FftNd {
            shape: shape.to_vec(),
            plans,
        })
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Transform in place (unnormalised).
    pub fn process(&self, data: &mut [Complex<T>]) {
        self.process_staged(data, &StageOptions::default());
    }

    /// Transform in place with per-stage storage rounding and/or scaling (see [`StageOptions`]);
    /// returns the overall factor applied (1, or 1/prod(stage radices) when scaling).
    pub fn process_staged(&self, data: &mut [Complex<T>], opts: &StageOptions) -> f64 {
        self.process_reporting(data, opts).0
    }

    /// As [`FftNd::process_staged`], also reporting whether a saturating format clipped.
    pub fn process_reporting(&self, data: &mut [Complex<T>], opts: &StageOptions) -> (f64, bool) {
        let n: usize = self.shape.iter().product();
        assert_eq!(
            data.len(),
            n,
            "array length {} does not match shape {:?}",
            data.len(),
            self.shape
        );
        let zero = Complex::new(T::zero(), T::zero());
        let (mut line, mut scratch) = (Vec::new(), Vec::new());
        let mut factor = 1.0;
        let mut clipped = false;
        for axis in (0..self.shape.len()).rev() {
            let plan = &self.plans[axis];
            line.resize(self.shape[axis], zero);
            scratch.resize(plan.scratch_len(), zero);
            let mut f_axis = 1.0;
            let (starts, stride) = lines(&self.shape, axis);
            for start in starts {
                for (i, v) in line.iter_mut().enumerate() {
                    *v = data[start + i * stride];
                }
                let (f, c) = plan.process_reporting(&mut line, &mut scratch, opts);
                f_axis = f;
                clipped |= c;
                for (i, v) in line.iter().enumerate() {
                    data[start + i * stride] = *v;
                }
            }
            factor *= f_axis;
        }
        (factor, clipped)
    }
}
