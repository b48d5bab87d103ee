//! The periodic DWT on a cube of n^d samples (d = 1..3), the Mallat (non-standard, "wavedecn")
//! decomposition: each level applies one 1-D level ([`Dwt::level`]) along axis 0, then 1, ...,
//! to every line of the current approximation cube \[0, len)^d, leaving its 2^d subbands in
//! place; the next level works on the all-approximation corner \[0, len/2)^d.
//!
//! Layout (C order, the last axis fastest, as every grid of mpno). After all J = log2 n levels,
//! cube position p = (p_1, ..., p_d) holds:
//! - p = 0: the scaling coefficient <v, 1> (mode `-1:0` in 1-D, `-1:0:0:..:0` in d-D);
//! - otherwise, with j = floor(log2 max_a p_a) (the level, 0 <= j < J): the coefficient of
//!   prod_a f_a(x_a), f_a = psi_{j,k_a} where p_a >= 2^j (a detail along axis a) and phi_{j,k_a}
//!   where p_a < 2^j, k_a = p_a mod 2^j.
//!
//! Mode labels: 1-D `j:k` (as [`super::wavelet::mode_index`]); d-D `j:t:k_1:...:k_d` with the
//! detail type t = sum over the detail axes a of 2^(a-1) (1 <= t < 2^d: in 2-D, 1 = psi in x,
//! 2 = psi in y, 3 = both), so p_a = 2^j [bit a-1 of t] + k_a.
//!
//! Model II rounds the array after every axis pass (each pass is one stored stage); the 1-D case
//! is exactly [`Dwt::forward`].

use super::BasisError;
use super::wavelet::{Dwt, Wavelet, round_stored};
use crate::precision::{Format, Real};

/// A planned d-D periodic DWT of n^d values in scalar type T.
pub struct DwtNd<T: Real> {
    line: Dwt<T>,
    n: usize,
    d: usize,
}

impl<T: Real> DwtNd<T> {
    /// Plan; n a power of two >= 2, d in 1..=3.
    pub fn new(w: Wavelet, n: usize, d: usize) -> Result<Self, BasisError> {
        Self::with_offset(w, n, d, 0)
    }
    /// Plan whose levels read with PyWavelets' offset (see [`Dwt::with_offset`]).
    pub fn with_offset(w: Wavelet, n: usize, d: usize, offset: isize) -> Result<Self, BasisError> {
        if !(1..=3).contains(&d) {
            return Err(BasisError::usage(
                "--dim",
                format!("the wavelet transform takes dimension 1, 2 or 3, got {d}"),
            ));
        }
        Ok(DwtNd {
            line: Dwt::with_offset(w, n, offset)?,
            n,
            d,
        })
    }
    /// Points per axis.
    pub fn size(&self) -> usize {
        self.n
    }
    /// Dimension.
    pub fn dim(&self) -> usize {
        self.d
    }
    /// Values in the cube, n^d.
    pub fn len(&self) -> usize {
        self.n.pow(self.d as u32)
    }
    /// Always false.
    pub fn is_empty(&self) -> bool {
        false
    }
    /// Levels J = log2 n.
    pub fn levels(&self) -> u32 {
        self.line.levels()
    }

    /// Apply `op(line_in, line_out, len)` to every line along `axis` of the sub-cube \[0, len)^d.
    fn pass(&self, x: &mut [T], axis: usize, len: usize, op: impl Fn(&[T], &mut [T], usize)) {
        let n = self.n;
        let d = self.d;
        let stride = n.pow((d - 1 - axis) as u32);
        let mut buf = vec![T::zero(); len];
        let mut out = vec![T::zero(); len];
        // Every start point: the other axes over [0, len), this axis at 0.
        let others = len.pow((d - 1) as u32);
        for o in 0..others {
            let mut rest = o;
            let mut base = 0;
            for a in (0..d).rev() {
                if a == axis {
                    continue;
                }
                base += (rest % len) * n.pow((d - 1 - a) as u32);
                rest /= len;
            }
            for (i, b) in buf.iter_mut().enumerate() {
                *b = x[base + i * stride];
            }
            op(&buf, &mut out, len);
            for (i, v) in out.iter().enumerate() {
                x[base + i * stride] = *v;
            }
        }
    }

    /// Round the sub-cube \[0, len)^d to `fmt`; whether a saturating format clipped a value.
    fn round_sub(&self, x: &mut [T], len: usize, fmt: Format) -> bool {
        if len == self.n {
            return round_stored(x, fmt);
        }
        let mut clipped = false;
        let (n, d) = (self.n, self.d);
        let rows = len.pow((d - 1) as u32);
        for r in 0..rows {
            let (mut rest, mut base) = (r, 0);
            for a in (0..d - 1).rev() {
                base += (rest % len) * n.pow((d - 1 - a) as u32);
                rest /= len;
            }
            clipped |= round_stored(&mut x[base..base + len], fmt);
        }
        clipped
    }

    /// Forward transform in place (unnormalised), every level; `store` rounds the array after
    /// every axis pass (model II). Returns whether a saturating format clipped a value.
    pub fn forward(&self, x: &mut [T], store: Option<Format>) -> bool {
        self.forward_to(x, store, 1)
    }

    /// [`DwtNd::forward`] down to an approximation cube of side `stop` (a power of two).
    pub fn forward_to(&self, x: &mut [T], store: Option<Format>, stop: usize) -> bool {
        assert_eq!(
            x.len(),
            self.len(),
            "DWT of {} values given {}",
            self.len(),
            x.len()
        );
        let mut clipped = false;
        let mut len = self.n;
        while len >= 2 && len > stop {
            for axis in 0..self.d {
                self.pass(x, axis, len, |a, b, l| self.line.level(a, b, l));
                if let Some(fmt) = store {
                    clipped |= self.round_sub(x, len, fmt);
                }
            }
            len /= 2;
        }
        clipped
    }

    /// Inverse transform in place (the transpose of [`DwtNd::forward`]: levels from the
    /// coarsest, axes in reverse order).
    pub fn inverse(&self, c: &mut [T]) {
        assert_eq!(
            c.len(),
            self.len(),
            "DWT of {} values given {}",
            self.len(),
            c.len()
        );
        let mut half = 1;
        while half < self.n {
            let len = 2 * half;
            for axis in (0..self.d).rev() {
                self.pass(c, axis, len, |a, b, l| self.line.level_inverse(a, b, l));
            }
            half = len;
        }
    }
}

/// Index (C order in the cube n^d, n = 2^levels) of a mode label, or why it does not exist.
pub fn mode_index(mode: &[i64], levels: u32, d: usize) -> Result<usize, BasisError> {
    if d == 1 {
        return super::wavelet::mode_index(mode, levels);
    }
    let bad = |why: String| BasisError::usage("--modes", why);
    let form = format!(
        "a wavelet mode in dimension {d} is j:t:{} (level j, detail type 1 <= t < {} with bit \
         a-1 set where the wavelet, not the scaling function, runs along axis a, shifts \
         0 <= k_a < 2^j; -1:0{} the scaling coefficient)",
        (1..=d)
            .map(|a| format!("k_{a}"))
            .collect::<Vec<_>>()
            .join(":"),
        1 << d,
        ":0".repeat(d)
    );
    if mode.len() != d + 2 {
        return Err(bad(format!("{form}, got {mode:?}")));
    }
    let (j, t, ks) = (mode[0], mode[1], &mode[2..]);
    let n = 1usize << levels;
    if j == -1 {
        if t == 0 && ks.iter().all(|&k| k == 0) {
            return Ok(0);
        }
        return Err(bad(format!("{form}, got {mode:?}")));
    }
    if j < 0 || j >= levels as i64 {
        return Err(bad(format!(
            "wavelet level j = {j} does not exist for n = 2^{levels} (0 <= j < {levels}, or -1 \
             for the scaling coefficient)"
        )));
    }
    if t < 1 || t >= 1 << d {
        return Err(bad(format!(
            "detail type t = {t} out of range in dimension {d} (1 <= t < {}); {form}",
            1 << d
        )));
    }
    let scale = 1i64 << j;
    let mut idx = 0usize;
    for (a, &k) in ks.iter().enumerate() {
        if k < 0 || k >= scale {
            return Err(bad(format!(
                "wavelet shift k_{} = {k} out of range at level {j} (0 <= k < {scale})",
                a + 1
            )));
        }
        let p = if (t >> a) & 1 == 1 { scale + k } else { k };
        idx = idx * n + p as usize;
    }
    Ok(idx)
}

/// The position (p_1, ..., p_d) of C-order index `i` in a cube of side n (unused axes 0).
pub fn cube_point(mut i: usize, n: usize, d: usize) -> [usize; 3] {
    let mut p = [0; 3];
    for a in (0..d).rev() {
        p[a] = i % n;
        i /= n;
    }
    p
}

/// The label of cube index `i` (n = 2^levels per axis, dimension d).
pub fn index_mode(i: usize, levels: u32, d: usize) -> Vec<i64> {
    if d == 1 {
        return super::wavelet::index_mode(i);
    }
    let n = 1usize << levels;
    let point = cube_point(i, n, d);
    let p = &point[..d];
    let top = *p.iter().max().expect("d >= 1");
    if top == 0 {
        return [vec![-1, 0], vec![0; d]].concat();
    }
    let j = usize::BITS - 1 - top.leading_zeros();
    let scale = 1usize << j;
    let mut t = 0i64;
    let mut ks = Vec::with_capacity(d);
    for (a, &pa) in p.iter().enumerate() {
        if pa >= scale {
            t |= 1 << a;
            ks.push((pa - scale) as i64);
        } else {
            ks.push(pa as i64);
        }
    }
    [vec![j as i64, t], ks].concat()
}

/// Per axis of a mode: (level j, shift k, detail) — the 1-D factor psi_{j,k} (detail) or
/// phi_{j,k}; the scaling coefficient is phi_{0,0} on every axis.
pub fn factors_of(mode: &[i64], d: usize) -> Vec<(i64, i64, bool)> {
    if d == 1 {
        return if mode[0] < 0 {
            vec![(0, 0, false)]
        } else {
            vec![(mode[0], mode[1], true)]
        };
    }
    if mode[0] < 0 {
        return vec![(0, 0, false); d];
    }
    (0..d)
        .map(|a| (mode[0], mode[2 + a], (mode[1] >> a) & 1 == 1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_in_every_dimension() {
        for d in 1..=3 {
            let levels = 3;
            let total = 8usize.pow(d as u32);
            for i in 0..total {
                let m = index_mode(i, levels, d);
                assert_eq!(mode_index(&m, levels, d).unwrap(), i, "d = {d}, {m:?}");
            }
        }
        assert!(mode_index(&[0, 0, 0, 0], 3, 2).is_err());
        assert!(mode_index(&[1, 4, 0, 0], 3, 2).is_err());
        assert!(mode_index(&[1, 1, 2, 0], 3, 2).is_err());
        assert!(mode_index(&[3, 1, 0, 0], 3, 2).is_err());
        assert!(mode_index(&[1, 1, 0], 3, 2).is_err());
        assert_eq!(mode_index(&[-1, 0, 0, 0, 0], 2, 3).unwrap(), 0);
    }
}
