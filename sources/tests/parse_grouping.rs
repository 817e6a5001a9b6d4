//! Transaction grouping: markers with interleaved topics, END before events, duplicates, late
//! redeliveries, txId runs, snapshot batches, bounds and flush.

use sources::debezium::parse;
use sources::group::{GroupConfig, MarkerMode, TxAssembler};
use sources::*;

fn order_event(order_id: i64, tx: u64, lsn: u64, total_order: Option<u64>) -> String {
    let block = match total_order {
        Some(o) => {
            format!(r#"{{"id":"{tx}:{lsn}","total_order":{o},"data_collection_order":{o}}}"#)
        }
        None => "null".into(),
    };
    format!(
        r#"{{"before":null,"after":{{"order_id":{order_id},"order_date":"2024-01-01T00:00:00Z","total_price":"10.00","status":"pending","customer_id":1,"payment_id":null,"shipment_id":null}},"source":{{"table":"orders","txId":{tx},"lsn":{lsn},"snapshot":"false"}},"op":"c","transaction":{block}}}"#
    )
}

fn item_event(item_id: i64, tx: u64, lsn: u64, total_order: Option<u64>) -> String {
    let block = match total_order {
        Some(o) => {
            format!(r#"{{"id":"{tx}:{lsn}","total_order":{o},"data_collection_order":{o}}}"#)
        }
        None => "null".into(),
    };
    format!(
        r#"{{"before":null,"after":{{"order_item_id":{item_id},"order_id":1,"product_id":2,"quantity":1,"price":"5.00"}},"source":{{"table":"order_items","txId":{tx},"lsn":{lsn}}},"op":"c","transaction":{block}}}"#
    )
}

fn begin(tx: u64) -> String {
    format!(r#"{{"status":"BEGIN","id":"{tx}:1","event_count":null,"data_collections":null}}"#)
}

fn end(tx: u64, orders: u64, items: u64) -> String {
    format!(
        r#"{{"status":"END","id":"{tx}:999","event_count":{},"data_collections":[{{"data_collection":"public.orders","event_count":{orders}}},{{"data_collection":"public.order_items","event_count":{items}}},{{"data_collection":"public.audit_log","event_count":3}}]}}"#,
        orders + items + 3
    )
}

fn p(topic: &str, msg: &str) -> Parsed {
    parse(Some(topic), Some(msg.as_bytes())).unwrap_or_else(|e| panic!("{msg}: {e}"))
}

const O: &str = "shop.public.orders";
const I: &str = "shop.public.order_items";
const T: &str = "shop.transaction";

fn kafka(topic: &str, offset: i64) -> Position {
    Position::Kafka(vec![(topic.to_string(), 0, offset + 1)])
}

fn drain(a: &mut TxAssembler) -> Vec<Transaction> {
    std::iter::from_fn(|| a.pop()).collect()
}

fn keys(t: &Transaction) -> Vec<(Table, i64)> {
    t.changes
        .iter()
        .map(|c| (c.table, c.key().unwrap()))
        .collect()
}

#[test]
fn markers_interleaved_topics_release_complete_transactions_in_order() {
    let mut a = TxAssembler::new(GroupConfig {
        markers: MarkerMode::On,
        ..GroupConfig::default()
    });
    let msgs = [
        (T, begin(10), 0),
        (T, begin(11), 1), // never happens in Postgres order, but tests independence
        (I, item_event(100, 10, 50, Some(2)), 0),
        (O, order_event(1, 11, 60, Some(1)), 0),
        (T, end(10, 1, 1), 2),
        (T, end(11, 1, 0), 3),
    ];
    for (topic, m, off) in &msgs[..5] {
        a.push(p(topic, m), kafka(topic, *off));
    }
    assert!(drain(&mut a).is_empty(), "tx 10 still misses its order");
    a.push(p(O, &order_event(2, 10, 49, Some(1))), kafka(O, 1));
    let out = drain(&mut a);
    assert_eq!(out.len(), 1);
    // Sorted by total_order, not arrival.
    assert_eq!(
        keys(&out[0]),
        vec![(Table::Orders, 2), (Table::OrderItems, 100)]
    );
    assert_eq!(out[0].tx_id, Some(10));
    assert_eq!(
        out[0].lsn,
        Some(Lsn(999)),
        "END marker's LSN is the highest"
    );
    let Position::Kafka(pos) = &out[0].position else {
        panic!()
    };
    assert!(pos.contains(&(T.to_string(), 0, 3)));
    assert!(pos.contains(&(O.to_string(), 0, 2)));
    assert!(pos.contains(&(I.to_string(), 0, 1)));
    let (t, m, off) = &msgs[5];
    a.push(p(t, m), kafka(t, *off));
    let out = drain(&mut a);
    assert_eq!(out.len(), 1);
    assert_eq!(keys(&out[0]), vec![(Table::Orders, 1)]);
    assert_eq!(a.buffered_events(), 0);
}

#[test]
fn end_before_events_and_duplicates() {
    let mut a = TxAssembler::default(); // Auto: switches on at the first marker
    a.push(p(T, &begin(20)), Position::None);
    a.push(p(T, &end(20, 2, 0)), Position::None);
    assert!(drain(&mut a).is_empty());
    a.push(p(O, &order_event(1, 20, 5, Some(1))), Position::None);
    a.push(p(O, &order_event(1, 20, 5, Some(1))), Position::None); // redelivered duplicate
    assert!(
        drain(&mut a).is_empty(),
        "a duplicate does not complete the transaction"
    );
    a.push(p(O, &order_event(2, 20, 6, Some(2))), Position::None);
    let out = drain(&mut a);
    assert_eq!(out.len(), 1);
    assert_eq!(keys(&out[0]), vec![(Table::Orders, 1), (Table::Orders, 2)]);
    assert_eq!(a.stats().duplicates_dropped, 1);
    // A late redelivery of a released transaction goes out alone.
    a.push(p(O, &order_event(2, 20, 6, Some(2))), Position::None);
    let out = drain(&mut a);
    assert_eq!(out.len(), 1);
    assert_eq!(keys(&out[0]), vec![(Table::Orders, 2)]);
    assert_eq!(a.stats().late_events, 1);
}

#[test]
fn later_complete_transactions_wait_for_earlier_ones() {
    let mut a = TxAssembler::new(GroupConfig {
        markers: MarkerMode::On,
        ..GroupConfig::default()
    });
    a.push(p(T, &begin(1)), Position::None);
    a.push(p(T, &end(1, 1, 0)), Position::None);
    a.push(p(T, &begin(2)), Position::None);
    a.push(p(T, &end(2, 1, 0)), Position::None);
    a.push(p(O, &order_event(20, 2, 20, Some(1))), Position::None);
    assert!(drain(&mut a).is_empty(), "commit order: tx 1 first");
    a.push(p(O, &order_event(10, 1, 10, Some(1))), Position::None);
    let out = drain(&mut a);
    assert_eq!(
        out.iter().map(|t| t.tx_id).collect::<Vec<_>>(),
        vec![Some(1), Some(2)]
    );
}

#[test]
fn stalled_transaction_is_forced_out_by_the_bound() {
    let mut a = TxAssembler::new(GroupConfig {
        markers: MarkerMode::On,
        max_open_txns: 3,
        ..GroupConfig::default()
    });
    // tx 1's event was dead-lettered: it never arrives.
    a.push(p(T, &begin(1)), Position::None);
    a.push(p(T, &end(1, 1, 0)), Position::None);
    for tx in 2..=4 {
        a.push(p(T, &begin(tx)), Position::None);
        a.push(
            p(O, &order_event(tx as i64, tx, tx, Some(1))),
            Position::None,
        );
        a.push(p(T, &end(tx, 1, 0)), Position::None);
    }
    let out = drain(&mut a);
    assert_eq!(
        out.iter().map(|t| t.tx_id).collect::<Vec<_>>(),
        vec![Some(1), Some(2), Some(3), Some(4)]
    );
    assert!(out[0].changes.is_empty());
    assert_eq!(a.stats().forced_incomplete, 1);
}

#[test]
fn txid_runs_without_markers() {
    let mut a = TxAssembler::default();
    let events = [
        order_event(1, 7, 1, None),
        item_event(1, 7, 2, None),
        item_event(2, 7, 3, None),
        order_event(2, 8, 4, None),
        order_event(3, 9, 5, None),
    ];
    for (i, e) in events.iter().enumerate() {
        a.push(p(O, e), Position::FileLine(i as u64 + 1));
    }
    let out = drain(&mut a);
    assert_eq!(out.len(), 2, "tx 9 is still open");
    assert_eq!(out[0].changes.len(), 3);
    assert_eq!(out[0].tx_id, Some(7));
    assert_eq!(out[0].lsn, Some(Lsn(3)), "max event LSN without commit LSN");
    assert_eq!(out[0].position, Position::FileLine(3));
    assert_eq!(out[1].tx_id, Some(8));
    a.idle();
    let out = drain(&mut a);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].tx_id, Some(9));
    // Events without a txId are transactions of their own.
    let no_tx = order_event(4, 1, 6, None).replace(r#""txId":1,"#, "");
    a.push(p(O, &no_tx), Position::None);
    a.push(p(O, &no_tx), Position::None);
    assert_eq!(drain(&mut a).len(), 2);
}

#[test]
fn snapshot_reads_are_batched() {
    let mut a = TxAssembler::new(GroupConfig {
        snapshot_batch: 4,
        ..GroupConfig::default()
    });
    for i in 0..10 {
        let e = order_event(i, 3, 100, None)
            .replace(r#""snapshot":"false""#, r#""snapshot":"true""#)
            .replace(r#""op":"c""#, r#""op":"r""#);
        a.push(p(O, &e), Position::None);
    }
    a.flush();
    let sizes: Vec<usize> = drain(&mut a).iter().map(|t| t.changes.len()).collect();
    assert_eq!(sizes, vec![4, 4, 2]);
}

#[test]
fn flush_releases_incomplete_and_markerless_pending() {
    let mut a = TxAssembler::new(GroupConfig {
        markers: MarkerMode::On,
        ..GroupConfig::default()
    });
    a.push(p(O, &order_event(1, 5, 1, Some(1))), Position::FileLine(1));
    a.push(p(T, &begin(6)), Position::FileLine(2));
    a.push(p(O, &order_event(2, 6, 2, Some(1))), Position::FileLine(3));
    a.push(Parsed::Tombstone, Position::FileLine(4));
    assert!(drain(&mut a).is_empty());
    a.flush();
    let out = drain(&mut a);
    assert_eq!(
        out.iter().map(|t| t.tx_id).collect::<Vec<_>>(),
        vec![Some(6), Some(5)]
    );
    assert_eq!(a.stats().forced_incomplete, 2);
    // The tombstone belonged to no transaction: its position rides on the next one released.
    assert_eq!(out[0].position, Position::FileLine(4));
}

#[test]
fn marker_mode_off_ignores_markers() {
    let mut a = TxAssembler::new(GroupConfig {
        markers: MarkerMode::Off,
        ..GroupConfig::default()
    });
    a.push(p(T, &begin(1)), Position::None);
    a.push(p(O, &order_event(1, 1, 1, Some(1))), Position::None);
    a.push(p(O, &order_event(2, 2, 2, Some(1))), Position::None);
    assert_eq!(drain(&mut a).len(), 1);
}

#[test]
fn a_dead_lettered_event_does_not_hold_its_transaction_back() {
    use sources::deadletter::DeadLetters;
    let dl = DeadLetters::in_memory(10);
    let mut a = TxAssembler::new(GroupConfig {
        markers: MarkerMode::On,
        ..GroupConfig::default()
    });
    let bad = order_event(2, 30, 8, Some(2)).replace(r#""status":"pending""#, r#""status":"lost""#);
    let msgs = [
        (T, begin(30)),
        (O, order_event(1, 30, 7, Some(1))),
        (O, bad),
        (T, end(30, 2, 0)),
        (T, begin(31)),
        (O, order_event(3, 31, 9, Some(1))),
        (T, end(31, 1, 0)),
    ];
    for (i, (topic, m)) in msgs.iter().enumerate() {
        a.push_message(
            &dl,
            i,
            Some(topic),
            Some(m.as_bytes()),
            Position::FileLine(i as u64 + 1),
        );
    }
    let out = drain(&mut a);
    assert_eq!(
        out.iter().map(|t| t.tx_id).collect::<Vec<_>>(),
        vec![Some(30), Some(31)]
    );
    assert_eq!(keys(&out[0]), vec![(Table::Orders, 1)]);
    assert_eq!(out[0].position, Position::FileLine(4));
    assert_eq!(dl.total(), 1);
    assert_eq!(a.stats().forced_incomplete, 0);
    assert_eq!(
        sources::debezium::probe_tx_id(msgs[2].1.as_bytes()).as_deref(),
        Some("30:8")
    );
}

#[test]
fn snapshot_run_is_released_before_the_first_marked_transaction() {
    let mut a = TxAssembler::new(GroupConfig {
        markers: MarkerMode::On,
        ..GroupConfig::default()
    });
    for i in 0..3 {
        let e = order_event(i, 3, 100, None)
            .replace(r#""snapshot":"false""#, r#""snapshot":"true""#)
            .replace(r#""op":"c""#, r#""op":"r""#);
        a.push(p(O, &e), Position::None);
    }
    a.push(p(T, &begin(40)), Position::None);
    a.push(p(O, &order_event(9, 40, 200, Some(1))), Position::None);
    a.push(p(T, &end(40, 1, 0)), Position::None);
    let out = drain(&mut a);
    assert_eq!(
        out.iter()
            .map(|t| (t.tx_id, t.changes.len()))
            .collect::<Vec<_>>(),
        vec![(Some(3), 3), (Some(40), 1)]
    );
}

/// One marked transaction of one order, with any transaction id text.
fn marked(a: &mut TxAssembler, id: &str, order_id: i64, lsn: u64) {
    let begin =
        format!(r#"{{"status":"BEGIN","id":"{id}","event_count":null,"data_collections":null}}"#);
    let end = format!(
        r#"{{"status":"END","id":"{id}","event_count":1,"data_collections":[{{"data_collection":"public.orders","event_count":1}}]}}"#
    );
    a.push(p(T, &begin), Position::None);
    a.push(p(O, &event_in(id, order_id, lsn)), Position::None);
    a.push(p(T, &end), Position::None);
}

fn event_in(id: &str, order_id: i64, lsn: u64) -> String {
    format!(
        r#"{{"before":null,"after":{{"order_id":{order_id},"order_date":"2024-01-01T00:00:00Z","total_price":"10.00","status":"pending","customer_id":1,"payment_id":null,"shipment_id":null}},"source":{{"table":"orders","lsn":{lsn},"snapshot":"false"}},"op":"c","transaction":{{"id":"{id}","total_order":1,"data_collection_order":1}}}}"#
    )
}

#[test]
fn released_ids_are_remembered_per_kind_up_to_the_bound() {
    let mut a = TxAssembler::new(GroupConfig {
        remember_released: 2,
        ..GroupConfig::default()
    });
    // three numeric xids and one textual id, each released complete
    marked(&mut a, "30:1", 1, 10);
    marked(&mut a, "31:1", 2, 11);
    marked(&mut a, "txn-a", 3, 12);
    marked(&mut a, "32:1", 4, 13);
    assert_eq!(drain(&mut a).len(), 4);
    // the textual id is remembered beside the numeric ones (a bound per kind): its late
    // redelivery goes out alone, and so does one of the two latest xids
    a.push(p(O, &event_in("txn-a", 3, 12)), Position::None);
    a.push(p(O, &event_in("32:7", 4, 13)), Position::None);
    assert_eq!(drain(&mut a).len(), 2);
    assert_eq!(a.stats().late_events, 2);
    // xid 30 is beyond the bound: its redelivery is a new transaction, waiting for its END
    a.push(p(O, &event_in("30:1", 1, 10)), Position::None);
    assert!(drain(&mut a).is_empty());
    assert_eq!(a.stats().late_events, 2);
}

#[test]
fn runs_released_before_markers_are_recognised_after_the_switch() {
    // Auto mode, txId runs first: the released xids are only queued until a marker comes
    let mut a = TxAssembler::new(GroupConfig {
        remember_released: 2,
        ..GroupConfig::default()
    });
    for (order_id, tx) in [(1, 40), (2, 41), (3, 41), (4, 42), (5, 43)] {
        a.push(
            p(O, &order_event(order_id, tx, order_id as u64, None)),
            Position::None,
        );
    }
    a.idle();
    assert_eq!(drain(&mut a).len(), 4);
    // markers switch on; tx 42's marker and a redelivered event of tx 43 (both released as
    // runs, within the bound of 2) are recognised: the marker waits for nothing, the event
    // goes out alone
    a.push(p(T, &begin(42)), Position::None);
    a.push(p(T, &end(42, 1, 0)), Position::None);
    a.push(p(O, &order_event(5, 43, 5, Some(1))), Position::None);
    let out = drain(&mut a);
    assert_eq!(out.len(), 1);
    assert_eq!(keys(&out[0]), vec![(Table::Orders, 5)]);
    assert_eq!(a.stats().late_events, 1);
    // tx 41 (its two events one run, remembered once) is beyond the bound of 2: its marker
    // opens a transaction that waits for its events
    a.push(p(T, &begin(41)), Position::None);
    a.push(p(T, &end(41, 1, 0)), Position::None);
    assert!(drain(&mut a).is_empty());
    a.push(p(O, &order_event(2, 41, 2, Some(1))), Position::None);
    assert_eq!(drain(&mut a).len(), 1);
    assert_eq!(a.stats().late_events, 1);
}

/// A transaction's arrival is its last message's: the time the source gave for a whole read
/// (a file's buffer), or the clock when it is pushed once the source gives none again.
#[test]
fn arrival_is_the_reads_or_the_clocks() {
    let mut a = TxAssembler::default();
    a.arrived(Some(Micros(1_000)));
    a.push(p(O, &order_event(1, 7, 1, None)), Position::None);
    a.arrived(Some(Micros(2_000)));
    a.push(p(I, &item_event(1, 7, 2, None)), Position::None);
    a.push(p(O, &order_event(2, 8, 3, None)), Position::None);
    let out = drain(&mut a);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].received_at, Micros(2_000), "the last message's read");
    a.arrived(None);
    let before = Micros::now();
    a.push(p(O, &order_event(3, 9, 4, None)), Position::None);
    a.idle();
    let out = drain(&mut a);
    assert_eq!(out.len(), 2);
    assert_eq!(
        out[0].received_at,
        Micros(2_000),
        "tx 8 arrived with the second read"
    );
    assert!(out[1].received_at >= before, "timed when pushed");
}
