//! The FNO training experiments of `reproduce` (kind = "training", experiments/fno_*.toml):
//! - the committed experiment files run end to end at a small scale (a smaller base config and
//!   data set in a temporary folder): every file is written, runs shared by experiments train
//!   once and give identical rows, schedules switch policy at their epochs;
//! - bad experiment files exit 2 naming the field and write nothing;
//! - the committed results (figures/fno_*) have every run, finite errors or an explanation, and
//!   back the claims the README makes from them;
//! - (ignored, ~15 minutes) the full-scale experiments agree with the committed results within
//!   the run-to-run noise of training.

mod common;
use common::mpno;
use std::collections::BTreeMap;
use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

const SUMMARY: &str = "run,policy,stabilizer,schedule,epochs,train_resolution,resolution,test_l2,test_h1,train_loss,skipped_steps,saturated_values,stopped,parameters,peak_memory_mb,seconds_per_epoch,samples_per_s";
const EPOCHS: &str = "run,epoch,policy,lr,train_loss,resolution,test_l2,test_h1,skipped_steps,overflow_events,saturated_values,loss_scale,peak_memory_mb,seconds,samples_per_s";

/// Names of the committed training experiments.
fn training_experiments() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(format!("{ROOT}/experiments"))
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            let text = std::fs::read_to_string(&p).ok()?;
            let t: toml::Table = toml::from_str(&text).ok()?;
            (t.get("kind")?.as_str()? == "training")
                .then(|| p.file_stem().unwrap().to_string_lossy().into_owned())
        })
        .collect();
    v.sort();
    v
}

/// Rows of a CSV as header -> value maps.
fn rows(path: &Path) -> Vec<BTreeMap<String, String>> {
    let mut rdr = csv::Reader::from_path(path).unwrap();
    let h = rdr.headers().unwrap().clone();
    rdr.records()
        .map(|r| {
            let r = r.unwrap();
            h.iter()
                .zip(r.iter())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn header(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string()
}

fn labels_of(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(format!("{ROOT}/experiments/{name}.toml")).unwrap();
    let t: toml::Table = toml::from_str(&text).unwrap();
    t["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["label"].as_str().unwrap().to_string())
        .collect()
}

fn png_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
    let be = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    (be(16), be(20))
}

/// A copy of the committed training experiments in `dir`, on a tiny data set and model.
fn small_copy(dir: &Path) {
    std::fs::create_dir_all(dir.join("experiments")).unwrap();
    std::fs::create_dir_all(dir.join("configs")).unwrap();
    // Both bases of the training experiments, shrunk the same way (the fp8 screening base keeps
    // fewer training samples than the reproduce base, so its runs stay distinct).
    for (name, n_train) in [("darcy_reproduce", 40), ("darcy_fp8_screen", 30)] {
        let base = std::fs::read_to_string(format!("{ROOT}/configs/{name}.toml")).unwrap();
        let mut t: toml::Table = toml::from_str(&base).unwrap();
        let set = |t: &mut toml::Table, sec: &str, k: &str, v: toml::Value| {
            t.get_mut(sec)
                .and_then(|s| s.as_table_mut())
                .unwrap()
                .insert(k.into(), v);
        };
        use toml::Value::{Array, Integer};
        set(&mut t, "data", "n_train", Integer(n_train));
        set(&mut t, "data", "n_test", Integer(10));
        set(&mut t, "data", "resolution", Integer(16));
        set(&mut t, "data", "test_resolutions", Array(vec![Integer(32)]));
        set(&mut t, "model", "width", Integer(8));
        set(&mut t, "model", "modes", Array(vec![Integer(4)]));
        set(&mut t, "model", "lifting_channels", Integer(16));
        set(&mut t, "model", "projection_channels", Integer(16));
        set(&mut t, "train", "batch_size", Integer(10));
        set(&mut t, "train", "epochs", Integer(4));
        std::fs::write(
            dir.join(format!("configs/{name}.toml")),
            toml::to_string(&t).unwrap(),
        )
        .unwrap();
    }
    for name in training_experiments() {
        let text = std::fs::read_to_string(format!("{ROOT}/experiments/{name}.toml")).unwrap();
        let mut e: toml::Table = toml::from_str(&text).unwrap();
        e.insert(
            "datagen".into(),
            toml::Value::String("darcy --n 50 --res 32 --seed 0".into()),
        );
        std::fs::write(
            dir.join(format!("experiments/{name}.toml")),
            toml::to_string(&e).unwrap(),
        )
        .unwrap();
    }
}

#[test]
fn training_experiments_run_at_small_scale_and_share_runs() {
    let names = training_experiments();
    assert!(names.len() >= 6, "{names:?}");
    let dir = tempfile::tempdir().unwrap();
    small_copy(dir.path());
    let (code, out, err) = mpno(
        &["reproduce", "--figures", "figs"],
        dir.path(), // experiments/ is the default folder
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let figs = dir.path().join("figs");

    // Every run label of every experiment, and how many distinct runs there are.
    let mut distinct = BTreeMap::new();
    let mut total = 0;
    for n in &names {
        for ext in ["csv", "md", "svg", "png", "toml"] {
            let p = figs.join(format!("{n}.{ext}"));
            assert!(p.is_file(), "{n}: no {ext}");
            assert!(out.contains(&format!("figs/{n}.{ext}")), "{out}");
        }
        assert_eq!(png_size(&figs.join(format!("{n}.png"))), (1000, 700));
        let summary = figs.join(format!("{n}.csv"));
        let epochs = figs.join(format!("{n}_epochs.csv"));
        assert_eq!(header(&summary), SUMMARY);
        assert_eq!(header(&epochs), EPOCHS);
        let labels = labels_of(n);
        let rs = rows(&summary);
        // Model fields a run changes (e.g. the spectral transform) per label, from the
        // resolved config: the CSV's columns do not name them.
        let resolved: toml::Table =
            toml::from_str(&std::fs::read_to_string(figs.join(format!("{n}.toml"))).unwrap())
                .unwrap();
        let model_of = |l: &str| -> String {
            resolved["runs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["label"].as_str() == Some(l))
                .and_then(|r| r.get("model"))
                .map(|m| m.to_string())
                .unwrap_or_default()
        };
        for l in &labels {
            // Not stopped (skip mode): one row per test resolution (16 and 32).
            let mine: Vec<_> = rs.iter().filter(|r| &r["run"] == l).collect();
            assert_eq!(mine.len(), 2, "{n} {l}: {mine:?}");
            assert_eq!(mine[0]["resolution"], "16");
            assert_eq!(mine[1]["resolution"], "32");
            assert_eq!(mine[0]["epochs"], "4");
            // The resolved run (everything but the label and the timing) identifies the run.
            let key: Vec<String> = [
                "policy",
                "stabilizer",
                "schedule",
                "test_l2",
                "test_h1",
                "train_loss",
            ]
            .iter()
            .map(|k| mine[0][*k].clone())
            .chain([model_of(l)])
            .collect();
            distinct.insert(key, ());
            total += 1;
        }
        let ep = rows(&epochs);
        assert_eq!(ep.len(), 4 * labels.len(), "{n}");
        let md = std::fs::read_to_string(figs.join(format!("{n}.md"))).unwrap();
        for l in &labels {
            assert!(
                md.contains(&format!("| {l} |")),
                "{n}: {l} not in the table"
            );
        }
    }
    // Runs named by several experiments train once and give the same numbers everywhere.
    let said = format!(
        "({} FNO training runs, {} more reused by a later experiment)",
        distinct.len(),
        total - distinct.len()
    );
    assert!(out.contains(&said), "expected '{said}' in\n{out}");
    assert!(total > distinct.len() + 5);

    // The 8-way ablation: the letters are the formats of the three stages.
    let abl = rows(&figs.join("fno_ablation.csv"));
    for r in abl.iter().filter(|r| r["resolution"] == "16") {
        let f: Vec<&str> = r["policy"].split('/').collect();
        let code: String = f[..3]
            .iter()
            .map(|x| if *x == "fp32" { 'F' } else { 'H' })
            .collect();
        assert_eq!(code, r["run"]);
        assert!(f[..3].iter().all(|x| *x == "fp32" || *x == "fp16"));
        assert_eq!(f[3], "fp32");
    }
    assert_eq!(abl.len(), 16);

    // The schedule switches at its epochs: half, mixed, mixed, full.
    let sched: Vec<String> = rows(&figs.join("fno_schedule_epochs.csv"))
        .into_iter()
        .filter(|r| r["run"] == "half -> mixed -> full")
        .map(|r| r["policy"].clone())
        .collect();
    assert_eq!(
        sched,
        [
            "fp16/fp16/fp16/fp16",
            "fp32/fp16/fp16/fp32",
            "fp32/fp16/fp16/fp32",
            "fp32/fp32/fp32/fp32"
        ]
    );
}

#[test]
fn bad_training_experiments_exit_2_name_the_field_and_write_nothing() {
    let good = "kind = \"training\"\ndescription = \"d\"\nfigure = \"bars\"\n\
                datagen = \"darcy --n 12 --res 16\"\nbase = \"base.toml\"\n\n\
                [[runs]]\nlabel = \"a\"\n";
    let base = "[data]\nfile = \"x\"\nn_train = 8\nn_test = 4\n\n[model]\nwidth = 4\n\
                modes = [2]\nn_layers = 1\n\n[train]\nepochs = 1\nbatch_size = 4\n";
    let cases: &[(&str, &str, &str)] = &[
        (
            "figure = \"bars\"",
            "figure = \"pie\"",
            "field 'figure': unknown figure 'pie'",
        ),
        (
            "--n 12 --res 16",
            "--n 12 --res 16 --out x.safetensors",
            "--out is chosen by the experiment",
        ),
        ("--n 12 --res 16", "--n 0 --res 16", "field 'datagen'"),
        ("darcy --n", "heat --n", "field 'datagen'"),
        ("base.toml", "missing.toml", "cannot read"),
        (
            "label = \"a\"\n",
            "label = \"a\"\n\n[[runs]]\nlabel = \"a\"\n",
            "label 'a' is used twice",
        ),
        (
            "label = \"a\"\n",
            "label = \"a\"\nprecision = { fwd_fft = \"fp12\" }\n",
            "precision",
        ),
        (
            "label = \"a\"\n",
            "label = \"a\"\nmodel = { width = 0 }\n",
            "model.width",
        ),
        (
            "label = \"a\"\n",
            "label = \"a\"\ntrain = { epoch = 3 }\n",
            "epoch",
        ),
        (
            "label = \"a\"\n",
            "name = \"a\"\n",
            "run 1 needs a non-empty string `label`",
        ),
    ];
    for (from, to, expect) in cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("experiments")).unwrap();
        std::fs::write(dir.path().join("experiments/base.toml"), base).unwrap();
        let text = good.replacen(from, to, 1);
        assert_ne!(text, good, "case {to} does not apply");
        std::fs::write(dir.path().join("experiments/t.toml"), &text).unwrap();
        let (code, out, err) = mpno(&["figure", "t", "--figures", "figs"], dir.path());
        assert_eq!(code, 2, "{to}: {out}\n{err}");
        assert!(err.contains(expect), "{to}: expected '{expect}' in: {err}");
        assert!(
            err.contains("experiments/t.toml"),
            "{to}: no file in: {err}"
        );
        assert!(
            !dir.path().join("figs").exists(),
            "{to}: wrote output before failing"
        );
    }
}

/// Test relative L2 at the training resolution per run of a committed summary.
fn committed_l2(name: &str) -> BTreeMap<String, f64> {
    rows(Path::new(&format!("{ROOT}/figures/{name}.csv")))
        .into_iter()
        .filter(|r| r["resolution"] == r["train_resolution"])
        .map(|r| (r["run"].clone(), r["test_l2"].parse::<f64>().unwrap()))
        .collect()
}

#[test]
fn committed_training_results_have_every_run_and_back_the_readme() {
    for n in training_experiments() {
        for ext in ["csv", "md", "svg", "png", "toml"] {
            let p = Path::new(ROOT).join(format!("figures/{n}.{ext}"));
            assert!(
                p.is_file(),
                "figures/{n}.{ext} missing: run `cargo run --release -- reproduce`"
            );
        }
        let summary = Path::new(ROOT).join(format!("figures/{n}.csv"));
        assert_eq!(header(&summary), SUMMARY);
        let rs = rows(&summary);
        for l in labels_of(&n) {
            let mine: Vec<_> = rs.iter().filter(|r| r["run"] == l).collect();
            assert!(!mine.is_empty(), "{n}: run {l} missing");
            for r in mine {
                let e: f64 = r["test_l2"].parse().unwrap();
                // A non-finite error must be explained: a stop or skipped steps.
                assert!(
                    e.is_finite() || !r["stopped"].is_empty() || r["skipped_steps"] != "0",
                    "{n}: unexplained NaN {r:?}"
                );
            }
        }
    }
    // README: fp32 reaches a few percent; fp16 spectral blocks with tanh end within 10% of it;
    // every fp32/fp16 combination trains; E4M3 fails while E5M2 trains.
    let abl = committed_l2("fno_ablation");
    let full = abl["FFF"];
    assert!(full < 0.06, "fp32 test L2 {full}");
    assert!(abl.values().all(|e| e.is_finite() && *e < 0.1), "{abl:?}");
    assert!(
        (abl["HHH"] - full).abs() <= 0.1 * full,
        "fp16 block {} vs fp32 {full}",
        abl["HHH"]
    );
    let fp8 = committed_l2("fno_fp8");
    assert!(fp8["E5M2"].is_finite() && fp8["E5M2"] < 0.2, "{fp8:?}");
    assert!(!fp8["E4M3"].is_finite() || fp8["E4M3"] > 0.5, "{fp8:?}");
    // Scaled fp8 (issue 23): at reproduce scale scaled E4M3 within 10% of fp32; in the screening
    // grids every scaled recipe within 10% of its fp32 run, and unscaled E4M3 fails in the
    // forward FFT alone (NaN) and loses accuracy in the contraction or inverse FFT alone.
    assert!(fp8["@tensor"] <= 1.1 * fp8["fp32"], "{fp8:?}");
    for (n, runs) in [("fno_fp8_scaled_e4m3", 8), ("fno_fp8_scaled_e5m2", 5)] {
        let g = committed_l2(n);
        assert_eq!(g.len(), runs, "{n}: {g:?}");
        assert!(g.values().all(|e| *e <= 1.1 * g["fp32"]), "{n}: {g:?}");
    }
    let st = committed_l2("fno_fp8_stages");
    assert!(!st["E4 fwd"].is_finite(), "{st:?}");
    assert!(
        st["E4 ctr"] > 1.3 * st["fp32"] && st["E4 inv"] > 1.3 * st["fp32"],
        "{st:?}"
    );
    for run in ["T fwd", "T ctr", "T inv"] {
        assert!(st[run] <= 1.1 * st["fp32"], "{run}: {st:?}");
    }
    // The GEMM spectral transform (issue 24): fp16 and bf16 blocks within 10% of fp32.
    let gemm = committed_l2("fno_gemm");
    let full = gemm["FFT fp32"];
    for run in ["GEMM fp32", "GEMM fp16", "GEMM bf16"] {
        assert!(
            (gemm[run] - full).abs() <= 0.1 * full,
            "{run} {} vs fp32 {full}",
            gemm[run]
        );
    }
}

/// Relative L2 per (experiment, run, resolution) of a summary CSV.
fn errors(path: &Path) -> BTreeMap<(String, String), f64> {
    rows(path)
        .into_iter()
        .map(|r| {
            (
                (r["run"].clone(), r["resolution"].clone()),
                r["test_l2"].parse().unwrap(),
            )
        })
        .collect()
}

/// The full-scale experiments (about 15 minutes on 2 cores) against the committed results.
/// Bit-identical on the machine that wrote them; elsewhere (another gemm kernel, another
/// summation order) training takes a slightly different path, so errors agree within the
/// run-to-run noise of a 4-epoch run: 25% relative or 0.01 absolute; NaN where NaN.
#[test]
#[ignore = "trains 17 FNOs (~15 min on 2 cores); run with --ignored"]
fn full_scale_training_experiments_match_the_committed_results() {
    let out = tempfile::tempdir().unwrap();
    for n in training_experiments() {
        let (code, o, e) = mpno(
            &[
                "figure",
                &n,
                "--experiments",
                &format!("{ROOT}/experiments"),
                "--figures",
                out.path().to_str().unwrap(),
            ],
            Path::new(ROOT),
        );
        assert_eq!(code, 0, "{o}\n{e}");
        let new = errors(&out.path().join(format!("{n}.csv")));
        let old = errors(&Path::new(ROOT).join(format!("figures/{n}.csv")));
        assert_eq!(
            new.keys().collect::<Vec<_>>(),
            old.keys().collect::<Vec<_>>()
        );
        for (k, a) in &new {
            let b = old[k];
            let ok = (a.is_nan() && b.is_nan()) || (a - b).abs() <= 0.01f64.max(0.25 * b.abs());
            assert!(ok, "{n} {k:?}: {a} now, {b} committed");
        }
        // The columns set by the config and the code alone are identical everywhere; the peak
        // too where no step was skipped (a skipped step's path, and so its peak, may differ).
        for file in [format!("{n}.csv"), format!("{n}_epochs.csv")] {
            let new = rows(&out.path().join(&file));
            let old = rows(&Path::new(ROOT).join(format!("figures/{file}")));
            assert_eq!(new.len(), old.len(), "{file}");
            for (a, b) in new.iter().zip(&old) {
                for col in [
                    "run",
                    "epoch",
                    "policy",
                    "lr",
                    "stabilizer",
                    "schedule",
                    "epochs",
                    "train_resolution",
                    "resolution",
                    "parameters",
                ] {
                    assert_eq!(a.get(col), b.get(col), "{file} {col}: {a:?} vs {b:?}");
                }
                if a["skipped_steps"] == "0" && b["skipped_steps"] == "0" {
                    assert_eq!(a["peak_memory_mb"], b["peak_memory_mb"], "{file}: {a:?}");
                }
            }
        }
    }
}

/// A `figure` run keeps its generated data and checkpoints in a scratch folder
/// `mpno-reproduce-PID-*` of the system's temporary folder, removed at the end; one left by a
/// run that was killed (SIGTERM, SIGKILL: its PID gone) is removed by the next run.
#[test]
fn scratch_folders_of_killed_runs_are_removed_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    let stale = tmp.join("mpno-reproduce-999999999-AbCdEf");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("data0.safetensors"), vec![0u8; 1000]).unwrap();
    let other = tmp.join("unrelated-999999999");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::create_dir_all(dir.path().join("experiments")).unwrap();
    std::fs::write(
        dir.path().join("experiments/base.toml"),
        "[data]\nfile = \"x\"\nn_train = 8\nn_test = 4\n\n[model]\nwidth = 4\nmodes = [2]\n\
         n_layers = 1\n\n[train]\nepochs = 1\nbatch_size = 4\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("experiments/t.toml"),
        "kind = \"training\"\ndescription = \"d\"\nfigure = \"bars\"\n\
         datagen = \"darcy --n 12 --res 16\"\nbase = \"base.toml\"\n\n[[runs]]\nlabel = \"a\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mpno"))
        .args(["figure", "t", "--figures", "figs"])
        .current_dir(dir.path())
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let left: Vec<String> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left,
        ["unrelated-999999999"],
        "left in the temporary folder"
    );
}

/// The committed training results' columns that do not depend on the data or the machine are
/// what the code measures now: `parameters` and `peak_memory_mb` of every run (the backend's
/// tensor bytes at a step's peak: set by the shapes, the policy and the code, identical from run
/// to run). Each run is replayed with its config at one step per epoch on synthetic data of the
/// same shape (seconds, not the 15 minutes of the real runs); runs with skipped steps (an
/// overflowing step frees its tensors early) are compared by parameters only. This is the part
/// of "figures/ is what reproduce writes" that tests/reproduce.rs cannot check for the training
/// experiments; the ignored full-scale test compares the rest.
#[test]
fn committed_parameters_and_peak_memory_are_what_the_code_measures() {
    use mpno::experiments::{Plan, load};
    use mpno::pde::dataset::{DType, Dataset, Tensor};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.safetensors");
    let (n, r) = (11usize, 32usize);
    let a: Vec<f64> = (0..n * r * r)
        .map(|i| ((i * 37 % 101) as f64 / 101.0 - 0.5) * 4.0)
        .collect();
    let u: Vec<f64> = a.iter().map(|x| 0.1 * x).collect();
    let mut ds = Dataset::default();
    ds.tensors
        .insert("a".into(), Tensor::from_f64(vec![n, r, r], a, DType::F32));
    ds.tensors
        .insert("u".into(), Tensor::from_f64(vec![n, r, r], u, DType::F32));
    ds.save(&data).unwrap();
    let mut replayed: BTreeMap<String, (String, String, u64)> = BTreeMap::new();
    let (mut peaks, mut params) = (0, 0);
    for name in training_experiments() {
        let path = Path::new(ROOT).join(format!("experiments/{name}.toml"));
        let Plan::Training(plan) = load(&path).unwrap().plan else {
            panic!("{name} is not a training experiment");
        };
        let committed = rows(&Path::new(ROOT).join(format!("figures/{name}.csv")));
        for run in &plan.runs {
            let mut cfg = run.config.clone();
            assert_eq!(
                cfg.data.resolution,
                Some(r),
                "{name}: replay assumes {r} points"
            );
            cfg.data.file = data.clone();
            cfg.data.n_train = cfg.train.batch_size;
            cfg.data.n_test = n - cfg.train.batch_size;
            cfg.data.test_resolutions = vec![];
            cfg.train.checkpoint_every = 0;
            // Epochs of one policy have the same peak: one epoch per policy of the schedule.
            cfg.train.epochs = cfg.precision.schedule.last().map_or(1, |e| e.epoch + 1);
            let key = cfg.to_toml();
            let (peak, parameters, skipped) = replayed
                .entry(key)
                .or_insert_with(|| {
                    cfg.train.out_dir = dir.path().join(format!("run{}", params));
                    cfg.check_data().unwrap();
                    let be = mpno::backend::cpu::Cpu::<f32>::new();
                    let rep = mpno::fno::train::run(&be, &cfg, &Default::default()).unwrap();
                    let skipped = rep.records.iter().map(|e| e.skipped_steps).sum();
                    (
                        format!("{:.1}", rep.peak_bytes as f64 / 1e6),
                        rep.n_params.to_string(),
                        skipped,
                    )
                })
                .clone();
            let row = committed
                .iter()
                .find(|x| x["run"] == run.label)
                .unwrap_or_else(|| panic!("{name}: run {} not committed", run.label));
            assert_eq!(row["parameters"], parameters, "{name} {}", run.label);
            params += 1;
            if row["skipped_steps"] == "0" && skipped == 0 {
                assert_eq!(
                    row["peak_memory_mb"], peak,
                    "{name} {}: committed peak MB vs what the code measures",
                    run.label
                );
                peaks += 1;
            }
        }
    }
    println!("{params} runs: parameters compared; {peaks}: peak memory compared");
    assert!(params >= 25 && peaks >= 20, "{params} {peaks}");
}

/// experiments/fno_audit.toml at a small scale (the small base config, 16-point training grid,
/// audited at 16 and 32 against 64-point inputs, an audit every 2 steps): every file written,
/// every layer line within its bound, both runs' logs over training; and the committed
/// figures/fno_audit.* say every one of their rows is within its bound, as the README quotes.
#[test]
fn the_audit_experiment_runs_at_small_scale_within_its_bounds() {
    let dir = tempfile::tempdir().unwrap();
    small_copy(dir.path());
    let text = std::fs::read_to_string(format!("{ROOT}/experiments/fno_audit.toml")).unwrap();
    let mut e: toml::Table = toml::from_str(&text).unwrap();
    let s = |v: &str| toml::Value::String(v.into());
    e.insert("datagen".into(), s("darcy --n 50 --res 32 --seed 0"));
    e.insert("audit_datagen".into(), s("darcy --n 2 --res 64 --seed 1"));
    e.insert(
        "resolutions".into(),
        toml::Value::Array(vec![toml::Value::Integer(16), toml::Value::Integer(32)]),
    );
    let mut every = toml::Table::new();
    every.insert("every".into(), toml::Value::Integer(2));
    for run in e.get_mut("runs").unwrap().as_array_mut().unwrap() {
        let run = run.as_table_mut().unwrap();
        run.insert("audit".into(), toml::Value::Table(every.clone()));
        // The runs' own test grids (64, 128) do not exist in the 32-point small data: the
        // small base config's apply.
        run.remove("data");
    }
    std::fs::write(
        dir.path().join("experiments/fno_audit.toml"),
        toml::to_string(&e).unwrap(),
    )
    .unwrap();
    let figs = dir.path().join("figs");
    let (code, o, err) = mpno(
        &[
            "figure",
            "fno_audit",
            "--experiments",
            "experiments",
            "--figures",
            figs.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{o}\n{err}");
    for f in [
        ".csv",
        ".md",
        ".svg",
        ".png",
        ".toml",
        "_end_to_end.csv",
        "_ratio.svg",
        "_ratio.png",
        "_training.csv",
        "_training.svg",
        "_training.png",
    ] {
        assert!(figs.join(format!("fno_audit{f}")).is_file(), "{f}");
    }
    // 4 layers x 3 grids (16, 32 and the 64 reference) x 5 formats x 2 models.
    let layers = rows(&figs.join("fno_audit.csv"));
    assert_eq!(layers.len(), 4 * 3 * 5 * 2);
    for l in &layers {
        assert_eq!(l["above_bound"], "0", "{l:?}");
        assert_eq!(l["discretization_max"].is_empty(), l["s"] == "64", "{l:?}");
    }
    // 40 samples in batches of 10 for 4 epochs: 16 steps, audits at 0, 2, ..., 16; per audit
    // and layer a discretization line and fp16 under models I and III.
    let log = rows(&figs.join("fno_audit_training.csv"));
    for run in labels_of("fno_audit") {
        let mine: Vec<_> = log.iter().filter(|p| p["run"] == run).collect();
        assert_eq!(mine.len(), 9 * 4 * 3, "{run}");
        assert!(mine.iter().all(|p| p["above"] == "0"), "{run}");
    }
    let md = std::fs::read_to_string(figs.join("fno_audit.md")).unwrap();
    assert!(
        md.contains("lines with a precision measurement above its bound: 0."),
        "{md}"
    );

    // The committed results.
    let md = std::fs::read_to_string(format!("{ROOT}/figures/fno_audit.md")).unwrap();
    let line = md.lines().find(|l| l.starts_with("Rows: ")).unwrap();
    let n: Vec<&str> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|t| !t.is_empty())
        .collect();
    assert_eq!(n[0], n[1], "committed audit rows above their bound: {line}");
    let readme = std::fs::read_to_string(format!("{ROOT}/README.md")).unwrap();
    assert!(
        readme.contains(&format!("{} rows (sample x kept mode", n[0])),
        "the README's row count is not the committed one ({line})"
    );
    for l in rows(Path::new(&format!("{ROOT}/figures/fno_audit.csv"))) {
        assert_eq!(l["above_bound"], "0", "{l:?}");
    }
    for p in rows(Path::new(&format!("{ROOT}/figures/fno_audit_training.csv"))) {
        assert_eq!(p["above"], "0", "{p:?}");
    }
}
