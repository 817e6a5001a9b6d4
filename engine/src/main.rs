//! `engine`: runs the platform. With no flags, the embedded default: an in-process shopper
//! simulator (datagen's behaviour model) feeds the dataflow; HTTP and the dashboard on
//! 127.0.0.1:8080. See `engine --help`.

use anyhow::Context;
use clap::Parser;
use engine::cli::{Cli, Command, ReplayArgs, RunArgs, TopicsCommand};
use engine::{dump, Engine};
use sources::{EngineIo, Micros, Transaction};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use view_store::status::EngineStatus;
use view_store::ViewStore;

fn main() -> anyhow::Result<()> {
    engine::alloc::tune();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Replay(args)) => replay(args),
        Some(Command::Topics { command }) => topics(command),
        None => run(cli.run),
    }
}

/// `engine replay FILE --dump DIR`: parse on the source thread while the engine computes
/// (nothing is held in memory but the state), then dump. In a cluster, only process 0 reads
/// the file and dumps; the other processes compute until process 0 closes its inputs.
fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let cfg = args.cluster.engine_config(&args.views)?;
    let feeding = cfg.process_id == 0;
    let engine = Engine::start(cfg)?;
    if !feeding {
        return engine.shutdown();
    }
    let dead = Arc::new(match &args.dead_letters {
        Some(p) => sources::deadletter::DeadLetters::new(Some(p), 1000)
            .with_context(|| format!("opening dead-letter file {}", p.display()))?,
        None => sources::deadletter::DeadLetters::in_memory(1000),
    });
    let source = sources::file::FileSource::new(args.file.clone()).with_dead_letters(dead);
    // the source thread parses and submits itself, in chunks (nothing waits for a single
    // transaction of a replay)
    let submitter = engine.submitter();
    let reader = std::thread::Builder::new()
        .name("source".into())
        .spawn(move || submitter.submit_file(source))?;
    let stats = reader
        .join()
        .map_err(|_| anyhow::anyhow!("file reader panicked"))?
        .with_context(|| format!("reading {}", args.file.display()))?;
    let as_of = engine.sync();
    let counts = dump::write_dump(&engine.store(), &args.dump)?;
    engine.shutdown()?;
    eprintln!(
        "replayed {} lines, {} events, {} transactions ({} dead letters) in {:.2?}; as_of time {} lsn {}",
        stats.lines,
        stats.events,
        stats.transactions,
        stats.dead_letters,
        started.elapsed(),
        as_of.time,
        as_of.lsn.map(|l| l.to_string()).unwrap_or_else(|| "-".into())
    );
    for (view, rows) in counts {
        eprintln!(
            "  {}/{}.json: {rows} rows",
            args.dump.display(),
            view.as_str()
        );
    }
    Ok(())
}

/// `engine topics list|tail`: the topic inspector for checking the pipeline by hand.
fn topics(cmd: TopicsCommand) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match cmd {
        TopicsCommand::List { brokers } => {
            let topics = sinks::topics::list(&brokers)?;
            sinks::topics::print_list(&topics, &mut out)?;
        }
        TopicsCommand::Tail {
            brokers,
            topic,
            from_beginning,
            max,
        } => {
            sinks::topics::tail(&brokers, &topic, from_beginning, max, &mut out)?;
        }
    }
    Ok(())
}

/// The long-running platform: source → engine → store → API and sinks.
fn run(args: RunArgs) -> anyhow::Result<()> {
    let cfg = args.cluster.engine_config(&args.views)?;
    let serving = cfg.process_id == 0;
    let store = ViewStore::new();
    let status = EngineStatus::new(redact(&args.source));
    let (source_io, engine_io) = sources::channel(1024);
    let EngineIo {
        input,
        applied,
        stop,
    } = engine_io;

    let on_publish: engine::runtime::OnPublish = {
        let status = status.clone();
        Arc::new(move |as_of, received_at, positions| {
            let now = Micros::now();
            if received_at.0 > 0 {
                let lat = (now.0 - received_at.0).max(0) as u64;
                api::metrics::observe_visible_latency(Duration::from_micros(lat));
                status.set_lag_ms((lat / 1000) as i64);
            }
            api::metrics::transactions_applied(as_of.time);
            status.record_applied(*as_of, Some(received_at).filter(|r| r.0 > 0), as_of.time);
            for p in positions {
                let _ = applied.send(p.clone());
            }
        })
    };
    let engine = Engine::start_with(cfg, store.clone(), Some(on_publish))?;

    let api = if serving {
        let api_cfg = api::ApiConfig {
            listen: args.listen,
            api_token: args.api_token.clone(),
            cors_origins: args.cors_origins.clone(),
            database_url: args.database_url.clone().or_else(|| {
                args.source
                    .starts_with("postgres")
                    .then(|| args.source.clone())
            }),
            ..api::ApiConfig::default()
        };
        let handle = api::spawn(api_cfg, store.clone(), status.clone())?;
        tracing::info!("HTTP API and dashboard on http://{}/", handle.addr);
        Some(handle)
    } else {
        None
    };

    let sinks = start_sinks(&args, &store)?;

    // The source runs on a thread of its own (parsing included); the pump hands whole
    // transactions to the engine.
    let source_thread = if serving {
        Some(spawn_source(&args, source_io, status.clone())?)
    } else {
        None
    };
    let submitter = engine.submitter();
    let status_p = status.clone();
    let pump = std::thread::Builder::new()
        .name("pump".into())
        .spawn(move || {
            for tx in input.iter() {
                // with what else is already waiting, as one hand-over (no waiting for more)
                let mut chunk = vec![tx];
                chunk.extend(input.try_iter().take(engine::runtime::SUBMIT_CHUNK - 1));
                let events: usize = chunk.iter().map(|t| t.changes.len()).sum();
                status_p.add_events(events as u64);
                if submitter.submit_many(chunk).is_err() {
                    break;
                }
            }
        })?;

    wait_for_ctrl_c()?;
    tracing::info!("shutting down");
    stop.store(true, Ordering::Relaxed);
    if let Some(t) = source_thread {
        let _ = t.join();
    }
    let _ = pump.join();
    let (sinks_rt, sink_handles) = sinks;
    sinks_rt.block_on(async {
        for h in sink_handles {
            h.shutdown().await;
        }
    });
    if let Some(a) = api {
        a.stop();
    }
    engine.shutdown()
}

/// Starts the configured sinks on their own tokio runtime (they never block the engine: the
/// store drops a lagging subscriber, and each sink re-subscribes).
fn start_sinks(
    args: &RunArgs,
    store: &ViewStore,
) -> anyhow::Result<(tokio::runtime::Runtime, Vec<sinks::SinkHandle>)> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("sinks")
        .enable_all()
        .build()?;
    let mut handles = Vec::new();
    let _guard = rt.enter();
    if let Some(brokers) = &args.kafka_sink {
        let cfg = sinks::kafka::KafkaSinkConfig::new(brokers.clone());
        handles.push(sinks::kafka::KafkaSink::spawn(cfg, store.clone())?);
        tracing::info!(brokers = %brokers, "Kafka sink started");
    }
    if !args.webhooks.is_empty() {
        let format: sinks::webhook::WebhookFormat = args
            .webhook_format
            .parse()
            .map_err(|e| anyhow::anyhow!("--webhook-format: {e}"))?;
        let mut cfg = sinks::webhook::WebhookConfig::new(args.webhooks.clone(), format);
        cfg.state_path = Some(args.webhook_state.clone());
        handles.push(sinks::webhook::WebhookSink::spawn(cfg, store.clone())?);
        tracing::info!(endpoints = args.webhooks.len(), "webhook sink started");
    }
    if let Some(dir) = &args.sink_dir {
        let cfg = sinks::file::FileSinkConfig::new(dir.clone());
        handles.push(sinks::file::FileSink::spawn(cfg, store.clone())?);
        tracing::info!(dir = %dir.display(), "file sink started");
    }
    drop(_guard);
    Ok((rt, handles))
}

fn spawn_source(
    args: &RunArgs,
    io: sources::SourceIo,
    status: EngineStatus,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let source = args.source.clone();
    let dead = Arc::new(match &args.dead_letters {
        Some(p) => sources::deadletter::DeadLetters::new(Some(p), 1000)
            .with_context(|| format!("opening dead-letter file {}", p.display()))?,
        None => sources::deadletter::DeadLetters::in_memory(1000),
    });
    let args = args.clone();
    let handle = std::thread::Builder::new()
        .name("source".into())
        .spawn(move || {
            status.set_connected(true);
            let result: anyhow::Result<()> = if source == "embedded" {
                embedded(&args, io)
            } else if let Some(path) = source.strip_prefix("file:") {
                sources::file::FileSource::new(path)
                    .with_dead_letters(dead)
                    .run(io)
                    .map(|stats| tracing::info!(?stats, "file source finished; views stay served"))
                    .map_err(Into::into)
            } else if source.starts_with("kafka://") {
                sources::kafka::KafkaConfig::from_url(&source)
                    .and_then(|mut cfg| {
                        cfg.prefix = args.topic_prefix.clone();
                        cfg.group_id = args.group.clone();
                        cfg.dead_letters = dead;
                        sources::kafka::KafkaSource::new(cfg).run(io)
                    })
                    .map(|stats| tracing::info!(?stats, "Kafka source stopped"))
                    .map_err(Into::into)
            } else if source.starts_with("postgres://") || source.starts_with("postgresql://") {
                let mut cfg = sources::postgres::PostgresConfig::new(source.clone());
                cfg.publication = args.publication.clone();
                cfg.slot = args.slot.clone();
                // The views live in memory only: every start must re-read a consistent snapshot,
                // so an existing slot (from an earlier run) is dropped and created again.
                cfg.snapshot = sources::postgres::SnapshotMode::Recreate;
                sources::postgres::PostgresSource::new(cfg)
                    .run(io)
                    .map_err(Into::into)
            } else {
                Err(anyhow::anyhow!(
                "unknown --source {:?}: use embedded, file:PATH, kafka://host:port or postgres://…",
                redact(&source)
            ))
            };
            if let Err(e) = result {
                tracing::error!("source failed: {e:#}");
                status.set_error(format!("{e:#}"));
            }
            status.set_connected(false);
        })?;
    Ok(handle)
}

/// The embedded default: datagen's shopper model, in process, at `--embedded-rate` actions/s.
fn embedded(args: &RunArgs, io: sources::SourceIo) -> anyhow::Result<()> {
    let mut shop = datagen::model::Shop::new(datagen::model::ShopConfig {
        seed: args.embedded_seed,
        categories: 10,
        products: args.embedded_products.max(1),
        customers: args.embedded_customers.max(1),
    });
    let send = |tx: Transaction| {
        io.out
            .send(tx)
            .map_err(|_| anyhow::anyhow!("engine stopped"))
    };
    for tx in shop.initial_load() {
        send(tx)?;
    }
    let period = Duration::from_secs_f64(1.0 / args.embedded_rate.max(0.01));
    let mut next = Instant::now();
    while !io.stopping() {
        let now = Micros::now();
        let mut tx = shop.step(now);
        tx.received_at = now;
        send(tx)?;
        next += period;
        let wait = next.saturating_duration_since(Instant::now());
        if wait.is_zero() {
            // Fell behind (slow machine): don't try to catch up in a burst.
            next = Instant::now();
        } else {
            std::thread::sleep(wait);
        }
        while io.applied.try_recv().is_ok() {}
    }
    Ok(())
}

fn wait_for_ctrl_c() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                r = tokio::signal::ctrl_c() => r,
                _ = term.recv() => Ok(()),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await
        }
    })?;
    Ok(())
}

/// A source or database URL without its password, for logs and /health.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
