//! `per_group`: the timely operator under the engine's own aggregating operators (the
//! rankings of [`super::top_n`], the sums of [`super::sums`], the per-customer fraud rules):
//! updates exchanged by group and held until their time is complete, then handed over once
//! per group and time. Windowed callers also get their groups retired by retention
//! ([`Retiring`]).
//!
//! Owns only the holding, grouping and retiring; what a group's state is, and what it emits,
//! is the caller's.

use super::{Coll, Time};
use differential_dataflow::{AsCollection, ExchangeData, Hashable};
use foldhash::{HashMap, HashSet};
use sources::Micros;
use std::collections::BTreeMap;
use std::hash::Hash;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::Broadcast;
use timely::dataflow::operators::{Capability, ToStream};
use view_store::Window;

/// What `per` is handed for one group at one time.
pub enum Call<'a, C> {
    /// The group's changes of this time (in no particular order, not consolidated).
    Changes(&'a mut [(C, isize)]),
    /// The group's window fell out of retention: retract everything the group shows and
    /// forget it. No change of the group is handed over after this.
    Retire,
    /// The group's changes are handed over next, after the current group's: a hint to bring
    /// its state into the cache meanwhile (groups are handed over in no order, and a caller
    /// with a large state, one group per customer, missed the cache at each group's first
    /// touch). Nothing is emitted for it.
    Upcoming,
    /// The group comes after the upcoming one: a hint for a first step that needs no load
    /// (prefetching the address of its slot), so that `Upcoming` finds it in the cache.
    Soon,
}

/// Retention of a windowed operator's groups.
///
/// Why in the operator, and not by re-stating orders: retiring a window used to re-state
/// every order in it (retract with the old retention, insert with the new), so an hour
/// window's retirement was one engine time with every order of that hour flowing through every
/// view twice (e2e with 10 min retention: 75k events/s, p99 4.2 s, peak RSS 2.3 GB). Here a
/// retirement costs one call per group of the retired window, whatever its number of orders.
#[derive(Clone)]
pub struct Retiring<'s, K> {
    /// `(window size, visible_from)`, the ingest's `cutoffs` input: windows of that size
    /// starting before `visible_from` are retired. Only ever advances.
    pub cutoffs: Coll<'s, (Window, Micros)>,
    /// The tumbling window a group belongs to; `None` for groups that never retire (`all`).
    pub window_of: fn(&K) -> Option<(Window, Micros)>,
}

/// Exchanges `(group, item)` updates by group, holds them until the input frontiers pass
/// their time, and then, in time order, calls `per(group, Call::Changes(changes), emit)` once
/// per group with that time's changes of the group. What `emit((out, diff))` is given leaves
/// at that time as `((group, out), time, diff)`.
///
/// Retention (with `retiring`): at a time where a cutoff advances, first every group of a
/// window it retires gets `Call::Retire` (once), then that time's changes are handed over;
/// changes of a retired window's groups, at that time or later, are dropped. So the output at
/// t is the caller's output over the changes of the windows retained at t, as if the retired
/// ones had never been.
///
/// A time's updates are bucketed by group in a hash map, not consolidated by a sort: sorting
/// every update of a time by (group, item) was the rankings' largest cost (perf, 1M orders,
/// steady 100k events/s), and the callers net per id or key anyway.
pub fn per_group_with<'s, K, C, O, F>(
    name: &str,
    input: Coll<'s, (K, C)>,
    retiring: Option<Retiring<'s, K>>,
    mut per: F,
) -> Coll<'s, (K, O)>
where
    K: ExchangeData + Hash + Eq,
    C: ExchangeData,
    O: ExchangeData,
    F: FnMut(&K, Call<'_, C>, &mut dyn FnMut(O, isize)) + 'static,
{
    type Cutoff = ((Window, Micros), Time, isize);
    let by_group = Exchange::new(|((group, _), _, _): &Update<K, C>| group.hashed());
    let window_of = retiring.as_ref().map(|r| r.window_of);
    // every worker retires its own groups, so every worker sees every cutoff (only worker 0
    // feeds them)
    let cutoffs = match retiring {
        Some(r) => r.cutoffs.inner.broadcast(),
        None => Vec::<Cutoff>::new().to_stream(input.inner.scope()),
    };
    input
        .inner
        .binary_frontier(cutoffs, by_group, Pipeline, name, move |_cap, _info| {
            // updates and cutoff changes not yet complete, by time, with a capability to emit
            // at that time
            let mut pending: BTreeMap<Time, Held<K, C>> = BTreeMap::new();
            // a completed time's groups, each with its index in first-seen order
            let mut index: HashMap<K, usize> = HashMap::default();
            // per window size, the start of the oldest retained window
            let mut visible_from: HashMap<Window, Micros> = HashMap::default();
            // the groups handed over, by window, so a retirement finds them (only with
            // retention; groups are few: one per window and scope, not per item)
            let mut live: BTreeMap<(Window, Micros), HashSet<K>> = BTreeMap::new();
            move |(input, frontier), (cut_input, cut_frontier), output| {
                input.for_each(|cap, data: &mut Vec<Update<K, C>>| {
                    // A batch of one time (the usual case) is held as it came, without copying
                    // it: gathered into one vector, a time under load (hundreds of thousands of
                    // updates) was copied again at each doubling, ~10% of the dataflow's
                    // instructions. Other batches are split into runs of equal times.
                    let Some(&(_, first, _)) = data.first() else {
                        return;
                    };
                    if data.iter().all(|(_, t, _)| *t == first) {
                        // a small batch is copied out instead: taking the vector would make
                        // timely allocate a new full-size buffer for its next batch (measured:
                        // +5% on a one-order time in the views bench)
                        let batch = if data.len() >= TAKE_WHOLE {
                            std::mem::take(data)
                        } else {
                            let mut small = Vec::with_capacity(data.len());
                            small.append(data);
                            small
                        };
                        pending
                            .entry(first)
                            .or_insert_with(|| Held::new(cap.delayed(&first, 0)))
                            .updates
                            .push(batch);
                        return;
                    }
                    let mut data = data.drain(..).peekable();
                    while let Some(u) = data.next() {
                        let time = u.1;
                        let mut same_time = vec![u];
                        same_time
                            .extend(std::iter::from_fn(|| data.next_if(|(_, t, _)| *t == time)));
                        pending
                            .entry(time)
                            .or_insert_with(|| Held::new(cap.delayed(&time, 0)))
                            .updates
                            .push(same_time);
                    }
                });
                cut_input.for_each(|cap, data: &mut Vec<Cutoff>| {
                    for (cutoff, time, diff) in data.drain(..) {
                        // a cutoff moving is a retraction of the old and an insertion of the
                        // new; only the insertion says something
                        if diff > 0 {
                            pending
                                .entry(time)
                                .or_insert_with(|| Held::new(cap.delayed(&time, 0)))
                                .cutoffs
                                .push(cutoff);
                        }
                    }
                });
                while let Some(entry) = pending.first_entry() {
                    let t = entry.key();
                    if frontier.less_equal(t) || cut_frontier.less_equal(t) {
                        break;
                    }
                    let (time, held) = entry.remove_entry();
                    let mut session = output.session(&held.cap);
                    for (size, from) in held.cutoffs {
                        let old = visible_from.entry(size).or_insert(from);
                        *old = (*old).max(from);
                        // the windows of this size that start before `from`
                        let retired: Vec<(Window, Micros)> = live
                            .range((size, Micros(i64::MIN))..(size, from))
                            .map(|(w, _)| *w)
                            .collect();
                        for w in retired {
                            for group in live.remove(&w).into_iter().flatten() {
                                per(&group, Call::Retire, &mut |out, diff| {
                                    session.give(((group.clone(), out), time, diff))
                                });
                            }
                        }
                    }
                    // The updates are laid out group after group by a counting sort: one map
                    // lookup per update and a few vectors per time. With a vector per group,
                    // grown push by push, the views bench's `all/100_orders` took 1.27 ms
                    // instead of 1.06; keeping busy groups' vectors for the next time measured
                    // 10-20 MB more live heap at 200k orders.
                    index.clear();
                    // per group: its count, then the start of its run
                    let mut starts: Vec<usize> = Vec::new();
                    let held_len = held.updates.iter().map(Vec::len).sum();
                    let mut tags: Vec<usize> = Vec::with_capacity(held_len);
                    for ((group, _), _, _) in held.updates.iter().flatten() {
                        let g = match index.get(group) {
                            Some(&g) => g,
                            None => {
                                index.insert(group.clone(), starts.len());
                                starts.push(0);
                                starts.len() - 1
                            }
                        };
                        starts[g] += 1;
                        tags.push(g);
                    }
                    let mut at = 0;
                    for s in starts.iter_mut() {
                        (*s, at) = (at, at + *s);
                    }
                    // per group: the next free place of its run, then its run's end
                    let mut ends = starts.clone();
                    // every place is written below and each group's run handed over where it
                    // lies; filled first with copies of one update so that the writes are plain
                    // stores (as `Option`s taken out into a vector per group, every update was
                    // copied twice more)
                    let mut laid: Vec<(C, isize)> = Vec::new();
                    if let Some(((_, item), _, diff)) = held.updates.iter().flatten().next() {
                        laid.resize(tags.len(), (item.clone(), *diff));
                    }
                    let updates = held.updates.into_iter().flatten();
                    for (((_, item), _, diff), g) in updates.zip(tags) {
                        laid[ends[g]] = (item, diff);
                        ends[g] += 1;
                    }
                    let groups: Vec<(K, usize)> = index.drain().collect();
                    for (i, (group, g)) in groups.iter().enumerate() {
                        if let Some((soon, _)) = groups.get(i + 2) {
                            per(soon, Call::Soon, &mut |_, _| {});
                        }
                        if let Some((next, _)) = groups.get(i + 1) {
                            per(next, Call::Upcoming, &mut |_, _| {});
                        }
                        let g = *g;
                        if let Some(w) = window_of.and_then(|f| f(group)) {
                            if visible_from.get(&w.0).is_some_and(|&from| w.1 < from) {
                                continue;
                            }
                            let shown = live.entry(w).or_default();
                            if !shown.contains(group) {
                                shown.insert(group.clone());
                            }
                        }
                        let run = &mut laid[starts[g]..ends[g]];
                        per(group, Call::Changes(run), &mut |out, diff| {
                            session.give(((group.clone(), out), time, diff))
                        });
                    }
                }
            }
        })
        .as_collection()
}

/// Input batches of at least this many updates are held as they came (see `per_group_with`).
const TAKE_WHOLE: usize = 256;

/// An input update: a group's change at a time.
type Update<K, C> = ((K, C), Time, isize);

/// A time's updates and cutoffs held until complete, with the capability to emit at it.
struct Held<K, C> {
    cap: Capability<Time>,
    /// The time's updates, as the batches they came in.
    updates: Vec<Vec<Update<K, C>>>,
    cutoffs: Vec<(Window, Micros)>,
}

impl<K, C> Held<K, C> {
    fn new(cap: Capability<Time>) -> Self {
        Held {
            cap,
            updates: Vec::new(),
            cutoffs: Vec::new(),
        }
    }
}
