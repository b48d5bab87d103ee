//! The spectral contraction's precision bound (docs/bounds.md, "Spectral contraction"): one
//! output `y = sum_j l_j r_j` of `n` complex terms, computed as [`Backend::contract`] does
//! (operands rounded to the format, products and sums in fp32, the result rounded to the format)
//! in either [`ContractForm`]. With S = sum |l_j||r_j|, X = sum |l_j|, W = sum |r_j| of the
//! unrounded operands, u and sigma the format's unit roundoff and smallest subnormal
//! (|fl(z) - z| <= u |z| + sigma/sqrt2 for a complex z), and the fp32 constants of
//! [`GemmConstants`] (u_acc, products within u_p |xy| + eta_p; on tensor cores
//! [`Accumulation::TensorCore`] replaces each gamma_{K-1}(u_acc) of a K-product sum by
//! gamma_K(2^-22), with u_acc = 2^-23 and eta_p = 2^-125):
//!
//! ```text
//! E_in   = u (2 + u) S + (1 + u)(sigma/sqrt2)(X + W) + n sigma^2 / 2     operand rounding
//! S^ = (1 + u)^2 S + (1 + u)(sigma/sqrt2)(X + W) + n sigma^2/2,  X^ = (1 + u) X + n sigma/sqrt2
//! standard: E_ar = sqrt2 c4 S^ + 2 sqrt2 n (1 + g) eta_p,
//!           g = gamma_{2n-1}(u_acc), c4 = g (1 + u_p) + u_p
//! Gauss:    E_ar = (1 + u_acc)(4 c3 S^ + sqrt2 (1 + c') (sigma/2)(X^ + W^)
//!                  + 2 sqrt2 n (1 + g') eta_p) + u_acc S^,
//!           g' = gamma_{n-1}(u_acc), c' = g' (1 + u_p) + u_p,
//!           u_s = (1 + u)(1 + u_acc) - 1, c3 = c' (1 + u_s) + u_s
//! |y^ - y| <= E_in + E_ar + u (S + E_in + E_ar) + sigma/sqrt2
//! ```
//!
//! The standard form adds about sqrt2 gamma_{2n-1}(2^-24) S to the operand rounding (products
//! of fp16 operands are exact in fp32); Gauss's sums a + b, d - c, c + d are rounded to the
//! format (they are GEMM operands), which adds about 4 u S: for fp16 the arithmetic bound grows
//! from ~1.7e-7 n S to ~2e-3 S. Every constant is evaluated in interval arithmetic (outward
//! rounding) and the upper end reported.
//!
//! [`Backend::contract`]: crate::backend::Backend::contract

use super::gemm::{Accumulation, GemmConstants, gamma};
use crate::backend::ContractForm;
use crate::interval::point;
use crate::precision::{Format, pow2};

/// The sums of one contraction output's terms that the bound needs, computed by the caller in
/// f64 from the unrounded operands (inflated here for that f64 arithmetic).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ContractionSums {
    /// Number of terms.
    pub n: usize,
    /// sum_j |l_j| |r_j|.
    pub s: f64,
    /// sum_j |l_j|.
    pub x: f64,
    /// sum_j |r_j|.
    pub w: f64,
    /// The largest |real or imaginary part| of any operand.
    pub max_part: f64,
}

impl ContractionSums {
    /// The sums of the terms `(l_j, r_j)` as (re, im) pairs.
    pub fn of(terms: impl IntoIterator<Item = ((f64, f64), (f64, f64))>) -> Self {
        let mut t = ContractionSums::default();
        for ((lr, li), (rr, ri)) in terms {
            let (l, r) = (lr.hypot(li), rr.hypot(ri));
            t.n += 1;
            t.s += l * r;
            t.x += l;
            t.w += r;
            t.max_part = t
                .max_part
                .max(lr.abs())
                .max(li.abs())
                .max(rr.abs())
                .max(ri.abs());
        }
        t
    }
}

/// Worst-case bound on |y^ - y| for one contraction output (module docs; statement and proof in
/// docs/bounds.md, "Spectral contraction"), or `Err` naming the range condition that fails
/// (an operand, a Gauss sum or the output beyond the format's largest value, a partial sum
/// beyond fp32's).
pub fn contraction_precision(
    fmt: Format,
    form: ContractForm,
    t: &ContractionSums,
) -> Result<f64, String> {
    contraction_precision_on(fmt, form, Accumulation::Nearest, t)
}

/// [`contraction_precision`] with the fp32 sums accumulated as `acc` says: `TensorCore` bounds
/// what cuBLAS's tensor cores compute for fp16, bf16 and tf32 operands (docs/bounds.md,
/// "Tensor-core accumulation"); `Err` for a format that model does not cover.
pub fn contraction_precision_on(
    fmt: Format,
    form: ContractForm,
    acc: Accumulation,
    t: &ContractionSums,
) -> Result<f64, String> {
    if t.n == 0 {
        return Ok(0.0);
    }
    let k = GemmConstants::on(fmt, acc)?;
    let one = point(1.0);
    let sqrt2 = point(2.0).sqrt();
    let (u, u_acc, u_p, eta_p) = (
        point(k.u),
        point(k.u_acc),
        point(k.u_prod),
        point(k.eta_prod),
    );
    let sig = point(k.sigma);
    let n = point(t.n as f64);
    // The caller's f64 sums: each term within (1 + 2^-53)^3 of exact (hypot, product), the sum
    // within gamma_{n}: inflate by gamma_{n+4}(2^-53).
    let infl = one + gamma(t.n as f64 + 4.0, point(pow2(-53))).ok_or("n too large")?;
    let (s, x, w) = (point(t.s) * infl, point(t.x) * infl, point(t.w) * infl);
    let sig_c = sig / sqrt2;
    let e_in = u * (point(2.0) + u) * s + (one + u) * sig_c * (x + w) + n * sig * sig / point(2.0);
    let s_hat =
        (one + u) * (one + u) * s + (one + u) * sig_c * (x + w) + n * sig * sig / point(2.0);
    let x_hat = (one + u) * x + n * sig_c;
    let w_hat = (one + u) * w + n * sig_c;
    let too_many = || format!("{} terms: gamma_n(u_acc) >= 1", t.n);
    let e_ar = match form {
        ContractForm::Standard => {
            let g = k.sum_gamma(2 * t.n).ok_or_else(too_many)?;
            let c4 = g * (one + u_p) + u_p;
            sqrt2 * c4 * s_hat + point(2.0) * sqrt2 * n * (one + g) * eta_p
        }
        ContractForm::Gauss => {
            let g = k.sum_gamma(t.n).ok_or_else(too_many)?;
            let c1 = g * (one + u_p) + u_p;
            let u_s = (one + u) * (one + u_acc) - one;
            let c3 = c1 * (one + u_s) + u_s;
            (one + u_acc)
                * (point(4.0) * c3 * s_hat
                    + sqrt2 * (one + c1) * sig / point(2.0) * (x_hat + w_hat)
                    + point(2.0) * sqrt2 * n * (one + g) * eta_p)
                + u_acc * s_hat
        }
    };
    let y_max = s + e_in + e_ar;
    let total = e_in + e_ar + u * y_max + sig_c;
    // Range: operands and Gauss sums (|a + b| <= 2 max part) in the format, the output in the
    // format, fp32 partial sums (each at most the sum of |products|, <= 2 S^ in either form).
    let part = point(t.max_part) * (one + u);
    let fmt_max = fmt.max_finite();
    if part.sup() > fmt_max {
        return Err(format!(
            "an operand part {} exceeds {fmt}'s max {fmt_max}",
            t.max_part
        ));
    }
    if form == ContractForm::Gauss && (point(2.0) * part * (one + u)).sup() > fmt_max {
        return Err(format!(
            "a Gauss sum (up to {}) can exceed {fmt}'s max",
            2.0 * t.max_part
        ));
    }
    if (y_max * (one + u)).sup() > fmt_max {
        return Err(format!(
            "the output (up to {}) can exceed {fmt}'s max",
            y_max.sup()
        ));
    }
    if (point(4.0) * s_hat).sup() > k.acc_max {
        return Err("a partial sum can exceed the accumulator's max".into());
    }
    Ok(total.sup())
}
