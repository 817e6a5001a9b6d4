//! Sinks: consume the engine's stream of view changes (+/−, with `as_of`) and push them to
//! Kafka topics, webhooks and files. Must not compute views.
