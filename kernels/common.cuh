// kernels/common.cuh: definitions shared by every kernel file.
//
// Not #included by the .cu files: the Rust side (src/backend/cuda/kernels.rs, `full_source`)
// prepends this text to every .cu source before NVRTC compiles it, and tests/kernels_host.rs
// passes it to g++ with `-include` (after kernels/host_shim.h), so one text serves both.
// No #include at all: NVRTC runs without an include path (its built-in declarations cover the
// math functions, bit casts and atomics used here).
//
// Conventions:
// - Storage suffixes: f32 (float), f16 (unsigned short holding IEEE binary16 bits), bf16
//   (unsigned short holding bfloat16 bits). ld_S widens storage to float exactly; st_S rounds a
//   float to storage once, to nearest even, with subnormals, overflow to inf, NaN stays NaN
//   (CPU reference: mpno::precision::round).
// - Every kernel is 1-D: a grid-stride loop over its stated total, so any launch size works.
// - No shared memory, no __syncthreads (the host test runs threads one after another);
//   reductions go through atomicAdd on float, double or unsigned int.

typedef unsigned long long u64;

// Grid-stride loop of index variable `i` over [0, total).
#define GRID_STRIDE(i, total)                                                                \
    for (u64 i = (u64)blockIdx.x * (u64)blockDim.x + (u64)threadIdx.x; i < (u64)(total);  \
         i += (u64)gridDim.x * (u64)blockDim.x)

// Reductions over a row of `len` values: the row is cut into segments of LANES * CHUNK values,
// each summed by LANES consecutive threads (one warp: launches use blocks of a multiple of 32
// threads, and RTHREADS is a multiple of LANES, so a warp never straddles two segments or rows).
// Reduction thread k of a row (k < RTHREADS(len)), lane l = k % LANES of segment s = k / LANES,
// sums the up to CHUNK values s * LANES * CHUNK + l + LANES * j (j < CHUNK) that lie in the row,
// then makes one atomicAdd. So each load instruction of a warp reads 32 consecutive values
// (coalesced), and there is one atomic per CHUNK values, as with consecutive chunks.
#define LANES 32ull
#define CHUNK 256ull
#define RTHREADS(len) ((((u64)(len) + LANES * CHUNK - 1) / (LANES * CHUNK)) * LANES)
// Loop of index `q` over the values of reduction thread `k` of a row of `len` values.
#define REDUCE_LOOP(q, k, len)                                                               \
    for (u64 q = ((u64)(k) / LANES) * (LANES * CHUNK) + (u64)(k) % LANES,                  \
             q##_end = ((u64)(k) / LANES + 1) * (LANES * CHUNK);                              \
         q < q##_end && q < (u64)(len); q += LANES)

// Instantiate a T-generic kernel macro M(S, T) for every storage type.
#define FOR_EACH_STORAGE(M) M(f32, float) M(f16, unsigned short) M(bf16, unsigned short)

#define DEVFN __device__ __forceinline__

// ---- bit casts ----
#ifdef __CUDACC_RTC__
DEVFN unsigned f32_bits(float x) { return __float_as_uint(x); }
DEVFN float bits_f32(unsigned u) { return __uint_as_float(u); }
#else
DEVFN unsigned f32_bits(float x) {
    unsigned u;
    __builtin_memcpy(&u, &x, sizeof u);
    return u;
}
DEVFN float bits_f32(unsigned u) {
    float x;
    __builtin_memcpy(&x, &u, sizeof x);
    return x;
}
#endif

// Whether a float is neither inf nor NaN (a bit test: no dependence on math headers).
DEVFN bool finite_f32(float x) { return (f32_bits(x) & 0x7f800000u) != 0x7f800000u; }

// ---- storage <-> float ----
DEVFN float ld_f32(float x) { return x; }
DEVFN float st_f32(float x) { return x; }

// bfloat16: the top half of a float. Rounding by integer arithmetic on both paths (exact: adding
// 0x7fff plus the kept lowest bit rounds to nearest even, a carry out of the significand bumps the
// exponent, and the largest finite values carry into the inf encoding).
DEVFN float ld_bf16(unsigned short h) { return bits_f32((unsigned)h << 16); }
DEVFN unsigned short st_bf16(float x) {
    unsigned u = f32_bits(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x0040u);  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);
    return (unsigned short)(u >> 16);
}

#ifdef __CUDACC_RTC__
// IEEE binary16 through the PTX conversions (no cuda_fp16.h, so no include path is needed).
DEVFN float ld_f16(unsigned short h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}
DEVFN unsigned short st_f16(float x) {
    unsigned short h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(x));
    return h;
}
#else
// Software binary16, bit-exact round to nearest even with subnormals, overflow and NaN.
DEVFN float ld_f16(unsigned short h) {
    unsigned sign = ((unsigned)h & 0x8000u) << 16;
    unsigned e = ((unsigned)h >> 10) & 0x1fu;
    unsigned m = (unsigned)h & 0x3ffu;
    if (e == 0x1fu) return bits_f32(sign | 0x7f800000u | (m << 13));  // inf, NaN (payload kept)
    if (e == 0) {
        // Zero or subnormal: m * 2^-24, exact in float.
        float v = (float)m * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((e + 112u) << 23) | (m << 13));
}
DEVFN unsigned short st_f16(float x) {
    unsigned u = f32_bits(x);
    unsigned short sign = (unsigned short)((u >> 16) & 0x8000u);
    unsigned a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (unsigned short)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));  // NaN
    // 65520 = 65504 + half a step rounds (to even) up to 65536: inf. Covers inf inputs too.
    if (a >= 0x477ff000u) return (unsigned short)(sign | 0x7c00u);
    if (a >= 0x38800000u) {
        // Normal result (>= 2^-14): round the significand to 10 bits, then rebias 127 -> 15
        // (a carry into the exponent is the right answer).
        a += 0xfffu + ((a >> 13) & 1u);
        return (unsigned short)(sign | ((a - 0x38000000u) >> 13));
    }
    // Subnormal result: round |x| / 2^-24 to an integer (at most 2^-25, a tie, gives 0).
    if (a <= 0x33000000u) return sign;
    unsigned e = a >> 23;                    // 102..112
    unsigned m = (a & 0x7fffffu) | 0x800000u;
    unsigned s = 126u - e;                   // 14..24
    unsigned q = m >> s;
    unsigned rem = m & ((1u << s) - 1u);
    unsigned half = 1u << (s - 1u);
    if (rem > half || (rem == half && (q & 1u))) q += 1u;  // may reach 0x400: the least normal
    return (unsigned short)(sign | q);
}
#endif

// ---- double atomics before sm_60 ----
#if defined(__CUDACC_RTC__) && defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 600
DEVFN double atomicAdd(double* addr, double val) {
    unsigned long long* p = (unsigned long long*)addr;
    unsigned long long old = *p, assumed;
    do {
        assumed = old;
        old = atomicCAS(p, assumed, __double_as_longlong(val + __longlong_as_double(assumed)));
    } while (assumed != old);
    return __longlong_as_double(old);
}
#endif

// ---- float arithmetic that is never contracted into an FMA ----
// NVRTC contracts a*b+c by default (--fmad=true); where a kernel must match the CPU bit for bit
// (adam.cu) it uses these. On the host path (g++ -ffp-contract=off) they are the plain operators.
#ifdef __CUDACC_RTC__
DEVFN float fmul_rn(float a, float b) { return __fmul_rn(a, b); }
DEVFN float fadd_rn(float a, float b) { return __fadd_rn(a, b); }
DEVFN float fsub_rn(float a, float b) { return __fsub_rn(a, b); }
DEVFN float fdiv_rn(float a, float b) { return __fdiv_rn(a, b); }
DEVFN float fsqrt_rn(float a) { return __fsqrt_rn(a); }
#else
DEVFN float fmul_rn(float a, float b) { return a * b; }
DEVFN float fadd_rn(float a, float b) { return a + b; }
DEVFN float fsub_rn(float a, float b) { return a - b; }
DEVFN float fdiv_rn(float a, float b) { return a / b; }
DEVFN float fsqrt_rn(float a) { return sqrtf(a); }
#endif

// ---- complex helpers (interleaved re, im) ----
struct cf32 {
    float re, im;
};
struct cf64 {
    double re, im;
};
DEVFN cf64 cmul64(cf64 a, cf64 b) {
    cf64 r;
    r.re = a.re * b.re - a.im * b.im;
    r.im = a.re * b.im + a.im * b.re;
    return r;
}
DEVFN cf64 conj64(cf64 a) {
    a.im = -a.im;
    return a;
}
// Complex value `idx` of an interleaved f32 array, widened to double.
DEVFN cf64 ldc64(const float* v, u64 idx) {
    cf64 r;
    r.re = (double)v[2 * idx];
    r.im = (double)v[2 * idx + 1];
    return r;
}
DEVFN cf64 ldc64d(const double* v, u64 idx) {
    cf64 r;
    r.re = v[2 * idx];
    r.im = v[2 * idx + 1];
    return r;
}
