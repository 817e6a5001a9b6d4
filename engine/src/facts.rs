//! Tables cut down to the columns some view needs ("project early"). The upsert stores these,
//! not full rows, so an update that changes none of these columns (an order going from
//! confirmed to shipped) is dropped before it reaches the dataflow.
//!
//! Every type here is dataflow data: `Ord + Clone + Debug + Serialize + Deserialize`.

use serde::{Deserialize, Serialize};
use sources::{Micros, Money};
use view_store::Window;

/// An order that is live (status is not `cancelled`). Cancelled orders are absent.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LiveOrder {
    pub order_date: Micros,
    pub total: Money,
    pub customer_id: Option<i64>,
}

impl LiveOrder {
    /// Where the order counts, given its windows' retention.
    pub fn placed(self, retention: Retention) -> Placed {
        Placed {
            date: self.order_date,
            retention,
        }
    }
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

/// Whether a window's rows are shown, or only kept so the next window can report its `prev_*`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Retained {
    /// The window ends after the retention cutoff: its rows are part of the views.
    Visible,
    /// The window is the one just before the oldest visible one: it feeds `prev_revenue` /
    /// `prev_quantity` of that window ("prev values come from the full data") and shows nothing.
    PrevOnly,
}

/// The most window sizes a [`Retention`] can describe (`--windows` is checked against it).
pub const MAX_WINDOWS: usize = 32;

/// For each configured window size (by its index in `ViewsConfig::windows`), whether an order's
/// window of that size is Visible, PrevOnly or dropped by retention. Two bitmasks, so every fact
/// that carries it stays small and `Copy`.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Retention {
    visible: u32,
    prev_only: u32,
}

impl Retention {
    /// The state of window size `i` (`None`: dropped, or `i` is not a tumbling size).
    pub fn get(self, i: usize) -> Option<Retained> {
        let bit = 1u32.checked_shl(i as u32)?;
        if self.visible & bit != 0 {
            Some(Retained::Visible)
        } else if self.prev_only & bit != 0 {
            Some(Retained::PrevOnly)
        } else {
            None
        }
    }

    /// Sets the state of window size `i` (ignored beyond [`MAX_WINDOWS`]).
    pub fn set(&mut self, i: usize, r: Option<Retained>) {
        let Some(bit) = 1u32.checked_shl(i as u32) else {
            return;
        };
        self.visible &= !bit;
        self.prev_only &= !bit;
        match r {
            Some(Retained::Visible) => self.visible |= bit,
            Some(Retained::PrevOnly) => self.prev_only |= bit,
            None => {}
        }
    }
}

/// Where a live order counts: its date and the retention of its windows. Sales and order categories
/// carry their order's placement, so windowed views need no join with the order.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Placed {
    pub date: Micros,
    pub retention: Retention,
}

impl Placed {
    /// `(window, start, retained)` for every retained tumbling window (Visible or PrevOnly),
    /// `windows` being `ViewsConfig::windows`.
    pub fn windows(self, windows: &[Window]) -> Vec<(Window, Micros, Retained)> {
        windows
            .iter()
            .enumerate()
            .filter_map(|(i, &w)| {
                let Window::Size(size) = w else { return None };
                let r = self.retention.get(i)?;
                Some((w, self.date.window_start(size), r))
            })
            .collect()
    }

    /// The slots the order is shown in: its Visible windows, and `all` (a live order always is).
    pub fn shown_slots(self, windows: &[Window]) -> Vec<(Window, Option<Micros>)> {
        let visible = windows.iter().enumerate().filter_map(|(i, &w)| {
            let Window::Size(size) = w else { return None };
            (self.retention.get(i)? == Retained::Visible)
                .then(|| (w, Some(self.date.window_start(size))))
        });
        visible.chain([(Window::All, None)]).collect()
    }
}

/// An item's product, quantity and unit price, and the product's current category (the ingest
/// re-states a product's lines when it moves, so views need no join with the products).
pub type Line = (i64, i64, Money, Option<i64>);
