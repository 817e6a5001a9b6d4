//! Webhook sink against a real local HTTP receiver (actix-web on 127.0.0.1).

mod common;

use actix_web::{web, App, HttpResponse, HttpServer};
use common::*;
use serde_json::Value;
use sinks::webhook::{WebhookConfig, WebhookFormat, WebhookSink};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use view_store::ViewStore;

#[derive(Clone, Default)]
struct Inbox {
    got: Arc<Mutex<Vec<Value>>>,
    /// HTTP status to answer with (200 records the message).
    status: Arc<AtomicU16>,
}

async fn receive(inbox: web::Data<Inbox>, body: web::Json<Value>) -> HttpResponse {
    let status = inbox.status.load(Ordering::SeqCst);
    if status != 200 {
        return HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
            .finish();
    }
    inbox.got.lock().unwrap().push(body.into_inner());
    HttpResponse::Ok().finish()
}

struct Receiver {
    port: u16,
    inbox: Inbox,
    handle: actix_web::dev::ServerHandle,
}

async fn start_receiver(port: u16, inbox: Inbox) -> Receiver {
    let data = web::Data::new(inbox.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/{tail:.*}", web::post().to(receive))
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", port))
    .unwrap();
    let port = server.addrs()[0].port();
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    Receiver {
        port,
        inbox,
        handle,
    }
}

impl Receiver {
    /// A URL with a secret-looking path, as real webhooks have.
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/api/webhooks/1/SECRET", self.port)
    }
}

impl Inbox {
    fn new() -> Self {
        let i = Inbox::default();
        i.status.store(200, Ordering::SeqCst);
        i
    }
    async fn wait_for(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.got.lock().unwrap().clone();
            if got.len() >= n {
                return got;
            }
            assert!(Instant::now() < deadline, "got only {got:?}, wanted {n}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn config(url: String, format: WebhookFormat) -> WebhookConfig {
    let mut c = WebhookConfig::new(vec![url], format);
    c.rate_per_sec = 1000.0;
    c.burst = 100;
    c.retry_base = Duration::from_millis(20);
    c.retry_max = Duration::from_millis(200);
    c.startup_settle = Duration::ZERO;
    c
}

fn event_of(v: &Value) -> (String, Value) {
    (
        v["event"].as_str().unwrap().to_string(),
        v["alert"]["order_id"].clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appear_update_resolve_in_each_format() {
    for format in [
        WebhookFormat::Json,
        WebhookFormat::Discord,
        WebhookFormat::Slack,
    ] {
        let rx = start_receiver(0, Inbox::new()).await;
        let store = ViewStore::new();
        let mut a = Applier::new(store.clone());
        let sink = WebhookSink::spawn(config(rx.url(), format), store.clone()).unwrap();
        a.apply(vec![
            (high_value(10, 1, 2_000_000_000), 1),
            (burst(5, 6), 1),
        ]);
        // An update of an open alert: no message.
        a.apply(vec![(burst(5, 6), -1), (burst(5, 7), 1)]);
        a.apply(vec![(high_value(10, 1, 2_000_000_000), -1)]);
        // Irrelevant views are ignored.
        a.apply(vec![(rev(0, 1, 100), 1)]);
        a.apply(vec![(burst(5, 7), -1)]);
        let got = rx.inbox.wait_for(4).await;
        sink.shutdown().await;
        assert_eq!(rx.inbox.got.lock().unwrap().len(), 4, "{got:?}");
        match format {
            WebhookFormat::Json => {
                let evs: Vec<_> = got.iter().map(event_of).collect();
                assert_eq!(
                    evs,
                    vec![
                        ("alert".into(), Value::from(10)),
                        ("alert".into(), Value::Null),
                        ("resolved".into(), Value::from(10)),
                        ("resolved".into(), Value::Null),
                    ]
                );
                assert_eq!(got[0]["alert"]["amount"], "20000000.00");
                // the resolve of the burst carries its newest figures
                assert_eq!(got[3]["alert"]["order_count"], 7);
                assert_eq!(got[2]["as_of"]["time"], 3);
            }
            WebhookFormat::Discord | WebhookFormat::Slack => {
                let field = if format == WebhookFormat::Discord {
                    "content"
                } else {
                    "text"
                };
                let texts: Vec<&str> = got.iter().map(|v| v[field].as_str().unwrap()).collect();
                assert!(texts[0].contains("Fraud alert (high_value): order 10 of customer 1"));
                assert!(texts[1].contains("Fraud alert (order_burst): customer 5: 6 orders"));
                assert!(texts[2].starts_with("✅ Resolved fraud alert (high_value)"));
                assert!(texts[3].contains("customer 5: 7 orders"));
                assert_eq!(got[0].as_object().unwrap().len(), 1);
            }
        }
        rx.handle.stop(true).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_then_unreachable_endpoint_gets_messages_once_back() {
    // Answers 500 for a while.
    let rx = start_receiver(0, Inbox::new()).await;
    rx.inbox.status.store(500, Ordering::SeqCst);
    let store = ViewStore::new();
    let mut a = Applier::new(store.clone());
    let sink = WebhookSink::spawn(config(rx.url(), WebhookFormat::Json), store.clone()).unwrap();
    let errors_before = sinks::metrics::errors("webhook").get();
    a.apply(vec![(high_value(1, 1, 2_000_000_000), 1)]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while sinks::metrics::errors("webhook").get() < errors_before + 3 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The feed consumer is not stalled meanwhile: more changes queue up.
    a.apply(vec![(high_value(1, 1, 2_000_000_000), -1)]);
    rx.inbox.status.store(200, Ordering::SeqCst);
    let got = rx.inbox.wait_for(2).await;
    assert_eq!(
        got.iter().map(event_of).collect::<Vec<_>>(),
        vec![
            ("alert".into(), Value::from(1)),
            ("resolved".into(), Value::from(1))
        ]
    );
    sink.shutdown().await;
    rx.handle.stop(true).await;

    // Nothing listening at first.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let sink = WebhookSink::spawn(config(url, WebhookFormat::Json), store.clone()).unwrap();
    a.apply(vec![(high_value(2, 1, 2_000_000_000), 1)]);
    let errors_before = sinks::metrics::errors("webhook").get();
    while sinks::metrics::errors("webhook").get() < errors_before + 2 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let rx = start_receiver(port, Inbox::new()).await;
    let got = rx.inbox.wait_for(1).await;
    assert_eq!(event_of(&got[0]), ("alert".into(), Value::from(2)));
    sink.shutdown().await;
    assert_eq!(rx.inbox.got.lock().unwrap().len(), 1);
    rx.handle.stop(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_with_state_file_sends_no_duplicates() {
    let dir = std::env::temp_dir().join(unique("sinks-webhook-"));
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("webhook-state.json");
    let rx = start_receiver(0, Inbox::new()).await;
    let store = ViewStore::new();
    let mut a = Applier::new(store.clone());
    let mut cfg = config(rx.url(), WebhookFormat::Json);
    cfg.state_path = Some(state.clone());

    let sink = WebhookSink::spawn(cfg.clone(), store.clone()).unwrap();
    a.apply(vec![
        (high_value(10, 1, 2_000_000_000), 1),
        (high_value(11, 2, 2_000_000_000), 1),
    ]);
    rx.inbox.wait_for(2).await;
    sink.shutdown().await;
    let saved = std::fs::read_to_string(&state).unwrap();
    assert!(!saved.contains("SECRET"), "the URL is not stored: {saved}");
    assert!(saved.contains("\\\"order_id\\\":11"), "{saved}");

    // While the sink is down, alert 11 resolves.
    a.apply(vec![(high_value(11, 2, 2_000_000_000), -1)]);
    rx.inbox.got.lock().unwrap().clear();
    let sink = WebhookSink::spawn(cfg.clone(), store.clone()).unwrap();
    let got = rx.inbox.wait_for(1).await;
    assert_eq!(event_of(&got[0]), ("resolved".into(), Value::from(11)));
    a.apply(vec![(high_value(12, 3, 2_000_000_000), 1)]);
    let got = rx.inbox.wait_for(2).await;
    assert_eq!(event_of(&got[1]), ("alert".into(), Value::from(12)));
    sink.shutdown().await;
    // Alert 10 was already sent before the restart: never again.
    assert_eq!(rx.inbox.got.lock().unwrap().len(), 2);

    // A third start with everything already delivered sends nothing; a resolve still works.
    rx.inbox.got.lock().unwrap().clear();
    let sink = WebhookSink::spawn(cfg, store.clone()).unwrap();
    a.apply(vec![(high_value(10, 1, 2_000_000_000), -1)]);
    let got = rx.inbox.wait_for(1).await;
    sink.shutdown().await;
    assert_eq!(
        got.iter().map(event_of).collect::<Vec<_>>(),
        vec![("resolved".into(), Value::from(10))]
    );
    rx.handle.stop(true).await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overflowing_queue_resyncs_once_the_endpoint_is_back() {
    let rx = start_receiver(0, Inbox::new()).await;
    rx.inbox.status.store(503, Ordering::SeqCst);
    let store = ViewStore::new();
    let mut a = Applier::new(store.clone());
    let mut cfg = config(rx.url(), WebhookFormat::Json);
    cfg.queue_capacity = 1;
    let sink = WebhookSink::spawn(cfg, store.clone()).unwrap();
    let errors_before = sinks::metrics::errors("webhook").get();
    a.apply(vec![(high_value(1, 1, 2_000_000_000), 1)]);
    // The first alert is in flight (failing); then more than the queue holds.
    while sinks::metrics::errors("webhook").get() == errors_before {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for o in 2..=5 {
        a.apply(vec![(high_value(o, 1, 2_000_000_000), 1)]);
    }
    a.apply(vec![(high_value(3, 1, 2_000_000_000), -1)]);
    rx.inbox.status.store(200, Ordering::SeqCst);
    // Open now: 1, 2, 4, 5 — each announced exactly once, 3 never (it came and went).
    let got = rx.inbox.wait_for(4).await;
    sink.shutdown().await;
    let got_all = rx.inbox.got.lock().unwrap().clone();
    let mut ids: Vec<i64> = got_all
        .iter()
        .map(|v| {
            assert_eq!(v["event"], "alert", "{got:?}");
            v["alert"]["order_id"].as_i64().unwrap()
        })
        .collect();
    ids.sort();
    assert_eq!(ids, vec![1, 2, 4, 5], "{got_all:?}");
    rx.handle.stop(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_with_an_empty_engine_does_not_resolve_or_repeat_before_settling() {
    let dir = std::env::temp_dir().join(unique("sinks-webhook-"));
    std::fs::create_dir_all(&dir).unwrap();
    let rx = start_receiver(0, Inbox::new()).await;
    let mut cfg = config(rx.url(), WebhookFormat::Json);
    cfg.state_path = Some(dir.join("state.json"));
    cfg.startup_settle = Duration::from_secs(3600);

    let store = ViewStore::new();
    let mut a = Applier::new(store.clone());
    let sink = WebhookSink::spawn(cfg.clone(), store.clone()).unwrap();
    a.apply(vec![(high_value(10, 1, 2_000_000_000), 1)]);
    rx.inbox.wait_for(1).await;
    sink.shutdown().await;

    // The engine restarts from nothing and replays its source: alert 10 comes back.
    rx.inbox.got.lock().unwrap().clear();
    let store = ViewStore::new();
    let mut a = Applier::new(store.clone());
    let sink = WebhookSink::spawn(cfg, store.clone()).unwrap();
    a.apply(vec![(high_value(10, 1, 2_000_000_000), 1)]);
    a.apply(vec![(high_value(13, 1, 2_000_000_000), 1)]);
    let got = rx.inbox.wait_for(1).await;
    sink.shutdown().await;
    assert_eq!(rx.inbox.got.lock().unwrap().len(), 1);
    assert_eq!(event_of(&got[0]), ("alert".into(), Value::from(13)));
    rx.handle.stop(true).await;
    std::fs::remove_dir_all(&dir).unwrap();
}
