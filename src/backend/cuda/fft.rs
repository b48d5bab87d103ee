//! cuFFT in half precision. cudarc binds classic cuFFT (fp32/fp64) but not the `cufftXt*`
//! entry points that fp16 needs; they are looked up in the cuFFT library cudarc already loaded.
//! cuFFT half precision supports power-of-two sizes only, on compute capability >= 5.3.

use super::CudaError;
use super::device::{DeviceBuf, Gpu, drv};
use cudarc::driver::{CudaStream, DevicePtrMut};
use std::ffi::{c_int, c_longlong, c_void};
use std::sync::Arc;

/// cudaDataType CUDA_C_16F (complex half).
const CUDA_C_16F: c_int = 6;
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
/// arithmetic): `batch` transforms of length `n`, interleaved (re, im) halves.
pub struct HalfFft {
    handle: Handle,
    n: usize,
    batch: usize,
    stream: Arc<CudaStream>,
}

// SAFETY: the plan handle is used only through &self on the plan's stream.
unsafe impl Send for HalfFft {}
unsafe impl Sync for HalfFft {}

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
        if n < 2 || !n.is_power_of_two() {
            return Err(CudaError::Unsupported(format!(
                "cuFFT half precision needs a power-of-two length >= 2, got n = {n} \
                 (pad to {} or use fp32)",
                n.max(2).next_power_of_two()
            )));
        }
        if batch == 0 {
            return Err(CudaError::Unsupported("FFT batch must be >= 1".into()));
        }
        if cc < (5, 3) {
            return Err(CudaError::Unsupported(format!(
                "cuFFT half precision needs compute capability >= 5.3, device has {}.{}",
                cc.0, cc.1
            )));
        }
        Ok(())
    }

    pub(super) fn new(gpu: &Gpu, n: usize, batch: usize) -> Result<HalfFft, CudaError> {
        let make: MakePlanMany = lookup(b"cufftXtMakePlanMany\0")?;
        let mut handle: Handle = 0;
        let stream = gpu.stream().clone();
        // SAFETY: plain cuFFT API calls on a handle we own; pointers live for the call.
        unsafe {
            cufft(
                "cufftCreate",
                cudarc::cufft::sys::cufftCreate(&mut handle) as c_int,
            )?;
            let plan = HalfFft {
                handle,
                n,
                batch,
                stream: stream.clone(),
            };
            cufft(
                "cufftSetStream",
                cudarc::cufft::sys::cufftSetStream(handle, stream.cu_stream() as _) as c_int,
            )?;
            let mut len = n as c_longlong;
            let mut work = 0usize;
            cufft(
                "cufftXtMakePlanMany",
                make(
                    handle,
                    1,
                    &mut len,
                    std::ptr::null_mut(),
                    1,
                    n as c_longlong,
                    CUDA_C_16F,
                    std::ptr::null_mut(),
                    1,
                    n as c_longlong,
                    CUDA_C_16F,
                    batch as c_longlong,
                    &mut work,
                    CUDA_C_16F,
                ),
            )?;
            Ok(plan)
        }
    }

    /// Transform length.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether the length is zero (never: plans need n >= 2).
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Batch count.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// In-place forward (unnormalised, exp(-2 pi i jk/n)) or inverse transform of `data`:
    /// 2 n batch fp16 bit patterns, (re, im) interleaved.
    pub fn exec(&self, data: &mut DeviceBuf<u16>, forward: bool) -> Result<(), CudaError> {
        if data.len() != 2 * self.n * self.batch {
            return Err(CudaError::Unsupported(format!(
                "fp16 FFT plan of length {} x batch {} needs {} halves, given {}",
                self.n,
                self.batch,
                2 * self.n * self.batch,
                data.len()
            )));
        }
        let exec: XtExec = lookup(b"cufftXtExec\0")?;
        let (ptr, _sync) = data.slice.device_ptr_mut(&self.stream);
        let dir = if forward { -1 } else { 1 };
        // SAFETY: in-place transform on a buffer of the plan's size (checked above).
        let code = unsafe { exec(self.handle, ptr as *mut c_void, ptr as *mut c_void, dir) };
        cufft("cufftXtExec", code).map_err(|e| drv(e.to_string()))
    }
}

impl Drop for HalfFft {
    fn drop(&mut self) {
        // SAFETY: the handle was created by cufftCreate and is destroyed once.
        unsafe {
            cudarc::cufft::sys::cufftDestroy(self.handle);
        }
    }
}
