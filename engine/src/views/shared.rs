//! Collections and arrangements that several views read, built once per dataflow so that the
//! views share their state (an order's items are arranged once, not once per view). The
//! ranking operator of the ranked views is [`super::top_n::top_n_by_sums`].
//!
//! Owns only derived collections; it must not decide what a view shows (the view modules do).

use super::{Coll, Inputs, Time, ViewsConfig};
use crate::facts::Retained;
use differential_dataflow::operators::arrange::{Arranged, TraceAgent};
use differential_dataflow::operators::{CountTotal, ThresholdTotal};
use differential_dataflow::trace::implementations::{KeySpine, ValSpine};
use sources::Micros;
use view_store::Window;

/// A collection arranged by its key `K` with values `V`.
pub type ByKey<'s, K, V> = Arranged<'s, TraceAgent<ValSpine<K, V, Time, isize>>>;
/// A set of keys, arranged.
pub type Keys<'s, K> = Arranged<'s, TraceAgent<KeySpine<K, Time, isize>>>;

/// A window instance a view reports on: `(window, Some(start))` for a tumbling window, or
/// `(Window::All, None)` for all time.
pub type Slot = (Window, Option<Micros>);

/// A product's (quantity, revenue) in a slot, summed in the diff.
pub type Sales = (isize, isize);

/// What the views have in common.
#[derive(Clone)]
pub struct Shared<'s> {
    /// `product_id -> category_id`, the current category of every product that has one.
    pub categories: ByKey<'s, i64, i64>,
    /// `(window, start)` of every Visible window with at least one live order.
    pub visible: Keys<'s, (Window, Micros)>,
    /// `((slot, product), (quantity, revenue))`: each product's sales in each shown slot.
    pub shown_sales: Coll<'s, ((Slot, i64), Sales)>,
    /// `((slot, category, product), (quantity, revenue))`: the same for products with a known
    /// category, under their current one (joined once for top_products and category_sales).
    pub category_sales: Coll<'s, ((Slot, i64, i64), Sales)>,
}

impl<'s> Shared<'s> {
    pub fn new(inputs: &Inputs<'s>, cfg: &ViewsConfig) -> Self {
        // a product's current category (old orders follow it)
        let categories = inputs
            .products
            .clone()
            .flat_map(|(id, p)| p.category_id.map(|c| (id, c)))
            .arrange_by_key();

        // windows to show: Visible ones that hold a live order
        let windows = cfg.windows.clone();
        let visible = inputs
            .live_orders
            .clone()
            .flat_map(move |(_, (o, retention))| {
                o.placed(retention)
                    .windows(&windows)
                    .into_iter()
                    .filter(|(_, _, r)| *r == Retained::Visible)
                    .map(|(w, start, _)| (w, start))
            })
            .distinct_total()
            .arrange_by_self();

        // each product's (quantity, revenue) per shown slot, summed in the diff
        let windows = cfg.windows.clone();
        let shown_sales = inputs
            .sales
            .clone()
            .explode(move |(placed, (product, qty, price))| {
                // saturating: a corrupt row must not panic the dataflow (real values fit easily)
                let sales = (qty as isize, qty.saturating_mul(price.0) as isize);
                placed
                    .shown_slots(&windows)
                    .into_iter()
                    .map(move |slot| ((slot, product), sales))
            })
            .count_total();

        // each product's sales per shown slot, under its current category
        let category_sales = shown_sales
            .clone()
            .map(|((slot, product), sales)| (product, (slot, sales)))
            .join_core(categories.clone(), |&product, &(slot, sales), &category| {
                Some(((slot, category, product), sales))
            });

        Shared {
            categories,
            visible,
            shown_sales,
            category_sales,
        }
    }
}

/// The start of the window after the one starting at `start` (`None` for `all`).
pub fn next_start(window: Window, start: Micros) -> Option<Micros> {
    match window {
        Window::Size(size) => Some(Micros(start.0 + size)),
        Window::All => None,
    }
}
