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
use std::hash::{BuildHasherDefault, Hasher};

/// One table's upsert map, generic over the projected image.
///
/// `image: None` with a stored LSN is a tombstone: the row was deleted, or its projection is
/// unusable by every view (an item with a null order); either way it contributes nothing.
///
/// Layout, for memory (measured with `benches --bin upsert_mem`): keys are grouped in pages of
/// 64 consecutive keys, and a page stores only its present slots, densely, in key order, found
/// by a presence bitmask. Primary keys from serial columns are dense, so a page is usually
/// full and costs about one slot per row, instead of a hash-table entry per row at 50–100 %
/// load. Whether a slot has an LSN is a page bitmask too, so a slot is the LSN and the image.
#[derive(Debug)]
pub struct Keyed<V> {
    pages: HashMap<i64, Page<V>, BuildHasherDefault<PageHasher>>,
    /// Stored slots (rows and tombstones).
    len: usize,
    truncated_at: Option<Lsn>,
}

/// Keys per page: one bit each in a `u64` mask.
const PAGE_BITS: u32 = 6;
const PAGE_KEYS: usize = 1 << PAGE_BITS;

/// Page number and bit of a key (floor division, so negative keys work too).
fn split(key: i64) -> (i64, u32) {
    (key >> PAGE_BITS, (key & (PAGE_KEYS as i64 - 1)) as u32)
}

fn join(page: i64, bit: u32) -> i64 {
    (page << PAGE_BITS) | bit as i64
}

#[derive(Debug)]
struct Page<V> {
    /// Bit `b` set: key `page * 64 + b` has a slot.
    present: u64,
    /// Bit `b` set: that slot's `lsn` is meaningful (a change without LSN leaves it unset).
    has_lsn: u64,
    /// The present slots in key order: slot of bit `b` is at the number of present bits below.
    slots: Vec<Slot<V>>,
}

#[derive(Debug, Clone)]
struct Slot<V> {
    lsn: u64,
    image: Option<V>,
}

impl<V> Page<V> {
    fn new() -> Self {
        Page {
            present: 0,
            has_lsn: 0,
            slots: Vec::new(),
        }
    }

    /// The slot index of `bit`, if present.
    fn find(&self, bit: u32) -> Option<usize> {
        let m = 1u64 << bit;
        (self.present & m != 0).then(|| (self.present & (m - 1)).count_ones() as usize)
    }

    fn lsn(&self, bit: u32, i: usize) -> Option<Lsn> {
        (self.has_lsn & (1u64 << bit) != 0).then(|| Lsn(self.slots[i].lsn))
    }

    fn set_lsn(&mut self, bit: u32, i: usize, lsn: Option<Lsn>) {
        match lsn {
            Some(l) => {
                self.has_lsn |= 1u64 << bit;
                self.slots[i].lsn = l.0;
            }
            None => {
                self.has_lsn &= !(1u64 << bit);
                self.slots[i].lsn = 0;
            }
        }
    }

    fn insert(&mut self, bit: u32, lsn: Option<Lsn>, image: Option<V>) {
        let m = 1u64 << bit;
        let i = (self.present & (m - 1)).count_ones() as usize;
        if self.slots.len() == self.slots.capacity() {
            // Exact growth by half, capped at a full page: a full page holds no spare
            // capacity, and a sparse page (keys far apart) stays small.
            let len = self.slots.len();
            self.slots
                .reserve_exact((len / 2).clamp(1, PAGE_KEYS.saturating_sub(len).max(1)));
        }
        self.slots.insert(i, Slot { lsn: 0, image });
        self.present |= m;
        self.set_lsn(bit, i, lsn);
    }

    fn remove(&mut self, bit: u32, i: usize) {
        self.slots.remove(i);
        self.present &= !(1u64 << bit);
        self.has_lsn &= !(1u64 << bit);
    }
}

/// Hashes page numbers (consecutive integers) with one multiply: std's SipHash protects
/// against chosen keys, which primary keys from the source database are not, and costs more.
#[derive(Default)]
pub(crate) struct PageHasher(u64);

impl Hasher for PageHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_i64(&mut self, n: i64) {
        self.write_u64(n as u64);
    }
    fn write_u64(&mut self, n: u64) {
        // Folded 128-bit multiply: every input bit reaches the low bits (bucket index) and
        // the high bits (hashbrown's tag byte).
        let m = u128::from(self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
        self.0 = (m as u64) ^ ((m >> 64) as u64);
    }
}

impl<V> Default for Keyed<V> {
    fn default() -> Self {
        Keyed {
            pages: HashMap::default(),
            len: 0,
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
    /// The stored LSN of `key`, if any.
    fn stored_lsn(&self, key: i64) -> Option<Lsn> {
        let (p, bit) = split(key);
        let page = self.pages.get(&p)?;
        page.find(bit).and_then(|i| page.lsn(bit, i))
    }

    /// Whether a change with this LSN for `key` is newer than what is stored.
    fn is_newer(&self, key: i64, lsn: Option<Lsn>) -> bool {
        let Some(lsn) = lsn else { return true };
        if self.truncated_at.is_some_and(|t| lsn <= t) {
            return false;
        }
        match self.stored_lsn(key) {
            Some(stored) => lsn > stored,
            None => true,
        }
    }

    pub fn get(&self, key: i64) -> Option<&V> {
        let (p, bit) = split(key);
        let page = self.pages.get(&p)?;
        page.find(bit).and_then(|i| page.slots[i].image.as_ref())
    }

    /// Stores `image` for `key` if the change is newer; returns the projected delta when the
    /// visible image changed. A slot with neither image nor LSN is not kept.
    fn put(&mut self, key: i64, lsn: Option<Lsn>, image: Option<V>) -> Option<Delta<V>> {
        let (p, bit) = split(key);
        let page = self.pages.entry(p).or_insert_with(Page::new);
        let found = page.find(bit);
        let lsn = lsn.or_else(|| found.and_then(|i| page.lsn(bit, i)));
        let keep = image.is_some() || lsn.is_some();
        let delta = match found {
            Some(i) => {
                page.set_lsn(bit, i, lsn);
                let changed = page.slots[i].image != image;
                let old = if changed {
                    std::mem::replace(&mut page.slots[i].image, image.clone())
                } else {
                    None
                };
                if !keep {
                    page.remove(bit, i);
                    self.len -= 1;
                }
                changed.then_some(Delta { old, new: image })
            }
            None => {
                let delta = image.is_some().then(|| Delta {
                    old: None,
                    new: image.clone(),
                });
                if keep {
                    page.insert(bit, lsn, image);
                    self.len += 1;
                }
                delta
            }
        };
        if page.present == 0 {
            self.pages.remove(&p);
        }
        delta
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
        let mut len = 0;
        self.pages.retain(|&p, page| {
            let mut kept = Page::new();
            let slots = std::mem::take(&mut page.slots);
            let mut bits = page.present;
            for (i, s) in slots.into_iter().enumerate() {
                let bit = bits.trailing_zeros();
                bits &= bits - 1;
                let stored = (page.has_lsn & (1u64 << bit) != 0).then_some(Lsn(s.lsn));
                let newer = matches!((stored, lsn), (Some(stored), Some(l)) if stored >= l);
                debug_assert_eq!(page.find(bit), Some(i));
                if newer {
                    kept.insert(bit, stored, s.image);
                } else if let Some(v) = s.image {
                    out.push((join(p, bit), v));
                }
            }
            len += kept.slots.len();
            *page = kept;
            page.present != 0
        });
        self.len = len;
        out.sort_by_key(|(k, _)| *k);
        out
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = (i64, &V)> {
        self.pages.iter().flat_map(|(&p, page)| {
            let mut bits = page.present;
            page.slots.iter().filter_map(move |s| {
                let bit = bits.trailing_zeros();
                bits &= bits.wrapping_sub(1);
                s.image.as_ref().map(|v| (join(p, bit), v))
            })
        })
    }
}

/// The projected image of an `orders` row: what views need, including the status bit that
/// decides liveness. Cancelled orders are stored (to know the date for retention and to
/// retract on un-cancel) but are absent from `live_orders`.
///
/// Packed into 32 bytes (one per order): the customer's NULL and the cancelled bit share one
/// byte, instead of an `Option<i64>` and a `bool` taking 16 more.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct OrderImage {
    order_date: Micros,
    total: Money,
    /// 0 and meaningless when `flags` says the customer is NULL.
    customer_id: i64,
    flags: OrderFlags,
}

/// Whether the order is cancelled and whether its customer is NULL.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u8)]
enum OrderFlags {
    Live,
    LiveNoCustomer,
    Cancelled,
    CancelledNoCustomer,
}

impl OrderImage {
    pub fn new(
        order_date: Micros,
        total: Money,
        customer_id: Option<i64>,
        cancelled: bool,
    ) -> Self {
        let flags = match (cancelled, customer_id.is_some()) {
            (false, true) => OrderFlags::Live,
            (false, false) => OrderFlags::LiveNoCustomer,
            (true, true) => OrderFlags::Cancelled,
            (true, false) => OrderFlags::CancelledNoCustomer,
        };
        OrderImage {
            order_date,
            total,
            customer_id: customer_id.unwrap_or(0),
            flags,
        }
    }

    pub fn order_date(&self) -> Micros {
        self.order_date
    }

    pub fn total(&self) -> Money {
        self.total
    }

    pub fn customer_id(&self) -> Option<i64> {
        matches!(self.flags, OrderFlags::Live | OrderFlags::Cancelled).then_some(self.customer_id)
    }

    pub fn cancelled(&self) -> bool {
        matches!(
            self.flags,
            OrderFlags::Cancelled | OrderFlags::CancelledNoCustomer
        )
    }

    pub fn live(&self) -> Option<LiveOrder> {
        (!self.cancelled()).then_some(LiveOrder {
            order_date: self.order_date,
            total: self.total,
            customer_id: self.customer_id(),
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

/// A stored image of which views see only a projection, absent when a NULL column makes the
/// row count for nothing.
pub trait Stored: Copy + PartialEq {
    type Usable: Copy + PartialEq;
    fn usable(&self) -> Option<Self::Usable>;
}

impl<V: Copy + PartialEq> Stored for Raw<V> {
    type Usable = V;
    fn usable(&self) -> Option<V> {
        self.usable
    }
}

/// The stored image of an `order_items` row, packed into 32 bytes: items are most of the
/// upsert state (two to three per order), and the [`Raw`] layout (two `Option<i64>` beside an
/// `Option<Item>`) took 72. NULL `order_id` / `product_id` are kept as such (a later change
/// marking them unavailable must keep the NULL), in `nulls`, whose spare values also give
/// `Option<ItemImage>` its niche.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ItemImage {
    order_id: i64,
    product_id: i64,
    price: Money,
    quantity: i32,
    nulls: ItemNulls,
}

/// Which of an item's key columns are NULL (their stored value is then 0 and meaningless).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u8)]
enum ItemNulls {
    Neither,
    Order,
    Product,
    Both,
}

impl ItemImage {
    pub fn new(
        order_id: Option<i64>,
        product_id: Option<i64>,
        quantity: i32,
        price: Money,
    ) -> Self {
        let nulls = match (order_id, product_id) {
            (Some(_), Some(_)) => ItemNulls::Neither,
            (None, Some(_)) => ItemNulls::Order,
            (Some(_), None) => ItemNulls::Product,
            (None, None) => ItemNulls::Both,
        };
        ItemImage {
            order_id: order_id.unwrap_or(0),
            product_id: product_id.unwrap_or(0),
            price,
            quantity,
            nulls,
        }
    }

    pub fn order_id(&self) -> Option<i64> {
        matches!(self.nulls, ItemNulls::Neither | ItemNulls::Product).then_some(self.order_id)
    }

    pub fn product_id(&self) -> Option<i64> {
        matches!(self.nulls, ItemNulls::Neither | ItemNulls::Order).then_some(self.product_id)
    }

    pub fn quantity(&self) -> i32 {
        self.quantity
    }

    pub fn price(&self) -> Money {
        self.price
    }
}

impl Stored for ItemImage {
    type Usable = Item;
    /// Usable when it names both its order and its product.
    fn usable(&self) -> Option<Item> {
        (self.nulls == ItemNulls::Neither).then_some(Item {
            order_id: self.order_id,
            product_id: self.product_id,
            quantity: i64::from(self.quantity),
            price: self.price,
        })
    }
}

fn usable_delta<S: Stored>(d: Delta<S>) -> Option<Delta<S::Usable>> {
    let old = d.old.and_then(|r| r.usable());
    let new = d.new.and_then(|r| r.usable());
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
    pub items: Keyed<ItemImage>,
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
                let image = OrderImage::new(
                    keep(u, col::ORDER_DATE, o.order_date, s.map(|s| s.order_date())),
                    keep(u, col::ORDER_TOTAL, o.total_price, s.map(|s| s.total())),
                    keep(
                        u,
                        col::ORDER_CUSTOMER,
                        o.customer_id,
                        s.map(|s| s.customer_id()),
                    ),
                    keep(
                        u,
                        col::ORDER_STATUS,
                        o.status == OrderStatus::Cancelled,
                        s.map(|s| s.cancelled()),
                    ),
                );
                self.orders
                    .put(key, lsn, Some(image))
                    .map(|d| Projected::Order(key, d))
            }
            Row::OrderItem(i) => {
                if !self.items.is_newer(key, lsn) {
                    return None;
                }
                let s = self.items.get(key).copied();
                let image = ItemImage::new(
                    keep(u, col::ITEM_ORDER, i.order_id, s.map(|s| s.order_id())),
                    keep(
                        u,
                        col::ITEM_PRODUCT,
                        i.product_id,
                        s.map(|s| s.product_id()),
                    ),
                    keep(u, col::ITEM_QTY, i.quantity, s.map(|s| s.quantity())),
                    keep(u, col::ITEM_PRICE, i.price, s.map(|s| s.price())),
                );
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
                        raw.usable().map(|v| {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Orders and items are nearly all of the upsert state: their slots must stay packed (an
    /// LSN and a 32-byte image, the `Option` in the image's spare flag values).
    #[test]
    fn order_and_item_slots_stay_packed() {
        assert_eq!(std::mem::size_of::<Slot<ItemImage>>(), 40);
        assert_eq!(std::mem::size_of::<Slot<OrderImage>>(), 40);
    }

    #[test]
    fn packed_images_keep_their_nulls() {
        for order in [None, Some(-3), Some(0)] {
            for product in [None, Some(0), Some(i64::MAX)] {
                let i = ItemImage::new(order, product, -2, Money(7));
                assert_eq!((i.order_id(), i.product_id()), (order, product));
                assert_eq!((i.quantity(), i.price()), (-2, Money(7)));
                let usable = i.usable();
                assert_eq!(usable.is_some(), order.is_some() && product.is_some());
                if let Some(u) = usable {
                    assert_eq!(
                        (u.order_id, u.product_id, u.quantity),
                        (order.unwrap(), product.unwrap(), -2)
                    );
                }
            }
        }
        for customer in [None, Some(0), Some(5)] {
            for cancelled in [false, true] {
                let o = OrderImage::new(Micros(1), Money(2), customer, cancelled);
                assert_eq!((o.customer_id(), o.cancelled()), (customer, cancelled));
                assert_eq!(o.live().is_none(), cancelled);
                assert_eq!(
                    o.live().map(|l| l.customer_id),
                    (!cancelled).then_some(customer)
                );
            }
        }
    }

    /// The paged map against a plain map with the same rules (the layout before paging), over
    /// a deterministic random mix of puts, tombstones, LSN-less changes and truncates, with
    /// negative, dense and far-apart keys.
    #[test]
    fn paged_map_matches_a_plain_map() {
        #[derive(Default)]
        struct Model {
            rows: HashMap<i64, (Option<Lsn>, Option<u32>)>,
            truncated_at: Option<Lsn>,
        }
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut keyed: Keyed<u32> = Keyed::default();
        let mut model = Model::default();
        for step in 0..20_000u64 {
            let r = next();
            let key = match r % 4 {
                0 => (r >> 8) as i64 % 200 - 100,
                1 => (r >> 8) as i64 % 5_000,
                2 => ((r >> 8) as i64 % 50) * 1_000_003,
                _ => i64::MIN + (r >> 8) as i64 % 70,
            };
            let lsn = (r >> 40) % 5 != 0;
            let lsn = lsn.then_some(Lsn(step / 3 + (r >> 50) % 40));
            if r % 997 == 0 {
                let got = keyed.truncate(lsn);
                let mut want = Vec::new();
                let skip = matches!((lsn, model.truncated_at), (Some(l), Some(t)) if l <= t);
                if !skip {
                    if lsn.is_some() {
                        model.truncated_at = lsn;
                    }
                    model.rows.retain(|k, (s, img)| {
                        let newer = matches!((*s, lsn), (Some(s), Some(l)) if s >= l);
                        if !newer {
                            want.extend(img.map(|v| (*k, v)));
                        }
                        newer
                    });
                    want.sort();
                }
                assert_eq!(got, want, "truncate at step {step}");
                continue;
            }
            let image = (r % 7 != 0).then_some((r >> 20) as u32 % 4);
            let newer = keyed.is_newer(key, lsn);
            let model_newer = match lsn {
                None => true,
                Some(l) if model.truncated_at.is_some_and(|t| l <= t) => false,
                Some(l) => model.rows.get(&key).and_then(|s| s.0).is_none_or(|s| l > s),
            };
            assert_eq!(newer, model_newer, "is_newer at step {step}");
            if !newer {
                continue;
            }
            let got = keyed.put(key, lsn, image);
            let slot = model.rows.entry(key).or_insert((None, None));
            if lsn.is_some() {
                slot.0 = lsn;
            }
            let want = (slot.1 != image).then(|| Delta {
                old: std::mem::replace(&mut slot.1, image),
                new: image,
            });
            if slot.0.is_none() && slot.1.is_none() {
                model.rows.remove(&key);
            }
            assert_eq!(got, want, "put at step {step}");
            assert_eq!(
                keyed.get(key),
                model.rows.get(&key).and_then(|s| s.1.as_ref())
            );
        }
        assert_eq!(keyed.len(), model.rows.len());
        let mut got: Vec<(i64, u32)> = keyed.iter().map(|(k, v)| (k, *v)).collect();
        let mut want: Vec<(i64, u32)> = model
            .rows
            .iter()
            .filter_map(|(k, s)| s.1.map(|v| (*k, v)))
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want);
        assert!(!got.is_empty());
    }
}
