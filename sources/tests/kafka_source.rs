//! The Kafka source against a real broker (Tansu at `TEST_KAFKA_BROKERS`): Debezium-shaped
//! messages produced to unique topics come out as the same typed transactions as parsing the
//! same messages from a file, a restart resumes from the committed (= applied) offsets, and a
//! topic created after the start is read too.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use sources::kafka::{KafkaConfig, KafkaSource, KafkaSourceError, KafkaStats};
use sources::{channel, EngineIo, Position, Transaction};
use std::io::Write;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

fn brokers() -> String {
    std::env::var("TEST_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:19092".into())
}

// Generous: the source assigns partitions itself (no group join), so the first message comes
// within a second on Tansu; the bound only turns a hang into a failure.
const WAIT: Duration = Duration::from_secs(30);

/// (topic suffix, value); `None` = tombstone.
type Msg = (String, Option<String>);

fn order_event(xid: u64, lsn: u64, order: i64, op: &str, total: &str, n: u64) -> String {
    let row = format!(
        r#"{{"order_id":{order},"order_date":"2024-05-06T07:08:09.5Z","total_price":"{total}","status":"pending","customer_id":3,"payment_id":null,"shipment_id":null}}"#
    );
    let (before, after) = if op == "d" {
        (row, "null".to_string())
    } else {
        ("null".to_string(), row)
    };
    format!(
        r#"{{"before":{before},"after":{after},"source":{{"version":"2.5.0.Final","connector":"postgresql","name":"x","ts_ms":1714979289000,"snapshot":"false","db":"shop","schema":"public","table":"orders","txId":{xid},"lsn":{lsn}}},"op":"{op}","ts_ms":1714979289100,"transaction":{{"id":"{xid}:{lsn}","total_order":{n},"data_collection_order":{n}}}}}"#
    )
}

fn item_event(xid: u64, lsn: u64, item: i64, order: i64, n: u64) -> String {
    format!(
        r#"{{"before":null,"after":{{"order_item_id":{item},"order_id":{order},"product_id":{p},"quantity":2,"price":"1234.50"}},"source":{{"version":"2.5.0.Final","connector":"postgresql","name":"x","ts_ms":1714979289000,"snapshot":"false","db":"shop","schema":"public","table":"order_items","txId":{xid},"lsn":{lsn}}},"op":"c","ts_ms":1714979289100,"transaction":{{"id":"{xid}:{lsn}","total_order":{n},"data_collection_order":{n}}}}}"#,
        p = item % 7
    )
}

fn marker(status: &str, xid: u64, lsn: u64, orders: u64, items: u64) -> String {
    if status == "BEGIN" {
        format!(
            r#"{{"status":"BEGIN","id":"{xid}:{lsn}","event_count":null,"data_collections":null,"ts_ms":1714979289000}}"#
        )
    } else {
        format!(
            r#"{{"status":"END","id":"{xid}:{lsn}","event_count":{},"data_collections":[{{"data_collection":"public.orders","event_count":{orders}}},{{"data_collection":"public.order_items","event_count":{items}}}],"ts_ms":1714979289000}}"#,
            orders + items
        )
    }
}

/// Transaction `i` (1-based): a new order with two items; every third also updates the
/// previous order; transaction 4 deletes order 2 (with its tombstone). Message 7 of the
/// orders topic is malformed.
fn transaction(i: u64) -> Vec<Msg> {
    let xid = 1000 + i;
    let lsn = 50_000 + i * 100;
    let order = i as i64;
    let mut events = vec![
        (
            "public.orders".to_string(),
            order_event(xid, lsn, order, "c", &format!("{i}0.25"), 1),
        ),
        (
            "public.order_items".to_string(),
            item_event(xid, lsn + 1, order * 10, order, 2),
        ),
        (
            "public.order_items".to_string(),
            item_event(xid, lsn + 2, order * 10 + 1, order, 3),
        ),
    ];
    let mut orders = 1;
    if i.is_multiple_of(3) {
        events.push((
            "public.orders".into(),
            order_event(xid, lsn + 3, order - 1, "u", "99.00", 4),
        ));
        orders += 1;
    }
    if i == 4 {
        events.push((
            "public.orders".into(),
            order_event(xid, lsn + 4, 2, "d", "20.25", 5),
        ));
        orders += 1;
    }
    let mut out = vec![(
        "transaction".to_string(),
        Some(marker("BEGIN", xid, lsn, 0, 0)),
    )];
    out.extend(events.into_iter().map(|(t, v)| (t, Some(v))));
    if i == 4 {
        out.push(("public.orders".into(), None));
    }
    if i == 2 {
        out.push(("public.orders".into(), Some("{not json".into())));
    }
    out.push((
        "transaction".into(),
        Some(marker("END", xid, lsn, orders, 2)),
    ));
    out
}

fn produce(prefix: &str, msgs: &[Msg]) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    for (suffix, value) in msgs {
        let topic = format!("{prefix}.{suffix}");
        let mut rec: BaseRecord<'_, str, str> = BaseRecord::to(&topic).key("k");
        if let Some(v) = value {
            rec = rec.payload(v);
        }
        p.send(rec).map_err(|(e, _)| e).unwrap();
        p.poll(Duration::ZERO);
    }
    p.flush(Duration::from_secs(30)).unwrap();
}

fn create_topics(prefix: &str, suffixes: &[&str]) {
    let admin: AdminClient<_> = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .unwrap();
    let names: Vec<String> = suffixes.iter().map(|s| format!("{prefix}.{s}")).collect();
    let topics: Vec<NewTopic> = names
        .iter()
        .map(|n| NewTopic::new(n, 1, TopicReplication::Fixed(1)))
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for r in rt
        .block_on(admin.create_topics(&topics, &AdminOptions::new()))
        .unwrap()
    {
        r.unwrap();
    }
}

/// The same messages as a JSONL file in the framed form, read by the file source's parser;
/// `dead`: how many of them are malformed.
fn from_file(prefix: &str, msgs: &[Msg], dead: u64) -> Vec<Transaction> {
    let path = std::env::temp_dir().join(format!("{prefix}.jsonl"));
    let mut f = std::fs::File::create(&path).unwrap();
    for (suffix, value) in msgs {
        let value: serde_json::Value = match value {
            None => serde_json::Value::Null,
            Some(v) => serde_json::Value::String(v.clone()),
        };
        let line = serde_json::json!({"topic": format!("{prefix}.{suffix}"), "value": value});
        writeln!(f, "{line}").unwrap();
    }
    drop(f);
    let (txs, dead_letters) = sources::file::read_file(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(dead_letters.total, dead, "malformed messages");
    txs
}

fn start(
    prefix: &str,
    group: &str,
) -> (JoinHandle<Result<KafkaStats, KafkaSourceError>>, EngineIo) {
    let mut cfg = KafkaConfig::from_url(&format!("kafka://{}", brokers())).unwrap();
    cfg.prefix = prefix.to_string();
    cfg.group_id = group.to_string();
    // Short, so the test of a topic created later does not wait the default 5 s.
    cfg.topic_refresh = Duration::from_millis(500);
    let (io, engine) = channel(64);
    (
        std::thread::spawn(move || KafkaSource::new(cfg).run(io)),
        engine,
    )
}

fn next_tx(engine: &EngineIo) -> Transaction {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(t) = engine.input.recv_timeout(Duration::from_millis(200)) {
            // Transactions that only carry positions to acknowledge are not data.
            if !t.changes.is_empty() {
                return t;
            }
            continue;
        }
        assert!(Instant::now() < deadline, "no transaction within {WAIT:?}");
    }
}

/// What must be identical between the Kafka and the file reading.
fn essence(t: &Transaction) -> (Option<u64>, Option<sources::Lsn>, Vec<sources::Change>) {
    (t.tx_id, t.lsn, t.changes.clone())
}

fn unique_prefix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("kt{}x{nanos}", std::process::id())
}

#[test]
fn consumes_like_the_file_source_and_resumes_from_committed_offsets() {
    let prefix = unique_prefix();
    let group = format!("{prefix}-group");
    create_topics(
        &prefix,
        &["transaction", "public.orders", "public.order_items"],
    );
    let all: Vec<Msg> = (1..=10).flat_map(transaction).collect();
    let expected = from_file(&prefix, &all, 1);
    assert_eq!(expected.len(), 10);
    assert!(expected.iter().all(|t| t.changes.len() >= 3));

    // First run: five transactions; the engine applies three, then the process stops.
    let first_half: Vec<Msg> = (1..=5).flat_map(transaction).collect();
    produce(&prefix, &first_half);
    let (h, engine) = start(&prefix, &group);
    let first: Vec<Transaction> = (0..5).map(|_| next_tx(&engine)).collect();
    for (got, want) in first.iter().zip(&expected) {
        assert_eq!(essence(got), essence(want));
        assert!(matches!(got.position, Position::Kafka(_)));
    }
    for t in &first[..3] {
        engine.applied.send(t.position.clone()).unwrap();
    }
    engine.stop.store(true, Ordering::Relaxed);
    let stats = h.join().unwrap().unwrap();
    assert_eq!(stats.dead_letters, 1);
    assert!(stats.commits >= 1);

    // Second run: resumes after the third transaction; the rest comes once, in order.
    produce(&prefix, &all[first_half.len()..]);
    let (h, engine) = start(&prefix, &group);
    let second: Vec<Transaction> = (0..7).map(|_| next_tx(&engine)).collect();
    for (got, want) in second.iter().zip(&expected[3..]) {
        assert_eq!(essence(got), essence(want));
    }
    engine.stop.store(true, Ordering::Relaxed);
    let stats = h.join().unwrap().unwrap();
    assert_eq!(
        stats.dead_letters, 0,
        "the malformed message was committed past"
    );
    assert!(engine.input.try_iter().all(|t| t.changes.is_empty()));
}

/// A table whose topic appears only with its first change, after the source started, is read
/// from its first message (no transaction topic here: transactions are grouped by txId).
#[test]
fn reads_a_topic_created_after_the_start() {
    let prefix = unique_prefix();
    create_topics(&prefix, &["public.orders"]);
    let first: Vec<Msg> = vec![(
        "public.orders".into(),
        Some(order_event(2001, 70_000, 1, "c", "10.25", 1)),
    )];
    let later: Vec<Msg> = vec![(
        "public.order_items".into(),
        Some(item_event(2002, 70_100, 10, 1, 1)),
    )];
    let expected = from_file(&prefix, &[first.clone(), later.clone()].concat(), 0);
    assert_eq!(expected.len(), 2);
    produce(&prefix, &first);
    let (h, engine) = start(&prefix, &format!("{prefix}-group"));
    assert_eq!(essence(&next_tx(&engine)), essence(&expected[0]));
    // Created only now, after the source assigned the partitions it found.
    create_topics(&prefix, &["public.order_items"]);
    produce(&prefix, &later);
    assert_eq!(essence(&next_tx(&engine)), essence(&expected[1]));
    engine.stop.store(true, Ordering::Relaxed);
    let stats = h.join().unwrap().unwrap();
    assert_eq!(stats.transactions, 2);
}
