//! Recommendations as the engine really computes them: index updates from the dataflow,
//! published with every view's rows into the view store, lists computed at read time through
//! the store's hook (`ViewStore::recommend`). Prints figures; asserts nothing about speed.
//!
//! ```text
//! cargo run --release -p benches --bin recs_bench -- --help
//! cargo run --release -p benches --bin recs_bench -- [--mode engine|base|index]
//!     [--customers 1000000] [--products 100000] [--orders 2000000] [--updates 300]
//!     [--burst 10000] [--serve 20000] [--k 10] [--workers 1]
//! ```
//! * `engine` (default): a real [`Engine`] (ingest, upsert, every view, runtime, store) loads
//!   the history as source transactions (products, then every customer's interactions, then
//!   the orders with their items), then measures:
//!   - memory: RSS growth over the load (all views, not only recommendations);
//!   - update cost per order: `--updates` single-order transactions each waited for until
//!     visible (latency p50/p99 of the whole engine), and `--burst` single-order transactions
//!     submitted back to back (mean cost per order at full speed);
//!   - serving: `ViewStore::recommend(c, k)` for `--serve` random customers (p50/p99), on the
//!     loaded engine.
//! * `base` / `index`: the dataflow alone on one worker (no runtime) without / with the
//!   store's index (`views::build`, plus `views::index::deltas` applied to the store and
//!   served through the hook): run both (separate processes, so RSS growth is not shared);
//!   the difference is what also_bought and recommendations cost in memory and update time.
//!
//! The synthetic shop: 10 categories, every 20th product inactive, product popularity skewed
//! (u³), orders of 1-4 items, each customer with 2 product views, a category browse and, for
//! some, cart and wishlist rows; 20 orders per second of event time.

use engine::facts::{Interaction, Item, LiveOrder, ProductFacts, ViewEvent};
use engine::views::testkit::{order_facts, Rig, Updates};
use engine::views::{self, Coll, Inputs, ViewsConfig};
use engine::{Engine, EngineConfig};
use sources::{
    Cart, Change, ChangeKind, Micros, Money, Op, Order as OrderRow, OrderItem, OrderStatus,
    Position, Product, ProductView, Row, Transaction, Unavailable, Wishlist,
};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Instant;
use view_store::{AsOf, ViewRow, ViewStore};

/// splitmix64: deterministic and dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const CATEGORIES: i64 = 10;
/// 2026-01-01T00:00:00Z
const T0: i64 = 1_767_225_600_000_000;

struct Shop {
    customers: i64,
    products: i64,
    rng: Rng,
    next_order: i64,
    next_item: i64,
}

/// An order: id, customer, distinct products with quantities.
type Order = (i64, i64, Vec<(i64, i64)>);

/// One customer's rows: product views, a category browse, cart rows, wishlist rows.
struct Touches {
    views: Vec<i64>,
    browse: i64,
    cart: Vec<i64>,
    wish: Vec<i64>,
}

impl Shop {
    fn new(customers: i64, products: i64) -> Shop {
        Shop {
            customers,
            products,
            rng: Rng(42),
            next_order: 1,
            next_item: 1,
        }
    }
    fn category(p: i64) -> i64 {
        p % CATEGORIES
    }
    fn active(p: i64) -> bool {
        p % 20 != 0
    }
    fn product(&mut self) -> i64 {
        let u = self.rng.unit();
        ((self.products as f64) * u * u * u) as i64
    }
    fn customer(&mut self) -> i64 {
        self.rng.below(self.customers as u64) as i64
    }
    fn order(&mut self) -> Order {
        let id = self.next_order;
        self.next_order += 1;
        let c = self.customer();
        let n = 1 + self.rng.below(4) as usize;
        let mut lines: Vec<(i64, i64)> = Vec::with_capacity(n);
        for _ in 0..n {
            let p = self.product();
            if !lines.iter().any(|(q, _)| *q == p) {
                lines.push((p, 1 + self.rng.below(3) as i64));
            }
        }
        (id, c, lines)
    }
    fn touches(&mut self) -> Touches {
        let views = vec![self.product(), self.product()];
        let browse = self.rng.below(CATEGORIES as u64) as i64;
        let cart = if self.rng.below(3) == 0 {
            vec![self.product()]
        } else {
            vec![]
        };
        let wish = if self.rng.below(5) == 0 {
            vec![self.product()]
        } else {
            vec![]
        };
        Touches {
            views,
            browse,
            cart,
            wish,
        }
    }
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|x| x.parse::<u64>().ok())
        })
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

fn mb(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() - 1) as f64 * p).round() as usize;
    v[i]
}

struct Args {
    mode: String,
    customers: i64,
    products: i64,
    orders: i64,
    updates: usize,
    burst: usize,
    serve: usize,
    k: usize,
    workers: usize,
}

const HELP: &str = "recs_bench: recommendations through the real engine path (see the module docs)
  --mode engine|base|index engine: the full engine + store (default); base / index: the
                           dataflow alone without / with the recommendations index (run both
                           and compare: the difference is what recommendations cost)
  --customers N            customers with interactions (default 1000000)
  --products N             products, 10 categories, every 20th inactive (default 100000)
  --orders N               orders of history, 1-4 items each (default 2000000)
  --updates N              single-order transactions waited for one by one (default 300)
  --burst N                single-order transactions submitted back to back (default 10000)
  --serve N                random customers served through ViewStore::recommend (default 20000)
  --k N                    list length asked for when serving (default 10)
  --workers N              timely workers of the engine (default 1)";

fn args() -> Result<Args, String> {
    let mut a = Args {
        mode: "engine".into(),
        customers: 1_000_000,
        products: 100_000,
        orders: 2_000_000,
        updates: 300,
        burst: 10_000,
        serve: 20_000,
        k: 10,
        workers: 1,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        let flag = v[i].as_str();
        if flag == "--help" || flag == "-h" {
            return Err(String::new());
        }
        let val = v
            .get(i + 1)
            .ok_or_else(|| format!("{flag} needs a value"))?;
        let num = || -> Result<i64, String> {
            val.replace('_', "")
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| format!("{flag}: expected a number, got {val:?}"))
        };
        match flag {
            "--mode" => a.mode = val.clone(),
            "--customers" => a.customers = num()?.max(1),
            "--products" => a.products = num()?.max(1),
            "--orders" => a.orders = num()?,
            "--updates" => a.updates = num()? as usize,
            "--burst" => a.burst = num()? as usize,
            "--serve" => a.serve = num()? as usize,
            "--k" => a.k = num()?.max(1) as usize,
            "--workers" => a.workers = num()?.max(1) as usize,
            other => return Err(format!("unknown flag {other:?}")),
        }
        i += 2;
    }
    Ok(a)
}

fn main() {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("{e}\n");
            }
            println!("{HELP}");
            std::process::exit(if e.is_empty() { 0 } else { 2 });
        }
    };
    match a.mode.as_str() {
        "engine" => {
            if let Err(e) = engine_path(&a) {
                eprintln!("recs_bench: {e:#}");
                std::process::exit(1);
            }
        }
        "base" => marginal(&a, false),
        "index" => marginal(&a, true),
        other => {
            eprintln!("unknown mode {other:?}: use engine, base or index");
            std::process::exit(2);
        }
    }
}

// ------------------------------------------------------------------------------------------
// engine: source transactions through the real engine
// ------------------------------------------------------------------------------------------

fn upsert(row: Row) -> Change {
    Change {
        table: row.table(),
        op: Op::Create,
        lsn: None,
        kind: ChangeKind::Upsert {
            row,
            unavailable: Unavailable(0),
        },
    }
}

fn tx(changes: Vec<Change>) -> Transaction {
    Transaction {
        tx_id: None,
        lsn: None,
        received_at: Micros::now(),
        position: Position::None,
        changes,
    }
}

fn product_row(p: i64) -> Change {
    upsert(Row::Product(Box::new(Product {
        product_id: p,
        sku: format!("SKU-{p}"),
        name: String::new(),
        description: None,
        price: Money(1_000),
        stock: None,
        category_id: Some(Shop::category(p)),
        is_active: Some(Shop::active(p)),
        created_at: None,
        updated_at: None,
    })))
}

fn order_changes(shop: &mut Shop, (id, c, lines): &Order, out: &mut Vec<Change>) {
    let mut total = 0;
    for &(p, q) in lines {
        let item = shop.next_item;
        shop.next_item += 1;
        total += q * 1_000;
        out.push(upsert(Row::OrderItem(OrderItem {
            order_item_id: item,
            order_id: Some(*id),
            product_id: Some(p),
            quantity: q as i32,
            price: Money(1_000),
        })));
    }
    out.push(upsert(Row::Order(OrderRow {
        order_id: *id,
        order_date: Micros(T0 + id * 50_000),
        total_price: Money(total),
        status: OrderStatus::Pending,
        customer_id: Some(*c),
        payment_id: None,
        shipment_id: None,
    })));
}

fn engine_path(a: &Args) -> anyhow::Result<()> {
    let cfg = EngineConfig {
        workers: a.workers,
        // no retention cut: the history is 2M orders at 20 per second, ~28 h of event time
        retention: None,
        ..EngineConfig::default()
    };
    let k = cfg.views.also_bought_k;
    let rss0 = rss_bytes();
    let eng = Engine::start(cfg)?;
    let store = eng.store();
    let mut shop = Shop::new(a.customers, a.products);
    let start = Instant::now();

    eng.submit(tx((0..a.products).map(product_row).collect()))?;
    let mut row_id = 0i64;
    let mut next = || {
        row_id += 1;
        row_id
    };
    for c0 in (0..a.customers).step_by(10_000) {
        let mut changes = Vec::new();
        for c in c0..(c0 + 10_000).min(a.customers) {
            let t = shop.touches();
            for p in t.views {
                changes.push(upsert(Row::ProductView(ProductView {
                    view_id: next(),
                    customer_id: Some(c),
                    product_id: Some(p),
                    category_id: Some(Shop::category(p)),
                    viewed_at: None,
                })));
            }
            changes.push(upsert(Row::ProductView(ProductView {
                view_id: next(),
                customer_id: Some(c),
                product_id: None,
                category_id: Some(t.browse),
                viewed_at: None,
            })));
            for p in t.cart {
                changes.push(upsert(Row::Cart(Cart {
                    cart_id: next(),
                    customer_id: Some(c),
                    product_id: Some(p),
                    quantity: 1,
                    added_at: None,
                })));
            }
            for p in t.wish {
                changes.push(upsert(Row::Wishlist(Wishlist {
                    wishlist_id: next(),
                    customer_id: Some(c),
                    product_id: Some(p),
                    added_at: None,
                })));
            }
        }
        eng.submit(tx(changes))?;
    }
    let mut loaded = 0;
    while loaded < a.orders {
        let n = 1_000.min(a.orders - loaded);
        let mut changes = Vec::new();
        for _ in 0..n {
            let o = shop.order();
            order_changes(&mut shop, &o, &mut changes);
        }
        eng.submit(tx(changes))?;
        loaded += n;
    }
    let as_of = eng.sync();
    let load = start.elapsed();
    let rss1 = rss_bytes();
    let customers = store.recommended_customers().len();
    println!(
        "engine, {} worker(s): customers={} products={} orders={}: load {:.1} s (engine time {}), \
         RSS growth {:.0} MB (every view + the recommendations index), {customers} customers \
         with a list",
        a.workers,
        a.customers,
        a.products,
        a.orders,
        load.as_secs_f64(),
        as_of.time,
        mb(rss1.saturating_sub(rss0)),
    );

    // one order per transaction, each waited for until visible
    let mut lat = Vec::with_capacity(a.updates);
    for _ in 0..a.updates {
        let o = shop.order();
        let mut changes = Vec::new();
        order_changes(&mut shop, &o, &mut changes);
        let t = Instant::now();
        eng.submit(tx(changes))?;
        eng.sync();
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    // one order per transaction, back to back
    let orders: Vec<Vec<Change>> = (0..a.burst)
        .map(|_| {
            let o = shop.order();
            let mut changes = Vec::new();
            order_changes(&mut shop, &o, &mut changes);
            changes
        })
        .collect();
    let t = Instant::now();
    for changes in orders {
        eng.submit(tx(changes))?;
    }
    eng.sync();
    let burst = t.elapsed().as_secs_f64() * 1e6 / a.burst.max(1) as f64;
    println!(
        "  update per order, whole engine (every view): visible after p50 {:.2} ms, p99 {:.2} ms \
         ({} single-order transactions one by one); {:.1} µs per order back to back ({} orders)",
        percentile(&mut lat.clone(), 0.5),
        percentile(&mut lat, 0.99),
        a.updates,
        burst,
        a.burst,
    );

    serve(&store, &mut shop, a, k);
    let dump_t = Instant::now();
    let rows = store.with_recommender(|_, r| {
        r.customers()
            .map(|c| r.recommend(c, r.k()).len())
            .sum::<usize>()
    });
    println!(
        "  every customer's list (what the dump writes): {rows} rows in {:.1} s",
        dump_t.elapsed().as_secs_f64()
    );
    eng.shutdown()?;
    Ok(())
}

/// Serves random customers through the store's hook.
fn serve(store: &ViewStore, shop: &mut Shop, a: &Args, view_k: usize) {
    let mut lat = Vec::with_capacity(a.serve);
    let mut listed = 0usize;
    for _ in 0..a.serve {
        let c = shop.customer();
        let t = Instant::now();
        let (_, list) = store.recommend(c, a.k);
        lat.push(t.elapsed().as_secs_f64() * 1e6);
        listed += list.len();
        std::hint::black_box(list);
    }
    let mean = lat.iter().sum::<f64>() / lat.len().max(1) as f64;
    println!(
        "  serve one customer through ViewStore::recommend ({} random, k={}, view K={view_k}): \
         mean {:.1} µs, p50 {:.1} µs, p99 {:.1} µs, {:.1} products listed on average",
        a.serve,
        a.k,
        mean,
        percentile(&mut lat.clone(), 0.5),
        percentile(&mut lat, 0.99),
        listed as f64 / a.serve.max(1) as f64,
    );
}

// ------------------------------------------------------------------------------------------
// marginal: the dataflow without / with the recommendations index
// ------------------------------------------------------------------------------------------

thread_local! {
    /// What the rig's worker (this thread) produced since the last publication.
    static OUT: RefCell<Vec<(ViewRow, isize)>> = RefCell::default();
}

fn rows_only<'s>(inputs: &Inputs<'s>, cfg: &ViewsConfig) -> Coll<'s, ViewRow> {
    views::build(inputs, cfg)
        .inspect(|(row, _, r)| OUT.with(|o| o.borrow_mut().push((row.clone(), *r))))
}

/// Applies what the dataflow produced, and with `index` the time's index updates, to the
/// store as the runtime does (consolidated, retractions first).
fn publish(store: &ViewStore, time: u64, index: Option<views::IndexUpdates>) {
    let changes = OUT.with(|o| std::mem::take(&mut *o.borrow_mut()));
    let as_of = AsOf {
        time,
        ..AsOf::default()
    };
    let (batch, index) = engine::runtime::store_batch(changes, index.unwrap_or_default(), as_of);
    store.apply_indexed(batch, index);
}

fn feed_order(
    f: &mut Updates,
    cfg: &ViewsConfig,
    products: &BTreeMap<i64, ProductFacts>,
    (id, c, lines): &Order,
) {
    let order = LiveOrder {
        order_date: Micros(T0 + id * 50_000),
        total: Money(100),
        customer_id: Some(*c),
    };
    let items: Vec<Item> = lines
        .iter()
        .map(|&(p, q)| Item {
            order_id: *id,
            product_id: p,
            quantity: q,
            price: Money(100),
        })
        .collect();
    order_facts(cfg, *id, order, &items, products, f);
}

fn marginal(a: &Args, recs: bool) {
    // no windows: what is compared is all-time state, as recommendations only read that
    let cfg = ViewsConfig {
        windows: vec![],
        ..ViewsConfig::default()
    };
    let store = ViewStore::new();
    store.set_top_k(cfg.also_bought_k);
    OUT.with(|o| o.borrow_mut().clear());
    let rss0 = rss_bytes();
    let mut rig = Rig::new(&cfg, rows_only);
    let mut time = 0;
    // one engine time: the dataflow's part fed, the index's part published with its rows (or
    // dropped without the index)
    let mut tick = |rig: &mut Rig, f: &mut dyn FnMut(&mut Updates)| {
        let mut u = Updates::default();
        f(&mut u);
        let mut index = None;
        rig.tick(|s| index = Some(s.feed(u)));
        time += 1;
        publish(&store, time, index.filter(|_| recs));
    };
    let mut shop = Shop::new(a.customers, a.products);
    let start = Instant::now();
    let products: BTreeMap<i64, ProductFacts> = (0..a.products)
        .map(|p| {
            let f = ProductFacts {
                category_id: Some(Shop::category(p)),
                active: Shop::active(p),
            };
            (p, f)
        })
        .collect();
    tick(&mut rig, &mut |u| {
        u.products
            .extend(products.iter().map(|(&p, &f)| ((p, f), 1)));
    });
    let mut row_id = 0i64;
    for c0 in (0..a.customers).step_by(10_000) {
        let touches: Vec<(i64, Touches)> = (c0..(c0 + 10_000).min(a.customers))
            .map(|c| (c, shop.touches()))
            .collect();
        tick(&mut rig, &mut |u| {
            for (c, t) in &touches {
                let c = *c;
                for &p in &t.views {
                    row_id += 1;
                    let v = ViewEvent {
                        customer_id: c,
                        product_id: Some(p),
                        category_id: Some(Shop::category(p)),
                    };
                    u.product_views.push(((row_id, v), 1));
                }
                row_id += 1;
                let b = ViewEvent {
                    customer_id: c,
                    product_id: None,
                    category_id: Some(t.browse),
                };
                u.product_views.push(((row_id, b), 1));
                for &p in &t.cart {
                    row_id += 1;
                    let i = Interaction {
                        customer_id: c,
                        product_id: p,
                    };
                    u.carts.push(((row_id, i), 1));
                }
                for &p in &t.wish {
                    row_id += 1;
                    let i = Interaction {
                        customer_id: c,
                        product_id: p,
                    };
                    u.wishlists.push(((row_id, i), 1));
                }
            }
        });
    }
    let mut loaded = 0;
    while loaded < a.orders {
        let n = 5_000.min(a.orders - loaded);
        let batch: Vec<Order> = (0..n).map(|_| shop.order()).collect();
        tick(&mut rig, &mut |u| {
            for o in &batch {
                feed_order(u, &cfg, &products, o);
            }
        });
        loaded += n;
    }
    let load = start.elapsed();
    let rss1 = rss_bytes();
    let mut lat = Vec::with_capacity(a.updates);
    for _ in 0..a.updates {
        let o = shop.order();
        let t = Instant::now();
        tick(&mut rig, &mut |u| feed_order(u, &cfg, &products, &o));
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "marginal, {}: customers={} products={} orders={}: load {:.1} s, RSS growth {:.0} MB, \
         update per order (dataflow + store apply, {} single-order times): p50 {:.3} ms, p99 {:.3} ms",
        if recs {
            "all-time views + the store's index (views::build + views::index::deltas)"
        } else {
            "all-time views without recommendations (views::build)"
        },
        a.customers,
        a.products,
        a.orders,
        load.as_secs_f64(),
        mb(rss1.saturating_sub(rss0)),
        a.updates,
        percentile(&mut lat.clone(), 0.5),
        percentile(&mut lat, 0.99),
    );
    if recs {
        serve(&store, &mut shop, a, cfg.also_bought_k);
    }
}
