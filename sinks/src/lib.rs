//! Sinks: consume the engine's stream of view changes (+/−, with `as_of`) from the
//! [`view_store::ViewStore`] change feed and push them out:
//!
//! - [`kafka`]: keyed upserts to compacted Kafka topics, tombstones on retraction;
//! - [`webhook`]: one message per fraud alert and one when it resolves (Discord, Slack, JSON);
//! - [`file`]: JSONL of every view change, one rotated file per view;
//! - [`topics`]: a small topic inspector (list, tail) for the engine CLI.
//!
//! Owns: delivery, retries, per-sink state (webhook state file) and the sink metrics. Must not
//! compute views (the engine does) nor change the store.
//!
//! Runtime: every `spawn` runs its sink as tasks on the **current tokio runtime** (call it from
//! inside one); librdkafka has its own threads. A sink never blocks the engine: the store's feed
//! is bounded and drops a subscriber that falls [`view_store::SUBSCRIBER_QUEUE`] batches
//! behind; the sink then re-subscribes and continues from the new snapshot (each sink documents
//! how it makes that idempotent). [`SinkHandle::shutdown`] drains what the feed already holds.

pub mod file;
pub mod kafka;
pub mod metrics;
pub mod topics;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use view_store::{AsOf, ChangeBatch, Feed, ViewName, ViewRow, ViewStore};

/// A running sink. Dropping it leaves the sink running until the runtime stops; call
/// [`SinkHandle::shutdown`] to drain and stop it.
pub struct SinkHandle {
    name: &'static str,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl SinkHandle {
    pub(crate) fn new(name: &'static str, stop: watch::Sender<bool>, task: JoinHandle<()>) -> Self {
        SinkHandle { name, stop, task }
    }

    /// Which sink this is (`kafka`, `webhook`, `file`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// True once the sink's task has ended (after shutdown or a fatal setup error).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops the sink after it has processed every change already in its feed and delivered it
    /// (bounded by the sink's own shutdown timeout, so a dead endpoint cannot hang shutdown).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(sink = self.name, error = %e, "sink task panicked");
        }
    }
}

/// One step of a sink's feed.
#[derive(Debug)]
pub(crate) enum Step {
    /// The whole (subscribed part of the) store. `resubscribed` is true when this snapshot
    /// follows a drop by the store (the sink lagged): the sink must reconcile, not append.
    Snapshot {
        as_of: AsOf,
        rows: Vec<ViewRow>,
        resubscribed: bool,
    },
    Changes(Arc<ChangeBatch>),
    /// Shutdown was requested and the feed holds nothing more.
    Stop,
}

/// Reads the store's feed for a sink, re-subscribing when the store drops the sink for lagging.
pub(crate) struct FeedReader {
    sink: &'static str,
    store: ViewStore,
    view: Option<ViewName>,
    rx: mpsc::Receiver<Feed>,
    stop: watch::Receiver<bool>,
    stopping: bool,
    /// The handle was dropped without `shutdown`: run until the runtime ends.
    detached: bool,
    resubscribed: bool,
}

impl FeedReader {
    pub(crate) fn new(
        sink: &'static str,
        store: ViewStore,
        view: Option<ViewName>,
        stop: watch::Receiver<bool>,
    ) -> Self {
        let rx = store.subscribe(view);
        FeedReader {
            sink,
            store,
            view,
            rx,
            stop,
            stopping: false,
            detached: false,
            resubscribed: false,
        }
    }

    fn map(&mut self, f: Feed) -> Step {
        match f {
            Feed::Snapshot { as_of, rows } => Step::Snapshot {
                as_of,
                rows,
                resubscribed: std::mem::take(&mut self.resubscribed),
            },
            Feed::Changes(b) => Step::Changes(b),
        }
    }

    fn resubscribe(&mut self) {
        metrics::resubscribes(self.sink).inc();
        tracing::warn!(
            sink = self.sink,
            "sink fell behind and was dropped by the view store; re-subscribing from a snapshot"
        );
        self.rx = self.store.subscribe(self.view);
        self.resubscribed = true;
    }

    /// The next step, waiting for it.
    pub(crate) async fn next(&mut self) -> Step {
        loop {
            if self.stopping || *self.stop.borrow() {
                self.stopping = true;
                match self.rx.try_recv() {
                    Ok(f) => return self.map(f),
                    Err(mpsc::error::TryRecvError::Empty) => return Step::Stop,
                    // Dropped for lagging while draining: converge from a snapshot, then stop.
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        self.resubscribe();
                        continue;
                    }
                }
            }
            if self.detached {
                match self.rx.recv().await {
                    Some(f) => return self.map(f),
                    None => self.resubscribe(),
                }
                continue;
            }
            tokio::select! {
                biased;
                f = self.rx.recv() => match f {
                    Some(f) => return self.map(f),
                    None => self.resubscribe(),
                },
                r = self.stop.changed() => match r {
                    Ok(()) => self.stopping = *self.stop.borrow(),
                    // The handle was dropped: nobody can stop us any more; keep running.
                    Err(_) => self.detached = true,
                }
            }
        }
    }

    /// The next step if one is already queued (to group consecutive batches), without waiting.
    pub(crate) fn try_next(&mut self) -> Option<Step> {
        match self.rx.try_recv() {
            Ok(f) => Some(self.map(f)),
            Err(mpsc::error::TryRecvError::Empty) => None,
            Err(mpsc::error::TryRecvError::Disconnected) => {
                self.resubscribe();
                self.rx.try_recv().ok().map(|f| self.map(f))
            }
        }
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping || *self.stop.borrow()
    }
}

/// Exponential backoff with full jitter: a random delay in `[base/2, min(cap, base·2^attempt)]`.
pub(crate) fn backoff(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let exp = base.saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX));
    let top = exp.min(cap).max(Duration::from_millis(1));
    let low = (base / 2).min(top);
    let span = top.saturating_sub(low).as_micros() as u64;
    let jitter = if span == 0 {
        0
    } else {
        rand::random_range(0..=span)
    };
    low + Duration::from_micros(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(2);
        for a in 0..40 {
            let d = backoff(a, base, cap);
            assert!(d >= Duration::from_millis(50) && d <= cap, "{a}: {d:?}");
        }
    }
}
