//! The HTTP API of the running `engine` binary, over real HTTP (SPEC §6, issue #5).
//!
//! `api/tests/` feed a `ViewStore` by hand; these tests start the real binary
//! (`CARGO_BIN_EXE_engine`, `--listen 127.0.0.1:0`, the bound address read from its log) and
//! talk to it as a client would:
//! - the embedded default (no source flags): every route's shape, filters, limits, 400s that
//!   name the parameter, JSON 404/405s, `?min_lsn=` waits and their 504, `/metrics` counters that
//!   move, and SSE change streams whose snapshot + changes, applied in order, reproduce the view
//!   as read afterwards;
//! - a private Postgres database (`datagen` init/generate/simulate) with the built-in change
//!   capture: table endpoints (aliases, limit/offset, `/{table}/{id}`), no password hash in any
//!   response, and read-your-writes: a committed order is in the first answer of a view read with
//!   `?min_lsn=pg_current_wal_lsn()`.
//!
//! Every wait polls against a deadline (2-core CI machines are slow); the engine child is
//! stopped (SIGTERM, then SIGKILL) on drop, the database and its slot dropped on drop.

use futures_util::StreamExt;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Generous: a cold 2-core CI machine with other test binaries running.
const START_TIMEOUT: Duration = Duration::from_secs(90);
const VIEW_TIMEOUT: Duration = Duration::from_secs(60);

// ---- the engine child ----------------------------------------------------------------------

struct RunningEngine {
    child: Child,
    base: String,
    log: Arc<Mutex<Vec<String>>>,
    http: reqwest::Client,
    /// Every response body read (for the "no password hash anywhere" check).
    bodies: Mutex<Vec<(String, String)>>,
}

impl RunningEngine {
    /// Starts `engine ARGS --listen 127.0.0.1:0` and waits for its HTTP address.
    fn start(args: &[&str]) -> RunningEngine {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_engine"));
        cmd.args(args)
            .args(["--listen", "127.0.0.1:0"])
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // The flags' environment fallbacks must not leak in from the caller's environment.
        for (k, _) in std::env::vars() {
            if k.starts_with("SHOPSTREAM_") || k == "DATABASE_URL" {
                cmd.env_remove(k);
            }
        }
        let mut child = cmd.spawn().expect("spawning the engine binary");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().expect("piped stderr");
        {
            let log = log.clone();
            std::thread::spawn(move || {
                const MARK: &str = "HTTP API and dashboard on http://";
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(i) = line.find(MARK) {
                        let rest = &line[i + MARK.len()..];
                        let addr: String = rest.chars().take_while(|c| *c != '/').collect();
                        let _ = tx.send(addr);
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        let deadline = Instant::now() + START_TIMEOUT;
        let addr = loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(a) => break a,
                Err(_) => {
                    if let Ok(Some(st)) = child.try_wait() {
                        panic!(
                            "engine exited ({st}) before serving HTTP:\n{}",
                            log.lock().unwrap().join("\n")
                        );
                    }
                    if Instant::now() > deadline {
                        let _ = child.kill();
                        panic!(
                            "engine did not announce its HTTP address within {START_TIMEOUT:?}:\n{}",
                            log.lock().unwrap().join("\n")
                        );
                    }
                }
            }
        };
        RunningEngine {
            child,
            base: format!("http://{addr}"),
            log,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("http client"),
            bodies: Mutex::new(Vec::new()),
        }
    }

    fn log_tail(&self) -> String {
        let log = self.log.lock().unwrap();
        let from = log.len().saturating_sub(40);
        log[from..].join("\n")
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// GET → (status, content type, body text).
    async fn get_raw(&self, path: &str) -> (u16, String, String) {
        let r = self
            .http
            .get(self.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.log_tail()));
        let code = r.status().as_u16();
        let ct = r
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = r.text().await.expect("body");
        self.bodies
            .lock()
            .unwrap()
            .push((path.to_string(), text.clone()));
        (code, ct, text)
    }

    /// GET → (status, JSON body); every answer of this API is JSON with a JSON content type.
    async fn get(&self, path: &str) -> (u16, Value) {
        let (code, ct, text) = self.get_raw(path).await;
        assert!(
            ct.starts_with("application/json"),
            "GET {path}: content type {ct:?} (status {code}): {text:.300}"
        );
        let v = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {text:.300}"));
        (code, v)
    }

    /// GET that must answer 200.
    async fn ok(&self, path: &str) -> Value {
        let (code, v) = self.get(path).await;
        assert_eq!(code, 200, "GET {path}: {v}");
        v
    }

    /// GET that must answer 400 naming `param`.
    async fn bad(&self, path: &str, param: &str) {
        let (code, v) = self.get(path).await;
        assert_eq!(code, 400, "GET {path} must be a 400: {v}");
        assert_eq!(v["parameter"], param, "GET {path}: {v}");
        assert!(
            v["error"].as_str().is_some_and(|m| m.len() > 10),
            "GET {path}: a clear message: {v}"
        );
    }

    async fn sse(&self, path: &str) -> SseReader {
        let r = self
            .http
            .get(self.url(path))
            .timeout(Duration::from_secs(3600))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(r.status().as_u16(), 200, "GET {path}");
        let ct = r
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        assert!(ct.starts_with("text/event-stream"), "GET {path}: {ct}");
        SseReader {
            path: path.to_string(),
            stream: Box::pin(r.bytes_stream().map(|c| c.map(|b| b.to_vec()))),
            buf: String::new(),
        }
    }

    /// SIGTERM, then waits; SIGKILL after 20 s. Returns how it ended.
    fn stop(&mut self) -> Option<ExitStatus> {
        if let Ok(Some(st)) = self.child.try_wait() {
            return Some(st);
        }
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for RunningEngine {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---- Server-Sent Events --------------------------------------------------------------------

/// The response body's chunks (copied out of reqwest's buffer type, so no `bytes` dependency).
type ByteStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<Vec<u8>>> + Send>>;

struct SseReader {
    path: String,
    stream: ByteStream,
    buf: String,
}

#[derive(Debug)]
struct SseEvent {
    event: String,
    id: Option<u64>,
    data: Value,
}

impl SseReader {
    /// The next event (heartbeat comments skipped), or `None` when `deadline` passes first.
    /// Panics when the stream ends or breaks.
    async fn next_event(&mut self, deadline: Instant) -> Option<SseEvent> {
        loop {
            if let Some(i) = self.buf.find("\n\n") {
                let block: String = self.buf[..i].to_string();
                self.buf.drain(..i + 2);
                let mut event = String::from("message");
                let mut id = None;
                let mut data = String::new();
                for line in block.lines() {
                    if line.starts_with(':') {
                        continue;
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event = v.to_string();
                    } else if let Some(v) = line.strip_prefix("id: ") {
                        id = Some(
                            v.parse::<u64>()
                                .unwrap_or_else(|e| panic!("{}: bad id {v:?}: {e}", self.path)),
                        );
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    } else {
                        panic!("{}: unexpected SSE line {line:?}", self.path);
                    }
                }
                if data.is_empty() {
                    continue; // a heartbeat comment
                }
                let data = serde_json::from_str(&data)
                    .unwrap_or_else(|e| panic!("{}: data not JSON ({e}): {data:.300}", self.path));
                return Some(SseEvent { event, id, data });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            match tokio::time::timeout(left, self.stream.next()).await {
                Err(_) => return None,
                Ok(None) => panic!("{}: the stream ended", self.path),
                Ok(Some(Err(e))) => panic!("{}: the stream broke: {e}", self.path),
                Ok(Some(Ok(chunk))) => self.buf.push_str(
                    std::str::from_utf8(&chunk)
                        .unwrap_or_else(|e| panic!("{}: not UTF-8: {e}", self.path)),
                ),
            }
        }
    }
}

/// A view as a client rebuilds it from a change stream.
#[derive(Default)]
struct Replica {
    rows: BTreeSet<String>,
    /// Engine time of the snapshot or of the last change applied.
    time: u64,
    snapshot_seen: bool,
    changes_applied: usize,
}

impl Replica {
    fn key(row: &Value) -> String {
        serde_json::to_string(row).expect("row JSON")
    }

    /// Applies one event of this view, checking the stream's contract: snapshot first, then
    /// changes at strictly increasing engine times whose retractions remove present rows and
    /// insertions add absent ones (retractions first within an event).
    fn apply(&mut self, view: &str, ev: &SseEvent) {
        let as_of = &ev.data["as_of"];
        let time = as_of["time"]
            .as_u64()
            .unwrap_or_else(|| panic!("{view}: event without as_of.time: {}", ev.data));
        assert_eq!(ev.id, Some(time), "{view}: the SSE id is the engine time");
        match ev.event.as_str() {
            "snapshot" => {
                assert!(!self.snapshot_seen, "{view}: a second snapshot");
                self.snapshot_seen = true;
                self.time = time;
                for r in ev.data["rows"].as_array().expect("snapshot rows") {
                    assert!(self.rows.insert(Self::key(r)), "{view}: duplicate row {r}");
                }
            }
            "change" => {
                assert!(self.snapshot_seen, "{view}: a change before the snapshot");
                assert!(
                    time > self.time,
                    "{view}: change at time {time} after time {} (out of order or repeated)",
                    self.time
                );
                self.time = time;
                let mut inserted = false;
                let changes = ev.data["changes"].as_array().expect("changes");
                assert!(!changes.is_empty(), "{view}: an empty change event");
                for c in changes {
                    let row = Self::key(&c["row"]);
                    match c["op"].as_str() {
                        Some("-") => {
                            assert!(!inserted, "{view}: a retraction after an insertion: {ev:?}");
                            assert!(
                                self.rows.remove(&row),
                                "{view}: retraction of a row not in the replica (a gap in the stream?): {row}"
                            );
                        }
                        Some("+") => {
                            inserted = true;
                            assert!(
                                self.rows.insert(row.clone()),
                                "{view}: insertion of a row already in the replica: {row}"
                            );
                        }
                        other => panic!("{view}: op {other:?}"),
                    }
                }
                self.changes_applied += 1;
            }
            "dropped" => panic!("{view}: the stream was dropped: {}", ev.data),
            other => panic!("{view}: unexpected event {other:?}"),
        }
    }
}

/// Follows `views` on `sse` until each replica has applied `min_changes` changes, then reads
/// each view with GET and checks that the replica, advanced to the GET's `as_of` (reading on
/// until the stream passes it), holds exactly the rows read.
async fn stream_reproduces_reads(
    engine: &RunningEngine,
    sse: &mut SseReader,
    views: &[&str],
    min_changes: usize,
) {
    let mut replicas: BTreeMap<String, Replica> = views
        .iter()
        .map(|v| (v.to_string(), Replica::default()))
        .collect();
    let deadline = Instant::now() + VIEW_TIMEOUT;
    // Events read ahead of a view's GET position, per view, applied after the comparison.
    while replicas
        .values()
        .any(|r| !r.snapshot_seen || r.changes_applied < min_changes)
    {
        let ev = sse.next_event(deadline).await.unwrap_or_else(|| {
            panic!(
                "{}: fewer than {min_changes} changes per view within {VIEW_TIMEOUT:?}\n{}",
                sse.path,
                engine.log_tail()
            )
        });
        let view = ev.data["view"].as_str().expect("event view").to_string();
        let r = replicas
            .get_mut(&view)
            .unwrap_or_else(|| panic!("{}: an event of view {view}", sse.path));
        r.apply(&view, &ev);
    }
    // Now read every view, then follow the stream past each read's position.
    let mut reads: BTreeMap<String, (u64, BTreeSet<String>)> = BTreeMap::new();
    for v in views {
        let body = engine.ok(&format!("/views/{v}?limit=1000000")).await;
        assert_eq!(body["truncated"], false);
        let t = body["as_of"]["time"].as_u64().expect("as_of.time");
        let rows: BTreeSet<String> = body["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(Replica::key)
            .collect();
        assert!(
            t >= replicas[*v].time,
            "{v}: a read at time {t} after the stream delivered time {}",
            replicas[*v].time
        );
        reads.insert(v.to_string(), (t, rows));
    }
    let mut pending: BTreeSet<String> = views.iter().map(|v| v.to_string()).collect();
    let deadline = Instant::now() + VIEW_TIMEOUT;
    while !pending.is_empty() {
        let ev = sse.next_event(deadline).await.unwrap_or_else(|| {
            panic!(
                "{}: no change after the read positions of {pending:?} within {VIEW_TIMEOUT:?}",
                sse.path
            )
        });
        let view = ev.data["view"].as_str().expect("event view").to_string();
        let time = ev.data["as_of"]["time"].as_u64().expect("time");
        let (read_time, read_rows) = &reads[&view];
        if pending.contains(&view) && time > *read_time {
            // Every change up to the read's time has been applied: compare.
            let r = &replicas[&view];
            let missing: Vec<_> = read_rows.difference(&r.rows).take(3).collect();
            let extra: Vec<_> = r.rows.difference(read_rows).take(3).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "{view}: snapshot + changes up to time {read_time} differ from GET at that time \
                 ({} vs {} rows); in GET only: {missing:?}; in the stream only: {extra:?}",
                r.rows.len(),
                read_rows.len()
            );
            pending.remove(&view);
        }
        replicas.get_mut(&view).expect("view").apply(&view, &ev);
    }
}

// ---- helpers on answers --------------------------------------------------------------------

fn rows(v: &Value) -> &Vec<Value> {
    v["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("no rows: {v}"))
}

fn keys(row: &Value) -> Vec<String> {
    row.as_object()
        .unwrap_or_else(|| panic!("row not an object: {row}"))
        .keys()
        .cloned()
        .collect()
}

fn is_money(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        let s = s.strip_prefix('-').unwrap_or(s);
        matches!(s.split_once('.'), Some((i, d)) if !i.is_empty()
            && i.bytes().all(|b| b.is_ascii_digit()) && d.len() == 2
            && d.bytes().all(|b| b.is_ascii_digit()))
    })
}

fn is_time(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() >= 20 && s.ends_with('Z') && s.as_bytes()[10] == b'T')
}

/// Money text → cents.
fn cents(v: &Value) -> i64 {
    let s = v.as_str().unwrap_or_else(|| panic!("money {v}"));
    let neg = s.starts_with('-');
    let (i, d) = s
        .trim_start_matches('-')
        .split_once('.')
        .unwrap_or_else(|| panic!("money {s}"));
    let c = i.parse::<i64>().expect("units") * 100 + d.parse::<i64>().expect("cents");
    if neg {
        -c
    } else {
        c
    }
}

/// Postgres LSN text (`16/B374D848`) → u64.
fn lsn(s: &str) -> u64 {
    let (hi, lo) = s.split_once('/').unwrap_or_else(|| panic!("LSN {s:?}"));
    (u64::from_str_radix(hi, 16).expect("hi") << 32) | u64::from_str_radix(lo, 16).expect("lo")
}

fn lsn_text(l: u64) -> String {
    format!("{:X}/{:X}", l >> 32, l & 0xFFFF_FFFF)
}

fn as_of_lsn(v: &Value) -> Option<u64> {
    v["as_of"]["lsn"].as_str().map(lsn)
}

/// Checks the common answer shape of a view read and each row's fields (SPEC §7).
fn check_view_answer(path: &str, v: &Value, view: &str, fields: &[&str]) {
    assert_eq!(v["view"], view, "{path}: {v}");
    assert!(v["as_of"]["time"].is_u64(), "{path}: as_of.time: {v}");
    assert!(
        v["as_of"].get("lsn").is_some() && v["as_of"].get("published_at").is_some(),
        "{path}: as_of: {}",
        v["as_of"]
    );
    assert!(v["truncated"].is_boolean(), "{path}");
    let rows = rows(v);
    assert_eq!(v["count"].as_u64(), Some(rows.len() as u64), "{path}");
    for r in rows {
        assert_eq!(keys(r), fields, "{path}: fields of {r}");
        for (k, val) in r.as_object().expect("object") {
            match k.as_str() {
                "revenue" | "avg_order_value" | "prev_revenue" => {
                    assert!(is_money(val), "{path}: {k} {val}")
                }
                "amount" => assert!(val.is_null() || is_money(val), "{path}: {k} {val}"),
                "window_start" | "start" => {
                    assert!(val.is_null() || is_time(val), "{path}: {k} {val}")
                }
                "rank" | "quantity" | "order_count" | "product_id" | "other_product_id"
                | "prev_quantity" | "growth" => {
                    assert!(val.is_i64(), "{path}: {k} {val}")
                }
                _ => {}
            }
        }
    }
}

/// The value of a Prometheus sample: the sum over lines of `name` whose labels include all of
/// `labels` (`k="v"`).
fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Waits until the 1h revenue windows count every live order: the snapshot is in. Returns the
/// revenue read that showed it.
async fn snapshot_applied(engine: &RunningEngine, live_orders: i64, what: &str) -> Value {
    poll_until(engine, "/views/revenue?window=1h", what, |v| {
        rows(v)
            .iter()
            .map(|r| r["order_count"].as_i64().unwrap_or(0))
            .sum::<i64>()
            == live_orders
    })
    .await
}

/// Polls `GET path` until `done(body)` or the deadline.
async fn poll_until(
    engine: &RunningEngine,
    path: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + VIEW_TIMEOUT;
    loop {
        let (code, v) = engine.get(path).await;
        if code == 200 && done(&v) {
            return v;
        }
        if Instant::now() > deadline {
            panic!(
                "{what}: not reached within {VIEW_TIMEOUT:?}; last GET {path}: {code} {v:.500}\n{}",
                engine.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

const REVENUE: &[&str] = &[
    "window",
    "window_start",
    "order_count",
    "revenue",
    "avg_order_value",
    "prev_revenue",
    "trend_pct",
];
const TOP_PRODUCTS: &[&str] = &[
    "window",
    "window_start",
    "category_id",
    "metric",
    "rank",
    "product_id",
    "quantity",
    "revenue",
];
const TRENDING: &[&str] = &[
    "window",
    "window_start",
    "rank",
    "product_id",
    "quantity",
    "prev_quantity",
    "growth",
];
const CATEGORY_SALES: &[&str] = &[
    "window",
    "window_start",
    "category_id",
    "quantity",
    "revenue",
    "order_count",
];
const FRAUD_ALERTS: &[&str] = &[
    "rule",
    "customer_id",
    "order_id",
    "start",
    "order_count",
    "amount",
];
const ALSO_BOUGHT: &[&str] = &["product_id", "rank", "other_product_id", "order_count"];

// ---- (a) the embedded default ----------------------------------------------------------------

/// Waits until the embedded simulator's orders reached every view a test reads.
async fn wait_for_embedded_views(engine: &RunningEngine) {
    poll_until(engine, "/views", "embedded views filled", |v| {
        let size = |name: &str| {
            v["views"]
                .as_array()
                .and_then(|vs| vs.iter().find(|x| x["name"] == name))
                .and_then(|x| x["rows"].as_u64())
                .unwrap_or(0)
        };
        ["revenue", "top_products", "category_sales", "also_bought"]
            .iter()
            .all(|n| size(n) > 0)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_default_serves_every_route_with_its_shape() {
    let engine = RunningEngine::start(&[]);
    wait_for_embedded_views(&engine).await;
    let metrics_before = engine.get_raw("/metrics").await.2;

    // Dashboard, docs, OpenAPI.
    let (code, ct, html) = engine.get_raw("/").await;
    assert_eq!(code, 200);
    assert!(ct.starts_with("text/html"), "{ct}");
    assert!(html.to_lowercase().contains("<html"), "{html:.200}");
    let (code, ct, docs) = engine.get_raw("/docs").await;
    assert_eq!(code, 200);
    assert!(
        ct.starts_with("text/html") && docs.contains("swagger"),
        "{ct}"
    );
    for asset in ["/docs/swagger-ui.css", "/docs/swagger-ui-bundle.js"] {
        let (code, _, body) = engine.get_raw(asset).await;
        assert_eq!(code, 200, "{asset}");
        assert!(body.len() > 1000, "{asset}: {} bytes", body.len());
    }
    let spec = engine.ok("/openapi.json").await;
    assert!(
        spec["openapi"].as_str().is_some_and(|s| s.starts_with('3')),
        "{:.200}",
        spec
    );
    let paths = spec["paths"].as_object().expect("paths");
    for p in [
        "/",
        "/health",
        "/docs",
        "/openapi.json",
        "/metrics",
        "/views",
        "/views/revenue",
        "/views/top-products",
        "/views/trending",
        "/views/category-sales",
        "/views/fraud-alerts",
        "/views/{name}",
        "/views/{name}/changes",
        "/products/{id}/also-bought",
        "/recommendations/{customer_id}",
        "/customers",
        "/customers/{id}",
        "/order",
        "/order_item",
        "/cart",
        "/wishlist",
        "/payment",
    ] {
        assert!(paths.contains_key(p), "/openapi.json lacks {p}");
    }
    // Every documented path without parameters answers (tables: 503 without a database).
    for p in paths.keys().filter(|p| !p.contains('{')) {
        if p == "/views/changes" {
            continue; // a stream; checked below
        }
        let (code, _, body) = engine.get_raw(p).await;
        assert!(
            code == 200 || (code == 503 && body.contains("database")),
            "documented {p} answers {code}: {body:.200}"
        );
    }

    // /info and /health.
    let info = engine.ok("/info").await;
    assert_eq!(info["name"], "shopstream");
    assert_eq!(info["database"]["configured"], false);
    assert_eq!(info["views"].as_array().map(Vec::len), Some(7), "{info}");
    let health = engine.ok("/health").await;
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["checks"]["source"]["connected"], true, "{health}");
    assert_eq!(health["checks"]["database"]["configured"], false);
    assert!(health["checks"]["last_transaction"]["time"].as_u64() > Some(0));

    // /views: every view with its size and paths.
    let list = engine.ok("/views").await;
    let names: BTreeSet<&str> = list["views"]
        .as_array()
        .expect("views")
        .iter()
        .map(|v| v["name"].as_str().expect("name"))
        .collect();
    let all = [
        "revenue",
        "top_products",
        "trending_products",
        "category_sales",
        "fraud_alerts",
        "also_bought",
        "recommendations",
    ];
    assert_eq!(names, all.into_iter().collect(), "{list}");
    for v in list["views"].as_array().expect("views") {
        let name = v["name"].as_str().expect("name");
        if name != "recommendations" {
            // (recommendations are being moved to read-time computation, without a stream)
            assert_eq!(v["changes"], format!("/views/{name}/changes"), "{v}");
        }
        let body = engine.ok(&format!("/views/{name}?limit=5")).await;
        assert_eq!(body["view"], name);
        assert!(rows(&body).len() <= 5);
    }

    // Revenue: windows and time filters.
    let rev = engine.ok("/views/revenue?window=1m").await;
    check_view_answer("/views/revenue?window=1m", &rev, "revenue", REVENUE);
    assert!(!rows(&rev).is_empty(), "{rev}");
    assert!(rows(&rev).iter().all(|r| r["window"] == "1m"));
    let starts: Vec<&str> = rows(&rev)
        .iter()
        .map(|r| r["window_start"].as_str().expect("start"))
        .collect();
    assert!(
        starts.windows(2).all(|w| w[0] < w[1]),
        "sorted by start: {starts:?}"
    );
    for r in rows(&rev) {
        // avg = revenue / order_count, half away from zero.
        let (n, total, avg) = (
            r["order_count"].as_i64().expect("n"),
            cents(&r["revenue"]),
            cents(&r["avg_order_value"]),
        );
        assert!(n > 0);
        assert_eq!(avg, (2 * total + n) / (2 * n), "{r}");
    }
    let from = starts[starts.len() / 2];
    let path = format!("/views/revenue?window=1m&from={from}");
    let later = engine.ok(&path).await;
    assert!(!rows(&later).is_empty());
    assert!(rows(&later)
        .iter()
        .all(|r| r["window_start"].as_str() >= Some(from)));
    let path = format!("/views/revenue?window=1m&to={from}");
    let earlier = engine.ok(&path).await;
    assert!(rows(&earlier)
        .iter()
        .all(|r| r["window_start"].as_str() < Some(from)));
    let five = engine.ok("/views/revenue?window=5m").await;
    assert!(rows(&five).iter().all(|r| r["window"] == "5m"));
    let both = engine.ok("/views/revenue").await;
    let labels: BTreeSet<&str> = rows(&both)
        .iter()
        .map(|r| r["window"].as_str().expect("window"))
        .collect();
    assert_eq!(labels, ["1h", "1m", "5m"].into_iter().collect());

    // View limits: default 10 000, 1..=1 000 000, `truncated` when cut.
    let one = engine.ok("/views/revenue?limit=1").await;
    assert_eq!(rows(&one).len(), 1);
    assert_eq!(one["truncated"], true);
    let all_rev = engine.ok("/views/revenue?limit=1000000").await;
    assert_eq!(all_rev["truncated"], false);

    // Top products: window, metric, category filters.
    let top = engine
        .ok("/views/top-products?window=all&metric=revenue&category=3")
        .await;
    check_view_answer("top-products", &top, "top_products", TOP_PRODUCTS);
    assert!(!rows(&top).is_empty(), "category 3 sold nothing? {top}");
    let ranks: Vec<i64> = rows(&top)
        .iter()
        .map(|r| {
            assert_eq!(r["window"], "all");
            assert!(r["window_start"].is_null());
            assert_eq!(r["metric"], "revenue");
            assert_eq!(r["category_id"], 3);
            r["rank"].as_i64().expect("rank")
        })
        .collect();
    assert_eq!(ranks, (1..=ranks.len() as i64).collect::<Vec<_>>());
    assert!(ranks.len() <= 5, "--top-n defaults to 5");
    let global = engine
        .ok("/views/top-products?window=all&metric=quantity&category=global")
        .await;
    assert!(!rows(&global).is_empty());
    assert!(rows(&global)
        .iter()
        .all(|r| r["category_id"].is_null() && r["metric"] == "quantity"));
    let best_product = rows(&global)[0]["product_id"].as_i64().expect("product");

    // Trending, category sales, fraud alerts.
    let trending = engine.ok("/views/trending?window=1m").await;
    check_view_answer("trending", &trending, "trending_products", TRENDING);
    for r in rows(&trending) {
        let g = r["growth"].as_i64().expect("growth");
        assert!(g > 0, "{r}");
        assert_eq!(
            g,
            r["quantity"].as_i64().expect("q") - r["prev_quantity"].as_i64().expect("p")
        );
    }
    let cs = engine
        .ok("/views/category-sales?window=all&category=3")
        .await;
    check_view_answer("category-sales", &cs, "category_sales", CATEGORY_SALES);
    assert_eq!(rows(&cs).len(), 1, "one `all` row for category 3: {cs}");
    assert_eq!(rows(&cs)[0]["category_id"], 3);
    let alerts = engine.ok("/views/fraud-alerts").await;
    check_view_answer("fraud-alerts", &alerts, "fraud_alerts", FRAUD_ALERTS);
    let hv = engine.ok("/views/fraud-alerts?rule=high_value").await;
    assert!(rows(&hv).iter().all(|r| r["rule"] == "high_value"));
    if let Some(c) = rows(&alerts)
        .first()
        .and_then(|r| r["customer_id"].as_i64())
    {
        let mine = engine
            .ok(&format!("/views/fraud-alerts?customer={c}"))
            .await;
        assert!(!rows(&mine).is_empty());
        assert!(rows(&mine).iter().all(|r| r["customer_id"] == c));
    }

    // Also bought and recommendations.
    let path = format!("/products/{best_product}/also-bought?k=3");
    let ab = engine.ok(&path).await;
    check_view_answer(&path, &ab, "also_bought", ALSO_BOUGHT);
    assert!(
        !rows(&ab).is_empty(),
        "the best seller has co-purchases: {ab}"
    );
    assert!(rows(&ab).len() <= 3);
    for (i, r) in rows(&ab).iter().enumerate() {
        assert_eq!(r["product_id"], best_product);
        assert_eq!(r["rank"], i as i64 + 1);
        assert_ne!(r["other_product_id"], best_product);
    }
    let customer = poll_until(
        &engine,
        "/views/recommendations?limit=1",
        "a recommendation",
        |v| rows(v).len() == 1,
    )
    .await;
    let customer = rows(&customer)[0]["customer_id"]
        .as_i64()
        .expect("customer_id");
    let path = format!("/recommendations/{customer}?k=4");
    let rec = engine.ok(&path).await;
    // Shape only: the recommendations endpoint is being rewired (views.rs).
    assert!(rec["as_of"]["time"].is_u64(), "{path}: as_of: {rec}");
    let rec_rows = rows(&rec);
    assert!(!rec_rows.is_empty() && rec_rows.len() <= 4, "{path}: {rec}");
    for r in rec_rows {
        assert!(r["product_id"].is_i64(), "{path}: product_id in {r}");
        assert!(r["score"].is_number(), "{path}: score in {r}");
        let c = r.get("customer_id").or_else(|| rec.get("customer_id"));
        assert_eq!(
            c.and_then(Value::as_i64),
            Some(customer),
            "{path}: customer id"
        );
    }

    // Table endpoints without a database: 503 JSON, but bad paging is still a 400.
    let (code, v) = engine.get("/customers").await;
    assert_eq!(code, 503, "{v}");
    assert!(v["error"].as_str().is_some_and(|e| e.contains("database")));
    let (code, _) = engine.get("/order/1").await;
    assert_eq!(code, 503);
    engine.bad("/orders?limit=1001", "limit").await;
    engine.bad("/orders?limit=0", "limit").await;
    engine.bad("/orders?offset=-1", "offset").await;

    // Bad input: 400 with a JSON error naming the parameter.
    for (path, param) in [
        ("/views/revenue?limt=5", "limt"),
        ("/views/revenue?window=7x", "window"),
        ("/views/revenue?limit=0", "limit"),
        ("/views/revenue?limit=1000001", "limit"),
        ("/views/revenue?limit=ten", "limit"),
        ("/views/revenue?from=yesterday", "from"),
        ("/views/revenue?window=1m&window=5m", "window"),
        ("/views/top-products?metric=profit", "metric"),
        ("/views/top-products?category=books", "category"),
        ("/views/category-sales?category=global", "category"),
        ("/views/fraud-alerts?rule=too_rich", "rule"),
        ("/views/fraud-alerts?customer=bob", "customer"),
        ("/views/revenue?min_lsn=soon", "min_lsn"),
        ("/views/revenue?as_of=later", "as_of"),
        ("/products/abc/also-bought", "id"),
        ("/products/1/also-bought?k=0", "k"),
        ("/recommendations/abc", "customer_id"),
        ("/recommendations/1?k=100000", "k"),
        ("/health?verbose=1", "verbose"),
        ("/views/changes?views=revenue,nope", "views"),
    ] {
        engine.bad(path, param).await;
    }

    // Unknown routes and views: JSON 404; other methods: JSON 405.
    for p in [
        "/nope",
        "/views/nope",
        "/views/nope/changes",
        "/products/1/nope",
    ] {
        let (code, v) = engine.get(p).await;
        assert_eq!(code, 404, "{p}: {v}");
        assert!(v["error"].is_string(), "{p}: {v}");
    }
    let r = engine
        .http
        .post(engine.url("/views/revenue"))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status().as_u16(), 405);
    let v: Value = r.json().await.expect("405 body is JSON");
    assert!(v["error"].is_string());

    // /metrics: the counters moved.
    let (code, ct, metrics_after) = engine.get_raw("/metrics").await;
    assert_eq!(code, 200);
    assert!(ct.starts_with("text/plain"), "{ct}");
    let req = |text: &str, route: &str, status: &str| {
        metric(
            text,
            "shopstream_http_requests_total",
            &[("route", route), ("status", status)],
        )
    };
    assert!(
        req(&metrics_after, "/views/revenue", "200")
            >= req(&metrics_before, "/views/revenue", "200") + 8.0,
        "revenue reads counted"
    );
    assert!(
        req(&metrics_after, "/views/revenue", "400") >= 8.0,
        "400s counted"
    );
    assert!(
        metric(&metrics_after, "shopstream_transactions_applied_total", &[])
            > metric(
                &metrics_before,
                "shopstream_transactions_applied_total",
                &[]
            ),
        "transactions applied move"
    );
    assert!(
        metric(
            &metrics_after,
            "shopstream_store_state",
            &[("fact", "engine_time")]
        ) > metric(
            &metrics_before,
            "shopstream_store_state",
            &[("fact", "engine_time")]
        ),
    );
    assert!(
        metric(
            &metrics_after,
            "shopstream_view_rows",
            &[("view", "revenue")]
        ) > 0.0
    );
    assert!(
        metric(
            &metrics_after,
            "shopstream_visible_latency_seconds_count",
            &[]
        ) > 0.0,
        "visible latency observed"
    );

    // A clean stop on SIGTERM.
    let mut engine = engine;
    let st = engine
        .stop()
        .expect("the engine stops within 20 s of SIGTERM");
    assert!(st.success(), "exit status {st}\n{}", engine.log_tail());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_change_streams_reproduce_the_views() {
    let engine = RunningEngine::start(&[]);
    wait_for_embedded_views(&engine).await;

    // One view per stream.
    let mut sse = engine.sse("/views/revenue/changes").await;
    stream_reproduces_reads(&engine, &mut sse, &["revenue"], 5).await;

    // Several views over one connection (the dashboard's stream).
    let mut multi = engine
        .sse("/views/changes?views=top_products,category_sales")
        .await;
    stream_reproduces_reads(&engine, &mut multi, &["top_products", "category_sales"], 3).await;

    // Both streams are counted as open while they are.
    let m = engine.get_raw("/metrics").await.2;
    assert!(
        metric(&m, "shopstream_api_sse_streams", &[]) >= 2.0,
        "open streams gauge"
    );
    drop(sse);
    drop(multi);
    // A stopped engine ends open streams (no hang on shutdown).
    let mut again = engine.sse("/views/fraud_alerts/changes").await;
    let snap = again
        .next_event(Instant::now() + VIEW_TIMEOUT)
        .await
        .expect("snapshot");
    assert_eq!(snap.event, "snapshot");
    assert_eq!(snap.data["view"], "fraud_alerts");
    let mut engine = engine;
    let st = engine.stop().expect("stops within 20 s with a stream open");
    assert!(st.success(), "exit status {st}\n{}", engine.log_tail());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_min_lsn_waits_then_answers_or_times_out() {
    let engine = RunningEngine::start(&[]);
    let first = poll_until(&engine, "/views", "a first LSN", |v| {
        v["as_of"]["lsn"].is_string()
    })
    .await;
    let l0 = lsn(first["as_of"]["lsn"].as_str().expect("lsn"));

    // A position a little ahead: the read waits for it, then reflects it.
    let target = l0 + 20;
    for param in ["min_lsn", "as_of"] {
        let path = format!("/views/revenue?{param}={}", lsn_text(target));
        let t0 = Instant::now();
        let v = engine.ok(&path).await;
        assert!(
            as_of_lsn(&v).is_some_and(|l| l >= target),
            "{path}: answered at {} before reaching the position",
            v["as_of"]
        );
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "{path}: waited {:?}",
            t0.elapsed()
        );
    }
    // Integers are accepted too.
    let v = engine
        .ok(&format!("/views/top-products?min_lsn={}", target))
        .await;
    assert!(as_of_lsn(&v).is_some_and(|l| l >= target));
    engine
        .bad("/views/revenue?min_lsn=1&as_of=1", "as_of")
        .await;

    // A position far ahead: a bounded wait (5 s by default), then 504 with the position reached.
    let far = "FFFFFFFF/0";
    for path in [
        format!("/views/revenue?min_lsn={far}"),
        format!("/views/fraud_alerts?min_lsn={far}"),
        format!("/recommendations/1?min_lsn={far}"),
    ] {
        let t0 = Instant::now();
        let (code, v) = engine.get(&path).await;
        let waited = t0.elapsed();
        assert_eq!(code, 504, "{path}: {v}");
        assert!(v["error"].as_str().is_some_and(|e| e.contains(far)), "{v}");
        assert!(
            v["as_of"]["lsn"].is_string(),
            "{path}: the position reached: {v}"
        );
        assert!(
            waited >= Duration::from_millis(4500) && waited < Duration::from_secs(30),
            "{path}: waited {waited:?}"
        );
    }
    // The change stream takes min_lsn too (it waits before the snapshot).
    let (code, v) = engine
        .get(&format!("/views/revenue/changes?min_lsn={far}"))
        .await;
    assert_eq!(code, 504, "{v}");
}

// ---- (b) Postgres with the built-in change capture -----------------------------------------

fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".into())
}

/// `admin_url` with another database name.
fn url_with_db(admin: &str, db: &str) -> String {
    let (base, rest) = admin.rsplit_once('/').expect("a URL with a database");
    let query = rest
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    format!("{base}/{db}{query}")
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!("connecting to Postgres ({e}); is it running? (scripts/test starts it)")
        });
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// A private database and the engine's slot in it, both dropped on drop (also when the test
/// fails). The slot must go first: Postgres refuses to drop a database that has one.
struct TestDb {
    admin: String,
    name: String,
    slot: String,
}

impl TestDb {
    fn new() -> TestDb {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let tag = format!("{}_{nanos}", std::process::id());
        TestDb {
            admin: admin_url(),
            name: format!("shop_api_test_{tag}"),
            slot: format!("shopstream_api_test_{tag}"),
        }
    }

    fn url(&self) -> String {
        url_with_db(&self.admin, &self.name)
    }

    async fn cleanup(admin: String, name: String, slot: String) -> Result<(), String> {
        let (c, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        // The walsender of a killed engine may take a moment to go away.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let _ = c
                .execute(
                    "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots \
                     WHERE slot_name = $1 AND active_pid IS NOT NULL",
                    &[&slot],
                )
                .await;
            let dropped = c
                .execute(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
                     WHERE slot_name = $1",
                    &[&slot],
                )
                .await;
            let left = c
                .query_one(
                    "SELECT count(*) FROM pg_replication_slots WHERE database = $1",
                    &[&name],
                )
                .await
                .map(|r| r.get::<_, i64>(0))
                .unwrap_or(1);
            if left == 0 {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("slot {slot} still there: {dropped:?}"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
            .map_err(|e| format!("dropping {name}: {e:?}"))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin, name, slot) = (self.admin.clone(), self.name.clone(), self.slot.clone());
        // Its own thread and runtime: drop may run inside the test's runtime, or while
        // unwinding from a panic.
        let res = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?
                .block_on(TestDb::cleanup(admin, name, slot))
        })
        .join();
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("cleanup of {}: {e}", self.name),
            Err(_) => eprintln!("cleanup of {} panicked", self.name),
        }
    }
}

/// Revenue of window `1h` starting at `start`: (order_count, cents), zero when absent.
fn hour_revenue(v: &Value, start: &str) -> (i64, i64) {
    rows(v)
        .iter()
        .find(|r| r["window"] == "1h" && r["window_start"] == start)
        .map(|r| (r["order_count"].as_i64().expect("n"), cents(&r["revenue"])))
        .unwrap_or((0, 0))
}

const TABLES: [(&str, Option<&str>, &str); 10] = [
    ("customers", None, "customer_id"),
    ("products", None, "product_id"),
    ("categories", None, "category_id"),
    ("orders", Some("order"), "order_id"),
    ("order_items", Some("order_item"), "order_item_id"),
    ("carts", Some("cart"), "cart_id"),
    ("wishlists", Some("wishlist"), "wishlist_id"),
    ("payments", Some("payment"), "payment_id"),
    ("shipments", None, "shipment_id"),
    ("product_views", None, "view_id"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_tables_and_read_your_writes() {
    let t0 = Instant::now();
    let db = TestDb::new();
    let url = db.url();
    let target = datagen::db::Target::parse(&url).expect("target");
    datagen::db::init(&target, "shop_pub")
        .await
        .unwrap_or_else(|e| panic!("datagen init into {}: {e}", db.name));
    datagen::generate::generate(
        &target,
        &datagen::generate::GenerateConfig {
            seed: 5,
            categories: 10,
            products: 60,
            customers: 40,
            progress: false,
        },
    )
    .await
    .expect("datagen generate");
    // A day of backdated shopping, so that every table has rows and orders have a history.
    datagen::simulate::simulate(
        &target,
        &datagen::simulate::SimConfig {
            sessions: 40,
            duration_secs: 30.0,
            concurrency: 2,
            historical_days: Some(1),
            seed: 5,
            progress: false,
            ..datagen::simulate::SimConfig::default()
        },
    )
    .await
    .expect("datagen simulate --historical 1");
    let pg = connect(&url).await;
    let count = |sql: &'static str| {
        let pg = &pg;
        async move { pg.query_one(sql, &[]).await.expect(sql).get::<_, i64>(0) }
    };
    let live_orders = count("SELECT count(*) FROM orders WHERE status <> 'cancelled'").await;
    assert!(live_orders > 0, "the simulation placed no order");
    eprintln!(
        "database ready in {:?} ({live_orders} live orders)",
        t0.elapsed()
    );

    let engine =
        RunningEngine::start(&["--source", &url, "--database-url", &url, "--slot", &db.slot]);
    // The snapshot is in when the 1h revenue windows count every live order.
    let settled = snapshot_applied(&engine, live_orders, "snapshot applied").await;
    eprintln!("snapshot applied after {:?}", t0.elapsed());
    let health = engine.ok("/health").await;
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["checks"]["database"]["reachable"], true, "{health}");

    // ---- table endpoints ----
    for (table, alias, key) in TABLES {
        let n = pg
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .expect("count")
            .get::<_, i64>(0);
        let ids: Vec<i64> = pg
            .query(
                &format!("SELECT {key}::int8 FROM {table} ORDER BY {key} LIMIT 1000"),
                &[],
            )
            .await
            .expect("ids")
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert!(
            n > 0,
            "{table} is empty: the simulation should fill every table"
        );
        let page = engine.ok(&format!("/{table}")).await;
        assert_eq!(page["table"], table);
        assert_eq!(page["limit"], 100, "default limit");
        assert_eq!(page["offset"], 0);
        let got: Vec<i64> = rows(&page)
            .iter()
            .map(|r| r[key].as_i64().expect("key"))
            .collect();
        assert_eq!(
            got,
            ids[..ids.len().min(100)],
            "/{table}: first page by key"
        );
        assert_eq!(page["count"], got.len());
        if let Some(a) = alias {
            let same = engine.ok(&format!("/{a}")).await;
            assert_eq!(same, page, "/{a} is /{table}");
        }
        // limit/offset: the same window of the key order.
        let (lim, off) = (7usize, 3usize);
        let p = engine
            .ok(&format!("/{table}?limit={lim}&offset={off}"))
            .await;
        let got: Vec<i64> = rows(&p)
            .iter()
            .map(|r| r[key].as_i64().expect("key"))
            .collect();
        let want: Vec<i64> = ids.iter().skip(off).take(lim).copied().collect();
        assert_eq!(got, want, "/{table}?limit={lim}&offset={off}");
        let max = engine.ok(&format!("/{table}?limit=1000")).await;
        assert_eq!(rows(&max).len() as i64, n.min(1000), "/{table}?limit=1000");
        let past = engine.ok(&format!("/{table}?offset={n}")).await;
        assert!(rows(&past).is_empty(), "/{table}?offset={n}: past the end");
        engine.bad(&format!("/{table}?limit=1001"), "limit").await;
        engine.bad(&format!("/{table}?limit=-5"), "limit").await;
        engine.bad(&format!("/{table}?offset=x"), "offset").await;
        engine.bad(&format!("/{table}?page=2"), "page").await;
        // /{table}/{id} and the alias' /{alias}/{id}.
        let first = &rows(&page)[0];
        let id = ids[0];
        assert_eq!(&engine.ok(&format!("/{table}/{id}")).await, first);
        if let Some(a) = alias {
            assert_eq!(&engine.ok(&format!("/{a}/{id}")).await, first);
        }
        let (code, v) = engine.get(&format!("/{table}/2147483000")).await;
        assert_eq!(code, 404, "/{table}/2147483000: {v}");
        assert!(v["error"].is_string());
        engine.bad(&format!("/{table}/first"), "id").await;
    }

    // /customers/{id}: the exposed fields, never the password hash.
    let c = pg
        .query_one(
            "SELECT customer_id::int8, email, last_name FROM customers ORDER BY customer_id DESC LIMIT 1",
            &[],
        )
        .await
        .expect("a customer");
    let cid: i64 = c.get(0);
    let customer = engine.ok(&format!("/customers/{cid}")).await;
    assert_eq!(
        keys(&customer),
        [
            "customer_id",
            "first_name",
            "last_name",
            "email",
            "address",
            "phone_number",
            "created_at",
            "updated_at"
        ]
    );
    assert_eq!(customer["email"], c.get::<_, String>(1));
    assert_eq!(customer["last_name"], c.get::<_, String>(2));
    assert!(is_time(&customer["created_at"]), "{customer}");
    let product = engine.ok("/products/1").await;
    assert!(is_money(&product["price"]), "{product}");
    assert!(product["is_active"].is_boolean(), "{product}");

    // ---- read-your-writes ----
    // A high-value order with two items, in one transaction.
    let item = pg
        .query(
            "SELECT product_id::int8, price::text FROM products WHERE is_active ORDER BY product_id LIMIT 2",
            &[],
        )
        .await
        .expect("products");
    assert_eq!(item.len(), 2);
    let hour_of_now: String = pg
        .query_one(
            "SELECT to_char(date_trunc('hour', now() AT TIME ZONE 'UTC'), \
             'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
            &[],
        )
        .await
        .expect("hour")
        .get(0);
    let before = engine.ok("/views/revenue?window=1h").await;
    let (n_before, cents_before) = hour_revenue(&before, &hour_of_now);
    let mut pgw = connect(&url).await;
    let tx = pgw.transaction().await.expect("begin");
    let order_id: i64 = tx
        .query_one(
            "INSERT INTO orders (order_date, total_price, status, customer_id) \
             VALUES (date_trunc('hour', now()) + interval '1 second', 12345678.91, 'confirmed', $1::int8) \
             RETURNING order_id::int8",
            &[&cid],
        )
        .await
        .expect("insert order")
        .get(0);
    for r in &item {
        tx.execute(
            "INSERT INTO order_items (order_id, product_id, quantity, price) \
             VALUES ($1::int8, $2::int8, 2, $3::text::numeric)",
            &[&order_id, &r.get::<_, i64>(0), &r.get::<_, String>(1)],
        )
        .await
        .expect("insert item");
    }
    tx.commit().await.expect("commit");
    let wal: String = pgw
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .expect("wal lsn")
        .get(0);
    let wal_lsn = lsn(&wal);

    // The very first read with ?min_lsn= reflects the order (no polling).
    let path = format!("/views/revenue?window=1h&min_lsn={wal}");
    let (code, after) = engine.get(&path).await;
    assert_eq!(
        code,
        200,
        "{path}: the views must reach pg_current_wal_lsn() taken right after the commit \
         (read-your-writes); answered {after}\n{}",
        engine.log_tail()
    );
    assert!(
        as_of_lsn(&after).is_some_and(|l| l >= wal_lsn),
        "{path}: as_of {} below {wal}",
        after["as_of"]
    );
    assert_eq!(
        hour_revenue(&after, &hour_of_now),
        (n_before + 1, cents_before + 1_234_567_891),
        "{path}: the new order in its hour"
    );
    let path = format!("/views/fraud-alerts?rule=high_value&customer={cid}&min_lsn={wal}");
    let alerts = engine.ok(&path).await;
    assert!(
        rows(&alerts)
            .iter()
            .any(|r| r["order_id"] == order_id && r["amount"] == "12345678.91"),
        "{path}: a high_value alert for order {order_id}: {alerts}"
    );
    let ab = engine
        .ok(&format!(
            "/products/{}/also-bought?min_lsn={wal}&k=1000",
            item[0].get::<_, i64>(0)
        ))
        .await;
    assert!(
        rows(&ab)
            .iter()
            .any(|r| r["other_product_id"] == item[1].get::<_, i64>(0)),
        "the two products of order {order_id} were bought together: {ab}"
    );
    let o = engine.ok(&format!("/orders/{order_id}")).await;
    assert_eq!(o["total_price"], "12345678.91");

    // A retraction is read back the same way: cancelling the order removes its effects.
    pgw.execute(
        "UPDATE orders SET status = 'cancelled' WHERE order_id = $1::int8",
        &[&order_id],
    )
    .await
    .expect("cancel");
    let wal: String = pgw
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .expect("wal lsn")
        .get(0);
    let path = format!("/views/revenue?window=1h&as_of={wal}");
    let (code, cancelled) = engine.get(&path).await;
    assert_eq!(code, 200, "{path}: {cancelled}");
    assert_eq!(
        hour_revenue(&cancelled, &hour_of_now),
        (n_before, cents_before),
        "{path}: the cancelled order is gone"
    );
    let alerts = engine
        .ok(&format!(
            "/views/fraud-alerts?rule=high_value&min_lsn={wal}"
        ))
        .await;
    assert!(
        !rows(&alerts).iter().any(|r| r["order_id"] == order_id),
        "the alert of the cancelled order is retracted: {alerts}"
    );

    // A position the source will not reach soon: the bounded wait, then 504 JSON.
    let far = lsn_text(wal_lsn + (1 << 40));
    let path = format!("/views/revenue?min_lsn={far}");
    let t = Instant::now();
    let (code, v) = engine.get(&path).await;
    assert_eq!(code, 504, "{path}: {v}");
    assert!(
        t.elapsed() >= Duration::from_millis(4500),
        "{:?}",
        t.elapsed()
    );
    assert!(v["error"].as_str().is_some_and(|e| e.contains(&far)), "{v}");
    assert!(as_of_lsn(&v).is_some_and(|l| l >= wal_lsn), "{v}");

    // Views still agree with the database after all this.
    assert!(!rows(&settled).is_empty());

    // No password hash in any response.
    for path in [
        "/",
        "/info",
        "/health",
        "/metrics",
        "/openapi.json",
        "/views",
    ] {
        engine.get_raw(path).await;
    }
    engine.get_raw("/views/recommendations?limit=1000000").await;
    let hashes: Vec<String> = pg
        .query("SELECT password_hash FROM customers", &[])
        .await
        .expect("hashes")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(hashes.iter().all(|h| h.len() >= 8), "hashes to look for");
    let bodies = engine.bodies.lock().unwrap().clone();
    assert!(bodies.len() > 100, "{} responses checked", bodies.len());
    for (path, body) in &bodies {
        assert!(
            !body.contains("password"),
            "{path} mentions a password: {body:.300}"
        );
        for h in &hashes {
            assert!(!body.contains(h.as_str()), "{path} exposes a password hash");
        }
    }

    let mut engine = engine;
    let st = engine.stop().expect("stops within 20 s of SIGTERM");
    assert!(st.success(), "exit status {st}\n{}", engine.log_tail());
    drop(engine);

    // A restart with the same slot: the state is in memory only, so the engine must snapshot
    // again (not resume streaming from the slot into empty views).
    let engine =
        RunningEngine::start(&["--source", &url, "--database-url", &url, "--slot", &db.slot]);
    let again = snapshot_applied(&engine, live_orders, "snapshot after a restart").await;
    assert_eq!(
        rows(&again),
        rows(&cancelled),
        "the restarted engine's revenue equals the last one read before the restart"
    );
    eprintln!("done in {:?}", t0.elapsed());
}
