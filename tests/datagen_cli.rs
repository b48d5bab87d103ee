//! `mpno datagen` end to end with the built binary: bad parameters exit 2 naming the field and
//! leave no file; the same seed gives the same bytes whatever the thread count; files load
//! through `Dataset::load` with the documented tensors; --save-res subsamples.

use mpno::pde::dataset::Dataset;
use std::path::Path;
use std::process::Command;

fn mpno(args: &[&str], cwd: &Path, threads: usize) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mpno"))
        .args(args)
        .current_dir(cwd)
        .env("RAYON_NUM_THREADS", threads.to_string())
        .output()
        .expect("run mpno");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn files_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn bad_parameters_exit_2_name_the_field_and_leave_no_file() {
    let cases: &[(&[&str], &str)] = &[
        (&["navier-stokes", "--viscosity", "-1e-3"], "--viscosity"),
        (&["burgers", "--viscosity", "-0.1"], "--viscosity"),
        (&["burgers", "--viscosity", "0"], "--viscosity"),
        (&["darcy", "--res", "3"], "--res"),
        (&["navier-stokes", "--res", "2"], "--res"),
        (&["burgers", "--res", "0"], "--res"),
        (&["navier-stokes", "--t-final", "0"], "--t-final"),
        (&["burgers", "--t-final", "-1"], "--t-final"),
        (&["darcy", "--n", "0"], "--n"),
        (&["burgers", "--n", "0"], "--n"),
        (&["heat-equation"], "heat-equation"),
        (&["darcy", "--dtype", "f16"], "--dtype"),
        (&["darcy", "--res", "128", "--save-res", "64"], "--save-res"),
        (
            &["burgers", "--res", "1024", "--save-res", "100"],
            "--save-res",
        ),
        (&["navier-stokes", "--scheme", "rk4"], "--scheme"),
        (&["navier-stokes", "--times", "1,0.5"], "--times"),
        (&["navier-stokes", "--snapshots", "0"], "--snapshots"),
        (&["navier-stokes", "--dt-max", "0"], "--dt-max"),
        (&["darcy", "--averaging", "geometric"], "--averaging"),
        (&["darcy", "--tol", "0"], "--tol"),
        (&["darcy", "--a-neg", "-3"], "--a-neg"),
        (&["burgers", "--tau", "nan"], "--tau"),
        (&["navier-stokes", "--figure", "figs/ns.pdf"], "--figure"),
    ];
    for (args, field) in cases {
        let dir = tempfile::tempdir().unwrap();
        let mut all = vec!["datagen"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--out", "out/data.safetensors"]);
        let (code, _, err) = mpno(&all, dir.path(), 2);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.contains(field),
            "{args:?}: message does not name {field}: {err}"
        );
        assert!(
            files_in(dir.path()).is_empty(),
            "{args:?} left {:?}",
            files_in(dir.path())
        );
    }
}

fn small_jobs() -> Vec<Vec<&'static str>> {
    vec![
        vec!["darcy", "--n", "5", "--res", "17"],
        vec![
            "navier-stokes",
            "--n",
            "3",
            "--res",
            "16",
            "--t-final",
            "0.05",
            "--snapshots",
            "2",
            "--dt-max",
            "1e-3",
        ],
        vec!["burgers", "--n", "5", "--res", "64"],
    ]
}

#[test]
fn same_seed_same_bytes_whatever_the_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    for job in small_jobs() {
        let run = |seed: &str, threads: usize, name: &str| {
            let mut args = vec!["datagen"];
            args.extend_from_slice(&job);
            args.extend_from_slice(&["--seed", seed, "--out", name]);
            let (code, _, err) = mpno(&args, dir.path(), threads);
            assert_eq!(code, 0, "{err}");
            std::fs::read(dir.path().join(name)).unwrap()
        };
        let a = run("7", 1, "a.safetensors");
        let b = run("7", 2, "b.safetensors");
        let c = run("8", 2, "c.safetensors");
        assert!(a == b, "{}: seed 7 differs between 1 and 2 threads", job[0]);
        assert!(a != c, "{}: seeds 7 and 8 give the same file", job[0]);
    }
}

#[test]
fn files_hold_the_documented_tensors_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    type Shapes = &'static [(&'static str, &'static [usize])];
    let expect: [(&str, Shapes); 3] = [
        (
            "darcy",
            &[
                ("a", &[5, 17, 17]),
                ("u", &[5, 17, 17]),
                ("residual", &[5]),
                ("iterations", &[5]),
            ],
        ),
        (
            "navier-stokes",
            &[
                ("w0", &[3, 16, 16]),
                ("w", &[3, 2, 16, 16]),
                ("t", &[2]),
                ("steps", &[3]),
            ],
        ),
        (
            "burgers",
            &[("u0", &[5, 64]), ("u", &[5, 64]), ("steps", &[5])],
        ),
    ];
    for (job, (eq, tensors)) in small_jobs().iter().zip(expect) {
        let mut args = vec!["datagen"];
        args.extend_from_slice(job);
        args.extend_from_slice(&["--out", "d.safetensors"]);
        let (code, out, err) = mpno(&args, dir.path(), 2);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("wrote"), "{out}");
        let d = Dataset::load(&dir.path().join("d.safetensors")).unwrap();
        assert_eq!(d.metadata["equation"], eq);
        assert_eq!(d.metadata["seed"], "0");
        assert_eq!(d.metadata["mpno_version"], env!("CARGO_PKG_VERSION"));
        assert!(d.metadata.contains_key("resolution"));
        for (name, shape) in tensors {
            assert_eq!(d.get(name).unwrap().shape, shape.to_vec(), "{eq} {name}");
        }
        assert_eq!(d.tensors.len(), tensors.len());
    }
    // Darcy residuals below the default tolerance, NS times as asked
    let d = Dataset::load(&dir.path().join("d.safetensors")).unwrap();
    assert!(d.get("u").unwrap().to_f64().iter().all(|x| x.is_finite()));
}

#[test]
fn save_res_subsamples_the_fine_solution() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = mpno(
        &[
            "datagen",
            "darcy",
            "--n",
            "2",
            "--res",
            "33",
            "--save-res",
            "33,17,9",
            "--dtype",
            "f64",
            "--out",
            "darcy.safetensors",
        ],
        dir.path(),
        2,
    );
    assert_eq!(code, 0, "{err}");
    let mut names = files_in(dir.path());
    names.sort();
    assert_eq!(
        names,
        [
            "darcy_r17.safetensors",
            "darcy_r33.safetensors",
            "darcy_r9.safetensors"
        ]
    );
    let fine = Dataset::load(&dir.path().join("darcy_r33.safetensors")).unwrap();
    let coarse = Dataset::load(&dir.path().join("darcy_r9.safetensors")).unwrap();
    assert_eq!(coarse.metadata["resolution"], "9");
    assert_eq!(coarse.metadata["solve_resolution"], "33");
    let (uf, uc) = (
        fine.get("u").unwrap().to_f64(),
        coarse.get("u").unwrap().to_f64(),
    );
    assert_eq!(coarse.get("u").unwrap().shape, vec![2, 9, 9]);
    for s in 0..2 {
        for i in 0..9 {
            for j in 0..9 {
                assert_eq!(uc[s * 81 + i * 9 + j], uf[s * 33 * 33 + 4 * i * 33 + 4 * j]);
            }
        }
    }
    // periodic: every (r / R)-th point from index 0
    let (code, _, err) = mpno(
        &[
            "datagen",
            "burgers",
            "--n",
            "2",
            "--res",
            "64",
            "--save-res",
            "16",
            "--out",
            "b.safetensors",
        ],
        dir.path(),
        2,
    );
    assert_eq!(code, 0, "{err}");
    let b = Dataset::load(&dir.path().join("b_r16.safetensors")).unwrap();
    assert_eq!(b.get("u").unwrap().shape, vec![2, 16]);
}

/// Files are written through a partial file named for what it is (`.NAME.mpno-partial-PID-*`);
/// one left by a writer that is gone (killed with SIGKILL: no chance to clean up) is removed by
/// the next write of NAME, while those of running writers and unrelated files stay.
#[test]
fn partial_files_of_killed_writers_are_removed_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    // No process has pid 999999999 (above Linux's largest pid_max, 2^22).
    let stale = ".d.safetensors.mpno-partial-999999999-Ab3dEf";
    let running = format!(".d.safetensors.mpno-partial-{}-Xy", std::process::id());
    for name in [
        stale,
        running.as_str(),
        ".tmpAbCdEf",
        ".other.safetensors.mpno-partial-999999999-x",
    ] {
        std::fs::write(dir.path().join(name), vec![0u8; 1000]).unwrap();
    }
    let (code, _, err) = mpno(
        &[
            "datagen",
            "darcy",
            "--n",
            "2",
            "--res",
            "16",
            "--out",
            "d.safetensors",
        ],
        dir.path(),
        2,
    );
    assert_eq!(code, 0, "{err}");
    let mut names = files_in(dir.path());
    names.sort();
    let mut want = vec![
        ".other.safetensors.mpno-partial-999999999-x".to_string(),
        ".tmpAbCdEf".to_string(),
        running,
        "d.safetensors".to_string(),
    ];
    want.sort();
    assert_eq!(names, want);
}

#[derive(clap::Parser)]
#[command(name = "datagen", no_binary_name = true)]
struct Line {
    #[command(subcommand)]
    equation: mpno::pde::datagen::DatagenCommand,
}

#[test]
fn file_size_estimate_matches_the_files_written() {
    // An experiment checks a run's memory before its data exist, from datagen::file_bytes:
    // within the small header and coordinates of the real file, never above it.
    use clap::Parser;
    let dir = tempfile::tempdir().unwrap();
    for job in small_jobs() {
        for dtype in ["f32", "f64"] {
            let out = dir.path().join(format!("{}_{dtype}.safetensors", job[0]));
            let mut args: Vec<String> = job.iter().map(|s| s.to_string()).collect();
            args.extend(["--dtype".into(), dtype.into(), "--out".into()]);
            args.push(out.display().to_string());
            let cmd = Line::try_parse_from(&args).unwrap().equation;
            let j = mpno::pde::datagen::prepare(&cmd).unwrap();
            mpno::pde::datagen::run(&j).unwrap();
            let est = mpno::pde::datagen::file_bytes(&j);
            let real = std::fs::metadata(&out).unwrap().len() as f64;
            assert!(
                est <= real && real <= est * 1.05 + 4096.0,
                "{} {dtype}: estimate {est}, file {real}",
                job[0]
            );
        }
    }
}
