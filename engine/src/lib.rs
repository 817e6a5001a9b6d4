//! The engine: upsert state per (table, primary key), the differential dataflow that maintains
//! every view of SPEC §4, and publication into the view store.
//!
//! Owns computation only. Must not parse source formats (sources does) nor serve or push
//! results (api and sinks read the view store).

pub mod alloc;
pub mod cli;
pub mod dump;
pub mod facts;
pub mod ingest;
pub mod items_index;
pub mod runtime;
pub mod upsert;
pub mod views;

pub use runtime::{Counters, Engine, EngineConfig, Submitter};
