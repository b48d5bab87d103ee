//! The GPU benchmark report: mpno beside neuraloperator from one `scripts/gpu-run` file.
//!
//! `scripts/gpu-run` writes `gpu_bench.json` with one entry per run: `mpno_<case>` (the JSON of
//! `mpno bench fno --device cuda`) and `neuralop` (`scripts/neuralop_anchor.py`, whose
//! `fno_ns128_batch<B>` map holds one entry per neuraloperator mode). [`GpuReport::from_json`]
//! pairs them case by case, compares medians of step times (the anchor script reports the
//! median, `mpno bench fno` both the minimum and the median), and checks the targets of
//! issue 8: full throughput >= 1.5x neuraloperator's full, half >= 2x neuraloperator's AMP + half,
//! half peak memory <= 0.6x mpno's full. Nothing here is measured: it reads what the runs wrote.

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
    /// neuraloperator's step time over mpno's (> 1: mpno is faster).
    pub fn speedup(&self) -> Option<f64> {
        Some(self.neuralop_ms? / self.mpno_ms?)
    }
}

/// One acceptance target: `value` against `bound` (`at_least`: value >= bound, else <=).
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub name: String,
    /// The same in the figure's case codes (e.g. "DF: nl ms / mp ms").
    pub short: String,
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
/// resolution, trained on the GPU and on the CPU with the same seed, and on the CPU with
/// another seed (the seed-to-seed spread that "within noise" is measured against).
#[derive(Clone, Debug, PartialEq)]
pub struct DarcyParity {
    /// "full", "fp16_tanh".
    pub config: String,
    /// (resolution, test L2) of each run; empty when the run is absent.
    pub cuda: Vec<(usize, f64)>,
    pub cpu: Vec<(usize, f64)>,
    pub cpu_seed1: Vec<(usize, f64)>,
}

impl DarcyParity {
    /// Test L2 of a run at the lowest (training) resolution.
    fn at_train_res(run: &[(usize, f64)]) -> Option<f64> {
        run.iter().min_by_key(|(r, _)| *r).map(|(_, l)| *l)
    }

    /// |GPU - CPU| over the seed-to-seed spread |CPU seed 1 - CPU seed 0|, at the training
    /// resolution (<= 2: the GPU run is within the noise).
    pub fn gap_over_noise(&self) -> Option<f64> {
        let (g, c, c1) = (
            Self::at_train_res(&self.cuda)?,
            Self::at_train_res(&self.cpu)?,
            Self::at_train_res(&self.cpu_seed1)?,
        );
        Some((g - c).abs() / (c1 - c).abs().max(f64::MIN_POSITIVE))
    }
}

/// The report of one gpu_bench.json.
#[derive(Clone, Debug)]
pub struct GpuReport {
    pub gpu: String,
    pub batch: Option<u64>,
    pub cases: Vec<Case>,
    pub darcy: Vec<DarcyParity>,
    pub targets: Vec<Target>,
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
/// recomputed in the backward pass instead of kept).
const CASES: [(&str, &str, &str, &str); 8] = [
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
            &["ms_per_step", "ms_median_step", "peak_memory_bytes"],
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
                let n = nl_map.and_then(|n| n.get(nl_key));
                // Older mpno JSON has only the minimum ("ms_per_step").
                let mpno_ms = m
                    .and_then(|m| number(m, "ms_median_step").or_else(|| number(m, "ms_per_step")));
                Case {
                    label,
                    mpno_key: key,
                    mpno_policy: policy,
                    neuralop_key: nl_key,
                    mpno_ms,
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
                    neuralop_error: if n.and_then(|n| number(n, "ms_per_iter")).is_some() {
                        None
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
            short: format!("{} / {}: mp peak", code(h.label), code(f.label)),
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
                short: format!("{}: nl ms / mp ms", code(f.label)),
                value: f.speedup(),
                bound: 1.5,
                at_least: true,
            });
            targets.push(Target {
                name: format!("{what} half: neuraloperator AMP+half ms / mpno half ms"),
                short: format!("{}: nl ms / mp ms", code(h.label)),
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
                short: format!("{}: mp peak / nl peak", code(c.label)),
                value: c.mpno_peak_mib.zip(c.neuralop_peak_mib).map(|(m, n)| m / n),
                bound: 1.0,
                at_least: false,
            });
        }
        let darcy: Vec<DarcyParity> = ["full", "fp16_tanh"]
            .iter()
            .map(|cfg| DarcyParity {
                config: cfg.to_string(),
                cuda: last_test_l2(obj.get(&format!("darcy_{cfg}_cuda"))),
                cpu: last_test_l2(obj.get(&format!("darcy_{cfg}_cpu"))),
                cpu_seed1: last_test_l2(obj.get(&format!("darcy_{cfg}_cpu_seed1"))),
            })
            .filter(|d| !(d.cuda.is_empty() && d.cpu.is_empty() && d.cpu_seed1.is_empty()))
            .collect();
        for d in &darcy {
            targets.push(Target {
                name: format!(
                    "Darcy {}: |GPU - CPU| test L2 / |CPU seed 1 - CPU seed 0|",
                    d.config
                ),
                short: format!("Darcy {}: |GPU - CPU| / seed spread", d.config),
                value: d.gap_over_noise(),
                bound: 2.0,
                at_least: false,
            });
        }
        Ok(GpuReport {
            gpu: gpu.unwrap_or_else(|| "unknown GPU".into()),
            batch,
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
            "# mpno vs neuraloperator 2.0.0 on {} (Navier-Stokes 128 x 128, batch {}, width 64, \
             4 layers, 64 x 64 modes)\n",
            self.gpu,
            self.batch.map_or("?".into(), |b| b.to_string())
        );
        let _ = writeln!(
            s,
            "Median ms per training step (forward, loss, backward, Adam); peak device memory in \
             MiB. Written by `mpno bench report` from one scripts/gpu-run file.\n"
        );
        let _ = writeln!(
            s,
            "| case | mpno policy | mpno ms | neuraloperator mode | neuraloperator ms | speedup | \
             mpno peak MiB | neuraloperator peak MiB |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
        for c in &self.cases {
            let side = |v: Option<f64>, e: &Option<String>, d| match (v, e) {
                (Some(v), _) => format!("{v:.d$}"),
                (None, Some(e)) => format!("({})", e.chars().take(60).collect::<String>()),
                (None, None) => "-".into(),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                c.label,
                c.mpno_policy,
                side(c.mpno_ms, &c.mpno_error, 2),
                c.neuralop_key,
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
                "| config | resolution | GPU seed 0 | CPU seed 0 | CPU seed 1 |"
            );
            let _ = writeln!(s, "|---|---|---|---|---|");
            for d in &self.darcy {
                let mut res: Vec<usize> = [&d.cuda, &d.cpu, &d.cpu_seed1]
                    .iter()
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
                    let _ = writeln!(
                        s,
                        "| {} | {r} | {} | {} | {} |",
                        d.config,
                        at(&d.cuda),
                        at(&d.cpu),
                        at(&d.cpu_seed1)
                    );
                }
            }
        }
        let _ = writeln!(s, "\n| target | measured | required | result |");
        let _ = writeln!(s, "|---|---|---|---|");
        for t in &self.targets {
            let _ = writeln!(
                s,
                "| {} | {} | {} {} | {} |",
                t.name,
                f(t.value, 2),
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
        let batch = self.batch.unwrap_or(64) as f64;
        for c in &self.cases {
            for (who, v, p, e, color) in [
                ("mp", c.mpno_ms, c.mpno_peak_mib, &c.mpno_error, palette(0)),
                (
                    "nl",
                    c.neuralop_ms,
                    c.neuralop_peak_mib,
                    &c.neuralop_error,
                    palette(1),
                ),
            ] {
                categories.push(format!("{who} {}", code(c.label)));
                colors.push(color);
                ms.push(v);
                tput.push(v.map(|v| batch / (v / 1e3)));
                peak.push(p.map(|p| p / 1024.0));
                missing.push(
                    match e.as_deref() {
                        Some("not run") | None => "not run",
                        Some(_) => "failed",
                    }
                    .to_string(),
                );
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
        // Notes wrap (legend rows do not): the case codes, then the targets.
        let cases = self.cases.iter().map(|c| {
            format!(
                "{}: {}; mpno {}; nl {}.",
                code(c.label),
                c.label,
                c.mpno_policy,
                c.neuralop_key
            )
        });
        let targets = self.targets.iter().map(|t| {
            format!(
                "{} = {} ({} {}: {})",
                t.short,
                t.value.map_or("-".into(), |v| format!("{v:.2}")),
                if t.at_least { ">=" } else { "<=" },
                t.bound,
                match t.met() {
                    Some(true) => "met",
                    Some(false) => "missed",
                    None => "not measured",
                }
            )
        });
        let notes = cases.chain(targets).collect();
        BarsFigure {
            title: format!(
                "mpno vs neuraloperator 2.0.0, Navier-Stokes 128 x 128, batch {batch}, on {}",
                self.gpu
            ),
            categories,
            colors,
            panels: vec![
                panel("median time per training step", "ms", ms, 1),
                panel("throughput", "samples/s", tput, 0),
                panel("peak device memory", "GiB", peak, 2),
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
                                "peak_memory_bytes": 4.0 * 1048576.0 * 1024.0},
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
            md.contains("| dense full | fp32 | 20.00 | dense/full | 54.00 | 2.70x | 4096 | 8500 |"),
            "{md}"
        );
        assert!(
            md.contains(
                "| CP full: neuraloperator full ms / mpno full ms | 1.20 | >= 1.5 | MISSED |"
            ),
            "{md}"
        );
        assert!(md.contains("(RuntimeError('boom'))"), "{md}");
        let fig = r.figure();
        assert_eq!(fig.categories.len(), 16);
        assert_eq!(fig.categories[14], "mp DHG");
        assert_eq!(fig.categories[10], "mp DFR");
        assert_eq!(fig.categories[..2], ["mp DF", "nl DF"]);
        assert_eq!(fig.categories[8], "mp CH");
        assert_eq!(fig.panels[1].values[0], Some(64.0 / 0.020));
    }

    #[test]
    fn darcy_parity_is_measured_against_the_seed_spread() {
        let rec = |l2: [f64; 2]| {
            serde_json::json!([{"epoch": 0, "test": []}, {"epoch": 1, "test": [
                {"resolution": 32, "l2": l2[0], "h1": 0.1},
                {"resolution": 64, "l2": l2[1], "h1": 0.1}]}])
        };
        let text = serde_json::json!({
            "darcy_full_cuda": rec([0.0205, 0.03]),
            "darcy_full_cpu": rec([0.0200, 0.031]),
            "darcy_full_cpu_seed1": rec([0.0220, 0.032]),
            "darcy_fp16_tanh_cuda": rec([0.05, 0.06]),
        })
        .to_string();
        let r = GpuReport::from_json(&text).unwrap();
        assert_eq!(r.darcy.len(), 2);
        let full = &r.darcy[0];
        assert_eq!(full.cpu, vec![(32, 0.0200), (64, 0.031)]);
        let g = full.gap_over_noise().unwrap();
        assert!((g - 0.25).abs() < 1e-9, "{g}"); // 0.0005 / 0.002
        let t = |name: &str| r.targets.iter().find(|t| t.name.starts_with(name)).unwrap();
        assert_eq!(t("Darcy full").met(), Some(true));
        assert_eq!(t("Darcy fp16_tanh").met(), None);
        let md = r.markdown();
        assert!(
            md.contains("| full | 64 | 0.03000 | 0.03100 | 0.03200 |"),
            "{md}"
        );
        assert!(md.contains("| fp16_tanh | 32 | 0.05000 | - | - |"), "{md}");
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
