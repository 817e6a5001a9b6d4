//! The message shapes: a single-pass visitor that splits a record into the envelope fields it
//! knows and the raw columns it does not, then interprets the result as an envelope, a
//! flattened row or a transaction marker.

use super::rows::{decode_row, Ctx};
use super::{table_of, ParseError};
use crate::event::{Event, Parsed, TxBlock, TxMarker, TxStatus};
use crate::types::{Change, ChangeKind, Lsn, Op, Table};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// A string borrowed from the input when it has no escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Str<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Str<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// A JSON value's exact text (what [`RawValue::get`] gives), borrowed from the message. Both
/// parsers produce it: serde_json through `&RawValue`, the fast scanner (`scan.rs`) directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raw<'a>(pub(crate) &'a str);

impl<'a> Raw<'a> {
    /// The value's JSON text.
    pub fn get(self) -> &'a str {
        self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Raw<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&'de RawValue>::deserialize(d).map(|r| Raw(r.get()))
    }
}

/// A JSON object's members as raw text, in input order: a row image before the table decoder
/// turns it into typed columns. Lookups scan linearly — rows have ≤ 16 columns.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RawRow<'a> {
    pub(super) cols: Vec<(Str<'a>, Raw<'a>)>,
}

/// `std::str::from_utf8`, with a faster answer for pure ASCII (Debezium's JSON nearly always
/// is): 32 bytes a step by SSE2 (in every x86-64 CPU), where the standard check, word by word,
/// was ~3% of the reader's instructions. Anything else goes to the standard check.
fn utf8(bytes: &[u8]) -> Result<&str, std::str::Utf8Error> {
    if all_ascii(bytes) {
        // SAFETY: every byte is below 0x80, and ASCII text is valid UTF-8.
        return Ok(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    std::str::from_utf8(bytes)
}

/// Whether every byte is below 0x80.
fn all_ascii(bytes: &[u8]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128};
        let mut chunks = bytes.chunks_exact(32);
        for c in &mut chunks {
            // SAFETY: `c` holds 32 bytes, read by two unaligned 16-byte loads (which
            // `loadu` allows); SSE2 is part of x86-64's baseline, so always available.
            let high_bits = unsafe {
                let p = c.as_ptr();
                let a = _mm_loadu_si128(p.cast());
                let b = _mm_loadu_si128(p.add(16).cast());
                _mm_movemask_epi8(_mm_or_si128(a, b))
            };
            if high_bits != 0 {
                return false;
            }
        }
        chunks.remainder().is_ascii()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        bytes.is_ascii()
    }
}

/// `a == b` for column names. A row's columns are looked up by name one after another, and
/// many names share a length (`order_id`, `quantity`): there `==` called `memcmp` for each,
/// ~5% of the reader's instructions; [`super::scan::same_bytes`] decides without a call.
#[inline]
fn same_name(a: &str, b: &str) -> bool {
    super::scan::same_bytes(a.as_bytes(), b.as_bytes())
}

impl<'a> RawRow<'a> {
    /// The value of member `at` when its name is `name` (a position hint: see `rows::Cols`).
    pub(crate) fn get_at(&self, at: usize, name: &str) -> Option<Raw<'a>> {
        let (k, v) = self.cols.get(at)?;
        same_name(&k.0, name).then_some(*v)
    }

    /// The raw JSON text of a member, `None` when absent.
    pub fn get(&self, name: &str) -> Option<Raw<'a>> {
        self.cols
            .iter()
            .find(|(k, _)| same_name(&k.0, name))
            .map(|(_, v)| *v)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.cols.iter().map(|(k, _)| &*k.0)
    }

    pub fn len(&self) -> usize {
        self.cols.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cols.is_empty()
    }

    /// Parses a JSON object's text (e.g. for tests and tools inspecting foreign tables).
    pub fn from_json(text: &'a str) -> Result<RawRow<'a>, ParseError> {
        serde_json::from_str(text).map_err(|e| ParseError::MalformedJson(e.to_string()))
    }
}

struct RowVisitor;

impl<'de> Visitor<'de> for RowVisitor {
    type Value = RawRow<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a row object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut cols = Vec::with_capacity(map.size_hint().unwrap_or(12));
        while let Some(k) = map.next_key::<Str<'de>>()? {
            let v: Raw<'de> = map.next_value()?;
            cols.push((k, v));
        }
        Ok(RawRow { cols })
    }
}

impl<'de> Deserialize<'de> for RawRow<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(RowVisitor)
    }
}

/// `source` block fields we use; the rest (`version`, `connector`, `sequence`, `ts_us`, …) is
/// skipped without being materialised.
#[derive(Deserialize, Default, Debug, PartialEq)]
pub(super) struct Source<'a> {
    #[serde(borrow)]
    pub(super) table: Option<Str<'a>>,
    #[serde(borrow)]
    pub(super) lsn: Option<Raw<'a>>,
    #[serde(rename = "txId", borrow)]
    pub(super) tx_id: Option<Raw<'a>>,
    #[serde(borrow)]
    pub(super) ts_ms: Option<Raw<'a>>,
    #[serde(borrow)]
    pub(super) snapshot: Option<Raw<'a>>,
}

#[derive(Deserialize, Debug, PartialEq)]
pub(super) struct TxBlockRaw<'a> {
    #[serde(borrow)]
    pub(super) id: Str<'a>,
    pub(super) total_order: Option<u64>,
    pub(super) data_collection_order: Option<u64>,
}

/// One record, split in a single pass. `extras` holds every member that is not an envelope
/// field: the columns of a flattened row, the `__*` metadata, or a transaction marker's fields.
#[derive(Default, Debug, PartialEq)]
pub(super) struct Msg<'a> {
    pub(super) schema: Option<Raw<'a>>,
    /// `Some(None)` is `"payload": null` (a tombstone in wrapped form).
    pub(super) payload: Option<Option<Box<Msg<'a>>>>,
    pub(super) before: Option<Raw<'a>>,
    pub(super) after: Option<RawRow<'a>>,
    pub(super) has_envelope_key: bool,
    pub(super) source: Option<Source<'a>>,
    pub(super) op: Option<Str<'a>>,
    pub(super) transaction: Option<TxBlockRaw<'a>>,
    pub(super) extras: RawRow<'a>,
}

struct MsgVisitor;

impl<'de> Visitor<'de> for MsgVisitor {
    type Value = Msg<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Debezium message object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut m = Msg::default();
        while let Some(k) = map.next_key::<Str<'de>>()? {
            match &*k.0 {
                "schema" => m.schema = Some(map.next_value()?),
                "payload" => m.payload = Some(map.next_value::<Option<Msg<'de>>>()?.map(Box::new)),
                "before" => {
                    m.has_envelope_key = true;
                    m.before = map.next_value::<Option<Raw<'de>>>()?;
                }
                "after" => {
                    m.has_envelope_key = true;
                    m.after = map.next_value::<Option<RawRow<'de>>>()?;
                }
                "source" => {
                    m.has_envelope_key = true;
                    m.source = map.next_value::<Option<Source<'de>>>()?;
                }
                "op" => {
                    m.has_envelope_key = true;
                    m.op = map.next_value::<Option<Str<'de>>>()?;
                }
                "transaction" => {
                    m.transaction = map.next_value::<Option<TxBlockRaw<'de>>>()?;
                }
                "ts_ms" | "ts_us" | "ts_ns" => {
                    map.next_value::<IgnoredAny>()?;
                }
                _ => {
                    let v: Raw<'de> = map.next_value()?;
                    m.extras.cols.push((k, v));
                }
            }
        }
        Ok(m)
    }
}

impl<'de> Deserialize<'de> for Msg<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(MsgVisitor)
    }
}

pub(super) fn parse_bytes(topic: Option<&str>, bytes: &[u8]) -> Result<Parsed, ParseError> {
    // Parsing from `&str` validates UTF-8 once for the whole message; from a byte slice
    // serde_json validates again every string and raw value it borrows, which cost more than the
    // rest of the tokenizing. Invalid UTF-8 keeps the byte path, so what is accepted (e.g. bad
    // bytes inside a skipped field) and every error message stay as they were.
    //
    // The hand-written scanner takes the common shapes; whatever it is unsure of goes to
    // serde_json, which alone decides what else is accepted and how errors read.
    let mut slot = Msg::default();
    let present = match utf8(bytes) {
        Ok(text) => match super::scan::message_into(text, &mut slot) {
            Some(present) => present,
            None => {
                let parsed: Option<Msg> = serde_json::from_str(text).map_err(malformed)?;
                fill(&mut slot, parsed)
            }
        },
        Err(_) => {
            let parsed: Option<Msg> = serde_json::from_slice(bytes).map_err(malformed)?;
            fill(&mut slot, parsed)
        }
    };
    if !present {
        return Ok(Parsed::Tombstone);
    }
    let mut msg = &mut slot;
    let mut schema = msg.schema;
    // The `{schema, payload}` wrapper: the envelope (or flattened row) is the payload.
    let mut inner;
    if let Some(payload) = msg.payload.take() {
        if !msg.has_envelope_key {
            match payload {
                None => return Ok(Parsed::Tombstone),
                Some(p) => {
                    inner = p;
                    msg = &mut *inner;
                    if msg.schema.is_some() {
                        schema = msg.schema;
                    }
                }
            }
        }
    }
    let is_tx_topic = topic.is_some_and(|t| t.ends_with(".transaction"));
    if is_tx_topic || (!msg.has_envelope_key && looks_like_marker(&msg.extras)) {
        return parse_marker(&msg.extras).map(Parsed::Tx);
    }
    if msg.has_envelope_key {
        parse_envelope(topic, msg, schema).map(Parsed::Event)
    } else {
        parse_flattened(topic, msg, schema).map(Parsed::Event)
    }
}

fn malformed(e: serde_json::Error) -> ParseError {
    ParseError::MalformedJson(e.to_string())
}

/// What serde_json read, into the slot the fast path may have partly filled; whether it is a
/// message (not `null`).
fn fill<'a>(slot: &mut Msg<'a>, parsed: Option<Msg<'a>>) -> bool {
    let present = parsed.is_some();
    *slot = parsed.unwrap_or_default();
    present
}

/// A record of the transaction topic read without its topic (e.g. from a file): Debezium always
/// writes `status`, `id`, `event_count` and `data_collections`.
fn looks_like_marker(extras: &RawRow) -> bool {
    matches!(
        extras.get("status").map(|r| r.get()),
        Some("\"BEGIN\"" | "\"END\"")
    ) && extras.get("id").is_some()
        && (extras.get("event_count").is_some() || extras.get("data_collections").is_some())
}

#[derive(Deserialize)]
struct DataCollection<'a> {
    #[serde(borrow)]
    data_collection: Str<'a>,
    event_count: u64,
}

fn parse_marker(f: &RawRow) -> Result<TxMarker, ParseError> {
    let field = |name: &str| {
        f.get(name)
            .ok_or_else(|| ParseError::missing("transaction", name))
    };
    let wrong = |column: &str, e: serde_json::Error| ParseError::WrongType {
        table: "transaction".into(),
        column: column.into(),
        detail: e.to_string(),
    };
    let status: Str =
        serde_json::from_str(field("status")?.get()).map_err(|e| wrong("status", e))?;
    let status = match &*status.0 {
        "BEGIN" => TxStatus::Begin,
        "END" => TxStatus::End,
        other => return Err(ParseError::UnknownOp(other.chars().take(64).collect())),
    };
    let id: Str = serde_json::from_str(field("id")?.get()).map_err(|e| wrong("id", e))?;
    let event_count = match f.get("event_count") {
        Some(r) => {
            serde_json::from_str::<Option<u64>>(r.get()).map_err(|e| wrong("event_count", e))?
        }
        None => None,
    };
    let data_collections = match f.get("data_collections") {
        Some(r) => serde_json::from_str::<Option<Vec<DataCollection>>>(r.get())
            .map_err(|e| wrong("data_collections", e))?
            .unwrap_or_default()
            .into_iter()
            .map(|d| (d.data_collection.0.into_owned(), d.event_count))
            .collect(),
        None => Vec::new(),
    };
    let ts_ms = match f.get("ts_ms") {
        Some(r) => serde_json::from_str::<Option<i64>>(r.get()).map_err(|e| wrong("ts_ms", e))?,
        None => None,
    };
    Ok(TxMarker {
        status,
        id: id.0.into_owned(),
        event_count,
        data_collections,
        ts_ms,
    })
}

fn parse_op(op: &str) -> Result<Op, ParseError> {
    Ok(match op {
        "c" => Op::Create,
        "u" => Op::Update,
        "d" => Op::Delete,
        "r" => Op::Read,
        "t" => Op::Truncate,
        other => return Err(ParseError::UnknownOp(other.chars().take(64).collect())),
    })
}

/// A metadata number (`lsn`, `txId`, `ts_ms`): a JSON number, `null`, or — leniently — a string.
fn meta_u64(raw: Option<Raw>, what: &str) -> Result<Option<u64>, ParseError> {
    let Some(raw) = raw else { return Ok(None) };
    let t = raw.get();
    if t == "null" {
        return Ok(None);
    }
    if let Some(n) = plain_u64(t) {
        return Ok(Some(n));
    }
    let t = t.trim_matches('"');
    t.parse::<u64>()
        .map(Some)
        .map_err(|_| ParseError::WrongType {
            table: "source".into(),
            column: what.into(),
            detail: format!("expected an unsigned integer, got {}", clip(raw.get())),
        })
}

/// The common case of a metadata number: 1 to 19 plain digits (always below 10^19, so no
/// overflow), read without trimming, splitting or `parse`'s generality (every event has two).
/// `None` leaves the text to the general path, which accepts or words the error.
fn plain_u64(t: &str) -> Option<u64> {
    let b = t.as_bytes();
    if b.is_empty() || b.len() > 19 {
        return None;
    }
    b.iter().try_fold(0u64, |n, &c| {
        c.is_ascii_digit().then(|| n * 10 + u64::from(c - b'0'))
    })
}

fn meta_lsn(raw: Option<Raw>, what: &str) -> Result<Option<Lsn>, ParseError> {
    let Some(raw) = raw else { return Ok(None) };
    let t = raw.get();
    if t == "null" {
        return Ok(None);
    }
    if let Some(n) = plain_u64(t) {
        return Ok(Some(Lsn(n)));
    }
    // Debezium prints `source.lsn` as a number; `16/B374D848` text is accepted too.
    t.trim_matches('"')
        .parse::<Lsn>()
        .map(Some)
        .map_err(|e| ParseError::WrongType {
            table: "source".into(),
            column: what.into(),
            detail: e,
        })
}

fn meta_i64(raw: Option<Raw>) -> Option<i64> {
    raw.and_then(|r| r.get().trim_matches('"').parse().ok())
}

/// `snapshot` is `"true"`, `"last"`, `"first"`, `"incremental"`, a boolean, or `"false"`.
fn meta_snapshot(raw: Option<Raw>) -> bool {
    match raw.map(|r| r.get()) {
        None | Some("null" | "false" | "\"false\"") => false,
        Some(_) => true,
    }
}

pub(crate) fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

fn resolve_table(named: Option<&str>, topic: Option<&str>) -> Result<Table, ParseError> {
    match (named, topic) {
        (Some(n), _) => table_of(n),
        (None, Some(t)) => table_of(t),
        (None, None) => Err(ParseError::UnknownTable(
            "no source.table, __table or topic".into(),
        )),
    }
}

fn parse_envelope(
    topic: Option<&str>,
    msg: &mut Msg,
    schema: Option<Raw>,
) -> Result<Event, ParseError> {
    let op_text = msg
        .op
        .as_ref()
        .ok_or_else(|| ParseError::missing("envelope", "op"))?;
    let op = parse_op(&op_text.0)?;
    let no_source = Source::default();
    let source = msg.source.as_ref().unwrap_or(&no_source);
    let table = resolve_table(source.table.as_ref().map(|s| &*s.0), topic)?;
    let lsn = meta_lsn(source.lsn, "lsn")?;
    let tx_id = meta_u64(source.tx_id, "txId")?;
    let kind = match op {
        Op::Create | Op::Update | Op::Read => {
            let after = msg
                .after
                .as_ref()
                .ok_or_else(|| ParseError::missing(table, "after"))?;
            let mut ctx = Ctx::new(table, schema);
            let (row, unavailable) = decode_row(table, after, &mut ctx)?;
            ChangeKind::Upsert { row, unavailable }
        }
        Op::Delete => {
            // `before` is used for the key only: without REPLICA IDENTITY FULL it holds nothing else.
            let before = msg
                .before
                .ok_or_else(|| ParseError::missing(table, "before"))?;
            let before = RawRow::from_json(before.get())?;
            let ctx = Ctx::new(table, schema);
            ChangeKind::Delete {
                key: ctx.key(&before)?,
            }
        }
        Op::Truncate => ChangeKind::Truncate,
    };
    Ok(Event {
        change: Change {
            table,
            op,
            lsn,
            kind,
        },
        tx_id,
        source_ts_ms: meta_i64(source.ts_ms),
        snapshot: meta_snapshot(source.snapshot),
        tx: msg.transaction.take().map(|t| TxBlock {
            id: t.id.0.into_owned(),
            total_order: t.total_order,
            data_collection_order: t.data_collection_order,
        }),
    })
}

/// `ExtractNewRecordState` output: the row plus `__op`, `__table`, `__lsn`, `__deleted` (and
/// `__source_*` when `add.fields` names source fields).
fn parse_flattened(
    topic: Option<&str>,
    msg: &mut Msg,
    schema: Option<Raw>,
) -> Result<Event, ParseError> {
    let row = &msg.extras;
    let first = |a: &str, b: &str| row.get(a).or_else(|| row.get(b));
    let table_name: Option<Str> = match first("__table", "__source_table") {
        Some(r) if r.get() != "null" => {
            Some(
                serde_json::from_str(r.get()).map_err(|e| ParseError::WrongType {
                    table: "flattened".into(),
                    column: "__table".into(),
                    detail: e.to_string(),
                })?,
            )
        }
        _ => None,
    };
    let table = resolve_table(table_name.as_ref().map(|s| &*s.0), topic)?;
    let op = match first("__op", "__source_op").map(|r| r.get()) {
        None | Some("null") => Op::Update,
        Some(t) => parse_op(t.trim_matches('"'))?,
    };
    let deleted = matches!(
        row.get("__deleted").map(|r| r.get()),
        Some("\"true\"" | "true")
    );
    let lsn = meta_lsn(first("__lsn", "__source_lsn"), "__lsn")?;
    let tx_id = meta_u64(first("__source_txId", "__txId"), "__source_txId")?;
    let mut ctx = Ctx::new(table, schema);
    let (op, kind) = if deleted || op == Op::Delete {
        (Op::Delete, ChangeKind::Delete { key: ctx.key(row)? })
    } else if op == Op::Truncate {
        (op, ChangeKind::Truncate)
    } else {
        let (row, unavailable) = decode_row(table, row, &mut ctx)?;
        (op, ChangeKind::Upsert { row, unavailable })
    };
    Ok(Event {
        change: Change {
            table,
            op,
            lsn,
            kind,
        },
        tx_id,
        source_ts_ms: meta_i64(first("__source_ts_ms", "__ts_ms")),
        snapshot: meta_snapshot(row.get("__source_snapshot")),
        tx: msg.transaction.take().map(|t| TxBlock {
            id: t.id.0.into_owned(),
            total_order: t.total_order,
            data_collection_order: t.data_collection_order,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `utf8` answers as `std::str::from_utf8` does: random bytes, mostly ASCII with a
    /// non-ASCII byte (valid or not) at any place, at lengths around the 32-byte step.
    #[test]
    fn utf8_is_the_standard_check() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for _ in 0..20_000 {
            let len = rng.random_range(0..100);
            let mut b: Vec<u8> = (0..len).map(|_| rng.random_range(0x20..0x7f)).collect();
            if len > 0 && rng.random_bool(0.5) {
                let at = rng.random_range(0..len);
                match rng.random_range(0..3) {
                    0 => b[at] = 0x80,
                    1 => b[at] = 0xff,
                    _ => {
                        let e = "é".as_bytes();
                        b.splice(at..at + 1, e.iter().copied());
                    }
                }
            }
            assert_eq!(utf8(&b), std::str::from_utf8(&b), "{b:?}");
            assert_eq!(all_ascii(&b), b.is_ascii(), "{b:?}");
        }
    }

    /// `same_name` is `==` for every length around its word boundaries, for equal names and
    /// names differing in any one byte.
    #[test]
    fn same_name_is_string_equality() {
        for n in 0..=24 {
            let a: String = (0..n).map(|i| (b'a' + (i % 26) as u8) as char).collect();
            assert!(same_name(&a, &a.clone()), "{a}");
            for at in 0..n {
                let mut b = a.clone().into_bytes();
                b[at] = b'_';
                let b = String::from_utf8(b).unwrap();
                assert!(!same_name(&a, &b), "{a} {b}");
            }
            assert!(!same_name(&a, &format!("{a}x")));
        }
        assert!(!same_name("payment_id", "product_id"));
        assert!(same_name("order_item_id", "order_item_id"));
    }

    /// The fast path reads exactly what the general one does, and leaves everything else to it.
    #[test]
    fn plain_u64_agrees_with_the_general_path() {
        let cases = [
            "0",
            "7",
            "0001",
            "18446744073709551615",
            "9999999999999999999",
            "10000000000000000000",
            "",
            "-1",
            "+1",
            "1.0",
            "1e3",
            "\"42\"",
            " 42",
            "16/B374D848",
            "null",
            "4٢",
        ];
        for t in cases {
            if let Some(n) = plain_u64(t) {
                assert_eq!(t.parse::<u64>(), Ok(n), "{t:?}");
                assert_eq!(t.parse::<Lsn>(), Ok(Lsn(n)), "{t:?}");
            } else {
                assert!(
                    t.len() > 19 || !t.bytes().all(|c| c.is_ascii_digit()) || t.is_empty(),
                    "{t:?} should take the fast path"
                );
            }
            let raw = Some(Raw(t));
            let general = t.trim_matches('"').parse::<u64>().ok();
            match meta_u64(raw, "txId") {
                Ok(got) => assert_eq!(got, if t == "null" { None } else { general }, "{t:?}"),
                Err(_) => assert_eq!(general, None, "{t:?}"),
            }
        }
        let mut x: u64 = 1;
        for _ in 0..10_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let t = (x >> (x % 64)).to_string();
            match plain_u64(&t) {
                Some(n) => assert_eq!(t.parse(), Ok(n), "{t:?}"),
                None => assert_eq!(t.len(), 20, "{t:?} should take the fast path"),
            }
        }
    }
}
