//! Webhook sink: fraud alerts to chat/HTTP endpoints (`--webhook URL`, repeatable).
//!
//! Messages, for the `fraud_alerts` view only (identity of an alert = its row key,
//! [`ViewRow::key`]):
//! - **alert**: a key appears;
//! - **resolved**: a key is retracted with no replacement in the same engine time;
//! - **update policy**: a key whose row changes (an order burst grows, a high-value order's
//!   total is corrected but stays above the threshold) sends **no** message: the alert is still
//!   the same open alert. The state keeps the newest row, so the eventual "resolved" message
//!   shows the latest figures.
//!
//! Formats: Discord `{"content": text}`, Slack `{"text": text}`, generic
//! `{"event":"alert"|"resolved","alert":{row},"as_of":{…}}`.
//!
//! Delivery: one task per endpoint behind a bounded queue, so a failing endpoint never stalls the
//! feed consumer. Each attempt has a timeout; failures (connection errors, timeouts, 408, 429,
//! 5xx) retry with exponential backoff and full jitter (429 honours `Retry-After`); other 4xx
//! are permanent (counted, logged, given up). A token bucket limits the rate per endpoint. If a
//! queue overflows, events are dropped (counted) and the endpoint later **resyncs**: it diffs
//! what it has delivered against the current open alerts and sends the difference.
//!
//! Exactly-once-ish across restarts: per endpoint, the alerts delivered and not yet resolved are
//! kept in a JSON state file (`--webhook-state PATH`, written atomically: temp file + fsync +
//! rename, after every delivery). An "alert" for a key already delivered is not sent again; a
//! "resolved" for a key never delivered is not sent. At startup the first snapshot brings every
//! open alert (already-sent ones are skipped); after `startup_settle` (the engine replays its
//! source after a restart, so an empty early snapshot does not mean "all resolved") alerts that
//! were delivered but are no longer open get their "resolved" message. The window between a
//! delivery and the state write can at worst repeat one message after a crash.
//!
//! Secrets: webhook URLs carry tokens. They are never logged (errors are stripped of their URL);
//! logs and metrics name only the host. The state file identifies endpoints by a hash of the
//! URL.

use crate::{backoff, metrics, FeedReader, SinkHandle, Step};
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};
use view_store::{AsOf, ViewName, ViewRow, ViewStore};

const SINK: &str = "webhook";

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("webhook #{index}: not a valid http(s) URL")]
    BadUrl { index: usize },
    #[error("unknown webhook format {0:?}: use discord, slack or json")]
    Format(String),
    #[error("reading webhook state {path}: {source}")]
    StateRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("webhook state {path} is not valid: {source}")]
    StateParse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("building the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum WebhookFormat {
    Discord,
    Slack,
    Json,
}

impl FromStr for WebhookFormat {
    type Err = WebhookError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "discord" => Ok(WebhookFormat::Discord),
            "slack" => Ok(WebhookFormat::Slack),
            "json" | "generic" => Ok(WebhookFormat::Json),
            _ => Err(WebhookError::Format(s.to_string())),
        }
    }
}

#[derive(Clone, Debug)]
pub struct WebhookConfig {
    pub urls: Vec<String>,
    pub format: WebhookFormat,
    /// Where delivered alerts are remembered across restarts (`None`: in memory only).
    pub state_path: Option<PathBuf>,
    /// Per-request timeout.
    pub timeout: Duration,
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Events queued per endpoint before overflow (then resync).
    pub queue_capacity: usize,
    /// Token bucket per endpoint: sustained messages per second and burst.
    pub rate_per_sec: f64,
    pub burst: u32,
    /// After startup, wait this long before resolving alerts that were delivered before the
    /// restart but are not open now (the engine may still be catching up).
    pub startup_settle: Duration,
    /// How long `shutdown` keeps delivering what is queued.
    pub shutdown_timeout: Duration,
}

impl WebhookConfig {
    pub fn new(urls: Vec<String>, format: WebhookFormat) -> Self {
        WebhookConfig {
            urls,
            format,
            state_path: None,
            timeout: Duration::from_secs(10),
            retry_base: Duration::from_millis(500),
            retry_max: Duration::from_secs(60),
            queue_capacity: 10_000,
            // Discord allows about 5 requests per 2 s per webhook.
            rate_per_sec: 2.0,
            burst: 5,
            startup_settle: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Kind {
    Alert,
    Resolved,
    /// The open alert's row changed: remember the newest row, send nothing.
    Update,
}

#[derive(Clone, Debug)]
struct Event {
    kind: Kind,
    key: String,
    alert: Value,
    as_of: Value,
}

/// FNV-1a: a stable, dependency-free hash so the state file can name an endpoint without
/// storing its secret URL.
fn endpoint_id(url: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in url.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("fnv1a:{h:016x}")
}

/// `host[:port]` of a URL, the only part of it that may be logged.
pub fn redacted_host(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => "<no host>".into(),
        },
        Err(_) => "<invalid url>".into(),
    }
}

/// The persisted state: per endpoint id, open alerts delivered (key → newest row).
#[derive(Default)]
struct State {
    path: Option<PathBuf>,
    endpoints: BTreeMap<String, BTreeMap<String, Value>>,
}

impl State {
    fn load(path: Option<PathBuf>) -> Result<State, WebhookError> {
        let mut st = State {
            path,
            endpoints: BTreeMap::new(),
        };
        let Some(p) = &st.path else {
            return Ok(st);
        };
        let text = match std::fs::read_to_string(p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(st),
            Err(source) => {
                return Err(WebhookError::StateRead {
                    path: p.clone(),
                    source,
                })
            }
        };
        let v: Value = serde_json::from_str(&text).map_err(|source| WebhookError::StateParse {
            path: p.clone(),
            source,
        })?;
        if let Some(eps) = v.get("endpoints").and_then(Value::as_object) {
            for (id, ep) in eps {
                let alerts = ep
                    .get("alerts")
                    .and_then(Value::as_object)
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default();
                st.endpoints.insert(id.clone(), alerts);
            }
        }
        Ok(st)
    }

    fn save(&self) {
        let Some(p) = &self.path else {
            return;
        };
        let eps: serde_json::Map<String, Value> = self
            .endpoints
            .iter()
            .map(|(id, alerts)| {
                let a: serde_json::Map<String, Value> =
                    alerts.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                (id.clone(), json!({ "alerts": a }))
            })
            .collect();
        let doc = json!({"version": 1, "endpoints": eps});
        if let Err(e) = write_atomically(p, doc.to_string().as_bytes()) {
            metrics::errors(SINK).inc();
            tracing::error!(path = %p.display(), error = %e, "writing webhook state failed");
        }
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind; keep going.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Default)]
struct Queue {
    events: VecDeque<Event>,
    /// Events were dropped on overflow: diff delivered vs open alerts once the queue is empty.
    resync: bool,
    /// When to resolve alerts delivered before a restart that are no longer open.
    startup_reconcile_at: Option<Instant>,
    closed: bool,
    shutdown_deadline: Option<Instant>,
}

struct Endpoint {
    id: String,
    url: String,
    host: String,
    queue: Mutex<Queue>,
    wake: Notify,
}

struct Shared {
    cfg: WebhookConfig,
    store: ViewStore,
    client: reqwest::Client,
    /// Open alerts according to the feed: key → row.
    open: Mutex<BTreeMap<String, Value>>,
    state: Mutex<State>,
}

impl Shared {
    fn push(&self, ep: &Endpoint, ev: Event) {
        let mut q = lock(&ep.queue);
        if q.events.len() >= self.cfg.queue_capacity {
            metrics::errors(SINK).inc();
            if !q.resync {
                tracing::warn!(endpoint = %ep.host, "webhook queue full; dropping events until it drains, then resyncing");
            }
            q.resync = true;
        } else {
            q.events.push_back(ev);
        }
        drop(q);
        ep.wake.notify_one();
    }
}

pub struct WebhookSink;

impl WebhookSink {
    /// Starts the sink on the current tokio runtime: one feed task and one delivery task per
    /// endpoint.
    pub fn spawn(cfg: WebhookConfig, store: ViewStore) -> Result<SinkHandle, WebhookError> {
        for (index, u) in cfg.urls.iter().enumerate() {
            match reqwest::Url::parse(u) {
                Ok(p) if p.scheme() == "http" || p.scheme() == "https" => {}
                _ => return Err(WebhookError::BadUrl { index }),
            }
        }
        let state = State::load(cfg.state_path.clone())?;
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .build()
            .map_err(WebhookError::Client)?;
        let endpoints: Vec<Arc<Endpoint>> = cfg
            .urls
            .iter()
            .map(|u| {
                Arc::new(Endpoint {
                    id: endpoint_id(u),
                    url: u.clone(),
                    host: redacted_host(u),
                    queue: Mutex::new(Queue::default()),
                    wake: Notify::new(),
                })
            })
            .collect();
        let (stop_tx, stop_rx) = watch::channel(false);
        let reader = FeedReader::new(SINK, store.clone(), Some(ViewName::FraudAlerts), stop_rx);
        let shared = Arc::new(Shared {
            cfg,
            store,
            client,
            open: Mutex::new(BTreeMap::new()),
            state: Mutex::new(state),
        });
        for ep in &endpoints {
            tracing::info!(endpoint = %ep.host, "webhook endpoint configured");
        }
        let task = tokio::spawn(async move {
            let workers: Vec<_> = endpoints
                .iter()
                .map(|ep| tokio::spawn(deliver_loop(shared.clone(), ep.clone())))
                .collect();
            consume(&shared, &endpoints, reader).await;
            let deadline = Instant::now() + shared.cfg.shutdown_timeout;
            for ep in &endpoints {
                let mut q = lock(&ep.queue);
                q.closed = true;
                q.shutdown_deadline = Some(deadline);
                drop(q);
                ep.wake.notify_one();
            }
            for w in workers {
                if let Err(e) = w.await {
                    tracing::error!(error = %e, "webhook delivery task panicked");
                }
            }
            tracing::info!("webhook sink stopped");
        });
        Ok(SinkHandle::new(SINK, stop_tx, task))
    }
}

/// The feed consumer: turns fraud_alerts changes into events. Never waits on an endpoint.
async fn consume(shared: &Shared, endpoints: &[Arc<Endpoint>], mut reader: FeedReader) {
    let mut first = true;
    loop {
        let mut events = Vec::new();
        match reader.next().await {
            Step::Stop => return,
            Step::Snapshot { as_of, rows, .. } => {
                let now: BTreeMap<String, Value> = rows
                    .iter()
                    .filter(|r| r.view() == ViewName::FraudAlerts)
                    .map(|r| (r.key().to_string(), r.to_json()))
                    .collect();
                let a = as_of.to_json();
                let mut open = lock(&shared.open);
                if !first {
                    // After a re-subscription: what closed while we were not listening.
                    for (k, v) in open.iter() {
                        if !now.contains_key(k) {
                            events.push(ev(Kind::Resolved, k, v, &a));
                        }
                    }
                }
                for (k, v) in &now {
                    match open.get(k) {
                        None => events.push(ev(Kind::Alert, k, v, &a)),
                        Some(old) if old != v => events.push(ev(Kind::Update, k, v, &a)),
                        Some(_) => {}
                    }
                }
                *open = now;
            }
            Step::Changes(b) => changes(shared, b.as_of, &b.changes, &mut events),
        }
        for ep in endpoints {
            for e in &events {
                shared.push(ep, e.clone());
            }
            if first {
                lock(&ep.queue).startup_reconcile_at =
                    Some(Instant::now() + shared.cfg.startup_settle);
                ep.wake.notify_one();
            }
        }
        first = false;
    }
}

fn ev(kind: Kind, key: &str, alert: &Value, as_of: &Value) -> Event {
    Event {
        kind,
        key: key.to_string(),
        alert: alert.clone(),
        as_of: as_of.clone(),
    }
}

/// Nets one engine time per alert key into alert / resolved / update events.
fn changes(shared: &Shared, as_of: AsOf, changes: &[(ViewRow, i64)], events: &mut Vec<Event>) {
    let mut per_key: BTreeMap<String, Vec<(&ViewRow, i64)>> = BTreeMap::new();
    for (row, diff) in changes {
        if row.view() != ViewName::FraudAlerts {
            continue;
        }
        let e = per_key.entry(row.key().to_string()).or_default();
        match e.iter_mut().find(|(r, _)| *r == row) {
            Some((_, d)) => *d += diff,
            None => e.push((row, *diff)),
        }
    }
    if per_key.is_empty() {
        return;
    }
    let a = as_of.to_json();
    let mut open = lock(&shared.open);
    for (key, rows) in per_key {
        let inserted = rows.iter().rev().find(|(_, d)| *d > 0).map(|(r, _)| *r);
        let retracted = rows.iter().any(|(_, d)| *d < 0);
        if let Some(row) = inserted {
            let v = row.to_json();
            let kind = if open.contains_key(&key) {
                Kind::Update
            } else {
                Kind::Alert
            };
            events.push(ev(kind, &key, &v, &a));
            open.insert(key, v);
        } else if retracted {
            if let Some(old) = open.remove(&key) {
                events.push(ev(Kind::Resolved, &key, &old, &a));
            }
        }
    }
}

enum Next {
    Event(Event),
    Reconcile { appear: bool },
    Exit,
}

async fn next_event(ep: &Endpoint) -> Next {
    loop {
        let wait_until = {
            let mut q = lock(&ep.queue);
            if let Some(e) = q.events.pop_front() {
                return Next::Event(e);
            }
            if q.resync {
                q.resync = false;
                return Next::Reconcile { appear: true };
            }
            if q.closed {
                // Queue empty: any pending startup reconcile is moot at shutdown.
                return Next::Exit;
            }
            match q.startup_reconcile_at {
                Some(t) if Instant::now() >= t => {
                    q.startup_reconcile_at = None;
                    return Next::Reconcile { appear: false };
                }
                t => t,
            }
        };
        match wait_until {
            Some(t) => {
                let _ = tokio::time::timeout_at(t.into(), ep.wake.notified()).await;
            }
            None => ep.wake.notified().await,
        }
    }
}

async fn deliver_loop(shared: Arc<Shared>, ep: Arc<Endpoint>) {
    let mut bucket = TokenBucket::new(shared.cfg.rate_per_sec, shared.cfg.burst);
    loop {
        let ev = match next_event(&ep).await {
            Next::Exit => return,
            Next::Event(e) => e,
            Next::Reconcile { appear } => {
                reconcile(&shared, &ep, appear);
                continue;
            }
        };
        let delivered = {
            let st = lock(&shared.state);
            st.endpoints
                .get(&ep.id)
                .is_some_and(|m| m.contains_key(&ev.key))
        };
        match (ev.kind, delivered) {
            (Kind::Alert | Kind::Update, true) => {
                // Already told (before a restart, or an update): only remember the newest row.
                let mut st = lock(&shared.state);
                let m = st.endpoints.entry(ep.id.clone()).or_default();
                if m.get(&ev.key) != Some(&ev.alert) {
                    m.insert(ev.key.clone(), ev.alert.clone());
                    st.save();
                }
            }
            (Kind::Update, false) | (Kind::Resolved, false) => {}
            (Kind::Alert | Kind::Resolved, _) => {
                let outcome = send(&shared, &ep, &mut bucket, &ev).await;
                let record = match outcome {
                    Outcome::Delivered => true,
                    // Given up on a resolve permanently refused: do not retry it forever either.
                    Outcome::Permanent => ev.kind == Kind::Resolved,
                    Outcome::Abandoned => false,
                };
                if record {
                    let mut st = lock(&shared.state);
                    let m = st.endpoints.entry(ep.id.clone()).or_default();
                    if ev.kind == Kind::Alert {
                        m.insert(ev.key.clone(), ev.alert.clone());
                    } else {
                        m.remove(&ev.key);
                    }
                    st.save();
                }
            }
        }
    }
}

/// Queues what differs between the alerts delivered to `ep` and the open alerts: resolves for
/// delivered ones no longer open, and (when `appear`) alerts for open ones never delivered.
fn reconcile(shared: &Shared, ep: &Endpoint, appear: bool) {
    let open = lock(&shared.open).clone();
    let delivered = lock(&shared.state)
        .endpoints
        .get(&ep.id)
        .cloned()
        .unwrap_or_default();
    let a = shared.store.as_of().to_json();
    let mut evs = Vec::new();
    for (k, v) in &delivered {
        if !open.contains_key(k) {
            evs.push(ev(Kind::Resolved, k, v, &a));
        }
    }
    if appear {
        for (k, v) in &open {
            if !delivered.contains_key(k) {
                evs.push(ev(Kind::Alert, k, v, &a));
            }
        }
    }
    if !evs.is_empty() {
        tracing::info!(endpoint = %ep.host, events = evs.len(), "webhook reconcile");
    }
    for e in evs {
        shared.push(ep, e);
    }
}

enum Outcome {
    Delivered,
    /// The endpoint refused the message for good (4xx other than 408/429).
    Permanent,
    /// Shutdown deadline passed before delivery.
    Abandoned,
}

async fn send(shared: &Shared, ep: &Endpoint, bucket: &mut TokenBucket, ev: &Event) -> Outcome {
    let body = render(shared.cfg.format, ev);
    let mut attempt = 0u32;
    loop {
        bucket.take().await;
        let wait = match shared.client.post(&ep.url).json(&body).send().await {
            Ok(resp) if resp.status().is_success() => {
                metrics::messages(SINK, &ep.host).inc();
                tracing::debug!(endpoint = %ep.host, kind = ?ev.kind, key = %ev.key, "webhook delivered");
                return Outcome::Delivered;
            }
            Ok(resp) => {
                let status = resp.status();
                metrics::errors(SINK).inc();
                let retryable = status.is_server_error()
                    || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                    || status == reqwest::StatusCode::REQUEST_TIMEOUT;
                if !retryable {
                    tracing::error!(endpoint = %ep.host, status = %status, key = %ev.key, "webhook refused the message; giving up on it");
                    return Outcome::Permanent;
                }
                tracing::warn!(endpoint = %ep.host, status = %status, attempt, "webhook delivery failed; retrying");
                let retry_after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|s| s.trim().parse::<f64>().ok())
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(|s| Duration::from_secs_f64(s).min(shared.cfg.retry_max));
                retry_after.unwrap_or_else(|| {
                    backoff(attempt, shared.cfg.retry_base, shared.cfg.retry_max)
                })
            }
            Err(e) => {
                metrics::errors(SINK).inc();
                // `without_url`: the URL is a secret.
                tracing::warn!(endpoint = %ep.host, error = %e.without_url(), attempt, "webhook delivery failed; retrying");
                backoff(attempt, shared.cfg.retry_base, shared.cfg.retry_max)
            }
        };
        let deadline = lock(&ep.queue).shutdown_deadline;
        if let Some(d) = deadline {
            if Instant::now() + wait >= d {
                metrics::errors(SINK).inc();
                tracing::error!(endpoint = %ep.host, key = %ev.key, "webhook sink shutting down with an undelivered message");
                return Outcome::Abandoned;
            }
        }
        tokio::time::sleep(wait).await;
        attempt = attempt.saturating_add(1);
    }
}

/// The message body for an event in the configured format.
fn render(format: WebhookFormat, ev: &Event) -> Value {
    match format {
        WebhookFormat::Json => json!({
            "event": if ev.kind == Kind::Resolved { "resolved" } else { "alert" },
            "alert": ev.alert,
            "as_of": ev.as_of,
        }),
        WebhookFormat::Discord => json!({ "content": text(ev) }),
        WebhookFormat::Slack => json!({ "text": text(ev) }),
    }
}

/// One line of human text for chat formats.
fn text(ev: &Event) -> String {
    let a = &ev.alert;
    let s = |k: &str| match a.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "?".into(),
        Some(v) => v.to_string(),
    };
    let rule = s("rule");
    let desc = match rule.as_str() {
        "high_value" => format!(
            "order {} of customer {}: total {} at {}",
            s("order_id"),
            s("customer_id"),
            s("amount"),
            s("start")
        ),
        "frequent_orders" => format!(
            "customer {}: {} orders in the minute from {}",
            s("customer_id"),
            s("order_count"),
            s("start")
        ),
        "order_burst" => format!(
            "customer {}: {} orders within 60 s from {}",
            s("customer_id"),
            s("order_count"),
            s("start")
        ),
        "repeated_amount" => format!(
            "customer {}: {} orders of {} within 10 min from {}",
            s("customer_id"),
            s("order_count"),
            s("amount"),
            s("start")
        ),
        _ => a.to_string(),
    };
    match ev.kind {
        Kind::Resolved => format!("✅ Resolved fraud alert ({rule}): {desc}"),
        _ => format!("🚨 Fraud alert ({rule}): {desc}"),
    }
}

/// Token bucket: `rate` tokens per second, at most `burst` saved up.
struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            rate: if rate > 0.0 { rate } else { f64::INFINITY },
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    async fn take(&mut self) {
        loop {
            let now = Instant::now();
            let dt = now.duration_since(self.last).as_secs_f64();
            self.last = now;
            self.tokens = (self.tokens + dt * self.rate).min(self.burst);
            if self.tokens >= 1.0 {
                self.tokens -= 1.0;
                return;
            }
            let need = (1.0 - self.tokens) / self.rate;
            tokio::time::sleep(Duration::from_secs_f64(need.min(60.0))).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_is_redacted_and_ids_are_stable() {
        let u = "https://discord.com/api/webhooks/123/SECRET-TOKEN";
        assert_eq!(redacted_host(u), "discord.com");
        assert_eq!(redacted_host("http://127.0.0.1:9/x?token=s"), "127.0.0.1:9");
        assert_eq!(endpoint_id(u), endpoint_id(u));
        assert!(!endpoint_id(u).contains("SECRET"));
    }

    #[test]
    fn chat_text() {
        let e = Event {
            kind: Kind::Resolved,
            key: "k".into(),
            alert: json!({"rule":"high_value","customer_id":1,"order_id":7,"start":"2024-01-01T00:00:00Z","order_count":1,"amount":"20000000.00"}),
            as_of: Value::Null,
        };
        assert_eq!(
            render(WebhookFormat::Slack, &e),
            json!({"text": "✅ Resolved fraud alert (high_value): order 7 of customer 1: total 20000000.00 at 2024-01-01T00:00:00Z"})
        );
        assert_eq!(render(WebhookFormat::Json, &e)["event"], "resolved");
    }
}
