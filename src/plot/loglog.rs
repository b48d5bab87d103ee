//! Log-log panels of error versus resolution, side by side, with one legend on the right.

use super::{Draw, FONT, TickAxis, sup_power};
use plotters::coord::CoordTranslate;
use plotters::coord::Shift;
use plotters::prelude::*;

/// Marker shapes (measurements, crossovers, overflow marks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    Circle,
    Triangle,
    Square,
    Diamond,
    /// A triangle pointing down (model G).
    InvTriangle,
    /// A five-pointed star, bigger than the others (crossovers).
    Star,
    /// A diagonal cross (range failures: the measurement is inf).
    Cross,
}

/// Line styles: upper bounds solid, lower-bound constructions dashed, references dotted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dash {
    Solid,
    Dashed,
    Dotted,
}

/// One data series of a panel. Points with a non-finite or non-positive coordinate cannot be shown
/// on log axes and are left out (the caller says why in a panel note when it matters).
#[derive(Clone, Debug)]
pub struct Series {
    pub color: RGBColor,
    /// Draw a marker at every point.
    pub marker: Option<Marker>,
    /// Filled marker (false: outline only).
    pub filled: bool,
    /// Join the points with a line.
    pub line: Option<Dash>,
    /// (x, y) in data units, both > 0.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// Markers only.
    pub fn markers(color: RGBColor, marker: Marker, points: Vec<(f64, f64)>) -> Self {
        Series {
            color,
            marker: Some(marker),
            filled: true,
            line: None,
            points,
        }
    }
    /// A line only.
    pub fn line(color: RGBColor, dash: Dash, points: Vec<(f64, f64)>) -> Self {
        Series {
            color,
            marker: None,
            filled: true,
            line: Some(dash),
            points,
        }
    }
    /// Outline markers instead of filled ones.
    pub fn hollow(mut self) -> Self {
        self.filled = false;
        self
    }
}

/// A crossover mark: a star at (x, y) in data units.
#[derive(Clone, Debug)]
pub struct Star {
    pub x: f64,
    pub y: f64,
    pub color: RGBColor,
}

/// One log-log panel.
#[derive(Clone, Debug)]
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Base of the x tick labels (2: s = 2^k; 10).
    pub x_base: u32,
    pub series: Vec<Series>,
    pub stars: Vec<Star>,
    /// x positions (data units) and colours of measurements that overflowed (inf): drawn as
    /// crosses along the top edge, since inf has no place on the axis.
    pub overflow: Vec<(f64, RGBColor)>,
    /// Short text lines drawn in the lower left corner of the plot area.
    pub notes: Vec<String>,
}

impl Panel {
    pub fn new(title: &str, x_label: &str, y_label: &str, x_base: u32) -> Self {
        Panel {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            x_base,
            series: Vec::new(),
            stars: Vec::new(),
            overflow: Vec::new(),
            notes: Vec::new(),
        }
    }
}

/// One legend row: a sample (marker and/or line) and its text; a row with neither is a bold header.
#[derive(Clone, Debug)]
pub struct LegendEntry {
    pub label: String,
    pub color: RGBColor,
    pub marker: Option<Marker>,
    pub filled: bool,
    pub line: Option<Dash>,
}

impl LegendEntry {
    /// A bold header row.
    pub fn header(label: &str) -> Self {
        LegendEntry {
            label: label.into(),
            color: BLACK,
            marker: None,
            filled: true,
            line: None,
        }
    }
    /// A row with a sample.
    pub fn new(label: &str, color: RGBColor, marker: Option<Marker>, line: Option<Dash>) -> Self {
        LegendEntry {
            label: label.into(),
            color,
            marker,
            filled: true,
            line,
        }
    }
    /// Outline marker in the sample.
    pub fn hollow(mut self) -> Self {
        self.filled = false;
        self
    }
}

/// Panels side by side sharing one y range (so they compare), a title and a legend.
#[derive(Clone, Debug)]
pub struct LogLogFigure {
    pub title: String,
    pub panels: Vec<Panel>,
    pub legend: Vec<LegendEntry>,
    /// Lower limit of the y axis (data units): values below it (f64 round-off, exact zeros
    /// computed as 1e-20) would stretch the axis without telling anything.
    pub y_floor: f64,
    /// Legend column width in pixels.
    pub legend_width: u32,
    /// Sentences drawn below the legend (wrapped to its width): what is not drawn, and why.
    pub notes: Vec<String>,
}

impl LogLogFigure {
    pub fn new(title: &str) -> Self {
        LogLogFigure {
            title: title.into(),
            panels: Vec::new(),
            legend: Vec::new(),
            y_floor: 1e-18,
            legend_width: 230,
            notes: Vec::new(),
        }
    }

    /// x range (log_base units) per panel and the shared y range (log10 units), padded.
    fn ranges(&self) -> (Vec<(f64, f64)>, (f64, f64)) {
        let (mut ylo, mut yhi) = (f64::INFINITY, f64::NEG_INFINITY);
        let mut xr = Vec::new();
        for p in &self.panels {
            let lb = (p.x_base as f64).ln();
            let (mut xlo, mut xhi) = (f64::INFINITY, f64::NEG_INFINITY);
            let pts = p
                .series
                .iter()
                .flat_map(|s| s.points.iter().copied())
                .chain(p.stars.iter().map(|s| (s.x, s.y)));
            for (x, y) in pts {
                if !(x > 0.0 && x.is_finite() && y.is_finite() && y >= self.y_floor) {
                    continue;
                }
                xlo = xlo.min(x.ln() / lb);
                xhi = xhi.max(x.ln() / lb);
                ylo = ylo.min(y.log10());
                yhi = yhi.max(y.log10());
            }
            for &(x, _) in &p.overflow {
                xlo = xlo.min(x.ln() / lb);
                xhi = xhi.max(x.ln() / lb);
            }
            if !xlo.is_finite() {
                (xlo, xhi) = (0.0, 1.0);
            }
            xr.push((xlo.floor() - 0.3, xhi.ceil() + 0.3));
        }
        // Panels of one figure compare at equal s: one x range for all (same base assumed).
        let lo = xr.iter().map(|r| r.0).fold(f64::INFINITY, f64::min);
        let hi = xr.iter().map(|r| r.1).fold(f64::NEG_INFINITY, f64::max);
        let xr = xr.iter().map(|_| (lo, hi)).collect();
        if !ylo.is_finite() {
            (ylo, yhi) = (-1.0, 0.0);
        }
        // Room above the data for the overflow crosses.
        (xr, (ylo.floor() - 0.2, yhi.ceil() + 0.6))
    }
}

/// Draw a marker at `c` (in the area's coordinates), `r` pixels in radius.
pub(crate) fn draw_marker<DB: DrawingBackend, CT: CoordTranslate>(
    area: &DrawingArea<DB, CT>,
    c: CT::From,
    m: Marker,
    color: RGBColor,
    filled: bool,
    r: i32,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    CT::From: Clone,
{
    let style = if filled {
        color.filled()
    } else {
        color.stroke_width(2)
    };
    let poly = |pts: Vec<(i32, i32)>| {
        if filled {
            area.draw(&(EmptyElement::at(c.clone()) + Polygon::new(pts, style)))
        } else {
            let mut closed = pts.clone();
            closed.push(pts[0]);
            area.draw(&(EmptyElement::at(c.clone()) + PathElement::new(closed, style)))
        }
    };
    match m {
        Marker::Circle => area.draw(&(EmptyElement::at(c.clone()) + Circle::new((0, 0), r, style))),
        Marker::Square => poly(vec![(-r, -r), (r, -r), (r, r), (-r, r)]),
        Marker::Diamond => {
            let q = r + r / 3;
            poly(vec![(0, -q), (q, 0), (0, q), (-q, 0)])
        }
        Marker::Triangle => {
            let q = r + r / 3;
            poly(vec![(0, -q), (q, q * 3 / 4), (-q, q * 3 / 4)])
        }
        Marker::InvTriangle => {
            let q = r + r / 3;
            poly(vec![(0, q), (q, -q * 3 / 4), (-q, -q * 3 / 4)])
        }
        Marker::Star => {
            let (ro, ri) = (2.0 * r as f64, 0.9 * r as f64);
            let mut pts: Vec<(i32, i32)> = (0..10)
                .map(|i| {
                    let a = std::f64::consts::PI * (i as f64 / 5.0 - 0.5);
                    let rad = if i % 2 == 0 { ro } else { ri };
                    (
                        (rad * a.cos()).round() as i32,
                        (rad * a.sin()).round() as i32,
                    )
                })
                .collect();
            area.draw(&(EmptyElement::at(c.clone()) + Polygon::new(pts.clone(), color.filled())))?;
            // Black edge so a star stays visible on a line of its own colour.
            pts.push(pts[0]);
            area.draw(&(EmptyElement::at(c.clone()) + PathElement::new(pts, BLACK.stroke_width(1))))
        }
        Marker::Cross => area.draw(
            &(EmptyElement::at(c.clone())
                + PathElement::new(vec![(-r, -r), (r, r)], color.stroke_width(2))
                + PathElement::new(vec![(-r, r), (r, -r)], color.stroke_width(2))),
        ),
    }
}

/// Pixel (dash, gap) lengths of a line style.
pub(crate) fn dash_pattern(d: Dash) -> Option<(i32, i32)> {
    match d {
        Dash::Solid => None,
        Dash::Dashed => Some((9, 6)),
        Dash::Dotted => Some((2, 5)),
    }
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    p: &Panel,
    xr: (f64, f64),
    yr: (f64, f64),
    y_floor: f64,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let lb = (p.x_base as f64).ln();
    let xticks: Vec<f64> = {
        let (a, b) = (xr.0.ceil() as i32, xr.1.floor() as i32);
        // At most ~8 labels: every k-th power.
        let step = ((b - a) / 8 + 1).max(1);
        (a..=b)
            .filter(|k| (k - a) % step == 0)
            .map(f64::from)
            .collect()
    };
    let yticks: Vec<f64> = {
        let (a, b) = (yr.0.ceil() as i32, yr.1.floor() as i32);
        let step = ((b - a) / 10 + 1).max(1);
        (a..=b).filter(|k| k % step == 0).map(f64::from).collect()
    };
    let base = p.x_base;
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, (FONT, 19).into_font().style(FontStyle::Bold))
        .margin(8)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(
            TickAxis::new(xr.0, xr.1, xticks),
            TickAxis::new(yr.0, yr.1, yticks),
        )?;
    let xfmt = move |v: &f64| sup_power(base, v.round() as i32);
    let yfmt = |v: &f64| sup_power(10, v.round() as i32);
    chart
        .configure_mesh()
        .x_desc(&p.x_label)
        .y_desc(&p.y_label)
        .x_label_formatter(&xfmt)
        .y_label_formatter(&yfmt)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 16))
        .bold_line_style(RGBColor(225, 225, 225))
        .light_line_style(TRANSPARENT)
        .draw()?;

    let to_log = |(x, y): (f64, f64)| -> Option<(f64, f64)> {
        (x > 0.0 && x.is_finite() && y.is_finite() && y >= y_floor)
            .then(|| (x.ln() / lb, y.log10()))
    };
    for s in &p.series {
        let pts: Vec<(f64, f64)> = s.points.iter().copied().filter_map(to_log).collect();
        if let Some(d) = s.line {
            let style = s.color.stroke_width(2);
            match dash_pattern(d) {
                None => {
                    chart.draw_series(LineSeries::new(pts.clone(), style))?;
                }
                Some((len, gap)) => {
                    chart.draw_series(DashedLineSeries::new(pts.clone(), len, gap, style))?;
                }
            }
        }
        if let Some(m) = s.marker {
            for &c in &pts {
                draw_marker(chart.plotting_area(), c, m, s.color, s.filled, 4)?;
            }
        }
    }
    let plot = chart.plotting_area();
    for st in &p.stars {
        if let Some(c) = to_log((st.x, st.y)) {
            draw_marker(plot, c, Marker::Star, st.color, true, 5)?;
        }
    }
    let top = yr.1 - 0.3;
    for &(x, col) in p.overflow.iter().filter(|(x, _)| *x > 0.0) {
        draw_marker(plot, (x.ln() / lb, top), Marker::Cross, col, true, 4)?;
    }
    let (px0, py1) = plot.get_pixel_range();
    let (x0, y1) = (px0.start, py1.end);
    let abs = area.get_base_pixel();
    for (i, note) in p.notes.iter().rev().enumerate() {
        area.draw_text(
            note,
            &(FONT, 14).into_text_style(area),
            (x0 - abs.0 + 6, y1 - abs.1 - 20 - 17 * i as i32),
        )?;
    }
    Ok(())
}

/// Split `text` into lines of at most `width` characters at spaces.
pub(crate) fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Draw a legend column: one row per entry, 21 px apart. Returns the y below the last row.
pub(crate) fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry],
    top: i32,
) -> Result<i32, DrawingAreaErrorKind<DB::ErrorType>> {
    let mut y = top;
    for e in entries {
        let sample = e.marker.is_some() || e.line.is_some();
        if !sample {
            y += 6;
            area.draw_text(
                &e.label,
                &(FONT, 15)
                    .into_font()
                    .style(FontStyle::Bold)
                    .into_text_style(area),
                (4, y - 8),
            )?;
            y += 21;
            continue;
        }
        let (x0, x1) = (6, 40);
        if let Some(d) = e.line {
            let style = e.color.stroke_width(2);
            match dash_pattern(d) {
                None => area.draw(&PathElement::new(vec![(x0, y), (x1, y)], style))?,
                Some((len, gap)) => {
                    let mut x = x0;
                    while x < x1 {
                        let xe = (x + len).min(x1);
                        area.draw(&PathElement::new(vec![(x, y), (xe, y)], style))?;
                        x += len + gap;
                    }
                }
            }
        }
        if let Some(m) = e.marker {
            let r = if m == Marker::Star { 5 } else { 4 };
            draw_marker(area, ((x0 + x1) / 2, y), m, e.color, e.filled, r)?;
        }
        area.draw_text(&e.label, &(FONT, 14).into_text_style(area), (x1 + 8, y - 8))?;
        y += 21;
    }
    Ok(y)
}

/// Draw wrapped sentences in a column from `top` down.
pub(crate) fn draw_notes<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    notes: &[String],
    top: i32,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (w, _) = area.dim_in_pixel();
    // DejaVu Sans at 13 px averages about 7 px a character.
    let width = ((w as usize).saturating_sub(8) / 7).max(10);
    let mut y = top;
    for n in notes {
        for line in wrap(n, width) {
            area.draw_text(&line, &(FONT, 13).into_text_style(area), (4, y))?;
            y += 16;
        }
        y += 6;
    }
    Ok(())
}

impl Draw for LogLogFigure {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let (plots, legend) = super::frame(root, &self.title, 22, self.legend_width)?;
        let (xr, yr) = self.ranges();
        let areas = plots.split_evenly((1, self.panels.len().max(1)));
        for ((p, a), x) in self.panels.iter().zip(&areas).zip(xr) {
            draw_panel(a, p, x, yr, self.y_floor)?;
        }
        let y = draw_legend(&legend, &self.legend, 40)?;
        draw_notes(&legend, &self.notes, y + 10)
    }
}
