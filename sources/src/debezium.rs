//! Debezium JSON → [`Parsed`]: the envelope (with or without the `{schema, payload}` wrapper),
//! the flattened `ExtractNewRecordState` form, transaction-topic markers and tombstones.
//!
//! Owns the message shapes and the exact decoding of every column encoding SPEC §3 lists. Must
//! not group transactions (that is [`crate::group`]), keep state across messages (except a small
//! per-thread cache of parsed schema blocks) or trust `before` beyond a delete's key.
//!
//! Performance: one pass over the message into borrowed structs — a hand-written scanner for
//! the shapes Debezium writes (`scan.rs`), `serde_json` for anything it is unsure of, which
//! alone decides what else is accepted and how errors read; column values stay raw JSON text
//! ([`Raw`]) until the table decoder converts them, so no `serde_json::Value` tree is ever
//! built. The `schema` block is parsed only when a column needs
//! it (a precise decimal or an epoch timestamp), and then cached per thread by its text.

mod envelope;
mod rows;
mod scan;
mod schema;

use crate::event::Parsed;
use crate::types::Table;

pub use envelope::{Raw, RawRow};
pub use rows::{decode_money, decode_row_json};

/// Larger messages are dead-lettered without parsing: a row of our schema is a few KiB at most.
pub const MAX_MESSAGE_BYTES: usize = 16 << 20;

/// Debezium's placeholder for an unchanged TOASTed column.
pub const UNAVAILABLE_VALUE: &str = "__debezium_unavailable_value";

/// Why a message could not become a [`Parsed`]. Dead letters carry it; [`ParseError::reason`] is
/// the stable metrics label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("unknown op {0:?}")]
    UnknownOp(String),
    #[error("{table}: missing field {field:?}")]
    MissingField { table: String, field: String },
    #[error("{table}.{column}: wrong type: {detail}")]
    WrongType {
        table: String,
        column: String,
        detail: String,
    },
    #[error("{table}.{column}: bad decimal: {detail}")]
    BadDecimal {
        table: String,
        column: String,
        detail: String,
    },
    #[error("{table}.{column}: bad timestamp: {detail}")]
    BadTimestamp {
        table: String,
        column: String,
        detail: String,
    },
    #[error("unknown table {0:?}")]
    UnknownTable(String),
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    Oversized { len: usize, max: usize },
}

impl ParseError {
    /// Stable label for metrics and dead-letter records.
    pub fn reason(&self) -> &'static str {
        match self {
            ParseError::MalformedJson(_) => "malformed_json",
            ParseError::UnknownOp(_) => "unknown_op",
            ParseError::MissingField { .. } => "missing_field",
            ParseError::WrongType { .. } => "wrong_type",
            ParseError::BadDecimal { .. } => "bad_decimal",
            ParseError::BadTimestamp { .. } => "bad_timestamp",
            ParseError::UnknownTable(_) => "unknown_table",
            ParseError::Oversized { .. } => "oversized",
        }
    }

    /// Every label [`ParseError::reason`] can return.
    pub const REASONS: [&'static str; 8] = [
        "malformed_json",
        "unknown_op",
        "missing_field",
        "wrong_type",
        "bad_decimal",
        "bad_timestamp",
        "unknown_table",
        "oversized",
    ];

    pub(crate) fn missing(table: impl ToString, field: &str) -> ParseError {
        ParseError::MissingField {
            table: table.to_string(),
            field: field.to_string(),
        }
    }
}

/// Parses one Kafka record value. `topic` names the table when the payload does not
/// (`source.table`, `__table`), and marks transaction-topic records (`….transaction`).
/// `None`, an empty value or the JSON text `null` is a tombstone.
pub fn parse(topic: Option<&str>, value: Option<&[u8]>) -> Result<Parsed, ParseError> {
    let bytes = match value {
        Some(v) if !v.is_empty() => v,
        _ => return Ok(Parsed::Tombstone),
    };
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(ParseError::Oversized {
            len: bytes.len(),
            max: MAX_MESSAGE_BYTES,
        });
    }
    envelope::parse_bytes(topic, bytes)
}

/// The `transaction.id` of a message that failed to parse, when the JSON is sound enough to
/// find it: grouping counts the failed event as arrived, so its transaction is not held back
/// waiting for an event that will never come.
pub fn probe_tx_id(value: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Tx {
        id: String,
    }
    #[derive(serde::Deserialize)]
    struct Inner<'a> {
        #[serde(borrow, default)]
        transaction: Option<&'a serde_json::value::RawValue>,
    }
    #[derive(serde::Deserialize)]
    struct Top<'a> {
        #[serde(borrow, default)]
        payload: Option<Inner<'a>>,
        #[serde(borrow, default)]
        transaction: Option<&'a serde_json::value::RawValue>,
    }
    if value.len() > MAX_MESSAGE_BYTES {
        return None;
    }
    let top: Top = serde_json::from_slice(value).ok()?;
    let raw = top
        .transaction
        .or(top.payload.and_then(|p| p.transaction))?;
    serde_json::from_str::<Tx>(raw.get()).ok().map(|t| t.id)
}

/// The table a topic (`<prefix>.public.<table>`) or a `source.table` names.
pub fn table_of(name: &str) -> Result<Table, ParseError> {
    Table::from_name(name).ok_or_else(|| ParseError::UnknownTable(name.chars().take(200).collect()))
}
