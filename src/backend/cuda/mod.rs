//! The NVIDIA GPU layer: device discovery, a context with one stream, device memory with
//! peak-usage accounting, an NVRTC kernel registry and cuFFT plans (fp32 through cudarc, fp16
//! through `cufftXt*` looked up in the cuFFT library cudarc loaded).
//!
//! Built with cargo feature `cuda` (default). cudarc loads libcuda / libnvrtc / libcufft at run
//! time, so the binary links only libc; every entry point first checks that the driver library
//! exists and returns [`CudaError::NoDriver`] otherwise (cudarc would panic).

#[cfg(feature = "cuda")]
mod backend;
mod cache;
#[cfg(feature = "cuda")]
mod device;
mod dft;
#[cfg(feature = "cuda")]
mod fft;
mod gemm;
mod kernels;

#[cfg(feature = "cuda")]
pub use backend::{Cuda, GpuCTensor, GpuChecks, GpuTensor, catch};
pub use cache::{MemTracker, PlanCache};
#[cfg(feature = "cuda")]
pub use device::{DeviceBuf, Gpu, compile_cubin, compile_ptx};
pub use dft::{DftStep, check_steps, forward_steps, inverse_steps};
#[cfg(feature = "cuda")]
pub use fft::{Dtype, FftKind, HalfFft, PlanKey, XtPlan};
pub use gemm::{ContractGemms, GemmShape, gauss_gemm};
pub use kernels::{COMMON, KERNEL_NAMES, KERNELS, full_source, kernel_source, reduce_threads};

/// Why a GPU operation could not run.
#[derive(Debug, thiserror::Error)]
pub enum CudaError {
    /// Built without the `cuda` feature.
    #[error("mpno was built without CUDA support (cargo feature `cuda`)")]
    NotCompiled,
    /// libcuda could not be loaded: no NVIDIA driver on this machine.
    #[error("no NVIDIA driver found (libcuda could not be loaded)")]
    NoDriver,
    /// The driver reports no device, or not the one asked for.
    #[error("no CUDA device {0} (this machine has {1})")]
    NoDevice(usize, usize),
    /// A CUDA library (cuFFT, NVRTC) could not be loaded.
    #[error("CUDA library {0} not found: {1}")]
    NoLibrary(&'static str, String),
    /// The requested transform cannot run in this precision.
    #[error("{0}")]
    Unsupported(String),
    /// Not enough device memory.
    #[error("out of GPU memory: requested {requested} bytes, {available} bytes available")]
    OutOfMemory { requested: usize, available: usize },
    /// NVRTC compilation failed.
    #[error("NVRTC could not compile kernels/{0}.cu: {1}")]
    Compile(String, String),
    /// The driver is older than the NVRTC library that compiled the kernels (it refuses their
    /// PTX version). Versions as CUDA encodes them: 1000 x major + 10 x minor.
    #[error(
        "the NVIDIA driver (CUDA {}.{}) cannot load kernels/{file}.cu as compiled by NVRTC {}.{} \
         (a newer PTX version): load an NVRTC no newer than the driver (put that CUDA \
         version's lib64 first in LD_LIBRARY_PATH) or update the driver",
        driver / 1000, driver % 1000 / 10, nvrtc / 1000, nvrtc % 1000 / 10
    )]
    PtxVersion {
        file: String,
        nvrtc: i32,
        driver: i32,
    },
    /// Any other driver / library error.
    #[error("CUDA error: {0}")]
    Driver(String),
}

/// One GPU as the driver reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceInfo {
    pub ordinal: usize,
    pub name: String,
    /// Compute capability (major, minor).
    pub compute_capability: (i32, i32),
    /// Total and free device memory in bytes.
    pub total_bytes: usize,
    pub free_bytes: usize,
}

/// The GPUs on this machine; an error (never a panic) when there is no driver.
pub fn devices() -> Result<Vec<DeviceInfo>, CudaError> {
    #[cfg(feature = "cuda")]
    {
        device::devices()
    }
    #[cfg(not(feature = "cuda"))]
    {
        Err(CudaError::NotCompiled)
    }
}

/// The CUDA libraries this process has loaded (libcuda, libnvrtc, libcublas(Lt), libcufft), as
/// full paths from `/proc/self/maps`: what the loader really picked. cudarc tries the
/// unversioned name (`libnvrtc.so`) before the versioned ones, so a toolkit of another CUDA
/// version earlier on the loader path can win over the libraries the run meant; this says which.
/// Empty where `/proc` is not readable.
pub fn loaded_libraries() -> Vec<String> {
    std::fs::read_to_string("/proc/self/maps")
        .map(|maps| cuda_libraries_in(&maps))
        .unwrap_or_default()
}

/// The CUDA library paths named in a `/proc/PID/maps` text, sorted, each once.
pub fn cuda_libraries_in(maps: &str) -> Vec<String> {
    let mut libs: Vec<String> = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|path| {
            let file = path.rsplit('/').next().unwrap_or(path);
            ["libcuda.so", "libnvrtc", "libcublas", "libcufft"]
                .iter()
                .any(|lib| file.starts_with(lib))
        })
        .map(str::to_string)
        .collect();
    libs.sort_unstable();
    libs.dedup();
    libs
}

/// Whether a CUDA driver is present (libcuda loads).
pub fn driver_present() -> bool {
    #[cfg(feature = "cuda")]
    {
        // SAFETY: only tries to dlopen the library.
        unsafe { cudarc::driver::sys::is_culib_present() }
    }
    #[cfg(not(feature = "cuda"))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cuda_libraries_are_read_from_the_maps_text() {
        let maps = "\
7f00-7f10 r--p 00000000 08:01 1 /usr/lib/x86_64-linux-gnu/libcuda.so.580.65.06
7f10-7f20 r-xp 00010000 08:01 1 /usr/lib/x86_64-linux-gnu/libcuda.so.580.65.06
7f20-7f30 r--p 00000000 08:01 2 /usr/local/cuda/lib64/libnvrtc.so.12.8.93
7f30-7f40 r--p 00000000 08:01 3 /x/nvidia/cu13/lib/libcublasLt.so.13
7f40-7f50 r--p 00000000 08:01 4 /usr/lib/libcudart_fake.so
7f50-7f60 rw-p 00000000 00:00 0
7f60-7f70 r--p 00000000 08:01 5 /usr/lib/x86_64-linux-gnu/libm.so.6
7f70-7f80 r--p 00000000 08:01 6 /x/nvidia/cu13/lib/libcufft.so.12
";
        assert_eq!(
            super::cuda_libraries_in(maps),
            [
                "/usr/lib/x86_64-linux-gnu/libcuda.so.580.65.06",
                "/usr/local/cuda/lib64/libnvrtc.so.12.8.93",
                "/x/nvidia/cu13/lib/libcublasLt.so.13",
                "/x/nvidia/cu13/lib/libcufft.so.12",
            ]
        );
    }
}
