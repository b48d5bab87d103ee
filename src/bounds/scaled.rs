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

use crate::precision::{Format, ScaledFormat, Scaling};

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

/// The element bounds of samples (row-major, `shape`) quantized with `sf` from the current amax:
/// (n^-1 sum_j b_j, max_j (|v_j| + b_j), (n^-1 sum_j (|v_j| + b_j)^2)^(1/2), max_j |v_j|), the
/// second and third bounding max |q(v)| and the RMS of q(v). None when a group holds NaN or inf.
fn input_terms(
    samples: &[f64],
    shape: &[usize],
    sf: &ScaledFormat,
) -> Option<(f64, f64, f64, f64)> {
    let (group, count) = sf.groups(shape).ok()?;
    let mut amax = vec![0.0f64; count];
    for (&v, &g) in samples.iter().zip(&group) {
        if !v.is_finite() {
            return None;
        }
        amax[g] = amax[g].max(v.abs());
    }
    let exps: Vec<i32> = amax.iter().map(|&a| sf.scale_exponent(a)).collect();
    let n = samples.len() as f64;
    let (mut sum, mut mq, mut sq) = (0.0f64, 0.0f64, 0.0f64);
    for (&v, &g) in samples.iter().zip(&group) {
        let b = element_bound(v, exps[g], sf.elem);
        sum += b;
        mq = mq.max(v.abs() + b);
        sq += (v.abs() + b).powi(2);
    }
    let m = amax.iter().fold(0.0f64, |a, &b| a.max(b));
    Some((sum / n, mq, (sq / n).sqrt(), m))
}

/// Model I bound per normalised coefficient for samples (row-major, `shape`) stored in the
/// scaled format `sf` with scales from the current amax: n^-1 sum_j b_j, inflated by
/// [`f64_evaluation`] for the f64 evaluation of the sum, plus the f64 reference's own error
/// ([`super::f64_reference_error`] with M (1 + u)). Infinite when a group holds NaN or inf.
pub fn scaled_input_rounding(samples: &[f64], shape: &[usize], sf: &ScaledFormat) -> f64 {
    let Some((mean_b, _, _, m)) = input_terms(samples, shape, sf) else {
        return f64::INFINITY;
    };
    mean_b * f64_evaluation(samples.len())
        + super::f64_reference_error(m * (1.0 + sf.unit_roundoff()), samples.len())
}

/// The storage constants (r, c) of a scaled format: a value v of a group with amax `a` and scale
/// S is stored within r |v| + S sigma / 2 of itself, and S <= c a + 2^-127 (docs/bounds.md,
/// "Scaled storage"):
/// - tensor / channel with margin m: 2^X0 < 2 a / Mx for the smallest X0 with a <= Mx 2^X0, so
///   S = 2^(X0 + m) < c a with c = 2^(m+1) / Mx; for m >= 0 nothing saturates (r = u), for
///   m < 0 |v / S| <= Mx 2^-m and a saturated value loses at most 1 - 2^m of itself;
/// - MX blocks: S = 2^(floor(log2 a) - emax) <= a / 2^emax (c = 2^-emax) and |v / S| < 2^(emax+1),
///   so a saturated value loses at most 1 - Mx / 2^(emax+1) (= 1/8 for E4M3 and E5M2).
///
/// The 2^-127 is the E8M0 floor (a group whose amax is below Mx 2^-128 gets S = 2^-127).
pub fn storage_constants(sf: &ScaledFormat) -> (f64, f64) {
    let e = sf.elem;
    let u = e.unit_roundoff();
    match sf.scaling {
        Scaling::Block { .. } => (
            u.max(1.0 - e.max_finite() / crate::precision::pow2(e.emax() + 1)),
            crate::precision::pow2(-e.emax()),
        ),
        Scaling::Tensor | Scaling::Channel { .. } => {
            let m = sf.margin.clamp(-64, 64);
            let r = if m >= 0 {
                u
            } else {
                u.max(1.0 - crate::precision::pow2(m))
            };
            (r, crate::precision::pow2(m + 1) / e.max_finite())
        }
    }
}

/// Largest amax a group can have without its scale exponent hitting the E8M0 ceiling 2^127
/// (beyond it the scale clamps and values saturate without bound): Mx 2^(127 - max(m, 0)) for
/// tensor / channel scaling, Mx 2^127 (below the MX ceiling 2^(128 + emax)) for blocks.
pub fn scale_ceiling(sf: &ScaledFormat) -> f64 {
    let m = match sf.scaling {
        Scaling::Block { .. } => 0,
        _ => sf.margin.clamp(0, 64),
    };
    sf.elem.max_finite() * crate::precision::pow2(127 - m)
}

/// Model II in a scaled format (docs/bounds.md, "Scaled storage"), per normalised coefficient:
/// the samples quantized as under model I, then every stage's output array (planar, line by
/// line: `fft::transform_scaled`) quantized with scales from its current amax. Each stored array
/// of length L has ||q(y) - y||_2 <= rho(L) ||y||_2 + sigma sqrt(2L) 2^-127 / 2 with
/// rho(L) = r + c sigma sqrt(L) / 2 ([`storage_constants`]), so the model II bound holds with u
/// replaced by rho: eps = `fft::storage_relative_error_bound`, and
///
/// ```text
/// bound = n^-1 sum_j b_j + eps RMS(|v_j| + b_j) + clamp + f64 reference,
/// clamp = P growth sigma 2^-127 sqrt2 (1 + min(eps, 1))  (P stores in all)
/// ```
///
/// inflated by [`f64_evaluation`] for its f64 evaluation. Infinite (with the reason) when a group
/// holds NaN or inf, or a stored value may pass the scale ceiling ([`scale_ceiling`]).
pub fn scaled_storage(
    samples: &[f64],
    shape: &[usize],
    alg: crate::fft::Algorithm,
    sf: &ScaledFormat,
) -> Result<f64, String> {
    let Some((mean_b, mq, rms, _)) = input_terms(samples, shape, sf) else {
        return Err(format!("{sf}: a group holds NaN or inf (no finite scale)"));
    };
    let (r, c) = storage_constants(sf);
    let sigma = sf.elem.min_subnormal();
    let eps = crate::fft::storage_relative_error_bound(shape, alg, |l| {
        r + c * sigma * (l as f64).sqrt() / 2.0
    });
    if !eps.is_finite() {
        return Err(format!("{sf}: no finite model II bound"));
    }
    let growth = crate::fft::growth(shape, alg, crate::precision::Model::Storage);
    let reach = growth * mq * (1.0 + eps.min(1.0));
    if reach > scale_ceiling(sf) {
        return Err(format!(
            "range: stored values may reach {reach:.3e} > the scale ceiling {:e} of {sf}",
            scale_ceiling(sf)
        ));
    }
    let stores: usize = shape
        .iter()
        .map(|&s| crate::fft::storage_passes(s, alg).0)
        .sum();
    let clamp = stores as f64
        * growth
        * sigma
        * crate::precision::pow2(-127)
        * 2f64.sqrt()
        * (1.0 + eps.min(1.0));
    let n = samples.len();
    Ok((mean_b + eps * rms + clamp) * f64_evaluation(n)
        + super::f64_reference_error(mq * (1.0 + eps.min(1.0)), n))
}

/// 1 + gamma_{n+8}(2^-53): covers the f64 evaluation of the bounds above, whose terms are sums
/// of n nonnegative numbers (relative error at most gamma_{n-1}, Higham 4.3) followed by a few
/// roundings (the division by n, a square root, the products and sums of the final formula,
/// at most 9 more). A fixed 1e-12 (used until 2026-12-07) was too small past n ~ 9000.
fn f64_evaluation(n: usize) -> f64 {
    use crate::precision::{Format, gamma};
    1.0 + gamma(n as f64 + 8.0, Format::Fp64.unit_roundoff())
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
    use crate::precision::{pow2, quantize};
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

    /// Per stored array: ||q(y) - y||_2 <= rho(L) ||y||_2 + sigma sqrt(2L) 2^-127 / 2 with
    /// rho(L) = r + c sigma sqrt(L) / 2, planar (re and im each a tensor), for random complex
    /// arrays whose magnitudes span many binades (subnormal elements included).
    #[test]
    fn stored_array_error_is_within_rho() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        for name in [
            "e4m3@tensor",
            "e5m2@tensor",
            "e4m3@mx32",
            "e5m2@mx4",
            "e4m3@mx1",
        ] {
            let sf: ScaledFormat = name.parse().unwrap();
            let (r, c) = storage_constants(&sf);
            let sigma = sf.elem.min_subnormal();
            let mut worst: f64 = 0.0;
            for trial in 0..200 {
                let l = 1 + trial % 97;
                let spread: f64 = rng.random_range(0.0..40.0);
                let mut draw = || {
                    let e: f64 = rng.random_range(-spread..2.0);
                    rng.random_range(-1.0..1.0) * 2f64.powf(e)
                };
                let (re, im): (Vec<f64>, Vec<f64>) = (0..l).map(|_| (draw(), draw())).unzip();
                let (qr, qi) = (
                    quantize(&re, &[l], &sf).unwrap().values,
                    quantize(&im, &[l], &sf).unwrap().values,
                );
                let err: f64 = re
                    .iter()
                    .zip(&qr)
                    .chain(im.iter().zip(&qi))
                    .map(|(a, b)| (a - b).powi(2))
                    .sum::<f64>()
                    .sqrt();
                let norm = re.iter().chain(&im).map(|a| a * a).sum::<f64>().sqrt();
                let rho = r + c * sigma * (l as f64).sqrt() / 2.0;
                let bound = rho * norm + sigma * (2.0 * l as f64).sqrt() * pow2(-127) / 2.0;
                assert!(err <= bound, "{name} L={l}: {err:e} > {bound:e}");
                worst = worst.max(err / bound);
            }
            // The relative part r is what the bound is made of: it is approached.
            println!("{name}: (r, c) = ({r}, {c:e}), worst ratio {worst:.3}");
            assert!(worst > 0.2, "{name}: worst ratio {worst}");
        }
        // The constants: E4M3 per tensor u = 1/16, c = 2 / 448; MX r = 1/8, c = 2^-8 (E4M3).
        let te: ScaledFormat = "e4m3@tensor".parse().unwrap();
        assert_eq!(storage_constants(&te), (1.0 / 16.0, 2.0 / 448.0));
        let mx: ScaledFormat = "e4m3@mx32".parse().unwrap();
        assert_eq!(storage_constants(&mx), (1.0 / 8.0, pow2(-8)));
        let mx5: ScaledFormat = "e5m2@mx32".parse().unwrap();
        assert_eq!(storage_constants(&mx5), (1.0 / 8.0, pow2(-15)));
    }
}
