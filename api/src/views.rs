//! View endpoints: filtered reads of the view store with `as_of`, read-your-writes waits
//! (`?min_lsn=`), and Server-Sent-Event change streams.
//!
//! Reads copy the matching rows under the store's read lock and print them after releasing it,
//! so readers never hold up the engine for JSON encoding.

use crate::error::ApiError;
use crate::metrics;
use crate::params::{parse_id, Params};
use crate::AppState;
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use sources::{Micros, Money};
use std::collections::BTreeMap;
use std::time::Duration;
use view_store::*;

/// Default and maximum `limit` for view reads (views are bounded by retention; this bounds one
/// response).
pub const VIEW_DEFAULT_LIMIT: i64 = 10_000;
pub const VIEW_MAX_LIMIT: i64 = 1_000_000;

/// Waits until the store reflects `?min_lsn=` / `?as_of=` when given.
async fn reach_position(state: &AppState, p: &Params) -> Result<(), ApiError> {
    let Some(lsn) = p.min_lsn()? else {
        return Ok(());
    };
    let timeout = state.cfg.min_lsn_timeout;
    match state.store.wait_for_lsn(lsn, timeout).await {
        Ok(_) => Ok(()),
        Err(seen) => Err(ApiError::Timeout {
            message: format!(
                "the views did not reach source position {lsn} within {:.1}s (they reflect {}); retry later",
                timeout.as_secs_f64(),
                seen.lsn.map(|l| l.to_string()).unwrap_or_else(|| "no LSN yet".into()),
            ),
            as_of: seen.to_json(),
        }),
    }
}

fn answer(view: ViewName, as_of: AsOf, rows: Vec<ViewRow>, truncated: bool) -> HttpResponse {
    let rows: Vec<Value> = rows.iter().map(ViewRow::to_json).collect();
    HttpResponse::Ok().json(json!({
        "view": view.as_str(),
        "as_of": as_of.to_json(),
        "count": rows.len(),
        "truncated": truncated,
        "rows": rows,
    }))
}

/// Collects up to `limit` rows from `start` on (in dump order) while `within` holds, keeping
/// those that pass `keep`.
fn collect(
    rows: Rows<'_>,
    start: Option<&ViewRow>,
    within: impl Fn(&ViewRow) -> bool,
    keep: impl Fn(&ViewRow) -> bool,
    limit: usize,
) -> (Vec<ViewRow>, bool) {
    let mut out = Vec::new();
    let mut truncated = false;
    for r in rows
        .from(start)
        .take_while(|r| within(r))
        .filter(|r| keep(r))
    {
        if out.len() == limit {
            truncated = true;
            break;
        }
        out.push(r.into_owned());
    }
    (out, truncated)
}

const MIN_MONEY: Money = Money(i64::MIN);

/// The smallest row of `view` in window `w` (windowed views sort by window first).
fn window_floor(view: ViewName, w: Window) -> Option<ViewRow> {
    Some(match view {
        ViewName::Revenue => ViewRow::Revenue(RevenueRow {
            window: w,
            window_start: None,
            order_count: i64::MIN,
            revenue: MIN_MONEY,
            avg_order_value: MIN_MONEY,
            prev_revenue: MIN_MONEY,
            trend_pct: None,
        }),
        ViewName::TopProducts => ViewRow::TopProduct(TopProductRow {
            window: w,
            window_start: None,
            category_id: None,
            metric: Metric::Quantity,
            rank: 0,
            product_id: i64::MIN,
            quantity: i64::MIN,
            revenue: MIN_MONEY,
        }),
        ViewName::TrendingProducts => ViewRow::Trending(TrendingRow {
            window: w,
            window_start: None,
            rank: 0,
            product_id: i64::MIN,
            quantity: i64::MIN,
            prev_quantity: i64::MIN,
            growth: i64::MIN,
        }),
        ViewName::CategorySales => ViewRow::CategorySales(CategorySalesRow {
            window: w,
            window_start: None,
            category_id: i64::MIN,
            quantity: i64::MIN,
            revenue: MIN_MONEY,
            order_count: i64::MIN,
        }),
        _ => return None,
    })
}

fn row_window(r: &ViewRow) -> Option<(Window, Option<Micros>)> {
    match r {
        ViewRow::Revenue(r) => Some((r.window, r.window_start)),
        ViewRow::TopProduct(r) => Some((r.window, r.window_start)),
        ViewRow::Trending(r) => Some((r.window, r.window_start)),
        ViewRow::CategorySales(r) => Some((r.window, r.window_start)),
        _ => None,
    }
}

/// Common filters of windowed views: `window`, `from`, `to` (on window_start), `limit`.
struct WindowFilter {
    window: Option<Window>,
    from: Option<Micros>,
    to: Option<Micros>,
    limit: usize,
}

const WINDOW_PARAMS: [&str; 6] = ["window", "from", "to", "limit", "min_lsn", "as_of"];

fn time_param(p: &Params, name: &str) -> Result<Option<Micros>, ApiError> {
    p.get(name)
        .map(|v| {
            Micros::parse_iso(v).map_err(|e| {
                ApiError::bad(
                    name,
                    format!("{e}; expected ISO-8601 like 2026-11-25T10:00:00Z"),
                )
            })
        })
        .transpose()
}

impl WindowFilter {
    fn parse(p: &Params) -> Result<Self, ApiError> {
        Ok(WindowFilter {
            window: p.window("window")?,
            from: time_param(p, "from")?,
            to: time_param(p, "to")?,
            limit: p.int("limit", VIEW_DEFAULT_LIMIT, 1, VIEW_MAX_LIMIT)? as usize,
        })
    }

    fn keep(&self, r: &ViewRow) -> bool {
        let Some((_, start)) = row_window(r) else {
            return false;
        };
        // `all` rows (no start) pass time bounds: they cover all time.
        let after = match (self.from, start) {
            (Some(f), Some(s)) => s >= f,
            _ => true,
        };
        let before = match (self.to, start) {
            (Some(t), Some(s)) => s < t,
            _ => true,
        };
        after && before
    }

    fn read(
        &self,
        store: &ViewStore,
        view: ViewName,
        extra: impl Fn(&ViewRow) -> bool,
    ) -> (AsOf, Vec<ViewRow>, bool) {
        store.read(view, |as_of, map| {
            let start = self.window.and_then(|w| window_floor(view, w));
            let w = self.window;
            let (rows, t) = collect(
                map,
                start.as_ref(),
                |r| w.is_none() || row_window(r).map(|x| x.0) == w,
                |r| self.keep(r) && extra(r),
                self.limit,
            );
            (as_of, rows, t)
        })
    }
}

fn with(base: &[&'static str], more: &[&'static str]) -> Vec<&'static str> {
    base.iter().chain(more).copied().collect()
}

pub async fn revenue(req: HttpRequest, st: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let p = Params::parse(&req, &WINDOW_PARAMS)?;
    let f = WindowFilter::parse(&p)?;
    reach_position(&st, &p).await?;
    let (a, rows, t) = f.read(&st.store, ViewName::Revenue, |_| true);
    Ok(answer(ViewName::Revenue, a, rows, t))
}

/// `category=3` or `category=global`.
fn category_param(p: &Params) -> Result<Option<Option<i64>>, ApiError> {
    match p.get("category") {
        None => Ok(None),
        Some("global") => Ok(Some(None)),
        Some(v) => parse_id("category", v).map(|c| Some(Some(c))).map_err(|_| {
            ApiError::bad(
                "category",
                format!("category must be a category id or \"global\", got {v:?}"),
            )
        }),
    }
}

pub async fn top_products(
    req: HttpRequest,
    st: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = Params::parse(&req, &with(&WINDOW_PARAMS, &["metric", "category"]))?;
    let f = WindowFilter::parse(&p)?;
    let metric = match p.get("metric") {
        None => None,
        Some("quantity") => Some(Metric::Quantity),
        Some("revenue") => Some(Metric::Revenue),
        Some(v) => {
            return Err(ApiError::bad(
                "metric",
                format!("metric must be quantity or revenue, got {v:?}"),
            ))
        }
    };
    let category = category_param(&p)?;
    reach_position(&st, &p).await?;
    let (a, rows, t) = f.read(&st.store, ViewName::TopProducts, |r| match r {
        ViewRow::TopProduct(r) => {
            metric.is_none_or(|m| r.metric == m) && category.is_none_or(|c| r.category_id == c)
        }
        _ => false,
    });
    Ok(answer(ViewName::TopProducts, a, rows, t))
}

pub async fn trending(req: HttpRequest, st: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let p = Params::parse(&req, &WINDOW_PARAMS)?;
    let f = WindowFilter::parse(&p)?;
    reach_position(&st, &p).await?;
    let (a, rows, t) = f.read(&st.store, ViewName::TrendingProducts, |_| true);
    Ok(answer(ViewName::TrendingProducts, a, rows, t))
}

pub async fn category_sales(
    req: HttpRequest,
    st: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = Params::parse(&req, &with(&WINDOW_PARAMS, &["category"]))?;
    let f = WindowFilter::parse(&p)?;
    let category = match category_param(&p)? {
        Some(None) => {
            return Err(ApiError::bad(
                "category",
                "category_sales has no global scope; give a category id",
            ))
        }
        Some(Some(c)) => Some(c),
        None => None,
    };
    reach_position(&st, &p).await?;
    let (a, rows, t) = f.read(&st.store, ViewName::CategorySales, |r| match r {
        ViewRow::CategorySales(r) => category.is_none_or(|c| r.category_id == c),
        _ => false,
    });
    Ok(answer(ViewName::CategorySales, a, rows, t))
}

pub async fn fraud_alerts(
    req: HttpRequest,
    st: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = Params::parse(&req, &["rule", "customer", "limit", "min_lsn", "as_of"])?;
    let rule = p
        .get("rule")
        .filter(|r| !r.is_empty())
        .map(|r| {
            Rule::parse(r).ok_or_else(|| {
                ApiError::bad(
                    "rule",
                    format!(
                        "unknown rule {r:?}; one of {}",
                        Rule::ALL.map(|r| r.as_str()).join(", ")
                    ),
                )
            })
        })
        .transpose()?;
    let customer = p.opt_id("customer")?;
    let limit = p.int("limit", VIEW_DEFAULT_LIMIT, 1, VIEW_MAX_LIMIT)? as usize;
    reach_position(&st, &p).await?;
    let (a, rows, t) = st.store.read(ViewName::FraudAlerts, |a, map| {
        let (rows, t) = collect(
            map,
            None,
            |_| true,
            |r| match r {
                ViewRow::FraudAlert(r) => {
                    rule.is_none_or(|x| r.rule == x)
                        && customer.is_none_or(|c| r.customer_id == Some(c))
                }
                _ => false,
            },
            limit,
        );
        (a, rows, t)
    });
    Ok(answer(ViewName::FraudAlerts, a, rows, t))
}

/// `/products/{id}/also-bought?k=`
pub async fn also_bought(
    req: HttpRequest,
    id: web::Path<String>,
    st: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = Params::parse(&req, &["k", "min_lsn", "as_of"])?;
    let id = parse_id("id", &id)?;
    let k = p.int("k", 10, 1, 1000)? as usize;
    reach_position(&st, &p).await?;
    let start = ViewRow::AlsoBought(AlsoBoughtRow {
        product_id: id,
        rank: 0,
        other_product_id: i64::MIN,
        order_count: i64::MIN,
    });
    let (a, rows, t) = st.store.read(ViewName::AlsoBought, |a, map| {
        let (rows, t) = collect(
            map,
            Some(&start),
            |r| matches!(r, ViewRow::AlsoBought(r) if r.product_id == id),
            |_| true,
            k,
        );
        (a, rows, t)
    });
    Ok(answer(ViewName::AlsoBought, a, rows, t))
}

/// `/recommendations/{customer_id}?k=`: the customer's first k recommendations, computed now
/// from the store's index (any k up to 1000, not only the view's K); `truncated` tells whether
/// the list goes on. Empty for a customer without interactions.
pub async fn recommendations(
    req: HttpRequest,
    id: web::Path<String>,
    st: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = Params::parse(&req, &["k", "min_lsn", "as_of"])?;
    let id = parse_id("customer_id", &id)?;
    let k = p.int("k", 10, 1, 1000)? as usize;
    reach_position(&st, &p).await?;
    // one more than asked, to know whether the list goes on
    let (a, mut rows) = st.store.recommend(id, k + 1);
    let truncated = rows.len() > k;
    rows.truncate(k);
    let rows = rows.into_iter().map(ViewRow::Recommendation).collect();
    Ok(answer(ViewName::Recommendations, a, rows, truncated))
}

/// The read-time view has no change stream: a clear 400 instead of a stream that never moves.
fn no_change_stream(param: &str) -> ApiError {
    ApiError::bad(
        param,
        "recommendations are computed when read and have no change stream; \
         read /recommendations/{customer_id} or /views/recommendations instead",
    )
}

fn view_param(name: &str) -> Result<ViewName, ApiError> {
    ViewName::parse(name).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no view {name:?}; views: {}",
            ViewName::ALL.map(|v| v.as_str()).join(", ")
        ))
    })
}

/// `/views/{name}`: any view, whole (up to `limit`).
pub async fn any_view(
    req: HttpRequest,
    name: web::Path<String>,
    st: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let view = view_param(&name)?;
    let p = Params::parse(&req, &["limit", "min_lsn", "as_of"])?;
    let limit = p.int("limit", VIEW_DEFAULT_LIMIT, 1, VIEW_MAX_LIMIT)? as usize;
    reach_position(&st, &p).await?;
    if view == ViewName::Recommendations {
        // computed now, customer by customer, up to `limit` rows (under the store's read lock)
        let (a, rows, t) = st.store.with_recommender(|a, r| {
            let (rows, t) = r.rows(None, limit);
            (a, rows, t)
        });
        let rows = rows.into_iter().map(ViewRow::Recommendation).collect();
        return Ok(answer(view, a, rows, t));
    }
    let (a, rows, t) = st.store.read(view, |a, map| {
        let (rows, t) = collect(map, None, |_| true, |_| true, limit);
        (a, rows, t)
    });
    Ok(answer(view, a, rows, t))
}

/// Path of each view's read endpoint.
pub fn view_path(v: ViewName) -> &'static str {
    match v {
        ViewName::Revenue => "/views/revenue",
        ViewName::TopProducts => "/views/top-products",
        ViewName::TrendingProducts => "/views/trending",
        ViewName::CategorySales => "/views/category-sales",
        ViewName::FraudAlerts => "/views/fraud-alerts",
        ViewName::AlsoBought => "/views/also_bought",
        ViewName::Recommendations => "/views/recommendations",
    }
}

/// `/views`: every view with its size. `recommendations` is computed when read: its `rows` is
/// the number of customers with a list (each up to K rows), and it has no change stream.
pub async fn list_views(
    req: HttpRequest,
    st: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Params::parse(&req, &[])?;
    let as_of = st.store.as_of();
    let views: Vec<Value> = st
        .store
        .sizes()
        .into_iter()
        .map(|(v, n)| match v {
            ViewName::Recommendations => {
                json!({"name": v.as_str(), "rows": n, "customers": n, "computed_on_read": true,
                    "path": view_path(v), "changes": null})
            }
            _ => json!({"name": v.as_str(), "rows": n, "path": view_path(v),
                "changes": format!("/views/{}/changes", v.as_str())}),
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"as_of": as_of.to_json(), "views": views})))
}

fn sse_event(event: &str, id: u64, data: &Value) -> Bytes {
    Bytes::from(format!("event: {event}\nid: {id}\ndata: {data}\n\n"))
}

const HEARTBEAT: Duration = Duration::from_secs(15);

type Tagged = (ViewName, Option<Feed>);

/// One view's feed as a stream that yields `(view, None)` once when the store drops it.
fn view_feed(
    view: ViewName,
    rx: tokio::sync::mpsc::Receiver<Feed>,
) -> impl futures_util::Stream<Item = Tagged> {
    futures_util::stream::unfold(Some(rx), move |rx| async move {
        let mut rx = rx?;
        match rx.recv().await {
            Some(f) => Some(((view, Some(f)), Some(rx))),
            None => Some(((view, None), None)),
        }
    })
}

struct Sse<S> {
    feeds: S,
    heartbeat: tokio::time::Interval,
    last: BTreeMap<ViewName, AsOf>,
    done: bool,
    _guard: metrics::SseGuard,
}

/// The SSE response for `views`: per view a `snapshot` event, then one `change` event per
/// engine time that changed it, in order and without gaps (events of different views
/// interleave); a `dropped` event ends the stream when a view's subscription fell
/// [`SUBSCRIBER_QUEUE`] batches behind.
fn sse_response(store: &ViewStore, views: &[ViewName]) -> HttpResponse {
    let feeds = futures_util::stream::select_all(
        views
            .iter()
            .map(|v| Box::pin(view_feed(*v, store.subscribe(Some(*v))))),
    );
    let state = Sse {
        feeds,
        heartbeat: tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT),
        last: BTreeMap::new(),
        done: false,
        _guard: metrics::SseGuard::new(),
    };
    let stream = futures_util::stream::unfold(state, |mut s| async move {
        use futures_util::StreamExt;
        if s.done {
            return None;
        }
        let bytes = tokio::select! {
            msg = s.feeds.next() => match msg {
                Some((view, Some(Feed::Snapshot { as_of, rows }))) => {
                    s.last.insert(view, as_of);
                    let rows: Vec<Value> = rows.iter().map(ViewRow::to_json).collect();
                    sse_event("snapshot", as_of.time, &json!({"view": view.as_str(),
                        "as_of": as_of.to_json(), "rows": rows}))
                }
                Some((view, Some(Feed::Changes(batch)))) => {
                    s.last.insert(view, batch.as_of);
                    let changes: Vec<Value> = batch.changes.iter()
                        .map(|(r, d)| json!({"op": if *d > 0 { "+" } else { "-" }, "row": r.to_json()}))
                        .collect();
                    sse_event("change", batch.as_of.time, &json!({"view": view.as_str(),
                        "as_of": batch.as_of.to_json(), "changes": changes}))
                }
                Some((view, None)) => {
                    s.done = true;
                    metrics::sse_dropped();
                    let last = s.last.get(&view).copied().unwrap_or_default();
                    sse_event("dropped", last.time, &json!({"view": view.as_str(),
                        "as_of": last.to_json(),
                        "error": format!("this stream fell more than {SUBSCRIBER_QUEUE} changes behind and was dropped; reconnect for a fresh snapshot")}))
                }
                None => return None,
            },
            _ = s.heartbeat.tick() => Bytes::from_static(b": keep-alive\n\n"),
        };
        Some((Ok::<_, std::convert::Infallible>(bytes), s))
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream)
}

/// `/views/{name}/changes`: the change stream of one view.
pub async fn changes(
    req: HttpRequest,
    name: web::Path<String>,
    st: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let view = view_param(&name)?;
    let p = Params::parse(&req, &["min_lsn", "as_of"])?;
    if view == ViewName::Recommendations {
        return Err(no_change_stream("name"));
    }
    reach_position(&st, &p).await?;
    Ok(sse_response(&st.store, &[view]))
}

/// `/views/changes?views=a,b`: several views' change streams over one connection (browsers
/// allow only six connections per host; the dashboard needs five views). Without `views`,
/// every view that has a stream (all but recommendations).
pub async fn changes_multi(
    req: HttpRequest,
    st: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = Params::parse(&req, &["views", "min_lsn", "as_of"])?;
    let views = match p.get("views") {
        None => ViewName::ALL
            .into_iter()
            .filter(|v| *v != ViewName::Recommendations)
            .collect(),
        Some(list) => {
            let mut vs = Vec::new();
            for n in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                let v = ViewName::parse(n)
                    .ok_or_else(|| ApiError::bad("views", format!("no view {n:?}")))?;
                if v == ViewName::Recommendations {
                    return Err(no_change_stream("views"));
                }
                if !vs.contains(&v) {
                    vs.push(v);
                }
            }
            if vs.is_empty() {
                return Err(ApiError::bad("views", "give at least one view"));
            }
            vs
        }
    };
    reach_position(&st, &p).await?;
    Ok(sse_response(&st.store, &views))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    use crate::get;
    get(cfg, "/views", list_views);
    get(cfg, "/views/revenue", revenue);
    get(cfg, "/views/top-products", top_products);
    get(cfg, "/views/trending", trending);
    get(cfg, "/views/category-sales", category_sales);
    get(cfg, "/views/fraud-alerts", fraud_alerts);
    get(cfg, "/views/changes", changes_multi);
    get(cfg, "/views/{name}", any_view);
    get(cfg, "/views/{name}/changes", changes);
    get(cfg, "/products/{id}/also-bought", also_bought);
    get(cfg, "/recommendations/{customer_id}", recommendations);
}
