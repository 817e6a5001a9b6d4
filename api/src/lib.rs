//! The HTTP API. Reads the view store and, when configured, PostgreSQL. Must not compute views.
