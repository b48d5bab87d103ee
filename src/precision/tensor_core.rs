//! A tensor core's block fused multiply-add, emulated: the arithmetic that the tensor-core
//! accumulation bound assumes (docs/bounds.md, "Tensor-core accumulation";
//! `bounds::Accumulation::TensorCore`).
//!
//! NVIDIA does not document how its tensor cores add. Experiments on the hardware (Fasi, Higham,
//! Mikaitis and Pranesh, "Numerical behavior of NVIDIA tensor cores", PeerJ Comput. Sci. 7:e330,
//! 2021: V100, T4, A100; Khattak and Mikaitis, "Accurate models of NVIDIA tensor cores",
//! arXiv:2512.07004, 2025: V100 to B200) describe the fp16/bf16 -> fp32 block FMA
//! d = c + sum_{i<k} a_i b_i as:
//!
//! 1. the products a_i b_i exact;
//! 2. the k + 1 terms aligned to the exponent e of the largest (2^e <= max |t| < 2^(e+1)), each
//!    truncated toward zero to a multiple of 2^(e + 1 - p_align), p_align >= 24 bits kept
//!    relative to the largest (generations differ in a few extra bits, and in k);
//! 3. the aligned terms added exactly;
//! 4. the sum normalised and truncated (rounded toward zero) to fp32.
//!
//! Rounding the last step to nearest, or keeping more bits, only makes the error smaller, so the
//! bound built on this model covers those variants too. [`block_fma`] computes steps 1-4 for
//! given k and p_align; [`tc_dot`] chains blocks from c = 0 as a GEMM's K loop does. Tensor cores
//! fed fp8 keep fewer bits (about 13 on Hopper): not this model.

/// The block FMA `c + sum(products)` of the module docs, the products given exactly (in f64:
/// products of formats of at most 26 significand bits, e.g. fp16, bf16, tf32, are exact there).
/// `p_align` (24..=40) is the number of significand bits kept relative to the largest term.
pub fn block_fma(c: f32, products: &[f64], p_align: u32) -> f32 {
    assert!(
        (24..=40).contains(&p_align),
        "p_align = {p_align}: 24..=40 bits (sums of aligned terms stay exact in f64)"
    );
    assert!(products.len() < 1 << 10, "at most 1023 products per block");
    let c = c as f64;
    let largest = products.iter().fold(c.abs(), |m, p| m.max(p.abs()));
    if largest == 0.0 {
        return c as f32;
    }
    assert!(
        largest.is_normal() && largest > f64::MIN_POSITIVE * 2f64.powi(64),
        "terms must be finite and not tiny in f64"
    );
    // e = floor(log2 largest), read from the exponent field (largest is a normal f64).
    let e = ((largest.to_bits() >> 52) & 0x7ff) as i32 - 1023;
    let q = 2f64.powi(e + 1 - p_align as i32);
    // Each term truncated toward zero to a multiple of q: t / q is exact (power of two, no
    // underflow: q >= 2^-1000), trunc drops the bits below q. The sum of at most 1024 multiples
    // of q, each below 2^(e+1), needs at most p_align + 10 <= 50 bits: exact in f64.
    let sum: f64 = std::iter::once(c)
        .chain(products.iter().copied())
        .map(|t| (t / q).trunc() * q)
        .sum();
    round_toward_zero_f32(sum)
}

/// `x` rounded toward zero to fp32 (normal and subnormal; beyond fp32's range: its largest value
/// with the sign of x, as round toward zero never overflows to infinity).
pub fn round_toward_zero_f32(x: f64) -> f32 {
    let r = x as f32; // round to nearest even
    if r.is_infinite() {
        return f32::MAX.copysign(r);
    }
    if (r as f64).abs() > x.abs() {
        // One step toward zero: r != 0 here, and decrementing the magnitude bits of a
        // sign-magnitude float moves it one ulp toward zero for either sign.
        f32::from_bits(r.to_bits() - 1)
    } else {
        r
    }
}

/// A dot product on a tensor core: the exact `products` summed by block FMAs of `k` products
/// each (the last block may be shorter), in order, from c = 0.
pub fn tc_dot(products: &[f64], k: usize, p_align: u32) -> f32 {
    assert!(k >= 1, "k >= 1 products per block");
    products
        .chunks(k)
        .fold(0.0f32, |c, block| block_fma(c, block, p_align))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_sums_are_exact() {
        // Terms on one grid within 24 bits of the largest: nothing is truncated.
        let p = [1.0, 0.5, 0.25, -0.125, 3.0];
        assert_eq!(tc_dot(&p, 4, 24), 4.625);
        assert_eq!(block_fma(2.0, &[], 24), 2.0);
        assert_eq!(block_fma(0.0, &[0.0, -0.0], 24), 0.0);
    }

    #[test]
    fn small_terms_are_truncated_against_the_largest() {
        // 1 + 0.99 * 2^-23: 2^-23 is the last bit kept at p_align = 24 relative to 1, so the
        // small term is truncated to 0 (round to nearest would give 1 + 2^-23).
        let small = 0.99 * 2f64.powi(-23);
        assert_eq!(block_fma(1.0, &[small], 24), 1.0);
        assert_eq!((1.0f64 + small) as f32, 1.0 + 2f32.powi(-23));
        // Four such terms in one block: each truncated on its own, all lost.
        assert_eq!(block_fma(1.0, &[small; 4], 24), 1.0);
        // With 3 extra alignment bits they survive alignment and the total is truncated once.
        let got = block_fma(1.0, &[small; 4], 27) as f64;
        assert_eq!(got, 1.0 + 3.0 * 2f64.powi(-23));
    }

    #[test]
    fn negative_sums_truncate_toward_zero() {
        assert_eq!(round_toward_zero_f32(-(1.0 + 1.5 * 2f64.powi(-24))), -1.0);
        assert_eq!(
            round_toward_zero_f32(1.0 + 1.5 * 2f64.powi(-23)),
            1.0 + 2f32.powi(-23)
        );
        assert_eq!(round_toward_zero_f32(1e300), f32::MAX);
        assert_eq!(round_toward_zero_f32(-1e300), -f32::MAX);
        // Subnormal: 1.5 * 2^-149 truncates to 2^-149.
        assert_eq!(
            round_toward_zero_f32(1.5 * 2f64.powi(-149)),
            f32::from_bits(1)
        );
    }
}
