//! The dashboard in a real headless Chromium, fed live while it is open: asserts on the rendered
//! DOM (live numbers that keep moving) and saves a screenshot under the target dir.
// Money literals group their cents: 4_000_000_50 is 4,000,000.50.
#![allow(clippy::inconsistent_digit_grouping)]

mod common;

use api::ApiConfig;
use common::*;
use serde_json::{json, Value};
use sources::Money;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};
use view_store::*;

fn chromium() -> Option<PathBuf> {
    let candidates = [
        std::env::var("CHROMIUM").unwrap_or_default(),
        "/usr/bin/chromium".into(),
        "/usr/bin/chromium-browser".into(),
        "/usr/bin/google-chrome".into(),
    ];
    candidates
        .into_iter()
        .filter(|c| !c.is_empty())
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// A headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`:
/// NUL-separated JSON on fds 3 and 4). `--dump-dom` cannot be used: it waits for the network to
/// settle (or for virtual time), which a page with an open event stream never reaches.
struct Browser {
    child: Child,
    stdin: ChildStdin,
    rx: Receiver<Value>,
    next_id: u64,
}

impl Browser {
    fn launch(bin: &Path, profile: &Path) -> Browser {
        let mut child = Command::new("bash")
            .arg("-c")
            // Our stdin/stdout become the browser's fds 3/4.
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 </dev/null >/dev/null"#)
            .arg(bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--no-first-run",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--remote-debugging-pipe",
                "--window-size=1400,1100",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 65536];
            loop {
                let n = match stdout.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                buf.extend_from_slice(&chunk[..n]);
                while let Some(i) = buf.iter().position(|b| *b == 0) {
                    let msg: Vec<u8> = buf.drain(..=i).collect();
                    if let Ok(v) = serde_json::from_slice::<Value>(&msg[..msg.len() - 1]) {
                        if tx.send(v).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Browser {
            child,
            stdin,
            rx,
            next_id: 1,
        }
    }

    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.stdin.write_all(&bytes).unwrap();
        self.stdin.flush().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self
                .rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no answer to {method} within 30 s"));
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    fn text(&mut self, session: &str, id: &str) -> String {
        let r = self.call(
            Some(session),
            "Runtime.evaluate",
            json!({"expression": format!("(document.getElementById('{id}') || {{}}).textContent || ''"),
                "returnByValue": true}),
        );
        r["result"]["value"]
            .as_str()
            .unwrap_or_default()
            .trim()
            .to_string()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Only the browser this test started.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn number(s: &str) -> Option<i64> {
    s.replace(',', "").parse().ok()
}

#[test]
fn dashboard_renders_live_numbers_in_chromium() {
    let Some(bin) = chromium() else {
        eprintln!(
            "\n\n!!!!!!!! SKIPPED: no Chromium found (apt-get install -y chromium); the dashboard was NOT tested in a browser !!!!!!!!\n"
        );
        return;
    };
    let t = TestApi::start(ApiConfig::default());
    t.status.set_source("test feed");
    t.status.set_connected(true);
    t.status.add_events(1234);
    fill(&t.store, 1, 100);

    // Keep feeding while the page is open: a growing current window and new fraud alerts.
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = {
        let store = t.store.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let w1 = Window::Size(M1);
            let mut cur = revenue(w1, T0 + M1, 3, 4_000_000_50, 2_500_000_00);
            let mut time = 2u64;
            while !stop.load(Ordering::Relaxed) {
                let ViewRow::Revenue(r) = &cur else {
                    unreachable!()
                };
                let next = revenue(
                    w1,
                    T0 + M1,
                    r.order_count + 1,
                    r.revenue.0 + 150_000_00,
                    2_500_000_00,
                );
                let alert = ViewRow::FraudAlert(FraudAlertRow {
                    rule: Rule::HighValue,
                    customer_id: Some(40 + time as i64),
                    order_id: Some(1000 + time as i64),
                    start: sources::Micros(T0 + M1 + time as i64 * 1_000_000),
                    order_count: 1,
                    amount: Some(Money(15_000_000_00)),
                });
                store.apply(ChangeBatch {
                    as_of: as_of(time, 100 + time),
                    changes: vec![(cur.clone(), -1), (next.clone(), 1), (alert, 1)],
                });
                cur = next;
                time += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };

    let profile = std::env::temp_dir().join(format!("api-chromium-{}", std::process::id()));
    let mut b = Browser::launch(&bin, &profile);
    let target = b.call(None, "Target.createTarget", json!({"url": t.url("/")}));
    let attached = b.call(
        None,
        "Target.attachToTarget",
        json!({"targetId": target["targetId"], "flatten": true}),
    );
    let s = attached["sessionId"].as_str().unwrap().to_string();

    // Wait (bounded) until the live stream has rendered numbers …
    let deadline = Instant::now() + Duration::from_secs(30);
    let first_orders = loop {
        if let Some(n) = number(&b.text(&s, "kpi-orders")) {
            break n;
        }
        assert!(
            Instant::now() < deadline,
            "dashboard never showed live numbers"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // … and keeps following the engine's changes without a reload.
    let moved = loop {
        let n = number(&b.text(&s, "kpi-orders")).unwrap();
        if n > first_orders + 3 {
            break n;
        }
        assert!(
            Instant::now() < deadline,
            "dashboard did not follow live changes"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let html = b.call(
        Some(&s),
        "Runtime.evaluate",
        json!({"expression": "document.documentElement.outerHTML", "returnByValue": true}),
    )["result"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    let revenue_kpi = b.text(&s, "kpi-revenue");
    let alerts = number(&b.text(&s, "kpi-alerts")).unwrap();
    let top = b.text(&s, "top-revenue");
    let source = b.text(&s, "source");
    let conn = b.text(&s, "conn");
    let feed = b.text(&s, "feed");

    // The recommendations lookup box calls /recommendations/{id}.
    b.call(
        Some(&s),
        "Runtime.evaluate",
        json!({"expression": "document.getElementById('reco-id').value = '7'; document.getElementById('reco-form').requestSubmit();"}),
    );
    let reco = loop {
        let r = b.text(&s, "reco-result");
        if r.contains("#101") {
            break r;
        }
        assert!(Instant::now() < deadline, "recommendations lookup: {r}");
        std::thread::sleep(Duration::from_millis(100));
    };

    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let png = b.call(Some(&s), "Page.captureScreenshot", json!({"format": "png"}));
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(png["data"].as_str().unwrap())
        .unwrap();
    std::fs::write(&shot, bytes).unwrap();
    let _ = b.call(None, "Browser.close", json!({}));
    drop(b);
    stop.store(true, Ordering::Relaxed);
    feeder.join().unwrap();
    let _ = std::fs::remove_dir_all(&profile);

    assert!(html.contains("shopstream"));
    assert!(html.contains("<rect"), "revenue chart drawn");
    assert!(
        revenue_kpi.chars().any(|c| c.is_ascii_digit()) && revenue_kpi.contains(','),
        "live revenue shown: {revenue_kpi:?}"
    );
    assert!(moved > first_orders);
    assert!(alerts >= 2, "fraud alerts counted: {alerts}");
    assert!(
        top.contains("#11") && top.contains("3,000,000.00"),
        "top products table: {top}"
    );
    assert!(source.contains("test feed"), "{source}");
    assert_eq!(conn, "live");
    assert!(feed.contains("high value order"), "{feed}");
    assert!(
        reco.contains("#110") && !reco.contains("#111"),
        "k=10: {reco}"
    );
    eprintln!("dashboard screenshot: {}", shot.display());
}
