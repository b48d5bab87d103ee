//! The CUDA implementation of [`Backend`]: tensors live in device memory in their storage type
//! (fp32, fp16 or bf16), spectral transforms run on cuFFT (`cufftXt*`, one path for all three
//! types), the 1x1 convolutions and channel MLPs on cuBLAS (`GemmEx`, fp32 accumulation), and
//! everything else on the NVRTC kernels of `kernels/*.cu`, each of which names the CPU function
//! it mirrors.
//!
//! The [`Backend`] trait is infallible (the CPU cannot fail mid-op); a device failure (out of
//! memory, a driver error, a format the GPU does not compute in) unwinds with the [`CudaError`]
//! as the panic payload, and [`catch`] turns it back into an error at the command's top level.
//!
//! Transforms, with `bc` = batch x channels, `lead` = the leading grid axes, `nl` the last:
//! forward = R2C along the last axis, transpose the kept `ml` columns to the front
//! (`fwd_last`), C2C over the leading axes, gather the kept leading modes with scale and
//! Hermitian weights (`fwd_lead`); inverse = scatter (`inv_lead`), C2C inverse over the leading
//! axes, transpose back with the imaginary parts of the k = 0 and k = nl/2 columns zeroed
//! (`inv_last`), C2R along the last axis. Zeroing those imaginary parts makes C2R compute exactly
//! `sum_k c_k Re(Z_k e^{2 pi i jk/nl})`, the CPU reference's definition, whatever cuFFT does with
//! non-Hermitian input. Those transforms, the GEMM transform and the contraction's GEMMs are in
//! the child module `spectral` (backend/spectral.rs).

use super::device::{DeviceBuf, Gpu, drv, launch_cfg};
use super::fft::{Dtype, FftKind, PlanKey, XtPlan};
use super::{
    ContractGemms, CudaError, DftStep, GemmShape, PlanCache, check_steps, forward_steps,
    gauss_gemm, inverse_steps,
};
use crate::backend::{
    AdamScalars, Backend, ContractForm, CpDims, CpFactors, MemStats, Modes, Pointwise,
    SpectralForward, SpectralInverse, SpectralTransform, contract_dims,
};

use crate::fno::loss::LossKind;
use crate::precision::Format;
use cudarc::cublas::CudaBlas;
use cudarc::cublas::sys as blas;
use cudarc::driver::{DevicePtr, PushKernelArg};
use std::sync::{Arc, Once};

thread_local! {
    /// How many [`catch`] calls are running on this thread (they report the error themselves).
    static CATCHING: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Raise a device failure as an unwinding [`CudaError`] (see the module docs). Outside
/// [`catch`] (a test, a library caller) the panic payload prints only as `Box<dyn Any>`, so
/// the error and the call site are printed first.
#[track_caller]
fn fail(e: CudaError) -> ! {
    if CATCHING.with(|c| c.get()) == 0 {
        eprintln!(
            "CUDA backend error at {}: {e}",
            std::panic::Location::caller()
        );
    }
    std::panic::panic_any(e)
}

trait OrFail<T> {
    fn or_fail(self) -> T;
}

impl<T> OrFail<T> for Result<T, CudaError> {
    #[track_caller]
    fn or_fail(self) -> T {
        match self {
            Ok(v) => v,
            Err(e) => fail(e),
        }
    }
}

/// Run `f`, turning a [`CudaError`] raised by the CUDA backend into `Err` (other panics
/// propagate). The default panic message is suppressed for these errors, which the caller reports.
pub fn catch<R>(f: impl FnOnce() -> R) -> Result<R, CudaError> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<CudaError>().is_none() {
                prev(info)
            }
        }));
    });
    /// Counts one running `catch` while it lives (also when `f` unwinds).
    struct Catching;
    impl Drop for Catching {
        fn drop(&mut self) {
            CATCHING.with(|c| c.set(c.get() - 1));
        }
    }
    CATCHING.with(|c| c.set(c.get() + 1));
    let guard = Catching;
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    drop(guard);
    match caught {
        Ok(r) => Ok(r),
        Err(payload) => match payload.downcast::<CudaError>() {
            Ok(e) => Err(*e),
            Err(other) => std::panic::resume_unwind(other),
        },
    }
}

/// Finiteness checks on the GPU: one device counter of inf/NaN values per check, in chunks of
/// [`GpuChecks::CHUNK`], read back together.
pub struct GpuChecks {
    chunks: Vec<DeviceBuf<u32>>,
    n: usize,
}

impl GpuChecks {
    /// Counters per device allocation (a forward or backward pass of a 4-layer FNO makes about
    /// 20 checks).
    const CHUNK: usize = 64;
}

/// A real tensor on the GPU: `numel` elements of the storage type of `format`.
pub struct GpuTensor {
    shape: Vec<usize>,
    format: Format,
    dtype: Dtype,
    buf: DeviceBuf<u8>,
}

/// A complex tensor on the GPU: interleaved (re, im) pairs of the storage type.
pub struct GpuCTensor {
    shape: Vec<usize>,
    format: Format,
    dtype: Dtype,
    buf: DeviceBuf<u8>,
}

impl GpuTensor {
    fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

impl GpuCTensor {
    fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A tensor as it is, or a converted copy (device tensors are not `Clone`, so no `Cow`).
enum Ref<'a, T> {
    Borrowed(&'a T),
    Owned(T),
}

impl<T> std::ops::Deref for Ref<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        match self {
            Ref::Borrowed(t) => t,
            Ref::Owned(t) => t,
        }
    }
}

/// The storage format a tensor of `format` has on the GPU: the format itself (values are
/// representable), with fp64 meaning native fp32.
fn stored(format: Format) -> Format {
    if format == Format::Fp64 {
        Format::Fp32
    } else {
        format
    }
}

/// The wider of two formats (formats are ordered widest first).
fn wider(a: Format, b: Format) -> Format {
    a.min(b)
}

/// Launch `kernels/$file.cu`'s `$name` over `$total` threads with the given arguments (each a
/// reference to a value that outlives the launch).
macro_rules! launch {
    ($gpu:expr, $file:expr, $name:expr, $total:expr; $($arg:expr),* $(,)?) => {{
        let f = $gpu.function($file, &$name)?;
        let mut b = $gpu.stream().launch_builder(&f);
        $( b.arg($arg); )*
        // SAFETY: every kernel's argument list matches the contract in `kernels/*.cu` (names
        // and order are checked by tests/kernels_host.rs), and buffers have the sizes the
        // kernel reads and writes for these size arguments.
        unsafe { b.launch(launch_cfg($total)) }.map(|_| ()).map_err(drv)
    }};
}

mod spectral;
use spectral::{DftKey, DftPlan};

/// The GPU backend: one device, one stream, cuBLAS, cuFFT plans by shape.
pub struct Cuda {
    gpu: Gpu,
    /// Dropped by hand (see `Drop for Cuda`).
    blas: std::mem::ManuallyDrop<CudaBlas>,
    plans: PlanCache<PlanKey, XtPlan>,
    dft_plans: PlanCache<DftKey, DftPlan>,
    ones: std::sync::Mutex<std::collections::HashMap<usize, Arc<DeviceBuf<u8>>>>,
}

// SAFETY: all work goes to the one stream in call order; the cuBLAS handle is used from one
// thread at a time (the trainer is single-threaded on this backend).
unsafe impl Sync for Cuda {}
unsafe impl Send for Cuda {}

impl Drop for Cuda {
    /// cudarc's `CudaBlas` unwraps `cublasDestroy`'s status, which fails once the context has a
    /// sticky error (a kernel's illegal address): a panic there while a failed test unwinds
    /// aborts the whole test binary and loses every other test's verdict. With such an error
    /// the handle is leaked instead (the context is unusable until the process ends anyway).
    fn drop(&mut self) {
        // SAFETY: `blas` is taken once, here, and not used afterwards.
        let blas = unsafe { std::mem::ManuallyDrop::take(&mut self.blas) };
        if self.gpu.synchronize().is_ok() {
            drop(blas);
        } else {
            std::mem::forget(blas);
        }
    }
}

impl Cuda {
    /// Open GPU `ordinal` with cuBLAS (clear errors when there is no driver, device or library).
    pub fn new(ordinal: usize) -> Result<Cuda, CudaError> {
        let gpu = Gpu::new(ordinal)?;
        // Every library the backend loads, checked now: a missing one is a clear error at the
        // start, not a panic inside cudarc at the first kernel, GEMM or FFT.
        // SAFETY: each only tries to dlopen its library.
        let libs = unsafe {
            [
                (
                    "cuBLAS",
                    "libcublas",
                    cudarc::cublas::sys::is_culib_present(),
                ),
                ("NVRTC", "libnvrtc", cudarc::nvrtc::sys::is_culib_present()),
                ("cuFFT", "libcufft", cudarc::cufft::sys::is_culib_present()),
            ]
        };
        if let Some((name, so, _)) = libs.into_iter().find(|l| !l.2) {
            return Err(CudaError::NoLibrary(
                name,
                format!(
                    "{so}.so.* is not on the loader path (add the CUDA toolkit's lib64 or the \
                     pip nvidia/*/lib folder to LD_LIBRARY_PATH)"
                ),
            ));
        }
        let blas = CudaBlas::new(gpu.stream().clone()).map_err(drv)?;
        // Sums in fp32 even where a GEMM writes fp16/bf16: by default cuBLAS may do split-K
        // reductions in the output type, which the error models (fp32 sums, one rounding of
        // the result) do not allow.
        // SAFETY: a plain setter on the live handle.
        let status = unsafe {
            blas::cublasSetMathMode(
                *blas.handle(),
                blas::cublasMath_t::CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION,
            )
        };
        if status != blas::cublasStatus_t::CUBLAS_STATUS_SUCCESS {
            return Err(CudaError::Driver(format!("cublasSetMathMode: {status:?}")));
        }
        Ok(Cuda {
            gpu,
            blas: std::mem::ManuallyDrop::new(blas),
            plans: PlanCache::default(),
            dft_plans: PlanCache::default(),
            ones: Default::default(),
        })
    }

    /// The device layer (kernels, memory, stream).
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Number of cuFFT plans made so far.
    pub fn fft_plans(&self) -> usize {
        self.plans.len()
    }

    /// Whether every format of `policy`-like list is one the GPU computes in (fp32/fp16/bf16);
    /// the error names the first that is not.
    pub fn check_formats(formats: &[Format]) -> Result<(), CudaError> {
        formats.iter().try_for_each(|&f| Dtype::of(f).map(|_| ()))
    }

    fn dtype(format: Format) -> Dtype {
        Dtype::of(format).or_fail()
    }

    fn real(&self, shape: Vec<usize>, format: Format) -> Result<GpuTensor, CudaError> {
        let format = stored(format);
        let dtype = Dtype::of(format)?;
        let n: usize = shape.iter().product();
        Ok(GpuTensor {
            buf: self.gpu.alloc_bytes(n * dtype.bytes())?,
            shape,
            format,
            dtype,
        })
    }

    /// Host values rounded to `format`'s storage type on the device (the fallible body of
    /// [`Backend::upload`]).
    fn upload_real(
        &self,
        shape: &[usize],
        data: &[f32],
        format: Format,
    ) -> Result<GpuTensor, CudaError> {
        let format = stored(format);
        let dtype = Dtype::of(format)?;
        Ok(GpuTensor {
            buf: self.gpu.upload(&f32_to_storage(data, dtype))?,
            shape: shape.to_vec(),
            format,
            dtype,
        })
    }

    fn complex(&self, shape: Vec<usize>, format: Format) -> Result<GpuCTensor, CudaError> {
        let format = stored(format);
        let dtype = Dtype::of(format)?;
        let n: usize = shape.iter().product();
        Ok(GpuCTensor {
            buf: self.gpu.alloc_bytes(2 * n * dtype.bytes())?,
            shape,
            format,
            dtype,
        })
    }

    /// `n` elements of `from` converted to `to` (round to nearest even when narrowing).
    fn convert(
        &self,
        src: &DeviceBuf<u8>,
        n: usize,
        from: Dtype,
        to: Dtype,
    ) -> Result<DeviceBuf<u8>, CudaError> {
        if from == to {
            return self.gpu.copy_bytes(src);
        }
        let mut dst = self.gpu.alloc_bytes(n * to.bytes())?;
        let n64 = n as u64;
        let name = format!("convert_{}_{}", from.suffix(), to.suffix());
        launch!(self.gpu, "convert", name, n; &src.slice, &mut dst.slice, &n64)?;
        Ok(dst)
    }

    /// `t` in `format` (a new buffer; a copy when it already is).
    fn cast_real(&self, t: &GpuTensor, format: Format) -> Result<GpuTensor, CudaError> {
        let format = stored(format);
        let dtype = Dtype::of(format)?;
        Ok(GpuTensor {
            buf: self.convert(&t.buf, t.numel(), t.dtype, dtype)?,
            shape: t.shape.clone(),
            format,
            dtype,
        })
    }

    fn cast_complex(&self, t: &GpuCTensor, format: Format) -> Result<GpuCTensor, CudaError> {
        let format = stored(format);
        let dtype = Dtype::of(format)?;
        Ok(GpuCTensor {
            buf: self.convert(&t.buf, 2 * t.numel(), t.dtype, dtype)?,
            shape: t.shape.clone(),
            format,
            dtype,
        })
    }

    /// `t` itself when it is stored in `format`, else a converted copy (for operands that must
    /// share a kernel's storage type).
    fn as_format<'a>(
        &self,
        t: &'a GpuTensor,
        format: Format,
    ) -> Result<Ref<'a, GpuTensor>, CudaError> {
        if t.format == stored(format) {
            Ok(Ref::Borrowed(t))
        } else {
            Ok(Ref::Owned(self.cast_real(t, format)?))
        }
    }

    fn as_cformat<'a>(
        &self,
        t: &'a GpuCTensor,
        format: Format,
    ) -> Result<Ref<'a, GpuCTensor>, CudaError> {
        if t.format == stored(format) {
            Ok(Ref::Borrowed(t))
        } else {
            Ok(Ref::Owned(self.cast_complex(t, format)?))
        }
    }

    /// A per-channel vector (bias, gate) as fp32 device values.
    fn channel_vector(&self, t: &GpuTensor) -> Result<GpuTensor, CudaError> {
        self.cast_real(t, Format::Fp32)
    }

    /// `n` fp32 ones (uploaded once per length and kept: the trainer asks for the same batch
    /// size every step).
    fn ones(&self, n: usize) -> Result<Arc<DeviceBuf<u8>>, CudaError> {
        let mut cache = self.ones.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(buf) = cache.get(&n) {
            return Ok(buf.clone());
        }
        let bytes: Vec<u8> = std::iter::repeat_n(1.0f32.to_le_bytes(), n)
            .flatten()
            .collect();
        let buf = Arc::new(self.gpu.upload(&bytes)?);
        cache.insert(n, buf.clone());
        Ok(buf)
    }

    /// The device address of a buffer (valid while the buffer lives; all work is on one stream).
    fn addr(&self, b: &DeviceBuf<u8>) -> u64 {
        let (p, _sync) = b.slice.device_ptr(self.gpu.stream());
        p
    }

    /// The number of inf/NaN values in the buffers, each (buffer, values, type): one counter
    /// for all and one download, so checking many tensors costs one synchronisation.
    fn count_nonfinite(&self, bufs: &[(&DeviceBuf<u8>, usize, Dtype)]) -> Result<u32, CudaError> {
        let mut count = self.gpu.zeros::<u32>(1)?;
        self.queue_nonfinite(bufs, &mut count.slice.slice_mut(0..1))?;
        Ok(self.gpu.download(&count)?[0])
    }

    /// The (buffer, values, type) of real and complex tensors, as the inf/NaN counters take
    /// them (a complex tensor has two values per element).
    fn value_bufs<'a>(
        real: &[&'a GpuTensor],
        complex: &[&'a GpuCTensor],
    ) -> Vec<(&'a DeviceBuf<u8>, usize, Dtype)> {
        real.iter()
            .map(|x| (&x.buf, x.numel(), x.dtype))
            .chain(complex.iter().map(|x| (&x.buf, 2 * x.numel(), x.dtype)))
            .collect()
    }

    /// Queue kernels adding the number of inf/NaN values of the buffers to `counter` (nothing
    /// waits).
    fn queue_nonfinite(
        &self,
        bufs: &[(&DeviceBuf<u8>, usize, Dtype)],
        counter: &mut cudarc::driver::CudaViewMut<'_, u32>,
    ) -> Result<(), CudaError> {
        for &(buf, n, dt) in bufs {
            let n64 = n as u64;
            let threads = super::kernels::reduce_threads(n);
            launch!(self.gpu, "pointwise", format!("count_nonfinite_{}", dt.suffix()), threads;
                &buf.slice, &n64, &mut *counter)?;
        }
        Ok(())
    }

    /// Per-channel fp32 sums over (batch, points) of `a` (`channel_sum`) or of `a * b`
    /// (`channel_dot`), shape (c), rounded to `format`.
    fn channel_reduce(
        &self,
        name: &str,
        a: &GpuTensor,
        b: Option<&GpuTensor>,
        format: Format,
    ) -> Result<GpuTensor, CudaError> {
        let (batch, c) = (a.shape[0], a.shape[1]);
        let p: usize = a.shape[2..].iter().product();
        let mut out = self.channel_accumulator(c)?;
        let (b64, c64, p64) = (batch as u64, c as u64, p as u64);
        let threads = batch * c * super::kernels::reduce_threads(p);
        let kname = format!("{name}_{}", a.dtype.suffix());
        match b {
            Some(b) => launch!(self.gpu, "channels", kname, threads;
                &a.buf.slice, &b.buf.slice, &mut out.buf.slice, &b64, &c64, &p64)?,
            None => launch!(self.gpu, "channels", kname, threads;
                &a.buf.slice, &mut out.buf.slice, &b64, &c64, &p64)?,
        }
        self.sums_in(out, format)
    }

    /// Zeroed f32 per-channel sums (`c` values) for the reduction kernels' atomicAdds.
    fn channel_accumulator(&self, c: usize) -> Result<GpuTensor, CudaError> {
        Ok(GpuTensor {
            buf: self.gpu.zeros::<u8>(4 * c)?,
            shape: vec![c],
            format: Format::Fp32,
            dtype: Dtype::F32,
        })
    }

    /// The f32 sums of [`Cuda::channel_accumulator`] stored in `format`.
    fn sums_in(&self, out: GpuTensor, format: Format) -> Result<GpuTensor, CudaError> {
        if stored(format) == Format::Fp32 {
            Ok(out)
        } else {
            self.cast_real(&out, format)
        }
    }

    /// `kernel` (`add_bias` or `scale_channels` of `kernels/channels.cu`) of `x` (batch, c, p...)
    /// with the per-channel vector `v` (c): the result is in the wider of the two formats.
    fn per_channel(
        &self,
        kernel: &str,
        x: &GpuTensor,
        v: &GpuTensor,
    ) -> Result<GpuTensor, CudaError> {
        let c = x.shape[1];
        assert_eq!(
            v.numel(),
            c,
            "{kernel}: {c} channels, the vector has {}",
            v.numel()
        );
        let fmt = wider(x.format, v.format);
        let xs = self.as_format(x, fmt)?;
        let vv = self.channel_vector(v)?;
        let mut y = self.real(x.shape.clone(), fmt)?;
        let n = y.numel();
        let p = n / x.shape[0].max(1) / c.max(1);
        let (n64, c64, p64) = (n as u64, c as u64, p as u64);
        launch!(self.gpu, "channels", format!("{kernel}_{}", y.dtype.suffix()), n;
            &xs.buf.slice, &vv.buf.slice, &mut y.buf.slice, &n64, &c64, &p64)?;
        Ok(y)
    }

    fn copy_channels(
        &self,
        src: &GpuTensor,
        dst: &mut GpuTensor,
        (lo_src, lo_dst, count): (usize, usize, usize),
    ) -> Result<(), CudaError> {
        let batch = src.shape[0];
        let p: usize = src.shape[2..].iter().product();
        let args = [
            batch as u64,
            src.shape[1] as u64,
            lo_src as u64,
            dst.shape[1] as u64,
            lo_dst as u64,
            count as u64,
            p as u64,
        ];
        launch!(self.gpu, "channels", format!("copy_channels_{}", src.dtype.suffix()), batch * count * p;
            &src.buf.slice, &mut dst.buf.slice, &args[0], &args[1], &args[2], &args[3], &args[4],
            &args[5], &args[6])
    }
}

/// Pointwise op code and constants of `kernels/pointwise.cu`.
fn op_code(op: Pointwise) -> (i32, f32, f32) {
    match op {
        Pointwise::Gelu => (0, 0.0, 0.0),
        Pointwise::Tanh => (1, 0.0, 0.0),
        Pointwise::Clip { lo, hi } => (2, lo as f32, hi as f32),
        Pointwise::Scale(s) => (3, s as f32, 0.0),
    }
}

fn f32_to_storage(data: &[f32], dtype: Dtype) -> Vec<u8> {
    match dtype {
        Dtype::F32 => data.iter().flat_map(|v| v.to_ne_bytes()).collect(),
        Dtype::F16 => data
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_bits().to_ne_bytes())
            .collect(),
        Dtype::Bf16 => data
            .iter()
            .flat_map(|v| half::bf16::from_f32(*v).to_bits().to_ne_bytes())
            .collect(),
    }
}

fn storage_to_f32(bytes: &[u8], dtype: Dtype) -> Vec<f32> {
    match dtype {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_bits(u16::from_ne_bytes([c[0], c[1]])).to_f32())
            .collect(),
        Dtype::Bf16 => bytes
            .chunks_exact(2)
            .map(|c| half::bf16::from_bits(u16::from_ne_bytes([c[0], c[1]])).to_f32())
            .collect(),
    }
}

impl Backend for Cuda {
    type T = f32;
    type Tensor = GpuTensor;
    type CTensor = GpuCTensor;
    type Checks = GpuChecks;

    fn name(&self) -> &'static str {
        "cuda"
    }

    fn upload(&self, shape: &[usize], data: &[f32], format: Format) -> GpuTensor {
        assert_eq!(
            shape.iter().product::<usize>(),
            data.len(),
            "upload: shape {shape:?} does not match {} values",
            data.len()
        );
        self.upload_real(shape, data, format).or_fail()
    }

    fn upload_complex(&self, shape: &[usize], data: &[f32], format: Format) -> GpuCTensor {
        assert_eq!(
            2 * shape.iter().product::<usize>(),
            data.len(),
            "upload_complex: shape {shape:?} does not match {} interleaved values",
            data.len()
        );
        let format = stored(format);
        let dtype = Self::dtype(format);
        let buf = self.gpu.upload(&f32_to_storage(data, dtype)).or_fail();
        GpuCTensor {
            shape: shape.to_vec(),
            format,
            dtype,
            buf,
        }
    }

    fn download(&self, t: &GpuTensor) -> Vec<f32> {
        storage_to_f32(&self.gpu.download(&t.buf).or_fail(), t.dtype)
    }

    fn download_complex(&self, t: &GpuCTensor) -> Vec<f32> {
        storage_to_f32(&self.gpu.download(&t.buf).or_fail(), t.dtype)
    }

    fn shape<'a>(&self, t: &'a GpuTensor) -> &'a [usize] {
        &t.shape
    }

    fn cshape<'a>(&self, t: &'a GpuCTensor) -> &'a [usize] {
        &t.shape
    }

    fn format(&self, t: &GpuTensor) -> Format {
        t.format
    }

    fn cformat(&self, t: &GpuCTensor) -> Format {
        t.format
    }

    fn cast(&self, t: &GpuTensor, format: Format) -> GpuTensor {
        self.cast_real(t, format).or_fail()
    }

    fn mem(&self) -> MemStats {
        MemStats {
            live_bytes: self.gpu.live_bytes(),
            peak_bytes: self.gpu.peak_bytes(),
            allocated_bytes: self.gpu.allocated_bytes(),
        }
    }

    fn reset_peak(&self) {
        self.gpu.reset_peak()
    }

    fn synchronize(&self) {
        self.gpu.synchronize().or_fail()
    }

    fn rfft_modes(&self, x: &GpuTensor, modes: &Modes, opt: SpectralForward) -> GpuCTensor {
        self.rfft(x, modes, opt).or_fail()
    }

    fn irfft_modes(&self, x: &GpuCTensor, grid: &[usize], opt: SpectralInverse) -> GpuTensor {
        self.irfft(x, grid, opt).or_fail()
    }

    fn contract(
        &self,
        x: &GpuCTensor,
        w: &GpuCTensor,
        format: Format,
        form: ContractForm,
    ) -> GpuCTensor {
        if form == ContractForm::Gauss {
            return self.contract_gauss(x, w, format).or_fail();
        }
        (|| {
            let (b, ci, co, k) = contract_dims(&x.shape, &w.shape, None);
            let plan = self.contract_gemms(b, ci, co, k)?;
            let xs = self.as_cformat(x, format)?;
            let ws = self.as_cformat(w, format)?;
            let dt = xs.dtype;
            let xt = self.ctranspose(&xs.buf, b * ci, k, dt)?;
            drop(xs);
            let wb = self.block_weight(&ws.buf, ci, co, k, dt)?;
            let yt = self.gpu.alloc_bytes(2 * b * co * k * dt.bytes())?;
            self.run_gemm(&plan.forward, (&wb, dt), (&xt, dt), (&yt, dt))?;
            drop((xt, wb));
            let mut shape = vec![b, co];
            shape.extend_from_slice(&x.shape[2..]);
            Ok(GpuCTensor {
                buf: self.ctranspose(&yt, k, b * co, dt)?,
                shape,
                format: stored(format),
                dtype: dt,
            })
        })()
        .or_fail()
    }

    fn contract_backward(
        &self,
        x: &GpuCTensor,
        w: &GpuCTensor,
        g: &GpuCTensor,
        format: Format,
        form: ContractForm,
    ) -> (GpuCTensor, GpuCTensor) {
        if form == ContractForm::Gauss {
            return self.contract_backward_gauss(x, w, g, format).or_fail();
        }
        (|| {
            let (b, ci, co, k) = contract_dims(&x.shape, &w.shape, Some(&g.shape));
            let plan = self.contract_gemms(b, ci, co, k)?;
            let dt = Self::dtype(format);
            let gt = self.ctranspose(&self.as_cformat(g, format)?.buf, b * co, k, dt)?;
            let wb = self.block_weight(&self.as_cformat(w, format)?.buf, ci, co, k, dt)?;
            let gxt = self.gpu.alloc_bytes(2 * b * ci * k * dt.bytes())?;
            self.run_gemm(&plan.grad_x, (&wb, dt), (&gt, dt), (&gxt, dt))?;
            drop(wb);
            let gx = GpuCTensor {
                buf: self.ctranspose(&gxt, k, b * ci, dt)?,
                shape: x.shape.clone(),
                format: stored(format),
                dtype: dt,
            };
            drop(gxt);
            let xt = self.ctranspose(&self.as_cformat(x, format)?.buf, b * ci, k, dt)?;
            let p = self.gpu.alloc_bytes(4 * ci * co * k * 4)?;
            self.run_gemm(&plan.grad_w, (&gt, dt), (&xt, dt), (&p, Dtype::F32))?;
            drop((gt, xt));
            let mut gw = self.complex(w.shape.clone(), format)?;
            let dims = [ci as u64, co as u64, k as u64];
            launch!(self.gpu, "contract", format!("combine_gw_{}", dt.suffix()), ci * co * k;
                &p.slice, &mut gw.buf.slice, &dims[0], &dims[1], &dims[2])?;
            Ok((gx, gw))
        })()
        .or_fail()
    }

    fn add_bias(&self, x: &GpuTensor, bias: &GpuTensor) -> GpuTensor {
        self.per_channel("add_bias", x, bias).or_fail()
    }

    fn linear(
        &self,
        x: &GpuTensor,
        w: &GpuTensor,
        bias: Option<&GpuTensor>,
        format: Format,
    ) -> GpuTensor {
        (|| {
            let (b, ci) = (x.shape[0], x.shape[1]);
            let (co, wi) = (w.shape[0], w.shape[1]);
            assert_eq!(ci, wi, "linear: {ci} input channels, weight has {wi}");
            let p: usize = x.shape[2..].iter().product();
            let xs = self.as_format(x, format)?;
            let ws = self.as_format(w, format)?;
            let mut shape = x.shape.clone();
            shape[1] = co;
            let y = self.real(shape, format)?;
            let dt = y.dtype;
            // Row-major Y_b (co x p) = W (co x ci) X_b (ci x p) is, column-major,
            // Y_b^T (p x co) = X_b^T (p x ci) W^T (ci x co).
            self.gemm(
                (false, false),
                (p, co, ci),
                (self.addr(&xs.buf), p, ci * p, dt),
                (self.addr(&ws.buf), ci, 0, dt),
                (1.0, 0.0),
                (self.addr(&y.buf), p, co * p, dt),
                b,
            )?;
            if let Some(bias) = bias {
                // The bias is added after the product's rounding (the CPU adds it inside the
                // fp32 sum): one extra rounding in low formats, none in fp32.
                let bv = self.channel_vector(&*self.as_format(bias, format)?)?;
                let n = y.numel();
                let (n64, c64, p64) = (n as u64, co as u64, p as u64);
                // In place: each thread reads and writes only its own element.
                let yp = self.addr(&y.buf);
                launch!(self.gpu, "channels", format!("add_bias_{}", dt.suffix()), n;
                    &yp, &bv.buf.slice, &yp, &n64, &c64, &p64)?;
            }
            Ok(y)
        })()
        .or_fail()
    }

    fn linear_backward(
        &self,
        x: &GpuTensor,
        w: &GpuTensor,
        g: &GpuTensor,
        with_bias: bool,
        format: Format,
    ) -> (GpuTensor, GpuTensor, Option<GpuTensor>) {
        (|| {
            let (b, ci) = (x.shape[0], x.shape[1]);
            let co = w.shape[0];
            let p: usize = x.shape[2..].iter().product();
            let xs = self.as_format(x, format)?;
            let ws = self.as_format(w, format)?;
            let gs = self.as_format(g, format)?;
            let dt = xs.dtype;
            // dX_b^T (p x ci) = G_b^T (p x co) (W^T)^T, W^T being W's column-major view.
            let gx = self.real(x.shape.clone(), format)?;
            self.gemm(
                (false, true),
                (p, ci, co),
                (self.addr(&gs.buf), p, co * p, dt),
                (self.addr(&ws.buf), ci, 0, dt),
                (1.0, 0.0),
                (self.addr(&gx.buf), p, ci * p, dt),
                b,
            )?;
            // dW^T (ci x co) = sum_b X_b (ci x p) G_b^T (p x co): one batched GEMM writes the b
            // fp32 partial products, a second sums them (a GEMV with a ones vector, so the sum
            // is deterministic, unlike atomics). One launch each instead of b.
            let part = self.real(vec![b, ci * co], Format::Fp32)?;
            self.gemm(
                (true, false),
                (ci, co, p),
                (self.addr(&xs.buf), p, ci * p, dt),
                (self.addr(&gs.buf), p, co * p, dt),
                (1.0, 0.0),
                (self.addr(&part.buf), ci, ci * co, Dtype::F32),
                b,
            )?;
            let ones = self.ones(b)?;
            let gw32 = self.real(w.shape.clone(), Format::Fp32)?;
            self.gemm(
                (false, false),
                (ci * co, 1, b),
                (self.addr(&part.buf), ci * co, 0, Dtype::F32),
                (self.addr(&ones), b, 0, Dtype::F32),
                (1.0, 0.0),
                (self.addr(&gw32.buf), ci * co, 0, Dtype::F32),
                1,
            )?;
            drop(part);
            let gw = if stored(format) == Format::Fp32 {
                gw32
            } else {
                self.cast_real(&gw32, format)?
            };
            let gb = if with_bias {
                Some(self.channel_reduce("channel_sum", &gs, None, format)?)
            } else {
                None
            };
            Ok((gx, gw, gb))
        })()
        .or_fail()
    }

    fn pointwise(&self, op: Pointwise, x: &GpuTensor) -> GpuTensor {
        (|| {
            let mut y = self.real(x.shape.clone(), x.format)?;
            let n = y.numel();
            let (code, a, b) = op_code(op);
            let n64 = n as u64;
            launch!(self.gpu, "pointwise", format!("pointwise_{}", x.dtype.suffix()), n;
                &x.buf.slice, &mut y.buf.slice, &n64, &code, &a, &b)?;
            Ok(y)
        })()
        .or_fail()
    }

    fn pointwise_backward(&self, op: Pointwise, x: &GpuTensor, g: &GpuTensor) -> GpuTensor {
        (|| {
            // Computed in the wider of the two storage types, returned in g's format.
            let fmt = wider(x.format, g.format);
            let xs = self.as_format(x, fmt)?;
            let gs = self.as_format(g, fmt)?;
            let mut y = self.real(g.shape.clone(), fmt)?;
            let n = y.numel();
            let (code, a, b) = op_code(op);
            let n64 = n as u64;
            launch!(self.gpu, "pointwise", format!("pointwise_backward_{}", y.dtype.suffix()), n;
                &xs.buf.slice, &gs.buf.slice, &mut y.buf.slice, &n64, &code, &a, &b)?;
            if y.format == g.format {
                Ok(y)
            } else {
                self.cast_real(&y, g.format)
            }
        })()
        .or_fail()
    }

    fn add(&self, a: &GpuTensor, b: &GpuTensor) -> GpuTensor {
        assert_eq!(
            a.shape, b.shape,
            "add: shapes {:?} and {:?}",
            a.shape, b.shape
        );
        (|| {
            let fmt = wider(a.format, b.format);
            let (xa, xb) = (self.as_format(a, fmt)?, self.as_format(b, fmt)?);
            let mut y = self.real(a.shape.clone(), fmt)?;
            let n = y.numel();
            let n64 = n as u64;
            launch!(self.gpu, "pointwise", format!("add_{}", y.dtype.suffix()), n;
                &xa.buf.slice, &xb.buf.slice, &mut y.buf.slice, &n64)?;
            Ok(y)
        })()
        .or_fail()
    }

    fn scale_channels(&self, x: &GpuTensor, w: &GpuTensor) -> GpuTensor {
        self.per_channel("scale_channels", x, w).or_fail()
    }

    fn scale_channels_backward(
        &self,
        x: &GpuTensor,
        w: &GpuTensor,
        g: &GpuTensor,
    ) -> (GpuTensor, GpuTensor) {
        let gx = self.scale_channels(g, w);
        (|| {
            let fmt = wider(x.format, g.format);
            let (xs, gs) = (self.as_format(x, fmt)?, self.as_format(g, fmt)?);
            let mut gw = self.channel_reduce("channel_dot", &gs, Some(&xs), w.format)?;
            gw.shape = w.shape.clone();
            Ok((gx, gw))
        })()
        .or_fail()
    }

    fn channel_sum(&self, g: &GpuTensor) -> GpuTensor {
        self.channel_reduce("channel_sum", g, None, g.format)
            .or_fail()
    }

    // The fused passes (kernels/pointwise.cu): one kernel where every operand has one storage
    // type (the kernels store and load again where the ops they replace store, so the same
    // bits); otherwise the ops.
    fn add_act(
        &self,
        x: &GpuTensor,
        bias: Option<&GpuTensor>,
        s: Option<&GpuTensor>,
        act: Option<Pointwise>,
    ) -> (GpuTensor, Option<GpuTensor>) {
        let one_type =
            bias.is_none_or(|b| b.format == x.format) && s.is_none_or(|s| s.format == x.format);
        let Some(op) = act.filter(|_| one_type) else {
            return crate::backend::add_act_unfused(self, x, bias, s, act);
        };
        let c = x.shape[1];
        if let Some(s) = s {
            assert_eq!(
                x.shape, s.shape,
                "add_act: shapes {:?} and {:?}",
                x.shape, s.shape
            );
        }
        (|| {
            let bias = match bias {
                Some(b) => {
                    assert_eq!(
                        b.numel(),
                        c,
                        "add_act: {c} channels, bias has {}",
                        b.numel()
                    );
                    Some(self.channel_vector(b)?)
                }
                None => None,
            };
            let mut u = self.real(x.shape.clone(), x.format)?;
            let mut v = self.real(x.shape.clone(), x.format)?;
            let n = u.numel();
            let p = n / x.shape[0].max(1) / c.max(1);
            let (n64, c64, p64) = (n as u64, c as u64, p as u64);
            let flags = i32::from(bias.is_some()) | (i32::from(s.is_some()) << 1);
            let (code, a, b) = op_code(op);
            // Absent terms are not read: any buffer stands in.
            let bias_buf = bias.as_ref().map_or(&x.buf.slice, |t| &t.buf.slice);
            let s_buf = s.map_or(&x.buf.slice, |t| &t.buf.slice);
            launch!(self.gpu, "pointwise", format!("add_act_{}", x.dtype.suffix()), n;
                &x.buf.slice, bias_buf, s_buf, &mut u.buf.slice, &mut v.buf.slice, &n64, &c64,
                &p64, &flags, &code, &a, &b)?;
            Ok((u, Some(v)))
        })()
        .or_fail()
    }

    fn pointwise_backward_add(
        &self,
        op: Pointwise,
        x: &GpuTensor,
        g: &GpuTensor,
        adds: &[&GpuTensor],
    ) -> GpuTensor {
        let one_type = x.format == g.format && adds.iter().all(|a| a.format == g.format);
        if !one_type || adds.len() > 2 {
            return crate::backend::pointwise_backward_add_unfused(self, op, x, g, adds);
        }
        for a in adds {
            assert_eq!(g.shape, a.shape, "pointwise_backward_add: shapes differ");
        }
        (|| {
            let mut y = self.real(g.shape.clone(), g.format)?;
            let n = y.numel();
            let n64 = n as u64;
            let nadds = adds.len() as i32;
            let (code, a, b) = op_code(op);
            // Absent addends are not read: any buffer stands in.
            let a0 = adds.first().map_or(&g.buf.slice, |t| &t.buf.slice);
            let a1 = adds.get(1).map_or(&g.buf.slice, |t| &t.buf.slice);
            launch!(self.gpu, "pointwise", format!("pointwise_backward_add_{}", g.dtype.suffix()), n;
                &x.buf.slice, &g.buf.slice, a0, a1, &mut y.buf.slice, &n64, &nadds, &code, &a,
                &b)?;
            Ok(y)
        })()
        .or_fail()
    }

    fn pointwise_backward_channel_sum(
        &self,
        op: Pointwise,
        x: &GpuTensor,
        g: &GpuTensor,
    ) -> (GpuTensor, GpuTensor) {
        if x.format != g.format {
            return crate::backend::pointwise_backward_channel_sum_unfused(self, op, x, g);
        }
        (|| {
            let (batch, c) = (g.shape[0], g.shape[1]);
            let p: usize = g.shape[2..].iter().product();
            let mut y = self.real(g.shape.clone(), g.format)?;
            // Per-channel sums in f32, as channel_reduce keeps them.
            let mut out = self.channel_accumulator(c)?;
            let (b64, c64, p64) = (batch as u64, c as u64, p as u64);
            let threads = batch * c * super::kernels::reduce_threads(p);
            let (code, a, b) = op_code(op);
            let kname = format!("pointwise_backward_channel_sum_{}", g.dtype.suffix());
            launch!(self.gpu, "pointwise", kname, threads;
                &x.buf.slice, &g.buf.slice, &mut y.buf.slice, &mut out.buf.slice, &b64, &c64,
                &p64, &code, &a, &b)?;
            Ok((y, self.sums_in(out, g.format)?))
        })()
        .or_fail()
    }

    fn concat_channels(&self, a: &GpuTensor, b: &GpuTensor) -> GpuTensor {
        assert_eq!(
            a.shape[0], b.shape[0],
            "concat_channels: batch sizes differ"
        );
        assert_eq!(a.shape[2..], b.shape[2..], "concat_channels: grids differ");
        (|| {
            let fmt = wider(a.format, b.format);
            let (xa, xb) = (self.as_format(a, fmt)?, self.as_format(b, fmt)?);
            let (ca, cb) = (a.shape[1], b.shape[1]);
            let mut shape = a.shape.clone();
            shape[1] = ca + cb;
            let mut y = self.real(shape, fmt)?;
            self.copy_channels(&xa, &mut y, (0, 0, ca))?;
            self.copy_channels(&xb, &mut y, (0, ca, cb))?;
            Ok(y)
        })()
        .or_fail()
    }

    fn slice_channels(&self, x: &GpuTensor, lo: usize, hi: usize) -> GpuTensor {
        let c = x.shape[1];
        assert!(lo <= hi && hi <= c, "slice_channels {lo}..{hi} of {c}");
        (|| {
            let mut shape = x.shape.clone();
            shape[1] = hi - lo;
            let mut y = self.real(shape, x.format)?;
            self.copy_channels(x, &mut y, (lo, 0, hi - lo))?;
            Ok(y)
        })()
        .or_fail()
    }

    fn zeros(&self, shape: &[usize], format: Format) -> GpuTensor {
        (|| {
            let format = stored(format);
            let dtype = Dtype::of(format)?;
            let n: usize = shape.iter().product();
            Ok(GpuTensor {
                buf: self.gpu.zeros::<u8>(n * dtype.bytes())?,
                shape: shape.to_vec(),
                format,
                dtype,
            })
        })()
        .or_fail()
    }

    fn to_complex(&self, t: &GpuTensor, format: Format) -> GpuCTensor {
        let (last, lead) = t.shape.split_last().expect("to_complex: scalar tensor");
        assert_eq!(
            *last, 2,
            "to_complex: last axis of {:?} must hold (re, im)",
            t.shape
        );
        // Same memory layout: (re, im) pairs are interleaved complex values.
        let r = self.cast(t, format);
        GpuCTensor {
            shape: lead.to_vec(),
            format: r.format,
            dtype: r.dtype,
            buf: r.buf,
        }
    }

    fn to_real(&self, t: &GpuCTensor, format: Format) -> GpuTensor {
        let c = self.cast_complex(t, format).or_fail();
        let mut shape = c.shape.clone();
        shape.push(2);
        GpuTensor {
            shape,
            format: c.format,
            dtype: c.dtype,
            buf: c.buf,
        }
    }

    fn cp_weight(&self, f: &CpFactors<'_, GpuTensor>, format: Format) -> GpuCTensor {
        (|| {
            let d = CpDims::of(f, |t: &GpuTensor| &t.shape[..]);
            let ff = self.cp_f32(f)?;
            let pm = self.cp_products(&ff, &d)?;
            let mut w = self.complex(d.weight_shape(), Format::Fp32)?;
            let dims = [d.ci as u64, d.co as u64, d.nk as u64, d.r as u64];
            launch!(self.gpu, "contract", "cp_expand", d.ci * d.co * d.nk;
                &ff[0].buf.slice, &ff[1].buf.slice, &ff[2].buf.slice, &pm.slice, &mut w.buf.slice,
                &dims[0], &dims[1], &dims[2], &dims[3])?;
            if stored(format) == Format::Fp32 {
                Ok(w)
            } else {
                self.cast_complex(&w, format)
            }
        })()
        .or_fail()
    }

    fn cp_weight_backward(&self, f: &CpFactors<'_, GpuTensor>, gw: &GpuCTensor) -> Vec<GpuTensor> {
        (|| {
            let d = CpDims::of(f, |t: &GpuTensor| &t.shape[..]);
            let ff = self.cp_f32(f)?;
            let g = self.as_cformat(gw, Format::Fp32)?;
            assert_eq!(g.numel(), d.ci * d.co * d.nk, "cp_weight_backward: gradient shape");
            let pm = self.cp_products(&ff, &d)?;
            let (ci, co, nk, r) = (d.ci as u64, d.co as u64, d.nk as u64, d.r as u64);
            let mut s = self.gpu.alloc_bytes(16 * d.ci * d.co * d.r)?;
            launch!(self.gpu, "contract", "cp_grad_s", d.ci * d.co * d.r;
                &g.buf.slice, &pm.slice, &mut s.slice, &ci, &co, &nk, &r)?;
            let mut gl = self.real(f.lambda.shape.clone(), Format::Fp32)?;
            let mut ga = self.real(f.a.shape.clone(), Format::Fp32)?;
            let mut gb = self.real(f.b.shape.clone(), Format::Fp32)?;
            launch!(self.gpu, "contract", "cp_grad_factors", d.r + d.ci * d.r + d.co * d.r;
                &s.slice, &ff[0].buf.slice, &ff[1].buf.slice, &ff[2].buf.slice,
                &mut gl.buf.slice, &mut ga.buf.slice, &mut gb.buf.slice, &ci, &co, &r)?;
            let mut t = self.gpu.alloc_bytes(16 * d.nk * d.r)?;
            launch!(self.gpu, "contract", "cp_grad_t", d.nk * d.r;
                &g.buf.slice, &ff[0].buf.slice, &ff[1].buf.slice, &ff[2].buf.slice, &mut t.slice,
                &ci, &co, &nk, &r)?;
            let mut gm: Vec<GpuTensor> = f
                .modes
                .iter()
                .map(|m| self.real(m.shape.clone(), Format::Fp32))
                .collect::<Result<_, _>>()?;
            // Absent axes get a 1-element dummy (the kernel does not touch them).
            while gm.len() < 3 {
                gm.push(self.real(vec![1, 1, 2], Format::Fp32)?);
            }
            let k = d.kept3();
            let (k0, k1, k2) = (k[0] as u64, k[1] as u64, k[2] as u64);
            let nd = d.kept.len() as i32;
            let total = d.kept.iter().map(|&kk| kk * d.r).sum::<usize>();
            {
                let [g0, g1, g2] = &mut gm[..3] else {
                    unreachable!()
                };
                launch!(self.gpu, "contract", "cp_grad_modes", total;
                    &t.slice, &ff[3].buf.slice, &ff[4].buf.slice, &ff[5].buf.slice,
                    &mut g0.buf.slice, &mut g1.buf.slice, &mut g2.buf.slice, &r, &nd, &k0, &k1, &k2)?;
            }
            gm.truncate(d.kept.len());
            let mut out = vec![gl, ga, gb];
            out.extend(gm);
            Ok(out)
        })()
        .or_fail()
    }

    fn adam_update(
        &self,
        p: &mut GpuTensor,
        g: &GpuTensor,
        m: &mut GpuTensor,
        v: &mut GpuTensor,
        s: &AdamScalars,
    ) {
        (|| {
            for (t, what) in [(&*p, "parameter"), (g, "gradient"), (&*m, "m"), (&*v, "v")] {
                if t.dtype != Dtype::F32 {
                    return Err(CudaError::Unsupported(format!(
                        "adam_update: the {what} must be stored in fp32, not {}",
                        t.format.name()
                    )));
                }
            }
            let n = p.numel();
            assert!(
                g.numel() == n && m.numel() == n && v.numel() == n,
                "adam_update: shapes"
            );
            let n64 = n as u64;
            let f = |x: f64| x as f32;
            let (ss, bc2, eps, omb1, b2, omb2, wd, decay) = (
                f(s.step_size),
                f(s.bc2_sqrt),
                f(s.eps),
                f(s.one_minus_b1),
                f(s.b2),
                f(s.one_minus_b2),
                f(s.wd),
                f(s.decay),
            );
            let (dec, cou) = (s.decoupled as i32, s.coupled as i32);
            launch!(self.gpu, "adam", "adam_f32", n;
                &mut p.buf.slice, &g.buf.slice, &mut m.buf.slice, &mut v.buf.slice, &n64,
                &ss, &bc2, &eps, &omb1, &b2, &omb2, &wd, &decay, &dec, &cou)
        })()
        .or_fail()
    }

    fn all_finite(&self, x: &GpuTensor) -> bool {
        self.all_finite_each(&[x])
    }

    fn all_finite_each(&self, xs: &[&GpuTensor]) -> bool {
        self.count_nonfinite(&Self::value_bufs(xs, &[])).or_fail() == 0
    }

    fn all_finite_complex(&self, x: &GpuCTensor) -> bool {
        self.count_nonfinite(&Self::value_bufs(&[], &[x])).or_fail() == 0
    }

    fn checks(&self) -> GpuChecks {
        GpuChecks {
            chunks: Vec::new(),
            n: 0,
        }
    }

    fn check_finite(
        &self,
        checks: &mut GpuChecks,
        real: &[&GpuTensor],
        complex: &[&GpuCTensor],
    ) -> Option<bool> {
        (|| {
            let (chunk, slot) = (checks.n / GpuChecks::CHUNK, checks.n % GpuChecks::CHUNK);
            if chunk == checks.chunks.len() {
                checks.chunks.push(self.gpu.zeros::<u32>(GpuChecks::CHUNK)?);
            }
            let mut counter = checks.chunks[chunk].slice.slice_mut(slot..slot + 1);
            self.queue_nonfinite(&Self::value_bufs(real, complex), &mut counter)?;
            checks.n += 1;
            Ok(())
        })()
        .or_fail();
        None
    }

    fn read_checks(&self, checks: GpuChecks) -> Vec<bool> {
        let mut out = Vec::with_capacity(checks.n);
        for c in &checks.chunks {
            out.extend(self.gpu.download(c).or_fail().into_iter().map(|k| k == 0));
        }
        out.truncate(checks.n);
        out
    }

    fn mean_std(&self, x: &GpuTensor) -> (f64, f64) {
        (|| {
            let n = x.numel();
            let n64 = n as u64;
            let sfx = x.dtype.suffix();
            let threads = super::kernels::reduce_threads(n);
            let mut acc = self.gpu.zeros::<f64>(1)?;
            launch!(self.gpu, "pointwise", format!("sum_{sfx}"), threads;
                &x.buf.slice, &n64, &mut acc.slice)?;
            let mean = self.gpu.download(&acc)?[0] / n.max(1) as f64;
            let mut acc2 = self.gpu.zeros::<f64>(1)?;
            launch!(self.gpu, "pointwise", format!("sum_sq_dev_{sfx}"), threads;
                &x.buf.slice, &n64, &mean, &mut acc2.slice)?;
            let var = self.gpu.download(&acc2)?[0] / n.max(1) as f64;
            Ok((mean, var.sqrt()))
        })()
        .or_fail()
    }

    fn rel_l2_loss(&self, pred: &GpuTensor, target: &GpuTensor, scale: f32) -> (f64, GpuTensor) {
        self.relative_loss(LossKind::L2, pred, target, scale)
            .or_fail()
    }

    fn h1_loss(&self, pred: &GpuTensor, target: &GpuTensor, scale: f32) -> (f64, GpuTensor) {
        self.relative_loss(LossKind::H1, pred, target, scale)
            .or_fail()
    }
}

impl Cuda {
    /// A relative loss on the device (kernels `rel_l2_*` or `h1_*` of kernels/loss.cu): the
    /// kernels sum `||p_b - y_b||^2` and `||y_b||^2` (L2 or H1 norms) per sample, only those
    /// 2 x batch sums cross to the host (the loss value is needed there),
    /// `fno::loss::rel_l2_coefficients` turns them into the loss and per-sample coefficients,
    /// and the gradient kernel writes `direction * coef[b] * scale` in fp32.
    fn relative_loss(
        &self,
        kind: LossKind,
        pred: &GpuTensor,
        target: &GpuTensor,
        scale: f32,
    ) -> Result<(f64, GpuTensor), CudaError> {
        assert_eq!(
            pred.shape, target.shape,
            "{kind:?} loss: prediction {:?} vs target {:?}",
            pred.shape, target.shape
        );
        let batch = pred.shape[0];
        let n = pred.numel();
        assert!(batch > 0, "{kind:?} loss: empty batch {:?}", pred.shape);
        let len = n / batch;
        // H1 differences run along the grid axes (padded with extent-1 axes to 3).
        let mut grid = [1u64; 3];
        if kind == LossKind::H1 {
            let g = &pred.shape[2.min(pred.shape.len())..];
            assert!(
                (1..=3).contains(&g.len()),
                "h1_loss: {:?} is not (batch, channels, 1 to 3 grid axes)",
                pred.shape
            );
            for (o, &e) in grid.iter_mut().zip(g) {
                *o = e as u64;
            }
        }
        let [n0, n1, n2] = grid;
        let p = self.as_format(pred, Format::Fp32)?;
        let y = self.as_format(target, Format::Fp32)?;
        let (b64, l64) = (batch as u64, len as u64);
        // d2 then y2 in one buffer: one download.
        let mut sums = self.gpu.zeros::<f64>(2 * batch)?;
        {
            let (mut d2, mut y2) = sums.slice.split_at_mut(batch);
            let threads = batch * super::kernels::reduce_threads(len);
            if kind == LossKind::H1 {
                launch!(self.gpu, "loss", "h1_sums_f32", threads;
                    &p.buf.slice, &y.buf.slice, &mut d2, &mut y2, &b64, &l64, &n0, &n1, &n2)?;
            } else {
                launch!(self.gpu, "loss", "rel_l2_sums_f32", threads;
                    &p.buf.slice, &y.buf.slice, &mut d2, &mut y2, &b64, &l64)?;
            }
        }
        let sums = self.gpu.download(&sums)?;
        let (loss, coef) = crate::fno::loss::rel_l2_coefficients(&sums[..batch], &sums[batch..]);
        let coef = self.gpu.upload(&coef)?;
        let mut g = self.real(pred.shape.clone(), Format::Fp32)?;
        if kind == LossKind::H1 {
            launch!(self.gpu, "loss", "h1_grad_f32", n;
                &p.buf.slice, &y.buf.slice, &mut g.buf.slice, &coef.slice, &b64, &l64, &n0, &n1, &n2, &scale)?;
        } else {
            launch!(self.gpu, "loss", "rel_l2_grad_f32", n;
                &p.buf.slice, &y.buf.slice, &mut g.buf.slice, &coef.slice, &b64, &l64, &scale)?;
        }
        Ok((loss, g))
    }

    /// The factors (lambda, a, b, m0, m1, m2) in fp32, absent mode axes as 1-element dummies.
    fn cp_f32(&self, f: &CpFactors<'_, GpuTensor>) -> Result<Vec<GpuTensor>, CudaError> {
        let mut v = vec![
            self.cast_real(f.lambda, Format::Fp32)?,
            self.cast_real(f.a, Format::Fp32)?,
            self.cast_real(f.b, Format::Fp32)?,
        ];
        for m in &f.modes {
            v.push(self.cast_real(m, Format::Fp32)?);
        }
        while v.len() < 6 {
            v.push(self.real(vec![1, 1, 2], Format::Fp32)?);
        }
        Ok(v)
    }

    /// prod_a M_a[k_a, r] as complex f64 (k, r).
    fn cp_products(&self, ff: &[GpuTensor], d: &CpDims) -> Result<DeviceBuf<u8>, CudaError> {
        let mut pm = self.gpu.alloc_bytes(16 * d.nk * d.r)?;
        let k = d.kept3();
        let (r, k0, k1, k2) = (d.r as u64, k[0] as u64, k[1] as u64, k[2] as u64);
        let nd = d.kept.len() as i32;
        launch!(self.gpu, "contract", "cp_mode_products", d.nk * d.r;
            &ff[3].buf.slice, &ff[4].buf.slice, &ff[5].buf.slice, &mut pm.slice, &r, &nd, &k0, &k1, &k2)?;
        Ok(pm)
    }
}
