//! `category_sales` (SPEC §4): per slot (retained window or `all`) and category, the
//! quantity, revenue and number of distinct live orders with an item of the category, by each
//! product's current category.

use super::shared::{retiring, slot_window, Slot};
use super::sums::sum_by_key;
use super::{Coll, Inputs, ViewsConfig};
use crate::facts::slots;
use sources::Money;
use std::rc::Rc;
use view_store::{CategorySalesRow, ViewRow, Window};

pub fn build<'s>(inputs: &Inputs<'s>, cfg: &ViewsConfig) -> Coll<'s, ViewRow> {
    // ((slot, category), [quantity, revenue, orders]): the additive category totals of a grain
    // (items under their product's current category, live orders once per category of their
    // items: the ingest keeps both current) in each slot of the grain
    let windows: Rc<[Window]> = cfg.windows.as_slice().into();
    let totals = inputs
        .category_totals
        .clone()
        .flat_map(move |((date, category), sums)| {
            slots(windows.clone(), date).map(move |slot| ((slot, category), sums))
        });

    // summed per (slot, category) while the slot's window is retained
    let retained = retiring(&inputs.cutoffs, |(slot, _): &(Slot, i64)| slot_window(slot));
    sum_by_key(totals, Some(retained)).map(
        |(((window, start), category_id), [qty, revenue, order_count])| {
            ViewRow::CategorySales(CategorySalesRow {
                window,
                window_start: start,
                category_id,
                quantity: qty as i64,
                revenue: Money(revenue as i64),
                order_count: order_count as i64,
            })
        },
    )
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use sources::Money;
    use view_store::{CategorySalesRow, ViewRow, Window};

    fn sales(rows: &std::collections::BTreeSet<ViewRow>) -> Vec<CategorySalesRow> {
        rows_of(rows, |r| match r {
            ViewRow::CategorySales(x) => Some(x.clone()),
            _ => None,
        })
    }

    fn row(
        window: Window,
        start: Option<i64>,
        category_id: i64,
        q: i64,
        rev: i64,
        n: i64,
    ) -> CategorySalesRow {
        CategorySalesRow {
            window,
            window_start: start.map(at),
            category_id,
            quantity: q,
            revenue: Money(rev),
            order_count: n,
        }
    }

    #[test]
    fn category_change_moves_old_sales_and_orders_count_once() {
        let mut db = Db::default();
        db.product(1, Some(10));
        db.product(2, Some(10));
        db.orders.insert(1, DbOrder::new(10, 100, None));
        db.orders.insert(2, DbOrder::new(70, 100, None));
        // order 1 has two items of category 10: one order
        db.item(1, 1, 1, 2, 100);
        db.item(2, 1, 2, 1, 300);
        db.item(3, 2, 2, 1, 300);
        // an item of an unknown product counts in no category
        db.item(4, 2, 99, 1, 300);
        let s0 = db.clone();
        // product 2 moves to category 20, also for the old orders
        db.product(2, Some(20));
        let s1 = db.clone();
        // order 2 cancelled; the first window retires
        db.orders.get_mut(&2).unwrap().cancelled = true;
        db.visible_from.insert(MINUTE, at(60));
        let s2 = db.clone();

        let out = run(&test_config(), &[s0, s1, s2]);
        let mut want0 = vec![
            row(MINUTE, Some(0), 10, 3, 500, 1),
            row(MINUTE, Some(60), 10, 1, 300, 1),
            row(Window::All, None, 10, 4, 800, 2),
        ];
        want0.sort();
        assert_eq!(sales(&out[0]), want0);
        let mut want1 = vec![
            row(MINUTE, Some(0), 10, 2, 200, 1),
            row(MINUTE, Some(0), 20, 1, 300, 1),
            row(MINUTE, Some(60), 20, 1, 300, 1),
            row(Window::All, None, 10, 2, 200, 1),
            row(Window::All, None, 20, 2, 600, 2),
        ];
        want1.sort();
        assert_eq!(sales(&out[1]), want1);
        let mut want2 = vec![
            row(Window::All, None, 10, 2, 200, 1),
            row(Window::All, None, 20, 1, 300, 1),
        ];
        want2.sort();
        assert_eq!(sales(&out[2]), want2);
    }
}
