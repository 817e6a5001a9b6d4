//! [`Partners`]: one product's co-occurrence counts, kept sparse or, once most ids up to the
//! largest are present, dense.
//!
//! A popular product ends up co-purchased with most of the catalogue. Sparse (an [`IdMap`],
//! 8 B a partner) a change costs a search of the row, and in a row of thousands of partners
//! nearly every probe of that search misses the cache: at 1M orders of the e2e bench (2,000
//! products) the searches were ~half of the store's index time and a sixth of all the
//! pipeline's. Dense, a count is found by its id: one load, and 4 B a slot, so a row at least
//! half full is also smaller than sparse.
//!
//! Invariants: dense only for rows whose ids are `0..slots` with at least a quarter of the slots
//! present (so never more than twice sparse's memory); a row enters dense at a third full (1.5
//! times sparse's memory: the rows of the less popular products fill up slowly, and their
//! changes missed the cache as much) and leaves below a quarter, so a row near one bound does
//! not flip at every change. A count of 0 is absence in both forms (the caller removes a count
//! that drops to 0).
//!
//! Owns the representation only; what a count means is [`crate::co`]'s.

use crate::idmap::IdMap;

/// Rows smaller than this stay sparse: dense would save nothing worth a form of its own.
const MIN_DENSE: usize = 32;

/// A product's partners and their counts, ascending by partner id.
#[derive(Clone, Debug)]
pub(crate) enum Partners {
    Sparse(IdMap<u32>),
    /// `counts[q]` is the count of partner `q` (0: absent); `len` counts the non-zero slots.
    Dense {
        counts: Vec<u32>,
        len: usize,
    },
}

impl Default for Partners {
    fn default() -> Self {
        Partners::Sparse(IdMap::default())
    }
}

impl Partners {
    pub(crate) fn len(&self) -> usize {
        match self {
            Partners::Sparse(m) => m.len(),
            Partners::Dense { len, .. } => *len,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every `(partner, count)`, ascending by partner.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (i64, u32)> + '_ {
        let (sparse, dense) = match self {
            Partners::Sparse(m) => (Some(m.iter()), &[][..]),
            Partners::Dense { counts, .. } => (None, counts.as_slice()),
        };
        sparse
            .into_iter()
            .flatten()
            .chain((0i64..).zip(dense.iter().copied()).filter(|&(_, n)| n != 0))
    }

    /// The count of partner `q`, if present.
    #[cfg(test)]
    pub(crate) fn get(&self, q: i64) -> Option<u32> {
        match self {
            Partners::Sparse(m) => m.get(q),
            Partners::Dense { counts, .. } => usize::try_from(q)
                .ok()
                .and_then(|i| counts.get(i).copied())
                .filter(|&n| n != 0),
        }
    }

    /// The address of `q`'s count if the row is dense and holds its slot, for a prefetch.
    pub(crate) fn slot(&self, q: i64) -> Option<*const u32> {
        match self {
            Partners::Dense { counts, .. } => usize::try_from(q)
                .ok()
                .and_then(|i| counts.get(i))
                .map(|c| c as *const u32),
            Partners::Sparse(_) => None,
        }
    }

    /// As [`IdMap::update_sorted`]: each count of `changes` (ascending, each partner once)
    /// becomes `f(partner, count, change)` (`None`: absent / remove), `f` called once per change
    /// in order. Afterwards the row takes the form its density calls for.
    pub(crate) fn update_sorted<D: Copy>(
        &mut self,
        changes: &[(i64, D)],
        mut f: impl FnMut(i64, Option<u32>, D) -> Option<u32>,
    ) {
        let mut done = 0;
        if let Partners::Dense { counts, len } = self {
            for &(q, d) in changes {
                let Some(i) = dense_slot(counts, *len, q) else {
                    break;
                };
                let old = counts[i];
                let new = f(q, (old != 0).then_some(old), d).unwrap_or(0);
                *len = *len + usize::from(new != 0) - usize::from(old != 0);
                counts[i] = new;
                done += 1;
            }
            if done < changes.len() {
                // a partner dense cannot hold (a negative id, or one far beyond the row)
                *self = Partners::Sparse(sparse_of(counts, *len));
            }
        }
        if let Partners::Sparse(m) = self {
            m.update_sorted(&changes[done..], f);
        }
        self.reshape();
    }

    /// Moves the row to the form its density calls for (see the module's invariants).
    fn reshape(&mut self) {
        match self {
            Partners::Sparse(m) if m.len() >= MIN_DENSE => {
                let IdMap::Narrow(v) = m else { return };
                let Some(&(max, _)) = v.last() else { return };
                let slots = max as usize + 1;
                if slots <= 3 * v.len() {
                    let mut counts = vec![0; slots];
                    for &(q, n) in v.iter() {
                        counts[q as usize] = n;
                    }
                    *self = Partners::Dense {
                        counts,
                        len: v.len(),
                    };
                }
            }
            Partners::Dense { counts, len } if *len < MIN_DENSE || counts.len() > 4 * *len => {
                *self = Partners::Sparse(sparse_of(counts, *len));
            }
            _ => {}
        }
    }
}

/// The sparse form of a dense row of `len` partners.
fn sparse_of(counts: &[u32], len: usize) -> IdMap<u32> {
    let mut v = Vec::with_capacity(len);
    v.extend(
        (0u32..)
            .zip(counts.iter().copied())
            .filter(|&(_, n)| n != 0),
    );
    IdMap::Narrow(v)
}

/// The slot of partner `q` in a dense row of `len` partners, grown to hold it while the row
/// stays at least a quarter full (growing by an eighth, as sparse rows do); `None` where it
/// cannot be held.
fn dense_slot(counts: &mut Vec<u32>, len: usize, q: i64) -> Option<usize> {
    let i = usize::try_from(q).ok()?;
    if i < counts.len() {
        return Some(i);
    }
    if i >= 4 * (len + 1) || u32::try_from(q).is_err() {
        return None;
    }
    let need = i + 1;
    if counts.capacity() < need {
        counts.reserve_exact((need - counts.len()).max(counts.len() / 8));
    }
    counts.resize(need, 0);
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::collections::BTreeMap;

    /// Random batches over id ranges that make rows go dense, grow, thin out and go sparse
    /// again (and ids beyond u32 and below 0): after every batch the row holds what a map
    /// holds, `f` saw each change once with the current count, in order, and the form obeys
    /// the density bounds.
    #[test]
    fn random_batches_match_a_map_in_either_form() {
        let mut dense_seen = 0;
        let mut sparse_again = 0;
        for seed in 0..300 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut row = Partners::default();
            let mut want: BTreeMap<i64, u32> = BTreeMap::new();
            let mut was_dense = false;
            for step in 0..60 {
                // fill a range densely, then thin it out, with strays now and then
                let span = rng.random_range(40..300i64);
                let removing = step % 20 >= 12;
                let stray = step % 20 == 5;
                let mut ids: Vec<i64> = if removing {
                    // mostly what is there, strays included
                    let present: Vec<i64> = want.keys().copied().collect();
                    (0..rng.random_range(0..120))
                        .filter_map(|_| {
                            let i = rng.random_range(0..present.len().max(1));
                            present.get(i).copied()
                        })
                        .collect()
                } else {
                    (0..rng.random_range(0..120))
                        .map(|_| match rng.random_range(0..40) {
                            0 if stray => -rng.random_range(1..5i64),
                            1 if stray => (1i64 << 33) + rng.random_range(0..3i64),
                            2 if stray => span * 10 + rng.random_range(0..100i64),
                            _ => rng.random_range(0..span),
                        })
                        .collect()
                };
                ids.sort_unstable();
                ids.dedup();
                let changes: Vec<(i64, i64)> = ids
                    .iter()
                    .map(|&q| {
                        let have = want.get(&q).copied().unwrap_or(0);
                        let d = if removing && have > 0 {
                            -i64::from(have.min(rng.random_range(1..3)))
                        } else {
                            rng.random_range(1..3)
                        };
                        (q, d)
                    })
                    .collect();
                let mut calls = Vec::new();
                row.update_sorted(&changes, |q, old, d| {
                    assert_eq!(old, want.get(&q).copied(), "seed {seed}: {q}");
                    calls.push(q);
                    let n = i64::from(old.unwrap_or(0)) + d;
                    u32::try_from(n).ok().filter(|&n| n > 0)
                });
                assert_eq!(calls, ids, "seed {seed}");
                for &(q, d) in &changes {
                    let n = i64::from(want.get(&q).copied().unwrap_or(0)) + d;
                    if n > 0 {
                        want.insert(q, n as u32);
                    } else {
                        want.remove(&q);
                    }
                }
                let got: Vec<(i64, u32)> = row.iter().collect();
                let expect: Vec<(i64, u32)> = want.iter().map(|(&q, &n)| (q, n)).collect();
                assert_eq!(got, expect, "seed {seed} step {step}");
                assert_eq!(row.len(), want.len());
                for (&q, &n) in want.iter().take(5) {
                    assert_eq!(row.get(q), Some(n));
                }
                assert_eq!(row.get(-100), None);
                match &row {
                    Partners::Dense { counts, len } => {
                        assert!(*len >= MIN_DENSE && counts.len() <= 4 * *len, "seed {seed}");
                        assert!(want.keys().all(|&q| q >= 0 && (q as usize) < counts.len()));
                        dense_seen += 1;
                        was_dense = true;
                    }
                    Partners::Sparse(_) => {
                        if was_dense {
                            sparse_again += 1;
                            was_dense = false;
                        }
                    }
                }
            }
        }
        // the cases the test is for did happen
        assert!(
            dense_seen > 1000 && sparse_again > 50,
            "{dense_seen} {sparse_again}"
        );
    }

    /// A row of the first ids goes dense at a third full, grows at its end within the bound, and
    /// a far id sends it back to sparse.
    #[test]
    fn dense_at_a_third_full_and_sparse_for_a_far_partner() {
        let mut row = Partners::default();
        let inc = |_: i64, old: Option<u32>, d: u32| Some(old.unwrap_or(0) + d);
        let evens: Vec<(i64, u32)> = (0..40).map(|q| (2 * q, 1)).collect();
        row.update_sorted(&evens, inc);
        // ids 0..=78, 40 present: 79 slots ≤ 120
        assert!(matches!(&row, Partners::Dense { counts, len: 40 } if counts.len() == 79));
        assert!(row.slot(78).is_some() && row.slot(79).is_none());
        row.update_sorted(&[(100, 5)], inc);
        assert!(matches!(&row, Partners::Dense { counts, len: 41 } if counts.len() == 101));
        assert_eq!(row.get(100), Some(5));
        row.update_sorted(&[(1000, 1)], inc);
        assert!(matches!(row, Partners::Sparse(_)));
        assert_eq!(row.len(), 42);
        assert_eq!(row.iter().last(), Some((1000, 1)));
    }
}
