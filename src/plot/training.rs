//! Figures of training runs: bars with one y scale per panel (error, time, memory per run) and
//! line panels over epochs or resolutions (linear or log2 x, log10 y).

use super::loglog::{LegendEntry, Marker, draw_legend, draw_marker, draw_notes};
use super::{Draw, FONT, TickAxis};
use plotters::coord::Shift;
use plotters::prelude::*;

/// One bar per category (run); each panel has its own linear y axis from 0.
#[derive(Clone, Debug)]
pub struct BarsPanel {
    pub title: String,
    pub y_label: String,
    /// Bar height per category; None or non-finite: the `missing` text is drawn instead.
    pub values: Vec<Option<f64>>,
    /// Text at the base of a bar without a value (e.g. "overflow").
    pub missing: Vec<String>,
    /// Digits after the decimal point of the value printed above each bar.
    pub decimals: usize,
}

impl BarsPanel {
    /// A panel whose bars without a value show `missing` (one text per category).
    pub fn new(
        title: &str,
        y_label: &str,
        values: Vec<Option<f64>>,
        missing: &[String],
        decimals: usize,
    ) -> Self {
        BarsPanel {
            title: title.into(),
            y_label: y_label.into(),
            values,
            missing: missing.to_vec(),
            decimals,
        }
    }
}

/// Panels of bars side by side over the same categories, one colour per category.
#[derive(Clone, Debug)]
pub struct BarsFigure {
    pub title: String,
    pub categories: Vec<String>,
    pub colors: Vec<RGBColor>,
    pub panels: Vec<BarsPanel>,
    /// Legend rows (category descriptions) and sentences below them.
    pub legend: Vec<LegendEntry>,
    pub notes: Vec<String>,
    pub legend_width: u32,
}

/// "Nice" tick values 0, step, 2 step, ... covering [0, hi].
fn linear_ticks(hi: f64) -> (f64, Vec<f64>) {
    let hi = if hi > 0.0 && hi.is_finite() { hi } else { 1.0 };
    let raw = hi / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let top = (hi / step).ceil() * step;
    let n = (top / step).round() as usize;
    (top, (0..=n).map(|k| k as f64 * step).collect())
}

/// Tick label of a linear axis: as few decimals as the step needs.
fn tick_label(v: f64, step: f64) -> String {
    let d = if step >= 1.0 {
        0
    } else {
        (-step.log10()).ceil().max(0.0) as usize + 1
    };
    let s = format!("{v:.d$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn draw_bars_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    fig: &BarsFigure,
    p: &BarsPanel,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let n = fig.categories.len().max(1);
    let hi = p
        .values
        .iter()
        .flatten()
        .filter(|v| v.is_finite())
        .fold(0.0f64, |a, &b| a.max(b));
    // Room above the tallest bar for its value label.
    let (top, ticks) = linear_ticks(hi * 1.12);
    let step = ticks.get(1).copied().unwrap_or(top);
    let cats = fig.categories.clone();
    let xfmt = move |v: &f64| cats.get(v.round() as usize).cloned().unwrap_or_default();
    let yfmt = move |v: &f64| tick_label(*v, step);
    // Category labels shrink when they would run into each other (DejaVu Sans: about 0.55 em
    // a character).
    let (w, _) = area.dim_in_pixel();
    let longest = fig
        .categories
        .iter()
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(1) as f64;
    let per_cat = (w as f64 - 80.0) / n as f64;
    let x_font = (per_cat / (0.55 * longest)).clamp(9.0, 13.0) as u32;
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, (FONT, 17).into_font().style(FontStyle::Bold))
        .margin(8)
        .x_label_area_size(34)
        .y_label_area_size(58)
        .build_cartesian_2d(
            TickAxis::new(-0.6, n as f64 - 0.4, (0..n).map(|i| i as f64).collect()),
            TickAxis::new(0.0, top, ticks),
        )?;
    chart
        .configure_mesh()
        .y_desc(&p.y_label)
        .x_label_formatter(&xfmt)
        .y_label_formatter(&yfmt)
        .x_label_style((FONT, x_font))
        .y_label_style((FONT, 13))
        .axis_desc_style((FONT, 15))
        .disable_x_mesh()
        .bold_line_style(RGBColor(225, 225, 225))
        .light_line_style(TRANSPARENT)
        .draw()?;
    let value_style = (FONT, 11).into_font().color(&BLACK);
    let missing_style = (FONT, 12)
        .into_font()
        .transform(FontTransform::Rotate270)
        .color(&RGBColor(200, 0, 0));
    for (i, v) in p.values.iter().enumerate() {
        let color = fig.colors.get(i).copied().unwrap_or(BLACK);
        let (x0, x1) = (i as f64 - 0.38, i as f64 + 0.38);
        match v.filter(|v| v.is_finite()) {
            Some(v) => {
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x0, 0.0), (x1, v)],
                    color.filled(),
                )))?;
                let label = format!("{v:.*}", p.decimals);
                // About 6 px a character at 11 px: centre the label just above the bar.
                let w = 3 * label.len() as i32;
                chart.draw_series(std::iter::once(
                    EmptyElement::at((i as f64, v))
                        + Text::new(label, (-w, -14), value_style.clone()),
                ))?;
            }
            None => {
                let text = p.missing.get(i).cloned().unwrap_or_default();
                chart.draw_series(std::iter::once(
                    EmptyElement::at((i as f64, 0.0))
                        + Text::new(text, (-6, -6), missing_style.clone()),
                ))?;
            }
        }
    }
    Ok(())
}

impl Draw for BarsFigure {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let (plots, legend) = super::frame(root, &self.title, 20, self.legend_width)?;
        let rows = self.panels.len().div_ceil(2).max(1);
        let cols = if self.panels.len() > 1 { 2 } else { 1 };
        let areas = plots.split_evenly((rows, cols));
        for (p, a) in self.panels.iter().zip(&areas) {
            draw_bars_panel(a, self, p)?;
        }
        let y = draw_legend(&legend, &self.legend, 30)?;
        draw_notes(&legend, &self.notes, y + 10)
    }
}

/// One curve: a label index into the legend's colours, points (x, y); points with a
/// non-finite or non-positive y are left out (the caller says why in a note).
#[derive(Clone, Debug)]
pub struct Curve {
    pub color: RGBColor,
    pub marker: Marker,
    pub points: Vec<(f64, f64)>,
}

/// A panel of curves with log10 y; x linear (epochs) or log2 (resolutions).
#[derive(Clone, Debug)]
pub struct CurvesPanel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log2_x: bool,
    pub curves: Vec<Curve>,
}

/// Curve panels side by side, each with its own y range, and one legend.
#[derive(Clone, Debug)]
pub struct CurvesFigure {
    pub title: String,
    pub panels: Vec<CurvesPanel>,
    pub legend: Vec<LegendEntry>,
    pub notes: Vec<String>,
    pub legend_width: u32,
}

/// Ticks of a log10 axis over [lo, hi] (log10 units): 1, 2, 5 x 10^k inside the range.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut t = Vec::new();
    for k in (lo.floor() as i32 - 1)..=(hi.ceil() as i32) {
        for m in [1.0f64, 2.0, 5.0] {
            let v = (m * 10f64.powi(k)).log10();
            if v >= lo && v <= hi {
                t.push(v);
            }
        }
    }
    t
}

/// A decimal label of 10^v without trailing zeros ("0.05", "2", "1e-05" for tiny values).
fn log_label(v: f64) -> String {
    let x = 10f64.powf(v);
    if !(1e-4..1e5).contains(&x) {
        return format!("{x:.0e}");
    }
    let d = (-(x.log10().floor())).max(0.0) as usize;
    let s = format!("{x:.d$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn draw_curves_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    p: &CurvesPanel,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let xmap = |x: f64| if p.log2_x { x.log2() } else { x };
    let pts: Vec<(f64, f64)> = p
        .curves
        .iter()
        .flat_map(|c| c.points.iter())
        .filter(|(x, y)| x.is_finite() && y.is_finite() && *y > 0.0 && (*x > 0.0 || !p.log2_x))
        .map(|&(x, y)| (xmap(x), y.log10()))
        .collect();
    let (mut xlo, mut xhi, mut ylo, mut yhi) = pts.iter().fold(
        (
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ),
        |(a, b, c, d), &(x, y)| (a.min(x), b.max(x), c.min(y), d.max(y)),
    );
    if !xlo.is_finite() {
        (xlo, xhi, ylo, yhi) = (0.0, 1.0, -2.0, 0.0);
    }
    // At least a factor 2 of y range so ticks exist; pad both axes.
    let mid = 0.5 * (ylo + yhi);
    let half = (0.5 * (yhi - ylo)).max(0.16) * 1.1;
    let (ylo, yhi) = (mid - half, mid + half);
    let xpad = ((xhi - xlo) * 0.05).max(0.3);
    // Integer ticks, every 1, 2 or 5 x 10^k so that at most about 8 are drawn.
    let span = (xhi - xlo) / 8.0;
    let step = [1i64, 2, 5]
        .iter()
        .flat_map(|&m| (0..12).map(move |k| m * 10i64.pow(k)))
        .filter(|&t| t as f64 >= span)
        .min()
        .unwrap_or(1);
    let xticks: Vec<f64> = ((xlo.floor() as i64).div_euclid(step)
        ..=(xhi.ceil() as i64).div_euclid(step) + 1)
        .map(|k| (k * step) as f64)
        .filter(|k| *k >= xlo - 1e-9 && *k <= xhi + 1e-9)
        .collect();
    let log2 = p.log2_x;
    let xfmt = move |v: &f64| {
        if log2 {
            format!("{}", 2f64.powf(*v).round())
        } else {
            format!("{}", v.round())
        }
    };
    let yfmt = |v: &f64| log_label(*v);
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, (FONT, 17).into_font().style(FontStyle::Bold))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(62)
        .build_cartesian_2d(
            TickAxis::new(xlo - xpad, xhi + xpad, xticks),
            TickAxis::new(ylo, yhi, log_ticks(ylo, yhi)),
        )?;
    chart
        .configure_mesh()
        .x_desc(&p.x_label)
        .y_desc(&p.y_label)
        .x_label_formatter(&xfmt)
        .y_label_formatter(&yfmt)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 15))
        .bold_line_style(RGBColor(225, 225, 225))
        .light_line_style(TRANSPARENT)
        .draw()?;
    for c in &p.curves {
        let pts: Vec<(f64, f64)> = c
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite() && *y > 0.0 && (*x > 0.0 || !log2))
            .map(|&(x, y)| (xmap(x), y.log10()))
            .collect();
        chart.draw_series(std::iter::once(PathElement::new(
            pts.clone(),
            c.color.stroke_width(2),
        )))?;
        for q in pts {
            draw_marker(chart.plotting_area(), q, c.marker, c.color, true, 4)?;
        }
    }
    Ok(())
}

impl Draw for CurvesFigure {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let (plots, legend) = super::frame(root, &self.title, 20, self.legend_width)?;
        let areas = plots.split_evenly((1, self.panels.len().max(1)));
        for (p, a) in self.panels.iter().zip(&areas) {
            draw_curves_panel(a, p)?;
        }
        let y = draw_legend(&legend, &self.legend, 30)?;
        draw_notes(&legend, &self.notes, y + 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_cover_the_range_with_round_steps() {
        let (top, t) = linear_ticks(0.067);
        assert!((0.067..=0.1).contains(&top), "{top}");
        assert_eq!(t[0], 0.0);
        assert!((t[1] - 0.02).abs() < 1e-12, "{t:?}");
        assert_eq!(tick_label(0.04, 0.02), "0.04");
        assert_eq!(tick_label(150.0, 50.0), "150");
        let lt = log_ticks(-1.5, -0.9);
        assert_eq!(lt.len(), 2, "{lt:?}"); // 0.05 and 0.1
        assert_eq!(log_label(0.05f64.log10()), "0.05");
        assert_eq!(log_label(2f64.log10()), "2");
    }
}
