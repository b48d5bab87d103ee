use super::sweep::{Kind, Row};
use std::io::Write;

/// The results-file contract (docs/results-files.md): the twelve contract columns, then
/// `prob_bound` (the probabilistic input-rounding bound beside a precision row's worst-case
/// bound), `constants` (what the bound rests on: how L and M were obtained, or `samples`) and
/// `note` (why a bound is infinite or a measurement a range failure; how a coefficient was
/// obtained).
pub const CSV_HEADER: [&str; 15] = [
    "basis",
    "function",
    "dim",
    "s",
    "mode",
    "kind",
    "format",
    "model",
    "measured",
    "bound",
    "lower_bound",
    "ratio",
    "prob_bound",
    "constants",
    "note",
];

fn num(x: f64) -> String {
    if x.is_infinite() {
        if x > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        format!("{x:e}")
    }
}

/// The fifteen fields of a row, as [`write_csv`] writes them (for writers that add columns).
pub fn record(r: &Row) -> [String; 15] {
    [
        r.basis.clone(),
        r.function.clone(),
        r.dim.to_string(),
        r.s.to_string(),
        r.mode_string(),
        r.kind.to_string(),
        r.format_name(),
        r.model.map_or("none".into(), |m| m.to_string()),
        num(r.measured),
        num(r.bound),
        r.lower_bound.map_or(String::new(), num),
        if r.bound.is_finite() {
            num(r.ratio())
        } else {
            String::new()
        },
        r.prob_bound.map_or(String::new(), num),
        r.constants.clone(),
        r.note.clone(),
    ]
}

/// Write rows as CSV (header first) to any writer.
pub fn write_csv<W: Write>(w: W, rows: &[Row]) -> csv::Result<()> {
    let mut wr = csv::Writer::from_writer(w);
    wr.write_record(CSV_HEADER)?;
    for r in rows {
        wr.write_record(record(r))?;
    }
    wr.flush()?;
    Ok(())
}

/// A readable aligned table of the rows (what `mpno errors` prints without --out).
pub fn write_table<W: Write>(mut w: W, rows: &[Row]) -> std::io::Result<()> {
    if let Some(r) = rows.first() {
        let constants = rows
            .iter()
            .find(|r| r.kind == Kind::Discretization)
            .map_or("", |r| r.constants.as_str());
        writeln!(
            w,
            "basis {}, function {}, dim {}, L and M: {constants}",
            r.basis, r.function, r.dim
        )?;
    }
    writeln!(
        w,
        "{:>7} {:>8} {:<14} {:<7} {:<17} {:>11} {:>11} {:>11} {:>7}  note",
        "s", "mode", "kind", "format", "model", "measured", "bound", "lower", "ratio"
    )?;
    for r in rows {
        let model = r.model.map_or("none".into(), |m| m.to_string());
        let ratio = if r.bound.is_finite() {
            format!("{:.3}", r.ratio())
        } else {
            "-".into()
        };
        let fmt_e = |x: f64| {
            if x.is_infinite() {
                "inf".to_string()
            } else {
                format!("{x:.3e}")
            }
        };
        let format = if r.kind == Kind::Discretization {
            "-".to_string()
        } else {
            r.format_name()
        };
        writeln!(
            w,
            "{:>7} {:>8} {:<14} {:<7} {:<17} {:>11} {:>11} {:>11} {:>7}  {}",
            r.s,
            r.mode_string(),
            r.kind.to_string(),
            format,
            model,
            fmt_e(r.measured),
            fmt_e(r.bound),
            r.lower_bound.map_or("-".into(), fmt_e),
            ratio,
            r.note
        )?;
    }
    Ok(())
}
