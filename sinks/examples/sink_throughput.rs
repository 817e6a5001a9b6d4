//! Measures the Kafka and file sinks' throughput against the real broker.
//!
//! `cargo run -p sinks --example sink_throughput -- [BATCHES] [ROWS_PER_BATCH]`
//! (broker from `TEST_KAFKA_BROKERS`, default 127.0.0.1:19092). Each batch inserts
//! ROWS_PER_BATCH new fraud alerts and updates ROWS_PER_BATCH/2 revenue rows; the figure is
//! messages delivered per second from the first apply to the end of a draining shutdown.

use sinks::file::{FileSink, FileSinkConfig};
use sinks::kafka::{KafkaSink, KafkaSinkConfig};
use sources::{Lsn, Micros, Money};
use std::time::Instant;
use view_store::{AsOf, ChangeBatch, FraudAlertRow, RevenueRow, Rule, ViewRow, ViewStore, Window};

fn alert(order: i64) -> ViewRow {
    ViewRow::FraudAlert(FraudAlertRow {
        rule: Rule::HighValue,
        customer_id: Some(order % 1000),
        order_id: Some(order),
        start: Micros(order),
        order_count: 1,
        amount: Some(Money(1_000_000_000 + order)),
    })
}

fn rev(start: i64, n: i64) -> ViewRow {
    ViewRow::Revenue(RevenueRow::new(
        Window::Size(60_000_000),
        Micros(start * 60_000_000),
        n,
        Money(n * 100),
        Money::ZERO,
    ))
}

fn batches(n: u64, rows: i64) -> Vec<ChangeBatch> {
    let mut out = Vec::new();
    for t in 1..=n as i64 {
        let mut changes = Vec::new();
        for r in 0..rows {
            changes.push((alert(t * rows + r), 1));
        }
        for w in 0..rows / 2 {
            if t > 1 {
                changes.push((rev(w, t - 1), -1));
            }
            changes.push((rev(w, t), 1));
        }
        out.push(ChangeBatch {
            as_of: AsOf {
                time: t as u64,
                lsn: Some(Lsn(t as u64)),
                published_at: None,
            },
            changes,
        });
    }
    out
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(2000);
    let rows: i64 = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(100);
    let brokers = std::env::var("TEST_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:19092".into());
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();

    let store = ViewStore::new();
    let cfg = KafkaSinkConfig::new(&brokers).with_prefix(&format!("bench{stamp}."));
    let topics: Vec<String> = cfg.topics.values().cloned().collect();
    let sink = KafkaSink::spawn(cfg, store.clone())?;
    let work = batches(n, rows);
    let t0 = Instant::now();
    for b in work.clone() {
        store.apply(b);
        // Yield now and then so the sink runs concurrently on this runtime, as with the engine.
        tokio::task::yield_now().await;
    }
    let applied = t0.elapsed();
    sink.shutdown().await;
    let el = t0.elapsed();
    let msgs: u64 = topics
        .iter()
        .map(|t| sinks::metrics::messages("kafka", t).get())
        .sum();
    println!(
        "kafka sink: {n} batches x {} changes, {msgs} messages delivered in {:.2}s = {:.0} msg/s (applies took {:.3}s; resubscribes {}; errors {})",
        rows + rows / 2 * 2,
        el.as_secs_f64(),
        msgs as f64 / el.as_secs_f64(),
        applied.as_secs_f64(),
        sinks::metrics::resubscribes("kafka").get(),
        sinks::metrics::errors("kafka").get()
    );

    let dir = std::env::temp_dir().join(format!("sink-bench-{stamp}"));
    let store = ViewStore::new();
    let sink = FileSink::spawn(FileSinkConfig::new(&dir), store.clone())?;
    let t0 = Instant::now();
    for b in work {
        store.apply(b);
        tokio::task::yield_now().await;
    }
    sink.shutdown().await;
    let el = t0.elapsed();
    let lines: u64 = ["revenue", "fraud_alerts"]
        .iter()
        .map(|v| sinks::metrics::messages("file", v).get())
        .sum();
    println!(
        "file sink: {lines} lines in {:.2}s = {:.0} lines/s (resubscribes {})",
        el.as_secs_f64(),
        lines as f64 / el.as_secs_f64(),
        sinks::metrics::resubscribes("file").get()
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
