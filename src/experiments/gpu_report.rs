//! The GPU benchmark report: mpno beside neuraloperator from one `scripts/gpu-run` file.
//!
//! `scripts/gpu-run` writes `gpu_bench.json` with one entry per run: `mpno_<case>` (the JSON of
//! `mpno bench fno --device cuda`) and `neuralop` (`scripts/neuralop_anchor.py`, whose
//! `fno_ns128_batch<B>` map holds one entry per neuraloperator mode). [`GpuReport::from_json`]
//! pairs them case by case, compares medians of step times (the anchor script reports the
//! median, `mpno bench fno` both the minimum and the median), and checks the targets of
//! issue 8: full throughput >= 1.5x neuraloperator's full, half >= 2x neuraloperator's AMP + half,
//! half peak memory <= 0.6x mpno's full; and those of issue 24 (the GEMM spectral transform):
//! full >= 2x and half >= 3x neuraloperator's, half peak <= 0.5x neuraloperator's full, the
//! half step within 2x of its roofline limit (`roofline_ratio` of `mpno bench fno`), and fp16
//! steps on grids that are not powers of two. Nothing here is measured: it reads what the runs
//! wrote.

use crate::cli::UsageError;
use crate::plot::{BarsFigure, BarsPanel, LegendEntry, Marker, palette};
use serde_json::Value;
use std::fmt::Write as _;

/// One compared case: mpno's run and neuraloperator's counterpart.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    /// "dense full", "CP half", ...
    pub label: &'static str,
    /// Key in gpu_bench.json (`mpno_<key>`) and what mpno ran.
    pub mpno_key: &'static str,
    pub mpno_policy: &'static str,
    /// Key in neuraloperator's map and what it ran.
    pub neuralop_key: &'static str,
    /// Median ms per training step.
    pub mpno_ms: Option<f64>,
    /// mpno's fastest step over its roofline limit (bytes moved / measured copy bandwidth, or
    /// FLOPs / measured GEMM rate, whichever is larger): `roofline_ratio` of `mpno bench fno`.
    pub mpno_roofline: Option<f64>,
    pub neuralop_ms: Option<f64>,
    /// Peak device memory, MiB (mpno: bytes its allocator held at peak; neuraloperator: torch's
    /// max_memory_allocated).
    pub mpno_peak_mib: Option<f64>,
    pub neuralop_peak_mib: Option<f64>,
    /// Why a side has no number (its run's error text), if it has none.
    pub mpno_error: Option<String>,
    pub neuralop_error: Option<String>,
}

impl Case {
    /// Whether neuraloperator has a counterpart (not for grids its fp16 cuFFT refuses).
    pub fn has_counterpart(&self) -> bool {
        !self.neuralop_key.is_empty()
    }

    /// neuraloperator's step time over mpno's (> 1: mpno is faster).
    pub fn speedup(&self) -> Option<f64> {
        Some(self.neuralop_ms? / self.mpno_ms?)
    }
}

/// One acceptance target: `value` against `bound` (`at_least`: value >= bound, else <=).
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub name: String,
    pub value: Option<f64>,
    pub bound: f64,
    pub at_least: bool,
}

impl Target {
    /// Met, missed, or None when a run it needs is absent.
    pub fn met(&self) -> Option<bool> {
        self.value.map(|v| {
            if self.at_least {
                v >= self.bound
            } else {
                v <= self.bound
            }
        })
    }
}

/// One Darcy parity config (`scripts/gpu-run darcy`): the last epoch's test relative L2 per
/// resolution, trained on the GPU and on the CPU with the same seed, and on the CPU with other
/// seeds (the seed-to-seed spread that "within noise" is measured against).
#[derive(Clone, Debug, PartialEq)]
pub struct DarcyParity {
    /// "full", "fp16_tanh".
    pub config: String,
    /// (resolution, test L2) of each run; empty when the run is absent.
    pub cuda: Vec<(usize, f64)>,
    pub cpu: Vec<(usize, f64)>,
    /// The CPU runs with seeds 1, 2, ... (`darcy_<config>_cpu_seed<k>`), those present.
    pub cpu_seeds: Vec<Vec<(usize, f64)>>,
    /// Median seconds per epoch (training and test) of the GPU run and of CPU seed 0.
    pub cuda_epoch_s: Option<f64>,
    pub cpu_epoch_s: Option<f64>,
}

impl DarcyParity {
    /// Test L2 of a run at the lowest (training) resolution.
    fn at_train_res(run: &[(usize, f64)]) -> Option<f64> {
        run.iter().min_by_key(|(r, _)| *r).map(|(_, l)| *l)
    }

    /// |GPU - CPU seed 0| over the seed-to-seed spread (the range, max - min, of the CPU runs'
    /// test errors over all seeds), at the training resolution (<= 2: the GPU run is within
    /// the noise). Needs the GPU run, CPU seed 0 and at least one other seed.
    pub fn gap_over_noise(&self) -> Option<f64> {
        let (g, c) = (
            Self::at_train_res(&self.cuda)?,
            Self::at_train_res(&self.cpu)?,
        );
        let others: Vec<f64> = self
            .cpu_seeds
            .iter()
            .filter_map(|r| Self::at_train_res(r))
            .collect();
        if others.is_empty() {
            return None;
        }
        let all = others.iter().copied().chain([c]);
        let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        Some((g - c).abs() / (hi - lo).max(f64::MIN_POSITIVE))
    }
}

/// The report of one gpu_bench.json.
#[derive(Clone, Debug)]
pub struct GpuReport {
    pub gpu: String,
    pub batch: Option<u64>,
    /// The benchmark's model and grid as mpno's runs recorded them ("128 x 128, width 64, 4
    /// layers, modes 32"), or "?" parts where no run says.
    pub config: String,
    pub cases: Vec<Case>,
    pub darcy: Vec<DarcyParity>,
    pub targets: Vec<Target>,
}

/// The median of a metrics.json's per-epoch `seconds`.
fn median_epoch_seconds(v: Option<&Value>) -> Option<f64> {
    let mut s: Vec<f64> = v?
        .as_array()?
        .iter()
        .filter_map(|e| number(e, "seconds"))
        .collect();
    s.sort_by(f64::total_cmp);
    (!s.is_empty()).then(|| s[s.len() / 2])
}

/// The last record's (resolution, test L2) of a metrics.json (an array of epoch records).
fn last_test_l2(v: Option<&Value>) -> Vec<(usize, f64)> {
    v.and_then(Value::as_array)
        .and_then(|a| a.last())
        .and_then(|e| e.get("test"))
        .and_then(Value::as_array)
        .map(|t| {
            t.iter()
                .filter_map(|m| {
                    Some((
                        m.get("resolution")?.as_u64()? as usize,
                        m.get("l2")?.as_f64()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// (label, mpno key, mpno policy, neuraloperator key): scripts/gpu-run's runs and their
/// counterparts in neuralop_anchor.py ("recompute": `mpno bench fno --recompute`, GELU outputs
/// recomputed in the backward pass instead of kept; "gemm": `--transform gemm`, the spectral
/// transform as GEMMs with rounded cos/sin tables). An empty key: no counterpart (grids that
/// are not powers of two, which torch's fp16 cuFFT refuses).
const CASES: [(&str, &str, &str, &str); 12] = [
    ("dense full", "dense_full", "fp32", "dense/full"),
    (
        "dense mixed",
        "dense_mixed",
        "fp16 spectral + fp32 MLPs, tanh",
        "dense/amp+mixed+tanh",
    ),
    (
        "dense half",
        "dense_half",
        "fp16 all, tanh",
        "dense/amp+half",
    ),
    ("CP full", "cp_full", "fp32, CP rank 0.05", "cp/full"),
    (
        "CP half",
        "cp_half",
        "fp16 all, tanh, CP rank 0.05",
        "cp/amp+half",
    ),
    (
        "dense full recompute",
        "dense_full_rc",
        "fp32, GELU outputs recomputed",
        "dense/full",
    ),
    (
        "dense half recompute",
        "dense_half_rc",
        "fp16 all, tanh, GELU outputs recomputed",
        "dense/amp+half",
    ),
    (
        "dense half gauss",
        "dense_half_gauss",
        "fp16 all, tanh, Gauss's 3-product contraction",
        "dense/amp+half",
    ),
    (
        "dense full DFT-GEMM",
        "dense_full_gemm",
        "fp32, spectral transform as GEMM",
        "dense/full",
    ),
    (
        "dense half DFT-GEMM",
        "dense_half_gemm",
        "fp16 all, tanh, spectral transform as GEMM",
        "dense/amp+half",
    ),
    (
        "grid 100 half DFT-GEMM",
        "res100_half_gemm",
        "fp16 all, tanh, GEMM transform, 100 x 100 grid",
        "",
    ),
    (
        "grid 96 half DFT-GEMM",
        "res96_half_gemm",
        "fp16 all, tanh, GEMM transform, 96 x 96 grid",
        "",
    ),
];

/// A case's code in the figure: the initials of its label's words ("dense full recompute" ->
/// "DFR").
fn code(label: &str) -> String {
    label
        .split_whitespace()
        .filter_map(|w| w.chars().next())
        .map(|ch| ch.to_ascii_uppercase())
        .collect()
}

fn number(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64).filter(|x| x.is_finite())
}

/// Times and peaks are positive: a zero, negative or non-numeric one (a hand-edited or broken
/// file) would print "0.00", "-inf x" or NaN ratios; refuse the file naming the entry and key.
fn check_measurements(obj: &serde_json::Map<String, Value>) -> Result<(), UsageError> {
    let check = |entry: &str, v: &Value, keys: &[&str]| -> Result<(), UsageError> {
        for key in keys {
            let Some(x) = v.get(*key) else { continue };
            let ok = x.as_f64().is_some_and(|x| x.is_finite() && x > 0.0);
            if !ok {
                return Err(UsageError::new(
                    "FILE",
                    format!(
                        "entry '{entry}': {key} = {x} is not a positive number (times and peak \
                         memory are measured, > 0)"
                    ),
                ));
            }
        }
        Ok(())
    };
    for (k, v) in obj.iter().filter(|(k, _)| k.starts_with("mpno_")) {
        check(
            k,
            v,
            &[
                "ms_per_step",
                "ms_median_step",
                "peak_memory_bytes",
                "roofline_ratio",
            ],
        )?;
    }
    if let Some(nl) = obj.get("neuralop").and_then(Value::as_object) {
        for (bk, cases) in nl.iter().filter(|(k, _)| k.starts_with("fno_ns128_batch")) {
            for (ck, v) in cases.as_object().into_iter().flatten() {
                check(
                    &format!("neuralop.{bk}.{ck}"),
                    v,
                    &["ms_per_iter", "peak_alloc_MB"],
                )?;
            }
        }
    }
    Ok(())
}

fn error_text(v: Option<&Value>) -> Option<String> {
    match v {
        None => Some("not run".into()),
        Some(v) => v.get("error").map(|e| match e {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }),
    }
}

/// Issue 24's targets from the cases (`get` finds a case by its mpno key): mpno's faster
/// transform (cuFFT or GEMM) per precision against neuraloperator, the half run's peak against
/// neuraloperator's full one, the faster half run's distance to its roofline limit, and how many
/// of the two non-power-of-two grids ran in fp16.
fn issue24_targets<'a>(get: &impl Fn(&str) -> &'a Case) -> Vec<Target> {
    // The faster of two runs of one precision (each needs its time).
    let faster = |a: &str, b: &str| -> Option<&'a Case> {
        [get(a), get(b)]
            .into_iter()
            .filter(|c| c.mpno_ms.is_some())
            .min_by(|x, y| x.mpno_ms.partial_cmp(&y.mpno_ms).expect("finite"))
    };
    let (full, half) = (
        faster("dense_full", "dense_full_gemm"),
        faster("dense_half", "dense_half_gemm"),
    );
    let nl_full = get("dense_full");
    let grids = ["res100_half_gemm", "res96_half_gemm"];
    let ran = grids.iter().filter(|k| get(k).mpno_ms.is_some()).count();
    // Measured once either grid ran or failed (a run with a time has no error).
    let measured = grids
        .iter()
        .any(|k| get(k).mpno_error.as_deref() != Some("not run"));
    let target = |name: &str, value, bound, at_least| Target {
        name: format!("issue 24, {name}"),
        value,
        bound,
        at_least,
    };
    vec![
        target(
            "dense full: neuraloperator full ms / mpno's faster full ms (cuFFT or GEMM)",
            full.and_then(|c| Some(nl_full.neuralop_ms? / c.mpno_ms?)),
            2.0,
            true,
        ),
        target(
            "dense half: neuraloperator AMP+half ms / mpno's faster half ms (cuFFT or GEMM)",
            half.and_then(|c| Some(get("dense_half").neuralop_ms? / c.mpno_ms?)),
            3.0,
            true,
        ),
        target(
            "dense half: mpno's faster half run's peak / neuraloperator full peak",
            half.and_then(|c| Some(c.mpno_peak_mib? / nl_full.neuralop_peak_mib?)),
            0.5,
            false,
        ),
        target(
            "dense half: mpno's faster half step / its roofline limit",
            half.and_then(|c| c.mpno_roofline),
            2.0,
            false,
        ),
        target(
            "fp16 steps (GEMM transform) that ran on the 100 x 100 and 96 x 96 grids",
            measured.then_some(ran as f64),
            2.0,
            true,
        ),
    ]
}

impl GpuReport {
    /// Pair the runs of a gpu_bench.json. A file that is not JSON, or holds neither an mpno run
    /// nor neuraloperator's, is a usage error.
    pub fn from_json(text: &str) -> Result<GpuReport, UsageError> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| UsageError::new("FILE", format!("not JSON: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| UsageError::new("FILE", "expected a JSON object of runs"))?;
        let has_runs = obj
            .keys()
            .any(|k| k.starts_with("mpno_") || k.starts_with("darcy_"));
        let nl = obj.get("neuralop");
        if !has_runs && nl.is_none() {
            return Err(UsageError::new(
                "FILE",
                "no mpno_*, darcy_* or neuralop entry: not a scripts/gpu-run gpu_bench.json",
            ));
        }
        check_measurements(obj)?;
        // The anchor's FNO map is "fno_ns128_batch<B>".
        let (batch, nl_map) = nl
            .and_then(Value::as_object)
            .and_then(|m| {
                m.iter()
                    .find(|(k, _)| k.starts_with("fno_ns128_batch"))
                    .map(|(k, v)| (k["fno_ns128_batch".len()..].parse::<u64>().ok(), v))
            })
            .map_or((None, None), |(b, v)| (b, Some(v)));
        let mut gpu = nl
            .and_then(|n| n.get("gpu"))
            .and_then(Value::as_str)
            .map(str::to_string);
        // The anchor script's own error (it could not start: torch missing or without a GPU).
        let nl_failed = error_text(nl).filter(|_| nl.is_some());
        let cases: Vec<Case> = CASES
            .iter()
            .map(|&(label, key, policy, nl_key)| {
                let m = obj.get(&format!("mpno_{key}"));
                if gpu.is_none() {
                    gpu = m
                        .and_then(|m| m.get("device"))
                        .and_then(Value::as_str)
                        .map(str::to_string);
                }
                let n = nl_map
                    .filter(|_| !nl_key.is_empty())
                    .and_then(|n| n.get(nl_key));
                // Older mpno JSON has only the minimum ("ms_per_step").
                let mpno_ms = m
                    .and_then(|m| number(m, "ms_median_step").or_else(|| number(m, "ms_per_step")));
                Case {
                    label,
                    mpno_key: key,
                    mpno_policy: policy,
                    neuralop_key: nl_key,
                    mpno_ms,
                    mpno_roofline: m.and_then(|m| number(m, "roofline_ratio")),
                    neuralop_ms: n.and_then(|n| number(n, "ms_per_iter")),
                    mpno_peak_mib: m
                        .and_then(|m| number(m, "peak_memory_bytes"))
                        .map(|b| b / 1048576.0),
                    neuralop_peak_mib: n.and_then(|n| number(n, "peak_alloc_MB")),
                    mpno_error: if mpno_ms.is_some() {
                        None
                    } else {
                        error_text(m)
                    },
                    neuralop_error: if nl_key.is_empty()
                        || n.and_then(|n| number(n, "ms_per_iter")).is_some()
                    {
                        None
                    } else if n.is_none() && nl_failed.is_some() {
                        // The anchor script stopped before any FNO (no torch, no GPU).
                        nl_failed.clone()
                    } else {
                        error_text(n)
                    },
                }
            })
            .collect();
        let get = |key: &str| cases.iter().find(|c| c.mpno_key == key).expect("case");
        let mut targets = Vec::new();
        let peak_ratio = |what: &str, h: &Case, f: &Case| Target {
            name: format!("{what}: mpno half peak / mpno full peak"),
            value: h.mpno_peak_mib.zip(f.mpno_peak_mib).map(|(h, f)| h / f),
            bound: 0.6,
            at_least: false,
        };
        for (full, half, what) in [
            ("dense_full", "dense_half", "dense"),
            ("cp_full", "cp_half", "CP"),
        ] {
            let (f, h) = (get(full), get(half));
            targets.push(Target {
                name: format!("{what} full: neuraloperator full ms / mpno full ms"),
                value: f.speedup(),
                bound: 1.5,
                at_least: true,
            });
            targets.push(Target {
                name: format!("{what} half: neuraloperator AMP+half ms / mpno half ms"),
                value: h.speedup(),
                bound: 2.0,
                at_least: true,
            });
            targets.push(peak_ratio(what, h, f));
        }
        // Issue 8's memory target for the recomputing runs too; their speed is compared in the
        // table only.
        targets.push(peak_ratio(
            "dense recompute",
            get("dense_half_rc"),
            get("dense_full_rc"),
        ));
        // The mission's "leaner": mpno's peak against neuraloperator's in the same mode.
        for key in ["dense_full", "dense_half", "dense_full_rc", "dense_half_rc"] {
            let c = get(key);
            targets.push(Target {
                name: format!(
                    "{}: mpno peak / neuraloperator {} peak",
                    c.label, c.neuralop_key
                ),
                value: c.mpno_peak_mib.zip(c.neuralop_peak_mib).map(|(m, n)| m / n),
                bound: 1.0,
                at_least: false,
            });
        }
        targets.extend(issue24_targets(&get));
        let darcy: Vec<DarcyParity> = ["full", "fp16_tanh"]
            .iter()
            .map(|cfg| DarcyParity {
                config: cfg.to_string(),
                cuda: last_test_l2(obj.get(&format!("darcy_{cfg}_cuda"))),
                cpu: last_test_l2(obj.get(&format!("darcy_{cfg}_cpu"))),
                cpu_seeds: (1..=9)
                    .map(|k| last_test_l2(obj.get(&format!("darcy_{cfg}_cpu_seed{k}"))))
                    .filter(|r| !r.is_empty())
                    .collect(),
                cuda_epoch_s: median_epoch_seconds(obj.get(&format!("darcy_{cfg}_cuda"))),
                cpu_epoch_s: median_epoch_seconds(obj.get(&format!("darcy_{cfg}_cpu"))),
            })
            .filter(|d| !(d.cuda.is_empty() && d.cpu.is_empty() && d.cpu_seeds.is_empty()))
            .collect();
        for d in &darcy {
            targets.push(Target {
                name: format!(
                    "Darcy {}: abs(GPU - CPU seed 0) test L2 / CPU seed-to-seed range ({} seeds)",
                    d.config,
                    1 + d.cpu_seeds.len()
                ),
                value: d.gap_over_noise(),
                bound: 2.0,
                at_least: false,
            });
        }
        // The model and grid of the 128 x 128 runs as they recorded them (dense full first).
        let recorded = |key: &str| {
            CASES
                .iter()
                .filter(|c| !c.1.starts_with("res"))
                .find_map(|c| obj.get(&format!("mpno_{}", c.1))?.get(key)?.as_u64())
        };
        let q = |key: &str| recorded(key).map_or("?".into(), |v| v.to_string());
        let config = format!(
            "{res} x {res}, width {}, {} layers, modes {} (n_modes {})",
            q("width"),
            q("layers"),
            q("modes"),
            recorded("modes").map_or("?".into(), |m| format!("({0}, {0})", 2 * m)),
            res = q("res"),
        );
        let batch = batch.or_else(|| recorded("batch"));
        Ok(GpuReport {
            gpu: gpu.unwrap_or_else(|| "unknown GPU".into()),
            batch,
            config,
            cases,
            darcy,
            targets,
        })
    }

    /// A Markdown table of the cases and the targets.
    pub fn markdown(&self) -> String {
        let f = |v: Option<f64>, d: usize| v.map_or("-".to_string(), |v| format!("{v:.d$}"));
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# mpno vs neuraloperator 2.0.0 on {} (Navier-Stokes {}, batch {})\n",
            self.gpu,
            self.config,
            self.batch.map_or("?".into(), |b| b.to_string())
        );
        let _ = writeln!(
            s,
            "Median ms per training step (forward, loss, backward, Adam); peak device memory in \
             MiB; roofline: mpno's fastest step over its limit (bytes moved / measured copy \
             bandwidth or FLOPs / measured GEMM rate). Written by `mpno bench report` from one \
             scripts/gpu-run file.\n"
        );
        let _ = writeln!(
            s,
            "| case | mpno policy | mpno ms | mpno / roofline | neuraloperator mode | \
             neuraloperator ms | speedup | mpno peak MiB | neuraloperator peak MiB |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
        for c in &self.cases {
            let side = |v: Option<f64>, e: &Option<String>, d| match (v, e) {
                (Some(v), _) => format!("{v:.d$}"),
                (None, Some(e)) => format!("({})", e.chars().take(60).collect::<String>()),
                (None, None) => "-".into(),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                c.label,
                c.mpno_policy,
                side(c.mpno_ms, &c.mpno_error, 2),
                f(c.mpno_roofline, 1) + if c.mpno_roofline.is_some() { "x" } else { "" },
                if c.has_counterpart() {
                    c.neuralop_key
                } else {
                    "none (fp16 cuFFT refuses the grid)"
                },
                side(c.neuralop_ms, &c.neuralop_error, 2),
                f(c.speedup(), 2) + if c.speedup().is_some() { "x" } else { "" },
                f(c.mpno_peak_mib, 0),
                f(c.neuralop_peak_mib, 0),
            );
        }
        if !self.darcy.is_empty() {
            let _ = writeln!(
                s,
                "\nDarcy parity (`scripts/gpu-run darcy`): test relative L2 after the last \
                 epoch, configs/darcy_small_*.toml.\n"
            );
            let _ = writeln!(
                s,
                "| config | resolution | GPU seed 0 | CPU seed 0 | CPU seeds 1, 2, ... |"
            );
            let _ = writeln!(s, "|---|---|---|---|---|");
            for d in &self.darcy {
                let mut res: Vec<usize> = [&d.cuda, &d.cpu]
                    .into_iter()
                    .chain(&d.cpu_seeds)
                    .flat_map(|r| r.iter().map(|(r, _)| *r))
                    .collect();
                res.sort_unstable();
                res.dedup();
                for r in res {
                    let at = |run: &[(usize, f64)]| {
                        run.iter()
                            .find(|(q, _)| *q == r)
                            .map_or("-".into(), |(_, l)| format!("{l:.5}"))
                    };
                    let seeds: Vec<String> = d.cpu_seeds.iter().map(|run| at(run)).collect();
                    let _ = writeln!(
                        s,
                        "| {} | {r} | {} | {} | {} |",
                        d.config,
                        at(&d.cuda),
                        at(&d.cpu),
                        if seeds.is_empty() {
                            "-".to_string()
                        } else {
                            seeds.join(", ")
                        }
                    );
                }
            }
        }
        if self.darcy.iter().any(|d| d.cuda_epoch_s.is_some()) {
            let _ = writeln!(
                s,
                "\n| config | GPU s/epoch (median) | CPU seed 0 s/epoch (median, its machine) |"
            );
            let _ = writeln!(s, "|---|---|---|");
            for d in &self.darcy {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} |",
                    d.config,
                    f(d.cuda_epoch_s, 2),
                    f(d.cpu_epoch_s, 2)
                );
            }
        }
        let _ = writeln!(s, "\n| target | measured | required | result |");
        let _ = writeln!(s, "|---|---|---|---|");
        for t in &self.targets {
            let _ = writeln!(
                s,
                "| {} | {} | {} {} | {} |",
                t.name,
                f(t.value, 3),
                if t.at_least { ">=" } else { "<=" },
                t.bound,
                match t.met() {
                    Some(true) => "met",
                    Some(false) => "MISSED",
                    None => "not measured",
                }
            );
        }
        s
    }

    /// Bars per case and side (mpno blue, neuraloperator orange; short category codes that the
    /// legend spells out): median ms per step, samples/s and peak memory.
    pub fn figure(&self) -> BarsFigure {
        let mut categories = Vec::new();
        let mut colors = Vec::new();
        let (mut ms, mut tput, mut peak, mut missing) = (vec![], vec![], vec![], vec![]);
        // mpno's step over its roofline limit; neuraloperator's bars have none ("n/a").
        let (mut roof, mut roof_missing) = (vec![], vec![]);
        let batch = self.batch.unwrap_or(64) as f64;
        for c in &self.cases {
            let sides = if c.has_counterpart() { 2 } else { 1 };
            for (who, v, p, e, color) in [
                ("mp", c.mpno_ms, c.mpno_peak_mib, &c.mpno_error, palette(0)),
                (
                    "nl",
                    c.neuralop_ms,
                    c.neuralop_peak_mib,
                    &c.neuralop_error,
                    palette(1),
                ),
            ]
            .into_iter()
            .take(sides)
            {
                // The case's code under mpno's bar only: 22 bars leave no room for two labels
                // a pair; the colour says whose bar it is.
                categories.push(if who == "mp" {
                    code(c.label)
                } else {
                    String::new()
                });
                colors.push(color);
                ms.push(v);
                tput.push(v.map(|v| batch / (v / 1e3)));
                peak.push(p.map(|p| p / 1024.0));
                let why = match e.as_deref() {
                    Some("not run") | None => "not run",
                    Some(_) => "failed",
                };
                missing.push(why.to_string());
                if who == "mp" {
                    roof.push(c.mpno_roofline);
                    roof_missing.push(why.to_string());
                } else {
                    roof.push(None);
                    roof_missing.push("n/a".to_string());
                }
            }
        }
        let panel = |title: &str, y: &str, values: Vec<Option<f64>>, decimals| {
            BarsPanel::new(title, y, values, &missing, decimals)
        };
        let legend = vec![
            LegendEntry::new("mp: mpno", palette(0), Some(Marker::Square), None),
            LegendEntry::new(
                "nl: neuraloperator 2.0.0",
                palette(1),
                Some(Marker::Square),
                None,
            ),
        ];
        // Notes wrap (legend rows do not): the case codes, then how the targets fared (the
        // targets themselves, 21 of them, are the table of gpu_bench.md: here they would not fit).
        let mut notes: Vec<String> = self
            .cases
            .iter()
            .map(|c| {
                format!(
                    "{}: {}; mpno {}; {}.",
                    code(c.label),
                    c.label,
                    c.mpno_policy,
                    if c.has_counterpart() {
                        format!("nl {}", c.neuralop_key)
                    } else {
                        "no nl counterpart".into()
                    }
                )
            })
            .collect();
        let count = |m: Option<bool>| self.targets.iter().filter(|t| t.met() == m).count();
        notes.push(format!(
            "Targets (gpu_bench.md): {} met, {} missed, {} not measured.",
            count(Some(true)),
            count(Some(false)),
            count(None)
        ));
        BarsFigure {
            title: format!(
                "mpno vs neuraloperator 2.0.0, Navier-Stokes {}, batch {batch}, on {}",
                self.config, self.gpu
            ),
            categories,
            colors,
            panels: vec![
                panel("median time per training step", "ms", ms, 1),
                panel("throughput", "samples/s", tput, 0),
                panel("peak device memory", "GiB", peak, 2),
                BarsPanel::new(
                    "mpno step / roofline limit (bytes or FLOPs at measured rates)",
                    "x",
                    roof,
                    &roof_missing,
                    1,
                ),
            ],
            legend,
            notes,
            legend_width: 330,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> String {
        serde_json::json!({
            "mpno_dense_full": {"device": "GPU X", "ms_per_step": 19.0, "ms_median_step": 20.0,
                                "peak_memory_bytes": 4.0 * 1048576.0 * 1024.0,
                                "res": 128, "width": 64, "layers": 4, "modes": 32,
                                "batch": 64, "roofline_ratio": 3.5},
            "mpno_dense_half_gemm": {"ms_per_step": 9.0, "ms_median_step": 10.0,
                                     "peak_memory_bytes": 1.5 * 1048576.0 * 1024.0,
                                     "roofline_ratio": 1.75},
            "mpno_res100_half_gemm": {"ms_per_step": 6.0, "ms_median_step": 6.5},
            "mpno_res96_half_gemm": {"error": "out of GPU memory"},
            "mpno_dense_half": {"ms_per_step": 12.0, "ms_median_step": 12.5,
                                "peak_memory_bytes": 2.0 * 1048576.0 * 1024.0},
            "mpno_cp_full": {"ms_per_step": 70.0},
            "neuralop": {"gpu": "NVIDIA H200", "fno_ns128_batch64": {
                "dense/full": {"ms_per_iter": 54.0, "peak_alloc_MB": 8500.0},
                "dense/amp+half": {"ms_per_iter": 50.0, "peak_alloc_MB": 6600.0},
                "cp/full": {"ms_per_iter": 84.0},
                "cp/amp+half": {"error": "RuntimeError('boom')"}}}
        })
        .to_string()
    }

    #[test]
    fn pairs_runs_and_checks_the_targets() {
        let r = GpuReport::from_json(&sample()).unwrap();
        assert_eq!(r.gpu, "NVIDIA H200");
        assert_eq!(r.batch, Some(64));
        let full = &r.cases[0];
        // The median, not the minimum, against the anchor's median.
        assert_eq!(full.mpno_ms, Some(20.0));
        assert_eq!(full.speedup(), Some(54.0 / 20.0));
        assert_eq!(full.mpno_peak_mib, Some(4096.0));
        let t = |name: &str| r.targets.iter().find(|t| t.name.starts_with(name)).unwrap();
        assert_eq!(t("dense full").met(), Some(true));
        assert_eq!(t("dense half").value, Some(4.0)); // 50 / 12.5
        assert_eq!(t("dense: mpno half peak").value, Some(0.5));
        assert_eq!(t("dense: mpno half peak").met(), Some(true));
        // Peaks against neuraloperator's: 4096 / 8500 and 2048 / 6600 MiB; the recomputing
        // runs are absent.
        assert_eq!(t("dense full: mpno peak").value, Some(4096.0 / 8500.0));
        assert_eq!(t("dense half: mpno peak").met(), Some(true));
        assert_eq!(t("dense full recompute: mpno peak").met(), None);
        assert_eq!(t("dense recompute: mpno half peak").met(), None);
        // An older mpno file (minimum only) still pairs; 84 / 70 misses 1.5.
        assert_eq!(t("CP full").met(), Some(false));
        assert_eq!(t("CP half").met(), None);
        let cp_half = &r.cases[4];
        assert_eq!(cp_half.mpno_error.as_deref(), Some("not run"));
        assert_eq!(
            cp_half.neuralop_error.as_deref(),
            Some("RuntimeError('boom')")
        );
        let md = r.markdown();
        assert!(
            md.contains(
                "| dense full | fp32 | 20.00 | 3.5x | dense/full | 54.00 | 2.70x | 4096 | 8500 |"
            ),
            "{md}"
        );
        assert!(
            md.starts_with(
                "# mpno vs neuraloperator 2.0.0 on NVIDIA H200 (Navier-Stokes 128 x 128, width \
                 64, 4 layers, modes 32 (n_modes (64, 64)), batch 64)"
            ),
            "{md}"
        );
        // No neuraloperator counterpart on a grid its fp16 cuFFT refuses.
        assert!(
            md.contains("| grid 100 half DFT-GEMM | fp16 all, tanh, GEMM transform, 100 x 100 grid | 6.50 | - | none (fp16 cuFFT refuses the grid) | - | - | - | - |"),
            "{md}"
        );
        assert!(
            md.contains("96 x 96 grid | (out of GPU memory) | - |"),
            "{md}"
        );
        // Issue 24: the faster half run is the GEMM one (10 ms against 12.5 ms).
        assert_eq!(t("issue 24, dense half: neuraloperator").value, Some(5.0));
        assert_eq!(t("issue 24, dense half: neuraloperator").met(), Some(true));
        assert_eq!(t("issue 24, dense full").value, Some(54.0 / 20.0));
        assert_eq!(
            t("issue 24, dense half: mpno's faster half run's peak").value,
            Some(1536.0 / 8500.0)
        );
        assert_eq!(
            t("issue 24, dense half: mpno's faster half step / its roofline").value,
            Some(1.75)
        );
        // One of the two grids ran (96 x 96 failed).
        assert_eq!(t("issue 24, fp16 steps").value, Some(1.0));
        assert_eq!(t("issue 24, fp16 steps").met(), Some(false));
        assert!(
            md.contains(
                "| CP full: neuraloperator full ms / mpno full ms | 1.200 | >= 1.5 | MISSED |"
            ),
            "{md}"
        );
        assert!(md.contains("(RuntimeError('boom'))"), "{md}");
        let fig = r.figure();
        // 10 cases with both sides, 2 (the other grids) with mpno's only.
        assert_eq!(fig.categories.len(), 22);
        assert_eq!(fig.categories[18..], ["DHD", "", "G1HD", "G9HD"]);
        assert_eq!(fig.categories[14], "DHG");
        assert_eq!(fig.categories[10], "DFR");
        assert_eq!(fig.categories[..2], ["DF", ""]);
        assert_eq!(fig.categories[8], "CH");
        assert!(
            fig.notes
                .iter()
                .any(|n| n.starts_with("G1HD: ") && n.ends_with("no nl counterpart."))
        );
        assert!(
            fig.notes
                .last()
                .unwrap()
                .starts_with("Targets (gpu_bench.md): ")
        );
        // The roofline panel: mpno's ratio, none for neuraloperator.
        assert_eq!(fig.panels[3].values[..2], [Some(3.5), None]);
        assert_eq!(fig.panels[1].values[0], Some(64.0 / 0.020));
    }

    #[test]
    fn darcy_parity_is_measured_against_the_seed_spread() {
        let rec = |l2: [f64; 2]| {
            serde_json::json!([{"epoch": 0, "seconds": 3.0, "test": []}, {"epoch": 1, "seconds": 2.0, "test": [
                {"resolution": 32, "l2": l2[0], "h1": 0.1},
                {"resolution": 64, "l2": l2[1], "h1": 0.1}]}])
        };
        let text = serde_json::json!({
            "darcy_full_cuda": rec([0.0205, 0.03]),
            "darcy_full_cpu": rec([0.0200, 0.031]),
            "darcy_full_cpu_seed1": rec([0.0220, 0.032]),
            "darcy_full_cpu_seed2": rec([0.0190, 0.033]),
            "darcy_fp16_tanh_cuda": rec([0.05, 0.06]),
        })
        .to_string();
        let r = GpuReport::from_json(&text).unwrap();
        assert_eq!(r.darcy.len(), 2);
        let full = &r.darcy[0];
        assert_eq!(full.cpu, vec![(32, 0.0200), (64, 0.031)]);
        let g = full.gap_over_noise().unwrap();
        // 0.0005 over the range of 0.0200, 0.0220, 0.0190.
        assert!((g - 0.0005 / 0.003).abs() < 1e-9, "{g}");
        let t = |name: &str| r.targets.iter().find(|t| t.name.starts_with(name)).unwrap();
        assert_eq!(t("Darcy full").met(), Some(true));
        assert_eq!(t("Darcy fp16_tanh").met(), None);
        let md = r.markdown();
        assert!(
            md.contains("| full | 64 | 0.03000 | 0.03100 | 0.03200, 0.03300 |"),
            "{md}"
        );
        assert!(md.contains("| fp16_tanh | 32 | 0.05000 | - | - |"), "{md}");
        // Per-epoch time: the median of 3 s and 2 s (the upper one of two).
        assert_eq!(full.cuda_epoch_s, Some(3.0));
        assert!(md.contains("| full | 3.00 | 3.00 |"), "{md}");
        assert!(!md.contains("|GPU"), "a | inside a table cell: {md}");
    }

    /// The anchor script could not start (no torch): every neuraloperator side says why.
    #[test]
    fn an_anchor_that_could_not_start_is_reported_as_such() {
        let text = serde_json::json!({
            "mpno_dense_full": {"ms_per_step": 19.0, "ms_median_step": 20.0},
            "neuralop": {"error": "torch: ModuleNotFoundError: No module named 'torch'"}
        })
        .to_string();
        let r = GpuReport::from_json(&text).unwrap();
        assert_eq!(
            r.cases[0].neuralop_error.as_deref(),
            Some("torch: ModuleNotFoundError: No module named 'torch'")
        );
        assert!(
            r.markdown()
                .contains("| dense/full | (torch: ModuleNotFoundError")
        );
    }

    #[test]
    fn files_that_are_not_gpu_run_output_are_refused() {
        for (text, want) in [
            ("{", "not JSON"),
            ("[1, 2]", "expected a JSON object"),
            ("{\"other\": 1}", "no mpno_*, darcy_* or neuralop entry"),
        ] {
            let e = GpuReport::from_json(text).unwrap_err();
            assert!(e.to_string().contains(want), "{text}: {e}");
        }
    }
}
