//! `trending_products` (SPEC §4): per tumbling window, the top N products by quantity in the
//! window minus quantity in the previous window, positive growth only. Reads `sales`. Summed
//! and ranked by one operator ([`super::top_n::top_n_by_sums`]), which holds one entry per
//! (window, product) of the retained windows.

use super::shared::{next_start, retiring};
use super::top_n::top_n_by_sums;
use super::{Coll, Inputs, ViewsConfig};
use crate::facts::tumbling;
use sources::Micros;
use std::rc::Rc;
use view_store::{TrendingRow, ViewRow, Window};

pub fn build<'s>(inputs: &Inputs<'s>, cfg: &ViewsConfig) -> Coll<'s, ViewRow> {
    // ((window, start), (product, [quantity, prev_quantity])): a product's quantity of a grain
    // counts in the grain's windows and as the previous window of the next one, so a window's
    // group holds both (a grain whose quantity nets to zero counts nowhere)
    let windows: Rc<[Window]> = cfg.windows.as_slice().into();
    let quantities = inputs
        .sales
        .clone()
        .flat_map(move |((date, product, _), [qty, _])| {
            let windows = if qty == 0 {
                None
            } else {
                Some(windows.clone())
            };
            windows
                .into_iter()
                .flat_map(move |w| tumbling(w, date))
                .flat_map(move |(window, start)| {
                    let mine = ((window, start), (product, None, [qty, 0]));
                    let next =
                        next_start(window, start).map(|n| ((window, n), (product, None, [0, qty])));
                    std::iter::once(mine).chain(next)
                })
        });

    // the first N per retained window by growth (quantity minus the previous window's),
    // positive growth only; a product that grew sold in the window, so the window holds a live
    // order. A retained window's previous window counts even when retired itself: its lines
    // are in this window's group. Retired groups retract their rows.
    let retained = retiring(&inputs.cutoffs, |&w: &(Window, Micros)| Some(w));
    top_n_by_sums(
        quantities,
        cfg.top_n,
        |&[qty, prev]| [(qty > prev).then_some(qty - prev)],
        Some(retained),
    )
    .map(
        |((window, start), (_, (_, rank, product_id, [qty, prev])))| {
            ViewRow::Trending(TrendingRow {
                window,
                window_start: Some(start),
                rank,
                product_id,
                quantity: qty as i64,
                prev_quantity: prev as i64,
                growth: (qty - prev) as i64,
            })
        },
    )
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use view_store::{TrendingRow, ViewRow};

    fn trending(rows: &std::collections::BTreeSet<ViewRow>) -> Vec<TrendingRow> {
        rows_of(rows, |r| match r {
            ViewRow::Trending(x) => Some(x.clone()),
            _ => None,
        })
    }

    fn row(
        start: i64,
        rank: u32,
        product_id: i64,
        quantity: i64,
        prev_quantity: i64,
    ) -> TrendingRow {
        TrendingRow {
            window: MINUTE,
            window_start: Some(at(start)),
            rank,
            product_id,
            quantity,
            prev_quantity,
            growth: quantity - prev_quantity,
        }
    }

    #[test]
    fn growth_against_previous_window_positive_only() {
        let mut db = Db::default();
        db.orders.insert(1, DbOrder::new(10, 100, None));
        db.orders.insert(2, DbOrder::new(70, 100, None));
        db.item(1, 1, 1, 5, 10);
        db.item(2, 1, 2, 1, 10);
        db.item(3, 2, 1, 3, 10);
        db.item(4, 2, 2, 4, 10);
        db.item(5, 2, 3, 3, 10);
        let s0 = db.clone();
        // the first window retires: its rows go, the second keeps its prev
        let mut s1 = db.clone();
        s1.visible_from.insert(MINUTE, at(60));
        // an update that makes product 3 grow more than 2 (tie at 3 with product 2 before);
        // the retired window's lines still lend their quantities to the next
        db.visible_from.insert(MINUTE, at(60));
        db.item(5, 2, 3, 4, 10);
        let s2 = db.clone();

        let out = run(&test_config(), &[s0, s1, s2]);
        assert_eq!(
            trending(&out[0]),
            vec![
                row(0, 1, 1, 5, 0),
                row(0, 2, 2, 1, 0),
                // product 1 shrank (3 − 5): not trending; 2 and 3 tie at 3: smaller id first
                row(60, 1, 2, 4, 1),
                row(60, 2, 3, 3, 0),
            ]
        );
        assert_eq!(
            trending(&out[1]),
            vec![row(60, 1, 2, 4, 1), row(60, 2, 3, 3, 0)]
        );
        assert_eq!(
            trending(&out[2]),
            vec![row(60, 1, 3, 4, 0), row(60, 2, 2, 4, 1)]
        );
    }
}
