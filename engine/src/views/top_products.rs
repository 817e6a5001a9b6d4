//! `top_products` (SPEC §4): per slot (retained window or `all`), scope (global or a
//! category) and metric (quantity or revenue), the first N products. A product ranks in its
//! current category, also for old orders; products without a known category rank only globally.

use super::shared::{retiring, slot_window};
use super::top_n::top_n_by_sums;
use super::{Coll, Inputs, ViewsConfig};
use crate::facts::slots;
use sources::Money;
use std::rc::Rc;
use view_store::{Metric, TopProductRow, ViewRow, Window};

/// The metrics, in the order of the sums ranked.
const METRICS: [Metric; 2] = [Metric::Quantity, Metric::Revenue];

pub fn build<'s>(inputs: &Inputs<'s>, cfg: &ViewsConfig) -> Coll<'s, ViewRow> {
    // (slot, (product, category, [quantity, revenue])): a product's sales of a grain (additive,
    // under its current category: the ingest re-states them when it moves, so no join with the
    // products) in each slot of the grain, its tumbling windows and `all`
    let windows: Rc<[Window]> = cfg.windows.as_slice().into();
    let slot_sales = inputs
        .sales
        .clone()
        .flat_map(move |((date, product, category), sums)| {
            slots(windows.clone(), date).map(move |slot| (slot, (product, category, sums)))
        });

    // the first N of each slot, globally and within each product's current category, by
    // quantity and by revenue, ties by smaller product id, while the slot's window is retained;
    // a product's sales count in their slot and, as its subgroup, in the slot's category
    let retained = retiring(&inputs.cutoffs, slot_window);
    top_n_by_sums(
        slot_sales,
        cfg.top_n,
        |s| [Some(s[0]), Some(s[1])],
        Some(retained),
    )
    .map(
        |((window, start), (category_id, (metric, rank, product_id, [qty, revenue])))| {
            ViewRow::TopProduct(TopProductRow {
                window,
                window_start: start,
                category_id,
                metric: METRICS[metric],
                rank,
                product_id,
                quantity: qty as i64,
                revenue: Money(revenue as i64),
            })
        },
    )
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use sources::Money;
    use view_store::{Metric, TopProductRow, ViewRow, Window};

    fn top(rows: &std::collections::BTreeSet<ViewRow>) -> Vec<TopProductRow> {
        rows_of(rows, |r| match r {
            ViewRow::TopProduct(x) => Some(x.clone()),
            _ => None,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn row(
        window: Window,
        start: Option<i64>,
        category_id: Option<i64>,
        metric: Metric,
        rank: u32,
        product_id: i64,
        quantity: i64,
        revenue: i64,
    ) -> TopProductRow {
        TopProductRow {
            window,
            window_start: start.map(at),
            category_id,
            metric,
            rank,
            product_id,
            quantity,
            revenue: Money(revenue),
        }
    }

    #[test]
    fn ranks_ties_categories_and_unknown_products() {
        use Metric::{Quantity as Q, Revenue as R};
        let mut db = Db::default();
        db.product(1, Some(10));
        db.product(2, Some(10));
        db.product(3, None);
        db.orders.insert(1, DbOrder::new(10, 100, None));
        // products 1 and 2 tie on quantity (2 smaller id first), 2 earns more; 99 is unknown
        db.item(1, 1, 2, 2, 300);
        db.item(2, 1, 1, 2, 100);
        db.item(3, 1, 99, 1, 1000);
        db.item(4, 1, 3, 1, 50);
        let s0 = db.clone();
        // product 2 moves to category 20, with its old sales
        db.product(2, Some(20));
        let s1 = db.clone();
        // the window retires: `all` stays
        let mut s2 = db.clone();
        s2.visible_from.insert(MINUTE, at(60));

        let out = run(&test_config(), &[s0, s1, s2]);
        let both = |cat, rows: &[(Metric, u32, i64, i64, i64)]| -> Vec<TopProductRow> {
            let mut v = vec![];
            for (w, s) in [(MINUTE, Some(0)), (Window::All, None)] {
                for &(m, rank, p, q, rev) in rows {
                    v.push(row(w, s, cat, m, rank, p, q, rev));
                }
            }
            v
        };
        let global = [
            (Q, 1, 1, 2, 200),
            (Q, 2, 2, 2, 600),
            (R, 1, 99, 1, 1000),
            (R, 2, 2, 2, 600),
        ];
        let mut want0 = both(None, &global);
        want0.extend(both(
            Some(10),
            &[
                (Q, 1, 1, 2, 200),
                (Q, 2, 2, 2, 600),
                (R, 1, 2, 2, 600),
                (R, 2, 1, 2, 200),
            ],
        ));
        want0.sort();
        assert_eq!(top(&out[0]), want0);

        let mut want1 = both(None, &global);
        want1.extend(both(Some(10), &[(Q, 1, 1, 2, 200), (R, 1, 1, 2, 200)]));
        want1.extend(both(Some(20), &[(Q, 1, 2, 2, 600), (R, 1, 2, 2, 600)]));
        want1.sort();
        assert_eq!(top(&out[1]), want1);

        let want2: Vec<_> = want1
            .into_iter()
            .filter(|r| r.window == Window::All)
            .collect();
        assert_eq!(top(&out[2]), want2);
    }
}
