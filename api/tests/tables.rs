//! Table endpoints against a real PostgreSQL database with the shop schema.
// Money literals group their cents: 4_000_000_50 is 4,000,000.50.
#![allow(clippy::inconsistent_digit_grouping)]

mod common;

use api::ApiConfig;
use common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn every_table_lists_pages_and_gets_by_id_without_secrets() {
    let db = TestDb::create().await;
    let t = TestApi::start(ApiConfig {
        database_url: Some(db.url.clone()),
        ..Default::default()
    });
    let mut bodies = Vec::new();

    let expect_rows = [
        ("customers", 2),
        ("products", 2),
        ("categories", 2),
        ("orders", 1),
        ("order_items", 2),
        ("carts", 1),
        ("wishlists", 1),
        ("payments", 1),
        ("shipments", 1),
        ("product_views", 100),
        ("order", 1),
        ("order_item", 2),
        ("cart", 1),
        ("wishlist", 1),
        ("payment", 1),
    ];
    for (table, n) in expect_rows {
        let (c, v) = t.get(&format!("/{table}")).await;
        assert_eq!(c, 200, "/{table}: {v}");
        assert_eq!(v["limit"], 100);
        assert_eq!(v["offset"], 0);
        let rows = v["rows"].as_array().unwrap();
        assert_eq!(rows.len(), n, "/{table}");
        // Each row by its id.
        let key = rows[0].as_object().unwrap().keys().next().unwrap().clone();
        let id = rows[0][&key].as_i64().unwrap();
        let (c, one) = t.get(&format!("/{table}/{id}")).await;
        assert_eq!(c, 200, "/{table}/{id}: {one}");
        assert_eq!(one, rows[0]);
        bodies.push(v.to_string());
        bodies.push(one.to_string());
    }

    // Shapes: numerics as exact strings, timestamps ISO-8601 UTC, nulls kept, booleans.
    let (_, p) = t.get("/products/1").await;
    assert_eq!(p["price"], "23999000.50");
    assert_eq!(p["is_active"], true);
    assert_eq!(p["category_id"], 1);
    let (_, p2) = t.get("/products/2").await;
    assert_eq!(p2["description"], Value::Null);
    assert_eq!(p2["is_active"], false);
    let (_, o) = t.get("/orders/1").await;
    assert_eq!(
        o,
        json!({"order_id": 1, "order_date": "2026-11-03T10:00:00.123456Z", "total_price": "24349000.50",
            "status": "confirmed", "customer_id": 1, "payment_id": 1, "shipment_id": 1})
    );
    let (_, c) = t.get("/customers/1").await;
    assert_eq!(c["created_at"], "2026-11-02T02:00:00Z", "converted to UTC");
    assert_eq!(c["email"], "an@example.com");
    let (_, cat) = t.get("/categories/2").await;
    assert_eq!(cat["created_at"], "2026-11-01T08:00:00.500000Z");
    let (_, s) = t.get("/shipments/1").await;
    assert_eq!(s["shipment_date"], Value::Null);
    assert_eq!(s["city"], "Ho Chi Minh City");
    let (_, pay) = t.get("/payment/1").await;
    assert_eq!(pay["amount"], "24349000.50");
    assert_eq!(pay["payment_method"], "credit_card");

    // Never a password hash, anywhere.
    for b in &bodies {
        assert!(!b.contains("password"), "{b}");
        assert!(!b.contains(SECRET_HASH), "{b}");
    }

    // Pagination bounds.
    let (_, v) = t.get("/product_views?limit=1000").await;
    assert_eq!(v["rows"].as_array().unwrap().len(), 150);
    let (_, v) = t.get("/product_views?limit=10&offset=145").await;
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0]["view_id"], 146);
    assert_eq!(v["count"], 5);
    let (_, v) = t.get("/product_views?offset=1000").await;
    assert_eq!(v["rows"].as_array().unwrap().len(), 0);
    let (_, v) = t.get("/customers?limit=1&offset=1").await;
    assert_eq!(v["rows"][0]["customer_id"], 2);
    for (path, param) in [
        ("/customers?limit=0", "limit"),
        ("/customers?limit=1001", "limit"),
        ("/customers?limit=-1", "limit"),
        ("/customers?offset=-1", "offset"),
        ("/customers?limit=ten", "limit"),
        ("/customers?page=2", "page"),
        ("/customers/abc", "id"),
        ("/orders/1?limit=5", "limit"),
    ] {
        let (c, v) = t.get(path).await;
        assert_eq!(c, 400, "{path}: {v}");
        assert_eq!(v["parameter"], param, "{path}");
    }
    let (c, v) = t.get("/customers/999").await;
    assert_eq!(c, 404);
    assert!(v["error"].as_str().unwrap().contains("999"));

    // Parameters are bound, not spliced: an injection attempt is just a bad id.
    let (c, _) = t.get("/customers/1%20OR%201=1").await;
    assert_eq!(c, 400);

    // Health checks the database for real.
    t.status.set_connected(true);
    let (c, v) = t.get("/health").await;
    assert_eq!(c, 200, "{v}");
    assert_eq!(v["checks"]["database"]["reachable"], true);
}

#[tokio::test]
async fn health_and_tables_report_an_unreachable_database() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let t = TestApi::start(ApiConfig {
        database_url: Some(format!("postgres://postgres:hunter2@127.0.0.1:{port}/shop")),
        ..Default::default()
    });
    t.status.set_connected(true);
    let (c, v) = t.get("/health").await;
    assert_eq!(c, 503, "{v}");
    assert!(
        v["reasons"][0]
            .as_str()
            .unwrap()
            .contains("database unreachable"),
        "{v}"
    );
    assert!(
        !v.to_string().contains("hunter2"),
        "no secrets in health output"
    );
    let (c, v) = t.get("/customers").await;
    assert_eq!(c, 502, "{v}");
    assert!(!v.to_string().contains("hunter2"));
    let (_, info) = t.get("/info").await;
    assert!(!info.to_string().contains("hunter2"));
}
