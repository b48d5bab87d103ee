// Spectral contraction and the canonical-polyadic (CP) spectral weight.
// CPU reference: Cpu::contract / Cpu::contract_backward (complex operands of storage T, products
// and sums accumulated in float, one rounding of the result) and Cpu::cp_weight /
// Cpu::cp_weight_backward with their helper cp_mode_products in src/backend/cpu.rs: f32 factors,
// arithmetic in double, results rounded to f32 once.
// The contraction itself runs as cuBLAS GEMMs (fp32 accumulation) on mode-major operands; these
// kernels move data in and out of that form. The shapes and the algebra are in
// src/backend/cuda/gemm.rs: x (b, ci, K), w (ci, co, K), y (b, co, K), K the product of the
// kept mode extents; every complex array is interleaved (re, im).
// Needs kernels/common.cuh prepended.

#define CONTRACT_KERNELS(S, T)                                                                 \
    /* out[c, r] = in[r, c]: transpose of a (rows, cols) complex array; rows*cols threads,     \
       consecutive threads write consecutive outputs. Exact. */                                \
    extern "C" __global__ void ctranspose_##S(const T* in, T* out, u64 rows, u64 cols) {       \
        GRID_STRIDE(t, rows * cols) {                                                          \
            u64 r = t % rows, c = t / rows, s = r * cols + c;                                  \
            out[2 * t] = in[2 * s];                                                            \
            out[2 * t + 1] = in[2 * s + 1];                                                    \
        }                                                                                      \
    }                                                                                          \
    /* wb[k][2i+p][2o+q] (row-major (2ci x 2co) per mode): the real matrix of right-           \
       multiplication by w[:, :, k], blocks [[re, im], [-im, re]]; ci*co*K threads. Exact. */  \
    extern "C" __global__ void block_weight_##S(const T* w, T* wb, u64 ci, u64 co, u64 k) {    \
        GRID_STRIDE(t, ci * co * k) {                                                          \
            u64 kk = t % k, o = (t / k) % co, i = t / (k * co), row = 2 * co;                  \
            T re = w[2 * t], im = w[2 * t + 1];                                                \
            T* m = wb + kk * 4 * ci * co + 2 * i * row + 2 * o;                                \
            m[0] = re;                                                                         \
            m[1] = im;                                                                         \
            m[row] = st_##S(-ld_##S(im));                                                      \
            m[row + 1] = re;                                                                   \
        }                                                                                      \
    }                                                                                          \
    /* gw[i,o,k] = sum_b conj(x[b,i,k]) g[b,o,k] from the fp32 real products                  \
       p[k][2i+p][2o+q] = sum_b x_p g_q: re = p_rr + p_ii, im = p_ri - p_ir, rounded once;     \
       ci*co*K threads. */                                                                     \
    extern "C" __global__ void combine_gw_##S(const float* p, T* gw, u64 ci, u64 co, u64 k) {  \
        GRID_STRIDE(t, ci * co * k) {                                                          \
            u64 kk = t % k, o = (t / k) % co, i = t / (k * co), row = 2 * co;                  \
            const float* m = p + kk * 4 * ci * co + 2 * i * row + 2 * o;                       \
            gw[2 * t] = st_##S(m[0] + m[row + 1]);                                             \
            gw[2 * t + 1] = st_##S(m[1] - m[row]);                                             \
        }                                                                                      \
    }                                                                                          \
    /* Gauss's planes of a complex operand stored (na, nb, K): three real planes (K, rows,     \
       cols), (rows, cols) = (na, nb), or (nb, na) when swap (a transposed operand). With      \
       a = re and b = im (-im when conj): left p0 = a, p1 = b, p2 = st(a + b); right p0 = a,   \
       p1 = st(b - a), p2 = st(a + b), the sums in float (Cpu's contract::Planes).             \
       na*nb*K threads. */                                                                     \
    extern "C" __global__ void gauss_planes_##S(const T* in, T* p0, T* p1, T* p2, u64 na,     \
                                                u64 nb, u64 k, int left, int conj, int swap) { \
        GRID_STRIDE(t, na * nb * k) {                                                          \
            u64 kk = t % k, j = (t / k) % nb, i = t / (k * nb);                                \
            u64 r = swap ? j : i, c = swap ? i : j, cols = swap ? na : nb;                     \
            u64 at = (kk * (na * nb)) + r * cols + c;                                          \
            float a = ld_##S(in[2 * t]), b = ld_##S(in[2 * t + 1]);                            \
            if (conj) b = -b;                                                                  \
            p0[at] = in[2 * t];                                                                \
            p1[at] = left ? st_##S(b) : st_##S(b - a);                                         \
            p2[at] = st_##S(a + b);                                                            \
        }                                                                                      \
    }                                                                                          \
    /* out[r, q, kk] = (st(t1 - t3), st(t1 + t2)) from the fp32 GEMM results t1, t2, t3, each  \
       (K, rows, cols); rows*cols*K threads (Gauss's form, Cpu's contract::gauss_product). */  \
    extern "C" __global__ void gauss_combine_##S(const float* t1, const float* t2,             \
                                                 const float* t3, T* out, u64 rows, u64 cols,  \
                                                 u64 k) {                                      \
        GRID_STRIDE(u, rows * cols * k) {                                                      \
            u64 kk = u % k, q = (u / k) % cols, r = u / (k * cols);                            \
            u64 at = kk * (rows * cols) + r * cols + q;                                        \
            out[2 * u] = st_##S(t1[at] - t3[at]);                                              \
            out[2 * u + 1] = st_##S(t1[at] + t2[at]);                                          \
        }                                                                                      \
    }

FOR_EACH_STORAGE(CONTRACT_KERNELS)

// ---- CP weights (f32 storage, double arithmetic) ----
// Factors: lam (r), a (ci, r), b (co, r), m0 (k0, r), m1 (k1, r), m2 (k2, r), complex f32;
// d mode axes (unused factor pointers may be null, their extent 1). Flat kept index
// k = (k0i * k1 + k1i) * k2 + k2i. pm, s, t are complex double, interleaved.

// Multi-index of flat kept index k.
DEVFN void cp_unravel(u64 k, u64 k1, u64 k2, u64* i0, u64* i1, u64* i2) {
    *i2 = k % k2;
    *i1 = (k / k2) % k1;
    *i0 = k / (k2 * k1);
}

DEVFN const float* cp_mode(int ax, const float* m0, const float* m1, const float* m2) {
    return ax == 0 ? m0 : (ax == 1 ? m1 : m2);
}

// pm[k][r] = prod_{ax < d} m_ax[k_ax, r] (in axis order, from 1); k0*k1*k2*r threads.
extern "C" __global__ void cp_mode_products(const float* m0, const float* m1, const float* m2,
                                            double* pm, u64 r, int d, u64 k0, u64 k1, u64 k2) {
    GRID_STRIDE(t, k0 * k1 * k2 * r) {
        u64 rr = t % r, k = t / r, idx[3];
        cp_unravel(k, k1, k2, &idx[0], &idx[1], &idx[2]);
        cf64 p;
        p.re = 1.0;
        p.im = 0.0;
        for (int ax = 0; ax < d; ++ax) p = cmul64(p, ldc64(cp_mode(ax, m0, m1, m2), idx[ax] * r + rr));
        pm[2 * t] = p.re;
        pm[2 * t + 1] = p.im;
    }
}

// w[i,o,k] = sum_r (lam_r a_ir b_or) pm[k,r], rounded to f32; ci*co*kk threads.
extern "C" __global__ void cp_expand(const float* lam, const float* a, const float* b,
                                     const double* pm, float* w, u64 ci, u64 co, u64 kk, u64 r) {
    GRID_STRIDE(t, ci * co * kk) {
        u64 k = t % kk, o = (t / kk) % co, i = t / (kk * co);
        double re = 0.0, im = 0.0;
        for (u64 rr = 0; rr < r; ++rr) {
            cf64 q = cmul64(cmul64(ldc64(lam, rr), ldc64(a, i * r + rr)), ldc64(b, o * r + rr));
            cf64 v = cmul64(q, ldc64d(pm, k * r + rr));
            re += v.re;
            im += v.im;
        }
        w[2 * t] = (float)re;
        w[2 * t + 1] = (float)im;
    }
}

// s[i,o,r] = sum_k gw[i,o,k] conj(pm[k,r]); ci*co*r threads.
extern "C" __global__ void cp_grad_s(const float* gw, const double* pm, double* s, u64 ci, u64 co,
                                     u64 kk, u64 r) {
    GRID_STRIDE(t, ci * co * r) {
        u64 rr = t % r, io = t / r;
        double re = 0.0, im = 0.0;
        for (u64 k = 0; k < kk; ++k) {
            cf64 v = cmul64(ldc64(gw, io * kk + k), conj64(ldc64d(pm, k * r + rr)));
            re += v.re;
            im += v.im;
        }
        s[2 * t] = re;
        s[2 * t + 1] = im;
    }
}

// glam[r] = sum_{i,o} s conj(a_ir b_or); ga[i,r] = sum_o s conj(lam_r b_or);
// gb[o,r] = sum_i s conj(lam_r a_ir). Written (not accumulated), rounded to f32;
// r + ci*r + co*r threads.
extern "C" __global__ void cp_grad_factors(const double* s, const float* lam, const float* a,
                                           const float* b, float* glam, float* ga, float* gb,
                                           u64 ci, u64 co, u64 r) {
    GRID_STRIDE(t, r + ci * r + co * r) {
        double re = 0.0, im = 0.0;
        float* out;
        u64 at;
        if (t < r) {
            u64 rr = t;
            for (u64 i = 0; i < ci; ++i)
                for (u64 o = 0; o < co; ++o) {
                    cf64 q = conj64(cmul64(ldc64(a, i * r + rr), ldc64(b, o * r + rr)));
                    cf64 v = cmul64(ldc64d(s, (i * co + o) * r + rr), q);
                    re += v.re;
                    im += v.im;
                }
            out = glam;
            at = rr;
        } else if (t < r + ci * r) {
            u64 ir = t - r, i = ir / r, rr = ir % r;
            for (u64 o = 0; o < co; ++o) {
                cf64 q = conj64(cmul64(ldc64(lam, rr), ldc64(b, o * r + rr)));
                cf64 v = cmul64(ldc64d(s, (i * co + o) * r + rr), q);
                re += v.re;
                im += v.im;
            }
            out = ga;
            at = ir;
        } else {
            u64 orr = t - r - ci * r, o = orr / r, rr = orr % r;
            for (u64 i = 0; i < ci; ++i) {
                cf64 q = conj64(cmul64(ldc64(lam, rr), ldc64(a, i * r + rr)));
                cf64 v = cmul64(ldc64d(s, (i * co + o) * r + rr), q);
                re += v.re;
                im += v.im;
            }
            out = gb;
            at = orr;
        }
        out[2 * at] = (float)re;
        out[2 * at + 1] = (float)im;
    }
}

// t[k,r] = sum_{i,o} gw[i,o,k] conj(lam_r a_ir b_or); kk*r threads.
extern "C" __global__ void cp_grad_t(const float* gw, const float* lam, const float* a,
                                     const float* b, double* t, u64 ci, u64 co, u64 kk, u64 r) {
    GRID_STRIDE(u, kk * r) {
        u64 rr = u % r, k = u / r;
        double re = 0.0, im = 0.0;
        cf64 l = ldc64(lam, rr);
        for (u64 i = 0; i < ci; ++i)
            for (u64 o = 0; o < co; ++o) {
                cf64 q = conj64(cmul64(cmul64(l, ldc64(a, i * r + rr)), ldc64(b, o * r + rr)));
                cf64 v = cmul64(ldc64(gw, (i * co + o) * kk + k), q);
                re += v.re;
                im += v.im;
            }
        t[2 * u] = re;
        t[2 * u + 1] = im;
    }
}

// g_ax[k_ax, r] = sum over k with that k_ax (increasing k) of t[k,r] conj(prod_{other axes}
// m[k_other, r]), rounded to f32; (k0 + k1 + k2 over the d axes) * r threads.
extern "C" __global__ void cp_grad_modes(const double* t, const float* m0, const float* m1,
                                         const float* m2, float* g0, float* g1, float* g2, u64 r,
                                         int d, u64 k0, u64 k1, u64 k2) {
    u64 ext[3] = {k0, d > 1 ? k1 : 1, d > 2 ? k2 : 1};
    u64 total = 0;
    for (int ax = 0; ax < d; ++ax) total += ext[ax] * r;
    GRID_STRIDE(u, total) {
        int ax = 0;
        u64 rest = u;
        while (rest >= ext[ax] * r) {
            rest -= ext[ax] * r;
            ++ax;
        }
        u64 ka = rest / r, rr = rest % r;
        double re = 0.0, im = 0.0;
        u64 kk = ext[0] * ext[1] * ext[2];
        for (u64 k = 0; k < kk; ++k) {
            u64 idx[3];
            cp_unravel(k, ext[1], ext[2], &idx[0], &idx[1], &idx[2]);
            if (idx[ax] != ka) continue;
            cf64 other;
            other.re = 1.0;
            other.im = 0.0;
            for (int bx = 0; bx < d; ++bx)
                if (bx != ax) other = cmul64(other, ldc64(cp_mode(bx, m0, m1, m2), idx[bx] * r + rr));
            cf64 v = cmul64(ldc64d(t, k * r + rr), conj64(other));
            re += v.re;
            im += v.im;
        }
        float* out = ax == 0 ? g0 : (ax == 1 ? g1 : g2);
        out[2 * rest] = (float)re;
        out[2 * rest + 1] = (float)im;
    }
}
