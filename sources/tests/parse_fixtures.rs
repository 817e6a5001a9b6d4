//! The real Debezium samples in /work/shared/fixtures/debezium (Debezium's `inventory.products`
//! and RisingWave's numeric table — not our schema): envelope-level results, and a clear
//! `missing_field` when decoded as our `products` row.

use serde_json::value::RawValue;
use sources::deadletter::DeadLetters;
use sources::debezium::{decode_money, parse, ParseError, RawRow};
use sources::{Lsn, Money, Op, Parsed, Table};
use std::collections::HashMap;
use std::path::PathBuf;

fn fixture(name: &str) -> Vec<u8> {
    let dir = std::env::var("SHOPSTREAM_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("/work/shared/fixtures/debezium"));
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/debezium");
    std::fs::read(dir.join(name))
        .or_else(|_| std::fs::read(local.join(name)))
        .unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// Envelope-level facts of a fixture, read with the public inspection helpers.
struct Facts {
    op: String,
    lsn: u64,
    tx_id: u64,
    table: String,
}

fn facts(bytes: &[u8]) -> Facts {
    let v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    let p = v.get("payload").unwrap_or(&v);
    Facts {
        op: p["op"].as_str().unwrap().to_string(),
        lsn: p["source"]["lsn"].as_u64().unwrap(),
        tx_id: p["source"]["txId"].as_u64().unwrap(),
        table: p["source"]["table"].as_str().unwrap().to_string(),
    }
}

const ALL: [(&str, &str); 6] = [
    ("pg-dbz1.2.1-schemaless-create.json", "c"),
    ("pg-dbz1.2.1-schemaless-delete.json", "d"),
    ("pg-dbz1.2.1-schemaless-update-with-before.json", "u"),
    ("pg-dbz1.2.1-with-schema-delete.json", "d"),
    ("pg-dbz1.2.1-with-schema-snapshot-read.json", "r"),
    ("pg-dbz1.9.7-numeric-double-mode-read.json", "r"),
];

#[test]
fn fixtures_fail_as_our_rows_with_a_clear_missing_field() {
    for (name, op) in ALL {
        let bytes = fixture(name);
        let f = facts(&bytes);
        assert_eq!(f.op, op, "{name}");
        let err = parse(Some("ecommerce-cdc.public.products"), Some(&bytes)).unwrap_err();
        assert_eq!(err.reason(), "missing_field", "{name}: {err}");
        // inventory.products has `id`, no `product_id`/`sku`; RisingWave's table is `orders`.
        let want = match (f.table.as_str(), op) {
            ("products", "d") => "product_id",
            ("products", _) => "product_id",
            ("orders", _) => "order_id",
            other => panic!("unexpected table {other:?}"),
        };
        assert!(
            matches!(&err, ParseError::MissingField { field, .. } if field == want),
            "{name}: {err}"
        );
        assert!(err.to_string().contains(want), "{err}");
    }
}

#[test]
fn fixture_deletes_and_upserts_parse_when_the_key_is_there() {
    // Rename `id` to our key column: the envelope then parses fully (delete key from `before`).
    for (name, op) in ALL.iter().filter(|(n, _)| n.contains("dbz1.2.1")) {
        let text = String::from_utf8(fixture(name)).unwrap();
        let text = text
            .replace("\"id\":", "\"product_id\":")
            .replace("\"name\":\"", "\"sku\":\"S\",\"price\":1.5,\"name\":\"");
        let f = facts(text.as_bytes());
        let parsed = parse(None, Some(text.as_bytes())).unwrap_or_else(|e| panic!("{name}: {e}"));
        let Parsed::Event(e) = parsed else {
            panic!("{name}: not an event")
        };
        assert_eq!(e.change.table, Table::Products, "{name}");
        assert_eq!(e.change.lsn, Some(Lsn(f.lsn)), "{name}");
        assert_eq!(e.tx_id, Some(f.tx_id), "{name}");
        assert_eq!(e.change.op.code().to_string(), *op, "{name}");
        assert_eq!(e.snapshot, *op == "r", "{name}");
        assert!(e.tx.is_none());
        match *op {
            "d" => assert_eq!(e.change.key(), Some(111)),
            "c" => assert_eq!(e.change.key(), Some(110)),
            "u" => assert_eq!(e.change.key(), Some(106)),
            "r" => assert_eq!(e.change.key(), Some(101)),
            _ => unreachable!(),
        }
    }
}

#[test]
fn fixture_lsns_txids_tables() {
    let cases = [
        (
            "pg-dbz1.2.1-schemaless-create.json",
            34132560,
            604,
            "products",
        ),
        (
            "pg-dbz1.2.1-schemaless-delete.json",
            34133800,
            608,
            "products",
        ),
        (
            "pg-dbz1.2.1-schemaless-update-with-before.json",
            34131104,
            602,
            "products",
        ),
        (
            "pg-dbz1.2.1-with-schema-delete.json",
            34133800,
            608,
            "products",
        ),
        (
            "pg-dbz1.2.1-with-schema-snapshot-read.json",
            34078720,
            601,
            "products",
        ),
        (
            "pg-dbz1.9.7-numeric-double-mode-read.json",
            26519216,
            729,
            "orders",
        ),
    ];
    for (name, lsn, tx, table) in cases {
        let f = facts(&fixture(name));
        assert_eq!(
            (f.lsn, f.tx_id, f.table.as_str()),
            (lsn, tx, table),
            "{name}"
        );
    }
}

#[test]
fn risingwave_double_mode_numerics_are_exact() {
    let bytes = fixture("pg-dbz1.9.7-numeric-double-mode-read.json");
    let text = std::str::from_utf8(&bytes).unwrap();
    let top: HashMap<String, Box<RawValue>> = serde_json::from_str(text).unwrap();
    let payload: HashMap<String, Box<RawValue>> =
        serde_json::from_str(top["payload"].get()).unwrap();
    let after = RawRow::from_json(payload["after"].get()).unwrap();
    let raw = |c: &str| after.get(c).unwrap().get().to_string();
    // `money` with 2 decimals is exact; finer numerics are refused, never rounded.
    assert_eq!(decode_money(&raw("o_money")), Ok(Money(12312)));
    assert_eq!(decode_money(&raw("o_key")), Ok(Money(0)));
    assert_eq!(decode_money(&raw("o_smallint")), Ok(Money(3276700)));
    assert_eq!(decode_money(&raw("o_integer")), Ok(Money(214748364700)));
    let e = decode_money(&raw("o_numeric")).unwrap_err();
    assert_eq!(e.reason(), "bad_decimal");
    assert!(e.to_string().contains("123456.789"), "{e}");
    assert_eq!(
        decode_money(&raw("o_numeric_6_3")).unwrap_err().reason(),
        "bad_decimal"
    );
    // int8 max is kept exactly (a f64 would round it to 9223372036854775808).
    assert_eq!(raw("o_bigint").parse::<i64>(), Ok(i64::MAX));
    // As our `orders`, the same message is a missing_field dead letter.
    let dl = DeadLetters::in_memory(10);
    assert!(dl
        .parse("fixture", Some("x.public.orders"), Some(&bytes))
        .is_none());
    let rec = dl.recent(1);
    assert_eq!(rec[0].reason, "missing_field");
    assert!(rec[0].error.contains("order_id"));
    assert_eq!(rec[0].raw.as_bytes(), &bytes[..]);
}

#[test]
fn fixture_op_letters_map() {
    for (name, op) in ALL {
        let f = facts(&fixture(name));
        let want = match op {
            "c" => Op::Create,
            "u" => Op::Update,
            "d" => Op::Delete,
            "r" => Op::Read,
            _ => unreachable!(),
        };
        assert_eq!(want.code().to_string(), f.op);
    }
}
