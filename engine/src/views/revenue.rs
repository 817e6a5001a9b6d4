//! `revenue` (SPEC §4): per tumbling window, its live orders' count, revenue, average, the
//! previous window's revenue and the trend. Reads `live_orders` with their windows' retention:
//! PrevOnly windows only lend their revenue to the next window.

use super::shared::next_start;
use super::sums::sum_by_key;
use super::{Coll, Inputs, ViewsConfig};
use crate::facts::Retained;
use sources::Money;
use view_store::{RevenueRow, ViewRow};

pub fn build<'s>(inputs: &Inputs<'s>, cfg: &ViewsConfig) -> Coll<'s, ViewRow> {
    // ((window, start), [revenue, orders, prev_revenue, visible orders]) summed per window:
    // each live order counts in each of its retained windows and as the previous window of the
    // next one; a window's orders are Visible or PrevOnly together (the cutoff decides per
    // window), so the fourth sum tells whether the window is shown
    let windows = cfg.windows.clone();
    let totals = sum_by_key(
        inputs
            .live_orders
            .clone()
            .flat_map(move |(_, (o, retention))| {
                let t = o.total.0 as isize;
                o.placed(retention).windows(&windows).into_iter().flat_map(
                    move |(window, start, retained)| {
                        let shown = isize::from(retained == Retained::Visible);
                        let mine = ((window, start), [t, 1, 0, shown]);
                        let next = next_start(window, start).map(|n| ((window, n), [0, 0, t, 0]));
                        std::iter::once(mine).chain(next)
                    },
                )
            }),
    );

    // one row per Visible window with a live order (a window only lending its revenue to the
    // next, or holding only that lent revenue, is not shown)
    totals.flat_map(|((window, start), [rev, n, prev, shown])| {
        (shown > 0).then(|| {
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
    use crate::facts::Retained;
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
        // back to s0, with the first window retired to PrevOnly
        let mut s3 = s0.clone();
        s3.retention
            .insert((MINUTE, at(0)), Some(Retained::PrevOnly));

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
