//! A seeded generator of realistic, messy change streams over all ten tables.
//!
//! It simulates the shop's database (the "truth") and emits the changes a CDC source would
//! deliver: snapshot reads of master data, orders placed with items, payments and shipments,
//! orders moving status, cancellations, deletes, price corrections, order dates moved to other
//! windows (late events), items added and removed, products changing category or activity,
//! carts, wishlists, views and category browses, PK changes (delete + create), rare truncates,
//! unavailable (unchanged-TOAST) columns, customers placing bursts of orders and orders with
//! equal totals.
//!
//! On top of the truth, the delivery is made at-least-once and out of order: whole
//! transactions redelivered, single stale events redelivered after newer ones, adjacent
//! transactions swapped (commit order ≠ LSN order), events repeated inside a transaction,
//! transactions split in two, items delivered before their order.
//!
//! The generator does not decide what the views should be: the oracle applies the delivered
//! stream with the spec's upsert rules. Owns only stream generation.

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sources::{
    Cart, Category, Change, ChangeKind, Customer, Lsn, Micros, Money, Op, Order, OrderItem,
    OrderStatus, Payment, Position, Product, ProductView, Row, Shipment, Table, Transaction,
    Unavailable, Wishlist,
};
use std::collections::BTreeMap;

pub const SECOND: i64 = 1_000_000;
pub const MINUTE: i64 = 60 * SECOND;
/// 2024-01-01T00:00:00Z.
pub const T0: i64 = 1_704_067_200 * SECOND;

#[derive(Clone, Debug)]
pub struct GenConfig {
    /// Database transactions to simulate (deliveries add redeliveries and splits on top).
    pub transactions: usize,
    /// Whether changes carry LSNs (a whole stream either has them or not).
    pub with_lsn: bool,
    pub customers: i64,
    pub products: i64,
    pub categories: i64,
    /// Probability scale of delivery faults (duplicates, stale events, swaps); 0 = clean.
    pub faults: f64,
    /// Whether rare truncates happen (off only to tell truncate bugs from others).
    pub truncates: bool,
    /// Whether updates sometimes send unchanged columns as unavailable (same purpose).
    pub unavailable: bool,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            transactions: 200,
            with_lsn: true,
            customers: 8,
            products: 14,
            categories: 4,
            faults: 1.0,
            truncates: true,
            unavailable: true,
        }
    }
}

/// The delivered stream for `seed`.
///
/// Without LSNs, delivery is clean (faults off): redelivered events cannot be recognised as
/// stale then, and a redelivered update with unavailable columns after a delete would leave
/// the meaning of "keep the stored value" (there is none) to interpretation.
pub fn stream(seed: u64, cfg: &GenConfig) -> Vec<Transaction> {
    let mut cfg = cfg.clone();
    if !cfg.with_lsn {
        cfg.faults = 0.0;
    }
    let mut sim = Sim::new(seed, cfg);
    sim.run();
    sim.finish()
}

struct Sim {
    rng: ChaCha8Rng,
    cfg: GenConfig,
    lsn: u64,
    tx_id: u64,
    clock: i64,
    orders: BTreeMap<i64, Order>,
    items: BTreeMap<i64, OrderItem>,
    products: BTreeMap<i64, Product>,
    carts: BTreeMap<i64, Cart>,
    wishlists: BTreeMap<i64, Wishlist>,
    views: BTreeMap<i64, ProductView>,
    next_id: BTreeMap<Table, i64>,
    /// Changes of the database transaction being built.
    cur: Vec<Change>,
    /// Delivered transactions (a held one is not yet among them).
    out: Vec<Transaction>,
    /// A transaction held back to be delivered after the next one.
    held: Option<Transaction>,
}

fn pick(rng: &mut ChaCha8Rng, keys: Vec<i64>) -> Option<i64> {
    keys.choose(rng).copied()
}

impl Sim {
    fn new(seed: u64, cfg: GenConfig) -> Sim {
        let mut next_id = BTreeMap::new();
        for t in Table::ALL {
            next_id.insert(t, 1);
        }
        Sim {
            rng: ChaCha8Rng::seed_from_u64(seed),
            cfg,
            lsn: 1_000,
            tx_id: 500,
            clock: T0,
            orders: BTreeMap::new(),
            items: BTreeMap::new(),
            products: BTreeMap::new(),
            carts: BTreeMap::new(),
            wishlists: BTreeMap::new(),
            views: BTreeMap::new(),
            next_id,
            cur: Vec::new(),
            out: Vec::new(),
            held: None,
        }
    }

    fn id(&mut self, t: Table) -> i64 {
        let e = self.next_id.entry(t).or_insert(1);
        let v = *e;
        *e += 1;
        v
    }

    fn p(&mut self, prob: f64) -> bool {
        self.rng.random_bool(prob.clamp(0.0, 1.0))
    }

    fn fault(&mut self, prob: f64) -> bool {
        let p = prob * self.cfg.faults;
        self.p(p)
    }

    fn next_lsn(&mut self) -> Option<Lsn> {
        self.lsn += self.rng.random_range(1..=3);
        self.cfg.with_lsn.then_some(Lsn(self.lsn))
    }

    fn emit(&mut self, table: Table, op: Op, kind: ChangeKind) {
        let lsn = self.next_lsn();
        let c = Change {
            table,
            op,
            lsn,
            kind,
        };
        self.cur.push(c);
    }

    fn insert(&mut self, row: Row, op: Op) {
        self.remember(&row);
        self.emit(
            row.table(),
            op,
            ChangeKind::Upsert {
                row,
                unavailable: Unavailable(0),
            },
        );
    }

    /// An update from `old` to `new`; sometimes some unchanged columns are sent as
    /// unavailable, with garbage in their place.
    fn update(&mut self, old: Row, new: Row) {
        self.remember(&new);
        let mut sent = new.clone();
        let mut un = Unavailable(0);
        if self.cfg.unavailable && self.p(0.2) {
            let unchanged: Vec<usize> = (1..12)
                .filter(|c| column_changed(&old, &new, *c) == Some(false))
                .collect();
            for _ in 0..self.rng.random_range(1..=2) {
                if let Some(&c) = unchanged.choose(&mut self.rng) {
                    un.insert(c);
                    garble(&mut sent, c);
                }
            }
        }
        self.emit(
            new.table(),
            Op::Update,
            ChangeKind::Upsert {
                row: sent,
                unavailable: un,
            },
        );
    }

    fn delete(&mut self, table: Table, key: i64) {
        self.forget(table, key);
        self.emit(table, Op::Delete, ChangeKind::Delete { key });
    }

    fn truncate(&mut self, table: Table) {
        let keys: Vec<i64> = match table {
            Table::Orders => self.orders.keys().copied().collect(),
            Table::OrderItems => self.items.keys().copied().collect(),
            Table::Products => self.products.keys().copied().collect(),
            Table::Carts => self.carts.keys().copied().collect(),
            Table::Wishlists => self.wishlists.keys().copied().collect(),
            Table::ProductViews => self.views.keys().copied().collect(),
            _ => Vec::new(),
        };
        for k in keys {
            self.forget(table, k);
        }
        self.emit(table, Op::Truncate, ChangeKind::Truncate);
    }

    fn remember(&mut self, row: &Row) {
        match row {
            Row::Order(o) => {
                self.orders.insert(o.order_id, o.clone());
            }
            Row::OrderItem(i) => {
                self.items.insert(i.order_item_id, i.clone());
            }
            Row::Product(p) => {
                self.products.insert(p.product_id, Product::clone(p));
            }
            Row::Cart(c) => {
                self.carts.insert(c.cart_id, c.clone());
            }
            Row::Wishlist(w) => {
                self.wishlists.insert(w.wishlist_id, w.clone());
            }
            Row::ProductView(v) => {
                self.views.insert(v.view_id, v.clone());
            }
            _ => {}
        }
    }

    fn forget(&mut self, table: Table, key: i64) {
        match table {
            Table::Orders => {
                self.orders.remove(&key);
            }
            Table::OrderItems => {
                self.items.remove(&key);
            }
            Table::Products => {
                self.products.remove(&key);
            }
            Table::Carts => {
                self.carts.remove(&key);
            }
            Table::Wishlists => {
                self.wishlists.remove(&key);
            }
            Table::ProductViews => {
                self.views.remove(&key);
            }
            _ => {}
        }
    }

    /// Ends the database transaction and delivers it (with faults).
    fn commit(&mut self) {
        if self.cur.is_empty() {
            return;
        }
        let mut changes = std::mem::take(&mut self.cur);
        self.tx_id += 1;
        // A change repeated inside its transaction.
        if self.fault(0.03) {
            let i = self.rng.random_range(0..changes.len());
            let c = changes[i].clone();
            changes.insert(i + 1, c);
        }
        // A stale change (an older one redelivered) slipped into this delivery.
        if self.fault(0.06) {
            if let Some(c) = self.stale_change() {
                let at = self.rng.random_range(0..=changes.len());
                changes.insert(at, c);
            }
        }
        let tx_id = self.tx_id;
        let parts: Vec<Vec<Change>> = if changes.len() >= 2 && self.fault(0.03) {
            // Delivered as two transactions (a source that lost the boundary).
            let at = self.rng.random_range(1..changes.len());
            let tail = changes.split_off(at);
            vec![changes, tail]
        } else {
            vec![changes]
        };
        for part in parts {
            let tx = make_tx(Some(tx_id), part);
            self.deliver(tx);
        }
    }

    fn deliver(&mut self, tx: Transaction) {
        // Commit order differs from LSN order: hold this one back behind the next.
        if self.held.is_none() && self.fault(0.04) {
            self.held = Some(tx);
            return;
        }
        match self.held.take() {
            // Only transactions on disjoint rows can commit in either order.
            Some(h) if disjoint(&h, &tx) => {
                self.out.push(tx);
                self.out.push(h);
            }
            Some(h) => {
                self.out.push(h);
                self.out.push(tx);
            }
            None => self.out.push(tx),
        }
        // At-least-once: an earlier transaction delivered again.
        if self.fault(0.04) && !self.out.is_empty() {
            let from = self.out.len().saturating_sub(30);
            let i = self.rng.random_range(from..self.out.len());
            let again = self.out[i].clone();
            self.out.push(again);
        }
        // A single stale event delivered alone (e.g. a re-read Kafka partition).
        if self.fault(0.03) {
            if let Some(c) = self.stale_change() {
                self.out.push(make_tx(None, vec![c]));
            }
        }
    }

    /// A change already delivered, to deliver again. Picked from delivered transactions only
    /// (not from one held back), so with LSNs it is always stale by the time it arrives: its
    /// key's stored LSN is at least its own. Truncates are never redelivered late: a truncate
    /// locks its table, so no real stream reorders changes around it, and the spec leaves a
    /// late truncate's meaning open.
    fn stale_change(&mut self) -> Option<Change> {
        if self.out.is_empty() {
            return None;
        }
        let from = self.out.len().saturating_sub(40);
        let tx = &self.out[self.rng.random_range(from..self.out.len())];
        let c = tx.changes.choose(&mut self.rng)?.clone();
        (!matches!(c.kind, ChangeKind::Truncate)).then_some(c)
    }

    fn finish(mut self) -> Vec<Transaction> {
        self.commit();
        if let Some(h) = self.held.take() {
            self.out.push(h);
        }
        self.out
    }

    // ---------------------------------------------------------------------------------------
    // The shop
    // ---------------------------------------------------------------------------------------

    fn run(&mut self) {
        self.snapshot();
        for _ in 0..self.cfg.transactions {
            self.clock += self.rng.random_range(0..15 * SECOND);
            let actions = if self.p(0.2) {
                self.rng.random_range(2..=3)
            } else {
                1
            };
            for _ in 0..actions {
                self.action();
            }
            self.commit();
        }
    }

    /// Master data as an initial snapshot (`r` events), one transaction.
    fn snapshot(&mut self) {
        for c in 1..=self.cfg.categories {
            let id = self.id(Table::Categories);
            self.insert(
                Row::Category(Category {
                    category_id: id,
                    name: format!("category {c}"),
                    description: None,
                    created_at: Some(Micros(T0)),
                }),
                Op::Read,
            );
        }
        for _ in 0..self.cfg.customers {
            let id = self.id(Table::Customers);
            self.insert(Row::Customer(customer(id).into()), Op::Read);
        }
        for _ in 0..self.cfg.products {
            let p = self.new_product();
            self.insert(Row::Product(p.into()), Op::Read);
        }
        self.commit();
    }

    fn new_product(&mut self) -> Product {
        let id = self.id(Table::Products);
        let category_id = if self.p(0.1) {
            None
        } else {
            Some(self.rng.random_range(1..=self.cfg.categories))
        };
        let is_active = match self.rng.random_range(0..10) {
            0..=6 => Some(true),
            7 | 8 => Some(false),
            _ => None,
        };
        Product {
            product_id: id,
            sku: format!("SKU-{id}"),
            name: format!("product {id}"),
            description: Some("a product".into()),
            price: Money(self.rng.random_range(1..200) * 5_000),
            stock: Some(self.rng.random_range(10..100)),
            category_id,
            is_active,
            created_at: Some(Micros(T0)),
            updated_at: None,
        }
    }

    fn action(&mut self) {
        let r = self.rng.random_range(0..1000);
        match r {
            0..=179 => self.place_order(None, None, None),
            180..=209 => self.burst(),
            210..=239 => self.repeated_amount(),
            240..=349 => self.advance_status(),
            350..=389 => self.cancel(),
            390..=399 => self.uncancel(),
            400..=419 => self.delete_order(),
            420..=449 => self.correct_total(),
            450..=479 => self.move_order_date(),
            480..=489 => self.change_customer(),
            490..=499 => self.order_pk_change(),
            500..=529 => self.add_item(),
            530..=549 => self.remove_item(),
            550..=579 => self.change_item(),
            580..=589 => self.item_pk_change(),
            590..=619 => self.product_category(),
            620..=649 => self.product_active(),
            650..=659 => self.product_price(),
            660..=667 => self.product_delete(),
            668..=679 => {
                let p = self.new_product();
                self.insert(Row::Product(p.into()), Op::Create);
            }
            680..=739 => self.cart_add(),
            740..=769 => self.cart_remove(),
            770..=789 => self.cart_quantity(),
            790..=829 => self.wishlist_add(),
            830..=849 => self.wishlist_remove(),
            850..=919 => self.product_view(false),
            920..=949 => self.product_view(true),
            950..=959 => {
                if let Some(k) = pick(&mut self.rng, self.views.keys().copied().collect()) {
                    self.delete(Table::ProductViews, k);
                }
            }
            960..=979 => self.irrelevant(),
            980..=994 => self.clock += self.rng.random_range(5..25) * MINUTE,
            _ if self.cfg.truncates => self.rare_truncate(),
            _ => {}
        }
    }

    fn some_customer(&mut self) -> Option<i64> {
        if self.p(0.05) {
            None
        } else {
            Some(self.rng.random_range(1..=self.cfg.customers))
        }
    }

    /// A product id for an item or interaction: usually a known product, sometimes one that
    /// does not exist yet (it may be created later), rarely none.
    fn some_product(&mut self) -> Option<i64> {
        let r = self.rng.random_range(0..100);
        if r < 3 {
            return None;
        }
        if r < 12 {
            let next = *self.next_id.get(&Table::Products).unwrap_or(&1);
            return Some(next + self.rng.random_range(0..3));
        }
        let known: Vec<i64> = self.products.keys().copied().collect();
        pick(&mut self.rng, known).or(Some(1))
    }

    fn order_time(&mut self) -> i64 {
        let t = self.clock - self.rng.random_range(0..30 * SECOND);
        if self.p(0.3) {
            t - t.rem_euclid(10 * SECOND) // on a 10 s grid: window boundaries get hit
        } else {
            t
        }
    }

    fn some_total(&mut self) -> Money {
        let r = self.rng.random_range(0..100);
        Money(match r {
            0..=29 => *[99_900, 150_000, 250_000, 1_000_000_000, 1_000_000_001]
                .choose(&mut self.rng)
                .unwrap_or(&150_000),
            30..=44 => self.rng.random_range(1_000_000_000..3_000_000_000),
            _ => self.rng.random_range(1_000..50_000_000),
        })
    }

    /// One order with 1..4 items, a payment and a shipment; the customer's cart is emptied.
    /// Sometimes the items arrive in a transaction before the order's.
    fn place_order(
        &mut self,
        customer: Option<Option<i64>>,
        at: Option<i64>,
        total: Option<Money>,
    ) {
        let customer_id = match customer {
            Some(c) => c,
            None => self.some_customer(),
        };
        let order_date = Micros(at.unwrap_or_else(|| self.order_time()));
        let total_price = total.unwrap_or_else(|| self.some_total());
        let order_id = self.id(Table::Orders);
        let payment_id = self.id(Table::Payments);
        let shipment_id = self.id(Table::Shipments);
        let items_first = self.p(0.08);
        let n = self.rng.random_range(1..=4);
        let mut items = Vec::new();
        for _ in 0..n {
            let id = self.id(Table::OrderItems);
            let product_id = self.some_product();
            let price = product_id
                .and_then(|p| self.products.get(&p).map(|p| p.price))
                .unwrap_or(Money(self.rng.random_range(1..100) * 10_000));
            items.push(OrderItem {
                order_item_id: id,
                order_id: Some(order_id),
                product_id,
                quantity: self.rng.random_range(1..=3),
                price,
            });
        }
        if items_first {
            for it in &items {
                self.insert(Row::OrderItem(it.clone()), Op::Create);
            }
            self.commit();
        }
        self.insert(
            Row::Payment(Box::new(Payment {
                payment_id,
                payment_date: Some(order_date),
                payment_method: Some("credit_card".into()),
                amount: Some(total_price),
                status: Some("completed".into()),
                transaction_id: Some(format!("TX{payment_id}")),
                customer_id,
            })),
            Op::Create,
        );
        self.insert(
            Row::Shipment(Box::new(Shipment {
                shipment_id,
                shipment_date: None,
                address: Some("1 Street".into()),
                city: Some("Hanoi".into()),
                state: None,
                country: Some("VN".into()),
                zip_code: None,
                status: Some("preparing".into()),
                tracking_number: Some(format!("TRK{shipment_id}")),
                customer_id,
                created_at: Some(order_date),
                updated_at: None,
            })),
            Op::Create,
        );
        self.insert(
            Row::Order(Order {
                order_id,
                order_date,
                total_price,
                status: OrderStatus::Pending,
                customer_id,
                payment_id: Some(payment_id),
                shipment_id: Some(shipment_id),
            }),
            Op::Create,
        );
        if !items_first {
            for it in items {
                self.insert(Row::OrderItem(it), Op::Create);
            }
        }
        if let Some(c) = customer_id {
            let in_cart: Vec<i64> = self
                .carts
                .values()
                .filter(|x| x.customer_id == Some(c))
                .map(|x| x.cart_id)
                .collect();
            for k in in_cart {
                self.delete(Table::Carts, k);
            }
        }
    }

    /// A customer placing 5..8 orders within about a minute (each its own transaction, or
    /// all in one), sometimes exactly 10 s apart so closed-interval edges are hit.
    fn burst(&mut self) {
        let c = Some(self.rng.random_range(1..=self.cfg.customers));
        let n = self.rng.random_range(5..=8);
        let exact = self.p(0.4);
        let mut t = self.order_time();
        let one_tx = self.p(0.5);
        for _ in 0..n {
            self.place_order(Some(c), Some(t), None);
            if !one_tx {
                self.commit();
            }
            t += if exact {
                10 * SECOND
            } else {
                self.rng.random_range(0..13 * SECOND)
            };
        }
        self.clock = self.clock.max(t);
    }

    /// 2..4 orders of one customer with the same total within about 10 minutes.
    fn repeated_amount(&mut self) {
        let c = Some(self.rng.random_range(1..=self.cfg.customers));
        let total = self.some_total();
        let n = self.rng.random_range(2..=4);
        let mut t = self.order_time();
        for _ in 0..n {
            self.place_order(Some(c), Some(t), Some(total));
            self.commit();
            t += if self.p(0.3) {
                300 * SECOND
            } else {
                self.rng.random_range(0..320 * SECOND)
            };
        }
        self.clock = self.clock.max(t);
    }

    fn some_order(&mut self) -> Option<Order> {
        let k = pick(&mut self.rng, self.orders.keys().copied().collect())?;
        self.orders.get(&k).cloned()
    }

    fn update_order(&mut self, old: Order, new: Order) {
        self.update(Row::Order(old), Row::Order(new));
    }

    fn advance_status(&mut self) {
        let Some(o) = self.some_order() else { return };
        let next = match o.status {
            OrderStatus::Pending => OrderStatus::Confirmed,
            OrderStatus::Confirmed => OrderStatus::Shipped,
            OrderStatus::Shipped => OrderStatus::Delivered,
            OrderStatus::Delivered | OrderStatus::Cancelled => return,
        };
        let mut n = o.clone();
        n.status = next;
        self.update_order(o, n);
    }

    fn cancel(&mut self) {
        let Some(o) = self.some_order() else { return };
        if o.status == OrderStatus::Cancelled {
            return;
        }
        let mut n = o.clone();
        n.status = OrderStatus::Cancelled;
        self.update_order(o, n);
    }

    fn uncancel(&mut self) {
        let cancelled: Vec<i64> = self
            .orders
            .values()
            .filter(|o| o.status == OrderStatus::Cancelled)
            .map(|o| o.order_id)
            .collect();
        let Some(k) = pick(&mut self.rng, cancelled) else {
            return;
        };
        let o = self.orders[&k].clone();
        let mut n = o.clone();
        n.status = OrderStatus::Pending;
        self.update_order(o, n);
    }

    fn delete_order(&mut self) {
        let Some(o) = self.some_order() else { return };
        if self.p(0.5) {
            let items: Vec<i64> = self
                .items
                .values()
                .filter(|i| i.order_id == Some(o.order_id))
                .map(|i| i.order_item_id)
                .collect();
            for k in items {
                self.delete(Table::OrderItems, k);
            }
        }
        self.delete(Table::Orders, o.order_id);
    }

    fn correct_total(&mut self) {
        let Some(o) = self.some_order() else { return };
        let mut n = o.clone();
        n.total_price = self.some_total();
        self.update_order(o, n);
    }

    /// A late correction of order_date: a little (across a boundary) or up to two hours back.
    fn move_order_date(&mut self) {
        let Some(o) = self.some_order() else { return };
        let mut n = o.clone();
        let delta = if self.p(0.5) {
            self.rng.random_range(-90 * SECOND..90 * SECOND)
        } else {
            -self.rng.random_range(0..120 * MINUTE)
        };
        n.order_date = Micros(o.order_date.0 + delta);
        self.update_order(o, n);
    }

    fn change_customer(&mut self) {
        let Some(o) = self.some_order() else { return };
        let mut n = o.clone();
        n.customer_id = self.some_customer();
        self.update_order(o, n);
    }

    /// The order's primary key changes: delete + create, and its items follow.
    fn order_pk_change(&mut self) {
        let Some(o) = self.some_order() else { return };
        let new_id = self.id(Table::Orders);
        self.delete(Table::Orders, o.order_id);
        let mut n = o.clone();
        n.order_id = new_id;
        self.insert(Row::Order(n), Op::Create);
        let items: Vec<OrderItem> = self
            .items
            .values()
            .filter(|i| i.order_id == Some(o.order_id))
            .cloned()
            .collect();
        for it in items {
            let mut ni = it.clone();
            ni.order_id = Some(new_id);
            self.update(Row::OrderItem(it), Row::OrderItem(ni));
        }
    }

    fn add_item(&mut self) {
        let Some(o) = self.some_order() else { return };
        let id = self.id(Table::OrderItems);
        let product_id = self.some_product();
        let it = OrderItem {
            order_item_id: id,
            order_id: Some(o.order_id),
            product_id,
            quantity: self.rng.random_range(1..=3),
            price: Money(self.rng.random_range(1..100) * 10_000),
        };
        self.insert(Row::OrderItem(it), Op::Create);
    }

    fn some_item(&mut self) -> Option<OrderItem> {
        let k = pick(&mut self.rng, self.items.keys().copied().collect())?;
        self.items.get(&k).cloned()
    }

    fn remove_item(&mut self) {
        if let Some(it) = self.some_item() {
            self.delete(Table::OrderItems, it.order_item_id);
        }
    }

    fn change_item(&mut self) {
        let Some(it) = self.some_item() else { return };
        let mut n = it.clone();
        match self.rng.random_range(0..3) {
            0 => n.quantity = self.rng.random_range(1..=4),
            1 => n.price = Money(self.rng.random_range(1..100) * 10_000),
            _ => n.product_id = self.some_product(),
        }
        self.update(Row::OrderItem(it), Row::OrderItem(n));
    }

    fn item_pk_change(&mut self) {
        let Some(it) = self.some_item() else { return };
        let new_id = self.id(Table::OrderItems);
        self.delete(Table::OrderItems, it.order_item_id);
        let mut n = it;
        n.order_item_id = new_id;
        self.insert(Row::OrderItem(n), Op::Create);
    }

    fn some_product_row(&mut self) -> Option<Product> {
        let k = pick(&mut self.rng, self.products.keys().copied().collect())?;
        self.products.get(&k).cloned()
    }

    fn product_category(&mut self) {
        let Some(p) = self.some_product_row() else {
            return;
        };
        let mut n = p.clone();
        n.category_id = if self.p(0.1) {
            None
        } else {
            Some(self.rng.random_range(1..=self.cfg.categories))
        };
        self.update(Row::Product(p.into()), Row::Product(n.into()));
    }

    fn product_active(&mut self) {
        let Some(p) = self.some_product_row() else {
            return;
        };
        let mut n = p.clone();
        n.is_active = match p.is_active {
            Some(true) => Some(false),
            Some(false) => Some(true),
            None => Some(false),
        };
        self.update(Row::Product(p.into()), Row::Product(n.into()));
    }

    fn product_price(&mut self) {
        let Some(p) = self.some_product_row() else {
            return;
        };
        let mut n = p.clone();
        n.price = Money(self.rng.random_range(1..200) * 5_000);
        n.description = Some(format!("repriced {}", self.clock));
        self.update(Row::Product(p.into()), Row::Product(n.into()));
    }

    fn product_delete(&mut self) {
        if let Some(p) = self.some_product_row() {
            self.delete(Table::Products, p.product_id);
        }
    }

    fn cart_add(&mut self) {
        let id = self.id(Table::Carts);
        let row = Cart {
            cart_id: id,
            customer_id: self.some_customer(),
            product_id: self.some_product(),
            quantity: self.rng.random_range(1..=3),
            added_at: Some(Micros(self.clock)),
        };
        self.insert(Row::Cart(row), Op::Create);
    }

    fn cart_remove(&mut self) {
        if let Some(k) = pick(&mut self.rng, self.carts.keys().copied().collect()) {
            self.delete(Table::Carts, k);
        }
    }

    fn cart_quantity(&mut self) {
        let Some(k) = pick(&mut self.rng, self.carts.keys().copied().collect()) else {
            return;
        };
        let old = self.carts[&k].clone();
        let mut n = old.clone();
        n.quantity = self.rng.random_range(1..=5);
        if self.p(0.2) {
            n.product_id = self.some_product();
        }
        self.update(Row::Cart(old), Row::Cart(n));
    }

    fn wishlist_add(&mut self) {
        let id = self.id(Table::Wishlists);
        let row = Wishlist {
            wishlist_id: id,
            customer_id: self.some_customer(),
            product_id: self.some_product(),
            added_at: Some(Micros(self.clock)),
        };
        self.insert(Row::Wishlist(row), Op::Create);
    }

    fn wishlist_remove(&mut self) {
        if let Some(k) = pick(&mut self.rng, self.wishlists.keys().copied().collect()) {
            self.delete(Table::Wishlists, k);
        }
    }

    fn product_view(&mut self, browse: bool) {
        let id = self.id(Table::ProductViews);
        let (product_id, category_id) = if browse {
            (None, Some(self.rng.random_range(1..=self.cfg.categories)))
        } else {
            let p = self.some_product();
            let cat = p.and_then(|p| self.products.get(&p).and_then(|p| p.category_id));
            (p.or(Some(1)), cat)
        };
        let row = ProductView {
            view_id: id,
            customer_id: self.some_customer(),
            product_id,
            category_id,
            viewed_at: Some(Micros(self.clock)),
        };
        self.insert(Row::ProductView(row), Op::Create);
    }

    /// Changes no view may react to: customers, categories, payments.
    fn irrelevant(&mut self) {
        let c = self.rng.random_range(1..=self.cfg.customers);
        let mut row = customer(c);
        row.address = Some(format!("moved at {}", self.clock));
        self.update(Row::Customer(customer(c).into()), Row::Customer(row.into()));
    }

    fn rare_truncate(&mut self) {
        let t = *[
            Table::Carts,
            Table::Carts,
            Table::Wishlists,
            Table::ProductViews,
            Table::ProductViews,
            Table::OrderItems,
            Table::Orders,
            Table::Products,
        ]
        .choose(&mut self.rng)
        .unwrap_or(&Table::Carts);
        // A truncate is its own transaction, as `TRUNCATE` usually is.
        self.commit();
        self.truncate(t);
        self.commit();
    }
}

fn customer(id: i64) -> Customer {
    Customer {
        customer_id: id,
        first_name: Some(format!("First{id}")),
        last_name: format!("Last{id}"),
        email: format!("c{id}@example.com"),
        password_hash: "x".into(),
        address: None,
        phone_number: None,
        created_at: Some(Micros(T0)),
        updated_at: None,
    }
}

/// Whether two transactions touch no common row (a truncate touches its whole table).
fn disjoint(a: &Transaction, b: &Transaction) -> bool {
    let touched = |t: &Transaction| -> Vec<(Table, Option<i64>)> {
        t.changes.iter().map(|c| (c.table, c.key())).collect()
    };
    let (ta, tb) = (touched(a), touched(b));
    !ta.iter().any(|(t1, k1)| {
        tb.iter()
            .any(|(t2, k2)| t1 == t2 && (k1.is_none() || k2.is_none() || k1 == k2))
    })
}

pub fn make_tx(tx_id: Option<u64>, changes: Vec<Change>) -> Transaction {
    let lsn = changes.iter().filter_map(|c| c.lsn).max();
    Transaction {
        tx_id,
        lsn,
        received_at: Micros(0),
        position: Position::None,
        changes,
    }
}

/// `Some(true)` if column `col` differs between the two images, `Some(false)` if equal, `None`
/// when the table has no such column. Only the columns the views read, plus a few text ones,
/// are considered (others return `None`).
fn column_changed(old: &Row, new: &Row, col: usize) -> Option<bool> {
    Some(match (old, new, col) {
        (Row::Order(a), Row::Order(b), 1) => a.order_date != b.order_date,
        (Row::Order(a), Row::Order(b), 2) => a.total_price != b.total_price,
        (Row::Order(a), Row::Order(b), 3) => a.status != b.status,
        (Row::Order(a), Row::Order(b), 4) => a.customer_id != b.customer_id,
        (Row::OrderItem(a), Row::OrderItem(b), 1) => a.order_id != b.order_id,
        (Row::OrderItem(a), Row::OrderItem(b), 2) => a.product_id != b.product_id,
        (Row::OrderItem(a), Row::OrderItem(b), 3) => a.quantity != b.quantity,
        (Row::OrderItem(a), Row::OrderItem(b), 4) => a.price != b.price,
        (Row::Product(a), Row::Product(b), 2) => a.name != b.name,
        (Row::Product(a), Row::Product(b), 3) => a.description != b.description,
        (Row::Product(a), Row::Product(b), 6) => a.category_id != b.category_id,
        (Row::Product(a), Row::Product(b), 7) => a.is_active != b.is_active,
        (Row::Cart(a), Row::Cart(b), 1) => a.customer_id != b.customer_id,
        (Row::Cart(a), Row::Cart(b), 2) => a.product_id != b.product_id,
        (Row::Customer(a), Row::Customer(b), 5) => a.address != b.address,
        (Row::Customer(a), Row::Customer(b), 3) => a.email != b.email,
        _ => return None,
    })
}

/// Puts a value in column `col` that would visibly break the views if it were taken at face
/// value instead of the stored one.
fn garble(row: &mut Row, col: usize) {
    match (row, col) {
        (Row::Order(o), 1) => o.order_date = Micros(T0 - 400 * 24 * 3600 * SECOND),
        (Row::Order(o), 2) => o.total_price = Money(1_234_567_890_123),
        (Row::Order(o), 3) => {
            o.status = if o.status == OrderStatus::Cancelled {
                OrderStatus::Pending
            } else {
                OrderStatus::Cancelled
            }
        }
        (Row::Order(o), 4) => o.customer_id = Some(4242),
        (Row::OrderItem(i), 1) => i.order_id = Some(-7),
        (Row::OrderItem(i), 2) => i.product_id = Some(4242),
        (Row::OrderItem(i), 3) => i.quantity = 777,
        (Row::OrderItem(i), 4) => i.price = Money(-99),
        (Row::Product(p), 2) => p.name = "__debezium_unavailable_value".into(),
        (Row::Product(p), 3) => p.description = Some("__debezium_unavailable_value".into()),
        (Row::Product(p), 6) => p.category_id = Some(4242),
        (Row::Product(p), 7) => p.is_active = Some(p.is_active != Some(true)),
        (Row::Cart(c), 1) => c.customer_id = Some(4242),
        (Row::Cart(c), 2) => c.product_id = Some(4242),
        (Row::Customer(c), 5) => c.address = Some("__debezium_unavailable_value".into()),
        (Row::Customer(c), 3) => c.email = "__debezium_unavailable_value".into(),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_varied() {
        let cfg = GenConfig::default();
        let a = stream(7, &cfg);
        let b = stream(7, &cfg);
        assert_eq!(a, b);
        assert_ne!(a, stream(8, &cfg));
        let changes: Vec<&Change> = a.iter().flat_map(|t| &t.changes).collect();
        assert!(changes
            .iter()
            .any(|c| matches!(c.kind, ChangeKind::Delete { .. })));
        assert!(changes.iter().any(|c| c.op == Op::Update));
    }
}
