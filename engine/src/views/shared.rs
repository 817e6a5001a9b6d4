//! Collections that several views read, built once per dataflow so that the views share them,
//! and the retention every windowed view applies ([`retiring`]). The ranking operator of the
//! ranked views is [`super::top_n::top_n_by_sums`].
//!
//! Owns only derived collections; it must not decide what a view shows (the view modules do).

use super::per_group::Retiring;
use super::{Coll, Inputs, ViewsConfig};
use crate::facts::slots;
use sources::Micros;
use std::rc::Rc;
use view_store::Window;

/// A window instance a view reports on: `(window, Some(start))` for a tumbling window, or
/// `(Window::All, None)` for all time.
pub type Slot = (Window, Option<Micros>);

/// A product's sales of a grain in a slot: `(product, category, [quantity, revenue])`.
pub type SlotSales = (i64, Option<i64>, [isize; 2]);

/// What the views have in common.
#[derive(Clone)]
pub struct Shared<'s> {
    /// `(slot, (product, category, [quantity, revenue]))`: the additive `sales` (a product's
    /// sales of a grain, under its current category) in each slot of the grain (its tumbling
    /// windows and `all`); the input of top_products, which sums and ranks them per slot. The
    /// category travels on the record (the ingest re-states a product's sales when it moves),
    /// so no view joins with the products or arranges a record per (slot, product) for it.
    pub slot_sales: Coll<'s, (Slot, SlotSales)>,
}

impl<'s> Shared<'s> {
    pub fn new(inputs: &Inputs<'s>, cfg: &ViewsConfig) -> Self {
        // each product's sales of a grain in each slot of the grain
        let windows: Rc<[Window]> = cfg.windows.as_slice().into();
        let slot_sales = inputs
            .sales
            .clone()
            .flat_map(move |((date, product, category), sums)| {
                slots(windows.clone(), date).map(move |slot| (slot, (product, category, sums)))
            });

        Shared { slot_sales }
    }
}

/// Retention for an operator whose groups are keyed by a tumbling window and something else
/// (`window_of` says which window, `None` for `all`): groups of windows older than the
/// ingest's cutoffs retract their rows and are forgotten.
pub fn retiring<'s, K>(
    cutoffs: &Coll<'s, (Window, Micros)>,
    window_of: fn(&K) -> Option<(Window, Micros)>,
) -> Retiring<'s, K> {
    Retiring {
        cutoffs: cutoffs.clone(),
        window_of,
    }
}

/// The window of a slot (`None` for `all`).
pub fn slot_window(slot: &Slot) -> Option<(Window, Micros)> {
    slot.1.map(|start| (slot.0, start))
}

/// The start of the window after the one starting at `start` (`None` for `all`).
pub fn next_start(window: Window, start: Micros) -> Option<Micros> {
    match window {
        Window::Size(size) => Some(Micros(start.0 + size)),
        Window::All => None,
    }
}
