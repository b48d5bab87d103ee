// Gather / scatter steps around cuFFT for the truncated spectral transforms, and the rotation
// step of their GEMM form (at the end).
// CPU reference: Cpu::rfft_impl / Cpu::irfft_impl (Backend::rfft_modes / irfft_modes) in
// src/backend/cpu.rs. Complex values are interleaved (re, im) pairs of storage T.
//
// Notation: bc = batch * channels; grid (n0, n1, nl) with absent leading axes of size 1;
// lead = n0 * n1; nh = nl / 2 + 1; kept modes m0, m1 per leading axis (2m kept: index j < m is
// grid index j, else n - 2m + j; m = 0 marks an absent axis, kept extent 1 at index 0) and
// ml <= nh along the last axis; kept tensor [bc][K0][K1][ml], K = (m > 0 ? 2m : 1).
//
// Forward:  R2C along the last axis -> fwd_last -> C2C over the leading axes -> fwd_lead.
// Inverse:  inv_lead -> inverse C2C over the leading axes -> inv_last -> C2R along the last axis.
// The C2R computes sum_k c_k Re(Z_k e^{2 pi i j k / nl}) with c_k = 1 at k = 0 and k = nl / 2,
// 2 otherwise, once Im Z_0 = Im Z_{nl/2} = 0 (inv_last), so inv_lead scales by c' = 1
// (hermitian: the CPU's scale sum_k c_k Re(X_k e^...)) or c' = 1 / c_k (adjoint: scale sum_k
// Re(X_k e^...)).
// Needs kernels/common.cuh prepended.

// Grid index of kept index j along a leading axis of n points with m kept pairs (m = 0: absent).
DEVFN u64 kept_to_grid(u64 j, u64 m, u64 n) { return (m == 0 || j < m) ? j : n - 2 * m + j; }

// Kept index of grid index g, or -1 when g is not kept.
DEVFN long long grid_to_kept(u64 g, u64 m, u64 n) {
    if (m == 0) return (long long)g;  // absent axis: n = 1, g = 0
    if (g < m) return (long long)g;
    if (g >= n - m) return (long long)(g - (n - 2 * m));
    return -1;
}

// c_k of the Hermitian completion along the last axis of nl points.
DEVFN float herm_weight(u64 k, u64 nl) { return (k == 0 || 2 * k == nl) ? 1.0f : 2.0f; }

#define SPECTRAL_KERNELS(S, T)                                                                \
    /* out[bc][k][l] = r2c[bc][l][k], k < ml (a copy: no rounding change); bc*ml*lead threads. */ \
    extern "C" __global__ void fwd_last_##S(const T* r2c, T* out, u64 bc, u64 lead, u64 nh,   \
                                             u64 ml) {                                          \
        GRID_STRIDE(i, bc * ml * lead) {                                                      \
            u64 l = i % lead, k = (i / lead) % ml, b = i / (lead * ml);                        \
            u64 src = (b * lead + l) * nh + k;                                                 \
            out[2 * i] = r2c[2 * src];                                                         \
            out[2 * i + 1] = r2c[2 * src + 1];                                                 \
        }                                                                                      \
    }                                                                                          \
    /* kept[bc][j0][j1][k] = scale * w_k * full[bc][k][g0(j0)][g1(j1)]; bc*K0*K1*ml threads. */ \
    extern "C" __global__ void fwd_lead_##S(const T* full, T* kept, u64 bc, u64 n0, u64 n1,   \
                                             u64 m0, u64 m1, u64 ml, u64 nl, float scale,       \
                                             int hermitian) {                                   \
        u64 k0 = m0 > 0 ? 2 * m0 : 1, k1 = m1 > 0 ? 2 * m1 : 1;                               \
        GRID_STRIDE(i, bc * k0 * k1 * ml) {                                                   \
            u64 k = i % ml, j1 = (i / ml) % k1, j0 = (i / (ml * k1)) % k0;                     \
            u64 b = i / (ml * k1 * k0);                                                        \
            u64 src = ((b * ml + k) * n0 + kept_to_grid(j0, m0, n0)) * n1 +                   \
                      kept_to_grid(j1, m1, n1);                                                \
            float w = (hermitian && herm_weight(k, nl) == 2.0f) ? 2.0f : 1.0f;                 \
            /* (v * scale) * w: the reference's order (w is 1 or 2, exact). */                  \
            kept[2 * i] = st_##S(ld_##S(full[2 * src]) * scale * w);                            \
            kept[2 * i + 1] = st_##S(ld_##S(full[2 * src + 1]) * scale * w);                   \
        }                                                                                      \
    }                                                                                          \
    /* full[bc][k][g0][g1] = scale * c' * kept[...] at kept positions, 0 elsewhere (every     \
       entry written); bc*ml*n0*n1 threads. */                                                 \
    extern "C" __global__ void inv_lead_##S(const T* kept, T* full, u64 bc, u64 n0, u64 n1,   \
                                             u64 m0, u64 m1, u64 ml, u64 nl, float scale,       \
                                             int hermitian) {                                   \
        u64 k0 = m0 > 0 ? 2 * m0 : 1, k1 = m1 > 0 ? 2 * m1 : 1;                               \
        GRID_STRIDE(i, bc * ml * n0 * n1) {                                                   \
            u64 g1 = i % n1, g0 = (i / n1) % n0, k = (i / (n1 * n0)) % ml;                     \
            u64 b = i / (n1 * n0 * ml);                                                        \
            long long j0 = grid_to_kept(g0, m0, n0), j1 = grid_to_kept(g1, m1, n1);            \
            float re = 0.0f, im = 0.0f;                                                        \
            if (j0 >= 0 && j1 >= 0) {                                                          \
                u64 src = ((b * k0 + (u64)j0) * k1 + (u64)j1) * ml + k;                        \
                float c = hermitian ? 1.0f : 1.0f / herm_weight(k, nl);                        \
                re = ld_##S(kept[2 * src]) * scale * c;                                         \
                im = ld_##S(kept[2 * src + 1]) * scale * c;                                     \
            }                                                                                  \
            full[2 * i] = st_##S(re);                                                          \
            full[2 * i + 1] = st_##S(im);                                                      \
        }                                                                                      \
    }                                                                                          \
    /* c2r_in[bc][l][k] = full[bc][k][l] for k < ml, 0 for ml <= k < nh; Im = 0 at k = 0 and  \
       2k = nl; bc*lead*nh threads. */                                                         \
    extern "C" __global__ void inv_last_##S(const T* full, T* c2r_in, u64 bc, u64 lead,       \
                                             u64 nh, u64 ml, u64 nl) {                          \
        GRID_STRIDE(i, bc * lead * nh) {                                                      \
            u64 k = i % nh, l = (i / nh) % lead, b = i / (nh * lead);                          \
            T re = st_##S(0.0f), im = st_##S(0.0f);                                            \
            if (k < ml) {                                                                      \
                u64 src = (b * ml + k) * lead + l;                                             \
                re = full[2 * src];                                                            \
                if (k != 0 && 2 * k != nl) im = full[2 * src + 1];                             \
            }                                                                                  \
            c2r_in[2 * i] = re;                                                                \
            c2r_in[2 * i + 1] = im;                                                            \
        }                                                                                      \
    }

FOR_EACH_STORAGE(SPECTRAL_KERNELS)

// The GEMM transforms (src/backend/cuda/dft.rs; CPU reference of their arithmetic:
// src/backend/dft_gemm.rs): a complex axis's GEMM reads each row X_j and i X_j. rotate: rows
// of `inner` reals (inner / 2 interleaved complex values) -> (rows, 2, inner): the row, then i
// times it ((re, im) -> (-im, re), exact in every storage type); rows * inner / 2 threads.
#define ROTATE_KERNELS(S, T)                                                                  \
    extern "C" __global__ void rotate_##S(const T* x, T* y, u64 rows, u64 inner) {           \
        u64 half = inner / 2;                                                                 \
        GRID_STRIDE(i, rows * half) {                                                         \
            u64 r = i / half, c = i % half;                                                   \
            T re = x[2 * i], im = x[2 * i + 1];                                               \
            u64 o = r * 2 * inner + 2 * c;                                                    \
            y[o] = re;                                                                        \
            y[o + 1] = im;                                                                    \
            y[o + inner] = st_##S(-ld_##S(im));                                               \
            y[o + inner + 1] = re;                                                            \
        }                                                                                     \
    }

FOR_EACH_STORAGE(ROTATE_KERNELS)
