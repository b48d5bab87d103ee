//! Fourier Neural Operators: model, explicit forward/backward pairs, losses, optimizers, precision
//! policies and the trainer.

pub mod audit_log;
pub mod budget;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod fastmath;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod optim;
pub mod params;
pub mod policy;
pub mod quant;
pub mod resident;
pub mod scalar;
pub mod train;

pub use model::{Factorization, Fno, FnoConfig, Overflow};
pub use params::{Param, Params};
pub use policy::{Policy, Stabilizer, Stage};
pub use resident::{Resident, ResidentAdam};
pub use scalar::Scalar;
