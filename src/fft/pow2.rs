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
use crate::precision::{Overflow, Real, round};

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
        let mut levels = Vec::new();
        let mut h = 1;
        while h < n {
            let (re, im) = (0..h)
                .map(|j| {
                    let w = super::naive::root(j as u64, 2 * h as u64, dir);
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
        for i in 0..n {
            let j = self.bitrev[i] as usize;
            if j > i {
                re.swap(i, j);
                im.swap(i, j);
            }
        }
        let half = T::from_f64(0.5);
        let saturating = T::FORMAT.overflow() == Overflow::Saturate;
        let mut level = 0;
        let mut factor = 1.0;
        let mut clipped = false;
        let l = self.levels.len();
        // With radix 4 and an odd number of levels, one radix-2 level goes first.
        if self.radix4 && l % 2 == 1 {
            self.radix2_level(re, im, 0, opts.scale, half);
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
                self.radix2_level(re, im, level, opts.scale, half);
                level += 1;
                factor *= 0.5_f64.powi(opts.scale as i32);
            }
            clipped |= store(re, im, opts, saturating);
        }
        (factor, clipped)
    }

    fn radix2_level(&self, re: &mut [T], im: &mut [T], level: usize, scale: bool, half: T) {
        if scale {
            self.radix2_level_impl::<true>(re, im, level, half)
        } else {
            self.radix2_level_impl::<false>(re, im, level, half)
        }
    }

    // Iterators over equal-length slices (no bounds checks) and the scaling as a constant let
    // LLVM vectorise the butterflies across j, rounding included.
    #[inline(always)]
    fn radix2_level_impl<const SCALE: bool>(
        &self,
        re: &mut [T],
        im: &mut [T],
        level: usize,
        half: T,
    ) {
        let h = 1 << level;
        let (wr, wi) = &self.levels[level];
        for (bre, bim) in re.chunks_exact_mut(2 * h).zip(im.chunks_exact_mut(2 * h)) {
            let (r0, r1) = bre.split_at_mut(h);
            let (i0, i1) = bim.split_at_mut(h);
            let it = r0
                .iter_mut()
                .zip(i0.iter_mut())
                .zip(r1.iter_mut().zip(i1.iter_mut()));
            for (((xr, xi), (yr, yi)), (&wr, &wi)) in it.zip(wr.iter().zip(wi.iter())) {
                let tr = wr * *yr - wi * *yi;
                let ti = wr * *yi + wi * *yr;
                let (mut a, mut b, mut c, mut d) = (*xr + tr, *xi + ti, *xr - tr, *xi - ti);
                if SCALE {
                    (a, b, c, d) = (a * half, b * half, c * half, d * half);
                }
                (*xr, *xi, *yr, *yi) = (a, b, c, d);
            }
        }
    }

    fn radix4_pass(&self, re: &mut [T], im: &mut [T], level: usize, scale: bool, half: T) {
        match (scale, self.dir) {
            (false, Direction::Forward) => self.radix4_impl::<false, true>(re, im, level, half),
            (false, Direction::Inverse) => self.radix4_impl::<false, false>(re, im, level, half),
            (true, Direction::Forward) => self.radix4_impl::<true, true>(re, im, level, half),
            (true, Direction::Inverse) => self.radix4_impl::<true, false>(re, im, level, half),
        }
    }

    #[inline(always)]
    fn radix4_impl<const SCALE: bool, const FWD: bool>(
        &self,
        re: &mut [T],
        im: &mut [T],
        level: usize,
        half: T,
    ) {
        let h = 1 << level;
        let (ar, ai) = &self.levels[level];
        let (br, bi) = &self.levels[level + 1];
        let (ar, ai, br, bi) = (&ar[..h], &ai[..h], &br[..h], &bi[..h]);
        for (bre, bim) in re.chunks_exact_mut(4 * h).zip(im.chunks_exact_mut(4 * h)) {
            let (r01, r23) = bre.split_at_mut(2 * h);
            let (r0, r1) = r01.split_at_mut(h);
            let (r2, r3) = r23.split_at_mut(h);
            let (i01, i23) = bim.split_at_mut(2 * h);
            let (i0, i1) = i01.split_at_mut(h);
            let (i2, i3) = i23.split_at_mut(h);
            let (r1, r2, r3) = (&mut r1[..h], &mut r2[..h], &mut r3[..h]);
            let (i0, i1, i2, i3) = (&mut i0[..h], &mut i1[..h], &mut i2[..h], &mut i3[..h]);
            for j in 0..h {
                let (wr, wi) = (ar[j], ai[j]);
                // Level 1: (x0, x1) and (x2, x3) with w_{2h}^j.
                let t1r = wr * r1[j] - wi * i1[j];
                let t1i = wr * i1[j] + wi * r1[j];
                let t3r = wr * r3[j] - wi * i3[j];
                let t3i = wr * i3[j] + wi * r3[j];
                let (mut a0r, mut a0i) = (r0[j] + t1r, i0[j] + t1i);
                let (mut a1r, mut a1i) = (r0[j] - t1r, i0[j] - t1i);
                let (mut a2r, mut a2i) = (r2[j] + t3r, i2[j] + t3i);
                let (mut a3r, mut a3i) = (r2[j] - t3r, i2[j] - t3i);
                if SCALE {
                    (a0r, a0i, a1r, a1i) = (a0r * half, a0i * half, a1r * half, a1i * half);
                    (a2r, a2i, a3r, a3i) = (a2r * half, a2i * half, a3r * half, a3i * half);
                }
                // Level 2: (a0, a2) with v = w_{4h}^j, (a1, a3) with (-+i) v.
                let (vr, vi) = (br[j], bi[j]);
                let u2r = vr * a2r - vi * a2i;
                let u2i = vr * a2i + vi * a2r;
                let u3r = vr * a3r - vi * a3i;
                let u3i = vr * a3i + vi * a3r;
                // -i (x + iy) = y - ix (forward); +i (x + iy) = -y + ix (inverse): exact.
                let (v3r, v3i) = if FWD { (u3i, -u3r) } else { (-u3i, u3r) };
                let mut y = [
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
                    for v in &mut y {
                        *v *= half;
                    }
                }
                (r0[j], i0[j], r1[j], i1[j]) = (y[0], y[1], y[2], y[3]);
                (r2[j], i2[j], r3[j], i3[j]) = (y[4], y[5], y[6], y[7]);
            }
        }
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
    let clip_fmt = opts.store.filter(|f| f.overflow() == Overflow::Saturate);
    if saturating || clip_fmt.is_some() {
        let max = clip_fmt.unwrap_or(T::FORMAT).max_finite();
        return re.iter().chain(im.iter()).any(|v| v.to_f64().abs() >= max);
    }
    false
}

/// Interleave (re, im) arrays back.
pub(crate) fn join<T: Real>(re: &[T], im: &[T], x: &mut [Complex<T>]) {
    for ((z, &r), &i) in x.iter_mut().zip(re).zip(im) {
        *z = Complex::new(r, i);
    }
}
