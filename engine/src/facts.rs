//! Tables cut down to the columns some view needs ("project early"). The upsert stores these,
//! not full rows, so an update that changes none of these columns (an order going from
//! confirmed to shipped) is dropped before it reaches the dataflow.
//!
//! Every type here is dataflow data: `Ord + Clone + Debug + Serialize + Deserialize`.

use serde::{Deserialize, Serialize};
use sources::{Micros, Money};
use std::rc::Rc;
use view_store::Window;

/// An order that is live (status is not `cancelled`). Cancelled orders are absent.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LiveOrder {
    pub order_date: Micros,
    pub total: Money,
    pub customer_id: Option<i64>,
}

/// An order item whose order and product are known (items with a null order or product can
/// never be counted by any view, so they are not kept).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Item {
    pub order_id: i64,
    pub product_id: i64,
    pub quantity: i64,
    /// Unit price at order time.
    pub price: Money,
}

/// A product's current category and whether it is active (`is_active` null counts as active).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ProductFacts {
    pub category_id: Option<i64>,
    pub active: bool,
}

/// A customer's interaction with a product through a cart or wishlist row (null customer or
/// product rows are not kept).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Interaction {
    pub customer_id: i64,
    pub product_id: i64,
}

/// A `product_views` row with a customer: a product view (product set) or a category browse
/// (product null).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ViewEvent {
    pub customer_id: i64,
    pub product_id: Option<i64>,
    pub category_id: Option<i64>,
}

/// The resolution of event time the windowed views tell apart: the greatest common divisor
/// of the window sizes of `windows` (1 µs without sized windows). Every window size is a
/// multiple of it and windows are aligned to the epoch, so [`coarse`] moves no instant into
/// another window of any size.
pub fn date_grain(windows: &[Window]) -> i64 {
    let gcd = |mut a: i64, mut b: i64| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    windows
        .iter()
        .filter_map(|w| match *w {
            Window::Size(size) if size > 0 => Some(size),
            _ => None,
        })
        .reduce(gcd)
        .unwrap_or(1)
}

/// `date` cut down to `grain` ([`date_grain`]): the start of its epoch-aligned grain. The
/// additive inputs carry it instead of the order's own date (project early: the views only
/// ask which window an order is in), so the sales of one product in one grain are one
/// record, not one per order.
pub fn coarse(date: Micros, grain: i64) -> Micros {
    date.window_start(grain)
}

/// The tumbling windows of `windows` (`ViewsConfig::windows`) an order of `date` falls in:
/// `(window, start)`, one per window size. Retention is not the facts' business: windowed
/// operators retire whole windows on the ingest's cutoffs (see `views::per_group`).
///
/// The list is shared (`Rc`) and the iterator owns its handle, so a dataflow closure can return
/// it as it is: collecting it into a vector instead cost a heap allocation per sale line in
/// each of three operators, ~3% of the worker at 1M orders.
pub fn tumbling(windows: Rc<[Window]>, date: Micros) -> impl Iterator<Item = (Window, Micros)> {
    (0..windows.len()).filter_map(move |i| match windows[i] {
        w @ Window::Size(size) => Some((w, date.window_start(size))),
        Window::All => None,
    })
}

/// The slots an order of `date` is shown in: its tumbling windows, and `all`.
pub fn slots(
    windows: Rc<[Window]>,
    date: Micros,
) -> impl Iterator<Item = (Window, Option<Micros>)> {
    tumbling(windows, date)
        .map(|(w, s)| (w, Some(s)))
        .chain([(Window::All, None)])
}

/// The key of a product's sales: `(date at the grain, product, its current category)` (the
/// ingest re-states an order's lines when a product moves, so views need no join with the
/// products).
pub type SaleKey = (Micros, i64, Option<i64>);
