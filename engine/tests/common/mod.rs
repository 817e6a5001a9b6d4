//! Helpers shared by the engine's integration tests: the random stream generator and a
//! readable diff of view contents. Test-only; owns nothing of the engine.
#![allow(dead_code)]

pub mod gen;
