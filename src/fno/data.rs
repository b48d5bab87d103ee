//! Training data: fields from `mpno datagen` files (see docs/datagen.md), train/test splits at the
//! training resolution and at other resolutions for zero-shot evaluation, normalisers as in
//! neuraloperator, and seeded shuffled batches.
//!
//! A field tensor of shape `(n, c1, ..., grid[0], ..., grid[d-1])` becomes a [`FieldSet`] of `n`
//! samples with `c1 * ...` channels (1 when there are no axes between the sample axis and the
//! `d` trailing grid axes), row-major `(n, channels, grid...)`.
//!
//! Lower resolutions keep every `step`-th grid point starting at index 0 (as the FNO scripts'
//! `[::step, ::step]`), so a grid of `r` points becomes `ceil(r / step)` points: 421 with step 5
//! is 85 (the Darcy vertex grid), 256 with step 4 is 64 (a periodic grid).

use crate::cli::UsageError;
use crate::pde::dataset::{DType, Dataset, Tensor};
use anyhow::{Context, bail};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::path::{Path, PathBuf};

use super::scalar::Scalar;

/// `n` samples of a field with `channels` channels on a grid, row-major `(n, channels, grid...)`.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldSet<T> {
    pub n: usize,
    pub channels: usize,
    pub grid: Vec<usize>,
    pub data: Vec<T>, // (n, channels, grid...)
}

impl<T: Scalar> FieldSet<T> {
    /// Values per sample (`channels * prod(grid)`).
    pub fn sample_len(&self) -> usize {
        self.channels * self.grid.iter().product::<usize>()
    }

    /// The values of sample `i`.
    pub fn sample(&self, i: usize) -> &[T] {
        let l = self.sample_len();
        &self.data[i * l..(i + 1) * l]
    }

    /// A field tensor of `dim` trailing grid axes, converted to `T`.
    pub fn from_tensor(t: &Tensor, dim: usize) -> anyhow::Result<Self> {
        if t.shape.len() < dim + 1 {
            bail!(
                "shape {:?} has no sample axis and {dim} grid axes (need at least {} axes)",
                t.shape,
                dim + 1
            );
        }
        if t.dtype() == DType::I64 {
            bail!("holds integers (I64), not a field");
        }
        let d = t.shape.len();
        let grid = t.shape[d - dim..].to_vec();
        let channels = t.shape[1..d - dim].iter().product();
        let data = match T::FORMAT {
            crate::precision::Format::Fp32 => t.to_f32().into_iter().map(T::from_f32).collect(),
            _ => t.to_f64().into_iter().map(T::from_f64).collect(),
        };
        Ok(FieldSet {
            n: t.shape[0],
            channels,
            grid,
            data,
        })
    }

    /// Samples `range`.
    pub fn select(&self, range: std::ops::Range<usize>) -> Self {
        self.take(range, 1)
    }

    /// Every `step`-th grid point along each axis, starting at 0.
    pub fn subsample(&self, step: usize) -> Self {
        self.take(0..self.n, step)
    }

    /// Samples `range`, keeping every `step`-th grid point along each axis (one copy).
    pub fn take(&self, range: std::ops::Range<usize>, step: usize) -> Self {
        assert!(
            range.end <= self.n,
            "samples {range:?} of {} samples",
            self.n
        );
        assert!(step >= 1);
        let l = self.sample_len();
        let src = &self.data[range.start * l..range.end * l];
        if step == 1 {
            return FieldSet {
                n: range.len(),
                channels: self.channels,
                grid: self.grid.clone(),
                data: src.to_vec(),
            };
        }
        let grid: Vec<usize> = self.grid.iter().map(|&g| g.div_ceil(step)).collect();
        let d = self.grid.len();
        let mut strides = vec![1usize; d];
        for i in (0..d.saturating_sub(1)).rev() {
            strides[i] = strides[i + 1] * self.grid[i + 1];
        }
        let points: usize = self.grid.iter().product();
        let new_points: usize = grid.iter().product();
        // Source offset of every kept point.
        let mut offs = Vec::with_capacity(new_points);
        let mut idx = vec![0usize; d];
        for _ in 0..new_points {
            offs.push(
                idx.iter()
                    .zip(&strides)
                    .map(|(&i, &s)| i * step * s)
                    .sum::<usize>(),
            );
            for a in (0..d).rev() {
                idx[a] += 1;
                if idx[a] < grid[a] {
                    break;
                }
                idx[a] = 0;
            }
        }
        let mut data = Vec::with_capacity(range.len() * self.channels * new_points);
        for block in src.chunks(points) {
            data.extend(offs.iter().map(|&o| block[o]));
        }
        FieldSet {
            n: range.len(),
            channels: self.channels,
            grid,
            data,
        }
    }

    /// The samples `idx`, in that order, one after the other (a batch).
    pub fn gather(&self, idx: &[usize]) -> Vec<T> {
        let mut out = Vec::with_capacity(idx.len() * self.sample_len());
        self.gather_into(idx, &mut out);
        out
    }

    /// As [`FieldSet::gather`], reusing `out`'s allocation.
    pub fn gather_into(&self, idx: &[usize], out: &mut Vec<T>) {
        out.clear();
        for &i in idx {
            out.extend_from_slice(self.sample(i));
        }
    }
}

/// The smallest step that takes a grid of `from` points to `to` points (`ceil(from / step) = to`).
pub fn subsample_step(from: usize, to: usize) -> Option<usize> {
    if to == 0 || to > from {
        return None;
    }
    (1..=from).find(|&s| from.div_ceil(s) == to)
}

/// Inputs and outputs of the same samples.
#[derive(Clone, Debug, PartialEq)]
pub struct Split<T> {
    pub x: FieldSet<T>,
    pub y: FieldSet<T>,
}

impl<T: Scalar> Split<T> {
    pub fn len(&self) -> usize {
        self.x.n
    }

    pub fn is_empty(&self) -> bool {
        self.x.n == 0
    }

    /// Grid points per axis.
    pub fn resolution(&self) -> usize {
        self.x.grid[0]
    }

    fn subsample(&self, step: usize) -> Self {
        Split {
            x: self.x.subsample(step),
            y: self.y.subsample(step),
        }
    }
}

/// What to load (the `[data]` section of a training config, resolved).
#[derive(Clone, Debug, PartialEq)]
pub struct DataSpec {
    pub file: PathBuf,
    /// Tensor name of the input field (e.g. `a`).
    pub input: String,
    /// Tensor name of the output field (e.g. `u`).
    pub output: String,
    /// Spatial dimension: the number of trailing grid axes.
    pub dim: usize,
    /// The first `n_train` samples of `file` train.
    pub n_train: usize,
    /// Test samples: the last `n_test` of `file`, or the first `n_test` of `test_file`.
    pub n_test: usize,
    pub test_file: Option<PathBuf>,
    /// Training grid points per axis (`None`: the file's).
    pub resolution: Option<usize>,
    /// Resolutions the test set is also evaluated at (each a subsampling of the test file).
    pub test_resolutions: Vec<usize>,
}

/// Training and test sets.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainTest<T> {
    pub train: Split<T>,
    /// The test set at the training resolution first, then at each other test resolution
    /// (ascending, without repeats).
    pub tests: Vec<Split<T>>,
    /// Grid points per axis in the file.
    pub file_resolution: usize,
}

fn open(path: &Path, field: &str) -> anyhow::Result<Dataset> {
    crate::cli::check_input(field, path)?;
    Dataset::load(path).with_context(|| format!("{field}: cannot load {}", path.display()))
}

fn fields<T: Scalar>(
    ds: &Dataset,
    path: &Path,
    name: &str,
    field: &str,
    dim: usize,
) -> anyhow::Result<FieldSet<T>> {
    let t = ds.get(name).with_context(|| {
        format!(
            "{field}: no tensor '{name}' in {} (have: {})",
            path.display(),
            ds.tensors.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    })?;
    let f = FieldSet::from_tensor(t, dim)
        .with_context(|| format!("{field}: tensor '{name}' in {}", path.display()))?;
    if f.grid.iter().any(|&g| g != f.grid[0]) {
        bail!(
            "{field}: tensor '{name}' in {} has grid {:?}; every axis must have the same number \
             of points",
            path.display(),
            f.grid
        );
    }
    Ok(f)
}

fn split_of<T: Scalar>(spec: &DataSpec, ds: &Dataset, path: &Path) -> anyhow::Result<Split<T>> {
    let x = fields::<T>(ds, path, &spec.input, "data.input", spec.dim)?;
    let y = fields::<T>(ds, path, &spec.output, "data.output", spec.dim)?;
    if x.n != y.n || x.grid != y.grid {
        bail!(
            "data.output: tensor '{}' ({} samples, grid {:?}) does not match input '{}' ({} \
             samples, grid {:?}) in {}",
            spec.output,
            y.n,
            y.grid,
            spec.input,
            x.n,
            x.grid,
            path.display()
        );
    }
    Ok(Split { x, y })
}

fn step_to(from: usize, to: usize, field: &str) -> anyhow::Result<usize> {
    subsample_step(from, to).with_context(|| {
        format!(
            "{field}: {to} points per axis cannot be taken from a {from}-point grid by keeping \
             every k-th point (ceil({from} / k) = {to} has no solution)"
        )
    })
}

/// Load training and test sets as `spec` says. Every failure is bad input (a
/// [`UsageError`] in the chain: exit code 2 on the command line) naming the config field, the
/// file and the tensor: a missing or truncated file, a missing tensor, too few samples, an
/// unreachable resolution, or a non-finite value in a sample that is used (named by its index).
pub fn load<T: Scalar>(spec: &DataSpec) -> anyhow::Result<TrainTest<T>> {
    load_checked(spec).map_err(|e| {
        let text = format!("{e:#}");
        // The messages start with the config field they are about.
        let field: String = text
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
            .collect();
        if !field.starts_with("data.") {
            return UsageError::new("data.file", text).into();
        }
        let msg = text[field.len()..].strip_prefix(": ").unwrap_or(&text);
        UsageError::new(&field, msg).into()
    })
}

/// The first non-finite value of samples `samples` of `s`, or the first target that is zero
/// everywhere, as an error naming the field, the tensor, the file and the sample.
fn check_finite<T: Scalar>(
    spec: &DataSpec,
    s: &Split<T>,
    samples: std::ops::Range<usize>,
    path: &Path,
) -> anyhow::Result<()> {
    for (set, name, field) in [
        (&s.x, &spec.input, "data.input"),
        (&s.y, &spec.output, "data.output"),
    ] {
        for i in samples.clone() {
            if let Some((j, v)) = set
                .sample(i)
                .iter()
                .enumerate()
                .find(|(_, v)| !v.is_finite())
            {
                bail!(
                    "{field}: tensor '{name}' in {} holds {v} in sample {i} (value {j} of the sample, after conversion to {}); training and evaluation need finite data: regenerate the file or leave that sample out",
                    path.display(),
                    T::FORMAT
                );
            }
        }
    }
    // The losses and test errors are relative, ||pred - y|| / ||y||: a target that is zero
    // everywhere makes them inf or NaN whatever the model does.
    for i in samples {
        if s.y.sample(i).iter().all(|v| *v == T::zero()) {
            bail!(
                "data.output: tensor '{}' in {} is zero everywhere in sample {i} (after conversion to {}); the relative L2/H1 errors divide by the target's norm: regenerate the file or leave that sample out",
                spec.output,
                path.display(),
                T::FORMAT
            );
        }
    }
    Ok(())
}

fn load_checked<T: Scalar>(spec: &DataSpec) -> anyhow::Result<TrainTest<T>> {
    if spec.n_train == 0 {
        bail!("data.n_train: must be >= 1, got 0");
    }
    let ds = open(&spec.file, "data.file")?;
    let all = split_of::<T>(spec, &ds, &spec.file)?;
    drop(ds);
    check_finite(spec, &all, 0..spec.n_train.min(all.len()), &spec.file)?;
    let file_resolution = all.resolution();
    let res = spec.resolution.unwrap_or(file_resolution);
    let train_step = step_to(file_resolution, res, "data.resolution")?;
    let test_all = match &spec.test_file {
        None => {
            if spec.n_train + spec.n_test > all.len() {
                bail!(
                    "data.n_train + data.n_test = {} + {} exceeds the {} samples in {}",
                    spec.n_train,
                    spec.n_test,
                    all.len(),
                    spec.file.display()
                );
            }
            check_finite(spec, &all, all.len() - spec.n_test..all.len(), &spec.file)?;
            Split {
                x: all.x.select(all.len() - spec.n_test..all.len()),
                y: all.y.select(all.len() - spec.n_test..all.len()),
            }
        }
        Some(tf) => {
            if spec.n_train > all.len() {
                bail!(
                    "data.n_train: {} exceeds the {} samples in {}",
                    spec.n_train,
                    all.len(),
                    spec.file.display()
                );
            }
            let tds = open(tf, "data.test_file")?;
            let t = split_of::<T>(spec, &tds, tf)?;
            drop(tds);
            if spec.n_test > t.len() {
                bail!(
                    "data.n_test: {} exceeds the {} samples in {}",
                    spec.n_test,
                    t.len(),
                    tf.display()
                );
            }
            check_finite(spec, &t, 0..spec.n_test, tf)?;
            Split {
                x: t.x.select(0..spec.n_test),
                y: t.y.select(0..spec.n_test),
            }
        }
    };
    let train = Split {
        x: all.x.take(0..spec.n_train, train_step),
        y: all.y.take(0..spec.n_train, train_step),
    };
    drop(all);
    let test_res = test_all.resolution();
    let mut resolutions = vec![res];
    let mut others: Vec<usize> = spec
        .test_resolutions
        .iter()
        .copied()
        .filter(|&r| r != res)
        .collect();
    others.sort_unstable();
    others.dedup();
    resolutions.extend(others);
    let mut tests = Vec::new();
    for r in resolutions {
        let field = if r == res {
            "data.resolution"
        } else {
            "data.test_resolutions"
        };
        let step = step_to(test_res, r, field)?;
        tests.push(test_all.subsample(step));
    }
    Ok(TrainTest {
        train,
        tests,
        file_resolution,
    })
}

/// neuraloperator's `UnitGaussianNormalizer`: `encode(x) = (x - mean) / (std + eps)`,
/// `decode(z) = z (std + eps) + mean`, with the population standard deviation
/// (`sqrt(E[x^2] - E[x]^2)`, computed here in two passes in f64) and eps = 1e-5.
///
/// Point-wise statistics (one mean/std per value of a sample: the FNO paper's normaliser) only
/// apply on the grid they were fitted on; the global variant (one mean/std over every value of
/// every training sample) applies at any resolution.
#[derive(Clone, Debug, PartialEq)]
pub struct UnitGaussianNormalizer {
    /// One entry per value of a sample (point-wise) or a single entry (global).
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    pub eps: f64,
}

impl UnitGaussianNormalizer {
    pub const EPS: f64 = 1e-5;

    /// Statistics over the samples of `f` at every point and channel.
    pub fn fit_pointwise<T: Scalar>(f: &FieldSet<T>) -> Self {
        assert!(f.n >= 1, "normalizer: no samples");
        let l = f.sample_len();
        let mut mean = vec![0.0; l];
        for s in f.data.chunks(l) {
            for (m, x) in mean.iter_mut().zip(s) {
                *m += x.to_f64();
            }
        }
        mean.iter_mut().for_each(|m| *m /= f.n as f64);
        let mut var = vec![0.0; l];
        for s in f.data.chunks(l) {
            for ((v, m), x) in var.iter_mut().zip(&mean).zip(s) {
                *v += (x.to_f64() - m).powi(2);
            }
        }
        let std = var.iter().map(|v| (v / f.n as f64).sqrt()).collect();
        UnitGaussianNormalizer {
            mean,
            std,
            eps: Self::EPS,
        }
    }

    /// One mean and standard deviation over every value of every sample of `f`.
    pub fn fit_global<T: Scalar>(f: &FieldSet<T>) -> Self {
        assert!(!f.data.is_empty(), "normalizer: no samples");
        let n = f.data.len() as f64;
        let mean = f.data.iter().map(|x| x.to_f64()).sum::<f64>() / n;
        let var = f
            .data
            .iter()
            .map(|x| (x.to_f64() - mean).powi(2))
            .sum::<f64>()
            / n;
        UnitGaussianNormalizer {
            mean: vec![mean],
            std: vec![var.sqrt()],
            eps: Self::EPS,
        }
    }

    /// Whether the statistics are one global pair.
    pub fn is_global(&self) -> bool {
        self.mean.len() == 1
    }

    fn check(&self, len: usize) {
        assert!(
            len.is_multiple_of(self.mean.len()),
            "normalizer: {len} values are not whole samples of {} values (point-wise statistics \
             only apply on the grid they were fitted on)",
            self.mean.len()
        );
    }

    /// `x <- (x - mean) / (std + eps)` for whole samples one after the other.
    pub fn encode<T: Scalar>(&self, x: &mut [T]) {
        self.check(x.len());
        for s in x.chunks_mut(self.mean.len()) {
            for ((v, m), sd) in s.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = T::from_f64((v.to_f64() - m) / (sd + self.eps));
            }
        }
    }

    /// `z <- z (std + eps) + mean`.
    pub fn decode<T: Scalar>(&self, z: &mut [T]) {
        self.check(z.len());
        for s in z.chunks_mut(self.mean.len()) {
            for ((v, m), sd) in s.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = T::from_f64(v.to_f64() * (sd + self.eps) + m);
            }
        }
    }

    /// Back-propagation through [`decode`](Self::decode): `g <- g (std + eps)` turns
    /// d loss / d decoded into d loss / d z.
    pub fn decode_backward<T: Scalar>(&self, g: &mut [T]) {
        self.check(g.len());
        for s in g.chunks_mut(self.mean.len()) {
            for (v, sd) in s.iter_mut().zip(&self.std) {
                *v = T::from_f64(v.to_f64() * (sd + self.eps));
            }
        }
    }

    /// As tensors `PREFIX.mean`, `PREFIX.std` (F64) for a checkpoint.
    pub fn to_tensors(&self, prefix: &str) -> Vec<(String, Tensor)> {
        vec![
            (
                format!("{prefix}.mean"),
                Tensor::from_f64(vec![self.mean.len()], self.mean.clone(), DType::F64),
            ),
            (
                format!("{prefix}.std"),
                Tensor::from_f64(vec![self.std.len()], self.std.clone(), DType::F64),
            ),
        ]
    }

    /// Read back what [`to_tensors`](Self::to_tensors) wrote.
    pub fn from_tensors(
        tensors: &std::collections::BTreeMap<String, Tensor>,
        prefix: &str,
    ) -> anyhow::Result<Self> {
        let get = |k: &str| {
            tensors
                .get(&format!("{prefix}.{k}"))
                .map(|t| t.to_f64())
                .with_context(|| format!("no tensor '{prefix}.{k}'"))
        };
        let (mean, std) = (get("mean")?, get("std")?);
        if mean.len() != std.len() || mean.is_empty() {
            bail!(
                "'{prefix}.mean' has {} values but '{prefix}.std' {}",
                mean.len(),
                std.len()
            );
        }
        for (k, v) in [("mean", &mean), ("std", &std)] {
            if let Some((j, x)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
                bail!("tensor '{prefix}.{k}' holds {x} at index {j}; it must be finite");
            }
        }
        // A standard deviation is >= 0 (0 where a field is constant, e.g. Darcy's boundary).
        if let Some((j, x)) = std.iter().enumerate().find(|(_, x)| **x < 0.0) {
            bail!("tensor '{prefix}.std' holds {x} at index {j}; a standard deviation is >= 0");
        }
        Ok(UnitGaussianNormalizer {
            mean,
            std,
            eps: Self::EPS,
        })
    }
}

/// The order of the `n` training samples in epoch `epoch` of a run with seed `seed`: a
/// Fisher-Yates shuffle driven by xoshiro256++ seeded from (seed, epoch) alone, so a resumed run
/// visits the samples in the same order as an uninterrupted one.
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(crate::pde::sample_seed(
        seed ^ 0x5452_4149_4e5f_4f52, // "TRAIN_OR": keeps this stream apart from data seeds
        epoch as u64,
    ));
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.random_range(0..=i);
        order.swap(i, j);
    }
    order
}

/// The batches of one epoch: sample indices, `batch_size` at a time, the last batch smaller when
/// `batch_size` does not divide `n` (PyTorch's `drop_last = False`).
#[derive(Clone, Debug)]
pub struct Batches {
    order: Vec<usize>,
    batch_size: usize,
    pos: usize,
}

impl Batches {
    /// Shuffled (see [`epoch_order`]).
    pub fn new(n: usize, batch_size: usize, seed: u64, epoch: usize) -> Self {
        assert!(batch_size >= 1, "batch_size must be >= 1");
        Batches {
            order: epoch_order(n, seed, epoch),
            batch_size,
            pos: 0,
        }
    }

    /// In order 0..n (evaluation).
    pub fn sequential(n: usize, batch_size: usize) -> Self {
        assert!(batch_size >= 1, "batch_size must be >= 1");
        Batches {
            order: (0..n).collect(),
            batch_size,
            pos: 0,
        }
    }

    /// Number of batches in an epoch of `n` samples.
    pub fn per_epoch(n: usize, batch_size: usize) -> usize {
        n.div_ceil(batch_size)
    }
}

impl Iterator for Batches {
    type Item = Vec<usize>;
    fn next(&mut self) -> Option<Vec<usize>> {
        if self.pos >= self.order.len() {
            return None;
        }
        let end = (self.pos + self.batch_size).min(self.order.len());
        let b = self.order[self.pos..end].to_vec();
        self.pos = end;
        Some(b)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.order.len() - self.pos).div_ceil(self.batch_size);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Batches {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps() {
        assert_eq!(subsample_step(421, 85), Some(5));
        assert_eq!(subsample_step(256, 64), Some(4));
        assert_eq!(subsample_step(64, 64), Some(1));
        assert_eq!(subsample_step(64, 128), None);
        assert_eq!(subsample_step(64, 0), None);
        assert_eq!(subsample_step(10, 4), Some(3));
        // ceil(100 / k) is 34 for k = 3 and 25 for k = 4: 26 is unreachable.
        assert_eq!(subsample_step(100, 34), Some(3));
        assert_eq!(subsample_step(100, 26), None);
    }

    #[test]
    fn subsample_2d_with_channels() {
        let f = FieldSet {
            n: 1,
            channels: 2,
            grid: vec![3, 4],
            data: (0..24).map(|x| x as f64).collect(),
        };
        let s = f.subsample(2);
        assert_eq!(s.grid, vec![2, 2]);
        assert_eq!(s.data, vec![0.0, 2.0, 8.0, 10.0, 12.0, 14.0, 20.0, 22.0]);
        let two = FieldSet {
            n: 3,
            channels: 1,
            grid: vec![3],
            data: (0..9).map(|x| x as f32).collect(),
        };
        assert_eq!(two.take(1..3, 2).data, vec![3.0, 5.0, 6.0, 8.0]);
        assert_eq!(two.select(2..3).data, vec![6.0, 7.0, 8.0]);
    }
}
