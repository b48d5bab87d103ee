//! The trainer end to end on small synthetic data: determinism, exact resume, overflow reports,
//! fp16 vs fp32 agreement, and the CLI's handling of bad configs.

use mpno::backend::cpu::Cpu;
use mpno::fno::config::TrainConfig;
use mpno::fno::train::{self, RunOptions};
use mpno::pde::dataset::{DType, Dataset, Tensor};
use std::path::Path;
use std::process::Command;

/// `n` samples on an `r x r` grid: a = a smooth random field, u = a smoothing of a (a linear
/// operator an FNO learns quickly), both scaled by `amp`.
fn write_data(path: &Path, n: usize, r: usize, amp: f64) {
    let mut a = Vec::with_capacity(n * r * r);
    let mut u = Vec::with_capacity(n * r * r);
    let tau = 2.0 * std::f64::consts::PI;
    for s in 0..n {
        let c: Vec<f64> = (0..5)
            .map(|k| ((s * 31 + k * 17) % 97) as f64 / 97.0 - 0.5)
            .collect();
        for i in 0..r {
            for j in 0..r {
                let (x, y) = (i as f64 / r as f64, j as f64 / r as f64);
                let f1 = (tau * x).sin();
                let f2 = (tau * y).cos();
                let f3 = (tau * (x + 2.0 * y)).sin();
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

fn config(dir: &Path, extra_precision: &str, normalizer: &str, epochs: usize) -> String {
    format!(
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
seed = 3
checkpoint_every = 1
out_dir = "{out}"

[precision]
{extra_precision}
"#,
        data = dir.join("data.safetensors").display(),
        out = dir.join("out").display(),
    )
}

fn load(text: &str, dir: &Path) -> TrainConfig {
    let p = dir.join("cfg.toml");
    std::fs::write(&p, text).unwrap();
    TrainConfig::load(&p).unwrap()
}

fn losses(r: &train::RunReport) -> Vec<u64> {
    r.records.iter().map(|e| e.train_loss.to_bits()).collect()
}

#[test]
fn same_seed_same_losses_and_resume_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    write_data(&dir.path().join("data.safetensors"), 32, 16, 1.0);
    let cfg = load(&config(dir.path(), "", "global", 8), dir.path());
    let be = Cpu::<f32>::new();
    let full = train::run(&be, &cfg, &RunOptions::default()).unwrap();
    assert_eq!(full.records.len(), 8);
    assert!(
        full.records[7].train_loss < 0.5 * full.records[0].train_loss,
        "training does not reduce the loss: {:?}",
        full.records
            .iter()
            .map(|r| r.train_loss)
            .collect::<Vec<_>>()
    );
    std::fs::remove_dir_all(dir.path().join("out")).unwrap();
    let again = train::run(&be, &cfg, &RunOptions::default()).unwrap();
    assert_eq!(losses(&full), losses(&again), "same seed, different losses");

    // Recomputed activations: the same run bit for bit, in less memory.
    std::fs::remove_dir_all(dir.path().join("out")).unwrap();
    let text = config(dir.path(), "", "global", 8)
        .replace("[train]\n", "[train]\nrecompute_activations = true\n");
    let rc = load(&text, dir.path());
    assert!(rc.train.recompute_activations);
    let rc = train::run(&be, &rc, &RunOptions::default()).unwrap();
    assert_eq!(losses(&full), losses(&rc), "recompute changed the losses");
    assert!(
        rc.peak_bytes < full.peak_bytes,
        "recompute: peak {} vs {}",
        rc.peak_bytes,
        full.peak_bytes
    );

    // Interrupted after 1 epoch, then resumed twice (1 + 2 + 5 epochs).
    std::fs::remove_dir_all(dir.path().join("out")).unwrap();
    let part = RunOptions {
        resume: true,
        stop_after: Some(1),
        progress: false,
    };
    train::run(&be, &cfg, &part).unwrap();
    train::run(
        &be,
        &cfg,
        &RunOptions {
            stop_after: Some(2),
            ..part
        },
    )
    .unwrap();
    let resumed = train::run(
        &be,
        &cfg,
        &RunOptions {
            resume: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        losses(&full),
        losses(&resumed),
        "resumed run differs from the uninterrupted one"
    );
    let t_full: Vec<u64> = full
        .records
        .iter()
        .map(|r| r.test[0].l2.to_bits())
        .collect();
    let t_res: Vec<u64> = resumed
        .records
        .iter()
        .map(|r| r.test[0].l2.to_bits())
        .collect();
    assert_eq!(t_full, t_res);
}

/// Training on the H1 loss (through `Backend::h1_loss`) lowers the H1 error it optimises, on the
/// training batches and on the test set.
#[test]
fn h1_loss_training_lowers_the_h1_error() {
    let dir = tempfile::tempdir().unwrap();
    write_data(&dir.path().join("data.safetensors"), 32, 16, 1.0);
    let text = config(dir.path(), "", "global", 8).replace("[train]\n", "[train]\nloss = \"h1\"\n");
    let cfg = load(&text, dir.path());
    let r = train::run(&Cpu::<f32>::new(), &cfg, &RunOptions::default()).unwrap();
    let (first, last) = (&r.records[0], &r.records[7]);
    assert!(
        last.train_loss < 0.5 * first.train_loss,
        "H1 training loss {} -> {}",
        first.train_loss,
        last.train_loss
    );
    assert!(
        last.test[0].h1 < 0.5 * first.test[0].h1,
        "test H1 {} -> {}",
        first.test[0].h1,
        last.test[0].h1
    );
    // The H1 norm adds the gradient's energy: the relative H1 error is not the L2 one.
    assert_ne!(last.test[0].h1, last.test[0].l2);
}

#[test]
fn fp16_tanh_training_tracks_fp32() {
    let dir = tempfile::tempdir().unwrap();
    write_data(&dir.path().join("data.safetensors"), 32, 16, 1.0);
    let be = Cpu::<f32>::new();
    let full = train::run(
        &be,
        &load(&config(dir.path(), "", "global", 4), dir.path()),
        &RunOptions::default(),
    )
    .unwrap();
    std::fs::remove_dir_all(dir.path().join("out")).unwrap();
    let half = load(
        &config(
            dir.path(),
            "fwd_fft = \"fp16\"\ncontraction = \"fp16\"\ninv_fft = \"fp16\"\nstabilizer = \"tanh\"",
            "global",
            4,
        ),
        dir.path(),
    );
    let h = train::run(&be, &half, &RunOptions::default()).unwrap();
    assert_eq!(h.records[0].policy, "fp16/fp16/fp16/fp32");
    let (lf, lh) = (full.records[3].test[0].l2, h.records[3].test[0].l2);
    // Same data and seed; fp16 rounding (u = 2^-11) perturbs the trajectory only slightly.
    assert!((lh - lf).abs() <= 0.25 * lf, "fp32 test L2 {lf}, fp16 {lh}");
    assert!(
        h.peak_bytes < full.peak_bytes,
        "fp16 storage should need less memory"
    );
}

#[test]
fn fp16_without_stabilizer_on_large_inputs_reports_layer_and_step() {
    overflow_reports(Cpu::<f32>::new());
}

/// The same reports when the checks are read once per pass (the GPU backend's way): the pass
/// runs on past the first inf/NaN and the first failed check is still the one reported.
#[test]
fn deferred_finiteness_checks_report_the_same_overflows() {
    overflow_reports(Cpu::<f32>::with_deferred_checks());
}

fn overflow_reports(be: Cpu<f32>) {
    let dir = tempfile::tempdir().unwrap();
    // Values up to ~4e4 (below fp16's 65504) on a 16 x 16 grid: the unnormalised FFT sums of
    // the lifted fields exceed 65504.
    write_data(&dir.path().join("data.safetensors"), 32, 16, 3e4);
    let cfg = load(
        &config(
            dir.path(),
            "fwd_fft = \"fp16\"\ncontraction = \"fp16\"\ninv_fft = \"fp16\"",
            "none",
            2,
        ),
        dir.path(),
    );
    let r = train::run(&be, &cfg, &RunOptions::default()).unwrap();
    let (o, step) = r.stopped.expect("overflow not reported");
    assert_eq!(step, 1, "overflow should be caught at the first step");
    assert_eq!(o.layer, "blocks.0");
    assert_eq!(o.op, "forward FFT");
    assert_eq!(o.phase, "forward");

    // The tanh stabilizer keeps the same run finite.
    std::fs::remove_dir_all(dir.path().join("out")).unwrap();
    let cfg = load(
        &config(
            dir.path(),
            "fwd_fft = \"fp16\"\ncontraction = \"fp16\"\ninv_fft = \"fp16\"\nstabilizer = \"tanh\"",
            "none",
            2,
        ),
        dir.path(),
    );
    let r = train::run(&be, &cfg, &RunOptions::default()).unwrap();
    assert!(r.stopped.is_none(), "{:?}", r.stopped);

    // With on_overflow = "skip" the run goes on and counts the skipped steps.
    std::fs::remove_dir_all(dir.path().join("out")).unwrap();
    let cfg = load(
        &config(
            dir.path(),
            "fwd_fft = \"fp16\"\ncontraction = \"fp16\"\ninv_fft = \"fp16\"\non_overflow = \"skip\"",
            "none",
            1,
        ),
        dir.path(),
    );
    let r = train::run(&be, &cfg, &RunOptions::default()).unwrap();
    assert!(r.stopped.is_none());
    assert_eq!(r.records[0].skipped_steps, 6);
}

fn mpno(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mpno"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn bad_configs_exit_2_and_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    write_data(&dir.path().join("data.safetensors"), 32, 16, 1.0);
    let good = config(dir.path(), "", "global", 1);
    let cases: Vec<(String, &str)> = vec![
        (good.replace("width = 8", "width = 0"), "model.width"),
        (good.replace("width = 8", "widht = 8"), "widht"),
        (good.replace("modes = [4]", "modes = [40]"), "model.modes"),
        (
            good.replace("data.safetensors", "missing.safetensors"),
            "data.file",
        ),
    ];
    for (text, field) in cases {
        let p = dir.path().join("bad.toml");
        std::fs::write(&p, &text).unwrap();
        let out = mpno(&["train", "--config", p.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{field}: {err}");
        assert!(err.contains(field), "{field} not named in: {err}");
        assert!(
            !dir.path().join("out").exists(),
            "{field}: output written for a bad config"
        );
    }
    let out = mpno(&["eval", "--checkpoint", "/nonexistent.safetensors"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn cli_train_then_eval() {
    let dir = tempfile::tempdir().unwrap();
    write_data(&dir.path().join("data.safetensors"), 32, 16, 1.0);
    let p = dir.path().join("cfg.toml");
    std::fs::write(&p, config(dir.path(), "", "global", 2)).unwrap();
    let out = mpno(&["train", "--config", p.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ck = dir.path().join("out/checkpoint.safetensors");
    for f in [
        "metrics.csv",
        "metrics.json",
        "config.toml",
        "checkpoint.safetensors",
    ] {
        assert!(dir.path().join("out").join(f).exists(), "{f} missing");
    }
    let out = mpno(&["eval", "--checkpoint", ck.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().nth(1).unwrap();
    let l2: f64 = line.split(',').nth(1).unwrap().parse().unwrap();
    // The metrics file's last test L2 is what eval recomputes from the checkpoint.
    let json = std::fs::read_to_string(dir.path().join("out/metrics.json")).unwrap();
    let recs = mpno::fno::metrics::MetricsLog::records_from_json(&json).unwrap();
    let want = recs.last().unwrap().test[0].l2;
    assert!(
        (l2 - want).abs() <= 1e-12 * want,
        "eval {l2}, training log {want}"
    );
}

#[test]
fn bench_fno_prints_json_and_rejects_bad_input() {
    let out = mpno(&[
        "bench", "fno", "--res", "16", "--batch", "2", "--width", "4", "--modes", "4", "--layers",
        "1", "--steps", "1", "--policy", "half",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["policy"], "fp16/fp16/fp16/fp16");
    assert!(v["ms_per_step"].as_f64().unwrap() > 0.0);
    // ms_per_step is the fastest step, ms_median_step the median.
    assert!(v["ms_median_step"].as_f64().unwrap() >= v["ms_per_step"].as_f64().unwrap());
    assert!(v["peak_memory_bytes"].as_u64().unwrap() > 0);
    for (args, field) in [
        (vec!["--modes", "40", "--res", "64"], "--modes"),
        (vec!["--device", "tpu"], "--device"),
        (vec!["--width", "0"], "--width"),
        (vec!["--policy", "fp17/fp16/fp16/fp16"], "--policy"),
        (vec!["--stabilizer", "clip:-1"], "--stabilizer"),
        (vec!["--rank=-1"], "--rank"),
        // A format the GPU does not compute in is refused before any device is opened.
        (
            vec!["--device", "cuda", "--policy", "e4m3/fp16/fp16/fp32"],
            "--device",
        ),
    ] {
        let mut a = vec!["bench", "fno"];
        a.extend(args);
        let out = mpno(&a);
        assert_eq!(out.status.code(), Some(2), "{field}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(field));
        assert!(out.stdout.is_empty(), "{field}: partial output");
    }
}

/// `mpno bench report` on a gpu-run file made of a real `mpno bench fno` output (CPU, small) and
/// a neuraloperator entry writes the table and figure; bad files exit 2 and write nothing.
#[test]
fn bench_report_writes_table_and_figure_and_rejects_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = mpno(&[
        "bench", "fno", "--res", "16", "--batch", "2", "--width", "4", "--modes", "4", "--layers",
        "1", "--steps", "2", "--policy", "full",
    ]);
    assert!(out.status.success());
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ms = run["ms_median_step"].as_f64().unwrap();
    let file = dir.path().join("gpu_bench.json");
    let json = serde_json::json!({
        "mpno_dense_full": run,
        "neuralop": {"gpu": "test GPU", "fno_ns128_batch2": {
            "dense/full": {"ms_per_iter": 3.0 * ms, "peak_alloc_MB": 10.0}}}
    });
    std::fs::write(&file, json.to_string()).unwrap();
    let rep = dir.path().join("report");
    let out = mpno(&[
        "bench",
        "report",
        file.to_str().unwrap(),
        "--out",
        rep.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = std::fs::read_to_string(rep.join("gpu_bench.md")).unwrap();
    assert!(md.contains("on test GPU"), "{md}");
    assert!(
        md.contains("| dense full | fp32 |") && md.contains("| 3.00x |"),
        "{md}"
    );
    assert!(
        md.contains("| dense full: neuraloperator full ms / mpno full ms | 3.000 | >= 1.5 | met |"),
        "{md}"
    );
    assert!(md.contains("not measured"), "{md}");
    for ext in ["svg", "png"] {
        assert!(
            std::fs::metadata(rep.join(format!("gpu_bench.{ext}")))
                .unwrap()
                .len()
                > 1000
        );
    }
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"x\": 1}").unwrap();
    for (path, want) in [
        (
            bad.to_str().unwrap(),
            "no mpno_*, darcy_* or neuralop entry",
        ),
        ("/nonexistent/gpu_bench.json", "cannot read"),
    ] {
        let empty = dir.path().join("empty");
        let out = mpno(&["bench", "report", path, "--out", empty.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{path}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(want),
            "{path}"
        );
        assert!(
            out.stdout.is_empty() && !empty.exists(),
            "{path}: partial output"
        );
    }
}

/// Without a GPU (or driver), `--device cuda` is a clear runtime error (exit 1, no panic, no
/// output); with one, the bench runs and reports the device. The tests/backend_parity.rs
/// tests check the backend itself.
#[test]
fn device_cuda_reports_a_missing_gpu_plainly_or_runs() {
    let out = mpno(&[
        "bench", "fno", "--device", "cuda", "--res", "16", "--batch", "2", "--width", "4",
        "--modes", "4", "--layers", "1", "--steps", "1",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    if mpno::backend::cuda::driver_present() && out.status.success() {
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(v["device"].as_str().unwrap().starts_with("cuda"), "{v}");
        return;
    }
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--device cuda") && !err.contains("panicked"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    eprintln!("no GPU here: {}", err.trim());
}

/// Killing `mpno train` (SIGKILL, no chance to clean up) in the middle of an epoch leaves the
/// checkpoint of the last finished epoch readable, and `--resume` from it ends with the same
/// losses, bit for bit, as a run that was never interrupted.
#[test]
fn killed_mid_epoch_leaves_the_last_checkpoint_and_resume_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    write_data(&dir.path().join("data.safetensors"), 232, 32, 1.0);
    let text = config(dir.path(), "", "global", 3)
        .replace("n_train = 24", "n_train = 224")
        .replace("width = 8", "width = 16");
    let p = dir.path().join("cfg.toml");
    std::fs::write(&p, &text).unwrap();
    let metrics = dir.path().join("out/metrics.csv");
    let ck = dir.path().join("out/checkpoint.safetensors");

    let mut child = Command::new(env!("CARGO_BIN_EXE_mpno"))
        .args(["train", "--config", p.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the first epoch's metrics row (its checkpoint is written right after), then kill
    // about a third of an epoch later.
    let t0 = std::time::Instant::now();
    let epoch_secs = loop {
        let rows = std::fs::read_to_string(&metrics).unwrap_or_default();
        if let (Some(row), true) = (rows.lines().nth(1), ck.exists()) {
            break row.split(',').nth(3).unwrap().parse::<f64>().unwrap();
        }
        assert!(t0.elapsed().as_secs() < 300, "no epoch finished in 300 s");
        assert!(child.try_wait().unwrap().is_none(), "train exited early");
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    std::thread::sleep(std::time::Duration::from_secs_f64(
        (epoch_secs / 3.0).max(0.05),
    ));
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "train finished before it was killed");

    // The checkpoint is whole: it loads, and names a finished epoch.
    let saved = mpno::fno::checkpoint::Checkpoint::<f32>::load(&ck).expect("checkpoint intact");
    assert!(
        (1..3).contains(&saved.epoch),
        "checkpoint at epoch {}",
        saved.epoch
    );
    let out = mpno(&["train", "--config", p.to_str().unwrap(), "--resume"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = std::fs::read_to_string(dir.path().join("out/metrics.json")).unwrap();
    let resumed = mpno::fno::metrics::MetricsLog::records_from_json(&json).unwrap();

    let cfg = load(&text.replace("/out\"", "/ref\""), dir.path());
    let be = Cpu::<f32>::new();
    let full = train::run(&be, &cfg, &RunOptions::default()).unwrap();
    let bits = |r: &[mpno::fno::metrics::EpochRecord]| -> Vec<u64> {
        r.iter().map(|e| e.train_loss.to_bits()).collect()
    };
    assert_eq!(resumed.len(), 3);
    assert_eq!(bits(&resumed), bits(&full.records));
}

/// A run whose every step overflowed (on_overflow = "skip") trained nothing: `mpno train` says
/// so and fails (exit 1) instead of exiting 0 with NaN metrics.
#[test]
fn a_run_whose_every_step_was_skipped_fails() {
    let dir = tempfile::tempdir().unwrap();
    write_data(&dir.path().join("data.safetensors"), 32, 16, 3e4);
    let p = dir.path().join("cfg.toml");
    std::fs::write(
        &p,
        config(
            dir.path(),
            "fwd_fft = \"fp16\"\ncontraction = \"fp16\"\ninv_fft = \"fp16\"\non_overflow = \"skip\"",
            "none",
            1,
        ),
    )
    .unwrap();
    let out = mpno(&["train", "--config", p.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("every training step (6) overflowed") && !err.contains("panicked"),
        "{err}"
    );
}

/// A second `mpno train` into the folder of a finished run is refused (exit 2, nothing
/// changed) unless --resume continues it or --force replaces it; --force removes the earlier
/// run's files first, so the new checkpoint and metrics are the new run's alone.
#[test]
fn an_earlier_run_is_replaced_only_with_force() {
    let dir = tempfile::tempdir().unwrap();
    write_data(&dir.path().join("data.safetensors"), 32, 16, 1.0);
    let p = dir.path().join("cfg.toml");
    std::fs::write(&p, config(dir.path(), "", "global", 2)).unwrap();
    let cfg = p.to_str().unwrap();
    let out = mpno(&["train", "--config", cfg]);
    assert!(out.status.success());
    let metrics = dir.path().join("out/metrics.csv");
    let first = std::fs::read(&metrics).unwrap();
    let out = mpno(&["train", "--config", cfg, "--epochs", "1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("train.out_dir") && err.contains("--force") && err.contains("--resume"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&metrics).unwrap(),
        first,
        "refused run changed files"
    );
    let out = mpno(&["train", "--config", cfg, "--force", "--resume"]);
    assert_eq!(out.status.code(), Some(2));
    let out = mpno(&["train", "--config", cfg, "--epochs", "1", "--force"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = std::fs::read_to_string(dir.path().join("out/metrics.json")).unwrap();
    let recs = mpno::fno::metrics::MetricsLog::records_from_json(&json).unwrap();
    assert_eq!(recs.len(), 1, "the earlier run's epochs survived --force");
    let ck = mpno::fno::checkpoint::Checkpoint::<f32>::load(
        &dir.path().join("out/checkpoint.safetensors"),
    )
    .unwrap();
    assert_eq!(ck.epoch, 1);
}

/// The thread count changes no bit: the CPU backend splits work (batch x channel slices, blocks
/// of weight-gradient rows, per-row sums) so that every value sees the same operations in the
/// same order. Width 24 splits the weight-gradient GEMM into 3 row blocks on 3 threads and none
/// on 1; fp32 and an emulated fp16 policy.
#[test]
fn the_thread_count_changes_no_bit() {
    let dir = tempfile::tempdir().unwrap();
    write_data(&dir.path().join("data.safetensors"), 32, 16, 1.0);
    for precision in [
        "",
        "fwd_fft = \"fp16\"\ncontraction = \"fp16\"\ninv_fft = \"fp16\"\nmlp = \"fp16\"\nstabilizer = \"tanh\"",
    ] {
        let text = config(dir.path(), precision, "global", 2)
            .replace("width = 8\n", "width = 24\n")
            .replace("lifting_channels = 8\n", "lifting_channels = 48\n");
        let cfg = load(&text, dir.path());
        let run = |threads: usize| {
            let _ = std::fs::remove_dir_all(dir.path().join("out"));
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let be = Cpu::<f32>::new();
            let r = pool
                .install(|| train::run(&be, &cfg, &RunOptions::default()))
                .unwrap();
            // The tensors' bytes (the header's metadata holds timings).
            let file = std::fs::read(dir.path().join("out/checkpoint.safetensors")).unwrap();
            let header = u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
            (losses(&r), file[8 + header..].to_vec())
        };
        let (l1, w1) = run(1);
        let (l3, w3) = run(3);
        assert_eq!(l1, l3, "{precision}: losses differ between 1 and 3 threads");
        assert!(
            w1 == w3,
            "{precision}: checkpoints differ between 1 and 3 threads"
        );
    }
}
