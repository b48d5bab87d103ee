//! Training infrastructure around the FNO: losses, Adam/AdamW/StepLR, data loading and
//! normalisation, batches, checkpoints, configs and metrics. Everything seeded and small.

use mpno::fno::checkpoint::Checkpoint;
use mpno::fno::config::{Formats, NormalizerKind, TrainConfig};
use mpno::fno::data::{self, Batches, DataSpec, FieldSet, UnitGaussianNormalizer};
use mpno::fno::loss::{self, LossKind};
use mpno::fno::metrics::{EpochRecord, MetricsLog, TestMetrics};
use mpno::fno::optim::{Adam, OptimizerKind, StepLr};
use mpno::fno::{Params, Scalar};
use mpno::pde::dataset::{DType, Data, Dataset, Tensor};
use mpno::precision::Format;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::path::{Path, PathBuf};

fn rng(seed: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed)
}

fn uniform(n: usize, seed: u64) -> Vec<f64> {
    let mut r = rng(seed);
    (0..n).map(|_| r.random::<f64>() * 2.0 - 1.0).collect()
}

// ---------------------------------------------------------------- losses

#[test]
fn losses_in_f32_agree_with_f64() {
    let (batch, grid) = (3, [6usize, 5]);
    let len = batch * 30;
    let p = uniform(len, 1);
    let y = uniform(len, 2);
    let p32: Vec<f32> = p.iter().map(|&x| x as f32).collect();
    let y32: Vec<f32> = y.iter().map(|&x| x as f32).collect();
    let p64: Vec<f64> = p32.iter().map(|&x| x as f64).collect();
    let y64: Vec<f64> = y32.iter().map(|&x| x as f64).collect();
    for kind in [LossKind::L2, LossKind::H1] {
        let (l32, g32) = kind.eval(&p32, &y32, batch, &grid);
        let (l64, g64) = kind.eval(&p64, &y64, batch, &grid);
        // Same inputs, accumulated in f64 both times: the losses are identical, the gradients
        // differ by one rounding to f32.
        assert_eq!(l32, l64, "{kind:?}");
        for (a, b) in g32.iter().zip(&g64) {
            assert!(
                (*a as f64 - b).abs() <= b.abs() * f32::EPSILON as f64,
                "{kind:?}"
            );
        }
    }
    // H1 >= L2 per sample is not a law, but H1 of a smooth error with a rough target is smaller
    // than its L2: check the dispatch really differs.
    let (l2, _) = LossKind::L2.eval(&p64, &y64, batch, &grid);
    let (h1, _) = LossKind::H1.eval(&p64, &y64, batch, &grid);
    assert_ne!(l2, h1);
    assert_eq!(loss::l2_per_sample(&p64, &y64, batch).len(), batch);
}

#[test]
fn rel_l2_gradient_matches_finite_differences_in_f64() {
    let (batch, len) = (4, 9);
    let p = uniform(batch * len, 3);
    let y = uniform(batch * len, 4);
    let (_, g) = loss::rel_l2(&p, &y, batch);
    let h1grid = [3usize, 3];
    let (_, gh) = loss::h1(&p, &y, batch, &h1grid);
    let eps = 1e-6;
    let (mut e2, mut n2, mut eh, mut nh) = (0.0, 0.0, 0.0, 0.0);
    for i in 0..p.len() {
        let mut q = p.clone();
        q[i] += eps;
        let (lp, hp) = (
            loss::rel_l2(&q, &y, batch).0,
            loss::h1(&q, &y, batch, &h1grid).0,
        );
        q[i] -= 2.0 * eps;
        let (lm, hm) = (
            loss::rel_l2(&q, &y, batch).0,
            loss::h1(&q, &y, batch, &h1grid).0,
        );
        let (d, dh) = ((lp - lm) / (2.0 * eps), (hp - hm) / (2.0 * eps));
        e2 += (d - g[i]).powi(2);
        n2 += d * d;
        eh += (dh - gh[i]).powi(2);
        nh += dh * dh;
    }
    assert!((e2 / n2).sqrt() < 1e-6, "L2 {}", (e2 / n2).sqrt());
    assert!((eh / nh).sqrt() < 1e-6, "H1 {}", (eh / nh).sqrt());
}

// ---------------------------------------------------------------- optimizers

fn params(seed: u64) -> Params<f64> {
    let mut p = Params::default();
    p.push("a.weight", vec![2, 3], uniform(6, seed));
    p.push("b.bias", vec![4], uniform(4, seed + 1));
    p
}

/// torch.optim.Adam / AdamW written out in the textbook form of their documentation
/// (m_hat / (sqrt(v_hat) + eps)), in f64.
#[allow(clippy::too_many_arguments)]
fn reference(
    decoupled: bool,
    p: &mut [f64],
    m: &mut [f64],
    v: &mut [f64],
    g: &[f64],
    t: i32,
    lr: f64,
    wd: f64,
) {
    let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8);
    for i in 0..p.len() {
        let mut gi = g[i];
        if decoupled {
            p[i] -= lr * wd * p[i];
        } else {
            gi += wd * p[i];
        }
        m[i] = b1 * m[i] + (1.0 - b1) * gi;
        v[i] = b2 * v[i] + (1.0 - b2) * gi * gi;
        let mh = m[i] / (1.0 - b1.powi(t));
        let vh = v[i] / (1.0 - b2.powi(t));
        p[i] -= lr * mh / (vh.sqrt() + eps);
    }
}

#[test]
fn adam_and_adamw_follow_pytorch_over_several_steps() {
    for kind in [OptimizerKind::Adam, OptimizerKind::AdamW] {
        let wd = 0.05;
        let mut p = params(10);
        let mut opt = Adam::new(kind, &p, wd);
        let mut rp: Vec<Vec<f64>> = p.list.iter().map(|x| x.data.clone()).collect();
        let mut rm: Vec<Vec<f64>> = rp.iter().map(|x| vec![0.0; x.len()]).collect();
        let mut rv = rm.clone();
        let sched = StepLr::new(1e-2, 2, 0.5);
        for step in 0..6 {
            let mut g = p.zeros_like();
            for (k, q) in g.list.iter_mut().enumerate() {
                q.data = uniform(q.data.len(), 100 + 10 * step + k as u64);
            }
            let lr = sched.lr_at(step as usize);
            opt.step(&mut p, &g, lr);
            for k in 0..2 {
                reference(
                    kind == OptimizerKind::AdamW,
                    &mut rp[k],
                    &mut rm[k],
                    &mut rv[k],
                    &g.list[k].data,
                    step as i32 + 1,
                    lr,
                    wd,
                );
            }
        }
        assert_eq!(opt.step, 6);
        for k in 0..2 {
            for (a, b) in p.list[k].data.iter().zip(&rp[k]) {
                assert!((a - b).abs() <= 1e-13, "{kind:?}: {a} vs {b}");
            }
            for (a, b) in opt.m.list[k].data.iter().zip(&rm[k]) {
                assert!((a - b).abs() <= 1e-15, "{kind:?} m");
            }
            for (a, b) in opt.v.list[k].data.iter().zip(&rv[k]) {
                assert!((a - b).abs() <= 1e-15, "{kind:?} v");
            }
        }
    }
}

#[test]
fn adam_hand_computed_values() {
    // torch.optim.Adam([p], lr=0.1, weight_decay=0.5) on p = 1 with gradients 2 then -1:
    // step 1: g = 2 + 0.5 = 2.5, m = 0.25, v = 0.00625, m_hat = 2.5, v_hat = 6.25,
    //         p = 1 - 0.1 * 2.5 / (2.5 + 1e-8) = 0.9000000004
    // step 2: g = -1 + 0.5 * p1 = -0.5499999998, m = 0.9 * 0.25 + 0.1 g = 0.17,
    //         v = 0.999 * 0.00625 + 0.001 g^2, p = p1 - 0.1 m_hat / (sqrt(v_hat) + 1e-8).
    let mut p = Params::<f64>::default();
    p.push("p", vec![1], vec![1.0]);
    let mut opt = Adam::new(OptimizerKind::Adam, &p, 0.5);
    let mut g = p.zeros_like();
    g.list[0].data[0] = 2.0;
    opt.step(&mut p, &g, 0.1);
    let p1 = 1.0 - 0.1 * 2.5 / (2.5 + 1e-8);
    assert!((p.list[0].data[0] - p1).abs() < 1e-15);
    g.list[0].data[0] = -1.0;
    opt.step(&mut p, &g, 0.1);
    let g2 = -1.0 + 0.5 * p1;
    let m = 0.9 * 0.25 + 0.1 * g2;
    let v = 0.999 * 0.00625 + 0.001 * g2 * g2;
    let mh = m / (1.0 - 0.81);
    let vh = v / (1.0 - 0.999f64 * 0.999);
    let p2 = p1 - 0.1 * mh / (vh.sqrt() + 1e-8);
    assert!(
        (p.list[0].data[0] - p2).abs() < 1e-15,
        "{}",
        p.list[0].data[0]
    );
    // AdamW(lr=0.1, weight_decay=0.5), one step on p = 1, g = 2:
    // p = 1 * (1 - 0.05) - 0.1 * 2 / (2 + 1e-8).
    let mut q = Params::<f64>::default();
    q.push("p", vec![1], vec![1.0]);
    let mut w = Adam::new(OptimizerKind::AdamW, &q, 0.5);
    let mut gq = q.zeros_like();
    gq.list[0].data[0] = 2.0;
    w.step(&mut q, &gq, 0.1);
    assert!((q.list[0].data[0] - (0.95 - 0.1 * 2.0 / (2.0 + 1e-8))).abs() < 1e-15);
}

#[test]
fn adam_in_f32_tracks_f64() {
    let p64 = params(20);
    let mut p32: Params<f32> = p64.cast();
    let mut p64 = p32.cast::<f64>();
    let mut o32 = Adam::new(OptimizerKind::AdamW, &p32, 1e-4);
    let mut o64 = Adam::new(OptimizerKind::AdamW, &p64, 1e-4);
    for step in 0..5 {
        let mut g = p64.zeros_like();
        for (k, q) in g.list.iter_mut().enumerate() {
            q.data = uniform(q.data.len(), 200 + 10 * step + k as u64)
                .iter()
                .map(|&x| x as f32 as f64)
                .collect();
        }
        let g32: Params<f32> = g.cast();
        o32.step(&mut p32, &g32, 1e-3);
        o64.step(&mut p64, &g, 1e-3);
    }
    for (a, b) in p32.list.iter().zip(&p64.list) {
        for (x, y) in a.data.iter().zip(&b.data) {
            // Each step moves a weight by about lr; 5 steps of f32 rounding (~1e-7 relative) on
            // values of order 1.
            assert!((*x as f64 - y).abs() < 1e-6);
        }
    }
}

#[test]
fn steplr_matches_pytorch_chain() {
    let s = StepLr::new(5e-3, 60, 0.5);
    assert_eq!(s.lr_at(0), 5e-3);
    assert_eq!(s.lr_at(59), 5e-3);
    assert_eq!(s.lr_at(60), 5e-3 * 0.5);
    assert_eq!(s.lr_at(179), 5e-3 * 0.5 * 0.5);
    assert_eq!(s.lr_at(180), 5e-3 * 0.5 * 0.5 * 0.5);
}

// ---------------------------------------------------------------- data

/// A darcy-like file: `a` (n, r, r) F32 and `u` (n, r, r) F32, plus an I64 tensor.
fn write_darcy(path: &Path, n: usize, r: usize) -> (Vec<f32>, Vec<f32>) {
    let a: Vec<f32> = uniform(n * r * r, 7).iter().map(|&x| x as f32).collect();
    let u: Vec<f32> = uniform(n * r * r, 8)
        .iter()
        .map(|&x| (x * 0.1 + 0.5) as f32)
        .collect();
    let mut d = Dataset::default();
    d.tensors.insert(
        "a".into(),
        Tensor {
            shape: vec![n, r, r],
            data: Data::F32(a.clone()),
        },
    );
    d.tensors.insert(
        "u".into(),
        Tensor {
            shape: vec![n, r, r],
            data: Data::F32(u.clone()),
        },
    );
    d.tensors
        .insert("iterations".into(), Tensor::from_i64(vec![n], vec![3; n]));
    d.metadata.insert("equation".into(), "darcy".into());
    d.save(path).unwrap();
    (a, u)
}

fn spec(file: &Path) -> DataSpec {
    DataSpec {
        file: file.to_path_buf(),
        input: "a".into(),
        output: "u".into(),
        dim: 2,
        n_train: 6,
        n_test: 3,
        test_file: None,
        resolution: Some(9),
        test_resolutions: vec![17, 5],
    }
}

#[test]
fn load_splits_subsamples_and_converts() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("darcy.safetensors");
    let (a, u) = write_darcy(&f, 10, 17);
    let tt = data::load::<f64>(&spec(&f)).unwrap();
    assert_eq!(tt.file_resolution, 17);
    assert_eq!(tt.train.len(), 6);
    assert_eq!(tt.train.x.grid, vec![9, 9]);
    assert_eq!(tt.train.x.channels, 1);
    // Training sample 2 at (i, j) = a[2, 2i, 2j].
    for i in 0..9 {
        for j in 0..9 {
            assert_eq!(
                tt.train.x.sample(2)[i * 9 + j],
                a[2 * 289 + 2 * i * 17 + 2 * j] as f64
            );
        }
    }
    // Test sets: training resolution first, then the others ascending.
    let res: Vec<usize> = tt.tests.iter().map(|t| t.resolution()).collect();
    assert_eq!(res, vec![9, 5, 17]);
    // Test samples are the last three, in order, at full resolution in tests[2].
    assert_eq!(
        tt.tests[2].y.sample(0),
        &u[7 * 289..8 * 289]
            .iter()
            .map(|&x| x as f64)
            .collect::<Vec<_>>()[..]
    );
    // f32 loading is exact.
    let t32 = data::load::<f32>(&spec(&f)).unwrap();
    assert_eq!(t32.tests[2].x.sample(2), &a[9 * 289..10 * 289]);
    // Agrees with the data set's own subsampling.
    let ref_t = Tensor {
        shape: vec![10, 17, 17],
        data: Data::F32(a.clone()),
    }
    .subsample(2, 4);
    assert_eq!(tt.tests[1].x.sample(0), &ref_t.to_f64()[7 * 25..8 * 25]);
}

#[test]
fn load_errors_name_field_file_and_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("darcy.safetensors");
    write_darcy(&f, 10, 17);
    let msg = |s: DataSpec| format!("{:#}", data::load::<f32>(&s).unwrap_err());

    let mut s = spec(&dir.path().join("nope.safetensors"));
    s.n_train = 1;
    let m = msg(s);
    assert!(
        m.starts_with("data.file: no such file") && m.contains("nope.safetensors"),
        "{m}"
    );

    let mut s = spec(&f);
    s.input = "b".into();
    let m = msg(s);
    assert!(
        m.contains("data.input: no tensor 'b'") && m.contains("have: a, iterations, u"),
        "{m}"
    );

    let mut s = spec(&f);
    s.output = "iterations".into();
    let m = msg(s);
    assert!(m.contains("data.output") && m.contains("iterations"), "{m}");

    let mut s = spec(&f);
    s.n_train = 8;
    let m = msg(s);
    assert!(
        m.contains("data.n_train + data.n_test = 8 + 3 exceeds the 10 samples"),
        "{m}"
    );

    let mut s = spec(&f);
    s.resolution = Some(7);
    let m = msg(s);
    assert!(m.starts_with("data.resolution: 7 points"), "{m}");

    let mut s = spec(&f);
    s.test_resolutions = vec![33];
    let m = msg(s);
    assert!(m.starts_with("data.test_resolutions: 33 points"), "{m}");

    let mut s = spec(&f);
    s.test_file = Some(dir.path().join("test_missing.safetensors"));
    let m = msg(s);
    assert!(m.starts_with("data.test_file: no such file"), "{m}");
}

#[test]
fn separate_test_file_and_channels() {
    let dir = tempfile::tempdir().unwrap();
    let train = dir.path().join("train.safetensors");
    let test = dir.path().join("test.safetensors");
    // 1-D with two channel axes (2 x 3 = 6 channels): shape (n, 2, 3, r).
    for (path, n, seed) in [(&train, 5usize, 1u64), (&test, 4, 2)] {
        let mut d = Dataset::default();
        for name in ["x", "y"] {
            d.tensors.insert(
                name.into(),
                Tensor::from_f64(vec![n, 2, 3, 8], uniform(n * 48, seed), DType::F64),
            );
        }
        d.save(path).unwrap();
    }
    let s = DataSpec {
        file: train,
        input: "x".into(),
        output: "y".into(),
        dim: 1,
        n_train: 5,
        n_test: 2,
        test_file: Some(test),
        resolution: Some(4),
        test_resolutions: vec![8],
    };
    let tt = data::load::<f64>(&s).unwrap();
    assert_eq!(tt.train.x.channels, 6);
    assert_eq!(tt.train.x.grid, vec![4]);
    assert_eq!(tt.tests[0].len(), 2);
    // The first test sample of the test file, channel 5, at full resolution.
    let want = uniform(4 * 48, 2);
    assert_eq!(tt.tests[1].x.sample(0), &want[0..48]);
    assert_eq!(tt.tests[0].x.sample(1)[5 * 4 + 1], want[48 + 5 * 8 + 2]);
}

#[test]
fn unit_gaussian_normalizer() {
    let n = 50;
    let f = FieldSet {
        n,
        channels: 1,
        grid: vec![4],
        data: uniform(n * 4, 9)
            .iter()
            .enumerate()
            .map(|(i, &x)| x * (1.0 + (i % 4) as f64) + (i % 4) as f64)
            .collect::<Vec<f64>>(),
    };
    for global in [false, true] {
        let norm = if global {
            UnitGaussianNormalizer::fit_global(&f)
        } else {
            UnitGaussianNormalizer::fit_pointwise(&f)
        };
        assert_eq!(norm.is_global(), global);
        assert_eq!(norm.eps, 1e-5);
        let mut z = f.data.clone();
        norm.encode(&mut z);
        // Encoded statistics: mean 0, population std = std / (std + eps) per point (or overall).
        let groups: Vec<Vec<usize>> = if global {
            vec![(0..n * 4).collect()]
        } else {
            (0..4)
                .map(|p| (0..n).map(|s| s * 4 + p).collect())
                .collect()
        };
        for (k, g) in groups.iter().enumerate() {
            let mean = g.iter().map(|&i| z[i]).sum::<f64>() / g.len() as f64;
            let var = g.iter().map(|&i| (z[i] - mean).powi(2)).sum::<f64>() / g.len() as f64;
            let sd = norm.std[k];
            assert!(mean.abs() < 1e-12);
            assert!((var.sqrt() - sd / (sd + 1e-5)).abs() < 1e-12);
            // Population std (neuraloperator: sqrt(E[x^2] - E[x]^2)).
            let xm = g.iter().map(|&i| f.data[i]).sum::<f64>() / g.len() as f64;
            let x2 = g.iter().map(|&i| f.data[i].powi(2)).sum::<f64>() / g.len() as f64;
            assert!((sd - (x2 - xm * xm).sqrt()).abs() < 1e-12);
        }
        let mut back = z.clone();
        norm.decode(&mut back);
        for (a, b) in back.iter().zip(&f.data) {
            assert!((a - b).abs() < 1e-12);
        }
        // decode_backward: d/dz of sum(w * decode(z)) = w * (std + eps).
        let w = uniform(8, 11);
        let mut g = w.clone();
        norm.decode_backward(&mut g);
        let eps = 1e-6;
        for i in 0..8 {
            let obj = |zz: &[f64]| {
                let mut d = zz.to_vec();
                norm.decode(&mut d);
                d.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>()
            };
            let mut zp = z[..8].to_vec();
            zp[i] += eps;
            let mut zm = z[..8].to_vec();
            zm[i] -= eps;
            let num = (obj(&zp) - obj(&zm)) / (2.0 * eps);
            assert!((num - g[i]).abs() < 1e-8 * (1.0 + num.abs()));
        }
        let t: std::collections::BTreeMap<String, Tensor> =
            norm.to_tensors("norm.y").into_iter().collect();
        assert_eq!(
            UnitGaussianNormalizer::from_tensors(&t, "norm.y").unwrap(),
            norm
        );
        assert!(
            format!(
                "{:#}",
                UnitGaussianNormalizer::from_tensors(&t, "norm.x").unwrap_err()
            )
            .contains("no tensor 'norm.x.mean'")
        );
    }
}

#[test]
fn batches_are_seeded_complete_and_resume_reproducibly() {
    let (n, bs) = (23, 5);
    let all: Vec<Vec<usize>> = Batches::new(n, bs, 42, 3).collect();
    assert_eq!(all.len(), Batches::per_epoch(n, bs));
    assert_eq!(
        all.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![5, 5, 5, 5, 3]
    );
    let mut flat: Vec<usize> = all.concat();
    assert_ne!(flat, (0..n).collect::<Vec<_>>(), "shuffled");
    flat.sort_unstable();
    assert_eq!(flat, (0..n).collect::<Vec<_>>(), "a permutation");
    // Same (seed, epoch): same order, whatever came before (a resumed run).
    let _ = Batches::new(n, bs, 42, 0).count();
    assert_eq!(Batches::new(n, bs, 42, 3).collect::<Vec<_>>(), all);
    assert_ne!(Batches::new(n, bs, 42, 4).collect::<Vec<_>>(), all);
    assert_ne!(Batches::new(n, bs, 43, 3).collect::<Vec<_>>(), all);
    assert_eq!(
        Batches::sequential(7, 3).collect::<Vec<_>>(),
        vec![vec![0, 1, 2], vec![3, 4, 5], vec![6]]
    );
    assert_eq!(Batches::new(n, bs, 1, 1).len(), 5);
    // Gather builds the batch in that order.
    let f = FieldSet {
        n: 4,
        channels: 1,
        grid: vec![2],
        data: vec![0.0f32, 1.0, 10.0, 11.0, 20.0, 21.0, 30.0, 31.0],
    };
    assert_eq!(f.gather(&[3, 1]), vec![30.0, 31.0, 10.0, 11.0]);
}

// ---------------------------------------------------------------- checkpoints

fn checkpoint<T: Scalar>() -> Checkpoint<T> {
    let p: Params<T> = params(30).cast();
    let mut opt = Adam::new(OptimizerKind::AdamW, &p, 1e-4);
    let mut pp = p.clone();
    let mut g = p.zeros_like();
    for q in &mut g.list {
        q.data = uniform(q.data.len(), 31)
            .iter()
            .map(|&x| T::from_f64(x))
            .collect();
    }
    opt.step(&mut pp, &g, 1e-3);
    opt.step(&mut pp, &g, 1e-3);
    let mut ck = Checkpoint::new(pp);
    ck.optimizer = Some(opt);
    ck.epoch = 7;
    ck.step = 70;
    ck.seed = u64::MAX - 3;
    ck.config = "[train]\nlr = 0.001\n".into();
    ck.metrics = "[{\"epoch\": 0}]".into();
    ck.extra.insert("loss_scale".into(), "32768".into());
    ck.tensors.insert(
        "normalizer.y.mean".into(),
        Tensor::from_f64(vec![2], vec![0.5, 0.25], DType::F64),
    );
    ck
}

#[test]
fn checkpoint_round_trips_bit_exactly_with_stored_dtypes() {
    let dir = tempfile::tempdir().unwrap();
    let p32 = dir.path().join("f32.safetensors");
    let p64 = dir.path().join("f64.safetensors");
    let c32 = checkpoint::<f32>();
    let c64 = checkpoint::<f64>();
    c32.save(&p32).unwrap();
    c64.save(&p64).unwrap();
    assert_eq!(Checkpoint::<f32>::load(&p32).unwrap(), c32);
    assert_eq!(Checkpoint::<f64>::load(&p64).unwrap(), c64);
    // The stored layout.
    let d32 = Dataset::load(&p32).unwrap();
    let d64 = Dataset::load(&p64).unwrap();
    for key in ["param.a.weight", "adam.m.a.weight", "adam.v.b.bias"] {
        assert_eq!(d32.get(key).unwrap().dtype(), DType::F32, "{key}");
        assert_eq!(d64.get(key).unwrap().dtype(), DType::F64, "{key}");
    }
    assert_eq!(d32.get("param.a.weight").unwrap().shape, vec![2, 3]);
    assert_eq!(d32.metadata["epoch"], "7");
    assert_eq!(d32.metadata["adam.step"], "2");
    assert_eq!(d32.metadata["optimizer"], "adamw");
    assert_eq!(d32.metadata["extra.loss_scale"], "32768");
    assert_eq!(d32.metadata["config"], "[train]\nlr = 0.001\n");
    // A checkpoint of the other scalar is refused with the reason.
    let e = format!("{:#}", Checkpoint::<f64>::load(&p32).unwrap_err());
    assert!(
        e.contains("stores F32 parameters") && e.contains("f64"),
        "{e}"
    );
    let e = format!(
        "{:#}",
        Checkpoint::<f32>::load(&dir.path().join("x")).unwrap_err()
    );
    assert!(e.contains("no such checkpoint"), "{e}");
    // Something that is not a checkpoint.
    let other = dir.path().join("data.safetensors");
    write_darcy(&other, 2, 4);
    let e = format!("{:#}", Checkpoint::<f32>::load(&other).unwrap_err());
    assert!(e.contains("not an mpno checkpoint"), "{e}");
}

#[test]
fn checkpoint_checks_names_and_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ck.safetensors");
    checkpoint::<f32>().save(&path).unwrap();
    let mut model: Params<f32> = params(1).cast();
    let ck = Checkpoint::restore(&path, &mut model).unwrap();
    assert_eq!(model, ck.params);

    let mut wrong = Params::<f32>::default();
    wrong.push("a.weight", vec![3, 2], vec![0.0; 6]);
    wrong.push("c.bias", vec![4], vec![0.0; 4]);
    let e = format!("{:#}", Checkpoint::restore(&path, &mut wrong).unwrap_err());
    assert!(e.contains("ck.safetensors"), "{e}");
    assert!(
        e.contains(
            "parameter 'a.weight' has shape [2, 3] in the checkpoint but [3, 2] in the model"
        ),
        "{e}"
    );
    assert!(e.contains("missing parameter 'c.bias'"), "{e}");
    assert!(
        e.contains("parameter 'b.bias' [4] is not in the model"),
        "{e}"
    );
    // The model was left as it was.
    assert_eq!(wrong.list[0].data, vec![0.0; 6]);

    // A file whose moments are missing.
    let mut d = Dataset::load(&path).unwrap();
    d.tensors.remove("adam.v.b.bias");
    let e = format!("{:#}", Checkpoint::<f32>::from_dataset(d).unwrap_err());
    assert!(e.contains("missing tensor 'adam.v.b.bias'"), "{e}");
    let mut d = Dataset::load(&path).unwrap();
    d.metadata.remove("optimizer");
    let e = format!("{:#}", Checkpoint::<f32>::from_dataset(d).unwrap_err());
    assert!(e.contains("metadata names no 'optimizer'"), "{e}");
    let mut d = Dataset::load(&path).unwrap();
    d.metadata
        .insert("param_order".into(), "[\"a.weight\"]".into());
    d.tensors.remove("adam.m.b.bias");
    d.tensors.remove("adam.v.b.bias");
    let e = format!("{:#}", Checkpoint::<f32>::from_dataset(d).unwrap_err());
    assert!(e.contains("'param.b.bias' belongs to no parameter"), "{e}");
    // Saving optimizer state that was made for other parameters is refused.
    let mut ck = checkpoint::<f32>();
    ck.params.list[1].name = "renamed".into();
    let e = format!("{:#}", ck.save(&path).unwrap_err());
    assert!(
        e.contains("optimizer state 'm' does not have the parameters'"),
        "{e}"
    );
}

#[test]
fn interrupted_save_leaves_the_previous_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("last.safetensors");
    let first = checkpoint::<f32>();
    first.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let mut second = first.clone();
    second.epoch = 8;
    assert!(second.save_impl(&path, true).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    let names: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(names, vec![path.clone()], "no temporary file left");
    second.save(&path).unwrap();
    assert_eq!(Checkpoint::<f32>::load(&path).unwrap().epoch, 8);
}

/// Least squares with a linear model y = W x, relative L2 loss, seeded batches and AdamW; a run
/// stopped after 2 epochs and resumed from its checkpoint ends bit-identical to an uninterrupted
/// one.
#[test]
fn resume_from_checkpoint_reproduces_the_run() {
    let (n, d_in, d_out, bs, seed) = (20usize, 3usize, 2usize, 6usize, 5u64);
    let x = uniform(n * d_in, 50);
    let w_true = uniform(d_in * d_out, 51);
    let y: Vec<f32> = (0..n)
        .flat_map(|s| {
            let w = &w_true;
            let x = &x;
            (0..d_out).map(move |o| {
                (0..d_in)
                    .map(|i| w[o * d_in + i] * x[s * d_in + i])
                    .sum::<f64>() as f32
            })
        })
        .collect();
    let x: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let init = || {
        let mut p = Params::<f32>::default();
        p.push("w", vec![d_out, d_in], vec![0.1; d_out * d_in]);
        p
    };
    let sched = StepLr::new(0.05, 2, 0.5);
    let run_epochs = |p: &mut Params<f32>, opt: &mut Adam<f32>, from: usize, to: usize| {
        let mut losses = Vec::new();
        for epoch in from..to {
            for b in Batches::new(n, bs, seed, epoch) {
                let xb: Vec<f32> = b
                    .iter()
                    .flat_map(|&s| x[s * d_in..(s + 1) * d_in].to_vec())
                    .collect();
                let yb: Vec<f32> = b
                    .iter()
                    .flat_map(|&s| y[s * d_out..(s + 1) * d_out].to_vec())
                    .collect();
                let w = &p.list[0].data;
                let mut pred = vec![0.0f32; b.len() * d_out];
                for s in 0..b.len() {
                    for o in 0..d_out {
                        pred[s * d_out + o] = (0..d_in)
                            .map(|i| w[o * d_in + i] * xb[s * d_in + i])
                            .sum::<f32>();
                    }
                }
                let (l, gp) = loss::rel_l2(&pred, &yb, b.len());
                losses.push(l);
                let mut g = p.zeros_like();
                for s in 0..b.len() {
                    for o in 0..d_out {
                        for i in 0..d_in {
                            g.list[0].data[o * d_in + i] += gp[s * d_out + o] * xb[s * d_in + i];
                        }
                    }
                }
                opt.step(p, &g, sched.lr_at(epoch));
            }
        }
        losses
    };
    let mut p = init();
    let mut opt = Adam::new(OptimizerKind::AdamW, &p, 1e-2);
    let full = run_epochs(&mut p, &mut opt, 0, 5);
    assert!(
        full.last().unwrap() < &(full[0] * 0.5),
        "it learns: {full:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ck.safetensors");
    let mut q = init();
    let mut o2 = Adam::new(OptimizerKind::AdamW, &q, 1e-2);
    let mut part = run_epochs(&mut q, &mut o2, 0, 2);
    let mut ck = Checkpoint::new(q);
    ck.optimizer = Some(o2);
    ck.epoch = 2;
    ck.seed = seed;
    ck.save(&path).unwrap();
    drop(ck);
    let mut q = init();
    let ck = Checkpoint::restore(&path, &mut q).unwrap();
    let mut o3 = ck.optimizer.unwrap();
    part.extend(run_epochs(&mut q, &mut o3, ck.epoch, 5));
    assert_eq!(part, full, "losses bit for bit");
    assert_eq!(q, p, "weights bit for bit");
    assert_eq!(o3, opt, "optimizer state bit for bit");
}

// ---------------------------------------------------------------- config

fn cfg_err(text: &str) -> (String, String) {
    let e = TrainConfig::from_toml(text).unwrap_err();
    let shown = e.to_string();
    assert!(shown.starts_with(&format!("{}: ", e.field)), "{shown}");
    (e.field, e.message)
}

#[test]
fn config_defaults_are_the_small_darcy_setup() {
    let c = TrainConfig::from_toml("[data]\nfile = \"d.safetensors\"\n").unwrap();
    assert_eq!(c.model.dim, 2);
    assert_eq!(c.model.width, 32);
    assert_eq!(c.model.modes, vec![12, 12]);
    assert_eq!(c.model.n_layers, 4);
    assert_eq!(c.train.lr, 5e-3);
    assert_eq!(c.data.input, "a");
    assert_eq!(c.data.output, "u");
    assert_eq!(c.precision.base(), Formats::FULL);
    assert_eq!(c.precision.initial_loss_scale(), 1.0);
    // The resolved TOML parses back to the same config; Display is the same text.
    let back = TrainConfig::from_toml(&c.to_toml()).unwrap();
    assert_eq!(back, c);
    assert_eq!(c.to_string(), c.to_toml());
}

#[test]
fn config_full_example_and_schedule() {
    let text = r#"
[data]
file = "d.safetensors"
n_train = 100
n_test = 20
resolution = 32
test_resolutions = [32, 64]

[model]
dim = 2
width = 16
modes = [8, 6]
factorization = "cp"
rank = 4

[train]
epochs = 30
optimizer = "adam"
loss = "h1"

[precision]
fwd_fft = "fp16"
contraction = "bf16"
stabilizer = "tanh"
loss_scale = "dynamic"
on_overflow = "skip"

[[precision.schedule]]
epoch = 10
policy = "mixed"

[[precision.schedule]]
epoch = 20
policy = "fp32/fp32/fp16/fp32"
"#;
    let c = TrainConfig::from_toml(text).unwrap();
    assert_eq!(c.model.modes, vec![8, 6]);
    assert_eq!(LossKind::from(c.train.loss), LossKind::H1);
    assert_eq!(OptimizerKind::from(c.train.optimizer), OptimizerKind::Adam);
    let p = &c.precision;
    assert_eq!(p.policy_at(0).fwd_fft, Format::Fp16);
    assert_eq!(p.policy_at(9).contraction, Format::Bf16);
    assert_eq!(p.policy_at(10), Formats::MIXED);
    assert_eq!(p.policy_at(19), Formats::MIXED);
    assert_eq!(p.policy_at(20).inv_fft, Format::Fp16);
    assert_eq!(p.policy_at(29).fwd_fft, Format::Fp32);
    assert_eq!(p.initial_loss_scale(), 65536.0);
    assert_eq!(p.stabilizer_param(), None);
    assert_eq!(TrainConfig::from_toml(&c.to_toml()).unwrap(), c);
}

#[test]
fn each_bad_config_names_its_field() {
    let base = "[data]\nfile = \"d.safetensors\"\n";
    let with = |extra: &str| format!("{base}{extra}");
    let cases: Vec<(String, &str, &str)> = vec![
        (
            with("[model]\nwidth = 0\n"),
            "model.width",
            "must be >= 1, got 0",
        ),
        (
            with("[model]\nn_layers = 0\n"),
            "model.n_layers",
            "must be >= 1, got 0",
        ),
        (
            with("[model]\ndim = 4\n"),
            "model.dim",
            "must be 1, 2 or 3, got 4",
        ),
        (
            with("[model]\nmodes = [12, 12, 12]\n"),
            "model.modes",
            "has 3 entries but model.dim is 2",
        ),
        (
            with("[model]\nmodes = [12, 0]\n"),
            "model.modes[1]",
            "must be >= 1",
        ),
        (
            "[data]\nfile = \"d\"\nresolution = 64\n[model]\nmodes = [40, 12]\n".into(),
            "model.modes[0]",
            "40 exceeds resolution/2 (2m frequencies kept on all axes but the last) = 32 for a \
             64-point grid",
        ),
        (
            "[data]\nfile = \"d\"\nresolution = 64\n[model]\nmodes = [12, 34]\n".into(),
            "model.modes[1]",
            "34 exceeds resolution/2 + 1 = 33 for a 64-point grid",
        ),
        (
            with("[model]\nfactorization = \"cp\"\nrank = 0\n"),
            "model.rank",
            "must be >= 1",
        ),
        (
            with("[model]\nmlp_expansion = -1.0\n"),
            "model.mlp_expansion",
            "must be > 0",
        ),
        (
            with("[model]\nwidht = 3\n"),
            "model.widht",
            "unknown field `widht`",
        ),
        (with("[model]\nwidth = \"big\"\n"), "model.width", "line 4"),
        (
            with("[model]\nskip = \"identity\"\n"),
            "model.skip",
            "unknown variant `identity`",
        ),
        (
            with("[modle]\nwidth = 3\n"),
            "modle",
            "unknown field `modle`",
        ),
        ("[model]\nwidth = 3\n".into(), "data.file", "required"),
        (with("n_test = 0\n"), "data.n_test", "must be >= 1, got 0"),
        (
            with("resolution = 64\nsubsample = 2\n"),
            "data.subsample",
            "not both",
        ),
        (
            with("test_resolutions = [64, 1]\n"),
            "data.test_resolutions[1]",
            "must be >= 2, got 1",
        ),
        (
            with("normalizer = \"minmax\"\n"),
            "data.normalizer",
            "unknown variant `minmax`",
        ),
        (
            with("[train]\nepochs = 0\n"),
            "train.epochs",
            "must be >= 1, got 0",
        ),
        (
            with("[train]\nbatch_size = 0\n"),
            "train.batch_size",
            "must be >= 1, got 0",
        ),
        (
            with("[train]\nlr = 0.0\n"),
            "train.lr",
            "must be > 0, got 0",
        ),
        (
            with("[train]\nweight_decay = -1.0\n"),
            "train.weight_decay",
            "must be >= 0",
        ),
        (
            with("[train]\noptimizer = \"sgd\"\n"),
            "train.optimizer",
            "unknown variant `sgd`",
        ),
        (
            with("[train]\nloss = \"l1\"\n"),
            "train.loss",
            "unknown variant `l1`",
        ),
        (
            with("[train]\nstep_size = 0\n"),
            "train.step_size",
            "must be >= 1, got 0",
        ),
        (with("[train]\ngamma = 0.0\n"), "train.gamma", "must be > 0"),
        (
            with("[precision]\nfwd_fft = \"fp12\"\n"),
            "precision.fwd_fft",
            "unknown format 'fp12'; allowed: a format (fp64",
        ),
        (
            with("[precision]\ncontraction = \"e4m3@rows\"\n"),
            "precision.contraction",
            "unknown scaling 'rows'; allowed: tensor, channel, mx (= mx32",
        ),
        (
            with("[precision]\ninv_fft = \"bf16@tensor\"\n"),
            "precision.inv_fft",
            "format 'bf16' cannot be scaled; scaled element formats: e4m3, e5m2",
        ),
        (
            with("[precision]\nfwd_fft = \"e5m2~stochastic\"\n"),
            "precision.fwd_fft",
            "unknown or repeated suffix '~stochastic'; allowed: ~sr",
        ),
        (
            with("[precision]\nmlp = \"e4m3@tensor\"\n"),
            "precision.mlp",
            "apply to the spectral stages (fwd_fft, contraction, inv_fft) only",
        ),
        (
            with("[precision]\nstabilizer = \"clip\"\n"),
            "precision.stabilizer_value",
            "required for stabilizer \"clip\"",
        ),
        (
            with("[precision]\nstabilizer = \"divide\"\n"),
            "precision.stabilizer_value",
            "required",
        ),
        (
            with("[precision]\nstabilizer = \"tanh\"\nstabilizer_value = 2.0\n"),
            "precision.stabilizer_value",
            "takes no value",
        ),
        (
            with("[precision]\nstabilizer = \"ksigma\"\nstabilizer_value = -3.0\n"),
            "precision.stabilizer_value",
            "must be > 0",
        ),
        (
            with("[precision]\nstabilizer = \"sigmoid\"\n"),
            "precision.stabilizer",
            "unknown variant `sigmoid`",
        ),
        (
            with("[precision]\nloss_scale = \"static\"\n"),
            "precision.loss_scale_value",
            "required",
        ),
        (
            with("[precision]\nloss_scale_value = 8.0\n"),
            "precision.loss_scale_value",
            "takes no value",
        ),
        (
            with("[precision]\non_overflow = \"ignore\"\n"),
            "precision.on_overflow",
            "unknown variant `ignore`",
        ),
        (
            with(
                "[train]\nepochs = 10\n[[precision.schedule]]\nepoch = 5\npolicy = \"half\"\n[[precision.schedule]]\nepoch = 10\npolicy = \"full\"\n",
            ),
            "precision.schedule[1].epoch",
            "10 is not before the end of training (train.epochs = 10)",
        ),
        (
            with(
                "[[precision.schedule]]\nepoch = 5\npolicy = \"half\"\n[[precision.schedule]]\nepoch = 5\npolicy = \"full\"\n",
            ),
            "precision.schedule[1].epoch",
            "must be greater than the previous entry's 5",
        ),
        (
            with("[[precision.schedule]]\nepoch = 5\npolicy = \"quarter\"\n"),
            "precision.schedule[0].policy",
            "unknown policy 'quarter'",
        ),
        (
            with("[[precision.schedule]]\nepoch = 5\npolicy = \"full\"\nformat = \"fp16\"\n"),
            "precision.schedule.format",
            "unknown field `format`",
        ),
    ];
    for (text, field, msg) in cases {
        let (f, m) = cfg_err(&text);
        assert_eq!(f, field, "{text}\n-> {f}: {m}");
        assert!(m.contains(msg), "{text}\n-> {f}: {m}\nwanted: {msg}");
    }
}

#[test]
fn config_checks_against_the_data_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("darcy.safetensors");
    write_darcy(&f, 10, 33);
    let file = f.display().to_string();
    let good = format!(
        "[data]\nfile = \"{file}\"\nn_train = 6\nn_test = 4\nsubsample = 2\ntest_resolutions = [33]\n[model]\nmodes = [8]\n"
    );
    let cfg_path = dir.path().join("run.toml");
    std::fs::write(&cfg_path, &good).unwrap();
    let c = TrainConfig::load(&cfg_path).unwrap();
    assert_eq!(c.data.resolution, Some(17));
    assert_eq!(c.data.subsample, None);
    assert_eq!(c.model.modes, vec![8, 8]);
    // The resolved config loads the data.
    let tt = data::load::<f32>(&c.data_spec()).unwrap();
    assert_eq!(tt.train.x.grid, vec![17, 17]);
    assert_eq!(tt.tests.len(), 2);
    let mut c2 = TrainConfig::from_toml(&good).unwrap();
    let info = c2.check_data().unwrap();
    assert_eq!(
        (
            info.samples,
            info.file_resolution,
            info.resolution,
            info.in_channels
        ),
        (10, 33, 17, 1)
    );

    let check = |text: String| {
        let mut c = TrainConfig::from_toml(&text).unwrap();
        let e = c.check_data().unwrap_err();
        (e.field, e.message)
    };
    let cases = vec![
        (
            good.replace(
                &file,
                &dir.path().join("missing.safetensors").display().to_string(),
            ),
            "data.file",
            "no such file",
        ),
        (
            good.replace("modes = [8]", "modes = [9]"),
            "model.modes[0]",
            "9 exceeds resolution/2 (2m frequencies kept on all axes but the last) = 8 for a \
             17-point grid",
        ),
        (
            good.replace("subsample = 2\n", "")
                .replace("modes = [8]", "modes = [17]"),
            "model.modes[0]",
            "17 exceeds resolution/2 (2m frequencies kept on all axes but the last) = 16 for a \
             33-point grid",
        ),
        (
            good.replace("n_train = 6", "n_train = 7"),
            "data.n_train",
            "data.n_train + data.n_test = 7 + 4 exceeds the 10 samples",
        ),
        (
            good.replace("subsample = 2", "input = \"b\""),
            "data.input",
            "no tensor 'b'",
        ),
        (
            good.replace("subsample = 2", "resolution = 20"),
            "data.resolution",
            "20 points per axis cannot be taken from the file's 33-point grid",
        ),
        (
            good.replace("[33]", "[20]"),
            "data.test_resolutions[0]",
            "20 points per axis",
        ),
        (
            good.replace("subsample = 2", "subsample = 2\nnormalizer = \"pointwise\""),
            "data.normalizer",
            "\"pointwise\" statistics",
        ),
        (
            good.replace("[model]", "[model]\nin_channels = 2"),
            "model.in_channels",
            "is 2 but data.input 'a' has 1 channel(s)",
        ),
        (
            good.replace("[model]\nmodes = [8]", "[model]\ndim = 3\nmodes = [4]"),
            "data.input",
            "model.dim = 3",
        ),
        (
            good.replace(
                "subsample = 2",
                "test_file = \"/nonexistent/t.safetensors\"",
            ),
            "data.test_file",
            "no such file /nonexistent/t.safetensors",
        ),
    ];
    for (text, field, msg) in cases {
        let (f, m) = check(text.clone());
        assert_eq!(f, field, "{text}\n-> {f}: {m}");
        assert!(m.contains(msg), "{text}\n-> {f}: {m}\nwanted: {msg}");
    }
    // load() names the config file in parse errors.
    std::fs::write(&cfg_path, "[data]\nfile = \"x\"\n[model]\nwidth = 0\n").unwrap();
    let e = TrainConfig::load(&cfg_path).unwrap_err();
    assert_eq!(e.field, "model.width");
    assert!(e.message.contains("run.toml"), "{e}");
    assert_eq!(c.data.normalizer, NormalizerKind::Global);
}

// ---------------------------------------------------------------- metrics

fn record(epoch: usize, loss: f64) -> EpochRecord {
    EpochRecord {
        epoch,
        train_loss: loss,
        test: vec![
            TestMetrics {
                resolution: 64,
                l2: 0.05,
                h1: 0.125,
            },
            TestMetrics {
                resolution: 32,
                l2: 0.5,
                h1: f64::NAN,
            },
        ],
        lr: 5e-3,
        seconds: 1.5,
        samples_per_s: 640.0,
        peak_memory_bytes: 123456789,
        skipped_steps: epoch as u64,
        overflow_events: 2,
        saturated_values: 3 * epoch as u64,
        loss_scale: 65536.0,
        policy: "fp16/fp16/fp16/fp32".into(),
    }
}

#[test]
fn metrics_csv_and_json_per_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = MetricsLog::new(&dir.path().join("run"));
    log.push(record(0, 0.25)).unwrap();
    log.push(record(1, f64::NAN)).unwrap();
    // Microseconds after the first rewrite the second waits (its cost would exceed 2% of the
    // time); flush writes it, as training does at checkpoints and at the end.
    log.flush().unwrap();
    let csv = std::fs::read_to_string(&log.csv_path).unwrap();
    assert_eq!(
        csv,
        "epoch,train_loss,lr,seconds,samples_per_s,peak_memory_bytes,skipped_steps,\
         overflow_events,saturated_values,loss_scale,policy,test_l2_r32,test_h1_r32,test_l2_r64,\
         test_h1_r64\n\
         0,0.25,0.005,1.5,640,123456789,0,2,0,65536,fp16/fp16/fp16/fp32,0.5,NaN,0.05,0.125\n\
         1,NaN,0.005,1.5,640,123456789,1,2,3,65536,fp16/fp16/fp16/fp32,0.5,NaN,0.05,0.125\n"
    );
    // The csv crate reads it: one field per column.
    let mut rd = csv::Reader::from_path(&log.csv_path).unwrap();
    assert_eq!(rd.headers().unwrap().len(), 15);
    assert_eq!(rd.records().count(), 2);
    let json = std::fs::read_to_string(&log.json_path).unwrap();
    let back = MetricsLog::records_from_json(&json).unwrap();
    assert_eq!(back.len(), 2);
    assert!(back[1].train_loss.is_nan() && back[0].test[1].h1.is_nan());
    assert_eq!(back[0].test[0], log.records[0].test[0]);
    assert_eq!(back[0].train_loss, 0.25);
    assert_eq!(back[1].skipped_steps, 1);
    assert_eq!(back[1].saturated_values, 3);
    assert!(MetricsLog::records_from_json("").unwrap().is_empty());
    assert!(MetricsLog::records_from_json("{").is_err());
    // Resuming after 1 epoch drops later records.
    log.truncate(1).unwrap();
    let csv = std::fs::read_to_string(&log.csv_path).unwrap();
    assert_eq!(csv.lines().count(), 2);
    assert_eq!(
        MetricsLog::records_from_json(&std::fs::read_to_string(&log.json_path).unwrap())
            .unwrap()
            .len(),
        1
    );
    // Only the two files: no temporary files left behind.
    let n = std::fs::read_dir(dir.path().join("run")).unwrap().count();
    assert_eq!(n, 2);
}

#[test]
fn evaluate_decodes_predictions_and_averages_per_sample_errors() {
    let n = 5;
    let x = FieldSet {
        n,
        channels: 1,
        grid: vec![4, 4],
        data: uniform(n * 16, 60),
    };
    let y = FieldSet {
        data: x.data.iter().map(|v| v * 3.0 + 1.0).collect(),
        ..x.clone()
    };
    let split = data::Split { x, y };
    let xn = UnitGaussianNormalizer::fit_global(&split.x);
    let yn = UnitGaussianNormalizer::fit_pointwise(&split.y);
    // An exact model of the encoded map: decode x, apply y = 3x + 1, encode y.
    let exact = |xb: &[f64], _b: usize| -> anyhow::Result<Vec<f64>> {
        let mut v = xb.to_vec();
        xn.decode(&mut v);
        v.iter_mut().for_each(|t| *t = *t * 3.0 + 1.0);
        yn.encode(&mut v);
        Ok(v)
    };
    let m = mpno::fno::metrics::evaluate(&split, 2, Some(&xn), Some(&yn), exact).unwrap();
    assert_eq!(m.resolution, 4);
    assert!(m.l2 < 1e-12 && m.h1 < 1e-12, "{m:?}");
    // A model off by 10% everywhere: relative L2 and H1 are exactly 0.1 for every sample.
    let off = |xb: &[f64], b: usize| {
        let mut v = exact(xb, b)?;
        yn.decode(&mut v);
        v.iter_mut().for_each(|t| *t *= 1.1);
        yn.encode(&mut v);
        Ok(v)
    };
    let m = mpno::fno::metrics::evaluate(&split, 3, Some(&xn), Some(&yn), off).unwrap();
    assert!(
        (m.l2 - 0.1).abs() < 1e-12 && (m.h1 - 0.1).abs() < 1e-12,
        "{m:?}"
    );
    // A model returning the wrong size is an error, not a panic.
    let bad = |_: &[f64], _: usize| Ok(vec![0.0; 3]);
    assert!(mpno::fno::metrics::evaluate(&split, 2, None, None, bad).is_err());
}

#[test]
fn loss_scaler_follows_grad_scaler() {
    use mpno::fno::optim::LossScaler;
    let mut s = LossScaler::dynamic(65536.0, 3);
    let mut g = Params::<f32>::default();
    g.push("w", vec![2], vec![65536.0, -131072.0]);
    assert!(s.unscale(&mut g));
    assert_eq!(g.list[0].data, vec![1.0, -2.0]);
    // Overflow: halve, reset the tracker.
    s.update(false);
    s.update(true);
    assert_eq!((s.scale, s.growth_tracker), (32768.0, 0));
    // Three good steps: double.
    for _ in 0..3 {
        s.update(false);
    }
    assert_eq!((s.scale, s.growth_tracker), (65536.0, 0));
    let mut inf = Params::<f32>::default();
    inf.push("w", vec![2], vec![1.0, f32::INFINITY]);
    assert!(!s.unscale(&mut inf));
    let mut nan = Params::<f32>::default();
    nan.push("w", vec![1], vec![f32::NAN]);
    assert!(!s.unscale(&mut nan));
    // State round trip through checkpoint metadata.
    s.update(false);
    let mut extra = std::collections::BTreeMap::new();
    s.save_state(&mut extra);
    let mut r = LossScaler::dynamic(1.0, 3);
    r.load_state(&extra).unwrap();
    assert_eq!(r, s);
    assert!(r.load_state(&Default::default()).is_err());
    // Static scalers never change; config mapping.
    let mut st = LossScaler::fixed(128.0);
    st.update(true);
    assert_eq!(st.scale, 128.0);
    let c = TrainConfig::from_toml(
        "[data]\nfile = \"d\"\n[precision]\nloss_scale = \"dynamic\"\nloss_scale_growth_interval = 7\n",
    )
    .unwrap();
    let d = LossScaler::from_config(&c.precision);
    assert!(d.dynamic && d.scale == 65536.0 && d.growth_interval == 7);
    let c = TrainConfig::from_toml("[data]\nfile = \"d\"\n").unwrap();
    assert_eq!(
        LossScaler::from_config(&c.precision),
        LossScaler::fixed(1.0)
    );
}

/// `model.rank` is a CP setting: a user's config that sets it for a dense model is refused
/// (the model would train dense), while a checkpoint's resolved config from before that rule
/// (dense weights beside `rank = 16`) still loads; CP without a rank gets the default.
#[test]
fn cp_rank_is_refused_for_dense_models_and_defaulted_for_cp() {
    let base = "[data]\nfile = \"d.safetensors\"\n[model]\n";
    let e = TrainConfig::from_user_toml(&format!("{base}rank = 8\n")).unwrap_err();
    assert_eq!(e.field, "model.rank");
    assert!(e.message.contains("factorization = \"cp\" only"), "{e}");
    let old = TrainConfig::from_toml(&format!("{base}rank = 16\n")).unwrap();
    assert_eq!(old.model.rank, Some(16));
    let dense = TrainConfig::from_user_toml(base).unwrap();
    assert_eq!(dense.model.rank, None);
    assert!(!dense.to_toml().contains("rank"), "{}", dense.to_toml());
    let cp = TrainConfig::from_user_toml(&format!("{base}factorization = \"cp\"\n")).unwrap();
    assert_eq!(cp.model.rank, Some(mpno::fno::config::DEFAULT_CP_RANK));
    assert_eq!(TrainConfig::from_user_toml(&cp.to_toml()).unwrap(), cp);
}

#[test]
fn memory_check_counts_data_that_does_not_exist_yet() {
    // An experiment checks its runs before datagen writes the file: the size it will have is
    // counted (three copies while loading), and a data set too large is what gets named.
    let mut c = TrainConfig::from_toml("[data]\nfile = \"not_yet.safetensors\"\n").unwrap();
    c.data.resolution = Some(16);
    assert!(mpno::fno::train::check_memory_with_data(&c, 1e6).is_ok());
    let e = mpno::fno::train::check_memory_with_data(&c, 1e30).unwrap_err();
    assert_eq!(e.field, "data.file");
    assert!(e.message.contains("memory"), "{}", e.message);
}
