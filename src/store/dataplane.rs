//! The download path's SQL: whether a signed URI may be served right now, and
//! the session-lease renewal that serving bytes counts as.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{secs, Db, Result};
use crate::domain::{FileName, SessionId};

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
    /// Seconds the session is now guaranteed to live, measured by the database clock.
    pub lease_remaining: f64,
}

impl Db {
    /// Checks that the HTTPS endpoint of `file` in `session` is valid now and,
    /// in the same statement, renews the session's lease (a download is
    /// activity). With `artifact`, the bytes must still be those (a renewal
    /// during a long transfer). None for every reason a URI may be refused, so
    /// callers cannot tell (or reveal) which check failed.
    ///
    /// A NULL endpoint type counts as HTTPS, as it does where the URI is built.
    pub async fn open_download(
        &self,
        session: SessionId,
        file: &FileName,
        artifact: Option<&str>,
        lease: Duration,
    ) -> Result<Option<Servable>> {
        Ok(sqlx::query_as!(
            Servable,
            r#"UPDATE download_sessions s
               SET expiration_time = session_lease(s.expiration_time, $3)
               FROM download_files f, artifacts a
               WHERE s.id = $1 AND s.state = 'ACTIVE' AND s.expiration_time > now()
                 AND f.session_id = s.id AND f.name = $2 AND f.status = 'PREPARED'
                 AND COALESCE(f.endpoint_type, 'HTTPS') = 'HTTPS'
                 AND a.sha256 = f.artifact_sha256
                 AND ($4::text IS NULL OR a.sha256 = $4)
               RETURNING a.transfer_key, a.size, a.sha256, a.created_at AS staged_at,
                   EXTRACT(EPOCH FROM s.expiration_time - now())::float8 AS "lease_remaining!""#,
            session.0,
            file.as_str(),
            secs(lease),
            artifact
        )
        .fetch_optional(&self.pool)
        .await?)
    }
}
