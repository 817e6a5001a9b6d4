//! Webhook sink.
