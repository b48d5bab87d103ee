//! The element functions of [`Pointwise`] and the CPU's fused element-wise passes (issue 24,
//! "fusion and fewer bytes"): a block's `f + bias + skip` and its GELU, and the backward's
//! `act'(x) g` with the sums that follow it, each in one pass over the activations instead of
//! two or three (every intermediate tensor was written and read back once).
//!
//! The element functions are written once here ([`with_forward`], [`with_backward`]) and used
//! by the unfused ops too, and a fused pass rounds where the ops it replaces round (to a
//! storage format the scalar does not hold), so it performs the same operations in the same
//! order: the same bits (tested below against the ops themselves).

use super::Pointwise;
use super::elementwise::{fill_par, rows, rows_reduce, rows2, written};
use crate::fno::Scalar;
use crate::precision::Format;
use std::mem::MaybeUninit;

/// Runs `$body` with `$f` bound to the forward element function of `$op` (a closure
/// `Fn(T) -> T`, one type per op, so every loop is monomorphised and vectorises).
macro_rules! with_forward {
    ($t:ty, $op:expr, |$f:ident| $body:expr) => {{
        let half = <$t>::from_f64(0.5);
        let one = <$t>::from_f64(1.0);
        let rsqrt2 = <$t>::from_f64(std::f64::consts::FRAC_1_SQRT_2);
        match $op {
            // x Phi(x) = x (1 + erf(x / sqrt 2)) / 2.
            Pointwise::Gelu => {
                let $f = |v: $t| half * v * (one + (v * rsqrt2).erf());
                $body
            }
            Pointwise::Tanh => {
                let $f = |v: $t| v.tanh();
                $body
            }
            Pointwise::Clip { lo, hi } => {
                let (lo, hi) = (<$t>::from_f64(lo), <$t>::from_f64(hi));
                let $f = |v: $t| {
                    if v < lo {
                        lo
                    } else if v > hi {
                        hi
                    } else {
                        v
                    }
                };
                $body
            }
            Pointwise::Scale(s) => {
                let s = <$t>::from_f64(s);
                let $f = |v: $t| v * s;
                $body
            }
        }
    }};
}

/// Runs `$body` with `$d` bound to the backward element function of `$op`: `d(g, x)` is the
/// output gradient `g` times the derivative at the input `x`.
macro_rules! with_backward {
    ($t:ty, $op:expr, |$d:ident| $body:expr) => {{
        let half = <$t>::from_f64(0.5);
        let one = <$t>::from_f64(1.0);
        let rsqrt2 = <$t>::from_f64(std::f64::consts::FRAC_1_SQRT_2);
        let rsqrt2pi = <$t>::from_f64(1.0 / (2.0 * std::f64::consts::PI).sqrt());
        match $op {
            // d/dx x Phi(x) = Phi(x) + x phi(x).
            Pointwise::Gelu => {
                let $d = |gv: $t, v: $t| {
                    gv * (half * (one + (v * rsqrt2).erf())
                        + v * rsqrt2pi * (-(half * v * v)).exp())
                };
                $body
            }
            Pointwise::Tanh => {
                let $d = |gv: $t, v: $t| {
                    let t = v.tanh();
                    gv * (one - t * t)
                };
                $body
            }
            Pointwise::Clip { lo, hi } => {
                let (lo, hi) = (<$t>::from_f64(lo), <$t>::from_f64(hi));
                // Multiply (not assign) so an inf/NaN gradient stays visible.
                let $d = |gv: $t, v: $t| {
                    if v < lo || v > hi {
                        gv * <$t>::zero()
                    } else {
                        gv
                    }
                };
                $body
            }
            Pointwise::Scale(s) => {
                let s = <$t>::from_f64(s);
                let $d = |gv: $t, _v: $t| gv * s;
                $body
            }
        }
    }};
}

pub(super) use {with_backward, with_forward};

/// Round `xs` to `fmt` unless the scalar holds it (the rounding `Cpu::tensor` applies to every
/// op's result).
#[inline]
fn round<T: Scalar>(xs: &mut [T], fmt: Format) {
    if !T::holds(fmt) {
        T::round_slice(xs, fmt);
    }
}

/// `u = (x + bias[channel]) + s` (`bias` one value per channel, `c` channels, rows of `p` grid
/// points; either term may be absent) and, with `act`, `v = act(u)`, with the roundings of
/// the ops it fuses: `x + bias` to `f1` (`add_bias`), `u` to `f2` (`add`), `v` to `f2`
/// (`pointwise`). One pass over memory: each row's loops run while it is in cache.
#[allow(clippy::too_many_arguments)]
pub fn add_act<T: Scalar>(
    x: &[T],
    bias: Option<&[T]>,
    s: Option<&[T]>,
    act: Option<Pointwise>,
    c: usize,
    p: usize,
    f1: Format,
    f2: Format,
) -> (Vec<T>, Option<Vec<T>>) {
    if let Some(s) = s {
        assert_eq!(s.len(), x.len(), "add_act: the addend's length");
    }
    // Where no rounding falls between the terms, one loop adds them all (the same operations
    // in the same order as the separate loops below).
    let one_loop = bias.is_none() || s.is_none() || T::holds(f1);
    let sum_row = |r: usize, o: &mut [MaybeUninit<T>]| {
        let n = o.len();
        let xs = &x[r * p..r * p + n];
        // One loop per combination of terms (an absent term is not added: x + 0 is not x for
        // x = -0), each a plain loop over slices that vectorises.
        match (bias, s) {
            (Some(b), Some(s)) if one_loop => {
                let (br, ss) = (b[r % c], &s[r * p..r * p + n]);
                (0..n).for_each(|i| o[i] = MaybeUninit::new(xs[i] + br + ss[i]));
            }
            (Some(b), _) => {
                let br = b[r % c];
                (0..n).for_each(|i| o[i] = MaybeUninit::new(xs[i] + br));
            }
            (None, Some(s)) => {
                let ss = &s[r * p..r * p + n];
                (0..n).for_each(|i| o[i] = MaybeUninit::new(xs[i] + ss[i]));
            }
            (None, None) => (0..n).for_each(|i| o[i] = MaybeUninit::new(xs[i])),
        }
        // SAFETY: every arm wrote all n slots.
        let u = unsafe { written(o) };
        if let (Some(_), Some(s), false) = (bias, s, one_loop) {
            round(u, f1);
            let ss = &s[r * p..r * p + n];
            (0..n).for_each(|i| u[i] += ss[i]);
        }
        round(u, f2);
    };
    match act {
        None => (rows(x.len(), p, sum_row), None),
        Some(op) => with_forward!(T, op, |f| {
            let (u, v) = rows2(x.len(), p, |r, ou, ov| {
                sum_row(r, ou);
                // SAFETY: sum_row wrote the whole row.
                let u = unsafe { written(ou) };
                let ov = &mut ov[..u.len()];
                (0..u.len()).for_each(|i| ov[i] = MaybeUninit::new(f(u[i])));
                // SAFETY: the loop wrote every slot.
                round(unsafe { written(ov) }, f2);
            });
            (u, Some(v))
        }),
    }
}

/// `d(g, x) + a_0 + a_1 + ...` element by element (left to right), `d` the backward element
/// function of `op`, with the roundings of the ops it fuses: `d(g, x)` to `formats[0]`
/// (`pointwise_backward`), the sum after `a_j` to `formats[j + 1]` (`add`). One pass.
pub fn backward_add<T: Scalar>(
    op: Pointwise,
    x: &[T],
    g: &[T],
    adds: &[&[T]],
    formats: &[Format],
) -> Vec<T> {
    assert_eq!(x.len(), g.len(), "backward_add: lengths differ");
    assert_eq!(
        formats.len(),
        adds.len() + 1,
        "backward_add: one format per result"
    );
    for a in adds {
        assert_eq!(a.len(), g.len(), "backward_add: an addend's length");
    }
    let one_loop = formats.iter().all(|f| T::holds(*f));
    with_backward!(T, op, |d| {
        fill_par(g.len(), |at, o| {
            let n = o.len();
            let (gs, xs) = (&g[at..at + n], &x[at..at + n]);
            fn part<T>(a: &[T], at: usize, n: usize) -> &[T] {
                &a[at..at + n]
            }
            // One loop per addend count, each a plain loop over slices that vectorises.
            match adds {
                [a] if one_loop => {
                    let a = part(a, at, n);
                    (0..n).for_each(|i| o[i] = MaybeUninit::new(d(gs[i], xs[i]) + a[i]));
                }
                [a, b] if one_loop => {
                    let (a, b) = (part(a, at, n), part(b, at, n));
                    (0..n).for_each(|i| o[i] = MaybeUninit::new(d(gs[i], xs[i]) + a[i] + b[i]));
                }
                _ => {
                    (0..n).for_each(|i| o[i] = MaybeUninit::new(d(gs[i], xs[i])));
                    // SAFETY: the loop wrote all n slots.
                    let y = unsafe { written(o) };
                    round(y, formats[0]);
                    for (a, fmt) in adds.iter().zip(&formats[1..]) {
                        let a = part(a, at, n);
                        (0..n).for_each(|i| y[i] += a[i]);
                        round(y, *fmt);
                    }
                }
            }
        })
    })
}

/// `d(g, x)` element by element, rounded to `fmt` (`pointwise_backward`), and its sum per
/// channel (`c` channels, rows of `p` points; each row summed in order, the rows of a channel
/// added in sample order: [`channel_sums`]): one pass over memory.
pub fn backward_channel_sum<T: Scalar>(
    op: Pointwise,
    x: &[T],
    g: &[T],
    c: usize,
    p: usize,
    fmt: Format,
) -> (Vec<T>, Vec<T>) {
    assert_eq!(x.len(), g.len(), "backward_channel_sum: lengths differ");
    let (gx, row_sums) = with_backward!(T, op, |d| {
        rows_reduce(g.len(), p, |r, o| {
            let n = o.len();
            let (gs, xs) = (&g[r * p..r * p + n], &x[r * p..r * p + n]);
            (0..n).for_each(|i| o[i] = MaybeUninit::new(d(gs[i], xs[i])));
            // SAFETY: the loop wrote all n slots.
            let y = unsafe { written(o) };
            round(y, fmt);
            y.iter().copied().sum::<T>()
        })
    });
    (gx, per_channel(row_sums, c))
}

/// Per-(batch, channel) row values added per channel in sample order: with the rows reduced in
/// parallel beforehand, the same operations in the same order as one sequential loop, so the
/// same bits whatever the thread count.
pub fn per_channel<T: Scalar>(rows: Vec<T>, c: usize) -> Vec<T> {
    let mut s = vec![T::zero(); c];
    for (bc, r) in rows.into_iter().enumerate() {
        s[bc % c] += r;
    }
    s
}

/// `sum_{b, p} x[b, c, p]` per channel of a (batch, c, p) array: each row summed in order (in
/// parallel over rows), then [`per_channel`].
pub fn channel_sums<T: Scalar>(x: &[T], c: usize, p: usize) -> Vec<T> {
    use rayon::prelude::*;
    let rows = x
        .par_chunks(p.max(1))
        .map(|row| row.iter().copied().sum::<T>());
    per_channel(rows.collect(), c)
}

#[cfg(test)]
mod tests {
    use super::super::cpu::Cpu;
    use super::super::{
        Backend, Pointwise, add_act_unfused, pointwise_backward_add_unfused,
        pointwise_backward_channel_sum_unfused,
    };
    use crate::fno::Scalar;
    use crate::precision::Format;

    const OPS: [Pointwise; 4] = [
        Pointwise::Gelu,
        Pointwise::Tanh,
        Pointwise::Clip { lo: -0.5, hi: 0.7 },
        Pointwise::Scale(0.3),
    ];

    /// Values in [-3, 3) with exact zeros of both signs among them (the fused sums must keep
    /// x + 0 and x alone apart).
    fn values<T: Scalar>(n: usize, seed: u64) -> Vec<T> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|i| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                match i % 29 {
                    3 => T::from_f64(-0.0),
                    11 => T::zero(),
                    _ => T::from_f64((s >> 11) as f64 / (1u64 << 53) as f64 * 6.0 - 3.0),
                }
            })
            .collect()
    }

    fn bits<T: Scalar>(be: &Cpu<T>, t: &<Cpu<T> as Backend>::Tensor) -> Vec<u64> {
        be.download(t)
            .iter()
            .map(|v| v.to_f64().to_bits())
            .collect()
    }

    /// Every fused pass against the ops it replaces, bit for bit: every activation, every
    /// combination of terms, rows that are not a multiple of the 16 sum lanes, both scalars,
    /// fp32 and (where the CPU falls back to the ops) fp16 tensors.
    fn fused_equal_unfused<T: Scalar>() {
        let be = Cpu::<T>::new();
        use Format::{Bf16, Fp16, Fp32};
        // Formats of (x and g, bias, the addends): the roundings between the terms differ.
        for (shape, [fx, fb, fs]) in [
            (vec![3, 5, 7, 3], [Fp32; 3]),
            (vec![2, 4, 16], [Fp32; 3]),
            (vec![1, 3, 37], [Fp16; 3]),
            (vec![2, 3, 19], [Fp16, Fp32, Fp16]),
            (vec![2, 3, 19], [Bf16, Fp16, Fp32]),
            (vec![2, 3, 19], [Fp32, Fp16, Bf16]),
        ] {
            let n: usize = shape.iter().product();
            let fmt = format!("{fx}/{fb}/{fs}");
            let up = |seed, f| be.upload(&shape, &values::<T>(n, seed), f);
            let (x, s, g, a, b) = (up(1, fx), up(2, fs), up(3, fx), up(4, fs), up(5, fb));
            let bias = be.upload(&[shape[1]], &values::<T>(shape[1], 6), fb);
            let acts = [None, Some(OPS[0]), Some(OPS[1]), Some(OPS[2]), Some(OPS[3])];
            for act in acts {
                for (bi, si) in [(true, true), (true, false), (false, true), (false, false)] {
                    let (bias, s) = (bi.then_some(&bias), si.then_some(&s));
                    let (u, v) = be.add_act(&x, bias, s, act);
                    let (u0, v0) = add_act_unfused(&be, &x, bias, s, act);
                    let case = format!("{shape:?} {fmt} {act:?} bias {bi} addend {si}");
                    assert_eq!(bits(&be, &u), bits(&be, &u0), "add_act u: {case}");
                    assert_eq!(be.format(&u), be.format(&u0), "add_act format: {case}");
                    assert_eq!(v.is_some(), act.is_some(), "{case}");
                    if let (Some(v), Some(v0)) = (v, v0) {
                        assert_eq!(bits(&be, &v), bits(&be, &v0), "add_act v: {case}");
                    }
                }
            }
            for op in OPS {
                for adds in [vec![], vec![&a], vec![&a, &b], vec![&a, &b, &s]] {
                    let y = be.pointwise_backward_add(op, &x, &g, &adds);
                    let y0 = pointwise_backward_add_unfused(&be, op, &x, &g, &adds);
                    let case = format!("{shape:?} {fmt} {op:?} {} addends", adds.len());
                    assert_eq!(bits(&be, &y), bits(&be, &y0), "backward_add: {case}");
                    assert_eq!(be.format(&y), be.format(&y0), "{case}");
                }
                let (y, sum) = be.pointwise_backward_channel_sum(op, &x, &g);
                let (y0, sum0) = pointwise_backward_channel_sum_unfused(&be, op, &x, &g);
                let case = format!("{shape:?} {fmt} {op:?}");
                assert_eq!(bits(&be, &y), bits(&be, &y0), "channel_sum gx: {case}");
                assert_eq!(bits(&be, &sum), bits(&be, &sum0), "channel_sum: {case}");
            }
        }
    }

    #[test]
    fn fused_passes_equal_the_ops_they_replace_f32() {
        fused_equal_unfused::<f32>();
    }

    #[test]
    fn fused_passes_equal_the_ops_they_replace_f64() {
        fused_equal_unfused::<f64>();
    }

    /// The channel sums against an f64 sum of the same values, within the error bound of their
    /// order (each row summed in order, the rows of a channel added: at most p + b roundings of
    /// u = 2^-24 relative to the sum of |values|).
    #[test]
    fn channel_sums_within_their_error_bound() {
        let (b, c, p) = (5, 3, 1001);
        let x: Vec<f32> = values(b * c * p, 7);
        let got = super::channel_sums(&x, c, p);
        let u = f32::EPSILON as f64 / 2.0;
        let steps = (p + b) as f64;
        for ch in 0..c {
            let (mut exact, mut abs) = (0.0f64, 0.0f64);
            for bb in 0..b {
                for v in &x[(bb * c + ch) * p..(bb * c + ch + 1) * p] {
                    exact += *v as f64;
                    abs += v.abs() as f64;
                }
            }
            let err = (got[ch] as f64 - exact).abs();
            assert!(
                err <= steps * u * abs,
                "channel {ch}: {err:e} > {:e}",
                steps * u * abs
            );
        }
    }
}
