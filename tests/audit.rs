//! `mpno audit` on a tiny FNO trained here (2 blocks, width 8, modes 4, tanh stabilizer) at
//! 16 x 16 on smooth fields whose native grid is 64 x 64: every row within its bound, the
//! files complete, block 0's coarse activation the fine one subsampled (the lifting and the
//! stabilizer act point by point), the capture hook leaving the forward pass unchanged, and an
//! independent NumPy recomputation (scripts/audit_check.py) when python3 with numpy is present.

use mpno::audit::{self, AuditRequest};
use mpno::backend::Backend;
use mpno::backend::cpu::Cpu;
use mpno::error::CSV_HEADER;
use mpno::fno::{Fno, FnoConfig, Params, Policy, Resident, Stabilizer};
use mpno::pde::dataset::{DType, Dataset, Tensor};
use mpno::precision::{Format, Model};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `n` samples on an `r x r` grid: a = a smooth random field (a few sines), u = a smoothing.
fn write_data(path: &Path, n: usize, r: usize) {
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
                a.push(c[0] + c[1] * f1 + c[2] * f2 + c[3] * f3 + c[4] * f1 * f2);
                u.push(0.3 * c[0] + 0.5 * c[1] * f1 + 0.25 * c[2] * f2 + 0.1 * c[3] * f3);
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

/// Train the tiny model in `dir`; returns (checkpoint, data file).
fn trained(dir: &Path) -> (PathBuf, PathBuf) {
    let data = dir.join("data.safetensors");
    write_data(&data, 28, 64);
    let cfg = format!(
        "[data]\nfile = \"{}\"\nn_train = 24\nn_test = 4\nresolution = 16\nnormalizer = \"global\"\n\n\
         [model]\nwidth = 8\nmodes = [4]\nn_layers = 2\nlifting_channels = 8\nprojection_channels = 8\n\n\
         [train]\nepochs = 2\nbatch_size = 4\nlr = 1e-2\nout_dir = \"{}\"\n\n\
         [precision]\nstabilizer = \"tanh\"\n",
        data.display(),
        dir.join("run").display()
    );
    std::fs::write(dir.join("cfg.toml"), cfg).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_mpno"))
        .args(["train", "--config"])
        .arg(dir.join("cfg.toml"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (dir.join("run/checkpoint.safetensors"), data)
}

fn audit_cli(ck: &Path, data: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mpno"))
        .arg("audit")
        .arg("--checkpoint")
        .arg(ck)
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn every_row_is_within_its_bound_and_the_files_are_complete() {
    let dir = tempfile::tempdir().unwrap();
    let (ck, data) = trained(dir.path());
    let out = dir.path().join("audit");
    let o = audit_cli(
        &ck,
        &data,
        &out,
        &[
            "--resolutions",
            "16,32",
            "--samples",
            "2",
            "--formats",
            "fp16,bf16,e4m3",
            "--models",
            "input,arithmetic",
        ],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let mut rd = csv::Reader::from_path(out.join("audit.csv")).unwrap();
    let header: Vec<String> = rd.headers().unwrap().iter().map(String::from).collect();
    let mut want: Vec<&str> = CSV_HEADER.to_vec();
    want.push("sample");
    assert_eq!(header, want);
    let (mut precision, mut discretization, mut infinite) = (0, 0, 0);
    for rec in rd.records() {
        let r = rec.unwrap();
        let get = |c: &str| r[header.iter().position(|h| h == c).unwrap()].to_string();
        let num = |c: &str| -> f64 { get(c).parse().unwrap() };
        let (measured, bound) = (num("measured"), num("bound"));
        assert!(
            measured <= bound,
            "measured above its bound: {:?}",
            r.iter().collect::<Vec<_>>()
        );
        if bound.is_infinite() {
            infinite += 1;
            assert!(
                !get("note").is_empty(),
                "infinite bound without a reason: {r:?}"
            );
        }
        assert!(["fno:block0", "fno:block1"].contains(&get("function").as_str()));
        assert!(["26", "27"].contains(&get("sample").as_str()), "{r:?}");
        match get("kind").as_str() {
            "precision" => {
                precision += 1;
                assert_eq!(get("constants"), "samples");
            }
            "discretization" => {
                discretization += 1;
                assert_eq!(get("constants"), "estimate");
                assert!(get("note").contains("estimate"), "{r:?}");
                assert_ne!(
                    get("s"),
                    "64",
                    "no discretization row at the reference grid"
                );
            }
            k => panic!("kind {k}"),
        }
    }
    // 3 grids x 2 layers x 2 samples x 32 kept modes (8 x 4) x 3 formats x 2 models, and the
    // discretization rows of the 2 coarse grids.
    assert_eq!(precision, 3 * 2 * 2 * 32 * 3 * 2);
    assert_eq!(discretization, 2 * 2 * 2 * 32);
    // E4M3 arithmetic: an unnormalised transform of up to 64^2 values of tanh range cannot be
    // guaranteed in range (growth n M > 448): infinite bounds with the reason.
    assert!(infinite > 0);
    for f in [
        "audit.md",
        "audit_end_to_end.csv",
        "audit_layers.csv",
        "audit.svg",
        "audit.png",
        "audit_ratio.svg",
        "audit_ratio.png",
    ] {
        let p = out.join(f);
        assert!(
            p.is_file() && std::fs::metadata(&p).unwrap().len() > 100,
            "{f}"
        );
    }
    assert!(!out.join("activation.safetensors").exists());
    // The per-layer table: 3 grids x 2 layers x 3 formats x 2 models, none above its bound,
    // the discretization estimate beside every grid but the reference.
    let mut rd = csv::Reader::from_path(out.join("audit_layers.csv")).unwrap();
    let h = rd.headers().unwrap().clone();
    let col = |k: &str| h.iter().position(|x| x == k).unwrap();
    let lines: Vec<csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
    assert_eq!(lines.len(), 3 * 2 * 3 * 2);
    for l in &lines {
        assert_eq!(&l[col("above_bound")], "0", "{l:?}");
        assert_eq!(&l[col("rows")], "64", "{l:?}");
        let reference = &l[col("s")] == "64";
        assert_eq!(l[col("discretization_max")].is_empty(), reference, "{l:?}");
    }
    let md = std::fs::read_to_string(out.join("audit.md")).unwrap();
    assert!(
        md.contains("| fno:block1 | 16 | fp16 | arithmetic |"),
        "{md}"
    );
    assert!(md.contains("measured <= bound in 2560"), "{md}");
    // End to end: per grid, sample and format; fp16 and bf16 change the output (a little), the
    // coarse grids differ from the fine one, the native grid is the reference.
    let mut rd = csv::Reader::from_path(out.join("audit_end_to_end.csv")).unwrap();
    let mut n = 0;
    for rec in rd.records() {
        let r = rec.unwrap();
        n += 1;
        let p: f64 = r[3].parse().unwrap();
        match &r[2] {
            "fp16" | "bf16" => assert!(p > 0.0 && p < 0.1, "{r:?}"),
            _ => {}
        }
        if &r[0] == "64" {
            assert_eq!(&r[4], "", "{r:?}");
        } else {
            let d: f64 = r[4].parse().unwrap();
            assert!(d > 0.0 && d < 1.0, "{r:?}");
        }
    }
    assert_eq!(n, 3 * 2 * 3);
}

#[test]
fn block0_coarse_activation_is_the_fine_one_subsampled() {
    let dir = tempfile::tempdir().unwrap();
    let (ck, data) = trained(dir.path());
    let req = AuditRequest {
        checkpoint: ck,
        data,
        resolutions: Some(vec![16]),
        layers: Some(vec![0]),
        samples: 1,
        formats: vec![Format::Fp16],
        models: vec![Model::Input],
        out: dir.path().join("unused"),
    };
    let plan = audit::prepare(&req).unwrap();
    assert_eq!((plan.native, plan.resolutions.clone()), (64, vec![16, 64]));
    let result = audit::run(&plan).unwrap();
    let (coarse, fine) = result.first.expect("a coarse activation");
    assert_eq!((coarse.layer, coarse.grid.clone()), (0, vec![16, 16]));
    assert_eq!(fine.grid, vec![64, 64]);
    // Before the first transform every op acts point by point (lifting over channels, tanh):
    // the coarse run's values are the fine run's at every 4th point, up to the f32 rounding of
    // a differently ordered channel sum (a few ulps of values below 1).
    let mut worst = 0.0f64;
    for c in 0..coarse.channels {
        for i in 0..16 {
            for j in 0..16 {
                let a = coarse.channel(c)[i * 16 + j];
                let b = fine.channel(c)[(4 * i) * 64 + 4 * j];
                worst = worst.max((a - b).abs());
            }
        }
    }
    assert!(
        worst <= 8.0 * f32::EPSILON as f64,
        "largest difference {worst:e}"
    );
    assert!(nonzero(&coarse.values));
    // No directory was written by prepare/run.
    assert!(!dir.path().join("unused").exists());
}

fn nonzero(v: &[f64]) -> bool {
    v.iter().any(|x| *x != 0.0)
}

#[test]
fn capturing_leaves_the_forward_pass_unchanged() {
    let cfg = FnoConfig {
        width: 6,
        modes: vec![3, 3],
        n_layers: 3,
        lifting_channels: 8,
        projection_channels: 8,
        ..FnoConfig::darcy_small()
    };
    let model = Fno::new(cfg).unwrap();
    let host: Params<f32> = model.init(5);
    let be = Cpu::<f32>::new();
    let params = Resident::upload(&be, &host);
    let grid = [12usize, 12];
    let x: Vec<f32> = (0..144)
        .map(|i| ((i * 37) % 23) as f32 / 23.0 - 0.5)
        .collect();
    for policy in [
        Policy {
            stabilizer: Stabilizer::Tanh,
            ..Policy::full()
        },
        Policy::half_block(Format::Fp16, Stabilizer::Clip(2.0)),
    ] {
        let xt = be.upload(&[1, 1, 12, 12], &x, Format::Fp32);
        let (y, _) = model.forward(&be, &params, &xt, &policy).unwrap();
        let y = be.download(&y);
        let (yc, acts) =
            audit::forward_capture(&be, &model, &params, &x, &grid, &policy, &[0, 2]).unwrap();
        assert_eq!(y, yc, "{policy:?}");
        assert_eq!(acts.iter().map(|a| a.layer).collect::<Vec<_>>(), vec![0, 2]);
        for a in &acts {
            assert_eq!((a.channels, a.grid.clone()), (6, vec![12, 12]));
            // After the stabilizer: tanh keeps |z| < 1, the clip keeps |z| <= 2.
            let m = a.values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            assert!(m > 0.0 && m <= 2.0, "{m}");
        }
    }
}

fn python_with_numpy() -> Option<String> {
    let py = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&py)
        .args(["-c", "import numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(py)
}

#[test]
fn numpy_recomputes_model_i_errors_and_the_discretization_estimate() {
    let Some(py) = python_with_numpy() else {
        eprintln!(
            "skipped: python3 with numpy not found (set PYTHON to an interpreter that has numpy)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (ck, data) = trained(dir.path());
    let out = dir.path().join("audit");
    let o = audit_cli(
        &ck,
        &data,
        &out,
        &[
            "--resolutions",
            "16",
            "--samples",
            "1",
            "--layers",
            "1",
            "--formats",
            "fp16,bf16,fp32",
            "--models",
            "input",
            "--save-activation",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/audit_check.py");
    let o = Command::new(&py).arg(script).arg(&out).output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    println!("{stdout}");
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Layer 1 at 16 and 64: 32 modes x 3 formats x 2 grids of model-I rows, 32 discretization rows.
    assert!(
        stdout.contains("checked 192 model-I precision rows and 32 discretization rows"),
        "{stdout}"
    );
}

/// The tiny model's training config with `[audit]` (every `every` steps; none when 0), written
/// into `dir`; 24 training samples in batches of 4: 6 steps per epoch.
fn audited_config(dir: &Path, data: &Path, every: u64) -> mpno::fno::config::TrainConfig {
    let audit = if every > 0 {
        format!("\n[audit]\nevery = {every}\nsamples = 2\n")
    } else {
        String::new()
    };
    let text = format!(
        "[data]\nfile = \"{}\"\nn_train = 24\nn_test = 4\nresolution = 16\ntest_resolutions = [64]\n\
         normalizer = \"global\"\n\n\
         [model]\nwidth = 8\nmodes = [4]\nn_layers = 2\nlifting_channels = 8\nprojection_channels = 8\n\n\
         [train]\nepochs = 2\nbatch_size = 4\nlr = 1e-2\ncheckpoint_every = 1\nout_dir = \"{}\"\n\n\
         [precision]\nstabilizer = \"tanh\"\n{audit}",
        data.display(),
        dir.display()
    );
    let mut cfg = mpno::fno::config::TrainConfig::from_toml(&text).unwrap();
    cfg.check_data().unwrap();
    cfg
}

/// The metrics columns that do not depend on time or memory.
fn results(dir: &Path) -> Vec<Vec<String>> {
    let mut rd = csv::Reader::from_path(dir.join("metrics.csv")).unwrap();
    let h = rd.headers().unwrap().clone();
    rd.records()
        .map(|r| {
            let r = r.unwrap();
            h.iter()
                .zip(r.iter())
                .filter(|(k, _)| !["seconds", "samples_per_s", "peak_memory_bytes"].contains(k))
                .map(|(_, v)| v.to_string())
                .collect()
        })
        .collect()
}

/// `[audit] every = 3`: an audit before the first step and after steps 3, 6, 9, 12, each a
/// precision line per layer for fp16 (the default when the block is fp32) under models I and
/// III and a discretization line against the 64-point test grid, all within their bounds; the
/// training itself is unchanged (every loss and test error equal to the unaudited run's); and
/// a run interrupted after one epoch and resumed writes the same log, byte for byte.
#[test]
fn auditing_during_training_logs_every_layer_and_changes_nothing() {
    use mpno::fno::audit_log;
    use mpno::fno::train::{self, RunOptions};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.safetensors");
    write_data(&data, 28, 64);
    let be = Cpu::<f32>::new();
    let plain = dir.path().join("plain");
    train::run(
        &be,
        &audited_config(&plain, &data, 0),
        &RunOptions::default(),
    )
    .unwrap();
    assert!(!plain.join(audit_log::CSV).exists());
    let audited = dir.path().join("audited");
    let cfg = audited_config(&audited, &data, 3);
    train::run(&be, &cfg, &RunOptions::default()).unwrap();
    assert_eq!(
        results(&plain),
        results(&audited),
        "the audit changed training"
    );

    let log = audit_log::read(&audited.join(audit_log::CSV)).unwrap();
    let steps: std::collections::BTreeSet<u64> = log.iter().map(|p| p.step).collect();
    assert_eq!(steps.into_iter().collect::<Vec<_>>(), vec![0, 3, 6, 9, 12]);
    assert_eq!(log.len(), 5 * 2 * 3, "{log:#?}");
    for p in &log {
        assert_eq!(p.s, 16);
        assert_eq!(p.above, 0, "{p:?}");
        assert!(p.measured.is_finite() && p.measured > 0.0, "{p:?}");
        assert!(p.measured <= p.bound, "{p:?}");
        // tanh: |v| < 1.
        assert!(p.max_abs > 0.0 && p.max_abs < 1.0, "{p:?}");
        assert!(p.lipschitz_estimate > 0.0, "{p:?}");
        match p.kind.as_str() {
            "precision" => {
                assert_eq!(p.format, "fp16");
                assert!(["input", "arithmetic"].contains(&p.model.as_str()), "{p:?}");
            }
            "discretization" => {
                assert_eq!((p.format.as_str(), p.model.as_str()), ("fp64", "none"));
                assert!(p.note.contains("vs s = 64"), "{p:?}");
            }
            k => panic!("kind {k}"),
        }
    }
    for f in ["audit_training.svg", "audit_training.png"] {
        assert!(audited.join(f).is_file(), "{f}");
    }

    let resumed = dir.path().join("resumed");
    let cfg = audited_config(&resumed, &data, 3);
    let stop = RunOptions {
        stop_after: Some(1),
        ..RunOptions::default()
    };
    train::run(&be, &cfg, &stop).unwrap();
    let first = audit_log::read(&resumed.join(audit_log::CSV)).unwrap();
    assert_eq!(first.iter().map(|p| p.step).max(), Some(6));
    let resume = RunOptions {
        resume: true,
        ..RunOptions::default()
    };
    train::run(&be, &cfg, &resume).unwrap();
    assert_eq!(
        std::fs::read(resumed.join(audit_log::CSV)).unwrap(),
        std::fs::read(audited.join(audit_log::CSV)).unwrap(),
        "the resumed run's log differs"
    );
}
