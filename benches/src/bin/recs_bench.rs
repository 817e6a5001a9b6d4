//! Recommendations: eager maintenance in the dataflow against computing a customer's list at read
//! time from incrementally maintained indexes. Prints figures; asserts nothing about speed.
//!
//! ```text
//! cargo run --release -p benches --bin recs_bench -- eager  [customers products orders]
//! cargo run --release -p benches --bin recs_bench -- base   [customers products orders]
//! cargo run --release -p benches --bin recs_bench -- read   [customers products orders]
//! ```
//! * `eager`: the engine's dataflow for also_bought + top_products + recommendations
//!   (`engine::views`), history fed in batches of 5,000 orders, then single-order transactions.
//! * `base`: the same without recommendations (also_bought + top_products only): the difference
//!   is what eager recommendations cost.
//! * `read`: a plain in-memory index (co-occurrence per product, interactions per customer,
//!   best sellers per category) updated per order, and a customer's list computed on request
//!   with the same rules as the view (score, exclusions, fill-ins).
//!
//! Memory is the growth of the process RSS while loading the history. The synthetic shop:
//! 10 categories, every 20th product inactive, product popularity skewed (u³), orders of 1-4
//! items, each customer with 2 product views, a category browse and, for some, cart and
//! wishlist rows.

use engine::facts::{Interaction, Item, LiveOrder, ProductFacts, ViewEvent};
use engine::views::shared::Shared;
use engine::views::testkit::{Rig, Sessions};
use engine::views::{also_bought, recommendations, top_products, Coll, Inputs, ViewsConfig};
use sources::{Micros, Money};
use std::collections::HashMap;
use std::time::Instant;
use view_store::ViewRow;

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

struct Shop {
    customers: i64,
    products: i64,
    rng: Rng,
    next_order: i64,
}

/// An order: id, customer, distinct products with quantities.
type Order = (i64, i64, Vec<(i64, i64)>);

impl Shop {
    fn new(customers: i64, products: i64) -> Shop {
        Shop {
            customers,
            products,
            rng: Rng(42),
            next_order: 1,
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
    /// Per customer: (product views, category browse, cart rows, wishlist rows).
    #[allow(clippy::type_complexity)]
    fn interactions(&mut self, c: i64) -> (Vec<i64>, i64, Vec<i64>, Vec<i64>) {
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
        let _ = c;
        (views, browse, cart, wish)
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

// ------------------------------------------------------------------------------------------
// eager: the dataflow
// ------------------------------------------------------------------------------------------

fn with_recs<'s>(inputs: &Inputs<'s>, cfg: &ViewsConfig) -> Coll<'s, ViewRow> {
    let shared = Shared::new(inputs);
    let co = also_bought::CoPurchases::new(&shared, cfg);
    let top = top_products::build(&shared, cfg);
    also_bought::build(&co, cfg).concatenate([
        top.clone(),
        recommendations::build(inputs, &shared, &co, &top, cfg),
    ])
}

fn without_recs<'s>(inputs: &Inputs<'s>, cfg: &ViewsConfig) -> Coll<'s, ViewRow> {
    let shared = Shared::new(inputs);
    let co = also_bought::CoPurchases::new(&shared, cfg);
    also_bought::build(&co, cfg).concat(top_products::build(&shared, cfg))
}

fn feed_order(s: &mut Sessions, (id, c, lines): &Order, item_id: &mut i64) {
    s.live_orders.update(
        (
            *id,
            LiveOrder {
                order_date: Micros(0),
                total: Money(100),
                customer_id: Some(*c),
            },
        ),
        1,
    );
    for &(p, q) in lines {
        *item_id += 1;
        s.items.update(
            (
                *item_id,
                Item {
                    order_id: *id,
                    product_id: p,
                    quantity: q,
                    price: Money(100),
                },
            ),
            1,
        );
    }
}

fn eager(recs: bool, customers: i64, products: i64, orders: i64) {
    let cfg = ViewsConfig {
        windows: vec![],
        ..ViewsConfig::default()
    };
    let rss0 = rss_bytes();
    let mut rig = Rig::new(&cfg, if recs { with_recs } else { without_recs });
    let mut shop = Shop::new(customers, products);
    let start = Instant::now();
    rig.tick(|s| {
        for p in 0..products {
            s.products.update(
                (
                    p,
                    ProductFacts {
                        category_id: Some(Shop::category(p)),
                        active: Shop::active(p),
                    },
                ),
                1,
            );
        }
    });
    let mut row_id = 0i64;
    for c0 in (0..customers).step_by(10_000) {
        rig.tick(|s| {
            for c in c0..(c0 + 10_000).min(customers) {
                let (views, browse, cart, wish) = shop.interactions(c);
                for p in views {
                    row_id += 1;
                    let v = ViewEvent {
                        customer_id: c,
                        product_id: Some(p),
                        category_id: Some(Shop::category(p)),
                    };
                    s.product_views.update((row_id, v), 1);
                }
                row_id += 1;
                let b = ViewEvent {
                    customer_id: c,
                    product_id: None,
                    category_id: Some(browse),
                };
                s.product_views.update((row_id, b), 1);
                for p in cart {
                    row_id += 1;
                    let i = Interaction {
                        customer_id: c,
                        product_id: p,
                    };
                    s.carts.update((row_id, i), 1);
                }
                for p in wish {
                    row_id += 1;
                    let i = Interaction {
                        customer_id: c,
                        product_id: p,
                    };
                    s.wishlists.update((row_id, i), 1);
                }
            }
        });
    }
    let mut item_id = 0i64;
    let mut loaded = 0;
    while loaded < orders {
        let n = 5_000.min(orders - loaded);
        let batch: Vec<Order> = (0..n).map(|_| shop.order()).collect();
        rig.tick(|s| {
            for o in &batch {
                feed_order(s, o, &mut item_id);
            }
        });
        loaded += n;
    }
    let load = start.elapsed();
    let rss1 = rss_bytes();
    // one order per transaction
    let mut lat = Vec::new();
    let t_all = Instant::now();
    for _ in 0..300 {
        let o = shop.order();
        let t = Instant::now();
        rig.tick(|s| feed_order(s, &o, &mut item_id));
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let total = t_all.elapsed();
    println!(
        "{} customers={customers} products={products} orders={orders}: load {:.1} s, state {:.0} MB (RSS growth), \
         update per order (1 order per transaction, 300 orders): mean {:.2} ms, p50 {:.2} ms, p99 {:.2} ms",
        if recs { "eager dataflow (also_bought + top_products + recommendations)" } else { "baseline dataflow (also_bought + top_products)" },
        load.as_secs_f64(),
        mb(rss1.saturating_sub(rss0)),
        total.as_secs_f64() * 1e3 / 300.0,
        percentile(&mut lat.clone(), 0.5),
        percentile(&mut lat, 0.99),
    );
}

// ------------------------------------------------------------------------------------------
// read time: indexes maintained per order, the list computed on request
// ------------------------------------------------------------------------------------------

#[derive(Default)]
struct CustomerIdx {
    /// product -> weight(c, p)
    weights: HashMap<i64, i64>,
    /// bought or in the cart
    excluded: Vec<i64>,
    /// category -> browses
    browses: HashMap<i64, i64>,
}

struct Index {
    top_n: usize,
    /// p -> q -> orders containing both
    co: HashMap<i64, HashMap<i64, u32>>,
    customers: HashMap<i64, CustomerIdx>,
    /// product -> quantity sold
    sold: HashMap<i64, i64>,
    /// best sellers per category (index = category) and global (last), by quantity then id
    best: Vec<Vec<(i64, i64)>>,
    basket_cap: usize,
}

impl Index {
    fn new(top_n: usize, basket_cap: usize) -> Index {
        Index {
            top_n,
            co: HashMap::new(),
            customers: HashMap::new(),
            sold: HashMap::new(),
            best: vec![Vec::new(); CATEGORIES as usize + 1],
            basket_cap,
        }
    }

    fn interaction(&mut self, c: i64, p: i64, w: i64, exclude: bool) {
        let e = self.customers.entry(c).or_default();
        *e.weights.entry(p).or_default() += w;
        if exclude && !e.excluded.contains(&p) {
            e.excluded.push(p);
        }
    }

    fn browse(&mut self, c: i64, cat: i64) {
        *self
            .customers
            .entry(c)
            .or_default()
            .browses
            .entry(cat)
            .or_default() += 1;
    }

    fn bump_best(&mut self, scope: usize, p: i64, qty: i64) {
        let n = self.top_n;
        let list = &mut self.best[scope];
        list.retain(|&(q, _)| q != p);
        list.push((p, qty));
        list.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        list.truncate(n);
    }

    fn order(&mut self, (_, c, lines): &Order) {
        if lines.len() <= self.basket_cap {
            for &(p, _) in lines {
                let row = self.co.entry(p).or_default();
                for &(q, _) in lines {
                    if p != q {
                        *row.entry(q).or_default() += 1;
                    }
                }
            }
        }
        for &(p, qty) in lines {
            self.interaction(*c, p, 2, true);
            let s = self.sold.entry(p).or_default();
            *s += qty;
            let s = *s;
            self.bump_best(Shop::category(p) as usize, p, s);
            self.bump_best(CATEGORIES as usize, p, s);
        }
    }

    /// The customer's list, as the view defines it: (product, score) in rank order.
    fn recommend(&self, c: i64, k: usize, scores: &mut HashMap<i64, i64>) -> Vec<(i64, i64)> {
        let Some(ci) = self.customers.get(&c) else {
            return Vec::new();
        };
        scores.clear();
        for (&p, &w) in &ci.weights {
            if let Some(row) = self.co.get(&p) {
                for (&q, &n) in row {
                    *scores.entry(q).or_default() += w * n as i64;
                }
            }
        }
        let excluded = |q: i64| ci.excluded.contains(&q) || !Shop::active(q);
        let mut ranked: Vec<(i64, i64)> = scores
            .iter()
            .filter(|&(&q, _)| !excluded(q))
            .map(|(&q, &s)| (q, s))
            .collect();
        let by_rank = |a: &(i64, i64), b: &(i64, i64)| b.1.cmp(&a.1).then(a.0.cmp(&b.0));
        if ranked.len() > k {
            ranked.select_nth_unstable_by(k, by_rank);
            ranked.truncate(k);
        }
        ranked.sort_by(by_rank);
        if ranked.len() < k {
            let mut fav: HashMap<i64, i64> = ci.browses.clone();
            for (&p, &w) in &ci.weights {
                *fav.entry(Shop::category(p)).or_default() += w;
            }
            let mut fav: Vec<(i64, i64)> = fav.into_iter().collect();
            fav.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let pool = fav
                .iter()
                .flat_map(|&(cat, _)| self.best[cat as usize].iter())
                .chain(self.best[CATEGORIES as usize].iter());
            for &(p, _) in pool {
                if ranked.len() >= k {
                    break;
                }
                if excluded(p) || ranked.iter().any(|&(q, _)| q == p) {
                    continue;
                }
                ranked.push((p, 0));
            }
        }
        ranked
    }
}

fn read_time(customers: i64, products: i64, orders: i64) {
    let cfg = ViewsConfig::default();
    let rss0 = rss_bytes();
    let mut idx = Index::new(cfg.top_n, cfg.basket_cap);
    let mut shop = Shop::new(customers, products);
    let start = Instant::now();
    for c in 0..customers {
        let (views, browse, cart, wish) = shop.interactions(c);
        for p in views {
            idx.interaction(c, p, 1, false);
        }
        idx.browse(c, browse);
        for p in cart {
            idx.interaction(c, p, 3, true);
        }
        for p in wish {
            idx.interaction(c, p, 2, false);
        }
    }
    for _ in 0..orders {
        let o = shop.order();
        idx.order(&o);
    }
    let load = start.elapsed();
    let rss1 = rss_bytes();
    let pairs: usize = idx.co.values().map(|r| r.len()).sum();

    // update cost per order on the loaded store
    let n_upd = 100_000;
    let batch: Vec<Order> = (0..n_upd).map(|_| shop.order()).collect();
    let t = Instant::now();
    for o in &batch {
        idx.order(o);
    }
    let upd = t.elapsed().as_secs_f64() * 1e6 / n_upd as f64;

    // serving: random customers
    let mut scores = HashMap::new();
    let mut lat = Vec::new();
    let mut listed = 0usize;
    for _ in 0..20_000 {
        let c = shop.customer();
        let t = Instant::now();
        let list = idx.recommend(c, cfg.also_bought_k, &mut scores);
        lat.push(t.elapsed().as_secs_f64() * 1e6);
        listed += list.len();
        std::hint::black_box(list);
    }
    let mean = lat.iter().sum::<f64>() / lat.len() as f64;
    println!(
        "read-time index customers={customers} products={products} orders={orders}: load {:.1} s, \
         index {:.0} MB (RSS growth; {pairs} co-occurring pairs), update per order {:.2} µs, \
         serve one customer (20,000 random, k={}): mean {:.1} µs, p50 {:.1} µs, p99 {:.1} µs, \
         {:.1} products listed on average",
        load.as_secs_f64(),
        mb(rss1.saturating_sub(rss0)),
        upd,
        cfg.also_bought_k,
        mean,
        percentile(&mut lat.clone(), 0.5),
        percentile(&mut lat, 0.99),
        listed as f64 / 20_000.0,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map(String::as_str).unwrap_or("read");
    let num = |i: usize, d: i64| {
        args.get(i)
            .and_then(|s| s.replace('_', "").parse::<i64>().ok())
            .unwrap_or(d)
    };
    match mode {
        "eager" => eager(true, num(1, 10_000), num(2, 1_000), num(3, 50_000)),
        "base" => eager(false, num(1, 10_000), num(2, 1_000), num(3, 50_000)),
        "read" => read_time(num(1, 1_000_000), num(2, 100_000), num(3, 2_000_000)),
        other => eprintln!("unknown mode {other:?}: use eager, base or read"),
    }
}
