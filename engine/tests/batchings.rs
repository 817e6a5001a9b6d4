//! The same events, batched differently and run on 1, 2 and 4 workers, must end in identical
//! views, equal to the oracle's: delivered as one transaction, as the generated transactions,
//! and as one transaction per change; handed to the engine one transaction at a time, and in
//! chunks as `engine replay` does.
//!
//! All runs happen once per test binary; each view's test reports its first difference.

mod common;
mod oracle;

use common::gen::{self, make_tx, GenConfig, MINUTE};
use common::{diff_rows, Setup};
use engine::views::ViewsConfig;
use sources::Transaction;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use view_store::ViewName;

fn batchings(txs: &[Transaction]) -> Vec<(&'static str, Vec<Transaction>)> {
    let all: Vec<_> = txs.iter().flat_map(|t| t.changes.clone()).collect();
    let one = vec![make_tx(Some(1), all.clone())];
    let singles = all.into_iter().map(|c| make_tx(None, vec![c])).collect();
    vec![
        ("as generated", txs.to_vec()),
        ("one transaction", one),
        ("one per change", singles),
    ]
}

#[derive(Default)]
struct Results {
    runs: usize,
    failures: BTreeMap<ViewName, String>,
}

fn run_all() -> Results {
    let mut res = Results::default();
    for (seed, retention) in [(7u64, None), (8, Some(10 * MINUTE)), (9, None)] {
        let gen_cfg = GenConfig {
            transactions: 120,
            ..GenConfig::default()
        };
        let txs = gen::stream(seed, &gen_cfg);
        let views = ViewsConfig::default();
        let want = oracle::views_after(&txs, &views, retention);
        for (how, batched) in batchings(&txs) {
            // Re-batching never changes what the oracle computes (it applies changes in order).
            assert_eq!(oracle::views_after(&batched, &views, retention), want);
            // handed over one transaction at a time, and (as generated) in chunks
            let chunkings: &[bool] = if how == "as generated" {
                &[false, true]
            } else {
                &[false]
            };
            for (workers, &chunked) in [1, 2, 4]
                .into_iter()
                .flat_map(|w| chunkings.iter().map(move |c| (w, c)))
            {
                res.runs += 1;
                let setup = Setup {
                    workers,
                    views: views.clone(),
                    retention,
                };
                let how = if chunked {
                    format!("{how}, in chunks")
                } else {
                    how.to_string()
                };
                let got = setup.engine_submitting(&batched, chunked);
                for view in ViewName::ALL {
                    if res.failures.contains_key(&view) {
                        continue;
                    }
                    if let Some(d) = diff_rows(view, &want[&view], &got[&view]) {
                        res.failures.insert(
                            view,
                            format!(
                                "seed {seed}, retention {retention:?}, delivered {how}, \
                                 {workers} workers:\n{d}"
                            ),
                        );
                    }
                }
            }
        }
    }
    res
}

fn results() -> &'static Results {
    static R: OnceLock<Results> = OnceLock::new();
    R.get_or_init(run_all)
}

fn check(view: ViewName) {
    let r = results();
    assert_eq!(r.runs, 36);
    if let Some(f) = r.failures.get(&view) {
        panic!("{} differs from the oracle: {f}", view.as_str());
    }
}

#[test]
fn revenue_same_under_any_batching() {
    check(ViewName::Revenue);
}

#[test]
fn top_products_same_under_any_batching() {
    check(ViewName::TopProducts);
}

#[test]
fn trending_products_same_under_any_batching() {
    check(ViewName::TrendingProducts);
}

#[test]
fn category_sales_same_under_any_batching() {
    check(ViewName::CategorySales);
}

#[test]
fn fraud_alerts_same_under_any_batching() {
    check(ViewName::FraudAlerts);
}

#[test]
fn also_bought_same_under_any_batching() {
    check(ViewName::AlsoBought);
}

#[test]
fn recommendations_same_under_any_batching() {
    check(ViewName::Recommendations);
}

/// A chunked submitter dropped without a flush still hands over what it holds.
#[test]
fn chunked_submitter_flushes_when_dropped() {
    let txs = gen::stream(
        3,
        &GenConfig {
            transactions: 10,
            ..GenConfig::default()
        },
    );
    let setup = Setup {
        workers: 1,
        views: ViewsConfig::default(),
        retention: None,
    };
    let eng = setup.start();
    {
        let mut sub = eng.submitter().chunked();
        for tx in &txs {
            sub.push(tx.clone()).expect("submit");
        }
    }
    assert_eq!(eng.sync().time, txs.len() as u64);
    assert_eq!(
        common::snapshot(&eng.store()),
        setup.engine(&txs),
        "same views as submitted one at a time"
    );
    eng.shutdown().expect("engine shuts down");
}
