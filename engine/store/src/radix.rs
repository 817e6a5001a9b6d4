//! A least-significant-digit radix sort by a `u128` key, for the hot sorts of small integer
//! keys (product ids, pairs of them) in the engine's rankings and the store's co-occurrence
//! index. Owns only the sort.

/// Below this many entries, [`radix_sort_by`] sorts by comparison: cheaper than a pass over
/// 256 counters.
pub const RADIX_SMALL: usize = 128;

/// Sorts `v` by `key` ascending, `spare` as the second buffer: a least-significant-digit radix
/// sort over only the bytes in which the keys differ (product ids differ in their low two or
/// three bytes: two or three passes). Stable from [`RADIX_SMALL`] entries on; below, unstable
/// (callers have distinct keys or sum equal ones). `key` must order as the entries should
/// (see [`ordered`] for signed ids).
pub fn radix_sort_by<T: Copy>(v: &mut Vec<T>, spare: &mut Vec<T>, key: impl Fn(&T) -> u128) {
    if v.len() < RADIX_SMALL {
        v.sort_unstable_by_key(&key);
        return;
    }
    let first = key(&v[0]);
    let differ = v.iter().fold(0, |acc, e| acc | (key(e) ^ first));
    spare.clear();
    spare.extend_from_slice(v);
    for byte in (0..16).filter(|b| (differ >> (b * 8)) & 0xff != 0) {
        let digit = |e: &T| ((key(e) >> (byte * 8)) & 0xff) as usize;
        let mut at = [0usize; 256];
        for e in v.iter() {
            at[digit(e)] += 1;
        }
        let mut sum = 0;
        for slot in at.iter_mut() {
            (*slot, sum) = (sum, sum + *slot);
        }
        for e in v.iter() {
            let d = digit(e);
            spare[at[d]] = *e;
            at[d] += 1;
        }
        std::mem::swap(v, spare);
    }
}

/// An `i64` as a `u64` that orders the same (the sign bit flipped).
pub fn ordered(id: i64) -> u64 {
    id as u64 ^ (1 << 63)
}

/// A pair of `i64`s as one key that orders as the pair does, for [`radix_sort_by`].
pub fn ordered_pair(a: i64, b: i64) -> u128 {
    (u128::from(ordered(a)) << 64) | u128::from(ordered(b))
}
