//! The CPU's canonical-polyadic spectral weights as complex matrix products, in the two orders
//! of [`super::CpPlan`].
//!
//! **Expansion** ([`expand`], [`expand_backward`]).
//! With `Q[(i, o), r] = lambda_r A[i, r] B[o, r]` (ci co x r) and
//! `P[k, r] = prod_a M_a[k_a, r]` (nk x r), the dense weight is one product
//! `W = Q P^T` ((ci co) x nk), and its backward two more for the output gradient `G` (the shape
//! of `W`): `S = G conj(P)` ((ci co) x r, giving lambda, A and B) and `T = G^T conj(Q)`
//! (nk x r, giving the mode factors). All in f64 (`gemm`'s c64 kernels), so the results are
//! those of the f64 sums of [`crate::backend::Backend::cp_weight`]'s definition up to f64
//! reassociation (far below the f32 rounding of the stored results).
//!
//! **Factorized** ([`factorized`], [`factorized_backward`]): per sample `U = A^T X`,
//! `V = U * L` (`L[r, k] = lambda_r P[k, r]`), `y = B V`, sums in the scalar `T` (`gemm`'s c32
//! kernels for f32), never forming `W` or its gradient.
//!
//! The products run in fixed blocks of rows (or one sample), one rayon task each with a
//! single-threaded kernel, and per-sample sums are added in sample order: every output value is
//! the same sum whatever the thread count, so the same seed gives the same bytes on any machine.

use super::{CpDims, unravel};
use crate::fno::Scalar;
use num_complex::Complex;
use rayon::prelude::*;

type C64 = Complex<f64>;

/// Rows of `Q` (or of the gradient) per task: large enough for the kernel's blocking, small
/// enough that a task's f64 copy of its gradient rows stays in cache-sized pieces.
const ROWS: usize = 64;

/// The factors' values as host slices, complex entries as (re, im) pairs: `lambda` (r),
/// `a` (ci x r), `b` (co x r), `modes[ax]` (kept_ax x r).
pub(super) struct CpSlices<'a, T> {
    pub lambda: &'a [T],
    pub a: &'a [T],
    pub b: &'a [T],
    pub modes: Vec<&'a [T]>,
}

fn c64<T: Scalar>(v: &[T], idx: usize) -> C64 {
    C64::new(v[2 * idx].to_f64(), v[2 * idx + 1].to_f64())
}

/// `P[k, r] = prod_a M_a[k_a, r]` (row-major nk x r), the product taken over the axes in order.
fn mode_products<T: Scalar>(f: &CpSlices<'_, T>, d: &CpDims) -> Vec<C64> {
    let r = d.r;
    let mut out = vec![C64::new(1.0, 0.0); d.nk * r];
    out.par_chunks_mut(r).enumerate().for_each(|(k, row)| {
        let idx = unravel(k, &d.kept);
        for (m, &ka) in f.modes.iter().zip(&idx) {
            for (rr, p) in row.iter_mut().enumerate() {
                *p *= c64(m, ka * r + rr);
            }
        }
    });
    out
}

/// `Q[(i, o), r] = (lambda_r A[i, r]) B[o, r]` (row-major (ci co) x r).
fn channel_products<T: Scalar>(f: &CpSlices<'_, T>, d: &CpDims) -> Vec<C64> {
    let (co, r) = (d.co, d.r);
    let mut out = vec![C64::new(0.0, 0.0); d.ci * co * r];
    out.par_chunks_mut(r).enumerate().for_each(|(io, row)| {
        let (i, o) = (io / co, io % co);
        for (rr, q) in row.iter_mut().enumerate() {
            *q = c64(f.lambda, rr) * c64(f.a, i * r + rr) * c64(f.b, o * r + rr);
        }
    });
    out
}

/// One operand of [`product`]: its values, (row stride, column stride) in elements, and
/// whether it is read conjugated.
struct Operand<'a, T> {
    v: &'a [Complex<T>],
    strides: [usize; 2],
    conj: bool,
}

fn op<T>(v: &[Complex<T>], strides: [usize; 2], conj: bool) -> Operand<'_, T> {
    Operand { v, strides, conj }
}

/// `dst (m x n) = lhs (m x k) rhs (k x n)` with `dst` row-major (row stride `dst_rs`), in the
/// scalar `T` (`gemm`'s c32 or c64 kernels: products and sums in T). One thread: the callers
/// parallelise over row blocks or samples.
fn product<T: Scalar>(
    [m, k, n]: [usize; 3],
    dst: &mut [Complex<T>],
    dst_rs: usize,
    lhs: Operand<'_, T>,
    rhs: Operand<'_, T>,
) {
    let last = |[rs, cs]: [usize; 2], rows: usize, cols: usize| {
        rows.saturating_sub(1) * rs + cols.saturating_sub(1) * cs
    };
    assert!(
        m > 0
            && n > 0
            && k > 0
            && last([dst_rs, 1], m, n) < dst.len()
            && last(lhs.strides, m, k) < lhs.v.len()
            && last(rhs.strides, k, n) < rhs.v.len(),
        "cp product: {m} x {k} x {n} out of its slices"
    );
    let (zero, one) = (T::zero(), T::from_f64(1.0));
    // SAFETY: the assertion bounds every index the kernel reads ((m-1, k-1) of lhs, (k-1, n-1)
    // of rhs) and writes ((m-1, n-1) of dst) inside the slices; dst is borrowed mutably and
    // does not alias the inputs. `gemm` dispatches on the element type: Complex<f32> and
    // Complex<f64> are its c32 and c64 (the only scalars of [`Scalar`]).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            false,
            lhs.v.as_ptr(),
            lhs.strides[1] as isize,
            lhs.strides[0] as isize,
            rhs.v.as_ptr(),
            rhs.strides[1] as isize,
            rhs.strides[0] as isize,
            Complex::new(zero, zero),
            Complex::new(one, zero),
            false,
            lhs.conj,
            rhs.conj,
            gemm::Parallelism::None,
        );
    }
}

/// The dense weight `W = Q P^T`, row-major (ci, co, kept...), each value rounded once from f64
/// to `T`.
pub(super) fn expand<T: Scalar>(f: &CpSlices<'_, T>, d: &CpDims) -> Vec<Complex<T>> {
    let (nk, r) = (d.nk, d.r);
    let (p, q) = (mode_products(f, d), channel_products(f, d));
    let mut out = vec![Complex::new(T::zero(), T::zero()); d.ci * d.co * nk];
    out.par_chunks_mut(ROWS * nk)
        .zip(q.par_chunks(ROWS * r))
        .for_each(|(w, q)| {
            let rows = w.len() / nk;
            let mut tmp = vec![C64::new(0.0, 0.0); rows * nk];
            // W[io, k] = sum_r Q[io, r] P[k, r]: P read transposed.
            product(
                [rows, r, nk],
                &mut tmp,
                nk,
                op(q, [r, 1], false),
                op(&p, [1, r], false),
            );
            for (o, v) in w.iter_mut().zip(&tmp) {
                *o = Complex::new(T::from_f64(v.re), T::from_f64(v.im));
            }
        });
    out
}

/// Gradients of the factors for the dense-weight gradient `gw` (row-major (ci, co, kept...)),
/// as (re, im) pairs in the order lambda, A, B, M_0, ..., M_{d-1}:
/// ```text
/// S = G conj(P),  T = G^T conj(Q)
/// g_lambda[r] = sum_{i,o} S[io, r] conj(A_ir B_or)
/// g_A[i, r]   = sum_o S[io, r] conj(lambda_r B_or),   g_B[o, r] = sum_i S[io, r] conj(lambda_r A_ir)
/// g_Ma[j, r]  = sum_{k: k_a = j} T[k, r] conj(prod_{b != a} M_b[k_b, r])
/// ```
pub(super) fn expand_backward<T: Scalar>(
    f: &CpSlices<'_, T>,
    d: &CpDims,
    gw: &[Complex<T>],
) -> Vec<Vec<T>> {
    let (ci, co, nk, r) = (d.ci, d.co, d.nk, d.r);
    assert_eq!(
        gw.len(),
        ci * co * nk,
        "cp_weight_backward: gradient of {} values for ({ci}, {co}, {:?})",
        gw.len(),
        d.kept
    );
    let (p, q) = (mode_products(f, d), channel_products(f, d));
    let wide = |v: &Complex<T>| C64::new(v.re.to_f64(), v.im.to_f64());

    // S, block of rows io by block.
    let mut s = vec![C64::new(0.0, 0.0); ci * co * r];
    s.par_chunks_mut(ROWS * r)
        .zip(gw.par_chunks(ROWS * nk))
        .for_each(|(s, g)| {
            let rows = g.len() / nk;
            let g: Vec<C64> = g.iter().map(wide).collect();
            product(
                [rows, nk, r],
                s,
                r,
                op(&g, [nk, 1], false),
                op(&p, [r, 1], true),
            );
        });

    // T, block of modes k by block: each task copies its columns of G (all io rows) to f64.
    let mut t = vec![C64::new(0.0, 0.0); nk * r];
    t.par_chunks_mut(ROWS * r).enumerate().for_each(|(blk, t)| {
        let (k0, kb) = (blk * ROWS, t.len() / r);
        let mut g = vec![C64::new(0.0, 0.0); ci * co * kb];
        for (io, row) in g.chunks_exact_mut(kb).enumerate() {
            for (x, v) in row.iter_mut().zip(&gw[io * nk + k0..][..kb]) {
                *x = wide(v);
            }
        }
        // T[k, r] = sum_io G[io, k] conj(Q[io, r]): G's block read transposed.
        product(
            [kb, ci * co, r],
            t,
            r,
            op(&g, [1, kb], false),
            op(&q, [r, 1], true),
        );
    });

    let lam = |rr: usize| c64(f.lambda, rr);
    let fa = |i: usize, rr: usize| c64(f.a, i * r + rr);
    let fb = |o: usize, rr: usize| c64(f.b, o * r + rr);
    let gl: Vec<C64> = (0..r)
        .into_par_iter()
        .map(|rr| {
            (0..ci * co).fold(C64::new(0.0, 0.0), |acc, io| {
                acc + s[io * r + rr] * (fa(io / co, rr) * fb(io % co, rr)).conj()
            })
        })
        .collect();
    let mut ga = vec![C64::new(0.0, 0.0); ci * r];
    ga.par_chunks_mut(r).enumerate().for_each(|(i, row)| {
        for o in 0..co {
            for (rr, g) in row.iter_mut().enumerate() {
                *g += s[(i * co + o) * r + rr] * (lam(rr) * fb(o, rr)).conj();
            }
        }
    });
    let mut gb = vec![C64::new(0.0, 0.0); co * r];
    gb.par_chunks_mut(r).enumerate().for_each(|(o, row)| {
        for i in 0..ci {
            for (rr, g) in row.iter_mut().enumerate() {
                *g += s[(i * co + o) * r + rr] * (lam(rr) * fa(i, rr)).conj();
            }
        }
    });

    let mut grads = vec![gl, ga, gb];
    grads.extend(mode_gradients(f, d, &t));
    grads.into_iter().map(|g| pairs(&g)).collect()
}

/// `g_Ma[j, r] = sum_{k: k_a = j} T[k, r] conj(prod_{b != a} M_b[k_b, r])` for every mode
/// axis a, from `T` (nk x r).
fn mode_gradients<T: Scalar>(f: &CpSlices<'_, T>, d: &CpDims, t: &[C64]) -> Vec<Vec<C64>> {
    let (nk, r, nd) = (d.nk, d.r, d.kept.len());
    (0..nd)
        .map(|ax| {
            let mut gm = vec![C64::new(0.0, 0.0); d.kept[ax] * r];
            for k in 0..nk {
                let idx = unravel(k, &d.kept);
                for rr in 0..r {
                    let mut other = C64::new(1.0, 0.0);
                    for bx in (0..nd).filter(|&bx| bx != ax) {
                        other *= c64(f.modes[bx], idx[bx] * r + rr);
                    }
                    gm[idx[ax] * r + rr] += t[k * r + rr] * other.conj();
                }
            }
            gm
        })
        .collect()
}

/// `a b` in the scalar (four products, two sums).
fn mul<T: Scalar>(a: Complex<T>, b: Complex<T>) -> Complex<T> {
    Complex::new(a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re)
}

fn cj<T: Scalar>(a: Complex<T>) -> Complex<T> {
    Complex::new(a.re, -a.im)
}

/// f64 values as (re, im) pairs of `T`, each part rounded once.
fn pairs<T: Scalar>(v: &[C64]) -> Vec<T> {
    v.iter()
        .flat_map(|c| [T::from_f64(c.re), T::from_f64(c.im)])
        .collect()
}

/// The factorized order's operands in the scalar: `A` (ci x r), `B` (co x r) and
/// `L[r, k] = lambda_r P[k, r]` (r x nk, formed in f64 and rounded once).
struct Factored<T> {
    a: Vec<Complex<T>>,
    b: Vec<Complex<T>>,
    l: Vec<Complex<T>>,
}

impl<T: Scalar> Factored<T> {
    fn new(f: &CpSlices<'_, T>, d: &CpDims) -> Self {
        let cplx = |v: &[T]| -> Vec<Complex<T>> {
            v.chunks_exact(2)
                .map(|p| Complex::new(p[0], p[1]))
                .collect()
        };
        let p = mode_products(f, d);
        let (nk, r) = (d.nk, d.r);
        let mut l = vec![Complex::new(T::zero(), T::zero()); r * nk];
        l.par_chunks_mut(nk).enumerate().for_each(|(rr, row)| {
            let lam = c64(f.lambda, rr);
            for (k, v) in row.iter_mut().enumerate() {
                let w = lam * p[k * r + rr];
                *v = Complex::new(T::from_f64(w.re), T::from_f64(w.im));
            }
        });
        Factored {
            a: cplx(f.a),
            b: cplx(f.b),
            l,
        }
    }

    /// `U = A^T X` (r x nk) and `V = U * L` (element-wise) for one sample `X` (ci x nk).
    fn u_v(&self, x: &[Complex<T>], d: &CpDims) -> (Vec<Complex<T>>, Vec<Complex<T>>) {
        let (ci, nk, r) = (d.ci, d.nk, d.r);
        let mut u = vec![Complex::new(T::zero(), T::zero()); r * nk];
        product(
            [r, ci, nk],
            &mut u,
            nk,
            op(&self.a, [1, r], false),
            op(x, [nk, 1], false),
        );
        let v = u.iter().zip(&self.l).map(|(u, l)| mul(*u, *l)).collect();
        (u, v)
    }
}

/// `y[b, o, k] = sum_r B[o, r] L[r, k] sum_i A[i, r] x[b, i, k]` (row-major (b, co, nk)): per
/// sample `U = A^T X`, `V = U * L`, `y = B V`, every sum in the scalar `T`.
pub(super) fn factorized<T: Scalar>(
    x: &[Complex<T>],
    f: &CpSlices<'_, T>,
    d: &CpDims,
) -> Vec<Complex<T>> {
    let (ci, co, nk, r) = (d.ci, d.co, d.nk, d.r);
    assert_eq!(x.len() % (ci * nk), 0, "cp_contract: spectrum vs factors");
    let fc = Factored::new(f, d);
    let mut y = vec![Complex::new(T::zero(), T::zero()); x.len() / ci * co];
    y.par_chunks_mut(co * nk)
        .zip(x.par_chunks(ci * nk))
        .for_each(|(y, x)| {
            let (_, v) = fc.u_v(x, d);
            product(
                [co, r, nk],
                y,
                nk,
                op(&fc.b, [r, 1], false),
                op(&v, [nk, 1], false),
            );
        });
    y
}

/// The input gradient (b, ci, nk) and the factor gradients ((re, im) pairs in the order lambda,
/// A, B, M_0, ...) of [`factorized`] for the output gradient `g` (b, co, nk), in the
/// conjugate convention of [`expand_backward`] applied to `gW = sum_b conj(x_b) g_b`:
/// ```text
/// gV = B^H G,  gU = gV * conj(L),  gX = conj(A) gU
/// g_A = sum_b conj(X) gU^T,  g_B = sum_b G conj(V)^T,  gL = sum_b conj(U) * gV
/// g_lambda[r] = sum_k gL[r, k] conj(P[k, r]),  T[k, r] = gL[r, k] conj(lambda_r)
/// ```
/// Per-sample sums are added in sample order (the same bits for any thread count); the
/// lambda and mode gradients are formed from gL in f64.
pub(super) fn factorized_backward<T: Scalar>(
    x: &[Complex<T>],
    f: &CpSlices<'_, T>,
    d: &CpDims,
    g: &[Complex<T>],
) -> (Vec<Complex<T>>, Vec<Vec<T>>) {
    let (ci, co, nk, r) = (d.ci, d.co, d.nk, d.r);
    let batch = x.len() / (ci * nk);
    assert_eq!(
        g.len(),
        batch * co * nk,
        "cp_contract_backward: gradient shape"
    );
    let fc = Factored::new(f, d);
    let zero = Complex::new(T::zero(), T::zero());
    let mut gx = vec![zero; x.len()];
    let parts: Vec<[Vec<Complex<T>>; 3]> = gx
        .par_chunks_mut(ci * nk)
        .zip(x.par_chunks(ci * nk))
        .zip(g.par_chunks(co * nk))
        .map(|((gx, x), g)| {
            let (u, v) = fc.u_v(x, d);
            let mut gv = vec![zero; r * nk];
            product(
                [r, co, nk],
                &mut gv,
                nk,
                op(&fc.b, [1, r], true),
                op(g, [nk, 1], false),
            );
            let gu: Vec<_> = gv.iter().zip(&fc.l).map(|(a, l)| mul(*a, cj(*l))).collect();
            product(
                [ci, r, nk],
                gx,
                nk,
                op(&fc.a, [r, 1], true),
                op(&gu, [nk, 1], false),
            );
            let (mut ga, mut gb) = (vec![zero; ci * r], vec![zero; co * r]);
            product(
                [ci, nk, r],
                &mut ga,
                r,
                op(x, [nk, 1], true),
                op(&gu, [1, nk], false),
            );
            product(
                [co, nk, r],
                &mut gb,
                r,
                op(g, [nk, 1], false),
                op(&v, [1, nk], true),
            );
            let gl = u.iter().zip(&gv).map(|(u, gv)| mul(cj(*u), *gv)).collect();
            [ga, gb, gl]
        })
        .collect();
    let mut sums = [vec![zero; ci * r], vec![zero; co * r], vec![zero; r * nk]];
    for part in &parts {
        for (s, p) in sums.iter_mut().zip(part) {
            s.iter_mut().zip(p).for_each(|(s, p)| {
                s.re += p.re;
                s.im += p.im;
            });
        }
    }
    let [ga, gb, gl] = sums;
    let wide = |v: &Complex<T>| C64::new(v.re.to_f64(), v.im.to_f64());
    let p = mode_products(f, d);
    let g_lambda: Vec<C64> = (0..r)
        .map(|rr| {
            (0..nk).fold(C64::new(0.0, 0.0), |acc, k| {
                acc + wide(&gl[rr * nk + k]) * p[k * r + rr].conj()
            })
        })
        .collect();
    let mut t = vec![C64::new(0.0, 0.0); nk * r];
    for (k, row) in t.chunks_exact_mut(r).enumerate() {
        for (rr, v) in row.iter_mut().enumerate() {
            *v = wide(&gl[rr * nk + k]) * c64(f.lambda, rr).conj();
        }
    }
    let flat = |v: &[Complex<T>]| v.iter().flat_map(|c| [c.re, c.im]).collect::<Vec<T>>();
    let mut grads = vec![pairs(&g_lambda), flat(&ga), flat(&gb)];
    grads.extend(mode_gradients(f, d, &t).iter().map(|m| pairs(m)));
    (gx, grads)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// The definitions, summed term by term in f64 (the former loops of the CPU backend).
    fn naive(f: &CpSlices<'_, f64>, d: &CpDims, gw: &[C64]) -> (Vec<C64>, Vec<Vec<C64>>) {
        let (ci, co, nk, r) = (d.ci, d.co, d.nk, d.r);
        let pk = |k: usize, rr: usize| {
            let idx = unravel(k, &d.kept);
            (0..d.kept.len()).fold(C64::new(1.0, 0.0), |acc, a| {
                acc * c64(f.modes[a], idx[a] * r + rr)
            })
        };
        let q = |i: usize, o: usize, rr: usize| {
            c64(f.lambda, rr) * c64(f.a, i * r + rr) * c64(f.b, o * r + rr)
        };
        let mut w = vec![C64::new(0.0, 0.0); ci * co * nk];
        let mut grads: Vec<Vec<C64>> = [r, ci * r, co * r]
            .into_iter()
            .chain(d.kept.iter().map(|&k| k * r))
            .map(|n| vec![C64::new(0.0, 0.0); n])
            .collect();
        for i in 0..ci {
            for o in 0..co {
                for k in 0..nk {
                    let idx = unravel(k, &d.kept);
                    let g = gw[(i * co + o) * nk + k];
                    for rr in 0..r {
                        w[(i * co + o) * nk + k] += q(i, o, rr) * pk(k, rr);
                        let s = g * pk(k, rr).conj();
                        let (l, a, b) = (
                            c64(f.lambda, rr),
                            c64(f.a, i * r + rr),
                            c64(f.b, o * r + rr),
                        );
                        grads[0][rr] += s * (a * b).conj();
                        grads[1][i * r + rr] += s * (l * b).conj();
                        grads[2][o * r + rr] += s * (l * a).conj();
                        for ax in 0..d.kept.len() {
                            let other = (0..d.kept.len())
                                .filter(|&bx| bx != ax)
                                .fold(C64::new(1.0, 0.0), |acc, bx| {
                                    acc * c64(f.modes[bx], idx[bx] * r + rr)
                                });
                            grads[3 + ax][idx[ax] * r + rr] += g * (q(i, o, rr) * other).conj();
                        }
                    }
                }
            }
        }
        (w, grads)
    }

    fn pairs(v: &[C64]) -> Vec<f64> {
        v.iter().flat_map(|c| [c.re, c.im]).collect()
    }

    /// Products of several row blocks (ci co = 72 and nk = 70 > ROWS) in 1 to 3 mode axes equal
    /// the term-by-term f64 sums to 1e-13 of their scale, and run to the same bits twice.
    #[test]
    fn products_equal_the_definitions() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        for kept in [vec![70], vec![10, 7], vec![2, 7, 5]] {
            let (ci, co, r) = (9usize, 8usize, 5usize);
            let mut v = |n: usize| -> Vec<f64> {
                (0..2 * n).map(|_| rng.random_range(-1.0..1.0)).collect()
            };
            let (lam, a, b) = (v(r), v(ci * r), v(co * r));
            let modes: Vec<Vec<f64>> = kept.iter().map(|&k| v(k * r)).collect();
            let nk: usize = kept.iter().product();
            let gw: Vec<C64> = v(ci * co * nk)
                .chunks(2)
                .map(|p| C64::new(p[0], p[1]))
                .collect();
            let f = CpSlices {
                lambda: &lam,
                a: &a,
                b: &b,
                modes: modes.iter().map(|m| &m[..]).collect(),
            };
            let d = CpDims {
                ci,
                co,
                r,
                kept: kept.clone(),
                nk,
            };
            let (w_want, g_want) = naive(&f, &d, &gw);
            let w = expand(&f, &d);
            let close = |got: &[f64], want: &[f64], what: &str| {
                assert_close(got, want, &format!("{what} {kept:?}"))
            };
            close(&pairs(&w), &pairs(&w_want), "W");
            let grads = expand_backward(&f, &d, &gw);
            for (which, (g, want)) in grads.iter().zip(&g_want).enumerate() {
                close(g, &pairs(want), &format!("gradient {which}"));
            }
            assert_eq!(pairs(&expand(&f, &d)), pairs(&w), "expand is deterministic");
            assert_eq!(
                expand_backward(&f, &d, &gw),
                grads,
                "backward is deterministic"
            );
        }
    }

    /// The factorized order in f64 equals the dense definitions to 1e-13 of their scale: the
    /// output `sum_i x W`, the input gradient `sum_o g conj(W)`, and the factor gradients of
    /// `gW = sum_b conj(x_b) g_b` (batch 3, several row blocks, 1 to 3 mode axes).
    #[test]
    fn factorized_order_equals_the_dense_contraction() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(8);
        for kept in [vec![70], vec![10, 7], vec![2, 7, 5]] {
            let (b, ci, co, r) = (3usize, 9usize, 8usize, 5usize);
            let mut v = |n: usize| -> Vec<f64> {
                (0..2 * n).map(|_| rng.random_range(-1.0..1.0)).collect()
            };
            let cv =
                |v: Vec<f64>| -> Vec<C64> { v.chunks(2).map(|p| C64::new(p[0], p[1])).collect() };
            let (lam, a, bf) = (v(r), v(ci * r), v(co * r));
            let modes: Vec<Vec<f64>> = kept.iter().map(|&k| v(k * r)).collect();
            let nk: usize = kept.iter().product();
            let x = cv(v(b * ci * nk));
            let g = cv(v(b * co * nk));
            let f = CpSlices {
                lambda: &lam,
                a: &a,
                b: &bf,
                modes: modes.iter().map(|m| &m[..]).collect(),
            };
            let d = CpDims {
                ci,
                co,
                r,
                kept: kept.clone(),
                nk,
            };
            let zero = C64::new(0.0, 0.0);
            let (xi, wi) = (
                |bb, i, k| (bb * ci + i) * nk + k,
                |i, o, k| (i * co + o) * nk + k,
            );
            let gi = |bb, o, k| (bb * co + o) * nk + k;
            // gW = sum_b conj(x) g, then the dense definitions.
            let mut gw = vec![zero; ci * co * nk];
            for (bb, i, o, k) in indices(b, ci, co, nk) {
                gw[wi(i, o, k)] += x[xi(bb, i, k)].conj() * g[gi(bb, o, k)];
            }
            let (w, g_want) = naive(&f, &d, &gw);
            let mut y_want = vec![zero; b * co * nk];
            let mut gx_want = vec![zero; b * ci * nk];
            for (bb, i, o, k) in indices(b, ci, co, nk) {
                y_want[gi(bb, o, k)] += x[xi(bb, i, k)] * w[wi(i, o, k)];
                gx_want[xi(bb, i, k)] += g[gi(bb, o, k)] * w[wi(i, o, k)].conj();
            }
            let close = |got: &[f64], want: &[f64], what: &str| {
                assert_close(got, want, &format!("{what} {kept:?}"))
            };
            close(&pairs(&factorized(&x, &f, &d)), &pairs(&y_want), "y");
            let (gx, grads) = factorized_backward(&x, &f, &d, &g);
            close(&pairs(&gx), &pairs(&gx_want), "gx");
            for (which, (got, want)) in grads.iter().zip(&g_want).enumerate() {
                close(got, &pairs(want), &format!("factor gradient {which}"));
            }
            assert_eq!(
                factorized_backward(&x, &f, &d, &g).1,
                grads,
                "deterministic"
            );
        }
    }

    /// `got` equals `want` to 1e-13 of want's largest magnitude, value by value.
    fn assert_close(got: &[f64], want: &[f64], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}");
        let scale = want.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        for (j, (p, q)) in got.iter().zip(want).enumerate() {
            assert!((p - q).abs() <= 1e-13 * scale, "{what} [{j}]: {p} vs {q}");
        }
    }

    /// Every (b, i, o, k) index.
    fn indices(
        b: usize,
        ci: usize,
        co: usize,
        nk: usize,
    ) -> impl Iterator<Item = (usize, usize, usize, usize)> {
        (0..b).flat_map(move |bb| {
            (0..ci)
                .flat_map(move |i| (0..co).flat_map(move |o| (0..nk).map(move |k| (bb, i, o, k))))
        })
    }
}
