// Format conversions on the device.
// CPU reference: mpno::precision::round (f32 -> fp16 / bf16: round to nearest even, subnormals,
// overflow to inf, NaN stays NaN; widening is exact), used by Backend::cast of src/backend/cpu.rs.
// Checked bit for bit by tests/kernels_host.rs (host build) and tests/gpu_cuda.rs (device).
// Needs kernels/common.cuh prepended (u64, GRID_STRIDE, ld_S / st_S).

extern "C" __global__ void f32_to_f16(const float* x, unsigned short* y, u64 n) {
    GRID_STRIDE(i, n) { y[i] = st_f16(x[i]); }
}

extern "C" __global__ void f16_to_f32(const unsigned short* x, float* y, u64 n) {
    GRID_STRIDE(i, n) { y[i] = ld_f16(x[i]); }
}

// convert_A_B: storage A -> float (exact) -> storage B (one rounding; f16 <-> bf16 round once
// from the exactly widened value).
#define CONVERT_KERNEL(A, TA, B, TB)                                                       \
    extern "C" __global__ void convert_##A##_##B(const TA* x, TB* y, u64 n) {            \
        GRID_STRIDE(i, n) { y[i] = st_##B(ld_##A(x[i])); }                               \
    }

CONVERT_KERNEL(f32, float, f16, unsigned short)
CONVERT_KERNEL(f32, float, bf16, unsigned short)
CONVERT_KERNEL(f16, unsigned short, f32, float)
CONVERT_KERNEL(bf16, unsigned short, f32, float)
CONVERT_KERNEL(f16, unsigned short, bf16, unsigned short)
CONVERT_KERNEL(bf16, unsigned short, f16, unsigned short)
