//! What one parsed source message is, before transaction grouping: a row change with its
//! transaction metadata, a transaction boundary (Debezium's transaction topic, pgoutput's
//! Begin/Commit), or something to skip (a Kafka tombstone).

use crate::types::{Change, Lsn};
use serde::{Deserialize, Serialize};

/// Debezium's per-event `transaction` block (`provide.transaction.metadata=true`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxBlock {
    /// `"<txId>:<lsn>"` for Postgres.
    pub id: String,
    pub total_order: Option<u64>,
    pub data_collection_order: Option<u64>,
}

/// A row change with everything the grouping needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub change: Change,
    /// `source.txId` (Postgres xid).
    pub tx_id: Option<u64>,
    /// `source.ts_ms`: commit time at the source, milliseconds.
    pub source_ts_ms: Option<i64>,
    /// `source.snapshot` is true/"true"/"last"/"first" (initial snapshot read).
    pub snapshot: bool,
    pub tx: Option<TxBlock>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxStatus {
    Begin,
    End,
}

/// A record of Debezium's `<prefix>.transaction` topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxMarker {
    pub status: TxStatus,
    /// Same form as [`TxBlock::id`].
    pub id: String,
    /// On END: total events of the transaction.
    pub event_count: Option<u64>,
    /// On END: `(data_collection, event_count)`, e.g. `("public.orders", 1)`.
    pub data_collections: Vec<(String, u64)>,
    pub ts_ms: Option<i64>,
}

impl TxMarker {
    /// The numeric xid in the id's `"<txId>:<lsn>"` form.
    pub fn tx_id(&self) -> Option<u64> {
        self.id.split(':').next().and_then(|x| x.parse().ok())
    }

    /// The LSN in the id's `"<txId>:<lsn>"` form.
    pub fn lsn(&self) -> Option<Lsn> {
        self.id.split_once(':').and_then(|(_, l)| l.parse().ok())
    }
}

/// One parsed message.
#[allow(clippy::large_enum_variant)] // events dominate; boxing them would allocate per event
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Parsed {
    Event(Event),
    Tx(TxMarker),
    /// A Kafka tombstone (null value after a delete): nothing to do, by design.
    Tombstone,
}
