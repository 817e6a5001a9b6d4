//! File sink: content and rotation.

mod common;

use common::*;
use serde_json::Value;
use sinks::file::{FileSink, FileSinkConfig};
use std::collections::BTreeSet;
use std::path::Path;
use view_store::{ViewName, ViewStore};

fn lines(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonl_per_view_with_rotation() {
    let dir = std::env::temp_dir().join(unique("sinks-file-"));
    let store = ViewStore::new();
    let mut a = Applier::new(store.clone());
    a.apply(vec![(rev(0, 1, 100), 1)]);
    let mut cfg = FileSinkConfig::new(&dir);
    // Room for about three revenue lines per file.
    cfg.max_bytes = 700;
    cfg.max_files = 3;
    let sink = FileSink::spawn(cfg, store.clone()).unwrap();
    a.apply(vec![
        (rev(0, 1, 100), -1),
        (rev(0, 2, 300), 1),
        (high_value(1, 1, 5), 1),
    ]);
    for i in 1..=10 {
        a.apply(vec![(rev(i, 1, i), 1)]);
    }
    sink.shutdown().await;

    // fraud_alerts: one line, exact shape.
    let f = lines(&dir.join("fraud_alerts.jsonl"));
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["op"], "+");
    assert_eq!(f[0]["as_of"]["time"], 2);
    assert_eq!(f[0]["row"], high_value(1, 1, 5).to_json());

    // revenue: 1 snapshot line + 2 + 10 = 13 lines over the current file and rotated ones,
    // in order, none bigger than max_bytes, at most 3 rotated files kept.
    let mut all = Vec::new();
    let mut files = Vec::new();
    for i in (1..=5).rev() {
        let p = dir.join(format!("revenue.jsonl.{i}"));
        if p.exists() {
            files.push(p);
        }
    }
    files.push(dir.join("revenue.jsonl"));
    assert_eq!(files.len(), 4, "current + 3 rotated: {files:?}");
    assert!(!dir.join("revenue.jsonl.4").exists());
    for p in &files {
        assert!(std::fs::metadata(p).unwrap().len() <= 700);
        all.extend(lines(p));
    }
    let ops: Vec<(u64, String)> = all
        .iter()
        .map(|l| {
            (
                l["as_of"]["time"].as_u64().unwrap(),
                l["op"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // Oldest lines were rotated away; what is left is the tail of the sequence, in order.
    let last = ops.last().unwrap().clone();
    assert_eq!(last, (12, "+".to_string()));
    assert!(ops.windows(2).all(|w| w[0].0 <= w[1].0), "{ops:?}");
    assert_eq!(all.last().unwrap()["row"], rev(10, 1, 10).to_json());

    // Without rotation pressure, replaying the lines rebuilds the view exactly.
    let dir2 = std::env::temp_dir().join(unique("sinks-file-"));
    let store2 = ViewStore::new();
    let mut b = Applier::new(store2.clone());
    b.apply(vec![(rev(0, 1, 100), 1), (top(1, 3, 4), 1)]);
    let sink = FileSink::spawn(FileSinkConfig::new(&dir2), store2.clone()).unwrap();
    b.apply(vec![
        (rev(0, 1, 100), -1),
        (rev(0, 2, 300), 1),
        (top(1, 3, 4), -1),
    ]);
    b.apply(vec![(rev(3, 1, 7), 1)]);
    sink.shutdown().await;
    for view in [ViewName::Revenue, ViewName::TopProducts] {
        let mut rows = BTreeSet::new();
        for l in lines(&dir2.join(format!("{}.jsonl", view.as_str()))) {
            let r = l["row"].to_string();
            match l["op"].as_str().unwrap() {
                "+" => assert!(rows.insert(r)),
                "-" => assert!(rows.remove(&r)),
                other => panic!("op {other}"),
            }
        }
        let want: BTreeSet<String> = store2
            .snapshot(view)
            .1
            .iter()
            .map(|r| r.to_json().to_string())
            .collect();
        assert_eq!(rows, want, "{view:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&dir2).unwrap();
}
