//! Per-file prepare state as clients read and request it.

use sqlx::types::Json;
use uuid::Uuid;

use super::Store;
use crate::{
    domain::{models::FileState, EndpointType, PrepareStatus},
    error::{LocalizableMessage, Result},
};

/// Channel that wakes prepare workers on every instance.
pub const PREPARE_CHANNEL: &str = "dls_prepare";

#[derive(sqlx::FromRow, Clone, Debug)]
struct FileRow {
    name: String,
    size: Option<i64>,
    bytes_transferred: i64,
    status: String,
    endpoint_type: Option<String>,
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
            status: PrepareStatus::from_db(&r.status),
            endpoint_type: r.endpoint_type.as_deref().map(EndpointType::from_db),
            checksum: r.checksum,
            error_message: r.error_message.map(|j| j.0),
            artifact_key: r.transfer_key,
        }
    }
}

const FILE_COLUMNS: &str = "f.name, f.size, f.bytes_transferred, f.status, f.endpoint_type, \
     f.checksum, f.error_message, a.transfer_key";

impl Store {
    pub async fn list_files(&self, session: Uuid) -> Result<Vec<FileState>> {
        let rows: Vec<FileRow> = sqlx::query_as(&format!(
            "SELECT {FILE_COLUMNS} FROM download_files f \
             LEFT JOIN artifacts a ON a.sha256 = f.artifact_sha256 \
             WHERE f.session_id = $1 ORDER BY f.name"
        ))
        .bind(session)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(FileState::from).collect())
    }

    pub async fn get_file(&self, session: Uuid, name: &str) -> Result<Option<FileState>> {
        let row: Option<FileRow> = sqlx::query_as(&format!(
            "SELECT {FILE_COLUMNS} FROM download_files f \
             LEFT JOIN artifacts a ON a.sha256 = f.artifact_sha256 \
             WHERE f.session_id = $1 AND f.name = $2"
        ))
        .bind(session)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(FileState::from))
    }

    /// Requests preparation of a file: UNPREPARED or ERROR becomes
    /// PREPARE_REQUESTED and workers are notified; a file already requested,
    /// in progress or prepared keeps its state (its endpoint type follows the
    /// latest request). None when the session has no such file.
    pub async fn request_prepare(
        &self,
        session: Uuid,
        name: &str,
        endpoint: EndpointType,
    ) -> Result<Option<FileState>> {
        let mut tx = self.pool.begin().await?;
        let status: Option<String> = sqlx::query_scalar(
            "SELECT status FROM download_files WHERE session_id = $1 AND name = $2 FOR UPDATE",
        )
        .bind(session)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(status) = status else {
            return Ok(None);
        };
        if PrepareStatus::from_db(&status).can_request_prepare() {
            sqlx::query(
                "UPDATE download_files SET status = 'PREPARE_REQUESTED', endpoint_type = $3, \
                     error_message = NULL, bytes_transferred = 0, attempts = 0, size = NULL, \
                     checksum = NULL, artifact_sha256 = NULL, lease_owner = NULL, \
                     lease_until = NULL, requested_at = now(), updated_at = now() \
                 WHERE session_id = $1 AND name = $2",
            )
            .bind(session)
            .bind(name)
            .bind(endpoint.as_str())
            .execute(&mut *tx)
            .await?;
            // Delivered at commit, to every instance's listener.
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(PREPARE_CHANNEL)
                .execute(&mut *tx)
                .await?;
        } else {
            sqlx::query(
                "UPDATE download_files SET endpoint_type = $3 WHERE session_id = $1 AND name = $2",
            )
            .bind(session)
            .bind(name)
            .bind(endpoint.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.get_file(session, name).await
    }
}
