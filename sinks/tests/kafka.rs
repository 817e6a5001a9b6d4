//! Kafka sink against the real broker (Tansu at `TEST_KAFKA_BROKERS`).

mod common;

use common::*;
use sinks::kafka::{KafkaSink, KafkaSinkConfig};
use view_store::{ViewName, ViewStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_compact_to_the_final_views() {
    let store = ViewStore::new();
    let mut a = Applier::new(store.clone());
    // Something before the sink starts: it arrives with the snapshot.
    a.apply(vec![(rev(0, 1, 100), 1), (top(1, 7, 3), 1)]);
    let prefix = unique("sinktest_");
    let cfg = KafkaSinkConfig::new(brokers()).with_prefix(&format!("{prefix}."));
    let topics = cfg.topics.clone();
    let sink = KafkaSink::spawn(cfg, store.clone()).unwrap();

    // Updates, deletes, a high-value alert that is retracted, another that stays, an order
    // burst whose count changes (same key: an update).
    a.apply(vec![
        (rev(0, 1, 100), -1),
        (rev(0, 2, 300), 1),
        (rev(1, 1, 50), 1),
    ]);
    a.apply(vec![
        (high_value(10, 1, 2_000_000_000), 1),
        (burst(5, 6), 1),
    ]);
    a.apply(vec![
        (top(1, 7, 3), -1),
        (top(1, 8, 9), 1),
        (top(2, 7, 3), 1),
    ]);
    a.apply(vec![
        (high_value(11, 2, 3_000_000_000), 1),
        (burst(5, 6), -1),
        (burst(5, 7), 1),
    ]);
    a.apply(vec![(high_value(10, 1, 2_000_000_000), -1)]);
    a.apply(vec![(rev(1, 1, 50), -1), (top(2, 7, 3), -1)]);
    // A change that cancels out within one time produces nothing.
    a.apply(vec![(rev(5, 1, 1), 1), (rev(5, 1, 1), -1)]);

    sink.shutdown().await;

    for (view, topic) in &topics {
        let n = sinks::metrics::messages("kafka", topic).get() as usize;
        let msgs = read_topic(topic, n);
        assert_eq!(compact(&msgs), expected(&store, *view), "topic {topic}");
        if *view == ViewName::FraudAlerts {
            let k = high_value(10, 1, 0).key().to_string();
            assert!(
                msgs.iter().any(|(key, v)| *key == k && v.is_none()),
                "retracted alert has a tombstone: {msgs:?}"
            );
            assert_eq!(
                msgs.last().map(|(k, v)| (k.clone(), v.is_none())),
                Some((k, true))
            );
        }
    }
}
