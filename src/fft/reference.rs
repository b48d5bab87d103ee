//! The f64 reference: the DFT computed in double-word arithmetic (twofloat, about 106-bit
//! significands) with twiddles within 2^-98 (products of correctly rounded roots), normalised,
//! then rounded to f64 once. Its error is proven ([`reference_error_bound`],
//! `bounds::f64_reference_error`): about one f64 rounding of the coefficient, for every length
//! (rustfft's algorithms for lengths that are not powers of two, mixed radix, Rader and
//! Bluestein, have no proof here).
//!
//! Algorithms: radix-2 Cooley-Tukey (decimation in time, Higham's form) for powers of two,
//! Bluestein's chirp-z through radix-2 transforms of length m = 2^ceil(log2(2n - 1)) otherwise;
//! d-D grids axis by axis. The samples are first scaled by a power of two so that
//! max|x| lies in [2^500, 2^501): nothing overflows (sums stay below 4 n 2^501), and data words
//! below 2^-700 are zeroed before every product so that no operation underflows
//! ([`DW_UNDERFLOW_BOUND`]).

use super::roots::{Cw, DW_TWIDDLE_ERROR, DW_UNIT_ROUNDOFF, TableCache, roots};
use super::{Complex, nd};
use std::sync::Arc;

/// The exponent the largest sample is scaled to: max|x| 2^s in [2^SCALE_EXP, 2^(SCALE_EXP+1)).
const SCALE_EXP: i32 = 500;

/// Bound per normalised coefficient, relative to M = max|x|, on what gradual underflow can add
/// to the double-word transform, whose double-word error bounds assume an unbounded exponent:
/// 2^-1000 M, proven (docs/bounds.md, "The f64 reference"). No operation underflows: every
/// data value is flushed (words below phi = 2^-700 in the scaled units zeroed, `roots::FLUSH`)
/// before each product and the division by n, and table words are 0 or at least 2^-250, so
/// every product's quanta reach 2^-1074 and every operation returns what it would with an
/// unbounded exponent. The flushes' cost: writing stage i as y_i = T_i (y_(i-1) + f_i), T_i the
/// computed stage (S_i + D_i, what the double-word bound covers) and f_i the flush (at most
/// 1.5 phi an entry, 3 phi sqrt(N) in 2-norm over at most 4 N padded entries), the error adds
/// sum_i ||T_K ... T_i f_i||. From any stage, the rest of a line's transform has norm below
/// 2 s (radix-2 levels sqrt2 each, chirps 1, B at most 2s - 1, 1/m), each later axis's below
/// 2 s_b, the division 1/N, so the tail is below 1.01 2^d <= 1.01 N (d axes); with at most
/// 10 log2 N + 1 stages, N <= 2^64: (10 log2 N + 1) 1.01 N 3 phi sqrt(N) < 2^107 phi =
/// 2^-593, that is below 2^-1093 M since M is at least 2^500 in these units. Samples that the
/// scaling sends below 2^-1022 (only when it scales down) move by 2^-1075 each: below
/// 1.01 N 2^-1075 sqrt(N) < 2^-978, or 2^-1478 M.
pub const DW_UNDERFLOW_BOUND: f64 = 9.332636185032189e-302;

/// Bound on what storing Bluestein's spectrum B adds to its error, relative to ||B||_inf:
/// words below 2^-250 zeroed (below sqrt2 2^-250 (1 + 2^-53) an entry) and the flushes of its
/// radix-2 transform (below log2 m 1.01 sqrt(m) 1.5 2^-700 sqrt(m) < 2^-626 an entry), with
/// ||B||_inf >= ||B||_2 / sqrt(m) = sqrt(2s - 1) >= 1 (Parseval): below 2^-249.
const SPECTRUM_STORE_ERROR: f64 = 1.105429575052089e-75;

/// What a cached table holds.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Table {
    /// Radix 2 of length m: exp(-2 pi i k / m), k < m / 2.
    Twiddles(usize),
    /// Bluestein of length n: the chirp exp(-pi i j^2 / n) = exp(-2 pi i (j^2 mod 2n) / 2n),
    /// j < n.
    Chirp(usize),
    /// Bluestein of length n: B = FFT_m(b), b the conjugate chirp wrapped to length m.
    Spectrum(usize),
}

/// Entries of the tables kept between calls, all lengths together (32 bytes each: 1 GiB at
/// most); past it the cache is emptied before the next table goes in.
const CACHE_ENTRIES: usize = 1 << 25;

/// The table, computed once and kept while the cache has room (the same values for every
/// caller and thread, so results do not depend on what was cached).
fn table(which: Table) -> Arc<Vec<Cw>> {
    static TABLES: TableCache<Table, Cw> = TableCache::new(CACHE_ENTRIES, CACHE_ENTRIES);
    TABLES.get(which, || match which {
        Table::Twiddles(m) => {
            let k: Vec<u64> = (0..m as u64 / 2).collect();
            roots(m as u64, &k)
        }
        Table::Chirp(n) => {
            let two_n = 2 * n as u128;
            let r: Vec<u64> = (0..n as u128).map(|j| ((j * j) % two_n) as u64).collect();
            roots(two_n as u64, &r)
        }
        Table::Spectrum(n) => {
            let m = (2 * n - 1).next_power_of_two();
            let chirp = table(Table::Chirp(n));
            let mut b = vec![Cw::default(); m];
            b[0] = chirp[0].conj();
            for j in 1..n {
                b[j] = chirp[j].conj();
                b[m - j] = chirp[j].conj();
            }
            radix2(&mut b, false);
            b.into_iter().map(Cw::cleaned).collect()
        }
    })
}

/// Peak bytes of `calls` reference transforms of `shape` running at once: per call the
/// double-word grid (32 bytes a point) and the output (16), and per thread a line buffer and,
/// for a length that is not a power of two, Bluestein's padded line of m < 4 s entries (32 bytes
/// each); shared by all calls, each length's tables (the radix-2 twiddles of m, m / 2 entries;
/// Bluestein's chirp, s, and spectrum, m). A caller budgets this beside its own arrays.
pub fn reference_bytes(shape: &[usize], calls: usize) -> f64 {
    let n: f64 = shape.iter().map(|&s| s as f64).product();
    let threads = rayon::current_num_threads().min(calls.max(1)) as f64;
    let (mut line, mut tables) = (0.0f64, 0.0);
    let mut seen: Vec<usize> = Vec::new();
    for &s in shape.iter().filter(|&&s| s > 1) {
        let pow2 = s.is_power_of_two();
        let sf = s as f64;
        let m = if pow2 { sf } else { super::bluestein_len(sf) };
        line = line.max(32.0 * (sf + if pow2 { 0.0 } else { m }));
        if !seen.contains(&s) {
            seen.push(s);
            tables += 32.0 * (m / 2.0 + if pow2 { 0.0 } else { sf + m });
        }
    }
    calls as f64 * 48.0 * n + threads.max(calls as f64) * line + tables
}

/// In-place radix-2 decimation-in-time FFT of a power-of-two length (bit reversal, then
/// log2 m levels of butterflies a +- w b), forward or (with conjugate twiddles) inverse,
/// unnormalised: the algorithm of Higham's Theorem 24.2.
fn radix2(data: &mut [Cw], inverse: bool) {
    let m = data.len();
    if m < 2 {
        return;
    }
    let bits = m.trailing_zeros();
    for i in 0..m {
        let j = i.reverse_bits() >> (usize::BITS - bits);
        if i < j {
            data.swap(i, j);
        }
    }
    let tw = table(Table::Twiddles(m));
    let mut len = 2;
    while len <= m {
        let half = len / 2;
        let step = m / len;
        for block in data.chunks_exact_mut(len) {
            let (lo, hi) = block.split_at_mut(half);
            for (j, (a, b)) in lo.iter_mut().zip(hi.iter_mut()).enumerate() {
                let w = if inverse {
                    tw[j * step].conj()
                } else {
                    tw[j * step]
                };
                let t = w.mul(b.flushed());
                let x = *a;
                *a = x.add(t);
                *b = x.sub(t);
            }
        }
        len *= 2;
    }
}

/// Forward DFT of one line of any length, unnormalised: radix 2 for powers of two, Bluestein
/// otherwise (X_k = c_k sum_j (x_j c_j) conj(c_{k-j}), c_j = exp(-pi i j^2 / n), the
/// convolution through radix-2 transforms of length m >= 2n - 1, the 1/m exact).
fn line_forward(x: &mut [Cw]) {
    let n = x.len();
    if n.is_power_of_two() {
        radix2(x, false);
        return;
    }
    let m = (2 * n - 1).next_power_of_two();
    let chirp = table(Table::Chirp(n));
    let spectrum = table(Table::Spectrum(n));
    let mut a = vec![Cw::default(); m];
    for (j, v) in x.iter().enumerate() {
        a[j] = v.flushed().mul(chirp[j]);
    }
    radix2(&mut a, false);
    for (p, q) in a.iter_mut().zip(spectrum.iter()) {
        *p = p.flushed().mul(*q);
    }
    radix2(&mut a, true);
    let inv_m = 1.0 / m as f64; // a power of two: exact
    for (k, v) in x.iter_mut().enumerate() {
        // Flushed before the scaling and again after it (see roots::FLUSH).
        let a = a[k].flushed();
        let c = Cw {
            re: a.re * inv_m,
            im: a.im * inv_m,
        };
        *v = chirp[k].mul(c.flushed());
    }
}

/// f64 normalised coefficients X_k / n of real samples (row-major, `shape` the grid): the
/// double-word DFT of the samples scaled by 2^s (max|x| 2^s in [2^500, 2^501), an exact scaling
/// unless a sample falls below 2^-1022 2^s), the division by n in double words, then rounded to
/// f64 and scaled back by 2^-s (one rounding, `libm::scalbn`). Its error is bounded by
/// `bounds::f64_reference_error`. A non-finite sample gives NaN coefficients; zero samples give
/// zeros.
pub fn reference_f64(samples: &[f64], shape: &[usize]) -> Vec<Complex<f64>> {
    let n = samples.len();
    assert_eq!(
        shape.iter().product::<usize>(),
        n,
        "reference_f64: shape {shape:?} does not hold {n} samples"
    );
    let m = samples.iter().fold(0.0f64, |a, x| a.max(x.abs()));
    if !m.is_finite() || samples.iter().any(|x| x.is_nan()) {
        return vec![Complex::new(f64::NAN, f64::NAN); n];
    }
    if m == 0.0 {
        return vec![Complex::new(0.0, 0.0); n];
    }
    // m = f 2^e with f in [1, 2): scale by 2^(SCALE_EXP - e).
    let e = libm::ilogb(m);
    let s = SCALE_EXP - e;
    let mut data: Vec<Cw> = samples
        .iter()
        .map(|&x| Cw::real(libm::scalbn(x, s)))
        .collect();
    for axis in (0..shape.len()).rev() {
        let len = shape[axis];
        if len == 1 {
            continue;
        }
        let (starts, stride) = nd::lines(shape, axis);
        if stride == 1 {
            use rayon::prelude::*;
            data.par_chunks_mut(len).for_each(line_forward);
            continue;
        }
        let mut line = vec![Cw::default(); len];
        for start in starts {
            for (i, v) in line.iter_mut().enumerate() {
                *v = data[start + i * stride];
            }
            line_forward(&mut line);
            for (i, v) in line.iter().enumerate() {
                data[start + i * stride] = *v;
            }
        }
    }
    let nf = n as f64;
    data.iter()
        .map(|z| {
            let z = z.flushed();
            let (re, im) = (z.re / nf, z.im / nf);
            Complex::new(libm::scalbn(re.hi(), -s), libm::scalbn(im.hi(), -s))
        })
        .collect()
}

/// Normwise relative bound eps of the double-word transform of any grid of `n` points in all:
/// ||Y^ - Y||_2 <= eps ||Y||_2 for the unnormalised coefficients, before the division by n and
/// the rounding to f64. Per axis of length s the bound is Higham's for radix 2 (L = log2 s,
/// eta = tau + gamma_4 (sqrt2 + tau), u = [`DW_UNIT_ROUNDOFF`], tau = [`DW_TWIDDLE_ERROR`]) or
/// Bluestein's (the form of `fft::bounds`, with kappa = ||B||_inf / sqrt s <= (2s - 1) / sqrt s,
/// since B sums 2s - 1 unit chirp entries, and B's own error rho = sqrt(m)(tau + eps_m (1 + tau))
/// relative to ||B||_inf, plus [`SPECTRUM_STORE_ERROR`], as its twiddle error, B kept in double
/// words). Bluestein's bound grows
/// with s and exceeds radix 2's at every s, so E(n), the Bluestein bound at n, bounds every axis
/// of every grid of n points, and a grid has at most log2 n axes longer than 1:
/// eps = (1 + E(n))^ceil(log2 n) - 1: 2.6e-24 at n = 1024, 1.0e-18 at 2^26.
pub fn reference_error_bound(n: usize) -> f64 {
    if n < 2 {
        return 0.0;
    }
    let e = bluestein_bound(n);
    let axes = (n as f64).log2().ceil();
    // (1 + e)^axes - 1 with e ~ 1e-25, where 1 + e rounds to 1: through log1p and expm1.
    crate::precision::compound(&[(e, axes)])
}

/// Bluestein's bound of `fft::bounds` in double words: u_w, tau_w, B kept in double words.
fn bluestein_bound(s: usize) -> f64 {
    use super::bounds::{bluestein, eta, higham, spectrum_error};
    let (u, tau) = (DW_UNIT_ROUNDOFF, DW_TWIDDLE_ERROR);
    let m = (2 * s - 1).next_power_of_two();
    let em = higham(m.trailing_zeros() as f64, eta(u, tau));
    let rho = spectrum_error(m, tau, em) + SPECTRUM_STORE_ERROR;
    let kappa = (2 * s - 1) as f64 / (s as f64).sqrt();
    bluestein(kappa, eta(u, tau), eta(u, rho), em)
}

#[cfg(test)]
mod tests {
    use super::super::roots::root;
    use super::*;
    use crate::precision::Format;

    #[test]
    fn the_underflow_bound_is_two_to_the_minus_1000() {
        assert_eq!(DW_UNDERFLOW_BOUND, 2f64.powi(-1000));
        assert_eq!(SPECTRUM_STORE_ERROR, 2f64.powi(-249));
        // The proof's arithmetic, N = 2^64: (10 log2 N + 1) 1.01 N 3 phi sqrt(N) < 2^107 phi,
        // and 2^107 phi / 2^500 (M's least value in the scaled units) <= 2^-1093.
        let n = 2f64.powi(64);
        let flushes = (10.0 * 64.0 + 1.0) * 1.01 * n * 3.0 * n.sqrt();
        assert!(flushes < 2f64.powi(107));
        assert!(2f64.powi(107) * super::super::roots::FLUSH / 2f64.powi(500) <= 2f64.powi(-1093));
    }

    #[test]
    fn the_double_word_bound_is_positive_and_grows_with_n() {
        // (1 + e) - 1 with e ~ 1e-26 is 0 in f64: the bound must not vanish that way.
        let mut last = 0.0;
        for n in [2usize, 3, 64, 1000, 1024, 1 << 16, 1 << 20, 1 << 26] {
            let b = reference_error_bound(n);
            assert!(b > last, "{n}: {b:e} after {last:e}");
            last = b;
        }
        let b = reference_error_bound(1024);
        assert!(b > 1e-24 && b < 1e-23, "{b:e}");
        // Still far below the final rounding at 2^26 points.
        assert!(reference_error_bound(1 << 26) < 1e-17);
    }

    /// The naive DFT in double words (twiddles root(jk mod n, n)), axis by axis: an independent
    /// oracle whose own error is about n 2^-100, far below the reference's one f64 rounding.
    fn naive_dw(x: &[f64], shape: &[usize]) -> Vec<Cw> {
        let mut data: Vec<Cw> = x.iter().map(|&v| Cw::real(v)).collect();
        nd::for_each_line(&mut data, shape, |line| {
            let n = line.len() as u64;
            let w: Vec<Cw> = (0..n).map(|k| root(k, n)).collect();
            let out: Vec<Cw> = (0..n)
                .map(|k| {
                    line.iter().enumerate().fold(Cw::default(), |acc, (j, v)| {
                        acc.add(v.flushed().mul(w[((j as u64 * k) % n) as usize]))
                    })
                })
                .collect();
            line.copy_from_slice(&out);
        });
        data
    }

    /// The reference of `x` on `shape` within one rounding of the naive double-word oracle,
    /// each component (plus 1e-26 M for the oracle's own error and a subnormal spacing).
    fn assert_one_rounding_from_naive(x: &[f64], shape: &[usize], what: &str) {
        let n = x.len();
        let m = x.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        let got = reference_f64(x, shape);
        // The oracle in units of 2^-s (exact) so that nothing underflows or overflows.
        let s = SCALE_EXP - libm::ilogb(m);
        let scaled: Vec<f64> = x.iter().map(|&v| libm::scalbn(v, s)).collect();
        let want = naive_dw(&scaled, shape);
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            for (gc, wc) in [(g.re, w.re), (g.im, w.im)] {
                let wc = wc / n as f64;
                let ulp_err = (libm::scalbn(gc, s) - wc).hi().abs();
                let allowed = 2f64.powi(-53) * (1.0 + 1e-12) * wc.hi().abs()
                    + 1e-26 * libm::scalbn(m, s)
                    + libm::scalbn(Format::Fp64.min_subnormal(), s);
                assert!(
                    ulp_err <= allowed,
                    "{shape:?} {what} coefficient {k}: {ulp_err:e} > {allowed:e}"
                );
            }
        }
    }

    /// Samples spanning 2^1500 (the largest 2^1000, others near 2^-200, 2^-500, 2^-520 and
    /// subnormal): unflushed, the products of the small ones (2^-1000 in the scaled units) with
    /// the twiddles would underflow. Every product passes `Cw::mul`'s test-build check of the
    /// no-underflow lemma, and the result stays within one rounding of the naive oracle.
    #[test]
    fn reference_never_underflows_on_samples_spanning_the_exponent_range() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(11);
        let scales = [1000, -200, -500, -520, -1074].map(|e| 2f64.powi(e));
        for shape in [vec![64], vec![100], vec![12, 10], vec![3, 5, 4]] {
            let n: usize = shape.iter().product();
            let mut x: Vec<f64> = (0..n)
                .map(|j| {
                    let sign = if rng.random_range(0..2) == 0 {
                        -1.0
                    } else {
                        1.0
                    };
                    sign * scales[j % scales.len()] * rng.random_range(1.0..2.0)
                })
                .collect();
            x[0] = 2f64.powi(1000);
            assert_one_rounding_from_naive(&x, &shape, "spanning 2^1500");
        }
    }

    #[test]
    fn reference_is_one_rounding_from_the_double_word_naive_dft() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
        for shape in [
            vec![1],
            vec![2],
            vec![7],
            vec![64],
            vec![100],
            vec![127],
            vec![12, 10],
            vec![3, 5, 4],
        ] {
            let n: usize = shape.iter().product();
            for scale in [1.0, 1e-310, 1e300] {
                let x: Vec<f64> = (0..n)
                    .map(|_| scale * rng.random_range(-1.0..1.0))
                    .collect();
                assert_one_rounding_from_naive(&x, &shape, &format!("scale {scale:e}"));
            }
        }
    }
}
