//! Every algorithm against the naive O(n^2) DFT in f64, inverse round trips, d-D and real
//! transforms, dirty scratch, bad input.

use mpno::fft::*;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

fn random(n: usize, seed: u64) -> Vec<Complex<f64>> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    (0..n)
        .map(|_| Complex::new(rng.random::<f64>() - 0.5, rng.random::<f64>() - 0.5))
        .collect()
}

fn rel_err(a: &[Complex<f64>], b: &[Complex<f64>]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y).norm_sqr()).sum();
    let den: f64 = b.iter().map(|y| y.norm_sqr()).sum();
    (num / den.max(f64::MIN_POSITIVE)).sqrt()
}

fn run(alg: Algorithm, x: &[Complex<f64>], dir: Direction) -> Vec<Complex<f64>> {
    let mut y = x.to_vec();
    Fft::<f64>::new(x.len(), dir, alg).unwrap().process(&mut y);
    y
}

#[test]
fn every_algorithm_matches_the_naive_dft() {
    for n in 1..=64usize {
        let x = random(n, n as u64);
        for dir in [Direction::Forward, Direction::Inverse] {
            let want = naive_dft(&x, dir);
            let mut algs = vec![Algorithm::Auto, Algorithm::Bluestein, Algorithm::Naive];
            if n.is_power_of_two() {
                algs.extend([Algorithm::Radix2, Algorithm::Radix4]);
            }
            for alg in algs {
                let e = rel_err(&run(alg, &x, dir), &want);
                assert!(e < 1e-12, "{alg} n = {n} {dir:?}: {e:e}");
            }
        }
    }
}

#[test]
fn powers_of_two_to_2_16() {
    let mut planner = rustfft::FftPlanner::<f64>::new();
    for k in 7..=16 {
        let n = 1usize << k;
        let x = random(n, k as u64);
        let want = if n <= 4096 {
            naive_dft(&x, Direction::Forward)
        } else {
            let mut y = x.clone();
            planner.plan_fft_forward(n).process(&mut y);
            y
        };
        for alg in [Algorithm::Radix2, Algorithm::Radix4, Algorithm::Bluestein] {
            let e = rel_err(&run(alg, &x, Direction::Forward), &want);
            assert!(e < 1e-12, "{alg} n = {n}: {e:e}");
        }
        // inverse(forward(x)) = n x
        let back = run(
            Algorithm::Radix4,
            &run(Algorithm::Radix4, &x, Direction::Forward),
            Direction::Inverse,
        );
        let scaled: Vec<Complex<f64>> = x.iter().map(|z| z * n as f64).collect();
        assert!(rel_err(&back, &scaled) < 1e-12);
    }
    // A large non-power-of-two through Bluestein.
    for n in [1000, 4099, 10007] {
        let x = random(n, n as u64);
        let mut y = x.clone();
        planner.plan_fft_forward(n).process(&mut y);
        let e = rel_err(&run(Algorithm::Auto, &x, Direction::Forward), &y);
        assert!(e < 1e-12, "bluestein n = {n}: {e:e}");
    }
}

#[test]
fn nd_and_real_transforms() {
    for shape in [
        vec![4, 6],
        vec![8, 8],
        vec![3, 5, 4],
        vec![4, 4, 4],
        vec![1, 7],
    ] {
        let n: usize = shape.iter().product();
        let x = random(n, 99);
        let want = naive_dft_nd(&x, &shape, Direction::Forward);
        let mut y = x.clone();
        FftNd::<f64>::new(&shape, Direction::Forward, Algorithm::Auto)
            .unwrap()
            .process(&mut y);
        assert!(rel_err(&y, &want) < 1e-12, "{shape:?}");
    }
    for n in (1..=64).chain([1000, 4096]) {
        let x: Vec<f64> = random(n, 7).iter().map(|z| z.re).collect();
        let cx: Vec<Complex<f64>> = x.iter().map(|&v| Complex::new(v, 0.0)).collect();
        let want = naive_dft(&cx, Direction::Forward);
        let plan = RealFft::<f64>::new(n, Algorithm::Auto).unwrap();
        let spec = plan.forward(&x);
        assert_eq!(spec.len(), n / 2 + 1);
        assert!(rel_err(&spec, &want[..n / 2 + 1]) < 1e-12, "rfft n = {n}");
        let back = plan.inverse(&spec);
        for (b, v) in back.iter().zip(&x) {
            assert!((b - n as f64 * v).abs() < 1e-11 * n as f64, "irfft n = {n}");
        }
    }
}

/// As in rustfft: the scratch buffer's contents on entry must not matter.
#[test]
fn dirty_scratch() {
    for (n, alg) in [
        (64, Algorithm::Radix2),
        (256, Algorithm::Radix4),
        (100, Algorithm::Bluestein),
        (12, Algorithm::Naive),
    ] {
        let plan = Fft::<f64>::new(n, Direction::Forward, alg).unwrap();
        let x = random(n, 5);
        let mut clean = x.clone();
        plan.process_with_scratch(
            &mut clean,
            &mut vec![Complex::new(0.0, 0.0); plan.scratch_len()],
        );
        for garbage in [f64::NAN, f64::INFINITY, 1e300, -3.5] {
            let mut dirty = x.clone();
            let mut scratch = vec![Complex::new(garbage, -garbage); plan.scratch_len() + 3];
            plan.process_with_scratch(&mut dirty, &mut scratch);
            assert_eq!(dirty, clean, "{alg} n = {n} garbage {garbage}");
        }
    }
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    assert_eq!(
        Fft::<f64>::new(0, Direction::Forward, Algorithm::Auto).err(),
        Some(FftError::ZeroLength)
    );
    let e = Fft::<f32>::new(12, Direction::Forward, Algorithm::Radix2)
        .err()
        .unwrap();
    assert!(
        e.to_string().contains("power-of-two") && e.to_string().contains("12"),
        "{e}"
    );
    assert!(Fft::<f64>::new(48, Direction::Forward, Algorithm::Radix4).is_err());
    assert!(FftNd::<f64>::new(&[], Direction::Forward, Algorithm::Auto).is_err());
    assert!(
        transform_under_model(
            &[1.0; 6],
            &[4],
            mpno::precision::Format::Fp16,
            mpno::precision::Model::Input,
            Algorithm::Auto
        )
        .is_err()
    );
    assert!(
        "fastest"
            .parse::<Algorithm>()
            .unwrap_err()
            .contains("radix4")
    );
}

/// Eight lines transformed at once (one per lane) give, line for line, the bits of transforming
/// each alone: every format, radix 2 / radix 4 / Bluestein / naive, both directions, with and
/// without per-stage scaling and storage rounding (the CPU backend batches its emulated FFTs
/// this way, so its results depend on this).
#[test]
fn lanes_transform_each_line_as_alone() {
    fn check<T: mpno::precision::Real>(seed: u64) {
        use mpno::precision::{Format, LANES, Lanes};
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let algs = [
            Algorithm::Auto,
            Algorithm::Radix2,
            Algorithm::Radix4,
            Algorithm::Bluestein,
            Algorithm::Naive,
        ];
        for n in [1, 2, 4, 8, 16, 32, 64, 128, 256, 3, 12, 33] {
            for alg in algs {
                for dir in [Direction::Forward, Direction::Inverse] {
                    let Ok(plan) = Fft::<T>::new(n, dir, alg) else {
                        continue;
                    };
                    for opts in [
                        StageOptions::default(),
                        StageOptions {
                            store: None,
                            scale: true,
                            ..StageOptions::default()
                        },
                        StageOptions {
                            store: Some(Format::E5m2),
                            scale: false,
                            ..StageOptions::default()
                        },
                    ] {
                        // Values up to 300 overflow E4M3-based types in the larger transforms:
                        // specials must travel the lanes exactly as they travel a line.
                        let lines: Vec<Vec<Complex<T>>> = (0..LANES)
                            .map(|_| {
                                (0..n)
                                    .map(|_| {
                                        let mut d = || T::from_f64(rng.random_range(-300.0..300.0));
                                        Complex::new(d(), d())
                                    })
                                    .collect()
                            })
                            .collect();
                        let mut re: Vec<T::Lanes> = (0..n)
                            .map(|j| T::Lanes::from_array(std::array::from_fn(|k| lines[k][j].re)))
                            .collect();
                        let mut im: Vec<T::Lanes> = (0..n)
                            .map(|j| T::Lanes::from_array(std::array::from_fn(|k| lines[k][j].im)))
                            .collect();
                        let (f, c) = plan.process_lanes(&mut re, &mut im, &opts);
                        let mut scratch =
                            vec![Complex::new(T::zero(), T::zero()); plan.scratch_len()];
                        let mut any_clip = false;
                        for (k, line) in lines.iter().enumerate() {
                            let mut x = line.clone();
                            let (g, cl) = plan.process_reporting(&mut x, &mut scratch, &opts);
                            any_clip |= cl;
                            assert_eq!(f, g, "{:?} n {n} {alg} factor", T::FORMAT);
                            for j in 0..n {
                                let (a, b) = (re[j].to_array()[k], im[j].to_array()[k]);
                                let same = |p: T, q: T| {
                                    p.to_f64().to_bits() == q.to_f64().to_bits()
                                        || (p.to_f64().is_nan() && q.to_f64().is_nan())
                                };
                                assert!(
                                    same(a, x[j].re) && same(b, x[j].im),
                                    "{:?} n {n} {alg} {dir:?} {opts:?} line {k} point {j}: \
                                     lanes {a:?} {b:?}, alone {:?}",
                                    T::FORMAT,
                                    x[j]
                                );
                            }
                        }
                        assert_eq!(c, any_clip, "{:?} n {n} {alg} clipping", T::FORMAT);
                    }
                }
            }
        }
    }
    use mpno::precision::{Bf16, E4m3, E4m3Sat, E5m2, Emu, Fp16, Tf32};
    check::<f64>(1);
    check::<f32>(2);
    check::<Emu<Fp16>>(3);
    check::<Emu<Bf16>>(4);
    check::<Emu<Tf32>>(5);
    check::<Emu<E5m2>>(6);
    check::<Emu<E4m3>>(7);
    check::<Emu<E4m3Sat>>(8);
}
