//! Download sessions: create (idempotent per client token), state changes
//! under a row lock, delete and expiry (lookups and lazy renewals: `validity`).
//!
//! Every renewal of a session's lease goes through the SQL function
//! `session_lease` (migration 0003), the one definition of what activity buys.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{types::Json, Postgres, Transaction};
use uuid::Uuid;

use super::{secs, Db, Result};
use crate::{
    domain::{ClientToken, ItemId, Progress, SessionId, SessionState},
    error::LocalizableMessage,
};

#[derive(Clone, Debug)]
pub struct SessionRow {
    pub id: SessionId,
    pub owner_id: Uuid,
    pub library_item_id: ItemId,
    pub content_version: i64,
    pub state: SessionState,
    pub client_progress: i32,
    pub error_message: Option<Json<LocalizableMessage>>,
    pub expiration_time: DateTime<Utc>,
    pub created_with_read_storage: bool,
}

/// What `create_session` found.
pub enum Created {
    /// The item does not exist.
    NoSuchItem,
    /// A session (new, or the one this client token already made).
    Session(SessionId),
}

/// A session row locked for a state change; dropped without `commit` it rolls back.
pub struct LockedSession {
    tx: Transaction<'static, Postgres>,
    pub row: SessionRow,
}

impl Db {
    pub async fn create_session(
        &self,
        owner: Uuid,
        item: ItemId,
        read_storage: bool,
        client_token: Option<&ClientToken>,
        lease: Duration,
    ) -> Result<Created> {
        let token = client_token.map(ClientToken::as_str);
        let mut tx = self.pool.begin().await?;
        let version = sqlx::query_scalar!(
            "SELECT content_version FROM library_items WHERE id = $1 FOR SHARE",
            item.0
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(version) = version else {
            return Ok(Created::NoSuchItem);
        };
        if let Some(token) = token {
            // An expired session no longer holds its client token.
            sqlx::query!(
                "DELETE FROM download_sessions \
                 WHERE owner_id = $1 AND client_token = $2 AND expiration_time <= now()",
                owner,
                token
            )
            .execute(&mut *tx)
            .await?;
        }
        let id = sqlx::query_scalar!(
            r#"INSERT INTO download_sessions
                 (id, owner_id, library_item_id, content_version, expiration_time,
                  created_with_read_storage, client_token)
               VALUES ($1, $2, $3, $4, now() + $5 * interval '1 second', $6, $7)
               ON CONFLICT (owner_id, client_token) DO NOTHING
               RETURNING id AS "id: SessionId""#,
            SessionId::new_random().0,
            owner,
            item.0,
            version,
            secs(lease),
            read_storage,
            token
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = id else {
            // Same client token from the same user: the earlier answer stands.
            tx.rollback().await?;
            let existing = sqlx::query_scalar!(
                r#"SELECT id AS "id: SessionId" FROM download_sessions
                   WHERE owner_id = $1 AND client_token = $2"#,
                owner,
                token
            )
            .fetch_one(&self.pool)
            .await?;
            return Ok(Created::Session(existing));
        };
        sqlx::query!(
            "INSERT INTO download_files (session_id, name, expected_size, expected_sha256, content_key) \
             SELECT $1, name, size, sha256, content_key FROM item_files \
             WHERE item_id = $2 AND content_version = $3",
            id.0,
            item.0,
            version
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Created::Session(id))
    }

    /// Locks the caller's live session for a state change.
    pub async fn lock_session(&self, owner: Uuid, id: SessionId) -> Result<Option<LockedSession>> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query_as!(
            SessionRow,
            r#"SELECT id AS "id: SessionId", owner_id,
                   library_item_id AS "library_item_id: ItemId", content_version,
                   state AS "state: SessionState", client_progress,
                   error_message AS "error_message: Json<LocalizableMessage>",
                   expiration_time, created_with_read_storage
               FROM download_sessions
               WHERE id = $1 AND owner_id = $2 AND expiration_time > now() FOR UPDATE"#,
            id.0,
            owner
        )
        .fetch_optional(&mut *tx)
        .await?;
        Ok(row.map(|row| LockedSession { tx, row }))
    }

    /// Ids of the caller's live sessions, optionally for one item.
    pub async fn list_sessions(&self, owner: Uuid, item: Option<ItemId>) -> Result<Vec<SessionId>> {
        Ok(sqlx::query_scalar!(
            r#"SELECT id AS "id: SessionId" FROM download_sessions
               WHERE owner_id = $1 AND expiration_time > now()
                 AND ($2::uuid IS NULL OR library_item_id = $2)
               ORDER BY created_at, id"#,
            owner,
            item.map(|i| i.0)
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Deletes the caller's live session and its files. False when there was none.
    pub async fn delete_session(&self, owner: Uuid, id: SessionId) -> Result<bool> {
        let done = sqlx::query!(
            "DELETE FROM download_sessions \
             WHERE id = $1 AND owner_id = $2 AND expiration_time > now()",
            id.0,
            owner
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes up to `batch` sessions past their expiration time (and their
    /// files, by cascade). Safe on every instance at once.
    pub async fn expire_sessions(&self, batch: i64) -> Result<u64> {
        let done = sqlx::query!(
            "DELETE FROM download_sessions WHERE id IN ( \
                SELECT id FROM download_sessions WHERE expiration_time <= now() \
                ORDER BY expiration_time LIMIT $1 FOR UPDATE SKIP LOCKED)",
            batch
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

impl LockedSession {
    /// keep_alive: renews the lease, optionally records progress.
    pub async fn renew(mut self, progress: Option<Progress>, lease: Duration) -> Result<()> {
        sqlx::query!(
            "UPDATE download_sessions \
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

    /// cancel / fail: moves the session out of ACTIVE and stops its files'
    /// pending and running preparations (workers see it through their fenced writes).
    pub async fn finish(
        mut self,
        state: SessionState,
        error: Option<&LocalizableMessage>,
        file_error: &LocalizableMessage,
        lease: Duration,
    ) -> Result<()> {
        sqlx::query!(
            "UPDATE download_sessions SET state = $2, error_message = $3, \
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
            "UPDATE download_files SET status = 'ERROR', error_message = $2, \
                 lease_owner = NULL, lease_until = NULL, updated_at = now() \
             WHERE session_id = $1 AND status IN ('PREPARE_REQUESTED', 'PREPARING')",
            self.row.id.0,
            Json(file_error) as _
        )
        .execute(&mut *self.tx)
        .await?;
        self.tx.commit().await?;
        Ok(())
    }
}
