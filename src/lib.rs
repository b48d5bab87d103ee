//! mpno: discretization error versus floating-point precision error of spectral transforms.
//!
//! Conventions (docs/architecture.md): the DFT is X_k = sum_j x_j exp(-2 pi i j k / n), unnormalised;
//! error tools compare the normalised coefficient X_k / n with the continuous Fourier coefficient
//! F(v)(w) = integral over [0,1)^d of v(x) exp(-2 pi i <w, x>) dx.

pub mod audit;
pub mod backend;
pub mod basis;
pub mod bounds;
pub mod cli;
pub mod error;
pub mod experiments;
pub mod fft;
pub mod fno;
pub mod functions;
pub mod interval;
pub mod pde;
pub mod plot;
pub mod precision;
pub mod smoke;
