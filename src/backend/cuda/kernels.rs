//! CUDA sources, embedded in the binary so that it runs without the repository; compiled by
//! NVRTC once per process (see `Gpu::function`). Each `kernels/*.cu` names its CPU reference.
//!
//! The `.cu` files do not `#include` anything: NVRTC compiles [`full_source`], which is
//! `kernels/common.cuh` ([`COMMON`]: `u64`, the grid-stride loop, the storage conversions
//! `ld_S` / `st_S`) followed by the file. `tests/kernels_host.rs` compiles the same text with g++
//! (through `kernels/host_shim.h`) and checks every kernel against the CPU reference, and checks
//! [`KERNEL_NAMES`] against the preprocessed sources.

/// The header every kernel file is compiled with (prepended, not included).
pub const COMMON: &str = include_str!("../../../kernels/common.cuh");

/// Values each reduction thread sums before its one atomicAdd (`CHUNK` in `kernels/common.cuh`).
pub const REDUCE_CHUNK: usize = 256;

/// Threads of a warp that share one segment of a reduced row (`LANES` in `kernels/common.cuh`):
/// lane `l` sums the values `l, l + LANES, ...` of its segment, so a warp's loads are coalesced.
pub const REDUCE_LANES: usize = 32;

/// The reduction threads of one row of `len` values (`RTHREADS` in `kernels/common.cuh`): a
/// multiple of [`REDUCE_LANES`], one warp per segment of `REDUCE_LANES * REDUCE_CHUNK` values.
/// A reduction kernel over `rows` such rows is launched with `rows * reduce_threads(len)` threads.
pub fn reduce_threads(len: usize) -> usize {
    len.div_ceil(REDUCE_LANES * REDUCE_CHUNK) * REDUCE_LANES
}

/// (name, source) of every kernel file.
pub const KERNELS: &[(&str, &str)] = &[
    ("convert", include_str!("../../../kernels/convert.cu")),
    ("pointwise", include_str!("../../../kernels/pointwise.cu")),
    ("channels", include_str!("../../../kernels/channels.cu")),
    ("spectral", include_str!("../../../kernels/spectral.cu")),
    ("contract", include_str!("../../../kernels/contract.cu")),
    ("adam", include_str!("../../../kernels/adam.cu")),
    ("loss", include_str!("../../../kernels/loss.cu")),
];

/// Every `extern "C"` kernel of each file (after macro instantiation): the names the Rust side
/// launches. Generic kernels come as `NAME_f32`, `NAME_f16` (IEEE binary16 bits in `u16`) and
/// `NAME_bf16` (bfloat16 bits in `u16`).
pub const KERNEL_NAMES: &[(&str, &[&str])] = &[
    (
        "convert",
        &[
            "f32_to_f16",
            "f16_to_f32",
            "convert_f32_f16",
            "convert_f32_bf16",
            "convert_f16_f32",
            "convert_bf16_f32",
            "convert_f16_bf16",
            "convert_bf16_f16",
        ],
    ),
    (
        "pointwise",
        &[
            "pointwise_f32",
            "pointwise_f16",
            "pointwise_bf16",
            "pointwise_backward_f32",
            "pointwise_backward_f16",
            "pointwise_backward_bf16",
            "add_f32",
            "add_f16",
            "add_bf16",
            "count_nonfinite_f32",
            "count_nonfinite_f16",
            "count_nonfinite_bf16",
            "sum_f32",
            "sum_f16",
            "sum_bf16",
            "sum_sq_dev_f32",
            "sum_sq_dev_f16",
            "sum_sq_dev_bf16",
            "add_act_f32",
            "add_act_f16",
            "add_act_bf16",
            "pointwise_backward_add_f32",
            "pointwise_backward_add_f16",
            "pointwise_backward_add_bf16",
            "pointwise_backward_channel_sum_f32",
            "pointwise_backward_channel_sum_f16",
            "pointwise_backward_channel_sum_bf16",
        ],
    ),
    (
        "channels",
        &[
            "add_bias_f32",
            "add_bias_f16",
            "add_bias_bf16",
            "scale_channels_f32",
            "scale_channels_f16",
            "scale_channels_bf16",
            "channel_dot_f32",
            "channel_dot_f16",
            "channel_dot_bf16",
            "channel_sum_f32",
            "channel_sum_f16",
            "channel_sum_bf16",
            "copy_channels_f32",
            "copy_channels_f16",
            "copy_channels_bf16",
        ],
    ),
    (
        "spectral",
        &[
            "fwd_last_f32",
            "fwd_last_f16",
            "fwd_last_bf16",
            "fwd_lead_f32",
            "fwd_lead_f16",
            "fwd_lead_bf16",
            "inv_lead_f32",
            "inv_lead_f16",
            "inv_lead_bf16",
            "inv_last_f32",
            "inv_last_f16",
            "inv_last_bf16",
            "rotate_f32",
            "rotate_f16",
            "rotate_bf16",
        ],
    ),
    (
        "contract",
        &[
            "ctranspose_f32",
            "ctranspose_f16",
            "ctranspose_bf16",
            "block_weight_f32",
            "block_weight_f16",
            "block_weight_bf16",
            "combine_gw_f32",
            "combine_gw_f16",
            "combine_gw_bf16",
            "gauss_planes_f32",
            "gauss_planes_f16",
            "gauss_planes_bf16",
            "gauss_combine_f32",
            "gauss_combine_f16",
            "gauss_combine_bf16",
            "cp_mode_products",
            "cp_expand",
            "cp_grad_s",
            "cp_grad_factors",
            "cp_grad_t",
            "cp_grad_modes",
        ],
    ),
    ("adam", &["adam_f32"]),
    (
        "loss",
        &[
            "rel_l2_sums_f32",
            "rel_l2_grad_f32",
            "h1_sums_f32",
            "h1_grad_f32",
        ],
    ),
];

/// The source of `kernels/NAME.cu`.
pub fn kernel_source(name: &str) -> Option<&'static str> {
    KERNELS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// What NVRTC compiles for `kernels/NAME.cu`: [`COMMON`], a newline, then the file.
pub fn full_source(name: &str) -> Option<String> {
    kernel_source(name).map(|s| format!("{COMMON}\n{s}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduce_geometry_matches_the_kernels() {
        assert!(COMMON.contains(&format!("#define CHUNK {REDUCE_CHUNK}ull")));
        assert!(COMMON.contains(&format!("#define LANES {REDUCE_LANES}ull")));
        let seg = REDUCE_LANES * REDUCE_CHUNK;
        for (len, threads) in [(0, 0), (1, 32), (seg, 32), (seg + 1, 64), (3 * seg, 96)] {
            assert_eq!(reduce_threads(len), threads, "len {len}");
        }
    }

    #[test]
    fn every_file_has_its_names_and_names_are_unique() {
        let files: Vec<&str> = KERNELS.iter().map(|(n, _)| *n).collect();
        let named: Vec<&str> = KERNEL_NAMES.iter().map(|(n, _)| *n).collect();
        assert_eq!(files, named);
        let mut all: Vec<&str> = KERNEL_NAMES
            .iter()
            .flat_map(|(_, k)| k.iter().copied())
            .collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "a kernel name appears twice");
    }

    #[test]
    fn full_source_is_the_common_header_then_the_file() {
        let common = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("kernels/common.cuh"),
        )
        .unwrap();
        assert_eq!(COMMON, common);
        for (name, src) in KERNELS {
            assert_eq!(full_source(name).unwrap(), format!("{common}\n{src}"));
            assert!(
                !src.contains("#include"),
                "{name}.cu: NVRTC has no include path"
            );
        }
        assert!(full_source("nope").is_none());
    }

    /// A name in the source for every listed kernel: literal, or `STEM_##S` in a macro that is
    /// instantiated with `FOR_EACH_STORAGE` (the exact check, on preprocessed sources, is in
    /// tests/kernels_host.rs).
    #[test]
    fn listed_names_appear_in_the_sources() {
        for (file, names) in KERNEL_NAMES {
            let src = kernel_source(file).unwrap();
            for name in *names {
                let generic = ["_f32", "_f16", "_bf16"].iter().any(|s| {
                    name.strip_suffix(s).is_some_and(|stem| {
                        src.contains(&format!("void {stem}_##S("))
                            && src.contains("FOR_EACH_STORAGE(")
                    })
                });
                let literal = src.contains(&format!("void {name}("));
                let converted = name.strip_prefix("convert_").is_some_and(|pair| {
                    let (a, b) = pair.split_once('_').unwrap();
                    src.contains("convert_##A##_##B(")
                        && src.lines().any(|l| {
                            l.starts_with(&format!("CONVERT_KERNEL({a},"))
                                && l.contains(&format!(", {b}, "))
                        })
                });
                assert!(
                    literal || generic || converted,
                    "{file}.cu: kernel {name} not found"
                );
            }
        }
    }
}
