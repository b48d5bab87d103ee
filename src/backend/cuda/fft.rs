//! cuFFT in half precision. cudarc binds classic cuFFT (fp32/fp64) but not the `cufftXt*`
//! entry points that fp16 needs; they are looked up in the cuFFT library cudarc already loaded.
//! cuFFT half precision supports power-of-two sizes only, on compute capability >= 5.3.

use super::CudaError;
use super::device::{DeviceBuf, Gpu};
use cudarc::driver::{CudaStream, DevicePtrMut};
use std::ffi::{c_int, c_longlong, c_void};
use std::sync::Arc;

/// cufftHandle.
type Handle = c_int;
type MakePlanMany = unsafe extern "C" fn(
    Handle,
    c_int,
    *mut c_longlong,
    *mut c_longlong,
    c_longlong,
    c_longlong,
    c_int,
    *mut c_longlong,
    c_longlong,
    c_longlong,
    c_int,
    c_longlong,
    *mut usize,
    c_int,
) -> c_int;
type XtExec = unsafe extern "C" fn(Handle, *mut c_void, *mut c_void, c_int) -> c_int;

/// A batched 1-D complex-to-complex FFT plan in fp16 (storage and, per cuFFT, half-precision
/// arithmetic): `batch` transforms of length `n`, interleaved (re, im) halves. The [`XtPlan`] of
/// that [`PlanKey`], with a size check on the buffer it runs on.
pub struct HalfFft {
    plan: XtPlan,
    stream: Arc<CudaStream>,
}

fn cufft(what: &str, code: c_int) -> Result<(), CudaError> {
    if code == 0 {
        Ok(())
    } else {
        Err(CudaError::Driver(format!(
            "{what} failed with cufftResult {code}"
        )))
    }
}

fn lookup<T: Copy>(name: &[u8]) -> Result<T, CudaError> {
    // SAFETY: dlopen of libcufft (cudarc's loader) and dlsym of a symbol whose C signature `T`
    // mirrors cufftXt.h.
    unsafe {
        // SAFETY: checked presence first, so culib() does not panic.
        if !cudarc::cufft::sys::is_culib_present() {
            return Err(CudaError::NoLibrary("cuFFT", "libcufft not found".into()));
        }
        let lib = cudarc::cufft::sys::culib();
        let sym = lib.get::<T>(name).map_err(|e| {
            CudaError::NoLibrary("cuFFT", format!("{}: {e}", String::from_utf8_lossy(name)))
        })?;
        Ok(*sym)
    }
}

impl HalfFft {
    /// Whether cuFFT can run this fp16 transform: a clear error otherwise (no padding is done
    /// silently; pad to the next power of two yourself or use fp32).
    pub fn check(n: usize, batch: usize, cc: (i32, i32)) -> Result<(), CudaError> {
        PlanKey {
            kind: FftKind::C2C,
            dtype: Dtype::F16,
            dims: vec![n],
            batch,
        }
        .check(cc)
    }

    pub(super) fn new(gpu: &Gpu, n: usize, batch: usize) -> Result<HalfFft, CudaError> {
        let key = PlanKey {
            kind: FftKind::C2C,
            dtype: Dtype::F16,
            dims: vec![n],
            batch,
        };
        Ok(HalfFft {
            plan: XtPlan::new(gpu.stream(), key)?,
            stream: gpu.stream().clone(),
        })
    }

    /// Transform length.
    pub fn len(&self) -> usize {
        self.plan.key.dims[0]
    }

    /// Whether the length is zero (never: plans need n >= 2).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Batch count.
    pub fn batch(&self) -> usize {
        self.plan.key.batch
    }

    /// In-place forward (unnormalised, exp(-2 pi i jk/n)) or inverse transform of `data`:
    /// 2 n batch fp16 bit patterns, (re, im) interleaved.
    pub fn exec(&self, data: &mut DeviceBuf<u16>, forward: bool) -> Result<(), CudaError> {
        let (n, batch) = (self.len(), self.batch());
        if data.len() != 2 * n * batch {
            return Err(CudaError::Unsupported(format!(
                "fp16 FFT plan of length {n} x batch {batch} needs {} halves, given {}",
                2 * n * batch,
                data.len()
            )));
        }
        let (ptr, _sync) = data.slice.device_ptr_mut(&self.stream);
        // SAFETY: in-place transform on a buffer of the plan's size (checked above).
        unsafe { self.plan.exec(ptr, ptr, forward) }
    }
}

/// Element type of a device tensor (and of the cuFFT / cuBLAS call on it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dtype {
    F32,
    F16,
    Bf16,
}

impl Dtype {
    /// The storage type of a format on the GPU: fp16 and bf16 natively, fp32 for fp32 and wider
    /// (the GPU backend's scalar is f32). tf32 and the fp8 formats are refused: the GPU has no
    /// transform or contraction in them (the CPU backend emulates them).
    pub fn of(format: crate::precision::Format) -> Result<Dtype, CudaError> {
        use crate::precision::Format as F;
        match format {
            F::Fp64 | F::Fp32 => Ok(Dtype::F32),
            F::Fp16 => Ok(Dtype::F16),
            F::Bf16 => Ok(Dtype::Bf16),
            other => Err(CudaError::Unsupported(format!(
                "the CUDA backend stores and computes fp32, fp16 and bf16 only; {} runs on \
                 the CPU backend (--device cpu), which emulates it",
                other.name()
            ))),
        }
    }

    /// Bytes per real element.
    pub fn bytes(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F16 | Dtype::Bf16 => 2,
        }
    }

    /// Suffix of the kernels instantiated for this type (`kernels/*.cu`).
    pub fn suffix(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::F16 => "f16",
            Dtype::Bf16 => "bf16",
        }
    }

    /// cudaDataType of a real element.
    pub fn cuda_real(self) -> c_int {
        match self {
            Dtype::F32 => 0,
            Dtype::F16 => 2,
            Dtype::Bf16 => 14,
        }
    }

    /// cudaDataType of a complex element.
    pub fn cuda_complex(self) -> c_int {
        match self {
            Dtype::F32 => 4,
            Dtype::F16 => 6,
            Dtype::Bf16 => 15,
        }
    }
}

/// Transform kind of a cuFFT plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FftKind {
    /// Real to complex (forward), the last axis halved to n/2 + 1.
    R2C,
    /// Complex to real (inverse).
    C2R,
    /// Complex to complex, either direction.
    C2C,
}

/// What a cuFFT plan computes: `batch` contiguous transforms of shape `dims` (row-major).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PlanKey {
    pub kind: FftKind,
    pub dtype: Dtype,
    pub dims: Vec<usize>,
    pub batch: usize,
}

impl PlanKey {
    /// Whether cuFFT can run this plan on a device of compute capability `cc`: half precision
    /// needs power-of-two sizes (cc >= 5.3), bf16 needs cc >= 8.0. The error says how to get
    /// around it (no padding is done silently).
    pub fn check(&self, cc: (i32, i32)) -> Result<(), CudaError> {
        if self.batch == 0 || self.dims.is_empty() || self.dims.contains(&0) {
            return Err(CudaError::Unsupported(format!(
                "FFT of shape {:?} x batch {}: sizes and batch must be >= 1",
                self.dims, self.batch
            )));
        }
        if self.dims.len() > 3 {
            return Err(CudaError::Unsupported(format!(
                "cuFFT transforms 1 to 3 axes, asked for {}",
                self.dims.len()
            )));
        }
        if self.dtype != Dtype::F32 {
            let name = if self.dtype == Dtype::F16 {
                "fp16"
            } else {
                "bf16"
            };
            if let Some(&n) = self.dims.iter().find(|&&n| n < 2 || !n.is_power_of_two()) {
                return Err(CudaError::Unsupported(format!(
                    "cuFFT in {name} needs power-of-two sizes >= 2, got {n} in {:?} \
                     (use a grid of {} points, or keep the FFT stages in fp32)",
                    self.dims,
                    n.max(2).next_power_of_two()
                )));
            }
            let need = if self.dtype == Dtype::F16 {
                (5, 3)
            } else {
                (8, 0)
            };
            if cc < need {
                return Err(CudaError::Unsupported(format!(
                    "cuFFT in {name} needs compute capability >= {}.{}, device has {}.{}",
                    need.0, need.1, cc.0, cc.1
                )));
            }
        }
        Ok(())
    }

    /// Elements (real for R2C input / C2R output, complex otherwise) of one input and one output
    /// transform.
    pub fn io_len(&self) -> (usize, usize) {
        let full: usize = self.dims.iter().product();
        let last = *self.dims.last().expect("dims");
        let half = full / last * (last / 2 + 1);
        match self.kind {
            FftKind::R2C => (full, half),
            FftKind::C2R => (half, full),
            FftKind::C2C => (full, full),
        }
    }
}

/// A cuFFT plan made with `cufftXtMakePlanMany` (one code path for fp32, fp16 and bf16):
/// unnormalised, `exp(-2 pi i jk/n)` forward.
pub struct XtPlan {
    handle: Handle,
    key: PlanKey,
    /// `cufftXtExec`, looked up once with the plan: `lookup` dlopens and dlsyms, which does
    /// not belong in every transform.
    exec: XtExec,
}

// SAFETY: the handle is used only through &self on the one stream it was bound to.
unsafe impl Send for XtPlan {}
unsafe impl Sync for XtPlan {}

impl XtPlan {
    pub(super) fn new(stream: &Arc<CudaStream>, key: PlanKey) -> Result<XtPlan, CudaError> {
        let make: MakePlanMany = lookup(b"cufftXtMakePlanMany\0")?;
        let exec: XtExec = lookup(b"cufftXtExec\0")?;
        let mut handle: Handle = 0;
        let (ilen, olen) = key.io_len();
        let (itype, otype) = match key.kind {
            FftKind::R2C => (key.dtype.cuda_real(), key.dtype.cuda_complex()),
            FftKind::C2R => (key.dtype.cuda_complex(), key.dtype.cuda_real()),
            FftKind::C2C => (key.dtype.cuda_complex(), key.dtype.cuda_complex()),
        };
        let mut dims: Vec<c_longlong> = key.dims.iter().map(|&n| n as c_longlong).collect();
        // SAFETY: plain cuFFT API calls on a handle we own; pointers live for the call.
        unsafe {
            cufft(
                "cufftCreate",
                cudarc::cufft::sys::cufftCreate(&mut handle) as c_int,
            )?;
            let plan = XtPlan { handle, key, exec };
            cufft(
                "cufftSetStream",
                cudarc::cufft::sys::cufftSetStream(handle, stream.cu_stream() as _) as c_int,
            )?;
            let mut work = 0usize;
            cufft(
                "cufftXtMakePlanMany",
                make(
                    handle,
                    dims.len() as c_int,
                    dims.as_mut_ptr(),
                    std::ptr::null_mut(),
                    1,
                    ilen as c_longlong,
                    itype,
                    std::ptr::null_mut(),
                    1,
                    olen as c_longlong,
                    otype,
                    plan.key.batch as c_longlong,
                    &mut work,
                    key_exec_type(&plan.key),
                ),
            )?;
            Ok(plan)
        }
    }

    /// What this plan computes.
    pub fn key(&self) -> &PlanKey {
        &self.key
    }

    /// Run on device pointers `input` / `output` (may be equal for C2C; C2R overwrites its
    /// input). The caller guarantees the buffers hold `batch * io_len` elements.
    ///
    /// # Safety
    /// `input` and `output` must be live device allocations of the sizes above.
    pub unsafe fn exec(&self, input: u64, output: u64, forward: bool) -> Result<(), CudaError> {
        let dir = if forward { -1 } else { 1 };
        // SAFETY: per the caller's contract.
        let code = unsafe {
            (self.exec)(
                self.handle,
                input as *mut c_void,
                output as *mut c_void,
                dir,
            )
        };
        cufft("cufftXtExec", code)
    }
}

fn key_exec_type(key: &PlanKey) -> c_int {
    key.dtype.cuda_complex()
}

impl Drop for XtPlan {
    fn drop(&mut self) {
        // SAFETY: the handle was created by cufftCreate and is destroyed once.
        unsafe {
            cudarc::cufft::sys::cufftDestroy(self.handle);
        }
    }
}
