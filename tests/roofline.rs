//! Roofline accounting (issue 24): the bytes and flops `backend::counting` records per op, on
//! hand-counted oracles; a whole FNO step's GEMM, contraction, transform and Adam bytes and
//! flops against counts derived here from the model's configuration; its written bytes against
//! the CPU backend's own allocation accounting; and the fields `mpno bench fno` prints. Nothing
//! is timed (the bench's measured rates are only checked to be positive).

use mpno::backend::counting::{self, Counting, OpCount, spectral_flops};
use mpno::backend::cpu::Cpu;
use mpno::backend::{
    Backend, ContractForm, Modes, SpectralForward, SpectralInverse, SpectralTransform,
};
use mpno::fno::train::count_step;
use mpno::fno::{Factorization, Fno, FnoConfig, Policy, Stabilizer};
use mpno::precision::Format;
use std::process::Command;

fn ramp(n: usize) -> Vec<f32> {
    (0..n).map(|i| (i % 13) as f32 / 13.0 - 0.4).collect()
}

/// The one op recorded since the last take.
fn only(c: &Counting<'_, Cpu<f32>>) -> OpCount {
    let ops = c.take();
    assert_eq!(ops.len(), 1, "{ops:?}");
    ops[0]
}

#[test]
fn linear_counts_its_gemm_and_operands_at_their_storage_width() {
    let cpu = Cpu::<f32>::new();
    let be = Counting::new(&cpu);
    // x (b 2, ci 3, p 5), w (co 4, ci 3), bias (4), all fp32; the output in fp16.
    let x = be.upload(&[2, 3, 5], &ramp(30), Format::Fp32);
    let w = be.upload(&[4, 3], &ramp(12), Format::Fp32);
    let bias = be.upload(&[4], &ramp(4), Format::Fp32);
    be.take();
    let y = be.linear(&x, &w, Some(&bias), Format::Fp16);
    let o = only(&be);
    // 2 b co ci p + b co p; reads (30 + 12 + 4) fp32 values, writes 40 fp16 ones.
    assert_eq!((o.op, o.flops), ("linear", 2 * 2 * 4 * 3 * 5 + 2 * 4 * 5));
    assert_eq!((o.bytes_read, o.bytes_written), (46 * 4, 40 * 2));
    // Backward with the fp16 output gradient: 4 b co ci p + b co p; gx, gw, gb in fp16.
    let (_gx, _gw, _gb) = be.linear_backward(&x, &w, &y, true, Format::Fp16);
    let o = only(&be);
    assert_eq!(o.flops, 4 * 2 * 4 * 3 * 5 + 2 * 4 * 5);
    assert_eq!(o.bytes_read, (30 + 12) * 4 + 40 * 2);
    assert_eq!(o.bytes_written, (30 + 12 + 4) * 2);
}

#[test]
fn contraction_counts_eight_flops_per_complex_multiply_add() {
    let cpu = Cpu::<f32>::new();
    let be = Counting::new(&cpu);
    // x (b 2, ci 3, 4 x 2 modes), w (ci 3, co 5, 4 x 2): k = 8.
    let x = be.upload_complex(&[2, 3, 4, 2], &ramp(2 * 48), Format::Fp32);
    let w = be.upload_complex(&[3, 5, 4, 2], &ramp(2 * 120), Format::Fp32);
    be.take();
    let y = be.contract(&x, &w, Format::Fp16, ContractForm::Standard);
    let o = only(&be);
    assert_eq!(o.flops, 8 * 2 * 3 * 5 * 8);
    // Complex values: 8 bytes in fp32, 4 in fp16.
    assert_eq!((o.bytes_read, o.bytes_written), (48 * 8 + 120 * 8, 80 * 4));
    let _ = be.contract_backward(&x, &w, &y, Format::Fp32, ContractForm::Standard);
    let o = only(&be);
    assert_eq!(o.flops, 16 * 2 * 3 * 5 * 8);
    // Gauss: 6 per multiply-add, 2 per output, 1 per left and 2 per right operand value, per
    // product (forward y = x w: 2 x 3 times 3 x 5; backward gx = g w^H, gw = x^H g).
    let gauss = |r: u64, j: u64, q: u64| (6 * r * j * q + 2 * r * q + r * j + 2 * j * q) * 8;
    let _ = be.contract(&x, &w, Format::Fp16, ContractForm::Gauss);
    assert_eq!(only(&be).flops, gauss(2, 3, 5));
    let _ = be.contract_backward(&x, &w, &y, Format::Fp32, ContractForm::Gauss);
    assert_eq!(only(&be).flops, gauss(2, 5, 3) + gauss(3, 2, 5));
    assert_eq!(o.bytes_read, 48 * 8 + 120 * 8 + 80 * 4);
    assert_eq!(o.bytes_written, 48 * 8 + 120 * 8);
}

#[test]
fn spectral_flops_follow_the_stated_conventions() {
    use SpectralTransform::{Fft, Gemm};
    // 8 x 16 grid keeping 4 x 3: 8 real lines of 16 (2.5 * 16 * 4 = 160 each), then 3 kept
    // columns of 8 complex points (5 * 8 * 3 = 120 each).
    assert_eq!(
        spectral_flops(Fft, &[8, 16], &[4, 3]),
        8.0 * 160.0 + 3.0 * 120.0
    );
    // 3-D 4 x 8 x 16 keeping 2 x 4 x 3: 32 real lines; axis 1 over 4 x 3 columns of 8; axis 0
    // over 4 x 3 kept columns of 4 (5 * 4 * 2 = 40).
    assert_eq!(
        spectral_flops(Fft, &[4, 8, 16], &[2, 4, 3]),
        32.0 * 160.0 + 12.0 * 120.0 + 12.0 * 40.0
    );
    // GEMM on 6 x 10 keeping 4 x 3: 6 lines of 4 * 10 * 3 real multiply-adds, then 3 columns of
    // 8 * 6 * 4 (complex multiply-adds onto 4 kept of 6).
    assert_eq!(spectral_flops(Gemm, &[6, 10], &[4, 3]), 720.0 + 576.0);

    let cpu = Cpu::<f32>::new();
    let be = Counting::new(&cpu);
    let x = be.upload(&[2, 3, 8, 16], &ramp(768), Format::Fp32);
    be.take();
    let fwd = |scale| SpectralForward {
        scale,
        hermitian: false,
        format: Format::Fp32,
        transform: Fft,
    };
    let modes = Modes(vec![2, 3]);
    // 6 slices; a scale other than 1 adds 2 per kept value (12 kept).
    let spec = be.rfft_modes(&x, &modes, fwd(1.0 / 128.0));
    let o = only(&be);
    assert_eq!(o.flops, 6 * (1640 + 24));
    assert_eq!((o.bytes_read, o.bytes_written), (768 * 4, 6 * 12 * 8));
    let _ = be.rfft_modes(&x, &modes, fwd(1.0));
    assert_eq!(only(&be).flops, 6 * 1640);
    let inv = SpectralInverse {
        scale: 1.0,
        hermitian: true,
        format: Format::Fp16,
        transform: Fft,
    };
    let _ = be.irfft_modes(&spec, &[8, 16], inv);
    let o = only(&be);
    assert_eq!(o.flops, 6 * 1640);
    assert_eq!((o.bytes_read, o.bytes_written), (6 * 12 * 8, 768 * 2));
}

#[test]
fn adam_reads_four_tensors_and_writes_three_in_place() {
    let cpu = Cpu::<f32>::new();
    let be = Counting::new(&cpu);
    let mut p = be.upload(&[10], &ramp(10), Format::Fp32);
    let g = be.upload(&[10], &ramp(10), Format::Fp32);
    let mut m = be.zeros(&[10], Format::Fp32);
    let mut v = be.zeros(&[10], Format::Fp32);
    be.take();
    let s = mpno::backend::AdamScalars {
        step_size: 1e-3,
        bc2_sqrt: 0.5,
        eps: 1e-8,
        one_minus_b1: 0.1,
        b2: 0.999,
        one_minus_b2: 1e-3,
        wd: 0.0,
        decay: 0.9999,
        decoupled: true,
        coupled: false,
    };
    be.adam_update(&mut p, &g, &mut m, &mut v, &s);
    let o = only(&be);
    assert_eq!((o.bytes_read, o.bytes_written, o.flops), (160, 120, 140));
}

/// A small 2-D FNO: width 6, 3 x 3 modes on 16 x 16, 2 blocks with a channel MLP (hidden 3),
/// lifting through 8 channels, projection through 5.
fn small(factorization: Factorization, transform: SpectralTransform) -> FnoConfig {
    FnoConfig {
        dim: 2,
        in_channels: 1,
        out_channels: 1,
        width: 6,
        modes: vec![3, 3],
        n_layers: 2,
        lifting_channels: 8,
        projection_channels: 5,
        mlp_expansion: 0.5,
        factorization,
        positional_embedding: true,
        gelu_before_last_mlp: false,
        spectral_transform: vec![transform],
        contraction: ContractForm::Standard,
    }
}

fn flops_of(ops: &[OpCount], names: &[&str]) -> u64 {
    ops.iter()
        .filter(|o| names.contains(&o.op))
        .map(|o| o.flops)
        .sum()
}

fn bytes_of(ops: &[OpCount], names: &[&str]) -> u64 {
    ops.iter()
        .filter(|o| names.contains(&o.op))
        .map(|o| o.bytes())
        .sum()
}

#[test]
fn a_dense_fft_step_counts_what_the_configuration_implies() {
    let (batch, n, w, layers) = (2u64, 16u64, 6u64, 2u64);
    let model = Fno::new(small(Factorization::Dense, SpectralTransform::Fft)).unwrap();
    let cpu = Cpu::<f32>::new();
    let c = count_step(&cpu, &model, &Policy::full(), 2, &[16, 16], 0).unwrap();
    let ops = &c.ops;
    let p = n * n;
    // Dense maps (co, ci, bias): lifting 3 -> 8 -> 6 (coordinates appended), per block the skip
    // 6 -> 6 (no bias) and the channel MLP 6 -> 3 -> 6, projection 6 -> 5 -> 1.
    let mut maps = vec![(8, 3, true), (6, 8, true), (5, 6, true), (1, 5, true)];
    for _ in 0..layers {
        maps.extend([(6, 6, false), (3, 6, true), (6, 3, true)]);
    }
    let nb = |bias: bool, co: u64| if bias { co } else { 0 };
    // Flops: 2 b p co ci forward and 4 b p co ci backward, a bias b p co each way.
    let linear: u64 = maps
        .iter()
        .map(|&(co, ci, bias)| 6 * batch * p * co * ci + 2 * batch * p * nb(bias, co))
        .sum();
    assert_eq!(flops_of(ops, &["linear", "linear_backward"]), linear);
    // Bytes, all fp32: forward reads x (b ci p), w (co ci), bias (co), writes y (b co p);
    // backward reads x, w and g (b co p), writes gx, gw and the bias gradient.
    let linear_bytes: u64 = maps
        .iter()
        .map(|&(co, ci, bias)| {
            let (x, wt, y, b) = (batch * ci * p, co * ci, batch * co * p, nb(bias, co));
            4 * ((x + wt + b + y) + (x + wt + y) + (x + wt + b))
        })
        .sum();
    assert_eq!(bytes_of(ops, &["linear", "linear_backward"]), linear_bytes);

    // Contraction: 8 b w^2 k flops forward, twice that backward; k = 6 x 3 kept modes. Complex
    // fp32 values of 8 bytes: forward reads x (b w k) and the weight (w w k), writes y (b w k);
    // backward reads x, the weight and g (b w k), writes gx (b w k) and gw (w w k).
    let k = 18;
    assert_eq!(
        flops_of(ops, &["contract", "contract_backward"]),
        layers * 24 * batch * w * w * k
    );
    let (xk, wk) = (batch * w * k, w * w * k);
    assert_eq!(
        bytes_of(ops, &["contract", "contract_backward"]),
        layers * 8 * ((2 * xk + wk) + (2 * xk + wk) + (xk + wk))
    );
    // Per block four transforms of b w slices (forward and inverse, and their adjoints in the
    // backward pass), two of them scaled by 1 / n^2: 16 real lines of 2.5 * 16 * 4 = 160 and 3
    // kept columns of 5 * 16 * 4 = 320, plus 2 per kept value for a scale. Each reads or
    // writes the real (b w p, 4 bytes) and the complex (b w k, 8 bytes) side once.
    let slice = 16 * 160 + 3 * 320;
    assert_eq!(
        flops_of(ops, &["rfft_modes", "irfft_modes"]),
        layers * batch * w * (4 * slice + 2 * 2 * k)
    );
    assert_eq!(
        bytes_of(ops, &["rfft_modes", "irfft_modes"]),
        layers * 4 * (4 * batch * w * p + 8 * xk)
    );
    let calls = ops.iter().filter(|o| o.op.ends_with("fft_modes")).count();
    assert_eq!(calls as u64, 4 * layers);

    // AdamW: every parameter read with its gradient and moments (16 bytes) and written back
    // with the moments (12 bytes), 14 flops. Parameters: lifting 32 + 54, projection 35 + 6,
    // per block the skip 36, the weight w^2 k complex pairs, bias 6, MLP 21 + 24, gate 6.
    let n_params = 86 + 41 + layers * (36 + 2 * w * w * k + 6 + 21 + 24 + 6);
    assert_eq!(n_params, model.init::<f32>(0).numel() as u64);
    assert_eq!(bytes_of(ops, &["adam_update"]), 28 * n_params);
    assert_eq!(flops_of(ops, &["adam_update"]), 14 * n_params);
}

#[test]
fn element_wise_ops_read_their_inputs_and_write_their_output() {
    let cpu = Cpu::<f32>::new();
    let be = Counting::new(&cpu);
    let a = be.upload(&[2, 3, 4], &ramp(24), Format::Fp32);
    let h = be.upload(&[2, 3, 4], &ramp(24), Format::Fp16);
    be.take();
    // The sum is stored in the wider format: reads 24 fp32 + 24 fp16, writes 24 fp32.
    let _ = be.add(&a, &h);
    let o = only(&be);
    assert_eq!((o.bytes_read, o.bytes_written, o.flops), (144, 96, 24));
    // A slice reads only the channels it keeps.
    let _ = be.slice_channels(&a, 1, 2);
    let o = only(&be);
    assert_eq!((o.bytes_read, o.bytes_written, o.flops), (32, 32, 0));
    // A scale's derivative is constant: its backward reads only the gradient.
    let _ = be.pointwise_backward(mpno::backend::Pointwise::Scale(0.5), &a, &h);
    let o = only(&be);
    assert_eq!((o.bytes_read, o.bytes_written, o.flops), (48, 48, 24));
    // GELU's reads x too.
    let _ = be.pointwise_backward(mpno::backend::Pointwise::Gelu, &a, &a);
    let o = only(&be);
    assert_eq!((o.bytes_read, o.bytes_written), (192, 96));
}

#[test]
fn written_bytes_match_the_cpu_allocation_accounting() {
    // Every op output is a new tensor on the CPU backend, counted by its allocation counter at
    // its storage width; only Adam writes in place. Dense / CP weights, FFT / GEMM transforms,
    // fp32 / fp16 / scaled fp8 stages.
    let fp16 = Policy::half_block(Format::Fp16, Stabilizer::Tanh);
    let fp8 = Policy {
        fwd_fft: "e4m3@tensor".parse().unwrap(),
        ..Policy::full()
    };
    for (fact, transform, policy) in [
        (Factorization::Dense, SpectralTransform::Fft, Policy::full()),
        (Factorization::Dense, SpectralTransform::Gemm, fp16),
        (Factorization::Cp { rank: 2.0 }, SpectralTransform::Fft, fp8),
    ] {
        let model = Fno::new(small(fact, transform)).unwrap();
        let cpu = Cpu::<f32>::new();
        let c = count_step(&cpu, &model, &policy, 2, &[16, 16], 0).unwrap();
        let total = counting::total(&c.ops);
        let adam: u64 = c
            .ops
            .iter()
            .filter(|o| o.op == "adam_update")
            .map(|o| o.bytes_written)
            .sum();
        assert!(adam > 0);
        assert_eq!(
            total.bytes_written - adam,
            c.allocated_bytes,
            "{fact:?} {transform:?}"
        );
        // Reads: every op reads something, and a step reads more than it allocates.
        assert!(total.bytes_read > c.allocated_bytes);
    }
}

#[test]
fn bench_fno_reports_the_roofline_fields() {
    let out = Command::new(env!("CARGO_BIN_EXE_mpno"))
        .args([
            "bench", "fno", "--res", "16", "--batch", "2", "--width", "4", "--modes", "4",
            "--layers", "1", "--steps", "1",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = |k: &str| {
        v[k].as_f64()
            .unwrap_or_else(|| panic!("field {k} missing: {v}"))
    };
    assert_eq!(
        f("bytes_per_step"),
        f("bytes_read_per_step") + f("bytes_written_per_step")
    );
    // The per-op table sums to the totals.
    let ops = v["ops_per_step"].as_object().unwrap();
    let sum = |k: &str| ops.values().map(|o| o[k].as_f64().unwrap()).sum::<f64>();
    assert_eq!(
        (sum("bytes"), sum("flops")),
        (f("bytes_per_step"), f("flops_per_step"))
    );
    assert!(f("bytes_allocated_per_step") > 0.0 && f("flops_per_step") > 0.0);
    assert!(f("copy_gb_per_s") > 0.0 && f("gemm_gflop_per_s") > 0.0);
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs();
    // ms = bytes / (GB/s * 1e9) * 1e3, and flops likewise.
    assert!(close(
        f("bandwidth_bound_ms"),
        1e-6 * f("bytes_per_step") / f("copy_gb_per_s")
    ));
    assert!(close(
        f("compute_bound_ms"),
        1e-6 * f("flops_per_step") / f("gemm_gflop_per_s")
    ));
    assert!(close(
        f("roofline_ms"),
        f("bandwidth_bound_ms").max(f("compute_bound_ms"))
    ));
    assert!(close(
        f("roofline_ratio"),
        f("ms_per_step") / f("roofline_ms")
    ));
    assert_eq!((f("gemm_n"), f("gemm_batch") >= 1.0), (1024.0, true));
}

/// The CUDA backend on GPU 0, or why it is not available (printed as the skip reason).
fn cuda() -> Option<impl Backend<T = f32>> {
    #[cfg(feature = "cuda")]
    {
        match mpno::backend::cuda::Cuda::new(0) {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("SKIPPED on CUDA: {e}");
                None
            }
        }
    }
    #[cfg(not(feature = "cuda"))]
    {
        eprintln!("SKIPPED on CUDA: built without the `cuda` feature");
        None::<Cpu<f32>>
    }
}

/// The counts come from the ops the model calls and their operands' shapes and storage
/// formats, so a GPU counts the same step op for op as the CPU; its allocation accounting
/// includes op temporaries, so it allocates at least the written bytes less Adam's.
#[test]
fn cuda_counts_the_same_step_as_the_cpu() {
    let Some(gpu) = cuda() else { return };
    let model = Fno::new(small(Factorization::Dense, SpectralTransform::Fft)).unwrap();
    for policy in [
        Policy::full(),
        Policy::half_block(Format::Fp16, Stabilizer::Tanh),
    ] {
        let on_cpu = count_step(&Cpu::<f32>::new(), &model, &policy, 2, &[16, 16], 0).unwrap();
        let on_gpu = count_step(&gpu, &model, &policy, 2, &[16, 16], 0).unwrap();
        assert_eq!(on_gpu.ops, on_cpu.ops, "{policy:?}");
        let written = counting::total(&on_gpu.ops).bytes_written;
        let adam: u64 = on_gpu
            .ops
            .iter()
            .filter(|o| o.op == "adam_update")
            .map(|o| o.bytes_written)
            .sum();
        assert!(
            on_gpu.allocated_bytes >= written - adam,
            "{policy:?}: GPU allocated {} < {}",
            on_gpu.allocated_bytes,
            written - adam
        );
    }
}

/// `mpno bench fno --rank R --cp-order O` (the binary, as shipped) counts the CP ops with their
/// documented formulas: expand `cp_weight` 8 r ci co k and `cp_weight_backward` 16 r ci co k per
/// call; factorized `cp_contract` 8 k b r (ci + co) + 6 k b r and its backward
/// 8 k b r (3 ci + 2 co) + 20 k b r. (A miscompiled count of 1e19 flops once came out of the
/// release binary here, see `CpDims::of`.)
#[test]
fn bench_fno_counts_cp_flops_by_their_formulas() {
    let (b, w, r, layers) = (2u64, 4u64, 3u64, 2u64);
    let k = 8 * 4; // --modes 4: 2 m x m kept
    for (order, want) in [
        (
            "expand",
            [
                ("cp_weight", 8 * r * w * w * k),
                ("cp_weight_backward", 16 * r * w * w * k),
            ],
        ),
        (
            "factorized",
            [
                ("cp_contract", 8 * k * b * r * 2 * w + 6 * k * b * r),
                (
                    "cp_contract_backward",
                    8 * k * b * r * 5 * w + 20 * k * b * r,
                ),
            ],
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_mpno"))
            .args([
                "bench",
                "fno",
                "--res",
                "16",
                "--batch",
                "2",
                "--width",
                "4",
                "--modes",
                "4",
                "--layers",
                "2",
                "--steps",
                "1",
                "--rank",
                "3",
                "--cp-order",
                order,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["cp_plan"], order, "{v}");
        for (op, per_call) in want {
            let o = &v["ops_per_step"][op];
            assert_eq!(o["calls"].as_u64(), Some(layers), "{order} {op}: {o}");
            assert_eq!(
                o["flops"].as_u64(),
                Some(layers * per_call),
                "{order} {op}: {o}"
            );
        }
    }
}
