//! The GPU layer. Host-side logic (plan cache, memory accounting, shape checks, kernel sources)
//! is tested everywhere; the device tests run where a GPU is present and otherwise print why
//! they skip (they never fail for lack of a GPU, and never claim to have run).

use mpno::backend::cuda::{self, CudaError, MemTracker, PlanCache};
use mpno::fft::{Algorithm, Complex, Direction, Fft, relative_error_bound};
use mpno::precision::{Format, Model, round};
use rand::{RngExt, SeedableRng};

#[test]
fn plan_cache_builds_each_key_once_and_does_not_cache_failures() {
    let cache: PlanCache<(usize, usize), String> = PlanCache::default();
    let mut builds = 0;
    for _ in 0..3 {
        let v = cache
            .get_or_try::<()>(&(64, 8), || {
                builds += 1;
                Ok("plan".into())
            })
            .unwrap();
        assert_eq!(*v, "plan");
    }
    assert_eq!(builds, 1);
    assert!(cache.get_or_try(&(3, 1), || Err("no")).is_err());
    assert_eq!(cache.len(), 1, "a failed build must not be cached");
}

/// A build that panics (a failing test) leaves the cache usable: the kernel images are cached
/// per process, and one failure must not fail every later test with a poisoned lock.
#[test]
fn plan_cache_survives_a_build_that_panicked() {
    let cache: PlanCache<usize, String> = PlanCache::default();
    cache.get_or_try::<()>(&1, || Ok("one".into())).unwrap();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = cache.get_or_try::<()>(&2, || panic!("deliberate: the cache must survive it"));
    }));
    assert!(panicked.is_err());
    assert_eq!(cache.len(), 1, "the panicked build must not be cached");
    let v = cache.get_or_try::<()>(&2, || Ok("two".into())).unwrap();
    assert_eq!((*v).as_str(), "two");
    assert_eq!(*cache.get_or_try::<()>(&1, || Err(())).unwrap(), "one");
}

#[test]
fn memory_tracker_counts_live_and_peak_bytes() {
    let mut m = MemTracker::default();
    m.alloc(100);
    m.alloc(50);
    m.free(100);
    m.alloc(20);
    assert_eq!((m.live(), m.peak()), (70, 150));
    m.reset_peak();
    assert_eq!(m.peak(), 70);
    // The cumulative count keeps freed allocations (the bytes a step allocated).
    assert_eq!(m.allocated(), 170);
}

/// A driver older than NVRTC refuses the kernels' PTX: the error names both versions and the fix.
#[test]
fn ptx_version_mismatch_names_both_versions() {
    let e = CudaError::PtxVersion {
        file: "pointwise".into(),
        nvrtc: 13010,
        driver: 12080,
    }
    .to_string();
    for want in [
        "CUDA 12.8",
        "NVRTC 13.1",
        "kernels/pointwise.cu",
        "LD_LIBRARY_PATH",
    ] {
        assert!(e.contains(want), "{want} not in: {e}");
    }
}

#[test]
fn half_fft_shape_checks_give_clear_errors() {
    use cuda::HalfFft;
    let e = HalfFft::check(100, 1, (9, 0)).unwrap_err().to_string();
    assert!(e.contains("power-of-two") && e.contains("128"), "{e}");
    assert!(HalfFft::check(64, 0, (9, 0)).is_err());
    let e = HalfFft::check(64, 1, (5, 2)).unwrap_err().to_string();
    assert!(e.contains("5.3"), "{e}");
    assert!(HalfFft::check(1 << 16, 64, (9, 0)).is_ok());
}

/// Every `kernels/*.cu` is embedded (and only those), names its CPU reference and has its kernel
/// list; the common header NVRTC compiles with is embedded too, and the only other file there is
/// the g++ shim of tests/kernels_host.rs (which checks the kernels themselves without a GPU).
#[test]
fn every_kernel_file_is_embedded_and_names_its_cpu_reference() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("kernels");
    if !dir.exists() {
        // A test executable carried to another machine (scripts/gpu-pack): the sources were
        // checked where it was built.
        eprintln!("skipped: {} not on this machine", dir.display());
        return;
    }
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let Some(stem) = name.strip_suffix(".cu") else {
            assert!(
                name == "common.cuh" || name == "host_shim.h",
                "kernels/{name}: neither a kernel file (.cu) nor one of the two headers"
            );
            continue;
        };
        files += 1;
        let src = cuda::kernel_source(stem).unwrap_or_else(|| panic!("{stem}.cu not embedded"));
        assert_eq!(src, std::fs::read_to_string(&path).unwrap());
        assert!(
            src.contains("CPU reference"),
            "{stem}.cu must name its CPU reference"
        );
        assert!(
            cuda::KERNEL_NAMES
                .iter()
                .any(|(f, k)| *f == stem && !k.is_empty()),
            "{stem}.cu has no entry in KERNEL_NAMES"
        );
        assert_eq!(
            cuda::full_source(stem).unwrap(),
            format!("{}\n{src}", cuda::COMMON)
        );
    }
    assert_eq!(
        files,
        cuda::KERNELS.len(),
        "KERNELS lists a file that is not there"
    );
    assert_eq!(
        cuda::COMMON,
        std::fs::read_to_string(dir.join("common.cuh")).unwrap()
    );
}

#[test]
fn devices_never_panics() {
    match cuda::devices() {
        Ok(list) => eprintln!("{} CUDA device(s)", list.len()),
        Err(e) => eprintln!("no CUDA device: {e}"),
    }
}

/// The GPU, or None with the reason printed.
fn gpu() -> Option<cuda::Gpu> {
    match cuda::Gpu::new(0) {
        Ok(g) => Some(g),
        Err(e @ (CudaError::NoDriver | CudaError::NoDevice(..) | CudaError::NotCompiled)) => {
            eprintln!("SKIPPED (no GPU): {e}");
            None
        }
        Err(e) => panic!("GPU present but unusable: {e}"),
    }
}

/// Every kernel file compiles with the real NVRTC (it needs no GPU: libnvrtc on the loader path,
/// e.g. the pip `nvidia/cu13/lib` folder) exactly as `Gpu::function` compiles it, as PTX for
/// the A100 and H100/H200 (compute 8.0, 9.0) and as the CUBIN fallback for sm_90, and the PTX
/// defines every kernel the backend launches under its unmangled name. Skips where NVRTC cannot
/// be loaded, but fails where a driver is present and NVRTC is not (the backend could not run).
#[test]
fn every_kernel_file_compiles_with_nvrtc() {
    // SAFETY: only tries to dlopen the library.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        assert!(
            !cuda::driver_present(),
            "a CUDA driver is present but libnvrtc cannot be loaded (LD_LIBRARY_PATH)"
        );
        eprintln!("SKIPPED (NVRTC not on the loader path): kernels not compiled");
        return;
    }
    for (file, names) in cuda::KERNEL_NAMES {
        for (major, minor) in [(8, 0), (9, 0)] {
            let ptx = cuda::compile_ptx(file, major, minor)
                .unwrap_or_else(|e| panic!("compute_{major}{minor}: {e}"))
                .to_src();
            assert!(
                ptx.contains(&format!(".target sm_{major}{minor}")),
                "{file}.cu: PTX not for compute_{major}{minor}"
            );
            // Adam's step is bit-identical to the CPU's only without fused multiply-adds (one
            // rounding per operation: fmul_rn & co. in the source, --fmad=false in the
            // options): no fma may appear in its PTX. (Measured: plain `a + b * c` in adam.cu
            // with --fmad=true gives 3.)
            if *file == "adam" {
                assert!(
                    !ptx.contains("fma."),
                    "adam.cu: PTX has a fused multiply-add"
                );
            }
            for name in *names {
                assert!(
                    ptx.contains(&format!(".entry {name}(")),
                    "{file}.cu: kernel {name} missing from the PTX for compute_{major}{minor}"
                );
            }
        }
        let cubin = cuda::compile_cubin(file, 9, 0).unwrap_or_else(|e| panic!("{file}.cu: {e}"));
        assert_eq!(
            &cubin[..4],
            b"\x7fELF",
            "{file}.cu: the CUBIN is not an ELF image"
        );
    }
    eprintln!(
        "NVRTC compiled {} kernel files (compute_80, compute_90, sm_90)",
        cuda::KERNEL_NAMES.len()
    );
}

/// Empty buffers: the driver refuses zero-byte allocations, so `Gpu` hands out a one-element
/// allocation of length 0 that counts 0 bytes; uploads, copies, conversions and downloads of
/// it work and return nothing.
#[test]
fn gpu_empty_buffers_allocate_copy_and_download() {
    let Some(gpu) = gpu() else { return };
    gpu.synchronize().unwrap();
    let live = gpu.live_bytes();
    let z = gpu.zeros::<f32>(0).unwrap();
    let u = gpu.upload::<f32>(&[]).unwrap();
    let b = gpu.alloc_bytes(0).unwrap();
    let c = gpu.copy_bytes(&b).unwrap();
    assert!(z.is_empty() && u.is_empty() && b.is_empty() && c.is_empty());
    assert_eq!(gpu.live_bytes(), live, "empty buffers count 0 bytes");
    assert!(gpu.download(&z).unwrap().is_empty());
    assert!(gpu.download(&c).unwrap().is_empty());
    assert!(
        gpu.download(&gpu.f32_to_f16(&u).unwrap())
            .unwrap()
            .is_empty()
    );
    // A non-empty buffer after them is whole.
    let x = gpu.upload(&[1.5f32, -2.0, 3.25]).unwrap();
    assert_eq!(gpu.download(&x).unwrap(), vec![1.5, -2.0, 3.25]);
    assert_eq!(gpu.live_bytes(), live + 12);
}

/// f32 -> fp16 on the device (`cvt.rn.f16.f32`) equals mpno's reference rounding bit for bit:
/// 2^20 random values over the whole fp16 range (subnormals, overflow) plus ties.
#[test]
fn gpu_f16_conversion_matches_reference_rounding() {
    let Some(gpu) = gpu() else { return };
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
    let mut x: Vec<f32> = (0..1 << 20)
        .map(|_| {
            let e = rng.random_range(-27.0..17.0f64);
            let s = if rng.random::<bool>() { 1.0 } else { -1.0 };
            (s * e.exp2()) as f32
        })
        .collect();
    // Exact ties between neighbouring fp16 values, and the overflow threshold.
    for k in 0..2048u16 {
        let a = half::f16::from_bits(0x3c00 + k).to_f64();
        let b = half::f16::from_bits(0x3c01 + k).to_f64();
        x.push(((a + b) / 2.0) as f32);
    }
    x.extend([
        65504.0,
        65519.99,
        65520.0,
        -65520.0,
        0.0,
        -0.0,
        2.9802322e-8,
        2.9802326e-8,
    ]);
    let d = gpu.upload(&x).unwrap();
    let h = gpu.download(&gpu.f32_to_f16(&d).unwrap()).unwrap();
    let back = gpu
        .download(&gpu.f16_to_f32(&gpu.f32_to_f16(&d).unwrap()).unwrap())
        .unwrap();
    for (i, (&xi, &hi)) in x.iter().zip(&h).enumerate() {
        let want = round(xi as f64, Format::Fp16);
        let got = half::f16::from_bits(hi).to_f64();
        assert!(
            got == want || (got.is_nan() && want.is_nan()),
            "element {i}: {xi:e} -> GPU {got:e}, reference {want:e}"
        );
        assert_eq!(back[i] as f64, got);
    }
    assert_eq!(
        gpu.compiled_modules(),
        1,
        "kernels/convert.cu compiled once"
    );
    eprintln!(
        "f32->fp16 on the GPU: {} values bit-identical to precision::round",
        x.len()
    );
}

/// cuFFT half precision (batched C2C, fp16 in and out) against the f64 FFT of the same rounded
/// inputs: every coefficient's error within mpno's fp16 model-III bound (every operation in
/// fp16, Higham), and beside the CPU-emulated fp16 model-III error of the same inputs.
#[test]
fn gpu_cufft_fp16_within_model_iii_bound() {
    let Some(gpu) = gpu() else { return };
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(11);
    let batch = 16;
    for log_n in 2..=14 {
        let n = 1usize << log_n;
        let plan = gpu.half_fft(n, batch).unwrap();
        let again = gpu.half_fft(n, batch).unwrap();
        assert!(
            std::sync::Arc::ptr_eq(&plan, &again),
            "plan cached per shape"
        );
        // Inputs in [-1, 1), rounded to fp16 (the GPU's storage).
        let x: Vec<f64> = (0..2 * n * batch)
            .map(|_| round(rng.random_range(-1.0..1.0), Format::Fp16))
            .collect();
        let bits: Vec<u16> = x
            .iter()
            .map(|&v| half::f16::from_f64(v).to_bits())
            .collect();
        let mut d = gpu.upload(&bits).unwrap();
        plan.exec(&mut d, true).unwrap();
        let out = gpu.download(&d).unwrap();
        let f64_plan = Fft::<f64>::new(n, Direction::Forward, Algorithm::Auto).unwrap();
        let emu_plan = Fft::<mpno::precision::Emu<mpno::precision::Fp16>>::new(
            n,
            Direction::Forward,
            Algorithm::Radix2,
        )
        .unwrap();
        let eps = relative_error_bound(&[n], Algorithm::Radix2, Format::Fp16, Model::Arithmetic);
        let (mut worst_ratio, mut gpu_max, mut emu_max) = (0.0f64, 0.0f64, 0.0f64);
        for b in 0..batch {
            let z: Vec<Complex<f64>> = (0..n)
                .map(|j| Complex::new(x[2 * (b * n + j)], x[2 * (b * n + j) + 1]))
                .collect();
            let norm = z.iter().map(|v| v.norm_sqr()).sum::<f64>().sqrt();
            let mut r = z.clone();
            f64_plan.process(&mut r);
            let mut e: Vec<_> = z
                .iter()
                .map(|v| {
                    Complex::new(
                        mpno::precision::Real::from_f64(v.re),
                        mpno::precision::Real::from_f64(v.im),
                    )
                })
                .collect();
            emu_plan.process(&mut e);
            let (mut g2, mut e2) = (0.0, 0.0);
            for k in 0..n {
                let g = Complex::new(
                    half::f16::from_bits(out[2 * (b * n + k)]).to_f64(),
                    half::f16::from_bits(out[2 * (b * n + k) + 1]).to_f64(),
                );
                assert!(g.re.is_finite() && g.im.is_finite(), "n = {n}: overflow");
                g2 += (g - r[k]).norm_sqr();
                let em = Complex::new(
                    mpno::precision::Real::to_f64(e[k].re),
                    mpno::precision::Real::to_f64(e[k].im),
                );
                e2 += (em - r[k]).norm_sqr();
            }
            // Higham's bound is normwise: ||fl(X) - X||_2 <= eps ||X||_2 = eps sqrt(n) ||x||_2.
            let scale = norm * (n as f64).sqrt();
            worst_ratio = worst_ratio.max(g2.sqrt() / (eps * scale));
            gpu_max = gpu_max.max(g2.sqrt() / scale);
            emu_max = emu_max.max(e2.sqrt() / scale);
        }
        eprintln!(
            "n = {n:6}: cuFFT fp16 rel. error {gpu_max:.3e}, CPU-emulated fp16 radix-2 {emu_max:.3e}, bound {eps:.3e}, worst ratio {worst_ratio:.3}"
        );
        assert!(
            worst_ratio <= 1.0,
            "n = {n}: cuFFT fp16 error above the model-III bound"
        );
    }
    eprintln!("peak tracked device memory: {} bytes", gpu.peak_bytes());
}
