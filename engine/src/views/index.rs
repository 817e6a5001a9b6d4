//! The store's index (SPEC §4 `also_bought` and `recommendations`): what it is fed, and why
//! these two views are not computed in the dataflow.
//!
//! `recommendations`, per customer with any interaction: the top K
//! (`ViewsConfig::also_bought_k`) products by `score(q) = Σ_p weight(c, p) × co(p, q)`, filled
//! with best sellers.
//!
//! * weight(c, p): 2 per live order of c containing p (once per order), 3 per current cart row,
//!   2 per wishlist row, 1 per product view row. co(p, q) is the FULL co-occurrence count of
//!   the `co_purchases` input (orders over the basket cap contribute no pairs), not only the
//!   top K.
//! * Excluded: products c bought (in a live order of c), has in the cart, or that are inactive
//!   (`is_active = false`; unknown products are not inactive). Ranked by score, then smaller id.
//! * A list shorter than K is filled (score 0) with the best sellers of c's favourite categories
//!   — ranked by Σ weight(c, p) over c's products in the category + 1 per browse of it, then
//!   category_id — then with the global best sellers, skipping excluded and listed products.
//!   "Best sellers" are exactly the `top_products` rows of window `all`, metric `quantity`
//!   (top N per scope), as the oracle reads them; so a list may stay shorter than K.
//!
//! `also_bought`, per product: the top K other products by co(p, q), the number of distinct
//! live orders containing both (an order's basket being its distinct products), ties by the
//! smaller id. Basket cap: an order with more than `ViewsConfig::basket_cap` distinct products
//! contributes no pairs at all (pairs grow with the square of the basket: one 1,000-product
//! order would add a million pair updates). Its purchases still count for the customer's
//! recommendation weights; the oracle (engine/tests/oracle) reads the cap the same way. Every
//! time an order becomes capped, `shopstream_baskets_capped_total` goes up by one.
//!
//! The ingest thread derives purchases and co-purchase pairs from the order and item upserts it
//! holds anyway (see [`crate::ingest`]): a cancelled or deleted order, a removed item or a
//! product change on an item retracts exactly the pairs it added.
//!
//! What the store does with them: both views read co(p, q), which the store keeps once
//! (view_store's `co`): `also_bought`'s rows are derived there as the counts change, in the
//! same write, and published like any view's rows. The dataflow used to rank the pairs itself,
//! while the store kept the counts a second time (two maps of every pair: 24.5 MB each at 300k
//! orders of the e2e bench).
//!
//! Why the index does not go through the dataflow: every delta is a stateless projection of an
//! input, so timely would only map, exchange and consolidate it on its way to the store. The
//! runtime hands a time's [`IndexUpdates`] straight to the publish thread, which turns them
//! into [`RecsDelta`]s ([`deltas`]) and applies them with that time's view rows
//! (`ViewStore::apply_indexed`), so the index and every view stay at one `as_of`.
//!
//! How it is computed — at read time. This module only derives small, additive index updates
//! ([`RecsDelta`], published with the same engine time as every view row): per (customer,
//! product) interactions by kind (a purchase once per live order containing the product,
//! cart, wishlist and product-view rows), per (customer, category) browses, each product's
//! current category and inactive flag, and the co-occurrence counts co(p, q) of the
//! `co_purchases` input (one delta per order and pair; orders over the basket cap give none).
//! The store applies them to its index under the same write lock as the view rows, so a list
//! computed from it reflects exactly the `as_of` it is returned with, and computes a
//! customer's list when it is read (`view_store::recs`: weights, scores, exclusions, fill-ins
//! from the `top_products` rows of window `all`, metric `quantity`).
//!
//! Why not eagerly: the scores are a join of the weights with the co-occurrence multiset, so
//! one new order fans out to every customer who touched one of its products, and the
//! `(customer, candidate)` score state is huge. Measured (release, `recs_bench`, 2 shared
//! cores, synthetic shop: skewed popularity, 1-4 items per order, ~3 interactions per
//! customer), before the switch:
//!
//! | 10k customers / 1k products / 50k orders | state (RSS) | load | update per order p50 / p99 |
//! |---|---|---|---|
//! | dataflow without recommendations (also_bought + top_products) | 77 MB | 0.8 s | 0.74 / 5.0 ms |
//! | + eager recommendations (the former version of this module) | **11.3 GB** | 200 s | **74 / 1,110 ms** |
//! | read-time index prototype (co-occurrence, interactions, best sellers) | 13 MB | 0.1 s | 1.1 µs (mean) |
//!
//! The prototype at the requested scale (1M customers / 100k products / 2M orders): 956 MB,
//! 4.5 µs per order, serving one customer's list p50 198 µs, p99 6.1 ms.
//!
//! The real engine path after the switch (`recs_bench`, default mode: a real `Engine` with
//! every view, retention none, 1 worker, lists served through `ViewStore::recommend`, k = 10;
//! release, 2 cores shared with other builds, load average ~3.6):
//!
//! | customers / products / orders | load | RSS growth (every view) | order visible p50 / p99 | back to back | serve p50 / p99 |
//! |---|---|---|---|---|---|
//! | 20k / 2k / 40k | 2.4 s | 269 MB | 11.1 / 26.1 ms | 132 µs/order | 217 µs / 4.5 ms |
//! | 1M / 100k / 2M | 494 s | 12.9 GB | 38.7 / 90.4 ms | 320 µs/order | 663 µs / 44 ms |
//!
//! The update figures are the whole engine's (every view), not recommendations' share; the
//! RSS is every view's state with retention off (the bench's `base` / `index` modes split out
//! what the index adds). Serving's tail comes from customers who touched the most popular
//! products, whose co-occurrence rows hold tens of thousands of partners.
//!
//! Owns only the derivation of the index updates; the scoring and ranking rules live with the
//! index (view-store).

use super::IndexUpdates;
use view_store::{InteractionKind, RecsDelta};

/// One engine time's index updates as the store's index deltas (whose diffs are
/// multiplicities), in no particular order.
pub fn deltas(u: IndexUpdates) -> Vec<(RecsDelta, i64)> {
    let interaction = |customer, product, kind| RecsDelta::Interaction {
        customer,
        product,
        kind,
    };
    let IndexUpdates {
        purchases,
        co_purchases,
        products,
        carts,
        wishlists,
        product_views,
    } = u;
    let mut out = Vec::with_capacity(
        purchases.len()
            + carts.len()
            + wishlists.len()
            + product_views.len()
            + 2 * products.len()
            + co_purchases.len(),
    );
    let mut push = |d: RecsDelta, r: isize| out.push((d, r as i64));

    // once per live order of the customer containing the product
    for ((c, p), r) in purchases {
        push(interaction(c, p, InteractionKind::Purchase), r);
    }
    for ((_, i), r) in carts {
        push(
            interaction(i.customer_id, i.product_id, InteractionKind::Cart),
            r,
        );
    }
    for ((_, i), r) in wishlists {
        push(
            interaction(i.customer_id, i.product_id, InteractionKind::Wishlist),
            r,
        );
    }
    // a product view, or a category browse (a view without product)
    for ((_, v), r) in product_views {
        match (v.product_id, v.category_id) {
            (Some(p), _) => push(interaction(v.customer_id, p, InteractionKind::View), r),
            (None, Some(category)) => push(
                RecsDelta::Browse {
                    customer: v.customer_id,
                    category,
                },
                r,
            ),
            (None, None) => {}
        }
    }
    for ((product, f), r) in products {
        if let Some(category) = f.category_id {
            push(RecsDelta::Category { product, category }, r);
        }
        if !f.active {
            push(RecsDelta::Inactive { product }, r);
        }
    }
    // co(p, q): one copy per live order within the cap containing both
    for ((product, other), r) in co_purchases {
        push(RecsDelta::CoPurchase { product, other }, r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::{Coll, Inputs, ViewsConfig};
    use crate::facts::{Interaction, ProductFacts, ViewEvent};
    use std::cell::RefCell;
    use view_store::AlsoBoughtRow;
    use view_store::{AsOf, ViewName, ViewRow, ViewStore};

    thread_local! {
        /// Every update the rig's single worker produced since the last publication (it runs on
        /// this thread).
        static SINK: RefCell<Vec<(ViewRow, isize)>> = RefCell::default();
    }

    fn recorded<'s>(inputs: &Inputs<'s>, cfg: &ViewsConfig) -> Coll<'s, ViewRow> {
        super::super::build(inputs, cfg)
            .inspect(|(row, _t, r)| SINK.with(|s| s.borrow_mut().push((row.clone(), *r))))
    }

    /// The engine's path in one thread: the dataflow on a rig, the index updates beside it, and
    /// both published into a store per time as the runtime does (consolidated, retractions
    /// first, one batch per time).
    struct Engine {
        rig: Rig,
        store: ViewStore,
        time: u64,
    }

    impl Engine {
        fn new(cfg: &ViewsConfig) -> Engine {
            let store = ViewStore::new();
            store.set_top_k(cfg.also_bought_k);
            SINK.with(|s| s.borrow_mut().clear());
            Engine {
                rig: Rig::new(cfg, recorded),
                store,
                time: 0,
            }
        }

        /// Applies `updates` as one engine time.
        fn step(&mut self, updates: Updates) {
            let mut index = None;
            self.rig.tick(|s| index = Some(s.feed(updates)));
            let changes: Vec<(ViewRow, isize)> =
                SINK.with(|s| std::mem::take(&mut *s.borrow_mut()));
            self.time += 1;
            let as_of = AsOf {
                time: self.time,
                ..AsOf::default()
            };
            let (batch, index) =
                crate::runtime::store_batch(changes, index.unwrap_or_default(), as_of);
            self.store.apply_indexed(batch, index);
            assert_eq!(self.store.anomalies(), 0, "the index took every delta");
        }
    }

    /// The current recommendations of `customer` as (product, score), in rank order, through the
    /// store's hook, checked against the view's rows (the dump's source) for the view's K.
    fn recs(store: &ViewStore, customer: i64) -> Vec<(i64, i64)> {
        let (_, rows) = store.recommend(customer, 3);
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(r.rank as usize, i + 1);
            assert_eq!(r.customer_id, customer);
        }
        let (_, all) = store.snapshot(ViewName::Recommendations);
        let of_customer: Vec<ViewRow> = all
            .into_iter()
            .filter(|r| matches!(r, ViewRow::Recommendation(r) if r.customer_id == customer))
            .collect();
        assert_eq!(
            of_customer,
            rows.iter()
                .cloned()
                .map(ViewRow::Recommendation)
                .collect::<Vec<_>>()
        );
        rows.iter().map(|r| (r.product_id, r.score)).collect()
    }

    fn product(category: i64, active: bool) -> ProductFacts {
        ProductFacts {
            category_id: Some(category),
            active,
        }
    }

    #[test]
    fn scores_exclusions_cancel_and_fill_ins() {
        let cfg = ViewsConfig {
            also_bought_k: 3,
            top_n: 2,
            ..test_config()
        };
        let mut engine = Engine::new(&cfg);
        let mut db = Db::default();
        // products 1-3 in category 10; 4, 6 in 20, and 6 is inactive
        for (id, cat, active) in [(1, 10, true), (2, 10, true), (3, 10, true), (4, 20, true)] {
            db.products.insert(id, product(cat, active));
        }
        db.products.insert(6, product(20, false));
        // customer 100 buys 1 and 2; customer 101 buys 1, 3 and 6; 102 buys 4 (9 units)
        db.orders.insert(1, DbOrder::new(0, 100, Some(100)));
        db.item(1, 1, 1, 1, 100);
        db.item(2, 1, 2, 5, 100);
        db.orders.insert(2, DbOrder::new(0, 100, Some(101)));
        db.item(3, 2, 1, 1, 100);
        db.item(4, 2, 3, 1, 100);
        db.item(5, 2, 6, 1, 100);
        db.orders.insert(3, DbOrder::new(0, 100, Some(102)));
        db.item(6, 3, 4, 9, 100);
        let s0 = db.facts(&cfg);
        let store = engine.store.clone();
        {
            // customer 200 has product 1 in the cart; 300 only browsed category 20
            let mut u = s0.clone();
            let cart = Interaction {
                customer_id: 200,
                product_id: 1,
            };
            u.carts.push(((1, cart), 1));
            let browse = ViewEvent {
                customer_id: 300,
                product_id: None,
                category_id: Some(20),
            };
            u.product_views.push(((1, browse), 1));
            engine.step(u);
        }
        // 200: co(1,2) = co(1,3) = 1, weight 3; 1 is in the cart, 6 inactive; the fill-in
        // skips category 10's best sellers [2, 1] and takes the global first, 4
        assert_eq!(recs(&store, 200), vec![(2, 3), (3, 3), (4, 0)]);
        // 100 bought 1 and 2 (weight 2 each): only 3 scores; then global best seller 4
        assert_eq!(recs(&store, 100), vec![(3, 2), (4, 0)]);
        // cold start: category 20's best sellers (6 is inactive), then the global ones
        assert_eq!(recs(&store, 300), vec![(4, 0), (2, 0)]);

        // order 2 is cancelled: its pairs go, and 200's list stays short (all else excluded)
        db.orders.get_mut(&2).unwrap().cancelled = true;
        engine.step(change(&s0, &db.facts(&cfg)));
        assert_eq!(recs(&store, 200), vec![(2, 3), (4, 0)]);
        assert_eq!(recs(&store, 100), vec![(4, 0)]);
        assert_eq!(recs(&store, 101), vec![]);
        assert_eq!(recs(&store, 300), vec![(4, 0), (2, 0)]);

        // a wishlist row (2) and a view (1) of product 2 add to 200's weight for it, which
        // scores 1 by co(2, 1) (excluded: in the cart) and moves category 10 up for 300
        let mut u = Updates::default();
        let w = Interaction {
            customer_id: 300,
            product_id: 2,
        };
        u.wishlists.push(((1, w), 1));
        let v = ViewEvent {
            customer_id: 300,
            product_id: Some(2),
            category_id: Some(10),
        };
        u.product_views.push(((2, v), 1));
        engine.step(u);
        // 300: weight(2) = 3 -> score(1) = 3 × co(2,1) = 3; then category 10 (3) before 20 (1):
        // best sellers [2, 1] give 2; then 20's [4]
        assert_eq!(recs(&store, 300), vec![(1, 3), (2, 0), (4, 0)]);
    }

    fn also(store: &ViewStore) -> Vec<(i64, u32, i64, i64)> {
        let (_, rows) = store.snapshot(ViewName::AlsoBought);
        rows.iter()
            .filter_map(|r| match r {
                ViewRow::AlsoBought(AlsoBoughtRow {
                    product_id,
                    rank,
                    other_product_id,
                    order_count,
                }) => Some((*product_id, *rank, *other_product_id, *order_count)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn also_bought_pairs_count_once_per_order_and_retract_on_cancel() {
        let cfg = ViewsConfig {
            also_bought_k: 2,
            basket_cap: 3,
            ..test_config()
        };
        let mut engine = Engine::new(&cfg);
        let mut db = Db::default();
        let mut prev = Updates::default();
        let mut step = |engine: &mut Engine, db: &Db| {
            let now = db.facts(&cfg);
            engine.step(change(&prev, &now));
            prev = now;
            also(&engine.store)
        };
        // order 1: products 1, 2 (product 1 twice: counts once)
        db.orders.insert(1, DbOrder::new(10, 100, Some(7)));
        db.item(1, 1, 1, 1, 100);
        db.item(2, 1, 1, 3, 100);
        db.item(3, 1, 2, 1, 100);
        let s0 = step(&mut engine, &db);
        assert_eq!(s0, vec![(1, 1, 2, 1), (2, 1, 1, 1)]);
        // order 2: products 1, 3, 2 -> (1,2) twice; ties of 1 -> 3 and 3's others by smaller id
        db.orders.insert(2, DbOrder::new(20, 100, Some(8)));
        db.item(4, 2, 1, 1, 100);
        db.item(5, 2, 3, 1, 100);
        db.item(6, 2, 2, 1, 100);
        let s1 = step(&mut engine, &db);
        assert_eq!(
            s1,
            vec![
                (1, 1, 2, 2),
                (1, 2, 3, 1),
                (2, 1, 1, 2),
                (2, 2, 3, 1),
                (3, 1, 1, 1),
                (3, 2, 2, 1),
            ]
        );
        // order 2 cancelled: its pairs go
        db.orders.get_mut(&2).unwrap().cancelled = true;
        assert_eq!(step(&mut engine, &db), s0);
        // order 3 over the cap (4 distinct products): no pairs
        db.orders.insert(3, DbOrder::new(30, 100, Some(9)));
        for (id, p) in [(7, 1), (8, 2), (9, 3), (10, 4)] {
            db.item(id, 3, p, 1, 100);
        }
        assert_eq!(step(&mut engine, &db), s0);
        // an item of order 3 removed: within the cap again
        db.items.remove(&10);
        assert_eq!(step(&mut engine, &db), s1);
    }
}
