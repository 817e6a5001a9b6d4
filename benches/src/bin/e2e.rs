//! End-to-end bench: a large generated file of Debezium events through parse → upsert → every
//! view, as `engine replay` runs it. Prints figures; asserts nothing about speed.
//!
//! ```text
//! cargo run --release -p benches --bin e2e -- [--orders 1000000] [--workers 1] [--rate 100000] [--steady-secs 10] [--idle-merge 1000] [--retention-mins M] [--relay 1]
//! ```
//! Phase 1 (throughput): the file source parses on its own thread while the engine computes;
//! events/s = events / wall time from first line to the last transaction visible in the store.
//! Phase 2 (latency; skipped with `--steady-secs 0`): transactions submitted at a steady `--rate`
//! events/s; latency = time from a transaction's arrival to its visibility in the view store
//! (p50/p99).
//! Memory: peak RSS (VmHWM), and RSS growth per live order after the load.
//! CPU: process CPU seconds (user + system) of phase 1, so events per CPU-second can be read
//! even when the machine is shared (wall time then says little).

use benches::stat_cpu_secs;
use engine::{Engine, EngineConfig};
use sources::{Micros, Transaction};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Args {
    orders: u64,
    workers: usize,
    rate: u64,
    steady_secs: u64,
    file: PathBuf,
    /// `EngineConfig::idle_merge_effort` (0 = none).
    idle_merge: isize,
    /// Retention in minutes of event time (`None`: keep every window).
    retention_mins: Option<i64>,
    /// Hand transactions over as before chunking: a channel from the reading thread to the
    /// main thread, which submits them one at a time (`--relay 1`).
    relay: bool,
}

fn args() -> Args {
    let mut a = Args {
        orders: 1_000_000,
        workers: 1,
        rate: 100_000,
        steady_secs: 10,
        file: std::env::temp_dir().join("shopstream-e2e.jsonl"),
        idle_merge: EngineConfig::default().idle_merge_effort.unwrap_or(0),
        retention_mins: None,
        relay: false,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i + 1 < v.len() {
        let val = &v[i + 1];
        match v[i].as_str() {
            "--orders" => a.orders = val.parse().unwrap_or(a.orders),
            "--workers" => a.workers = val.parse().unwrap_or(a.workers),
            "--rate" => a.rate = val.parse().unwrap_or(a.rate),
            "--steady-secs" => a.steady_secs = val.parse().unwrap_or(a.steady_secs),
            "--file" => a.file = PathBuf::from(val),
            "--idle-merge" => a.idle_merge = val.parse().unwrap_or(a.idle_merge),
            "--retention-mins" => a.retention_mins = val.parse().ok(),
            "--relay" => a.relay = val == "1" || val == "true",
            _ => {}
        }
        i += 2;
    }
    a
}

/// A tiny deterministic generator (xorshift), so the file is the same on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn money(minor: u64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

fn iso(us: i64) -> String {
    Micros(us).to_string()
}

/// Writes `orders` orders, each one transaction (order + 1–4 items, schemaless Debezium
/// payloads with txId and LSN), 30% later confirmed (an update no view needs), 5% cancelled,
/// 2% deleted with their items; products (2,000 in 20 categories) first. Returns events written.
fn generate(path: &Path, orders: u64) -> anyhow::Result<u64> {
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut rng = Rng(0x9E3779B97F4A7C15);
    let mut lsn: u64 = 1_000;
    let mut tx: u64 = 500;
    let mut events = 0u64;
    let products = 2_000u64;
    let t0: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z
    for p in 1..=products {
        lsn += 1;
        writeln!(
            out,
            r#"{{"before":null,"after":{{"product_id":{p},"sku":"SKU-{p}","name":"Product {p}","description":null,"price":"{}","stock":50,"category_id":{},"is_active":true,"created_at":"{}","updated_at":null}},"source":{{"version":"2.7.0.Final","connector":"postgresql","name":"ecommerce-cdc","ts_ms":0,"snapshot":"true","db":"shop","schema":"public","table":"products","txId":{tx},"lsn":{lsn}}},"op":"r","ts_ms":0}}"#,
            money(10_000 + rng.below(5_000_000)),
            1 + p % 20,
            iso(t0)
        )?;
        events += 1;
    }
    let mut item_id = 0u64;
    let mut pending: Vec<(u64, Vec<u64>, i64, u64, u64, u64)> = Vec::new(); // order, items, date, total, customer, kind
    for o in 1..=orders {
        tx += 1;
        let date = t0 + (o as i64) * 20_000; // 50 orders per second of event time
        let customer = 1 + rng.below(100_000);
        let n_items = 1 + rng.below(4);
        let mut total = 0u64;
        let mut lines = Vec::new();
        let mut ids = Vec::new();
        for _ in 0..n_items {
            item_id += 1;
            let product = 1 + (rng.below(products) * rng.below(products)) / products; // skewed
            let qty = 1 + rng.below(3);
            let price = 10_000 + rng.below(2_000_000);
            total += qty * price;
            lsn += 1;
            lines.push(format!(r#"{{"before":null,"after":{{"order_item_id":{item_id},"order_id":{o},"product_id":{product},"quantity":{qty},"price":"{}"}},"source":{{"version":"2.7.0.Final","connector":"postgresql","name":"ecommerce-cdc","ts_ms":0,"snapshot":"false","db":"shop","schema":"public","table":"order_items","txId":{tx},"lsn":{lsn}}},"op":"c","ts_ms":0}}"#, money(price)));
            ids.push(item_id);
        }
        lsn += 1;
        writeln!(
            out,
            r#"{{"before":null,"after":{{"order_id":{o},"order_date":"{}","total_price":"{}","status":"pending","customer_id":{customer},"payment_id":null,"shipment_id":null}},"source":{{"version":"2.7.0.Final","connector":"postgresql","name":"ecommerce-cdc","ts_ms":0,"snapshot":"false","db":"shop","schema":"public","table":"orders","txId":{tx},"lsn":{lsn}}},"op":"c","ts_ms":0}}"#,
            iso(date),
            money(total)
        )?;
        events += 1;
        for l in lines {
            writeln!(out, "{l}")?;
            events += 1;
        }
        let r = rng.below(100);
        let kind = if r < 2 {
            3
        } else if r < 7 {
            2
        } else if r < 37 {
            1
        } else {
            0
        };
        if kind > 0 {
            pending.push((o, ids, date, total, customer, kind));
        }
        // Follow-ups arrive a little later, in their own transactions.
        if pending.len() > 64 {
            for (o, ids, date, total, customer, kind) in pending.drain(..) {
                tx += 1;
                lsn += 1;
                if kind == 3 {
                    writeln!(
                        out,
                        r#"{{"before":{{"order_id":{o}}},"after":null,"source":{{"version":"2.7.0.Final","connector":"postgresql","name":"ecommerce-cdc","ts_ms":0,"snapshot":"false","db":"shop","schema":"public","table":"orders","txId":{tx},"lsn":{lsn}}},"op":"d","ts_ms":0}}"#
                    )?;
                    events += 1;
                    for i in ids {
                        lsn += 1;
                        writeln!(
                            out,
                            r#"{{"before":{{"order_item_id":{i}}},"after":null,"source":{{"version":"2.7.0.Final","connector":"postgresql","name":"ecommerce-cdc","ts_ms":0,"snapshot":"false","db":"shop","schema":"public","table":"order_items","txId":{tx},"lsn":{lsn}}},"op":"d","ts_ms":0}}"#
                        )?;
                        events += 1;
                    }
                } else {
                    let status = if kind == 2 { "cancelled" } else { "confirmed" };
                    writeln!(
                        out,
                        r#"{{"before":null,"after":{{"order_id":{o},"order_date":"{}","total_price":"{}","status":"{status}","customer_id":{customer},"payment_id":null,"shipment_id":null}},"source":{{"version":"2.7.0.Final","connector":"postgresql","name":"ecommerce-cdc","ts_ms":0,"snapshot":"false","db":"shop","schema":"public","table":"orders","txId":{tx},"lsn":{lsn}}},"op":"u","ts_ms":0}}"#,
                        iso(date),
                        money(total)
                    )?;
                    events += 1;
                }
            }
        }
    }
    out.flush()?;
    Ok(events)
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// Returns the heap's free pages to the OS (glibc `malloc_trim`), so RSS shows live state.
fn trim_heap() {
    extern "C" {
        fn malloc_trim(pad: usize) -> i32;
    }
    // SAFETY: malloc_trim only releases free memory of glibc's allocator, which this binary
    // uses (no custom global allocator); it takes no pointers and is thread-safe.
    unsafe {
        malloc_trim(0);
    }
}

/// Bytes in live allocations (glibc `mallinfo2`, all arenas: chunks in use plus mmapped
/// ones). Unlike RSS it does not count what fragmentation keeps resident, which made the RSS
/// figure per order vary by ±10 % between identical runs.
fn heap_in_use() -> u64 {
    #[repr(C)]
    struct Mallinfo2 {
        arena: usize,
        ordblks: usize,
        smblks: usize,
        hblks: usize,
        hblkhd: usize,
        usmblks: usize,
        fsmblks: usize,
        uordblks: usize,
        fordblks: usize,
        keepcost: usize,
    }
    extern "C" {
        fn mallinfo2() -> Mallinfo2;
    }
    // SAFETY: mallinfo2 only reads glibc's allocator statistics (this binary uses glibc's
    // allocator) and returns them by value; it takes no pointers.
    let m = unsafe { mallinfo2() };
    (m.uordblks + m.hblkhd) as u64
}

/// CPU seconds (user + system) this process used so far, from /proc/self/stat.
fn cpu_secs() -> f64 {
    stat_cpu_secs("/proc/self/stat")
}

/// CPU seconds of every live thread of this process, by thread name.
fn threads_cpu() -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for task in dir.flatten() {
        let path = task.path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let secs = stat_cpu_secs(path.join("stat"));
        match out.iter_mut().find(|(n, _)| n == name.trim()) {
            Some((_, s)) => *s += secs,
            None => out.push((name.trim().to_string(), secs)),
        }
    }
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() -> anyhow::Result<()> {
    // as the engine binary does
    engine::alloc::tune();
    let a = args();
    let marker = a.file.with_extension(format!("{}.events", a.orders));
    let events = match std::fs::read_to_string(&marker)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
    {
        Some(n) if a.file.exists() => n,
        _ => {
            let t = Instant::now();
            let n = generate(&a.file, a.orders)?;
            std::fs::write(&marker, n.to_string())?;
            eprintln!(
                "generated {} events ({} MB) in {:.1?}",
                n,
                std::fs::metadata(&a.file)?.len() >> 20,
                t.elapsed()
            );
            n
        }
    };
    let bytes = std::fs::metadata(&a.file)?.len();
    let rss_before = rss_kib("VmRSS:");
    let heap_before = heap_in_use();

    // Phase 1: throughput, parse and compute pipelined.
    let cfg = EngineConfig {
        workers: a.workers,
        retention: a.retention_mins.map(|m| m * 60 * 1_000_000),
        idle_merge_effort: Some(a.idle_merge).filter(|&e| e > 0),
        ..EngineConfig::default()
    };
    let engine = Engine::start(cfg.clone())?;
    let file = a.file.clone();
    let t = Instant::now();
    let cpu0 = cpu_secs();
    let (stats, reader_cpu) = if a.relay {
        // the older hand-over: a channel to this thread, which submits one at a time
        let (io, eio) = sources::channel(256);
        let reader = std::thread::Builder::new()
            .name("reader".into())
            .spawn(move || {
                let r = sources::file::FileSource::new(file).run(io);
                (r, stat_cpu_secs("/proc/thread-self/stat"))
            })?;
        let sub = engine.submitter();
        for tx in eio.input.iter() {
            sub.submit(tx)?;
        }
        let (r, cpu) = reader
            .join()
            .map_err(|_| anyhow::anyhow!("reader panicked"))?;
        (r.map_err(anyhow::Error::from), cpu)
    } else {
        // as `engine replay` does: the reading thread submits, in chunks
        let sub = engine.submitter();
        let reader = std::thread::Builder::new()
            .name("reader".into())
            .spawn(move || {
                let r = sub.submit_file(sources::file::FileSource::new(file));
                (r, stat_cpu_secs("/proc/thread-self/stat"))
            })?;
        reader
            .join()
            .map_err(|_| anyhow::anyhow!("reader panicked"))?
    };
    let stats = stats?;
    let txs = stats.transactions;
    let as_of = engine.sync();
    let secs = t.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu0;
    let mut per_thread = threads_cpu();
    per_thread.push(("reader".into(), reader_cpu));
    let rss_loaded = rss_kib("VmRSS:");
    // RSS keeps what the allocator freed but did not give back (transient batches and merges):
    // hand free pages back first, so the per-order figure is the state the engine holds
    trim_heap();
    let rss_after = rss_kib("VmRSS:");
    println!(
        "e2e throughput: {events} events ({} MB), {txs} transactions, {} dead letters, workers {}",
        bytes >> 20,
        stats.dead_letters,
        a.workers
    );
    println!(
        "  wall {:.2} s → {:.0} events/s, {:.1} MB/s (parse ∥ upsert ∥ dataflow), as_of time {}",
        secs,
        events as f64 / secs,
        bytes as f64 / secs / 1e6,
        as_of.time
    );
    println!(
        "  CPU {:.2} s (all threads) → {:.0} events per CPU-second",
        cpu,
        events as f64 / cpu.max(0.01)
    );
    // with `--relay 1`, the main thread ("e2e") hands the reader's transactions over
    let split: Vec<String> = per_thread
        .iter()
        .filter(|(_, s)| *s >= 0.01)
        .map(|(n, s)| format!("{n} {s:.2} s ({:.2} µs/event)", s * 1e6 / events as f64))
        .collect();
    println!("  CPU by thread: {}", split.join(", "));
    let live = (a.orders as f64 * 0.93) as u64; // 5% cancelled + 2% deleted by construction
    println!("  RSS before {} MB, after load {} MB ({} MB after returning free pages), peak {} MB; ≈ {:.0} B of engine state per live order (all views, retention {}; {:.0} B before returning free pages)",
        rss_before >> 10, rss_loaded >> 10, rss_after >> 10, rss_kib("VmHWM:") >> 10,
        (rss_after.saturating_sub(rss_before) * 1024) as f64 / live as f64,
        a.retention_mins.map_or("none".to_string(), |m| format!("{m} min")),
        (rss_loaded.saturating_sub(rss_before) * 1024) as f64 / live as f64);
    let heap = heap_in_use().saturating_sub(heap_before);
    println!(
        "  heap in use after load {} MB ≈ {:.0} B per live order (live allocations, mallinfo2)",
        heap >> 20,
        heap as f64 / live as f64
    );
    let c = engine.counters();
    let load = |n: &std::sync::atomic::AtomicU64| n.load(std::sync::atomic::Ordering::Relaxed);
    let (updates, published) = (load(&c.updates_out), load(&c.rows_published));
    println!(
        "  {updates} updates in (dataflow inputs and index deltas, {:.2} per event), {published} view changes published ({:.2} per event)",
        updates as f64 / events as f64,
        published as f64 / events as f64
    );
    let times = load(&c.times_published);
    println!(
        "  {times} engine times ({:.1} transactions per time), applied to the store in {}",
        txs as f64 / times.max(1) as f64,
        load(&c.store_applications)
    );
    for (v, n) in engine.store().sizes() {
        println!("  view {:<18} {n} rows", v.as_str());
    }
    engine.shutdown()?;
    if a.steady_secs == 0 {
        return Ok(());
    }

    // Phase 2: latency at a steady rate, on a fresh engine warmed with the same history.
    let lat = Arc::new(Mutex::new(Vec::<u64>::new()));
    let lat_w = lat.clone();
    let on_publish: engine::runtime::OnPublish = Arc::new(move |_, received_at, _| {
        if received_at.0 > 0 {
            let l = (Micros::now().0 - received_at.0).max(0) as u64;
            if let Ok(mut v) = lat_w.lock() {
                v.push(l);
            }
        }
    });
    let engine = Engine::start_with(cfg, view_store::ViewStore::new(), Some(on_publish))?;
    let (txs, _) = sources::file::read_file(&a.file)?;
    let warm = txs.len() / 2;
    let mut it = txs.into_iter();
    for tx in it.by_ref().take(warm) {
        engine.submit(tx)?;
    }
    engine.sync();
    lat.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clear();
    let steady: Vec<Transaction> = it.collect();
    let start = Instant::now();
    let mut sent_events = 0u64;
    let deadline = Duration::from_secs(a.steady_secs);
    for mut tx in steady {
        let due = Duration::from_secs_f64(sent_events as f64 / a.rate as f64);
        let now = start.elapsed();
        if now >= deadline {
            break;
        }
        if due > now {
            std::thread::sleep(due - now);
        }
        sent_events += tx.changes.len() as u64;
        tx.received_at = Micros::now();
        engine.submit(tx)?;
    }
    engine.sync();
    let achieved = sent_events as f64 / start.elapsed().as_secs_f64();
    let mut l = lat.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone();
    l.sort_unstable();
    println!("e2e latency at a steady {} events/s target ({:.0} achieved, {} publications): arrival → visible p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        a.rate, achieved, l.len(),
        percentile(&l, 0.5) as f64 / 1000.0, percentile(&l, 0.99) as f64 / 1000.0,
        l.last().copied().unwrap_or(0) as f64 / 1000.0);
    engine.shutdown()?;
    Ok(())
}
