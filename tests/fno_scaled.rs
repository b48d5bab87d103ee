//! Scaled fp8 and stochastically rounded spectral stages in the FNO (issue 23): the forward pass
//! against an independent replay built from backend ops and `precision::quantize`, seeded
//! stochastic rounding (same seed same bytes, any thread count), a scaled E4M3 block training
//! where the unscaled one overflows, and the refusal of bad stage forms.

use mpno::backend::cpu::Cpu;
use mpno::backend::{Backend, ContractForm, Modes, SpectralForward, SpectralInverse};
use mpno::fno::config::TrainConfig;
use mpno::fno::train::{self, RunOptions};
use mpno::fno::{Fno, FnoConfig, Policy, Resident, Stabilizer, Stage};
use mpno::pde::dataset::{DType, Dataset, Tensor};
use mpno::precision::{Format, ScaledFormat, quantize};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::path::Path;
use std::process::Command;

type Be = Cpu<f32>;

/// The reference rounding of a stage: `precision::quantize` with the scaled format written out
/// (channel scaling on axis 1), or nothing for a plain stage (the backend op rounds).
fn reference(stage: &str) -> Option<ScaledFormat> {
    let (elem, scaling) = stage.split_once('@')?;
    let scaling = if scaling == "channel" {
        "channel:1"
    } else {
        scaling
    };
    Some(format!("{elem}@{scaling}").parse().unwrap())
}

fn q_real(
    be: &Be,
    x: &<Be as Backend>::Tensor,
    sf: &Option<ScaledFormat>,
) -> <Be as Backend>::Tensor {
    let Some(sf) = sf else {
        return be.cast(x, be.format(x));
    };
    let shape = be.shape(x).to_vec();
    let v: Vec<f64> = be.download(x).iter().map(|&v| v as f64).collect();
    let q = quantize(&v, &shape, sf).unwrap();
    let back: Vec<f32> = q.values.iter().map(|&v| v as f32).collect();
    assert!(
        q.values.iter().zip(&back).all(|(a, b)| *a == *b as f64),
        "not exact in f32"
    );
    be.upload(&shape, &back, Format::Fp32)
}

/// Complex tensors as the real tensor of their (re, im) pairs, the last axis twice as long.
fn q_complex(
    be: &Be,
    x: &<Be as Backend>::CTensor,
    sf: &Option<ScaledFormat>,
) -> <Be as Backend>::CTensor {
    let cshape = be.cshape(x).to_vec();
    let Some(sf) = sf else {
        return be.upload_complex(&cshape, &be.download_complex(x), Format::Fp32);
    };
    let mut shape = cshape.clone();
    *shape.last_mut().unwrap() *= 2;
    let v: Vec<f64> = be.download_complex(x).iter().map(|&v| v as f64).collect();
    let q = quantize(&v, &shape, sf).unwrap();
    let back: Vec<f32> = q.values.iter().map(|&v| v as f32).collect();
    be.upload_complex(&cshape, &back, Format::Fp32)
}

/// The forward pass of a one-block FNO (no MLPs, no embedding, no stabilizer) with the
/// stages' roundings written out: every tensor a scaled stage reads or writes quantized by the
/// reference, the transforms and the contraction in fp32 between (a plain stage: the backend op
/// in its format), and the re-quantization of a tensor the previous stage already quantized
/// done again (the model skips it as the identity).
#[test]
fn scaled_forward_pass_matches_an_independent_replay() {
    let cfg = FnoConfig {
        dim: 2,
        in_channels: 1,
        out_channels: 1,
        width: 6,
        modes: vec![3, 3],
        n_layers: 1,
        lifting_channels: 0,
        projection_channels: 0,
        mlp_expansion: 0.0,
        factorization: mpno::fno::Factorization::Dense,
        positional_embedding: false,
        gelu_before_last_mlp: false,
        spectral_transform: Vec::new(),
        contraction: ContractForm::Standard,
    };
    let model = Fno::new(cfg).unwrap();
    let mut host = model.init::<f32>(5);
    // Channel c of the lifting's output and output channel o of the spectral weight times
    // 16^c, 16^o: a power-of-two scale changes an fp8 rounding only where values leave the
    // element format's range (saturation, subnormals), so the groups must differ by more
    // than that range (2^17.8 for E4M3) for a wrong grouping to show.
    for (name, per) in [("lifting.0.weight", 1), ("blocks.0.spectral.weight", 0)] {
        let w = host.list.iter_mut().find(|p| p.name == name).unwrap();
        let per = if per == 1 {
            1
        } else {
            w.shape[2..].iter().product()
        };
        for (i, v) in w.data.iter_mut().enumerate() {
            *v *= 16f32.powi(((i / per) % 6) as i32);
        }
    }
    let be = Be::new();
    let params = Resident::upload(&be, &host);
    let p = |name: &str| host.get(name).unwrap();
    let up = |name: &str| be.upload(&p(name).shape, &p(name).data, Format::Fp32);
    let (b, n) = (3, 12);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    // Inputs of magnitude up to 40: the lifting's channels differ in magnitude (its weights
    // are U(-1, 1)), so the scales differ per channel and per block.
    let x: Vec<f32> = (0..b * n * n)
        .map(|_| rng.random_range(-40.0f32..40.0))
        .collect();
    let xt = be.upload(&[b, 1, n, n], &x, Format::Fp32);
    for stages in [
        ["e4m3@tensor", "e4m3@tensor", "e4m3@tensor"],
        ["e4m3@channel", "e4m3@channel", "e4m3@channel"],
        ["e4m3@mx32", "e4m3@mx32", "e4m3@mx32"],
        ["e5m2@mx8", "e5m2@mx8", "e5m2@mx8"],
        ["e4m3@tensor", "e5m2@mx32", "bf16"],
        ["fp32", "e4m3@channel", "e4m3@mx4"],
        ["e5m2@channel", "bf16", "e5m2@tensor"],
    ] {
        let st: Vec<Stage> = stages.iter().map(|s| s.parse().unwrap()).collect();
        let policy = Policy {
            fwd_fft: st[0],
            contraction: st[1],
            inv_fft: st[2],
            mlp: Format::Fp32,
            stabilizer: Stabilizer::None,
            seed: 0,
        };
        let (y, _) = model.forward(&be, &params, &xt, &policy).unwrap();
        let got = be.download(&y);

        let [fwd, con, inv] = stages.map(reference);
        let h = be.linear(
            &xt,
            &up("lifting.0.weight"),
            Some(&up("lifting.0.bias")),
            Format::Fp32,
        );
        let s1 = be.linear(&h, &up("blocks.0.skip.weight"), None, Format::Fp32);
        let z = q_real(&be, &h, &fwd);
        let fmt = |s: &Stage| {
            if s.scaling.is_some() {
                Format::Fp32
            } else {
                s.format
            }
        };
        let xhat = be.rfft_modes(
            &z,
            &Modes(vec![3, 3]),
            SpectralForward {
                transform: mpno::backend::SpectralTransform::Fft,
                scale: 1.0 / (n * n) as f64,
                hermitian: false,
                format: fmt(&st[0]),
            },
        );
        let xhat = q_complex(&be, &xhat, &fwd);
        let w = p("blocks.0.spectral.weight");
        let wshape = &w.shape[..w.shape.len() - 1];
        let wt = be.upload_complex(wshape, &w.data, Format::Fp32);
        let yhat = if con.is_some() {
            let y = be.contract(
                &q_complex(&be, &xhat, &con),
                &q_complex(&be, &wt, &con),
                Format::Fp32,
                ContractForm::Standard,
            );
            q_complex(&be, &y, &con)
        } else {
            be.contract(&xhat, &wt, st[1].format, ContractForm::Standard)
        };
        let f = be.irfft_modes(
            &q_complex(&be, &yhat, &inv),
            &[n, n],
            SpectralInverse {
                transform: mpno::backend::SpectralTransform::Fft,
                scale: 1.0,
                hermitian: true,
                format: fmt(&st[2]),
            },
        );
        let f = q_real(&be, &f, &inv);
        let f = be.add_bias(&f, &up("blocks.0.spectral.bias"));
        // The only block is the last, which has no channel MLP: no GELU after its sum.
        let v = be.add(&f, &s1);
        let want = be.download(&be.linear(
            &v,
            &up("projection.0.weight"),
            Some(&up("projection.0.bias")),
            Format::Fp32,
        ));
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g.to_bits(), w.to_bits(), "{stages:?} [{i}]: {g} vs {w}");
        }
        // And it is not the fp32 model's output.
        let (y32, _) = model
            .forward(
                &be,
                &params,
                &xt,
                &Policy {
                    stabilizer: Stabilizer::None,
                    ..Policy::full()
                },
            )
            .unwrap();
        assert_ne!(be.download(&y32), got, "{stages:?} rounds nothing");
    }
}

// ---------------------------------------------------------------- training

/// `n` samples on an `r x r` grid: a smooth random field and a smoothing of it, times `amp`.
fn write_data(path: &Path, n: usize, r: usize, amp: f64) {
    let (mut a, mut u) = (Vec::new(), Vec::new());
    let tau = 2.0 * std::f64::consts::PI;
    for s in 0..n {
        let c: Vec<f64> = (0..5)
            .map(|k| ((s * 31 + k * 17) % 97) as f64 / 97.0 - 0.5)
            .collect();
        for i in 0..r {
            for j in 0..r {
                let (x, y) = (i as f64 / r as f64, j as f64 / r as f64);
                let (f1, f2, f3) = (
                    (tau * x).sin(),
                    (tau * y).cos(),
                    (tau * (x + 2.0 * y)).sin(),
                );
                a.push(amp * (c[0] + c[1] * f1 + c[2] * f2 + c[3] * f3 + c[4] * f1 * f2));
                u.push(amp * (0.3 * c[0] + 0.5 * c[1] * f1 + 0.25 * c[2] * f2 + 0.1 * c[3] * f3));
            }
        }
    }
    let mut ds = Dataset::default();
    ds.tensors
        .insert("a".into(), Tensor::from_f64(vec![n, r, r], a, DType::F32));
    ds.tensors
        .insert("u".into(), Tensor::from_f64(vec![n, r, r], u, DType::F32));
    ds.save(path).unwrap();
}

fn config(dir: &Path, precision: &str, normalizer: &str, epochs: usize, seed: u64) -> TrainConfig {
    let text = format!(
        r#"
[data]
file = "{data}"
n_train = 24
n_test = 8
normalizer = "{normalizer}"

[model]
width = 8
modes = [4]
n_layers = 2
lifting_channels = 8
projection_channels = 8

[train]
epochs = {epochs}
batch_size = 4
lr = 1e-2
step_size = 4
gamma = 0.5
seed = {seed}
checkpoint_every = 1
out_dir = "{out}"

[precision]
on_overflow = "skip"
{precision}
"#,
        data = dir.join("data.safetensors").display(),
        out = dir.join("out").display(),
    );
    let p = dir.join("cfg.toml");
    std::fs::write(&p, text).unwrap();
    TrainConfig::load(&p).unwrap()
}

fn block(stage: &str) -> String {
    format!("fwd_fft = \"{stage}\"\ncontraction = \"{stage}\"\ninv_fft = \"{stage}\"\n")
}

/// Train `cfg` (the output folder replaced) on `threads` threads: losses and the checkpoint's
/// tensor bytes (the header's metadata holds timings).
fn run(cfg: &TrainConfig, threads: usize) -> (train::RunReport, Vec<u8>) {
    let _ = std::fs::remove_dir_all(&cfg.train.out_dir);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let be = Be::new();
    let r = pool
        .install(|| train::run(&be, cfg, &RunOptions::default()))
        .unwrap();
    let file = std::fs::read(cfg.train.out_dir.join("checkpoint.safetensors")).unwrap();
    let header = u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
    (r, file[8 + header..].to_vec())
}

#[test]
fn stochastic_rounding_is_seeded_and_thread_count_free() {
    let dir = tempfile::tempdir().unwrap();
    write_data(&dir.path().join("data.safetensors"), 32, 16, 1.0);
    let d = dir.path();
    for stage in ["e4m3@tensor~sr", "e5m2@mx32~sr", "bf16~sr"] {
        let sr = config(d, &block(stage), "global", 2, 3);
        let (a, wa) = run(&sr, 2);
        assert!(
            a.records.iter().all(|r| r.train_loss.is_finite()),
            "{stage}"
        );
        let (_, again) = run(&sr, 2);
        assert!(
            wa == again,
            "{stage}: one seed, two different sets of weights"
        );
        let (_, one) = run(&sr, 1);
        assert!(wa == one, "{stage}: weights differ between 1 and 2 threads");
        let (_, other) = run(&config(d, &block(stage), "global", 2, 4), 2);
        assert!(wa != other, "{stage}: another seed, the same weights");
        // Stochastic, not round-to-nearest: the nearest run differs.
        let (_, near) = run(
            &config(d, &block(stage.trim_end_matches("~sr")), "global", 2, 3),
            2,
        );
        assert!(wa != near, "{stage}: the same weights as round-to-nearest");
    }
}

/// Inputs of magnitude ~100 without normalisation or stabilizer: the unnormalised forward FFT
/// of E4M3 overflows 448 (at least 15 of the 18 steps are skipped, the test error is NaN),
/// while E4M3 with per-tensor, per-channel or MX scales trains as fp32 does (no step skipped,
/// the same falling loss within 2%); the MX scales saturate some values by design (amax / S up
/// to 511 > 448) and the run counts them, current per-tensor and per-channel scales never do.
#[test]
fn scaled_e4m3_trains_where_unscaled_e4m3_overflows() {
    let dir = tempfile::tempdir().unwrap();
    write_data(&dir.path().join("data.safetensors"), 32, 16, 100.0);
    let d = dir.path();
    let (plain, _) = run(&config(d, &block("e4m3"), "none", 3, 3), 2);
    let skipped: u64 = plain.records.iter().map(|r| r.skipped_steps).sum();
    assert!(
        skipped >= 15 && plain.records[2].test[0].l2.is_nan(),
        "unscaled E4M3 did not overflow: {:?}",
        plain.records
    );
    let (fp32, _) = run(&config(d, "", "none", 3, 3), 2);
    for stage in ["e4m3@tensor", "e4m3@mx32", "e4m3@channel~sr"] {
        let (r, _) = run(&config(d, &block(stage), "none", 3, 3), 2);
        let loss: Vec<f64> = r.records.iter().map(|e| e.train_loss).collect();
        assert!(
            r.records
                .iter()
                .all(|e| e.skipped_steps == 0 && e.overflow_events == 0),
            "{stage}: {:?}",
            r.records
        );
        let loss32: Vec<f64> = fp32.records.iter().map(|e| e.train_loss).collect();
        // As fp32 does (0.923, 0.731, 0.660 when written): falling, within 2% per epoch.
        assert!(loss[2] < 0.8 * loss[0], "{stage}: loss {loss:?}");
        for (a, b) in loss.iter().zip(&loss32) {
            assert!(
                (a - b).abs() < 0.02 * b,
                "{stage}: loss {loss:?} vs fp32 {loss32:?}"
            );
        }
        let l2 = r.records[2].test[0].l2;
        let l2_32 = fp32.records[2].test[0].l2;
        assert!(
            l2.is_finite() && l2 < 1.5 * l2_32,
            "{stage}: test L2 {l2} vs fp32 {l2_32}"
        );
        let sat: u64 = r.records.iter().map(|e| e.saturated_values).sum();
        if stage.contains("mx") {
            assert!(sat > 0, "{stage}: MX scales never saturated");
        } else {
            assert_eq!(
                sat, 0,
                "{stage}: current per-tensor/channel scales saturated"
            );
        }
        assert_eq!(r.records[0].policy, format!("{stage}/{stage}/{stage}/fp32"));
    }
}

/// Delayed scaling (`~dN`): a run differs from current scaling (the scales come from earlier
/// steps), trains, and resumes bit for bit: the checkpoint carries the amax histories (a run
/// stopped after 1 epoch and resumed ends with the weights of the uninterrupted run).
#[test]
fn delayed_scaling_trains_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    write_data(&dir.path().join("data.safetensors"), 32, 16, 1.0);
    let d = dir.path();
    let cfg = config(d, &block("e4m3@tensor~d4"), "global", 3, 3);
    let (full, wa) = run(&cfg, 2);
    assert!(full.records.iter().all(|r| r.train_loss.is_finite()));
    assert!(full.records[2].train_loss < full.records[0].train_loss);
    assert_eq!(
        full.records[0].policy,
        "e4m3@tensor~d4/e4m3@tensor~d4/e4m3@tensor~d4/fp32"
    );
    let (_, current) = run(&config(d, &block("e4m3@tensor"), "global", 3, 3), 2);
    assert!(
        wa != current,
        "delayed scaling gave the weights of current scaling"
    );
    // Stopped after one epoch, then resumed.
    let _ = std::fs::remove_dir_all(&cfg.train.out_dir);
    let be = Be::new();
    let part = RunOptions {
        resume: true,
        stop_after: Some(1),
        progress: false,
    };
    train::run(&be, &cfg, &part).unwrap();
    let ck = std::fs::read(cfg.train.out_dir.join("checkpoint.safetensors")).unwrap();
    let header = u64::from_le_bytes(ck[..8].try_into().unwrap()) as usize;
    let meta = String::from_utf8_lossy(&ck[8..8 + header]).to_string();
    assert!(
        meta.contains("extra.quant_histories"),
        "no histories in {meta}"
    );
    let resumed = train::run(
        &be,
        &cfg,
        &RunOptions {
            stop_after: None,
            ..part
        },
    )
    .unwrap();
    let file = std::fs::read(cfg.train.out_dir.join("checkpoint.safetensors")).unwrap();
    let header = u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
    assert!(
        file[8 + header..] == wa[..],
        "resumed weights differ from the full run"
    );
    let bits = |r: &train::RunReport| -> Vec<u64> {
        r.records.iter().map(|e| e.train_loss.to_bits()).collect()
    };
    assert_eq!(bits(&resumed), bits(&full));
}

// ---------------------------------------------------------------- bad input

fn mpno(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mpno"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn bad_stage_forms_exit_2_naming_the_field_and_the_forms() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_data(&d.join("data.safetensors"), 32, 16, 1.0);
    let good = std::fs::read_to_string({
        config(d, "", "global", 2, 3);
        d.join("cfg.toml")
    })
    .unwrap();
    for (precision, field, says) in [
        (
            "fwd_fft = \"e4m3@row\"",
            "precision.fwd_fft",
            "allowed: tensor, channel",
        ),
        (
            "contraction = \"fp16@tensor\"",
            "precision.contraction",
            "scaled element formats: e4m3, e5m2",
        ),
        (
            "inv_fft = \"e4m3@mx0\"",
            "precision.inv_fft",
            "block size 0",
        ),
        (
            "inv_fft = \"fp32~sr\"",
            "precision.inv_fft",
            "needs a format below fp32",
        ),
        ("fwd_fft = \"e4m3~rn\"", "precision.fwd_fft", "allowed: ~sr"),
        (
            "fwd_fft = \"e4m3@channel:0\"",
            "precision.fwd_fft",
            "takes no axis",
        ),
        (
            "fwd_fft = \"fp12\"",
            "precision.fwd_fft",
            "scaled fp8 format ELEM@SCALING",
        ),
        ("mlp = \"e4m3@tensor\"", "precision.mlp", "spectral stages"),
        ("mlp = \"fp16~sr\"", "precision.mlp", "spectral stages"),
        (
            "[[precision.schedule]]\nepoch = 1\npolicy = \"e4m3@tensor/e4m3@mx/e4m3@blocks/fp32\"",
            "precision.schedule[0].policy",
            "inverse FFT: 'e4m3@blocks': unknown scaling 'blocks'",
        ),
    ] {
        let text = good.replace(
            "on_overflow = \"skip\"\n",
            &format!("on_overflow = \"skip\"\n{precision}\n"),
        );
        let p = d.join("bad.toml");
        std::fs::write(&p, &text).unwrap();
        let out = mpno(&["train", "--config", p.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{precision}: {err}");
        assert!(
            err.contains(field) && err.contains(says),
            "{precision}: {err}"
        );
        assert!(!d.join("out").exists(), "{precision}: output written");
    }
    // The schedule's policies and `bench fno --policy` take the same forms.
    let ok = mpno(&[
        "bench",
        "fno",
        "--res",
        "8",
        "--batch",
        "1",
        "--width",
        "4",
        "--modes",
        "2",
        "--layers",
        "1",
        "--steps",
        "1",
        "--policy",
        "e4m3@tensor/e5m2@mx32~sr/e4m3@channel/fp32",
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(json["policy"], "e4m3@tensor/e5m2@mx32~sr/e4m3@channel/fp32");
    for (policy, says) in [
        (
            "e4m3@tensor/e4m3@row/fp32/fp32",
            "contraction: 'e4m3@row': unknown scaling 'row'",
        ),
        ("e4m3@tensor/fp32/fp32/e4m3@tensor", "MLPs"),
        ("fp32~sr/fp32/fp32/fp32", "forward FFT: 'fp32~sr'"),
    ] {
        let out = mpno(&["bench", "fno", "--steps", "1", "--policy", policy]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{policy}: {err}");
        assert!(
            err.contains("--policy") && err.contains(says),
            "{policy}: {err}"
        );
    }
    let out = mpno(&[
        "bench",
        "fno",
        "--device",
        "cuda",
        "--steps",
        "1",
        "--policy",
        "e4m3@tensor/fp32/fp32/fp32",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--device") && err.contains("CPU backend only"),
        "{err}"
    );
}
