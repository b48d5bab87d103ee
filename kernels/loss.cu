// Relative L2 loss: per-sample sums and the gradient.
// CPU reference: fno::loss::rel_l2 in src/fno/loss.rs (sums in f64 of the f32 values; the
// gradient (p - y) / (||p - y|| ||y|| batch) in f64, rounded to f32 once). The caller turns the
// sums into coef[b] = 1 / (||d|| ||y|| batch) (0 when ||d|| = 0) and the loss on the host
// (fno::loss::rel_l2_coefficients; Cuda::rel_l2_loss).
// Needs kernels/common.cuh prepended.

// d2[b] += sum (p - y)^2, y2[b] += sum y^2 in double, one atomicAdd per reduction thread of a
// sample (REDUCE_LOOP); batch * RTHREADS(len) threads (the caller zeroes d2 and y2).
extern "C" __global__ void rel_l2_sums_f32(const float* pred, const float* y, double* d2,
                                           double* y2, u64 batch, u64 len) {
    u64 per_row = RTHREADS(len);
    GRID_STRIDE(t, batch * per_row) {
        u64 b = t / per_row;
        double sd = 0.0, sy = 0.0;
        REDUCE_LOOP(q, t % per_row, len) {
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

// Relative H1 loss: per-sample sums and the gradient.
// CPU reference: fno::loss::h1 in src/fno/loss.rs. A sample is a row-major (channels, n0, n1, n2)
// block of len values; a grid of fewer than 3 axes passes 1 for the missing trailing ones (an axis
// of extent 1 has zero differences and is skipped, as the reference never visits it). With
// d = p - y in double, the periodic central difference along axis a is
// D_a v[i] = (v[i + s_a] - v[i - s_a]) * n_a / 2 (s_a the axis stride, indices wrapping within the
// axis), ||v||_H1^2 = ||v||^2 + sum_a ||D_a v||^2, and the gradient direction is
// d - sum_a D_a D_a d, evaluated in the reference's order of operations. Not bit for bit: this
// file is compiled with fused multiply-adds (device.rs, fmad), which round a product and a sum
// once; the tests compare with a relative tolerance. The caller turns the sums into coef[b] (fno::loss::rel_l2_coefficients: the same
// formula as for L2) on the host (Cuda::h1_loss).

// v at the point `steps` positions from q along an axis (stride s, extent n, coordinate c of q),
// wrapping periodically.
DEVFN u64 h1_shift(u64 q, u64 s, u64 n, u64 c, long long steps) {
    long long m = ((long long)c + steps) % (long long)n;
    if (m < 0) m += (long long)n;
    return q - c * s + (u64)m * s;
}

// d2[b] += ||p_b - y_b||_H1^2, y2[b] += ||y_b||_H1^2 in double, one atomicAdd per reduction
// thread of a sample (REDUCE_LOOP); batch * RTHREADS(len) threads (the caller zeroes d2 and y2).
extern "C" __global__ void h1_sums_f32(const float* pred, const float* y, double* d2, double* y2,
                                       u64 batch, u64 len, u64 n0, u64 n1, u64 n2) {
    u64 per_row = RTHREADS(len);
    u64 n[3] = {n0, n1, n2};
    u64 st[3] = {n1 * n2, n2, 1};
    GRID_STRIDE(t, batch * per_row) {
        u64 b = t / per_row;
        const float* p = pred + b * len;
        const float* yy = y + b * len;
        double sd = 0.0, sy = 0.0;
        REDUCE_LOOP(q, t % per_row, len) {
            double dv = (double)p[q] - (double)yy[q], yv = (double)yy[q];
            sd += dv * dv;
            sy += yv * yv;
            for (int a = 0; a < 3; ++a) {
                if (n[a] == 1) continue;
                u64 c = (q / st[a]) % n[a];
                u64 qp = h1_shift(q, st[a], n[a], c, 1), qm = h1_shift(q, st[a], n[a], c, -1);
                double h = (double)n[a] / 2.0;
                double dp = (double)p[qp] - (double)yy[qp], dm = (double)p[qm] - (double)yy[qm];
                double dd = (dp - dm) * h;
                double dy = ((double)yy[qp] - (double)yy[qm]) * h;
                sd += dd * dd;
                sy += dy * dy;
            }
        }
        atomicAdd(&d2[b], sd);
        atomicAdd(&y2[b], sy);
    }
}

// g[i] = (float)(dir[i] * coef[i / len]) in double, times the loss scale in float, with
// dir = d - sum_a D_a D_a d; batch * len threads.
extern "C" __global__ void h1_grad_f32(const float* pred, const float* y, float* g,
                                       const double* coef, u64 batch, u64 len, u64 n0, u64 n1,
                                       u64 n2, float scale) {
    u64 n[3] = {n0, n1, n2};
    u64 st[3] = {n1 * n2, n2, 1};
    GRID_STRIDE(i, batch * len) {
        u64 b = i / len, q = i % len;
        const float* p = pred + b * len;
        const float* yy = y + b * len;
        double dir = (double)p[q] - (double)yy[q];
        for (int a = 0; a < 3; ++a) {
            if (n[a] == 1) continue;
            u64 c = (q / st[a]) % n[a];
            double h = (double)n[a] / 2.0;
            double dv[5];  // d at offsets -2..2 along the axis
            for (int k = 0; k < 5; ++k) {
                u64 j = h1_shift(q, st[a], n[a], c, k - 2);
                dv[k] = (double)p[j] - (double)yy[j];
            }
            // As the reference: D d at i + 1 and i - 1, then D of that at i.
            double dp = (dv[4] - dv[2]) * h, dm = (dv[2] - dv[0]) * h;
            dir -= (dp - dm) * h;
        }
        g[i] = (float)(dir * coef[b]) * scale;
    }
}
