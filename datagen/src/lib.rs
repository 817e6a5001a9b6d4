//! datagen: owns the shop's DDL, fills it with realistic fake data, and simulates shoppers.
//!
//! - [`schema`]: the SQL of the ten tables, indexes, replica identity and publication.
//! - [`catalog`]: master rows (categories, products, customers) as pure functions of seed and id.
//! - [`model`]: the shopper behaviour model, in memory and deterministic — also what the
//!   engine's embedded default mode runs ([`model::Shop`]).
//! - [`sql`]: typed rows as SQL statements, bind values and COPY text.
//! - [`db`], [`generate`], [`simulate`]: the Postgres side of the CLI.
//!
//! Must not know about the engine, Kafka or views.

pub mod catalog;
pub mod db;
pub mod generate;
pub mod model;
pub mod schema;
pub mod simulate;
pub mod sql;

pub use model::{Action, Shop, ShopConfig, Step};
pub use schema::DEFAULT_PUBLICATION;
