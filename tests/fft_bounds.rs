//! The precision models never exceed their bounds: model III (every operation in the format)
//! against Higham's bound for radix 2 (and the same bound for radix 4), Bluestein's and the naive
//! DFT's stated bounds, model II's (1 + u)^P - 1, and the scaled variant; plus overflow detection.

use mpno::fft::*;
use mpno::precision::{Format, Model, Real};
use mpno::with_real;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Normwise relative error of transforming `x` (already representable in T) in T against the
/// f64 transform of the same values; returns (measured, bound).
fn measure<T: Real>(x: &[f64], alg: Algorithm, model: Model) -> (f64, f64) {
    let n = x.len();
    let fmt = T::FORMAT;
    let exact = {
        let mut y: Vec<Complex<f64>> = x.iter().map(|&v| Complex::new(v, 0.0)).collect();
        rustfft::FftPlanner::new()
            .plan_fft_forward(n)
            .process(&mut y);
        y
    };
    let plan = Fft::<T>::new(n, Direction::Forward, alg).unwrap();
    let mut scratch = vec![Complex::new(T::zero(), T::zero()); plan.scratch_len()];
    let (got, factor): (Vec<Complex<f64>>, f64) = if model == Model::Storage {
        let plan64 = Fft::<f64>::new(n, Direction::Forward, alg).unwrap();
        let mut d: Vec<Complex<f64>> = x.iter().map(|&v| Complex::new(v, 0.0)).collect();
        let mut s = vec![Complex::new(0.0, 0.0); plan64.scratch_len()];
        let opts = StageOptions {
            store: Some(fmt),
            scale: false,
            ..StageOptions::default()
        };
        let f = plan64.process_staged(&mut d, &mut s, &opts);
        (d, f)
    } else {
        let mut d: Vec<Complex<T>> = x
            .iter()
            .map(|&v| Complex::new(T::from_f64(v), T::zero()))
            .collect();
        let opts = StageOptions {
            store: None,
            scale: model == Model::ArithmeticScaled,
            ..StageOptions::default()
        };
        let f = plan.process_staged(&mut d, &mut scratch, &opts);
        (
            d.iter()
                .map(|z| Complex::new(z.re.to_f64(), z.im.to_f64()))
                .collect(),
            f,
        )
    };
    let num: f64 = got
        .iter()
        .zip(&exact)
        .map(|(g, e)| (g / factor - e).norm_sqr())
        .sum();
    let den: f64 = exact.iter().map(|e| e.norm_sqr()).sum();
    let measured = (num / den).sqrt();
    let mut bound = relative_error_bound(&[n], alg, fmt, model);
    // The absolute underflow term, relative to ||y|| (per-coefficient term times sqrt(n) * n / ||y||).
    let abs = underflow_error(&[n], alg, fmt, model) * (n as f64) * (n as f64).sqrt();
    bound += abs / den.sqrt();
    (measured, bound)
}

fn inputs(n: usize, fmt: Format, seed: u64) -> Vec<f64> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    (0..n)
        .map(|_| mpno::precision::round(2.0 * rng.random::<f64>() - 1.0, fmt))
        .collect()
}

fn check(fmt: Format, alg: Algorithm, model: Model, sizes: &[usize]) -> f64 {
    let mut worst: f64 = 0.0;
    for &n in sizes {
        let x = inputs(n, fmt, n as u64);
        let (m, b) = with_real!(fmt, T => measure::<T>(&x, alg, model));
        // Overflow is a range failure, allowed only where the range condition fails.
        let in_range = mpno::bounds::range_ok(fmt, 1.0, growth(&[n], alg, model), 1.0);
        if !m.is_finite() {
            assert!(
                !in_range,
                "{fmt} {alg} {model} n = {n}: overflow inside the range condition"
            );
            continue;
        }
        assert!(
            m <= b,
            "{fmt} {alg} {model} n = {n}: measured {m:e} > bound {b:e}"
        );
        worst = worst.max(m / b);
    }
    println!("{fmt:<5} {alg:<9} {model:<17} max measured/bound {worst:.3}");
    worst
}

#[test]
fn model_iii_within_higham_for_powers_of_two() {
    let sizes: Vec<usize> = (1..=16).map(|k| 1usize << k).collect();
    for fmt in [Format::Fp32, Format::Bf16, Format::Fp16] {
        for alg in [Algorithm::Radix2, Algorithm::Radix4] {
            check(fmt, alg, Model::Arithmetic, &sizes);
            check(fmt, alg, Model::ArithmeticScaled, &sizes);
            check(fmt, alg, Model::Storage, &sizes);
        }
    }
}

#[test]
fn other_algorithms_and_formats_within_their_bounds() {
    let odd = [3usize, 5, 7, 12, 17, 100, 243, 1000, 4099];
    for fmt in [Format::Fp32, Format::Tf32, Format::Bf16, Format::Fp16] {
        for model in [Model::Arithmetic, Model::ArithmeticScaled, Model::Storage] {
            check(fmt, Algorithm::Bluestein, model, &odd);
            check(fmt, Algorithm::Naive, model, &odd[..6]);
        }
    }
    // fp8: E5M2 has the range for small sizes; Higham's bound is infinite (no guarantee) early.
    let small: Vec<usize> = (1..=4).map(|k| 1usize << k).collect();
    for fmt in [Format::E5m2, Format::E4m3] {
        check(fmt, Algorithm::Radix2, Model::Arithmetic, &small);
        check(fmt, Algorithm::Radix4, Model::Storage, &small);
    }
}

#[test]
fn overflow_is_detected_and_scaling_prevents_it() {
    let n = 1 << 16;
    let samples = vec![1000.0; n];
    let out = transform_under_model(
        &samples,
        &[n],
        Format::Fp16,
        Model::Arithmetic,
        Algorithm::Auto,
    )
    .unwrap();
    assert!(out.overflow, "fp16 sum of 65536 x 1000 must overflow");
    let out = transform_under_model(
        &samples,
        &[n],
        Format::Fp16,
        Model::ArithmeticScaled,
        Algorithm::Auto,
    )
    .unwrap();
    assert!(!out.overflow);
    assert!((out.coeffs[0].re - 1000.0).abs() <= 1000.0 * Format::Fp16.unit_roundoff());
    assert!(out.coeffs[1..].iter().all(|z| z.norm() == 0.0));
    let out = transform_under_model(
        &vec![100.0; 64],
        &[64],
        Format::E4m3Sat,
        Model::Arithmetic,
        Algorithm::Auto,
    )
    .unwrap();
    assert!(out.saturated && !out.overflow);
    let out = transform_under_model(
        &vec![100.0; 64],
        &[64],
        Format::E4m3,
        Model::Arithmetic,
        Algorithm::Auto,
    )
    .unwrap();
    assert!(out.overflow);
}

#[test]
fn multi_dimensional_models_within_bounds() {
    for shape in [vec![16, 16], vec![8, 8, 8], vec![6, 10]] {
        let n: usize = shape.iter().product();
        let x = inputs(n, Format::Fp16, 3);
        let reference = reference_f64(&x, &shape);
        for model in [Model::Storage, Model::Arithmetic, Model::ArithmeticScaled] {
            let out =
                transform_under_model(&x, &shape, Format::Fp16, model, Algorithm::Auto).unwrap();
            let num: f64 = out
                .coeffs
                .iter()
                .zip(&reference)
                .map(|(a, b)| (a - b).norm_sqr())
                .sum();
            let den: f64 = reference.iter().map(|b| b.norm_sqr()).sum();
            let eps = relative_error_bound(&shape, Algorithm::Auto, Format::Fp16, model);
            let under =
                underflow_error(&shape, Algorithm::Auto, Format::Fp16, model) * (n as f64).sqrt();
            assert!(
                (num.sqrt()) <= eps * den.sqrt() + under + 1e-15,
                "{shape:?} {model}"
            );
        }
    }
}
