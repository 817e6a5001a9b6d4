//! The engine's published view contents, read concurrently by the HTTP API and the sinks.
//!
//! Owns: the typed rows of every view (in dump format, see [`rows`]), the store that holds them
//! with the `as_of` they reflect, and the change feed. Invariant: a reader sees either all or
//! none of the changes of one engine time (one source transaction or a batch of them), because
//! the engine applies them under one write lock together with the new `as_of`.
//!
//! Must not compute views (the engine does) nor know about HTTP, Kafka or files.

pub mod rows;
pub mod status;

pub use rows::*;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use sources::{Lsn, Micros};
use std::collections::BTreeMap;
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
            ViewRow::Recommendation(_) => ViewName::Recommendations,
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

/// Bound on a subscriber's queue: a subscriber that lags this many batches behind is dropped
/// (its channel closes) rather than ever blocking the engine.
pub const SUBSCRIBER_QUEUE: usize = 1024;

struct Subscriber {
    view: Option<ViewName>,
    tx: mpsc::Sender<Feed>,
}

struct State {
    as_of: AsOf,
    /// Per view: row → multiplicity (always 1 for a consistent view; kept as a count so that a
    /// bad batch shows up as an anomaly instead of silently vanishing rows).
    views: Vec<BTreeMap<ViewRow, i64>>,
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
    pub fn apply(&self, batch: ChangeBatch) {
        let batch = Arc::new(batch);
        let mut st = self.inner.state.write();
        for (row, diff) in &batch.changes {
            let map = &mut st.views[row.view().index()];
            let count = map.entry(row.clone()).or_insert(0);
            *count += diff;
            let c = *count;
            if c == 0 {
                map.remove(row);
            } else if !(0..=1).contains(&c) {
                self.inner.anomalies.fetch_add(1, Ordering::Relaxed);
            }
        }
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
        drop(st);
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
    pub fn snapshot(&self, view: ViewName) -> (AsOf, Vec<ViewRow>) {
        let st = self.inner.state.read();
        (st.as_of, st.views[view.index()].keys().cloned().collect())
    }

    /// Reads one view under the read lock without copying it all (for filtered API reads).
    pub fn read<R>(&self, view: ViewName, f: impl FnOnce(AsOf, &BTreeMap<ViewRow, i64>) -> R) -> R {
        let st = self.inner.state.read();
        f(st.as_of, &st.views[view.index()])
    }

    /// Number of rows per view.
    pub fn sizes(&self) -> Vec<(ViewName, usize)> {
        let st = self.inner.state.read();
        ViewName::ALL
            .iter()
            .map(|v| (*v, st.views[v.index()].len()))
            .collect()
    }

    /// Subscribes to one view (or all with `None`): the first message is the snapshot, then the
    /// changes of every later engine time, in order, without gaps. The channel closes if the
    /// subscriber falls [`SUBSCRIBER_QUEUE`] batches behind.
    pub fn subscribe(&self, view: Option<ViewName>) -> mpsc::Receiver<Feed> {
        let (tx, rx) = mpsc::channel(SUBSCRIBER_QUEUE);
        let mut st = self.inner.state.write();
        let rows = match view {
            Some(v) => st.views[v.index()].keys().cloned().collect(),
            None => st.views.iter().flat_map(|m| m.keys().cloned()).collect(),
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

    /// Rows whose multiplicity was ever not 0 or 1: a correctness alarm, exported as a metric.
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
}
