//! Randomized streams: the incremental engine against the batch oracle.
mod oracle;
mod common;
