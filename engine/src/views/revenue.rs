//! `revenue` (SPEC §4): per tumbling window, its live orders' count, revenue, average, the
//! previous window's revenue and the trend. Reads `live_orders`.

use super::shared::{next_start, retiring};
use super::sums::sum_by_key;
use super::{Coll, Inputs, ViewsConfig};
use crate::facts::tumbling;
use sources::{Micros, Money};
use std::rc::Rc;
use view_store::{RevenueRow, ViewRow, Window};

pub fn build<'s>(inputs: &Inputs<'s>, cfg: &ViewsConfig) -> Coll<'s, ViewRow> {
    // ((window, start), [revenue, orders, prev_revenue]) summed per retained window: the live
    // orders' totals of a grain count in each of its windows and as the previous window of the
    // next one (also when their own window is retired: the lent revenue is in the next
    // window's sums)
    let windows: Rc<[Window]> = cfg.windows.as_slice().into();
    let retained = retiring(&inputs.cutoffs, |&w: &(Window, Micros)| Some(w));
    let totals = sum_by_key(
        inputs.order_totals.clone().flat_map(move |(date, [t, n])| {
            tumbling(windows.clone(), date).flat_map(move |(window, start)| {
                let mine = ((window, start), [t, n, 0]);
                let next = next_start(window, start).map(|n| ((window, n), [0, 0, t]));
                std::iter::once(mine).chain(next)
            })
        }),
        Some(retained),
    );

    // one row per window with a live order (a window holding only lent revenue is not shown)
    totals.flat_map(|((window, start), [rev, n, prev])| {
        (n > 0).then(|| {
            ViewRow::Revenue(RevenueRow::new(
                window,
                start,
                n as i64,
                Money(rev as i64),
                Money(prev as i64),
            ))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use sources::Money;
    use view_store::{RevenueRow, ViewRow};

    fn revenue(rows: &std::collections::BTreeSet<ViewRow>) -> Vec<RevenueRow> {
        rows_of(rows, |r| match r {
            ViewRow::Revenue(x) => Some(x.clone()),
            _ => None,
        })
    }

    fn row(start: i64, n: i64, rev: i64, prev: i64) -> RevenueRow {
        RevenueRow::new(MINUTE, at(start), n, Money(rev), Money(prev))
    }

    #[test]
    fn update_moves_order_cancel_leaves_and_prev_only_feeds_prev() {
        let mut db = Db::default();
        db.orders.insert(1, DbOrder::new(10, 1000, Some(1)));
        db.orders.insert(2, DbOrder::new(70, 500, Some(1)));
        let s0 = db.clone();
        // order 2 corrected into the first window
        db.orders.insert(2, DbOrder::new(20, 501, Some(1)));
        let s1 = db.clone();
        // order 1 cancelled
        db.orders.get_mut(&1).unwrap().cancelled = true;
        let s2 = db.clone();
        // back to s0, with the first window retired (it still lends its revenue to the next)
        let mut s3 = s0.clone();
        s3.visible_from.insert(MINUTE, at(60));

        let out = run(&test_config(), &[s0, s1, s2, s3]);
        assert_eq!(
            revenue(&out[0]),
            vec![row(0, 1, 1000, 0), row(60, 1, 500, 1000)]
        );
        assert_eq!(revenue(&out[0])[1].trend_pct, Some(view_store::Pct2(-5000)));
        assert_eq!(revenue(&out[1]), vec![row(0, 2, 1501, 0)]);
        assert_eq!(revenue(&out[1])[0].avg_order_value, Money(751)); // 750.5 rounds away from zero
        assert_eq!(revenue(&out[2]), vec![row(0, 1, 501, 0)]);
        assert_eq!(revenue(&out[3]), vec![row(60, 1, 500, 1000)]);
    }
}
