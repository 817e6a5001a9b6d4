//! Dead letters: messages that could not be parsed, kept with their source position, reason,
//! error and (capped) raw bytes — written as JSONL to an optional file, held in a bounded ring
//! for the API, and counted per reason in Prometheus. Also counts good events per table.
//!
//! Owns the record format and the two counters `shopstream_dead_letters_total{reason}` and
//! `shopstream_events_ingested_total{table}`. Must not decide what is malformed (the parsers do)
//! nor stop processing: recording never fails the caller (file errors are logged and counted).

use crate::debezium::{self, ParseError};
use crate::event::Parsed;
use crate::types::{Micros, Table};
use prometheus::{IntCounter, IntCounterVec, Opts};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Display;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex, MutexGuard};

/// Raw bytes kept per dead letter; longer messages are cut (the record says so).
pub const RAW_CAP: usize = 64 * 1024;

/// One dead letter, as written to the JSONL file and served by the API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Where the message came from: `file.jsonl:12`, `topic/partition@offset`, an LSN.
    pub position: String,
    /// Stable label ([`ParseError::reason`]).
    pub reason: String,
    pub error: String,
    /// The message text (lossy UTF-8), at most [`RAW_CAP`] bytes.
    pub raw: String,
    /// Length of the original message in bytes.
    pub raw_len: usize,
    pub raw_truncated: bool,
    /// Wall-clock time of recording, ISO-8601 UTC.
    pub at: String,
}

/// Dead-letter counts, per reason.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterStats {
    pub total: u64,
    pub by_reason: BTreeMap<String, u64>,
}

struct Metrics {
    dead: IntCounterVec,
    ingested: Vec<IntCounter>,
}

/// Registered once per process in the default registry. If someone registered the same names
/// first (a second copy of this crate, a test harness), the counters still count, unexported.
static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let dead = IntCounterVec::new(
        Opts::new(
            "shopstream_dead_letters_total",
            "Source messages that could not be parsed, by reason",
        ),
        &["reason"],
    )
    .unwrap_or_else(unreachable_metric);
    let ingested_vec = IntCounterVec::new(
        Opts::new(
            "shopstream_events_ingested_total",
            "Change events parsed and handed to transaction grouping, by table",
        ),
        &["table"],
    )
    .unwrap_or_else(unreachable_metric);
    for c in [&dead, &ingested_vec] {
        if let Err(e) = prometheus::register(Box::new(c.clone())) {
            tracing::warn!(error = %e, "dead-letter metrics not registered");
        }
    }
    for r in ParseError::REASONS {
        dead.with_label_values(&[r]);
    }
    let ingested = Table::ALL
        .iter()
        .map(|t| ingested_vec.with_label_values(&[t.name()]))
        .collect();
    Metrics { dead, ingested }
});

fn unreachable_metric(e: prometheus::Error) -> IntCounterVec {
    // Only reachable with an invalid metric name, which the constants above are not.
    panic!("invalid metric definition: {e}")
}

/// Counts one good event of `table` (`shopstream_events_ingested_total`).
pub fn count_ingested(table: Table) {
    if let Some(c) = METRICS.ingested.get(table as usize) {
        c.inc();
    }
}

/// Counts one dead letter of `reason` without recording it.
pub fn count_dead(reason: &str) {
    METRICS.dead.with_label_values(&[reason]).inc();
}

struct Inner {
    ring: VecDeque<DeadLetter>,
    stats: DeadLetterStats,
    file: Option<BufWriter<File>>,
}

/// The dead-letter log of one running source (share it behind an `Arc` with the API).
pub struct DeadLetters {
    inner: Mutex<Inner>,
    capacity: usize,
    path: Option<PathBuf>,
}

impl DeadLetters {
    /// Keeps the last `ring_capacity` dead letters in memory and, with `path`, appends every one
    /// to that JSONL file.
    pub fn new(path: Option<&Path>, ring_capacity: usize) -> std::io::Result<DeadLetters> {
        let file = match path {
            Some(p) => Some(BufWriter::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)?,
            )),
            None => None,
        };
        LazyLock::force(&METRICS);
        Ok(DeadLetters {
            inner: Mutex::new(Inner {
                ring: VecDeque::with_capacity(ring_capacity.min(1024)),
                stats: DeadLetterStats::default(),
                file,
            }),
            capacity: ring_capacity,
            path: path.map(Path::to_path_buf),
        })
    }

    /// In memory only.
    pub fn in_memory(ring_capacity: usize) -> DeadLetters {
        LazyLock::force(&METRICS);
        DeadLetters {
            inner: Mutex::new(Inner {
                ring: VecDeque::new(),
                stats: DeadLetterStats::default(),
                file: None,
            }),
            capacity: ring_capacity,
            path: None,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves consistent data: keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a parse failure.
    pub fn record(&self, position: impl Display, error: &ParseError, raw: &[u8]) {
        self.record_reason(position, error.reason(), &error.to_string(), raw)
    }

    /// Records a failure with a reason label of the caller's (e.g. `"not_utf8"` from a source).
    pub fn record_reason(&self, position: impl Display, reason: &str, error: &str, raw: &[u8]) {
        count_dead(reason);
        let cut = raw.len().min(RAW_CAP);
        let letter = DeadLetter {
            position: position.to_string(),
            reason: reason.to_string(),
            error: error.chars().take(1000).collect(),
            raw: String::from_utf8_lossy(&raw[..cut]).into_owned(),
            raw_len: raw.len(),
            raw_truncated: cut < raw.len(),
            at: Micros::now().to_string(),
        };
        tracing::debug!(position = %letter.position, reason, error, "dead letter");
        let mut g = self.lock();
        g.stats.total += 1;
        *g.stats.by_reason.entry(reason.to_string()).or_insert(0) += 1;
        if let Some(f) = g.file.as_mut() {
            let res = serde_json::to_writer(&mut *f, &letter)
                .map_err(std::io::Error::from)
                .and_then(|_| f.write_all(b"\n"))
                .and_then(|_| f.flush());
            if let Err(e) = res {
                tracing::warn!(error = %e, path = ?self.path, "cannot write dead letter");
                count_dead("dead_letter_write_failed");
            }
        }
        if self.capacity > 0 {
            if g.ring.len() >= self.capacity {
                g.ring.pop_front();
            }
            g.ring.push_back(letter);
        }
    }

    /// Parses a message; a failure is recorded and `None` returned, a success counted per table.
    pub fn parse(
        &self,
        position: impl Display,
        topic: Option<&str>,
        value: Option<&[u8]>,
    ) -> Option<Parsed> {
        match debezium::parse(topic, value) {
            Ok(p) => {
                if let Parsed::Event(e) = &p {
                    count_ingested(e.change.table);
                }
                Some(p)
            }
            Err(e) => {
                self.record(position, &e, value.unwrap_or_default());
                None
            }
        }
    }

    /// The most recent dead letters, oldest first, at most `n`.
    pub fn recent(&self, n: usize) -> Vec<DeadLetter> {
        let g = self.lock();
        let skip = g.ring.len().saturating_sub(n);
        g.ring.iter().skip(skip).cloned().collect()
    }

    pub fn stats(&self) -> DeadLetterStats {
        self.lock().stats.clone()
    }

    pub fn total(&self) -> u64 {
        self.lock().stats.total
    }
}
