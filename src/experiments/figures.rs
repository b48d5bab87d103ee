//! Figures and tables drawn from an experiment's rows (the same rows its CSV holds).

use crate::error::{Crossover, Estimate, How, Kind, Row, StatRow, Statistic};
use crate::functions::Function;
use crate::plot::{
    BarChart, BarGroup, BarPanel, Dash, LegendEntry, LogLogFigure, Marker, Panel, Series, Star,
    format_color, model_marker, palette, scaled_color, sup_power,
};
use crate::precision::{Format, Model, ScaledFormat, Scaling};
use plotters::style::RGBColor;

const BLACK: RGBColor = RGBColor(0, 0, 0);
pub(super) const GREY: RGBColor = RGBColor(110, 110, 110);

/// A mode as written in titles: "3" in 1-D, "(3, 3)" in 2-D.
fn mode_string(w: &[i64]) -> String {
    let parts: Vec<String> = w.iter().map(|k| k.to_string()).collect();
    if parts.len() == 1 {
        parts[0].clone()
    } else {
        format!("({})", parts.join(", "))
    }
}

/// Panel title of a precision model.
fn model_title(m: Model) -> &'static str {
    match m {
        Model::Input => "model I: inputs rounded",
        Model::Storage => "model II: stage outputs rounded",
        Model::Arithmetic => "model III: every operation rounded",
        Model::ArithmeticScaled => "model III, scaled 1/2 per stage",
        Model::Gemm => "model G: GEMM (fp32 accumulation)",
    }
}

/// Short legend name of a model.
fn model_short(m: Model) -> &'static str {
    match m {
        Model::Input => "I",
        Model::Storage => "II",
        Model::Arithmetic => "III",
        Model::ArithmeticScaled => "III scaled",
        Model::Gemm => "G",
    }
}

fn x_label(dim: usize) -> String {
    if dim == 1 {
        "grid size s".into()
    } else {
        format!("grid size s per axis (n = s{})", ['¹', '²', '³'][dim - 1])
    }
}

/// Precision measurements of one (format, model): finite ones as points, inf ones as overflow
/// marks, and the finite bound as a line.
fn precision_series(
    panel: &mut Panel,
    rows: &[&Row],
    color: RGBColor,
    marker: Marker,
    bound_dash: Dash,
) {
    let measured: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| r.measured.is_finite())
        .map(|r| (r.s as f64, r.measured))
        .collect();
    let bound: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| r.bound.is_finite())
        .map(|r| (r.s as f64, r.bound))
        .collect();
    panel.overflow.extend(
        rows.iter()
            .filter(|r| r.measured.is_infinite())
            .map(|r| (r.s as f64, color)),
    );
    panel.series.push(Series::line(color, bound_dash, bound));
    panel.series.push(Series::markers(color, marker, measured));
}

fn s_star_text(e: &Estimate) -> String {
    let num = |s: f64| {
        if s < 1e5 {
            format!("{s:.0}")
        } else {
            format!("{s:.2e}")
        }
    };
    match &e.how {
        How::Interpolated => num(e.s),
        How::Extrapolated => format!("{} (extrap.)", num(e.s)),
        How::AtOrBelowSmallest => format!("≤ {}", num(e.s)),
        How::Beyond => format!("> {}", num(e.s)),
        How::Undefined(why) => format!("none ({why})"),
    }
}

/// Error vs s for one function at one mode: one panel per model; discretization (measured,
/// upper bound, lower-bound construction) in black, each format's precision error (markers) and
/// bound (solid) in its colour, a star where the two bounds meet (s*); scaled formats' bounds
/// dashed (per tensor or channel) or dotted (per block).
#[allow(clippy::too_many_arguments)]
pub fn sweep_figure(
    title: &str,
    f: &dyn Function,
    rows: &[Row],
    cross: &[Crossover],
    mode: &[i64],
    models: &[Model],
    formats: &[Format],
    scaled: &[ScaledFormat],
) -> LogLogFigure {
    let w = format!("w = {}", mode_string(mode));
    sweep_figure_axis(
        title,
        &x_label(f.dim()),
        &w,
        rows,
        cross,
        mode,
        models,
        formats,
        scaled,
    )
}

/// One precision series of a sweep figure: a plain format, or a scaled one (`format` its
/// element format, as in the rows).
#[derive(Clone, Copy, PartialEq)]
struct SeriesFormat {
    format: Format,
    scaled: Option<ScaledFormat>,
}

impl SeriesFormat {
    fn name(&self) -> String {
        self.scaled
            .map_or_else(|| self.format.name().to_string(), |sf| sf.to_string())
    }
    fn color(&self) -> RGBColor {
        self.scaled.map_or(format_color(self.format), scaled_color)
    }
    /// The bound's dash: solid for plain formats, dashed per tensor or channel, dotted per block.
    fn dash(&self) -> Dash {
        match self.scaled.map(|sf| sf.scaling) {
            None => Dash::Solid,
            Some(Scaling::Block { .. }) => Dash::Dotted,
            Some(_) => Dash::Dashed,
        }
    }
    fn of_row(&self, r: &Row) -> bool {
        r.format == self.format && r.scaled == self.scaled
    }
    fn of_crossover(&self, c: &Crossover) -> bool {
        c.format == self.format && c.scaled == self.scaled
    }
}

/// [`sweep_figure`] with a given x-axis label and mode label (the bases of src/basis: "N",
/// "nlat", "j:k = 3:2", "l:m = 2:0").
#[allow(clippy::too_many_arguments)]
pub fn sweep_figure_axis(
    title: &str,
    x_axis: &str,
    w: &str,
    rows: &[Row],
    cross: &[Crossover],
    mode: &[i64],
    models: &[Model],
    formats: &[Format],
    scaled: &[ScaledFormat],
) -> LogLogFigure {
    let mut fig = LogLogFigure::new(title);
    let series: Vec<SeriesFormat> = formats
        .iter()
        .map(|&format| SeriesFormat {
            format,
            scaled: None,
        })
        .chain(scaled.iter().map(|&sf| SeriesFormat {
            format: sf.elem,
            scaled: Some(sf),
        }))
        .collect();
    let disc: Vec<&Row> = rows
        .iter()
        .filter(|r| r.kind == Kind::Discretization && r.mode == mode)
        .collect();
    let y_label = format!("error of the coefficient at {w}");
    let mut off_chart: Vec<String> = Vec::new();
    let s_max = disc.iter().map(|r| r.s).max().unwrap_or(1) as f64;
    for &model in models {
        let mut p = Panel::new(model_title(model), x_axis, &y_label, 2);
        p.series.push(Series::line(
            BLACK,
            Dash::Solid,
            disc.iter()
                .filter(|r| r.bound.is_finite())
                .map(|r| (r.s as f64, r.bound))
                .collect(),
        ));
        p.series.push(Series::line(
            BLACK,
            Dash::Dashed,
            disc.iter()
                .filter_map(|r| r.lower_bound.map(|l| (r.s as f64, l)))
                .collect(),
        ));
        p.series.push(Series::markers(
            BLACK,
            Marker::Circle,
            disc.iter().map(|r| (r.s as f64, r.measured)).collect(),
        ));
        for fmt in &series {
            let prec: Vec<&Row> = rows
                .iter()
                .filter(|r| r.model == Some(model) && fmt.of_row(r) && r.mode == mode)
                .collect();
            precision_series(&mut p, &prec, fmt.color(), model_marker(model), fmt.dash());
            if let Some(c) = cross
                .iter()
                .find(|c| c.mode == mode && fmt.of_crossover(c) && c.model == model)
            {
                match c.bounds.located() {
                    Some(s) if s <= s_max => p.stars.push(Star {
                        x: s,
                        y: c.bounds.level,
                        color: fmt.color(),
                    }),
                    Some(_) => off_chart.push(format!(
                        "{} {}: {}",
                        fmt.name(),
                        model_short(model),
                        s_star_text(&c.bounds)
                    )),
                    None => {}
                }
            }
        }
        fig.panels.push(p);
    }
    if disc.iter().all(|r| !r.bound.is_finite()) {
        fig.notes.push(
            "No discretization upper bound: the function is not Lipschitz (L = ∞), so no s*."
                .into(),
        );
    }
    if disc.iter().all(|r| r.measured < fig.y_floor) {
        fig.notes.push(format!(
            "Discretization error below {} at every s (exact or f64 round-off): not drawn.",
            sup_power(10, fig.y_floor.log10().round() as i32)
        ));
    }
    // Exact results (error 0) have no place on log axes: say where they are instead.
    let mut zeros = Vec::new();
    for &model in models {
        for fmt in &series {
            let prec: Vec<&Row> = rows
                .iter()
                .filter(|r| r.model == Some(model) && fmt.of_row(r) && r.mode == mode)
                .collect();
            let z: Vec<usize> = prec
                .iter()
                .filter(|r| r.measured == 0.0)
                .map(|r| r.s)
                .collect();
            if z.is_empty() {
                continue;
            }
            let prefix = prec.iter().take(z.len()).all(|r| r.measured == 0.0);
            let at = if z.len() == prec.len() {
                "every s".to_string()
            } else if prefix {
                format!("s ≤ {}", z[z.len() - 1])
            } else {
                format!("{} sizes", z.len())
            };
            zeros.push(format!("{} {} at {at}", fmt.name(), model_short(model)));
        }
    }
    if !zeros.is_empty() {
        fig.notes.push(format!(
            "Precision error exactly 0 (samples exact in the format; not drawn): {}.",
            zeros.join("; ")
        ));
    }
    if !off_chart.is_empty() {
        fig.notes
            .push(format!("s* beyond the chart: {}.", off_chart.join("; ")));
    }
    fig.legend
        .push(LegendEntry::header(&format!("discretization, {w}")));
    fig.legend.push(LegendEntry::new(
        "measured",
        BLACK,
        Some(Marker::Circle),
        None,
    ));
    fig.legend.push(LegendEntry::new(
        "upper bound",
        BLACK,
        None,
        Some(Dash::Solid),
    ));
    fig.legend.push(LegendEntry::new(
        "lower-bound construction",
        BLACK,
        None,
        Some(Dash::Dashed),
    ));
    fig.legend
        .push(LegendEntry::header("precision, per format"));
    for fmt in &series {
        fig.legend.push(LegendEntry::new(
            &fmt.name(),
            fmt.color(),
            Some(Marker::Square),
            Some(fmt.dash()),
        ));
    }
    fig.legend.push(LegendEntry::header("symbols"));
    for &m in models {
        fig.legend.push(LegendEntry::new(
            &format!("measured, model {}", model_short(m)),
            GREY,
            Some(model_marker(m)),
            None,
        ));
    }
    fig.legend.push(LegendEntry::new(
        "upper bound",
        GREY,
        None,
        Some(Dash::Solid),
    ));
    fig.legend.push(LegendEntry::new(
        "s*: the bounds meet",
        GREY,
        Some(Marker::Star),
        None,
    ));
    if fig.panels.iter().any(|p| !p.overflow.is_empty()) {
        fig.legend.push(LegendEntry::new(
            "overflow (error inf)",
            GREY,
            Some(Marker::Cross),
            None,
        ));
    }
    fig
}

/// Several functions in one format, one panel per model: what a NumPy cast measures (model I)
/// beside true low-precision arithmetic (model III).
pub fn models_figure(
    title: &str,
    per_function: &[(String, Vec<Row>)],
    fmt: Format,
    models: &[Model],
    dim: usize,
) -> LogLogFigure {
    let mut fig = LogLogFigure::new(title);
    let mode = per_function
        .first()
        .and_then(|(_, rows)| rows.first())
        .map(|r| r.mode.clone())
        .unwrap_or_default();
    let y_label = format!("{fmt} precision error at w = {}", mode_string(&mode));
    for &model in models {
        let mut p = Panel::new(model_title(model), &x_label(dim), &y_label, 2);
        for (i, (_, rows)) in per_function.iter().enumerate() {
            let prec: Vec<&Row> = rows
                .iter()
                .filter(|r| r.model == Some(model) && r.format == fmt)
                .collect();
            precision_series(&mut p, &prec, palette(i), model_marker(model), Dash::Solid);
        }
        fig.panels.push(p);
    }
    fig.legend
        .push(LegendEntry::header(&format!("{fmt}, per function")));
    for (i, (label, _)) in per_function.iter().enumerate() {
        fig.legend.push(LegendEntry::new(
            label,
            palette(i),
            Some(Marker::Square),
            Some(Dash::Solid),
        ));
    }
    fig.legend.push(LegendEntry::header("symbols"));
    for &m in models {
        fig.legend.push(LegendEntry::new(
            &format!("measured, model {}", model_short(m)),
            GREY,
            Some(model_marker(m)),
            None,
        ));
    }
    fig.legend.push(LegendEntry::new(
        "upper bound",
        GREY,
        None,
        Some(Dash::Solid),
    ));
    if fig.panels.iter().any(|p| !p.overflow.is_empty()) {
        fig.legend.push(LegendEntry::new(
            "overflow (error inf)",
            GREY,
            Some(Marker::Cross),
            None,
        ));
    }
    fig
}

/// Precision error over all modes vs n: max and RMS over modes (markers), worst-case bound
/// (solid), RMS bound (dashed), probabilistic bound on the max (dotted, model I).
pub fn stats_figure(
    title: &str,
    rows: &[StatRow],
    formats: &[Format],
    models: &[Model],
) -> LogLogFigure {
    let mut fig = LogLogFigure::new(title);
    for &model in models {
        let mut p = Panel::new(
            model_title(model),
            "transform size n",
            "error over all n modes",
            2,
        );
        for &fmt in formats {
            let color = format_color(fmt);
            let pick = |st: Statistic| -> Vec<&StatRow> {
                rows.iter()
                    .filter(|r| r.model == model && r.format == fmt && r.statistic == st)
                    .collect()
            };
            let (mx, rms) = (pick(Statistic::Max), pick(Statistic::Rms));
            let pts = |rs: &[&StatRow], f: fn(&StatRow) -> f64| -> Vec<(f64, f64)> {
                rs.iter()
                    .map(|r| (r.n as f64, f(r)))
                    .filter(|(_, y)| y.is_finite())
                    .collect()
            };
            p.series
                .push(Series::line(color, Dash::Solid, pts(&mx, |r| r.bound)));
            p.series
                .push(Series::line(color, Dash::Dashed, pts(&rms, |r| r.bound)));
            if model == Model::Input {
                p.series.push(Series::line(
                    color,
                    Dash::Dotted,
                    pts(&mx, |r| r.prob_bound.unwrap_or(f64::NAN)),
                ));
            }
            p.series.push(Series::markers(
                color,
                Marker::Circle,
                pts(&mx, |r| r.measured),
            ));
            p.series
                .push(Series::markers(color, Marker::Square, pts(&rms, |r| r.measured)).hollow());
            p.overflow.extend(
                mx.iter()
                    .filter(|r| r.measured.is_infinite())
                    .map(|r| (r.n as f64, color)),
            );
        }
        fig.panels.push(p);
    }
    let trials = rows.first().map_or(0, |r| r.trials);
    let input = rows.first().map_or(String::new(), |r| r.input.clone());
    fig.legend.push(LegendEntry::header("format"));
    for &fmt in formats {
        fig.legend.push(LegendEntry::new(
            fmt.name(),
            format_color(fmt),
            Some(Marker::Square),
            None,
        ));
    }
    fig.legend.push(LegendEntry::header("statistic"));
    fig.legend.push(LegendEntry::new(
        "max over modes",
        GREY,
        Some(Marker::Circle),
        None,
    ));
    fig.legend
        .push(LegendEntry::new("RMS over modes", GREY, Some(Marker::Square), None).hollow());
    fig.legend.push(LegendEntry::new(
        "worst-case bound",
        GREY,
        None,
        Some(Dash::Solid),
    ));
    fig.legend.push(LegendEntry::new(
        "RMS bound (Parseval)",
        GREY,
        None,
        Some(Dash::Dashed),
    ));
    if models.contains(&Model::Input) {
        fig.legend.push(LegendEntry::new(
            "probabilistic, max (I)",
            GREY,
            None,
            Some(Dash::Dotted),
        ));
    }
    if fig.panels.iter().any(|p| !p.overflow.is_empty()) {
        fig.legend.push(LegendEntry::new(
            "overflow (error inf)",
            GREY,
            Some(Marker::Cross),
            None,
        ));
    }
    fig.notes.push(format!(
        "Input: {input}, {trials} trials per n; max: largest over trials, RMS: over modes and trials."
    ));
    fig
}

fn find(cs: &[Crossover], fmt: Format, model: Model) -> Option<&Crossover> {
    cs.iter().find(|c| c.format == fmt && c.model == model)
}

/// log2 s* for a bar: located crossings and "at or below the smallest s" (drawn at s_min).
fn bar_value(e: &Estimate) -> Option<f64> {
    match e.how {
        How::Interpolated | How::Extrapolated | How::AtOrBelowSmallest => Some(e.s.log2()),
        _ => None,
    }
}

/// Grouped bar chart of log2 s* (from the bounds) per function and format, one panel per model,
/// with a dot at the measured s*.
pub fn crossover_figure(
    title: &str,
    labels: &[String],
    per_function: &[(String, Vec<Crossover>)],
    formats: &[Format],
    models: &[Model],
) -> BarChart {
    let panels = models
        .iter()
        .map(|&model| BarPanel {
            title: model_title(model).into(),
            categories: labels.to_vec(),
            groups: formats
                .iter()
                .map(|&fmt| {
                    let cs: Vec<Option<&Crossover>> = per_function
                        .iter()
                        .map(|(_, cs)| find(cs, fmt, model))
                        .collect();
                    BarGroup {
                        label: fmt.name().into(),
                        color: format_color(fmt),
                        values: cs
                            .iter()
                            .map(|c| c.and_then(|c| bar_value(&c.bounds)))
                            .collect(),
                        missing: cs
                            .iter()
                            .map(|c| match c.map(|c| &c.bounds.how) {
                                Some(How::Beyond) => "beyond".to_string(),
                                _ => "none".to_string(),
                            })
                            .collect(),
                        marks: cs
                            .iter()
                            .map(|c| c.and_then(|c| bar_value(&c.measured)))
                            .collect(),
                    }
                })
                .collect(),
        })
        .collect();
    BarChart {
        title: title.into(),
        y_label: "crossover s* (log scale)".into(),
        panels,
        mark_label: "measured s*".into(),
        y_pow2: true,
        notes: vec![
            "Bars: s* where the discretization upper bound meets the precision bound \
             (interpolated, or extrapolated with D ~ 1/s past the largest s)."
                .into(),
            "Dots: where the measured errors meet; no dot: they do not meet within the tested sizes; \
             dots at 2³: already at the smallest s."
                .into(),
            "none: no finite bound (not Lipschitz, or no finite precision bound); beyond: the \
             bounds do not meet within the tested sizes."
                .into(),
        ],
        legend_width: 210,
    }
}

/// The crossover table as markdown: one row per function and format, two columns per model.
pub fn crossover_markdown(
    title: &str,
    labels: &[String],
    per_function: &[(String, Vec<Crossover>)],
    formats: &[Format],
    models: &[Model],
) -> String {
    let mut s = format!("# {title}\n\n");
    s.push_str(
        "s* is the grid size where the discretization error meets the precision error. \
         \"bounds\": where the discretization upper bound meets the precision bound \
         (interpolated between tested sizes in log-log, or extrapolated with D ~ 1/s and the \
         precision bound at the largest s); \"measured\": where the measured errors meet \
         (interpolated). \"≤ s\": already at the smallest size; \"> s\": not within the tested \
         sizes; \"none\": no finite bound.\n\n",
    );
    s.push_str("| function | format |");
    for &m in models {
        s.push_str(&format!(
            " s* bounds ({}) | s* measured ({}) |",
            model_short(m),
            model_short(m)
        ));
    }
    s.push_str("\n|---|---|");
    for _ in models {
        s.push_str("---|---|");
    }
    s.push('\n');
    for (label, (_, cs)) in labels.iter().zip(per_function) {
        for &fmt in formats {
            s.push_str(&format!("| {label} | {fmt} |"));
            for &m in models {
                match find(cs, fmt, m) {
                    Some(c) => s.push_str(&format!(
                        " {} | {} |",
                        s_star_text(&c.bounds),
                        s_star_text(&c.measured)
                    )),
                    None => s.push_str(" | |"),
                }
            }
            s.push('\n');
        }
    }
    s
}
