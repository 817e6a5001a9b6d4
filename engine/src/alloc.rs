//! Process-wide settings of the C allocator the engine runs on (glibc's malloc).
//!
//! Owns nothing else; binaries call [`tune`] once at startup, before their threads start.

/// Keeps glibc from handing memory back to the kernel between engine times.
///
/// The engine's threads allocate and free large vectors at every engine time (a time's
/// updates, a store batch, timely's buffers). By default glibc serves blocks above a
/// threshold (128 KiB, raised adaptively) with their own mapping and trims an arena's free top
/// above twice that, so those pages were unmapped and faulted in again time after time: ~400k
/// page faults in the e2e bench at 1M orders, each clearing a page. With a fixed 32 MiB mapping
/// threshold and a 64 MiB trim threshold they stay in the heap for the next time: page faults
/// fell to ~120k and the e2e bench used ~5% less CPU (GLIBC_TUNABLES A/B, same binary). The
/// price is up to 64 MiB of free memory an arena may keep; `malloc_trim` still returns it
/// all (the e2e bench's "after returning free pages" figure).
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const M_TRIM_THRESHOLD: std::ffi::c_int = -1;
        const M_MMAP_THRESHOLD: std::ffi::c_int = -3;
        extern "C" {
            fn mallopt(param: std::ffi::c_int, value: std::ffi::c_int) -> std::ffi::c_int;
        }
        // SAFETY: mallopt only changes glibc's allocator parameters (this process uses glibc's
        // allocator: no custom global allocator); it takes no pointers and is thread-safe.
        // Its result (0 on a refused value) only means the default stays, which is harmless.
        unsafe {
            mallopt(M_MMAP_THRESHOLD, 32 << 20);
            mallopt(M_TRIM_THRESHOLD, 64 << 20);
        }
    }
}
