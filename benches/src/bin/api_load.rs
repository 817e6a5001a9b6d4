//! HTTP load bench for the API: requests/s and latency percentiles of
//! `GET /views/top-products?window=all&metric=revenue` with N concurrent keep-alive clients
//! while the view store changes underneath.
//!
//! `cargo run --release -p benches --bin api_load -- [--clients 64] [--seconds 10]
//!  [--path /views/top-products?window=all&metric=revenue] [--writes-per-sec 1000] [--engine 1]`
//!
//! With `--engine 1` the real engine (every view) ingests datagen's shopper model at
//! `--writes-per-sec` transactions/s and publishes into the store the API serves; without it a
//! writer thread applies synthetic top-products batches at that rate (isolates the HTTP path).

use anyhow::{bail, Context, Result};
use sources::{Lsn, Micros, Money};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use view_store::status::EngineStatus;
use view_store::*;

struct Args {
    clients: usize,
    seconds: u64,
    path: String,
    writes_per_sec: u64,
    engine: bool,
}

fn args() -> Result<Args> {
    let mut a = Args {
        clients: 64,
        seconds: 10,
        path: "/views/top-products?window=all&metric=revenue".into(),
        writes_per_sec: 1000,
        engine: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().with_context(|| format!("{k} needs a value"))?;
        match k.as_str() {
            "--clients" => a.clients = v.parse()?,
            "--seconds" => a.seconds = v.parse()?,
            "--path" => a.path = v,
            "--writes-per-sec" => a.writes_per_sec = v.parse()?,
            "--engine" => a.engine = v == "1" || v == "true",
            _ => bail!("unknown flag {k}"),
        }
    }
    Ok(a)
}

const M1: i64 = 60_000_000;
const CATEGORIES: i64 = 10;
const WINDOWS: i64 = 60;

fn top(
    window: Window,
    start: Option<i64>,
    cat: Option<i64>,
    metric: Metric,
    rank: u32,
    p: i64,
    q: i64,
) -> ViewRow {
    ViewRow::TopProduct(TopProductRow {
        window,
        window_start: start.map(Micros),
        category_id: cat,
        metric,
        rank,
        product_id: p,
        quantity: q,
        revenue: Money(q * 1_234_567),
    })
}

/// A realistic top_products view: `all` plus 60 one-minute windows, global + 10 categories,
/// both metrics, top 5.
fn initial_rows() -> Vec<ViewRow> {
    let mut rows = Vec::new();
    let scopes: Vec<Option<i64>> = std::iter::once(None)
        .chain((1..=CATEGORIES).map(Some))
        .collect();
    for w in std::iter::once(None).chain((0..WINDOWS).map(Some)) {
        for &cat in &scopes {
            for metric in [Metric::Quantity, Metric::Revenue] {
                for rank in 1..=5u32 {
                    let (window, start) = match w {
                        None => (Window::All, None),
                        Some(i) => (Window::Size(M1), Some(1_764_064_800_000_000 + i * M1)),
                    };
                    rows.push(top(
                        window,
                        start,
                        cat,
                        metric,
                        rank,
                        100 + rank as i64,
                        100 - rank as i64,
                    ));
                }
            }
        }
    }
    rows
}

/// One keep-alive HTTP/1.1 connection doing GETs; returns latencies in µs and errors.
fn client(
    addr: SocketAddr,
    path: &str,
    stop: &AtomicBool,
    measure: &AtomicBool,
) -> Result<(Vec<u32>, u64)> {
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let mut w = stream.try_clone()?;
    let mut r = BufReader::new(stream);
    let req = format!("GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: keep-alive\r\n\r\n");
    let mut lat = Vec::with_capacity(1 << 16);
    let mut errors = 0;
    let mut line = String::new();
    let mut body = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let t0 = Instant::now();
        w.write_all(req.as_bytes())?;
        line.clear();
        r.read_line(&mut line)?;
        let ok = line.starts_with("HTTP/1.1 200");
        let mut len = 0usize;
        loop {
            line.clear();
            r.read_line(&mut line)?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse()?;
                }
            }
        }
        body.resize(len, 0);
        r.read_exact(&mut body)?;
        let us = t0.elapsed().as_micros() as u32;
        if measure.load(Ordering::Relaxed) {
            if ok {
                lat.push(us);
            } else {
                errors += 1;
            }
        }
    }
    Ok((lat, errors))
}

/// Sleeps until the next tick of a steady rate; a writer that fell behind does not burst.
fn pace(next: &mut Instant, period: Duration) {
    *next += period;
    let now = Instant::now();
    if *next > now {
        std::thread::sleep(*next - now);
    } else {
        *next = now;
    }
}

fn main() -> Result<()> {
    let a = args()?;
    let store = ViewStore::new();
    let status = EngineStatus::new("api_load bench");
    status.set_connected(true);
    let rows = if a.engine { Vec::new() } else { initial_rows() };
    let n_rows = rows.len();
    store.apply(ChangeBatch {
        as_of: AsOf {
            time: 1,
            lsn: Some(Lsn(1)),
            published_at: None,
        },
        changes: rows.into_iter().map(|r| (r, 1)).collect(),
    });
    let cfg = api::ApiConfig {
        listen: "127.0.0.1:0".parse()?,
        ..Default::default()
    };
    let workers = cfg.workers;
    let handle = api::spawn(cfg, store.clone(), status)?;
    let addr = handle.addr;

    let stop = Arc::new(AtomicBool::new(false));
    let measure = Arc::new(AtomicBool::new(false));
    let applied = Arc::new(AtomicU64::new(0));

    let engine = if a.engine {
        Some(engine::Engine::start_with(
            engine::EngineConfig::default(),
            store.clone(),
            None,
        )?)
    } else {
        None
    };
    let writer = if let Some(engine) = &engine {
        // The real engine, fed by the shopper model: initial load, then steady transactions.
        let (sub, stop, measure, applied) = (
            engine.submitter(),
            stop.clone(),
            measure.clone(),
            applied.clone(),
        );
        let period = Duration::from_secs_f64(1.0 / a.writes_per_sec.max(1) as f64);
        let mut shop = datagen::model::Shop::new(datagen::model::ShopConfig {
            seed: 7,
            categories: 10,
            products: 2_000,
            customers: 20_000,
        });
        for tx in shop.initial_load() {
            sub.submit(tx)?;
        }
        engine.sync();
        std::thread::spawn(move || {
            let mut next = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let now = Micros::now();
                let mut tx = shop.step(now);
                tx.received_at = now;
                if sub.submit(tx).is_err() {
                    break;
                }
                if measure.load(Ordering::Relaxed) {
                    applied.fetch_add(1, Ordering::Relaxed);
                }
                pace(&mut next, period);
            }
        })
    } else {
        // The writer: changes the `all`/global/revenue ranking (the rows being read) at a steady rate.

        let (store, stop, measure, applied) = (
            store.clone(),
            stop.clone(),
            measure.clone(),
            applied.clone(),
        );
        let period = Duration::from_secs_f64(1.0 / a.writes_per_sec.max(1) as f64);
        std::thread::spawn(move || {
            let mut time = 1u64;
            let mut q = 100i64;
            let mut next = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                time += 1;
                let old: Vec<ViewRow> = (1..=5u32)
                    .map(|r| {
                        top(
                            Window::All,
                            None,
                            None,
                            Metric::Revenue,
                            r,
                            100 + r as i64,
                            q - r as i64,
                        )
                    })
                    .collect();
                q += 1;
                let mut changes: Vec<(ViewRow, i64)> = old.into_iter().map(|r| (r, -1)).collect();
                changes.extend((1..=5u32).map(|r| {
                    (
                        top(
                            Window::All,
                            None,
                            None,
                            Metric::Revenue,
                            r,
                            100 + r as i64,
                            q - r as i64,
                        ),
                        1,
                    )
                }));
                store.apply(ChangeBatch {
                    as_of: AsOf {
                        time,
                        lsn: Some(Lsn(time)),
                        published_at: None,
                    },
                    changes,
                });
                if measure.load(Ordering::Relaxed) {
                    applied.fetch_add(1, Ordering::Relaxed);
                }
                pace(&mut next, period);
            }
        })
    };

    let clients: Vec<_> = (0..a.clients)
        .map(|_| {
            let (stop, measure, path) = (stop.clone(), measure.clone(), a.path.clone());
            std::thread::spawn(move || client(addr, &path, &stop, &measure))
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1)); // warm-up
    measure.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(a.seconds));
    measure.store(false, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);

    let mut lat = Vec::new();
    let mut errors = 0;
    for c in clients {
        match c.join() {
            Ok(Ok((l, e))) => {
                lat.extend(l);
                errors += e;
            }
            Ok(Err(e)) => bail!("client failed: {e}"),
            Err(_) => bail!("client panicked"),
        }
    }
    let _ = writer.join();
    let as_of = store.as_of();
    if let Some(engine) = engine {
        engine.shutdown()?;
    }
    handle.stop();
    lat.sort_unstable();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] as f64 / 1000.0
    };
    let body_rows = store.read(ViewName::TopProducts, |_, m| m.len());
    println!(
        "api_load: GET {} with {} keep-alive clients, {} HTTP workers, for {:.1} s",
        a.path, a.clients, workers, elapsed
    );
    println!(
        "  view rows: {} (store), {}: {:.0} {} during the run (as_of time {})",
        body_rows.max(n_rows),
        if a.engine {
            "engine (all views)"
        } else {
            "writer"
        },
        applied.load(Ordering::Relaxed) as f64 / elapsed,
        if a.engine {
            "transactions/s submitted"
        } else {
            "batches/s applied"
        },
        as_of.time
    );
    println!(
        "  requests: {} ok, {} errors, {:.0} req/s",
        lat.len(),
        errors,
        lat.len() as f64 / elapsed
    );
    println!(
        "  latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(0.999),
        pct(1.0)
    );
    Ok(())
}
