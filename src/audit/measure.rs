//! The audit's measurements on captured activations, as rows of the results-file contract.
//!
//! Coefficients are normalised as everywhere in mpno: F_s(v)(w) = n^-1 sum_j v(x_j)
//! exp(-2 pi i <w, x_j>), x_j = j / s, n = s^d (the model's own rfft uses the same "forward"
//! norm, so these are the numbers the spectral weights multiply). A row aggregates the
//! channels of one (layer, resolution, sample, mode): measured = max over channels of the
//! channel's error, bound = max over channels of the channel's bound (which bounds the maximum
//! error since each channel's error is below its own bound); a channel above its own bound is
//! named in the row's note, so the aggregate never hides one.

use super::capture::{Activation, GridConstants, grid_constants};
use crate::backend::Modes;
use crate::bounds;
use crate::error::{Kind, Row};
use crate::fft::{self, Algorithm, Complex, FftError};
use crate::precision::{Format, Model};
use rayon::prelude::*;
use std::collections::BTreeMap;

/// The transforms' algorithm (the one `mpno errors` uses by default: radix 4 for powers of two,
/// Bluestein otherwise), and so the one whose bound is drawn.
pub const ALGORITHM: Algorithm = Algorithm::Auto;

/// One row and the data-file sample it is about.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditRow {
    /// Index of the sample in the data file.
    pub sample: usize,
    pub row: Row,
}

/// The kept modes of a model's spectral layers, in the order of its weights: per axis but the
/// last the frequencies 0..m-1 then -m..-1, on the last axis 0..m-1.
pub fn kept_modes(modes: &Modes) -> Vec<Vec<i64>> {
    let kept = modes.kept_shape();
    let total: usize = kept.iter().product();
    (0..total)
        .map(|p| {
            let mut rest = p;
            let mut w = vec![0i64; kept.len()];
            for a in (0..kept.len()).rev() {
                w[a] = modes.frequency(a, rest % kept[a]);
                rest /= kept[a];
            }
            w
        })
        .collect()
}

/// Row-major index of mode `w` in the full transform of a grid of `grid` points per axis.
pub fn mode_index(w: &[i64], grid: &[usize]) -> usize {
    w.iter().zip(grid).fold(0usize, |acc, (&k, &n)| {
        acc * n + k.rem_euclid(n as i64) as usize
    })
}

/// The function column of a layer's rows: `fno:block{l}` (blocks counted from 0, as
/// `blocks.{l}` in the model's parameter names and overflow reports).
pub fn layer_name(layer: usize) -> String {
    format!("fno:block{layer}")
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}; {b}"),
    }
}

/// Maxima over samples and modes of one (layer, s, kind, format, model).
#[derive(Clone, Debug, Default)]
pub struct Group {
    pub measured: f64,
    /// Largest finite bound (0 when none is finite).
    pub bound: f64,
    pub rows: usize,
    /// Rows whose bound is infinite (the reason in their note).
    pub infinite: usize,
    /// Rows with measured > bound.
    pub above: usize,
    /// Rows whose measurement is inf (overflow).
    pub overflow: usize,
}

impl Group {
    /// The largest measurement, inf when any row overflowed.
    pub fn measured_or_inf(&self) -> f64 {
        if self.overflow > 0 {
            f64::INFINITY
        } else {
            self.measured
        }
    }

    /// The largest bound, inf when any row's bound is infinite.
    pub fn bound_or_inf(&self) -> f64 {
        if self.infinite > 0 {
            f64::INFINITY
        } else {
            self.bound
        }
    }
}

pub type GroupKey = (String, usize, Kind, Format, Option<Model>);

/// Group the rows by (layer, s, kind, format, model).
pub fn groups(rows: &[AuditRow]) -> BTreeMap<GroupKey, Group> {
    let mut out: BTreeMap<GroupKey, Group> = BTreeMap::new();
    for r in rows {
        let r = &r.row;
        let g = out
            .entry((r.function.clone(), r.s, r.kind, r.format, r.model))
            .or_default();
        g.rows += 1;
        if r.measured.is_infinite() {
            g.overflow += 1;
        } else {
            g.measured = g.measured.max(r.measured);
        }
        if r.bound.is_finite() {
            g.bound = g.bound.max(r.bound);
        } else {
            g.infinite += 1;
        }
        if r.measured > r.bound || r.measured.is_nan() {
            g.above += 1;
        }
    }
    out
}

/// One channel's result under one format and model.
struct ChannelPrecision {
    /// Per kept mode; inf on overflow.
    errors: Vec<f64>,
    bound: bounds::PrecisionBound,
    overflow: bool,
    saturated: bool,
}

/// Max over channels of per-mode errors against max over channels of bounds, with a note naming
/// any channel above its own bound.
fn aggregate(per_channel: &[(Vec<f64>, f64)], k: usize) -> (f64, f64, Option<(usize, f64, f64)>) {
    let mut measured = 0.0f64;
    let mut bound = 0.0f64;
    let mut above = None;
    for (c, (errors, b)) in per_channel.iter().enumerate() {
        let e = errors[k];
        // NaN cannot occur (overflow is reported as inf), but max() would drop it.
        measured = if e.is_nan() {
            f64::NAN
        } else {
            measured.max(e)
        };
        bound = bound.max(*b);
        if e > *b && above.is_none() {
            above = Some((c, e, *b));
        }
    }
    (measured, bound, above)
}

fn above_note(above: Option<(usize, f64, f64)>) -> String {
    above.map_or(String::new(), |(c, e, b)| {
        format!("channel {c} measured {e:e} above its own bound {b:e}")
    })
}

/// Per channel of an activation, its f64 reference coefficients (row-major, normalised).
pub type References = Vec<Vec<Complex<f64>>>;

/// The f64 reference coefficients of every channel of an activation (`fft::reference_f64`, in
/// parallel): computed once per activation and shared by its precision rows and, for the
/// native grid, by the discretization rows of every coarser one.
pub fn references(act: &Activation) -> References {
    (0..act.channels)
        .into_par_iter()
        .map(|c| fft::reference_f64(act.channel(c), &act.grid))
        .collect()
}

/// Precision rows of one activation: for every format and model and every kept mode, the error
/// of the transform of each channel's samples under the model (src/fft emulation) against the
/// f64 transform of the same samples, beside the bound of docs/bounds.md with M = max |v| and
/// mean |v| of the channel's samples (a proven bound: it needs nothing but the samples).
pub fn precision_rows(
    act: &Activation,
    refs: &[Vec<Complex<f64>>],
    sample: usize,
    modes: &[Vec<i64>],
    formats: &[Format],
    models: &[Model],
) -> Result<Vec<AuditRow>, FftError> {
    let jobs: Vec<(Format, Model)> = formats
        .iter()
        .flat_map(|&f| models.iter().map(move |&m| (f, m)))
        .collect();
    let shape = &act.grid;
    let idx: Vec<usize> = modes.iter().map(|w| mode_index(w, shape)).collect();
    // Per channel, per job.
    let channels: Vec<Vec<ChannelPrecision>> = (0..act.channels)
        .into_par_iter()
        .map(|c| {
            let v = act.channel(c);
            let reference = &refs[c];
            let k = grid_constants(v, shape);
            jobs.iter()
                .map(|&(fmt, model)| {
                    let out = fft::transform_under_model(v, shape, fmt, model, ALGORITHM)?;
                    let errors = idx
                        .iter()
                        .map(|&i| {
                            if out.overflow {
                                f64::INFINITY
                            } else {
                                (out.coeffs[i] - reference[i]).norm()
                            }
                        })
                        .collect();
                    Ok(ChannelPrecision {
                        errors,
                        bound: bounds::precision(
                            shape, ALGORITHM, fmt, model, k.mean_abs, k.max_abs,
                        ),
                        overflow: out.overflow,
                        saturated: out.saturated,
                    })
                })
                .collect::<Result<Vec<_>, FftError>>()
        })
        .collect::<Result<_, _>>()?;
    let mut rows = Vec::new();
    for (j, &(fmt, model)) in jobs.iter().enumerate() {
        let per: Vec<(Vec<f64>, f64)> = channels
            .iter()
            .map(|ch| (ch[j].errors.clone(), ch[j].bound.bound))
            .collect();
        let prob = channels
            .iter()
            .map(|ch| ch[j].bound.probabilistic)
            .fold(0.0, f64::max);
        // The reasons, from the first channel that has one (they differ only in numbers).
        let mut note = String::new();
        if let Some(c) = channels.iter().position(|ch| ch[j].overflow) {
            note = format!("overflow: {fmt} produced inf/NaN (channel {c} first)");
        }
        if let Some(c) = channels.iter().position(|ch| ch[j].saturated) {
            note = join(
                &note,
                &format!("saturated at {fmt} max (channel {c} first)"),
            );
        }
        if let Some(ch) = channels.iter().find(|ch| !ch[j].bound.note.is_empty()) {
            note = join(&note, &ch[j].bound.note);
        }
        for (k, w) in modes.iter().enumerate() {
            let (measured, bound, above) = aggregate(&per, k);
            rows.push(AuditRow {
                sample,
                row: Row {
                    basis: "fourier".into(),
                    function: layer_name(act.layer),
                    dim: shape.len(),
                    s: shape[0],
                    mode: w.clone(),
                    kind: Kind::Precision,
                    format: fmt,
                    scaled: None,
                    model: Some(model),
                    measured,
                    bound,
                    lower_bound: None,
                    prob_bound: Some(prob),
                    constants: "samples".into(),
                    note: join(&note, &above_note(above)),
                },
            });
        }
    }
    Ok(rows)
}

/// The constants the discretization "bound" of a channel rests on: L and M estimated from the
/// coarse and the fine activation (the larger of the two).
fn estimated(coarse: &GridConstants, fine: &GridConstants) -> (f64, f64) {
    (
        coarse.lipschitz_estimate.max(fine.lipschitz_estimate),
        coarse.max_abs.max(fine.max_abs),
    )
}

/// Discretization rows of one layer at a coarse grid s: the coefficients of the coarse
/// activation against those of the same layer run on the fine grid S (the data's native
/// resolution) at every kept mode, |F_s(v_s)(w) - F_S(v_S)(w)|, an estimate of
/// |F_s(v)(w) - F(v)(w)| with the fine grid standing in for the continuum. Beside it
/// D(s) + D(S), D the discretization bound of docs/bounds.md (|F_s - F_S| <= |F_s - F| +
/// |F - F_S|), plus both f64 transforms' own error, with L and M estimated from the activations
/// ([`GridConstants`]): a bound only as good as that estimate (`constants` = `estimate`). Beyond
/// block 0 the coarse activation is not the fine one subsampled (the earlier blocks' spectral
/// convolutions saw different grids), which the estimate includes and D does not.
pub fn discretization_rows(
    (coarse, coarse_refs): (&Activation, &[Vec<Complex<f64>>]),
    (fine, fine_refs): (&Activation, &[Vec<Complex<f64>>]),
    sample: usize,
    modes: &[Vec<i64>],
) -> Vec<AuditRow> {
    assert_eq!(coarse.layer, fine.layer);
    assert_eq!(coarse.channels, fine.channels);
    let (s, big) = (coarse.grid[0], fine.grid[0]);
    let idx_c: Vec<usize> = modes.iter().map(|w| mode_index(w, &coarse.grid)).collect();
    let idx_f: Vec<usize> = modes.iter().map(|w| mode_index(w, &fine.grid)).collect();
    // Per channel: errors per mode, bounds per mode, lower-bound constructions per mode.
    let per: Vec<(Vec<f64>, Vec<f64>, Vec<f64>)> = (0..coarse.channels)
        .into_par_iter()
        .map(|c| {
            let (vc, vf) = (coarse.channel(c), fine.channel(c));
            let (rc, rf) = (&coarse_refs[c], &fine_refs[c]);
            let (l, m) = estimated(
                &grid_constants(vc, &coarse.grid),
                &grid_constants(vf, &fine.grid),
            );
            let reference = bounds::f64_reference_error(m, coarse.points())
                + bounds::f64_reference_error(m, fine.points());
            let mut errors = Vec::with_capacity(modes.len());
            let mut bnds = Vec::with_capacity(modes.len());
            let mut lower = Vec::with_capacity(modes.len());
            for (k, w) in modes.iter().enumerate() {
                errors.push((rc[idx_c[k]] - rf[idx_f[k]]).norm());
                bnds.push(
                    bounds::discretization_upper(l, m, w, s)
                        + bounds::discretization_upper(l, m, w, big)
                        + reference,
                );
                lower.push(bounds::discretization_lower(l, m, w, s));
            }
            (errors, bnds, lower)
        })
        .collect();
    let note = format!(
        "vs the s = {big} run; L, M estimated from the activations (max neighbour slope x s, \
         max |v|): the bound D(s) + D({big}) rests on that estimate"
    );
    modes
        .iter()
        .enumerate()
        .map(|(k, w)| {
            let mut measured = 0.0f64;
            let mut bound = 0.0f64;
            let mut lower = 0.0f64;
            let mut above = None;
            for (c, (e, b, lo)) in per.iter().enumerate() {
                measured = measured.max(e[k]);
                bound = bound.max(b[k]);
                lower = lower.max(lo[k]);
                if e[k] > b[k] && above.is_none() {
                    above = Some((c, e[k], b[k]));
                }
            }
            AuditRow {
                sample,
                row: Row {
                    basis: "fourier".into(),
                    function: layer_name(coarse.layer),
                    dim: coarse.grid.len(),
                    s,
                    mode: w.clone(),
                    kind: Kind::Discretization,
                    format: Format::Fp64,
                    scaled: None,
                    model: None,
                    measured,
                    bound,
                    lower_bound: Some(lower),
                    prob_bound: None,
                    constants: "estimate".into(),
                    note: join(&note, &above_note(above)),
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_modes_follow_the_weight_layout() {
        let m = Modes(vec![2, 3]);
        let w = kept_modes(&m);
        assert_eq!(w.len(), 4 * 3);
        assert_eq!(w[0], vec![0, 0]);
        assert_eq!(w[2], vec![0, 2]);
        assert_eq!(w[3], vec![1, 0]);
        assert_eq!(w[6], vec![-2, 0]);
        assert_eq!(w[11], vec![-1, 2]);
        assert_eq!(mode_index(&[-1, 2], &[8, 8]), 7 * 8 + 2);
    }

    /// A single cosine cos(2 pi (x + 2y)) on two grids: both resolve it, so the discretization
    /// estimate is round-off, and the model-I fp16 error of one channel is at most its bound.
    #[test]
    fn rows_of_a_resolved_cosine() {
        let act = |s: usize| Activation {
            layer: 1,
            grid: vec![s, s],
            channels: 2,
            values: (0..2 * s * s)
                .map(|p| {
                    let q = p % (s * s);
                    let (x, y) = ((q / s) as f64 / s as f64, (q % s) as f64 / s as f64);
                    (2.0 * std::f64::consts::PI * (x + 2.0 * y)).cos()
                        * if p < s * s { 1.0 } else { 0.5 }
                })
                .collect(),
        };
        let modes = kept_modes(&Modes(vec![3, 3]));
        let (coarse, fine) = (act(8), act(32));
        let (rc, rf) = (references(&coarse), references(&fine));
        let rows = discretization_rows((&coarse, &rc), (&fine, &rf), 7, &modes);
        assert_eq!(rows.len(), modes.len());
        for r in &rows {
            assert!(r.row.measured < 1e-15, "{r:?}");
            assert_eq!(r.row.function, "fno:block1");
            assert_eq!(r.sample, 7);
        }
        let a = act(16);
        let r = references(&a);
        let rows = precision_rows(&a, &r, 0, &modes, &[Format::Fp16], &[Model::Input]).unwrap();
        // The coefficient at (1, 2) is 1/2 (first channel): its rounding error is far below 1/2.
        let at = rows.iter().find(|r| r.row.mode == vec![1, 2]).unwrap();
        assert!(
            at.row.measured <= at.row.bound && at.row.bound < 1e-3,
            "{at:?}"
        );
        assert!(rows.iter().all(|r| r.row.measured <= r.row.bound));
    }
}
