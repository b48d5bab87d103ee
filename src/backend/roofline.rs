//! How far a computation is from the machine's limits (issue 24): the copy bandwidth and the
//! fp32 GEMM rate, measured at bench time in the same run, and the roofline time of the bytes
//! and flops [`super::counting`] counted.
//!
//! With B the bytes a step must move (read + written), F its flops, W the copy bandwidth (bytes
//! read + written per second) and R the GEMM rate (flop/s):
//!
//! ```text
//! bandwidth_bound = B / W          (seconds)
//! compute_bound   = F / R          (seconds)
//! roofline        = max(bandwidth_bound, compute_bound)
//! roofline_ratio  = measured step time / roofline   (>= 1 unless caches hold the tensors)
//! ```
//!
//! The GEMM rate is fp32's whatever the formats of the step (a GPU's tensor cores are faster in
//! fp16 or fp8: there the compute bound of a low-precision step is an overestimate), and every
//! flop (FFT butterflies, element-wise ops) is charged at it, as a roofline does.

use super::Backend;
use super::counting::OpCount;
use crate::precision::Format;
use rayon::prelude::*;
use std::time::Instant;

/// Bytes of each host buffer [`host_copy_bandwidth`] copies in `mpno bench fno` (256 MiB: 8x
/// the 32 MiB L3 cache of the 2-core development machine, so the copy streams from and to DRAM).
pub const HOST_COPY_BYTES: usize = 256 << 20;

/// Bytes of each device buffer `Gpu::copy_bandwidth` copies in `mpno bench fno` (20x an H100's
/// 50 MB L2 cache).
pub const GPU_COPY_BYTES: usize = 1 << 30;

/// Repetitions of each limit measurement (the fastest counts).
pub const REPS: usize = 5;

/// Matrix size of the CPU GEMM rate, batched over the rayon threads (the CPU backend runs one
/// product per sample): 2 GFLOP a product, tens of ms on a core.
pub const CPU_GEMM_N: usize = 1024;

/// The GPU GEMM rate's size: 4 products of 4096 x 4096 (550 GFLOP, about 10 ms at an H100's
/// fp32 rate).
pub const GPU_GEMM: GemmSize = GemmSize { n: 4096, batch: 4 };

/// Measured limits of one machine.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// Copy bandwidth: bytes read + written per second.
    pub copy_bytes_per_s: f64,
    /// fp32 GEMM rate of the backend: flop/s.
    pub gemm_flops_per_s: f64,
}

/// Host memory bandwidth of a parallel copy: bytes read + written per second, the fastest of
/// `reps` copies (after one untimed copy) of a `bytes` buffer into another, split over the
/// rayon threads in 1 MiB chunks. Both buffers are written first, so no page fault is timed.
/// A cache line written is also read first on most CPUs (write-allocate), so the memory moves
/// 1.5x what is counted; STREAM counts a copy the same way.
pub fn host_copy_bandwidth(bytes: usize, reps: usize) -> f64 {
    const CHUNK: usize = 1 << 20;
    assert!(
        bytes >= 4 && reps >= 1,
        "host_copy_bandwidth: needs a buffer of at least 4 bytes and 1 timed copy, got {bytes} bytes, {reps} copies"
    );
    let n = bytes / 4;
    let src: Vec<f32> = (0..n).into_par_iter().map(|i| i as f32).collect();
    let mut dst = vec![0f32; n];
    let mut best = f64::INFINITY;
    for rep in 0..=reps {
        let t = Instant::now();
        dst.par_chunks_mut(CHUNK / 4)
            .zip(src.par_chunks(CHUNK / 4))
            .for_each(|(d, s)| d.copy_from_slice(s));
        let s = t.elapsed().as_secs_f64();
        if rep > 0 {
            best = best.min(s);
        }
    }
    // Keep the copy from being optimised away.
    assert_eq!(dst[n - 1], src[n - 1]);
    (2 * n * 4) as f64 / best
}

/// Size of the GEMM [`gemm_rate`] times: `batch` products of n x n matrices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmSize {
    pub n: usize,
    pub batch: usize,
}

impl GemmSize {
    /// Flops of one call: 2 n^3 per product.
    pub fn flops(&self) -> f64 {
        2.0 * (self.n as f64).powi(3) * self.batch as f64
    }
}

/// The backend's fp32 GEMM rate in flop/s: [`Backend::linear`] (the op the model's dense maps
/// run on) of an (n x n) weight on a (batch, n, n) input without bias, the fastest of `reps`
/// calls after one untimed call, each waited for ([`Backend::synchronize`]). The CPU backend
/// runs one product per sample in parallel, so `batch` should be at least its thread count.
pub fn gemm_rate<B: Backend<T = f32>>(be: &B, size: GemmSize, reps: usize) -> f64 {
    let GemmSize { n, batch } = size;
    assert!(
        n >= 1 && batch >= 1 && reps >= 1,
        "gemm_rate: needs n, batch and reps >= 1, got n {n}, batch {batch}, reps {reps}"
    );
    // Values in [-0.5, 0.5): no zeros or subnormals for the hardware to shortcut.
    let fill = |len: usize, k: usize| -> Vec<f32> {
        (0..len)
            .map(|i| ((i * k + 17) % 1009) as f32 / 1009.0 - 0.5)
            .collect()
    };
    let x = be.upload(&[batch, n, n], &fill(batch * n * n, 7919), Format::Fp32);
    let w = be.upload(&[n, n], &fill(n * n, 104_729), Format::Fp32);
    let mut best = f64::INFINITY;
    for rep in 0..=reps {
        let t = Instant::now();
        let y = be.linear(&x, &w, None, Format::Fp32);
        be.synchronize();
        let s = t.elapsed().as_secs_f64();
        drop(y);
        if rep > 0 {
            best = best.min(s);
        }
    }
    size.flops() / best
}

/// A step's counts against [`Limits`]: the times of the module's formulas, in seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Roofline {
    /// B: bytes read + written by all ops.
    pub bytes: u64,
    /// F: flops of all ops.
    pub flops: u64,
    /// B / W (s).
    pub bandwidth_bound: f64,
    /// F / R (s).
    pub compute_bound: f64,
    /// max(bandwidth_bound, compute_bound) (s).
    pub limit: f64,
}

impl Roofline {
    /// The roofline of the summed counts of `ops`.
    pub fn of(ops: &[OpCount], lim: &Limits) -> Roofline {
        let t = super::counting::total(ops);
        let bandwidth_bound = t.bytes() as f64 / lim.copy_bytes_per_s;
        let compute_bound = t.flops as f64 / lim.gemm_flops_per_s;
        Roofline {
            bytes: t.bytes(),
            flops: t.flops,
            bandwidth_bound,
            compute_bound,
            limit: bandwidth_bound.max(compute_bound),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roofline_takes_the_larger_of_the_two_bounds() {
        let op = |bytes_read, flops| OpCount {
            op: "x",
            bytes_read,
            bytes_written: 0,
            flops,
        };
        // 110 bytes at 10 B/s and 50 flops at 10 flop/s: memory-bound, 11 s.
        let ops = [op(100, 10), op(10, 40)];
        let lim = Limits {
            copy_bytes_per_s: 10.0,
            gemm_flops_per_s: 10.0,
        };
        let r = Roofline::of(&ops, &lim);
        assert_eq!((r.bytes, r.flops), (110, 50));
        assert_eq!(
            (r.bandwidth_bound, r.compute_bound, r.limit),
            (11.0, 5.0, 11.0)
        );
        // At 1 flop/s the flops dominate: 50 s.
        let slow = Limits {
            gemm_flops_per_s: 1.0,
            ..lim
        };
        assert_eq!(Roofline::of(&ops, &slow).limit, 50.0);
    }

    #[test]
    fn gemm_size_counts_two_flops_per_multiply_add() {
        assert_eq!(GemmSize { n: 3, batch: 2 }.flops(), 108.0);
    }
}
