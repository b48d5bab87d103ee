//! Compute backends. `cuda` is the NVIDIA GPU layer (cudarc with dynamic loading: the default
//! build needs no CUDA toolkit, and without a driver every entry point returns a clear error).
pub mod cuda;
