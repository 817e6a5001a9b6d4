//! `per_group`: the timely operator under the engine's own aggregating operators (the
//! rankings of [`super::top_n`], the sums of [`super::sums`], the per-customer fraud rules):
//! updates exchanged by group and held until their time is complete, then handed over once
//! per group and time.
//!
//! Owns only the holding and grouping; what a group's state is, and what it emits, is the
//! caller's.

use super::{Coll, Time};
use differential_dataflow::{AsCollection, ExchangeData, Hashable};
use foldhash::HashMap;
use std::collections::BTreeMap;
use std::hash::Hash;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;

/// Exchanges `(group, item)` updates by group, holds them until the input frontier passes
/// their time, and then, in time order, calls `per(group, changes, emit)` once per group with that time's changes of the group (in no
/// particular order, not consolidated). What `emit((out, diff))` is given leaves at that time
/// as `((group, out), time, diff)`.
///
/// A time's updates are bucketed by group in a hash map, not consolidated by a sort: sorting
/// every update of a time by (group, item) was the rankings' largest cost (perf, 1M orders,
/// steady 100k events/s), and the callers net per id or key anyway.
pub fn per_group<'s, K, C, O, F>(
    name: &str,
    input: Coll<'s, (K, C)>,
    mut per: F,
) -> Coll<'s, (K, O)>
where
    K: ExchangeData + Hash + Eq,
    C: ExchangeData,
    O: ExchangeData,
    F: FnMut(&K, &mut [(C, isize)], &mut dyn FnMut(O, isize)) + 'static,
{
    type Update<K, C> = ((K, C), Time, isize);
    let by_group = Exchange::new(|((group, _), _, _): &Update<K, C>| group.hashed());
    input
        .inner
        .unary_frontier(by_group, name, move |_cap, _info| {
            // updates not yet complete, by time, with a capability to emit their changes at it
            let mut pending: BTreeMap<Time, Held<K, C>> = BTreeMap::new();
            // a completed time's updates by group
            let mut by_group: HashMap<K, Vec<(C, isize)>> = HashMap::default();
            move |(input, frontier), output| {
                input.for_each(|cap, data: &mut Vec<Update<K, C>>| {
                    // one map lookup per run of equal times (a batch is usually one time)
                    let n = data.len();
                    let mut data = data.drain(..).peekable();
                    while let Some((update, time, diff)) = data.next() {
                        let held = &mut pending
                            .entry(time)
                            .or_insert_with(|| (cap.delayed(&time, 0), Vec::new()))
                            .1;
                        // room for the batch at once instead of doubling (and copying) as it
                        // fills: a time under load gathers tens of thousands of updates
                        held.reserve(n);
                        held.push((update, diff));
                        while let Some((update, _, diff)) = data.next_if(|(_, t, _)| *t == time) {
                            held.push((update, diff));
                        }
                    }
                });
                while let Some(entry) = pending.first_entry() {
                    if frontier.less_equal(entry.key()) {
                        break;
                    }
                    let (time, (cap, updates)) = entry.remove_entry();
                    for ((group, item), diff) in updates {
                        by_group.entry(group).or_default().push((item, diff));
                    }
                    let mut session = output.session(&cap);
                    // Each group's vector is freed after its call: keeping busy groups'
                    // vectors for the next time measured no throughput gain and 10-20 MB more
                    // live heap at 200k orders of the e2e bench (mallinfo2).
                    for (group, mut changes) in by_group.drain() {
                        per(&group, &mut changes, &mut |out, diff| {
                            session.give(((group.clone(), out), time, diff))
                        });
                    }
                }
            }
        })
        .as_collection()
}

/// A time's updates held until complete, with the capability to emit their changes at it.
type Held<K, C> = (Capability<Time>, Vec<((K, C), isize)>);
