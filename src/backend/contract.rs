//! The CPU's spectral contraction kernels: for every kept mode `k`, one complex matrix product
//! `Out_k (R x Q) = L_k (R x J) R_k (J x Q)`. The forward `y = x w` (R = b, J = ci, Q = co), the
//! input gradient `gx = g w^H` (R = b, J = co, Q = ci) and the weight gradient `gw = x^H g`
//! (R = ci, J = b, Q = co) are the same kernel with different row maps and conjugations
//! ([`Product`]).
//!
//! Operands are first rounded to the format and split into planes (real parts, imaginary parts,
//! and for [`ContractForm::Gauss`] the sums), then every output `(r, q)` accumulates its `J`
//! terms in the scalar, `j` ascending, one mode per lane:
//!
//! - [`ContractForm::Standard`] (4 real products): `re += a c - b d`, `im += a d + b c` for
//!   `l = a + ib`, `r = c + id`: each product and each sum rounded in the scalar, in exactly that
//!   order (the bits of the per-(b, o) loop this replaced).
//! - [`ContractForm::Gauss`] (3 real products): with the sums `s = fl(a + b)`, `e = fl(d - c)`,
//!   `f = fl(c + d)` formed once per operand in the scalar and rounded to the format (they are
//!   operands of a low-precision GEMM), three real sums `t1 += s c`, `t2 += a e`, `t3 += b f`, and
//!   at the end `re = t1 - t3`, `im = t1 + t2` in the scalar. Error bound: docs/bounds.md,
//!   "Spectral contraction" (`bounds::contraction_precision`).
//!
//! Layout and blocking (speed only: no output's sum order depends on them, so the bits are the
//! same for any block size and thread count). Standard: one task per output row, the operands
//! as stored. Gauss: the planes are stored in panels of [`V`] modes, `plane[panel][row][lane]`
//! (the last panel zero-padded), so that for one panel every operand row is [`V`] contiguous
//! values; one rayon task computes a block of output rows `r` (contiguous in the output), and
//! inside, per panel and `q`, groups of up to 3 rows keep their accumulators in registers while
//! `j` runs, each right-operand vector loaded once per group.

use super::ContractForm;
use super::cpu::round_complex;
use super::elementwise::{zeroed_chunks, zeroed_chunks_init};
use crate::fft::Complex;
use crate::fno::Scalar;
use crate::precision::Format;
use rayon::prelude::*;

/// Modes per panel: one AVX2 register of f32.
const V: usize = 8;

/// One product's operands: `l` holds rows of `k` modes indexed by `l_row(r, j)`, `r` rows
/// indexed by `r_row(j, q)`; `conj_*` conjugates that operand. The output has `rows * cols` rows
/// of `k` modes, row `r * cols + q`.
pub(super) struct Product<'a, T, FL, FR> {
    pub l: &'a [Complex<T>],
    pub conj_l: bool,
    pub l_row: FL,
    pub r: &'a [Complex<T>],
    pub conj_r: bool,
    pub r_row: FR,
    /// (R, J, Q, k).
    pub dims: (usize, usize, usize, usize),
}

/// Gauss's operand planes in panels (module docs): left `[a, b, a + b]`, right
/// `[c, d - c, c + d]`.
struct Planes<T> {
    p: Vec<Vec<T>>,
    rows: usize,
}

impl<T: Scalar> Planes<T> {
    /// The [`V`] values of `row` in `panel` of plane `plane`.
    #[inline(always)]
    fn at(&self, plane: usize, panel: usize, row: usize) -> &[T; V] {
        let o = (panel * self.rows + row) * V;
        self.p[plane][o..o + V].try_into().expect("V values")
    }

    /// Round `data` (rows of `k`) to `fmt` and split it; `left` picks the Gauss sums' shape.
    fn of(data: &[Complex<T>], k: usize, conj: bool, left: bool, fmt: Format) -> Self {
        let rows = data.len() / k;
        let panels = k.div_ceil(V);
        let mut p: Vec<Vec<T>> = (0..3).map(|_| vec![T::zero(); panels * rows * V]).collect();
        // One pass per panel: gather, round, form the sums; panels in parallel.
        let (first, rest) = p.split_at_mut(1);
        let (second, third) = rest.split_at_mut(1);
        let panel = |panel: usize, re: &mut [T], im: &mut [T], sum: &mut [T]| {
            let k0 = panel * V;
            let len = V.min(k - k0);
            for row in 0..rows {
                let src = &data[row * k + k0..][..len];
                for (t, z) in src.iter().enumerate() {
                    re[row * V + t] = z.re;
                    im[row * V + t] = if conj { -z.im } else { z.im };
                }
            }
            T::round_slice(re, fmt);
            T::round_slice(im, fmt);
            // From the rounded operands, in the scalar, rounded to the format: left a + b;
            // right d - c here and c + d in place of d.
            for t in 0..re.len() {
                if left {
                    sum[t] = re[t] + im[t];
                } else {
                    let (c, d) = (re[t], im[t]);
                    sum[t] = d - c;
                    im[t] = c + d;
                }
            }
            T::round_slice(sum, fmt);
            if !left {
                T::round_slice(im, fmt);
            }
        };
        first[0]
            .par_chunks_mut(rows * V)
            .zip(second[0].par_chunks_mut(rows * V))
            .zip(third[0].par_chunks_mut(rows * V))
            .enumerate()
            .for_each(|(i, ((re, im), sum))| panel(i, re, im, sum));
        if !left {
            // Right planes in the order [c, d - c, c + d].
            p.swap(1, 2);
        }
        Planes { p, rows }
    }
}

/// The product (module docs) in `form`, operands rounded to `fmt`, unrounded output in the
/// scalar (the caller stores it in its format).
pub(super) fn product<T, FL, FR>(
    prod: Product<'_, T, FL, FR>,
    form: ContractForm,
    fmt: Format,
) -> Vec<Complex<T>>
where
    T: Scalar,
    FL: Fn(usize, usize) -> usize + Sync,
    FR: Fn(usize, usize) -> usize + Sync,
{
    let (rn, _, qn, k) = prod.dims;
    if rn * qn * k == 0 {
        return Vec::new();
    }
    match (form, prod.conj_l, prod.conj_r) {
        (ContractForm::Gauss, ..) => gauss_product(&prod, fmt),
        (_, false, false) => standard_product::<T, FL, FR, false, false>(&prod, fmt),
        (_, true, false) => standard_product::<T, FL, FR, true, false>(&prod, fmt),
        (_, false, true) => standard_product::<T, FL, FR, false, true>(&prod, fmt),
        (_, true, true) => standard_product::<T, FL, FR, true, true>(&prod, fmt),
    }
}

/// Rows per task: one block per thread (equal work), at least one row.
fn row_block(rn: usize) -> usize {
    rn.div_ceil(rayon::current_num_threads().max(1)).max(1)
}

/// `data` rounded to `fmt` (borrowed when the scalar holds the format).
fn rounded<T: Scalar>(data: &[Complex<T>], fmt: Format) -> std::borrow::Cow<'_, [Complex<T>]> {
    if T::holds(fmt) {
        return std::borrow::Cow::Borrowed(data);
    }
    std::borrow::Cow::Owned(round_complex(data, fmt))
}

/// The standard form on the operands as stored (interleaved): one task per output row
/// `(r, q)`, `j` ascending, each step a whole row of `k` modes (the loop vectorises over modes
/// with the (re, im) shuffles; measured faster here than planes with register blocking, which
/// pay a conversion pass: `benches/contract.rs`).
fn standard_product<T, FL, FR, const CL: bool, const CR: bool>(
    prod: &Product<'_, T, FL, FR>,
    fmt: Format,
) -> Vec<Complex<T>>
where
    T: Scalar,
    FL: Fn(usize, usize) -> usize + Sync,
    FR: Fn(usize, usize) -> usize + Sync,
{
    let (rn, jn, qn, k) = prod.dims;
    let (l, r) = (rounded(prod.l, fmt), rounded(prod.r, fmt));
    let (l, r) = (&l[..], &r[..]);
    zeroed_chunks(
        rn * qn * k,
        k,
        Complex::new(T::zero(), T::zero()),
        |rq, acc| {
            let (row, q) = (rq / qn, rq % qn);
            for j in 0..jn {
                let x = &l[(prod.l_row)(row, j) * k..][..k];
                let y = &r[(prod.r_row)(j, q) * k..][..k];
                cmul_acc::<T, CL, CR>(acc, x, y);
            }
        },
    )
}

/// `acc[m] += x[m] y[m]` (complex), with `CX` / `CY` the conjugate operand (compile-time, so
/// the loop vectorises without a select per value): `re += a c - b d`, `im += a d + b c`,
/// every operation rounded in the scalar in that order.
#[inline]
fn cmul_acc<T: Scalar, const CX: bool, const CY: bool>(
    acc: &mut [Complex<T>],
    x: &[Complex<T>],
    y: &[Complex<T>],
) {
    for ((o, x), y) in acc.iter_mut().zip(x).zip(y) {
        let (a, b) = (x.re, if CX { -x.im } else { x.im });
        let (c, d) = (y.re, if CY { -y.im } else { y.im });
        o.re += a * c - b * d;
        o.im += a * d + b * c;
    }
}

/// Gauss's form on planes (module docs).
fn gauss_product<T, FL, FR>(prod: &Product<'_, T, FL, FR>, fmt: Format) -> Vec<Complex<T>>
where
    T: Scalar,
    FL: Fn(usize, usize) -> usize + Sync,
    FR: Fn(usize, usize) -> usize + Sync,
{
    let (rn, jn, qn, k) = prod.dims;
    let lp = Planes::of(prod.l, k, prod.conj_l, true, fmt);
    let rp = Planes::of(prod.r, k, prod.conj_r, false, fmt);
    let block = row_block(rn);
    let ops = Ops {
        lp: &lp,
        rp: &rp,
        l_row: &prod.l_row,
        r_row: &prod.r_row,
        jn,
    };
    zeroed_chunks_init(
        rn * qn * k,
        block * qn * k,
        Complex::new(T::zero(), T::zero()),
        || (),
        |_, chunk, out| {
            let r0 = chunk * block;
            let rows = out.len() / (qn * k);
            for panel in 0..k.div_ceil(V) {
                let (k0, len) = (panel * V, V.min(k - panel * V));
                for q in 0..qn {
                    let mut store = |row: usize, re: &[T; V], im: &[T; V]| {
                        let dst = &mut out[(row * qn + q) * k + k0..][..len];
                        for (t, d) in dst.iter_mut().enumerate() {
                            *d = Complex::new(re[t], im[t]);
                        }
                    };
                    let mut g = 0;
                    while g < rows {
                        let at = (panel, q, r0 + g);
                        let n = (rows - g).min(3);
                        match n {
                            3 => ops.gauss::<3>(at, g, &mut store),
                            2 => ops.gauss::<2>(at, g, &mut store),
                            _ => ops.gauss::<1>(at, g, &mut store),
                        }
                        g += n;
                    }
                }
            }
        },
    )
}

/// The planes and row maps of one product, for the register-blocked group kernels.
struct Ops<'a, T, FL, FR> {
    lp: &'a Planes<T>,
    rp: &'a Planes<T>,
    l_row: &'a FL,
    r_row: &'a FR,
    jn: usize,
}

impl<T, FL, FR> Ops<'_, T, FL, FR>
where
    T: Scalar,
    FL: Fn(usize, usize) -> usize,
    FR: Fn(usize, usize) -> usize,
{
    /// Rows `r .. r + N` of output column `q` in one panel, Gauss's form: `t1 += s c`,
    /// `t2 += a e`, `t3 += b f` for j ascending, then
    /// `re = t1 - t3`, `im = t1 + t2`.
    #[inline(always)]
    fn gauss<const N: usize>(
        &self,
        (panel, q, r): (usize, usize, usize),
        g: usize,
        store: &mut impl FnMut(usize, &[T; V], &[T; V]),
    ) {
        let mut t1 = [[T::zero(); V]; N];
        let mut t2 = [[T::zero(); V]; N];
        let mut t3 = [[T::zero(); V]; N];
        for j in 0..self.jn {
            let rr = (self.r_row)(j, q);
            let (c, e, f) = (
                self.rp.at(0, panel, rr),
                self.rp.at(1, panel, rr),
                self.rp.at(2, panel, rr),
            );
            for i in 0..N {
                let lr = (self.l_row)(r + i, j);
                let (a, b, s) = (
                    self.lp.at(0, panel, lr),
                    self.lp.at(1, panel, lr),
                    self.lp.at(2, panel, lr),
                );
                for t in 0..V {
                    t1[i][t] += s[t] * c[t];
                    t2[i][t] += a[t] * e[t];
                    t3[i][t] += b[t] * f[t];
                }
            }
        }
        for i in 0..N {
            let re: [T; V] = std::array::from_fn(|t| t1[i][t] - t3[i][t]);
            let im: [T; V] = std::array::from_fn(|t| t1[i][t] + t2[i][t]);
            store(g + i, &re, &im);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::cpu::Cpu;
    use super::super::{Backend, ContractForm};
    use crate::fft::Complex;
    use crate::fno::Scalar;
    use crate::precision::Format;

    /// Values with magnitudes spread over 2^-12..2^4 and both signs (roundings in every format).
    fn values<T: Scalar>(n: usize, seed: u64) -> Vec<T> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| {
                let m = next() * 2.0 - 1.0;
                T::from_f64(m * 2f64.powi((next() * 16.0) as i32 - 12))
            })
            .collect()
    }

    fn round<T: Scalar>(v: T, fmt: Format) -> T {
        let mut s = [v];
        T::round_slice(&mut s, fmt);
        s[0]
    }

    /// The documented arithmetic of one output, written out term by term: `terms` yields the
    /// (left, right) operands in sum order, already conjugated, unrounded.
    fn oracle<T: Scalar>(
        terms: impl Iterator<Item = (Complex<T>, Complex<T>)>,
        form: ContractForm,
        fmt: Format,
    ) -> Complex<T> {
        let (mut re, mut im) = (T::zero(), T::zero());
        let (mut t1, mut t2, mut t3) = (T::zero(), T::zero(), T::zero());
        for (l, r) in terms {
            let (a, b) = (round(l.re, fmt), round(l.im, fmt));
            let (c, d) = (round(r.re, fmt), round(r.im, fmt));
            match form {
                // The loop the blocked kernel replaced: o.re += xr yr - xi yi, o.im += xr yi + xi yr.
                ContractForm::Standard => {
                    re += a * c - b * d;
                    im += a * d + b * c;
                }
                ContractForm::Gauss => {
                    let s = round(a + b, fmt);
                    let e = round(d - c, fmt);
                    let f = round(c + d, fmt);
                    t1 += s * c;
                    t2 += a * e;
                    t3 += b * f;
                }
            }
        }
        let out = match form {
            ContractForm::Standard => Complex::new(re, im),
            ContractForm::Gauss => Complex::new(t1 - t3, t1 + t2),
        };
        Complex::new(round(out.re, fmt), round(out.im, fmt))
    }

    fn conj<T: Scalar>(z: Complex<T>) -> Complex<T> {
        Complex::new(z.re, -z.im)
    }

    /// Forward and both gradients of `Cpu::contract(_backward)` equal the oracle bit for bit.
    fn check<T: Scalar>(b: usize, ci: usize, co: usize, modes: &[usize], fmt: Format) {
        let be = Cpu::<T>::new();
        let k: usize = modes.iter().product();
        let shape = |a: usize, c: usize| [&[a, c][..], modes].concat();
        let xv = values::<T>(2 * b * ci * k, 1);
        let wv = values::<T>(2 * ci * co * k, 2);
        let gv = values::<T>(2 * b * co * k, 3);
        let cplx = |v: &[T]| -> Vec<Complex<T>> {
            v.chunks_exact(2)
                .map(|p| Complex::new(p[0], p[1]))
                .collect()
        };
        let (xc, wc, gc) = (cplx(&xv), cplx(&wv), cplx(&gv));
        let wide = if T::holds(Format::Fp64) {
            Format::Fp64
        } else {
            Format::Fp32
        };
        let x = be.upload_complex(&shape(b, ci), &xv, wide);
        let w = be.upload_complex(&shape(ci, co), &wv, wide);
        let g = be.upload_complex(&shape(b, co), &gv, wide);
        for form in [ContractForm::Standard, ContractForm::Gauss] {
            let y = cplx(&be.download_complex(&be.contract(&x, &w, fmt, form)));
            let (gx, gw) = be.contract_backward(&x, &w, &g, fmt, form);
            let (gx, gw) = (
                cplx(&be.download_complex(&gx)),
                cplx(&be.download_complex(&gw)),
            );
            let bits = |z: Complex<T>| (z.re.to_f64().to_bits(), z.im.to_f64().to_bits());
            for bb in 0..b {
                for o in 0..co {
                    for m in 0..k {
                        let want = oracle(
                            (0..ci).map(|i| (xc[(bb * ci + i) * k + m], wc[(i * co + o) * k + m])),
                            form,
                            fmt,
                        );
                        let at = (bb * co + o) * k + m;
                        assert_eq!(bits(y[at]), bits(want), "{form} y[{bb},{o},{m}] {fmt}");
                    }
                }
                for i in 0..ci {
                    for m in 0..k {
                        let want = oracle(
                            (0..co).map(|o| {
                                (gc[(bb * co + o) * k + m], conj(wc[(i * co + o) * k + m]))
                            }),
                            form,
                            fmt,
                        );
                        let at = (bb * ci + i) * k + m;
                        assert_eq!(bits(gx[at]), bits(want), "{form} gx[{bb},{i},{m}] {fmt}");
                    }
                }
            }
            for i in 0..ci {
                for o in 0..co {
                    for m in 0..k {
                        let want = oracle(
                            (0..b).map(|bb| {
                                (conj(xc[(bb * ci + i) * k + m]), gc[(bb * co + o) * k + m])
                            }),
                            form,
                            fmt,
                        );
                        let at = (i * co + o) * k + m;
                        assert_eq!(bits(gw[at]), bits(want), "{form} gw[{i},{o},{m}] {fmt}");
                    }
                }
            }
        }
    }

    #[test]
    fn blocked_kernels_equal_the_documented_arithmetic_bit_for_bit() {
        // k not a multiple of the lanes, several mode tiles (J = 70: tiles of 16-21 modes),
        // row blocks that do not divide R, and a 1-sample batch.
        for fmt in [Format::Fp32, Format::Fp16, Format::Bf16, Format::E4m3] {
            check::<f32>(5, 3, 4, &[6, 5], fmt);
            check::<f32>(1, 70, 2, &[45], fmt);
            check::<f32>(33, 2, 70, &[3, 4, 3], fmt);
        }
        for fmt in [Format::Fp64, Format::Fp16] {
            check::<f64>(4, 5, 3, &[7, 3], fmt);
        }
    }

    #[test]
    fn both_forms_equal_the_exact_sums_in_f64() {
        let be = Cpu::<f64>::new();
        let (b, ci, co, k) = (3, 17, 5, 9);
        let xv = values::<f64>(2 * b * ci * k, 4);
        let wv = values::<f64>(2 * ci * co * k, 5);
        let x = be.upload_complex(&[b, ci, k], &xv, Format::Fp64);
        let w = be.upload_complex(&[ci, co, k], &wv, Format::Fp64);
        let c = |v: &[f64], at: usize| Complex::new(v[2 * at], v[2 * at + 1]);
        for form in [ContractForm::Standard, ContractForm::Gauss] {
            let y = be.download_complex(&be.contract(&x, &w, Format::Fp64, form));
            for bb in 0..b {
                for o in 0..co {
                    for m in 0..k {
                        let (mut want, mut scale) = (Complex::new(0.0, 0.0), 0.0);
                        for i in 0..ci {
                            let p = c(&xv, (bb * ci + i) * k + m) * c(&wv, (i * co + o) * k + m);
                            want += p;
                            scale += p.norm();
                        }
                        let got = c(&y, (bb * co + o) * k + m);
                        assert!(
                            (got - want).norm() <= 1e-14 * scale,
                            "{form}: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }
}
