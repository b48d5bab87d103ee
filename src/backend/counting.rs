//! Op-level accounting of the bytes a computation moves and the floating-point operations it
//! performs (issue 24's roofline accounting): [`Counting`] wraps any [`Backend`], forwards every
//! op unchanged and records one [`OpCount`] per op from the shapes and storage formats of its
//! operands (the backend's own [`Backend::shape`] and [`Backend::format`], so the CPU and a GPU
//! count the same step alike). The counts follow the ops the model calls (FFT or GEMM
//! transforms, dense or CP weights, whatever the policy rounds), not one backend's
//! implementation of them.
//!
//! **Bytes** (definition). An op reads every input tensor once and writes every output tensor
//! once, each at its storage width ([`format_bytes`] per real value, twice that per complex
//! value); an in-place update (Adam) reads and writes its tensors:
//!
//! ```text
//! bytes(op) = sum over inputs  numel * width(format)   (read)
//!           + sum over outputs numel * width(format)   (written)
//! ```
//!
//! That is the traffic the op sequence must move when no tensor stays in a cache from one op to
//! the next: a lower bound for an implementation that stores every format natively. Not
//! counted: traffic inside an op (an FFT's passes between axes, a GPU's transposes and
//! temporaries), and the CPU backend's own storage, which holds every value as its host scalar
//! (f32), so on the CPU an fp16 tensor really moves 2x and an fp8 one 4x its counted bytes.
//! Every output of an op is a new tensor on the CPU, so the bytes written over a step equal the
//! CPU's allocation accounting ([`MemStats::allocated_bytes`]) plus Adam's in-place writes
//! (tested in `tests/roofline.rs`).
//!
//! **FLOPs**: real floating-point operations, a multiply-add counting 2; copies, roundings,
//! format conversions and comparisons count 0. With b the batch, ci / co in / out channels, p
//! grid points, k kept modes (their product over the axes), r a CP rank:
//! - `linear`: 2 b co ci p, + b co p with a bias; `linear_backward`: 4 b co ci p (the input
//!   and weight gradients), + b co p for the bias gradient.
//! - `contract`: 8 b ci co k (a complex multiply-add is 4 multiplies and 4 adds);
//!   `contract_backward`: 16 b ci co k.
//! - spectral transforms, per (batch, channel) slice ([`spectral_flops`]): FFT: the nominal
//!   count of benchFFT / FFTW, 5 n log2 n per complex line of n points and 2.5 n log2 n per
//!   real one, whatever algorithm runs: every line of the last axis real, then along each other
//!   axis a (last to first) complex lines over the columns kept so far; GEMM (`dft_gemm`): its
//!   multiply-adds, 4 n m per last-axis line (a real value times a complex table entry, m kept)
//!   and 8 n_a k_a per complex line of axis a. The inverse is the mirror image of the forward
//!   and has the same count. A scale other than 1 adds 2 per kept complex value.
//! - `cp_weight`: 8 r per entry of the dense weight (ci co k entries); `cp_weight_backward`:
//!   16 r per entry; the per-factor products are of lower order and not counted.
//!   `cp_contract` / `cp_contract_backward` (the factorized order): the counts of
//!   [`CpPlan::factorized_flops`], the factor-sized products again not counted.
//! - element-wise ops (`pointwise` and its backward, `add`, `add_bias`, `scale_channels`): 1
//!   per output value, a transcendental function (GELU's erf and exp, tanh) included, so these
//!   ops' flops are a floor; the fused passes count what the ops they fuse count: `add_act` 1
//!   per value for each of the bias, the addend and the activation it applies,
//!   `pointwise_backward_add` 1 + (number of addends), `pointwise_backward_channel_sum` 2; `scale_channels_backward`: 3 per value (1 for the input gradient,
//!   2 for the gate's dot products); `channel_sum`: 1 per value read; `mean_std`: 4 per value.
//! - `adam_update`: 13 per parameter (`fno::optim::adam_slice`), + 1 with decoupled decay, + 2
//!   with coupled decay.
//! - losses: `rel_l2_loss` 8 per value (3 for ||p - y||^2, 2 for ||y||^2, 2 for the gradient,
//!   1 for the loss scale); `h1_loss` 7 + 11 d per value on a d-axis grid.
//! - uploads and downloads count the bytes written or read on the backend's side (a host
//!   transfer on a GPU) and 0 flops; finiteness checks read their tensors.

use super::{
    AdamScalars, Backend, ContractForm, CpDims, CpFactors, CpPlan, MemStats, Modes, Pointwise,
    SpectralForward, SpectralInverse, SpectralTransform, contract_dims, format_bytes,
};
use crate::precision::Format;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// What one op (or a sum of ops) reads, writes and computes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpCount {
    /// The op's name in [`Backend`] ("linear", "rfft_modes", ...; both losses are "loss", every
    /// finiteness check "check_finite"), or "total".
    pub op: &'static str,
    /// Bytes of the input tensors, at their storage width.
    pub bytes_read: u64,
    /// Bytes of the output tensors (in place: the updated ones), at their storage width.
    pub bytes_written: u64,
    /// Real floating-point operations (a multiply-add is 2).
    pub flops: u64,
}

impl OpCount {
    /// Bytes read plus bytes written.
    pub fn bytes(&self) -> u64 {
        self.bytes_read + self.bytes_written
    }

    fn add(&mut self, o: &OpCount) {
        self.bytes_read += o.bytes_read;
        self.bytes_written += o.bytes_written;
        self.flops += o.flops;
    }
}

/// The sum of `ops`, named "total".
pub fn total(ops: &[OpCount]) -> OpCount {
    let mut t = OpCount {
        op: "total",
        ..OpCount::default()
    };
    ops.iter().for_each(|o| t.add(o));
    t
}

/// Calls and summed counts per op name, in name order.
pub fn by_op(ops: &[OpCount]) -> BTreeMap<&'static str, (usize, OpCount)> {
    let mut m: BTreeMap<&'static str, (usize, OpCount)> = BTreeMap::new();
    for o in ops {
        let e = m.entry(o.op).or_insert((
            0,
            OpCount {
                op: o.op,
                ..OpCount::default()
            },
        ));
        e.0 += 1;
        e.1.add(o);
    }
    m
}

/// Nominal flops of one FFT of `n` points (5 n log2 n complex, half that real).
fn nominal_fft(n: usize, real: bool) -> f64 {
    let c = if real { 2.5 } else { 5.0 };
    c * n as f64 * (n as f64).log2()
}

/// Flops of one truncated spectral transform of one (batch, channel) slice on `grid` (n_1 ..
/// n_d, p points) keeping `kept` entries per axis (m_1 .. m_d, as [`Modes::kept_shape`]),
/// forward or inverse (the same count), scale 1, by the conventions of this module:
///
/// ```text
/// FFT:  (p / n_d) 2.5 n_d log2 n_d + sum_{a < d} C_a 5 n_a log2 n_a
/// GEMM: (p / n_d) 4 n_d m_d        + sum_{a < d} C_a 8 n_a m_a
/// C_a = n_1 ... n_{a-1} m_{a+1} ... m_d   (the lines along axis a, last axis first)
/// ```
pub fn spectral_flops(transform: SpectralTransform, grid: &[usize], kept: &[usize]) -> f64 {
    let d = grid.len();
    let npts: usize = grid.iter().product();
    let (nl, ml) = (grid[d - 1], kept[d - 1]);
    let lines = (npts / nl) as f64;
    let mut f = match transform {
        SpectralTransform::Fft => lines * nominal_fft(nl, true),
        SpectralTransform::Gemm => lines * 4.0 * (nl * ml) as f64,
    };
    // Axis a runs over the grid axes before it and the kept entries after it.
    for a in 0..d - 1 {
        let cols: usize =
            grid[..a].iter().product::<usize>() * kept[a + 1..].iter().product::<usize>();
        f += cols as f64
            * match transform {
                SpectralTransform::Fft => nominal_fft(grid[a], false),
                SpectralTransform::Gemm => 8.0 * (grid[a] * kept[a]) as f64,
            };
    }
    f
}

/// Flops of a spectral transform of `slices` slices (see [`spectral_flops`]), with 2 per kept
/// complex value for a scale other than 1.
fn transform_flops(
    transform: SpectralTransform,
    grid: &[usize],
    kept: &[usize],
    slices: usize,
    scale: f64,
) -> u64 {
    let nkept: usize = kept.iter().product();
    let scaling = if scale != 1.0 { 2 * nkept } else { 0 };
    (slices as f64 * (spectral_flops(transform, grid, kept) + scaling as f64)).round() as u64
}

/// A [`Backend`] that forwards every op to `inner` and records its [`OpCount`] (the module's
/// definitions); results are `inner`'s, unchanged.
pub struct Counting<'a, B: Backend> {
    inner: &'a B,
    log: Mutex<Vec<OpCount>>,
}

impl<'a, B: Backend> Counting<'a, B> {
    /// A wrapper with an empty log.
    pub fn new(inner: &'a B) -> Self {
        Counting {
            inner,
            log: Mutex::new(Vec::new()),
        }
    }

    /// The counts recorded since the last call, in call order (the log is emptied).
    pub fn take(&self) -> Vec<OpCount> {
        std::mem::take(&mut *self.log.lock().expect("op log poisoned"))
    }

    fn record(&self, op: &'static str, bytes_read: u64, bytes_written: u64, flops: u64) {
        self.log.lock().expect("op log poisoned").push(OpCount {
            op,
            bytes_read,
            bytes_written,
            flops,
        });
    }

    fn numel(&self, t: &B::Tensor) -> u64 {
        self.inner.shape(t).iter().product::<usize>() as u64
    }

    /// Bytes of a real tensor at its storage width.
    fn rb(&self, t: &B::Tensor) -> u64 {
        self.numel(t) * format_bytes(self.inner.format(t)) as u64
    }

    /// Bytes of the input `x` a backward of `op` reads: none for a constant derivative (a
    /// scale needs only the gradient).
    fn derivative_input_bytes(&self, op: Pointwise, x: &B::Tensor) -> u64 {
        if matches!(op, Pointwise::Scale(_)) {
            0
        } else {
            self.rb(x)
        }
    }

    /// Bytes of a complex tensor at its storage width.
    fn cb(&self, t: &B::CTensor) -> u64 {
        let n: usize = self.inner.cshape(t).iter().product();
        2 * n as u64 * format_bytes(self.inner.cformat(t)) as u64
    }

    fn factor_bytes(&self, f: &CpFactors<'_, B::Tensor>) -> u64 {
        [f.lambda, f.a, f.b]
            .into_iter()
            .chain(f.modes.iter().copied())
            .map(|t| self.rb(t))
            .sum()
    }

    fn cp_entries(&self, f: &CpFactors<'_, B::Tensor>) -> u64 {
        let d = CpDims::of(f, |t| self.inner.shape(t));
        (d.r * d.ci * d.co * d.nk) as u64
    }
}

impl<B: Backend> Backend for Counting<'_, B> {
    type T = B::T;
    type Tensor = B::Tensor;
    type CTensor = B::CTensor;
    type Checks = B::Checks;

    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn upload(&self, shape: &[usize], data: &[B::T], format: Format) -> B::Tensor {
        let y = self.inner.upload(shape, data, format);
        self.record("upload", 0, self.rb(&y), 0);
        y
    }
    fn upload_complex(&self, shape: &[usize], data: &[B::T], format: Format) -> B::CTensor {
        let y = self.inner.upload_complex(shape, data, format);
        self.record("upload", 0, self.cb(&y), 0);
        y
    }
    fn download(&self, t: &B::Tensor) -> Vec<B::T> {
        self.record("download", self.rb(t), 0, 0);
        self.inner.download(t)
    }
    fn download_complex(&self, t: &B::CTensor) -> Vec<B::T> {
        self.record("download", self.cb(t), 0, 0);
        self.inner.download_complex(t)
    }
    fn shape<'a>(&self, t: &'a B::Tensor) -> &'a [usize] {
        self.inner.shape(t)
    }
    fn cshape<'a>(&self, t: &'a B::CTensor) -> &'a [usize] {
        self.inner.cshape(t)
    }
    fn format(&self, t: &B::Tensor) -> Format {
        self.inner.format(t)
    }
    fn cformat(&self, t: &B::CTensor) -> Format {
        self.inner.cformat(t)
    }
    fn cast(&self, t: &B::Tensor, format: Format) -> B::Tensor {
        let y = self.inner.cast(t, format);
        self.record("cast", self.rb(t), self.rb(&y), 0);
        y
    }
    fn mem(&self) -> MemStats {
        self.inner.mem()
    }
    fn reset_peak(&self) {
        self.inner.reset_peak()
    }
    fn synchronize(&self) {
        self.inner.synchronize()
    }

    fn rfft_modes(&self, x: &B::Tensor, modes: &Modes, opt: SpectralForward) -> B::CTensor {
        let y = self.inner.rfft_modes(x, modes, opt);
        let shape = self.inner.shape(x);
        let grid = &shape[shape.len() - modes.0.len()..];
        let slices = (self.numel(x) as usize) / grid.iter().product::<usize>();
        let kept = modes.kept_shape();
        let flops = transform_flops(opt.transform, grid, &kept, slices, opt.scale);
        self.record("rfft_modes", self.rb(x), self.cb(&y), flops);
        y
    }
    fn irfft_modes(&self, x: &B::CTensor, grid: &[usize], opt: SpectralInverse) -> B::Tensor {
        let y = self.inner.irfft_modes(x, grid, opt);
        let shape = self.inner.cshape(x);
        let kept = &shape[shape.len() - grid.len()..];
        let slices = shape.iter().product::<usize>() / kept.iter().product::<usize>();
        let flops = transform_flops(opt.transform, grid, kept, slices, opt.scale);
        self.record("irfft_modes", self.cb(x), self.rb(&y), flops);
        y
    }

    fn contract(
        &self,
        x: &B::CTensor,
        w: &B::CTensor,
        format: Format,
        form: ContractForm,
    ) -> B::CTensor {
        let (b, ci, co, k) = contract_dims(self.inner.cshape(x), self.inner.cshape(w), None);
        let y = self.inner.contract(x, w, format, form);
        let flops = form.flops(b, ci, co, k);
        self.record("contract", self.cb(x) + self.cb(w), self.cb(&y), flops);
        y
    }
    fn contract_backward(
        &self,
        x: &B::CTensor,
        w: &B::CTensor,
        g: &B::CTensor,
        format: Format,
        form: ContractForm,
    ) -> (B::CTensor, B::CTensor) {
        let (b, ci, co, k) = contract_dims(
            self.inner.cshape(x),
            self.inner.cshape(w),
            Some(self.inner.cshape(g)),
        );
        let (gx, gw) = self.inner.contract_backward(x, w, g, format, form);
        self.record(
            "contract_backward",
            self.cb(x) + self.cb(w) + self.cb(g),
            self.cb(&gx) + self.cb(&gw),
            form.flops(b, co, ci, k) + form.flops(ci, b, co, k),
        );
        (gx, gw)
    }
    fn add_bias(&self, x: &B::Tensor, bias: &B::Tensor) -> B::Tensor {
        let y = self.inner.add_bias(x, bias);
        self.record(
            "add_bias",
            self.rb(x) + self.rb(bias),
            self.rb(&y),
            self.numel(&y),
        );
        y
    }

    fn linear(
        &self,
        x: &B::Tensor,
        w: &B::Tensor,
        bias: Option<&B::Tensor>,
        format: Format,
    ) -> B::Tensor {
        let y = self.inner.linear(x, w, bias, format);
        let ci = self.inner.shape(x)[1] as u64;
        let out = self.numel(&y);
        let flops = 2 * out * ci + if bias.is_some() { out } else { 0 };
        let read = self.rb(x) + self.rb(w) + bias.map_or(0, |b| self.rb(b));
        self.record("linear", read, self.rb(&y), flops);
        y
    }
    fn linear_backward(
        &self,
        x: &B::Tensor,
        w: &B::Tensor,
        g: &B::Tensor,
        with_bias: bool,
        format: Format,
    ) -> (B::Tensor, B::Tensor, Option<B::Tensor>) {
        let (gx, gw, gb) = self.inner.linear_backward(x, w, g, with_bias, format);
        let ci = self.inner.shape(x)[1] as u64;
        let out = self.numel(g);
        let flops = 4 * out * ci + if with_bias { out } else { 0 };
        let written = self.rb(&gx) + self.rb(&gw) + gb.as_ref().map_or(0, |b| self.rb(b));
        self.record(
            "linear_backward",
            self.rb(x) + self.rb(w) + self.rb(g),
            written,
            flops,
        );
        (gx, gw, gb)
    }

    fn pointwise(&self, op: Pointwise, x: &B::Tensor) -> B::Tensor {
        let y = self.inner.pointwise(op, x);
        self.record("pointwise", self.rb(x), self.rb(&y), self.numel(&y));
        y
    }
    fn pointwise_backward(&self, op: Pointwise, x: &B::Tensor, g: &B::Tensor) -> B::Tensor {
        let y = self.inner.pointwise_backward(op, x, g);
        let xr = self.derivative_input_bytes(op, x);
        let read = xr + self.rb(g);
        self.record("pointwise_backward", read, self.rb(&y), self.numel(&y));
        y
    }
    fn add(&self, a: &B::Tensor, b: &B::Tensor) -> B::Tensor {
        let y = self.inner.add(a, b);
        self.record("add", self.rb(a) + self.rb(b), self.rb(&y), self.numel(&y));
        y
    }
    fn scale_channels(&self, x: &B::Tensor, w: &B::Tensor) -> B::Tensor {
        let y = self.inner.scale_channels(x, w);
        let read = self.rb(x) + self.rb(w);
        self.record("scale_channels", read, self.rb(&y), self.numel(&y));
        y
    }
    fn scale_channels_backward(
        &self,
        x: &B::Tensor,
        w: &B::Tensor,
        g: &B::Tensor,
    ) -> (B::Tensor, B::Tensor) {
        let (gx, gw) = self.inner.scale_channels_backward(x, w, g);
        self.record(
            "scale_channels_backward",
            self.rb(x) + self.rb(w) + self.rb(g),
            self.rb(&gx) + self.rb(&gw),
            3 * self.numel(g),
        );
        (gx, gw)
    }
    fn channel_sum(&self, g: &B::Tensor) -> B::Tensor {
        let y = self.inner.channel_sum(g);
        self.record("channel_sum", self.rb(g), self.rb(&y), self.numel(g));
        y
    }
    fn add_act(
        &self,
        x: &B::Tensor,
        bias: Option<&B::Tensor>,
        s: Option<&B::Tensor>,
        act: Option<Pointwise>,
    ) -> (B::Tensor, Option<B::Tensor>) {
        let (u, v) = self.inner.add_act(x, bias, s, act);
        let read = self.rb(x) + bias.map_or(0, |b| self.rb(b)) + s.map_or(0, |s| self.rb(s));
        let written = self.rb(&u) + v.as_ref().map_or(0, |v| self.rb(v));
        let per_value = bias.is_some() as u64 + s.is_some() as u64 + act.is_some() as u64;
        self.record("add_act", read, written, per_value * self.numel(&u));
        (u, v)
    }
    fn pointwise_backward_add(
        &self,
        op: Pointwise,
        x: &B::Tensor,
        g: &B::Tensor,
        adds: &[&B::Tensor],
    ) -> B::Tensor {
        let y = self.inner.pointwise_backward_add(op, x, g, adds);
        let xr = self.derivative_input_bytes(op, x);
        let read = xr + self.rb(g) + adds.iter().map(|a| self.rb(a)).sum::<u64>();
        let flops = (1 + adds.len() as u64) * self.numel(&y);
        self.record("pointwise_backward_add", read, self.rb(&y), flops);
        y
    }
    fn pointwise_backward_channel_sum(
        &self,
        op: Pointwise,
        x: &B::Tensor,
        g: &B::Tensor,
    ) -> (B::Tensor, B::Tensor) {
        let (gx, sum) = self.inner.pointwise_backward_channel_sum(op, x, g);
        let xr = self.derivative_input_bytes(op, x);
        let written = self.rb(&gx) + self.rb(&sum);
        let flops = 2 * self.numel(&gx);
        self.record(
            "pointwise_backward_channel_sum",
            xr + self.rb(g),
            written,
            flops,
        );
        (gx, sum)
    }
    fn concat_channels(&self, a: &B::Tensor, b: &B::Tensor) -> B::Tensor {
        let y = self.inner.concat_channels(a, b);
        self.record("concat_channels", self.rb(a) + self.rb(b), self.rb(&y), 0);
        y
    }
    fn slice_channels(&self, x: &B::Tensor, lo: usize, hi: usize) -> B::Tensor {
        let y = self.inner.slice_channels(x, lo, hi);
        // Only the slice is read.
        self.record("slice_channels", self.rb(&y), self.rb(&y), 0);
        y
    }

    fn zeros(&self, shape: &[usize], format: Format) -> B::Tensor {
        let y = self.inner.zeros(shape, format);
        self.record("zeros", 0, self.rb(&y), 0);
        y
    }
    fn to_complex(&self, t: &B::Tensor, format: Format) -> B::CTensor {
        let y = self.inner.to_complex(t, format);
        self.record("to_complex", self.rb(t), self.cb(&y), 0);
        y
    }
    fn to_real(&self, t: &B::CTensor, format: Format) -> B::Tensor {
        let y = self.inner.to_real(t, format);
        self.record("to_real", self.cb(t), self.rb(&y), 0);
        y
    }
    fn cp_weight(&self, f: &CpFactors<'_, B::Tensor>, format: Format) -> B::CTensor {
        let y = self.inner.cp_weight(f, format);
        let flops = 8 * self.cp_entries(f);
        self.record("cp_weight", self.factor_bytes(f), self.cb(&y), flops);
        y
    }
    fn cp_weight_backward(&self, f: &CpFactors<'_, B::Tensor>, gw: &B::CTensor) -> Vec<B::Tensor> {
        let gs = self.inner.cp_weight_backward(f, gw);
        self.record(
            "cp_weight_backward",
            self.factor_bytes(f) + self.cb(gw),
            gs.iter().map(|g| self.rb(g)).sum(),
            16 * self.cp_entries(f),
        );
        gs
    }
    fn cp_factorized(&self) -> bool {
        self.inner.cp_factorized()
    }
    fn cp_contract(
        &self,
        x: &B::CTensor,
        f: &CpFactors<'_, B::Tensor>,
        format: Format,
    ) -> B::CTensor {
        let y = self.inner.cp_contract(x, f, format);
        let d = CpDims::of(f, |t| self.inner.shape(t));
        let b = self.inner.cshape(x)[0] as u64;
        let read = self.cb(x) + self.factor_bytes(f);
        let flops = CpPlan::factorized_flops(b, &d).0;
        self.record("cp_contract", read, self.cb(&y), flops);
        y
    }
    fn cp_contract_backward(
        &self,
        x: &B::CTensor,
        f: &CpFactors<'_, B::Tensor>,
        g: &B::CTensor,
        format: Format,
    ) -> (B::CTensor, Vec<B::Tensor>) {
        let (gx, gs) = self.inner.cp_contract_backward(x, f, g, format);
        let d = CpDims::of(f, |t| self.inner.shape(t));
        let b = self.inner.cshape(x)[0] as u64;
        let read = self.cb(x) + self.factor_bytes(f) + self.cb(g);
        let written = self.cb(&gx) + gs.iter().map(|t| self.rb(t)).sum::<u64>();
        let flops = CpPlan::factorized_flops(b, &d).1;
        self.record("cp_contract_backward", read, written, flops);
        (gx, gs)
    }
    fn adam_update(
        &self,
        p: &mut B::Tensor,
        g: &B::Tensor,
        m: &mut B::Tensor,
        v: &mut B::Tensor,
        s: &AdamScalars,
    ) {
        self.inner.adam_update(p, g, m, v, s);
        let per = 13 + u64::from(s.decoupled) + 2 * u64::from(s.coupled);
        let written = self.rb(p) + self.rb(m) + self.rb(v);
        self.record(
            "adam_update",
            written + self.rb(g),
            written,
            per * self.numel(p),
        );
    }

    fn all_finite(&self, x: &B::Tensor) -> bool {
        self.record("check_finite", self.rb(x), 0, 0);
        self.inner.all_finite(x)
    }
    fn all_finite_each(&self, xs: &[&B::Tensor]) -> bool {
        let read = xs.iter().map(|x| self.rb(x)).sum();
        self.record("check_finite", read, 0, 0);
        self.inner.all_finite_each(xs)
    }
    fn all_finite_complex(&self, x: &B::CTensor) -> bool {
        self.record("check_finite", self.cb(x), 0, 0);
        self.inner.all_finite_complex(x)
    }
    fn checks(&self) -> B::Checks {
        self.inner.checks()
    }
    fn check_finite(
        &self,
        checks: &mut B::Checks,
        real: &[&B::Tensor],
        complex: &[&B::CTensor],
    ) -> Option<bool> {
        let read = real.iter().map(|x| self.rb(x)).sum::<u64>()
            + complex.iter().map(|x| self.cb(x)).sum::<u64>();
        self.record("check_finite", read, 0, 0);
        self.inner.check_finite(checks, real, complex)
    }
    fn read_checks(&self, checks: B::Checks) -> Vec<bool> {
        self.inner.read_checks(checks)
    }
    fn mean_std(&self, x: &B::Tensor) -> (f64, f64) {
        self.record("mean_std", self.rb(x), 0, 4 * self.numel(x));
        self.inner.mean_std(x)
    }

    fn rel_l2_loss(&self, pred: &B::Tensor, target: &B::Tensor, scale: f32) -> (f64, B::Tensor) {
        let (l, g) = self.inner.rel_l2_loss(pred, target, scale);
        let read = self.rb(pred) + self.rb(target);
        self.record("loss", read, self.rb(&g), 8 * self.numel(pred));
        (l, g)
    }
    fn h1_loss(&self, pred: &B::Tensor, target: &B::Tensor, scale: f32) -> (f64, B::Tensor) {
        let (l, g) = self.inner.h1_loss(pred, target, scale);
        let d = self.inner.shape(pred).len().saturating_sub(2) as u64;
        let read = self.rb(pred) + self.rb(target);
        self.record("loss", read, self.rb(&g), (7 + 11 * d) * self.numel(pred));
        (l, g)
    }
}
