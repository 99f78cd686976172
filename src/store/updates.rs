//! Update sessions and their files: create (idempotent per client token, one
//! ACTIVE per item), state changes under a row lock, uploads fenced by their
//! upload id, and complete, which publishes the files as the item's next
//! content version in one transaction.
//!
//! Leases are renewed through the SQL function `session_lease` (migration
//! 0003), the same definition of what activity buys as for download sessions.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{types::Json, Postgres, Transaction};
use uuid::Uuid;

use super::{catalog::touch_content, secs, Db, Result};
use crate::{
    domain::{
        update::{FileAdd, SourceType, TransferStatus, UpdateState},
        ClientToken, FileName, ItemId, Progress, UpdateSessionId,
    },
    error::LocalizableMessage,
};

#[derive(Clone, Debug)]
pub struct UpdateSessionRow {
    pub id: UpdateSessionId,
    pub owner_id: Uuid,
    pub library_item_id: ItemId,
    pub content_version: i64,
    pub state: UpdateState,
    pub client_progress: i32,
    pub error_message: Option<Json<LocalizableMessage>>,
    pub expiration_time: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct UpdateFileRow {
    pub name: String,
    pub source_type: SourceType,
    pub declared_size: Option<i64>,
    pub declared_sha256: Option<String>,
    pub status: TransferStatus,
    pub bytes_transferred: i64,
    pub error_message: Option<Json<LocalizableMessage>>,
    pub size: Option<i64>,
    pub sha256: Option<String>,
}

/// What `create_update_session` found.
pub enum UpdateCreated {
    NoSuchItem,
    /// Another ACTIVE session changes the item.
    Busy,
    Session(UpdateSessionId),
}

/// What `complete` did.
pub enum Completed {
    /// The item's new content version.
    Published(i64),
    /// Files added whose bytes are not (all, or correctly) in.
    NotReady(Vec<String>),
    /// A received object was collected (the session outlived the collection
    /// grace without activity): the file must be sent again.
    ContentCollected,
}

/// What `delete_update_session` found.
pub enum Deleted {
    Deleted,
    NotFound,
    Active,
}

/// An upload allowed to start: its fence and what `add` declared.
pub struct UploadStart {
    pub upload_id: Uuid,
    pub declared_size: Option<i64>,
    pub declared_sha256: Option<String>,
}

/// How an upload's recording ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Recorded {
    Done,
    /// The session ended, expired, or a newer upload of the file took over.
    Superseded,
    /// The collector took the object meanwhile (not reserved long enough).
    ContentCollected,
}

/// An update session locked for a change; dropped without a commit it rolls back.
pub struct LockedUpdate {
    tx: Transaction<'static, Postgres>,
    pub row: UpdateSessionRow,
}

impl Db {
    pub async fn create_update_session(
        &self,
        owner: Uuid,
        item: ItemId,
        client_token: Option<&ClientToken>,
        lease: Duration,
    ) -> Result<UpdateCreated> {
        let token = client_token.map(ClientToken::as_str);
        let mut tx = self.pool.begin().await?;
        let version = sqlx::query_scalar!(
            "SELECT content_version FROM library_items WHERE id = $1 FOR UPDATE",
            item.0
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(version) = version else {
            return Ok(UpdateCreated::NoSuchItem);
        };
        // Expired sessions hold neither their token nor the item.
        sqlx::query!(
            "DELETE FROM update_sessions WHERE expiration_time <= now() \
             AND (library_item_id = $1 OR (owner_id = $2 AND client_token = $3))",
            item.0,
            owner,
            token
        )
        .execute(&mut *tx)
        .await?;
        if let Some(token) = token {
            let existing = sqlx::query_scalar!(
                r#"SELECT id AS "id: UpdateSessionId" FROM update_sessions
                   WHERE owner_id = $1 AND client_token = $2"#,
                owner,
                token
            )
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(id) = existing {
                return Ok(UpdateCreated::Session(id));
            }
        }
        // The item row is locked: no other create of this item runs now, so a
        // conflict can only be the one-ACTIVE-per-item index.
        let id = sqlx::query_scalar!(
            r#"INSERT INTO update_sessions
                 (id, owner_id, library_item_id, content_version, expiration_time, client_token)
               VALUES ($1, $2, $3, $4, now() + $5 * interval '1 second', $6)
               ON CONFLICT DO NOTHING
               RETURNING id AS "id: UpdateSessionId""#,
            UpdateSessionId::new_random().0,
            owner,
            item.0,
            version,
            secs(lease),
            token
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = id else {
            return Ok(UpdateCreated::Busy);
        };
        tx.commit().await?;
        Ok(UpdateCreated::Session(id))
    }

    /// The caller's live session, its lease renewed (a use by its owner is
    /// activity). The renewal is written only when the stored expiry lags
    /// `now + lease` by more than half the `granularity`, as for download
    /// sessions: in the steady state a read writes nothing.
    pub async fn touch_update_session(
        &self,
        owner: Uuid,
        id: UpdateSessionId,
        lease: Duration,
        granularity: Duration,
    ) -> Result<Option<UpdateSessionRow>> {
        Ok(sqlx::query_as!(
            UpdateSessionRow,
            r#"WITH live AS (
                   SELECT * FROM update_sessions
                   WHERE id = $1 AND owner_id = $2 AND expiration_time > now()),
               renewed AS (
                   UPDATE update_sessions u
                   SET expiration_time = session_lease(u.expiration_time, $3)
                   FROM live
                   WHERE u.id = live.id
                     AND live.expiration_time < now() + ($3::float8 - $4::float8 / 2) * interval '1 second'
                   RETURNING u.expiration_time)
               SELECT id AS "id!: UpdateSessionId", owner_id AS "owner_id!",
                   library_item_id AS "library_item_id!: ItemId", content_version AS "content_version!",
                   state AS "state!: UpdateState", client_progress AS "client_progress!",
                   error_message AS "error_message: Json<LocalizableMessage>",
                   COALESCE((SELECT expiration_time FROM renewed), live.expiration_time)
                       AS "expiration_time!"
               FROM live"#,
            id.0,
            owner,
            secs(lease),
            secs(granularity)
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Locks the caller's live session for a change.
    pub async fn lock_update_session(
        &self,
        owner: Uuid,
        id: UpdateSessionId,
    ) -> Result<Option<LockedUpdate>> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query_as!(
            UpdateSessionRow,
            r#"SELECT id AS "id: UpdateSessionId", owner_id,
                   library_item_id AS "library_item_id: ItemId", content_version,
                   state AS "state: UpdateState", client_progress,
                   error_message AS "error_message: Json<LocalizableMessage>",
                   expiration_time
               FROM update_sessions
               WHERE id = $1 AND owner_id = $2 AND expiration_time > now() FOR UPDATE"#,
            id.0,
            owner
        )
        .fetch_optional(&mut *tx)
        .await?;
        Ok(row.map(|row| LockedUpdate { tx, row }))
    }

    /// Ids of the caller's live update sessions, optionally of one item.
    pub async fn list_update_sessions(
        &self,
        owner: Uuid,
        item: Option<ItemId>,
    ) -> Result<Vec<UpdateSessionId>> {
        Ok(sqlx::query_scalar!(
            r#"SELECT id AS "id: UpdateSessionId" FROM update_sessions
               WHERE owner_id = $1 AND expiration_time > now()
                 AND ($2::uuid IS NULL OR library_item_id = $2)
               ORDER BY created_at, id"#,
            owner,
            item.map(|i| i.0)
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Deletes the caller's live session unless it is ACTIVE.
    pub async fn delete_update_session(&self, owner: Uuid, id: UpdateSessionId) -> Result<Deleted> {
        let Some(locked) = self.lock_update_session(owner, id).await? else {
            return Ok(Deleted::NotFound);
        };
        if locked.row.state == UpdateState::Active {
            return Ok(Deleted::Active);
        }
        let mut tx = locked.tx;
        sqlx::query!("DELETE FROM update_sessions WHERE id = $1", id.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Deleted::Deleted)
    }

    /// Removes up to `batch` update sessions past their expiration time (their
    /// files by cascade; what they received is then unreferenced and collected).
    pub async fn expire_update_sessions(&self, batch: i64) -> Result<u64> {
        let done = sqlx::query!(
            "DELETE FROM update_sessions WHERE id IN ( \
                SELECT id FROM update_sessions WHERE expiration_time <= now() \
                ORDER BY expiration_time LIMIT $1 FOR UPDATE SKIP LOCKED)",
            batch
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// The files of a session (those added and not removed), by name.
    pub async fn list_update_files(&self, id: UpdateSessionId) -> Result<Vec<UpdateFileRow>> {
        Ok(sqlx::query_as!(
            UpdateFileRow,
            r#"SELECT name, source_type AS "source_type: SourceType", declared_size,
                   declared_sha256, status AS "status: TransferStatus", bytes_transferred,
                   error_message AS "error_message: Json<LocalizableMessage>", size, sha256
               FROM update_files WHERE session_id = $1 AND NOT removed ORDER BY name"#,
            id.0
        )
        .fetch_all(&self.pool)
        .await?)
    }

    // --------------------------------------------------------------- uploads

    /// Starts (or starts over) the upload of a PUSH file of an ACTIVE, live
    /// session: any earlier upload of it is superseded and what it received dropped.
    pub async fn begin_upload(
        &self,
        id: UpdateSessionId,
        name: &FileName,
        lease: Duration,
    ) -> Result<Option<UploadStart>> {
        let mut tx = self.pool.begin().await?;
        let live = sqlx::query_scalar!(
            "UPDATE update_sessions SET expiration_time = session_lease(expiration_time, $2) \
             WHERE id = $1 AND state = 'ACTIVE' AND expiration_time > now() RETURNING id",
            id.0,
            secs(lease)
        )
        .fetch_optional(&mut *tx)
        .await?;
        if live.is_none() {
            return Ok(None);
        }
        let upload_id = Uuid::new_v4();
        let start = sqlx::query!(
            "UPDATE update_files SET status = 'TRANSFERRING', upload_id = $3, bytes_transferred = 0, \
                 error_message = NULL, size = NULL, sha256 = NULL, content_key = NULL, updated_at = now() \
             WHERE session_id = $1 AND name = $2 AND NOT removed AND source_type = 'PUSH' \
             RETURNING declared_size, declared_sha256",
            id.0,
            name.as_str(),
            upload_id
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(start) = start else {
            return Ok(None);
        };
        tx.commit().await?;
        Ok(Some(UploadStart {
            upload_id,
            declared_size: start.declared_size,
            declared_sha256: start.declared_sha256,
        }))
    }

    /// Progress of a running upload; renews the session's lease. False once the
    /// upload is superseded (a newer upload, or the session no longer ACTIVE).
    pub async fn upload_progress(
        &self,
        id: UpdateSessionId,
        name: &FileName,
        upload_id: Uuid,
        bytes: i64,
        lease: Duration,
        claim_lease: Duration,
    ) -> Result<bool> {
        let done = sqlx::query!(
            "WITH s AS (UPDATE update_sessions SET expiration_time = session_lease(expiration_time, $5) \
                        WHERE id = $1 AND state = 'ACTIVE' AND expiration_time > now() RETURNING id) \
             UPDATE update_files f SET bytes_transferred = $4, updated_at = now(), \
                 lease_until = CASE WHEN f.lease_owner IS NULL THEN NULL \
                                    ELSE now() + $6 * interval '1 second' END \
             FROM s \
             WHERE f.session_id = s.id AND f.name = $2 AND f.upload_id = $3 \
               AND f.status = 'TRANSFERRING'",
            id.0,
            name.as_str(),
            upload_id,
            bytes,
            secs(lease),
            secs(claim_lease)
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// A running upload failed: the file goes to ERROR with why.
    pub async fn upload_failed(
        &self,
        id: UpdateSessionId,
        name: &FileName,
        upload_id: Uuid,
        message: &LocalizableMessage,
    ) -> Result<bool> {
        let done = sqlx::query!(
            "UPDATE update_files SET status = 'ERROR', error_message = $4, upload_id = NULL, \
                 lease_owner = NULL, lease_until = NULL, updated_at = now() \
             WHERE session_id = $1 AND name = $2 AND upload_id = $3 AND status = 'TRANSFERRING'",
            id.0,
            name.as_str(),
            upload_id,
            Json(message) as _
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// A running upload is in the content store under `content_key` (reserved
    /// before the object was put there): the file is READY.
    pub async fn upload_ready(
        &self,
        id: UpdateSessionId,
        name: &FileName,
        upload_id: Uuid,
        size: i64,
        sha256: &str,
        content_key: &str,
    ) -> Result<Recorded> {
        let mut tx = self.pool.begin().await?;
        if touch_content(&mut tx, &[content_key]).await? == 0 {
            return Ok(Recorded::ContentCollected);
        }
        let done = sqlx::query!(
            "UPDATE update_files f SET status = 'READY', upload_id = NULL, bytes_transferred = $4, \
                 size = $4, sha256 = $5, content_key = $6, lease_owner = NULL, lease_until = NULL, \
                 updated_at = now() \
             FROM update_sessions s \
             WHERE f.session_id = s.id AND s.id = $1 AND s.state = 'ACTIVE' \
               AND s.expiration_time > now() \
               AND f.name = $2 AND f.upload_id = $3 AND f.status = 'TRANSFERRING'",
            id.0,
            name.as_str(),
            upload_id,
            size,
            sha256,
            content_key
        )
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(Recorded::Superseded);
        }
        tx.commit().await?;
        Ok(Recorded::Done)
    }

    /// Claims the oldest PULL file waiting in an ACTIVE, live session for
    /// `owner` until `lease` from now: one statement, committed before any I/O.
    pub async fn claim_pull(&self, owner: Uuid, lease: Duration) -> Result<Option<PullClaim>> {
        let upload_id = Uuid::new_v4();
        let row = sqlx::query!(
            r#"UPDATE update_files f SET status = 'TRANSFERRING', upload_id = $3, lease_owner = $1,
                   lease_until = now() + $2 * interval '1 second', attempts = f.attempts + 1,
                   bytes_transferred = 0, error_message = NULL, updated_at = now()
               WHERE (f.session_id, f.name) = (
                   SELECT u.session_id, u.name FROM update_files u
                   JOIN update_sessions s ON s.id = u.session_id
                   WHERE u.source_type = 'PULL' AND u.status = 'WAITING_FOR_TRANSFER'
                     AND NOT u.removed AND s.state = 'ACTIVE' AND s.expiration_time > now()
                   ORDER BY u.updated_at LIMIT 1 FOR UPDATE OF u SKIP LOCKED)
               RETURNING f.session_id AS "session: UpdateSessionId", f.name, f.declared_size,
                   f.declared_sha256, f.source_uri AS "source_uri!", f.source_thumbprint"#,
            owner,
            secs(lease),
            upload_id
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|row| PullClaim {
            session: row.session,
            name: row.name,
            start: UploadStart {
                upload_id,
                declared_size: row.declared_size,
                declared_sha256: row.declared_sha256,
            },
            uri: row.source_uri,
            thumbprint: row.source_thumbprint,
        }))
    }

    /// PULL claims whose lease lapsed (their instance died) wait again, or end
    /// in ERROR once `max_attempts` were made. Returns (requeued, failed).
    pub async fn rescue_pulls(&self, max_attempts: i32) -> Result<(u64, u64)> {
        let rows = sqlx::query_scalar!(
            r#"UPDATE update_files SET
                   status = CASE WHEN attempts >= $1 THEN 'ERROR' ELSE 'WAITING_FOR_TRANSFER' END,
                   error_message = CASE WHEN attempts >= $1 THEN jsonb_build_object(
                       'id', 'com.vmware.content.library.item.updatesession.file.pull_abandoned',
                       'default_message', 'The file could not be fetched: ' || attempts || ' attempts were interrupted.',
                       'args', jsonb_build_array()) END,
                   upload_id = NULL, lease_owner = NULL, lease_until = NULL, updated_at = now()
               WHERE lease_owner IS NOT NULL AND lease_until < now() AND status = 'TRANSFERRING'
               RETURNING status AS "status!""#,
            max_attempts
        )
        .fetch_all(&self.pool)
        .await?;
        let failed = rows.iter().filter(|s| *s == "ERROR").count() as u64;
        Ok((rows.len() as u64 - failed, failed))
    }
}

/// A PULL file claimed by this instance's puller.
pub struct PullClaim {
    pub session: UpdateSessionId,
    pub name: String,
    pub start: UploadStart,
    pub uri: String,
    pub thumbprint: Option<String>,
}

impl LockedUpdate {
    /// keep_alive: renews the lease, optionally records progress.
    pub async fn renew(mut self, progress: Option<Progress>, lease: Duration) -> Result<()> {
        sqlx::query!(
            "UPDATE update_sessions \
             SET expiration_time = session_lease(expiration_time, $2), \
                 client_progress = COALESCE($3, client_progress) \
             WHERE id = $1",
            self.row.id.0,
            secs(lease),
            progress.map(Progress::get)
        )
        .execute(&mut *self.tx)
        .await?;
        self.tx.commit().await?;
        Ok(())
    }

    /// cancel / fail: the session leaves ACTIVE; uploads still running are
    /// superseded (their fenced writes find nothing) and their files in ERROR.
    pub async fn finish(
        mut self,
        state: UpdateState,
        error: Option<&LocalizableMessage>,
        file_error: &LocalizableMessage,
        lease: Duration,
    ) -> Result<()> {
        sqlx::query!(
            "UPDATE update_sessions SET state = $2, error_message = $3, \
                 expiration_time = session_lease(expiration_time, $4) \
             WHERE id = $1",
            self.row.id.0,
            state.as_str(),
            error.map(Json) as _,
            secs(lease)
        )
        .execute(&mut *self.tx)
        .await?;
        sqlx::query!(
            "UPDATE update_files SET status = 'ERROR', error_message = $2, upload_id = NULL, \
                 updated_at = now() \
             WHERE session_id = $1 AND status = 'TRANSFERRING'",
            self.row.id.0,
            Json(file_error) as _
        )
        .execute(&mut *self.tx)
        .await?;
        self.tx.commit().await?;
        Ok(())
    }

    /// add: the file joins the session (again: a file added before starts over).
    pub async fn add_file(mut self, add: &FileAdd) -> Result<UpdateFileRow> {
        let source_type = if add.pull.is_some() { "PULL" } else { "PUSH" };
        let row = sqlx::query_as!(
            UpdateFileRow,
            r#"INSERT INTO update_files (session_id, name, source_type, declared_size, declared_sha256,
                   source_uri, source_thumbprint)
               VALUES ($1, $2, $5, $3, $4, $6, $7)
               ON CONFLICT (session_id, name) DO UPDATE SET
                   removed = false, source_type = EXCLUDED.source_type,
                   declared_size = EXCLUDED.declared_size, declared_sha256 = EXCLUDED.declared_sha256,
                   source_uri = EXCLUDED.source_uri, source_thumbprint = EXCLUDED.source_thumbprint,
                   status = 'WAITING_FOR_TRANSFER', bytes_transferred = 0, error_message = NULL,
                   upload_id = NULL, size = NULL, sha256 = NULL, content_key = NULL,
                   lease_owner = NULL, lease_until = NULL, attempts = 0, updated_at = now()
               RETURNING name, source_type AS "source_type: SourceType", declared_size,
                   declared_sha256, status AS "status: TransferStatus", bytes_transferred,
                   error_message AS "error_message: Json<LocalizableMessage>", size, sha256"#,
            self.row.id.0,
            add.name.as_str(),
            add.size,
            add.sha256.as_ref().map(|s| s.as_str()),
            source_type,
            add.pull.as_ref().map(|p| p.uri.as_str()),
            add.pull.as_ref().and_then(|p| p.thumbprint.as_deref())
        )
        .fetch_one(&mut *self.tx)
        .await?;
        self.tx.commit().await?;
        Ok(row)
    }

    /// remove: complete will drop the item's file of this name (and whatever
    /// the session received for it). False when neither the item nor the
    /// session has such a file.
    pub async fn remove_file(mut self, name: &FileName) -> Result<bool> {
        let done = sqlx::query!(
            "INSERT INTO update_files (session_id, name, removed) \
             SELECT $1, $2, true \
             WHERE EXISTS (SELECT 1 FROM update_files WHERE session_id = $1 AND name = $2 AND NOT removed) \
                OR EXISTS (SELECT 1 FROM item_files f JOIN library_items i \
                             ON i.id = f.item_id AND i.content_version = f.content_version \
                           WHERE f.item_id = $3 AND f.name = $2) \
             ON CONFLICT (session_id, name) DO UPDATE SET \
                 removed = true, status = 'WAITING_FOR_TRANSFER', bytes_transferred = 0, \
                 error_message = NULL, upload_id = NULL, size = NULL, sha256 = NULL, \
                 content_key = NULL, updated_at = now() \
             WHERE NOT update_files.removed",
            self.row.id.0,
            name.as_str(),
            self.row.library_item_id.0
        )
        .execute(&mut *self.tx)
        .await?;
        self.tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// complete: the session's files become the item's next content version
    /// (files not named keep their content, removed ones are dropped), all at
    /// once, and the session is DONE.
    pub async fn complete(mut self, lease: Duration) -> Result<Completed> {
        let id = self.row.id.0;
        let not_ready = sqlx::query_scalar!(
            "SELECT name FROM update_files \
             WHERE session_id = $1 AND NOT removed AND status <> 'READY' ORDER BY name",
            id
        )
        .fetch_all(&mut *self.tx)
        .await?;
        if !not_ready.is_empty() {
            return Ok(Completed::NotReady(not_ready));
        }
        let item = self.row.library_item_id.0;
        let current = sqlx::query_scalar!(
            "SELECT content_version FROM library_items WHERE id = $1 FOR UPDATE",
            item
        )
        .fetch_one(&mut *self.tx)
        .await?;
        let keys = sqlx::query_scalar!(
            r#"SELECT DISTINCT content_key AS "content_key!" FROM update_files
               WHERE session_id = $1 AND NOT removed"#,
            id
        )
        .fetch_all(&mut *self.tx)
        .await?;
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        if touch_content(&mut self.tx, &keys).await? < keys.len() as u64 {
            return Ok(Completed::ContentCollected);
        }
        let next = current + 1;
        sqlx::query!(
            "INSERT INTO item_files (item_id, content_version, name, size, sha256, content_key) \
             SELECT item_id, $2, name, size, sha256, content_key FROM item_files f \
             WHERE item_id = $1 AND content_version = $3 \
               AND NOT EXISTS (SELECT 1 FROM update_files u WHERE u.session_id = $4 AND u.name = f.name)",
            item,
            next,
            current,
            id
        )
        .execute(&mut *self.tx)
        .await?;
        sqlx::query!(
            r#"INSERT INTO item_files (item_id, content_version, name, size, sha256, content_key)
               SELECT $1, $2, name, size, sha256, content_key
               FROM update_files WHERE session_id = $3 AND NOT removed"#,
            item,
            next,
            id
        )
        .execute(&mut *self.tx)
        .await?;
        sqlx::query!(
            "UPDATE library_items SET content_version = $2, last_modified_time = now() WHERE id = $1",
            item,
            next
        )
        .execute(&mut *self.tx)
        .await?;
        sqlx::query!(
            "UPDATE update_sessions SET state = 'DONE', client_progress = 100, \
                 expiration_time = session_lease(expiration_time, $2) WHERE id = $1",
            id,
            secs(lease)
        )
        .execute(&mut *self.tx)
        .await?;
        self.tx.commit().await?;
        Ok(Completed::Published(next))
    }
}
