//! Fourier Neural Operators: model, explicit forward/backward pairs, losses, optimizers, precision
//! policies and the trainer.

pub mod checkpoint;
pub mod config;
pub mod data;
pub mod loss;
pub mod metrics;
pub mod optim;
pub mod params;
pub mod scalar;

pub use params::{Param, Params};
pub use scalar::Scalar;
