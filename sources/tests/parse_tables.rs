//! Hand-made messages for each of the ten tables, in every message shape and decimal/timestamp
//! encoding SPEC §3 lists: all must give the identical typed row.

use base64::Engine as _;
use sources::debezium::parse;
use sources::*;

const TS: &str = "2024-05-06T07:08:09.123456Z";

fn ts() -> Micros {
    Micros::parse_iso(TS).unwrap()
}

/// Base64 of the minimal big-endian two's-complement bytes of `v`.
fn b64(v: i128) -> String {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    while start < 15 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0 && next & 0x80 == 0) || (b == 0xFF && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    base64::engine::general_purpose::STANDARD.encode(&bytes[start..])
}

/// How a money value (minor units) is written.
#[derive(Copy, Clone, Debug)]
enum Dec {
    /// JSON number as Java prints a double.
    Number,
    String,
    /// Base64 at scale 2, no schema.
    Precise,
    /// Base64 at scale 3 with a schema giving the scale.
    PreciseSchema,
    Variable,
}

/// How a timestamp is written.
#[derive(Copy, Clone, Debug)]
enum Time {
    Iso,
    /// MicroTimestamp with a schema naming it.
    MicrosSchema,
    /// Epoch milliseconds without schema (magnitude guess).
    Millis,
}

/// Java's `Double.toString` shapes for our test values.
fn java_double(minor: i64) -> String {
    let s = Money(minor).to_string();
    if minor.abs() >= 1_000_000_000 {
        // 10269000.00 → 1.0269E7
        let int = (minor / 100).to_string();
        let digits = int.trim_end_matches('0');
        format!(
            "{}.{}E{}",
            &digits[..1],
            if digits.len() > 1 { &digits[1..] } else { "0" },
            int.len() - 1
        )
    } else if s.ends_with("00") {
        format!("{}.0", &s[..s.len() - 3])
    } else {
        s.trim_end_matches('0').to_string()
    }
}

fn money(minor: i64, d: Dec) -> String {
    match d {
        Dec::Number => java_double(minor),
        Dec::String => format!("\"{}\"", Money(minor)),
        Dec::Precise => format!("\"{}\"", b64(minor as i128)),
        Dec::PreciseSchema => format!("\"{}\"", b64(minor as i128 * 10)),
        Dec::Variable => format!("{{\"scale\":2,\"value\":\"{}\"}}", b64(minor as i128)),
    }
}

fn time(t: Time) -> String {
    match t {
        Time::Iso => format!("\"{TS}\""),
        Time::MicrosSchema => ts().0.to_string(),
        Time::Millis => (ts().0 / 1000).to_string(),
    }
}

fn expected_time(t: Time) -> Micros {
    match t {
        Time::Millis => Micros(ts().0 / 1000 * 1000),
        _ => ts(),
    }
}

/// (table, after-object JSON, expected row, money columns, time columns)
fn sample(table: Table, d: Dec, t: Time) -> (String, Row) {
    let m = |v| money(v, d);
    let tm = || time(t);
    let et = expected_time(t);
    match table {
        Table::Categories => (
            format!(
                r#"{{"category_id":3,"name":"Laptops \"pro\"","description":null,"created_at":{}}}"#,
                tm()
            ),
            Row::Category(Category {
                category_id: 3,
                name: "Laptops \"pro\"".into(),
                description: None,
                created_at: Some(et),
            }),
        ),
        Table::Customers => (
            format!(
                r#"{{"customer_id":7,"first_name":"Lan","last_name":"Nguyễn","email":"lan@example.com","password_hash":"x$y","address":"1 Phố Huế","phone_number":null,"created_at":{},"updated_at":{}}}"#,
                tm(),
                tm()
            ),
            Row::Customer(Box::new(Customer {
                customer_id: 7,
                first_name: Some("Lan".into()),
                last_name: "Nguyễn".into(),
                email: "lan@example.com".into(),
                password_hash: "x$y".into(),
                address: Some("1 Phố Huế".into()),
                phone_number: None,
                created_at: Some(et),
                updated_at: Some(et),
            })),
        ),
        Table::Products => (
            format!(
                r#"{{"product_id":42,"sku":"SKU-42","name":"Laptop","description":"fast","price":{},"stock":17,"category_id":3,"is_active":true,"created_at":{},"updated_at":null}}"#,
                m(1_026_900_000),
                tm()
            ),
            Row::Product(Box::new(Product {
                product_id: 42,
                sku: "SKU-42".into(),
                name: "Laptop".into(),
                description: Some("fast".into()),
                price: Money(1_026_900_000),
                stock: Some(17),
                category_id: Some(3),
                is_active: Some(true),
                created_at: Some(et),
                updated_at: None,
            })),
        ),
        Table::Payments => (
            format!(
                r#"{{"payment_id":5,"payment_date":{},"payment_method":"paypal","amount":{},"status":"completed","transaction_id":"T-5","customer_id":7}}"#,
                tm(),
                m(235_873)
            ),
            Row::Payment(Box::new(Payment {
                payment_id: 5,
                payment_date: Some(et),
                payment_method: Some("paypal".into()),
                amount: Some(Money(235_873)),
                status: Some("completed".into()),
                transaction_id: Some("T-5".into()),
                customer_id: Some(7),
            })),
        ),
        Table::Shipments => (
            format!(
                r#"{{"shipment_id":9,"shipment_date":{},"address":"a","city":"Hà Nội","state":null,"country":"VN","zip_code":"100000","status":"shipped","tracking_number":"TR9","customer_id":7,"created_at":{},"updated_at":{}}}"#,
                tm(),
                tm(),
                tm()
            ),
            Row::Shipment(Box::new(Shipment {
                shipment_id: 9,
                shipment_date: Some(et),
                address: Some("a".into()),
                city: Some("Hà Nội".into()),
                state: None,
                country: Some("VN".into()),
                zip_code: Some("100000".into()),
                status: Some("shipped".into()),
                tracking_number: Some("TR9".into()),
                customer_id: Some(7),
                created_at: Some(et),
                updated_at: Some(et),
            })),
        ),
        Table::Orders => (
            format!(
                r#"{{"order_id":1001,"order_date":{},"total_price":{},"status":"confirmed","customer_id":7,"payment_id":5,"shipment_id":null}}"#,
                tm(),
                m(12_345_000)
            ),
            Row::Order(Order {
                order_id: 1001,
                order_date: et,
                total_price: Money(12_345_000),
                status: OrderStatus::Confirmed,
                customer_id: Some(7),
                payment_id: Some(5),
                shipment_id: None,
            }),
        ),
        Table::OrderItems => (
            format!(
                r#"{{"order_item_id":77,"order_id":1001,"product_id":42,"quantity":2,"price":{}}}"#,
                m(-5)
            ),
            Row::OrderItem(OrderItem {
                order_item_id: 77,
                order_id: Some(1001),
                product_id: Some(42),
                quantity: 2,
                price: Money(-5),
            }),
        ),
        Table::Carts => (
            format!(
                r#"{{"cart_id":8,"customer_id":7,"product_id":42,"quantity":1,"added_at":{}}}"#,
                tm()
            ),
            Row::Cart(Cart {
                cart_id: 8,
                customer_id: Some(7),
                product_id: Some(42),
                quantity: 1,
                added_at: Some(et),
            }),
        ),
        Table::Wishlists => (
            format!(
                r#"{{"wishlist_id":4,"customer_id":7,"product_id":null,"added_at":{}}}"#,
                tm()
            ),
            Row::Wishlist(Wishlist {
                wishlist_id: 4,
                customer_id: Some(7),
                product_id: None,
                added_at: Some(et),
            }),
        ),
        Table::ProductViews => (
            format!(
                r#"{{"view_id":9000000000,"customer_id":7,"product_id":null,"category_id":3,"viewed_at":{}}}"#,
                tm()
            ),
            Row::ProductView(ProductView {
                view_id: 9_000_000_000,
                customer_id: Some(7),
                product_id: None,
                category_id: Some(3),
                viewed_at: Some(et),
            }),
        ),
    }
}

const MONEY_COLS: [&str; 3] = ["price", "amount", "total_price"];
const TIME_COLS: [&str; 7] = [
    "created_at",
    "updated_at",
    "payment_date",
    "shipment_date",
    "order_date",
    "added_at",
    "viewed_at",
];

/// A row schema naming only what matters: money columns as Decimal(scale 3) / VariableScale /
/// string, time columns as MicroTimestamp or ZonedTimestamp.
fn row_schema_fields(d: Dec, t: Time) -> String {
    let mut f = Vec::new();
    for c in MONEY_COLS {
        f.push(match d {
            Dec::PreciseSchema => format!(r#"{{"type":"bytes","optional":true,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{{"scale":"3","connect.decimal.precision":"14"}},"field":"{c}"}}"#),
            Dec::Variable => format!(r#"{{"type":"struct","fields":[{{"type":"int32","field":"scale"}},{{"type":"bytes","field":"value"}}],"optional":true,"name":"io.debezium.data.VariableScaleDecimal","field":"{c}"}}"#),
            Dec::String => format!(r#"{{"type":"string","optional":true,"field":"{c}"}}"#),
            _ => format!(r#"{{"type":"double","optional":true,"field":"{c}"}}"#),
        });
    }
    for c in TIME_COLS {
        f.push(match t {
            Time::MicrosSchema => format!(r#"{{"type":"int64","optional":true,"name":"io.debezium.time.MicroTimestamp","version":1,"field":"{c}"}}"#),
            Time::Millis => format!(r#"{{"type":"int64","optional":true,"name":"io.debezium.time.Timestamp","version":1,"field":"{c}"}}"#),
            Time::Iso => format!(r#"{{"type":"string","optional":true,"name":"io.debezium.time.ZonedTimestamp","version":1,"field":"{c}"}}"#),
        });
    }
    f.push(r#"{"type":"int64","optional":false,"field":"id"}"#.into());
    f.join(",")
}

fn needs_schema(d: Dec, t: Time) -> bool {
    matches!(d, Dec::PreciseSchema) || matches!(t, Time::MicrosSchema)
}

fn source(table: Table) -> String {
    format!(
        r#"{{"version":"2.7.0.Final","connector":"postgresql","name":"ecommerce-cdc","ts_ms":1700000000000,"snapshot":"false","db":"shop","sequence":"[null,\"123\"]","schema":"public","table":"{}","txId":555,"lsn":123456,"xmin":null}}"#,
        table.name()
    )
}

fn envelope(table: Table, after: &str) -> String {
    format!(
        r#"{{"before":null,"after":{after},"source":{},"op":"c","ts_ms":1700000000001,"ts_us":1700000000001000,"transaction":null}}"#,
        source(table)
    )
}

fn wrapped_envelope(table: Table, after: &str, d: Dec, t: Time) -> String {
    let row = format!(
        r#"{{"type":"struct","fields":[{}],"optional":true,"name":"x.Value","field":"after"}}"#,
        row_schema_fields(d, t)
    );
    let before = row.replace("\"field\":\"after\"", "\"field\":\"before\"");
    let schema = format!(
        r#"{{"type":"struct","fields":[{before},{row},{{"type":"struct","fields":[],"optional":false,"name":"io.debezium.connector.postgresql.Source","field":"source"}},{{"type":"string","optional":false,"field":"op"}}],"optional":false,"name":"x.Envelope","version":2}}"#
    );
    format!(
        r#"{{"schema":{schema},"payload":{}}}"#,
        envelope(table, after)
    )
}

fn flattened(table: Table, after: &str) -> String {
    let meta = format!(
        r#","__op":"c","__table":"{}","__lsn":123456,"__source_txId":555,"__deleted":"false"}}"#,
        table.name()
    );
    format!("{}{}", &after[..after.len() - 1], meta)
}

fn wrapped_flattened(table: Table, after: &str, d: Dec, t: Time) -> String {
    let schema = format!(
        r#"{{"type":"struct","fields":[{}],"optional":false,"name":"x.Value"}}"#,
        row_schema_fields(d, t)
    );
    format!(
        r#"{{"schema":{schema},"payload":{}}}"#,
        flattened(table, after)
    )
}

fn row_of(parsed: Parsed) -> (Row, Event) {
    match parsed {
        Parsed::Event(e) => match &e.change.kind {
            ChangeKind::Upsert { row, unavailable } => {
                assert!(unavailable.is_empty());
                (row.clone(), e)
            }
            other => panic!("not an upsert: {other:?}"),
        },
        other => panic!("not an event: {other:?}"),
    }
}

#[test]
fn every_table_every_encoding_gives_the_same_row() {
    let decs = [
        Dec::Number,
        Dec::String,
        Dec::Precise,
        Dec::PreciseSchema,
        Dec::Variable,
    ];
    let times = [Time::Iso, Time::MicrosSchema, Time::Millis];
    let mut checked = 0;
    for table in Table::ALL {
        for d in decs {
            for t in times {
                let (after, want) = sample(table, d, t);
                let topic = format!("ecommerce-cdc.public.{}", table.name());
                let mut shapes = vec![("wrapped envelope", wrapped_envelope(table, &after, d, t))];
                shapes.push(("wrapped flattened", wrapped_flattened(table, &after, d, t)));
                if !needs_schema(d, t) {
                    shapes.push(("envelope", envelope(table, &after)));
                    shapes.push(("flattened", flattened(table, &after)));
                }
                for (shape, msg) in shapes {
                    let ctx = format!("{table} {d:?} {t:?} {shape}: {msg}");
                    let parsed = parse(Some(&topic), Some(msg.as_bytes()))
                        .unwrap_or_else(|e| panic!("{ctx}: {e}"));
                    let (row, e) = row_of(parsed);
                    assert_eq!(row, want, "{ctx}");
                    assert_eq!(e.change.table, table, "{ctx}");
                    assert_eq!(e.change.lsn, Some(Lsn(123456)), "{ctx}");
                    assert_eq!(e.tx_id, Some(555), "{ctx}");
                    assert_eq!(e.change.op, Op::Create, "{ctx}");
                    // The topic is not needed when the payload names the table.
                    let again = parse(None, Some(msg.as_bytes())).unwrap();
                    assert_eq!(row_of(again).0, want, "{ctx}");
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 10 * (15 * 2 + 8 * 2));
}

#[test]
fn deletes_take_the_key_from_before_or_the_flattened_row() {
    for table in Table::ALL {
        let (after, want) = sample(table, Dec::String, Time::Iso);
        let key = want.key();
        // Default replica identity: `before` holds the key only.
        let before = format!(r#"{{"{}":{key}}}"#, table.key_column());
        let msg = format!(
            r#"{{"before":{before},"after":null,"source":{},"op":"d","ts_ms":1}}"#,
            source(table)
        );
        let Parsed::Event(e) = parse(None, Some(msg.as_bytes())).unwrap() else {
            panic!()
        };
        assert_eq!(e.change.kind, ChangeKind::Delete { key }, "{table}");
        assert_eq!(e.change.op, Op::Delete);
        // Flattened, delete.handling.mode=rewrite: the row with __deleted=true.
        let flat = flattened(table, &after)
            .replace(r#""__deleted":"false""#, r#""__deleted":"true""#)
            .replace(r#""__op":"c""#, r#""__op":"d""#);
        let Parsed::Event(e) = parse(None, Some(flat.as_bytes())).unwrap() else {
            panic!()
        };
        assert_eq!(e.change.kind, ChangeKind::Delete { key }, "{table}");
        // With default identity a flattened delete carries nulls except the key.
        let flat_nulls = format!(
            r#"{{"{}":{key},"__deleted":"true","__op":"d","__table":"{}","__lsn":9}}"#,
            table.key_column(),
            table.name()
        );
        let Parsed::Event(e) = parse(None, Some(flat_nulls.as_bytes())).unwrap() else {
            panic!()
        };
        assert_eq!(e.change.kind, ChangeKind::Delete { key });
        assert_eq!(e.change.lsn, Some(Lsn(9)));
    }
}

#[test]
fn truncate_tombstone_and_markers() {
    let t = format!(
        r#"{{"before":null,"after":null,"source":{},"op":"t","ts_ms":1}}"#,
        source(Table::Orders)
    );
    let Parsed::Event(e) = parse(None, Some(t.as_bytes())).unwrap() else {
        panic!()
    };
    assert_eq!(e.change.kind, ChangeKind::Truncate);
    assert_eq!(e.change.table, Table::Orders);
    assert_eq!(parse(Some("x.public.orders"), None), Ok(Parsed::Tombstone));
    assert_eq!(
        parse(Some("x.public.orders"), Some(b"")),
        Ok(Parsed::Tombstone)
    );
    assert_eq!(
        parse(Some("x.public.orders"), Some(b"null")),
        Ok(Parsed::Tombstone)
    );
    assert_eq!(
        parse(None, Some(br#"{"schema":null,"payload":null}"#)),
        Ok(Parsed::Tombstone)
    );

    let begin = br#"{"status":"BEGIN","id":"571:53195829","event_count":null,"data_collections":null,"ts_ms":1}"#;
    let Parsed::Tx(m) = parse(Some("ecommerce-cdc.transaction"), Some(begin)).unwrap() else {
        panic!()
    };
    assert_eq!(m.status, TxStatus::Begin);
    assert_eq!(m.tx_id(), Some(571));
    assert_eq!(parse(None, Some(begin)).unwrap(), Parsed::Tx(m));
    let end = br#"{"schema":{"type":"struct"},"payload":{"status":"END","id":"571:53195832","event_count":2,"data_collections":[{"data_collection":"public.orders","event_count":1},{"data_collection":"public.order_items","event_count":1}],"ts_ms":2}}"#;
    let Parsed::Tx(m) = parse(Some("ecommerce-cdc.transaction"), Some(end)).unwrap() else {
        panic!()
    };
    assert_eq!(m.status, TxStatus::End);
    assert_eq!(m.event_count, Some(2));
    assert_eq!(
        m.data_collections,
        vec![
            ("public.orders".into(), 1),
            ("public.order_items".into(), 1)
        ]
    );
    assert_eq!(m.lsn(), Some(Lsn(53195832)));
}

#[test]
fn transaction_block_and_snapshot_flags() {
    let (after, _) = sample(Table::Orders, Dec::Number, Time::Iso);
    let msg = envelope(Table::Orders, &after)
        .replace(
            r#""transaction":null"#,
            r#""transaction":{"id":"555:123456","total_order":3,"data_collection_order":1}"#,
        )
        .replace(r#""snapshot":"false""#, r#""snapshot":"last""#);
    let Parsed::Event(e) = parse(None, Some(msg.as_bytes())).unwrap() else {
        panic!()
    };
    assert!(e.snapshot);
    assert_eq!(e.source_ts_ms, Some(1_700_000_000_000));
    let tx = e.tx.unwrap();
    assert_eq!(
        (tx.id.as_str(), tx.total_order, tx.data_collection_order),
        ("555:123456", Some(3), Some(1))
    );
}

#[test]
fn unavailable_toast_columns_set_their_bit() {
    let (after, _) = sample(Table::Products, Dec::String, Time::Iso);
    let after = after
        .replace(
            r#""description":"fast""#,
            r#""description":"__debezium_unavailable_value""#,
        )
        .replace(
            r#""sku":"SKU-42""#,
            r#""sku":"__debezium_unavailable_value""#,
        );
    let Parsed::Event(e) = parse(None, Some(envelope(Table::Products, &after).as_bytes())).unwrap()
    else {
        panic!()
    };
    let ChangeKind::Upsert {
        row: Row::Product(p),
        unavailable,
    } = e.change.kind
    else {
        panic!()
    };
    assert!(unavailable.contains(1) && unavailable.contains(3));
    assert_eq!(unavailable.0.count_ones(), 2);
    assert_eq!(p.sku, "");
    assert_eq!(p.description, None);
    assert_eq!(p.price, Money(1_026_900_000));
}

#[test]
fn java_double_shapes() {
    assert_eq!(java_double(1_026_900_000), "1.0269E7");
    assert_eq!(java_double(10_000), "100.0");
    assert_eq!(java_double(123_450), "1234.5");
    assert_eq!(java_double(235_873), "2358.73");
    assert_eq!(java_double(-5), "-0.05");
}
