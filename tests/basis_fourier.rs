//! The Fourier adapter gives exactly the rows of the existing sweep (error::run_sweep), so
//! Fourier moved onto the Basis trait without changing the results-file contract.

use mpno::basis::fourier::FourierBasis;
use mpno::basis::sweep::{self, BasisSweepConfig, Target};
use mpno::basis::{Basis, BasisKind};
use mpno::error::{self, SweepConfig};
use mpno::fft::Algorithm;
use mpno::functions::{self, FunctionOptions};
use mpno::precision::{Format, Model};
use std::sync::Arc;

#[test]
fn adapter_rows_equal_the_fourier_sweep() {
    let opts = FunctionOptions::default();
    for name in ["x", "expsin", "aliased:w=3", "square", "linear:a=1000"] {
        let f = functions::parse(name, 1, &opts).unwrap();
        let sizes = vec![8, 64, 1024];
        let modes = vec![vec![0], vec![3], vec![-2]];
        let formats = vec![Format::Fp32, Format::Fp16, Format::E4m3];
        let models = Model::ALL.to_vec();
        let old = error::run_sweep(
            f.as_ref(),
            &SweepConfig {
                dim: 1,
                sizes: sizes.clone(),
                modes: modes.clone(),
                formats: formats.clone(),
                scaled: vec![],
                models: models.clone(),
                algorithm: Algorithm::Auto,
                progress: false,
            },
        )
        .unwrap();
        let new = sweep::run(
            &Target::Interval(Arc::from(f)),
            &BasisSweepConfig {
                kind: BasisKind::Fourier,
                sizes,
                modes,
                formats,
                models,
                progress: false,
            },
        )
        .unwrap();
        assert_eq!(old.len(), new.len(), "{name}");
        for (a, b) in old.iter().zip(&new) {
            assert_eq!(
                (a.s, &a.mode, a.kind, a.format, a.model),
                (b.s, &b.mode, b.kind, b.format, b.model)
            );
            let same = |x: f64, y: f64| x == y || (x.is_nan() && y.is_nan());
            assert!(same(a.measured, b.measured), "{name} {a:?} vs {b:?}");
            assert!(same(a.bound, b.bound), "{name} {a:?} vs {b:?}");
            assert_eq!(a.lower_bound, b.lower_bound, "{name}");
            assert_eq!(a.note, b.note, "{name}");
            assert_eq!(a.basis, b.basis);
        }
    }
}

#[test]
fn adapter_round_trips_in_2d() {
    let b = FourierBasis::new(&[8, 16]).unwrap();
    let q = b.quadrature();
    let x: Vec<f64> = q
        .nodes
        .iter()
        .map(|p| (p[0] * 3.0 + p[1]).sin() + p[1])
        .collect();
    let back = b.inverse(&b.forward(&x));
    let err = x
        .iter()
        .zip(&back)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(err < 1e-13, "{err:e}");
    assert_eq!(b.index(&[1, -1]).unwrap(), 16 + 15);
    assert_eq!(b.mode(31), vec![1, 15]);
}
