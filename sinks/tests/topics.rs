//! Topic inspector against the real broker.

mod common;

use common::*;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use sinks::topics::{self, TailOptions};
use std::time::{Duration, Instant};

const DBZ: &str = r#"{"before":null,"after":{"order_id":7,"total_price":"12.50"},"source":{"version":"2.7.0.Final","connector":"postgresql","name":"ecommerce-cdc","ts_ms":1,"snapshot":"false","db":"shop","schema":"public","table":"orders","txId":771,"lsn":24023128},"op":"c","ts_ms":2}"#;

async fn produce(topic: &str, msgs: &[(&str, Option<&str>)]) {
    // One partition, so that the tail's order is the produce order.
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .unwrap();
    let r = admin
        .create_topics(
            [&NewTopic::new(topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    assert!(r[0].is_ok(), "{r:?}");
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .unwrap();
    for (k, v) in msgs {
        let mut r = FutureRecord::to(topic).key(*k);
        if let Some(v) = v {
            r = r.payload(*v);
        }
        p.send(r, Duration::from_secs(10)).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_tail() {
    let topic = unique("inspect_");
    produce(
        &topic,
        &[
            (r#"{"order_id":7}"#, Some(DBZ)),
            (
                r#"{"rule":"high_value","order_id":7}"#,
                Some(r#"{"rule":"high_value"}"#),
            ),
            (r#"{"rule":"high_value","order_id":7}"#, None),
        ],
    )
    .await;

    let t = topic.clone();
    let listed = tokio::task::spawn_blocking(move || {
        // Watermarks can lag a just-finished write: wait for them rather than assert at once.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let l = topics::list(&brokers()).unwrap();
            let mine = l.iter().find(|i| i.name == t).cloned();
            if mine.as_ref().is_some_and(|i| i.approx_messages >= 3) || Instant::now() > deadline {
                return (l, mine);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .await
    .unwrap();
    let mine = listed.1.expect("topic listed");
    assert_eq!(mine.partitions, 1);
    assert_eq!(mine.approx_messages, 3);
    let mut table = Vec::new();
    topics::print_list(&listed.0, &mut table).unwrap();
    assert!(String::from_utf8(table).unwrap().contains(&topic));

    let t = topic.clone();
    let text = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        let n = topics::tail(&brokers(), &t, true, Some(3), &mut out).unwrap();
        assert_eq!(n, 3);
        // stop_at_end reads exactly what is there
        let mut again = Vec::new();
        let opts = TailOptions {
            from_beginning: true,
            max: None,
            stop_at_end: true,
            idle_timeout: Some(Duration::from_secs(20)),
        };
        assert_eq!(
            topics::tail_with(&brokers(), &t, &opts, &mut again).unwrap(),
            3
        );
        assert_eq!(out, again);
        String::from_utf8(out).unwrap()
    })
    .await
    .unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        r#"[0@0] key={"order_id":7} debezium op=c table=public.orders key={"order_id":7} lsn=0/16E9058 txId=771"#
    );
    assert_eq!(
        lines[1],
        r#"[0@1] key={"rule":"high_value","order_id":7} {"rule":"high_value"}"#
    );
    assert_eq!(
        lines[2],
        r#"[0@2] key={"rule":"high_value","order_id":7} <tombstone>"#
    );

    let missing = topics::tail(&brokers(), &unique("nope_"), true, Some(1), &mut Vec::new());
    assert!(missing.is_err());
}
