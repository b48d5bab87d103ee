//! The truncated spectral transforms as matrix products (issue 24's "DFT as GEMM"), exactly as
//! a tensor-core GEMM computes them: operands and the cos/sin table rounded to the stage's
//! format, every product exact, sums in fp32 in a stated order.
//!
//! An FNO layer keeps m << n modes per axis, so the forward transform restricted to the kept
//! modes is a product with an n x m (last axis, real input) or n x 2m (other axes, complex)
//! table of exp(-2 pi i j k / n), and the inverse one with the transposed conjugate table:
//! any n (no power-of-two limit), and the full spectrum is never formed.
//!
//! Per axis, with x^ the operands rounded to the format F and t^ the table entries (cos and
//! -+sin computed in f64 from the exactly reduced angle 2 pi (jk mod n) / n, rounded once to F):
//!
//!   acc_k = (((0 + x^_0 t^_0k) + x^_1 t^_1k) + ...) + x^_{n-1} t^_{n-1,k}   (fp32, j ascending)
//!
//! where a complex product adds its two real products to each part in the order
//! re: + x_re t_re, - x_im t_im;  im: + x_re t_im, + x_im t_re. For F of at most 12 significand
//! bits (fp16, bf16, tf32, fp8) the product of two F values has at most 24 bits and is exact in
//! fp32, so a fused multiply-add (a tensor core, cuBLAS) gives the same sums; for fp32 operands
//! each product is rounded to fp32 first. Between axes the intermediate is rounded to F (it is
//! the next product's operand, as on a GPU); the result is multiplied by `scale` in fp32 and
//! rounded to F. The Hermitian weights c_k in {1, 2} are folded into the last axis's table (an
//! exact doubling). With the backend scalar f64 and format fp64 everything runs in f64.
//!
//! The same arithmetic, per coefficient, is what `mpno errors --model gemm` measures and bounds.

use super::{Modes, herm_weight};
use crate::fft::{self, Complex, Direction};
use crate::fno::Scalar;
use crate::precision::Format;

/// exp(sign 2 pi i (j k mod n) / n) in f64 from `roots = fft::f64_roots(n)` (within 2^-53 of the
/// exact root): the table of model G (`fft::gemm`), so the error model and the backend round
/// the same values.
pub(crate) fn root(roots: &[Complex<f64>], j: i64, k: i64, sign: f64) -> (f64, f64) {
    let r = (j * k).rem_euclid(roots.len() as i64) as u64;
    let dir = if sign < 0.0 {
        Direction::Forward
    } else {
        Direction::Inverse
    };
    let w = fft::f64_root(roots, r, dir);
    (w.re, w.im)
}

/// A complex table `rows x cols` split into rounded real and imaginary parts.
struct Table<A> {
    re: Vec<A>,
    im: Vec<A>,
    cols: usize,
}

impl<A: Scalar> Table<A> {
    /// Entry (r, c) = w(r, c) exp(sign 2 pi i f(r) g(c) / n), each part rounded to `fmt`
    /// (w in {1, 2}: exact).
    fn new(
        rows: usize,
        cols: usize,
        n: usize,
        sign: f64,
        fmt: Format,
        at: impl Fn(usize, usize) -> (i64, i64, f64),
    ) -> Self {
        let (mut re, mut im) = (
            Vec::with_capacity(rows * cols),
            Vec::with_capacity(rows * cols),
        );
        let roots = fft::f64_roots(n);
        for r in 0..rows {
            for c in 0..cols {
                let (j, k, w) = at(r, c);
                let (cr, ci) = root(&roots, j, k, sign);
                re.push(A::from_f64(w * cr));
                im.push(A::from_f64(w * ci));
            }
        }
        A::round_slice(&mut re, fmt);
        A::round_slice(&mut im, fmt);
        Table { re, im, cols }
    }
}

/// One complex axis: `out[o, c, i] = sum_r inp[o, r, i] t[r, c]` over split (re, im) arrays of
/// shape (outer, rows, inner) -> (outer, cols, inner), sums in `A` with r ascending.
fn complex_axis<A: Scalar>(
    inp: (&[A], &[A]),
    t: &Table<A>,
    rows: usize,
    outer: usize,
    inner: usize,
) -> (Vec<A>, Vec<A>) {
    let cols = t.cols;
    let (mut ore, mut oim) = (
        vec![A::zero(); outer * cols * inner],
        vec![A::zero(); outer * cols * inner],
    );
    // Vectorised over the output index c (a contiguous table row), r ascending per output.
    let (mut ar, mut ai) = (vec![A::zero(); cols], vec![A::zero(); cols]);
    for o in 0..outer {
        for i in 0..inner {
            ar.fill(A::zero());
            ai.fill(A::zero());
            for r in 0..rows {
                let at = (o * rows + r) * inner + i;
                let (xr, xi) = (inp.0[at], inp.1[at]);
                let (tr, ti) = (&t.re[r * cols..][..cols], &t.im[r * cols..][..cols]);
                for c in 0..cols {
                    ar[c] = ar[c] + xr * tr[c] - xi * ti[c];
                    ai[c] = ai[c] + xr * ti[c] + xi * tr[c];
                }
            }
            for c in 0..cols {
                let at = (o * cols + c) * inner + i;
                (ore[at], oim[at]) = (ar[c], ai[c]);
            }
        }
    }
    (ore, oim)
}

/// The tables of a forward transform: built once per call, shared by every slice.
pub(crate) struct ForwardPlan<A> {
    grid: Vec<usize>,
    kept: Vec<usize>,
    /// Last axis: t[j, k] = w_k exp(-2 pi i j k / n), n x m.
    last: Table<A>,
    /// Axes 0..d-1: t[g, j] = exp(-2 pi i g f_j / n), n x 2m.
    axes: Vec<Table<A>>,
    scale: f64,
    fmt: Format,
}

impl<A: Scalar> ForwardPlan<A> {
    /// The forward transform onto the kept `modes` of `grid`, `scale * w_k * X_k` with w_k the
    /// Hermitian weight when `hermitian`, in format `fmt`.
    pub(crate) fn new(
        grid: &[usize],
        modes: &Modes,
        scale: f64,
        hermitian: bool,
        fmt: Format,
    ) -> Self {
        let d = grid.len();
        let kept = modes.kept_shape();
        let (nl, ml) = (grid[d - 1], kept[d - 1]);
        let w = |k: usize| if hermitian { herm_weight(k, nl) } else { 1.0 };
        let last = Table::new(nl, ml, nl, -1.0, fmt, |j, k| (j as i64, k as i64, w(k)));
        let axes = (0..d - 1)
            .map(|a| {
                let f = |j| modes.frequency(a, j);
                Table::new(grid[a], kept[a], grid[a], -1.0, fmt, |g, j| {
                    (g as i64, f(j), 1.0)
                })
            })
            .collect();
        ForwardPlan {
            grid: grid.to_vec(),
            kept,
            last,
            axes,
            scale,
            fmt,
        }
    }

    /// The kept spectrum of one grid slice `x` (row-major; values of the backend scalar `T`),
    /// row-major over the kept shape, in `dst`.
    pub(crate) fn run<T: Scalar>(&self, x: &[T], dst: &mut [Complex<T>]) {
        let (grid, fmt) = (&self.grid, self.fmt);
        let d = grid.len();
        let (nl, ml) = (grid[d - 1], self.kept[d - 1]);
        let lines = x.len() / nl;
        let mut a: Vec<A> = x.iter().map(|&v| A::from_f64(v.to_f64())).collect();
        A::round_slice(&mut a, fmt);
        let t = &self.last;
        let (mut re, mut im) = (vec![A::zero(); lines * ml], vec![A::zero(); lines * ml]);
        for l in 0..lines {
            let (ar, ai) = (&mut re[l * ml..][..ml], &mut im[l * ml..][..ml]);
            for (j, &v) in a[l * nl..][..nl].iter().enumerate() {
                let (tr, ti) = (&t.re[j * ml..][..ml], &t.im[j * ml..][..ml]);
                for k in 0..ml {
                    ar[k] += v * tr[k];
                    ai[k] += v * ti[k];
                }
            }
        }
        // Other axes, last to first: n -> 2m kept, complex.
        let mut shape = grid.to_vec();
        shape[d - 1] = ml;
        for ax in (0..d - 1).rev() {
            A::round_slice(&mut re, fmt);
            A::round_slice(&mut im, fmt);
            let inner: usize = shape[ax + 1..].iter().product();
            let outer: usize = shape[..ax].iter().product();
            (re, im) = complex_axis((&re, &im), &self.axes[ax], grid[ax], outer, inner);
            shape[ax] = self.kept[ax];
        }
        finish(&mut re, self.scale, fmt);
        finish(&mut im, self.scale, fmt);
        for ((o, r), i) in dst.iter_mut().zip(&re).zip(&im) {
            *o = Complex::new(T::from_f64(r.to_f64()), T::from_f64(i.to_f64()));
        }
    }
}

/// The tables of an inverse transform: built once per call, shared by every slice.
pub(crate) struct InversePlan<A> {
    grid: Vec<usize>,
    kept: Vec<usize>,
    /// Axes 0..d-1: t[j, g] = exp(2 pi i f_j g / n), 2m x n.
    axes: Vec<Table<A>>,
    /// Last axis: t[k, g] = c_k exp(2 pi i k g / n), m x n.
    last: Table<A>,
    scale: f64,
    fmt: Format,
}

impl<A: Scalar> InversePlan<A> {
    /// `y_j = scale * sum_k c_k Re(X_k exp(2 pi i <j, k> / n))` from the spectrum of the kept
    /// `modes` onto `grid` (c_k the Hermitian weight when `hermitian`, else 1), in format `fmt`.
    pub(crate) fn new(
        grid: &[usize],
        modes: &Modes,
        scale: f64,
        hermitian: bool,
        fmt: Format,
    ) -> Self {
        let d = grid.len();
        let kept = modes.kept_shape();
        let (nl, ml) = (grid[d - 1], kept[d - 1]);
        let axes = (0..d - 1)
            .map(|a| {
                let f = |j| modes.frequency(a, j);
                Table::new(kept[a], grid[a], grid[a], 1.0, fmt, |j, g| {
                    (f(j), g as i64, 1.0)
                })
            })
            .collect();
        let w = |k: usize| if hermitian { herm_weight(k, nl) } else { 1.0 };
        let last = Table::new(ml, nl, nl, 1.0, fmt, |k, g| (k as i64, g as i64, w(k)));
        InversePlan {
            grid: grid.to_vec(),
            kept,
            axes,
            last,
            scale,
            fmt,
        }
    }

    /// One kept-spectrum slice `x` onto the grid, in `dst`.
    pub(crate) fn run<T: Scalar>(&self, x: &[Complex<T>], dst: &mut [T]) {
        let (grid, fmt) = (&self.grid, self.fmt);
        let d = grid.len();
        let mut re: Vec<A> = x.iter().map(|c| A::from_f64(c.re.to_f64())).collect();
        let mut im: Vec<A> = x.iter().map(|c| A::from_f64(c.im.to_f64())).collect();
        let mut shape = self.kept.clone();
        // Axes 0..d-1, first to last: 2m kept -> n, complex.
        for ax in 0..d - 1 {
            A::round_slice(&mut re, fmt);
            A::round_slice(&mut im, fmt);
            let inner: usize = shape[ax + 1..].iter().product();
            let outer: usize = shape[..ax].iter().product();
            (re, im) = complex_axis((&re, &im), &self.axes[ax], self.kept[ax], outer, inner);
            shape[ax] = grid[ax];
        }
        A::round_slice(&mut re, fmt);
        A::round_slice(&mut im, fmt);
        // Last axis, real output: y_g = sum_k (X_re c_k cos - X_im c_k sin)(2 pi k g / n).
        let (nl, ml) = (grid[d - 1], self.kept[d - 1]);
        let t = &self.last;
        let lines = re.len() / ml;
        let mut y = vec![A::zero(); lines * nl];
        for l in 0..lines {
            let acc = &mut y[l * nl..][..nl];
            for k in 0..ml {
                let (xr, xi) = (re[l * ml + k], im[l * ml + k]);
                let (tr, ti) = (&t.re[k * nl..][..nl], &t.im[k * nl..][..nl]);
                for g in 0..nl {
                    acc[g] = acc[g] + xr * tr[g] - xi * ti[g];
                }
            }
        }
        finish(&mut y, self.scale, fmt);
        for (o, v) in dst.iter_mut().zip(&y) {
            *o = T::from_f64(v.to_f64());
        }
    }
}

/// `v * scale` in the accumulator, then rounded to the format.
fn finish<A: Scalar>(v: &mut [A], scale: f64, fmt: Format) {
    if scale != 1.0 {
        let s = A::from_f64(scale);
        for x in v.iter_mut() {
            *x *= s;
        }
    }
    A::round_slice(v, fmt);
}
