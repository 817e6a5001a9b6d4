//! datagen against a real PostgreSQL (`TEST_DATABASE_URL`, default the local `postgres`
//! database). Each test runs the real binary on a database of its own, dropped at the end.

use datagen::model::{Shop, ShopConfig};
use sources::{ChangeKind, Row, Table};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use tokio_postgres::{Client, NoTls};

const BIN: &str = env!("CARGO_BIN_EXE_datagen");

fn base_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".into())
}

/// `base` with its database replaced by `db`.
fn url_with_db(base: &str, db: &str) -> String {
    let (head, query) = match base.split_once('?') {
        Some((h, q)) => (h, format!("?{q}")),
        None => (base, String::new()),
    };
    let scheme_end = head.find("://").map(|i| i + 3).unwrap_or(0);
    let host_part = match head[scheme_end..].find('/') {
        Some(i) => &head[..scheme_end + i],
        None => head,
    };
    format!("{host_part}/{db}{query}")
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A uniquely named database, dropped (forcefully) when the test ends.
struct TestDb {
    name: String,
    url: String,
}

impl TestDb {
    fn new(tag: &str) -> TestDb {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "dgtest_{tag}_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let url = url_with_db(&base_url(), &name);
        TestDb { name, url }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--database-url")
            .arg(&self.url)
            .args(args)
            .output()
            .expect("run datagen")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "datagen {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    async fn client(&self) -> Client {
        connect(&self.url).await
    }
}

async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(conn);
    client
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let base = base_url();
        let name = self.name.clone();
        // A fresh thread: Drop may run inside a runtime, which cannot block on another.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Runtime::new() {
                rt.block_on(async {
                    if let Ok((c, conn)) = tokio_postgres::connect(&base, NoTls).await {
                        tokio::spawn(conn);
                        let _ = c
                            .batch_execute(&format!(
                                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                            ))
                            .await;
                    }
                });
            }
        })
        .join();
    }
}

async fn count(c: &Client, q: &str) -> i64 {
    c.query_one(q, &[]).await.expect(q).get(0)
}

/// md5 over a table's rows in key order.
async fn table_hash(c: &Client, table: &str, key: &str) -> String {
    c.query_one(
        &format!(
            "SELECT COALESCE(md5(string_agg(t::text, '|' ORDER BY {key})), '') FROM {table} t"
        ),
        &[],
    )
    .await
    .expect("hash")
    .get(0)
}

#[tokio::test]
async fn init_is_idempotent_reset_and_clear_work() {
    let db = TestDb::new("schema");
    db.ok(&["init"]);
    db.ok(&["init"]);
    let c = db.client().await;
    for t in datagen::schema::TABLES {
        let identity: i8 = c
            .query_one(
                "SELECT relreplident::\"char\" FROM pg_class WHERE relname = $1 AND relkind = 'r'",
                &[&t],
            )
            .await
            .unwrap_or_else(|e| panic!("{t}: {e}"))
            .get(0);
        assert_eq!(identity as u8, b'f', "{t} has REPLICA IDENTITY FULL");
    }
    let published = count(
        &c,
        "SELECT COUNT(*) FROM pg_publication_tables WHERE pubname = 'shop_pub'",
    )
    .await;
    assert_eq!(published, 10);
    // Money columns are NUMERIC(14,2).
    let money = count(
        &c,
        "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = 'public' \
         AND data_type = 'numeric' AND numeric_precision = 14 AND numeric_scale = 2",
    )
    .await;
    assert_eq!(money, 4, "price, amount, total_price, order_items.price");

    db.ok(&["generate", "--customers", "20", "--products", "30"]);
    db.ok(&[
        "simulate",
        "--historical",
        "1",
        "--sessions",
        "5",
        "--quiet",
    ]);
    assert!(count(&c, "SELECT COUNT(*) FROM product_views").await > 0);
    db.ok(&["clear", "--activity"]);
    assert_eq!(count(&c, "SELECT COUNT(*) FROM product_views").await, 0);
    assert_eq!(count(&c, "SELECT COUNT(*) FROM orders").await, 0);
    assert_eq!(count(&c, "SELECT COUNT(*) FROM customers").await, 20);
    db.ok(&["clear"]);
    assert_eq!(count(&c, "SELECT COUNT(*) FROM customers").await, 0);
    // Identities restart.
    db.ok(&["generate", "--customers", "3", "--products", "3"]);
    assert_eq!(
        count(&c, "SELECT MIN(customer_id)::int8 FROM customers").await,
        1
    );
    drop(c);
    db.ok(&["reset"]);
    let c = db.client().await;
    assert_eq!(count(&c, "SELECT COUNT(*) FROM customers").await, 0);
    assert_eq!(
        count(
            &c,
            "SELECT COUNT(*) FROM pg_publication_tables WHERE pubname = 'shop_pub'"
        )
        .await,
        10
    );
    // Inserting with DEFAULT ids still works after explicit-id loads.
    db.ok(&["generate", "--customers", "3", "--products", "3"]);
    c.execute(
        "INSERT INTO customers (last_name, email, password_hash) VALUES ('x', 'x@example.com', 'h')",
        &[],
    )
    .await
    .expect("default id after generate");
}

#[tokio::test]
async fn generate_10k_exact_valid_unique_deterministic() {
    let a = TestDb::new("gen_a");
    let b = TestDb::new("gen_b");
    for db in [&a, &b] {
        db.ok(&["init"]);
        db.ok(&[
            "generate",
            "--categories",
            "10",
            "--products",
            "2000",
            "--customers",
            "10000",
            "--seed",
            "7",
            "--quiet",
        ]);
    }
    let ca = a.client().await;
    let cb = b.client().await;
    assert_eq!(count(&ca, "SELECT COUNT(*) FROM categories").await, 10);
    assert_eq!(count(&ca, "SELECT COUNT(*) FROM products").await, 2000);
    assert_eq!(count(&ca, "SELECT COUNT(*) FROM customers").await, 10_000);
    assert_eq!(
        count(&ca, "SELECT COUNT(DISTINCT email) FROM customers").await,
        10_000
    );
    assert_eq!(
        count(&ca, "SELECT COUNT(DISTINCT sku) FROM products").await,
        2000
    );
    assert_eq!(
        count(
            &ca,
            "SELECT COUNT(*) FROM products p LEFT JOIN categories c USING (category_id) \
             WHERE c.category_id IS NULL"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &ca,
            "SELECT COUNT(*) FROM products WHERE stock NOT BETWEEN 10 AND 100"
        )
        .await,
        0
    );
    let active = count(&ca, "SELECT COUNT(*) FROM products WHERE is_active").await;
    assert!(
        (1300..=1700).contains(&active),
        "about 75% active: {active}"
    );
    let laptops_out_of_range = count(
        &ca,
        "SELECT COUNT(*) FROM products JOIN categories USING (category_id) \
         WHERE categories.name = 'Laptops' AND price NOT BETWEEN 15000000 AND 25000000",
    )
    .await;
    assert_eq!(laptops_out_of_range, 0);
    for (t, k) in [
        ("categories", "category_id"),
        ("products", "product_id"),
        ("customers", "customer_id"),
    ] {
        assert_eq!(
            table_hash(&ca, t, k).await,
            table_hash(&cb, t, k).await,
            "{t}"
        );
    }
    // A different seed gives different data.
    let c = TestDb::new("gen_c");
    c.ok(&["init"]);
    c.ok(&[
        "generate",
        "--products",
        "10",
        "--customers",
        "10",
        "--seed",
        "8",
    ]);
    let cc = c.client().await;
    let a10 = ca
        .query_one(
            "SELECT md5(string_agg(email, ',' ORDER BY customer_id)) FROM customers \
             WHERE customer_id <= 10",
            &[],
        )
        .await
        .expect("a10")
        .get::<_, String>(0);
    let c10 = cc
        .query_one(
            "SELECT md5(string_agg(email, ',' ORDER BY customer_id)) FROM customers",
            &[],
        )
        .await
        .expect("c10")
        .get::<_, String>(0);
    assert_ne!(a10, c10);
}

/// `generate` into an empty database writes exactly the in-memory model's master rows, so
/// the embedded mode and a generated database describe the same shop.
#[tokio::test]
async fn generated_rows_equal_the_models_initial_load() {
    let db = TestDb::new("model_eq");
    db.ok(&["init"]);
    db.ok(&[
        "generate",
        "--categories",
        "12",
        "--products",
        "150",
        "--customers",
        "80",
        "--seed",
        "99",
    ]);
    let c = db.client().await;
    let mut shop = Shop::new(ShopConfig {
        seed: 99,
        categories: 12,
        products: 150,
        customers: 80,
    });
    let mut expected: Vec<Row> = Vec::new();
    for tx in shop.initial_load() {
        for ch in tx.changes {
            if let ChangeKind::Upsert { row, .. } = ch.kind {
                expected.push(row);
            }
        }
    }
    let mut actual = Vec::new();
    for (t, k) in [
        (Table::Categories, "category_id"),
        (Table::Products, "product_id"),
        (Table::Customers, "customer_id"),
    ] {
        for r in c
            .query(
                &format!("{} ORDER BY {k}", datagen::sql::select_sql(t)),
                &[],
            )
            .await
            .expect("select")
        {
            actual.push(datagen::sql::row_from_sql(t, &r).expect("row"));
        }
    }
    assert_eq!(actual.len(), expected.len());
    for (a, e) in actual.iter().zip(&expected) {
        assert_eq!(a, e);
    }
}

fn report_count(stdout: &str, action: &str) -> u64 {
    stdout
        .lines()
        .find_map(|l| {
            let mut parts = l.split_whitespace();
            (parts.next() == Some(action)).then(|| parts.next()?.parse().ok())?
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn simulate_writes_rows_for_every_action_kind() {
    let db = TestDb::new("sim");
    db.ok(&["init"]);
    db.ok(&[
        "generate",
        "--products",
        "40",
        "--customers",
        "30",
        "--seed",
        "3",
    ]);
    let out = db.ok(&[
        "simulate",
        "--sessions",
        "40",
        "--historical",
        "3",
        "--concurrency",
        "4",
        "--seed",
        "3",
        "--quiet",
    ]);
    for a in [
        "view_product",
        "add_to_cart",
        "add_to_wishlist",
        "remove_from_cart",
        "place_order",
        "browse_category",
        "advance_order",
    ] {
        assert!(report_count(&out, a) > 0, "{a} missing in report:\n{out}");
    }
    let c = db.client().await;
    let q = |s: &'static str| s;
    for (what, sql) in [
        ("product views", q("SELECT COUNT(*) FROM product_views WHERE product_id IS NOT NULL")),
        (
            "category browses",
            q("SELECT COUNT(*) FROM product_views WHERE product_id IS NULL AND category_id IS NOT NULL"),
        ),
        ("wishlists", q("SELECT COUNT(*) FROM wishlists")),
        ("orders", q("SELECT COUNT(*) FROM orders")),
        ("order items", q("SELECT COUNT(*) FROM order_items")),
        ("payments", q("SELECT COUNT(*) FROM payments")),
        ("shipments", q("SELECT COUNT(*) FROM shipments")),
        ("orders moved on", q("SELECT COUNT(*) FROM orders WHERE status <> 'pending'")),
    ] {
        assert!(count(&c, sql).await > 0, "no {what}");
    }
    // Rows written = actions reported: every view/browse is one product_views row.
    let views = report_count(&out, "view_product") + report_count(&out, "browse_category");
    assert_eq!(
        count(&c, "SELECT COUNT(*) FROM product_views").await as u64,
        views
    );
    // Carts: inserts minus removals minus ordered; at least one add happened and the unique
    // (customer, product) constraint held throughout (it would have failed the run).
    assert!(report_count(&out, "add_to_cart") > 0);
    // Orders are consistent.
    assert_eq!(
        count(
            &c,
            "SELECT COUNT(*) FROM orders o WHERE total_price <> \
             (SELECT COALESCE(SUM(quantity * price), 0) FROM order_items i WHERE i.order_id = o.order_id)"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &c,
            "SELECT COUNT(*) FROM orders WHERE payment_id IS NULL OR shipment_id IS NULL"
        )
        .await,
        0
    );
    assert_eq!(
        count(&c, "SELECT COUNT(*) FROM products WHERE stock < 0").await,
        0
    );
    // Sequences were moved past the simulator's ids.
    c.execute(
        "INSERT INTO product_views (customer_id, category_id) VALUES (1, 1)",
        &[],
    )
    .await
    .expect("default id after simulate");
    // A second run continues from the database's state.
    db.ok(&[
        "simulate",
        "--sessions",
        "10",
        "--historical",
        "1",
        "--quiet",
    ]);
}

/// A concurrent reader never sees an order without all its items: each order is one
/// transaction, and `total_price = Σ quantity × price` at every moment.
#[tokio::test]
async fn orders_are_committed_atomically() {
    let db = TestDb::new("atomic");
    db.ok(&["init"]);
    db.ok(&["generate", "--products", "30", "--customers", "20"]);
    let mut child = Command::new(BIN)
        .arg("--database-url")
        .arg(&db.url)
        .args([
            "simulate",
            "--sessions",
            "16",
            "--duration",
            "30",
            "--speed",
            "30",
            "--concurrency",
            "6",
            "--quiet",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn simulate");
    let c = db.client().await;
    let mut checks = 0;
    let mut seen_orders = 0;
    loop {
        let done = child.try_wait().expect("wait").is_some();
        let bad = count(
            &c,
            "SELECT COUNT(*) FROM orders o WHERE total_price <> \
             (SELECT COALESCE(SUM(quantity * price), 0) FROM order_items i WHERE i.order_id = o.order_id)",
        )
        .await;
        assert_eq!(bad, 0, "an order was visible without exactly its items");
        seen_orders = seen_orders.max(count(&c, "SELECT COUNT(*) FROM orders").await);
        checks += 1;
        if done {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(child.wait().expect("wait").success());
    assert!(checks > 3);
    assert!(seen_orders > 0);
}

#[tokio::test]
async fn historical_mode_spreads_activity_over_the_days() {
    let db = TestDb::new("hist");
    db.ok(&["init"]);
    db.ok(&["generate", "--products", "50", "--customers", "40"]);
    let started = chrono::Utc::now();
    db.ok(&[
        "simulate",
        "--historical",
        "10",
        "--sessions",
        "60",
        "--quiet",
    ]);
    let c = db.client().await;
    let row = c
        .query_one(
            "SELECT MIN(order_date), MAX(order_date), COUNT(*), \
                    MIN(viewed_at) FROM orders, (SELECT MIN(viewed_at) AS viewed_at FROM product_views) v",
            &[],
        )
        .await
        .expect("range");
    let min: chrono::DateTime<chrono::Utc> = row.get(0);
    let max: chrono::DateTime<chrono::Utc> = row.get(1);
    let n: i64 = row.get(2);
    let first_view: chrono::DateTime<chrono::Utc> = row.get(3);
    assert!(n >= 10, "{n} orders");
    let ten_days = chrono::Duration::days(10);
    assert!(
        min >= started - ten_days - chrono::Duration::minutes(1),
        "{min}"
    );
    assert!(max <= chrono::Utc::now(), "{max}");
    assert!(
        max - min >= chrono::Duration::days(5),
        "spread {min} .. {max}"
    );
    assert!(
        first_view < started - chrono::Duration::days(5),
        "{first_view}"
    );
}

#[tokio::test]
async fn bad_input_fails_with_a_message_and_writes_nothing() {
    let db = TestDb::new("bad");
    for args in [
        vec!["simulate", "--concurrency", "0"],
        vec!["simulate", "--speed", "fast"],
        vec!["simulate", "--historical", "0"],
        vec!["generate", "--customers", "-5"],
        vec!["frobnicate"],
    ] {
        let out = db.run(&args);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(!out.stderr.is_empty(), "{args:?}: no message");
    }
    // Unreachable database.
    let out = Command::new(BIN)
        .args([
            "--database-url",
            "postgres://postgres:postgres@127.0.0.1:1/x",
            "init",
        ])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot connect"), "{err}");
    assert!(
        !err.contains("postgres:postgres"),
        "password printed: {err}"
    );
    db.ok(&["init"]);
    let c = db.client().await;
    // A constraint violation in the middle of generate rolls everything back: the product
    // generate would write as id 2 already has its SKU.
    let sku = datagen::catalog::product_row(
        42,
        2,
        &[
            (1, 0),
            (2, 1),
            (3, 2),
            (4, 3),
            (5, 4),
            (6, 5),
            (7, 6),
            (8, 7),
            (9, 8),
            (10, 9),
        ],
    )
    .sku;
    c.batch_execute("INSERT INTO categories (category_id, name) VALUES (100, 'Other')")
        .await
        .expect("category");
    c.execute(
        "INSERT INTO products (product_id, sku, name, price, category_id) VALUES (1, $1, 'x', 1, 100)",
        &[&sku],
    )
    .await
    .expect("product");
    let out = db.run(&[
        "generate",
        "--products",
        "50",
        "--customers",
        "50",
        "--quiet",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("products") && err.contains("sku"), "{err}");
    assert_eq!(count(&c, "SELECT COUNT(*) FROM products").await, 1);
    assert_eq!(count(&c, "SELECT COUNT(*) FROM customers").await, 0);
    assert_eq!(count(&c, "SELECT COUNT(*) FROM categories").await, 1);
}
