//! Acceptance: for every built-in function, format and model, d = 1..3, the measured error of
//! every row is <= its bound (an infinite measurement only where the bound says why it is
//! infinite), and the discretization bound's extremal ratios.

use mpno::error::{Kind, Row, SweepConfig, run_sweep};
use mpno::fft::Algorithm;
use mpno::functions::{self, FunctionOptions};
use mpno::precision::{Format, Model};

/// Every format below fp64.
const FORMATS: &[Format] = Format::ALL.split_at(1).1;

fn sweep(spec: &str, dim: usize, sizes: Vec<usize>, modes: Vec<Vec<i64>>) -> Vec<Row> {
    let f = functions::parse(spec, dim, &FunctionOptions::default())
        .unwrap_or_else(|e| panic!("{spec} (d = {dim}): {e}"));
    let cfg = SweepConfig {
        dim,
        sizes,
        modes,
        formats: FORMATS.to_vec(),
        scaled: vec![],
        models: Model::ALL.to_vec(),
        algorithm: Algorithm::Auto,
        progress: false,
    };
    run_sweep(f.as_ref(), &cfg).unwrap_or_else(|e| panic!("{spec}: {e}"))
}

fn check(rows: &[Row]) -> (usize, f64) {
    let mut worst: f64 = 0.0;
    for r in rows {
        if r.measured.is_finite() {
            assert!(
                r.measured <= r.bound,
                "measured above bound: {} d={} s={} mode={} {} {} {:?}: {:e} > {:e} ({})",
                r.function,
                r.dim,
                r.s,
                r.mode_string(),
                r.kind,
                r.format,
                r.model,
                r.measured,
                r.bound,
                r.note
            );
            if r.bound.is_finite() {
                worst = worst.max(r.ratio());
            }
        } else {
            assert!(
                r.bound.is_infinite() && !r.note.is_empty(),
                "non-finite measurement without an infinite, explained bound: {r:?}"
            );
        }
        if r.bound.is_infinite() {
            assert!(!r.note.is_empty(), "infinite bound without a reason: {r:?}");
        }
    }
    (rows.len(), worst)
}

fn pow2_sizes(lo: u32, hi: u32) -> Vec<usize> {
    (lo..=hi).map(|k| 1usize << k).collect()
}

#[test]
fn every_builtin_1d_is_within_its_bounds() {
    let modes: Vec<Vec<i64>> = [0, 1, 3, -2, 7].iter().map(|&k| vec![k]).collect();
    for (name, _) in functions::builtins() {
        if functions::parse(name, 1, &FunctionOptions::default()).is_err() {
            continue; // built-ins defined only for d > 1
        }
        let rows = sweep(name, 1, pow2_sizes(2, 12), modes.clone());
        let (n, worst) = check(&rows);
        println!("{name:<24} d=1 {n:>6} rows, max measured/bound {worst:.3}");
    }
}

#[test]
fn every_builtin_2d_and_3d_is_within_its_bounds() {
    for (name, _) in functions::builtins() {
        for (dim, hi) in [(2usize, 7u32), (3, 5)] {
            if functions::parse(name, dim, &FunctionOptions::default()).is_err() {
                continue;
            }
            let modes = vec![vec![0; dim], vec![1; dim], {
                let mut m = vec![0; dim];
                m[0] = 3;
                m
            }];
            let rows = sweep(name, dim, pow2_sizes(2, hi), modes);
            let (n, worst) = check(&rows);
            println!("{name:<24} d={dim} {n:>6} rows, max measured/bound {worst:.3}");
        }
    }
}

#[test]
fn expression_functions_are_within_their_bounds() {
    for (spec, dim) in [("exp(sin(2*pi*x))*y", 2), ("x*x*x - 0.5*x", 1)] {
        let modes = vec![vec![0; dim], vec![2; dim]];
        let rows = sweep(spec, dim, pow2_sizes(2, 8 / dim as u32 + 2), modes);
        check(&rows);
    }
}

fn disc_ratio(spec: &str, s: usize) -> f64 {
    let f = functions::parse(spec, 1, &FunctionOptions::default()).unwrap();
    let cfg = SweepConfig {
        dim: 1,
        sizes: vec![s],
        modes: vec![vec![0]],
        formats: vec![],
        scaled: vec![],
        models: vec![],
        algorithm: Algorithm::Auto,
        progress: false,
    };
    let rows = run_sweep(f.as_ref(), &cfg).unwrap();
    let r = rows
        .iter()
        .find(|r| r.kind == Kind::Discretization)
        .unwrap();
    r.ratio()
}

#[test]
fn extremal_discretization_ratios() {
    for s in [16, 256, 4096] {
        let r = disc_ratio("x", s);
        assert!((r - 0.866).abs() <= 0.01, "y = x at s = {s}: ratio {r}");
        let r = disc_ratio("lowercos", s);
        assert!(
            (r - 0.276).abs() <= 0.01,
            "cos family at s = {s}: ratio {r}"
        );
    }
}
