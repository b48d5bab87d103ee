//! Figure of one Navier-Stokes trajectory: vorticity heat maps at four times side by side
//! (w0, and the snapshots nearest T/3, 2T/3, T), one shared diverging colour scale
//! (blue = -max|w|, white = 0, red = +max|w|), no text (no system fonts needed). The values drawn
//! go to a CSV beside the figure (columns t, i, j, w), as every figure in figures/ has its data.

use super::navier_stokes::NsParams;
use plotters::prelude::*;
use std::io::Write;
use std::path::Path;

const PIXELS_PER_CELL: u32 = 4;
const GAP: u32 = 8;

fn colour(v: f64, vmax: f64) -> RGBColor {
    let s = if vmax > 0.0 {
        (v / vmax).clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let fade = |x: f64| (255.0 * (1.0 - x)).round() as u8;
    if s >= 0.0 {
        RGBColor(255, fade(s), fade(s))
    } else {
        RGBColor(fade(-s), fade(-s), 255)
    }
}

fn draw<DB: DrawingBackend>(
    area: DrawingArea<DB, plotters::coord::Shift>,
    panels: &[&[f64]],
    r: usize,
    vmax: f64,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    let c = PIXELS_PER_CELL as i32;
    for (k, field) in panels.iter().enumerate() {
        let x0 = GAP as i32 + k as i32 * (r as i32 * c + GAP as i32);
        let y0 = GAP as i32;
        for i in 0..r {
            for j in 0..r {
                // x along the horizontal axis, y upwards.
                let px = x0 + i as i32 * c;
                let py = y0 + (r - 1 - j) as i32 * c;
                area.draw(&Rectangle::new(
                    [(px, py), (px + c, py + c)],
                    colour(field[i * r + j], vmax).filled(),
                ))?;
            }
        }
    }
    area.present()?;
    Ok(())
}

/// Draw sample 0 of a data set: `w0` (n, r, r) and `w` (n, K, r, r) at the solve resolution.
pub fn ns_trajectory(path: &Path, p: &NsParams, w0: &[f64], w: &[f64]) -> anyhow::Result<()> {
    let r = p.r;
    let times = &p.stepping.times;
    let k = times.len();
    let pick = |frac: f64| {
        let target = frac * times[k - 1];
        (0..k)
            .min_by(|&a, &b| {
                (times[a] - target)
                    .abs()
                    .total_cmp(&(times[b] - target).abs())
            })
            .expect("at least one snapshot")
    };
    let mut idx = vec![pick(1.0 / 3.0), pick(2.0 / 3.0), k - 1];
    idx.dedup();
    let snap = |s: usize| &w[s * r * r..(s + 1) * r * r];
    let mut panels: Vec<&[f64]> = vec![&w0[..r * r]];
    let mut ts = vec![0.0];
    for &s in &idx {
        panels.push(snap(s));
        ts.push(times[s]);
    }
    let vmax = panels
        .iter()
        .flat_map(|f| f.iter())
        .fold(0.0f64, |m, v| m.max(v.abs()));
    let width = GAP + panels.len() as u32 * (r as u32 * PIXELS_PER_CELL + GAP);
    let height = r as u32 * PIXELS_PER_CELL + 2 * GAP;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("png");
    // Draw into a partial file beside the target, then rename: no partial figure.
    let tmp = crate::cli::partial_file(path, &format!(".{ext}"))?;
    if ext == "svg" {
        draw(
            SVGBackend::new(tmp.path(), (width, height)).into_drawing_area(),
            &panels,
            r,
            vmax,
        )?;
    } else {
        draw(
            BitMapBackend::new(tmp.path(), (width, height)).into_drawing_area(),
            &panels,
            r,
            vmax,
        )?;
    }
    crate::cli::persist(tmp, path)?;
    let csv = path.with_extension("csv");
    crate::cli::write_atomically(&csv, |f| {
        let mut w = std::io::BufWriter::new(f);
        writeln!(w, "t,i,j,w")?;
        for (field, t) in panels.iter().zip(&ts) {
            for (q, v) in field.iter().enumerate() {
                writeln!(w, "{t},{},{},{v:e}", q / r, q % r)?;
            }
        }
        w.flush()?;
        Ok(())
    })?;
    Ok(())
}
