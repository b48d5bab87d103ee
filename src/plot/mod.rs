//! Figures with plotters: log-log error plots (markers for measurements, solid lines for upper
//! bounds, dashed lines for lower-bound constructions, stars for crossovers), grouped bar charts
//! and heat maps, each written as SVG and PNG.
//!
//! Text is drawn with DejaVu Sans embedded in the binary (the `dejavu` crate, registered with
//! plotters' ab_glyph backend), so no system font library (fontconfig, freetype) is linked and
//! every machine draws the same pixels. Log axes are drawn in log space (x = log2 s, y = log10 e)
//! with tick labels written as powers (2⁸, 10⁻⁶): an error falling like 1/s drops one y decade
//! per log2(10) = 3.32 x units.

mod bars;
mod heat;
mod loglog;
mod training;

pub use bars::{BarChart, BarGroup, BarPanel};
pub use heat::{HeatMap, viridis};
pub use loglog::{Dash, LegendEntry, LogLogFigure, Marker, Panel, Series, Star};
pub use training::{BarsFigure, BarsPanel, Curve, CurvesFigure, CurvesPanel};

use crate::precision::{Format, Model};
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Once;

/// Default figure size in pixels (PNG) and user units (SVG).
pub const SIZE: (u32, u32) = (1000, 700);

/// The font family every text of every figure uses (DejaVu Sans, registered on first use).
pub const FONT: &str = "sans-serif";

static FONT_INIT: Once = Once::new();

/// Register DejaVu Sans (regular, bold, oblique) as plotters' "sans-serif".
fn register_fonts() {
    FONT_INIT.call_once(|| {
        use plotters::style::FontStyle;
        // The bytes are a valid TrueType font shipped with the crate: failing here is a build bug.
        let fonts: [(FontStyle, &'static [u8]); 3] = [
            (FontStyle::Normal, dejavu::sans::regular()),
            (FontStyle::Bold, dejavu::sans::bold()),
            (FontStyle::Oblique, dejavu::sans::oblique()),
        ];
        for (style, bytes) in fonts {
            if plotters::style::register_font(FONT, style, bytes).is_err() {
                panic!("embedded DejaVu Sans font is invalid");
            }
        }
    });
}

/// Colour of a format, the same in every figure (Okabe-Ito palette, safe for colour blindness).
pub fn format_color(f: Format) -> RGBColor {
    match f {
        Format::Fp64 => RGBColor(0, 0, 0),
        Format::Fp32 => RGBColor(0, 114, 178),
        Format::Tf32 => RGBColor(0, 158, 115),
        Format::Bf16 => RGBColor(230, 159, 0),
        Format::Fp16 => RGBColor(213, 94, 0),
        Format::E5m2 => RGBColor(86, 180, 233),
        Format::E4m3 => RGBColor(204, 121, 167),
        Format::E4m3Sat => RGBColor(136, 34, 85),
    }
}

/// Colour of a scaled format: its element format's colour, darkened for one scale per tensor
/// or channel and lightened for MX blocks (the dash tells them apart too).
pub fn scaled_color(sf: crate::precision::ScaledFormat) -> RGBColor {
    let RGBColor(r, g, b) = format_color(sf.elem);
    let mix = |c: u8, to: f64, t: f64| (c as f64 + (to - c as f64) * t).round() as u8;
    match sf.scaling {
        crate::precision::Scaling::Block { .. } => RGBColor(
            mix(r, 255.0, 0.45),
            mix(g, 255.0, 0.45),
            mix(b, 255.0, 0.45),
        ),
        _ => RGBColor(mix(r, 0.0, 0.45), mix(g, 0.0, 0.45), mix(b, 0.0, 0.45)),
    }
}

/// Marker shape of a precision model, the same in every figure.
pub fn model_marker(m: Model) -> Marker {
    match m {
        Model::Input => Marker::Circle,
        Model::Storage => Marker::Square,
        Model::Arithmetic => Marker::Triangle,
        Model::ArithmeticScaled => Marker::Diamond,
        Model::Gemm => Marker::InvTriangle,
    }
}

/// A categorical palette for series that are not formats (functions, groups): Okabe-Ito order.
pub fn palette(i: usize) -> RGBColor {
    const P: [RGBColor; 8] = [
        RGBColor(0, 114, 178),
        RGBColor(213, 94, 0),
        RGBColor(0, 158, 115),
        RGBColor(204, 121, 167),
        RGBColor(230, 159, 0),
        RGBColor(86, 180, 233),
        RGBColor(136, 34, 85),
        RGBColor(100, 100, 100),
    ];
    P[i % P.len()]
}

/// `base` to an integer power with the exponent in Unicode superscripts: sup_power(10, -6) = "10⁻⁶".
pub fn sup_power(base: u32, exp: i32) -> String {
    const DIGITS: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    let mut s = base.to_string();
    if exp < 0 {
        s.push('⁻');
    }
    for c in exp.unsigned_abs().to_string().chars() {
        s.push(DIGITS[c.to_digit(10).unwrap_or(0) as usize]);
    }
    s
}

/// A linear f64 axis whose tick marks are exactly the given values (the tick labels of log axes
/// drawn in log space are integer powers; plotters' own f64 axis picks "nice" fractional ticks).
#[derive(Clone, Debug)]
pub(crate) struct TickAxis {
    pub lo: f64,
    pub hi: f64,
    pub ticks: Vec<f64>,
}

impl TickAxis {
    pub fn new(lo: f64, hi: f64, ticks: Vec<f64>) -> Self {
        TickAxis { lo, hi, ticks }
    }
}

impl plotters::coord::ranged1d::Ranged for TickAxis {
    type ValueType = f64;
    type FormatOption = plotters::coord::ranged1d::DefaultFormatting;
    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let t = (v - self.lo) / (self.hi - self.lo);
        limit.0 + (t * (limit.1 - limit.0) as f64).round() as i32
    }
    fn key_points<H: plotters::coord::ranged1d::KeyPointHint>(&self, hint: H) -> Vec<f64> {
        // Light (minor) grid lines are not drawn: only the bold points are ticks.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }
}

/// A figure that can draw itself on any plotters backend.
pub trait Draw {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, plotters::coord::Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>;
}

/// A drawing area in pixel coordinates.
type Area<DB> = DrawingArea<DB, plotters::coord::Shift>;
/// The plot area and the right-hand column of a [`frame`].
type Framed<DB> =
    Result<(Area<DB>, Area<DB>), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// The common frame of a figure: white background, a bold title `title_px` high, and the body
/// split into the plot area (left) and a column `right_width` pixels wide (legend or colour bar).
pub(crate) fn frame<DB: DrawingBackend>(
    root: &Area<DB>,
    title: &str,
    title_px: u32,
    right_width: u32,
) -> Framed<DB> {
    root.fill(&WHITE)?;
    let body = root.titled(title, (FONT, title_px).into_font().style(FontStyle::Bold))?;
    let (w, _) = body.dim_in_pixel();
    Ok(body.split_horizontally(w.saturating_sub(right_width)))
}

fn draw_err<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> anyhow::Error {
    anyhow::anyhow!("drawing failed: {e}")
}

/// Write `fig` to `stem.svg` and `stem.png` (size in pixels); each file appears atomically
/// (drawn into a partial file in the same folder, then renamed; see `cli::partial_file`). Returns the two paths.
pub fn save<F: Draw>(fig: &F, stem: &Path, size: (u32, u32)) -> anyhow::Result<Vec<PathBuf>> {
    register_fonts();
    let svg_path = stem.with_extension("svg");
    let png_path = stem.with_extension("png");

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        fig.draw(&root).map_err(draw_err)?;
        root.present().map_err(draw_err)?;
    }
    let svg = xml_safe(svg);
    let tmp = crate::cli::partial_file(&svg_path, ".svg")?;
    std::fs::write(tmp.path(), svg.as_bytes())?;
    crate::cli::persist(tmp, &svg_path)?;

    // The bitmap backend picks the encoder from the extension, so the temporary file ends in .png.
    let tmp = crate::cli::partial_file(&png_path, ".png")?;
    {
        let root = BitMapBackend::new(tmp.path(), size).into_drawing_area();
        fig.draw(&root).map_err(draw_err)?;
        root.present().map_err(draw_err)?;
    }
    crate::cli::persist(tmp, &png_path)?;
    Ok(vec![svg_path, png_path])
}

/// `svg` with the control characters XML 1.0 forbids (U+0000..U+001F but tab, newline and
/// carriage return; escaped or not) replaced by U+FFFD: a title or label taken from user text
/// (an expression, an experiment's description) may hold them, and plotters copies text as is,
/// so the file would not parse as SVG.
fn xml_safe(svg: String) -> String {
    if !svg.chars().any(forbidden_in_xml) {
        return svg;
    }
    svg.chars()
        .map(|c| if forbidden_in_xml(c) { '\u{FFFD}' } else { c })
        .collect()
}

fn forbidden_in_xml(c: char) -> bool {
    c < ' ' && !matches!(c, '\t' | '\n' | '\r')
}

/// Render `fig` into an RGB buffer (row-major, 3 bytes a pixel): for tests that look at pixels.
pub fn render_rgb<F: Draw>(fig: &F, size: (u32, u32)) -> anyhow::Result<Vec<u8>> {
    register_fonts();
    let mut buf = vec![0u8; size.0 as usize * size.1 as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, size).into_drawing_area();
        fig.draw(&root).map_err(draw_err)?;
        root.present().map_err(draw_err)?;
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_leave_the_svg() {
        let s = xml_safe("<text>a\u{1}b\tc\u{1b}[0m\n</text>".to_string());
        assert_eq!(s, "<text>a\u{FFFD}b\tc\u{FFFD}[0m\n</text>");
        assert!(!s.chars().any(forbidden_in_xml));
    }

    #[test]
    fn superscript_powers() {
        assert_eq!(sup_power(10, -16), "10⁻¹⁶");
        assert_eq!(sup_power(2, 10), "2¹⁰");
        assert_eq!(sup_power(10, 0), "10⁰");
    }
}
