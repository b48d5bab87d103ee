//! The smoke check of a backend (`mpno devices --smoke`): the first minute on a GPU machine.
//!
//! A GPU session has 15 minutes of device time, so a broken environment (a library missing from
//! the loader path, a kernel NVRTC refuses, a cuFFT or cuBLAS call with a wrong argument) must
//! cost one minute, not a whole benchmark run. Each check runs one piece of the backend once on
//! small data and compares it with the CPU reference:
//!
//! 1. **kernels**: `add` in fp32 (one float addition per element: bit for bit the CPU's) and
//!    `mean_std` (a reduction kernel; within `4 n eps` of the f64 sums);
//! 2. **cuFFT fp16**: the kept modes of a 64 x 64 fp16 transform against the f64 transform,
//!    norm-wise relative error at most `4 u log2(n)` (u = 2^-11): well above fp16's rounding
//!    error, far below what a wrong layout or scale gives (order 1);
//! 3. **cuBLAS GEMM**: the fp32 spectral contraction (the complex product as a real GEMM) and a
//!    1x1 `linear` against f64, relative error at most `2^-16`;
//! 4. **training step**: a small FNO's fp32 forward against the CPU's (relative `2^-12`), then
//!    one warm-up and one timed training step with the spectral block in fp16 (forward, loss,
//!    backward, AdamW): it must finish without overflow.
//!
//! The checks stop at the first failure; its message is the verdict. Panics inside a check
//! (the CUDA backend raises device errors as panics carrying a `CudaError`) become failures.

use crate::backend::cpu::Cpu;
use crate::backend::{Backend, ContractForm, Modes, SpectralForward, SpectralTransform};
use crate::fno::{Fno, FnoConfig, Params, Policy, Resident, Stabilizer};
use crate::precision::Format;
use std::time::Instant;

/// One check: its name, how long it took, and what it found (`Err` names what failed).
#[derive(Clone, Debug)]
pub struct Check {
    pub name: &'static str,
    pub seconds: f64,
    pub outcome: Result<String, String>,
}

/// A check's body: a summary of what it found, or what failed.
type CheckFn<'a> = dyn Fn() -> Result<String, String> + 'a;

/// Run `f` as the check `name`, turning a panic into a failure with its message.
pub fn run_check(name: &'static str, f: impl FnOnce() -> Result<String, String>) -> Check {
    let t = Instant::now();
    let outcome = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => Err(panic_message(payload.as_ref())),
    };
    Check {
        name,
        seconds: t.elapsed().as_secs_f64(),
        outcome,
    }
}

/// The message a panic carried: a backend error, a `&str` or a `String`.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(e) = payload.downcast_ref::<crate::backend::cuda::CudaError>() {
        e.to_string()
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".into()
    }
}

/// The backend checks (kernels, cuFFT fp16, GEMM, training step) on `be`, in order, stopping
/// after the first that fails. `report` sees each check as it ends (for progress output).
pub fn backend_checks<B: Backend<T = f32>>(be: &B, mut report: impl FnMut(&Check)) -> Vec<Check> {
    let checks: [(&'static str, &CheckFn); 4] = [
        ("kernels", &|| kernels(be)),
        ("cuFFT fp16", &|| fft_fp16(be)),
        ("cuBLAS GEMM", &|| gemm(be)),
        ("training step", &|| training_step(be)),
    ];
    let mut done = Vec::new();
    for (name, f) in checks {
        let c = run_check(name, f);
        report(&c);
        let failed = c.outcome.is_err();
        done.push(c);
        if failed {
            break;
        }
    }
    done
}

/// `n` seeded values uniform in [-1, 1) (`experiments::noise`), as f32.
fn values(seed: u64, n: usize) -> Vec<f32> {
    crate::experiments::noise(n, seed, 0)
        .iter()
        .map(|&v| v as f32)
        .collect()
}

/// Norm-wise relative error `||got - want|| / ||want||`.
fn rel_err(got: &[f32], want: &[f64]) -> f64 {
    let (mut d2, mut w2) = (0.0f64, 0.0f64);
    for (g, w) in got.iter().zip(want) {
        d2 += (*g as f64 - w).powi(2);
        w2 += w * w;
    }
    (d2 / w2.max(f64::MIN_POSITIVE)).sqrt()
}

/// `Ok(what)` when `err <= tol` (and the lengths agree), else a failure naming both.
fn within(what: &str, got: &[f32], want: &[f64], tol: f64) -> Result<String, String> {
    if got.len() != want.len() {
        return Err(format!(
            "{what}: {} values, expected {}",
            got.len(),
            want.len()
        ));
    }
    let e = rel_err(got, want);
    if e <= tol {
        Ok(format!("{what} rel. error {e:.1e} (<= {tol:.1e})"))
    } else {
        Err(format!("{what}: relative error {e:.3e} above {tol:.3e}"))
    }
}

fn kernels<B: Backend<T = f32>>(be: &B) -> Result<String, String> {
    let n = 100_003; // several warp segments of a reduction, the last one partial
    let (a, b) = (values(1, n), values(2, n));
    let sum = be.download(&be.add(
        &be.upload(&[n], &a, Format::Fp32),
        &be.upload(&[n], &b, Format::Fp32),
    ));
    if let Some(i) =
        (0..n).find(|&i| sum.get(i).map(|v| v.to_bits()) != Some((a[i] + b[i]).to_bits()))
    {
        return Err(format!(
            "add: value {i} is {:?}, the CPU's {}",
            sum.get(i),
            a[i] + b[i]
        ));
    }
    let (mean, std) = be.mean_std(&be.upload(&[n], &a, Format::Fp32));
    let m: f64 = a.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    let s = (a.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / n as f64).sqrt();
    let tol = 4.0 * n as f64 * f64::EPSILON;
    if (mean - m).abs() > tol || (std - s).abs() > tol {
        return Err(format!("mean_std: ({mean}, {std}), the CPU's ({m}, {s})"));
    }
    Ok(format!(
        "add bit for bit, mean/std within {tol:.0e} ({n} values)"
    ))
}

fn fft_fp16<B: Backend<T = f32>>(be: &B) -> Result<String, String> {
    let (batch, n) = (2usize, 64usize);
    let shape = [batch, 1, n, n];
    let x = values(3, batch * n * n);
    let modes = Modes(vec![8, 8]);
    let opt = |format| SpectralForward {
        scale: 1.0 / (n * n) as f64,
        hermitian: true,
        format,
        transform: SpectralTransform::Fft,
    };
    let got = be.download_complex(&be.rfft_modes(
        &be.upload(&shape, &x, Format::Fp16),
        &modes,
        opt(Format::Fp16),
    ));
    let r = Cpu::<f64>::new();
    // The reference transforms the same fp16 inputs exactly: only the transform's error counts.
    let x16: Vec<f64> = x
        .iter()
        .map(|&v| crate::precision::round(v as f64, Format::Fp16))
        .collect();
    let want = r.download_complex(&r.rfft_modes(
        &r.upload(&shape, &x16, Format::Fp64),
        &modes,
        opt(Format::Fp64),
    ));
    let u = 2f64.powi(-11);
    within(
        "64 x 64 kept modes",
        &got,
        &want,
        4.0 * u * ((n * n) as f64).log2(),
    )
}

fn gemm<B: Backend<T = f32>>(be: &B) -> Result<String, String> {
    let (b, ci, co, kept) = (3usize, 8usize, 6usize, [8usize, 4]);
    let k: usize = kept.iter().product();
    let shape = |lead: [usize; 2]| [lead[0], lead[1], kept[0], kept[1]];
    let (x, w) = (values(4, 2 * b * ci * k), values(5, 2 * ci * co * k));
    let r = Cpu::<f64>::new();
    let wide = |v: &[f32]| v.iter().map(|&t| t as f64).collect::<Vec<f64>>();
    let got = be.download_complex(&be.contract(
        &be.upload_complex(&shape([b, ci]), &x, Format::Fp32),
        &be.upload_complex(&shape([ci, co]), &w, Format::Fp32),
        Format::Fp32,
        ContractForm::Standard,
    ));
    let want = r.download_complex(&r.contract(
        &r.upload_complex(&shape([b, ci]), &wide(&x), Format::Fp64),
        &r.upload_complex(&shape([ci, co]), &wide(&w), Format::Fp64),
        Format::Fp64,
        ContractForm::Standard,
    ));
    let tol = 2f64.powi(-16);
    let c = within("contraction", &got, &want, tol)?;
    let (p, lw) = (300usize, values(6, co * ci));
    let lx = values(7, b * ci * p);
    let got = be.download(&be.linear(
        &be.upload(&[b, ci, p], &lx, Format::Fp32),
        &be.upload(&[co, ci], &lw, Format::Fp32),
        None,
        Format::Fp32,
    ));
    let want = r.download(&r.linear(
        &r.upload(&[b, ci, p], &wide(&lx), Format::Fp64),
        &r.upload(&[co, ci], &wide(&lw), Format::Fp64),
        None,
        Format::Fp64,
    ));
    let l = within("linear", &got, &want, tol)?;
    Ok(format!("{c}; {l}"))
}

fn training_step<B: Backend<T = f32>>(be: &B) -> Result<String, String> {
    let model = Fno::new(FnoConfig::tiny())?;
    let (batch, n) = (4usize, 32usize);
    let shape = [batch, model.cfg.in_channels, n, n];
    let x = values(8, batch * model.cfg.in_channels * n * n);
    let host = model.init::<f32>(9);
    let got = forward_fp32(be, &model, &host, &shape, &x)?;
    let want = forward_fp32(&Cpu::<f32>::new(), &model, &host, &shape, &x)?;
    let want: Vec<f64> = want.iter().map(|&v| v as f64).collect();
    let fwd = within("fp32 forward vs CPU", &got, &want, 2f64.powi(-12))?;
    let half = Policy::half_block(Format::Fp16, Stabilizer::Tanh);
    let t = crate::fno::train::time_step(be, &model, &half, batch, &[n, n], 1, 0)
        .map_err(|(i, o)| format!("fp16-block training step {i} overflowed: {o}"))?;
    Ok(format!(
        "{fwd}; fp16-block step {:.1} ms, peak {} KiB",
        1e3 * t.best_seconds,
        t.peak_bytes / 1024
    ))
}

/// The fp32 forward output of `model` with weights `host` on `be`.
fn forward_fp32<B: Backend<T = f32>>(
    be: &B,
    model: &Fno,
    host: &Params<f32>,
    shape: &[usize],
    x: &[f32],
) -> Result<Vec<f32>, String> {
    let w = Resident::upload(be, host);
    let (y, _) = model
        .forward(be, &w, &be.upload(shape, x, Format::Fp32), &Policy::full())
        .map_err(|o| format!("{} fp32 forward overflowed: {o}", be.name()))?;
    Ok(be.download(&y))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every check passes on the CPU backend (its own reference, within the same tolerances):
    /// the checks are consistent, so a failure on the GPU is the GPU's.
    #[test]
    fn every_check_passes_on_the_cpu() {
        let cpu = Cpu::<f32>::new();
        let mut seen = 0;
        let checks = backend_checks(&cpu, |c| {
            seen += 1;
            eprintln!("{}: {:?}", c.name, c.outcome);
        });
        assert_eq!(seen, 4);
        for c in &checks {
            assert!(c.outcome.is_ok(), "{}: {:?}", c.name, c.outcome);
        }
    }

    #[test]
    fn a_panic_becomes_a_failure_with_its_message() {
        let c = run_check("boom", || panic!("kernel {} refused", 7));
        assert_eq!(c.outcome.unwrap_err(), "kernel 7 refused");
        let c = run_check("device", || {
            std::panic::panic_any(crate::backend::cuda::CudaError::NoDriver)
        });
        assert!(c.outcome.unwrap_err().contains("no NVIDIA driver"));
        let c = run_check("wrong", || Err("off by one".into()));
        assert_eq!(c.outcome.unwrap_err(), "off by one");
    }

    /// A result off by more than the tolerance, or of the wrong length, fails its check.
    #[test]
    fn a_wrong_result_fails() {
        assert!(within("x", &[1.0, 2.0], &[1.0, 2.0], 0.0).is_ok());
        let e = within("x", &[1.0, 2.001], &[1.0, 2.0], 1e-4).unwrap_err();
        assert!(e.contains("relative error"), "{e}");
        assert!(within("x", &[1.0], &[1.0, 2.0], 1.0).is_err());
    }
}
