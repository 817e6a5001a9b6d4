//! The HTTP API (SPEC §6): the live dashboard, view reads and change streams from the view
//! store, read-only table endpoints over PostgreSQL, `/info`, `/health`, `/metrics`,
//! `/openapi.json` and `/docs`.
//!
//! Owns: routing, parameters and their 400s, auth (bearer token), CORS, the API's Prometheus
//! metrics ([`metrics`]), the dashboard and vendored Swagger UI assets.
//! Must not compute views (the engine does; the store holds the results) nor write to the
//! database.
//!
//! Use [`spawn`] to run it on its own thread and runtime (the engine does; tests bind port 0),
//! or await [`serve`] inside an existing tokio/actix runtime.

pub mod error;
pub mod metrics;
pub mod openapi;
pub mod params;
pub mod tables;
pub mod views;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServerHandle, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer, ResponseError};
use error::ApiError;
use params::Params;
use serde_json::json;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};
use view_store::status::{now_micros, EngineStatus};
use view_store::ViewStore;

/// How the API is exposed. `Default` binds 127.0.0.1:8080 without auth or database.
#[derive(Clone)]
pub struct ApiConfig {
    pub listen: SocketAddr,
    /// When set, every route but `/health` requires `Authorization: Bearer <token>` (or the
    /// `access_token` query parameter / cookie the dashboard uses).
    pub api_token: Option<String>,
    /// Origins allowed by CORS (`*` for any); empty = no CORS headers.
    pub cors_origins: Vec<String>,
    /// The shop's PostgreSQL, for the table endpoints and the health check.
    pub database_url: Option<String>,
    /// How long `?min_lsn=` waits for the views to reach a position before answering 504.
    pub min_lsn_timeout: Duration,
    /// `/health` fails when the source lags more than this.
    pub max_source_lag: Duration,
    /// HTTP worker threads.
    pub workers: usize,
    /// Postgres connections in the pool.
    pub db_pool_size: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            api_token: None,
            cors_origins: Vec::new(),
            database_url: None,
            min_lsn_timeout: Duration::from_secs(5),
            max_source_lag: Duration::from_secs(60),
            workers: std::thread::available_parallelism()
                .map(|n| n.get().min(4))
                .unwrap_or(2),
            db_pool_size: 8,
        }
    }
}

impl std::fmt::Debug for ApiConfig {
    /// Without secrets: the token and the database URL (which may carry a password) are elided.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConfig")
            .field("listen", &self.listen)
            .field("api_token", &self.api_token.as_ref().map(|_| "<set>"))
            .field("cors_origins", &self.cors_origins)
            .field("database_url", &self.database_url.as_ref().map(|_| "<set>"))
            .field("min_lsn_timeout", &self.min_lsn_timeout)
            .field("max_source_lag", &self.max_source_lag)
            .field("workers", &self.workers)
            .finish()
    }
}

/// Shared by all workers.
pub struct AppState {
    pub cfg: ApiConfig,
    pub store: ViewStore,
    pub status: EngineStatus,
    pub db: Option<deadpool_postgres::Pool>,
    started: Instant,
}

fn make_pool(cfg: &ApiConfig) -> anyhow::Result<Option<deadpool_postgres::Pool>> {
    let Some(url) = &cfg.database_url else {
        return Ok(None);
    };
    let pg: tokio_postgres::Config = url
        .parse()
        .map_err(|e| anyhow::anyhow!("invalid --database-url: {e}"))?;
    let mgr = deadpool_postgres::Manager::from_config(
        pg,
        tokio_postgres::NoTls,
        deadpool_postgres::ManagerConfig {
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        },
    );
    let pool = deadpool_postgres::Pool::builder(mgr)
        .max_size(cfg.db_pool_size.max(1))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(5)))
        .create_timeout(Some(Duration::from_secs(5)))
        .build()
        .map_err(|e| anyhow::anyhow!("building the database pool: {e}"))?;
    Ok(Some(pool))
}

/// A running API server on its own thread.
pub struct ApiHandle {
    /// The bound address (the real port when `listen` had port 0).
    pub addr: SocketAddr,
    handle: ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ApiHandle {
    /// Stops accepting, closes connections (open change streams included) and joins the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(t) = self.thread.take() {
            // `stop` is a future that resolves when the server is down; the thread's runtime
            // drives the shutdown, so only the signal needs to be sent from here.
            let fut = self.handle.stop(false);
            drop(fut);
            if t.join().is_err() {
                tracing::error!("API thread panicked");
            }
        }
    }

    /// Blocks until the server stops.
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ApiHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Binds `cfg.listen` now (so errors and the real port are known on return) and serves on a
/// new thread with its own actix runtime.
pub fn spawn(cfg: ApiConfig, store: ViewStore, status: EngineStatus) -> anyhow::Result<ApiHandle> {
    let listener = TcpListener::bind(cfg.listen)
        .map_err(|e| anyhow::anyhow!("binding the HTTP API to {}: {e}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("api".into())
        .spawn(move || {
            let sys = actix_web::rt::System::new();
            let tx2 = tx.clone();
            let res = sys.block_on(async move {
                let server = build_server(cfg, store, status, listener)?;
                let _ = tx2.send(Ok(server.handle()));
                server.await.map_err(anyhow::Error::from)
            });
            match res {
                Ok(()) => {}
                Err(e) => {
                    tracing::error!(error = %e, "HTTP API failed");
                    let _ = tx.send(Err(e));
                }
            }
        })?;
    let handle = rx
        .recv()
        .map_err(|_| anyhow::anyhow!("the API thread ended before starting"))??;
    tracing::info!(%addr, "HTTP API listening");
    Ok(ApiHandle {
        addr,
        handle,
        thread: Some(thread),
    })
}

/// Serves until the server is stopped (Ctrl-C stops it). Must run inside a tokio runtime.
pub async fn serve(cfg: ApiConfig, store: ViewStore, status: EngineStatus) -> anyhow::Result<()> {
    let listener = TcpListener::bind(cfg.listen)
        .map_err(|e| anyhow::anyhow!("binding the HTTP API to {}: {e}", cfg.listen))?;
    tracing::info!(addr = %listener.local_addr()?, "HTTP API listening");
    build_server(cfg, store, status, listener)?.await?;
    Ok(())
}

fn build_server(
    cfg: ApiConfig,
    store: ViewStore,
    status: EngineStatus,
    listener: TcpListener,
) -> anyhow::Result<actix_web::dev::Server> {
    metrics::init();
    let workers = cfg.workers.max(1);
    let state = web::Data::new(AppState {
        db: make_pool(&cfg)?,
        cfg,
        store,
        status,
        started: Instant::now(),
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(from_fn(gate))
            .configure(routes)
            .default_service(web::to(not_found))
    })
    .workers(workers)
    // Change streams never end by themselves: don't wait for them on shutdown.
    .shutdown_timeout(1)
    .listen(listener)?
    .run();
    Ok(server)
}

/// Every route. Public so that tests and the OpenAPI check can enumerate them.
pub fn routes(cfg: &mut web::ServiceConfig) {
    get(cfg, "/", dashboard);
    get(cfg, "/info", info);
    get(cfg, "/health", health);
    get(cfg, "/metrics", metrics_route);
    get(cfg, "/openapi.json", openapi_route);
    get(cfg, "/docs", docs);
    get(cfg, "/docs/", docs);
    get(cfg, "/docs/swagger-ui.css", swagger_css);
    get(cfg, "/docs/swagger-ui-bundle.js", swagger_js);
    views::configure(cfg);
    tables::configure(cfg);
}

/// Registers a GET route whose other methods answer 405 in JSON.
pub(crate) fn get<F, Args>(cfg: &mut web::ServiceConfig, path: &str, handler: F)
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    cfg.service(
        web::resource(path)
            .route(web::get().to(handler))
            .default_service(web::to(method_not_allowed)),
    );
}

async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, "GET"))
        .json(json!({
            "error": format!("{} is not allowed on {}; this API is read-only (GET)", req.method(), req.path()),
        }))
}

const TOKEN_COOKIE: &str = "shopstream_token";

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn cors_origin(cfg: &ApiConfig, req: &ServiceRequest) -> Option<HeaderValue> {
    let origin = req.headers().get(header::ORIGIN)?;
    let o = origin.to_str().ok()?;
    if cfg.cors_origins.iter().any(|c| c == "*") {
        Some(HeaderValue::from_static("*"))
    } else if cfg.cors_origins.iter().any(|c| c == o) {
        Some(origin.clone())
    } else {
        None
    }
}

/// How the request authenticated, if the token is required.
enum Auth {
    Open,
    Ok,
    /// Authenticated by `?access_token=`: set the cookie so the page's own requests pass.
    OkSetCookie(String),
    Denied,
}

fn authenticate(cfg: &ApiConfig, req: &ServiceRequest) -> Auth {
    let Some(token) = &cfg.api_token else {
        return Auth::Open;
    };
    if req.path() == "/health" {
        return Auth::Open;
    }
    let want = token.as_bytes();
    if let Some(h) = req.headers().get(header::AUTHORIZATION) {
        if let Some(t) = h.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")) {
            if constant_time_eq(t.trim().as_bytes(), want) {
                return Auth::Ok;
            }
        }
    }
    if let Some(c) = req.cookie(TOKEN_COOKIE) {
        if constant_time_eq(c.value().as_bytes(), want) {
            return Auth::Ok;
        }
    }
    if let Ok(q) = web::Query::<Vec<(String, String)>>::from_query(req.query_string()) {
        if let Some((_, t)) = q.iter().find(|(k, _)| k == params::ACCESS_TOKEN) {
            if constant_time_eq(t.as_bytes(), want) {
                return Auth::OkSetCookie(t.clone());
            }
        }
    }
    Auth::Denied
}

/// Auth, CORS and request metrics around every route.
async fn gate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let started = Instant::now();
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Err(actix_web::error::ErrorInternalServerError("no app state"));
    };
    let cfg = &state.cfg;
    let origin = cors_origin(cfg, &req);
    let method = req.method().clone();

    let mut res = if method == Method::OPTIONS && origin.is_some() {
        // CORS preflight: answered before auth (browsers send no credentials on preflights).
        let mut r = HttpResponse::NoContent();
        r.insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, OPTIONS"))
            .insert_header((
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                "Authorization, Content-Type, Last-Event-ID",
            ))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"));
        req.into_response(r.finish()).map_into_right_body()
    } else {
        match authenticate(cfg, &req) {
            Auth::Denied => req
                .into_response(ApiError::Unauthorized.error_response())
                .map_into_right_body(),
            auth => {
                let mut res = next.call(req).await?.map_into_left_body();
                if let Auth::OkSetCookie(t) = auth {
                    let cookie = format!("{TOKEN_COOKIE}={t}; Path=/; HttpOnly; SameSite=Strict");
                    if let Ok(v) = HeaderValue::from_str(&cookie) {
                        res.headers_mut().append(header::SET_COOKIE, v);
                    }
                }
                res
            }
        }
    };
    if let Some(o) = origin {
        let h = res.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    metrics::observe_request(
        &route,
        method.as_str(),
        res.status().as_u16(),
        started.elapsed(),
    );
    Ok(res)
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    HttpResponse::NotFound().json(json!({
        "error": format!("no route {} {}; see /openapi.json or /docs", req.method(), req.path()),
    }))
}

async fn dashboard(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Params::parse(&req, &[])?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(include_str!("../assets/dashboard.html")))
}

async fn docs(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Params::parse(&req, &[])?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(include_str!("../assets/docs.html")))
}

async fn swagger_css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .body(&include_bytes!("../assets/swagger-ui.css")[..])
}

async fn swagger_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .body(&include_bytes!("../assets/swagger-ui-bundle.js")[..])
}

async fn openapi_route(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Params::parse(&req, &[])?;
    Ok(HttpResponse::Ok().json(openapi::spec()))
}

async fn metrics_route(
    req: HttpRequest,
    st: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Params::parse(&req, &[])?;
    let text = metrics::render(&st.store, &st.status).map_err(ApiError::Internal)?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}

async fn info(req: HttpRequest, st: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Params::parse(&req, &[])?;
    let views: Vec<_> = st
        .store
        .sizes()
        .into_iter()
        .map(|(v, n)| json!({"name": v.as_str(), "rows": n, "path": views::view_path(v)}))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "name": "shopstream",
        "version": env!("CARGO_PKG_VERSION"),
        "now": now_micros().to_string(),
        "uptime_seconds": st.started.elapsed().as_secs(),
        "engine": st.status.snapshot().to_json(),
        "as_of": st.store.as_of().to_json(),
        "views": views,
        "store": {
            "anomalies": st.store.anomalies(),
            "subscribers": st.store.subscriber_count(),
            "dropped_subscribers": st.store.dropped_subscribers(),
        },
        "database": {"configured": st.db.is_some()},
        "auth": {"token_required": st.cfg.api_token.is_some()},
        "links": {"dashboard": "/", "health": "/health", "docs": "/docs",
            "openapi": "/openapi.json", "metrics": "/metrics", "views": "/views"},
    })))
}

/// Really checks: the database answers (when configured), the source is connected and not
/// lagging beyond `max_source_lag`. 200 or 503 with the reasons.
async fn health(req: HttpRequest, st: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Params::parse(&req, &[])?;
    let mut reasons: Vec<String> = Vec::new();
    let snap = st.status.snapshot();

    let database = match &st.db {
        None => json!({"configured": false}),
        Some(pool) => {
            let t0 = Instant::now();
            let probe = async {
                let c = pool.get().await.map_err(|e| e.to_string())?;
                c.simple_query("SELECT 1")
                    .await
                    .map_err(|e| e.to_string())?;
                Ok::<_, String>(())
            };
            let res = match tokio::time::timeout(Duration::from_secs(2), probe).await {
                Ok(r) => r,
                Err(_) => Err("no answer within 2s".to_string()),
            };
            let ms = t0.elapsed().as_secs_f64() * 1000.0;
            match res {
                Ok(()) => json!({"configured": true, "reachable": true, "latency_ms": ms}),
                Err(e) => {
                    reasons.push(format!("database unreachable: {e}"));
                    json!({"configured": true, "reachable": false, "error": e})
                }
            }
        }
    };

    if !snap.connected {
        reasons.push(match &snap.last_error {
            Some(e) => format!("source {} not connected: {e}", snap.source),
            None => format!("source {} not connected", snap.source),
        });
    }
    let max_lag_ms = st.cfg.max_source_lag.as_millis() as i64;
    if let Some(lag) = snap.lag_ms {
        if lag > max_lag_ms {
            reasons.push(format!(
                "source lag {lag} ms exceeds the limit of {max_lag_ms} ms"
            ));
        }
    }
    let now = now_micros();
    let since_last_ms = snap.last_applied_at.map(|t| (now.0 - t.0) / 1000);
    let ok = reasons.is_empty();
    let body = json!({
        "status": if ok { "ok" } else { "unavailable" },
        "reasons": reasons,
        "checks": {
            "database": database,
            "source": {"description": snap.source, "connected": snap.connected,
                "last_error": snap.last_error, "lag_ms": snap.lag_ms, "max_lag_ms": max_lag_ms},
            "last_transaction": {
                "time": snap.last_time,
                "lsn": snap.last_lsn.map(|l| l.to_string()),
                "committed_at": snap.last_commit_at.map(|t| t.to_string()),
                "applied_at": snap.last_applied_at.map(|t| t.to_string()),
                "ms_since_applied": since_last_ms,
            },
            "store": {"as_of": st.store.as_of().to_json(), "anomalies": st.store.anomalies()},
        },
    });
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok(HttpResponse::build(code)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body))
}
