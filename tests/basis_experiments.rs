//! Experiment files in the bases of src/basis: a `sweep` with `basis` other than fourier and the
//! `bases` kind name the file, line and field of a bad value (exit 2, nothing written), and good
//! files write the contract CSV, the figure and the resolved config. Also the SHT's fallback for
//! functions without known coefficients (a finer SHT with its bound).

use mpno::basis::spherical::SphericalBasis;
use mpno::basis::{Basis, DomainFunction};

mod common;
use common::mpno;

const SWEEP: &str = "description = \"d\"\nbasis = \"db4\"\nfunction = \"x\"\nsizes = \"16,32\"\nmodes = \"0:0,2:1\"\nformats = \"fp16\"\nmodels = \"input,arithmetic\"\n";
const BASES: &str = "kind = \"bases\"\ndescription = \"d\"\nbases = [\"haar\", \"spherical\"]\nfunctions = [\"x\", \"cap\"]\nsizes = [\"16,32\", \"4,8\"]\nmodes = [\"2:1\", \"2:0\"]\nformat = \"fp16\"\nmodels = \"input,arithmetic\"\n";

#[test]
fn bad_basis_experiments_name_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let exp = dir.path().join("experiments");
    std::fs::create_dir(&exp).unwrap();
    let cases: &[(&str, String, &str)] = &[
        (
            "basis",
            SWEEP.replace("db4", "db12"),
            "bad.toml:2 field 'basis'",
        ),
        (
            "sizes",
            SWEEP.replace("16,32", "12"),
            "bad.toml:4 field 'sizes'",
        ),
        (
            "modes",
            SWEEP.replace("2:1", "7:1"),
            "bad.toml:5 field 'modes'",
        ),
        (
            "models",
            SWEEP.replace("input,arithmetic", "arithmetic-scaled"),
            "bad.toml:7 field 'models'",
        ),
        ("dim", format!("{SWEEP}dim = 4\n"), "field 'dim'"),
        // In 2-D a wavelet mode is j:t:k_1:k_2: the 1-D modes of the file are refused.
        (
            "modes",
            format!("{SWEEP}dim = 2\n"),
            "bad.toml:5 field 'modes'",
        ),
        (
            "function",
            SWEEP.replace("\"x\"", "\"cap\""),
            "bad.toml:3 field 'function'",
        ),
        (
            "lengths",
            BASES.replace("[\"2:1\", \"2:0\"]", "[\"2:1\"]"),
            "bad.toml:6 field 'modes'",
        ),
        (
            "nlat",
            BASES.replace("\"4,8\"", "\"1,8\""),
            "bad.toml:5 field 'sizes'",
        ),
        (
            "sphere fn",
            // Expressions on the sphere must be defined on the cube [-1,1]^3 around it.
            BASES.replace("\"cap\"", "\"sqrt(x)\""),
            "field 'functions'",
        ),
        (
            "format",
            BASES.replace("\"fp16\"", "\"fp16,bf16\""),
            "bad.toml:7 field 'format'",
        ),
    ];
    for (what, text, needle) in cases {
        std::fs::write(exp.join("bad.toml"), text).unwrap();
        let (code, _o, err) = mpno(&["figure", "bad"], dir.path());
        assert_eq!(code, 2, "{what}: {err}");
        assert!(err.contains(needle), "{what}: '{err}' lacks '{needle}'");
        assert!(!dir.path().join("figures").exists(), "{what}: wrote output");
    }
}

#[test]
fn good_basis_experiments_write_csv_figure_and_config() {
    let dir = tempfile::tempdir().unwrap();
    let exp = dir.path().join("experiments");
    std::fs::create_dir(&exp).unwrap();
    std::fs::write(exp.join("s.toml"), SWEEP).unwrap();
    std::fs::write(exp.join("b.toml"), BASES).unwrap();
    for name in ["s", "b"] {
        let (code, out, err) = mpno(&["figure", name], dir.path());
        assert_eq!(code, 0, "{name}: {err}");
        for ext in ["csv", "svg", "png", "toml"] {
            let p = format!("figures/{name}.{ext}");
            assert!(dir.path().join(&p).is_file(), "{name}: no {p}");
            assert!(out.contains(&p), "{out}");
        }
    }
    let csv = std::fs::read_to_string(dir.path().join("figures/b.csv")).unwrap();
    assert!(
        csv.lines()
            .any(|l| l.starts_with("haar,x,1,16,2:1,precision,fp16,arithmetic"))
    );
    assert!(
        csv.lines()
            .any(|l| l.starts_with("spherical,cap:kappa=4,2,8,2:0,discretization"))
    );
    assert!(dir.path().join("figures/s_crossover.csv").is_file());
}

/// exp(sin(theta) cos(phi)): smooth, no closed-form coefficients.
struct Smooth;
impl DomainFunction for Smooth {
    fn name(&self) -> String {
        "exp(sin(theta) cos(phi))".into()
    }
    fn eval(&self, x: &[f64]) -> f64 {
        (x[0].sin() * x[1].cos()).exp()
    }
    fn lipschitz(&self) -> f64 {
        // |grad| <= e * |grad(sin theta cos phi)| <= e (the gradient of a coordinate is a unit
        // tangent projection).
        std::f64::consts::E
    }
    fn sup(&self) -> f64 {
        std::f64::consts::E
    }
}

#[test]
fn spherical_fallback_coefficients_are_within_their_error() {
    let modes: Vec<Vec<i64>> = vec![vec![0, 0], vec![1, 1], vec![3, -1], vec![4, 2]];
    let coarse = SphericalBasis::new(8).unwrap().continuous(&Smooth, &modes);
    let fine = SphericalBasis::new(96).unwrap();
    let reference = fine.forward(&fine.sample(&Smooth));
    for (m, c) in modes.iter().zip(&coarse) {
        assert!(c.how.contains("nlat = 32"), "{}", c.how);
        let r = reference[fine.index(m).unwrap()];
        let d = (c.value - r).norm();
        // The smooth function's SHT at nlat = 32 is accurate to rounding, far inside its bound.
        assert!(d <= c.abs_err, "{m:?}: {d:e} > {:e}", c.abs_err);
        assert!(d < 1e-12, "{m:?}: {d:e}");
    }
}
