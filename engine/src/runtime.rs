//! The running engine: an ingest thread (upsert + retention, see [`crate::ingest`]) feeding a
//! timely/differential computation of every view, whose results are published into the
//! [`ViewStore`].
//!
//! Time: each engine time is one batch of whole source transactions (one transaction when the
//! engine keeps up; several queued ones merged under load), so a reader never sees half a
//! transaction. Worker 0 owns the inputs and publication; other workers only compute (their
//! inputs are closed at once). Results are exchanged to worker 0, buffered per time, and, when
//! the probe (placed after the buffer) has passed that time, handed to worker 0's publish
//! thread, which applies the times to the store in order. A time's index updates (for
//! `also_bought` and `recommendations`, see [`crate::views::index`]) skip the dataflow: worker 0
//! keeps them with the time's metadata and hands them over with its view rows.
//!
//! Owns threads and channels; must not define views (see [`crate::views`]).

use crate::ingest::Ingest;
use crate::views::{self, IndexUpdates, Sessions, Time, Updates, ViewsConfig};
use crossbeam_channel::{Receiver, Sender, TryRecvError};
use sources::{Change, Lsn, Micros, Position, Transaction};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use timely::dataflow::operators::probe::Handle as ProbeHandle;
use timely::dataflow::operators::{Exchange, Inspect, Probe};
use view_store::{AsOf, ChangeBatch, RecsDelta, ViewRow, ViewStore};

/// How to run the engine.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Timely worker threads per process.
    pub workers: usize,
    /// Cluster: number of processes, this process' index, `host:port` of each process. With
    /// `processes == 1` the engine runs in this process only.
    pub processes: usize,
    pub process_id: usize,
    pub hosts: Vec<String>,
    pub views: ViewsConfig,
    /// Retention of windowed views in µs (`None` keeps everything).
    pub retention: Option<i64>,
    /// Most transactions merged into one engine time when the engine lags behind.
    pub max_batch_changes: usize,
    /// Bound of the submit queue (transactions submitted one at a time; the queue holds
    /// `queue / 8` hand-overs of any size, see [`Submitter::submit_many`]): a full queue
    /// back-pressures the source.
    pub queue: usize,
    /// Merge work each arrangement does per step while the worker is otherwise idle, so
    /// compaction happens between bursts (`None`: merge only when new batches arrive).
    pub idle_merge_effort: Option<isize>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            workers: 1,
            processes: 1,
            process_id: 0,
            hosts: Vec::new(),
            views: ViewsConfig::default(),
            retention: Some(7 * 86_400 * Micros::PER_SECOND),
            max_batch_changes: 50_000,
            queue: 4096,
            idle_merge_effort: Some(1000),
        }
    }
}

/// Things the engine reports, for metrics and health.
#[derive(Default, Debug)]
pub struct Counters {
    pub transactions_submitted: AtomicU64,
    pub transactions_applied: AtomicU64,
    pub changes_in: AtomicU64,
    /// Updates the ingest handed to the engine, after its consolidation: the dataflow's inputs
    /// and the index deltas that bypass the dataflow.
    pub updates_out: AtomicU64,
    /// View row changes the dataflow published to the store, after consolidation (not the
    /// index deltas, nor the `also_bought` rows the store derives from them).
    pub rows_published: AtomicU64,
    /// Engine times published (each one or more whole transactions).
    pub times_published: AtomicU64,
    /// Store applications: one per engine time, or one for several when times queued while
    /// the store was busy.
    pub store_applications: AtomicU64,
}

/// Worker 0's ends of the ingest channels: batches in, credits (one per time it may accept) out.
struct Feeder {
    batches: Receiver<Batch>,
    credits: Sender<()>,
}

/// A batch of whole transactions for one engine time.
struct Batch {
    time: Time,
    updates: Updates,
    meta: BatchMeta,
}

#[derive(Clone, Debug, Default)]
struct BatchMeta {
    /// Transactions applied once this batch is visible (cumulative count).
    transactions: u64,
    lsn: Option<Lsn>,
    /// The oldest arrival among the batch's transactions (0: unknown): its latency is the
    /// batch's worst.
    received_at: Micros,
    positions: Vec<Position>,
}

impl BatchMeta {
    /// Counts an arrival at `r` (0: unknown) in [`BatchMeta::received_at`].
    fn arrived(&mut self, r: Micros) {
        if r.0 > 0 && (self.received_at.0 == 0 || r < self.received_at) {
            self.received_at = r;
        }
    }
}

/// A running engine. Dropping it shuts it down.
pub struct Engine {
    store: ViewStore,
    submit: Option<Sender<Chunk>>,
    /// Dropped on shutdown: tells the ingest thread to drain and stop even while cloned
    /// [`Submitter`]s are still alive.
    close: Option<Sender<()>>,
    counters: Arc<Counters>,
    ingest: Option<JoinHandle<()>>,
    workers: Option<timely::communication::WorkerGuards<()>>,
}

/// Observer called after each publication (latency metrics, acks).
pub type OnPublish = Arc<dyn Fn(&AsOf, Micros, &[Position]) + Send + Sync>;

impl Engine {
    /// Starts the ingest thread and the timely workers of this process.
    pub fn start(cfg: EngineConfig) -> anyhow::Result<Engine> {
        Self::start_with(cfg, ViewStore::new(), None)
    }

    /// Like [`Engine::start`], publishing into `store` and calling `on_publish` after each
    /// publication with the new `as_of`, the batch's receive time and the applied positions.
    pub fn start_with(
        cfg: EngineConfig,
        store: ViewStore,
        on_publish: Option<OnPublish>,
    ) -> anyhow::Result<Engine> {
        let counters = Arc::new(Counters::default());
        // recommendations are computed when read, with the configured K
        store.set_top_k(cfg.views.also_bought_k);
        let (submit_tx, submit_rx) =
            crossbeam_channel::bounded::<Chunk>((cfg.queue / QUEUE_PER_SLOT).max(2));
        let (batch_tx, batch_rx) = crossbeam_channel::unbounded::<Batch>();
        let (credit_tx, credit_rx) = crossbeam_channel::unbounded::<()>();
        let (park_tx, park_rx) = crossbeam_channel::bounded::<std::thread::Thread>(1);
        let (close_tx, close_rx) = crossbeam_channel::bounded::<()>(0);

        let timely_cfg = timely_config(&cfg)?;
        let feeder = Arc::new(Mutex::new(Some(Feeder {
            batches: batch_rx,
            credits: credit_tx,
        })));
        let views_cfg = cfg.views.clone();
        let store_w = store.clone();
        let counters_w = counters.clone();
        let is_feeding_process = cfg.process_id == 0;
        let workers = timely::execute(timely_cfg, move |worker| {
            let index = worker.index();
            let feeder = if index == 0 && is_feeding_process {
                feeder.lock().ok().and_then(|mut f| f.take())
            } else {
                None
            };
            run_worker(
                worker,
                feeder,
                &views_cfg,
                &store_w,
                &counters_w,
                on_publish.clone(),
                &park_tx,
            );
        })
        .map_err(|e| anyhow::anyhow!("starting timely workers: {e}"))?;

        let ingest = if is_feeding_process {
            let worker0 = park_rx
                .recv_timeout(Duration::from_secs(30))
                .map_err(|_| anyhow::anyhow!("timely worker 0 did not start"))?;
            let ingest = Ingest::new(&cfg.views.windows, cfg.retention, cfg.views.basket_cap);
            let max_changes = cfg.max_batch_changes.max(1);
            let counters_i = counters.clone();
            Some(
                std::thread::Builder::new()
                    .name("ingest".into())
                    .spawn(move || {
                        ingest_loop(
                            submit_rx,
                            close_rx,
                            credit_rx,
                            batch_tx,
                            worker0,
                            ingest,
                            max_changes,
                            &counters_i,
                        )
                    })?,
            )
        } else {
            drop(submit_rx);
            drop(batch_tx);
            drop(credit_rx);
            None
        };
        Ok(Engine {
            store,
            submit: Some(submit_tx),
            close: Some(close_tx),
            counters,
            ingest,
            workers: Some(workers),
        })
    }

    pub fn store(&self) -> ViewStore {
        self.store.clone()
    }

    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    /// Queues a transaction (blocks while the queue is full). Transactions apply in order.
    pub fn submit(&self, tx: Transaction) -> anyhow::Result<()> {
        self.submitter().submit(tx)
    }

    /// A sender for a source pump thread.
    pub fn submitter(&self) -> Submitter {
        Submitter {
            tx: self.submit.clone(),
            counters: self.counters.clone(),
        }
    }

    /// Blocks until every transaction submitted so far is visible in the store.
    pub fn sync(&self) -> AsOf {
        let target = self.counters.transactions_submitted.load(Ordering::SeqCst);
        loop {
            let a = self.store.as_of();
            if a.time >= target {
                return a;
            }
            if self.ingest.as_ref().is_some_and(|h| h.is_finished()) {
                return a;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Stops ingest, lets the workers finish, and joins every thread. Pending transactions are
    /// applied first.
    pub fn shutdown(mut self) -> anyhow::Result<()> {
        self.stop()
    }

    fn stop(&mut self) -> anyhow::Result<()> {
        self.submit = None;
        self.close = None;
        if let Some(h) = self.ingest.take() {
            h.join()
                .map_err(|_| anyhow::anyhow!("ingest thread panicked"))?;
        }
        if let Some(w) = self.workers.take() {
            for r in w.join() {
                r.map_err(|e| anyhow::anyhow!("timely worker failed: {e}"))?;
            }
        }
        Ok(())
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// A cloneable handle that submits transactions (for source threads).
#[derive(Clone)]
pub struct Submitter {
    tx: Option<Sender<Chunk>>,
    counters: Arc<Counters>,
}

impl Submitter {
    /// Queues one transaction (blocks while the queue is full).
    pub fn submit(&self, tx: Transaction) -> anyhow::Result<()> {
        self.submit_many(vec![tx])
    }

    /// Queues transactions that follow each other, in order, as one hand-over to the ingest
    /// thread (blocks while the queue is full).
    pub fn submit_many(&self, txs: Vec<Transaction>) -> anyhow::Result<()> {
        if txs.is_empty() {
            return Ok(());
        }
        let s = self
            .tx
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("engine is shut down"))?;
        self.counters
            .transactions_submitted
            .fetch_add(txs.len() as u64, Ordering::SeqCst);
        s.send(txs).map_err(|_| anyhow::anyhow!("engine stopped"))
    }

    /// Reads `source` to its end on the calling thread and submits its transactions in
    /// chunks ([`Submitter::chunked`]): how `engine replay` feeds the engine, with no thread
    /// between the parsing and the submit queue. Stops early if the engine stops.
    pub fn submit_file(
        self,
        source: sources::file::FileSource,
    ) -> anyhow::Result<sources::file::FileStats> {
        let mut chunked = self.chunked();
        let stats = source.run_with(|| false, |tx| chunked.push(tx).is_ok())?;
        chunked.flush()?;
        Ok(stats)
    }

    /// A submitter that hands transactions over [`SUBMIT_CHUNK`] at a time, for a bulk source
    /// (a file replay) where nothing waits for a particular transaction until the end: call
    /// [`Chunked::flush`] when the source is done (dropping it flushes too, ignoring errors).
    pub fn chunked(self) -> Chunked {
        Chunked {
            submitter: self,
            buf: Vec::with_capacity(SUBMIT_CHUNK),
        }
    }
}

/// Transactions handed to the ingest thread at once, in order. One per transaction costs a
/// channel operation and, when the ingest thread had caught up and parked, a wake-up (a futex
/// call on each side) per transaction; a bulk source hands over [`SUBMIT_CHUNK`] at a time.
type Chunk = Vec<Transaction>;

/// Transactions per chunk of [`Submitter::chunked`].
pub const SUBMIT_CHUNK: usize = 64;

/// The submit queue holds `EngineConfig::queue / QUEUE_PER_SLOT` hand-overs (at least 2): a
/// source submitting one transaction at a time still has hundreds of slots (with a few dozen,
/// producer and ingest thread woke each other for nearly every transaction: 2x the CPU per
/// event in the e2e bench), and a bulk source in chunks queues at most `8 × queue`
/// transactions (32k by default, a few tens of MB).
const QUEUE_PER_SLOT: usize = 8;

/// See [`Submitter::chunked`].
pub struct Chunked {
    submitter: Submitter,
    buf: Vec<Transaction>,
}

impl Chunked {
    /// Queues `tx`; hands over a chunk once it is full.
    pub fn push(&mut self, tx: Transaction) -> anyhow::Result<()> {
        self.buf.push(tx);
        if self.buf.len() >= SUBMIT_CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    /// Hands over what is queued.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(SUBMIT_CHUNK));
        self.submitter.submit_many(chunk)
    }
}

impl Drop for Chunked {
    /// A forgotten flush must not lose transactions silently.
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            if let Err(e) = self.flush() {
                tracing::warn!(error = %e, "transactions queued in a chunk were not submitted");
            }
        }
    }
}

fn timely_config(cfg: &EngineConfig) -> anyhow::Result<timely::Config> {
    let workers = cfg.workers.max(1);
    let communication = if cfg.processes > 1 {
        if cfg.hosts.len() != cfg.processes {
            anyhow::bail!(
                "--hostfile lists {} hosts but --processes is {}",
                cfg.hosts.len(),
                cfg.processes
            );
        }
        if cfg.process_id >= cfg.processes {
            anyhow::bail!(
                "--process-id {} must be below --processes {}",
                cfg.process_id,
                cfg.processes
            );
        }
        timely::CommunicationConfig::Cluster {
            threads: workers,
            process: cfg.process_id,
            addresses: cfg.hosts.clone(),
            report: false,
            zerocopy: false,
        }
    } else if workers > 1 {
        timely::CommunicationConfig::Process(workers)
    } else {
        timely::CommunicationConfig::Thread
    };
    let mut config = timely::Config {
        communication,
        worker: timely::WorkerConfig::default(),
    };
    // Keep merging arrangements while idle, so compaction happens between bursts.
    differential_dataflow::configure(
        &mut config.worker,
        &differential_dataflow::Config::default().idle_merge_effort(cfg.idle_merge_effort),
    );
    Ok(config)
}

/// Times worker 0 may have fed but not yet published. Two keep the dataflow busy (one time
/// computing while the next is ready) without letting small times pile up: every time costs
/// each operator a pass, so under load fewer, larger times are much cheaper than many small ones.
const IN_FLIGHT: usize = 2;

/// Drains submitted transactions, upserts them, and hands whole batches to worker 0.
///
/// Adaptive batching: worker 0 grants one credit per time it may accept (initially
/// [`IN_FLIGHT`], then one per published time). While no credit is available, arriving
/// transactions are upserted and merged into the pending batch (up to `max_changes` changes;
/// beyond that the submit queue fills and back-pressures the source). So when the engine keeps
/// up a time is one transaction (lowest latency), and under load a time is whatever arrived
/// while the previous one was computed (highest throughput), with no tuning knob.
#[allow(clippy::too_many_arguments)]
fn ingest_loop(
    rx: Receiver<Chunk>,
    close: Receiver<()>,
    credits: Receiver<()>,
    out: Sender<Batch>,
    worker0: std::thread::Thread,
    mut ingest: Ingest,
    max_changes: usize,
    counters: &Counters,
) {
    let mut time: Time = 0;
    let mut transactions: u64 = 0;
    let mut lsn: Option<Lsn> = None;
    let mut pending: Option<Gathering> = None;
    // each input's number of updates in the last time sent, to size the next (see
    // `Updates::with_room`)
    let mut last_lens: Vec<usize> = Vec::new();
    let mut credit = 0usize;
    // `rx` stays readable until shutdown is requested or every submitter is gone.
    let mut accepting = true;
    let never_tx = crossbeam_channel::never::<Chunk>();
    let never_close = crossbeam_channel::never::<()>();
    loop {
        if credit > 0 {
            if let Some(batch) = pending.take() {
                credit -= 1;
                time += 1;
                counters
                    .changes_in
                    .fetch_add(batch.changes as u64, Ordering::Relaxed);
                transactions += batch.meta.transactions;
                lsn = lsn.max(batch.meta.lsn);
                let mut updates = batch.updates;
                last_lens = updates.lens();
                updates.consolidate_dataflow();
                let meta = BatchMeta {
                    transactions,
                    lsn,
                    ..batch.meta
                };
                if out
                    .send(Batch {
                        time,
                        updates,
                        meta,
                    })
                    .is_err()
                {
                    break;
                }
                worker0.unpark();
                continue;
            }
        }
        let full = pending.as_ref().is_some_and(|p| p.changes >= max_changes);
        if !accepting && pending.is_none() {
            break;
        }
        let tx_arm = if accepting && !full { &rx } else { &never_tx };
        let close_arm = if accepting { &close } else { &never_close };
        crossbeam_channel::select! {
            recv(credits) -> c => match c {
                Ok(()) => credit += 1,
                Err(_) => break, // worker 0 is gone
            },
            recv(tx_arm) -> chunk => match chunk {
                Ok(chunk) => {
                    let batch = pending.get_or_insert_with(|| Gathering::with_room(&last_lens));
                    batch.absorb(&mut ingest, chunk);
                    // take what is queued right away: it shares this batch's time anyway
                    while batch.changes < max_changes {
                        let Ok(chunk) = rx.try_recv() else { break };
                        batch.absorb(&mut ingest, chunk);
                    }
                }
                Err(_) => accepting = false,
            },
            recv(close_arm) -> _ => {
                // Shutting down: take what is already queued, publish it, then stop.
                while let Ok(chunk) = rx.try_recv() {
                    pending.get_or_insert_with(Gathering::default).absorb(&mut ingest, chunk);
                }
                accepting = false;
            }
        }
    }
    drop(out);
    worker0.unpark();
}

/// The batch being gathered while worker 0 has no credit.
#[derive(Default)]
struct Gathering {
    updates: Updates,
    /// `transactions` counts this batch only; the sender makes it cumulative.
    meta: BatchMeta,
    changes: usize,
}

impl Gathering {
    fn with_room(lens: &[usize]) -> Gathering {
        Gathering {
            updates: Updates::with_room(lens),
            ..Gathering::default()
        }
    }

    /// Applies a chunk's transactions and gives their change vectors back to the sources
    /// (`sources::recycle`: freed here, they contended with the source thread's allocations).
    fn absorb(&mut self, ingest: &mut Ingest, chunk: Chunk) {
        let mut emptied = Vec::with_capacity(chunk.len());
        for tx in chunk {
            let changes = self.absorb_one(ingest, tx);
            sources::recycle::keep(&mut emptied, changes);
        }
        sources::recycle::give_back(emptied);
    }

    /// Applies one transaction; returns its change vector.
    fn absorb_one(&mut self, ingest: &mut Ingest, tx: Transaction) -> Vec<Change> {
        self.changes += tx.changes.len();
        ingest.apply_into(&tx, &mut self.updates);
        self.meta.transactions += 1;
        self.meta.lsn = self.meta.lsn.max(tx.lsn);
        self.meta.arrived(tx.received_at);
        if tx.position != Position::None {
            self.meta.positions.push(tx.position);
        }
        tx.changes
    }
}

type Pending = Rc<RefCell<BTreeMap<Time, Vec<(ViewRow, isize)>>>>;

fn run_worker(
    worker: &mut timely::worker::Worker,
    feeder: Option<Feeder>,
    views_cfg: &ViewsConfig,
    store: &ViewStore,
    counters: &Counters,
    on_publish: Option<OnPublish>,
    park_tx: &Sender<std::thread::Thread>,
) {
    let probe = ProbeHandle::new();
    let pending: Pending = Rc::new(RefCell::new(BTreeMap::new()));
    let pending_w = pending.clone();
    let sessions = worker.dataflow::<Time, _, _>(|scope| {
        let (sessions, inputs) = Sessions::new(scope);
        // the dataflow's view rows; the index updates bypass it (see `feed_and_step`)
        views::build(&inputs, views_cfg)
            .inner
            .exchange(|_| 0)
            .inspect_core(move |event| {
                if let Ok((_stamp, data)) = event {
                    let mut p = pending_w.borrow_mut();
                    for (row, t, r) in data.iter() {
                        p.entry(*t).or_default().push((row.clone(), *r));
                    }
                }
            })
            .probe_with(&probe);
        sessions
    });

    let Some(feeder) = feeder else {
        // Not the feeding worker: close inputs so they never hold the frontier back; timely
        // keeps stepping this worker until the dataflow completes.
        sessions.close();
        return;
    };
    let _ = park_tx.send(std::thread::current());
    for _ in 0..IN_FLIGHT {
        let _ = feeder.credits.send(());
    }
    // The store is written by a thread of its own: consolidating a time's rows and applying
    // them (the recommendations index above all) took a quarter of worker 0's time, which
    // then computes the next time meanwhile. The channel is bounded, so a slow store holds
    // the worker back instead of queueing without limit; times stay in order (one thread).
    std::thread::scope(|scope| {
        let (to_store, from_worker) = crossbeam_channel::bounded::<Publication>(IN_FLIGHT);
        let publisher = std::thread::Builder::new()
            .name("publish".into())
            .spawn_scoped(scope, move || {
                for mut p in from_worker.iter() {
                    // Times that queued while the store was busy are applied as one, at the
                    // latest: the store's work per time (consolidating and sorting the rows,
                    // netting the index deltas, re-ranking each touched product) is then paid
                    // once for them, so a store that falls behind catches up (adaptive, as the
                    // ingest's batching is). Readers see whole times either way.
                    let mut times = 1;
                    while let Ok(later) = from_worker.try_recv() {
                        p.absorb(later);
                        times += 1;
                    }
                    apply_to_store(p, times, store, counters, on_publish.as_ref());
                }
            });
        if let Err(e) = publisher {
            // at startup, not on a data path: without it nothing could ever be published
            panic!("could not start the publish thread: {e}");
        }
        feed_and_step(
            worker, &feeder, sessions, &probe, &pending, &to_store, counters,
        );
    });
}

/// A time's view changes, ready for the store.
struct Publication {
    meta: BatchMeta,
    changes: Vec<(ViewRow, isize)>,
    /// The time's index updates, which never entered the dataflow.
    index: IndexUpdates,
}

impl Publication {
    /// Appends the next time's publication: applied together they are the state at `later`.
    fn absorb(&mut self, later: Publication) {
        let meta = &mut self.meta;
        // cumulative, so the later count is the merged one's
        meta.transactions = meta.transactions.max(later.meta.transactions);
        meta.lsn = meta.lsn.max(later.meta.lsn);
        meta.arrived(later.meta.received_at);
        meta.positions.extend(later.meta.positions);
        self.changes.extend(later.changes);
        self.index.merge(later.index);
    }
}

/// Worker 0's loop: feeds batches from the ingest thread, steps the dataflow, hands every time
/// the probe has passed to the publish thread, and grants the ingest a credit per time handed.
fn feed_and_step(
    worker: &mut timely::worker::Worker,
    feeder: &Feeder,
    mut sessions: Sessions,
    probe: &ProbeHandle<Time>,
    pending: &Pending,
    to_store: &Sender<Publication>,
    counters: &Counters,
) {
    // per fed time: its metadata and its index updates, until the probe passes it
    let mut metas: BTreeMap<Time, (BatchMeta, IndexUpdates)> = BTreeMap::new();
    let mut open = true;
    while open {
        loop {
            match feeder.batches.try_recv() {
                Ok(batch) => {
                    counters
                        .updates_out
                        .fetch_add(batch.updates.len() as u64, Ordering::Relaxed);
                    sessions.advance_to(batch.time);
                    // The index updates are stateless projections of the inputs that only the
                    // store reads (`views::index`): they wait here for their time's view rows
                    // instead of being mapped, exchanged and consolidated by the dataflow.
                    let index = sessions.feed(batch.updates);
                    sessions.advance_to(batch.time + 1);
                    metas.insert(batch.time, (batch.meta, index));
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        if open {
            worker.step_or_park(Some(Duration::from_millis(5)));
        }
        let in_flight = metas.len();
        publish(probe, pending, &mut metas, to_store);
        // one credit per published time: the ingest thread may send the next batch
        for _ in metas.len()..in_flight {
            let _ = feeder.credits.send(());
        }
    }
    sessions.close();
    while !probe.done() {
        worker.step_or_park(Some(Duration::from_millis(1)));
    }
    publish(probe, pending, &mut metas, to_store);
}

/// Hands to the publish thread, in time order, every batch whose time the probe has passed.
fn publish(
    probe: &ProbeHandle<Time>,
    pending: &Pending,
    metas: &mut BTreeMap<Time, (BatchMeta, IndexUpdates)>,
    to_store: &Sender<Publication>,
) {
    while let Some((&t, _)) = metas.first_key_value() {
        if probe.less_equal(&t) {
            break;
        }
        let Some((_, (meta, index))) = metas.pop_first() else {
            break;
        };
        let changes: Vec<(ViewRow, isize)> = {
            let mut p = pending.borrow_mut();
            let mut out = Vec::new();
            // Outputs at times up to t (a view may emit at an earlier time only if it is late,
            // which cannot happen, but collecting ≤ t keeps nothing stranded).
            let keys: Vec<Time> = p.range(..=t).map(|(k, _)| *k).collect();
            for k in keys {
                if let Some(v) = p.remove(&k) {
                    out.extend(v);
                }
            }
            out
        };
        if to_store
            .send(Publication {
                meta,
                changes,
                index,
            })
            .is_err()
        {
            // the publish thread is gone (it panicked): nothing more can be published
            tracing::error!("publish thread gone; dropping view changes");
            return;
        }
    }
}

/// Applies the changes of one or more consecutive `times` (merged) to the store (on the
/// publish thread).
fn apply_to_store(
    p: Publication,
    times: u64,
    store: &ViewStore,
    counters: &Counters,
    on_publish: Option<&OnPublish>,
) {
    let Publication {
        meta,
        changes,
        index,
    } = p;
    let as_of = AsOf {
        time: meta.transactions,
        lsn: meta.lsn,
        published_at: Some(Micros::now()),
    };
    let (batch, index) = store_batch(changes, index, as_of);
    counters
        .rows_published
        .fetch_add(batch.changes.len() as u64, Ordering::Relaxed);
    store.apply_indexed(batch, index);
    counters.times_published.fetch_add(times, Ordering::Relaxed);
    counters.store_applications.fetch_add(1, Ordering::Relaxed);
    counters
        .transactions_applied
        .store(meta.transactions, Ordering::Relaxed);
    if let Some(f) = on_publish {
        f(&as_of, meta.received_at, &meta.positions);
    }
}

/// One engine time's view rows and index updates as the store applies them
/// (`ViewStore::apply_indexed`): the rows consolidated, retractions first (so a reader applying
/// in order never sees two rows for one key), and beside them the index deltas, which the store
/// nets itself.
pub fn store_batch(
    mut changes: Vec<(ViewRow, isize)>,
    index: IndexUpdates,
    as_of: AsOf,
) -> (ChangeBatch, Vec<(RecsDelta, i64)>) {
    view_store::consolidate(&mut changes);
    let mut changes: Vec<(ViewRow, i64)> = changes
        .into_iter()
        .map(|(row, r)| (row, r as i64))
        .collect();
    view_store::retractions_first(&mut changes);
    (ChangeBatch { as_of, changes }, views::index::deltas(index))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sources::Money;
    use view_store::{RevenueRow, Window};

    /// The revenue row of the minute window starting at `start` µs with `orders` orders of 1.00.
    fn rev(start: i64, orders: i64) -> ViewRow {
        let minute = Window::Size(60_000_000);
        let money = Money(100 * orders);
        ViewRow::Revenue(RevenueRow::new(
            minute,
            Micros(start),
            orders,
            money,
            Money::ZERO,
        ))
    }

    /// Consecutive times applied as one leave the store as applying them one by one does:
    /// the same rows in every view (also_bought and recommendations from the merged index
    /// deltas), at the later time's `as_of`; the merged latency is the older arrival's.
    #[test]
    fn times_merged_for_the_store_equal_times_applied_one_by_one() {
        let publication = |transactions, received, changes, pairs: &[(i64, i64, isize)]| {
            let mut index = IndexUpdates::default();
            for &(p, q, d) in pairs {
                index.co_purchases.push(((p, q), d));
                index.purchases.push(((7, p), d));
            }
            Publication {
                meta: BatchMeta {
                    transactions,
                    lsn: Some(Lsn(transactions * 10)),
                    received_at: Micros(received),
                    positions: Vec::new(),
                },
                changes,
                index,
            }
        };
        let first = || {
            publication(
                3,
                500,
                vec![(rev(0, 1), 1), (rev(60_000_000, 2), 1)],
                &[(1, 2, 1), (2, 1, 1), (1, 3, 1), (3, 1, 1)],
            )
        };
        // the second time retracts a row of the first and a pair, and adds others
        let second = || {
            publication(
                5,
                400,
                vec![(rev(0, 1), -1), (rev(0, 2), 1)],
                &[(1, 3, -1), (3, 1, -1), (2, 3, 1), (3, 2, 1)],
            )
        };
        let counters = Counters::default();
        let one_by_one = ViewStore::new();
        apply_to_store(first(), 1, &one_by_one, &counters, None);
        apply_to_store(second(), 1, &one_by_one, &counters, None);
        let merged = ViewStore::new();
        let mut p = first();
        p.absorb(second());
        assert_eq!(p.meta.received_at, Micros(400));
        apply_to_store(p, 2, &merged, &counters, None);
        assert_eq!(counters.times_published.load(Ordering::Relaxed), 4);
        assert_eq!(counters.store_applications.load(Ordering::Relaxed), 3);
        for view in view_store::ViewName::ALL {
            let (a, rows_a) = one_by_one.snapshot(view);
            let (b, rows_b) = merged.snapshot(view);
            assert_eq!(rows_a, rows_b, "{view:?}");
            assert_eq!((a.time, a.lsn), (5, Some(Lsn(50))));
            assert_eq!((b.time, b.lsn), (5, Some(Lsn(50))));
        }
        assert!(!one_by_one
            .snapshot(view_store::ViewName::AlsoBought)
            .1
            .is_empty());
    }

    /// A batch is consolidated, then retractions first, each run in row order (as a stable
    /// sort by sign of the consolidated rows).
    #[test]
    fn store_batch_consolidates_then_puts_retractions_first() {
        let changes = vec![
            (rev(3, 1), 1),
            (rev(1, 1), -1),
            (rev(2, 1), 1),
            (rev(2, 1), -1),
            (rev(0, 1), 1),
            (rev(5, 1), -1),
            (rev(4, 1), 2),
            (rev(4, 1), -1),
        ];
        let (b, _) = store_batch(changes, IndexUpdates::default(), AsOf::default());
        assert_eq!(
            b.changes,
            vec![
                (rev(1, 1), -1),
                (rev(5, 1), -1),
                (rev(0, 1), 1),
                (rev(3, 1), 1),
                (rev(4, 1), 1),
            ]
        );
    }
}
