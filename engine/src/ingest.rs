//! From source transactions to dataflow input updates ([`Updates`]): upsert per key (see
//! [`crate::upsert`]), the join of every order with its items, and the retention cutoffs.
//!
//! **Orders joined with their items here, not in the dataflow.** Both upserts live on this
//! thread anyway, so for each order a transaction touched, the ingest compares what the order
//! contributed before the transaction (its live image, items and their products' categories)
//! with what it contributes after, and emits the difference: the order itself (`live_orders`),
//! its shares of the additive inputs (`order_totals`; per item `sales` and, by the product's
//! category, `category_totals`, which also count the order once per distinct category), the
//! customer's purchases (`purchases`) and the co-purchase pairs (`co_purchases`); the
//! additive ones carry the order's date at the windows' grain and are summed per key for the
//! engine time (`sum_by_hash`). A product moving to another category
//! re-states the orders containing it (found through `orders_by_product`, an index built only
//! while categories move: see [`Ingest::orders_by_product`]).
//! The dataflow then only sums and ranks: no view arranges a record per order or per item to
//! join them (measured: about 3.4 KB of state per live order when it did). The price is two
//! indexes here (order to item keys, product to orders), and that a transaction touching one
//! item of an order re-emits the order's facts, which consolidation cancels where unchanged.
//!
//! Retention (SPEC §4): windowed views keep windows that end after (highest order_date seen −
//! retention). "Seen" is read as: in any order image ever applied, cancelled ones included, so
//! the cutoff never moves back. Per window size, the ingest only says where the retained
//! windows start (`cutoffs`, changed in the transaction that moved the highest date); the
//! windowed operators retire the older windows' groups themselves (`views::per_group`). A
//! retained window's `prev_*` still comes from the full data: orders lend their window's
//! figures to the next window's group, whether their own window is retained or not. Orders
//! are never re-stated for retention, so retiring a window costs per group, not per order.
//!
//! Runs on the ingest thread, never on a timely worker. Owns the upsert state and the item
//! index; must not know about timely.

use crate::facts::*;
use crate::items_index::ItemsByOrder;
use crate::upsert::{OrderImage, Projected, Stored, UpsertState};
use crate::views::Updates;
use prometheus::IntCounter;
use sources::{ChangeKind, Micros, Row, Table, Transaction};
use std::collections::BTreeSet;
use std::sync::LazyLock;
use view_store::Window;

static BASKETS_CAPPED: LazyLock<Option<IntCounter>> = LazyLock::new(|| {
    // Creation only fails on an invalid static name; registration fails on a duplicate. Keep
    // running without the metric rather than panic on the ingest thread.
    let c = IntCounter::new(
        "shopstream_baskets_capped_total",
        "Times a live order's basket went over the basket cap (its co-purchase pairs are not counted)",
    )
    .ok()?;
    if let Err(e) = prometheus::default_registry().register(Box::new(c.clone())) {
        tracing::warn!(error = %e, "shopstream_baskets_capped_total not registered");
    }
    Some(c)
});

/// Sums the diffs of equal records and drops the zeros, in no particular order (the same for
/// the same input: the hasher is not seeded per process).
pub(crate) fn net_by_hash<D: std::hash::Hash + Eq>(v: &mut Vec<(D, isize)>) {
    if v.len() < 2 {
        v.retain(|(_, r)| *r != 0);
        return;
    }
    let mut net: std::collections::HashMap<D, isize, foldhash::fast::FixedState> =
        std::collections::HashMap::with_capacity_and_hasher(v.len(), Default::default());
    for (d, r) in v.drain(..) {
        *net.entry(d).or_insert(0) += r;
    }
    v.extend(net.into_iter().filter(|(_, r)| *r != 0));
}

/// Sums an additive input's updates per key (see `views::Updates`): a record `(key, sums)`
/// with diff d adds d × sums, and each key whose total is not all zero leaves as one record
/// `(key, total)` with diff 1, in no particular order (the same for the same input).
///
/// Wrapping arithmetic: it is a group, so a retraction cancels exactly what its insertion
/// added whatever the values (a corrupt row's overflowing revenue included), and it cannot
/// panic on the ingest thread.
pub(crate) fn sum_by_hash<K: std::hash::Hash + Eq, const N: usize>(
    v: &mut Vec<((K, [isize; N]), isize)>,
) {
    let mut totals: std::collections::HashMap<K, [isize; N], foldhash::fast::FixedState> =
        std::collections::HashMap::with_capacity_and_hasher(v.len(), Default::default());
    for ((key, sums), d) in v.drain(..) {
        add_scaled(totals.entry(key).or_insert([0; N]), sums, d);
    }
    v.extend(
        totals
            .into_iter()
            .filter(|(_, t)| *t != [0; N])
            .map(|(key, t)| ((key, t), 1)),
    );
}

/// [`sum_by_hash`], ascending by key: the canonical form tests compare.
pub(crate) fn sum_sorted<K: std::hash::Hash + Ord, const N: usize>(
    v: &mut Vec<((K, [isize; N]), isize)>,
) {
    sum_by_hash(v);
    // one record per key now
    v.sort_unstable_by(|a, b| a.0 .0.cmp(&b.0 .0));
}

/// `total += d × sums`, wrapping (see [`sum_by_hash`]).
fn add_scaled<const N: usize>(total: &mut [isize; N], sums: [isize; N], d: isize) {
    for (t, s) in total.iter_mut().zip(sums) {
        *t = t.wrapping_add(s.wrapping_mul(d));
    }
}

fn delta<V: Copy>(key: i64, d: crate::upsert::Delta<V>, out: &mut Vec<((i64, V), isize)>) {
    if let Some(old) = d.old {
        out.push(((key, old), -1));
    }
    if let Some(new) = d.new {
        out.push(((key, new), 1));
    }
}

/// What one order contributes to the views at one moment: its live image (`None` when
/// cancelled, deleted or not yet seen), its usable items by item key, and, derived from those
/// once by [`Ingest::fill_basket`], its distinct products and their distinct current
/// categories (both ascending, empty unless live), and each item's product's current category
/// (same order as `items`, empty unless live).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct OrderFacts {
    live: Option<LiveOrder>,
    items: Vec<(i64, Item)>,
    basket: Vec<i64>,
    categories: Vec<i64>,
    item_categories: Vec<Option<i64>>,
}

/// The ingest state: upserts, the order-items join, and retention.
pub struct Ingest {
    pub upsert: UpsertState,
    /// `ViewsConfig::windows`, in the same order as `visible_from`.
    windows: Vec<Window>,
    /// [`date_grain`] of `windows`: the date the additive inputs carry.
    grain: i64,
    retention: Option<i64>,
    basket_cap: usize,
    /// Highest order_date seen in any applied order image.
    watermark: Option<Micros>,
    /// Per window (same index): start of the oldest retained window (`None` = all retained),
    /// as last sent in `cutoffs`.
    visible_from: Vec<Option<Micros>>,
    /// `(order_id, order_item_id)` of every usable item: an order's items without a scan.
    items_by_order: ItemsByOrder,
    /// `(product_id, order_id)` for every distinct product of every live order: the orders whose
    /// categories a product's category change moves.
    ///
    /// Built on demand, and dropped again after [`Ingest::index_idle`] transactions without a
    /// category move: it costs about 70 B per live order, and most shops move a product to
    /// another category rarely (neither datagen nor the e2e bench ever do), so holding it for
    /// good would be the largest ingest cost of a feature that is idle. Rebuilding is one scan
    /// of the items, done at the start of a transaction that may move a category, so the index
    /// always describes the state as of the transaction's start, exactly as if it had been
    /// maintained all along (the loop in [`Ingest::apply`] relies on that).
    orders_by_product: Option<BTreeSet<(i64, i64)>>,
    /// Transactions since the last category move (or the index's build).
    since_category_move: u64,
    /// Transactions without a category move after which the index is dropped.
    index_idle: u64,
    /// Facts no longer used, whose vectors the next ones reuse (see [`Ingest::spare_facts`]).
    spare_facts: Vec<OrderFacts>,
    /// [`Ingest::apply_into`]'s per-change vectors, kept between changes: allocated and freed
    /// for every change they were ~2 of the ingest's allocations per event.
    scratch: Scratch,
    /// The orders the transaction being applied touches, kept between transactions.
    before: Before,
}

/// The orders one transaction touches, each with what it contributed before the transaction
/// (see [`Ingest::apply_into`]). A vector kept between transactions, searched linearly while
/// short and through a set once long: a transaction touches one order or a few, and the
/// `BTreeMap` this was allocated a node for ~11 facts (~1.7 KB) per transaction; a category
/// move touches every order containing the product.
#[derive(Default)]
struct Before {
    orders: Vec<(i64, OrderFacts)>,
    /// Every order id of `orders` once there are more than [`Before::LINEAR`]; else empty.
    many: foldhash::HashSet<i64>,
}

impl Before {
    /// Up to this many orders are searched linearly.
    const LINEAR: usize = 16;

    fn contains(&self, order: i64) -> bool {
        if self.orders.len() <= Self::LINEAR {
            self.orders.iter().any(|&(o, _)| o == order)
        } else {
            self.many.contains(&order)
        }
    }

    /// Adds an order not yet [`Before::contains`]ed.
    fn insert(&mut self, order: i64, facts: OrderFacts) {
        self.orders.push((order, facts));
        if self.orders.len() > Self::LINEAR {
            if self.many.is_empty() {
                self.many.extend(self.orders.iter().map(|&(o, _)| o));
            } else {
                self.many.insert(order);
            }
        }
    }

    /// Sorts the orders ascending by id (the order they are re-stated in, as the map's was) and
    /// forgets the set; [`Before::orders`] is then drained by the caller.
    fn sort(&mut self) {
        self.orders.sort_unstable_by_key(|&(o, _)| o);
        self.many.clear();
    }

    /// Gives back the room of a transaction that touched many orders.
    fn shrink(&mut self) {
        self.orders.shrink_to(SCRATCH_KEEP);
        self.many.shrink_to(SCRATCH_KEEP);
    }
}

/// Scratch capacity kept between transactions: a truncate's vectors (every item) are given
/// back rather than held for good.
const SCRATCH_KEEP: usize = 1024;

/// See [`Ingest::scratch`]; each vector is cleared before a change fills it.
#[derive(Default)]
struct Scratch {
    /// A change's projected effects.
    projected: Vec<Projected>,
    /// The old images of the items a change touched, by key.
    item_olds: Vec<(i64, Option<Item>)>,
    /// The old categories of the products a change moved, by key.
    category_olds: Vec<(i64, Option<i64>)>,
    /// The orders one projected effect touches.
    orders: Vec<i64>,
}

impl Scratch {
    fn shrink(&mut self) {
        self.projected.shrink_to(SCRATCH_KEEP);
        self.item_olds.shrink_to(SCRATCH_KEEP);
        self.category_olds.shrink_to(SCRATCH_KEEP);
        self.orders.shrink_to(SCRATCH_KEEP);
    }
}

/// Most spare [`OrderFacts`] kept: a transaction touching more orders allocates for the rest.
const SPARE_FACTS: usize = 16;

/// Default of [`Ingest::index_idle`]: long enough that a burst of re-categorisations (one
/// product per transaction, between orders) builds the index once.
const CATEGORY_INDEX_IDLE: u64 = 100_000;

impl Ingest {
    /// `windows`: `ViewsConfig::windows` (only `Window::Size` entries get windows); `retention`
    /// in µs; `basket_cap`: `ViewsConfig::basket_cap`.
    pub fn new(windows: &[Window], retention: Option<i64>, basket_cap: usize) -> Self {
        Ingest {
            upsert: UpsertState::default(),
            visible_from: vec![None; windows.len()],
            windows: windows.to_vec(),
            grain: date_grain(windows),
            retention,
            basket_cap,
            watermark: None,
            items_by_order: ItemsByOrder::default(),
            orders_by_product: None,
            since_category_move: 0,
            index_idle: CATEGORY_INDEX_IDLE,
            spare_facts: Vec::new(),
            scratch: Scratch::default(),
            before: Before::default(),
        }
    }

    pub fn watermark(&self) -> Option<Micros> {
        self.watermark
    }

    /// Applies one transaction; returns the consolidated updates for its engine time.
    pub fn apply(&mut self, tx: &Transaction) -> Updates {
        let mut up = Updates::default();
        self.apply_into(tx, &mut up);
        up.consolidate();
        up
    }

    /// Applies one transaction and appends its updates to `up`, unconsolidated: the engine
    /// gathers the transactions of one time into one [`Updates`] and consolidates that once,
    /// instead of allocating, consolidating and copying a set of vectors per transaction.
    pub fn apply_into(&mut self, tx: &Transaction, up: &mut Updates) {
        self.since_category_move = self.since_category_move.saturating_add(1);
        if self.orders_by_product.is_none() && self.may_move_a_category(tx) {
            self.orders_by_product = Some(self.scan_orders_by_product());
            self.since_category_move = 0;
        }
        // every order the transaction touches, with what it contributed before it
        let mut before = std::mem::take(&mut self.before);
        let mut scratch = std::mem::take(&mut self.scratch);
        let Scratch {
            projected,
            item_olds,
            category_olds,
            orders,
        } = &mut scratch;
        for change in &tx.changes {
            projected.clear();
            self.upsert.apply_into(change, projected);
            // The upsert already holds this change's new images (a truncate may change many
            // items at once): an order's facts before the change are its current ones with
            // these items' old images put back.
            item_olds.clear();
            item_olds.extend(projected.iter().filter_map(|p| match p {
                Projected::Item(key, d) => Some((*key, d.old)),
                _ => None,
            }));
            item_olds.sort_unstable_by_key(|(k, _)| *k);
            // the same for products whose category this change moved
            category_olds.clear();
            category_olds.extend(projected.iter().filter_map(|p| match p {
                Projected::Product(key, d) => {
                    let old = d.old.and_then(|f| f.category_id);
                    (old != d.new.and_then(|f| f.category_id)).then_some((*key, old))
                }
                _ => None,
            }));
            category_olds.sort_unstable_by_key(|(k, _)| *k);
            for p in projected.iter() {
                orders.clear();
                let old_live = match p {
                    Projected::Order(key, d) => {
                        if let Some(new) = &d.new {
                            self.watermark = self.watermark.max(Some(new.order_date()));
                        }
                        orders.push(*key);
                        Some(d.old.as_ref().and_then(OrderImage::live))
                    }
                    Projected::Item(_, d) => {
                        let both = [d.old.map(|i| i.order_id), d.new.map(|i| i.order_id)];
                        orders.extend(both.into_iter().flatten());
                        None
                    }
                    Projected::Product(key, _)
                        if category_olds.binary_search_by_key(key, |(k, _)| *k).is_ok() =>
                    {
                        self.since_category_move = 0;
                        debug_assert!(self.orders_by_product.is_some());
                        let Some(index) = &self.orders_by_product else {
                            // may_move_a_category said no: a bug, and views would go wrong
                            tracing::error!(product = key, "category moved without the index");
                            continue;
                        };
                        orders.extend(
                            index
                                .range((*key, i64::MIN)..=(*key, i64::MAX))
                                .map(|&(_, order)| order),
                        );
                        None
                    }
                    _ => continue,
                };
                for &order in orders.iter() {
                    if before.contains(order) {
                        continue;
                    }
                    let mut f = self.spare_facts();
                    self.facts_of(order, item_olds, &mut f);
                    f.items.extend(item_olds.iter().filter_map(|&(k, old)| {
                        old.filter(|i| i.order_id == order).map(|i| (k, i))
                    }));
                    f.items.sort_unstable_by_key(|(k, _)| *k);
                    if let Some(live) = old_live {
                        f.live = live;
                    }
                    self.fill_basket(&mut f, category_olds);
                    before.insert(order, f);
                }
            }
            for p in projected.drain(..) {
                match p {
                    Projected::Order(..) => {}
                    Projected::Item(key, d) => {
                        if let Some(old) = d.old {
                            self.items_by_order.remove(old.order_id, key);
                        }
                        if let Some(new) = d.new {
                            self.items_by_order.insert(new.order_id, key);
                        }
                    }
                    Projected::Product(key, d) => delta(key, d, &mut up.products),
                    Projected::Cart(key, d) => delta(key, d, &mut up.carts),
                    Projected::Wishlist(key, d) => delta(key, d, &mut up.wishlists),
                    Projected::View(key, d) => delta(key, d, &mut up.product_views),
                }
            }
        }
        scratch.shrink();
        self.scratch = scratch;
        before.sort();
        for (order, old) in before.orders.drain(..) {
            let mut new = self.spare_facts();
            self.facts_of::<()>(order, &[], &mut new);
            self.fill_basket(&mut new, &[]);
            self.order_changed(order, &old, &new, up);
            self.recycle_facts(old);
            self.recycle_facts(new);
        }
        before.shrink();
        self.before = before;
        self.advance_retention(up);
        if self.since_category_move >= self.index_idle {
            self.orders_by_product = None;
        }
    }

    /// Whether `tx` may move a product to another category: conservative (a stale or
    /// redelivered change also says yes), because a move without the index would go unseen.
    fn may_move_a_category(&self, tx: &Transaction) -> bool {
        tx.changes.iter().any(|c| {
            if c.table != Table::Products {
                return false;
            }
            match &c.kind {
                ChangeKind::Upsert {
                    row: Row::Product(p),
                    unavailable,
                } => {
                    !unavailable.is_empty()
                        || self
                            .upsert
                            .products
                            .get(p.product_id)
                            .map(|s| s.category_id)
                            != Some(p.category_id)
                }
                _ => true,
            }
        })
    }

    /// `orders_by_product` from the current state: one pass over every stored item.
    fn scan_orders_by_product(&self) -> BTreeSet<(i64, i64)> {
        self.upsert
            .items
            .iter()
            .filter_map(|(_, image)| image.usable())
            .filter(|it| {
                self.upsert
                    .orders
                    .get(it.order_id)
                    .is_some_and(|o| o.live().is_some())
            })
            .map(|it| (it.product_id, it.order_id))
            .collect()
    }

    /// The order's current facts, leaving out the items of `skip` (sorted by key), in `f`
    /// (whatever it held is replaced; its vectors are reused).
    fn facts_of<T>(&self, order: i64, skip: &[(i64, T)], f: &mut OrderFacts) {
        f.items.clear();
        f.items.extend(
            self.items_by_order
                .items(order)
                .filter(|item| skip.binary_search_by_key(item, |(k, _)| *k).is_err())
                .filter_map(|item| {
                    let it = self.upsert.items.get(item)?.usable()?;
                    Some((item, it))
                }),
        );
        f.live = self.upsert.orders.get(order).and_then(|o| o.live());
        f.basket.clear();
        f.categories.clear();
        f.item_categories.clear();
    }

    /// An `OrderFacts` to fill, with the vectors of one used before when there is one: an
    /// order's facts are built twice per change of it (before and after), and allocating and
    /// freeing their vectors each time cost 8% of `Ingest::apply_into`'s instructions.
    fn spare_facts(&mut self) -> OrderFacts {
        self.spare_facts.pop().unwrap_or_default()
    }

    /// Returns facts no longer needed to [`Ingest::spare_facts`] (a few are kept).
    fn recycle_facts(&mut self, f: OrderFacts) {
        if self.spare_facts.len() < SPARE_FACTS {
            self.spare_facts.push(f);
        }
    }

    /// Fills in the order's distinct products and their distinct categories, as the products
    /// table says now except for the products in `olds` (sorted by key), which had the category
    /// given.
    fn fill_basket(&self, f: &mut OrderFacts, olds: &[(i64, Option<i64>)]) {
        let category = |p: i64| match olds.binary_search_by_key(&p, |(k, _)| *k) {
            Ok(i) => olds[i].1,
            Err(_) => self.upsert.products.get(p).and_then(|pf| pf.category_id),
        };
        f.basket.clear();
        f.item_categories.clear();
        if f.live.is_some() {
            f.basket.extend(f.items.iter().map(|(_, it)| it.product_id));
            f.basket.sort_unstable();
            f.basket.dedup();
            f.item_categories
                .extend(f.items.iter().map(|(_, it)| category(it.product_id)));
        }
        // the basket's categories are its items' (one lookup per item, not two)
        f.categories.clear();
        f.categories
            .extend(f.item_categories.iter().flatten().copied());
        f.categories.sort_unstable();
        f.categories.dedup();
    }

    /// Emits the change of one order's contribution from `old` to `new`.
    fn order_changed(&mut self, order: i64, old: &OrderFacts, new: &OrderFacts, up: &mut Updates) {
        if old == new {
            return;
        }
        for (facts, sign) in [(old, -1), (new, 1)] {
            if let Some(o) = facts.live {
                dated_facts(order, o, facts, sign, self.grain, up);
            }
        }
        let (old_basket, new_basket) = (&old.basket, &new.basket);
        if let Some(index) = &mut self.orders_by_product {
            for p in old_basket
                .iter()
                .filter(|p| new_basket.binary_search(p).is_err())
            {
                index.remove(&(*p, order));
            }
            for p in new_basket
                .iter()
                .filter(|p| old_basket.binary_search(p).is_err())
            {
                index.insert((*p, order));
            }
        }
        let customer = |f: &OrderFacts| f.live.and_then(|o| o.customer_id);
        for (facts, basket, sign) in [(old, old_basket, -1), (new, new_basket, 1)] {
            if let Some(c) = customer(facts) {
                up.purchases.extend(basket.iter().map(|&p| ((c, p), sign)));
            }
        }
        let cap = self.basket_cap;
        let (old_in, new_in) = (old_basket.len() <= cap, new_basket.len() <= cap);
        if new.live.is_some() && !new_in && (old.live.is_none() || old_in) {
            if let Some(c) = BASKETS_CAPPED.as_ref() {
                c.inc();
            }
        }
        // pairs of each basket within the cap (an empty basket has none)
        let old_pairs: &[i64] = if old_in { old_basket } else { &[] };
        let new_pairs: &[i64] = if new_in { new_basket } else { &[] };
        pair_changes(old_pairs, new_pairs, &mut up.co_purchases);
    }

    /// Moves each window size's cutoff to the current highest order date minus retention:
    /// the retained windows of a size are those ending after it.
    fn advance_retention(&mut self, up: &mut Updates) {
        let (Some(retention), Some(mark)) = (self.retention, self.watermark) else {
            return;
        };
        let cutoff = Micros(mark.0.saturating_sub(retention));
        for (w, from) in self.windows.iter().zip(self.visible_from.iter_mut()) {
            let Window::Size(size) = *w else { continue };
            // the window containing the cutoff ends after it: the oldest retained
            let new = cutoff.window_start(size);
            if from.is_some_and(|old| old >= new) {
                continue;
            }
            if let Some(old) = from.replace(new) {
                up.cutoffs.push(((*w, old), -1));
            }
            up.cutoffs.push(((*w, new), 1));
        }
    }
}

/// The facts of a live order that carry its date: the order, and its shares of the additive
/// inputs at the views' `grain` ([`coarse`]), which the time's consolidation sums per key.
fn dated_facts(
    order: i64,
    o: LiveOrder,
    facts: &OrderFacts,
    sign: isize,
    grain: i64,
    up: &mut Updates,
) {
    let date = coarse(o.order_date, grain);
    up.live_orders.push(((order, o), sign));
    up.order_totals
        .push(((date, [o.total.0 as isize, 1]), sign));
    for ((_, it), &category) in facts.items.iter().zip(&facts.item_categories) {
        let [qty, revenue] = line_sums(it);
        up.sales
            .push((((date, it.product_id, category), [qty, revenue]), sign));
        if let Some(c) = category {
            up.category_totals
                .push((((date, c), [qty, revenue, 0]), sign));
        }
    }
    up.category_totals.extend(
        facts
            .categories
            .iter()
            .map(|&c| (((date, c), [0, 0, 1]), sign)),
    );
}

/// An item's `[quantity, revenue]`; saturating: a corrupt row must not panic the ingest (real
/// values fit easily).
pub fn line_sums(it: &Item) -> [isize; 2] {
    [
        it.quantity as isize,
        it.quantity.saturating_mul(it.price.0) as isize,
    ]
}

/// The ordered pairs `(p, q)`, p != q, of `new` minus those of `old` (both sorted, distinct).
/// Only pairs with a product that entered or left are touched, so changing one item of a large
/// basket costs O(basket), not O(basket²).
fn pair_changes(old: &[i64], new: &[i64], out: &mut Vec<((i64, i64), isize)>) {
    let entered: Vec<i64> = new
        .iter()
        .copied()
        .filter(|p| old.binary_search(p).is_err())
        .collect();
    let left: Vec<i64> = old
        .iter()
        .copied()
        .filter(|p| new.binary_search(p).is_err())
        .collect();
    for (changed, basket, sign) in [(&entered, new, 1), (&left, old, -1)] {
        for &p in changed.iter() {
            for &q in basket.iter().filter(|&&q| q != p) {
                out.push(((p, q), sign));
                // a pair of two changed products is emitted from each side once
                if changed.binary_search(&q).is_err() {
                    out.push(((q, p), sign));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sources::*;

    /// Consolidation sums the diffs of equal records, drops zeros and sorts, as a map does;
    /// netting by hash gives the same but for the order.
    #[test]
    fn consolidate_equals_a_sum_per_record() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for round in 0..2_000 {
            let mut v: Vec<((i64, String), isize)> = (0..round % 70)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let d = [1, -1, 2, -2][(x >> 5) as usize % 4];
                    (((x % 7) as i64, format!("{}", (x >> 9) % 3)), d)
                })
                .collect();
            let mut want: std::collections::BTreeMap<(i64, String), isize> = Default::default();
            for (k, d) in &v {
                *want.entry(k.clone()).or_default() += d;
            }
            want.retain(|_, d| *d != 0);
            let mut hashed = v.clone();
            view_store::consolidate(&mut v);
            assert_eq!(v, want.into_iter().collect::<Vec<_>>());
            // by hash: the same records and sums, in some order
            net_by_hash(&mut hashed);
            hashed.sort();
            assert_eq!(hashed, v);
        }
    }

    const MIN: i64 = 60_000_000;
    const HOUR: i64 = 60 * MIN;

    fn windows() -> Vec<Window> {
        vec![Window::Size(MIN), Window::Size(5 * MIN), Window::Size(HOUR)]
    }

    /// An update event carrying `row` at `lsn`.
    fn upsert(row: Row, lsn: u64) -> Change {
        Change {
            table: row.table(),
            op: Op::Update,
            lsn: Some(Lsn(lsn)),
            kind: ChangeKind::Upsert {
                row,
                unavailable: Unavailable::default(),
            },
        }
    }

    fn order(id: i64, date: i64, total: i64, status: OrderStatus, lsn: u64) -> Change {
        let row = Row::Order(Order {
            order_id: id,
            order_date: Micros(date),
            total_price: Money(total),
            status,
            customer_id: Some(7),
            payment_id: None,
            shipment_id: None,
        });
        upsert(row, lsn)
    }

    fn tx(changes: Vec<Change>) -> Transaction {
        Transaction {
            changes,
            ..Default::default()
        }
    }

    fn live(id: i64, date: i64, total: i64) -> (i64, LiveOrder) {
        (
            id,
            LiveOrder {
                order_date: Micros(date),
                total: Money(total),
                customer_id: Some(7),
            },
        )
    }

    fn item(id: i64, order: i64, product: i64, lsn: u64) -> Change {
        let row = Row::OrderItem(OrderItem {
            order_item_id: id,
            order_id: Some(order),
            product_id: Some(product),
            quantity: 2,
            price: Money(100),
        });
        upsert(row, lsn)
    }

    fn product(id: i64, category: Option<i64>, lsn: u64) -> Change {
        let row = Row::Product(Box::new(Product {
            product_id: id,
            sku: format!("sku-{id}"),
            name: "p".into(),
            description: None,
            price: Money(100),
            stock: None,
            category_id: category,
            is_active: None,
            created_at: None,
            updated_at: None,
        }));
        upsert(row, lsn)
    }

    fn delete_item(id: i64, lsn: u64) -> Change {
        Change {
            table: Table::OrderItems,
            op: Op::Delete,
            lsn: Some(Lsn(lsn)),
            kind: ChangeKind::Delete { key: id },
        }
    }

    #[test]
    fn insert_duplicate_stale_and_irrelevant_updates() {
        let mut ing = Ingest::new(&windows(), None, 100);
        let u = ing.apply(&tx(vec![order(
            1,
            10 * HOUR,
            500,
            OrderStatus::Pending,
            100,
        )]));
        assert_eq!(u.live_orders, vec![(live(1, 10 * HOUR, 500), 1)]);
        // Redelivered: same LSN.
        assert!(ing
            .apply(&tx(vec![order(
                1,
                10 * HOUR,
                500,
                OrderStatus::Pending,
                100
            )]))
            .is_empty());
        // Status change no view cares about: nothing downstream.
        assert!(ing
            .apply(&tx(vec![order(
                1,
                10 * HOUR,
                500,
                OrderStatus::Shipped,
                110
            )]))
            .is_empty());
        // Stale event (lower LSN) with another total: ignored.
        assert!(ing
            .apply(&tx(vec![order(
                1,
                10 * HOUR,
                999,
                OrderStatus::Pending,
                105
            )]))
            .is_empty());
        // Cancel: retracted everywhere.
        let u = ing.apply(&tx(vec![order(
            1,
            10 * HOUR,
            500,
            OrderStatus::Cancelled,
            120,
        )]));
        assert_eq!(u.live_orders, vec![(live(1, 10 * HOUR, 500), -1)]);
    }

    #[test]
    fn delete_tombstone_blocks_redelivered_insert_and_update_in_one_tx_nets_out() {
        let mut ing = Ingest::new(&windows(), None, 100);
        ing.apply(&tx(vec![order(1, HOUR, 500, OrderStatus::Pending, 100)]));
        let del = Change {
            table: Table::Orders,
            op: Op::Delete,
            lsn: Some(Lsn(200)),
            kind: ChangeKind::Delete { key: 1 },
        };
        let u = ing.apply(&tx(vec![del]));
        assert_eq!(u.live_orders, vec![(live(1, HOUR, 500), -1)]);
        assert!(ing
            .apply(&tx(vec![order(1, HOUR, 500, OrderStatus::Pending, 100)]))
            .is_empty());
        // Two updates of one key in one transaction: only the net effect leaves.
        let u = ing.apply(&tx(vec![
            order(2, HOUR, 100, OrderStatus::Pending, 300),
            order(2, HOUR, 200, OrderStatus::Pending, 301),
        ]));
        assert_eq!(u.live_orders, vec![(live(2, HOUR, 200), 1)]);
    }

    #[test]
    fn unavailable_column_keeps_stored_value_and_truncate_fences_old_events() {
        let mut ing = Ingest::new(&windows(), None, 100);
        ing.apply(&tx(vec![order(1, HOUR, 500, OrderStatus::Pending, 100)]));
        let mut c = order(1, HOUR, 0, OrderStatus::Pending, 110);
        if let ChangeKind::Upsert { unavailable, .. } = &mut c.kind {
            unavailable.insert(2); // total_price
        }
        assert!(ing.apply(&tx(vec![c])).is_empty());
        let t = Change {
            table: Table::Orders,
            op: Op::Truncate,
            lsn: Some(Lsn(150)),
            kind: ChangeKind::Truncate,
        };
        let u = ing.apply(&tx(vec![t]));
        assert_eq!(u.live_orders, vec![(live(1, HOUR, 500), -1)]);
        // An event from before the truncate is ignored even for a key never seen.
        assert!(ing
            .apply(&tx(vec![order(9, HOUR, 1, OrderStatus::Pending, 140)]))
            .is_empty());
        assert!(!ing
            .apply(&tx(vec![order(9, HOUR, 1, OrderStatus::Pending, 160)]))
            .is_empty());
    }

    #[test]
    fn retention_advances_cutoffs_and_restates_nothing() {
        let mut ing = Ingest::new(&[Window::Size(HOUR), Window::All], Some(HOUR), 100);
        let t0 = 100 * HOUR;
        let u = ing.apply(&tx(vec![
            order(1, t0 + 5 * MIN, 500, OrderStatus::Pending, 1),
            item(1, 1, 42, 1),
            product(42, Some(5), 1),
        ]));
        // the first order sets the first cutoff: highest date t0+5m minus 1h is in window t0-1h
        let hour = Window::Size(HOUR);
        assert_eq!(u.cutoffs, vec![((hour, Micros(t0 - HOUR)), 1)]);
        assert_eq!(u.sales.len(), 1);
        // An order two hours later: cutoff = t0 + 1h + 10m; the oldest retained window starts
        // at t0+1h. Order 1 is not re-stated: only the cutoff moves.
        let u = ing.apply(&tx(vec![order(
            2,
            t0 + 2 * HOUR + 10 * MIN,
            500,
            OrderStatus::Pending,
            2,
        )]));
        assert_eq!(
            u.cutoffs,
            vec![
                ((hour, Micros(t0 - HOUR)), -1),
                ((hour, Micros(t0 + HOUR)), 1)
            ]
        );
        assert_eq!(
            u.live_orders,
            vec![(live(2, t0 + 2 * HOUR + 10 * MIN, 500), 1)]
        );
        assert!(u.sales.is_empty() && u.purchases.is_empty() && u.co_purchases.is_empty());
        // An older order moves nothing; a late order into a retired window is still live
        // (fraud ignores retention; the windowed operators drop its windows themselves).
        let u = ing.apply(&tx(vec![order(4, t0, 500, OrderStatus::Pending, 4)]));
        assert!(u.cutoffs.is_empty());
        assert_eq!(u.live_orders.len(), 1);
        // Cancelling the newest order does not move the cutoff back.
        let u = ing.apply(&tx(vec![order(
            2,
            t0 + 2 * HOUR + 10 * MIN,
            500,
            OrderStatus::Cancelled,
            5,
        )]));
        assert!(u.cutoffs.is_empty());
    }

    #[test]
    fn items_join_their_order_in_any_order_and_pairs_follow_the_basket() {
        let mut ing = Ingest::new(&windows(), None, 2);
        // items before their order: nothing derived yet
        let u = ing.apply(&tx(vec![item(1, 9, 10, 1), item(2, 9, 11, 1)]));
        assert!(u.sales.is_empty() && u.co_purchases.is_empty());
        // the order arrives: both sales, the basket, purchases and both ordered pairs
        let u = ing.apply(&tx(vec![order(9, HOUR, 500, OrderStatus::Pending, 2)]));
        assert_eq!(u.sales.len(), 2);
        assert_eq!(u.purchases, vec![((7, 10), 1), ((7, 11), 1)]);
        assert_eq!(u.co_purchases, vec![((10, 11), 1), ((11, 10), 1)]);
        // a second item of product 10: a sale, but no new basket product, purchase or pair
        let u = ing.apply(&tx(vec![item(3, 9, 10, 3)]));
        assert_eq!(u.sales.len(), 1);
        assert!(u.purchases.is_empty() && u.co_purchases.is_empty());
        // a third product goes over the cap (2): every pair leaves
        let u = ing.apply(&tx(vec![item(4, 9, 12, 4)]));
        assert_eq!(u.co_purchases.iter().map(|(_, r)| *r).sum::<isize>(), -2);
        assert_eq!(u.purchases, vec![((7, 12), 1)]);
        // deleted again: back within the cap
        let u = ing.apply(&tx(vec![delete_item(4, 5)]));
        assert_eq!(u.co_purchases, vec![((10, 11), 1), ((11, 10), 1)]);
        // an item moved to another (unknown) order leaves this one's facts
        let mut moved = item(2, 8, 11, 6);
        if let ChangeKind::Upsert {
            row: Row::OrderItem(it),
            ..
        } = &mut moved.kind
        {
            it.order_id = Some(8);
        }
        let u = ing.apply(&tx(vec![moved]));
        assert_eq!(u.co_purchases, vec![((10, 11), -1), ((11, 10), -1)]);
        assert_eq!(u.purchases, vec![((7, 11), -1)]);
        // cancelling retracts everything the order still adds
        let u = ing.apply(&tx(vec![order(9, HOUR, 500, OrderStatus::Cancelled, 7)]));
        assert_eq!(quantity(&u), -4);
        assert_eq!(u.purchases, vec![((7, 10), -1)]);
        assert_eq!(u.live_orders.len(), 1);
    }

    /// The quantity a time's sales add, over all keys.
    fn quantity(u: &Updates) -> isize {
        u.sales.iter().map(|((_, [q, _]), d)| q * d).sum()
    }

    /// The additive inputs carry the order's date at the windows' grain (a minute here) and are
    /// summed per key: a product's lines in two orders of one minute are one record with their
    /// sums, an order of the next minute has its own. Live orders keep their exact date.
    #[test]
    fn sales_of_one_grain_are_one_record_with_their_sums() {
        let mut ing = Ingest::new(&windows(), None, 100);
        let u = ing.apply(&tx(vec![
            order(1, HOUR + 1, 500, OrderStatus::Pending, 1),
            order(2, HOUR + MIN - 1, 500, OrderStatus::Pending, 1),
            order(3, HOUR + MIN, 500, OrderStatus::Pending, 1),
            item(1, 1, 10, 1),
            item(2, 2, 10, 1),
            item(3, 3, 10, 1),
        ]));
        let sales = |date, sums| (((Micros(date), 10, None), sums), 1);
        assert_eq!(
            u.sales,
            vec![sales(HOUR, [4, 400]), sales(HOUR + MIN, [2, 200])]
        );
        assert_eq!(
            u.order_totals,
            vec![
                ((Micros(HOUR), [1000, 2]), 1),
                ((Micros(HOUR + MIN), [500, 1]), 1)
            ]
        );
        // product 10 has no category: no category totals
        assert!(u.category_totals.is_empty());
        let dates: Vec<i64> = u
            .live_orders
            .iter()
            .map(|((_, o), _)| o.order_date.0)
            .collect();
        assert_eq!(dates, vec![HOUR + 1, HOUR + MIN - 1, HOUR + MIN]);
        // one of the two goes: its share leaves
        let u = ing.apply(&tx(vec![order(
            2,
            HOUR + MIN - 1,
            500,
            OrderStatus::Cancelled,
            2,
        )]));
        assert_eq!(u.sales, vec![sales(HOUR, [-2, -200])]);
        assert_eq!(u.order_totals, vec![((Micros(HOUR), [-500, -1]), 1)]);
    }

    /// The grain divides every window size, so no date changes window at it, at any size.
    #[test]
    fn the_grain_keeps_every_date_in_its_windows() {
        assert_eq!(date_grain(&windows()), MIN);
        assert_eq!(
            date_grain(&[Window::Size(7_000_000), Window::Size(MIN)]),
            1_000_000
        );
        assert_eq!(date_grain(&[Window::All]), 1);
        assert_eq!(date_grain(&[]), 1);
        let sizes = [7_000_000, MIN, 90_000_000, 5 * MIN, HOUR];
        let grain = date_grain(&sizes.map(Window::Size));
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let date = Micros((x % (400 * HOUR as u64)) as i64 - 200 * HOUR);
            for size in sizes {
                assert_eq!(
                    coarse(date, grain).window_start(size),
                    date.window_start(size)
                );
            }
        }
    }

    #[test]
    fn truncating_items_retracts_every_item_of_every_order() {
        let mut ing = Ingest::new(&windows(), None, 100);
        ing.apply(&tx(vec![
            order(1, HOUR, 500, OrderStatus::Pending, 1),
            order(2, HOUR, 500, OrderStatus::Pending, 1),
            item(1, 1, 10, 1),
            item(2, 1, 11, 1),
            item(3, 2, 10, 1),
        ]));
        let t = Change {
            table: Table::OrderItems,
            op: Op::Truncate,
            lsn: Some(Lsn(50)),
            kind: ChangeKind::Truncate,
        };
        let u = ing.apply(&tx(vec![t]));
        assert_eq!(quantity(&u), -6);
        assert_eq!(u.purchases.iter().map(|(_, r)| *r).sum::<isize>(), -3);
        assert_eq!(u.co_purchases, vec![((10, 11), -1), ((11, 10), -1)]);
        assert!(u.live_orders.is_empty());
    }

    /// Products 10 and 11 in category 1; order 1 holds both, order 2 only 11.
    fn two_orders_of_two_products() -> Vec<Change> {
        vec![
            product(10, Some(1), 1),
            product(11, Some(1), 1),
            order(1, HOUR, 500, OrderStatus::Pending, 1),
            item(1, 1, 10, 1),
            item(2, 1, 11, 1),
            order(2, HOUR, 500, OrderStatus::Pending, 1),
            item(3, 2, 11, 1),
        ]
    }

    #[test]
    fn a_product_changing_category_moves_the_orders_containing_it() {
        let mut ing = Ingest::new(&windows(), None, 100);
        let u = ing.apply(&tx(two_orders_of_two_products()));
        // per category: its items' [quantity, revenue] and its orders, each order once however
        // many of its products are in it
        let cats = |u: &Updates| -> Vec<(i64, [isize; 3])> {
            u.category_totals
                .iter()
                .map(|(((_, c), sums), d)| (*c, sums.map(|v| v * d)))
                .collect()
        };
        assert_eq!(cats(&u), vec![(1, [6, 600, 2])]);
        // product 10 moves: order 1 now has categories 1 (by 11) and 2; order 2 is untouched
        let u = ing.apply(&tx(vec![product(10, Some(2), 2)]));
        assert_eq!(cats(&u), vec![(1, [-2, -200, 0]), (2, [2, 200, 1])]);
        // its sales move with it; the other line of the order is untouched
        let sales: Vec<_> = u
            .sales
            .iter()
            .map(|(((_, p, c), s), d)| (*p, *c, *s, *d))
            .collect();
        assert_eq!(
            sales,
            vec![(10, Some(1), [-2, -200], 1), (10, Some(2), [2, 200], 1)]
        );
        // product 11 loses its category: order 1 leaves 1, order 2 has none left
        let u = ing.apply(&tx(vec![product(11, None, 3)]));
        assert_eq!(cats(&u), vec![(1, [-4, -400, -2])]);
        // a cancelled order no longer follows its products
        ing.apply(&tx(vec![order(1, HOUR, 500, OrderStatus::Cancelled, 4)]));
        let u = ing.apply(&tx(vec![product(10, Some(3), 5)]));
        assert!(u.category_totals.is_empty() && u.sales.is_empty());
    }

    /// A move touching more orders than `Before` searches linearly (and, in the same
    /// transaction, a change to some of them, found again through the product) re-states each
    /// order once: its category totals move whole, its order counts once.
    #[test]
    fn a_move_touching_many_orders_restates_each_once() {
        let mut ing = Ingest::new(&windows(), None, 100);
        let mut first = vec![product(10, Some(1), 1)];
        for id in 1..=40 {
            first.push(order(id, HOUR, 200, OrderStatus::Pending, 1));
            first.push(item(id, id, 10, 1));
        }
        ing.apply(&tx(first));
        // per category, its summed totals, ascending by category
        let cats = |u: &Updates| -> Vec<(i64, [isize; 3])> {
            let mut sums: std::collections::BTreeMap<i64, [isize; 3]> = Default::default();
            for (((_, c), s), d) in &u.category_totals {
                let e = sums.entry(*c).or_default();
                for (t, v) in e.iter_mut().zip(s) {
                    *t += v * d;
                }
            }
            sums.into_iter().collect()
        };
        // orders 3 and 40 change in the same transaction as the move (before and after it)
        let mut moving = vec![order(3, HOUR, 200, OrderStatus::Pending, 2)];
        moving.push(product(10, Some(2), 2));
        moving.push(order(40, HOUR, 200, OrderStatus::Cancelled, 2));
        let u = ing.apply(&tx(moving));
        // 39 live orders move (2 units, 100 each); order 40 leaves category 1 and arrives
        // nowhere
        assert_eq!(
            cats(&u),
            vec![(1, [-80, -8_000, -40]), (2, [78, 7_800, 39])]
        );
        // the next transaction, with one order, is not confused by the last one's
        let u = ing.apply(&tx(vec![item(41, 1, 10, 3)]));
        assert_eq!(cats(&u), vec![(2, [2, 200, 0])]);
    }

    /// The product index built on demand (and dropped after every transaction here) gives the
    /// same updates as one kept all along, including moves in the transaction that creates or
    /// re-creates the order, and moves of products of cancelled or item-less orders.
    #[test]
    fn category_index_on_demand_matches_one_kept_all_along() {
        let mut kept = Ingest::new(&windows(), None, 100);
        kept.index_idle = u64::MAX;
        let mut dropped = Ingest::new(&windows(), None, 100);
        dropped.index_idle = 0;
        let mut first = two_orders_of_two_products();
        first.push(product(12, Some(2), 1));
        let txs = vec![
            first,
            vec![order(9, HOUR, 1, OrderStatus::Pending, 2)],
            vec![product(10, Some(2), 3)],
            // order 3 appears, its product moves, its item goes and comes back, all in one tx
            vec![
                order(3, 2 * HOUR, 700, OrderStatus::Pending, 4),
                item(4, 3, 12, 4),
                product(12, Some(3), 5),
                delete_item(4, 6),
                item(5, 3, 12, 7),
            ],
            vec![product(12, Some(4), 8)],
            vec![
                order(1, HOUR, 500, OrderStatus::Cancelled, 9),
                product(11, Some(5), 9),
            ],
            vec![product(10, Some(6), 10)],
            vec![order(1, HOUR, 500, OrderStatus::Pending, 11)],
            vec![product(11, None, 12), product(10, Some(7), 12)],
            vec![delete_item(3, 13)],
            vec![product(11, Some(8), 14)],
            // redelivered and stale moves change nothing in either
            vec![product(11, Some(8), 14), product(12, Some(9), 6)],
        ];
        for (i, changes) in txs.into_iter().enumerate() {
            let t = tx(changes);
            let (a, b) = (kept.apply(&t), dropped.apply(&t));
            assert_eq!(a, b, "transaction {i}");
            assert!(dropped.orders_by_product.is_none());
        }
        assert!(!kept
            .orders_by_product
            .as_ref()
            .is_some_and(|i| i.is_empty()));
        // order 3 followed its product's last move
        assert!(kept
            .orders_by_product
            .as_ref()
            .is_some_and(|i| i.contains(&(12, 3))));
    }

    #[test]
    fn category_index_is_built_when_needed_and_dropped_when_idle() {
        let mut ing = Ingest::new(&windows(), None, 100);
        ing.index_idle = 3;
        ing.apply(&tx(vec![
            order(1, HOUR, 500, OrderStatus::Pending, 1),
            item(1, 1, 10, 1),
        ]));
        assert!(ing.orders_by_product.is_none(), "no product change yet");
        let u = ing.apply(&tx(vec![product(10, Some(1), 2)]));
        assert_eq!(
            u.category_totals.len(),
            1,
            "the order follows its new product's category"
        );
        assert!(ing.orders_by_product.is_some());
        // a product update that moves nothing neither builds nor keeps the index
        for lsn in 3..6 {
            ing.apply(&tx(vec![order(2, HOUR, 1, OrderStatus::Pending, lsn)]));
        }
        assert!(ing.orders_by_product.is_none());
        ing.apply(&tx(vec![product(10, Some(1), 7)]));
        assert!(ing.orders_by_product.is_none(), "same category: no build");
        let u = ing.apply(&tx(vec![product(10, Some(2), 8)]));
        assert_eq!(
            u.category_totals.len(),
            2,
            "rebuilt: the order moves from 1 to 2"
        );
    }

    #[test]
    fn pair_changes_touch_only_entered_and_left_products() {
        let mut out = vec![];
        pair_changes(&[1, 2, 3], &[1, 3, 4, 5], &mut out);
        view_store::consolidate(&mut out);
        let pairs = |b: &[i64]| -> Vec<((i64, i64), isize)> {
            let mut v = vec![];
            for &p in b {
                for &q in b {
                    if p != q {
                        v.push(((p, q), 1));
                    }
                }
            }
            v
        };
        let mut want = pairs(&[1, 3, 4, 5]);
        want.extend(pairs(&[1, 2, 3]).into_iter().map(|(k, r)| (k, -r)));
        view_store::consolidate(&mut want);
        assert_eq!(out, want);
    }
}
