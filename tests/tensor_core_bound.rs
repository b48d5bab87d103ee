//! The tensor-core accumulation bound (docs/bounds.md, "Tensor-core accumulation";
//! `bounds::Accumulation::TensorCore`) against an emulated tensor core
//! (`precision::tensor_core`: exact products, alignment to the largest term with truncation,
//! the block's sum truncated to fp32), for block sizes 1..32 and 24 or 27 alignment bits: the sum
//! lemma on random and adversarial data, model G's 1-D transform and the spectral contraction
//! computed as a GPU does, every result under its bound; and data on which the
//! round-to-nearest bound does not hold for the emulated hardware (why the GPU needs its own).

use mpno::backend::ContractForm;
use mpno::bounds::{
    Accumulation, ContractionSums, GemmConstants, contraction_precision_on, gemm_precision_on,
};
use mpno::precision::tensor_core::{round_toward_zero_f32, tc_dot};
use mpno::precision::{Format, round};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus as Rng64;

const BLOCKS: [usize; 6] = [1, 2, 4, 8, 16, 32];
const ALIGN: [u32; 2] = [24, 27];

/// The lemma's right-hand side for K exact products: gamma sum|p| + K eta_p (1 + gamma).
fn sum_bound(c: &GemmConstants, p: &[f64]) -> f64 {
    let g = c.sum_gamma(p.len()).unwrap().sup();
    let abs: f64 = p.iter().map(|x| x.abs()).sum();
    g * abs + p.len() as f64 * c.eta_prod * (1.0 + g)
}

/// Exact sum of products of fp16 values (each exact in f64, at most 22 bits at exponents
/// -48..32): accumulated with a two-sum so the reference itself has no error that matters.
fn exact_sum(p: &[f64]) -> f64 {
    let (mut s, mut e) = (0.0f64, 0.0f64);
    for &x in p {
        let t = s + x;
        let bp = t - s;
        e += (s - (t - bp)) + (x - bp);
        s = t;
    }
    s + e
}

fn fp16(rng: &mut Rng64, scale: f64) -> f64 {
    round(rng.random_range(-1.0..1.0) * scale, Format::Fp16)
}

#[test]
fn tensor_core_sums_lie_under_the_lemma() {
    let tc = GemmConstants::on(Format::Fp16, Accumulation::TensorCore).unwrap();
    let mut rng = Rng64::seed_from_u64(7);
    let mut worst = 0.0f64;
    for kk in [1usize, 2, 7, 64, 513, 4096] {
        for trial in 0..6 {
            // Uniform, all positive, and wildly different magnitudes.
            let p: Vec<f64> = (0..kk)
                .map(|_| match trial % 3 {
                    0 => fp16(&mut rng, 1.0) * fp16(&mut rng, 1.0),
                    1 => (fp16(&mut rng, 1.0) * fp16(&mut rng, 1.0)).abs(),
                    _ => {
                        let scale = 2f64.powi(rng.random_range(-12..12));
                        fp16(&mut rng, scale) * fp16(&mut rng, 1.0)
                    }
                })
                .collect();
            let exact = exact_sum(&p);
            let b = sum_bound(&tc, &p);
            for k in BLOCKS {
                for bits in ALIGN {
                    let err = (tc_dot(&p, k, bits) as f64 - exact).abs();
                    assert!(
                        err <= b,
                        "K {kk} k {k} bits {bits} trial {trial}: {err:e} > {b:e}"
                    );
                    worst = worst.max(err / b);
                }
            }
        }
    }
    assert!(
        worst > 1e-3,
        "the emulated errors are not in effect: {worst}"
    );
}

#[test]
fn truncation_breaks_the_round_to_nearest_bound_but_not_the_tensor_core_one() {
    // A large first term, then terms just under the last bit kept beside it: every block
    // truncates them away, ~2^-23 each, twice what rounding to nearest can lose.
    let rn = GemmConstants::of(Format::Fp16);
    let tc = GemmConstants::on(Format::Fp16, Accumulation::TensorCore).unwrap();
    let kk = 1024;
    // (1 - 2^-11) x 2^-23: a product of two fp16 values, just below 2^-23.
    let small = round(1.0 - 2f64.powi(-11), Format::Fp16) * round(2f64.powi(-23), Format::Fp16);
    assert!(small < 2f64.powi(-23) && small > 0.999 * 2f64.powi(-23));
    let p: Vec<f64> = std::iter::once(1.0)
        .chain(std::iter::repeat_n(small, kk - 1))
        .collect();
    let exact = exact_sum(&p);
    for k in BLOCKS {
        let err = (tc_dot(&p, k, 24) as f64 - exact).abs();
        let (b_rn, b_tc) = (sum_bound(&rn, &p), sum_bound(&tc, &p));
        // Twice the round-to-nearest bound (README and docs/bounds.md say so).
        assert!(
            err > 1.9 * b_rn,
            "k {k}: {err:e} <= 1.9 x the round-to-nearest bound {b_rn:e}"
        );
        assert!(err <= b_tc, "k {k}: {err:e} > {b_tc:e}");
        // And the tensor-core bound is within 3x of it here: not slack by orders.
        assert!(b_tc < 3.0 * err, "k {k}: {b_tc:e} vs {err:e}");
    }
}

/// Model G's 1-D transform as a tensor core computes it: samples and table in fp16, exact
/// products, each real sum by block FMAs, the scaling by fl32(1/n) truncated (worst case), the
/// result rounded to fp16; against the f64 DFT of the unrounded samples.
#[test]
fn gemm_transform_on_an_emulated_tensor_core_lies_under_its_bound() {
    let mut worst = 0.0f64;
    for (fi, f) in [
        (|x: f64| (2.0 * std::f64::consts::PI * x).sin().exp()) as fn(f64) -> f64,
        |x| x,
        |x| 1000.0 * (x - 0.5).abs(),
    ]
    .into_iter()
    .enumerate()
    {
        for s in [2usize, 3, 17, 64, 100, 255, 512] {
            for fmt in [Format::Fp16, Format::Bf16] {
                let v: Vec<f64> = (0..s).map(|j| f(j as f64 / s as f64)).collect();
                let a: Vec<f64> = v.iter().map(|&x| round(x, fmt)).collect();
                let mean = v.iter().map(|x| x.abs()).sum::<f64>() / s as f64;
                let m = v.iter().fold(0.0f64, |acc, x| acc.max(x.abs()));
                let b = gemm_precision_on(&[s], fmt, Accumulation::TensorCore, mean, m);
                assert!(b.bound.is_finite(), "{b:?}");
                let inv_n = (1.0 / s as f64) as f32 as f64;
                // mpno's f64 table (within 2^-53 of the exact roots), rounded to the format.
                let roots = mpno::fft::f64_roots(s);
                for k in 0..s.min(12) {
                    let root = |j: usize| roots[(j * k) % s];
                    let re: Vec<f64> = (0..s).map(|j| a[j] * round(root(j).re, fmt)).collect();
                    let im: Vec<f64> = (0..s).map(|j| a[j] * round(root(j).im, fmt)).collect();
                    let (wr, wi) = (
                        exact_dft(&v, k, s, f64::cos),
                        exact_dft(&v, k, s, |t| -t.sin()),
                    );
                    for blk in [1usize, 4, 16] {
                        let out = |p: &[f64]| {
                            let acc = tc_dot(p, blk, 24) as f64;
                            round(round_toward_zero_f32(acc * inv_n) as f64, fmt)
                        };
                        let err = (out(&re) - wr).hypot(out(&im) - wi);
                        assert!(
                            err <= b.bound,
                            "f{fi} s {s} {fmt} k {k} blocks {blk}: {err:e} > {:e}",
                            b.bound
                        );
                        worst = worst.max(err / b.bound);
                    }
                }
            }
        }
    }
    assert!(worst > 0.01, "{worst}");
}

fn exact_dft(v: &[f64], k: usize, s: usize, trig: fn(f64) -> f64) -> f64 {
    v.iter()
        .enumerate()
        .map(|(j, x)| x * trig(2.0 * std::f64::consts::PI * ((j * k) % s) as f64 / s as f64))
        .sum::<f64>()
        / s as f64
}

/// The standard contraction as cuBLAS runs it on tensor cores: operands rounded, each part a
/// real GEMM of 2n exact products by block FMAs, the fp32 result rounded to the format.
#[test]
fn contraction_on_an_emulated_tensor_core_lies_under_its_bound() {
    let mut rng = Rng64::seed_from_u64(11);
    let mut worst = 0.0f64;
    for n in [1usize, 3, 64, 257, 1024] {
        for fmt in [Format::Fp16, Format::Bf16] {
            let terms: Vec<((f64, f64), (f64, f64))> = (0..n)
                .map(|_| {
                    let mut c = || rng.random_range(-1.0..1.0);
                    ((c(), c()), (c(), c()))
                })
                .collect();
            let bound = contraction_precision_on(
                fmt,
                ContractForm::Standard,
                Accumulation::TensorCore,
                &ContractionSums::of(terms.iter().copied()),
            )
            .unwrap();
            let r = |x: f64| round(x, fmt);
            let (mut pr, mut pi) = (Vec::new(), Vec::new());
            let (mut er, mut ei) = (0.0f64, 0.0f64);
            for &((a, b), (c, d)) in &terms {
                pr.extend([r(a) * r(c), -(r(b) * r(d))]);
                pi.extend([r(a) * r(d), r(b) * r(c)]);
                er += a * c - b * d;
                ei += a * d + b * c;
            }
            for blk in BLOCKS {
                let yr = round(tc_dot(&pr, blk, 24) as f64, fmt);
                let yi = round(tc_dot(&pi, blk, 24) as f64, fmt);
                let err = (yr - er).hypot(yi - ei);
                assert!(
                    err <= bound,
                    "n {n} {fmt} blocks {blk}: {err:e} > {bound:e}"
                );
                worst = worst.max(err / bound);
            }
        }
    }
    assert!(worst > 0.01, "{worst}");
}

#[test]
fn formats_without_a_tensor_core_model_are_refused() {
    for fmt in [Format::Fp32, Format::E4m3, Format::E5m2, Format::Fp64] {
        assert!(
            GemmConstants::on(fmt, Accumulation::TensorCore).is_err(),
            "{fmt}"
        );
        let b = gemm_precision_on(&[16], fmt, Accumulation::TensorCore, 1.0, 1.0);
        assert!(
            b.bound.is_infinite() && b.note.contains("tensor-core"),
            "{b:?}"
        );
    }
    assert_eq!(Accumulation::on_gpu(Format::Fp16), Accumulation::TensorCore);
    assert_eq!(Accumulation::on_gpu(Format::Fp32), Accumulation::Nearest);
    // The tensor-core bound is never below round to nearest's; in fp16 they differ by about
    // the accumulation terms, n 2^-22 - (n - 1) 2^-24 (docs/bounds.md: 9.2e-5 at n = 512),
    // plus 2^-24 more for each of the output scaling's two fp32 operations.
    for s in [2usize, 100, 512, 4096] {
        let rn = gemm_precision_on(&[s], Format::Fp16, Accumulation::Nearest, 1.0, 1.0).bound;
        let tc = gemm_precision_on(&[s], Format::Fp16, Accumulation::TensorCore, 1.0, 1.0).bound;
        let diff = (s as f64 * 4.0 - (s - 1) as f64) * 2f64.powi(-24);
        assert!(
            tc >= rn && (tc - rn - diff).abs() < 0.05 * diff + 3e-7,
            "s {s}: {tc:e} - {rn:e} vs {diff:e}"
        );
    }
}
