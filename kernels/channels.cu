// Per-channel maps and reductions over (batch, c, p) tensors, row-major, p points per channel.
// CPU reference: Cpu::add_bias, Cpu::scale_channels, Cpu::scale_channels_backward (gx is
// scale_channels of g, gw is channel_dot), Cpu::channel_sum, Cpu::concat_channels and
// Cpu::slice_channels (copy_channels) in src/backend/cpu.rs. Arithmetic in float, one rounding to
// the output storage type; channel reductions accumulate float partial sums of up to CHUNK points
// of one (batch, channel) row (REDUCE_LOOP: a warp reads consecutive points), then one atomicAdd
// per reduction thread.
// Needs kernels/common.cuh prepended.

#define CHANNEL_KERNELS(S, T)                                                                 \
    /* y[i] = x[i] + bias[(i / p) % c]; n = batch * c * p. */                                \
    extern "C" __global__ void add_bias_##S(const T* x, const float* bias, T* y, u64 n, u64 c, \
                                             u64 p) {                                          \
        GRID_STRIDE(i, n) { y[i] = st_##S(ld_##S(x[i]) + bias[(i / p) % c]); }                \
    }                                                                                          \
    /* y[i] = x[i] * w[(i / p) % c]. */                                                       \
    extern "C" __global__ void scale_channels_##S(const T* x, const float* w, T* y, u64 n,    \
                                                   u64 c, u64 p) {                             \
        GRID_STRIDE(i, n) { y[i] = st_##S(ld_##S(x[i]) * w[(i / p) % c]); }                   \
    }                                                                                          \
    /* out[ch] += sum_{b, q} a[b, ch, q] b[b, ch, q]; batch * c * RTHREADS(p) threads. */    \
    extern "C" __global__ void channel_dot_##S(const T* a, const T* b, float* out, u64 batch, \
                                                u64 c, u64 p) {                                \
        u64 per_row = RTHREADS(p);                                                            \
        GRID_STRIDE(t, batch * c * per_row) {                                                 \
            u64 row = t / per_row;                                                            \
            float s = 0.0f;                                                                    \
            REDUCE_LOOP(q, t % per_row, p) s += ld_##S(a[row * p + q]) * ld_##S(b[row * p + q]); \
            atomicAdd(&out[row % c], s);                                                       \
        }                                                                                      \
    }                                                                                          \
    /* out[ch] += sum_{b, q} g[b, ch, q]; batch * c * RTHREADS(p) threads. */                 \
    extern "C" __global__ void channel_sum_##S(const T* g, float* out, u64 batch, u64 c,      \
                                                u64 p) {                                       \
        u64 per_row = RTHREADS(p);                                                            \
        GRID_STRIDE(t, batch * c * per_row) {                                                 \
            u64 row = t / per_row;                                                            \
            float s = 0.0f;                                                                    \
            REDUCE_LOOP(q, t % per_row, p) s += ld_##S(g[row * p + q]);                        \
            atomicAdd(&out[row % c], s);                                                       \
        }                                                                                      \
    }                                                                                          \
    /* dst[b, lo_dst + j, q] = src[b, lo_src + j, q] for j < count; batch * count * p threads. \
       concat_channels is two copies, slice_channels one. */                                   \
    extern "C" __global__ void copy_channels_##S(const T* src, T* dst, u64 batch, u64 c_src,  \
                                                  u64 lo_src, u64 c_dst, u64 lo_dst,           \
                                                  u64 count, u64 p) {                          \
        GRID_STRIDE(i, batch * count * p) {                                                   \
            u64 q = i % p, j = (i / p) % count, b = i / (p * count);                          \
            dst[(b * c_dst + lo_dst + j) * p + q] = src[(b * c_src + lo_src + j) * p + q];    \
        }                                                                                      \
    }

FOR_EACH_STORAGE(CHANNEL_KERNELS)
