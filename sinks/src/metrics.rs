//! Sink metrics in the prometheus default registry (gathered by the API's `/metrics`).
//!
//! - `shopstream_sink_messages_total{sink,topic}`: messages delivered (Kafka topic, view file,
//!   webhook host);
//! - `shopstream_sink_errors_total{sink}`: failed deliveries (each retry counts) and messages
//!   given up on — never silent;
//! - `shopstream_sink_resubscribes_total{sink}`: times the store dropped the sink for lagging.

use prometheus::{IntCounter, IntCounterVec, Opts};
use std::sync::LazyLock;

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    // Registration only fails on a duplicate name or bad options; keep counting unregistered
    // rather than panic in a library.
    let Ok(v) = IntCounterVec::new(Opts::new(name, help), labels) else {
        unreachable_metric(name)
    };
    if let Err(e) = prometheus::default_registry().register(Box::new(v.clone())) {
        tracing::warn!(metric = name, error = %e, "metric not registered");
    }
    v
}

fn unreachable_metric(name: &str) -> ! {
    // Only reachable with an invalid static name or label, a programming error caught by tests.
    panic!("invalid metric definition {name}")
}

static MESSAGES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "shopstream_sink_messages_total",
        "Messages delivered by a sink, per sink and topic (Kafka topic, view file, webhook host)",
        &["sink", "topic"],
    )
});

static ERRORS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "shopstream_sink_errors_total",
        "Failed sink deliveries (every failed attempt) and messages given up on",
        &["sink"],
    )
});

static RESUBSCRIBES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "shopstream_sink_resubscribes_total",
        "Times a sink lagged, was dropped by the view store and re-subscribed from a snapshot",
        &["sink"],
    )
});

pub fn messages(sink: &str, topic: &str) -> IntCounter {
    MESSAGES.with_label_values(&[sink, topic])
}

pub fn errors(sink: &str) -> IntCounter {
    ERRORS.with_label_values(&[sink])
}

pub fn resubscribes(sink: &str) -> IntCounter {
    RESUBSCRIBES.with_label_values(&[sink])
}
