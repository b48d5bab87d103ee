//! FFT generic over the emulated scalar: any length, 1-D to 3-D, real and complex, under the three
//! precision models of docs/bounds.md; an O(n^2) f64 DFT as the oracle; the f64 reference
//! (`reference.rs`: the DFT in double words, rounded to f64 once, with a proven error) that every
//! measured error is a distance to, and that model I transforms with; roots of unity with proven
//! errors (`roots.rs`: no libm sin or cos) for every twiddle, chirp and table.
//!
//! Convention: X_k = sum_j x_j exp(-2 pi i j k / n) (forward), exp(+...) (inverse), both
//! unnormalised. Algorithms: radix-2 and radix-4 Cooley-Tukey for powers of two, Bluestein's
//! chirp-z (through a power-of-two transform of size m >= 2n - 1) for every other length, and the
//! naive DFT (also generic, for small n and as a reference in low precision). Model G
//! (`gemm.rs`) is the dense DFT as a matrix product with fp32 accumulation, any n.

mod bluestein;
mod bounds;
mod gemm;
mod model;
mod naive;
mod nd;
mod pow2;
mod real;
mod reference;
mod roots;

pub use bounds::{
    growth, relative_error_bound, relative_error_bound_u, storage_passes,
    storage_relative_error_bound, twiddle_error, underflow_error,
};
pub use model::{
    ModelOutput, SCALED_MODELS, takes_scaled, transform_scaled, transform_scaled_input,
    transform_under_model,
};
pub use naive::{naive_dft, naive_dft_nd};
pub use nd::FftNd;
pub use num_complex::Complex;
pub use real::RealFft;
pub use reference::{DW_UNDERFLOW_BOUND, reference_bytes, reference_error_bound, reference_f64};
pub use roots::{
    DW_TWIDDLE_ERROR, DW_UNIT_ROUNDOFF, ROOT_CACHE_BYTES, TWIDDLE_F64_ERROR, f64_root, f64_roots,
};

use crate::precision::{Format, LANES, Lanes, Real, ScaledFormat};
use std::fmt;
use std::str::FromStr;

/// Sign of the exponent: forward exp(-2 pi i jk/n), inverse exp(+2 pi i jk/n).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    Forward,
    Inverse,
}

/// Which algorithm a plan uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Radix-4 for powers of two, Bluestein otherwise (n = 1: identity).
    Auto,
    /// Radix-2 Cooley-Tukey (powers of two only): the algorithm of Higham's bound.
    Radix2,
    /// Radix-4 (two radix-2 levels per pass; powers of two only).
    Radix4,
    /// Bluestein's chirp-z through a radix-4 transform of size m = 2^ceil(log2(2n - 1)).
    Bluestein,
    /// The direct O(n^2) sum, in the plan's scalar type.
    Naive,
}

impl Algorithm {
    /// All algorithms.
    pub const ALL: [Algorithm; 5] = [
        Algorithm::Auto,
        Algorithm::Radix2,
        Algorithm::Radix4,
        Algorithm::Bluestein,
        Algorithm::Naive,
    ];
    /// Name on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::Auto => "auto",
            Algorithm::Radix2 => "radix2",
            Algorithm::Radix4 => "radix4",
            Algorithm::Bluestein => "bluestein",
            Algorithm::Naive => "naive",
        }
    }
    /// The algorithm a plan of length n actually runs.
    pub fn resolve(self, n: usize) -> Algorithm {
        match self {
            Algorithm::Auto if n.is_power_of_two() => Algorithm::Radix4,
            Algorithm::Auto => Algorithm::Bluestein,
            a => a,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.name() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| {
                format!(
                    "unknown algorithm '{s}'; allowed: {}",
                    Algorithm::ALL.map(|a| a.name()).join(", ")
                )
            })
    }
}

/// Why a plan cannot be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FftError {
    #[error("transform length must be >= 1, got 0")]
    ZeroLength,
    #[error("{alg} needs a power-of-two length, got {n}")]
    NotPowerOfTwo { alg: Algorithm, n: usize },
    #[error("a transform needs at least one axis")]
    EmptyShape,
    #[error("{len} values do not match the shape {shape:?}")]
    ShapeMismatch { len: usize, shape: Vec<usize> },
    #[error("{0}")]
    Unsupported(String),
}

/// Per-stage options for the precision models.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StageOptions {
    /// Model II: round every stage's output array to this format.
    pub store: Option<Format>,
    /// Multiply by 1/2 after every radix-2 level (1/n overall for powers of two): the overflow
    /// remedy that keeps intermediate values within max |x|.
    pub scale: bool,
    /// Model II in a scaled format: every stage's output stored as fp8 values times
    /// power-of-two scales from its current amax ([`crate::precision::quantize`]). The stored
    /// arrays are planar: a line's real parts form one 1-D tensor and its imaginary parts
    /// another, so `@tensor` is one scale per array of a line and `@mxK` one per k consecutive
    /// values of it. Line by line only (`Fft::process_reporting`); the lane paths refuse it.
    pub store_scaled: Option<ScaledFormat>,
}

enum Kind<T: Real> {
    Identity,
    Pow2(pow2::Pow2<T>),
    Bluestein(Box<bluestein::Bluestein<T>>),
    Naive(Vec<Complex<T>>),
}

/// A planned 1-D complex transform of length n in scalar type T ("plans are data": twiddles are
/// computed once in f64 and rounded once to T).
pub struct Fft<T: Real> {
    n: usize,
    alg: Algorithm,
    kind: Kind<T>,
}

impl<T: Real> Fft<T> {
    /// Plan a transform of length `n`.
    pub fn new(n: usize, dir: Direction, alg: Algorithm) -> Result<Self, FftError> {
        if n == 0 {
            return Err(FftError::ZeroLength);
        }
        let alg = alg.resolve(n);
        let kind = match alg {
            Algorithm::Radix2 | Algorithm::Radix4 if !n.is_power_of_two() => {
                return Err(FftError::NotPowerOfTwo { alg, n });
            }
            _ if n == 1 => Kind::Identity,
            Algorithm::Radix2 => Kind::Pow2(pow2::Pow2::new(n, dir, false)),
            Algorithm::Radix4 => Kind::Pow2(pow2::Pow2::new(n, dir, true)),
            Algorithm::Bluestein => Kind::Bluestein(Box::new(bluestein::Bluestein::new(n, dir))),
            Algorithm::Naive => Kind::Naive({
                let roots = f64_roots(n);
                (0..n as u64)
                    .map(|k| {
                        let w = f64_root(&roots, k, dir);
                        Complex::new(T::from_f64(w.re), T::from_f64(w.im))
                    })
                    .collect()
            }),
            Algorithm::Auto => unreachable!("resolved above"),
        };
        Ok(Fft { n, alg, kind })
    }

    /// Transform length.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Always false: plans have length >= 1.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The algorithm this plan runs.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// Scratch elements `process_with_scratch` needs.
    pub fn scratch_len(&self) -> usize {
        match &self.kind {
            Kind::Identity => 0,
            Kind::Pow2(_) | Kind::Naive(_) => 2 * self.n,
            Kind::Bluestein(b) => 2 * b.m(),
        }
    }

    /// Transform in place, allocating scratch.
    pub fn process(&self, data: &mut [Complex<T>]) {
        let mut scratch = vec![Complex::new(T::zero(), T::zero()); self.scratch_len()];
        self.process_with_scratch(data, &mut scratch);
    }

    /// Transform in place with caller-owned scratch (its contents on entry do not matter).
    /// Panics with a clear message when a length does not match the plan.
    pub fn process_with_scratch(&self, data: &mut [Complex<T>], scratch: &mut [Complex<T>]) {
        self.process_staged(data, scratch, &StageOptions::default());
    }

    /// Transform with per-stage storage rounding and/or scaling; returns the overall factor the
    /// scaling applied (the result is factor * X).
    pub fn process_staged(
        &self,
        data: &mut [Complex<T>],
        scratch: &mut [Complex<T>],
        opts: &StageOptions,
    ) -> f64 {
        self.process_reporting(data, scratch, opts).0
    }

    /// As [`Fft::process_staged`], also reporting whether a saturating format clipped a value.
    pub fn process_reporting(
        &self,
        data: &mut [Complex<T>],
        scratch: &mut [Complex<T>],
        opts: &StageOptions,
    ) -> (f64, bool) {
        assert_eq!(
            data.len(),
            self.n,
            "FFT of length {} given {} values",
            self.n,
            data.len()
        );
        assert!(
            scratch.len() >= self.scratch_len(),
            "FFT of length {} needs {} scratch values, given {}",
            self.n,
            self.scratch_len(),
            scratch.len()
        );
        match &self.kind {
            Kind::Identity => (1.0, false),
            Kind::Pow2(p) => {
                let (re, im) = split_scratch(scratch, self.n);
                let r = p.process_from(data, re, im, opts);
                pow2::join(re, im, data);
                r
            }
            Kind::Bluestein(b) => b.process(data, scratch, opts),
            Kind::Naive(table) => {
                let n = self.n;
                let out = &mut scratch[..n];
                for (k, o) in out.iter_mut().enumerate() {
                    let (mut sr, mut si) = (T::zero(), T::zero());
                    for (j, x) in data.iter().enumerate() {
                        let w = table[(j * k) % n];
                        sr += w.re * x.re - w.im * x.im;
                        si += w.re * x.im + w.im * x.re;
                    }
                    *o = Complex::new(sr, si);
                }
                data.copy_from_slice(out);
                let (mut re, mut im): (Vec<T>, Vec<T>) = data.iter().map(|z| (z.re, z.im)).unzip();
                let sat = T::FORMAT.overflow() == crate::precision::Overflow::Saturate;
                let clipped = pow2::store(&mut re, &mut im, opts, sat);
                pow2::join(&re, &im, data);
                let factor = if opts.scale { 1.0 / n as f64 } else { 1.0 };
                if opts.scale {
                    let f = T::from_f64(factor);
                    for z in data.iter_mut() {
                        *z = Complex::new(z.re * f, z.im * f);
                    }
                }
                (factor, clipped)
            }
        }
    }
}

impl<T: Real> Fft<T> {
    /// Eight transforms at once, one per lane: lane k of `re[j]`, `im[j]` is point j of line k,
    /// in place. Each line's result is bit-identical to [`Fft::process_reporting`] on it alone
    /// (power-of-two plans run the same butterflies with one line per lane; other plans
    /// transform the lanes one by one). Returns the scaling factor and whether a saturating
    /// format clipped a value in some lane.
    pub fn process_lanes(
        &self,
        re: &mut [T::Lanes],
        im: &mut [T::Lanes],
        opts: &StageOptions,
    ) -> (f64, bool) {
        let n = self.n;
        assert!(
            re.len() == n && im.len() == n,
            "FFT of length {n} given {} x {} lane values",
            re.len(),
            im.len()
        );
        match &self.kind {
            Kind::Identity => (1.0, false),
            Kind::Pow2(p) => p.process_lanes(re, im, opts),
            _ => {
                let (mut factor, mut clipped) = (1.0, false);
                let (ra, ia): (Vec<_>, Vec<_>) = re
                    .iter()
                    .zip(im.iter())
                    .map(|(r, i)| (r.to_array(), i.to_array()))
                    .unzip();
                let mut outs = Vec::with_capacity(LANES);
                let mut line = vec![Complex::new(T::zero(), T::zero()); n];
                let mut scratch = vec![Complex::new(T::zero(), T::zero()); self.scratch_len()];
                for k in 0..LANES {
                    for (j, z) in line.iter_mut().enumerate() {
                        *z = Complex::new(ra[j][k], ia[j][k]);
                    }
                    let (f, c) = self.process_reporting(&mut line, &mut scratch, opts);
                    (factor, clipped) = (f, clipped | c);
                    outs.push(line.clone());
                }
                for j in 0..n {
                    re[j] = T::Lanes::from_array(std::array::from_fn(|k| outs[k][j].re));
                    im[j] = T::Lanes::from_array(std::array::from_fn(|k| outs[k][j].im));
                }
                (factor, clipped)
            }
        }
    }
}

/// Bluestein's padded length m = 2^ceil(log2(2s - 1)) for lines of `s` points, in f64: budgets
/// check sizes before any array exists, and 2s may not fit a usize.
pub fn bluestein_len(s: f64) -> f64 {
    (2.0 * s - 1.0).log2().ceil().exp2()
}

/// Peak bytes of the plans of one transform of `shape` in f64 (the widest scalar), while they are
/// built: per distinct axis length s > 1, radix 2/4 keep their twiddle levels (s entries of 16
/// bytes) and bit reversal (4 s), and read the f64 roots of s (16 s) while planning; Bluestein
/// keeps its chirp (s) and spectrum (m = 2^ceil(log2(2s - 1))) and two radix-4 plans of m
/// (2 x 20 m), and reads the roots of 2s and m, the f64 chirp and spectrum while planning
/// (32 s + 48 m); the naive DFT keeps s entries and reads s roots. A caller budgets this per
/// transform running at once beside its arrays, and the shared root cache
/// ([`ROOT_CACHE_BYTES`]) once.
pub fn plan_bytes(shape: &[usize], alg: Algorithm) -> f64 {
    let mut seen: Vec<usize> = Vec::new();
    let mut bytes = 0.0;
    for &s in shape.iter().filter(|&&s| s > 1) {
        if seen.contains(&s) {
            continue;
        }
        seen.push(s);
        let sf = s as f64;
        bytes += match alg.resolve(s) {
            Algorithm::Radix2 | Algorithm::Radix4 => 36.0 * sf,
            Algorithm::Bluestein => {
                let m = bluestein_len(sf);
                16.0 * sf + 16.0 * m + 40.0 * m + 32.0 * sf + 48.0 * m
            }
            Algorithm::Naive => 32.0 * sf,
            Algorithm::Auto => unreachable!("resolved"),
        };
    }
    bytes
}

/// View 2n complex scratch values as two real arrays of length n each.
fn split_scratch<T: Real>(scratch: &mut [Complex<T>], n: usize) -> (&mut [T], &mut [T]) {
    // Complex<T> is repr(C) { re, im }: 2n complex values are 4n reals, of which we use 2n.
    let reals: &mut [T] = unsafe {
        std::slice::from_raw_parts_mut(scratch.as_mut_ptr() as *mut T, 2 * scratch.len())
    };
    let (re, rest) = reals.split_at_mut(n);
    (re, &mut rest[..n])
}
