//! Topic inspector for the engine CLI (`engine topics list`, `engine topics tail`).
//!
//! Blocking functions (librdkafka's `BaseConsumer`): call them from a CLI's main thread or
//! `spawn_blocking`. `tail` uses `assign()` (no consumer group: it starts reading in ~0.15 s
//! instead of waiting ~5 s for a group join, and commits nothing).
//!
//! Printing takes a light look at the JSON: Debezium envelopes (with or without the
//! `{schema,payload}` wrapper, and the flattened `__op`/`__table`/`__lsn` form) are summarised as
//! op/table/key/lsn; Debezium transaction markers as status/id; anything else is printed as
//! compact JSON or text; a null value as `<tombstone>`. It is not the sources parser: it never
//! interprets column values.

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;
use std::io::Write;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum TopicsError {
    #[error("Kafka at {brokers}: {source}")]
    Kafka {
        brokers: String,
        #[source]
        source: KafkaError,
    },
    #[error("topic {0:?} does not exist")]
    NoSuchTopic(String),
    #[error("writing output: {0}")]
    Io(#[from] std::io::Error),
}

/// One topic as `list` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    pub partitions: usize,
    /// Σ (high − low watermark) over partitions: messages currently held, approximately (a
    /// compacted topic may hold fewer; watermarks can lag a just-finished write).
    pub approx_messages: i64,
}

const TIMEOUT: Duration = Duration::from_secs(10);

fn consumer(brokers: &str) -> Result<BaseConsumer, TopicsError> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        // Required by librdkafka for a consumer; never joined (assign only), nothing committed.
        .set("group.id", "shopstream-topics-inspector")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .map_err(|source| kerr(brokers, source))
}

fn kerr(brokers: &str, source: KafkaError) -> TopicsError {
    TopicsError::Kafka {
        brokers: brokers.to_string(),
        source,
    }
}

/// Every topic with its partition count and approximate message count, sorted by name.
pub fn list(brokers: &str) -> Result<Vec<TopicInfo>, TopicsError> {
    let c = consumer(brokers)?;
    let md = c
        .fetch_metadata(None, TIMEOUT)
        .map_err(|e| kerr(brokers, e))?;
    let mut out = Vec::new();
    for t in md.topics() {
        let mut approx = 0i64;
        for p in t.partitions() {
            // A partition whose watermarks cannot be read counts as 0 rather than failing the
            // whole listing.
            if let Ok((lo, hi)) = c.fetch_watermarks(t.name(), p.id(), TIMEOUT) {
                approx += (hi - lo).max(0);
            }
        }
        out.push(TopicInfo {
            name: t.name().to_string(),
            partitions: t.partitions().len(),
            approx_messages: approx,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Writes `list` as an aligned table.
pub fn print_list(topics: &[TopicInfo], out: &mut dyn Write) -> std::io::Result<()> {
    let w = topics
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(5)
        .max(5);
    writeln!(
        out,
        "{:<w$}  {:>10}  {:>12}",
        "TOPIC", "PARTITIONS", "~MESSAGES"
    )?;
    for t in topics {
        writeln!(
            out,
            "{:<w$}  {:>10}  {:>12}",
            t.name, t.partitions, t.approx_messages
        )?;
    }
    Ok(())
}

/// How `tail_with` reads.
#[derive(Clone, Debug)]
pub struct TailOptions {
    /// Start at the earliest message (else: only messages produced from now on).
    pub from_beginning: bool,
    /// Stop after this many messages.
    pub max: Option<usize>,
    /// Stop once every partition reached the end it had when tailing started.
    pub stop_at_end: bool,
    /// Give up after this long without any message (`None`: follow forever).
    pub idle_timeout: Option<Duration>,
}

/// Prints a topic's messages, one line each: `[partition@offset] key=… value`. Follows the
/// topic until `max` messages were printed (forever without `max`). Returns how many were
/// printed.
pub fn tail(
    brokers: &str,
    topic: &str,
    from_beginning: bool,
    max: Option<usize>,
    out: &mut dyn Write,
) -> Result<usize, TopicsError> {
    tail_with(
        brokers,
        topic,
        &TailOptions {
            from_beginning,
            max,
            stop_at_end: false,
            idle_timeout: None,
        },
        out,
    )
}

pub fn tail_with(
    brokers: &str,
    topic: &str,
    opts: &TailOptions,
    out: &mut dyn Write,
) -> Result<usize, TopicsError> {
    let c = consumer(brokers)?;
    let md = c
        .fetch_metadata(Some(topic), TIMEOUT)
        .map_err(|e| kerr(brokers, e))?;
    let parts: Vec<i32> = md
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if parts.is_empty() {
        return Err(TopicsError::NoSuchTopic(topic.to_string()));
    }
    let mut tpl = TopicPartitionList::new();
    // Per partition: the offset at which we are done (`stop_at_end`).
    let mut ends: Vec<(i32, i64)> = Vec::new();
    for p in &parts {
        let start = if opts.from_beginning {
            Offset::Beginning
        } else {
            Offset::End
        };
        tpl.add_partition_offset(topic, *p, start)
            .map_err(|e| kerr(brokers, e))?;
        if opts.stop_at_end {
            let (lo, hi) = c
                .fetch_watermarks(topic, *p, TIMEOUT)
                .map_err(|e| kerr(brokers, e))?;
            if opts.from_beginning && hi > lo {
                ends.push((*p, hi));
            }
        }
    }
    if opts.stop_at_end && ends.is_empty() {
        return Ok(0);
    }
    c.assign(&tpl).map_err(|e| kerr(brokers, e))?;
    let mut n = 0usize;
    let mut last_msg = Instant::now();
    loop {
        if opts.max.is_some_and(|m| n >= m) {
            break;
        }
        if opts.idle_timeout.is_some_and(|t| last_msg.elapsed() >= t) {
            break;
        }
        let Some(m) = c.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m.map_err(|e| kerr(brokers, e))?;
        last_msg = Instant::now();
        writeln!(
            out,
            "[{}@{}] key={} {}",
            m.partition(),
            m.offset(),
            m.key().map(render_key).unwrap_or_else(|| "<none>".into()),
            m.payload()
                .map(|p| render_value(p, m.key()))
                .unwrap_or_else(|| "<tombstone>".into())
        )?;
        n += 1;
        if opts.stop_at_end {
            ends.retain(|(p, end)| !(*p == m.partition() && m.offset() + 1 >= *end));
            if ends.is_empty() {
                break;
            }
        }
    }
    out.flush()?;
    Ok(n)
}

/// Unwraps Kafka Connect's `{"schema":…,"payload":…}`.
fn payload(v: Value) -> Value {
    match v {
        Value::Object(mut o) if o.contains_key("payload") && o.len() <= 2 => {
            o.remove("payload").unwrap_or(Value::Null)
        }
        v => v,
    }
}

fn render_key(k: &[u8]) -> String {
    match serde_json::from_slice::<Value>(k) {
        Ok(v) => payload(v).to_string(),
        Err(_) => String::from_utf8_lossy(k).into_owned(),
    }
}

fn lsn_text(v: Option<&Value>) -> Option<String> {
    let v = v?;
    match v.as_u64() {
        Some(n) => Some(sources::Lsn(n).to_string()),
        None => v.as_str().map(str::to_string),
    }
}

/// A one-line summary of a message value.
pub fn render_value(p: &[u8], key: Option<&[u8]>) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(p) else {
        return String::from_utf8_lossy(p).into_owned();
    };
    let v = payload(v);
    let key = key.map(render_key).unwrap_or_else(|| "?".into());
    let Value::Object(o) = &v else {
        return v.to_string();
    };
    let s = |x: Option<&Value>| match x {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "?".into(),
        Some(x) => x.to_string(),
    };
    if let (Some(op), true) = (
        o.get("op").and_then(Value::as_str),
        o.contains_key("source") || o.contains_key("after") || o.contains_key("before"),
    ) {
        let src = o.get("source");
        let table = match (
            src.and_then(|s| s.get("schema")).and_then(Value::as_str),
            src.and_then(|s| s.get("table")).and_then(Value::as_str),
        ) {
            (Some(sc), Some(t)) => format!("{sc}.{t}"),
            (None, Some(t)) => t.to_string(),
            _ => "?".into(),
        };
        let mut line = format!("debezium op={op} table={table} key={key}");
        if let Some(l) = lsn_text(src.and_then(|s| s.get("lsn"))) {
            line.push_str(&format!(" lsn={l}"));
        }
        if let Some(tx) = src.and_then(|s| s.get("txId")).filter(|t| !t.is_null()) {
            line.push_str(&format!(" txId={tx}"));
        }
        if src
            .and_then(|s| s.get("snapshot"))
            .is_some_and(|s| s == "true" || s == "last" || s == true)
        {
            line.push_str(" snapshot");
        }
        return line;
    }
    if let Some(op) = o.get("__op").and_then(Value::as_str) {
        let mut line = format!(
            "debezium(flat) op={op} table={} key={key}",
            s(o.get("__table"))
        );
        if let Some(l) = lsn_text(o.get("__lsn")) {
            line.push_str(&format!(" lsn={l}"));
        }
        if o.get("__deleted").is_some_and(|d| d == "true" || d == true) {
            line.push_str(" deleted");
        }
        return line;
    }
    if let (Some(status), Some(id)) = (o.get("status").and_then(Value::as_str), o.get("id")) {
        if status == "BEGIN" || status == "END" {
            let mut line = format!("tx {status} id={}", s(Some(id)));
            if let Some(n) = o.get("event_count").filter(|n| !n.is_null()) {
                line.push_str(&format!(" events={n}"));
            }
            return line;
        }
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries() {
        let dbz = br#"{"before":null,"after":{"id":110},"source":{"schema":"inventory","table":"products","txId":604,"lsn":34132560,"snapshot":"false"},"op":"c","ts_ms":1}"#;
        assert_eq!(
            render_value(dbz, Some(br#"{"schema":{},"payload":{"id":110}}"#)),
            r#"debezium op=c table=inventory.products key={"id":110} lsn=0/208D250 txId=604"#
        );
        let flat = br#"{"order_id":5,"__op":"d","__table":"orders","__lsn":10,"__deleted":"true"}"#;
        assert_eq!(
            render_value(flat, None),
            "debezium(flat) op=d table=orders key=? lsn=0/A deleted"
        );
        assert_eq!(
            render_value(
                br#"{"status":"END","id":"571:53195832","event_count":2}"#,
                None
            ),
            "tx END id=571:53195832 events=2"
        );
        assert_eq!(render_value(br#"{"a":1}"#, None), r#"{"a":1}"#);
        assert_eq!(render_value(b"plain", None), "plain");
    }
}
