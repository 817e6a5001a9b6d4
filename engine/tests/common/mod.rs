//! Helpers shared by the engine's integration tests: the random stream generator, running
//! the engine over a stream, a readable diff of view contents against the oracle, and a
//! shrinker that cuts a failing stream down to a small repro. Test-only; owns nothing of the
//! engine. Expects the including test crate to declare `mod oracle;`.
#![allow(dead_code)]

pub mod gen;

use crate::oracle;
use engine::views::ViewsConfig;
use engine::{Engine, EngineConfig};
use serde_json::Value;
use sources::Transaction;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use view_store::{ViewName, ViewRow, ViewStore};

pub type Views = BTreeMap<ViewName, Vec<ViewRow>>;

/// One engine configuration under test.
#[derive(Clone, Debug)]
pub struct Setup {
    pub workers: usize,
    pub views: ViewsConfig,
    pub retention: Option<i64>,
}

impl Setup {
    pub fn start(&self) -> Engine {
        let cfg = EngineConfig {
            workers: self.workers,
            views: self.views.clone(),
            retention: self.retention,
            ..Default::default()
        };
        Engine::start(cfg).expect("engine starts")
    }

    /// The oracle's views after `txs`.
    pub fn oracle(&self, txs: &[Transaction]) -> Views {
        oracle::views_after(txs, &self.views, self.retention)
    }

    /// Runs a fresh engine over `txs` and returns its final views.
    pub fn engine(&self, txs: &[Transaction]) -> Views {
        self.engine_submitting(txs, false)
    }

    /// [`Setup::engine`], handing the transactions over in chunks (`Submitter::chunked`, as
    /// `engine replay` does) when `chunked`, else one at a time.
    pub fn engine_submitting(&self, txs: &[Transaction], chunked: bool) -> Views {
        let eng = self.start();
        if chunked {
            let mut sub = eng.submitter().chunked();
            for tx in txs {
                sub.push(tx.clone()).expect("submit");
            }
            sub.flush().expect("submit");
        } else {
            for tx in txs {
                eng.submit(tx.clone()).expect("submit");
            }
        }
        let as_of = eng.sync();
        assert_eq!(
            as_of.time,
            txs.len() as u64,
            "sync() returned before every transaction was applied"
        );
        let v = snapshot(&eng.store());
        eng.shutdown().expect("engine shuts down");
        v
    }

    /// The diff of one view between a fresh engine and the oracle over `txs`.
    pub fn view_fails(&self, view: ViewName, txs: &[Transaction]) -> Option<String> {
        let got = self.engine(txs);
        let want = self.oracle(txs);
        diff_rows(view, &want[&view], &got[&view])
    }
}

/// Every view of a store.
pub fn snapshot(store: &ViewStore) -> Views {
    ViewName::ALL
        .iter()
        .map(|v| (*v, store.snapshot(*v).1))
        .collect()
}

fn key_text(r: &ViewRow) -> String {
    r.key().to_string()
}

/// The fields in which two rows (same view) differ: `field: expected X, engine Y`.
fn field_diff(want: &ViewRow, got: &ViewRow) -> String {
    let (w, g) = (want.to_json(), got.to_json());
    let mut parts = Vec::new();
    if let (Value::Object(w), Value::Object(g)) = (&w, &g) {
        for (k, wv) in w {
            let gv = g.get(k).unwrap_or(&Value::Null);
            if wv != gv {
                parts.push(format!("{k}: expected {wv}, engine {gv}"));
            }
        }
    }
    parts.join("; ")
}

/// A readable diff of one view: `None` when equal. Rows are paired by their key within the
/// view (`ViewRow::key`): changed rows show the differing fields, `-` rows are missing from
/// the engine, `+` rows are extra in the engine.
pub fn diff_rows(view: ViewName, want: &[ViewRow], got: &[ViewRow]) -> Option<String> {
    if want == got {
        return None;
    }
    let mut by_key: BTreeMap<String, (Vec<&ViewRow>, Vec<&ViewRow>)> = BTreeMap::new();
    for r in want {
        by_key.entry(key_text(r)).or_default().0.push(r);
    }
    for r in got {
        by_key.entry(key_text(r)).or_default().1.push(r);
    }
    let mut lines = Vec::new();
    for (key, (w, g)) in &by_key {
        if w == g {
            continue;
        }
        match (w.as_slice(), g.as_slice()) {
            ([a], [b]) => lines.push(format!(
                "  ~ {key}\n      {}\n      expected {}\n      engine   {}",
                field_diff(a, b),
                a.to_json(),
                b.to_json()
            )),
            _ => {
                for r in w.iter().filter(|r| !g.contains(r)) {
                    lines.push(format!("  - {}", r.to_json()));
                }
                for r in g.iter().filter(|r| !w.contains(r)) {
                    lines.push(format!("  + {}", r.to_json()));
                }
            }
        }
    }
    let total = lines.len();
    lines.truncate(40);
    if total > 40 {
        lines.push(format!("  ... and {} more", total - 40));
    }
    Some(format!(
        "view {}: oracle has {} rows, engine {} ({} differences; - missing in engine, + extra in engine)\n{}",
        view.as_str(),
        want.len(),
        got.len(),
        total,
        lines.join("\n")
    ))
}

/// Cuts a stream on which `view` fails down to a small one that still fails: first whole
/// transactions, then single changes, greedily (ddmin-style chunks), within `budget`.
pub fn shrink(
    setup: &Setup,
    view: ViewName,
    txs: Vec<Transaction>,
    budget: Duration,
) -> Vec<Transaction> {
    let deadline = Instant::now() + budget;
    let fails = |t: &[Transaction]| well_formed(t) && setup.view_fails(view, t).is_some();
    // Whole transactions.
    let mut cur = txs;
    let mut chunk = cur.len().div_ceil(2).max(1);
    while chunk >= 1 && Instant::now() < deadline {
        let mut i = 0;
        while i < cur.len() && Instant::now() < deadline {
            let mut cand = cur.clone();
            let end = (i + chunk).min(cand.len());
            cand.drain(i..end);
            if !cand.is_empty() && fails(&cand) {
                cur = cand;
            } else {
                i += chunk;
            }
        }
        if chunk == 1 {
            break;
        }
        chunk /= 2;
    }
    // Single changes inside the remaining transactions.
    let mut t = 0;
    while t < cur.len() && Instant::now() < deadline {
        let mut c = 0;
        while c < cur[t].changes.len() && Instant::now() < deadline {
            let mut cand = cur.clone();
            cand[t].changes.remove(c);
            if cand[t].changes.is_empty() {
                cand.remove(t);
            }
            if fails(&cand) {
                cur = cand;
                if t >= cur.len() {
                    break;
                }
            } else {
                c += 1;
            }
        }
        t += 1;
    }
    cur
}

/// Whether a (shrunk) stream stays within what the generator promises: every truncate is
/// either in LSN order with the changes of its table delivered before it, or an exact repeat
/// of a truncate delivered before. Dropping transactions can otherwise turn a redelivered
/// truncate into a late one, whose meaning the spec leaves open.
pub fn well_formed(txs: &[Transaction]) -> bool {
    use sources::{ChangeKind, Lsn, Table};
    let mut highest: BTreeMap<Table, Lsn> = BTreeMap::new();
    let mut truncates: Vec<(Table, Option<Lsn>)> = Vec::new();
    for c in txs.iter().flat_map(|t| &t.changes) {
        if matches!(c.kind, ChangeKind::Truncate) {
            let repeat = truncates.contains(&(c.table, c.lsn));
            let late = matches!((c.lsn, highest.get(&c.table)), (Some(l), Some(h)) if l < *h);
            if late && !repeat {
                return false;
            }
            truncates.push((c.table, c.lsn));
        }
        if let Some(l) = c.lsn {
            let h = highest.entry(c.table).or_insert(l);
            if l > *h {
                *h = l;
            }
        }
    }
    true
}

/// A repro: the transactions as JSON lines (serde form of `sources::Transaction`) and the diff.
pub fn repro(setup: &Setup, view: ViewName, txs: &[Transaction]) -> String {
    let mut s = format!(
        "minimal repro ({} transactions, workers {}, retention {:?}):\n",
        txs.len(),
        setup.workers,
        setup.retention
    );
    for tx in txs {
        s.push_str(&serde_json::to_string(tx).unwrap_or_default());
        s.push('\n');
    }
    s.push_str(
        &setup
            .view_fails(view, txs)
            .unwrap_or_else(|| "(no longer fails alone)".into()),
    );
    s
}
