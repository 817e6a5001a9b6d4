//! `generate`: fills categories, products and customers with `catalog`'s rows by bulk
//! `COPY … FROM STDIN`, all in one transaction (a failure leaves nothing behind).
//!
//! New rows take ids after the highest existing ones, so generating twice appends; into an
//! empty database the rows are exactly those of `model::Shop::new` with the same seed.
//! Rows are made on a separate thread while Postgres ingests the previous chunk.
//!
//! Owns only the bulk load. The row contents are `catalog`'s.

use crate::catalog;
use crate::db::{DbError, Target};
use crate::schema;
use crate::sql;
use bytes::Bytes;
use futures_util::SinkExt;
use indicatif::{ProgressBar, ProgressStyle};
use sources::{Row, Table};
use std::io::IsTerminal;
use std::pin::pin;
use std::time::Duration;

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenerateConfig {
    pub seed: u64,
    pub categories: usize,
    pub products: usize,
    pub customers: usize,
    /// Draw a progress bar on stderr (still hidden when stderr is not a terminal).
    pub progress: bool,
}

/// What was written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Generated {
    pub categories_created: usize,
    pub products: usize,
    pub customers: usize,
    pub elapsed: Duration,
}

/// Rows per COPY chunk handed from the generator thread to the connection.
const CHUNK_ROWS: usize = 2_000;

fn progress_bar(total: u64, enabled: bool) -> ProgressBar {
    if !enabled || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:10} [{elapsed_precise}] {wide_bar} {pos}/{len} rows ({per_sec}, eta {eta})",
    ) {
        pb.set_style(style);
    }
    pb
}

/// Streams rows `make(id)` for `ids` into `table` with COPY, on `tx`.
async fn copy_rows<F>(
    tx: &tokio_postgres::Transaction<'_>,
    table: Table,
    ids: std::ops::Range<i64>,
    make: F,
    pb: &ProgressBar,
) -> Result<(), DbError>
where
    F: Fn(i64) -> Row + Send + 'static,
{
    if ids.is_empty() {
        return Ok(());
    }
    pb.set_message(table.name());
    let (send, mut recv) = tokio::sync::mpsc::channel::<(Bytes, u64)>(4);
    let producer = tokio::task::spawn_blocking(move || {
        let mut buf = String::with_capacity(CHUNK_ROWS * 256);
        let mut n = 0u64;
        for id in ids {
            sql::write_copy_line(&make(id), &mut buf);
            n += 1;
            if n as usize == CHUNK_ROWS {
                let chunk = Bytes::from(std::mem::take(&mut buf));
                if send.blocking_send((chunk, n)).is_err() {
                    return; // the COPY failed; its error is reported there
                }
                buf.reserve(CHUNK_ROWS * 256);
                n = 0;
            }
        }
        if n > 0 {
            let _ = send.blocking_send((Bytes::from(buf), n));
        }
    });
    let sink = tx
        .copy_in::<_, Bytes>(&sql::copy_sql(table))
        .await
        .map_err(DbError::sql(format!("starting COPY into {table}")))?;
    let mut sink = pin!(sink);
    while let Some((chunk, n)) = recv.recv().await {
        sink.send(chunk)
            .await
            .map_err(DbError::sql(format!("COPY into {table}")))?;
        pb.inc(n);
    }
    let written = sink
        .as_mut()
        .finish()
        .await
        .map_err(DbError::sql(format!("finishing COPY into {table}")))?;
    producer
        .await
        .map_err(|e| DbError::Data(format!("row generator for {table} failed: {e}")))?;
    tracing::debug!("copied {written} rows into {table}");
    Ok(())
}

async fn max_id(
    tx: &tokio_postgres::Transaction<'_>,
    table: &str,
    key: &str,
) -> Result<i64, DbError> {
    let row = tx
        .query_one(
            &format!("SELECT COALESCE(MAX({key}), 0)::int8 FROM {table}"),
            &[],
        )
        .await
        .map_err(DbError::sql(format!(
            "reading {table} (is the schema there? run `datagen init`)"
        )))?;
    Ok(row.get(0))
}

/// Runs `generate`. The schema must exist (`init`).
pub async fn generate(target: &Target, cfg: &GenerateConfig) -> Result<Generated, DbError> {
    if cfg.categories == 0 && cfg.products > 0 {
        return Err(DbError::Data(
            "products need at least one category (--categories ≥ 1)".into(),
        ));
    }
    let started = std::time::Instant::now();
    let mut client = target.connect().await?;
    let tx = client.transaction().await.map_err(DbError::sql("begin"))?;
    // Concurrent generators would pick the same new ids; make them take turns.
    tx.batch_execute("LOCK TABLE categories, products, customers IN SHARE ROW EXCLUSIVE MODE")
        .await
        .map_err(DbError::sql(
            "locking master tables (is the schema there? run `datagen init`)",
        ))?;

    // Categories: the fixed names, created when missing, with ids after the highest.
    let mut next_cat = max_id(&tx, "categories", "category_id").await? + 1;
    let mut cat_refs: Vec<(i64, usize)> = Vec::new();
    let mut created = 0;
    for index in 0..cfg.categories {
        let name = catalog::category_name(index);
        let existing = tx
            .query_opt(
                "SELECT category_id::int8 FROM categories WHERE name = $1",
                &[&name],
            )
            .await
            .map_err(DbError::sql("reading categories"))?;
        let id = match existing {
            Some(r) => r.get(0),
            None => {
                let row = Row::Category(catalog::category_row(index, next_cat));
                let values = sql::values(&row);
                let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = values
                    .iter()
                    .map(|v| v as &(dyn tokio_postgres::types::ToSql + Sync))
                    .collect();
                tx.execute(&sql::insert_sql(Table::Categories), &params)
                    .await
                    .map_err(DbError::sql(format!("inserting category {name}")))?;
                created += 1;
                next_cat += 1;
                next_cat - 1
            }
        };
        cat_refs.push((id, index));
    }

    let pb = progress_bar((cfg.products + cfg.customers) as u64, cfg.progress);
    let first_product = max_id(&tx, "products", "product_id").await? + 1;
    let seed = cfg.seed;
    let refs = cat_refs.clone();
    copy_rows(
        &tx,
        Table::Products,
        first_product..first_product + cfg.products as i64,
        move |id| Row::Product(Box::new(catalog::product_row(seed, id, &refs))),
        &pb,
    )
    .await?;
    let first_customer = max_id(&tx, "customers", "customer_id").await? + 1;
    copy_rows(
        &tx,
        Table::Customers,
        first_customer..first_customer + cfg.customers as i64,
        move |id| Row::Customer(Box::new(catalog::customer_row(seed, id))),
        &pb,
    )
    .await?;
    pb.finish_and_clear();
    tx.batch_execute(&schema::sync_sequences())
        .await
        .map_err(DbError::sql("moving id sequences past the new ids"))?;
    tx.commit().await.map_err(DbError::sql("commit"))?;
    Ok(Generated {
        categories_created: created,
        products: cfg.products,
        customers: cfg.customers,
        elapsed: started.elapsed(),
    })
}
