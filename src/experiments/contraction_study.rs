//! The `contraction` kind: the spectral contraction's measured error against its proven bound
//! (`bounds::contraction_precision`, docs/bounds.md "Spectral contraction") as the number of
//! input channels grows, per storage format and complex-product form.
//!
//! For every format, form and channel count n, `trials` contractions
//! `y[b, o, k] = sum_{i < n} x[b, i, k] w[i, o, k]` run on the CPU backend (its exact emulation
//! of the GPU's arithmetic: operands rounded to the format, products and sums in fp32 in a
//! stated order, the result rounded to the format), with x and w uniform in [-1, 1) (real and
//! imaginary parts, seeded). Every output is compared with the f64 sum of the unrounded
//! operands (its own error, at most gamma_{2n}(2^-53) S, is below 1e-12 S here: far below every
//! bound) and with its bound; both are reported relative to `S = sum_i |x_i| |w_i|`, the scale
//! the bound grows with.

use super::toml_list;
use super::{Checker, ExperimentError, Plan, runtime};
use crate::backend::cpu::Cpu;
use crate::backend::{Backend, ContractForm};
use crate::bounds::{ContractionSums, contraction_precision};
use crate::cli::{self, UsageError};
use crate::plot::{Dash, LegendEntry, LogLogFigure, Marker, Panel, Series, palette};
use crate::precision::Format;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Columns of `NAME.csv` (docs/results-files.md, "Spectral contraction").
pub const HEADER: [&str; 11] = [
    "format",
    "form",
    "channels",
    "outputs",
    "rel_error_max",
    "rel_error_rms",
    "rel_bound_max",
    "error_over_bound_max",
    "above_bound",
    "no_bound",
    "note",
];

/// The largest channel count an experiment may ask for.
pub const MAX_CHANNELS: usize = 1 << 16;

/// Terms (products) one experiment may sum in all: a few seconds on two cores.
const MAX_TERMS: u64 = 1 << 30;

/// A `contraction` experiment file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ContractionStudy {
    /// "contraction".
    pub kind: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Storage formats of the operands and the result (one panel each), e.g. "fp32,bf16,fp16".
    #[serde(deserialize_with = "toml_list::list_text")]
    pub formats: String,
    /// Complex-product forms: "standard", "gauss" or both (comma-separated).
    #[serde(deserialize_with = "toml_list::list_text", default = "both_forms")]
    pub forms: String,
    /// Input channel counts n (the length of every sum).
    pub channels: Vec<usize>,
    /// Batch b, output channels o and kept modes k of each contraction: b * o * k outputs.
    #[serde(default = "two")]
    pub batch: usize,
    #[serde(default = "four")]
    pub out_channels: usize,
    #[serde(default = "eight")]
    pub modes: usize,
    /// Independent draws of x and w per (format, form, n).
    #[serde(default = "four")]
    pub trials: usize,
    #[serde(default)]
    pub seed: u64,
}

fn both_forms() -> String {
    "standard,gauss".into()
}
fn two() -> usize {
    2
}
fn four() -> usize {
    4
}
fn eight() -> usize {
    8
}

/// A validated `contraction` experiment.
pub struct ContractionPlan {
    pub study: ContractionStudy,
    pub formats: Vec<Format>,
    pub forms: Vec<ContractForm>,
}

pub(super) fn load_contraction(c: &Checker) -> Result<Plan, UsageError> {
    let study: ContractionStudy = c.parse()?;
    c.kind(&Some(study.kind.clone()), "contraction")?;
    let formats = c.formats("formats", &study.formats)?;
    if let Some(f) = formats.iter().find(|f| **f == Format::Fp64) {
        return Err(c.field(
            "formats",
            UsageError::new(
                "formats",
                format!(
                    "{f}: the contraction accumulates in fp32, so its operands are fp32 or narrower"
                ),
            ),
        ));
    }
    let forms = study
        .forms
        .split(',')
        .map(|t| t.trim().parse::<ContractForm>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| c.field("forms", UsageError::new("forms", e)))?;
    for (key, v) in [
        ("batch", study.batch),
        ("out_channels", study.out_channels),
        ("modes", study.modes),
        ("trials", study.trials),
    ] {
        if v == 0 {
            return Err(c.field(key, UsageError::new(key, "must be >= 1, got 0")));
        }
    }
    if study.channels.is_empty() {
        return Err(c.field(
            "channels",
            UsageError::new(
                "channels",
                "empty; give the input channel counts, e.g. [1, 16, 256]",
            ),
        ));
    }
    if let Some(n) = study.channels.iter().find(|&&n| n == 0 || n > MAX_CHANNELS) {
        return Err(c.field(
            "channels",
            UsageError::new(
                "channels",
                format!("{n}: each channel count must be in 1..={MAX_CHANNELS}"),
            ),
        ));
    }
    let per_n = (study.batch * study.out_channels * study.modes * study.trials) as u64
        * (formats.len() * forms.len()) as u64;
    let terms = study.channels.iter().fold(0u64, |a, &n| {
        a.saturating_add((n as u64).saturating_mul(per_n))
    });
    if terms > MAX_TERMS {
        return Err(c.field(
            "channels",
            UsageError::new(
                "channels",
                format!(
                    "{terms} products in all, above the limit of {MAX_TERMS}: fewer or smaller \
                     channel counts, trials, modes or outputs"
                ),
            ),
        ));
    }
    Ok(Plan::Contraction(ContractionPlan {
        study,
        formats,
        forms,
    }))
}

/// One CSV row: the outputs of all trials at one (format, form, channel count).
#[derive(Clone, Debug, PartialEq)]
pub struct ContractionRow {
    pub format: Format,
    pub form: ContractForm,
    pub channels: usize,
    pub outputs: usize,
    /// max over outputs of |y^ - y| / S.
    pub rel_error_max: f64,
    /// root mean square over outputs of |y^ - y| / S.
    pub rel_error_rms: f64,
    /// max over outputs of bound / S (outputs with a bound).
    pub rel_bound_max: f64,
    /// max over outputs of |y^ - y| / bound.
    pub error_over_bound_max: f64,
    /// Outputs above their bound (0 unless the bound is wrong).
    pub above_bound: usize,
    /// Outputs whose bound does not apply (a range condition fails), with the first reason.
    pub no_bound: usize,
    pub note: String,
}

/// One draw of the operands of a contraction over `n` channels, with every output's exact value
/// (the f64 sum of the unrounded operands) and the sums its bound needs: the same for every
/// format and form, so computed once.
struct Draw {
    n: usize,
    x: Vec<f32>,
    w: Vec<f32>,
    /// Per output (b, o, k row-major): (exact re, exact im) and the bound's sums.
    exact: Vec<((f64, f64), ContractionSums)>,
}

/// Draw `trial` of the operands over `n` channels (seeded per (n, trial)).
fn draw(s: &ContractionStudy, n: usize, trial: usize) -> Draw {
    let (b, co, k) = (s.batch, s.out_channels, s.modes);
    let values = |which: u64, len: usize| -> Vec<f32> {
        super::noise(2 * len, s.seed ^ (which << 40), trial)
            .iter()
            .map(|&v| v as f32)
            .collect()
    };
    let x = values(1, b * n * k);
    let w = values(2, n * co * k);
    let at = |v: &[f32], i: usize| (v[2 * i] as f64, v[2 * i + 1] as f64);
    let exact = (0..b * co * k)
        .map(|out| {
            let (bb, o, m) = (out / (co * k), out / k % co, out % k);
            let terms: Vec<_> = (0..n)
                .map(|i| (at(&x, (bb * n + i) * k + m), at(&w, (i * co + o) * k + m)))
                .collect();
            let (mut re, mut im) = (0.0f64, 0.0f64);
            for &((a, bi), (c, d)) in &terms {
                re += a * c - bi * d;
                im += a * d + bi * c;
            }
            ((re, im), ContractionSums::of(terms))
        })
        .collect();
    Draw { n, x, w, exact }
}

/// The row of one (format, form) over the draws of one channel count: the CPU backend's
/// contraction of each draw against its exact outputs and their bounds.
fn measure_row(
    cpu: &Cpu<f32>,
    s: &ContractionStudy,
    format: Format,
    form: ContractForm,
    draws: &[Draw],
) -> ContractionRow {
    let (b, co, k) = (s.batch, s.out_channels, s.modes);
    let n = draws[0].n;
    let mut row = ContractionRow {
        format,
        form,
        channels: n,
        outputs: 0,
        rel_error_max: 0.0,
        rel_error_rms: 0.0,
        rel_bound_max: 0.0,
        error_over_bound_max: 0.0,
        above_bound: 0,
        no_bound: 0,
        note: String::new(),
    };
    let mut sq = 0.0f64;
    for d in draws {
        let y = cpu.download_complex(&cpu.contract(
            &cpu.upload_complex(&[b, n, k], &d.x, Format::Fp32),
            &cpu.upload_complex(&[n, co, k], &d.w, Format::Fp32),
            format,
            form,
        ));
        for (out, ((re, im), sums)) in d.exact.iter().enumerate() {
            let err = (y[2 * out] as f64 - re).hypot(y[2 * out + 1] as f64 - im);
            let rel = err / sums.s;
            row.outputs += 1;
            row.rel_error_max = row.rel_error_max.max(rel);
            sq += rel * rel;
            match contraction_precision(format, form, sums) {
                Ok(bound) => {
                    row.rel_bound_max = row.rel_bound_max.max(bound / sums.s);
                    row.error_over_bound_max = row.error_over_bound_max.max(err / bound);
                    if err > bound {
                        row.above_bound += 1;
                    }
                }
                Err(why) => {
                    row.no_bound += 1;
                    if row.note.is_empty() {
                        row.note = format!("no bound: {why}");
                    }
                }
            }
        }
    }
    row.rel_error_rms = (sq / row.outputs as f64).sqrt();
    if row.above_bound > 0 {
        row.note = format!("{} outputs above their bound: a bug", row.above_bound);
    }
    row
}

/// Measure every (format, form, channel count) of `plan`, rows in that order.
pub fn measure(plan: &ContractionPlan) -> Vec<ContractionRow> {
    let s = &plan.study;
    let cpu = Cpu::<f32>::new();
    let draws: Vec<Vec<Draw>> = s
        .channels
        .iter()
        .map(|&n| (0..s.trials).map(|t| draw(s, n, t)).collect())
        .collect();
    let mut rows = Vec::new();
    for &format in &plan.formats {
        for &form in &plan.forms {
            for d in &draws {
                rows.push(measure_row(&cpu, s, format, form, d));
            }
        }
    }
    rows
}

fn write_csv(path: &Path, rows: &[ContractionRow]) -> anyhow::Result<()> {
    cli::write_atomically(path, |w| {
        let mut wr = csv::Writer::from_writer(w);
        wr.write_record(HEADER)?;
        for r in rows {
            wr.write_record([
                r.format.name().to_string(),
                r.form.name().to_string(),
                r.channels.to_string(),
                r.outputs.to_string(),
                format!("{:e}", r.rel_error_max),
                format!("{:e}", r.rel_error_rms),
                format!("{:e}", r.rel_bound_max),
                format!("{:e}", r.error_over_bound_max),
                r.above_bound.to_string(),
                r.no_bound.to_string(),
                r.note.clone(),
            ])?;
        }
        wr.flush()?;
        Ok(())
    })
}

/// One panel per format: per form (one colour each) the largest and the RMS error relative to
/// S (filled and hollow markers) and the largest bound relative to S (solid line), against n.
pub fn contraction_figure(
    title: &str,
    rows: &[ContractionRow],
    plan: &ContractionPlan,
) -> LogLogFigure {
    let mut fig = LogLogFigure::new(title);
    for &format in &plan.formats {
        let mut p = Panel::new(
            &format!("{format} operands, fp32 sums"),
            "input channels n (terms per output)",
            "error / sum |x_i| |w_i|",
            2,
        );
        for (i, &form) in plan.forms.iter().enumerate() {
            let mine: Vec<&ContractionRow> = rows
                .iter()
                .filter(|r| r.format == format && r.form == form)
                .collect();
            let pts = |f: fn(&ContractionRow) -> f64| {
                mine.iter()
                    .map(|r| (r.channels as f64, f(r)))
                    .collect::<Vec<_>>()
            };
            let color = palette(i);
            p.series
                .push(Series::line(color, Dash::Solid, pts(|r| r.rel_bound_max)));
            p.series.push(Series::markers(
                color,
                Marker::Square,
                pts(|r| r.rel_error_max),
            ));
            p.series
                .push(Series::markers(color, Marker::Circle, pts(|r| r.rel_error_rms)).hollow());
        }
        fig.panels.push(p);
    }
    fig.legend.push(LegendEntry::header("form"));
    for (i, form) in plan.forms.iter().enumerate() {
        let label = match form {
            ContractForm::Standard => "standard (4 products)",
            ContractForm::Gauss => "Gauss (3 products)",
        };
        fig.legend.push(LegendEntry::new(
            label,
            palette(i),
            Some(Marker::Square),
            Some(Dash::Solid),
        ));
    }
    fig.legend.push(LegendEntry::header("symbols"));
    let grey = super::figures::GREY;
    fig.legend.push(LegendEntry::new(
        "largest error",
        grey,
        Some(Marker::Square),
        None,
    ));
    fig.legend
        .push(LegendEntry::new("RMS error", grey, Some(Marker::Circle), None).hollow());
    fig.legend.push(LegendEntry::new(
        "proven bound (largest)",
        grey,
        None,
        Some(Dash::Solid),
    ));
    fig.notes.push(
        "Each output y = sum_i x_i w_i of n complex terms, against the exact sum; x, w \
         uniform in [-1, 1). Bound: docs/bounds.md, Spectral contraction."
            .into(),
    );
    fig
}

pub(super) fn run_contraction(
    plan: &ContractionPlan,
    out_dir: &Path,
    name: &str,
) -> Result<Vec<PathBuf>, ExperimentError> {
    let rows = measure(plan);
    let csv_path = out_dir.join(format!("{name}.csv"));
    write_csv(&csv_path, &rows).map_err(runtime)?;
    let study = &plan.study;
    let fig = contraction_figure(
        study.title.as_deref().unwrap_or(&study.description),
        &rows,
        plan,
    );
    Ok(super::figure_and_config(
        out_dir,
        name,
        vec![csv_path],
        &fig,
        study,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(formats: &[Format], channels: Vec<usize>) -> ContractionPlan {
        ContractionPlan {
            study: ContractionStudy {
                kind: "contraction".into(),
                description: "test".into(),
                title: None,
                formats: String::new(),
                forms: both_forms(),
                channels,
                batch: 2,
                out_channels: 3,
                modes: 4,
                trials: 2,
                seed: 3,
            },
            formats: formats.to_vec(),
            forms: vec![ContractForm::Standard, ContractForm::Gauss],
        }
    }

    /// Every output under its bound, errors of the format's size, and the forms apart where
    /// the bound says they are (Gauss rounds its sums to the format: about 4 u S more).
    #[test]
    fn every_output_lies_under_its_bound_and_the_errors_have_the_formats_size() {
        let p = plan(&[Format::Fp32, Format::Fp16], vec![1, 7, 300]);
        let rows = measure(&p);
        assert_eq!(rows.len(), 2 * 2 * 3);
        for r in &rows {
            assert_eq!(r.outputs, 2 * 2 * 3 * 4, "{r:?}");
            assert_eq!((r.above_bound, r.no_bound), (0, 0), "{r:?}");
            assert!(
                r.error_over_bound_max <= 1.0 && r.rel_error_max > 0.0,
                "{r:?}"
            );
            assert!(r.rel_error_rms <= r.rel_error_max, "{r:?}");
            let u = r.format.unit_roundoff();
            // Operand rounding alone: at least u / 100 somewhere, at most a few u.
            assert!(
                r.rel_error_max > u / 100.0 && r.rel_error_max < 8.0 * u,
                "{r:?}"
            );
            assert!(r.rel_bound_max >= r.rel_error_max, "{r:?}");
        }
        let bound = |fmt, form, n| {
            rows.iter()
                .find(|r| r.format == fmt && r.form == form && r.channels == n)
                .unwrap()
                .rel_bound_max
        };
        // fp32: the accumulation term grows with n; fp16: the operand rounding dominates.
        assert!(
            bound(Format::Fp32, ContractForm::Standard, 300)
                > 50.0 * bound(Format::Fp32, ContractForm::Standard, 1)
        );
        assert!(
            bound(Format::Fp16, ContractForm::Standard, 300)
                < 2.0 * bound(Format::Fp16, ContractForm::Standard, 1)
        );
        assert!(
            bound(Format::Fp16, ContractForm::Gauss, 7)
                > 2.0 * bound(Format::Fp16, ContractForm::Standard, 7)
        );
    }

    #[test]
    fn same_seed_same_rows() {
        let p = plan(&[Format::Bf16], vec![5, 64]);
        assert_eq!(measure(&p), measure(&p));
    }

    #[test]
    fn the_figure_has_a_panel_per_format_and_three_series_per_form() {
        let p = plan(&[Format::Fp32, Format::Bf16, Format::Fp16], vec![1, 16]);
        let fig = contraction_figure("t", &measure(&p), &p);
        assert_eq!(fig.panels.len(), 3);
        assert!(
            fig.panels
                .iter()
                .all(|q| q.series.len() == 6 && q.series.iter().all(|s| s.points.len() == 2))
        );
    }
}
