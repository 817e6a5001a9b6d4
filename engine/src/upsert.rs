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
/// load. Whether a slot has an LSN is a page bitmask too. A slot is an LSN, usually as a 32-bit
/// offset from the page's base ([`Lsns`]), and the image [packed](Pack) (ids and prices that fit
/// 32 bits: nearly every row); an image that does not pack is kept whole in `wide`, a side
/// table, and the page marks its slot.
#[derive(Debug)]
pub struct Keyed<V: Pack> {
    pages: HashMap<i64, Page<V::Packed>, BuildHasherDefault<PageHasher>>,
    /// The images that did not pack, by key (their slot's image is `None`, its `wide` bit set).
    wide: HashMap<i64, V>,
    /// Stored slots (rows and tombstones).
    len: usize,
    truncated_at: Option<Lsn>,
}

/// An image as [`Keyed`] stores it: `pack` gives a smaller form when the values fit (`None`
/// when they do not), and `unpack` restores exactly the image packed.
pub trait Pack: Copy + PartialEq {
    type Packed: Copy + std::fmt::Debug;
    fn pack(&self) -> Option<Self::Packed>;
    fn unpack(p: Self::Packed) -> Self;
}

/// Images stored as they are (small tables, or already small).
macro_rules! pack_as_is {
    ($($t:ty),*) => {$(
        impl Pack for $t {
            type Packed = $t;
            fn pack(&self) -> Option<$t> {
                Some(*self)
            }
            fn unpack(p: $t) -> $t {
                p
            }
        }
    )*};
}
pack_as_is!(ProductFacts, Raw<Interaction>, Raw<ViewEvent>);

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
struct Page<P> {
    /// Bit `b` set: key `page * 64 + b` has a slot.
    present: u64,
    /// Bit `b` set: that slot's LSN is meaningful (a change without LSN leaves it unset).
    has_lsn: u64,
    /// Bit `b` set: that slot's image did not pack and is in [`Keyed::wide`].
    wide: u64,
    /// The present slots' LSNs and images, in key order: the slot of bit `b` is at the number
    /// of present bits below `b`.
    lsns: Lsns,
    images: Vec<Option<P>>,
}

/// A page's LSNs: 32-bit offsets from a base while they fit, else whole. The rows of a page
/// (64 consecutive keys) are written close together in the log, so nearly every page stays
/// narrow; one far-off LSN (a row updated much later) widens its page only.
#[derive(Debug)]
enum Lsns {
    /// `base` is set by the page's first LSN; slots without an LSN hold 0.
    Narrow {
        base: Option<u64>,
        offsets: Vec<u32>,
    },
    Wide(Vec<u64>),
}

/// How far below the first LSN of a page the base is put, so that rows committed a little out
/// of LSN order (concurrent transactions) still fit.
const LSN_SLACK: u64 = 1 << 24;

impl Lsns {
    fn get(&self, i: usize) -> u64 {
        match self {
            Lsns::Narrow { base, offsets } => base.unwrap_or(0) + u64::from(offsets[i]),
            Lsns::Wide(v) => v[i],
        }
    }

    /// What to store for `lsn` (`None`: no LSN), widening the page if it does not fit.
    fn encode(&mut self, lsn: Option<u64>) -> u64 {
        let Some(lsn) = lsn else { return 0 };
        if let Lsns::Narrow { base, offsets } = self {
            let b = *base.get_or_insert(lsn.saturating_sub(LSN_SLACK));
            match lsn.checked_sub(b).and_then(|o| u32::try_from(o).ok()) {
                Some(o) => return u64::from(o),
                None => {
                    let mut v = Vec::with_capacity(offsets.capacity());
                    v.extend(offsets.iter().map(|&o| b + u64::from(o)));
                    *self = Lsns::Wide(v);
                }
            }
        }
        lsn
    }

    fn set(&mut self, i: usize, lsn: Option<u64>) {
        let e = self.encode(lsn);
        match self {
            // `encode` returned an offset that fits
            Lsns::Narrow { offsets, .. } => offsets[i] = e as u32,
            Lsns::Wide(v) => v[i] = e,
        }
    }

    fn insert(&mut self, i: usize, lsn: Option<u64>) {
        let e = self.encode(lsn);
        match self {
            Lsns::Narrow { offsets, .. } => offsets.insert(i, e as u32),
            Lsns::Wide(v) => v.insert(i, e),
        }
    }

    fn remove(&mut self, i: usize) {
        match self {
            Lsns::Narrow { offsets, .. } => {
                offsets.remove(i);
            }
            Lsns::Wide(v) => {
                v.remove(i);
            }
        }
    }

    fn reserve_exact(&mut self, n: usize) {
        match self {
            Lsns::Narrow { offsets, .. } => offsets.reserve_exact(n),
            Lsns::Wide(v) => v.reserve_exact(n),
        }
    }
}

impl<P: Copy> Page<P> {
    fn new() -> Self {
        Page {
            present: 0,
            has_lsn: 0,
            wide: 0,
            lsns: Lsns::Narrow {
                base: None,
                offsets: Vec::new(),
            },
            images: Vec::new(),
        }
    }

    /// The slot index of `bit`, if present.
    fn find(&self, bit: u32) -> Option<usize> {
        let m = 1u64 << bit;
        (self.present & m != 0).then(|| (self.present & (m - 1)).count_ones() as usize)
    }

    fn lsn(&self, bit: u32, i: usize) -> Option<Lsn> {
        (self.has_lsn & (1u64 << bit) != 0).then(|| Lsn(self.lsns.get(i)))
    }

    fn set_lsn(&mut self, bit: u32, i: usize, lsn: Option<Lsn>) {
        match lsn {
            Some(_) => self.has_lsn |= 1u64 << bit,
            None => self.has_lsn &= !(1u64 << bit),
        }
        self.lsns.set(i, lsn.map(|l| l.0));
    }

    /// Slots to add to a full page's vectors before inserting `bit`. Keys from a sequence
    /// (new orders and items) fill a page in order: once a page's keys are a run and `bit`
    /// extends it, every slot to the page's end is reserved at once, so such a page is
    /// allocated twice, not a dozen times (growing by half, its reallocations were a sixth of
    /// the ingest thread's time at 1M orders). Otherwise exact growth by half: a sparse page
    /// (keys far apart) stays small. Either way a full page holds no spare capacity.
    fn growth(&self, bit: u32) -> usize {
        let len = self.images.len();
        let lowest = self.present.trailing_zeros();
        let run = self.present >> lowest.min(63);
        let extends_run =
            len > 0 && bit as usize == lowest as usize + len && run & run.wrapping_add(1) == 0;
        if extends_run {
            PAGE_KEYS - bit as usize
        } else {
            (len / 2).clamp(1, PAGE_KEYS.saturating_sub(len).max(1))
        }
    }

    /// Inserts an empty slot (no image) for `bit`; returns its index.
    fn insert(&mut self, bit: u32, lsn: Option<Lsn>) -> usize {
        let m = 1u64 << bit;
        let i = (self.present & (m - 1)).count_ones() as usize;
        if self.images.len() == self.images.capacity() {
            let more = self.growth(bit);
            self.images.reserve_exact(more);
            self.lsns.reserve_exact(more);
        }
        self.images.insert(i, None);
        self.lsns.insert(i, lsn.map(|l| l.0));
        self.present |= m;
        match lsn {
            Some(_) => self.has_lsn |= m,
            None => self.has_lsn &= !m,
        }
        i
    }

    fn remove(&mut self, bit: u32, i: usize) {
        self.images.remove(i);
        self.lsns.remove(i);
        let m = !(1u64 << bit);
        self.present &= m;
        self.has_lsn &= m;
        self.wide &= m;
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

impl<V: Pack> Default for Keyed<V> {
    fn default() -> Self {
        Keyed {
            pages: HashMap::default(),
            wide: HashMap::new(),
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

/// The image in slot `i` (bit `bit`) of `page`, key `key`.
fn image_of<V: Pack>(
    page: &Page<V::Packed>,
    wide: &HashMap<i64, V>,
    key: i64,
    bit: u32,
    i: usize,
) -> Option<V> {
    if page.wide & (1u64 << bit) != 0 {
        wide.get(&key).copied()
    } else {
        page.images[i].map(V::unpack)
    }
}

/// Stores `image` in slot `i` (bit `bit`) of `page`, key `key`: packed, or in `wide`.
fn store<V: Pack>(
    page: &mut Page<V::Packed>,
    wide: &mut HashMap<i64, V>,
    key: i64,
    bit: u32,
    i: usize,
    image: Option<V>,
) {
    let m = 1u64 << bit;
    if page.wide & m != 0 {
        wide.remove(&key);
        page.wide &= !m;
    }
    page.images[i] = match image {
        Some(v) => match v.pack() {
            Some(p) => Some(p),
            None => {
                wide.insert(key, v);
                page.wide |= m;
                None
            }
        },
        None => None,
    };
}

impl<V: Pack> Keyed<V> {
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

    pub fn get(&self, key: i64) -> Option<V> {
        let (p, bit) = split(key);
        let page = self.pages.get(&p)?;
        let i = page.find(bit)?;
        image_of(page, &self.wide, key, bit, i)
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
                let old = image_of(page, &self.wide, key, bit, i);
                let changed = old != image;
                if changed {
                    store(page, &mut self.wide, key, bit, i, image);
                }
                if !keep {
                    page.remove(bit, i);
                    self.len -= 1;
                }
                changed.then_some(Delta { old, new: image })
            }
            None => {
                let delta = image.is_some().then_some(Delta {
                    old: None,
                    new: image,
                });
                if keep {
                    let i = page.insert(bit, lsn);
                    store(page, &mut self.wide, key, bit, i, image);
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
        let old_wide = std::mem::take(&mut self.wide);
        let wide = &mut self.wide;
        self.pages.retain(|&p, page| {
            let mut kept = Page::new();
            let mut bits = page.present;
            for i in 0..page.images.len() {
                let bit = bits.trailing_zeros();
                bits &= bits - 1;
                let key = join(p, bit);
                let stored = page.lsn(bit, i);
                let image = image_of(page, &old_wide, key, bit, i);
                let newer = matches!((stored, lsn), (Some(stored), Some(l)) if stored >= l);
                debug_assert_eq!(page.find(bit), Some(i));
                if newer {
                    let j = kept.insert(bit, stored);
                    store(&mut kept, wide, key, bit, j, image);
                } else if let Some(v) = image {
                    out.push((key, v));
                }
            }
            len += kept.images.len();
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

    pub fn iter(&self) -> impl Iterator<Item = (i64, V)> + '_ {
        self.pages.iter().flat_map(move |(&p, page)| {
            let mut bits = page.present;
            (0..page.images.len()).filter_map(move |i| {
                let bit = bits.trailing_zeros();
                bits &= bits.wrapping_sub(1);
                image_of(page, &self.wide, join(p, bit), bit, i).map(|v| (join(p, bit), v))
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

/// An [`OrderImage`] in 20 bytes instead of 32: the total and the customer id as 32-bit
/// unsigned values (a total up to 42,949,672.95; ids of a shop's serial columns), the date
/// split in two halves so the struct needs no 8-byte alignment. Orders are a third of the
/// upsert state.
#[derive(Copy, Clone, Debug)]
pub struct OrderPacked {
    date: [u32; 2],
    total: u32,
    customer_id: u32,
    flags: OrderFlags,
}

impl Pack for OrderImage {
    type Packed = OrderPacked;
    fn pack(&self) -> Option<OrderPacked> {
        let d = self.order_date.0 as u64;
        Some(OrderPacked {
            date: [d as u32, (d >> 32) as u32],
            total: u32::try_from(self.total.0).ok()?,
            customer_id: u32::try_from(self.customer_id).ok()?,
            flags: self.flags,
        })
    }
    fn unpack(p: OrderPacked) -> Self {
        OrderImage {
            order_date: Micros((u64::from(p.date[0]) | (u64::from(p.date[1]) << 32)) as i64),
            total: Money(i64::from(p.total)),
            customer_id: i64::from(p.customer_id),
            flags: p.flags,
        }
    }
}

/// An [`ItemImage`] in 16 bytes instead of 32: ids and the unit price as 32-bit unsigned
/// values, the quantity as 16-bit. Items are two thirds of the upsert state.
#[derive(Copy, Clone, Debug)]
pub struct ItemPacked {
    order_id: u32,
    product_id: u32,
    price: u32,
    quantity: u16,
    nulls: ItemNulls,
}

impl Pack for ItemImage {
    type Packed = ItemPacked;
    fn pack(&self) -> Option<ItemPacked> {
        Some(ItemPacked {
            order_id: u32::try_from(self.order_id).ok()?,
            product_id: u32::try_from(self.product_id).ok()?,
            price: u32::try_from(self.price.0).ok()?,
            quantity: u16::try_from(self.quantity).ok()?,
            nulls: self.nulls,
        })
    }
    fn unpack(p: ItemPacked) -> Self {
        ItemImage {
            order_id: i64::from(p.order_id),
            product_id: i64::from(p.product_id),
            price: Money(i64::from(p.price)),
            quantity: i32::from(p.quantity),
            nulls: p.nulls,
        }
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
        let mut out = Vec::new();
        self.apply_into(change, &mut out);
        out
    }

    /// [`UpsertState::apply`], appending to `out` (the ingest reuses one vector: a vector per
    /// change was an allocation and a free per event).
    pub fn apply_into(&mut self, change: &Change, out: &mut Vec<Projected>) {
        let lsn = change.lsn;
        match &change.kind {
            ChangeKind::Truncate => out.extend(self.truncate(change.table, lsn)),
            ChangeKind::Delete { key } => out.extend(self.delete(change.table, *key, lsn)),
            ChangeKind::Upsert { row, unavailable } => {
                out.extend(self.upsert(row, *unavailable, lsn))
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
                let s = self.orders.get(key);
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
                let s = self.items.get(key);
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
                let s = self.products.get(key);
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
                let image = interaction(u, c.customer_id, c.product_id, self.carts.get(key));
                if !self.carts.is_newer(key, lsn) {
                    return None;
                }
                self.carts
                    .put(key, lsn, Some(image))
                    .and_then(usable_delta)
                    .map(|d| Projected::Cart(key, d))
            }
            Row::Wishlist(w) => {
                let image = interaction(u, w.customer_id, w.product_id, self.wishlists.get(key));
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
                let s = self.views.get(key);
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

    /// Orders and items are nearly all of the upsert state: their packed images must stay
    /// small (the `Option` in the images' spare flag values), so a slot is a 4-byte LSN offset
    /// and 16 (item) or 20 (order) bytes.
    #[test]
    fn order_and_item_slots_stay_packed() {
        assert_eq!(std::mem::size_of::<Option<ItemPacked>>(), 16);
        assert_eq!(std::mem::size_of::<Option<OrderPacked>>(), 20);
    }

    /// Packing restores the image exactly, and refuses what does not fit (the map then keeps
    /// the image whole).
    #[test]
    fn packing_is_exact_or_refused() {
        let m = u32::MAX as i64;
        for (order, product, qty, price, packs) in [
            (Some(1), Some(2), 3, 4, true),
            (None, None, 0, 0, true),
            (Some(m), Some(m), 65_535, m, true),
            (Some(m + 1), Some(2), 3, 4, false),
            (Some(1), Some(-2), 3, 4, false),
            (Some(1), Some(2), -3, 4, false),
            (Some(1), Some(2), 65_536, 4, false),
            (Some(1), Some(2), 3, -4, false),
            (Some(1), Some(2), 3, m + 1, false),
        ] {
            let i = ItemImage::new(order, product, qty, Money(price));
            assert_eq!(i.pack().map(ItemImage::unpack), packs.then_some(i));
        }
        for (date, total, customer, packs) in [
            (1_767_225_600_000_001, 5, Some(7), true),
            (-1, 0, None, true),
            (i64::MIN, m, Some(m), true),
            (i64::MAX, 1, Some(1), true),
            (0, m + 1, Some(1), false),
            (0, -1, Some(1), false),
            (0, 1, Some(-1), false),
        ] {
            for cancelled in [false, true] {
                let o = OrderImage::new(Micros(date), Money(total), customer, cancelled);
                assert_eq!(o.pack().map(OrderImage::unpack), packs.then_some(o));
            }
        }
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

    /// Test images: packed when they fit 32 bits.
    impl Pack for u64 {
        type Packed = u32;
        fn pack(&self) -> Option<u32> {
            u32::try_from(*self).ok()
        }
        fn unpack(p: u32) -> u64 {
            u64::from(p)
        }
    }

    /// A page filled in key order is allocated twice and ends exactly full; a sparse page
    /// grows by half; a page whose run is broken goes back to growing by half.
    #[test]
    fn pages_filled_in_order_reserve_to_the_page_end() {
        let mut page: Page<u32> = Page::new();
        let mut growths = 0;
        for bit in 3..PAGE_KEYS as u32 {
            let cap = page.images.capacity();
            page.insert(bit, Some(Lsn(100 + u64::from(bit))));
            growths += usize::from(page.images.capacity() != cap);
        }
        assert_eq!(growths, 2);
        assert_eq!(page.images.capacity(), PAGE_KEYS - 3);
        assert_eq!(page.images.len(), PAGE_KEYS - 3);

        let mut sparse: Page<u32> = Page::new();
        for bit in [1, 9, 17, 25, 33] {
            sparse.insert(bit, None);
        }
        assert!(
            sparse.images.capacity() <= 6,
            "{}",
            sparse.images.capacity()
        );

        // a run, then a key out of order: the next growth is by half again
        let mut broken: Page<u32> = Page::new();
        broken.insert(0, None);
        broken.insert(1, None); // reserves to the page end
        assert_eq!(broken.images.capacity(), PAGE_KEYS);
        let mut gap: Page<u32> = Page::new();
        gap.insert(0, None);
        gap.insert(5, None);
        gap.insert(6, None);
        assert!(gap.images.capacity() <= 4, "{}", gap.images.capacity());
    }

    /// The paged map against a plain map with the same rules (the layout before paging), over
    /// a deterministic random mix of puts, tombstones, LSN-less changes and truncates, with
    /// negative, dense and far-apart keys.
    #[test]
    fn paged_map_matches_a_plain_map() {
        #[derive(Default)]
        struct Model {
            rows: HashMap<i64, (Option<Lsn>, Option<u64>)>,
            truncated_at: Option<Lsn>,
        }
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut keyed: Keyed<u64> = Keyed::default();
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
            // now and then an LSN far beyond the rest widens its page's LSNs
            let far = if r % 13 == 0 { 1 << 33 } else { 0 };
            let lsn = lsn.then_some(Lsn(step / 3 + (r >> 50) % 40 + far));
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
            // now and then an image that does not pack (kept in the side table)
            let wide = if r % 11 == 0 { 1 << 40 } else { 0 };
            let image = (r % 7 != 0).then_some((r >> 20) % 4 + wide);
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
            assert_eq!(keyed.get(key), model.rows.get(&key).and_then(|s| s.1));
        }
        assert_eq!(keyed.len(), model.rows.len());
        assert_eq!(
            keyed.wide.len(),
            model.rows.values().filter(|s| s.1 >= Some(1 << 40)).count()
        );
        let mut got: Vec<(i64, u64)> = keyed.iter().collect();
        let mut want: Vec<(i64, u64)> = model
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
