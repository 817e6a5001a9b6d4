//! Upsert state: the last projected image per (table, primary key), turning source changes into
//! exact differential updates (−old, +new).
//!
//! Invariants, and why:
//! - A change is applied iff its LSN is strictly greater than the LSN stored for its key (or it
//!   carries none). LSNs are compared per key, never against a global high-water mark, because
//!   concurrent transactions can commit in another order than their LSNs. Equal LSN = the same
//!   event redelivered = no-op.
//! - Deletes keep a tombstone with their LSN, so a redelivered insert of a deleted row changes
//!   nothing. A truncate retracts every row of its table and remembers its LSN for the table.
//! - `before` images are never used: without `REPLICA IDENTITY FULL` they are absent or partial.
//! - Only the columns some view needs are stored (see [`crate::facts`]); an update that changes
//!   none of them emits nothing, so it costs nothing downstream.
//! - Columns the source marked unavailable (unchanged TOAST) keep their stored value.
//!
//! Owns the upsert maps; must not know about timely (it only produces update vectors).

use crate::facts::*;
use sources::{Change, ChangeKind, Lsn, Micros, Money, OrderStatus, Row, Table, Unavailable};
use std::collections::HashMap;

/// One table's upsert map, generic over the projected image.
///
/// `image: None` with a stored LSN is a tombstone: the row was deleted, or its projection is
/// unusable by every view (an item with a null order); either way it contributes nothing.
#[derive(Debug)]
pub struct Keyed<V> {
    rows: HashMap<i64, Slot<V>>,
    truncated_at: Option<Lsn>,
}

#[derive(Debug, Clone)]
struct Slot<V> {
    lsn: Option<Lsn>,
    image: Option<V>,
}

impl<V> Default for Keyed<V> {
    fn default() -> Self {
        Keyed {
            rows: HashMap::new(),
            truncated_at: None,
        }
    }
}

/// The effect of one applied change on a table's projected contents.
#[derive(Debug, PartialEq, Eq)]
pub struct Delta<V> {
    pub old: Option<V>,
    pub new: Option<V>,
}

impl<V: Clone + PartialEq> Keyed<V> {
    /// Whether a change with this LSN for `key` is newer than what is stored.
    fn is_newer(&self, key: i64, lsn: Option<Lsn>) -> bool {
        let Some(lsn) = lsn else { return true };
        if self.truncated_at.is_some_and(|t| lsn <= t) {
            return false;
        }
        match self.rows.get(&key).and_then(|s| s.lsn) {
            Some(stored) => lsn > stored,
            None => true,
        }
    }

    pub fn get(&self, key: i64) -> Option<&V> {
        self.rows.get(&key).and_then(|s| s.image.as_ref())
    }

    /// Stores `image` for `key` if the change is newer; returns the projected delta when the
    /// visible image changed.
    fn put(&mut self, key: i64, lsn: Option<Lsn>, image: Option<V>) -> Option<Delta<V>> {
        let slot = self.rows.entry(key).or_insert(Slot {
            lsn: None,
            image: None,
        });
        if lsn.is_some() {
            slot.lsn = lsn;
        }
        if slot.image == image {
            if slot.image.is_none() && slot.lsn.is_none() {
                self.rows.remove(&key);
            }
            return None;
        }
        let old = std::mem::replace(&mut slot.image, image.clone());
        if slot.image.is_none() && slot.lsn.is_none() {
            self.rows.remove(&key);
        }
        Some(Delta { old, new: image })
    }

    /// A truncate acts as a delete of every key at its LSN: rows whose stored change is newer
    /// survive (out-of-order delivery), and a redelivered truncate (LSN not above the last
    /// one) changes nothing. Returns the images removed.
    fn truncate(&mut self, lsn: Option<Lsn>) -> Vec<(i64, V)> {
        if let (Some(l), Some(t)) = (lsn, self.truncated_at) {
            if l <= t {
                return Vec::new();
            }
        }
        if lsn.is_some() {
            self.truncated_at = lsn;
        }
        let mut out = Vec::new();
        self.rows.retain(|k, s| {
            let newer = matches!((s.lsn, lsn), (Some(stored), Some(l)) if stored >= l);
            if !newer {
                if let Some(v) = s.image.take() {
                    out.push((*k, v));
                }
            }
            newer
        });
        out.sort_by_key(|(k, _)| *k);
        out
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (i64, &V)> {
        self.rows
            .iter()
            .filter_map(|(k, s)| s.image.as_ref().map(|v| (*k, v)))
    }
}

/// The projected image of an `orders` row: what views need, including the status bit that
/// decides liveness. Cancelled orders are stored (to know the date for retention and to
/// retract on un-cancel) but are absent from `live_orders`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct OrderImage {
    pub order_date: Micros,
    pub total: Money,
    pub customer_id: Option<i64>,
    pub cancelled: bool,
}

impl OrderImage {
    pub fn live(&self) -> Option<LiveOrder> {
        (!self.cancelled).then_some(LiveOrder {
            order_date: self.order_date,
            total: self.total,
            customer_id: self.customer_id,
        })
    }
}

/// A projected image that keeps its nullable key columns even when they are NULL, so that a
/// later change marking such a column unavailable keeps the stored NULL (not the placeholder);
/// `usable` is what views see (`None` when a NULL makes the row count for nothing).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Raw<V> {
    pub a: Option<i64>,
    pub b: Option<i64>,
    pub usable: Option<V>,
}

fn usable_delta<V: Copy + PartialEq>(d: Delta<Raw<V>>) -> Option<Delta<V>> {
    let old = d.old.and_then(|r| r.usable);
    let new = d.new.and_then(|r| r.usable);
    (old != new).then_some(Delta { old, new })
}

/// A projected change, ready for the dataflow inputs.
#[derive(Debug, PartialEq, Eq)]
pub enum Projected {
    Order(i64, Delta<OrderImage>),
    Item(i64, Delta<Item>),
    Product(i64, Delta<ProductFacts>),
    Cart(i64, Delta<Interaction>),
    Wishlist(i64, Delta<Interaction>),
    View(i64, Delta<ViewEvent>),
}

/// Upsert state of every table some view reads. Tables no view reads (customers, categories,
/// payments, shipments) are not stored at all: they cannot change a view.
#[derive(Debug, Default)]
pub struct UpsertState {
    pub orders: Keyed<OrderImage>,
    pub items: Keyed<Raw<Item>>,
    pub products: Keyed<ProductFacts>,
    pub carts: Keyed<Raw<Interaction>>,
    pub wishlists: Keyed<Raw<Interaction>>,
    pub views: Keyed<Raw<ViewEvent>>,
}

/// Column positions (SPEC §1 order) of the projected columns, for unavailable-value handling.
mod col {
    pub const ORDER_DATE: usize = 1;
    pub const ORDER_TOTAL: usize = 2;
    pub const ORDER_STATUS: usize = 3;
    pub const ORDER_CUSTOMER: usize = 4;
    pub const ITEM_ORDER: usize = 1;
    pub const ITEM_PRODUCT: usize = 2;
    pub const ITEM_QTY: usize = 3;
    pub const ITEM_PRICE: usize = 4;
    pub const PRODUCT_CATEGORY: usize = 6;
    pub const PRODUCT_ACTIVE: usize = 7;
    pub const INTERACTION_CUSTOMER: usize = 1;
    pub const INTERACTION_PRODUCT: usize = 2;
    pub const VIEW_CUSTOMER: usize = 1;
    pub const VIEW_PRODUCT: usize = 2;
    pub const VIEW_CATEGORY: usize = 3;
}

/// `new` unless the column was unavailable and a stored value exists.
fn keep<T: Copy>(u: Unavailable, column: usize, new: T, stored: Option<T>) -> T {
    match stored {
        Some(s) if u.contains(column) => s,
        _ => new,
    }
}

impl UpsertState {
    /// Applies one change; returns its projected effect, if any.
    pub fn apply(&mut self, change: &Change) -> Vec<Projected> {
        let lsn = change.lsn;
        match &change.kind {
            ChangeKind::Truncate => self.truncate(change.table, lsn),
            ChangeKind::Delete { key } => {
                self.delete(change.table, *key, lsn).into_iter().collect()
            }
            ChangeKind::Upsert { row, unavailable } => {
                self.upsert(row, *unavailable, lsn).into_iter().collect()
            }
        }
    }

    fn delete(&mut self, table: Table, key: i64, lsn: Option<Lsn>) -> Option<Projected> {
        macro_rules! del {
            ($map:expr, $variant:ident) => {{
                if !$map.is_newer(key, lsn) {
                    return None;
                }
                $map.put(key, lsn, None)
                    .map(|d| Projected::$variant(key, d))
            }};
        }
        macro_rules! del_raw {
            ($map:expr, $variant:ident) => {{
                if !$map.is_newer(key, lsn) {
                    return None;
                }
                $map.put(key, lsn, None)
                    .and_then(usable_delta)
                    .map(|d| Projected::$variant(key, d))
            }};
        }
        match table {
            Table::Orders => del!(self.orders, Order),
            Table::Products => del!(self.products, Product),
            Table::OrderItems => del_raw!(self.items, Item),
            Table::Carts => del_raw!(self.carts, Cart),
            Table::Wishlists => del_raw!(self.wishlists, Wishlist),
            Table::ProductViews => del_raw!(self.views, View),
            _ => None,
        }
    }

    fn upsert(&mut self, row: &Row, u: Unavailable, lsn: Option<Lsn>) -> Option<Projected> {
        let key = row.key();
        match row {
            Row::Order(o) => {
                if !self.orders.is_newer(key, lsn) {
                    return None;
                }
                let s = self.orders.get(key).copied();
                let image = OrderImage {
                    order_date: keep(u, col::ORDER_DATE, o.order_date, s.map(|s| s.order_date)),
                    total: keep(u, col::ORDER_TOTAL, o.total_price, s.map(|s| s.total)),
                    customer_id: keep(
                        u,
                        col::ORDER_CUSTOMER,
                        o.customer_id,
                        s.map(|s| s.customer_id),
                    ),
                    cancelled: keep(
                        u,
                        col::ORDER_STATUS,
                        o.status == OrderStatus::Cancelled,
                        s.map(|s| s.cancelled),
                    ),
                };
                self.orders
                    .put(key, lsn, Some(image))
                    .map(|d| Projected::Order(key, d))
            }
            Row::OrderItem(i) => {
                if !self.items.is_newer(key, lsn) {
                    return None;
                }
                let s = self.items.get(key).copied();
                let order_id = keep(u, col::ITEM_ORDER, i.order_id, s.map(|s| s.a));
                let product_id = keep(u, col::ITEM_PRODUCT, i.product_id, s.map(|s| s.b));
                let su = s.and_then(|s| s.usable);
                let quantity = keep(u, col::ITEM_QTY, i.quantity as i64, su.map(|s| s.quantity));
                let price = keep(u, col::ITEM_PRICE, i.price, su.map(|s| s.price));
                let usable = match (order_id, product_id) {
                    (Some(order_id), Some(product_id)) => Some(Item {
                        order_id,
                        product_id,
                        quantity,
                        price,
                    }),
                    _ => None,
                };
                let image = Raw {
                    a: order_id,
                    b: product_id,
                    usable,
                };
                self.items
                    .put(key, lsn, Some(image))
                    .and_then(usable_delta)
                    .map(|d| Projected::Item(key, d))
            }
            Row::Product(p) => {
                if !self.products.is_newer(key, lsn) {
                    return None;
                }
                let s = self.products.get(key).copied();
                let image = ProductFacts {
                    category_id: keep(
                        u,
                        col::PRODUCT_CATEGORY,
                        p.category_id,
                        s.map(|s| s.category_id),
                    ),
                    active: keep(
                        u,
                        col::PRODUCT_ACTIVE,
                        p.is_active != Some(false),
                        s.map(|s| s.active),
                    ),
                };
                self.products
                    .put(key, lsn, Some(image))
                    .map(|d| Projected::Product(key, d))
            }
            Row::Cart(c) => {
                let image =
                    interaction(u, c.customer_id, c.product_id, self.carts.get(key).copied());
                if !self.carts.is_newer(key, lsn) {
                    return None;
                }
                self.carts
                    .put(key, lsn, Some(image))
                    .and_then(usable_delta)
                    .map(|d| Projected::Cart(key, d))
            }
            Row::Wishlist(w) => {
                let image = interaction(
                    u,
                    w.customer_id,
                    w.product_id,
                    self.wishlists.get(key).copied(),
                );
                if !self.wishlists.is_newer(key, lsn) {
                    return None;
                }
                self.wishlists
                    .put(key, lsn, Some(image))
                    .and_then(usable_delta)
                    .map(|d| Projected::Wishlist(key, d))
            }
            Row::ProductView(v) => {
                if !self.views.is_newer(key, lsn) {
                    return None;
                }
                let s = self.views.get(key).copied();
                let customer = keep(u, col::VIEW_CUSTOMER, v.customer_id, s.map(|s| s.a));
                let product_id = keep(u, col::VIEW_PRODUCT, v.product_id, s.map(|s| s.b));
                let category_id = keep(
                    u,
                    col::VIEW_CATEGORY,
                    v.category_id,
                    s.map(|s| s.usable.and_then(|x| x.category_id)),
                );
                let usable = customer.map(|customer_id| ViewEvent {
                    customer_id,
                    product_id,
                    category_id,
                });
                let image = Raw {
                    a: customer,
                    b: product_id,
                    usable,
                };
                self.views
                    .put(key, lsn, Some(image))
                    .and_then(usable_delta)
                    .map(|d| Projected::View(key, d))
            }
            Row::Category(_) | Row::Customer(_) | Row::Payment(_) | Row::Shipment(_) => None,
        }
    }

    fn truncate(&mut self, table: Table, lsn: Option<Lsn>) -> Vec<Projected> {
        macro_rules! trunc {
            ($map:expr, $variant:ident) => {
                $map.truncate(lsn)
                    .into_iter()
                    .filter_map(|(k, raw)| {
                        raw.usable.map(|v| {
                            Projected::$variant(
                                k,
                                Delta {
                                    old: Some(v),
                                    new: None,
                                },
                            )
                        })
                    })
                    .collect()
            };
        }
        match table {
            Table::Orders => self
                .orders
                .truncate(lsn)
                .into_iter()
                .map(|(k, v)| {
                    Projected::Order(
                        k,
                        Delta {
                            old: Some(v),
                            new: None,
                        },
                    )
                })
                .collect(),
            Table::Products => self
                .products
                .truncate(lsn)
                .into_iter()
                .map(|(k, v)| {
                    Projected::Product(
                        k,
                        Delta {
                            old: Some(v),
                            new: None,
                        },
                    )
                })
                .collect(),
            Table::OrderItems => trunc!(self.items, Item),
            Table::Carts => trunc!(self.carts, Cart),
            Table::Wishlists => trunc!(self.wishlists, Wishlist),
            Table::ProductViews => trunc!(self.views, View),
            _ => Vec::new(),
        }
    }
}

fn interaction(
    u: Unavailable,
    customer: Option<i64>,
    product: Option<i64>,
    s: Option<Raw<Interaction>>,
) -> Raw<Interaction> {
    let customer = keep(u, col::INTERACTION_CUSTOMER, customer, s.map(|s| s.a));
    let product = keep(u, col::INTERACTION_PRODUCT, product, s.map(|s| s.b));
    let usable = match (customer, product) {
        (Some(customer_id), Some(product_id)) => Some(Interaction {
            customer_id,
            product_id,
        }),
        _ => None,
    };
    Raw {
        a: customer,
        b: product,
        usable,
    }
}
