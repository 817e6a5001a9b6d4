//! `sum_by_key`: per key, the sums of its updates' values (each value times its multiplicity),
//! as a collection of `(key, sums)` that changes only where a key's sums change, a key whose
//! sums are all zero being absent. That is differential's `count_total` with tuple diffs,
//! without its state: one hash-map entry per key instead of an arranged trace of the input,
//! and a time's updates netted per key in a hash map instead of sorted by a batcher (the
//! count_totals of revenue and category_sales, whose inputs repeat a few keys many times, were
//! a fifth of the worker's time at 1M orders).
//!
//! Time and exchange are [`super::per_group`]'s: a time's changes are applied when the
//! input frontier passes it, in time order, so the output at t is the sums through t.
//!
//! Owns only the sums; it must not know what the keys mean.

use super::per_group::{per_group_with, Call, Retiring};
use super::Coll;
use differential_dataflow::ExchangeData;
use foldhash::HashMap;
use std::hash::Hash;

/// Per key, the sum of `values × multiplicity` over its updates. With `retiring`, a key whose
/// window retention retires retracts its sums and is forgotten (see [`super::per_group`]).
pub fn sum_by_key<'s, K, const M: usize>(
    items: Coll<'s, (K, [isize; M])>,
    retiring: Option<Retiring<'s, K>>,
) -> Coll<'s, (K, [isize; M])>
where
    K: ExchangeData + Hash + Eq,
    [isize; M]: ExchangeData,
{
    let mut sums: HashMap<K, [isize; M]> = HashMap::default();
    per_group_with("SumByKey", items, retiring, move |key, call, emit| {
        let changes = match call {
            Call::Changes(changes) => changes,
            Call::Upcoming | Call::Soon => return,
            Call::Retire => {
                if let Some(old) = sums.remove(key) {
                    emit(old, -1);
                }
                return;
            }
        };
        let mut net = [0; M];
        for (values, d) in changes.iter() {
            for (s, v) in net.iter_mut().zip(values) {
                *s += v * d;
            }
        }
        if net == [0; M] {
            return;
        }
        let old = sums.get(key).copied().unwrap_or([0; M]);
        let mut new = old;
        for (s, v) in new.iter_mut().zip(net) {
            *s += v;
        }
        if old != [0; M] {
            emit(old, -1);
        }
        if new != [0; M] {
            emit(new, 1);
            sums.insert(key.clone(), new);
        } else {
            sums.remove(key);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::Time;
    use differential_dataflow::input::Input;
    use differential_dataflow::operators::CountTotal;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    /// (operator, (key, sums), time, diff)
    type Emitted = (u8, (u8, [isize; 2]), Time, isize);

    /// `sum_by_key` against `count_total` with tuple diffs (what it replaces) on random
    /// streams of increments, decrements past zero, cancelling updates in one time and empty
    /// times, accumulated after every time, with 1 and 3 workers.
    #[test]
    fn matches_count_total_on_random_streams() {
        for workers in [1, 3] {
            for seed in 0..4u64 {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let times: Vec<Vec<(u8, [isize; 2], isize)>> = (0..60)
                    .map(|_| {
                        (0..rng.random_range(0..10))
                            .map(|_| {
                                let v = [
                                    rng.random_range(-2..4i64) as isize,
                                    rng.random_range(0..3i64) as isize,
                                ];
                                (
                                    rng.random_range(0..5u8),
                                    v,
                                    rng.random_range(-2..3i64) as isize,
                                )
                            })
                            .collect()
                    })
                    .collect();
                let outs: Arc<Mutex<Vec<Emitted>>> = Arc::default();
                let (feed, sink) = (times.clone(), outs.clone());
                timely::execute(timely::Config::process(workers), move |worker| {
                    let sink = sink.clone();
                    let mut input = worker.dataflow::<Time, _, _>(|scope| {
                        let (input, items) = scope.new_collection::<(u8, [isize; 2]), isize>();
                        let s1 = sink.clone();
                        sum_by_key(items.clone(), None)
                            .inspect(move |(d, t, r)| s1.lock().unwrap().push((0, *d, *t, *r)));
                        items
                            .explode(|(k, [a, b])| Some((k, (a, b))))
                            .count_total()
                            .inspect(move |((k, (a, b)), t, r)| {
                                sink.lock().unwrap().push((1, (*k, [*a, *b]), *t, *r))
                            });
                        input
                    });
                    if worker.index() == 0 {
                        for (t, time) in feed.iter().enumerate() {
                            input.advance_to(t as Time);
                            for &(k, v, d) in time {
                                input.update((k, v), d);
                            }
                        }
                    }
                    input.close();
                })
                .unwrap();
                let outs = outs.lock().unwrap();
                for t in 0..times.len() as Time {
                    let at = |op: u8| {
                        let mut acc: BTreeMap<(u8, [isize; 2]), isize> = BTreeMap::new();
                        for (o, d, time, r) in outs.iter() {
                            if *o == op && *time <= t {
                                *acc.entry(*d).or_default() += r;
                            }
                        }
                        acc.retain(|_, r| *r != 0);
                        acc
                    };
                    assert_eq!(at(0), at(1), "workers {workers}, seed {seed}, time {t}");
                }
            }
        }
    }
}
