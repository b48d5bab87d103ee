//! The spectral half of the CUDA backend: cuFFT plans and the transforms over kept modes
//! (`rfft`, `irfft`), the GEMM transform's plans (`dft_plan`, `run_dft`), and the complex
//! contraction as cuBLAS GEMMs, plain or with Gauss's three real products.

use super::*;

/// A GEMM spectral transform (`cuda::dft`): (forward, lines, grid, modes, scale bits,
/// hermitian, format).
pub(super) type DftKey = (bool, usize, Vec<usize>, Vec<usize>, u64, bool, Format);

/// A GEMM spectral transform's steps with their tables on the device (cached per key: built
/// and uploaded once, not at every call).
pub(super) struct DftPlan {
    steps: Vec<DftStep>,
    tables: Vec<GpuTensor>,
}

/// A complex operand of Gauss's contraction stored (na, nb, k), conjugated and/or transposed
/// (`swap`) on its way into planes.
struct GaussOperand<'a> {
    buf: &'a DeviceBuf<u8>,
    na: usize,
    nb: usize,
    conj: bool,
    swap: bool,
}

impl<'a> GaussOperand<'a> {
    fn plain(buf: &'a DeviceBuf<u8>, na: usize, nb: usize) -> Self {
        GaussOperand {
            buf,
            na,
            nb,
            conj: false,
            swap: false,
        }
    }

    /// The conjugate transpose (nb x na per mode).
    fn adjoint(buf: &'a DeviceBuf<u8>, na: usize, nb: usize) -> Self {
        GaussOperand {
            buf,
            na,
            nb,
            conj: true,
            swap: true,
        }
    }
}

/// Sizes of the spectral layout (see the module docs).
struct SpecDims {
    bc: usize,
    lead: usize,
    n0: usize,
    n1: usize,
    m0: usize,
    m1: usize,
    nl: usize,
    ml: usize,
    lead_dims: Vec<usize>,
}

impl SpecDims {
    /// Kept entries over the leading axes.
    fn kept_lead(&self) -> usize {
        let k = |m: usize| if m > 0 { 2 * m } else { 1 };
        k(self.m0) * k(self.m1)
    }

    /// (n0, n1, m0, m1, nl) as the gather / scatter kernels (`fwd_lead`, `inv_lead`) take them.
    fn lead_args(&self) -> [u64; 5] {
        [self.n0, self.n1, self.m0, self.m1, self.nl].map(|v| v as u64)
    }
}

impl Cuda {
    fn plan(&self, key: PlanKey) -> Result<Arc<XtPlan>, CudaError> {
        key.check(self.gpu.compute_capability()?)?;
        self.plans.get_or_try(&key, || {
            XtPlan::new(self.gpu.stream(), key.clone()).or_else(|first| {
                // cuFFT allocates its work area outside the memory pool, which keeps freed
                // memory: hand the pool's unused memory back to the driver and try once more.
                self.gpu.trim_pool()?;
                XtPlan::new(self.gpu.stream(), key.clone()).map_err(|_| first)
            })
        })
    }

    /// The in-place C2C transform over the leading grid axes of `cols` (bc x ml transforms of
    /// the leading shape), forward or inverse; nothing for a 1-D grid.
    fn lead_c2c(
        &self,
        s: &SpecDims,
        dt: Dtype,
        cols: &DeviceBuf<u8>,
        forward: bool,
    ) -> Result<(), CudaError> {
        if s.lead_dims.is_empty() {
            return Ok(());
        }
        let key = PlanKey {
            kind: FftKind::C2C,
            dtype: dt,
            dims: s.lead_dims.clone(),
            batch: s.bc * s.ml,
        };
        self.exec(key, self.addr(cols), self.addr(cols), forward)
    }

    /// Run a plan from device address `input` into `output` (equal for in-place C2C; C2R
    /// overwrites its input, R2C does not).
    fn exec(&self, key: PlanKey, input: u64, output: u64, forward: bool) -> Result<(), CudaError> {
        let plan = self.plan(key)?;
        // SAFETY: the callers size both buffers for the plan's batch and io lengths.
        unsafe { plan.exec(input, output, forward) }
    }

    /// Spectral layout sizes: (bc, lead, n0, n1, m0, m1, nl, ml) for a `d`-D grid with `modes`.
    fn spectral_dims(batch_ch: usize, grid: &[usize], modes: &[usize]) -> SpecDims {
        let d = grid.len();
        let lead: usize = grid[..d - 1].iter().product();
        let at = |v: &[usize], i: usize, absent: usize| if i + 1 < d { v[i] } else { absent };
        SpecDims {
            bc: batch_ch,
            lead,
            n0: at(grid, 0, 1),
            n1: if d == 3 { grid[1] } else { 1 },
            m0: at(modes, 0, 0),
            m1: if d == 3 { modes[1] } else { 0 },
            nl: grid[d - 1],
            ml: modes[d - 1],
            lead_dims: grid[..d - 1].to_vec(),
        }
    }

    pub(super) fn rfft(
        &self,
        x: &GpuTensor,
        modes: &Modes,
        opt: SpectralForward,
    ) -> Result<GpuCTensor, CudaError> {
        let d = modes.0.len();
        assert!(
            x.shape.len() > d,
            "rfft_modes: tensor of shape {:?} has no {d}-D grid",
            x.shape
        );
        let split = x.shape.len() - d;
        let grid = x.shape[split..].to_vec();
        if let Err(e) = modes.check_grid(&grid) {
            panic!("rfft_modes: {e}");
        }
        let bc: usize = x.shape[..split].iter().product();
        let x = self.as_format(x, opt.format)?;
        if opt.transform == SpectralTransform::Gemm {
            let key = (
                true,
                bc,
                grid.clone(),
                modes.0.clone(),
                opt.scale.to_bits(),
                opt.hermitian,
                opt.format,
            );
            let out = self.run_dft(&*self.dft_plan(key)?, &x.buf, x.dtype)?;
            let mut shape = x.shape[..split].to_vec();
            shape.extend(modes.kept_shape());
            return Ok(GpuCTensor {
                buf: out,
                shape,
                format: x.format,
                dtype: x.dtype,
            });
        }
        let s = Self::spectral_dims(bc, &grid, &modes.0);
        let dt = x.dtype;
        let nh = s.nl / 2 + 1;
        // 1. R2C along the last axis.
        let half = self.gpu.alloc_bytes(2 * bc * s.lead * nh * dt.bytes())?;
        self.exec(
            PlanKey {
                kind: FftKind::R2C,
                dtype: dt,
                dims: vec![s.nl],
                batch: bc * s.lead,
            },
            self.addr(&x.buf),
            self.addr(&half),
            true,
        )?;
        // 2. Keep ml columns, leading axes contiguous.
        let mut cols = self.gpu.alloc_bytes(2 * bc * s.ml * s.lead * dt.bytes())?;
        let (bc64, lead64, nh64, ml64) = (bc as u64, s.lead as u64, nh as u64, s.ml as u64);
        launch!(self.gpu, "spectral", format!("fwd_last_{}", dt.suffix()), bc * s.ml * s.lead;
            &half.slice, &mut cols.slice, &bc64, &lead64, &nh64, &ml64)?;
        drop(half);
        // 3. C2C over the leading axes.
        self.lead_c2c(&s, dt, &cols, true)?;
        // 4. Gather the kept modes, scale, Hermitian weights.
        let mut shape = x.shape[..split].to_vec();
        shape.extend(modes.kept_shape());
        let mut out = self.complex(shape, opt.format)?;
        let kept_lead = s.kept_lead();
        let [n0, n1, m0, m1, nl] = s.lead_args();
        let scale = opt.scale as f32;
        let herm = opt.hermitian as i32;
        launch!(self.gpu, "spectral", format!("fwd_lead_{}", dt.suffix()), bc * kept_lead * s.ml;
            &cols.slice, &mut out.buf.slice, &bc64, &n0, &n1, &m0, &m1, &ml64, &nl, &scale, &herm)?;
        Ok(out)
    }

    pub(super) fn irfft(
        &self,
        x: &GpuCTensor,
        grid: &[usize],
        opt: SpectralInverse,
    ) -> Result<GpuTensor, CudaError> {
        let d = grid.len();
        assert!(
            x.shape.len() > d,
            "irfft_modes: tensor of shape {:?} has no {d}-D spectrum",
            x.shape
        );
        let split = x.shape.len() - d;
        let kept = &x.shape[split..];
        let modes: Vec<usize> = kept
            .iter()
            .enumerate()
            .map(|(i, &k)| if i + 1 < d { k / 2 } else { k })
            .collect();
        if let Err(e) = Modes(modes.clone()).check_grid(grid) {
            panic!("irfft_modes: {e}");
        }
        let bc: usize = x.shape[..split].iter().product();
        let x = self.as_cformat(x, opt.format)?;
        if opt.transform == SpectralTransform::Gemm {
            let key = (
                false,
                bc,
                grid.to_vec(),
                modes,
                opt.scale.to_bits(),
                opt.hermitian,
                opt.format,
            );
            let out = self.run_dft(&*self.dft_plan(key)?, &x.buf, x.dtype)?;
            let mut shape = x.shape[..split].to_vec();
            shape.extend_from_slice(grid);
            return Ok(GpuTensor {
                buf: out,
                shape,
                format: x.format,
                dtype: x.dtype,
            });
        }
        let s = Self::spectral_dims(bc, grid, &modes);
        let dt = x.dtype;
        let nh = s.nl / 2 + 1;
        // 1. Scatter the kept modes (zeros elsewhere) with scale and 1/c_k for the adjoint.
        let mut cols = self.gpu.alloc_bytes(2 * bc * s.ml * s.lead * dt.bytes())?;
        let (bc64, lead64, nh64, ml64) = (bc as u64, s.lead as u64, nh as u64, s.ml as u64);
        let [n0, n1, m0, m1, nl] = s.lead_args();
        let scale = opt.scale as f32;
        let herm = opt.hermitian as i32;
        launch!(self.gpu, "spectral", format!("inv_lead_{}", dt.suffix()), bc * s.ml * s.lead;
            &x.buf.slice, &mut cols.slice, &bc64, &n0, &n1, &m0, &m1, &ml64, &nl, &scale, &herm)?;
        // 2. Inverse C2C over the leading axes.
        self.lead_c2c(&s, dt, &cols, false)?;
        // 3. Back to last-axis-contiguous half spectra, Im of k = 0 and nl/2 zeroed.
        let mut half = self.gpu.alloc_bytes(2 * bc * s.lead * nh * dt.bytes())?;
        launch!(self.gpu, "spectral", format!("inv_last_{}", dt.suffix()), bc * s.lead * nh;
            &cols.slice, &mut half.slice, &bc64, &lead64, &nh64, &ml64, &nl)?;
        drop(cols);
        // 4. C2R along the last axis.
        let mut shape = x.shape[..split].to_vec();
        shape.extend_from_slice(grid);
        let out = self.real(shape, opt.format)?;
        self.exec(
            PlanKey {
                kind: FftKind::C2R,
                dtype: dt,
                dims: vec![s.nl],
                batch: bc * s.lead,
            },
            self.addr(&half),
            self.addr(&out.buf),
            false,
        )?;
        Ok(out)
    }

    /// The cached steps and device tables of a GEMM spectral transform (built on first use).
    fn dft_plan(&self, key: DftKey) -> Result<Arc<DftPlan>, CudaError> {
        self.dft_plans.get_or_try(&key.clone(), || {
            let (forward, lines, grid, modes, scale, hermitian, format) = key;
            let (modes, scale) = (Modes(modes), f64::from_bits(scale));
            let (steps, input) = if forward {
                let steps = forward_steps(lines, &grid, &modes, scale, hermitian, format);
                (steps, lines * grid.iter().product::<usize>())
            } else {
                let steps = inverse_steps(lines, &grid, &modes, scale, hermitian, format);
                (
                    steps,
                    2 * lines * modes.kept_shape().iter().product::<usize>(),
                )
            };
            check_steps(&steps, input).map_err(CudaError::Driver)?;
            // The tables hold values of the format already: uploading changes nothing.
            let tables = steps
                .iter()
                .map(|s| self.upload_real(&[s.table.len()], &s.table, format))
                .collect::<Result<Vec<_>, CudaError>>()?;
            Ok(DftPlan { steps, tables })
        })
    }

    /// A GEMM spectral transform's steps on `input` (values of type `dt`): the rotation kernel
    /// where a step asks for it, then its GEMM (fp32 sums, alpha = the step's, the result in
    /// `dt`); returns the last step's output.
    fn run_dft(
        &self,
        plan: &DftPlan,
        input: &DeviceBuf<u8>,
        dt: Dtype,
    ) -> Result<DeviceBuf<u8>, CudaError> {
        let mut last: Option<DeviceBuf<u8>> = None;
        for (s, table) in plan.steps.iter().zip(&plan.tables) {
            let cur = last.as_ref().unwrap_or(input);
            let rotated = match s.rotate {
                Some((outer, rows, inner)) => {
                    let mut y = self
                        .gpu
                        .alloc_bytes(2 * outer * rows * inner * dt.bytes())?;
                    let (r64, i64_) = ((outer * rows) as u64, inner as u64);
                    launch!(self.gpu, "spectral", format!("rotate_{}", dt.suffix()), outer * rows * inner / 2;
                        &cur.slice, &mut y.slice, &r64, &i64_)?;
                    Some(y)
                }
                None => None,
            };
            let data = rotated.as_ref().unwrap_or(cur);
            let out = self.gpu.alloc_bytes(s.out_len * dt.bytes())?;
            let g = &s.shape;
            let (tab, dat) = (self.addr(&table.buf), self.addr(data));
            let (a, b) = if s.table_is_a { (tab, dat) } else { (dat, tab) };
            self.gemm(
                g.trans,
                (g.m, g.n, g.k),
                (a, g.lda, g.sa, dt),
                (b, g.ldb, g.sb, dt),
                (s.alpha, 0.0),
                (self.addr(&out), g.ldc, g.sc, dt),
                g.batch,
            )?;
            last = Some(out);
        }
        last.ok_or_else(|| CudaError::Driver("a GEMM transform with no steps".into()))
    }

    /// Batched `C_b = alpha op(A_b) op(B_b) + beta C_b` (column-major, cuBLAS conventions) with fp32
    /// compute, on raw device pointers: each operand is (pointer, leading dimension, stride
    /// between batch entries in elements, type).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn gemm(
        &self,
        (ta, tb): (bool, bool),
        (m, n, k): (usize, usize, usize),
        a: (u64, usize, usize, Dtype),
        b: (u64, usize, usize, Dtype),
        (alpha, beta): (f32, f32),
        c: (u64, usize, usize, Dtype),
        batch: usize,
    ) -> Result<(), CudaError> {
        let op = |t: bool| {
            if t {
                blas::cublasOperation_t::CUBLAS_OP_T
            } else {
                blas::cublasOperation_t::CUBLAS_OP_N
            }
        };
        let dt = |d: Dtype| -> blas::cudaDataType {
            match d {
                Dtype::F32 => blas::cudaDataType::CUDA_R_32F,
                Dtype::F16 => blas::cudaDataType::CUDA_R_16F,
                Dtype::Bf16 => blas::cudaDataType::CUDA_R_16BF,
            }
        };
        self.gpu.bind()?;
        let int = |v: usize, what: &str| -> Result<i32, CudaError> {
            i32::try_from(v).map_err(|_| {
                CudaError::Unsupported(format!("GEMM {what} = {v} exceeds cuBLAS's 32-bit sizes"))
            })
        };
        // SAFETY: the pointers are live device buffers holding `batch` matrices of the given
        // leading dimensions and strides (the callers' shape arithmetic); alpha and beta are host
        // scalars of the compute type (fp32).
        let status = unsafe {
            blas::cublasGemmStridedBatchedEx(
                *self.blas.handle(),
                op(ta),
                op(tb),
                int(m, "m")?,
                int(n, "n")?,
                int(k, "k")?,
                &alpha as *const f32 as *const _,
                a.0 as *const _,
                dt(a.3),
                int(a.1, "lda")?,
                a.2 as i64,
                b.0 as *const _,
                dt(b.3),
                int(b.1, "ldb")?,
                b.2 as i64,
                &beta as *const f32 as *const _,
                c.0 as *mut _,
                dt(c.3),
                int(c.1, "ldc")?,
                c.2 as i64,
                int(batch, "batch")?,
                blas::cublasComputeType_t::CUBLAS_COMPUTE_32F,
                blas::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
            )
        };
        if status != blas::cublasStatus_t::CUBLAS_STATUS_SUCCESS {
            return Err(CudaError::Driver(format!(
                "cublasGemmStridedBatchedEx: {status:?}"
            )));
        }
        Ok(())
    }

    /// The contraction's GEMM shapes, checked (see `super::gemm`).
    pub(super) fn contract_gemms(
        &self,
        b: usize,
        ci: usize,
        co: usize,
        k: usize,
    ) -> Result<ContractGemms, CudaError> {
        let plan = ContractGemms::new(b, ci, co, k);
        plan.check(b, ci, co, k).map_err(CudaError::Driver)?;
        Ok(plan)
    }

    /// One [`GemmShape`] call on whole buffers with the given element types (fp32 compute).
    pub(super) fn run_gemm(
        &self,
        s: &GemmShape,
        a: (&DeviceBuf<u8>, Dtype),
        b: (&DeviceBuf<u8>, Dtype),
        c: (&DeviceBuf<u8>, Dtype),
    ) -> Result<(), CudaError> {
        let (sa, sb, sc) = s.spans();
        for (name, (buf, dt), span) in [("A", a, sa), ("B", b, sb), ("C", c, sc)] {
            if span * dt.bytes() > buf.len() {
                return Err(CudaError::Driver(format!(
                    "GEMM operand {name} spans {span} elements, its buffer holds {} bytes",
                    buf.len()
                )));
            }
        }
        self.gemm(
            s.trans,
            (s.m, s.n, s.k),
            (self.addr(a.0), s.lda, s.sa, a.1),
            (self.addr(b.0), s.ldb, s.sb, b.1),
            (1.0, 0.0),
            (self.addr(c.0), s.ldc, s.sc, c.1),
            s.batch,
        )
    }

    /// The (cols, rows) transpose of a (rows, cols) complex array of type `dt`.
    pub(super) fn ctranspose(
        &self,
        src: &DeviceBuf<u8>,
        rows: usize,
        cols: usize,
        dt: Dtype,
    ) -> Result<DeviceBuf<u8>, CudaError> {
        let mut out = self.gpu.alloc_bytes(2 * rows * cols * dt.bytes())?;
        let (r64, c64) = (rows as u64, cols as u64);
        launch!(self.gpu, "contract", format!("ctranspose_{}", dt.suffix()), rows * cols;
            &src.slice, &mut out.slice, &r64, &c64)?;
        Ok(out)
    }

    /// `w` (ci, co, k) as k real (2ci x 2co) matrices of right-multiplication (`block_weight`).
    pub(super) fn block_weight(
        &self,
        w: &DeviceBuf<u8>,
        ci: usize,
        co: usize,
        k: usize,
        dt: Dtype,
    ) -> Result<DeviceBuf<u8>, CudaError> {
        let mut wb = self.gpu.alloc_bytes(4 * ci * co * k * dt.bytes())?;
        let dims = [ci as u64, co as u64, k as u64];
        launch!(self.gpu, "contract", format!("block_weight_{}", dt.suffix()), ci * co * k;
            &w.slice, &mut wb.slice, &dims[0], &dims[1], &dims[2])?;
        Ok(wb)
    }

    /// Gauss's three real planes (k, rows, cols) of a complex operand stored `(na, nb, k)`
    /// (`gauss_planes` in kernels/contract.cu; `swap`: rows and columns exchanged).
    fn gauss_planes(
        &self,
        op: &GaussOperand<'_>,
        k: usize,
        dt: Dtype,
        left: bool,
    ) -> Result<[DeviceBuf<u8>; 3], CudaError> {
        let n = op.na * op.nb * k;
        let mut p = [
            self.gpu.alloc_bytes(n * dt.bytes())?,
            self.gpu.alloc_bytes(n * dt.bytes())?,
            self.gpu.alloc_bytes(n * dt.bytes())?,
        ];
        let dims = [op.na as u64, op.nb as u64, k as u64];
        let flags = [left as i32, op.conj as i32, op.swap as i32];
        let [p0, p1, p2] = &mut p;
        launch!(self.gpu, "contract", format!("gauss_planes_{}", dt.suffix()), n;
            &op.buf.slice, &mut p0.slice, &mut p1.slice, &mut p2.slice,
            &dims[0], &dims[1], &dims[2], &flags[0], &flags[1], &flags[2])?;
        Ok(p)
    }

    /// One product `Out_k (r x q) = L_k (r x j) R_k (j x q)` in Gauss's form
    /// (`backend::contract`): planes `[a, b, a + b]` and `[c, d - c, c + d]` in the storage type,
    /// `t1 = s c`, `t2 = a e`, `t3 = b f` as fp32 GEMMs ([`gauss_gemm`]), and
    /// `gauss_combine` into `Out` (r, q, k) complex.
    fn gauss_product(
        &self,
        l: GaussOperand<'_>,
        r: GaussOperand<'_>,
        (rn, jn, qn, k): (usize, usize, usize, usize),
        dt: Dtype,
    ) -> Result<DeviceBuf<u8>, CudaError> {
        let lp = self.gauss_planes(&l, k, dt, true)?;
        let rp = self.gauss_planes(&r, k, dt, false)?;
        let shape = gauss_gemm(rn, jn, qn, k);
        let mut t = Vec::with_capacity(3);
        // (left plane, right plane): t1 = s c, t2 = a e, t3 = b f.
        for (a, b) in [(2, 0), (0, 1), (1, 2)] {
            let c = self.gpu.alloc_bytes(rn * qn * k * 4)?;
            self.run_gemm(&shape, (&rp[b], dt), (&lp[a], dt), (&c, Dtype::F32))?;
            t.push(c);
        }
        drop((lp, rp));
        let mut out = self.gpu.alloc_bytes(2 * rn * qn * k * dt.bytes())?;
        let dims = [rn as u64, qn as u64, k as u64];
        launch!(self.gpu, "contract", format!("gauss_combine_{}", dt.suffix()), rn * qn * k;
            &t[0].slice, &t[1].slice, &t[2].slice, &mut out.slice, &dims[0], &dims[1], &dims[2])?;
        Ok(out)
    }

    /// [`Backend::contract`] in Gauss's form.
    pub(super) fn contract_gauss(
        &self,
        x: &GpuCTensor,
        w: &GpuCTensor,
        format: Format,
    ) -> Result<GpuCTensor, CudaError> {
        let (b, ci, co, k) = contract_dims(&x.shape, &w.shape, None);
        let xs = self.as_cformat(x, format)?;
        let ws = self.as_cformat(w, format)?;
        let dt = xs.dtype;
        let buf = self.gauss_product(
            GaussOperand::plain(&xs.buf, b, ci),
            GaussOperand::plain(&ws.buf, ci, co),
            (b, ci, co, k),
            dt,
        )?;
        let mut shape = vec![b, co];
        shape.extend_from_slice(&x.shape[2..]);
        Ok(GpuCTensor {
            buf,
            shape,
            format: stored(format),
            dtype: dt,
        })
    }

    /// [`Backend::contract_backward`] in Gauss's form: `gx = g w^H` (w conjugated and
    /// transposed), `gw = x^H g` (x conjugated and transposed).
    pub(super) fn contract_backward_gauss(
        &self,
        x: &GpuCTensor,
        w: &GpuCTensor,
        g: &GpuCTensor,
        format: Format,
    ) -> Result<(GpuCTensor, GpuCTensor), CudaError> {
        let (b, ci, co, k) = contract_dims(&x.shape, &w.shape, Some(&g.shape));
        let dt = Self::dtype(format);
        let gs = self.as_cformat(g, format)?;
        let gx = {
            let ws = self.as_cformat(w, format)?;
            self.gauss_product(
                GaussOperand::plain(&gs.buf, b, co),
                GaussOperand::adjoint(&ws.buf, ci, co),
                (b, co, ci, k),
                dt,
            )?
        };
        let xs = self.as_cformat(x, format)?;
        let gw = self.gauss_product(
            GaussOperand::adjoint(&xs.buf, b, ci),
            GaussOperand::plain(&gs.buf, b, co),
            (ci, b, co, k),
            dt,
        )?;
        let t = |buf, shape: &[usize]| GpuCTensor {
            buf,
            shape: shape.to_vec(),
            format: stored(format),
            dtype: dt,
        };
        Ok((t(gx, &x.shape), t(gw, &w.shape)))
    }
}
