//! Writing an audit: the rows in the results-file contract plus a `sample` column (audit.csv),
//! the end-to-end differences (audit_end_to_end.csv), a markdown summary (audit.md), the figures
//! (audit.svg/png: errors vs resolution per layer; audit_ratio.svg/png: precision /
//! discretization per layer and format) and, on request, one captured activation
//! (activation.safetensors) for independent checks. Every file appears atomically.

pub use super::measure::Group;
use super::measure::{AuditRow, groups};
use super::{Audit, EndToEnd, Plan};
use crate::error::{CSV_HEADER, Kind, record};
use crate::pde::dataset::{DType, Dataset, Tensor};
use crate::plot::{self, format_color, model_marker};
use crate::plot::{Dash, LegendEntry, LogLogFigure, Marker, Panel, Series};
use crate::precision::{Format, Model};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const CSV: &str = "audit.csv";
pub const END_TO_END_CSV: &str = "audit_end_to_end.csv";
pub const LAYERS_CSV: &str = "audit_layers.csv";
pub const SUMMARY: &str = "audit.md";
pub const ACTIVATION: &str = "activation.safetensors";

/// The audit CSV's columns: the results-file contract's fifteen, then `sample` (the index of
/// the sample in the data file).
pub fn header() -> Vec<&'static str> {
    CSV_HEADER.iter().copied().chain(["sample"]).collect()
}

/// Write the rows as CSV.
pub fn write_csv<W: Write>(w: W, rows: &[AuditRow]) -> csv::Result<()> {
    let mut wr = csv::Writer::from_writer(w);
    wr.write_record(header())?;
    for r in rows {
        let mut f = record(&r.row).to_vec();
        f.push(r.sample.to_string());
        wr.write_record(f)?;
    }
    wr.flush()?;
    Ok(())
}

fn num(x: f64) -> String {
    if x.is_infinite() {
        "inf".into()
    } else {
        format!("{x:e}")
    }
}

/// The end-to-end rows: `s, sample, format, precision_rel_l2, discretization_rel_l2, ratio, note`.
pub fn write_end_to_end<W: Write>(w: W, rows: &[EndToEnd]) -> csv::Result<()> {
    let mut wr = csv::Writer::from_writer(w);
    wr.write_record([
        "s",
        "sample",
        "format",
        "precision_rel_l2",
        "discretization_rel_l2",
        "ratio",
        "note",
    ])?;
    for r in rows {
        let ratio = match r.discretization {
            Some(d) if d > 0.0 && r.precision.is_finite() => num(r.precision / d),
            _ => String::new(),
        };
        wr.write_record([
            r.s.to_string(),
            r.sample.to_string(),
            r.format.to_string(),
            num(r.precision),
            r.discretization.map_or(String::new(), num),
            ratio,
            r.note.clone(),
        ])?;
    }
    wr.flush()?;
    Ok(())
}

/// The per-layer table (`audit_layers.csv`): one line per (layer, s, format, model) of the
/// precision rows, maxima over samples and kept modes, beside the same layer's discretization
/// estimate at that s (empty at the native grid, the reference).
pub fn write_layers_csv<W: Write>(w: W, rows: &[AuditRow]) -> csv::Result<()> {
    let g = groups(rows);
    let mut wr = csv::Writer::from_writer(w);
    wr.write_record([
        "layer",
        "s",
        "format",
        "model",
        "rows",
        "precision_max",
        "precision_bound_max",
        "infinite_bounds",
        "above_bound",
        "overflow_rows",
        "discretization_max",
        "discretization_bound_estimate_max",
        "precision_over_discretization",
    ])?;
    for ((f, res, kind, fmt, model), p) in &g {
        if *kind != Kind::Precision {
            continue;
        }
        let d = g.get(&(f.clone(), *res, Kind::Discretization, Format::Fp64, None));
        let measured = p.measured_or_inf();
        let ratio = match d {
            Some(d) if d.measured > 0.0 && measured.is_finite() => num(measured / d.measured),
            _ => String::new(),
        };
        wr.write_record([
            f.clone(),
            res.to_string(),
            fmt.to_string(),
            model.map_or("none".into(), |m| m.to_string()),
            p.rows.to_string(),
            num(measured),
            num(p.bound_or_inf()),
            p.infinite.to_string(),
            p.above.to_string(),
            p.overflow.to_string(),
            d.map_or(String::new(), |d| num(d.measured)),
            d.map_or(String::new(), |d| num(d.bound)),
            ratio,
        ])?;
    }
    wr.flush()?;
    Ok(())
}

fn sci(x: f64) -> String {
    if x.is_infinite() {
        "inf".into()
    } else {
        format!("{x:.2e}")
    }
}

/// The markdown summary.
pub fn summary(plan: &Plan, audit: &Audit) -> String {
    let mc = &plan.model.cfg;
    let kept = crate::backend::Modes(mc.modes.clone()).kept_shape();
    let g = groups(&audit.rows);
    let mut s = String::new();
    let _ = writeln!(s, "# mpno audit\n");
    let _ = writeln!(
        s,
        "Checkpoint `{}`, data `{}`: a {}-D FNO of width {}, modes {:?} (kept {} per channel), {} \
         spectral layers, stabilizer {}. Samples {:?} of the data file (the last {}), native grid \
         {} points per axis (the fine reference); audited at s = {}.\n",
        plan.checkpoint.display(),
        plan.data.display(),
        mc.dim,
        mc.width,
        mc.modes,
        kept.iter()
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
            .join(" x "),
        mc.n_layers,
        plan.stabilizer,
        plan.sample_ids,
        plan.sample_ids.len(),
        plan.native,
        plan.resolutions
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        s,
        "What is measured: the input of each layer's forward transform (after the stabilizer) as \
         the fp32 model computes it, one grid per channel; coefficients F_s(v)(w) = n^-1 sum_j \
         v(x_j) exp(-2 pi i <w, x_j>) at the kept modes. A row of `{}` is one (layer, s, sample, \
         mode, format, model): measured = the largest error over the channels, bound = the \
         largest of the channels' bounds (a channel above its own bound is named in `note`).\n",
        CSV
    );
    let _ = writeln!(
        s,
        "- **Precision** (`kind = precision`, `constants = samples`): the transform under the \
         format and model (src/fft emulation) vs f64 on the same samples, beside the proven \
         bound of docs/bounds.md with M = max |v| and mean |v| of the channel's samples.\n\
         - **Discretization** (`kind = discretization`, `constants = estimate`): the coarse \
         grid's coefficient vs the same layer's coefficient on the native grid, beside \
         D(s) + D({native}) (D the bound of docs/bounds.md) with L estimated on the grid: per \
         axis the largest difference of neighbouring samples times the points per axis (a lower \
         bound of that axis' Lipschitz constant, blind to features between grid points), \
         combined as a Euclidean norm, and M = max |v|. **An estimate, not a bound.** Beyond \
         block 0 the coarse activation also carries the earlier blocks' grid differences.\n",
        native = plan.native
    );
    let total = audit.rows.len();
    let above: usize = g.values().map(|x| x.above).sum();
    let infinite: usize = g.values().map(|x| x.infinite).sum();
    let _ = writeln!(
        s,
        "Rows: {total}; measured <= bound in {} ({infinite} with an infinite bound, reason in \
         `note`){}.\n",
        total - above,
        if above > 0 {
            format!("; **{above} ABOVE their bound**")
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        s,
        "## Per layer (maxima over samples and kept modes)\n\n\
         | layer | s | format | model | precision | bound | discretization | bound (estimate) | precision / discretization |\n\
         |---|---:|---|---|---:|---:|---:|---:|---:|"
    );
    for ((f, res, kind, fmt, model), p) in &g {
        if *kind != Kind::Precision {
            continue;
        }
        let d = g.get(&(f.clone(), *res, Kind::Discretization, Format::Fp64, None));
        let (dm, db, ratio) = match d {
            Some(d) => (
                sci(d.measured),
                sci(d.bound),
                if p.overflow > 0 {
                    "overflow".into()
                } else if d.measured > 0.0 {
                    sci(p.measured / d.measured)
                } else {
                    "-".into()
                },
            ),
            None => ("(reference)".into(), "-".into(), "-".into()),
        };
        let pm = if p.overflow > 0 {
            format!("inf ({} rows)", p.overflow)
        } else {
            sci(p.measured)
        };
        let pb = if p.infinite > 0 {
            "inf".to_string()
        } else {
            sci(p.bound)
        };
        let _ = writeln!(
            s,
            "| {f} | {res} | {fmt} | {} | {pm} | {pb} | {dm} | {db} | {ratio} |",
            model.map_or("none".into(), |m| m.to_string())
        );
    }
    let _ = writeln!(
        s,
        "\n## End to end (relative L2 of the decoded output, mean over the samples)\n\n\
         Precision: the spectral blocks (forward FFT, contraction, inverse FFT) in the format, the \
         rest fp32, vs all fp32. Discretization: the fp32 output at s vs the native run's output \
         at the same points.\n\n\
         | s | format | format vs fp32 | coarse vs fine | precision / discretization |\n\
         |---:|---|---:|---:|---:|"
    );
    let mut e2e: BTreeMap<(usize, Format), Vec<&EndToEnd>> = BTreeMap::new();
    for r in &audit.end_to_end {
        e2e.entry((r.s, r.format)).or_default().push(r);
    }
    for ((res, fmt), list) in &e2e {
        let n = list.len() as f64;
        let p = list.iter().map(|r| r.precision).sum::<f64>() / n;
        let d: Option<f64> = list
            .iter()
            .map(|r| r.discretization)
            .sum::<Option<f64>>()
            .map(|x| x / n);
        let ratio = match d {
            Some(d) if d > 0.0 && p.is_finite() => sci(p / d),
            _ => "-".into(),
        };
        let _ = writeln!(
            s,
            "| {res} | {fmt} | {} | {} | {ratio} |",
            sci(p),
            d.map_or("(reference)".into(), sci)
        );
    }
    s
}

/// Per layer, errors vs s: precision maxima per format and model as markers, their bounds as
/// solid lines, the discretization estimate as black diamonds, its (estimated) bound dashed.
pub fn error_figure(plan: &Plan, audit: &Audit) -> LogLogFigure {
    let g = groups(&audit.rows);
    let mut fig = LogLogFigure::new(&format!(
        "mpno audit: spectral layers' errors (max over {} samples and the kept modes; reference s = {})",
        plan.sample_ids.len(),
        plan.native
    ));
    for &l in &plan.layers {
        let name = super::layer_name(l);
        let mut panel = Panel::new(&name, "s", "error", 2);
        for &fmt in &plan.formats {
            for &model in &plan.models {
                let key = |s: usize| (name.clone(), s, Kind::Precision, fmt, Some(model));
                let (mut pts, mut bnd) = (Vec::new(), Vec::new());
                for &s in &plan.resolutions {
                    if let Some(x) = g.get(&key(s)) {
                        if x.overflow > 0 {
                            panel.overflow.push((s as f64, format_color(fmt)));
                        } else {
                            pts.push((s as f64, x.measured));
                        }
                        if x.infinite == 0 {
                            bnd.push((s as f64, x.bound));
                        }
                    }
                }
                let mut m = Series::markers(format_color(fmt), model_marker(model), pts);
                if model == Model::Input {
                    m = m.hollow();
                }
                panel.series.push(m);
                panel
                    .series
                    .push(Series::line(format_color(fmt), Dash::Solid, bnd));
            }
        }
        let (mut pts, mut bnd) = (Vec::new(), Vec::new());
        for &s in &plan.resolutions {
            if let Some(x) = g.get(&(name.clone(), s, Kind::Discretization, Format::Fp64, None)) {
                pts.push((s as f64, x.measured));
                bnd.push((s as f64, x.bound));
            }
        }
        panel
            .series
            .push(Series::markers(plot::palette(7), Marker::Diamond, pts));
        panel
            .series
            .push(Series::line(plot::palette(7), Dash::Dashed, bnd));
        fig.panels.push(panel);
    }
    fig.legend.push(LegendEntry::header("precision"));
    for &fmt in &plan.formats {
        for &model in &plan.models {
            let mut e = LegendEntry::new(
                &format!("{fmt} {model}"),
                format_color(fmt),
                Some(model_marker(model)),
                Some(Dash::Solid),
            );
            if model == Model::Input {
                e = e.hollow();
            }
            fig.legend.push(e);
        }
    }
    fig.legend.push(LegendEntry::header("discretization"));
    fig.legend.push(LegendEntry::new(
        &format!("vs s = {}", plan.native),
        plot::palette(7),
        Some(Marker::Diamond),
        Some(Dash::Dashed),
    ));
    fig.notes = vec![
        "Markers: measured maxima; solid: precision bounds (proven); dashed: D(s) + D(native) \
         with L estimated from the activation (an estimate). Crosses on top: overflow."
            .into(),
    ];
    fig
}

/// Per layer, the largest precision error over the largest discretization estimate vs s.
pub fn ratio_figure(plan: &Plan, audit: &Audit) -> LogLogFigure {
    let g = groups(&audit.rows);
    let mut fig =
        LogLogFigure::new("mpno audit: precision / discretization (maxima over samples and modes)");
    for &l in &plan.layers {
        let name = super::layer_name(l);
        let mut panel = Panel::new(&name, "s", "precision / discretization", 2);
        for &fmt in &plan.formats {
            for &model in &plan.models {
                let mut pts = Vec::new();
                for &s in &plan.resolutions {
                    let p = g.get(&(name.clone(), s, Kind::Precision, fmt, Some(model)));
                    let d = g.get(&(name.clone(), s, Kind::Discretization, Format::Fp64, None));
                    if let (Some(p), Some(d)) = (p, d)
                        && p.overflow == 0
                        && d.measured > 0.0
                    {
                        pts.push((s as f64, p.measured / d.measured));
                    }
                }
                let mut m = Series::markers(format_color(fmt), model_marker(model), pts.clone());
                if model == Model::Input {
                    m = m.hollow();
                }
                panel.series.push(m);
                panel
                    .series
                    .push(Series::line(format_color(fmt), Dash::Dotted, pts));
            }
        }
        fig.panels.push(panel);
    }
    for &fmt in &plan.formats {
        for &model in &plan.models {
            let mut e = LegendEntry::new(
                &format!("{fmt} {model}"),
                format_color(fmt),
                Some(model_marker(model)),
                None,
            );
            if model == Model::Input {
                e = e.hollow();
            }
            fig.legend.push(e);
        }
    }
    fig.y_floor = 1e-12;
    fig
}

/// The activation file: tensors `coarse` (channels, s, ...) and `fine` (channels, S, ...) in
/// F64; metadata `layer`, `sample`, `s`, `native`.
pub fn activation_dataset(
    plan: &Plan,
    coarse: &super::Activation,
    fine: &super::Activation,
) -> Dataset {
    let mut ds = Dataset::default();
    for (name, a) in [("coarse", coarse), ("fine", fine)] {
        let mut shape = vec![a.channels];
        shape.extend(&a.grid);
        ds.tensors.insert(
            name.into(),
            Tensor::from_f64(shape, a.values.clone(), DType::F64),
        );
    }
    for (k, v) in [
        ("layer", coarse.layer.to_string()),
        ("sample", plan.sample_ids[0].to_string()),
        ("s", coarse.grid[0].to_string()),
        ("native", fine.grid[0].to_string()),
    ] {
        ds.metadata.insert(k.into(), v);
    }
    ds
}

/// Write every output file into `dir` (checked beforehand); returns the paths written.
pub fn write_all(
    plan: &Plan,
    audit: &Audit,
    dir: &Path,
    save_activation: bool,
) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let csv_path = dir.join(CSV);
    crate::cli::write_atomically(&csv_path, |f| {
        let mut w = std::io::BufWriter::new(f);
        write_csv(&mut w, &audit.rows)?;
        w.flush()?;
        Ok(())
    })?;
    written.push(csv_path);
    let layers = dir.join(LAYERS_CSV);
    crate::cli::write_atomically(&layers, |f| Ok(write_layers_csv(f, &audit.rows)?))?;
    written.push(layers);
    let e2e = dir.join(END_TO_END_CSV);
    crate::cli::write_atomically(&e2e, |f| Ok(write_end_to_end(f, &audit.end_to_end)?))?;
    written.push(e2e);
    let md = dir.join(SUMMARY);
    crate::cli::write_atomically(&md, |f| Ok(f.write_all(summary(plan, audit).as_bytes())?))?;
    written.push(md);
    let width = (330 * plan.layers.len() as u32 + 300).max(800);
    written.extend(plot::save(
        &error_figure(plan, audit),
        &dir.join("audit"),
        (width, 520),
    )?);
    written.extend(plot::save(
        &ratio_figure(plan, audit),
        &dir.join("audit_ratio"),
        (width, 520),
    )?);
    if save_activation {
        match &audit.first {
            Some((coarse, fine)) => {
                let p = dir.join(ACTIVATION);
                activation_dataset(plan, coarse, fine).save(&p)?;
                written.push(p);
            }
            None => anyhow::bail!(
                "--save-activation: no resolution below the native one was audited, so there is \
                 no coarse activation to save"
            ),
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Row;

    fn row(kind: Kind, measured: f64, bound: f64) -> AuditRow {
        AuditRow {
            sample: 3,
            row: Row {
                basis: "fourier".into(),
                function: "fno:block0".into(),
                dim: 2,
                s: 16,
                mode: vec![1, -2],
                kind,
                format: if kind == Kind::Precision {
                    Format::Fp16
                } else {
                    Format::Fp64
                },
                scaled: None,
                model: (kind == Kind::Precision).then_some(Model::Arithmetic),
                measured,
                bound,
                lower_bound: None,
                prob_bound: None,
                constants: "samples".into(),
                note: "n".into(),
            },
        }
    }

    #[test]
    fn groups_count_what_the_summary_reports() {
        let rows = [
            row(Kind::Precision, 1e-4, 1e-3),
            row(Kind::Precision, 2e-4, 1e-3),
            row(Kind::Precision, f64::INFINITY, f64::INFINITY),
            row(Kind::Precision, 5e-3, 1e-3),
            row(Kind::Discretization, 1e-2, 1.0),
        ];
        let g = groups(&rows);
        assert_eq!(g.len(), 2);
        let p = &g[&(
            "fno:block0".to_string(),
            16,
            Kind::Precision,
            Format::Fp16,
            Some(Model::Arithmetic),
        )];
        assert_eq!((p.rows, p.infinite, p.above, p.overflow), (4, 1, 1, 1));
        assert_eq!((p.measured, p.bound), (5e-3, 1e-3));
        let mut buf = Vec::new();
        write_csv(&mut buf, &rows[..1]).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(
            text.starts_with(&format!("{},sample\n", CSV_HEADER.join(","))),
            "{text}"
        );
        assert!(text.trim_end().ends_with(",samples,n,3"), "{text}");
    }
}
