//! Hand-computed cases for the oracle itself: each expected value is worked out in a comment.

use super::*;
use sources::{Cart, Op, Wishlist};

const S: i64 = 1_000_000; // one second in micros

fn upsert(lsn: Option<u64>, row: Row) -> Change {
    Change {
        table: row.table(),
        op: Op::Update,
        lsn: lsn.map(Lsn),
        kind: ChangeKind::Upsert {
            row,
            unavailable: Unavailable(0),
        },
    }
}

fn upsert_un(lsn: u64, row: Row, cols: &[usize]) -> Change {
    let mut un = Unavailable(0);
    for c in cols {
        un.insert(*c);
    }
    Change {
        table: row.table(),
        op: Op::Update,
        lsn: Some(Lsn(lsn)),
        kind: ChangeKind::Upsert {
            row,
            unavailable: un,
        },
    }
}

fn delete(lsn: u64, table: Table, key: i64) -> Change {
    Change {
        table,
        op: Op::Delete,
        lsn: Some(Lsn(lsn)),
        kind: ChangeKind::Delete { key },
    }
}

fn truncate(lsn: u64, table: Table) -> Change {
    Change {
        table,
        op: Op::Truncate,
        lsn: Some(Lsn(lsn)),
        kind: ChangeKind::Truncate,
    }
}

fn order(id: i64, at: i64, total: i64, customer: Option<i64>) -> Row {
    order_s(id, at, total, customer, OrderStatus::Pending)
}

fn order_s(id: i64, at: i64, total: i64, customer: Option<i64>, status: OrderStatus) -> Row {
    Row::Order(Order {
        order_id: id,
        order_date: Micros(at),
        total_price: Money(total),
        status,
        customer_id: customer,
        payment_id: None,
        shipment_id: None,
    })
}

fn item(id: i64, order: i64, product: i64, qty: i32, price: i64) -> Row {
    Row::OrderItem(OrderItem {
        order_item_id: id,
        order_id: Some(order),
        product_id: Some(product),
        quantity: qty,
        price: Money(price),
    })
}

fn product(id: i64, cat: Option<i64>, active: Option<bool>) -> Row {
    Row::Product(Box::new(Product {
        product_id: id,
        sku: format!("SKU{id}"),
        name: format!("p{id}"),
        description: None,
        price: Money(100),
        stock: Some(10),
        category_id: cat,
        is_active: active,
        created_at: None,
        updated_at: None,
    }))
}

fn cart(id: i64, c: i64, p: i64) -> Row {
    Row::Cart(Cart {
        cart_id: id,
        customer_id: Some(c),
        product_id: Some(p),
        quantity: 1,
        added_at: None,
    })
}

fn wish(id: i64, c: i64, p: i64) -> Row {
    Row::Wishlist(Wishlist {
        wishlist_id: id,
        customer_id: Some(c),
        product_id: Some(p),
        added_at: None,
    })
}

fn view(id: i64, c: i64, p: Option<i64>, cat: Option<i64>) -> Row {
    Row::ProductView(ProductView {
        view_id: id,
        customer_id: Some(c),
        product_id: p,
        category_id: cat,
        viewed_at: None,
    })
}

/// A db from rows inserted without LSNs (applied unconditionally, in order).
fn db_of(rows: Vec<Row>) -> Db {
    let mut db = Db::new();
    for r in rows {
        db.apply_change(&upsert(None, r));
    }
    db
}

fn cfg(windows: &[i64], top_n: usize, k: usize) -> ViewsConfig {
    ViewsConfig {
        windows: windows.iter().map(|s| Window::Size(*s)).collect(),
        top_n,
        also_bought_k: k,
        ..ViewsConfig::default()
    }
}

fn total(db: &Db, id: i64) -> Option<i64> {
    match db.get(Table::Orders, id) {
        Some(Row::Order(o)) => Some(o.total_price.0),
        _ => None,
    }
}

#[test]
fn upsert_lsn_rules() {
    let mut db = Db::new();
    db.apply_change(&upsert(Some(10), order(1, 0, 100, None)));
    // Repeated insert: no-op.
    db.apply_change(&upsert(Some(10), order(1, 0, 999, None)));
    assert_eq!(total(&db, 1), Some(100));
    db.apply_change(&upsert(Some(20), order(1, 0, 200, None)));
    // Stale update (15 < 20): ignored.
    db.apply_change(&upsert(Some(15), order(1, 0, 150, None)));
    assert_eq!(total(&db, 1), Some(200));
    db.apply_change(&delete(30, Table::Orders, 1));
    assert_eq!(total(&db, 1), None);
    // Redelivered insert of the deleted row: 10 < 30, ignored.
    db.apply_change(&upsert(Some(10), order(1, 0, 100, None)));
    assert_eq!(total(&db, 1), None);
    // A later re-insert works.
    db.apply_change(&upsert(Some(40), order(1, 0, 400, None)));
    assert_eq!(total(&db, 1), Some(400));
    // LSNs are per key: key 2 at LSN 5 is fine after key 1 at 40.
    db.apply_change(&upsert(Some(5), order(2, 0, 5, None)));
    assert_eq!(total(&db, 2), Some(5));
    // No LSN: applied unconditionally, and the remembered LSN stays 40 for key 1.
    db.apply_change(&upsert(None, order(1, 0, 1, None)));
    assert_eq!(total(&db, 1), Some(1));
    db.apply_change(&upsert(Some(35), order(1, 0, 35, None)));
    assert_eq!(total(&db, 1), Some(1));
}

#[test]
fn upsert_truncate_and_unavailable() {
    let mut db = Db::new();
    db.apply_change(&upsert(Some(10), order(1, 0, 100, None)));
    db.apply_change(&upsert(Some(20), order(2, 0, 200, None)));
    // Key 3 written at 60 and delivered before a truncate at 50: survives it.
    db.apply_change(&upsert(Some(60), order(3, 0, 300, None)));
    db.apply_change(&truncate(50, Table::Orders));
    assert_eq!(db.len(Table::Orders), 1);
    assert_eq!(total(&db, 3), Some(300));
    // Older than the truncate: ignored, also for a key never seen.
    db.apply_change(&upsert(Some(45), order(4, 0, 400, None)));
    assert_eq!(total(&db, 4), None);
    // Newer: applied.
    db.apply_change(&upsert(Some(70), order(4, 0, 400, None)));
    assert_eq!(total(&db, 4), Some(400));
    // A repeated truncate (50 again) changes nothing.
    db.apply_change(&truncate(50, Table::Orders));
    assert_eq!(db.len(Table::Orders), 2);

    // Unavailable columns keep the stored value: products' category_id is column 6.
    db.apply_change(&upsert(Some(80), product(7, Some(3), Some(true))));
    db.apply_change(&upsert_un(81, product(7, Some(99), Some(false)), &[6]));
    match db.get(Table::Products, 7) {
        Some(Row::Product(p)) => {
            assert_eq!(p.category_id, Some(3));
            assert_eq!(p.is_active, Some(false));
        }
        other => panic!("{other:?}"),
    }
    // Orders: total_price is column 2, status column 3.
    db.apply_change(&upsert_un(
        90,
        order_s(4, 0, -1, None, OrderStatus::Shipped),
        &[2],
    ));
    assert_eq!(total(&db, 4), Some(400));
    // Without a stored image the values as sent are used.
    db.apply_change(&upsert_un(91, order(5, 0, 555, None), &[2]));
    assert_eq!(total(&db, 5), Some(555));
}

#[test]
fn highest_order_date_counts_every_applied_image() {
    let mut db = Db::new();
    db.apply_change(&upsert(
        Some(1),
        order_s(1, 500 * S, 1, None, OrderStatus::Cancelled),
    ));
    db.apply_change(&delete(2, Table::Orders, 1));
    db.apply_change(&upsert(Some(3), order(2, 100 * S, 1, None)));
    // A stale event does not count.
    db.apply_change(&upsert(Some(1), order(2, 900 * S, 1, None)));
    assert_eq!(db.highest_order_date, Some(Micros(500 * S)));
}

#[test]
fn revenue_by_hand() {
    // 1m windows. A@10s 10.00, B@50s 5.01, C@90s 20.00, D@100s cancelled 100.00.
    let db = db_of(vec![
        order(1, 10 * S, 1000, None),
        order(2, 50 * S, 501, None),
        order(3, 90 * S, 2000, None),
        order_s(4, 100 * S, 10000, None, OrderStatus::Cancelled),
    ]);
    let c = cfg(&[60 * S], 5, 10);
    let f = Facts::new(&db, None);
    // Window 0: 2 orders, 15.01, avg 7.505 -> 7.51 (half away), prev 0, trend null.
    // Window 60s: 1 order, 20.00, prev 15.01, trend (2000-1501)/1501 = 33.2445% -> 33.24.
    let w = Window::Size(60 * S);
    let expect = vec![
        RevenueRow {
            window: w,
            window_start: Some(Micros(0)),
            order_count: 2,
            revenue: Money(1501),
            avg_order_value: Money(751),
            prev_revenue: Money(0),
            trend_pct: None,
        },
        RevenueRow {
            window: w,
            window_start: Some(Micros(60 * S)),
            order_count: 1,
            revenue: Money(2000),
            avg_order_value: Money(2000),
            prev_revenue: Money(1501),
            trend_pct: Some(Pct2(3324)),
        },
    ];
    assert_eq!(revenue(&f, &c), expect);
    // Same numbers as the shared constructor.
    assert_eq!(
        RevenueRow::new(w, Micros(60 * S), 1, Money(2000), Money(1501)),
        expect[1]
    );
    // Retention 30 s: highest order_date seen is 100 s (the cancelled D counts), cutoff 70 s;
    // window 0 ends at 60 s <= 70 s: gone. Window 60 s keeps prev 15.01 from the full data.
    let f = Facts::new(&db, Some(30 * S));
    assert_eq!(revenue(&f, &c), vec![expect[1].clone()]);
    // Retention 60 s: cutoff 40 s, window 0 ends at 60 s > 40 s: kept.
    let f = Facts::new(&db, Some(60 * S));
    assert_eq!(revenue(&f, &c).len(), 2);
}

#[test]
fn rounding_by_hand() {
    assert_eq!(div_half_away(5, 2), 3);
    assert_eq!(div_half_away(-5, 2), -3);
    assert_eq!(div_half_away(5, -2), -3);
    assert_eq!(div_half_away(4, 3), 1);
    assert_eq!(div_half_away(-4, 3), -1);
    assert_eq!(div_half_away(1, 3), 0);
    assert_eq!(div_half_away(2, 3), 1);
    // trend with prev 3.00, revenue 1.00: (100-300)/300 = -66.666% -> -66.67.
    let r = RevenueRow::new(Window::Size(S), Micros(0), 1, Money(100), Money(300));
    assert_eq!(r.trend_pct, Some(Pct2(-6667)));
    assert_eq!(
        div_half_away((100 - 300) * 10_000, 300),
        -6667,
        "oracle agrees"
    );
}

#[allow(clippy::too_many_arguments)]
fn tp(
    w: Window,
    start: Option<i64>,
    cat: Option<i64>,
    m: Metric,
    rank: u32,
    p: i64,
    q: i64,
    r: i64,
) -> TopProductRow {
    TopProductRow {
        window: w,
        window_start: start.map(Micros),
        category_id: cat,
        metric: m,
        rank,
        product_id: p,
        quantity: q,
        revenue: Money(r),
    }
}

#[test]
fn top_products_by_hand() {
    // Products 1, 2 in category 7, 3 in 8, 4 unknown. top_n 2, 1m windows.
    // O1@0: p1 x2 @1.00, p2 x1 @5.00, p4 x3 @1.00. O2@70s: p1 x1 @1.00. O3@10s cancelled: p3 x10.
    let db = db_of(vec![
        product(1, Some(7), Some(true)),
        product(2, Some(7), None),
        product(3, Some(8), Some(true)),
        order(1, 0, 0, None),
        order(2, 70 * S, 0, None),
        order_s(3, 10 * S, 0, None, OrderStatus::Cancelled),
        item(1, 1, 1, 2, 100),
        item(2, 1, 2, 1, 500),
        item(3, 1, 4, 3, 100),
        item(4, 2, 1, 1, 100),
        item(5, 3, 3, 10, 100),
    ]);
    let c = cfg(&[60 * S], 2, 10);
    let f = Facts::new(&db, None);
    let m = Window::Size(60 * S);
    let a = Window::All;
    use Metric::{Quantity as Q, Revenue as R};
    let mut expect = vec![
        // Window 0, global: p1 (2, 2.00), p2 (1, 5.00), p4 (3, 3.00).
        tp(m, Some(0), None, Q, 1, 4, 3, 300),
        tp(m, Some(0), None, Q, 2, 1, 2, 200),
        tp(m, Some(0), None, R, 1, 2, 1, 500),
        tp(m, Some(0), None, R, 2, 4, 3, 300),
        // Window 0, category 7: p1, p2 (p4 unknown: global only).
        tp(m, Some(0), Some(7), Q, 1, 1, 2, 200),
        tp(m, Some(0), Some(7), Q, 2, 2, 1, 500),
        tp(m, Some(0), Some(7), R, 1, 2, 1, 500),
        tp(m, Some(0), Some(7), R, 2, 1, 2, 200),
        // Window 60 s: p1 only.
        tp(m, Some(60 * S), None, Q, 1, 1, 1, 100),
        tp(m, Some(60 * S), None, R, 1, 1, 1, 100),
        tp(m, Some(60 * S), Some(7), Q, 1, 1, 1, 100),
        tp(m, Some(60 * S), Some(7), R, 1, 1, 1, 100),
        // All, global: p1 (3, 3.00), p2 (1, 5.00), p4 (3, 3.00): quantity tie p1/p4 -> p1.
        tp(a, None, None, Q, 1, 1, 3, 300),
        tp(a, None, None, Q, 2, 4, 3, 300),
        // revenue: p2 5.00, then p1 = p4 = 3.00 -> p1.
        tp(a, None, None, R, 1, 2, 1, 500),
        tp(a, None, None, R, 2, 1, 3, 300),
        tp(a, None, Some(7), Q, 1, 1, 3, 300),
        tp(a, None, Some(7), Q, 2, 2, 1, 500),
        tp(a, None, Some(7), R, 1, 2, 1, 500),
        tp(a, None, Some(7), R, 2, 1, 3, 300),
        // Category 8 only had the cancelled order: nothing.
    ];
    expect.sort();
    let mut got = top_products(&f, &c);
    got.sort();
    assert_eq!(got, expect);
}

#[test]
fn trending_by_hand() {
    // 1m windows. W0: p1 x2, p2 x1. W60: p1 x1, p2 x3, p3 x1. W120: p2 x1.
    let db = db_of(vec![
        order(1, 5 * S, 0, None),
        order(2, 65 * S, 0, None),
        order(3, 125 * S, 0, None),
        item(1, 1, 1, 2, 100),
        item(2, 1, 2, 1, 100),
        item(3, 2, 1, 1, 100),
        item(4, 2, 2, 3, 100),
        item(5, 2, 3, 1, 100),
        item(6, 3, 2, 1, 100),
    ]);
    let c = cfg(&[60 * S], 5, 10);
    let w = Window::Size(60 * S);
    let tr = |start: i64, rank, p, q, pq| TrendingRow {
        window: w,
        window_start: Some(Micros(start)),
        rank,
        product_id: p,
        quantity: q,
        prev_quantity: pq,
        growth: q - pq,
    };
    // W0: growth p1 2, p2 1. W60: p1 -1 (out), p2 +2, p3 +1. W120: p2 -2: no rows.
    let expect = vec![
        tr(0, 1, 1, 2, 0),
        tr(0, 2, 2, 1, 0),
        tr(60 * S, 1, 2, 3, 1),
        tr(60 * S, 2, 3, 1, 0),
    ];
    assert_eq!(trending(&Facts::new(&db, None), &c), expect);
    // Retention 60 s: highest 125 s, cutoff 65 s: W0 (ends 60) gone, W60 kept with prev from W0.
    assert_eq!(
        trending(&Facts::new(&db, Some(60 * S)), &c),
        expect[2..].to_vec()
    );
}

#[test]
fn category_sales_by_hand() {
    // p1, p2 in cat 7; p3 in cat 8; p4 unknown.
    // O1@0: p1 x2 @1.00, p2 x1 @5.00, p3 x1 @2.00. O2@30s: p1 x1 @1.00. O3@70s: p3 x4 @2.00, p4.
    let db = db_of(vec![
        product(1, Some(7), Some(true)),
        product(2, Some(7), Some(true)),
        product(3, Some(8), Some(false)),
        order(1, 0, 0, None),
        order(2, 30 * S, 0, None),
        order(3, 70 * S, 0, None),
        item(1, 1, 1, 2, 100),
        item(2, 1, 2, 1, 500),
        item(3, 1, 3, 1, 200),
        item(4, 2, 1, 1, 100),
        item(5, 3, 3, 4, 200),
        item(6, 3, 4, 9, 100),
    ]);
    let c = cfg(&[60 * S], 5, 10);
    let m = Window::Size(60 * S);
    let cs = |w, start: Option<i64>, cat, q, r, n| CategorySalesRow {
        window: w,
        window_start: start.map(Micros),
        category_id: cat,
        quantity: q,
        revenue: Money(r),
        order_count: n,
    };
    // W0 cat 7: qty 2+1+1 = 4, 2.00+5.00+1.00 = 8.00, orders {1,2}; cat 8: 1, 2.00, {1}.
    // W60 cat 8: 4, 8.00, {3}. all: cat 7 4, 8.00, 2; cat 8 5, 10.00, {1,3}.
    let expect = vec![
        cs(m, Some(0), 7, 4, 800, 2),
        cs(m, Some(0), 8, 1, 200, 1),
        cs(m, Some(60 * S), 8, 4, 800, 1),
        cs(Window::All, None, 7, 4, 800, 2),
        cs(Window::All, None, 8, 5, 1000, 2),
    ];
    assert_eq!(category_sales(&Facts::new(&db, None), &c), expect);
}

fn fa(
    rule: Rule,
    c: Option<i64>,
    o: Option<i64>,
    start: i64,
    n: i64,
    amount: Option<i64>,
) -> FraudAlertRow {
    FraudAlertRow {
        rule,
        customer_id: c,
        order_id: o,
        start: Micros(start),
        order_count: n,
        amount: amount.map(Money),
    }
}

#[test]
fn fraud_by_hand() {
    let mut rows = Vec::new();
    let mut id = 0;
    let mut add = |at: i64, total: i64, c: Option<i64>, st: OrderStatus| {
        id += 1;
        rows.push(order_s(id, at, total, c, st));
    };
    use OrderStatus::{Cancelled as X, Pending as P};
    // high_value (> 10,000,000.00): exactly the threshold no (id 1); one cent more yes (id 2,
    // customer 20); cancelled no (id 3); without customer yes (id 4).
    add(5_000 * S, 1_000_000_000, Some(20), P);
    add(5_000 * S, 1_000_000_001, Some(20), P);
    add(5_000 * S, 2_000_000_000, Some(20), X);
    add(6_000 * S, 1_000_000_001, None, P);
    // Customer 1: six orders in [0, 60 s): 0,10,20,30,40 s and 59.999999 s -> frequent (6 in
    // window 0) and burst: [t-60 s, t] for t = 59.999999 s holds all 6, start = -1 µs.
    for (i, at) in [0, 10 * S, 20 * S, 30 * S, 40 * S, 60 * S - 1]
        .into_iter()
        .enumerate()
    {
        add(at, 100 + i as i64, Some(1), P);
    }
    // ...plus a cancelled one in the same window (does not count).
    add(15 * S, 100, Some(1), X);
    // Customer 2: five orders in one window: nothing.
    for at in [0, 1, 2, 3, 4] {
        add(at * S, 100 + at, Some(2), P);
    }
    // Customer 3 straddles a boundary: 30,40,50 | 60,70,90 s -> 3 + 3 per window (no frequent),
    // burst [30 s, 90 s] closed holds 6 -> start 30 s.
    for at in [30, 40, 50, 60, 70, 90] {
        add(at * S, 100 + at, Some(3), P);
    }
    // Customer 4: two bursts of 6 (100..150 s and 310..360 s, neither inside one tumbling
    // minute): earliest start 150-60 = 90 s.
    for at in [100, 110, 120, 130, 140, 150, 310, 320, 330, 340, 350, 360] {
        add(at * S, 100 + at, Some(4), P);
    }
    // No customer: six orders in a minute: ignored by per-customer rules.
    for at in [0, 1, 2, 3, 4, 5] {
        add(at * S, 100, None, P);
    }
    // Customer 5: 7.00 at 0, 300 s, 600 s: closed [0, 600 s] holds 3 -> repeated_amount start
    // 0; a fourth at 1201 s does not raise the maximum. 8.00 twice: nothing.
    for at in [0, 300, 600, 1201] {
        add(at * S, 700, Some(5), P);
    }
    add(0, 800, Some(5), P);
    add(S, 800, Some(5), P);
    // Customer 6: 7.00 at 0, 300 s, 600.000001 s: at most 2 within 600 s: nothing.
    for at in [0, 300 * S, 600 * S + 1] {
        add(at, 700, Some(6), P);
    }
    let db = db_of(rows);
    let c = cfg(&[60 * S], 5, 10);
    let mut got = fraud_alerts(&Facts::new(&db, None), &c);
    got.sort();
    let mut expect = vec![
        fa(
            Rule::HighValue,
            Some(20),
            Some(2),
            5_000 * S,
            1,
            Some(1_000_000_001),
        ),
        fa(
            Rule::HighValue,
            None,
            Some(4),
            6_000 * S,
            1,
            Some(1_000_000_001),
        ),
        fa(Rule::FrequentOrders, Some(1), None, 0, 6, None),
        fa(Rule::OrderBurst, Some(1), None, -1, 6, None),
        fa(Rule::OrderBurst, Some(3), None, 30 * S, 6, None),
        fa(Rule::OrderBurst, Some(4), None, 90 * S, 6, None),
        fa(Rule::RepeatedAmount, Some(5), None, 0, 3, Some(700)),
    ];
    expect.sort();
    assert_eq!(got, expect);
}

#[test]
fn burst_interval_by_hand() {
    let t = |v: &[i64]| v.iter().map(|x| Micros(*x)).collect::<Vec<_>>();
    // Equal times count together.
    assert_eq!(
        max_in_closed_interval(&t(&[5, 5, 5]), 10),
        Some((3, Micros(-5)))
    );
    // [0, 10] closed holds 0 and 10.
    assert_eq!(
        max_in_closed_interval(&t(&[0, 10, 21]), 10),
        Some((2, Micros(0)))
    );
    assert_eq!(max_in_closed_interval(&t(&[]), 10), None);
}

fn baskets_db(extra: Vec<Row>) -> Db {
    // O1 {1,2,3}, O2 {1,2}, O3 {1,3,4}, O4 cancelled {1,4,5}, O5 {2, 2} (same product twice).
    let mut rows = vec![
        order(1, 0, 0, Some(9)),
        order(2, 0, 0, Some(9)),
        order(3, 0, 0, Some(9)),
        order_s(4, 0, 0, Some(9), OrderStatus::Cancelled),
        order(5, 0, 0, Some(9)),
    ];
    let mut id = 100;
    for (o, ps) in [
        (1, vec![1, 2, 3]),
        (2, vec![1, 2]),
        (3, vec![1, 3, 4]),
        (4, vec![1, 4, 5]),
        (5, vec![2, 2]),
    ] {
        for p in ps {
            id += 1;
            rows.push(item(id, o, p, 1, 100));
        }
    }
    rows.extend(extra);
    db_of(rows)
}

#[test]
fn also_bought_by_hand() {
    // co: (1,2)=2 (1,3)=2 (1,4)=1 (2,3)=1 (3,4)=1, symmetric. K = 2:
    // p1: 2 (2), 3 (2) [4 cut]; p2: 1 (2), 3 (1); p3: 1 (2), 2 (1) [tie with 4 -> 2];
    // p4: 1 (1), 3 (1).
    let db = baskets_db(vec![]);
    let ab = |p, rank, q, n| AlsoBoughtRow {
        product_id: p,
        rank,
        other_product_id: q,
        order_count: n,
    };
    let expect = vec![
        ab(1, 1, 2, 2),
        ab(1, 2, 3, 2),
        ab(2, 1, 1, 2),
        ab(2, 2, 3, 1),
        ab(3, 1, 1, 2),
        ab(3, 2, 2, 1),
        ab(4, 1, 1, 1),
        ab(4, 2, 3, 1),
    ];
    assert_eq!(also_bought(&Facts::new(&db, None), &cfg(&[], 5, 2)), expect);
    // Basket cap 2: O1 and O3 (3 products) give no pairs; only O2 {1,2} is left.
    let mut c = cfg(&[], 5, 2);
    c.basket_cap = 2;
    assert_eq!(
        also_bought(&Facts::new(&db, None), &c),
        vec![ab(1, 1, 2, 1), ab(2, 1, 1, 1)]
    );
}

#[test]
fn recommendations_by_hand() {
    // Products: 1, 2, 5 in category 10; 3, 6 in 20; 4 in 20 and inactive.
    // Customer 9 bought (live): O1 {1,2,3}, O2 {1,2}, O3 {1,3,4}, O5 {2}, O7 {5 x5}, O8 {6}.
    // All-time quantities: p1 3, p2 3 (O1, O2, O5 twice? no: O5 has two items of p2 -> p2 is
    // 1+1+2 = 4), p3 2, p4 1, p5 5, p6 1.
    let db = baskets_db(vec![
        product(1, Some(10), Some(true)),
        product(2, Some(10), Some(true)),
        product(3, Some(20), None),
        product(4, Some(20), Some(false)),
        product(5, Some(10), Some(true)),
        product(6, Some(20), Some(true)),
        order(7, 0, 0, Some(9)),
        order(8, 0, 0, Some(9)),
        item(200, 7, 5, 5, 100),
        item(201, 8, 6, 1, 100),
        // Customer 1: wishlist p1 (2), view p3 (1), a browse of category 20.
        wish(1, 1, 1),
        view(1, 1, Some(3), Some(20)),
        view(2, 1, None, Some(20)),
        // Customer 2: cart p2 (3).
        cart(1, 2, 2),
        // Customer 3: browses only: category 20 twice, 10 once.
        view(3, 3, None, Some(20)),
        view(4, 3, None, Some(20)),
        view(5, 3, None, Some(10)),
        // Customer 4: a view of an unknown product that nobody bought.
        view(6, 4, Some(77), None),
    ]);
    let c = cfg(&[], 5, 3);
    let rec = |c, rank, p, s| RecommendationRow {
        customer_id: c,
        rank,
        product_id: p,
        score: s,
    };
    // Best sellers (all, quantity, top 5): category 10: p5 5, p2 4, p1 3 -> [5, 2, 1];
    // category 20: p3 2, p4 1, p6 1 -> [3, 4, 6]; global: p5 5, p2 4, p1 3, p3 2, p4 1 (p4 < p6).
    // co (the cancelled O4 does not count): (1,2)=2 (1,3)=2 (1,4)=1 (2,3)=1 (3,4)=1.
    //
    // Customer 1: w = {1: 2, 3: 1}. score(2) = 2*co(1,2) + 1*co(3,2) = 4 + 1 = 5;
    // score(3) = 2*co(1,3) = 4; score(4) = 2*1 + 1*1 = 3 but inactive; score(1) = 1*co(3,1) = 2.
    // -> 2 (5), 3 (4), 1 (2): full, no fill.
    // Customer 2: w = {2: 3}, cart excludes 2. score(1) = 3*2 = 6, score(3) = 3*1 = 3.
    // Fill one: favourite category 10 (3): best sellers [5, 2, 1] -> 5 (2 excluded... 5 first).
    // Customer 3: favourites 20 (2), 10 (1): [3, 4 inactive, 6] -> 3, 6; then [5, ...] -> 5.
    // Customer 4: no scores, product 77 has no category: global best sellers 5, 2, 1.
    // Customer 9 bought 1,2,3,4,5,6: everything excluded, no rows.
    let expect = vec![
        rec(1, 1, 2, 5),
        rec(1, 2, 3, 4),
        rec(1, 3, 1, 2),
        rec(2, 1, 1, 6),
        rec(2, 2, 3, 3),
        rec(2, 3, 5, 0),
        rec(3, 1, 3, 0),
        rec(3, 2, 6, 0),
        rec(3, 3, 5, 0),
        rec(4, 1, 5, 0),
        rec(4, 2, 2, 0),
        rec(4, 3, 1, 0),
    ];
    let f = Facts::new(&db, None);
    assert_eq!(best_sellers(&f, &c, Some(10)), vec![5, 2, 1]);
    assert_eq!(best_sellers(&f, &c, Some(20)), vec![3, 4, 6]);
    assert_eq!(best_sellers(&f, &c, None), vec![5, 2, 1, 3, 4]);
    assert_eq!(recommendations(&f, &c), expect);
}

#[test]
fn compute_covers_every_view_and_sorts() {
    let db = baskets_db(vec![product(1, Some(10), Some(true))]);
    let all = compute(&db, &ViewsConfig::default(), None);
    assert_eq!(all.len(), ViewName::ALL.len());
    for (v, rows) in &all {
        let mut s = rows.clone();
        s.sort();
        assert_eq!(&s, rows, "{v:?} sorted");
        assert!(rows.iter().all(|r| r.view() == *v));
    }
}
