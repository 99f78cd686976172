//! The download path's SQL: whether a signed URI may be served right now, and
//! the session-lease renewal that serving bytes counts as.

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{secs, Store};
use crate::error::Result;

/// What a valid download URI serves: one artifact of the transfer store.
#[derive(sqlx::FromRow, Clone, Debug)]
pub struct Servable {
    /// Key of the prepared bytes in the transfer store.
    pub transfer_key: String,
    pub size: i64,
    /// Hex SHA-256 of the bytes (the file's checksum, the response's ETag).
    pub sha256: String,
    /// When the artifact was staged; its bytes never change after that.
    pub staged_at: DateTime<Utc>,
    /// Seconds the session is now guaranteed to live, measured by the database clock.
    pub lease_remaining: f64,
}

/// Conditions under which a URI of (session $1, file $2) is served. Kept in
/// one place so the first check and every renewal during a transfer agree.
/// A NULL endpoint type counts as HTTPS, as it does where the URI is built.
const SERVABLE: &str = "s.id = $1 AND s.state = 'ACTIVE' AND s.expiration_time > now() \
     AND f.session_id = s.id AND f.name = $2 AND f.status = 'PREPARED' \
     AND COALESCE(f.endpoint_type, 'HTTPS') = 'HTTPS' \
     AND a.sha256 = f.artifact_sha256";

impl Store {
    /// Checks that the HTTPS endpoint of `file` in `session` is valid now and,
    /// in the same statement, renews the session's lease (a download is
    /// activity). None for every reason a URI may be refused, so callers
    /// cannot tell (or reveal) which check failed.
    pub async fn open_download(
        &self,
        session: Uuid,
        file: &str,
        lease: Duration,
    ) -> Result<Option<Servable>> {
        Ok(sqlx::query_as(&format!(
            "UPDATE download_sessions s \
             SET expiration_time = GREATEST(s.expiration_time, now() + $3 * interval '1 second') \
             FROM download_files f, artifacts a \
             WHERE {SERVABLE} \
             RETURNING a.transfer_key, a.size, a.sha256, a.created_at AS staged_at, \
                 EXTRACT(EPOCH FROM s.expiration_time - now())::float8 AS lease_remaining"
        ))
        .bind(session)
        .bind(file)
        .bind(secs(lease))
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Renewal during a long transfer: the same checks as `open_download`,
    /// also requiring the artifact being streamed to be the file's still.
    /// Returns the seconds the session is now guaranteed to live, or None
    /// when the URI has been revoked (cancel, fail, delete, expiry).
    pub async fn renew_download(
        &self,
        session: Uuid,
        file: &str,
        sha256: &str,
        lease: Duration,
    ) -> Result<Option<f64>> {
        Ok(sqlx::query_scalar(&format!(
            "UPDATE download_sessions s \
             SET expiration_time = GREATEST(s.expiration_time, now() + $3 * interval '1 second') \
             FROM download_files f, artifacts a \
             WHERE {SERVABLE} AND a.sha256 = $4 \
             RETURNING EXTRACT(EPOCH FROM s.expiration_time - now())::float8"
        ))
        .bind(session)
        .bind(file)
        .bind(secs(lease))
        .bind(sha256)
        .fetch_optional(&self.pool)
        .await?)
    }
}
