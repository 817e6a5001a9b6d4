//! Typed rows (`sources::Row`) as SQL: column lists, statement text, bind parameters and COPY
//! text lines. One generic mapping serves every table, so the simulator writes exactly the rows
//! the behaviour model produced and `generate` COPYs exactly the rows the model would load.
//!
//! Owns no behaviour and no connection.

use bytes::BytesMut;
use sources::{Micros, Money, Row, Table};
use std::error::Error;
use std::fmt::Write as _;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};

/// How a column is bound: the SQL cast in statement text picks the wire type, so an `i64` key
/// binds to a `serial` (int4) column through an assignment cast and money travels as exact
/// decimal text.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Int8,
    Int4,
    Text,
    Numeric,
    Timestamp,
    Bool,
}

impl Kind {
    fn cast(self) -> &'static str {
        match self {
            Kind::Int8 => "int8",
            Kind::Int4 => "int4",
            Kind::Text => "text",
            Kind::Numeric => "text::numeric",
            Kind::Timestamp => "timestamptz",
            Kind::Bool => "bool",
        }
    }
}

use Kind::*;

/// Columns of a table in SPEC §1 order; the first is the primary key.
pub fn columns(table: Table) -> &'static [(&'static str, Kind)] {
    match table {
        Table::Categories => &[
            ("category_id", Int8),
            ("name", Text),
            ("description", Text),
            ("created_at", Timestamp),
        ],
        Table::Customers => &[
            ("customer_id", Int8),
            ("first_name", Text),
            ("last_name", Text),
            ("email", Text),
            ("password_hash", Text),
            ("address", Text),
            ("phone_number", Text),
            ("created_at", Timestamp),
            ("updated_at", Timestamp),
        ],
        Table::Products => &[
            ("product_id", Int8),
            ("sku", Text),
            ("name", Text),
            ("description", Text),
            ("price", Numeric),
            ("stock", Int4),
            ("category_id", Int8),
            ("is_active", Bool),
            ("created_at", Timestamp),
            ("updated_at", Timestamp),
        ],
        Table::Payments => &[
            ("payment_id", Int8),
            ("payment_date", Timestamp),
            ("payment_method", Text),
            ("amount", Numeric),
            ("status", Text),
            ("transaction_id", Text),
            ("customer_id", Int8),
        ],
        Table::Shipments => &[
            ("shipment_id", Int8),
            ("shipment_date", Timestamp),
            ("address", Text),
            ("city", Text),
            ("state", Text),
            ("country", Text),
            ("zip_code", Text),
            ("status", Text),
            ("tracking_number", Text),
            ("customer_id", Int8),
            ("created_at", Timestamp),
            ("updated_at", Timestamp),
        ],
        Table::Orders => &[
            ("order_id", Int8),
            ("order_date", Timestamp),
            ("total_price", Numeric),
            ("status", Text),
            ("customer_id", Int8),
            ("payment_id", Int8),
            ("shipment_id", Int8),
        ],
        Table::OrderItems => &[
            ("order_item_id", Int8),
            ("order_id", Int8),
            ("product_id", Int8),
            ("quantity", Int4),
            ("price", Numeric),
        ],
        Table::Carts => &[
            ("cart_id", Int8),
            ("customer_id", Int8),
            ("product_id", Int8),
            ("quantity", Int4),
            ("added_at", Timestamp),
        ],
        Table::Wishlists => &[
            ("wishlist_id", Int8),
            ("customer_id", Int8),
            ("product_id", Int8),
            ("added_at", Timestamp),
        ],
        Table::ProductViews => &[
            ("view_id", Int8),
            ("customer_id", Int8),
            ("product_id", Int8),
            ("category_id", Int8),
            ("viewed_at", Timestamp),
        ],
    }
}

fn column_list(table: Table) -> String {
    columns(table)
        .iter()
        .map(|(c, _)| *c)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `INSERT INTO t (all columns) VALUES ($1::cast, …)`.
pub fn insert_sql(table: Table) -> String {
    let values: Vec<String> = columns(table)
        .iter()
        .enumerate()
        .map(|(i, (_, k))| format!("${}::{}", i + 1, k.cast()))
        .collect();
    format!(
        "INSERT INTO {} ({}) VALUES ({})",
        table.name(),
        column_list(table),
        values.join(", ")
    )
}

/// `UPDATE t SET every non-key column WHERE key = $1`: the model's image is the full row.
pub fn update_sql(table: Table) -> String {
    let cols = columns(table);
    let sets: Vec<String> = cols
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, (c, k))| format!("{c} = ${}::{}", i + 1, k.cast()))
        .collect();
    format!(
        "UPDATE {} SET {} WHERE {} = $1::int8",
        table.name(),
        sets.join(", "),
        cols[0].0
    )
}

/// `DELETE FROM t WHERE key = $1`.
pub fn delete_sql(table: Table) -> String {
    format!(
        "DELETE FROM {} WHERE {} = $1::int8",
        table.name(),
        columns(table)[0].0
    )
}

/// `COPY t (all columns) FROM STDIN` in text format.
pub fn copy_sql(table: Table) -> String {
    format!(
        "COPY {} ({}) FROM STDIN (FORMAT text)",
        table.name(),
        column_list(table)
    )
}

/// `SELECT all columns …` in a form [`row_from_sql`] reads back (ids as int8, money as text).
pub fn select_sql(table: Table) -> String {
    let cols: Vec<String> = columns(table)
        .iter()
        .map(|(c, k)| match k {
            Int8 => format!("{c}::int8"),
            Numeric => format!("{c}::text"),
            _ => (*c).to_string(),
        })
        .collect();
    format!("SELECT {} FROM {}", cols.join(", "), table.name())
}

/// One bound value. Implements `ToSql` for the wire type its [`Kind`]'s cast asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Val {
    I64(Option<i64>),
    I32(Option<i32>),
    Text(Option<String>),
    Num(Option<Money>),
    Ts(Option<Micros>),
    Bool(Option<bool>),
}

fn chrono_ts(m: Micros) -> Result<chrono::DateTime<chrono::Utc>, Box<dyn Error + Sync + Send>> {
    chrono::DateTime::from_timestamp_micros(m.0)
        .ok_or_else(|| format!("timestamp out of range: {} µs", m.0).into())
}

impl ToSql for Val {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        // Each variant checks its own wire type: `accepts` cannot know the variant.
        fn check<T: ToSql>(ty: &Type) -> Result<(), Box<dyn Error + Sync + Send>> {
            if T::accepts(ty) {
                Ok(())
            } else {
                Err(format!(
                    "cannot bind {} to a {ty} parameter",
                    std::any::type_name::<T>()
                )
                .into())
            }
        }
        match self {
            Val::I64(v) => {
                check::<i64>(ty)?;
                v.to_sql(ty, out)
            }
            Val::I32(v) => {
                check::<i32>(ty)?;
                v.to_sql(ty, out)
            }
            Val::Text(v) => {
                check::<String>(ty)?;
                v.to_sql(ty, out)
            }
            Val::Num(v) => {
                check::<String>(ty)?;
                v.map(|m| m.to_string()).to_sql(ty, out)
            }
            Val::Ts(v) => {
                check::<chrono::DateTime<chrono::Utc>>(ty)?;
                match v {
                    Some(m) => chrono_ts(*m)?.to_sql(ty, out),
                    None => Ok(IsNull::Yes),
                }
            }
            Val::Bool(v) => {
                check::<bool>(ty)?;
                v.to_sql(ty, out)
            }
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl Val {
    /// Appends the COPY text form (`\N` for null, backslash escapes for text).
    pub fn write_copy(&self, out: &mut String) {
        match self {
            Val::I64(Some(v)) => {
                let _ = write!(out, "{v}");
            }
            Val::I32(Some(v)) => {
                let _ = write!(out, "{v}");
            }
            Val::Text(Some(s)) => copy_escape(s, out),
            Val::Num(Some(m)) => {
                let _ = write!(out, "{m}");
            }
            Val::Ts(Some(t)) => {
                let _ = write!(out, "{t}");
            }
            Val::Bool(Some(b)) => out.push(if *b { 't' } else { 'f' }),
            _ => out.push_str("\\N"),
        }
    }
}

fn copy_escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

fn t(s: &str) -> Val {
    Val::Text(Some(s.to_string()))
}
fn ot(s: &Option<String>) -> Val {
    Val::Text(s.clone())
}

/// The row's values in [`columns`] order.
pub fn values(row: &Row) -> Vec<Val> {
    use Val::*;
    match row {
        Row::Category(r) => vec![
            I64(Some(r.category_id)),
            t(&r.name),
            ot(&r.description),
            Ts(r.created_at),
        ],
        Row::Customer(r) => vec![
            I64(Some(r.customer_id)),
            ot(&r.first_name),
            t(&r.last_name),
            t(&r.email),
            t(&r.password_hash),
            ot(&r.address),
            ot(&r.phone_number),
            Ts(r.created_at),
            Ts(r.updated_at),
        ],
        Row::Product(r) => vec![
            I64(Some(r.product_id)),
            t(&r.sku),
            t(&r.name),
            ot(&r.description),
            Num(Some(r.price)),
            I32(r.stock),
            I64(r.category_id),
            Bool(r.is_active),
            Ts(r.created_at),
            Ts(r.updated_at),
        ],
        Row::Payment(r) => vec![
            I64(Some(r.payment_id)),
            Ts(r.payment_date),
            ot(&r.payment_method),
            Num(r.amount),
            ot(&r.status),
            ot(&r.transaction_id),
            I64(r.customer_id),
        ],
        Row::Shipment(r) => vec![
            I64(Some(r.shipment_id)),
            Ts(r.shipment_date),
            ot(&r.address),
            ot(&r.city),
            ot(&r.state),
            ot(&r.country),
            ot(&r.zip_code),
            ot(&r.status),
            ot(&r.tracking_number),
            I64(r.customer_id),
            Ts(r.created_at),
            Ts(r.updated_at),
        ],
        Row::Order(r) => vec![
            I64(Some(r.order_id)),
            Ts(Some(r.order_date)),
            Num(Some(r.total_price)),
            t(r.status.as_str()),
            I64(r.customer_id),
            I64(r.payment_id),
            I64(r.shipment_id),
        ],
        Row::OrderItem(r) => vec![
            I64(Some(r.order_item_id)),
            I64(r.order_id),
            I64(r.product_id),
            I32(Some(r.quantity)),
            Num(Some(r.price)),
        ],
        Row::Cart(r) => vec![
            I64(Some(r.cart_id)),
            I64(r.customer_id),
            I64(r.product_id),
            I32(Some(r.quantity)),
            Ts(r.added_at),
        ],
        Row::Wishlist(r) => vec![
            I64(Some(r.wishlist_id)),
            I64(r.customer_id),
            I64(r.product_id),
            Ts(r.added_at),
        ],
        Row::ProductView(r) => vec![
            I64(Some(r.view_id)),
            I64(r.customer_id),
            I64(r.product_id),
            I64(r.category_id),
            Ts(r.viewed_at),
        ],
    }
}

/// Appends the row as one COPY text line (tab-separated, newline-terminated).
pub fn write_copy_line(row: &Row, out: &mut String) {
    for (i, v) in values(row).iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        v.write_copy(out);
    }
    out.push('\n');
}

/// A row read back from the database could not become a typed row.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{table}: column {column}: {source}")]
    Column {
        table: Table,
        column: &'static str,
        source: tokio_postgres::Error,
    },
    #[error("{table}: column {column}: {reason}")]
    Value {
        table: Table,
        column: &'static str,
        reason: String,
    },
}

struct Reader<'a> {
    row: &'a tokio_postgres::Row,
    table: Table,
    i: usize,
}

impl Reader<'_> {
    fn col(&self) -> &'static str {
        columns(self.table).get(self.i).map(|c| c.0).unwrap_or("?")
    }
    fn get<T: for<'b> tokio_postgres::types::FromSql<'b>>(&mut self) -> Result<T, ReadError> {
        let v = self
            .row
            .try_get(self.i)
            .map_err(|source| ReadError::Column {
                table: self.table,
                column: self.col(),
                source,
            })?;
        self.i += 1;
        Ok(v)
    }
    fn money(&mut self) -> Result<Option<Money>, ReadError> {
        let col = self.col();
        let text: Option<String> = self.get()?;
        text.map(|s| {
            Money::parse_decimal(&s).map_err(|e| ReadError::Value {
                table: self.table,
                column: col,
                reason: e.to_string(),
            })
        })
        .transpose()
    }
    fn ts(&mut self) -> Result<Option<Micros>, ReadError> {
        let v: Option<chrono::DateTime<chrono::Utc>> = self.get()?;
        Ok(v.map(|d| Micros(d.timestamp_micros())))
    }
    fn required<T>(&self, v: Option<T>, column: &'static str) -> Result<T, ReadError> {
        v.ok_or_else(|| ReadError::Value {
            table: self.table,
            column,
            reason: "unexpected NULL".into(),
        })
    }
}

/// Reads a row selected with [`select_sql`].
pub fn row_from_sql(table: Table, row: &tokio_postgres::Row) -> Result<Row, ReadError> {
    use sources::*;
    let mut r = Reader { row, table, i: 0 };
    Ok(match table {
        Table::Categories => Row::Category(Category {
            category_id: r.get()?,
            name: r.get()?,
            description: r.get()?,
            created_at: r.ts()?,
        }),
        Table::Customers => Row::Customer(Box::new(Customer {
            customer_id: r.get()?,
            first_name: r.get()?,
            last_name: r.get()?,
            email: r.get()?,
            password_hash: r.get()?,
            address: r.get()?,
            phone_number: r.get()?,
            created_at: r.ts()?,
            updated_at: r.ts()?,
        })),
        Table::Products => Row::Product(Box::new(Product {
            product_id: r.get()?,
            sku: r.get()?,
            name: r.get()?,
            description: r.get()?,
            price: {
                let m = r.money()?;
                r.required(m, "price")?
            },
            stock: r.get()?,
            category_id: r.get()?,
            is_active: r.get()?,
            created_at: r.ts()?,
            updated_at: r.ts()?,
        })),
        Table::Payments => Row::Payment(Box::new(Payment {
            payment_id: r.get()?,
            payment_date: r.ts()?,
            payment_method: r.get()?,
            amount: r.money()?,
            status: r.get()?,
            transaction_id: r.get()?,
            customer_id: r.get()?,
        })),
        Table::Shipments => Row::Shipment(Box::new(Shipment {
            shipment_id: r.get()?,
            shipment_date: r.ts()?,
            address: r.get()?,
            city: r.get()?,
            state: r.get()?,
            country: r.get()?,
            zip_code: r.get()?,
            status: r.get()?,
            tracking_number: r.get()?,
            customer_id: r.get()?,
            created_at: r.ts()?,
            updated_at: r.ts()?,
        })),
        Table::Orders => {
            let order_id = r.get()?;
            let order_date = r.ts()?;
            let total = r.money()?;
            let status: String = r.get()?;
            Row::Order(Order {
                order_id,
                order_date: r.required(order_date, "order_date")?,
                total_price: r.required(total, "total_price")?,
                status: status.parse().map_err(|reason| ReadError::Value {
                    table,
                    column: "status",
                    reason,
                })?,
                customer_id: r.get()?,
                payment_id: r.get()?,
                shipment_id: r.get()?,
            })
        }
        Table::OrderItems => Row::OrderItem(OrderItem {
            order_item_id: r.get()?,
            order_id: r.get()?,
            product_id: r.get()?,
            quantity: r.get()?,
            price: {
                let m = r.money()?;
                r.required(m, "price")?
            },
        }),
        Table::Carts => Row::Cart(Cart {
            cart_id: r.get()?,
            customer_id: r.get()?,
            product_id: r.get()?,
            quantity: r.get()?,
            added_at: r.ts()?,
        }),
        Table::Wishlists => Row::Wishlist(Wishlist {
            wishlist_id: r.get()?,
            customer_id: r.get()?,
            product_id: r.get()?,
            added_at: r.ts()?,
        }),
        Table::ProductViews => Row::ProductView(ProductView {
            view_id: r.get()?,
            customer_id: r.get()?,
            product_id: r.get()?,
            category_id: r.get()?,
            viewed_at: r.ts()?,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_cover_every_column() {
        assert_eq!(
            insert_sql(Table::OrderItems),
            "INSERT INTO order_items (order_item_id, order_id, product_id, quantity, price) \
             VALUES ($1::int8, $2::int8, $3::int8, $4::int4, $5::text::numeric)"
        );
        assert_eq!(
            update_sql(Table::Carts),
            "UPDATE carts SET customer_id = $2::int8, product_id = $3::int8, quantity = $4::int4, \
             added_at = $5::timestamptz WHERE cart_id = $1::int8"
        );
    }

    #[test]
    fn copy_text_escapes_and_nulls() {
        let row = Row::Category(sources::Category {
            category_id: 3,
            name: "a\tb\\c\nd".into(),
            description: None,
            created_at: Some(Micros(1_500_000)),
        });
        let mut s = String::new();
        write_copy_line(&row, &mut s);
        assert_eq!(s, "3\ta\\tb\\\\c\\nd\t\\N\t1970-01-01T00:00:01.500000Z\n");
    }
}
