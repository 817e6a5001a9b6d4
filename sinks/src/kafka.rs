//! Kafka sink: each mapped view becomes a compacted upsert topic.
//!
//! - Key: the row's key within its view ([`ViewRow::key`], compact JSON); value: the row in dump
//!   format ([`ViewRow::to_json`]); header `as_of`: the engine position (JSON).
//! - Per engine time, changes are netted per key: a key whose row was replaced gets the new row;
//!   a key whose row was retracted with no replacement gets a tombstone (null value); a key whose
//!   changes cancel out gets nothing. The messages of one time are produced together, then
//!   awaited (consecutive times already queued are pipelined in one such group, in order).
//! - Delivery: idempotent producer (`enable.idempotence=true`, so librdkafka's own retries
//!   neither duplicate nor reorder). A message that still fails is retried by the sink with
//!   exponential backoff and jitter — unless a later message of the same group already carries
//!   a newer value for that key — and every failure is counted in
//!   `shopstream_sink_errors_total{sink="kafka"}`. Nothing is dropped silently: only at shutdown,
//!   after `shutdown_timeout`, are undelivered messages given up, counted and logged.
//! - A dead broker never blocks the engine: while the sink retries, its feed fills and the store
//!   drops it; once delivery works again the sink re-subscribes, re-emits the whole snapshot
//!   (idempotent for a compacted topic: same key, same value) and tombstones the keys it had
//!   emitted that are gone from the snapshot.
//! - Topics are created when missing (`cleanup.policy=compact`) with the admin client.
//!
//! Limitation: keys written by a *previous process* that are absent from the first snapshot of
//! this one are not tombstoned (the sink only knows the keys it emitted itself).

use crate::{backoff, metrics, FeedReader, SinkHandle, Step};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::ClientConfig;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use view_store::{AsOf, ViewName, ViewRow, ViewStore};

const SINK: &str = "kafka";

#[derive(Debug, thiserror::Error)]
pub enum KafkaSinkError {
    #[error("creating the Kafka producer for {brokers}: {source}")]
    Client {
        brokers: String,
        #[source]
        source: KafkaError,
    },
    #[error("bad topic mapping {0:?}: expected VIEW=TOPIC[,VIEW=TOPIC…] with VIEW one of revenue, top_products, trending_products, category_sales, fraud_alerts, also_bought, recommendations")]
    Mapping(String),
}

/// Where and how the Kafka sink writes.
#[derive(Clone, Debug)]
pub struct KafkaSinkConfig {
    /// `host:port[,host:port…]`.
    pub brokers: String,
    /// View → topic. Only mapped views are written.
    pub topics: BTreeMap<ViewName, String>,
    /// Partitions and replication factor for topics the sink creates.
    pub partitions: i32,
    pub replication: i32,
    /// Create missing topics (compacted) at start.
    pub create_topics: bool,
    /// Extra librdkafka producer settings (override the defaults).
    pub producer_config: Vec<(String, String)>,
    /// Backoff between the sink's own retries of failed messages.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// How long `shutdown` keeps retrying undelivered messages before giving up on them.
    pub shutdown_timeout: Duration,
    /// At most this many messages are produced before awaiting their delivery.
    pub max_group_messages: usize,
}

impl KafkaSinkConfig {
    /// The default topics of the old design: `statistics_revenue`, `statistics_top_product`,
    /// `fraud_alerts`.
    pub fn new(brokers: impl Into<String>) -> Self {
        let topics = [
            (ViewName::Revenue, "statistics_revenue"),
            (ViewName::TopProducts, "statistics_top_product"),
            (ViewName::FraudAlerts, "fraud_alerts"),
        ]
        .into_iter()
        .map(|(v, t)| (v, t.to_string()))
        .collect();
        KafkaSinkConfig {
            brokers: brokers.into(),
            topics,
            partitions: 1,
            replication: 1,
            create_topics: true,
            producer_config: Vec::new(),
            retry_base: Duration::from_millis(200),
            retry_max: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(10),
            max_group_messages: 50_000,
        }
    }

    /// Prefixes every topic name (`prefix` + name), e.g. `shop1.` → `shop1.fraud_alerts`.
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        for t in self.topics.values_mut() {
            *t = format!("{prefix}{t}");
        }
        self
    }

    /// Applies a mapping `VIEW=TOPIC[,VIEW=TOPIC…]`; an empty topic (`revenue=`) unmaps a view.
    pub fn with_mapping(mut self, mapping: &str) -> Result<Self, KafkaSinkError> {
        for part in mapping.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (v, t) = part
                .split_once('=')
                .ok_or_else(|| KafkaSinkError::Mapping(mapping.to_string()))?;
            let view =
                ViewName::parse(v.trim()).ok_or_else(|| KafkaSinkError::Mapping(mapping.into()))?;
            let t = t.trim();
            if t.is_empty() {
                self.topics.remove(&view);
            } else {
                self.topics.insert(view, t.to_string());
            }
        }
        Ok(self)
    }

    fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("compression.type", "zstd")
            // Surface a dead broker within 30 s (librdkafka's default is 5 min); the sink
            // retries on its own after that.
            .set("message.timeout.ms", "30000");
        for (k, v) in &self.producer_config {
            c.set(k, v);
        }
        c
    }
}

/// One message to produce: `value: None` is a tombstone.
#[derive(Debug, Clone)]
struct Msg {
    topic: String,
    key: String,
    value: Option<String>,
    as_of: String,
}

pub struct KafkaSink;

impl KafkaSink {
    /// Starts the sink on the current tokio runtime. Fails only on an invalid producer config;
    /// an unreachable broker is retried in the background.
    pub fn spawn(cfg: KafkaSinkConfig, store: ViewStore) -> Result<SinkHandle, KafkaSinkError> {
        let producer: FutureProducer =
            cfg.client_config()
                .create()
                .map_err(|source| KafkaSinkError::Client {
                    brokers: cfg.brokers.clone(),
                    source,
                })?;
        let (stop_tx, stop_rx) = watch::channel(false);
        // Subscribe now, so the sink sees every change from this call on even while it is still
        // creating topics. Subscribing to all views shares the store's batch (`Arc`) instead of
        // filtering a copy per view; unmapped views are skipped by the sink.
        let single = if cfg.topics.len() == 1 {
            cfg.topics.keys().next().copied()
        } else {
            None
        };
        let reader = FeedReader::new(SINK, store, single, stop_rx);
        let task = tokio::spawn(run(cfg, producer, reader));
        Ok(SinkHandle::new(SINK, stop_tx, task))
    }
}

async fn ensure_topics(cfg: &KafkaSinkConfig, reader: &FeedReader) {
    let admin: AdminClient<DefaultClientContext> = match ClientConfig::new()
        .set("bootstrap.servers", &cfg.brokers)
        .create()
    {
        Ok(a) => a,
        Err(e) => {
            metrics::errors(SINK).inc();
            tracing::error!(error = %e, "cannot create the Kafka admin client; topics not created");
            return;
        }
    };
    // Bounded request time, so a dead broker costs seconds here, not librdkafka's minute.
    let opts = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(10)))
        .request_timeout(Some(Duration::from_secs(5)));
    let mut todo: Vec<&str> = cfg.topics.values().map(String::as_str).collect();
    // A few attempts only: if the broker is down the producer's own retries take over, and a
    // broker that auto-creates topics works without this.
    for attempt in 0..5u32 {
        let new: Vec<NewTopic> = todo
            .iter()
            .map(|t| {
                NewTopic::new(t, cfg.partitions, TopicReplication::Fixed(cfg.replication))
                    .set("cleanup.policy", "compact")
            })
            .collect();
        match admin.create_topics(new.iter(), &opts).await {
            Ok(results) => {
                let mut failed = Vec::new();
                for r in results {
                    match r {
                        Ok(t) => tracing::info!(topic = %t, "created compacted topic"),
                        Err((t, RDKafkaErrorCode::TopicAlreadyExists)) => {
                            tracing::debug!(topic = %t, "topic exists")
                        }
                        Err((t, code)) => {
                            tracing::warn!(topic = %t, error = %code, "creating topic failed");
                            failed.push(t);
                        }
                    }
                }
                todo.retain(|t| failed.iter().any(|f| f == t));
                if todo.is_empty() {
                    return;
                }
            }
            Err(e) => tracing::warn!(error = %e, "creating topics failed"),
        }
        metrics::errors(SINK).inc();
        if reader.is_stopping() {
            return;
        }
        tokio::time::sleep(backoff(attempt, cfg.retry_base, cfg.retry_max)).await;
    }
    tracing::error!(topics = ?todo, "could not create topics; relying on broker auto-create");
}

/// The sink's memory of what its topics hold: per view, the keys whose last message was a value.
#[derive(Default)]
struct Emitted {
    live: HashMap<ViewName, HashSet<String>>,
}

fn key_string(row: &ViewRow) -> String {
    row.key().to_string()
}

fn value_string(row: &ViewRow) -> String {
    row.to_json().to_string()
}

impl Emitted {
    /// Messages for a snapshot: every row as an upsert, plus tombstones for keys emitted before
    /// that the snapshot no longer has (after a re-subscription).
    fn snapshot(
        &mut self,
        cfg: &KafkaSinkConfig,
        as_of: AsOf,
        rows: &[ViewRow],
        out: &mut Vec<Msg>,
    ) {
        let as_of = as_of.to_json().to_string();
        let mut now: HashMap<ViewName, HashSet<String>> = HashMap::new();
        for row in rows {
            let Some(topic) = cfg.topics.get(&row.view()) else {
                continue;
            };
            let key = key_string(row);
            out.push(Msg {
                topic: topic.clone(),
                key: key.clone(),
                value: Some(value_string(row)),
                as_of: as_of.clone(),
            });
            now.entry(row.view()).or_default().insert(key);
        }
        for (view, keys) in &self.live {
            let Some(topic) = cfg.topics.get(view) else {
                continue;
            };
            let still = now.get(view);
            let mut gone: Vec<&String> = keys
                .iter()
                .filter(|k| !still.is_some_and(|s| s.contains(*k)))
                .collect();
            gone.sort();
            for k in gone {
                out.push(Msg {
                    topic: topic.clone(),
                    key: k.clone(),
                    value: None,
                    as_of: as_of.clone(),
                });
            }
        }
        self.live = now;
    }

    /// Messages for one engine time, netted per key.
    fn changes(
        &mut self,
        cfg: &KafkaSinkConfig,
        as_of: AsOf,
        changes: &[(ViewRow, i64)],
        out: &mut Vec<Msg>,
    ) {
        let mut per_key: BTreeMap<(ViewName, String), Vec<(&ViewRow, i64)>> = BTreeMap::new();
        for (row, diff) in changes {
            if !cfg.topics.contains_key(&row.view()) {
                continue;
            }
            let e = per_key.entry((row.view(), key_string(row))).or_default();
            match e.iter_mut().find(|(r, _)| *r == row) {
                Some((_, d)) => *d += diff,
                None => e.push((row, *diff)),
            }
        }
        if per_key.is_empty() {
            return;
        }
        let as_of = as_of.to_json().to_string();
        for ((view, key), rows) in per_key {
            let Some(topic) = cfg.topics.get(&view) else {
                continue;
            };
            let inserted: Vec<&ViewRow> = rows
                .iter()
                .filter(|(_, d)| *d > 0)
                .map(|(r, _)| *r)
                .collect();
            let retracted = rows.iter().any(|(_, d)| *d < 0);
            let live = self.live.entry(view).or_default();
            if let Some(row) = inserted.last() {
                if inserted.len() > 1 {
                    // Two live rows for one key would be an engine bug; keep the last and say so.
                    tracing::warn!(view = view.as_str(), key = %key, "several rows inserted for one key in one time");
                }
                out.push(Msg {
                    topic: topic.clone(),
                    key: key.clone(),
                    value: Some(value_string(row)),
                    as_of: as_of.clone(),
                });
                live.insert(key);
            } else if retracted {
                out.push(Msg {
                    topic: topic.clone(),
                    key: key.clone(),
                    value: None,
                    as_of: as_of.clone(),
                });
                live.remove(&key);
            }
        }
    }
}

async fn run(cfg: KafkaSinkConfig, producer: FutureProducer, mut reader: FeedReader) {
    if cfg.create_topics {
        ensure_topics(&cfg, &reader).await;
    }
    let mut emitted = Emitted::default();
    let mut deadline: Option<Instant> = None;
    let mut out = Vec::new();
    loop {
        let mut done = false;
        let mut step = Some(reader.next().await);
        while let Some(s) = step.take() {
            match s {
                Step::Snapshot { as_of, rows, .. } => {
                    emitted.snapshot(&cfg, as_of, &rows, &mut out)
                }
                Step::Changes(b) => emitted.changes(&cfg, b.as_of, &b.changes, &mut out),
                Step::Stop => {
                    done = true;
                    break;
                }
            }
            if out.len() < cfg.max_group_messages {
                step = reader.try_next();
            }
        }
        if !out.is_empty() {
            if reader.is_stopping() && deadline.is_none() {
                deadline = Some(Instant::now() + cfg.shutdown_timeout);
            }
            deliver(
                &cfg,
                &producer,
                std::mem::take(&mut out),
                &reader,
                &mut deadline,
            )
            .await;
        }
        if done {
            break;
        }
    }
    let flush_for = deadline
        .map(|d| d.saturating_duration_since(Instant::now()))
        .unwrap_or(cfg.shutdown_timeout);
    if let Err(e) = producer.flush(flush_for) {
        metrics::errors(SINK).inc();
        tracing::error!(error = %e, "flushing the Kafka producer at shutdown");
    }
    tracing::info!("kafka sink stopped");
}

/// Produces `msgs` in order and waits for all of them; retries failures until delivered (or the
/// shutdown deadline passes).
async fn deliver(
    cfg: &KafkaSinkConfig,
    producer: &FutureProducer,
    mut pending: Vec<Msg>,
    reader: &FeedReader,
    deadline: &mut Option<Instant>,
) {
    let mut attempt = 0u32;
    loop {
        let mut futures = Vec::with_capacity(pending.len());
        let mut failed: Vec<usize> = Vec::new();
        for (i, m) in pending.iter().enumerate() {
            let headers = OwnedHeaders::new().insert(Header {
                key: "as_of",
                value: Some(m.as_of.as_str()),
            });
            let mut record = FutureRecord::to(&m.topic).key(&m.key).headers(headers);
            if let Some(v) = &m.value {
                record = record.payload(v);
            }
            loop {
                match producer.send_result(record) {
                    Ok(f) => {
                        futures.push((i, f));
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        // librdkafka's local queue is full: let it drain, then enqueue again.
                        record = r;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((e, _)) => {
                        metrics::errors(SINK).inc();
                        tracing::warn!(topic = %m.topic, error = %e, "enqueueing a message failed");
                        failed.push(i);
                        break;
                    }
                }
            }
        }
        for (i, f) in futures {
            match f.await {
                Ok(Ok(_)) => metrics::messages(SINK, &pending[i].topic).inc(),
                Ok(Err((e, _))) => {
                    metrics::errors(SINK).inc();
                    tracing::warn!(topic = %pending[i].topic, error = %e, "delivery failed; will retry");
                    failed.push(i);
                }
                Err(_) => {
                    metrics::errors(SINK).inc();
                    tracing::warn!(topic = %pending[i].topic, "delivery future cancelled; will retry");
                    failed.push(i);
                }
            }
        }
        if failed.is_empty() {
            return;
        }
        // Retry only what is still the newest message for its key: an older value must never
        // overwrite a newer one that already made it.
        let mut newest: HashMap<(&str, &str), usize> = HashMap::new();
        for (i, m) in pending.iter().enumerate() {
            newest.insert((m.topic.as_str(), m.key.as_str()), i);
        }
        failed.sort_unstable();
        let retry: Vec<usize> = failed
            .into_iter()
            .filter(|&i| {
                newest.get(&(pending[i].topic.as_str(), pending[i].key.as_str())) == Some(&i)
            })
            .collect();
        pending = retry.into_iter().map(|i| pending[i].clone()).collect();
        if pending.is_empty() {
            return;
        }
        if reader.is_stopping() {
            let d = *deadline.get_or_insert_with(|| Instant::now() + cfg.shutdown_timeout);
            if Instant::now() >= d {
                metrics::errors(SINK).inc_by(pending.len() as u64);
                tracing::error!(
                    messages = pending.len(),
                    "kafka sink shutting down with undelivered messages (broker unreachable)"
                );
                return;
            }
        }
        tokio::time::sleep(backoff(attempt, cfg.retry_base, cfg.retry_max)).await;
        attempt = attempt.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sources::{Micros, Money};
    use view_store::{FraudAlertRow, Rule};

    fn alert(order: i64, amount: i64) -> ViewRow {
        ViewRow::FraudAlert(FraudAlertRow {
            rule: Rule::HighValue,
            customer_id: Some(1),
            order_id: Some(order),
            start: Micros(0),
            order_count: 1,
            amount: Some(Money(amount)),
        })
    }

    #[test]
    fn netting_per_key() {
        let cfg = KafkaSinkConfig::new("x");
        let mut e = Emitted::default();
        let mut out = Vec::new();
        let a = AsOf::default();
        e.changes(&cfg, a, &[(alert(1, 5), 1), (alert(2, 5), 1)], &mut out);
        assert_eq!(out.len(), 2);
        out.clear();
        // update of 1 (retract + insert), delete of 2, insert+retract of 3 (no-op)
        e.changes(
            &cfg,
            a,
            &[
                (alert(1, 5), -1),
                (alert(1, 6), 1),
                (alert(2, 5), -1),
                (alert(3, 9), 1),
                (alert(3, 9), -1),
            ],
            &mut out,
        );
        assert_eq!(out.len(), 2);
        assert!(out[0].value.as_deref().is_some_and(|v| v.contains("0.06")));
        assert!(out[1].value.is_none());
        out.clear();
        // a re-subscription snapshot without 1 tombstones it
        e.snapshot(&cfg, a, &[], &mut out);
        assert_eq!(out.len(), 1);
        assert!(out[0].value.is_none() && out[0].key.contains("\"order_id\":1"));
    }

    #[test]
    fn mapping_and_prefix() {
        let c = KafkaSinkConfig::new("x")
            .with_prefix("p.")
            .with_mapping("revenue=,category-sales=cs")
            .unwrap();
        assert_eq!(c.topics.get(&ViewName::Revenue), None);
        assert_eq!(c.topics[&ViewName::CategorySales], "cs");
        assert_eq!(c.topics[&ViewName::FraudAlerts], "p.fraud_alerts");
        assert!(KafkaSinkConfig::new("x").with_mapping("nope=1").is_err());
    }
}
