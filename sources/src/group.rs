//! Transaction grouping (SPEC §3): parsed messages in arrival order in, complete
//! [`Transaction`]s out, in commit order, so the engine applies each source transaction at one
//! logical time.
//!
//! Two ways to know a transaction's extent:
//! - **Markers** (Debezium `provide.transaction.metadata=true`): events carry a `transaction`
//!   block, the `<prefix>.transaction` topic carries BEGIN/END with per-table event counts. A
//!   transaction is released once its END arrived AND all its events did (they may come from
//!   several topics, interleaved, before or after the markers). Duplicated events (same
//!   `total_order`) are dropped; an event of an already released transaction (a redelivery) is
//!   released alone — the engine's per-key LSN rule makes it a no-op.
//! - **txId runs** otherwise: consecutive events with the same `source.txId` form a
//!   transaction; a different txId closes it. Snapshot reads share one txId and are cut into
//!   batches of `snapshot_batch` events. Events without txId are transactions of their own.
//!   Events without a `transaction` block use this path also when markers are on (Debezium
//!   snapshots have no block).
//!
//! Bounds: at most `max_buffered_events` events and `max_open_txns` marker transactions wait;
//! beyond that the oldest is released incomplete (logged and counted) rather than growing
//! memory or stalling forever, e.g. when one of its events was dead-lettered.
//!
//! Owns only grouping. Must not parse, dedupe by LSN or apply anything.

use crate::deadletter::DeadLetters;
use crate::debezium::probe_tx_id;
use crate::event::{Event, Parsed, TxMarker, TxStatus};
use crate::types::{Change, Lsn, Micros, Position, Table, Transaction};
// foldhash (randomly seeded per process) instead of SipHash: every released transaction is
// inserted into and later removed from `released`, and SipHash showed in the reader
// thread's profile. Already in the tree through differential-dataflow.
use foldhash::{HashMap, HashMapExt, HashSet};
use std::collections::VecDeque;

/// Whether transaction markers decide the grouping.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum MarkerMode {
    /// Switch to markers on the first marker seen (a source that may or may not read the
    /// transaction topic). Events that arrived before it were grouped by txId.
    #[default]
    Auto,
    /// Markers are expected from the start (the source subscribes to the transaction topic).
    On,
    /// Ignore markers; group by txId only.
    Off,
}

#[derive(Clone, Debug)]
pub struct GroupConfig {
    pub markers: MarkerMode,
    /// Snapshot reads sharing a txId are released in batches of this many events.
    pub snapshot_batch: usize,
    /// Events held back at most; the oldest transaction is forced out beyond it.
    pub max_buffered_events: usize,
    /// Marker transactions waiting at most (e.g. one whose event was dead-lettered).
    pub max_open_txns: usize,
    /// Ids of released transactions remembered to recognise late redeliveries: this many of
    /// each kind (numeric xids, other ids).
    pub remember_released: usize,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            markers: MarkerMode::Auto,
            snapshot_batch: 10_000,
            max_buffered_events: 1_000_000,
            max_open_txns: 10_000,
            remember_released: 100_000,
        }
    }
}

/// Counters of what grouping did, for logs and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupStats {
    /// Change events pushed.
    pub events: u64,
    pub released: u64,
    /// Transactions released before all their events arrived (bounds or `flush`).
    pub forced_incomplete: u64,
    /// Repeated events of a buffered marker transaction, dropped.
    pub duplicates_dropped: u64,
    /// Events of already released transactions, released alone.
    pub late_events: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum TxKey {
    Xid(u64),
    Id(String),
}

/// The ids of released transactions, the last `GroupConfig::remember_released` of each kind.
/// Numeric xids (nearly every id) are kept as `u64`: as [`TxKey`]s (32 B each, twice) the
/// default 100,000 took 9.7 MB (massif), ~10% of the whole engine's heap at 200k orders.
///
/// Only marker grouping asks whether a transaction was released. Until the first marker, the
/// released txId runs are only queued (`xid_fifo`, consecutive repeats of a snapshot's txId
/// once) and the set is built from the queue when markers switch on ([`Released::index`]):
/// a set insertion and removal per transaction was ~2% of the reader thread on a stream
/// without markers, which never reads it.
#[derive(Default)]
struct Released {
    /// `xids` holds exactly the ids of `xid_fifo` (else only the fifo is kept).
    indexed: bool,
    xids: HashSet<u64>,
    xid_fifo: VecDeque<u64>,
    ids: HashSet<String>,
    id_fifo: VecDeque<String>,
}

impl Released {
    fn contains(&self, k: &TxKey) -> bool {
        debug_assert!(self.indexed, "asked before markers switched on");
        match k {
            TxKey::Xid(x) => self.xids.contains(x),
            TxKey::Id(id) => self.ids.contains(id),
        }
    }

    /// Builds the set of xids from the queue; from here on both are kept.
    fn index(&mut self) {
        if self.indexed {
            return;
        }
        self.indexed = true;
        // first occurrences in order, as `remember_in` would have kept them
        for x in std::mem::take(&mut self.xid_fifo) {
            remember_in(&mut self.xids, &mut self.xid_fifo, x, usize::MAX);
        }
    }

    fn remember(&mut self, k: TxKey, limit: usize) {
        match k {
            TxKey::Xid(x) if !self.indexed => {
                if self.xid_fifo.back() != Some(&x) {
                    self.xid_fifo.push_back(x);
                    if self.xid_fifo.len() > limit {
                        self.xid_fifo.pop_front();
                    }
                }
            }
            TxKey::Xid(x) => remember_in(&mut self.xids, &mut self.xid_fifo, x, limit),
            TxKey::Id(id) => remember_in(&mut self.ids, &mut self.id_fifo, id, limit),
        }
    }
}

/// Adds `k` to `set`, forgetting the oldest beyond `limit` (`fifo` holds the insertion order).
fn remember_in<K: std::hash::Hash + Eq + Clone>(
    set: &mut HashSet<K>,
    fifo: &mut VecDeque<K>,
    k: K,
    limit: usize,
) {
    if set.insert(k.clone()) {
        fifo.push_back(k);
        while fifo.len() > limit {
            if let Some(old) = fifo.pop_front() {
                set.remove(&old);
            }
        }
    }
}

fn key_of(id: &str) -> TxKey {
    // Match on the xid: Debezium's `"<txId>:<lsn>"` may name different LSNs on markers and
    // events across versions; the xid is what identifies the transaction.
    match id.split(':').next().and_then(|x| x.parse().ok()) {
        Some(x) => TxKey::Xid(x),
        None => TxKey::Id(id.to_string()),
    }
}

/// Merges the position of a later message into a transaction's position: Kafka offsets per
/// (topic, partition) keep the maximum, file lines and LSNs the maximum, otherwise the later.
pub fn merge_position(into: &mut Position, later: Position) {
    match (into, later) {
        (_, Position::None) => {}
        (Position::Kafka(a), Position::Kafka(b)) => {
            for (t, p, o) in b {
                match a.iter_mut().find(|(t2, p2, _)| *t2 == t && *p2 == p) {
                    Some(e) => e.2 = e.2.max(o),
                    None => a.push((t, p, o)),
                }
            }
        }
        (Position::FileLine(a), Position::FileLine(b)) => *a = (*a).max(b),
        (Position::Postgres(a), Position::Postgres(b)) => *a = (*a).max(b),
        (into, later) => *into = later,
    }
}

struct Building {
    tx_id: Option<u64>,
    changes: Vec<Change>,
    lsn: Option<Lsn>,
    position: Position,
    received_at: Micros,
}

impl Default for Building {
    fn default() -> Self {
        Building {
            tx_id: None,
            // one the engine gave back (see `crate::recycle`)
            changes: crate::recycle::change_vec(),
            lsn: None,
            position: Position::default(),
            received_at: Micros::default(),
        }
    }
}

impl Building {
    fn add(&mut self, change: Change, position: Position, now: Micros) {
        self.lsn = self.lsn.max(change.lsn);
        self.changes.push(change);
        merge_position(&mut self.position, position);
        self.received_at = now;
    }

    fn into_tx(self) -> Transaction {
        Transaction {
            tx_id: self.tx_id,
            lsn: self.lsn,
            received_at: self.received_at,
            position: self.position,
            changes: self.changes,
        }
    }
}

/// A txId run being collected.
struct Run {
    b: Building,
    snapshot: bool,
}

/// A marker transaction being collected.
#[derive(Default)]
struct Pending {
    b: Building,
    /// `total_order` of each change (same index), to sort and dedupe.
    orders: Vec<Option<u64>>,
    seen: HashSet<u64>,
    /// Events expected once END arrived.
    expected: Option<u64>,
    /// Listed in `order` (a marker arrived).
    ordered: bool,
    /// Arrival sequence of its first message, to force out the oldest.
    seq: u64,
    /// Its events that were dead-lettered: they count as arrived.
    dead: u64,
}

impl Pending {
    fn complete(&self) -> bool {
        self.expected
            .is_some_and(|n| self.b.changes.len() as u64 + self.dead >= n)
    }

    fn into_tx(mut self) -> Transaction {
        if self.orders.iter().any(Option::is_some) {
            // Events of several topics arrive interleaved; `total_order` is the source order.
            let mut pairs: Vec<(Option<u64>, Change)> = self
                .orders
                .into_iter()
                .zip(std::mem::take(&mut self.b.changes))
                .collect();
            pairs.sort_by_key(|(o, _)| o.unwrap_or(u64::MAX));
            self.b.changes = pairs.into_iter().map(|(_, c)| c).collect();
        }
        self.b.into_tx()
    }
}

/// Groups parsed messages into transactions. Not thread-safe; one per source.
pub struct TxAssembler {
    cfg: GroupConfig,
    markers: bool,
    run: Option<Run>,
    pending: HashMap<TxKey, Pending>,
    /// Marker transactions in marker (= commit) order.
    order: VecDeque<TxKey>,
    released: Released,
    ready: VecDeque<Transaction>,
    /// Position of messages that belong to no transaction (tombstones, markers of empty
    /// transactions), carried into the next released one so it gets acknowledged.
    carry: Position,
    buffered: usize,
    seq: u64,
    stats: GroupStats,
    /// When the messages now being pushed arrived, if the source knows it for a whole read
    /// (see [`TxAssembler::arrived`]); otherwise each message is timed as it is pushed.
    arrival: Option<Micros>,
}

impl Default for TxAssembler {
    fn default() -> Self {
        TxAssembler::new(GroupConfig::default())
    }
}

impl TxAssembler {
    pub fn new(cfg: GroupConfig) -> TxAssembler {
        let mut released = Released::default();
        if cfg.markers == MarkerMode::On {
            released.index();
        }
        TxAssembler {
            markers: cfg.markers == MarkerMode::On,
            cfg,
            run: None,
            pending: HashMap::new(),
            order: VecDeque::new(),
            released,
            ready: VecDeque::new(),
            carry: Position::None,
            buffered: 0,
            seq: 0,
            stats: GroupStats::default(),
            arrival: None,
        }
    }

    /// The messages pushed from now on arrived at `at` (`None`: time each as it is pushed). A
    /// file source reads thousands of messages at once; reading the clock for each of them
    /// was ~1% of the pipeline's samples in the e2e bench.
    pub fn arrived(&mut self, at: Option<Micros>) {
        self.arrival = at;
    }

    pub fn stats(&self) -> &GroupStats {
        &self.stats
    }

    /// Events held back, waiting for their transaction to complete.
    pub fn buffered_events(&self) -> usize {
        self.buffered + self.run.as_ref().map_or(0, |r| r.b.changes.len())
    }

    /// Feeds one message, in arrival order, with the position to acknowledge once applied.
    pub fn push(&mut self, msg: Parsed, position: Position) {
        self.seq += 1;
        let now = self.arrival.unwrap_or_else(Micros::now);
        match msg {
            Parsed::Tombstone => match self.run.as_mut() {
                Some(r) => merge_position(&mut r.b.position, position),
                None => merge_position(&mut self.carry, position),
            },
            Parsed::Tx(m) => self.push_marker(m, position, now),
            Parsed::Event(e) => {
                self.stats.events += 1;
                if self.markers && e.tx.is_some() {
                    self.push_marked_event(e, position, now);
                } else {
                    self.push_run_event(e, position, now);
                }
            }
        }
        self.enforce_bounds();
    }

    /// Parses a record value and feeds it: a message that fails to parse is recorded in `dl`
    /// (position label `at`) and, when its `transaction.id` can still be read, counted as an
    /// arrived event of that transaction, so the transaction is released without it instead
    /// of waiting for it until a bound forces it out. Returns whether it parsed.
    pub fn push_message(
        &mut self,
        dl: &DeadLetters,
        at: impl std::fmt::Display,
        topic: Option<&str>,
        value: Option<&[u8]>,
        position: Position,
    ) -> bool {
        match dl.parse(at, topic, value) {
            Some(p) => {
                self.push(p, position);
                true
            }
            None => {
                let id = value.and_then(probe_tx_id);
                self.push_dead(id.as_deref(), position);
                false
            }
        }
    }

    /// A message that could not be parsed: its position must still be acknowledged, and with
    /// its transaction id (see [`crate::debezium::probe_tx_id`]) it completes its transaction.
    pub fn push_dead(&mut self, tx_id: Option<&str>, position: Position) {
        self.seq += 1;
        match tx_id {
            Some(id) if self.markers => {
                let key = key_of(id);
                if self.released.contains(&key) && !self.pending.contains_key(&key) {
                    merge_position(&mut self.carry, position);
                    return;
                }
                let seq = self.seq;
                let p = self.pending.entry(key).or_insert_with(|| Pending {
                    seq,
                    ..Pending::default()
                });
                p.dead += 1;
                merge_position(&mut p.b.position, position);
                self.release_front();
            }
            _ => self.push(Parsed::Tombstone, position),
        }
    }

    /// The next complete transaction, in commit order.
    pub fn pop(&mut self) -> Option<Transaction> {
        self.ready.pop_front()
    }

    /// Closes the open txId run (a live source calls this after an idle period: Debezium writes
    /// a transaction's events together, so silence means the run is complete). Marker
    /// transactions keep waiting for their END and events.
    pub fn idle(&mut self) {
        self.close_run();
    }

    /// End of input: releases everything still buffered, complete or not, in commit order (then
    /// transactions whose markers never came, oldest first). Holding them back would lose them
    /// for good; a partial transaction is the best the input allows, and a redelivery of the
    /// rest later is idempotent under the engine's LSN rule.
    pub fn flush(&mut self) {
        self.close_run();
        while let Some(k) = self.order.pop_front() {
            if let Some(p) = self.pending.remove(&k) {
                if !p.complete() {
                    self.stats.forced_incomplete += 1;
                }
                self.release_pending(k, p);
            }
        }
        let mut rest: Vec<(TxKey, Pending)> = self.pending.drain().collect();
        rest.sort_by_key(|(_, p)| p.seq);
        for (k, p) in rest {
            self.stats.forced_incomplete += 1;
            self.release_pending(k, p);
        }
        self.buffered = 0;
        if !matches!(self.carry, Position::None) {
            // Nothing left to attach it to: an empty transaction carries it to the acknowledger.
            let position = std::mem::take(&mut self.carry);
            self.emit(Transaction {
                position,
                received_at: Micros::now(),
                ..Transaction::default()
            });
        }
    }

    fn emit(&mut self, mut tx: Transaction) {
        if !matches!(self.carry, Position::None) {
            let mut p = std::mem::take(&mut self.carry);
            merge_position(&mut p, std::mem::take(&mut tx.position));
            tx.position = p;
        }
        self.stats.released += 1;
        self.ready.push_back(tx);
    }

    fn close_run(&mut self) {
        if let Some(r) = self.run.take() {
            if let Some(x) = r.b.tx_id {
                self.remember(TxKey::Xid(x));
            }
            self.emit(r.b.into_tx());
        }
    }

    fn push_run_event(&mut self, e: Event, position: Position, now: Micros) {
        if let Some(r) = &self.run {
            let same = e.tx_id.is_some() && r.b.tx_id == e.tx_id;
            let full = r.snapshot && r.b.changes.len() >= self.cfg.snapshot_batch;
            if !same || full {
                self.close_run();
            }
        }
        if e.tx_id.is_none() {
            let mut b = Building::default();
            b.add(e.change, position, now);
            self.emit(b.into_tx());
            return;
        }
        let run = self.run.get_or_insert_with(|| Run {
            b: Building {
                tx_id: e.tx_id,
                ..Building::default()
            },
            snapshot: e.snapshot,
        });
        run.snapshot &= e.snapshot;
        run.b.add(e.change, position, now);
    }

    fn push_marked_event(&mut self, e: Event, position: Position, now: Micros) {
        let Some(tx) = e.tx else { return };
        // A txId run (e.g. the snapshot's last batch) ends where marked transactions begin, so
        // it is released before them.
        self.close_run();
        let key = key_of(&tx.id);
        if self.released.contains(&key) && !self.pending.contains_key(&key) {
            self.stats.late_events += 1;
            let mut b = Building {
                tx_id: e.tx_id,
                ..Building::default()
            };
            b.add(e.change, position, now);
            self.emit(b.into_tx());
            return;
        }
        let seq = self.seq;
        let p = self.pending.entry(key.clone()).or_insert_with(|| Pending {
            seq,
            ..Pending::default()
        });
        if let Some(o) = tx.total_order {
            if !p.seen.insert(o) {
                self.stats.duplicates_dropped += 1;
                merge_position(&mut p.b.position, position);
                return;
            }
        }
        if p.b.tx_id.is_none() {
            p.b.tx_id = e.tx_id.or(match &key {
                TxKey::Xid(x) => Some(*x),
                TxKey::Id(_) => None,
            });
        }
        p.orders.push(tx.total_order);
        p.b.add(e.change, position, now);
        self.buffered += 1;
        self.release_front();
    }

    fn push_marker(&mut self, m: TxMarker, position: Position, now: Micros) {
        if self.cfg.markers == MarkerMode::Off {
            merge_position(&mut self.carry, position);
            return;
        }
        if !self.markers {
            // First marker in Auto mode: events from here on group by their transaction block.
            self.markers = true;
            self.released.index();
        }
        self.close_run();
        let key = key_of(&m.id);
        if self.released.contains(&key) && !self.pending.contains_key(&key) {
            // Marker of a transaction already released (a redelivery, or its events were
            // grouped by txId before markers switched on): nothing more to wait for.
            merge_position(&mut self.carry, position);
            return;
        }
        let seq = self.seq;
        let p = self.pending.entry(key.clone()).or_insert_with(|| Pending {
            seq,
            ..Pending::default()
        });
        if p.b.tx_id.is_none() {
            p.b.tx_id = m.tx_id();
        }
        merge_position(&mut p.b.position, position);
        p.b.received_at = now;
        if m.status == TxStatus::End {
            // Count only tables we capture: the connector may capture others we never receive.
            let ours: Vec<u64> = m
                .data_collections
                .iter()
                .filter(|(dc, _)| Table::from_name(dc).is_some())
                .map(|(_, n)| *n)
                .collect();
            p.expected = Some(if m.data_collections.is_empty() {
                m.event_count.unwrap_or(0)
            } else {
                ours.iter().sum()
            });
            p.b.lsn = p.b.lsn.max(m.lsn());
        }
        if !p.ordered {
            p.ordered = true;
            self.order.push_back(key);
        }
        self.release_front();
    }

    /// Releases complete marker transactions from the front of the commit order.
    fn release_front(&mut self) {
        while let Some(k) = self.order.front() {
            if !self.pending.get(k).is_some_and(Pending::complete) {
                break;
            }
            let Some(k) = self.order.pop_front() else {
                break;
            };
            if let Some(p) = self.pending.remove(&k) {
                self.release_pending(k, p);
            }
        }
    }

    fn release_pending(&mut self, k: TxKey, p: Pending) {
        self.buffered = self.buffered.saturating_sub(p.b.changes.len());
        self.remember(k);
        self.emit(p.into_tx());
    }

    fn remember(&mut self, k: TxKey) {
        self.released.remember(k, self.cfg.remember_released);
    }

    fn enforce_bounds(&mut self) {
        if let Some(r) = &self.run {
            if r.b.changes.len() >= self.cfg.max_buffered_events {
                tracing::warn!(tx_id = ?r.b.tx_id, events = r.b.changes.len(),
                    "transaction exceeds the grouping bound; releasing it in parts");
                self.stats.forced_incomplete += 1;
                self.close_run();
            }
        }
        while self.buffered > self.cfg.max_buffered_events
            || self.order.len() > self.cfg.max_open_txns
        {
            let victim = match self.order.pop_front() {
                Some(k) => k,
                None => match self.pending.iter().min_by_key(|(_, p)| p.seq) {
                    Some((k, _)) => k.clone(),
                    None => break,
                },
            };
            if let Some(p) = self.pending.remove(&victim) {
                tracing::warn!(tx = ?victim, events = p.b.changes.len(), expected = ?p.expected,
                    "releasing an incomplete transaction: grouping bound reached");
                self.stats.forced_incomplete += 1;
                self.release_pending(victim, p);
            }
            self.release_front();
        }
    }
}
