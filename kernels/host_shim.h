// kernels/host_shim.h: compiles the CUDA kernel sources with g++ for tests/kernels_host.rs.
// Not for NVRTC (the Rust side never embeds it). Used as
//   g++ -std=c++17 -O2 -ffp-contract=off -shared -fPIC -include kernels/host_shim.h
//       -include kernels/common.cuh -x c++ kernels/X.cu -o X.so
// Every kernel becomes a plain extern "C" function; the test runs a launch serially, thread by
// thread: shim_set(grid, block, block index, thread index), then the kernel. The kernels use no
// shared memory and no barriers, so a serial run computes what the GPU computes (up to the order
// of atomic additions).

#include <cmath>
#include <cstdint>
#include <math.h>

#define __global__
#define __device__ static inline
#define __forceinline__
#define __host__

struct shim_dim3 {
    unsigned x, y, z;
};

static thread_local shim_dim3 gridDim = {1, 1, 1};
static thread_local shim_dim3 blockDim = {1, 1, 1};
static thread_local shim_dim3 blockIdx = {0, 0, 0};
static thread_local shim_dim3 threadIdx = {0, 0, 0};

// The launch geometry the next kernel call sees (on the calling thread).
extern "C" __attribute__((visibility("default"))) void shim_set(unsigned grid_x, unsigned block_x,
                                                                 unsigned block_idx,
                                                                 unsigned thread_idx) {
    gridDim.x = grid_x;
    blockDim.x = block_x;
    blockIdx.x = block_idx;
    threadIdx.x = thread_idx;
}

// Serial atomics: a plain read-modify-write, returning the old value as CUDA does.
static inline float atomicAdd(float* a, float v) {
    float old = *a;
    *a = old + v;
    return old;
}
static inline double atomicAdd(double* a, double v) {
    double old = *a;
    *a = old + v;
    return old;
}
static inline unsigned int atomicAdd(unsigned int* a, unsigned int v) {
    unsigned int old = *a;
    *a = old + v;
    return old;
}
static inline unsigned long long atomicAdd(unsigned long long* a, unsigned long long v) {
    unsigned long long old = *a;
    *a = old + v;
    return old;
}
