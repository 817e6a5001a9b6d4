//! [`ById`]: per-id state for ids that are mostly serial (customers), kept in a slot per id
//! where the ids are dense and in a hash map otherwise.
//!
//! Why: an operator keyed by customer touches a few thousand customers per engine time spread
//! over all of them, and a hash map's lookup is two dependent cache misses (its control bytes,
//! then the entry) before the state itself; a slot is found by its address, one miss, and can
//! be prefetched without a lookup. Serial ids (a shop's customers) fill the slots densely.
//!
//! Invariants: an id in `0..slots.len()` is only ever in its slot, every other id only in
//! `far`; the slots grow (moving any `far` ids they then cover) only while the occupied slots
//! stay above a quarter of them plus a fixed allowance, so sparse or hostile ids cost a map
//! entry each, never a run of empty slots. An empty value is an absent one. `far` is ordered
//! so that growing the slots finds the ids they now cover by a range, not a scan of all of
//! them (serial ids grow the slots at every new id).
//!
//! Owns the representation only; what the values mean is the caller's.

use std::collections::BTreeMap;

/// Empty slots allowed beyond the occupancy bound: the first ids need no density.
const ALLOWANCE: usize = 1024;

/// A value that can be empty (empty = absent).
pub trait Vacant: Default {
    fn is_vacant(&self) -> bool;
}

impl<T> Vacant for Vec<T> {
    fn is_vacant(&self) -> bool {
        self.is_empty()
    }
}

/// Values by `i64` id (see the module docs).
pub struct ById<V> {
    slots: Vec<V>,
    /// How many slots hold a non-empty value.
    occupied: usize,
    far: BTreeMap<i64, V>,
}

impl<V: Vacant> Default for ById<V> {
    fn default() -> Self {
        ById {
            slots: Vec::new(),
            occupied: 0,
            far: BTreeMap::new(),
        }
    }
}

impl<V: Vacant> ById<V> {
    /// The value of `id`, if not empty.
    pub fn get(&self, id: i64) -> Option<&V> {
        match usize::try_from(id).ok().filter(|&i| i < self.slots.len()) {
            Some(i) => Some(&self.slots[i]).filter(|v| !v.is_vacant()),
            None => self.far.get(&id),
        }
    }

    /// The address of `id`'s slot (for a prefetch: found without a lookup), if it has one.
    pub fn slot(&self, id: i64) -> Option<*const V> {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.slots.get(i))
            .map(|v| v as *const V)
    }

    /// Runs `f` on the value of `id` (empty when absent) and keeps what it leaves: an empty
    /// value is removed.
    pub fn update<R>(&mut self, id: i64, f: impl FnOnce(&mut V) -> R) -> R {
        if let Some(i) = self.slot_index(id) {
            let was = !self.slots[i].is_vacant();
            let r = f(&mut self.slots[i]);
            let is = !self.slots[i].is_vacant();
            if !is {
                // release what an emptied value may hold
                self.slots[i] = V::default();
            }
            self.occupied = self.occupied + usize::from(is) - usize::from(was);
            return r;
        }
        let v = self.far.entry(id).or_default();
        let r = f(v);
        if v.is_vacant() {
            self.far.remove(&id);
        }
        r
    }

    /// The slot of `id`, the slots grown to hold it where the density bound allows.
    fn slot_index(&mut self, id: i64) -> Option<usize> {
        let i = usize::try_from(id).ok()?;
        if i < self.slots.len() {
            return Some(i);
        }
        if i >= 4 * (self.occupied + 1) + ALLOWANCE {
            return None;
        }
        let need = i + 1;
        if self.slots.capacity() < need {
            self.slots
                .reserve_exact((need - self.slots.len()).max(self.slots.len() / 4));
        }
        let old = self.slots.len();
        self.slots.resize_with(need, V::default);
        // ids the slots cover now leave the map (none for serial ids)
        let covered: Vec<i64> = self
            .far
            .range(old as i64..need as i64)
            .map(|(&k, _)| k)
            .collect();
        for k in covered {
            if let Some(v) = self.far.remove(&k) {
                self.slots[k as usize] = v;
                self.occupied += 1;
            }
        }
        Some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::collections::BTreeMap;

    /// Random updates over serial, sparse, negative and huge ids: the map holds what a
    /// `BTreeMap` holds, empty values are absent, and the slots stay within the density bound.
    #[test]
    fn random_updates_match_a_map() {
        for seed in 0..100 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut m: ById<Vec<u32>> = ById::default();
            let mut want: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
            let mut most = 0;
            for step in 0..3000 {
                let id = match rng.random_range(0..20) {
                    0 => -rng.random_range(1..100i64),
                    1 => rng.random_range(0..i64::MAX),
                    2 => rng.random_range(0..100_000i64),
                    _ => rng.random_range(0..(step as i64 / 2 + 10)),
                };
                let push = rng.random_bool(0.6);
                let x = rng.random_range(0..5u32);
                let apply = |v: &mut Vec<u32>| {
                    if push {
                        v.push(x);
                    } else {
                        v.pop();
                    }
                    v.len()
                };
                let got = m.update(id, apply);
                let w = want.entry(id).or_default();
                assert_eq!(got, apply(w), "seed {seed} id {id}");
                if w.is_empty() {
                    want.remove(&id);
                }
                most = most.max(m.occupied);
                if step % 100 == 0 {
                    for (&k, v) in &want {
                        assert_eq!(m.get(k), Some(v), "seed {seed} id {k}");
                    }
                    assert_eq!(m.get(-1000), want.get(&-1000));
                    let held = m.slots.iter().filter(|v| !v.is_empty()).count();
                    assert_eq!(held, m.occupied);
                    assert_eq!(held + m.far.len(), want.len());
                    // the slots grew only within the bound of the occupancy of their time
                    assert!(m.slots.len() <= 4 * (most + 1) + ALLOWANCE);
                    assert!(m.far.keys().all(|&k| k < 0 || k as usize >= m.slots.len()));
                }
            }
        }
    }
}
