//! Element-wise loops of the CPU backend, each writing a fresh buffer once: in parallel over
//! fixed chunks, with no copy of the input to modify in place and no zero fill first (either
//! was a whole extra pass over an activation tensor, ~10% of a training step). Each chunk's
//! loop is a plain loop over one closure, so it vectorises. The value of every element depends
//! only on its inputs, so the bits do not depend on the thread count.

use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Elements per parallel task of an element-wise loop (32 KiB of f32: enough work per task,
/// several tasks per tensor); any split gives the same bits.
pub(super) const CHUNK: usize = 8192;

/// Fill `out` (exactly `n` slots) by `fill(offset, chunk)` over fixed chunks, in parallel.
pub fn fill_par<T: Send>(n: usize, fill: impl Fn(usize, &mut [MaybeUninit<T>]) + Sync) -> Vec<T> {
    let mut out = Vec::with_capacity(n);
    out.spare_capacity_mut()[..n]
        .par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(i, o)| fill(i * CHUNK, o));
    // SAFETY: `fill` wrote every slot of every chunk, and the chunks cover 0..n.
    unsafe { out.set_len(n) };
    out
}

/// A slice every slot of which was written, as values.
///
/// # Safety
/// Every element of `o` must be initialised.
#[inline]
pub unsafe fn written<T>(o: &mut [MaybeUninit<T>]) -> &mut [T] {
    // SAFETY: the caller wrote every slot; MaybeUninit<T> has T's layout.
    unsafe { &mut *(o as *mut [MaybeUninit<T>] as *mut [T]) }
}

/// `f(x_i)` for every element.
#[inline]
pub fn map<T, F>(x: &[T], f: F) -> Vec<T>
where
    T: Copy + Send + Sync,
    F: Fn(T) -> T + Sync,
{
    fill_par(x.len(), |at, o| {
        let xs = &x[at..at + o.len()];
        for i in 0..xs.len() {
            o[i] = MaybeUninit::new(f(xs[i]));
        }
    })
}

/// `f(a_i, b_i)` for every element of two equally long slices.
#[inline]
pub fn zip_map<T, F>(a: &[T], b: &[T], f: F) -> Vec<T>
where
    T: Copy + Send + Sync,
    F: Fn(T, T) -> T + Sync,
{
    assert_eq!(a.len(), b.len(), "zip_map: lengths differ");
    fill_par(a.len(), |at, o| {
        let (xs, ys) = (&a[at..at + o.len()], &b[at..at + o.len()]);
        for i in 0..xs.len() {
            o[i] = MaybeUninit::new(f(xs[i], ys[i]));
        }
    })
}

/// `f(x_i, s(r))` for every element, `r` the index of the row of `row` elements it lies in (a
/// (batch x channel) row of a channels-first tensor: `r % channels` is its channel), `s(r)` a
/// value per row. Parallel over whole rows, so the inner loop is a plain one.
#[inline]
pub fn map_rows<T, S, F>(x: &[T], row: usize, s: S, f: F) -> Vec<T>
where
    T: Copy + Send + Sync,
    S: Fn(usize) -> T + Sync,
    F: Fn(T, T) -> T + Sync,
{
    assert!(
        row > 0 && x.len().is_multiple_of(row),
        "map_rows: rows of {row}"
    );
    let mut out = Vec::with_capacity(x.len());
    out.spare_capacity_mut()[..x.len()]
        .par_chunks_mut(row)
        .zip(x.par_chunks(row))
        .enumerate()
        .for_each(|(r, (o, xs))| {
            let sr = s(r);
            let o = &mut o[..xs.len()];
            for i in 0..xs.len() {
                o[i] = MaybeUninit::new(f(xs[i], sr));
            }
        });
    // SAFETY: the rows cover all x.len() slots and each row's loop wrote every slot of it.
    unsafe { out.set_len(x.len()) };
    out
}

/// A vector of `n` values built in parallel chunks of `chunk` (the last may be shorter): each
/// task zeroes its own chunk (the fill is spread over the threads and leaves the chunk in
/// cache for the work, instead of one thread's memset of the whole output first) and then runs
/// `work(state, chunk_index, chunk)` with per-thread state from `init` (FFT scratch lines).
pub fn zeroed_chunks_init<T, S, I, F>(n: usize, chunk: usize, zero: T, init: I, work: F) -> Vec<T>
where
    T: Copy + Send + Sync,
    I: Fn() -> S + Sync + Send,
    F: Fn(&mut S, usize, &mut [T]) + Sync + Send,
{
    let mut out = Vec::with_capacity(n);
    out.spare_capacity_mut()[..n]
        .par_chunks_mut(chunk.max(1))
        .enumerate()
        .for_each_init(init, |state, (i, c)| {
            for slot in c.iter_mut() {
                slot.write(zero);
            }
            // SAFETY: every slot of `c` was just initialised.
            let c = unsafe { written(c) };
            work(state, i, c);
        });
    // SAFETY: the chunks cover 0..n and each was initialised above.
    unsafe { out.set_len(n) };
    out
}

/// [`zeroed_chunks_init`] without per-thread state.
pub fn zeroed_chunks<T, F>(n: usize, chunk: usize, zero: T, work: F) -> Vec<T>
where
    T: Copy + Send + Sync,
    F: Fn(usize, &mut [T]) + Sync + Send,
{
    zeroed_chunks_init(n, chunk, zero, || (), |_, i, c| work(i, c))
}

/// Per row `r` of `row` values (parallel over rows): `f(r, out)` writes every slot of `out`.
pub fn rows<T, F>(n: usize, row: usize, f: F) -> Vec<T>
where
    T: Send,
    F: Fn(usize, &mut [MaybeUninit<T>]) + Sync,
{
    assert!(row > 0 && n.is_multiple_of(row), "rows: rows of {row}");
    let mut out = Vec::with_capacity(n);
    out.spare_capacity_mut()[..n]
        .par_chunks_mut(row)
        .enumerate()
        .for_each(|(r, o)| f(r, o));
    // SAFETY: the rows cover all n slots and `f` wrote every slot of each row.
    unsafe { out.set_len(n) };
    out
}

/// [`rows`] with two outputs: `f(r, a, b)` writes every slot of both rows `r`.
pub fn rows2<T, F>(n: usize, row: usize, f: F) -> (Vec<T>, Vec<T>)
where
    T: Send,
    F: Fn(usize, &mut [MaybeUninit<T>], &mut [MaybeUninit<T>]) + Sync,
{
    assert!(row > 0 && n.is_multiple_of(row), "rows2: rows of {row}");
    let (mut a, mut b) = (Vec::with_capacity(n), Vec::with_capacity(n));
    a.spare_capacity_mut()[..n]
        .par_chunks_mut(row)
        .zip(b.spare_capacity_mut()[..n].par_chunks_mut(row))
        .enumerate()
        .for_each(|(r, (oa, ob))| f(r, oa, ob));
    // SAFETY: as in `rows`, for both outputs.
    unsafe {
        a.set_len(n);
        b.set_len(n);
    }
    (a, b)
}

/// [`rows`] where `f` also returns a value per row (the row's sum): the rows' values in order.
pub fn rows_reduce<T, F>(n: usize, row: usize, f: F) -> (Vec<T>, Vec<T>)
where
    T: Send,
    F: Fn(usize, &mut [MaybeUninit<T>]) -> T + Sync,
{
    assert!(
        row > 0 && n.is_multiple_of(row),
        "rows_reduce: rows of {row}"
    );
    let mut out = Vec::with_capacity(n);
    let per_row = out.spare_capacity_mut()[..n]
        .par_chunks_mut(row)
        .enumerate()
        .map(|(r, o)| f(r, o))
        .collect();
    // SAFETY: as in `rows`.
    unsafe { out.set_len(n) };
    (out, per_row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_cover_every_element_in_place_order() {
        // Lengths around the chunk size: empty, partial chunk, exact, one over.
        for n in [0, 1, 100, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7] {
            let x: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let y: Vec<f64> = (0..n).map(|i| (2 * i) as f64).collect();
            assert_eq!(
                map(&x, |v| v + 1.0),
                (0..n).map(|i| i as f64 + 1.0).collect::<Vec<_>>()
            );
            assert_eq!(
                zip_map(&x, &y, |u, v| u * 10.0 + v),
                (0..n).map(|i| 12.0 * i as f64).collect::<Vec<_>>()
            );
            let z = zeroed_chunks(n, 5, 0.0, |i, c: &mut [f64]| {
                assert!(c.iter().all(|v| *v == 0.0));
                c.iter_mut()
                    .enumerate()
                    .for_each(|(j, v)| *v += (i * 5 + j) as f64);
            });
            assert_eq!(z, x);
            let row = 7;
            let m = n - n % row;
            assert_eq!(
                map_rows(&x[..m], row, |r| r as f64, |v, r| v - r),
                (0..m).map(|i| (i - i / row) as f64).collect::<Vec<_>>()
            );
        }
    }
}
