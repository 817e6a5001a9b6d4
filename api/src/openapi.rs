//! The OpenAPI 3 description of every route, written by hand next to the routes it describes
//! (a test checks that every registered path appears here).

use crate::tables::{DEFAULT_LIMIT, MAX_LIMIT, TABLES};
use crate::views::{VIEW_DEFAULT_LIMIT, VIEW_MAX_LIMIT};
use serde_json::{json, Map, Value};

fn q(name: &str, desc: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": desc, "schema": schema})
}

fn path_param(name: &str, desc: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": desc,
        "schema": {"type": "integer", "format": "int64"}})
}

fn min_lsn() -> Vec<Value> {
    vec![
        q("min_lsn", "Wait (bounded, default 5 s) until the views reflect at least this source position: a Postgres LSN (`16/B374D848`) or an integer. 504 if not reached.", json!({"type": "string"})),
        q("as_of", "Alias of `min_lsn`.", json!({"type": "string"})),
    ]
}

fn window_params() -> Vec<Value> {
    let mut v = vec![
        q(
            "window",
            "Window label (`1m`, `5m`, `1h`, …) or `all`.",
            json!({"type": "string"}),
        ),
        q(
            "from",
            "Only windows starting at or after this instant (ISO-8601).",
            json!({"type": "string", "format": "date-time"}),
        ),
        q(
            "to",
            "Only windows starting before this instant (ISO-8601).",
            json!({"type": "string", "format": "date-time"}),
        ),
        q(
            "limit",
            "Maximum rows.",
            json!({"type": "integer", "minimum": 1, "maximum": VIEW_MAX_LIMIT, "default": VIEW_DEFAULT_LIMIT}),
        ),
    ];
    v.extend(min_lsn());
    v
}

fn get(summary: &str, tag: &str, params: Vec<Value>, ok: Value, extra: &[u16]) -> Value {
    let mut responses = Map::new();
    responses.insert("200".into(), ok);
    for code in extra {
        let (r, d) = match code {
            400 => ("Error", "Bad parameter"),
            404 => ("Error", "Not found"),
            503 => ("Error", "No database configured / unavailable"),
            504 => ("Error", "The views did not reach `min_lsn` in time"),
            _ => ("Error", "Error"),
        };
        responses.insert(
            code.to_string(),
            json!({"description": d, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{r}")}}}}),
        );
    }
    responses.insert(
        "401".into(),
        json!({"description": "Missing or wrong bearer token (when the API has one)"}),
    );
    json!({"get": {"summary": summary, "tags": [tag], "parameters": params, "responses": responses}})
}

fn json_ok(schema: &str) -> Value {
    json!({"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

fn view_ok() -> Value {
    json_ok("ViewAnswer")
}

/// The whole document.
pub fn spec() -> Value {
    let mut paths = Map::new();
    let mut add = |p: &str, v: Value| {
        paths.insert(p.to_string(), v);
    };
    let html = |d: &str| json!({"description": d, "content": {"text/html": {}}});
    add(
        "/",
        get(
            "Live dashboard (HTML)",
            "meta",
            vec![],
            html("The dashboard page"),
            &[],
        ),
    );
    add(
        "/info",
        get(
            "Engine, source and view summary",
            "meta",
            vec![],
            json!({"description": "OK", "content": {"application/json": {}}}),
            &[],
        ),
    );
    let mut health = get(
        "Health: database reachable, source connected and not lagging",
        "meta",
        vec![],
        json_ok("Health"),
        &[],
    );
    health["get"]["security"] = json!([]);
    health["get"]["responses"]["503"] = json!({"description": "Unhealthy; `reasons` says why", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}});
    add("/health", health);
    add(
        "/metrics",
        get(
            "Prometheus metrics (text exposition format)",
            "meta",
            vec![],
            json!({"description": "OK", "content": {"text/plain": {}}}),
            &[],
        ),
    );
    add(
        "/openapi.json",
        get(
            "This document",
            "meta",
            vec![],
            json!({"description": "OK", "content": {"application/json": {}}}),
            &[],
        ),
    );
    add(
        "/docs",
        get("Swagger UI", "meta", vec![], html("Swagger UI"), &[]),
    );
    add(
        "/docs/",
        get("Swagger UI", "meta", vec![], html("Swagger UI"), &[]),
    );
    add(
        "/docs/swagger-ui.css",
        get(
            "Swagger UI stylesheet (vendored)",
            "meta",
            vec![],
            json!({"description": "OK", "content": {"text/css": {}}}),
            &[],
        ),
    );
    add(
        "/docs/swagger-ui-bundle.js",
        get(
            "Swagger UI script (vendored)",
            "meta",
            vec![],
            json!({"description": "OK", "content": {"application/javascript": {}}}),
            &[],
        ),
    );

    add(
        "/views",
        get(
            "Every view with its size",
            "views",
            vec![],
            json!({"description": "OK", "content": {"application/json": {}}}),
            &[],
        ),
    );
    add(
        "/views/revenue",
        get(
            "Revenue per window",
            "views",
            window_params(),
            view_ok(),
            &[400, 504],
        ),
    );
    let mut tp = window_params();
    tp.push(q(
        "metric",
        "Ranking metric.",
        json!({"type": "string", "enum": ["quantity", "revenue"]}),
    ));
    tp.push(q(
        "category",
        "A category id, or `global`.",
        json!({"type": "string"}),
    ));
    add(
        "/views/top-products",
        get(
            "Top products per window, scope and metric",
            "views",
            tp,
            view_ok(),
            &[400, 504],
        ),
    );
    add(
        "/views/trending",
        get(
            "Trending products (growth against the previous window)",
            "views",
            window_params(),
            view_ok(),
            &[400, 504],
        ),
    );
    let mut cs = window_params();
    cs.push(q("category", "A category id.", json!({"type": "integer"})));
    add(
        "/views/category-sales",
        get(
            "Quantity, revenue and orders per category and window",
            "views",
            cs,
            view_ok(),
            &[400, 504],
        ),
    );
    let mut fa = vec![
        q(
            "rule",
            "Only this rule.",
            json!({"type": "string", "enum": ["frequent_orders", "high_value", "order_burst", "repeated_amount"]}),
        ),
        q(
            "customer",
            "Only this customer.",
            json!({"type": "integer"}),
        ),
        q(
            "limit",
            "Maximum rows.",
            json!({"type": "integer", "minimum": 1, "maximum": VIEW_MAX_LIMIT, "default": VIEW_DEFAULT_LIMIT}),
        ),
    ];
    fa.extend(min_lsn());
    add(
        "/views/fraud-alerts",
        get("Current fraud alerts", "views", fa, view_ok(), &[400, 504]),
    );
    let mut any = vec![
        path_param("name", "View name: revenue, top_products, trending_products, category_sales, fraud_alerts, also_bought, recommendations (dashes also accepted)."),
        q("limit", "Maximum rows.", json!({"type": "integer", "minimum": 1, "maximum": VIEW_MAX_LIMIT, "default": VIEW_DEFAULT_LIMIT})),
    ];
    any[0]["schema"] = json!({"type": "string"});
    any.extend(min_lsn());
    add(
        "/views/{name}",
        get("Any view, whole", "views", any, view_ok(), &[400, 404, 504]),
    );
    let mut ch = vec![path_param("name", "View name (as for /views/{name}).")];
    ch[0]["schema"] = json!({"type": "string"});
    ch.extend(min_lsn());
    add("/views/{name}/changes", get(
        "Server-Sent Events: `snapshot` (rows + as_of), then one `change` event per engine time ({view, as_of, changes: [{op: \"+\"|\"-\", row}]}), in order, without gaps; a client that falls 1024 changes behind gets a final `dropped` event. The event id is the engine time. Not for `recommendations` (computed when read: 400).",
        "views", ch, json!({"description": "An event stream", "content": {"text/event-stream": {}}}), &[400, 404, 504]));
    add("/views/changes", get(
        "Server-Sent Events for several views over one connection (`?views=revenue,fraud_alerts`, default all but `recommendations`, which has no stream: 400 if named): per view a `snapshot` event, then `change` events as for /views/{name}/changes; each event names its view.",
        "views", {
            let mut v = vec![q("views", "Comma-separated view names.", json!({"type": "string"}))];
            v.extend(min_lsn());
            v
        }, json!({"description": "An event stream", "content": {"text/event-stream": {}}}), &[400, 504]));
    let mut ab = vec![
        path_param("id", "Product id."),
        q(
            "k",
            "How many.",
            json!({"type": "integer", "minimum": 1, "maximum": 1000, "default": 10}),
        ),
    ];
    ab.extend(min_lsn());
    add(
        "/products/{id}/also-bought",
        get(
            "Products most often bought together with this one",
            "views",
            ab,
            view_ok(),
            &[400, 504],
        ),
    );
    let mut rc = vec![
        path_param("customer_id", "Customer id."),
        q(
            "k",
            "How many.",
            json!({"type": "integer", "minimum": 1, "maximum": 1000, "default": 10}),
        ),
    ];
    rc.extend(min_lsn());
    add(
        "/recommendations/{customer_id}",
        get(
            "Product recommendations for a customer, computed at request time from the index at the answer's `as_of` (any k up to 1000; `truncated` when the list goes on)",
            "views",
            rc,
            view_ok(),
            &[400, 504],
        ),
    );

    for t in TABLES {
        let row_schema = format!("#/components/schemas/{}", t.name);
        for p in std::iter::once(t.name).chain(t.alias) {
            let alias_note = if p == t.name {
                String::new()
            } else {
                format!(" (old path, same as /{})", t.name)
            };
            add(
                &format!("/{p}"),
                get(
                    &format!("Rows of {} ordered by {}{alias_note}", t.name, t.key),
                    "tables",
                    vec![
                        q(
                            "limit",
                            "Page size.",
                            json!({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}),
                        ),
                        q(
                            "offset",
                            "Rows to skip.",
                            json!({"type": "integer", "minimum": 0, "default": 0}),
                        ),
                    ],
                    json!({"description": "OK", "content": {"application/json": {"schema": {"type": "object", "properties": {
                    "table": {"type": "string"}, "limit": {"type": "integer"}, "offset": {"type": "integer"},
                    "count": {"type": "integer"}, "rows": {"type": "array", "items": {"$ref": row_schema}}}}}}}),
                    &[400, 503],
                ),
            );
            add(
                &format!("/{p}/{{id}}"),
                get(
                    &format!("One row of {} by {}{alias_note}", t.name, t.key),
                    "tables",
                    vec![path_param("id", &format!("The {}.", t.key))],
                    json!({"description": "OK", "content": {"application/json": {"schema": {"$ref": row_schema}}}}),
                    &[400, 404, 503],
                ),
            );
        }
    }

    let mut schemas = Map::new();
    schemas.insert("Error".into(), json!({"type": "object", "required": ["error"], "properties": {
        "error": {"type": "string"}, "parameter": {"type": "string", "description": "The offending parameter (400 only)"}}}));
    schemas.insert(
        "AsOf".into(),
        json!({"type": "object", "properties": {
        "time": {"type": "integer", "description": "Engine time: source transactions applied"},
        "lsn": {"type": "string", "nullable": true, "description": "Highest source LSN applied"},
        "published_at": {"type": "string", "format": "date-time", "nullable": true}}}),
    );
    schemas.insert("ViewAnswer".into(), json!({"type": "object", "required": ["view", "as_of", "rows"], "properties": {
        "view": {"type": "string"}, "as_of": {"$ref": "#/components/schemas/AsOf"},
        "count": {"type": "integer"}, "truncated": {"type": "boolean", "description": "More rows matched than `limit`"},
        "rows": {"type": "array", "items": {"type": "object", "description": "A row in the dump format (SPEC §7): money as two-decimal strings, times ISO-8601 UTC"}}}}));
    schemas.insert(
        "Health".into(),
        json!({"type": "object", "properties": {
        "status": {"type": "string", "enum": ["ok", "unavailable"]},
        "reasons": {"type": "array", "items": {"type": "string"}}, "checks": {"type": "object"}}}),
    );
    for t in TABLES {
        let mut props = Map::new();
        for (c, k) in t.columns {
            use crate::tables::Kind::*;
            let s = match k {
                Int => json!({"type": "integer", "format": "int64", "nullable": true}),
                Text => json!({"type": "string", "nullable": true}),
                Numeric => {
                    json!({"type": "string", "description": "Exact decimal", "example": "1234.50", "nullable": true})
                }
                Timestamp => json!({"type": "string", "format": "date-time", "nullable": true}),
                Bool => json!({"type": "boolean", "nullable": true}),
            };
            props.insert((*c).to_string(), s);
        }
        schemas.insert(
            t.name.to_string(),
            json!({"type": "object", "properties": props}),
        );
    }

    json!({
        "openapi": "3.0.3",
        "info": {"title": "shopstream", "version": env!("CARGO_PKG_VERSION"),
            "description": "Live, exact e-commerce views over change data capture. Every view answer carries `as_of`; add `?min_lsn=` to read your own writes. Table endpoints need a configured database."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "tags": [{"name": "views"}, {"name": "tables"}, {"name": "meta"}],
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
            "description": "Needed when the engine runs with --api-token (the `access_token` query parameter also works, for EventSource)"}}},
    })
}
