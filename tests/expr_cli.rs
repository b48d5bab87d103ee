//! User expressions through the `mpno` binary: parse errors point at the column, poles are
//! refused naming the place, the CSV says the constants are certified, and the small defects of
//! the certified-bounds audit stay fixed (ratio of 0/0, `--algorithm` help).

mod common;
use common::mpno;

fn read_csv(path: &std::path::Path) -> Vec<std::collections::HashMap<String, String>> {
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

#[test]
fn bad_expressions_exit_2_with_the_column_or_the_place() {
    let dir = tempfile::tempdir().unwrap();
    for (function, wants) in [
        (
            "x+*2",
            &["--function", "column 3", "'*'", "  x+*2\n    ^"][..],
        ),
        ("exp(-x^^2)", &["--function", "column 8"][..]),
        ("2x", &["--function", "2*x"][..]),
        ("1/(x-0.3)", &["--function", "unbounded", "x ~ 0.3"][..]),
        ("tan(pi*x)", &["--function", "unbounded", "x ~ 0.5"][..]),
        ("foo(x)", &["--function", "unknown function 'foo'"][..]),
    ] {
        let (code, _, err) = mpno(
            &[
                "errors",
                "--function",
                function,
                "--sizes",
                "16",
                "--out",
                "out.csv",
            ],
            dir.path(),
        );
        assert_eq!(code, 2, "{function}: {err}");
        for w in wants {
            assert!(err.contains(w), "{function}: no '{w}' in {err}");
        }
        // No Rust Debug output (function pointers, struct dumps), no file.
        assert!(
            !err.contains("0x") && !err.contains("{ "),
            "{function}: {err}"
        );
        assert!(!dir.path().join("out.csv").exists());
    }
}

#[test]
fn the_csv_says_how_l_and_m_were_obtained() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = mpno(
        &[
            "errors",
            "--function=exp(-x^2)",
            "--sizes",
            "1",
            "--modes=1",
            "--formats",
            "fp64",
            "--models",
            "input",
            "--out",
            "a.csv",
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    let rows = read_csv(&dir.path().join("a.csv"));
    let disc = rows.iter().find(|r| r["kind"] == "discretization").unwrap();
    // |F(v)(1) - v(0)| for v = exp(-(x^2)), not exp(+x^2) (0.917).
    let m: f64 = disc["measured"].parse().unwrap();
    assert!((m - 1.0257396).abs() < 5e-8, "{m}");
    assert_eq!(disc["constants"], "interval");
    let prec = rows.iter().find(|r| r["kind"] == "precision").unwrap();
    assert_eq!(prec["constants"], "samples");

    // User-given constants are marked; a zero function has 0/0 rows with ratio 0, not NaN.
    let (code, _, err) = mpno(
        &[
            "errors",
            "--function=0*x",
            "--sizes",
            "8",
            "--formats",
            "fp64,fp16",
            "--models",
            "input",
            "--lipschitz",
            "1",
            "--sup",
            "1",
            "--out",
            "b.csv",
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    let rows = read_csv(&dir.path().join("b.csv"));
    for r in &rows {
        assert!(!r["ratio"].contains("NaN"), "{r:?}");
        if r["kind"] == "discretization" {
            assert_eq!(r["constants"], "user");
        }
    }
    assert!(
        rows.iter()
            .any(|r| r["measured"] == "0e0" && r["bound"] == "0e0" && r["ratio"] == "0e0"),
        "{rows:?}"
    );
}

#[test]
fn help_lists_only_algorithms_that_exist() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = mpno(&["errors", "--help"], dir.path());
    assert_eq!(code, 0);
    assert!(!out.contains("mixed"), "{out}");
    for a in ["auto", "radix2", "radix4", "bluestein", "naive"] {
        assert!(out.contains(a), "{a} missing from {out}");
        let (code, _, err) = mpno(
            &[
                "errors",
                "--function",
                "x",
                "--sizes",
                "16",
                "--algorithm",
                a,
                "--formats",
                "fp16",
            ],
            dir.path(),
        );
        assert_eq!(code, 0, "--algorithm {a}: {err}");
    }
    let (_, out, _) = mpno(&["functions"], dir.path());
    assert!(
        out.contains("right-associative") && out.contains("certified"),
        "{out}"
    );
}
