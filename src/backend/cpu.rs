//! The CPU backend: the reference semantics of every [`Backend`] op.
//!
//! Tensors hold `T` (f32, or f64 for gradient checks) whose values are exactly representable in
//! the tensor's storage format. Low formats are emulated exactly: storage by rounding
//! (`Scalar::round_slice`), FFT arithmetic by running our FFT over [`Emu<F>`] (every operation
//! rounded, model III), contraction and linear maps by rounding the operands, accumulating in the
//! scalar (fp32 accumulation, as tensor cores and cuBLAS with fp32 compute do) and rounding the
//! result. fp32/f64 transforms run on rustfft. Work is spread over (batch, channel) slices with
//! rayon. Every tensor counts its bytes at its storage width in a shared counter ([`MemStats`]).

use super::contract::{self, Product};
use super::elementwise::{CHUNK, map, map_rows, zeroed_chunks, zeroed_chunks_init, zip_map};
use super::fused::{self, channel_sums, per_channel, with_backward, with_forward};
use super::{
    AdamScalars, Backend, ContractForm, CpDims, CpFactors, MemStats, Modes, Pointwise,
    SpectralForward, SpectralInverse, SpectralTransform, cp_gemm, dft_gemm, format_bytes,
    herm_weight,
};
use crate::fft::{Algorithm, Complex, Direction, Fft, StageOptions};
use crate::fno::Scalar;
use crate::precision::{
    Bf16, E4m3, E4m3Sat, E5m2, Emu, Format, Fp16, LANES, Lanes, LowFormat, Real, Tf32,
};
use rayon::prelude::*;
use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Counter {
    live: AtomicUsize,
    peak: AtomicUsize,
    /// Bytes of every tensor ever created ([`MemStats::allocated_bytes`]).
    allocated: AtomicU64,
}

/// Registers bytes on creation, releases them on drop.
struct Guard {
    bytes: usize,
    counter: Arc<Counter>,
}

impl Guard {
    fn new(counter: &Arc<Counter>, bytes: usize) -> Self {
        let live = counter.live.fetch_add(bytes, Ordering::Relaxed) + bytes;
        counter.peak.fetch_max(live, Ordering::Relaxed);
        counter.allocated.fetch_add(bytes as u64, Ordering::Relaxed);
        Guard {
            bytes,
            counter: counter.clone(),
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.counter.live.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// A real CPU tensor, row-major.
pub struct CpuTensor<T> {
    shape: Vec<usize>,
    format: Format,
    data: Vec<T>,
    _mem: Guard,
}

impl<T> CpuTensor<T> {
    /// The values (exactly representable in [`CpuTensor::format`]).
    pub fn data(&self) -> &[T] {
        &self.data
    }
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    pub fn format(&self) -> Format {
        self.format
    }
}

/// A complex CPU tensor, row-major.
pub struct CpuCTensor<T> {
    shape: Vec<usize>,
    format: Format,
    data: Vec<Complex<T>>,
    _mem: Guard,
}

impl<T> CpuCTensor<T> {
    pub fn data(&self) -> &[Complex<T>] {
        &self.data
    }
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    pub fn format(&self) -> Format {
        self.format
    }
}

/// Plans by (FFT scalar type, length, inverse), type-erased.
type PlanCache = HashMap<(TypeId, usize, bool), Arc<dyn Any + Send + Sync>>;

/// The CPU backend over scalar `T`.
pub struct Cpu<T> {
    counter: Arc<Counter>,
    plans: Mutex<PlanCache>,
    /// Answer finiteness checks only when read, as a GPU does (see [`Cpu::with_deferred_checks`]).
    deferred_checks: bool,
    _t: PhantomData<T>,
}

impl<T: Scalar> Default for Cpu<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// A 1-D complex FFT plan over the scalar `C` (rustfft for f32/f64, ours for emulated formats).
trait LineFft<C: Real>: Send + Sync {
    fn scratch_len(&self) -> usize;
    fn run(&self, buf: &mut [Complex<C>], scratch: &mut [Complex<C>]);
    /// The plan that transforms eight lines at once, one per lane (emulated formats): a short
    /// line alone vectorises only with gathers and scatters.
    fn lanes(&self) -> Option<&Fft<C>> {
        None
    }
}

struct RustFftLine<C: rustfft::FftNum>(Arc<dyn rustfft::Fft<C>>);

impl<C: rustfft::FftNum + Real> LineFft<C> for RustFftLine<C> {
    fn scratch_len(&self) -> usize {
        self.0.get_inplace_scratch_len()
    }
    fn run(&self, buf: &mut [Complex<C>], scratch: &mut [Complex<C>]) {
        self.0.process_with_scratch(buf, scratch)
    }
}

impl<C: Real> LineFft<C> for Fft<C> {
    fn scratch_len(&self) -> usize {
        Fft::scratch_len(self)
    }
    fn run(&self, buf: &mut [Complex<C>], scratch: &mut [Complex<C>]) {
        self.process_with_scratch(buf, scratch)
    }
    fn lanes(&self) -> Option<&Fft<C>> {
        Some(self)
    }
}

/// Transform `lines` lines of the plan's length, eight at a time (one per lane, so each line's
/// bits are those of transforming it alone): point j of line l is `load(l, j)`; for the i-th
/// entry j of `points`, `out(l, i, X_j)` receives line l's output point j. Lines past the last
/// fill the unused lanes with zeros, whose results are dropped.
fn transform_lines<C: Real>(
    plan: &Fft<C>,
    lines: usize,
    points: &[usize],
    load: impl Fn(usize, usize) -> Complex<C>,
    mut out: impl FnMut(usize, usize, Complex<C>),
) {
    let n = plan.len();
    let zero = C::Lanes::splat(C::zero());
    let (mut re, mut im) = (vec![zero; n], vec![zero; n]);
    for l0 in (0..lines).step_by(LANES) {
        let cnt = LANES.min(lines - l0);
        for j in 0..n {
            let (mut a, mut b) = ([C::zero(); LANES], [C::zero(); LANES]);
            for k in 0..cnt {
                let z = load(l0 + k, j);
                (a[k], b[k]) = (z.re, z.im);
            }
            (re[j], im[j]) = (C::Lanes::from_array(a), C::Lanes::from_array(b));
        }
        plan.process_lanes(&mut re, &mut im, &StageOptions::default());
        for (i, &j) in points.iter().enumerate() {
            let (a, b) = (re[j].to_array(), im[j].to_array());
            for k in 0..cnt {
                out(l0 + k, i, Complex::new(a[k], b[k]));
            }
        }
    }
}

/// A scalar the spectral transforms can run in.
trait FftScalar: Real {
    fn plan(n: usize, inverse: bool) -> Arc<dyn LineFft<Self>>;
    /// One rounding of a backend scalar to this type.
    #[inline(always)]
    fn from_scalar<T: Scalar>(x: T) -> Self {
        Self::from_f64(x.to_f64())
    }
}

impl FftScalar for f32 {
    fn plan(n: usize, inverse: bool) -> Arc<dyn LineFft<f32>> {
        let mut p = rustfft::FftPlanner::<f32>::new();
        let f = if inverse {
            p.plan_fft_inverse(n)
        } else {
            p.plan_fft_forward(n)
        };
        Arc::new(RustFftLine(f))
    }
}

impl FftScalar for f64 {
    fn plan(n: usize, inverse: bool) -> Arc<dyn LineFft<f64>> {
        let mut p = rustfft::FftPlanner::<f64>::new();
        let f = if inverse {
            p.plan_fft_inverse(n)
        } else {
            p.plan_fft_forward(n)
        };
        Arc::new(RustFftLine(f))
    }
}

impl<F: LowFormat> FftScalar for Emu<F> {
    #[inline(always)]
    fn from_scalar<T: Scalar>(x: T) -> Self {
        // The fast bit rounding from f32 is exact for f32 inputs; f64 inputs take the exact path
        // (a detour through f32 could round twice).
        if T::FORMAT == Format::Fp32 {
            Emu::from_f32(x.to_f32())
        } else {
            Self::from_f64(x.to_f64())
        }
    }
    fn plan(n: usize, inverse: bool) -> Arc<dyn LineFft<Emu<F>>> {
        let dir = if inverse {
            Direction::Inverse
        } else {
            Direction::Forward
        };
        Arc::new(Fft::<Emu<F>>::new(n, dir, Algorithm::Auto).expect("n >= 1 checked by the caller"))
    }
}

/// Run `$body` with the type alias `$c` bound to the FFT scalar for `$fmt` over scalar `$t`.
macro_rules! with_fft_scalar {
    ($t:ty, $fmt:expr, $c:ident => $body:expr) => {{
        let fmt: Format = $fmt;
        if <$t as Scalar>::holds(fmt) && <$t as Real>::FORMAT == Format::Fp64 {
            type $c = f64;
            $body
        } else {
            match fmt {
                Format::Fp64 | Format::Fp32 => {
                    type $c = f32;
                    $body
                }
                Format::Tf32 => {
                    type $c = Emu<Tf32>;
                    $body
                }
                Format::Bf16 => {
                    type $c = Emu<Bf16>;
                    $body
                }
                Format::Fp16 => {
                    type $c = Emu<Fp16>;
                    $body
                }
                Format::E5m2 => {
                    type $c = Emu<E5m2>;
                    $body
                }
                Format::E4m3 => {
                    type $c = Emu<E4m3>;
                    $body
                }
                Format::E4m3Sat => {
                    type $c = Emu<E4m3Sat>;
                    $body
                }
            }
        }
    }};
}

fn czero<C: Real>() -> Complex<C> {
    Complex::new(C::zero(), C::zero())
}

/// Whether a GEMM transform in `fmt` on backend scalar `T` accumulates in f64 (f64 backend,
/// fp64 format: gradient checks) rather than fp32.
fn wide<T: Scalar>(fmt: Format) -> bool {
    T::holds(fmt) && <T as Real>::FORMAT == Format::Fp64
}

/// Index along an axis of n points of kept index j (see [`Modes`]).
fn kept_to_grid(j: usize, m: usize, n: usize, last: bool) -> usize {
    if last || j < m { j } else { n - 2 * m + j }
}

impl<T: Scalar> Cpu<T> {
    pub fn new() -> Self {
        Cpu {
            counter: Arc::new(Counter::default()),
            plans: Mutex::new(HashMap::new()),
            deferred_checks: false,
            _t: PhantomData,
        }
    }

    /// A CPU backend whose [`Backend::check_finite`] answers only through
    /// [`Backend::read_checks`], as the GPU backend does: runs the model's deferred-check path
    /// (a whole pass, then the first failed check) where there is no GPU. Results are the
    /// same as [`Cpu::new`]'s.
    pub fn with_deferred_checks() -> Self {
        Cpu {
            deferred_checks: true,
            ..Self::new()
        }
    }

    fn plan<C: FftScalar>(&self, n: usize, inverse: bool) -> Arc<dyn LineFft<C>> {
        let key = (TypeId::of::<C>(), n, inverse);
        let mut plans = self.plans.lock().expect("plan cache poisoned");
        let entry = plans
            .entry(key)
            .or_insert_with(|| Arc::new(C::plan(n, inverse)) as Arc<dyn Any + Send + Sync>);
        entry
            .downcast_ref::<Arc<dyn LineFft<C>>>()
            .expect("plan cache keyed by type")
            .clone()
    }

    fn tensor(&self, shape: Vec<usize>, format: Format, mut data: Vec<T>) -> CpuTensor<T> {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        round_par(&mut data, format);
        let bytes = data.len() * format_bytes(format);
        CpuTensor {
            shape,
            format,
            data,
            _mem: Guard::new(&self.counter, bytes),
        }
    }

    fn ctensor(&self, shape: Vec<usize>, format: Format, data: Vec<Complex<T>>) -> CpuCTensor<T> {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        let data = if T::holds(format) {
            data
        } else {
            round_complex(&data, format)
        };
        let bytes = 2 * data.len() * format_bytes(format);
        CpuCTensor {
            shape,
            format,
            data,
            _mem: Guard::new(&self.counter, bytes),
        }
    }

    fn rfft_impl<C: FftScalar>(
        &self,
        x: &CpuTensor<T>,
        modes: &Modes,
        opt: SpectralForward,
    ) -> Vec<Complex<T>> {
        let d = modes.0.len();
        let grid = &x.shape[x.shape.len() - d..];
        let npts: usize = grid.iter().product();
        let kept = modes.kept_shape();
        let nkept: usize = kept.iter().product();
        let plans: Vec<_> = grid.iter().map(|&n| self.plan::<C>(n, false)).collect();
        let scratch_len = plans.iter().map(|p| p.scratch_len()).max().unwrap_or(0);
        let scale = C::from_f64(opt.scale);
        let two = C::from_f64(2.0);
        let first: Vec<usize> = (0..kept[d - 1]).collect();
        zeroed_chunks_init(
            x.data.len() / npts * nkept,
            nkept,
            czero::<T>(),
            || (vec![czero::<C>(); scratch_len], Vec::new()),
            |(scratch, line), i, dst| {
                let src = &x.data[i * npts..(i + 1) * npts];
                // Current array: axes < a full, axes >= a already reduced to kept sizes.
                let mut shape = grid.to_vec();
                let mut cur: Vec<Complex<C>> = Vec::new();
                // Last axis: real input lines.
                let nl = grid[d - 1];
                let ml = kept[d - 1];
                let lines = npts / nl;
                cur.resize(lines * ml, czero());
                if let Some(f) = plans[d - 1].lanes() {
                    let load = |l: usize, j: usize| {
                        Complex::new(C::from_scalar(src[l * nl + j]), C::zero())
                    };
                    transform_lines(f, lines, &first[..ml], load, |l, k, v| cur[l * ml + k] = v);
                } else {
                    line.resize(nl, czero::<C>());
                    for l in 0..lines {
                        for (v, &s) in line.iter_mut().zip(&src[l * nl..(l + 1) * nl]) {
                            *v = Complex::new(C::from_scalar(s), C::zero());
                        }
                        plans[d - 1].run(line, scratch);
                        cur[l * ml..(l + 1) * ml].copy_from_slice(&line[..ml]);
                    }
                }
                shape[d - 1] = ml;
                // Remaining axes, last to first: keep 0..m and n-m..n.
                for a in (0..d - 1).rev() {
                    let n = grid[a];
                    let m = modes.0[a];
                    let inner: usize = shape[a + 1..].iter().product();
                    let outer: usize = shape[..a].iter().product();
                    let mut next = vec![czero::<C>(); outer * 2 * m * inner];
                    if let Some(f) = plans[a].lanes() {
                        let points: Vec<usize> =
                            (0..2 * m).map(|j| kept_to_grid(j, m, n, false)).collect();
                        for o in 0..outer {
                            let load = |i: usize, j: usize| cur[(o * n + j) * inner + i];
                            transform_lines(f, inner, &points, load, |i, j, v| {
                                next[(o * 2 * m + j) * inner + i] = v
                            });
                        }
                    } else {
                        line.resize(n, czero::<C>());
                        for o in 0..outer {
                            for i in 0..inner {
                                for (j, v) in line.iter_mut().enumerate() {
                                    *v = cur[(o * n + j) * inner + i];
                                }
                                plans[a].run(&mut line[..n], scratch);
                                for j in 0..2 * m {
                                    next[(o * 2 * m + j) * inner + i] =
                                        line[kept_to_grid(j, m, n, false)];
                                }
                            }
                        }
                    }
                    cur = next;
                    shape[a] = 2 * m;
                }
                for (idx, (o, c)) in dst.iter_mut().zip(cur.iter()).enumerate() {
                    let mut v = Complex::new(c.re * scale, c.im * scale);
                    if opt.hermitian && herm_weight(idx % ml, nl) == 2.0 {
                        v = Complex::new(v.re * two, v.im * two);
                    }
                    *o = Complex::new(T::from_f64(v.re.to_f64()), T::from_f64(v.im.to_f64()));
                }
            },
        )
    }

    fn irfft_impl<C: FftScalar>(
        &self,
        x: &CpuCTensor<T>,
        grid: &[usize],
        opt: SpectralInverse,
    ) -> Vec<T> {
        let d = grid.len();
        let kept = &x.shape[x.shape.len() - d..];
        let nkept: usize = kept.iter().product();
        let npts: usize = grid.iter().product();
        let modes: Vec<usize> = kept
            .iter()
            .enumerate()
            .map(|(i, &k)| if i + 1 < d { k / 2 } else { k })
            .collect();
        let plans: Vec<_> = grid.iter().map(|&n| self.plan::<C>(n, true)).collect();
        let scratch_len = plans.iter().map(|p| p.scratch_len()).max().unwrap_or(0);
        let scale = C::from_f64(opt.scale);
        let two = C::from_f64(2.0);
        let nl = grid[d - 1];
        let ml = kept[d - 1];
        zeroed_chunks_init(
            x.data.len() / nkept * npts,
            npts,
            T::zero(),
            || (vec![czero::<C>(); scratch_len], Vec::new()),
            |(scratch, line), i, dst| {
                let src = &x.data[i * nkept..(i + 1) * nkept];
                let mut cur: Vec<Complex<C>> = src
                    .iter()
                    .enumerate()
                    .map(|(idx, c)| {
                        let v = Complex::new(
                            C::from_scalar(c.re) * scale,
                            C::from_scalar(c.im) * scale,
                        );
                        if opt.hermitian && herm_weight(idx % ml, nl) == 2.0 {
                            Complex::new(v.re * two, v.im * two)
                        } else {
                            v
                        }
                    })
                    .collect();
                let mut shape = kept.to_vec();
                // Axes 0..d-1 (complex, full): expand 2m -> n with zeros, inverse FFT.
                for a in 0..d - 1 {
                    let n = grid[a];
                    let m = modes[a];
                    let inner: usize = shape[a + 1..].iter().product();
                    let outer: usize = shape[..a].iter().product();
                    let mut next = vec![czero::<C>(); outer * n * inner];
                    if let Some(f) = plans[a].lanes() {
                        // Grid point g holds kept index g (g < m), g - (n - 2m) (g >= n - m), or 0.
                        let kept_at = |g: usize| {
                            if g < m {
                                Some(g)
                            } else if g >= n - m {
                                Some(g + 2 * m - n)
                            } else {
                                None
                            }
                        };
                        let all: Vec<usize> = (0..n).collect();
                        for o in 0..outer {
                            let load = |i: usize, g: usize| match kept_at(g) {
                                Some(j) => cur[(o * 2 * m + j) * inner + i],
                                None => czero(),
                            };
                            transform_lines(f, inner, &all, load, |i, j, v| {
                                next[(o * n + j) * inner + i] = v
                            });
                        }
                        cur = next;
                        shape[a] = n;
                        continue;
                    }
                    line.resize(n, czero::<C>());
                    for o in 0..outer {
                        for i in 0..inner {
                            line.iter_mut().for_each(|v| *v = czero());
                            for j in 0..2 * m {
                                line[kept_to_grid(j, m, n, false)] =
                                    cur[(o * 2 * m + j) * inner + i];
                            }
                            plans[a].run(&mut line[..n], scratch);
                            for (j, v) in line.iter().enumerate() {
                                next[(o * n + j) * inner + i] = *v;
                            }
                        }
                    }
                    cur = next;
                    shape[a] = n;
                }
                // Last axis: expand ml -> nl, inverse FFT, real part.
                let lines = npts / nl;
                if let Some(f) = plans[d - 1].lanes() {
                    let all: Vec<usize> = (0..nl).collect();
                    let load = |l: usize, j: usize| {
                        if j < ml { cur[l * ml + j] } else { czero() }
                    };
                    transform_lines(f, lines, &all, load, |l, j, v| {
                        dst[l * nl + j] = T::from_f64(v.re.to_f64())
                    });
                    return;
                }
                line.resize(nl, czero::<C>());
                for l in 0..lines {
                    line.iter_mut().for_each(|v| *v = czero());
                    line[..ml].copy_from_slice(&cur[l * ml..(l + 1) * ml]);
                    plans[d - 1].run(line, scratch);
                    for (o, v) in dst[l * nl..(l + 1) * nl].iter_mut().zip(line.iter()) {
                        *o = T::from_f64(v.re.to_f64());
                    }
                }
            },
        )
    }

    /// [`dft_gemm::ForwardPlan`] over every (batch, channel) slice in parallel.
    fn gemm_rfft<A: Scalar>(
        &self,
        x: &CpuTensor<T>,
        modes: &Modes,
        opt: SpectralForward,
    ) -> Vec<Complex<T>> {
        let d = modes.0.len();
        let grid = &x.shape[x.shape.len() - d..];
        let npts: usize = grid.iter().product();
        let nkept: usize = modes.kept_shape().iter().product();
        let plan =
            dft_gemm::ForwardPlan::<A>::new(grid, modes, opt.scale, opt.hermitian, opt.format);
        zeroed_chunks(
            x.data.len() / npts * nkept,
            nkept,
            czero::<T>(),
            |i, dst| plan.run(&x.data[i * npts..(i + 1) * npts], dst),
        )
    }

    /// [`dft_gemm::InversePlan`] over every (batch, channel) slice in parallel.
    fn gemm_irfft<A: Scalar>(
        &self,
        x: &CpuCTensor<T>,
        grid: &[usize],
        modes: &Modes,
        opt: SpectralInverse,
    ) -> Vec<T> {
        let nkept: usize = modes.kept_shape().iter().product();
        let npts: usize = grid.iter().product();
        let plan =
            dft_gemm::InversePlan::<A>::new(grid, modes, opt.scale, opt.hermitian, opt.format);
        zeroed_chunks(x.data.len() / nkept * npts, npts, T::zero(), |i, dst| {
            plan.run(&x.data[i * nkept..(i + 1) * nkept], dst)
        })
    }

    /// `data` rounded to `fmt`: borrowed as it is when rounding is the identity (the scalar
    /// holds the format), so an fp32 op copies nothing.
    fn rounded<'a>(&self, data: &'a [T], fmt: Format) -> Cow<'a, [T]> {
        if T::holds(fmt) {
            return Cow::Borrowed(data);
        }
        let mut v = data.to_vec();
        round_par(&mut v, fmt);
        Cow::Owned(v)
    }
}

/// Both parts of every value rounded to `fmt`.
pub(super) fn round_complex<T: Scalar>(data: &[Complex<T>], fmt: Format) -> Vec<Complex<T>> {
    // Real and imaginary parts rounded one by one: chunks in parallel give the same bits.
    zeroed_chunks(data.len(), CHUNK / 2, czero::<T>(), |i, out| {
        let src = &data[i * (CHUNK / 2)..][..out.len()];
        let mut flat: Vec<T> = src.iter().flat_map(|c| [c.re, c.im]).collect();
        T::round_slice(&mut flat, fmt);
        for (o, p) in out.iter_mut().zip(flat.chunks_exact(2)) {
            *o = Complex::new(p[0], p[1]);
        }
    })
}

/// [`Scalar::round_slice`] over parallel chunks (element by element: the same bits).
fn round_par<T: Scalar>(xs: &mut [T], fmt: Format) {
    if T::holds(fmt) {
        return;
    }
    xs.par_chunks_mut(CHUNK)
        .for_each(|c| T::round_slice(c, fmt));
}

/// The host values of CP factors.
fn cp_slices<'a, T>(f: &CpFactors<'a, CpuTensor<T>>) -> cp_gemm::CpSlices<'a, T> {
    cp_gemm::CpSlices {
        lambda: &f.lambda.data,
        a: &f.a.data,
        b: &f.b.data,
        modes: f.modes.iter().map(|m| &m.data[..]).collect(),
    }
}

impl<T: Scalar> Cpu<T> {
    /// Factor gradients ((re, im) pairs in the order lambda, A, B, M_0, ...) as tensors shaped
    /// like their factors, in the scalar.
    fn factor_tensors(
        &self,
        f: &CpFactors<'_, CpuTensor<T>>,
        grads: Vec<Vec<T>>,
    ) -> Vec<CpuTensor<T>> {
        let factors = [f.lambda, f.a, f.b]
            .into_iter()
            .chain(f.modes.iter().copied());
        grads
            .into_iter()
            .zip(factors)
            .map(|(g, t)| self.tensor(t.shape.clone(), T::FORMAT, g))
            .collect()
    }
}

/// Wider of two formats (formats are ordered widest first).
fn wider(a: Format, b: Format) -> Format {
    a.min(b)
}

impl<T: Scalar> Backend for Cpu<T> {
    type T = T;
    type Tensor = CpuTensor<T>;
    type CTensor = CpuCTensor<T>;
    type Checks = Vec<bool>;

    fn name(&self) -> &'static str {
        "cpu"
    }

    fn upload(&self, shape: &[usize], data: &[T], format: Format) -> CpuTensor<T> {
        assert_eq!(
            shape.iter().product::<usize>(),
            data.len(),
            "upload: shape {shape:?} does not match {} values",
            data.len()
        );
        self.tensor(shape.to_vec(), format, data.to_vec())
    }

    fn upload_complex(&self, shape: &[usize], data: &[T], format: Format) -> CpuCTensor<T> {
        assert_eq!(
            2 * shape.iter().product::<usize>(),
            data.len(),
            "upload_complex: shape {shape:?} does not match {} interleaved values",
            data.len()
        );
        let c = data
            .chunks_exact(2)
            .map(|p| Complex::new(p[0], p[1]))
            .collect();
        self.ctensor(shape.to_vec(), format, c)
    }

    fn download(&self, t: &CpuTensor<T>) -> Vec<T> {
        t.data.clone()
    }

    fn download_complex(&self, t: &CpuCTensor<T>) -> Vec<T> {
        t.data.iter().flat_map(|c| [c.re, c.im]).collect()
    }

    fn shape<'a>(&self, t: &'a CpuTensor<T>) -> &'a [usize] {
        &t.shape
    }

    fn cshape<'a>(&self, t: &'a CpuCTensor<T>) -> &'a [usize] {
        &t.shape
    }

    fn format(&self, t: &CpuTensor<T>) -> Format {
        t.format
    }

    fn cformat(&self, t: &CpuCTensor<T>) -> Format {
        t.format
    }

    fn cast(&self, t: &CpuTensor<T>, format: Format) -> CpuTensor<T> {
        self.tensor(t.shape.clone(), format, t.data.clone())
    }

    fn mem(&self) -> MemStats {
        MemStats {
            live_bytes: self.counter.live.load(Ordering::Relaxed),
            peak_bytes: self.counter.peak.load(Ordering::Relaxed),
            allocated_bytes: self.counter.allocated.load(Ordering::Relaxed),
        }
    }

    fn reset_peak(&self) {
        let live = self.counter.live.load(Ordering::Relaxed);
        self.counter.peak.store(live, Ordering::Relaxed);
    }

    fn rfft_modes(&self, x: &CpuTensor<T>, modes: &Modes, opt: SpectralForward) -> CpuCTensor<T> {
        let d = modes.0.len();
        assert!(
            x.shape.len() > d,
            "rfft_modes: tensor of shape {:?} has no {d}-D grid",
            x.shape
        );
        let grid = &x.shape[x.shape.len() - d..];
        if let Err(e) = modes.check_grid(grid) {
            panic!("rfft_modes: {e}");
        }
        let data = match opt.transform {
            SpectralTransform::Fft => {
                with_fft_scalar!(T, opt.format, C => self.rfft_impl::<C>(x, modes, opt))
            }
            SpectralTransform::Gemm if wide::<T>(opt.format) => {
                self.gemm_rfft::<f64>(x, modes, opt)
            }
            SpectralTransform::Gemm => self.gemm_rfft::<f32>(x, modes, opt),
        };
        let mut shape = x.shape[..x.shape.len() - d].to_vec();
        shape.extend(modes.kept_shape());
        self.ctensor(shape, opt.format, data)
    }

    fn irfft_modes(&self, x: &CpuCTensor<T>, grid: &[usize], opt: SpectralInverse) -> CpuTensor<T> {
        let d = grid.len();
        assert!(
            x.shape.len() > d,
            "irfft_modes: tensor of shape {:?} has no {d}-D spectrum",
            x.shape
        );
        let kept = &x.shape[x.shape.len() - d..];
        let modes = Modes(
            kept.iter()
                .enumerate()
                .map(|(i, &k)| if i + 1 < d { k / 2 } else { k })
                .collect(),
        );
        if let Err(e) = modes.check_grid(grid) {
            panic!("irfft_modes: {e}");
        }
        let data = match opt.transform {
            SpectralTransform::Fft => {
                with_fft_scalar!(T, opt.format, C => self.irfft_impl::<C>(x, grid, opt))
            }
            SpectralTransform::Gemm if wide::<T>(opt.format) => {
                self.gemm_irfft::<f64>(x, grid, &modes, opt)
            }
            SpectralTransform::Gemm => self.gemm_irfft::<f32>(x, grid, &modes, opt),
        };
        let mut shape = x.shape[..x.shape.len() - d].to_vec();
        shape.extend_from_slice(grid);
        self.tensor(shape, opt.format, data)
    }

    fn contract(
        &self,
        x: &CpuCTensor<T>,
        w: &CpuCTensor<T>,
        format: Format,
        form: ContractForm,
    ) -> CpuCTensor<T> {
        let (b, ci, co, k) = super::contract_dims(&x.shape, &w.shape, None);
        let prod = Product {
            l: &x.data,
            conj_l: false,
            l_row: |bb, i| bb * ci + i,
            r: &w.data,
            conj_r: false,
            r_row: |i, o| i * co + o,
            dims: (b, ci, co, k),
        };
        let out = contract::product(prod, form, format);
        let mut shape = vec![b, co];
        shape.extend_from_slice(&x.shape[2..]);
        self.ctensor(shape, format, out)
    }

    fn contract_backward(
        &self,
        x: &CpuCTensor<T>,
        w: &CpuCTensor<T>,
        g: &CpuCTensor<T>,
        format: Format,
        form: ContractForm,
    ) -> (CpuCTensor<T>, CpuCTensor<T>) {
        let (b, ci, co, k) = super::contract_dims(&x.shape, &w.shape, Some(&g.shape));
        // gx[b, i] = sum_o g[b, o] conj(w[i, o]); gw[i, o] = sum_b conj(x[b, i]) g[b, o].
        let gx = contract::product(
            Product {
                l: &g.data,
                conj_l: false,
                l_row: |bb, o| bb * co + o,
                r: &w.data,
                conj_r: true,
                r_row: |o, i| i * co + o,
                dims: (b, co, ci, k),
            },
            form,
            format,
        );
        let gw = contract::product(
            Product {
                l: &x.data,
                conj_l: true,
                l_row: |i, bb| bb * ci + i,
                r: &g.data,
                conj_r: false,
                r_row: |bb, o| bb * co + o,
                dims: (ci, b, co, k),
            },
            form,
            format,
        );
        (
            self.ctensor(x.shape.clone(), format, gx),
            self.ctensor(w.shape.clone(), format, gw),
        )
    }

    fn add_bias(&self, x: &CpuTensor<T>, bias: &CpuTensor<T>) -> CpuTensor<T> {
        let c = x.shape[1];
        assert_eq!(
            bias.data.len(),
            c,
            "add_bias: {c} channels, bias has {}",
            bias.data.len()
        );
        let p: usize = x.shape[2..].iter().product();
        let out = map_rows(&x.data, p, |bc| bias.data[bc % c], |v, b| v + b);
        self.tensor(x.shape.clone(), wider(x.format, bias.format), out)
    }

    fn linear(
        &self,
        x: &CpuTensor<T>,
        w: &CpuTensor<T>,
        bias: Option<&CpuTensor<T>>,
        format: Format,
    ) -> CpuTensor<T> {
        let (b, ci) = (x.shape[0], x.shape[1]);
        let (co, wi) = (w.shape[0], w.shape[1]);
        assert_eq!(ci, wi, "linear: {ci} input channels, weight has {wi}");
        let p: usize = x.shape[2..].iter().product();
        let xr = self.rounded(&x.data, format);
        let wr = self.rounded(&w.data, format);
        let br = bias.map(|bb| self.rounded(&bb.data, format));
        let out = zeroed_chunks(b * co * p, co * p, T::zero(), |bb, y| {
            let xs = &xr[bb * ci * p..(bb + 1) * ci * p];
            if let Some(br) = &br {
                for (o, row) in y.chunks_mut(p).enumerate() {
                    row.iter_mut().for_each(|v| *v = br[o]);
                }
            }
            let beta = if br.is_some() {
                T::from_f64(1.0)
            } else {
                T::zero()
            };
            // SAFETY: W is (co x ci) row-major, X_b (ci x p), Y_b (co x p), all in bounds.
            unsafe {
                T::gemm(
                    co,
                    ci,
                    p,
                    T::from_f64(1.0),
                    wr.as_ptr(),
                    ci as isize,
                    1,
                    xs.as_ptr(),
                    p as isize,
                    1,
                    beta,
                    y.as_mut_ptr(),
                    p as isize,
                    1,
                )
            }
        });
        let mut shape = x.shape.clone();
        shape[1] = co;
        self.tensor(shape, format, out)
    }

    fn linear_backward(
        &self,
        x: &CpuTensor<T>,
        w: &CpuTensor<T>,
        g: &CpuTensor<T>,
        with_bias: bool,
        format: Format,
    ) -> (CpuTensor<T>, CpuTensor<T>, Option<CpuTensor<T>>) {
        let (b, ci) = (x.shape[0], x.shape[1]);
        let co = w.shape[0];
        let p: usize = x.shape[2..].iter().product();
        let xr = self.rounded(&x.data, format);
        let wr = self.rounded(&w.data, format);
        let gr = self.rounded(&g.data, format);
        let one = T::from_f64(1.0);
        let gx = zeroed_chunks(b * ci * p, ci * p, T::zero(), |bb, dx| {
            let gs = &gr[bb * co * p..(bb + 1) * co * p];
            // SAFETY: W^T is W with swapped strides (ci x co), G_b (co x p), dX_b (ci x p).
            unsafe {
                T::gemm(
                    ci,
                    co,
                    p,
                    one,
                    wr.as_ptr(),
                    1,
                    ci as isize,
                    gs.as_ptr(),
                    p as isize,
                    1,
                    T::zero(),
                    dx.as_mut_ptr(),
                    p as isize,
                    1,
                )
            }
        });
        // dW = sum_b G_b X_b^T: one product per sample (in parallel, each thread packing only
        // its own samples' operands), then the partials summed in sample order, so the bits do
        // not depend on the thread count.
        let parts = zeroed_chunks(b * co * ci, co * ci, T::zero(), |bb, dw| {
            // SAFETY: G_b (co x p), X_b^T (p x ci) via swapped strides, dW_b (co x ci).
            unsafe {
                T::gemm(
                    co,
                    p,
                    ci,
                    one,
                    gr[bb * co * p..].as_ptr(),
                    p as isize,
                    1,
                    xr[bb * ci * p..].as_ptr(),
                    1,
                    p as isize,
                    T::zero(),
                    dw.as_mut_ptr(),
                    ci as isize,
                    1,
                )
            }
        });
        let mut gw = parts[..co * ci].to_vec();
        for part in parts.chunks(co * ci).skip(1) {
            gw.iter_mut().zip(part).for_each(|(w, v)| *w += *v);
        }
        let gb = with_bias.then(|| self.tensor(vec![co], format, channel_sums(&gr, co, p)));
        (
            self.tensor(x.shape.clone(), format, gx),
            self.tensor(w.shape.clone(), format, gw),
            gb,
        )
    }

    fn pointwise(&self, op: Pointwise, x: &CpuTensor<T>) -> CpuTensor<T> {
        // One map per op (not a match per element) so each loop vectorises.
        let out = with_forward!(T, op, |f| map(&x.data, f));
        self.tensor(x.shape.clone(), x.format, out)
    }

    fn pointwise_backward(
        &self,
        op: Pointwise,
        x: &CpuTensor<T>,
        g: &CpuTensor<T>,
    ) -> CpuTensor<T> {
        let out = match op {
            // A constant derivative needs only the gradient.
            Pointwise::Scale(s) => {
                let s = T::from_f64(s);
                map(&g.data, |gv| gv * s)
            }
            _ => with_backward!(T, op, |d| zip_map(&g.data, &x.data, d)),
        };
        self.tensor(g.shape.clone(), g.format, out)
    }

    fn add(&self, a: &CpuTensor<T>, b: &CpuTensor<T>) -> CpuTensor<T> {
        assert_eq!(
            a.shape, b.shape,
            "add: shapes {:?} and {:?}",
            a.shape, b.shape
        );
        let out = zip_map(&a.data, &b.data, |x, y| x + y);
        self.tensor(a.shape.clone(), wider(a.format, b.format), out)
    }

    fn scale_channels(&self, x: &CpuTensor<T>, w: &CpuTensor<T>) -> CpuTensor<T> {
        let c = x.shape[1];
        assert_eq!(
            w.data.len(),
            c,
            "scale_channels: {c} channels, {} weights",
            w.data.len()
        );
        let p: usize = x.shape[2..].iter().product();
        let out = map_rows(&x.data, p, |bc| w.data[bc % c], |v, s| v * s);
        self.tensor(x.shape.clone(), wider(x.format, w.format), out)
    }

    fn scale_channels_backward(
        &self,
        x: &CpuTensor<T>,
        w: &CpuTensor<T>,
        g: &CpuTensor<T>,
    ) -> (CpuTensor<T>, CpuTensor<T>) {
        let c = x.shape[1];
        let p: usize = x.shape[2..].iter().product();
        let gx = self.scale_channels(g, w);
        let dots = g
            .data
            .par_chunks(p)
            .zip(x.data.par_chunks(p))
            .map(|(gs, xs)| gs.iter().zip(xs).map(|(a, b)| *a * *b).sum::<T>())
            .collect();
        let gw = per_channel(dots, c);
        (gx, self.tensor(w.shape.clone(), w.format, gw))
    }

    fn channel_sum(&self, g: &CpuTensor<T>) -> CpuTensor<T> {
        let c = g.shape[1];
        let p: usize = g.shape[2..].iter().product();
        self.tensor(vec![c], g.format, channel_sums(&g.data, c, p))
    }

    fn add_act(
        &self,
        x: &CpuTensor<T>,
        bias: Option<&CpuTensor<T>>,
        s: Option<&CpuTensor<T>>,
        act: Option<Pointwise>,
    ) -> (CpuTensor<T>, Option<CpuTensor<T>>) {
        // The formats of `add_bias` and `add`, whose roundings the pass applies.
        let f1 = bias.map_or(x.format, |b| wider(x.format, b.format));
        let f2 = s.map_or(f1, |s| wider(f1, s.format));
        let c = x.shape[1];
        if let Some(b) = bias {
            assert_eq!(
                b.data.len(),
                c,
                "add_act: {c} channels, bias has {}",
                b.data.len()
            );
        }
        if let Some(s) = s {
            assert_eq!(
                x.shape, s.shape,
                "add_act: shapes {:?} and {:?}",
                x.shape, s.shape
            );
        }
        let p: usize = x.shape[2..].iter().product();
        let (u, v) = fused::add_act(
            &x.data,
            bias.map(|b| &b.data[..]),
            s.map(|s| &s.data[..]),
            act,
            c,
            p,
            f1,
            f2,
        );
        let v = v.map(|v| self.tensor(x.shape.clone(), f2, v));
        (self.tensor(x.shape.clone(), f2, u), v)
    }

    fn pointwise_backward_add(
        &self,
        op: Pointwise,
        x: &CpuTensor<T>,
        g: &CpuTensor<T>,
        adds: &[&CpuTensor<T>],
    ) -> CpuTensor<T> {
        // The format of `pointwise_backward`, then of each `add`.
        let mut formats = vec![g.format];
        for a in adds {
            assert_eq!(g.shape, a.shape, "pointwise_backward_add: shapes differ");
            formats.push(wider(formats[formats.len() - 1], a.format));
        }
        let data: Vec<&[T]> = adds.iter().map(|a| &a.data[..]).collect();
        let out = fused::backward_add(op, &x.data, &g.data, &data, &formats);
        self.tensor(g.shape.clone(), formats[adds.len()], out)
    }

    fn pointwise_backward_channel_sum(
        &self,
        op: Pointwise,
        x: &CpuTensor<T>,
        g: &CpuTensor<T>,
    ) -> (CpuTensor<T>, CpuTensor<T>) {
        let c = g.shape[1];
        let p: usize = g.shape[2..].iter().product();
        let (gx, sums) = fused::backward_channel_sum(op, &x.data, &g.data, c, p, g.format);
        (
            self.tensor(g.shape.clone(), g.format, gx),
            self.tensor(vec![c], g.format, sums),
        )
    }

    fn concat_channels(&self, a: &CpuTensor<T>, b: &CpuTensor<T>) -> CpuTensor<T> {
        assert_eq!(
            a.shape[0], b.shape[0],
            "concat_channels: batch sizes differ"
        );
        assert_eq!(a.shape[2..], b.shape[2..], "concat_channels: grids differ");
        let p: usize = a.shape[2..].iter().product();
        let (ca, cb) = (a.shape[1], b.shape[1]);
        let mut out = Vec::with_capacity(a.data.len() + b.data.len());
        for bb in 0..a.shape[0] {
            out.extend_from_slice(&a.data[bb * ca * p..(bb + 1) * ca * p]);
            out.extend_from_slice(&b.data[bb * cb * p..(bb + 1) * cb * p]);
        }
        let mut shape = a.shape.clone();
        shape[1] = ca + cb;
        self.tensor(shape, wider(a.format, b.format), out)
    }

    fn slice_channels(&self, x: &CpuTensor<T>, lo: usize, hi: usize) -> CpuTensor<T> {
        let c = x.shape[1];
        assert!(lo <= hi && hi <= c, "slice_channels {lo}..{hi} of {c}");
        let p: usize = x.shape[2..].iter().product();
        let mut out = Vec::with_capacity(x.shape[0] * (hi - lo) * p);
        for bb in 0..x.shape[0] {
            out.extend_from_slice(&x.data[(bb * c + lo) * p..(bb * c + hi) * p]);
        }
        let mut shape = x.shape.clone();
        shape[1] = hi - lo;
        self.tensor(shape, x.format, out)
    }

    fn zeros(&self, shape: &[usize], format: Format) -> CpuTensor<T> {
        self.tensor(
            shape.to_vec(),
            format,
            vec![T::zero(); shape.iter().product()],
        )
    }

    fn to_complex(&self, t: &CpuTensor<T>, format: Format) -> CpuCTensor<T> {
        let (last, lead) = t.shape.split_last().expect("to_complex: scalar tensor");
        assert_eq!(
            *last, 2,
            "to_complex: last axis of {:?} must hold (re, im)",
            t.shape
        );
        let c = t
            .data
            .chunks_exact(2)
            .map(|p| Complex::new(p[0], p[1]))
            .collect();
        self.ctensor(lead.to_vec(), format, c)
    }

    fn to_real(&self, t: &CpuCTensor<T>, format: Format) -> CpuTensor<T> {
        let mut shape = t.shape.clone();
        shape.push(2);
        let data = t.data.iter().flat_map(|c| [c.re, c.im]).collect();
        self.tensor(shape, format, data)
    }

    fn cp_weight(&self, f: &CpFactors<'_, CpuTensor<T>>, format: Format) -> CpuCTensor<T> {
        let d = CpDims::of(f, CpuTensor::shape);
        let out = cp_gemm::expand(&cp_slices(f), &d);
        self.ctensor(d.weight_shape(), format, out)
    }

    fn cp_weight_backward(
        &self,
        f: &CpFactors<'_, CpuTensor<T>>,
        gw: &CpuCTensor<T>,
    ) -> Vec<CpuTensor<T>> {
        let d = CpDims::of(f, CpuTensor::shape);
        self.factor_tensors(f, cp_gemm::expand_backward(&cp_slices(f), &d, &gw.data))
    }

    fn cp_factorized(&self) -> bool {
        true
    }

    fn cp_contract(
        &self,
        x: &CpuCTensor<T>,
        f: &CpFactors<'_, CpuTensor<T>>,
        format: Format,
    ) -> CpuCTensor<T> {
        if !T::holds(format) {
            // A low format rounds the dense weight (the contraction stage's semantics).
            return self.contract(
                x,
                &self.cp_weight(f, format),
                format,
                ContractForm::Standard,
            );
        }
        let d = CpDims::of(f, CpuTensor::shape);
        let (b, ..) = super::contract_dims(&x.shape, &d.weight_shape(), None);
        let y = cp_gemm::factorized(&x.data, &cp_slices(f), &d);
        let mut shape = vec![b, d.co];
        shape.extend(&d.kept);
        self.ctensor(shape, format, y)
    }

    fn cp_contract_backward(
        &self,
        x: &CpuCTensor<T>,
        f: &CpFactors<'_, CpuTensor<T>>,
        g: &CpuCTensor<T>,
        format: Format,
    ) -> (CpuCTensor<T>, Vec<CpuTensor<T>>) {
        if !T::holds(format) {
            return super::cp_contract_backward_expanded(self, x, f, g, format);
        }
        let d = CpDims::of(f, CpuTensor::shape);
        super::contract_dims(&x.shape, &d.weight_shape(), Some(&g.shape));
        let (gx, grads) = cp_gemm::factorized_backward(&x.data, &cp_slices(f), &d, &g.data);
        let grads = self.factor_tensors(f, grads);
        (self.ctensor(x.shape.clone(), format, gx), grads)
    }

    fn adam_update(
        &self,
        p: &mut CpuTensor<T>,
        g: &CpuTensor<T>,
        m: &mut CpuTensor<T>,
        v: &mut CpuTensor<T>,
        s: &AdamScalars,
    ) {
        // Element-wise: parallel chunks give the same bits as one loop.
        p.data
            .par_chunks_mut(CHUNK)
            .zip(g.data.par_chunks(CHUNK))
            .zip(m.data.par_chunks_mut(CHUNK))
            .zip(v.data.par_chunks_mut(CHUNK))
            .for_each(|(((p, g), m), v)| crate::fno::optim::adam_slice(p, g, m, v, s));
    }

    fn all_finite(&self, x: &CpuTensor<T>) -> bool {
        x.data.par_iter().all(|v| v.is_finite())
    }

    fn all_finite_complex(&self, x: &CpuCTensor<T>) -> bool {
        x.data
            .par_iter()
            .all(|v| v.re.is_finite() && v.im.is_finite())
    }

    fn checks(&self) -> Vec<bool> {
        Vec::new()
    }

    fn check_finite(
        &self,
        checks: &mut Vec<bool>,
        real: &[&CpuTensor<T>],
        complex: &[&CpuCTensor<T>],
    ) -> Option<bool> {
        let ok = real.iter().all(|x| self.all_finite(x))
            && complex.iter().all(|x| self.all_finite_complex(x));
        checks.push(ok);
        (!self.deferred_checks).then_some(ok)
    }

    fn read_checks(&self, checks: Vec<bool>) -> Vec<bool> {
        checks
    }

    fn mean_std(&self, x: &CpuTensor<T>) -> (f64, f64) {
        let n = x.data.len().max(1) as f64;
        let mean = x.data.iter().map(|v| v.to_f64()).sum::<f64>() / n;
        let var = x
            .data
            .iter()
            .map(|v| (v.to_f64() - mean).powi(2))
            .sum::<f64>()
            / n;
        (mean, var.sqrt())
    }
}

/// Keep freed heap memory in the process for reuse instead of returning it to the OS (glibc).
///
/// A training step allocates and frees tens of MB-sized activations; glibc serves blocks above
/// its mmap threshold with fresh `mmap`s and gives them back on `free`, so every step page-faults
/// and zero-fills all its activations again (a sixth of a CPU step's time at 64 x 64 in `perf`).
/// Raising the mmap and trim thresholds makes freed blocks reusable. The backend's memory
/// counters ([`MemStats`]) count tensors, not the heap, so they are unchanged; the process's RSS
/// stays near its peak between steps instead of falling.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before the work starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}
