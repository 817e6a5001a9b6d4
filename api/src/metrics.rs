//! Prometheus metrics owned by the API, in the default registry (which `/metrics` gathers with
//! everything other crates registered there).
//!
//! The engine calls [`observe_visible_latency`] and [`transactions_applied`]; gauges derived from
//! the store and the engine status are refreshed on each scrape.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, TextEncoder,
};
use std::sync::LazyLock;
use std::time::Duration;
use view_store::status::EngineStatus;
use view_store::ViewStore;

/// Registers into the default registry; a name clash (another crate registering the same name)
/// is logged and the metric still works, just unexported.
fn register<C: prometheus::core::Collector + Clone + 'static>(c: C) -> C {
    if let Err(e) = prometheus::register(Box::new(c.clone())) {
        tracing::warn!(error = %e, "metric registration failed");
    }
    c
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    // Fixed names and labels: construction cannot fail at runtime.
    register(IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"))
}

static HTTP_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "shopstream_http_requests_total",
        "HTTP requests by route pattern, method and status",
        &["route", "method", "status"],
    )
});

static HTTP_DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    register(
        HistogramVec::new(
            HistogramOpts::new(
                "shopstream_http_request_duration_seconds",
                "Time to produce the response head, by route pattern (SSE: until the stream starts)",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["route"],
        )
        .expect("valid metric"),
    )
});

static VIEW_ROWS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register(
        IntGaugeVec::new(
            Opts::new("shopstream_view_rows", "Rows currently in each view"),
            &["view"],
        )
        .expect("valid metric"),
    )
});

static VISIBLE_LATENCY: LazyLock<Histogram> = LazyLock::new(|| {
    register(
        Histogram::with_opts(
            HistogramOpts::new(
                "shopstream_visible_latency_seconds",
                "From a change being ingested to its effect being visible in the view store",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ]),
        )
        .expect("valid metric"),
    )
});

static TRANSACTIONS: LazyLock<IntCounter> = LazyLock::new(|| {
    register(
        IntCounter::new(
            "shopstream_transactions_applied_total",
            "Source transactions applied to the views",
        )
        .expect("valid metric"),
    )
});

static SSE_SUBSCRIBERS: LazyLock<IntGauge> = LazyLock::new(|| {
    register(
        IntGauge::new(
            "shopstream_api_sse_streams",
            "Open /views/{name}/changes streams",
        )
        .expect("valid metric"),
    )
});

static SSE_DROPPED: LazyLock<IntCounter> = LazyLock::new(|| {
    register(
        IntCounter::new(
            "shopstream_api_sse_dropped_total",
            "Change streams ended because the client fell too far behind",
        )
        .expect("valid metric"),
    )
});

static STORE_GAUGES: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register(
        IntGaugeVec::new(
            Opts::new(
                "shopstream_store_state",
                "View store and engine facts as seen by the API (engine_time, lsn, anomalies, lag_ms, connected, events_ingested)",
            ),
            &["fact"],
        )
        .expect("valid metric"),
    )
});

/// Called by the engine per published batch: seconds from ingesting a change to it being
/// visible to readers.
pub fn observe_visible_latency(latency: Duration) {
    VISIBLE_LATENCY.observe(latency.as_secs_f64());
}

/// Called by the engine on each publication with the cumulative number of source transactions
/// applied (`as_of.time`): the counter advances to it, so repeated calls never double-count.
pub fn transactions_applied(total: u64) {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // Serialise read-then-increment so that concurrent callers cannot both add the same delta.
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let cur = TRANSACTIONS.get();
    if total > cur {
        TRANSACTIONS.inc_by(total - cur);
    }
}

pub(crate) fn observe_request(route: &str, method: &str, status: u16, elapsed: Duration) {
    HTTP_REQUESTS
        .with_label_values(&[route, method, &status.to_string()])
        .inc();
    HTTP_DURATION
        .with_label_values(&[route])
        .observe(elapsed.as_secs_f64());
}

/// Guard counting one open SSE stream.
pub(crate) struct SseGuard;
impl SseGuard {
    pub fn new() -> Self {
        SSE_SUBSCRIBERS.inc();
        SseGuard
    }
}
impl Drop for SseGuard {
    fn drop(&mut self) {
        SSE_SUBSCRIBERS.dec();
    }
}
pub(crate) fn sse_dropped() {
    SSE_DROPPED.inc();
}

/// Forces registration so that the metrics appear (at zero) before their first use.
pub fn init() {
    LazyLock::force(&HTTP_REQUESTS);
    LazyLock::force(&HTTP_DURATION);
    LazyLock::force(&VIEW_ROWS);
    LazyLock::force(&VISIBLE_LATENCY);
    LazyLock::force(&TRANSACTIONS);
    LazyLock::force(&SSE_SUBSCRIBERS);
    LazyLock::force(&SSE_DROPPED);
    LazyLock::force(&STORE_GAUGES);
}

/// The Prometheus text exposition of the default registry, after refreshing derived gauges.
pub(crate) fn render(store: &ViewStore, status: &EngineStatus) -> Result<String, String> {
    init();
    for (view, n) in store.sizes() {
        VIEW_ROWS.with_label_values(&[view.as_str()]).set(n as i64);
    }
    let as_of = store.as_of();
    let snap = status.snapshot();
    let facts: [(&str, i64); 7] = [
        ("engine_time", as_of.time as i64),
        ("lsn", as_of.lsn.map(|l| l.0 as i64).unwrap_or(0)),
        ("anomalies", store.anomalies() as i64),
        ("dropped_subscribers", store.dropped_subscribers() as i64),
        ("lag_ms", snap.lag_ms.unwrap_or(-1)),
        ("connected", snap.connected as i64),
        ("events_ingested", snap.events_ingested as i64),
    ];
    for (k, v) in facts {
        STORE_GAUGES.with_label_values(&[k]).set(v);
    }
    let mut buf = Vec::new();
    TextEncoder::new()
        .encode(&prometheus::gather(), &mut buf)
        .map_err(|e| e.to_string())?;
    String::from_utf8(buf).map_err(|e| e.to_string())
}
