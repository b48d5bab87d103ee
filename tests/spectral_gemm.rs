//! The GEMM spectral transform of the CPU backend (`backend::dft_gemm`) against an independent
//! loop that follows its documented arithmetic: operands and table rounded to the format (the
//! f64 reference rounding), products and sums in f32 in the stated order, the intermediate
//! rounded between axes, `scale` applied in f32, the result rounded. Bit for bit, in every
//! format, on grids that are not powers of two; and in f64 against the FFT path.

use mpno::backend::cpu::Cpu;
use mpno::backend::{Backend, Modes, SpectralForward, SpectralInverse, SpectralTransform};
use mpno::fft::f64_roots;
use mpno::precision::{Format, round};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// fp32 down to E4M3 (`Format::ALL` without fp64 and the saturating E4M3).
const FORMATS: &[Format] = Format::ALL.split_at(7).0.split_at(1).1;

fn r32(x: f32, f: Format) -> f32 {
    round(x as f64, f) as f32
}

/// Table entry w exp(sign 2 pi i (a b mod n) / n), both parts of mpno's f64 root (within 2^-53
/// of the exact one, `fft::f64_roots`) rounded to `f`.
fn tab(a: i64, b: i64, n: usize, sign: f64, w: f64, f: Format) -> (f32, f32) {
    let root = f64_roots(n)[(a * b).rem_euclid(n as i64) as usize];
    (
        round(w * root.re, f) as f32,
        round(w * -sign * root.im, f) as f32,
    )
}

/// The same f32, or both NaN (overflow to NaN in E4M3 may carry any payload).
fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn freq(j: usize, m: usize) -> i64 {
    if j < m {
        j as i64
    } else {
        j as i64 - 2 * m as i64
    }
}

fn herm(k: usize, n: usize, on: bool) -> f64 {
    if on && k != 0 && 2 * k != n { 2.0 } else { 1.0 }
}

/// The forward transform of one 2-D slice (n0 x n1, modes m0, m1) as the docs state it.
fn forward_2d(
    x: &[f32],
    (n0, n1): (usize, usize),
    (m0, m1): (usize, usize),
    scale: f32,
    hermitian: bool,
    f: Format,
) -> Vec<(f32, f32)> {
    // Last axis: per row p0, kept k < m1.
    let mut mid = vec![(0f32, 0f32); n0 * m1];
    for p0 in 0..n0 {
        for k in 0..m1 {
            let (mut re, mut im) = (0f32, 0f32);
            for j in 0..n1 {
                let a = r32(x[p0 * n1 + j], f);
                let (c, s) = tab(j as i64, k as i64, n1, -1.0, herm(k, n1, hermitian), f);
                re += a * c;
                im += a * s;
            }
            mid[p0 * m1 + k] = (r32(re, f), r32(im, f));
        }
    }
    // First axis: kept j' < 2 m0 from the n0 rows, per column k.
    let mut out = vec![(0f32, 0f32); 2 * m0 * m1];
    for jp in 0..2 * m0 {
        for k in 0..m1 {
            let (mut re, mut im) = (0f32, 0f32);
            for g in 0..n0 {
                let (xr, xi) = mid[g * m1 + k];
                let (c, s) = tab(g as i64, freq(jp, m0), n0, -1.0, 1.0, f);
                re = re + xr * c - xi * s;
                im = im + xr * s + xi * c;
            }
            out[jp * m1 + k] = (r32(re * scale, f), r32(im * scale, f));
        }
    }
    out
}

/// The inverse transform of one 2-D kept slice (2 m0 x m1) onto n0 x n1, as the docs state it.
fn inverse_2d(
    x: &[(f32, f32)],
    (n0, n1): (usize, usize),
    (m0, m1): (usize, usize),
    scale: f32,
    hermitian: bool,
    f: Format,
) -> Vec<f32> {
    let mut mid = vec![(0f32, 0f32); n0 * m1];
    for g in 0..n0 {
        for k in 0..m1 {
            let (mut re, mut im) = (0f32, 0f32);
            for jp in 0..2 * m0 {
                let (xr, xi) = x[jp * m1 + k];
                let (xr, xi) = (r32(xr, f), r32(xi, f));
                let (c, s) = tab(freq(jp, m0), g as i64, n0, 1.0, 1.0, f);
                re = re + xr * c - xi * s;
                im = im + xr * s + xi * c;
            }
            mid[g * m1 + k] = (r32(re, f), r32(im, f));
        }
    }
    let mut y = vec![0f32; n0 * n1];
    for p0 in 0..n0 {
        for p1 in 0..n1 {
            let mut acc = 0f32;
            for k in 0..m1 {
                let (xr, xi) = mid[p0 * m1 + k];
                let (c, s) = tab(k as i64, p1 as i64, n1, 1.0, herm(k, n1, hermitian), f);
                acc = acc + xr * c - xi * s;
            }
            y[p0 * n1 + p1] = r32(acc * scale, f);
        }
    }
    y
}

#[test]
fn emulated_gemm_transform_is_the_documented_arithmetic() {
    let be = Cpu::<f32>::new();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
    // Grids that are not powers of two; magnitudes that reach fp8's subnormals and its range.
    for (n0, n1, m0, m1) in [
        (6usize, 10usize, 2usize, 3usize),
        (12, 7, 5, 4),
        (3, 16, 1, 9),
    ] {
        let slices = 3;
        let x: Vec<f32> = (0..slices * n0 * n1)
            .map(|_| rng.random_range(-1.0f32..1.0) * 2f32.powi(rng.random_range(-12..6)))
            .collect();
        let t = be.upload(&[slices, 1, n0, n1], &x, Format::Fp32);
        let modes = Modes(vec![m0, m1]);
        for &f in FORMATS {
            for hermitian in [false, true] {
                let scale = 1.0 / (n0 * n1) as f64;
                let opt = SpectralForward {
                    scale,
                    hermitian,
                    format: f,
                    transform: SpectralTransform::Gemm,
                };
                let got = be.download_complex(&be.rfft_modes(&t, &modes, opt));
                let nk = 2 * m0 * m1;
                for s in 0..slices {
                    let want = forward_2d(
                        &x[s * n0 * n1..][..n0 * n1],
                        (n0, n1),
                        (m0, m1),
                        scale as f32,
                        hermitian,
                        f,
                    );
                    for (i, w) in want.iter().enumerate() {
                        let g = (got[2 * (s * nk + i)], got[2 * (s * nk + i) + 1]);
                        assert!(
                            same(g.0, w.0) && same(g.1, w.1),
                            "forward {f} {n0}x{n1} herm {hermitian} slice {s} mode {i}: \
                             got {g:?}, documented {w:?}"
                        );
                    }
                }
                // The inverse, from a spectrum in the format.
                let spec: Vec<f32> = (0..slices * nk * 2)
                    .map(|_| r32(rng.random_range(-4.0f32..4.0), f))
                    .collect();
                let c = be.upload_complex(&[slices, 1, 2 * m0, m1], &spec, Format::Fp32);
                let opt = SpectralInverse {
                    scale: 0.5,
                    hermitian,
                    format: f,
                    transform: SpectralTransform::Gemm,
                };
                let got = be.download(&be.irfft_modes(&c, &[n0, n1], opt));
                for s in 0..slices {
                    let xs: Vec<(f32, f32)> = spec[s * 2 * nk..][..2 * nk]
                        .chunks(2)
                        .map(|p| (p[0], p[1]))
                        .collect();
                    let want = inverse_2d(&xs, (n0, n1), (m0, m1), 0.5, hermitian, f);
                    for (i, w) in want.iter().enumerate() {
                        let g = got[s * n0 * n1 + i];
                        assert!(
                            same(g, *w),
                            "inverse {f} {n0}x{n1} herm {hermitian} slice {s} point {i}: \
                             got {g}, documented {w}"
                        );
                    }
                }
            }
        }
    }
}

/// In f64 the GEMM transform and the FFT path are the same linear map: 1-D to 3-D, odd and
/// even grids, both directions, with and without Hermitian weights.
#[test]
fn f64_gemm_transform_equals_the_fft_path() {
    let be = Cpu::<f64>::new();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(6);
    for (grid, modes) in [
        (vec![100usize], vec![17usize]),
        (vec![9, 14], vec![4, 8]),
        (vec![5, 6, 7], vec![2, 3, 4]),
    ] {
        let modes = Modes(modes);
        let npts: usize = grid.iter().product();
        let mut shape = vec![2, 3];
        shape.extend(&grid);
        let x: Vec<f64> = (0..6 * npts).map(|_| rng.random_range(-1.0..1.0)).collect();
        let t = be.upload(&shape, &x, Format::Fp64);
        for hermitian in [false, true] {
            let fwd = |transform| SpectralForward {
                scale: 0.3,
                hermitian,
                format: Format::Fp64,
                transform,
            };
            let a = be.rfft_modes(&t, &modes, fwd(SpectralTransform::Fft));
            let b = be.rfft_modes(&t, &modes, fwd(SpectralTransform::Gemm));
            let (da, db) = (be.download_complex(&a), be.download_complex(&b));
            let err = da
                .iter()
                .zip(&db)
                .map(|(p, q)| (p - q).abs())
                .fold(0.0, f64::max);
            assert!(
                err < 1e-12,
                "forward {grid:?} herm {hermitian}: max diff {err:e}"
            );
            let inv = |transform| SpectralInverse {
                scale: 0.7,
                hermitian,
                format: Format::Fp64,
                transform,
            };
            let ya = be.download(&be.irfft_modes(&a, &grid, inv(SpectralTransform::Fft)));
            let yb = be.download(&be.irfft_modes(&a, &grid, inv(SpectralTransform::Gemm)));
            let err = ya
                .iter()
                .zip(&yb)
                .map(|(p, q)| (p - q).abs())
                .fold(0.0, f64::max);
            assert!(
                err < 1e-12,
                "inverse {grid:?} herm {hermitian}: max diff {err:e}"
            );
        }
    }
}
