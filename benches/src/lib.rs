//! Benchmarks live here: criterion benches under `benches/benches/`, bench binaries under
//! `benches/src/bin/`. They print their figures; nothing here is a timed test.
