//! Per-file prepare state as clients read and request it.

use sqlx::types::Json;

use super::{Db, Result};
use crate::{
    domain::{models::FileState, EndpointType, FileName, PrepareStatus, SessionId, SessionState},
    error::LocalizableMessage,
};

/// Channel that wakes prepare workers on every instance.
pub const PREPARE_CHANNEL: &str = "dls_prepare";

struct FileRow {
    name: String,
    size: Option<i64>,
    bytes_transferred: i64,
    status: PrepareStatus,
    endpoint_type: Option<EndpointType>,
    checksum: Option<String>,
    error_message: Option<Json<LocalizableMessage>>,
    transfer_key: Option<String>,
}

impl From<FileRow> for FileState {
    fn from(r: FileRow) -> Self {
        FileState {
            name: r.name,
            size: r.size,
            bytes_transferred: r.bytes_transferred,
            status: r.status,
            endpoint_type: r.endpoint_type,
            checksum: r.checksum,
            error_message: r.error_message.map(|j| j.0),
            artifact_key: r.transfer_key,
        }
    }
}

/// What a prepare request found.
pub enum PrepareRequest {
    /// The file, requested (or already on its way).
    File(FileState),
    /// The session has no file of that name.
    NoSuchFile,
    /// The session is gone (expired or deleted).
    NoSession,
    /// The session is no longer ACTIVE: nothing was requested.
    NotActive(SessionState),
}

impl Db {
    /// The session's files, by name.
    pub async fn list_files(&self, session: SessionId) -> Result<Vec<FileState>> {
        self.files(session, None).await
    }

    pub async fn get_file(&self, session: SessionId, name: &FileName) -> Result<Option<FileState>> {
        Ok(self.files(session, Some(name)).await?.pop())
    }

    /// All files of a session, or only the one named `only`.
    async fn files(&self, session: SessionId, only: Option<&FileName>) -> Result<Vec<FileState>> {
        let rows = sqlx::query_as!(
            FileRow,
            r#"SELECT f.name, f.size, f.bytes_transferred, f.status AS "status: PrepareStatus",
                   f.endpoint_type AS "endpoint_type: EndpointType", f.checksum,
                   f.error_message AS "error_message: Json<LocalizableMessage>",
                   a.transfer_key AS "transfer_key?"
               FROM download_files f
               LEFT JOIN artifacts a ON a.sha256 = f.artifact_sha256
               WHERE f.session_id = $1 AND ($2::text IS NULL OR f.name = $2)
               ORDER BY f.name"#,
            session.0,
            only.map(FileName::as_str)
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(FileState::from).collect())
    }

    /// Requests preparation of a file: UNPREPARED or ERROR becomes
    /// PREPARE_REQUESTED and workers are notified; a file already requested,
    /// in progress or prepared keeps its state (its endpoint type follows the
    /// latest request).
    ///
    /// The session's state is read and the request made in one transaction, with
    /// the session row share-locked: a cancel or fail (which lock it for update,
    /// then stop the session's requested files) either commits before, and the
    /// request is refused, or waits until the request has committed and then
    /// stops it too. Checked outside, a file could be requested just after the
    /// cancel stopped the others, and wait for ever in a CANCELED session.
    pub async fn request_prepare(
        &self,
        session: SessionId,
        name: &FileName,
        endpoint: EndpointType,
    ) -> Result<PrepareRequest> {
        let mut tx = self.pool.begin().await?;
        let state = sqlx::query_scalar!(
            r#"SELECT state AS "state: SessionState" FROM download_sessions
               WHERE id = $1 AND expiration_time > now() FOR SHARE"#,
            session.0
        )
        .fetch_optional(&mut *tx)
        .await?;
        match state {
            None => return Ok(PrepareRequest::NoSession),
            Some(SessionState::Active) => {}
            Some(state) => return Ok(PrepareRequest::NotActive(state)),
        }
        let status = sqlx::query_scalar!(
            r#"SELECT status AS "status: PrepareStatus" FROM download_files
               WHERE session_id = $1 AND name = $2 FOR UPDATE"#,
            session.0,
            name.as_str()
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(status) = status else {
            return Ok(PrepareRequest::NoSuchFile);
        };
        if status.can_request_prepare() {
            sqlx::query!(
                "UPDATE download_files SET status = 'PREPARE_REQUESTED', endpoint_type = $3, \
                     error_message = NULL, bytes_transferred = 0, attempts = 0, size = NULL, \
                     checksum = NULL, artifact_sha256 = NULL, lease_owner = NULL, \
                     lease_until = NULL, requested_at = now(), updated_at = now() \
                 WHERE session_id = $1 AND name = $2",
                session.0,
                name.as_str(),
                endpoint.as_str()
            )
            .execute(&mut *tx)
            .await?;
            // Delivered at commit, to every instance's listener.
            notify_prepare(&mut tx).await?;
        } else {
            sqlx::query!(
                "UPDATE download_files SET endpoint_type = $3 WHERE session_id = $1 AND name = $2",
                session.0,
                name.as_str(),
                endpoint.as_str()
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(match self.get_file(session, name).await? {
            Some(file) => PrepareRequest::File(file),
            None => PrepareRequest::NoSession,
        })
    }
}

/// Wakes the prepare workers of every instance once `tx` commits.
pub(super) async fn notify_prepare(tx: &mut sqlx::PgConnection) -> Result<()> {
    sqlx::query!("SELECT pg_notify($1, '')", PREPARE_CHANNEL)
        .execute(tx)
        .await?;
    Ok(())
}
