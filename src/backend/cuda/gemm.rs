//! The spectral contraction as cuBLAS GEMMs: shapes only (no device code), so that the host
//! tests can execute exactly the calls the CUDA backend makes.
//!
//! The contraction `y[b,o,k] = sum_i x[b,i,k] w[i,o,k]` is, for every kept mode `k`, one
//! complex matrix product `Y_k (b x co) = X_k (b x ci) W_k (ci x co)`. cuBLAS has no complex
//! half-precision GEMM, so each complex product is written as a real one of twice the size:
//! with rows stored as interleaved (re, im) pairs, right-multiplication by a complex `w = a + ib`
//! is the real 2x2 block `M(w) = [[a, b], [-b, a]]` (`[xr, xi] M(w) = [Re xw, Im xw]`), so
//!
//! - forward: `Y_k = X_k M(W_k)` with `M(W_k)` the real (2ci x 2co) matrix of blocks `M(w_io)`;
//! - input gradient: `gX_k = G_k W_k^H = G_k M(W_k)^T`, because `M(W)^T = M(W^H)`;
//! - weight gradient: `gW_k = X_k^H G_k` needs the conjugate on the left, which `M` cannot
//!   express; the real product `P_k = X_k^T G_k` (2ci x 2co, fp32) holds every `x_p g_q` sum and
//!   `gw = (P_rr + P_ii) + i (P_ri - P_ir)` (`combine_gw` in kernels/contract.cu).
//!
//! Operands are mode-major: `xt` (k, b, ci), `gt` (k, b, co), `yt` (k, b, co), `gxt` (k, b, ci),
//! all complex interleaved (`ctranspose` in kernels/contract.cu moves between (b, c, k) and
//! (k, b, c)); `wb` (k, 2ci, 2co) real (`block_weight`); `p` (k, 2ci, 2co) real fp32. Row-major
//! `R = S T` is, column-major, `R^T = T^T S^T`, which is how each call below is written.

/// One strided-batched GEMM in cuBLAS's column-major convention: for `j < batch`,
/// `C_j (m x n) = op(A_j) (m x k) op(B_j) (k x n) + beta C_j`, where `A_j` starts `j * sa`
/// elements after A's base, element (r, c) of a stored matrix sits at `r + c * ld`, and `op`
/// transposes when the flag is set. Strides and leading dimensions count elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmShape {
    /// (transpose A, transpose B).
    pub trans: (bool, bool),
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub lda: usize,
    pub sa: usize,
    pub ldb: usize,
    pub sb: usize,
    pub ldc: usize,
    pub sc: usize,
    pub batch: usize,
}

impl GemmShape {
    /// Elements each operand spans: (A, B, C), from its base to one past its last element.
    pub fn spans(&self) -> (usize, usize, usize) {
        let (ta, tb) = self.trans;
        // Stored A is (m x k), or (k x m) when transposed; its columns are ld apart.
        let span = |rows: usize, cols: usize, ld: usize, stride: usize| {
            if rows == 0 || cols == 0 || self.batch == 0 {
                0
            } else {
                (self.batch - 1) * stride + (cols - 1) * ld + rows
            }
        };
        let (ar, ac) = if ta {
            (self.k, self.m)
        } else {
            (self.m, self.k)
        };
        let (br, bc) = if tb {
            (self.n, self.k)
        } else {
            (self.k, self.n)
        };
        (
            span(ar, ac, self.lda, self.sa),
            span(br, bc, self.ldb, self.sb),
            span(self.m, self.n, self.ldc, self.sc),
        )
    }

    /// cuBLAS's argument rules: every leading dimension at least its stored matrix's rows.
    pub fn check(&self) -> Result<(), String> {
        let (ta, tb) = self.trans;
        let rows_a = if ta { self.k } else { self.m };
        let rows_b = if tb { self.n } else { self.k };
        for (name, ld, rows) in [
            ("lda", self.lda, rows_a),
            ("ldb", self.ldb, rows_b),
            ("ldc", self.ldc, self.m),
        ] {
            if ld < rows.max(1) {
                return Err(format!("GEMM {name} = {ld} < {} rows", rows.max(1)));
            }
        }
        Ok(())
    }
}

/// The three GEMMs of the contraction of `x` (b, ci, k) with `w` (ci, co, k) (module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContractGemms {
    /// `yt = xt wb`: A = `wb`, B = `xt`, C = `yt`.
    pub forward: GemmShape,
    /// `gxt = gt wb^T`: A = `wb`, B = `gt`, C = `gxt`.
    pub grad_x: GemmShape,
    /// `p = xt^T gt`: A = `gt`, B = `xt`, C = `p` (fp32).
    pub grad_w: GemmShape,
}

impl ContractGemms {
    pub fn new(b: usize, ci: usize, co: usize, k: usize) -> ContractGemms {
        let (ri, ro) = (2 * ci, 2 * co);
        let w = ri * ro;
        ContractGemms {
            // Row-major Y (b x ro) = X (b x ri) M (ri x ro): column-major Y^T = M^T X^T, where
            // wb stored row-major (ri x ro) is M^T column-major with ld ro.
            forward: GemmShape {
                trans: (false, false),
                m: ro,
                n: b,
                k: ri,
                lda: ro,
                sa: w,
                ldb: ri,
                sb: b * ri,
                ldc: ro,
                sc: b * ro,
                batch: k,
            },
            // gX (b x ri) = G (b x ro) M^T (ro x ri): column-major gX^T = M G^T = (M^T)^T G^T.
            grad_x: GemmShape {
                trans: (true, false),
                m: ri,
                n: b,
                k: ro,
                lda: ro,
                sa: w,
                ldb: ro,
                sb: b * ro,
                ldc: ri,
                sc: b * ri,
                batch: k,
            },
            // P (ri x ro) = X^T (ri x b) G (b x ro): column-major P^T (ro x ri) = G^T X, with
            // G^T the column-major view of gt (ld ro) and X the transpose of xt's (ld ri).
            grad_w: GemmShape {
                trans: (false, true),
                m: ro,
                n: ri,
                k: b,
                lda: ro,
                sa: b * ro,
                ldb: ri,
                sb: b * ri,
                ldc: ro,
                sc: w,
                batch: k,
            },
        }
    }

    /// Every call obeys cuBLAS's leading-dimension rules and stays inside its operand (sizes
    /// in elements: `xt`/`gxt` 2bci k, `gt`/`yt` 2bco k, `wb`/`p` 4cico k).
    pub fn check(&self, b: usize, ci: usize, co: usize, k: usize) -> Result<(), String> {
        let (x, g, w) = (2 * b * ci * k, 2 * b * co * k, 4 * ci * co * k);
        for (name, s, sizes) in [
            ("forward", self.forward, (w, x, g)),
            ("grad_x", self.grad_x, (w, g, x)),
            ("grad_w", self.grad_w, (g, x, w)),
        ] {
            s.check().map_err(|e| format!("{name}: {e}"))?;
            let spans = s.spans();
            if spans.0 > sizes.0 || spans.1 > sizes.1 || spans.2 > sizes.2 {
                return Err(format!(
                    "{name}: operands span {spans:?} elements, buffers hold {sizes:?}"
                ));
            }
        }
        Ok(())
    }
}

/// One of Gauss's three real GEMMs of a contraction product `Out_k (r x q) = L_k (r x j)
/// R_k (j x q)` ([`crate::backend::ContractForm::Gauss`]): row-major planes `L` (k, r, j) and
/// `R` (k, j, q) (`gauss_planes` in kernels/contract.cu) and the fp32 result (k, r, q).
/// Column-major that is `Out^T = R^T L^T`, nothing transposed: A = the right plane (ld q),
/// B = the left plane (ld j), C = the result (ld q).
pub fn gauss_gemm(r: usize, j: usize, q: usize, k: usize) -> GemmShape {
    GemmShape {
        trans: (false, false),
        m: q,
        n: r,
        k: j,
        lda: q,
        sa: j * q,
        ldb: j,
        sb: r * j,
        ldc: q,
        sc: r * q,
        batch: k,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contraction_gemms_fit_their_buffers_exactly() {
        for (b, ci, co, k) in [
            (1, 1, 1, 1),
            (2, 3, 4, 12),
            (64, 64, 64, 2112),
            (5, 7, 2, 9),
        ] {
            let g = ContractGemms::new(b, ci, co, k);
            g.check(b, ci, co, k).unwrap();
            // Each C covers its whole output buffer (no element left unwritten).
            assert_eq!(g.forward.spans().2, 2 * b * co * k);
            assert_eq!(g.grad_x.spans().2, 2 * b * ci * k);
            assert_eq!(g.grad_w.spans().2, 4 * ci * co * k);
        }
    }

    #[test]
    fn gauss_gemms_cover_their_planes_exactly() {
        for (r, j, q, k) in [
            (1, 1, 1, 1),
            (3, 5, 4, 12),
            (64, 64, 64, 2112),
            (7, 2, 9, 5),
        ] {
            let s = gauss_gemm(r, j, q, k);
            s.check().unwrap();
            assert_eq!(s.spans(), (j * q * k, r * j * k, r * q * k));
        }
    }

    #[test]
    fn a_short_leading_dimension_is_refused() {
        let mut g = ContractGemms::new(2, 3, 4, 5);
        g.grad_x.lda = 3;
        let e = g.check(2, 3, 4, 5).unwrap_err();
        assert!(e.contains("grad_x: GEMM lda = 3 < 8 rows"), "{e}");
        let mut g = ContractGemms::new(2, 3, 4, 5);
        g.forward.sb += 1;
        assert!(g.check(2, 3, 4, 5).unwrap_err().contains("span"));
    }
}
