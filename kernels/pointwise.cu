// Elementwise maps, their derivatives, the reductions of the stabilizers, and the fused passes.
// CPU reference: Cpu::pointwise, Cpu::pointwise_backward, Cpu::add, Cpu::all_finite,
// Cpu::mean_std, Cpu::add_act, Cpu::pointwise_backward_add and
// Cpu::pointwise_backward_channel_sum in src/backend/cpu.rs (op codes follow backend::Pointwise: 0 Gelu, 1 Tanh,
// 2 Clip { lo: a, hi: b }, 3 Scale(a)). Arithmetic in float in the reference's operation order,
// one rounding to the output storage type.
// Needs kernels/common.cuh prepended.

#define PW_GELU 0
#define PW_TANH 1
#define PW_CLIP 2
#define PW_SCALE 3

// f32(1 / sqrt 2) and f32(1 / sqrt(2 pi)), the constants the reference rounds to its scalar.
#define RSQRT2_F 0.70710678118654752440f
#define RSQRT2PI_F 0.39894228040143267794f

DEVFN float pointwise_op(float v, int op, float a, float b) {
    if (op == PW_GELU) return 0.5f * v * (1.0f + erff(v * RSQRT2_F));
    if (op == PW_TANH) return tanhf(v);
    if (op == PW_CLIP) {
        // NaN fails both tests and stays NaN.
        if (v < a) return a;
        if (v > b) return b;
        return v;
    }
    return v * a;
}

// g times the derivative at v.
DEVFN float pointwise_grad(float v, float g, int op, float a, float b) {
    if (op == PW_GELU) {
        // d/dx x Phi(x) = Phi(x) + x phi(x).
        float d = 0.5f * (1.0f + erff(v * RSQRT2_F)) + v * RSQRT2PI_F * expf(-(0.5f * v * v));
        return g * d;
    }
    if (op == PW_TANH) {
        float t = tanhf(v);
        return g * (1.0f - t * t);
    }
    if (op == PW_CLIP) {
        // Multiply (not assign) so an inf/NaN gradient stays visible.
        if (v < a || v > b) return g * 0.0f;
        return g;
    }
    return g * a;
}

#define POINTWISE_KERNELS(S, T)                                                              \
    extern "C" __global__ void pointwise_##S(const T* x, T* y, u64 n, int op, float a,        \
                                              float b) {                                      \
        GRID_STRIDE(i, n) { y[i] = st_##S(pointwise_op(ld_##S(x[i]), op, a, b)); }           \
    }                                                                                         \
    extern "C" __global__ void pointwise_backward_##S(const T* x, const T* g, T* y, u64 n,    \
                                                       int op, float a, float b) {            \
        GRID_STRIDE(i, n) {                                                                  \
            y[i] = st_##S(pointwise_grad(ld_##S(x[i]), ld_##S(g[i]), op, a, b));             \
        }                                                                                     \
    }                                                                                         \
    extern "C" __global__ void add_##S(const T* a, const T* b, T* y, u64 n) {                \
        GRID_STRIDE(i, n) { y[i] = st_##S(ld_##S(a[i]) + ld_##S(b[i])); }                    \
    }                                                                                         \
    /* count += number of inf/NaN values; RTHREADS(n) threads. */                           \
    extern "C" __global__ void count_nonfinite_##S(const T* x, u64 n, unsigned int* count) { \
        GRID_STRIDE(k, RTHREADS(n)) {                                                        \
            unsigned int bad = 0;                                                             \
            REDUCE_LOOP(i, k, n) bad += finite_f32(ld_##S(x[i])) ? 0u : 1u;                  \
            if (bad) atomicAdd(count, bad);                                                   \
        }                                                                                     \
    }                                                                                         \
    /* acc += sum x (double); RTHREADS(n) threads. */                                         \
    extern "C" __global__ void sum_##S(const T* x, u64 n, double* acc) {                     \
        GRID_STRIDE(k, RTHREADS(n)) {                                                        \
            double s = 0.0;                                                                   \
            REDUCE_LOOP(i, k, n) s += (double)ld_##S(x[i]);                                   \
            atomicAdd(acc, s);                                                                \
        }                                                                                     \
    }                                                                                         \
    /* acc += sum (x - mean)^2 (double), the second pass of mean_std; RTHREADS(n) threads. */ \
    extern "C" __global__ void sum_sq_dev_##S(const T* x, u64 n, double mean, double* acc) { \
        GRID_STRIDE(k, RTHREADS(n)) {                                                        \
            double s = 0.0;                                                                   \
            REDUCE_LOOP(i, k, n) {                                                            \
                double d = (double)ld_##S(x[i]) - mean;                                       \
                s += d * d;                                                                   \
            }                                                                                 \
            atomicAdd(acc, s);                                                                \
        }                                                                                     \
    }

FOR_EACH_STORAGE(POINTWISE_KERNELS)

// The fused passes (issue 24): each performs the operations of the kernels it replaces in their
// order, with every intermediate stored to the storage type and loaded again (st then ld) where
// those kernels stored it, so its results are the same bits; one pass over memory instead of two
// or three. Launched where every operand has the one storage type (else the ops run).
#define FUSED_KERNELS(S, T)                                                                   \
    /* u = (x + bias[(i / p) % c]) + s and v = op(u); flags: 1 bias, 2 addend (s); the sum   \
       x + bias is stored and loaded again when an addend follows (add_bias's result). */     \
    extern "C" __global__ void add_act_##S(const T* x, const float* bias, const T* s, T* u,   \
                                            T* v, u64 n, u64 c, u64 p, int flags, int op,     \
                                            float a, float b) {                               \
        GRID_STRIDE(i, n) {                                                                  \
            float t = ld_##S(x[i]);                                                           \
            if (flags & 1) {                                                                  \
                t = t + bias[(i / p) % c];                                                    \
                if (flags & 2) t = ld_##S(st_##S(t));                                         \
            }                                                                                 \
            if (flags & 2) t = t + ld_##S(s[i]);                                              \
            T ut = st_##S(t);                                                                 \
            u[i] = ut;                                                                        \
            v[i] = st_##S(pointwise_op(ld_##S(ut), op, a, b));                                \
        }                                                                                     \
    }                                                                                         \
    /* y = grad(x, g) + a0 + a1 (nadds of the two addends), each sum stored and loaded again  \
       (pointwise_backward then add, add). */                                                \
    extern "C" __global__ void pointwise_backward_add_##S(const T* x, const T* g, const T* a0, \
                                                           const T* a1, T* y, u64 n, int nadds, \
                                                           int op, float a, float b) {          \
        GRID_STRIDE(i, n) {                                                                  \
            T t = st_##S(pointwise_grad(ld_##S(x[i]), ld_##S(g[i]), op, a, b));               \
            if (nadds > 0) t = st_##S(ld_##S(t) + ld_##S(a0[i]));                             \
            if (nadds > 1) t = st_##S(ld_##S(t) + ld_##S(a1[i]));                             \
            y[i] = t;                                                                         \
        }                                                                                     \
    }                                                                                         \
    /* y = grad(x, g) stored, and out[ch] += the sum of the stored values of each reduction  \
       thread of a (batch, ch) row (channel_sum of y); batch * c * RTHREADS(p) threads. */    \
    extern "C" __global__ void pointwise_backward_channel_sum_##S(                            \
        const T* x, const T* g, T* y, float* out, u64 batch, u64 c, u64 p, int op, float a,   \
        float b) {                                                                            \
        u64 per_row = RTHREADS(p);                                                            \
        GRID_STRIDE(t, batch * c * per_row) {                                                 \
            u64 row = t / per_row;                                                            \
            float s = 0.0f;                                                                   \
            REDUCE_LOOP(q, t % per_row, p) {                                                  \
                u64 i = row * p + q;                                                          \
                T v = st_##S(pointwise_grad(ld_##S(x[i]), ld_##S(g[i]), op, a, b));           \
                y[i] = v;                                                                     \
                s += ld_##S(v);                                                               \
            }                                                                                 \
            atomicAdd(&out[row % c], s);                                                      \
        }                                                                                     \
    }

FOR_EACH_STORAGE(FUSED_KERNELS)
