//! Parameters and optimizer state kept on a backend between steps: a GPU trainer uploads the
//! weights once and downloads them only for checkpoints, instead of moving them every step.
//!
//! Master copies are stored in the backend scalar's own format (fp32 when training); the
//! precision policy rounds them per op. Host [`Params`] / [`Adam`] remain the checkpoint form.

use super::optim::Adam;
use super::params::{Param, Params};
use crate::backend::Backend;
use crate::precision::Real;

/// A model's parameters on backend `B`, in the model's order, with their names and shapes.
pub struct Resident<B: Backend> {
    layout: Vec<(String, Vec<usize>)>,
    tensors: Vec<B::Tensor>,
}

impl<B: Backend> Resident<B> {
    /// Upload host parameters (exactly: the scalar's own format).
    pub fn upload(be: &B, params: &Params<B::T>) -> Self {
        Resident {
            layout: params
                .list
                .iter()
                .map(|p| (p.name.clone(), p.shape.clone()))
                .collect(),
            tensors: params
                .list
                .iter()
                .map(|p| be.upload(&p.shape, &p.data, <B::T as Real>::FORMAT))
                .collect(),
        }
    }

    /// Copy the parameters back to the host.
    pub fn download(&self, be: &B) -> Params<B::T> {
        self.to_params(be, &self.tensors)
    }

    /// Host parameters laid out like these ones holding `values` (gradients, moments).
    pub fn to_params(&self, be: &B, values: &[B::Tensor]) -> Params<B::T> {
        assert_eq!(values.len(), self.layout.len(), "one tensor per parameter");
        Params {
            list: self
                .layout
                .iter()
                .zip(values)
                .map(|((name, shape), t)| Param {
                    name: name.clone(),
                    shape: shape.clone(),
                    data: be.download(t),
                })
                .collect(),
        }
    }

    /// Parameter `i`.
    pub fn get(&self, i: usize) -> &B::Tensor {
        &self.tensors[i]
    }

    /// Number of parameter tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Total number of scalars.
    pub fn numel(&self) -> usize {
        self.layout
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum()
    }
}

/// Adam / AdamW whose moments live on the backend beside the parameters.
pub struct ResidentAdam<B: Backend> {
    /// Hyper-parameters and step count (its host moments are left empty while resident).
    hyper: Adam<B::T>,
    m: Vec<B::Tensor>,
    v: Vec<B::Tensor>,
}

impl<B: Backend> ResidentAdam<B> {
    /// Move an optimizer's state onto the backend.
    pub fn upload(be: &B, adam: Adam<B::T>) -> Self {
        let up = |p: &Params<B::T>| -> Vec<B::Tensor> {
            p.list
                .iter()
                .map(|q| be.upload(&q.shape, &q.data, <B::T as Real>::FORMAT))
                .collect()
        };
        let (m, v) = (up(&adam.m), up(&adam.v));
        ResidentAdam {
            hyper: Adam {
                m: Params::default(),
                v: Params::default(),
                ..adam
            },
            m,
            v,
        }
    }

    /// The host form (for checkpoints), moments named like `params`.
    pub fn download(&self, be: &B, params: &Resident<B>) -> Adam<B::T> {
        Adam {
            m: params.to_params(be, &self.m),
            v: params.to_params(be, &self.v),
            ..self.hyper.clone()
        }
    }

    /// Steps taken.
    pub fn step_count(&self) -> u64 {
        self.hyper.step
    }

    /// One update of `params` with `grads` (one per parameter) at learning rate `lr`.
    pub fn step(&mut self, be: &B, params: &mut Resident<B>, grads: &[B::Tensor], lr: f64) {
        assert_eq!(
            grads.len(),
            params.tensors.len(),
            "optimizer: {} parameters but {} gradients",
            params.tensors.len(),
            grads.len()
        );
        assert_eq!(
            self.m.len(),
            params.tensors.len(),
            "optimizer: state was made for {} parameters, got {}",
            self.m.len(),
            params.tensors.len()
        );
        let s = self.hyper.next_scalars(lr);
        for (((p, g), m), v) in params
            .tensors
            .iter_mut()
            .zip(grads)
            .zip(&mut self.m)
            .zip(&mut self.v)
        {
            be.adam_update(p, g, m, v, &s);
        }
    }
}
