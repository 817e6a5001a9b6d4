//! What the windowed views have in common: the slots they report on and the retention every
//! windowed view applies ([`retiring`]). The ranking operator of the ranked views is
//! [`super::top_n::top_n_by_sums`].
//!
//! Owns only these helpers; it must not decide what a view shows (the view modules do).

use super::per_group::Retiring;
use super::Coll;
use sources::Micros;
use view_store::Window;

/// A window instance a view reports on: `(window, Some(start))` for a tumbling window, or
/// `(Window::All, None)` for all time.
pub type Slot = (Window, Option<Micros>);

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
