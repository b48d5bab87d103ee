//! The Fourier Neural Operator, as neuraloperator's `FNO`: grid positional embedding, lifting
//! channel MLP, `n_layers` FNO blocks, projection channel MLP; 1-D, 2-D and 3-D; evaluable on any
//! grid whose size admits the modes (resolution independence).
//!
//! One block (neuraloperator's `FNOBlocks.forward`, no normalisation):
//! ```text
//! s1 = W_skip x                       (linear skip, no bias)
//! s2 = g * x                          (soft-gating skip of the channel MLP)
//! z  = stabilizer(x)                  (only on the spectral path)
//! f  = irfft( R . rfft(z) ) + b       (spectral convolution; "forward" FFT norm: rfft / N)
//! v  = gelu(f + s1)
//! m  = W2 gelu(W1 v + b1) + b2 + s2   (channel MLP)
//! out = gelu(m)  (identity after the last block)
//! ```
//! In the last block both GELUs are left out (v = f + s1, out = m), as neuraloperator 2.0.0
//! does; [`FnoConfig::gelu_before_last_mlp`] keeps the first one, as neuraloperator 0.3.0 did.
//! Every op has its explicit backward; [`Fno::forward`] returns the cache [`Fno::backward`] needs.

use super::params::Params;
use super::policy::{Policy, Stabilizer, Stage};
use super::quant::{self, QuantCount, QuantState, Site};
use super::resident::Resident;
use super::scalar::Scalar;
use crate::backend::{
    Backend, ContractForm, CpDims, CpFactors, CpOrder, CpPlan, Modes, Pointwise, SpectralForward,
    SpectralInverse, SpectralTransform, unravel,
};
use crate::precision::Format;
use crate::precision::Real;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use std::fmt;

/// Weights of the spectral convolutions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Factorization {
    /// One complex weight per (in, out, mode).
    Dense,
    /// Canonical polyadic: W[i,o,k] = sum_r l_r A[i,r] B[o,r] prod_a M_a[k_a,r] (complex);
    /// `rank` < 1 is a fraction of the dense parameter count (tltorch's convention), >= 1 a rank.
    Cp { rank: f64 },
}

/// Model hyper-parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct FnoConfig {
    /// Spatial dimension (1, 2 or 3).
    pub dim: usize,
    pub in_channels: usize,
    pub out_channels: usize,
    /// Hidden channels of the blocks.
    pub width: usize,
    /// Modes per axis (see [`Modes`]).
    pub modes: Vec<usize>,
    pub n_layers: usize,
    /// Hidden channels of the lifting MLP (0: a single linear map).
    pub lifting_channels: usize,
    /// Hidden channels of the projection MLP (0: a single linear map).
    pub projection_channels: usize,
    /// Channel-MLP hidden width = round(width * expansion); 0 disables the channel MLP.
    pub mlp_expansion: f64,
    pub factorization: Factorization,
    /// Append the grid coordinates j / n_a as extra input channels.
    pub positional_embedding: bool,
    /// Apply the GELU between the last block's spectral sum and its channel MLP (v = gelu(f +
    /// s1)), as neuraloperator 0.3.0 and mpno before 2026-12-05 did. Off by default: v = f + s1,
    /// neuraloperator 2.0.0's `FNOBlocks.forward_with_postactivation`. Without a channel MLP
    /// the last block has no GELU either way.
    pub gelu_before_last_mlp: bool,
    /// How each block computes its truncated spectral transforms: one entry for every block, or
    /// one per block (empty: FFT everywhere). See [`SpectralTransform`].
    pub spectral_transform: Vec<SpectralTransform>,
    /// How the dense spectral contraction forms its complex products ([`ContractForm`]:
    /// standard, or Gauss's three real products). CP weights contracted factor by factor
    /// ([`CpPlan::Factorized`]) always use the standard form.
    pub contraction: ContractForm,
}

impl FnoConfig {
    /// The spectral transform of block `l`.
    pub fn transform(&self, l: usize) -> SpectralTransform {
        match self.spectral_transform.as_slice() {
            [] => SpectralTransform::Fft,
            [t] => *t,
            ts => ts[l],
        }
    }

    /// A small 2-D Darcy-style model: width 32, 12 modes, 4 layers, ratios as neuraloperator.
    pub fn darcy_small() -> Self {
        FnoConfig {
            dim: 2,
            in_channels: 1,
            out_channels: 1,
            width: 32,
            modes: vec![12, 12],
            n_layers: 4,
            lifting_channels: 64,
            projection_channels: 64,
            mlp_expansion: 0.5,
            factorization: Factorization::Dense,
            positional_embedding: true,
            gelu_before_last_mlp: false,
            spectral_transform: Vec::new(),
            contraction: ContractForm::Standard,
        }
    }

    /// The smallest useful 2-D model (`darcy_small` with width 8, 4 x 4 modes, 2 layers, 8
    /// lifting and projection channels): for checks that run whole steps in little time (the
    /// backend smoke check, parity and gradient tests).
    pub fn tiny() -> Self {
        FnoConfig {
            width: 8,
            modes: vec![4, 4],
            n_layers: 2,
            lifting_channels: 8,
            projection_channels: 8,
            ..FnoConfig::darcy_small()
        }
    }

    /// Check the hyper-parameters; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=3).contains(&self.dim) {
            return Err(format!("model.dim: must be 1, 2 or 3, got {}", self.dim));
        }
        for (name, v) in [
            ("model.in_channels", self.in_channels),
            ("model.out_channels", self.out_channels),
            ("model.width", self.width),
            ("model.n_layers", self.n_layers),
        ] {
            if v == 0 {
                return Err(format!("{name}: must be >= 1, got 0"));
            }
        }
        if self.modes.len() != self.dim {
            return Err(format!(
                "model.modes: {} entries for dim = {} (one per axis)",
                self.modes.len(),
                self.dim
            ));
        }
        if let Some(i) = self.modes.iter().position(|&m| m == 0) {
            return Err(format!("model.modes[{i}]: must be >= 1, got 0"));
        }
        let nt = self.spectral_transform.len();
        if nt > 1 && nt != self.n_layers {
            return Err(format!(
                "model.spectral_transform: {nt} entries for n_layers = {} (give one for every \
                 block or one per block; allowed values: fft, gemm)",
                self.n_layers
            ));
        }
        if !(self.mlp_expansion >= 0.0 && self.mlp_expansion.is_finite()) {
            return Err(format!(
                "model.mlp_expansion: must be >= 0, got {}",
                self.mlp_expansion
            ));
        }
        if let Factorization::Cp { rank } = self.factorization
            && !(rank > 0.0 && rank.is_finite())
        {
            return Err(format!("model.rank: must be > 0, got {rank}"));
        }
        Ok(())
    }

    fn mlp_hidden(&self) -> usize {
        (self.width as f64 * self.mlp_expansion).round() as usize
    }

    /// The CP rank this configuration resolves to.
    pub fn cp_rank(&self) -> Option<usize> {
        match self.factorization {
            Factorization::Dense => None,
            Factorization::Cp { rank } if rank >= 1.0 => Some(rank as usize),
            Factorization::Cp { rank } => {
                let kept = Modes(self.modes.clone()).kept_shape();
                let dense = (self.width * self.width * kept.iter().product::<usize>()) as f64;
                let per_rank = (2 * self.width + kept.iter().sum::<usize>()) as f64;
                Some(((rank * dense / per_rank).round() as usize).max(1))
            }
        }
    }
}

/// Where a non-finite value first appeared.
#[derive(Clone, Debug, PartialEq)]
pub struct Overflow {
    /// e.g. "blocks.2".
    pub layer: String,
    /// e.g. "forward FFT".
    pub op: String,
    /// "forward" or "backward".
    pub phase: &'static str,
}

impl fmt::Display for Overflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "inf/NaN first in {} {} ({} pass)",
            self.layer, self.op, self.phase
        )
    }
}

/// The finiteness checks of one pass, each naming where it looked. A backend that answers at
/// once (the CPU) stops the pass at the first failure; on one that queues its checks (a GPU,
/// where each answer would wait for all queued work) the pass runs on and [`Watch::finish`]
/// reads every answer with one synchronisation and reports the first failure: the same
/// [`Overflow`], after some work on inf/NaN values that only costs time.
struct Watch<'a, B: Backend> {
    be: &'a B,
    /// Whether [`Watch::check`] checks (the policy has a low-precision stage).
    on: bool,
    phase: &'static str,
    checks: B::Checks,
    sites: Vec<(String, &'static str)>,
}

impl<'a, B: Backend> Watch<'a, B> {
    fn new(be: &'a B, on: bool, phase: &'static str) -> Self {
        Watch {
            be,
            on,
            phase,
            checks: be.checks(),
            sites: Vec::new(),
        }
    }

    fn overflow(&self, i: usize) -> Overflow {
        let (layer, op) = &self.sites[i];
        Overflow {
            layer: layer.clone(),
            op: (*op).into(),
            phase: self.phase,
        }
    }

    /// Check `real` and `complex` after op `op` of `layer` when the watch is on.
    fn check(
        &mut self,
        layer: &str,
        op: &'static str,
        real: &[&B::Tensor],
        complex: &[&B::CTensor],
    ) -> Result<(), Overflow> {
        if !self.on {
            return Ok(());
        }
        self.sites.push((layer.to_string(), op));
        match self.be.check_finite(&mut self.checks, real, complex) {
            Some(false) => Err(self.overflow(self.sites.len() - 1)),
            _ => Ok(()),
        }
    }

    /// The first failed check of the pass, if any.
    fn finish(mut self) -> Result<(), Overflow> {
        let checks = std::mem::replace(&mut self.checks, self.be.checks());
        let answers = self.be.read_checks(checks);
        match answers.iter().position(|ok| !ok) {
            Some(i) => Err(self.overflow(i)),
            None => Ok(()),
        }
    }
}

/// What [`Fno::forward_capture`] hands each block's forward-transform input to: `(block, z)`.
type Recorder<'a, B> = &'a mut dyn FnMut(usize, &<B as Backend>::Tensor);

/// Parameter indices of one linear map.
#[derive(Clone, Debug)]
struct Linear {
    w: usize,
    b: Option<usize>,
}

#[derive(Clone, Debug)]
struct Block {
    /// Dense weight (in, out, kept..., 2) or CP factors.
    spectral: Spectral,
    bias: usize,
    skip: Linear,
    mlp: Option<(Linear, Linear, usize)>, // (fc1, fc2, gate)
}

#[derive(Clone, Debug)]
enum Spectral {
    Dense(usize),
    /// (weights (r, 2), in (i, r, 2), out (o, r, 2), per-axis (kept_a, r, 2))
    Cp {
        lambda: usize,
        a: usize,
        b: usize,
        modes: Vec<usize>,
    },
}

/// An FNO: its configuration and the layout of its parameters.
#[derive(Clone, Debug)]
pub struct Fno {
    pub cfg: FnoConfig,
    /// Activation recomputation: the forward pass keeps only the pre-activations of its GELUs
    /// (which their derivatives need) and the backward pass recomputes each GELU output it
    /// needs (the input of the next linear map, of the next block) just before use. Saves one
    /// stored tensor per GELU (in the paper's Navier-Stokes config the fp32 peak falls from
    /// 122.6 to 88.6 MiB per sample, bench/results/fno_memory_ns_cpu.md) for one extra GELU
    /// pass each; the results are identical (the same op on the same values). Off by default.
    pub recompute: bool,
    /// How CP weights meet the spectrum ([`CpOrder`]; default: the order with fewer
    /// operations for the batch, see [`Fno::cp_plan`]). Dense weights ignore it.
    pub cp_order: CpOrder,
    /// Saturations and non-finite groups of the scaled stages' quantizations since the last
    /// [`Fno::take_quant_counts`] (a clone starts from zero).
    quant: QuantState,
    lifting: Vec<Linear>,
    blocks: Vec<Block>,
    projection: Vec<Linear>,
}

/// Parameter gradients as the backward pass produces them: each parameter receives its gradient
/// once (a second contribution is added), converted to the scalar's own format.
struct Grads<B: Backend> {
    slots: Vec<Option<B::Tensor>>,
}

impl<B: Backend> Grads<B> {
    fn new(n: usize) -> Self {
        Grads {
            slots: (0..n).map(|_| None).collect(),
        }
    }

    fn put(&mut self, be: &B, i: usize, g: B::Tensor) {
        let native = <B::T as Real>::FORMAT;
        let g = if be.format(&g) == native {
            g
        } else {
            be.cast(&g, native)
        };
        self.slots[i] = Some(match self.slots[i].take() {
            None => g,
            Some(prev) => be.add(&prev, &g),
        });
    }

    fn finish(self) -> Vec<B::Tensor> {
        self.slots
            .into_iter()
            .enumerate()
            .map(|(i, g)| g.unwrap_or_else(|| panic!("parameter {i} received no gradient")))
            .collect()
    }
}

/// Input of one MLP layer (None: recomputed as the GELU of the previous layer's
/// pre-activation, see [`Fno::recompute`]) and its pre-activation output when a GELU follows.
type LayerCache<B> = (
    Option<<B as Backend>::Tensor>,
    Option<<B as Backend>::Tensor>,
);

/// What the backward pass needs from one forward pass.
pub struct Cache<B: Backend> {
    x0: B::Tensor,
    lifting: Vec<LayerCache<B>>,
    blocks: Vec<BlockCache<B>>,
    projection: Vec<LayerCache<B>>,
    grid: Vec<usize>,
}

/// The channel MLP's cache (None entries: recomputed in the backward).
struct MlpCache<B: Backend> {
    /// Its input v: gelu(u), or u in a block without that GELU (then always kept).
    v: Option<B::Tensor>,
    /// Pre-activation of its hidden GELU.
    m1: B::Tensor,
    /// gelu(m1).
    a1: Option<B::Tensor>,
}

/// (None entries: recomputed in the backward, see [`Fno::recompute`].)
struct BlockCache<B: Backend> {
    /// The block's input: gelu(m) of the previous block.
    x: Option<B::Tensor>,
    /// Stabilizer constants used (ksigma: the clip interval).
    stab: Option<Pointwise>,
    xhat: B::CTensor,
    /// The dense weight the contraction read (None: CP factors contracted factor by factor,
    /// [`CpPlan::Factorized`]).
    weight: Option<B::CTensor>,
    /// The pre-activation f + s1 of the GELU after the spectral sum (None: no GELU there, see
    /// [`Fno::gelu_after_sum`]).
    u: Option<B::Tensor>,
    mlp: Option<MlpCache<B>>,
    /// Pre-activation of the block's output GELU (None after the last block, which has none).
    m: Option<B::Tensor>,
}

fn normal(rng: &mut Xoshiro256PlusPlus) -> f64 {
    use rand::RngExt;
    // Box-Muller.
    let u1: f64 = rng.random::<f64>().max(1e-300);
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

fn uniform(rng: &mut Xoshiro256PlusPlus, bound: f64) -> f64 {
    use rand::RngExt;
    (2.0 * rng.random::<f64>() - 1.0) * bound
}

impl Fno {
    /// The layout for `cfg` (validated).
    pub fn new(cfg: FnoConfig) -> Result<Self, String> {
        cfg.validate()?;
        let mut next = 0usize;
        let mut take = || {
            next += 1;
            next - 1
        };
        let mlp_layers = |hidden: usize, take: &mut dyn FnMut() -> usize| -> Vec<Linear> {
            let n = if hidden > 0 { 2 } else { 1 };
            (0..n)
                .map(|_| Linear {
                    w: take(),
                    b: Some(take()),
                })
                .collect()
        };
        let lifting = mlp_layers(cfg.lifting_channels, &mut take);
        let mut blocks = Vec::new();
        for _ in 0..cfg.n_layers {
            let spectral = match cfg.cp_rank() {
                None => Spectral::Dense(take()),
                Some(_) => Spectral::Cp {
                    lambda: take(),
                    a: take(),
                    b: take(),
                    modes: (0..cfg.dim).map(|_| take()).collect(),
                },
            };
            let bias = take();
            let skip = Linear { w: take(), b: None };
            let mlp = (cfg.mlp_hidden() > 0).then(|| {
                (
                    Linear {
                        w: take(),
                        b: Some(take()),
                    },
                    Linear {
                        w: take(),
                        b: Some(take()),
                    },
                    take(),
                )
            });
            blocks.push(Block {
                spectral,
                bias,
                skip,
                mlp,
            });
        }
        let projection = mlp_layers(cfg.projection_channels, &mut take);
        Ok(Fno {
            cfg,
            recompute: false,
            cp_order: CpOrder::Auto,
            quant: QuantState::default(),
            lifting,
            blocks,
            projection,
        })
    }

    /// Channels entering the lifting (inputs plus coordinates).
    fn lifted_in(&self) -> usize {
        self.cfg.in_channels
            + if self.cfg.positional_embedding {
                self.cfg.dim
            } else {
                0
            }
    }

    /// Initial parameters, seeded: linear maps U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's
    /// Conv default), spectral weights complex normal with std sqrt(2 / (in + out)) (neuraloperator),
    /// soft gates 1.
    pub fn init<T: Scalar>(&self, seed: u64) -> Params<T> {
        let cfg = &self.cfg;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut p = Params::default();
        let mut linear = |p: &mut Params<T>, name: &str, o: usize, i: usize, bias: bool| {
            let bound = 1.0 / (i as f64).sqrt();
            let w = (0..o * i)
                .map(|_| T::from_f64(uniform(&mut rng, bound)))
                .collect();
            p.push(format!("{name}.weight"), vec![o, i], w);
            if bias {
                let b = (0..o)
                    .map(|_| T::from_f64(uniform(&mut rng, bound)))
                    .collect();
                p.push(format!("{name}.bias"), vec![o], b);
            }
        };
        let chain = |hidden: usize, i: usize, o: usize| -> Vec<(usize, usize)> {
            if hidden > 0 {
                vec![(hidden, i), (o, hidden)]
            } else {
                vec![(o, i)]
            }
        };
        for (j, (o, i)) in chain(cfg.lifting_channels, self.lifted_in(), cfg.width)
            .into_iter()
            .enumerate()
        {
            linear(&mut p, &format!("lifting.{j}"), o, i, true);
        }
        let kept = Modes(cfg.modes.clone()).kept_shape();
        let nk: usize = kept.iter().product();
        let w = cfg.width;
        let std = (2.0 / (2 * w) as f64).sqrt();
        for l in 0..cfg.n_layers {
            let mut srng = Xoshiro256PlusPlus::seed_from_u64(seed ^ (0x5eed_0000 + l as u64));
            match cfg.cp_rank() {
                None => {
                    let v = (0..2 * w * w * nk)
                        .map(|_| T::from_f64(normal(&mut srng) * std / 2f64.sqrt()))
                        .collect();
                    let mut shape = vec![w, w];
                    shape.extend(&kept);
                    shape.push(2);
                    p.push(format!("blocks.{l}.spectral.weight"), shape, v);
                }
                Some(r) => {
                    // Each W entry sums r products of (d + 2) factors: factor std s with
                    // r s^(2(d+2)) = std^2 gives W the dense init's variance.
                    let nf = (cfg.dim + 2) as f64;
                    let s = (std * std / r as f64).powf(1.0 / (2.0 * nf));
                    let mut factor = |p: &mut Params<T>, name: String, rows: usize| {
                        let v = (0..2 * rows * r)
                            .map(|_| T::from_f64(normal(&mut srng) * s / 2f64.sqrt()))
                            .collect();
                        p.push(name, vec![rows, r, 2], v);
                    };
                    let lam = (0..r).flat_map(|_| [T::from_f64(1.0), T::zero()]).collect();
                    p.push(format!("blocks.{l}.spectral.cp_weights"), vec![r, 2], lam);
                    factor(&mut p, format!("blocks.{l}.spectral.cp_in"), w);
                    factor(&mut p, format!("blocks.{l}.spectral.cp_out"), w);
                    for (a, &k) in kept.iter().enumerate() {
                        factor(&mut p, format!("blocks.{l}.spectral.cp_mode{a}"), k);
                    }
                }
            }
            let b = (0..w)
                .map(|_| T::from_f64(normal(&mut srng) * std))
                .collect();
            p.push(format!("blocks.{l}.spectral.bias"), vec![w], b);
            linear(&mut p, &format!("blocks.{l}.skip"), w, w, false);
            let h = cfg.mlp_hidden();
            if h > 0 {
                linear(&mut p, &format!("blocks.{l}.mlp.0"), h, w, true);
                linear(&mut p, &format!("blocks.{l}.mlp.1"), w, h, true);
                p.push(
                    format!("blocks.{l}.gate.weight"),
                    vec![w],
                    vec![T::from_f64(1.0); w],
                );
            }
        }
        for (j, (o, i)) in chain(cfg.projection_channels, cfg.width, cfg.out_channels)
            .into_iter()
            .enumerate()
        {
            linear(&mut p, &format!("projection.{j}"), o, i, true);
        }
        p
    }

    /// Check that `params` has this model's layout (names and shapes in order).
    pub fn check_params<T: Scalar>(&self, params: &Params<T>) -> Result<(), String> {
        let want = self.init::<f32>(0);
        if want.list.len() != params.list.len() {
            return Err(format!(
                "{} parameter tensors, the model has {}",
                params.list.len(),
                want.list.len()
            ));
        }
        for (a, b) in want.list.iter().zip(&params.list) {
            if a.name != b.name || a.shape != b.shape {
                return Err(format!(
                    "parameter {} {:?} where the model has {} {:?}",
                    b.name, b.shape, a.name, a.shape
                ));
            }
        }
        Ok(())
    }

    /// The CP factors of block `l` (None for a dense weight).
    fn cp_factors<'a, B: Backend>(
        &self,
        w: &'a Resident<B>,
        l: usize,
    ) -> Option<CpFactors<'a, B::Tensor>> {
        match &self.blocks[l].spectral {
            Spectral::Dense(_) => None,
            Spectral::Cp {
                lambda,
                a,
                b,
                modes,
                ..
            } => Some(CpFactors {
                lambda: w.get(*lambda),
                a: w.get(*a),
                b: w.get(*b),
                modes: modes.iter().map(|&m| w.get(m)).collect(),
            }),
        }
    }

    /// How the blocks contract a batch of `batch` spectra under `policy` on `be`:
    /// [`CpPlan::Factorized`] only for CP weights, a plain contraction stage in a format the
    /// backend's scalar holds (a low format rounds the dense weight: that stage's semantics)
    /// and a backend that contracts factor by factor ([`Backend::cp_factorized`]), when
    /// [`Fno::cp_order`] picks it. Every block has the same shapes, so the same plan.
    pub fn cp_plan<B: Backend>(&self, be: &B, batch: usize, policy: &Policy) -> CpPlan {
        let c = policy.contraction;
        let possible = be.cp_factorized() && c.is_plain() && <B::T as Scalar>::holds(c.format);
        self.cp_plan_with(batch, possible)
    }

    /// [`Fno::cp_plan`] given whether the factorized order is `possible` there.
    pub fn cp_plan_with(&self, batch: usize, possible: bool) -> CpPlan {
        let Some(r) = self.cfg.cp_rank() else {
            return CpPlan::Expand;
        };
        let kept = Modes(self.cfg.modes.clone()).kept_shape();
        let d = CpDims {
            ci: self.cfg.width,
            co: self.cfg.width,
            r,
            nk: kept.iter().product(),
            kept,
        };
        CpPlan::choose(self.cp_order, batch, &d, possible)
    }

    /// The dense complex spectral weight of block `l` (in, out, kept...), rounded to `fmt`.
    fn spectral_weight<B: Backend>(
        &self,
        be: &B,
        w: &Resident<B>,
        l: usize,
        fmt: Format,
    ) -> B::CTensor {
        match (&self.blocks[l].spectral, self.cp_factors(w, l)) {
            (Spectral::Dense(i), _) => be.to_complex(w.get(*i), fmt),
            (_, Some(f)) => be.cp_weight(&f, fmt),
            (_, None) => unreachable!("CP block without factors"),
        }
    }

    /// Gradients of block `l`'s spectral parameters for the dense-weight gradient `gw`.
    fn spectral_weight_backward<B: Backend>(
        &self,
        be: &B,
        w: &Resident<B>,
        grads: &mut Grads<B>,
        l: usize,
        gw: &B::CTensor,
    ) {
        match &self.blocks[l].spectral {
            Spectral::Dense(i) => grads.put(be, *i, be.to_real(gw, <B::T as Real>::FORMAT)),
            Spectral::Cp { .. } => {
                let f = self.cp_factors(w, l).expect("CP factors");
                let gs = be.cp_weight_backward(&f, gw);
                self.put_cp_grads(be, grads, l, gs);
            }
        }
    }

    /// Store the CP factor gradients of block `l` (the order of [`Backend::cp_weight_backward`]).
    fn put_cp_grads<B: Backend>(&self, be: &B, grads: &mut Grads<B>, l: usize, gs: Vec<B::Tensor>) {
        let Spectral::Cp {
            lambda,
            a,
            b,
            modes,
            ..
        } = &self.blocks[l].spectral
        else {
            unreachable!("CP gradients for a dense block");
        };
        let idx = [*lambda, *a, *b].into_iter().chain(modes.iter().copied());
        for (i, g) in idx.zip(gs) {
            grads.put(be, i, g);
        }
    }

    /// Forward pass of a batch `x` (batch, in_channels, grid...). Returns the output
    /// (batch, out_channels, grid...) and the cache, or where inf/NaN first appeared (checked
    /// after every op when the policy has a low-precision stage).
    pub fn forward<B: Backend>(
        &self,
        be: &B,
        params: &Resident<B>,
        x: &B::Tensor,
        policy: &Policy,
    ) -> Result<(B::Tensor, Cache<B>), Overflow> {
        self.forward_impl(be, params, x, policy, None)
    }

    /// [`Fno::forward`], handing `capture(l, z)` the input `z` (batch, width, grid...) of block
    /// `l`'s forward transform, after the stabilizer, before the transform rounds it to the
    /// policy's format (what `mpno audit` measures). The normal path passes no recorder: one
    /// branch per block, no allocation.
    pub fn forward_capture<B: Backend>(
        &self,
        be: &B,
        params: &Resident<B>,
        x: &B::Tensor,
        policy: &Policy,
        capture: &mut dyn FnMut(usize, &B::Tensor),
    ) -> Result<(B::Tensor, Cache<B>), Overflow> {
        self.forward_impl(be, params, x, policy, Some(capture))
    }

    fn forward_impl<B: Backend>(
        &self,
        be: &B,
        params: &Resident<B>,
        x: &B::Tensor,
        policy: &Policy,
        mut capture: Option<Recorder<'_, B>>,
    ) -> Result<(B::Tensor, Cache<B>), Overflow> {
        let cfg = &self.cfg;
        let shape = be.shape(x).to_vec();
        assert_eq!(
            shape.len(),
            cfg.dim + 2,
            "input of shape {shape:?} for a {}-D model",
            cfg.dim
        );
        assert_eq!(shape[1], cfg.in_channels, "input channels");
        let grid = shape[2..].to_vec();
        let mut watch = Watch::new(be, policy.is_low(), "forward");
        let x0 = if cfg.positional_embedding {
            let coords = grid_coordinates::<B::T>(shape[0], &grid);
            let mut cs = vec![shape[0], cfg.dim];
            cs.extend(&grid);
            let c = be.upload(&cs, &coords, policy.mlp);
            be.concat_channels(x, &c)
        } else {
            be.cast(x, be.format(x))
        };
        let mlp_fmt = policy.mlp;
        let run_mlp = |watch: &mut Watch<B>,
                       layers: &[Linear],
                       input: &B::Tensor,
                       name: &str|
         -> Result<(B::Tensor, Vec<LayerCache<B>>), Overflow> {
            let mut caches = Vec::new();
            let mut h = be.cast(input, be.format(input));
            for (j, lin) in layers.iter().enumerate() {
                let y = self.apply_linear(be, params, lin, &h, mlp_fmt);
                watch.check(&format!("{name}.{j}"), "linear", &[&y], &[])?;
                // Past the first layer the input is the previous layer's GELU output.
                let input = (j == 0 || !self.recompute).then_some(h);
                if j + 1 < layers.len() {
                    h = be.pointwise(Pointwise::Gelu, &y);
                    caches.push((input, Some(y)));
                } else {
                    caches.push((input, None));
                    h = y;
                }
            }
            Ok((h, caches))
        };
        let (mut h, lifting) = run_mlp(&mut watch, &self.lifting, &x0, "lifting")?;
        let modes = Modes(cfg.modes.clone());
        let npts: usize = grid.iter().product();
        let mut blocks = Vec::new();
        for (l, blk) in self.blocks.iter().enumerate() {
            let name = format!("blocks.{l}");
            let s1 = self.apply_linear(be, params, &blk.skip, &h, mlp_fmt);
            let s2 = blk.mlp.as_ref().map(|(_, _, g)| {
                let gw = be.cast(params.get(*g), mlp_fmt);
                be.scale_channels(&h, &gw)
            });
            let stab = match policy.stabilizer {
                Stabilizer::None => None,
                Stabilizer::Tanh => Some(Pointwise::Tanh),
                Stabilizer::Clip(c) => Some(Pointwise::Clip { lo: -c, hi: c }),
                Stabilizer::Divide(c) => Some(Pointwise::Scale(1.0 / c)),
                Stabilizer::KSigma(k) => {
                    let (mean, std) = be.mean_std(&h);
                    Some(Pointwise::Clip {
                        lo: mean - k * std,
                        hi: mean + k * std,
                    })
                }
            };
            let z = match stab {
                Some(op) => be.pointwise(op, &h),
                None => be.cast(&h, be.format(&h)),
            };
            if let Some(record) = capture.as_mut() {
                record(l, &z);
            }
            let site = |op: u64| Site::new(policy.seed, site_id(l, op));
            let xhat = self.rfft_stage(
                be,
                &z,
                &modes,
                1.0 / npts as f64,
                false,
                policy.fwd_fft,
                [site(0), site(1)],
                self.cfg.transform(l),
            );
            drop(z);
            watch.check(&name, "forward FFT", &[], &[&xhat])?;
            let plan = self.cp_plan(be, be.cshape(&xhat)[0], policy);
            let (xhat, weight, yhat) = if plan == CpPlan::Factorized {
                let f = self.cp_factors(params, l).expect("CP factors");
                let yhat = be.cp_contract(&xhat, &f, policy.contraction.format);
                (xhat, None, yhat)
            } else if policy.contraction.is_plain() {
                let weight = self.spectral_weight(be, params, l, policy.contraction.format);
                let form = self.cfg.contraction;
                let yhat = be.contract(&xhat, &weight, policy.contraction.format, form);
                (xhat, Some(weight), yhat)
            } else {
                // The operands the contraction reads, kept for the backward pass (a
                // stochastic stage must not draw them again there).
                let c = policy.contraction;
                let xq = match self.requantize(be, &xhat, policy.fwd_fft, c, site(2)) {
                    Some(q) => q,
                    None => xhat,
                };
                let w = self.spectral_weight(be, params, l, Format::Fp32);
                let wq = quant::quantize_complex(be, &w, &c, site(3), &self.quant);
                drop(w);
                let y = be.contract(&xq, &wq, Format::Fp32, self.cfg.contraction);
                let yq = quant::quantize_complex(be, &y, &c, site(4), &self.quant);
                (xq, Some(wq), yq)
            };
            watch.check(&name, "spectral contraction", &[], &[&yhat])?;
            let f = self.irfft_stage(
                be,
                &yhat,
                &grid,
                1.0,
                true,
                (policy.contraction, policy.inv_fft),
                [site(5), site(6)],
                self.cfg.transform(l),
            );
            drop(yhat);
            watch.check(&name, "inverse FFT", &[&f], &[])?;
            let bias = be.cast(params.get(blk.bias), mlp_fmt);
            // u = f + bias + s1 and its GELU v, in one pass where the backend fuses them.
            let act = self.gelu_after_sum(l).then_some(Pointwise::Gelu);
            let (u, v) = be.add_act(&f, Some(&bias), Some(&s1), act);
            drop((f, s1, bias));
            // With no GELU after the sum, u itself is the MLP's input (cached there, not as u).
            let (u, v) = match v {
                Some(v) => (Some(u), v),
                None => (None, u),
            };
            let (m, mlp) = match (&blk.mlp, s2) {
                (Some((fc1, fc2, _)), Some(s2)) => {
                    let m1 = self.apply_linear(be, params, fc1, &v, mlp_fmt);
                    let a1 = be.pointwise(Pointwise::Gelu, &m1);
                    let m3 = self.apply_linear(be, params, fc2, &a1, mlp_fmt);
                    watch.check(&name, "channel MLP", &[&m3], &[])?;
                    let keep = !self.recompute;
                    let mlp = MlpCache {
                        v: (keep || u.is_none()).then_some(v),
                        m1,
                        a1: keep.then_some(a1),
                    };
                    ((m3, Some(s2)), Some(mlp))
                }
                _ => ((v, None), None),
            };
            // m = m3 + s2 (or v without a channel MLP) and the block's output GELU(m), in one
            // pass where the backend fuses them. The last block has no output GELU: its output
            // is m itself, kept once (as the projection's input).
            let act = (l + 1 < cfg.n_layers).then_some(Pointwise::Gelu);
            let (m, out) = match m {
                (m3, Some(s2)) => be.add_act(&m3, None, Some(&s2), act),
                (v, None) => {
                    let out = act.map(|op| be.pointwise(op, &v));
                    (v, out)
                }
            };
            let (out, m) = match out {
                Some(out) => (out, Some(m)),
                None => (m, None),
            };
            blocks.push(BlockCache {
                x: (l == 0 || !self.recompute).then_some(h),
                stab,
                xhat,
                weight,
                u,
                mlp,
                m,
            });
            h = out;
        }
        let (y, projection) = run_mlp(&mut watch, &self.projection, &h, "projection")?;
        // The output is checked whatever the policy (the last check of the pass).
        watch.on = true;
        watch.check("projection", "output", &[&y], &[])?;
        watch.finish()?;
        Ok((
            y,
            Cache {
                x0,
                lifting,
                blocks,
                projection,
                grid,
            },
        ))
    }

    /// Whether block `l` applies a GELU to its spectral sum u = f + s1: every block but the
    /// last, and the last one only with [`FnoConfig::gelu_before_last_mlp`] and a channel MLP.
    fn gelu_after_sum(&self, l: usize) -> bool {
        l + 1 < self.cfg.n_layers || (self.cfg.gelu_before_last_mlp && self.blocks[l].mlp.is_some())
    }

    /// Saturations and non-finite groups of the scaled stages' quantizations since the last
    /// call (forward and backward passes, evaluation included), resetting the counts.
    pub fn take_quant_counts(&self) -> QuantCount {
        self.quant.take()
    }

    /// The delayed-scaling amax histories (JSON, for checkpoints; `None` without any).
    pub fn quant_histories(&self) -> Option<String> {
        self.quant.histories_json()
    }

    /// Restore the amax histories of [`Fno::quant_histories`].
    pub fn restore_quant_histories(&self, json: &str) -> Result<(), String> {
        self.quant.restore_histories(json)
    }

    /// Forward spectral transform of `x` as `stage` computes it: a plain stage on the backend
    /// alone (its format rounds the input, the arithmetic and the output); otherwise the input
    /// quantized by the stage (seed `seeds[0]`), the transform in the plain stage's format or,
    /// scaled, in fp32, and a scaled stage's output quantized too (seed `seeds[1]`).
    #[allow(clippy::too_many_arguments)]
    fn rfft_stage<B: Backend>(
        &self,
        be: &B,
        x: &B::Tensor,
        modes: &Modes,
        scale: f64,
        hermitian: bool,
        stage: Stage,
        seeds: [Site; 2],
        transform: SpectralTransform,
    ) -> B::CTensor {
        let opt = |format| SpectralForward {
            scale,
            hermitian,
            format,
            transform,
        };
        if stage.is_plain() {
            return be.rfft_modes(x, modes, opt(stage.format));
        }
        let xq = quant::quantize_real(be, x, &stage, seeds[0], &self.quant);
        if stage.scaling.is_none() {
            return be.rfft_modes(&xq, modes, opt(stage.format));
        }
        let y = be.rfft_modes(&xq, modes, opt(Format::Fp32));
        drop(xq);
        quant::quantize_complex(be, &y, &stage, seeds[1], &self.quant)
    }

    /// Inverse spectral transform of `x` (the output of a stage `stages.0`) as stage `stages.1`
    /// computes it (see [`Fno::rfft_stage`]; the input's quantization is skipped when the
    /// previous stage was the same scaled stage: it would change nothing).
    #[allow(clippy::too_many_arguments)]
    fn irfft_stage<B: Backend>(
        &self,
        be: &B,
        x: &B::CTensor,
        grid: &[usize],
        scale: f64,
        hermitian: bool,
        stages: (Stage, Stage),
        seeds: [Site; 2],
        transform: SpectralTransform,
    ) -> B::Tensor {
        let stage = stages.1;
        let opt = |format| SpectralInverse {
            scale,
            hermitian,
            format,
            transform,
        };
        if stage.is_plain() {
            return be.irfft_modes(x, grid, opt(stage.format));
        }
        let xq = self.requantize(be, x, stages.0, stage, seeds[0]);
        let xq = xq.as_ref().unwrap_or(x);
        if stage.scaling.is_none() {
            return be.irfft_modes(xq, grid, opt(stage.format));
        }
        let y = be.irfft_modes(xq, grid, opt(Format::Fp32));
        quant::quantize_real(be, &y, &stage, seeds[1], &self.quant)
    }

    /// `x`, the output of stage `from`, quantized as stage `to` reads it: `None` (use `x` as it
    /// is) when `from` is the same scaled stage (its output is already quantized so, and
    /// quantizing a quantized tensor again is the identity: `quant` tests), else quantized by
    /// `to`.
    fn requantize<B: Backend>(
        &self,
        be: &B,
        x: &B::CTensor,
        from: Stage,
        to: Stage,
        seed: Site,
    ) -> Option<B::CTensor> {
        if from == to && to.scaling.is_some() {
            None
        } else {
            Some(quant::quantize_complex(be, x, &to, seed, &self.quant))
        }
    }

    fn apply_linear<B: Backend>(
        &self,
        be: &B,
        params: &Resident<B>,
        lin: &Linear,
        x: &B::Tensor,
        fmt: Format,
    ) -> B::Tensor {
        // `linear` rounds its operands to `fmt` itself: the masters go in as they are.
        be.linear(x, params.get(lin.w), lin.b.map(|b| params.get(b)), fmt)
    }

    #[allow(clippy::too_many_arguments)]
    fn linear_backward<B: Backend>(
        &self,
        be: &B,
        params: &Resident<B>,
        grads: &mut Grads<B>,
        lin: &Linear,
        x: &B::Tensor,
        g: &B::Tensor,
        fmt: Format,
    ) -> B::Tensor {
        let (gx, gw, gb) = be.linear_backward(x, params.get(lin.w), g, lin.b.is_some(), fmt);
        grads.put(be, lin.w, gw);
        if let (Some(bi), Some(gb)) = (lin.b, gb) {
            grads.put(be, bi, gb);
        }
        gx
    }

    /// Gradients of all parameters (one tensor per parameter, in the scalar's own format) for
    /// the output gradient `g_out`, or where inf/NaN first appeared.
    pub fn backward<B: Backend>(
        &self,
        be: &B,
        params: &Resident<B>,
        cache: Cache<B>,
        g_out: &B::Tensor,
        policy: &Policy,
    ) -> Result<Vec<B::Tensor>, Overflow> {
        let cfg = &self.cfg;
        let mut watch = Watch::new(be, policy.is_low(), "backward");
        let mut grads = Grads::<B>::new(params.len());
        let mlp_fmt = policy.mlp;
        let mlp_back = |grads: &mut Grads<B>,
                        layers: &[Linear],
                        mut caches: Vec<LayerCache<B>>,
                        g: B::Tensor|
         -> B::Tensor {
            let mut g = g;
            for (j, lin) in layers.iter().enumerate().rev() {
                let (input, pre) = caches.pop().expect("one cache per layer");
                if let Some(pre) = pre {
                    g = be.pointwise_backward(Pointwise::Gelu, &pre, &g);
                }
                let input = input.unwrap_or_else(|| {
                    let prev = caches[j - 1].1.as_ref();
                    be.pointwise(Pointwise::Gelu, prev.expect("previous pre-activation"))
                });
                g = self.linear_backward(be, params, grads, lin, &input, &g, mlp_fmt);
            }
            g
        };
        let mut g = mlp_back(
            &mut grads,
            &self.projection,
            cache.projection,
            be.cast(g_out, be.format(g_out)),
        );
        let grid = cache.grid;
        let npts: usize = grid.iter().product();
        let mut caches = cache.blocks;
        for (l, blk) in self.blocks.iter().enumerate().rev() {
            let name = format!("blocks.{l}");
            let bc = caches.pop().expect("one cache per block");
            let x = bc.x.unwrap_or_else(|| {
                let prev = caches[l - 1].m.as_ref();
                be.pointwise(Pointwise::Gelu, prev.expect("previous block's m"))
            });
            let g_m = match &bc.m {
                Some(m) => be.pointwise_backward(Pointwise::Gelu, m, &g),
                None => g,
            };
            // Channel MLP and its soft-gating skip.
            let (g_v, g_x_gate) = match (&blk.mlp, bc.mlp) {
                (Some((fc1, fc2, gate)), Some(MlpCache { v, m1, a1 })) => {
                    let gw = be.cast(params.get(*gate), mlp_fmt);
                    let (gx_gate, g_gate) = be.scale_channels_backward(&x, &gw, &g_m);
                    grads.put(be, *gate, g_gate);
                    let a1 = a1.unwrap_or_else(|| be.pointwise(Pointwise::Gelu, &m1));
                    let g_a1 =
                        self.linear_backward(be, params, &mut grads, fc2, &a1, &g_m, mlp_fmt);
                    drop(a1);
                    let g_m1 = be.pointwise_backward(Pointwise::Gelu, &m1, &g_a1);
                    drop((m1, g_a1));
                    let v = v.unwrap_or_else(|| {
                        be.pointwise(Pointwise::Gelu, bc.u.as_ref().expect("u kept for v"))
                    });
                    let g_v = self.linear_backward(be, params, &mut grads, fc1, &v, &g_m1, mlp_fmt);
                    (g_v, Some(gx_gate))
                }
                _ => (g_m, None),
            };
            // The sum's gradient and the bias gradient (its channel sums), in one pass where
            // the backend fuses them.
            let (g_u, g_bias) = match &bc.u {
                Some(u) => be.pointwise_backward_channel_sum(Pointwise::Gelu, u, &g_v),
                None => {
                    let g_bias = be.channel_sum(&g_v);
                    (g_v, g_bias)
                }
            };
            watch.check(&name, "channel MLP", &[&g_u], &[])?;
            // Spectral path: bias, inverse FFT, contraction, forward FFT, stabilizer.
            grads.put(be, blk.bias, g_bias);
            let site = |op: u64| Site::new(policy.seed, site_id(l, op));
            let g_yhat = self.rfft_stage(
                be,
                &g_u,
                &Modes(cfg.modes.clone()),
                1.0,
                true,
                policy.inv_fft,
                [site(8), site(9)],
                self.cfg.transform(l),
            );
            watch.check(&name, "inverse FFT", &[], &[&g_yhat])?;
            // The weight's gradient is freed as soon as the parameters' gradients are formed
            // (it is as large as the weight itself).
            let g_xhat = match bc.weight.as_ref() {
                None => {
                    // Factorized CP contraction (Fno::cp_plan): the factors' gradients at once.
                    let f = self.cp_factors(params, l).expect("CP factors");
                    let fmt = policy.contraction.format;
                    let (gx, gs) = be.cp_contract_backward(&bc.xhat, &f, &g_yhat, fmt);
                    let refs: Vec<&B::Tensor> = gs.iter().collect();
                    watch.check(&name, "spectral contraction", &refs, &[&gx])?;
                    self.put_cp_grads(be, &mut grads, l, gs);
                    gx
                }
                Some(weight) => {
                    let (gx, gw) = if policy.contraction.is_plain() {
                        let fmt = policy.contraction.format;
                        be.contract_backward(&bc.xhat, weight, &g_yhat, fmt, self.cfg.contraction)
                    } else {
                        // The cache holds the quantized operands of the forward contraction.
                        let c = policy.contraction;
                        let gq = self.requantize(be, &g_yhat, policy.inv_fft, c, site(10));
                        let g = gq.as_ref().unwrap_or(&g_yhat);
                        let form = self.cfg.contraction;
                        let (gx, gw) =
                            be.contract_backward(&bc.xhat, weight, g, Format::Fp32, form);
                        drop(gq);
                        (
                            quant::quantize_complex(be, &gx, &c, site(11), &self.quant),
                            quant::quantize_complex(be, &gw, &c, site(12), &self.quant),
                        )
                    };
                    watch.check(&name, "spectral contraction", &[], &[&gx, &gw])?;
                    self.spectral_weight_backward(be, params, &mut grads, l, &gw);
                    gx
                }
            };
            let g_z = self.irfft_stage(
                be,
                &g_xhat,
                &grid,
                1.0 / npts as f64,
                false,
                (policy.contraction, policy.fwd_fft),
                [site(13), site(14)],
                self.cfg.transform(l),
            );
            watch.check(&name, "forward FFT", &[&g_z], &[])?;
            let g_skip = self.linear_backward(be, params, &mut grads, &blk.skip, &x, &g_u, mlp_fmt);
            // The input gradient: the stabilizer's backward plus the skip's and the gate's, in
            // one pass where the backend fuses them.
            let mut adds = vec![&g_skip];
            adds.extend(g_x_gate.as_ref());
            g = match bc.stab {
                Some(op) => be.pointwise_backward_add(op, &x, &g_z, &adds),
                None => adds.iter().fold(g_z, |acc, a| be.add(&acc, a)),
            };
        }
        let _ = mlp_back(&mut grads, &self.lifting, cache.lifting, g);
        drop(cache.x0);
        let grads = grads.finish();
        watch.check(
            "parameters",
            "gradient",
            &grads.iter().collect::<Vec<_>>(),
            &[],
        )?;
        watch.finish()?;
        Ok(grads)
    }
}

/// The stochastic-rounding site of operation `op` (0-7 forward, 8-15 backward) of block `l`.
fn site_id(l: usize, op: u64) -> u64 {
    ((l as u64) << 4) | op
}

/// Coordinates j / n_a of every grid point, one channel per axis, repeated over the batch
/// (neuraloperator's GridEmbeddingND on [0, 1)).
pub fn grid_coordinates<T: Scalar>(batch: usize, grid: &[usize]) -> Vec<T> {
    let npts: usize = grid.iter().product();
    let d = grid.len();
    let mut one = vec![T::zero(); d * npts];
    for p in 0..npts {
        let idx = unravel(p, grid);
        for a in 0..d {
            one[a * npts + p] = T::from_f64(idx[a] as f64 / grid[a] as f64);
        }
    }
    let mut out = Vec::with_capacity(batch * one.len());
    for _ in 0..batch {
        out.extend_from_slice(&one);
    }
    out
}
