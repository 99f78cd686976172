//! What a valid download URI serves. The data plane decides it from the
//! validity cache (`crate::validity`), which loads sessions with their files
//! and staged objects in `store::validity`.

use chrono::{DateTime, Utc};

/// What a valid download URI serves: one artifact of the transfer store.
#[derive(Clone, Debug)]
pub struct Servable {
    /// Key of the prepared bytes in the transfer store.
    pub transfer_key: String,
    pub size: i64,
    /// Hex SHA-256 of the bytes (the file's checksum, the response's ETag).
    pub sha256: String,
    /// When the artifact was staged; its bytes never change after that.
    pub staged_at: DateTime<Utc>,
    /// Seconds the session is now guaranteed to live (the database's answer,
    /// counted down on this instance's monotonic clock).
    pub lease_remaining: f64,
}
