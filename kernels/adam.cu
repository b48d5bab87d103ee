// One Adam / AdamW step over an f32 parameter tensor, in place.
// CPU reference: fno::optim::Adam::step (its per-element loop, fno::optim::adam_slice) in
// src/fno/optim.rs, matched bit for bit: the same f32 operations in the same order, every one
// rounded (fmul_rn & co. keep NVRTC from contracting them into FMAs; division and sqrt are
// IEEE-rounded). The scalars are the reference's f64 values rounded to f32 by the caller.
// Needs kernels/common.cuh prepended.

extern "C" __global__ void adam_f32(float* p, const float* g, float* m, float* v, u64 n,
                                    float step_size, float bc2_sqrt, float eps,
                                    float one_minus_b1, float b2, float one_minus_b2, float wd,
                                    float decay, int decoupled, int coupled) {
    GRID_STRIDE(i, n) {
        float x = p[i];
        if (decoupled) x = fmul_rn(x, decay);
        float gi = g[i];
        if (coupled) gi = fadd_rn(gi, fmul_rn(wd, x));
        float mi = fadd_rn(m[i], fmul_rn(one_minus_b1, fsub_rn(gi, m[i])));
        float vi = fadd_rn(fmul_rn(b2, v[i]), fmul_rn(one_minus_b2, fmul_rn(gi, gi)));
        m[i] = mi;
        v[i] = vi;
        float denom = fadd_rn(fdiv_rn(fsqrt_rn(vi), bc2_sqrt), eps);
        p[i] = fsub_rn(x, fmul_rn(step_size, fdiv_rn(mi, denom)));
    }
}
