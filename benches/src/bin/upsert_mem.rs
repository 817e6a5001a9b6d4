//! Memory of the engine's upsert state per stored row: loads N `orders` and M `order_items`
//! rows through `UpsertState::apply` (the call the ingest path makes per change) and prints,
//! per table, the bytes per row measured two ways:
//! * RSS: growth of the process resident set (`/proc/self/statm`) while loading that table;
//! * heap: growth of the live heap bytes counted by a wrapping global allocator (exact, no
//!   allocator slack or page rounding), and the peak during the load (a hash table's resize
//!   briefly holds the old and the new table).
//!
//! ```text
//! cargo run --release -p benches --bin upsert_mem -- [--orders 1000000] [--items 2000000] [--stride 1]
//! ```
//! `--orders 0` or `--items 0` skips a table. `--stride K` spaces the primary keys K apart (the
//! upsert map pages keys in runs of 64, so sparse keys cost more per row). Changes are made one at a time and dropped after
//! being applied, so only the upsert state stays allocated. The rows: sequential primary keys
//! (as serial columns give), every tenth order cancelled, two items per order.

use anyhow::{bail, Context};
use engine::upsert::UpsertState;
use sources::{Change, ChangeKind, Lsn, Micros, Money, Op, Order, OrderItem, OrderStatus, Row};
use sources::{Table, Unavailable};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// The system allocator, counting live and peak heap bytes.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    let live = LIVE.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to `System`; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn rss_bytes() -> anyhow::Result<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").context("reading /proc/self/statm")?;
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .context("statm has no resident field")?
        .parse()
        .context("statm resident field")?;
    // 4 KiB pages on every Linux this runs on (x86-64, aarch64 with 4K pages).
    Ok(pages * 4096)
}

fn order(i: i64, stride: i64) -> Change {
    Change {
        table: Table::Orders,
        op: Op::Create,
        lsn: Some(Lsn(1_000_000 + i as u64 * 16)),
        kind: ChangeKind::Upsert {
            row: Row::Order(Order {
                order_id: i * stride,
                order_date: Micros(1_700_000_000_000_000 + i * 60_000_000),
                total_price: Money(1_000 + (i * 7919) % 100_000),
                status: if i % 10 == 0 {
                    OrderStatus::Cancelled
                } else {
                    OrderStatus::Pending
                },
                customer_id: Some(1 + i % 50_000),
                payment_id: Some(i),
                shipment_id: None,
            }),
            unavailable: Unavailable::default(),
        },
    }
}

fn item(i: i64, stride: i64) -> Change {
    Change {
        table: Table::OrderItems,
        op: Op::Create,
        lsn: Some(Lsn(1_000_000_000 + i as u64 * 16)),
        kind: ChangeKind::Upsert {
            row: Row::OrderItem(OrderItem {
                order_item_id: i * stride,
                order_id: Some(1 + i / 2),
                product_id: Some(1 + (i * 31) % 5_000),
                quantity: 1 + (i % 4) as i32,
                price: Money(500 + (i * 104_729) % 20_000),
            }),
            unavailable: Unavailable::default(),
        },
    }
}

/// Loads `n` rows made by `make` into `state`, and prints the figures as one table row.
fn load(
    name: &str,
    n: i64,
    state: &mut UpsertState,
    make: fn(i64, i64) -> Change,
    stride: i64,
    stored: fn(&UpsertState) -> usize,
) -> anyhow::Result<()> {
    if n == 0 {
        return Ok(());
    }
    let rss0 = rss_bytes()?;
    let live0 = LIVE.load(Ordering::Relaxed);
    PEAK.store(live0, Ordering::Relaxed);
    let t = Instant::now();
    let mut effects = 0usize;
    for i in 1..=n {
        effects += state.apply(&make(i, stride)).len();
    }
    let secs = t.elapsed().as_secs_f64();
    let rss = rss_bytes()?.saturating_sub(rss0) as f64;
    let live = LIVE.load(Ordering::Relaxed).saturating_sub(live0) as f64;
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(live0) as f64;
    if stored(state) != n as usize || effects != n as usize {
        bail!(
            "{name}: {} rows stored, {effects} effects, expected {n}",
            stored(state)
        );
    }
    let n = n as f64;
    println!(
        "| {name} | {n} | {:.1} | {:.1} | {:.1} | {:.0} | {:.2} |",
        rss / n,
        live / n,
        peak / n,
        rss / 1_048_576.0,
        n / secs / 1e6
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let mut orders: i64 = 1_000_000;
    let mut items: i64 = 2_000_000;
    let mut stride: i64 = 1;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |flag: &str| -> anyhow::Result<i64> {
            args.next()
                .with_context(|| format!("{flag} needs a number"))?
                .replace('_', "")
                .parse()
                .with_context(|| format!("{flag} needs a number"))
        };
        match a.as_str() {
            "--orders" => orders = value("--orders")?,
            "--items" => items = value("--items")?,
            "--stride" => stride = value("--stride")?.max(1),
            other => bail!("unknown argument {other}; use --orders N --items N --stride K"),
        }
    }
    let mut state = UpsertState::default();
    println!("key stride {stride}");
    println!("| table | rows | RSS B/row | heap B/row | heap peak B/row | RSS MiB | M rows/s |");
    println!("|---|---|---|---|---|---|---|");
    load("orders", orders, &mut state, order, stride, |s| {
        s.orders.len()
    })?;
    load("order_items", items, &mut state, item, stride, |s| {
        s.items.len()
    })?;
    // Keeps the state alive until after the last measurement.
    drop(state);
    Ok(())
}
