//! Measuring discretization and precision errors of the Fourier coefficients, in parallel sweeps.
//!
//! For each grid size s the function is sampled once on x_j = j/s (j in {0..s-1}^d) and its
//! normalised DFT computed in f64 (the reference). Then, per requested mode w:
//! - discretization error = |F(v)(w) - F_s(v)(w)|, the exact continuous coefficient against the
//!   f64 DFT coefficient;
//! - precision error, per format and model = |F_s^{fmt, model}(v)(w) - F_s(v)(w)|, the same discrete
//!   transform of the same samples under the precision model against the f64 one.
//!
//! Each is written beside its bound (crate::bounds) as one row of the results-file contract.

mod crossover;
mod csv_out;
mod stats;
mod sweep;

pub use crossover::{Crossover, Estimate, How, crossing, crossovers};
pub use csv_out::{CSV_HEADER, record, write_csv, write_table};
pub use stats::{StatRow, Statistic, StatsConfig, precision_stats, stats_memory, write_stats_csv};
pub use sweep::{Kind, Row, SweepConfig, SweepError, run_sweep};
