//! The oracle: an independent, deliberately naive batch implementation of SPEC §4 and §7.
//!
//! It owns nothing of the engine: it applies `sources::Transaction`s to plain maps (the upsert
//! of SPEC §3/§7) and recomputes every view from scratch with loops over all rows. It is what the
//! randomized tests compare the incremental engine against, so it must stay obviously correct:
//! no incremental tricks, no shared code with `engine::views` beyond the config and row types.
//!
//! Readings of spec sentences that admit more than one meaning are written down where they are
//! used, marked `READING:`. The ones that decide observable results:
//!
//! * Upsert: an event with an LSN is applied iff its LSN is strictly greater than the LSN of the
//!   last applied change of its (table, key) — deletes included — and strictly greater than the
//!   LSN of the last applied truncate of its table. An event without LSN is always applied and
//!   leaves the remembered LSN as it was (READING: "the LSN of the last applied change" is
//!   unknown for it; keeping the older one means a stale redelivery still cannot win).
//! * A truncate with LSN `T` behaves like a delete of every key of its table at `T`: rows whose
//!   last change has an LSN ≥ `T` survive (they were written after the truncate and arrived
//!   before it), all others go. A repeated truncate (LSN ≤ the remembered one) is a no-op.
//! * An upsert whose `unavailable` bits are set keeps the stored value of those columns; when
//!   there is no stored image (insert or resurrected row), the values as sent are used.
//! * Retention: "highest order_date seen" = the maximum `order_date` of every order image the
//!   upsert ever applied (cancelled, later deleted or truncated orders included; stale,
//!   ignored events excluded). It never goes down. A windowed row is shown iff
//!   `window_start + size > highest − retention`.
//! * A product's category is its current `category_id`; a category needs no `categories` row.
//!   Items whose product has no row ("unknown") or a null category count only in global
//!   scopes (revenue is per order and does not look at items). Items with a null order or
//!   product, or whose order is not live, count nowhere.
//! * `is_active` null counts as active (as `engine::facts::ProductFacts` says); an unknown
//!   product is not "inactive" either, so recommendations may propose it.
//!
//! Recommendation readings are next to [`recommendations`].

#![allow(dead_code)]

#[cfg(test)]
mod tests;

use engine::views::ViewsConfig;
use sources::{
    Category, Change, ChangeKind, Customer, Lsn, Micros, Money, Order, OrderItem, OrderStatus,
    Payment, Product, ProductView, Row, Shipment, Table, Transaction, Unavailable,
};
use std::collections::{BTreeMap, BTreeSet};
use view_store::{
    AlsoBoughtRow, CategorySalesRow, FraudAlertRow, Metric, Pct2, RecommendationRow, RevenueRow,
    Rule, TopProductRow, TrendingRow, ViewName, ViewRow, Window,
};

// ------------------------------------------------------------------------------------------
// Upsert
// ------------------------------------------------------------------------------------------

/// The source tables as the naive upsert leaves them.
#[derive(Clone, Debug, Default)]
pub struct Db {
    /// Current image per (table, key); absent after a delete or truncate.
    rows: BTreeMap<(Table, i64), Row>,
    /// LSN of the last applied change per (table, key), deletes included.
    lsns: BTreeMap<(Table, i64), Lsn>,
    /// LSN of the last applied truncate per table.
    truncated_at: BTreeMap<Table, Lsn>,
    /// Highest `order_date` of any applied order image (for retention).
    pub highest_order_date: Option<Micros>,
}

impl Db {
    pub fn new() -> Db {
        Db::default()
    }

    /// Applies a transaction's changes in order.
    pub fn apply(&mut self, tx: &Transaction) {
        for c in &tx.changes {
            self.apply_change(c);
        }
    }

    pub fn apply_all<'a>(&mut self, txs: impl IntoIterator<Item = &'a Transaction>) {
        for tx in txs {
            self.apply(tx);
        }
    }

    /// Whether an event at `lsn` about `key` of `table` is newer than everything applied so far.
    fn is_new(&self, table: Table, key: i64, lsn: Option<Lsn>) -> bool {
        let Some(lsn) = lsn else {
            return true; // no LSN: applied unconditionally
        };
        if let Some(stored) = self.lsns.get(&(table, key)) {
            if lsn <= *stored {
                return false;
            }
        }
        if let Some(t) = self.truncated_at.get(&table) {
            if lsn <= *t {
                return false;
            }
        }
        true
    }

    pub fn apply_change(&mut self, c: &Change) {
        let table = c.table;
        match &c.kind {
            ChangeKind::Truncate => {
                if let (Some(l), Some(t)) = (c.lsn, self.truncated_at.get(&table)) {
                    if l <= *t {
                        return; // a repeated or older truncate
                    }
                }
                let keys: Vec<i64> = self
                    .rows
                    .keys()
                    .filter(|(t, _)| *t == table)
                    .map(|(_, k)| *k)
                    .collect();
                for k in keys {
                    let survives = match (c.lsn, self.lsns.get(&(table, k))) {
                        (Some(l), Some(stored)) => *stored >= l,
                        _ => false,
                    };
                    if !survives {
                        self.rows.remove(&(table, k));
                    }
                }
                if let Some(l) = c.lsn {
                    self.truncated_at.insert(table, l);
                }
            }
            ChangeKind::Delete { key } => {
                if !self.is_new(table, *key, c.lsn) {
                    return;
                }
                self.rows.remove(&(table, *key));
                if let Some(l) = c.lsn {
                    self.lsns.insert((table, *key), l);
                }
            }
            ChangeKind::Upsert { row, unavailable } => {
                let key = row.key();
                if !self.is_new(table, key, c.lsn) {
                    return;
                }
                let image = match self.rows.get(&(table, key)) {
                    Some(old) if !unavailable.is_empty() => merge(old, row, *unavailable),
                    _ => row.clone(),
                };
                if let Row::Order(o) = &image {
                    self.highest_order_date = Some(match self.highest_order_date {
                        Some(h) if h >= o.order_date => h,
                        _ => o.order_date,
                    });
                }
                self.rows.insert((table, key), image);
                if let Some(l) = c.lsn {
                    self.lsns.insert((table, key), l);
                }
            }
        }
    }

    fn table_rows(&self, table: Table) -> impl Iterator<Item = &Row> {
        self.rows
            .iter()
            .filter(move |((t, _), _)| *t == table)
            .map(|(_, r)| r)
    }

    pub fn orders(&self) -> BTreeMap<i64, Order> {
        let mut m = BTreeMap::new();
        for r in self.table_rows(Table::Orders) {
            if let Row::Order(o) = r {
                m.insert(o.order_id, o.clone());
            }
        }
        m
    }

    pub fn items(&self) -> Vec<OrderItem> {
        let mut v = Vec::new();
        for r in self.table_rows(Table::OrderItems) {
            if let Row::OrderItem(i) = r {
                v.push(i.clone());
            }
        }
        v
    }

    pub fn products(&self) -> BTreeMap<i64, Product> {
        let mut m = BTreeMap::new();
        for r in self.table_rows(Table::Products) {
            if let Row::Product(p) = r {
                m.insert(p.product_id, Product::clone(p));
            }
        }
        m
    }

    /// `(customer_id, product_id)` of every cart row.
    pub fn carts(&self) -> Vec<(Option<i64>, Option<i64>)> {
        let mut v = Vec::new();
        for r in self.table_rows(Table::Carts) {
            if let Row::Cart(c) = r {
                v.push((c.customer_id, c.product_id));
            }
        }
        v
    }

    /// `(customer_id, product_id)` of every wishlist row.
    pub fn wishlists(&self) -> Vec<(Option<i64>, Option<i64>)> {
        let mut v = Vec::new();
        for r in self.table_rows(Table::Wishlists) {
            if let Row::Wishlist(w) = r {
                v.push((w.customer_id, w.product_id));
            }
        }
        v
    }

    pub fn product_views(&self) -> Vec<ProductView> {
        let mut v = Vec::new();
        for r in self.table_rows(Table::ProductViews) {
            if let Row::ProductView(pv) = r {
                v.push(pv.clone());
            }
        }
        v
    }

    /// The current image of one row (for tests of the upsert itself).
    pub fn get(&self, table: Table, key: i64) -> Option<&Row> {
        self.rows.get(&(table, key))
    }

    pub fn len(&self, table: Table) -> usize {
        self.table_rows(table).count()
    }
}

/// `new` with every column flagged in `un` taken from `old` instead. Columns are numbered in
/// SPEC §1 order (bit 0 is the primary key, which is never unavailable in practice; it is
/// merged like any other column, but both images have the same key anyway).
pub fn merge(old: &Row, new: &Row, un: Unavailable) -> Row {
    fn pick<T: Clone>(un: Unavailable, col: usize, old: &T, new: &T) -> T {
        if un.contains(col) {
            old.clone()
        } else {
            new.clone()
        }
    }
    let u = un;
    match (old, new) {
        (Row::Category(o), Row::Category(n)) => Row::Category(Category {
            category_id: n.category_id,
            name: pick(u, 1, &o.name, &n.name),
            description: pick(u, 2, &o.description, &n.description),
            created_at: pick(u, 3, &o.created_at, &n.created_at),
        }),
        (Row::Customer(o), Row::Customer(n)) => Row::Customer(Box::new(Customer {
            customer_id: n.customer_id,
            first_name: pick(u, 1, &o.first_name, &n.first_name),
            last_name: pick(u, 2, &o.last_name, &n.last_name),
            email: pick(u, 3, &o.email, &n.email),
            password_hash: pick(u, 4, &o.password_hash, &n.password_hash),
            address: pick(u, 5, &o.address, &n.address),
            phone_number: pick(u, 6, &o.phone_number, &n.phone_number),
            created_at: pick(u, 7, &o.created_at, &n.created_at),
            updated_at: pick(u, 8, &o.updated_at, &n.updated_at),
        })),
        (Row::Product(o), Row::Product(n)) => Row::Product(Box::new(Product {
            product_id: n.product_id,
            sku: pick(u, 1, &o.sku, &n.sku),
            name: pick(u, 2, &o.name, &n.name),
            description: pick(u, 3, &o.description, &n.description),
            price: pick(u, 4, &o.price, &n.price),
            stock: pick(u, 5, &o.stock, &n.stock),
            category_id: pick(u, 6, &o.category_id, &n.category_id),
            is_active: pick(u, 7, &o.is_active, &n.is_active),
            created_at: pick(u, 8, &o.created_at, &n.created_at),
            updated_at: pick(u, 9, &o.updated_at, &n.updated_at),
        })),
        (Row::Payment(o), Row::Payment(n)) => Row::Payment(Box::new(Payment {
            payment_id: n.payment_id,
            payment_date: pick(u, 1, &o.payment_date, &n.payment_date),
            payment_method: pick(u, 2, &o.payment_method, &n.payment_method),
            amount: pick(u, 3, &o.amount, &n.amount),
            status: pick(u, 4, &o.status, &n.status),
            transaction_id: pick(u, 5, &o.transaction_id, &n.transaction_id),
            customer_id: pick(u, 6, &o.customer_id, &n.customer_id),
        })),
        (Row::Shipment(o), Row::Shipment(n)) => Row::Shipment(Box::new(Shipment {
            shipment_id: n.shipment_id,
            shipment_date: pick(u, 1, &o.shipment_date, &n.shipment_date),
            address: pick(u, 2, &o.address, &n.address),
            city: pick(u, 3, &o.city, &n.city),
            state: pick(u, 4, &o.state, &n.state),
            country: pick(u, 5, &o.country, &n.country),
            zip_code: pick(u, 6, &o.zip_code, &n.zip_code),
            status: pick(u, 7, &o.status, &n.status),
            tracking_number: pick(u, 8, &o.tracking_number, &n.tracking_number),
            customer_id: pick(u, 9, &o.customer_id, &n.customer_id),
            created_at: pick(u, 10, &o.created_at, &n.created_at),
            updated_at: pick(u, 11, &o.updated_at, &n.updated_at),
        })),
        (Row::Order(o), Row::Order(n)) => Row::Order(Order {
            order_id: n.order_id,
            order_date: pick(u, 1, &o.order_date, &n.order_date),
            total_price: pick(u, 2, &o.total_price, &n.total_price),
            status: pick(u, 3, &o.status, &n.status),
            customer_id: pick(u, 4, &o.customer_id, &n.customer_id),
            payment_id: pick(u, 5, &o.payment_id, &n.payment_id),
            shipment_id: pick(u, 6, &o.shipment_id, &n.shipment_id),
        }),
        (Row::OrderItem(o), Row::OrderItem(n)) => Row::OrderItem(OrderItem {
            order_item_id: n.order_item_id,
            order_id: pick(u, 1, &o.order_id, &n.order_id),
            product_id: pick(u, 2, &o.product_id, &n.product_id),
            quantity: pick(u, 3, &o.quantity, &n.quantity),
            price: pick(u, 4, &o.price, &n.price),
        }),
        (Row::Cart(o), Row::Cart(n)) => Row::Cart(sources::Cart {
            cart_id: n.cart_id,
            customer_id: pick(u, 1, &o.customer_id, &n.customer_id),
            product_id: pick(u, 2, &o.product_id, &n.product_id),
            quantity: pick(u, 3, &o.quantity, &n.quantity),
            added_at: pick(u, 4, &o.added_at, &n.added_at),
        }),
        (Row::Wishlist(o), Row::Wishlist(n)) => Row::Wishlist(sources::Wishlist {
            wishlist_id: n.wishlist_id,
            customer_id: pick(u, 1, &o.customer_id, &n.customer_id),
            product_id: pick(u, 2, &o.product_id, &n.product_id),
            added_at: pick(u, 3, &o.added_at, &n.added_at),
        }),
        (Row::ProductView(o), Row::ProductView(n)) => Row::ProductView(ProductView {
            view_id: n.view_id,
            customer_id: pick(u, 1, &o.customer_id, &n.customer_id),
            product_id: pick(u, 2, &o.product_id, &n.product_id),
            category_id: pick(u, 3, &o.category_id, &n.category_id),
            viewed_at: pick(u, 4, &o.viewed_at, &n.viewed_at),
        }),
        // Different tables cannot share a (table, key) slot.
        _ => new.clone(),
    }
}

// ------------------------------------------------------------------------------------------
// Small exact arithmetic, written here again on purpose (not shared with view_store)
// ------------------------------------------------------------------------------------------

/// `n / d` rounded to the nearest integer, halves away from zero. `d != 0`.
pub fn div_half_away(n: i128, d: i128) -> i128 {
    assert!(d != 0);
    let negative = (n < 0) != (d < 0);
    let (a, b) = (n.abs(), d.abs());
    // floor((a + b/2) / b) for non-negative a, b, done in doubled units to keep b odd-safe.
    let q = (2 * a + b) / (2 * b);
    if negative {
        -q
    } else {
        q
    }
}

fn window_start(t: Micros, size: i64) -> i64 {
    // Tumbling windows aligned to the epoch; floor division also for times before 1970.
    t.0.div_euclid(size) * size
}

/// Window sizes of the config, ascending, without `All` (which is implied where a view has it).
fn sizes(cfg: &ViewsConfig) -> Vec<i64> {
    let mut v: Vec<i64> = cfg
        .windows
        .iter()
        .filter_map(|w| match w {
            Window::Size(s) => Some(*s),
            Window::All => None,
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

// ------------------------------------------------------------------------------------------
// Views
// ------------------------------------------------------------------------------------------

/// Everything the views read, derived from the upserted tables once.
pub struct Facts {
    /// Live orders (status is not cancelled), by id.
    pub live: BTreeMap<i64, Order>,
    /// Items that count: order live, product not null. `(item, order)`.
    pub items: Vec<(OrderItem, Order)>,
    pub products: BTreeMap<i64, Product>,
    pub carts: Vec<(Option<i64>, Option<i64>)>,
    pub wishlists: Vec<(Option<i64>, Option<i64>)>,
    pub views: Vec<ProductView>,
    /// Retention: windowed rows are shown iff their window ends after this instant.
    pub cutoff: Option<i64>,
}

impl Facts {
    pub fn new(db: &Db, retention: Option<i64>) -> Facts {
        let mut live = BTreeMap::new();
        for (id, o) in db.orders() {
            if o.status != OrderStatus::Cancelled {
                live.insert(id, o);
            }
        }
        let mut items = Vec::new();
        for it in db.items() {
            let Some(oid) = it.order_id else { continue };
            if it.product_id.is_none() {
                continue;
            }
            if let Some(o) = live.get(&oid) {
                items.push((it.clone(), o.clone()));
            }
        }
        let cutoff = match (retention, db.highest_order_date) {
            (Some(r), Some(h)) => Some(h.0 - r),
            _ => None,
        };
        Facts {
            live,
            items,
            products: db.products(),
            carts: db.carts(),
            wishlists: db.wishlists(),
            views: db.product_views(),
            cutoff,
        }
    }

    /// The current category of a product, `None` when unknown or uncategorised.
    pub fn category(&self, product_id: i64) -> Option<i64> {
        self.products.get(&product_id).and_then(|p| p.category_id)
    }

    /// Whether a window `[start, start + size)` survives retention.
    pub fn visible(&self, start: i64, size: i64) -> bool {
        match self.cutoff {
            None => true,
            Some(c) => start + size > c,
        }
    }

    /// Whether a product is known to be inactive (`is_active = false`).
    pub fn inactive(&self, product_id: i64) -> bool {
        matches!(
            self.products.get(&product_id).and_then(|p| p.is_active),
            Some(false)
        )
    }
}

/// Every view, computed from scratch. Each vector is sorted in dump order (`ViewRow`'s `Ord`).
pub fn compute(
    db: &Db,
    cfg: &ViewsConfig,
    retention: Option<i64>,
) -> BTreeMap<ViewName, Vec<ViewRow>> {
    let f = Facts::new(db, retention);
    let mut out = BTreeMap::new();
    let wrap = |rows: Vec<ViewRow>| {
        let mut rows = rows;
        rows.sort();
        rows
    };
    out.insert(
        ViewName::Revenue,
        wrap(revenue(&f, cfg).into_iter().map(ViewRow::Revenue).collect()),
    );
    out.insert(
        ViewName::TopProducts,
        wrap(
            top_products(&f, cfg)
                .into_iter()
                .map(ViewRow::TopProduct)
                .collect(),
        ),
    );
    out.insert(
        ViewName::TrendingProducts,
        wrap(
            trending(&f, cfg)
                .into_iter()
                .map(ViewRow::Trending)
                .collect(),
        ),
    );
    out.insert(
        ViewName::CategorySales,
        wrap(
            category_sales(&f, cfg)
                .into_iter()
                .map(ViewRow::CategorySales)
                .collect(),
        ),
    );
    out.insert(
        ViewName::FraudAlerts,
        wrap(
            fraud_alerts(&f, cfg)
                .into_iter()
                .map(ViewRow::FraudAlert)
                .collect(),
        ),
    );
    out.insert(
        ViewName::AlsoBought,
        wrap(
            also_bought(&f, cfg)
                .into_iter()
                .map(ViewRow::AlsoBought)
                .collect(),
        ),
    );
    out.insert(
        ViewName::Recommendations,
        wrap(
            recommendations(&f, cfg)
                .into_iter()
                .map(ViewRow::Recommendation)
                .collect(),
        ),
    );
    out
}

/// Applies `txs` to a fresh upsert and computes every view.
pub fn views_after(
    txs: &[Transaction],
    cfg: &ViewsConfig,
    retention: Option<i64>,
) -> BTreeMap<ViewName, Vec<ViewRow>> {
    let mut db = Db::new();
    db.apply_all(txs);
    compute(&db, cfg, retention)
}

/// `revenue`: per window size and start with at least one live order.
pub fn revenue(f: &Facts, cfg: &ViewsConfig) -> Vec<RevenueRow> {
    let mut rows = Vec::new();
    for size in sizes(cfg) {
        // start -> (order_count, revenue) over ALL live orders (prev needs the full data).
        let mut per_window: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
        for o in f.live.values() {
            let e = per_window
                .entry(window_start(o.order_date, size))
                .or_insert((0, 0));
            e.0 += 1;
            e.1 += o.total_price.0;
        }
        for (&start, &(count, rev)) in &per_window {
            if !f.visible(start, size) {
                continue;
            }
            let prev = per_window.get(&(start - size)).map(|p| p.1).unwrap_or(0);
            let avg = div_half_away(rev as i128, count as i128) as i64;
            // READING: trend_pct = (revenue − prev) / prev × 100, as hundredths of a percent,
            // rounded half away from zero; null when prev is 0 (also for a negative prev it is
            // computed, dividing by the signed prev).
            let trend = if prev == 0 {
                None
            } else {
                Some(Pct2(
                    div_half_away((rev as i128 - prev as i128) * 10_000, prev as i128) as i64,
                ))
            };
            rows.push(RevenueRow {
                window: Window::Size(size),
                window_start: Some(Micros(start)),
                order_count: count,
                revenue: Money(rev),
                avg_order_value: Money(avg),
                prev_revenue: Money(prev),
                trend_pct: trend,
            });
        }
    }
    rows
}

/// The windows of the top/category views: each size with its start, and `all`.
fn window_keys(f: &Facts, cfg: &ViewsConfig, o: &Order) -> Vec<(Window, Option<Micros>)> {
    let _ = f;
    let mut v = Vec::new();
    for size in sizes(cfg) {
        v.push((
            Window::Size(size),
            Some(Micros(window_start(o.order_date, size))),
        ));
    }
    v.push((Window::All, None));
    v
}

fn shown(f: &Facts, w: Window, start: Option<Micros>) -> bool {
    match (w, start) {
        (Window::Size(size), Some(s)) => f.visible(s.0, size),
        _ => true, // `all` is never cut by retention
    }
}

/// `top_products`: per (window or all, start, scope, metric), ranks 1..top_n.
pub fn top_products(f: &Facts, cfg: &ViewsConfig) -> Vec<TopProductRow> {
    // (window, start, scope) -> product -> (quantity, revenue)
    type Key = (Window, Option<Micros>, Option<i64>);
    let mut sums: BTreeMap<Key, BTreeMap<i64, (i64, i64)>> = BTreeMap::new();
    for (it, o) in &f.items {
        let p = it.product_id.expect("filtered");
        let qty = it.quantity as i64;
        let rev = qty * it.price.0;
        for (w, start) in window_keys(f, cfg, o) {
            let mut scopes = vec![None];
            if let Some(c) = f.category(p) {
                scopes.push(Some(c));
            }
            for scope in scopes {
                let e = sums
                    .entry((w, start, scope))
                    .or_default()
                    .entry(p)
                    .or_insert((0, 0));
                e.0 += qty;
                e.1 += rev;
            }
        }
    }
    let mut rows = Vec::new();
    for ((w, start, scope), products) in &sums {
        if !shown(f, *w, *start) {
            continue;
        }
        for metric in [Metric::Quantity, Metric::Revenue] {
            let mut ranked: Vec<(i64, i64, i64)> =
                products.iter().map(|(p, (q, r))| (*p, *q, *r)).collect();
            // Highest metric first, ties by the smaller product id.
            ranked.sort_by(|a, b| {
                let (ma, mb) = match metric {
                    Metric::Quantity => (a.1, b.1),
                    Metric::Revenue => (a.2, b.2),
                };
                mb.cmp(&ma).then(a.0.cmp(&b.0))
            });
            for (i, (p, q, r)) in ranked.into_iter().take(cfg.top_n).enumerate() {
                rows.push(TopProductRow {
                    window: *w,
                    window_start: *start,
                    category_id: *scope,
                    metric,
                    rank: i as u32 + 1,
                    product_id: p,
                    quantity: q,
                    revenue: Money(r),
                });
            }
        }
    }
    rows
}

/// `trending_products`: per (size, start), top_n products by positive quantity growth over the
/// previous window of the same size (global scope: unknown products count).
pub fn trending(f: &Facts, cfg: &ViewsConfig) -> Vec<TrendingRow> {
    let mut rows = Vec::new();
    for size in sizes(cfg) {
        // start -> product -> quantity, over all items (prev needs the full data).
        let mut qty: BTreeMap<i64, BTreeMap<i64, i64>> = BTreeMap::new();
        for (it, o) in &f.items {
            *qty.entry(window_start(o.order_date, size))
                .or_default()
                .entry(it.product_id.expect("filtered"))
                .or_insert(0) += it.quantity as i64;
        }
        for (&start, products) in &qty {
            if !f.visible(start, size) {
                continue;
            }
            let prev = qty.get(&(start - size));
            let mut growing = Vec::new();
            for (&p, &q) in products {
                let pq = prev.and_then(|m| m.get(&p)).copied().unwrap_or(0);
                if q - pq > 0 {
                    growing.push((p, q, pq, q - pq));
                }
            }
            growing.sort_by(|a, b| b.3.cmp(&a.3).then(a.0.cmp(&b.0)));
            for (i, (p, q, pq, g)) in growing.into_iter().take(cfg.top_n).enumerate() {
                rows.push(TrendingRow {
                    window: Window::Size(size),
                    window_start: Some(Micros(start)),
                    rank: i as u32 + 1,
                    product_id: p,
                    quantity: q,
                    prev_quantity: pq,
                    growth: g,
                });
            }
        }
    }
    rows
}

/// `category_sales`: per (window or all, start, category) with at least one counted item.
pub fn category_sales(f: &Facts, cfg: &ViewsConfig) -> Vec<CategorySalesRow> {
    type Key = (Window, Option<Micros>, i64);
    // -> (quantity, revenue, distinct orders)
    let mut sums: BTreeMap<Key, (i64, i64, BTreeSet<i64>)> = BTreeMap::new();
    for (it, o) in &f.items {
        let Some(cat) = f.category(it.product_id.expect("filtered")) else {
            continue;
        };
        let qty = it.quantity as i64;
        for (w, start) in window_keys(f, cfg, o) {
            let e = sums
                .entry((w, start, cat))
                .or_insert((0, 0, BTreeSet::new()));
            e.0 += qty;
            e.1 += qty * it.price.0;
            e.2.insert(o.order_id);
        }
    }
    let mut rows = Vec::new();
    for ((w, start, cat), (q, r, orders)) in sums {
        if !shown(f, w, start) {
            continue;
        }
        rows.push(CategorySalesRow {
            window: w,
            window_start: start,
            category_id: cat,
            quantity: q,
            revenue: Money(r),
            order_count: orders.len() as i64,
        });
    }
    rows
}

/// The most orders in any closed interval `[s, s + len]` and the earliest such `s`.
///
/// Literal: every interval holding a maximal set of orders can slide left until its right end
/// meets the latest of them, `t_j`; the interval `[t_j − len, t_j]` holds exactly the orders
/// with times in it. So: for every order time `t_j`, count the times in `[t_j − len, t_j]`;
/// the maximum count is the answer, and the earliest start is the smallest `t_j − len` with
/// that count (SPEC §7: "the last order of the first maximal group − 60 s").
pub fn max_in_closed_interval(times: &[Micros], len: i64) -> Option<(i64, Micros)> {
    let mut best: Option<(i64, Micros)> = None;
    for tj in times {
        let lo = tj.0 - len;
        let count = times.iter().filter(|t| t.0 >= lo && t.0 <= tj.0).count() as i64;
        let start = Micros(lo);
        best = match best {
            None => Some((count, start)),
            Some((bc, bs)) => {
                if count > bc || (count == bc && start < bs) {
                    Some((count, start))
                } else {
                    Some((bc, bs))
                }
            }
        };
    }
    best
}

/// `fraud_alerts`, every rule. Not cut by retention.
pub fn fraud_alerts(f: &Facts, cfg: &ViewsConfig) -> Vec<FraudAlertRow> {
    let fc = &cfg.fraud;
    let mut rows = Vec::new();

    // high_value: one per live order above the threshold; customer may be null (not a
    // per-customer rule).
    for o in f.live.values() {
        if o.total_price > fc.high_value {
            rows.push(FraudAlertRow {
                rule: Rule::HighValue,
                customer_id: o.customer_id,
                order_id: Some(o.order_id),
                start: o.order_date,
                order_count: 1,
                amount: Some(o.total_price),
            });
        }
    }

    // Live orders per customer (orders without customer are ignored by these rules).
    let mut by_customer: BTreeMap<i64, Vec<&Order>> = BTreeMap::new();
    for o in f.live.values() {
        if let Some(c) = o.customer_id {
            by_customer.entry(c).or_default().push(o);
        }
    }

    // frequent_orders: > N live orders of one customer in one tumbling window.
    for (&c, orders) in &by_customer {
        let mut per_window: BTreeMap<i64, i64> = BTreeMap::new();
        for o in orders {
            *per_window
                .entry(window_start(o.order_date, fc.frequent_window))
                .or_insert(0) += 1;
        }
        for (start, n) in per_window {
            if n > fc.frequent_orders {
                rows.push(FraudAlertRow {
                    rule: Rule::FrequentOrders,
                    customer_id: Some(c),
                    order_id: None,
                    start: Micros(start),
                    order_count: n,
                    amount: None,
                });
            }
        }
    }

    // order_burst: one row per customer whose maximum exceeds the threshold.
    for (&c, orders) in &by_customer {
        let times: Vec<Micros> = orders.iter().map(|o| o.order_date).collect();
        if let Some((n, start)) = max_in_closed_interval(&times, fc.burst_interval) {
            if n > fc.burst_orders {
                rows.push(FraudAlertRow {
                    rule: Rule::OrderBurst,
                    customer_id: Some(c),
                    order_id: None,
                    start,
                    order_count: n,
                    amount: None,
                });
            }
        }
    }

    // repeated_amount: per (customer, total), like order_burst over its interval, alert at
    // >= N (note: at least, not more than).
    for (&c, orders) in &by_customer {
        let mut by_total: BTreeMap<Money, Vec<Micros>> = BTreeMap::new();
        for o in orders {
            by_total
                .entry(o.total_price)
                .or_default()
                .push(o.order_date);
        }
        for (total, times) in by_total {
            if let Some((n, start)) = max_in_closed_interval(&times, fc.repeated_interval) {
                if n >= fc.repeated_orders {
                    rows.push(FraudAlertRow {
                        rule: Rule::RepeatedAmount,
                        customer_id: Some(c),
                        order_id: None,
                        start,
                        order_count: n,
                        amount: Some(total),
                    });
                }
            }
        }
    }
    rows
}

/// Distinct products of each live order (from counted items), for co-purchases.
fn baskets(f: &Facts) -> BTreeMap<i64, BTreeSet<i64>> {
    let mut b: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
    for (it, o) in &f.items {
        b.entry(o.order_id)
            .or_default()
            .insert(it.product_id.expect("filtered"));
    }
    b
}

/// co-occurrence: (p, q) with p != q -> number of distinct live orders containing both.
///
/// READING: `ViewsConfig::basket_cap` — an order with more distinct products than the cap
/// contributes no pairs (to also_bought and to recommendation scores alike).
pub fn co_occurrence(f: &Facts, cfg: &ViewsConfig) -> BTreeMap<(i64, i64), i64> {
    let mut co = BTreeMap::new();
    for products in baskets(f).values() {
        if products.len() > cfg.basket_cap {
            continue;
        }
        for &p in products {
            for &q in products {
                if p != q {
                    *co.entry((p, q)).or_insert(0) += 1;
                }
            }
        }
    }
    co
}

/// `also_bought`: per product, the top K other products by distinct live orders containing
/// both. READING: unknown and inactive products take part (the spec excludes nothing here).
pub fn also_bought(f: &Facts, cfg: &ViewsConfig) -> Vec<AlsoBoughtRow> {
    let co = co_occurrence(f, cfg);
    let mut per_product: BTreeMap<i64, Vec<(i64, i64)>> = BTreeMap::new();
    for (&(p, q), &n) in &co {
        per_product.entry(p).or_default().push((q, n));
    }
    let mut rows = Vec::new();
    for (p, mut others) in per_product {
        others.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        for (i, (q, n)) in others.into_iter().take(cfg.also_bought_k).enumerate() {
            rows.push(AlsoBoughtRow {
                product_id: p,
                rank: i as u32 + 1,
                other_product_id: q,
                order_count: n,
            });
        }
    }
    rows
}

/// Best sellers used to fill short recommendation lists: the `top_products` rows of window
/// `all`, metric `quantity`, for one scope (`None` = global), in rank order.
///
/// READING: "best sellers" = what `top_products` publishes for `all` by quantity, i.e. at most
/// `top_n` products per scope; this bounded pool is why "the list may stay shorter than K".
pub fn best_sellers(f: &Facts, cfg: &ViewsConfig, scope: Option<i64>) -> Vec<i64> {
    top_products(f, cfg)
        .into_iter()
        .filter(|r| r.window == Window::All && r.category_id == scope)
        .filter(|r| r.metric == Metric::Quantity)
        .map(|r| (r.rank, r.product_id))
        .collect::<BTreeMap<u32, i64>>()
        .into_values()
        .collect()
}

/// `recommendations`: per customer with any interaction, the top K products by
/// score(q) = Σ_p weight(c, p) × co(p, q), filled with best sellers.
///
/// READINGs:
/// * weight(c, p) = 2 × (live orders of c containing p, each once) + 3 × (cart rows of c
///   with p) + 2 × (wishlist rows) + 1 × (product_views rows with product p). Rows with a null
///   customer or product are no interaction.
/// * "Any interaction" = a weight > 0 for some product, or a category browse (a product_views
///   row with null product and a category). A live order without counted items is none.
/// * Candidates have score > 0; excluded are products in a live order of the customer
///   ("bought"; cancelled orders do not count), in a current cart row of the customer, or
///   known inactive. Ranked by score, then smaller product id.
/// * Favourite categories: Σ weight(c, p) over p whose current category is it, + 1 per category
///   browse of it; only categories with a positive sum, ranked by sum desc then category_id.
/// * Fill-ins (score 0): for each favourite category in order its [`best_sellers`], then the
///   global best sellers, skipping excluded and already listed products, until K.
pub fn recommendations(f: &Facts, cfg: &ViewsConfig) -> Vec<RecommendationRow> {
    let k = cfg.also_bought_k;
    let co = co_occurrence(f, cfg);

    // customer -> product -> weight
    let mut weight: BTreeMap<i64, BTreeMap<i64, i64>> = BTreeMap::new();
    // customer -> category -> browses
    let mut browses: BTreeMap<i64, BTreeMap<i64, i64>> = BTreeMap::new();
    let mut bought: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
    let mut in_cart: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();

    // Purchases: each live order containing p counts once.
    let mut order_products: BTreeMap<i64, (Option<i64>, BTreeSet<i64>)> = BTreeMap::new();
    for (it, o) in &f.items {
        order_products
            .entry(o.order_id)
            .or_insert((o.customer_id, BTreeSet::new()))
            .1
            .insert(it.product_id.expect("filtered"));
    }
    for (customer, products) in order_products.values() {
        let Some(c) = customer else { continue };
        for &p in products {
            *weight.entry(*c).or_default().entry(p).or_insert(0) += 2;
            bought.entry(*c).or_default().insert(p);
        }
    }
    for &(c, p) in &f.carts {
        if let (Some(c), Some(p)) = (c, p) {
            *weight.entry(c).or_default().entry(p).or_insert(0) += 3;
            in_cart.entry(c).or_default().insert(p);
        }
    }
    for &(c, p) in &f.wishlists {
        if let (Some(c), Some(p)) = (c, p) {
            *weight.entry(c).or_default().entry(p).or_insert(0) += 2;
        }
    }
    for v in &f.views {
        let Some(c) = v.customer_id else { continue };
        match (v.product_id, v.category_id) {
            (Some(p), _) => *weight.entry(c).or_default().entry(p).or_insert(0) += 1,
            (None, Some(cat)) => *browses.entry(c).or_default().entry(cat).or_insert(0) += 1,
            (None, None) => {}
        }
    }

    let mut customers: BTreeSet<i64> = weight.keys().copied().collect();
    customers.extend(browses.keys().copied());

    let empty_w = BTreeMap::new();
    let empty_s = BTreeSet::new();
    let mut rows = Vec::new();
    for c in customers {
        let w = weight.get(&c).unwrap_or(&empty_w);
        let bought_c = bought.get(&c).unwrap_or(&empty_s);
        let cart_c = in_cart.get(&c).unwrap_or(&empty_s);
        let excluded = |q: i64| bought_c.contains(&q) || cart_c.contains(&q) || f.inactive(q);

        let mut scores: BTreeMap<i64, i64> = BTreeMap::new();
        for (&p, &wp) in w {
            for (&(a, q), &n) in &co {
                if a == p {
                    *scores.entry(q).or_insert(0) += wp * n;
                }
            }
        }
        let mut ranked: Vec<(i64, i64)> = scores
            .into_iter()
            .filter(|&(q, s)| s > 0 && !excluded(q))
            .collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(k);

        if ranked.len() < k {
            let mut fav: BTreeMap<i64, i64> = BTreeMap::new();
            for (&p, &wp) in w {
                if let Some(cat) = f.category(p) {
                    *fav.entry(cat).or_insert(0) += wp;
                }
            }
            if let Some(b) = browses.get(&c) {
                for (&cat, &n) in b {
                    *fav.entry(cat).or_insert(0) += n;
                }
            }
            let mut fav: Vec<(i64, i64)> = fav.into_iter().filter(|&(_, s)| s > 0).collect();
            fav.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let mut pool: Vec<i64> = Vec::new();
            for (cat, _) in fav {
                pool.extend(best_sellers(f, cfg, Some(cat)));
            }
            pool.extend(best_sellers(f, cfg, None));
            for q in pool {
                if ranked.len() >= k {
                    break;
                }
                if excluded(q) || ranked.iter().any(|&(r, _)| r == q) {
                    continue;
                }
                ranked.push((q, 0));
            }
        }
        for (i, (q, s)) in ranked.into_iter().enumerate() {
            rows.push(RecommendationRow {
                customer_id: c,
                rank: i as u32 + 1,
                product_id: q,
                score: s,
            });
        }
    }
    rows
}
