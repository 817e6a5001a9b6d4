//! The file source: plain and framed JSONL lines, blank lines, tombstones, dead letters with
//! line numbers, grouping, and `run` over the engine channel.

use sources::deadletter::DeadLetters;
use sources::file::{read_file, read_file_with, FileSource};
use sources::group::GroupConfig;
use sources::*;
use std::path::PathBuf;
use std::sync::Arc;

fn order(order_id: i64, tx: u64, lsn: u64) -> String {
    format!(
        r#"{{"before":null,"after":{{"order_id":{order_id},"order_date":"2024-01-01T00:00:00Z","total_price":1234.5,"status":"pending","customer_id":1,"payment_id":null,"shipment_id":null}},"source":{{"table":"orders","txId":{tx},"lsn":{lsn}}},"op":"c"}}"#
    )
}

fn item_flat(id: i64, lsn: u64) -> String {
    format!(
        r#"{{"order_item_id":{id},"order_id":1,"product_id":2,"quantity":3,"price":"A5lh","__op":"c","__lsn":{lsn},"__deleted":"false","__source_txId":1}}"#
    )
}

struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, content: &str) -> TempFile {
        let p = std::env::temp_dir().join(format!("shopstream-{}-{name}", std::process::id()));
        std::fs::write(&p, content).unwrap();
        TempFile(p)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn sample() -> String {
    let framed_item = format!(
        r#"{{"topic":"shop.public.order_items","key":{{"order_item_id":10}},"value":{}}}"#,
        item_flat(10, 3)
    );
    let framed_string = format!(
        r#"{{"topic":"shop.public.order_items","partition":0,"value":{}}}"#,
        serde_json::to_string(&item_flat(11, 4)).unwrap()
    );
    [
        order(1, 1, 1),
        String::new(),
        framed_item,
        framed_string,
        "   ".into(),
        r#"{"topic":"shop.public.order_items","key":{"order_item_id":10},"value":null}"#.into(),
        "{not json".into(),
        order(2, 2, 5).replace(r#""status":"pending""#, r#""status":"bogus""#),
        order(3, 2, 6),
        r#"{"topic":"shop.public.orders","value":"{broken"}"#.into(),
        order(4, 3, 7),
    ]
    .join("\n")
}

#[test]
fn read_file_groups_and_dead_letters_with_line_numbers() {
    let f = TempFile::new("sample.jsonl", &sample());
    let (txs, stats) = read_file(&f.0).unwrap();
    // tx 1: order 1 + items 10, 11 (flattened items need the topic for their table)
    let shape: Vec<(Option<u64>, usize)> = txs.iter().map(|t| (t.tx_id, t.changes.len())).collect();
    assert_eq!(shape, vec![(Some(1), 3), (Some(2), 1), (Some(3), 1)]);
    assert_eq!(txs[0].changes[1].key(), Some(10));
    assert_eq!(
        txs[0].changes[1].kind,
        ChangeKind::Upsert {
            row: Row::OrderItem(OrderItem {
                order_item_id: 10,
                order_id: Some(1),
                product_id: Some(2),
                quantity: 3,
                price: Money(235873),
            }),
            unavailable: Unavailable::default(),
        }
    );
    // Lines 6–8 (a tombstone, two dead letters) were consumed while tx 1 was open: its
    // position covers them, so acknowledging tx 1 does not replay them.
    assert_eq!(txs[0].position, Position::FileLine(8));
    assert_eq!(txs[0].lsn, Some(Lsn(4)));
    assert_eq!(stats.total, 3);
    assert_eq!(stats.by_reason.get("malformed_json"), Some(&2));
    assert_eq!(stats.by_reason.get("wrong_type"), Some(&1));
}

#[test]
fn dead_letters_carry_the_line() {
    let f = TempFile::new("lines.jsonl", &sample());
    let dl = DeadLetters::in_memory(10);
    let (_, st) = read_file_with(&f.0, &dl, GroupConfig::default()).unwrap();
    assert_eq!(st.lines, 11);
    assert_eq!(st.events, 5);
    assert_eq!(st.dead_letters, 3);
    let lines: Vec<String> = dl
        .recent(10)
        .iter()
        .map(|d| d.position.rsplit(':').next().unwrap().to_string())
        .collect();
    assert_eq!(lines, vec!["7", "8", "10"]);
}

#[test]
fn run_sends_everything_then_returns() {
    let f = TempFile::new("run.jsonl", &sample());
    let (io, engine) = sources::channel(1);
    let dl = Arc::new(DeadLetters::in_memory(10));
    let src = FileSource::new(&f.0).with_dead_letters(dl.clone());
    let h = std::thread::spawn(move || src.run(io));
    // A capacity-1 channel: the source blocks until we take each transaction.
    let got: Vec<Transaction> = engine.input.iter().collect();
    let stats = h.join().unwrap().unwrap();
    let non_empty: Vec<_> = got.iter().filter(|t| !t.changes.is_empty()).collect();
    assert_eq!(non_empty.len(), 3);
    assert_eq!(stats.dead_letters, 3);
    assert_eq!(dl.total(), 3);
    // The last transaction acknowledges the last line.
    assert_eq!(got.last().unwrap().position, Position::FileLine(11));
}

#[test]
fn missing_file_is_an_error() {
    assert!(read_file(std::path::Path::new("/nonexistent/x.jsonl")).is_err());
}
