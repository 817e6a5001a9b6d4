//! View endpoints, SSE change streams, min_lsn waits, metadata routes, errors, auth and CORS,
//! over a real socket.
// Money literals group their cents: 4_000_000_50 is 4,000,000.50.
#![allow(clippy::inconsistent_digit_grouping)]

mod common;

use api::ApiConfig;
use common::*;
use serde_json::{json, Value};
use sources::{Lsn, Micros, Money};
use std::collections::BTreeSet;
use std::time::Duration;
use view_store::*;

fn rows_of(v: &Value) -> &Vec<Value> {
    v["rows"].as_array().expect("rows array")
}

#[tokio::test]
async fn view_endpoints_answer_with_as_of_and_filters() {
    let t = TestApi::start(ApiConfig::default());
    fill(&t.store, 3, 0x16_B374_D848);

    let (c, v) = t.get("/views").await;
    assert_eq!(c, 200);
    assert_eq!(v["as_of"]["time"], 3);
    assert_eq!(v["as_of"]["lsn"], "16/B374D848");
    let sizes: Vec<(String, u64)> = v["views"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["name"].as_str().unwrap().to_string(),
                x["rows"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(sizes.len(), 7);
    assert!(sizes.contains(&("revenue".into(), 3)));
    // recommendations are computed when read: its size is the customers with a list
    assert!(sizes.contains(&("recommendations".into(), 2)));

    let (c, v) = t.get("/views/revenue?window=1m").await;
    assert_eq!(c, 200);
    assert_eq!(v["view"], "revenue");
    assert_eq!(v["as_of"]["time"], 3);
    let r = rows_of(&v);
    assert_eq!(r.len(), 2);
    assert_eq!(
        r[1],
        json!({"window": "1m", "window_start": "2025-11-25T10:01:00Z", "order_count": 3,
            "revenue": "4000000.50", "avg_order_value": "1333333.50", "prev_revenue": "2500000.00",
            "trend_pct": 60.0})
    );
    let (_, v) = t.get("/views/revenue").await;
    assert_eq!(rows_of(&v).len(), 3);
    let (_, v) = t.get("/views/revenue?window=5m").await;
    assert_eq!(rows_of(&v).len(), 1);
    let (_, v) = t
        .get("/views/revenue?window=1m&from=2025-11-25T10:01:00Z")
        .await;
    assert_eq!(rows_of(&v).len(), 1);
    let (_, v) = t.get("/views/revenue?limit=1").await;
    assert_eq!(rows_of(&v).len(), 1);
    assert_eq!(v["truncated"], true);

    let (_, v) = t
        .get("/views/top-products?window=all&metric=revenue&category=3")
        .await;
    let r = rows_of(&v);
    assert_eq!(r.len(), 2);
    assert!(r
        .iter()
        .all(|x| x["category_id"] == 3 && x["metric"] == "revenue" && x["window"] == "all"));
    assert_eq!(r[0]["rank"], 1);
    assert_eq!(r[0]["product_id"], 11);
    assert_eq!(r[0]["revenue"], "3000000.00");
    let (_, v) = t
        .get("/views/top-products?window=all&category=global")
        .await;
    assert_eq!(rows_of(&v).len(), 4);
    assert!(rows_of(&v).iter().all(|x| x["category_id"].is_null()));
    let (_, v) = t.get("/views/top-products?window=1m&metric=quantity").await;
    assert_eq!(rows_of(&v).len(), 2);
    assert_eq!(rows_of(&v)[0]["window_start"], "2025-11-25T10:01:00Z");

    let (_, v) = t.get("/views/trending").await;
    assert_eq!(v["view"], "trending_products");
    assert_eq!(rows_of(&v)[0]["growth"], 4);
    let (_, v) = t.get("/views/category-sales?window=all&category=3").await;
    assert_eq!(rows_of(&v)[0]["revenue"], "4000000.50");
    assert_eq!(rows_of(&v)[0]["order_count"], 4);

    let (_, v) = t.get("/views/fraud-alerts").await;
    assert_eq!(rows_of(&v).len(), 2);
    let (_, v) = t.get("/views/fraud-alerts?rule=high_value").await;
    let r = rows_of(&v);
    assert_eq!(r.len(), 1);
    assert_eq!(
        r[0],
        json!({"rule": "high_value", "customer_id": 7, "order_id": 101,
            "start": "2025-11-25T10:00:05Z", "order_count": 1, "amount": "12000000.00"})
    );
    let (_, v) = t.get("/views/fraud-alerts?rule=").await;
    assert_eq!(rows_of(&v).len(), 2, "empty rule = all rules");

    let (_, v) = t.get("/products/11/also-bought").await;
    assert_eq!(v["view"], "also_bought");
    let r = rows_of(&v);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0]["other_product_id"], 12);
    let (_, v) = t.get("/products/11/also-bought?k=1").await;
    assert_eq!(rows_of(&v).len(), 1);
    let (_, v) = t.get("/products/999/also-bought").await;
    assert_eq!(rows_of(&v).len(), 0);
    // derived by the store from the co-occurrence counts: the top 10 of 12 partners
    let (_, v) = t.get("/products/1/also-bought").await;
    let r = rows_of(&v);
    assert_eq!(r.len(), 10);
    assert_eq!(
        r[0],
        json!({"product_id": 1, "rank": 1, "other_product_id": 101, "order_count": 29})
    );
    assert_eq!(r[9]["other_product_id"], 110);

    let (_, v) = t.get("/recommendations/7").await;
    assert_eq!(v["view"], "recommendations");
    let r = rows_of(&v);
    assert_eq!(r.len(), 10, "k defaults to 10");
    assert_eq!(
        r[0],
        json!({"customer_id": 7, "rank": 1, "product_id": 101, "score": 29})
    );
    let (_, v) = t.get("/recommendations/7?k=3").await;
    assert_eq!(rows_of(&v).len(), 3);
    let (_, v) = t.get("/recommendations/8?k=10").await;
    assert_eq!(rows_of(&v).len(), 1);

    for name in ["also_bought", "recommendations", "top-products", "trending"] {
        let (c, v) = t.get(&format!("/views/{name}")).await;
        assert_eq!(c, 200, "{name}");
        assert!(!rows_of(&v).is_empty());
        assert!(v["as_of"].is_object());
    }
}

#[tokio::test]
async fn bad_parameters_get_400_with_the_parameter() {
    let t = TestApi::start(ApiConfig::default());
    fill(&t.store, 1, 10);
    for (path, param) in [
        ("/views/revenue?window=7x", "window"),
        ("/views/revenue?window=", "window"),
        ("/views/revenue?limit=0", "limit"),
        ("/views/revenue?limit=abc", "limit"),
        ("/views/revenue?from=yesterday", "from"),
        ("/views/revenue?limt=5", "limt"),
        ("/views/top-products?metric=profit", "metric"),
        ("/views/top-products?category=books", "category"),
        ("/views/category-sales?category=global", "category"),
        ("/views/fraud-alerts?rule=nope", "rule"),
        ("/views/fraud-alerts?customer=x", "customer"),
        ("/products/abc/also-bought", "id"),
        ("/products/1/also-bought?k=0", "k"),
        ("/recommendations/x", "customer_id"),
        ("/recommendations/1?k=100000", "k"),
        ("/views/revenue?min_lsn=zz/1", "min_lsn"),
        ("/views/revenue?as_of=-3", "as_of"),
        ("/views/revenue?min_lsn=1&as_of=1", "as_of"),
        ("/views/changes?views=revenue,nope", "views"),
        // computed when read: no change stream
        ("/views/recommendations/changes", "name"),
        ("/views/changes?views=revenue,recommendations", "views"),
        ("/info?x=1", "x"),
    ] {
        let (c, v) = t.get(path).await;
        assert_eq!(c, 400, "{path}: {v}");
        assert_eq!(v["parameter"], param, "{path}: {v}");
        assert!(v["error"].as_str().unwrap().len() > 5, "{path}: {v}");
    }
}

#[tokio::test]
async fn unknown_routes_get_404_json() {
    let t = TestApi::start(ApiConfig::default());
    for path in [
        "/nope",
        "/views/nope",
        "/views/nope/changes",
        "/api/v2/orders",
    ] {
        let (c, v) = t.get(path).await;
        assert_eq!(c, 404, "{path}");
        assert!(v["error"].is_string(), "{path}: {v}");
    }
    let r = t.http.post(t.url("/views")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("POST"));
}

#[tokio::test]
async fn tables_answer_503_without_a_database() {
    let t = TestApi::start(ApiConfig::default());
    for path in [
        "/customers",
        "/orders/1",
        "/order",
        "/product_views?limit=5",
    ] {
        let (c, v) = t.get(path).await;
        assert_eq!(c, 503, "{path}");
        assert!(v["error"].as_str().unwrap().contains("database"), "{v}");
    }
}

#[tokio::test]
async fn min_lsn_waits_for_the_store_or_times_out_with_504() {
    let cfg = ApiConfig {
        min_lsn_timeout: Duration::from_secs(10),
        ..Default::default()
    };
    let t = TestApi::start(cfg);
    fill(&t.store, 1, 0x100);

    // Already reached: immediate answer.
    let (c, v) = t.get("/views/revenue?min_lsn=0/100").await;
    assert_eq!(c, 200);
    assert_eq!(v["as_of"]["lsn"], "0/100");

    // Ahead of the store: the answer waits for the engine to publish it.
    let store = t.store.clone();
    let req = t.get("/views/fraud-alerts?min_lsn=0/200");
    let publish = async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        store.apply(ChangeBatch {
            as_of: as_of(2, 0x150),
            changes: vec![],
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        store.apply(ChangeBatch {
            as_of: as_of(3, 0x200),
            changes: vec![(
                ViewRow::FraudAlert(FraudAlertRow {
                    rule: Rule::HighValue,
                    customer_id: Some(9),
                    order_id: Some(555),
                    start: Micros(T0),
                    order_count: 1,
                    amount: Some(Money(20_000_000_00)),
                }),
                1,
            )],
        });
    };
    let ((c, v), ()) = tokio::join!(req, publish);
    assert_eq!(c, 200, "{v}");
    assert_eq!(v["as_of"]["lsn"], "0/200");
    assert_eq!(v["as_of"]["time"], 3);
    assert!(
        rows_of(&v).iter().any(|r| r["order_id"] == 555),
        "read your write"
    );

    // Integer LSNs and the as_of alias work too.
    let (c, _) = t.get("/views/revenue?as_of=512").await;
    assert_eq!(c, 200);

    // Never reached: 504 with a clear message, after the (short) timeout.
    let t2 = TestApi::start(ApiConfig {
        min_lsn_timeout: Duration::from_millis(300),
        ..Default::default()
    });
    fill(&t2.store, 1, 0x100);
    let (c, v) = t2.get("/recommendations/7?min_lsn=16/B374D848").await;
    assert_eq!(c, 504, "{v}");
    let msg = v["error"].as_str().unwrap();
    assert!(
        msg.contains("16/B374D848") && msg.contains("0/100"),
        "{msg}"
    );
    assert_eq!(v["as_of"]["time"], 1);
}

/// Applies a changing sequence: updates (retract + insert), deletes and inserts, one batch per
/// engine time, for `n` times starting at `from`.
fn churn(store: &ViewStore, from: u64, n: u64) {
    let w1 = Window::Size(M1);
    for time in from..from + n {
        let (_, current) = store.snapshot(ViewName::Revenue);
        let mut changes: Vec<(ViewRow, i64)> = Vec::new();
        // Update the latest window: retract its row, insert a grown one.
        if let Some(last) = current.last().cloned() {
            if let ViewRow::Revenue(r) = &last {
                changes.push((last.clone(), -1));
                changes.push((
                    revenue(
                        w1,
                        r.window_start.unwrap().0,
                        r.order_count + 1,
                        r.revenue.0 + 1000,
                        r.prev_revenue.0,
                    ),
                    1,
                ));
            }
        }
        // Every third time a new window appears; every fifth the oldest disappears.
        if time % 3 == 0 {
            changes.push((revenue(w1, T0 + time as i64 * M1, 1, 500, 0), 1));
        }
        if time % 5 == 0 && current.len() > 2 {
            changes.push((current[0].clone(), -1));
        }
        store.apply(ChangeBatch {
            as_of: as_of(time, 1000 + time),
            changes,
        });
    }
}

fn replay(snapshot: &[Value], changes: &[Value]) -> BTreeSet<String> {
    let mut set: BTreeSet<String> = snapshot.iter().map(|r| r.to_string()).collect();
    for c in changes {
        let row = c["row"].to_string();
        match c["op"].as_str().unwrap() {
            "+" => assert!(set.insert(row), "insert of a present row"),
            "-" => assert!(set.remove(&row), "retraction of an absent row: {row}"),
            op => panic!("op {op}"),
        }
    }
    set
}

#[tokio::test]
async fn sse_snapshot_then_every_change_in_order_for_many_subscribers() {
    let t = TestApi::start(ApiConfig::default());
    fill(&t.store, 1, 1001);

    let mut readers = Vec::new();
    for _ in 0..8 {
        readers.push(SseReader::open(&t.http, &t.url("/views/revenue/changes")).await);
    }
    let mut multi =
        SseReader::open(&t.http, &t.url("/views/changes?views=revenue,fraud_alerts")).await;

    // Snapshots first.
    let mut snaps = Vec::new();
    for r in readers.iter_mut() {
        let e = r.next().await.unwrap();
        assert_eq!(e.event, "snapshot");
        assert_eq!(e.data["view"], "revenue");
        assert_eq!(e.data["as_of"]["time"], 1);
        snaps.push(e.data["rows"].as_array().unwrap().clone());
    }

    let store = t.store.clone();
    std::thread::spawn(move || churn(&store, 2, 60))
        .join()
        .unwrap();
    let (final_as_of, final_rows) = t.store.snapshot(ViewName::Revenue);
    assert_eq!(final_as_of.time, 61);
    let want: BTreeSet<String> = final_rows.iter().map(|r| r.to_json().to_string()).collect();

    for (r, snap) in readers.iter_mut().zip(&snaps) {
        let mut changes = Vec::new();
        let mut expect_time = 2;
        while expect_time <= 61 {
            let e = r.next().await.unwrap();
            assert_eq!(e.event, "change");
            assert_eq!(e.data["view"], "revenue");
            let time = e.data["as_of"]["time"].as_u64().unwrap();
            // Every churn time changes revenue, so the times are consecutive: no gaps.
            assert_eq!(time, expect_time, "in order, without gaps");
            assert_eq!(e.data["as_of"]["lsn"], Lsn(1000 + time).to_string());
            changes.extend(e.data["changes"].as_array().unwrap().iter().cloned());
            expect_time += 1;
        }
        assert_eq!(
            replay(snap, &changes),
            want,
            "snapshot + changes = the view after"
        );
    }
    // And it matches what a plain read answers.
    let (_, v) = t.get("/views/revenue").await;
    let read: BTreeSet<String> = rows_of(&v).iter().map(|r| r.to_string()).collect();
    assert_eq!(read, want);

    // The multi-view stream: one snapshot per view, then revenue changes.
    let mut seen_snap = BTreeSet::new();
    for _ in 0..2 {
        let e = multi.next().await.unwrap();
        assert_eq!(e.event, "snapshot");
        seen_snap.insert(e.data["view"].as_str().unwrap().to_string());
    }
    assert_eq!(
        seen_snap,
        BTreeSet::from(["fraud_alerts".into(), "revenue".into()])
    );
    let e = multi.next().await.unwrap();
    assert_eq!(e.event, "change");
    assert_eq!(e.data["as_of"]["time"], 2);
}

#[tokio::test]
async fn a_slow_sse_subscriber_is_dropped_with_a_final_event() {
    let t = TestApi::start(ApiConfig::default());
    let mut r = SseReader::open(&t.http, &t.url("/views/top_products/changes")).await;
    let e = r.next().await.unwrap();
    assert_eq!(e.event, "snapshot");
    // Do not read while the engine publishes far more batches than the queue holds, each big
    // enough that socket buffers fill up too.
    let store = t.store.clone();
    std::thread::spawn(move || {
        let mut prev: Vec<ViewRow> = Vec::new();
        for time in 1..=4000u64 {
            let next: Vec<ViewRow> = (0..40)
                .map(|i| {
                    top(
                        Window::All,
                        None,
                        Some(i),
                        Metric::Quantity,
                        1,
                        time as i64,
                        time as i64,
                        1,
                    )
                })
                .collect();
            let mut changes: Vec<(ViewRow, i64)> = prev.drain(..).map(|r| (r, -1)).collect();
            changes.extend(next.iter().cloned().map(|r| (r, 1)));
            prev = next;
            store.apply(ChangeBatch {
                as_of: as_of(time, time),
                changes,
            });
        }
    })
    .join()
    .unwrap();
    assert!(
        t.store.dropped_subscribers() >= 1,
        "the store dropped the subscriber"
    );
    // The client then reads what was queued, in order, and finally `dropped`.
    let mut last_time = 0;
    loop {
        let e = r
            .next()
            .await
            .expect("a final dropped event before the end");
        if e.event == "dropped" {
            assert!(e.data["error"].as_str().unwrap().contains("reconnect"));
            assert_eq!(e.data["as_of"]["time"], last_time);
            break;
        }
        assert_eq!(e.event, "change");
        let time = e.data["as_of"]["time"].as_u64().unwrap();
        assert_eq!(time, last_time + 1);
        last_time = time;
    }
    assert!(last_time < 4000);
    assert!(r.next().await.is_none(), "the stream ends after dropped");
    // A fresh subscription works and starts from the current state.
    let mut r2 = SseReader::open(&t.http, &t.url("/views/top-products/changes")).await;
    let e = r2.next().await.unwrap();
    assert_eq!(e.data["as_of"]["time"], 4000);
    assert_eq!(e.data["rows"].as_array().unwrap().len(), 40);
}

#[tokio::test]
async fn info_health_metrics_openapi_docs() {
    let t = TestApi::start(ApiConfig::default());
    fill(&t.store, 5, 0x55);
    t.status.set_source("file:orders.jsonl");
    t.status.add_events(42);

    // Not connected yet: unhealthy with the reason.
    let (c, v) = t.get("/health").await;
    assert_eq!(c, 503, "{v}");
    assert_eq!(v["status"], "unavailable");
    assert!(v["reasons"][0].as_str().unwrap().contains("not connected"));

    t.status.set_connected(true);
    t.status.record_applied(as_of(5, 0x55), Some(Micros(T0)), 5);
    t.status.set_lag_ms(20);
    let (c, v) = t.get("/health").await;
    assert_eq!(c, 200, "{v}");
    assert_eq!(v["status"], "ok");
    assert_eq!(v["checks"]["last_transaction"]["lsn"], "0/55");
    assert_eq!(v["checks"]["database"]["configured"], false);

    t.status.set_lag_ms(3_600_000);
    let (c, v) = t.get("/health").await;
    assert_eq!(c, 503);
    assert!(v["reasons"][0].as_str().unwrap().contains("lag"), "{v}");
    t.status.set_lag_ms(10);

    let (c, v) = t.get("/info").await;
    assert_eq!(c, 200);
    assert_eq!(v["engine"]["source"], "file:orders.jsonl");
    assert_eq!(v["engine"]["events_ingested"], 42);
    assert_eq!(v["as_of"]["time"], 5);
    assert_eq!(v["views"].as_array().unwrap().len(), 7);

    api::metrics::observe_visible_latency(Duration::from_millis(3));
    api::metrics::transactions_applied(5);
    let (c, m) = t.get_text("/metrics").await;
    assert_eq!(c, 200);
    for needle in [
        "shopstream_http_requests_total{method=\"GET\",route=\"/info\",status=\"200\"}",
        "shopstream_http_requests_total{method=\"GET\",route=\"/health\",status=\"503\"}",
        "shopstream_view_rows{view=\"recommendations\"} 2",
        "shopstream_visible_latency_seconds_bucket",
        "shopstream_transactions_applied_total",
        "shopstream_store_state{fact=\"engine_time\"} 5",
    ] {
        assert!(m.contains(needle), "missing {needle} in\n{m}");
    }

    // OpenAPI describes every route the server has.
    let (c, spec) = t.get("/openapi.json").await;
    assert_eq!(c, 200);
    assert_eq!(spec["openapi"], "3.0.3");
    let paths = spec["paths"].as_object().unwrap();
    let mut expected = vec![
        "/",
        "/info",
        "/health",
        "/metrics",
        "/openapi.json",
        "/docs",
        "/views",
        "/views/revenue",
        "/views/top-products",
        "/views/trending",
        "/views/category-sales",
        "/views/fraud-alerts",
        "/views/{name}",
        "/views/{name}/changes",
        "/views/changes",
        "/products/{id}/also-bought",
        "/recommendations/{customer_id}",
    ];
    let tables = [
        "customers",
        "products",
        "categories",
        "orders",
        "order_items",
        "carts",
        "wishlists",
        "payments",
        "shipments",
        "product_views",
        "order",
        "order_item",
        "cart",
        "wishlist",
        "payment",
    ];
    let table_paths: Vec<String> = tables
        .iter()
        .flat_map(|t| [format!("/{t}"), format!("/{t}/{{id}}")])
        .collect();
    expected.extend(table_paths.iter().map(String::as_str));
    for p in expected {
        assert!(paths.contains_key(p), "openapi lacks {p}");
        assert!(paths[p]["get"]["summary"].is_string());
    }
    for p in paths.keys() {
        // Every documented path exists (no 404) — parameters replaced by sample values.
        let concrete = p
            .replace("{name}", "revenue")
            .replace("{id}", "1")
            .replace("{customer_id}", "7");
        let r = t.http.get(t.url(&concrete)).send().await.unwrap();
        assert_ne!(r.status().as_u16(), 404, "{p} is documented but not routed");
    }

    let (c, html) = t.get_text("/docs").await;
    assert_eq!(c, 200);
    assert!(html.contains("swagger-ui-bundle.js") && html.contains("/openapi.json"));
    let (c, js) = t.get_text("/docs/swagger-ui-bundle.js").await;
    assert_eq!(c, 200);
    assert!(js.len() > 500_000, "the vendored bundle is served");
    let (c, css) = t.get_text("/docs/swagger-ui.css").await;
    assert_eq!(c, 200);
    assert!(css.contains(".swagger-ui"));
    let (c, html) = t.get_text("/").await;
    assert_eq!(c, 200);
    assert!(
        html.contains("/views/changes") && !html.contains("http://") && !html.contains("https://"),
        "self-contained dashboard (no CDN)"
    );
}

#[tokio::test]
async fn bearer_token_on_every_route_but_health() {
    let t = TestApi::start(ApiConfig {
        api_token: Some("s3cret-token".into()),
        cors_origins: vec!["https://shop.example".into()],
        ..Default::default()
    });
    fill(&t.store, 1, 1);
    for path in [
        "/",
        "/info",
        "/metrics",
        "/views",
        "/views/revenue",
        "/docs",
        "/openapi.json",
        "/recommendations/7",
        "/customers",
        "/views/revenue/changes",
        "/nope",
    ] {
        let r = t.http.get(t.url(path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "{path}");
        assert!(r.headers().contains_key("www-authenticate"));
        let v: Value = r.json().await.unwrap();
        assert!(v["error"].is_string());
        let r = t
            .http
            .get(t.url(path))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401, "{path} wrong token");
    }
    let r = t
        .http
        .get(t.url("/views/revenue"))
        .bearer_auth("s3cret-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // /health needs no token.
    let r = t.http.get(t.url("/health")).send().await.unwrap();
    assert_ne!(r.status().as_u16(), 401);
    // The dashboard's way: ?access_token= once, then the cookie.
    let r = t
        .http
        .get(t.url("/?access_token=s3cret-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly"));
    let pair = cookie.split(';').next().unwrap().to_string();
    let r = t
        .http
        .get(t.url("/info"))
        .header("Cookie", pair)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // CORS: allowed origin gets the header (also on errors), preflight answered without auth.
    let r = t
        .http
        .get(t.url("/views"))
        .header("Origin", "https://shop.example")
        .bearer_auth("s3cret-token")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let r = t
        .http
        .get(t.url("/views"))
        .header("Origin", "https://evil.example")
        .bearer_auth("s3cret-token")
        .send()
        .await
        .unwrap();
    assert!(!r.headers().contains_key("access-control-allow-origin"));
    let r = t
        .http
        .request(reqwest::Method::OPTIONS, t.url("/views/revenue"))
        .header("Origin", "https://shop.example")
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "authorization")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert!(r.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("Authorization"));
}
