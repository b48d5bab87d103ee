//! Precision-error statistics over all modes: for each transform size n, the largest and the
//! root-mean-square error over every coefficient, over several random inputs, beside the
//! worst-case bound, the RMS (Parseval) bound and the probabilistic bound.

use super::sweep::SweepError;
use crate::bounds;
use crate::fft::{self, Algorithm};
use crate::precision::{Format, Model};
use rayon::prelude::*;
use std::fmt;
use std::io::Write;

/// Which statistic over the n modes a row holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Statistic {
    /// max_w |e_w|, then the max over trials.
    Max,
    /// (n^-1 sum_w |e_w|^2)^(1/2), then the root-mean-square over trials.
    Rms,
}

impl fmt::Display for Statistic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Statistic::Max => "max",
            Statistic::Rms => "rms",
        })
    }
}

/// A statistics request (1-D transforms of size n per entry of `sizes`).
#[derive(Clone, Debug)]
pub struct StatsConfig {
    pub sizes: Vec<usize>,
    pub formats: Vec<Format>,
    pub models: Vec<Model>,
    pub algorithm: Algorithm,
    /// Independent inputs per size (trial t gets its own samples).
    pub trials: usize,
}

/// One row of a statistics file.
#[derive(Clone, Debug, PartialEq)]
pub struct StatRow {
    /// What was transformed (e.g. "noise:uniform" or a function name).
    pub input: String,
    pub n: usize,
    pub statistic: Statistic,
    pub format: Format,
    pub model: Model,
    pub trials: usize,
    /// The statistic over all modes, aggregated over trials (inf when a trial overflowed).
    pub measured: f64,
    /// Max over trials of that trial's bound (worst case per coefficient for Max; the Parseval
    /// RMS bound for Rms), so measured <= bound whenever each trial respects its own bound.
    pub bound: f64,
    /// Max rows, model I: the union-bound probabilistic bound over all modes (delta = 1e-3).
    pub prob_bound: Option<f64>,
    pub note: String,
}

/// CSV header of a statistics file.
pub const STATS_HEADER: [&str; 12] = [
    "input",
    "dim",
    "n",
    "statistic",
    "format",
    "model",
    "trials",
    "measured",
    "bound",
    "ratio",
    "prob_bound",
    "note",
];

struct TrialResult {
    max: f64,
    mean_sq: f64,
    bound_max: f64,
    bound_rms: f64,
    prob: f64,
    note: String,
    overflow: bool,
}

fn one_trial(
    samples: &[f64],
    fmt: Format,
    model: Model,
    alg: Algorithm,
) -> Result<TrialResult, SweepError> {
    let n = samples.len();
    let shape = [n];
    let reference = fft::reference_f64(samples, &shape);
    let out = fft::transform_under_model(samples, &shape, fmt, model, alg)?;
    let (mut max, mut sum_sq) = (0.0f64, 0.0f64);
    for (a, b) in out.coeffs.iter().zip(&reference) {
        let e = (a - b).norm();
        max = max.max(e);
        sum_sq += e * e;
    }
    let mean_abs = samples.iter().map(|v| v.abs()).sum::<f64>() / n as f64;
    let (max_abs, norm2) = bounds::max_and_norm(samples);
    let rms = norm2 / (n as f64).sqrt();
    let worst = bounds::precision(&shape, alg, fmt, model, mean_abs, max_abs);
    let rms_bound = bounds::precision_rms(&shape, alg, fmt, model, rms, max_abs);
    Ok(TrialResult {
        max,
        mean_sq: sum_sq / n as f64,
        bound_max: worst.bound,
        bound_rms: rms_bound.bound,
        prob: bounds::input_rounding_probabilistic_all_modes(fmt, max_abs, n, 1e-3),
        note: worst.note,
        overflow: out.overflow,
    })
}

/// Heap bytes of a trial's note beyond its `String` (a short sentence, or empty): an allowance.
const NOTE_BYTES: f64 = 128.0;

/// Bytes per trial of the input family's instance (`figure` builds one per trial for a function
/// input: a box and a few parameters): an allowance, also counted for noise.
const FUNCTION_BYTES: f64 = 256.0;

/// Bytes [`precision_stats`] holds at its peak, for `threads` jobs at once: every input of every
/// size and trial is kept until all jobs are done, 8 n bytes each plus its entry (the (n, t) key
/// and the `Vec`, 40 bytes), the list of keys it is built from (16 bytes) and the function
/// instance ([`FUNCTION_BYTES`]); each running job holds one result per trial (`TrialResult`
/// and its note, [`NOTE_BYTES`]) and one transform's buffers at the largest n (the f64
/// reference, the output and the transform's copies: 4 complex vectors, 64 n bytes).
pub fn stats_memory(sizes: &[usize], trials: usize, threads: usize) -> f64 {
    let trials = trials as f64;
    let inputs: f64 = sizes
        .iter()
        .map(|&n| trials * (8.0 * n as f64 + 40.0 + 16.0 + FUNCTION_BYTES))
        .sum();
    let largest = sizes.iter().copied().max().unwrap_or(0) as f64;
    let result = std::mem::size_of::<TrialResult>() as f64 + NOTE_BYTES;
    inputs + threads as f64 * (trials * result + 64.0 * largest)
}

/// Run the statistics: `sample(n, trial)` gives the input of size n for a trial. Rows are sorted
/// by (n, statistic, format, model).
pub fn precision_stats(
    input: &str,
    sample: &(dyn Fn(usize, usize) -> Vec<f64> + Sync),
    cfg: &StatsConfig,
) -> Result<Vec<StatRow>, SweepError> {
    let inputs: Vec<((usize, usize), Vec<f64>)> = cfg
        .sizes
        .iter()
        .flat_map(|&n| (0..cfg.trials).map(move |t| (n, t)))
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|(n, t)| ((n, t), sample(n, t)))
        .collect();
    let jobs: Vec<(usize, Format, Model)> = cfg
        .sizes
        .iter()
        .flat_map(|&n| {
            cfg.formats
                .iter()
                .flat_map(move |&f| cfg.models.iter().map(move |&m| (n, f, m)))
        })
        .collect();
    let rows: Vec<Vec<StatRow>> = jobs
        .par_iter()
        .map(|&(n, fmt, model)| {
            let trials: Vec<TrialResult> = inputs
                .iter()
                .filter(|((m, _), _)| *m == n)
                .map(|(_, x)| one_trial(x, fmt, model, cfg.algorithm))
                .collect::<Result<_, _>>()?;
            let overflow = trials.iter().any(|t| t.overflow);
            let fold = |f: fn(&TrialResult) -> f64| trials.iter().map(f).fold(0.0f64, f64::max);
            let mut note = trials
                .iter()
                .map(|t| t.note.as_str())
                .find(|n| !n.is_empty())
                .unwrap_or("")
                .to_string();
            if overflow {
                let o = format!("overflow: {fmt} produced inf/NaN in at least one trial");
                note = if note.is_empty() {
                    o
                } else {
                    format!("{o}; {note}")
                };
            }
            let k = trials.len() as f64;
            let rms = (trials.iter().map(|t| t.mean_sq).sum::<f64>() / k).sqrt();
            let measured = |v: f64| if overflow { f64::INFINITY } else { v };
            let base = StatRow {
                input: input.to_string(),
                n,
                statistic: Statistic::Max,
                format: fmt,
                model,
                trials: trials.len(),
                measured: measured(fold(|t| t.max)),
                bound: fold(|t| t.bound_max),
                prob_bound: (model == Model::Input).then(|| fold(|t| t.prob)),
                note,
            };
            let rms_row = StatRow {
                statistic: Statistic::Rms,
                measured: measured(rms),
                bound: fold(|t| t.bound_rms),
                prob_bound: None,
                ..base.clone()
            };
            Ok(vec![base, rms_row])
        })
        .collect::<Result<_, SweepError>>()?;
    let mut rows: Vec<StatRow> = rows.into_iter().flatten().collect();
    rows.sort_by(|a, b| {
        (a.n, a.statistic, a.format, a.model).cmp(&(b.n, b.statistic, b.format, b.model))
    });
    Ok(rows)
}

fn num(x: f64) -> String {
    if x.is_infinite() {
        if x > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        format!("{x:e}")
    }
}

/// Write statistics rows as CSV (header STATS_HEADER).
pub fn write_stats_csv<W: Write>(w: W, rows: &[StatRow]) -> csv::Result<()> {
    let mut wr = csv::Writer::from_writer(w);
    wr.write_record(STATS_HEADER)?;
    for r in rows {
        wr.write_record([
            r.input.clone(),
            "1".into(),
            r.n.to_string(),
            r.statistic.to_string(),
            r.format.to_string(),
            r.model.to_string(),
            r.trials.to_string(),
            num(r.measured),
            num(r.bound),
            if r.bound.is_finite() {
                num(r.measured / r.bound)
            } else {
                String::new()
            },
            r.prob_bound.map_or(String::new(), num),
            r.note.clone(),
        ])?;
    }
    wr.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_input_reaches_the_worst_case_and_noise_stays_below_it() {
        // y = 1 + 2^-11 (a tie in fp16): every sample rounds the same way, so the zero mode's
        // error is u M exactly (the worst case is attained) while noise averages out.
        let cfg = StatsConfig {
            sizes: vec![1024],
            formats: vec![Format::Fp16],
            models: vec![Model::Input],
            algorithm: Algorithm::Auto,
            trials: 2,
        };
        let tie = 1.0 + 2f64.powi(-11);
        let rows = precision_stats("tie", &|n, _| vec![tie; n], &cfg).unwrap();
        let max = rows.iter().find(|r| r.statistic == Statistic::Max).unwrap();
        assert!((max.measured - 2f64.powi(-11)).abs() < 1e-15, "{max:?}");
        assert!(max.measured <= max.bound);
        let noise = |n: usize, t: usize| -> Vec<f64> {
            (0..n)
                .map(|j| {
                    ((j * 7919 + t * 104729) % 1000) as f64 / 500.0 - 1.0
                        + 1e-4 * j as f64 / n as f64
                })
                .collect()
        };
        let rows = precision_stats("noise", &noise, &cfg).unwrap();
        for r in &rows {
            assert!(r.measured <= r.bound, "{r:?}");
        }
        let rms = rows.iter().find(|r| r.statistic == Statistic::Rms).unwrap();
        // Rounding errors of spread-out values cancel: far below u M.
        assert!(rms.measured < 0.1 * 2f64.powi(-11), "{rms:?}");
    }
}
