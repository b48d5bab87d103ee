//! The spectral contraction's proven bound (docs/bounds.md, "Spectral contraction";
//! `bounds::contraction_precision`) against the CPU backend's emulated contraction, both forms
//! (standard, Gauss), five formats, n = 1..512 terms, data from smooth to adversarial: every
//! output's error against the exact f64 sum of the same (unrounded) operands stays under its bound.

use mpno::backend::cpu::Cpu;
use mpno::backend::{Backend, ContractForm};
use mpno::bounds::{ContractionSums, contraction_precision};
use mpno::precision::{Format, round};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

const FORMATS: [Format; 5] = [
    Format::Fp32,
    Format::Fp16,
    Format::Bf16,
    Format::E4m3,
    Format::E5m2,
];
const FORMS: [ContractForm; 2] = [ContractForm::Standard, ContractForm::Gauss];
const NS: [usize; 10] = [1, 2, 3, 7, 16, 31, 64, 100, 255, 512];
const B: usize = 3;
const CO: usize = 2;
const K: usize = 8;

/// Operands (x: B x n x K, w: n x CO x K, interleaved) of one data kind, as f32 values.
fn data(kind: usize, n: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut draw = |len: usize, scale: f64| -> Vec<f32> {
        let mut uni = |lo: f64, hi: f64| lo + (hi - lo) * rng.random::<f64>();
        (0..len)
            .map(|i| {
                let v: f64 = match kind {
                    // Uniform parts in [-1, 1).
                    0 => uni(-1.0, 1.0),
                    // Magnitudes log-uniform over 2^-24..2^0: subnormals in fp16 and fp8.
                    1 => {
                        let m = uni(-1.0, 1.0);
                        m * 2f64.powf(uni(-24.0, 0.0))
                    }
                    // Gauss's worst case: re ~ -im, so a + b and d - c cancel while a, b, c, d
                    // are large, and the parts sit between two values of every format.
                    2 => {
                        let base = 1.0 + 0.49 * 2f64.powi(-7) + uni(0.0, 2f64.powi(-12));
                        if i % 2 == 0 {
                            base
                        } else {
                            -base * (1.0 - 2f64.powi(-9))
                        }
                    }
                    // Same-sign parts, all terms aligned (no cancellation: S = |y|).
                    3 => uni(0.5, 1.0),
                    // Parts exactly representable in fp16, re in [1, 2), im in [0.5, 1) with an
                    // odd last bit: the standard form rounds nothing but its fp32 sums, Gauss's
                    // a + b, d - c and c + d need one bit more than fp16 has.
                    _ => {
                        let k = (uni(0.0, 512.0) as u64) as f64 * 2.0 + 1.0;
                        if i % 2 == 0 {
                            1.0 + k / 1024.0
                        } else {
                            0.5 + k / 2048.0
                        }
                    }
                };
                (v * scale) as f32
            })
            .collect()
    };
    // Outputs stay within E4M3's 448: r scaled by 1/n.
    let x = draw(2 * B * n * K, 1.0);
    // Powers of two keep kind 4 representable.
    let w = draw(2 * n * CO * K, 1.0 / n.next_power_of_two() as f64);
    (x, w)
}

const KINDS: usize = 5;

#[derive(Default)]
struct Worst {
    ratio: f64,
    /// Per data kind, the mean distance from the exact sum rounded to the format (the best a
    /// stored result can be), in units of u S (a few outputs near a rounding tie flip in
    /// either form: the mean, not the largest).
    rel: [f64; KINDS],
    outputs: [usize; KINDS],
}

fn run(fmt: Format, form: ContractForm) -> Worst {
    let be = Cpu::<f32>::new();
    let mut worst = Worst::default();
    for (kind, &n) in (0..KINDS).flat_map(|k| NS.iter().map(move |n| (k, n))) {
        let (xv, wv) = data(kind, n, (kind * 1000 + n) as u64);
        let x = be.upload_complex(&[B, n, K], &xv, Format::Fp32);
        let w = be.upload_complex(&[n, CO, K], &wv, Format::Fp32);
        let y = be.download_complex(&be.contract(&x, &w, fmt, form));
        for b in 0..B {
            for o in 0..CO {
                for m in 0..K {
                    let terms: Vec<_> = (0..n)
                        .map(|i| {
                            let (xa, wa) = ((b * n + i) * K + m, (i * CO + o) * K + m);
                            (
                                (xv[2 * xa] as f64, xv[2 * xa + 1] as f64),
                                (wv[2 * wa] as f64, wv[2 * wa + 1] as f64),
                            )
                        })
                        .collect();
                    let (mut re, mut im) = (0.0f64, 0.0f64);
                    for &((a, bb), (c, d)) in &terms {
                        re += a * c - bb * d;
                        im += a * d + bb * c;
                    }
                    let at = (b * CO + o) * K + m;
                    let err = (y[2 * at] as f64 - re).hypot(y[2 * at + 1] as f64 - im);
                    let sums = ContractionSums::of(terms);
                    let bound = contraction_precision(fmt, form, &sums)
                        .unwrap_or_else(|e| panic!("{fmt} {form} kind {kind} n {n}: {e}"));
                    assert!(
                        err <= bound,
                        "{fmt} {form} kind {kind} n {n} output ({b},{o},{m}): error {err:e} > bound {bound:e}"
                    );
                    worst.ratio = worst.ratio.max(err / bound);
                    let best = (round(re, fmt), round(im, fmt));
                    let off = (y[2 * at] as f64 - best.0).hypot(y[2 * at + 1] as f64 - best.1);
                    let rel = off / (fmt.unit_roundoff() * sums.s);
                    worst.rel[kind] += rel;
                    worst.outputs[kind] += 1;
                }
            }
        }
    }
    for (r, n) in worst.rel.iter_mut().zip(worst.outputs) {
        *r /= n as f64;
    }
    worst
}

#[test]
fn every_output_stays_under_its_bound_in_both_forms() {
    let mut table =
        String::from("format form max(measured/bound) mean(|y^ - fl(y)| / (u S)) per data kind\n");
    for fmt in FORMATS {
        let [std, gauss] = FORMS.map(|form| {
            let w = run(fmt, form);
            table += &format!("{fmt} {form} {:.3} {:.3?}\n", w.ratio, w.rel);
            if fmt != Format::Fp32 {
                // Not vacuous: the worst output reaches a tenth of its bound.
                assert!(
                    w.ratio > 0.1,
                    "{fmt} {form}: bound {:.3}x loose",
                    1.0 / w.ratio
                );
            }
            w
        });
        if fmt == Format::Fp16 {
            // Operands the format holds: the standard form stores the exact sum rounded (but for
            // fp32's sums and double rounding), Gauss's rounded sums cost about u |l||r| per term.
            assert!(
                gauss.rel[4] > 0.1 && std.rel[4] < 0.01,
                "fp16, representable operands: Gauss {:.3}, standard {:.3} (u S)",
                gauss.rel[4],
                std.rel[4]
            );
        }
    }
    println!("{table}");
}

#[test]
fn range_violations_are_reported_not_bounded() {
    let big = ContractionSums {
        n: 4,
        s: 4.0 * 300.0 * 300.0,
        x: 1200.0,
        w: 1200.0,
        max_part: 300.0,
    };
    let err = contraction_precision(Format::E4m3, ContractForm::Gauss, &big).unwrap_err();
    assert!(err.contains("max"), "{err}");
    assert!(contraction_precision(Format::Fp32, ContractForm::Gauss, &big).is_ok());
}
