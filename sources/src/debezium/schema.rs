//! The parts of a Connect `schema` block the column decoders need: each column's decimal scale
//! and timestamp encoding. Parsed lazily and cached per thread by the block's exact text
//! (one topic sends the same schema text with every record).

use super::envelope::Raw;
use serde::Deserialize;
use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;

/// How a column is encoded, as far as decoding cares.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum ColKind {
    /// `org.apache.kafka.connect.data.Decimal`: base64 unscaled bytes at this scale.
    Decimal {
        scale: i64,
    },
    /// `io.debezium.data.VariableScaleDecimal`: `{scale, value}`.
    VariableScale,
    /// A plain string (decimal.handling.mode=string, ZonedTimestamp, …).
    Text,
    /// `io.debezium.time.Timestamp` / Connect `Timestamp`: epoch milliseconds.
    EpochMillis,
    /// `io.debezium.time.MicroTimestamp`: epoch microseconds.
    EpochMicros,
    /// `io.debezium.time.NanoTimestamp`: epoch nanoseconds.
    EpochNanos,
    Other,
}

#[derive(Debug, Default)]
pub(crate) struct SchemaInfo {
    cols: Vec<(String, ColKind)>,
}

impl SchemaInfo {
    pub(crate) fn kind(&self, column: &str) -> Option<ColKind> {
        self.cols.iter().find(|(c, _)| c == column).map(|(_, k)| *k)
    }
}

#[derive(Deserialize)]
struct Node<'a> {
    #[serde(rename = "type", borrow, default)]
    ty: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    field: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    fields: Option<Vec<Node<'a>>>,
    #[serde(borrow, default)]
    parameters: Option<Params<'a>>,
}

#[derive(Deserialize)]
struct Params<'a> {
    #[serde(borrow, default)]
    scale: Option<Raw<'a>>,
}

fn kind_of(n: &Node) -> ColKind {
    match n.name.as_deref() {
        Some("org.apache.kafka.connect.data.Decimal") => {
            let scale = n
                .parameters
                .as_ref()
                .and_then(|p| p.scale)
                .and_then(|s| s.get().trim_matches('"').parse().ok());
            match scale {
                Some(scale) => ColKind::Decimal { scale },
                None => ColKind::Other,
            }
        }
        Some("io.debezium.data.VariableScaleDecimal") => ColKind::VariableScale,
        Some("io.debezium.time.Timestamp" | "org.apache.kafka.connect.data.Timestamp") => {
            ColKind::EpochMillis
        }
        Some("io.debezium.time.MicroTimestamp") => ColKind::EpochMicros,
        Some("io.debezium.time.NanoTimestamp") => ColKind::EpochNanos,
        _ if n.ty.as_deref() == Some("string") => ColKind::Text,
        _ => ColKind::Other,
    }
}

/// The row's columns: the `after` struct of an envelope schema, or the top-level fields of a
/// flattened one.
fn build(text: &str) -> SchemaInfo {
    let Ok(top) = serde_json::from_str::<Node>(text) else {
        return SchemaInfo::default();
    };
    let top_fields = top.fields.unwrap_or_default();
    let row_fields = match top_fields
        .iter()
        .position(|f| f.field.as_deref() == Some("after"))
    {
        Some(i) => top_fields
            .into_iter()
            .nth(i)
            .and_then(|n| n.fields)
            .unwrap_or_default(),
        None => top_fields,
    };
    SchemaInfo {
        cols: row_fields
            .iter()
            .filter_map(|f| Some((f.field.as_deref()?.to_owned(), kind_of(f))))
            .collect(),
    }
}

const CACHE_ENTRIES: usize = 32;

thread_local! {
    static CACHE: RefCell<Vec<(Box<str>, Rc<SchemaInfo>)>> = const { RefCell::new(Vec::new()) };
}

/// The column kinds of a schema block, from the per-thread cache when seen before.
pub(crate) fn info(schema: Raw) -> Rc<SchemaInfo> {
    let text = schema.get();
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if let Some(i) = c.iter().position(|(t, _)| **t == *text) {
            let hit = c[i].1.clone();
            // Keep the hottest entry first: most streams alternate between a few topics.
            if i > 0 {
                c.swap(0, i);
            }
            return hit;
        }
        let info = Rc::new(build(text));
        if c.len() >= CACHE_ENTRIES {
            c.pop();
        }
        c.insert(0, (text.into(), info.clone()));
        info
    })
}
