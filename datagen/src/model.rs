//! The shopper behaviour model: a deterministic, seeded, in-memory shop that decides what
//! shoppers and the back office do and returns the rows each action writes.
//!
//! This is the one place behaviour lives. The engine's embedded default mode runs it with no
//! database; the Postgres simulator (`crate::simulate`) runs the very same model and writes the
//! rows it returns. The model assigns every id itself.
//!
//! ```no_run
//! use datagen::model::{Shop, ShopConfig};
//! let mut shop = Shop::new(ShopConfig { seed: 42, ..ShopConfig::default() });
//! let snapshot: Vec<sources::Transaction> = shop.initial_load(); // categories, products, customers
//! let now = sources::Micros(1_750_000_000_000_000);
//! let tx: sources::Transaction = shop.step(now); // one action = one transaction
//! ```
//!
//! Contract of the transactions returned:
//! - `initial_load` first: master data as snapshot reads (`Op::Read`), chunks of at most
//!   [`LOAD_CHUNK`] changes per transaction, categories before products before customers.
//! - `step(now)`: one shopper or back-office action as one transaction of full typed rows
//!   (`ChangeKind::Upsert` with empty `unavailable`, or `ChangeKind::Delete { key }`), in an
//!   order that respects foreign keys. Every shopper action writes at least one row.
//! - Each change has its own LSN; the transaction's `lsn` is its commit LSN, greater than its
//!   changes'. LSNs and `tx_id`s strictly increase across all calls. `received_at = now`
//!   (`initial_load` uses the wall clock). `position` is `Position::None`.
//! - Timestamps written (`order_date`, `viewed_at`, `added_at`, …) are `now`; callers pass a
//!   non-decreasing clock for realistic data, but nothing breaks if they do not.
//! - Same config and the same sequence of `now`s → identical transactions.
//!
//! Behaviour: a shopper action is drawn with [`SHOPPER_WEIGHTS`] (view_product 0.40,
//! add_to_cart 0.20, add_to_wishlist 0.15, remove_from_cart 0.10, place_order 0.10,
//! browse_category 0.05). Placing an order writes payment, shipment, order, items, empties the
//! cart and decrements stock, with `total_price = Σ quantity × price` exactly. The back office
//! moves orders pending → confirmed → shipped → delivered, cancels the ~5% destined to be
//! cancelled (returning stock), restocks low products and occasionally deletes an old order with
//! its items, so the stream carries updates and deletes. Rarely ([`BURST_PROBABILITY`]) a
//! shopper starts an order burst — 6–9 "buy now" orders of the same product in quick
//! succession — so the fraud views have something to find.
//!
//! Must not do I/O. Must not iterate hash maps (their order is random per process): all choices
//! come from the seeded RNG over ordered collections.

use crate::catalog::{self, ShopRng, Stream};
use fake::rand::RngExt;
use sources::{
    Cart, Category, Change, ChangeKind, Lsn, Micros, Money, Op, Order, OrderItem, OrderStatus,
    Payment, Position, Product, ProductView, Row, Shipment, Table, Transaction, Unavailable,
    Wishlist,
};
use std::collections::{BTreeMap, HashMap, VecDeque};

/// At most this many changes per `initial_load` transaction.
pub const LOAD_CHUNK: usize = 10_000;

/// Probability that `step` lets the back office act (when it has work) instead of a shopper.
/// Orders are 10% of shopper actions and need three transitions each, so 0.3 keeps up.
pub const BACK_OFFICE_PROBABILITY: f64 = 0.3;

/// Fraction of orders that end cancelled.
pub const CANCEL_PROBABILITY: f64 = 0.05;

/// Probability that a shopper step starts an order burst: the same product bought again and
/// again within a minute or two, the pattern the fraud views (`frequent_orders`,
/// `order_burst`, `repeated_amount`) exist to catch. Without it they would never fire.
pub const BURST_PROBABILITY: f64 = 0.002;

/// Orders in one burst (inclusive range).
const BURST_ORDERS: (u32, u32) = (6, 9);

/// Finished orders remembered as candidates for deletion.
const CLOSED_MEMORY: usize = 10_000;

/// Products at or below this stock get restocked by the back office.
const LOW_STOCK: i32 = 5;

/// What one step did.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    ViewProduct,
    AddToCart,
    AddToWishlist,
    RemoveFromCart,
    PlaceOrder,
    BrowseCategory,
    /// Back office: pending → confirmed → shipped → delivered.
    AdvanceOrder,
    /// Back office: a pending order is cancelled, its stock returned.
    CancelOrder,
    /// Back office: a finished order and its items are deleted.
    DeleteOrder,
    /// Back office: a low-stock product is restocked.
    Restock,
}

impl Action {
    pub const ALL: [Action; 10] = [
        Action::ViewProduct,
        Action::AddToCart,
        Action::AddToWishlist,
        Action::RemoveFromCart,
        Action::PlaceOrder,
        Action::BrowseCategory,
        Action::AdvanceOrder,
        Action::CancelOrder,
        Action::DeleteOrder,
        Action::Restock,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Action::ViewProduct => "view_product",
            Action::AddToCart => "add_to_cart",
            Action::AddToWishlist => "add_to_wishlist",
            Action::RemoveFromCart => "remove_from_cart",
            Action::PlaceOrder => "place_order",
            Action::BrowseCategory => "browse_category",
            Action::AdvanceOrder => "advance_order",
            Action::CancelOrder => "cancel_order",
            Action::DeleteOrder => "delete_order",
            Action::Restock => "restock",
        }
    }
}

/// The old tool's shopper weights.
pub const SHOPPER_WEIGHTS: [(Action, f64); 6] = [
    (Action::ViewProduct, 0.40),
    (Action::AddToCart, 0.20),
    (Action::AddToWishlist, 0.15),
    (Action::RemoveFromCart, 0.10),
    (Action::PlaceOrder, 0.10),
    (Action::BrowseCategory, 0.05),
];

/// Size and seed of an in-memory shop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShopConfig {
    pub seed: u64,
    /// Number of categories (the ten fixed ones, repeated with a suffix beyond ten). At least 1.
    pub categories: usize,
    /// At least 1.
    pub products: usize,
    /// At least 1.
    pub customers: usize,
}

impl Default for ShopConfig {
    /// The CLI's defaults: 10 categories, 100 products, 50 customers, seed 42.
    fn default() -> Self {
        ShopConfig {
            seed: 42,
            categories: 10,
            products: 100,
            customers: 50,
        }
    }
}

/// One step: what was done, for which customer, and the transaction it wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub action: Action,
    /// The shopper, or the customer of the order the back office touched.
    pub customer_id: Option<i64>,
    pub tx: Transaction,
}

/// An order that has not reached a final state.
#[derive(Clone, Debug)]
pub struct OpenOrder {
    pub order: Order,
    pub payment: Payment,
    pub shipment: Shipment,
    /// (order_item_id, product_id, quantity)
    pub items: Vec<(i64, i64, i32)>,
    /// Destined to be cancelled at its first transition.
    pub cancel: bool,
    /// Time of its last transition; the back office moves it only later than this.
    pub last_change: Micros,
}

/// A delivered or cancelled order that may still be deleted.
#[derive(Clone, Debug)]
pub struct ClosedOrder {
    pub order_id: i64,
    pub customer_id: Option<i64>,
    pub item_ids: Vec<i64>,
}

/// Everything the model needs to continue from an existing database (see
/// `crate::simulate::load_state`). Ids in `next_ids` are the next free id per table, in
/// `sources::Table::ALL` order.
#[derive(Clone, Debug, Default)]
pub struct ShopState {
    pub category_ids: Vec<i64>,
    pub products: Vec<Product>,
    pub customer_ids: Vec<i64>,
    pub carts: Vec<Cart>,
    pub wishlists: Vec<Wishlist>,
    pub open_orders: Vec<OpenOrder>,
    pub closed_orders: Vec<ClosedOrder>,
    pub next_ids: [i64; 10],
}

/// The in-memory shop. See the module docs for the contract.
pub struct Shop {
    seed: u64,
    rng: ShopRng,
    /// Rows for `initial_load`, when the shop was generated (not loaded from a database).
    generated: Option<(Vec<Category>, usize)>,
    category_ids: Vec<i64>,
    products: Vec<Product>,
    product_pos: HashMap<i64, usize>,
    customer_ids: Vec<i64>,
    carts: BTreeMap<i64, Vec<Cart>>,
    wishlists: BTreeMap<i64, Vec<Wishlist>>,
    open: Vec<OpenOrder>,
    closed: VecDeque<ClosedOrder>,
    /// Positions in `products` of products at or below [`LOW_STOCK`].
    low_stock: Vec<usize>,
    /// Customers in an order burst: (product position, quantity, orders left).
    bursts: BTreeMap<i64, (usize, i32, u32)>,
    next_ids: [i64; 10],
    lsn: u64,
    tx_id: u64,
}

fn table_index(t: Table) -> usize {
    Table::ALL.iter().position(|x| *x == t).unwrap_or(0)
}

fn upsert(op: Op, row: Row) -> Change {
    Change {
        table: row.table(),
        op,
        lsn: None,
        kind: ChangeKind::Upsert {
            row,
            unavailable: Unavailable::default(),
        },
    }
}

fn delete(table: Table, key: i64) -> Change {
    Change {
        table,
        op: Op::Delete,
        lsn: None,
        kind: ChangeKind::Delete { key },
    }
}

fn wall_clock() -> Micros {
    Micros::now()
}

const PAYMENT_METHODS: [(&str, f64); 4] = [
    ("credit_card", 0.40),
    ("debit_card", 0.25),
    ("paypal", 0.20),
    ("bank_transfer", 0.15),
];

impl Shop {
    /// A generated shop: master rows are `catalog`'s rows for ids 1..=n, identical to what
    /// `datagen generate` writes into an empty database with the same seed.
    pub fn new(cfg: ShopConfig) -> Shop {
        let categories: Vec<Category> = (0..cfg.categories.max(1))
            .map(|i| catalog::category_row(i, i as i64 + 1))
            .collect();
        let cat_refs: Vec<(i64, usize)> = categories
            .iter()
            .enumerate()
            .map(|(i, c)| (c.category_id, i))
            .collect();
        let products: Vec<Product> = (1..=cfg.products.max(1) as i64)
            .map(|id| catalog::product_row(cfg.seed, id, &cat_refs))
            .collect();
        let customers = cfg.customers.max(1);
        let mut next_ids = [1i64; 10];
        next_ids[table_index(Table::Categories)] = categories.len() as i64 + 1;
        next_ids[table_index(Table::Products)] = products.len() as i64 + 1;
        next_ids[table_index(Table::Customers)] = customers as i64 + 1;
        let state = ShopState {
            category_ids: categories.iter().map(|c| c.category_id).collect(),
            products,
            customer_ids: (1..=customers as i64).collect(),
            next_ids,
            ..ShopState::default()
        };
        let mut shop = Shop::from_state(cfg.seed, state);
        shop.generated = Some((categories, customers));
        shop
    }

    /// A shop continuing from existing data (the Postgres simulator loads it from the
    /// database). Empty master data is allowed but then shoppers have nothing to do: callers
    /// check [`Shop::is_empty`] first.
    pub fn from_state(seed: u64, state: ShopState) -> Shop {
        let product_pos = state
            .products
            .iter()
            .enumerate()
            .map(|(i, p)| (p.product_id, i))
            .collect();
        let low_stock = state
            .products
            .iter()
            .enumerate()
            .filter(|(_, p)| p.stock.unwrap_or(0) <= LOW_STOCK)
            .map(|(i, _)| i)
            .collect();
        let mut carts: BTreeMap<i64, Vec<Cart>> = BTreeMap::new();
        for c in state.carts {
            if let Some(cust) = c.customer_id {
                carts.entry(cust).or_default().push(c);
            }
        }
        let mut wishlists: BTreeMap<i64, Vec<Wishlist>> = BTreeMap::new();
        for w in state.wishlists {
            if let Some(cust) = w.customer_id {
                wishlists.entry(cust).or_default().push(w);
            }
        }
        let mut closed: VecDeque<ClosedOrder> = state.closed_orders.into();
        while closed.len() > CLOSED_MEMORY {
            closed.pop_front();
        }
        Shop {
            seed,
            rng: catalog::row_rng(seed, Stream::Simulation, 0),
            generated: None,
            category_ids: state.category_ids,
            products: state.products,
            product_pos,
            customer_ids: state.customer_ids,
            carts,
            wishlists,
            open: state.open_orders,
            closed,
            low_stock,
            bursts: BTreeMap::new(),
            next_ids: state.next_ids.map(|n| n.max(1)),
            lsn: 0,
            tx_id: 0,
        }
    }

    /// True when there are no customers or no products to act on.
    pub fn is_empty(&self) -> bool {
        self.customer_ids.is_empty() || self.products.is_empty() || self.category_ids.is_empty()
    }

    /// Number of orders not yet delivered or cancelled.
    pub fn open_orders(&self) -> usize {
        self.open.len()
    }

    /// The master data as snapshot transactions (empty for a shop built with `from_state`).
    pub fn initial_load(&mut self) -> Vec<Transaction> {
        let Some((categories, customers)) = self.generated.clone() else {
            return Vec::new();
        };
        let now = wall_clock();
        let mut txs = Vec::new();
        let mut chunk: Vec<Change> = Vec::new();
        let mut flush = |shop: &mut Shop, chunk: &mut Vec<Change>, force: bool| {
            if chunk.len() >= LOAD_CHUNK || (force && !chunk.is_empty()) {
                let changes = std::mem::take(chunk);
                txs.push(shop.seal(changes, now));
            }
        };
        for c in categories {
            chunk.push(upsert(Op::Read, Row::Category(c)));
            flush(self, &mut chunk, false);
        }
        for i in 0..self.products.len() {
            chunk.push(upsert(
                Op::Read,
                Row::Product(Box::new(self.products[i].clone())),
            ));
            flush(self, &mut chunk, false);
        }
        for id in 1..=customers as i64 {
            chunk.push(upsert(
                Op::Read,
                Row::Customer(Box::new(catalog::customer_row(self.seed, id))),
            ));
            flush(self, &mut chunk, false);
        }
        flush(self, &mut chunk, true);
        txs
    }

    /// One action (shopper or back office) as one transaction.
    pub fn step(&mut self, now: Micros) -> Transaction {
        self.next_step(now).tx
    }

    /// Like [`Shop::step`], also saying what was done and for whom.
    pub fn next_step(&mut self, now: Micros) -> Step {
        if self.rng.random_bool(BACK_OFFICE_PROBABILITY) {
            if let Some(s) = self.back_office_step(now) {
                return s;
            }
        }
        // A customer in a burst comes back soon, so the burst fits in a minute or two at any
        // step rate above a few per second.
        let bursting = self.bursts.keys().next().copied();
        let customer = match bursting {
            Some(c) if self.rng.random_bool(0.3) => c,
            _ => self.random_customer(),
        };
        self.shopper_step(customer, now)
    }

    /// A uniformly drawn customer id (0 if there are none).
    pub fn random_customer(&mut self) -> i64 {
        if self.customer_ids.is_empty() {
            return 0;
        }
        self.customer_ids[self.rng.random_range(0..self.customer_ids.len())]
    }

    /// Draws a shopper action with [`SHOPPER_WEIGHTS`].
    pub fn draw_action(&mut self) -> Action {
        let mut x: f64 = self.rng.random_range(0.0..1.0);
        for (a, w) in SHOPPER_WEIGHTS {
            if x < w {
                return a;
            }
            x -= w;
        }
        Action::ViewProduct
    }

    /// A shopper action drawn with [`SHOPPER_WEIGHTS`] for `customer_id` — or, for a customer
    /// in an order burst (rarely started, see [`BURST_PROBABILITY`]), the burst's next order.
    pub fn shopper_step(&mut self, customer_id: i64, now: Micros) -> Step {
        if let Some(step) = self.burst_order(customer_id, now) {
            return step;
        }
        let action = self.draw_action();
        self.perform(action, customer_id, now)
    }

    fn burst_order(&mut self, customer: i64, now: Micros) -> Option<Step> {
        let (i, qty) = match self.bursts.get_mut(&customer) {
            Some(b) => {
                b.2 = b.2.saturating_sub(1);
                let (i, qty, left) = *b;
                if left == 0 {
                    self.bursts.remove(&customer);
                }
                (i, qty)
            }
            None => {
                if !self.rng.random_bool(BURST_PROBABILITY) {
                    return None;
                }
                let i = self.buyable_product()?;
                let qty = self.rng.random_range(1..=2);
                let n = self.rng.random_range(BURST_ORDERS.0..=BURST_ORDERS.1);
                self.bursts.insert(customer, (i, qty, n - 1));
                (i, qty)
            }
        };
        let Some(done) = self.place_order(customer, now, Some((i, qty))) else {
            // Sold out: the burst ends.
            self.bursts.remove(&customer);
            return None;
        };
        let (action, customer, changes) = done;
        Some(Step {
            action,
            customer_id: customer,
            tx: self.seal(changes, now),
        })
    }

    /// Performs `action` for `customer_id` (back-office actions ignore the customer). When an
    /// action cannot write anything (removing from an empty cart, an order with everything out
    /// of stock) the shopper views a product instead, so every step writes a row; the returned
    /// `Step::action` says what was actually done.
    pub fn perform(&mut self, action: Action, customer_id: i64, now: Micros) -> Step {
        let done = match action {
            Action::ViewProduct => self.view_product(customer_id, now),
            Action::BrowseCategory => self.browse_category(customer_id, now),
            Action::AddToCart => self.add_to_cart(customer_id, now),
            Action::AddToWishlist => self.add_to_wishlist(customer_id, now),
            Action::RemoveFromCart => self.remove_from_cart(customer_id),
            Action::PlaceOrder => self.place_order(customer_id, now, None),
            Action::AdvanceOrder | Action::CancelOrder => self.advance_order(now),
            Action::DeleteOrder => self.delete_order(),
            Action::Restock => self.restock(now),
        };
        let (action, customer, changes) = match done {
            Some(d) => d,
            None => match self.view_product(customer_id, now) {
                Some(d) => d,
                // Only an empty shop gets here.
                None => (Action::ViewProduct, Some(customer_id), Vec::new()),
            },
        };
        Step {
            action,
            customer_id: customer,
            tx: self.seal(changes, now),
        }
    }

    /// The back office acts if it has work: restock a low product, delete an old order now and
    /// then, or move an open order along.
    pub fn back_office_step(&mut self, now: Micros) -> Option<Step> {
        let roll: f64 = self.rng.random_range(0.0..1.0);
        // Restock when asked and needed; delete rarely (~1 in 70 back-office steps, about 4% of
        // orders); otherwise move an order along.
        let done = if roll < 0.08 && !self.low_stock.is_empty() {
            self.restock(now)
        } else if (0.08..0.095).contains(&roll) && !self.closed.is_empty() {
            self.delete_order()
        } else {
            self.advance_order(now)
        }?;
        let (action, customer, changes) = done;
        Some(Step {
            action,
            customer_id: customer,
            tx: self.seal(changes, now),
        })
    }

    // ---- internals ----

    fn next_id(&mut self, t: Table) -> i64 {
        let i = table_index(t);
        let id = self.next_ids[i];
        self.next_ids[i] += 1;
        id
    }

    /// Numbers the changes and wraps them into a transaction.
    fn seal(&mut self, mut changes: Vec<Change>, now: Micros) -> Transaction {
        for c in &mut changes {
            self.lsn += 1;
            c.lsn = Some(Lsn(self.lsn));
        }
        self.lsn += 1;
        self.tx_id += 1;
        Transaction {
            tx_id: Some(self.tx_id),
            lsn: Some(Lsn(self.lsn)),
            received_at: now,
            position: Position::None,
            changes,
        }
    }

    /// A product position, skewed towards low positions so some products are best sellers.
    fn skewed_product(&mut self) -> Option<usize> {
        if self.products.is_empty() {
            return None;
        }
        let u: f64 = self.rng.random_range(0.0..1.0);
        let i = (u * u * self.products.len() as f64) as usize;
        Some(i.min(self.products.len() - 1))
    }

    /// An active product with stock, by a few skewed draws.
    fn buyable_product(&mut self) -> Option<usize> {
        for _ in 0..12 {
            let i = self.skewed_product()?;
            let p = &self.products[i];
            if p.is_active.unwrap_or(true) && p.stock.unwrap_or(0) > 0 {
                return Some(i);
            }
        }
        None
    }

    fn view_product(&mut self, customer: i64, now: Micros) -> Option<Done> {
        let i = self.skewed_product()?;
        let p = &self.products[i];
        let (pid, cat) = (p.product_id, p.category_id);
        let view = ProductView {
            view_id: self.next_id(Table::ProductViews),
            customer_id: Some(customer),
            product_id: Some(pid),
            category_id: cat,
            viewed_at: Some(now),
        };
        Some((
            Action::ViewProduct,
            Some(customer),
            vec![upsert(Op::Create, Row::ProductView(view))],
        ))
    }

    fn browse_category(&mut self, customer: i64, now: Micros) -> Option<Done> {
        if self.category_ids.is_empty() {
            return None;
        }
        let cat = self.category_ids[self.rng.random_range(0..self.category_ids.len())];
        let view = ProductView {
            view_id: self.next_id(Table::ProductViews),
            customer_id: Some(customer),
            product_id: None,
            category_id: Some(cat),
            viewed_at: Some(now),
        };
        Some((
            Action::BrowseCategory,
            Some(customer),
            vec![upsert(Op::Create, Row::ProductView(view))],
        ))
    }

    fn add_to_cart(&mut self, customer: i64, now: Micros) -> Option<Done> {
        let i = self.buyable_product()?;
        let pid = self.products[i].product_id;
        let qty: i32 = self.rng.random_range(1..=3);
        let cart = self.carts.entry(customer).or_default();
        let row = if let Some(existing) = cart.iter_mut().find(|c| c.product_id == Some(pid)) {
            existing.quantity = (existing.quantity + qty).min(10);
            (Op::Update, existing.clone())
        } else {
            let c = Cart {
                cart_id: 0,
                customer_id: Some(customer),
                product_id: Some(pid),
                quantity: qty,
                added_at: Some(now),
            };
            (Op::Create, c)
        };
        let (op, mut row) = row;
        if op == Op::Create {
            row.cart_id = self.next_id(Table::Carts);
            self.carts.entry(customer).or_default().push(row.clone());
        }
        Some((
            Action::AddToCart,
            Some(customer),
            vec![upsert(op, Row::Cart(row))],
        ))
    }

    fn add_to_wishlist(&mut self, customer: i64, now: Micros) -> Option<Done> {
        for _ in 0..5 {
            let Some(i) = self.buyable_product() else {
                break;
            };
            let pid = self.products[i].product_id;
            let list = self.wishlists.entry(customer).or_default();
            if list.iter().any(|w| w.product_id == Some(pid)) {
                continue;
            }
            let w = Wishlist {
                wishlist_id: self.next_id(Table::Wishlists),
                customer_id: Some(customer),
                product_id: Some(pid),
                added_at: Some(now),
            };
            self.wishlists.entry(customer).or_default().push(w.clone());
            return Some((
                Action::AddToWishlist,
                Some(customer),
                vec![upsert(Op::Create, Row::Wishlist(w))],
            ));
        }
        // Everything drawn is already wished for: the shopper tidies the list instead.
        let list = self.wishlists.get_mut(&customer)?;
        if list.is_empty() {
            return None;
        }
        let w = list.swap_remove(self.rng.random_range(0..list.len()));
        Some((
            Action::AddToWishlist,
            Some(customer),
            vec![delete(Table::Wishlists, w.wishlist_id)],
        ))
    }

    fn remove_from_cart(&mut self, customer: i64) -> Option<Done> {
        let cart = self.carts.get_mut(&customer)?;
        if cart.is_empty() {
            return None;
        }
        let c = cart.swap_remove(self.rng.random_range(0..cart.len()));
        Some((
            Action::RemoveFromCart,
            Some(customer),
            vec![delete(Table::Carts, c.cart_id)],
        ))
    }

    /// An order of the cart (or of 1–3 products picked on the spot when the cart is empty),
    /// or — for a "buy now" burst — of exactly `forced` (product position, quantity), leaving
    /// the cart alone.
    fn place_order(
        &mut self,
        customer: i64,
        now: Micros,
        forced: Option<(usize, i32)>,
    ) -> Option<Done> {
        let mut lines: Vec<(usize, i32)> = Vec::new();
        let cart = match forced {
            Some((i, qty)) => {
                let qty = qty.min(self.products[i].stock.unwrap_or(0));
                if qty == 0 {
                    return None;
                }
                lines.push((i, qty));
                Vec::new()
            }
            None => self.carts.remove(&customer).unwrap_or_default(),
        };
        // Items from the cart, as much as is in stock, in cart order.
        for c in &cart {
            let Some(&i) = c.product_id.and_then(|p| self.product_pos.get(&p)) else {
                continue;
            };
            let p = &self.products[i];
            let qty = c.quantity.min(p.stock.unwrap_or(0));
            if qty > 0 && p.is_active.unwrap_or(true) && !lines.iter().any(|l| l.0 == i) {
                lines.push((i, qty));
            }
        }
        if lines.is_empty() {
            // Empty cart: the shopper picks 1–3 products first.
            let n = self.rng.random_range(1..=3);
            for _ in 0..n {
                if let Some(i) = self.buyable_product() {
                    let qty = self
                        .rng
                        .random_range(1..=2)
                        .min(self.products[i].stock.unwrap_or(0));
                    if qty > 0 && !lines.iter().any(|l| l.0 == i) {
                        lines.push((i, qty));
                    }
                }
            }
        }
        if lines.is_empty() {
            if !cart.is_empty() {
                self.carts.insert(customer, cart);
            }
            return None;
        }
        let total = Money(
            lines
                .iter()
                .map(|&(i, q)| self.products[i].price.minor() * q as i64)
                .sum(),
        );
        let payment_id = self.next_id(Table::Payments);
        let shipment_id = self.next_id(Table::Shipments);
        let order_id = self.next_id(Table::Orders);
        let method = self.weighted(&PAYMENT_METHODS);
        let suffix: u32 = self.rng.random_range(0..0x10000);
        let payment = Payment {
            payment_id,
            payment_date: Some(now),
            payment_method: Some(method.to_string()),
            amount: Some(total),
            status: Some("pending".into()),
            transaction_id: Some(format!("TXN{payment_id:010}{suffix:04X}")),
            customer_id: Some(customer),
        };
        let (street, city, province, zip) = catalog::address(&mut self.rng);
        let shipment = Shipment {
            shipment_id,
            shipment_date: None,
            address: Some(street),
            city: Some(city.into()),
            state: Some(province.into()),
            country: Some("Vietnam".into()),
            zip_code: Some(zip),
            status: Some("preparing".into()),
            tracking_number: Some(format!("VN{shipment_id:010}SP")),
            customer_id: Some(customer),
            created_at: Some(now),
            updated_at: Some(now),
        };
        let order = Order {
            order_id,
            order_date: now,
            total_price: total,
            status: OrderStatus::Pending,
            customer_id: Some(customer),
            payment_id: Some(payment_id),
            shipment_id: Some(shipment_id),
        };
        let mut changes = vec![
            upsert(Op::Create, Row::Payment(Box::new(payment.clone()))),
            upsert(Op::Create, Row::Shipment(Box::new(shipment.clone()))),
            upsert(Op::Create, Row::Order(order.clone())),
        ];
        let mut items = Vec::new();
        for &(i, qty) in &lines {
            let item = OrderItem {
                order_item_id: self.next_id(Table::OrderItems),
                order_id: Some(order_id),
                product_id: Some(self.products[i].product_id),
                quantity: qty,
                price: self.products[i].price,
            };
            items.push((item.order_item_id, self.products[i].product_id, qty));
            changes.push(upsert(Op::Create, Row::OrderItem(item)));
        }
        for c in &cart {
            changes.push(delete(Table::Carts, c.cart_id));
        }
        for &(i, qty) in &lines {
            changes.push(self.adjust_stock(i, -qty, now));
        }
        let cancel = self.rng.random_bool(CANCEL_PROBABILITY);
        self.open.push(OpenOrder {
            order,
            payment,
            shipment,
            items,
            cancel,
            last_change: now,
        });
        Some((Action::PlaceOrder, Some(customer), changes))
    }

    fn adjust_stock(&mut self, i: usize, delta: i32, now: Micros) -> Change {
        let p = &mut self.products[i];
        let stock = (p.stock.unwrap_or(0) + delta).max(0);
        p.stock = Some(stock);
        p.updated_at = Some(now);
        let row = Row::Product(Box::new(p.clone()));
        if stock <= LOW_STOCK && !self.low_stock.contains(&i) {
            self.low_stock.push(i);
        }
        upsert(Op::Update, row)
    }

    fn weighted(&mut self, choices: &[(&'static str, f64)]) -> &'static str {
        let mut x: f64 = self.rng.random_range(0.0..1.0);
        for (c, w) in choices {
            if x < *w {
                return c;
            }
            x -= w;
        }
        choices.last().map(|c| c.0).unwrap_or("")
    }

    fn advance_order(&mut self, now: Micros) -> Option<Done> {
        // A few draws for an order whose last transition is earlier than `now` (with a
        // back-dated clock, sessions live at different times).
        let mut pick = None;
        for _ in 0..4 {
            if self.open.is_empty() {
                return None;
            }
            let k = self.rng.random_range(0..self.open.len());
            if self.open[k].last_change < now {
                pick = Some(k);
                break;
            }
        }
        let k = pick?;
        let o = &mut self.open[k];
        o.last_change = now;
        let customer = o.order.customer_id;
        let mut changes = Vec::new();
        let mut finished = false;
        let mut restore: Vec<(i64, i32)> = Vec::new();
        let action;
        match o.order.status {
            OrderStatus::Pending if o.cancel => {
                action = Action::CancelOrder;
                o.order.status = OrderStatus::Cancelled;
                o.payment.status = Some("failed".into());
                o.shipment.status = Some("returned".into());
                o.shipment.updated_at = Some(now);
                changes.push(upsert(Op::Update, Row::Order(o.order.clone())));
                changes.push(upsert(
                    Op::Update,
                    Row::Payment(Box::new(o.payment.clone())),
                ));
                changes.push(upsert(
                    Op::Update,
                    Row::Shipment(Box::new(o.shipment.clone())),
                ));
                restore = o.items.iter().map(|&(_, p, q)| (p, q)).collect();
                finished = true;
            }
            OrderStatus::Pending => {
                action = Action::AdvanceOrder;
                o.order.status = OrderStatus::Confirmed;
                o.payment.status = Some("completed".into());
                changes.push(upsert(Op::Update, Row::Order(o.order.clone())));
                changes.push(upsert(
                    Op::Update,
                    Row::Payment(Box::new(o.payment.clone())),
                ));
            }
            OrderStatus::Confirmed => {
                action = Action::AdvanceOrder;
                o.order.status = OrderStatus::Shipped;
                o.shipment.status = Some("shipped".into());
                o.shipment.shipment_date = Some(now);
                o.shipment.updated_at = Some(now);
                changes.push(upsert(Op::Update, Row::Order(o.order.clone())));
                changes.push(upsert(
                    Op::Update,
                    Row::Shipment(Box::new(o.shipment.clone())),
                ));
            }
            OrderStatus::Shipped => {
                action = Action::AdvanceOrder;
                o.order.status = OrderStatus::Delivered;
                o.shipment.status = Some("delivered".into());
                o.shipment.updated_at = Some(now);
                changes.push(upsert(Op::Update, Row::Order(o.order.clone())));
                changes.push(upsert(
                    Op::Update,
                    Row::Shipment(Box::new(o.shipment.clone())),
                ));
                finished = true;
            }
            // Loaded in a final state: nothing to do but forget it.
            OrderStatus::Delivered | OrderStatus::Cancelled => {
                action = Action::AdvanceOrder;
                finished = true;
            }
        }
        for (pid, qty) in restore {
            if let Some(&i) = self.product_pos.get(&pid) {
                changes.push(self.adjust_stock(i, qty, now));
            }
        }
        if finished {
            let o = self.open.swap_remove(k);
            self.closed.push_back(ClosedOrder {
                order_id: o.order.order_id,
                customer_id: o.order.customer_id,
                item_ids: o.items.iter().map(|i| i.0).collect(),
            });
            if self.closed.len() > CLOSED_MEMORY {
                self.closed.pop_front();
            }
        }
        if changes.is_empty() {
            return None;
        }
        Some((action, customer, changes))
    }

    fn delete_order(&mut self) -> Option<Done> {
        if self.closed.is_empty() {
            return None;
        }
        let k = self.rng.random_range(0..self.closed.len());
        let o = self.closed.swap_remove_back(k)?;
        let mut changes: Vec<Change> = o
            .item_ids
            .iter()
            .map(|&id| delete(Table::OrderItems, id))
            .collect();
        changes.push(delete(Table::Orders, o.order_id));
        Some((Action::DeleteOrder, o.customer_id, changes))
    }

    fn restock(&mut self, now: Micros) -> Option<Done> {
        if self.low_stock.is_empty() {
            return None;
        }
        let k = self.rng.random_range(0..self.low_stock.len());
        let i = self.low_stock.swap_remove(k);
        let add = self.rng.random_range(20..=100);
        let change = self.adjust_stock(i, add, now);
        Some((Action::Restock, None, vec![change]))
    }
}

/// (what was done, customer, changes)
type Done = (Action, Option<i64>, Vec<Change>);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const T0: i64 = 1_760_000_000 * Micros::PER_SECOND;

    fn run(seed: u64, steps: usize) -> Vec<Transaction> {
        let mut shop = Shop::new(ShopConfig {
            seed,
            ..ShopConfig::default()
        });
        (0..steps)
            .map(|i| shop.step(Micros(T0 + i as i64 * 1_000_000)))
            .collect()
    }

    #[test]
    fn same_seed_same_transactions() {
        assert_eq!(run(7, 2000), run(7, 2000));
        assert_ne!(run(7, 200), run(8, 200));
    }

    #[test]
    fn initial_load_matches_config_and_is_chunked() {
        let mut shop = Shop::new(ShopConfig {
            seed: 1,
            categories: 10,
            products: 300,
            customers: 25_000,
        });
        let txs = shop.initial_load();
        let mut counts: BTreeMap<Table, usize> = BTreeMap::new();
        for tx in &txs {
            assert!(tx.changes.len() <= LOAD_CHUNK);
            for c in &tx.changes {
                assert_eq!(c.op, Op::Read);
                *counts.entry(c.table).or_default() += 1;
            }
        }
        assert_eq!(counts[&Table::Categories], 10);
        assert_eq!(counts[&Table::Products], 300);
        assert_eq!(counts[&Table::Customers], 25_000);
        assert_eq!(txs.len(), 25_310_usize.div_ceil(LOAD_CHUNK));
    }

    #[test]
    fn lsns_and_tx_ids_strictly_increase() {
        let mut shop = Shop::new(ShopConfig::default());
        let mut txs = shop.initial_load();
        txs.extend(run_on(&mut shop, 500));
        let mut last = 0;
        let mut last_tx = 0;
        for tx in &txs {
            for c in &tx.changes {
                let l = c.lsn.map(|l| l.0).unwrap_or(0);
                assert!(l > last);
                last = l;
            }
            let commit = tx.lsn.map(|l| l.0).unwrap_or(0);
            assert!(commit > last);
            last = commit;
            let id = tx.tx_id.unwrap_or(0);
            assert!(id > last_tx);
            last_tx = id;
        }
    }

    fn run_on(shop: &mut Shop, steps: usize) -> Vec<Transaction> {
        (0..steps)
            .map(|i| shop.step(Micros(T0 + i as i64 * 1_000_000)))
            .collect()
    }

    /// Replays the changes into tables and checks the invariants the views rely on.
    #[test]
    fn orders_total_their_items_and_state_stays_consistent() {
        let mut shop = Shop::new(ShopConfig {
            seed: 3,
            categories: 10,
            products: 50,
            customers: 20,
        });
        let mut tables: BTreeMap<Table, BTreeMap<i64, Row>> = BTreeMap::new();
        let mut txs = shop.initial_load();
        txs.extend(run_on(&mut shop, 20_000));
        let mut actions = BTreeMap::new();
        for tx in &txs {
            assert!(!tx.changes.is_empty());
            for c in &tx.changes {
                let t = tables.entry(c.table).or_default();
                match &c.kind {
                    ChangeKind::Upsert { row, .. } => {
                        let existed = t.insert(row.key(), row.clone()).is_some();
                        assert_eq!(existed, c.op == Op::Update, "{c:?}");
                    }
                    ChangeKind::Delete { key } => {
                        assert!(t.remove(key).is_some(), "delete of a missing row {c:?}");
                    }
                    ChangeKind::Truncate => unreachable!(),
                }
            }
            // Every order in this transaction totals its items exactly.
            for c in &tx.changes {
                if let ChangeKind::Upsert {
                    row: Row::Order(o), ..
                } = &c.kind
                {
                    let sum: i64 = tables[&Table::OrderItems]
                        .values()
                        .filter_map(|r| match r {
                            Row::OrderItem(i) if i.order_id == Some(o.order_id) => {
                                Some(i.quantity as i64 * i.price.minor())
                            }
                            _ => None,
                        })
                        .sum();
                    assert_eq!(sum, o.total_price.minor(), "order {}", o.order_id);
                }
            }
        }
        let mut shop2 = Shop::new(ShopConfig {
            seed: 3,
            categories: 10,
            products: 50,
            customers: 20,
        });
        for i in 0..20_000 {
            let s = shop2.next_step(Micros(T0 + i * 1_000_000));
            *actions.entry(s.action).or_insert(0usize) += 1;
        }
        for a in Action::ALL {
            assert!(
                actions.get(&a).copied().unwrap_or(0) > 0,
                "{a:?} never happened"
            );
        }
        // Stock never negative; carts unique per (customer, product).
        for r in tables[&Table::Products].values() {
            if let Row::Product(p) = r {
                assert!(p.stock.unwrap_or(0) >= 0);
            }
        }
        let mut pairs = std::collections::BTreeSet::new();
        for r in tables[&Table::Carts].values() {
            if let Row::Cart(c) = r {
                assert!(pairs.insert((c.customer_id, c.product_id)));
            }
        }
        let statuses: std::collections::BTreeSet<_> = tables[&Table::Orders]
            .values()
            .filter_map(|r| match r {
                Row::Order(o) => Some(o.status),
                _ => None,
            })
            .collect();
        assert!(statuses.contains(&OrderStatus::Cancelled));
        assert!(statuses.contains(&OrderStatus::Delivered));
    }

    #[test]
    fn bursts_repeat_one_amount_quickly() {
        let mut shop = Shop::new(ShopConfig::default());
        // (customer, total) -> order dates
        let mut orders: BTreeMap<(i64, i64), Vec<i64>> = BTreeMap::new();
        for i in 0..30_000 {
            let tx = shop.step(Micros(T0 + i * 200_000)); // 5 steps per second
            for c in &tx.changes {
                if let ChangeKind::Upsert {
                    row: Row::Order(o), ..
                } = &c.kind
                {
                    if c.op == Op::Create {
                        orders
                            .entry((o.customer_id.unwrap_or(0), o.total_price.minor()))
                            .or_default()
                            .push(o.order_date.0);
                    }
                }
            }
        }
        // Some customer ordered the same amount 6+ times within two minutes.
        let bursts = orders
            .values()
            .filter(|d| {
                d.windows(6)
                    .any(|w| w[5] - w[0] <= 120 * Micros::PER_SECOND)
            })
            .count();
        assert!(bursts > 0);
    }

    #[test]
    fn shop_can_move_to_a_source_thread() {
        fn is_send<T: Send + 'static>() {}
        is_send::<Shop>();
    }

    #[test]
    fn shopper_weights_are_respected() {
        let mut shop = Shop::new(ShopConfig::default());
        let mut n = BTreeMap::new();
        for _ in 0..100_000 {
            *n.entry(shop.draw_action()).or_insert(0) += 1;
        }
        for (a, w) in SHOPPER_WEIGHTS {
            let f = n[&a] as f64 / 100_000.0;
            assert!((f - w).abs() < 0.01, "{a:?}: {f} vs {w}");
        }
    }
}
