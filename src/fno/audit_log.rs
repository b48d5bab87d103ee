//! `[audit] every = N`: the per-layer audit of `mpno audit`, cheapened, during training.
//!
//! Before the first step and after every N-th optimizer step, the first `audit.samples` test
//! samples run through the current weights in fp32 (with the run's stabilizer); every spectral
//! layer's forward-transform input is captured ([`crate::audit::capture`]) and measured
//! ([`crate::audit::measure`]): the precision error of its transform under models I (input
//! rounding) and III (arithmetic) for each audited format against f64, beside the proven bound,
//! and the discretization estimate against the finest test resolution that the training grid
//! subsamples. One line per (step, layer, kind, format, model) goes to `audit.csv` in the run's
//! folder, with the activation's M = max |v| and grid Lipschitz estimate L, so the log shows
//! whether training pushes the activations to where low-precision error grows, and what the
//! stabilizer does to M and L. The figure `audit_training.{svg,png}` draws it.

use super::data::{FieldSet, Split, UnitGaussianNormalizer};
use super::model::Fno;
use super::policy::{Policy, Stabilizer};
use super::resident::Resident;
use crate::audit::capture::{forward_capture, grid_constants};
use crate::audit::measure::{self, AuditRow, groups, kept_modes, layer_name};
use crate::backend::{Backend, Modes};
use crate::error::Kind;
use crate::plot::{Curve, CurvesFigure, CurvesPanel, LegendEntry, Marker, palette};
use crate::precision::{Format, Model};
use anyhow::Context;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The log's file name in `train.out_dir`.
pub const CSV: &str = "audit.csv";
/// The figure's file stem in `train.out_dir`.
pub const FIGURE: &str = "audit_training";

/// One line of `audit.csv`: maxima over the audited samples, the kept modes and the channels.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct AuditPoint {
    /// Optimizer steps taken (0: the initial weights).
    pub step: u64,
    /// The epoch the step belongs to (0-based).
    pub epoch: usize,
    /// `fno:block{l}`.
    pub layer: String,
    /// Grid points per axis of the audited activation (the training resolution).
    pub s: usize,
    /// `precision` or `discretization`.
    pub kind: String,
    /// The audited format (`fp64` for discretization lines).
    pub format: String,
    /// `input`, `arithmetic`, or `none` (discretization).
    pub model: String,
    /// Largest error (inf: the emulated transform overflowed).
    pub measured: f64,
    /// Largest bound (inf when any row's bound is infinite; an estimate for discretization).
    pub bound: f64,
    /// Rows (sample x mode) measured above their bound: 0 unless a bound is wrong.
    pub above: usize,
    /// M = max |v| of the layer's activation at s.
    pub max_abs: f64,
    /// Grid estimate of L (max neighbour slope x s per axis, Euclidean norm): not a bound.
    pub lipschitz_estimate: f64,
    pub note: String,
}

impl AuditPoint {
    /// The CSV fields, in [`HEADER`]'s order.
    pub fn record(&self) -> [String; 13] {
        [
            self.step.to_string(),
            self.epoch.to_string(),
            self.layer.clone(),
            self.s.to_string(),
            self.kind.clone(),
            self.format.clone(),
            self.model.clone(),
            self.measured.to_string(),
            self.bound.to_string(),
            self.above.to_string(),
            self.max_abs.to_string(),
            self.lipschitz_estimate.to_string(),
            self.note.clone(),
        ]
    }
}

/// The audit schedule and its fixed inputs.
pub struct AuditLog {
    every: u64,
    formats: Vec<Format>,
    layers: Vec<usize>,
    modes: Vec<Vec<i64>>,
    /// Encoded inputs at the training resolution.
    coarse: FieldSet<f32>,
    /// The same samples, encoded, at the finest test resolution the training grid subsamples.
    fine: Option<FieldSet<f32>>,
    path: PathBuf,
    pub points: Vec<AuditPoint>,
}

impl AuditLog {
    /// The log of a run (None when `[audit] every = 0`). `tests` are the test splits (the
    /// training resolution first); lines after `start_step` of an existing log are dropped
    /// (a resumed run repeats them), and a run from scratch starts an empty log.
    pub fn new(
        cfg: &super::config::TrainConfig,
        model: &Fno,
        tests: &[Split<f32>],
        norm_x: Option<&UnitGaussianNormalizer>,
        out_dir: &Path,
        start_step: u64,
    ) -> anyhow::Result<Option<AuditLog>> {
        let a = &cfg.audit;
        if a.every == 0 {
            return Ok(None);
        }
        let encode = |f: &FieldSet<f32>| {
            let mut f = f.select(0..a.samples.min(f.n));
            if let Some(n) = norm_x {
                n.encode(&mut f.data);
            }
            f
        };
        let coarse = encode(&tests[0].x);
        let s = coarse.grid[0];
        let fine = tests[1..]
            .iter()
            .filter(|t| t.resolution() > s && t.resolution() % s == 0)
            .max_by_key(|t| t.resolution())
            .map(|t| encode(&t.x));
        let formats = if a.formats.is_empty() {
            let f = cfg.precision.fwd_fft.format;
            vec![if f.unit_roundoff() > Format::Fp32.unit_roundoff() {
                f
            } else {
                Format::Fp16
            }]
        } else {
            a.formats.clone()
        };
        let path = out_dir.join(CSV);
        let mut points = Vec::new();
        if start_step > 0 && path.exists() {
            points = read(&path)?;
            points.retain(|p| p.step <= start_step);
        }
        let log = AuditLog {
            every: a.every,
            formats,
            layers: (0..model.cfg.n_layers).collect(),
            modes: kept_modes(&Modes(model.cfg.modes.clone())),
            coarse,
            fine,
            path,
            points,
        };
        log.write()?;
        Ok(Some(log))
    }

    /// Whether an audit follows step `step`.
    pub fn due(&self, step: u64) -> bool {
        step.is_multiple_of(self.every)
    }

    /// Audit the weights `params` after `step` steps and rewrite the log.
    #[allow(clippy::too_many_arguments)]
    pub fn record<B: Backend<T = f32>>(
        &mut self,
        be: &B,
        model: &Fno,
        params: &Resident<B>,
        step: u64,
        epoch: usize,
        stabilizer: Stabilizer,
    ) -> anyhow::Result<()> {
        let policy = Policy {
            stabilizer,
            ..Policy::full()
        };
        let s = self.coarse.grid[0];
        let mut rows: Vec<AuditRow> = Vec::new();
        // Per layer: (M, L) over samples and channels.
        let mut constants = vec![(0.0f64, 0.0f64); self.layers.len()];
        let mut failure = None;
        for i in 0..self.coarse.n {
            let x = self.coarse.select(i..i + 1).data;
            let acts = match forward_capture(
                be,
                model,
                params,
                &x,
                &self.coarse.grid,
                &policy,
                &self.layers,
            ) {
                Ok((_, acts)) => acts,
                Err(o) => {
                    failure = Some(format!("the fp32 forward pass overflowed: {o}"));
                    break;
                }
            };
            let refs: Vec<_> = acts.iter().map(measure::references).collect();
            for (k, (a, r)) in acts.iter().zip(&refs).enumerate() {
                for c in 0..a.channels {
                    let g = grid_constants(a.channel(c), &a.grid);
                    constants[k].0 = constants[k].0.max(g.max_abs);
                    constants[k].1 = constants[k].1.max(g.lipschitz_estimate);
                }
                rows.extend(measure::precision_rows(
                    a,
                    r,
                    i,
                    &self.modes,
                    &self.formats,
                    &[Model::Input, Model::Arithmetic],
                )?);
            }
            if let Some(fine) = &self.fine {
                let xf = fine.select(i..i + 1).data;
                match forward_capture(be, model, params, &xf, &fine.grid, &policy, &self.layers) {
                    Ok((_, af)) => {
                        for ((a, r), f) in acts.iter().zip(&refs).zip(&af) {
                            let rf = measure::references(f);
                            rows.extend(measure::discretization_rows(
                                (a, r),
                                (f, &rf),
                                i,
                                &self.modes,
                            ));
                        }
                    }
                    Err(o) => {
                        failure = Some(format!(
                            "the fp32 forward pass overflowed at s = {}: {o}",
                            fine.grid[0]
                        ));
                        break;
                    }
                }
            }
        }
        if let Some(note) = failure {
            for &l in &self.layers {
                self.points.push(AuditPoint {
                    step,
                    epoch,
                    layer: layer_name(l),
                    s,
                    kind: "precision".into(),
                    format: String::new(),
                    model: String::new(),
                    measured: f64::NAN,
                    bound: f64::NAN,
                    above: 0,
                    max_abs: f64::NAN,
                    lipschitz_estimate: f64::NAN,
                    note: note.clone(),
                });
            }
            return self.write();
        }
        let reference = self.fine.as_ref().map(|f| f.grid[0]);
        for ((layer, _, kind, format, model), g) in groups(&rows) {
            let k = self
                .layers
                .iter()
                .position(|&l| layer_name(l) == layer)
                .expect("rows of audited layers");
            let note = match kind {
                Kind::Discretization => format!(
                    "vs s = {}; bound from L, M estimated on the grids (an estimate)",
                    reference.unwrap_or(s)
                ),
                _ if g.above > 0 => "ABOVE the bound: a bug".into(),
                _ if g.overflow > 0 => format!("{} rows overflowed", g.overflow),
                _ => String::new(),
            };
            self.points.push(AuditPoint {
                step,
                epoch,
                layer,
                s,
                kind: kind.to_string(),
                format: format.name().into(),
                model: model.map_or("none".into(), |m| m.to_string()),
                measured: g.measured_or_inf(),
                bound: g.bound_or_inf(),
                above: g.above,
                max_abs: constants[k].0,
                lipschitz_estimate: constants[k].1,
                note,
            });
        }
        self.write()
    }

    /// Rewrite `audit.csv` (atomically: a reader never sees half a log).
    fn write(&self) -> anyhow::Result<()> {
        crate::cli::write_atomically(&self.path, |f| {
            let mut w = csv::Writer::from_writer(f);
            w.write_record(HEADER)?;
            for p in &self.points {
                w.write_record(p.record())?;
            }
            w.flush()?;
            Ok(())
        })
        .with_context(|| format!("cannot write {}", self.path.display()))
    }

    /// Write the figure `audit_training.{svg,png}` next to the log.
    pub fn write_figure(&self, title: &str) -> anyhow::Result<Vec<PathBuf>> {
        let stem = self.path.with_file_name(FIGURE);
        let fig = figure(title, &[("", &self.points)]);
        crate::plot::save(&fig, &stem, (1400, 520))
    }
}

/// The CSV header (the field names of [`AuditPoint`]).
pub const HEADER: [&str; 13] = [
    "step",
    "epoch",
    "layer",
    "s",
    "kind",
    "format",
    "model",
    "measured",
    "bound",
    "above",
    "max_abs",
    "lipschitz_estimate",
    "note",
];

/// Read an `audit.csv`.
pub fn read(path: &Path) -> anyhow::Result<Vec<AuditPoint>> {
    let mut r =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    r.deserialize()
        .collect::<Result<Vec<AuditPoint>, _>>()
        .with_context(|| format!("{}: not an audit log", path.display()))
}

/// Over training, per run (colour) and layer (marker): the arithmetic-model (III) precision
/// error of the first audited format, the discretization estimate, M and L. `runs` are
/// (label, points); an empty label draws one run without a run legend.
pub fn figure(title: &str, runs: &[(&str, &[AuditPoint])]) -> CurvesFigure {
    const MARKERS: [Marker; 4] = [
        Marker::Circle,
        Marker::Square,
        Marker::Triangle,
        Marker::Diamond,
    ];
    let mut layers: Vec<String> = runs
        .iter()
        .flat_map(|(_, pts)| pts.iter().map(|p| p.layer.clone()))
        .collect();
    layers.sort();
    layers.dedup();
    let format = runs
        .iter()
        .flat_map(|(_, pts)| pts.iter())
        .find(|p| p.kind == "precision" && !p.format.is_empty())
        .map(|p| p.format.clone())
        .unwrap_or_default();
    let panel = |title: String, y: &str, pick: &dyn Fn(&AuditPoint) -> Option<f64>| {
        let mut curves = Vec::new();
        for (r, (_, pts)) in runs.iter().enumerate() {
            for (k, layer) in layers.iter().enumerate() {
                let points: Vec<(f64, f64)> = pts
                    .iter()
                    .filter(|p| &p.layer == layer)
                    .filter_map(|p| pick(p).map(|v| (p.step as f64, v)))
                    .filter(|(_, v)| v.is_finite() && *v > 0.0)
                    .collect();
                curves.push(Curve {
                    color: palette(r),
                    marker: MARKERS[k % MARKERS.len()],
                    points,
                });
            }
        }
        CurvesPanel {
            title,
            x_label: "optimizer step".into(),
            y_label: y.into(),
            log2_x: false,
            curves,
        }
    };
    let fmt = format.clone();
    let precision = move |p: &AuditPoint| {
        (p.kind == "precision" && p.model == "arithmetic" && p.format == fmt).then_some(p.measured)
    };
    // M and L are per layer and step: take them from one line each.
    let first_line = |p: &AuditPoint| p.kind == "discretization" || p.model == "arithmetic";
    let panels = vec![
        panel(
            format!("{format} transform error (model III)"),
            "max |error| over modes",
            &precision,
        ),
        panel(
            "discretization (vs finest test grid)".into(),
            "max |error| over modes",
            &|p: &AuditPoint| (p.kind == "discretization").then_some(p.measured),
        ),
        panel(
            "M = max |v| (after the stabilizer)".into(),
            "M",
            &|p: &AuditPoint| (first_line(p)).then_some(p.max_abs),
        ),
        panel("L, grid estimate".into(), "L", &|p: &AuditPoint| {
            (first_line(p)).then_some(p.lipschitz_estimate)
        }),
    ];
    let mut legend = Vec::new();
    if runs.len() > 1 || runs.first().is_some_and(|(l, _)| !l.is_empty()) {
        legend.push(LegendEntry::header("run"));
        for (r, (label, _)) in runs.iter().enumerate() {
            legend.push(LegendEntry::new(
                label,
                palette(r),
                None,
                Some(crate::plot::Dash::Solid),
            ));
        }
    }
    legend.push(LegendEntry::header("layer"));
    for (k, layer) in layers.iter().enumerate() {
        legend.push(LegendEntry::new(
            layer,
            plotters::style::BLACK,
            Some(MARKERS[k % MARKERS.len()]),
            None,
        ));
    }
    CurvesFigure {
        title: title.into(),
        panels,
        legend,
        notes: vec![
            "Maxima over the audited test samples, kept modes and channels; fp32 forward pass."
                .into(),
        ],
        legend_width: 200,
    }
}
