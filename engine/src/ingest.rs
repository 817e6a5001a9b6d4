//! From source transactions to dataflow input updates: upsert per key (see [`crate::upsert`]),
//! then the retention state machine that maintains `order_windows`.
//!
//! Retention (SPEC §4): windowed views keep windows that end after (highest order_date seen −
//! retention). "Seen" is read as: in any order image ever applied, cancelled ones included, so
//! the cutoff never moves back. The window just before the oldest visible one is kept as
//! `PrevOnly`, so that `prev_*` values still come from the full data; anything older is retracted
//! from `order_windows`, which bounds every windowed arrangement.
//!
//! Runs on the ingest thread, never on a timely worker. Owns the upsert state and the live-order
//! date index; must not know about timely.

use crate::facts::*;
use crate::upsert::{Delta, OrderImage, Projected, UpsertState};
use sources::{Micros, Transaction};
use std::collections::BTreeSet;
use view_store::Window;

/// Updates for each dataflow input, for one engine time.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Updates {
    pub live_orders: Vec<((i64, LiveOrder), isize)>,
    pub order_windows: Vec<((i64, OrderWindow), isize)>,
    pub items: Vec<((i64, Item), isize)>,
    pub products: Vec<((i64, ProductFacts), isize)>,
    pub carts: Vec<((i64, Interaction), isize)>,
    pub wishlists: Vec<((i64, Interaction), isize)>,
    pub product_views: Vec<((i64, ViewEvent), isize)>,
}

impl Updates {
    pub fn len(&self) -> usize {
        self.live_orders.len()
            + self.order_windows.len()
            + self.items.len()
            + self.products.len()
            + self.carts.len()
            + self.wishlists.len()
            + self.product_views.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Cancels `+x` against `−x` within the batch, so superseded updates (a row changed twice in
    /// one transaction) never reach the dataflow.
    pub fn consolidate(&mut self) {
        consolidate(&mut self.live_orders);
        consolidate(&mut self.order_windows);
        consolidate(&mut self.items);
        consolidate(&mut self.products);
        consolidate(&mut self.carts);
        consolidate(&mut self.wishlists);
        consolidate(&mut self.product_views);
    }
}

/// Sums the diffs of equal records and drops the zeros (sorts by record).
pub(crate) fn consolidate<D: Ord>(v: &mut Vec<(D, isize)>) {
    if v.len() < 2 {
        v.retain(|(_, r)| *r != 0);
        return;
    }
    v.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<(D, isize)> = Vec::with_capacity(v.len());
    for (d, r) in v.drain(..) {
        match out.last_mut() {
            Some((last, lr)) if *last == d => *lr += r,
            _ => out.push((d, r)),
        }
    }
    out.retain(|(_, r)| *r != 0);
    *v = out;
}

fn delta<V: Copy>(key: i64, d: Delta<V>, out: &mut Vec<((i64, V), isize)>) {
    if let Some(old) = d.old {
        out.push(((key, old), -1));
    }
    if let Some(new) = d.new {
        out.push(((key, new), 1));
    }
}

/// The ingest state: upserts plus retention.
pub struct Ingest {
    pub upsert: UpsertState,
    windows: Vec<Window>,
    retention: Option<i64>,
    /// Highest order_date seen in any applied order image.
    watermark: Option<Micros>,
    /// Per window size: start of the oldest visible window (`None` = everything visible).
    visible_from: Vec<Option<Micros>>,
    /// Live orders by date, to find the ones a moving cutoff retires.
    by_date: BTreeSet<(Micros, i64)>,
}

impl Ingest {
    /// `windows`: the tumbling sizes (only `Window::Size` entries matter); `retention` in µs.
    pub fn new(windows: &[Window], retention: Option<i64>) -> Self {
        let windows: Vec<Window> = windows
            .iter()
            .copied()
            .filter(|w| matches!(w, Window::Size(_)))
            .collect();
        Ingest {
            upsert: UpsertState::default(),
            visible_from: vec![None; windows.len()],
            windows,
            retention,
            watermark: None,
            by_date: BTreeSet::new(),
        }
    }

    pub fn watermark(&self) -> Option<Micros> {
        self.watermark
    }

    /// Applies one transaction; returns the consolidated updates for its engine time.
    pub fn apply(&mut self, tx: &Transaction) -> Updates {
        let mut up = Updates::default();
        for change in &tx.changes {
            for p in self.upsert.apply(change) {
                match p {
                    Projected::Order(key, d) => self.order_delta(key, d, &mut up),
                    Projected::Item(key, d) => delta(key, d, &mut up.items),
                    Projected::Product(key, d) => delta(key, d, &mut up.products),
                    Projected::Cart(key, d) => delta(key, d, &mut up.carts),
                    Projected::Wishlist(key, d) => delta(key, d, &mut up.wishlists),
                    Projected::View(key, d) => delta(key, d, &mut up.product_views),
                }
            }
        }
        self.advance_retention(&mut up);
        up.consolidate();
        up
    }

    fn order_delta(&mut self, key: i64, d: Delta<OrderImage>, up: &mut Updates) {
        if let Some(new) = &d.new {
            self.watermark = self.watermark.max(Some(new.order_date));
        }
        if let Some(old) = d.old.as_ref().and_then(OrderImage::live) {
            up.live_orders.push(((key, old), -1));
            self.by_date.remove(&(old.order_date, key));
            for (i, w) in self.windows.iter().enumerate() {
                if let Some(ow) = status(*w, old.order_date, self.visible_from[i]) {
                    up.order_windows.push(((key, ow), -1));
                }
            }
        }
        if let Some(new) = d.new.as_ref().and_then(OrderImage::live) {
            up.live_orders.push(((key, new), 1));
            self.by_date.insert((new.order_date, key));
            for (i, w) in self.windows.iter().enumerate() {
                if let Some(ow) = status(*w, new.order_date, self.visible_from[i]) {
                    up.order_windows.push(((key, ow), 1));
                }
            }
        }
    }

    /// Moves each window size's visibility threshold to the current cutoff and re-states the
    /// orders whose windows crossed it.
    fn advance_retention(&mut self, up: &mut Updates) {
        let (Some(retention), Some(mark)) = (self.retention, self.watermark) else {
            return;
        };
        let cutoff = Micros(mark.0.saturating_sub(retention));
        for (i, w) in self.windows.iter().enumerate() {
            let Window::Size(size) = *w else { continue };
            let new_from = cutoff.window_start(size);
            let old_from = self.visible_from[i];
            if old_from.is_some_and(|o| o >= new_from) {
                continue;
            }
            // Orders whose status can differ: dates from the old PrevOnly window up to the new
            // visible start (everything older was already gone).
            let lo = match old_from {
                Some(o) => Micros(o.0.saturating_sub(size)),
                None => Micros(i64::MIN),
            };
            let affected: Vec<(Micros, i64)> = self
                .by_date
                .range((lo, i64::MIN)..(new_from, i64::MIN))
                .copied()
                .collect();
            for (date, key) in affected {
                let before = status(*w, date, old_from);
                let after = status(*w, date, Some(new_from));
                if before != after {
                    let order = match self.upsert.orders.get(key).and_then(OrderImage::live) {
                        Some(o) => o,
                        None => continue,
                    };
                    debug_assert_eq!(order.order_date, date);
                    if let Some(b) = before {
                        up.order_windows.push(((key, b), -1));
                    }
                    if let Some(a) = after {
                        up.order_windows.push(((key, a), 1));
                    }
                }
            }
            self.visible_from[i] = Some(new_from);
        }
    }
}

/// The window of size `w` an order of `date` falls into, and whether it is retained.
fn status(w: Window, date: Micros, visible_from: Option<Micros>) -> Option<OrderWindow> {
    let Window::Size(size) = w else { return None };
    let start = date.window_start(size);
    let retained = match visible_from {
        None => Retained::Visible,
        Some(v) if start >= v => Retained::Visible,
        Some(v) if start.0 == v.0 - size => Retained::PrevOnly,
        Some(_) => return None,
    };
    Some(OrderWindow {
        window: w,
        start,
        retained,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sources::*;

    const MIN: i64 = 60_000_000;
    const HOUR: i64 = 60 * MIN;

    fn windows() -> Vec<Window> {
        vec![Window::Size(MIN), Window::Size(5 * MIN), Window::Size(HOUR)]
    }

    fn order(id: i64, date: i64, total: i64, status: OrderStatus, lsn: u64) -> Change {
        Change {
            table: Table::Orders,
            op: Op::Update,
            lsn: Some(Lsn(lsn)),
            kind: ChangeKind::Upsert {
                row: Row::Order(Order {
                    order_id: id,
                    order_date: Micros(date),
                    total_price: Money(total),
                    status,
                    customer_id: Some(7),
                    payment_id: None,
                    shipment_id: None,
                }),
                unavailable: Unavailable::default(),
            },
        }
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

    #[test]
    fn insert_duplicate_stale_and_irrelevant_updates() {
        let mut ing = Ingest::new(&windows(), None);
        let u = ing.apply(&tx(vec![order(
            1,
            10 * HOUR,
            500,
            OrderStatus::Pending,
            100,
        )]));
        assert_eq!(u.live_orders, vec![(live(1, 10 * HOUR, 500), 1)]);
        assert_eq!(u.order_windows.len(), 3);
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
        assert_eq!(u.order_windows.iter().map(|(_, r)| *r).sum::<isize>(), -3);
    }

    #[test]
    fn delete_tombstone_blocks_redelivered_insert_and_update_in_one_tx_nets_out() {
        let mut ing = Ingest::new(&windows(), None);
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
        let mut ing = Ingest::new(&windows(), None);
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
    fn retention_moves_windows_to_prev_only_then_out() {
        let mut ing = Ingest::new(&[Window::Size(HOUR)], Some(HOUR));
        let t0 = 100 * HOUR;
        ing.apply(&tx(vec![order(
            1,
            t0 + 5 * MIN,
            500,
            OrderStatus::Pending,
            1,
        )]));
        // An order two hours later: cutoff = t0 + 1h + 10m; oldest visible window starts t0+1h,
        // so order 1's window (t0) becomes PrevOnly.
        let u = ing.apply(&tx(vec![order(
            2,
            t0 + 2 * HOUR + 10 * MIN,
            500,
            OrderStatus::Pending,
            2,
        )]));
        let ow = |id, start, retained| {
            (
                id,
                OrderWindow {
                    window: Window::Size(HOUR),
                    start: Micros(start),
                    retained,
                },
            )
        };
        assert!(u
            .order_windows
            .contains(&(ow(1, t0, Retained::Visible), -1)));
        assert!(u
            .order_windows
            .contains(&(ow(1, t0, Retained::PrevOnly), 1)));
        assert!(u
            .order_windows
            .contains(&(ow(2, t0 + 2 * HOUR, Retained::Visible), 1)));
        // One more hour: order 1's window is gone entirely.
        let u = ing.apply(&tx(vec![order(
            3,
            t0 + 3 * HOUR + 10 * MIN,
            500,
            OrderStatus::Pending,
            3,
        )]));
        assert!(u
            .order_windows
            .contains(&(ow(1, t0, Retained::PrevOnly), -1)));
        assert!(!u
            .order_windows
            .iter()
            .any(|((id, _), r)| *id == 1 && *r > 0));
        // A late order into a retired window never enters order_windows, but is live.
        let u = ing.apply(&tx(vec![order(4, t0, 500, OrderStatus::Pending, 4)]));
        assert_eq!(u.live_orders.len(), 1);
        assert!(u.order_windows.is_empty());
    }
}
