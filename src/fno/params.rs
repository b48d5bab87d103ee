//! Named parameter tensors: the model's weights, their gradients and optimizer moments all share
//! this layout, so optimizers and checkpoints work on any model.

use super::scalar::Scalar;

/// One parameter tensor, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Param<T> {
    /// Unique dotted name, e.g. `blocks.0.spectral.weight`; the safetensors key.
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<T>,
}

/// An ordered list of parameters (order is the model's; names are unique).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Params<T> {
    pub list: Vec<Param<T>>,
}

impl<T: Scalar> Params<T> {
    /// Add a parameter; panics on a duplicate name (a model-construction bug).
    pub fn push(&mut self, name: impl Into<String>, shape: Vec<usize>, data: Vec<T>) -> usize {
        let name = name.into();
        assert_eq!(
            shape.iter().product::<usize>(),
            data.len(),
            "parameter {name}: shape {shape:?} does not match {} values",
            data.len()
        );
        assert!(
            self.list.iter().all(|p| p.name != name),
            "duplicate parameter name {name}"
        );
        self.list.push(Param { name, shape, data });
        self.list.len() - 1
    }

    /// Same names and shapes, all zeros (gradients, optimizer moments).
    pub fn zeros_like(&self) -> Self {
        Params {
            list: self
                .list
                .iter()
                .map(|p| Param {
                    name: p.name.clone(),
                    shape: p.shape.clone(),
                    data: vec![T::zero(); p.data.len()],
                })
                .collect(),
        }
    }

    /// Set every value to zero, keeping the allocation.
    pub fn fill_zero(&mut self) {
        for p in &mut self.list {
            p.data.iter_mut().for_each(|x| *x = T::zero());
        }
    }

    /// Total number of scalars.
    pub fn numel(&self) -> usize {
        self.list.iter().map(|p| p.data.len()).sum()
    }

    /// The parameter called `name`.
    pub fn get(&self, name: &str) -> Option<&Param<T>> {
        self.list.iter().find(|p| p.name == name)
    }

    /// Index of the parameter called `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.list.iter().position(|p| p.name == name)
    }

    /// Whether every value is finite.
    pub fn all_finite(&self) -> bool {
        self.list
            .iter()
            .all(|p| p.data.iter().all(|x| x.is_finite()))
    }

    /// Euclidean norm over all values, in f64.
    pub fn norm(&self) -> f64 {
        self.list
            .iter()
            .flat_map(|p| p.data.iter())
            .map(|x| x.to_f64() * x.to_f64())
            .sum::<f64>()
            .sqrt()
    }

    /// Convert to another scalar (f32 <-> f64).
    pub fn cast<U: Scalar>(&self) -> Params<U> {
        Params {
            list: self
                .list
                .iter()
                .map(|p| Param {
                    name: p.name.clone(),
                    shape: p.shape.clone(),
                    data: p.data.iter().map(|x| U::from_f64(x.to_f64())).collect(),
                })
                .collect(),
        }
    }
}
