//! Backend parity: one test body per property, run on every backend against the f64 CPU
//! reference (`Cpu<f64>`, whose ops define the semantics), with tolerances from an error model:
//! a norm-wise relative error `||got - want|| / ||want||` of at most `c * terms * u`, where `u` is
//! the unit roundoff of the computing format and `terms` the length of the longest sum (or
//! log2 of the FFT size). The CPU f32 backend runs everywhere; the CUDA backend runs where a GPU
//! is present and otherwise each test prints why it skipped (it never fails for lack of a GPU,
//! and never claims to have run); where a GPU is present but the backend cannot start, the CUDA
//! tests fail.

use mpno::backend::cpu::Cpu;
use mpno::backend::{
    AdamScalars, Backend, ContractForm, CpFactors, Modes, Pointwise, SpectralForward,
    SpectralInverse, SpectralTransform,
};
use mpno::bounds::{Accumulation, ContractionSums, contraction_precision_on, gemm_precision_on};
use mpno::fno::loss::LossKind;
use mpno::fno::optim::{Adam, OptimizerKind, adam_slice};
use mpno::fno::{
    Factorization, Fno, FnoConfig, Params, Policy, Resident, ResidentAdam, Stabilizer,
};
use mpno::precision::{Format, round};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

const U32: f64 = 5.960_464_477_539_063e-8; // 2^-24

fn rand_vec(seed: u64, n: usize) -> Vec<f32> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    (0..n)
        .map(|_| (2.0 * rng.random::<f64>() - 1.0) as f32)
        .collect()
}

fn widen(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// Norm-wise relative error `||got - want|| / ||want||`.
fn rel_err(got: &[f32], want: &[f64]) -> f64 {
    let (mut d2, mut w2) = (0.0f64, 0.0f64);
    for (g, w) in got.iter().zip(want) {
        d2 += (*g as f64 - w).powi(2);
        w2 += w * w;
    }
    (d2 / w2.max(1e-300)).sqrt()
}

/// Norm-wise relative error, asserted below `tol`.
fn check(label: &str, got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{label}: length");
    let rel = rel_err(got, want);
    assert!(
        rel <= tol,
        "{label}: relative error {rel:.3e} above the model's {tol:.3e}"
    );
}

/// The CUDA backend on GPU 0; `None` with the skip reason printed where this machine has no
/// driver or no GPU. A GPU whose backend cannot start (a missing cuBLAS or NVRTC, a kernel that
/// does not compile) fails the test: a skip must never hide a broken backend.
fn cuda() -> Option<impl Backend<T = f32>> {
    #[cfg(feature = "cuda")]
    {
        use mpno::backend::cuda::CudaError;
        match mpno::backend::cuda::Cuda::new(0) {
            Ok(c) => {
                eprintln!("running on CUDA device 0");
                Some(c)
            }
            Err(e @ (CudaError::NoDriver | CudaError::NoDevice(..) | CudaError::NotCompiled)) => {
                eprintln!("SKIPPED on CUDA (no GPU): {e}");
                None
            }
            Err(e) => panic!("a GPU is present but the CUDA backend cannot start: {e}"),
        }
    }
    #[cfg(not(feature = "cuda"))]
    {
        eprintln!("skipped on CUDA: built without the `cuda` feature");
        None::<Cpu<f32>>
    }
}

/// Every op of the trait in fp32 against the f64 reference.
fn ops_match_reference<B: Backend<T = f32>>(be: &B) {
    let r = Cpu::<f64>::new();
    let name = be.name();
    let f32_ = Format::Fp32;
    let f64_ = Format::Fp64;
    // Spectral transforms, 1-D to 3-D, odd sizes and the Nyquist column included.
    for (grid, modes) in [
        (vec![32usize], vec![17usize]),
        (vec![16, 12], vec![5, 7]),
        (vec![8, 6, 10], vec![2, 3, 4]),
        (vec![15, 9], vec![4, 5]),
    ] {
        let mut shape = vec![2, 3];
        shape.extend(&grid);
        let n: usize = shape.iter().product();
        let x = rand_vec(1, n);
        let npts: usize = grid.iter().product();
        let log_n = (npts as f64).log2().ceil();
        let m = Modes(modes.clone());
        // The GEMM transform sums up to 2 n_a products per axis in fp32 (model G).
        let gemm_terms: usize = grid.iter().map(|&n| 2 * n).sum();
        for (transform, hermitian) in [SpectralTransform::Fft, SpectralTransform::Gemm]
            .into_iter()
            .flat_map(|t| [(t, false), (t, true)])
        {
            let tol = match transform {
                SpectralTransform::Fft => 8.0 * log_n * U32,
                SpectralTransform::Gemm => 4.0 * gemm_terms as f64 * U32,
            };
            let fwd = |fmt| SpectralForward {
                transform,
                scale: 1.0 / npts as f64,
                hermitian,
                format: fmt,
            };
            let got =
                be.download_complex(&be.rfft_modes(&be.upload(&shape, &x, f32_), &m, fwd(f32_)));
            let want = r.download_complex(&r.rfft_modes(
                &r.upload(&shape, &widen(&x), f64_),
                &m,
                fwd(f64_),
            ));
            check(
                &format!("{name} rfft {transform:?} {grid:?} herm {hermitian}"),
                &got,
                &want,
                tol,
            );
            let mut kshape = vec![2, 3];
            kshape.extend(m.kept_shape());
            let xc = rand_vec(2, 2 * kshape.iter().product::<usize>());
            let inv = |fmt| SpectralInverse {
                transform,
                scale: 0.5,
                hermitian,
                format: fmt,
            };
            let got = be.download(&be.irfft_modes(
                &be.upload_complex(&kshape, &xc, f32_),
                &grid,
                inv(f32_),
            ));
            let want = r.download(&r.irfft_modes(
                &r.upload_complex(&kshape, &widen(&xc), f64_),
                &grid,
                inv(f64_),
            ));
            check(
                &format!("{name} irfft {transform:?} {grid:?} herm {hermitian}"),
                &got,
                &want,
                tol,
            );
        }
    }
    // Contraction and its backward.
    let (b, ci, co, kk) = (3usize, 5usize, 4usize, vec![6usize, 4]);
    let k: usize = kk.iter().product();
    let xs = [vec![b, ci], kk.clone()].concat();
    let ws = [vec![ci, co], kk.clone()].concat();
    let gs = [vec![b, co], kk.clone()].concat();
    let (x, w, g) = (
        rand_vec(3, 2 * b * ci * k),
        rand_vec(4, 2 * ci * co * k),
        rand_vec(5, 2 * b * co * k),
    );
    let got = be.download_complex(&be.contract(
        &be.upload_complex(&xs, &x, f32_),
        &be.upload_complex(&ws, &w, f32_),
        f32_,
        ContractForm::Standard,
    ));
    let want = r.download_complex(&r.contract(
        &r.upload_complex(&xs, &widen(&x), f64_),
        &r.upload_complex(&ws, &widen(&w), f64_),
        f64_,
        ContractForm::Standard,
    ));
    check(
        &format!("{name} contract"),
        &got,
        &want,
        4.0 * ci as f64 * U32,
    );
    let (gx, gw) = be.contract_backward(
        &be.upload_complex(&xs, &x, f32_),
        &be.upload_complex(&ws, &w, f32_),
        &be.upload_complex(&gs, &g, f32_),
        f32_,
        ContractForm::Standard,
    );
    let (rx, rw) = r.contract_backward(
        &r.upload_complex(&xs, &widen(&x), f64_),
        &r.upload_complex(&ws, &widen(&w), f64_),
        &r.upload_complex(&gs, &widen(&g), f64_),
        f64_,
        ContractForm::Standard,
    );
    check(
        &format!("{name} contract gx"),
        &be.download_complex(&gx),
        &r.download_complex(&rx),
        4.0 * co as f64 * U32,
    );
    check(
        &format!("{name} contract gw"),
        &be.download_complex(&gw),
        &r.download_complex(&rw),
        4.0 * b as f64 * U32,
    );
    // Linear maps (1x1 convolutions) and their backward.
    let (p, ci, co) = (37usize, 6usize, 5usize);
    let (x, w, bias, g) = (
        rand_vec(6, 2 * ci * p),
        rand_vec(7, co * ci),
        rand_vec(8, co),
        rand_vec(9, 2 * co * p),
    );
    for with_bias in [false, true] {
        let bt = be.upload(&[co], &bias, f32_);
        let rbt = r.upload(&[co], &widen(&bias), f64_);
        let got = be.download(&be.linear(
            &be.upload(&[2, ci, p], &x, f32_),
            &be.upload(&[co, ci], &w, f32_),
            with_bias.then_some(&bt),
            f32_,
        ));
        let want = r.download(&r.linear(
            &r.upload(&[2, ci, p], &widen(&x), f64_),
            &r.upload(&[co, ci], &widen(&w), f64_),
            with_bias.then_some(&rbt),
            f64_,
        ));
        check(
            &format!("{name} linear bias {with_bias}"),
            &got,
            &want,
            4.0 * ci as f64 * U32,
        );
    }
    let (gx, gw, gb) = be.linear_backward(
        &be.upload(&[2, ci, p], &x, f32_),
        &be.upload(&[co, ci], &w, f32_),
        &be.upload(&[2, co, p], &g, f32_),
        true,
        f32_,
    );
    let (rx, rw, rb) = r.linear_backward(
        &r.upload(&[2, ci, p], &widen(&x), f64_),
        &r.upload(&[co, ci], &widen(&w), f64_),
        &r.upload(&[2, co, p], &widen(&g), f64_),
        true,
        f64_,
    );
    check(
        &format!("{name} linear gx"),
        &be.download(&gx),
        &r.download(&rx),
        4.0 * co as f64 * U32,
    );
    check(
        &format!("{name} linear gw"),
        &be.download(&gw),
        &r.download(&rw),
        4.0 * (2 * p) as f64 * U32,
    );
    check(
        &format!("{name} linear gb"),
        &be.download(&gb.unwrap()),
        &r.download(&rb.unwrap()),
        4.0 * (2 * p) as f64 * U32,
    );
    // Pointwise maps (GELU's erf: fastmath on the CPU, 5e-7; CUDA's erff, 2 ulp).
    let shape = [2usize, 3, 50];
    let x: Vec<f32> = rand_vec(10, 300).iter().map(|v| 4.0 * v).collect();
    let g = rand_vec(11, 300);
    for op in [
        Pointwise::Gelu,
        Pointwise::Tanh,
        Pointwise::Clip { lo: -1.5, hi: 2.0 },
        Pointwise::Scale(0.25),
    ] {
        let got = be.download(&be.pointwise(op, &be.upload(&shape, &x, f32_)));
        let want = r.download(&r.pointwise(op, &r.upload(&shape, &widen(&x), f64_)));
        check(&format!("{name} {op:?}"), &got, &want, 2e-6);
        let got = be.download(&be.pointwise_backward(
            op,
            &be.upload(&shape, &x, f32_),
            &be.upload(&shape, &g, f32_),
        ));
        let want = r.download(&r.pointwise_backward(
            op,
            &r.upload(&shape, &widen(&x), f64_),
            &r.upload(&shape, &widen(&g), f64_),
        ));
        check(&format!("{name} {op:?} backward"), &got, &want, 2e-6);
    }
    // Channel ops.
    let (xt, gt) = (be.upload(&shape, &x, f32_), be.upload(&shape, &g, f32_));
    let (rx, rg) = (
        r.upload(&shape, &widen(&x), f64_),
        r.upload(&shape, &widen(&g), f64_),
    );
    let c3 = rand_vec(12, 3);
    let (ct, rc) = (
        be.upload(&[3], &c3, f32_),
        r.upload(&[3], &widen(&c3), f64_),
    );
    check(
        &format!("{name} add"),
        &be.download(&be.add(&xt, &gt)),
        &r.download(&r.add(&rx, &rg)),
        U32,
    );
    check(
        &format!("{name} add_bias"),
        &be.download(&be.add_bias(&xt, &ct)),
        &r.download(&r.add_bias(&rx, &rc)),
        U32,
    );
    check(
        &format!("{name} scale_channels"),
        &be.download(&be.scale_channels(&xt, &ct)),
        &r.download(&r.scale_channels(&rx, &rc)),
        U32,
    );
    let (sx, sw) = be.scale_channels_backward(&xt, &ct, &gt);
    let (tx, tw) = r.scale_channels_backward(&rx, &rc, &rg);
    check(
        &format!("{name} scale_channels gx"),
        &be.download(&sx),
        &r.download(&tx),
        U32,
    );
    check(
        &format!("{name} scale_channels gw"),
        &be.download(&sw),
        &r.download(&tw),
        4.0 * 100.0 * U32,
    );
    check(
        &format!("{name} channel_sum"),
        &be.download(&be.channel_sum(&gt)),
        &r.download(&r.channel_sum(&rg)),
        4.0 * 100.0 * U32,
    );
    let cat = be.concat_channels(&xt, &gt);
    check(
        &format!("{name} concat"),
        &be.download(&cat),
        &r.download(&r.concat_channels(&rx, &rg)),
        0.0,
    );
    check(
        &format!("{name} slice"),
        &be.download(&be.slice_channels(&cat, 2, 5)),
        &r.download(&r.slice_channels(&r.concat_channels(&rx, &rg), 2, 5)),
        0.0,
    );
    // Reductions.
    let (m, s) = be.mean_std(&xt);
    let (rm, rs) = r.mean_std(&rx);
    assert!(
        (m - rm).abs() <= 1e-6 && (s - rs).abs() <= 1e-6 * rs,
        "{name} mean_std"
    );
    assert!(be.all_finite(&xt));
    let mut bad = x.clone();
    bad[77] = f32::INFINITY;
    let badt = be.upload(&shape, &bad, f32_);
    assert!(!be.all_finite(&badt), "{name}: inf not found");
    // Several tensors at once: the one bad value in the last of three is found.
    assert!(be.all_finite_each(&[&xt, &xt]));
    assert!(
        !be.all_finite_each(&[&xt, &xt, &badt]),
        "{name}: inf not found among three"
    );
    assert!(be.all_finite_each(&[]));
    // Checks read per pass: 70 of them (more than one GPU counter chunk of 64), the bad tensor
    // in checks 3 and 66, a complex NaN in check 5; the answers come back in order, whether
    // the backend gave them at once or not.
    let mut bad_c = vec![0.5f32; 2 * 6];
    bad_c[7] = f32::NAN;
    let bad_ct = be.upload_complex(&[1, 1, 6], &bad_c, f32_);
    assert!(
        !be.all_finite_complex(&bad_ct),
        "{name}: complex NaN not found"
    );
    assert!(be.all_finite_complex(&be.upload_complex(&[1, 1, 6], &[0.5; 12], f32_)));
    // fp16 storage: 70000 rounds to inf on upload, and is found.
    let mut big_c = vec![0.5f32; 2 * 6];
    big_c[2] = 70000.0;
    assert!(!be.all_finite_complex(&be.upload_complex(&[1, 1, 6], &big_c, Format::Fp16)));
    assert!(
        be.download(&be.zeros(&[3, 5], Format::Fp16))
            .iter()
            .all(|&v| v == 0.0)
    );
    let mut checks = be.checks();
    let mut want = Vec::new();
    for i in 0..70 {
        let (real, complex): (Vec<&B::Tensor>, Vec<&B::CTensor>) = match i {
            3 | 66 => (vec![&xt, &badt], vec![]),
            5 => (vec![], vec![&bad_ct]),
            _ => (vec![&xt], vec![]),
        };
        let ok = !matches!(i, 3 | 5 | 66);
        if let Some(now) = be.check_finite(&mut checks, &real, &complex) {
            assert_eq!(now, ok, "{name}: check {i} answered at once");
        }
        want.push(ok);
    }
    assert_eq!(be.read_checks(checks), want, "{name}: checks read per pass");
    assert!(be.read_checks(be.checks()).is_empty());
    // Complex <-> real pairs and CP weights (2-D, rank 3).
    let (ci, co, r_, kept) = (4usize, 3usize, 3usize, [6usize, 4]);
    let lam = rand_vec(13, 2 * r_);
    let fa = rand_vec(14, 2 * ci * r_);
    let fb = rand_vec(15, 2 * co * r_);
    let m0 = rand_vec(16, 2 * kept[0] * r_);
    let m1 = rand_vec(17, 2 * kept[1] * r_);
    let lt = be.upload(&[r_, 2], &lam, f32_);
    let at = be.upload(&[ci, r_, 2], &fa, f32_);
    let bt = be.upload(&[co, r_, 2], &fb, f32_);
    let m0t = be.upload(&[kept[0], r_, 2], &m0, f32_);
    let m1t = be.upload(&[kept[1], r_, 2], &m1, f32_);
    let rl = r.upload(&[r_, 2], &widen(&lam), f64_);
    let ra = r.upload(&[ci, r_, 2], &widen(&fa), f64_);
    let rb = r.upload(&[co, r_, 2], &widen(&fb), f64_);
    let rm0 = r.upload(&[kept[0], r_, 2], &widen(&m0), f64_);
    let rm1 = r.upload(&[kept[1], r_, 2], &widen(&m1), f64_);
    let f = CpFactors {
        lambda: &lt,
        a: &at,
        b: &bt,
        modes: vec![&m0t, &m1t],
    };
    let rf = CpFactors {
        lambda: &rl,
        a: &ra,
        b: &rb,
        modes: vec![&rm0, &rm1],
    };
    let w = be.cp_weight(&f, f32_);
    check(
        &format!("{name} cp_weight"),
        &be.download_complex(&w),
        &r.download_complex(&r.cp_weight(&rf, f64_)),
        8.0 * U32,
    );
    let gw = rand_vec(18, 2 * ci * co * kept[0] * kept[1]);
    let mut wshape = vec![ci, co];
    wshape.extend(kept);
    let got = be.cp_weight_backward(&f, &be.upload_complex(&wshape, &gw, f32_));
    let want = r.cp_weight_backward(&rf, &r.upload_complex(&wshape, &widen(&gw), f64_));
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        check(
            &format!("{name} cp_weight_backward factor {i}"),
            &be.download(g),
            &r.download(w),
            8.0 * U32,
        );
    }
    let pairs = be.to_real(&w, f32_);
    assert_eq!(be.shape(&pairs), &[ci, co, kept[0], kept[1], 2]);
    assert_eq!(
        be.download(&pairs),
        be.download_complex(&be.to_complex(&pairs, f32_))
    );
    // Adam: the same f32 operations as the reference, so bit for bit.
    let n = 1000;
    let (p0, g0) = (rand_vec(19, n), rand_vec(20, n));
    let (m0, v0): (Vec<f32>, Vec<f32>) = (
        rand_vec(21, n),
        rand_vec(22, n).iter().map(|v| v * v).collect(),
    );
    for (decoupled, coupled) in [(true, false), (false, true), (false, false)] {
        let s = AdamScalars {
            step_size: 1e-3 / (1.0 - 0.9f64.powi(3)),
            bc2_sqrt: (1.0 - 0.999f64.powi(3)).sqrt(),
            eps: 1e-8,
            one_minus_b1: 0.1,
            b2: 0.999,
            one_minus_b2: 1.0 - 0.999,
            wd: 0.01,
            decay: 1.0 - 1e-5,
            decoupled,
            coupled,
        };
        let (mut pt, gt) = (be.upload(&[n], &p0, f32_), be.upload(&[n], &g0, f32_));
        let (mut mt, mut vt) = (be.upload(&[n], &m0, f32_), be.upload(&[n], &v0, f32_));
        be.adam_update(&mut pt, &gt, &mut mt, &mut vt, &s);
        let (mut p, mut m, mut v) = (p0.clone(), m0.clone(), v0.clone());
        adam_slice(&mut p, &g0, &mut m, &mut v, &s);
        let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(&be.download(&pt)),
            bits(&p),
            "{name} adam p ({decoupled}, {coupled})"
        );
        assert_eq!(bits(&be.download(&mt)), bits(&m), "{name} adam m");
        assert_eq!(bits(&be.download(&vt)), bits(&v), "{name} adam v");
    }

    // Relative L2 and H1 losses and their scaled gradients (f64 sums; the gradient rounded to
    // f32 once, then scaled by a power of two, exactly). H1 differences run along every grid axis
    // (1-D to 3-D, two channels, extents 2 and odd). Sample 1 is predicted perfectly: no gradient.
    let batch = 3usize;
    let scale = 256.0f32;
    for (kind, grid) in [
        (LossKind::L2, vec![7usize, 100]),
        (LossKind::H1, vec![50]),
        (LossKind::H1, vec![7, 2, 5]),
        (LossKind::H1, vec![12, 9]),
    ] {
        let mut shape = vec![batch, 2];
        shape.extend(&grid);
        let n: usize = shape.iter().product();
        let len = n / batch;
        let y = rand_vec(23, n);
        let mut p: Vec<f32> = y
            .iter()
            .zip(rand_vec(24, n))
            .map(|(a, b)| a + 0.1 * b)
            .collect();
        p[len..2 * len].copy_from_slice(&y[len..2 * len]);
        let (pt, yt) = (be.upload(&shape, &p, f32_), be.upload(&shape, &y, f32_));
        let (loss, g) = match kind {
            LossKind::L2 => be.rel_l2_loss(&pt, &yt, scale),
            LossKind::H1 => be.h1_loss(&pt, &yt, scale),
        };
        let (rloss, rg) = kind.eval(&widen(&p), &widen(&y), batch, &grid);
        let label = format!("{name} {kind:?} on {grid:?}");
        assert!(
            (loss - rloss).abs() <= 1e-12 * rloss,
            "{label}: loss {loss} vs {rloss}"
        );
        let rg: Vec<f64> = rg.iter().map(|v| v * scale as f64).collect();
        let g = be.download(&g);
        check(&format!("{label}: gradient"), &g, &rg, 2.0 * U32);
        assert!(g[len..2 * len].iter().all(|&v| v == 0.0), "{label}");
    }
}

/// Low storage formats: values are rounded to nearest even, as `precision::round`.
fn storage_rounds_like_reference<B: Backend<T = f32>>(be: &B) {
    let x: Vec<f32> = rand_vec(30, 4096).iter().map(|v| v * 70000.0).collect();
    for fmt in [Format::Fp16, Format::Bf16] {
        let got = be.download(&be.upload(&[4096], &x, fmt));
        let cast = be.download(&be.cast(&be.upload(&[4096], &x, Format::Fp32), fmt));
        for ((g, c), v) in got.iter().zip(&cast).zip(&x) {
            let want = round(*v as f64, fmt);
            assert!(
                (*g as f64 == want || (g.is_infinite() && want.is_infinite()))
                    && g.to_bits() == c.to_bits(),
                "{}: {v} in {fmt:?}: upload {g}, cast {c}, reference {want}",
                be.name()
            );
        }
    }
}

fn small_model(factorization: Factorization) -> Fno {
    Fno::new(FnoConfig {
        factorization,
        ..FnoConfig::tiny()
    })
    .unwrap()
}

/// One step of `model` with weights `host` in f64 throughout (`Policy::exact`, tanh
/// stabilizer), the reference the backends are compared against: (relative L2 loss, output,
/// gradients).
fn reference_step(
    model: &Fno,
    host: &Params<f32>,
    x: &[f32],
    y: &[f32],
    shape: &[usize],
) -> (f64, Vec<f64>, Params<f64>) {
    let r = Cpu::<f64>::new();
    let exact = Policy {
        stabilizer: Stabilizer::Tanh,
        ..Policy::exact()
    };
    let w64 = Resident::upload(&r, &host.cast::<f64>());
    let (out, cache) = model
        .forward(&r, &w64, &r.upload(shape, &widen(x), Format::Fp64), &exact)
        .unwrap();
    let out = r.download(&out);
    let (loss, g) = mpno::fno::loss::rel_l2(&out, &widen(y), shape[0]);
    let grads = model
        .backward(&r, &w64, cache, &r.upload(shape, &g, Format::Fp64), &exact)
        .unwrap();
    (loss, out, w64.to_params(&r, &grads))
}

/// A whole training step (forward, relative L2, backward, AdamW) against the f64 reference:
/// loss, every gradient and the updated weights.
fn training_step_matches_reference<B: Backend<T = f32>>(be: &B) {
    for fact in [Factorization::Dense, Factorization::Cp { rank: 0.5 }] {
        let model = small_model(fact);
        let host = model.init::<f32>(3);
        let (batch, n) = (2usize, 16usize);
        let x = rand_vec(40, batch * n * n);
        let y = rand_vec(41, batch * n * n);
        let shape = [batch, 1, n, n];
        let policy = Policy {
            stabilizer: Stabilizer::Tanh,
            ..Policy::full()
        };
        let step = |lr: f64| {
            let w = Resident::upload(be, &host);
            let (out, cache) = model
                .forward(be, &w, &be.upload(&shape, &x, Format::Fp32), &policy)
                .unwrap();
            // The loss on the backend, as the trainer computes it.
            let (loss, g) = be.rel_l2_loss(&out, &be.upload(&shape, &y, Format::Fp32), 1.0);
            let grads = model.backward(be, &w, cache, &g, &policy).unwrap();
            let gh = w.to_params(be, &grads);
            let mut w = w;
            let mut adam = ResidentAdam::upload(be, Adam::new(OptimizerKind::AdamW, &host, 1e-4));
            adam.step(be, &mut w, &grads, lr);
            (loss, gh, w.download(be))
        };
        let (loss, grads, after) = step(1e-3);
        let (rloss, _, rgrads) = reference_step(&model, &host, &x, &y, &shape);
        let label = format!("{} step {fact:?}", be.name());
        assert!(
            (loss - rloss).abs() <= 1e-5 * rloss,
            "{label}: loss {loss} vs {rloss}"
        );
        for (g, w) in grads.list.iter().zip(&rgrads.list) {
            // Depth: ~10 ops in sequence, each with sums of up to 2 * 16 * 16 terms.
            check(&format!("{label} grad {}", g.name), &g.data, &w.data, 2e-4);
        }
        // AdamW moves each weight by about lr: the updated weights agree to lr * (grad error).
        let moved: f64 = after
            .list
            .iter()
            .zip(&host.list)
            .flat_map(|(a, b)| {
                a.data
                    .iter()
                    .zip(&b.data)
                    .map(|(x, y)| (x - y).abs() as f64)
            })
            .fold(0.0, f64::max);
        assert!(
            moved > 1e-4 && moved < 2e-3,
            "{label}: largest AdamW move {moved}"
        );
    }
}

#[test]
fn cpu_f32_ops_match_the_f64_reference() {
    ops_match_reference(&Cpu::<f32>::new());
}

#[test]
fn cuda_ops_match_the_f64_reference() {
    if let Some(be) = cuda() {
        ops_match_reference(&be);
    }
}

#[test]
fn cpu_storage_rounds_like_the_reference() {
    storage_rounds_like_reference(&Cpu::<f32>::new());
}

#[test]
fn cuda_storage_rounds_like_the_reference() {
    if let Some(be) = cuda() {
        storage_rounds_like_reference(&be);
    }
}

#[test]
fn cpu_f32_training_step_matches_the_f64_reference() {
    training_step_matches_reference(&Cpu::<f32>::new());
}

#[test]
fn cuda_training_step_matches_the_f64_reference() {
    if let Some(be) = cuda() {
        training_step_matches_reference(&be);
    }
}

/// How `be`'s GEMMs in `fmt` accumulate: the CPU rounds every fp32 addition to nearest; cuBLAS
/// runs fp16/bf16 GEMMs on tensor cores, whose truncating block FMAs have their own bound
/// (docs/bounds.md, "Tensor-core accumulation").
fn accumulation<B: Backend>(be: &B, fmt: Format) -> Accumulation {
    if be.name() == "cuda" {
        Accumulation::on_gpu(fmt)
    } else {
        Accumulation::Nearest
    }
}

/// The spectral contraction and both its gradients, in both forms (standard, Gauss) and in
/// fp32, fp16 and bf16: every output's error against the exact f64 sum of the unrounded
/// operands lies under its proven worst-case bound (`bounds::contraction_precision`,
/// docs/bounds.md "Spectral contraction"; operands rounded to the format, exact products, fp32
/// sums, the result rounded to the format). On the GPU this checks cuBLAS's tensor cores
/// against the tensor-core accumulation model of the bound. Returns the largest error / bound.
fn contraction_within_bound<B: Backend<T = f32>>(be: &B) -> f64 {
    let (b, co, kk) = (2usize, 3usize, [4usize, 2]);
    let k: usize = kk.iter().product();
    let mut worst = 0.0f64;
    for ci in [1usize, 5, 64, 257] {
        let shape = |lead: [usize; 2]| [lead[0], lead[1], kk[0], kk[1]];
        let x = rand_vec(60 + ci as u64, 2 * b * ci * k);
        let w = rand_vec(61 + ci as u64, 2 * ci * co * k);
        let g = rand_vec(62 + ci as u64, 2 * b * co * k);
        let at = |v: &[f32], i: usize| (v[2 * i] as f64, v[2 * i + 1] as f64);
        let conj = |(re, im): (f64, f64)| (re, -im);
        for fmt in [Format::Fp32, Format::Fp16, Format::Bf16] {
            for form in [ContractForm::Standard, ContractForm::Gauss] {
                let up = |v: &[f32], s: [usize; 4]| be.upload_complex(&s, v, Format::Fp32);
                let (xt, wt, gt) = (
                    up(&x, shape([b, ci])),
                    up(&w, shape([ci, co])),
                    up(&g, shape([b, co])),
                );
                let y = be.download_complex(&be.contract(&xt, &wt, fmt, form));
                let (gx, gw) = be.contract_backward(&xt, &wt, &gt, fmt, form);
                let (gx, gw) = (be.download_complex(&gx), be.download_complex(&gw));
                // (what, result, output count, terms of output `o` as (left, right) pairs)
                type Terms<'a> = Box<dyn Fn(usize) -> Vec<((f64, f64), (f64, f64))> + 'a>;
                let cases: [(&str, &[f32], usize, Terms); 3] = [
                    // y[bb, oo, m] = sum_i x[bb, i, m] w[i, oo, m]
                    (
                        "y",
                        &y,
                        b * co * k,
                        Box::new(|out| {
                            let (bb, oo, m) = (out / (co * k), out / k % co, out % k);
                            (0..ci)
                                .map(|i| {
                                    (at(&x, (bb * ci + i) * k + m), at(&w, (i * co + oo) * k + m))
                                })
                                .collect()
                        }),
                    ),
                    // gx[bb, i, m] = sum_o g[bb, o, m] conj(w[i, o, m])
                    (
                        "gx",
                        &gx,
                        b * ci * k,
                        Box::new(|out| {
                            let (bb, i, m) = (out / (ci * k), out / k % ci, out % k);
                            (0..co)
                                .map(|o| {
                                    (
                                        at(&g, (bb * co + o) * k + m),
                                        conj(at(&w, (i * co + o) * k + m)),
                                    )
                                })
                                .collect()
                        }),
                    ),
                    // gw[i, oo, m] = sum_b conj(x[b, i, m]) g[b, oo, m]
                    (
                        "gw",
                        &gw,
                        ci * co * k,
                        Box::new(|out| {
                            let (i, oo, m) = (out / (co * k), out / k % co, out % k);
                            (0..b)
                                .map(|bb| {
                                    (
                                        conj(at(&x, (bb * ci + i) * k + m)),
                                        at(&g, (bb * co + oo) * k + m),
                                    )
                                })
                                .collect()
                        }),
                    ),
                ];
                for (what, got, outputs, terms) in cases {
                    assert_eq!(got.len(), 2 * outputs, "{what} length");
                    for out in 0..outputs {
                        let t = terms(out);
                        let (mut re, mut im) = (0.0f64, 0.0f64);
                        for &((a, bb), (c, d)) in &t {
                            re += a * c - bb * d;
                            im += a * d + bb * c;
                        }
                        let bound = contraction_precision_on(
                            fmt,
                            form,
                            accumulation(be, fmt),
                            &ContractionSums::of(t),
                        )
                        .unwrap_or_else(|e| panic!("{what} {fmt} {form}: {e}"));
                        let err = (got[2 * out] as f64 - re).hypot(got[2 * out + 1] as f64 - im);
                        assert!(
                            err <= bound,
                            "{} {what} {fmt} {form} n_in {ci} output {out}: error {err:e} > bound {bound:e}",
                            be.name()
                        );
                        worst = worst.max(err / bound);
                    }
                }
            }
        }
    }
    eprintln!(
        "{}: contraction, gradients, both forms: largest error / bound {worst:.3}",
        be.name()
    );
    worst
}

#[test]
fn cpu_contraction_lies_under_its_bound() {
    let worst = contraction_within_bound(&Cpu::<f32>::new());
    assert!(
        worst > 0.0,
        "no error at all: the formats were not in effect"
    );
}

#[test]
fn cuda_contraction_lies_under_its_bound() {
    if let Some(be) = cuda() {
        contraction_within_bound(&be);
    }
}

/// The GEMM spectral transform in fp16 and bf16 on grids that are not powers of two (cuFFT's
/// half precision refuses them): every kept coefficient of the forward transform within model
/// G's proven bound (bounds::gemm_precision, docs/bounds.md) of the f64 transform of the
/// unrounded input. On the GPU this checks cuBLAS's tensor cores against model G with
/// tensor-core accumulation.
/// Returns the largest error / bound.
fn gemm_transform_within_model_g<B: Backend<T = f32>>(be: &B) -> f64 {
    let r = Cpu::<f64>::new();
    let mut worst = 0.0f64;
    for (grid, modes) in [
        (vec![100usize, 96usize], vec![16usize, 16usize]),
        (vec![30], vec![7]),
    ] {
        let lines = 4usize;
        let shape = [vec![2, lines / 2], grid.clone()].concat();
        let pts: usize = grid.iter().product();
        let nk: usize = Modes(modes.clone()).kept_shape().iter().product();
        let x = rand_vec(70 + pts as u64, lines * pts);
        let opt = |format| SpectralForward {
            scale: 1.0 / pts as f64,
            hermitian: false,
            format,
            transform: SpectralTransform::Gemm,
        };
        let m = Modes(modes.clone());
        let want = r.download_complex(&r.rfft_modes(
            &r.upload(&shape, &widen(&x), Format::Fp64),
            &m,
            opt(Format::Fp64),
        ));
        for fmt in [Format::Fp16, Format::Bf16] {
            let got = be.download_complex(&be.rfft_modes(
                &be.upload(&shape, &x, Format::Fp32),
                &m,
                opt(fmt),
            ));
            for l in 0..lines {
                let v = widen(&x[l * pts..][..pts]);
                let mean = v.iter().map(|t| t.abs()).sum::<f64>() / pts as f64;
                let mx = v.iter().fold(0.0f64, |a, t| a.max(t.abs()));
                let b = gemm_precision_on(&grid, fmt, accumulation(be, fmt), mean, mx).bound;
                for k in 0..nk {
                    let i = 2 * (l * nk + k);
                    let err = (got[i] as f64 - want[i]).hypot(got[i + 1] as f64 - want[i + 1]);
                    assert!(
                        err <= b,
                        "{} gemm {grid:?} {fmt} line {l} mode {k}: {err:e} > bound {b:e}",
                        be.name()
                    );
                    worst = worst.max(err / b);
                }
            }
        }
    }
    eprintln!(
        "{}: GEMM transform, fp16/bf16: largest error / model G bound {worst:.3}",
        be.name()
    );
    worst
}

#[test]
fn cpu_gemm_transform_lies_under_model_g() {
    let worst = gemm_transform_within_model_g(&Cpu::<f32>::new());
    assert!(
        worst > 0.0,
        "no error at all: the formats were not in effect"
    );
}

#[test]
fn cuda_gemm_transform_lies_under_model_g() {
    if let Some(be) = cuda() {
        gemm_transform_within_model_g(&be);
    }
}

/// Relative errors against the f64 reference of one step of the small model with the spectral
/// block in fp16 (tanh stabilizer) on `be`: (forward output, all parameter gradients together).
/// The loss gradient is scaled by 2^10 on the way back (as the trainer's loss scale) so that the
/// fp16 backward does not underflow, and divided after.
fn step_errors<B: Backend<T = f32>>(be: &B, half: &Policy) -> (f64, f64) {
    let model = small_model(Factorization::Dense);
    let host = model.init::<f32>(5);
    let (batch, n) = (4usize, 32usize);
    let x = rand_vec(50, batch * n * n);
    let y = rand_vec(51, batch * n * n);
    let shape = [batch, 1, n, n];
    let scale = 1024.0f32;
    let w = Resident::upload(be, &host);
    let (out, cache) = model
        .forward(be, &w, &be.upload(&shape, &x, Format::Fp32), half)
        .unwrap();
    let (_, g) = be.rel_l2_loss(&out, &be.upload(&shape, &y, Format::Fp32), scale);
    let grads = model.backward(be, &w, cache, &g, half).unwrap();
    let grads: Vec<f32> = w
        .to_params(be, &grads)
        .list
        .iter()
        .flat_map(|p| p.data.iter().map(|v| v / scale))
        .collect();
    let (_, out64, g64) = reference_step(&model, &host, &x, &y, &shape);
    let g64: Vec<f64> = g64.list.iter().flat_map(|p| p.data.clone()).collect();
    (rel_err(&be.download(&out), &out64), rel_err(&grads, &g64))
}

/// The spectral block in fp16 with the tanh stabilizer.
fn fp16_block() -> Policy {
    Policy::half_block(Format::Fp16, Stabilizer::Tanh)
}

/// The CPU's emulated fp16 step (model III arithmetic in the spectral block): errors below
/// fp16's unit roundoff times a small depth factor, and well above the fp32 step's (so fp16 is
/// really in effect). The GPU test below compares against these.
#[test]
fn cpu_fp16_step_errors_are_of_fp16_order() {
    let cpu = Cpu::<f32>::new();
    let (ef, eg) = step_errors(&cpu, &fp16_block());
    let full = Policy {
        stabilizer: Stabilizer::Tanh,
        ..Policy::full()
    };
    let (ff, fg) = step_errors(&cpu, &full);
    eprintln!(
        "CPU step errors: fp16 block output {ef:.3e}, gradients {eg:.3e}; fp32 output {ff:.3e}, gradients {fg:.3e}"
    );
    let u = 2f64.powi(-11);
    for (what, e, e32) in [("output", ef, ff), ("gradients", eg, fg)] {
        assert!(
            e > 4.0 * e32 && e < 32.0 * u,
            "{what}: fp16 relative error {e:.3e} vs fp32 {e32:.3e} (u = {u:.3e})"
        );
    }
}

/// fp16 spectral stages on the GPU (cuFFT half arithmetic, fp16 contraction with fp32
/// accumulation) against the CPU's exact emulation of fp16 arithmetic (model III), forward and
/// backward: both errors against f64 are of the same order, so the GPU's lies within a small
/// multiple of the emulated one.
#[test]
fn cuda_fp16_step_lies_within_the_emulated_error() {
    let Some(be) = cuda() else { return };
    let (gf, gg) = step_errors(&be, &fp16_block());
    let (cf, cg) = step_errors(&Cpu::<f32>::new(), &fp16_block());
    eprintln!(
        "fp16 spectral block: output error GPU {gf:.3e}, CPU-emulated {cf:.3e}; gradients GPU {gg:.3e}, CPU-emulated {cg:.3e}"
    );
    // The spectral block's share of the output is small here (errors ~1e-6, not u = 4.9e-4):
    // the slack is a factor for another summation order (cuFFT's radix plan, cuBLAS's blocking)
    // plus u / 16, still an order below one fp16 rounding of the whole output.
    let u = 2f64.powi(-11);
    assert!(
        gf <= 8.0 * cf + u / 16.0,
        "GPU fp16 output error {gf:.3e} vs emulated {cf:.3e}"
    );
    assert!(
        gg <= 8.0 * cg + u / 16.0,
        "GPU fp16 gradient error {gg:.3e} vs emulated {cg:.3e}"
    );
}

#[cfg(feature = "cuda")]
#[test]
fn cuda_out_of_memory_names_requested_and_available_bytes() {
    let Some(_) = cuda() else { return };
    let gpu = mpno::backend::cuda::Gpu::new(0).unwrap();
    let free = gpu.info().unwrap().free_bytes;
    let e = gpu
        .alloc_bytes(free + (1 << 30))
        .err()
        .expect("allocation beyond free memory");
    let msg = e.to_string();
    assert!(
        msg.contains(&(free + (1 << 30)).to_string()) && msg.contains("available"),
        "{msg}"
    );
}

/// The cuFFT plan checks run on the host before any device call: half-precision sizes, compute
/// capability, batch, rank; and the formats the GPU stores.
#[cfg(feature = "cuda")]
#[test]
fn cufft_plan_keys_and_gpu_formats_are_checked_on_the_host() {
    use mpno::backend::cuda::{Dtype, FftKind, PlanKey};
    let key = |kind, dtype, dims: Vec<usize>, batch| PlanKey {
        kind,
        dtype,
        dims,
        batch,
    };
    assert!(
        key(FftKind::R2C, Dtype::F32, vec![100, 30], 4)
            .check((8, 0))
            .is_ok()
    );
    let e = key(FftKind::C2C, Dtype::F16, vec![128, 96], 4)
        .check((9, 0))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("96") && e.contains("128") && e.contains("power-of-two"),
        "{e}"
    );
    let e = key(FftKind::R2C, Dtype::F16, vec![64], 1)
        .check((5, 2))
        .unwrap_err()
        .to_string();
    assert!(e.contains("5.3"), "{e}");
    let e = key(FftKind::R2C, Dtype::Bf16, vec![64], 1)
        .check((7, 5))
        .unwrap_err()
        .to_string();
    assert!(e.contains("8.0"), "{e}");
    assert!(
        key(FftKind::R2C, Dtype::F32, vec![64], 0)
            .check((9, 0))
            .is_err()
    );
    assert!(
        key(FftKind::C2C, Dtype::F32, vec![4, 4, 4, 4], 1)
            .check((9, 0))
            .is_err()
    );
    assert_eq!(
        key(FftKind::R2C, Dtype::F32, vec![8, 6], 1).io_len(),
        (48, 32)
    );
    assert_eq!(
        key(FftKind::C2R, Dtype::F32, vec![8, 7], 1).io_len(),
        (32, 56)
    );
    assert_eq!(
        key(FftKind::C2C, Dtype::F32, vec![8, 6], 1).io_len(),
        (48, 48)
    );
    assert_eq!(Dtype::of(Format::Fp64).unwrap(), Dtype::F32);
    assert_eq!(Dtype::of(Format::Fp16).unwrap().bytes(), 2);
    assert_eq!(Dtype::of(Format::Bf16).unwrap().suffix(), "bf16");
    for f in [Format::E4m3, Format::E5m2, Format::Tf32] {
        let e = Dtype::of(f).unwrap_err().to_string();
        assert!(e.contains("CPU"), "{e}");
    }
}
