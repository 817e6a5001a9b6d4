//! [`IdMap`]: a small map from ids to values, kept as a vector sorted by id, with the ids
//! packed into 32 bits while they fit.
//!
//! For the index's per-product and per-customer rows (a product's co-occurrence partners, a
//! customer's touched products): there is one such row per product or customer for the life
//! of the engine, each with tens to thousands of entries, together the largest part of the
//! store's memory. A hash map costs its entries' size over its load factor plus a control
//! byte per bucket (~26 B for an `(i64, u32)` pair); here a pair is 8 B while every id of the
//! row fits `u32` (serial keys do), and 16 B otherwise: one id that does not fit widens its row
//! only. Rows grow by an eighth at a time rather than doubling, since a row is held for good.
//!
//! Owns the representation only; what an id or a value means is the caller's.

use crate::prefetch::prefetch_slice;

/// A map from `i64` ids to `V`, ascending by id.
#[derive(Clone, Debug)]
pub(crate) enum IdMap<V> {
    /// Every id fits `u32`.
    Narrow(Vec<(u32, V)>),
    Wide(Vec<(i64, V)>),
}

impl<V> Default for IdMap<V> {
    fn default() -> Self {
        IdMap::Narrow(Vec::new())
    }
}

impl<V: Copy> IdMap<V> {
    pub(crate) fn len(&self) -> usize {
        match self {
            IdMap::Narrow(v) => v.len(),
            IdMap::Wide(v) => v.len(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every `(id, value)`, ascending by id.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (i64, V)> + '_ {
        let (narrow, wide) = match self {
            IdMap::Narrow(v) => (v.as_slice(), &[][..]),
            IdMap::Wide(v) => (&[][..], v.as_slice()),
        };
        narrow
            .iter()
            .map(|&(id, v)| (i64::from(id), v))
            .chain(wide.iter().copied())
    }

    pub(crate) fn get(&self, id: i64) -> Option<V> {
        match self {
            IdMap::Narrow(v) => {
                let id = u32::try_from(id).ok()?;
                v.binary_search_by_key(&id, |e| e.0).ok().map(|i| v[i].1)
            }
            IdMap::Wide(v) => v.binary_search_by_key(&id, |e| e.0).ok().map(|i| v[i].1),
        }
    }

    /// Asks the CPU to bring the row closer ahead of a search (see [`prefetch_slice`]).
    pub(crate) fn prefetch(&self) {
        match self {
            IdMap::Narrow(v) => prefetch_slice(v),
            IdMap::Wide(v) => prefetch_slice(v),
        }
    }

    /// Sets the value of `id` (`None` removes it).
    pub(crate) fn set(&mut self, id: i64, value: Option<V>) {
        if let IdMap::Narrow(v) = self {
            match u32::try_from(id) {
                Ok(id) => return set_in(v, id, value),
                // removing an id that cannot be here changes nothing
                Err(_) if value.is_none() => return,
                Err(_) => {
                    let wide = v.iter().map(|&(id, x)| (i64::from(id), x)).collect();
                    *self = IdMap::Wide(wide);
                }
            }
        }
        if let IdMap::Wide(v) = self {
            set_in(v, id, value);
        }
    }

    /// Replaces the value of each id of `changes` (ascending, each id once) by
    /// `f(id, current value, change)` (`None`: absent / remove), calling `f` once per change in
    /// order. One search per change, galloping from the previous one (see [`gallop`]), and new
    /// ids merged in with one pass over the row instead of one shift of its tail per id, which
    /// made co-occurrence rows (hundreds of partners) the publish thread's largest cost.
    pub(crate) fn update_sorted<D: Copy>(
        &mut self,
        changes: &[(i64, D)],
        mut f: impl FnMut(i64, Option<V>, D) -> Option<V>,
    ) {
        match self {
            IdMap::Narrow(v) => {
                // an id beyond u32 is not here; stored, it widens the row, after the pass
                let far = update_sorted_in(v, changes, |id| u32::try_from(id).ok(), &mut f);
                if !far.is_empty() {
                    let mut wide: Vec<(i64, V)> =
                        v.iter().map(|&(id, x)| (i64::from(id), x)).collect();
                    // negative ids sort before every narrow one, ids beyond u32 after
                    merge_sorted(&mut wide, &far);
                    *self = IdMap::Wide(wide);
                }
            }
            IdMap::Wide(v) => {
                update_sorted_in(v, changes, Some, &mut f);
            }
        }
    }
}

/// [`IdMap::update_sorted`] on one representation. Ids that `key` cannot represent are absent;
/// the values `f` gives them are returned (ascending) for the caller to store elsewhere.
fn update_sorted_in<K: Ord + Copy, V: Copy, D: Copy>(
    v: &mut Vec<(K, V)>,
    changes: &[(i64, D)],
    key: impl Fn(i64) -> Option<K>,
    f: &mut impl FnMut(i64, Option<V>, D) -> Option<V>,
) -> Vec<(i64, V)> {
    // positions found stay valid until the end: removals are marked, new ids wait, both
    // ascending as the changes are
    let mut gone: Vec<usize> = Vec::new();
    let mut fresh: Vec<(K, V)> = Vec::new();
    let mut far: Vec<(i64, V)> = Vec::new();
    // every later id is beyond this position
    let mut lo = 0;
    for &(id, d) in changes {
        let Some(k) = key(id) else {
            far.extend(f(id, None, d).map(|x| (id, x)));
            continue;
        };
        match gallop(v, lo, k) {
            Ok(i) => {
                match f(id, Some(v[i].1), d) {
                    Some(x) => v[i].1 = x,
                    None => gone.push(i),
                }
                lo = i + 1;
            }
            Err(i) => {
                lo = i;
                if let Some(x) = f(id, None, d) {
                    fresh.push((k, x));
                }
            }
        }
    }
    if !gone.is_empty() {
        let mut gone = gone.into_iter().peekable();
        let mut i = 0;
        v.retain(|_| {
            let drop = gone.next_if_eq(&i).is_some();
            i += 1;
            !drop
        });
    }
    merge_sorted(v, &fresh);
    far
}

/// The position of `k` in `v` (ascending) at or after `lo`, as `binary_search` answers, found
/// by probing `lo`, `lo + 1`, `lo + 3`, `lo + 7`… before a binary search within the last gap.
/// A batch's changes to a row are ascending and, for a popular product, dense: each search
/// then reads the cache lines next to the previous one's, where a binary search over the
/// whole rest of the row missed the cache at nearly every probe (83% of the time of this
/// function at 1M orders of the e2e bench was one load of the binary search).
pub fn gallop<K: Ord + Copy, V>(v: &[(K, V)], lo: usize, k: K) -> Result<usize, usize> {
    // every entry before `from` is below k
    let (mut from, mut probe, mut step) = (lo, lo, 1);
    while probe < v.len() && v[probe].0 < k {
        from = probe + 1;
        probe = lo + step;
        step = step * 2 + 1;
    }
    let to = if probe < v.len() { probe + 1 } else { v.len() };
    match v[from..to].binary_search_by_key(&k, |e| e.0) {
        Ok(i) => Ok(from + i),
        Err(i) => Err(from + i),
    }
}

/// Merges `fresh` (ascending, no id of `v`) into `v` (ascending by id) in one pass from the
/// back, growing `v` by an eighth at a time rather than doubling: the rows this serves are
/// held for good (or for a window's life), and doubling's slack would be held with them.
pub fn merge_sorted<K: Ord + Copy, V: Copy>(v: &mut Vec<(K, V)>, fresh: &[(K, V)]) {
    let Some(&first) = fresh.first() else {
        return;
    };
    let old = v.len();
    let need = old + fresh.len();
    if v.capacity() < need {
        v.reserve_exact(fresh.len().max(need / 8));
    }
    v.resize(need, first);
    let (mut i, mut k) = (old, need);
    for &f in fresh.iter().rev() {
        while i > 0 && v[i - 1].0 > f.0 {
            v[k - 1] = v[i - 1];
            i -= 1;
            k -= 1;
        }
        v[k - 1] = f;
        k -= 1;
    }
}

/// [`IdMap::set`] on one representation.
fn set_in<K: Ord + Copy, V>(v: &mut Vec<(K, V)>, id: K, value: Option<V>) {
    match (v.binary_search_by_key(&id, |e| e.0), value) {
        (Ok(i), None) => {
            v.remove(i);
        }
        (Ok(i), Some(x)) => v[i].1 = x,
        (Err(_), None) => {}
        (Err(i), Some(x)) => {
            if v.len() == v.capacity() {
                // at least 4 places: a customer's row grows to tens of entries one purchase at
                // a time, and 2 at a time its reallocations (a copy, often a move to another
                // block) were ~2% of the e2e bench's samples
                v.reserve_exact((v.len() / 8).max(4));
            }
            v.insert(i, (id, x));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::collections::BTreeMap;

    /// `merge_sorted` against a sort of the union, for fresh ids before, between and after the
    /// old ones, and into an empty vector.
    #[test]
    fn merge_sorted_keeps_ids_sorted() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..500 {
            let mut all: Vec<i64> = (0..rng.random_range(0..40))
                .map(|_| rng.random_range(-50..50))
                .collect();
            all.sort_unstable();
            all.dedup();
            let (mut v, mut fresh) = (Vec::new(), Vec::new());
            for id in all.iter().copied() {
                if rng.random_bool(0.5) {
                    v.push((id, [id as isize]));
                } else {
                    fresh.push((id, [id as isize]));
                }
            }
            merge_sorted(&mut v, &fresh);
            let want: Vec<(i64, [isize; 1])> = all.iter().map(|&id| (id, [id as isize])).collect();
            assert_eq!(v, want);
        }
    }

    /// `gallop` answers as `binary_search` on the rest of the row, from every start.
    #[test]
    fn gallop_equals_binary_search() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..200 {
            let mut ids: Vec<u32> = (0..rng.random_range(0..70))
                .map(|_| rng.random_range(0..100))
                .collect();
            ids.sort_unstable();
            ids.dedup();
            let v: Vec<(u32, ())> = ids.iter().map(|&id| (id, ())).collect();
            for lo in 0..=v.len() {
                for k in 0..101 {
                    let want = match v[lo..].binary_search_by_key(&k, |e| e.0) {
                        Ok(i) => Ok(lo + i),
                        Err(i) => Err(lo + i),
                    };
                    assert_eq!(gallop(&v, lo, k), want, "{ids:?} from {lo} for {k}");
                }
            }
        }
    }

    /// `update_sorted` against the same changes made one `set` at a time, across widening:
    /// same contents, and `f` called once per change, in order, with the value before it.
    #[test]
    fn update_sorted_equals_one_set_at_a_time() {
        for seed in 0..300 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let (mut batched, mut single): (IdMap<u32>, IdMap<u32>) = Default::default();
            for _ in 0..20 {
                let mut changes: BTreeMap<i64, Option<u32>> = BTreeMap::new();
                for _ in 0..rng.random_range(0..12) {
                    let id = if rng.random_bool(0.02) {
                        [-7, i64::from(u32::MAX) + 3, i64::MIN][rng.random_range(0..3)]
                    } else {
                        rng.random_range(0..40)
                    };
                    changes.insert(id, rng.random_bool(0.6).then(|| rng.random_range(1..9)));
                }
                let changes: Vec<(i64, Option<u32>)> = changes.into_iter().collect();
                let mut seen = Vec::new();
                batched.update_sorted(&changes, |id, old, x| {
                    seen.push((id, old));
                    x
                });
                let mut want_seen = Vec::new();
                for &(id, x) in &changes {
                    want_seen.push((id, single.get(id)));
                    single.set(id, x);
                }
                assert_eq!(seen, want_seen, "seed {seed}");
                assert_eq!(
                    batched.iter().collect::<Vec<_>>(),
                    single.iter().collect::<Vec<_>>(),
                    "seed {seed}"
                );
                assert_eq!(
                    matches!(batched, IdMap::Wide(_)),
                    matches!(single, IdMap::Wide(_))
                );
            }
        }
    }

    /// Against a map, with ids that fit 32 bits and some that do not (negative, beyond u32):
    /// every read equals the map's, in ascending order, and a row widens once an id that does
    /// not fit is stored, not before.
    #[test]
    fn matches_a_map_across_widening() {
        for seed in 0..100 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut m: IdMap<u32> = IdMap::default();
            let mut want: BTreeMap<i64, u32> = BTreeMap::new();
            let far = [-1, i64::MIN, i64::from(u32::MAX) + 1, i64::MAX, 1 << 40];
            let mut widened = false;
            for step in 0..300 {
                let id = if rng.random_bool(0.03) {
                    far[rng.random_range(0..far.len())]
                } else if rng.random_bool(0.02) {
                    i64::from(u32::MAX)
                } else {
                    rng.random_range(0..60)
                };
                let value = rng.random_bool(0.7).then(|| rng.random_range(1..5u32));
                m.set(id, value);
                match value {
                    Some(x) => {
                        want.insert(id, x);
                        widened |= u32::try_from(id).is_err();
                    }
                    None => {
                        want.remove(&id);
                    }
                }
                assert_eq!(
                    matches!(m, IdMap::Wide(_)),
                    widened,
                    "seed {seed} step {step}"
                );
                assert_eq!(m.get(id), value);
                assert_eq!(m.len(), want.len());
                let got: Vec<(i64, u32)> = m.iter().collect();
                let expect: Vec<(i64, u32)> = want.iter().map(|(&k, &x)| (k, x)).collect();
                assert_eq!(got, expect, "seed {seed} step {step}");
            }
        }
    }
}
