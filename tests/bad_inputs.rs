//! Every subcommand against a table of bad inputs (issue 20): each must exit 2 with a message
//! naming the field, write nothing in the folder it runs in (and leave what was there as it
//! was), never panic, and stay within a wall-clock limit and a 4 GiB address-space limit
//! (`ulimit -v`), so a refusal costs no more than reading the arguments.

use mpno::fno::checkpoint::Checkpoint;
use mpno::pde::dataset::{DType, Dataset, Tensor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Wall-clock limit of one case.
const CASE_SECONDS: u64 = 20;
/// Address-space limit of one case, KiB (4 GiB).
const ULIMIT_KB: u64 = 4 << 20;

/// A tiny field pair a = smooth random field, u = a smoothing of it, `nan_at`: a NaN in `a` of
/// that sample.
fn write_data(path: &Path, n: usize, r: usize, nan_at: Option<usize>) {
    let (mut a, mut u) = (Vec::new(), Vec::new());
    for s in 0..n {
        for i in 0..r * r {
            let x = ((s * 31 + i * 17) % 97) as f64 / 97.0 - 0.5;
            a.push(x);
            u.push(0.5 * x);
        }
    }
    if let Some(s) = nan_at {
        a[s * r * r + 5] = f64::NAN;
    }
    let mut ds = Dataset::default();
    ds.tensors
        .insert("a".into(), Tensor::from_f64(vec![n, r, r], a, DType::F32));
    ds.tensors
        .insert("u".into(), Tensor::from_f64(vec![n, r, r], u, DType::F32));
    ds.save(path).unwrap();
}

fn config(data: &Path, out: &str, width: usize) -> String {
    format!(
        "[data]\nfile = \"{}\"\nn_train = 8\nn_test = 4\n\n[model]\nwidth = {width}\nmodes = [4]\n\
         n_layers = 1\nlifting_channels = 8\nprojection_channels = 8\n\n[train]\nepochs = 1\n\
         batch_size = 4\nout_dir = \"{out}\"\n",
        data.display()
    )
}

/// Files shared by the cases (paths absolute, in a folder no case runs in).
struct Fixtures {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Fixtures {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let p = |n: &str| root.join(n);
        write_data(&p("data.safetensors"), 12, 16, None);
        write_data(&p("nan.safetensors"), 12, 16, Some(3));
        write_data(&p("gone.safetensors"), 12, 16, None);
        // Sample 2's target is zero everywhere (its relative error is 0/0).
        let mut z = Dataset::load(&p("data.safetensors")).unwrap();
        let u = z.tensors.get_mut("u").unwrap();
        let mut v = u.to_f64();
        v[2 * 256..3 * 256].fill(0.0);
        *u = Tensor::from_f64(vec![12, 16, 16], v, DType::F32);
        z.save(&p("zero.safetensors")).unwrap();
        // Two input channels where the trained model takes one (for `audit`).
        let mut two = Dataset::default();
        let v: Vec<f64> = (0..12 * 2 * 16 * 16).map(|i| (i % 7) as f64).collect();
        two.tensors.insert(
            "a".into(),
            Tensor::from_f64(vec![12, 2, 16, 16], v, DType::F32),
        );
        two.save(&p("twochan.safetensors")).unwrap();
        let bytes = std::fs::read(p("data.safetensors")).unwrap();
        std::fs::write(p("trunc.safetensors"), &bytes[..bytes.len() - 100]).unwrap();
        for (name, data, width) in [
            ("cfg.toml", "data.safetensors", 8),
            ("cfg_nan.toml", "nan.safetensors", 8),
            ("cfg_trunc.toml", "trunc.safetensors", 8),
            ("cfg_huge.toml", "data.safetensors", 1_000_000),
            ("cfg_gone.toml", "gone.safetensors", 8),
            ("cfg_zero.toml", "zero.safetensors", 8),
        ] {
            std::fs::write(p(name), config(&p(data), "run", width)).unwrap();
        }
        for (name, audit) in [
            ("cfg_audit_samples.toml", "every = 2\nsamples = 9\n"),
            (
                "cfg_audit_fp64.toml",
                "every = 2\nformats = [\"fp16\", \"fp64\"]\n",
            ),
            ("cfg_audit_fp12.toml", "every = 2\nformats = [\"fp12\"]\n"),
            ("cfg_audit_typo.toml", "evrey = 2\n"),
            ("cfg_audit_noevery.toml", "samples = 2\n"),
        ] {
            let text = config(&p("data.safetensors"), "run", 8) + "\n[audit]\n" + audit;
            std::fs::write(p(name), text).unwrap();
        }
        for (name, value) in [
            ("cfg_transform_typo.toml", "\"fftw\""),
            ("cfg_transform_count.toml", "[\"gemm\", \"fft\"]"),
        ] {
            let text = config(&p("data.safetensors"), "run", 8).replace(
                "n_layers = 1\n",
                &format!("n_layers = 1\nspectral_transform = {value}\n"),
            );
            std::fs::write(p(name), text).unwrap();
        }
        // 9 modes fit the last axis of 16 points (<= 9) but not the first (2m <= 16); 4 modes
        // do not fit a 4-point test grid.
        let text = config(&p("data.safetensors"), "run", 8).replace("modes = [4]", "modes = [9]");
        std::fs::write(p("cfg_modes_axis.toml"), text).unwrap();
        let text = config(&p("data.safetensors"), "run", 8)
            .replace("n_test = 4\n", "n_test = 4\ntest_resolutions = [4]\n");
        std::fs::write(p("cfg_modes_test.toml"), text).unwrap();
        // A CP rank for a dense model (the default factorization) would be ignored.
        let text = config(&p("data.safetensors"), "run", 8)
            .replace("n_layers = 1\n", "n_layers = 1\nrank = 8\n");
        std::fs::write(p("cfg_rank_dense.toml"), text).unwrap();
        // A learning rate that is inf in f32.
        let text = config(&p("data.safetensors"), "run", 8) + "lr = 1e300\n";
        std::fs::write(p("cfg_lr_huge.toml"), text).unwrap();
        let text = config(&p("data.safetensors"), "run", 8) + "cp_order = \"greedy\"\n";
        std::fs::write(p("cfg_cp_order.toml"), text).unwrap();
        let text = config(&p("data.safetensors"), "run", 8).replace(
            "n_layers = 1\n",
            "n_layers = 1\ncontraction = \"karatsuba\"\n",
        );
        std::fs::write(p("cfg_contraction.toml"), text).unwrap();
        // Two trained runs: one to evaluate and corrupt, one whose data file then disappears.
        for (cfg, out) in [("cfg.toml", "trained"), ("cfg_gone.toml", "trained_gone")] {
            let o = Command::new(env!("CARGO_BIN_EXE_mpno"))
                .args(["train", "--config", p(cfg).to_str().unwrap(), "--out-dir"])
                .arg(p(out))
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
        std::fs::remove_file(p("gone.safetensors")).unwrap();
        let ck = p("trained/checkpoint.safetensors");
        let bytes = std::fs::read(&ck).unwrap();
        std::fs::write(p("ck_trunc.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
        let mut c = Checkpoint::<f32>::load(&ck).unwrap();
        c.params.list[2].data[1] = f32::NAN;
        let name = c.params.list[2].name.clone();
        c.save(&p("ck_nan.safetensors")).unwrap();
        std::fs::write(p("ck_nan.name"), name).unwrap();
        std::fs::create_dir(p("experiments_bad")).unwrap();
        std::fs::write(
            p("experiments_bad/audit_noevery.toml"),
            "kind = \"audit\"\ndescription = \"x\"\ndatagen = \"darcy --n 8 --res 16 --seed 0\"\n\
             base = \"../cfg.toml\"\naudit_datagen = \"darcy --n 2 --res 32 --seed 1\"\n\
             resolutions = [16]\nsamples = 1\nformats = \"fp16\"\nmodels = \"input\"\n\n\
             [[runs]]\nlabel = \"a\"\n",
        )
        .unwrap();
        // Scaled fp8 formats are measured under models input, storage and gemm only.
        std::fs::write(
            p("experiments_bad/scaled_no_input.toml"),
            "description = \"x\"\nfunction = \"x\"\nsizes = \"8,16\"\nmodes = \"0\"\n\
             formats = \"fp16,e4m3@tensor\"\nmodels = \"arithmetic\"\n",
        )
        .unwrap();
        // A value of the wrong type: the message names the line and the field.
        std::fs::write(
            p("experiments_bad/sizes_type.toml"),
            "description = \"x\"\nfunction = \"x\"\nsizes = 1.5\nmodes = \"0\"\n",
        )
        .unwrap();
        // Contraction experiments: a channel count of 0, fp64 operands, an unknown form, and
        // more work than the limit.
        for (name, fields) in [
            (
                "contraction_zero",
                "formats = \"fp16\"\nchannels = [4, 0]\n",
            ),
            (
                "contraction_fp64",
                "formats = \"fp32,fp64\"\nchannels = [4]\n",
            ),
            (
                "contraction_form",
                "formats = \"fp16\"\nchannels = [4]\nforms = \"karatsuba\"\n",
            ),
            (
                "contraction_huge",
                "formats = \"fp16\"\nchannels = [65536, 65536]\ntrials = 100\n",
            ),
        ] {
            std::fs::write(
                p(&format!("experiments_bad/{name}.toml")),
                format!("kind = \"contraction\"\ndescription = \"x\"\n{fields}"),
            )
            .unwrap();
        }
        // More trials than memory holds (every input is kept), under the work limit.
        std::fs::write(
            p("experiments_bad/stats_trials.toml"),
            "kind = \"stats\"\ndescription = \"x\"\ninput = \"noise\"\nsizes = \"2^3..2^4\"\n\
             formats = \"fp16\"\nmodels = \"input\"\ntrials = 30000000\n",
        )
        .unwrap();
        // A training run whose model (width 1e5: ~2.5 TB) cannot fit, refused at load.
        std::fs::write(
            p("experiments_bad/training_width.toml"),
            "kind = \"training\"\ndescription = \"x\"\nfigure = \"bars\"\n\
             datagen = \"darcy --n 12 --res 16 --seed 0\"\nbase = \"../cfg.toml\"\n\n\
             [[runs]]\nlabel = \"small\"\n\n[[runs]]\nlabel = \"A\"\nmodel = { width = 100000 }\n",
        )
        .unwrap();
        // A modest model on a huge grid (the data's, 8192 x 8192): the load-time check sees
        // the grid from the datagen arguments (it used to assume one point).
        std::fs::write(
            p("experiments_bad/training_grid.toml"),
            "kind = \"training\"\ndescription = \"x\"\nfigure = \"bars\"\n\
             datagen = \"darcy --n 1 --res 8192 --seed 0\"\nbase = \"../cfg.toml\"\n\n\
             [[runs]]\nlabel = \"A\"\nmodel = { width = 64 }\n",
        )
        .unwrap();
        std::fs::create_dir(p("experiments")).unwrap();
        std::fs::write(
            p("experiments/good.toml"),
            "description = \"ok\"\nfunction = \"x\"\nsizes = \"8,16\"\nmodes = \"0\"\n\
             formats = \"fp16\"\nmodels = \"input\"\n",
        )
        .unwrap();
        let bench = |ms: &str| {
            format!(
                "{{\"mpno_dense_full\": {{\"device\": \"cpu\", \"ms_per_step\": 1.0, \
                 \"ms_median_step\": {ms}, \"peak_memory_bytes\": 1000}}}}"
            )
        };
        std::fs::write(p("bench_zero.json"), bench("0")).unwrap();
        std::fs::write(p("bench_negative.json"), bench("-2.5")).unwrap();
        Fixtures { _dir: dir, root }
    }

    fn path(&self, name: &str) -> String {
        self.root.join(name).display().to_string()
    }
}

/// What a folder holds: name -> kind (file with its bytes, folder, link with its target, other).
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let t = std::fs::symlink_metadata(&p).unwrap().file_type();
        let kind = if t.is_symlink() {
            format!("link to {}", std::fs::read_link(&p).unwrap().display())
        } else if t.is_file() {
            format!("file {:?}", std::fs::read(&p).unwrap())
        } else if t.is_dir() {
            format!("folder {:?}", snapshot(&p))
        } else {
            "special".to_string()
        };
        out.insert(name, kind);
    }
    out
}

/// Run `mpno ARGS` in `cwd` under the address-space limit, killed after CASE_SECONDS:
/// (exit code, stderr, seconds). Exit code -1: killed by a signal or the timeout.
fn run_limited(args: &[String], cwd: &Path) -> (i32, String, f64) {
    let t = Instant::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {ULIMIT_KB}; exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_mpno"))
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if t.elapsed() > Duration::from_secs(CASE_SECONDS) {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let err = reader.join().unwrap();
    let code = status.and_then(|s| s.code()).unwrap_or(-1);
    (code, err, t.elapsed().as_secs_f64())
}

/// One bad input: the arguments (`{F}` stands for the fixtures folder), the text the message
/// must contain (the field, and sometimes what is wrong), and what the working folder holds
/// beforehand.
struct Case {
    args: &'static str,
    expect: &'static [&'static str],
    setup: fn(&Path, &Fixtures),
}

fn none(_: &Path, _: &Fixtures) {}

fn fifo(dir: &Path, _: &Fixtures) {
    let ok = Command::new("mkfifo")
        .arg(dir.join("fifo"))
        .status()
        .unwrap();
    assert!(ok.success());
}

fn fifo_png(dir: &Path, f: &Fixtures) {
    fifo(dir, f);
    std::fs::rename(dir.join("fifo"), dir.join("fig.png")).unwrap();
}

fn link(dir: &Path, _: &Fixtures) {
    std::fs::write(dir.join("target.csv"), "keep").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink("target.csv", dir.join("link.csv")).unwrap();
}

fn folder(dir: &Path, _: &Fixtures) {
    std::fs::create_dir(dir.join("dd")).unwrap();
}

fn file(dir: &Path, _: &Fixtures) {
    std::fs::write(dir.join("FILE"), "keep").unwrap();
}

fn figures_with_fifo(dir: &Path, f: &Fixtures) {
    std::fs::create_dir(dir.join("figs")).unwrap();
    fifo(&dir.join("figs"), f);
    std::fs::rename(dir.join("figs/fifo"), dir.join("figs/good.csv")).unwrap();
}

fn earlier_run(dir: &Path, f: &Fixtures) {
    std::fs::create_dir(dir.join("run")).unwrap();
    for n in ["checkpoint.safetensors", "metrics.csv", "config.toml"] {
        std::fs::copy(f.root.join("trained").join(n), dir.join("run").join(n)).unwrap();
    }
}

fn truncated_checkpoint_run(dir: &Path, f: &Fixtures) {
    std::fs::create_dir(dir.join("run")).unwrap();
    std::fs::copy(
        f.root.join("ck_trunc.safetensors"),
        dir.join("run/checkpoint.safetensors"),
    )
    .unwrap();
}

/// The data set lies where the command would write one of its outputs.
fn data_as_activation(dir: &Path, f: &Fixtures) {
    std::fs::create_dir(dir.join("au")).unwrap();
    std::fs::copy(
        f.root.join("data.safetensors"),
        dir.join("au/activation.safetensors"),
    )
    .unwrap();
}

fn data_in_run_folder(dir: &Path, f: &Fixtures) {
    std::fs::create_dir(dir.join("run")).unwrap();
    std::fs::copy(
        f.root.join("data.safetensors"),
        dir.join("run/metrics.json"),
    )
    .unwrap();
    let text = config(Path::new("run/metrics.json"), "run", 8);
    std::fs::write(dir.join("c.toml"), text).unwrap();
}

const CASES: &[Case] = &[
    // errors
    Case {
        args: "errors --function x --sizes 2^17 --algorithm naive --models arithmetic",
        expect: &["--sizes", "1e11"],
        setup: none,
    },
    Case {
        args: "errors --function x --sizes 16 --out fifo",
        expect: &["--out", "FIFO"],
        setup: fifo,
    },
    Case {
        args: "errors --function x --sizes 16 --out /dev/full",
        expect: &["--out", "/dev/full", "character device"],
        setup: none,
    },
    Case {
        args: "errors --function x --sizes 16 --out link.csv",
        expect: &["--out", "symbolic link"],
        setup: link,
    },
    Case {
        args: "errors --function x --sizes 16 --out dd",
        expect: &["--out", "folder"],
        setup: folder,
    },
    Case {
        args: "errors --function x --sizes 16 --out FILE/x.csv",
        expect: &["--out", "not a folder"],
        setup: file,
    },
    Case {
        args: "errors --basis haar --function x --sizes 16 --out fifo",
        expect: &["--out", "FIFO"],
        setup: fifo,
    },
    Case {
        args: "errors --function x --dim 3 --sizes 2^20",
        expect: &["--sizes", "memory"],
        setup: none,
    },
    // errors: model G (issue 24)
    Case {
        args: "errors --function x --sizes 16 --models gemmm",
        expect: &[
            "--models",
            "unknown model 'gemmm'",
            "arithmetic-scaled, gemm",
        ],
        setup: none,
    },
    Case {
        args: "errors --function x --sizes 2^18 --models gemm",
        expect: &["--sizes", "1e11"],
        setup: none,
    },
    // errors: scaled formats (issue 23)
    Case {
        args: "errors --function x --sizes 16 --formats e4m3@row",
        expect: &["--formats", "unknown scaling 'row'", "tensor", "mx32"],
        setup: none,
    },
    Case {
        args: "errors --function x --sizes 16 --formats e4m3@mx0",
        expect: &["--formats", "block size 0", "mx32"],
        setup: none,
    },
    Case {
        args: "errors --function x --sizes 16 --formats fp32@tensor",
        expect: &["--formats", "'fp32' cannot be scaled", "e4m3, e5m2"],
        setup: none,
    },
    Case {
        args: "errors --function x --sizes 16 --formats e5m2@channel:1",
        expect: &["--formats", "channel axis 1 of a 1-D grid"],
        setup: none,
    },
    Case {
        args: "errors --function x --dim 2 --sizes 16 --formats e5m2@channel:2",
        expect: &[
            "--formats",
            "channel axis 2 of a 2-D grid; allowed axes: 0, 1",
        ],
        setup: none,
    },
    Case {
        args: "errors --function x --sizes 16,,32",
        expect: &["--sizes", "item 2 of 3 is empty"],
        setup: none,
    },
    Case {
        args: "errors --function x --sizes 16 --formats fp16, --models input",
        expect: &["--formats", "item 2 of 2 is empty"],
        setup: none,
    },
    Case {
        args: "errors --function expsin --sizes 16 --lipschitz 0",
        expect: &["--lipschitz", "'expsin' is a built-in", "expressions only"],
        setup: none,
    },
    Case {
        args: "errors --basis haar --function x --sizes 16 --sup 3",
        expect: &["--sup", "'x' is a built-in"],
        setup: none,
    },
    Case {
        args: "errors --function x --sizes 16 --out /proc/mpno.csv",
        expect: &["--out", "/proc", "takes no new files"],
        setup: none,
    },
    Case {
        args: "errors --function x --sizes 16 --formats e4m3@tensor --models arithmetic",
        expect: &[
            "--models",
            "models input, storage and gemm",
            "add input, storage or gemm",
        ],
        setup: none,
    },
    Case {
        args: "errors --function x --sizes 16 --formats e4m3@channel --models storage,gemm",
        expect: &[
            "--models",
            "'e4m3@channel'",
            "channel scaling under input only",
            "add input",
        ],
        setup: none,
    },
    Case {
        args: "errors --basis haar --function x --sizes 16 --formats e4m3@tensor",
        expect: &["--formats", "errors --basis fourier"],
        setup: none,
    },
    // bounds
    Case {
        args: "bounds --lipschitz 1 --sup 1 --s 17 --algorithm radix2",
        expect: &["--s:", "power of two"],
        setup: none,
    },
    Case {
        args: "bounds --lipschitz 1 --sup 1 --s 16 --mode 99999999999999999999",
        expect: &["--mode:"],
        setup: none,
    },
    Case {
        args: "bounds --lipschitz 1 --sup 1 --s 0",
        expect: &["--s:"],
        setup: none,
    },
    Case {
        args: "bounds --lipschitz 1 --sup 1 --s 1099511627777",
        expect: &["--s:"],
        setup: none,
    },
    Case {
        args: "errors --basis chebyshev --function x --sizes 16 --algorithm radix2",
        expect: &["--algorithm", "fourier only"],
        setup: none,
    },
    Case {
        args: "errors --basis chebyshev --function x --sizes 2^18 --models gemm",
        expect: &["--sizes", "dense product"],
        setup: none,
    },
    Case {
        args: "bounds --lipschitz 1 --sup 1 --s 16 --algorithm fast",
        expect: &["--algorithm"],
        setup: none,
    },
    Case {
        args: "bounds --lipschitz -1 --sup 1 --s 16",
        expect: &["--lipschitz"],
        setup: none,
    },
    // formats, functions: no arguments
    Case {
        args: "formats --bogus",
        expect: &["--bogus"],
        setup: none,
    },
    Case {
        args: "functions --bogus",
        expect: &["--bogus"],
        setup: none,
    },
    // figure, reproduce
    Case {
        args: "figure good --experiments {F}/experiments --figures FILE",
        expect: &["--figures", "FILE", "not a folder"],
        setup: file,
    },
    Case {
        args: "figure good --experiments {F}/experiments --figures figs",
        expect: &["--figures", "FIFO"],
        setup: figures_with_fifo,
    },
    Case {
        args: "reproduce --experiments {F}/experiments --figures figs",
        expect: &["--figures", "FIFO"],
        setup: figures_with_fifo,
    },
    Case {
        args: "reproduce --experiments missingdir",
        expect: &["--experiments", "missingdir"],
        setup: none,
    },
    Case {
        args: "figure sizes_type --experiments {F}/experiments_bad",
        expect: &["sizes_type.toml:3 field 'sizes'", "expected a string"],
        setup: none,
    },
    Case {
        args: "figure good --experiments {F}/experiments --figures {F}/experiments",
        expect: &["--figures", "also the experiments folder"],
        setup: none,
    },
    Case {
        args: "datagen navier-stokes --n 1 --res 16 --t-final 0.01 --snapshots 1 --figure same.png --out same.png",
        expect: &["--figure", "also a data file of --out"],
        setup: none,
    },
    Case {
        args: "datagen darcy --n 1 --res 16 --a-pos 1e39 --a-neg 1e39 --out d.safetensors",
        expect: &["--dtype", "tensor 'a' of sample 0", "f32 stores as inf"],
        setup: none,
    },
    Case {
        args: "datagen darcy --n 1 --res 16 --f 1e150 --out d.safetensors",
        expect: &["--dtype", "tensor 'u'", "--f"],
        setup: none,
    },
    Case {
        args: "datagen darcy --n 1 --res 16 --f 1e200 --out d.safetensors",
        expect: &["--f", "1e200", "overflow"],
        setup: none,
    },
    Case {
        args: "datagen navier-stokes --n 1 --res 16 --t-final 0.0101 --snapshots 1 --viscosity 1e6 --out n.safetensors",
        expect: &["--viscosity", "Crank-Nicolson flips the sign"],
        setup: none,
    },
    Case {
        args: "figure good --experiments missingdir",
        expect: &["--experiments", "missingdir"],
        setup: none,
    },
    // datagen
    Case {
        args: "datagen burgers --n 1 --res 64 --viscosity 1e-12 --out b.safetensors",
        expect: &["--viscosity", "1e8"],
        setup: none,
    },
    Case {
        args: "datagen navier-stokes --n 1 --res 16 --t-final 1 --snapshots 1000000000 --out n.safetensors",
        expect: &["--snapshots", "GiB"],
        setup: none,
    },
    Case {
        args: "datagen navier-stokes --n 1 --res 16 --t-final 1e9 --snapshots 1 --out n.safetensors",
        expect: &["--t-final", "1e8"],
        setup: none,
    },
    Case {
        args: "datagen navier-stokes --n 1 --res 16 --sigma 1e30 --t-final 1 --snapshots 2 --cfl 100 --dt-max 1 --out n.safetensors",
        expect: &["--sigma", "sample 0"],
        setup: none,
    },
    Case {
        args: "datagen burgers --n 1 --res 64 --sigma 1e200 --cfl 1e10 --dt-max 1 --out b.safetensors",
        expect: &["--sigma", "sample 0", "NaN"],
        setup: none,
    },
    Case {
        args: "datagen darcy --n 1 --res 16 --max-iter 1 --out d.safetensors",
        expect: &["--max-iter", "sample 0", "did not converge"],
        setup: none,
    },
    Case {
        args: "datagen darcy --n 1 --res 32 --a-pos 1e-150 --a-neg 1e150 --out d.safetensors",
        expect: &["--a-pos", "sample 0"],
        setup: none,
    },
    Case {
        args: "datagen darcy --n 1 --a-pos 1e-300 --a-neg 1e300 --out d.safetensors",
        expect: &["--a-pos", "overflows"],
        setup: none,
    },
    Case {
        args: "datagen darcy --n 1 --res 9500 --out d.safetensors",
        expect: &["--res", "iterations per sample", "an hour of one core"],
        setup: none,
    },
    Case {
        args: "datagen navier-stokes --n 1 --res 1024 --snapshots 1 --out n.safetensors",
        expect: &["--t-final", "1024 x 1024", "an hour of one core"],
        setup: none,
    },
    Case {
        args: "datagen burgers --n 1 --res 100000000 --out b.safetensors",
        expect: &["--t-final", "an hour of one core"],
        setup: none,
    },
    Case {
        args: "datagen darcy --n 2 --res 16 --out dd",
        expect: &["--out", "folder"],
        setup: folder,
    },
    Case {
        args: "datagen darcy --n 1 --res 100000 --out d.safetensors",
        expect: &["--res", "memory"],
        setup: none,
    },
    Case {
        args: "datagen navier-stokes --n 1 --res 16 --t-final 0.01 --snapshots 1 --figure fig.png --out n.safetensors",
        expect: &["--figure", "FIFO"],
        setup: fifo_png,
    },
    // train, eval
    Case {
        args: "train --config {F}/cfg_modes_axis.toml --out-dir run",
        expect: &["model.modes[0]", "resolution/2 (2m frequencies"],
        setup: none,
    },
    Case {
        args: "train --config {F}/cfg_rank_dense.toml --out-dir run",
        expect: &["model.rank", "factorization = \"cp\" only"],
        setup: none,
    },
    Case {
        args: "train --config {F}/cfg_modes_test.toml --out-dir run",
        expect: &["data.test_resolutions[0]", "model.modes[0]"],
        setup: none,
    },
    Case {
        args: "train --config {F}/cfg_audit_samples.toml --out-dir run",
        expect: &["audit.samples", "1..=4"],
        setup: none,
    },
    Case {
        args: "train --config {F}/cfg_audit_fp64.toml --out-dir run",
        expect: &["audit.formats[1]", "reference"],
        setup: none,
    },
    Case {
        args: "train --config {F}/cfg_audit_fp12.toml --out-dir run",
        expect: &["audit.formats", "fp12"],
        setup: none,
    },
    Case {
        args: "train --config {F}/cfg_audit_typo.toml --out-dir run",
        expect: &["audit", "evrey"],
        setup: none,
    },
    Case {
        args: "audit --checkpoint {F}/trained/checkpoint.safetensors --data au/activation.safetensors \
               --out au --resolutions 8 --save-activation",
        expect: &["--out", "--data", "activation.safetensors"],
        setup: data_as_activation,
    },
    Case {
        args: "train --config c.toml --force",
        expect: &["train.out_dir", "data.file", "metrics.json"],
        setup: data_in_run_folder,
    },
    // Inputs that are FIFOs: opening one for reading waits for a writer forever.
    Case {
        args: "train --config fifo",
        expect: &["config", "FIFO"],
        setup: fifo,
    },
    Case {
        args: "eval --checkpoint fifo",
        expect: &["--checkpoint", "FIFO"],
        setup: fifo,
    },
    Case {
        args: "audit --checkpoint {F}/trained/checkpoint.safetensors --data fifo --out au",
        expect: &["--data", "FIFO"],
        setup: fifo,
    },
    Case {
        args: "train --config {F}/cfg_zero.toml --out-dir run",
        expect: &["data.output", "zero everywhere", "sample 2"],
        setup: none,
    },
    Case {
        args: "train --config {F}/cfg_lr_huge.toml --out-dir run",
        expect: &["train.lr", "f32"],
        setup: none,
    },
    Case {
        args: "train --config {F}/cfg_audit_noevery.toml --out-dir run",
        expect: &["audit.every", "required"],
        setup: none,
    },
    Case {
        args: "datagen burgers --n 1 --res 4096 --alpha 1e-300 --out d",
        expect: &["--alpha", "1e-300", "rough"],
        setup: none,
    },
    Case {
        args: "datagen navier-stokes --n 1 --res 16 --t-final 0.01 --forcing 1e300 --out d",
        expect: &["--forcing", "1e300"],
        setup: none,
    },
    Case {
        args: "datagen navier-stokes --n 1 --res 8 --times 1,2 --t-final 3 --out d",
        expect: &["--times", "--t-final"],
        setup: none,
    },
    Case {
        args: "figure audit_noevery --experiments {F}/experiments_bad --figures figs",
        expect: &["runs", "audit.every"],
        setup: none,
    },
    Case {
        args: "figure scaled_no_input --experiments {F}/experiments_bad --figures figs",
        expect: &[
            "scaled_no_input.toml",
            "models",
            "models input, storage and gemm",
        ],
        setup: none,
    },
    Case {
        args: "figure contraction_zero --experiments {F}/experiments_bad --figures figs",
        expect: &[
            "contraction_zero.toml",
            "channels",
            "0: each channel count must be in 1..=65536",
        ],
        setup: none,
    },
    Case {
        args: "figure contraction_fp64 --experiments {F}/experiments_bad --figures figs",
        expect: &["formats", "fp64", "fp32 or narrower"],
        setup: none,
    },
    Case {
        args: "figure contraction_form --experiments {F}/experiments_bad --figures figs",
        expect: &["forms", "karatsuba", "allowed: standard, gauss"],
        setup: none,
    },
    Case {
        args: "figure contraction_huge --experiments {F}/experiments_bad --figures figs",
        expect: &["channels", "above the limit"],
        setup: none,
    },
    Case {
        args: "figure stats_trials --experiments {F}/experiments_bad --figures figs",
        expect: &["stats_trials.toml", "field 'trials'", "memory"],
        setup: none,
    },
    Case {
        args: "figure training_grid --experiments {F}/experiments_bad --figures figs",
        expect: &["field 'runs'", "run 'A'", "data.resolution", "memory"],
        setup: none,
    },
    Case {
        args: "figure training_width --experiments {F}/experiments_bad --figures figs",
        expect: &["field 'runs'", "run 'A'", "model.width", "memory"],
        setup: none,
    },
    Case {
        args: "train --config {F}/cfg_nan.toml --out-dir run",
        expect: &["data.input", "sample 3", "NaN"],
        setup: none,
    },
    Case {
        args: "train --config {F}/cfg_trunc.toml --out-dir run",
        expect: &["data.file"],
        setup: none,
    },
    Case {
        args: "train --config {F}/cfg_huge.toml --out-dir run",
        expect: &["model.width", "memory"],
        setup: none,
    },
    Case {
        args: "train --config {F}/cfg.toml --out-dir run --resume",
        expect: &["--resume", "no checkpoint"],
        setup: none,
    },
    Case {
        args: "train --config {F}/cfg.toml --out-dir run --resume",
        expect: &["--resume"],
        setup: truncated_checkpoint_run,
    },
    Case {
        args: "train --config {F}/cfg.toml --out-dir run",
        expect: &["train.out_dir", "--force"],
        setup: earlier_run,
    },
    Case {
        args: "train --config {F}/cfg.toml --out-dir FILE",
        expect: &["train.out_dir"],
        setup: file,
    },
    Case {
        args: "eval --checkpoint {F}/ck_trunc.safetensors",
        expect: &["--checkpoint"],
        setup: none,
    },
    Case {
        args: "eval --checkpoint {F}/ck_nan.safetensors",
        expect: &["--checkpoint", "NaN"],
        setup: none,
    },
    Case {
        args: "eval --checkpoint {F}/trained/checkpoint.safetensors --config {F}/cfg_trunc.toml",
        expect: &["data.file"],
        setup: none,
    },
    Case {
        args: "eval --checkpoint {F}/trained/checkpoint.safetensors --config {F}/cfg_nan.toml",
        expect: &["data.input", "sample 3"],
        setup: none,
    },
    Case {
        args: "eval --checkpoint {F}/trained_gone/checkpoint.safetensors",
        expect: &["data.file", "gone.safetensors"],
        setup: none,
    },
    // audit (the trained model: 16 x 16 data, modes 4, one block)
    Case {
        args: "audit --checkpoint {F}/trained/checkpoint.safetensors --data {F}/data.safetensors --layers 0,3 --out au",
        expect: &["--layers", "layer 3 does not exist"],
        setup: none,
    },
    Case {
        args: "audit --checkpoint {F}/trained/checkpoint.safetensors --data {F}/data.safetensors --resolutions 4 --out au",
        expect: &["--resolutions", "kept modes"],
        setup: none,
    },
    Case {
        args: "audit --checkpoint {F}/trained/checkpoint.safetensors --data {F}/data.safetensors --resolutions 12 --out au",
        expect: &["--resolutions", "does not divide"],
        setup: none,
    },
    Case {
        args: "audit --checkpoint {F}/trained/checkpoint.safetensors --data {F}/twochan.safetensors --out au",
        expect: &["--data", "2 channels", "do not match"],
        setup: none,
    },
    Case {
        args: "audit --checkpoint {F}/trained/checkpoint.safetensors --data {F}/nan.safetensors --samples 12 --out au",
        expect: &["--data", "NaN", "sample 3"],
        setup: none,
    },
    Case {
        args: "audit --checkpoint {F}/trained/checkpoint.safetensors --data {F}/bench_zero.json --out au",
        expect: &["--data"],
        setup: none,
    },
    Case {
        args: "audit --checkpoint {F}/ck_trunc.safetensors --data {F}/data.safetensors --out au",
        expect: &["--checkpoint"],
        setup: none,
    },
    Case {
        args: "audit --checkpoint {F}/trained/checkpoint.safetensors --data {F}/data.safetensors --samples 13 --out au",
        expect: &["--samples"],
        setup: none,
    },
    Case {
        args: "audit --checkpoint {F}/trained/checkpoint.safetensors --data {F}/data.safetensors --formats fp16,fp64 --out au",
        expect: &["--formats", "fp64", "reference"],
        setup: none,
    },
    Case {
        args: "bench fno --steps 1 --res 8 --width 4 --modes 2 --rank 0 --cp-order memory",
        expect: &["--cp-order", "--rank"],
        setup: none,
    },
    Case {
        args: "audit --checkpoint {F}/trained/checkpoint.safetensors --data {F}/data.safetensors --out FILE",
        expect: &["--out"],
        setup: file,
    },
    Case {
        args: "train --config {F}/cfg_cp_order.toml --out-dir run",
        expect: &["train.cp_order", "greedy", "auto", "factorized"],
        setup: file,
    },
    // bench
    Case {
        args: "train --config {F}/cfg_transform_typo.toml --out-dir run",
        expect: &["model.spectral_transform", "fftw", "fft, gemm"],
        setup: none,
    },
    Case {
        args: "train --config {F}/cfg_transform_count.toml --out-dir run",
        expect: &["model.spectral_transform", "2 entries", "n_layers = 1"],
        setup: none,
    },
    Case {
        args: "bench fno --res 16 --modes 4 --transform dft --steps 1",
        expect: &["--transform", "dft", "fft, gemm"],
        setup: none,
    },
    Case {
        args: "train --config {F}/cfg_contraction.toml --out-dir run",
        expect: &["model.contraction", "karatsuba", "standard", "gauss"],
        setup: none,
    },
    Case {
        args: "bench fno --res 16 --modes 4 --contraction 3m --steps 1",
        expect: &["--contraction", "3m", "standard, gauss"],
        setup: none,
    },
    Case {
        args: "bench fno --res 1099511627776 --steps 1",
        expect: &["--res", "memory"],
        setup: none,
    },
    Case {
        args: "bench fno --res 4294967296 --steps 1",
        expect: &["--res", "memory"],
        setup: none,
    },
    Case {
        args: "bench fno --res 16 --modes 4 --rank 1e9 --steps 1",
        expect: &["--rank", "memory"],
        setup: none,
    },
    Case {
        args: "bench fno --res 16 --modes 4 --rank 2 --cp-order greedy --steps 1",
        expect: &["--cp-order", "greedy", "auto, memory, expand, factorized"],
        setup: none,
    },
    Case {
        args: "bench fno --batch 100000000 --steps 1",
        expect: &["--batch", "memory"],
        setup: none,
    },
    Case {
        args: "bench fno --width 1000000 --steps 1",
        expect: &["--width", "memory"],
        setup: none,
    },
    Case {
        args: "bench fno --res 16 --modes 4 --steps 1000000000",
        expect: &["--steps"],
        setup: none,
    },
    Case {
        args: "bench fno --steps 1 --policy e4m3@row/fp32/fp32/fp32",
        expect: &["--policy", "forward FFT", "allowed: tensor, channel, mx"],
        setup: none,
    },
    Case {
        args: "bench fno --steps 1 --policy fp32/fp32~sr/fp32/fp32",
        expect: &["--policy", "contraction", "needs a format below fp32"],
        setup: none,
    },
    Case {
        args: "bench fno --steps 1 --policy fp32/fp32/e4m3@mx32/e4m3@tensor",
        expect: &["--policy", "MLPs", "spectral stages"],
        setup: none,
    },
    Case {
        args: "bench report {F}/bench_zero.json --out rep",
        expect: &["FILE", "mpno_dense_full", "ms_median_step"],
        setup: none,
    },
    Case {
        args: "bench report {F}/bench_negative.json --out rep",
        expect: &["FILE", "mpno_dense_full", "-2.5"],
        setup: none,
    },
    Case {
        args: "bench report {F}/bench_zero.json --out FILE",
        expect: &["FILE"],
        setup: file,
    },
];

#[test]
fn every_subcommand_refuses_bad_input_cleanly() {
    let f = Fixtures::new();
    let nan_name = std::fs::read_to_string(f.root.join("ck_nan.name")).unwrap();
    let t0 = Instant::now();
    let mut failures = Vec::new();
    let mut slowest = (0.0, "");
    for case in CASES {
        let dir = tempfile::tempdir().unwrap();
        (case.setup)(dir.path(), &f);
        let before = snapshot(dir.path());
        let args: Vec<String> = case
            .args
            .split_whitespace()
            .map(|a| a.replace("{F}", &f.path("")).replace("//", "/"))
            .collect();
        let (code, err, secs) = run_limited(&args, dir.path());
        if secs > slowest.0 {
            slowest = (secs, case.args);
        }
        let after = snapshot(dir.path());
        let mut problems = Vec::new();
        if code != 2 {
            problems.push(format!("exit code {code}, not 2"));
        }
        if err.contains("panicked") {
            problems.push("panicked".into());
        }
        for want in case.expect {
            if !err.contains(want) {
                problems.push(format!("message lacks '{want}'"));
            }
        }
        if case.args.contains("ck_nan") && !err.contains(&nan_name) {
            problems.push(format!("message does not name the tensor {nan_name}"));
        }
        if before != after {
            problems.push(format!(
                "the folder changed: {:?} -> {:?}",
                before.keys().collect::<Vec<_>>(),
                after.keys().collect::<Vec<_>>()
            ));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{}\n  {}\n  stderr: {}",
                case.args,
                problems.join("; "),
                err.trim()
            ));
        }
    }
    println!(
        "{} cases in {:.1} s (slowest {:.2} s: {})",
        CASES.len(),
        t0.elapsed().as_secs_f64(),
        slowest.0,
        slowest.1
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

/// Output piped into a reader that has gone (`mpno bounds ... | head -1`): the process ends
/// quietly (SIGPIPE, as Unix tools do), never with a panic about a failed print.
#[test]
fn a_closed_pipe_ends_the_output_without_a_panic() {
    for args in [
        &["bounds", "--lipschitz", "1", "--sup", "1", "--s", "4"][..],
        &["functions"][..],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mpno"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the reading end before the program prints anything.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_ne!(out.status.code(), Some(101), "{args:?}: {err}");
    }
}
