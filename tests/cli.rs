//! The `mpno` binary end to end: bad input exits 2 with a message naming the field and writes no
//! file; good input writes the results-file contract.

use std::path::Path;

mod common;
use common::mpno;

fn errors_with(extra: &[&str], dir: &Path) -> (i32, String, String) {
    let mut args = vec!["errors", "--out", "out.csv", "--sizes", "16,32"];
    args.extend_from_slice(extra);
    mpno(&args, dir)
}

#[test]
fn bad_input_exits_2_names_the_field_and_writes_nothing() {
    let cases: &[(&[&str], &str, &str)] = &[
        (
            &["--function", "x", "--formats", "fp16,fp9"],
            "--formats",
            "fp32",
        ),
        (&["--function", "no_such_function("], "--function", ""),
        (
            &["--function", "x", "--basis", "legendre"],
            "--basis",
            "fourier",
        ),
        (&["--function", "x", "--sizes", ""], "--sizes", ""),
        (
            &["--function", "x", "--sizes", "16,-8"],
            "--sizes",
            "positive",
        ),
        (&["--function", "x", "--sizes", "0"], "--sizes", "positive"),
        (
            &["--function", "x", "--models", "input,exact"],
            "--models",
            "arithmetic",
        ),
        (&["--function", "x", "--dim", "4"], "--dim", "1, 2, 3"),
        (&["--function", "x", "--modes", "1:2"], "--modes", ""),
        (
            &["--function", "sin(2*pi*x", "--sizes", "16"],
            "--function",
            "",
        ),
        (&["--function", "log(x - 0.5)"], "--function", ""),
        (
            &["--function", "x", "--dim", "3", "--sizes", "2^20"],
            "--sizes",
            "memory",
        ),
        (
            &["--function", "x", "--algorithm", "radix2", "--sizes", "12"],
            "--sizes",
            "power of two",
        ),
        (
            &["--function", "x", "--algorithm", "fast"],
            "--algorithm",
            "",
        ),
    ];
    for (args, field, hint) in cases {
        let dir = tempfile::tempdir().unwrap();
        let (code, _out, err) = errors_with(args, dir.path());
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.contains(field),
            "{args:?}: message does not name {field}: {err}"
        );
        assert!(
            err.contains(hint),
            "{args:?}: message lacks '{hint}': {err}"
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(leftovers.is_empty(), "{args:?} left files: {leftovers:?}");
    }
}

#[test]
fn errors_writes_the_results_contract() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _o, err) = errors_with(
        &[
            "--function",
            "x",
            "--modes",
            "0,3",
            "--formats",
            "fp16,bf16",
            "--models",
            "input,arithmetic",
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(dir.path().join("out.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "basis,function,dim,s,mode,kind,format,model,measured,bound,lower_bound,ratio,prob_bound,constants,note"
    );
    // 2 sizes x 2 modes x (1 discretization + 2 formats x 2 models).
    assert_eq!(lines.count(), 2 * 2 * 5);
    let rdr = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = rdr.into_records().map(Result::unwrap).collect();
    let first = &rows[0];
    assert_eq!(
        (&first[0], &first[1], &first[2], &first[3], &first[4]),
        ("fourier", "x", "1", "16", "0")
    );
    assert_eq!((&first[5], &first[7]), ("discretization", "none"));
    // y = x at w = 0: ratio sqrt(3)/2.
    let ratio: f64 = first[11].parse().unwrap();
    assert!((ratio - 0.866).abs() < 0.01, "{ratio}");
    for r in &rows {
        let (m, b): (f64, f64) = (r[8].parse().unwrap(), r[9].parse().unwrap());
        assert!(m <= b, "measured above bound: {r:?}");
    }
}

#[test]
fn table_on_stdout_without_out() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = mpno(
        &[
            "errors",
            "--function",
            "x",
            "--sizes",
            "8",
            "--formats",
            "fp16",
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("discretization") && out.contains("crossover"),
        "{out}"
    );
}

#[test]
fn figure_unknown_name_and_broken_experiment() {
    let dir = tempfile::tempdir().unwrap();
    let exp = dir.path().join("experiments");
    std::fs::create_dir(&exp).unwrap();
    std::fs::write(
        exp.join("good.toml"),
        "description = \"ok\"\nfunction = \"x\"\nsizes = \"8,16\"\nmodes = \"0\"\nformats = \"fp16\"\nmodels = \"input\"\n",
    )
    .unwrap();
    let (code, _o, err) = mpno(&["figure", "nope"], dir.path());
    assert_eq!(code, 2);
    assert!(
        err.contains("unknown experiment 'nope'") && err.contains("good"),
        "{err}"
    );

    std::fs::write(
        exp.join("bad.toml"),
        "description = \"broken\"\nfunction = \"x\"\nsizes = \"8,16\"\nmodes = \"0\"\nformats = \"fp16,fp99\"\nmodels = \"input\"\n",
    )
    .unwrap();
    let (code, _o, err) = mpno(&["figure", "bad"], dir.path());
    assert_eq!(code, 2);
    assert!(
        err.contains("bad.toml:5") && err.contains("formats") && err.contains("fp99"),
        "{err}"
    );
    std::fs::write(
        exp.join("bad.toml"),
        "description = \"broken\"\nfunction = \"x\"\nsizez = 3\n",
    )
    .unwrap();
    let (code, _o, err) = mpno(&["reproduce"], dir.path());
    assert_eq!(code, 2);
    assert!(
        err.contains("bad.toml:3 field 'sizez'") && err.contains("unknown field"),
        "{err}"
    );
    assert!(
        !dir.path().join("figures").exists(),
        "reproduce wrote output before failing"
    );

    let (code, out, err) = mpno(&["figure", "good"], dir.path());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("figures/good.csv"), "{out}");
    assert!(dir.path().join("figures/good_crossover.csv").is_file());
}

/// Each experiment kind names the file, the line and the field of a bad value, exits 2, and
/// writes nothing; a good file of each kind writes its data, figure and config.
#[test]
fn experiment_kinds_validate_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let exp = dir.path().join("experiments");
    std::fs::create_dir(&exp).unwrap();
    let bad = [
        (
            "kind = \"stats\"\ndescription = \"d\"\ninput = \"noise\"\nsizes = \"8,16\"\nformats = \"fp16\"\nmodels = \"input\"\ntrials = 0\n",
            ":7 field 'trials'",
        ),
        (
            "kind = \"crossover\"\ndescription = \"d\"\nfunctions = [\"x\"]\nlabels = [\"a\", \"b\"]\nsizes = \"8,16\"\nmode = \"3\"\nformats = \"fp16\"\nmodels = \"input\"\n",
            ":4 field 'labels'",
        ),
        (
            "kind = \"histogram\"\ndescription = \"d\"\n",
            ":1 field 'kind'",
        ),
        (
            "kind = \"models\"\ndescription = \"d\"\nfunctions = [\"x\"]\nsizes = \"8\"\nmode = \"3\"\nformat = \"fp16,bf16\"\nmodels = \"input\"\n",
            ":6 field 'format'",
        ),
        (
            "description = \"d\"\nfunction = \"x\"\nsizes = \"8,16\"\nmodes = \"0\"\nformats = \"fp16\"\nmodels = \"input\"\nplot_mode = \"3\"\n",
            ":7 field 'plot_mode'",
        ),
        (
            "kind = \"models\"\ndescription = \"d\"\nfunctions = [\"x\"]\nsizes = \"8\"\nmode = \"3\"\nformat = \"fp16\"\nmodels = \"input\"\nplot_mode = \"3\"\n",
            ":8 field 'plot_mode': unknown field `plot_mode`",
        ),
    ];
    for (text, expect) in bad {
        std::fs::write(exp.join("bad.toml"), text).unwrap();
        let (code, _o, err) = mpno(&["figure", "bad"], dir.path());
        assert_eq!(code, 2, "{text}\n{err}");
        assert!(
            err.contains("bad.toml") && err.contains(expect),
            "{expect}: {err}"
        );
        assert!(!dir.path().join("figures").exists(), "{err}");
    }
    std::fs::remove_file(exp.join("bad.toml")).unwrap();
    let good = [
        (
            "stats",
            "kind = \"stats\"\ndescription = \"d\"\ninput = \"noise\"\nsizes = \"8,16\"\nformats = \"fp16\"\nmodels = \"input,arithmetic\"\ntrials = 2\n",
        ),
        (
            "cross",
            "kind = \"crossover\"\ndescription = \"d\"\nfunctions = [\"x\", \"one\"]\nsizes = \"8,16,32\"\nmode = \"3\"\nformats = \"fp16\"\nmodels = \"input\"\n",
        ),
        // List fields may be TOML integers and arrays.
        (
            "models",
            "kind = \"models\"\ndescription = \"d\"\nfunctions = [\"x\", \"x2\"]\nlabels = [\"a\", \"b\"]\nsizes = [8, 16]\nmode = 3\nformat = \"bf16\"\nmodels = [\"input\", \"storage\"]\n",
        ),
    ];
    for (name, text) in good {
        std::fs::write(exp.join(format!("{name}.toml")), text).unwrap();
    }
    let (code, out, err) = mpno(&["reproduce"], dir.path());
    assert_eq!(code, 0, "{err}");
    for (name, _) in good {
        for ext in ["csv", "svg", "png", "toml"] {
            let f = format!("figures/{name}.{ext}");
            assert!(
                dir.path().join(&f).is_file() && out.contains(&f),
                "{f}: {out}"
            );
        }
    }
    assert!(dir.path().join("figures/cross.md").is_file());
}

/// `mpno bounds` prints the precision bound `mpno errors` writes for the same transform: the
/// algorithm `errors` would use for that s (radix-4 for powers of two, Bluestein otherwise under
/// `auto`, or the one given), for every format and model. A constant function has mean|v| =
/// max|v| = M, the values `bounds` takes from --sup, and L = 0.
#[test]
fn bounds_prints_the_bound_errors_writes() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str, &str, usize, &str)] = &[
        // (function, --sup, --s, dim, --algorithm)
        ("one", "1", "17", 1, "auto"),
        ("one", "1", "4099", 1, "naive"),
        ("const:c=3", "3", "4099", 1, "auto"),
        ("one", "1", "2^10", 1, "auto"),
        ("one", "1", "1024", 1, "radix2"),
        ("const:c=3", "3", "64", 1, "bluestein"),
        ("one", "1", "9", 2, "naive"),
    ];
    for &(function, sup, s, dim, alg) in cases {
        let dim_s = dim.to_string();
        let (code, _o, err) = mpno(
            &[
                "errors",
                "--function",
                function,
                "--sizes",
                s,
                "--dim",
                &dim_s,
                "--modes",
                "0",
                "--formats",
                "fp16,bf16",
                "--models",
                "input,storage,arithmetic,arithmetic-scaled",
                "--algorithm",
                alg,
                "--out",
                "e.csv",
            ],
            dir.path(),
        );
        assert_eq!(code, 0, "{function} {s} {alg}: {err}");
        let mut csv_bounds = std::collections::BTreeMap::new();
        let mut rdr = csv::Reader::from_path(dir.path().join("e.csv")).unwrap();
        for r in rdr.records() {
            let r = r.unwrap();
            if &r[5] == "precision" {
                let b: f64 = r[9].parse().unwrap();
                csv_bounds.insert((r[6].to_string(), r[7].to_string()), b);
            }
        }
        assert_eq!(csv_bounds.len(), 8);
        let (code, out, err) = mpno(
            &[
                "bounds",
                "--lipschitz",
                "0",
                "--sup",
                sup,
                "--s",
                s,
                "--dim",
                &dim_s,
                "--formats",
                "fp16,bf16",
                "--algorithm",
                alg,
            ],
            dir.path(),
        );
        assert_eq!(code, 0, "bounds {s} {alg}: {err}");
        let mut seen = 0;
        for line in out.lines() {
            let t: Vec<&str> = line.split_whitespace().collect();
            let Some(want) = t
                .get(..2)
                .and_then(|k| csv_bounds.get(&(k[0].to_string(), k[1].to_string())))
            else {
                continue;
            };
            // Printed to 5 significant digits: the same rounding of the same number.
            assert_eq!(
                t[2],
                format!("{want:.4e}"),
                "{function} s={s} {alg}: {line}"
            );
            // No crossover without a finite bound (was printed as s* = 0).
            if want.is_infinite() {
                assert_eq!(t[4], "none", "{line}");
            }
            seen += 1;
        }
        assert_eq!(seen, 8, "{out}");
    }
}

#[test]
fn wavelets_lists_the_certified_constants_in_full() {
    use mpno::basis::wavelet::Wavelet;
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = mpno(&["wavelets"], dir.path());
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .skip(1)
        .take(10)
        .map(|l| l.split_whitespace().collect())
        .collect();
    for (w, row) in Wavelet::all().iter().zip(&rows) {
        let s = w.shape();
        assert_eq!(row[0], w.name());
        // Printed as the shortest decimal of the f64: reads back to the same bits.
        // The table's distance to dbN and its defect, rounded up to two digits.
        for (col, at_least) in [(4, s.table_distance), (5, w.table_defect())] {
            let printed = row[col].parse::<f64>().unwrap();
            assert!(
                printed >= at_least && printed <= at_least * 1.1,
                "{} column {col}: {printed:e} for {at_least:e}",
                row[0]
            );
        }
        for (col, want) in [(7, s.abs_integral), (8, s.c0), (9, s.c1), (10, s.psi_sup)] {
            assert_eq!(
                row[col].parse::<f64>().unwrap(),
                want,
                "{} column {col}",
                row[0]
            );
        }
        assert!(want_finite(s), "{}", row[0]);
    }
    assert!(out.contains("Krawczyk"), "{out}");
    // docs/bounds.md cites this file: it must be what the binary prints now.
    let committed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/wavelet_constants.txt"),
    )
    .unwrap();
    assert_eq!(
        committed, out,
        "docs/wavelet_constants.txt is stale: mpno wavelets > docs/wavelet_constants.txt"
    );
}

fn want_finite(s: &mpno::basis::wavelet::ShapeConstants) -> bool {
    [s.abs_integral, s.c0, s.c1, s.psi_sup, s.osc]
        .iter()
        .all(|v| v.is_finite())
}
