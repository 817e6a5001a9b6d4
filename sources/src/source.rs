//! The contract between a running source and the engine.
//!
//! A source runs on a thread of its own (parsing included), sends complete transactions in
//! commit order over `out` (bounded: a slow engine back-pressures the source instead of growing
//! memory), and learns from `applied` which positions the engine has made visible, so that it
//! acknowledges (Postgres LSNs, Kafka offsets) only what is applied.

use crate::types::{Position, Transaction};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Handed to a source's `run`.
pub struct SourceIo {
    /// Complete transactions, in the order they must be applied.
    pub out: crossbeam_channel::Sender<Transaction>,
    /// Positions of transactions the engine has applied and published, in order.
    pub applied: crossbeam_channel::Receiver<Position>,
    /// Set when the engine shuts down; a source returns soon after.
    pub stop: Arc<AtomicBool>,
}

impl SourceIo {
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// The engine's end of [`SourceIo`].
pub struct EngineIo {
    pub input: crossbeam_channel::Receiver<Transaction>,
    pub applied: crossbeam_channel::Sender<Position>,
    pub stop: Arc<AtomicBool>,
}

/// A connected pair; `capacity` bounds the transactions in flight.
pub fn channel(capacity: usize) -> (SourceIo, EngineIo) {
    let (out, input) = crossbeam_channel::bounded(capacity);
    let (applied_tx, applied) = crossbeam_channel::unbounded();
    let stop = Arc::new(AtomicBool::new(false));
    (
        SourceIo {
            out,
            applied,
            stop: stop.clone(),
        },
        EngineIo {
            input,
            applied: applied_tx,
            stop,
        },
    )
}
