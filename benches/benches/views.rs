//! Incremental update cost of each view (SPEC §4): a store of 100k live orders (about 250k
//! items, 2,000 products in 40 categories, 5,000 customers, one day of order times, windows
//! 1m/5m/1h), then one order with three items inserted and retracted again, each change a
//! logical time of its own that the view finishes before the next. One iteration = insert +
//! retract. Each view is measured alone (`inputs`, the inputs fed with no view, is the
//! baseline), and `all` is the full `views::build`. Then, for the product views and `all`: a
//! best-selling product changing category and back, and 100 orders inserted in one time and
//! retracted in the next.
//!
//! `cargo bench -p benches --bench views`

use criterion::{criterion_group, criterion_main, Criterion};
use engine::views::testkit::{change, BuildFn, Db, DbOrder, Rig, Updates};
use engine::views::{
    category_sales, fraud_alerts, revenue, top_products, trending, Coll, Inputs, ViewsConfig,
};
use std::time::Duration;
use view_store::ViewRow;

const ORDERS: i64 = 100_000;
const PRODUCTS: i64 = 2_000;
const CUSTOMERS: i64 = 5_000;
const DAY_SECS: i64 = 86_400;

/// xorshift: deterministic data without a dependency.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: i64) -> i64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as i64
    }
}

fn store() -> Db {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut db = Db::default();
    for p in 1..=PRODUCTS {
        db.product(p, Some(p % 40));
    }
    let mut item = 0;
    for id in 1..=ORDERS {
        let secs = id * DAY_SECS / ORDERS;
        db.orders.insert(
            id,
            DbOrder::new(
                secs,
                1_000 + rng.below(50_000),
                Some(1 + rng.below(CUSTOMERS)),
            ),
        );
        for _ in 0..1 + rng.below(4) {
            item += 1;
            // half the items go to the 100 best sellers
            let product = if rng.below(2) == 0 {
                1 + rng.below(100)
            } else {
                1 + rng.below(PRODUCTS)
            };
            db.item(item, id, product, 1 + rng.below(3), 500 + rng.below(10_000));
        }
    }
    db
}

/// `n` new orders in the last minute, each with three items.
fn orders(cfg: &ViewsConfig, n: i64) -> Updates {
    let mut db = Db::default();
    for k in 0..n {
        let id = ORDERS + 1 + k;
        let date = DAY_SECS - 60 + k % 60;
        db.orders
            .insert(id, DbOrder::new(date, 12_345, Some(42 + k)));
        for (j, product) in [7, 150 + k, 1_999 - k].into_iter().enumerate() {
            db.item(10_000_000 + 3 * k + j as i64, id, product, 2, 999);
        }
    }
    db.facts(cfg)
}

/// No rows: lets the probe wait for a collection that is not a view.
fn none<'s, D: Ord + std::fmt::Debug + Clone + 'static>(c: Coll<'s, D>) -> Coll<'s, ViewRow> {
    c.flat_map(|_| None)
}

fn inputs_only<'s>(i: &Inputs<'s>, _: &ViewsConfig) -> Coll<'s, ViewRow> {
    // probe every input the views read
    none(i.live_orders.clone())
        .concat(none(i.cutoffs.clone()))
        .concat(none(i.sales.clone()))
        .concat(none(i.order_totals.clone()))
        .concat(none(i.category_totals.clone()))
}
fn revenue_view<'s>(i: &Inputs<'s>, c: &ViewsConfig) -> Coll<'s, ViewRow> {
    revenue::build(i, c)
}
fn top_products_view<'s>(i: &Inputs<'s>, c: &ViewsConfig) -> Coll<'s, ViewRow> {
    top_products::build(i, c)
}
fn trending_view<'s>(i: &Inputs<'s>, c: &ViewsConfig) -> Coll<'s, ViewRow> {
    trending::build(i, c)
}
fn category_sales_view<'s>(i: &Inputs<'s>, c: &ViewsConfig) -> Coll<'s, ViewRow> {
    category_sales::build(i, c)
}
fn fraud_view<'s>(i: &Inputs<'s>, c: &ViewsConfig) -> Coll<'s, ViewRow> {
    fraud_alerts::build(&i.live_orders, &c.fraud)
}

fn views(c: &mut Criterion) {
    let cfg = ViewsConfig::default();
    let base = store().facts(&cfg);
    let order = orders(&cfg, 1);
    let empty = Updates::default();
    let (insert, retract) = (change(&empty, &order), change(&order, &empty));
    let cases: [(&str, BuildFn); 7] = [
        ("inputs", inputs_only),
        ("revenue", revenue_view),
        ("top_products", top_products_view),
        ("trending", trending_view),
        ("category_sales", category_sales_view),
        ("fraud_alerts", fraud_view),
        ("all", engine::views::build),
    ];
    let mut group = c.benchmark_group("views_order_insert_retract_100k");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));
    for (name, build) in cases {
        let mut rig = Rig::new(&cfg, build);
        let t0 = std::time::Instant::now();
        rig.tick(|s| {
            s.feed(base.clone());
        });
        eprintln!("{name}: loaded 100k orders in {:?}", t0.elapsed());
        group.bench_function(name, |b| {
            b.iter(|| {
                rig.tick(|s| {
                    s.feed(insert.clone());
                });
                rig.tick(|s| {
                    s.feed(retract.clone());
                });
            })
        });
    }
    group.finish();

    // a best seller changes category: every window's sales of it move (and back)
    let category = |c| engine::facts::ProductFacts {
        category_id: Some(c),
        active: true,
    };
    let move_away = Updates {
        products: vec![((7, category(7)), -1), ((7, category(39)), 1)],
        ..Updates::default()
    };
    let move_back = Updates {
        products: vec![((7, category(39)), -1), ((7, category(7)), 1)],
        ..Updates::default()
    };
    // 100 orders of 3 items in one time (a source transaction or a poll batch), and back
    let batch = orders(&cfg, 100);
    let (batch_in, batch_out) = (change(&empty, &batch), change(&batch, &empty));
    let mut group = c.benchmark_group("views_100k");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for (name, build) in [
        ("top_products", top_products_view as BuildFn),
        ("category_sales", category_sales_view),
        ("all", engine::views::build),
    ] {
        let mut rig = Rig::new(&cfg, build);
        rig.tick(|s| {
            s.feed(base.clone());
        });
        group.bench_function(format!("{name}/category_change_and_back"), |b| {
            b.iter(|| {
                rig.tick(|s| {
                    s.feed(move_away.clone());
                });
                rig.tick(|s| {
                    s.feed(move_back.clone());
                });
            })
        });
        group.bench_function(format!("{name}/100_orders_insert_retract"), |b| {
            b.iter(|| {
                rig.tick(|s| {
                    s.feed(batch_in.clone());
                });
                rig.tick(|s| {
                    s.feed(batch_out.clone());
                });
            })
        });
    }
    group.finish();
}

criterion_group!(benches, views);
criterion_main!(benches);
