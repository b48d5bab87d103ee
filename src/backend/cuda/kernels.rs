//! CUDA sources, embedded in the binary so that it runs without the repository; compiled by
//! NVRTC once per process (see `Gpu::function`). Each `kernels/*.cu` names its CPU reference.

/// (name, source) of every kernel file.
pub const KERNELS: &[(&str, &str)] = &[("convert", include_str!("../../../kernels/convert.cu"))];

/// The source of `kernels/NAME.cu`.
pub fn kernel_source(name: &str) -> Option<&'static str> {
    KERNELS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}
