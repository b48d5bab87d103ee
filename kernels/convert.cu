// Format conversions on the device.
// CPU reference: mpno::precision::round (f32 -> fp16, round to nearest even, subnormals, overflow
// to inf), checked bit for bit by tests/gpu_cuda.rs.
// No cuda_fp16.h: the PTX cvt instructions need no header, so NVRTC needs no include path.

extern "C" __global__ void f32_to_f16(const float* x, unsigned short* y, unsigned long long n) {
    unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x;
    if (i < n) {
        unsigned short h;
        asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(x[i]));
        y[i] = h;
    }
}

extern "C" __global__ void f16_to_f32(const unsigned short* x, float* y, unsigned long long n) {
    unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x;
    if (i < n) {
        float f;
        asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(x[i]));
        y[i] = f;
    }
}
