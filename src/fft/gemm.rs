//! Model G: the DFT as a matrix product, the way a tensor-core GEMM computes it.
//!
//! An FNO layer's forward transform over the kept modes is a product with an n x 2m table of
//! cos and sin values; on tensor cores that is fp16/bf16 operands with fp32 accumulation, for any
//! n. Here every coefficient X_k (all n of them; keeping m of them only drops columns of the
//! table and changes no computed value) of a 1-D to 3-D grid is computed axis by axis, last axis
//! first (as [`super::FftNd`]), each axis as one real GEMM per line:
//!
//! - **operands**: the samples rounded once to the format (round to nearest even, the format's
//!   overflow rule); on later axes the previous axis's output, rounded to the format again
//!   componentwise (it is the next GEMM's operand, as on a GPU);
//! - **table**: t_r = fl(cos(2 pi r / s)), fl(-sin(2 pi r / s)), r = jk mod s, each computed in
//!   f64 ([`super::naive::root`]) and rounded once to the format (the matrix entry (j, k) is the
//!   entry r = jk mod s: the same values as cos(2 pi jk / s), -sin(2 pi jk / s));
//! - **products**: each real product of two format values computed in the accumulation format:
//!   exact for fp16, E5M2 and E4M3 (at most 2p <= 22 significand bits, no product below fp32's
//!   normal range); exact for bf16 and tf32 except below 2^-126, where fp32 rounds it (absolute
//!   error <= 2^-150); rounded to fp32 for fp32 operands (48 bits);
//! - **accumulation**: recursive summation in fp32 (round to nearest even, gradual underflow), in
//!   a fixed order: X_k's real and imaginary parts each start at 0 and add their products for
//!   j = 0..s-1. A complex operand a_j = (a_re,j, a_im,j) adds two products to each part, in the
//!   order re: + a_re,j C_jk, + a_im,j (-S_jk); im: + a_re,j S_jk, + a_im,j C_jk: the real GEMM
//!   with K = 2s over the complex operands stored interleaved (re, im), as in memory. The first
//!   axis's operands are real: K = s.
//! - **output**: the last axis's fp32 result is multiplied by fl32(1/n) in fp32 and rounded to
//!   the format (the stored spectrum a layer goes on with), then converted exactly to f64.
//!
//! This is the arithmetic of the CPU backend's GEMM transform (`backend::dft_gemm`) with scale
//! 1/n and no Hermitian weights, per kept coefficient: `tests/gemm_model.rs` checks the two
//! agree bit for bit, so what `mpno errors --models gemm` measures and bounds is what an FNO
//! layer with `spectral_transform = "gemm"` computes.
//!
//! In fp64 (`fmt = fp64`) the same code runs with f64 operands, products and sums: it is then an
//! O(n^2) f64 DFT. The proven bound is `bounds::gemm_precision` (docs/bounds.md, "Model G").

use super::{Complex, Direction, ModelOutput};
use crate::precision::{
    Format, Overflow, Real, ScaledFormat, Scaling, pow2, quantize, round, round_with,
};

/// The rounded table of one axis of length s: entry r is (fl(cos 2 pi r/s), fl(-sin 2 pi r/s)).
struct Table<A> {
    cos: Vec<A>,
    msin: Vec<A>,
}

impl<A: Real> Table<A> {
    fn new(s: usize, fmt: Format) -> Self {
        let roots = super::f64_roots(s);
        let (cos, msin) = (0..s as u64)
            .map(|r| {
                let w = super::f64_root(&roots, r, Direction::Forward);
                (A::from_f64(round(w.re, fmt)), A::from_f64(round(w.im, fmt)))
            })
            .unzip();
        Table { cos, msin }
    }
}

/// One line: out_k = sum_j a_j t_{jk mod s}, real part and imaginary part each a recursive sum in
/// A in the order of the module docs. `ai = None` is a real operand line (K = s).
fn line<A: Real>(ar: &[A], ai: Option<&[A]>, t: &Table<A>, out_r: &mut [A], out_i: &mut [A]) {
    let s = ar.len();
    for k in 0..s {
        let (mut sr, mut si) = (A::zero(), A::zero());
        let mut r = 0usize;
        for (j, &a) in ar.iter().enumerate() {
            sr += a * t.cos[r];
            si += a * t.msin[r];
            if let Some(ai) = ai {
                // Subtracting a_im S equals adding a_im (-S): negation is exact.
                sr -= ai[j] * t.msin[r];
                si += ai[j] * t.cos[r];
            }
            r += k;
            if r >= s {
                r -= s;
            }
        }
        out_r[k] = sr;
        out_i[k] = si;
    }
}

/// One rounding to `fmt` (its overflow rule), noting a saturating format's clip.
fn to_fmt<A: Real>(x: f64, fmt: Format, saturated: &mut bool) -> A {
    let r = round(x, fmt);
    *saturated |= fmt.overflow() == Overflow::Saturate && r.abs() >= fmt.max_finite();
    A::from_f64(r)
}

/// Model G in accumulation type `A` (f32, or f64 when `fmt` is fp64).
fn run<A: Real>(samples: &[f64], shape: &[usize], fmt: Format) -> ModelOutput {
    let n = samples.len();
    let mut saturated = false;
    // One rounding of each f64 sample to fmt (exactly representable in A).
    let mut re: Vec<A> = samples
        .iter()
        .map(|&x| to_fmt(x, fmt, &mut saturated))
        .collect();
    let mut im: Vec<A> = vec![A::zero(); n];
    let (mut lr, mut li, mut or, mut oi) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (q, axis) in (0..shape.len()).rev().enumerate() {
        if q > 0 {
            // The previous axis's fp32 output becomes this GEMM's operand: rounded to fmt.
            for x in re.iter_mut().chain(im.iter_mut()) {
                *x = to_fmt(x.to_f64(), fmt, &mut saturated);
            }
        }
        let s = shape[axis];
        let table = Table::<A>::new(s, fmt);
        for v in [&mut lr, &mut li, &mut or, &mut oi] {
            v.resize(s, A::zero());
        }
        let (starts, stride) = super::nd::lines(shape, axis);
        for start in starts {
            for i in 0..s {
                lr[i] = re[start + i * stride];
                li[i] = im[start + i * stride];
            }
            let ai = (q > 0).then_some(&li[..]);
            line(&lr, ai, &table, &mut or, &mut oi);
            for i in 0..s {
                re[start + i * stride] = or[i];
                im[start + i * stride] = oi[i];
            }
        }
    }
    // Scale by fl(1/n) in the accumulator, then round to the format (one product, one rounding).
    let inv_n = A::from_f64(1.0 / n as f64);
    let mut overflow = false;
    let coeffs = re
        .iter()
        .zip(&im)
        .map(|(&r, &i)| {
            let r: A = to_fmt((r * inv_n).to_f64(), fmt, &mut saturated);
            let i: A = to_fmt((i * inv_n).to_f64(), fmt, &mut saturated);
            let c = Complex::new(r.to_f64(), i.to_f64());
            overflow |= !(c.re.is_finite() && c.im.is_finite());
            c
        })
        .collect();
    ModelOutput {
        coeffs,
        overflow,
        saturated,
    }
}

/// Normalised coefficients X / n of real samples on the grid `shape` (row-major, lengths
/// validated by the caller) under model G in `fmt`: see the module docs.
pub(crate) fn transform(samples: &[f64], shape: &[usize], fmt: Format) -> ModelOutput {
    if fmt == Format::Fp64 {
        run::<f64>(samples, shape, fmt)
    } else {
        run::<f32>(samples, shape, fmt)
    }
}

/// Fp8 codes and their scale exponents: value i is code[i] 2^exp[i / block].
struct Codes {
    code: Vec<f32>,
    exp: Vec<i32>,
}

/// Quantize `x` (length K) in blocks of `block` values; `fixed` is the exponent of every block
/// (per-tensor scaling, from the whole tensor's amax) or None (each block's own amax: MX).
/// The codes are round_with(x / 2^X, elem, saturate): exact in f32.
fn encode(
    x: &[f64],
    block: usize,
    fixed: Option<i32>,
    sf: &ScaledFormat,
    saturated: &mut bool,
) -> Codes {
    let max = sf.elem.max_finite();
    let mut code = Vec::with_capacity(x.len());
    let mut exp = Vec::with_capacity(x.len().div_ceil(block));
    for chunk in x.chunks(block) {
        let e = fixed
            .unwrap_or_else(|| sf.scale_exponent(chunk.iter().fold(0.0f64, |a, v| a.max(v.abs()))));
        let s = pow2(e);
        for &v in chunk {
            let t = v / s;
            *saturated |= t.abs() > max;
            code.push(round_with(t, sf.elem, Overflow::Saturate) as f32);
        }
        exp.push(e);
    }
    Codes { code, exp }
}

/// sum_b fl32(fl32(sum_{i in b} a_i t_i) 2^(xa_b + xt_b)): each block's code products (exact
/// in f32) summed recursively in f32 from 0, i ascending; the block sum times its two scales
/// rounded once to f32 (f64 product, then one rounding); the blocks added in f32, b ascending.
fn scaled_dot(a: &Codes, t: &Codes, block: usize) -> f32 {
    let mut acc = 0.0f32;
    for (b, (ac, tc)) in a.code.chunks(block).zip(t.code.chunks(block)).enumerate() {
        let mut partial = 0.0f32;
        for (&x, &y) in ac.iter().zip(tc) {
            partial += x * y;
        }
        acc += (partial as f64 * pow2(a.exp[b] + t.exp[b])) as f32;
    }
    acc
}

/// Normalised coefficients X / n under model G in the scaled format `sf` (tensor or MX block
/// scaling; channel scaling is refused by the caller): the GEMM of the module docs with fp8
/// codes and power-of-two scales, as fp8 tensor cores compute it (docs/bounds.md, "Model G in
/// a scaled format"):
/// - **operands**: each axis's operand tensor (the samples; later the previous axis's fp32
///   output, complex values interleaved (re, im) along K = 2s) quantized with `sf`: `@tensor`
///   one scale from the whole tensor's amax, `@mxK` one per block of k consecutive values of a
///   line's K-vector (MX GEMMs scale along K);
/// - **table**: the same scaling on each column of the cos/sin table (K entries per output
///   coefficient and part): `@tensor` one scale from the table's amax (1), `@mxK` one per block
///   of k along K;
/// - **accumulation**: per block, code products (exact) summed recursively in fp32; the block
///   sum multiplied by its two scales with one fp32 rounding; the blocks added in fp32
///   (`@tensor`: one block, one multiplication);
/// - **output**: fp32 times fl32(1/n), then quantized with `sf` as a tensor whose last axis holds
///   the interleaved (re, im) values.
pub(crate) fn transform_scaled(samples: &[f64], shape: &[usize], sf: &ScaledFormat) -> ModelOutput {
    let n = samples.len();
    let nan = || ModelOutput {
        coeffs: vec![Complex::new(f64::NAN, f64::NAN); n],
        overflow: true,
        saturated: false,
    };
    let mut saturated = false;
    let mut re: Vec<f64> = samples.to_vec();
    let mut im: Vec<f64> = vec![0.0; n];
    for (q, axis) in (0..shape.len()).rev().enumerate() {
        if re.iter().chain(&im).any(|v| !v.is_finite()) {
            // A group with NaN or inf has no scale (E8M0's NaN).
            return nan();
        }
        let s = shape[axis];
        let complex = q > 0;
        let k_len = if complex { 2 * s } else { s };
        let (block, fixed) = match sf.scaling {
            Scaling::Block { k } => (k.min(k_len).max(1), None),
            _ => {
                let amax = re.iter().chain(&im).fold(0.0f64, |a, v| a.max(v.abs()));
                (k_len, Some(sf.scale_exponent(amax)))
            }
        };
        // The operands, line by line (K-vectors, interleaved when complex).
        let (starts, stride) = super::nd::lines(shape, axis);
        let starts: Vec<usize> = starts.collect();
        let mut kvec = Vec::with_capacity(k_len);
        let operands: Vec<Codes> = starts
            .iter()
            .map(|&start| {
                kvec.clear();
                for i in 0..s {
                    kvec.push(re[start + i * stride]);
                    if complex {
                        kvec.push(im[start + i * stride]);
                    }
                }
                encode(&kvec, block, fixed, sf, &mut saturated)
            })
            .collect();
        let roots = super::f64_roots(s);
        // Per-tensor table scale: from the table's amax (cos 0 = 1).
        let table_fixed = fixed.map(|_| {
            let amax = roots
                .iter()
                .fold(0.0f64, |a, w| a.max(w.re.abs()).max(w.im.abs()));
            sf.scale_exponent(amax)
        });
        let (mut col_re, mut col_im) = (Vec::with_capacity(k_len), Vec::with_capacity(k_len));
        let (mut out_re, mut out_im) = (vec![0.0f64; n], vec![0.0f64; n]);
        let mut table_sat = false;
        for k in 0..s {
            col_re.clear();
            col_im.clear();
            for j in 0..s {
                let w = roots[(j * k) % s];
                // re: + a_re C, + a_im (-msin); im: + a_re msin, + a_im C (msin = -sin).
                if complex {
                    col_re.extend([w.re, -w.im]);
                    col_im.extend([w.im, w.re]);
                } else {
                    col_re.push(w.re);
                    col_im.push(w.im);
                }
            }
            let t_re = encode(&col_re, block, table_fixed, sf, &mut table_sat);
            let t_im = encode(&col_im, block, table_fixed, sf, &mut table_sat);
            for (a, &start) in operands.iter().zip(&starts) {
                out_re[start + k * stride] = scaled_dot(a, &t_re, block) as f64;
                out_im[start + k * stride] = scaled_dot(a, &t_im, block) as f64;
            }
        }
        saturated |= table_sat;
        re = out_re;
        im = out_im;
    }
    if re.iter().chain(&im).any(|v| !v.is_finite()) {
        return nan();
    }
    // Scale by fl32(1/n) in fp32, then quantize the spectrum (interleaved along the last axis).
    let inv_n = (1.0 / n as f64) as f32;
    let mut inter = Vec::with_capacity(2 * n);
    for (&r, &i) in re.iter().zip(&im) {
        inter.push((r as f32 * inv_n) as f64);
        inter.push((i as f32 * inv_n) as f64);
    }
    let mut qshape = shape.to_vec();
    *qshape.last_mut().expect("a shape has an axis") *= 2;
    let Ok(qv) = quantize(&inter, &qshape, sf) else {
        return nan();
    };
    saturated |= qv.saturated;
    let coeffs = qv
        .values
        .chunks(2)
        .map(|c| Complex::new(c[0], c[1]))
        .collect();
    ModelOutput {
        coeffs,
        overflow: qv.nonfinite,
        saturated,
    }
}
