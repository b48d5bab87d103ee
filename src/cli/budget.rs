//! Memory and time budgets checked before any work: a command estimates what its arguments will
//! cost and refuses (a usage error naming the field, the estimate and the limit) what cannot fit
//! in the memory available or would run for hours, instead of aborting on a failed allocation or
//! hanging with no output.

use super::UsageError;
use crate::fft::Algorithm;
use crate::precision::Model;

/// Bytes of memory still available, if known (Linux): the system's MemAvailable, lowered to
/// what this process may still map under its address-space limit (`ulimit -v`) and to what its
/// control group may still use (cgroup v2 memory.max).
pub fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    let mut avail = kb * 1024;
    if let Some(limit) = address_space_left() {
        avail = avail.min(limit);
    }
    if let Some(limit) = cgroup_left() {
        avail = avail.min(limit);
    }
    Some(avail)
}

/// The soft address-space limit minus what the process has mapped, if there is a limit.
fn address_space_left() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max address space"))?;
    let soft: u64 = line
        .trim_start_matches("Max address space")
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let vm_kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmSize:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(soft.saturating_sub(vm_kb * 1024))
}

/// memory.max minus memory.current of this process's cgroup (v2), if it has a limit.
fn cgroup_left() -> Option<u64> {
    let cg = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = cg.lines().find_map(|l| l.strip_prefix("0::"))?.trim();
    let dir = std::path::Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'));
    let read = |f: &str| -> Option<u64> {
        std::fs::read_to_string(dir.join(f))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    Some(read("memory.max")?.saturating_sub(read("memory.current").unwrap_or(0)))
}

/// The memory limit when the available memory is unknown: 1 TiB.
const UNKNOWN_LIMIT: f64 = (1u64 << 40) as f64;

/// `b` bytes for a message: "3.2 GiB", or "1.5e15 bytes" when huge.
pub fn format_bytes(b: f64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    if !b.is_finite() || b >= 1e6 * GIB {
        format!("{b:.2e} bytes")
    } else if b >= GIB / 10.0 {
        format!("{:.1} GiB", b / GIB)
    } else {
        format!("{:.1} MiB", b / (1u64 << 20) as f64)
    }
}

/// Refuse `what` when its estimated memory `need` (bytes; may be huge or infinite after an
/// overflow of the sizes) is more than `available` (None: unknown, 1 TiB allowed).
pub fn check_memory_with(
    field: &str,
    need: f64,
    what: &str,
    available: Option<u64>,
) -> Result<(), UsageError> {
    let limit = available.map_or(UNKNOWN_LIMIT, |a| a as f64);
    if need.is_finite() && need <= limit {
        return Ok(());
    }
    let have = match available {
        Some(a) => format_bytes(a as f64),
        None => format!("unknown, so limited to {}", format_bytes(UNKNOWN_LIMIT)),
    };
    Err(UsageError::new(
        field,
        format!(
            "{what} would take about {} of memory, more than is available ({have})",
            format_bytes(need)
        ),
    ))
}

/// [`check_memory_with`] against the memory available now.
pub fn check_memory(field: &str, need: f64, what: &str) -> Result<(), UsageError> {
    check_memory_with(field, need, what, available_memory())
}

/// Refuse `what` when its estimated work `need` (in `unit`s) is above `limit`; `hint` (if not
/// empty) says what to change.
pub fn check_work(
    field: &str,
    need: f64,
    limit: f64,
    unit: &str,
    what: &str,
    hint: &str,
) -> Result<(), UsageError> {
    if need.is_finite() && need <= limit {
        return Ok(());
    }
    let hint = if hint.is_empty() {
        String::new()
    } else {
        format!("; {hint}")
    };
    let limit = format_limit(limit);
    Err(UsageError::new(
        field,
        format!("{what}: about {need:.2e} {unit}, more than the limit of {limit} {unit}{hint}"),
    ))
}

/// A limit for messages: a round one as given (1e8), a computed one with three digits
/// (1.56e3).
pub fn format_limit(limit: f64) -> String {
    let short = format!("{limit:.0e}");
    if short.parse::<f64>() == Ok(limit) {
        short
    } else {
        format!("{limit:.2e}")
    }
}

/// The field to blame for an estimate that is too large: of `fields` (name, value, smallest
/// allowed value), the one whose reset to its smallest value lowers `estimate` the most.
/// `estimate` takes the values in the order of `fields`.
pub fn culprit<'a>(fields: &[(&'a str, f64, f64)], estimate: impl Fn(&[f64]) -> f64) -> &'a str {
    let values: Vec<f64> = fields.iter().map(|f| f.1).collect();
    let mut best = (fields[0].0, f64::INFINITY);
    for (i, f) in fields.iter().enumerate() {
        let mut v = values.clone();
        v[i] = f.2;
        let e = estimate(&v);
        // Compare logarithms: estimates may be huge; the smallest remaining estimate wins.
        let e = if e.is_nan() { f64::INFINITY } else { e };
        if e < best.1 {
            best = (f.0, e);
        }
    }
    best.0
}

/// Work (about one floating-point operation in f64, in nanoseconds on one core) of the error
/// sweep's transforms above which `errors` and the experiments refuse: 1e11 is a couple of
/// minutes on one core.
pub const SWEEP_WORK_LIMIT: f64 = 1e11;

/// Cost of an emulated operation (model III rounds every operation in software) relative to an
/// f64 one: measured 16 ns vs 1 ns per complex multiply-add (naive fp16 DFT of 4096 points).
pub const EMULATED: f64 = 16.0;

/// Nanoseconds of one complex multiply-add of the naive DFT in f64 (model II), relative to the
/// 1 ns unit of [`transform_work`]: its twiddle table (16 s bytes, read at j k mod s) leaves the
/// caches as s grows. Measured by `scripts/sweep_cost.sh` (bench/results/sweep_cost_cpu_2026-12-06.md):
/// 1.8 ns at s = 2^12 and 2^14, 2.0 at 2^16, 2.7 at 2^17; charged 2 up to 2^16, then 1.4x per
/// doubling. (The emulated model III costs [`EMULATED`] per operation: 13-14 ns measured.)
fn naive_f64_cost(s: f64) -> f64 {
    2.0 * 1.4f64.powf((s.log2() - 16.0).max(0.0))
}

/// Cost of a double-word operation of the f64 reference (`fft::reference_f64`) relative to an
/// f64 one, for lines of `s` points: measured on one core 9-12.5 ns per complex multiply-add for
/// lines up to 2^16 points (4095, 4096, 65535, 65536; 128^2, 255^2, 256^2, 64^3), 19 ns at 2^20
/// (the tables leave the caches): charged 13 up to 2^16, then 1.2x per doubling (27 at 2^20).
pub fn reference_cost(s: f64) -> f64 {
    13.0 * 1.2f64.powf((s.log2() - 16.0).max(0.0))
}

/// Bluestein's operations on a line of `s` points: two transforms of m = 2^ceil(log2(2s - 1))
/// points and 3 m products.
fn bluestein_ops(s: f64) -> f64 {
    let m = crate::fft::bluestein_len(s);
    2.0 * m * m.log2() + 3.0 * m
}

/// Work of one transform of `[s; dim]` under `model` with `alg`: complex multiply-adds per axis
/// (naive s^2, radix-2/4 s log2 s, Bluestein 2 m log2 m + 3 m with m the padded power of two),
/// times [`EMULATED`] for models III and [`naive_f64_cost`] for the naive DFT in f64. Model I
/// rounds the input and runs the f64 reference whatever the algorithm (radix 2 or Bluestein in
/// double words, [`reference_cost`] per operation).
pub fn transform_work(s: usize, dim: usize, alg: Algorithm, model: Model) -> f64 {
    let sf = s as f64;
    let lines = sf.powi(dim as i32 - 1);
    let per_line = match alg.resolve(s) {
        _ if s <= 1 => 1.0,
        // Model G is a dense product whatever the algorithm: s^2 per line, native f32.
        _ if model == Model::Gemm => sf * sf,
        _ if model == Model::Input && s.is_power_of_two() => sf * sf.log2() * reference_cost(sf),
        _ if model == Model::Input => bluestein_ops(sf) * reference_cost(sf),
        Algorithm::Naive if model == Model::Storage => sf * sf * naive_f64_cost(sf),
        Algorithm::Naive => sf * sf,
        Algorithm::Radix2 | Algorithm::Radix4 => sf * sf.log2(),
        _ => bluestein_ops(sf),
    };
    let factor = match model {
        Model::Arithmetic | Model::ArithmeticScaled => EMULATED,
        Model::Input | Model::Storage | Model::Gemm => 1.0,
    };
    dim as f64 * lines * per_line * factor
}

/// Refuse an error sweep (`repeats` transforms per size, format and model: 1, or the trials of
/// a statistics study) whose work is above [`SWEEP_WORK_LIMIT`], naming `field` (the sizes).
pub fn check_sweep_work(
    field: &str,
    sizes: &[usize],
    dim: usize,
    alg: Algorithm,
    formats: usize,
    models: &[Model],
    repeats: usize,
) -> Result<(), UsageError> {
    // Each repeat also computes the f64 reference once (model I's work).
    let per_size = |s: usize| -> f64 {
        (models
            .iter()
            .map(|&m| transform_work(s, dim, alg, m))
            .sum::<f64>()
            * formats as f64
            + transform_work(s, dim, alg, Model::Input))
            * repeats as f64
    };
    let total: f64 = sizes.iter().map(|&s| per_size(s)).sum();
    if total <= SWEEP_WORK_LIMIT {
        return Ok(());
    }
    let worst = sizes
        .iter()
        .copied()
        .max_by(|a, b| per_size(*a).total_cmp(&per_size(*b)))
        .unwrap_or(0);
    let how = match alg.resolve(worst) {
        _ if models.contains(&Model::Gemm) => {
            "model gemm is a dense product, s^2 per line, and a fast transform s log s"
        }
        Algorithm::Naive => "the naive DFT costs s^2 per axis",
        _ => "a fast transform costs s log s per axis",
    };
    let hint = if alg == Algorithm::Auto {
        "use smaller sizes, or fewer formats or models"
    } else {
        "use smaller sizes, --algorithm auto, or fewer formats or models"
    };
    check_work(
        field,
        total,
        SWEEP_WORK_LIMIT,
        "operations",
        &format!(
            "the transforms ({} formats x {} models, largest s = {worst} in dimension {dim}, \
             --algorithm {alg}: {how}, and model III rounds every operation in software, ~16x) \
             would take {:.0} s or more on one core",
            formats,
            models.len(),
            total * 1e-9
        ),
        hint,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_and_work_checks_name_the_field_estimate_and_limit() {
        let e = check_memory_with("--res", 3e12, "the arrays", Some(1 << 34)).unwrap_err();
        assert_eq!(e.field, "--res");
        assert!(
            e.message.contains("2794.0 GiB") && e.message.contains("16.0 GiB"),
            "{e}"
        );
        assert!(check_memory_with("--res", f64::INFINITY, "x", None).is_err());
        assert!(check_memory_with("--res", 1e6, "x", Some(1 << 30)).is_ok());
        let e = check_work("--t-final", 2e13, 1e8, "steps", "sample 0", "").unwrap_err();
        assert!(
            e.message.contains("2.00e13") && e.message.contains("1e8"),
            "{e}"
        );
    }

    #[test]
    fn culprit_is_the_field_whose_reset_helps_most() {
        let est = |v: &[f64]| v[0] * v[0] * v[1] + v[2];
        let f = [
            ("--width", 1e6, 1.0),
            ("--batch", 16.0, 1.0),
            ("--rank", 5.0, 0.0),
        ];
        assert_eq!(culprit(&f, est), "--width");
        let f = [
            ("--width", 2.0, 1.0),
            ("--batch", 16.0, 1.0),
            ("--rank", 1e12, 0.0),
        ];
        assert_eq!(culprit(&f, est), "--rank");
    }

    #[test]
    fn naive_storage_estimate_covers_the_measured_times() {
        // bench/results/sweep_cost_cpu_2026-12-06.md: user seconds of one fp16 run.
        for (s, seconds) in [
            (4096usize, 0.03),
            (16384, 0.46),
            (65536, 8.78),
            (131072, 46.87),
        ] {
            let est = transform_work(s, 1, Algorithm::Naive, Model::Storage) * 1e-9;
            assert!(
                est >= 0.95 * seconds && est <= 3.0 * seconds.max(0.1),
                "s = {s}: {est} s vs {seconds}"
            );
        }
        // Model I runs the f64 reference whatever the algorithm: a naive sweep of it is cheap.
        // (2^19 log2 2^19 double-word operations at reference_cost: about 0.22 s.)
        let input = transform_work(1 << 19, 1, Algorithm::Naive, Model::Input);
        assert!(input < 3e8, "{input}");
    }

    #[test]
    fn naive_arithmetic_at_2_17_is_refused_and_the_experiments_fit() {
        let all = [
            Model::Input,
            Model::Storage,
            Model::Arithmetic,
            Model::ArithmeticScaled,
        ];
        let e = check_sweep_work(
            "--sizes",
            &[1 << 17],
            1,
            Algorithm::Naive,
            5,
            &[Model::Arithmetic],
            1,
        )
        .unwrap_err();
        assert!(
            e.message.contains("131072") && e.message.contains("1e11"),
            "{e}"
        );
        // The largest sweeps of experiments/: 1-D 2^3..2^16 and 2-D up to 2^9, 3-D up to 2^6.
        let sizes: Vec<usize> = (3..=16).map(|k| 1 << k).collect();
        assert!(check_sweep_work("s", &sizes, 1, Algorithm::Auto, 5, &all, 1).is_ok());
        let sizes: Vec<usize> = (2..=9).map(|k| 1 << k).collect();
        assert!(check_sweep_work("s", &sizes, 2, Algorithm::Auto, 5, &all, 1).is_ok());
        // A naive DFT of 2^12 points in every format and model is quick and allowed.
        assert!(check_sweep_work("s", &[4096], 1, Algorithm::Naive, 5, &all, 1).is_ok());
    }
}
