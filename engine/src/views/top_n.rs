//! `top_n`: the first `n` candidates of every group, kept by an operator of its own instead of
//! differential's `reduce`.
//!
//! Why not `reduce`: a reduce re-reads a key's whole input on every change of it, and the
//! groups of the ranked views are large and busy (every product of a window; every partner of
//! a popular product in also_bought, tens of thousands). Bucketing the groups into two levels
//! of reduces bounded that, but under load every bucket is touched at every time, and the
//! reduces were the largest cost of the engine (perf: ~20% of all CPU at 1M orders) and held
//! three arranged copies of every candidate (the count, the first level's input and its
//! output). Here each group is one ordered map from candidate to multiplicity; a time's
//! changes to a group cost O(changes × log group + n), whatever the group's size.
//!
//! Semantics, identical to the reduce it replaces: a group's ranking is its candidates with a
//! positive multiplicity, in their `Ord` order, each once, numbered 1..=n. The output changes
//! only where a rank's occupant changed (consolidated per time, like a reduce's output).
//!
//! Time: updates are held until the input frontier passes their time and then applied in time
//! order, a time's updates consolidated first, so the output at time t is exactly the ranking
//! of the input accumulated through t (the engine's times are totally ordered). Groups are
//! exchanged by hash, so each worker ranks its share of groups, as the reduce did.
//!
//! State is compacted as it goes: a candidate whose multiplicity reaches zero is removed, and
//! an empty group with it. It owns no other state and must not know what the groups mean.

use super::{Coll, Time};
use differential_dataflow::consolidation::consolidate;
use differential_dataflow::{AsCollection, ExchangeData, Hashable};
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;

/// A ranking candidate: `(Reverse(score), id, payload)`; sorting ranks by higher score, then
/// by smaller id.
pub type Candidate<P> = (Reverse<isize>, i64, P);

/// A ranked candidate: `(rank, id, payload)`, rank from 1.
pub type Place<P> = (u32, i64, P);

/// The first `n` candidates of every group, as `(group, (rank, id, payload))` with ranks 1..=n.
pub fn top_n<'s, K, P>(candidates: Coll<'s, (K, Candidate<P>)>, n: usize) -> Coll<'s, (K, Place<P>)>
where
    K: ExchangeData + Hash + Eq,
    P: ExchangeData,
{
    type Update<K, P> = ((K, Candidate<P>), Time, isize);
    let by_group = Exchange::new(|((group, _), _, _): &Update<K, P>| group.hashed());
    candidates
        .inner
        .unary_frontier(by_group, "TopN", move |_cap, _info| {
            // updates not yet complete, by time, with a capability to emit their changes at it
            let mut pending: BTreeMap<Time, (Capability<Time>, Vec<((K, Candidate<P>), isize)>)> =
                BTreeMap::new();
            // group -> candidate -> multiplicity (never zero: zeros are removed)
            let mut groups: HashMap<K, BTreeMap<Candidate<P>, isize>> = HashMap::new();
            move |(input, frontier), output| {
                input.for_each(|cap, data: &mut Vec<Update<K, P>>| {
                    for (update, time, diff) in data.drain(..) {
                        pending
                            .entry(time)
                            .or_insert_with(|| (cap.delayed(&time, 0), Vec::new()))
                            .1
                            .push((update, diff));
                    }
                });
                while let Some(entry) = pending.first_entry() {
                    if frontier.less_equal(entry.key()) {
                        break;
                    }
                    let (time, (cap, mut updates)) = entry.remove_entry();
                    // sorted by (group, candidate): a group's changes are one run
                    consolidate(&mut updates);
                    let mut session = output.session(&cap);
                    let mut rest = &updates[..];
                    while let Some(((group, _), _)) = rest.first() {
                        let run = rest.iter().take_while(|((g, _), _)| g == group).count();
                        let (changes, tail) = rest.split_at(run);
                        rest = tail;
                        let ranking = groups.entry(group.clone()).or_default();
                        let before = leaders(ranking, n);
                        for ((_, candidate), diff) in changes {
                            apply(ranking, candidate, *diff);
                        }
                        let after = leaders(ranking, n);
                        if ranking.is_empty() {
                            groups.remove(group);
                        }
                        for (rank, i) in (1u32..).zip(0..before.len().max(after.len())) {
                            let (old, new) = (before.get(i), after.get(i));
                            if old == new {
                                continue;
                            }
                            let place =
                                |c: &Candidate<P>| (group.clone(), (rank, c.1, c.2.clone()));
                            if let Some(c) = old {
                                session.give((place(c), time, -1));
                            }
                            if let Some(c) = new {
                                session.give((place(c), time, 1));
                            }
                        }
                    }
                }
            }
        })
        .as_collection()
}

/// The first `n` candidates of a group (all of them have a positive multiplicity: see
/// [`apply`]), cloned: the caller compares them across the group's changes.
fn leaders<P: Clone>(ranking: &BTreeMap<Candidate<P>, isize>, n: usize) -> Vec<Candidate<P>>
where
    P: Ord,
{
    ranking
        .iter()
        .filter(|(_, m)| **m > 0)
        .take(n)
        .map(|(c, _)| c.clone())
        .collect()
}

/// Adds `diff` to a candidate's multiplicity, removing it at zero. A negative multiplicity
/// (a retraction before its insertion, which a consistent input never has) is kept, so the
/// accumulation stays exact, but [`leaders`] never ranks it.
fn apply<P: Clone + Ord>(
    ranking: &mut BTreeMap<Candidate<P>, isize>,
    candidate: &Candidate<P>,
    diff: isize,
) {
    match ranking.get_mut(candidate) {
        Some(m) => {
            *m += diff;
            if *m == 0 {
                ranking.remove(candidate);
            }
        }
        None => {
            ranking.insert(candidate.clone(), diff);
        }
    }
}
