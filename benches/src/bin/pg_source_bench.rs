//! Postgres source figures: changes/s and commit → receive latency of the built-in logical
//! replication source (`sources::postgres`). Prints the figures; asserts nothing.
//!
//! `cargo run --release -p benches --bin pg_source_bench [ROWS] [TXS] [LATENCY_TXS]`
//! (defaults 200,000 rows in 2,000 transactions, 2,000 single-row transactions for latency)
//! against `BENCH_DATABASE_URL` or `TEST_DATABASE_URL` (default the local server); works in a
//! scratch database with its own slot, both dropped at the end.
//!
//! Phases:
//! 1. live: ROWS rows in TXS transactions written as fast as one connection can while the
//!    source streams — end-to-end changes/s (bounded by the writer too; both are printed).
//! 2. backlog: the source is stopped, ROWS rows in TXS transactions are written, the source is
//!    restarted and drains the slot — the source's own catch-up changes/s.
//! 3. latency: LATENCY_TXS single-row transactions, 1 ms apart; per transaction, the source's
//!    `received_at` minus the wall clock when the writer's COMMIT returned (can be slightly
//!    negative: the walsender may send before the client sees the commit acknowledged).

use anyhow::Context;
use datagen::db::Target;
use sources::postgres::{PostgresConfig, PostgresSource};
use sources::{channel, EngineIo, Micros};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

fn arg(i: usize, default: usize) -> anyhow::Result<usize> {
    match std::env::args().nth(i) {
        Some(s) => s
            .replace('_', "")
            .parse()
            .with_context(|| format!("argument {i}: not a count: {s}")),
        None => Ok(default),
    }
}

struct Running {
    handle: std::thread::JoinHandle<Result<(), sources::postgres::PgSourceError>>,
    engine: EngineIo,
}

fn start(cfg: &PostgresConfig) -> Running {
    let (io, engine) = channel(1024);
    let cfg = cfg.clone();
    let handle = std::thread::spawn(move || PostgresSource::new(cfg).run(io));
    Running { handle, engine }
}

impl Running {
    /// Receives (and acknowledges) until `changes` row changes arrived; returns the
    /// transactions' (first key, received_at, changes).
    fn receive(&self, changes: usize) -> anyhow::Result<Vec<(i64, Micros, usize)>> {
        let mut got = 0;
        let mut out = Vec::new();
        while got < changes {
            let tx = self
                .engine
                .input
                .recv_timeout(Duration::from_secs(120))
                .context("no transaction from the source within 120 s")?;
            got += tx.changes.len();
            let key = tx.changes.first().and_then(|c| c.key()).unwrap_or(-1);
            out.push((key, tx.received_at, tx.changes.len()));
            let _ = self.engine.applied.send(tx.position);
        }
        Ok(out)
    }

    fn stop(self) -> anyhow::Result<()> {
        self.engine.stop.store(true, Ordering::Relaxed);
        self.handle
            .join()
            .map_err(|_| anyhow::anyhow!("source thread panicked"))??;
        Ok(())
    }
}

fn main() -> anyhow::Result<()> {
    let rows = arg(1, 200_000)?;
    let txs = arg(2, 2_000)?.max(1);
    let lat_txs = arg(3, 2_000)?;
    let rows = rows / txs * txs;
    let base = std::env::var("BENCH_DATABASE_URL")
        .or_else(|_| std::env::var("TEST_DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".into());
    let scratch = format!("pg_source_bench_{}", std::process::id());
    let admin = Target::parse(&base)?;
    let target = admin.with_db(&scratch);
    let (prefix, _) = base
        .split('?')
        .next()
        .and_then(|b| b.rsplit_once('/'))
        .context("BENCH_DATABASE_URL must end with /dbname")?;
    let mut cfg = PostgresConfig::new(format!("{prefix}/{scratch}"));
    cfg.slot = scratch.clone();
    cfg.publication = format!("{scratch}_pub");

    let rt = tokio::runtime::Runtime::new()?;
    let result = (|| -> anyhow::Result<()> {
        let client = rt.block_on(async {
            datagen::db::init(&target, &cfg.publication).await?;
            let c = target.connect().await?;
            c.batch_execute("INSERT INTO categories (category_id, name) VALUES (1, 'bench')")
                .await?;
            anyhow::Ok(c)
        })?;
        let src = start(&cfg);
        // The snapshot carries the one category.
        src.receive(1)?;

        // 1. live
        let t = Instant::now();
        let writer = {
            let target = target.clone();
            std::thread::spawn(move || -> anyhow::Result<Duration> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(async {
                    let c = target.connect().await?;
                    let per = rows / txs;
                    let t = Instant::now();
                    for _ in 0..txs {
                        c.batch_execute(&format!(
                            "INSERT INTO product_views (category_id) \
                             SELECT 1 FROM generate_series(1, {per})"
                        ))
                        .await?;
                    }
                    anyhow::Ok(t.elapsed())
                })
            })
        };
        src.receive(rows)?;
        let live = t.elapsed();
        let wrote = writer
            .join()
            .map_err(|_| anyhow::anyhow!("writer panicked"))??;
        println!(
            "live:    {rows} changes in {txs} transactions received in {:.2} s = {:.0} changes/s \
             (writer alone: {:.2} s = {:.0} rows/s)",
            live.as_secs_f64(),
            rows as f64 / live.as_secs_f64(),
            wrote.as_secs_f64(),
            rows as f64 / wrote.as_secs_f64()
        );

        // 2. backlog
        src.stop()?;
        rt.block_on(async {
            let per = rows / txs;
            for _ in 0..txs {
                client
                    .batch_execute(&format!(
                        "INSERT INTO product_views (category_id) \
                         SELECT 1 FROM generate_series(1, {per})"
                    ))
                    .await?;
            }
            anyhow::Ok(())
        })?;
        let t = Instant::now();
        let src = start(&cfg);
        src.receive(rows)?;
        let drain = t.elapsed();
        println!(
            "backlog: {rows} changes in {txs} transactions drained in {:.2} s = {:.0} changes/s \
             (including reconnect and slot start)",
            drain.as_secs_f64(),
            rows as f64 / drain.as_secs_f64()
        );

        // 3. latency
        let writer = {
            let target = target.clone();
            std::thread::spawn(move || -> anyhow::Result<HashMap<i64, Micros>> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(async {
                    let c = target.connect().await?;
                    let mut committed = HashMap::new();
                    for _ in 0..lat_txs {
                        let row = c
                            .query_one(
                                "INSERT INTO product_views (category_id) VALUES (1) \
                                 RETURNING view_id",
                                &[],
                            )
                            .await?;
                        let id: i64 = row.get(0);
                        committed.insert(id, Micros::now());
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    anyhow::Ok(committed)
                })
            })
        };
        let got = src.receive(lat_txs)?;
        let committed = writer
            .join()
            .map_err(|_| anyhow::anyhow!("writer panicked"))??;
        let mut lat: Vec<i64> = got
            .iter()
            .filter_map(|(k, rx, _)| committed.get(k).map(|c| rx.0 - c.0))
            .collect();
        lat.sort_unstable();
        if !lat.is_empty() {
            let q = |p: f64| lat[((lat.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0;
            println!(
                "latency: {} single-row transactions, commit -> received: p50 {:.3} ms, \
                 p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
                lat.len(),
                q(0.5),
                q(0.9),
                q(0.99),
                q(1.0)
            );
        }
        src.stop()?;
        Ok(())
    })();

    // Clean up whatever happened: the slot pins WAL.
    rt.block_on(async {
        if let Ok(c) = admin.connect().await {
            let _ = c
                .batch_execute(&format!(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
                     WHERE slot_name = '{scratch}'"
                ))
                .await;
            let _ = c
                .batch_execute(&format!(
                    "DROP DATABASE IF EXISTS \"{scratch}\" WITH (FORCE)"
                ))
                .await;
        }
    });
    result
}
