//! Co-occurrence and the `also_bought` view (SPEC §4, §7).
//!
//! co(p, q) is the number of distinct live orders containing both p and q; orders over the
//! basket cap contribute none (the engine leaves them out of the deltas). `recommendations`
//! reads whole rows of it when a list is computed, and `also_bought` is, per product, the top
//! K other products by co(p, q), ties by the smaller id, numbered from 1.
//!
//! Both read one copy of the counts, kept here. The view's rows are derived in the same write
//! that changes the counts (see [`apply_batch`]), so `also_bought`, the recommendations index
//! and every other view are at one `as_of`, and the store feeds and prints them like any view's
//! rows. Until the engine's performance work, the dataflow ranked the pairs in an operator of its
//! own while the store kept the counts a second time: two maps of every pair, 24.5 MB each at
//! 300k orders of the e2e bench, and a dataflow path (map, exchange, consolidation) for ~5
//! pair updates per order that nothing in the dataflow needed.
//!
//! Owns the counts and the ranking; must not know how the deltas are derived (the engine's
//! `views::index` does).

use crate::partners::Partners;
use crate::radix::ordered_pair;
use crate::rows::AlsoBoughtRow;
use crate::ViewRow;
use foldhash::HashMap;
use std::cmp::Reverse;
use std::collections::BTreeMap;

/// One product's partners.
#[derive(Debug, Default)]
pub(crate) struct CoRow {
    /// q -> orders containing both (never 0: such entries are removed). Only ever read whole
    /// (recommendations score over all of it) or changed by net changes sorted by partner, so
    /// kept in partner order, sparse or dense (see [`Partners`]): 8 B or less a pair instead of
    /// ~26 in the `HashMap<i64, u32>` it replaced, the largest structure of the engine at 1M
    /// orders of the e2e bench (47 MB as sparse rows).
    pub(crate) counts: Partners,
    /// The first K partners by higher count, then smaller id. Invariant: every other partner
    /// ranks after all of them, and there are fewer than K only when there are no others.
    leaders: Vec<(Reverse<u32>, i64)>,
}

impl CoRow {
    /// Applies one net change per partner (`changes` ascending by partner) and restores the
    /// leaders for `k`. Returns how many changes were refused: a count that would go negative
    /// or beyond `u32` (an inconsistent stream) drops the pair instead.
    fn apply(&mut self, changes: &[(i64, i64)], k: usize) -> u64 {
        // set once a leader's count goes down or it leaves: an outsider may now rank before it,
        // and only a full read of the row can tell which (a cancelled or deleted order: rare)
        let mut reread = false;
        let mut refused = 0;
        let leaders = &mut self.leaders;
        self.counts.update_sorted(changes, |q, old, diff| {
            let old = old.unwrap_or(0);
            let new = match i64::from(old)
                .checked_add(diff)
                .and_then(|n| u32::try_from(n).ok())
            {
                Some(n) => n,
                None => {
                    refused += 1;
                    0
                }
            };
            // the leaders stay sorted and at most K, moved in place rather than re-sorted
            if !reread {
                match leaders.iter().position(|&(_, l)| l == q) {
                    // a leader that grew can only move up
                    Some(i) if new > 0 && new >= old => {
                        leaders[i].0 = Reverse(new);
                        crate::leaders::raise(leaders, i);
                    }
                    Some(_) => reread = true,
                    // an outsider that grew or arrived enters if it beats the K-th
                    None if new > old => crate::leaders::offer(leaders, (Reverse(new), q), k),
                    // an outsider that shrank still ranks after every leader
                    None => {}
                }
            }
            (new > 0).then_some(new)
        });
        if reread {
            let mut all: Vec<(Reverse<u32>, i64)> =
                self.counts.iter().map(|(q, n)| (Reverse(n), q)).collect();
            if all.len() > k && k > 0 {
                all.select_nth_unstable(k - 1);
            }
            all.truncate(k);
            // sized for the whole row; kept as it is, every re-read row would hold a second,
            // unused copy of its partners
            all.shrink_to_fit();
            all.sort_unstable();
            self.leaders = all;
        }
        refused
    }
}

/// The `also_bought` row of `product` at `rank` for a leader.
fn row(product: i64, rank: u32, &(Reverse(n), q): &(Reverse<u32>, i64)) -> ViewRow {
    ViewRow::AlsoBought(AlsoBoughtRow {
        product_id: product,
        rank,
        other_product_id: q,
        order_count: i64::from(n),
    })
}

/// The rows of `also_bought`: `(product_id, rank)` → `(other_product_id, order_count)`, in
/// dump order. Not a `ViewRow` map like other views': a product's ranks change with nearly
/// every order containing it, and a search among `ViewRow`s (a call and a multi-field compare
/// per key visited) was a third of the store's time; a changed rank here is one overwrite.
pub type AlsoBoughtRows = BTreeMap<(i64, u32), (i64, u32)>;

/// The view row of one entry of [`AlsoBoughtRows`].
pub fn also_bought_row(&(product, rank): &(i64, u32), &(other, n): &(i64, u32)) -> ViewRow {
    row(product, rank, &(Reverse(n), other))
}

/// co(p, q) for every product with a partner.
#[derive(Debug, Default)]
pub(crate) struct CoIndex {
    rows: HashMap<i64, CoRow>,
    /// How many view changes the last batch made: the next batch's vectors are sized by it
    /// (they hold large rows; grown push by push they were copied over and over, ~0.7% of
    /// the pipeline's instructions).
    last_changes: usize,
}

impl CoIndex {
    /// The partners of `product` and their counts (full counts, not only the top K).
    pub(crate) fn row(&self, product: i64) -> Option<&Partners> {
        self.rows.get(&product).map(|r| &r.counts)
    }
}

/// Applies one engine time's co-occurrence deltas `(p, q, diff)` (any order, repeated pairs
/// allowed) with `also_bought`'s `k`, and brings the view's rows in `rows` up to date. Returns
/// the number of refused deltas and the view's changes, retractions first.
pub(crate) fn apply_batch(
    co: &mut CoIndex,
    mut deltas: Vec<(i64, i64, i64)>,
    k: usize,
    rows: &mut AlsoBoughtRows,
) -> (u64, Vec<(ViewRow, i64)>) {
    // by radix: product ids differ in few bytes, and a comparison sort of the pairs was ~10%
    // of the store's instructions (callgrind, stages bench)
    crate::radix_sort_by(&mut deltas, &mut Vec::new(), |&(p, q, _)| {
        ordered_pair(p, q)
    });
    let mut refused = 0;
    let mut retracted = Vec::with_capacity(co.last_changes);
    let mut inserted = Vec::with_capacity(co.last_changes / 2);
    // scratch: one product's net change per partner and its leaders before them
    let mut net: Vec<(i64, i64)> = Vec::new();
    let mut before: Vec<(Reverse<u32>, i64)> = Vec::new();
    let groups: Vec<&[(i64, i64, i64)]> = deltas.chunk_by(|a, b| a.0 == b.0).collect();
    for (g, &group) in groups.iter().enumerate() {
        let product = group[0].0;
        // the next product's counts while this one's are worked on: in a dense row each count
        // is a cache miss of its own, and one at a time they were most of this loop's time
        if let Some((next, row)) = groups
            .get(g + 1)
            .and_then(|n| Some((n, &co.rows.get(&n[0].0)?.counts)))
        {
            for &(_, q, _) in next.iter() {
                if let Some(at) = row.slot(q) {
                    crate::prefetch::prefetch(at);
                }
            }
        }
        net.clear();
        for &(_, q, d) in group {
            match net.last_mut() {
                Some((last, n)) if *last == q => *n += d,
                _ => net.push((q, d)),
            }
        }
        net.retain(|&(_, d)| d != 0);
        if net.is_empty() {
            continue;
        }
        let entry = co.rows.entry(product).or_default();
        before.clear();
        before.extend_from_slice(&entry.leaders);
        refused += entry.apply(&net, k);
        // The view's rows of the product are its leaders before (nothing else writes them):
        // a rank's row changes where its partner or that partner's count did.
        let after = &entry.leaders;
        for (rank, i) in (1u32..).zip(0..before.len().max(after.len())) {
            let (old, new) = (before.get(i), after.get(i));
            if old == new {
                continue;
            }
            if let Some(old) = old {
                retracted.push((row(product, rank, old), -1));
            }
            match new {
                Some(new) => {
                    let &(Reverse(n), q) = new;
                    rows.insert((product, rank), (q, n));
                    inserted.push((row(product, rank, new), 1));
                }
                None => {
                    rows.remove(&(product, rank));
                }
            }
        }
        if entry.counts.is_empty() {
            co.rows.remove(&product);
        }
    }
    retracted.extend(inserted);
    co.last_changes = retracted.len();
    (refused, retracted)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// `also_bought` by its definition, from counts.
    fn naive(counts: &BTreeMap<(i64, i64), i64>, k: usize) -> Vec<ViewRow> {
        let mut by_product: BTreeMap<i64, Vec<(Reverse<i64>, i64)>> = BTreeMap::new();
        for (&(p, q), &n) in counts.iter().filter(|(_, n)| **n > 0) {
            by_product.entry(p).or_default().push((Reverse(n), q));
        }
        let mut rows = Vec::new();
        for (p, mut partners) in by_product {
            partners.sort();
            for (rank, (Reverse(n), q)) in (1u32..).zip(partners.into_iter().take(k)) {
                rows.push(ViewRow::AlsoBought(AlsoBoughtRow {
                    product_id: p,
                    rank,
                    other_product_id: q,
                    order_count: n,
                }));
            }
        }
        rows
    }

    /// The `also_bought` row of product `p` at `rank`: `q`, in `n` orders.
    pub(crate) fn ab(p: i64, rank: u32, q: i64, n: i64) -> ViewRow {
        ViewRow::AlsoBought(AlsoBoughtRow {
            product_id: p,
            rank,
            other_product_id: q,
            order_count: n,
        })
    }

    #[test]
    fn ranks_counts_then_smaller_id_and_follows_retractions() {
        let mut co = CoIndex::default();
        let mut rows = AlsoBoughtRows::new();
        // 1 with 2 twice (in one batch, as two deltas), with 3 and 4 once: 4 loses the tie
        let (refused, changes) = apply_batch(
            &mut co,
            vec![(1, 4, 1), (1, 2, 1), (1, 3, 1), (1, 2, 1)],
            2,
            &mut rows,
        );
        assert_eq!(refused, 0);
        assert_eq!(changes, vec![(ab(1, 1, 2, 2), 1), (ab(1, 2, 3, 1), 1)]);
        // an order with 1 and 2 goes: 2 ties with 3 and 4 at 1, and 2 is the smallest id; 3
        // keeps its row, so only rank 1 changes
        let (_, changes) = apply_batch(&mut co, vec![(1, 2, -1)], 2, &mut rows);
        assert_eq!(changes, vec![(ab(1, 1, 2, 2), -1), (ab(1, 1, 2, 1), 1)]);
        // 2 leaves entirely: 4 moves up from outside
        let (_, changes) = apply_batch(&mut co, vec![(1, 2, -1)], 2, &mut rows);
        assert_eq!(
            changes,
            vec![
                (ab(1, 1, 2, 1), -1),
                (ab(1, 2, 3, 1), -1),
                (ab(1, 1, 3, 1), 1),
                (ab(1, 2, 4, 1), 1)
            ]
        );
        assert_eq!(co.row(1).map(|r| r.len()), Some(2));
        // a retraction of a pair that is not there is refused, and changes nothing else
        let (refused, changes) = apply_batch(&mut co, vec![(5, 6, -1)], 2, &mut rows);
        assert_eq!((refused, changes), (1, vec![]));
        assert!(co.row(5).is_none());
        // everything goes: no row left, no state left
        let (_, changes) = apply_batch(&mut co, vec![(1, 3, -1), (1, 4, -1)], 2, &mut rows);
        assert_eq!(changes.len(), 2);
        assert!(rows.is_empty() && co.rows.is_empty());
    }

    /// Random batches (mostly new pairs, some retractions of popular ones, a few redundant
    /// +1/−1 pairs): after every batch, the rows kept equal the definition's, and applying the
    /// returned changes to the previous rows gives them.
    #[test]
    fn random_batches_match_the_definition() {
        for seed in 0..200 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let k = rng.random_range(0..4usize);
            let mut co = CoIndex::default();
            let mut rows = AlsoBoughtRows::new();
            let mut counts: BTreeMap<(i64, i64), i64> = BTreeMap::new();
            let mut seen: BTreeMap<ViewRow, i64> = BTreeMap::new();
            for _ in 0..30 {
                let mut batch = Vec::new();
                for _ in 0..rng.random_range(0..8) {
                    let p = rng.random_range(0..3i64);
                    let popular = rng.random_bool(0.5);
                    let q = rng.random_range(0..if popular { 3 } else { 12 });
                    let present = counts.get(&(p, q)).copied().unwrap_or(0);
                    let d = if present > 0 && rng.random_bool(0.35) {
                        -1
                    } else {
                        1
                    };
                    *counts.entry((p, q)).or_default() += d;
                    batch.push((p, q, d));
                    if rng.random_bool(0.1) {
                        batch.push((p, q, 1));
                        batch.push((p, q, -1));
                    }
                }
                let (refused, changes) = apply_batch(&mut co, batch, k, &mut rows);
                assert_eq!(refused, 0);
                let retractions = changes.iter().take_while(|(_, d)| *d < 0).count();
                assert!(changes[retractions..].iter().all(|(_, d)| *d == 1));
                for (r, d) in changes {
                    let n = seen.entry(r.clone()).or_default();
                    *n += d;
                    assert!((0..=1).contains(n), "seed {seed}: {r:?} at {n}");
                    if *n == 0 {
                        seen.remove(&r);
                    }
                }
                let want = naive(&counts, k);
                let kept: Vec<ViewRow> = rows.iter().map(|(k, v)| also_bought_row(k, v)).collect();
                assert_eq!(kept, want, "seed {seed}");
                assert_eq!(seen.keys().cloned().collect::<Vec<_>>(), want);
            }
        }
    }
}
