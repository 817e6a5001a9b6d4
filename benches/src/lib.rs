//! Benchmarks live here: criterion benches under `benches/benches/`, bench binaries under
//! `benches/src/bin/`. They print their figures; nothing here is a timed test.

/// CPU seconds (user + system) in a `/proc/.../stat` file: `/proc/self/stat` for the process,
/// `/proc/thread-self/stat` for the calling thread, `/proc/self/task/<tid>/stat` for a thread.
pub fn stat_cpu_secs(path: impl AsRef<std::path::Path>) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // fields after the command name (which may contain spaces) start after the last ')'
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 (1-based), i.e. 11 and 12 after the name
    (ticks(11) + ticks(12)) / 100.0
}
