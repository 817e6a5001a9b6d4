//! Kafka sink against the real broker (Tansu at `TEST_KAFKA_BROKERS`).

mod common;

use common::*;
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;
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

    // The sink created its topics compacted.
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .unwrap();
    let specs: Vec<_> = topics
        .values()
        .map(|t| ResourceSpecifier::Topic(t))
        .collect();
    let described = admin
        .describe_configs(specs.iter(), &AdminOptions::new())
        .await
        .unwrap();
    for d in described {
        let r = d.unwrap();
        let policy = r.get("cleanup.policy").and_then(|e| e.value.clone());
        assert_eq!(policy.as_deref(), Some("compact"), "{:?}", r.specifier);
    }

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

/// The broker is down: the engine (store.apply) never blocks, the store drops the lagging sink,
/// and once the broker is up the sink re-subscribes and the topics still compact to the views.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_broker_never_blocks_and_resubscribe_converges() {
    let Some(bin) = tansu_bin() else {
        eprintln!("tansu binary not found: skipping");
        return;
    };
    let mut broker = PrivateBroker::reserve();
    let store = ViewStore::new();
    let mut a = Applier::new(store.clone());
    let mut cfg = KafkaSinkConfig::new(broker.addr());
    cfg.create_topics = false; // auto-created on produce
    cfg.max_group_messages = 10;
    cfg.retry_base = std::time::Duration::from_millis(50);
    cfg.retry_max = std::time::Duration::from_millis(300);
    cfg.producer_config
        .push(("message.timeout.ms".into(), "1000".into()));
    let topics = cfg.clone().topics;
    let errors_before = sinks::metrics::errors("kafka").get();
    let resubs_before = sinks::metrics::resubscribes("kafka").get();
    let sink = KafkaSink::spawn(cfg, store.clone()).unwrap();

    // Feed batches until the store drops the stuck sink; each apply returns at once.
    let dropped_before = store.dropped_subscribers();
    let mut i = 0;
    while store.dropped_subscribers() == dropped_before {
        i += 1;
        assert!(i < 1_000_000, "the sink was never dropped");
        // One row per key: replace window i%50's current row.
        let old: Vec<_> = store
            .snapshot(view_store::ViewName::Revenue)
            .1
            .into_iter()
            .filter(|r| r.key() == rev(i % 50, 0, 0).key())
            .collect();
        let mut batch: Vec<_> = old.into_iter().map(|r| (r, -1)).collect();
        batch.push((rev(i % 50, i, i), 1));
        a.apply(batch);
    }
    a.apply(vec![
        (high_value(1, 1, 2_000_000_000), 1),
        (high_value(2, 1, 2_000_000_000), 1),
    ]);

    // Failed deliveries are retried and counted, not dropped.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while sinks::metrics::errors("kafka").get() == errors_before {
        assert!(
            std::time::Instant::now() < deadline,
            "no delivery error counted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    broker.start(&bin);
    // Changes after the broker is back, including a retraction.
    a.apply(vec![
        (high_value(1, 1, 2_000_000_000), -1),
        (top(1, 4, 4), 1),
    ]);
    // Wait for the re-subscription before stopping (shutdown would otherwise just drain).
    while sinks::metrics::resubscribes("kafka").get() == resubs_before {
        assert!(std::time::Instant::now() < deadline, "never re-subscribed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    a.apply(vec![(high_value(2, 1, 2_000_000_000), -1)]);
    sink.shutdown().await;

    for (view, topic) in &topics {
        let n = sinks::metrics::messages("kafka", topic).get() as usize;
        let msgs = read_topic_at(&broker.addr(), topic, n);
        assert_eq!(compact(&msgs), expected(&store, *view), "topic {topic}");
    }
}
