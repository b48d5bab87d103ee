//! Heat maps of a 2-D array of values (fields, error over a grid of settings) with a colour bar.

use super::{Draw, FONT, TickAxis};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Viridis, sampled at 9 evenly spaced points (matplotlib's table), linearly interpolated.
const VIRIDIS: [(u8, u8, u8); 9] = [
    (68, 1, 84),
    (71, 44, 122),
    (59, 81, 139),
    (44, 113, 142),
    (33, 144, 141),
    (39, 173, 129),
    (92, 200, 99),
    (170, 220, 50),
    (253, 231, 37),
];

/// Colour of t in [0, 1] (clamped) on the viridis map.
pub fn viridis(t: f64) -> RGBColor {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (VIRIDIS.len() - 1) as f64;
    let i = (x.floor() as usize).min(VIRIDIS.len() - 2);
    let f = x - i as f64;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    let mix = |p: u8, q: u8| (p as f64 + f * (q as f64 - p as f64)).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// A heat map: `values[row * ncols + col]`, row 0 drawn at the top. Non-finite cells are grey and
/// labelled "n/a" when annotated.
#[derive(Clone, Debug)]
pub struct HeatMap {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Column labels (length ncols).
    pub col_labels: Vec<String>,
    /// Row labels (length nrows).
    pub row_labels: Vec<String>,
    pub values: Vec<f64>,
    /// Colour-bar caption.
    pub colorbar_label: String,
    /// Write each cell's value (formatted with `annotate_fmt`) in the cell.
    pub annotate: bool,
    pub annotate_fmt: fn(f64) -> String,
}

impl HeatMap {
    /// (min, max) of the finite values; (0, 1) when there are none.
    pub fn value_range(&self) -> (f64, f64) {
        let (lo, hi) = self
            .values
            .iter()
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) }
    }

    /// Colour of a value: viridis of its position in value_range; grey when not finite.
    pub fn color_of(&self, v: f64) -> RGBColor {
        if !v.is_finite() {
            return RGBColor(190, 190, 190);
        }
        let (lo, hi) = self.value_range();
        viridis(if hi > lo { (v - lo) / (hi - lo) } else { 0.5 })
    }
}

impl Draw for HeatMap {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let (map_area, bar_area) = super::frame(root, &self.title, 22, 130)?;
        let (nc, nr) = (self.col_labels.len().max(1), self.row_labels.len().max(1));
        let cols = self.col_labels.clone();
        let rows = self.row_labels.clone();
        let xfmt = move |v: &f64| cols.get(v.round() as usize).cloned().unwrap_or_default();
        // Row 0 at the top: y coordinate = nr - 1 - row.
        let yfmt = move |v: &f64| {
            let r = nr as f64 - 1.0 - v.round();
            rows.get(r as usize).cloned().unwrap_or_default()
        };
        let mut chart = ChartBuilder::on(&map_area)
            .margin(8)
            .x_label_area_size(48)
            .y_label_area_size(150)
            .build_cartesian_2d(
                TickAxis::new(-0.5, nc as f64 - 0.5, (0..nc).map(|i| i as f64).collect()),
                TickAxis::new(-0.5, nr as f64 - 0.5, (0..nr).map(|i| i as f64).collect()),
            )?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .x_label_formatter(&xfmt)
            .y_label_formatter(&yfmt)
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 16))
            .draw()?;
        let (lo, hi) = self.value_range();
        for r in 0..self.row_labels.len() {
            for c in 0..self.col_labels.len() {
                let v = self.values.get(r * self.col_labels.len() + c).copied();
                let v = v.unwrap_or(f64::NAN);
                let y = (nr - 1 - r) as f64;
                let x = c as f64;
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)],
                    self.color_of(v).filled(),
                )))?;
                if self.annotate {
                    let t = if v.is_finite() {
                        (self.annotate_fmt)(v)
                    } else {
                        "n/a".into()
                    };
                    // Dark text on the light end of the map, white on the dark end.
                    let light = v.is_finite() && hi > lo && (v - lo) / (hi - lo) > 0.6;
                    let color = if light || !v.is_finite() {
                        BLACK
                    } else {
                        WHITE
                    };
                    let style = (FONT, 14)
                        .into_font()
                        .color(&color)
                        .pos(Pos::new(HPos::Center, VPos::Center));
                    chart.draw_series(std::iter::once(Text::new(t, (x, y), style)))?;
                }
            }
        }
        // Colour bar: 100 slices from lo (bottom) to hi (top).
        let (_, bh) = bar_area.dim_in_pixel();
        let (top, bottom) = (30i32, bh as i32 - 70);
        let x0 = 20i32;
        for i in 0..100 {
            let t0 = i as f64 / 100.0;
            let ya = bottom - ((bottom - top) as f64 * (t0 + 0.01)).round() as i32;
            let yb = bottom - ((bottom - top) as f64 * t0).round() as i32;
            bar_area.draw(&Rectangle::new(
                [(x0, ya), (x0 + 22, yb)],
                viridis(t0 + 0.005).filled(),
            ))?;
        }
        let label = |v: f64| (self.annotate_fmt)(v);
        let ts = (FONT, 13).into_text_style(&bar_area);
        bar_area.draw_text(&label(hi), &ts, (x0 + 28, top - 6))?;
        bar_area.draw_text(&label(lo), &ts, (x0 + 28, bottom - 8))?;
        bar_area.draw_text(&self.colorbar_label, &ts, (4, bottom + 18))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viridis_ends_and_midpoint() {
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(253, 231, 37));
        assert_eq!(viridis(0.5), RGBColor(33, 144, 141));
        assert_eq!(viridis(f64::NAN), viridis(0.0));
    }
}
