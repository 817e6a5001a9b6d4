//! datagen figures: bulk generation into Postgres, simulated actions per second against
//! Postgres, and in-memory behaviour-model steps per second (what the engine's embedded mode
//! runs). Prints the figures; asserts nothing.
//!
//! `cargo run --release -p benches --bin datagen_bench [CUSTOMERS] [PRODUCTS] [SESSIONS]`
//! (defaults 1,000,000 / 100,000 / 400) against `BENCH_DATABASE_URL` or `TEST_DATABASE_URL`
//! (default the local server); works in a scratch database that it drops at the end.

use anyhow::Context;
use datagen::db::Target;
use datagen::generate::GenerateConfig;
use datagen::model::{Shop, ShopConfig};
use datagen::simulate::SimConfig;
use std::time::Instant;

fn arg(i: usize, default: usize) -> anyhow::Result<usize> {
    match std::env::args().nth(i) {
        Some(s) => s
            .replace('_', "")
            .parse()
            .with_context(|| format!("argument {i}: not a count: {s}")),
        None => Ok(default),
    }
}

fn main() -> anyhow::Result<()> {
    let customers = arg(1, 1_000_000)?;
    let products = arg(2, 100_000)?;
    let sessions = arg(3, 400)?;
    let base = std::env::var("BENCH_DATABASE_URL")
        .or_else(|_| std::env::var("TEST_DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".into());
    let scratch = format!("datagen_bench_{}", std::process::id());
    let admin = Target::parse(&base)?;
    let target = admin.with_db(&scratch);

    model_figures(customers, products);

    let rt = tokio::runtime::Runtime::new()?;
    let result = rt.block_on(async {
        datagen::db::init(&target, datagen::DEFAULT_PUBLICATION).await?;
        let g = datagen::generate::generate(
            &target,
            &GenerateConfig {
                seed: 42,
                categories: 10,
                products,
                customers,
                progress: false,
            },
        )
        .await?;
        let rows = (customers + products) as f64;
        println!(
            "generate (Postgres COPY): {customers} customers + {products} products in {:.2} s \
             = {:.0} rows/s",
            g.elapsed.as_secs_f64(),
            rows / g.elapsed.as_secs_f64()
        );
        for concurrency in [1, 8] {
            let r = datagen::simulate::simulate(
                &target,
                &SimConfig {
                    sessions,
                    concurrency,
                    historical_days: Some(30),
                    seed: 42,
                    progress: false,
                    ..SimConfig::default()
                },
            )
            .await?;
            println!(
                "simulate --historical 30 (Postgres, no sleeps, concurrency {concurrency}): \
                 {} actions in {:.2} s = {:.0} actions/s (after {:.2} s loading the model's \
                 state)",
                r.total,
                (r.elapsed - r.load_elapsed).as_secs_f64(),
                r.per_second(),
                r.load_elapsed.as_secs_f64()
            );
        }
        anyhow::Ok(())
    });
    // Drop the scratch database whatever happened.
    rt.block_on(async {
        if let Ok(c) = admin.connect().await {
            let _ = c
                .batch_execute(&format!(
                    "DROP DATABASE IF EXISTS \"{scratch}\" WITH (FORCE)"
                ))
                .await;
        }
    });
    result
}

/// In-memory model: building the shop, its snapshot, and steps per second.
fn model_figures(customers: usize, products: usize) {
    let t = Instant::now();
    let mut shop = Shop::new(ShopConfig {
        seed: 42,
        categories: 10,
        products,
        customers,
    });
    let built = t.elapsed();
    let t = Instant::now();
    let load = shop.initial_load();
    let changes: usize = load.iter().map(|tx| tx.changes.len()).sum();
    let loaded = t.elapsed();
    drop(load);
    println!(
        "model: Shop::new {:.2} s, initial_load {changes} rows in {:.2} s = {:.0} rows/s",
        built.as_secs_f64(),
        loaded.as_secs_f64(),
        changes as f64 / loaded.as_secs_f64()
    );
    let steps = 1_000_000u64;
    let mut now = sources::Micros(1_764_000_000 * sources::Micros::PER_SECOND);
    let mut n_changes = 0usize;
    let t = Instant::now();
    for _ in 0..steps {
        now.0 += 1000;
        n_changes += shop.step(now).changes.len();
    }
    let e = t.elapsed().as_secs_f64();
    println!(
        "model: {steps} steps in {e:.2} s = {:.0} steps/s ({:.0} changes/s, {} orders open)",
        steps as f64 / e,
        n_changes as f64 / e,
        shop.open_orders()
    );
}
