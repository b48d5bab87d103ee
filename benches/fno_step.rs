//! Samples/s of one FNO training step (forward, relative L2 loss, backward, AdamW) per precision
//! policy on the CPU backend, for the small Darcy model (width 32, 12 modes, 4 layers, batch 20)
//! at 32 x 32 and 64 x 64. Each policy runs in the same process; the time per step is the minimum
//! over trials (the machines are noisy), and the ratio to fp32 is reported beside it.
//!
//! `cargo bench --bench fno_step` (MPNO_BENCH_TRIALS to change the trial count, default 5).

use mpno::backend::Backend;
use mpno::backend::cpu::Cpu;
use mpno::fno::loss::rel_l2;
use mpno::fno::optim::{Adam, OptimizerKind};
use mpno::fno::{Fno, FnoConfig, Params, Policy, Stabilizer};
use mpno::precision::Format;
use std::time::Instant;

fn main() {
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
        let x: Vec<f32> = (0..batch * n * n)
            .map(|i| (((i * 7919) % 1000) as f32 / 500.0) - 1.0)
            .collect();
        let y: Vec<f32> = x.iter().map(|v| 0.5 * v + 0.1).collect();
        let mut base = 0.0;
        for (name, policy) in &policies {
            let be = Cpu::<f32>::new();
            let mut params: Params<f32> = model.init(0);
            let mut adam = Adam::new(OptimizerKind::AdamW, &params, 1e-4);
            let xt = be.upload(&[batch, 1, n, n], &x, Format::Fp32);
            let mut best = f64::INFINITY;
            be.reset_peak();
            for _ in 0..trials {
                let t = Instant::now();
                let (out, cache) = model.forward(&be, &params, &xt, policy).unwrap();
                let (_, g) = rel_l2(&be.download(&out), &y, batch);
                let gt = be.upload(&[batch, 1, n, n], &g, Format::Fp32);
                let grads = model.backward(&be, &params, cache, &gt, policy).unwrap();
                adam.step(&mut params, &grads, 1e-3);
                best = best.min(t.elapsed().as_secs_f64());
            }
            if *name == "fp32" {
                base = best;
            }
            let peak = be.mem().peak_bytes + params.numel() * 16;
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
