//! Private PostgreSQL cluster under the data dir, for `serve` with no database configured.
