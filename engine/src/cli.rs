//! Command-line interface of the `engine` binary (clap, with environment-variable fallbacks).

use crate::views::{FraudConfig, ViewsConfig};
use crate::EngineConfig;
use clap::{Args, Parser, Subcommand};
use sources::Money;
use std::net::SocketAddr;
use std::path::PathBuf;
use view_store::Window;

#[derive(Parser, Debug)]
#[command(
    name = "engine",
    version,
    about = "Live, exact e-commerce views on differential dataflow.\n\nWith no flags: the embedded default (an in-process shopper simulator feeds the views; dashboard at http://127.0.0.1:8080/)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Replay a JSONL file of Debezium events to the end and dump every view (SPEC §7).
    Replay(ReplayArgs),
    /// Inspect Kafka topics by hand (Debian's kcat cannot talk to every broker).
    Topics {
        #[command(subcommand)]
        command: TopicsCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum TopicsCommand {
    /// List topics with partitions and approximate message counts.
    List {
        #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
        brokers: String,
    },
    /// Print a topic's messages (keys, values, tombstones; Debezium envelopes summarised).
    Tail {
        #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
        brokers: String,
        #[arg(long)]
        topic: String,
        /// Start from the earliest offset instead of the end.
        #[arg(long)]
        from_beginning: bool,
        /// Stop after this many messages.
        #[arg(long)]
        max: Option<usize>,
    },
}

#[derive(Args, Debug, Clone)]
pub struct ReplayArgs {
    /// The JSONL file (one Debezium message value per line, or {topic,key,value} lines).
    pub file: PathBuf,
    /// Directory to write `<view>.json` into.
    #[arg(long)]
    pub dump: PathBuf,
    /// Write malformed lines (dead letters) to this JSONL file.
    #[arg(long)]
    pub dead_letters: Option<PathBuf>,
    #[command(flatten)]
    pub views: ViewArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// The views' settings (SPEC §4).
#[derive(Args, Debug, Clone)]
pub struct ViewArgs {
    /// Tumbling window sizes, comma-separated (ms, s, m, h, d).
    #[arg(long, env = "SHOPSTREAM_WINDOWS", default_value = "1m,5m,1h", value_delimiter = ',', value_parser = parse_window)]
    pub windows: Vec<Window>,
    /// Ranks kept by top_products and trending_products.
    #[arg(long, env = "SHOPSTREAM_TOP_N", default_value_t = 5)]
    pub top_n: usize,
    /// Ranks kept by also_bought and recommendations.
    #[arg(long, env = "SHOPSTREAM_TOP_K", default_value_t = 10)]
    pub top_k: usize,
    /// Windowed views keep windows ending after (highest order_date seen − retention); `none` keeps all.
    #[arg(long, env = "SHOPSTREAM_RETENTION", default_value = "7d", value_parser = parse_retention)]
    pub retention: Retention,
    /// high_value: alert for a live order whose total is strictly above this.
    #[arg(long, env = "SHOPSTREAM_HIGH_VALUE", default_value = "10000000.00", value_parser = parse_money)]
    pub high_value: Money,
    /// frequent_orders: alert when a customer has more than this many live orders in one 1-minute window.
    #[arg(long, default_value_t = 5)]
    pub frequent_orders: i64,
    /// order_burst: alert when a customer has more than this many live orders in a closed 60 s interval.
    #[arg(long, default_value_t = 5)]
    pub burst_orders: i64,
    /// repeated_amount: alert at this many live orders of one customer with the same total within 10 minutes.
    #[arg(long, default_value_t = 3)]
    pub repeated_orders: i64,
    /// Orders with more distinct products than this contribute no co-purchase pairs.
    #[arg(long, default_value_t = 100)]
    pub basket_cap: usize,
}

/// Timely workers and cluster.
#[derive(Args, Debug, Clone)]
pub struct ClusterArgs {
    /// Timely worker threads (per process).
    #[arg(long, short = 'w', env = "SHOPSTREAM_WORKERS", default_value_t = 1)]
    pub workers: usize,
    /// Number of processes in a timely cluster.
    #[arg(long, default_value_t = 1)]
    pub processes: usize,
    /// This process' index in the cluster (0 reads the source and serves HTTP).
    #[arg(long, default_value_t = 0)]
    pub process_id: usize,
    /// File with one `host:port` per process.
    #[arg(long)]
    pub hostfile: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Where changes come from: `embedded` (in-process shopper simulator), `file:PATH`,
    /// `kafka://host:port`, or `postgres://user:pass@host/db`.
    #[arg(long, env = "SHOPSTREAM_SOURCE", default_value = "embedded")]
    pub source: String,
    /// Kafka: topic prefix of the Debezium connector.
    #[arg(long, env = "SHOPSTREAM_TOPIC_PREFIX", default_value = "ecommerce-cdc")]
    pub topic_prefix: String,
    /// Kafka: consumer group.
    #[arg(long, env = "SHOPSTREAM_GROUP", default_value = "shopstream")]
    pub group: String,
    /// Postgres: publication to read (created when missing).
    #[arg(long, env = "SHOPSTREAM_PUBLICATION", default_value = "shop_pub")]
    pub publication: String,
    /// Postgres: logical replication slot (created when missing).
    #[arg(long, env = "SHOPSTREAM_SLOT", default_value = "shopstream_slot")]
    pub slot: String,
    /// Embedded simulator: shopper actions per second.
    #[arg(long, env = "SHOPSTREAM_EMBEDDED_RATE", default_value_t = 50.0)]
    pub embedded_rate: f64,
    /// Embedded simulator: seed, customers and products.
    #[arg(long, default_value_t = 42)]
    pub embedded_seed: u64,
    #[arg(long, default_value_t = 500)]
    pub embedded_customers: usize,
    #[arg(long, default_value_t = 200)]
    pub embedded_products: usize,
    /// Write malformed events (dead letters) to this JSONL file.
    #[arg(long, env = "SHOPSTREAM_DEAD_LETTERS")]
    pub dead_letters: Option<PathBuf>,
    /// HTTP listen address.
    #[arg(long, env = "SHOPSTREAM_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Bearer token required on every route but /health.
    #[arg(long, env = "SHOPSTREAM_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// Allowed CORS origins (repeatable; `*` for any).
    #[arg(
        long = "cors-origin",
        env = "SHOPSTREAM_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,
    /// Database for the table endpoints (defaults to the source URL when it is postgres://).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Kafka sink brokers (`host:port`): view changes as keyed upserts with tombstones.
    #[arg(long, env = "SHOPSTREAM_KAFKA_SINK")]
    pub kafka_sink: Option<String>,
    /// Webhook URL for fraud alerts (repeatable). A secret: never logged.
    #[arg(
        long = "webhook",
        env = "SHOPSTREAM_WEBHOOKS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub webhooks: Vec<String>,
    /// Webhook message format: discord, slack or json.
    #[arg(long, env = "SHOPSTREAM_WEBHOOK_FORMAT", default_value = "json")]
    pub webhook_format: String,
    /// File remembering which alerts were sent (no duplicates after a restart).
    #[arg(
        long,
        env = "SHOPSTREAM_WEBHOOK_STATE",
        default_value = "shopstream-webhooks.json"
    )]
    pub webhook_state: PathBuf,
    /// Directory for JSONL files of every view change.
    #[arg(long, env = "SHOPSTREAM_SINK_DIR")]
    pub sink_dir: Option<PathBuf>,
    #[command(flatten)]
    pub views: ViewArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Retention(pub Option<i64>);

fn parse_window(s: &str) -> Result<Window, String> {
    match Window::parse(s)? {
        Window::All => Err("`all` is always computed; list tumbling sizes only".into()),
        w => Ok(w),
    }
}

fn parse_retention(s: &str) -> Result<Retention, String> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(Retention(None));
    }
    match Window::parse(s)? {
        Window::Size(us) => Ok(Retention(Some(us))),
        Window::All => Err("retention: a duration like 7d, 12h, or none".into()),
    }
}

fn parse_money(s: &str) -> Result<Money, String> {
    Money::parse_decimal(s).map_err(|e| e.to_string())
}

impl ViewArgs {
    pub fn views_config(&self) -> ViewsConfig {
        let mut windows = self.windows.clone();
        windows.sort();
        windows.dedup();
        ViewsConfig {
            windows,
            top_n: self.top_n,
            fraud: FraudConfig {
                high_value: self.high_value,
                frequent_orders: self.frequent_orders,
                burst_orders: self.burst_orders,
                repeated_orders: self.repeated_orders,
                ..FraudConfig::default()
            },
            also_bought_k: self.top_k,
            basket_cap: self.basket_cap,
        }
    }
}

impl ClusterArgs {
    pub fn engine_config(&self, views: &ViewArgs) -> anyhow::Result<EngineConfig> {
        let hosts = match &self.hostfile {
            Some(p) => std::fs::read_to_string(p)
                .map_err(|e| anyhow::anyhow!("reading --hostfile {}: {e}", p.display()))?
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from)
                .collect(),
            None => Vec::new(),
        };
        if self.processes > 1 && hosts.is_empty() {
            anyhow::bail!("--processes {} needs --hostfile", self.processes);
        }
        Ok(EngineConfig {
            workers: self.workers.max(1),
            processes: self.processes.max(1),
            process_id: self.process_id,
            hosts,
            views: views.views_config(),
            retention: views.retention.0,
            ..EngineConfig::default()
        })
    }
}

/// Micros of a retention, for printing.
pub fn describe_retention(r: Option<i64>) -> String {
    match r {
        None => "none".into(),
        Some(us) => Window::Size(us).label(),
    }
}
