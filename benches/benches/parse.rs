//! Debezium parsing throughput (events/s and MB/s) for the message shapes we accept:
//! schemaless envelope, envelope with the `{schema, payload}` wrapper, flattened
//! (`ExtractNewRecordState`), and precise decimals (base64 + schema scale).
//!
//! `cargo bench -p benches --bench parse`. Each iteration parses a batch of distinct messages;
//! the "events" group reports events/s, the "bytes" group MB/s of message text.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sources::debezium::parse;
use sources::Parsed;
use std::hint::black_box;
use std::time::Duration;

const BATCH: usize = 1000;

const SOURCE_SCHEMA: &str = r#"{"type":"struct","fields":[{"type":"string","optional":false,"field":"version"},{"type":"string","optional":false,"field":"connector"},{"type":"string","optional":false,"field":"name"},{"type":"int64","optional":false,"field":"ts_ms"},{"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"true,last,false,incremental"},"default":"false","field":"snapshot"},{"type":"string","optional":false,"field":"db"},{"type":"string","optional":true,"field":"sequence"},{"type":"int64","optional":true,"field":"ts_us"},{"type":"int64","optional":true,"field":"ts_ns"},{"type":"string","optional":false,"field":"schema"},{"type":"string","optional":false,"field":"table"},{"type":"int64","optional":true,"field":"txId"},{"type":"int64","optional":true,"field":"lsn"},{"type":"int64","optional":true,"field":"xmin"}],"optional":false,"name":"io.debezium.connector.postgresql.Source","field":"source"}"#;

fn value_schema(field: &str, price: &str) -> String {
    format!(
        r#"{{"type":"struct","fields":[{{"type":"int32","optional":false,"default":0,"field":"order_id"}},{{"type":"string","optional":false,"name":"io.debezium.time.ZonedTimestamp","version":1,"field":"order_date"}},{price},{{"type":"string","optional":false,"field":"status"}},{{"type":"int32","optional":true,"field":"customer_id"}},{{"type":"int32","optional":true,"field":"payment_id"}},{{"type":"int32","optional":true,"field":"shipment_id"}}],"optional":true,"name":"ecommerce-cdc.public.orders.Value","field":"{field}"}}"#
    )
}

fn envelope_schema(price: &str) -> String {
    format!(
        r#"{{"type":"struct","fields":[{},{},{SOURCE_SCHEMA},{{"type":"string","optional":false,"field":"op"}},{{"type":"int64","optional":true,"field":"ts_ms"}},{{"type":"struct","fields":[{{"type":"string","optional":false,"field":"id"}},{{"type":"int64","optional":false,"field":"total_order"}},{{"type":"int64","optional":false,"field":"data_collection_order"}}],"optional":true,"name":"event.block","version":1,"field":"transaction"}}],"optional":false,"name":"ecommerce-cdc.public.orders.Envelope","version":2}}"#,
        value_schema("before", price),
        value_schema("after", price)
    )
}

const PRICE_DOUBLE: &str = r#"{"type":"double","optional":false,"field":"total_price"}"#;
const PRICE_DECIMAL: &str = r#"{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2","connect.decimal.precision":"14"},"field":"total_price"}"#;

fn after(i: usize, price: &str) -> String {
    format!(
        r#"{{"order_id":{i},"order_date":"2026-11-25T10:{:02}:{:02}.{:06}Z","total_price":{price},"status":"confirmed","customer_id":{},"payment_id":{},"shipment_id":null}}"#,
        i % 60,
        (i / 60) % 60,
        i % 1_000_000,
        i % 5000 + 1,
        i + 7
    )
}

fn source(i: usize) -> String {
    format!(
        r#"{{"version":"2.7.3.Final","connector":"postgresql","name":"ecommerce-cdc","ts_ms":1764064800{:03},"snapshot":"false","db":"shop","sequence":"[\"{}\",\"{}\"]","ts_us":1764064800000000,"ts_ns":1764064800000000000,"schema":"public","table":"orders","txId":{},"lsn":{},"xmin":null}}"#,
        i % 1000,
        30_000_000 + i * 100,
        30_000_000 + i * 100 + 56,
        800 + i / 3,
        30_000_000 + i * 100 + 56
    )
}

fn envelope(i: usize, price: &str) -> String {
    format!(
        r#"{{"before":null,"after":{},"source":{},"op":"c","ts_ms":1764064800123,"ts_us":1764064800123456,"ts_ns":1764064800123456789,"transaction":{{"id":"{}:{}","total_order":1,"data_collection_order":1}}}}"#,
        after(i, price),
        source(i),
        800 + i / 3,
        30_000_000 + i * 100
    )
}

/// Java-style double text for a price with cents.
fn double_price(i: usize) -> String {
    format!("{}.{}", 150_000 + i * 37, (i % 9) + 1)
}

/// Base64 of a 4-byte big-endian positive unscaled value.
fn b64_price(i: usize) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let v = (15_000_000 + i as u32 * 3701).to_be_bytes();
    let n = u32::from_be_bytes(v);
    let bits = [
        (n >> 26) & 63,
        (n >> 20) & 63,
        (n >> 14) & 63,
        (n >> 8) & 63,
        (n >> 2) & 63,
        (n << 4) & 63,
    ];
    let mut s: String = bits.iter().map(|&b| A[b as usize] as char).collect();
    s.push_str("==");
    format!("\"{s}\"")
}

fn shapes() -> Vec<(&'static str, Vec<String>)> {
    let schemaless: Vec<String> = (0..BATCH).map(|i| envelope(i, &double_price(i))).collect();
    let with_schema: Vec<String> = (0..BATCH)
        .map(|i| {
            format!(
                r#"{{"schema":{},"payload":{}}}"#,
                envelope_schema(PRICE_DOUBLE),
                envelope(i, &double_price(i))
            )
        })
        .collect();
    let flattened: Vec<String> = (0..BATCH)
        .map(|i| {
            let a = after(i, &double_price(i));
            format!(
                r#"{},"__op":"c","__table":"orders","__lsn":{},"__source_txId":{},"__deleted":"false"}}"#,
                &a[..a.len() - 1],
                30_000_000 + i * 100,
                800 + i / 3
            )
        })
        .collect();
    let precise: Vec<String> = (0..BATCH)
        .map(|i| {
            format!(
                r#"{{"schema":{},"payload":{}}}"#,
                envelope_schema(PRICE_DECIMAL),
                envelope(i, &b64_price(i))
            )
        })
        .collect();
    vec![
        ("schemaless", schemaless),
        ("with_schema", with_schema),
        ("flattened", flattened),
        ("precise_decimal", precise),
    ]
}

fn run(msgs: &[String]) -> usize {
    let mut n = 0;
    for m in msgs {
        if let Ok(Parsed::Event(e)) = parse(Some("ecommerce-cdc.public.orders"), Some(m.as_bytes()))
        {
            n += e.change.key().unwrap_or(0) as usize & 1;
        }
    }
    n
}

fn bench(c: &mut Criterion) {
    let shapes = shapes();
    for (name, msgs) in &shapes {
        // Sanity: every message must parse, or the figures are meaningless.
        for m in msgs {
            if let Err(e) = parse(Some("ecommerce-cdc.public.orders"), Some(m.as_bytes())) {
                panic!("{name}: {e}: {m}");
            }
        }
        let bytes: usize = msgs.iter().map(String::len).sum();
        eprintln!("{name}: {} bytes/event on average", bytes / msgs.len());
    }
    let mut g = c.benchmark_group("events");
    g.measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    for (name, msgs) in &shapes {
        g.throughput(Throughput::Elements(msgs.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), msgs, |b, m| {
            b.iter(|| black_box(run(m)))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("bytes");
    g.measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    for (name, msgs) in &shapes {
        g.throughput(Throughput::Bytes(msgs.iter().map(|m| m.len() as u64).sum()));
        g.bench_with_input(BenchmarkId::from_parameter(name), msgs, |b, m| {
            b.iter(|| black_box(run(m)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
