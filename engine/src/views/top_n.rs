//! `top_n_by_sums`: per group, ids ranked by scores derived from sums kept per (group, id),
//! by an operator of its own instead of differential's `count_total` + `reduce`.
//!
//! Why not `reduce`: a reduce re-reads a key's whole input on every change of it, and the
//! groups of the ranked views are large and busy (every product of a window, in every
//! category scope). Bucketing the groups into two levels
//! of reduces bounded that, but under load every bucket is touched at every time; the reduces
//! were the largest cost of the engine (perf: ~20% of all CPU at 1M orders) and, with the
//! count before them, held three arranged copies of every (group, id). Here each group is a
//! sorted vector of ids and their sums plus the current leaders of each ranking: one entry
//! per id, and a time's changes to a group cost O(changes × (n + log size)), plus one pass over
//! the group when ids arrive or leave. A group is
//! re-read only when a leader's score goes down or it leaves (an outsider may now rank before
//! it): for counts and sales that is a cancelled or deleted order, which is rare.
//!
//! Semantics, identical to `count_total` + filter + ranking reduce: an id whose sums are all
//! zero is absent; each ranking holds the ids with a score, by higher score then smaller id,
//! numbered 1..=n. The output changes only where a rank's row changed (consolidated per time,
//! like a reduce's output).
//!
//! Time and exchange are [`super::per_group`]'s: a time's changes are applied when the input
//! frontier passes it, in time order, netted per id first, so the output at time t is exactly
//! the ranking of the input accumulated through t (the engine's times are totally ordered).
//! Groups are exchanged by hash, so each worker ranks its share of groups, as a reduce would.
//!
//! State is compacted as it goes (an id at zero is removed, an empty group with it). It owns
//! no other state and must not know what the groups mean.

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

/// Per group, ids ranked `R` ways by scores derived from `M` sums: an update `(group, (id,
/// values))` with multiplicity d adds d × values to the id's sums; an id whose sums are all
/// zero is not there (as with `count_total`). For each ranking r, the first `n` ids with a
/// score r, by higher score then smaller id: `(group, (r, rank, id, sums))`. The same as
/// `count_total`, a filter and one ranking reduce per ranking over `(Reverse(score r), id, sums)`,
/// without their state: top_products sums quantity and revenue and ranks by each, trending
/// ranks by quantity minus the previous window's quantity. With `retiring`, a group whose
/// window retention retires retracts its rows and is forgotten (see [`super::per_group`]).
pub fn top_n_by_sums<'s, K, const M: usize, const R: usize>(
    items: Coll<'s, (K, (i64, [isize; M]))>,
    n: usize,
    scores: Scores<M, R>,
    retiring: Option<Retiring<'s, K>>,
) -> Coll<'s, (K, SumPlace<M>)>
where
    K: ExchangeData + Hash + Eq,
    [isize; M]: ExchangeData,
{
    let mut groups: HashMap<K, Summed<M, R>> = HashMap::default();
    // scratch, reused across groups and times: the net change per id, the changed ids' sums
    // before it, and the leaders before it
    let mut deltas: Vec<(i64, [isize; M])> = Vec::new();
    let mut olds: Vec<(i64, Option<[isize; M]>)> = Vec::new();
    let mut before: [Vec<(Reverse<isize>, i64)>; R] = std::array::from_fn(|_| Vec::new());
    let mut fresh: Vec<(i64, [isize; M])> = Vec::new();
    let mut by_id: HashMap<i64, [isize; M]> = HashMap::default();
    per_group_with("TopNBySums", items, retiring, move |group, call, emit| {
        let changes = match call {
            Call::Changes(changes) => changes,
            Call::Retire => {
                if let Some(summed) = groups.remove(group) {
                    for (ranking, leaders) in summed.leaders.iter().enumerate() {
                        for (rank, &(_, id)) in (1u32..).zip(leaders) {
                            emit((ranking, rank, id, summed.sum(id)), -1);
                        }
                    }
                }
                return;
            }
        };
        net_changes(changes, &mut deltas, &mut by_id);
        if deltas.is_empty() {
            return;
        }
        let summed = match groups.get_mut(group) {
            Some(s) => s,
            None => groups.entry(group.clone()).or_insert_with(Summed::new),
        };
        for (b, l) in before.iter_mut().zip(&summed.leaders) {
            b.clear();
            b.extend_from_slice(l);
        }
        summed.apply(&deltas, n, scores, &mut fresh, &mut olds);
        // A row shows every sum of its id, so a rank's row changes when its occupant changes
        // or the occupant's sums do; only the ids in `deltas` have other sums than before.
        let sums_before = |id: i64| match olds.binary_search_by_key(&id, |&(i, _)| i) {
            Ok(i) => olds[i].1.unwrap_or([0; M]),
            Err(_) => summed.sum(id),
        };
        let changed = |id: i64| olds.binary_search_by_key(&id, |&(i, _)| i).is_ok();
        for (ranking, (before, after)) in before.iter().zip(&summed.leaders).enumerate() {
            for (rank, i) in (1u32..).zip(0..before.len().max(after.len())) {
                let (old, new) = (before.get(i).map(|l| l.1), after.get(i).map(|l| l.1));
                if old == new && old.is_none_or(|id| !changed(id)) {
                    continue;
                }
                let old = old.map(|id| (id, sums_before(id)));
                let new = new.map(|id| (id, summed.sum(id)));
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
        if summed.sums.is_empty() {
            groups.remove(group);
        }
    })
}

/// The net change of each id's sums over one group's changes of one time (d × values summed
/// per id), ascending by id, ids whose net change is zero left out. The changes arrive
/// unconsolidated: several sales of one product in one batch become one change here.
fn net_changes<const M: usize>(
    changes: &mut [((i64, [isize; M]), isize)],
    out: &mut Vec<(i64, [isize; M])>,
    by_id: &mut HashMap<i64, [isize; M]>,
) {
    if changes.len() > NET_BY_HASH {
        net_changes_by_hash(changes, out, by_id);
    } else {
        net_changes_by_sort(changes, out);
    }
}

/// [`net_changes`] by sorting every change by id (few changes).
fn net_changes_by_sort<const M: usize>(
    changes: &mut [((i64, [isize; M]), isize)],
    out: &mut Vec<(i64, [isize; M])>,
) {
    out.clear();
    changes.sort_unstable_by_key(|((id, _), _)| *id);
    for &((id, values), d) in changes.iter() {
        let net = match out.last_mut() {
            Some((last, net)) if *last == id => net,
            _ => {
                out.push((id, [0; M]));
                &mut out.last_mut().expect("just pushed").1
            }
        };
        for (s, v) in net.iter_mut().zip(values) {
            *s += v * d;
        }
    }
    out.retain(|(_, net)| *net != [0; M]);
}

/// Above this many changes, [`net_changes`] sums per id in a hash map and sorts only the
/// distinct ids: a busy group (every product's sales in the global scope of `all`) gets many
/// changes of few ids per time, and sorting them all was ~15% of the dataflow's instructions.
const NET_BY_HASH: usize = 64;

/// [`net_changes`] by summing per id first (`by_id` is scratch).
fn net_changes_by_hash<const M: usize>(
    changes: &[((i64, [isize; M]), isize)],
    out: &mut Vec<(i64, [isize; M])>,
    by_id: &mut HashMap<i64, [isize; M]>,
) {
    by_id.clear();
    for &((id, values), d) in changes {
        let net = by_id.entry(id).or_insert([0; M]);
        for (s, v) in net.iter_mut().zip(values) {
            *s += v * d;
        }
    }
    out.clear();
    out.extend(by_id.drain().filter(|(_, net)| *net != [0; M]));
    out.sort_unstable_by_key(|&(id, _)| id);
}

/// One group of [`top_n_by_sums`].
struct Summed<const M: usize, const R: usize> {
    /// `(id, its sums)` ascending by id, never all zero (such ids are removed). A sorted
    /// vector, not a hash map: there is a group per window and scope for the life of the
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

    /// Summing per id by hash (busy groups) nets exactly as sorting all changes does.
    #[test]
    fn net_changes_by_hash_equals_by_sort() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut by_id = HashMap::default();
        for _ in 0..300 {
            let len = rng.random_range(0..300);
            let mut changes: Vec<((i64, [isize; 2]), isize)> = (0..len)
                .map(|_| {
                    let id = rng.random_range(-5..40i64);
                    let v = [
                        rng.random_range(-3..4i64) as isize,
                        rng.random_range(0..3i64) as isize,
                    ];
                    let d = if rng.random_bool(0.7) { 1 } else { -1 };
                    ((id, v), d)
                })
                .collect();
            let (mut by_hash, mut by_sort) = (Vec::new(), Vec::new());
            net_changes_by_hash(&changes, &mut by_hash, &mut by_id);
            net_changes_by_sort(&mut changes, &mut by_sort);
            assert_eq!(by_hash, by_sort);
            let mut via = Vec::new();
            net_changes(&mut changes, &mut via, &mut by_id);
            assert_eq!(via, by_sort);
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
                    ids.clone().map(|(g, id)| (g, (id, [1]))),
                    n,
                    |s| [Some(s[0])],
                    None,
                )
                .map(|(g, (_, rank, id, [c]))| (g, (rank, id, c)));
                // count_total's output (the old count retracted, the new added) as the sums'
                // input, as top_products reads slot_sales
                let ranked = top_n_by_sums(
                    ids.count_total().map(|((g, id), c)| (g, (id, [c]))),
                    n,
                    |s| [Some(s[0])],
                    None,
                )
                .map(|(g, (_, rank, id, [c]))| (g, (rank, id, c)));
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
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};
    use timely::dataflow::operators::Inspect;

    type Row = (u8, usize, u32, i64, [isize; 2]);
    /// (group, (id, [quantity, revenue]))
    type Item = (u8, (i64, [isize; 2]));

    /// Quantities and prices as top_products sees them: a leader's revenue can change while
    /// its quantity (and so its quantity rank) does not, and the row must still follow.
    #[test]
    fn both_rankings_show_current_sums_with_1_and_2_workers() {
        for seed in 0..20u64 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let times: Vec<Vec<(Item, isize)>> = (0..30)
                .map(|_| {
                    (0..rng.random_range(0..8))
                        .map(|_| {
                            let group = rng.random_range(0..2u8);
                            let id = rng.random_range(0..6i64);
                            let qty = rng.random_range(0..3i64) as isize;
                            let price = rng.random_range(0..4i64) as isize;
                            let d = if rng.random_bool(0.75) { 1 } else { -1 };
                            ((group, (id, [qty, qty * price])), d)
                        })
                        .collect()
                })
                .collect();
            let n = 1 + seed as usize % 3;
            // naive: sums through each time, each metric's first n of the non-zero ids
            let mut sums: BTreeMap<(u8, i64), [isize; 2]> = BTreeMap::new();
            let want: Vec<BTreeMap<Row, isize>> = times
                .iter()
                .map(|time| {
                    for &((g, (id, [a, b])), d) in time {
                        let s = sums.entry((g, id)).or_default();
                        s[0] += a * d;
                        s[1] += b * d;
                    }
                    sums.retain(|_, s| *s != [0, 0]);
                    let mut rows = BTreeMap::new();
                    for g in 0..2u8 {
                        for m in 0..2 {
                            let mut ranked: Vec<(Reverse<isize>, i64, [isize; 2])> = sums
                                .iter()
                                .filter(|((gg, _), _)| *gg == g)
                                .map(|(&(_, id), &s)| (Reverse(s[m]), id, s))
                                .collect();
                            ranked.sort();
                            for (rank, (_, id, s)) in (1u32..).zip(ranked.into_iter().take(n)) {
                                rows.insert((g, m, rank, id, s), 1);
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
                            .inspect(move |((g, (m, rank, id, s)), t, d)| {
                                sink.lock()
                                    .unwrap()
                                    .push(((*g, *m, *rank, *id, *s), *t, *d))
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
