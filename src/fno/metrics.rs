//! Per-epoch training metrics, written as CSV and JSON after every epoch (each file rewritten
//! through a temporary file and renamed, so a reader never sees a partial file). Rewriting the
//! whole history each epoch costs O(E^2) over E epochs, so a rewrite waits until
//! [`WRITE_SHARE`]^-1 times its last cost has passed (writing then takes at most about 2% of a
//! run: every epoch unless epochs are tiny and the history long), and always happens at
//! checkpoints and at the end ([`MetricsLog::flush`]).
//!
//! CSV columns, in order: epoch, train_loss, lr, seconds, samples_per_s, peak_memory_bytes,
//! skipped_steps, overflow_events, saturated_values, loss_scale, policy, then `test_l2_rR` and `test_h1_rR` for each
//! test resolution R (ascending). Floats are printed in Rust's shortest round-trip form; NaN and
//! infinities as `NaN`, `inf`, `-inf` in the CSV and as `null` in the JSON (read back as NaN).

use crate::cli::write_atomically;
use crate::fno::data::{Batches, Split, UnitGaussianNormalizer};
use crate::fno::loss;
use crate::fno::scalar::Scalar;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Share of a run's time the metrics rewrites may take: a rewrite waits until its last cost
/// divided by this has passed since that rewrite.
pub const WRITE_SHARE: f64 = 0.02;

mod nan_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        if x.is_finite() {
            s.serialize_f64(*x)
        } else {
            s.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

/// Test errors at one resolution (means over the test samples).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestMetrics {
    /// Grid points per axis.
    pub resolution: usize,
    /// Mean relative L2 error.
    #[serde(with = "nan_null")]
    pub l2: f64,
    /// Mean relative H1 error.
    #[serde(with = "nan_null")]
    pub h1: f64,
}

/// One epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 0-based.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches (in the config's loss).
    #[serde(with = "nan_null")]
    pub train_loss: f64,
    pub test: Vec<TestMetrics>,
    /// Learning rate used in this epoch.
    pub lr: f64,
    /// Wall-clock seconds of the epoch (training and evaluation).
    pub seconds: f64,
    /// Training samples per second.
    pub samples_per_s: f64,
    /// Peak bytes of live tensors (activations, weights, gradients, optimizer state).
    pub peak_memory_bytes: u64,
    /// Optimizer steps skipped because of inf/NaN.
    pub skipped_steps: u64,
    /// inf/NaN events detected.
    pub overflow_events: u64,
    /// Values the scaled stages' quantizations clipped to the element format's largest finite
    /// value, over the epoch's training steps (0 without scaled stages).
    #[serde(default)]
    pub saturated_values: u64,
    /// Loss scale at the end of the epoch (1 without loss scaling).
    pub loss_scale: f64,
    /// Precision policy of the epoch (`FWD_FFT/CONTRACTION/INV_FFT/MLP`).
    pub policy: String,
}

fn num(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else {
        format!("{x}")
    }
}

/// The history of a run and where it is written.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricsLog {
    pub records: Vec<EpochRecord>,
    pub csv_path: PathBuf,
    pub json_path: PathBuf,
    /// Records in the files, when the last rewrite ended and what it cost.
    written: Option<(usize, Instant, Duration)>,
}

impl MetricsLog {
    /// Empty history written to `DIR/metrics.csv` and `DIR/metrics.json`.
    pub fn new(dir: &Path) -> Self {
        MetricsLog {
            records: Vec::new(),
            csv_path: dir.join("metrics.csv"),
            json_path: dir.join("metrics.json"),
            written: None,
        }
    }

    /// Test resolutions over all records, ascending.
    pub fn resolutions(&self) -> Vec<usize> {
        let mut r: Vec<usize> = self
            .records
            .iter()
            .flat_map(|e| e.test.iter().map(|t| t.resolution))
            .collect();
        r.sort_unstable();
        r.dedup();
        r
    }

    /// The CSV text (header and one row per record).
    pub fn to_csv(&self) -> String {
        let res = self.resolutions();
        let mut out = String::from(
            "epoch,train_loss,lr,seconds,samples_per_s,peak_memory_bytes,skipped_steps,\
             overflow_events,saturated_values,loss_scale,policy",
        );
        for r in &res {
            out.push_str(&format!(",test_l2_r{r},test_h1_r{r}"));
        }
        out.push('\n');
        for e in &self.records {
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{},{}",
                e.epoch,
                num(e.train_loss),
                num(e.lr),
                num(e.seconds),
                num(e.samples_per_s),
                e.peak_memory_bytes,
                e.skipped_steps,
                e.overflow_events,
                e.saturated_values,
                num(e.loss_scale),
                e.policy
            ));
            for r in &res {
                match e.test.iter().find(|t| t.resolution == *r) {
                    Some(t) => out.push_str(&format!(",{},{}", num(t.l2), num(t.h1))),
                    None => out.push_str(",,"),
                }
            }
            out.push('\n');
        }
        out
    }

    /// The JSON text: a list of records.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.records).expect("metrics serialise")
    }

    /// Records from [`to_json`](Self::to_json)'s text (e.g. a checkpoint's `metrics`).
    pub fn records_from_json(text: &str) -> anyhow::Result<Vec<EpochRecord>> {
        if text.trim().is_empty() {
            return Ok(Vec::new());
        }
        serde_json::from_str(text).context("metrics history is not valid JSON records")
    }

    /// Add a record and rewrite both files unless the last rewrite was too recent for its cost
    /// (see [`WRITE_SHARE`]; [`flush`](Self::flush) writes what is pending).
    pub fn push(&mut self, record: EpochRecord) -> anyhow::Result<()> {
        self.records.push(record);
        let due = match self.written {
            None => true,
            Some((_, end, cost)) => end.elapsed().as_secs_f64() * WRITE_SHARE >= cost.as_secs_f64(),
        };
        if due { self.write() } else { Ok(()) }
    }

    /// Rewrite both files if records were added since the last rewrite.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        match self.written {
            Some((n, _, _)) if n == self.records.len() => Ok(()),
            _ => self.write(),
        }
    }

    /// Keep the records of epochs before `epoch` (resuming from a checkpoint after `epoch`
    /// epochs) and rewrite both files.
    pub fn truncate(&mut self, epoch: usize) -> anyhow::Result<()> {
        self.records.retain(|r| r.epoch < epoch);
        self.write()
    }

    /// Rewrite both files.
    pub fn write(&mut self) -> anyhow::Result<()> {
        let start = Instant::now();
        for (path, text) in [
            (&self.csv_path, self.to_csv()),
            (&self.json_path, self.to_json()),
        ] {
            write_atomically(path, |f| {
                f.write_all(text.as_bytes())?;
                Ok(())
            })
            .with_context(|| format!("cannot write {}", path.display()))?;
        }
        self.written = Some((self.records.len(), Instant::now(), start.elapsed()));
        Ok(())
    }
}

/// Mean relative L2 and H1 errors of `predict` over a test split, in batches of `batch_size` in
/// order. Inputs are encoded with `x_norm`, predictions decoded with `y_norm` (when given) and
/// compared with the raw targets, as neuraloperator evaluates. `predict(x, batch)` gets a batch
/// of `batch` encoded inputs and returns the model's (encoded) outputs.
pub fn evaluate<T: Scalar>(
    split: &Split<T>,
    batch_size: usize,
    x_norm: Option<&UnitGaussianNormalizer>,
    y_norm: Option<&UnitGaussianNormalizer>,
    mut predict: impl FnMut(&[T], usize) -> anyhow::Result<Vec<T>>,
) -> anyhow::Result<TestMetrics> {
    let (mut l2, mut h1) = (0.0, 0.0);
    let mut xb = Vec::new();
    let mut yb = Vec::new();
    for idx in Batches::sequential(split.len(), batch_size) {
        split.x.gather_into(&idx, &mut xb);
        split.y.gather_into(&idx, &mut yb);
        if let Some(n) = x_norm {
            n.encode(&mut xb);
        }
        let mut pred = predict(&xb, idx.len())?;
        anyhow::ensure!(
            pred.len() == yb.len(),
            "evaluation: the model returned {} values for a batch of {} targets",
            pred.len(),
            yb.len()
        );
        if let Some(n) = y_norm {
            n.decode(&mut pred);
        }
        l2 += loss::l2_per_sample(&pred, &yb, idx.len())
            .iter()
            .sum::<f64>();
        h1 += loss::h1_per_sample(&pred, &yb, idx.len(), &split.y.grid)
            .iter()
            .sum::<f64>();
    }
    let n = split.len().max(1) as f64;
    Ok(TestMetrics {
        resolution: split.resolution(),
        l2: l2 / n,
        h1: h1 / n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: usize) -> EpochRecord {
        EpochRecord {
            epoch,
            train_loss: 0.5 / (epoch + 1) as f64,
            test: vec![TestMetrics {
                resolution: 16,
                l2: 0.1,
                h1: 0.2,
            }],
            lr: 1e-3,
            seconds: 1.0,
            samples_per_s: 10.0,
            peak_memory_bytes: 1,
            skipped_steps: 0,
            overflow_events: 0,
            saturated_values: 0,
            loss_scale: 1.0,
            policy: "fp32".into(),
        }
    }

    /// A rewrite waits while the last one's cost is more than WRITE_SHARE of the time since;
    /// flush writes what is pending, and the files then hold every record.
    #[test]
    fn rewrites_are_throttled_by_their_cost_and_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = MetricsLog::new(dir.path());
        let rows = |log: &MetricsLog| {
            let csv = std::fs::read_to_string(&log.csv_path).unwrap();
            let json = std::fs::read_to_string(&log.json_path).unwrap();
            let n = MetricsLog::records_from_json(&json).unwrap().len();
            assert_eq!(csv.lines().count() - 1, n, "the CSV and the JSON disagree");
            n
        };
        log.push(record(0)).unwrap();
        assert_eq!(rows(&log), 1, "the first record is written at once");
        // As if the last rewrite had just taken an hour: the next ones wait.
        log.written = Some((1, Instant::now(), Duration::from_secs(3600)));
        log.push(record(1)).unwrap();
        log.push(record(2)).unwrap();
        assert_eq!(rows(&log), 1);
        log.flush().unwrap();
        assert_eq!(rows(&log), 3);
        assert_eq!(
            std::fs::read_to_string(&log.csv_path).unwrap(),
            log.to_csv()
        );
        // A cheap rewrite long enough ago: every push writes.
        log.written = Some((3, Instant::now() - Duration::from_secs(1), Duration::ZERO));
        log.push(record(3)).unwrap();
        assert_eq!(rows(&log), 4);
    }
}
