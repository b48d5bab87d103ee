//! Adam and AdamW with PyTorch's semantics (`torch.optim.Adam` / `AdamW`, single-tensor path,
//! `amsgrad = False`, `maximize = False`), and the StepLR schedule.
//!
//! One step, with t the step count after incrementing:
//! ```text
//! AdamW only:  p = p * (1 - lr * wd)                      (decoupled weight decay)
//! Adam only:   g = g + wd * p                             (L2 penalty added to the gradient)
//! m = lerp(m, g, 1 - beta1) = m + (1 - beta1) (g - m)
//! v = beta2 v + (1 - beta2) g^2
//! p = p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)   (eps outside the sqrt)
//! ```
//! Scalars (bias corrections, step size) are computed in f64 as Python does and rounded to `T`
//! where the tensor arithmetic uses them; the tensor arithmetic is in `T`. Complex weights are
//! stored as (re, im) pairs of reals, which is what PyTorch's `view_as_real` treatment amounts to.

use super::params::Params;
use super::scalar::Scalar;
use crate::backend::{AdamScalars, Backend, Pointwise};

/// Which weight-decay rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptimizerKind {
    /// `torch.optim.Adam`: weight decay added to the gradient.
    Adam,
    /// `torch.optim.AdamW`: decoupled weight decay.
    AdamW,
}

impl OptimizerKind {
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Adam => "adam",
            OptimizerKind::AdamW => "adamw",
        }
    }
}

impl std::str::FromStr for OptimizerKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "adam" => Ok(OptimizerKind::Adam),
            "adamw" => Ok(OptimizerKind::AdamW),
            _ => Err(format!("unknown optimizer '{s}'; allowed: adam, adamw")),
        }
    }
}

/// Adam / AdamW with its state: the step count and the first and second moments, laid out as the
/// parameters (same names and shapes), which is what checkpoints store.
#[derive(Clone, Debug, PartialEq)]
pub struct Adam<T> {
    pub kind: OptimizerKind,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Steps taken so far.
    pub step: u64,
    /// First moments (exp_avg).
    pub m: Params<T>,
    /// Second moments (exp_avg_sq).
    pub v: Params<T>,
}

impl<T: Scalar> Adam<T> {
    /// PyTorch's defaults: betas (0.9, 0.999), eps 1e-8; zero state shaped like `params`.
    pub fn new(kind: OptimizerKind, params: &Params<T>, weight_decay: f64) -> Self {
        Adam {
            kind,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
            step: 0,
            m: params.zeros_like(),
            v: params.zeros_like(),
        }
    }

    /// One update of `params` with gradients `grads` (same names and shapes) at learning rate `lr`.
    pub fn step(&mut self, params: &mut Params<T>, grads: &Params<T>, lr: f64) {
        assert_eq!(
            params.list.len(),
            grads.list.len(),
            "optimizer: {} parameters but {} gradients",
            params.list.len(),
            grads.list.len()
        );
        assert_eq!(
            params.list.len(),
            self.m.list.len(),
            "optimizer: state was made for {} parameters, got {}",
            self.m.list.len(),
            params.list.len()
        );
        let s = self.next_scalars(lr);
        for (((p, g), m), v) in params
            .list
            .iter_mut()
            .zip(&grads.list)
            .zip(&mut self.m.list)
            .zip(&mut self.v.list)
        {
            assert!(
                p.name == g.name && p.data.len() == g.data.len(),
                "optimizer: parameter {} {:?} does not match gradient {} {:?}",
                p.name,
                p.shape,
                g.name,
                g.shape
            );
            assert!(
                p.name == m.name && p.data.len() == m.data.len(),
                "optimizer: parameter {} {:?} does not match state {} {:?}",
                p.name,
                p.shape,
                m.name,
                m.shape
            );
            adam_slice(&mut p.data, &g.data, &mut m.data, &mut v.data, &s);
        }
    }

    /// Count one more step and return its scalars (bias corrections and step size for
    /// learning rate `lr`), for a backend that keeps the tensors ([`crate::backend::Backend::adam_update`]).
    pub fn next_scalars(&mut self, lr: f64) -> AdamScalars {
        self.step += 1;
        let t = self.step as i32;
        AdamScalars {
            step_size: lr / (1.0 - self.beta1.powi(t)),
            bc2_sqrt: (1.0 - self.beta2.powi(t)).sqrt(),
            eps: self.eps,
            one_minus_b1: 1.0 - self.beta1,
            b2: self.beta2,
            one_minus_b2: 1.0 - self.beta2,
            wd: self.weight_decay,
            decay: 1.0 - lr * self.weight_decay,
            decoupled: self.kind == OptimizerKind::AdamW && self.weight_decay != 0.0,
            coupled: self.kind == OptimizerKind::Adam && self.weight_decay != 0.0,
        }
    }
}

/// The per-element Adam update of one tensor in the scalar `T` (the reference every backend
/// follows; see the module docs for the formula and [`AdamScalars`]).
pub fn adam_slice<T: Scalar>(p: &mut [T], g: &[T], m: &mut [T], v: &mut [T], s: &AdamScalars) {
    let step_size = T::from_f64(s.step_size);
    let bc2_sqrt = T::from_f64(s.bc2_sqrt);
    let eps = T::from_f64(s.eps);
    let one_minus_b1 = T::from_f64(s.one_minus_b1);
    let b2 = T::from_f64(s.b2);
    let one_minus_b2 = T::from_f64(s.one_minus_b2);
    let wd = T::from_f64(s.wd);
    let decay = T::from_f64(s.decay);
    assert!(
        g.len() == p.len() && m.len() == p.len() && v.len() == p.len(),
        "adam: {} parameters, {} gradients, {} and {} moments",
        p.len(),
        g.len(),
        m.len(),
        v.len()
    );
    for i in 0..p.len() {
        let mut x = p[i];
        if s.decoupled {
            x *= decay;
        }
        let mut gi = g[i];
        if s.coupled {
            gi += wd * x;
        }
        let mi = m[i] + one_minus_b1 * (gi - m[i]);
        let vi = b2 * v[i] + one_minus_b2 * (gi * gi);
        m[i] = mi;
        v[i] = vi;
        let denom = vi.sqrt() / bc2_sqrt + eps;
        p[i] = x - step_size * (mi / denom);
    }
}

/// `torch.optim.lr_scheduler.StepLR` stepped once per epoch: the learning rate of epoch `e`
/// (from 0) is `lr * gamma^floor(e / step_size)`, computed as PyTorch does, by multiplying by
/// gamma once per decay.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepLr {
    pub lr: f64,
    pub step_size: usize,
    pub gamma: f64,
}

impl StepLr {
    pub fn new(lr: f64, step_size: usize, gamma: f64) -> Self {
        assert!(step_size >= 1, "StepLR: step_size must be >= 1");
        StepLr {
            lr,
            step_size,
            gamma,
        }
    }

    /// Learning rate used during epoch `epoch` (0-based).
    pub fn lr_at(&self, epoch: usize) -> f64 {
        let mut lr = self.lr;
        for _ in 0..epoch / self.step_size {
            lr *= self.gamma;
        }
        lr
    }
}

/// Loss scaling with the semantics of PyTorch's `torch.amp.GradScaler`: the loss is multiplied by
/// `scale` before the backward pass, the gradients are multiplied by `1 / scale` before the
/// optimizer step, and a step whose gradients hold inf/NaN is skipped. Dynamic scaling halves the
/// scale after such a step and doubles it after `growth_interval` good steps in a row; a static
/// (or absent, scale 1) scaler never changes.
#[derive(Clone, Debug, PartialEq)]
pub struct LossScaler {
    pub scale: f64,
    pub dynamic: bool,
    pub growth_factor: f64,
    pub backoff_factor: f64,
    pub growth_interval: u64,
    /// Good steps since the last change of scale.
    pub growth_tracker: u64,
}

impl LossScaler {
    /// A fixed scale (1: no scaling).
    pub fn fixed(scale: f64) -> Self {
        LossScaler {
            scale,
            dynamic: false,
            growth_factor: 2.0,
            backoff_factor: 0.5,
            growth_interval: 2000,
            growth_tracker: 0,
        }
    }

    /// GradScaler's defaults are `init_scale` 65536 and `growth_interval` 2000.
    pub fn dynamic(init_scale: f64, growth_interval: u64) -> Self {
        LossScaler {
            dynamic: true,
            growth_interval,
            ..Self::fixed(init_scale)
        }
    }

    /// The scaler a `[precision]` section asks for.
    pub fn from_config(p: &super::config::PrecisionConfig) -> Self {
        match p.loss_scale {
            super::config::LossScaleKind::Dynamic => {
                Self::dynamic(p.initial_loss_scale(), p.loss_scale_growth_interval as u64)
            }
            _ => Self::fixed(p.initial_loss_scale()),
        }
    }

    /// Multiply the gradients by `1 / scale` (rounded to `T` once, as PyTorch rounds its
    /// `inv_scale` to the gradient dtype); returns whether every gradient is finite (checked
    /// before and after unscaling).
    pub fn unscale<T: Scalar>(&self, grads: &mut Params<T>) -> bool {
        let inv = T::from_f64(1.0 / self.scale);
        let mut finite = true;
        for p in &mut grads.list {
            for g in &mut p.data {
                finite &= g.is_finite();
                *g *= inv;
                finite &= g.is_finite();
            }
        }
        finite
    }

    /// [`LossScaler::unscale`] for gradients held by a backend (one tensor per parameter).
    ///
    /// One check after the division, not one before and one after: for a finite positive
    /// scale, `g / scale` is inf/NaN wherever `g` is (inf times a finite nonzero factor is inf,
    /// NaN stays NaN), so the answer is the same with one synchronisation fewer on a GPU.
    pub fn unscale_on<B: Backend>(&self, be: &B, grads: &mut [B::Tensor]) -> bool {
        debug_assert!(self.scale.is_finite() && self.scale > 0.0);
        // Multiplying by 1 is the identity: skip the pass.
        if self.scale != 1.0 {
            for g in grads.iter_mut() {
                *g = be.pointwise(Pointwise::Scale(1.0 / self.scale), g);
            }
        }
        be.all_finite_each(&grads.iter().collect::<Vec<_>>())
    }

    /// After a step: `found_inf` says whether the gradients held inf/NaN (the step was skipped).
    pub fn update(&mut self, found_inf: bool) {
        if !self.dynamic {
            return;
        }
        if found_inf {
            self.scale *= self.backoff_factor;
            self.growth_tracker = 0;
        } else {
            self.growth_tracker += 1;
            if self.growth_tracker == self.growth_interval {
                self.scale *= self.growth_factor;
                self.growth_tracker = 0;
            }
        }
    }

    /// State for a checkpoint's `extra` metadata (`loss_scale`, `loss_scale_growth_tracker`).
    pub fn save_state(&self, extra: &mut std::collections::BTreeMap<String, String>) {
        extra.insert("loss_scale".into(), format!("{:?}", self.scale));
        extra.insert(
            "loss_scale_growth_tracker".into(),
            self.growth_tracker.to_string(),
        );
    }

    /// Restore what [`save_state`](Self::save_state) wrote.
    pub fn load_state(
        &mut self,
        extra: &std::collections::BTreeMap<String, String>,
    ) -> anyhow::Result<()> {
        let get = |k: &str| {
            extra
                .get(k)
                .ok_or_else(|| anyhow::anyhow!("checkpoint has no '{k}' (loss-scaler state)"))
        };
        self.scale = get("loss_scale")?
            .parse()
            .map_err(|_| anyhow::anyhow!("checkpoint 'loss_scale' is not a number"))?;
        self.growth_tracker = get("loss_scale_growth_tracker")?.parse().map_err(|_| {
            anyhow::anyhow!("checkpoint 'loss_scale_growth_tracker' is not a number")
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(data: Vec<f64>) -> Params<f64> {
        let mut p = Params::default();
        let n = data.len();
        p.push("w", vec![n], data);
        p
    }

    #[test]
    fn steplr_decays_every_step_size_epochs() {
        let s = StepLr::new(1e-3, 3, 0.5);
        let got: Vec<f64> = (0..8).map(|e| s.lr_at(e)).collect();
        assert_eq!(
            got,
            vec![1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 5e-4, 2.5e-4, 2.5e-4]
        );
    }

    #[test]
    fn first_adam_step_moves_by_lr_times_sign() {
        // After one step m_hat = g, v_hat = g^2, so the update is lr * g / (|g| + eps).
        let mut p = one(vec![1.0, -2.0, 0.5]);
        let g = one(vec![0.3, -4.0, 1e-3]);
        let mut opt = Adam::new(OptimizerKind::Adam, &p, 0.0);
        opt.step(&mut p, &g, 0.1);
        for (i, (&x0, &gi)) in [1.0f64, -2.0, 0.5]
            .iter()
            .zip(&[0.3, -4.0, 1e-3])
            .enumerate()
        {
            let want = x0 - 0.1 * gi / (gi.abs() + 1e-8);
            assert!((p.list[0].data[i] - want).abs() < 1e-15, "{i}");
        }
        assert_eq!(opt.step, 1);
    }
}
