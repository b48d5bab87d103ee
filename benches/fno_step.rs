//! Samples/s of one FNO training step (forward, relative L2 loss, backward, AdamW) per precision
//! policy on the CPU backend, for the small Darcy model (width 32, 12 modes, 4 layers, batch 20)
//! at 32 x 32 and 64 x 64. Each policy runs in the same process; the time per step is the minimum
//! over trials (the machines are noisy), and the ratio to fp32 is reported beside it.
//!
//! `cargo bench --bench fno_step` (MPNO_BENCH_TRIALS to change the trial count, default 5).

use mpno::backend::cpu::Cpu;
use mpno::fno::train::time_step;
use mpno::fno::{Fno, FnoConfig, Policy, Stabilizer};
use mpno::precision::Format;

fn main() {
    // As the mpno binary does: freed activations are reused, not page-faulted in again.
    mpno::backend::cpu::keep_freed_memory();
    let trials: usize = std::env::var("MPNO_BENCH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let policies = [
        ("fp32", Policy::full()),
        (
            "fp16 block + tanh",
            Policy::half_block(Format::Fp16, Stabilizer::Tanh),
        ),
        (
            "bf16 block + tanh",
            Policy::half_block(Format::Bf16, Stabilizer::Tanh),
        ),
        (
            "fp16 all (AMP + half) + tanh",
            Policy {
                mlp: Format::Fp16,
                ..Policy::half_block(Format::Fp16, Stabilizer::Tanh)
            },
        ),
    ];
    println!("| grid | policy | ms/step | samples/s | vs fp32 | peak MB |");
    println!("|---|---|---|---|---|---|");
    for n in [32usize, 64] {
        let model = Fno::new(FnoConfig::darcy_small()).unwrap();
        let batch = 20;
        let mut base = 0.0;
        for (name, policy) in &policies {
            let be = Cpu::<f32>::new();
            let t = time_step(&be, &model, policy, batch, &[n, n], trials, 0).unwrap();
            let (best, peak) = (t.best_seconds, t.peak_bytes);
            if *name == "fp32" {
                base = best;
            }
            println!(
                "| {n} x {n} | {name} | {:.1} | {:.1} | {:.2}x | {:.1} |",
                best * 1e3,
                batch as f64 / best,
                best / base,
                peak as f64 / 1e6
            );
        }
    }
}
