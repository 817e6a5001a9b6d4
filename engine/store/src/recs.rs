//! The read-time index behind the `recommendations` view (SPEC §4, §7): the engine does not
//! keep per-customer lists; it publishes small index updates ([`RecsDelta`]) with the same
//! engine time as every other view row, the store applies them under the same write lock (so a
//! reader never sees the index and the other views at different positions), and a customer's
//! list is computed when it is read ([`Recommender::recommend`]).
//!
//! Owns: the index (per customer: weighted interactions, exclusions, category browses; per
//! product: co-occurrence counts, current category, inactive flag) and the scoring rules:
//!
//! * weight(c, p) = 2 per live order of c containing p (once per order), 3 per cart row, 2 per
//!   wishlist row, 1 per product view row ([`InteractionKind::weight`]).
//! * score(q) = Σ_p weight(c, p) × co(p, q), with co the full co-occurrence count (orders over
//!   the basket cap contribute none: the engine leaves them out of the deltas).
//! * Excluded: products c bought (a live order), has in the cart, or that are known inactive.
//!   Candidates (score > 0, not excluded) rank by score, then smaller id; top k.
//! * A short list is filled (score 0) with the best sellers — the `top_products` rows of window
//!   `all`, metric `quantity` — of c's favourite categories (Σ weight(c, p) over p currently in
//!   the category + 1 per browse of it, ranked by that sum then category_id), then the global
//!   ones, skipping excluded and listed products; it may stay shorter than k.
//!
//! Every delta is additive (its diff is a multiplicity), so the store needs no consolidated
//! values from the dataflow and the dataflow keeps no per-customer state for it.
//!
//! Must not read the dataflow nor know how the deltas are derived (engine/src/views/index.rs).

use crate::co::CoIndex;
use crate::idmap::IdMap;
use crate::rows::{Metric, RecommendationRow, TopProductRow, Window};
use crate::ViewRow;
use foldhash::{HashMap, HashSet};
use serde::{Deserialize, Serialize};
use sources::Money;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

/// How a customer touched a product.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum InteractionKind {
    /// Once per live order of the customer containing the product.
    Purchase,
    /// Once per current cart row.
    Cart,
    /// Once per wishlist row.
    Wishlist,
    /// Once per product view row.
    View,
}

impl InteractionKind {
    /// The weight of one such interaction (SPEC §4).
    pub fn weight(self) -> i64 {
        match self {
            InteractionKind::Purchase => 2,
            InteractionKind::Cart => 3,
            InteractionKind::Wishlist => 2,
            InteractionKind::View => 1,
        }
    }

    /// Whether the product must not be offered to the customer (bought or in the cart).
    pub fn excludes(self) -> bool {
        matches!(self, InteractionKind::Purchase | InteractionKind::Cart)
    }
}

/// One update of the index. The diff that comes with it (in a [`crate::ChangeBatch`], as
/// [`ViewRow::RecsIndex`]) is a multiplicity: +n adds n such facts, −n removes them.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RecsDelta {
    Interaction {
        customer: i64,
        product: i64,
        kind: InteractionKind,
    },
    /// A category browse (a product view row without product).
    Browse { customer: i64, category: i64 },
    /// The product's current category.
    Category { product: i64, category: i64 },
    /// The product is known inactive (`is_active = false`).
    Inactive { product: i64 },
    /// One live order within the basket cap containing both products (`product != other`).
    CoPurchase { product: i64, other: i64 },
}

impl RecsDelta {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// Interaction deltas `(customer, product, kind, diff)` netted per (customer, product, kind),
/// zeros dropped, ascending by (customer, product, kind) with the retractions first: what
/// consolidating them as [`RecsDelta`]s and [`crate::retractions_first`] give, by a radix sort
/// on (customer, product) and a sum per kind (the comparison sort of the deltas, enum and all,
/// was 1.6% of the pipeline's instructions: callgrind, stages bench).
fn net_interactions(
    mut touches: Vec<(i64, i64, InteractionKind, i64)>,
) -> Vec<(i64, i64, InteractionKind, i64)> {
    const KINDS: [InteractionKind; 4] = [
        InteractionKind::Purchase,
        InteractionKind::Cart,
        InteractionKind::Wishlist,
        InteractionKind::View,
    ];
    crate::radix_sort_by(
        &mut touches,
        &mut Vec::new(),
        |&(customer, product, _, _)| crate::radix::ordered_pair(customer, product),
    );
    let mut retracted = Vec::new();
    let mut added = Vec::with_capacity(touches.len());
    for run in touches.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
        let mut net = [0i64; KINDS.len()];
        for &(_, _, kind, diff) in run {
            // wrapping, as any sum of multiplicities here: no panic on the store's thread
            let at = KINDS.iter().position(|&k| k == kind).unwrap_or(0);
            net[at] = net[at].wrapping_add(diff);
        }
        let (customer, product) = (run[0].0, run[0].1);
        for (&kind, diff) in KINDS.iter().zip(net) {
            match diff {
                0 => {}
                d if d < 0 => retracted.push((customer, product, kind, d)),
                d => added.push((customer, product, kind, d)),
            }
        }
    }
    retracted.append(&mut added);
    retracted
}

/// What a customer did with one product.
#[derive(Copy, Clone, Debug)]
struct Touched {
    /// Σ weights of the customer's interactions with it. `u32` like the exclusions: with the
    /// product id packed into an [`IdMap`] an entry is 12 B (there is one per customer and
    /// product touched: 51 MB of the index at 1M orders when it was a 16 B entry in a doubling
    /// vector); a sum beyond `u32` is refused like a negative one.
    weight: u32,
    /// Purchases + cart rows (> 0: excluded).
    exclusions: u32,
}

/// What the index knows of one customer. Sorted by id: a customer has few entries.
#[derive(Clone, Debug, Default)]
struct CustomerIdx {
    /// product -> what the customer did with it (never all zero: such entries are removed)
    touched: IdMap<Touched>,
    /// (category, browses)
    browses: Vec<(i64, i64)>,
}

impl CustomerIdx {
    fn is_empty(&self) -> bool {
        self.touched.is_empty() && self.browses.is_empty()
    }

    /// Adds `diff` interactions of `kind` with `product`; false (and nothing changed) when a
    /// sum would go negative or past `u32`.
    fn touch(&mut self, product: i64, kind: InteractionKind, diff: i64) -> bool {
        let mut t = self.touched.get(product).unwrap_or(Touched {
            weight: 0,
            exclusions: 0,
        });
        let weight = diff
            .checked_mul(kind.weight())
            .and_then(|d| add_u32(t.weight, d));
        let exclusions = if kind.excludes() {
            add_u32(t.exclusions, diff)
        } else {
            Some(t.exclusions)
        };
        let ok = match (weight, exclusions) {
            (Some(w), Some(e)) => {
                t.weight = w;
                t.exclusions = e;
                true
            }
            _ => false,
        };
        let kept = t.weight > 0 || t.exclusions > 0;
        self.touched.set(product, kept.then_some(t));
        ok
    }

    fn excluded(&self, product: i64) -> bool {
        self.touched.get(product).is_some_and(|t| t.exclusions > 0)
    }
}

/// The index. Only the store mutates it (under its write lock).
#[derive(Debug, Default)]
pub(crate) struct RecsIndex {
    /// Every customer with any interaction. Hashed, not a B-tree: a time touches a few
    /// thousand customers spread over all of them, and the B-tree's descent missed the cache
    /// at most levels (perf: a seventh of the store's time at 1M orders of the e2e bench).
    customers: HashMap<i64, CustomerIdx>,
    /// The ids of `customers`, in id order (the dump's and the view's pages' order); changed
    /// only when a customer arrives or leaves.
    order: BTreeSet<i64>,
    /// co(p, q), shared with `also_bought` (see [`crate::co`]).
    pub(crate) co: CoIndex,
    /// product -> current category.
    categories: HashMap<i64, i64>,
    inactive: HashSet<i64>,
}

/// The index entry of `customer`, created (and its id put in `order`) when new.
fn customer_entry<'a>(
    customers: &'a mut HashMap<i64, CustomerIdx>,
    order: &mut BTreeSet<i64>,
    customer: i64,
) -> &'a mut CustomerIdx {
    customers.entry(customer).or_insert_with(|| {
        order.insert(customer);
        CustomerIdx::default()
    })
}

/// `value + diff`, or `None` when the result is negative (an inconsistent stream).
fn add(value: i64, diff: i64) -> Option<i64> {
    value.checked_add(diff).filter(|v| *v >= 0)
}

/// `value + diff` as a `u32`, or `None` when the result is negative or too large.
fn add_u32(value: u32, diff: i64) -> Option<u32> {
    add(i64::from(value), diff).and_then(|v| u32::try_from(v).ok())
}

impl RecsIndex {
    /// Applies one delta with its multiplicity. Returns false when the delta does not fit the
    /// index (a count would go negative, a category retracted that is not the current one):
    /// the store counts that as an anomaly and keeps going.
    pub(crate) fn apply(&mut self, delta: &RecsDelta, diff: i64) -> bool {
        match *delta {
            RecsDelta::Interaction {
                customer,
                product,
                kind,
            } => self.apply_interactions(&[(customer, product, kind, diff)]) == 0,
            RecsDelta::Browse { customer, category } => {
                let c = customer_entry(&mut self.customers, &mut self.order, customer);
                let i = match c.browses.binary_search_by_key(&category, |b| b.0) {
                    Ok(i) => i,
                    Err(i) => {
                        c.browses.insert(i, (category, 0));
                        i
                    }
                };
                let ok = match add(c.browses[i].1, diff) {
                    Some(n) => {
                        c.browses[i].1 = n;
                        true
                    }
                    None => false,
                };
                if c.browses[i].1 == 0 {
                    c.browses.remove(i);
                }
                if c.is_empty() {
                    self.customers.remove(&customer);
                    self.order.remove(&customer);
                }
                ok
            }
            RecsDelta::Category { product, category } => match diff {
                1 => self.categories.insert(product, category).is_none(),
                -1 if self.categories.get(&product) == Some(&category) => {
                    self.categories.remove(&product);
                    true
                }
                _ => false,
            },
            RecsDelta::Inactive { product } => match diff {
                1 => self.inactive.insert(product),
                -1 => self.inactive.remove(&product),
                _ => false,
            },
            // co-occurrence changes a whole product's ranking at once: the store applies a
            // batch's pairs together (`crate::co::apply_batch`), never one by one here
            RecsDelta::CoPurchase { .. } => false,
        }
    }

    /// Applies one engine time's index deltas (any order, repeats allowed) as the batch of
    /// one time: netted per delta, retractions before insertions (a product moving category
    /// retracts the old one first), interactions a customer's run at a time. Co-occurrence
    /// deltas are not applied here but returned as `(product, other, diff)` for
    /// `crate::co::apply_batch`, which ranks a product's partners once per batch. Returns them
    /// and the number of deltas that did not fit.
    pub(crate) fn apply_deltas(
        &mut self,
        deltas: Vec<(RecsDelta, i64)>,
    ) -> (Vec<(i64, i64, i64)>, u64) {
        // most of a time's deltas are co-occurrence pairs (grown push by push, their vector
        // was copied over and over)
        let mut co = Vec::with_capacity(deltas.len());
        let mut touches = Vec::new();
        let mut rest = Vec::new();
        for (delta, diff) in deltas {
            match delta {
                RecsDelta::CoPurchase { product, other } => co.push((product, other, diff)),
                RecsDelta::Interaction {
                    customer,
                    product,
                    kind,
                } => touches.push((customer, product, kind, diff)),
                _ => rest.push((delta, diff)),
            }
        }
        crate::consolidate(&mut rest);
        crate::retractions_first(&mut rest);
        let mut refused = 0;
        for (delta, diff) in rest {
            if !self.apply(&delta, diff) {
                refused += 1;
            }
        }
        // the interactions after the other deltas, as they always were
        refused += self.apply_interactions(&net_interactions(touches));
        (co, refused)
    }

    /// Applies interaction deltas `(customer, product, kind, diff)` in order, as [`apply`]
    /// would one by one; returns how many did not fit. A run of one customer's deltas finds the
    /// customer once: [`RecsIndex::apply_deltas`] hands a customer's deltas together (netted,
    /// so sorted by customer), and a B-tree search per delta missed the cache at
    /// most levels (perf: the index was the store's largest cost).
    ///
    /// [`apply`]: RecsIndex::apply
    pub(crate) fn apply_interactions(
        &mut self,
        deltas: &[(i64, i64, InteractionKind, i64)],
    ) -> u64 {
        let mut refused = 0;
        let runs: Vec<&[(i64, i64, InteractionKind, i64)]> =
            deltas.chunk_by(|a, b| a.0 == b.0).collect();
        for (r, &run) in runs.iter().enumerate() {
            let customer = run[0].0;
            // the next customer's row while this one's is worked on: each customer's first
            // search of its row missed the cache (perf: a seventh of the index's time)
            if let Some(next) = runs.get(r + 1).and_then(|n| self.customers.get(&n[0].0)) {
                next.touched.prefetch();
            }
            let c = customer_entry(&mut self.customers, &mut self.order, customer);
            for &(_, product, kind, diff) in run {
                if !c.touch(product, kind, diff) {
                    refused += 1;
                }
            }
            if c.is_empty() {
                self.customers.remove(&customer);
                self.order.remove(&customer);
            }
        }
        refused
    }

    pub(crate) fn customer_count(&self) -> usize {
        self.customers.len()
    }
}

/// Computes lists from the index and the `top_products` rows of one consistent store state
/// (it borrows both under the store's read lock; see [`crate::ViewStore::with_recommender`]).
pub struct Recommender<'a> {
    index: &'a RecsIndex,
    top_products: &'a BTreeMap<ViewRow, i64>,
    k: usize,
    /// Score accumulator reused between customers (a dump scores every customer).
    scores: RefCell<HashMap<i64, i64>>,
}

impl<'a> Recommender<'a> {
    pub(crate) fn new(
        index: &'a RecsIndex,
        top_products: &'a BTreeMap<ViewRow, i64>,
        k: usize,
    ) -> Self {
        Recommender {
            index,
            top_products,
            k,
            scores: RefCell::default(),
        }
    }

    /// The view's K (`ViewsConfig::also_bought_k`): the length of the lists the view holds.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Every customer with any interaction, ascending (the customers the view has a list for).
    pub fn customers(&self) -> impl Iterator<Item = i64> + '_ {
        self.index.order.iter().copied()
    }

    pub fn customer_count(&self) -> usize {
        self.index.customer_count()
    }

    /// The best sellers of a scope (`None` = global) in rank order.
    fn best_sellers(&self, scope: Option<i64>) -> impl Iterator<Item = i64> + '_ {
        let floor = ViewRow::TopProduct(TopProductRow {
            window: Window::All,
            window_start: None,
            category_id: scope,
            metric: Metric::Quantity,
            rank: 0,
            product_id: i64::MIN,
            quantity: i64::MIN,
            revenue: Money(i64::MIN),
        });
        self.top_products
            .range(floor..)
            .map(|(row, _)| row)
            .map_while(move |row| match row {
                ViewRow::TopProduct(r)
                    if r.window == Window::All
                        && r.window_start.is_none()
                        && r.category_id == scope
                        && r.metric == Metric::Quantity =>
                {
                    Some(r.product_id)
                }
                _ => None,
            })
    }

    /// The first `k` recommendations of `customer` in rank order (empty for a customer
    /// without interactions).
    pub fn recommend(&self, customer: i64, k: usize) -> Vec<RecommendationRow> {
        let Some(c) = self.index.customers.get(&customer) else {
            return Vec::new();
        };
        let excluded = |q: i64| c.excluded(q) || self.index.inactive.contains(&q);

        // scores of every co-purchased product, then the first k candidates
        let mut ranked: Vec<(i64, i64)> = {
            let mut scores = self.scores.borrow_mut();
            scores.clear();
            for (p, t) in c.touched.iter().filter(|(_, t)| t.weight > 0) {
                if let Some(row) = self.index.co.row(p) {
                    for (q, n) in row.iter() {
                        let s = scores.entry(q).or_insert(0);
                        *s = s.saturating_add(i64::from(t.weight).saturating_mul(i64::from(n)));
                    }
                }
            }
            scores
                .iter()
                .filter(|&(&q, &s)| s > 0 && !excluded(q))
                .map(|(&q, &s)| (q, s))
                .collect()
        };
        let by_rank = |a: &(i64, i64), b: &(i64, i64)| b.1.cmp(&a.1).then(a.0.cmp(&b.0));
        if ranked.len() > k {
            if k > 0 {
                ranked.select_nth_unstable_by(k - 1, by_rank);
            }
            ranked.truncate(k);
        }
        ranked.sort_unstable_by(by_rank);

        if ranked.len() < k {
            // favourite categories: Σ weights of the customer's products in them + browses
            let mut fav: HashMap<i64, i64> = c.browses.iter().copied().collect();
            for (p, t) in c.touched.iter() {
                if let Some(&cat) = self.index.categories.get(&p) {
                    *fav.entry(cat).or_insert(0) += i64::from(t.weight);
                }
            }
            let mut fav: Vec<(i64, i64)> = fav.into_iter().filter(|&(_, s)| s > 0).collect();
            fav.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let pool = fav
                .iter()
                .flat_map(|&(cat, _)| self.best_sellers(Some(cat)))
                .chain(self.best_sellers(None));
            for q in pool {
                if ranked.len() >= k {
                    break;
                }
                if excluded(q) || ranked.iter().any(|&(r, _)| r == q) {
                    continue;
                }
                ranked.push((q, 0));
            }
        }
        (1u32..)
            .zip(ranked)
            .map(|(rank, (product_id, score))| RecommendationRow {
                customer_id: customer,
                rank,
                product_id,
                score,
            })
            .collect()
    }

    /// The view's rows in dump order (customer, rank): every customer's first K, from the
    /// first customer at or after `from`, up to `limit` rows. Returns whether rows were left.
    pub fn rows(&self, from: Option<i64>, limit: usize) -> (Vec<RecommendationRow>, bool) {
        let mut out = Vec::new();
        let start = from.unwrap_or(i64::MIN);
        for &c in self.index.order.range(start..) {
            for row in self.recommend(c, self.k) {
                if out.len() == limit {
                    return (out, true);
                }
                out.push(row);
            }
        }
        (out, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// `net_interactions` gives what consolidating the deltas as `RecsDelta`s and putting the
    /// retractions first gave (the order `apply_interactions` applies them in), for batches
    /// below and above the radix sort's threshold, with negative ids, repeats that cancel and
    /// every kind.
    #[test]
    fn net_interactions_equals_consolidating_the_deltas() {
        let kinds = [
            InteractionKind::Purchase,
            InteractionKind::Cart,
            InteractionKind::Wishlist,
            InteractionKind::View,
        ];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for round in 0..400 {
            let n = if round % 2 == 0 {
                rng.random_range(0..crate::RADIX_SMALL)
            } else {
                rng.random_range(crate::RADIX_SMALL..2_000)
            };
            let spread = rng.random_range(1..40i64);
            let touches: Vec<(i64, i64, InteractionKind, i64)> = (0..n)
                .map(|_| {
                    let customer = rng.random_range(-spread..spread) * 1_000_003;
                    let product = rng.random_range(-spread..spread);
                    let kind = kinds[rng.random_range(0..4)];
                    let diff = if rng.random_bool(0.5) { 1 } else { -1 };
                    (customer, product, kind, diff)
                })
                .collect();
            let mut want: Vec<(RecsDelta, i64)> = touches
                .iter()
                .map(|&(customer, product, kind, diff)| {
                    (
                        RecsDelta::Interaction {
                            customer,
                            product,
                            kind,
                        },
                        diff,
                    )
                })
                .collect();
            crate::consolidate(&mut want);
            crate::retractions_first(&mut want);
            let want: Vec<(i64, i64, InteractionKind, i64)> = want
                .into_iter()
                .map(|(d, diff)| match d {
                    RecsDelta::Interaction {
                        customer,
                        product,
                        kind,
                    } => (customer, product, kind, diff),
                    other => panic!("not an interaction: {other:?}"),
                })
                .collect();
            assert_eq!(net_interactions(touches), want, "round {round}");
        }
    }
}
