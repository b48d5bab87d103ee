//! Gradient checks in f64: every backend op's backward and the whole FNO's backward against
//! central finite differences (relative error < 1e-6), and the spectral transforms against a
//! direct DFT oracle.

use mpno::backend::cpu::Cpu;
use mpno::backend::{
    Backend, ContractForm, CpOrder, CpPlan, Modes, Pointwise, SpectralForward, SpectralInverse,
    SpectralTransform,
};
use mpno::fno::{Factorization, Fno, FnoConfig, Params, Policy, Resident, Stabilizer};
use mpno::precision::Format;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

type Be = Cpu<f64>;

fn rand_vec(rng: &mut Xoshiro256PlusPlus, n: usize) -> Vec<f64> {
    (0..n).map(|_| 2.0 * rng.random::<f64>() - 1.0).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Fourth-order central difference of `f` along coordinate `i` of `x`: truncation O(h^4) and
/// rounding O(eps |f| / h), both far below 1e-6 relative for h = 1e-3.
fn fd(f: &dyn Fn(&[f64]) -> f64, x: &[f64], i: usize) -> f64 {
    let h = 1e-3 * x[i].abs().max(1.0);
    let at = |d: f64| {
        let mut xp = x.to_vec();
        xp[i] += d;
        f(&xp)
    };
    (8.0 * (at(h) - at(-h)) - (at(2.0 * h) - at(-2.0 * h))) / (12.0 * h)
}

/// Compare an analytic gradient with finite differences on up to `samples` coordinates: error
/// < 1e-6 relative to the entry, or for entries far below the tensor's largest gradient entry
/// (where finite differences lose relative accuracy) < 1e-6 relative to that largest entry.
fn check(name: &str, f: &dyn Fn(&[f64]) -> f64, x: &[f64], g: &[f64], samples: usize) {
    assert_eq!(x.len(), g.len(), "{name}: gradient length");
    let gmax = g.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let step = (x.len() / samples.max(1)).max(1);
    for i in (0..x.len()).step_by(step).take(samples) {
        let num = fd(f, x, i);
        let an = g[i];
        let scale = num.abs().max(an.abs());
        let err = (num - an).abs();
        assert!(
            err <= 1e-6 * scale || err <= 1e-6 * gmax,
            "{name}[{i}]: analytic {an:e}, finite difference {num:e}, rel err {:e}",
            err / scale
        );
    }
}

fn spectral_forward_matches_direct_dft_with(transform: SpectralTransform) {
    let be = Be::new();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    let grid = [6usize, 8];
    let modes = Modes(vec![2, 3]);
    let x = rand_vec(&mut rng, 2 * 6 * 8);
    let t = be.upload(&[2, 1, 6, 8], &x, Format::Fp64);
    let scale = 0.25;
    let got = be.download_complex(&be.rfft_modes(
        &t,
        &modes,
        SpectralForward {
            transform,
            scale,
            hermitian: false,
            format: Format::Fp64,
        },
    ));
    let kept = modes.kept_shape();
    for b in 0..2 {
        for j1 in 0..kept[0] {
            for j2 in 0..kept[1] {
                let (k1, k2) = (modes.frequency(0, j1), modes.frequency(1, j2));
                let (mut re, mut im) = (0.0, 0.0);
                for p1 in 0..grid[0] {
                    for p2 in 0..grid[1] {
                        let th = -2.0
                            * std::f64::consts::PI
                            * (k1 as f64 * p1 as f64 / 6.0 + k2 as f64 * p2 as f64 / 8.0);
                        let v = x[b * 48 + p1 * 8 + p2];
                        re += v * th.cos();
                        im += v * th.sin();
                    }
                }
                let idx = 2 * ((b * kept[0] + j1) * kept[1] + j2);
                assert!((got[idx] - scale * re).abs() < 1e-13, "re at {k1},{k2}");
                assert!((got[idx + 1] - scale * im).abs() < 1e-13, "im at {k1},{k2}");
            }
        }
    }
}

#[test]
fn spectral_forward_matches_direct_dft() {
    // The FFT and the GEMM (table product) paths: the same linear map.
    for t in [SpectralTransform::Fft, SpectralTransform::Gemm] {
        spectral_forward_matches_direct_dft_with(t);
    }
}

fn spectral_round_trip_of_band_limited_field_with(transform: SpectralTransform) {
    // A real field whose spectrum lies inside the kept modes is reproduced exactly by
    // irfft(rfft(x) / N) (the model's FFT norm).
    let be = Be::new();
    let grid = [8usize, 10];
    let mut x = vec![0.0; 80];
    for p1 in 0..8 {
        for p2 in 0..10 {
            let (a, b) = (p1 as f64 / 8.0, p2 as f64 / 10.0);
            let tau = 2.0 * std::f64::consts::PI;
            x[p1 * 10 + p2] = 0.3 + (tau * a).sin() * (tau * 2.0 * b).cos()
                - 0.7 * (tau * (2.0 * a - 3.0 * b)).cos();
        }
    }
    let t = be.upload(&[1, 1, 8, 10], &x, Format::Fp64);
    let modes = Modes(vec![3, 4]);
    let xhat = be.rfft_modes(
        &t,
        &modes,
        SpectralForward {
            transform,
            scale: 1.0 / 80.0,
            hermitian: false,
            format: Format::Fp64,
        },
    );
    let y = be.download(&be.irfft_modes(
        &xhat,
        &grid,
        SpectralInverse {
            transform,
            scale: 1.0,
            hermitian: true,
            format: Format::Fp64,
        },
    ));
    for (a, b) in x.iter().zip(&y) {
        assert!((a - b).abs() < 1e-13, "{a} vs {b}");
    }
}

#[test]
fn spectral_round_trip_of_band_limited_field() {
    // The FFT and the GEMM (table product) paths: the same linear map.
    for t in [SpectralTransform::Fft, SpectralTransform::Gemm] {
        spectral_round_trip_of_band_limited_field_with(t);
    }
}

/// Gradients of the spectral transforms through <r, op(x)>, 1-D to 3-D, with and without the
/// Hermitian weights, including even and odd grids (Nyquist handling).
fn spectral_transform_gradients_with(transform: SpectralTransform) {
    let be = Be::new();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
    for (grid, modes) in [
        (vec![8usize], vec![5usize]),
        (vec![7], vec![4]),
        (vec![6, 8], vec![2, 5]),
        (vec![4, 5, 6], vec![2, 2, 3]),
    ] {
        let modes = Modes(modes);
        let kept = modes.kept_shape();
        let npts: usize = grid.iter().product();
        let nk: usize = kept.iter().product();
        let mut xs = vec![2, 1];
        xs.extend(&grid);
        let mut ks = vec![2, 1];
        ks.extend(&kept);
        for hermitian in [false, true] {
            let fo = SpectralForward {
                transform,
                scale: 0.3,
                hermitian,
                format: Format::Fp64,
            };
            let r = rand_vec(&mut rng, 2 * 2 * nk);
            let x = rand_vec(&mut rng, 2 * npts);
            let f = |v: &[f64]| {
                dot(
                    &be.download_complex(&be.rfft_modes(
                        &be.upload(&xs, v, Format::Fp64),
                        &modes,
                        fo,
                    )),
                    &r,
                )
            };
            // Backward of the forward transform: the inverse with the same scale, c_k = 1 (or
            // c_k applied first when the forward was weighted).
            let mut rw = r.clone();
            if hermitian {
                let nl = *grid.last().unwrap();
                for (idx, v) in rw.chunks_mut(2).enumerate() {
                    let k = idx % kept[kept.len() - 1];
                    if k != 0 && 2 * k != nl {
                        v[0] *= 2.0;
                        v[1] *= 2.0;
                    }
                }
            }
            let g = be.download(&be.irfft_modes(
                &be.upload_complex(&ks, &rw, Format::Fp64),
                &grid,
                SpectralInverse {
                    transform,
                    scale: 0.3,
                    hermitian: false,
                    format: Format::Fp64,
                },
            ));
            check(&format!("rfft {grid:?} herm {hermitian}"), &f, &x, &g, 40);

            let io = SpectralInverse {
                transform,
                scale: 0.7,
                hermitian,
                format: Format::Fp64,
            };
            let r2 = rand_vec(&mut rng, 2 * npts);
            let xc = rand_vec(&mut rng, 2 * 2 * nk);
            let f2 = |v: &[f64]| {
                dot(
                    &be.download(&be.irfft_modes(
                        &be.upload_complex(&ks, v, Format::Fp64),
                        &grid,
                        io,
                    )),
                    &r2,
                )
            };
            let g2 = be.download_complex(&be.rfft_modes(
                &be.upload(&xs, &r2, Format::Fp64),
                &modes,
                SpectralForward {
                    transform,
                    scale: 0.7,
                    hermitian,
                    format: Format::Fp64,
                },
            ));
            // irfft ignores the imaginary part of the k_last = 0 / Nyquist entries when
            // hermitian: their gradient is the real DFT of a real signal's imaginary part,
            // which the transform also gives as 0 up to rounding.
            check(
                &format!("irfft {grid:?} herm {hermitian}"),
                &f2,
                &xc,
                &g2,
                40,
            );
        }
    }
}

#[test]
fn spectral_transform_gradients() {
    // The FFT and the GEMM (table product) paths: the same linear map.
    for t in [SpectralTransform::Fft, SpectralTransform::Gemm] {
        spectral_transform_gradients_with(t);
    }
}

#[test]
fn contraction_linear_pointwise_gradients() {
    let be = Be::new();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
    let f64_ = Format::Fp64;
    // Contraction (b=2, i=3, o=4, k=5).
    let (xs, ws, ys) = ([2usize, 3, 5], [3usize, 4, 5], [2usize, 4, 5]);
    let x = rand_vec(&mut rng, 2 * 30);
    let w = rand_vec(&mut rng, 2 * 60);
    let r = rand_vec(&mut rng, 2 * 40);
    for form in [ContractForm::Standard, ContractForm::Gauss] {
        let (gx, gw) = be.contract_backward(
            &be.upload_complex(&xs, &x, f64_),
            &be.upload_complex(&ws, &w, f64_),
            &be.upload_complex(&ys, &r, f64_),
            f64_,
            form,
        );
        let fx = |v: &[f64]| {
            dot(
                &be.download_complex(&be.contract(
                    &be.upload_complex(&xs, v, f64_),
                    &be.upload_complex(&ws, &w, f64_),
                    f64_,
                    form,
                )),
                &r,
            )
        };
        check(
            &format!("contract dx ({form})"),
            &fx,
            &x,
            &be.download_complex(&gx),
            60,
        );
        let fw = |v: &[f64]| {
            dot(
                &be.download_complex(&be.contract(
                    &be.upload_complex(&xs, &x, f64_),
                    &be.upload_complex(&ws, v, f64_),
                    f64_,
                    form,
                )),
                &r,
            )
        };
        check(
            &format!("contract dw ({form})"),
            &fw,
            &w,
            &be.download_complex(&gw),
            120,
        );
    }

    // Linear with bias (b=2, i=3, o=4, grid 3x2).
    let x = rand_vec(&mut rng, 2 * 3 * 6);
    let w = rand_vec(&mut rng, 12);
    let bias = rand_vec(&mut rng, 4);
    let r = rand_vec(&mut rng, 2 * 4 * 6);
    let lin = |x: &[f64], w: &[f64], b: &[f64]| {
        dot(
            &be.download(&be.linear(
                &be.upload(&[2, 3, 3, 2], x, f64_),
                &be.upload(&[4, 3], w, f64_),
                Some(&be.upload(&[4], b, f64_)),
                f64_,
            )),
            &r,
        )
    };
    let (gx, gw, gb) = be.linear_backward(
        &be.upload(&[2, 3, 3, 2], &x, f64_),
        &be.upload(&[4, 3], &w, f64_),
        &be.upload(&[2, 4, 3, 2], &r, f64_),
        true,
        f64_,
    );
    check(
        "linear dx",
        &|v| lin(v, &w, &bias),
        &x,
        &be.download(&gx),
        36,
    );
    check(
        "linear dw",
        &|v| lin(&x, v, &bias),
        &w,
        &be.download(&gw),
        12,
    );
    check(
        "linear db",
        &|v| lin(&x, &w, v),
        &bias,
        &be.download(&gb.unwrap()),
        4,
    );

    // Pointwise maps (clip tested away from its kinks).
    let x: Vec<f64> = rand_vec(&mut rng, 50).iter().map(|v| 3.0 * v).collect();
    let r = rand_vec(&mut rng, 50);
    for op in [
        Pointwise::Gelu,
        Pointwise::Tanh,
        Pointwise::Scale(0.125),
        Pointwise::Clip { lo: -1.0, hi: 1.0 },
    ] {
        let xs: Vec<f64> = match op {
            Pointwise::Clip { .. } => x
                .iter()
                .filter(|v| (v.abs() - 1.0).abs() > 1e-3)
                .copied()
                .collect(),
            _ => x.clone(),
        };
        let n = xs.len();
        let rr = &r[..n];
        let f = |v: &[f64]| {
            dot(
                &be.download(&be.pointwise(op, &be.upload(&[1, 1, n], v, f64_))),
                rr,
            )
        };
        let g = be.pointwise_backward(
            op,
            &be.upload(&[1, 1, n], &xs, f64_),
            &be.upload(&[1, 1, n], rr, f64_),
        );
        check(&format!("{op:?}"), &f, &xs, &be.download(&g), n);
    }

    // Soft gating.
    let x = rand_vec(&mut rng, 2 * 3 * 4);
    let w = rand_vec(&mut rng, 3);
    let r = rand_vec(&mut rng, 24);
    let sc = |x: &[f64], w: &[f64]| {
        dot(
            &be.download(
                &be.scale_channels(&be.upload(&[2, 3, 4], x, f64_), &be.upload(&[3], w, f64_)),
            ),
            &r,
        )
    };
    let (gx, gw) = be.scale_channels_backward(
        &be.upload(&[2, 3, 4], &x, f64_),
        &be.upload(&[3], &w, f64_),
        &be.upload(&[2, 3, 4], &r, f64_),
    );
    check("gate dx", &|v| sc(v, &w), &x, &be.download(&gx), 24);
    check("gate dw", &|v| sc(&x, v), &w, &be.download(&gw), 3);
}

/// The whole model: every parameter tensor (sampled entries) for 1-D, 2-D and 3-D models, dense
/// and CP weights, with the tanh stabilizer and the k-sigma clip.
#[test]
fn model_gradients() {
    let cases = [
        (
            1usize,
            vec![16usize],
            vec![5usize],
            Factorization::Dense,
            Stabilizer::Tanh,
        ),
        (
            2,
            vec![8, 6],
            vec![3, 3],
            Factorization::Dense,
            Stabilizer::None,
        ),
        (
            2,
            vec![8, 8],
            vec![2, 3],
            Factorization::Cp { rank: 3.0 },
            Stabilizer::Tanh,
        ),
        (
            3,
            vec![4, 4, 6],
            vec![2, 2, 2],
            Factorization::Dense,
            Stabilizer::Divide(3.0),
        ),
    ];
    for (dim, grid, modes, factorization, stabilizer) in cases {
        let cfg = FnoConfig {
            dim,
            in_channels: 2,
            out_channels: 1,
            width: 4,
            modes,
            n_layers: 2,
            lifting_channels: 6,
            projection_channels: 5,
            mlp_expansion: 0.5,
            factorization,
            positional_embedding: true,
            // Both structures of the last block: neuraloperator 2.0.0 (no GELU before its
            // channel MLP) in 2-D, 0.3.0 (with it) in 1-D and 3-D.
            gelu_before_last_mlp: dim != 2,
            // FFT blocks in 2-D, GEMM blocks in 3-D, one of each in 1-D.
            spectral_transform: match dim {
                1 => vec![SpectralTransform::Gemm, SpectralTransform::Fft],
                2 => Vec::new(),
                _ => vec![SpectralTransform::Gemm],
            },
            // Gauss's three-product contraction in 2-D.
            contraction: if dim == 2 {
                ContractForm::Gauss
            } else {
                ContractForm::Standard
            },
        };
        // CP weights both ways: the dense weight expanded, and factor by factor.
        let orders = match factorization {
            Factorization::Cp { .. } => vec![CpOrder::Expand, CpOrder::Factorized],
            Factorization::Dense => vec![CpOrder::Auto],
        };
        for order in orders {
            let mut model = Fno::new(cfg.clone()).unwrap();
            model.cp_order = order;
            let be = Be::new();
            let params: Params<f64> = model.init(7);
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
            let npts: usize = grid.iter().product();
            let mut xs = vec![2, 2];
            xs.extend(&grid);
            let mut ys = vec![2, 1];
            ys.extend(&grid);
            let x = rand_vec(&mut rng, 2 * 2 * npts);
            let r = rand_vec(&mut rng, 2 * npts);
            let policy = Policy {
                stabilizer,
                ..Policy::exact()
            };
            if let Factorization::Cp { .. } = factorization {
                let want = match order {
                    CpOrder::Factorized => CpPlan::Factorized,
                    _ => CpPlan::Expand,
                };
                assert_eq!(model.cp_plan(&be, 2, &policy), want, "{order:?}");
            }
            let xt = be.upload(&xs, &x, Format::Fp64);
            let loss = |p: &Params<f64>| {
                let (y, _) = model
                    .forward(&be, &Resident::upload(&be, p), &xt, &policy)
                    .unwrap();
                dot(&be.download(&y), &r)
            };
            let resident = Resident::upload(&be, &params);
            let (_, cache) = model.forward(&be, &resident, &xt, &policy).unwrap();
            let grads = model
                .backward(
                    &be,
                    &resident,
                    cache,
                    &be.upload(&ys, &r, Format::Fp64),
                    &policy,
                )
                .unwrap();
            let grads = resident.to_params(&be, &grads);
            for (pi, p) in params.list.iter().enumerate() {
                let f = |v: &[f64]| {
                    let mut q = params.clone();
                    q.list[pi].data.copy_from_slice(v);
                    loss(&q)
                };
                check(
                    &format!("{dim}-D {factorization:?} {order:?} {}", p.name),
                    &f,
                    &p.data,
                    &grads.list[pi].data,
                    6,
                );
            }
        }
    }
}

#[test]
fn model_is_resolution_independent_and_layout_checked() {
    // tiny() with darcy_small's depth.
    let cfg = FnoConfig {
        n_layers: FnoConfig::darcy_small().n_layers,
        ..FnoConfig::tiny()
    };
    let model = Fno::new(cfg.clone()).unwrap();
    let params: Params<f32> = model.init(0);
    model.check_params(&params).unwrap();
    let be = Cpu::<f32>::new();
    for n in [16usize, 24, 33] {
        let x = vec![0.5f32; n * n];
        let (y, _) = model
            .forward(
                &be,
                &Resident::upload(&be, &params),
                &be.upload(&[1, 1, n, n], &x, Format::Fp32),
                &Policy::full(),
            )
            .unwrap();
        assert_eq!(be.shape(&y), &[1, 1, n, n]);
        assert!(be.all_finite(&y));
    }
    let other = Fno::new(FnoConfig { width: 9, ..cfg }).unwrap();
    let err = other.check_params(&params).unwrap_err();
    assert!(err.contains("blocks") || err.contains("lifting"), "{err}");
    assert!(
        Fno::new(FnoConfig {
            width: 0,
            ..FnoConfig::darcy_small()
        })
        .unwrap_err()
        .contains("model.width")
    );
}

/// Finiteness checks answered at once (the CPU) and read once per pass (the GPU's way, here
/// `Cpu::with_deferred_checks`) report the same first overflow, forward and backward, and give
/// the same gradients when nothing overflows. The cases overflow for sure: fp16 everywhere, no
/// stabilizer, inputs near fp16's maximum 65504 or output gradients beyond it.
#[test]
fn eager_and_deferred_finiteness_checks_report_the_same_overflow() {
    let cfg = FnoConfig {
        dim: 2,
        in_channels: 1,
        out_channels: 1,
        width: 4,
        modes: vec![3, 3],
        n_layers: 2,
        lifting_channels: 6,
        projection_channels: 5,
        mlp_expansion: 0.5,
        factorization: Factorization::Dense,
        positional_embedding: true,
        gelu_before_last_mlp: false,
        spectral_transform: Vec::new(),
        contraction: ContractForm::Standard,
    };
    let model = Fno::new(cfg).unwrap();
    let policy = Policy::half_block(Format::Fp16, Stabilizer::None);
    let params: Params<f32> = model.init(3);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
    let shape = [2usize, 1, 8, 8];
    let x: Vec<f32> = rand_vec(&mut rng, 128).iter().map(|&v| v as f32).collect();
    let g: Vec<f32> = rand_vec(&mut rng, 128).iter().map(|&v| v as f32).collect();
    let scaled = |v: &[f32], s: f32| v.iter().map(|&a| a * s).collect::<Vec<_>>();
    type Outcome = Result<Vec<Vec<f32>>, mpno::fno::Overflow>;
    let run = |be: &Cpu<f32>, x: &[f32], g: &[f32]| -> Outcome {
        let w = Resident::upload(be, &params);
        let xt = be.upload(&shape, x, Format::Fp32);
        let (_, cache) = model.forward(be, &w, &xt, &policy)?;
        let gt = be.upload(&shape, g, Format::Fp32);
        let grads = model.backward(be, &w, cache, &gt, &policy)?;
        Ok(grads.iter().map(|t| be.download(t)).collect())
    };
    let (eager, deferred) = (Cpu::<f32>::new(), Cpu::<f32>::with_deferred_checks());
    for (case, x, g, want) in [
        ("finite", x.clone(), g.clone(), None),
        ("large input", scaled(&x, 4e4), g.clone(), Some("forward")),
        (
            "large gradient",
            x.clone(),
            scaled(&g, 1e6),
            Some("backward"),
        ),
    ] {
        let (a, b) = (run(&eager, &x, &g), run(&deferred, &x, &g));
        match (&a, want) {
            (Ok(_), None) => {}
            (Err(o), Some(phase)) if o.phase == phase => {}
            _ => panic!("{case}: expected {want:?}, got {:?}", a.as_ref().err()),
        }
        assert_eq!(a, b, "{case}: eager and deferred checks differ");
        if let Err(o) = &a {
            eprintln!("{case}: {o}");
        }
    }
}

/// Activation recomputation (`Fno::recompute`) changes nothing but memory: the output and every
/// gradient are bit-identical, and in fp32 the forward cache is smaller by exactly the GELU
/// outputs it no longer keeps: per sample and grid point, (L - 1) block inputs of `width`
/// channels, L channel-MLP inputs (`width`) and hidden activations (`hidden`), and the hidden
/// layers of the lifting and projection MLPs, 4 bytes each.
#[test]
fn recomputed_activations_are_identical_and_smaller_by_the_gelu_outputs() {
    let (width, hidden, lift, proj, layers) = (6usize, 3usize, 8usize, 7usize, 3usize);
    let cfg = FnoConfig {
        dim: 2,
        in_channels: 1,
        out_channels: 1,
        width,
        modes: vec![3, 3],
        n_layers: layers,
        lifting_channels: lift,
        projection_channels: proj,
        mlp_expansion: 0.5,
        factorization: Factorization::Dense,
        positional_embedding: true,
        gelu_before_last_mlp: false,
        spectral_transform: Vec::new(),
        contraction: ContractForm::Standard,
    };
    let (batch, grid) = (2usize, [8usize, 8]);
    let npts = grid[0] * grid[1];
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
    let x: Vec<f32> = rand_vec(&mut rng, batch * npts)
        .iter()
        .map(|&v| v as f32)
        .collect();
    let g: Vec<f32> = rand_vec(&mut rng, batch * npts)
        .iter()
        .map(|&v| v as f32)
        .collect();
    let shape = [batch, 1, grid[0], grid[1]];
    // (output, gradients, live bytes of the forward cache, peak bytes of the step)
    let step = |recompute: bool, policy: &Policy| {
        let mut model = Fno::new(cfg.clone()).unwrap();
        model.recompute = recompute;
        let params: Params<f32> = model.init(4);
        let be = Cpu::<f32>::new();
        let w = Resident::upload(&be, &params);
        let xt = be.upload(&shape, &x, Format::Fp32);
        let gt = be.upload(&shape, &g, Format::Fp32);
        be.reset_peak();
        let before = be.mem().live_bytes;
        let (y, cache) = model.forward(&be, &w, &xt, policy).unwrap();
        let cached = be.mem().live_bytes - before;
        let grads = model.backward(&be, &w, cache, &gt, policy).unwrap();
        let grads: Vec<Vec<f32>> = grads.iter().map(|t| be.download(t)).collect();
        (be.download(&y), grads, cached, be.mem().peak_bytes)
    };
    for policy in [
        Policy::full(),
        Policy::half_block(Format::Fp16, Stabilizer::Tanh),
    ] {
        let (y0, g0, c0, p0) = step(false, &policy);
        let (y1, g1, c1, p1) = step(true, &policy);
        let same = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(u, v)| u.to_bits() == v.to_bits());
        assert!(same(&y0, &y1), "{policy:?}: outputs differ");
        assert_eq!(g0.len(), g1.len());
        for (i, (a, b)) in g0.iter().zip(&g1).enumerate() {
            assert!(same(a, b), "{policy:?}: gradient {i} differs");
        }
        assert!(
            p1 < p0,
            "{policy:?}: peak {p1} with recompute, {p0} without"
        );
        if policy == Policy::full() {
            // Block inputs past the first, each block's MLP input v and hidden GELU output,
            // the lifting and projection hidden GELU outputs; but the last block's v is its
            // sum itself (no GELU there), kept either way.
            let channels = (layers - 1) * width + layers * (width + hidden) - width + lift + proj;
            assert_eq!(
                c0 - c1,
                4 * batch * npts * channels,
                "fp32 cache bytes saved"
            );
        } else {
            assert!(c1 < c0);
        }
        eprintln!("{policy:?}: cache {c0} -> {c1} bytes, step peak {p0} -> {p1} bytes");
    }
}
