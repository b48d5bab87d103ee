//! Data-set files: safetensors (<https://github.com/huggingface/safetensors>) with named tensors and
//! string metadata, readable by Python's `safetensors.numpy.load_file`.
//!
//! Writing. The file is: u64 little-endian header length N, N bytes of JSON header (padded with
//! spaces to a multiple of 8), then the tensors' little-endian bytes. The header lists the tensors
//! (dtype, shape, data_offsets) and `__metadata__`. We write it ourselves, with keys in sorted
//! order, because the `safetensors` crate (0.8) serialises the metadata from a `HashMap`, whose
//! order changes from run to run, and our files must be byte-identical for the same seed. The
//! tensor order follows the crate's (alignment descending, then name), and every file we write is
//! parsed back by the crate in the tests.
//!
//! Reading goes through the `safetensors` crate ([`Dataset::load`]).

use anyhow::{Context, bail};
use safetensors::{Dtype, SafeTensors};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// Element type of a stored tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    F32,
    F64,
    I64,
}

impl DType {
    fn name(self) -> &'static str {
        match self {
            DType::F32 => "F32",
            DType::F64 => "F64",
            DType::I64 => "I64",
        }
    }

    fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 | DType::I64 => 8,
        }
    }
}

impl std::str::FromStr for DType {
    type Err = String;
    /// The floating types a user can pick for fields: f32 or f64.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "f32" => Ok(DType::F32),
            "f64" => Ok(DType::F64),
            _ => Err(format!("unknown dtype '{s}'; allowed: f32, f64")),
        }
    }
}

/// Values of a tensor.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
}

/// A named n-dimensional array, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Data,
}

impl Tensor {
    /// A floating tensor from f64 values, stored as `dtype` (F32 rounds to nearest).
    pub fn from_f64(shape: Vec<usize>, values: Vec<f64>, dtype: DType) -> Self {
        assert_eq!(shape.iter().product::<usize>(), values.len(), "shape");
        let data = match dtype {
            DType::F32 => Data::F32(values.iter().map(|&x| x as f32).collect()),
            DType::F64 => Data::F64(values),
            DType::I64 => Data::I64(values.iter().map(|&x| x as i64).collect()),
        };
        Tensor { shape, data }
    }

    pub fn from_i64(shape: Vec<usize>, values: Vec<i64>) -> Self {
        assert_eq!(shape.iter().product::<usize>(), values.len(), "shape");
        Tensor {
            shape,
            data: Data::I64(values),
        }
    }

    pub fn dtype(&self) -> DType {
        match self.data {
            Data::F32(_) => DType::F32,
            Data::F64(_) => DType::F64,
            Data::I64(_) => DType::I64,
        }
    }

    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values widened to f64.
    pub fn to_f64(&self) -> Vec<f64> {
        match &self.data {
            Data::F32(v) => v.iter().map(|&x| x as f64).collect(),
            Data::F64(v) => v.clone(),
            Data::I64(v) => v.iter().map(|&x| x as f64).collect(),
        }
    }

    /// Values as f32 (f64 rounded to nearest).
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.data {
            Data::F32(v) => v.clone(),
            Data::F64(v) => v.iter().map(|&x| x as f32).collect(),
            Data::I64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    fn write_bytes(&self, w: &mut impl Write) -> std::io::Result<()> {
        // Chunks of 8192 elements keep the temporary buffer small for GB-sized tensors.
        let mut buf = Vec::with_capacity(8192 * 8);
        macro_rules! put {
            ($v:expr) => {
                for chunk in $v.chunks(8192) {
                    buf.clear();
                    for x in chunk {
                        buf.extend_from_slice(&x.to_le_bytes());
                    }
                    w.write_all(&buf)?;
                }
            };
        }
        match &self.data {
            Data::F32(v) => put!(v),
            Data::F64(v) => put!(v),
            Data::I64(v) => put!(v),
        }
        Ok(())
    }

    /// A tensor keeping every `step`-th point along the trailing `axes` spatial axes (starting
    /// at index 0), e.g. a (n, 129, 129) field with step 2 on 2 axes becomes (n, 65, 65).
    pub fn subsample(&self, axes: usize, step: usize) -> Tensor {
        let d = self.shape.len();
        assert!(axes <= d && step >= 1);
        let shape: Vec<usize> = self
            .shape
            .iter()
            .enumerate()
            .map(|(i, &s)| if i >= d - axes { s.div_ceil(step) } else { s })
            .collect();
        // Flat index of every kept element, in order.
        let mut idx = vec![0usize];
        let mut stride = 1;
        let mut strides = vec![0; d];
        for i in (0..d).rev() {
            strides[i] = stride;
            stride *= self.shape[i];
        }
        for i in 0..d {
            let st = if i >= d - axes { step } else { 1 };
            let mut next = Vec::with_capacity(idx.len() * shape[i]);
            for &base in &idx {
                for k in 0..shape[i] {
                    next.push(base + k * st * strides[i]);
                }
            }
            idx = next;
        }
        let data = match &self.data {
            Data::F32(v) => Data::F32(idx.iter().map(|&p| v[p]).collect()),
            Data::F64(v) => Data::F64(idx.iter().map(|&p| v[p]).collect()),
            Data::I64(v) => Data::I64(idx.iter().map(|&p| v[p]).collect()),
        };
        Tensor { shape, data }
    }
}

/// Tensors and metadata of one file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Dataset {
    pub tensors: BTreeMap<String, Tensor>,
    pub metadata: BTreeMap<String, String>,
}

impl Dataset {
    pub fn get(&self, name: &str) -> anyhow::Result<&Tensor> {
        self.tensors.get(name).with_context(|| {
            format!(
                "no tensor '{name}' (have: {})",
                self.tensors.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })
    }

    /// Serialise (see the module doc for the layout).
    pub fn write(&self, w: &mut impl Write) -> anyhow::Result<()> {
        let mut order: Vec<(&String, &Tensor)> = self.tensors.iter().collect();
        order.sort_by(|a, b| {
            b.1.dtype()
                .size()
                .cmp(&a.1.dtype().size())
                .then(a.0.cmp(b.0))
        });
        let mut header = serde_json::Map::new();
        if !self.metadata.is_empty() {
            let meta: serde_json::Map<String, serde_json::Value> = self
                .metadata
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect();
            header.insert("__metadata__".into(), meta.into());
        }
        let mut offset = 0usize;
        for (name, t) in &order {
            let n = t.len() * t.dtype().size();
            header.insert(
                (*name).clone(),
                serde_json::json!({
                    "dtype": t.dtype().name(),
                    "shape": t.shape,
                    "data_offsets": [offset, offset + n],
                }),
            );
            offset += n;
        }
        let mut text = serde_json::to_string(&serde_json::Value::Object(header))?.into_bytes();
        text.resize(text.len().next_multiple_of(8), b' ');
        w.write_all(&(text.len() as u64).to_le_bytes())?;
        w.write_all(&text)?;
        for (_, t) in &order {
            t.write_bytes(w)?;
        }
        Ok(())
    }

    /// Write to `path` through a temporary file in the same folder (no partial file on failure).
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        crate::cli::write_atomically(path, |f| {
            let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
            self.write(&mut w)?;
            w.flush()?;
            Ok(())
        })
    }

    /// Parse a safetensors buffer (F32, F64 and I64 tensors).
    pub fn from_bytes(bytes: &[u8]) -> anyhow::Result<Self> {
        let st = SafeTensors::deserialize(bytes).context("not a safetensors file")?;
        let (_, meta) = SafeTensors::read_metadata(bytes)?;
        let metadata: BTreeMap<String, String> = meta
            .metadata()
            .as_ref()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let mut tensors = BTreeMap::new();
        for (name, view) in st.tensors() {
            let b = view.data();
            let data = match view.dtype() {
                Dtype::F32 => Data::F32(
                    b.chunks_exact(4)
                        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                        .collect(),
                ),
                Dtype::F64 => Data::F64(
                    b.chunks_exact(8)
                        .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                        .collect(),
                ),
                Dtype::I64 => Data::I64(
                    b.chunks_exact(8)
                        .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
                        .collect(),
                ),
                other => bail!("tensor '{name}': dtype {other:?} is not supported (F32, F64, I64)"),
            };
            tensors.insert(
                name,
                Tensor {
                    shape: view.shape().to_vec(),
                    data,
                },
            );
        }
        Ok(Dataset { tensors, metadata })
    }

    /// Read a file written by `mpno datagen` (or any safetensors file of F32/F64/I64 tensors).
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let bytes = crate::cli::read_input(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Self::from_bytes(&bytes).with_context(|| path.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_through_the_safetensors_crate() {
        let mut d = Dataset::default();
        d.tensors.insert(
            "u".into(),
            Tensor::from_f64(
                vec![2, 3],
                (0..6).map(|x| x as f64 / 3.0).collect(),
                DType::F32,
            ),
        );
        d.tensors.insert(
            "a".into(),
            Tensor::from_f64(vec![3], vec![1.0, -2.5, 1e-300], DType::F64),
        );
        d.tensors
            .insert("it".into(), Tensor::from_i64(vec![2], vec![7, -1]));
        d.metadata.insert("equation".into(), "x\"y\n".into());
        d.metadata.insert("b".into(), "2".into());
        let mut bytes = Vec::new();
        d.write(&mut bytes).unwrap();
        assert_eq!(Dataset::from_bytes(&bytes).unwrap(), d);
    }

    #[test]
    fn subsample_keeps_every_kth_point() {
        let t = Tensor::from_i64(vec![2, 5, 5], (0..50).collect());
        let s = t.subsample(2, 2);
        assert_eq!(s.shape, vec![2, 3, 3]);
        assert_eq!(
            s.data,
            Data::I64(vec![
                0, 2, 4, 10, 12, 14, 20, 22, 24, 25, 27, 29, 35, 37, 39, 45, 47, 49
            ])
        );
    }
}
