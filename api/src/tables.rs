//! Read-only table endpoints over the shop's PostgreSQL database (SPEC §6).
//!
//! Every query uses an explicit column list (`customers.password_hash` is never selected) and
//! bound parameters only; table and column names come from the static specs below, never from
//! the request. Numerics are returned as exact decimal strings, timestamps as ISO-8601 UTC.

use crate::error::ApiError;
use crate::params::{parse_id, Params};
use crate::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use sources::Micros;
use tokio_postgres::Row;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Int,
    Text,
    /// NUMERIC: sent as its exact text (`"1234.50"`).
    Numeric,
    Timestamp,
    Bool,
}

pub struct TableSpec {
    pub name: &'static str,
    /// The old singular path (`/order`), kept for existing clients.
    pub alias: Option<&'static str>,
    pub key: &'static str,
    pub columns: &'static [(&'static str, Kind)],
}

use Kind::*;

/// The tables of SPEC §1 and the columns the API exposes.
pub static TABLES: &[TableSpec] = &[
    TableSpec {
        name: "customers",
        alias: None,
        key: "customer_id",
        // password_hash deliberately absent.
        columns: &[
            ("customer_id", Int),
            ("first_name", Text),
            ("last_name", Text),
            ("email", Text),
            ("address", Text),
            ("phone_number", Text),
            ("created_at", Timestamp),
            ("updated_at", Timestamp),
        ],
    },
    TableSpec {
        name: "products",
        alias: None,
        key: "product_id",
        columns: &[
            ("product_id", Int),
            ("sku", Text),
            ("name", Text),
            ("description", Text),
            ("price", Numeric),
            ("stock", Int),
            ("category_id", Int),
            ("is_active", Bool),
            ("created_at", Timestamp),
            ("updated_at", Timestamp),
        ],
    },
    TableSpec {
        name: "categories",
        alias: None,
        key: "category_id",
        columns: &[
            ("category_id", Int),
            ("name", Text),
            ("description", Text),
            ("created_at", Timestamp),
        ],
    },
    TableSpec {
        name: "orders",
        alias: Some("order"),
        key: "order_id",
        columns: &[
            ("order_id", Int),
            ("order_date", Timestamp),
            ("total_price", Numeric),
            ("status", Text),
            ("customer_id", Int),
            ("payment_id", Int),
            ("shipment_id", Int),
        ],
    },
    TableSpec {
        name: "order_items",
        alias: Some("order_item"),
        key: "order_item_id",
        columns: &[
            ("order_item_id", Int),
            ("order_id", Int),
            ("product_id", Int),
            ("quantity", Int),
            ("price", Numeric),
        ],
    },
    TableSpec {
        name: "carts",
        alias: Some("cart"),
        key: "cart_id",
        columns: &[
            ("cart_id", Int),
            ("customer_id", Int),
            ("product_id", Int),
            ("quantity", Int),
            ("added_at", Timestamp),
        ],
    },
    TableSpec {
        name: "wishlists",
        alias: Some("wishlist"),
        key: "wishlist_id",
        columns: &[
            ("wishlist_id", Int),
            ("customer_id", Int),
            ("product_id", Int),
            ("added_at", Timestamp),
        ],
    },
    TableSpec {
        name: "payments",
        alias: Some("payment"),
        key: "payment_id",
        columns: &[
            ("payment_id", Int),
            ("payment_date", Timestamp),
            ("payment_method", Text),
            ("amount", Numeric),
            ("status", Text),
            ("transaction_id", Text),
            ("customer_id", Int),
        ],
    },
    TableSpec {
        name: "shipments",
        alias: None,
        key: "shipment_id",
        columns: &[
            ("shipment_id", Int),
            ("shipment_date", Timestamp),
            ("address", Text),
            ("city", Text),
            ("state", Text),
            ("country", Text),
            ("zip_code", Text),
            ("status", Text),
            ("tracking_number", Text),
            ("customer_id", Int),
            ("created_at", Timestamp),
            ("updated_at", Timestamp),
        ],
    },
    TableSpec {
        name: "product_views",
        alias: None,
        key: "view_id",
        columns: &[
            ("view_id", Int),
            ("customer_id", Int),
            ("product_id", Int),
            ("category_id", Int),
            ("viewed_at", Timestamp),
        ],
    },
];

pub const MAX_LIMIT: i64 = 1000;
pub const DEFAULT_LIMIT: i64 = 100;

impl TableSpec {
    /// The select list, with casts that make the Rust-side types uniform whatever the exact
    /// column types are (serial/bigserial, varchar/enum, timestamp/timestamptz).
    fn select_list(&self) -> String {
        self.columns
            .iter()
            .map(|(c, k)| match k {
                Int => format!("{c}::int8 AS {c}"),
                Text | Numeric => format!("{c}::text AS {c}"),
                Timestamp => format!("{c}::timestamptz AS {c}"),
                Bool => format!("{c}::bool AS {c}"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn list_sql(&self) -> String {
        format!(
            "SELECT {} FROM {} ORDER BY {} LIMIT $1 OFFSET $2",
            self.select_list(),
            self.name,
            self.key
        )
    }

    pub fn get_sql(&self) -> String {
        format!(
            // `$1::int8`: serial keys are int4; the id is bound as i64 (int4 = int8 still uses the index).
            "SELECT {} FROM {} WHERE {} = $1::int8",
            self.select_list(),
            self.name,
            self.key
        )
    }

    fn row_json(&self, row: &Row) -> Result<Value, ApiError> {
        let mut m = Map::new();
        for (i, (c, k)) in self.columns.iter().enumerate() {
            let v = match k {
                Int => row.try_get::<_, Option<i64>>(i)?.map(Value::from),
                Text | Numeric => row.try_get::<_, Option<String>>(i)?.map(Value::from),
                Bool => row.try_get::<_, Option<bool>>(i)?.map(Value::from),
                Timestamp => row
                    .try_get::<_, Option<DateTime<Utc>>>(i)?
                    .map(|t| Value::from(Micros(t.timestamp_micros()).to_string())),
            };
            m.insert((*c).to_string(), v.unwrap_or(Value::Null));
        }
        Ok(Value::Object(m))
    }
}

fn pool(state: &AppState) -> Result<&deadpool_postgres::Pool, ApiError> {
    state.db.as_ref().ok_or(ApiError::NoDatabase)
}

pub async fn list(
    spec: &'static TableSpec,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = Params::parse(&req, &["limit", "offset"])?;
    let limit = p.int("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)?;
    let offset = p.int("offset", 0, 0, i64::MAX)?;
    let client = pool(&state)?.get().await?;
    let stmt = client.prepare_cached(&spec.list_sql()).await?;
    let rows = client.query(&stmt, &[&limit, &offset]).await?;
    let rows = rows
        .iter()
        .map(|r| spec.row_json(r))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(json!({
        "table": spec.name, "limit": limit, "offset": offset, "count": rows.len(), "rows": rows,
    })))
}

pub async fn get(
    spec: &'static TableSpec,
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Params::parse(&req, &[])?;
    let id = parse_id("id", &id)?;
    let client = pool(&state)?.get().await?;
    let stmt = client.prepare_cached(&spec.get_sql()).await?;
    match client.query_opt(&stmt, &[&id]).await? {
        Some(r) => Ok(HttpResponse::Ok().json(spec.row_json(&r)?)),
        None => Err(ApiError::NotFound(format!(
            "no row in {} with {} = {id}",
            spec.name, spec.key
        ))),
    }
}

/// Registers `/<table>`, `/<table>/{id}` and the singular aliases.
pub fn configure(cfg: &mut web::ServiceConfig) {
    for spec in TABLES {
        for path in std::iter::once(spec.name).chain(spec.alias) {
            crate::get(cfg, &format!("/{path}"), move |req, st| list(spec, req, st));
            crate::get(cfg, &format!("/{path}/{{id}}"), move |req, id, st| {
                get(spec, req, id, st)
            });
        }
    }
}
