//! The bounds of docs/bounds.md, one function per statement; each doc comment is the formula.
//!
//! Notation: grid size s per axis, dimension d, n = s^d points, mode w in Z^d, Lipschitz constant
//! L (Euclidean norm on [0,1]^d), sup norm M, unit roundoff u of the format, smallest subnormal
//! sigma. All coefficients are normalised (X_w / n), as in the crate docs.

mod contraction;
mod gemm;
mod scaled;

pub use contraction::{ContractionSums, contraction_precision, contraction_precision_on};
pub use gemm::{
    Accumulation, GemmConstants, gemm_precision, gemm_precision_on, gemm_scaled_precision,
};
pub use scaled::{
    element_bound, scale_ceiling, scaled_input_rounding, scaled_input_rounding_amax,
    scaled_storage, storage_constants,
};

use crate::fft::{self, Algorithm};
use crate::precision::{Format, Model};
use std::f64::consts::PI;

/// Euclidean norm of an integer mode.
pub fn mode_norm(w: &[i64]) -> f64 {
    w.iter().map(|&k| (k as f64).powi(2)).sum::<f64>().sqrt()
}

/// Discretization upper bound [R, Thm 3.1 shape]:
/// |F(v)(w) - F_s(v)(w)| <= (L + 2 pi ||w||_2 M) sqrt(d) / (sqrt(3) s).
///
/// Proof (docs/bounds.md): g(x) = v(x) exp(-2 pi i <w,x>) is Lipschitz with constant
/// L + 2 pi ||w|| M; the left Riemann sum replaces g by its value at the cell corner, and the mean
/// distance from a uniform point of [0,1/s]^d to the corner is <= sqrt(d/3)/s (Jensen).
/// Infinite when L is (a discontinuous function has no such bound).
pub fn discretization_upper(l: f64, m: f64, w: &[i64], s: usize) -> f64 {
    let d = w.len() as f64;
    (l + 2.0 * PI * mode_norm(w) * m) * d.sqrt() / (3f64.sqrt() * s as f64)
}

/// Lower-bound construction (tightness in s): the worst discretization error at mode w over all
/// functions with Lipschitz constant L and sup M is at least
///     max over k in {w + s e_1, w - s e_1}, k != -w, of  min(M, L / (2 pi ||k||)) h,
/// with h = 1 when 2w = 0 (mod s) componentwise and h = 1/2 otherwise (k = 0 gives min = M).
///
/// Proof: v(x) = c cos(2 pi <k, x>) has Lipschitz constant 2 pi c ||k|| and sup c, so
/// c = min(M, L / (2 pi ||k||)) keeps it in the class. On the grid k = w (mod s), so v(x_j) =
/// c cos(2 pi <w, x_j>) and the normalised DFT at w is (c/2)(1 + [2w = 0 mod s]) = c h, while
/// F(v)(w) = (c/2)([k = w] + [k = -w]) = 0 (k = w is impossible for s > 0, k = -w is excluded).
/// For w = 0, d = 1 this is the family L/(2 pi s) cos(2 pi s x) with F_s(v)(0) = L/(2 pi s);
/// at w = -s the shift w + s e_1 = 0 is the constant M, aliased onto w: error M.
pub fn discretization_lower(l: f64, m: f64, w: &[i64], s: usize) -> f64 {
    let s_i = s as i64;
    let h = if w.iter().all(|&x| (2 * x).rem_euclid(s_i.max(1)) == 0) {
        1.0
    } else {
        0.5
    };
    let mut best: f64 = 0.0;
    for sign in [1i64, -1] {
        let mut k: Vec<i64> = w.to_vec();
        k[0] += sign * s_i;
        if k.iter().zip(w).all(|(a, b)| *a == -b) {
            continue;
        }
        let norm = k.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
        let amp = if norm == 0.0 {
            m
        } else {
            m.min(l / (2.0 * PI * norm))
        };
        best = best.max(amp * h);
    }
    best
}

/// Input rounding, model I [R, Thm 3.2 shape]:
/// |F_s(fl(v))(w) - F_s(v)(w)| <= u n^-1 sum_j |v(x_j)| + sigma/2 <= u M + sigma/2.
///
/// Each sample's rounding error is at most u |v(x_j)| in the normal range and at most sigma/2
/// (half the smallest subnormal) below it; |exp(.)| = 1 and the 1/n average does the rest.
/// `mean_abs` is n^-1 sum_j |v(x_j)| (<= M).
pub fn input_rounding(fmt: Format, mean_abs: f64) -> f64 {
    if fmt == Format::Fp64 {
        return 0.0;
    }
    fmt.unit_roundoff() * mean_abs + 0.5 * fmt.min_subnormal()
}

/// Probabilistic input-rounding bound (beyond the paper): if the n rounding errors
/// delta_j (|delta_j| <= u M) are independent and zero-mean, Hoeffding's inequality on the real and
/// imaginary parts gives, with probability at least 1 - delta,
/// |error of one coefficient| <= u M sqrt(4 ln(4/delta) / n).
/// Not a guarantee for structured inputs (a constant input has identical errors), so it is
/// reported beside the worst-case bound, never used as the bound. For n < 4 ln(4/delta)
/// (n < 34 at delta = 1e-3) the square root exceeds 1 and the worst case u M + sigma/2, which
/// holds with probability 1, is smaller: the smaller of the two is returned (both hold with
/// probability >= 1 - delta).
pub fn input_rounding_probabilistic(fmt: Format, m: f64, n: usize, delta: f64) -> f64 {
    if fmt == Format::Fp64 {
        return 0.0;
    }
    let hoeffding = fmt.unit_roundoff() * m * (4.0 * (4.0 / delta).ln() / n as f64).sqrt();
    hoeffding.min(input_rounding(fmt, m))
}

/// (max |v_j|, ||v||_2) of the samples, the norm scaled by max |v|: the plain sum of squares
/// overflows above ~1e154 (and underflows below ~1e-154), where a bound using it would become
/// inf (or 0) for no reason.
pub fn max_and_norm(samples: &[f64]) -> (f64, f64) {
    let max_abs = samples.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let norm2 = if max_abs > 0.0 && max_abs.is_finite() {
        max_abs
            * samples
                .iter()
                .map(|v| (v / max_abs).powi(2))
                .sum::<f64>()
                .sqrt()
    } else {
        max_abs
    };
    (max_abs, norm2)
}

/// Higham's bound for radix-2 Cooley-Tukey in floating point (Accuracy and Stability of Numerical
/// Algorithms, 2nd ed., Thm 24.2): ||y^ - y||_2 / ||y||_2 <= L eta / (1 - L eta), L = log2 n,
/// eta = mu + gamma_4 (sqrt 2 + mu), gamma_k = k u / (1 - k u), mu = the twiddles' error
/// (`fft::twiddle_error`: u + (1 + u) 2^-53 for f64 twiddles rounded to the format).
/// Infinite when L eta >= 1.
pub fn higham_fft(u: f64, mu: f64, n: usize) -> f64 {
    let l = (n as f64).log2();
    let g4 = 4.0 * u / (1.0 - 4.0 * u);
    let eta = mu + g4 * (2f64.sqrt() + mu);
    if l * eta >= 1.0 {
        f64::INFINITY
    } else {
        l * eta / (1.0 - l * eta)
    }
}

/// The f64 reference's own error per normalised coefficient, for samples bounded by `m` on `n`
/// points in all: `fft::reference_f64` computes in double words and rounds once, so per
/// transform |c^_k - c_k| <= M [eps + u_w (1 + eps) + u (1 + 2u)(1 + eps)(1 + u_w) + 2^-1000] +
/// sqrt2 2^-1075, with eps = `fft::reference_error_bound(n)` the double-word transform's
/// normwise bound (|dY_k| <= ||dY||_2 <= eps ||Y||_2 <= eps n M, divided by n), u_w =
/// `fft::DW_UNIT_ROUNDOFF` the division by n, u = 2^-53 the rounding of each component to f64
/// (|lo| <= u |hi| <= u (1 + 2u) |hi + lo|), 2^-1000 M the proven bound on what underflow adds
/// (the flushes that keep every double-word operation clear of it, and the scaling of samples
/// below 2^-1022 2^s: `fft::DW_UNDERFLOW_BOUND`),
/// and 2^-1075 per component where the result, scaled back, is subnormal. Counted twice: model I
/// compares the reference of the rounded samples with the reference. Zero samples (m = 0)
/// transform exactly: 0.
pub fn f64_reference_error(m: f64, n: usize) -> f64 {
    if m == 0.0 {
        return 0.0;
    }
    let eps = fft::reference_error_bound(n);
    let (uw, u) = (fft::DW_UNIT_ROUNDOFF, 2f64.powi(-53));
    let relative = eps
        + uw * (1.0 + eps)
        + u * (1.0 + 2.0 * u) * (1.0 + eps) * (1.0 + uw)
        + fft::DW_UNDERFLOW_BOUND;
    // sqrt2 2^-1075 < 2^-1074, which (unlike the product) is representable.
    let subnormal = Format::Fp64.min_subnormal();
    // (1 + 1e-15) covers this expression's own f64 rounding.
    2.0 * (relative * m + subnormal) * (1.0 + 1e-15)
}

/// The compared transform's own f64 arithmetic error per normalised coefficient, for samples
/// bounded by `m`: a transform that computes in f64 (the storage and scaled models, and fp64
/// under every model but input) errs by the algorithm's normwise bound with u = 2^-53
/// ([`fft::relative_error_bound_u`]: Higham for radix 2 and 4, the Bluestein and naive bounds
/// otherwise) times M (1 + 2^-53), plus its gradual underflow in f64
/// ([`fft::underflow_error`] for f64 arithmetic: 3 sigma_64 per radix-2 level, Bluestein's and
/// the naive sum's forms otherwise). Model I transforms with the reference itself: 0.
pub fn f64_compared_error(shape: &[usize], alg: Algorithm, model: Model, m: f64) -> f64 {
    if model == Model::Input || m == 0.0 {
        return 0.0;
    }
    let u = 2f64.powi(-53);
    fft::relative_error_bound_u(shape, alg, u, Model::Arithmetic) * m * (1.0 + u)
        + fft::underflow_error(shape, alg, Format::Fp64, Model::Arithmetic)
}

/// Whether a transform of values bounded by `m` stays within `fmt`'s range: its intermediate
/// values are bounded by growth * M (fft::growth: n for an unnormalised power-of-two transform,
/// 1 when scaled), so the precision bounds of models II and III assume
/// growth M (1 + u) (1 + eps) <= max_finite.
pub fn range_ok(fmt: Format, m: f64, growth: f64, eps: f64) -> bool {
    (m * (1.0 + fmt.unit_roundoff())) * growth * (1.0 + eps.min(1.0)) <= fmt.max_finite()
}

/// The worst-case precision bound per normalised coefficient, and why it is infinite if it is.
#[derive(Clone, Debug, PartialEq)]
pub struct PrecisionBound {
    /// The bound (f64::INFINITY when no guarantee applies).
    pub bound: f64,
    /// Probabilistic companion, delta = 1e-3: the model I part only for models I-III; model G's
    /// whole bound with its operand-rounding terms in Hoeffding form (bounds::gemm_precision).
    pub probabilistic: f64,
    /// Empty, or why the bound is infinite.
    pub note: String,
}

/// Precision bound per normalised coefficient for the transform of `shape` under `model`:
/// model I: u mean|v| + sigma/2 (input_rounding);
/// models II/III: that plus eps (M (1 + u) + sigma/2), where eps is the transform's normwise
/// relative bound (fft::relative_error_bound: Higham for radix-2) and ||y~||_2 / n <= M~, since
/// |dy_w| <= ||dy||_2 <= eps ||y~||_2 = eps sqrt(n) ||v~||_2 <= eps n M~;
/// plus the absolute underflow term of fft::underflow_error and the f64 reference's own error.
/// Model G (the GEMM, `alg` ignored): [`gemm_precision`]. Infinite when the input or the
/// unnormalised transform can leave the format's range (overflow is a range failure, not a bound
/// violation).
pub fn precision(
    shape: &[usize],
    alg: Algorithm,
    fmt: Format,
    model: Model,
    mean_abs: f64,
    m: f64,
) -> PrecisionBound {
    let n: usize = shape.iter().product();
    if model == Model::Gemm {
        return gemm_precision(shape, fmt, mean_abs, m);
    }
    let probabilistic = input_rounding_probabilistic(fmt, m, n, 1e-3);
    if m > fmt.max_finite() {
        return PrecisionBound {
            bound: f64::INFINITY,
            probabilistic,
            note: format!("range: M = {m:e} exceeds {fmt} max {:e}", fmt.max_finite()),
        };
    }
    let input = input_rounding(fmt, mean_abs);
    let eps = fft::relative_error_bound(shape, alg, fmt, model);
    let growth = fft::growth(shape, alg, model);
    if !range_ok(fmt, m, growth, eps) {
        return PrecisionBound {
            bound: f64::INFINITY,
            probabilistic,
            note: format!(
                "range: intermediate values may reach {:.3e} (growth {growth:.3e} x M) > {fmt} max {:e}",
                growth * m,
                fmt.max_finite()
            ),
        };
    }
    if !eps.is_finite() {
        return PrecisionBound {
            bound: f64::INFINITY,
            probabilistic,
            note: format!("no finite bound: log2(n) * eta >= 1 for {fmt} at n = {n}"),
        };
    }
    let m_rounded = m * (1.0 + fmt.unit_roundoff()) + 0.5 * fmt.min_subnormal();
    PrecisionBound {
        bound: input
            + eps * m_rounded
            + fft::underflow_error(shape, alg, fmt, model)
            // Model I's second reference transforms the rounded samples, up to M~.
            + f64_reference_error(m_rounded, n)
            + f64_compared_error(shape, alg, model, m),
        probabilistic,
        note: String::new(),
    }
}

/// Probabilistic input-rounding bound for the largest error over all n modes (beyond the paper):
/// the per-coefficient bound of [`input_rounding_probabilistic`] at failure probability delta / n,
/// so by the union bound all n coefficients satisfy it at once with probability >= 1 - delta:
/// max_w |error_w| <= u M sqrt(4 ln(4 n / delta) / n). Same assumptions (independent, zero-mean
/// rounding errors); reported beside the worst case, never used as the bound.
pub fn input_rounding_probabilistic_all_modes(fmt: Format, m: f64, n: usize, delta: f64) -> f64 {
    input_rounding_probabilistic(fmt, m, n, delta / n as f64)
}

/// Bound on the root-mean-square precision error over all n modes,
/// RMS_w |e_w| = (n^-1 sum_w |e_w|^2)^(1/2), of the normalised transform of `shape` (beyond the
/// paper; a deterministic consequence of Parseval):
/// RMS <= [u r + sigma/2 + eps ((1 + u) r + sigma/2)] / sqrt(n) + underflow + f64 reference,
/// with r = (n^-1 sum_j v_j^2)^(1/2) the RMS of the samples, eps the normwise relative bound of
/// fft::relative_error_bound (0 for model I), sigma the smallest subnormal.
///
/// Proof: for the input part e = F(delta)/n with |delta_j| <= u |v_j| + sigma/2, Parseval gives
/// sum_w |e_w|^2 = ||delta||_2^2 / n, so RMS = ||delta||_2 / n <= (u r + sigma/2) / sqrt(n). The
/// transform's own error satisfies ||dy||_2 <= eps ||y~||_2 = eps sqrt(n) ||v~||_2 for the rounded
/// input v~ (||v~||_2 <= sqrt(n) ((1 + u) r + sigma/2)); divided by n per coefficient and by
/// sqrt(n) for the mean, that is eps ((1 + u) r + sigma/2) / sqrt(n). The underflow and
/// reference terms bound every coefficient, hence the RMS. Compared with the worst case
/// [`precision`] (u M + eps M per coefficient), the RMS bound is smaller by sqrt(n) r / M.
/// Infinite, with the same reasons, exactly when [`precision`] is. Model G: its worst case
/// (per coefficient, with r >= mean|v| in place of mean|v|), which bounds the RMS too.
pub fn precision_rms(
    shape: &[usize],
    alg: Algorithm,
    fmt: Format,
    model: Model,
    rms: f64,
    m: f64,
) -> PrecisionBound {
    let worst = precision(shape, alg, fmt, model, rms, m);
    if !worst.bound.is_finite() {
        return worst;
    }
    if model == Model::Gemm {
        return PrecisionBound {
            probabilistic: f64::NAN,
            ..worst
        };
    }
    let n: usize = shape.iter().product();
    let (u, half_sigma) = if fmt == Format::Fp64 {
        (0.0, 0.0)
    } else {
        (fmt.unit_roundoff(), 0.5 * fmt.min_subnormal())
    };
    let eps = fft::relative_error_bound(shape, alg, fmt, model);
    let core = u * rms + half_sigma + eps * ((1.0 + u) * rms + half_sigma);
    let m_rounded = m * (1.0 + u) + half_sigma;
    PrecisionBound {
        bound: core / (n as f64).sqrt()
            + fft::underflow_error(shape, alg, fmt, model)
            // Model I's second reference transforms the rounded samples, up to M~.
            + f64_reference_error(m_rounded, n)
            + f64_compared_error(shape, alg, model, m),
        probabilistic: f64::NAN,
        note: String::new(),
    }
}

/// Crossover resolution s* where the discretization upper bound equals a precision bound p:
/// (L + 2 pi ||w|| M) sqrt(d) / (sqrt(3) s*) = p, i.e. s* = (L + 2 pi ||w|| M) sqrt(d) / (sqrt(3) p).
/// Above s* the precision error can dominate. For fp16, L ~ M and w = 0 this is ~ 1/(sqrt3 u) ~ 1200.
pub fn crossover(l: f64, m: f64, w: &[i64], precision_bound: f64) -> f64 {
    discretization_upper(l, m, w, 1) / precision_bound
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The largest distance between a transform's coefficients and the reference's.
    fn worst_error(coeffs: &[fft::Complex<f64>], reference: &[fft::Complex<f64>]) -> f64 {
        coeffs
            .iter()
            .zip(reference)
            .map(|(a, b)| (a - b).norm())
            .fold(0.0, f64::max)
    }

    #[test]
    fn fp64_rows_count_the_compared_algorithms_own_f64_arithmetic() {
        // The naive DFT in f64 sums n terms (error ~ n u): fp64 rows of --algorithm naive used
        // to be bounded by Higham's log2(n) form alone and measured 4.6x above it at n = 4095.
        for (n, alg) in [
            (4095, Algorithm::Naive),
            (2047, Algorithm::Naive),
            (1000, Algorithm::Bluestein),
            (4096, Algorithm::Radix2),
        ] {
            let v = vec![1.99; n];
            let reference = fft::reference_f64(&v, &[n]);
            for model in [Model::Arithmetic, Model::Storage, Model::ArithmeticScaled] {
                let out = fft::transform_under_model(&v, &[n], Format::Fp64, model, alg).unwrap();
                let worst = worst_error(&out.coeffs, &reference);
                let b = precision(&[n], alg, Format::Fp64, model, 1.99, 1.99).bound;
                assert!(worst <= b, "{n} {alg:?} {model:?}: {worst:e} > {b:e}");
            }
        }
        // Model I transforms with the reference itself: nothing added.
        assert_eq!(
            f64_compared_error(&[4095], Algorithm::Naive, Model::Input, 1.0),
            0.0
        );
    }

    #[test]
    fn the_reference_keeps_finite_bounds_near_f64_max() {
        // rustfft's unnormalised sums overflowed once n M passed f64's maximum; the double-word
        // reference scales the samples first, so model I keeps a finite bound and meets it.
        for n in [2usize, 3, 8, 12] {
            let v: Vec<f64> = (0..n)
                .map(|j| 1.7e308 * (0.9 - 0.3 * j as f64 / n as f64))
                .collect();
            let m = v.iter().fold(0.0f64, |a, x| a.max(x.abs()));
            let mean = v.iter().map(|x| x.abs()).sum::<f64>() / n as f64;
            let r = fft::reference_f64(&v, &[n]);
            // The naive f64 DFT of the samples scaled by 2^-10 (exact), scaled back.
            let small: Vec<_> = v
                .iter()
                .map(|&x| fft::Complex::new(x / 1024.0, 0.0))
                .collect();
            let naive = fft::naive_dft(&small, fft::Direction::Forward);
            for (a, b) in r.iter().zip(&naive) {
                let b = b * (1024.0 / n as f64);
                assert!(a.re.is_finite() && a.im.is_finite(), "{n}: {a}");
                assert!((a - b).norm() <= 1e-13 * m, "{n}: {a} vs {b}");
            }
            for model in [Model::Input, Model::Arithmetic] {
                let b = precision(&[n], Algorithm::Auto, Format::Fp64, model, mean, m);
                assert!(
                    b.bound.is_finite() || !b.note.contains("reference"),
                    "{b:?}"
                );
            }
            let b = precision(&[n], Algorithm::Auto, Format::Fp64, Model::Input, mean, m);
            assert!(b.bound.is_finite(), "{n}: {b:?}");
        }
    }

    #[test]
    fn scaled_transforms_keep_room_for_the_sum_before_halving() {
        // A scaled level forms a + w b (up to 2 M) before it halves: fp16 with M = 33000 (> max/2)
        // overflows there, so no finite bound (it used to print one, then measure inf).
        for alg in [Algorithm::Radix2, Algorithm::Radix4, Algorithm::Auto] {
            let b = precision(
                &[16],
                alg,
                Format::Fp16,
                Model::ArithmeticScaled,
                1.0,
                33000.0,
            );
            assert!(
                b.bound.is_infinite() && b.note.contains("range"),
                "{alg}: {b:?}"
            );
        }
        let b = precision(
            &[16],
            Algorithm::Auto,
            Format::Fp16,
            Model::ArithmeticScaled,
            1.0,
            30000.0,
        );
        assert!(b.bound.is_finite(), "{b:?}");
        let f = fft::growth(&[16, 16], Algorithm::Auto, Model::ArithmeticScaled);
        assert_eq!(f, 2.0, "once for the whole transform, not per axis");
    }

    #[test]
    fn fp64_bounds_count_underflow() {
        // Samples near 2^-1030: an f64 transform rounds to subnormals, so the bound is not 0
        // (measured: one subnormal, 4.9e-324, at s = 64); the compared transform's own
        // underflow counts (3 sigma per level) beside the reference's sqrt2 sigma / 2.
        let sigma = Format::Fp64.min_subnormal();
        for alg in [Algorithm::Auto, Algorithm::Bluestein, Algorithm::Naive] {
            for n in [64usize, 60] {
                let v: Vec<f64> = (0..n)
                    .map(|j| 1e-310 * (((j * 37) % 17) as f64 / 8.0 - 1.0))
                    .collect();
                let m = v.iter().fold(0.0f64, |a, x| a.max(x.abs()));
                let mean = v.iter().map(|x| x.abs()).sum::<f64>() / n as f64;
                let reference = fft::reference_f64(&v, &[n]);
                for model in [Model::Storage, Model::Arithmetic] {
                    let b = precision(&[n], alg, Format::Fp64, model, mean, m);
                    assert!(b.bound >= 10.0 * sigma, "{model}: {b:?}");
                    let out =
                        fft::transform_under_model(&v, &[n], Format::Fp64, model, alg).unwrap();
                    let worst = worst_error(&out.coeffs, &reference);
                    assert!(worst <= b.bound, "{n} {alg:?} {model}: {worst:e} > {b:?}");
                }
            }
        }
        assert!(f64_reference_error(1e-310, 64) > 0.0);
        assert_eq!(f64_reference_error(0.0, 64), 0.0);
    }

    #[test]
    fn discretization_ratios_of_the_extremal_functions() {
        // y = x at w = 0: error 1/(2s), bound 1/(sqrt3 s): ratio sqrt3/2.
        let s = 64;
        let ratio = (0.5 / s as f64) / discretization_upper(1.0, 1.0, &[0], s);
        assert!((ratio - 3f64.sqrt() / 2.0).abs() < 1e-12);
        // The lower-bound family attains L/(2 pi s); ratio to the upper bound sqrt3/(2 pi).
        let r = discretization_lower(1.0, 1.0, &[0], s) / discretization_upper(1.0, 0.0, &[0], s);
        assert!((r - 3f64.sqrt() / (2.0 * PI)).abs() < 1e-12);
        assert!(discretization_lower(2.0, 1.0, &[3], s) < discretization_upper(2.0, 0.1, &[3], s));
        // M caps the amplitude; at w = -s the constant M aliases onto w (was infinite).
        assert_eq!(discretization_lower(1e9, 0.25, &[0], s), 0.25);
        let at = discretization_lower(1.0, 0.5, &[-(s as i64)], s);
        assert_eq!(at, 0.5);
        assert!(at <= discretization_upper(1.0, 0.5, &[-(s as i64)], s));
        // Every mode of a small grid: finite, and below the upper bound.
        for w in -9..=9 {
            for d in [1usize, 2] {
                let mode = vec![w; d];
                let lo = discretization_lower(3.0, 2.0, &mode, 4);
                assert!(
                    lo.is_finite() && lo <= discretization_upper(3.0, 2.0, &mode, 4),
                    "{w}"
                );
            }
        }
    }

    #[test]
    fn probabilistic_bound_never_exceeds_the_worst_case() {
        for n in [1usize, 2, 8, 33, 34, 35, 1 << 10] {
            for fmt in [Format::Fp16, Format::Bf16, Format::E4m3] {
                let p = input_rounding_probabilistic(fmt, 3.0, n, 1e-3);
                assert!(p <= input_rounding(fmt, 3.0), "{fmt} n = {n}");
                assert!(
                    input_rounding_probabilistic_all_modes(fmt, 3.0, n, 1e-3)
                        <= input_rounding(fmt, 3.0)
                );
            }
        }
        // Above n = 4 ln(4000) ~ 33.2 the Hoeffding term is the smaller one.
        let u = Format::Fp16.unit_roundoff();
        let p = input_rounding_probabilistic(Format::Fp16, 1.0, 1 << 10, 1e-3);
        assert!((p - u * (4.0 * 4000f64.ln() / 1024.0).sqrt()).abs() < 1e-18);
    }

    #[test]
    fn higham_and_crossover() {
        let u = Format::Fp16.unit_roundoff();
        let e = higham_fft(u, u, 1 << 10);
        assert!(e > 10.0 * u && e < 10.0 * 1.5 * u * (1.0 + 4.0 * 1.415));
        assert!(higham_fft(Format::E5m2.unit_roundoff(), 0.125, 1 << 20).is_infinite());
        let s = crossover(1.0, 1.0, &[0], input_rounding(Format::Fp16, 1.0));
        assert!((s - 1.0 / (3f64.sqrt() * (u + 2f64.powi(-25)))).abs() < 1e-6 * s);
    }

    #[test]
    fn range_failure_is_an_infinite_bound_with_a_reason() {
        let b = precision(
            &[1 << 16],
            Algorithm::Auto,
            Format::Fp16,
            Model::Arithmetic,
            500.0,
            1000.0,
        );
        assert!(b.bound.is_infinite() && b.note.contains("range"), "{b:?}");
        let b = precision(
            &[1 << 16],
            Algorithm::Auto,
            Format::Fp16,
            Model::Input,
            500.0,
            1000.0,
        );
        assert!(b.bound.is_finite() && b.note.is_empty());
    }
}
