//! Typing a Postgres row given as column name → text value (pgoutput's text tuples, snapshot
//! reads over the simple query protocol) into our typed [`Row`]s, by column NAME.
//!
//! Owns the mapping of the ten tables' columns (SPEC §1 order, which is also the order of the
//! [`Unavailable`] bits). Must not know about the wire format or the replication session.

use crate::types::{
    Cart, Category, Customer, Micros, Money, Order, OrderItem, OrderStatus, Payment, Product,
    ProductView, Row, Shipment, Table, Unavailable, Wishlist,
};

/// What the source had for one column.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Field<'a> {
    /// The relation has no such column (an older or trimmed schema).
    Missing,
    Null,
    /// pgoutput 'u': an unchanged TOASTed value that was not sent.
    Unchanged,
    Text(&'a str),
}

/// Why a row could not be typed: always names the table and the column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{table}.{column}: {reason}")]
pub struct RowError {
    pub table: Table,
    pub column: &'static str,
    pub reason: String,
}

/// The columns of each table in SPEC §1 order: index `i` is bit `i` of [`Unavailable`].
pub fn columns(table: Table) -> &'static [&'static str] {
    match table {
        Table::Categories => &["category_id", "name", "description", "created_at"],
        Table::Customers => &[
            "customer_id",
            "first_name",
            "last_name",
            "email",
            "password_hash",
            "address",
            "phone_number",
            "created_at",
            "updated_at",
        ],
        Table::Products => &[
            "product_id",
            "sku",
            "name",
            "description",
            "price",
            "stock",
            "category_id",
            "is_active",
            "created_at",
            "updated_at",
        ],
        Table::Payments => &[
            "payment_id",
            "payment_date",
            "payment_method",
            "amount",
            "status",
            "transaction_id",
            "customer_id",
        ],
        Table::Shipments => &[
            "shipment_id",
            "shipment_date",
            "address",
            "city",
            "state",
            "country",
            "zip_code",
            "status",
            "tracking_number",
            "customer_id",
            "created_at",
            "updated_at",
        ],
        Table::Orders => &[
            "order_id",
            "order_date",
            "total_price",
            "status",
            "customer_id",
            "payment_id",
            "shipment_id",
        ],
        Table::OrderItems => &[
            "order_item_id",
            "order_id",
            "product_id",
            "quantity",
            "price",
        ],
        Table::Carts => &[
            "cart_id",
            "customer_id",
            "product_id",
            "quantity",
            "added_at",
        ],
        Table::Wishlists => &["wishlist_id", "customer_id", "product_id", "added_at"],
        Table::ProductViews => &[
            "view_id",
            "customer_id",
            "product_id",
            "category_id",
            "viewed_at",
        ],
    }
}

/// Reads typed values column by column, collecting unavailable bits on the way.
struct Reader<'a, F: Fn(&str) -> Field<'a>> {
    table: Table,
    get: F,
    unavailable: Unavailable,
    cols: &'static [&'static str],
}

trait FromText: Sized {
    fn from_text(s: &str) -> Result<Self, String>;
    /// Stands in for an unavailable NOT NULL value; the unavailable bit makes the upsert keep
    /// the stored value instead, so which value does not matter.
    fn placeholder() -> Self;
}

impl FromText for i64 {
    fn placeholder() -> Self {
        Self::default()
    }
    fn from_text(s: &str) -> Result<Self, String> {
        s.trim()
            .parse()
            .map_err(|e| format!("not an integer {s:?}: {e}"))
    }
}
impl FromText for i32 {
    fn placeholder() -> Self {
        Self::default()
    }
    fn from_text(s: &str) -> Result<Self, String> {
        s.trim()
            .parse()
            .map_err(|e| format!("not an int4 {s:?}: {e}"))
    }
}
impl FromText for bool {
    fn placeholder() -> Self {
        Self::default()
    }
    fn from_text(s: &str) -> Result<Self, String> {
        match s.trim() {
            "t" | "true" | "TRUE" | "1" | "y" | "yes" | "on" => Ok(true),
            "f" | "false" | "FALSE" | "0" | "n" | "no" | "off" => Ok(false),
            _ => Err(format!("not a boolean {s:?}")),
        }
    }
}
impl FromText for String {
    fn placeholder() -> Self {
        Self::default()
    }
    fn from_text(s: &str) -> Result<Self, String> {
        Ok(s.to_owned())
    }
}
impl FromText for Money {
    fn placeholder() -> Self {
        Self::default()
    }
    fn from_text(s: &str) -> Result<Self, String> {
        Money::parse_decimal(s).map_err(|e| e.to_string())
    }
}
impl FromText for Micros {
    fn placeholder() -> Self {
        Self::default()
    }
    fn from_text(s: &str) -> Result<Self, String> {
        Micros::parse_iso(s)
    }
}
impl FromText for OrderStatus {
    fn placeholder() -> Self {
        OrderStatus::Pending
    }
    fn from_text(s: &str) -> Result<Self, String> {
        match s.trim() {
            "pending" => Ok(OrderStatus::Pending),
            "confirmed" => Ok(OrderStatus::Confirmed),
            "shipped" => Ok(OrderStatus::Shipped),
            "delivered" => Ok(OrderStatus::Delivered),
            "cancelled" | "canceled" => Ok(OrderStatus::Cancelled),
            other => Err(format!("unknown order status {other:?}")),
        }
    }
}

impl<'a, F: Fn(&str) -> Field<'a>> Reader<'a, F> {
    fn err(&self, column: &'static str, reason: impl Into<String>) -> RowError {
        RowError {
            table: self.table,
            column,
            reason: reason.into(),
        }
    }

    fn mark(&mut self, column: &'static str) {
        if let Some(i) = self.cols.iter().position(|c| *c == column) {
            self.unavailable.insert(i);
        }
    }

    /// The primary key: must be present and typed.
    fn key(&mut self, column: &'static str) -> Result<i64, RowError> {
        match (self.get)(column) {
            Field::Text(s) => i64::from_text(s).map_err(|e| self.err(column, e)),
            Field::Null => Err(self.err(column, "primary key is null")),
            Field::Missing => Err(self.err(column, "primary key column missing")),
            Field::Unchanged => Err(self.err(column, "primary key sent as unchanged TOAST")),
        }
    }

    /// A NOT NULL column. Unchanged TOAST gives a placeholder and sets the unavailable bit.
    fn req<T: FromText>(&mut self, column: &'static str) -> Result<T, RowError> {
        match (self.get)(column) {
            Field::Text(s) => T::from_text(s).map_err(|e| self.err(column, e)),
            Field::Null => Err(self.err(column, "null in a NOT NULL column")),
            Field::Missing => Err(self.err(column, "column missing from the relation")),
            Field::Unchanged => {
                self.mark(column);
                Ok(T::placeholder())
            }
        }
    }

    /// A nullable column; a column the relation lacks reads as null.
    fn opt<T: FromText>(&mut self, column: &'static str) -> Result<Option<T>, RowError> {
        match (self.get)(column) {
            Field::Text(s) => T::from_text(s).map(Some).map_err(|e| self.err(column, e)),
            Field::Null | Field::Missing => Ok(None),
            Field::Unchanged => {
                self.mark(column);
                Ok(None)
            }
        }
    }
}

/// Types one row of `table` from its columns' text values, looked up by name.
pub fn typed_row<'a>(
    table: Table,
    get: impl Fn(&str) -> Field<'a>,
) -> Result<(Row, Unavailable), RowError> {
    let mut r = Reader {
        table,
        get,
        unavailable: Unavailable::default(),
        cols: columns(table),
    };
    let row = match table {
        Table::Categories => Row::Category(Category {
            category_id: r.key("category_id")?,
            name: r.req("name")?,
            description: r.opt("description")?,
            created_at: r.opt("created_at")?,
        }),
        Table::Customers => Row::Customer(Box::new(Customer {
            customer_id: r.key("customer_id")?,
            first_name: r.opt("first_name")?,
            last_name: r.req("last_name")?,
            email: r.req("email")?,
            password_hash: r.req("password_hash")?,
            address: r.opt("address")?,
            phone_number: r.opt("phone_number")?,
            created_at: r.opt("created_at")?,
            updated_at: r.opt("updated_at")?,
        })),
        Table::Products => Row::Product(Box::new(Product {
            product_id: r.key("product_id")?,
            sku: r.req("sku")?,
            name: r.req("name")?,
            description: r.opt("description")?,
            price: r.req("price")?,
            stock: r.opt("stock")?,
            category_id: r.opt("category_id")?,
            is_active: r.opt("is_active")?,
            created_at: r.opt("created_at")?,
            updated_at: r.opt("updated_at")?,
        })),
        Table::Payments => Row::Payment(Box::new(Payment {
            payment_id: r.key("payment_id")?,
            payment_date: r.opt("payment_date")?,
            payment_method: r.opt("payment_method")?,
            amount: r.opt("amount")?,
            status: r.opt("status")?,
            transaction_id: r.opt("transaction_id")?,
            customer_id: r.opt("customer_id")?,
        })),
        Table::Shipments => Row::Shipment(Box::new(Shipment {
            shipment_id: r.key("shipment_id")?,
            shipment_date: r.opt("shipment_date")?,
            address: r.opt("address")?,
            city: r.opt("city")?,
            state: r.opt("state")?,
            country: r.opt("country")?,
            zip_code: r.opt("zip_code")?,
            status: r.opt("status")?,
            tracking_number: r.opt("tracking_number")?,
            customer_id: r.opt("customer_id")?,
            created_at: r.opt("created_at")?,
            updated_at: r.opt("updated_at")?,
        })),
        Table::Orders => Row::Order(Order {
            order_id: r.key("order_id")?,
            order_date: r.req("order_date")?,
            total_price: r.req("total_price")?,
            status: r.req("status")?,
            customer_id: r.opt("customer_id")?,
            payment_id: r.opt("payment_id")?,
            shipment_id: r.opt("shipment_id")?,
        }),
        Table::OrderItems => Row::OrderItem(OrderItem {
            order_item_id: r.key("order_item_id")?,
            order_id: r.opt("order_id")?,
            product_id: r.opt("product_id")?,
            quantity: r.req("quantity")?,
            price: r.req("price")?,
        }),
        Table::Carts => Row::Cart(Cart {
            cart_id: r.key("cart_id")?,
            customer_id: r.opt("customer_id")?,
            product_id: r.opt("product_id")?,
            quantity: r.req("quantity")?,
            added_at: r.opt("added_at")?,
        }),
        Table::Wishlists => Row::Wishlist(Wishlist {
            wishlist_id: r.key("wishlist_id")?,
            customer_id: r.opt("customer_id")?,
            product_id: r.opt("product_id")?,
            added_at: r.opt("added_at")?,
        }),
        Table::ProductViews => Row::ProductView(ProductView {
            view_id: r.key("view_id")?,
            customer_id: r.opt("customer_id")?,
            product_id: r.opt("product_id")?,
            category_id: r.opt("category_id")?,
            viewed_at: r.opt("viewed_at")?,
        }),
    };
    Ok((row, r.unavailable))
}

/// Only the primary key of a row (deletes carry the key or the full old row).
pub fn key_of<'a>(table: Table, get: impl Fn(&str) -> Field<'a>) -> Result<i64, RowError> {
    let mut r = Reader {
        table,
        get,
        unavailable: Unavailable::default(),
        cols: columns(table),
    };
    r.key(table.key_column())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(pairs: &'a [(&'a str, Field<'a>)]) -> impl Fn(&str) -> Field<'a> + 'a {
        move |c| {
            pairs
                .iter()
                .find(|(n, _)| *n == c)
                .map(|(_, f)| *f)
                .unwrap_or(Field::Missing)
        }
    }

    #[test]
    fn orders_type_exactly() {
        let cols = [
            ("order_id", Field::Text("7")),
            ("order_date", Field::Text("2024-01-02 03:04:05.5+00")),
            ("total_price", Field::Text("12345678.90")),
            ("status", Field::Text("cancelled")),
            ("customer_id", Field::Null),
            ("payment_id", Field::Text("3")),
        ];
        let (row, u) = typed_row(Table::Orders, lookup(&cols)).unwrap();
        assert!(u.is_empty());
        let Row::Order(o) = row else { panic!() };
        assert_eq!(o.order_id, 7);
        assert_eq!(o.total_price, Money(1234567890));
        assert_eq!(o.status, OrderStatus::Cancelled);
        assert_eq!(o.customer_id, None);
        assert_eq!(o.shipment_id, None);
        assert_eq!(o.order_date.to_string(), "2024-01-02T03:04:05.500000Z");
    }

    #[test]
    fn unchanged_toast_sets_the_bit_and_errors_name_the_column() {
        let cols = [
            ("product_id", Field::Text("1")),
            ("sku", Field::Text("S")),
            ("name", Field::Text("N")),
            ("description", Field::Unchanged),
            ("price", Field::Text("1.5")),
        ];
        let (_, u) = typed_row(Table::Products, lookup(&cols)).unwrap();
        assert!(u.contains(3));
        assert!(!u.contains(2));
        let bad = [
            ("product_id", Field::Text("1")),
            ("sku", Field::Text("S")),
            ("name", Field::Text("N")),
            ("price", Field::Text("NaN")),
        ];
        let e = typed_row(Table::Products, lookup(&bad)).unwrap_err();
        assert_eq!(e.column, "price");
        assert!(e.to_string().starts_with("products.price:"), "{e}");
    }
}
