//! The e2e pipeline's stages one after another on one thread, with a fixed batching, so each
//! stage's cost per event can be read without the other threads' noise (the e2e bench runs
//! them concurrently, where a thread's CPU time also depends on how often it waits). Prints
//! figures; asserts nothing about speed.
//!
//! ```text
//! cargo run --release -p benches --bin e2e -- --orders 1000000 --steady-secs 0   # writes the file
//! cargo run --release -p benches --bin stages -- [--file /tmp/shopstream-e2e.jsonl] [--batch 256] [--repeat 1]
//! ```
//! 1. parse: the file source reads and parses the file into transactions (its own thread,
//!    collected here; its CPU time is the thread's);
//! 2. ingest: upsert and projection ([`Ingest::apply_into`]), `--batch` transactions per engine
//!    time, the dataflow's inputs consolidated once per time as the runtime does;
//! 3. dataflow: every view on one timely worker, one time after another;
//! 4. store: each time's rows and index deltas applied to a [`ViewStore`]
//!    ([`engine::runtime::store_batch`], then `ViewStore::apply_indexed`).

use engine::ingest::Ingest;
use engine::views::testkit::Rig;
use engine::views::{self, Coll, IndexUpdates, Inputs, Updates, ViewsConfig};
use sources::Transaction;
use std::cell::RefCell;
use std::path::PathBuf;
use std::time::Instant;
use view_store::{AsOf, ViewRow, ViewStore};

struct Args {
    file: PathBuf,
    batch: usize,
    repeat: usize,
}

fn args() -> Args {
    let mut a = Args {
        file: std::env::temp_dir().join("shopstream-e2e.jsonl"),
        batch: 256,
        repeat: 1,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    for w in v.chunks(2) {
        let [flag, val] = w else { break };
        match flag.as_str() {
            "--file" => a.file = PathBuf::from(val),
            "--batch" => a.batch = val.parse().unwrap_or(a.batch).max(1),
            "--repeat" => a.repeat = val.parse().unwrap_or(a.repeat).max(1),
            _ => {}
        }
    }
    a
}

thread_local! {
    /// What the rig's worker (this thread) produced since the last time was taken.
    static OUT: RefCell<Vec<(ViewRow, isize)>> = RefCell::default();
}

fn collected<'s>(inputs: &Inputs<'s>, cfg: &ViewsConfig) -> Coll<'s, ViewRow> {
    views::build(inputs, cfg)
        .inspect(|(row, _, r)| OUT.with(|o| o.borrow_mut().push((row.clone(), *r))))
}

fn parse(a: &Args) -> anyhow::Result<(Vec<Transaction>, f64)> {
    let (io, eio) = sources::channel(4096);
    let file = a.file.clone();
    let reader = std::thread::spawn(move || {
        let r = sources::file::FileSource::new(file).run(io);
        (r, benches::stat_cpu_secs("/proc/thread-self/stat"))
    });
    let txs: Vec<Transaction> = eio.input.iter().collect();
    let (stats, cpu) = reader
        .join()
        .map_err(|_| anyhow::anyhow!("reader panicked"))?;
    stats?;
    Ok((txs, cpu))
}

fn main() -> anyhow::Result<()> {
    // as the engine binary does
    engine::alloc::tune();
    let a = args();
    if !a.file.exists() {
        anyhow::bail!(
            "{} does not exist: run the e2e bench first (it writes the file)",
            a.file.display()
        );
    }
    let cfg = ViewsConfig::default();
    let retention = engine::EngineConfig::default().retention;
    println!(
        "stages of {} ({} transactions per engine time), µs per event:",
        a.file.display(),
        a.batch
    );
    for _ in 0..a.repeat {
        let (txs, parse_cpu) = parse(&a)?;
        let events: usize = txs.iter().map(|t| t.changes.len()).sum();
        let per = |secs: f64| secs * 1e6 / events as f64;

        // ingest, consuming the transactions as the ingest thread does
        let t = Instant::now();
        let mut ingest = Ingest::new(&cfg.windows, retention, cfg.basket_cap);
        let mut batches: Vec<Updates> = Vec::new();
        let mut txs = txs.into_iter().peekable();
        // sized like the previous time's, as the ingest thread does
        let mut last_lens = Vec::new();
        while txs.peek().is_some() {
            let mut up = Updates::with_room(&last_lens);
            for tx in txs.by_ref().take(a.batch) {
                ingest.apply_into(&tx, &mut up);
            }
            last_lens = up.lens();
            up.consolidate_dataflow();
            batches.push(up);
        }
        let ingest_s = t.elapsed().as_secs_f64();
        let updates: usize = batches.iter().map(|u| u.len()).sum();

        // the dataflow, one time after another
        let t = Instant::now();
        let mut rig = Rig::new(&cfg, collected);
        OUT.with(|o| o.borrow_mut().clear());
        let mut outputs: Vec<(Vec<(ViewRow, isize)>, IndexUpdates)> = Vec::new();
        for up in batches {
            let mut index = None;
            rig.tick(|s| index = Some(s.feed(up)));
            let rows = OUT.with(|o| std::mem::take(&mut *o.borrow_mut()));
            outputs.push((rows, index.unwrap_or_default()));
        }
        let dataflow_s = t.elapsed().as_secs_f64();
        let times = outputs.len();

        // the store
        let t = Instant::now();
        let store = ViewStore::new();
        store.set_top_k(cfg.also_bought_k);
        let mut published = 0usize;
        let mut index_deltas = 0usize;
        for (time, (rows, index)) in (1u64..).zip(outputs) {
            let (batch, index) = engine::runtime::store_batch(
                rows,
                index,
                AsOf {
                    time,
                    ..AsOf::default()
                },
            );
            published += batch.changes.len();
            index_deltas += index.len();
            store.apply_indexed(batch, index);
        }
        let store_s = t.elapsed().as_secs_f64();
        drop(rig);
        println!(
            "  parse {:.3} | ingest {:.3} | dataflow {:.3} | store {:.3} | total {:.3}   ({events} events, {times} times, {updates} updates in, {published} view changes and {index_deltas} index deltas out)",
            per(parse_cpu),
            per(ingest_s),
            per(dataflow_s),
            per(store_s),
            per(parse_cpu + ingest_s + dataflow_s + store_s),
        );
    }
    Ok(())
}
