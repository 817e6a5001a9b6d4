//! Connections and the schema commands: `init` (create the database if missing, then the
//! idempotent DDL and publication), `reset`, `clear`, `clear --activity`. Every command runs in
//! one transaction, so a failure leaves nothing half-done.
//!
//! Owns connection handling and error context. Never logs or prints a URL's password: errors
//! name the server as `host:port/db` only.

use crate::schema;
use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config, NoTls};

/// What went wrong, with the context a user needs to fix it.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("invalid database URL: {0}")]
    Url(String),
    // The Postgres error is formatted into the message (with its detail) rather than chained
    // as a source, so `{:#}` does not print it twice.
    #[error("cannot connect to PostgreSQL at {server}: {}", describe(.error))]
    Connect {
        server: String,
        error: tokio_postgres::Error,
    },
    #[error("{what}: {}", describe(.error))]
    Sql {
        what: String,
        error: tokio_postgres::Error,
    },
    #[error("{0}")]
    Data(String),
}

impl DbError {
    pub fn sql(what: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> DbError {
        let what = what.into();
        move |error| DbError::Sql { what, error }
    }
}

/// Formats a PostgreSQL error with its server message and detail, which `Display` of
/// `tokio_postgres::Error` leaves out ("db error").
pub fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{}: {}", db.severity(), db.message());
            if let Some(d) = db.detail() {
                s.push_str(&format!(" ({d})"));
            }
            if let Some(c) = db.constraint() {
                s.push_str(&format!(" [constraint {c}]"));
            }
            s
        }
        // tokio-postgres repeats its cause in `Display`; the cause alone reads better.
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}")
                .split(": ")
                .next()
                .map_or_else(|| cause.to_string(), |head| format!("{head}: {cause}")),
            None => e.to_string(),
        },
    }
}

/// A parsed database URL.
#[derive(Clone)]
pub struct Target {
    pub config: Config,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, DbError> {
        let config: Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| DbError::Url(e.to_string()))?;
        if config.get_hosts().is_empty() {
            return Err(DbError::Url("no host given".into()));
        }
        Ok(Target { config })
    }

    /// The database name (default `postgres`, like libpq's default of the user name is not
    /// assumed here: `shop` URLs always name their database).
    pub fn dbname(&self) -> String {
        self.config.get_dbname().unwrap_or("postgres").to_string()
    }

    /// `host:port/db`, safe to print.
    pub fn server(&self) -> String {
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "?".into(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        format!("{host}:{port}/{}", self.dbname())
    }

    /// The same server with another database.
    pub fn with_db(&self, db: &str) -> Target {
        let mut config = self.config.clone();
        config.dbname(db);
        Target { config }
    }

    pub async fn connect(&self) -> Result<Client, DbError> {
        let (client, conn) = self.config.connect(NoTls).await.map_err(|error| {
            if error.code() == Some(&tokio_postgres::error::SqlState::INVALID_CATALOG_NAME) {
                DbError::Data(format!(
                    "database {} does not exist (run `datagen init` to create it)",
                    self.server()
                ))
            } else {
                DbError::Connect {
                    server: self.server(),
                    error,
                }
            }
        })?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("connection closed: {e}");
            }
        });
        Ok(client)
    }
}

/// Creates the target database when it does not exist (connecting to `postgres` on the same
/// server). Returns true when it was created.
pub async fn ensure_database(target: &Target) -> Result<bool, DbError> {
    let name = target.dbname();
    let admin = target.with_db("postgres").connect().await?;
    let exists = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .map_err(DbError::sql("looking up the database"))?
        .is_some();
    if exists {
        return Ok(false);
    }
    match admin
        .batch_execute(&format!("CREATE DATABASE {}", schema::quote_ident(&name)))
        .await
    {
        Ok(()) => Ok(true),
        // Someone else created it in between: fine.
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) => {
            Ok(false)
        }
        Err(e) => Err(DbError::Sql {
            what: format!("creating database {name}"),
            error: e,
        }),
    }
}

/// Serialises concurrent schema commands on one database (two `init`s racing on
/// `CREATE TABLE IF NOT EXISTS` can otherwise fail on the catalog's unique indexes).
const SCHEMA_LOCK: &str = "SELECT pg_advisory_xact_lock(7268201526)";

/// `init`: the database (if missing), tables, indexes, replica identity, publication, and
/// sequences past existing ids. Idempotent.
pub async fn init(target: &Target, publication: &str) -> Result<(), DbError> {
    if ensure_database(target).await? {
        tracing::info!("created database {}", target.dbname());
    }
    let mut client = target.connect().await?;
    let tx = client.transaction().await.map_err(DbError::sql("begin"))?;
    tx.batch_execute(SCHEMA_LOCK)
        .await
        .map_err(DbError::sql("taking the schema lock"))?;
    tx.batch_execute(schema::CREATE_TABLES)
        .await
        .map_err(DbError::sql("creating tables"))?;
    tx.batch_execute(&schema::create_publication(publication))
        .await
        .map_err(DbError::sql(format!("creating publication {publication}")))?;
    tx.batch_execute(&schema::sync_sequences())
        .await
        .map_err(DbError::sql("moving id sequences past existing ids"))?;
    tx.commit().await.map_err(DbError::sql("commit"))?;
    Ok(())
}

/// `reset`: drops the publication and the tables, then `init`s, in one transaction.
pub async fn reset(target: &Target, publication: &str) -> Result<(), DbError> {
    ensure_database(target).await?;
    let mut client = target.connect().await?;
    let tx = client.transaction().await.map_err(DbError::sql("begin"))?;
    tx.batch_execute(SCHEMA_LOCK)
        .await
        .map_err(DbError::sql("taking the schema lock"))?;
    tx.batch_execute(&schema::drop_all(publication))
        .await
        .map_err(DbError::sql("dropping tables"))?;
    tx.batch_execute(schema::CREATE_TABLES)
        .await
        .map_err(DbError::sql("creating tables"))?;
    tx.batch_execute(&schema::create_publication(publication))
        .await
        .map_err(DbError::sql(format!("creating publication {publication}")))?;
    tx.commit().await.map_err(DbError::sql("commit"))?;
    Ok(())
}

/// `clear`: empties every table (or only the activity tables) and restarts identities.
pub async fn clear(target: &Target, activity_only: bool) -> Result<(), DbError> {
    let mut client = target.connect().await?;
    let tables: &[&str] = if activity_only {
        &schema::ACTIVITY_TABLES
    } else {
        &schema::TABLES
    };
    let tx = client.transaction().await.map_err(DbError::sql("begin"))?;
    tx.batch_execute(&schema::truncate(tables))
        .await
        .map_err(DbError::sql("clearing tables (run `init` first?)"))?;
    tx.commit().await.map_err(DbError::sql("commit"))?;
    Ok(())
}

/// Row counts of the ten tables, in [`schema::TABLES`] order.
pub async fn counts(client: &Client) -> Result<Vec<(String, i64)>, DbError> {
    let mut out = Vec::new();
    for t in schema::TABLES {
        let row = client
            .query_one(&format!("SELECT COUNT(*) FROM {t}"), &[])
            .await
            .map_err(DbError::sql(format!("counting {t}")))?;
        out.push((t.to_string(), row.get(0)));
    }
    Ok(out)
}
