//! The truncated spectral transforms as cuBLAS GEMMs (issue 24's "DFT as GEMM" on the GPU): the
//! tables and the GEMM shapes, host code only, so that the host tests execute exactly the calls
//! the CUDA backend makes. The arithmetic is model G's (`crate::backend::dft_gemm`, the CPU's
//! exact emulation): operands and the cos/sin tables rounded to the format F, exact products
//! (a tensor core; fp32 operands use FMA, which is no worse than the model's rounded products),
//! fp32 sums, every intermediate between axes stored in F, the result `scale * sum` rounded to F
//! (cuBLAS's alpha). The summation order is cuBLAS's, not the CPU's, so results agree with the
//! CPU within model G's bound, not bit for bit.
//!
//! Complex values are interleaved (re, im) pairs. A complex axis cannot be a real GEMM on
//! interleaved data directly (the complex product mixes the two parts of one column pair), so
//! every complex axis's GEMM reads its input twice, as rows `X_g` and `i X_g` ("rotated": the
//! pair (re, im) becomes (-im, re)), and the table's columns are (g, p) with p = 0 taking
//! `Re t` and p = 1 taking `Im t`: `sum_g t_g X_g = sum_g (Re t_g) X_g + (Im t_g) (i X_g)`.
//!
//! **Forward** (real grid (L, n_0 .. n_{d-1}) to kept modes (L, k_0 .. k_{d-2}, m), axes last to
//! first):
//! - last axis: one GEMM `(rows x n_l) (n_l x W)` with the table's columns (p, k, re/im) holding
//!   `t_jk = w_k exp(-2 pi i j k / n_l)` (p = 0) and `i t_jk` (p = 1), so each output row is
//!   `[X row | i X row]`: exactly the rotated rows the next axis reads (d = 1: p = 0 only,
//!   alpha = scale, the result);
//! - complex axis a (d-2 down to 0), per outer index o (a strided batch): `Out_o = A_a B_o` with
//!   `B_o` the (2 n_a x inner) rows (g, p) and `A_a` of rows (q, j): q = 0 gives `Y_j =
//!   sum_g t_gj X_g`, q = 1 gives `i Y_j` (the next axis's rotated rows: `i Y_j = sum_g
//!   (-Im t) X_g + (Re t) (i X_g)`); axis 0 keeps q = 0 only, alpha = scale: the result,
//!   interleaved (L, k_0, .., m).
//!
//! **Inverse** (kept modes to the real grid, axes first to last):
//! - complex axis a (0 to d-2): the `rotate` kernel writes rows (j, p) (`X_j`, `i X_j`) of the
//!   input, then per outer index `Out_o (n_a x inner) = A_a B_o` with `A_a[g, (j, p)]` the real
//!   (p = 0) and imaginary (p = 1) part of `t_jg = exp(2 pi i f_j g / n_a)`;
//! - last axis: one GEMM `(rows x 2m) (2m x n_l)` with table rows `c_k cos`, `-c_k sin` of
//!   `2 pi k g / n_l` (`y_g = sum_k Re(c_k X_k exp(2 pi i k g / n_l))`), alpha = scale.
//!
//! Row-major `R = S T` is, column-major, `R^T = T^T S^T`, which is how each [`GemmShape`] below
//! is written (A = the right factor, B = the left one).

use super::GemmShape;
// `root`: exp(sign 2 pi i (j k mod n) / n), the same f64 table entries the CPU's emulation rounds.
use crate::backend::dft_gemm::root;
use crate::backend::{Modes, herm_weight};
use crate::precision::{Format, round};

/// What a step of a GEMM transform reads and writes.
#[derive(Clone, Debug, PartialEq)]
pub struct DftStep {
    /// The table (the GEMM's constant factor), row-major as the module docs state it, values
    /// already rounded to the format (exact in f32).
    pub table: Vec<f32>,
    /// The call, in cuBLAS's column-major terms (module docs); which operand is the table is
    /// [`DftStep::table_is_a`].
    pub shape: GemmShape,
    /// Whether the table is cuBLAS's A operand (the right factor: the last-axis steps) or B
    /// (the left factor: the complex axes).
    pub table_is_a: bool,
    /// Before the GEMM, rotate the input (`rotate` kernel): (outer, rows, inner) complex values
    /// become (outer, rows, 2, inner), the second copy multiplied by i.
    pub rotate: Option<(usize, usize, usize)>,
    /// Real values the step writes.
    pub out_len: usize,
    /// cuBLAS's alpha: `scale` on the last step, 1 elsewhere.
    pub alpha: f32,
}

/// `v` rounded to `fmt` once, as f32 (exact: every GPU format's values are f32 values).
fn r(v: f64, fmt: Format) -> f32 {
    round(v, fmt) as f32
}

/// The steps of the forward transform of `lines` grids `grid` onto the kept `modes`:
/// `scale * w_k * X_k`, w_k the Hermitian weight when `hermitian` (module docs).
pub fn forward_steps(
    lines: usize,
    grid: &[usize],
    modes: &Modes,
    scale: f64,
    hermitian: bool,
    fmt: Format,
) -> Vec<DftStep> {
    let d = grid.len();
    let kept = modes.kept_shape();
    let (nl, ml) = (grid[d - 1], kept[d - 1]);
    let rows = lines * grid[..d - 1].iter().product::<usize>();
    // Last axis: columns (p, k, c), c = re/im; p = 1 is i times p = 0: (re, im) -> (-im, re).
    let planes = if d == 1 { 1 } else { 2 };
    let width = planes * 2 * ml;
    let mut table = vec![0.0f32; nl * width];
    let roots = crate::fft::f64_roots(nl);
    for j in 0..nl {
        for k in 0..ml {
            let w = if hermitian { herm_weight(k, nl) } else { 1.0 };
            let (re, im) = root(&roots, j as i64, k as i64, -1.0);
            let (re, im) = (r(w * re, fmt), r(w * im, fmt));
            table[j * width + 2 * k] = re;
            table[j * width + 2 * k + 1] = im;
            if planes == 2 {
                table[j * width + 2 * ml + 2 * k] = -im;
                table[j * width + 2 * ml + 2 * k + 1] = re;
            }
        }
    }
    let mut steps = vec![DftStep {
        table,
        shape: GemmShape {
            trans: (false, false),
            m: width,
            n: rows,
            k: nl,
            lda: width,
            sa: 0,
            ldb: nl,
            sb: 0,
            ldc: width,
            sc: 0,
            batch: 1,
        },
        table_is_a: true,
        rotate: None,
        out_len: rows * width,
        alpha: if d == 1 { scale as f32 } else { 1.0 },
    }];
    // Complex axes, last to first; `inner` counts real values per row (kept axes after a).
    let mut inner = 2 * ml;
    for a in (0..d - 1).rev() {
        let (n, k) = (grid[a], kept[a]);
        let outer = lines * grid[..a].iter().product::<usize>();
        let q_rows = if a == 0 { 1 } else { 2 };
        let cols = 2 * n;
        let mut table = vec![0.0f32; q_rows * k * cols];
        let roots = crate::fft::f64_roots(n);
        for j in 0..k {
            for g in 0..n {
                let (re, im) = root(&roots, g as i64, modes.frequency(a, j), -1.0);
                let (re, im) = (r(re, fmt), r(im, fmt));
                // q = 0: Y_j = sum_g Re t X_g + Im t (i X_g).
                table[j * cols + 2 * g] = re;
                table[j * cols + 2 * g + 1] = im;
                if q_rows == 2 {
                    // q = 1: i Y_j = sum_g (-Im t) X_g + Re t (i X_g).
                    table[(k + j) * cols + 2 * g] = -im;
                    table[(k + j) * cols + 2 * g + 1] = re;
                }
            }
        }
        let m_rows = q_rows * k;
        steps.push(DftStep {
            table,
            shape: GemmShape {
                trans: (false, false),
                m: inner,
                n: m_rows,
                k: cols,
                lda: inner,
                sa: cols * inner,
                ldb: cols,
                sb: 0,
                ldc: inner,
                sc: m_rows * inner,
                batch: outer,
            },
            table_is_a: false,
            rotate: None,
            out_len: outer * m_rows * inner,
            alpha: if a == 0 { scale as f32 } else { 1.0 },
        });
        // The next axis's rows are (g_{a-1}, q), each of k_a * inner values.
        inner *= k;
    }
    steps
}

/// The steps of the inverse transform of `lines` kept spectra onto `grid`:
/// `y_j = scale * sum_k c_k Re(X_k exp(2 pi i <j, k> / n))`, c_k the Hermitian weight when
/// `hermitian`, else 1 (module docs).
pub fn inverse_steps(
    lines: usize,
    grid: &[usize],
    modes: &Modes,
    scale: f64,
    hermitian: bool,
    fmt: Format,
) -> Vec<DftStep> {
    let d = grid.len();
    let kept = modes.kept_shape();
    let (nl, ml) = (grid[d - 1], kept[d - 1]);
    let mut steps = Vec::new();
    for a in 0..d - 1 {
        let (n, k) = (grid[a], kept[a]);
        let outer = lines * grid[..a].iter().product::<usize>();
        // Real values per row: the kept axes after a, interleaved.
        let inner = 2 * kept[a + 1..].iter().product::<usize>();
        let cols = 2 * k;
        let mut table = vec![0.0f32; n * cols];
        let roots = crate::fft::f64_roots(n);
        for g in 0..n {
            for j in 0..k {
                let (re, im) = root(&roots, modes.frequency(a, j), g as i64, 1.0);
                table[g * cols + 2 * j] = r(re, fmt);
                table[g * cols + 2 * j + 1] = r(im, fmt);
            }
        }
        steps.push(DftStep {
            table,
            shape: GemmShape {
                trans: (false, false),
                m: inner,
                n,
                k: cols,
                lda: inner,
                sa: cols * inner,
                ldb: cols,
                sb: 0,
                ldc: inner,
                sc: n * inner,
                batch: outer,
            },
            table_is_a: false,
            rotate: Some((outer, k, inner)),
            out_len: outer * n * inner,
            alpha: 1.0,
        });
    }
    let rows = lines * grid[..d - 1].iter().product::<usize>();
    let mut table = vec![0.0f32; 2 * ml * nl];
    let roots = crate::fft::f64_roots(nl);
    for k in 0..ml {
        let c = if hermitian { herm_weight(k, nl) } else { 1.0 };
        for g in 0..nl {
            let (re, im) = root(&roots, k as i64, g as i64, 1.0);
            table[2 * k * nl + g] = r(c * re, fmt);
            table[(2 * k + 1) * nl + g] = r(-c * im, fmt);
        }
    }
    steps.push(DftStep {
        table,
        shape: GemmShape {
            trans: (false, false),
            m: nl,
            n: rows,
            k: 2 * ml,
            lda: nl,
            sa: 0,
            ldb: 2 * ml,
            sb: 0,
            ldc: nl,
            sc: 0,
            batch: 1,
        },
        table_is_a: true,
        rotate: None,
        out_len: rows * nl,
        alpha: scale as f32,
    });
    steps
}

/// Every step obeys cuBLAS's leading-dimension rules and stays inside its operands: the data
/// operand spans at most what the previous step wrote (`input` real values first, doubled by
/// a rotation), the table its length, the output `out_len`.
pub fn check_steps(steps: &[DftStep], input: usize) -> Result<(), String> {
    let mut have = input;
    for (i, s) in steps.iter().enumerate() {
        s.shape.check().map_err(|e| format!("step {i}: {e}"))?;
        if let Some((o, rows, inner)) = s.rotate {
            if o * rows * inner != have {
                return Err(format!(
                    "step {i}: rotates {} of {have} values",
                    o * rows * inner
                ));
            }
            have *= 2;
        }
        let (sa, sb, sc) = s.shape.spans();
        let (table, data) = if s.table_is_a { (sa, sb) } else { (sb, sa) };
        if table > s.table.len() || data > have || sc > s.out_len {
            return Err(format!(
                "step {i}: spans (table {table}, data {data}, out {sc}) over (table {}, data \
                 {have}, out {})",
                s.table.len(),
                s.out_len
            ));
        }
        have = s.out_len;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every step of both directions fits its operands exactly, for 1-3 axes, odd and even
    /// sizes, one kept mode and the most.
    #[test]
    fn steps_fit_their_operands() {
        for (grid, m) in [
            (vec![7usize], vec![3usize]),
            (vec![12, 10], vec![3, 4]),
            (vec![5, 6, 9], vec![2, 1, 5]),
            (vec![100, 96], vec![16, 16]),
        ] {
            let modes = Modes(m);
            let kept: usize = modes.kept_shape().iter().product();
            let pts: usize = grid.iter().product();
            for lines in [1usize, 3] {
                let f = forward_steps(lines, &grid, &modes, 0.5, true, Format::Fp16);
                check_steps(&f, lines * pts).unwrap();
                assert_eq!(f.last().unwrap().out_len, 2 * lines * kept, "{grid:?}");
                assert_eq!(f.len(), grid.len());
                let i = inverse_steps(lines, &grid, &modes, 0.5, true, Format::Fp16);
                check_steps(&i, 2 * lines * kept).unwrap();
                assert_eq!(i.last().unwrap().out_len, lines * pts, "{grid:?}");
                assert_eq!(f.last().unwrap().alpha, 0.5);
                assert_eq!(i.last().unwrap().alpha, 0.5);
            }
        }
    }

    /// Table values are the format's: fp16 tables hold fp16 values, and the rotated columns
    /// are exact negations/copies of the plain ones.
    #[test]
    fn tables_are_rounded_once_and_rotations_are_exact() {
        let modes = Modes(vec![3, 4]);
        let f = forward_steps(1, &[12, 10], &modes, 1.0, true, Format::Fp16);
        for s in &f {
            for &v in &s.table {
                assert_eq!(round(v as f64, Format::Fp16), v as f64);
            }
        }
        let (t, w) = (&f[0].table, f[0].shape.m);
        for j in 0..10 {
            for k in 0..4 {
                let (re, im) = (t[j * w + 2 * k], t[j * w + 2 * k + 1]);
                assert_eq!((t[j * w + 8 + 2 * k], t[j * w + 8 + 2 * k + 1]), (-im, re));
            }
        }
    }
}
