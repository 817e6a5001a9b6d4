//! The views of SPEC §4 as differential computations, one module per view. Each module's
//! `build` reads like the view's definition: a chain of collections named for what they hold.
//! `also_bought` and `recommendations` are the exceptions: both are read from an index of
//! additive facts (co-occurrence, interactions) that the store keeps and derives them from
//! (view_store's `co` and `recs`); [`index`] says what the index is fed and why.
//!
//! This module owns the inputs every view reads ([`Inputs`]) and the settings ([`ViewsConfig`]);
//! it must not feed inputs or publish results (the dataflow runtime does).

mod by_id;
pub mod category_sales;
pub mod fraud_alerts;
pub mod index;
pub mod per_group;
pub mod revenue;
pub mod shared;
pub mod sums;
pub mod testkit;
pub mod top_n;
pub mod top_products;
pub mod trending;

use crate::facts::*;
use differential_dataflow::VecCollection;
use sources::{Micros, Money};
use view_store::{ViewRow, Window};

/// Logical time: the engine's transaction sequence number. All changes of one source
/// transaction share one time; event time (order_date) is data.
pub type Time = u64;

/// A collection in the engine's dataflow scope.
pub type Coll<'s, D> = VecCollection<'s, Time, D, isize>;

/// Declares the engine's inputs once, and from that list derives [`Inputs`] (the collections
/// the dataflow's views read), [`Updates`] (one engine time's changes to every input, built by
/// the ingest thread), [`IndexUpdates`] (the part the store's index takes instead of the
/// dataflow) and [`Sessions`] (the input sessions of the feeding worker), so they never drift
/// apart.
macro_rules! engine_inputs {
    (
        dataflow { $( $(#[$doc:meta])* $name:ident : $ty:ty ),* $(,)? }
        additive { $( $(#[$adoc:meta])* $aname:ident : ($akey:ty, $asums:ty) ),* $(,)? }
        index { $( $(#[$idoc:meta])* $iname:ident : $ity:ty ),* $(,)? }
    ) => {
        /// The dataflow's inputs: the source tables upserted, projected (see [`crate::facts`])
        /// and, for orders and their items, joined at ingest (see [`crate::ingest`]).
        #[derive(Clone)]
        pub struct Inputs<'s> {
            $( $(#[$doc])* pub $name: Coll<'s, $ty>, )*
            $( $(#[$adoc])* pub $aname: Coll<'s, ($akey, $asums)>, )*
        }

        /// Changes to every input for one engine time: the dataflow's and the index's.
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct Updates {
            $( $(#[$doc])* pub $name: Vec<($ty, isize)>, )*
            $( $(#[$adoc])* pub $aname: Vec<(($akey, $asums), isize)>, )*
            $( $(#[$idoc])* pub $iname: Vec<($ity, isize)>, )*
        }

        /// The changes of one engine time that go to the store's index (see [`index`]), not
        /// through the dataflow.
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct IndexUpdates {
            $( $(#[$idoc])* pub $iname: Vec<($ity, isize)>, )*
        }

        impl IndexUpdates {
            /// Appends `other`'s updates (a later time's: the store nets them together).
            pub fn merge(&mut self, other: IndexUpdates) {
                $( self.$iname.extend(other.$iname); )*
            }
        }

        impl Updates {
            /// Each input's number of updates, in declaration order (see [`Updates::with_room`]).
            pub fn lens(&self) -> Vec<usize> {
                vec![ $( self.$name.len(), )* $( self.$aname.len(), )* $( self.$iname.len(), )* ]
            }

            /// No updates, with room for `lens` per input (as [`Updates::lens`] lists them): the
            /// ingest sizes a time's vectors like the previous time's, since grown push by push
            /// they were reallocated and copied ~20 times each per time (~0.7% of the
            /// pipeline's instructions, callgrind).
            pub fn with_room(lens: &[usize]) -> Updates {
                let mut room = lens.iter().copied();
                let mut next = || room.next().unwrap_or(0);
                // fields are initialised in the order written, which is `lens`' order
                Updates {
                    $( $name: Vec::with_capacity(next()), )*
                    $( $aname: Vec::with_capacity(next()), )*
                    $( $iname: Vec::with_capacity(next()), )*
                }
            }

            /// Number of updates over all inputs.
            pub fn len(&self) -> usize {
                0 $( + self.$name.len() )* $( + self.$aname.len() )* $( + self.$iname.len() )*
            }

            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// Cancels `+x` against `−x` within the batch, so superseded updates (a row changed
            /// twice in one transaction) never reach the dataflow or the store, and sums each
            /// additive input per key; sorted.
            pub fn consolidate(&mut self) {
                $( view_store::consolidate(&mut self.$name); )*
                $( crate::ingest::sum_sorted(&mut self.$aname); )*
                $( view_store::consolidate(&mut self.$iname); )*
            }

            /// [`Updates::consolidate`] for the dataflow's inputs only, as the runtime
            /// publishes a time, and netted by hash, not sorted: every operator takes a time's
            /// updates in any order (see `per_group`), and replacing the sort of their large
            /// records saved 1.6% of the stages bench's instructions. The index's updates are
            /// left as they came, because the store nets them itself
            /// (`ViewStore::apply_indexed`, whose co-occurrence ranking sorts its pairs
            /// anyway); sorting them here too was ~3% of the pipeline's instructions.
            /// The additive inputs are summed per key the same way.
            pub fn consolidate_dataflow(&mut self) {
                $( crate::ingest::net_by_hash(&mut self.$name); )*
                $( crate::ingest::sum_by_hash(&mut self.$aname); )*
            }

            /// Flips the sign of every update.
            pub fn negate(&mut self) {
                $( for (_, r) in self.$name.iter_mut() { *r = -*r; } )*
                $( for (_, r) in self.$aname.iter_mut() { *r = -*r; } )*
                $( for (_, r) in self.$iname.iter_mut() { *r = -*r; } )*
            }

            /// Appends `other`'s updates (same engine time).
            pub fn merge(&mut self, other: Updates) {
                $( self.$name.extend(other.$name); )*
                $( self.$aname.extend(other.$aname); )*
                $( self.$iname.extend(other.$iname); )*
            }
        }

        /// The input sessions behind an [`Inputs`]; only the feeding worker keeps them open.
        pub struct Sessions {
            $( pub $name: differential_dataflow::input::InputSession<Time, $ty, isize>, )*
            $( pub $aname: differential_dataflow::input::InputSession<Time, ($akey, $asums), isize>, )*
        }

        impl Sessions {
            /// New inputs in `scope`, and the sessions that feed them.
            pub fn new<'s>(scope: timely::dataflow::Scope<'s, Time>) -> (Sessions, Inputs<'s>) {
                use differential_dataflow::input::Input;
                $( let $name = scope.new_collection(); )*
                $( let $aname = scope.new_collection(); )*
                (
                    Sessions { $( $name: $name.0, )* $( $aname: $aname.0, )* },
                    Inputs { $( $name: $name.1, )* $( $aname: $aname.1, )* },
                )
            }

            /// Feeds the dataflow's part of `updates` at the current time and returns the
            /// index's part, which the caller publishes with this time's view rows.
            pub fn feed(&mut self, updates: Updates) -> IndexUpdates {
                $( for (d, r) in updates.$name { self.$name.update(d, r); } )*
                $( for (d, r) in updates.$aname { self.$aname.update(d, r); } )*
                IndexUpdates { $( $iname: updates.$iname, )* }
            }

            /// Closes every time before `t` and sends what is buffered.
            pub fn advance_to(&mut self, t: Time) {
                $( self.$name.advance_to(t); self.$name.flush(); )*
                $( self.$aname.advance_to(t); self.$aname.flush(); )*
            }

            /// Closes every input (a worker that does not feed must, or it holds the frontier).
            pub fn close(self) {
                $( self.$name.close(); )*
                $( self.$aname.close(); )*
            }
        }
    };
}

engine_inputs! {
    dataflow {
        /// `(order_id, order)` for every live (not cancelled) order.
        live_orders: (i64, LiveOrder),
        /// `(window size, visible_from)` per window size once retention applies: windows of
        /// that size starting before `visible_from` are retired (the windowed views drop them,
        /// see [`per_group`]). Advances as the highest order date seen does.
        cutoffs: (Window, Micros),
    }
    // Summed, not counted: a record `(key, sums)` with multiplicity d adds d × sums to the
    // key's totals, and a time's records are summed per key at the ingest, so a busy grain
    // (3,000 orders a minute in the e2e bench) enters the dataflow as one record per key
    // instead of one per order or line. Only summing operators (`top_n_by_sums`,
    // `sum_by_key`) may read them. Keys carry the order date at the windows' grain
    // (`facts::coarse`).
    additive {
        /// `((date, product, its current category), [quantity, revenue])` of the items of the
        /// live orders.
        sales: (SaleKey, [isize; 2]),
        /// `(date, [revenue, orders])` of the live orders.
        order_totals: (Micros, [isize; 2]),
        /// `((date, category), [quantity, revenue, orders])`: the items of the live orders by
        /// their product's current category, and each live order once per distinct current
        /// category of its products.
        category_totals: ((Micros, i64), [isize; 3]),
    }
    index {
        /// `(customer_id, product_id)` once per live order of the customer containing the
        /// product.
        purchases: (i64, i64),
        /// `(p, q)`, p != q, once per live order containing both whose basket is within the cap.
        co_purchases: (i64, i64),
        /// `(product_id, facts)`.
        products: (i64, ProductFacts),
        /// `(cart_id, interaction)`.
        carts: (i64, Interaction),
        /// `(wishlist_id, interaction)`.
        wishlists: (i64, Interaction),
        /// `(view_id, event)`.
        product_views: (i64, ViewEvent),
    }
}

/// Thresholds of the fraud rules (SPEC §4), all configurable from the CLI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FraudConfig {
    /// `high_value`: total_price strictly greater than this.
    pub high_value: Money,
    /// `frequent_orders`: strictly more than this many live orders in one tumbling window.
    pub frequent_orders: i64,
    /// The tumbling window of `frequent_orders` (µs).
    pub frequent_window: i64,
    /// `order_burst`: alert when the maximum in any closed interval is strictly more than this.
    pub burst_orders: i64,
    /// Length of the closed sliding interval of `order_burst` (µs).
    pub burst_interval: i64,
    /// `repeated_amount`: at least this many live orders with the same total...
    pub repeated_orders: i64,
    /// ...within a closed interval of this length (µs).
    pub repeated_interval: i64,
}

impl Default for FraudConfig {
    fn default() -> Self {
        FraudConfig {
            high_value: Money(1_000_000_000), // 10,000,000.00
            frequent_orders: 5,
            frequent_window: 60 * Micros::PER_SECOND,
            burst_orders: 5,
            burst_interval: 60 * Micros::PER_SECOND,
            repeated_orders: 3,
            repeated_interval: 600 * Micros::PER_SECOND,
        }
    }
}

/// Settings of the views.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewsConfig {
    /// Tumbling window sizes (`--windows`, default 1m,5m,1h), ascending.
    pub windows: Vec<Window>,
    /// Ranks of top_products and trending_products (`--top-n`, default 5).
    pub top_n: usize,
    pub fraud: FraudConfig,
    /// Ranks of also_bought and recommendations (default 10).
    pub also_bought_k: usize,
    /// Orders with more distinct products than this contribute no co-purchase pairs (the pair
    /// count grows with the square of the basket); counted in metrics.
    pub basket_cap: usize,
}

impl Default for ViewsConfig {
    fn default() -> Self {
        ViewsConfig {
            windows: vec![
                Window::Size(60 * Micros::PER_SECOND),
                Window::Size(300 * Micros::PER_SECOND),
                Window::Size(3600 * Micros::PER_SECOND),
            ],
            top_n: 5,
            fraud: FraudConfig::default(),
            also_bought_k: 10,
            basket_cap: 100,
        }
    }
}

/// The rows of every view the dataflow computes, as one collection (each row knows its view).
/// `also_bought` and `recommendations` are not among them: the store derives them from the
/// index updates ([`IndexUpdates`], see [`index`]) published with the same engine time.
pub fn build<'s>(inputs: &Inputs<'s>, cfg: &ViewsConfig) -> Coll<'s, ViewRow> {
    // top_products' rows are also the best sellers recommendations fill in with (read from
    // the store at read time)
    let top = top_products::build(inputs, cfg);

    let views = vec![
        top,
        trending::build(inputs, cfg),
        category_sales::build(inputs, cfg),
        fraud_alerts::build(&inputs.live_orders, &cfg.fraud),
    ];
    revenue::build(inputs, cfg).concatenate(views)
}
