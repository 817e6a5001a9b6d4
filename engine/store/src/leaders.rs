//! A ranking's first n entries, kept sorted (smallest first: the best rank) in a vector and
//! moved in place as scores change, instead of re-sorted per change. Used by the
//! co-occurrence rows here and by the engine's `top_n` rankings.
//!
//! Owns only the moves; what an entry is and when a ranking must be re-read is the caller's.

/// `leaders[i]` just became smaller (a score that grew): moves it up to its place.
pub fn raise<T: Ord>(leaders: &mut [T], i: usize) {
    let mut j = i;
    while j > 0 && leaders[j] < leaders[j - 1] {
        leaders.swap(j, j - 1);
        j -= 1;
    }
}

/// Offers an entry that is not among `leaders` (sorted, at most `n`): it enters if there is
/// room or it beats the last, which then drops out.
pub fn offer<T: Ord>(leaders: &mut Vec<T>, entry: T, n: usize) {
    if leaders.len() < n || leaders.last().is_some_and(|l| entry < *l) {
        let at = leaders.partition_point(|l| *l < entry);
        leaders.insert(at, entry);
        leaders.truncate(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Against sorting everything and keeping the first n.
    #[test]
    fn moves_equal_a_sort() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for _ in 0..2000 {
            let n = rng.random_range(0..6usize);
            let mut all: Vec<(u32, i64)> = Vec::new();
            let mut leaders: Vec<(u32, i64)> = Vec::new();
            for id in 0..rng.random_range(0..20i64) {
                let entry = (rng.random_range(0..10u32), id);
                all.push(entry);
                offer(&mut leaders, entry, n);
                // a leader's key goes down now and then
                if !leaders.is_empty() && rng.random_bool(0.3) {
                    let i = rng.random_range(0..leaders.len());
                    let lowered = (leaders[i].0.saturating_sub(3), leaders[i].1);
                    if let Some(e) = all.iter_mut().find(|e| e.1 == lowered.1) {
                        *e = lowered;
                    }
                    leaders[i] = lowered;
                    raise(&mut leaders, i);
                }
                let mut want = all.clone();
                want.sort_unstable();
                want.truncate(n);
                assert_eq!(leaders, want);
            }
        }
    }
}
