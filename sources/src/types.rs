//! The vocabulary every crate shares: exact money, source positions, event time, tables, typed
//! rows and the transaction-grouped change stream handed to the engine.
//!
//! Owns only plain data types and their exact text forms. Must not know about Kafka, Postgres,
//! JSON envelopes or the dataflow.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Exact money in minor units (1/100 of the currency unit). `NUMERIC(14,2)` fits an `i64` with
/// room to spare, and sums over millions of orders stay far from overflow.
///
/// There is deliberately no conversion from or to `f64`: every decimal is parsed from its text.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Money(pub i64);

/// Why a decimal text could not become [`Money`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("not a decimal number: {0:?}")]
    Syntax(String),
    #[error("more than 2 significant decimals: {0:?}")]
    Precision(String),
    #[error("out of range: {0:?}")]
    Range(String),
}

impl Money {
    pub const ZERO: Money = Money(0);

    pub fn from_minor(minor: i64) -> Self {
        Money(minor)
    }

    pub fn minor(self) -> i64 {
        self.0
    }

    /// Parses decimal text exactly: `1234.5`, `-0.01`, `100`, `1.0269E7` (Java's double
    /// printing), `+3e-2`. Digits beyond the second decimal must be zeros (`1.230` is fine,
    /// `1.234` is an error): money columns are `NUMERIC(_,2)`, so anything finer is corruption
    /// and rounding it silently would hide that.
    pub fn parse_decimal(text: &str) -> Result<Money, MoneyError> {
        match parse_plain(text.as_bytes()) {
            Some(v) => Ok(Money(v)),
            None => Self::parse_decimal_general(text),
        }
    }

    /// [`Money::parse_decimal`] for any shape it accepts.
    fn parse_decimal_general(text: &str) -> Result<Money, MoneyError> {
        let err = || MoneyError::Syntax(text.chars().take(64).collect());
        let s = text.trim();
        let (neg, s) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let (mantissa, exp) = match s.find(['e', 'E']) {
            Some(i) => {
                let e: i32 = s[i + 1..].parse().map_err(|_| err())?;
                (&s[..i], e)
            }
            None => (s, 0),
        };
        let (int_part, frac_part) = match mantissa.find('.') {
            Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
            None => (mantissa, ""),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(err());
        }
        if !int_part.bytes().all(|b| b.is_ascii_digit())
            || !frac_part.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(err());
        }
        if !(-40..=40).contains(&exp) {
            // Only zero may carry an absurd exponent.
            if int_part.bytes().chain(frac_part.bytes()).all(|b| b == b'0') {
                return Ok(Money(0));
            }
            return Err(MoneyError::Range(text.chars().take(64).collect()));
        }
        // Digits as one string with the decimal point at position `point` (may be out of range).
        let digits: Vec<u8> = int_part.bytes().chain(frac_part.bytes()).collect();
        let point = int_part.len() as i64 + exp as i64;
        let mut acc: i128 = 0;
        // Keep digits up to 2 places after the point; the rest must be zeros.
        for (i, d) in digits.iter().enumerate() {
            let place = i as i64 - point; // 0 = first decimal
            let v = (d - b'0') as i128;
            if place >= 2 {
                if v != 0 {
                    return Err(MoneyError::Precision(text.chars().take(64).collect()));
                }
                continue;
            }
            acc = acc * 10 + v;
            if acc > i64::MAX as i128 * 100 {
                return Err(MoneyError::Range(text.chars().take(64).collect()));
            }
        }
        // Scale up for missing decimal places (and for positive exponents beyond the digits).
        let kept_last_place = digits.len() as i64 - 1 - point; // place of the last digit kept
        let missing = 1 - kept_last_place.min(1);
        for _ in 0..missing.max(0) {
            acc *= 10;
            if acc > i64::MAX as i128 {
                return Err(MoneyError::Range(text.chars().take(64).collect()));
            }
        }
        if digits.is_empty() {
            return Err(err());
        }
        let v = if neg { -acc } else { acc };
        i64::try_from(v)
            .map(Money)
            .map_err(|_| MoneyError::Range(text.chars().take(64).collect()))
    }

    /// Money from an unscaled integer and its scale, as in Kafka Connect's `Decimal`
    /// (`unscaled × 10^-scale`). Finer scales must have zero remainders.
    pub fn from_unscaled(unscaled: i128, scale: u32) -> Result<Money, MoneyError> {
        let v = if scale <= 2 {
            unscaled.checked_mul(10i128.pow(2 - scale))
        } else {
            let div = 10i128.checked_pow(scale - 2);
            match div {
                Some(d) if unscaled % d == 0 => Some(unscaled / d),
                Some(_) => return Err(MoneyError::Precision(format!("{unscaled}e-{scale}"))),
                None => {
                    if unscaled == 0 {
                        Some(0)
                    } else {
                        None
                    }
                }
            }
        };
        v.and_then(|v| i64::try_from(v).ok())
            .map(Money)
            .ok_or_else(|| MoneyError::Range(format!("{unscaled}e-{scale}")))
    }
}

impl fmt::Display for Money {
    /// Exactly two decimals, as the dump format wants: `1234.50`, `-0.05`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", a / 100, a % 100)
    }
}

impl FromStr for Money {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Money::parse_decimal(s)
    }
}

impl std::ops::Add for Money {
    type Output = Money;
    fn add(self, o: Money) -> Money {
        Money(self.0 + o.0)
    }
}

/// A PostgreSQL log sequence number: the source position of a change or commit.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Lsn(pub u64);

impl fmt::Display for Lsn {
    /// Postgres' own notation, `16/B374D848`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

impl FromStr for Lsn {
    type Err = String;
    /// Accepts `16/B374D848` or a plain decimal integer (as Debezium prints `source.lsn`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Some((hi, lo)) = s.split_once('/') {
            let hi = u64::from_str_radix(hi, 16).map_err(|e| format!("bad LSN {s:?}: {e}"))?;
            let lo = u64::from_str_radix(lo, 16).map_err(|e| format!("bad LSN {s:?}: {e}"))?;
            if hi > u32::MAX as u64 || lo > u32::MAX as u64 {
                return Err(format!("bad LSN {s:?}: out of range"));
            }
            Ok(Lsn((hi << 32) | lo))
        } else {
            s.parse::<u64>()
                .map(Lsn)
                .map_err(|e| format!("bad LSN {s:?}: {e}"))
        }
    }
}

/// Event time: microseconds since the Unix epoch, UTC (the precision of `timestamptz`).
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Micros(pub i64);

impl Micros {
    pub const PER_SECOND: i64 = 1_000_000;

    pub fn from_millis(ms: i64) -> Micros {
        Micros(ms.saturating_mul(1000))
    }

    /// Wall-clock now (µs since the Unix epoch; 0 for a clock before it). From `SystemTime`
    /// directly: chrono's `Utc::now` builds a calendar date first, ~2% of the reader thread,
    /// which reads the clock once per message.
    pub fn now() -> Micros {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Micros(i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX))
    }

    /// Parses ISO-8601 / RFC 3339 (`2024-01-02T03:04:05.123456Z`, `+07:00` offsets, a space
    /// instead of `T`, Postgres' `+00` short offset).
    pub fn parse_iso(s: &str) -> Result<Micros, String> {
        let t = s.trim();
        let normalised;
        let mut t = t;
        // Postgres text form: "2024-01-02 03:04:05.12+00" — complete the offset.
        if t.len() > 3 {
            let tail = &t[t.len() - 3..];
            if (tail.starts_with('+') || tail.starts_with('-'))
                && tail[1..].bytes().all(|b| b.is_ascii_digit())
            {
                normalised = format!("{t}:00");
                t = &normalised;
            }
        }
        chrono::DateTime::parse_from_rfc3339(&t.replacen(' ', "T", 1))
            .map(|d| Micros(d.timestamp_micros()))
            .map_err(|e| {
                format!(
                    "bad timestamp {:?}: {e}",
                    s.chars().take(64).collect::<String>()
                )
            })
    }

    /// Start of the tumbling window of `size` (aligned to the epoch) containing this instant.
    pub fn window_start(self, size: i64) -> Micros {
        Micros(self.0.div_euclid(size) * size)
    }
}

impl fmt::Display for Micros {
    /// `YYYY-MM-DDTHH:MM:SSZ`, with `.ffffff` only when the microseconds are not zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match chrono::DateTime::from_timestamp_micros(self.0) {
            Some(d) => {
                if self.0.rem_euclid(1_000_000) == 0 {
                    write!(f, "{}", d.format("%Y-%m-%dT%H:%M:%SZ"))
                } else {
                    write!(f, "{}", d.format("%Y-%m-%dT%H:%M:%S%.6fZ"))
                }
            }
            None => write!(f, "invalid-time({})", self.0),
        }
    }
}

/// The ten captured tables of SPEC §1.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Table {
    Categories,
    Customers,
    Products,
    Payments,
    Shipments,
    Orders,
    OrderItems,
    Carts,
    Wishlists,
    ProductViews,
}

impl Table {
    pub const ALL: [Table; 10] = [
        Table::Categories,
        Table::Customers,
        Table::Products,
        Table::Payments,
        Table::Shipments,
        Table::Orders,
        Table::OrderItems,
        Table::Carts,
        Table::Wishlists,
        Table::ProductViews,
    ];

    /// The SQL table name.
    pub fn name(self) -> &'static str {
        match self {
            Table::Categories => "categories",
            Table::Customers => "customers",
            Table::Products => "products",
            Table::Payments => "payments",
            Table::Shipments => "shipments",
            Table::Orders => "orders",
            Table::OrderItems => "order_items",
            Table::Carts => "carts",
            Table::Wishlists => "wishlists",
            Table::ProductViews => "product_views",
        }
    }

    /// The primary-key column.
    pub fn key_column(self) -> &'static str {
        match self {
            Table::Categories => "category_id",
            Table::Customers => "customer_id",
            Table::Products => "product_id",
            Table::Payments => "payment_id",
            Table::Shipments => "shipment_id",
            Table::Orders => "order_id",
            Table::OrderItems => "order_item_id",
            Table::Carts => "cart_id",
            Table::Wishlists => "wishlist_id",
            Table::ProductViews => "view_id",
        }
    }

    /// From a SQL table name, also schema-qualified (`public.orders`) or a Debezium topic
    /// (`ecommerce-cdc.public.orders`): the last dot-separated part decides.
    pub fn from_name(name: &str) -> Option<Table> {
        // a byte search rather than a reverse split (every event names its table)
        let last = match memchr::memrchr(b'.', name.as_bytes()) {
            Some(dot) => &name[dot + 1..],
            None => name,
        };
        Table::ALL.into_iter().find(|t| t.name() == last)
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Order status (SPEC §1). Only `Cancelled` matters to the views; the rest is kept for the API.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum OrderStatus {
    Pending,
    Confirmed,
    Shipped,
    Delivered,
    Cancelled,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Confirmed => "confirmed",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Cancelled => "cancelled",
        }
    }
}

impl FromStr for OrderStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "pending" => OrderStatus::Pending,
            "confirmed" => OrderStatus::Confirmed,
            "shipped" => OrderStatus::Shipped,
            "delivered" => OrderStatus::Delivered,
            "cancelled" => OrderStatus::Cancelled,
            other => return Err(format!("unknown order status {other:?}")),
        })
    }
}

// ---- Typed rows, one per table, all columns of SPEC §1 (nullable columns are `Option`). ----

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    pub category_id: i64,
    pub name: String,
    pub description: Option<String>,
    pub created_at: Option<Micros>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub customer_id: i64,
    pub first_name: Option<String>,
    pub last_name: String,
    pub email: String,
    /// Captured because the table has it; never leaves the process (API and sinks skip it).
    pub password_hash: String,
    pub address: Option<String>,
    pub phone_number: Option<String>,
    pub created_at: Option<Micros>,
    pub updated_at: Option<Micros>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub product_id: i64,
    pub sku: String,
    pub name: String,
    pub description: Option<String>,
    pub price: Money,
    pub stock: Option<i32>,
    pub category_id: Option<i64>,
    pub is_active: Option<bool>,
    pub created_at: Option<Micros>,
    pub updated_at: Option<Micros>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub payment_id: i64,
    pub payment_date: Option<Micros>,
    pub payment_method: Option<String>,
    pub amount: Option<Money>,
    pub status: Option<String>,
    pub transaction_id: Option<String>,
    pub customer_id: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    pub shipment_id: i64,
    pub shipment_date: Option<Micros>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub country: Option<String>,
    pub zip_code: Option<String>,
    pub status: Option<String>,
    pub tracking_number: Option<String>,
    pub customer_id: Option<i64>,
    pub created_at: Option<Micros>,
    pub updated_at: Option<Micros>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub order_id: i64,
    pub order_date: Micros,
    pub total_price: Money,
    pub status: OrderStatus,
    pub customer_id: Option<i64>,
    pub payment_id: Option<i64>,
    pub shipment_id: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItem {
    pub order_item_id: i64,
    pub order_id: Option<i64>,
    pub product_id: Option<i64>,
    pub quantity: i32,
    /// Unit price at order time.
    pub price: Money,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cart {
    pub cart_id: i64,
    pub customer_id: Option<i64>,
    pub product_id: Option<i64>,
    pub quantity: i32,
    pub added_at: Option<Micros>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wishlist {
    pub wishlist_id: i64,
    pub customer_id: Option<i64>,
    pub product_id: Option<i64>,
    pub added_at: Option<Micros>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductView {
    pub view_id: i64,
    pub customer_id: Option<i64>,
    /// Null when a category was browsed.
    pub product_id: Option<i64>,
    pub category_id: Option<i64>,
    pub viewed_at: Option<Micros>,
}

/// A full typed row of one of the ten tables.
///
/// The rows with several strings are boxed: unboxed, the largest (a shipment, 240 B) set the
/// size of every [`Change`] (272 B), and the parser moves each change several times on its way
/// into a transaction; boxed, a change is 112 B (callgrind with the LTO release profile,
/// reader thread: -4%).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Row {
    Category(Category),
    Customer(Box<Customer>),
    Product(Box<Product>),
    Payment(Box<Payment>),
    Shipment(Box<Shipment>),
    Order(Order),
    OrderItem(OrderItem),
    Cart(Cart),
    Wishlist(Wishlist),
    ProductView(ProductView),
}

impl Row {
    pub fn table(&self) -> Table {
        match self {
            Row::Category(_) => Table::Categories,
            Row::Customer(_) => Table::Customers,
            Row::Product(_) => Table::Products,
            Row::Payment(_) => Table::Payments,
            Row::Shipment(_) => Table::Shipments,
            Row::Order(_) => Table::Orders,
            Row::OrderItem(_) => Table::OrderItems,
            Row::Cart(_) => Table::Carts,
            Row::Wishlist(_) => Table::Wishlists,
            Row::ProductView(_) => Table::ProductViews,
        }
    }

    /// The primary key.
    pub fn key(&self) -> i64 {
        match self {
            Row::Category(r) => r.category_id,
            Row::Customer(r) => r.customer_id,
            Row::Product(r) => r.product_id,
            Row::Payment(r) => r.payment_id,
            Row::Shipment(r) => r.shipment_id,
            Row::Order(r) => r.order_id,
            Row::OrderItem(r) => r.order_item_id,
            Row::Cart(r) => r.cart_id,
            Row::Wishlist(r) => r.wishlist_id,
            Row::ProductView(r) => r.view_id,
        }
    }
}

/// What a change does to its row. Snapshot reads (`r`) upsert like creates.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    Create,
    Update,
    Delete,
    Read,
    Truncate,
}

impl Op {
    /// Debezium's one-letter code.
    pub fn code(self) -> char {
        match self {
            Op::Create => 'c',
            Op::Update => 'u',
            Op::Delete => 'd',
            Op::Read => 'r',
            Op::Truncate => 't',
        }
    }
}

/// Columns whose value the source did not send (Debezium's `__debezium_unavailable_value`,
/// pgoutput's unchanged-TOAST marker): the upsert keeps the stored value for them. Bit `i` is
/// the `i`-th column of the table in SPEC §1 order.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Unavailable(pub u32);

impl Unavailable {
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn contains(self, column: usize) -> bool {
        column < 32 && self.0 & (1 << column) != 0
    }
    pub fn insert(&mut self, column: usize) {
        if column < 32 {
            self.0 |= 1 << column;
        }
    }
}

/// One row change as the source saw it. The engine's upsert decides what it means; `before` is
/// deliberately not carried, since it is absent or partial without `REPLICA IDENTITY FULL`.
// Boxing the row would cost an allocation per change on the hot path; changes live briefly.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeKind {
    /// Insert, update or snapshot read: the new image.
    Upsert { row: Row, unavailable: Unavailable },
    /// Delete of the row with this primary key.
    Delete { key: i64 },
    /// All rows of the table are gone.
    Truncate,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub table: Table,
    pub op: Op,
    /// The change's own LSN (`source.lsn`, `__lsn`, pgoutput's record LSN); `None` when the
    /// source gave none, in which case the change is applied unconditionally.
    pub lsn: Option<Lsn>,
    pub kind: ChangeKind,
}

impl Change {
    /// The primary key the change is about (`None` for a truncate).
    pub fn key(&self) -> Option<i64> {
        match &self.kind {
            ChangeKind::Upsert { row, .. } => Some(row.key()),
            ChangeKind::Delete { key } => Some(*key),
            ChangeKind::Truncate => None,
        }
    }
}

/// Where a transaction came from, so the source can acknowledge it once the engine applied it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Position {
    #[default]
    None,
    /// Line number (1-based) of the last line of the transaction in a file.
    FileLine(u64),
    /// Kafka offsets to commit: (topic, partition, next offset to read).
    Kafka(Vec<(String, i32, i64)>),
    /// Commit LSN of a Postgres transaction (end LSN, acknowledged after apply).
    Postgres(Lsn),
}

/// The changes of one source transaction: the engine applies them at one logical time, so no
/// reader ever sees half of it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// Source transaction id (`source.txId`, pgoutput xid), when known.
    pub tx_id: Option<u64>,
    /// The source position the transaction reflects, for `as_of`: the commit LSN when known,
    /// else the highest change LSN in it.
    pub lsn: Option<Lsn>,
    /// Wall-clock microseconds at which the source received the transaction's last event, for
    /// ingest→visible latency.
    pub received_at: Micros,
    pub position: Position,
    pub changes: Vec<Change>,
}

/// Minor units of a decimal in the shape nearly every money value has, `-?d{1,16}(.d{1,2})?`
/// (no sign `+`, exponent or whitespace; at most 16 integer digits, so no overflow), without
/// the general parser's digit vector and 128-bit arithmetic (~860 instructions a value, 10%
/// of parsing a Debezium event); `None` for any other shape, which the general parser decides.
pub(crate) fn parse_plain(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.first()? {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    // 16 integer digits, the point and 2 decimals at most
    if digits.len() > 19 {
        return None;
    }
    // one pass: the digits as one number, and where the point is (a search for the point
    // and a second pass over both parts cost twice as much)
    let mut v: i64 = 0;
    let mut point = None;
    for (i, &b) in digits.iter().enumerate() {
        match b {
            // wrapping: 19 digits without a point may overflow, and are refused below (an
            // accepted shape has at most 18 digits, below 2^63)
            b'0'..=b'9' => v = v.wrapping_mul(10).wrapping_add(i64::from(b - b'0')),
            b'.' if point.is_none() => point = Some(i),
            _ => return None,
        }
    }
    let (int, frac) = match point {
        Some(p) => (p, digits.len() - p - 1),
        None => (digits.len(), 0),
    };
    if int == 0 || int > 16 || frac > 2 || (point.is_some() && frac == 0) {
        return None;
    }
    for _ in frac..2 {
        v *= 10;
    }
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wherever the fast path answers, the general parser gives the same amount: random texts
    /// over the characters of decimals, plus edge shapes.
    #[test]
    fn plain_money_equals_the_general_parser() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let alphabet = b"0123456789.-+eE 9";
        let mut answered = 0;
        let mut texts: Vec<String> = [
            "0",
            "-0",
            "5.",
            ".5",
            "1.2",
            "1.23",
            "1.234",
            "-12.30",
            "9999999999999999.99",
            "-9999999999999999.99",
            "99999999999999999",
            "00012.5",
            "1..2",
            "-",
            "",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for _ in 0..200_000 {
            let len = rng.random_range(0..22);
            let t: String = (0..len)
                .map(|_| {
                    if rng.random_bool(0.8) {
                        (b'0' + rng.random_range(0..10u8)) as char
                    } else {
                        alphabet[rng.random_range(0..alphabet.len())] as char
                    }
                })
                .collect();
            texts.push(t);
        }
        for t in &texts {
            if let Some(v) = parse_plain(t.as_bytes()) {
                answered += 1;
                assert_eq!(Money::parse_decimal_general(t), Ok(Money(v)), "{t:?}");
            }
        }
        assert!(
            answered > 10_000,
            "the fast path answered only {answered} texts"
        );
    }

    #[test]
    fn money_parses_exactly() {
        let ok = [
            ("1234.5", 123450),
            ("100.0", 10000),
            ("1.0269E7", 1026900000),
            ("-0.01", -1),
            ("0", 0),
            ("7", 700),
            ("1.230", 123),
            ("2358.73", 235873),
            ("1E+2", 10000),
            ("12345678901.99", 1234567890199),
            (".5", 50),
            ("5.", 500),
            ("2.5E-1", 25),
        ];
        for (s, v) in ok {
            assert_eq!(Money::parse_decimal(s), Ok(Money(v)), "{s}");
        }
        for s in [
            "",
            "-",
            "1.234",
            "abc",
            "1e",
            "1.2.3",
            "1e-3",
            "NaN",
            "99999999999999999999",
        ] {
            assert!(Money::parse_decimal(s).is_err(), "{s}");
        }
        assert_eq!(Money(123450).to_string(), "1234.50");
        assert_eq!(Money(-5).to_string(), "-0.05");
        assert_eq!(Money::from_unscaled(235873, 2), Ok(Money(235873)));
        assert_eq!(Money::from_unscaled(2358730, 3), Ok(Money(235873)));
        assert_eq!(Money::from_unscaled(5, 0), Ok(Money(500)));
        assert!(Money::from_unscaled(2358731, 3).is_err());
    }

    #[test]
    fn lsn_and_time_text() {
        let l: Lsn = "16/B374D848".parse().unwrap();
        assert_eq!(l.to_string(), "16/B374D848");
        assert_eq!("33874048".parse::<Lsn>().unwrap(), Lsn(33874048));
        let t = Micros::parse_iso("2024-01-02T03:04:05Z").unwrap();
        assert_eq!(t.to_string(), "2024-01-02T03:04:05Z");
        let t = Micros::parse_iso("2024-01-02 10:04:05.5+07").unwrap();
        assert_eq!(t.to_string(), "2024-01-02T03:04:05.500000Z");
        assert_eq!(Micros(-1).window_start(60_000_000), Micros(-60_000_000));
        assert_eq!(
            Table::from_name("ecommerce-cdc.public.order_items"),
            Some(Table::OrderItems)
        );
    }

    #[test]
    fn every_table_is_found_by_its_name_alone_or_qualified() {
        for t in Table::ALL {
            assert_eq!(Table::from_name(t.name()), Some(t));
            assert_eq!(
                Table::from_name(&format!("shop.public.{}", t.name())),
                Some(t)
            );
            assert_eq!(Table::from_name(&format!("{}.x", t.name())), None);
        }
        for bad in [
            "",
            ".",
            "order",
            "orders ",
            "ORDERS",
            "public.",
            "orders.items",
        ] {
            assert_eq!(Table::from_name(bad), None, "{bad:?}");
        }
    }
}
