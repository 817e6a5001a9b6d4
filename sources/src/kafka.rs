//! The Kafka source (`--source kafka://host:port`): Debezium topics through a consumer group.
//!
//! Subscribes to every `<prefix>.public.*` topic and to `<prefix>.transaction` when it exists
//! (the equivalent of the regex `^<prefix>\.(public\..+|transaction)$`, resolved from the
//! cluster metadata by the source itself and refreshed every `topic_refresh`, so topics
//! created later are picked up). Reads from the
//! earliest offset when the group has none, with auto-commit off: offsets are committed only
//! for positions the engine reports applied through `io.applied`, so a restart resumes after
//! the last applied transaction and re-reads (at least once) what was not applied.
//!
//! Owns the consumer and offset commits. Parsing is [`crate::debezium`] (through
//! [`DeadLetters::parse`], so malformed messages become dead letters), grouping is
//! [`crate::group`]. Must not dedupe: the engine's per-key LSN rule makes re-reads harmless.
//!
//! Limits: after a rebalance that takes partitions away, transactions still buffered from them
//! are released by the grouping's bounds (or on the idle timeout for txId runs); with one
//! engine process per group that does not happen.

use crate::deadletter::DeadLetters;
use crate::group::{GroupConfig, MarkerMode, TxAssembler};
use crate::source::SourceIo;
use crate::types::{Position, Transaction};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError as RdError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn};

#[derive(Clone)]
pub struct KafkaConfig {
    /// `host:port[,host:port…]`.
    pub brokers: String,
    /// Debezium `topic.prefix` (`database.server.name`).
    pub prefix: String,
    pub group_id: String,
    pub group: GroupConfig,
    /// With no message for this long, an open txId run is considered complete.
    pub idle_close: Duration,
    /// How often new topics matching the pattern are looked for.
    pub topic_refresh: Duration,
    pub dead_letters: Arc<DeadLetters>,
    /// Extra librdkafka properties (security settings, …), applied last.
    pub extra: Vec<(String, String)>,
}

impl KafkaConfig {
    pub const DEFAULT_PREFIX: &'static str = "ecommerce-cdc";
    pub const DEFAULT_GROUP: &'static str = "shopstream";

    pub fn new(brokers: impl Into<String>) -> KafkaConfig {
        KafkaConfig {
            brokers: brokers.into(),
            prefix: Self::DEFAULT_PREFIX.into(),
            group_id: Self::DEFAULT_GROUP.into(),
            group: GroupConfig::default(),
            idle_close: Duration::from_millis(100),
            topic_refresh: Duration::from_secs(5),
            dead_letters: Arc::new(DeadLetters::in_memory(1000)),
            extra: Vec::new(),
        }
    }

    /// From `kafka://host:port[,host:port]` (or a bare broker list).
    pub fn from_url(url: &str) -> Result<KafkaConfig, KafkaSourceError> {
        let brokers = url
            .strip_prefix("kafka://")
            .unwrap_or(url)
            .trim_end_matches('/');
        if brokers.is_empty() || brokers.contains('/') || brokers.contains('@') {
            return Err(KafkaSourceError::Config(
                "expected kafka://host:port[,host:port…]".into(),
            ));
        }
        Ok(KafkaConfig::new(brokers))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KafkaSourceError {
    #[error("invalid Kafka source configuration: {0}")]
    Config(String),
    #[error("kafka: {context}: {source}")]
    Kafka {
        context: String,
        #[source]
        source: RdError,
    },
}

/// What a run consumed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KafkaStats {
    pub messages: u64,
    pub transactions: u64,
    pub dead_letters: u64,
    pub commits: u64,
}

pub struct KafkaSource {
    cfg: KafkaConfig,
}

impl KafkaSource {
    pub fn new(cfg: KafkaConfig) -> KafkaSource {
        KafkaSource { cfg }
    }

    fn consumer(&self) -> Result<BaseConsumer, KafkaSourceError> {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.cfg.brokers)
            .set("group.id", &self.cfg.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("allow.auto.create.topics", "false")
            .set(
                "topic.metadata.refresh.interval.ms",
                self.cfg.topic_refresh.as_millis().to_string(),
            )
            // Tansu completes a group join only after about half the session timeout (23 s
            // with librdkafka's 45 s default, 3.6 s with 6 s, measured); 10 s also makes a
            // real cluster notice a dead engine sooner.
            .set("session.timeout.ms", "10000")
            .set("client.id", "shopstream-source");
        for (k, v) in &self.cfg.extra {
            c.set(k, v);
        }
        c.create().map_err(|source| KafkaSourceError::Kafka {
            context: "creating the consumer".into(),
            source,
        })
    }

    /// The existing topics the source reads, sorted: `<prefix>.public.*` and
    /// `<prefix>.transaction`. A failed lookup gives none (and is logged).
    fn matching_topics(&self, consumer: &BaseConsumer) -> Vec<String> {
        let public = format!("{}.public.", self.cfg.prefix);
        let tx = format!("{}.transaction", self.cfg.prefix);
        match consumer.fetch_metadata(None, Duration::from_secs(10)) {
            Ok(md) => {
                let mut v: Vec<String> = md
                    .topics()
                    .iter()
                    .filter(|t| t.error().is_none())
                    .map(|t| t.name().to_string())
                    .filter(|n| (n.starts_with(&public) && n.len() > public.len()) || *n == tx)
                    .collect();
                v.sort();
                v
            }
            Err(e) => {
                warn!("kafka metadata: {e}");
                Vec::new()
            }
        }
    }

    fn subscribe(
        &self,
        consumer: &BaseConsumer,
        topics: &[String],
    ) -> Result<(), KafkaSourceError> {
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&names)
            .map_err(|source| KafkaSourceError::Kafka {
                context: format!("subscribing to {} topics", names.len()),
                source,
            })?;
        info!(brokers = %self.cfg.brokers, group = %self.cfg.group_id, topics = ?names, "kafka source subscribed");
        Ok(())
    }

    /// Whether `<prefix>.transaction` exists (a failed lookup counts as no).
    fn has_transaction_topic(&self, consumer: &BaseConsumer) -> bool {
        let topic = format!("{}.transaction", self.cfg.prefix);
        match consumer.fetch_metadata(Some(&topic), Duration::from_secs(10)) {
            Ok(md) => md
                .topics()
                .iter()
                .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty()),
            Err(e) => {
                warn!("kafka metadata for {topic}: {e}");
                false
            }
        }
    }

    /// Consumes until the engine stops or hangs up. Broker trouble is retried by librdkafka
    /// (and logged); only setup failures end the run with an error.
    pub fn run(self, io: SourceIo) -> Result<KafkaStats, KafkaSourceError> {
        let consumer = self.consumer()?;
        // Resolve the topics ourselves rather than subscribing to the regex: not every
        // Kafka-compatible broker (Tansu) serves librdkafka's regex subscription.
        let mut topics = Vec::new();
        while topics.is_empty() {
            if io.stopping() {
                return Ok(KafkaStats::default());
            }
            topics = self.matching_topics(&consumer);
            if topics.is_empty() {
                info!(prefix = %self.cfg.prefix, "no Debezium topics yet; waiting");
                std::thread::sleep(self.cfg.topic_refresh.min(Duration::from_secs(1)));
            }
        }
        self.subscribe(&consumer, &topics)?;
        let mut last_refresh = Instant::now();
        let dl = self.cfg.dead_letters.clone();
        let mut group = self.cfg.group.clone();
        if group.markers == MarkerMode::Auto && self.has_transaction_topic(&consumer) {
            // Markers from the start: otherwise events read before the first marker (from
            // other topics, in any interleaving) would be grouped by txId instead.
            info!("transaction topic found: grouping by transaction markers");
            group.markers = MarkerMode::On;
        }
        let mut asm = TxAssembler::new(group);
        let mut stats = KafkaStats::default();
        let mut committer = Committer::default();
        let mut last_msg = Instant::now();
        let mut idle_closed = true;
        'outer: loop {
            committer.drain(&io, &consumer, &mut stats, false);
            if io.stopping() {
                break;
            }
            if last_refresh.elapsed() >= self.cfg.topic_refresh {
                last_refresh = Instant::now();
                let now = self.matching_topics(&consumer);
                if !now.is_empty() && now != topics {
                    // A new table topic: resubscribing rebalances; what was read but not
                    // committed is read again, which the engine's LSN rule absorbs.
                    topics = now;
                    self.subscribe(&consumer, &topics)?;
                }
            }
            match consumer.poll(Duration::from_millis(50)) {
                None => {
                    if !idle_closed && last_msg.elapsed() >= self.cfg.idle_close {
                        asm.idle();
                        idle_closed = true;
                    }
                }
                Some(Err(e)) => {
                    // Transient broker/network conditions; librdkafka reconnects by itself.
                    warn!("kafka consumer: {e}");
                }
                Some(Ok(m)) => {
                    stats.messages += 1;
                    last_msg = Instant::now();
                    idle_closed = false;
                    let topic = m.topic();
                    let position =
                        Position::Kafka(vec![(topic.to_string(), m.partition(), m.offset() + 1)]);
                    let at = format!("{topic}/{}@{}", m.partition(), m.offset());
                    match dl.parse(&at, Some(topic), m.payload()) {
                        Some(parsed) => asm.push(parsed, position),
                        None => {
                            stats.dead_letters += 1;
                            // Nothing to apply, but its offset must be committed eventually:
                            // carry it with the next transaction (as a tombstone is).
                            asm.push(crate::event::Parsed::Tombstone, position);
                        }
                    }
                }
            }
            while let Some(tx) = asm.pop() {
                if !send(&io, tx, &mut committer, &consumer, &mut stats) {
                    break 'outer;
                }
                stats.transactions += 1;
            }
        }
        committer.drain(&io, &consumer, &mut stats, true);
        // Leave the group explicitly, so a restarted consumer of the same group is given the
        // partitions at once instead of after the old member's session times out.
        consumer.unsubscribe();
        let _ = consumer.poll(Duration::from_millis(100));
        info!(?stats, "kafka source stopped");
        Ok(stats)
    }
}

/// Sends one transaction, blocking while the engine back-pressures (applied positions are
/// still committed meanwhile). `false`: stop.
fn send(
    io: &SourceIo,
    mut tx: Transaction,
    committer: &mut Committer,
    consumer: &BaseConsumer,
    stats: &mut KafkaStats,
) -> bool {
    loop {
        if io.stopping() {
            return false;
        }
        match io.out.send_timeout(tx, Duration::from_millis(100)) {
            Ok(()) => return true,
            Err(crossbeam_channel::SendTimeoutError::Timeout(t)) => {
                tx = t;
                // Not polling meanwhile: a poll would hand over messages we could not take.
                // (librdkafka's max.poll.interval.ms, 5 min, bounds how long this may last.)
                committer.drain(io, consumer, stats, false);
            }
            Err(crossbeam_channel::SendTimeoutError::Disconnected(_)) => return false,
        }
    }
}

/// Commits offsets the engine applied, never moving a partition backwards.
#[derive(Default)]
struct Committer {
    committed: HashMap<(String, i32), i64>,
}

impl Committer {
    fn drain(
        &mut self,
        io: &SourceIo,
        consumer: &BaseConsumer,
        stats: &mut KafkaStats,
        sync: bool,
    ) {
        let mut tpl = TopicPartitionList::new();
        let mut any = false;
        while let Ok(pos) = io.applied.try_recv() {
            let Position::Kafka(offsets) = pos else {
                continue;
            };
            for (topic, partition, offset) in offsets {
                let e = self
                    .committed
                    .entry((topic.clone(), partition))
                    .or_insert(-1);
                if offset > *e {
                    *e = offset;
                    any = true;
                    // add_partition_offset replaces an earlier entry of the same partition.
                    if let Err(err) =
                        tpl.add_partition_offset(&topic, partition, Offset::Offset(offset))
                    {
                        warn!("kafka commit list: {err}");
                    }
                }
            }
        }
        if sync && !self.committed.is_empty() {
            // The last commit is synchronous and repeats every partition's offset, so an async
            // commit still in flight when the consumer closes cannot be lost.
            tpl = TopicPartitionList::new();
            for ((topic, partition), offset) in &self.committed {
                if let Err(err) =
                    tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))
                {
                    warn!("kafka commit list: {err}");
                }
            }
            any = true;
        }
        if !any {
            return;
        }
        let mode = if sync {
            CommitMode::Sync
        } else {
            CommitMode::Async
        };
        match consumer.commit(&tpl, mode) {
            Ok(()) => stats.commits += 1,
            Err(e) => warn!("kafka offset commit failed (retried with the next one): {e}"),
        }
    }
}
