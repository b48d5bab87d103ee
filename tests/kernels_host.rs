//! The CUDA kernels of `kernels/*.cu`, checked without a GPU.
//!
//! Each kernel file is compiled by g++ with `kernels/host_shim.h` and `kernels/common.cuh`
//! (`-include`, the text NVRTC compiles; the shim turns `__global__` functions into plain C
//! functions and takes the host branch of the fp16 conversions), loaded with libloading, and
//! launched serially: for every block and thread, `shim_set(grid, block, block index, thread
//! index)`, then the kernel. Grids are often smaller than the work, so the grid-stride loops run.
//! Results are compared with the CPU reference (`backend::cpu::Cpu`, `precision::round`,
//! `fno::optim::Adam`, `fno::loss::rel_l2`) on seeded random inputs, for every storage type:
//! bit for bit where the kernel performs the reference's operations in the same order
//! (conversions, copies, add, clip, scale, Adam), and otherwise within an error model:
//! f32 results within a few units of 2^-24 of the sum of |terms| (plus the reference's own
//! documented approximation error for erf / tanh), fp16 / bf16 results one of the two storage
//! neighbours of the f32 reference computed from the same rounded operands.
//!
//! Where g++ is missing every test prints "skipped: g++ not found" and returns.

mod gxx;
use gxx::{have_gxx, preprocess};
use mpno::backend::cpu::Cpu;
use mpno::backend::cuda::{
    COMMON, ContractGemms, DftStep, GemmShape, KERNEL_NAMES, KERNELS, forward_steps, full_source,
    gauss_gemm, inverse_steps, reduce_threads,
};
use mpno::backend::{
    Backend, ContractForm, CpFactors, Modes, Pointwise, SpectralForward, SpectralInverse,
    SpectralTransform,
};
use mpno::bounds::{ContractionSums, contraction_precision};
use mpno::fno::Params;
use mpno::fno::loss::{h1, rel_l2, rel_l2_coefficients};
use mpno::fno::optim::{Adam, OptimizerKind};
use mpno::precision::{Format, neighbours, round};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rustfft::FftPlanner;
use rustfft::num_complex::Complex32;
use std::ffi::c_void;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// f32 unit roundoff 2^-24.
const U32: f64 = f32::EPSILON as f64 / 2.0;

type P = *const c_void;
type M = *mut c_void;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rng(seed: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed)
}

// ---------------------------------------------------------------------------------------------
// Compiling, loading and launching

/// One kernel file built for the host and loaded.
struct Host {
    lib: libloading::Library,
    set: unsafe extern "C" fn(u32, u32, u32, u32),
}

fn compile(file: &str) -> Host {
    let dir = tempfile::tempdir().unwrap();
    let so = dir.path().join(format!("{file}.so"));
    let k = root().join("kernels");
    let out = Command::new("g++")
        .args(["-std=c++17", "-O2", "-ffp-contract=off", "-shared", "-fPIC"])
        .args(["-Wall", "-Wextra"])
        .arg("-include")
        .arg(k.join("host_shim.h"))
        .arg("-include")
        .arg(k.join("common.cuh"))
        .args(["-x", "c++"])
        .arg(k.join(format!("{file}.cu")))
        .arg("-o")
        .arg(&so)
        .output()
        .expect("run g++");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "g++ could not compile kernels/{file}.cu:\n{stderr}"
    );
    if !stderr.trim().is_empty() {
        eprintln!("g++ warnings on kernels/{file}.cu:\n{stderr}");
    }
    // SAFETY: our own freshly built library; loading runs no initialiser but the thread-local
    // launch geometry's.
    let lib = unsafe { libloading::Library::new(&so) }.expect("load the kernel library");
    // SAFETY: shim_set has this signature in kernels/host_shim.h.
    let set = unsafe {
        *lib.get::<unsafe extern "C" fn(u32, u32, u32, u32)>("shim_set")
            .expect("shim_set")
    };
    // The temporary directory goes now; the mapped library stays valid.
    Host { lib, set }
}

/// The compiled kernel file `file`, built once per test process; None (after saying so) when
/// there is no g++.
fn host(file: &str) -> Option<&'static Host> {
    static LIBS: [OnceLock<Host>; KERNELS.len()] = [const { OnceLock::new() }; KERNELS.len()];
    if !have_gxx() {
        return None;
    }
    let i = KERNELS
        .iter()
        .position(|(n, _)| *n == file)
        .unwrap_or_else(|| panic!("no kernel file {file}"));
    Some(LIBS[i].get_or_init(|| compile(file)))
}

impl Host {
    /// Kernel `name` as a function pointer of type `F`.
    ///
    /// # Safety
    /// `F` must be the kernel's C signature (see kernels/*.cu).
    unsafe fn get<F: Copy>(&self, name: &str) -> F {
        // SAFETY: forwarded to the caller; the library lives as long as the process.
        unsafe {
            *self
                .lib
                .get::<F>(name)
                .unwrap_or_else(|e| panic!("kernel {name}: {e}"))
        }
    }

    /// A serial 1-D launch for `work` items: blocks of 32 threads, a grid of all, a third or a
    /// seventh (but at least two) of the blocks the work needs, depending on `work`, so that
    /// the grid-stride loops take several turns with several blocks.
    fn launch(&self, work: u64, kernel: impl Fn()) {
        let block = 32u32;
        let full = work.div_ceil(block as u64).max(1);
        let part = match work % 3 {
            0 => full,
            1 => full.div_ceil(3),
            _ => full.div_ceil(7),
        };
        let grid = part.max(2).min(full) as u32;
        for b in 0..grid {
            for t in 0..block {
                // SAFETY: sets four thread-locals of the loaded library.
                unsafe { (self.set)(grid, block, b, t) };
                kernel();
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Storage types and buffers

#[derive(Clone, Copy, Debug, PartialEq)]
enum St {
    F32,
    F16,
    Bf16,
}

impl St {
    const ALL: [St; 3] = [St::F32, St::F16, St::Bf16];

    fn suffix(self) -> &'static str {
        match self {
            St::F32 => "f32",
            St::F16 => "f16",
            St::Bf16 => "bf16",
        }
    }

    fn format(self) -> Format {
        match self {
            St::F32 => Format::Fp32,
            St::F16 => Format::Fp16,
            St::Bf16 => Format::Bf16,
        }
    }

    /// `v` rounded to this format (as f32 values).
    fn round(self, v: &[f32]) -> Vec<f32> {
        v.iter()
            .map(|&x| round(x as f64, self.format()) as f32)
            .collect()
    }
}

/// A "device" buffer in one storage type.
#[derive(Clone, Debug)]
enum Buf {
    F32(Vec<f32>),
    F16(Vec<u16>),
    Bf16(Vec<u16>),
}

impl Buf {
    /// Values exactly representable in `st`.
    fn of(st: St, v: &[f32]) -> Buf {
        for &x in v {
            assert!(
                x.is_nan() || round(x as f64, st.format()) == x as f64,
                "{x} is not a {st:?} value"
            );
        }
        match st {
            St::F32 => Buf::F32(v.to_vec()),
            St::F16 => Buf::F16(
                v.iter()
                    .map(|&x| half::f16::from_f32(x).to_bits())
                    .collect(),
            ),
            St::Bf16 => Buf::Bf16(
                v.iter()
                    .map(|&x| half::bf16::from_f32(x).to_bits())
                    .collect(),
            ),
        }
    }

    /// n entries of a recognisable garbage value (so unwritten entries show).
    fn garbage(st: St, n: usize) -> Buf {
        match st {
            St::F32 => Buf::F32(vec![-1.2345e30; n]),
            St::F16 => Buf::F16(vec![0xfbff; n]),
            St::Bf16 => Buf::Bf16(vec![0xff00; n]),
        }
    }

    fn p(&self) -> P {
        match self {
            Buf::F32(v) => v.as_ptr() as P,
            Buf::F16(v) | Buf::Bf16(v) => v.as_ptr() as P,
        }
    }

    fn m(&mut self) -> M {
        match self {
            Buf::F32(v) => v.as_mut_ptr() as M,
            Buf::F16(v) | Buf::Bf16(v) => v.as_mut_ptr() as M,
        }
    }

    /// Values, widened exactly.
    fn vals(&self) -> Vec<f64> {
        match self {
            Buf::F32(v) => v.iter().map(|&x| x as f64).collect(),
            Buf::F16(v) => v
                .iter()
                .map(|&b| half::f16::from_bits(b).to_f64())
                .collect(),
            Buf::Bf16(v) => v
                .iter()
                .map(|&b| half::bf16::from_bits(b).to_f64())
                .collect(),
        }
    }
}

/// n values uniform in [lo, hi), with full f32 significands (drawn in f64 and rounded: an f32
/// draw lies on a fixed-point grid, on which sums and differences are often exact).
fn uniform(rng: &mut Xoshiro256PlusPlus, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n)
        .map(|_| rng.random_range(lo as f64..hi as f64) as f32)
        .collect()
}

fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

/// Bit-for-bit equality (NaN matches NaN).
fn assert_same(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(same(g, w), "{what}[{i}]: kernel {g:e}, reference {w:e}");
    }
}

/// `got`, stored in `fmt`, is a rounding of the f32 computation `want` whose error is at most
/// `tol`: one of the `fmt` neighbours of some value in [want - tol, want + tol] (for fp32 just
/// |got - want| <= tol). NaN must match NaN, infinities must match exactly or be the overflow
/// of such a value.
fn faithful(got: f64, want: f64, tol: f64, fmt: Format) -> bool {
    if got.is_nan() || want.is_nan() {
        return got.is_nan() && want.is_nan();
    }
    if got == want || got == round(want, fmt) {
        return true;
    }
    if !want.is_finite() {
        return false;
    }
    if got.is_infinite() {
        return got == round(want + tol, fmt) || got == round(want - tol, fmt);
    }
    let lo = neighbours(want - tol, fmt).0;
    let hi = neighbours(want + tol, fmt).1;
    lo <= got && got <= hi
}

fn assert_faithful(what: &str, got: &[f64], want: &[f64], tol: &[f64], fmt: Format) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let mut worst = 0.0f64;
    for i in 0..got.len() {
        assert!(
            faithful(got[i], want[i], tol[i], fmt),
            "{what}[{i}]: kernel {:e}, reference {:e} (tolerance {:e}, {fmt:?} storage)",
            got[i],
            want[i],
            tol[i]
        );
        if tol[i] > 0.0 && got[i].is_finite() && want[i].is_finite() {
            worst = worst.max((got[i] - want[i]).abs() / tol[i]);
        }
    }
    if fmt == Format::Fp32 {
        eprintln!(
            "{what}: {} values, worst error {worst:.3} of the tolerance",
            got.len()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Names

/// The `extern "C" __global__` functions of each file after preprocessing are exactly
/// `KERNEL_NAMES`, and each is exported by the host build.
#[test]
fn kernel_names_match_the_preprocessed_sources() {
    if !have_gxx() {
        return;
    }
    let k = root().join("kernels");
    for (file, names) in KERNEL_NAMES {
        let text = preprocess(&k, file);
        let toks: Vec<&str> = text
            .split(|c: char| c.is_whitespace() || c == '(')
            .filter(|t| !t.is_empty())
            .collect();
        let mut found: Vec<String> = toks
            .windows(5)
            .filter(|w| {
                w[0] == "extern" && w[1] == "\"C\"" && w[2] == "__global__" && w[3] == "void"
            })
            .map(|w| w[4].to_string())
            .collect();
        found.sort();
        let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(found, want, "kernels/{file}.cu vs KERNEL_NAMES");
        let h = host(file).unwrap();
        for name in *names {
            // SAFETY: only looks the symbol up.
            let f: *const c_void = unsafe { h.get(name) };
            assert!(!f.is_null());
        }
    }
    // The text NVRTC compiles is the common header, then the file.
    for (file, src) in KERNELS {
        assert_eq!(full_source(file).unwrap(), format!("{}\n{src}", COMMON));
    }
}

// ---------------------------------------------------------------------------------------------
// Conversions

/// f32 inputs for the rounding tests: a stride through all 2^32 bit patterns, random values over
/// the fp16 range, and ties and edges of fp16 and bf16.
fn conversion_inputs() -> Vec<f32> {
    let mut r = rng(11);
    let mut x: Vec<f32> = (0..1u64 << 32)
        .step_by(4099)
        .map(|b| f32::from_bits(b as u32))
        .collect();
    x.extend((0..1 << 16).map(|_| {
        let e = r.random_range(-27.0..17.0f64);
        let s = if r.random::<bool>() { 1.0 } else { -1.0 };
        (s * e.exp2()) as f32
    }));
    // Exact ties between neighbouring fp16 values, normal and subnormal.
    for k in (0..0x7bffu16).step_by(7) {
        let a = half::f16::from_bits(k).to_f64();
        let b = half::f16::from_bits(k + 1).to_f64();
        x.push(((a + b) / 2.0) as f32);
        x.push(-((a + b) / 2.0) as f32);
    }
    // Exact ties between neighbouring bf16 values, and their neighbours.
    for k in (0..0x7f7fu32).step_by(5) {
        let t = (k << 16) | 0x8000;
        x.extend([t, t - 1, t + 1, t | 0x8000_0000].map(f32::from_bits));
    }
    x.extend([
        65504.0,
        65519.99,
        65520.0,
        -65520.0,
        65536.0,
        0.0,
        -0.0,
        2.980_232_2e-8,
        2.980_232_6e-8,
        5.960_464_5e-8,
        -2.980_232_2e-8,
        6.097_555e-5,
        6.103_515_6e-5,
        f32::MIN_POSITIVE,
        1e-45,
        -1e-45,
        f32::MAX,
        -f32::MAX,
        f32::from_bits(0x7f7f_7fff),
        f32::from_bits(0x7f7f_8000),
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        -f32::NAN,
    ]);
    x
}

/// f32 -> fp16 / bf16 and every other conversion equal precision::round bit for bit.
#[test]
fn conversions_round_like_the_reference_bit_for_bit() {
    let Some(h) = host("convert") else { return };
    type Conv = unsafe extern "C" fn(P, M, u64);
    let x = conversion_inputs();
    let n = x.len();
    for (name, st) in [
        ("f32_to_f16", St::F16),
        ("convert_f32_f16", St::F16),
        ("convert_f32_bf16", St::Bf16),
    ] {
        // SAFETY: (const float*, unsigned short*, u64).
        let f: Conv = unsafe { h.get(name) };
        let mut y = Buf::garbage(st, n);
        let (xp, yp) = (x.as_ptr() as P, y.m());
        // SAFETY: x and y hold n values.
        h.launch(n as u64, || unsafe { f(xp, yp, n as u64) });
        let want: Vec<f64> = x.iter().map(|&v| round(v as f64, st.format())).collect();
        assert_same(name, &y.vals(), &want);
        eprintln!("{name}: {n} values bit-identical to precision::round");
    }
    // All 2^16 fp16 and bf16 bit patterns, widened and cross-converted.
    let all: Vec<u16> = (0..=u16::MAX).collect();
    let m = all.len();
    for (name, from, to) in [
        ("f16_to_f32", St::F16, St::F32),
        ("convert_f16_f32", St::F16, St::F32),
        ("convert_bf16_f32", St::Bf16, St::F32),
        ("convert_f16_bf16", St::F16, St::Bf16),
        ("convert_bf16_f16", St::Bf16, St::F16),
    ] {
        let src = match from {
            St::F16 => Buf::F16(all.clone()),
            _ => Buf::Bf16(all.clone()),
        };
        // SAFETY: (const unsigned short*, TB*, u64).
        let f: Conv = unsafe { h.get(name) };
        let mut y = Buf::garbage(to, m);
        let (xp, yp) = (src.p(), y.m());
        // SAFETY: both buffers hold m values.
        h.launch(m as u64, || unsafe { f(xp, yp, m as u64) });
        let want: Vec<f64> = src.vals().iter().map(|&v| round(v, to.format())).collect();
        assert_same(name, &y.vals(), &want);
        if let (Buf::F32(got), Buf::Bf16(bits)) = (&y, &src) {
            // Widening bf16 is the bit shift, NaN payloads included.
            for (g, b) in got.iter().zip(bits) {
                assert_eq!(g.to_bits(), (*b as u32) << 16);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Pointwise

const OPS: [(Pointwise, i32, f32, f32); 4] = [
    (Pointwise::Gelu, 0, 0.0, 0.0),
    (Pointwise::Tanh, 1, 0.0, 0.0),
    (Pointwise::Clip { lo: -0.5, hi: 0.75 }, 2, -0.5, 0.75),
    (Pointwise::Scale(1.7), 3, 1.7, 0.0),
];

/// Error allowance of the f32 forward map at x with result r: the reference's erf is within
/// 5e-7 and its tanh within 4e-7 absolute (src/fno/fastmath.rs), the kernel's erff / tanhf a few
/// ulp; clip and scale are one exact or one rounded operation in both.
fn forward_tol(op: Pointwise, x: f64, r: f64) -> f64 {
    match op {
        Pointwise::Gelu => 0.5 * x.abs() * 1.2e-6 + 4.0 * U32 * r.abs(),
        Pointwise::Tanh => 7e-7 + 4.0 * U32 * r.abs(),
        _ => 0.0,
    }
}

fn backward_tol(op: Pointwise, x: f64, g: f64, r: f64) -> f64 {
    match op {
        Pointwise::Gelu => {
            let phi = x.abs() * 0.4 * (-0.5 * x * x).exp();
            g.abs() * (0.6e-6 + 8.0 * U32 + phi * 8.0 * U32) + 4.0 * U32 * r.abs()
        }
        Pointwise::Tanh => g.abs() * (1.4e-6 + 4.0 * U32) + 4.0 * U32 * r.abs(),
        _ => 0.0,
    }
}

#[test]
fn pointwise_and_its_backward_match_the_cpu() {
    let Some(h) = host("pointwise") else { return };
    let cpu = Cpu::<f32>::new();
    for st in St::ALL {
        let fmt = st.format();
        let mut r = rng(21);
        let mut x = uniform(&mut r, 6000, -6.0, 6.0);
        let mut g = uniform(&mut r, 6000, -2.0, 2.0);
        x.extend([
            0.0,
            -0.0,
            1e-6,
            -1e-6,
            30.0,
            -30.0,
            f32::NAN,
            0.6,
            -0.9,
            2.0,
        ]);
        g.extend([
            1.0,
            -1.0,
            1.0,
            1.0,
            f32::INFINITY,
            f32::NAN,
            1.0,
            f32::NAN,
            2.0,
            0.0,
        ]);
        let (x, g) = (st.round(&x), st.round(&g));
        let n = x.len();
        let (xb, gb) = (Buf::of(st, &x), Buf::of(st, &g));
        let xt = cpu.upload(&[n], &x, Format::Fp32);
        let gt = cpu.upload(&[n], &g, Format::Fp32);
        let (xs, gs) = (cpu.upload(&[n], &x, fmt), cpu.upload(&[n], &g, fmt));
        let sfx = st.suffix();
        // SAFETY: the signatures of pointwise.cu.
        let fwd: unsafe extern "C" fn(P, M, u64, i32, f32, f32) =
            unsafe { h.get(&format!("pointwise_{sfx}")) };
        // SAFETY: as above.
        let bwd: unsafe extern "C" fn(P, P, M, u64, i32, f32, f32) =
            unsafe { h.get(&format!("pointwise_backward_{sfx}")) };
        for (op, code, a, b) in OPS {
            let (xp, gp) = (xb.p(), gb.p());
            let mut y = Buf::garbage(st, n);
            let yp = y.m();
            // SAFETY: x, y hold n values.
            h.launch(n as u64, || unsafe { fwd(xp, yp, n as u64, code, a, b) });
            let want: Vec<f64> = cpu
                .download(&cpu.pointwise(op, &xt))
                .iter()
                .map(|&v| v as f64)
                .collect();
            let tol: Vec<f64> = (0..n)
                .map(|i| forward_tol(op, x[i] as f64, want[i]))
                .collect();
            let what = format!("pointwise_{sfx} {op:?}");
            assert_faithful(&what, &y.vals(), &want, &tol, fmt);
            if matches!(op, Pointwise::Clip { .. } | Pointwise::Scale(_)) {
                let exact: Vec<f64> = cpu
                    .download(&cpu.pointwise(op, &xs))
                    .iter()
                    .map(|&v| v as f64)
                    .collect();
                assert_same(&what, &y.vals(), &exact);
            }

            let mut y = Buf::garbage(st, n);
            let yp = y.m();
            // SAFETY: x, g, y hold n values.
            h.launch(n as u64, || unsafe {
                bwd(xp, gp, yp, n as u64, code, a, b)
            });
            let want: Vec<f64> = cpu
                .download(&cpu.pointwise_backward(op, &xt, &gt))
                .iter()
                .map(|&v| v as f64)
                .collect();
            let tol: Vec<f64> = (0..n)
                .map(|i| backward_tol(op, x[i] as f64, g[i] as f64, want[i]))
                .collect();
            let what = format!("pointwise_backward_{sfx} {op:?}");
            assert_faithful(&what, &y.vals(), &want, &tol, fmt);
            if matches!(op, Pointwise::Clip { .. } | Pointwise::Scale(_)) {
                let exact: Vec<f64> = cpu
                    .download(&cpu.pointwise_backward(op, &xs, &gs))
                    .iter()
                    .map(|&v| v as f64)
                    .collect();
                assert_same(&what, &y.vals(), &exact);
            }
        }
    }
}

/// The fused kernels against the kernels they replace, launched one after the other on the same
/// inputs, bit for bit (those kernels are checked against the CPU above and below; the channel
/// sums too: the serial launch adds the chunks in the same order in both): every activation,
/// every combination of terms, every storage type, rows that are not a multiple of CHUNK.
#[test]
fn fused_kernels_equal_the_kernels_they_replace() {
    let (Some(h), Some(hc)) = (host("pointwise"), host("channels")) else {
        return;
    };
    let (batch, c, p) = (3usize, 5usize, 300usize);
    let n = batch * c * p;
    let (n64, c64, p64, b64) = (n as u64, c as u64, p as u64, batch as u64);
    let threads = (batch * c * reduce_threads(p)) as u64;
    for st in St::ALL {
        let sfx = st.suffix();
        let mut r = rng(41);
        let draw =
            |r: &mut Xoshiro256PlusPlus, lo, hi| Buf::of(st, &st.round(&uniform(r, n, lo, hi)));
        let (x, s, g, a0, a1) = (
            draw(&mut r, -4.0, 4.0),
            draw(&mut r, -4.0, 4.0),
            draw(&mut r, -2.0, 2.0),
            draw(&mut r, -2.0, 2.0),
            draw(&mut r, -2.0, 2.0),
        );
        let bias = Buf::of(St::F32, &st.round(&uniform(&mut r, c, -1.0, 1.0)));
        // SAFETY: the signatures of pointwise.cu and channels.cu.
        let (add_act, bwd_add, bwd_sum, fwd, bwd, add, add_bias, channel_sum) = unsafe {
            (
                h.get::<unsafe extern "C" fn(P, P, P, M, M, u64, u64, u64, i32, i32, f32, f32)>(
                    &format!("add_act_{sfx}"),
                ),
                h.get::<unsafe extern "C" fn(P, P, P, P, M, u64, i32, i32, f32, f32)>(&format!(
                    "pointwise_backward_add_{sfx}"
                )),
                h.get::<unsafe extern "C" fn(P, P, M, *mut f32, u64, u64, u64, i32, f32, f32)>(
                    &format!("pointwise_backward_channel_sum_{sfx}"),
                ),
                h.get::<unsafe extern "C" fn(P, M, u64, i32, f32, f32)>(&format!(
                    "pointwise_{sfx}"
                )),
                h.get::<unsafe extern "C" fn(P, P, M, u64, i32, f32, f32)>(&format!(
                    "pointwise_backward_{sfx}"
                )),
                h.get::<unsafe extern "C" fn(P, P, M, u64)>(&format!("add_{sfx}")),
                hc.get::<unsafe extern "C" fn(P, P, M, u64, u64, u64)>(&format!("add_bias_{sfx}")),
                hc.get::<unsafe extern "C" fn(P, *mut f32, u64, u64, u64)>(&format!(
                    "channel_sum_{sfx}"
                )),
            )
        };
        // One launch of a kernel of library `lib` (each library has its own launch geometry).
        let run_in = |lib: &Host, f: &dyn Fn(M)| {
            let mut y = Buf::garbage(st, n);
            let yp = y.m();
            lib.launch(n64, || f(yp));
            y
        };
        let run1 = |f: &dyn Fn(M)| run_in(h, f);
        for (op, code, pa, pb) in OPS {
            for flags in 0..4 {
                let (mut u, mut v) = (Buf::garbage(st, n), Buf::garbage(st, n));
                let (up, vp) = (u.m(), v.m());
                // SAFETY: every buffer holds n values (bias c); absent terms are not read.
                h.launch(n64, || unsafe {
                    add_act(
                        x.p(),
                        bias.p(),
                        s.p(),
                        up,
                        vp,
                        n64,
                        c64,
                        p64,
                        flags,
                        code,
                        pa,
                        pb,
                    )
                });
                // The ops: add_bias, add, pointwise.
                let mut t = x.clone();
                if flags & 1 != 0 {
                    let tp = t.p();
                    // SAFETY: as above.
                    t = run_in(hc, &|y| unsafe { add_bias(tp, bias.p(), y, n64, c64, p64) });
                }
                if flags & 2 != 0 {
                    let tp = t.p();
                    // SAFETY: as above.
                    t = run1(&|y| unsafe { add(tp, s.p(), y, n64) });
                }
                let tp = t.p();
                // SAFETY: as above.
                let tv = run1(&|y| unsafe { fwd(tp, y, n64, code, pa, pb) });
                let what = format!("add_act_{sfx} {op:?} flags {flags}");
                assert_same(&what, &u.vals(), &t.vals());
                assert_same(&what, &v.vals(), &tv.vals());
            }
            for nadds in 0..3 {
                // SAFETY: as above.
                let y = run1(&|y| unsafe {
                    bwd_add(x.p(), g.p(), a0.p(), a1.p(), y, n64, nadds, code, pa, pb)
                });
                // SAFETY: as above.
                let mut t = run1(&|y| unsafe { bwd(x.p(), g.p(), y, n64, code, pa, pb) });
                for a in [&a0, &a1].into_iter().take(nadds as usize) {
                    let tp = t.p();
                    // SAFETY: as above.
                    t = run1(&|y| unsafe { add(tp, a.p(), y, n64) });
                }
                let what = format!("pointwise_backward_add_{sfx} {op:?} {nadds} addends");
                assert_same(&what, &y.vals(), &t.vals());
            }
            let (mut y, mut sums) = (Buf::garbage(st, n), vec![0.0f32; c]);
            let (yp, sp) = (y.m(), sums.as_mut_ptr());
            // SAFETY: x, g, y hold n values, sums c.
            h.launch(threads, || unsafe {
                bwd_sum(x.p(), g.p(), yp, sp, b64, c64, p64, code, pa, pb)
            });
            // SAFETY: as above.
            let t = run1(&|y| unsafe { bwd(x.p(), g.p(), y, n64, code, pa, pb) });
            let mut want = vec![0.0f32; c];
            let (tp, wp) = (t.p(), want.as_mut_ptr());
            // SAFETY: t holds n values, want c.
            hc.launch(threads, || unsafe { channel_sum(tp, wp, b64, c64, p64) });
            let what = format!("pointwise_backward_channel_sum_{sfx} {op:?}");
            assert_same(&what, &y.vals(), &t.vals());
            let f = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
            assert_same(&what, &f(&sums), &f(&want));
        }
    }
}

#[test]
fn add_count_nonfinite_and_mean_std_match_the_cpu() {
    let Some(h) = host("pointwise") else { return };
    let cpu = Cpu::<f32>::new();
    for st in St::ALL {
        let fmt = st.format();
        let sfx = st.suffix();
        let mut r = rng(31);
        let n = 50_021;
        let mut a = uniform(&mut r, n, -100.0, 100.0);
        let mut b = uniform(&mut r, n, -100.0, 100.0);
        a[5] = f32::INFINITY;
        b[6] = f32::NAN;
        a[7] = 60000.0;
        b[7] = 60000.0; // overflows fp16
        let (a, b) = (st.round(&a), st.round(&b));
        let (ab, bb) = (Buf::of(st, &a), Buf::of(st, &b));
        // SAFETY: the signatures of pointwise.cu.
        let add: unsafe extern "C" fn(P, P, M, u64) = unsafe { h.get(&format!("add_{sfx}")) };
        let mut y = Buf::garbage(st, n);
        let (ap, bp, yp) = (ab.p(), bb.p(), y.m());
        // SAFETY: a, b, y hold n values.
        h.launch(n as u64, || unsafe { add(ap, bp, yp, n as u64) });
        let want: Vec<f64> = cpu
            .download(&cpu.add(&cpu.upload(&[n], &a, fmt), &cpu.upload(&[n], &b, fmt)))
            .iter()
            .map(|&v| v as f64)
            .collect();
        assert_same(&format!("add_{sfx}"), &y.vals(), &want);

        // count_nonfinite: the inf/NaN of a + b and of the inputs.
        // SAFETY: (const T*, u64, unsigned int*).
        let count: unsafe extern "C" fn(P, u64, *mut u32) =
            unsafe { h.get(&format!("count_nonfinite_{sfx}")) };
        for (v, buf) in [(&want, &y), (&a.iter().map(|&v| v as f64).collect(), &ab)] {
            let mut c = 0u32;
            let (vp, cp) = (buf.p(), &mut c as *mut u32);
            // SAFETY: the buffer holds n values; c is one counter.
            h.launch(reduce_threads(n) as u64, || unsafe {
                count(vp, n as u64, cp)
            });
            let bad = v.iter().filter(|x| !x.is_finite()).count() as u32;
            assert_eq!(c, bad, "count_nonfinite_{sfx}");
            let t = cpu.upload(&[n], &v.iter().map(|&x| x as f32).collect::<Vec<_>>(), fmt);
            assert_eq!(c == 0, cpu.all_finite(&t));
        }
        let mut c = 0u32;
        let fin = Buf::of(st, &st.round(&uniform(&mut r, 999, -1.0, 1.0)));
        let (fp, cp) = (fin.p(), &mut c as *mut u32);
        // SAFETY: 999 values, one counter.
        h.launch(4, || unsafe { count(fp, 999, cp) });
        assert_eq!(c, 0);

        // mean_std: two passes (enough values for several blocks of chunks).
        let x = st.round(&uniform(&mut r, n, -3.0, 5.0));
        let xb = Buf::of(st, &x);
        // SAFETY: the signatures of pointwise.cu.
        let sum: unsafe extern "C" fn(P, u64, *mut f64) = unsafe { h.get(&format!("sum_{sfx}")) };
        // SAFETY: as above.
        let sq: unsafe extern "C" fn(P, u64, f64, *mut f64) =
            unsafe { h.get(&format!("sum_sq_dev_{sfx}")) };
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        let (xp, s1p) = (xb.p(), &mut s1 as *mut f64);
        // SAFETY: n values, one accumulator.
        h.launch(reduce_threads(n) as u64, || unsafe {
            sum(xp, n as u64, s1p)
        });
        let mean = s1 / n as f64;
        let s2p = &mut s2 as *mut f64;
        // SAFETY: n values, one accumulator.
        h.launch(reduce_threads(n) as u64, || unsafe {
            sq(xp, n as u64, mean, s2p)
        });
        let std = (s2 / n as f64).sqrt();
        let (m_ref, s_ref) = cpu.mean_std(&cpu.upload(&[n], &x, fmt));
        let abs: f64 = x.iter().map(|v| v.abs() as f64).sum::<f64>() / n as f64;
        let tol = 4.0 * n as f64 * f64::EPSILON;
        assert!(
            (mean - m_ref).abs() <= tol * abs,
            "mean_{sfx}: {mean} vs {m_ref}"
        );
        assert!(
            (std - s_ref).abs() <= tol * (abs + s_ref),
            "std_{sfx}: {std} vs {s_ref}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Channels

#[test]
fn channel_kernels_match_the_cpu() {
    let Some(h) = host("channels") else { return };
    let cpu = Cpu::<f32>::new();
    for st in St::ALL {
        let fmt = st.format();
        let sfx = st.suffix();
        // SAFETY (all five): the signatures of channels.cu.
        let add_bias: unsafe extern "C" fn(P, *const f32, M, u64, u64, u64) =
            unsafe { h.get(&format!("add_bias_{sfx}")) };
        // SAFETY: as above.
        let scale: unsafe extern "C" fn(P, *const f32, M, u64, u64, u64) =
            unsafe { h.get(&format!("scale_channels_{sfx}")) };
        // SAFETY: as above.
        let dot: unsafe extern "C" fn(P, P, *mut f32, u64, u64, u64) =
            unsafe { h.get(&format!("channel_dot_{sfx}")) };
        // SAFETY: as above.
        let csum: unsafe extern "C" fn(P, *mut f32, u64, u64, u64) =
            unsafe { h.get(&format!("channel_sum_{sfx}")) };
        // SAFETY: as above.
        let copy: unsafe extern "C" fn(P, M, u64, u64, u64, u64, u64, u64, u64) =
            unsafe { h.get(&format!("copy_channels_{sfx}")) };
        // 9000 points: two warp segments of 32 x 256 values, the second partial.
        for (batch, c, p) in [
            (3usize, 5usize, 300usize),
            (2, 4, 7),
            (1, 3, 513),
            (1, 2, 9000),
        ] {
            let n = batch * c * p;
            let shape = [batch, c, p];
            let mut r = rng(41 + p as u64);
            let x = st.round(&uniform(&mut r, n, -4.0, 4.0));
            let g = st.round(&uniform(&mut r, n, -4.0, 4.0));
            let w = st.round(&uniform(&mut r, c, -2.0, 2.0));
            let (xb, gb) = (Buf::of(st, &x), Buf::of(st, &g));
            let (xs, ws) = (cpu.upload(&shape, &x, fmt), cpu.upload(&[c], &w, fmt));
            let (nn, cc, pp) = (n as u64, c as u64, p as u64);
            let xp = xb.p();
            let gp = gb.p();
            let wp = w.as_ptr();
            let f32s = |t: &Vec<f32>| t.iter().map(|&v| v as f64).collect::<Vec<f64>>();

            // One float operation per element in both: bit for bit.
            let mut y = Buf::garbage(st, n);
            let yp = y.m();
            // SAFETY: x, y hold n values, bias c.
            h.launch(nn, || unsafe { add_bias(xp, wp, yp, nn, cc, pp) });
            assert_same(
                &format!("add_bias_{sfx}"),
                &y.vals(),
                &f32s(&cpu.download(&cpu.add_bias(&xs, &ws))),
            );
            let mut y = Buf::garbage(st, n);
            let yp = y.m();
            // SAFETY: as above.
            h.launch(nn, || unsafe { scale(xp, wp, yp, nn, cc, pp) });
            assert_same(
                &format!("scale_channels_{sfx}"),
                &y.vals(),
                &f32s(&cpu.download(&cpu.scale_channels(&xs, &ws))),
            );

            // Reductions in float: the CPU sums rows in order, the kernel per reduction thread and
            // atomics; both within (terms) * u * sum |terms| of the exact sum.
            let (x32, w32, g32) = (
                cpu.upload(&shape, &x, Format::Fp32),
                cpu.upload(&[c], &w, Format::Fp32),
                cpu.upload(&shape, &g, Format::Fp32),
            );
            let (_, gw) = cpu.scale_channels_backward(&x32, &w32, &g32);
            let gw = cpu.download(&gw);
            let sums = cpu.download(&cpu.channel_sum(&g32));
            let mut d = vec![0.0f32; c];
            let mut s = vec![0.0f32; c];
            let (dp, sp) = (d.as_mut_ptr(), s.as_mut_ptr());
            let chunks = (batch * c * reduce_threads(p)) as u64;
            // SAFETY: g, x hold n values; d, s hold c.
            h.launch(chunks, || unsafe { dot(gp, xp, dp, batch as u64, cc, pp) });
            // SAFETY: as above.
            h.launch(chunks, || unsafe { csum(gp, sp, batch as u64, cc, pp) });
            let terms = (batch * p) as f64;
            for ch in 0..c {
                let (mut ab, mut a1) = (0.0, 0.0);
                for bb in 0..batch {
                    for q in 0..p {
                        let i = (bb * c + ch) * p + q;
                        ab += (g[i] as f64 * x[i] as f64).abs();
                        a1 += (g[i] as f64).abs();
                    }
                }
                let tol_d = 2.0 * (terms + 1.0) * U32 * ab;
                let tol_s = 2.0 * terms * U32 * a1;
                assert!(
                    (d[ch] as f64 - gw[ch] as f64).abs() <= tol_d,
                    "channel_dot_{sfx}[{ch}]: {} vs {}",
                    d[ch],
                    gw[ch]
                );
                assert!(
                    (s[ch] as f64 - sums[ch] as f64).abs() <= tol_s,
                    "channel_sum_{sfx}[{ch}]: {} vs {}",
                    s[ch],
                    sums[ch]
                );
            }

            // concat = two copies, slice = one: bit for bit.
            let cb = 2;
            let bvals = st.round(&uniform(&mut r, batch * cb * p, -1.0, 1.0));
            let bbuf = Buf::of(st, &bvals);
            let bt = cpu.upload(&[batch, cb, p], &bvals, fmt);
            let ct = c + cb;
            let mut out = Buf::garbage(st, batch * ct * p);
            let (op, bp) = (out.m(), bbuf.p());
            let bq = batch as u64;
            // SAFETY: x (batch, c, p), b (batch, cb, p), out (batch, c + cb, p).
            h.launch(nn, || unsafe {
                copy(xp, op, bq, cc, 0, ct as u64, 0, cc, pp)
            });
            let work = (batch * cb * p) as u64;
            // SAFETY: as above.
            h.launch(work, || unsafe {
                copy(bp, op, bq, cb as u64, 0, ct as u64, cc, cb as u64, pp)
            });
            assert_same(
                &format!("concat (copy_channels_{sfx})"),
                &out.vals(),
                &f32s(&cpu.download(&cpu.concat_channels(&xs, &bt))),
            );
            let (lo, hi) = (1usize, c - 1);
            let cnt = (hi - lo) as u64;
            let mut out = Buf::garbage(st, batch * (hi - lo) * p);
            let op = out.m();
            // SAFETY: x (batch, c, p), out (batch, hi - lo, p).
            h.launch(bq * cnt * pp, || unsafe {
                copy(xp, op, bq, cc, lo as u64, cnt, 0, cnt, pp)
            });
            assert_same(
                &format!("slice (copy_channels_{sfx})"),
                &out.vals(),
                &f32s(&cpu.download(&cpu.slice_channels(&xs, lo, hi))),
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Spectral gather / scatter

/// Sizes of the kernels' view of a grid and its modes.
#[derive(Clone, Copy, Debug)]
struct Geo {
    n0: usize,
    n1: usize,
    nl: usize,
    nh: usize,
    m0: usize,
    m1: usize,
    ml: usize,
    k0: usize,
    k1: usize,
}

impl Geo {
    fn new(grid: &[usize], modes: &[usize]) -> Geo {
        let d = grid.len();
        let (n0, m0) = if d >= 2 { (grid[0], modes[0]) } else { (1, 0) };
        let (n1, m1) = if d == 3 { (grid[1], modes[1]) } else { (1, 0) };
        let nl = grid[d - 1];
        Geo {
            n0,
            n1,
            nl,
            nh: nl / 2 + 1,
            m0,
            m1,
            ml: modes[d - 1],
            k0: if m0 > 0 { 2 * m0 } else { 1 },
            k1: if m1 > 0 { 2 * m1 } else { 1 },
        }
    }
    fn lead(&self) -> usize {
        self.n0 * self.n1
    }
}

fn kept_to_grid(j: usize, m: usize, n: usize) -> usize {
    if m == 0 || j < m { j } else { n - 2 * m + j }
}

fn herm(k: usize, nl: usize) -> f32 {
    if k == 0 || 2 * k == nl { 1.0 } else { 2.0 }
}

type FwdLast = unsafe extern "C" fn(P, M, u64, u64, u64, u64);
type Lead = unsafe extern "C" fn(P, M, u64, u64, u64, u64, u64, u64, u64, f32, i32);
type InvLast = unsafe extern "C" fn(P, M, u64, u64, u64, u64, u64);

struct Spectral {
    h: &'static Host,
    fwd_last: FwdLast,
    fwd_lead: Lead,
    inv_lead: Lead,
    inv_last: InvLast,
}

impl Spectral {
    fn new(h: &'static Host, st: St) -> Spectral {
        let s = st.suffix();
        // SAFETY: the signatures of spectral.cu.
        unsafe {
            Spectral {
                h,
                fwd_last: h.get(&format!("fwd_last_{s}")),
                fwd_lead: h.get(&format!("fwd_lead_{s}")),
                inv_lead: h.get(&format!("inv_lead_{s}")),
                inv_last: h.get(&format!("inv_last_{s}")),
            }
        }
    }

    fn fwd_last(&self, st: St, r2c: &Buf, bc: usize, g: Geo) -> Buf {
        let mut out = Buf::garbage(st, 2 * bc * g.ml * g.lead());
        let (ip, op) = (r2c.p(), out.m());
        let f = self.fwd_last;
        let (bc, lead, nh, ml) = (bc as u64, g.lead() as u64, g.nh as u64, g.ml as u64);
        // SAFETY: r2c is [bc][lead][nh], out [bc][ml][lead], complex.
        self.h
            .launch(bc * ml * lead, || unsafe { f(ip, op, bc, lead, nh, ml) });
        out
    }

    fn fwd_lead(&self, st: St, full: &Buf, bc: usize, g: Geo, scale: f32, herm: bool) -> Buf {
        // full is [bc][ml][n0][n1], the output [bc][k0][k1][ml].
        let n = bc * g.k0 * g.k1 * g.ml;
        self.lead(self.fwd_lead, st, full, n, bc, g, scale, herm)
    }

    fn inv_lead(&self, st: St, kept: &Buf, bc: usize, g: Geo, scale: f32, herm: bool) -> Buf {
        // kept is [bc][k0][k1][ml], the output [bc][ml][n0][n1].
        let n = bc * g.ml * g.lead();
        self.lead(self.inv_lead, st, kept, n, bc, g, scale, herm)
    }

    /// `fwd_lead` or `inv_lead` (one signature) from `src` into a new buffer of `n` complex
    /// values, one thread per output value.
    #[allow(clippy::too_many_arguments)]
    fn lead(
        &self,
        f: Lead,
        st: St,
        src: &Buf,
        n: usize,
        bc: usize,
        g: Geo,
        scale: f32,
        herm: bool,
    ) -> Buf {
        let mut out = Buf::garbage(st, 2 * n);
        let (ip, op) = (src.p(), out.m());
        let a = [bc, g.n0, g.n1, g.m0, g.m1, g.ml, g.nl].map(|v| v as u64);
        // SAFETY: src and out have the sizes the kernel reads and writes for these sizes.
        self.h.launch(n as u64, || unsafe {
            f(
                ip,
                op,
                a[0],
                a[1],
                a[2],
                a[3],
                a[4],
                a[5],
                a[6],
                scale,
                herm as i32,
            )
        });
        out
    }

    fn inv_last(&self, st: St, full: &Buf, bc: usize, g: Geo) -> Buf {
        let mut out = Buf::garbage(st, 2 * bc * g.lead() * g.nh);
        let (ip, op) = (full.p(), out.m());
        let f = self.inv_last;
        let a = [bc, g.lead(), g.nh, g.ml, g.nl].map(|v| v as u64);
        // SAFETY: full is [bc][ml][lead], out [bc][lead][nh], complex.
        self.h.launch(a[0] * a[1] * a[2], || unsafe {
            f(ip, op, a[0], a[1], a[2], a[3], a[4])
        });
        out
    }
}

/// In-place complex FFTs (unnormalised) over the leading axes of `[batch][n0][n1]` arrays;
/// `axis_order` 0-then-1 or 1-then-0 as the CPU reference does for each direction.
fn fft_lead(
    data: &mut [Complex32],
    batch: usize,
    g: Geo,
    inverse: bool,
    planner: &mut FftPlanner<f32>,
) {
    let plan = |n: usize, p: &mut FftPlanner<f32>| {
        if inverse {
            p.plan_fft_inverse(n)
        } else {
            p.plan_fft_forward(n)
        }
    };
    let (n0, n1) = (g.n0, g.n1);
    let along1 = |data: &mut [Complex32], p: &mut FftPlanner<f32>| {
        if n1 > 1 {
            let f = plan(n1, p);
            for row in data.chunks_mut(n1) {
                f.process(row);
            }
        }
    };
    let along0 = |data: &mut [Complex32], p: &mut FftPlanner<f32>| {
        if n0 > 1 {
            let f = plan(n0, p);
            let mut line = vec![Complex32::new(0.0, 0.0); n0];
            for b in 0..batch {
                for j1 in 0..n1 {
                    for j0 in 0..n0 {
                        line[j0] = data[(b * n0 + j0) * n1 + j1];
                    }
                    f.process(&mut line);
                    for j0 in 0..n0 {
                        data[(b * n0 + j0) * n1 + j1] = line[j0];
                    }
                }
            }
        }
    };
    // The CPU reference: forward from the last leading axis to the first, inverse the other way.
    if inverse {
        along0(data, planner);
        along1(data, planner);
    } else {
        along1(data, planner);
        along0(data, planner);
    }
}

fn to_c(v: &[f64]) -> Vec<Complex32> {
    v.chunks_exact(2)
        .map(|p| Complex32::new(p[0] as f32, p[1] as f32))
        .collect()
}

fn from_c(v: &[Complex32]) -> Vec<f32> {
    v.iter().flat_map(|c| [c.re, c.im]).collect()
}

const SPECTRAL_CASES: &[(&[usize], &[usize])] = &[
    (&[16], &[5]),
    (&[15], &[8]),
    (&[16], &[9]),
    (&[12, 10], &[3, 6]),
    (&[9, 7], &[4, 2]),
    (&[6, 5, 8], &[2, 2, 5]),
    (&[4, 6, 7], &[1, 3, 2]),
    (&[5, 4, 6], &[2, 1, 4]),
];

/// R2C -> fwd_last -> C2C -> fwd_lead, with the FFTs done by rustfft in f32, equals
/// Cpu::<f32>::rfft_modes; inv_lead -> C2C^-1 -> inv_last -> C2R equals irfft_modes. Both
/// `hermitian` values, d = 1, 2, 3, odd sizes, ml = nh.
#[test]
fn spectral_pipeline_reproduces_rfft_and_irfft_modes() {
    let Some(h) = host("spectral") else { return };
    let cpu = Cpu::<f32>::new();
    let k = Spectral::new(h, St::F32);
    let mut planner = FftPlanner::<f32>::new();
    let (batch, ch) = (2usize, 3usize);
    let bc = batch * ch;
    for (case, &(grid, modes)) in SPECTRAL_CASES.iter().enumerate() {
        let g = Geo::new(grid, modes);
        let npts: usize = grid.iter().product();
        let lead = g.lead();
        let mut shape = vec![batch, ch];
        shape.extend_from_slice(grid);
        let logn = (npts as f64).log2() + 2.0;
        for (hermitian, scale) in [(false, 1.0f32), (true, 1.0 / npts as f32), (true, 0.75)] {
            let mut r = rng(51 + case as u64);
            // ---- forward ----
            let x = uniform(&mut r, bc * npts, -1.0, 1.0);
            let mut r2c = Vec::with_capacity(2 * bc * lead * g.nh);
            let fl = planner.plan_fft_forward(g.nl);
            for row in x.chunks(g.nl) {
                let mut line: Vec<Complex32> =
                    row.iter().map(|&v| Complex32::new(v, 0.0)).collect();
                fl.process(&mut line);
                r2c.extend(from_c(&line[..g.nh]));
            }
            let t = k.fwd_last(St::F32, &Buf::F32(r2c), bc, g);
            let mut full = to_c(&t.vals());
            fft_lead(&mut full, bc * g.ml, g, false, &mut planner);
            let kept = k.fwd_lead(St::F32, &Buf::F32(from_c(&full)), bc, g, scale, hermitian);
            let opt = SpectralForward {
                transform: mpno::backend::SpectralTransform::Fft,
                scale: scale as f64,
                hermitian,
                format: Format::Fp32,
            };
            let want: Vec<f64> = cpu
                .download_complex(&cpu.rfft_modes(
                    &cpu.upload(&shape, &x, Format::Fp32),
                    &Modes(modes.to_vec()),
                    opt,
                ))
                .iter()
                .map(|&v| v as f64)
                .collect();
            let per = 2 * g.k0 * g.k1 * g.ml;
            let tol: Vec<f64> = (0..want.len())
                .map(|i| {
                    let b = i / per;
                    let abs: f64 = x[b * npts..(b + 1) * npts]
                        .iter()
                        .map(|v| v.abs() as f64)
                        .sum();
                    8.0 * logn * U32 * 2.0 * scale as f64 * abs
                })
                .collect();
            let what = format!("rfft_modes {grid:?} {modes:?} hermitian={hermitian} scale={scale}");
            assert_faithful(&what, &kept.vals(), &want, &tol, Format::Fp32);

            // ---- inverse ----
            let nk = g.k0 * g.k1 * g.ml;
            let xk = uniform(&mut r, 2 * bc * nk, -1.0, 1.0);
            let full = k.inv_lead(St::F32, &Buf::F32(xk.clone()), bc, g, scale, hermitian);
            let mut full = to_c(&full.vals());
            fft_lead(&mut full, bc * g.ml, g, true, &mut planner);
            let c2r = to_c(&k.inv_last(St::F32, &Buf::F32(from_c(&full)), bc, g).vals());
            let il = planner.plan_fft_inverse(g.nl);
            let mut y = Vec::with_capacity(bc * npts);
            for row in c2r.chunks(g.nh) {
                // The C2R: Hermitian completion of the half spectrum, inverse FFT, real part.
                let mut line: Vec<Complex32> = (0..g.nl)
                    .map(|kk| {
                        if kk < g.nh {
                            row[kk]
                        } else {
                            row[g.nl - kk].conj()
                        }
                    })
                    .collect();
                il.process(&mut line);
                y.extend(line.iter().map(|c| c.re as f64));
            }
            let mut kshape = vec![batch, ch];
            kshape.extend(Modes(modes.to_vec()).kept_shape());
            let opt = SpectralInverse {
                transform: mpno::backend::SpectralTransform::Fft,
                scale: scale as f64,
                hermitian,
                format: Format::Fp32,
            };
            let want: Vec<f64> = cpu
                .download(&cpu.irfft_modes(
                    &cpu.upload_complex(&kshape, &xk, Format::Fp32),
                    grid,
                    opt,
                ))
                .iter()
                .map(|&v| v as f64)
                .collect();
            let tol: Vec<f64> = (0..want.len())
                .map(|i| {
                    let b = i / npts;
                    let abs: f64 = xk[2 * b * nk..2 * (b + 1) * nk]
                        .iter()
                        .map(|v| v.abs() as f64)
                        .sum();
                    8.0 * logn * U32 * 2.0 * scale as f64 * abs
                })
                .collect();
            let what =
                format!("irfft_modes {grid:?} {modes:?} hermitian={hermitian} scale={scale}");
            assert_faithful(&what, &y, &want, &tol, Format::Fp32);
        }
    }
}

/// Each spectral kernel, every storage type, against its index formula (copies bit for bit,
/// scalings as the kernel's float operations rounded once).
#[test]
fn spectral_kernels_follow_their_index_formulas_for_every_storage() {
    let Some(h) = host("spectral") else { return };
    let bc = 3usize;
    for st in St::ALL {
        let fmt = st.format();
        let k = Spectral::new(h, st);
        for (case, &(grid, modes)) in SPECTRAL_CASES.iter().enumerate() {
            let g = Geo::new(grid, modes);
            let lead = g.lead();
            let mut r = rng(61 + case as u64);
            let rnd = |r: &mut Xoshiro256PlusPlus, n: usize| st.round(&uniform(r, n, -3.0, 3.0));
            let q = |v: f32| round(v as f64, fmt);
            let (scale, hermitian) = (0.3f32, case % 2 == 0);

            let r2c = rnd(&mut r, 2 * bc * lead * g.nh);
            let got = k.fwd_last(st, &Buf::of(st, &r2c), bc, g).vals();
            let mut want = vec![0.0; got.len()];
            for b in 0..bc {
                for kk in 0..g.ml {
                    for l in 0..lead {
                        let (o, i) = ((b * g.ml + kk) * lead + l, (b * lead + l) * g.nh + kk);
                        want[2 * o] = r2c[2 * i] as f64;
                        want[2 * o + 1] = r2c[2 * i + 1] as f64;
                    }
                }
            }
            assert_same(&format!("fwd_last_{} {grid:?}", st.suffix()), &got, &want);

            let full = rnd(&mut r, 2 * bc * g.ml * lead);
            for herm_flag in [false, true] {
                let got = k
                    .fwd_lead(st, &Buf::of(st, &full), bc, g, scale, herm_flag)
                    .vals();
                let mut want = vec![0.0; got.len()];
                for b in 0..bc {
                    for j0 in 0..g.k0 {
                        for j1 in 0..g.k1 {
                            for kk in 0..g.ml {
                                let o = ((b * g.k0 + j0) * g.k1 + j1) * g.ml + kk;
                                let i = ((b * g.ml + kk) * g.n0 + kept_to_grid(j0, g.m0, g.n0))
                                    * g.n1
                                    + kept_to_grid(j1, g.m1, g.n1);
                                let w = if herm_flag { herm(kk, g.nl) } else { 1.0 };
                                want[2 * o] = q(full[2 * i] * scale * w);
                                want[2 * o + 1] = q(full[2 * i + 1] * scale * w);
                            }
                        }
                    }
                }
                assert_same(&format!("fwd_lead_{} {grid:?}", st.suffix()), &got, &want);
            }

            let nk = g.k0 * g.k1 * g.ml;
            let kept = rnd(&mut r, 2 * bc * nk);
            let got = k
                .inv_lead(st, &Buf::of(st, &kept), bc, g, scale, hermitian)
                .vals();
            let mut want = vec![0.0; got.len()];
            for b in 0..bc {
                for j0 in 0..g.k0 {
                    for j1 in 0..g.k1 {
                        for kk in 0..g.ml {
                            let i = ((b * g.k0 + j0) * g.k1 + j1) * g.ml + kk;
                            let o = ((b * g.ml + kk) * g.n0 + kept_to_grid(j0, g.m0, g.n0)) * g.n1
                                + kept_to_grid(j1, g.m1, g.n1);
                            let c = if hermitian { 1.0 } else { 1.0 / herm(kk, g.nl) };
                            want[2 * o] = q(kept[2 * i] * scale * c);
                            want[2 * o + 1] = q(kept[2 * i + 1] * scale * c);
                        }
                    }
                }
            }
            assert_same(&format!("inv_lead_{} {grid:?}", st.suffix()), &got, &want);

            let full = rnd(&mut r, 2 * bc * g.ml * lead);
            let got = k.inv_last(st, &Buf::of(st, &full), bc, g).vals();
            let mut want = vec![0.0; got.len()];
            for b in 0..bc {
                for l in 0..lead {
                    for kk in 0..g.ml {
                        let (o, i) = ((b * lead + l) * g.nh + kk, (b * g.ml + kk) * lead + l);
                        want[2 * o] = full[2 * i] as f64;
                        if kk != 0 && 2 * kk != g.nl {
                            want[2 * o + 1] = full[2 * i + 1] as f64;
                        }
                    }
                }
            }
            assert_same(&format!("inv_last_{} {grid:?}", st.suffix()), &got, &want);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// GEMM spectral transforms

/// The steps of a CUDA GEMM transform (`cuda::forward_steps` / `inverse_steps`) on the host,
/// exactly as `Cuda::run_dft` runs them: the `rotate` kernel of spectral.cu where a step asks
/// for it, each GEMM by [`gemm_host`] on the step's operands (table as A or B as the step says),
/// times alpha, rounded once to the format (cuBLAS's fp32 sums lie within model G's bound of
/// that). `input` holds values of `st`.
fn run_dft_steps(h: &Host, st: St, steps: &[DftStep], input: &[f64]) -> Vec<f64> {
    // SAFETY: (const T*, T*, u64, u64) as in spectral.cu.
    let rotate: unsafe extern "C" fn(P, M, u64, u64) =
        unsafe { h.get(&format!("rotate_{}", st.suffix())) };
    let mut cur = input.to_vec();
    for s in steps {
        if let Some((outer, rows, inner)) = s.rotate {
            assert_eq!(outer * rows * inner, cur.len());
            let src = Buf::of(st, &cur.iter().map(|&v| v as f32).collect::<Vec<_>>());
            let mut dst = Buf::garbage(st, 2 * cur.len());
            let (sp, dp) = (src.p(), dst.m());
            let (r64, i64_) = ((outer * rows) as u64, inner as u64);
            // SAFETY: src holds outer * rows * inner values, dst twice that.
            h.launch((cur.len() / 2) as u64, || unsafe {
                rotate(sp, dp, r64, i64_)
            });
            cur = dst.vals();
        }
        let table: Vec<f64> = s.table.iter().map(|&v| v as f64).collect();
        let (a, b) = if s.table_is_a {
            (&table, &cur)
        } else {
            (&cur, &table)
        };
        let out = gemm_host(&s.shape, a, b);
        assert_eq!(out.len(), s.out_len, "a step writes all of its output");
        cur = out
            .iter()
            .map(|&v| round(v * s.alpha as f64, st.format()))
            .collect();
    }
    cur
}

/// The CUDA backend's GEMM spectral transforms through the exact GEMM calls it makes: the
/// forward transform's every kept coefficient within model G's bound (bounds::gemm_precision,
/// docs/bounds.md) of the f64 transform of the unrounded input, and the inverse transform
/// (Hermitian and adjoint weights) within a norm-wise `8 d u` of the f64 inverse; fp32, fp16
/// and bf16, 1 to 3 axes, sizes that are not powers of two (cuFFT's half precision refuses
/// them: this is the path that trains fp16 on 96 x 96 or 100 x 100 grids).
#[test]
fn gemm_transforms_through_cublas_calls_match_the_f64_transform() {
    let Some(h) = host("spectral") else { return };
    let cpu = Cpu::<f64>::new();
    let mut r = rng(91);
    for (grid, m) in [
        (vec![12usize], vec![5usize]),
        (vec![12, 10], vec![3, 4]),
        (vec![6, 5, 8], vec![2, 2, 3]),
        (vec![100, 96], vec![8, 8]),
    ] {
        let modes = Modes(m);
        let (d, lines) = (grid.len(), 3usize);
        let pts: usize = grid.iter().product();
        let kept = modes.kept_shape();
        let nk: usize = kept.iter().product();
        let shape = [vec![1, lines], grid.clone()].concat();
        let kshape = [vec![1, lines], kept.clone()].concat();
        for st in St::ALL {
            let fmt = st.format();
            let what = format!("{grid:?} {fmt}");
            // Forward: normalised coefficients (scale 1/n, no Hermitian weights), the bound's
            // setting; the input is rounded to the format by the model (as_format on the GPU).
            let x: Vec<f64> = (0..lines * pts)
                .map(|_| r.random_range(-1.0..1.0))
                .collect();
            let xs: Vec<f64> = x.iter().map(|&v| round(v, fmt)).collect();
            let scale = 1.0 / pts as f64;
            let steps = forward_steps(lines, &grid, &modes, scale, false, fmt);
            let got = run_dft_steps(h, st, &steps, &xs);
            let want = cpu.download_complex(&cpu.rfft_modes(
                &cpu.upload(&shape, &x, Format::Fp64),
                &modes,
                SpectralForward {
                    scale,
                    hermitian: false,
                    format: Format::Fp64,
                    transform: SpectralTransform::Fft,
                },
            ));
            assert_eq!(got.len(), want.len(), "{what}");
            for l in 0..lines {
                let v = &x[l * pts..][..pts];
                let mean = v.iter().map(|t| t.abs()).sum::<f64>() / pts as f64;
                let mx = v.iter().fold(0.0f64, |a, t| a.max(t.abs()));
                let b = mpno::bounds::gemm_precision(&grid, fmt, mean, mx).bound;
                for k in 0..nk {
                    let i = 2 * (l * nk + k);
                    let err = (got[i] - want[i]).hypot(got[i + 1] - want[i + 1]);
                    assert!(
                        err <= b,
                        "forward {what} line {l} mode {k}: {err:e} > bound {b:e}"
                    );
                }
            }
            // Inverse, both weightings: a random kept spectrum in the format.
            let spec: Vec<f64> = (0..2 * lines * nk)
                .map(|_| round(r.random_range(-1.0..1.0), fmt))
                .collect();
            for hermitian in [true, false] {
                let steps = inverse_steps(lines, &grid, &modes, 1.0, hermitian, fmt);
                let got = run_dft_steps(h, st, &steps, &spec);
                let want = cpu.download(&cpu.irfft_modes(
                    &cpu.upload_complex(&kshape, &spec, Format::Fp64),
                    &grid,
                    SpectralInverse {
                        scale: 1.0,
                        hermitian,
                        format: Format::Fp64,
                        transform: SpectralTransform::Fft,
                    },
                ));
                let (mut d2, mut w2) = (0.0f64, 0.0f64);
                for (g, w) in got.iter().zip(&want) {
                    d2 += (g - w).powi(2);
                    w2 += w * w;
                }
                let rel = (d2 / w2).sqrt();
                let tol = 8.0 * d as f64 * fmt.unit_roundoff();
                assert!(
                    rel <= tol,
                    "inverse {what} hermitian {hermitian}: relative error {rel:e} > {tol:e}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Contraction

/// cuBLAS's strided-batched GEMM (`GemmShape`'s column-major conventions) on the host: exact
/// products of the stored values summed in f64 (cuBLAS sums in fp32 in its own order; the
/// tolerances below allow for that). Indexing is bounds-checked, so a stride or leading
/// dimension that reaches outside an operand fails here.
fn gemm_host(s: &GemmShape, a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut c = vec![f64::NAN; s.spans().2];
    for j in 0..s.batch {
        for col in 0..s.n {
            for row in 0..s.m {
                let acc: f64 = (0..s.k)
                    .map(|l| {
                        let av = if s.trans.0 {
                            a[j * s.sa + l + row * s.lda]
                        } else {
                            a[j * s.sa + row + l * s.lda]
                        };
                        let bv = if s.trans.1 {
                            b[j * s.sb + col + l * s.ldb]
                        } else {
                            b[j * s.sb + l + col * s.ldb]
                        };
                        av * bv
                    })
                    .sum();
                c[j * s.sc + row + col * s.ldc] = acc;
            }
        }
    }
    c
}

/// The CUDA backend's contraction end to end on the host: `ctranspose` to mode-major,
/// `block_weight`, the three GEMMs exactly as `ContractGemms` describes them (run by
/// [`gemm_host`], outputs rounded to the C type as cuBLAS does), `ctranspose` back and
/// `combine_gw`, against Cpu::contract / contract_backward in fp32 with an error model.
#[test]
fn contraction_through_gemms_matches_the_cpu() {
    let Some(h) = host("contract") else { return };
    let cpu = Cpu::<f32>::new();
    let (b, ci, co) = (3usize, 5usize, 4usize);
    let kept = [4usize, 3];
    let k: usize = kept.iter().product();
    let plan = ContractGemms::new(b, ci, co, k);
    plan.check(b, ci, co, k).unwrap();
    for st in St::ALL {
        let fmt = st.format();
        let sfx = st.suffix();
        let mut r = rng(71);
        let x = st.round(&uniform(&mut r, 2 * b * ci * k, -2.0, 2.0));
        let w = st.round(&uniform(&mut r, 2 * ci * co * k, -2.0, 2.0));
        let g = st.round(&uniform(&mut r, 2 * b * co * k, -2.0, 2.0));
        let sh = |a: usize, c: usize| vec![a, c, kept[0], kept[1]];
        let up = |v: &[f32], s: Vec<usize>| cpu.upload_complex(&s, v, Format::Fp32);
        let (xc, wc, gc) = (up(&x, sh(b, ci)), up(&w, sh(ci, co)), up(&g, sh(b, co)));
        let wide = |v: Vec<f32>| -> Vec<f64> { v.iter().map(|&v| v as f64).collect() };
        let y32 = wide(cpu.download_complex(&cpu.contract(
            &xc,
            &wc,
            Format::Fp32,
            ContractForm::Standard,
        )));
        let (gx32, gw32) =
            cpu.contract_backward(&xc, &wc, &gc, Format::Fp32, ContractForm::Standard);
        let (gx32, gw32) = (
            wide(cpu.download_complex(&gx32)),
            wide(cpu.download_complex(&gw32)),
        );

        type Tr = unsafe extern "C" fn(P, M, u64, u64);
        type Wk = unsafe extern "C" fn(P, M, u64, u64, u64);
        // SAFETY: the signatures of contract.cu.
        let (ftr, fbw, fcg): (Tr, Wk, Wk) = unsafe {
            (
                h.get(&format!("ctranspose_{sfx}")),
                h.get(&format!("block_weight_{sfx}")),
                h.get(&format!("combine_gw_{sfx}")),
            )
        };
        let transpose = |src: &Buf, rows: usize, cols: usize| {
            let mut out = Buf::garbage(st, 2 * rows * cols);
            let (sp, op) = (src.p(), out.m());
            let (r64, c64) = (rows as u64, cols as u64);
            // SAFETY: src and out hold rows * cols complex values.
            h.launch(r64 * c64, || unsafe { ftr(sp, op, r64, c64) });
            out
        };
        // A GEMM result rounded to the C type (fp32, then storage), as a buffer.
        let to_buf = |c: Vec<f64>, st: St| {
            let f: Vec<f32> = c.iter().map(|&v| v as f32).collect();
            Buf::of(st, &st.round(&f))
        };
        let [ciq, coq, kq] = [ci, co, k].map(|v| v as u64);

        let xt = transpose(&Buf::of(st, &x), b * ci, k);
        let gt = transpose(&Buf::of(st, &g), b * co, k);
        let wsrc = Buf::of(st, &w);
        let mut wb = Buf::garbage(st, 4 * ci * co * k);
        let (wp, wbp) = (wsrc.p(), wb.m());
        // SAFETY: w (ci, co, k) complex, wb (k, 2ci, 2co) real.
        h.launch(ciq * coq * kq, || unsafe { fbw(wp, wbp, ciq, coq, kq) });
        // The block matrix holds w exactly: [[re, im], [-im, re]] per (i, o).
        let wbv = wb.vals();
        for (t, wv) in w.chunks(2).enumerate() {
            let (kk, o, i) = (t % k, t / k % co, t / (k * co));
            let at = |p: usize, q: usize| wbv[kk * 4 * ci * co + (2 * i + p) * 2 * co + 2 * o + q];
            let want = [wv[0], wv[1], -wv[1], wv[0]].map(|v| v as f64);
            assert_eq!(
                [at(0, 0), at(0, 1), at(1, 0), at(1, 1)],
                want,
                "block_weight_{sfx}"
            );
        }

        let cabs = |v: &[f32], i: usize| (v[2 * i].abs() + v[2 * i + 1].abs()) as f64;
        let yt = to_buf(gemm_host(&plan.forward, &wbv, &xt.vals()), st);
        let y = transpose(&yt, k, b * co);
        let tol: Vec<f64> = (0..2 * b * co * k)
            .map(|j| {
                let (kk, o, bb) = (j / 2 % k, j / 2 / k % co, j / 2 / (k * co));
                let s: f64 = (0..ci)
                    .map(|i| cabs(&x, (bb * ci + i) * k + kk) * cabs(&w, (i * co + o) * k + kk))
                    .sum();
                2.0 * (ci + 1) as f64 * U32 * s
            })
            .collect();
        assert_faithful(&format!("contract y ({sfx})"), &y.vals(), &y32, &tol, fmt);

        let gxt = to_buf(gemm_host(&plan.grad_x, &wbv, &gt.vals()), st);
        let gx = transpose(&gxt, k, b * ci);
        let tol: Vec<f64> = (0..2 * b * ci * k)
            .map(|j| {
                let (kk, i, bb) = (j / 2 % k, j / 2 / k % ci, j / 2 / (k * ci));
                let s: f64 = (0..co)
                    .map(|o| cabs(&g, (bb * co + o) * k + kk) * cabs(&w, (i * co + o) * k + kk))
                    .sum();
                2.0 * (co + 1) as f64 * U32 * s
            })
            .collect();
        assert_faithful(
            &format!("contract gx ({sfx})"),
            &gx.vals(),
            &gx32,
            &tol,
            fmt,
        );

        let pbuf = to_buf(gemm_host(&plan.grad_w, &gt.vals(), &xt.vals()), St::F32);
        let mut gw = Buf::garbage(st, 2 * ci * co * k);
        let (pp, gwp) = (pbuf.p(), gw.m());
        // SAFETY: p (k, 2ci, 2co) f32, gw (ci, co, k) complex.
        h.launch(ciq * coq * kq, || unsafe { fcg(pp, gwp, ciq, coq, kq) });
        let tol: Vec<f64> = (0..2 * ci * co * k)
            .map(|j| {
                let (kk, o, i) = (j / 2 % k, j / 2 / k % co, j / 2 / (k * co));
                let s: f64 = (0..b)
                    .map(|bb| cabs(&x, (bb * ci + i) * k + kk) * cabs(&g, (bb * co + o) * k + kk))
                    .sum();
                2.0 * (b + 1) as f64 * U32 * s
            })
            .collect();
        assert_faithful(
            &format!("contract gw ({sfx})"),
            &gw.vals(),
            &gw32,
            &tol,
            fmt,
        );
    }
}

/// The CUDA backend's Gauss contraction on the host: `gauss_planes` for each operand (the
/// adjoints conjugated and transposed), the three fp32 GEMMs of `gauss_gemm` (run by
/// [`gemm_host`]), `gauss_combine`; forward and both gradients, every output within the proven
/// bound of the Gauss form (`bounds::contraction_precision`) of the exact sum, and the planes
/// themselves exactly the CPU's (a + b, d - c, c + d rounded once from float).
/// The terms `(l, r)` of one contraction output, as (re, im) pairs.
type Terms = Vec<((f64, f64), (f64, f64))>;

#[test]
fn gauss_contraction_through_gemms_is_within_its_bound() {
    let Some(h) = host("contract") else { return };
    let (b, ci, co, k) = (3usize, 5usize, 4usize, 6usize);
    type Pl = unsafe extern "C" fn(P, M, M, M, u64, u64, u64, i32, i32, i32);
    type Cb = unsafe extern "C" fn(P, P, P, M, u64, u64, u64);
    for st in St::ALL {
        let (fmt, sfx) = (st.format(), st.suffix());
        // SAFETY: the signatures of contract.cu.
        let (fpl, fcb): (Pl, Cb) = unsafe {
            (
                h.get(&format!("gauss_planes_{sfx}")),
                h.get(&format!("gauss_combine_{sfx}")),
            )
        };
        let mut r = rng(73);
        let x = st.round(&uniform(&mut r, 2 * b * ci * k, -2.0, 2.0));
        let w = st.round(&uniform(&mut r, 2 * ci * co * k, -2.0, 2.0));
        let g = st.round(&uniform(&mut r, 2 * b * co * k, -2.0, 2.0));
        // Planes of an operand stored (na, nb, k): (k, rows, cols) each.
        let planes = |v: &[f32], na: usize, nb: usize, left: bool, conj: bool, swap: bool| {
            let n = na * nb * k;
            let src = Buf::of(st, v);
            let mut p = [0, 1, 2].map(|_| Buf::garbage(st, n));
            let sp = src.p();
            let [p0, p1, p2] = &mut p;
            let (m0, m1, m2) = (p0.m(), p1.m(), p2.m());
            let [a, bq, kq] = [na, nb, k].map(|v| v as u64);
            let f = [left as i32, conj as i32, swap as i32];
            // SAFETY: src holds na*nb*k complex values, each plane na*nb*k reals.
            h.launch(n as u64, || unsafe {
                fpl(sp, m0, m1, m2, a, bq, kq, f[0], f[1], f[2])
            });
            let vals = p.map(|b| b.vals());
            // The CPU's planes: a, b (+-im), then a + b (left) or b - a and a + b (right),
            // rounded once from float.
            let rnd = |x: f32| round(x as f64, fmt);
            for t in 0..n {
                let (kk, jj, ii) = (t % k, t / k % nb, t / (k * nb));
                let (row, col, cols) = if swap { (jj, ii, na) } else { (ii, jj, nb) };
                let at = kk * na * nb + row * cols + col;
                let (re, im) = (v[2 * t], if conj { -v[2 * t + 1] } else { v[2 * t + 1] });
                let want = if left {
                    [re as f64, im as f64, rnd(re + im)]
                } else {
                    [re as f64, rnd(im - re), rnd(re + im)]
                };
                let got = [vals[0][at], vals[1][at], vals[2][at]];
                assert_eq!(
                    got, want,
                    "gauss_planes_{sfx} left {left} conj {conj} swap {swap}"
                );
            }
            vals
        };
        // Out (rn, qn, k) of L (k, rn, jn) and R (k, jn, qn) planes.
        let product = |lp: &[Vec<f64>; 3], rp: &[Vec<f64>; 3], rn: usize, jn: usize, qn: usize| {
            let s = gauss_gemm(rn, jn, qn, k);
            s.check().unwrap();
            let t: Vec<Buf> = [(2, 0), (0, 1), (1, 2)]
                .iter()
                .map(|&(a, c)| {
                    let v = gemm_host(&s, &rp[c], &lp[a]);
                    Buf::of(St::F32, &v.iter().map(|&x| x as f32).collect::<Vec<_>>())
                })
                .collect();
            let mut out = Buf::garbage(st, 2 * rn * qn * k);
            let (t1, t2, t3, o) = (t[0].p(), t[1].p(), t[2].p(), out.m());
            let [rq, qq, kq] = [rn, qn, k].map(|v| v as u64);
            // SAFETY: t* hold rn*qn*k floats, out rn*qn*k complex values.
            h.launch(rq * qq * kq, || unsafe { fcb(t1, t2, t3, o, rq, qq, kq) });
            out.vals()
        };
        // Every output against the exact sum of its terms and the Gauss bound.
        let check = |name: &str,
                     got: &[f64],
                     rn: usize,
                     qn: usize,
                     terms: &dyn Fn(usize, usize, usize) -> Terms| {
            for rr in 0..rn {
                for q in 0..qn {
                    for kk in 0..k {
                        let ts = terms(rr, q, kk);
                        let (mut re, mut im) = (0.0, 0.0);
                        for &((a, bb), (c, d)) in &ts {
                            re += a * c - bb * d;
                            im += a * d + bb * c;
                        }
                        let at = (rr * qn + q) * k + kk;
                        let err = (got[2 * at] - re).hypot(got[2 * at + 1] - im);
                        let sums = ContractionSums::of(ts);
                        let bound = contraction_precision(fmt, ContractForm::Gauss, &sums).unwrap();
                        assert!(
                            err <= bound,
                            "{name} ({sfx}) [{rr},{q},{kk}]: {err:e} > {bound:e}"
                        );
                    }
                }
            }
        };
        let c = |v: &[f32], i: usize, conj: bool| {
            (
                v[2 * i] as f64,
                if conj { -v[2 * i + 1] } else { v[2 * i + 1] } as f64,
            )
        };
        // Forward: y[b, o] = sum_i x[b, i] w[i, o].
        let y = product(
            &planes(&x, b, ci, true, false, false),
            &planes(&w, ci, co, false, false, false),
            b,
            ci,
            co,
        );
        check("gauss y", &y, b, co, &|bb, o, kk| {
            (0..ci)
                .map(|i| {
                    (
                        c(&x, (bb * ci + i) * k + kk, false),
                        c(&w, (i * co + o) * k + kk, false),
                    )
                })
                .collect()
        });
        // gx[b, i] = sum_o g[b, o] conj(w[i, o]).
        let gx = product(
            &planes(&g, b, co, true, false, false),
            &planes(&w, ci, co, false, true, true),
            b,
            co,
            ci,
        );
        check("gauss gx", &gx, b, ci, &|bb, i, kk| {
            (0..co)
                .map(|o| {
                    (
                        c(&g, (bb * co + o) * k + kk, false),
                        c(&w, (i * co + o) * k + kk, true),
                    )
                })
                .collect()
        });
        // gw[i, o] = sum_b conj(x[b, i]) g[b, o].
        let gw = product(
            &planes(&x, b, ci, true, true, true),
            &planes(&g, b, co, false, false, false),
            ci,
            b,
            co,
        );
        check("gauss gw", &gw, ci, co, &|i, o, kk| {
            (0..b)
                .map(|bb| {
                    (
                        c(&x, (bb * ci + i) * k + kk, true),
                        c(&g, (bb * co + o) * k + kk, false),
                    )
                })
                .collect()
        });
    }
}

// ---------------------------------------------------------------------------------------------
// CP weights

/// CP factors, complex interleaved f32: lam (r), a (ci, r), b (co, r), modes[ax] (kept[ax], r).
#[derive(Clone)]
struct Cp {
    ci: usize,
    co: usize,
    r: usize,
    kept: Vec<usize>,
    lam: Vec<f32>,
    a: Vec<f32>,
    b: Vec<f32>,
    modes: Vec<Vec<f32>>,
}

type C64 = (f64, f64);

fn cm(a: C64, b: C64) -> C64 {
    (a.0 * b.0 - a.1 * b.1, a.0 * b.1 + a.1 * b.0)
}

fn cv(v: &[f32], i: usize) -> C64 {
    (v[2 * i] as f64, v[2 * i + 1] as f64)
}

impl Cp {
    fn nk(&self) -> usize {
        self.kept.iter().product()
    }

    /// Multi-index of flat kept index k.
    fn unravel(&self, mut k: usize) -> Vec<usize> {
        let mut idx = vec![0; self.kept.len()];
        for ax in (0..self.kept.len()).rev() {
            idx[ax] = k % self.kept[ax];
            k /= self.kept[ax];
        }
        idx
    }

    /// W[i,o,k] = sum_r lam_r a_ir b_or prod_ax m_ax[k_ax, r] in f64, and sum_r of the product of
    /// the factors' moduli (the size of the terms).
    fn dense(&self) -> (Vec<C64>, Vec<f64>) {
        let (r, nk) = (self.r, self.nk());
        let mut w = Vec::with_capacity(self.ci * self.co * nk);
        let mut size = Vec::with_capacity(w.capacity());
        let md = |v: C64| v.0.hypot(v.1);
        for i in 0..self.ci {
            for o in 0..self.co {
                for k in 0..nk {
                    let idx = self.unravel(k);
                    let (mut s, mut t) = ((0.0, 0.0), 0.0);
                    for rr in 0..r {
                        let mut p = cm(
                            cm(cv(&self.lam, rr), cv(&self.a, i * r + rr)),
                            cv(&self.b, o * r + rr),
                        );
                        let mut m = md(cv(&self.lam, rr))
                            * md(cv(&self.a, i * r + rr))
                            * md(cv(&self.b, o * r + rr));
                        for (ax, f) in self.modes.iter().enumerate() {
                            p = cm(p, cv(f, idx[ax] * r + rr));
                            m *= md(cv(f, idx[ax] * r + rr));
                        }
                        s = (s.0 + p.0, s.1 + p.1);
                        t += m;
                    }
                    w.push(s);
                    size.push(t);
                }
            }
        }
        (w, size)
    }

    /// L = sum Re(conj(G) W) in f64.
    fn loss(&self, gw: &[f32]) -> f64 {
        let (w, _) = self.dense();
        w.iter()
            .enumerate()
            .map(|(j, v)| gw[2 * j] as f64 * v.0 + gw[2 * j + 1] as f64 * v.1)
            .sum()
    }

    /// Every real parameter, by (factor, index): 0 lam, 1 a, 2 b, 3 + ax modes.
    fn param(&mut self, which: usize) -> &mut Vec<f32> {
        match which {
            0 => &mut self.lam,
            1 => &mut self.a,
            2 => &mut self.b,
            ax => &mut self.modes[ax - 3],
        }
    }
}

/// cp_mode_products + cp_expand give the CP weight, and the five gradient kernels give
/// sum gw conj(dW/dparam) for each factor: checked against an f64 expansion and against exact
/// central differences of L = sum Re(conj(G) W) (L is linear in every single parameter, so a
/// difference quotient with step about 1 is the derivative up to f64 rounding).
#[test]
fn cp_weight_and_its_gradients_match_f64_and_finite_differences() {
    let Some(h) = host("contract") else { return };
    // SAFETY (all six): the signatures of contract.cu.
    let mode_products: unsafe extern "C" fn(P, P, P, *mut f64, u64, i32, u64, u64, u64) =
        unsafe { h.get("cp_mode_products") };
    // SAFETY: as above.
    let expand: unsafe extern "C" fn(P, P, P, *const f64, M, u64, u64, u64, u64) =
        unsafe { h.get("cp_expand") };
    // SAFETY: as above.
    let grad_s: unsafe extern "C" fn(P, *const f64, *mut f64, u64, u64, u64, u64) =
        unsafe { h.get("cp_grad_s") };
    // SAFETY: as above.
    let grad_factors: unsafe extern "C" fn(*const f64, P, P, P, M, M, M, u64, u64, u64) =
        unsafe { h.get("cp_grad_factors") };
    // SAFETY: as above.
    let grad_t: unsafe extern "C" fn(P, P, P, P, *mut f64, u64, u64, u64, u64) =
        unsafe { h.get("cp_grad_t") };
    // SAFETY: as above.
    let grad_modes: unsafe extern "C" fn(*const f64, P, P, P, M, M, M, u64, i32, u64, u64, u64) =
        unsafe { h.get("cp_grad_modes") };
    for (case, kept) in [vec![5usize], vec![4, 3], vec![4, 2, 3]]
        .into_iter()
        .enumerate()
    {
        let mut r = rng(81 + case as u64);
        let (ci, co, rank) = (3usize, 2usize, 3usize);
        let d = kept.len();
        let mut f = |n: usize| uniform(&mut r, 2 * n, -1.0, 1.0);
        let cp = Cp {
            ci,
            co,
            r: rank,
            lam: f(rank),
            a: f(ci * rank),
            b: f(co * rank),
            modes: kept.iter().map(|&k| f(k * rank)).collect(),
            kept: kept.clone(),
        };
        let gw = f(ci * co * cp.nk());
        let nk = cp.nk();
        let ext = [0, 1, 2].map(|ax| kept.get(ax).copied().unwrap_or(1) as u64);
        let mp = |ax: usize| {
            cp.modes
                .get(ax)
                .map_or(std::ptr::null(), |m| m.as_ptr() as P)
        };
        let (m0, m1, m2) = (mp(0), mp(1), mp(2));
        let [ciq, coq, nkq, rq] = [ci, co, nk, rank].map(|v| v as u64);
        let di = d as i32;

        let mut pm = vec![f64::NAN; 2 * nk * rank];
        let pmp = pm.as_mut_ptr();
        // SAFETY: mode factors (ext[ax], r) complex, pm (nk, r) complex double.
        h.launch(nkq * rq, || unsafe {
            mode_products(m0, m1, m2, pmp, rq, di, ext[0], ext[1], ext[2])
        });
        let mut w = vec![f32::NAN; 2 * ci * co * nk];
        let (lp, ap, bp, wp) = (
            cp.lam.as_ptr() as P,
            cp.a.as_ptr() as P,
            cp.b.as_ptr() as P,
            w.as_mut_ptr() as M,
        );
        let pmc = pm.as_ptr();
        // SAFETY: factors as documented, w (ci, co, nk) complex.
        h.launch(ciq * coq * nkq, || unsafe {
            expand(lp, ap, bp, pmc, wp, ciq, coq, nkq, rq)
        });
        let (want, size) = cp.dense();
        for (j, (v, s)) in want.iter().zip(&size).enumerate() {
            for (got, v) in [(w[2 * j], v.0), (w[2 * j + 1], v.1)] {
                let tol = U32 * v.abs() + 1e-12 * s;
                assert!(
                    (got as f64 - v).abs() <= tol,
                    "cp_expand d={d} [{j}]: {got:e} vs {v:e}"
                );
            }
        }

        // Gradients.
        let mut s = vec![f64::NAN; 2 * ci * co * rank];
        let mut t = vec![f64::NAN; 2 * nk * rank];
        let gwp = gw.as_ptr() as P;
        let (sp, tp) = (s.as_mut_ptr(), t.as_mut_ptr());
        // SAFETY: gw (ci, co, nk), pm (nk, r), s (ci, co, r), complex.
        h.launch(ciq * coq * rq, || unsafe {
            grad_s(gwp, pmc, sp, ciq, coq, nkq, rq)
        });
        // SAFETY: t (nk, r) complex double.
        h.launch(nkq * rq, || unsafe {
            grad_t(gwp, lp, ap, bp, tp, ciq, coq, nkq, rq)
        });
        let mut grads: Vec<Vec<f32>> = [rank, ci * rank, co * rank]
            .into_iter()
            .chain(kept.iter().map(|&k| k * rank))
            .map(|n| vec![f32::NAN; 2 * n])
            .collect();
        let gp: Vec<M> = grads.iter_mut().map(|g| g.as_mut_ptr() as M).collect();
        let gm = |ax: usize| gp.get(3 + ax).copied().unwrap_or(std::ptr::null_mut());
        let (sc, tc) = (s.as_ptr(), t.as_ptr());
        // SAFETY: s as above, outputs (r), (ci, r), (co, r) complex.
        h.launch(rq + ciq * rq + coq * rq, || unsafe {
            grad_factors(sc, lp, ap, bp, gp[0], gp[1], gp[2], ciq, coq, rq)
        });
        let work: u64 = ext[..d].iter().sum::<u64>() * rq;
        // SAFETY: t as above, outputs (ext[ax], r) complex for ax < d.
        h.launch(work, || unsafe {
            grad_modes(
                tc,
                m0,
                m1,
                m2,
                gm(0),
                gm(1),
                gm(2),
                rq,
                di,
                ext[0],
                ext[1],
                ext[2],
            )
        });

        // Central differences, step 1 (exact for a linear function up to rounding).
        let mut scale = 0.0f64;
        let mut fd: Vec<Vec<f64>> = Vec::new();
        for which in 0..3 + d {
            let n = cp.clone().param(which).len();
            let mut v = vec![0.0; n];
            for (j, vj) in v.iter_mut().enumerate() {
                let mut up = cp.clone();
                up.param(which)[j] += 1.0;
                let mut dn = cp.clone();
                dn.param(which)[j] -= 1.0;
                // The steps as taken in f32 (L is linear in the parameter: any step is exact).
                let v0 = cp.clone().param(which)[j] as f64;
                let h = (up.param(which)[j] as f64 - v0) + (v0 - dn.param(which)[j] as f64);
                *vj = (up.loss(&gw) - dn.loss(&gw)) / h;
                scale = scale.max(vj.abs());
            }
            fd.push(v);
        }
        let names = ["lambda", "a", "b", "mode0", "mode1", "mode2"];
        for which in 0..3 + d {
            for (j, (&got, &want)) in grads[which].iter().zip(&fd[which]).enumerate() {
                let tol = U32 * want.abs() + 1e-9 * scale;
                assert!(
                    (got as f64 - want).abs() <= tol,
                    "CP gradient of {} d={d} [{j}]: kernel {got:e}, finite difference {want:e}",
                    names[which]
                );
            }
        }

        // The CPU reference, Backend::cp_weight / cp_weight_backward (f64 arithmetic, results
        // rounded to f32): the same operations in the same order, so equal up to the f32
        // rounding of the f64 results (bit-identical on this host).
        let cpu = Cpu::<f32>::new();
        let t = |v: &[f32], rows: usize| cpu.upload(&[rows, rank, 2], v, Format::Fp32);
        let tl = cpu.upload(&[rank, 2], &cp.lam, Format::Fp32);
        let (ta, tb) = (t(&cp.a, ci), t(&cp.b, co));
        let tm: Vec<_> = cp.modes.iter().zip(&kept).map(|(m, &k)| t(m, k)).collect();
        let factors = CpFactors {
            lambda: &tl,
            a: &ta,
            b: &tb,
            modes: tm.iter().collect(),
        };
        let w_ref = cpu.download_complex(&cpu.cp_weight(&factors, Format::Fp32));
        let mut gw_shape = vec![ci, co];
        gw_shape.extend(&kept);
        let g_ref =
            cpu.cp_weight_backward(&factors, &cpu.upload_complex(&gw_shape, &gw, Format::Fp32));
        let mut n_same = 0;
        let mut n_all = 0;
        let mut compare = |what: &str, got: &[f32], want: &[f32], size: f64| {
            assert_eq!(got.len(), want.len(), "{what}");
            for (j, (&a, &b)) in got.iter().zip(want).enumerate() {
                let tol = U32 * (b as f64).abs() + 1e-12 * size;
                assert!(
                    (a as f64 - b as f64).abs() <= tol,
                    "{what} d={d} [{j}]: kernel {a:e}, Cpu {b:e}"
                );
                n_same += (a.to_bits() == b.to_bits()) as usize;
                n_all += 1;
            }
        };
        let wsize = size.iter().cloned().fold(0.0, f64::max);
        compare("cp_expand vs Cpu::cp_weight", &w, &w_ref, wsize);
        for which in 0..3 + d {
            let what = format!("CP gradient of {} vs Cpu::cp_weight_backward", names[which]);
            compare(&what, &grads[which], &cpu.download(&g_ref[which]), scale);
        }
        eprintln!(
            "CP d={d}: {n_same} of {n_all} values bit-identical to Cpu::cp_weight(_backward)"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Adam

/// adam_f32 equals Adam::step bit for bit over several steps, for Adam (L2 weight decay), AdamW
/// and no decay.
#[test]
fn adam_matches_the_reference_step_bit_for_bit() {
    let Some(h) = host("adam") else { return };
    type AdamFn = unsafe extern "C" fn(
        *mut f32,
        *const f32,
        *mut f32,
        *mut f32,
        u64,
        f32,
        f32,
        f32,
        f32,
        f32,
        f32,
        f32,
        f32,
        i32,
        i32,
    );
    // SAFETY: the signature of adam.cu.
    let adam: AdamFn = unsafe { h.get("adam_f32") };
    let n = 4099;
    for (kind, wd) in [
        (OptimizerKind::Adam, 0.01),
        (OptimizerKind::AdamW, 0.05),
        (OptimizerKind::Adam, 0.0),
    ] {
        let mut r = rng(91);
        let p0 = uniform(&mut r, n, -1.0, 1.0);
        let mut params = Params::<f32>::default();
        params.push("w", vec![n], p0.clone());
        let mut opt = Adam::new(kind, &params, wd);
        let (mut p, mut m, mut v) = (p0, vec![0.0f32; n], vec![0.0f32; n]);
        for step in 1..=4 {
            let mut g = uniform(&mut r, n, -3.0, 3.0);
            g[0] = 0.0;
            g[1] = 1e-30;
            g[2] = 1e4;
            let lr = 1e-3 * step as f64;
            let mut grads = Params::<f32>::default();
            grads.push("w", vec![n], g.clone());
            opt.step(&mut params, &grads, lr);
            // The caller's scalars: the reference's f64 values, rounded to f32.
            let t = step;
            let (b1, b2) = (opt.beta1, opt.beta2);
            let decoupled = kind == OptimizerKind::AdamW && wd != 0.0;
            let coupled = kind == OptimizerKind::Adam && wd != 0.0;
            let (pp, gp, mp, vp) = (p.as_mut_ptr(), g.as_ptr(), m.as_mut_ptr(), v.as_mut_ptr());
            let s = [
                lr / (1.0 - b1.powi(t)),
                (1.0 - b2.powi(t)).sqrt(),
                opt.eps,
                1.0 - b1,
                b2,
                1.0 - b2,
                wd,
                1.0 - lr * wd,
            ]
            .map(|x| x as f32);
            // SAFETY: p, g, m, v hold n values.
            h.launch(n as u64, || unsafe {
                adam(
                    pp,
                    gp,
                    mp,
                    vp,
                    n as u64,
                    s[0],
                    s[1],
                    s[2],
                    s[3],
                    s[4],
                    s[5],
                    s[6],
                    s[7],
                    decoupled as i32,
                    coupled as i32,
                )
            });
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&p),
                bits(&params.list[0].data),
                "{kind:?} step {step}: p"
            );
            assert_eq!(
                bits(&m),
                bits(&opt.m.list[0].data),
                "{kind:?} step {step}: m"
            );
            assert_eq!(
                bits(&v),
                bits(&opt.v.list[0].data),
                "{kind:?} step {step}: v"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Loss

#[test]
fn rel_l2_sums_and_gradient_match_the_reference() {
    let Some(h) = host("loss") else { return };
    // SAFETY: the signatures of loss.cu.
    let sums: unsafe extern "C" fn(*const f32, *const f32, *mut f64, *mut f64, u64, u64) =
        unsafe { h.get("rel_l2_sums_f32") };
    // SAFETY: as above.
    let grad: unsafe extern "C" fn(*const f32, *const f32, *mut f32, *const f64, u64, u64, f32) =
        unsafe { h.get("rel_l2_grad_f32") };
    let (batch, len) = (4usize, 1000usize);
    let mut r = rng(101);
    let y = uniform(&mut r, batch * len, -2.0, 2.0);
    let mut pred: Vec<f32> = y
        .iter()
        .map(|&v| v + r.random_range(-0.1..0.1f64) as f32)
        .collect();
    pred[2 * len..3 * len].copy_from_slice(&y[2 * len..3 * len]); // a perfect sample: ||d|| = 0
    for v in &mut pred[len..2 * len] {
        *v = r.random_range(-2.0..2.0f64) as f32; // p - y not exact in f32
    }
    let (mut d2, mut y2) = (vec![0.0f64; batch], vec![0.0f64; batch]);
    let (pp, yp, dp, y2p) = (pred.as_ptr(), y.as_ptr(), d2.as_mut_ptr(), y2.as_mut_ptr());
    let (bq, lq) = (batch as u64, len as u64);
    // SAFETY: pred, y hold batch * len values, d2 and y2 batch.
    h.launch(bq * reduce_threads(len) as u64, || unsafe {
        sums(pp, yp, dp, y2p, bq, lq)
    });
    let (loss_ref, grad_ref) = rel_l2(&pred, &y, batch);
    for b in 0..batch {
        let (mut dd, mut yy) = (0.0f64, 0.0f64);
        for i in b * len..(b + 1) * len {
            let (p, t) = (pred[i] as f64, y[i] as f64);
            dd += (p - t) * (p - t);
            yy += t * t;
        }
        let tol = 4.0 * len as f64 * f64::EPSILON;
        assert!((d2[b] - dd).abs() <= tol * dd, "d2[{b}]: {} vs {dd}", d2[b]);
        assert!((y2[b] - yy).abs() <= tol * yy, "y2[{b}]: {} vs {yy}", y2[b]);
    }
    // The host finishes as Cuda::rel_l2_loss does.
    let (loss, coef) = rel_l2_coefficients(&d2, &y2);
    assert_eq!(coef[2], 0.0, "the perfect sample");
    assert!(
        (loss - loss_ref).abs() <= 1e-12 * loss_ref,
        "loss {loss} vs {loss_ref}"
    );
    // A power-of-two loss scale (as the trainer's) scales exactly.
    let scale = 1024.0f32;
    let mut g = vec![f32::NAN; batch * len];
    let (gp, cp) = (g.as_mut_ptr(), coef.as_ptr());
    // SAFETY: g holds batch * len values, coef batch.
    h.launch(bq * lq, || unsafe { grad(pp, yp, gp, cp, bq, lq, scale) });
    // The kernel's formula, with its coefficients: bit for bit.
    for (i, &got) in g.iter().enumerate() {
        let want = ((pred[i] as f64 - y[i] as f64) * coef[i / len]) as f32 * scale;
        assert_eq!(got.to_bits(), want.to_bits(), "rel_l2_grad_f32 [{i}]");
    }
    // The reference's coefficients come from sums in another order: at most one f32 rounding
    // apart.
    for (i, (&got, &want)) in g.iter().zip(&grad_ref).enumerate() {
        let want = want * scale;
        let ulp = (want.abs() * f32::EPSILON) as f64;
        assert!(
            (got as f64 - want as f64).abs() <= ulp,
            "rel_l2 gradient [{i}]: {got:e} vs {want:e}"
        );
    }
    assert!(g[2 * len..3 * len].iter().all(|&v| v == 0.0));
}

/// Sums `||v||^2 + sum_axes ||D v||^2` of one (channels, grid...) block with the periodic central
/// difference `D v[i] = (v[i+1] - v[i-1]) n / 2`, written independently of the reference (each
/// neighbour found from the point's coordinates).
fn h1_norm2(v: &[f64], grid: &[usize]) -> f64 {
    let mut total: f64 = v.iter().map(|x| x * x).sum();
    for a in 0..grid.len() {
        let stride: usize = grid[a + 1..].iter().product();
        let n = grid[a];
        for (q, _) in v.iter().enumerate() {
            let c = (q / stride) % n;
            let base = q - c * stride;
            let up = base + ((c + 1) % n) * stride;
            let down = base + ((c + n - 1) % n) * stride;
            let dv = (v[up] - v[down]) * n as f64 / 2.0;
            total += dv * dv;
        }
    }
    total
}

/// `h1_sums_f32(pred, y, d2, y2, batch, len, n0, n1, n2)`.
type H1Sums =
    unsafe extern "C" fn(*const f32, *const f32, *mut f64, *mut f64, u64, u64, u64, u64, u64);
/// `h1_grad_f32(pred, y, g, coef, batch, len, n0, n1, n2, scale)`.
type H1Grad = unsafe extern "C" fn(
    *const f32,
    *const f32,
    *mut f32,
    *const f64,
    u64,
    u64,
    u64,
    u64,
    u64,
    f32,
);

#[test]
fn h1_sums_and_gradient_match_the_reference() {
    let Some(h) = host("loss") else { return };
    // SAFETY: the signatures of loss.cu.
    let sums: H1Sums = unsafe { h.get("h1_sums_f32") };
    // SAFETY: as above.
    let grad: H1Grad = unsafe { h.get("h1_grad_f32") };
    let mut r = rng(103);
    // 1-D to 3-D, extents 2 (zero differences), odd, a sample longer than one CHUNK, and one
    // (2 x 100 x 90 values) over three warp segments of 32 x 256 values.
    for grid in [
        vec![300usize],
        vec![12, 9],
        vec![7, 2, 5],
        vec![4, 6, 8],
        vec![100, 90],
    ] {
        let (batch, channels) = (3usize, 2usize);
        let len = channels * grid.iter().product::<usize>();
        let y = uniform(&mut r, batch * len, -2.0, 2.0);
        let mut pred: Vec<f32> = y
            .iter()
            .map(|&v| v + r.random_range(-0.1..0.1f64) as f32)
            .collect();
        pred[len..2 * len].copy_from_slice(&y[len..2 * len]); // a perfect sample
        let mut n3 = [1u64; 3];
        for (o, &e) in n3.iter_mut().zip(&grid) {
            *o = e as u64;
        }
        let (mut d2, mut y2) = (vec![0.0f64; batch], vec![0.0f64; batch]);
        let (pp, yp, dp, y2p) = (pred.as_ptr(), y.as_ptr(), d2.as_mut_ptr(), y2.as_mut_ptr());
        let (bq, lq) = (batch as u64, len as u64);
        // SAFETY: pred, y hold batch * len values, d2 and y2 batch.
        h.launch(bq * reduce_threads(len) as u64, || unsafe {
            sums(pp, yp, dp, y2p, bq, lq, n3[0], n3[1], n3[2])
        });
        for b in 0..batch {
            let (p, t): (Vec<f64>, Vec<f64>) = (b * len..(b + 1) * len)
                .map(|i| (pred[i] as f64 - y[i] as f64, y[i] as f64))
                .unzip();
            let (dd, yy) = (h1_norm2(&p, &grid), h1_norm2(&t, &grid));
            // Sums of at most 4 len non-negative terms, each with a few roundings.
            let tol = 16.0 * len as f64 * f64::EPSILON;
            assert!(
                (d2[b] - dd).abs() <= tol * dd,
                "{grid:?} d2[{b}]: {} vs {dd}",
                d2[b]
            );
            assert!(
                (y2[b] - yy).abs() <= tol * yy,
                "{grid:?} y2[{b}]: {} vs {yy}",
                y2[b]
            );
        }
        assert_eq!(d2[1], 0.0, "{grid:?}: the perfect sample");
        let (loss, coef) = rel_l2_coefficients(&d2, &y2);
        let (loss_ref, grad_ref) = h1(&pred, &y, batch, &grid);
        assert!(
            (loss - loss_ref).abs() <= 1e-12 * loss_ref,
            "{grid:?} loss {loss} vs {loss_ref}"
        );
        let scale = 1024.0f32;
        let mut g = vec![f32::NAN; batch * len];
        let (gp, cp) = (g.as_mut_ptr(), coef.as_ptr());
        // SAFETY: g holds batch * len values, coef batch.
        h.launch(bq * lq, || unsafe {
            grad(pp, yp, gp, cp, bq, lq, n3[0], n3[1], n3[2], scale)
        });
        // The direction is the reference's, operation for operation; the coefficients come from
        // sums in another order: at most one f32 rounding apart.
        for (i, (&got, &want)) in g.iter().zip(&grad_ref).enumerate() {
            let want = want * scale;
            let ulp = (want.abs() * f32::EPSILON) as f64;
            assert!(
                (got as f64 - want as f64).abs() <= ulp,
                "{grid:?} h1 gradient [{i}]: {got:e} vs {want:e}"
            );
        }
        assert!(g[len..2 * len].iter().all(|&v| v == 0.0));
    }
}
