//! Power-of-two Cooley-Tukey, decimation in time, on split (real, imaginary) arrays so the
//! butterfly loops vectorise for the emulated scalar.
//!
//! Radix 2: level with half-size h combines x_j and x_{j+h} of each block of 2h as
//! x_j +- w t, t = x_{j+h}, w = exp(-+2 pi i j / 2h): one complex multiply (4 real products, 2 real
//! sums, each rounded) and two complex additions, the form Higham's Theorem 24.2 analyses.
//! Radix 4: two consecutive levels fused in one pass over the data, with the second level's
//! twiddle for the upper half obtained as (-+i) w (exact), which saves a multiply without
//! changing the per-level error bound.

use super::{Complex, Direction, StageOptions};
use crate::precision::lanes::unroll;
use crate::precision::{LANES, Lanes, Overflow, Real, quantize, round};
use std::ops::{Add, Mul, Neg, Sub};

/// A planned power-of-two transform.
pub(crate) struct Pow2<T: Real> {
    n: usize,
    dir: Direction,
    radix4: bool,
    bitrev: Vec<u32>,
    /// Per level (h = 1, 2, 4, .., n/2): twiddles w_{2h}^j, j < h, as (re, im) arrays.
    levels: Vec<(Vec<T>, Vec<T>)>,
}

impl<T: Real> Pow2<T> {
    pub(crate) fn new(n: usize, dir: Direction, radix4: bool) -> Self {
        debug_assert!(n.is_power_of_two());
        let bits = n.trailing_zeros();
        let bitrev = (0..n as u32)
            .map(|i| {
                if bits == 0 {
                    0
                } else {
                    i.reverse_bits() >> (32 - bits)
                }
            })
            .collect();
        // Level h takes exp(-+2 pi i j / 2h) = root j n / 2h of the table of n.
        let roots = super::f64_roots(n);
        let mut levels = Vec::new();
        let mut h = 1;
        while h < n {
            let (re, im) = (0..h)
                .map(|j| {
                    let w = super::f64_root(&roots, (j * (n / (2 * h))) as u64, dir);
                    (T::from_f64(w.re), T::from_f64(w.im))
                })
                .unzip();
            levels.push((re, im));
            h *= 2;
        }
        Pow2 {
            n,
            dir,
            radix4,
            bitrev,
            levels,
        }
    }

    /// Transform split arrays in place; returns the factor applied by scaling (1 or 1/n).
    /// Also reports whether a saturating format clipped a value at +-max in some pass.
    pub(crate) fn process_split(
        &self,
        re: &mut [T],
        im: &mut [T],
        opts: &StageOptions,
    ) -> (f64, bool) {
        let n = self.n;
        assert!(
            re.len() == n && im.len() == n,
            "pow2 transform: length mismatch"
        );
        bitrev_permute(&self.bitrev, re, im);
        self.passes(None, 0, re, im, opts)
    }

    /// Transform `src` into split arrays `re`, `im` (the bit-reversal permutation is done as a
    /// gather while splitting, one pass instead of a split copy plus in-place swaps).
    pub(crate) fn process_from(
        &self,
        src: &[Complex<T>],
        re: &mut [T],
        im: &mut [T],
        opts: &StageOptions,
    ) -> (f64, bool) {
        let n = self.n;
        assert!(
            src.len() == n && re.len() == n && im.len() == n,
            "pow2 transform: length mismatch"
        );
        let l = self.levels.len();
        if self.radix4 && l.is_multiple_of(2) && n / 4 >= LANES {
            if opts.scale {
                self.first_radix4_from::<true>(src, re, im);
            } else {
                self.first_radix4_from::<false>(src, re, im);
            }
            let factor = if opts.scale { 0.25 } else { 1.0 };
            let clipped = store(re, im, opts, T::FORMAT.overflow() == Overflow::Saturate);
            let (f, c) = self.passes(None, 2, re, im, opts);
            return (factor * f, clipped | c);
        }
        // A first radix-2 level on gathered lanes reads its inputs from `src` through the
        // bit-reversal table itself; otherwise permute while splitting.
        if (!self.radix4 || l % 2 == 1) && n / 2 >= LANES {
            return self.passes(Some(src), 0, re, im, opts);
        }
        for ((r, i), &j) in re.iter_mut().zip(im.iter_mut()).zip(&self.bitrev) {
            let z = src[j as usize];
            (*r, *i) = (z.re, z.im);
        }
        self.passes(None, 0, re, im, opts)
    }

    /// Eight independent transforms at once: lane k of `re[j]`, `im[j]` is point j (natural
    /// order) of line k. Every lane performs the scalar loop's rounded operations in its order
    /// (the same levels, butterflies and stage rounding as [`Self::process_split`]), so each
    /// line's result is bit-identical to transforming it alone; but with one line per lane every
    /// load and store is a whole vector, where a short line alone needs gathers and scatters.
    pub(crate) fn process_lanes(
        &self,
        re: &mut [T::Lanes],
        im: &mut [T::Lanes],
        opts: &StageOptions,
    ) -> (f64, bool) {
        let n = self.n;
        assert!(
            re.len() == n && im.len() == n,
            "pow2 transform: length mismatch"
        );
        bitrev_permute(&self.bitrev, re, im);
        let saturating = T::FORMAT.overflow() == Overflow::Saturate;
        let half = T::Lanes::splat(T::from_f64(0.5));
        let l = self.levels.len();
        let (mut level, mut factor, mut clipped) = (0, 1.0, false);
        while level < l {
            // Radix 4 takes the levels two by two, after one radix-2 level when l is odd.
            let two = self.radix4 && (l - level).is_multiple_of(2);
            let s = T::Lanes::splat;
            let (wr, wi) = &self.levels[level];
            let w = |j: usize| (s(wr[j]), s(wi[j]));
            let h = 1 << level;
            match (two, opts.scale, self.dir) {
                (false, false, _) => radix2_loop::<_, false>(re, im, h, w, half),
                (false, true, _) => radix2_loop::<_, true>(re, im, h, w, half),
                (true, scale, dir) => {
                    let (vr, vi) = &self.levels[level + 1];
                    let v = |j: usize| (s(vr[j]), s(vi[j]));
                    match (scale, dir) {
                        (false, Direction::Forward) => {
                            radix4_loop::<_, false, true>(re, im, h, w, v, half)
                        }
                        (false, Direction::Inverse) => {
                            radix4_loop::<_, false, false>(re, im, h, w, v, half)
                        }
                        (true, Direction::Forward) => {
                            radix4_loop::<_, true, true>(re, im, h, w, v, half)
                        }
                        (true, Direction::Inverse) => {
                            radix4_loop::<_, true, false>(re, im, h, w, v, half)
                        }
                    }
                }
            }
            let done: i32 = if two { 2 } else { 1 };
            level += done as usize;
            if opts.scale {
                factor *= 0.5_f64.powi(done);
            }
            clipped |= store_lanes::<T>(re, im, opts, saturating);
        }
        (factor, clipped)
    }

    /// The first radix-4 pass (levels 0 and 1, twiddles 1), fused with the bit-reversal
    /// permutation. The butterfly q of this pass reads bit-reversed positions 4q + m, that is
    /// src[rev2(m) n/4 + t] with t the (l-2)-bit reversal of q; taking eight consecutive t per
    /// vector makes the reads contiguous, and each lane then writes its four outputs
    /// (positions 4q .. 4q + 3, with 4q = bitrev[t]) as one transposed group.
    fn first_radix4_from<const SCALE: bool>(&self, src: &[Complex<T>], re: &mut [T], im: &mut [T]) {
        let n = self.n;
        let half = T::Lanes::splat(T::from_f64(0.5));
        let one = |t: &(Vec<T>, Vec<T>)| (T::Lanes::splat(t.0[0]), T::Lanes::splat(t.1[0]));
        let (a, b) = (one(&self.levels[0]), one(&self.levels[1]));
        let z = flat(src);
        let quarter = n / 4;
        for t0 in (0..quarter).step_by(LANES) {
            // m = 0, 1, 2, 3 read rows rev2(m) = 0, 2, 1, 3 of the n/4 x 4 view.
            let rows = [0, 2, 1, 3];
            let x: [(T::Lanes, T::Lanes); 4] =
                unroll!(4, m => T::Lanes::load_deinterleave(z, 2 * (rows[m] * quarter + t0)));
            let x = [
                x[0].0, x[0].1, x[1].0, x[1].1, x[2].0, x[2].1, x[3].0, x[3].1,
            ];
            let y = match self.dir {
                Direction::Forward => bfly4::<_, SCALE, true>(x, a, b, half),
                Direction::Inverse => bfly4::<_, SCALE, false>(x, a, b, half),
            };
            let idx: [usize; LANES] = unroll!(8, k => self.bitrev[t0 + k] as usize);
            T::Lanes::store_transposed4([y[0], y[2], y[4], y[6]], re, &idx);
            T::Lanes::store_transposed4([y[1], y[3], y[5], y[7]], im, &idx);
        }
    }

    /// The passes from level `start` on (0, or 2 after the fused first radix-4 pass) over
    /// bit-reversed split arrays; with `src`, the first pass (a radix-2 level on gathered lanes)
    /// reads the input from `src` in bit-reversed order instead.
    fn passes(
        &self,
        mut src: Option<&[Complex<T>]>,
        start: usize,
        re: &mut [T],
        im: &mut [T],
        opts: &StageOptions,
    ) -> (f64, bool) {
        let half = T::from_f64(0.5);
        let saturating = T::FORMAT.overflow() == Overflow::Saturate;
        let mut level = start;
        let mut factor = 1.0;
        let mut clipped = false;
        let l = self.levels.len();
        // With radix 4 and an odd number of levels, one radix-2 level goes first.
        if self.radix4 && l % 2 == 1 {
            self.radix2_level(src.take(), re, im, 0, opts.scale, half);
            level = 1;
            factor *= 0.5_f64.powi(opts.scale as i32);
            clipped |= store(re, im, opts, saturating);
        }
        while level < l {
            if self.radix4 {
                self.radix4_pass(re, im, level, opts.scale, half);
                level += 2;
                factor *= 0.25_f64.powi(opts.scale as i32);
            } else {
                self.radix2_level(src.take(), re, im, level, opts.scale, half);
                level += 1;
                factor *= 0.5_f64.powi(opts.scale as i32);
            }
            clipped |= store(re, im, opts, saturating);
        }
        (factor, clipped)
    }

    fn radix2_level(
        &self,
        src: Option<&[Complex<T>]>,
        re: &mut [T],
        im: &mut [T],
        level: usize,
        scale: bool,
        half: T,
    ) {
        if scale {
            self.radix2_level_impl::<true>(src, re, im, level, half)
        } else {
            self.radix2_level_impl::<false>(src, re, im, level, half)
        }
    }

    /// The input lanes of component `c` (even: real, odd: imaginary part) at bit-reversed
    /// positions `idx`, read from the interleaved `src` (the fused permutation of the first pass).
    #[inline(always)]
    fn gather_src(&self, flat: &[T], c: usize, idx: &[usize; LANES]) -> T::Lanes {
        let b = &self.bitrev;
        T::Lanes::gather(flat, &unroll!(8, k => 2 * b[idx[k]] as usize + c % 2))
    }

    /// One radix-2 level. Butterflies run eight at a time on `T::Lanes`: contiguous loads when
    /// the half-block h >= 8, gathered lanes (eight consecutive butterflies of small blocks)
    /// when h < 8, scalar only when n < 16. Every path does the same rounded operations in the
    /// same order ([`bfly2`]), so results are bit-identical to the scalar loop.
    #[inline(always)]
    fn radix2_level_impl<const SCALE: bool>(
        &self,
        src: Option<&[Complex<T>]>,
        re: &mut [T],
        im: &mut [T],
        level: usize,
        half: T,
    ) {
        let n = self.n;
        let h = 1 << level;
        let (wr, wi) = &self.levels[level];
        if h >= LANES {
            let hv = T::Lanes::splat(half);
            for (bre, bim) in re.chunks_exact_mut(2 * h).zip(im.chunks_exact_mut(2 * h)) {
                let (r0, r1) = bre.split_at_mut(h);
                let (i0, i1) = bim.split_at_mut(h);
                for j in (0..h).step_by(LANES) {
                    let ld = |s: &[T]| T::Lanes::load(&s[j..]);
                    let y =
                        bfly2::<_, SCALE>([ld(r0), ld(i0), ld(r1), ld(i1)], (ld(wr), ld(wi)), hv);
                    y[0].store(&mut r0[j..]);
                    y[1].store(&mut i0[j..]);
                    y[2].store(&mut r1[j..]);
                    y[3].store(&mut i1[j..]);
                }
            }
        } else if n / 2 >= LANES {
            let hv = T::Lanes::splat(half);
            let w = |t: &[T]| T::Lanes::from_array(unroll!(8, k => t[k & (h - 1)]));
            let (wr, wi) = (w(wr), w(wi));
            for q0 in (0..n / 2).step_by(LANES) {
                let idx: [usize; LANES] = unroll!(8, k => {
                    let q = q0 + k;
                    ((q >> level) << (level + 1)) + (q & (h - 1))
                });
                let idx_h = unroll!(8, k => idx[k] + h);
                let x = match src {
                    Some(z) => {
                        let f = flat(z);
                        let g = |c: usize, ix| self.gather_src(f, c, ix);
                        [g(0, &idx), g(1, &idx), g(2, &idx_h), g(3, &idx_h)]
                    }
                    None => [
                        T::Lanes::gather(re, &idx),
                        T::Lanes::gather(im, &idx),
                        T::Lanes::gather(re, &idx_h),
                        T::Lanes::gather(im, &idx_h),
                    ],
                };
                let y = bfly2::<_, SCALE>(x, (wr, wi), hv);
                y[0].scatter(re, &idx);
                y[1].scatter(im, &idx);
                y[2].scatter(re, &idx_h);
                y[3].scatter(im, &idx_h);
            }
        } else {
            radix2_loop::<_, SCALE>(re, im, h, |j| (wr[j], wi[j]), half);
        }
    }

    fn radix4_pass(&self, re: &mut [T], im: &mut [T], level: usize, scale: bool, half: T) {
        let (r, i, l, h) = (re, im, level, half);
        match (scale, self.dir) {
            (false, Direction::Forward) => self.radix4_impl::<false, true>(r, i, l, h),
            (false, Direction::Inverse) => self.radix4_impl::<false, false>(r, i, l, h),
            (true, Direction::Forward) => self.radix4_impl::<true, true>(r, i, l, h),
            (true, Direction::Inverse) => self.radix4_impl::<true, false>(r, i, l, h),
        }
    }

    /// Two fused radix-2 levels; the same three paths as [`Self::radix2_level_impl`].
    #[inline(always)]
    fn radix4_impl<const SCALE: bool, const FWD: bool>(
        &self,
        re: &mut [T],
        im: &mut [T],
        level: usize,
        half: T,
    ) {
        let n = self.n;
        let h = 1 << level;
        let (ar, ai) = &self.levels[level];
        let (br, bi) = &self.levels[level + 1];
        let (ar, ai, br, bi) = (&ar[..h], &ai[..h], &br[..h], &bi[..h]);
        if h >= LANES {
            let hv = T::Lanes::splat(half);
            for (bre, bim) in re.chunks_exact_mut(4 * h).zip(im.chunks_exact_mut(4 * h)) {
                let (r01, r23) = bre.split_at_mut(2 * h);
                let (r0, r1) = r01.split_at_mut(h);
                let (r2, r3) = r23.split_at_mut(h);
                let (i01, i23) = bim.split_at_mut(2 * h);
                let (i0, i1) = i01.split_at_mut(h);
                let (i2, i3) = i23.split_at_mut(h);
                for j in (0..h).step_by(LANES) {
                    let ld = |s: &[T]| T::Lanes::load(&s[j..]);
                    let x = [
                        ld(r0),
                        ld(i0),
                        ld(r1),
                        ld(i1),
                        ld(r2),
                        ld(i2),
                        ld(r3),
                        ld(i3),
                    ];
                    let y = bfly4::<_, SCALE, FWD>(x, (ld(ar), ld(ai)), (ld(br), ld(bi)), hv);
                    y[0].store(&mut r0[j..]);
                    y[1].store(&mut i0[j..]);
                    y[2].store(&mut r1[j..]);
                    y[3].store(&mut i1[j..]);
                    y[4].store(&mut r2[j..]);
                    y[5].store(&mut i2[j..]);
                    y[6].store(&mut r3[j..]);
                    y[7].store(&mut i3[j..]);
                }
            }
        } else if n / 4 >= LANES {
            let hv = T::Lanes::splat(half);
            let w = |t: &[T]| T::Lanes::from_array(unroll!(8, k => t[k & (h - 1)]));
            let (a, b) = ((w(ar), w(ai)), (w(br), w(bi)));
            for q0 in (0..n / 4).step_by(LANES) {
                let idx: [usize; LANES] = unroll!(8, k => {
                    let q = q0 + k;
                    ((q >> level) << (level + 2)) + (q & (h - 1))
                });
                let ix: [[usize; LANES]; 4] = unroll!(4, m => unroll!(8, k => idx[k] + m * h));
                // With h = 4 the eight butterflies are two blocks of four contiguous ones.
                let x: [T::Lanes; 8] = match () {
                    () if h == 4 => unroll!(8, c => {
                        let s = if c.is_multiple_of(2) { &*re } else { &*im };
                        T::Lanes::load_halves(s, ix[c / 2][0], ix[c / 2][4])
                    }),
                    () => unroll!(8, c => {
                        T::Lanes::gather(if c.is_multiple_of(2) { re } else { im }, &ix[c / 2])
                    }),
                };
                let y = bfly4::<_, SCALE, FWD>(x, a, b, hv);
                for (c, v) in y.into_iter().enumerate() {
                    let s = if c.is_multiple_of(2) {
                        &mut *re
                    } else {
                        &mut *im
                    };
                    if h == 4 {
                        v.store_halves(s, ix[c / 2][0], ix[c / 2][4]);
                    } else {
                        v.scatter(s, &ix[c / 2]);
                    }
                }
            }
        } else {
            let (a, b) = (|j: usize| (ar[j], ai[j]), |j: usize| (br[j], bi[j]));
            radix4_loop::<_, SCALE, FWD>(re, im, h, a, b, half);
        }
    }
}

/// The bit-reversal permutation of split arrays (of scalars, or of lanes holding one line each).
fn bitrev_permute<V>(bitrev: &[u32], re: &mut [V], im: &mut [V]) {
    for (i, &j) in bitrev.iter().enumerate() {
        let j = j as usize;
        if j > i {
            re.swap(i, j);
            im.swap(i, j);
        }
    }
}

/// One radix-2 level as the plain loop over blocks of 2h and their butterflies, on scalars (the
/// reference order every vectorised path reproduces) or on lanes holding one line each;
/// `w(j)` is the twiddle of butterfly j.
#[inline(always)]
fn radix2_loop<V: Arith, const SCALE: bool>(
    re: &mut [V],
    im: &mut [V],
    h: usize,
    w: impl Fn(usize) -> (V, V),
    half: V,
) {
    for b in (0..re.len()).step_by(2 * h) {
        for j in 0..h {
            let (x, y) = (b + j, b + j + h);
            let o = bfly2::<_, SCALE>([re[x], im[x], re[y], im[y]], w(j), half);
            (re[x], im[x], re[y], im[y]) = (o[0], o[1], o[2], o[3]);
        }
    }
}

/// Two fused radix-2 levels as the plain loop (see [`radix2_loop`]); `a(j)`, `b(j)` the
/// twiddles of the two levels.
#[inline(always)]
fn radix4_loop<V: Arith, const SCALE: bool, const FWD: bool>(
    re: &mut [V],
    im: &mut [V],
    h: usize,
    a: impl Fn(usize) -> (V, V),
    b: impl Fn(usize) -> (V, V),
    half: V,
) {
    for blk in (0..re.len()).step_by(4 * h) {
        for j in 0..h {
            let p = [blk + j, blk + j + h, blk + j + 2 * h, blk + j + 3 * h];
            let x = [
                re[p[0]], im[p[0]], re[p[1]], im[p[1]], re[p[2]], im[p[2]], re[p[3]], im[p[3]],
            ];
            let y = bfly4::<_, SCALE, FWD>(x, a(j), b(j), half);
            for m in 0..4 {
                (re[p[m]], im[p[m]]) = (y[2 * m], y[2 * m + 1]);
            }
        }
    }
}

/// Complex values as their interleaved (re, im) reals.
fn flat<T: Real>(z: &[Complex<T>]) -> &[T] {
    // SAFETY: Complex<T> is repr(C) { re: T, im: T }, so n values are 2n contiguous T.
    unsafe { std::slice::from_raw_parts(z.as_ptr() as *const T, 2 * z.len()) }
}

/// What a butterfly computes with: the scalar or its lanes.
trait Arith:
    Copy + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> + Neg<Output = Self>
{
}
impl<V: Copy + Add<Output = V> + Sub<Output = V> + Mul<Output = V> + Neg<Output = V>> Arith for V {}

/// Radix-2 butterfly on x = [xr, xi, yr, yi] with twiddle w = (wr, wi): t = w y (4 products,
/// 2 sums), then (x + t, x - t), each component times 1/2 when `SCALE`.
#[inline(always)]
fn bfly2<V: Arith, const SCALE: bool>(x: [V; 4], (wr, wi): (V, V), half: V) -> [V; 4] {
    let [xr, xi, yr, yi] = x;
    let tr = wr * yr - wi * yi;
    let ti = wr * yi + wi * yr;
    let y = [xr + tr, xi + ti, xr - tr, xi - ti];
    if SCALE {
        unroll!(4, k => y[k] * half)
    } else {
        y
    }
}

/// Radix-4 pass as two radix-2 levels on x = [r0, i0, r1, i1, r2, i2, r3, i3]: level 1 pairs
/// (x0, x1) and (x2, x3) with a = w_{2h}^j; level 2 pairs (a0, a2) with b = w_{4h}^j and (a1, a3)
/// with (-+i) b, applied as an exact swap and sign change after the product.
#[inline(always)]
fn bfly4<V: Arith, const SCALE: bool, const FWD: bool>(
    x: [V; 8],
    (wr, wi): (V, V),
    (vr, vi): (V, V),
    half: V,
) -> [V; 8] {
    let [r0, i0, r1, i1, r2, i2, r3, i3] = x;
    let t1r = wr * r1 - wi * i1;
    let t1i = wr * i1 + wi * r1;
    let t3r = wr * r3 - wi * i3;
    let t3i = wr * i3 + wi * r3;
    let a = [
        r0 + t1r,
        i0 + t1i,
        r0 - t1r,
        i0 - t1i,
        r2 + t3r,
        i2 + t3i,
        r2 - t3r,
        i2 - t3i,
    ];
    let [a0r, a0i, a1r, a1i, a2r, a2i, a3r, a3i] = if SCALE {
        unroll!(8, k => a[k] * half)
    } else {
        a
    };
    let u2r = vr * a2r - vi * a2i;
    let u2i = vr * a2i + vi * a2r;
    let u3r = vr * a3r - vi * a3i;
    let u3i = vr * a3i + vi * a3r;
    // -i (x + iy) = y - ix (forward); +i (x + iy) = -y + ix (inverse): exact.
    let (v3r, v3i) = if FWD { (u3i, -u3r) } else { (-u3i, u3r) };
    let y = [
        a0r + u2r,
        a0i + u2i,
        a1r + v3r,
        a1i + v3i,
        a0r - u2r,
        a0i - u2i,
        a1r - v3r,
        a1i - v3i,
    ];
    if SCALE {
        unroll!(8, k => y[k] * half)
    } else {
        y
    }
}

/// Model II: round every component of the stage output to the storage format. For saturating
/// formats the caller learns of clipping through [`saturated`].
pub(crate) fn store<T: Real>(
    re: &mut [T],
    im: &mut [T],
    opts: &StageOptions,
    saturating: bool,
) -> bool {
    if let Some(fmt) = opts.store {
        for v in re.iter_mut().chain(im.iter_mut()) {
            *v = T::from_f64(round(v.to_f64(), fmt));
        }
    }
    if let Some(sf) = opts.store_scaled {
        // Planar storage: the real parts and the imaginary parts are two 1-D tensors.
        let mut clipped = false;
        for arr in [re, im] {
            if arr.is_empty() {
                continue;
            }
            let x: Vec<f64> = arr.iter().map(|v| v.to_f64()).collect();
            let q =
                quantize(&x, &[x.len()], &sf).expect("tensor and block scaling fit any 1-D array");
            for (v, &r) in arr.iter_mut().zip(&q.values) {
                *v = T::from_f64(r);
            }
            clipped |= q.saturated;
        }
        return clipped;
    }
    let clip_fmt = opts.store.filter(|f| f.overflow() == Overflow::Saturate);
    if saturating || clip_fmt.is_some() {
        let max = clip_fmt.unwrap_or(T::FORMAT).max_finite();
        return re.iter().chain(im.iter()).any(|v| v.to_f64().abs() >= max);
    }
    false
}

/// [`store`] on lanes: every lane rounded as the scalar arrays are, clipping reported if any
/// lane of any value saturated.
fn store_lanes<T: Real>(
    re: &mut [T::Lanes],
    im: &mut [T::Lanes],
    opts: &StageOptions,
    saturating: bool,
) -> bool {
    assert!(
        opts.store_scaled.is_none(),
        "scaled storage groups a line's values: it runs line by line, not on lanes"
    );
    if opts.store.is_none() && !saturating {
        return false;
    }
    let mut clipped = false;
    for v in re.iter_mut().chain(im.iter_mut()) {
        let mut a = v.to_array();
        clipped |= store(&mut a[..], &mut [], opts, saturating);
        *v = T::Lanes::from_array(a);
    }
    clipped
}

/// Interleave (re, im) arrays back.
pub(crate) fn join<T: Real>(re: &[T], im: &[T], x: &mut [Complex<T>]) {
    for ((z, &r), &i) in x.iter_mut().zip(re).zip(im) {
        *z = Complex::new(r, i);
    }
}
