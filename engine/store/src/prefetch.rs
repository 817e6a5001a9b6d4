//! Software prefetch hints, for the index and engine states whose next entries are known
//! before they are touched (the next product's counts, the next customer's row) and would
//! otherwise each miss the cache in turn. Owns only the hints.

/// Asks the CPU to bring the cache line of `at` closer ahead of its use; a hint only (any
/// address is allowed, none is read).
#[inline(always)]
pub fn prefetch<T>(at: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing and cannot fault, whatever the address; SSE is part of
    // x86-64's baseline.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(at.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

/// [`prefetch`] for a short sorted row about to be searched: its first cache lines, which
/// a short row is whole, and its middle, where every binary search starts.
#[inline]
pub fn prefetch_slice<T>(v: &[T]) {
    let bytes = std::mem::size_of_val(v);
    let at = v.as_ptr().cast::<u8>();
    for off in (0..bytes.min(256)).step_by(64) {
        prefetch(at.wrapping_add(off));
    }
    if bytes > 256 {
        prefetch(at.wrapping_add(bytes / 2));
    }
}
