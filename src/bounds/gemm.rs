//! Model G, the DFT as a matrix product (src/fft/gemm.rs): the per-coefficient worst-case bound
//! of docs/bounds.md, "Model G, GEMM transform", and its probabilistic companion.
//!
//! Per axis of length s (K = s products per real sum on the first, real, axis; K = 2s on the
//! later, complex, ones), with u the format's unit roundoff, sigma its smallest subnormal,
//! gamma = gamma_{K-1}(u_acc) (fp32: u_acc = 2^-24; on tensor cores gamma_K(2^-22),
//! [`Accumulation::TensorCore`]), products exact or within u_p |xy| + eta_p, table entries
//! within u |t| + rho:
//!
//! ```text
//! c = gamma (1 + u_p) + u_p,  alpha = c (1 + u) + u,  beta = (1 + c) rho,
//! gain = alpha g + beta h      (g, h) = (1, sqrt 2) real operands, (sqrt 2, 2) complex.
//! ```
//!
//! With S_0 = mean|v| and, axis by axis (L = product of the lengths already done),
//!
//! ```text
//! P_q = (1 + u) S_{q-1} + sigma_q / L,        sigma_q = sigma/2 (real), sigma/sqrt2 (complex)
//! S_q = (1 + gain) P_q + kappa / L,           kappa = sqrt2 (1 + gamma) eta_p K / s
//! ```
//!
//! the error of every normalised coefficient is at most
//!
//! ```text
//! sum_q [u S_{q-1} + sigma_q / L + gain P_q + kappa / L] + E_out + f64 reference,
//! E_out = g2 S_d + sqrt2 eta_acc + u ((1 + g2) S_d + sqrt2 eta_acc) + sigma / sqrt2
//! ```
//!
//! for the output's scaling by fl(1/n) in the accumulator (g2 = gamma_2(u_acc), eta_acc its
//! product underflow) and its rounding to the format.
//! In 1-D that is about (3u + gamma_{n-1}(u_acc) + sqrt2 rho) mean|v|: the format's unit roundoff
//! enters once per axis (input and table) and once at the output, the length only through fp32's
//! gamma_{n-1}; no log n
//! factor in the low format as in Higham's FFT bound. Every constant is evaluated in interval
//! arithmetic (inari, outward rounding) and the upper end reported.

use super::{PrecisionBound, f64_reference_error, input_rounding_probabilistic};
use crate::fft::TWIDDLE_F64_ERROR;
use crate::interval::{Interval, point};
use crate::precision::{Format, ScaledFormat, Scaling, pow2};

/// How the fp32 accumulator of a GEMM adds (docs/bounds.md, "Tensor-core accumulation").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Accumulation {
    /// IEEE fp32: every addition (or FMA) rounded to nearest: the CPU backend, the error core's
    /// model G, CUDA-core GEMMs. A sum of K products: gamma_{K-1}(2^-24) (Higham, eq. 4.4).
    #[default]
    Nearest,
    /// A tensor core's block FMA with fp16, bf16 or tf32 operands and an fp32 result
    /// (`precision::tensor_core`): exact products, terms aligned to the largest with >= 24 bits
    /// kept and truncated, the block's sum truncated to fp32, blocks of any size in any
    /// order or tree. A sum of K products: gamma_K(2^-22), single fp32 operations 2^-23, and
    /// underflow up to 2^-126 per product and per block (flush to zero allowed).
    TensorCore,
}

impl Accumulation {
    /// Whether the tensor-core model covers `fmt` operands: fp16, bf16 and tf32 (products
    /// exact; fp8 tensor cores keep fewer accumulator bits, fp32 GEMMs run on CUDA cores).
    pub fn tensor_core_covers(fmt: Format) -> bool {
        matches!(fmt, Format::Fp16 | Format::Bf16 | Format::Tf32)
    }

    /// How a CUDA GEMM in `fmt` accumulates: tensor cores for the formats they take
    /// ([`Accumulation::tensor_core_covers`]), IEEE fp32 (CUDA cores, round to nearest)
    /// otherwise.
    pub fn on_gpu(fmt: Format) -> Self {
        if Self::tensor_core_covers(fmt) {
            Accumulation::TensorCore
        } else {
            Accumulation::Nearest
        }
    }
}

impl std::fmt::Display for Accumulation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Accumulation::Nearest => "round-to-nearest fp32",
            Accumulation::TensorCore => "tensor-core fp32",
        })
    }
}

/// The rounding constants of model G in one format.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GemmConstants {
    /// Operand rounding: |fl(x) - x| <= u |x| + sigma / 2 (both 0 for fp64: no rounding).
    pub u: f64,
    pub sigma: f64,
    /// Absolute part of the table error, |t^ - t| <= u |t| + rho: sigma / 2 (subnormal table
    /// entries: fp8's small cos and sin) plus (1 + u) TWIDDLE_F64_ERROR (a table entry is a
    /// twiddle's component), rounded up.
    pub rho: f64,
    /// How sums of products are accumulated ([`GemmConstants::sum_gamma`]).
    pub acc: Accumulation,
    /// Unit roundoff of one operation of the accumulation format (the output scaling, a
    /// combination of sums): fp32's 2^-24, fp64's 2^-53 when the format is fp64; 2^-23 (round
    /// toward zero allowed) on tensor cores.
    pub u_acc: f64,
    /// Products in the accumulation format: |fl(xy) - xy| <= u_prod |xy| + eta_prod. On tensor
    /// cores eta_prod also carries each block's underflow (2 x 2^-126 per product).
    pub u_prod: f64,
    pub eta_prod: f64,
    /// Largest finite value of the accumulation format.
    pub acc_max: f64,
    /// Underflow of one product in the accumulation format (the output scaling): half its
    /// smallest subnormal: 2^-150 (fp32); 2^-1074 for fp64 (its smallest subnormal, as 2^-1075 is not an f64).
    pub eta_acc: f64,
}

impl GemmConstants {
    /// The constants of `fmt`: products are exact in fp32 when 2p <= 24 and the smallest
    /// product sigma^2 is a multiple of fp32's subnormal 2^-149 (fp16, E5M2, E4M3); bf16 and tf32
    /// (2p <= 24, but fp32's exponent range) lose bits only below 2^-126: eta = 2^-150; fp32
    /// operands round: u_prod = 2^-24.
    pub fn of(fmt: Format) -> Self {
        if fmt == Format::Fp64 {
            return GemmConstants {
                u: 0.0,
                sigma: 0.0,
                rho: TWIDDLE_F64_ERROR,
                acc: Accumulation::Nearest,
                u_acc: pow2(-53),
                u_prod: pow2(-53),
                eta_prod: pow2(-1074),
                acc_max: f64::MAX,
                eta_acc: pow2(-1074),
            };
        }
        let (u, sigma) = (fmt.unit_roundoff(), fmt.min_subnormal());
        let p = fmt.precision() as i32;
        let u_prod = if 2 * p <= 24 { 0.0 } else { pow2(-24) };
        let eta_prod = if 2 * p <= 24 && 2 * (fmt.emin() - p + 1) >= -149 {
            0.0
        } else {
            pow2(-150)
        };
        let rho =
            (point(sigma) / point(2.0) + (point(1.0) + point(u)) * point(TWIDDLE_F64_ERROR)).sup();
        GemmConstants {
            u,
            sigma,
            rho,
            acc: Accumulation::Nearest,
            u_acc: pow2(-24),
            u_prod,
            eta_prod,
            acc_max: f32::MAX as f64,
            eta_acc: pow2(-150),
        }
    }

    /// The constants of `fmt` accumulated as `acc` says. Tensor cores: fp16, bf16 and tf32
    /// operands only (products exact; fp8 tensor cores keep fewer accumulator bits, fp32 GEMMs
    /// run on CUDA cores); single fp32 operations within 2^-23 (round toward zero allowed), a
    /// flushed or truncated underflow within 2^-126: eta_acc = 2^-126, and eta_prod = 2^-125
    /// for each product's share of the blocks' underflow (docs/bounds.md, "Tensor-core
    /// accumulation").
    pub fn on(fmt: Format, acc: Accumulation) -> Result<Self, String> {
        let c = Self::of(fmt);
        match acc {
            Accumulation::Nearest => Ok(c),
            Accumulation::TensorCore if Accumulation::tensor_core_covers(fmt) => {
                Ok(GemmConstants {
                    acc,
                    u_acc: pow2(-23),
                    u_prod: 0.0,
                    eta_prod: pow2(-125),
                    eta_acc: pow2(-126),
                    ..c
                })
            }
            Accumulation::TensorCore => Err(format!(
                "no tensor-core accumulation model for {fmt} operands (fp16, bf16 and tf32 only)"
            )),
        }
    }

    /// gamma such that a sum of `k` products p_i, accumulated as `self.acc` says in any order,
    /// is within gamma sum |p_i| (plus k eta_prod (1 + gamma) of underflow) of the exact sum:
    /// gamma_{k-1}(u_acc) rounding to nearest, gamma_k(2^-22) on tensor cores. None when the
    /// gamma's k u reaches 1.
    pub fn sum_gamma(&self, k: usize) -> Option<Interval> {
        match self.acc {
            Accumulation::Nearest => gamma(k.saturating_sub(1) as f64, point(self.u_acc)),
            Accumulation::TensorCore => gamma(k as f64, point(pow2(-22))),
        }
    }
}

/// gamma_k(u) = k u / (1 - k u) as an interval; None when k u >= 1.
pub(super) fn gamma(k: f64, u: Interval) -> Option<Interval> {
    let ku = point(k) * u;
    (ku.sup() < 1.0).then(|| ku / (point(1.0) - ku))
}

fn infinite(probabilistic: f64, note: String) -> PrecisionBound {
    PrecisionBound {
        bound: f64::INFINITY,
        probabilistic,
        note,
    }
}

/// How a model G run rounds: the operands and the output (|q(x) - x| <= r |x| +
/// (sigma/2)(c amax + floor) per real value, amax the largest magnitude rounded with it), the
/// table (|t^ - t| <= u_t |t| + rho_t), the largest value that can be rounded, and the scale
/// multiplications per real sum (a block-scaled GEMM multiplies each block's partial sum by its
/// scale in fp32).
struct Rounding {
    r: f64,
    c: f64,
    floor: f64,
    u_t: f64,
    rho_t: f64,
    limit: f64,
    limit_name: String,
    /// None: no scales; Some(k): one scale multiplication per block of k terms of a sum.
    block: Option<usize>,
}

impl Rounding {
    fn plain(fmt: Format, c: &GemmConstants) -> Self {
        Rounding {
            r: c.u,
            c: 0.0,
            floor: 1.0,
            u_t: c.u,
            rho_t: c.rho,
            limit: fmt.max_finite(),
            limit_name: format!("{fmt} max"),
            block: None,
        }
    }

    /// A scaled format (docs/bounds.md, "Model G in a scaled format"): operands and output with
    /// the storage constants (r, c) of [`super::storage_constants`]; the table scaled per tensor
    /// (its amax is 1: S_t = 2^X(1), no saturation, u_t = u) or per MX block of its columns
    /// (S_t <= c + 2^-127, u_t = r).
    fn scaled(sf: &ScaledFormat) -> Self {
        let (r, c) = super::storage_constants(sf);
        let e = sf.elem;
        let sigma = e.min_subnormal();
        let floor = pow2(-127);
        let (u_t, s_t, block) = match sf.scaling {
            Scaling::Block { k } => (r, c + floor, Some(k)),
            _ => (r, pow2(sf.scale_exponent(1.0)), None),
        };
        let rho_t = (point(sigma) / point(2.0) * point(s_t)
            + (point(1.0) + point(u_t)) * point(TWIDDLE_F64_ERROR))
        .sup();
        Rounding {
            r,
            c,
            floor,
            u_t,
            rho_t,
            limit: super::scale_ceiling(sf),
            limit_name: format!("the scale ceiling of {sf}"),
            // Per-tensor scaling multiplies each sum once by S_a S_t: a block of the whole sum.
            block: Some(block.unwrap_or(usize::MAX)),
        }
    }

    /// Scale multiplications in a real sum of k terms.
    fn multiplications(&self, k: usize) -> usize {
        self.block.map_or(0, |b| k.div_ceil(b.min(k).max(1)))
    }
}

/// Worst-case precision bound per normalised coefficient of model G (module docs; statement and
/// proof in docs/bounds.md, "Model G"), for samples with n^-1 sum |v_j| = `mean_abs` (computed in
/// f64 by the caller; inflated here by 2 gamma_n(2^-53) for that sum) and max |v_j| = `m`, plus
/// the f64 reference's own error. Infinite, with the reason, when a value can leave the format's
/// range (the input, an intermediate rounded to the format between axes) or the accumulator's.
///
/// `probabilistic` (not a guarantee): each axis's operand-rounding term replaced by its
/// Hoeffding form — if those rounding errors are independent and zero-mean, the axis-q part is
/// at most sqrt(4 ln(4 d / delta) Z_q m_q) with probability >= 1 - delta / d, where Z_q bounds
/// the sum and m_q the largest of the terms' sizes (Z_1 = u mean|v| + sigma/2,
/// m_1 = (u M + sigma/2) / n in 1-D); table, accumulation, underflow and reference terms stay at
/// their worst case. delta = 1e-3, union bound over the d axes.
pub fn gemm_precision(shape: &[usize], fmt: Format, mean_abs: f64, m: f64) -> PrecisionBound {
    gemm_precision_on(shape, fmt, Accumulation::Nearest, mean_abs, m)
}

/// [`gemm_precision`] with the sums accumulated as `acc` says: `TensorCore` bounds what a GPU's
/// tensor cores compute (docs/bounds.md, "Tensor-core accumulation"); infinite, with the reason,
/// for a format that model does not cover.
pub fn gemm_precision_on(
    shape: &[usize],
    fmt: Format,
    acc: Accumulation,
    mean_abs: f64,
    m: f64,
) -> PrecisionBound {
    match GemmConstants::on(fmt, acc) {
        Ok(c) => bound(shape, fmt, &c, &Rounding::plain(fmt, &c), mean_abs, m),
        Err(why) => infinite(
            input_rounding_probabilistic(fmt, m, shape.iter().product(), 1e-3),
            why,
        ),
    }
}

/// Model G in the scaled format `sf` (`fft::transform_scaled` under model gemm: fp8 codes times
/// power-of-two scales, as fp8 tensor cores multiply; docs/bounds.md, "Model G in a scaled
/// format"): the bound of [`gemm_precision`] with the operand, table and output rounding of a
/// scaled format, the products of codes exact, and each sum's scale multiplications (one per
/// tensor, one per MX block along K) within fp32's underflow 2^-150 each. No range condition
/// against the element's max: only the E8M0 ceiling and the fp32 accumulator's range.
pub fn gemm_scaled_precision(
    shape: &[usize],
    sf: &ScaledFormat,
    mean_abs: f64,
    m: f64,
) -> PrecisionBound {
    let mut c = GemmConstants::of(sf.elem);
    // Products of element codes are exact in fp32 (at most 2 x 4 significand bits, never
    // below 2^-32): no product underflow.
    (c.u_prod, c.eta_prod) = (0.0, 0.0);
    let rounding = Rounding::scaled(sf);
    bound(shape, sf.elem, &c, &rounding, mean_abs, m)
}

fn bound(
    shape: &[usize],
    fmt: Format,
    c: &GemmConstants,
    rd: &Rounding,
    mean_abs: f64,
    m: f64,
) -> PrecisionBound {
    let n: usize = shape.iter().product();
    let d = shape.len();
    let model_i_prob = input_rounding_probabilistic(fmt, m, n, 1e-3);
    if m > rd.limit {
        return infinite(
            model_i_prob,
            format!("range: M = {m:e} exceeds {} {:e}", rd.limit_name, rd.limit),
        );
    }
    let one = point(1.0);
    let sqrt2 = point(2.0).sqrt();
    // u: operand and output rounding (relative); u_t, rho: the table's.
    let (u, sigma, u_t, rho) = (point(rd.r), point(c.sigma), point(rd.u_t), point(rd.rho_t));
    let (c_scale, floor) = (point(rd.c), point(rd.floor));
    let (u_acc, u_p, eta_p) = (point(c.u_acc), point(c.u_prod), point(c.eta_prod));
    let u64_ = point(pow2(-53));
    let Some(g_mean) = gamma(n as f64, u64_) else {
        return infinite(model_i_prob, format!("no finite bound at n = {n}"));
    };
    // Mass of the stage's input per point (S_{q-1}) and the largest entry (for the range).
    let mut sbar = point(mean_abs) * (one + point(2.0) * g_mean);
    let mut binf = point(m);
    let mut total = point(0.0);
    let mut lq = 1.0f64;
    // Per axis: (worst operand-rounding term, Z_q, m_q) for the probabilistic companion.
    let mut op_terms: Vec<(f64, f64, f64)> = Vec::with_capacity(d);
    for (q, axis) in (0..d).rev().enumerate() {
        let s = shape[axis];
        let real = q == 0;
        let k = if real { s } else { 2 * s };
        let Some(gam) = c.sum_gamma(k) else {
            return infinite(
                model_i_prob,
                format!("no finite bound: K u_acc >= 1 at K = {k} ({})", c.acc),
            );
        };
        let cc = gam * (one + u_p) + u_p;
        let alpha = cc * (one + u_t) + u_t;
        let beta = (one + cc) * rho;
        let (g, h) = if real {
            (one, sqrt2)
        } else {
            (sqrt2, point(2.0))
        };
        // The absolute part of an operand's rounding: sigma/2 per real value times the scale
        // (1 unscaled; <= c amax + 2^-127 scaled, amax <= binf).
        let scale = c_scale * binf + floor;
        let sig_r = if real {
            sigma / point(2.0) * scale
        } else {
            sigma / sqrt2 * scale
        };
        let l = point(lq);
        // Underflow: of the K products (eta_p each) and of the sum's scale multiplications.
        let mults = point(rd.multiplications(k) as f64);
        let kappa = sqrt2 * (one + gam) * (eta_p * point(k as f64) + mults * point(c.eta_acc))
            / point(s as f64);
        let gain = alpha * g + beta * h;
        // Operand rounding (the input, or the previous axis's output), then the GEMM.
        let op_err = u * sbar + sig_r / l;
        let pbar = (one + u) * sbar + sig_r / l;
        total = total + op_err + gain * pbar + kappa / l;
        let z = if real { op_err } else { sqrt2 * op_err };
        let m_q = (u * binf + sigma / point(2.0) * scale) / point(n as f64);
        op_terms.push((op_err.sup(), z.sup(), m_q.sup()));
        // Range: operands' entries <= ainf, partial sums <= K (1 + u_p)(1 + u + rho) ainf + K eta.
        let ainf = (one + u) * binf + sig_r;
        let kk = point(k as f64);
        let partial = kk * (one + u_p) * (one + u_t + rho) * ainf + kk * eta_p;
        if partial.sup() > c.acc_max {
            return infinite(
                model_i_prob,
                format!(
                    "range: partial sums of axis {axis} may reach {:.3e} > the accumulator's max {:e}",
                    partial.sup(),
                    c.acc_max
                ),
            );
        }
        binf = (one + gain) * point(s as f64) * ainf
            + sqrt2 * (one + gam) * (kk * eta_p + mults * point(c.eta_acc));
        if q + 1 < d && binf.sup() > rd.limit {
            return infinite(
                model_i_prob,
                format!(
                    "range: values after axis {axis} may reach {:.3e} > {} {:e} (rounded to {fmt} for the next axis)",
                    binf.sup(),
                    rd.limit_name,
                    rd.limit
                ),
            );
        }
        sbar = (one + gain) * pbar + kappa / l;
        lq *= s as f64;
    }
    // The output: w = fl_acc(acc * fl_acc(1/n)), |w - acc/n| <= ((1 + u_acc)^2 - 1) S_d + eta_acc
    // per part, then rounded to the format: |fl(w) - w| <= u |w| + sigma/sqrt2 (R1, complex).
    let Some(g2) = gamma(2.0, u_acc) else {
        unreachable!("2 u_acc < 1")
    };
    let eta_acc = sqrt2 * point(c.eta_acc);
    let wbar = (one + g2) * sbar + eta_acc;
    let wmax = (one + g2) * binf / point(n as f64) + eta_acc;
    if wmax.sup() > rd.limit {
        return infinite(
            model_i_prob,
            format!(
                "range: the output may reach {:.3e} > {} {:e}",
                wmax.sup(),
                rd.limit_name,
                rd.limit
            ),
        );
    }
    let out_scale = c_scale * wmax + floor;
    total = total
        + g2 * sbar
        + eta_acc
        + u * wbar
        + sigma / sqrt2 * out_scale
        + point(f64_reference_error(m, n));
    let bound = total.sup();
    let log_term = 4.0 * (4.0 * d as f64 / 1e-3).ln();
    let saved: f64 = op_terms
        .iter()
        .map(|&(worst, z, mq)| worst - worst.min((log_term * z * mq).sqrt()))
        .sum();
    PrecisionBound {
        bound,
        probabilistic: (bound - saved).min(bound),
        note: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_of_the_formats() {
        let c = GemmConstants::of(Format::Fp16);
        assert_eq!((c.u_prod, c.eta_prod), (0.0, 0.0));
        for fmt in [Format::E4m3, Format::E5m2] {
            assert_eq!(GemmConstants::of(fmt).eta_prod, 0.0, "{fmt}");
        }
        for fmt in [Format::Bf16, Format::Tf32] {
            let c = GemmConstants::of(fmt);
            assert_eq!((c.u_prod, c.eta_prod), (0.0, pow2(-150)), "{fmt}");
        }
        let c = GemmConstants::of(Format::Fp32);
        assert_eq!((c.u_prod, c.eta_prod), (pow2(-24), pow2(-150)));
        // E4M3: the subnormal table term sigma/2 = 2^-10 dominates rho.
        let c = GemmConstants::of(Format::E4m3);
        assert!(c.rho > pow2(-10) && c.rho < pow2(-10) * 1.001);
    }

    #[test]
    fn one_d_bound_is_about_3u_mean_plus_n_u32() {
        // fp16, n = 512, mean|v| = M = 1: 3u (input, table, output) + gamma_511(2^-24) + sqrt2
        // rho, plus small terms.
        let b = gemm_precision(&[512], Format::Fp16, 1.0, 1.0);
        let u = Format::Fp16.unit_roundoff();
        let core = 3.0 * u + 511.0 * pow2(-24);
        assert!(b.bound > core && b.bound < core * 1.01, "{b:?} vs {core:e}");
        assert!(b.probabilistic < b.bound);
        // No log n growth in the format's u: n = 2 is within 6% of n = 512.
        let b2 = gemm_precision(&[2], Format::Fp16, 1.0, 1.0);
        assert!(b2.bound > 0.94 * b.bound && b2.bound < b.bound);
    }

    #[test]
    fn range_failures_are_infinite_with_a_reason() {
        let b = gemm_precision(&[64], Format::E4m3, 500.0, 500.0);
        assert!(b.bound.is_infinite() && b.note.contains("range"), "{b:?}");
        // 2-D E4M3: the first axis's output (up to ~512 M) is rounded to E4M3 (max 448).
        let b = gemm_precision(&[512, 512], Format::E4m3, 1.0, 1.0);
        assert!(
            b.bound.is_infinite() && b.note.contains("after axis"),
            "{b:?}"
        );
        assert!(
            gemm_precision(&[8, 8], Format::E4m3, 1.0, 1.0)
                .bound
                .is_finite()
        );
    }
}
