//! `mpno datagen darcy|navier-stokes|burgers`: arguments, validation (exit 2 before any work, no
//! file), parallel generation (rayon; sample i is seeded by (seed, i), so the bytes do not
//! depend on the thread count), and the files (one per saved resolution, written atomically).
//!
//! Tensors (n samples, r points per axis, K snapshots; fields f32 unless --dtype f64):
//! - darcy: `a` (n, r, r) coefficient, `u` (n, r, r) solution, `residual` (n) f64 relative
//!   residual of the linear solve, `iterations` (n) i64 PCG iterations;
//! - navier-stokes: `w0` (n, r, r) initial vorticity, `w` (n, K, r, r) vorticity at the times
//!   `t` (K) f64, `steps` (n) i64 time steps taken;
//! - burgers: `u0` (n, r) initial condition, `u` (n, r) solution at T, `steps` (n) i64.
//!
//! Fields are indexed [..., i, j] = value at (x_i, y_j).

use super::burgers::{BurgersGenerator, BurgersParams};
use super::darcy::{Averaging, DarcyGenerator, DarcyParams};
use super::dataset::{DType, Dataset, Tensor};
use super::grf::GrfParams;
use super::navier_stokes::{NsGenerator, NsParams, NsStop, Scheme, Stepping, fno_sigma};
use super::sample_rng;
use crate::cli::UsageError;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Arguments every equation takes.
#[derive(clap::Args, Clone, Debug)]
pub struct CommonArgs {
    /// Number of samples (>= 1).
    #[arg(long, default_value_t = 1)]
    pub n: usize,
    /// Grid points per axis the equation is solved on (>= 4); default: darcy 128,
    /// navier-stokes 64, burgers 8192.
    #[arg(long)]
    pub res: Option<usize>,
    /// Seed; sample i uses the stream of (seed, i).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output file (.safetensors). With --save-res, one file per resolution, named
    /// STEM_rR.EXT.
    #[arg(long)]
    pub out: PathBuf,
    /// Element type of the fields: f32 or f64.
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// Save subsampled copies at these resolutions instead (comma-separated; every k-th point:
    /// periodic grids need R | res, the Darcy vertex grid (R-1) | (res-1)).
    #[arg(long)]
    pub save_res: Option<String>,
}

/// Darcy flow, FNO settings by default.
#[derive(clap::Args, Clone, Debug)]
pub struct DarcyArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// GRF exponent alpha of (-Delta + tau^2)^(-alpha) (Neumann).
    #[arg(long, default_value_t = 2.0, allow_hyphen_values = true)]
    pub alpha: f64,
    /// GRF tau.
    #[arg(long, default_value_t = 3.0, allow_hyphen_values = true)]
    pub tau: f64,
    /// Coefficient where the GRF is >= 0.
    #[arg(long, default_value_t = 12.0, allow_hyphen_values = true)]
    pub a_pos: f64,
    /// Coefficient where the GRF is < 0.
    #[arg(long, default_value_t = 3.0, allow_hyphen_values = true)]
    pub a_neg: f64,
    /// Right-hand side f (constant).
    #[arg(long, default_value_t = 1.0, allow_hyphen_values = true)]
    pub f: f64,
    /// Face average of the coefficient: arithmetic (as the FNO data) or harmonic.
    #[arg(long, default_value = "arithmetic")]
    pub averaging: String,
    /// Relative residual ||f - A u|| / ||f|| at which PCG stops.
    #[arg(long, default_value_t = 1e-10, allow_hyphen_values = true)]
    pub tol: f64,
    /// PCG iteration limit (the solve also stops where a sample would pass about an hour of one
    /// core).
    #[arg(long, default_value_t = 100_000)]
    pub max_iter: usize,
}

/// 2-D Navier-Stokes (vorticity), FNO settings by default.
#[derive(clap::Args, Clone, Debug)]
pub struct NsArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Viscosity nu (>= 0; the FNO data sets use 1e-3, 1e-4, 1e-5).
    #[arg(long, default_value_t = 1e-3, allow_hyphen_values = true)]
    pub viscosity: f64,
    /// Final time T (> 0).
    #[arg(long, default_value_t = 50.0, allow_hyphen_values = true)]
    pub t_final: f64,
    /// Number of snapshots, at t = i T / K, i = 1..K.
    #[arg(long, default_value_t = 50)]
    pub snapshots: usize,
    /// Snapshot times instead (comma-separated, increasing, > 0; the last one ends the run);
    /// not with --t-final or --snapshots.
    #[arg(long, conflicts_with_all = ["t_final", "snapshots"])]
    pub times: Option<String>,
    /// Largest time step (ns_2d.py: 1e-4).
    #[arg(long, default_value_t = 1e-4, allow_hyphen_values = true)]
    pub dt_max: f64,
    /// CFL number: dt <= cfl h / max(|u| + |v|).
    #[arg(long, default_value_t = 0.25, allow_hyphen_values = true)]
    pub cfl: f64,
    /// Explicit part: euler (as ns_2d.py) or heun.
    #[arg(long, default_value = "euler")]
    pub scheme: String,
    /// Initial vorticity GRF alpha.
    #[arg(long, default_value_t = 2.5, allow_hyphen_values = true)]
    pub alpha: f64,
    /// Initial vorticity GRF tau.
    #[arg(long, default_value_t = 7.0, allow_hyphen_values = true)]
    pub tau: f64,
    /// Initial vorticity GRF sigma (default sqrt(2) 7^1.5, the amplitude of ns_2d.py's samples).
    #[arg(long, default_value_t = fno_sigma(), allow_hyphen_values = true)]
    pub sigma: f64,
    /// Forcing amplitude A in A (sin 2 pi (x + y) + cos 2 pi (x + y)).
    #[arg(long, default_value_t = 0.1, allow_hyphen_values = true)]
    pub forcing: f64,
    /// Also draw the first trajectory's vorticity at four times (PNG or SVG by extension).
    #[arg(long)]
    pub figure: Option<PathBuf>,
}

/// 1-D viscous Burgers, FNO paper settings by default.
#[derive(clap::Args, Clone, Debug)]
pub struct BurgersArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Viscosity nu (> 0).
    #[arg(long, default_value_t = 0.1, allow_hyphen_values = true)]
    pub viscosity: f64,
    /// Final time T (> 0).
    #[arg(long, default_value_t = 1.0, allow_hyphen_values = true)]
    pub t_final: f64,
    /// Largest time step (1e-3 keeps the time error below f32 rounding; see pde::burgers).
    #[arg(long, default_value_t = 1e-3, allow_hyphen_values = true)]
    pub dt_max: f64,
    /// Step-size factor: dt <= cfl nu / max|u0|^2.
    #[arg(long, default_value_t = 0.5, allow_hyphen_values = true)]
    pub cfl: f64,
    /// Initial-condition GRF alpha.
    #[arg(long, default_value_t = 2.0, allow_hyphen_values = true)]
    pub alpha: f64,
    /// Initial-condition GRF tau.
    #[arg(long, default_value_t = 5.0, allow_hyphen_values = true)]
    pub tau: f64,
    /// Initial-condition GRF sigma (625 = 25^2 in the paper).
    #[arg(long, default_value_t = 25.0, allow_hyphen_values = true)]
    pub sigma: f64,
}

/// The equation to generate data for.
#[derive(clap::Subcommand, Clone, Debug)]
pub enum DatagenCommand {
    /// Darcy flow -div(a grad u) = f on the unit square, u = 0 on the boundary.
    Darcy(DarcyArgs),
    /// 2-D Navier-Stokes in vorticity form on the torus, forced.
    NavierStokes(NsArgs),
    /// 1-D viscous Burgers on the periodic [0,1).
    Burgers(BurgersArgs),
}

/// A validated job.
#[derive(Clone, Debug)]
pub struct Job {
    pub equation: Equation,
    pub n: usize,
    pub seed: u64,
    pub dtype: DType,
    /// (file, resolution) pairs.
    pub outputs: Vec<(PathBuf, usize)>,
    pub figure: Option<PathBuf>,
}

/// An equation with its parameters.
#[derive(Clone, Debug)]
pub enum Equation {
    Darcy(DarcyParams),
    NavierStokes(NsParams),
    Burgers(BurgersParams),
}

impl Equation {
    pub fn name(&self) -> &'static str {
        match self {
            Equation::Darcy(_) => "darcy",
            Equation::NavierStokes(_) => "navier-stokes",
            Equation::Burgers(_) => "burgers",
        }
    }

    pub fn resolution(&self) -> usize {
        match self {
            Equation::Darcy(p) => p.r,
            Equation::NavierStokes(p) => p.r,
            Equation::Burgers(p) => p.r,
        }
    }

    fn periodic(&self) -> bool {
        !matches!(self, Equation::Darcy(_))
    }
}

fn positive(field: &str, v: f64) -> Result<f64, UsageError> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(UsageError::new(
            field,
            format!("{v} must be a finite number > 0"),
        ))
    }
}

fn nonnegative(field: &str, v: f64) -> Result<f64, UsageError> {
    crate::cli::check_nonnegative(field, v).map(|_| v)
}

fn finite(field: &str, v: f64) -> Result<f64, UsageError> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(UsageError::new(field, format!("{v} must be finite")))
    }
}

fn grf(alpha: f64, tau: f64, sigma: f64) -> Result<GrfParams, UsageError> {
    Ok(GrfParams {
        alpha: positive("--alpha", alpha)?,
        tau: positive("--tau", tau)?,
        sigma: nonnegative("--sigma", sigma)?,
        zero_mean: true,
    })
}

/// Parse a list of resolutions to save (None: the solve resolution) and check that each is a
/// subsampling of `r`.
pub fn parse_save_res(
    list: Option<&str>,
    r: usize,
    periodic: bool,
) -> Result<Vec<usize>, UsageError> {
    let field = "--save-res";
    let Some(list) = list else {
        return Ok(vec![r]);
    };
    let mut out = Vec::new();
    for t in crate::cli::split_list(field, list)? {
        let s: usize = t
            .parse()
            .map_err(|_| UsageError::new(field, format!("'{t}' is not a positive integer")))?;
        let ok = if periodic {
            s >= 4 && s <= r && r.is_multiple_of(s)
        } else {
            s >= 4 && s <= r && (r - 1).is_multiple_of(s - 1)
        };
        if !ok {
            let rule = if periodic {
                format!("a divisor of --res {r} that is >= 4")
            } else {
                format!(
                    "R >= 4 with R - 1 dividing --res - 1 = {} (vertex grid; e.g. --res 129 or 421)",
                    r - 1
                )
            };
            return Err(UsageError::new(field, format!("{s} is not {rule}")));
        }
        if !out.contains(&s) {
            out.push(s);
        }
    }
    if out.is_empty() {
        return Err(UsageError::new(
            field,
            "empty; give resolutions, e.g. 64,32",
        ));
    }
    Ok(out)
}

fn parse_times(list: &str) -> Result<Vec<f64>, UsageError> {
    let field = "--times";
    let mut out: Vec<f64> = Vec::new();
    for t in crate::cli::split_list(field, list)? {
        let v: f64 = t
            .parse()
            .map_err(|_| UsageError::new(field, format!("'{t}' is not a number")))?;
        if !(v.is_finite() && v > 0.0) {
            return Err(UsageError::new(
                field,
                format!("{v} must be a finite time > 0"),
            ));
        }
        if out.last().is_some_and(|&p| v <= p) {
            return Err(UsageError::new(field, "times must be strictly increasing"));
        }
        out.push(v);
    }
    if out.is_empty() {
        return Err(UsageError::new(field, "empty; give times, e.g. 1,10,50"));
    }
    Ok(out)
}

/// STEM_rR.EXT beside `out`.
fn with_resolution(out: &Path, r: usize) -> PathBuf {
    let stem = out
        .file_stem()
        .map_or("data".into(), |s| s.to_string_lossy().into_owned());
    let name = match out.extension() {
        Some(e) => format!("{stem}_r{r}.{}", e.to_string_lossy()),
        None => format!("{stem}_r{r}"),
    };
    out.with_file_name(name)
}

/// Bytes a generated value takes while generating: the f64 sample plus the stored tensor (at
/// most f64) at the same time.
const BYTES_PER_VALUE: f64 = 16.0;

/// Values of one Navier-Stokes sample on an r x r grid: its initial vorticity and `snapshots`
/// snapshots.
fn ns_sample_values(r: usize, snapshots: usize) -> f64 {
    (1 + snapshots) as f64 * (r * r) as f64
}

/// Bytes the generated arrays take in memory.
fn memory_needed(eq: &Equation, n: usize) -> f64 {
    let r = eq.resolution() as f64;
    let per_sample = match eq {
        Equation::Darcy(_) => 2.0 * r * r,
        Equation::NavierStokes(p) => ns_sample_values(eq.resolution(), p.stepping.times.len()),
        Equation::Burgers(_) => 2.0 * r,
    };
    n as f64 * per_sample * BYTES_PER_VALUE
}

/// Bytes of the tensors of the data file `job` writes (values at 4 bytes, 8 with --dtype f64;
/// the header and coordinates are small): what `mpno train` will read whole, for the memory
/// check of an experiment before its data exist.
pub fn file_bytes(job: &Job) -> f64 {
    let width = match job.dtype {
        DType::F64 | DType::I64 => 8.0,
        DType::F32 => 4.0,
    };
    memory_needed(&job.equation, job.n) / BYTES_PER_VALUE * width
}

/// Time steps one sample may take: beyond, a run is refused (before any work when the count
/// is known from the arguments, else as soon as the sample's step size shows it).
pub const MAX_STEPS: f64 = 1e8;

/// Seconds of one core one sample may take, as estimated by [`seconds_per_point_step`]: about
/// an hour. Beyond, a run is refused (before any work where the arguments show it, else as soon
/// as the sample's step size or iteration count does).
pub const MAX_SAMPLE_SECONDS: f64 = 3600.0;

/// Seconds of one core per grid point and time step (Darcy: per unknown and PCG iteration),
/// measured by `scripts/datagen_cost.sh` on the development machine (2 cores, one thread;
/// bench/results/datagen_cost_cpu_2026-12-06.md): Burgers' ETDRK4 step 9.6e-8 (2^18 points,
/// 1000 steps: 25 s), Navier-Stokes' pseudo-spectral step 1.7e-8 (128 x 128, 5e4 steps: 14 s),
/// Darcy's PCG iteration 1.7e-8 (1024 x 1024, 387 iterations: 7 s). Another machine may be a
/// few times faster or slower.
pub fn seconds_per_point_step(eq: &Equation) -> f64 {
    match eq {
        Equation::Darcy(_) => 1.7e-8,
        Equation::NavierStokes(_) => 1.7e-8,
        Equation::Burgers(_) => 9.6e-8,
    }
}

/// Grid points (or unknowns) of one sample of `eq`.
fn sample_points(eq: &Equation) -> f64 {
    match eq {
        Equation::Darcy(p) => (p.r * p.r) as f64,
        Equation::NavierStokes(p) => (p.r * p.r) as f64,
        Equation::Burgers(p) => p.r as f64,
    }
}

/// Seconds of one core one step (Darcy: one PCG iteration) of one sample of `eq` takes.
fn seconds_per_step(eq: &Equation) -> f64 {
    seconds_per_point_step(eq) * sample_points(eq)
}

/// The steps (Darcy: PCG iterations) one sample of `eq` may take: [`MAX_STEPS`], and about
/// [`MAX_SAMPLE_SECONDS`] of one core.
pub fn step_limit(eq: &Equation) -> f64 {
    MAX_STEPS.min((MAX_SAMPLE_SECONDS / seconds_per_step(eq)).floor())
}

/// The limits in words, for messages: "at most 1e8 steps, and about an hour of one core per
/// sample at about 1.8e-2 s a step".
fn limits_text(eq: &Equation, unit: &str) -> String {
    let per_step = seconds_per_step(eq);
    format!(
        "at most {MAX_STEPS:.0e} {unit}, and about an hour of one core per sample at about \
         {per_step:.1e} s each"
    )
}

/// PCG iterations a Darcy solve on an r x r grid takes at least, for the estimate before any
/// work: about 0.3 r (measured with the default coefficients: 60 at r = 128, 102 at 256, 192 at
/// 512, 387 at 1024; a larger contrast --a-pos/--a-neg takes more).
fn darcy_iterations_estimate(r: usize) -> f64 {
    0.3 * r as f64
}

/// The CFL number C at which the explicit Navier-Stokes step's largest advective eigenvalue
/// theta = (2 pi / 3) C reaches 1 (see [`crate::pde::navier_stokes`]): above it each step
/// amplifies the top modes by sqrt(2) or more, held only by the viscous damping, so messages
/// advise a larger --cfl only below it (advice, not a check: runs that blow up are caught).
const NS_STABLE_CFL: f64 = 3.0 / (2.0 * std::f64::consts::PI);

/// Whether by time `t` the forcing F (sin + cos, so up to 2 |F| pointwise) can have added more
/// vorticity than the initial field's scale --sigma: then it, not the initial field, is what a
/// message about a fast or blown-up flow should name.
fn forcing_dominates(p: &super::navier_stokes::NsParams, t: f64) -> bool {
    2.0 * p.forcing.abs() * t > p.grf.sigma
}

/// Refuse, before any work, a job whose every sample needs more steps than [`step_limit`]:
/// the steps at the largest step size (T / dt_max), or Darcy's expected iteration count (the
/// solve itself stops at the limit; see [`generate`]).
/// `time_field`: the option that set the final time (--t-final, or --times).
fn check_work(eq: &Equation, time_field: &str) -> Result<(), UsageError> {
    let refuse = |field: &str, steps: f64, what: String, hint: &str| {
        crate::cli::check_work(
            field,
            steps,
            step_limit(eq),
            "steps per sample",
            &what,
            hint,
        )
    };
    match eq {
        Equation::Darcy(p) => {
            let its = darcy_iterations_estimate(p.r).min(p.max_iter as f64);
            crate::cli::check_work(
                "--res",
                its,
                step_limit(eq),
                "iterations per sample",
                &format!(
                    "PCG on {} x {} unknowns takes about 0.3 x --res = {its:.0} iterations or \
                     more ({})",
                    p.r,
                    p.r,
                    limits_text(eq, "iterations")
                ),
                "lower --res",
            )
        }
        Equation::NavierStokes(p) => {
            let st = &p.stepping;
            let mut steps = 0.0;
            let mut t = 0.0;
            for &target in &st.times {
                steps += ((target - t) / st.dt_max).ceil();
                t = target;
            }
            refuse(
                time_field,
                steps,
                format!(
                    "T = {} with steps of at most --dt-max {} on {} x {} points ({})",
                    short(t),
                    short(st.dt_max),
                    p.r,
                    p.r,
                    limits_text(eq, "steps")
                ),
                &format!("lower {time_field} or --res, or raise --dt-max"),
            )
        }
        Equation::Burgers(p) => refuse(
            "--t-final",
            (p.t_final / p.dt_max).ceil(),
            format!(
                "T = {} with ETDRK4 steps of at most --dt-max {} on {} points ({})",
                short(p.t_final),
                short(p.dt_max),
                p.r,
                limits_text(eq, "steps")
            ),
            "lower --t-final or --res, or raise --dt-max",
        ),
    }
}

/// Validate the arguments into a job; every error names its field.
pub fn prepare(cmd: &DatagenCommand) -> Result<Job, UsageError> {
    let common = match cmd {
        DatagenCommand::Darcy(a) => &a.common,
        DatagenCommand::NavierStokes(a) => &a.common,
        DatagenCommand::Burgers(a) => &a.common,
    };
    if common.n == 0 {
        return Err(UsageError::new("--n", "0 samples; must be >= 1"));
    }
    let default_res = match cmd {
        DatagenCommand::Darcy(_) => 128,
        DatagenCommand::NavierStokes(_) => 64,
        DatagenCommand::Burgers(_) => 8192,
    };
    let r = common.res.unwrap_or(default_res);
    if r < 4 {
        return Err(UsageError::new(
            "--res",
            format!("{r} is too small; must be >= 4"),
        ));
    }
    let dtype: DType = common
        .dtype
        .parse()
        .map_err(|e: String| UsageError::new("--dtype", e))?;
    let mut figure = None;
    let equation = match cmd {
        DatagenCommand::Darcy(a) => {
            let averaging: Averaging = a
                .averaging
                .parse()
                .map_err(|e: String| UsageError::new("--averaging", e))?;
            let tol = positive("--tol", a.tol)?;
            if tol >= 1.0 {
                return Err(UsageError::new("--tol", format!("{tol} must be < 1")));
            }
            if a.max_iter == 0 {
                return Err(UsageError::new("--max-iter", "must be >= 1"));
            }
            let (a_pos, a_neg) = (positive("--a-pos", a.a_pos)?, positive("--a-neg", a.a_neg)?);
            if !(a_pos.max(a_neg) / a_pos.min(a_neg)).is_finite() {
                return Err(UsageError::new(
                    "--a-pos/--a-neg",
                    format!(
                        "the contrast {} / {} overflows f64: no solve can resolve it",
                        short(a_pos.max(a_neg)),
                        short(a_pos.min(a_neg))
                    ),
                ));
            }
            let f = finite("--f", a.f)?;
            // PCG's residual norms square the right-hand side h^2 f over r^2 unknowns: past
            // 1e150 they overflow (the solve then reports NaN after 0 iterations).
            if f.abs() > 1e150 {
                return Err(UsageError::new(
                    "--f",
                    format!(
                        "{f:e} is too large for the solve (its residual norms would overflow \
                         f64); the solution is linear in f: solve with --f 1 and scale, or give \
                         |--f| <= 1e150"
                    ),
                ));
            }
            Equation::Darcy(DarcyParams {
                r,
                grf: GrfParams {
                    sigma: 1.0,
                    ..grf(a.alpha, a.tau, 1.0)?
                },
                a_pos,
                a_neg,
                f,
                averaging,
                tol,
                max_iter: a.max_iter,
            })
        }
        DatagenCommand::NavierStokes(a) => {
            let viscosity = nonnegative("--viscosity", a.viscosity)?;
            let times = match &a.times {
                Some(list) => parse_times(list)?,
                None => {
                    let t_final = positive("--t-final", a.t_final)?;
                    if a.snapshots == 0 {
                        return Err(UsageError::new("--snapshots", "must be >= 1"));
                    }
                    let k = a.snapshots;
                    // Before the times are listed: one sample's snapshots must fit.
                    crate::cli::check_memory(
                        "--snapshots",
                        ns_sample_values(r, k) * BYTES_PER_VALUE,
                        &format!("{k} snapshots at --res {r}"),
                    )?;
                    (1..=k).map(|i| t_final * i as f64 / k as f64).collect()
                }
            };
            let scheme: Scheme = a
                .scheme
                .parse()
                .map_err(|e: String| UsageError::new("--scheme", e))?;
            if let Some(f) = &a.figure {
                let ext = f.extension().and_then(|e| e.to_str()).unwrap_or("");
                if ext != "png" && ext != "svg" {
                    return Err(UsageError::new(
                        "--figure",
                        format!("'{}' must end in .png or .svg", f.display()),
                    ));
                }
                figure = Some(f.clone());
            }
            let dt_max = positive("--dt-max", a.dt_max)?;
            // Crank-Nicolson multiplies mode k by (1 - z/2) / (1 + z/2), z = dt nu 4 pi^2 |k|^2:
            // past z = 2 it flips the mode's sign every step instead of damping it. When even the
            // slowest mode (|k| = 1) flips at the largest step, the output is no solution.
            let gaps = times.iter().scan(0.0, |t, &x| {
                let gap = x - *t;
                *t = x;
                Some(gap)
            });
            let dt_top = gaps.fold(dt_max, f64::min);
            let lambda1 = 4.0 * std::f64::consts::PI.powi(2);
            let z = dt_top * viscosity * lambda1;
            if z > 2.0 {
                return Err(UsageError::new(
                    "--viscosity",
                    format!(
                        "{viscosity:e} with steps up to {dt_top:e} gives dt nu 4 pi^2 = {z:.3e} > \
                         2, where Crank-Nicolson flips the sign of every Fourier mode each step \
                         instead of damping it; lower --viscosity or --dt-max (below {:.3e})",
                        2.0 / (viscosity * lambda1)
                    ),
                ));
            }
            Equation::NavierStokes(NsParams {
                r,
                stepping: Stepping {
                    viscosity,
                    times,
                    dt_max,
                    cfl: positive("--cfl", a.cfl)?,
                    scheme,
                },
                grf: grf(a.alpha, a.tau, a.sigma)?,
                forcing: finite("--forcing", a.forcing)?,
            })
        }
        DatagenCommand::Burgers(a) => Equation::Burgers(BurgersParams {
            r,
            viscosity: positive("--viscosity", a.viscosity)?,
            t_final: positive("--t-final", a.t_final)?,
            dt_max: positive("--dt-max", a.dt_max)?,
            cfl: positive("--cfl", a.cfl)?,
            grf: grf(a.alpha, a.tau, a.sigma)?,
        }),
    };
    let res = parse_save_res(common.save_res.as_deref(), r, equation.periodic())?;
    let outputs = if common.save_res.is_none() {
        vec![(common.out.clone(), r)]
    } else {
        res.iter()
            .map(|&s| (with_resolution(&common.out, s), s))
            .collect()
    };
    // One sample alone too large is --res's fault; many samples that together are, --n's.
    let field = if crate::cli::check_memory("--res", memory_needed(&equation, 1), "x").is_err() {
        "--res"
    } else {
        "--n"
    };
    crate::cli::check_memory(
        field,
        memory_needed(&equation, common.n),
        &format!("{} samples at --res {r}", common.n),
    )?;
    let time_field = match cmd {
        DatagenCommand::NavierStokes(a) if a.times.is_some() => "--times",
        _ => "--t-final",
    };
    check_work(&equation, time_field)?;
    // Where the files go, before any work.
    for (path, _) in &outputs {
        crate::cli::check_output_file("--out", path)?;
    }
    if let Some(f) = &figure {
        crate::cli::check_output_file("--figure", f)?;
        crate::cli::check_output_file("--figure", &f.with_extension("csv"))?;
        // The figure and its CSV are written after the data: they would replace it.
        for g in [f.clone(), f.with_extension("csv")] {
            if let Some((path, _)) = outputs.iter().find(|(p, _)| crate::cli::same_file(p, &g)) {
                return Err(UsageError::new(
                    "--figure",
                    format!(
                        "{} is also a data file of --out ({}); give the figure another name",
                        g.display(),
                        path.display()
                    ),
                ));
            }
        }
    }
    Ok(Job {
        equation,
        n: common.n,
        seed: common.seed,
        dtype,
        outputs,
        figure,
    })
}

fn progress_bar(n: usize, what: &str) -> ProgressBar {
    use std::io::IsTerminal;
    let pb = if std::io::stderr().is_terminal() {
        ProgressBar::new(n as u64)
    } else {
        ProgressBar::hidden()
    };
    pb.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {what} [{{bar:40}}] {{pos}}/{{len}} ({{elapsed}}, eta {{eta}})"
        ))
        .expect("static template")
        .progress_chars("=> "),
    );
    pb
}

/// Run `sample` for i = 0..n in parallel with the generator cloned per rayon task; results in
/// index order. A sample that cannot be used (`Err`, with its index) stops the job: samples not
/// yet started are skipped, and the failure of the lowest index seen is returned.
fn par_samples<G: Clone + Send + Sync, S: Send>(
    gen_: &G,
    n: usize,
    seed: u64,
    pb: &ProgressBar,
    sample: impl Fn(&mut G, &mut super::Rng, usize) -> Result<S, UsageError> + Sync,
) -> Result<Vec<S>, UsageError> {
    let failed = AtomicBool::new(false);
    let all: Vec<Result<S, Option<UsageError>>> = (0..n)
        .into_par_iter()
        .map_init(
            || gen_.clone(),
            |g, i| {
                if failed.load(Ordering::Relaxed) {
                    return Err(None);
                }
                let s = sample(g, &mut sample_rng(seed, i as u64), i);
                if s.is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
                pb.inc(1);
                s.map_err(Some)
            },
        )
        .collect();
    let mut out = Vec::with_capacity(n);
    let mut skipped = false;
    for r in all {
        match r {
            Ok(s) => out.push(s),
            Err(Some(e)) => return Err(e),
            Err(None) => skipped = true,
        }
    }
    assert!(!skipped, "samples are skipped only after a failure");
    Ok(out)
}

/// Which values of a sample are inf/NaN: the first, as "NaN at index 17".
fn first_non_finite(v: &[f64]) -> Option<String> {
    v.iter()
        .position(|x| !x.is_finite())
        .map(|j| format!("{} at index {j}", v[j]))
}

/// A user's number for a message: plain when moderate, else in scientific notation.
fn short(v: f64) -> String {
    if v != 0.0 && !(1e-4..1e6).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

fn fmt(v: f64) -> String {
    // Rust's shortest representation that reads back to the same f64.
    format!("{v}")
}

fn grf_meta(m: &mut BTreeMap<String, String>, prefix: &str, g: &GrfParams, boundary: &str) {
    m.insert(
        prefix.to_string(),
        format!(
            "N(0, sigma^2 (-Delta + tau^2 I)^(-alpha)), {boundary}, mean mode removed, sampled exactly on the grid modes"
        ),
    );
    m.insert(format!("{prefix}_alpha"), fmt(g.alpha));
    m.insert(format!("{prefix}_tau"), fmt(g.tau));
    m.insert(format!("{prefix}_sigma"), fmt(g.sigma));
}

/// Refuse a field that `--dtype f32` cannot hold: a value beyond f32's largest (it would be
/// stored as inf) or a nonzero one below half its smallest subnormal (stored as 0). `per`: the
/// values of one sample; `cause`: the options that set the field's scale.
fn fits_dtype(
    name: &str,
    values: &[f64],
    per: usize,
    dt: DType,
    cause: &str,
) -> Result<(), UsageError> {
    if dt != DType::F32 {
        return Ok(());
    }
    let tiny = 0.5 * f64::from(f32::from_bits(1));
    let bad = values
        .iter()
        .position(|v| v.abs() > f64::from(f32::MAX) || (*v != 0.0 && v.abs() < tiny));
    match bad {
        None => Ok(()),
        Some(j) => Err(UsageError::new(
            "--dtype",
            format!(
                "tensor '{name}' of sample {} holds {:e}, which f32 stores as {}; use --dtype \
                 f64, or change {cause}",
                j / per.max(1),
                values[j],
                if values[j].abs() > 1.0 { "inf" } else { "0" }
            ),
        )),
    }
}

/// A summary line per data set, for the terminal.
pub struct Summary(pub String);

/// Generate the full-resolution data set of a job (no files), with a progress bar when stderr is
/// a terminal. A sample that is not finite, or whose solve did not converge or would take more
/// than [`step_limit`] steps, fails the job (no data), naming the sample and the options to
/// change.
pub fn generate(job: &Job) -> Result<(Dataset, Summary), UsageError> {
    let n = job.n;
    let pb = progress_bar(n, job.equation.name());
    let mut m = BTreeMap::new();
    m.insert("equation".to_string(), job.equation.name().to_string());
    m.insert("mpno_version".into(), env!("CARGO_PKG_VERSION").into());
    m.insert("seed".into(), job.seed.to_string());
    m.insert(
        "seeding".into(),
        "sample i: Xoshiro256++ seeded with splitmix64(splitmix64(seed) ^ i)".into(),
    );
    m.insert("n".into(), n.to_string());
    m.insert(
        "solve_resolution".into(),
        job.equation.resolution().to_string(),
    );
    let mut t = BTreeMap::new();
    let dt = job.dtype;
    let summary;
    match &job.equation {
        Equation::Darcy(p) => {
            let r = p.r;
            // PCG stops at the time limit of a sample if that comes before --max-iter.
            let cap = p.max_iter.min(step_limit(&job.equation) as usize).max(1);
            let g = DarcyGenerator::new(DarcyParams {
                max_iter: cap,
                ..p.clone()
            });
            let s = par_samples(&g, n, job.seed, &pb, |g, rng, i| {
                let s = g.sample(rng);
                let sol = &s.solution;
                if let Some(bad) = first_non_finite(&s.a).or_else(|| first_non_finite(&sol.u)) {
                    return Err(UsageError::new(
                        "--a-pos/--a-neg",
                        format!(
                            "sample {i}: the solution holds {bad}: coefficients {} and {} \
                             (contrast {:.1e}) are beyond what the f64 solve can resolve",
                            short(p.a_pos),
                            short(p.a_neg),
                            p.a_pos.max(p.a_neg) / p.a_pos.min(p.a_neg)
                        ),
                    ));
                }
                let contrast = p.a_pos.max(p.a_neg) / p.a_pos.min(p.a_neg);
                if sol.residual > 1e3 {
                    // Far worse than u = 0 (residual 1): not slow convergence (whose residual
                    // may rise a little above 1 in the first iterations) but a broken solve.
                    return Err(UsageError::new(
                        "--a-pos/--a-neg",
                        format!(
                            "sample {i}: PCG diverged: relative residual {:.3e} after {} \
                             iterations; the coefficient contrast {contrast:.1e} (--a-pos {}, \
                             --a-neg {}) is too large to solve in f64",
                            sol.residual,
                            sol.iterations,
                            short(p.a_pos),
                            short(p.a_neg)
                        ),
                    ));
                }
                if sol.residual > p.tol && sol.iterations < cap {
                    // The recurrence met --tol but the recomputed residual did not, through
                    // every restart: f64's attainable accuracy for this system, not a budget.
                    return Err(UsageError::new(
                        "--tol",
                        format!(
                            "sample {i}: PCG stagnated at relative residual {:.3e} after {} of \
                             --max-iter {} iterations, above --tol {:e}: that is about the \
                             accuracy f64 attains at --res {} with this contrast; set --tol to \
                             {:.0e} or more",
                            sol.residual,
                            sol.iterations,
                            p.max_iter,
                            p.tol,
                            p.r,
                            (sol.residual * 2.0).max(p.tol)
                        ),
                    ));
                }
                if cap < p.max_iter && (sol.residual.is_nan() || sol.residual > p.tol) {
                    return Err(UsageError::new(
                        "--res",
                        format!(
                            "sample {i}: PCG did not converge: relative residual {:.3e} after \
                             {cap} iterations, above --tol {:e}; more iterations on {r} x {r} \
                             unknowns would pass the time limit of a sample (about an hour of \
                             one core); lower --res or the coefficient contrast \
                             --a-pos/--a-neg, or raise --tol",
                            sol.residual, p.tol
                        ),
                    ));
                }
                if sol.residual.is_nan() || sol.residual > p.tol {
                    return Err(UsageError::new(
                        "--max-iter",
                        format!(
                            "sample {i}: PCG did not converge: relative residual {:.3e} after {} \
                             iterations, above --tol {:e} (--max-iter {}); raise --max-iter or \
                             --tol, or lower the coefficient contrast --a-pos/--a-neg",
                            sol.residual, sol.iterations, p.tol, p.max_iter
                        ),
                    ));
                }
                Ok(s)
            })?;
            let res: Vec<f64> = s.iter().map(|s| s.solution.residual).collect();
            let its: Vec<i64> = s.iter().map(|s| s.solution.iterations as i64).collect();
            let worst = res.iter().fold(0.0f64, |a, &b| a.max(b));
            let (a, u): (Vec<Vec<f64>>, Vec<Vec<f64>>) =
                s.into_iter().map(|s| (s.a, s.solution.u)).unzip();
            let (a, u) = (a.concat(), u.concat());
            fits_dtype("a", &a, r * r, dt, "--a-pos/--a-neg")?;
            fits_dtype("u", &u, r * r, dt, "--f or --a-pos/--a-neg")?;
            t.insert("a".into(), Tensor::from_f64(vec![n, r, r], a, dt));
            t.insert("u".into(), Tensor::from_f64(vec![n, r, r], u, dt));
            summary = Summary(format!(
                "darcy: {n} samples at {r} x {r}; PCG iterations mean {:.1}, max {}; max relative residual {worst:.3e} (tol {:e})",
                its.iter().sum::<i64>() as f64 / n as f64,
                its.iter().max().copied().unwrap_or(0),
                p.tol
            ));
            t.insert(
                "residual".into(),
                Tensor::from_f64(vec![n], res, DType::F64),
            );
            t.insert("iterations".into(), Tensor::from_i64(vec![n], its));
            m.insert(
                "pde".into(),
                "-div(a grad u) = f on [0,1]^2, u = 0 on the boundary".into(),
            );
            m.insert(
                "grid".into(),
                "vertex: x_i = i/(r-1), i = 0..r-1, boundary included".into(),
            );
            m.insert(
                "discretisation".into(),
                format!(
                    "5-point finite volume, {} face averages of a; PCG with MIC(0)",
                    p.averaging.name()
                ),
            );
            grf_meta(&mut m, "coefficient_grf", &p.grf, "Neumann (cosine series)");
            m.insert("a_pos".into(), fmt(p.a_pos));
            m.insert("a_neg".into(), fmt(p.a_neg));
            m.insert(
                "coefficient".into(),
                "a = a_pos where the GRF >= 0, a_neg where < 0".into(),
            );
            m.insert("f".into(), fmt(p.f));
            m.insert("tol".into(), fmt(p.tol));
            m.insert("max_residual".into(), fmt(worst));
            m.insert(
                "tensors".into(),
                "a (n,r,r) coefficient; u (n,r,r) solution; residual (n) ||f - A u||/||f||; iterations (n)".into(),
            );
        }
        Equation::NavierStokes(p) => {
            let r = p.r;
            let st = &p.stepping;
            let k = st.times.len();
            let g = NsGenerator::new(p.clone());
            let limit = step_limit(&job.equation);
            let s = par_samples(&g, n, job.seed, &pb, |g, rng, i| {
                g.sample_guarded(rng, Some(limit))
                    .map_err(|stop| match stop {
                        NsStop::TooManySteps { projected, t, dt } => UsageError::new(
                            // The forcing adds up to |F| t to the vorticity by time t: when
                            // that passes the initial field's scale, it made the flow fast.
                            match (forcing_dominates(p, t), st.cfl < NS_STABLE_CFL) {
                                (true, true) => "--forcing/--cfl",
                                (true, false) => "--forcing",
                                (false, true) => "--sigma/--cfl",
                                (false, false) => "--sigma",
                            },
                            format!(
                                "sample {i}: at t = {t:.3e} the CFL condition (--cfl {}) cuts the \
                             step to {dt:.3e}, which would take about {projected:.2e} steps to \
                             T = {}, more than the limit of {} per sample (about an \
                             hour of one core); {}{}",
                                short(st.cfl),
                                short(st.times[k - 1]),
                                crate::cli::format_limit(limit),
                                if forcing_dominates(p, t) {
                                    format!(
                                        "lower the forcing amplitude --forcing ({}), which adds \
                                         up to {:.3e} to the vorticity by then, more than the \
                                         initial amplitude --sigma ({})",
                                        short(p.forcing),
                                        2.0 * p.forcing.abs() * t,
                                        short(p.grf.sigma)
                                    )
                                } else {
                                    format!(
                                        "lower the initial amplitude --sigma ({})",
                                        short(p.grf.sigma)
                                    )
                                },
                                if st.cfl < NS_STABLE_CFL {
                                    format!(
                                        " or raise --cfl, up to about {NS_STABLE_CFL:.2} \
                                         (beyond, the explicit step amplifies the top modes \
                                         by more than sqrt(2) per step)"
                                    )
                                } else {
                                    format!(
                                        " (a larger --cfl would not help: above about \
                                         {NS_STABLE_CFL:.2} the explicit step amplifies the \
                                         top modes by more than sqrt(2) per step)"
                                    )
                                }
                            ),
                        ),
                        NsStop::NonFinite { t, steps } => UsageError::new(
                            if forcing_dominates(p, t) {
                                "--cfl/--dt-max/--forcing"
                            } else {
                                "--cfl/--dt-max/--sigma"
                            },
                            format!(
                                "sample {i}: the vorticity became inf/NaN by t = {t:.3e} (step \
                             {steps}): the explicit step is unstable for --cfl {}, --dt-max {} \
                             and {}; lower them",
                                short(st.cfl),
                                short(st.dt_max),
                                if forcing_dominates(p, t) {
                                    format!("--forcing {}", short(p.forcing))
                                } else {
                                    format!("--sigma {}", short(p.grf.sigma))
                                }
                            ),
                        ),
                    })
            })?;
            let steps: Vec<i64> = s.iter().map(|s| s.run.steps as i64).collect();
            let dt_min = s.iter().fold(f64::INFINITY, |a, s| a.min(s.run.dt_min));
            let mut w0 = Vec::with_capacity(n * r * r);
            let mut w = Vec::with_capacity(n * k * r * r);
            for s in s {
                w0.extend_from_slice(&s.w0);
                for snap in s.run.snapshots {
                    w.extend_from_slice(&snap);
                }
            }
            fits_dtype("w0", &w0, r * r, dt, "--sigma")?;
            fits_dtype("w", &w, k * r * r, dt, "--sigma or --forcing")?;
            t.insert("w0".into(), Tensor::from_f64(vec![n, r, r], w0, dt));
            t.insert("w".into(), Tensor::from_f64(vec![n, k, r, r], w, dt));
            t.insert(
                "t".into(),
                Tensor::from_f64(vec![k], st.times.clone(), DType::F64),
            );
            summary = Summary(format!(
                "navier-stokes: {n} trajectories at {r} x {r}, {k} snapshots to T = {}; steps per trajectory max {}, smallest dt {dt_min:.3e}",
                st.times[k - 1],
                steps.iter().max().copied().unwrap_or(0)
            ));
            t.insert("steps".into(), Tensor::from_i64(vec![n], steps));
            m.insert("pde".into(), "w_t + u.grad w = nu Delta w + f on [0,1)^2 periodic, u = (psi_y, -psi_x), -Delta psi = w".into());
            m.insert("grid".into(), "periodic: x_i = i/r, i = 0..r-1".into());
            m.insert("discretisation".into(), format!("pseudo-spectral, 2/3 dealiasing, Crank-Nicolson + {} (explicit), dt = min(dt_max, cfl h / max(|u|+|v|))", st.scheme.name()));
            m.insert("viscosity".into(), fmt(st.viscosity));
            m.insert("t_final".into(), fmt(st.times[k - 1]));
            m.insert("dt_max".into(), fmt(st.dt_max));
            m.insert("cfl".into(), fmt(st.cfl));
            m.insert("scheme".into(), st.scheme.name().into());
            m.insert(
                "forcing".into(),
                format!("{} (sin(2 pi (x+y)) + cos(2 pi (x+y)))", fmt(p.forcing)),
            );
            grf_meta(&mut m, "initial_grf", &p.grf, "periodic (Fourier)");
            m.insert(
                "tensors".into(),
                "w0 (n,r,r) initial vorticity; w (n,K,r,r) vorticity at times t (K); steps (n)"
                    .into(),
            );
        }
        Equation::Burgers(p) => {
            let r = p.r;
            let g = BurgersGenerator::new(p.clone());
            let limit = step_limit(&job.equation);
            let s = par_samples(&g, n, job.seed, &pb, |g, rng, i| {
                let s = g.sample_guarded(rng, limit).map_err(|steps| {
                    UsageError::new(
                        // Below alpha = 1 a 1-D field is rough and max|u0| grows with the grid.
                        if p.grf.alpha < 1.0 {
                            "--alpha/--viscosity"
                        } else {
                            "--viscosity"
                        },
                        format!(
                            "sample {i}: the step min(--dt-max, --cfl x --viscosity / \
                             max|u0|^2) = min({}, {} x {:e} / max|u0|^2) makes {steps:.2e} \
                             ETDRK4 steps to T = {}, more than the limit of {} per \
                             sample (about an hour of one core); raise --viscosity or --cfl, \
                             lower --t-final, or make max|u0| smaller: lower --sigma ({}) or \
                             raise --alpha ({}; a small alpha makes a rough, large field)",
                            short(p.dt_max),
                            short(p.cfl),
                            p.viscosity,
                            short(p.t_final),
                            crate::cli::format_limit(limit),
                            short(p.grf.sigma),
                            short(p.grf.alpha)
                        ),
                    )
                })?;
                if let Some(bad) = first_non_finite(&s.u) {
                    return Err(UsageError::new(
                        "--cfl/--dt-max/--sigma",
                        format!(
                            "sample {i}: the solution holds {bad} after {} ETDRK4 steps: the \
                             step is too large for the initial amplitude (--cfl {}, --dt-max {}, \
                             --sigma {}); lower them",
                            s.steps,
                            short(p.cfl),
                            short(p.dt_max),
                            short(p.grf.sigma)
                        ),
                    ));
                }
                Ok(s)
            })?;
            let steps: Vec<i64> = s.iter().map(|s| s.steps as i64).collect();
            let (u0, u): (Vec<Vec<f64>>, Vec<Vec<f64>>) =
                s.into_iter().map(|s| (s.u0, s.u)).unzip();
            let (u0, u) = (u0.concat(), u.concat());
            fits_dtype("u0", &u0, r, dt, "--sigma")?;
            fits_dtype("u", &u, r, dt, "--sigma")?;
            t.insert("u0".into(), Tensor::from_f64(vec![n, r], u0, dt));
            t.insert("u".into(), Tensor::from_f64(vec![n, r], u, dt));
            summary = Summary(format!(
                "burgers: {n} samples at {r}, T = {}; ETDRK4 steps max {}",
                p.t_final,
                steps.iter().max().copied().unwrap_or(0)
            ));
            t.insert("steps".into(), Tensor::from_i64(vec![n], steps));
            m.insert(
                "pde".into(),
                "u_t + (u^2/2)_x = nu u_xx on [0,1) periodic".into(),
            );
            m.insert("grid".into(), "periodic: x_i = i/r, i = 0..r-1".into());
            m.insert("discretisation".into(), "pseudo-spectral, 2/3 dealiasing, ETDRK4 (Kassam-Trefethen contour coefficients), dt = T/ceil(T/min(dt_max, cfl nu/max|u0|^2))".into());
            m.insert("viscosity".into(), fmt(p.viscosity));
            m.insert("t_final".into(), fmt(p.t_final));
            m.insert("dt_max".into(), fmt(p.dt_max));
            m.insert("cfl".into(), fmt(p.cfl));
            grf_meta(&mut m, "initial_grf", &p.grf, "periodic (Fourier)");
            m.insert(
                "tensors".into(),
                "u0 (n,r) initial condition; u (n,r) solution at t_final; steps (n)".into(),
            );
        }
    }
    pb.finish_and_clear();
    Ok((
        Dataset {
            tensors: t,
            metadata: m,
        },
        summary,
    ))
}

/// The data set at resolution `to` (a subsampling of the solve resolution `from`).
pub fn subsample(ds: &Dataset, eq: &Equation, to: usize) -> Dataset {
    let from = eq.resolution();
    if to == from {
        let mut d = ds.clone();
        d.metadata.insert("resolution".into(), from.to_string());
        return d;
    }
    let step = if eq.periodic() {
        from / to
    } else {
        (from - 1) / (to - 1)
    };
    let axes = |name: &str| match (eq, name) {
        (Equation::Darcy(_), "a" | "u") => 2,
        (Equation::NavierStokes(_), "w0" | "w") => 2,
        (Equation::Burgers(_), "u0" | "u") => 1,
        _ => 0,
    };
    let tensors = ds
        .tensors
        .iter()
        .map(|(k, v)| {
            let a = axes(k);
            (
                k.clone(),
                if a > 0 {
                    v.subsample(a, step)
                } else {
                    v.clone()
                },
            )
        })
        .collect();
    let mut metadata = ds.metadata.clone();
    metadata.insert("resolution".into(), to.to_string());
    metadata.insert("subsample_step".into(), step.to_string());
    Dataset { tensors, metadata }
}

/// Generate and write every file of a job; returns the lines to print.
pub fn run(job: &Job) -> anyhow::Result<Vec<String>> {
    let start = std::time::Instant::now();
    let (ds, summary) = generate(job)?;
    let mut lines = vec![format!(
        "{} ({:.1} s)",
        summary.0,
        start.elapsed().as_secs_f64()
    )];
    let mut ds = ds;
    ds.metadata.insert(
        "dtype".into(),
        match job.dtype {
            DType::F64 => "f64".into(),
            _ => "f32".into(),
        },
    );
    for (path, res) in &job.outputs {
        let d = subsample(&ds, &job.equation, *res);
        d.save(path)?;
        lines.push(format!("wrote {} (resolution {res})", path.display()));
    }
    if let (Some(fig), Equation::NavierStokes(p)) = (&job.figure, &job.equation) {
        let w = ds.get("w")?.to_f64();
        let w0 = ds.get("w0")?.to_f64();
        super::figure::ns_trajectory(fig, p, &w0, &w)?;
        lines.push(format!("wrote {}", fig.display()));
    }
    Ok(lines)
}
