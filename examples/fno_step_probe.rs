use mpno::backend::Backend;
use mpno::backend::cpu::Cpu;
use mpno::fno::{Fno, FnoConfig, Params, Policy, Stabilizer};
use mpno::precision::Format;
use std::time::Instant;
fn main() {
    let model = Fno::new(FnoConfig::darcy_small()).unwrap();
    let params: Params<f32> = model.init(0);
    let be = Cpu::<f32>::new();
    let (b, n) = (16usize, 64usize);
    let x: Vec<f32> = (0..b * n * n)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
        .collect();
    let xt = be.upload(&[b, 1, n, n], &x, Format::Fp32);
    for (name, pol) in [
        ("full", Policy::full()),
        (
            "half tanh",
            Policy::half_block(Format::Fp16, Stabilizer::Tanh),
        ),
        ("bf16", Policy::half_block(Format::Bf16, Stabilizer::Tanh)),
    ] {
        for _ in 0..3 {
            be.reset_peak();
            let t = Instant::now();
            let (y, cache) = model.forward(&be, &params, &xt, &pol).unwrap();
            let tf = t.elapsed().as_secs_f64();
            let g = be.cast(&y, Format::Fp32);
            let grads = model.backward(&be, &params, cache, &g, &pol).unwrap();
            let tt = t.elapsed().as_secs_f64();
            println!(
                "{name}: fwd {:.3}s total {:.3}s  {:.1} samples/s peak {} MB gnorm {}",
                tf,
                tt,
                b as f64 / tt,
                be.mem().peak_bytes / 1_000_000,
                grads.norm()
            );
        }
    }
}
