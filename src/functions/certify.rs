//! Certified upper bounds on a quantity's supremum over the unit cube \[0,1\]^d (d = 1..3) by
//! interval branch and bound: sup |v| (the M of the bounds) and sup |grad v| (the Lipschitz
//! constant L) of an expression.
//!
//! Phase 1 (search, guard intervals, cheap): keep the boxes of a partition of the cube in a
//! max-heap by their enclosure's upper bound; bisect the worst box along its widest side;
//! a point value in each new box raises the lower bound. Each box is bisected across the side
//! (among the coordinates the function reads) whose halves have the smaller worst bound. Stop
//! when the worst upper bound is within [`REL_TOL`] of the best lower bound (tight), or the box
//! budget is spent, or the worst box cannot be split further.
//! Phase 2 (certificate): walk the split tree from the root with certified enclosures, accepting
//! a box as soon as its certified upper bound is at most (1 + [`REL_TOL`]/2) x phase 1's bound
//! and descending into the children otherwise (leaves are accepted whatever their bound). The
//! accepted boxes cover the cube, so the largest certified bound among them is a proven upper
//! bound on the supremum: guard intervals only chose where to look.
//!
//! Why the maximum over a cover bounds L: for x, y in the cube the segment between them crosses
//! finitely many closed boxes; on each piece |v(y') - v(x')| <= L_box |y' - x'| (the slope bound
//! of [`crate::interval::Slope`]), and the pieces' lengths add up to |y - x|.

use rayon::prelude::*;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Phase 1 stops when the worst upper bound is within this relative distance of the lower
/// bound, by dimension: a ridge of near-maximal values must be covered by boxes small enough
/// for the enclosures to be this tight, and their number grows like tol^-(d-1).
pub const REL_TOL: [f64; 3] = [1.0 / 32.0, 1.0 / 16.0, 1.0 / 8.0];

/// An axis-aligned box in \[0,1\]^d.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cell {
    pub lo: [f64; 3],
    pub hi: [f64; 3],
}

impl Cell {
    pub fn unit() -> Cell {
        Cell {
            lo: [0.0; 3],
            hi: [1.0; 3],
        }
    }
    pub fn centre(&self) -> [f64; 3] {
        std::array::from_fn(|k| 0.5 * (self.lo[k] + self.hi[k]))
    }
    /// The two halves across side k, or None when its midpoint is not strictly inside (the box
    /// is as small as f64 allows there).
    fn split(&self, k: usize) -> Option<(Cell, Cell)> {
        let m = 0.5 * (self.lo[k] + self.hi[k]);
        if !(m > self.lo[k] && m < self.hi[k]) {
            return None;
        }
        let (mut a, mut b) = (*self, *self);
        a.hi[k] = m;
        b.lo[k] = m;
        Some((a, b))
    }
}

/// What is bounded: upper bounds of the quantity over a box (NaN when the function is undefined
/// somewhere in it, infinite when unbounded), and a lower bound of its supremum from one point.
pub trait Objective: Sync {
    /// Guard-interval upper bound over the box (search only).
    fn upper_guard(&self, c: &Cell) -> f64;
    /// Certified upper bound over the box.
    fn upper_certified(&self, c: &Cell) -> f64;
    /// A value the supremum is at least, from the point x (guard intervals; steers the search).
    fn lower_at(&self, x: &[f64; 3]) -> f64;
}

/// How the search ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Upper and lower bounds within [`REL_TOL`] (phase 1).
    Tight,
    /// The box budget ran out first: the upper bound is valid but may be loose.
    Budget,
    /// Some box cannot be bounded at the finest resolution: the quantity is unbounded (or the
    /// enclosure cannot show otherwise) near `near`.
    Unbounded { near: Vec<f64> },
    /// The function is undefined (a domain error: sqrt or ln of a negative number, ...)
    /// somewhere in the box around `near`, or the enclosure cannot show otherwise.
    Undefined { near: Vec<f64> },
}

/// A certified bound with the evidence.
#[derive(Clone, Debug)]
pub struct Certificate {
    /// Proven upper bound on the supremum (phase 2).
    pub upper: f64,
    /// The supremum is at least this (best point value found).
    pub lower: f64,
    /// Boxes in the final partition of phase 1.
    pub boxes: usize,
    /// Certified enclosures evaluated in phase 2.
    pub certified_evals: usize,
    pub outcome: Outcome,
}

struct Node {
    cell: Cell,
    upper: f64,
    children: Option<(usize, usize)>,
}

#[derive(PartialEq)]
struct Ranked(f64, usize);
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Ranked {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.total_cmp(&o.0)
    }
}

/// NaN (undefined) ranks above everything, so such boxes are split first.
fn rank(u: f64) -> f64 {
    if u.is_nan() { f64::INFINITY } else { u }
}

/// The split of `c` whose worse half has the smaller guard bound, with both halves' bounds.
/// Candidates are the sides in `axes` at least half as wide as the widest of them (so boxes
/// never turn into slivers that no split improves); ties go to the wider side.
fn best_split(obj: &dyn Objective, c: &Cell, axes: &[usize]) -> Option<[(Cell, f64); 2]> {
    let width = |k: usize| c.hi[k] - c.lo[k];
    let widest = axes.iter().map(|&k| width(k)).fold(0.0, f64::max);
    // (halves, worse half's rank, width of the split side)
    type Candidate = ([(Cell, f64); 2], f64, f64);
    let mut best: Option<Candidate> = None;
    for &k in axes.iter().filter(|&&k| width(k) >= 0.5 * widest) {
        let Some((a, b)) = c.split(k) else { continue };
        let halves = [(a, obj.upper_guard(&a)), (b, obj.upper_guard(&b))];
        let worst = rank(halves[0].1).max(rank(halves[1].1));
        let better = best
            .as_ref()
            .is_none_or(|&(_, w, wd)| worst < w || (worst == w && width(k) > wd));
        if better {
            best = Some((halves, worst, width(k)));
        }
    }
    best.map(|b| b.0)
}

/// Work limits of [`certify`].
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Boxes of the phase-1 partition.
    pub boxes: usize,
    /// Certified enclosures phase 2 may evaluate; when the next level would exceed it, the
    /// boxes reached so far are accepted with their (valid, looser) certified bounds.
    pub certified: usize,
}

/// Bound sup over \[0,1\]^d of the objective within `budget`, splitting across the coordinates
/// in `axes` (those the function reads; a constant function is one box).
pub fn certify(obj: &dyn Objective, d: usize, axes: &[usize], budget: Budget) -> Certificate {
    let tol = REL_TOL[d - 1];
    let root = Cell::unit();
    let mut nodes = vec![Node {
        cell: root,
        upper: obj.upper_guard(&root),
        children: None,
    }];
    let mut lower = obj.lower_at(&root.centre()).max(0.0);
    for corner in [[0.0; 3], [1.0; 3]] {
        lower = lower.max(obj.lower_at(&corner));
    }
    let mut heap = BinaryHeap::from([Ranked(rank(nodes[0].upper), 0)]);
    let mut outcome = Outcome::Budget;
    let mut leaves = 1usize;
    while let Some(Ranked(r, i)) = heap.pop() {
        let u = nodes[i].upper;
        if u.is_finite() && u <= lower * (1.0 + tol) + f64::MIN_POSITIVE {
            heap.push(Ranked(r, i));
            outcome = Outcome::Tight;
            break;
        }
        let split = if leaves < budget.boxes {
            best_split(obj, &nodes[i].cell, axes)
        } else {
            None
        };
        let Some(halves) = split else {
            heap.push(Ranked(r, i));
            let near = nodes[i].cell.centre()[..d].to_vec();
            outcome = if leaves >= budget.boxes {
                Outcome::Budget
            } else if u.is_nan() {
                Outcome::Undefined { near }
            } else if u.is_infinite() {
                Outcome::Unbounded { near }
            } else {
                // A finite bound on a box too small to split: valid, maybe not tight.
                Outcome::Budget
            };
            break;
        };
        let first = nodes.len();
        for (c, upper) in halves {
            lower = lower.max(obj.lower_at(&c.centre()));
            heap.push(Ranked(rank(upper), nodes.len()));
            nodes.push(Node {
                cell: c,
                upper,
                children: None,
            });
        }
        nodes[i].children = Some((first, first + 1));
        leaves += 1;
    }
    let guard_upper = heap.peek().map_or(f64::INFINITY, |r| nodes[r.1].upper);
    if !guard_upper.is_finite() {
        // No finite bound to certify (a pole, a domain error, or a budget too small to show
        // the function is bounded).
        return Certificate {
            upper: if guard_upper.is_nan() {
                f64::NAN
            } else {
                f64::INFINITY
            },
            lower,
            boxes: leaves,
            certified_evals: 0,
            outcome,
        };
    }
    // Phase 2: certify a cover, level by level through the split tree.
    let accept = guard_upper * (1.0 + tol / 2.0);
    let mut frontier = vec![0usize];
    let mut upper: f64 = 0.0;
    let mut evals = 0usize;
    let mut undefined = None;
    let mut cut_short = false;
    let mut accept_box = |i: usize, c: f64, upper: &mut f64| {
        if c.is_nan() {
            undefined.get_or_insert_with(|| nodes[i].cell.centre()[..d].to_vec());
        }
        *upper = upper.max(c);
    };
    while !frontier.is_empty() {
        let bounds: Vec<f64> = frontier
            .par_iter()
            .map(|&i| obj.upper_certified(&nodes[i].cell))
            .collect();
        evals += frontier.len();
        let mut next = Vec::new();
        let mut descended = Vec::new();
        for (&i, &c) in frontier.iter().zip(&bounds) {
            match nodes[i].children {
                // NaN (undefined here) also descends: a child may show where.
                Some((a, b)) if c > accept || c.is_nan() => {
                    descended.push((i, c));
                    next.extend([a, b]);
                }
                _ => accept_box(i, c, &mut upper),
            }
        }
        if evals + next.len() > budget.certified {
            // Out of certified evaluations: the boxes reached cover the rest of the cube, and
            // their own certified bounds hold (looser than their children's would be).
            for (i, c) in descended {
                accept_box(i, c, &mut upper);
            }
            cut_short = !next.is_empty();
            break;
        }
        frontier = next;
    }
    if let Some(near) = undefined {
        return Certificate {
            upper: f64::NAN,
            lower,
            boxes: leaves,
            certified_evals: evals,
            outcome: Outcome::Undefined { near },
        };
    }
    let outcome = if cut_short {
        Outcome::Budget
    } else if upper.is_infinite() {
        Outcome::Unbounded {
            near: nodes[heap.peek().map_or(0, |r| r.1)].cell.centre()[..d].to_vec(),
        }
    } else {
        outcome
    };
    Certificate {
        upper,
        lower,
        boxes: leaves,
        certified_evals: evals,
        outcome,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// |v| for v(x) = 1 - (x - a)^2 on [0, 1] with exact interval bounds by hand.
    struct Parabola(f64);
    impl Objective for Parabola {
        fn upper_guard(&self, c: &Cell) -> f64 {
            self.upper_certified(c)
        }
        fn upper_certified(&self, c: &Cell) -> f64 {
            let (lo, hi) = (c.lo[0] - self.0, c.hi[0] - self.0);
            let min_sq = if lo <= 0.0 && hi >= 0.0 {
                0.0
            } else {
                (lo * lo).min(hi * hi)
            };
            1.0 - min_sq
        }
        fn lower_at(&self, x: &[f64; 3]) -> f64 {
            1.0 - (x[0] - self.0).powi(2)
        }
    }

    const BIG: Budget = Budget {
        boxes: 1000,
        certified: 1000,
    };

    /// Parabola with enclosures over-estimating by the box width (as interval arithmetic does).
    struct Loose(Parabola);
    impl Objective for Loose {
        fn upper_guard(&self, c: &Cell) -> f64 {
            self.0.upper_certified(c) + (c.hi[0] - c.lo[0])
        }
        fn upper_certified(&self, c: &Cell) -> f64 {
            self.upper_guard(c)
        }
        fn lower_at(&self, x: &[f64; 3]) -> f64 {
            self.0.lower_at(x)
        }
    }

    #[test]
    fn finds_the_maximum_and_certifies_it() {
        let c = certify(&Parabola(0.3), 1, &[0], BIG);
        assert_eq!(c.outcome, Outcome::Tight);
        assert!(c.upper >= 1.0 && c.upper <= 1.0 + 1e-12, "{c:?}");
        assert!(c.lower <= 1.0 && c.lower >= 1.0 / (1.0 + REL_TOL[0]));
        assert!(c.certified_evals >= 1);
        // A phase-2 budget too small for the tree: a valid, looser bound, flagged.
        let short = certify(
            &Loose(Parabola(0.3)),
            1,
            &[0],
            Budget {
                boxes: 1000,
                certified: 3,
            },
        );
        assert_eq!(short.outcome, Outcome::Budget);
        assert!(
            short.upper >= 1.0 && short.certified_evals <= 3,
            "{short:?}"
        );
    }

    struct Pole;
    impl Objective for Pole {
        fn upper_guard(&self, c: &Cell) -> f64 {
            if c.lo[0] <= 0.3 && c.hi[0] >= 0.3 {
                f64::INFINITY
            } else {
                1.0 / (c.lo[0] - 0.3).abs().min((c.hi[0] - 0.3).abs())
            }
        }
        fn upper_certified(&self, c: &Cell) -> f64 {
            self.upper_guard(c)
        }
        fn lower_at(&self, x: &[f64; 3]) -> f64 {
            1.0 / (x[0] - 0.3).abs()
        }
    }

    #[test]
    fn a_pole_is_reported_where_it_is() {
        let c = certify(
            &Pole,
            1,
            &[0],
            Budget {
                boxes: 100_000,
                certified: 100_000,
            },
        );
        match c.outcome {
            Outcome::Unbounded { near } => assert!((near[0] - 0.3).abs() < 1e-9, "{near:?}"),
            o => panic!("{o:?}"),
        }
        assert!(c.upper.is_infinite());
        // With a small budget the answer is still never a finite number.
        let c = certify(
            &Pole,
            1,
            &[0],
            Budget {
                boxes: 10,
                certified: 10,
            },
        );
        assert!(c.upper.is_infinite(), "{c:?}");
    }
}
