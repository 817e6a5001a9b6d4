//! The Postgres source against a real PostgreSQL (`TEST_DATABASE_URL`, wal_level=logical):
//! each test creates its own database, publication and slot, and drops them.

use sources::postgres::{PgSourceError, PostgresConfig, PostgresSource};
use sources::{
    channel, Change, ChangeKind, EngineIo, Lsn, Money, Op, OrderStatus, Position, Row, Table,
    Transaction,
};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio_postgres::NoTls;

/// A minimal copy of SPEC §1's DDL (datagen owns the real one).
const DDL: &str = r#"
CREATE TABLE categories (category_id serial PRIMARY KEY, name varchar(100) NOT NULL UNIQUE,
  description text, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE customers (customer_id serial PRIMARY KEY, first_name varchar(100),
  last_name varchar(100) NOT NULL, email varchar(255) NOT NULL UNIQUE,
  password_hash varchar(255) NOT NULL, address text, phone_number varchar(50),
  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE products (product_id serial PRIMARY KEY, sku varchar(64) NOT NULL UNIQUE,
  name varchar(255) NOT NULL, description text, price numeric(14,2) NOT NULL, stock integer,
  category_id integer REFERENCES categories, is_active boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE payments (payment_id serial PRIMARY KEY, payment_date timestamptz NOT NULL DEFAULT now(),
  payment_method varchar(20) NOT NULL, amount numeric(14,2) NOT NULL,
  status varchar(20) NOT NULL DEFAULT 'pending', transaction_id varchar(64) UNIQUE,
  customer_id integer REFERENCES customers);
CREATE TABLE shipments (shipment_id serial PRIMARY KEY, shipment_date timestamptz, address text,
  city varchar(100), state varchar(100), country varchar(100), zip_code varchar(20),
  status varchar(20) NOT NULL DEFAULT 'preparing', tracking_number varchar(64) UNIQUE,
  customer_id integer REFERENCES customers, created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE orders (order_id serial PRIMARY KEY, order_date timestamptz NOT NULL DEFAULT now(),
  total_price numeric(14,2) NOT NULL, status varchar(20) NOT NULL DEFAULT 'pending',
  customer_id integer REFERENCES customers, payment_id integer REFERENCES payments,
  shipment_id integer REFERENCES shipments);
CREATE TABLE order_items (order_item_id serial PRIMARY KEY,
  order_id integer REFERENCES orders ON DELETE CASCADE, product_id integer REFERENCES products,
  quantity integer NOT NULL, price numeric(14,2) NOT NULL);
CREATE TABLE carts (cart_id serial PRIMARY KEY, customer_id integer REFERENCES customers,
  product_id integer REFERENCES products, quantity integer NOT NULL,
  added_at timestamptz NOT NULL DEFAULT now(), UNIQUE (customer_id, product_id));
CREATE TABLE wishlists (wishlist_id serial PRIMARY KEY, customer_id integer REFERENCES customers,
  product_id integer REFERENCES products, added_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (customer_id, product_id));
CREATE TABLE product_views (view_id bigserial PRIMARY KEY, customer_id integer REFERENCES customers,
  product_id integer REFERENCES products, category_id integer REFERENCES categories,
  viewed_at timestamptz NOT NULL DEFAULT now());
ALTER TABLE categories REPLICA IDENTITY FULL; ALTER TABLE customers REPLICA IDENTITY FULL;
ALTER TABLE products REPLICA IDENTITY FULL; ALTER TABLE payments REPLICA IDENTITY FULL;
ALTER TABLE shipments REPLICA IDENTITY FULL; ALTER TABLE orders REPLICA IDENTITY FULL;
ALTER TABLE order_items REPLICA IDENTITY FULL; ALTER TABLE carts REPLICA IDENTITY FULL;
ALTER TABLE wishlists REPLICA IDENTITY FULL; ALTER TABLE product_views REPLICA IDENTITY FULL;
"#;

const WAIT: Duration = Duration::from_secs(60);

fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".into())
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (c, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    c
}

/// A database of its own with the schema, plus the names of its slot and publication.
struct TestDb {
    name: String,
    url: String,
    slot: String,
    publication: String,
    rt: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl TestDb {
    fn new(tag: &str) -> TestDb {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("pgsrc_{tag}_{}_{nanos}", std::process::id());
        let rt = rt();
        let admin = admin_url();
        let (base, _) = admin.rsplit_once('/').unwrap();
        let url = format!("{base}/{name}");
        let client = rt.block_on(async {
            let a = connect(&admin).await;
            a.batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            let c = connect(&url).await;
            c.batch_execute(DDL).await.unwrap();
            c
        });
        TestDb {
            slot: format!("{name}_slot"),
            publication: format!("{name}_pub"),
            name,
            url,
            rt,
            client,
        }
    }

    fn exec(&self, sql: &str) {
        self.rt.block_on(self.client.batch_execute(sql)).unwrap();
    }

    fn query(&self, sql: &str) -> Vec<tokio_postgres::Row> {
        self.rt.block_on(self.client.query(sql, &[])).unwrap()
    }

    fn config(&self) -> PostgresConfig {
        let mut cfg = PostgresConfig::new(self.url.clone());
        cfg.slot = self.slot.clone();
        cfg.publication = self.publication.clone();
        cfg.snapshot_batch = 2;
        cfg.reconnect_initial = Duration::from_millis(100);
        cfg.reconnect_max = Duration::from_millis(500);
        cfg.status_interval = Duration::from_millis(100);
        cfg
    }

    fn slot_confirmed(&self) -> Option<Lsn> {
        let rows = self.query(&format!(
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = '{}'",
            self.slot
        ));
        rows.first().map(|r| r.get::<_, String>(0).parse().unwrap())
    }

    /// Terminates whatever session holds the slot.
    fn kill_walsender(&self) {
        self.exec(&format!(
            "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots \
             WHERE slot_name = '{}' AND active_pid IS NOT NULL",
            self.slot
        ));
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let slot = self.slot.clone();
        let admin = admin_url();
        // Fresh runtime: this one may be mid-panic.
        let rt = rt();
        rt.block_on(async {
            let a = connect(&admin).await;
            for _ in 0..50 {
                let _ = a
                    .batch_execute(&format!(
                        "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots \
                         WHERE slot_name = '{slot}' AND active_pid IS NOT NULL"
                    ))
                    .await;
                if a.batch_execute(&format!(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
                     WHERE slot_name = '{slot}'"
                ))
                .await
                .is_ok()
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let _ = a
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
        });
    }
}

fn start(cfg: PostgresConfig) -> (JoinHandle<Result<(), PgSourceError>>, EngineIo) {
    let (io, engine) = channel(64);
    let h = std::thread::spawn(move || {
        let r = PostgresSource::new(cfg).run(io);
        if let Err(e) = &r {
            eprintln!("source ended: {e}");
        }
        r
    });
    (h, engine)
}

/// The next transaction; if the source thread ended instead, its result explains why.
fn next_tx_of(h: &JoinHandle<Result<(), PgSourceError>>, engine: &EngineIo) -> Transaction {
    let deadline = Instant::now() + WAIT;
    loop {
        match engine.input.recv_timeout(Duration::from_millis(200)) {
            Ok(t) => return t,
            Err(_) if h.is_finished() => panic!("the source ended"),
            Err(_) => assert!(Instant::now() < deadline, "no transaction within {WAIT:?}"),
        }
    }
}

fn stop(h: JoinHandle<Result<(), PgSourceError>>, engine: EngineIo) {
    engine.stop.store(true, Ordering::Relaxed);
    h.join().unwrap().unwrap();
}

fn summary(c: &Change) -> (Table, Op, Option<i64>) {
    (c.table, c.op, c.key())
}

/// The engine's ingest rule, reduced to what the tests check: last image per key, a change
/// applies only if its LSN is newer than the key's last applied LSN (LSN-less: always).
#[derive(Default)]
struct Model {
    rows: HashMap<(Table, i64), (Option<Lsn>, Option<Row>)>,
    applied: Vec<(Table, i64, Option<Lsn>)>,
}

impl Model {
    fn apply(&mut self, tx: &Transaction) {
        for c in &tx.changes {
            let Some(key) = c.key() else {
                self.rows.retain(|(t, _), _| *t != c.table);
                continue;
            };
            let slot = self.rows.entry((c.table, key)).or_insert((None, None));
            if let (Some(new), Some(old)) = (c.lsn, slot.0) {
                if new <= old {
                    continue;
                }
            }
            self.applied.push((c.table, key, c.lsn));
            slot.0 = c.lsn.or(slot.0);
            slot.1 = match &c.kind {
                ChangeKind::Upsert { row, .. } => Some(row.clone()),
                _ => None,
            };
        }
    }

    fn live(&self, table: Table) -> Vec<(i64, Row)> {
        let mut v: Vec<(i64, Row)> = self
            .rows
            .iter()
            .filter(|((t, _), (_, r))| *t == table && r.is_some())
            .map(|((_, k), (_, r))| (*k, r.clone().unwrap()))
            .collect();
        v.sort_by_key(|(k, _)| *k);
        v
    }
}

#[test]
fn snapshot_then_typed_transactions_with_commit_boundaries() {
    let db = TestDb::new("e2e");
    db.exec(
        "INSERT INTO categories (name) VALUES ('laptops'), ('books');
         INSERT INTO products (sku, name, price, stock, category_id, created_at)
           VALUES ('L1', 'Laptop', 20000000.50, 10, 1, '2024-01-02 03:04:05.123456+00'),
                  ('B1', 'Book', 50000, 100, 2, '2024-01-02 03:04:05+00');
         INSERT INTO customers (last_name, email, password_hash) VALUES ('Nguyen', 'a@x', 'h');",
    );
    let (h, engine) = start(db.config());

    // Snapshot: 5 rows in batches of 2 per table, all at the consistent point, all `Read`.
    let mut snap = vec![];
    let mut point = None;
    while snap.len() < 5 {
        let tx = next_tx_of(&h, &engine);
        assert!(tx.changes.len() <= 2, "batches of snapshot_batch rows");
        assert_eq!(tx.position, Position::Postgres(tx.lsn.unwrap()));
        assert!(point.is_none() || point == tx.lsn, "one consistent point");
        point = tx.lsn;
        snap.extend(tx.changes);
    }
    assert!(snap.iter().all(|c| c.op == Op::Read && c.lsn.is_none()));
    let got: Vec<_> = snap.iter().map(summary).collect();
    assert_eq!(
        got,
        vec![
            (Table::Categories, Op::Read, Some(1)),
            (Table::Categories, Op::Read, Some(2)),
            (Table::Customers, Op::Read, Some(1)),
            (Table::Products, Op::Read, Some(1)),
            (Table::Products, Op::Read, Some(2)),
        ]
    );
    let ChangeKind::Upsert {
        row: Row::Product(p),
        ..
    } = &snap[3].kind
    else {
        panic!()
    };
    assert_eq!(p.price, Money(2000000050));
    assert_eq!(
        p.created_at.unwrap().to_string(),
        "2024-01-02T03:04:05.123456Z"
    );
    assert_eq!(p.is_active, Some(true));
    assert!(db.slot_confirmed().is_some(), "slot created");

    // Streaming: a cart, then one order transaction over five tables, an update, a cascade.
    let xid = |sql: &str| -> i64 {
        let rows = db.query(&format!(
            "WITH w AS ({sql} RETURNING 1) SELECT txid_current() FROM w LIMIT 1"
        ));
        rows[0].get(0)
    };
    let x1 = xid("INSERT INTO carts (customer_id, product_id, quantity) VALUES (1, 1, 2)");
    db.exec(
        "BEGIN;
         INSERT INTO payments (payment_method, amount, status, transaction_id, customer_id)
           VALUES ('paypal', 40050001.00, 'completed', 'T1', 1);
         INSERT INTO shipments (address, city, status, tracking_number, customer_id)
           VALUES ('1 Street', 'Hanoi', 'preparing', 'TR1', 1);
         INSERT INTO orders (order_date, total_price, status, customer_id, payment_id, shipment_id)
           VALUES ('2024-03-04 05:06:07+07', 40050001.00, 'pending', 1, 1, 1);
         INSERT INTO order_items (order_id, product_id, quantity, price)
           VALUES (1, 1, 2, 20000000.50), (1, 2, 0 + 1, 50000);
         DELETE FROM carts WHERE customer_id = 1;
         UPDATE products SET stock = stock - 2 WHERE product_id = 1;
         COMMIT;",
    );
    // Separate calls: statements of one simple query after COMMIT share an implicit transaction.
    db.exec("UPDATE orders SET status = 'cancelled' WHERE order_id = 1");
    db.exec("DELETE FROM orders WHERE order_id = 1");

    let t1 = next_tx_of(&h, &engine);
    assert_eq!(t1.tx_id, Some(x1 as u64));
    assert_eq!(
        t1.changes.iter().map(summary).collect::<Vec<_>>(),
        vec![(Table::Carts, Op::Create, Some(1))]
    );
    let t2 = next_tx_of(&h, &engine);
    assert_eq!(
        t2.changes.iter().map(summary).collect::<Vec<_>>(),
        vec![
            (Table::Payments, Op::Create, Some(1)),
            (Table::Shipments, Op::Create, Some(1)),
            (Table::Orders, Op::Create, Some(1)),
            (Table::OrderItems, Op::Create, Some(1)),
            (Table::OrderItems, Op::Create, Some(2)),
            (Table::Carts, Op::Delete, Some(1)),
            (Table::Products, Op::Update, Some(1)),
        ],
        "the whole order transaction, in one piece"
    );
    let ChangeKind::Upsert {
        row: Row::Order(o), ..
    } = &t2.changes[2].kind
    else {
        panic!()
    };
    assert_eq!(o.total_price, Money(4005000100));
    assert_eq!(o.order_date.to_string(), "2024-03-03T22:06:07Z");
    assert_eq!(o.status, OrderStatus::Pending);
    assert_eq!(
        (o.customer_id, o.payment_id, o.shipment_id),
        (Some(1), Some(1), Some(1))
    );
    let ChangeKind::Upsert {
        row: Row::Product(p),
        unavailable,
    } = &t2.changes[6].kind
    else {
        panic!()
    };
    assert_eq!(p.stock, Some(8));
    assert!(unavailable.is_empty());
    let t3 = next_tx_of(&h, &engine);
    let ChangeKind::Upsert {
        row: Row::Order(o), ..
    } = &t3.changes[0].kind
    else {
        panic!()
    };
    assert_eq!(o.status, OrderStatus::Cancelled);
    let t4 = next_tx_of(&h, &engine);
    let mut got: Vec<_> = t4.changes.iter().map(summary).collect();
    got.sort_by_key(|(t, _, k)| (*t, *k));
    assert_eq!(
        got,
        vec![
            (Table::Orders, Op::Delete, Some(1)),
            (Table::OrderItems, Op::Delete, Some(1)),
            (Table::OrderItems, Op::Delete, Some(2)),
        ],
        "the cascade is part of the delete's transaction"
    );

    // Commit LSNs increase; every change lies before its commit; positions are commit LSNs.
    let txs = [&t1, &t2, &t3, &t4];
    for w in txs.windows(2) {
        assert!(w[0].lsn < w[1].lsn);
    }
    for t in txs {
        assert!(t.lsn > point);
        assert_eq!(t.position, Position::Postgres(t.lsn.unwrap()));
        assert!(t.changes.iter().all(|c| c.lsn.is_some() && c.lsn < t.lsn));
    }
    assert!(engine.input.try_recv().is_err(), "nothing else");

    // Acknowledged only once applied: the slot moves to the last applied commit.
    engine
        .applied
        .send(Position::Postgres(t4.lsn.unwrap()))
        .unwrap();
    let deadline = Instant::now() + WAIT;
    while db.slot_confirmed() < t4.lsn {
        assert!(Instant::now() < deadline, "ack reached the slot");
        std::thread::sleep(Duration::from_millis(50));
    }
    stop(h, engine);
}

#[test]
fn restart_redelivers_the_unacknowledged_tail_and_loses_nothing() {
    let db = TestDb::new("restart");
    db.exec("INSERT INTO customers (last_name, email, password_hash) VALUES ('A', 'a@x', 'h');");
    let (h, engine) = start(db.config());
    let mut model = Model::default();
    model.apply(&next_tx_of(&h, &engine)); // the snapshot: one customer

    let write = |i: i64| {
        // Inserts, updates of earlier orders, and a delete now and then.
        let mut sql = format!(
            "BEGIN; INSERT INTO orders (total_price, status, customer_id) VALUES ({i}.25, 'pending', 1);"
        );
        if i > 1 {
            sql += &format!(
                "UPDATE orders SET status = 'confirmed' WHERE order_id = {};",
                i - 1
            );
        }
        if i % 4 == 0 {
            sql += &format!("DELETE FROM orders WHERE order_id = {};", i - 2);
        }
        sql += "COMMIT;";
        db.exec(&sql);
    };
    for i in 1..=10 {
        write(i);
    }
    let first: Vec<Transaction> = (0..10).map(|_| next_tx_of(&h, &engine)).collect();
    for t in &first {
        model.apply(t);
    }
    // The engine applied only the first four; then the source dies.
    let acked = first[3].lsn.unwrap();
    engine.applied.send(Position::Postgres(acked)).unwrap();
    stop(h, engine);
    let confirmed = db.slot_confirmed().unwrap();
    assert!(
        confirmed >= acked && confirmed < first[4].lsn.unwrap(),
        "slot at the last applied commit: {confirmed} vs {acked}"
    );

    for i in 11..=15 {
        write(i);
    }
    let (h, engine) = start(db.config());
    // Everything after the acknowledged commit comes again, then the new ones.
    let again: Vec<Transaction> = (0..11).map(|_| next_tx_of(&h, &engine)).collect();
    assert_eq!(
        again[0].lsn, first[4].lsn,
        "resumes right after the acked commit"
    );
    for (a, b) in again.iter().zip(&first[4..]) {
        assert_eq!(
            a,
            &Transaction {
                received_at: a.received_at,
                ..b.clone()
            }
        );
    }
    for t in &again {
        model.apply(t);
    }
    engine
        .applied
        .send(Position::Postgres(again[10].lsn.unwrap()))
        .unwrap();
    stop(h, engine);

    // Nothing doubled: each (table, key, lsn) applied once, the redelivered ones were no-ops.
    let unique: HashSet<_> = model.applied.iter().collect();
    assert_eq!(unique.len(), model.applied.len());
    // Nothing lost: the model equals the database.
    let db_orders: Vec<(i64, String, String)> = db
        .query("SELECT order_id::int8, status, total_price::text FROM orders ORDER BY 1")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let model_orders: Vec<(i64, String, String)> = model
        .live(Table::Orders)
        .into_iter()
        .map(|(k, r)| {
            let Row::Order(o) = r else { panic!() };
            (k, o.status.as_str().to_string(), o.total_price.to_string())
        })
        .collect();
    assert_eq!(model_orders, db_orders);
    assert_eq!(model.live(Table::Customers).len(), 1);
}

#[test]
fn reconnects_after_losing_the_session_and_fails_clearly_when_the_slot_is_dropped() {
    let db = TestDb::new("reconnect");
    let (h, engine) = start(db.config());
    db.exec("INSERT INTO categories (name) VALUES ('c1');");
    let t1 = next_tx_of(&h, &engine);
    assert_eq!(t1.changes[0].key(), Some(1));
    engine.applied.send(t1.position.clone()).unwrap();

    // The server ends the session (as on a Postgres restart); a change arrives meanwhile.
    db.kill_walsender();
    db.exec("INSERT INTO categories (name) VALUES ('c2');");
    let mut keys = vec![];
    while !keys.contains(&Some(2)) {
        let t = next_tx_of(&h, &engine);
        keys.extend(t.changes.iter().map(|c| c.key()));
        engine.applied.send(t.position.clone()).unwrap();
    }
    assert!(!h.is_finished(), "still running after the reconnect");

    // Dropping the slot under it: a clear error, exit code 3.
    let deadline = Instant::now() + WAIT;
    loop {
        db.kill_walsender();
        let dropped = db.rt.block_on(
            db.client
                .batch_execute(&format!("SELECT pg_drop_replication_slot('{}')", db.slot)),
        );
        if dropped.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "could not drop the slot");
        std::thread::sleep(Duration::from_millis(20));
    }
    let err = h.join().unwrap().unwrap_err();
    assert!(matches!(err, PgSourceError::SlotDropped { .. }), "{err}");
    assert_eq!(err.exit_code(), 3);
    assert!(err.to_string().contains(&db.slot));
    drop(engine);
}

/// A private PostgreSQL cluster (initdb in a temp dir, own port) that this test may restart
/// without disturbing anyone else's tests on the shared server.
struct PrivateCluster {
    dir: std::path::PathBuf,
    port: u16,
    as_postgres: bool,
}

impl PrivateCluster {
    fn bin(name: &str) -> std::path::PathBuf {
        std::path::Path::new("/usr/lib/postgresql/15/bin").join(name)
    }

    fn cmd(&self, bin: &str) -> std::process::Command {
        // initdb and postgres refuse to run as root.
        if self.as_postgres {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(Self::bin(bin));
            c
        } else {
            std::process::Command::new(Self::bin(bin))
        }
    }

    fn pg_ctl(&self, args: &[&str]) {
        let opts = format!(
            "-p {} -c wal_level=logical -c listen_addresses=127.0.0.1 -k {}",
            self.port,
            self.dir.display()
        );
        let out = self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-o", &opts, "-l"])
            .arg(self.dir.join("log"))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_ctl {args:?}: {out:?}");
    }

    /// `None` where no PostgreSQL 15 binaries are installed.
    fn start() -> Option<PrivateCluster> {
        if !Self::bin("initdb").exists() {
            eprintln!("skipping: no /usr/lib/postgresql/15/bin/initdb");
            return None;
        }
        let as_postgres = std::process::Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout.starts_with(b"0\n"))
            .unwrap_or(false);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("shopstream-pgrestart-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let c = PrivateCluster {
            dir,
            port,
            as_postgres,
        };
        if as_postgres {
            let ok = std::process::Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&c.dir)
                .status()
                .unwrap();
            assert!(ok.success());
        }
        let out = c
            .cmd("initdb")
            .arg("-D")
            .arg(c.dir.join("data"))
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8"])
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb: {out:?}");
        c.pg_ctl(&["-w", "start"]);
        Some(c)
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
            eprintln!("--- private cluster log ---\n{log}");
        }
        let _ = self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn survives_a_real_postgres_restart() {
    let Some(cluster) = PrivateCluster::start() else {
        return;
    };
    let rt = rt();
    let client = rt.block_on(async {
        let c = connect(&cluster.url()).await;
        c.batch_execute(DDL).await.unwrap();
        c
    });
    let mut cfg = PostgresConfig::new(cluster.url());
    cfg.reconnect_initial = Duration::from_millis(100);
    cfg.reconnect_max = Duration::from_millis(500);
    let (h, engine) = start(cfg);
    rt.block_on(client.batch_execute("INSERT INTO categories (name) VALUES ('before')"))
        .unwrap();
    let t = next_tx_of(&h, &engine);
    engine.applied.send(t.position.clone()).unwrap();
    drop(client);

    cluster.pg_ctl(&["-m", "fast", "-w", "restart"]);
    let client = rt.block_on(connect(&cluster.url()));
    rt.block_on(client.batch_execute("INSERT INTO categories (name) VALUES ('after')"))
        .unwrap();
    // The first change may come again (its ack may not have reached the server); the one
    // written after the restart must come.
    let mut keys = vec![];
    while !keys.contains(&Some(2)) {
        let t = next_tx_of(&h, &engine);
        keys.extend(t.changes.iter().map(|c| c.key()));
        engine.applied.send(t.position.clone()).unwrap();
    }
    assert!(keys.iter().all(|k| *k == Some(1) || *k == Some(2)));
    stop(h, engine);
}
