//! Error bounds of the transforms, per algorithm and model (docs/bounds.md, Higham 2002 ch. 24).
//!
//! All are normwise relative bounds eps: ||y^ - y||_2 <= eps ||y||_2, where y is the exact DFT of
//! the (already rounded) input, so model I's input rounding is not included. A d-D transform is a
//! product of per-axis transforms, each sqrt(s_a) times a unitary map, so relative errors compose:
//! 1 + eps = prod_a (1 + eps_a).

use super::roots::TWIDDLE_F64_ERROR;
use super::{Algorithm, Direction};
use crate::precision::{Format, Model};

/// The twiddle error mu of a transform whose twiddles are the f64 ones rounded to a format with
/// unit roundoff `u`: |fl(w^) - w| <= u |w^| + |w^ - w| <= u + (1 + u) 2^-53
/// ([`TWIDDLE_F64_ERROR`]). For f64 (no second rounding) u + ... is an over-estimate by u.
pub fn twiddle_error(u: f64) -> f64 {
    u + (1.0 + u) * TWIDDLE_F64_ERROR
}

fn gamma(k: f64, u: f64) -> f64 {
    k * u / (1.0 - k * u)
}

/// Per-level error of a radix-2 butterfly level with twiddle error mu (Higham Thm 24.2):
/// eta = mu + gamma_4 (sqrt 2 + mu).
pub(super) fn eta(u: f64, mu: f64) -> f64 {
    mu + gamma(4.0, u) * (2f64.sqrt() + mu)
}

/// Higham: L levels, eps = L eta / (1 - L eta), infinite when L eta >= 1.
pub(super) fn higham(levels: f64, eta: f64) -> f64 {
    if levels * eta >= 1.0 {
        f64::INFINITY
    } else {
        levels * eta / (1.0 - levels * eta)
    }
}

/// Bluestein's spectrum B = FFT_m(b) as computed in f64 (`bluestein::spectrum_f64`, our radix 4)
/// differs from the exact one in any entry by at most delta = rho sqrt(2n - 1), where
/// rho = sqrt(m) (tau + eps_m (1 + tau)), tau = 2^-53 the chirp's error ([`TWIDDLE_F64_ERROR`]),
/// eps_m the radix-4 bound of length m in f64: ||b^ - b||_2 <= tau sqrt(2n - 1) (2n - 1 entries of
/// modulus 1), the transform multiplies 2-norms by sqrt(m), and its own error is within
/// eps_m sqrt(m) ||b^||_2; an entry is at most the 2-norm. Since ||B||_2^2 = m (2n - 1),
/// ||B||_inf >= sqrt(2n - 1), so delta <= rho ||B||_inf: rho is B's error relative to its
/// largest entry.
fn bluestein_spectrum_error(m: usize) -> f64 {
    let u64 = 2f64.powi(-53);
    let eps_m = axis_bound(m, Algorithm::Radix4, u64, Model::Arithmetic);
    spectrum_error(m, TWIDDLE_F64_ERROR, eps_m)
}

/// rho = sqrt(m) (tau + eps_m (1 + tau)): the error of Bluestein's spectrum B = FFT_m(b)
/// relative to ||B||_inf, for chirp entries within tau and a transform of length m within eps_m
/// ([`bluestein_spectrum_error`]; the f64 reference uses it in double words). The factor
/// (1 + 1e-15) covers the rounding of this f64 expression.
pub(super) fn spectrum_error(m: usize, tau: f64, eps_m: f64) -> f64 {
    (m as f64).sqrt() * (tau + eps_m * (1.0 + tau)) * (1.0 + 1e-15)
}

/// Bluestein's bound from its parts, eps = kappa [(1 + eta)^2 (1 + eta_B) (1 + eps_m)^2 - 1]
/// (the derivation is at [`axis_bound`]): kappa = ||B||_inf / sqrt(n), eta the chirp products'
/// per-product error, eta_B the product with B's, eps_m the length-m transforms'.
pub(super) fn bluestein(kappa: f64, eta: f64, eta_b: f64, eps_m: f64) -> f64 {
    kappa * crate::precision::compound(&[(eta, 2.0), (eta_b, 1.0), (eps_m, 2.0)])
}

/// (m, kappa) with kappa = ||B||_inf / sqrt(n), the gain of Bluestein's pointwise product
/// relative to ||y||, an upper bound: the computed spectrum's largest entry plus its error
/// ([`bluestein_spectrum_error`]).
fn bluestein_kappa(n: usize) -> (usize, f64) {
    let (m, b) = super::bluestein::spectrum_f64(n, Direction::Forward);
    let bmax = b.iter().map(|z| z.norm()).fold(0.0, f64::max);
    let delta = bluestein_spectrum_error(m) * ((2 * n - 1) as f64).sqrt();
    // norm() is within 2 u of the modulus: (1 + 4 u) covers it.
    (
        m,
        (bmax * (1.0 + 4.0 * 2f64.powi(-53)) + delta) / (n as f64).sqrt(),
    )
}

/// Normwise relative error bound of one axis of length n, each rounding (model III: of an
/// operation; model II: of a stored value, relative to the stored array's 2-norm) within u.
fn axis_bound(n: usize, alg: Algorithm, u: f64, model: Model) -> f64 {
    if n == 1 || model == Model::Input || u == 0.0 {
        return 0.0;
    }
    let alg = alg.resolve(n);
    let arithmetic = matches!(model, Model::Arithmetic | Model::ArithmeticScaled);
    match alg {
        // Radix 2: Higham's Theorem 24.2 with L = log2 n and mu = twiddle_error(u) (the f64
        // twiddles rounded to the format).
        // Radix 4: each pass is two radix-2 levels with the same rounded operations, except that
        // the upper half's second twiddle is (-i) w applied exactly after the rounded product,
        // whose error is that of a product with twiddle error mu: the per-level bound eta holds,
        // and so does Higham's bound with L = log2 n.
        // Storage (II): each pass's output is rounded componentwise (|delta| <= u |.|) and each
        // pass is a scaled unitary map, so relative errors grow as (1 + u)^P - 1, P = passes.
        Algorithm::Radix2 | Algorithm::Radix4 => {
            let levels = n.trailing_zeros() as f64;
            if arithmetic {
                higham(levels, eta(u, twiddle_error(u)))
            } else {
                let passes = if alg == Algorithm::Radix4 {
                    levels / 2.0
                } else {
                    levels
                }
                .ceil();
                crate::precision::compound(&[(u, passes)])
            }
        }
        // Bluestein: y = C P F^-1 (B o F(C x)) / m with chirp C (|c| = 1), two power-of-two
        // transforms of size m (gain sqrt m each), the pointwise product (gain ||B||_inf) and the
        // final 1/m (exact). Each of the five steps is computed with relative error e_i of its
        // own output bound (complex products: eta = mu + gamma_4 (sqrt2 + mu); the transforms:
        // Higham for m), so the computed y differs from y by at most
        // [prod (1 + e_i) - 1] ||B||_inf ||x||, and ||y|| = sqrt(n) ||x||:
        // eps = kappa [(1 + eta)^2 (1 + eta_B) (1 + eps_m)^2 - 1], kappa = ||B||_inf / sqrt(n).
        // The two chirp products have mu = twiddle_error(u); the product with B, whose entries
        // are the f64 spectrum (within rho ||B||_inf, bluestein_spectrum_error) rounded to the
        // format, has mu_B = u + (1 + u) rho relative to ||B||_inf.
        // Storage: eta -> u (the rounding of each step's output; B stays in f64, whose error
        // the f64 arithmetic bound counts), eps_m -> (1 + u)^P - 1.
        Algorithm::Bluestein => {
            let (m, kappa) = bluestein_kappa(n);
            let em = axis_bound(m, Algorithm::Radix4, u, model);
            let (e, eb) = if arithmetic {
                let mu_b = u + (1.0 + u) * bluestein_spectrum_error(m);
                (eta(u, twiddle_error(u)), eta(u, mu_b))
            } else {
                (u, u)
            };
            bluestein(kappa, e, eb, em)
        }
        // Naive: each X_k is a recursive sum of n products with rounded twiddles (error mu):
        // a product errs by at most p = mu + sqrt2 gamma_2 (1 + mu) times |x_j|, so
        // |dX_k| <= (p + gamma_{n+1} (1 + p)) sum_j |x_j| <= e sqrt(n) ||x||_2 and
        // ||dX|| <= e n ||x|| = e sqrt(n) ||X||; storage rounds once: u.
        Algorithm::Naive => {
            if arithmetic {
                let mu = twiddle_error(u);
                let p = mu + 2f64.sqrt() * gamma(2.0, u) * (1.0 + mu);
                let e = p + gamma(n as f64 + 1.0, u) * (1.0 + p);
                if gamma(n as f64 + 1.0, u) < 0.0 || (n as f64 + 1.0) * u >= 1.0 {
                    f64::INFINITY
                } else {
                    e * (n as f64).sqrt()
                }
            } else {
                u
            }
        }
        Algorithm::Auto => unreachable!("resolved"),
    }
}

/// Normwise relative error bound eps of the transform of `shape` under `model` in `fmt`,
/// excluding model I's input rounding (0 for Model::Input):
/// ||y_computed - y_exact||_2 <= eps ||y_exact||_2 with y_exact the exact DFT of the rounded input.
/// Per axis: radix-2 and radix-4, model III: Higham's L eta / (1 - L eta), L = log2 n,
/// eta = u + gamma_4 (sqrt2 + u); model II: (1 + u)^P - 1 over P passes; Bluestein and naive: see
/// the comments in the source. Axes compose as 1 + eps = prod (1 + eps_a).
/// Assumes no overflow and no underflow; see [`underflow_error`] for the latter.
/// Model G (the GEMM) has no normwise bound here: infinite; its bound is per coefficient
/// (`bounds::gemm_precision`).
pub fn relative_error_bound(shape: &[usize], alg: Algorithm, fmt: Format, model: Model) -> f64 {
    if model == Model::Gemm {
        return f64::INFINITY;
    }
    // fp64's own arithmetic is counted by bounds::f64_compared_error, for every format.
    let u = if fmt == Format::Fp64 {
        0.0
    } else {
        fmt.unit_roundoff()
    };
    relative_error_bound_u(shape, alg, u, model)
}

/// [`relative_error_bound`] for unit roundoff `u` (models II and III; 0 for model I and G).
pub fn relative_error_bound_u(shape: &[usize], alg: Algorithm, u: f64, model: Model) -> f64 {
    if model == Model::Gemm {
        return f64::INFINITY;
    }
    let axes: Vec<(f64, f64)> = shape
        .iter()
        .map(|&s| (axis_bound(s, alg, u, model), 1.0))
        .collect();
    crate::precision::compound(&axes)
}

/// The stores of model II on one axis of length s: (how many arrays a line stores, the length
/// of the longest): radix 2 log2 s passes, radix 4 ceil(log2 s / 2), Bluestein 3 + 2 P(m) of
/// length m (the chirp product, the pointwise product and the output, and the two inner
/// transforms' passes), naive 1; s = 1 none.
pub fn storage_passes(s: usize, alg: Algorithm) -> (usize, usize) {
    if s == 1 {
        return (0, 1);
    }
    match alg.resolve(s) {
        Algorithm::Radix2 => (s.trailing_zeros() as usize, s),
        Algorithm::Radix4 => ((s.trailing_zeros() as usize).div_ceil(2), s),
        Algorithm::Bluestein => {
            let (m, _) = bluestein_kappa(s);
            (3 + 2 * storage_passes(m, Algorithm::Radix4).0, m)
        }
        Algorithm::Naive => (1, s),
        Algorithm::Auto => unreachable!("resolved"),
    }
}

/// Model II when each stored array's error is within `rho(L)` of its 2-norm, L the array's
/// length (a scaled storage format: `bounds::scaled_storage`): the model II bound of
/// [`relative_error_bound`] per axis with u = rho(L) for that axis's longest stored array
/// ([`storage_passes`]); axes compose as 1 + eps = prod (1 + eps_a).
pub fn storage_relative_error_bound(
    shape: &[usize],
    alg: Algorithm,
    rho: impl Fn(usize) -> f64,
) -> f64 {
    let axes: Vec<(f64, f64)> = shape
        .iter()
        .map(|&s| {
            let rho = rho(storage_passes(s, alg).1);
            (axis_bound(s, alg, rho, Model::Storage), 1.0)
        })
        .collect();
    crate::precision::compound(&axes)
}

/// Absolute error per normalised coefficient caused by underflow (gradual underflow turns each
/// rounding's relative error into an absolute one of at most sigma/2, sigma the smallest
/// subnormal).
///
/// Unscaled transforms: a rounded level injects at most 3 sigma per element in the 2-norm sense
/// (||delta|| <= 3 sigma sqrt(n)), and the remaining levels amplify the 2-norm by at most
/// sqrt(n), so after dividing by n each level adds <= 3 sigma per coefficient: L_total 3 sigma,
/// where Bluestein counts 2 log2 m + 3 levels and its gain ||B||_inf sqrt(m) / n.
/// Scaled transforms (1/2 per level): levels shrink the error, the sum over levels of
/// 4 sigma sqrt(n) 2^-(L-k)/2 is <= 14 sigma sqrt(n) per coefficient (no final division).
/// Model I needs none here (bounds::input_rounding has sigma/2); model II rounds once per pass.
/// Model G: infinite here; `bounds::gemm_precision` carries its own underflow terms.
pub fn underflow_error(shape: &[usize], alg: Algorithm, fmt: Format, model: Model) -> f64 {
    if model == Model::Gemm {
        return f64::INFINITY;
    }
    // fp64 too: an f64 transform of values near 2^-1022 underflows like any other format.
    if model == Model::Input {
        return 0.0;
    }
    let sigma = fmt.min_subnormal();
    let per = if model == Model::Storage { 1.0 } else { 3.0 };
    let n: usize = shape.iter().product();
    let mut total = 0.0;
    for &s in shape {
        if s == 1 {
            continue;
        }
        match alg.resolve(s) {
            Algorithm::Radix2 | Algorithm::Radix4 => {
                let levels = s.trailing_zeros() as f64;
                total += if model == Model::ArithmeticScaled {
                    14.0 * sigma * (n as f64).sqrt()
                } else {
                    levels * per * sigma
                };
            }
            Algorithm::Bluestein => {
                let (m, kappa) = bluestein_kappa(s);
                let levels = 2.0 * m.trailing_zeros() as f64 + 3.0;
                let gain = (kappa * (s as f64).sqrt()).max(1.0) * (m as f64).sqrt() / s as f64;
                let scaled = if model == Model::ArithmeticScaled {
                    m as f64
                } else {
                    1.0
                };
                total += levels * per * sigma * gain * scaled * (n as f64 / s as f64).sqrt();
            }
            Algorithm::Naive => {
                total += (s as f64 + 2.0) * per * sigma;
            }
            Algorithm::Auto => unreachable!("resolved"),
        }
    }
    total
}

/// Largest ratio of an intermediate value's magnitude to max|x| the transform can produce
/// (infinity-norm growth), for the range condition of the bounds: every intermediate value is
/// at most growth * max|x|. Per axis: radix 2/4 and naive s (sums of s terms); scaled radix 2/4
/// 1 (each level averages); Bluestein m ||B||_inf s (the unnormalised convolution), scaled
/// max(1, ||B||_inf s / m); model I 1; model G s (a sum of s terms, whatever `alg`). Axes
/// multiply. A scaled level forms a +- w b (up to twice the level's largest value) before it
/// halves, so a scaled transform peaks at twice the product (once: each axis starts from values
/// within the product so far).
pub fn growth(shape: &[usize], alg: Algorithm, model: Model) -> f64 {
    if model == Model::Input {
        return 1.0;
    }
    if model == Model::Gemm {
        return shape.iter().map(|&s| s as f64).product();
    }
    let scaled = model == Model::ArithmeticScaled;
    let before_halving = if scaled
        && shape
            .iter()
            .any(|&s| s > 1 && alg.resolve(s) != Algorithm::Naive)
    {
        2.0
    } else {
        1.0
    };
    before_halving
        * shape
            .iter()
            .map(|&s| match alg.resolve(s) {
                _ if s == 1 => 1.0,
                Algorithm::Radix2 | Algorithm::Radix4 => {
                    if scaled {
                        1.0
                    } else {
                        s as f64
                    }
                }
                Algorithm::Bluestein => {
                    let (m, kappa) = bluestein_kappa(s);
                    let bmax = kappa * (s as f64).sqrt();
                    if scaled {
                        (bmax * s as f64 / m as f64).max(1.0)
                    } else {
                        m as f64 * bmax * s as f64
                    }
                }
                Algorithm::Naive => s as f64,
                Algorithm::Auto => unreachable!("resolved"),
            })
            .product::<f64>()
}
