//! Fourier Neural Operators: model, explicit forward/backward pairs, losses, optimizers, precision
//! policies and the trainer.

pub mod fastmath;
pub mod model;
pub mod params;
pub mod policy;
pub mod scalar;

pub use model::{Factorization, Fno, FnoConfig, Overflow};
pub use params::{Param, Params};
pub use policy::{Policy, Stabilizer};
pub use scalar::Scalar;
