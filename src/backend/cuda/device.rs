//! Context, stream, tracked device memory and the NVRTC kernel registry.

use super::fft::HalfFft;
use super::{CudaError, DeviceInfo, MemTracker, PlanCache, driver_present, full_source};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DeviceRepr, LaunchConfig,
    PushKernelArg, ValidAsZeroBits,
};
use cudarc::nvrtc::Ptx;
use std::sync::{Arc, Mutex, OnceLock};

pub(super) fn drv(e: impl std::fmt::Debug) -> CudaError {
    CudaError::Driver(format!("{e:?}"))
}

/// Kernel images that loaded (PTX, or a CUBIN where the driver refused the PTX), by kernel
/// file and compute capability: NVRTC compiles each file once per process, and every further
/// context (each test builds its own backend, on parallel threads) only loads the image. The
/// cache's lock is held while a file compiles, so a file is never compiled twice.
fn images() -> &'static PlanCache<(String, i32, i32), Ptx> {
    static IMAGES: OnceLock<PlanCache<(String, i32, i32), Ptx>> = OnceLock::new();
    IMAGES.get_or_init(PlanCache::default)
}

pub(super) fn devices() -> Result<Vec<DeviceInfo>, CudaError> {
    if !driver_present() {
        return Err(CudaError::NoDriver);
    }
    let n = CudaContext::device_count().map_err(drv)? as usize;
    (0..n)
        .map(|i| info(&CudaContext::new(i).map_err(drv)?))
        .collect()
}

fn info(ctx: &Arc<CudaContext>) -> Result<DeviceInfo, CudaError> {
    let (free_bytes, total_bytes) = ctx.mem_get_info().map_err(drv)?;
    Ok(DeviceInfo {
        ordinal: ctx.ordinal(),
        name: ctx.name().map_err(drv)?,
        compute_capability: ctx.compute_capability().map_err(drv)?,
        total_bytes,
        free_bytes,
    })
}

/// (NVRTC, driver) CUDA versions as 1000 x major + 10 x minor (0 where a query fails).
fn versions() -> (i32, i32) {
    let (mut major, mut minor, mut driver) = (0, 0, 0);
    // SAFETY: plain queries with out-pointers that live for the call; both libraries are
    // loaded (a module was just compiled and refused).
    unsafe {
        if cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor)
            != cudarc::nvrtc::sys::nvrtcResult::NVRTC_SUCCESS
        {
            (major, minor) = (0, 0);
        }
        if cudarc::driver::sys::cuDriverGetVersion(&mut driver)
            != cudarc::driver::sys::CUresult::CUDA_SUCCESS
        {
            driver = 0;
        }
    }
    (1000 * major + 10 * minor, driver)
}

/// A launch of `total` grid-stride threads: blocks of 256, at least one block (a grid of 0
/// blocks is an invalid launch), at most 65535 x 8 blocks (the loops cover the rest).
pub(super) fn launch_cfg(total: usize) -> LaunchConfig {
    let block = 256u32;
    let blocks = total.div_ceil(block as usize).clamp(1, 65_535 * 8) as u32;
    LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (block, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Make the device's default memory pool (behind stream-ordered `cuMemAllocAsync`, which cudarc
/// uses) keep freed memory for reuse instead of returning it at every synchronisation: with this
/// the pool is the caching allocator, and allocation in the training loop costs no driver call.
/// A context without stream-ordered allocation (cudarc then allocates with `cuMemAlloc`) has no
/// pool to configure: nothing to do.
fn keep_pool_memory(ctx: &Arc<CudaContext>) -> Result<(), CudaError> {
    use cudarc::driver::sys;
    if !ctx.has_async_alloc() {
        return Ok(());
    }
    ctx.bind_to_thread().map_err(drv)?;
    let mut pool: sys::CUmemoryPool = std::ptr::null_mut();
    let mut threshold: u64 = u64::MAX;
    // SAFETY: plain driver calls with out-pointers that live for the call.
    unsafe {
        sys::cuDeviceGetDefaultMemPool(&mut pool, ctx.cu_device())
            .result()
            .map_err(drv)?;
        sys::cuMemPoolSetAttribute(
            pool,
            sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
            &mut threshold as *mut u64 as *mut std::ffi::c_void,
        )
        .result()
        .map_err(drv)?;
    }
    Ok(())
}

/// Whether `kernels/FILE.cu` is compiled with fused multiply-adds: all but Adam, which does
/// the CPU reference's operations one rounding at a time, so the GPU optimizer step is
/// bit-identical to it.
fn fmad(file: &str) -> bool {
    file != "adam"
}

/// `kernels/FILE.cu` (with the common header) as NVRTC compiles it for [`Gpu::function`]: PTX
/// for virtual architecture `compute_XY` of compute capability `major.minor`. Needs only
/// libnvrtc (no driver, no GPU), so the kernels can be compiled where there is no GPU.
pub fn compile_ptx(file: &str, major: i32, minor: i32) -> Result<Ptx, CudaError> {
    let src = full_source(file)
        .ok_or_else(|| CudaError::Compile(file.into(), "no such kernel file".into()))?;
    let opts = cudarc::nvrtc::CompileOptions {
        options: vec![format!("--gpu-architecture=compute_{major}{minor}")],
        fmad: (!fmad(file)).then_some(false),
        ..Default::default()
    };
    cudarc::nvrtc::compile_ptx_with_opts(&src, opts)
        .map_err(|e| CudaError::Compile(file.into(), format!("{e:?}")))
}

/// `kernels/FILE.cu` compiled by NVRTC to machine code for compute capability `major.minor` (a
/// CUBIN, `--gpu-architecture=sm_XY`), fused multiply-adds as in [`compile_ptx`]; the error
/// carries NVRTC's log. The fallback of [`Gpu::function`] where the driver refuses NVRTC's PTX
/// version. Needs only libnvrtc.
pub fn compile_cubin(file: &str, major: i32, minor: i32) -> Result<Vec<u8>, String> {
    let src = full_source(file).ok_or_else(|| format!("no kernel file {file}"))?;
    let fmad = fmad(file);
    use cudarc::nvrtc::{result, sys};
    let code = std::ffi::CString::new(src.as_str()).map_err(|e| e.to_string())?;
    let prog = result::create_program(&code, None).map_err(|e| format!("{e:?}"))?;
    let options = [
        format!("--gpu-architecture=sm_{major}{minor}"),
        format!("--fmad={fmad}"),
    ];
    // SAFETY: `prog` is a live program (destroyed below, once); the out-buffers are sized by
    // the size queries before each read.
    unsafe {
        let compiled = result::compile_program(prog, &options).map_err(|e| {
            let log = result::get_program_log(prog)
                .map(|l| {
                    std::ffi::CStr::from_ptr(l.as_ptr())
                        .to_string_lossy()
                        .into_owned()
                })
                .unwrap_or_default();
            format!("{e:?}: {log}")
        });
        let image = compiled.and_then(|()| {
            let mut size = 0usize;
            sys::nvrtcGetCUBINSize(prog, &mut size)
                .result()
                .map_err(|e| format!("{e:?}"))?;
            let mut buf = vec![0u8; size];
            sys::nvrtcGetCUBIN(prog, buf.as_mut_ptr() as *mut std::ffi::c_char)
                .result()
                .map_err(|e| format!("{e:?}"))?;
            Ok(buf)
        });
        let _ = result::destroy_program(prog);
        image
    }
}

/// A device buffer whose bytes count in its [`Gpu`]'s memory tracker while it lives.
///
/// An empty buffer holds one element of device memory (the driver refuses allocations of zero
/// bytes with CUDA_ERROR_INVALID_VALUE) but has length 0 and counts 0 bytes.
pub struct DeviceBuf<T> {
    pub(super) slice: CudaSlice<T>,
    len: usize,
    tracker: Arc<Mutex<MemTracker>>,
    bytes: usize,
}

impl<T> DeviceBuf<T> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<T> Drop for DeviceBuf<T> {
    fn drop(&mut self) {
        self.tracker.lock().expect("tracker").free(self.bytes);
    }
}

/// One GPU: context, the stream every operation runs on, kernels compiled on first use, cuFFT
/// plans cached by shape, and the live/peak bytes of the buffers it handed out.
pub struct Gpu {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    modules: PlanCache<String, Arc<CudaModule>>,
    functions: PlanCache<(String, String), CudaFunction>,
    pub(super) half_ffts: PlanCache<(usize, usize), HalfFft>,
    mem: Arc<Mutex<MemTracker>>,
}

impl Gpu {
    /// Open device `ordinal` (a clear error when there is no driver or no such device).
    pub fn new(ordinal: usize) -> Result<Gpu, CudaError> {
        if !driver_present() {
            return Err(CudaError::NoDriver);
        }
        let count = CudaContext::device_count().map_err(drv)? as usize;
        if ordinal >= count {
            return Err(CudaError::NoDevice(ordinal, count));
        }
        let ctx = CudaContext::new(ordinal).map_err(drv)?;
        // SAFETY: every operation (kernels, copies, cuBLAS, cuFFT) runs on the one stream below,
        // in call order, so cudarc's per-buffer events (two created per allocation) order
        // nothing that the stream does not already order.
        unsafe { ctx.disable_event_tracking() };
        keep_pool_memory(&ctx)?;
        let stream = ctx.default_stream();
        Ok(Gpu {
            ctx,
            stream,
            modules: PlanCache::default(),
            functions: PlanCache::default(),
            half_ffts: PlanCache::default(),
            mem: Arc::new(Mutex::new(MemTracker::default())),
        })
    }

    /// What the driver reports about this device now.
    pub fn info(&self) -> Result<DeviceInfo, CudaError> {
        info(&self.ctx)
    }

    /// The stream all work is queued on.
    /// Make this GPU's context current on the calling thread (for raw cuBLAS / cuFFT calls;
    /// cudarc's own allocations and launches do this themselves).
    pub(super) fn bind(&self) -> Result<(), CudaError> {
        self.ctx.bind_to_thread().map_err(drv)
    }

    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// Wait for all queued work.
    pub fn synchronize(&self) -> Result<(), CudaError> {
        self.stream.synchronize().map_err(drv)
    }

    /// Peak bytes of live buffers since the last [`Gpu::reset_peak`].
    pub fn peak_bytes(&self) -> usize {
        self.mem.lock().expect("tracker").peak()
    }

    /// Live bytes of buffers now.
    pub fn live_bytes(&self) -> usize {
        self.mem.lock().expect("tracker").live()
    }

    /// Bytes of every buffer allocated so far, freed or not (op temporaries included).
    pub fn allocated_bytes(&self) -> u64 {
        self.mem.lock().expect("tracker").allocated()
    }

    /// Start a new peak measurement.
    pub fn reset_peak(&self) {
        self.mem.lock().expect("tracker").reset_peak()
    }

    /// Kernel `name` of `kernels/FILE.cu`, compiled by NVRTC the first time FILE is used in this
    /// process (for this device's compute capability) and cached.
    pub fn function(&self, file: &str, name: &str) -> Result<CudaFunction, CudaError> {
        let key = (file.to_string(), name.to_string());
        let f = self
            .functions
            .get_or_try(&key, || self.load_function(file, name))?;
        Ok((*f).clone())
    }

    fn load_function(&self, file: &str, name: &str) -> Result<CudaFunction, CudaError> {
        let module = self.modules.get_or_try(&file.to_string(), || {
            let (major, minor) = self.ctx.compute_capability().map_err(drv)?;
            // The image another context of this process loaded, or a new one: this context's
            // module comes from the compile that made it.
            let mut fresh = None;
            let image = images().get_or_try(&(file.to_string(), major, minor), || {
                let (image, module) = self.compile_and_load(file, major, minor)?;
                fresh = Some(module);
                Ok::<_, CudaError>(image)
            })?;
            match fresh {
                Some(module) => Ok(module),
                None => self.ctx.load_module((*image).clone()).map_err(drv),
            }
        })?;
        module.load_function(name).map_err(drv)
    }

    /// `kernels/FILE.cu` compiled by NVRTC for compute capability `major.minor` and loaded into
    /// this context: PTX, or a CUBIN where the driver refuses the PTX's version. Returns the
    /// image that loaded with its module.
    fn compile_and_load(
        &self,
        file: &str,
        major: i32,
        minor: i32,
    ) -> Result<(Ptx, Arc<CudaModule>), CudaError> {
        let ptx = compile_ptx(file, major, minor)?;
        match self.ctx.load_module(ptx.clone()) {
            Ok(m) => Ok((ptx, m)),
            Err(e) if e.0 == cudarc::driver::sys::CUresult::CUDA_ERROR_UNSUPPORTED_PTX_VERSION => {
                // PTX from an NVRTC newer than the driver is refused; machine code for this
                // very GPU (a CUBIN) is not (minor-version compatibility): try that.
                let loaded = compile_cubin(file, major, minor).and_then(|c| {
                    let cubin = Ptx::from_binary(c);
                    let m = self
                        .ctx
                        .load_module(cubin.clone())
                        .map_err(|e| format!("{e:?}"))?;
                    Ok((cubin, m))
                });
                loaded.map_err(|why| {
                    let (nvrtc, driver) = versions();
                    eprintln!("kernels/{file}.cu as a CUBIN for sm_{major}{minor}: {why}");
                    CudaError::PtxVersion {
                        file: file.into(),
                        nvrtc,
                        driver,
                    }
                })
            }
            Err(e) => Err(drv(e)),
        }
    }

    /// Number of kernel files compiled so far.
    pub fn compiled_modules(&self) -> usize {
        self.modules.len()
    }

    /// `slice` (at least one element) as a tracked buffer of `len` elements.
    fn track<T>(&self, slice: CudaSlice<T>, len: usize) -> DeviceBuf<T> {
        debug_assert!(slice.len() >= len.max(1));
        let bytes = len * std::mem::size_of::<T>();
        self.mem.lock().expect("tracker").alloc(bytes);
        DeviceBuf {
            slice,
            len,
            tracker: self.mem.clone(),
            bytes,
        }
    }

    /// Bytes an allocation could get now: free device memory plus what the memory pool holds
    /// but no buffer uses (the pool keeps freed memory, which `cuMemGetInfo` counts as used);
    /// free memory alone where the context allocates without a pool.
    pub fn available_bytes(&self) -> Result<usize, CudaError> {
        use cudarc::driver::sys;
        let (free, _) = self.ctx.mem_get_info().map_err(drv)?;
        if !self.ctx.has_async_alloc() {
            return Ok(free);
        }
        let mut pool: sys::CUmemoryPool = std::ptr::null_mut();
        let (mut reserved, mut used) = (0u64, 0u64);
        // SAFETY: plain driver queries with out-pointers that live for the call.
        unsafe {
            sys::cuDeviceGetDefaultMemPool(&mut pool, self.ctx.cu_device())
                .result()
                .map_err(drv)?;
            for (attr, out) in [
                (
                    sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT,
                    &mut reserved,
                ),
                (
                    sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_CURRENT,
                    &mut used,
                ),
            ] {
                sys::cuMemPoolGetAttribute(pool, attr, out as *mut u64 as *mut std::ffi::c_void)
                    .result()
                    .map_err(drv)?;
            }
        }
        Ok(free + reserved.saturating_sub(used) as usize)
    }

    /// Wait for queued work, then return the memory pool's unused memory to the driver (for
    /// libraries that allocate outside the pool, such as cuFFT's work areas); only the wait where
    /// the context allocates without a pool (freed memory went back to the driver already).
    pub fn trim_pool(&self) -> Result<(), CudaError> {
        use cudarc::driver::sys;
        self.synchronize()?;
        if !self.ctx.has_async_alloc() {
            return Ok(());
        }
        let mut pool: sys::CUmemoryPool = std::ptr::null_mut();
        // SAFETY: plain driver calls; after the synchronisation no freed block is in flight.
        unsafe {
            sys::cuDeviceGetDefaultMemPool(&mut pool, self.ctx.cu_device())
                .result()
                .map_err(drv)?;
            sys::cuMemPoolTrimTo(pool, 0).result().map_err(drv)?;
        }
        Ok(())
    }

    /// An allocation failure as an error: out of memory with the requested and available
    /// bytes (the driver refuses at allocation time, so no size check runs before each
    /// allocation), anything else as a driver error.
    fn alloc_error(&self, bytes: usize, e: cudarc::driver::DriverError) -> CudaError {
        if e.0 == cudarc::driver::sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY {
            CudaError::OutOfMemory {
                requested: bytes,
                available: self.available_bytes().unwrap_or(0),
            }
        } else {
            drv(e)
        }
    }

    /// A zeroed buffer of `n` elements.
    pub fn zeros<T: DeviceRepr + ValidAsZeroBits>(
        &self,
        n: usize,
    ) -> Result<DeviceBuf<T>, CudaError> {
        let bytes = n * std::mem::size_of::<T>();
        let slice = self
            .stream
            .alloc_zeros::<T>(n.max(1))
            .map_err(|e| self.alloc_error(bytes, e))?;
        Ok(self.track(slice, n))
    }

    /// An uninitialised buffer of `n` bytes, for outputs a kernel or library call writes in full.
    pub fn alloc_bytes(&self, n: usize) -> Result<DeviceBuf<u8>, CudaError> {
        // SAFETY: callers write every byte before reading (each op's output is fully written).
        let slice =
            unsafe { self.stream.alloc::<u8>(n.max(1)) }.map_err(|e| self.alloc_error(n, e))?;
        Ok(self.track(slice, n))
    }

    /// A copy of a device buffer.
    pub fn copy_bytes(&self, src: &DeviceBuf<u8>) -> Result<DeviceBuf<u8>, CudaError> {
        let mut dst = self.alloc_bytes(src.len())?;
        if !src.is_empty() {
            self.stream
                .memcpy_dtod(&src.slice.slice(..src.len()), &mut dst.slice)
                .map_err(drv)?;
        }
        Ok(dst)
    }

    /// Device memory bandwidth of a copy: bytes read + written per second, the fastest of
    /// `reps` device-to-device copies (after one untimed copy) of a `bytes` buffer into another,
    /// each waited for (the GPU side of `backend::roofline::host_copy_bandwidth`).
    pub fn copy_bandwidth(&self, bytes: usize, reps: usize) -> Result<f64, CudaError> {
        let src = self.zeros::<u8>(bytes)?;
        let mut dst = self.zeros::<u8>(bytes)?;
        let mut best = f64::INFINITY;
        for rep in 0..=reps {
            self.synchronize()?;
            let t = std::time::Instant::now();
            self.stream
                .memcpy_dtod(&src.slice.slice(..bytes), &mut dst.slice)
                .map_err(drv)?;
            self.synchronize()?;
            if rep > 0 {
                best = best.min(t.elapsed().as_secs_f64());
            }
        }
        Ok(2.0 * bytes as f64 / best)
    }

    /// Compute capability (major, minor).
    pub fn compute_capability(&self) -> Result<(i32, i32), CudaError> {
        self.ctx.compute_capability().map_err(drv)
    }

    /// Copy host data to a new device buffer.
    pub fn upload<T: DeviceRepr + ValidAsZeroBits>(
        &self,
        host: &[T],
    ) -> Result<DeviceBuf<T>, CudaError> {
        if host.is_empty() {
            return self.zeros(0);
        }
        let slice = self
            .stream
            .clone_htod(host)
            .map_err(|e| self.alloc_error(std::mem::size_of_val(host), e))?;
        Ok(self.track(slice, host.len()))
    }

    /// Copy a device buffer back to the host (waits for queued work).
    pub fn download<T: DeviceRepr + Default + Clone>(
        &self,
        buf: &DeviceBuf<T>,
    ) -> Result<Vec<T>, CudaError> {
        if buf.is_empty() {
            return Ok(Vec::new());
        }
        self.stream
            .clone_dtoh(&buf.slice.slice(..buf.len()))
            .map_err(drv)
    }

    /// Round f32 values to fp16 on the device (`kernels/convert.cu`, `cvt.rn.f16.f32`); the
    /// fp16 bit patterns.
    pub fn f32_to_f16(&self, x: &DeviceBuf<f32>) -> Result<DeviceBuf<u16>, CudaError> {
        let n = x.len();
        let mut y = self.zeros::<u16>(n)?;
        let f = self.function("convert", "f32_to_f16")?;
        let n64 = n as u64;
        let cfg = launch_cfg(n);
        // SAFETY: the kernel reads n floats from x and writes n halves to y, both of length n.
        unsafe {
            self.stream
                .launch_builder(&f)
                .arg(&x.slice)
                .arg(&mut y.slice)
                .arg(&n64)
                .launch(cfg)
        }
        .map_err(drv)?;
        Ok(y)
    }

    /// Widen fp16 bit patterns to f32 on the device (exact).
    pub fn f16_to_f32(&self, x: &DeviceBuf<u16>) -> Result<DeviceBuf<f32>, CudaError> {
        let n = x.len();
        let mut y = self.zeros::<f32>(n)?;
        let f = self.function("convert", "f16_to_f32")?;
        let n64 = n as u64;
        let cfg = launch_cfg(n);
        // SAFETY: the kernel reads n halves from x and writes n floats to y, both of length n.
        unsafe {
            self.stream
                .launch_builder(&f)
                .arg(&x.slice)
                .arg(&mut y.slice)
                .arg(&n64)
                .launch(cfg)
        }
        .map_err(drv)?;
        Ok(y)
    }

    /// The cached batched fp16 complex FFT plan of length `n` (power of two) and `batch`.
    pub fn half_fft(&self, n: usize, batch: usize) -> Result<Arc<HalfFft>, CudaError> {
        HalfFft::check(n, batch, self.ctx.compute_capability().map_err(drv)?)?;
        self.half_ffts
            .get_or_try(&(n, batch), || HalfFft::new(self, n, batch))
    }
}
