//! Training checkpoints in safetensors.
//!
//! Tensors: `param.NAME` (the weights), `adam.m.NAME` and `adam.v.NAME` (optimizer moments), all
//! stored as F32 when the model computes in f32 and F64 when in f64, plus any extra tensors the
//! trainer adds (e.g. normaliser statistics, F64). String metadata: `format` (`mpno-checkpoint`),
//! `version`, `dtype`, `epoch` (epochs completed), `step` (optimizer steps taken), `seed`,
//! `param_order` (JSON list: safetensors sorts its keys, the model's order is kept here), the
//! optimizer (`optimizer`, `adam.step`, `adam.beta1`, `adam.beta2`, `adam.eps`,
//! `adam.weight_decay`), `config` (the resolved TOML), `metrics` (the JSON history) and extra
//! entries `extra.KEY` (e.g. the loss-scaler state).
//!
//! The file is written to a temporary file in the target folder, flushed to disk and renamed over
//! the previous checkpoint, so an interrupted run leaves the last complete checkpoint intact.

use super::optim::{Adam, OptimizerKind};
use super::params::{Param, Params};
use super::scalar::Scalar;
use crate::pde::dataset::{Data, Dataset, Tensor};
use anyhow::{Context, bail};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

fn meta_str<'a>(meta: &'a BTreeMap<String, String>, k: &str) -> anyhow::Result<&'a str> {
    meta.get(k)
        .map(String::as_str)
        .with_context(|| format!("metadata has no '{k}' (not an mpno checkpoint?)"))
}

/// A metadata value to be parsed as a number.
struct MetaNum<'a>(&'a str, &'a str);

fn meta_num<'a>(meta: &'a BTreeMap<String, String>, k: &'a str) -> anyhow::Result<MetaNum<'a>> {
    Ok(MetaNum(k, meta_str(meta, k)?))
}

impl MetaNum<'_> {
    fn parse_as<N: std::str::FromStr>(&self) -> anyhow::Result<N> {
        self.1
            .parse()
            .map_err(|_| anyhow::anyhow!("metadata '{}' = '{}' is not a number", self.0, self.1))
    }
}

const FORMAT: &str = "mpno-checkpoint";
const VERSION: &str = "1";

/// Everything a run needs to resume exactly.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint<T> {
    pub params: Params<T>,
    pub optimizer: Option<Adam<T>>,
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer steps (batches) taken in total, including skipped ones.
    pub step: u64,
    /// The run's seed (batch order is a function of seed and epoch).
    pub seed: u64,
    /// The resolved config, TOML.
    pub config: String,
    /// Metrics history, JSON.
    pub metrics: String,
    /// Other state as strings (loss-scaler scale and counters, RNG state), stored as `extra.KEY`.
    pub extra: BTreeMap<String, String>,
    /// Other tensors (normaliser statistics), stored under their own names; they must not start
    /// with `param.` or `adam.`.
    pub tensors: BTreeMap<String, Tensor>,
}

impl<T: Scalar> Checkpoint<T> {
    /// A checkpoint of `params` with nothing else.
    pub fn new(params: Params<T>) -> Self {
        Checkpoint {
            params,
            optimizer: None,
            epoch: 0,
            step: 0,
            seed: 0,
            config: String::new(),
            metrics: String::new(),
            extra: BTreeMap::new(),
            tensors: BTreeMap::new(),
        }
    }

    fn dtype_name() -> anyhow::Result<&'static str> {
        match T::FORMAT {
            crate::precision::Format::Fp32 => Ok("F32"),
            crate::precision::Format::Fp64 => Ok("F64"),
            f => bail!("checkpoints store f32 or f64 parameters, not {f:?}"),
        }
    }

    fn tensor(p: &Param<T>) -> Tensor {
        let data = match T::FORMAT {
            crate::precision::Format::Fp32 => {
                Data::F32(p.data.iter().map(|x| x.to_f32()).collect())
            }
            _ => Data::F64(p.data.iter().map(|x| x.to_f64()).collect()),
        };
        Tensor {
            shape: p.shape.clone(),
            data,
        }
    }

    /// The safetensors contents.
    pub fn to_dataset(&self) -> anyhow::Result<Dataset> {
        let mut ds = Dataset::default();
        let meta = &mut ds.metadata;
        meta.insert("format".into(), FORMAT.into());
        meta.insert("version".into(), VERSION.into());
        meta.insert("dtype".into(), Self::dtype_name()?.into());
        meta.insert("epoch".into(), self.epoch.to_string());
        meta.insert("step".into(), self.step.to_string());
        meta.insert("seed".into(), self.seed.to_string());
        meta.insert("config".into(), self.config.clone());
        meta.insert("metrics".into(), self.metrics.clone());
        let order: Vec<&str> = self.params.list.iter().map(|p| p.name.as_str()).collect();
        meta.insert("param_order".into(), serde_json::to_string(&order)?);
        for (k, v) in &self.extra {
            meta.insert(format!("extra.{k}"), v.clone());
        }
        for p in &self.params.list {
            ds.tensors
                .insert(format!("param.{}", p.name), Self::tensor(p));
        }
        if let Some(opt) = &self.optimizer {
            meta.insert("optimizer".into(), opt.kind.name().into());
            meta.insert("adam.step".into(), opt.step.to_string());
            // `{:?}` prints the shortest string that reads back to the same f64.
            meta.insert("adam.beta1".into(), format!("{:?}", opt.beta1));
            meta.insert("adam.beta2".into(), format!("{:?}", opt.beta2));
            meta.insert("adam.eps".into(), format!("{:?}", opt.eps));
            meta.insert(
                "adam.weight_decay".into(),
                format!("{:?}", opt.weight_decay),
            );
            for (which, list) in [("m", &opt.m), ("v", &opt.v)] {
                let same = list.list.len() == self.params.list.len()
                    && list
                        .list
                        .iter()
                        .zip(&self.params.list)
                        .all(|(a, b)| a.name == b.name && a.shape == b.shape);
                if !same {
                    bail!(
                        "optimizer state '{which}' does not have the parameters' names and shapes"
                    );
                }
                for p in &list.list {
                    ds.tensors
                        .insert(format!("adam.{which}.{}", p.name), Self::tensor(p));
                }
            }
        }
        for (k, t) in &self.tensors {
            if k.starts_with("param.") || k.starts_with("adam.") {
                bail!("extra checkpoint tensor '{k}' uses a reserved prefix (param., adam.)");
            }
            ds.tensors.insert(k.clone(), t.clone());
        }
        Ok(ds)
    }

    /// Write to `path` atomically (temporary file in the same folder, fsync, rename).
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        self.save_impl(path, false)
            .with_context(|| format!("cannot write checkpoint {}", path.display()))
    }

    /// `interrupt`: stop half-way through the bytes with an error (tests of the atomic write).
    #[doc(hidden)]
    pub fn save_impl(&self, path: &Path, interrupt: bool) -> anyhow::Result<()> {
        let ds = self.to_dataset()?;
        let mut bytes = Vec::new();
        ds.write(&mut bytes)?;
        crate::cli::write_atomically(path, |f| {
            if interrupt {
                f.write_all(&bytes[..bytes.len() / 2])?;
                bail!("interrupted");
            }
            f.write_all(&bytes)?;
            f.sync_all()?;
            Ok(())
        })
    }

    /// Read a checkpoint written by [`save`](Self::save) for a model computing in `T`.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        if !path.exists() {
            bail!("no such checkpoint {}", path.display());
        }
        let ds = Dataset::load(path)?;
        Self::from_dataset(ds).with_context(|| format!("checkpoint {}", path.display()))
    }

    /// Parse the contents (see the module doc).
    pub fn from_dataset(mut ds: Dataset) -> anyhow::Result<Self> {
        let meta = std::mem::take(&mut ds.metadata);
        let get = |k: &str| meta_str(&meta, k);
        let num = |k: &'static str| meta_num(&meta, k);
        if get("format")? != FORMAT {
            bail!("metadata 'format' is '{}', not '{FORMAT}'", get("format")?);
        }
        if get("version")? != VERSION {
            bail!(
                "checkpoint version {} is not supported (this build reads {VERSION})",
                get("version")?
            );
        }
        let want = Self::dtype_name()?;
        if get("dtype")? != want {
            bail!(
                "stores {} parameters, but this model computes in {}",
                get("dtype")?,
                if want == "F32" { "f32" } else { "f64" }
            );
        }
        let order: Vec<String> = serde_json::from_str(get("param_order")?)
            .context("metadata 'param_order' is not a JSON list of names")?;
        let mut take = |key: String, name: &str| -> anyhow::Result<Param<T>> {
            let t = ds
                .tensors
                .remove(&key)
                .with_context(|| format!("missing tensor '{key}'"))?;
            let data: Vec<T> = match &t.data {
                Data::F32(v) if want == "F32" => v.iter().map(|&x| T::from_f32(x)).collect(),
                Data::F64(v) if want == "F64" => v.iter().map(|&x| T::from_f64(x)).collect(),
                _ => bail!("tensor '{key}' is {:?}, expected {want}", t.dtype()),
            };
            // Training never stores a non-finite weight or moment (an overflowing step is
            // skipped or stops the run): one here is corruption, and would turn every metric
            // computed from the checkpoint into NaN.
            if let Some((j, v)) = data.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                bail!(
                    "tensor '{key}' holds {v} at index {j}; weights and optimizer state must be finite"
                );
            }
            Ok(Param {
                name: name.to_string(),
                shape: t.shape,
                data,
            })
        };
        let mut params = Params::default();
        for n in &order {
            let p = take(format!("param.{n}"), n)?;
            params.list.push(p);
        }
        let optimizer = match meta.get("optimizer") {
            None => None,
            Some(kind) => {
                let kind: OptimizerKind = kind
                    .parse()
                    .map_err(|e: String| anyhow::anyhow!("metadata 'optimizer': {e}"))?;
                let mut m = Params::default();
                let mut v = Params::default();
                for p in &params.list {
                    for (which, list) in [("m", &mut m), ("v", &mut v)] {
                        let t = take(format!("adam.{which}.{}", p.name), &p.name)?;
                        if t.shape != p.shape {
                            bail!(
                                "tensor 'adam.{which}.{}' has shape {:?} but the parameter {:?}",
                                p.name,
                                t.shape,
                                p.shape
                            );
                        }
                        list.list.push(t);
                    }
                }
                Some(Adam {
                    kind,
                    beta1: num("adam.beta1")?.parse_as()?,
                    beta2: num("adam.beta2")?.parse_as()?,
                    eps: num("adam.eps")?.parse_as()?,
                    weight_decay: num("adam.weight_decay")?.parse_as()?,
                    step: num("adam.step")?.parse_as()?,
                    m,
                    v,
                })
            }
        };
        if let Some(k) = ds
            .tensors
            .keys()
            .find(|k| k.starts_with("param.") || k.starts_with("adam."))
        {
            if k.starts_with("adam.") && optimizer.is_none() {
                bail!("tensor '{k}' is optimizer state but the metadata names no 'optimizer'");
            }
            bail!("tensor '{k}' belongs to no parameter listed in 'param_order'");
        }
        let extra = meta
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("extra.")?.to_string(), v.clone())))
            .collect();
        Ok(Checkpoint {
            params,
            optimizer,
            epoch: num("epoch")?.parse_as()?,
            step: num("step")?.parse_as()?,
            seed: num("seed")?.parse_as()?,
            config: get("config")?.to_string(),
            metrics: get("metrics")?.to_string(),
            extra,
            tensors: ds.tensors,
        })
    }

    /// Check that the checkpoint's parameters are the model's: the same names, in the same
    /// order, with the same shapes. The error lists every difference.
    pub fn check_matches(&self, model: &Params<T>) -> anyhow::Result<()> {
        let mut problems = Vec::new();
        for p in &model.list {
            match self.params.get(&p.name) {
                None => problems.push(format!("missing parameter '{}' {:?}", p.name, p.shape)),
                Some(q) if q.shape != p.shape => problems.push(format!(
                    "parameter '{}' has shape {:?} in the checkpoint but {:?} in the model",
                    p.name, q.shape, p.shape
                )),
                _ => {}
            }
        }
        for q in &self.params.list {
            if model.get(&q.name).is_none() {
                problems.push(format!(
                    "parameter '{}' {:?} is not in the model",
                    q.name, q.shape
                ));
            }
        }
        if problems.is_empty() {
            let same_order = self
                .params
                .list
                .iter()
                .zip(&model.list)
                .all(|(a, b)| a.name == b.name);
            if !same_order {
                problems.push("parameters are in a different order than the model's".into());
            }
        }
        if !problems.is_empty() {
            bail!(
                "checkpoint does not fit the model (different config?): {}",
                problems.join("; ")
            );
        }
        Ok(())
    }

    /// Load `path`, check it against `model` and copy the weights into it; returns the rest.
    pub fn restore(path: &Path, model: &mut Params<T>) -> anyhow::Result<Self> {
        let ck = Self::load(path)?;
        ck.check_matches(model)
            .with_context(|| format!("checkpoint {}", path.display()))?;
        *model = ck.params.clone();
        Ok(ck)
    }
}
