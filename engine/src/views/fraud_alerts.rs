//! `fraud_alerts` (SPEC §4, §7): the four rules over live orders. Alerts ignore retention, and
//! each alert is a function of the current live orders only, so it disappears as soon as its
//! condition stops holding (order deleted, cancelled or corrected).

use super::by_id::ById;
use super::per_group::{per_group_with, Call};
use super::{Coll, FraudConfig};
use crate::facts::LiveOrder;
use foldhash::HashMap;
use sources::{Micros, Money};
use view_store::{FraudAlertRow, Rule, ViewRow};

pub fn build<'s>(live_orders: &Coll<'s, (i64, LiveOrder)>, cfg: &FraudConfig) -> Coll<'s, ViewRow> {
    let high_value = cfg.high_value;

    // high_value: one alert per live order above the threshold, with or without customer
    let high_value = live_orders
        .clone()
        .filter(move |(_, o)| o.total > high_value)
        .map(|(id, o)| {
            alert(
                Rule::HighValue,
                o.customer_id,
                Some(id),
                o.order_date,
                1,
                Some(o.total),
            )
        });

    // (customer, (order_date, total)) for the per-customer rules
    let by_customer = live_orders
        .clone()
        .flat_map(|(_, o)| o.customer_id.map(|c| (c, (o.order_date, o.total))));

    // frequent_orders, order_burst and repeated_amount in one pass over each customer's live
    // orders (sorted by date, then total), by one operator holding them per customer
    let per_customer = customer_rules(by_customer, cfg.clone());

    high_value.concat(per_customer)
}

/// A customer's live orders as `(date, total)`, ascending; two live orders with the same date
/// and total are two equal entries.
type CustomerOrders = Vec<(Micros, Money)>;

/// The per-customer rules. Per customer, its live orders, sorted; a time's changes to a
/// customer evaluate the rules over its orders after them, and the difference to the alerts
/// it had (kept for the customers that have any, a handful) is emitted. This replaced a
/// `reduce`, whose arranged input and output held ~60 B per live order and took ~8% of the
/// worker at 1M orders; here an order is 16 B in its customer's vector (24 B with a
/// multiplicity beside it, which is almost always 1: equal entries instead saved 10 MB of 425 MB live heap at 1M orders of the e2e bench), and a
/// customer holds ~10 orders, so evaluating is cheap. The alerts before a change are kept
/// rather than evaluated a second time (the views bench's `fraud_alerts`: −11%).
fn customer_rules<'s>(
    by_customer: Coll<'s, (i64, (Micros, Money))>,
    cfg: FraudConfig,
) -> Coll<'s, ViewRow> {
    // a slot per customer id (serial ids): one cache miss per customer, not a hash lookup's two
    let mut orders: ById<CustomerOrders> = ById::default();
    // the current alerts of the customers that have any: always `customer_alerts` of their
    // orders, since every change to the orders passes here and stores the alerts after it
    let mut alerts: HashMap<i64, Vec<ViewRow>> = HashMap::default();
    // scratch reused across calls (one call per customer and time: allocated per call, they
    // were a few percent of the worker's time)
    let mut net: Vec<((Micros, Money), isize)> = Vec::new();
    let mut by_total: Vec<(Money, Micros)> = Vec::new();
    per_group_with(
        "FraudPerCustomer",
        by_customer,
        None,
        move |&c, call, emit| {
            let changes = match call {
                Call::Changes(changes) => changes,
                // the customer's list while the current one is worked on: the first search of
                // each list missed the cache (perf at 1M orders: ~30% of this operator's time)
                Call::Upcoming => {
                    if let Some(list) = orders.get(c) {
                        view_store::prefetch_slice(list);
                    }
                    return;
                }
                // the customer after it: its slot, found by address, so that the lookup above
                // finds it in the cache
                Call::Soon => {
                    if let Some(at) = orders.slot(c) {
                        view_store::prefetch(at);
                    }
                    return;
                }
                Call::Retire => return,
            };
            // net per order first: a time's changes arrive unconsolidated and in any order, and a
            // retraction must not meet an absent entry before the insertion it cancels
            net.clear();
            net.extend_from_slice(changes);
            view_store::consolidate(&mut net);
            if net.is_empty() {
                return;
            }
            let before = alerts.remove(&c).unwrap_or_default();
            let after = orders.update(c, |list| {
                for &(order, d) in &net {
                    let at = list.partition_point(|o| *o < order);
                    if d > 0 {
                        let d = d as usize;
                        if list.capacity() - list.len() < d {
                            // grow by an eighth, not double: a customer's list is held for
                            // good, and doubling's slack (a quarter on average) was 5 MB at 1M
                            // orders
                            list.reserve_exact(d.max(list.len() / 8).max(2));
                        }
                        list.splice(at..at, std::iter::repeat_n(order, d));
                    } else {
                        // never more than are there (an inconsistent stream would ask for it)
                        let present = list[at..].iter().take_while(|o| **o == order).count();
                        list.drain(at..at + present.min(d.unsigned_abs()));
                    }
                }
                customer_alerts(c, list, &cfg, &mut by_total)
            });
            // both are sets (one alert per rule and window, interval or total)
            for a in before.iter().filter(|a| !after.contains(a)) {
                emit(a.clone(), -1);
            }
            for a in after.iter().filter(|a| !before.contains(a)) {
                emit(a.clone(), 1);
            }
            if !after.is_empty() {
                alerts.insert(c, after);
            }
        },
    )
    .map(|(_c, row)| row)
}

/// The alerts of frequent_orders, order_burst and repeated_amount for customer `c`, whose live
/// orders are `orders`: `(date, total)` ascending.
fn customer_alerts(
    c: i64,
    orders: &[(Micros, Money)],
    cfg: &FraudConfig,
    by_total: &mut Vec<(Money, Micros)>,
) -> Vec<ViewRow> {
    let FraudConfig {
        frequent_orders,
        frequent_window,
        burst_orders,
        burst_interval,
        repeated_orders,
        repeated_interval,
        ..
    } = *cfg;
    let mut out = Vec::new();

    // frequent_orders: live orders per tumbling window, above the threshold
    let mut i = 0;
    while i < orders.len() {
        let start = orders[i].0.window_start(frequent_window);
        let mut n = 0;
        while i < orders.len() && orders[i].0.window_start(frequent_window) == start {
            n += 1;
            i += 1;
        }
        if n > frequent_orders {
            out.push(alert(Rule::FrequentOrders, Some(c), None, start, n, None));
        }
    }

    // order_burst: the densest closed interval over all the customer's order times
    let times = orders.iter().map(|&(d, _)| (d, 1));
    if let Some((n, start)) = densest_interval(times, burst_interval) {
        if n > burst_orders {
            out.push(alert(Rule::OrderBurst, Some(c), None, start, n, None));
        }
    }

    // repeated_amount: the densest closed interval per total (dates stay ascending)
    by_total.clear();
    by_total.extend(orders.iter().map(|&(d, t)| (t, d)));
    by_total.sort_unstable();
    for same in by_total.chunk_by(|a, b| a.0 == b.0) {
        let times = same.iter().map(|&(_, d)| (d, 1));
        if let Some((n, start)) = densest_interval(times, repeated_interval) {
            if n >= repeated_orders {
                let total = Some(same[0].0);
                out.push(alert(Rule::RepeatedAmount, Some(c), None, start, n, total));
            }
        }
    }
    out
}

fn alert(
    rule: Rule,
    customer_id: Option<i64>,
    order_id: Option<i64>,
    start: Micros,
    order_count: i64,
    amount: Option<Money>,
) -> ViewRow {
    ViewRow::FraudAlert(FraudAlertRow {
        rule,
        customer_id,
        order_id,
        start,
        order_count,
        amount,
    })
}

/// The most times (with multiplicity) in any closed interval `[s, s + len]`, and the earliest
/// such `s`: the last time of the first maximal group minus `len`. `times` is sorted ascending.
/// `None` when there are no times.
pub fn densest_interval(
    times: impl IntoIterator<Item = (Micros, isize)>,
    len: i64,
) -> Option<(i64, Micros)> {
    let expanded: Vec<i64> = times
        .into_iter()
        .flat_map(|(t, r)| std::iter::repeat_n(t.0, r.max(0) as usize))
        .collect();
    let mut best: Option<(i64, Micros)> = None;
    let mut first = 0;
    for (last, &t) in expanded.iter().enumerate() {
        // the group of times in [t - len, t]
        while expanded[first] < t - len {
            first += 1;
        }
        let n = (last - first + 1) as i64;
        // strictly more: the first maximal group wins
        if best.is_none_or(|(m, _)| n > m) {
            best = Some((n, Micros(t - len)));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::densest_interval;
    use sources::{Micros, Money};
    use view_store::{FraudAlertRow, Rule, ViewRow};

    fn alerts(rows: &std::collections::BTreeSet<ViewRow>) -> Vec<FraudAlertRow> {
        rows_of(rows, |r| match r {
            ViewRow::FraudAlert(x) => Some(x.clone()),
            _ => None,
        })
    }

    fn alert(
        rule: Rule,
        c: Option<i64>,
        o: Option<i64>,
        start: i64,
        n: i64,
        amount: Option<i64>,
    ) -> FraudAlertRow {
        FraudAlertRow {
            rule,
            customer_id: c,
            order_id: o,
            start: at(start),
            order_count: n,
            amount: amount.map(Money),
        }
    }

    #[test]
    fn densest_interval_is_closed_and_earliest() {
        let ts: Vec<Micros> = [0, 10, 60, 61, 200].map(at).to_vec();
        let times = ts.iter().map(|&t| (t, 1));
        // [0, 60] holds 0, 10, 60 (closed); [1, 61] holds 10, 60, 61: the first group wins
        assert_eq!(
            densest_interval(times, 60 * Micros::PER_SECOND),
            Some((3, at(0)))
        );
        let dup = [(ts[4], 2)];
        assert_eq!(
            densest_interval(dup, 60 * Micros::PER_SECOND),
            Some((2, at(140)))
        );
        assert_eq!(densest_interval([], 60), None);
    }

    #[test]
    fn equal_orders_count_each_and_leave_together() {
        // customer 7: seven orders with the same date and total (equal entries of the
        // customer's list): an order burst of 7; then two of them go in one time (5: no longer
        // above the threshold of 5), and then one comes back (6)
        let mut db = Db::default();
        for id in 1..=7 {
            db.orders.insert(id, DbOrder::new(30, 500, Some(7)));
        }
        let s0 = db.clone();
        db.orders.remove(&1);
        db.orders.remove(&2);
        let s1 = db.clone();
        db.orders.insert(1, DbOrder::new(30, 500, Some(7)));
        let s2 = db.clone();
        let out = run(&test_config(), &[s0, s1, s2]);
        let burst = |rows: &std::collections::BTreeSet<ViewRow>| {
            alerts(rows)
                .into_iter()
                .filter(|a| a.rule == Rule::OrderBurst)
                .map(|a| a.order_count)
                .collect::<Vec<_>>()
        };
        assert_eq!(burst(&out[0]), vec![7]);
        assert_eq!(burst(&out[1]), Vec::<i64>::new());
        assert_eq!(burst(&out[2]), vec![6]);
    }

    #[test]
    fn rules_appear_and_disappear_with_their_orders() {
        let mut db = Db::default();
        // customer 7: a burst straddling the minute boundary (4 + 2 orders within [3 s, 63 s])
        for (id, s) in [(1, 55), (2, 56), (3, 57), (4, 58), (5, 62), (6, 63)] {
            db.orders.insert(id, DbOrder::new(s, 100 + id, Some(7)));
        }
        // customer 8: six orders in one minute; an order without customer is ignored
        for id in 11..17 {
            db.orders
                .insert(id, DbOrder::new(120 + id, 50 + id, Some(8)));
        }
        db.orders.insert(17, DbOrder::new(130, 10, None));
        // customer 9: three orders with the same total within 10 minutes (closed interval)
        db.orders.insert(21, DbOrder::new(1000, 777, Some(9)));
        db.orders.insert(22, DbOrder::new(1300, 777, Some(9)));
        db.orders.insert(23, DbOrder::new(1600, 777, Some(9)));
        db.orders.insert(24, DbOrder::new(1400, 778, Some(9)));
        // a high-value order without customer
        db.orders
            .insert(31, DbOrder::new(5000, 1_000_000_001, None));
        let s0 = db.clone();
        // deletes and a cancel remove each alert
        db.orders.remove(&6);
        db.orders.remove(&16);
        db.orders.get_mut(&23).unwrap().cancelled = true;
        db.orders.remove(&31);
        let s1 = db.clone();

        let out = run(&test_config(), &[s0, s1]);
        let mut want = vec![
            alert(Rule::OrderBurst, Some(7), None, 3, 6, None),
            alert(Rule::FrequentOrders, Some(8), None, 120, 6, None),
            alert(Rule::OrderBurst, Some(8), None, 76, 6, None),
            alert(Rule::RepeatedAmount, Some(9), None, 1000, 3, Some(777)),
            alert(
                Rule::HighValue,
                None,
                Some(31),
                5000,
                1,
                Some(1_000_000_001),
            ),
        ];
        want.sort();
        assert_eq!(alerts(&out[0]), want);
        assert_eq!(alerts(&out[1]), vec![]);
    }
}
