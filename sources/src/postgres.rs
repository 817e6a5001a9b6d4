//! The built-in Postgres change capture (`--source postgres://…`): pgoutput logical replication
//! over the streaming replication protocol (`pgwire-replication`), with a consistent initial
//! snapshot, one [`Transaction`] per source transaction, and acknowledgements only for what the
//! engine applied.
//!
//! Owns the control plane (publication and slot creation, the snapshot read over tokio-postgres)
//! and the replication session (reconnects, acks). Decoding is [`crate::pgoutput`]'s, typing rows
//! by column name is [`rows`]'. Must not dedupe or keep row state: the engine dedupes per key by
//! LSN, so the at-least-once redelivery after a restart is harmless.
//!
//! # Lifecycle and failure policy
//! - **Publication missing**: created `FOR TABLE` the ten tables (a missing table is an error
//!   that names it).
//! - **Slot missing**: created with `EXPORT_SNAPSHOT`; every table is read inside that snapshot
//!   (`REPEATABLE READ`, `SET TRANSACTION SNAPSHOT`) and sent as `Op::Read` upserts in batches of
//!   [`PostgresConfig::snapshot_batch`] rows, each batch one transaction whose `lsn` is the
//!   slot's consistent point. Snapshot changes carry `Change::lsn = None` on purpose: a
//!   transaction that wrote a row *before* the consistent point but committed after it is
//!   streamed with a record LSN *below* the consistent point, and must still win over the
//!   snapshot image (the engine applies LSN-less changes unconditionally and does not remember
//!   an LSN for them). If the snapshot fails, the new slot is dropped so the next start
//!   snapshots again. A process killed in the middle of the snapshot leaves a slot behind whose
//!   snapshot was not completed: with [`SnapshotMode::Recreate`] (what an engine with purely
//!   in-memory state wants) every start drops and recreates the slot.
//! - **Slot exists**: no snapshot; streaming resumes from its `confirmed_flush_lsn`, i.e. the
//!   last LSN the engine reported applied. Transactions after it are re-delivered
//!   (at-least-once).
//! - **Connection lost / Postgres restarted** (also during setup or the snapshot; an
//!   interrupted snapshot is redone with a new slot): reconnect with exponential backoff
//!   ([`PostgresConfig::reconnect_initial`] doubling up to [`PostgresConfig::reconnect_max`]),
//!   resuming from the last acknowledged LSN; after [`PostgresConfig::give_up_after`] without a
//!   working session, [`PgSourceError::GaveUp`] (exit code 4).
//! - **Slot dropped while running**: detected when the session breaks (a walsender holding the
//!   slot must be terminated before the slot can be dropped) → [`PgSourceError::SlotDropped`],
//!   exit code 3. It is deliberately not recreated on the fly: changes between the drop and a
//!   new slot would be lost silently. Restarting the process creates a new slot with a fresh
//!   snapshot.
//! - **A row that cannot be typed** (e.g. a `NaN` price): counted in
//!   `shopstream_pg_untyped_rows_total`, logged with table/column, skipped.
//! - **A pgoutput message that cannot be decoded**: fatal [`PgSourceError::Decode`] (exit
//!   code 1) naming the LSN: skipping bytes we do not understand could drop whole changes.
//!
//! Acknowledgements: an LSN is acknowledged only when it came back through `io.applied`; on
//! keepalives while nothing is in flight and no transaction is open, the server's WAL end is
//! acknowledged too, so a slot whose tables are idle does not pin the WAL of other tables'
//! traffic (nothing of ours can lie before it). On a clean stop the last applied LSN is also
//! written with `pg_replication_slot_advance`, since the replication client sends status
//! updates only periodically.

pub mod rows;

use crate::pgoutput::{self, ChangeError, DecodeError};
use crate::source::SourceIo;
use crate::types::{Change, ChangeKind, Lsn, Micros, Op, Position, Table, Transaction};
use pgwire_replication::{
    Lsn as PgLsn, PgWireError, ReplicationClient, ReplicationConfig, ReplicationEvent, TlsConfig,
};
use std::collections::VecDeque;
use std::str::FromStr;
use std::sync::LazyLock;
use std::time::{Duration, Instant};
use tokio_postgres::{NoTls, SimpleQueryMessage};
use tracing::{debug, info, warn};

/// What to do about the initial snapshot.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum SnapshotMode {
    /// Snapshot only when the slot had to be created; an existing slot resumes streaming.
    #[default]
    WhenCreated,
    /// Drop an existing slot and start over with a fresh slot and snapshot (for an engine
    /// whose state does not survive a restart).
    Recreate,
}

#[derive(Clone, Debug)]
pub struct PostgresConfig {
    /// `postgres://user:password@host:port/db` (never logged: it may carry a password).
    pub url: String,
    pub publication: String,
    pub slot: String,
    pub snapshot: SnapshotMode,
    /// Rows per snapshot transaction.
    pub snapshot_batch: usize,
    pub reconnect_initial: Duration,
    pub reconnect_max: Duration,
    /// Give up when no session could be (re)established for this long.
    pub give_up_after: Duration,
    /// How often acknowledged LSNs are reported to the server at most.
    pub status_interval: Duration,
}

impl PostgresConfig {
    pub const DEFAULT_PUBLICATION: &'static str = "shop_pub";
    pub const DEFAULT_SLOT: &'static str = "shopstream_slot";

    pub fn new(url: impl Into<String>) -> Self {
        PostgresConfig {
            url: url.into(),
            publication: Self::DEFAULT_PUBLICATION.into(),
            slot: Self::DEFAULT_SLOT.into(),
            snapshot: SnapshotMode::WhenCreated,
            snapshot_batch: 10_000,
            reconnect_initial: Duration::from_millis(200),
            reconnect_max: Duration::from_secs(10),
            give_up_after: Duration::from_secs(300),
            status_interval: Duration::from_secs(1),
        }
    }
}

/// Everything that stops the Postgres source. [`PgSourceError::exit_code`] maps it to a
/// process exit code for the engine binary.
#[derive(Debug, thiserror::Error)]
pub enum PgSourceError {
    #[error("invalid Postgres source configuration: {0}")]
    Config(String),
    #[error("postgres: {context}: {detail}")]
    Sql {
        context: String,
        /// The server's message and SQLSTATE (tokio-postgres' own Display is only "db error").
        detail: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("postgres replication: {context}: {source}")]
    Replication {
        context: String,
        #[source]
        source: PgWireError,
    },
    #[error("table public.{0} does not exist: create the schema first (`datagen init`)")]
    MissingTable(String),
    #[error("replication slot {slot:?} is unusable: {problem}")]
    SlotUnusable { slot: String, problem: String },
    #[error(
        "replication slot {slot:?} was dropped while streaming (last acknowledged LSN {last_acked}); \
         not recreating it, as changes since then would be lost: restart to snapshot again"
    )]
    SlotDropped { slot: String, last_acked: Lsn },
    #[error("cannot decode pgoutput message at {lsn}: {source}")]
    Decode {
        lsn: Lsn,
        #[source]
        source: DecodeError,
    },
    #[error("gave up reconnecting after {attempts} attempts over {elapsed:?}; last error: {last}")]
    GaveUp {
        attempts: u32,
        elapsed: Duration,
        last: String,
    },
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

impl PgSourceError {
    /// Worth retrying: the server is unreachable, restarting or ended the connection.
    pub fn is_transient(&self) -> bool {
        match self {
            PgSourceError::Sql { source, .. } => match source.as_db_error() {
                None => true,
                // Class 08 connection exception, 57 operator intervention (shutdown, starting
                // up), 53 insufficient resources (too many connections).
                Some(d) => ["08", "57", "53"]
                    .iter()
                    .any(|c| d.code().code().starts_with(c)),
            },
            PgSourceError::Replication { source, .. } => !source.is_auth(),
            _ => false,
        }
    }

    /// 2 configuration or schema, 3 slot dropped, 4 gave up reconnecting, 1 anything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            PgSourceError::Config(_)
            | PgSourceError::MissingTable(_)
            | PgSourceError::SlotUnusable { .. } => 2,
            PgSourceError::SlotDropped { .. } => 3,
            PgSourceError::GaveUp { .. } => 4,
            _ => 1,
        }
    }
}

fn sql(context: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> PgSourceError {
    let context = context.into();
    move |source| PgSourceError::Sql {
        context,
        detail: describe(&source),
        source,
    }
}

/// A tokio-postgres error with the server's message when there is one.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{} (SQLSTATE {})", d.message(), d.code().code()),
        None => e.to_string(),
    }
}

fn repl(context: impl Into<String>) -> impl FnOnce(PgWireError) -> PgSourceError {
    let context = context.into();
    move |source| PgSourceError::Replication { context, source }
}

struct Metrics {
    changes: prometheus::IntCounter,
    transactions: prometheus::IntCounter,
    untyped: prometheus::IntCounter,
    reconnects: prometheus::IntCounter,
    snapshot_rows: prometheus::IntCounter,
}

fn counter(name: &str, help: &str) -> prometheus::IntCounter {
    // Registration fails only if the name is taken; counting still works unregistered.
    let c = prometheus::IntCounter::new(name, help)
        .unwrap_or_else(|_| prometheus::IntCounter::new("shopstream_invalid", "invalid").unwrap());
    if let Err(e) = prometheus::register(Box::new(c.clone())) {
        warn!("metric {name} not registered: {e}");
    }
    c
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    changes: counter(
        "shopstream_pg_changes_total",
        "Row changes received from Postgres logical replication",
    ),
    transactions: counter(
        "shopstream_pg_transactions_total",
        "Transactions sent to the engine by the Postgres source",
    ),
    untyped: counter(
        "shopstream_pg_untyped_rows_total",
        "Replicated rows skipped because they could not be typed",
    ),
    reconnects: counter(
        "shopstream_pg_reconnects_total",
        "Replication session reconnect attempts",
    ),
    snapshot_rows: counter(
        "shopstream_pg_snapshot_rows_total",
        "Rows read by the initial snapshot",
    ),
});

/// Connection parameters for the replication session, from the URL.
struct ConnInfo {
    host: String,
    port: u16,
    user: String,
    password: String,
    dbname: String,
}

impl ConnInfo {
    fn parse(url: &str) -> Result<(tokio_postgres::Config, ConnInfo), PgSourceError> {
        // The error text of a URL parse may echo the URL: do not include it.
        let cfg = tokio_postgres::Config::from_str(url)
            .map_err(|_| PgSourceError::Config("not a valid postgres:// URL".into()))?;
        let host = match cfg.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(tokio_postgres::config::Host::Unix(p)) => p.to_string_lossy().into_owned(),
            None => "127.0.0.1".to_string(),
        };
        let user = cfg
            .get_user()
            .map(str::to_owned)
            .ok_or_else(|| PgSourceError::Config("the URL names no user".into()))?;
        let info = ConnInfo {
            host,
            port: cfg.get_ports().first().copied().unwrap_or(5432),
            password: cfg
                .get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .unwrap_or_default(),
            dbname: cfg.get_dbname().unwrap_or(&user).to_owned(),
            user,
        };
        Ok((cfg, info))
    }

    fn replication(&self, slot: &str, publication: &str) -> ReplicationConfig {
        ReplicationConfig::new(
            self.host.clone(),
            self.user.clone(),
            self.password.clone(),
            self.dbname.clone(),
            slot,
            publication,
        )
        .with_port(self.port)
        .with_tls(TlsConfig::disabled())
        // Text output must be parseable whatever the server's defaults are.
        .with_options("-c datestyle=ISO,MDY -c timezone=UTC -c extra_float_digits=3")
        .with_application_name("shopstream")
    }
}

fn valid_name(kind: &str, name: &str) -> Result<(), PgSourceError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(PgSourceError::Config(format!(
            "{kind} name {name:?} must be 1-63 characters of a-z, 0-9, _"
        )))
    }
}

/// A slot as `pg_replication_slots` shows it.
#[derive(Debug)]
struct SlotInfo {
    plugin: Option<String>,
    database: Option<String>,
    active_pid: Option<String>,
    confirmed_flush: Option<Lsn>,
}

/// The Postgres change source. `run` blocks its thread until stopped or failed.
pub struct PostgresSource {
    cfg: PostgresConfig,
}

impl PostgresSource {
    pub fn new(cfg: PostgresConfig) -> Self {
        PostgresSource { cfg }
    }

    /// Runs until `io.stop` is set, the engine hangs up (`out` closed), or a fatal error.
    pub fn run(self, io: SourceIo) -> Result<(), PgSourceError> {
        valid_name("slot", &self.cfg.slot)?;
        valid_name("publication", &self.cfg.publication)?;
        // One worker thread runs the replication client and connection tasks; this thread runs
        // the source loop, which may block on the bounded `out` channel without stalling them
        // (keepalives keep flowing while the engine back-pressures).
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("pg-source")
            .enable_all()
            .build()?;
        rt.block_on(Runner::new(self.cfg, io)?.run())
    }
}

struct Runner {
    cfg: PostgresConfig,
    pg: tokio_postgres::Config,
    conn: ConnInfo,
    io: SourceIo,
    /// Highest LSN acknowledged to the server (or the start position).
    acked: Lsn,
    /// Commit LSNs sent to the engine and not yet reported applied.
    in_flight: VecDeque<Lsn>,
    /// The last session got as far as streaming (resets the reconnect backoff).
    last_session_worked: bool,
    /// This process created the slot and has not finished its snapshot.
    snapshot_pending: bool,
    /// This process completed a snapshot (`Recreate` recreates once per process).
    snapshot_done: bool,
}

enum SessionEnd {
    Stopped,
    Broken(String, Option<PgWireError>),
}

impl Runner {
    fn new(cfg: PostgresConfig, io: SourceIo) -> Result<Self, PgSourceError> {
        let (pg, conn) = ConnInfo::parse(&cfg.url)?;
        Ok(Runner {
            cfg,
            pg,
            conn,
            io,
            acked: Lsn(0),
            in_flight: VecDeque::new(),
            last_session_worked: false,
            snapshot_pending: false,
            snapshot_done: false,
        })
    }

    async fn control(&self) -> Result<tokio_postgres::Client, PgSourceError> {
        let (client, connection) = self
            .pg
            .connect(NoTls)
            .await
            .map_err(sql("connecting (control connection)"))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                debug!("postgres control connection ended: {e}");
            }
        });
        Ok(client)
    }

    async fn run(mut self) -> Result<(), PgSourceError> {
        // Setup (publication, slot, snapshot) is retried like the stream when the server is
        // unreachable or restarting; configuration problems end the run at once.
        let since = Instant::now();
        let mut delay = self.cfg.reconnect_initial;
        let start = loop {
            match self.setup().await {
                Ok(Some(lsn)) => break lsn,
                Ok(None) => return Ok(()), // stopped during the snapshot
                Err(e) if e.is_transient() && since.elapsed() < self.cfg.give_up_after => {
                    METRICS.reconnects.inc();
                    warn!("postgres source setup failed ({e}); retrying in {delay:?}");
                    let wake = Instant::now() + delay;
                    while Instant::now() < wake {
                        if self.io.stopping() {
                            return Ok(());
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    delay = (delay * 2).min(self.cfg.reconnect_max);
                }
                Err(e) => return Err(e),
            }
        };
        self.acked = start;
        self.stream().await
    }

    /// Publication and slot; the snapshot when the slot is new. The start LSN, or `None` when
    /// stopped meanwhile.
    async fn setup(&mut self) -> Result<Option<Lsn>, PgSourceError> {
        let ctl = self.control().await?;
        self.ensure_publication(&ctl).await?;
        let mut slot = self.slot_info(&ctl).await?;
        let recreate = self.cfg.snapshot == SnapshotMode::Recreate && !self.snapshot_done;
        if slot.is_some() && (recreate || self.snapshot_pending) {
            // Recreate mode, or our own slot whose snapshot was interrupted (its rows were not
            // all sent): start over with a new slot and snapshot.
            info!(slot = %self.cfg.slot, "dropping the slot to snapshot again");
            self.drop_slot(&ctl).await?;
            slot = None;
        }
        let start = match slot {
            Some(s) => {
                if s.plugin.as_deref() != Some("pgoutput") {
                    return Err(self.unusable(format!("plugin is {:?}, not pgoutput", s.plugin)));
                }
                if s.database.as_deref() != Some(self.conn.dbname.as_str()) {
                    return Err(self.unusable(format!(
                        "it belongs to database {:?}, not {:?}",
                        s.database, self.conn.dbname
                    )));
                }
                let lsn = s.confirmed_flush.unwrap_or_default();
                info!(slot = %self.cfg.slot, %lsn, active_pid = ?s.active_pid, "slot exists: resuming streaming, no snapshot");
                lsn
            }
            None => {
                self.snapshot_pending = true;
                match self.create_and_snapshot(&ctl).await {
                    Ok(Some(lsn)) => {
                        self.snapshot_pending = false;
                        self.snapshot_done = true;
                        lsn
                    }
                    Ok(None) => return Ok(None),
                    Err(e) => {
                        // Without a complete snapshot the slot must not survive: the next start
                        // would skip the snapshot. (If the server is gone, the retry drops it.)
                        if let Err(d) = self.drop_slot(&ctl).await {
                            warn!("dropping the slot after a failed snapshot: {d}");
                        }
                        return Err(e);
                    }
                }
            }
        };
        Ok(Some(start))
    }

    fn unusable(&self, problem: String) -> PgSourceError {
        PgSourceError::SlotUnusable {
            slot: self.cfg.slot.clone(),
            problem,
        }
    }

    async fn ensure_publication(&self, ctl: &tokio_postgres::Client) -> Result<(), PgSourceError> {
        let exists = ctl
            .query_opt(
                "SELECT 1 FROM pg_publication WHERE pubname = $1",
                &[&self.cfg.publication],
            )
            .await
            .map_err(sql("looking up the publication"))?
            .is_some();
        if exists {
            return Ok(());
        }
        let present: Vec<String> = ctl
            .query(
                "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'",
                &[],
            )
            .await
            .map_err(sql("listing tables"))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        for t in Table::ALL {
            if !present.iter().any(|p| p == t.name()) {
                return Err(PgSourceError::MissingTable(t.name().into()));
            }
        }
        let list: Vec<String> = Table::ALL
            .iter()
            .map(|t| format!("public.{}", t.name()))
            .collect();
        let stmt = format!(
            "CREATE PUBLICATION {} FOR TABLE {}",
            self.cfg.publication,
            list.join(", ")
        );
        match ctl.batch_execute(&stmt).await {
            Ok(()) => {
                info!(publication = %self.cfg.publication, "created publication");
                Ok(())
            }
            // Another process created it in between.
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_OBJECT) => {
                Ok(())
            }
            Err(e) => Err(sql("creating the publication")(e)),
        }
    }

    async fn slot_info(
        &self,
        ctl: &tokio_postgres::Client,
    ) -> Result<Option<SlotInfo>, PgSourceError> {
        let row = ctl
            .query_opt(
                "SELECT plugin::text, database::text, active_pid::text, confirmed_flush_lsn::text \
                 FROM pg_replication_slots WHERE slot_name = $1",
                &[&self.cfg.slot],
            )
            .await
            .map_err(sql("looking up the replication slot"))?;
        Ok(row.map(|r| SlotInfo {
            plugin: r.get(0),
            database: r.get(1),
            active_pid: r.get(2),
            confirmed_flush: r.get::<_, Option<String>>(3).and_then(|s| s.parse().ok()),
        }))
    }

    async fn drop_slot(&self, ctl: &tokio_postgres::Client) -> Result<(), PgSourceError> {
        // The creating session may still be closing: the slot is released a moment later.
        let mut last = None;
        for _ in 0..50 {
            match ctl
                .execute(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
                     WHERE slot_name = $1",
                    &[&self.cfg.slot],
                )
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::OBJECT_IN_USE) => {
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(sql("dropping the replication slot")(e)),
            }
        }
        match last {
            Some(e) => Err(sql("dropping the replication slot (still in use)")(e)),
            None => Ok(()),
        }
    }

    /// Creates the slot with an exported snapshot and sends every table's rows as `Op::Read`
    /// batches. Returns the consistent point, or `None` if stopped meanwhile.
    async fn create_and_snapshot(
        &self,
        ctl: &tokio_postgres::Client,
    ) -> Result<Option<Lsn>, PgSourceError> {
        let mut gated = ReplicationClient::connect_gated(
            self.conn.replication(&self.cfg.slot, &self.cfg.publication),
        )
        .await
        .map_err(repl("opening the replication session to create the slot"))?;
        let created = gated
            .simple_query(&format!(
                "CREATE_REPLICATION_SLOT {} LOGICAL pgoutput EXPORT_SNAPSHOT",
                self.cfg.slot
            ))
            .await
            .map_err(repl(format!(
                "creating replication slot {:?}",
                self.cfg.slot
            )))?;
        let text = |i: usize| -> Option<String> {
            created
                .first()
                .and_then(|r| r.get(i))
                .and_then(|v| v.as_ref())
                .map(|b| String::from_utf8_lossy(b).into_owned())
        };
        let (Some(point), Some(snapshot)) = (text(1), text(2)) else {
            return Err(self.unusable("CREATE_REPLICATION_SLOT returned no snapshot".into()));
        };
        let point: Lsn = point
            .parse()
            .map_err(|e: String| self.unusable(format!("bad consistent point: {e}")))?;
        info!(slot = %self.cfg.slot, consistent_point = %point, "created slot; reading the snapshot");
        // The exported snapshot lives while the creating session stays idle: read everything
        // before closing it.
        let outcome = self.read_snapshot(&snapshot, point).await;
        drop(gated);
        // Wait until the creating session released the slot, so streaming can acquire it.
        // (Best effort: streaming retries while the slot is still held.)
        for _ in 0..100 {
            match self.slot_info(ctl).await {
                Ok(Some(s)) if s.active_pid.is_some() => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                _ => break,
            }
        }
        outcome.map(|done| done.then_some(point))
    }

    async fn read_snapshot(&self, snapshot: &str, point: Lsn) -> Result<bool, PgSourceError> {
        let snap = self.control().await?;
        // The snapshot name comes from the server; it is `XXXXXXXX-XXXXXXXX-N` (hex, digits).
        if !snapshot.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            return Err(self.unusable(format!("unexpected snapshot name {snapshot:?}")));
        }
        snap.batch_execute(&format!(
            "SET datestyle = 'ISO, MDY'; SET TIME ZONE 'UTC'; \
             BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; \
             SET TRANSACTION SNAPSHOT '{snapshot}'"
        ))
        .await
        .map_err(sql("entering the exported snapshot"))?;
        let batch = self.cfg.snapshot_batch.max(1);
        for table in Table::ALL {
            snap.batch_execute(&format!(
                "DECLARE snap_cur NO SCROLL CURSOR FOR SELECT * FROM public.{table}"
            ))
            .await
            .map_err(sql(format!("snapshot of {table}")))?;
            loop {
                let msgs = snap
                    .simple_query(&format!("FETCH FORWARD {batch} FROM snap_cur"))
                    .await
                    .map_err(sql(format!("snapshot of {table}")))?;
                let mut changes = Vec::with_capacity(batch);
                for m in &msgs {
                    let SimpleQueryMessage::Row(r) = m else {
                        continue;
                    };
                    let cols = r.columns();
                    let get = |c: &str| match cols.iter().position(|x| x.name() == c) {
                        None => rows::Field::Missing,
                        Some(i) => match r.get(i) {
                            None => rows::Field::Null,
                            Some(s) => rows::Field::Text(s),
                        },
                    };
                    match rows::typed_row(table, get) {
                        Ok((row, unavailable)) => changes.push(Change {
                            table,
                            op: Op::Read,
                            lsn: None,
                            kind: ChangeKind::Upsert { row, unavailable },
                        }),
                        Err(e) => {
                            METRICS.untyped.inc();
                            warn!("snapshot: skipping a row that cannot be typed: {e}");
                        }
                    }
                }
                let fetched = msgs
                    .iter()
                    .filter(|m| matches!(m, SimpleQueryMessage::Row(_)))
                    .count();
                if !changes.is_empty() {
                    METRICS.snapshot_rows.inc_by(changes.len() as u64);
                    let tx = Transaction {
                        tx_id: None,
                        lsn: Some(point),
                        received_at: Micros::now(),
                        position: Position::Postgres(point),
                        changes,
                    };
                    if !self.send(tx) {
                        return Ok(false);
                    }
                }
                if fetched < batch {
                    break;
                }
            }
            snap.batch_execute("CLOSE snap_cur")
                .await
                .map_err(sql(format!("snapshot of {table}")))?;
        }
        snap.batch_execute("COMMIT")
            .await
            .map_err(sql("ending the snapshot"))?;
        info!(slot = %self.cfg.slot, "snapshot complete");
        Ok(true)
    }

    /// Sends a transaction, blocking while the engine back-pressures. `false`: stop (engine
    /// gone or stopping).
    fn send(&self, mut tx: Transaction) -> bool {
        loop {
            if self.io.stopping() {
                return false;
            }
            match self.io.out.send_timeout(tx, Duration::from_millis(100)) {
                Ok(()) => {
                    METRICS.transactions.inc();
                    return true;
                }
                Err(crossbeam_channel::SendTimeoutError::Timeout(t)) => tx = t,
                Err(crossbeam_channel::SendTimeoutError::Disconnected(_)) => return false,
            }
        }
    }

    /// Applies what the engine reported applied: acknowledges the highest Postgres LSN.
    fn drain_applied(&mut self, client: Option<&ReplicationClient>) {
        while let Ok(pos) = self.io.applied.try_recv() {
            if let Position::Postgres(lsn) = pos {
                while self.in_flight.front().is_some_and(|l| *l <= lsn) {
                    self.in_flight.pop_front();
                }
                if lsn > self.acked {
                    self.acked = lsn;
                    if let Some(c) = client {
                        c.update_applied_lsn(PgLsn::from_u64(lsn.0));
                    }
                }
            }
        }
    }

    async fn stream(&mut self) -> Result<(), PgSourceError> {
        let mut delay = self.cfg.reconnect_initial;
        let mut failing_since: Option<Instant> = None;
        let mut attempts = 0u32;
        loop {
            if self.io.stopping() {
                return Ok(());
            }
            let end = self.session().await?;
            let (why, err) = match end {
                SessionEnd::Stopped => {
                    self.flush_ack_on_stop().await;
                    return Ok(());
                }
                SessionEnd::Broken(why, err) => (why, err),
            };
            if self.last_session_worked {
                failing_since = None;
                attempts = 0;
                delay = self.cfg.reconnect_initial;
            }
            if err.as_ref().is_some_and(|e| e.is_auth()) {
                return Err(PgSourceError::Replication {
                    context: "authenticating the replication session".into(),
                    source: err.unwrap_or_else(|| PgWireError::Internal(why.clone())),
                });
            }
            // Is the slot still there? A missing slot is fatal; an unreachable server is not.
            if let Ok(ctl) = self.control().await {
                if let Ok(None) = self.slot_info(&ctl).await {
                    return Err(PgSourceError::SlotDropped {
                        slot: self.cfg.slot.clone(),
                        last_acked: self.acked,
                    });
                }
            }
            let since = *failing_since.get_or_insert_with(Instant::now);
            attempts += 1;
            if since.elapsed() > self.cfg.give_up_after {
                return Err(PgSourceError::GaveUp {
                    attempts,
                    elapsed: since.elapsed(),
                    last: why,
                });
            }
            METRICS.reconnects.inc();
            warn!(
                "replication session ended ({why}); reconnecting in {delay:?} from {}",
                self.acked
            );
            let wake = Instant::now() + delay;
            while Instant::now() < wake {
                if self.io.stopping() {
                    return Ok(());
                }
                self.drain_applied(None);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            delay = (delay * 2).min(self.cfg.reconnect_max);
        }
    }
}

struct OpenTx {
    xid: u32,
    changes: Vec<Change>,
}

impl Runner {
    async fn session(&mut self) -> Result<SessionEnd, PgSourceError> {
        self.last_session_worked = false;
        let cfg = self
            .conn
            .replication(&self.cfg.slot, &self.cfg.publication)
            .with_start_lsn(PgLsn::from_u64(self.acked.0))
            .with_ack_lsn(PgLsn::from_u64(self.acked.0))
            .with_status_interval(self.cfg.status_interval)
            .with_wakeup_interval(Duration::from_secs(5));
        let mut client = match ReplicationClient::connect(cfg).await {
            Ok(c) => c,
            Err(e) => return Ok(SessionEnd::Broken(format!("connect: {e}"), Some(e))),
        };
        if let Err(e) = client.wait_started().await {
            return Ok(SessionEnd::Broken(
                format!("START_REPLICATION: {e}"),
                Some(e),
            ));
        }
        self.last_session_worked = true;
        info!(slot = %self.cfg.slot, from = %self.acked, "streaming");
        let mut decoder = pgoutput::Decoder::new();
        let mut open: Option<OpenTx> = None;
        let mut stray = Vec::new();
        loop {
            self.drain_applied(Some(&client));
            if self.io.stopping() {
                let _ = client.shutdown().await;
                return Ok(SessionEnd::Stopped);
            }
            let ev = match tokio::time::timeout(Duration::from_millis(50), client.recv()).await {
                Err(_) => continue,
                Ok(Ok(Some(ev))) => ev,
                Ok(Ok(None)) => {
                    return Ok(SessionEnd::Broken("server ended the stream".into(), None))
                }
                Ok(Err(e)) => return Ok(SessionEnd::Broken(e.to_string(), Some(e))),
            };
            match ev {
                ReplicationEvent::Begin { xid, .. } => {
                    open = Some(OpenTx {
                        xid,
                        changes: Vec::new(),
                    });
                }
                ReplicationEvent::XLogData {
                    wal_start, data, ..
                } => {
                    let lsn = Lsn(wal_start.as_u64());
                    let msg = pgoutput::decode(&data)
                        .map_err(|source| PgSourceError::Decode { lsn, source })?;
                    let out = match open.as_mut() {
                        Some(t) => &mut t.changes,
                        None => {
                            stray.clear();
                            &mut stray
                        }
                    };
                    let before = out.len();
                    match decoder.apply(msg, lsn, out) {
                        Ok(()) => {}
                        Err(ChangeError::Row { lsn, source }) => {
                            METRICS.untyped.inc();
                            warn!(%lsn, "skipping a row that cannot be typed: {source}");
                        }
                        Err(ChangeError::Decode(source)) => {
                            return Err(PgSourceError::Decode { lsn, source })
                        }
                    }
                    if open.is_none() && stray.len() > before {
                        warn!(%lsn, "row change outside a transaction ignored");
                    }
                }
                ReplicationEvent::Commit { end_lsn, .. } => {
                    let end = Lsn(end_lsn.as_u64());
                    let Some(tx) = open.take() else {
                        warn!(%end, "commit without begin");
                        continue;
                    };
                    if tx.changes.is_empty() {
                        // Nothing for the engine; acknowledge directly if nothing is pending.
                        if self.in_flight.is_empty() && end > self.acked {
                            self.acked = end;
                            client.update_applied_lsn(end_lsn);
                        }
                        continue;
                    }
                    METRICS.changes.inc_by(tx.changes.len() as u64);
                    let t = Transaction {
                        tx_id: Some(tx.xid as u64),
                        lsn: Some(end),
                        received_at: Micros::now(),
                        position: Position::Postgres(end),
                        changes: tx.changes,
                    };
                    if !self.send(t) {
                        let _ = client.shutdown().await;
                        return Ok(SessionEnd::Stopped);
                    }
                    self.in_flight.push_back(end);
                }
                ReplicationEvent::KeepAlive { wal_end, .. } => {
                    let end = Lsn(wal_end.as_u64());
                    if open.is_none() && self.in_flight.is_empty() && end > self.acked {
                        self.acked = end;
                        client.update_applied_lsn(wal_end);
                    }
                }
                ReplicationEvent::Message { .. } => {}
                ReplicationEvent::StoppedAt { .. } => {
                    return Ok(SessionEnd::Broken("stopped at LSN".into(), None))
                }
            }
        }
    }

    /// The replication client reports acks periodically; on a clean stop, write the last one
    /// to the slot directly so a restart does not replay what was applied.
    async fn flush_ack_on_stop(&mut self) {
        self.drain_applied(None);
        let Ok(ctl) = self.control().await else {
            return;
        };
        let target = self.acked.to_string();
        for _ in 0..50 {
            match ctl
                .execute(
                    "SELECT pg_replication_slot_advance(slot_name, $2::text::pg_lsn) \
                     FROM pg_replication_slots WHERE slot_name = $1 \
                     AND confirmed_flush_lsn < $2::text::pg_lsn",
                    &[&self.cfg.slot, &target],
                )
                .await
            {
                Ok(_) => return,
                Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::OBJECT_IN_USE) => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(e) => {
                    warn!("advancing the slot to the last applied LSN on stop: {e}");
                    return;
                }
            }
        }
    }
}
