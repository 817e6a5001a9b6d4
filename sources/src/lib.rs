//! Change capture for the engine: turns what the shop's database does into an exact, typed,
//! transaction-grouped change stream (`Transaction`s of `Change`s).
//!
//! Owns parsing (Debezium JSON, pgoutput), dead-lettering of malformed input, and the file,
//! Kafka and Postgres sources. Must not keep upsert state or compute views: that is the engine's.

pub mod deadletter;
pub mod debezium;
pub mod decimal;
pub mod event;
pub mod file;
pub mod group;
pub mod kafka;
pub mod pgoutput;
pub mod postgres;
pub mod recycle;
pub mod source;
pub mod types;

pub use event::*;
pub use source::{channel, EngineIo, SourceIo};
pub use types::*;
