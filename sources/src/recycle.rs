//! Change vectors handed back by their consumer for the source thread to fill again.
//!
//! A source thread allocates a `Vec<Change>` per transaction and the engine's ingest thread
//! frees it. glibc frees a block into the arena it came from, under that arena's lock, which
//! the source thread takes for its own allocations at the same time: at 1M orders of the e2e
//! bench a tenth of the reader's samples were in malloc and free, a third of those waking a
//! thread blocked on that lock. Recycled, a transaction's vector crosses threads twice and is
//! allocated once.
//!
//! Owns only the pool: vectors come back empty, a chunk at a time (one channel operation per
//! chunk, not per transaction), and any that the pool cannot take are simply freed.

use crate::Change;
use crossbeam_channel::{bounded, Receiver, Sender};
use std::cell::RefCell;
use std::sync::LazyLock;

/// Vectors with more room than this are freed, not kept (a snapshot's large transactions;
/// an order with its items is a handful of changes).
const KEEP_CAPACITY: usize = 32;
/// Returned batches the pool holds (each up to a chunk of transactions' vectors: the source
/// takes one per chunk it fills, so a few cover the chunks in flight). The pool holds at most
/// `POOL_BATCHES × chunk × KEEP_CAPACITY` changes' room: 16 × 64 × 32 × 112 B ≈ 3.7 MB.
const POOL_BATCHES: usize = 16;

/// A bounded pool of returned batches.
struct Pool {
    tx: Sender<Vec<Vec<Change>>>,
    rx: Receiver<Vec<Vec<Change>>>,
}

impl Pool {
    fn new() -> Self {
        let (tx, rx) = bounded(POOL_BATCHES);
        Pool { tx, rx }
    }

    /// A vector from `local` (refilled from the pool when empty), or a new one.
    fn take(&self, local: &mut Vec<Vec<Change>>) -> Vec<Change> {
        if local.is_empty() {
            if let Ok(batch) = self.rx.try_recv() {
                *local = batch;
            }
        }
        local.pop().unwrap_or_default()
    }

    fn give_back(&self, batch: Vec<Vec<Change>>) {
        if !batch.is_empty() {
            let _ = self.tx.try_send(batch);
        }
    }
}

static POOL: LazyLock<Pool> = LazyLock::new(Pool::new);

thread_local! {
    /// Vectors this thread took from the pool and has not used yet.
    static LOCAL: RefCell<Vec<Vec<Change>>> = const { RefCell::new(Vec::new()) };
}

/// An empty vector for a transaction's changes: one given back, or a new one.
pub fn change_vec() -> Vec<Change> {
    LOCAL.with(|local| POOL.take(&mut local.borrow_mut()))
}

/// Takes `changes` back (cleared here) into `batch`, to be handed over with [`give_back`].
pub fn keep(batch: &mut Vec<Vec<Change>>, mut changes: Vec<Change>) {
    if changes.capacity() == 0 || changes.capacity() > KEEP_CAPACITY {
        return;
    }
    changes.clear();
    batch.push(changes);
}

/// Hands a batch of kept vectors to the pool; dropped when the pool is full (no source is
/// taking them).
pub fn give_back(batch: Vec<Vec<Change>>) {
    POOL.give_back(batch);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChangeKind, Op, Table};

    /// A vector given back comes out empty with its room; oversized and empty ones are not
    /// kept; with nothing given back a fresh vector is made; a full pool drops what it gets.
    #[test]
    fn vectors_come_back_empty_with_their_room() {
        let pool = Pool::new();
        let mut local = Vec::new();
        assert_eq!(pool.take(&mut local).capacity(), 0);

        let mut batch = Vec::new();
        let mut used: Vec<Change> = Vec::with_capacity(8);
        used.push(Change {
            table: Table::Orders,
            op: Op::Truncate,
            lsn: None,
            kind: ChangeKind::Truncate,
        });
        keep(&mut batch, used);
        keep(&mut batch, Vec::with_capacity(KEEP_CAPACITY + 1));
        keep(&mut batch, Vec::new());
        assert_eq!(batch.len(), 1);
        pool.give_back(batch);
        let v = pool.take(&mut local);
        assert!(v.is_empty() && v.capacity() >= 8);
        assert_eq!(pool.take(&mut local).capacity(), 0);

        for _ in 0..POOL_BATCHES + 5 {
            pool.give_back(vec![Vec::with_capacity(1)]);
        }
        assert_eq!(pool.rx.len(), POOL_BATCHES);
    }
}
