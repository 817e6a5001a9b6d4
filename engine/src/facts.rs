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

/// The tumbling window a live order falls into, for one window size, with its retention state.
/// Orders of windows older than `PrevOnly` are retracted from this collection by the engine, so
/// windowed state stays bounded.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OrderWindow {
    pub window: Window,
    pub start: Micros,
    pub retained: Retained,
}
