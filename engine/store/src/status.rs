//! The engine's live status, written by the engine and read by the HTTP API (`/info`,
//! `/health`, `/metrics`, the dashboard header).
//!
//! Owns: what the source is, whether it is connected, the last applied transaction (engine time,
//! LSN, its commit time and when it was applied), the source lag and the number of events
//! ingested. Lock-free for the counters (the engine updates them per transaction); the two
//! strings sit behind a `RwLock` because they change rarely.
//!
//! Must not decide health (the API does, from these facts) nor hold view rows (the store does).

use crate::AsOf;
use parking_lot::RwLock;
use sources::{Lsn, Micros};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

/// Sentinel for "not known yet" in the atomics below (no valid LSN, time or lag uses it).
const NONE: i64 = i64::MIN;

/// Shared, cheaply clonable engine status. All setters take `&self`.
#[derive(Clone)]
pub struct EngineStatus {
    inner: Arc<Inner>,
}

struct Inner {
    source: RwLock<String>,
    last_error: RwLock<Option<String>>,
    connected: AtomicBool,
    started_at: Micros,
    /// Engine time of the last applied transaction (0 = none).
    last_time: AtomicU64,
    /// LSN of the last applied transaction; `u64::MAX` = none (Lsn(u64::MAX) is not a real LSN).
    last_lsn: AtomicU64,
    /// Commit time at the source of the last applied transaction (µs), or NONE.
    last_commit_at: AtomicI64,
    /// Wall-clock time at which the last transaction became visible (µs), or NONE.
    last_applied_at: AtomicI64,
    /// Source lag in ms (how far behind the source head the engine is), or NONE.
    lag_ms: AtomicI64,
    events: AtomicU64,
    transactions: AtomicU64,
}

/// A consistent-enough copy of the status for printing (fields are read one by one; the API
/// does not need them torn-free).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusSnapshot {
    pub source: String,
    pub connected: bool,
    pub last_error: Option<String>,
    pub started_at: Micros,
    pub last_time: u64,
    pub last_lsn: Option<Lsn>,
    pub last_commit_at: Option<Micros>,
    pub last_applied_at: Option<Micros>,
    pub lag_ms: Option<i64>,
    pub events_ingested: u64,
    pub transactions_applied: u64,
}

/// Wall clock as [`Micros`].
pub fn now_micros() -> Micros {
    Micros::now()
}

fn opt(v: i64) -> Option<i64> {
    (v != NONE).then_some(v)
}

impl Default for EngineStatus {
    fn default() -> Self {
        Self::new("none")
    }
}

impl EngineStatus {
    /// `source` is a human description without secrets (e.g. `postgres 127.0.0.1:5432/shop`).
    pub fn new(source: impl Into<String>) -> Self {
        EngineStatus {
            inner: Arc::new(Inner {
                source: RwLock::new(source.into()),
                last_error: RwLock::new(None),
                connected: AtomicBool::new(false),
                started_at: now_micros(),
                last_time: AtomicU64::new(0),
                last_lsn: AtomicU64::new(u64::MAX),
                last_commit_at: AtomicI64::new(NONE),
                last_applied_at: AtomicI64::new(NONE),
                lag_ms: AtomicI64::new(NONE),
                events: AtomicU64::new(0),
                transactions: AtomicU64::new(0),
            }),
        }
    }

    pub fn set_source(&self, source: impl Into<String>) {
        *self.inner.source.write() = source.into();
    }

    /// Connected to the source; clears the last error when connecting.
    pub fn set_connected(&self, connected: bool) {
        self.inner.connected.store(connected, Ordering::Relaxed);
        if connected {
            *self.inner.last_error.write() = None;
        }
    }

    /// The last source error (shown by `/health`); secrets must already be redacted.
    pub fn set_error(&self, error: impl Into<String>) {
        *self.inner.last_error.write() = Some(error.into());
    }

    /// Records that the store now reflects `as_of`; `commit_at` is the source commit time of the
    /// last transaction in it, when known; `transactions_total` is the cumulative number of
    /// source transactions applied so far (normally `as_of.time`). Repeated or out-of-order calls
    /// never move the total backwards.
    pub fn record_applied(&self, as_of: AsOf, commit_at: Option<Micros>, transactions_total: u64) {
        let i = &self.inner;
        i.last_time.store(as_of.time, Ordering::Relaxed);
        if let Some(l) = as_of.lsn {
            i.last_lsn.store(l.0, Ordering::Relaxed);
        }
        if let Some(c) = commit_at {
            i.last_commit_at.store(c.0, Ordering::Relaxed);
        }
        let applied = as_of.published_at.unwrap_or_else(now_micros);
        i.last_applied_at.store(applied.0, Ordering::Relaxed);
        i.transactions
            .fetch_max(transactions_total, Ordering::Relaxed);
    }

    /// Source lag: how far behind the source's head the applied state is.
    pub fn set_lag_ms(&self, lag_ms: i64) {
        self.inner.lag_ms.store(lag_ms.max(0), Ordering::Relaxed);
    }

    pub fn add_events(&self, n: u64) {
        self.inner.events.fetch_add(n, Ordering::Relaxed);
    }

    pub fn source(&self) -> String {
        self.inner.source.read().clone()
    }

    pub fn connected(&self) -> bool {
        self.inner.connected.load(Ordering::Relaxed)
    }

    pub fn lag_ms(&self) -> Option<i64> {
        opt(self.inner.lag_ms.load(Ordering::Relaxed))
    }

    pub fn events_ingested(&self) -> u64 {
        self.inner.events.load(Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> StatusSnapshot {
        let i = &self.inner;
        let lsn = i.last_lsn.load(Ordering::Relaxed);
        StatusSnapshot {
            source: i.source.read().clone(),
            connected: i.connected.load(Ordering::Relaxed),
            last_error: i.last_error.read().clone(),
            started_at: i.started_at,
            last_time: i.last_time.load(Ordering::Relaxed),
            last_lsn: (lsn != u64::MAX).then_some(Lsn(lsn)),
            last_commit_at: opt(i.last_commit_at.load(Ordering::Relaxed)).map(Micros),
            last_applied_at: opt(i.last_applied_at.load(Ordering::Relaxed)).map(Micros),
            lag_ms: opt(i.lag_ms.load(Ordering::Relaxed)),
            events_ingested: i.events.load(Ordering::Relaxed),
            transactions_applied: i.transactions.load(Ordering::Relaxed),
        }
    }
}

impl StatusSnapshot {
    pub fn to_json(&self) -> serde_json::Value {
        let t = |m: Option<Micros>| m.map(|m| m.to_string());
        serde_json::json!({
            "source": self.source,
            "connected": self.connected,
            "last_error": self.last_error,
            "started_at": self.started_at.to_string(),
            "last_transaction": {
                "time": self.last_time,
                "lsn": self.last_lsn.map(|l| l.to_string()),
                "committed_at": t(self.last_commit_at),
                "applied_at": t(self.last_applied_at),
            },
            "lag_ms": self.lag_ms,
            "events_ingested": self.events_ingested,
            "transactions_applied": self.transactions_applied,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_prints() {
        let s = EngineStatus::new("file:x.jsonl");
        assert_eq!(s.snapshot().last_lsn, None);
        s.set_connected(true);
        s.add_events(3);
        s.set_lag_ms(12);
        s.record_applied(
            AsOf {
                time: 7,
                lsn: Some(Lsn(0x16_0000_0010)),
                published_at: Some(Micros(1_000_000)),
            },
            Some(Micros(0)),
            1,
        );
        let j = s.snapshot().to_json();
        assert_eq!(j["last_transaction"]["lsn"], "16/10");
        assert_eq!(j["last_transaction"]["applied_at"], "1970-01-01T00:00:01Z");
        assert_eq!(j["events_ingested"], 3);
        assert_eq!(j["lag_ms"], 12);
        assert_eq!(j["connected"], true);
    }
}
