//! The `audit` kind: train FNOs with `[audit] every = N` (the per-layer log over training), then
//! audit the first run's final model as `mpno audit` does, on samples generated at a finer
//! native grid (the discretization reference), at the study's resolutions.
//!
//! A file names `datagen` (the training data), `base` and `[[runs]]` (as the `training` kind;
//! every run needs `audit.every` > 0), `audit_datagen` (the audited samples: `mpno datagen`
//! arguments whose `--res` is the fine reference grid), `resolutions`, `samples`, `formats` and
//! `models`. It writes NAME.csv (per layer, s, format and model: the precision maxima beside
//! the discretization estimate, as `audit_layers.csv`), NAME_end_to_end.csv, NAME.md, NAME.svg
//! (errors vs resolution), NAME_ratio.svg (precision / discretization), NAME_training.csv (the
//! runs' audit logs, with a `run` column) and NAME_training.svg (over training).

use super::toml_list;
use super::training::{RunPlan, Session, data_file, parse_datagen, resolve_runs, train_runs};
use super::{Checker, ExperimentError, runtime};
use crate::audit::{self, AuditRequest, report};
use crate::cli::UsageError;
use crate::fno::audit_log::{self, AuditPoint};
use crate::fno::train::CHECKPOINT;
use crate::plot;
use crate::precision::{Format, Model};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

/// An `audit` experiment file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuditStudy {
    /// "audit".
    pub kind: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Arguments of `mpno datagen` for the training data, without --out.
    pub datagen: String,
    /// The training config every run starts from, relative to this file's folder.
    pub base: String,
    /// Arguments of `mpno datagen` for the audited samples (their grid is the fine reference).
    pub audit_datagen: String,
    /// Grids audited below the fine one (each divides it and holds the kept modes).
    pub resolutions: Vec<usize>,
    /// The last `samples` samples of the audit data.
    pub samples: usize,
    /// Comma-separated formats (e.g. "fp32,bf16,fp16,e5m2,e4m3").
    #[serde(deserialize_with = "toml_list::list_text")]
    pub formats: String,
    /// Comma-separated precision models (e.g. "input,arithmetic").
    #[serde(deserialize_with = "toml_list::list_text")]
    pub models: String,
    /// Each: `label` and the config fields it changes; the first run's model is audited.
    pub runs: Vec<toml::Table>,
}

/// A validated `audit` experiment.
pub struct AuditPlan {
    pub study: AuditStudy,
    pub datagen: Vec<String>,
    pub audit_datagen: Vec<String>,
    pub runs: Vec<RunPlan>,
    pub formats: Vec<Format>,
    pub models: Vec<Model>,
}

pub(super) fn load_audit(c: &Checker, exp_dir: &Path) -> Result<super::Plan, UsageError> {
    let study: AuditStudy = c.parse()?;
    c.kind(&Some(study.kind.clone()), "audit")?;
    let (datagen, resolution, bytes) = parse_datagen(c, "datagen", &study.datagen)?;
    let (audit_datagen, _, _) = parse_datagen(c, "audit_datagen", &study.audit_datagen)?;
    let formats = c.formats("formats", &study.formats)?;
    let models = c.models("models", &study.models)?;
    if study.samples == 0 {
        return Err(c.field("samples", UsageError::new("samples", "must be >= 1, got 0")));
    }
    if study.resolutions.is_empty() {
        return Err(c.field(
            "resolutions",
            UsageError::new(
                "resolutions",
                "empty; give the grids to audit below the audit data's, e.g. [32, 64, 128]",
            ),
        ));
    }
    let runs = resolve_runs(c, exp_dir, &study.base, &study.runs, (resolution, bytes))?;
    if let Some(r) = runs.iter().find(|r| r.config.audit.every == 0) {
        return Err(c.field(
            "runs",
            UsageError::new(
                "runs",
                format!(
                    "run '{}' has no audit.every: every run of an audit study logs its layers \
                     over training (e.g. audit = {{ every = 20 }})",
                    r.label
                ),
            ),
        ));
    }
    Ok(super::Plan::Audit(AuditPlan {
        study,
        datagen,
        audit_datagen,
        runs,
        formats,
        models,
    }))
}

/// Train the runs, audit the first one's model and write the files.
pub fn run_audit(
    plan: &AuditPlan,
    out_dir: &Path,
    name: &str,
    session: &mut Session,
) -> Result<Vec<PathBuf>, ExperimentError> {
    let reports = train_runs(session, &plan.datagen, &plan.runs, name, true)?;
    let fine = data_file(session, &plan.audit_datagen, name).map_err(runtime)?;
    let first = &plan.runs[0];
    let req = AuditRequest {
        checkpoint: reports[0].out_dir.join(CHECKPOINT),
        data: fine,
        resolutions: Some(plan.study.resolutions.clone()),
        layers: None,
        samples: plan.study.samples,
        formats: plan.formats.clone(),
        models: plan.models.clone(),
        out: out_dir.to_path_buf(),
    };
    let mut ap = audit::prepare(&req).map_err(|e| {
        runtime(anyhow::anyhow!(
            "{name}: auditing run '{}': {}: {}",
            first.label,
            e.field,
            e.message
        ))
    })?;
    session.say(format!("{name}: auditing run '{}'", first.label));
    let result = audit::run(&ap).map_err(runtime)?;
    // The summary names its inputs: the experiment's, not the session's scratch paths.
    ap.checkpoint = PathBuf::from(format!("run '{}' of {name}", first.label));
    ap.data = PathBuf::from(format!("mpno datagen {}", plan.audit_datagen.join(" ")));

    let mut written = Vec::new();
    let path = |suffix: &str| out_dir.join(format!("{name}{suffix}"));
    let csv_path = path(".csv");
    crate::cli::write_atomically(&csv_path, |f| {
        Ok(report::write_layers_csv(f, &result.rows)?)
    })
    .map_err(runtime)?;
    written.push(csv_path);
    let e2e = path("_end_to_end.csv");
    crate::cli::write_atomically(&e2e, |f| {
        Ok(report::write_end_to_end(f, &result.end_to_end)?)
    })
    .map_err(runtime)?;
    written.push(e2e);

    // Over training: every run's log, with its label.
    let mut logs: Vec<(String, Vec<AuditPoint>)> = Vec::new();
    for (r, rep) in plan.runs.iter().zip(&reports) {
        let pts = audit_log::read(&rep.out_dir.join(audit_log::CSV)).map_err(runtime)?;
        logs.push((r.label.clone(), pts));
    }
    let training_csv = path("_training.csv");
    crate::cli::write_atomically(&training_csv, |f| {
        let mut w = csv::Writer::from_writer(f);
        w.write_record(std::iter::once("run").chain(audit_log::HEADER))?;
        for (label, pts) in &logs {
            for p in pts {
                w.write_record(std::iter::once(label.clone()).chain(p.record()))?;
            }
        }
        w.flush()?;
        Ok(())
    })
    .map_err(runtime)?;
    written.push(training_csv);

    let title = plan
        .study
        .title
        .clone()
        .unwrap_or_else(|| format!("{name}: audit of a trained FNO"));
    let md = path(".md");
    let text = markdown(plan, &ap, &result, &logs, &title, name);
    crate::cli::write_atomically(&md, |f| Ok(f.write_all(text.as_bytes())?)).map_err(runtime)?;
    written.push(md);
    let width = (330 * ap.layers.len() as u32 + 300).max(800);
    let save = |fig: &dyn Fn() -> anyhow::Result<Vec<PathBuf>>| fig().map_err(runtime);
    written.extend(save(&|| {
        plot::save(&report::error_figure(&ap, &result), &path(""), (width, 520))
    })?);
    written.extend(save(&|| {
        plot::save(
            &report::ratio_figure(&ap, &result),
            &path("_ratio"),
            (width, 520),
        )
    })?);
    let runs: Vec<(&str, &[AuditPoint])> = logs
        .iter()
        .map(|(l, p)| (l.as_str(), p.as_slice()))
        .collect();
    written.extend(save(&|| {
        plot::save(
            &audit_log::figure(&format!("{title}: over training"), &runs),
            &path("_training"),
            (1500, 520),
        )
    })?);
    written.push(super::write_resolved(out_dir, name, &plan.study).map_err(runtime)?);
    Ok(written)
}

fn sci(x: f64) -> String {
    if x.is_infinite() {
        "inf".into()
    } else if x.is_nan() {
        "-".into()
    } else {
        format!("{x:.2e}")
    }
}

/// NAME.md: the study, the audit summary, and the over-training table (first and last audit of
/// each run, per layer).
fn markdown(
    plan: &AuditPlan,
    ap: &audit::Plan,
    result: &audit::Audit,
    logs: &[(String, Vec<AuditPoint>)],
    title: &str,
    name: &str,
) -> String {
    let mut s = format!(
        "# {title}\n\n{}\n\nThe per-row file (every sample and kept mode) is what `mpno audit` \
         writes as `audit.csv`; this experiment keeps the maxima per layer, grid, format and \
         model (`{name}.csv`, as `audit_layers.csv`) and the end-to-end differences.\n\n",
        plan.study.description,
        name = name
    );
    let summary = report::summary(ap, result);
    // The audit summary's own title becomes a section.
    s.push_str(&summary.replacen("# mpno audit", "## Audit of the trained model", 1));
    let _ = writeln!(
        s,
        "\n## Over training (`[audit] every = N`)\n\n\
         First and last audit of each run: the first test samples at the training grid, the \
         fp32 model's forward-transform inputs; maxima over samples, kept modes and channels. \
         Precision: model III (arithmetic) in the run's audit format; discretization: vs the \
         finest test grid.\n\n\
         | run | layer | step | M | L (estimate) | precision (III) | its bound | discretization | precision / discretization |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|"
    );
    let mut above = 0usize;
    for (label, pts) in logs {
        above += pts.iter().map(|p| p.above).sum::<usize>();
        let steps: Vec<u64> = {
            let mut v: Vec<u64> = pts.iter().map(|p| p.step).collect();
            v.dedup();
            v
        };
        let ends: Vec<u64> = match (steps.first(), steps.last()) {
            (Some(&a), Some(&b)) if a != b => vec![a, b],
            (Some(&a), _) => vec![a],
            _ => vec![],
        };
        let mut layers: Vec<&str> = pts.iter().map(|p| p.layer.as_str()).collect();
        layers.sort_unstable();
        layers.dedup();
        for layer in layers {
            for &step in &ends {
                let at = |kind: &str| {
                    pts.iter().find(|p| {
                        p.step == step
                            && p.layer == layer
                            && p.kind == kind
                            && (kind != "precision" || p.model == "arithmetic")
                    })
                };
                let (Some(p), d) = (at("precision"), at("discretization")) else {
                    continue;
                };
                let ratio = match d {
                    Some(d) if d.measured > 0.0 && p.measured.is_finite() => {
                        sci(p.measured / d.measured)
                    }
                    _ => "-".into(),
                };
                let _ = writeln!(
                    s,
                    "| {label} | {layer} | {step} | {} | {} | {} ({}) | {} | {} | {ratio} |",
                    sci(p.max_abs),
                    sci(p.lipschitz_estimate),
                    sci(p.measured),
                    p.format,
                    sci(p.bound),
                    d.map_or("-".into(), |d| sci(d.measured)),
                );
            }
        }
    }
    let _ = writeln!(
        s,
        "\nOver-training lines with a precision measurement above its bound: {above}{}.",
        if above > 0 { " (a bug)" } else { "" }
    );
    s
}
