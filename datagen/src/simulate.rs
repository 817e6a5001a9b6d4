//! `simulate`: shopper sessions against Postgres, driven by the behaviour model.
//!
//! The model (`model::Shop`, loaded from the database's current contents) decides every action
//! and returns the full rows it writes, ids included; this module only writes those rows, one
//! database transaction per action, on `concurrency` connections. There is no behaviour here.
//!
//! Ordering: actions are decided in one sequence but run concurrently. Two actions touching the
//! same row or the same customer must commit in decision order (a stock update decided second
//! must not be overwritten by the first), so each action waits for the earlier actions that
//! share a key with it; unrelated actions run in parallel.
//!
//! Live mode sleeps think times (0.5–3 s, divided by `--speed`) and stamps rows with the wall
//! clock; `--historical N` stamps them with a back-dated clock spread over the last N days and
//! never sleeps. `--rate` caps actions per second in both.
//!
//! With `--concurrency 1` a run is a deterministic function of the seed and the database's
//! contents (apart from live-mode timestamps); with more, sessions interleave as the scheduler
//! lets them, so the data differs from run to run while every invariant still holds.
//!
//! Owns the sessions, pacing and the row writer. Must not decide behaviour.

use crate::catalog::{self, ShopRng, Stream};
use crate::db::{describe, DbError, Target};
use crate::model::{
    Action, ClosedOrder, OpenOrder, Shop, ShopState, Step, BACK_OFFICE_PROBABILITY,
};
use crate::schema;
use crate::sql;
use fake::rand::RngExt;
use indicatif::{ProgressBar, ProgressStyle};
use sources::{ChangeKind, Micros, Op, OrderStatus, Row, Table, Transaction};
use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Statement};

/// How to simulate.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub sessions: usize,
    /// Length of one session in (simulated) seconds.
    pub duration_secs: f64,
    /// Sessions running at once (= connections).
    pub concurrency: usize,
    /// Actions per second cap over all sessions.
    pub rate: Option<f64>,
    /// Time compression: think times and session lengths are divided by this.
    pub speed: f64,
    /// Back-date activity over this many days, as fast as possible.
    pub historical_days: Option<u32>,
    pub seed: u64,
    pub progress: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            sessions: 50,
            duration_secs: 25.0,
            concurrency: 8,
            rate: None,
            speed: 1.0,
            historical_days: None,
            seed: 42,
            progress: true,
        }
    }
}

/// What a simulation did.
#[derive(Clone, Debug, Default)]
pub struct SimReport {
    /// Committed actions per kind (`Action::name`).
    pub actions: BTreeMap<&'static str, u64>,
    pub total: u64,
    /// Whole run, loading the model's state included.
    pub elapsed: Duration,
    /// Loading the model's state from the database.
    pub load_elapsed: Duration,
}

impl SimReport {
    /// Actions per second while acting (state loading excluded).
    pub fn per_second(&self) -> f64 {
        let acting = self.elapsed.saturating_sub(self.load_elapsed);
        self.total as f64 / acting.as_secs_f64().max(1e-9)
    }
}

/// Think time between two actions of a session, in seconds (before `--speed`).
const THINK_SECS: (f64, f64) = (0.5, 3.0);

/// Validates the configuration with messages naming the flag.
pub fn validate(cfg: &SimConfig) -> Result<(), DbError> {
    let bad = |m: &str| Err(DbError::Data(m.to_string()));
    if cfg.concurrency == 0 {
        return bad("--concurrency must be at least 1");
    }
    if !(cfg.duration_secs.is_finite() && cfg.duration_secs >= 0.0) {
        return bad("--duration must be a non-negative number of seconds");
    }
    if !(cfg.speed.is_finite() && cfg.speed > 0.0) {
        return bad("--speed must be a positive number");
    }
    if let Some(r) = cfg.rate {
        if !(r.is_finite() && r > 0.0) {
            return bad("--rate must be a positive number of actions per second");
        }
    }
    if cfg.historical_days == Some(0) {
        return bad("--historical must be at least 1 day");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Loading the model's state from the database.

async fn query_rows(client: &Client, table: Table, tail: &str) -> Result<Vec<Row>, DbError> {
    let q = format!("{} {tail}", sql::select_sql(table));
    let rows = client.query(&q, &[]).await.map_err(DbError::sql(format!(
        "reading {table} (run `datagen init`?)"
    )))?;
    rows.iter()
        .map(|r| sql::row_from_sql(table, r).map_err(|e| DbError::Data(e.to_string())))
        .collect()
}

async fn ids(client: &Client, q: &str) -> Result<Vec<i64>, DbError> {
    Ok(client
        .query(q, &[])
        .await
        .map_err(DbError::sql("reading ids (run `datagen init`?)"))?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Items (order_item_id, product_id, quantity) per order of `order_ids`.
async fn items_of(
    client: &Client,
    order_ids: &[i64],
) -> Result<HashMap<i64, Vec<(i64, i64, i32)>>, DbError> {
    let rows = client
        .query(
            "SELECT order_id::int8, order_item_id::int8, COALESCE(product_id, 0)::int8, quantity \
             FROM order_items WHERE order_id = ANY($1::int8[]) ORDER BY order_item_id",
            &[&order_ids],
        )
        .await
        .map_err(DbError::sql("reading order items"))?;
    let mut out: HashMap<i64, Vec<(i64, i64, i32)>> = HashMap::new();
    for r in rows {
        out.entry(r.get(0))
            .or_default()
            .push((r.get(1), r.get(2), r.get(3)));
    }
    Ok(out)
}

/// The database's current contents as the model's state.
pub async fn load_state(client: &Client) -> Result<ShopState, DbError> {
    let mut state = ShopState {
        category_ids: ids(
            client,
            "SELECT category_id::int8 FROM categories ORDER BY category_id",
        )
        .await?,
        customer_ids: ids(
            client,
            "SELECT customer_id::int8 FROM customers ORDER BY customer_id",
        )
        .await?,
        ..ShopState::default()
    };
    for r in query_rows(client, Table::Products, "ORDER BY product_id").await? {
        if let Row::Product(p) = r {
            state.products.push(*p);
        }
    }
    for r in query_rows(client, Table::Carts, "ORDER BY cart_id").await? {
        if let Row::Cart(c) = r {
            state.carts.push(c);
        }
    }
    for r in query_rows(client, Table::Wishlists, "ORDER BY wishlist_id").await? {
        if let Row::Wishlist(w) = r {
            state.wishlists.push(w);
        }
    }
    // Open orders with their payment and shipment (orders without both were not made by the
    // simulator; it leaves them alone).
    let open: Vec<sources::Order> = query_rows(
        client,
        Table::Orders,
        "WHERE status IN ('pending', 'confirmed', 'shipped') AND payment_id IS NOT NULL \
         AND shipment_id IS NOT NULL ORDER BY order_id",
    )
    .await?
    .into_iter()
    .filter_map(|r| match r {
        Row::Order(o) => Some(o),
        _ => None,
    })
    .collect();
    let payment_ids: Vec<i64> = open.iter().filter_map(|o| o.payment_id).collect();
    let shipment_ids: Vec<i64> = open.iter().filter_map(|o| o.shipment_id).collect();
    let mut payments = HashMap::new();
    for r in client
        .query(
            &format!(
                "{} WHERE payment_id = ANY($1::int8[])",
                sql::select_sql(Table::Payments)
            ),
            &[&payment_ids],
        )
        .await
        .map_err(DbError::sql("reading payments"))?
    {
        if let Row::Payment(p) =
            sql::row_from_sql(Table::Payments, &r).map_err(|e| DbError::Data(e.to_string()))?
        {
            payments.insert(p.payment_id, p);
        }
    }
    let mut shipments = HashMap::new();
    for r in client
        .query(
            &format!(
                "{} WHERE shipment_id = ANY($1::int8[])",
                sql::select_sql(Table::Shipments)
            ),
            &[&shipment_ids],
        )
        .await
        .map_err(DbError::sql("reading shipments"))?
    {
        if let Row::Shipment(s) =
            sql::row_from_sql(Table::Shipments, &r).map_err(|e| DbError::Data(e.to_string()))?
        {
            shipments.insert(s.shipment_id, s);
        }
    }
    let open_ids: Vec<i64> = open.iter().map(|o| o.order_id).collect();
    let mut items = items_of(client, &open_ids).await?;
    for order in open {
        let (Some(p), Some(s)) = (
            order.payment_id.and_then(|id| payments.remove(&id)),
            order.shipment_id.and_then(|id| shipments.remove(&id)),
        ) else {
            continue;
        };
        let last_change = order
            .order_date
            .max(s.updated_at.unwrap_or(order.order_date));
        state.open_orders.push(OpenOrder {
            items: items.remove(&order.order_id).unwrap_or_default(),
            // Deterministic stand-in for the fate drawn when the order was placed.
            cancel: order.order_id % 20 == 0 && order.status == OrderStatus::Pending,
            order,
            payment: *p,
            shipment: *s,
            last_change,
        });
    }
    // Recent finished orders: candidates for an occasional delete.
    let closed = client
        .query(
            "SELECT order_id::int8, customer_id::int8 FROM orders \
             WHERE status IN ('delivered', 'cancelled') ORDER BY order_id DESC LIMIT 10000",
            &[],
        )
        .await
        .map_err(DbError::sql("reading finished orders"))?;
    let closed_ids: Vec<i64> = closed.iter().map(|r| r.get(0)).collect();
    let mut closed_items = items_of(client, &closed_ids).await?;
    for r in closed.iter().rev() {
        let order_id: i64 = r.get(0);
        state.closed_orders.push(ClosedOrder {
            order_id,
            customer_id: r.get(1),
            item_ids: closed_items
                .remove(&order_id)
                .unwrap_or_default()
                .iter()
                .map(|i| i.0)
                .collect(),
        });
    }
    // Next ids: past the highest row and past the sequence (ids of deleted rows are not reused).
    for (i, (t, k)) in schema::TABLES.iter().zip(schema::KEY_COLUMNS).enumerate() {
        let row = client
            .query_one(
                &format!(
                    "SELECT (GREATEST(COALESCE(MAX({k}), 0), \
                     COALESCE(pg_sequence_last_value(pg_get_serial_sequence('{t}', '{k}')::regclass), 0)) + 1)::int8 \
                     FROM {t}"
                ),
                &[],
            )
            .await
            .map_err(DbError::sql(format!("reading the next id of {t}")))?;
        state.next_ids[i] = row.get(0);
    }
    Ok(state)
}

// ---------------------------------------------------------------------------------------------
// Writing the model's transactions.

/// Prepared statements of one connection: (insert, update, delete) per table.
pub struct Writer {
    client: Client,
    stmts: Vec<(Statement, Statement, Statement)>,
}

impl Writer {
    /// `fast`: commit without waiting for the WAL flush (`synchronous_commit = off`). Each
    /// action stays atomic and ordered; only the last moments could be lost in a crash, which
    /// is fine for back-filled history and several times faster on one connection.
    pub async fn new(target: &Target, fast: bool) -> Result<Writer, DbError> {
        let client = target.connect().await?;
        if fast {
            client
                .batch_execute("SET synchronous_commit = off")
                .await
                .map_err(DbError::sql("setting synchronous_commit"))?;
        }
        let mut stmts = Vec::new();
        for t in Table::ALL {
            let prep = |q: String| {
                let client = &client;
                async move {
                    client
                        .prepare(&q)
                        .await
                        .map_err(DbError::sql(format!("preparing {q}")))
                }
            };
            stmts.push((
                prep(sql::insert_sql(t)).await?,
                prep(sql::update_sql(t)).await?,
                prep(sql::delete_sql(t)).await?,
            ));
        }
        Ok(Writer { client, stmts })
    }

    /// Writes one model transaction as one database transaction. Every update and delete must
    /// hit exactly one row: anything else means the database was changed behind the model's
    /// back, and continuing would write nonsense.
    pub async fn apply(&mut self, tx: &Transaction) -> Result<(), DbError> {
        let db = self
            .client
            .transaction()
            .await
            .map_err(DbError::sql("begin"))?;
        for c in &tx.changes {
            let i = Table::ALL.iter().position(|t| *t == c.table).unwrap_or(0);
            let (ins, upd, del) = &self.stmts[i];
            let (stmt, what, n) = match &c.kind {
                ChangeKind::Upsert { row, .. } => {
                    let values = sql::values(row);
                    let params: Vec<&(dyn ToSql + Sync)> =
                        values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
                    let (stmt, what) = if c.op == Op::Update {
                        (upd, "update")
                    } else {
                        (ins, "insert")
                    };
                    let n = db.execute(stmt, &params).await.map_err(|e| {
                        DbError::Data(format!(
                            "{what} into {} (id {}): {}",
                            c.table,
                            row.key(),
                            describe(&e)
                        ))
                    })?;
                    (stmt, what, n)
                }
                ChangeKind::Delete { key } => {
                    let n = db.execute(del, &[key]).await.map_err(|e| {
                        DbError::Data(format!(
                            "delete from {} (id {key}): {}",
                            c.table,
                            describe(&e)
                        ))
                    })?;
                    (del, "delete", n)
                }
                ChangeKind::Truncate => continue,
            };
            let _ = stmt;
            if n != 1 {
                return Err(DbError::Data(format!(
                    "{what} of {} id {:?} matched {n} rows: the database was changed outside \
                     the simulator while it ran",
                    c.table,
                    c.key()
                )));
            }
        }
        db.commit().await.map_err(DbError::sql("commit"))?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Ordering of dependent actions.

/// A row (table index, key) or a customer (index 10, id).
type Key = (u8, i64);

fn keys_of(step: &Step) -> Vec<Key> {
    let mut keys: Vec<Key> = step
        .tx
        .changes
        .iter()
        .filter_map(|c| {
            let t = Table::ALL.iter().position(|t| *t == c.table)? as u8;
            Some((t, c.key()?))
        })
        .collect();
    if let Some(c) = step.customer_id {
        keys.push((10, c));
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

struct Shared {
    shop: Shop,
    /// The latest action per key; `true` once it committed (or failed).
    last: HashMap<Key, watch::Receiver<bool>>,
    prune_at: usize,
}

/// A decided action, with the earlier actions it must wait for.
struct Ticket {
    step: Step,
    after: Vec<watch::Receiver<bool>>,
    done: watch::Sender<bool>,
}

impl Shared {
    fn decide(&mut self, f: impl FnOnce(&mut Shop) -> Option<Step>) -> Option<Ticket> {
        let step = f(&mut self.shop)?;
        let (done, rx) = watch::channel(false);
        let mut after = Vec::new();
        for k in keys_of(&step) {
            if let Some(prev) = self.last.insert(k, rx.clone()) {
                if !*prev.borrow() {
                    after.push(prev);
                }
            }
        }
        if self.last.len() > self.prune_at {
            self.last.retain(|_, r| !*r.borrow());
            self.prune_at = (self.last.len() * 2).max(100_000);
        }
        Some(Ticket { step, after, done })
    }
}

// ---------------------------------------------------------------------------------------------
// Sessions.

struct Run {
    cfg: SimConfig,
    shared: Mutex<Shared>,
    stop: AtomicBool,
    error: Mutex<Option<DbError>>,
    counts: Mutex<BTreeMap<&'static str, u64>>,
    total: AtomicU64,
    next_session: AtomicU64,
    next_slot: Mutex<Instant>,
    /// Historical mode: the back-dated start of the simulated period, and now.
    history: Option<(Micros, Micros)>,
    pb: ProgressBar,
}

fn wall_clock() -> Micros {
    Micros::now()
}

impl Run {
    fn fail(&self, e: DbError) {
        self.stop.store(true, Ordering::SeqCst);
        if let Ok(mut slot) = self.error.lock() {
            slot.get_or_insert(e);
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    async fn pace(&self) {
        let Some(rate) = self.cfg.rate else {
            return;
        };
        let at = match self.next_slot.lock() {
            Ok(mut next) => {
                let at = (*next).max(Instant::now());
                *next = at + Duration::from_secs_f64(1.0 / rate);
                at
            }
            Err(_) => return,
        };
        tokio::time::sleep_until(at.into()).await;
    }

    /// Decides (under the model lock), waits for earlier dependent actions, writes.
    async fn act(
        &self,
        writer: &mut Writer,
        f: impl FnOnce(&mut Shop) -> Option<Step>,
    ) -> Result<bool, DbError> {
        self.pace().await;
        let ticket = {
            let mut shared = self
                .shared
                .lock()
                .map_err(|_| DbError::Data("model lock poisoned".into()))?;
            shared.decide(f)
        };
        let Some(ticket) = ticket else {
            return Ok(false);
        };
        for mut w in ticket.after {
            // Err: the earlier action's task is gone; it failed and stopped the run.
            let _ = w.wait_for(|d| *d).await;
        }
        let result = writer.apply(&ticket.step.tx).await;
        let _ = ticket.done.send(true);
        result.map_err(|e| DbError::Data(format!("{} failed: {e}", ticket.step.action.name())))?;
        if let Ok(mut c) = self.counts.lock() {
            *c.entry(ticket.step.action.name()).or_default() += 1;
        }
        self.total.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }

    async fn session(&self, index: u64, writer: &mut Writer) -> Result<(), DbError> {
        let mut rng: ShopRng =
            catalog::row_rng(self.cfg.seed, Stream::Simulation, index as i64 + 1);
        let customer = {
            let mut shared = self
                .shared
                .lock()
                .map_err(|_| DbError::Data("model lock poisoned".into()))?;
            shared.shop.random_customer()
        };
        let length = Duration::from_secs_f64(self.cfg.duration_secs);
        match self.history {
            Some((from, to)) => {
                // Session i starts in the i-th slice of the period: activity covers all of it.
                let span = (to.0 - from.0) as f64;
                let slice = span / self.cfg.sessions.max(1) as f64;
                let start = from.0 + (slice * (index as f64 + rng.random_range(0.0..1.0))) as i64;
                let end = start + length.as_micros() as i64;
                let mut now = start;
                while now <= end.min(to.0) && !self.stopped() {
                    self.one_round(writer, customer, Micros(now), &mut rng)
                        .await?;
                    now += (rng.random_range(THINK_SECS.0..THINK_SECS.1) * 1e6) as i64;
                }
            }
            None => {
                let deadline = Instant::now() + length.div_f64(self.cfg.speed);
                while Instant::now() <= deadline && !self.stopped() {
                    self.one_round(writer, customer, wall_clock(), &mut rng)
                        .await?;
                    let think = rng.random_range(THINK_SECS.0..THINK_SECS.1) / self.cfg.speed;
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_secs_f64(think).min(left)).await;
                }
            }
        }
        Ok(())
    }

    /// One shopper action, and now and then a back-office action.
    async fn one_round(
        &self,
        writer: &mut Writer,
        customer: i64,
        now: Micros,
        rng: &mut ShopRng,
    ) -> Result<(), DbError> {
        self.act(writer, |shop| Some(shop.shopper_step(customer, now)))
            .await?;
        if rng.random_bool(BACK_OFFICE_PROBABILITY) && !self.stopped() {
            self.act(writer, |shop| shop.back_office_step(now)).await?;
        }
        Ok(())
    }

    async fn worker(&self, target: Target) {
        let mut writer = match Writer::new(&target, self.history.is_some()).await {
            Ok(w) => w,
            Err(e) => return self.fail(e),
        };
        loop {
            if self.stopped() {
                return;
            }
            let i = self.next_session.fetch_add(1, Ordering::SeqCst);
            if i >= self.cfg.sessions as u64 {
                return;
            }
            if let Err(e) = self.session(i, &mut writer).await {
                return self.fail(e);
            }
            self.pb.inc(1);
            self.pb
                .set_message(format!("{} actions", self.total.load(Ordering::Relaxed)));
        }
    }
}

/// Runs `simulate`. Stops early (cleanly, between actions) on Ctrl-C.
pub async fn simulate(target: &Target, cfg: &SimConfig) -> Result<SimReport, DbError> {
    validate(cfg)?;
    let started = Instant::now();
    let client = target.connect().await?;
    let state = load_state(&client).await?;
    let load_elapsed = started.elapsed();
    let shop = Shop::from_state(cfg.seed, state);
    if shop.is_empty() {
        return Err(DbError::Data(
            "nothing to simulate: the database has no customers, products or categories \
             (run `datagen generate` first)"
                .into(),
        ));
    }
    let history = cfg.historical_days.map(|days| {
        let to = wall_clock();
        (Micros(to.0 - days as i64 * 86_400 * Micros::PER_SECOND), to)
    });
    let pb = if cfg.progress && std::io::stderr().is_terminal() {
        let pb = ProgressBar::new(cfg.sessions as u64);
        if let Ok(s) = ProgressStyle::with_template(
            "sessions [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}",
        ) {
            pb.set_style(s);
        }
        pb
    } else {
        ProgressBar::hidden()
    };
    let run = Arc::new(Run {
        cfg: cfg.clone(),
        shared: Mutex::new(Shared {
            shop,
            last: HashMap::new(),
            prune_at: 100_000,
        }),
        stop: AtomicBool::new(false),
        error: Mutex::new(None),
        counts: Mutex::new(BTreeMap::new()),
        total: AtomicU64::new(0),
        next_session: AtomicU64::new(0),
        next_slot: Mutex::new(Instant::now()),
        history,
        pb,
    });
    let ctrl_c = {
        let run = run.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::warn!("interrupted: finishing the actions in flight");
                run.stop.store(true, Ordering::SeqCst);
            }
        })
    };
    let mut workers = Vec::new();
    for _ in 0..cfg.concurrency.min(cfg.sessions.max(1)) {
        let run = run.clone();
        let target = target.clone();
        workers.push(tokio::spawn(async move { run.worker(target).await }));
    }
    for w in workers {
        if let Err(e) = w.await {
            run.fail(DbError::Data(format!("a session task failed: {e}")));
        }
    }
    ctrl_c.abort();
    run.pb.finish_and_clear();
    // Ids were chosen by the model: move the sequences past them for everyone else.
    client
        .batch_execute(&schema::sync_sequences())
        .await
        .map_err(DbError::sql("moving id sequences past the simulated ids"))?;
    if let Some(e) = run.error.lock().ok().and_then(|mut e| e.take()) {
        return Err(e);
    }
    let actions = run.counts.lock().map(|c| c.clone()).unwrap_or_default();
    Ok(SimReport {
        total: run.total.load(Ordering::Relaxed),
        actions,
        elapsed: started.elapsed(),
        load_elapsed,
    })
}

/// The kinds of action the report may list, for callers that print all of them.
pub fn action_names() -> Vec<&'static str> {
    Action::ALL.iter().map(|a| a.name()).collect()
}
