//! Compute backends.
//!
//! [`Backend`] is the contract between the FNO (`src/fno`) and the hardware: small groups of ops
//! (spectral transforms, spectral contraction, dense linear maps, pointwise activations,
//! reductions) over tensors that carry their storage [`Format`]. The model only calls these ops,
//! so a backend plugs in without touching `src/fno`. [`cpu::Cpu`] is the reference that defines
//! what every op means (and emulates every low format exactly); `cuda` is the NVIDIA GPU layer
//! (cudarc with dynamic loading: the default build needs no CUDA toolkit, and without a driver
//! every entry point returns a clear error).
//!
//! Layout: real tensors are channels-first, row-major `(batch, channels, n_1, ..., n_d)`;
//! spectral tensors are complex `(batch, channels, k_1, ..., k_d)` over the kept modes (see
//! [`Modes`]). Weights are tensors too, so a device backend keeps them resident.

mod contract;
pub mod counting;
mod cp_gemm;
pub mod cpu;
pub mod cuda;
mod dft_gemm;
mod elementwise;
mod fused;
pub mod roofline;

use crate::fno::Scalar;
use crate::fno::loss::LossKind;
use crate::precision::Format;

/// Which Fourier modes a spectral layer keeps, as in the original FNO (Li et al. 2021): along every
/// axis but the last the frequencies 0..m-1 and -m..-1 (2m entries, needs 2m <= n); along the
/// last axis the real-FFT half 0..m-1 (needs m <= n/2 + 1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Modes(pub Vec<usize>);

impl Modes {
    /// Kept entries per axis: 2m for all axes but the last, m for the last.
    pub fn kept_shape(&self) -> Vec<usize> {
        let d = self.0.len();
        self.0
            .iter()
            .enumerate()
            .map(|(i, &m)| if i + 1 < d { 2 * m } else { m })
            .collect()
    }

    /// The most modes axis `axis` of `dims` can keep on `n` points: n/2 on every axis but the
    /// last (2m frequencies kept, 2m <= n), n/2 + 1 on the last (the real FFT's half).
    pub fn axis_limit(axis: usize, dims: usize, n: usize) -> usize {
        if axis + 1 < dims { n / 2 } else { n / 2 + 1 }
    }

    /// Check the modes fit a grid; the error names the axis and the limit.
    pub fn check_grid(&self, grid: &[usize]) -> Result<(), String> {
        if grid.len() != self.0.len() {
            return Err(format!(
                "{} mode counts for a {}-D grid",
                self.0.len(),
                grid.len()
            ));
        }
        let d = grid.len();
        for (i, (&m, &n)) in self.0.iter().zip(grid).enumerate() {
            let limit = Self::axis_limit(i, d, n);
            if m == 0 || m > limit {
                return Err(format!(
                    "modes[{i}] = {m} must be in 1..={limit} for a grid of {n} points on that axis"
                ));
            }
        }
        Ok(())
    }

    /// Frequency (signed) of kept index `j` along axis `axis` of a grid with `n` points.
    pub fn frequency(&self, axis: usize, j: usize) -> i64 {
        let m = self.0[axis];
        if axis + 1 == self.0.len() || j < m {
            j as i64
        } else {
            j as i64 - 2 * m as i64
        }
    }
}

/// Hermitian weight c_k of the last-axis index k on an n-point axis (see [`SpectralInverse`]).
pub(crate) fn herm_weight(k: usize, n: usize) -> f64 {
    if k == 0 || 2 * k == n { 1.0 } else { 2.0 }
}

/// Live and peak bytes of the tensors a backend holds, counted at their storage width.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemStats {
    pub live_bytes: usize,
    pub peak_bytes: usize,
    /// Bytes of every tensor (the CPU) or device buffer (a GPU, op temporaries included) the
    /// backend has created since it started, freed or not: the difference over a step is the
    /// bytes the step allocated, each written at least once.
    pub allocated_bytes: u64,
}

/// Bytes per real element of a storage format (complex elements take two).
pub fn format_bytes(fmt: Format) -> usize {
    match fmt {
        Format::Fp64 => 8,
        Format::Fp32 | Format::Tf32 => 4,
        Format::Bf16 | Format::Fp16 => 2,
        Format::E5m2 | Format::E4m3 | Format::E4m3Sat => 1,
    }
}

/// How a spectral layer computes its truncated transforms.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum SpectralTransform {
    /// FFTs of the whole axis, then the kept modes (rustfft in fp32; emulated radix-4 /
    /// Bluestein in lower formats: every butterfly operation rounded, model III).
    #[default]
    Fft,
    /// The kept modes as matrix products with a rounded cos/sin table, products exact and sums
    /// in fp32, as tensor cores compute them (`backend::dft_gemm`; any grid size).
    Gemm,
}

impl SpectralTransform {
    /// Name in configs and on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            SpectralTransform::Fft => "fft",
            SpectralTransform::Gemm => "gemm",
        }
    }
}

impl std::fmt::Display for SpectralTransform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for SpectralTransform {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fft" => Ok(SpectralTransform::Fft),
            "gemm" => Ok(SpectralTransform::Gemm),
            _ => Err(format!(
                "unknown spectral transform '{s}'; allowed: fft, gemm"
            )),
        }
    }
}

/// How the spectral contraction forms each complex multiply-add `l r`, `l = a + ib`,
/// `r = c + id` (config `model.contraction`, `mpno bench fno --contraction`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ContractForm {
    /// Four real products, `(ac - bd) + i(ad + bc)`.
    #[default]
    Standard,
    /// Gauss's three: `t1 = c(a + b)`, `t2 = a(d - c)`, `t3 = b(c + d)`, `re = t1 - t3`,
    /// `im = t1 + t2`, the sums formed once per operand and rounded to the format (they are
    /// GEMM operands). 3/4 of the products; the error bound grows (docs/bounds.md,
    /// "Spectral contraction").
    Gauss,
}

impl ContractForm {
    /// Name in configs and on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            ContractForm::Standard => "standard",
            ContractForm::Gauss => "gauss",
        }
    }

    /// Real floating-point operations of one product `Out (r x q) = L (r x j) R (j x q)` of
    /// complex matrices, per mode, times `k` modes: standard 8 per complex multiply-add; Gauss 6
    /// per multiply-add, 2 per output (`t1 - t3`, `t1 + t2`), 1 per left operand (`a + b`) and
    /// 2 per right one (`d - c`, `c + d`).
    pub const fn flops(self, r: usize, j: usize, q: usize, k: usize) -> u64 {
        let (r, j, q, k) = (r as u64, j as u64, q as u64, k as u64);
        match self {
            ContractForm::Standard => 8 * r * j * q * k,
            ContractForm::Gauss => (6 * r * j * q + 2 * r * q + r * j + 2 * j * q) * k,
        }
    }
}

impl std::fmt::Display for ContractForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ContractForm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "standard" => Ok(ContractForm::Standard),
            "gauss" => Ok(ContractForm::Gauss),
            _ => Err(format!(
                "unknown contraction form '{s}'; allowed: standard, gauss"
            )),
        }
    }
}

/// How a spectral layer with CP factors contracts them with its spectrum (config
/// `model.cp_order`, `mpno bench fno --cp-order`). Both orders compute the same
/// `y[b, o, k] = sum_i x[b, i, k] W[i, o, k]` with `W = sum_r lambda_r A_ir B_or prod_a M_a`;
/// they differ in work, memory and rounding ([`CpPlan`]).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum CpOrder {
    /// The order with fewer floating-point operations ([`CpPlan::flops`]) for this batch.
    #[default]
    Auto,
    /// The order whose largest intermediate is smaller ([`CpPlan::intermediate`]), fewer
    /// operations on a tie: the greedy-memory order of the paper's reference implementation.
    Memory,
    /// Always expand the dense weight.
    Expand,
    /// Always contract factor by factor.
    Factorized,
}

impl CpOrder {
    pub const fn name(self) -> &'static str {
        match self {
            CpOrder::Auto => "auto",
            CpOrder::Memory => "memory",
            CpOrder::Expand => "expand",
            CpOrder::Factorized => "factorized",
        }
    }
}

impl std::fmt::Display for CpOrder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for CpOrder {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(CpOrder::Auto),
            "memory" => Ok(CpOrder::Memory),
            "expand" => Ok(CpOrder::Expand),
            "factorized" => Ok(CpOrder::Factorized),
            _ => Err(format!(
                "unknown CP contraction order '{s}'; allowed: auto, memory, expand, factorized"
            )),
        }
    }
}

/// The two ways to contract a spectrum `x` (b, ci, k) with CP factors of rank r
/// (k kept modes in all):
/// - `Expand`: `W = Q P^T` (ci co k values, `Q = lambda A B`, `P` the mode products), then
///   [`Backend::contract`]; the backward forms `gW` and contracts it back onto the factors.
/// - `Factorized`: `U = A^T x` (b r k), `V = U lambda P`, `y = B V` per sample and mode; the
///   backward recomputes `U` and never forms `W` or `gW`.
///
/// Counts per training step (forward and backward, real operations, a complex multiply-add 8):
/// expand `8 k (3 ci co r + 3 b ci co)` (as [`counting`] counts `cp_weight`, `contract` and
/// their backwards); factorized `8 k b r (4 ci + 3 co) + 26 k b r` (U in the forward and again
/// in the backward, y, gV, gx, gA, gB, gL = sum_b conj(U) gV, and 6 per complex product of
/// V = U L and gU = gV conj(L), each twice or once).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpPlan {
    Expand,
    Factorized,
}

impl CpPlan {
    /// The order `rule` picks for batch `b`; `Expand` where the backend has no factorized
    /// contraction ([`Backend::cp_factorized`]).
    pub fn choose(rule: CpOrder, b: usize, d: &CpDims, factorized: bool) -> CpPlan {
        if !factorized {
            return CpPlan::Expand;
        }
        let key = |p: CpPlan| (p.flops(b, d), p.intermediate(b, d));
        let (e, f) = (key(CpPlan::Expand), key(CpPlan::Factorized));
        let factor_wins = match rule {
            CpOrder::Expand => false,
            CpOrder::Factorized => true,
            CpOrder::Auto => f < e,
            CpOrder::Memory => (f.1, f.0) < (e.1, e.0),
        };
        if factor_wins {
            CpPlan::Factorized
        } else {
            CpPlan::Expand
        }
    }

    /// Real floating-point operations of one forward and backward pass (see [`CpPlan`]).
    pub fn flops(self, b: usize, d: &CpDims) -> u64 {
        let [b, ci, co, r, k] = [b, d.ci, d.co, d.r, d.nk].map(|v| v as u64);
        match self {
            CpPlan::Expand => 8 * k * (3 * ci * co * r + 3 * b * ci * co),
            CpPlan::Factorized => {
                let (fwd, bwd) = CpPlan::factorized_flops(b, d);
                fwd + bwd
            }
        }
    }

    /// The factorized order's operations, (forward, backward): `8 k b r (ci + co) + 6 k b r`
    /// (U, y; V) and `8 k b r (3 ci + 2 co) + 20 k b r` (U again, gx, gA; gV, gB; gL; V, gU).
    pub fn factorized_flops(b: u64, d: &CpDims) -> (u64, u64) {
        let [ci, co, r, k] = [d.ci, d.co, d.r, d.nk].map(|v| v as u64);
        let kbr = k * b * r;
        (
            8 * kbr * (ci + co) + 6 * kbr,
            8 * kbr * (3 * ci + 2 * co) + 20 * kbr,
        )
    }

    /// Complex values of the largest intermediate: `W` (ci co k; the expand order also keeps
    /// it for the backward) or b r k (the factorized backward's per-sample `conj(U) gV` terms;
    /// `U` and `V` themselves live one sample at a time).
    pub fn intermediate(self, b: usize, d: &CpDims) -> u64 {
        let [b, ci, co, r, k] = [b, d.ci, d.co, d.r, d.nk].map(|v| v as u64);
        match self {
            CpPlan::Expand => ci * co * k,
            CpPlan::Factorized => b * r * k,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            CpPlan::Expand => "expand",
            CpPlan::Factorized => "factorized",
        }
    }
}

/// Options of the forward spectral transform `X_k = scale * w_k * sum_j x_j exp(-2 pi i <j, k> / n)`
/// over the kept modes, where `w_k` = 1, or with `hermitian` the weight c_k of
/// [`SpectralInverse`] (used by the inverse's backward).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpectralForward {
    pub scale: f64,
    pub hermitian: bool,
    /// Format of the transform: inputs are rounded to it and, for formats below the backend's
    /// scalar, every FFT operation is emulated in it (model III); outputs lie in it.
    pub format: Format,
    /// FFT or matrix product with a table (see [`SpectralTransform`]).
    pub transform: SpectralTransform,
}

/// Options of the inverse spectral transform
/// `y_j = scale * sum_k c_k Re(X_k exp(2 pi i <j, k> / n))` over the kept modes, zero elsewhere.
/// With `hermitian`, c_k = 1 when the last-axis frequency is 0 or n/2 and 2 otherwise (the
/// Hermitian completion: this is irfft with norm "forward" when scale = 1); without, c_k = 1
/// (the adjoint of the forward transform, used by its backward).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpectralInverse {
    pub scale: f64,
    pub hermitian: bool,
    pub format: Format,
    pub transform: SpectralTransform,
}

/// The ops an FNO needs. Every op returning a tensor stores it in the format named by its
/// arguments (values are exactly representable there); formats wider than the backend scalar
/// mean "native".
pub trait Backend: Sync {
    /// The scalar host data is exchanged in (f32, or f64 for gradient checks).
    type T: Scalar;
    /// A real tensor.
    type Tensor: Send + Sync;
    /// A complex tensor.
    type CTensor: Send + Sync;
    /// Finiteness checks queued by [`Backend::check_finite`] and answered together by
    /// [`Backend::read_checks`].
    type Checks: Send;

    /// Short name for reports ("cpu", "cuda").
    fn name(&self) -> &'static str;

    // ---- data movement and memory ----
    /// A tensor from host values, rounded to `format`.
    fn upload(&self, shape: &[usize], data: &[Self::T], format: Format) -> Self::Tensor;
    /// A complex tensor from interleaved (re, im) host values, rounded to `format`.
    fn upload_complex(&self, shape: &[usize], data: &[Self::T], format: Format) -> Self::CTensor;
    fn download(&self, t: &Self::Tensor) -> Vec<Self::T>;
    /// Interleaved (re, im).
    fn download_complex(&self, t: &Self::CTensor) -> Vec<Self::T>;
    fn shape<'a>(&self, t: &'a Self::Tensor) -> &'a [usize];
    fn cshape<'a>(&self, t: &'a Self::CTensor) -> &'a [usize];
    fn format(&self, t: &Self::Tensor) -> Format;
    /// Storage format of a complex tensor.
    fn cformat(&self, t: &Self::CTensor) -> Format;
    /// Round a tensor to another format (a cast: new storage).
    fn cast(&self, t: &Self::Tensor, format: Format) -> Self::Tensor;
    fn mem(&self) -> MemStats;
    /// Start a new peak measurement from the current live bytes.
    fn reset_peak(&self);
    /// Wait until all queued work is done (for timing; a no-op where ops are synchronous).
    fn synchronize(&self) {}

    // ---- spectral transforms ----
    /// Forward transform over the last `modes.0.len()` axes of `x` (batch, channels, grid...).
    fn rfft_modes(&self, x: &Self::Tensor, modes: &Modes, opt: SpectralForward) -> Self::CTensor;
    /// Inverse transform onto `grid`.
    fn irfft_modes(&self, x: &Self::CTensor, grid: &[usize], opt: SpectralInverse) -> Self::Tensor;

    // ---- spectral contraction ----
    /// `y[b, o, k] = sum_i x[b, i, k] w[i, o, k]` (complex), operands rounded to `format`,
    /// products and sums accumulated in fp32 (or the scalar when wider), each complex
    /// multiply-add formed as `form` says, result in `format`.
    fn contract(
        &self,
        x: &Self::CTensor,
        w: &Self::CTensor,
        format: Format,
        form: ContractForm,
    ) -> Self::CTensor;
    /// Gradients of [`Backend::contract`] for the output gradient `g`:
    /// `gx[b, i, k] = sum_o g[b, o, k] conj(w[i, o, k])`, `gw[i, o, k] = sum_b conj(x[b, i, k]) g[b, o, k]`,
    /// both formed as `form` says.
    fn contract_backward(
        &self,
        x: &Self::CTensor,
        w: &Self::CTensor,
        g: &Self::CTensor,
        format: Format,
        form: ContractForm,
    ) -> (Self::CTensor, Self::CTensor);
    /// `y[b, c, p] = x[b, c, p] + bias[c]` (the spectral convolution's bias).
    fn add_bias(&self, x: &Self::Tensor, bias: &Self::Tensor) -> Self::Tensor;

    // ---- dense linear (1x1 convolutions, channel MLPs) ----
    /// `y[b, o, p] = sum_i w[o, i] x[b, i, p] (+ bias[o])`, operands rounded to `format`, fp32
    /// accumulation, result in `format`.
    fn linear(
        &self,
        x: &Self::Tensor,
        w: &Self::Tensor,
        bias: Option<&Self::Tensor>,
        format: Format,
    ) -> Self::Tensor;
    /// `(gx, gw, gbias)` for output gradient `g`.
    fn linear_backward(
        &self,
        x: &Self::Tensor,
        w: &Self::Tensor,
        g: &Self::Tensor,
        with_bias: bool,
        format: Format,
    ) -> (Self::Tensor, Self::Tensor, Option<Self::Tensor>);

    // ---- pointwise ----
    fn pointwise(&self, op: Pointwise, x: &Self::Tensor) -> Self::Tensor;
    /// Gradient of [`Backend::pointwise`] at input `x` for output gradient `g`.
    fn pointwise_backward(&self, op: Pointwise, x: &Self::Tensor, g: &Self::Tensor)
    -> Self::Tensor;
    /// `a + b` (same shape), in the wider of the two formats.
    fn add(&self, a: &Self::Tensor, b: &Self::Tensor) -> Self::Tensor;
    /// `y[b, c, p] = w[c] x[b, c, p]` (soft gating).
    fn scale_channels(&self, x: &Self::Tensor, w: &Self::Tensor) -> Self::Tensor;
    /// `(gx, gw)` of [`Backend::scale_channels`].
    fn scale_channels_backward(
        &self,
        x: &Self::Tensor,
        w: &Self::Tensor,
        g: &Self::Tensor,
    ) -> (Self::Tensor, Self::Tensor);
    /// `sum_{b, p} g[b, c, p]` per channel (bias gradients).
    fn channel_sum(&self, g: &Self::Tensor) -> Self::Tensor;
    /// `u = add(add_bias(x, bias), s)` (either term may be absent) and, with `act`,
    /// `pointwise(act, u)`: a block's bias, skip sum and GELU. A backend may fuse them into one
    /// pass (the CPU does, with the same values and roundings); the default runs the ops.
    fn add_act(
        &self,
        x: &Self::Tensor,
        bias: Option<&Self::Tensor>,
        s: Option<&Self::Tensor>,
        act: Option<Pointwise>,
    ) -> (Self::Tensor, Option<Self::Tensor>) {
        add_act_unfused(self, x, bias, s, act)
    }
    /// `pointwise_backward(op, x, g) + adds[0] + adds[1] + ...` (added left to right): an
    /// activation's input gradient with the other paths' gradients of the same tensor. The
    /// default runs the ops.
    fn pointwise_backward_add(
        &self,
        op: Pointwise,
        x: &Self::Tensor,
        g: &Self::Tensor,
        adds: &[&Self::Tensor],
    ) -> Self::Tensor {
        pointwise_backward_add_unfused(self, op, x, g, adds)
    }
    /// `pointwise_backward(op, x, g)` and its [`Backend::channel_sum`] (a GELU's input
    /// gradient and the bias gradient of the sum before it). The default runs the ops.
    fn pointwise_backward_channel_sum(
        &self,
        op: Pointwise,
        x: &Self::Tensor,
        g: &Self::Tensor,
    ) -> (Self::Tensor, Self::Tensor) {
        pointwise_backward_channel_sum_unfused(self, op, x, g)
    }
    /// Concatenate along the channel axis.
    fn concat_channels(&self, a: &Self::Tensor, b: &Self::Tensor) -> Self::Tensor;
    /// Channels `lo..hi` of `x`.
    fn slice_channels(&self, x: &Self::Tensor, lo: usize, hi: usize) -> Self::Tensor;

    // ---- parameters and optimizer (weights stay resident on the backend) ----
    /// A tensor of zeros.
    fn zeros(&self, shape: &[usize], format: Format) -> Self::Tensor;
    /// The complex tensor `(...)` whose values are the (re, im) pairs along the last axis
    /// (length 2) of `t`, rounded to `format` (complex parameters are stored as real pairs).
    fn to_complex(&self, t: &Self::Tensor, format: Format) -> Self::CTensor;
    /// The real tensor `(..., 2)` of (re, im) pairs of `t`, rounded to `format`.
    fn to_real(&self, t: &Self::CTensor, format: Format) -> Self::Tensor;
    /// The dense spectral weight of canonical-polyadic factors, rounded to `format`:
    /// `W[i, o, k] = sum_r lambda_r A[i, r] B[o, r] prod_a M_a[k_a, r]` (complex; computed in f64 on
    /// the CPU), shape `(in, out, kept...)`.
    fn cp_weight(&self, f: &CpFactors<'_, Self::Tensor>, format: Format) -> Self::CTensor;
    /// Gradients of the factors for the dense-weight gradient `gw` (the conjugate convention of
    /// [`Backend::contract_backward`]), in the order lambda, A, B, M_0, ..., M_{d-1}, each shaped
    /// and stored like its factor.
    fn cp_weight_backward(
        &self,
        f: &CpFactors<'_, Self::Tensor>,
        gw: &Self::CTensor,
    ) -> Vec<Self::Tensor>;
    /// Whether [`Backend::cp_contract`] contracts factor by factor (else it expands the weight,
    /// and [`CpPlan::choose`] keeps to [`CpPlan::Expand`]).
    fn cp_factorized(&self) -> bool {
        false
    }
    /// `contract(x, cp_weight(f))` in the factorized order of [`CpPlan`] for a `format` the
    /// scalar holds: every sum accumulated in the scalar, `U` and `V` kept in it, the result
    /// rounded to `format`. The default expands the weight.
    fn cp_contract(
        &self,
        x: &Self::CTensor,
        f: &CpFactors<'_, Self::Tensor>,
        format: Format,
    ) -> Self::CTensor {
        self.contract(
            x,
            &self.cp_weight(f, format),
            format,
            ContractForm::Standard,
        )
    }
    /// The input gradient and the factor gradients (the order of
    /// [`Backend::cp_weight_backward`]) of [`Backend::cp_contract`] for the output gradient `g`:
    /// those of `contract_backward` followed by `cp_weight_backward`, computed without `W` or
    /// `gW` by a backend that contracts factor by factor. The default expands the weight.
    fn cp_contract_backward(
        &self,
        x: &Self::CTensor,
        f: &CpFactors<'_, Self::Tensor>,
        g: &Self::CTensor,
        format: Format,
    ) -> (Self::CTensor, Vec<Self::Tensor>) {
        cp_contract_backward_expanded(self, x, f, g, format)
    }
    /// One Adam / AdamW update in place of parameter `p`, moments `m`, `v` for gradient `g`
    /// (all of one shape): the per-element arithmetic of `fno::optim::Adam::step`, in the scalar.
    fn adam_update(
        &self,
        p: &mut Self::Tensor,
        g: &Self::Tensor,
        m: &mut Self::Tensor,
        v: &mut Self::Tensor,
        s: &AdamScalars,
    );

    // ---- reductions ----
    /// Whether every value is finite.
    fn all_finite(&self, x: &Self::Tensor) -> bool;
    /// Whether every value of every tensor is finite (a GPU answers for all with one
    /// synchronisation instead of one per tensor).
    fn all_finite_each(&self, xs: &[&Self::Tensor]) -> bool {
        xs.iter().all(|x| self.all_finite(x))
    }
    fn all_finite_complex(&self, x: &Self::CTensor) -> bool;
    /// An empty list of finiteness checks.
    fn checks(&self) -> Self::Checks;
    /// Append one check: whether every value of the `real` and `complex` tensors is finite
    /// as they are now. Returns the answer when the backend has it at once (the CPU); `None`
    /// when it is only queued (a GPU, where reading it would wait for all queued work: the
    /// answers of a whole pass are read with one synchronisation by [`Backend::read_checks`]).
    fn check_finite(
        &self,
        checks: &mut Self::Checks,
        real: &[&Self::Tensor],
        complex: &[&Self::CTensor],
    ) -> Option<bool>;
    /// The answers of every check appended to `checks`, in order.
    fn read_checks(&self, checks: Self::Checks) -> Vec<bool>;
    /// Mean and standard deviation over all values (f64), for k-sigma clipping.
    fn mean_std(&self, x: &Self::Tensor) -> (f64, f64);

    // ---- loss ----
    /// The mean relative L2 loss of `pred` against `target` (both (batch, ...)) and its
    /// gradient with respect to `pred` times `scale` (the loss scale), an fp32 tensor:
    /// `crate::fno::loss::rel_l2`, whose f32 gradient is then multiplied by `scale` in f32.
    /// The default computes it on the host.
    fn rel_l2_loss(
        &self,
        pred: &Self::Tensor,
        target: &Self::Tensor,
        scale: f32,
    ) -> (f64, Self::Tensor) {
        host_loss(self, LossKind::L2, pred, target, scale)
    }
    /// The mean relative H1 loss of `pred` against `target` (both (batch, channels, grid...),
    /// 1 to 3 grid axes) and its gradient with respect to `pred` times `scale`, an fp32 tensor:
    /// `crate::fno::loss::h1` on that grid, whose f32 gradient is then multiplied by `scale` in
    /// f32. The default computes it on the host.
    fn h1_loss(
        &self,
        pred: &Self::Tensor,
        target: &Self::Tensor,
        scale: f32,
    ) -> (f64, Self::Tensor) {
        host_loss(self, LossKind::H1, pred, target, scale)
    }
}

/// A loss of [`Backend`]'s default methods, on the host: download, `LossKind::eval` (the grid is
/// the shape after (batch, channels)), gradient times `scale` in `B::T`, upload as fp32.
fn host_loss<B: Backend + ?Sized>(
    be: &B,
    kind: LossKind,
    pred: &B::Tensor,
    target: &B::Tensor,
    scale: f32,
) -> (f64, B::Tensor) {
    let shape = be.shape(pred).to_vec();
    let grid = shape.get(2..).unwrap_or(&[]);
    let (loss, mut g) = kind.eval(&be.download(pred), &be.download(target), shape[0], grid);
    let s = <B::T as crate::precision::Real>::from_f64(scale as f64);
    g.iter_mut().for_each(|v| *v *= s);
    (loss, be.upload(&shape, &g, Format::Fp32))
}

/// [`Backend::add_act`] as the ops it fuses: `add_bias`, `add`, `pointwise`.
pub(crate) fn add_act_unfused<B: Backend + ?Sized>(
    be: &B,
    x: &B::Tensor,
    bias: Option<&B::Tensor>,
    s: Option<&B::Tensor>,
    act: Option<Pointwise>,
) -> (B::Tensor, Option<B::Tensor>) {
    let u = match (bias, s) {
        (Some(b), Some(s)) => be.add(&be.add_bias(x, b), s),
        (Some(b), None) => be.add_bias(x, b),
        (None, Some(s)) => be.add(x, s),
        (None, None) => be.cast(x, be.format(x)),
    };
    let v = act.map(|op| be.pointwise(op, &u));
    (u, v)
}

/// [`Backend::pointwise_backward_add`] as the ops it fuses: `pointwise_backward`, `add`s.
pub(crate) fn pointwise_backward_add_unfused<B: Backend + ?Sized>(
    be: &B,
    op: Pointwise,
    x: &B::Tensor,
    g: &B::Tensor,
    adds: &[&B::Tensor],
) -> B::Tensor {
    let mut gx = be.pointwise_backward(op, x, g);
    for a in adds {
        gx = be.add(&gx, a);
    }
    gx
}

/// [`Backend::pointwise_backward_channel_sum`] as the ops it fuses.
pub(crate) fn pointwise_backward_channel_sum_unfused<B: Backend + ?Sized>(
    be: &B,
    op: Pointwise,
    x: &B::Tensor,
    g: &B::Tensor,
) -> (B::Tensor, B::Tensor) {
    let gx = be.pointwise_backward(op, x, g);
    let sum = be.channel_sum(&gx);
    (gx, sum)
}

/// [`Backend::cp_contract_backward`] by the expanded weight: `contract_backward` with
/// `cp_weight(f)`, then `cp_weight_backward` of its weight gradient.
pub(crate) fn cp_contract_backward_expanded<B: Backend + ?Sized>(
    be: &B,
    x: &B::CTensor,
    f: &CpFactors<'_, B::Tensor>,
    g: &B::CTensor,
    format: Format,
) -> (B::CTensor, Vec<B::Tensor>) {
    let w = be.cp_weight(f, format);
    let (gx, gw) = be.contract_backward(x, &w, g, format, ContractForm::Standard);
    (gx, be.cp_weight_backward(f, &gw))
}

/// Sizes `(b, ci, co, k)` of the spectral contraction of `x` (b, ci, modes...) with `w`
/// (ci, co, modes...), `k` the product of the kept mode extents; with `g` (b, co, modes...), the
/// output gradient's shape is checked too. Panics naming the mismatch (shapes are the caller's
/// invariant, as for every op of [`Backend`]).
pub(crate) fn contract_dims(
    x: &[usize],
    w: &[usize],
    g: Option<&[usize]>,
) -> (usize, usize, usize, usize) {
    assert!(
        x.len() >= 3 && w.len() == x.len(),
        "contract: spectrum {x:?} and weight {w:?} need (b, c, modes...) and (ci, co, modes...)"
    );
    let (b, ci) = (x[0], x[1]);
    let (wi, co) = (w[0], w[1]);
    assert_eq!(ci, wi, "contract: {ci} input channels, weight has {wi}");
    assert_eq!(
        x[2..],
        w[2..],
        "contract: spectrum {:?} vs weight modes {:?}",
        &x[2..],
        &w[2..]
    );
    if let Some(g) = g {
        let mut want = vec![b, co];
        want.extend_from_slice(&x[2..]);
        assert_eq!(
            g,
            &want[..],
            "contract: output gradient {g:?}, expected {want:?}"
        );
    }
    (b, ci, co, x[2..].iter().product())
}

/// Canonical-polyadic factors of one spectral weight, complex values stored as real (.., 2) tensors:
/// `lambda` (r, 2), `a` (in, r, 2), `b` (out, r, 2), and per kept-mode axis `modes[ax]` (kept_ax, r, 2).
pub struct CpFactors<'a, T> {
    pub lambda: &'a T,
    pub a: &'a T,
    pub b: &'a T,
    pub modes: Vec<&'a T>,
}

/// Sizes of a CP factorisation: in/out channels, rank, kept extents and their product.
pub struct CpDims {
    pub ci: usize,
    pub co: usize,
    pub r: usize,
    pub kept: Vec<usize>,
    pub nk: usize,
}

impl CpDims {
    /// The sizes of `f`, checking every factor is (rows, r, 2); `shape` reads a tensor's shape.
    pub fn of<T>(f: &CpFactors<'_, T>, shape: impl Fn(&T) -> &[usize]) -> CpDims {
        let r = shape(f.lambda)[0];
        let rows = |t: &T, what: &str| {
            let s = shape(t);
            assert!(
                s.len() == 3 && s[1] == r && s[2] == 2,
                "CP factor {what} of shape {s:?}, expected (rows, {r}, 2)"
            );
            s[0]
        };
        let kept: Vec<usize> = f.modes.iter().map(|m| rows(m, "mode")).collect();
        assert!((1..=3).contains(&kept.len()), "CP: 1 to 3 mode factors");
        // black_box: rustc 1.95.0 (LLVM) miscompiled `Counting::cp_entries` once this was
        // inlined, sinking the vectorised (masked-load) product of `kept` below the free of
        // `kept` at the caller's end (valgrind: invalid read; flops of 1e19). Forcing the
        // value here keeps the load before the free.
        let nk = std::hint::black_box(kept.iter().product::<usize>());
        CpDims {
            ci: rows(f.a, "in"),
            co: rows(f.b, "out"),
            r,
            nk,
            kept,
        }
    }

    /// Shape (in, out, kept...) of the dense weight.
    pub fn weight_shape(&self) -> Vec<usize> {
        let mut s = vec![self.ci, self.co];
        s.extend(&self.kept);
        s
    }

    /// Kept extents padded to three axes with 1.
    pub fn kept3(&self) -> [usize; 3] {
        let mut k = [1; 3];
        k[..self.kept.len()].copy_from_slice(&self.kept);
        k
    }
}

/// Row-major multi-index of flat index `k` in `shape`.
pub(crate) fn unravel(mut k: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for a in (0..shape.len()).rev() {
        idx[a] = k % shape[a];
        k /= shape[a];
    }
    idx
}

/// The scalars of one Adam step (f64, as PyTorch computes them in Python; a backend rounds each
/// to its scalar, which is where the reference rounds them):
/// ```text
/// x = p; if decoupled { x *= decay }; gi = g; if coupled { gi += wd x }
/// m = m + one_minus_b1 (gi - m);  v = b2 v + one_minus_b2 gi^2
/// p = x - step_size m / (sqrt(v) / bc2_sqrt + eps)
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamScalars {
    /// lr / (1 - beta1^t).
    pub step_size: f64,
    /// sqrt(1 - beta2^t).
    pub bc2_sqrt: f64,
    pub eps: f64,
    pub one_minus_b1: f64,
    pub b2: f64,
    pub one_minus_b2: f64,
    /// Weight decay (the coupled, Adam, rule).
    pub wd: f64,
    /// 1 - lr wd (the decoupled, AdamW, rule).
    pub decay: f64,
    pub decoupled: bool,
    pub coupled: bool,
}

/// Elementwise maps with their derivatives (the stabilizers among them).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pointwise {
    /// Exact GELU x Phi(x) = x (1 + erf(x / sqrt 2)) / 2.
    Gelu,
    Tanh,
    /// Clamp to [lo, hi] (derivative 1 inside, 0 outside).
    Clip {
        lo: f64,
        hi: f64,
    },
    /// Multiply by a constant.
    Scale(f64),
}

#[cfg(test)]
mod tests {
    use super::{CpDims, CpOrder, CpPlan, contract_dims};

    /// The cost model's choices at the paper's Navier-Stokes TFNO (128 x 128, width 64, 64 x 33
    /// kept modes, CP 0.05: r = 1922, batch 64) and at the benchmark's small model (width 32,
    /// 24 x 12 modes, CP 0.05: r = 147, batch 10), with the counts behind them.
    #[test]
    fn cp_plan_follows_operations_or_memory() {
        let dims = |w: usize, kept: Vec<usize>, r: usize| CpDims {
            ci: w,
            co: w,
            r,
            nk: kept.iter().product(),
            kept,
        };
        let ns = dims(64, vec![64, 33], 1922);
        let small = dims(32, vec![24, 12], 147);
        let (e, f) = (CpPlan::Expand, CpPlan::Factorized);
        // NS: the factorized order costs 2.3x the operations and its b r k intermediate is 30x W.
        assert_eq!(
            e.flops(64, &ns),
            8 * 2112 * (3 * 4096 * 1922 + 3 * 64 * 4096)
        );
        assert!(f.flops(64, &ns) > e.flops(64, &ns));
        assert!(f.intermediate(64, &ns) > 30 * e.intermediate(64, &ns));
        for rule in [CpOrder::Auto, CpOrder::Memory] {
            assert_eq!(CpPlan::choose(rule, 64, &ns, true), e, "{rule}");
        }
        // Small: 0.69x the operations, 1.4x the intermediate.
        assert!(10 * f.flops(10, &small) < 7 * e.flops(10, &small));
        assert!(f.intermediate(10, &small) > e.intermediate(10, &small));
        assert_eq!(CpPlan::choose(CpOrder::Auto, 10, &small, true), f);
        assert_eq!(CpPlan::choose(CpOrder::Memory, 10, &small, true), e);
        // One sample: the factorized order wins both ways.
        assert_eq!(CpPlan::choose(CpOrder::Memory, 1, &small, true), f);
        // Forced orders, and a backend without the factorized order.
        assert_eq!(CpPlan::choose(CpOrder::Factorized, 64, &ns, true), f);
        assert_eq!(CpPlan::choose(CpOrder::Expand, 1, &small, true), e);
        assert_eq!(CpPlan::choose(CpOrder::Factorized, 1, &small, false), e);
        assert_eq!("Memory".parse::<CpOrder>(), Ok(CpOrder::Memory));
        assert!(
            "greedy"
                .parse::<CpOrder>()
                .unwrap_err()
                .contains("auto, memory, expand")
        );
    }

    #[test]
    fn contract_dims_multiply_the_modes_and_check_every_operand() {
        assert_eq!(
            contract_dims(&[2, 3, 4, 5], &[3, 7, 4, 5], Some(&[2, 7, 4, 5])),
            (2, 3, 7, 20)
        );
        let msg = |f: fn()| {
            let e = std::panic::catch_unwind(f).unwrap_err();
            e.downcast_ref::<String>().cloned().unwrap_or_default()
        };
        assert!(
            msg(|| {
                contract_dims(&[2, 3, 4], &[4, 7, 4], None);
            })
            .contains("3 input channels, weight has 4")
        );
        assert!(
            msg(|| {
                contract_dims(&[2, 3, 4], &[3, 7, 5], None);
            })
            .contains("spectrum [4] vs weight modes [5]")
        );
        assert!(
            msg(|| {
                contract_dims(&[2, 3, 4], &[3, 7, 4], Some(&[2, 6, 4]));
            })
            .contains("output gradient [2, 6, 4], expected [2, 7, 4]")
        );
    }
}
