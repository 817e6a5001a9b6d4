//! `engine replay FILE --dump DIR` as a user runs it: the real binary, a JSONL file mixing
//! Debezium shapes (envelope, flattened, a duplicate, an irrelevant update, a create+delete, a
//! malformed line), and the dump checked byte for byte against hand-computed rows. Also the
//! same replay on a two-process timely cluster gives the same dump.

use std::path::{Path, PathBuf};
use std::process::Command;

fn engine() -> Command {
    Command::new(env!("CARGO_BIN_EXE_engine"))
}

fn src(table: &str, tx: u64, lsn: u64) -> String {
    format!(
        r#""source":{{"version":"2.7.0.Final","connector":"postgresql","name":"ecommerce-cdc","ts_ms":1767225600000,"snapshot":"false","db":"shop","schema":"public","table":"{table}","txId":{tx},"lsn":{lsn}}}"#
    )
}

fn input(dir: &Path) -> PathBuf {
    let lines = [
        // Products: p1 in category 1, p2 in category 2 (a snapshot read).
        format!(r#"{{"before":null,"after":{{"product_id":1,"sku":"A","name":"Laptop","description":null,"price":"5000000.00","stock":5,"category_id":1,"is_active":true,"created_at":"2026-01-01T00:00:00Z","updated_at":null}},{},"op":"r","ts_ms":0}}"#, src("products", 90, 10)),
        format!(r#"{{"before":null,"after":{{"product_id":2,"sku":"B","name":"Phone","description":null,"price":"2000000.00","stock":5,"category_id":2,"is_active":true,"created_at":"2026-01-01T00:00:00Z","updated_at":null}},{},"op":"r","ts_ms":0}}"#, src("products", 90, 11)),
        // Order 1 (high value) with two items, one transaction.
        format!(r#"{{"before":null,"after":{{"order_id":1,"order_date":"2026-01-01T00:00:30Z","total_price":"12000000.00","status":"pending","customer_id":7,"payment_id":null,"shipment_id":null}},{},"op":"c","ts_ms":0}}"#, src("orders", 100, 20)),
        format!(r#"{{"before":null,"after":{{"order_item_id":1,"order_id":1,"product_id":1,"quantity":2,"price":"5000000.00"}},{},"op":"c","ts_ms":0}}"#, src("order_items", 100, 21)),
        format!(r#"{{"before":null,"after":{{"order_item_id":2,"order_id":1,"product_id":2,"quantity":1,"price":"2000000.00"}},{},"op":"c","ts_ms":0}}"#, src("order_items", 100, 22)),
        // Order 2 in the flattened ExtractNewRecordState form.
        r#"{"order_id":2,"order_date":"2026-01-01T00:01:10Z","total_price":"300.50","status":"pending","customer_id":8,"payment_id":null,"shipment_id":null,"__op":"c","__table":"orders","__lsn":30,"__deleted":"false"}"#.to_string(),
        r#"{"order_item_id":3,"order_id":2,"product_id":1,"quantity":1,"price":"300.50","__op":"c","__table":"order_items","__lsn":31,"__deleted":"false"}"#.to_string(),
        // Redelivered order 1 create (same LSN): nothing changes.
        format!(r#"{{"before":null,"after":{{"order_id":1,"order_date":"2026-01-01T00:00:30Z","total_price":"12000000.00","status":"pending","customer_id":7,"payment_id":null,"shipment_id":null}},{},"op":"c","ts_ms":0}}"#, src("orders", 100, 20)),
        // Order 2 shipped: no view changes.
        format!(r#"{{"before":null,"after":{{"order_id":2,"order_date":"2026-01-01T00:01:10Z","total_price":"300.50","status":"shipped","customer_id":8,"payment_id":null,"shipment_id":null}},{},"op":"u","ts_ms":0}}"#, src("orders", 102, 40)),
        // Order 3 created and deleted.
        format!(r#"{{"before":null,"after":{{"order_id":3,"order_date":"2026-01-01T00:02:00Z","total_price":"99.00","status":"pending","customer_id":7,"payment_id":null,"shipment_id":null}},{},"op":"c","ts_ms":0}}"#, src("orders", 103, 50)),
        format!(r#"{{"before":{{"order_id":3}},"after":null,{},"op":"d","ts_ms":0}}"#, src("orders", 104, 60)),
        // Malformed: a dead letter, and the replay goes on.
        "{not json".to_string(),
    ];
    let path = dir.join("events.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("shopstream-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn replay(file: &Path, dump: &Path, extra: &[&str]) -> std::process::Output {
    let out = engine()
        .args([
            "replay",
            file.to_str().unwrap(),
            "--dump",
            dump.to_str().unwrap(),
            "--retention",
            "none",
        ])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn replay_dumps_every_view_in_the_spec_format() {
    let dir = tmpdir("replay");
    let file = input(&dir);
    let dump = dir.join("dump");
    let out = replay(&file, &dump, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("1 dead letters"), "{stderr}");

    let revenue = std::fs::read_to_string(dump.join("revenue.json")).unwrap();
    let expected = r#"[
{"window":"1m","window_start":"2026-01-01T00:00:00Z","order_count":1,"revenue":"12000000.00","avg_order_value":"12000000.00","prev_revenue":"0.00","trend_pct":null},
{"window":"1m","window_start":"2026-01-01T00:01:00Z","order_count":1,"revenue":"300.50","avg_order_value":"300.50","prev_revenue":"12000000.00","trend_pct":-100.0},
{"window":"5m","window_start":"2026-01-01T00:00:00Z","order_count":2,"revenue":"12000300.50","avg_order_value":"6000150.25","prev_revenue":"0.00","trend_pct":null},
{"window":"1h","window_start":"2026-01-01T00:00:00Z","order_count":2,"revenue":"12000300.50","avg_order_value":"6000150.25","prev_revenue":"0.00","trend_pct":null}
]
"#;
    assert_eq!(revenue, expected);

    let fraud = std::fs::read_to_string(dump.join("fraud_alerts.json")).unwrap();
    assert_eq!(
        fraud,
        "[\n{\"rule\":\"high_value\",\"customer_id\":7,\"order_id\":1,\"start\":\"2026-01-01T00:00:30Z\",\"order_count\":1,\"amount\":\"12000000.00\"}\n]\n"
    );

    // Category sales over `all`: category 1 has 3 units (2 + 1) in two orders.
    let cs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dump.join("category_sales.json")).unwrap())
            .unwrap();
    let all_cat1 = cs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["window"] == "all" && r["category_id"] == 1)
        .unwrap();
    assert_eq!(all_cat1["quantity"], 3);
    assert_eq!(all_cat1["revenue"], "10000300.50");
    assert_eq!(all_cat1["order_count"], 2);
    assert!(all_cat1["window_start"].is_null());

    for view in [
        "top_products",
        "trending_products",
        "also_bought",
        "recommendations",
    ] {
        let v: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dump.join(format!("{view}.json"))).unwrap(),
        )
        .unwrap();
        assert!(v.is_array(), "{view}.json is a JSON array");
    }
}

#[test]
fn replay_on_a_two_process_cluster_matches_one_process() {
    let dir = tmpdir("cluster");
    let file = input(&dir);
    let single = dir.join("single");
    replay(&file, &single, &["--workers", "2"]);

    // Two processes on loopback: free ports picked by binding port 0.
    let ports: Vec<u16> = (0..2)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        })
        .collect();
    let hostfile = dir.join("hosts.txt");
    std::fs::write(
        &hostfile,
        format!("127.0.0.1:{}\n127.0.0.1:{}\n", ports[0], ports[1]),
    )
    .unwrap();
    let cluster = dir.join("cluster");
    let h = hostfile.to_str().unwrap().to_string();
    let other = {
        let file = file.clone();
        let dump = dir.join("unused");
        let h = h.clone();
        std::thread::spawn(move || {
            engine()
                .args([
                    "replay",
                    file.to_str().unwrap(),
                    "--dump",
                    dump.to_str().unwrap(),
                    "--retention",
                    "none",
                ])
                .args(["--processes", "2", "--process-id", "1", "--hostfile", &h])
                .output()
                .unwrap()
        })
    };
    replay(
        &file,
        &cluster,
        &["--processes", "2", "--process-id", "0", "--hostfile", &h],
    );
    let o = other.join().unwrap();
    assert!(
        o.status.success(),
        "process 1 failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    for view in [
        "revenue",
        "top_products",
        "trending_products",
        "category_sales",
        "fraud_alerts",
        "also_bought",
        "recommendations",
    ] {
        let a = std::fs::read_to_string(single.join(format!("{view}.json"))).unwrap();
        let b = std::fs::read_to_string(cluster.join(format!("{view}.json"))).unwrap();
        assert_eq!(
            a, b,
            "{view} differs between one process and a two-process cluster"
        );
    }
}
