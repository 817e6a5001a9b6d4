//! A small timely harness for the views' tests and benches: a table-level model of the
//! database ([`Db`]) projected into the [`Inputs`] facts the way the engine does (live orders,
//! their windows with retention states, items, products), input sessions that feed the
//! difference between two projections at one logical time, and [`run`], which drives a
//! sequence of database states through [`super::build`] with 1 or more workers (only worker 0
//! feeds) and returns the rows of every view after each state.
//!
//! Owns nothing the engine runs; it stands in for the engine's runtime in tests.

use super::{Coll, Inputs, Time, ViewsConfig};
use crate::facts::*;
use differential_dataflow::input::{Input, InputSession};
use sources::{Micros, Money};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use timely::dataflow::operators::probe::Handle as ProbeHandle;
use timely::dataflow::Scope;
use view_store::{ViewRow, Window};

/// An `orders` row, reduced to what the views see.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct DbOrder {
    pub date: Micros,
    pub total: Money,
    pub customer: Option<i64>,
    pub cancelled: bool,
}

impl DbOrder {
    /// A live order at `secs` seconds after the epoch, `total` in minor units.
    pub fn new(secs: i64, total: i64, customer: Option<i64>) -> Self {
        DbOrder {
            date: Micros(secs * Micros::PER_SECOND),
            total: Money(total),
            customer,
            cancelled: false,
        }
    }
}

/// The tables as the views' inputs are derived from them.
#[derive(Clone, Debug, Default)]
pub struct Db {
    pub orders: BTreeMap<i64, DbOrder>,
    pub items: BTreeMap<i64, Item>,
    pub products: BTreeMap<i64, ProductFacts>,
    /// Windows that are not Visible: `Some(PrevOnly)`, or `None` once retention dropped them.
    /// Every other window of a live order is Visible.
    pub retention: BTreeMap<(Window, Micros), Option<Retained>>,
}

impl Db {
    /// Adds an item (`order_item_id` = `id`).
    pub fn item(&mut self, id: i64, order: i64, product: i64, qty: i64, price: i64) {
        self.items.insert(
            id,
            Item {
                order_id: order,
                product_id: product,
                quantity: qty,
                price: Money(price),
            },
        );
    }

    /// Adds or updates a product with a category.
    pub fn product(&mut self, id: i64, category: Option<i64>) {
        self.products.insert(
            id,
            ProductFacts {
                category_id: category,
                active: true,
            },
        );
    }

    /// The view inputs for this state, as the engine projects them.
    pub fn facts(&self, windows: &[Window]) -> Facts {
        let mut f = Facts::default();
        for (&id, o) in self.orders.iter().filter(|(_, o)| !o.cancelled) {
            f.live_orders.insert((
                id,
                LiveOrder {
                    order_date: o.date,
                    total: o.total,
                    customer_id: o.customer,
                },
            ));
            for &window in windows {
                let Window::Size(size) = window else { continue };
                let start = o.date.window_start(size);
                let retained = match self.retention.get(&(window, start)) {
                    None => Some(Retained::Visible),
                    Some(r) => *r,
                };
                if let Some(retained) = retained {
                    f.order_windows.insert((
                        id,
                        OrderWindow {
                            window,
                            start,
                            retained,
                        },
                    ));
                }
            }
        }
        f.items = self.items.iter().map(|(&id, &it)| (id, it)).collect();
        f.products = self.products.iter().map(|(&id, &p)| (id, p)).collect();
        f
    }
}

/// The contents of the view inputs at one time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    pub live_orders: BTreeSet<(i64, LiveOrder)>,
    pub order_windows: BTreeSet<(i64, OrderWindow)>,
    pub items: BTreeSet<(i64, Item)>,
    pub products: BTreeSet<(i64, ProductFacts)>,
}

/// The input sessions behind an [`Inputs`].
pub struct Sessions {
    pub live_orders: InputSession<Time, (i64, LiveOrder), isize>,
    pub order_windows: InputSession<Time, (i64, OrderWindow), isize>,
    pub items: InputSession<Time, (i64, Item), isize>,
    pub products: InputSession<Time, (i64, ProductFacts), isize>,
    pub carts: InputSession<Time, (i64, Interaction), isize>,
    pub wishlists: InputSession<Time, (i64, Interaction), isize>,
    pub product_views: InputSession<Time, (i64, ViewEvent), isize>,
}

impl Sessions {
    /// New inputs in `scope`, and the sessions that feed them.
    pub fn new<'s>(scope: Scope<'s, Time>) -> (Sessions, Inputs<'s>) {
        let (live_orders, lo) = scope.new_collection();
        let (order_windows, ow) = scope.new_collection();
        let (items, it) = scope.new_collection();
        let (products, pr) = scope.new_collection();
        let (carts, ca) = scope.new_collection();
        let (wishlists, wi) = scope.new_collection();
        let (product_views, pv) = scope.new_collection();
        let sessions = Sessions {
            live_orders,
            order_windows,
            items,
            products,
            carts,
            wishlists,
            product_views,
        };
        let inputs = Inputs {
            live_orders: lo,
            order_windows: ow,
            items: it,
            products: pr,
            carts: ca,
            wishlists: wi,
            product_views: pv,
        };
        (sessions, inputs)
    }

    /// Feeds the change from `old` to `new` at the current time.
    pub fn apply(&mut self, old: &Facts, new: &Facts) {
        diff(&mut self.live_orders, &old.live_orders, &new.live_orders);
        diff(
            &mut self.order_windows,
            &old.order_windows,
            &new.order_windows,
        );
        diff(&mut self.items, &old.items, &new.items);
        diff(&mut self.products, &old.products, &new.products);
    }

    /// Closes every time before `t` and sends what is buffered.
    pub fn advance_to(&mut self, t: Time) {
        self.live_orders.advance_to(t);
        self.order_windows.advance_to(t);
        self.items.advance_to(t);
        self.products.advance_to(t);
        self.carts.advance_to(t);
        self.wishlists.advance_to(t);
        self.product_views.advance_to(t);
        self.live_orders.flush();
        self.order_windows.flush();
        self.items.flush();
        self.products.flush();
        self.carts.flush();
        self.wishlists.flush();
        self.product_views.flush();
    }
}

fn diff<D: differential_dataflow::Data>(
    s: &mut InputSession<Time, D, isize>,
    old: &BTreeSet<D>,
    new: &BTreeSet<D>,
) {
    for d in old.difference(new) {
        s.update(d.clone(), -1);
    }
    for d in new.difference(old) {
        s.update(d.clone(), 1);
    }
}

/// How a test builds the rows under test from the inputs.
pub type BuildFn = for<'s> fn(&Inputs<'s>, &ViewsConfig) -> Coll<'s, ViewRow>;

/// Runs `build` over `states` (state k is fed at time k + 1) with `workers` workers and returns
/// every view row present after each state. Panics if a row's multiplicity is not 0 or 1 at
/// any time, or if a time's rows are not consolidated to their net change.
pub fn run_with(
    cfg: &ViewsConfig,
    states: &[Db],
    workers: usize,
    build: BuildFn,
) -> Vec<BTreeSet<ViewRow>> {
    let facts: Arc<Vec<Facts>> = Arc::new(states.iter().map(|s| s.facts(&cfg.windows)).collect());
    let out: Arc<Mutex<Vec<(ViewRow, Time, isize)>>> = Arc::default();
    let cfg = cfg.clone();
    let sink = out.clone();
    let guards = timely::execute(timely::Config::process(workers), move |worker| {
        let probe = ProbeHandle::new();
        let sink = sink.clone();
        let mut sessions = worker.dataflow::<Time, _, _>(|scope| {
            let (sessions, inputs) = Sessions::new(scope);
            build(&inputs, &cfg)
                .inspect(move |(row, t, r)| {
                    sink.lock().unwrap().push((row.clone(), *t, *r));
                })
                .probe_with(&probe);
            sessions
        });
        if worker.index() != 0 {
            // only worker 0 feeds; the others' inputs must not hold the frontier back
            drop(sessions);
            return;
        }
        let mut prev = Facts::default();
        sessions.advance_to(1);
        for (k, f) in facts.iter().enumerate() {
            sessions.apply(&prev, f);
            prev = f.clone();
            let next = k as Time + 2;
            sessions.advance_to(next);
            worker.step_or_park_while(Some(Duration::from_millis(1)), || probe.less_than(&next));
        }
    })
    .expect("timely starts");
    for g in guards.join() {
        g.expect("worker ran");
    }

    let updates = out.lock().unwrap().clone();
    (0..states.len())
        .map(|k| {
            let mut acc: BTreeMap<ViewRow, isize> = BTreeMap::new();
            for (row, t, r) in &updates {
                if *t <= k as Time + 1 {
                    *acc.entry(row.clone()).or_default() += r;
                }
            }
            acc.into_iter()
                .filter(|(row, n)| {
                    assert!(*n == 0 || *n == 1, "row {row:?} has multiplicity {n}");
                    *n == 1
                })
                .map(|(row, _)| row)
                .collect()
        })
        .collect()
}

/// [`run_with`] the full [`super::build`], checked to give the same rows with 1 and 2 workers.
pub fn run(cfg: &ViewsConfig, states: &[Db]) -> Vec<BTreeSet<ViewRow>> {
    let one = run_with(cfg, states, 1, super::build);
    let two = run_with(cfg, states, 2, super::build);
    assert_eq!(one, two, "1 and 2 workers disagree");
    one
}

/// Rows of one view out of a state's rows, e.g. `rows_of(&s, |r| match r { ViewRow::Revenue(x) => Some(x.clone()), _ => None })`.
pub fn rows_of<T>(rows: &BTreeSet<ViewRow>, pick: impl Fn(&ViewRow) -> Option<T>) -> Vec<T> {
    rows.iter().filter_map(pick).collect()
}

/// A test configuration: one 1-minute window, top 2, default fraud thresholds.
pub fn test_config() -> ViewsConfig {
    ViewsConfig {
        windows: vec![MINUTE],
        top_n: 2,
        ..ViewsConfig::default()
    }
}

/// The 1-minute window.
pub const MINUTE: Window = Window::Size(60 * Micros::PER_SECOND);

/// `secs` seconds after the epoch.
pub fn at(secs: i64) -> Micros {
    Micros(secs * Micros::PER_SECOND)
}
