//! The Kafka source (`--source kafka://host:port`): Debezium topics, read from the offsets
//! committed under a consumer group id.
//!
//! Reads every partition of every `<prefix>.public.*` topic and of `<prefix>.transaction` when
//! it exists (the equivalent of the regex `^<prefix>\.(public\..+|transaction)$`), resolved
//! from the cluster metadata by the source itself and assigned manually (`assign`, no group
//! membership); the metadata is looked at again every `topic_refresh`, and partitions of topics
//! created later (a table's first change) are added. Each partition starts at the offset
//! committed for the group id, or at the earliest offset when there is none. Auto-commit is
//! off: offsets are committed (explicitly, under the group id) only for positions the engine
//! reports applied through `io.applied`, so a restart resumes after the last applied
//! transaction and re-reads (at least once) what was not applied. Messages that carry no change
//! (tombstones, dead letters) are committed past once everything before them on their
//! partition is applied.
//!
//! Why no group membership: one engine process reads every partition anyway, and a group join
//! costs seconds, and on Tansu a restarted member's rejoin could stall for minutes.
//!
//! Owns the consumer, its partition assignment and offset commits. Parsing is
//! [`crate::debezium`] (through [`DeadLetters::parse`], so malformed messages become dead
//! letters), grouping is [`crate::group`]. Must not dedupe: the engine's per-key LSN rule makes
//! re-reads harmless.
//!
//! Limits: one engine process per group id. Two processes started with the same group id both
//! read everything and overwrite each other's commits, so a restart could skip what one of
//! them had not applied: give each engine its own group id.

use crate::deadletter::DeadLetters;
use crate::event::Parsed;
use crate::group::{GroupConfig, MarkerMode, TxAssembler};
use crate::source::SourceIo;
use crate::types::{Position, Transaction};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError as RdError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeSet, HashMap};
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
        // The group id only names where offsets are stored: partitions are assigned by the
        // source itself (see the module docs), so the consumer never joins the group.
        c.set("bootstrap.servers", &self.cfg.brokers)
            .set("group.id", &self.cfg.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("allow.auto.create.topics", "false")
            .set("client.id", "shopstream-source");
        for (k, v) in &self.cfg.extra {
            c.set(k, v);
        }
        c.create().map_err(|source| KafkaSourceError::Kafka {
            context: "creating the consumer".into(),
            source,
        })
    }

    /// The partitions of the existing topics the source reads, sorted: `<prefix>.public.*`
    /// and `<prefix>.transaction`. `None` when the lookup failed (logged).
    fn matching_partitions(&self, consumer: &BaseConsumer) -> Option<BTreeSet<(String, i32)>> {
        let public = format!("{}.public.", self.cfg.prefix);
        let tx = format!("{}.transaction", self.cfg.prefix);
        match consumer.fetch_metadata(None, Duration::from_secs(10)) {
            Ok(md) => Some(
                md.topics()
                    .iter()
                    .filter(|t| t.error().is_none())
                    .filter(|t| {
                        let n = t.name();
                        (n.starts_with(&public) && n.len() > public.len()) || n == tx
                    })
                    .flat_map(|t| {
                        t.partitions()
                            .iter()
                            .map(move |p| (t.name().to_string(), p.id()))
                    })
                    .collect(),
            ),
            Err(e) => {
                warn!("kafka metadata: {e}");
                None
            }
        }
    }

    /// Adds the partitions in `found` that are not assigned yet, each from the group's
    /// committed offset, or from the earliest one when the group has none.
    fn assign_new(
        &self,
        consumer: &BaseConsumer,
        assigned: &mut BTreeSet<(String, i32)>,
        found: &BTreeSet<(String, i32)>,
    ) -> Result<(), KafkaSourceError> {
        let new: Vec<(String, i32)> = found.difference(assigned).cloned().collect();
        if new.is_empty() {
            return Ok(());
        }
        let mut ask = TopicPartitionList::new();
        for (topic, partition) in &new {
            ask.add_partition(topic, *partition);
        }
        let mut tpl = TopicPartitionList::new();
        let mut starts = Vec::with_capacity(new.len());
        match consumer.committed_offsets(ask, Duration::from_secs(10)) {
            Ok(committed) => {
                for e in committed.elements() {
                    let start = match e.offset() {
                        Offset::Offset(o) if o >= 0 => Offset::Offset(o),
                        _ => Offset::Beginning,
                    };
                    starts.push(format!("{}/{}@{start:?}", e.topic(), e.partition()));
                    add(&mut tpl, e.topic(), e.partition(), start);
                }
            }
            Err(e) => {
                // librdkafka then fetches the committed offsets itself when it starts the
                // partitions (falling back to auto.offset.reset = earliest).
                warn!("kafka committed offsets lookup failed, assigning with stored offsets: {e}");
                for (topic, partition) in &new {
                    starts.push(format!("{topic}/{partition}@stored"));
                    add(&mut tpl, topic, *partition, Offset::Stored);
                }
            }
        }
        consumer
            .incremental_assign(&tpl)
            .map_err(|source| KafkaSourceError::Kafka {
                context: format!("assigning {} partitions", tpl.count()),
                source,
            })?;
        info!(brokers = %self.cfg.brokers, group = %self.cfg.group_id, partitions = ?starts, "kafka source assigned");
        assigned.extend(new);
        Ok(())
    }

    /// Consumes until the engine stops or hangs up. Broker trouble is retried by librdkafka
    /// (and logged); only setup failures end the run with an error.
    pub fn run(self, io: SourceIo) -> Result<KafkaStats, KafkaSourceError> {
        let consumer = self.consumer()?;
        // Resolve the partitions ourselves rather than subscribing: not every Kafka-compatible
        // broker serves librdkafka's regex subscription, and a group join (and the rejoin of a
        // restarted engine) can take from seconds to minutes on some (Tansu), for nothing: one
        // engine process reads every partition anyway.
        let mut found = BTreeSet::new();
        while found.is_empty() {
            if io.stopping() {
                return Ok(KafkaStats::default());
            }
            found = self.matching_partitions(&consumer).unwrap_or_default();
            if found.is_empty() {
                info!(prefix = %self.cfg.prefix, "no Debezium topics yet; waiting");
                std::thread::sleep(self.cfg.topic_refresh.min(Duration::from_secs(1)));
            }
        }
        let mut assigned = BTreeSet::new();
        self.assign_new(&consumer, &mut assigned, &found)?;
        let mut last_refresh = Instant::now();
        let dl = self.cfg.dead_letters.clone();
        let mut group = self.cfg.group.clone();
        let tx_topic = format!("{}.transaction", self.cfg.prefix);
        if group.markers == MarkerMode::Auto && assigned.iter().any(|(t, _)| *t == tx_topic) {
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
                // A table's topic appears with its first change (or a topic gains partitions):
                // adding partitions leaves the others where they are.
                if let Some(now) = self.matching_partitions(&consumer) {
                    self.assign_new(&consumer, &mut assigned, &now)?;
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
                    committer.read(topic, m.partition(), m.offset());
                    match dl.parse(&at, Some(topic), m.payload()) {
                        Some(Parsed::Tombstone) => {
                            committer.skip(topic, m.partition(), m.offset());
                        }
                        Some(parsed) => asm.push(parsed, position),
                        None => {
                            stats.dead_letters += 1;
                            committer.skip(topic, m.partition(), m.offset());
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
        info!(?stats, "kafka source stopped");
        Ok(stats)
    }
}

fn add(tpl: &mut TopicPartitionList, topic: &str, partition: i32, offset: Offset) {
    if let Err(err) = tpl.add_partition_offset(topic, partition, offset) {
        warn!("kafka partition list: {err}");
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
///
/// Messages that carry no change (tombstones, dead letters) are not handed to the grouping:
/// it would attach their positions to whichever transaction it releases next, which can be an
/// earlier one, and committing that would skip the unapplied events between them (seen: a
/// tombstone after a delete committed past the delete and its transaction's other events, so
/// the restarted source waited forever for them). Instead they are committed here once every
/// message before them on their partition is applied.
#[derive(Default)]
struct Committer {
    /// Per partition: every message before this offset is applied or needs nothing (initially
    /// the first offset read in this run).
    committed: HashMap<(String, i32), i64>,
    /// Per partition: offsets of messages that carry no change, not yet committed past.
    skipped: HashMap<(String, i32), BTreeSet<i64>>,
}

impl Committer {
    /// Notes a message read; the first one of a partition marks where this run started it.
    fn read(&mut self, topic: &str, partition: i32, offset: i64) {
        self.committed
            .entry((topic.to_string(), partition))
            .or_insert(offset);
    }

    /// Notes a message that needs nothing applied.
    fn skip(&mut self, topic: &str, partition: i32, offset: i64) {
        self.skipped
            .entry((topic.to_string(), partition))
            .or_default()
            .insert(offset);
    }

    fn drain(
        &mut self,
        io: &SourceIo,
        consumer: &BaseConsumer,
        stats: &mut KafkaStats,
        sync: bool,
    ) {
        let mut moved: BTreeSet<(String, i32)> = BTreeSet::new();
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
                    moved.insert((topic, partition));
                }
            }
        }
        // Skipped messages right at a partition's applied frontier are done too.
        for (tp, offsets) in self.skipped.iter_mut() {
            let Some(frontier) = self.committed.get_mut(tp) else {
                continue;
            };
            while let Some(&o) = offsets.first() {
                if o < *frontier {
                    offsets.pop_first();
                } else if o == *frontier {
                    *frontier = o + 1;
                    offsets.pop_first();
                    moved.insert(tp.clone());
                } else {
                    break;
                }
            }
        }
        self.skipped.retain(|_, o| !o.is_empty());
        if sync {
            // The last commit is synchronous and repeats every partition's offset, so an async
            // commit still in flight when the consumer closes cannot be lost.
            moved.extend(self.committed.keys().cloned());
        }
        if moved.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for tp in &moved {
            if let Some(&offset) = self.committed.get(tp) {
                add(&mut tpl, &tp.0, tp.1, Offset::Offset(offset));
            }
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
