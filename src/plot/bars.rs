//! Grouped bar charts: one group of bars per category, one colour per series, panels side by side.

use super::loglog::{LegendEntry, Marker, draw_legend, draw_marker, draw_notes};
use super::{Draw, FONT, TickAxis, sup_power};
use plotters::coord::Shift;
use plotters::prelude::*;

/// One series of bars (one bar per category) and optional marks drawn on the bars.
#[derive(Clone, Debug)]
pub struct BarGroup {
    pub label: String,
    pub color: RGBColor,
    /// Bar height per category.
    pub values: Vec<Option<f64>>,
    /// Text drawn (rotated) at the base where a value is None or not finite, e.g. "none".
    pub missing: Vec<String>,
    /// A black dot per category (e.g. a measured value beside a bound-derived bar).
    pub marks: Vec<Option<f64>>,
}

/// One panel: categories along x, groups of bars.
#[derive(Clone, Debug)]
pub struct BarPanel {
    pub title: String,
    pub categories: Vec<String>,
    pub groups: Vec<BarGroup>,
}

/// Grouped bar chart; y is linear in the bar values. With `y_pow2` the tick labels read 2^k
/// (values are log2 of something, e.g. log2 s*).
#[derive(Clone, Debug)]
pub struct BarChart {
    pub title: String,
    pub y_label: String,
    pub panels: Vec<BarPanel>,
    /// Legend text of the marks (empty: no marks row).
    pub mark_label: String,
    pub y_pow2: bool,
    /// Sentences below the legend (what bars, marks and missing texts mean).
    pub notes: Vec<String>,
    pub legend_width: u32,
}

impl BarChart {
    fn y_max(&self) -> f64 {
        self.panels
            .iter()
            .flat_map(|p| &p.groups)
            .flat_map(|g| g.values.iter().chain(&g.marks))
            .filter_map(|v| *v)
            .filter(|v| v.is_finite())
            .fold(1.0f64, f64::max)
    }
}

fn draw_bar_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    c: &BarChart,
    p: &BarPanel,
    ymax: f64,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let ncat = p.categories.len().max(1);
    let yticks: Vec<f64> = {
        let top = ymax.ceil() as i32;
        let step = (top / 10 + 1).max(1);
        (0..=top).filter(|k| k % step == 0).map(f64::from).collect()
    };
    let xticks: Vec<f64> = (0..ncat).map(|i| i as f64).collect();
    let cats = p.categories.clone();
    let pow2 = c.y_pow2;
    let xfmt = move |v: &f64| cats.get(v.round() as usize).cloned().unwrap_or_default();
    let yfmt = move |v: &f64| {
        if pow2 {
            sup_power(2, v.round() as i32)
        } else {
            format!("{v}")
        }
    };
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, (FONT, 19).into_font().style(FontStyle::Bold))
        .margin(8)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(
            TickAxis::new(-0.5, ncat as f64 - 0.5, xticks),
            TickAxis::new(0.0, ymax * 1.08, yticks),
        )?;
    chart
        .configure_mesh()
        .y_desc(&c.y_label)
        .x_label_formatter(&xfmt)
        .y_label_formatter(&yfmt)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .disable_x_mesh()
        .bold_line_style(RGBColor(225, 225, 225))
        .light_line_style(TRANSPARENT)
        .draw()?;
    let ng = p.groups.len().max(1) as f64;
    let width = 0.8 / ng;
    for (gi, g) in p.groups.iter().enumerate() {
        let x_of = |ci: usize| ci as f64 - 0.4 + width * gi as f64;
        chart.draw_series(g.values.iter().enumerate().filter_map(|(ci, v)| {
            v.filter(|v| v.is_finite()).map(|v| {
                Rectangle::new(
                    [(x_of(ci), 0.0), (x_of(ci) + width * 0.9, v)],
                    g.color.filled(),
                )
            })
        }))?;
        for (ci, v) in g.marks.iter().enumerate() {
            if let Some(v) = v.filter(|v| v.is_finite()) {
                let c = (x_of(ci) + width * 0.45, v);
                draw_marker(chart.plotting_area(), c, Marker::Circle, BLACK, true, 3)?;
            }
        }
        let missing_style = (FONT, 12)
            .into_font()
            .transform(FontTransform::Rotate270)
            .color(&g.color);
        for (ci, v) in g.values.iter().enumerate() {
            let text = g.missing.get(ci).filter(|t| !t.is_empty());
            if let (true, Some(text)) = (v.is_none_or(|v| !v.is_finite()), text) {
                chart.draw_series(std::iter::once(Text::new(
                    text.clone(),
                    (x_of(ci) + width * 0.15, ymax * 0.01 + 1.6),
                    missing_style.clone(),
                )))?;
            }
        }
    }
    Ok(())
}

impl Draw for BarChart {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let (plots, legend_area) = super::frame(root, &self.title, 22, self.legend_width)?;
        let ymax = self.y_max();
        let areas = plots.split_evenly((1, self.panels.len().max(1)));
        for (p, a) in self.panels.iter().zip(&areas) {
            draw_bar_panel(a, self, p, ymax)?;
        }
        // Groups are the same in every panel: the legend lists the first panel's.
        let mut legend: Vec<LegendEntry> = self
            .panels
            .first()
            .map(|p| {
                p.groups
                    .iter()
                    .map(|g| LegendEntry::new(&g.label, g.color, Some(Marker::Square), None))
                    .collect()
            })
            .unwrap_or_default();
        if !self.mark_label.is_empty() {
            legend.push(LegendEntry::new(
                &self.mark_label,
                BLACK,
                Some(Marker::Circle),
                None,
            ));
        }
        let y = draw_legend(&legend_area, &legend, 40)?;
        draw_notes(&legend_area, &self.notes, y + 10)
    }
}
