//! The plot helpers draw what they are given: colours where the data are, bar areas proportional
//! to their values, heat-map cells in their colour-map colour, and SVG + PNG files of the asked
//! size. Pixels are counted in an RGB render (plot::render_rgb), the same code path as the PNG.

use mpno::plot::{
    self, BarChart, BarGroup, BarPanel, Dash, HeatMap, LegendEntry, LogLogFigure, Marker, Panel,
    Series, Star,
};
use plotters::style::RGBColor;

const SIZE: (u32, u32) = (600, 400);

fn count(buf: &[u8], c: RGBColor) -> usize {
    buf.chunks_exact(3)
        .filter(|p| p[0] == c.0 && p[1] == c.1 && p[2] == c.2)
        .count()
}

/// Columns (x pixel) holding colour c.
fn columns(buf: &[u8], c: RGBColor) -> Vec<usize> {
    let w = SIZE.0 as usize;
    let mut cols: Vec<usize> = buf
        .chunks_exact(3)
        .enumerate()
        .filter(|(_, p)| p[0] == c.0 && p[1] == c.1 && p[2] == c.2)
        .map(|(i, _)| i % w)
        .collect();
    cols.sort_unstable();
    cols.dedup();
    cols
}

fn loglog(series: Vec<Series>) -> LogLogFigure {
    let mut fig = LogLogFigure::new("test");
    let mut p = Panel::new("panel", "s", "error", 2);
    p.series = series;
    fig.panels.push(p);
    fig.legend.push(LegendEntry::header("legend"));
    fig.legend_width = 120;
    fig
}

#[test]
fn log_log_series_are_drawn_and_unplottable_points_skipped() {
    let red = RGBColor(250, 0, 0);
    let blue = RGBColor(0, 0, 250);
    let fig = loglog(vec![
        Series::line(red, Dash::Solid, vec![(8.0, 1.0), (1024.0, 1.0 / 128.0)]),
        // Zero, negative and infinite values cannot sit on log axes: skipped, not a panic.
        Series::markers(
            blue,
            Marker::Circle,
            vec![(8.0, 0.0), (-1.0, 1.0), (16.0, f64::INFINITY), (64.0, 1e-3)],
        ),
    ]);
    let buf = plot::render_rgb(&fig, SIZE).unwrap();
    assert!(count(&buf, red) > 100, "line not drawn");
    // Exactly one marker: a small cluster of blue pixels, a few columns wide.
    let blue_cols = columns(&buf, blue);
    assert!(
        !blue_cols.is_empty() && blue_cols.len() <= 12,
        "{blue_cols:?}"
    );
    // The line spans most of the panel width (x from 2^3 to 2^10 is the data range).
    let red_cols = columns(&buf, red);
    assert!(red_cols.len() > 250, "{}", red_cols.len());
}

#[test]
fn a_dashed_line_has_gaps_a_solid_one_has_none() {
    let c = RGBColor(0, 200, 0);
    let pts = vec![(8.0, 1e-3), (4096.0, 1e-3)];
    let solid = plot::render_rgb(
        &loglog(vec![Series::line(c, Dash::Solid, pts.clone())]),
        SIZE,
    )
    .unwrap();
    let dashed = plot::render_rgb(&loglog(vec![Series::line(c, Dash::Dashed, pts)]), SIZE).unwrap();
    let (s, d) = (columns(&solid, c), columns(&dashed, c));
    let span = |v: &[usize]| v.last().unwrap() - v.first().unwrap() + 1;
    assert_eq!(s.len(), span(&s), "solid line has gaps");
    // Dash 9 px, gap 6 px: about 60 % of the span is covered.
    let frac = d.len() as f64 / span(&d) as f64;
    assert!((0.5..0.75).contains(&frac), "{frac}");
}

#[test]
fn stars_mark_points_and_overflow_crosses_sit_on_top() {
    let gold = RGBColor(230, 159, 0);
    let green = RGBColor(0, 120, 0);
    let mut fig = loglog(vec![Series::line(
        green,
        Dash::Solid,
        vec![(8.0, 1.0), (1024.0, 1e-2)],
    )]);
    fig.panels[0].stars.push(Star {
        x: 64.0,
        y: 0.1,
        color: gold,
    });
    let buf = plot::render_rgb(&fig, SIZE).unwrap();
    assert!(count(&buf, gold) > 30);
    let violet = RGBColor(150, 0, 150);
    fig.panels[0].stars.clear();
    fig.panels[0].overflow.push((512.0, violet));
    let buf = plot::render_rgb(&fig, SIZE).unwrap();
    let rows = |c: RGBColor| -> Vec<usize> {
        buf.chunks_exact(3)
            .enumerate()
            .filter(|(_, p)| p == &[c.0, c.1, c.2])
            .map(|(i, _)| i / SIZE.0 as usize)
            .collect()
    };
    let (cross, line) = (rows(violet), rows(green));
    assert!(!cross.is_empty() && !line.is_empty());
    // Above the largest data value: inf has no place on the axis, so the mark sits on top.
    let top_of_data = *line.iter().min().unwrap();
    assert!(
        cross.iter().all(|&r| r < top_of_data),
        "{cross:?} vs {top_of_data}"
    );
}

#[test]
fn bar_areas_are_proportional_to_values() {
    let (a, b) = (RGBColor(10, 20, 200), RGBColor(200, 20, 10));
    let chart = BarChart {
        title: "bars".into(),
        y_label: "value".into(),
        panels: vec![BarPanel {
            title: "p".into(),
            categories: vec!["one".into(), "two".into()],
            groups: vec![
                BarGroup {
                    label: "a".into(),
                    color: a,
                    values: vec![Some(4.0), None],
                    missing: vec![String::new(), "none".into()],
                    marks: vec![None, None],
                },
                BarGroup {
                    label: "b".into(),
                    color: b,
                    values: vec![Some(8.0), Some(12.0)],
                    missing: vec![String::new(); 2],
                    marks: vec![None, None],
                },
            ],
        }],
        mark_label: String::new(),
        y_pow2: false,
        notes: vec![],
        legend_width: 100,
    };
    let buf = plot::render_rgb(&chart, SIZE).unwrap();
    // Legend squares add the same small count to both colours; bars dominate.
    let (na, nb) = (count(&buf, a) as f64, count(&buf, b) as f64);
    let ratio = nb / na;
    assert!((ratio - 5.0).abs() < 0.5, "a {na}, b {nb}, ratio {ratio}");
}

#[test]
fn heat_map_cells_take_their_colour_map_colours() {
    let map = HeatMap {
        title: "heat".into(),
        x_label: "col".into(),
        y_label: "row".into(),
        col_labels: vec!["a".into(), "b".into()],
        row_labels: vec!["r0".into(), "r1".into()],
        values: vec![0.0, 1.0, 2.0, f64::NAN],
        colorbar_label: "value".into(),
        annotate: false,
        annotate_fmt: |v| format!("{v:.1}"),
    };
    assert_eq!(map.value_range(), (0.0, 2.0));
    let buf = plot::render_rgb(&map, SIZE).unwrap();
    let (lo, mid, hi) = (map.color_of(0.0), map.color_of(1.0), map.color_of(2.0));
    assert_eq!(lo, plot::viridis(0.0));
    assert_eq!(hi, plot::viridis(1.0));
    // Each cell covers a large block of pixels; the colour bar adds a thin slice of some.
    for c in [lo, mid, hi, map.color_of(f64::NAN)] {
        assert!(count(&buf, c) > 5000, "{c:?}: {}", count(&buf, c));
    }
}

#[test]
fn save_writes_svg_and_png_of_the_requested_size() {
    let dir = tempfile::tempdir().unwrap();
    let fig = loglog(vec![Series::line(
        RGBColor(0, 0, 0),
        Dash::Dotted,
        vec![(8.0, 1.0), (64.0, 0.5)],
    )]);
    let files = plot::save(&fig, &dir.path().join("fig"), (640, 480)).unwrap();
    assert_eq!(files.len(), 2);
    let svg = std::fs::read_to_string(dir.path().join("fig.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("width=\"640\"") && svg.contains("panel"));
    let png = std::fs::read(dir.path().join("fig.png")).unwrap();
    let be = |i: usize| u32::from_be_bytes([png[i], png[i + 1], png[i + 2], png[i + 3]]);
    assert_eq!((be(16), be(20)), (640, 480));
    // Nothing else (no temporary files) is left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

/// The binary draws text with the embedded font: it must not link a system font library.
#[test]
fn binary_links_no_font_library() {
    let Ok(out) = std::process::Command::new("ldd")
        .arg(env!("CARGO_BIN_EXE_mpno"))
        .output()
    else {
        panic!("ldd not found: this check needs glibc's ldd (Linux)");
    };
    let libs = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{libs}");
    for bad in ["fontconfig", "freetype", "expat"] {
        assert!(!libs.contains(bad), "mpno links {bad}:\n{libs}");
    }
}
