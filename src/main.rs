//! The `mpno` command line.

use clap::{Parser, Subcommand};
use mpno::backend::roofline;
use mpno::basis;
use mpno::bounds;
use mpno::cli::{self, UsageError};
use mpno::error::{self, SweepConfig};
use mpno::experiments;
use mpno::fft::Algorithm;
use mpno::functions::{self, FunctionOptions};
use mpno::pde;
use mpno::precision::{Format, Model};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Mixed-precision neural operators: discretization error vs floating-point precision error of
/// spectral transforms, with the bounds of Tu et al. (ICLR 2024) beside every measurement.
#[derive(Parser)]
#[command(name = "mpno", version, about, long_about = None, args_override_self = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Measure discretization and precision errors of Fourier coefficients beside their bounds.
    ///
    /// For each grid size s, samples the function on x_j = j/s in [0,1)^d, computes the
    /// normalised DFT in f64, and writes one row per (s, mode, kind, format, model):
    /// discretization = |continuous coefficient - f64 DFT|, precision = |DFT under the precision
    /// model - f64 DFT|, each with its bound (docs/bounds.md). Models: input (I: inputs rounded),
    /// storage (II: every stage's output rounded), arithmetic (III: every operation rounded),
    /// arithmetic-scaled (III with 1/2 per radix-2 stage, the overflow remedy), gemm (G: the DFT
    /// as a matrix product, operands and cos/sin table in the format, fp32 accumulation).
    Errors(ErrorsArgs),
    /// Print the bounds for given constants: discretization (upper and lower) and precision per format.
    Bounds(BoundsArgs),
    /// List the floating-point formats and their constants.
    Formats,
    /// List the built-in test functions (any other --function is parsed as an expression).
    Functions,
    /// List the wavelets (haar, db2..db10) with the constants their bounds take: filter gain
    /// sum|h| and the certified upper bounds on int|phi|, C0 = int|t||phi|, C1 = int|t-mu_1||phi|
    /// and ||psi||_inf (docs/bounds.md, "Daubechies wavelets"; a few seconds for all of them).
    Wavelets,
    /// Regenerate every result of experiments/*.toml into figures/ (small scale on a CPU).
    Reproduce(ReproduceArgs),
    /// Run one experiment of experiments/NAME.toml.
    Figure {
        /// Experiment name (file stem in experiments/).
        name: String,
        #[command(flatten)]
        dirs: DirArgs,
    },
    /// Generate PDE data sets (Darcy, Navier-Stokes, Burgers) into safetensors files.
    ///
    /// Defaults are the FNO settings (Li et al. 2021); docs/datagen.md lists the tensors and
    /// shows how to open the files in Python.
    Datagen {
        #[command(subcommand)]
        equation: pde::datagen::DatagenCommand,
    },
    /// List the NVIDIA GPUs (name, compute capability, memory), or say why there are none.
    Devices {
        /// Then check the CUDA backend on GPU 0 in under a minute: libraries, a kernel and a
        /// reduction, an fp16 cuFFT transform, cuBLAS GEMMs and an fp16 training step, each
        /// against the CPU; prints the first failure and exits 1 (no GPU is a failure too).
        #[arg(long)]
        smoke: bool,
    },
    /// Train an FNO as a TOML config says (see experiments/fno_*.toml): per-epoch metrics
    /// (metrics.csv, metrics.json), checkpoints and the resolved config in train.out_dir.
    Train(TrainArgs),
    /// Evaluate a checkpoint on its config's test set(s): relative L2 and H1 per resolution.
    Eval(EvalArgs),
    /// Audit a trained FNO's spectral layers: precision error of each layer's forward transform
    /// (per format and model, vs f64, beside its proven bound) and discretization error (the
    /// coarse grid's coefficients vs the native grid's, beside the bound with L estimated from
    /// the activation), per sample and kept mode, and the output difference end to end. Writes
    /// audit.csv (the results-file contract + `sample`), audit_layers.csv (maxima per layer, s,
    /// format and model), audit_end_to_end.csv, audit.md and the figures audit.{svg,png},
    /// audit_ratio.{svg,png} into --out.
    Audit(AuditArgs),
    /// Time one FNO training step (forward, relative L2, backward, AdamW) on random data and
    /// print ms/step, samples/s, peak memory, and the step's bytes and flops against the copy
    /// bandwidth and GEMM rate measured in the same run (roofline), as JSON.
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
}

#[derive(Subcommand)]
enum BenchWhat {
    /// A 2-D FNO training step.
    Fno(BenchFnoArgs),
    /// Turn a scripts/gpu-run gpu_bench.json into a Markdown table and a figure: mpno beside
    /// neuraloperator per case (median step times), and issue 8's targets met or missed.
    Report(BenchReportArgs),
}

#[derive(clap::Args)]
struct BenchReportArgs {
    /// gpu_bench.json written by scripts/gpu-run.
    file: PathBuf,
    /// Folder for gpu_bench.md, gpu_bench.svg and gpu_bench.png.
    #[arg(long, default_value = ".")]
    out: PathBuf,
}

#[derive(clap::Args)]
struct BenchFnoArgs {
    /// cpu (the reference backend) or cuda.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Grid points per axis.
    #[arg(long, default_value_t = 64)]
    res: usize,
    #[arg(long, default_value_t = 16)]
    batch: usize,
    #[arg(long, default_value_t = 32)]
    width: usize,
    /// Modes per axis (original FNO convention: 2m kept on the first axis, m on the last).
    #[arg(long, default_value_t = 12)]
    modes: usize,
    #[arg(long, default_value_t = 4)]
    layers: usize,
    /// full, mixed, half, or FWD_FFT/CONTRACTION/INV_FFT/MLP formats (e.g. fp16/fp16/fp16/fp32);
    /// the three stages also take scaled fp8 formats ELEM@SCALING (ELEM e4m3, e5m2; SCALING
    /// tensor, channel, mx, mxK), the suffix ~sr (stochastic rounding) and, for tensor or
    /// channel scaling, ~dN (delayed scaling from the amax of the last N steps) and ~mN (a
    /// margin: scales 2^N larger), e.g. e4m3@tensor/e4m3@mx32~sr/e4m3@tensor~m1~d16/fp32.
    #[arg(long, default_value = "full")]
    policy: String,
    /// none, tanh, clip:C, ksigma:K, divide:C.
    #[arg(long, default_value = "tanh")]
    stabilizer: String,
    /// Timed steps after one warm-up step (the minimum is reported as ms_per_step, the median
    /// as ms_median_step).
    #[arg(long, default_value_t = 3)]
    steps: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Spectral weights: 0 for dense, else the CP rank (< 1: a fraction of the dense parameter
    /// count, as tltorch's TFNO; the paper's TFNO uses 0.05).
    #[arg(long, default_value_t = 0.0)]
    rank: f64,
    /// Recompute GELU outputs in the backward pass instead of keeping them (less memory, one
    /// extra GELU pass each; same results).
    #[arg(long)]
    recompute: bool,
    /// Spectral transform of every block: fft, or gemm (the kept modes as matrix products with
    /// a rounded cos/sin table and fp32 sums: any grid size in fp16/bf16, on the CPU emulated
    /// exactly, on the GPU as cuBLAS GEMMs).
    #[arg(long, default_value = "fft")]
    transform: String,
    /// How the spectral contraction forms complex products: standard (four real products) or
    /// gauss (three, with sums of operands rounded to the format)
    #[arg(long, default_value = "standard")]
    contraction: String,
    /// How CP weights (--rank > 0) meet the spectrum: auto (the order with fewer operations
    /// for this batch), memory (the smaller largest intermediate), expand (the dense weight)
    /// or factorized (factor by factor; CPU backend, fp32 contraction) [default: auto]
    #[arg(long)]
    cp_order: Option<String>,
}

/// Which backend a command runs on.
enum Device {
    Cpu,
    Cuda,
}

fn parse_device(d: &str) -> Result<Device, UsageError> {
    match d {
        "cpu" => Ok(Device::Cpu),
        "cuda" => Ok(Device::Cuda),
        d => Err(UsageError::new(
            "--device",
            format!("unknown device '{d}'; allowed: cpu, cuda"),
        )),
    }
}

/// The formats the CUDA backend must support for `policies`; scaled stages and stochastic
/// rounding are refused (they run on the CPU backend only).
#[cfg(feature = "cuda")]
fn cuda_formats(policies: &[mpno::fno::Policy]) -> Result<Vec<Format>, Failure> {
    let mut out = Vec::new();
    for p in policies {
        for s in p.stages() {
            if !s.is_plain() {
                return Err(UsageError::new(
                    "--device",
                    format!(
                        "stage format '{s}': scaled fp8 formats and stochastic rounding (~sr) \
                         run on the CPU backend only (--device cpu)"
                    ),
                )
                .into());
            }
            out.push(s.format);
        }
        out.push(p.mlp);
    }
    Ok(out)
}

/// Open GPU 0 after checking that every format the run uses is one the GPU computes in (a usage
/// error, exit 2, naming the format); no GPU or driver is a runtime error naming the cause.
#[cfg(feature = "cuda")]
fn open_cuda(formats: &[Format]) -> Result<mpno::backend::cuda::Cuda, Failure> {
    use mpno::backend::cuda::Cuda;
    Cuda::check_formats(formats).map_err(|e| UsageError::new("--device", e.to_string()))?;
    Cuda::new(0).map_err(|e| Failure::Runtime(anyhow::anyhow!("--device cuda: {e}")))
}

/// Run `f` on the CUDA backend, turning a device failure it raises (out of memory with the
/// requested and available bytes, a driver error) into a runtime error.
#[cfg(feature = "cuda")]
fn on_cuda<R>(f: impl FnOnce() -> Result<R, Failure>) -> Result<R, Failure> {
    mpno::backend::cuda::catch(f).map_err(|e| Failure::Runtime(anyhow::anyhow!("GPU: {e}")))?
}

#[derive(clap::Args)]
struct TrainArgs {
    /// Training config (TOML; sections [data], [model], [train], [precision]). Each spectral
    /// stage ([precision] fwd_fft, contraction, inv_fft) takes a format (fp32, fp16, e4m3, ...),
    /// a scaled fp8 format ELEM@SCALING (ELEM e4m3 or e5m2; SCALING tensor, channel, mx = mx32,
    /// mxK: power-of-two scales from the current amax, fp32 arithmetic between), either with the
    /// suffix ~sr for stochastic rounding seeded from train.seed (e.g. "e4m3@mx32~sr"), a tensor
    /// or channel scaling with ~dN for delayed scaling over N steps (e.g. "e4m3@tensor~d16")
    /// and ~mN for Transformer Engine's margin (scales 2^N larger, e.g. "e4m3@tensor~m1~d16").
    #[arg(long)]
    config: PathBuf,
    /// Continue from train.out_dir/checkpoint.safetensors (exact resume); refused when there is
    /// no checkpoint.
    #[arg(long)]
    resume: bool,
    /// Replace an earlier run in train.out_dir (its checkpoint, metrics and config are removed
    /// first); without it, a folder holding a run is refused.
    #[arg(long, conflicts_with = "resume")]
    force: bool,
    /// Override train.out_dir.
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Override train.epochs.
    #[arg(long)]
    epochs: Option<usize>,
    /// cpu (the reference backend: every format emulated exactly) or cuda (GPU 0: fp32, fp16
    /// and bf16 natively; fp8 and tf32 policies stay on the CPU).
    #[arg(long, default_value = "cpu")]
    device: String,
}

#[derive(clap::Args)]
struct EvalArgs {
    /// Checkpoint written by `mpno train`.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Config to take data and model from instead of the one stored in the checkpoint.
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(clap::Args)]
struct AuditArgs {
    /// Checkpoint written by `mpno train` (its stored config gives the model, the input tensor's
    /// name and the stabilizer).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Data file (`mpno datagen`) holding the checkpoint's input tensor; its native grid is the
    /// fine reference, and its last --samples samples are audited.
    #[arg(long)]
    data: PathBuf,
    /// Grid points per axis to audit below the native one: each must divide it (the coarse
    /// points are native points) and hold the kept modes [default: the training resolution].
    #[arg(long)]
    resolutions: Option<String>,
    /// Spectral layers (block indices from 0) [default: all].
    #[arg(long)]
    layers: Option<String>,
    /// Audit the last N samples of the data file.
    #[arg(long, default_value_t = 2)]
    samples: usize,
    /// Formats of the precision rows and the end-to-end runs.
    #[arg(long, default_value = "fp16,bf16")]
    formats: String,
    /// Precision models of the rows: input (I), storage (II), arithmetic (III), arithmetic-scaled,
    /// gemm (G).
    #[arg(long, default_value = "input,arithmetic")]
    models: String,
    /// Output folder.
    #[arg(long, default_value = "audit")]
    out: PathBuf,
    /// Also write activation.safetensors: the first layer's captured activation of the first
    /// sample at the coarsest resolution (`coarse`) and the native one (`fine`), in f64, for
    /// independent checks (scripts/audit_check.py).
    #[arg(long)]
    save_activation: bool,
}

#[derive(clap::Args)]
struct ErrorsArgs {
    /// Basis: fourier, haar, db1..db10 (periodic Daubechies wavelets), chebyshev (DCT-I on
    /// [-1,1]^d, tensor products of T_k; functions on [0,1]^d mapped by x = (t+1)/2), spherical (real SHT on nlat x 2 nlat;
    /// --function ylm:l=L,m=M, cap[:kappa=K], abscos or an expression in x, y, z, the point on the
    /// sphere). Sizes are points (fourier, wavelets: powers of two), N of N+1 Chebyshev points,
    /// or nlat.
    #[arg(long, default_value = "fourier")]
    basis: String,
    /// Built-in name (see `mpno functions`) or an expression in x, y, z such as "exp(sin(2*pi*x))*y".
    #[arg(long)]
    function: String,
    /// Dimension d of the domain [0,1)^d (1, 2 or 3; every basis but spherical).
    #[arg(long, default_value_t = 1)]
    dim: usize,
    /// Grid sizes s per axis: a list (16,32,100) and/or power-of-two ranges (2^4..2^12)
    /// [default: 2^4..2^12; spherical 2^3..2^7; chebyshev in 2-D 2^4..2^10, 3-D 2^3..2^6;
    /// wavelets in 2-D 2^3..2^9, 3-D 2^3..2^6].
    #[arg(long)]
    sizes: Option<String>,
    /// Modes w: integers (k means (k,...,k) in d dimensions) or per-axis a:b[:c]; wavelets j:k
    /// (level, shift; -1:0 the scaling coefficient), in d-D j:t:k1:..:kd (detail type t, bit
    /// a-1 set for the wavelet along axis a; -1:0:0:..:0 the scaling coefficient); spherical l:m
    /// [default: 0,3; wavelets -1:0,0:0,2:1 (2-D -1:0:0:0,0:3:0:0,2:1:1:2; 3-D
    /// -1:0:0:0:0,0:7:0:0:0,2:5:1:2:3); spherical 0:0,2:0,3:2].
    #[arg(long, allow_hyphen_values = true)]
    modes: Option<String>,
    /// Formats: fp64, fp32, tf32, bf16, fp16, e5m2, e4m3, e4m3sat; and (fourier, models input,
    /// storage and gemm) scaled fp8 formats ELEM@SCALING: ELEM e4m3 or e5m2, SCALING tensor (one
    /// power-of-two scale from the amax), channel or channel:AXIS (one per index along a grid
    /// axis; model input only), mx (OCP MX blocks of 32 along the last axis, E8M0 scale) or mxK
    /// (blocks of K), e.g. e4m3@tensor,e4m3@mx32,e5m2@channel; tensor and channel scalings take a
    /// margin ~mN (scales 2^N larger, e.g. e4m3@tensor~m2). Under storage every stage's output
    /// is quantized too, each line's real and imaginary parts as two tensors; under gemm the
    /// operands and the table are fp8 codes with scales (MX blocks along K), code products summed
    /// in fp32; models arithmetic and arithmetic-scaled skip scaled formats.
    #[arg(long, default_value = "fp32,bf16,fp16,e5m2,e4m3")]
    formats: String,
    /// Precision models: input, storage, arithmetic, arithmetic-scaled, gemm (the DFT as a matrix
    /// product with fp32 accumulation; any size, O(s^2) per line; fourier and chebyshev only).
    #[arg(long, default_value = "input,storage,arithmetic")]
    models: String,
    /// FFT algorithm of --basis fourier for models II and III (gemm has its own; other bases: auto): auto (radix4 for powers of two, else bluestein),
    /// radix2, radix4, bluestein, naive.
    #[arg(long, default_value = "auto")]
    algorithm: String,
    /// Write the results CSV here (the results-file contract); without it, print a table.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Seed for random function families (e.g. random sines).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Lipschitz constant of an expression, taken as given (otherwise certified by interval
    /// arithmetic; see `mpno functions`).
    #[arg(long)]
    lipschitz: Option<f64>,
    /// Sup norm of an expression, taken as given (otherwise certified).
    #[arg(long)]
    sup: Option<f64>,
}

#[derive(clap::Args)]
struct BoundsArgs {
    /// Lipschitz constant L.
    #[arg(long)]
    lipschitz: f64,
    /// Sup norm M.
    #[arg(long)]
    sup: f64,
    /// Grid size s per axis (an integer or a power such as 2^10, as --sizes of `errors`).
    #[arg(long)]
    s: String,
    /// Dimension d.
    #[arg(long, default_value_t = 1)]
    dim: usize,
    /// Mode w.
    #[arg(long, default_value = "0", allow_hyphen_values = true)]
    mode: String,
    /// Formats.
    #[arg(long, default_value = "fp32,tf32,bf16,fp16,e5m2,e4m3")]
    formats: String,
    /// FFT algorithm whose precision bound is printed, as `errors --algorithm` (auto: radix-4
    /// for powers of two, Bluestein otherwise): auto, radix2, radix4, bluestein, naive.
    #[arg(long, default_value = "auto")]
    algorithm: String,
}

#[derive(clap::Args, Clone)]
struct DirArgs {
    /// Folder of experiment files.
    #[arg(long, default_value = "experiments")]
    experiments: PathBuf,
    /// Folder results are written to.
    #[arg(long, default_value = "figures")]
    figures: PathBuf,
}

#[derive(clap::Args)]
struct ReproduceArgs {
    #[command(flatten)]
    dirs: DirArgs,
    /// Leave out the FNO training experiments (kind = "training", about 15 minutes on 2 cores);
    /// the others take seconds.
    #[arg(long)]
    skip_training: bool,
}

fn main() -> ExitCode {
    // Output piped into `head` and the like: end quietly when the reader goes away (the default
    // action of SIGPIPE), as Unix tools do, instead of panicking on the failed print.
    #[cfg(unix)]
    // SAFETY: called first thing, before any thread starts; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    mpno::backend::cpu::keep_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Errors(a) => run_errors(a),
        Command::Bounds(a) => run_bounds(a),
        Command::Formats => {
            print_formats();
            Ok(())
        }
        Command::Functions => {
            for (name, desc) in functions::builtins() {
                println!("{name:<24} {desc}");
            }
            println!(
                "\nAny other value is an expression in x (y, z for --dim 2, 3), e.g. \"exp(-x^2)*sin(2*pi*y)\":\n\
                 + - * / ^ (or **, right-associative; -x^2 is -(x^2)), numbers like 1e-3, constants pi e tau,\n\
                 functions exp log ln sqrt sin cos tan asin acos atan sinh cosh tanh abs sign, min(a,b) max(a,b) pow(a,b).\n\
                 Coefficients by adaptive quadrature that checks it resolved the function; L and M certified by\n\
                 interval arithmetic (a pole or a domain error is refused) unless --lipschitz / --sup are given.\n\n\
                 With --basis spherical: ylm:l=L,m=M (one real harmonic), cap[:kappa=K] (exp(-K (1 - cos theta))),\n\
                 abscos (|cos theta|), or an expression in x, y, z, the point on the unit sphere, e.g. \"exp(x)*sin(3*y) + z^2\"\n\
                 (L and M certified on the cube [-1,1]^3 around it; coefficients by the SHT on a 4x finer grid with its bound)."
            );
            Ok(())
        }
        Command::Wavelets => print_wavelets().map_err(Failure::from),
        Command::Reproduce(a) => {
            experiments::reproduce(&a.dirs.experiments, &a.dirs.figures, a.skip_training)
                .map_err(Failure::from)
        }
        Command::Figure { name, dirs } => {
            experiments::run_named(&name, &dirs.experiments, &dirs.figures).map_err(Failure::from)
        }
        Command::Datagen { equation } => run_datagen(&equation),
        Command::Devices { smoke } => {
            print_devices();
            if smoke { run_smoke() } else { Ok(()) }
        }
        Command::Train(a) => run_train(a),
        Command::Eval(a) => run_eval(a),
        Command::Audit(a) => run_audit(a),
        Command::Bench {
            what: BenchWhat::Fno(a),
        } => run_bench_fno(a),
        Command::Bench {
            what: BenchWhat::Report(a),
        } => run_bench_report(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Bad input (exit 2) or a failure while running (exit 1).
enum Failure {
    Usage(UsageError),
    Runtime(anyhow::Error),
}

impl From<UsageError> for Failure {
    fn from(e: UsageError) -> Self {
        Failure::Usage(e)
    }
}

/// A failure that carries a [`UsageError`] in its chain (bad input found while loading, e.g. a
/// truncated data file, a non-finite weight, an output path that is a device) is bad input.
impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        let mut outer = Vec::new();
        for c in e.chain() {
            if let Some(u) = c.downcast_ref::<UsageError>() {
                outer.push(u.message.clone());
                return Failure::Usage(UsageError::new(&u.field, outer.join(": ")));
            }
            outer.push(c.to_string());
        }
        Failure::Runtime(e)
    }
}

impl From<experiments::ExperimentError> for Failure {
    fn from(e: experiments::ExperimentError) -> Self {
        match e {
            experiments::ExperimentError::Usage(u) => Failure::Usage(u),
            experiments::ExperimentError::Runtime(r) => Failure::from(r),
        }
    }
}

fn basis_usage(e: basis::BasisError) -> Failure {
    match e {
        basis::BasisError::Usage { field, message } => {
            Failure::Usage(UsageError::new(&field, message))
        }
        other => Failure::Runtime(other.into()),
    }
}

fn run_errors(a: ErrorsArgs) -> Result<(), Failure> {
    let kind = basis::BasisKind::parse(&a.basis).map_err(basis_usage)?;
    if kind != basis::BasisKind::Fourier {
        return run_basis_errors(kind, a);
    }
    let dim = cli::check_dim(a.dim)?;
    let sizes = cli::parse_sizes(a.sizes.as_deref().unwrap_or("2^4..2^12"))?;
    let modes = cli::parse_modes(a.modes.as_deref().unwrap_or("0,3"), dim)?;
    let (formats, scaled) = cli::parse_format_list(&a.formats, dim)?;
    let models = cli::parse_models(&a.models)?;
    if let Some(message) = cli::scaled_without_model(&scaled, &models) {
        return Err(UsageError::new("--models", message).into());
    }
    let algorithm: Algorithm = a
        .algorithm
        .parse()
        .map_err(|e: String| UsageError::new("--algorithm", e))?;
    for (field, v) in [("--lipschitz", a.lipschitz), ("--sup", a.sup)] {
        if let Some(v) = v {
            cli::check_nonnegative(field, v)?;
        }
    }
    cli::check_sizes(
        &sizes,
        dim,
        algorithm,
        rayon::current_num_threads(),
        cli::available_memory(),
    )?;
    cli::check_sweep_work(
        "--sizes",
        &sizes,
        dim,
        algorithm,
        formats.len() + scaled.len(),
        &models,
        1,
    )?;
    check_out(a.out.as_deref())?;
    let f = interval_function(&a, dim)?;
    let cfg = SweepConfig {
        dim,
        sizes,
        modes,
        formats,
        scaled,
        models,
        algorithm,
        progress: std::io::stderr().is_terminal(),
    };
    let rows = error::run_sweep(f.as_ref(), &cfg).map_err(|e| match e {
        error::SweepError::NonFinite { .. } => Failure::Usage(UsageError::new(
            "--function",
            e.to_string().trim_start_matches("--function: ").to_string(),
        )),
        other => Failure::Runtime(other.into()),
    })?;
    write_rows(&rows, a.out)
}

/// The `--function` of `mpno errors` on \[0,1\]^dim, with the user's constants checked, and its
/// L and M (and how they were obtained) said on stderr.
fn interval_function(a: &ErrorsArgs, dim: usize) -> Result<Box<dyn functions::Function>, Failure> {
    let opts = FunctionOptions {
        lipschitz: a.lipschitz,
        sup: a.sup,
        seed: a.seed,
    };
    let f = functions::parse(&a.function, dim, &opts)
        .map_err(|e| UsageError::new("--function", e.to_string()))?;
    check_constants_taken(a.lipschitz, a.sup, &*f)?;
    eprintln!(
        "{}: L = {:e}, M = {:e}, {}",
        f.name(),
        f.lipschitz(),
        f.sup(),
        f.constants_source()
    );
    Ok(f)
}

/// `mpno errors` for the bases other than Fourier (src/basis).
fn run_basis_errors(kind: basis::BasisKind, a: ErrorsArgs) -> Result<(), Failure> {
    use basis::sweep::{self, Target};
    let dim = cli::check_dim(a.dim)?;
    if dim != 1 && kind == basis::BasisKind::Spherical {
        return Err(UsageError::new(
            "--dim",
            "--basis spherical is on the sphere (planned by nlat alone): leave --dim at 1; \
             fourier, chebyshev and the wavelets take --dim 2 or 3",
        )
        .into());
    }
    let sizes = cli::parse_sizes(
        a.sizes
            .as_deref()
            .unwrap_or(sweep::default_sizes(&kind, dim)),
    )?;
    let mode_list = a
        .modes
        .as_deref()
        .unwrap_or(sweep::default_modes(&kind, dim));
    let modes = if dim > 1 && kind == basis::BasisKind::Chebyshev {
        // k means (k, ..., k), as for Fourier.
        cli::parse_modes(mode_list, dim)?
    } else {
        sweep::parse_modes(mode_list).map_err(basis_usage)?
    };
    let formats = cli::parse_formats(&a.formats)?;
    let models = cli::parse_models(&a.models)?;
    for (field, v) in [("--lipschitz", a.lipschitz), ("--sup", a.sup)] {
        if let Some(v) = v {
            cli::check_nonnegative(field, v)?;
        }
    }
    if kind != basis::BasisKind::Spherical && sizes.iter().any(|&s| s > 1 << 22) {
        return Err(UsageError::new("--sizes", "sizes above 2^22 are not supported").into());
    }
    // Sizes and modes are checked before any work (the SHT plan is costly).
    sweep::validate(&kind, &sizes, &modes, dim, 1024).map_err(basis_usage)?;
    // The SHT's Legendre table (2 GiB at nlat = 1024) and the wavelets' fine projection are
    // allocated whole: refuse what does not fit rather than abort.
    sweep::check_memory(
        &kind,
        &sizes,
        dim,
        &models,
        formats.len(),
        cli::available_memory(),
    )
    .map_err(basis_usage)?;
    if a.algorithm != "auto" {
        return Err(UsageError::new(
            "--algorithm",
            format!(
                "'{}' applies to --basis fourier only; {} has its own transform (allowed here: auto)",
                a.algorithm,
                kind.name()
            ),
        )
        .into());
    }
    if kind == basis::BasisKind::Chebyshev {
        // DCT-I of N + 1 points per axis as an FFT of 2N per axis: the Fourier sweep's cost
        // model, so model G (O(N^2) per line) is refused where it would run for hours.
        let ext: Vec<usize> = sizes.iter().map(|&n| 2 * n).collect();
        cli::check_sweep_work(
            "--sizes",
            &ext,
            dim,
            Algorithm::Auto,
            formats.len(),
            &models,
            1,
        )?;
    }
    check_out(a.out.as_deref())?;
    let target = if kind == basis::BasisKind::Spherical {
        use basis::spherical::SphereFunction;
        let opts = FunctionOptions {
            lipschitz: a.lipschitz,
            sup: a.sup,
            seed: a.seed,
        };
        let f = SphereFunction::parse_with(&a.function, &opts)
            .map_err(|e| UsageError::new("--function", e))?;
        match &f {
            SphereFunction::Expr(e) => {
                use basis::DomainFunction;
                sweep::check_sphere_expression_memory(&sizes, cli::available_memory())
                    .map_err(basis_usage)?;
                eprintln!(
                    "{}: on the sphere L = {:e} (geodesic), M = {:e}, {}",
                    e.spec(),
                    f.lipschitz(),
                    f.sup(),
                    e.constants_source()
                );
            }
            _ => {
                if let Some(field) = given_constant(a.lipschitz, a.sup) {
                    return Err(UsageError::new(
                        field,
                        "applies to expressions; the sphere's built-ins (ylm, cap, abscos) have \
                         their own constants",
                    )
                    .into());
                }
            }
        }
        Target::Sphere(f)
    } else {
        Target::Interval(std::sync::Arc::from(interval_function(&a, dim)?))
    };
    let cfg = sweep::BasisSweepConfig {
        kind,
        sizes,
        modes,
        formats,
        models,
        progress: std::io::stderr().is_terminal(),
    };
    let rows = sweep::run(&target, &cfg).map_err(basis_usage)?;
    write_rows(&rows, a.out)
}

/// `--out`, when given, must be writable and not a device, FIFO, folder or link (checked before
/// any work).
/// The first of --lipschitz / --sup that was given, if any.
fn given_constant(lipschitz: Option<f64>, sup: Option<f64>) -> Option<&'static str> {
    match (lipschitz, sup) {
        (Some(_), _) => Some("--lipschitz"),
        (None, Some(_)) => Some("--sup"),
        (None, None) => None,
    }
}

/// --lipschitz and --sup replace the certified constants of an expression; a built-in keeps its
/// own (exact or proven), so a value given for one would be silently ignored: refused instead.
fn check_constants_taken(
    lipschitz: Option<f64>,
    sup: Option<f64>,
    f: &dyn functions::Function,
) -> Result<(), UsageError> {
    match given_constant(lipschitz, sup) {
        Some(field) if f.constants_source().certified() => Err(UsageError::new(
            field,
            format!(
                "'{}' is a built-in with its own constants (L = {:e}, M = {:e}, {}); --lipschitz \
                 and --sup apply to expressions only (see `mpno functions`)",
                f.name(),
                f.lipschitz(),
                f.sup(),
                f.constants_source().tag()
            ),
        )),
        _ => Ok(()),
    }
}

fn check_out(out: Option<&std::path::Path>) -> Result<(), UsageError> {
    out.map_or(Ok(()), |p| cli::check_output_file("--out", p))
}

fn write_rows(rows: &[error::Row], out: Option<PathBuf>) -> Result<(), Failure> {
    match out {
        Some(path) => {
            cli::write_atomically(&path, |w| {
                error::write_csv(w, rows).map_err(anyhow::Error::from)
            })
            .map_err(Failure::from)?;
            eprintln!("wrote {} rows to {}", rows.len(), path.display());
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            error::write_table(&mut out, rows).map_err(|e| Failure::Runtime(e.into()))?;
            writeln!(out, "\ncrossover s* (bounds: where the discretization upper bound meets the precision bound; measured: where the measured errors meet)")
                .map_err(|e| Failure::Runtime(e.into()))?;
            let show = |e: &error::Estimate| match e.how {
                error::How::Interpolated | error::How::Extrapolated => {
                    format!("{:.3e} ({})", e.s, e.how)
                }
                error::How::AtOrBelowSmallest => format!("<= {}", e.s),
                error::How::Beyond => format!("> {} (beyond the tested sizes)", e.s),
                error::How::Undefined(_) => e.how.to_string(),
            };
            for c in error::crossovers(rows) {
                let mode = c
                    .mode
                    .iter()
                    .map(|k| k.to_string())
                    .collect::<Vec<_>>()
                    .join(":");
                writeln!(
                    out,
                    "  mode {mode:>6} {:<7} {:<17} s* from bounds {}   measured {}",
                    c.format_name(),
                    c.model.to_string(),
                    show(&c.bounds),
                    show(&c.measured)
                )
                .map_err(|e| Failure::Runtime(e.into()))?;
            }
        }
    }
    Ok(())
}

fn run_train(a: TrainArgs) -> Result<(), Failure> {
    let mut cfg = mpno::fno::config::TrainConfig::load(&a.config)?;
    if let Some(d) = a.out_dir {
        cfg.train.out_dir = d;
    }
    if let Some(e) = a.epochs {
        if e == 0 {
            return Err(UsageError::new("--epochs", "must be >= 1, got 0").into());
        }
        cfg.train.epochs = e;
    }
    let device = parse_device(&a.device)?;
    mpno::fno::train::check_memory(&cfg)?;
    mpno::fno::train::prepare_out_dir(&cfg, a.resume, a.force)?;
    let opts = mpno::fno::train::RunOptions {
        resume: a.resume,
        stop_after: None,
        progress: true,
    };
    let report = match device {
        Device::Cpu => {
            let be = mpno::backend::cpu::Cpu::<f32>::new();
            mpno::fno::train::run(&be, &cfg, &opts).map_err(Failure::from)?
        }
        #[cfg(feature = "cuda")]
        Device::Cuda => {
            let policies: Vec<mpno::fno::Policy> = (0..cfg.train.epochs)
                .map(|e| mpno::fno::train::policy_at(&cfg, e))
                .collect();
            let be = open_cuda(&cuda_formats(&policies)?)?;
            on_cuda(|| mpno::fno::train::run(&be, &cfg, &opts).map_err(Failure::from))?
        }
        #[cfg(not(feature = "cuda"))]
        Device::Cuda => {
            return Err(Failure::Runtime(anyhow::anyhow!(
                "--device cuda: {}",
                mpno::backend::cuda::CudaError::NotCompiled
            )));
        }
    };
    for r in &report.records {
        let tests: Vec<String> = r
            .test
            .iter()
            .map(|t| format!("L2@{} {:.4}", t.resolution, t.l2))
            .collect();
        let mut events = String::new();
        if r.skipped_steps > 0 {
            events.push_str(&format!("  {} steps skipped (inf/NaN)", r.skipped_steps));
        }
        if r.saturated_values > 0 {
            events.push_str(&format!("  {} values saturated", r.saturated_values));
        }
        println!(
            "epoch {:>3}  loss {:.5}  {}  {:.1} samples/s  peak {:.1} MB  [{}]{events}",
            r.epoch + 1,
            r.train_loss,
            tests.join("  "),
            r.samples_per_s,
            r.peak_memory_bytes as f64 / 1e6,
            r.policy
        );
    }
    println!(
        "{} parameters; metrics in {}",
        report.n_params,
        report.out_dir.join("metrics.csv").display()
    );
    if let Some((o, step)) = report.stopped {
        return Err(Failure::Runtime(anyhow::anyhow!(
            "stopped at step {step}: {o} (set precision.stabilizer or precision.on_overflow = \"skip\")"
        )));
    }
    // A loss is recorded only for steps that updated the weights: none means every step was
    // skipped, and the "trained" model is its initialisation.
    if report.records.iter().all(|r| r.train_loss.is_nan()) {
        let skipped: u64 = report.records.iter().map(|r| r.skipped_steps).sum();
        return Err(Failure::Runtime(anyhow::anyhow!(
            "every training step ({skipped}) overflowed and was skipped: the weights were never \
             updated (change the precision policy, precision.stabilizer or the loss scale)"
        )));
    }
    Ok(())
}

fn run_bench_fno(a: BenchFnoArgs) -> Result<(), Failure> {
    use mpno::fno::{Fno, FnoConfig, Policy};
    let formats =
        mpno::fno::config::Formats::parse(&a.policy).map_err(|e| UsageError::new("--policy", e))?;
    let stabilizer = mpno::fno::Stabilizer::parse(&a.stabilizer)
        .map_err(|e| UsageError::new("--stabilizer", e))?;
    for (field, v) in [
        ("--res", a.res),
        ("--batch", a.batch),
        ("--width", a.width),
        ("--layers", a.layers),
        ("--steps", a.steps),
    ] {
        if v == 0 {
            return Err(UsageError::new(field, "must be >= 1, got 0").into());
        }
    }
    if a.steps > MAX_BENCH_STEPS {
        return Err(UsageError::new(
            "--steps",
            format!(
                "{} timed steps; at most {MAX_BENCH_STEPS} (the minimum and median settle within a few)",
                a.steps
            ),
        )
        .into());
    }
    if a.modes == 0 || a.modes > a.res / 2 {
        return Err(UsageError::new(
            "--modes",
            format!("must be in 1..={} for --res {}", a.res / 2, a.res),
        )
        .into());
    }
    let device = parse_device(&a.device)?;
    if !(a.rank >= 0.0 && a.rank.is_finite()) {
        return Err(UsageError::new("--rank", format!("must be >= 0, got {}", a.rank)).into());
    }
    let cfg = FnoConfig {
        width: a.width,
        modes: vec![a.modes, a.modes],
        n_layers: a.layers,
        lifting_channels: 2 * a.width,
        projection_channels: 2 * a.width,
        factorization: if a.rank > 0.0 {
            mpno::fno::Factorization::Cp { rank: a.rank }
        } else {
            mpno::fno::Factorization::Dense
        },
        spectral_transform: vec![
            a.transform
                .parse()
                .map_err(|e: String| UsageError::new("--transform", e))?,
        ],
        contraction: a
            .contraction
            .parse()
            .map_err(|e: String| UsageError::new("--contraction", e))?,
        ..FnoConfig::darcy_small()
    };
    // The CPU roofline copies between two host buffers and multiplies one GEMM per thread
    // after the timed steps, while the model is still held.
    let roofline_bytes = match device {
        Device::Cpu => {
            let n = roofline::CPU_GEMM_N as f64;
            2.0 * roofline::HOST_COPY_BYTES as f64
                + 3.0 * n * n * 4.0 * rayon::current_num_threads() as f64
        }
        Device::Cuda => 0.0,
    };
    check_bench_memory(&cfg, a.batch, a.res, roofline_bytes)?;
    let mut model = Fno::new(cfg).map_err(|e| UsageError::new("model", e))?;
    model.recompute = a.recompute;
    if let Some(order) = &a.cp_order {
        if a.rank == 0.0 {
            return Err(UsageError::new(
                "--cp-order",
                "applies to CP weights only (--rank > 0); this model is dense (--rank 0)",
            )
            .into());
        }
        model.cp_order = order
            .parse()
            .map_err(|e: String| UsageError::new("--cp-order", e))?;
    }
    let policy = Policy {
        fwd_fft: formats.fwd_fft,
        contraction: formats.contraction,
        inv_fft: formats.inv_fft,
        mlp: formats.mlp,
        stabilizer,
        seed: a.seed,
    };
    let grid = [a.res, a.res];
    let step =
        |i: usize, o: mpno::fno::Overflow| Failure::Runtime(anyhow::anyhow!("step {i}: {o}"));
    let counted = |o: mpno::fno::Overflow| {
        Failure::Runtime(anyhow::anyhow!(
            "the counted (untimed) step for the roofline: {o}"
        ))
    };
    let (t, (count, limits, gemm), device_name, plan) = match device {
        Device::Cpu => {
            let be = mpno::backend::cpu::Cpu::<f32>::new();
            let t =
                mpno::fno::train::time_step(&be, &model, &policy, a.batch, &grid, a.steps, a.seed)
                    .map_err(|(i, o)| step(i, o))?;
            let c = mpno::fno::train::count_step(&be, &model, &policy, a.batch, &grid, a.seed)
                .map_err(counted)?;
            let gemm = roofline::GemmSize {
                n: roofline::CPU_GEMM_N,
                batch: rayon::current_num_threads(),
            };
            let limits = roofline::Limits {
                copy_bytes_per_s: roofline::host_copy_bandwidth(
                    roofline::HOST_COPY_BYTES,
                    roofline::REPS,
                ),
                gemm_flops_per_s: roofline::gemm_rate(&be, gemm, roofline::REPS),
            };
            let plan = model.cp_plan(&be, a.batch, &policy);
            (t, (c, limits, gemm), "cpu".to_string(), plan)
        }
        #[cfg(feature = "cuda")]
        Device::Cuda => {
            let be = open_cuda(&cuda_formats(&[policy])?)?;
            let name = be
                .gpu()
                .info()
                .map(|i| format!("cuda: {}", i.name))
                .unwrap_or_else(|_| "cuda".into());
            let (t, roof) = on_cuda(|| {
                let t = mpno::fno::train::time_step(
                    &be, &model, &policy, a.batch, &grid, a.steps, a.seed,
                )
                .map_err(|(i, o)| step(i, o))?;
                let c = mpno::fno::train::count_step(&be, &model, &policy, a.batch, &grid, a.seed)
                    .map_err(counted)?;
                let gemm = roofline::GPU_GEMM;
                let copy = be
                    .gpu()
                    .copy_bandwidth(roofline::GPU_COPY_BYTES, roofline::REPS)
                    .map_err(|e| {
                        Failure::Runtime(anyhow::anyhow!(
                            "measuring the GPU copy bandwidth (two {} MiB buffers): {e}",
                            roofline::GPU_COPY_BYTES >> 20
                        ))
                    })?;
                let limits = roofline::Limits {
                    copy_bytes_per_s: copy,
                    gemm_flops_per_s: roofline::gemm_rate(&be, gemm, roofline::REPS),
                };
                Ok((t, (c, limits, gemm)))
            })?;
            (t, roof, name, model.cp_plan(&be, a.batch, &policy))
        }
        #[cfg(not(feature = "cuda"))]
        Device::Cuda => {
            return Err(Failure::Runtime(anyhow::anyhow!(
                "--device cuda: {}",
                mpno::backend::cuda::CudaError::NotCompiled
            )));
        }
    };
    let (best, peak) = (t.best_seconds, t.peak_bytes);
    let mut json = serde_json::json!({
        "device": device_name,
        "rank": a.rank,
        "cp_order": model.cp_order.name(),
        "contraction": model.cfg.contraction.name(),
        "cp_plan": if a.rank > 0.0 { plan.name() } else { "dense" },
        "res": a.res,
        "batch": a.batch,
        "width": a.width,
        "modes": a.modes,
        "layers": a.layers,
        "policy": formats.to_string(),
        "stabilizer": a.stabilizer,
        "recompute": a.recompute,
        "parameters": t.n_params,
        "steps": a.steps,
        "ms_per_step": best * 1e3,
        "ms_median_step": t.median_seconds * 1e3,
        "samples_per_s": a.batch as f64 / best,
        "peak_memory_bytes": peak,
        "cpu_percent": 100.0 * t.cores_busy,
    });
    if let serde_json::Value::Object(m) = &mut json {
        m.extend(roofline_fields(&count, &limits, gemm, best));
    }
    println!("{}", serde_json::to_string_pretty(&json).expect("json"));
    Ok(())
}

/// The roofline fields of `mpno bench fno` (README, "bench fno"): what one step must move and
/// compute ([`mpno::backend::counting`]), the limits measured in the same run
/// ([`mpno::backend::roofline`]), and how far the fastest step (`best` seconds) is from them.
fn roofline_fields(
    count: &mpno::fno::train::StepCount,
    limits: &roofline::Limits,
    gemm: roofline::GemmSize,
    best: f64,
) -> serde_json::Map<String, serde_json::Value> {
    use mpno::backend::counting;
    let r = roofline::Roofline::of(&count.ops, limits);
    let total = counting::total(&count.ops);
    let ops: serde_json::Map<String, serde_json::Value> = counting::by_op(&count.ops)
        .into_iter()
        .map(|(op, (calls, c))| {
            let v = serde_json::json!({"calls": calls, "bytes": c.bytes(), "flops": c.flops});
            (op.to_string(), v)
        })
        .collect();
    let fields = serde_json::json!({
        "bytes_per_step": r.bytes,
        "bytes_read_per_step": total.bytes_read,
        "bytes_written_per_step": total.bytes_written,
        "bytes_allocated_per_step": count.allocated_bytes,
        "flops_per_step": r.flops,
        "ops_per_step": ops,
        "copy_gb_per_s": limits.copy_bytes_per_s / 1e9,
        "gemm_gflop_per_s": limits.gemm_flops_per_s / 1e9,
        "gemm_n": gemm.n,
        "gemm_batch": gemm.batch,
        "bandwidth_bound_ms": r.bandwidth_bound * 1e3,
        "compute_bound_ms": r.compute_bound * 1e3,
        "roofline_ms": r.limit * 1e3,
        "roofline_ratio": best / r.limit,
    });
    match fields {
        serde_json::Value::Object(m) => m,
        _ => unreachable!("json! of braces is an object"),
    }
}

/// The most timed steps `bench fno` takes.
const MAX_BENCH_STEPS: usize = 1000;

/// Refuse a benchmark whose training step, plus `extra` bytes held beside it (the roofline's
/// buffers), cannot fit in memory (estimated from the sizes before anything is allocated),
/// naming the option whose reduction helps most.
fn check_bench_memory(
    cfg: &mpno::fno::FnoConfig,
    batch: usize,
    res: usize,
    extra: f64,
) -> Result<(), UsageError> {
    use mpno::fno::{Factorization, budget};
    let rank = match cfg.factorization {
        Factorization::Cp { rank } => rank,
        Factorization::Dense => 0.0,
    };
    let fields = [
        ("--res", res as f64, 2.0),
        ("--batch", batch as f64, 1.0),
        ("--width", cfg.width as f64, 1.0),
        ("--modes", cfg.modes[0] as f64, 1.0),
        ("--layers", cfg.n_layers as f64, 1.0),
        ("--rank", rank, rank.min(1.0)),
    ];
    let estimate = |v: &[f64]| {
        let mut c = cfg.clone();
        c.width = v[2] as usize;
        c.lifting_channels = 2 * c.width;
        c.projection_channels = 2 * c.width;
        c.modes = vec![v[3] as usize; 2];
        c.n_layers = v[4] as usize;
        if v[5] > 0.0 {
            c.factorization = Factorization::Cp { rank: v[5] };
        }
        budget::step_bytes(&c, v[1], v[0]) + extra
    };
    cli::check_memory(
        cli::culprit(&fields, estimate),
        budget::step_bytes(cfg, batch as f64, res as f64) + extra,
        &format!(
            "a training step of this model ({:.3e} parameters) on a batch of {batch} at {res} x {res}, \
             and the roofline's buffers ({})",
            budget::param_count(cfg),
            cli::format_bytes(extra)
        ),
    )
}

fn run_bench_report(a: BenchReportArgs) -> Result<(), Failure> {
    let text = cli::read_input_to_string(&a.file)
        .map_err(|e| UsageError::new("FILE", format!("cannot read {}: {e}", a.file.display())))?;
    let report = experiments::gpu_report::GpuReport::from_json(&text)?;
    let md = a.out.join("gpu_bench.md");
    let files = ["gpu_bench.md", "gpu_bench.svg", "gpu_bench.png"].map(|f| a.out.join(f));
    cli::check_output_files("--out", &a.out, files.iter().map(PathBuf::as_path))?;
    cli::write_atomically(&md, |f| Ok(f.write_all(report.markdown().as_bytes())?))
        .map_err(Failure::from)?;
    let figs = mpno::plot::save(&report.figure(), &a.out.join("gpu_bench"), (1400, 800))
        .map_err(Failure::from)?;
    print!("{}", report.markdown());
    eprintln!(
        "wrote {}, {}",
        md.display(),
        figs.iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

fn run_eval(a: EvalArgs) -> Result<(), Failure> {
    cli::check_input("--checkpoint", &a.checkpoint)?;
    let cfg = match &a.config {
        Some(p) => Some(mpno::fno::config::TrainConfig::load(p)?),
        None => None,
    };
    let be = mpno::backend::cpu::Cpu::<f32>::new();
    let res = mpno::fno::train::eval_checkpoint(&be, &a.checkpoint, cfg.as_ref())
        .map_err(Failure::from)?;
    println!("resolution,l2,h1");
    for t in &res {
        println!("{},{},{}", t.resolution, t.l2, t.h1);
    }
    // A NaN metric is a result nobody should take for a number: the rows are printed, the
    // exit status says it failed.
    let failed: Vec<String> = res
        .iter()
        .filter(|t| !(t.l2.is_finite() && t.h1.is_finite()))
        .map(|t| t.resolution.to_string())
        .collect();
    if !failed.is_empty() {
        return Err(Failure::Runtime(anyhow::anyhow!(
            "the test error is not finite at {} points per axis (see the warning above)",
            failed.join(", ")
        )));
    }
    Ok(())
}

/// A comma-separated list of non-negative integers given as `field`.
fn parse_indices(field: &str, list: &str) -> Result<Vec<usize>, UsageError> {
    let out: Vec<usize> = cli::split_list(field, list)?
        .into_iter()
        .map(|t| {
            t.parse::<usize>()
                .map_err(|_| UsageError::new(field, format!("'{t}' is not a non-negative integer")))
        })
        .collect::<Result<_, _>>()?;
    if out.is_empty() {
        return Err(UsageError::new(field, "empty list"));
    }
    Ok(out)
}

fn run_audit(a: AuditArgs) -> Result<(), Failure> {
    let resolutions = match &a.resolutions {
        Some(r) => Some(
            cli::split_list("--resolutions", r)?
                .into_iter()
                .map(|t| cli::parse_positive("--resolutions", t))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        None => None,
    };
    let layers = match &a.layers {
        Some(l) => Some(parse_indices("--layers", l)?),
        None => None,
    };
    let formats = cli::parse_formats(&a.formats)?;
    if formats.contains(&Format::Fp64) {
        return Err(UsageError::new(
            "--formats",
            "fp64 is the reference the audit measures against (its rows would all be 0); \
             allowed: fp32, tf32, bf16, fp16, e5m2, e4m3, e4m3sat",
        )
        .into());
    }
    let req = mpno::audit::AuditRequest {
        checkpoint: a.checkpoint,
        data: a.data,
        resolutions,
        layers,
        samples: a.samples,
        formats,
        models: cli::parse_models(&a.models)?,
        out: a.out.clone(),
    };
    let files = mpno::audit::output_files(&a.out, a.save_activation);
    cli::check_output_files("--out", &a.out, files.iter().map(PathBuf::as_path))?;
    cli::check_not_inputs(
        "--out",
        files.iter().map(PathBuf::as_path),
        &[("--data", &req.data), ("--checkpoint", &req.checkpoint)],
    )?;
    let plan = mpno::audit::prepare(&req)?;
    if a.save_activation && plan.resolutions.len() < 2 {
        return Err(UsageError::new(
            "--save-activation",
            format!(
                "needs a resolution below the native {} (give --resolutions)",
                plan.native
            ),
        )
        .into());
    }
    let audit = mpno::audit::run(&plan).map_err(Failure::from)?;
    let written = mpno::audit::report::write_all(&plan, &audit, &a.out, a.save_activation)
        .map_err(Failure::from)?;
    print!("{}", mpno::audit::report::summary(&plan, &audit));
    eprintln!(
        "wrote {}",
        written
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let above = audit
        .rows
        .iter()
        .filter(|r| r.row.measured > r.row.bound || r.row.measured.is_nan())
        .count();
    if above > 0 {
        return Err(Failure::Runtime(anyhow::anyhow!(
            "{above} rows measured above their bound (see the note column of audit.csv)"
        )));
    }
    Ok(())
}

fn run_datagen(cmd: &pde::datagen::DatagenCommand) -> Result<(), Failure> {
    let job = pde::datagen::prepare(cmd)?;
    for line in pde::datagen::run(&job).map_err(Failure::from)? {
        println!("{line}");
    }
    Ok(())
}

fn run_bounds(a: BoundsArgs) -> Result<(), Failure> {
    let dim = cli::check_dim(a.dim)?;
    let s = cli::parse_positive("--s", &a.s)?;
    let modes = cli::parse_modes_of("--mode", &a.mode, dim)?;
    let formats = cli::parse_formats(&a.formats)?;
    let algorithm: Algorithm = a
        .algorithm
        .parse()
        .map_err(|e: String| UsageError::new("--algorithm", e))?;
    for (field, v) in [("--lipschitz", a.lipschitz), ("--sup", a.sup)] {
        cli::check_nonnegative(field, v)?;
    }
    if matches!(algorithm, Algorithm::Radix2 | Algorithm::Radix4) && !s.is_power_of_two() {
        return Err(UsageError::new(
            "--s",
            format!("{s} is not a power of two, which --algorithm {algorithm} requires"),
        )
        .into());
    }
    if algorithm.resolve(s) == Algorithm::Bluestein {
        // Bluestein's bound needs the chirp's spectrum: a transform of m >= 2s - 1 points,
        // computed for each format and model.
        let m = mpno::fft::bluestein_len(s as f64);
        cli::check_memory(
            "--s",
            48.0 * m,
            "Bluestein's chirp spectrum and its transform",
        )?;
        cli::check_work(
            "--s",
            (formats.len() * 9 * dim) as f64 * m * m.log2(),
            cli::SWEEP_WORK_LIMIT,
            "operations",
            &format!(
                "Bluestein's bound at s = {s} transforms its chirp (m = {m} points) for every format and model"
            ),
            "give a smaller --s, fewer --formats, or --algorithm naive",
        )?;
    }
    let shape = vec![s; dim];
    for w in &modes {
        println!(
            "mode {:?}: discretization upper {:.4e}, lower-bound construction {:.4e}",
            w,
            bounds::discretization_upper(a.lipschitz, a.sup, w, s),
            bounds::discretization_lower(a.lipschitz, a.sup, w, s)
        );
    }
    println!(
        "precision bounds of the {} transform of s = {s} (what `mpno errors --algorithm {}` writes for mean|v| = max|v| = M)",
        algorithm.resolve(s),
        algorithm
    );
    println!(
        "{:<8} {:<17} {:>12} {:>12} {:>12}",
        "format", "model", "bound", "prob(1e-3)", "s*(mode 0)"
    );
    for fmt in formats {
        for model in Model::ALL {
            let b = bounds::precision(&shape, algorithm, fmt, model, a.sup, a.sup);
            let s_star = bounds::crossover(a.lipschitz, a.sup, &vec![0; dim], b.bound);
            // No crossover when no precision bound applies (infinite) or none is needed (0).
            let s_star = if b.bound.is_finite() && s_star.is_finite() && s_star > 0.0 {
                format!("{s_star:.4e}")
            } else {
                "none".to_string()
            };
            println!(
                "{:<8} {:<17} {:>12.4e} {:>12.4e} {:>12} {}",
                fmt.to_string(),
                model.to_string(),
                b.bound,
                b.probabilistic,
                s_star,
                b.note
            );
        }
    }
    Ok(())
}

fn print_formats() {
    println!(
        "{:<8} {:>3} {:>5} {:>11} {:>12} {:>12} {:>12}  overflow",
        "format", "p", "bits", "u", "max", "min normal", "min subnorm"
    );
    for f in Format::ALL {
        println!(
            "{:<8} {:>3} {:>5} {:>11.4e} {:>12.5e} {:>12.5e} {:>12.5e}  {:?}",
            f.name(),
            f.precision(),
            f.bits(),
            f.unit_roundoff(),
            f.max_finite(),
            f.min_normal(),
            f.min_subnormal(),
            f.overflow()
        );
    }
}

/// `mpno wavelets`: one line per wavelet; Haar's constants are exact, db2..db10's certified
/// (basis::wavelet_constants), printed in full (the shortest decimal that reads back as the same
/// f64, so no digit is rounded below the bound).
fn print_wavelets() -> anyhow::Result<()> {
    use basis::wavelet::Wavelet;
    use rayon::prelude::*;
    println!(
        "{:<6} {:>4} {:>19} {:>8} {:>8} {:>8} {:>10} {:>19} {:>19} {:>19} {:>19} {:>19}",
        "name",
        "taps",
        "sum|h|",
        "proof r",
        "|h-h~|",
        "defect",
        "osc",
        "int|phi|",
        "C0",
        "C1",
        "||psi||_inf",
        "mu_1"
    );
    let rows: Vec<String> = Wavelet::all()
        .par_iter()
        .map(|w| {
            let s = w.shape();
            let (radius, osc) = if w.order() == 1 {
                ("exact".to_string(), "exact".to_string())
            } else if s.osc.is_finite() {
                (format!("{:.0e}", s.filter_radius), format!("{:.3e}", s.osc))
            } else {
                anyhow::bail!("{}: its constants could not be certified", w.name())
            };
            Ok(format!(
                "{:<6} {:>4} {:>19} {:>8} {:>8} {:>8} {:>10} {:>19} {:>19} {:>19} {:>19} {:>19}",
                w.name(),
                w.lowpass().len(),
                w.h1(),
                radius,
                round_up_2(s.table_distance),
                round_up_2(w.table_defect()),
                osc,
                s.abs_integral,
                s.c0,
                s.c1,
                s.psi_sup,
                s.mu1
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    for r in rows {
        println!("{r}");
    }
    println!(
        "\nUpper bounds proven in interval arithmetic for the exact dbN filter (enclosed by Krawczyk's \
         test within 'proof r' of the table); osc: how far phi may move within a 2^-16 cell.\n\
         The transforms run with the f64 table h~: |h-h~| bounds its distance from dbN tap by tap, \
         defect D >= ||L L^T - I||_2 for one periodic level L of the table (its norm is at most \
         sqrt(1 + D)); the bounds charge both."
    );
    Ok(())
}

/// `v` in two significant digits, rounded up (so a printed bound is still a bound), e.g. 1.1e-12.
fn round_up_2(v: f64) -> String {
    if !(v.is_finite() && v > 0.0) {
        return format!("{v:e}");
    }
    let mut e = v.log10().floor() as i32;
    // 10^e <= v < 10^(e+1), guarded against the logarithm's rounding.
    if 10f64.powi(e) > v {
        e -= 1;
    } else if 10f64.powi(e + 1) <= v {
        e += 1;
    }
    let mut m = (v / 10f64.powi(e) * 10.0).ceil() / 10.0;
    // The division's rounding may land a hair low: step up until the printed value is >= v.
    while format!("{m:.1}e{e}")
        .parse::<f64>()
        .unwrap_or(f64::INFINITY)
        < v
    {
        m += 0.1;
    }
    if m >= 10.0 {
        m /= 10.0;
        e += 1;
    }
    format!("{m:.1}e{e}")
}

/// `mpno devices --smoke`: start the CUDA backend on GPU 0 and run the smoke checks
/// (mpno::smoke), one line per check; the first failure is the verdict (exit 1).
fn run_smoke() -> Result<(), Failure> {
    use mpno::smoke::{Check, backend_checks, run_check};
    let t = std::time::Instant::now();
    let line = |i: usize, c: &Check| match &c.outcome {
        Ok(m) => println!("smoke {i}/5 {:<14} ok ({:.2} s): {m}", c.name, c.seconds),
        Err(e) => println!(
            "smoke {i}/5 {:<14} FAILED ({:.2} s): {e}",
            c.name, c.seconds
        ),
    };
    #[cfg(feature = "cuda")]
    let (start, be) = {
        let mut be = None;
        let c = run_check("backend start", || {
            let b = mpno::backend::cuda::Cuda::new(0).map_err(|e| e.to_string())?;
            let info = b.gpu().info().map_err(|e| e.to_string())?;
            be = Some(b);
            Ok(format!(
                "{} (compute capability {}.{}), cuBLAS, NVRTC and cuFFT loaded",
                info.name, info.compute_capability.0, info.compute_capability.1
            ))
        });
        (c, be)
    };
    #[cfg(not(feature = "cuda"))]
    let (start, be) = (
        run_check("backend start", || {
            Err(mpno::backend::cuda::CudaError::NotCompiled.to_string())
        }),
        None::<mpno::backend::cpu::Cpu<f32>>,
    );
    line(1, &start);
    let mut checks = vec![start];
    if let Some(be) = &be {
        let mut i = 1;
        // The device errors raised inside the checks are reported by them, not by the hook.
        let run = || {
            backend_checks(be, |c| {
                i += 1;
                line(i, c)
            })
        };
        #[cfg(feature = "cuda")]
        let ran = mpno::backend::cuda::catch(run).unwrap_or_default();
        #[cfg(not(feature = "cuda"))]
        let ran = run();
        checks.extend(ran);
    }
    let secs = t.elapsed().as_secs_f64();
    // What the loader picked (a toolkit of another CUDA version can shadow the intended one).
    for lib in mpno::backend::cuda::loaded_libraries() {
        println!("smoke: loaded {lib}");
    }
    match checks.iter().find(|c| c.outcome.is_err()) {
        None if checks.len() == 5 => {
            println!("smoke: PASS (5 checks, {secs:.1} s)");
            Ok(())
        }
        None => Err(Failure::Runtime(anyhow::anyhow!(
            "smoke: FAIL after {} of 5 checks ({secs:.1} s)",
            checks.len()
        ))),
        Some(c) => {
            let e = c.outcome.as_ref().err().cloned().unwrap_or_default();
            Err(Failure::Runtime(anyhow::anyhow!(
                "smoke: FAIL at {} ({secs:.1} s): {e}",
                c.name
            )))
        }
    }
}

fn print_devices() {
    use mpno::backend::cuda;
    match cuda::devices() {
        Ok(list) if list.is_empty() => println!("no CUDA device: the driver reports none"),
        Ok(list) => {
            for d in list {
                println!(
                    "cuda:{}  {}  compute capability {}.{}  memory {:.1} GiB ({:.1} GiB free)",
                    d.ordinal,
                    d.name,
                    d.compute_capability.0,
                    d.compute_capability.1,
                    d.total_bytes as f64 / (1u64 << 30) as f64,
                    d.free_bytes as f64 / (1u64 << 30) as f64
                );
            }
        }
        Err(e) => println!("no CUDA device: {e}"),
    }
}
