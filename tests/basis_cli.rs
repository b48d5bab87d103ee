//! `mpno errors --basis ...` end to end: the results-file contract with j:k and l:m modes, and
//! bad input (unknown basis or wavelet, nlat < 2, non-power-of-two DWT length, bad modes) exits 2
//! with a message naming the field and writes no file.

mod common;
use common::mpno;

#[test]
fn bad_input_exits_2_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--basis", "legendre", "--function", "x"], "--basis"),
        (&["--basis", "db11", "--function", "x"], "--basis"),
        (&["--basis", "sym4", "--function", "x"], "--basis"),
        (
            &["--basis", "spherical", "--function", "cap", "--sizes", "1"],
            "nlat >= 2",
        ),
        (
            &["--basis", "haar", "--function", "x", "--sizes", "12"],
            "power-of-two",
        ),
        (
            &[
                "--basis",
                "db4",
                "--function",
                "x",
                "--sizes",
                "16",
                "--modes",
                "4:0",
            ],
            "--modes",
        ),
        (
            &[
                "--basis",
                "db4",
                "--function",
                "x",
                "--sizes",
                "16",
                "--modes",
                "a:b",
            ],
            "--modes",
        ),
        (
            &[
                "--basis",
                "spherical",
                "--function",
                "cap",
                "--sizes",
                "8",
                "--modes",
                "8:0",
            ],
            "--modes",
        ),
        (
            // Expressions on the sphere must be defined on the cube [-1,1]^3 around it.
            &[
                "--basis",
                "spherical",
                "--function",
                "sqrt(x)",
                "--sizes",
                "8",
            ],
            "[-1,1]^3",
        ),
        (
            // An expression's continuous coefficients need the SHT at 4 nlat: its table
            // (~131 GiB at nlat 4096) is refused before anything is allocated.
            &[
                "--basis",
                "spherical",
                "--function",
                "x*y",
                "--sizes",
                "1024",
            ],
            "nlat = 4096",
        ),
        (
            &[
                "--basis",
                "spherical",
                "--function",
                "w + 1",
                "--sizes",
                "8",
            ],
            "variables are x, y, z",
        ),
        (
            &[
                "--basis",
                "spherical",
                "--function",
                "cap",
                "--sizes",
                "8",
                "--lipschitz",
                "2",
            ],
            "--lipschitz",
        ),
        (
            &["--basis", "haar", "--function", "cap", "--sizes", "8"],
            "--function",
        ),
        (
            &[
                "--basis",
                "chebyshev",
                "--function",
                "x",
                "--sizes",
                "8",
                "--modes",
                "8",
            ],
            "--modes",
        ),
        (
            &["--basis", "spherical", "--function", "abscos", "--dim", "2"],
            "--dim",
        ),
        (
            &["--basis", "haar", "--function", "x", "--dim", "4"],
            "--dim",
        ),
        // A 2-D wavelet mode is j:t:k_1:k_2.
        (
            &[
                "--basis",
                "db2",
                "--function",
                "x",
                "--dim",
                "2",
                "--modes",
                "2:1",
            ],
            "--modes",
        ),
        (
            &[
                "--basis",
                "db2",
                "--function",
                "x",
                "--dim",
                "2",
                "--modes",
                "1:0:0:0",
            ],
            "--modes",
        ),
        // 2^13 points per axis in 2-D is 2^26 points (at most 2^24).
        (
            &[
                "--basis",
                "haar",
                "--function",
                "x",
                "--dim",
                "2",
                "--sizes",
                "8192",
            ],
            "--sizes",
        ),
        (
            &[
                "--basis",
                "haar",
                "--function",
                "x",
                "--sizes",
                "16",
                "--models",
                "arithmetic-scaled",
            ],
            "--models",
        ),
        (
            &[
                "--basis",
                "spherical",
                "--function",
                "cap",
                "--sizes",
                "8",
                "--models",
                "input,gemm",
            ],
            "gemm",
        ),
        (
            &[
                "--basis",
                "spherical",
                "--function",
                "cap",
                "--sizes",
                "2048",
            ],
            "--sizes",
        ),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["errors", "--out", "out.csv"];
        args.extend_from_slice(extra);
        let (code, _, err) = mpno(&args, dir.path());
        assert_eq!(code, 2, "{extra:?}: exit {code}, stderr {err}");
        assert!(
            err.contains(needle),
            "{extra:?}: stderr '{err}' lacks '{needle}'"
        );
        assert!(
            !dir.path().join("out.csv").exists(),
            "{extra:?} wrote a file"
        );
    }
}

#[test]
fn every_basis_writes_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    // (basis, function, sizes, modes, a mode that must appear)
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        ("haar", "x2", "16,64", "-1:0,0:0", "0:0"),
        ("db4", "expsin", "16,64", "0:0,2:1", "2:1"),
        ("db10", "x", "32", "-1:0", "-1:0"),
        ("chebyshev", "x2", "16,64", "0,3", "3"),
        ("spherical", "abscos", "8,16", "0:0,2:0", "2:0"),
        ("spherical", "ylm:l=3,m=-2", "8", "0:0,3:-2", "3:-2"),
        (
            "spherical",
            "exp(x)*sin(3*y) + z^2",
            "8,16",
            "0:0,2:1",
            "2:1",
        ),
        ("fourier", "x", "16,64", "0,3", "3"),
    ];
    for (basis, function, sizes, modes, mode) in cases {
        let (code, _, err) = mpno(
            &[
                "errors",
                "--basis",
                basis,
                "--function",
                function,
                "--sizes",
                sizes,
                "--formats",
                "fp16,bf16",
                "--models",
                "input,arithmetic",
                "--out",
                "out.csv",
                "--modes",
                modes,
            ],
            dir.path(),
        );
        assert_eq!(code, 0, "{basis}: {err}");
        let text = std::fs::read_to_string(dir.path().join("out.csv")).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap(),
            "basis,function,dim,s,mode,kind,format,model,measured,bound,lower_bound,ratio,prob_bound,constants,note"
        );
        let rows: Vec<Vec<String>> = lines
            .map(|l| {
                let mut r = csv::ReaderBuilder::new()
                    .has_headers(false)
                    .from_reader(l.as_bytes());
                r.records()
                    .next()
                    .unwrap()
                    .unwrap()
                    .iter()
                    .map(String::from)
                    .collect()
            })
            .collect();
        assert!(!rows.is_empty());
        assert!(
            rows.iter().any(|r| r[4] == *mode),
            "{basis}: no row for mode {mode}"
        );
        for r in &rows {
            assert_eq!(r[0], *basis);
            let measured: f64 = r[8].parse().unwrap();
            let bound: f64 = r[9].parse().unwrap();
            assert!(measured <= bound, "{basis}: {r:?}");
            let colons = r[4].matches(':').count();
            let want = if *basis == "fourier" || *basis == "chebyshev" {
                0
            } else {
                1
            };
            assert_eq!(colons, want, "{basis}: mode {}", r[4]);
        }
        std::fs::remove_file(dir.path().join("out.csv")).unwrap();
    }
}
