//! Malformed inputs of every kind become dead letters with the right reason, are counted, and
//! never panic the parser (proptest over arbitrary bytes and mutations of valid messages).

use proptest::prelude::*;
use sources::deadletter::DeadLetters;
use sources::debezium::{parse, ParseError, MAX_MESSAGE_BYTES};

const GOOD_ORDER: &str = r#"{"before":null,"after":{"order_id":1,"order_date":"2024-01-02T03:04:05Z","total_price":"A5lh","status":"pending","customer_id":7,"payment_id":null,"shipment_id":null},"source":{"table":"orders","txId":5,"lsn":100,"snapshot":"false","ts_ms":1},"op":"c","ts_ms":2,"transaction":{"id":"5:100","total_order":1,"data_collection_order":1}}"#;

const GOOD_FLAT: &str = r#"{"order_item_id":3,"order_id":1,"product_id":2,"quantity":4,"price":1.0269E7,"__op":"u","__table":"order_items","__lsn":7,"__deleted":"false","__source_txId":9}"#;

const GOOD_WRAPPED: &str = r#"{"schema":{"type":"struct","fields":[{"type":"struct","fields":[{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2"},"field":"price"},{"type":"int64","name":"io.debezium.time.MicroTimestamp","field":"added_at"}],"field":"after"}]},"payload":{"before":null,"after":{"cart_id":1,"customer_id":2,"product_id":3,"quantity":1,"added_at":1700000000000000},"source":{"table":"carts","txId":1,"lsn":2},"op":"r"}}"#;

fn reason(topic: Option<&str>, msg: &str) -> &'static str {
    match parse(topic, Some(msg.as_bytes())) {
        Ok(p) => panic!("parsed: {msg} -> {p:?}"),
        Err(e) => e.reason(),
    }
}

#[test]
fn good_samples_parse() {
    for m in [GOOD_ORDER, GOOD_FLAT, GOOD_WRAPPED] {
        parse(None, Some(m.as_bytes())).unwrap_or_else(|e| panic!("{m}: {e}"));
    }
}

#[test]
fn every_kind_of_malformed_input_has_its_reason() {
    let o = GOOD_ORDER;
    let cases: Vec<(String, &str)> = vec![
        ("{".into(), "malformed_json"),
        ("[1,2,3]".into(), "malformed_json"),
        ("42".into(), "malformed_json"),
        ("\"text\"".into(), "malformed_json"),
        (
            "{\"after\": {\"order_id\": 1} trailing".into(),
            "malformed_json",
        ),
        ("\u{feff}{}".into(), "malformed_json"),
        (o.replace(r#""op":"c""#, r#""op":"x""#), "unknown_op"),
        (o.replace(r#""op":"c""#, r#""op":"m""#), "unknown_op"),
        (o.replace(r#""op":"c","#, ""), "missing_field"),
        (o.replace(r#""order_id":1,"#, ""), "missing_field"),
        (
            o.replace(
                r#""order_date":"2024-01-02T03:04:05Z""#,
                r#""order_date":null"#,
            ),
            "missing_field",
        ),
        (
            o.replace(r#""after":{"#, r#""after":null,"x":{"#),
            "missing_field",
        ),
        (
            o.replace(r#""order_id":1"#, r#""order_id":"1""#),
            "wrong_type",
        ),
        (
            o.replace(r#""order_id":1"#, r#""order_id":1.5"#),
            "wrong_type",
        ),
        (
            o.replace(
                r#""customer_id":7"#,
                r#""customer_id":99999999999999999999"#,
            ),
            "wrong_type",
        ),
        (
            o.replace(r#""status":"pending""#, r#""status":"lost""#),
            "wrong_type",
        ),
        (
            o.replace(r#""status":"pending""#, r#""status":5"#),
            "wrong_type",
        ),
        (o.replace(r#""lsn":100"#, r#""lsn":"abc""#), "wrong_type"),
        (o.replace(r#""txId":5"#, r#""txId":-5"#), "wrong_type"),
        (
            o.replace(r#""total_price":"A5lh""#, r#""total_price":"1.234""#),
            "bad_decimal",
        ),
        (
            o.replace(r#""total_price":"A5lh""#, r#""total_price":"A5l""#),
            "bad_decimal",
        ),
        (
            o.replace(r#""total_price":"A5lh""#, r#""total_price":"!!!!""#),
            "bad_decimal",
        ),
        (
            o.replace(r#""total_price":"A5lh""#, r#""total_price":1e400"#),
            "bad_decimal",
        ),
        (
            o.replace(r#""total_price":"A5lh""#, r#""total_price":true"#),
            "bad_decimal",
        ),
        (
            o.replace(
                r#""total_price":"A5lh""#,
                r#""total_price":{"scale":3,"value":"A5lh"}"#,
            ),
            "bad_decimal",
        ),
        (
            o.replace(r#""total_price":"A5lh""#, r#""total_price":{"scale":"x"}"#),
            "bad_decimal",
        ),
        (
            o.replace(
                r#""total_price":"A5lh""#,
                r#""total_price":"fAAAAAAAAAAAAAAAAAAAAAAAAAAA""#,
            ),
            "bad_decimal",
        ),
        (
            o.replace(
                r#""order_date":"2024-01-02T03:04:05Z""#,
                r#""order_date":"yesterday""#,
            ),
            "bad_timestamp",
        ),
        (
            o.replace(
                r#""order_date":"2024-01-02T03:04:05Z""#,
                r#""order_date":"2024-02-30T00:00:00Z""#,
            ),
            "bad_timestamp",
        ),
        (
            o.replace(
                r#""order_date":"2024-01-02T03:04:05Z""#,
                r#""order_date":1.5"#,
            ),
            "bad_timestamp",
        ),
        (
            o.replace(r#""table":"orders""#, r#""table":"invoices""#),
            "unknown_table",
        ),
        (o.replace(r#""table":"orders","#, ""), "unknown_table"),
        (
            GOOD_FLAT.replace(r#""__table":"order_items","#, ""),
            "unknown_table",
        ),
        (GOOD_FLAT.replace(r#""quantity":4,"#, ""), "missing_field"),
        (
            GOOD_FLAT.replace(r#""__op":"u""#, r#""__op":"z""#),
            "unknown_op",
        ),
        (o.replace(r#""op":"c""#, r#""op":"d""#), "missing_field"),
    ];
    let dl = DeadLetters::in_memory(100);
    for (i, (msg, want)) in cases.iter().enumerate() {
        assert_eq!(reason(None, msg), *want, "case {i}: {msg}");
        assert!(dl
            .parse(format_args!("case:{i}"), None, Some(msg.as_bytes()))
            .is_none());
    }
    assert_eq!(
        reason(Some("p.transaction"), r#"{"status":"MAYBE","id":"1:2"}"#),
        "unknown_op"
    );
    assert_eq!(
        reason(Some("p.transaction"), r#"{"status":"END"}"#),
        "missing_field"
    );
    assert_eq!(
        reason(
            Some("p.transaction"),
            r#"{"status":"END","id":"1","event_count":"two"}"#
        ),
        "wrong_type"
    );
    let stats = dl.stats();
    assert_eq!(stats.total, cases.len() as u64);
    for (_, want) in &cases {
        assert!(stats.by_reason.get(*want).copied().unwrap_or(0) > 0);
        assert!(ParseError::REASONS.contains(want));
    }
    let rec = dl.recent(5);
    assert_eq!(rec.len(), 5);
    assert_eq!(rec[4].position, format!("case:{}", cases.len() - 1));
    // Prometheus counts them too (other tests may add to the same process-wide counters).
    let families = prometheus::gather();
    let dead = families
        .iter()
        .find(|f| f.name() == "shopstream_dead_letters_total")
        .expect("registered");
    let total: f64 = dead
        .get_metric()
        .iter()
        .map(|m| m.get_counter().value())
        .sum();
    assert!(total >= cases.len() as f64);
}

#[test]
fn oversized_messages_are_refused_unread() {
    let big = vec![b' '; MAX_MESSAGE_BYTES + 1];
    let e = parse(None, Some(&big)).unwrap_err();
    assert_eq!(e.reason(), "oversized");
    let dl = DeadLetters::in_memory(1);
    assert!(dl.parse("big", None, Some(&big)).is_none());
    let rec = &dl.recent(1)[0];
    assert!(rec.raw_truncated);
    assert_eq!(rec.raw.len(), sources::deadletter::RAW_CAP);
    assert_eq!(rec.raw_len, big.len());
}

#[test]
fn dead_letters_go_to_a_jsonl_file() {
    let dir = std::env::temp_dir().join(format!("dl-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("dead.jsonl");
    let _ = std::fs::remove_file(&path);
    let dl = DeadLetters::new(Some(&path), 2).unwrap();
    for i in 0..3 {
        assert!(dl
            .parse(format_args!("t/0@{i}"), Some("t"), Some(b"{oops"))
            .is_none());
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<sources::deadletter::DeadLetter> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[2].position, "t/0@2");
    assert_eq!(lines[2].reason, "malformed_json");
    assert_eq!(lines[2].raw, "{oops");
    assert_eq!(dl.recent(10).len(), 2, "ring is bounded");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn mutate(base: &str, ops: &[(u8, usize, u8)]) -> Vec<u8> {
    let mut b = base.as_bytes().to_vec();
    for &(kind, pos, byte) in ops {
        if b.is_empty() {
            b.push(byte);
            continue;
        }
        let p = pos % b.len();
        match kind % 4 {
            0 => b[p] = byte,
            1 => {
                b.remove(p);
            }
            2 => b.insert(p, byte),
            _ => {
                // Splice a JSON-significant token to reach deeper states than random bytes do.
                let tokens: [&[u8]; 8] = [
                    b"null",
                    b"{}",
                    b"[]",
                    b"\"",
                    b"1e999",
                    b"-",
                    b"\\u0000",
                    b"\"__debezium_unavailable_value\"",
                ];
                let t = tokens[byte as usize % tokens.len()];
                b.splice(p..p, t.iter().copied());
            }
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), topic in proptest::option::of("[a-z.]{0,30}")) {
        let _ = parse(topic.as_deref(), Some(&bytes));
    }

    #[test]
    fn mutated_valid_messages_never_panic(
        which in 0usize..3,
        ops in proptest::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..6),
        tx_topic in any::<bool>(),
    ) {
        let base = [GOOD_ORDER, GOOD_FLAT, GOOD_WRAPPED][which];
        let m = mutate(base, &ops);
        let topic = if tx_topic { "p.transaction" } else { "p.public.orders" };
        if let Err(e) = parse(Some(topic), Some(&m)) {
            prop_assert!(ParseError::REASONS.contains(&e.reason()));
        }
    }

    #[test]
    fn json_shaped_garbage_never_panics(s in r#"\{("[a-z_]{1,12}":(null|true|-?[0-9]{1,25}(\.[0-9]{0,5})?(E-?[0-9]{1,3})?|"[A-Za-z0-9+/=.:T-]{0,30}"|\{\}|\[\]),?){0,12}\}"#) {
        let _ = parse(Some("x.public.orders"), Some(s.as_bytes()));
        let _ = parse(Some("x.transaction"), Some(s.as_bytes()));
    }
}
