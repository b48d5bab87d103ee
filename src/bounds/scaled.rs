//! Model I bound for scaled formats (docs/bounds.md, "Scaled formats").
//!
//! A scaled format stores V_j as S_g fl(V_j / S_g), S_g = 2^X_g the scale of V_j's group g and fl
//! the saturating round-to-nearest-even to the element format (max_finite Mx, smallest normal
//! 2^emin, smallest subnormal sigma, unit roundoff u). With t_j = V_j / S_g (exact):
//!
//!   |V_j - q(V_j)| <= b_j = S_g * { |t_j| - Mx      if |t_j| > Mx   (saturated to Mx)
//!                                 { u |t_j|          if 2^emin <= |t_j| <= Mx
//!                                 { sigma / 2        if |t_j| < 2^emin
//!
//! and the normalised coefficient moves by at most n^-1 sum_j b_j (|exp(.)| = 1). Grouped:
//! n^-1 sum_g n_g (u amax_g + S_g sigma / 2 + max(0, amax_g - Mx S_g)); the saturation term is 0
//! for the per-tensor / per-channel recipe with the current amax (amax_g <= Mx S_g), and at most
//! amax_g (1 - Mx / 2^(emax+1)) = amax_g / 8 for MX blocks of E4M3 or E5M2.

use crate::precision::{Format, ScaledFormat};

/// The per-element bound b_j of the module docs for `v` in a group of exponent `x` (S = 2^x).
pub fn element_bound(v: f64, x: i32, elem: Format) -> f64 {
    let s = crate::precision::pow2(x);
    let t = (v / s).abs();
    let b = if t > elem.max_finite() {
        t - elem.max_finite()
    } else if t >= elem.min_normal() {
        elem.unit_roundoff() * t
    } else {
        0.5 * elem.min_subnormal()
    };
    b * s
}

/// Model I bound per normalised coefficient for samples (row-major, `shape`) stored in the
/// scaled format `sf` with scales from the current amax: n^-1 sum_j b_j, inflated by 1e-12
/// relative for the f64 evaluation of the sum, plus the f64 reference's own error
/// ([`super::f64_reference_error`] with M (1 + u)). Infinite when a group holds NaN or inf.
pub fn scaled_input_rounding(samples: &[f64], shape: &[usize], sf: &ScaledFormat) -> f64 {
    let Ok((group, count)) = sf.groups(shape) else {
        return f64::INFINITY;
    };
    let mut amax = vec![0.0f64; count];
    for (&v, &g) in samples.iter().zip(&group) {
        if !v.is_finite() {
            return f64::INFINITY;
        }
        amax[g] = amax[g].max(v.abs());
    }
    let exps: Vec<i32> = amax.iter().map(|&a| sf.scale_exponent(a)).collect();
    let n = samples.len();
    let sum: f64 = samples
        .iter()
        .zip(&group)
        .map(|(&v, &g)| element_bound(v, exps[g], sf.elem))
        .sum();
    let m = amax.iter().fold(0.0f64, |a, &b| a.max(b));
    sum / n as f64 * (1.0 + 1e-12) + super::f64_reference_error(m * (1.0 + sf.unit_roundoff()), n)
}

/// The grouped, amax form of the bound (no sample values, only each group's size and amax):
/// n^-1 sum_g n_g (u amax_g + S_g sigma / 2 + max(0, amax_g - Mx S_g)) >= n^-1 sum_j b_j.
/// `groups` holds (n_g, amax_g).
pub fn scaled_input_rounding_amax(groups: &[(usize, f64)], sf: &ScaledFormat) -> f64 {
    let e = sf.elem;
    let n: usize = groups.iter().map(|g| g.0).sum();
    let total: f64 = groups
        .iter()
        .map(|&(ng, a)| {
            let s = crate::precision::pow2(sf.scale_exponent(a));
            ng as f64
                * (e.unit_roundoff() * a
                    + 0.5 * s * e.min_subnormal()
                    + (a - e.max_finite() * s).max(0.0))
        })
        .sum();
    total / n.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::precision::{Scaling, quantize};
    use rand::{RngExt, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// Per element: the measured |V - q(V)| never exceeds b_j, over random magnitudes spanning
    /// the subnormal, normal and saturated ranges of every scaling; b_j is attained (ratio > 0.9)
    /// somewhere, so the bound is not loose by construction.
    #[test]
    fn element_bound_holds_and_is_tight() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        for elem in [Format::E4m3, Format::E5m2] {
            for scaling in [
                Scaling::Tensor,
                Scaling::Block { k: 32 },
                Scaling::Block { k: 5 },
            ] {
                let sf = ScaledFormat::new(elem, scaling).unwrap();
                let x: Vec<f64> = (0..4096)
                    .map(|_| {
                        let e: f64 = rng.random_range(-30.0..12.0);
                        let s = if rng.random::<bool>() { 1.0 } else { -1.0 };
                        s * 2f64.powf(e)
                    })
                    .collect();
                let q = quantize(&x, &[x.len()], &sf).unwrap();
                let mut worst: f64 = 0.0;
                for (j, (&v, &r)) in x.iter().zip(&q.values).enumerate() {
                    let b = element_bound(v, q.exponents[q.group[j]].unwrap(), elem);
                    let err = (v - r).abs();
                    assert!(err <= b, "{} {v:e}: {err:e} > {b:e}", sf.name());
                    if b > 0.0 {
                        worst = worst.max(err / b);
                    }
                }
                assert!(worst > 0.9, "{}: worst ratio {worst}", sf.name());
                // The amax form is above the per-element form.
                let (_, count) = sf.groups(&[x.len()]).unwrap();
                let mut groups = vec![(0usize, 0.0f64); count];
                for (j, &v) in x.iter().enumerate() {
                    let g = &mut groups[q.group[j]];
                    g.0 += 1;
                    g.1 = g.1.max(v.abs());
                }
                let per_elem = scaled_input_rounding(&x, &[x.len()], &sf);
                assert!(per_elem <= scaled_input_rounding_amax(&groups, &sf) * (1.0 + 1e-9));
            }
        }
    }

    #[test]
    fn saturation_term_of_mx_blocks() {
        // E4M3 MX block with amax 500: X = 0, 500 saturates to 448: b = 52, the error exactly.
        let sf = ScaledFormat::new(Format::E4m3, Scaling::Block { k: 32 }).unwrap();
        assert_eq!(element_bound(500.0, 0, Format::E4m3), 52.0);
        let q = quantize(&[500.0], &[1], &sf).unwrap();
        assert_eq!(500.0 - q.values[0], 52.0);
        // Per-tensor with the current amax never saturates: the bound is u amax + S sigma / 2.
        let te = ScaledFormat::new(Format::E4m3, Scaling::Tensor).unwrap();
        let b = scaled_input_rounding_amax(&[(1, 500.0)], &te);
        assert_eq!(b, 500.0 / 16.0 + 0.5 * 2.0 * 2f64.powi(-9));
        // Non-finite samples: no bound.
        assert!(scaled_input_rounding(&[1.0, f64::NAN], &[2], &te).is_infinite());
    }
}
