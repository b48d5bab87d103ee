//! The spectral contraction alone (`Backend::contract` and `contract_backward`, one training
//! step's worth) on the CPU backend, standard and Gauss forms, fp32 and emulated fp16, for the
//! shapes of the FNO configs `mpno bench fno` times. Reports ms (fastest of the trials; the
//! machines are noisy) and GFLOP/s counted as 8 real operations per complex multiply-add (the
//! standard form's count, so the two forms' rates compare as speeds), and the Gauss / standard
//! time ratio measured in the same run.
//!
//! `cargo bench --bench contract` (MPNO_BENCH_TRIALS to change the trial count, default 5).

use mpno::backend::cpu::Cpu;
use mpno::backend::{Backend, ContractForm};
use mpno::precision::Format;
use std::time::Instant;

fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn main() {
    mpno::backend::cpu::keep_freed_memory();
    let trials: usize = std::env::var("MPNO_BENCH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let be = Cpu::<f32>::new();
    println!(
        "| b | width | kept modes | format | form | fwd+bwd ms | GFLOP/s (8 per complex MAC) | vs standard |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    // (batch, width, modes per axis): the 2-D Darcy configs of mpno bench fno (the first axis
    // keeps 2 m modes, the last m).
    for (b, c, m) in [(16usize, 32usize, 12usize), (20, 64, 16), (64, 64, 16)] {
        let k = 2 * m * m;
        let x = be.upload_complex(&[b, c, 2 * m, m], &values(2 * b * c * k, 1), Format::Fp32);
        let w = be.upload_complex(&[c, c, 2 * m, m], &values(2 * c * c * k, 2), Format::Fp32);
        let g = be.upload_complex(&[b, c, 2 * m, m], &values(2 * b * c * k, 3), Format::Fp32);
        let flops = 3.0 * 8.0 * (b * c * c * k) as f64;
        for fmt in [Format::Fp32, Format::Fp16] {
            let mut standard = 0.0;
            for form in [ContractForm::Standard, ContractForm::Gauss] {
                let mut best = f64::INFINITY;
                for _ in 0..trials {
                    let t = Instant::now();
                    let y = be.contract(&x, &w, fmt, form);
                    let (gx, gw) = be.contract_backward(&x, &w, &g, fmt, form);
                    best = best.min(t.elapsed().as_secs_f64());
                    std::hint::black_box((y, gx, gw));
                }
                if form == ContractForm::Standard {
                    standard = best;
                }
                println!(
                    "| {b} | {c} | {} x {m} | {fmt} | {form} | {:.2} | {:.1} | {:.2}x |",
                    2 * m,
                    best * 1e3,
                    flops / best / 1e9,
                    best / standard
                );
            }
        }
    }
}
