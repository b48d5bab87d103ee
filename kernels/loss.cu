// Relative L2 loss: per-sample sums and the gradient.
// CPU reference: fno::loss::rel_l2 in src/fno/loss.rs (sums in f64 of the f32 values; the
// gradient (p - y) / (||p - y|| ||y|| batch) in f64, rounded to f32 once). The caller turns the
// sums into coef[b] = 1 / (||d|| ||y|| batch) (0 when ||d|| = 0) and the loss on the host
// (fno::loss::rel_l2_coefficients; Cuda::rel_l2_loss).
// Needs kernels/common.cuh prepended.

// d2[b] += sum (p - y)^2, y2[b] += sum y^2 in double, one atomicAdd per CHUNK of a sample;
// batch * CHUNKS(len) threads (the caller zeroes d2 and y2).
extern "C" __global__ void rel_l2_sums_f32(const float* pred, const float* y, double* d2,
                                           double* y2, u64 batch, u64 len) {
    u64 chunks = CHUNKS(len);
    GRID_STRIDE(t, batch * chunks) {
        u64 b = t / chunks, q0 = (t % chunks) * CHUNK;
        u64 q1 = q0 + CHUNK < len ? q0 + CHUNK : len;
        double sd = 0.0, sy = 0.0;
        for (u64 q = q0; q < q1; ++q) {
            double pv = (double)pred[b * len + q], yv = (double)y[b * len + q];
            sd += (pv - yv) * (pv - yv);
            sy += yv * yv;
        }
        atomicAdd(&d2[b], sd);
        atomicAdd(&y2[b], sy);
    }
}

// g[i] = (float)((p - y) * coef[i / len]) in double, times the loss scale in float;
// batch * len threads.
extern "C" __global__ void rel_l2_grad_f32(const float* pred, const float* y, float* g,
                                           const double* coef, u64 batch, u64 len, float scale) {
    GRID_STRIDE(i, batch * len) {
        g[i] = (float)(((double)pred[i] - (double)y[i]) * coef[i / len]) * scale;
    }
}
