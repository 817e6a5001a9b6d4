//! `also_bought` (SPEC §4, §7): per product, the top K (`ViewsConfig::also_bought_k`) other
//! products by the number of distinct live orders containing both; ties by the smaller id.
//!
//! Reads `co_purchases`: one `(p, q)` per live order containing both (its basket being the
//! order's *distinct* products, so two items of one product count once). The ingest thread
//! derives those pairs from the order and item upserts it holds anyway (see
//! [`crate::ingest`]): a cancelled or deleted order, a removed item or a product change on an
//! item retracts exactly the pairs it added, and the dataflow keeps no per-order state for
//! this view, only the count per pair.
//!
//! Basket cap: an order with more than `ViewsConfig::basket_cap` distinct products contributes
//! no pairs at all (pairs grow with the square of the basket: one 1,000-product order would add
//! a million pair updates). Its purchases still count for the customer's recommendation weights
//! (only co-occurrence is capped); the oracle (engine/tests/oracle) reads the cap the same way.
//! Every time an order becomes capped, `shopstream_baskets_capped_total` goes up by one.

use super::top_n::top_n_by_sums;
use super::{Coll, ViewsConfig};
use view_store::{AlsoBoughtRow, ViewRow};

pub fn build<'s>(co_purchases: &Coll<'s, (i64, i64)>, cfg: &ViewsConfig) -> Coll<'s, ViewRow> {
    // the first K others of every product by the number of live orders containing both (the
    // multiplicity of (p, q)), then smaller id
    let partners = co_purchases.clone().map(|(p, q)| (p, (q, [1])));
    top_n_by_sums(partners, cfg.also_bought_k, |n| [Some(n[0])]).map(
        |(product_id, (_, rank, other, [n]))| {
            ViewRow::AlsoBought(AlsoBoughtRow {
                product_id,
                rank,
                other_product_id: other,
                order_count: n as i64,
            })
        },
    )
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::ViewsConfig;
    use view_store::{AlsoBoughtRow, ViewRow};

    fn also(rows: &std::collections::BTreeSet<ViewRow>) -> Vec<(i64, u32, i64, i64)> {
        rows_of(rows, |r| match r {
            ViewRow::AlsoBought(AlsoBoughtRow {
                product_id,
                rank,
                other_product_id,
                order_count,
            }) => Some((*product_id, *rank, *other_product_id, *order_count)),
            _ => None,
        })
    }

    #[test]
    fn pairs_appear_count_once_per_order_and_retract_on_cancel() {
        let cfg = ViewsConfig {
            also_bought_k: 2,
            basket_cap: 3,
            ..test_config()
        };
        let mut db = Db::default();
        // order 1: products 1, 2 (product 1 twice: counts once)
        db.orders.insert(1, DbOrder::new(10, 100, Some(7)));
        db.item(1, 1, 1, 1, 100);
        db.item(2, 1, 1, 3, 100);
        db.item(3, 1, 2, 1, 100);
        let s0 = db.clone();
        // order 2: products 1, 3, 2 -> (1,2) twice; ties of 1 -> 3 and 3's others by smaller id
        db.orders.insert(2, DbOrder::new(20, 100, Some(8)));
        db.item(4, 2, 1, 1, 100);
        db.item(5, 2, 3, 1, 100);
        db.item(6, 2, 2, 1, 100);
        let s1 = db.clone();
        // order 2 cancelled: its pairs go
        db.orders.get_mut(&2).unwrap().cancelled = true;
        let s2 = db.clone();
        // order 3 over the cap (4 distinct products): no pairs
        db.orders.insert(3, DbOrder::new(30, 100, Some(9)));
        for (id, p) in [(7, 1), (8, 2), (9, 3), (10, 4)] {
            db.item(id, 3, p, 1, 100);
        }
        let s3 = db.clone();
        // an item of order 3 removed: within the cap again
        db.items.remove(&10);
        let s4 = db.clone();

        let out = run(&cfg, &[s0, s1, s2, s3, s4]);
        assert_eq!(also(&out[0]), vec![(1, 1, 2, 1), (2, 1, 1, 1)]);
        assert_eq!(
            also(&out[1]),
            vec![
                (1, 1, 2, 2),
                (1, 2, 3, 1),
                (2, 1, 1, 2),
                (2, 2, 3, 1),
                (3, 1, 1, 1),
                (3, 2, 2, 1),
            ]
        );
        assert_eq!(also(&out[2]), also(&out[0]));
        assert_eq!(also(&out[3]), also(&out[0]));
        assert_eq!(also(&out[4]), also(&out[1]));
    }
}
