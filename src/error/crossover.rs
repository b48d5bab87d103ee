//! The crossover resolution s*: where the discretization error (falling like 1/s for Lipschitz
//! functions) meets the precision error (flat near u M), from the bounds and from the measurements.

use super::sweep::{Kind, Row};
use crate::precision::{Format, Model, ScaledFormat};
use std::collections::BTreeMap;
use std::fmt;

/// How a crossover value was obtained.
#[derive(Clone, Debug, PartialEq)]
pub enum How {
    /// Between two tested sizes: log(discretization) - log(precision) interpolated linearly in
    /// log s (exact for power laws).
    Interpolated,
    /// Beyond the largest tested size s_max, from the bounds only, when the discretization bound
    /// falls exactly like 1/s (L independent of s): s* = s_max D(s_max) / P(s_max). The precision
    /// bound is held at its s_max value (for models II/III it grows like log n, so the true
    /// intersection lies a little below this value).
    Extrapolated,
    /// Discretization <= precision already at the smallest tested size: s* <= s_min (the value
    /// given is s_min).
    AtOrBelowSmallest,
    /// Discretization > precision at every tested size where both are finite, and no
    /// extrapolation applies: s* > the value given (the largest such size).
    Beyond,
    /// No crossover can be computed; why.
    Undefined(String),
}

impl fmt::Display for How {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            How::Interpolated => f.write_str("interpolated"),
            How::Extrapolated => f.write_str("extrapolated (D ~ 1/s, P at s_max)"),
            How::AtOrBelowSmallest => f.write_str("at or below the smallest s"),
            How::Beyond => f.write_str("beyond the largest s"),
            How::Undefined(why) => write!(f, "none: {why}"),
        }
    }
}

/// A crossover estimate: s*, the error level there, and how it was obtained.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    /// s* (NaN when undefined; a bound on s* for AtOrBelowSmallest and Beyond).
    pub s: f64,
    /// The error at s* (both curves meet there); NaN when undefined.
    pub level: f64,
    pub how: How,
}

impl Estimate {
    fn undefined(why: &str) -> Self {
        Estimate {
            s: f64::NAN,
            level: f64::NAN,
            how: How::Undefined(why.into()),
        }
    }
    /// s* when it is a located crossing (interpolated or extrapolated), else None.
    pub fn located(&self) -> Option<f64> {
        matches!(self.how, How::Interpolated | How::Extrapolated).then_some(self.s)
    }
}

/// Where discretization and precision meet, per (mode, format, model).
#[derive(Clone, Debug, PartialEq)]
pub struct Crossover {
    pub mode: Vec<i64>,
    pub format: Format,
    /// The scaled format, for the crossover of a scaled format's rows (`format` its element).
    pub scaled: Option<ScaledFormat>,
    pub model: Model,
    /// Discretization upper bound = precision upper bound.
    pub bounds: Estimate,
    /// Measured discretization error = measured precision error.
    pub measured: Estimate,
}

impl Crossover {
    /// The format as written in tables: the scaled name, or the format's name.
    pub fn format_name(&self) -> String {
        self.scaled
            .map_or_else(|| self.format.to_string(), |s| s.name())
    }
}

/// The first crossing of d(s) below p(s) over sorted (s, d, p), where both are finite.
/// With `extrapolate`, a curve pair that never crosses is extended with d ~ 1/s (when the last
/// two points show it) and p constant.
pub fn crossing(points: &[(usize, f64, f64)], extrapolate: bool) -> Estimate {
    if points.iter().all(|&(_, d, _)| !d.is_finite()) {
        return Estimate::undefined("L = inf (not Lipschitz)");
    }
    let valid: Vec<(f64, f64, f64)> = points
        .iter()
        .filter(|&&(_, d, p)| d.is_finite() && p.is_finite())
        .map(|&(s, d, p)| (s as f64, d, p))
        .collect();
    if valid.is_empty() {
        return Estimate::undefined("no finite precision value (overflow, or no finite bound)");
    }
    // Exact zeros (y = 1 has no discretization error at w != 0) sit far below any positive value.
    let ln = |v: f64| v.max(1e-300).ln();
    for (i, &(s1, d1, p1)) in valid.iter().enumerate() {
        if d1 > p1 {
            continue;
        }
        if i == 0 {
            return Estimate {
                s: s1,
                level: p1,
                how: How::AtOrBelowSmallest,
            };
        }
        let (s0, d0, p0) = valid[i - 1];
        let (f0, f1) = (ln(d0) - ln(p0), ln(d1) - ln(p1));
        let t = if f0 == f1 { 1.0 } else { f0 / (f0 - f1) };
        let s = (s0.ln() + t * (s1.ln() - s0.ln())).exp();
        let level = (ln(p0) + t * (ln(p1) - ln(p0))).exp();
        return Estimate {
            s,
            level,
            how: How::Interpolated,
        };
    }
    let &(s1, d1, p1) = valid.last().expect("non-empty");
    if extrapolate && valid.len() >= 2 {
        let (s0, d0, _) = valid[valid.len() - 2];
        // D ~ 1/s exactly when L, M do not depend on s (not the aliased family, whose L grows).
        if p1 > 0.0 && ((d1 * s1) / (d0 * s0) - 1.0).abs() < 1e-9 {
            return Estimate {
                s: s1 * d1 / p1,
                level: p1,
                how: How::Extrapolated,
            };
        }
    }
    Estimate {
        s: s1,
        level: f64::NAN,
        how: How::Beyond,
    }
}

/// Crossover resolution s* per mode, format and model from a sweep's rows, from the bounds
/// (discretization upper bound vs precision bound, extrapolated when D ~ 1/s) and from the
/// measurements (interpolated only).
pub fn crossovers(rows: &[Row]) -> Vec<Crossover> {
    let mut disc: BTreeMap<(&Vec<i64>, usize), &Row> = BTreeMap::new();
    // Scaled rows share their element format: the scaled format is part of the key.
    type Key<'a> = (&'a Vec<i64>, Format, Option<ScaledFormat>, Model);
    let mut prec: BTreeMap<Key, Vec<&Row>> = BTreeMap::new();
    for r in rows {
        match (r.kind, r.model) {
            (Kind::Discretization, _) => {
                disc.insert((&r.mode, r.s), r);
            }
            (Kind::Precision, Some(m)) => prec
                .entry((&r.mode, r.format, r.scaled, m))
                .or_default()
                .push(r),
            (Kind::Precision, None) => {}
        }
    }
    prec.into_iter()
        .map(|((mode, format, scaled, model), mut ps)| {
            ps.sort_by_key(|r| r.s);
            let pairs: Vec<(&Row, &Row)> = ps
                .iter()
                .filter_map(|p| disc.get(&(mode, p.s)).map(|d| (*d, *p)))
                .collect();
            let b: Vec<(usize, f64, f64)> =
                pairs.iter().map(|(d, p)| (p.s, d.bound, p.bound)).collect();
            let m: Vec<(usize, f64, f64)> = pairs
                .iter()
                .map(|(d, p)| (p.s, d.measured, p.measured))
                .collect();
            Crossover {
                mode: mode.clone(),
                format,
                scaled,
                model,
                bounds: crossing(&b, true),
                measured: crossing(&m, false),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_power_laws_exactly() {
        // d = 1/s, p = 1e-3: s* = 1000, between the tested 512 and 1024.
        let pts: Vec<(usize, f64, f64)> = (3..12)
            .map(|k| (1usize << k, 1.0 / (1u64 << k) as f64, 1e-3))
            .collect();
        let e = crossing(&pts, false);
        assert_eq!(e.how, How::Interpolated);
        assert!((e.s - 1000.0).abs() < 1e-9 * 1000.0, "{e:?}");
        assert!((e.level - 1e-3).abs() < 1e-15);
    }

    #[test]
    fn extrapolates_only_a_1_over_s_bound() {
        let pts: Vec<(usize, f64, f64)> = (3..8)
            .map(|k| (1usize << k, 1.0 / (1u64 << k) as f64, 1e-4))
            .collect();
        let e = crossing(&pts, true);
        assert_eq!(e.how, How::Extrapolated);
        assert!((e.s - 1e4).abs() < 1e-6, "{e:?}");
        assert_eq!(crossing(&pts, false).how, How::Beyond);
        // A flat discretization curve (the aliased sine) never meets: no extrapolation.
        let flat: Vec<(usize, f64, f64)> = (3..8).map(|k| (1usize << k, 0.5, 1e-4)).collect();
        let e = crossing(&flat, true);
        assert_eq!((e.how, e.s), (How::Beyond, 128.0));
    }

    #[test]
    fn zero_discretization_and_missing_bounds() {
        let zero: Vec<(usize, f64, f64)> = (3..6).map(|k| (1usize << k, 0.0, 1e-8)).collect();
        assert_eq!(crossing(&zero, true).how, How::AtOrBelowSmallest);
        let inf: Vec<(usize, f64, f64)> =
            (3..6).map(|k| (1usize << k, f64::INFINITY, 1e-8)).collect();
        assert!(matches!(crossing(&inf, true).how, How::Undefined(_)));
        let range: Vec<(usize, f64, f64)> =
            (3..6).map(|k| (1usize << k, 1.0, f64::INFINITY)).collect();
        assert!(matches!(crossing(&range, true).how, How::Undefined(_)));
    }
}
