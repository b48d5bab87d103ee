//! Cross-check against independent implementations (tests/fixtures/basis_crosscheck.json, made by
//! scripts/basis_fixture.py): PyWavelets' periodized DWT (which is mpno's with the input index
//! shifted by 1 - N), a direct NumPy/SciPy quadrature for the SHT, NumPy's Chebyshev fit (1-D)
//! and chebgrid2d (2-D), SciPy's dctn (3-D); and PyWavelets' `wavedecn` in 2-D and 3-D
//! (tests/fixtures/wavelet_nd_crosscheck.json, `scripts/basis_fixture.py --wavedecn`). Agreement
//! to 1e-10 is required (1e-13 in 2-D and 3-D, 1e-12 for wavedecn); the observed differences are
//! ~1e-15.

use mpno::basis::Basis;
use mpno::basis::chebyshev::ChebyshevBasis;
use mpno::basis::dwt_nd::DwtNd;
use mpno::basis::spherical::{Sht, SphericalBasis};
use mpno::basis::wavelet::{Dwt, Wavelet};
use serde_json::Value;

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/basis_crosscheck.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn dwt_agrees_with_pywavelets() {
    let doc = fixture();
    let cases = doc["dwt"].as_array().unwrap();
    assert_eq!(cases.len(), 20);
    for case in cases {
        let w = Wavelet::parse(case["wavelet"].as_str().unwrap()).unwrap();
        let offset = case["offset"].as_i64().unwrap() as isize;
        let x = floats(&case["input"]);
        let n = x.len();
        let plan = Dwt::<f64>::with_offset(w, n, offset).unwrap();
        let mut c = x.clone();
        let mut scratch = vec![0.0; n];
        if let Some(want) = case.get("wavedec") {
            plan.forward(&mut c, &mut scratch, None);
            let d = max_diff(&c, &floats(want));
            assert!(d <= 1e-10, "{} wavedec: {d:e}", w.name());
            assert!(
                d <= 1e-13,
                "{} wavedec: {d:e} (expected rounding level)",
                w.name()
            );
        } else {
            // pywt.dwt is one level, [a (n/2), d (n/2)]: run all levels, then undo the levels
            // below the first on the approximation half with a plan of length n/2.
            let want = floats(&case["single_level"]);
            let half = n / 2;
            plan.forward(&mut c, &mut scratch, None);
            let sub = Dwt::<f64>::with_offset(w, half, offset).unwrap();
            let mut a = c[..half].to_vec();
            let mut s2 = vec![0.0; half];
            sub.inverse(&mut a, &mut s2);
            let mut got = a;
            got.extend_from_slice(&c[half..]);
            let d = max_diff(&got, &want);
            assert!(d <= 1e-10, "{} dwt: {d:e}", w.name());
        }
    }
}

#[test]
fn sht_agrees_with_direct_quadrature() {
    let doc = fixture();
    let case = &doc["sht"];
    let nlat = case["nlat"].as_u64().unwrap() as usize;
    let plan = Sht::new(nlat).unwrap();
    assert_eq!(plan.nlon() as u64, case["nlon"].as_u64().unwrap());
    assert!(max_diff(plan.nodes(), &floats(&case["nodes"])) <= 1e-14);
    assert!(max_diff(plan.weights(), &floats(&case["weights"])) <= 1e-14);
    let samples = floats(&case["samples"]);
    let got = plan.forward(&samples);
    let want = floats(&case["coefficients"]);
    let d = max_diff(&got, &want);
    assert!(d <= 1e-10, "SHT vs direct quadrature: {d:e}");
    assert!(
        d <= 1e-13,
        "SHT vs direct quadrature: {d:e} (expected rounding level)"
    );
    // Through the Basis trait too.
    let b = SphericalBasis::new(nlat).unwrap();
    let c: Vec<f64> = b.forward(&samples).iter().map(|z| z.re).collect();
    assert!(max_diff(&c, &want) <= 1e-13);
}

#[test]
fn chebyshev_agrees_with_numpy() {
    let doc = fixture();
    let case = &doc["chebyshev"];
    let n = case["n"].as_u64().unwrap() as usize;
    let b = ChebyshevBasis::new(n).unwrap();
    let got: Vec<f64> = b
        .forward(&floats(&case["samples"]))
        .iter()
        .map(|z| z.re)
        .collect();
    let want = floats(&case["coefficients"]);
    // numpy's least-squares fit is an interpolation here; its own error is ~1e-14.
    let d = max_diff(&got, &want);
    assert!(d <= 1e-10, "Chebyshev vs numpy chebfit: {d:e}");
}

/// Chebyshev in 2-D and 3-D against numpy and SciPy: a random polynomial evaluated by
/// numpy's chebgrid2d must come back as its coefficients, and the 3-D transform must equal
/// scipy.fft.dctn(type=1) scaled to the interpolant's coefficients.
#[test]
fn chebyshev_2d_and_3d_agree_with_numpy_and_scipy() {
    let doc = fixture();
    for key in ["chebyshev_2d", "chebyshev_3d"] {
        let case = &doc[key];
        let n: Vec<usize> = case["n"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let b = ChebyshevBasis::new_nd(&n).unwrap();
        let samples = floats(&case["samples"]);
        let got: Vec<f64> = b.forward(&samples).iter().map(|z| z.re).collect();
        let want = floats(&case["coefficients"]);
        assert_eq!(got.len(), want.len(), "{key}");
        // Both sides are a few roundings of sums of at most 8 x 8 terms of size <= 1.
        let d = max_diff(&got, &want);
        assert!(d <= 1e-13, "{key}: Chebyshev vs numpy/SciPy: {d:e}");
    }
}

/// The d-D periodic DWT against PyWavelets `wavedecn(x, name, mode='periodization', level=log2 n)`
/// flattened by `coeffs_to_array` (tests/fixtures/wavelet_nd_crosscheck.json, made by
/// `scripts/basis_fixture.py --wavedecn`), which is DwtNd's Mallat layout with the 1-D offset 1 - N.
#[test]
fn wavedecn_agrees_with_pywavelets_in_2d_and_3d() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/wavelet_nd_crosscheck.json"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = doc["wavedecn"].as_array().unwrap();
    assert_eq!(cases.len(), 7);
    for case in cases {
        let name = case["wavelet"].as_str().unwrap();
        let d = case["dim"].as_u64().unwrap() as usize;
        let n = case["n"].as_u64().unwrap() as usize;
        let w = Wavelet::parse(name).unwrap();
        let plan = DwtNd::<f64>::with_offset(w, n, d, 1 - w.order() as isize).unwrap();
        let mut c = floats(&case["input"]);
        assert_eq!(c.len(), n.pow(d as u32), "{name} d={d} n={n}");
        plan.forward(&mut c, None);
        let want = floats(&case["coeffs"]);
        let scale = want.iter().fold(0.0, |m: f64, v| m.max(v.abs()));
        let diff = max_diff(&c, &want);
        assert!(
            diff <= 1e-12 * (1.0 + scale),
            "{name} d={d} n={n}: DwtNd vs pywt.wavedecn: {diff:e}"
        );
    }
}
