//! Collections and arrangements that several views read, built once per dataflow so that the
//! views share their state (an order's items are arranged once, not once per view), plus the
//! top-N operator every ranked view uses.
//!
//! Owns only derived collections; it must not decide what a view shows (the view modules do).

use super::{Coll, Inputs, Time};
use crate::facts::{LiveOrder, OrderWindow, Retained};
use differential_dataflow::operators::arrange::{Arranged, TraceAgent};
use differential_dataflow::operators::{CountTotal, ThresholdTotal};
use differential_dataflow::trace::implementations::{KeySpine, ValSpine};
use differential_dataflow::ExchangeData;
use sources::{Micros, Money};
use std::cmp::Reverse;
use view_store::Window;

/// A collection arranged by its key `K` with values `V`.
pub type ByKey<'s, K, V> = Arranged<'s, TraceAgent<ValSpine<K, V, Time, isize>>>;
/// A set of keys, arranged.
pub type Keys<'s, K> = Arranged<'s, TraceAgent<KeySpine<K, Time, isize>>>;

/// A window instance a view reports on: `(window, Some(start))` for a tumbling window, or
/// `(Window::All, None)` for all time.
pub type Slot = (Window, Option<Micros>);

/// The `all` slot.
pub const ALL: Slot = (Window::All, None);

/// An item's product, quantity and unit price.
pub type Line = (i64, i64, Money);

/// What the views have in common.
#[derive(Clone)]
pub struct Shared<'s> {
    /// `order_id -> order`, every live order.
    pub orders: ByKey<'s, i64, LiveOrder>,
    /// `order_id -> window`, every retained window (Visible and PrevOnly) of every live order.
    pub windows: ByKey<'s, i64, OrderWindow>,
    /// `order_id -> (product, quantity, price)`, every item (of live orders or not: the join with
    /// an order's windows or slots keeps the live ones).
    pub lines: ByKey<'s, i64, Line>,
    /// `product_id -> category_id`, the current category of every product that has one.
    pub categories: ByKey<'s, i64, i64>,
    /// `(window, start)` of every Visible window with at least one live order.
    pub visible: Keys<'s, (Window, Micros)>,
    /// `((slot, product), (quantity, revenue))`: each product's sales in each shown slot.
    pub shown_sales: Coll<'s, ((Slot, i64), (isize, isize))>,
}

impl<'s> Shared<'s> {
    pub fn new(inputs: &Inputs<'s>) -> Self {
        // every live order, by id
        let orders = inputs.live_orders.clone().arrange_by_key();

        // every retained window of every live order, by order
        let windows = inputs.order_windows.clone().arrange_by_key();

        // every item, by order
        let lines = inputs
            .items
            .clone()
            .map(|(_, it)| (it.order_id, (it.product_id, it.quantity, it.price)))
            .arrange_by_key();

        // a product's current category (old orders follow it)
        let categories = inputs
            .products
            .clone()
            .flat_map(|(id, p)| p.category_id.map(|c| (id, c)))
            .arrange_by_key();

        // windows to show: Visible ones that hold a live order
        let visible = inputs
            .order_windows
            .clone()
            .filter(|(_, w)| w.retained == Retained::Visible)
            .map(|(_, w)| (w.window, w.start))
            .distinct_total()
            .arrange_by_self();

        // each product's (quantity, revenue) per shown slot, summed in the diff
        let shown_sales = in_shown_slots(&orders, &windows, &lines)
            .explode(|(slot, (product, qty, price)): (Slot, Line)| {
                // saturating: a corrupt row must not panic the dataflow (real values fit easily)
                Some((
                    (slot, product),
                    (qty as isize, qty.saturating_mul(price.0) as isize),
                ))
            })
            .count_total();

        Shared {
            orders,
            windows,
            lines,
            categories,
            visible,
            shown_sales,
        }
    }

    /// `(slot, value)` for every value of `by_order` in each slot its order is shown in.
    pub fn in_shown_slots<V: ExchangeData>(
        &self,
        by_order: &ByKey<'s, i64, V>,
    ) -> Coll<'s, (Slot, V)> {
        in_shown_slots(&self.orders, &self.windows, by_order)
    }
}

/// `(slot, value)` for every value of `by_order` in each slot its order is shown in: the
/// order's Visible windows, and `all` while it is live. Two joins with arrangements that exist
/// anyway, rather than a per-order arrangement of slots (four more records per order).
fn in_shown_slots<'s, V: ExchangeData>(
    orders: &ByKey<'s, i64, LiveOrder>,
    windows: &ByKey<'s, i64, OrderWindow>,
    by_order: &ByKey<'s, i64, V>,
) -> Coll<'s, (Slot, V)> {
    let in_windows =
        by_order
            .clone()
            .join_core(windows.clone(), |_order, v: &V, w: &OrderWindow| {
                (w.retained == Retained::Visible).then(|| ((w.window, Some(w.start)), v.clone()))
            });
    let in_all = by_order
        .clone()
        .join_core(orders.clone(), |_order, v: &V, _| Some((ALL, v.clone())));
    in_windows.concat(in_all)
}

/// The start of the window after the one starting at `start` (`None` for `all`).
pub fn next_start(window: Window, start: Micros) -> Option<Micros> {
    match window {
        Window::Size(size) => Some(Micros(start.0 + size)),
        Window::All => None,
    }
}

/// Groups of the first level of [`top_n`]: a large group (every product of a window) is split
/// into this many buckets by product id, each keeps its own first `n`, and only those
/// candidates reach the per-group ranking (see the notes on top-N cost).
pub const BUCKETS: i64 = 64;

/// A ranking candidate: `(Reverse(score), id, payload)`; sorting ranks by higher score, then
/// by smaller id.
pub type Candidate<P> = (Reverse<isize>, i64, P);

/// The first `n` candidates of every group, as `(group, (rank, id, payload))` with ranks 1..=n.
pub fn top_n<'s, K, P>(
    candidates: Coll<'s, (K, Candidate<P>)>,
    n: usize,
) -> Coll<'s, (K, (u32, i64, P))>
where
    K: ExchangeData + std::hash::Hash,
    P: ExchangeData,
{
    // each bucket's first n: re-read on a change of the bucket only, and most changes stop here
    let bucket_leaders = candidates
        .map(|(group, c)| ((group, c.1.rem_euclid(BUCKETS)), c))
        .reduce(
            move |_bucket, cands, out: &mut Vec<(Candidate<P>, isize)>| {
                out.extend(
                    cands
                        .iter()
                        .filter(|(_, r)| *r > 0)
                        .take(n)
                        .map(|(c, _)| ((*c).clone(), 1)),
                );
            },
        );

    // the group's first n among its buckets' leaders
    bucket_leaders
        .map(|((group, _bucket), c)| (group, c))
        .reduce(
            move |_group, cands, out: &mut Vec<((u32, i64, P), isize)>| {
                out.extend(
                    cands
                        .iter()
                        .filter(|(_, r)| *r > 0)
                        .take(n)
                        .zip(1u32..)
                        .map(|((c, _), rank)| ((rank, c.1, c.2.clone()), 1)),
                );
            },
        )
}
