//! The engine's published view contents, read concurrently by the HTTP API and the sinks.
//!
//! Owns: the typed rows of every view (in dump format, see [`rows`]), the store that holds them
//! with the `as_of` they reflect, and the change feed. Invariant: a reader sees either all or
//! none of the changes of one engine time (one source transaction or a batch of them), because
//! the engine applies them under one write lock together with the new `as_of`.
//!
//! Two views are derived here rather than sent as rows, from an index the engine keeps up to
//! date with index deltas ([`RecsDelta`], see [`ViewStore::apply_indexed`]) applied in the same
//! batches:
//! * `recommendations`: lists computed when read (see [`recs`]); it has no change feed.
//! * `also_bought`: its rows are derived from the co-occurrence counts as they change, in the
//!   same write (see `co`), and fed and stored like any view's rows. The counts are the ones
//!   recommendations score with, held once.
//!
//! Must not compute the dataflow's views (the engine does) nor know about HTTP, Kafka or files.

mod co;
mod idmap;
pub mod leaders;
mod partners;
mod prefetch;
mod radix;
pub mod recs;
pub mod rows;
pub mod status;

pub use idmap::{gallop, merge_sorted};
pub use prefetch::{prefetch, prefetch_slice};
pub use radix::{ordered, ordered_pair, radix_sort_by, RADIX_SMALL};
pub use recs::{InteractionKind, Recommender, RecsDelta};
pub use rows::*;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use sources::{Lsn, Micros};
use std::borrow::Cow;
use std::collections::{btree_map, BTreeMap};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// The views of SPEC §4, in the order they are listed and dumped.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ViewName {
    Revenue,
    TopProducts,
    TrendingProducts,
    CategorySales,
    FraudAlerts,
    AlsoBought,
    Recommendations,
}

impl ViewName {
    pub const ALL: [ViewName; 7] = [
        ViewName::Revenue,
        ViewName::TopProducts,
        ViewName::TrendingProducts,
        ViewName::CategorySales,
        ViewName::FraudAlerts,
        ViewName::AlsoBought,
        ViewName::Recommendations,
    ];

    /// The dump file stem and the canonical name (`top_products`).
    pub fn as_str(self) -> &'static str {
        match self {
            ViewName::Revenue => "revenue",
            ViewName::TopProducts => "top_products",
            ViewName::TrendingProducts => "trending_products",
            ViewName::CategorySales => "category_sales",
            ViewName::FraudAlerts => "fraud_alerts",
            ViewName::AlsoBought => "also_bought",
            ViewName::Recommendations => "recommendations",
        }
    }

    /// Accepts the canonical name, the URL form (`top-products`) and the short route name
    /// (`trending`).
    pub fn parse(s: &str) -> Option<ViewName> {
        let s = s.replace('-', "_");
        match s.as_str() {
            "trending" => Some(ViewName::TrendingProducts),
            _ => ViewName::ALL.into_iter().find(|v| v.as_str() == s),
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One row of any view.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ViewRow {
    Revenue(RevenueRow),
    TopProduct(TopProductRow),
    Trending(TrendingRow),
    CategorySales(CategorySalesRow),
    FraudAlert(FraudAlertRow),
    AlsoBought(AlsoBoughtRow),
    Recommendation(RecommendationRow),
    /// Not a row: an update of the read-time index of `recommendations` (see [`recs`]). It
    /// travels with the rows of its engine time so that the index and the views stay at one
    /// `as_of`; the store applies it to the index and never stores, feeds or prints it as a row.
    /// Its diff is a multiplicity (any integer), not the 0/1 of a row.
    RecsIndex(RecsDelta),
}

impl ViewRow {
    pub fn view(&self) -> ViewName {
        match self {
            ViewRow::Revenue(_) => ViewName::Revenue,
            ViewRow::TopProduct(_) => ViewName::TopProducts,
            ViewRow::Trending(_) => ViewName::TrendingProducts,
            ViewRow::CategorySales(_) => ViewName::CategorySales,
            ViewRow::FraudAlert(_) => ViewName::FraudAlerts,
            ViewRow::AlsoBought(_) => ViewName::AlsoBought,
            ViewRow::Recommendation(_) | ViewRow::RecsIndex(_) => ViewName::Recommendations,
        }
    }

    /// The row in the dump format of SPEC §7 (what the API, sinks and dumps print).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            ViewRow::Revenue(r) => r.to_json(),
            ViewRow::TopProduct(r) => r.to_json(),
            ViewRow::Trending(r) => r.to_json(),
            ViewRow::CategorySales(r) => r.to_json(),
            ViewRow::FraudAlert(r) => r.to_json(),
            ViewRow::AlsoBought(r) => r.to_json(),
            ViewRow::Recommendation(r) => r.to_json(),
            ViewRow::RecsIndex(d) => d.to_json(),
        }
    }

    /// The row's identity within its view (what a keyed sink uses as the message key): at most
    /// one live row per key. Serialised as a JSON object of the key fields.
    pub fn key(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            ViewRow::Revenue(r) => {
                json!({"window": r.window.label(), "window_start": r.window_start.map(|t| t.to_string())})
            }
            ViewRow::TopProduct(r) => {
                json!({"window": r.window.label(), "window_start": r.window_start.map(|t| t.to_string()),
                "category_id": r.category_id, "metric": r.metric.as_str(), "rank": r.rank})
            }
            ViewRow::Trending(r) => {
                json!({"window": r.window.label(), "window_start": r.window_start.map(|t| t.to_string()), "rank": r.rank})
            }
            ViewRow::CategorySales(r) => {
                json!({"window": r.window.label(), "window_start": r.window_start.map(|t| t.to_string()), "category_id": r.category_id})
            }
            ViewRow::FraudAlert(r) => {
                // high_value: one per order; frequent_orders: per (customer, window start);
                // order_burst: one per customer; repeated_amount: per (customer, amount).
                match r.rule {
                    Rule::HighValue => json!({"rule": r.rule.as_str(), "order_id": r.order_id}),
                    Rule::FrequentOrders => {
                        json!({"rule": r.rule.as_str(), "customer_id": r.customer_id, "start": r.start.to_string()})
                    }
                    Rule::OrderBurst => {
                        json!({"rule": r.rule.as_str(), "customer_id": r.customer_id})
                    }
                    Rule::RepeatedAmount => {
                        json!({"rule": r.rule.as_str(), "customer_id": r.customer_id, "amount": r.amount.map(|m| m.to_string())})
                    }
                }
            }
            ViewRow::AlsoBought(r) => json!({"product_id": r.product_id, "rank": r.rank}),
            ViewRow::Recommendation(r) => json!({"customer_id": r.customer_id, "rank": r.rank}),
            ViewRow::RecsIndex(d) => d.to_json(),
        }
    }
}

/// The source position a store state reflects.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AsOf {
    /// Engine time: how many source transactions have been applied (monotone).
    pub time: u64,
    /// Highest source LSN applied (`None` before the first, or for sources without LSNs).
    pub lsn: Option<Lsn>,
    /// Wall-clock time at which this state was published.
    pub published_at: Option<Micros>,
}

impl AsOf {
    /// `{"time": 42, "lsn": "0/16B3748", "published_at": "…"}`
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"time": self.time, "lsn": self.lsn.map(|l| l.to_string()),
            "published_at": self.published_at.map(|t| t.to_string())})
    }
}

/// Sums the diffs of equal records and drops the zeros (sorts by record).
pub fn consolidate<D: Ord, R: Copy + Default + PartialEq + std::ops::AddAssign>(
    v: &mut Vec<(D, R)>,
) {
    let zero = R::default();
    if v.len() < 2 {
        v.retain(|(_, r)| *r != zero);
        return;
    }
    // stable: the batches arrive as runs already sorted (each operator's output, each input's
    // deltas), which the stable sort merges; an unstable sort of the store's rows ran 60% more
    // instructions (callgrind, store_batch). Merged in place rather than into a second vector.
    v.sort_by(|a, b| a.0.cmp(&b.0));
    // `dedup_by` hands the later of two neighbours first: its diff joins the kept one
    v.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            kept.1 += later.1;
        }
        same
    });
    v.retain(|(_, r)| *r != zero);
}

/// Puts the retractions before the insertions, each in the order it had (a stable partition
/// by sign): the order a [`ChangeBatch`] is applied in. The leading retractions stay where they
/// are and each insertion after them moves out and back once, where a stable sort by sign
/// allocated and copied the whole batch.
pub fn retractions_first<T>(changes: &mut Vec<(T, i64)>) {
    let from = changes
        .iter()
        .position(|(_, r)| *r > 0)
        .unwrap_or(changes.len());
    let mut insertions = Vec::with_capacity(changes[from..].iter().filter(|(_, r)| *r > 0).count());
    insertions.extend(changes.extract_if(from.., |(_, r)| *r > 0));
    changes.extend(insertions);
}

/// The changes of one engine time, in the order they must be applied (retractions first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeBatch {
    pub as_of: AsOf,
    /// `(row, diff)`: +1 inserts the row, −1 retracts it.
    pub changes: Vec<(ViewRow, i64)>,
}

/// What a subscriber receives.
#[derive(Clone, Debug)]
pub enum Feed {
    /// The whole view at subscription time.
    Snapshot { as_of: AsOf, rows: Vec<ViewRow> },
    /// The changes of one engine time for the subscribed view.
    Changes(Arc<ChangeBatch>),
}

/// K of `also_bought` and `recommendations` until the engine sets its own
/// (`ViewsConfig::also_bought_k`'s default).
pub const DEFAULT_K: usize = 10;

/// Bound on a subscriber's queue: a subscriber that lags this many batches behind is dropped
/// (its channel closes) rather than ever blocking the engine.
pub const SUBSCRIBER_QUEUE: usize = 1024;

struct Subscriber {
    view: Option<ViewName>,
    tx: mpsc::Sender<Feed>,
}

impl State {
    fn rows(&self, view: ViewName) -> Rows<'_> {
        match view {
            ViewName::AlsoBought => Rows::AlsoBought(&self.also_bought),
            _ => Rows::Map(&self.views[view.index()]),
        }
    }
}

/// One view's current rows, read under the store's lock (see [`ViewStore::read`]).
#[derive(Clone, Copy)]
pub enum Rows<'a> {
    Map(&'a BTreeMap<ViewRow, i64>),
    AlsoBought(&'a co::AlsoBoughtRows),
}

impl<'a> Rows<'a> {
    pub fn len(&self) -> usize {
        match self {
            Rows::Map(m) => m.len(),
            Rows::AlsoBought(m) => m.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows in dump order, from the first at or after `start` (all with `None`): borrowed
    /// where the view keeps rows, so a filtered read copies only the rows it keeps.
    pub fn from(self, start: Option<&ViewRow>) -> Box<dyn Iterator<Item = Cow<'a, ViewRow>> + 'a> {
        match (self, start) {
            (Rows::Map(m), None) => Box::new(m.keys().map(Cow::Borrowed)),
            (Rows::Map(m), Some(s)) => Box::new(
                m.range::<ViewRow, _>((Bound::Included(s), Bound::Unbounded))
                    .map(|(r, _)| Cow::Borrowed(r)),
            ),
            (Rows::AlsoBought(m), start) => {
                let from = match start {
                    Some(ViewRow::AlsoBought(s)) => (s.product_id, s.rank),
                    // rows of other views sort before or after all of this one's
                    Some(s) if s.view() > ViewName::AlsoBought => (i64::MAX, u32::MAX),
                    _ => (i64::MIN, 0),
                };
                let start = start.cloned();
                Box::new(
                    m.range(from..)
                        .map(|(k, v)| co::also_bought_row(k, v))
                        .skip_while(move |r| start.as_ref().is_some_and(|s| r < s))
                        .map(Cow::Owned),
                )
            }
        }
    }
}

struct State {
    as_of: AsOf,
    /// Per view: row → multiplicity (always 1 for a consistent view; kept as a count so that a
    /// bad batch shows up as an anomaly instead of silently vanishing rows).
    views: Vec<BTreeMap<ViewRow, i64>>,
    /// The rows of `also_bought` (its map in `views` stays empty), see [`co::AlsoBoughtRows`].
    also_bought: co::AlsoBoughtRows,
    /// The read-time index of `recommendations` (its map in `views` stays empty), with the
    /// co-occurrence counts `also_bought`'s rows are derived from.
    recs: recs::RecsIndex,
    /// K of `also_bought` and `recommendations` (`--top-k`): the length of each product's
    /// and each customer's list.
    k: usize,
    subscribers: Vec<Subscriber>,
}

/// The concurrently readable store. Cheap to clone (an `Arc`).
#[derive(Clone)]
pub struct ViewStore {
    inner: Arc<Inner>,
}

struct Inner {
    state: RwLock<State>,
    as_of_tx: watch::Sender<AsOf>,
    anomalies: AtomicU64,
    dropped_subscribers: AtomicU64,
}

impl Default for ViewStore {
    fn default() -> Self {
        Self::new()
    }
}

impl ViewStore {
    pub fn new() -> Self {
        let (as_of_tx, _) = watch::channel(AsOf::default());
        ViewStore {
            inner: Arc::new(Inner {
                state: RwLock::new(State {
                    as_of: AsOf::default(),
                    views: ViewName::ALL.iter().map(|_| BTreeMap::new()).collect(),
                    also_bought: co::AlsoBoughtRows::new(),
                    recs: recs::RecsIndex::default(),
                    k: DEFAULT_K,
                    subscribers: Vec::new(),
                }),
                as_of_tx,
                anomalies: AtomicU64::new(0),
                dropped_subscribers: AtomicU64::new(0),
            }),
        }
    }

    /// Applies one engine time's changes and moves `as_of`, atomically for every reader.
    /// Never blocks on subscribers: a full subscriber queue drops that subscriber.
    ///
    /// [`ViewRow::RecsIndex`] rows are index deltas as with [`ViewStore::apply_indexed`]: they
    /// go to the index and are left out of what subscribers receive.
    pub fn apply(&self, batch: ChangeBatch) {
        self.apply_indexed(batch, Vec::new());
    }

    /// [`ViewStore::apply`] with the time's index deltas beside the rows (any order, repeats
    /// allowed; each diff a multiplicity): they go to the index under the same lock, and the
    /// `also_bought` rows they change are added to the batch subscribers receive.
    ///
    /// Why beside and not as [`ViewRow::RecsIndex`] rows: most of a time's changes are index
    /// deltas (co-occurrence pairs above all: 709k of 966k changes in the stages bench), and as
    /// rows they were consolidated in the batch's sort of large rows, moved by its
    /// retractions-first partition and taken out again here.
    pub fn apply_indexed(&self, mut batch: ChangeBatch, mut index: Vec<(RecsDelta, i64)>) {
        let mut guard = self.inner.state.write();
        let st = &mut *guard;
        let mut anomalies = 0u64;
        let mut in_rows = false;
        for (row, diff) in &batch.changes {
            match row {
                ViewRow::RecsIndex(delta) => {
                    index.push((*delta, *diff));
                    in_rows = true;
                }
                // Derived here from the index; rows sent in would be a second, diverging truth.
                ViewRow::Recommendation(_) | ViewRow::AlsoBought(_) => anomalies += 1,
                _ => {
                    // one search per change: a row that drops to 0 goes through its entry
                    let map = &mut st.views[row.view().index()];
                    let c = match map.entry(row.clone()) {
                        btree_map::Entry::Occupied(mut e) => {
                            *e.get_mut() += diff;
                            let c = *e.get();
                            if c == 0 {
                                e.remove();
                            }
                            c
                        }
                        btree_map::Entry::Vacant(e) if *diff != 0 => *e.insert(*diff),
                        btree_map::Entry::Vacant(_) => 0,
                    };
                    if !(0..=1).contains(&c) {
                        anomalies += 1;
                    }
                }
            }
        }
        if in_rows || anomalies > 0 {
            batch.changes.retain(|(row, _)| {
                !matches!(
                    row,
                    ViewRow::RecsIndex(_) | ViewRow::Recommendation(_) | ViewRow::AlsoBought(_)
                )
            });
        }
        let (co_deltas, refused) = st.recs.apply_deltas(index);
        anomalies += refused;
        if !co_deltas.is_empty() {
            let (refused, also_bought) =
                co::apply_batch(&mut st.recs.co, co_deltas, st.k, &mut st.also_bought);
            anomalies += refused;
            if !also_bought.is_empty() {
                // retractions first over the whole batch again: into a retractions-first batch,
                // the view's retractions go after the batch's and its insertions last, each row
                // moved once into a vector of the final size (a partition of the whole batch ran
                // the store 3.7% more instructions; splicing into the batch's own vector
                // reallocated and copied it, then moved its insertions again)
                let at = batch.changes.partition_point(|(_, r)| *r < 0);
                if batch.changes[at..].iter().all(|(_, r)| *r >= 0) {
                    let mut also_bought = also_bought;
                    let inserted =
                        also_bought.split_off(also_bought.partition_point(|(_, r)| *r < 0));
                    let mut merged = Vec::with_capacity(
                        batch.changes.len() + also_bought.len() + inserted.len(),
                    );
                    let mut rows = std::mem::take(&mut batch.changes).into_iter();
                    merged.extend(rows.by_ref().take(at));
                    merged.extend(also_bought);
                    merged.extend(rows);
                    merged.extend(inserted);
                    batch.changes = merged;
                } else {
                    batch.changes.extend(also_bought);
                    retractions_first(&mut batch.changes);
                }
            }
        }
        if anomalies > 0 {
            self.inner.anomalies.fetch_add(anomalies, Ordering::Relaxed);
        }
        let batch = Arc::new(batch);
        st.as_of = batch.as_of;
        let mut dropped = 0;
        st.subscribers.retain(|s| {
            let relevant: Vec<(ViewRow, i64)> = match s.view {
                None => batch.changes.clone(),
                Some(v) => batch
                    .changes
                    .iter()
                    .filter(|(r, _)| r.view() == v)
                    .cloned()
                    .collect(),
            };
            if relevant.is_empty() && s.view.is_some() {
                // Still tell the subscriber the position moved, so it can follow as_of.
                let ok = !s.tx.is_closed();
                if !ok {
                    dropped += 1;
                }
                return ok;
            }
            let feed = if s.view.is_none() {
                Feed::Changes(batch.clone())
            } else {
                Feed::Changes(Arc::new(ChangeBatch {
                    as_of: batch.as_of,
                    changes: relevant,
                }))
            };
            match s.tx.try_send(feed) {
                Ok(()) => true,
                Err(_) => {
                    dropped += 1;
                    false
                }
            }
        });
        drop(guard);
        if dropped > 0 {
            self.inner
                .dropped_subscribers
                .fetch_add(dropped, Ordering::Relaxed);
        }
        self.inner.as_of_tx.send_replace(batch.as_of);
    }

    /// Moves `as_of` without changes (a transaction that changed no view).
    pub fn advance(&self, as_of: AsOf) {
        self.apply(ChangeBatch {
            as_of,
            changes: Vec::new(),
        });
    }

    pub fn as_of(&self) -> AsOf {
        self.inner.state.read().as_of
    }

    /// A consistent copy of one view, sorted in dump order, with the `as_of` it reflects.
    /// For `recommendations` every list is computed (cost grows with the customers: the dump
    /// and tests use this; the API reads pages and single customers instead).
    pub fn snapshot(&self, view: ViewName) -> (AsOf, Vec<ViewRow>) {
        if view == ViewName::Recommendations {
            return self.with_recommender(|as_of, r| {
                let (rows, _) = r.rows(None, usize::MAX);
                (
                    as_of,
                    rows.into_iter().map(ViewRow::Recommendation).collect(),
                )
            });
        }
        let st = self.inner.state.read();
        (
            st.as_of,
            st.rows(view).from(None).map(Cow::into_owned).collect(),
        )
    }

    /// Reads one view under the read lock without copying it all (for filtered API reads).
    /// The rows of `recommendations` are always empty: use [`ViewStore::with_recommender`].
    pub fn read<R>(&self, view: ViewName, f: impl FnOnce(AsOf, Rows<'_>) -> R) -> R {
        let st = self.inner.state.read();
        f(st.as_of, st.rows(view))
    }

    /// Sets K of `also_bought` and `recommendations` (the engine sets it from its
    /// configuration at start, before any change: rows already derived keep their length).
    pub fn set_top_k(&self, k: usize) {
        self.inner.state.write().k = k;
    }

    /// Runs `f` with a [`Recommender`] over one consistent state (under the read lock: keep
    /// `f` short on a live engine) and the `as_of` it reflects.
    pub fn with_recommender<R>(&self, f: impl FnOnce(AsOf, &Recommender<'_>) -> R) -> R {
        let st = self.inner.state.read();
        let r = Recommender::new(&st.recs, &st.views[ViewName::TopProducts.index()], st.k);
        f(st.as_of, &r)
    }

    /// The first `k` recommendations of one customer, computed now, with the `as_of` they
    /// reflect (empty for a customer without interactions).
    pub fn recommend(&self, customer: i64, k: usize) -> (AsOf, Vec<RecommendationRow>) {
        self.with_recommender(|as_of, r| (as_of, r.recommend(customer, k)))
    }

    /// Every customer with any interaction (the customers `recommendations` has a list for),
    /// ascending.
    pub fn recommended_customers(&self) -> Vec<i64> {
        self.with_recommender(|_, r| r.customers().collect())
    }

    /// Number of rows per view. For `recommendations`, whose rows are computed when read, the
    /// number of customers with a list (each up to K rows).
    pub fn sizes(&self) -> Vec<(ViewName, usize)> {
        let st = self.inner.state.read();
        ViewName::ALL
            .iter()
            .map(|v| match v {
                ViewName::Recommendations => (*v, st.recs.customer_count()),
                _ => (*v, st.rows(*v).len()),
            })
            .collect()
    }

    /// Subscribes to one view (or all with `None`): the first message is the snapshot, then the
    /// changes of every later engine time, in order, without gaps. The channel closes if the
    /// subscriber falls [`SUBSCRIBER_QUEUE`] batches behind. `recommendations` has no feed
    /// (its lists are computed when read): its snapshot is empty and it never changes here.
    pub fn subscribe(&self, view: Option<ViewName>) -> mpsc::Receiver<Feed> {
        let (tx, rx) = mpsc::channel(SUBSCRIBER_QUEUE);
        let mut st = self.inner.state.write();
        let rows = match view {
            Some(v) => st.rows(v).from(None).map(Cow::into_owned).collect(),
            None => ViewName::ALL
                .iter()
                .flat_map(|&v| st.rows(v).from(None))
                .map(Cow::into_owned)
                .collect(),
        };
        // Cannot fail: the channel is new and empty.
        let _ = tx.try_send(Feed::Snapshot {
            as_of: st.as_of,
            rows,
        });
        st.subscribers.push(Subscriber { view, tx });
        rx
    }

    /// Watches `as_of` (for `min_lsn` read-your-writes waits).
    pub fn watch_as_of(&self) -> watch::Receiver<AsOf> {
        self.inner.as_of_tx.subscribe()
    }

    /// Waits until the store reflects at least `lsn`, up to `timeout`. Returns the `as_of`
    /// reached, or `Err` with the last one seen on timeout.
    pub async fn wait_for_lsn(&self, lsn: Lsn, timeout: std::time::Duration) -> Result<AsOf, AsOf> {
        let mut rx = self.watch_as_of();
        let fut = rx.wait_for(|a| a.lsn.is_some_and(|l| l >= lsn));
        let reached = match tokio::time::timeout(timeout, fut).await {
            Ok(Ok(a)) => Ok(*a),
            _ => Err(self.as_of()),
        };
        reached
    }

    /// Rows whose multiplicity was ever not 0 or 1, recommendations index deltas that did not
    /// fit the index, and `Recommendation` rows applied as rows: a correctness alarm, exported
    /// as a metric.
    pub fn anomalies(&self) -> u64 {
        self.inner.anomalies.load(Ordering::Relaxed)
    }

    pub fn dropped_subscribers(&self) -> u64 {
        self.inner.dropped_subscribers.load(Ordering::Relaxed)
    }

    /// Number of live subscribers.
    pub fn subscriber_count(&self) -> usize {
        self.inner.state.read().subscribers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sources::Money;

    fn rev(start: i64, n: i64) -> ViewRow {
        ViewRow::Revenue(RevenueRow::new(
            Window::Size(60_000_000),
            Micros(start),
            n,
            Money(100 * n),
            Money::ZERO,
        ))
    }

    /// A stable partition by sign, whatever the order it is given.
    #[test]
    fn retractions_first_is_a_stable_partition_by_sign() {
        let signs: [i64; 9] = [-1, -1, 1, -1, 2, 1, -3, -1, 1];
        let mut changes: Vec<(ViewRow, i64)> = (0..)
            .zip(signs)
            .map(|(start, d)| (rev(start, 1), d))
            .collect();
        let mut want = changes.clone();
        want.sort_by_key(|(_, r)| *r > 0);
        retractions_first(&mut changes);
        assert_eq!(changes, want);
    }

    /// The `also_bought` changes a batch's co-occurrence deltas cause are merged into what
    /// subscribers get as a stable sort by sign would: retractions first, each run in order.
    #[test]
    fn also_bought_changes_join_the_batch_retractions_first() {
        use crate::co::tests::ab;
        let co = |p, q| {
            ViewRow::RecsIndex(RecsDelta::CoPurchase {
                product: p,
                other: q,
            })
        };
        let s = ViewStore::new();
        let mut sub = s.subscribe(None);
        let at = |time| AsOf {
            time,
            lsn: None,
            published_at: None,
        };
        s.apply(ChangeBatch {
            as_of: at(1),
            changes: vec![(rev(0, 1), 1), (co(1, 2), 1), (co(2, 1), 1)],
        });
        // 1's partner changes from 2 to 3 (retract, insert), revenue moves
        s.apply(ChangeBatch {
            as_of: at(2),
            changes: vec![
                (rev(0, 1), -1),
                (co(1, 2), -1),
                (co(2, 1), -1),
                (co(1, 3), 1),
                (co(3, 1), 1),
                (rev(0, 2), 1),
            ],
        });
        let mut got = Vec::new();
        while let Ok(feed) = sub.try_recv() {
            if let Feed::Changes(b) = feed {
                got.push(b.changes.clone());
            }
        }
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0],
            vec![(rev(0, 1), 1), (ab(1, 1, 2, 1), 1), (ab(2, 1, 1, 1), 1)]
        );
        assert_eq!(
            got[1],
            vec![
                (rev(0, 1), -1),
                (ab(1, 1, 2, 1), -1),
                (ab(2, 1, 1, 1), -1),
                (rev(0, 2), 1),
                (ab(1, 1, 3, 1), 1),
                (ab(3, 1, 1, 1), 1),
            ]
        );
    }

    #[test]
    fn apply_snapshot_subscribe() {
        let s = ViewStore::new();
        let mut sub = s.subscribe(Some(ViewName::Revenue));
        s.apply(ChangeBatch {
            as_of: AsOf {
                time: 1,
                lsn: Some(Lsn(10)),
                published_at: None,
            },
            changes: vec![(rev(0, 1), 1)],
        });
        s.apply(ChangeBatch {
            as_of: AsOf {
                time: 2,
                lsn: Some(Lsn(20)),
                published_at: None,
            },
            changes: vec![(rev(0, 1), -1), (rev(0, 2), 1)],
        });
        let (a, rows) = s.snapshot(ViewName::Revenue);
        assert_eq!(a.time, 2);
        assert_eq!(rows, vec![rev(0, 2)]);
        assert!(matches!(sub.try_recv(), Ok(Feed::Snapshot { rows, .. }) if rows.is_empty()));
        assert!(matches!(sub.try_recv(), Ok(Feed::Changes(b)) if b.as_of.time == 1));
        assert!(
            matches!(sub.try_recv(), Ok(Feed::Changes(b)) if b.as_of.time == 2 && b.changes.len() == 2)
        );
        assert_eq!(s.anomalies(), 0);
    }

    fn index(d: RecsDelta) -> ViewRow {
        ViewRow::RecsIndex(d)
    }

    fn best(scope: Option<i64>, rank: u32, product: i64) -> ViewRow {
        ViewRow::TopProduct(TopProductRow {
            window: Window::All,
            window_start: None,
            category_id: scope,
            metric: Metric::Quantity,
            rank,
            product_id: product,
            quantity: 100 - rank as i64,
            revenue: Money(0),
        })
    }

    fn batch(time: u64, changes: Vec<(ViewRow, i64)>) -> ChangeBatch {
        ChangeBatch {
            as_of: AsOf {
                time,
                lsn: None,
                published_at: None,
            },
            changes,
        }
    }

    fn listed(s: &ViewStore, c: i64, k: usize) -> Vec<(i64, i64)> {
        s.recommend(c, k)
            .1
            .iter()
            .map(|r| (r.product_id, r.score))
            .collect()
    }

    #[test]
    fn recommendations_are_computed_from_the_index_at_one_as_of() {
        use InteractionKind::*;
        let s = ViewStore::new();
        s.set_top_k(3);
        let mut all = s.subscribe(None);
        let co = |product, other| index(RecsDelta::CoPurchase { product, other });
        let touch = |customer, product, kind| {
            index(RecsDelta::Interaction {
                customer,
                product,
                kind,
            })
        };
        s.apply(batch(
            1,
            vec![
                // 1 was bought with 2 (twice) and 3 (once); 3 with 4
                (co(1, 2), 2),
                (co(1, 3), 1),
                (co(3, 4), 1),
                // customer 5 viewed 1 (weight 1) and has 3 in the cart (weight 3, excluded)
                (touch(5, 1, View), 1),
                (touch(5, 3, Cart), 1),
                // 4 is inactive; 6 and 7 are in category 9, which 8 browsed
                (index(RecsDelta::Inactive { product: 4 }), 1),
                (
                    index(RecsDelta::Category {
                        product: 6,
                        category: 9,
                    }),
                    1,
                ),
                (
                    index(RecsDelta::Category {
                        product: 7,
                        category: 9,
                    }),
                    1,
                ),
                (
                    index(RecsDelta::Browse {
                        customer: 8,
                        category: 9,
                    }),
                    1,
                ),
                // best sellers: global 3, 7; category 9: 7, 6
                (best(None, 1, 3), 1),
                (best(None, 2, 7), 1),
                (best(Some(9), 1, 7), 1),
                (best(Some(9), 2, 6), 1),
            ],
        ));
        // 5: score(2) = 1×2, score(3) excluded, score(4) = 3×1 but inactive; then the global
        // best sellers (no favourite category): 3 is excluded, 7
        assert_eq!(listed(&s, 5, 3), vec![(2, 2), (7, 0)]);
        // 8 only browsed: category 9's best sellers, then the global ones (3)
        assert_eq!(listed(&s, 8, 3), vec![(7, 0), (6, 0), (3, 0)]);
        assert_eq!(listed(&s, 8, 1), vec![(7, 0)]);
        assert_eq!(listed(&s, 99, 3), vec![]);
        assert_eq!(s.recommended_customers(), vec![5, 8]);
        let (a, rows) = s.snapshot(ViewName::Recommendations);
        assert_eq!(a.time, 1);
        assert_eq!(rows.len(), 5);
        assert!(s.sizes().contains(&(ViewName::Recommendations, 2)));

        // the cart row goes (3 is offered: 1 × co(1, 3), and 4 loses its score) and an order
        // with 1 and 2 goes
        s.apply(batch(2, vec![(touch(5, 3, Cart), -1), (co(1, 2), -1)]));
        assert_eq!(listed(&s, 5, 3), vec![(2, 1), (3, 1), (7, 0)]);
        // everything of 8 goes: no list
        s.apply(batch(
            3,
            vec![(
                index(RecsDelta::Browse {
                    customer: 8,
                    category: 9,
                }),
                -1,
            )],
        ));
        assert_eq!(s.recommended_customers(), vec![5]);
        assert_eq!(s.anomalies(), 0);

        // subscribers never see the index, but do see the also_bought rows it derives (k = 3):
        // 1 -> 2 (2 orders), 3 (1); 3 -> 4 (1) (the deltas here are one-directional)
        use crate::co::tests::ab;
        assert!(matches!(all.try_recv(), Ok(Feed::Snapshot { rows, .. }) if rows.is_empty()));
        match all.try_recv() {
            Ok(Feed::Changes(b)) => {
                let mut views: Vec<ViewName> = b.changes.iter().map(|(r, _)| r.view()).collect();
                views.dedup();
                assert_eq!(views, vec![ViewName::TopProducts, ViewName::AlsoBought]);
                let also: Vec<(ViewRow, i64)> = b.changes[4..].to_vec();
                assert_eq!(
                    also,
                    vec![
                        (ab(1, 1, 2, 2), 1),
                        (ab(1, 2, 3, 1), 1),
                        (ab(3, 1, 4, 1), 1)
                    ]
                );
            }
            other => panic!("{other:?}"),
        }
        // the order with 1 and 2 went: 2 and 3 tie at 1, the smaller id first
        match all.try_recv() {
            Ok(Feed::Changes(b)) => {
                assert_eq!(b.changes, vec![(ab(1, 1, 2, 2), -1), (ab(1, 1, 2, 1), 1)])
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(all.try_recv(), Ok(Feed::Changes(b)) if b.changes.is_empty()));
        assert_eq!(
            s.snapshot(ViewName::AlsoBought).1,
            vec![ab(1, 1, 2, 1), ab(1, 2, 3, 1), ab(3, 1, 4, 1)]
        );
        // reads from a start row give the rows at or after it, in dump order, whatever the
        // start (a row of this view, present or not, or of a view before or after it)
        let all_rows = s.snapshot(ViewName::AlsoBought).1;
        let starts = [
            ab(1, 1, 2, 1),
            ab(1, 1, 2, 0),
            ab(1, 1, 2, 5),
            ab(1, 2, 0, 0),
            ab(2, 0, 0, 0),
            ab(3, 1, 4, 1),
            ab(9, 0, 0, 0),
            ViewRow::Revenue(RevenueRow::new(
                Window::All,
                Micros(0),
                0,
                Money(0),
                Money(0),
            )),
            ViewRow::Recommendation(RecommendationRow {
                customer_id: 0,
                rank: 0,
                product_id: 0,
                score: 0,
            }),
        ];
        for start in starts {
            let got: Vec<ViewRow> = s.read(ViewName::AlsoBought, |_, rows| {
                rows.from(Some(&start)).map(Cow::into_owned).collect()
            });
            let want: Vec<ViewRow> = all_rows.iter().filter(|r| **r >= start).cloned().collect();
            assert_eq!(got, want, "from {start:?}");
        }
        // rows sent in for a derived view are refused
        s.apply(batch(4, vec![(ab(9, 1, 8, 1), 1)]));
        assert_eq!(s.anomalies(), 1);
        assert_eq!(s.snapshot(ViewName::AlsoBought).1.len(), 3);

        // an inconsistent delta is an anomaly, not a panic
        s.apply(batch(5, vec![(co(40, 41), -1)]));
        assert_eq!(s.anomalies(), 2);
        // so is a weight beyond what the index holds (u32), and the entry keeps its weight
        s.apply(batch(6, vec![(touch(5, 1, View), i64::from(u32::MAX))]));
        assert_eq!(s.anomalies(), 3);
        assert_eq!(listed(&s, 5, 3), vec![(2, 1), (3, 1), (7, 0)]);
    }

    /// Index deltas handed beside the rows may come in any order and split into repeats: the
    /// store nets them and applies retractions first, so its index, recommendations,
    /// `also_bought` rows and feed are those of the same deltas netted and ordered (here as
    /// [`ViewRow::RecsIndex`] rows, retractions first), and nothing is refused, even a
    /// category move whose insertion comes before its retraction.
    #[test]
    fn index_deltas_beside_the_rows_in_any_order_and_repeats() {
        use rand::seq::SliceRandom;
        use rand::{Rng, SeedableRng};
        use InteractionKind::*;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let (a, b) = (ViewStore::new(), ViewStore::new());
        a.set_top_k(3);
        b.set_top_k(3);
        let (mut feed_a, mut feed_b) = (a.subscribe(None), b.subscribe(None));
        // what is in the index now, per delta (never negative)
        let mut held: BTreeMap<RecsDelta, i64> = BTreeMap::new();
        let mut category: BTreeMap<i64, i64> = BTreeMap::new();
        for time in 1..=60u64 {
            let mut net: BTreeMap<RecsDelta, i64> = BTreeMap::new();
            for _ in 0..rng.random_range(0..12) {
                let product = rng.random_range(1..8);
                let delta = match rng.random_range(0..4) {
                    0 => RecsDelta::CoPurchase {
                        product,
                        other: rng.random_range(8..12),
                    },
                    1 => RecsDelta::Interaction {
                        customer: rng.random_range(1..5),
                        product,
                        kind: [Purchase, Cart, Wishlist, View][rng.random_range(0..4)],
                    },
                    2 => RecsDelta::Browse {
                        customer: rng.random_range(1..5),
                        category: rng.random_range(1..3),
                    },
                    _ => {
                        // the product moves to another category (or gets its first)
                        let to = rng.random_range(1..4);
                        if let Some(from) = category.insert(product, to) {
                            let old = RecsDelta::Category {
                                product,
                                category: from,
                            };
                            *held.entry(old).or_default() -= 1;
                            *net.entry(old).or_default() -= 1;
                        }
                        let new = RecsDelta::Category {
                            product,
                            category: to,
                        };
                        *held.entry(new).or_default() += 1;
                        *net.entry(new).or_default() += 1;
                        continue;
                    }
                };
                // add one, or take one away where there is one
                let n = held.entry(delta).or_default();
                let d = if *n > 0 && rng.random_bool(0.4) {
                    -1
                } else {
                    1
                };
                *n += d;
                *net.entry(delta).or_default() += d;
            }
            net.retain(|_, d| *d != 0);
            let mut rows: Vec<(ViewRow, i64)> = net.iter().map(|(d, n)| (index(*d), *n)).collect();
            rows.sort_by_key(|(_, n)| *n > 0);
            a.apply(batch(time, rows));
            let mut beside: Vec<(RecsDelta, i64)> = net
                .iter()
                .flat_map(|(d, n)| [(*d, n + 1), (*d, -1)])
                .collect();
            beside.shuffle(&mut rng);
            b.apply_indexed(batch(time, Vec::new()), beside);

            for c in 0..6 {
                assert_eq!(
                    listed(&a, c, 3),
                    listed(&b, c, 3),
                    "time {time}, customer {c}"
                );
            }
            // the customers listed, in id order, are those with an interaction or browse held
            let holding: std::collections::BTreeSet<i64> = held
                .iter()
                .filter(|(_, n)| **n > 0)
                .filter_map(|(d, _)| match *d {
                    RecsDelta::Interaction { customer, .. }
                    | RecsDelta::Browse { customer, .. } => Some(customer),
                    _ => None,
                })
                .collect();
            let holding: Vec<i64> = holding.into_iter().collect();
            assert_eq!(a.recommended_customers(), holding, "time {time}");
            assert_eq!(b.recommended_customers(), holding, "time {time}");
            assert_eq!(
                a.snapshot(ViewName::AlsoBought),
                b.snapshot(ViewName::AlsoBought)
            );
            let changes = |f: &mut mpsc::Receiver<Feed>| match f.try_recv() {
                Ok(Feed::Changes(c)) => Some(c.changes.clone()),
                _ => None,
            };
            if time == 1 {
                // the snapshots at subscription
                assert!(changes(&mut feed_a).is_none() && changes(&mut feed_b).is_none());
            }
            assert_eq!(changes(&mut feed_a), changes(&mut feed_b), "time {time}");
        }
        assert_eq!((a.anomalies(), b.anomalies()), (0, 0));
        assert!(!a.recommended_customers().is_empty());
    }
}
