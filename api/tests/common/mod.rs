//! Shared test helpers: a real API on a real socket, a view store filled the way the engine
//! fills it (`apply` of change batches), and a throwaway PostgreSQL database with the shop
//! schema (SPEC §1).
#![allow(dead_code)]

use api::{ApiConfig, ApiHandle};
use sources::{Lsn, Micros, Money};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use view_store::status::EngineStatus;
use view_store::*;

pub struct TestApi {
    pub handle: Option<ApiHandle>,
    pub base: String,
    pub store: ViewStore,
    pub status: EngineStatus,
    pub http: reqwest::Client,
}

impl TestApi {
    pub fn start(cfg: ApiConfig) -> TestApi {
        let store = ViewStore::new();
        let status = EngineStatus::new("test source");
        Self::start_with(cfg, store, status)
    }

    pub fn start_with(mut cfg: ApiConfig, store: ViewStore, status: EngineStatus) -> TestApi {
        cfg.listen = "127.0.0.1:0".parse().unwrap();
        cfg.workers = 2;
        let handle = api::spawn(cfg, store.clone(), status.clone()).unwrap();
        TestApi {
            base: format!("http://{}", handle.addr),
            handle: Some(handle),
            store,
            status,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// GET → (status, JSON body).
    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        let code = r.status().as_u16();
        let text = r.text().await.unwrap();
        let v = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {text:.200}"));
        (code, v)
    }

    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

impl Drop for TestApi {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.stop();
        }
    }
}

pub const M1: i64 = 60_000_000;
pub const T0: i64 = 1_764_064_800_000_000; // 2025-11-25T10:00:00Z

pub fn as_of(time: u64, lsn: u64) -> AsOf {
    AsOf {
        time,
        lsn: Some(Lsn(lsn)),
        published_at: Some(Micros(T0 + time as i64 * 1_000_000)),
    }
}

pub fn revenue(window: Window, start: i64, orders: i64, cents: i64, prev: i64) -> ViewRow {
    ViewRow::Revenue(RevenueRow::new(
        window,
        Micros(start),
        orders,
        Money(cents),
        Money(prev),
    ))
}

#[allow(clippy::too_many_arguments)] // one argument per row field
pub fn top(
    window: Window,
    start: Option<i64>,
    category: Option<i64>,
    metric: Metric,
    rank: u32,
    product: i64,
    qty: i64,
    cents: i64,
) -> ViewRow {
    ViewRow::TopProduct(TopProductRow {
        window,
        window_start: start.map(Micros),
        category_id: category,
        metric,
        rank,
        product_id: product,
        quantity: qty,
        revenue: Money(cents),
    })
}

/// A store state with rows in every view (what the engine would publish after a few orders).
pub fn sample_rows() -> Vec<ViewRow> {
    let w1 = Window::Size(M1);
    let w5 = Window::Size(5 * M1);
    let mut rows = vec![
        revenue(w1, T0, 2, 2_500_000_00, 0),
        revenue(w1, T0 + M1, 3, 4_000_000_50, 2_500_000_00),
        revenue(w5, T0, 5, 6_500_000_50, 0),
    ];
    for (metric, rank, p, q, c) in [
        (Metric::Revenue, 1, 11, 2, 3_000_000_00),
        (Metric::Revenue, 2, 12, 5, 1_000_000_50),
        (Metric::Quantity, 1, 12, 5, 1_000_000_50),
        (Metric::Quantity, 2, 11, 2, 3_000_000_00),
    ] {
        rows.push(top(Window::All, None, None, metric, rank, p, q, c));
        rows.push(top(Window::All, None, Some(3), metric, rank, p, q, c));
        rows.push(top(w1, Some(T0 + M1), None, metric, rank, p, q, c));
    }
    rows.push(ViewRow::Trending(TrendingRow {
        window: w1,
        window_start: Some(Micros(T0 + M1)),
        rank: 1,
        product_id: 12,
        quantity: 5,
        prev_quantity: 1,
        growth: 4,
    }));
    rows.push(ViewRow::CategorySales(CategorySalesRow {
        window: Window::All,
        window_start: None,
        category_id: 3,
        quantity: 7,
        revenue: Money(4_000_000_50),
        order_count: 4,
    }));
    rows.push(ViewRow::FraudAlert(FraudAlertRow {
        rule: Rule::HighValue,
        customer_id: Some(7),
        order_id: Some(101),
        start: Micros(T0 + 5_000_000),
        order_count: 1,
        amount: Some(Money(12_000_000_00)),
    }));
    rows.push(ViewRow::FraudAlert(FraudAlertRow {
        rule: Rule::OrderBurst,
        customer_id: Some(8),
        order_id: None,
        start: Micros(T0),
        order_count: 6,
        amount: None,
    }));
    // also_bought and recommendations are derived by the store from index updates (a row
    // per unit of multiplicity here). also_bought: 11 was bought with 12 in 3 orders and with
    // 13 in 1, so 11 -> 12 (3), 13 (1) and 12 -> 11 (3); customer 7 viewed product 1 (weight
    // 1), bought with 100 + rank in 30 - rank orders, so 7's list is 101 (score 29), 102 (28),
    // ... (and also_bought of 1 lists 101..110); customer 8 bought 12 (weight 2), so 8's list
    // is 11 (score 6) and nothing else (the best sellers 12 and 11 are bought or listed).
    let index = ViewRow::RecsIndex;
    let co = |product, other| index(RecsDelta::CoPurchase { product, other });
    for (p, q, n) in [(11, 12, 3), (11, 13, 1), (12, 11, 3), (13, 11, 1)] {
        rows.extend((0..n).map(|_| co(p, q)));
    }
    rows.push(index(RecsDelta::Interaction {
        customer: 7,
        product: 1,
        kind: InteractionKind::View,
    }));
    for rank in 1..=12i64 {
        rows.extend((0..30 - rank).map(|_| co(1, 100 + rank)));
    }
    rows.push(index(RecsDelta::Interaction {
        customer: 8,
        product: 12,
        kind: InteractionKind::Purchase,
    }));
    rows
}

pub fn fill(store: &ViewStore, time: u64, lsn: u64) {
    store.apply(ChangeBatch {
        as_of: as_of(time, lsn),
        changes: sample_rows().into_iter().map(|r| (r, 1)).collect(),
    });
}

// ---- PostgreSQL ----------------------------------------------------------------------------

pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".into())
}

/// The shop schema of SPEC §1 (a copy of datagen's DDL, kept here so the API's tests don't
/// depend on the generator crate).
pub const DDL: &str = r#"
CREATE TABLE categories (category_id serial PRIMARY KEY, name varchar(100) NOT NULL UNIQUE,
    description text, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE customers (customer_id serial PRIMARY KEY, first_name varchar(100),
    last_name varchar(100) NOT NULL, email varchar(255) NOT NULL UNIQUE,
    password_hash varchar(255) NOT NULL, address text, phone_number varchar(50),
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE products (product_id serial PRIMARY KEY, sku varchar(64) NOT NULL UNIQUE,
    name varchar(255) NOT NULL, description text, price numeric(14,2) NOT NULL, stock integer,
    category_id integer REFERENCES categories (category_id), is_active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE payments (payment_id serial PRIMARY KEY, payment_date timestamptz NOT NULL DEFAULT now(),
    payment_method varchar(20) NOT NULL, amount numeric(14,2) NOT NULL, status varchar(20) NOT NULL,
    transaction_id varchar(64) UNIQUE, customer_id integer REFERENCES customers (customer_id));
CREATE TABLE shipments (shipment_id serial PRIMARY KEY, shipment_date timestamptz, address text,
    city varchar(100), state varchar(100), country varchar(100), zip_code varchar(20),
    status varchar(20) NOT NULL, tracking_number varchar(64) UNIQUE,
    customer_id integer REFERENCES customers (customer_id),
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE orders (order_id serial PRIMARY KEY, order_date timestamptz NOT NULL DEFAULT now(),
    total_price numeric(14,2) NOT NULL, status varchar(20) NOT NULL,
    customer_id integer REFERENCES customers (customer_id),
    payment_id integer REFERENCES payments (payment_id),
    shipment_id integer REFERENCES shipments (shipment_id));
CREATE TABLE order_items (order_item_id serial PRIMARY KEY,
    order_id integer REFERENCES orders (order_id) ON DELETE CASCADE,
    product_id integer REFERENCES products (product_id), quantity integer NOT NULL,
    price numeric(14,2) NOT NULL);
CREATE TABLE carts (cart_id serial PRIMARY KEY, customer_id integer REFERENCES customers (customer_id),
    product_id integer REFERENCES products (product_id), quantity integer NOT NULL,
    added_at timestamptz NOT NULL DEFAULT now(), UNIQUE (customer_id, product_id));
CREATE TABLE wishlists (wishlist_id serial PRIMARY KEY,
    customer_id integer REFERENCES customers (customer_id),
    product_id integer REFERENCES products (product_id),
    added_at timestamptz NOT NULL DEFAULT now(), UNIQUE (customer_id, product_id));
CREATE TABLE product_views (view_id bigserial PRIMARY KEY,
    customer_id integer REFERENCES customers (customer_id),
    product_id integer REFERENCES products (product_id),
    category_id integer REFERENCES categories (category_id),
    viewed_at timestamptz NOT NULL DEFAULT now());
"#;

pub const SECRET_HASH: &str = "$2b$12$SECRETHASHVALUEnEvErToBeSeEn";

/// Rows in every table; 150 product views to exercise pagination.
pub const DATA: &str = r#"
INSERT INTO categories (name, description, created_at) VALUES
    ('Laptops', 'Portable computers', '2026-11-01 08:00:00+00'),
    ('Books', NULL, '2026-11-01 08:00:00.5+00');
INSERT INTO customers (first_name, last_name, email, password_hash, address, phone_number, created_at, updated_at) VALUES
    ('An', 'Nguyen', 'an@example.com', '$2b$12$SECRETHASHVALUEnEvErToBeSeEn', '1 Le Loi', '+84 90 000 0001', '2026-11-02 09:00:00+07', '2026-11-02 09:00:00+07'),
    ('Binh', 'Tran', 'binh@example.com', '$2b$12$SECRETHASHVALUEnEvErToBeSeEn', NULL, NULL, '2026-11-02 10:00:00+00', '2026-11-02 10:00:00+00');
INSERT INTO products (sku, name, description, price, stock, category_id, is_active) VALUES
    ('LAP-1', 'Laptop Pro 14', 'fast', 23999000.50, 10, 1, true),
    ('BOOK-1', 'Rust in Action', NULL, 350000.00, 100, 2, false);
INSERT INTO payments (payment_date, payment_method, amount, status, transaction_id, customer_id) VALUES
    ('2026-11-03 10:00:00+00', 'credit_card', 24349000.50, 'completed', 'TX-1', 1);
INSERT INTO shipments (shipment_date, address, city, state, country, zip_code, status, tracking_number, customer_id) VALUES
    (NULL, '1 Le Loi', 'Ho Chi Minh City', 'HCM', 'Vietnam', '700000', 'preparing', 'TRK-1', 1);
INSERT INTO orders (order_date, total_price, status, customer_id, payment_id, shipment_id) VALUES
    ('2026-11-03 10:00:00.123456+00', 24349000.50, 'confirmed', 1, 1, 1);
INSERT INTO order_items (order_id, product_id, quantity, price) VALUES (1, 1, 1, 23999000.50), (1, 2, 1, 350000.00);
INSERT INTO carts (customer_id, product_id, quantity) VALUES (2, 1, 2);
INSERT INTO wishlists (customer_id, product_id) VALUES (2, 2);
INSERT INTO product_views (customer_id, product_id, category_id, viewed_at)
    SELECT 1 + (g % 2), 1 + (g % 2), 1 + (g % 2), '2026-11-04 00:00:00+00'::timestamptz + g * interval '1 second'
    FROM generate_series(1, 150) g;
"#;

static DB_SEQ: AtomicU32 = AtomicU32::new(0);

/// A uniquely named database with the schema and [`DATA`]; dropped on `drop`.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

async fn admin() -> tokio_postgres::Client {
    let (c, conn) = tokio_postgres::connect(&admin_url(), tokio_postgres::NoTls)
        .await
        .expect("Postgres at TEST_DATABASE_URL");
    tokio::spawn(conn);
    c
}

impl TestDb {
    pub async fn create() -> TestDb {
        let name = format!(
            "api_test_{}_{}",
            std::process::id(),
            DB_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let a = admin().await;
        // Separate statements: a multi-statement batch runs as one transaction.
        a.batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .await
            .unwrap();
        a.batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let mut cfg: tokio_postgres::Config = admin_url().parse().unwrap();
        cfg.dbname(&name);
        let (c, conn) = cfg.connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        c.batch_execute(DDL).await.unwrap();
        c.batch_execute(DATA).await.unwrap();
        let base = admin_url();
        let url = match base.rfind('/') {
            Some(i) if !base[..i].ends_with('/') => format!("{}/{name}", &base[..i]),
            _ => format!("{base}/{name}"),
        };
        TestDb { name, url }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Own runtime on a fresh thread: Drop may run inside (or outside) the test's runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let a = admin().await;
                let _ = a
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
            });
        })
        .join();
    }
}

// ---- SSE -----------------------------------------------------------------------------------

/// A minimal Server-Sent-Events reader over a reqwest response.
pub struct SseReader {
    resp: reqwest::Response,
    buf: String,
}

#[derive(Debug)]
pub struct Event {
    pub event: String,
    pub data: serde_json::Value,
}

impl SseReader {
    pub async fn open(http: &reqwest::Client, url: &str) -> SseReader {
        let resp = http.get(url).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200, "SSE {url}");
        assert!(resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        SseReader {
            resp,
            buf: String::new(),
        }
    }

    /// The next event (comments skipped); `None` at the end of the stream.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(i) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..i + 2).collect();
                let mut event = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        event = v.to_string();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    }
                }
                if data.is_empty() {
                    continue;
                }
                return Some(Event {
                    event,
                    data: serde_json::from_str(&data).unwrap(),
                });
            }
            let chunk = tokio::time::timeout(Duration::from_secs(30), self.resp.chunk())
                .await
                .expect("SSE event within 30 s")
                .unwrap()?;
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}
