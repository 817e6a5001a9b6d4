//! Raw columns → typed rows of the ten tables, with the exact decoding of every column encoding.
//!
//! Column index (for [`Unavailable`]) = the column's position in SPEC §1 order, which is also the
//! field order of the row structs in `types.rs`. A column carrying Debezium's unavailable
//! placeholder sets its bit and gets a placeholder value (`None`, `0`, empty string); the engine
//! keeps the stored value for it.

use super::envelope::{clip, Raw, RawRow, Str};
use super::schema::{self, ColKind, SchemaInfo};
use super::{ParseError, UNAVAILABLE_VALUE};
use crate::decimal::{money_from_base64, money_from_unscaled, unscaled_from_be};
use crate::types::*;
use serde::Deserialize;
use std::rc::Rc;
use std::str::FromStr;

/// Per-message decoding context: the table and the (lazily parsed) schema block.
pub(crate) struct Ctx<'a> {
    table: Table,
    schema: Option<Raw<'a>>,
    info: Option<Rc<SchemaInfo>>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(table: Table, schema: Option<Raw<'a>>) -> Ctx<'a> {
        Ctx {
            table,
            schema,
            info: None,
        }
    }

    /// The column's encoding per the schema block; `None` without a schema.
    fn kind(&mut self, column: &str) -> Option<ColKind> {
        let schema = self.schema?;
        let info = self.info.get_or_insert_with(|| schema::info(schema));
        info.kind(column)
    }

    /// The primary key of a row image (a delete's `before`, a flattened delete's row).
    pub(crate) fn key(&self, row: &RawRow) -> Result<i64, ParseError> {
        let col = self.table.key_column();
        match row.get(col).map(|r| r.get()) {
            None | Some("null") => Err(ParseError::missing(self.table, col)),
            Some(s) => conv_i64(self.table, col, s),
        }
    }
}

fn wrong(table: Table, column: &str, detail: String) -> ParseError {
    ParseError::WrongType {
        table: table.to_string(),
        column: column.to_string(),
        detail,
    }
}

fn bad_decimal(table: Table, column: &str, detail: impl ToString) -> ParseError {
    ParseError::BadDecimal {
        table: table.to_string(),
        column: column.to_string(),
        detail: detail.to_string(),
    }
}

fn bad_time(table: Table, column: &str, detail: impl ToString) -> ParseError {
    ParseError::BadTimestamp {
        table: table.to_string(),
        column: column.to_string(),
        detail: detail.to_string(),
    }
}

fn conv_i64(t: Table, col: &str, s: &str) -> Result<i64, ParseError> {
    s.parse::<i64>().map_err(|_| {
        wrong(
            t,
            col,
            format!("expected a 64-bit integer, got {}", clip(s)),
        )
    })
}

fn conv_i32(t: Table, col: &str, s: &str) -> Result<i32, ParseError> {
    s.parse::<i32>().map_err(|_| {
        wrong(
            t,
            col,
            format!("expected a 32-bit integer, got {}", clip(s)),
        )
    })
}

fn conv_bool(t: Table, col: &str, s: &str) -> Result<bool, ParseError> {
    match s {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(wrong(
            t,
            col,
            format!("expected a boolean, got {}", clip(s)),
        )),
    }
}

/// The content of a JSON string token, borrowed when it has no escapes.
fn string_content<'s>(
    t: Table,
    col: &str,
    s: &'s str,
) -> Result<std::borrow::Cow<'s, str>, ParseError> {
    let b = s.as_bytes();
    if b.len() >= 2 && b[0] == b'"' && b[b.len() - 1] == b'"' {
        if !s.contains('\\') {
            return Ok(std::borrow::Cow::Borrowed(&s[1..s.len() - 1]));
        }
        return serde_json::from_str::<String>(s)
            .map(std::borrow::Cow::Owned)
            .map_err(|e| wrong(t, col, e.to_string()));
    }
    Err(wrong(t, col, format!("expected a string, got {}", clip(s))))
}

fn conv_string(t: Table, col: &str, s: &str) -> Result<String, ParseError> {
    string_content(t, col, s).map(|c| c.into_owned())
}

fn conv_status(t: Table, col: &str, s: &str) -> Result<OrderStatus, ParseError> {
    let c = string_content(t, col, s)?;
    OrderStatus::from_str(&c).map_err(|e| wrong(t, col, e))
}

#[derive(Deserialize)]
struct VariableScale<'a> {
    scale: i64,
    #[serde(borrow)]
    value: Str<'a>,
}

/// Money from any encoding SPEC §3 lists; `kind` is the schema's word on the column, if any.
fn conv_money(t: Table, col: &str, s: &str, kind: Option<ColKind>) -> Result<Money, ParseError> {
    // The common shape first: a quoted plain decimal with a point (what
    // `decimal.handling.mode=string` writes), which every path below would read as
    // `Money::parse_decimal` does; the string's unescaping check, the owned-or-borrowed
    // content and the general parser's entry there were ~375 instructions a value.
    if !matches!(kind, Some(ColKind::Decimal { .. })) {
        if let Some(v) = quoted_plain_decimal(s.as_bytes()) {
            return Ok(Money(v));
        }
    }
    match s.as_bytes().first() {
        Some(b'"') => {
            let c = string_content(t, col, s)?;
            match kind {
                Some(ColKind::Decimal { scale }) => {
                    money_from_base64(&c, scale).map_err(|e| bad_decimal(t, col, e))
                }
                Some(ColKind::Text) => Money::parse_decimal(&c).map_err(|e| bad_decimal(t, col, e)),
                // Without a schema: decimal text has a point, base64 never does (SPEC §3).
                _ if c.contains('.') => {
                    Money::parse_decimal(&c).map_err(|e| bad_decimal(t, col, e))
                }
                _ => money_from_base64(&c, 2).map_err(|e| bad_decimal(t, col, e)),
            }
        }
        Some(b'{') => {
            let v: VariableScale = serde_json::from_str(s).map_err(|e| bad_decimal(t, col, e))?;
            let mut buf = [0u8; 48];
            use base64::Engine as _;
            let n = base64::engine::general_purpose::STANDARD
                .decode_slice(v.value.0.as_bytes(), &mut buf)
                .map_err(|_| bad_decimal(t, col, format!("bad base64 {}", clip(&v.value.0))))?;
            let unscaled = unscaled_from_be(&buf[..n]).map_err(|e| bad_decimal(t, col, e))?;
            money_from_unscaled(unscaled, v.scale).map_err(|e| bad_decimal(t, col, e))
        }
        Some(b'-' | b'0'..=b'9') => Money::parse_decimal(s).map_err(|e| bad_decimal(t, col, e)),
        _ => Err(bad_decimal(t, col, format!("not a decimal: {}", clip(s)))),
    }
}

/// `"[-]d{1,16}.d{1,2}"` (quotes included) in minor units; `None` for any other text. The
/// point is required: without a schema, a string without one is base64 (SPEC §3).
fn quoted_plain_decimal(b: &[u8]) -> Option<i64> {
    let [b'"', inner @ .., b'"'] = b else {
        return None;
    };
    if !inner.contains(&b'.') {
        return None;
    }
    crate::types::parse_plain(inner)
}

/// A money column's raw JSON text decoded by the schemaless rules (scale 2 for base64).
pub fn decode_money(raw_json: &str) -> Result<Money, ParseError> {
    conv_money(Table::Orders, "money", raw_json.trim(), None)
}

/// Decodes a row image given as JSON object text, by the schemaless rules.
pub fn decode_row_json(table: Table, text: &str) -> Result<(Row, Unavailable), ParseError> {
    let row = RawRow::from_json(text)?;
    decode_row(table, &row, &mut Ctx::new(table, None))
}

/// Epoch numbers without a schema: the magnitude decides the unit. Milliseconds cover
/// 1970-01-01 ± 3,000 years below 1e14; microseconds from 1973-03-03 (1e14) up to 5138; above
/// 1e17 (1973 in nanoseconds) nanoseconds. Microsecond instants before 1973-03-03 would be read
/// as milliseconds — acceptable for shop data, and a schema block removes the guess.
fn epoch_guess(v: i64) -> Micros {
    let a = v.unsigned_abs();
    if a >= 100_000_000_000_000_000 {
        Micros(v.div_euclid(1000))
    } else if a >= 100_000_000_000_000 {
        Micros(v)
    } else {
        Micros::from_millis(v)
    }
}

fn conv_time(t: Table, col: &str, s: &str, kind: Option<ColKind>) -> Result<Micros, ParseError> {
    if s.as_bytes().first() == Some(&b'"') {
        let c = string_content(t, col, s)?;
        return match fast_iso_utc(&c) {
            Some(m) => Ok(m),
            None => Micros::parse_iso(&c).map_err(|e| bad_time(t, col, e)),
        };
    }
    let v: i64 = s
        .parse()
        .map_err(|_| bad_time(t, col, format!("not an epoch integer: {}", clip(s))))?;
    Ok(match kind {
        Some(ColKind::EpochMillis) => Micros::from_millis(v),
        Some(ColKind::EpochMicros) => Micros(v),
        Some(ColKind::EpochNanos) => Micros(v.div_euclid(1000)),
        _ => epoch_guess(v),
    })
}

fn digits(b: &[u8]) -> Option<i64> {
    let mut v = 0i64;
    for &d in b {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (d - b'0') as i64;
    }
    Some(v)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The exact shape ZonedTimestamp prints, `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z`, without chrono's
/// general parser; anything else returns `None` and goes the general way.
fn fast_iso_utc(s: &str) -> Option<Micros> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    if *b.last()? != b'Z' {
        return None;
    }
    let (y, mo, d) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let (h, mi, se) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 59 {
        return None;
    }
    // Day-of-month beyond the month's length: let chrono reject it with a proper message.
    let dim = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][(mo - 1) as usize];
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if d > dim + i64::from(mo == 2 && leap) {
        return None;
    }
    let rest = &b[19..b.len() - 1];
    let micros = match rest {
        [] => 0,
        [b'.', frac @ ..] if !frac.is_empty() && frac.len() <= 9 => {
            let mut f = digits(frac)?;
            for _ in frac.len()..6 {
                f *= 10;
            }
            for _ in 6..frac.len() {
                f /= 10;
            }
            f
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    Some(Micros(
        (days * 86_400 + h * 3600 + mi * 60 + se) * 1_000_000 + micros,
    ))
}

enum Val<'a> {
    Null,
    Unavailable,
    Raw(&'a str),
}

/// Column access for one row image.
struct Cols<'r, 'a, 's> {
    row: &'r RawRow<'a>,
    ctx: &'r mut Ctx<'s>,
    t: Table,
    un: Unavailable,
    /// How many of the row's first members were found where asked, in order (see
    /// [`Cols::val`]).
    in_order: usize,
}

impl<'a> Cols<'_, 'a, '_> {
    /// The value of column `name`, the table's column `idx`. Debezium writes a row's columns
    /// in the table's order, which is the order `decode_row` asks for them, so member `idx` is
    /// looked at first: searching by name from the start was ~15 name comparisons per row.
    /// The hint is taken only while every earlier member was found at its own index, so those
    /// members are other columns and the first member named `name` is the one a search would
    /// find (a duplicated name still resolves to its first occurrence).
    fn val(&mut self, idx: usize, name: &str) -> Val<'a> {
        let found = match self.row.get_at(idx, name) {
            Some(v) if idx == self.in_order => {
                self.in_order += 1;
                Some(v)
            }
            _ => self.row.get(name),
        };
        match found.map(|r| r.get()) {
            None | Some("null") => Val::Null,
            Some(s)
                if s.len() == UNAVAILABLE_VALUE.len() + 2
                    && &s[1..s.len() - 1] == UNAVAILABLE_VALUE =>
            {
                self.un.insert(idx);
                Val::Unavailable
            }
            Some(s) => Val::Raw(s),
        }
    }

    fn req<T>(
        &mut self,
        idx: usize,
        name: &str,
        placeholder: T,
        conv: impl FnOnce(&mut Self, &str) -> Result<T, ParseError>,
    ) -> Result<T, ParseError> {
        match self.val(idx, name) {
            Val::Null => Err(ParseError::missing(self.t, name)),
            Val::Unavailable => Ok(placeholder),
            Val::Raw(s) => conv(self, s),
        }
    }

    fn opt<T>(
        &mut self,
        idx: usize,
        name: &str,
        conv: impl FnOnce(&mut Self, &str) -> Result<T, ParseError>,
    ) -> Result<Option<T>, ParseError> {
        match self.val(idx, name) {
            Val::Null | Val::Unavailable => Ok(None),
            Val::Raw(s) => conv(self, s).map(Some),
        }
    }

    fn key(&mut self, name: &str) -> Result<i64, ParseError> {
        match self.val(0, name) {
            Val::Null => Err(ParseError::missing(self.t, name)),
            Val::Unavailable => Err(wrong(self.t, name, "primary key unavailable".into())),
            Val::Raw(s) => conv_i64(self.t, name, s),
        }
    }

    fn id(&mut self, idx: usize, name: &str) -> Result<Option<i64>, ParseError> {
        self.opt(idx, name, |c, s| conv_i64(c.t, name, s))
    }
    fn int(&mut self, idx: usize, name: &str) -> Result<i32, ParseError> {
        self.req(idx, name, 0, |c, s| conv_i32(c.t, name, s))
    }
    fn oint(&mut self, idx: usize, name: &str) -> Result<Option<i32>, ParseError> {
        self.opt(idx, name, |c, s| conv_i32(c.t, name, s))
    }
    fn obool(&mut self, idx: usize, name: &str) -> Result<Option<bool>, ParseError> {
        self.opt(idx, name, |c, s| conv_bool(c.t, name, s))
    }
    fn text(&mut self, idx: usize, name: &str) -> Result<String, ParseError> {
        self.req(idx, name, String::new(), |c, s| conv_string(c.t, name, s))
    }
    fn otext(&mut self, idx: usize, name: &str) -> Result<Option<String>, ParseError> {
        self.opt(idx, name, |c, s| conv_string(c.t, name, s))
    }
    fn money(&mut self, idx: usize, name: &str) -> Result<Money, ParseError> {
        self.req(idx, name, Money::ZERO, |c, s| {
            let kind = c.ctx.kind_if_needed(name, s, true);
            conv_money(c.t, name, s, kind)
        })
    }
    fn omoney(&mut self, idx: usize, name: &str) -> Result<Option<Money>, ParseError> {
        self.opt(idx, name, |c, s| {
            let kind = c.ctx.kind_if_needed(name, s, true);
            conv_money(c.t, name, s, kind)
        })
    }
    fn time(&mut self, idx: usize, name: &str) -> Result<Micros, ParseError> {
        self.req(idx, name, Micros(0), |c, s| {
            let kind = c.ctx.kind_if_needed(name, s, false);
            conv_time(c.t, name, s, kind)
        })
    }
    fn otime(&mut self, idx: usize, name: &str) -> Result<Option<Micros>, ParseError> {
        self.opt(idx, name, |c, s| {
            let kind = c.ctx.kind_if_needed(name, s, false);
            conv_time(c.t, name, s, kind)
        })
    }
    fn status(&mut self, idx: usize, name: &str) -> Result<OrderStatus, ParseError> {
        self.req(idx, name, OrderStatus::Pending, |c, s| {
            conv_status(c.t, name, s)
        })
    }
}

impl Ctx<'_> {
    /// Consults the schema only when the encoding is ambiguous without it: a money string
    /// without a decimal point, or an epoch number. Plain decimals, decimal strings, structs and
    /// ISO strings never pay for parsing the schema block.
    fn kind_if_needed(&mut self, column: &str, raw: &str, money: bool) -> Option<ColKind> {
        let ambiguous = if money {
            raw.starts_with('"') && !raw.contains('.')
        } else {
            !raw.starts_with('"')
        };
        if ambiguous {
            self.kind(column)
        } else {
            None
        }
    }
}

/// Decodes a full row image of `table`.
pub(crate) fn decode_row(
    table: Table,
    row: &RawRow,
    ctx: &mut Ctx,
) -> Result<(Row, Unavailable), ParseError> {
    let mut c = Cols {
        row,
        ctx,
        t: table,
        un: Unavailable::default(),
        in_order: 0,
    };
    let row = match table {
        Table::Categories => Row::Category(Category {
            category_id: c.key("category_id")?,
            name: c.text(1, "name")?,
            description: c.otext(2, "description")?,
            created_at: c.otime(3, "created_at")?,
        }),
        Table::Customers => Row::Customer(Box::new(Customer {
            customer_id: c.key("customer_id")?,
            first_name: c.otext(1, "first_name")?,
            last_name: c.text(2, "last_name")?,
            email: c.text(3, "email")?,
            password_hash: c.text(4, "password_hash")?,
            address: c.otext(5, "address")?,
            phone_number: c.otext(6, "phone_number")?,
            created_at: c.otime(7, "created_at")?,
            updated_at: c.otime(8, "updated_at")?,
        })),
        Table::Products => Row::Product(Box::new(Product {
            product_id: c.key("product_id")?,
            sku: c.text(1, "sku")?,
            name: c.text(2, "name")?,
            description: c.otext(3, "description")?,
            price: c.money(4, "price")?,
            stock: c.oint(5, "stock")?,
            category_id: c.id(6, "category_id")?,
            is_active: c.obool(7, "is_active")?,
            created_at: c.otime(8, "created_at")?,
            updated_at: c.otime(9, "updated_at")?,
        })),
        Table::Payments => Row::Payment(Box::new(Payment {
            payment_id: c.key("payment_id")?,
            payment_date: c.otime(1, "payment_date")?,
            payment_method: c.otext(2, "payment_method")?,
            amount: c.omoney(3, "amount")?,
            status: c.otext(4, "status")?,
            transaction_id: c.otext(5, "transaction_id")?,
            customer_id: c.id(6, "customer_id")?,
        })),
        Table::Shipments => Row::Shipment(Box::new(Shipment {
            shipment_id: c.key("shipment_id")?,
            shipment_date: c.otime(1, "shipment_date")?,
            address: c.otext(2, "address")?,
            city: c.otext(3, "city")?,
            state: c.otext(4, "state")?,
            country: c.otext(5, "country")?,
            zip_code: c.otext(6, "zip_code")?,
            status: c.otext(7, "status")?,
            tracking_number: c.otext(8, "tracking_number")?,
            customer_id: c.id(9, "customer_id")?,
            created_at: c.otime(10, "created_at")?,
            updated_at: c.otime(11, "updated_at")?,
        })),
        Table::Orders => Row::Order(Order {
            order_id: c.key("order_id")?,
            order_date: c.time(1, "order_date")?,
            total_price: c.money(2, "total_price")?,
            status: c.status(3, "status")?,
            customer_id: c.id(4, "customer_id")?,
            payment_id: c.id(5, "payment_id")?,
            shipment_id: c.id(6, "shipment_id")?,
        }),
        Table::OrderItems => Row::OrderItem(OrderItem {
            order_item_id: c.key("order_item_id")?,
            order_id: c.id(1, "order_id")?,
            product_id: c.id(2, "product_id")?,
            quantity: c.int(3, "quantity")?,
            price: c.money(4, "price")?,
        }),
        Table::Carts => Row::Cart(Cart {
            cart_id: c.key("cart_id")?,
            customer_id: c.id(1, "customer_id")?,
            product_id: c.id(2, "product_id")?,
            quantity: c.int(3, "quantity")?,
            added_at: c.otime(4, "added_at")?,
        }),
        Table::Wishlists => Row::Wishlist(Wishlist {
            wishlist_id: c.key("wishlist_id")?,
            customer_id: c.id(1, "customer_id")?,
            product_id: c.id(2, "product_id")?,
            added_at: c.otime(3, "added_at")?,
        }),
        Table::ProductViews => Row::ProductView(ProductView {
            view_id: c.key("view_id")?,
            customer_id: c.id(1, "customer_id")?,
            product_id: c.id(2, "product_id")?,
            category_id: c.id(3, "category_id")?,
            viewed_at: c.otime(4, "viewed_at")?,
        }),
    };
    Ok((row, c.un))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Columns are looked for at their own index first; out of order, after other members or
    /// repeated, each is still the first member of its name.
    #[test]
    fn columns_in_any_order_resolve_to_their_first_occurrence() {
        let item = |text: &str| match decode_row_json(Table::OrderItems, text) {
            Ok((Row::OrderItem(it), _)) => (
                it.order_item_id,
                it.order_id,
                it.product_id,
                it.quantity,
                it.price,
            ),
            other => panic!("{text}: {other:?}"),
        };
        let want = (1, Some(5), Some(7), 2, Money(300));
        for text in [
            r#"{"order_item_id":1,"order_id":5,"product_id":7,"quantity":2,"price":"3.00"}"#,
            r#"{"price":"3.00","quantity":2,"product_id":7,"order_id":5,"order_item_id":1}"#,
            r#"{"extra":0,"order_item_id":1,"order_id":5,"product_id":7,"quantity":2,"price":"3.00"}"#,
            r#"{"order_item_id":1,"order_id":5,"order_id":6,"product_id":7,"quantity":2,"price":"3.00"}"#,
            r#"{"order_item_id":1,"order_id":5,"product_id":7,"order_id":6,"quantity":2,"price":"3.00"}"#,
            r#"{"order_item_id":1,"product_id":7,"order_id":5,"order_id":6,"quantity":2,"price":"3.00","price":"9.00"}"#,
            r#"{"order_item_id":1,"order_item_id":8,"order_id":5,"product_id":7,"quantity":2,"price":"3.00"}"#,
        ] {
            assert_eq!(item(text), want, "{text}");
        }
    }

    /// Wherever the one-pass money path answers, the path it shortcuts answers the same
    /// (`Money::parse_decimal` of the string's content, for every kind but base64 decimals):
    /// random quoted texts over the characters of decimals, plus edge shapes.
    #[test]
    fn quoted_plain_decimal_agrees_with_the_general_path() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let alphabet = b"0123456789.-+eE \\\"9";
        let mut texts: Vec<String> = [
            "\"0.0\"",
            "\"-0.5\"",
            "\"12.\"",
            "\".5\"",
            "\"1.234\"",
            "\"1234567890123456.78\"",
            "\"12345678901234567.8\"",
            "\"9223372036854775.80\"",
            "\"+1.00\"",
            "\"1.0e2\"",
            "\"\"",
            "\"1.5",
            "1.5",
        ]
        .map(String::from)
        .to_vec();
        for _ in 0..20_000 {
            let len = rng.random_range(0..12);
            let body: String = (0..len)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
                .collect();
            texts.push(format!("\"{body}\""));
        }
        let mut answered = 0;
        for text in &texts {
            let Some(fast) = quoted_plain_decimal(text.as_bytes()) else {
                continue;
            };
            answered += 1;
            let content = string_content(Table::Orders, "price", text).unwrap();
            assert!(content.contains('.'), "{text}: answered without a point");
            assert_eq!(Money::parse_decimal(&content), Ok(Money(fast)), "{text}");
            for kind in [None, Some(ColKind::Text), Some(ColKind::Other)] {
                assert_eq!(
                    conv_money(Table::Orders, "price", text, kind),
                    Ok(Money(fast)),
                    "{text} {kind:?}"
                );
            }
        }
        assert!(
            answered > 100,
            "the random texts exercise the fast path ({answered})"
        );
        // a base64 decimal is never read as text, even when it looks like one
        assert_eq!(
            conv_money(
                Table::Orders,
                "price",
                "\"AA==\"",
                Some(ColKind::Decimal { scale: 2 })
            ),
            Ok(Money(0))
        );
    }

    #[test]
    fn iso_fast_path_matches_chrono() {
        for s in [
            "2024-01-02T03:04:05Z",
            "2024-02-29T23:59:59.999999Z",
            "1969-12-31T23:59:59.5Z",
            "2000-03-01T00:00:00.123456789Z",
            "1900-01-01T00:00:00Z",
        ] {
            assert_eq!(fast_iso_utc(s), Some(Micros::parse_iso(s).unwrap()), "{s}");
        }
        assert_eq!(fast_iso_utc("2023-02-29T00:00:00Z"), None);
        assert_eq!(fast_iso_utc("2024-01-02T03:04:05+07:00"), None);
    }

    #[test]
    fn epoch_guesses() {
        let t = Micros::parse_iso("2024-01-02T03:04:05Z").unwrap();
        assert_eq!(epoch_guess(t.0 / 1000), t);
        assert_eq!(epoch_guess(t.0), t);
        assert_eq!(epoch_guess(t.0 * 1000), t);
    }
}
