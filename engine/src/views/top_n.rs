//! `top_n_by_sums`: per group, ids ranked by scores derived from sums kept per (group, id),
//! by an operator of its own instead of differential's `count_total` + `reduce`; a group may
//! hold subgroups (top_products: a slot and its categories), each ranked on its own.
//!
//! Why not `reduce`: a reduce re-reads a key's whole input on every change of it, and the
//! groups of the ranked views are large and busy (every product of a window, in every
//! category scope). Bucketing the groups into two levels
//! of reduces bounded that, but under load every bucket is touched at every time; the reduces
//! were the largest cost of the engine (perf: ~20% of all CPU at 1M orders) and, with the
//! count before them, held three arranged copies of every (group, id). Here each ranking is a
//! sorted vector of ids and their sums plus the current leaders of each ranking: one entry
//! per id, and a time's changes to a ranking cost O(changes × (n + log size)), plus one pass
//! over it when ids arrive or leave. A ranking is
//! re-read only when a leader's score goes down or it leaves (an outsider may now rank before
//! it): for counts and sales that is a cancelled or deleted order, which is rare.
//!
//! Why subgroups inside a group, and not groups of their own: top_products ranks a product's
//! sales in their slot and in the slot's category. As two groups, every sale was two records
//! through a `flat_map`, the exchange and the holding (timely's per-record machinery was about
//! half of the dataflow's instructions); as one group with subgroups it is one record, and
//! every subgroup of a slot lives on the worker of the slot.
//!
//! Semantics, identical to `count_total` + filter + ranking reduce per (group, subgroup): an
//! id whose sums are all zero is absent; each ranking holds the ids with a score, by higher
//! score then smaller id, numbered 1..=n. The output changes only where a rank's row changed
//! (consolidated per time, like a reduce's output).
//!
//! Time and exchange are [`super::per_group`]'s: a time's changes are applied when the input
//! frontier passes it, in time order, netted per (subgroup, id) first, so the output at time t
//! is exactly the ranking of the input accumulated through t (the engine's times are totally
//! ordered). Groups are exchanged by hash, so each worker ranks its share of groups, as a
//! reduce would.
//!
//! State is compacted as it goes (an id at zero is removed, an empty ranking with it, an empty
//! group with them). It owns no other state and must not know what the groups mean.

use super::per_group::{per_group_with, Call, Retiring};
use super::Coll;
use differential_dataflow::ExchangeData;
use foldhash::HashMap;
use std::cmp::Reverse;
use std::hash::Hash;

/// An id's place in one of [`top_n_by_sums`]' rankings: `(ranking, rank, id, sums)`, ranking
/// the index of the score it ranks by, rank from 1.
pub type SumPlace<const M: usize> = (usize, u32, i64, [isize; M]);

/// The scores an id ranks by in each of `R` rankings, from its `M` sums; `None` leaves it out
/// of that ranking.
pub type Scores<const M: usize, const R: usize> = fn(&[isize; M]) -> [Option<isize>; R];

/// What an update adds to a group: `(id, subgroup, values)`. The id counts in the group's own
/// ranking (subgroup `None`) and, with `Some(s)`, in subgroup s's ranking too.
pub type SumItem<const M: usize> = (i64, Option<i64>, [isize; M]);

/// Per group and subgroup, ids ranked `R` ways by scores derived from `M` sums: an update
/// `(group, (id, sub, values))` with multiplicity d adds d × values to the id's sums in the
/// group's own ranking and, when `sub` is `Some(s)`, in the group's subgroup s; an id whose
/// sums are all zero is not there (as with `count_total`). For each ranking r, the first `n`
/// ids with a score r, by higher score then smaller id: `(group, (sub, (r, rank, id, sums)))`
/// (`sub` is `None` for the group's own ranking). The same as `count_total`, a filter and one
/// ranking reduce per ranking over `(Reverse(score r), id, sums)` per (group, subgroup),
/// without their state: top_products sums quantity and revenue per slot and category and ranks
/// by each, trending ranks by quantity minus the previous window's quantity. With `retiring`,
/// a group whose window retention retires retracts its rows (all its subgroups') and is
/// forgotten (see [`super::per_group`]).
pub fn top_n_by_sums<'s, K, const M: usize, const R: usize>(
    items: Coll<'s, (K, SumItem<M>)>,
    n: usize,
    scores: Scores<M, R>,
    retiring: Option<Retiring<'s, K>>,
) -> Coll<'s, (K, (Option<i64>, SumPlace<M>))>
where
    K: ExchangeData + Hash + Eq,
    [isize; M]: ExchangeData,
{
    // per group, its own ranking (`None`) and its subgroups'
    let mut groups: HashMap<K, HashMap<Option<i64>, Summed<M, R>>> = HashMap::default();
    let mut netted = Netted::<M>::default();
    let mut scratch = Scratch::default();
    per_group_with("TopNBySums", items, retiring, move |group, call, emit| {
        let changes = match call {
            Call::Changes(changes) => changes,
            Call::Upcoming | Call::Soon => return,
            Call::Retire => {
                for (sub, summed) in groups.remove(group).into_iter().flatten() {
                    for (ranking, leaders) in summed.leaders.iter().enumerate() {
                        for (rank, &(_, id)) in (1u32..).zip(leaders) {
                            emit((sub, (ranking, rank, id, summed.sum(id))), -1);
                        }
                    }
                }
                return;
            }
        };
        netted.net(changes);
        if netted.deltas.is_empty() {
            return;
        }
        let subs = match groups.get_mut(group) {
            Some(s) => s,
            None => groups.entry(group.clone()).or_default(),
        };
        let mut start = 0;
        for &(sub, end) in &netted.runs {
            let summed = subs.entry(sub).or_insert_with(Summed::new);
            let deltas = &netted.deltas[start..end];
            start = end;
            summed.update(deltas, n, scores, &mut scratch, &mut |place, d| {
                emit((sub, place), d)
            });
            if summed.sums.is_empty() {
                subs.remove(&sub);
            }
        }
        if subs.is_empty() {
            groups.remove(group);
        }
    })
}

/// Scratch of [`Summed::update`], reused across groups and times: the leaders before, the
/// changed ids' sums before, and the ids new to a ranking.
struct Scratch<const M: usize, const R: usize> {
    before: [Vec<(Reverse<isize>, i64)>; R],
    olds: Vec<(i64, Option<[isize; M]>)>,
    fresh: Vec<(i64, [isize; M])>,
}

impl<const M: usize, const R: usize> Default for Scratch<M, R> {
    fn default() -> Self {
        Scratch {
            before: std::array::from_fn(|_| Vec::new()),
            olds: Vec::new(),
            fresh: Vec::new(),
        }
    }
}

/// One group's changes of one time, netted per (subgroup, id): the net change of each id's
/// sums (d × values summed), ids whose net change is zero left out. The changes arrive
/// unconsolidated: several sales of one product in one batch become one change here.
#[derive(Default)]
struct Netted<const M: usize> {
    /// `(id, net change)`: the group's own ranking's ascending by id, then each subgroup's,
    /// ascending by (subgroup, id).
    deltas: Vec<(i64, [isize; M])>,
    /// `(subgroup, end)`: each ranking's deltas are `deltas[previous end..end]`, in the order
    /// of `deltas`; rankings without a net change have none.
    runs: Vec<(Option<i64>, usize)>,
    /// Scratch: the group's own nets, and the subgroups' keyed by [`Key`].
    own: Keyed<i64, M>,
    subs: Keyed<Key, M>,
}

/// Above this many changes, nets are summed per key in a hash map and only the distinct keys
/// sorted: a busy group (every product's sales in the slot `all`) gets many changes of few
/// ids per time, and sorting them all was ~15% of the dataflow's instructions.
const NET_BY_HASH: usize = 64;

impl<const M: usize> Netted<M> {
    fn net(&mut self, changes: &[(SumItem<M>, isize)]) {
        let busy = changes.len() > NET_BY_HASH;
        let scaled =
            |&((id, sub, values), d): &(SumItem<M>, isize)| (id, sub, values.map(|v| v * d));
        self.own
            .net(changes.iter().map(scaled).map(|(id, _, v)| (id, v)), busy);
        self.subs.net(
            changes
                .iter()
                .map(scaled)
                .filter_map(|(id, sub, v)| Some((Key::new(sub?, id), v))),
            busy,
        );
        self.deltas.clear();
        self.runs.clear();
        self.deltas.extend_from_slice(&self.own.nets);
        if !self.deltas.is_empty() {
            self.runs.push((None, self.deltas.len()));
        }
        for run in self.subs.nets.chunk_by(|a, b| a.0.sub() == b.0.sub()) {
            self.deltas
                .extend(run.iter().map(|&(key, net)| (key.id(), net)));
            self.runs.push((Some(run[0].0.sub()), self.deltas.len()));
        }
    }
}

/// Nets summed per key `K`, ascending by key, zero nets left out; reused.
struct Keyed<K, const M: usize> {
    nets: Vec<(K, [isize; M])>,
    by_hash: HashMap<K, [isize; M]>,
    /// A busy time's changes, then the radix sort's second buffer.
    spare: Vec<(K, [isize; M])>,
    /// Per key in the changes' span, its net (see [`Keyed::net`]).
    dense: Vec<[isize; M]>,
}

/// A busy time's changes are summed in an array with a slot per key of their span when the
/// span is at most this many slots per change plus [`DENSE_EXTRA`] (and [`DENSE_MAX`]): a slot's
/// busy groups get a change for most products of the shop per time, and product ids are
/// dense, so the array is read in key order instead of sorting a hash map's keys.
const DENSE_PER_CHANGE: usize = 4;
const DENSE_EXTRA: usize = 1024;
const DENSE_MAX: usize = 1 << 20;
/// Slots of the array kept between times: a rare wide span's room (up to [`DENSE_MAX`] slots,
/// 16 MB with two sums) is given back rather than held for good.
const DENSE_KEEP: usize = 1 << 16;

impl<K, const M: usize> Default for Keyed<K, M> {
    fn default() -> Self {
        Keyed {
            nets: Vec::new(),
            by_hash: HashMap::default(),
            spare: Vec::new(),
            dense: Vec::new(),
        }
    }
}

impl<K: RadixKey + Ord + Hash, const M: usize> Keyed<K, M> {
    /// Sums `changes` per key: when `busy`, in an array over the keys' span if it is narrow
    /// (product ids), else in a hash map whose distinct keys are then sorted; with few
    /// changes, by sorting every change.
    fn net(&mut self, changes: impl Iterator<Item = (K, [isize; M])>, busy: bool) {
        let nets = &mut self.nets;
        nets.clear();
        if busy {
            let spare = &mut self.spare;
            spare.clear();
            spare.extend(changes);
            if spare.is_empty() {
                return;
            }
            let (lo, hi) = spare.iter().fold((u128::MAX, 0), |(lo, hi), (k, _)| {
                let r = k.radix();
                (lo.min(r), hi.max(r))
            });
            // how many slots past the lowest key the keys reach
            let span = hi - lo;
            if span < (DENSE_PER_CHANGE * spare.len() + DENSE_EXTRA).min(DENSE_MAX) as u128 {
                let dense = &mut self.dense;
                dense.clear();
                dense.resize(span as usize + 1, [0; M]);
                for &(key, values) in spare.iter() {
                    let net = &mut dense[(key.radix() - lo) as usize];
                    for (s, v) in net.iter_mut().zip(values) {
                        *s += v;
                    }
                }
                nets.extend(
                    (0u128..)
                        .zip(dense.iter())
                        .filter(|(_, net)| **net != [0; M])
                        .map(|(at, &net)| (K::from_radix(lo + at), net)),
                );
                if dense.capacity() > DENSE_KEEP {
                    dense.clear();
                    dense.shrink_to(DENSE_KEEP);
                }
                return;
            }
            let by_hash = &mut self.by_hash;
            by_hash.clear();
            for (key, values) in spare.drain(..) {
                let net = by_hash.entry(key).or_insert([0; M]);
                for (s, v) in net.iter_mut().zip(values) {
                    *s += v;
                }
            }
            nets.extend(by_hash.drain().filter(|(_, net)| *net != [0; M]));
            radix_sort(nets, &mut self.spare);
            return;
        }
        nets.extend(changes);
        radix_sort(nets, &mut self.spare);
        // `dedup_by` hands the later of two neighbours first: its net joins the kept one
        nets.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                for (s, v) in kept.1.iter_mut().zip(later.1) {
                    *s += v;
                }
            }
            same
        });
        nets.retain(|(_, net)| *net != [0; M]);
    }
}

/// A key that orders as an unsigned integer does, for [`radix_sort`], and back.
trait RadixKey: Copy {
    fn radix(self) -> u128;
    fn from_radix(r: u128) -> Self;
}

impl RadixKey for i64 {
    fn radix(self) -> u128 {
        view_store::ordered(self).into()
    }

    fn from_radix(r: u128) -> Self {
        (r as u64 ^ Key::FLIP) as i64
    }
}

impl RadixKey for Key {
    fn radix(self) -> u128 {
        self.0
    }

    fn from_radix(r: u128) -> Self {
        Key(r)
    }
}

/// Sorts by key ([`view_store::radix_sort_by`]): comparison sorts of a busy slot's nets were
/// ~10% of the dataflow's instructions (callgrind).
fn radix_sort<K: RadixKey, V: Copy>(v: &mut Vec<(K, V)>, spare: &mut Vec<(K, V)>) {
    view_store::radix_sort_by(v, spare, |e| e.0.radix());
}

/// `(subgroup, id)` packed into one integer that orders as the pair does: a slot's changes in
/// its categories are sorted by it, and comparing `(Option<i64>, i64)` tuples made that sort
/// twice as slow (callgrind).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Key(u128);

impl Key {
    /// The sign bit [`view_store::ordered`] flips; flipped back to decode.
    const FLIP: u64 = 1 << 63;

    fn new(sub: i64, id: i64) -> Key {
        Key(view_store::ordered_pair(sub, id))
    }

    fn sub(self) -> i64 {
        ((self.0 >> 64) as u64 ^ Self::FLIP) as i64
    }

    fn id(self) -> i64 {
        (self.0 as u64 ^ Self::FLIP) as i64
    }
}

/// One ranking of [`top_n_by_sums`]: a group's own, or one of its subgroups'.
struct Summed<const M: usize, const R: usize> {
    /// `(id, its sums)` ascending by id, never all zero (such ids are removed). A sorted
    /// vector, not a hash map: there is a ranking per window and scope for the life of the
    /// window, and at hashbrown's load factor an entry cost ~38 B instead of 24 (69 MB of
    /// top_products' and 25 MB of trending's state at 1M orders of the e2e bench). A time's
    /// new ids are merged in one pass (see [`Summed::apply`]), so a busy group costs O(its
    /// size) per time, not per new id.
    sums: Vec<(i64, [isize; M])>,
    /// Per ranking, the first n ids with a score, in rank order, with their score. Invariant:
    /// every other id with a score ranks after all of them, and there is none while fewer
    /// than n.
    leaders: [Vec<(Reverse<isize>, i64)>; R],
}

impl<const M: usize, const R: usize> Summed<M, R> {
    fn new() -> Self {
        Summed {
            sums: Vec::new(),
            leaders: std::array::from_fn(|_| Vec::new()),
        }
    }

    fn get(&self, id: i64) -> Option<[isize; M]> {
        let i = self.sums.binary_search_by_key(&id, |e| e.0).ok()?;
        Some(self.sums[i].1)
    }

    /// The sums of `id` (all zero when absent).
    fn sum(&self, id: i64) -> [isize; M] {
        self.get(id).unwrap_or([0; M])
    }

    /// Applies one time's net changes (one per id, ascending by id) and emits what changed in
    /// the rankings: `(ranking, rank, id, sums)` retracted where a rank's row was, added where
    /// it is now.
    fn update(
        &mut self,
        deltas: &[(i64, [isize; M])],
        n: usize,
        scores: Scores<M, R>,
        scratch: &mut Scratch<M, R>,
        emit: &mut dyn FnMut(SumPlace<M>, isize),
    ) {
        for (b, l) in scratch.before.iter_mut().zip(&self.leaders) {
            b.clear();
            b.extend_from_slice(l);
        }
        self.apply(deltas, n, scores, &mut scratch.fresh, &mut scratch.olds);
        let olds = &scratch.olds;
        // A row shows every sum of its id, so a rank's row changes when its occupant changes
        // or the occupant's sums do; only the ids in `deltas` have other sums than before.
        let sums_before = |id: i64| match olds.binary_search_by_key(&id, |&(i, _)| i) {
            Ok(i) => olds[i].1.unwrap_or([0; M]),
            Err(_) => self.sum(id),
        };
        let changed = |id: i64| olds.binary_search_by_key(&id, |&(i, _)| i).is_ok();
        for (ranking, (before, after)) in scratch.before.iter().zip(&self.leaders).enumerate() {
            for (rank, i) in (1u32..).zip(0..before.len().max(after.len())) {
                let (old, new) = (before.get(i).map(|l| l.1), after.get(i).map(|l| l.1));
                if old == new && old.is_none_or(|id| !changed(id)) {
                    continue;
                }
                let old = old.map(|id| (id, sums_before(id)));
                let new = new.map(|id| (id, self.sum(id)));
                if old == new {
                    continue;
                }
                if let Some((id, sums)) = old {
                    emit((ranking, rank, id, sums), -1);
                }
                if let Some((id, sums)) = new {
                    emit((ranking, rank, id, sums), 1);
                }
            }
        }
    }

    /// Applies one time's net changes of this group (one per id, ascending by id) and restores
    /// the invariant. Sets `olds` to each changed id's sums before (same order as `deltas`).
    /// `fresh` is scratch.
    fn apply(
        &mut self,
        deltas: &[(i64, [isize; M])],
        n: usize,
        scores: Scores<M, R>,
        fresh: &mut Vec<(i64, [isize; M])>,
        olds: &mut Vec<(i64, Option<[isize; M]>)>,
    ) {
        olds.clear();
        // per ranking, set once a leader's score goes down or it leaves: an outsider may now
        // rank before it, and only a full read of the sums can tell which (rare for counts
        // and sales: a cancelled or deleted order)
        let mut reread = [false; R];
        // ids that reach zero stay as zero entries until the end, and new ids wait in `fresh`
        // (ascending, as the deltas are): positions found stay valid
        let mut zeroed = false;
        fresh.clear();
        // the deltas ascend: each search starts where the previous one ended
        let mut lo = 0;
        for &(id, delta) in deltas {
            let at = view_store::gallop(&self.sums, lo, id);
            lo = match at {
                Ok(i) => i + 1,
                Err(i) => i,
            };
            let old = at.ok().map(|i| self.sums[i].1);
            olds.push((id, old));
            let mut new = old.unwrap_or([0; M]);
            for (s, v) in new.iter_mut().zip(delta) {
                *s += v;
            }
            let present = new != [0; M];
            match at {
                Ok(i) => {
                    self.sums[i].1 = new;
                    zeroed |= !present;
                }
                Err(_) if present => fresh.push((id, new)),
                Err(_) => {}
            }
            let old_scores = old.map_or([None; R], |o| scores(&o));
            let new_scores = if present { scores(&new) } else { [None; R] };
            for r in 0..R {
                if reread[r] {
                    continue;
                }
                // the leaders stay sorted and at most n, moved in place rather than re-sorted
                // per change (a sort per change and ranking was ~5% of the dataflow)
                let leaders = &mut self.leaders[r];
                match (leaders.iter().position(|&(_, l)| l == id), new_scores[r]) {
                    // a leader that grew still beats every outsider: it can only move up
                    (Some(i), Some(score)) if old_scores[r].is_some_and(|o| score >= o) => {
                        leaders[i].0 = Reverse(score);
                        view_store::leaders::raise(leaders, i);
                    }
                    (Some(_), _) => reread[r] = true,
                    // an outsider that grew or arrived enters if it beats the n-th (the n+1-th
                    // drops out, and every other outsider ranked after it)
                    (None, Some(score)) => {
                        view_store::leaders::offer(leaders, (Reverse(score), id), n)
                    }
                    (None, None) => {}
                }
            }
        }
        if zeroed {
            self.sums.retain(|(_, s)| *s != [0; M]);
        }
        view_store::merge_sorted(&mut self.sums, fresh);
        for r in (0..R).filter(|&r| reread[r]) {
            let mut all: Vec<(Reverse<isize>, i64)> = self
                .sums
                .iter()
                .filter_map(|(id, s)| scores(s)[r].map(|score| (Reverse(score), *id)))
                .collect();
            if all.len() > n && n > 0 {
                all.select_nth_unstable(n - 1);
            }
            all.truncate(n);
            // `all` was sized for the whole group: kept as it is, every re-read group would
            // hold a vector as large as its sums (measured: 12.5 MB of top_products' state at
            // 300k orders)
            all.shrink_to_fit();
            all.sort_unstable();
            self.leaders[r] = all;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::Time;
    use differential_dataflow::input::Input;
    use differential_dataflow::operators::CountTotal;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::{Arc, Mutex};
    use timely::dataflow::operators::Inspect;

    /// The radix sort sorts as a stable comparison sort does (below its threshold, as any
    /// sort: the same entries, keys ascending), for keys that differ in few or many bytes.
    #[test]
    fn radix_sort_equals_a_stable_sort() {
        fn check<K: RadixKey + Ord + std::fmt::Debug>(mut v: Vec<(K, usize)>) {
            let mut want = v.clone();
            want.sort_by_key(|e| e.0);
            radix_sort(&mut v, &mut Vec::new());
            if v.len() < view_store::RADIX_SMALL {
                assert!(v.windows(2).all(|w| w[0].0 <= w[1].0));
                v.sort();
                want.sort();
            }
            assert_eq!(v, want);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for round in 0..400 {
            let len = rng.random_range(0..400);
            let span: i64 = [4, 300, 70_000, i64::MAX][round % 4];
            check(
                (0..len)
                    .map(|i| (rng.random_range(-span..span), i))
                    .collect(),
            );
            check(
                (0..len)
                    .map(|i| {
                        (
                            Key::new(rng.random_range(-3..3), rng.random_range(-span..span)),
                            i,
                        )
                    })
                    .collect(),
            );
        }
    }

    /// Keys order as (subgroup, id) pairs do and give both back, at the extremes too.
    #[test]
    fn keys_order_and_round_trip_as_pairs() {
        let edge = [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX];
        let pairs: Vec<(i64, i64)> = edge
            .iter()
            .flat_map(|&s| edge.iter().map(move |&id| (s, id)))
            .collect();
        for &a in &pairs {
            let ka = Key::new(a.0, a.1);
            assert_eq!((ka.sub(), ka.id()), a);
            for &b in &pairs {
                assert_eq!(ka.cmp(&Key::new(b.0, b.1)), a.cmp(&b), "{a:?} vs {b:?}");
            }
        }
    }

    /// Netting per (subgroup, id), by hash (busy groups) and by sort (few changes), equals a
    /// plain per-key sum; the runs split the deltas by ranking, the group's own first.
    #[test]
    fn netting_by_hash_and_by_sort_equal_a_plain_sum() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for round in 0..300 {
            let len = rng.random_range(0..300);
            // narrow ids (summed in an array when busy), spread ones (in a hash map), and ids
            // at the ends of i64
            let (scale, shift) = match round % 3 {
                0 => (1, 0),
                1 => (1_000_003, 0),
                _ => (
                    1,
                    if round % 2 == 0 {
                        i64::MAX - 50
                    } else {
                        i64::MIN + 10
                    },
                ),
            };
            let changes: Vec<(SumItem<2>, isize)> = (0..len)
                .map(|_| {
                    let id = rng.random_range(-5..40i64) * scale + shift;
                    let sub = rng.random_bool(0.6).then(|| rng.random_range(-2..4i64));
                    let v = [
                        rng.random_range(-3..4i64) as isize,
                        rng.random_range(0..3i64) as isize,
                    ];
                    let d = if rng.random_bool(0.7) { 1 } else { -1 };
                    ((id, sub, v), d)
                })
                .collect();
            let mut want: BTreeMap<(Option<i64>, i64), [isize; 2]> = BTreeMap::new();
            for &((id, sub, v), d) in &changes {
                for key in std::iter::once((None, id)).chain(sub.map(|s| (Some(s), id))) {
                    let net = want.entry(key).or_default();
                    net[0] += v[0] * d;
                    net[1] += v[1] * d;
                }
            }
            want.retain(|_, net| *net != [0, 0]);
            let want: Vec<_> = want.into_iter().collect();
            for busy in [false, true] {
                let mut own: Keyed<i64, 2> = Keyed::default();
                own.net(
                    changes
                        .iter()
                        .map(|&((id, _, v), d)| (id, v.map(|x| x * d))),
                    busy,
                );
                let mut subs: Keyed<Key, 2> = Keyed::default();
                subs.net(
                    changes.iter().filter_map(|&((id, sub, v), d)| {
                        Some((Key::new(sub?, id), v.map(|x| x * d)))
                    }),
                    busy,
                );
                let got: Vec<_> = (own.nets.iter().map(|&(id, net)| ((None, id), net)))
                    .chain(
                        subs.nets
                            .iter()
                            .map(|&(k, net)| ((Some(k.sub()), k.id()), net)),
                    )
                    .collect();
                assert_eq!(got, want, "busy {busy}");
            }
            let mut via = Netted::default();
            via.net(&changes);
            let mut start = 0;
            let mut flat = Vec::new();
            for &(sub, end) in &via.runs {
                assert!(end > start, "a run is never empty");
                flat.extend(
                    via.deltas[start..end]
                        .iter()
                        .map(|&(id, net)| ((sub, id), net)),
                );
                start = end;
            }
            assert_eq!(start, via.deltas.len());
            assert_eq!(flat, want);
        }
    }

    type Changes = Vec<Vec<((u8, i64), isize)>>;
    type Out = BTreeMap<(u8, u32, i64, isize), isize>;
    /// (operator, row, time, diff)
    type Emitted = (u8, (u8, u32, i64, isize), u64, isize);

    /// Random times of (group, id) changes: mostly increments, some decrements of popular
    /// ids (leaders going down), some retractions past zero (an inconsistent input), a few
    /// times with nothing.
    fn random_times(seed: u64, times: usize) -> Changes {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..times)
            .map(|_| {
                (0..rng.random_range(0..12))
                    .map(|_| {
                        let group = rng.random_range(0..3u8);
                        let popular = rng.random_bool(0.5);
                        let id = rng.random_range(0..if popular { 4 } else { 30 });
                        let diff = if rng.random_bool(0.7) {
                            1
                        } else {
                            -(rng.random_range(1..3i64) as isize)
                        };
                        ((group, id), diff)
                    })
                    .collect()
            })
            .collect()
    }

    /// Both rankings, by the naive definition, of the input accumulated through each time.
    fn naive(changes: &Changes, n: usize) -> Vec<(Out, Out)> {
        let mut counts: BTreeMap<(u8, i64), isize> = BTreeMap::new();
        changes
            .iter()
            .map(|time| {
                for &(key, diff) in time {
                    *counts.entry(key).or_default() += diff;
                }
                let mut by_count = Out::new();
                for group in 0..3u8 {
                    let ranked: BTreeSet<(Reverse<isize>, i64)> = counts
                        .iter()
                        .filter(|((g, _), c)| *g == group && **c != 0)
                        .map(|(&(_, id), &c)| (Reverse(c), id))
                        .collect();
                    for (rank, (Reverse(c), id)) in (1u32..).zip(ranked.into_iter().take(n)) {
                        by_count.insert((group, rank, id, c), 1);
                    }
                }
                (by_count.clone(), by_count)
            })
            .collect()
    }

    /// Runs both operators on `workers` workers and returns, per time, the accumulated
    /// output of each (`top_n_by_sums` fed count_total's output).
    fn run(changes: &Changes, n: usize, workers: usize) -> Vec<(Out, Out)> {
        let outs: Arc<Mutex<Vec<Emitted>>> = Arc::default();
        let feed = changes.clone();
        let sink = outs.clone();
        timely::execute(timely::Config::process(workers), move |worker| {
            let sink = sink.clone();
            let mut input = worker.dataflow::<Time, _, _>(|scope| {
                let (input, ids) = scope.new_collection::<(u8, i64), isize>();
                let counted = top_n_by_sums(
                    ids.clone().map(|(g, id)| (g, (id, None, [1]))),
                    n,
                    |s| [Some(s[0])],
                    None,
                )
                .map(|(g, (_, (_, rank, id, [c])))| (g, (rank, id, c)));
                // count_total's output (the old count retracted, the new added) as the sums'
                // input, as top_products reads slot_sales
                let ranked = top_n_by_sums(
                    ids.count_total().map(|((g, id), c)| (g, (id, None, [c]))),
                    n,
                    |s| [Some(s[0])],
                    None,
                )
                .map(|(g, (_, (_, rank, id, [c])))| (g, (rank, id, c)));
                let s1 = sink.clone();
                counted.inner.inspect(move |((g, (r, id, c)), t, d)| {
                    s1.lock().unwrap().push((0, (*g, *r, *id, *c), *t, *d))
                });
                ranked.inner.inspect(move |((g, (r, id, c)), t, d)| {
                    sink.lock().unwrap().push((1, (*g, *r, *id, *c), *t, *d))
                });
                input
            });
            if worker.index() == 0 {
                for (t, time) in feed.iter().enumerate() {
                    input.advance_to(t as Time);
                    for &(key, diff) in time {
                        input.update(key, diff);
                    }
                }
            }
            input.advance_to(feed.len() as Time);
            input.close();
        })
        .unwrap();
        let outs = outs.lock().unwrap();
        (0..changes.len() as u64)
            .map(|t| {
                let mut acc = (Out::new(), Out::new());
                for (which, row, _, d) in outs.iter().filter(|(_, _, time, _)| *time <= t) {
                    let out = if *which == 0 { &mut acc.0 } else { &mut acc.1 };
                    *out.entry(*row).or_default() += d;
                    out.retain(|_, d| *d != 0);
                }
                acc
            })
            .collect()
    }

    #[test]
    fn rankings_match_naive_on_random_changes_with_1_and_3_workers() {
        for seed in 0..20 {
            let changes = random_times(seed, 40);
            let n = 1 + (seed as usize % 4);
            let want = naive(&changes, n);
            for workers in [1, 3] {
                let got = run(&changes, n, workers);
                for (t, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(
                        g.0, w.0,
                        "top_n_by_sums, seed {seed}, time {t}, {workers} workers"
                    );
                    assert_eq!(
                        g.1, w.1,
                        "top_n_by_sums after count_total, seed {seed}, time {t}, {workers} workers"
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod two_sums {
    use super::*;
    use crate::views::Time;
    use differential_dataflow::input::Input;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::{Arc, Mutex};
    use timely::dataflow::operators::Inspect;

    type Row = (u8, Option<i64>, usize, u32, i64, [isize; 2]);
    /// (group, (id, subgroup, [quantity, revenue]))
    type Item = (u8, SumItem<2>);

    /// Quantities and prices as top_products sees them, in a group and its subgroups (a slot
    /// and its categories; an id may move between subgroups, as a product between
    /// categories): a leader's revenue can change while its quantity (and so its quantity
    /// rank) does not, and the row must still follow.
    #[test]
    fn both_rankings_show_current_sums_in_groups_and_subgroups_with_1_and_2_workers() {
        for seed in 0..20u64 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let times: Vec<Vec<(Item, isize)>> = (0..30)
                .map(|_| {
                    (0..rng.random_range(0..8))
                        .map(|_| {
                            let group = rng.random_range(0..2u8);
                            let id = rng.random_range(0..6i64);
                            let sub = rng.random_bool(0.7).then(|| rng.random_range(0..3i64));
                            let qty = rng.random_range(0..3i64) as isize;
                            let price = rng.random_range(0..4i64) as isize;
                            let d = if rng.random_bool(0.75) { 1 } else { -1 };
                            ((group, (id, sub, [qty, qty * price])), d)
                        })
                        .collect()
                })
                .collect();
            let n = 1 + seed as usize % 3;
            // naive: sums through each time per (group, subgroup, id), each metric's first n
            // of the non-zero ids of each (group, subgroup)
            let mut sums: BTreeMap<(u8, Option<i64>, i64), [isize; 2]> = BTreeMap::new();
            let want: Vec<BTreeMap<Row, isize>> = times
                .iter()
                .map(|time| {
                    for &((g, (id, sub, [a, b])), d) in time {
                        for key in std::iter::once(None).chain(sub.map(Some)) {
                            let s = sums.entry((g, key, id)).or_default();
                            s[0] += a * d;
                            s[1] += b * d;
                        }
                    }
                    sums.retain(|_, s| *s != [0, 0]);
                    let scopes: BTreeSet<(u8, Option<i64>)> =
                        sums.keys().map(|&(g, sub, _)| (g, sub)).collect();
                    let mut rows = BTreeMap::new();
                    for (g, sub) in scopes {
                        for m in 0..2 {
                            let mut ranked: Vec<(Reverse<isize>, i64, [isize; 2])> = sums
                                .iter()
                                .filter(|((gg, ss, _), _)| (*gg, *ss) == (g, sub))
                                .map(|(&(_, _, id), &s)| (Reverse(s[m]), id, s))
                                .collect();
                            ranked.sort();
                            for (rank, (_, id, s)) in (1u32..).zip(ranked.into_iter().take(n)) {
                                rows.insert((g, sub, m, rank, id, s), 1);
                            }
                        }
                    }
                    rows
                })
                .collect();
            for workers in [1, 2] {
                let out: Arc<Mutex<Vec<(Row, u64, isize)>>> = Arc::default();
                let (sink, feed) = (out.clone(), times.clone());
                timely::execute(timely::Config::process(workers), move |worker| {
                    let sink = sink.clone();
                    let mut input = worker.dataflow::<Time, _, _>(|scope| {
                        let (input, items) = scope.new_collection();
                        top_n_by_sums(items, n, |s| [Some(s[0]), Some(s[1])], None)
                            .inner
                            .inspect(move |((g, (sub, (m, rank, id, s))), t, d)| {
                                sink.lock()
                                    .unwrap()
                                    .push(((*g, *sub, *m, *rank, *id, *s), *t, *d))
                            });
                        input
                    });
                    if worker.index() == 0 {
                        for (t, time) in feed.iter().enumerate() {
                            input.advance_to(t as Time);
                            for (item, d) in time {
                                input.update(*item, *d);
                            }
                        }
                    }
                })
                .unwrap();
                let out = out.lock().unwrap();
                for (t, want) in want.iter().enumerate() {
                    let mut got: BTreeMap<Row, isize> = BTreeMap::new();
                    for (row, _, d) in out.iter().filter(|(_, time, _)| *time <= t as u64) {
                        *got.entry(*row).or_default() += d;
                    }
                    got.retain(|_, d| *d != 0);
                    assert_eq!(&got, want, "seed {seed}, time {t}, {workers} workers");
                }
            }
        }
    }
}
