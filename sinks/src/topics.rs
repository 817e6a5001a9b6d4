//! Topic inspector for the engine CLI.
