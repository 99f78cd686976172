//! Download sessions: create (idempotent per client token), lookup with lease
//! renewal, state changes under a row lock, delete and expiry.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{types::Json, Postgres, Transaction};
use uuid::Uuid;

use super::{secs, Store};
use crate::error::{LocalizableMessage, Result};

#[derive(sqlx::FromRow, Clone, Debug)]
pub struct SessionRow {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub library_item_id: Uuid,
    pub content_version: i64,
    pub state: String,
    pub client_progress: i32,
    pub error_message: Option<Json<LocalizableMessage>>,
    pub expiration_time: DateTime<Utc>,
    pub created_with_read_storage: bool,
}

const SESSION_COLUMNS: &str = "id, owner_id, library_item_id, content_version, state, \
     client_progress, error_message, expiration_time, created_with_read_storage";

/// What `create_session` found.
pub enum Created {
    /// The item does not exist.
    NoSuchItem,
    /// A session (new, or the one this client token already made).
    Session(Uuid),
}

/// A session row locked for a state change; dropped without `commit` it rolls back.
pub struct LockedSession {
    tx: Transaction<'static, Postgres>,
    pub row: SessionRow,
}

impl Store {
    pub async fn create_session(
        &self,
        owner: Uuid,
        item: Uuid,
        read_storage: bool,
        client_token: Option<&str>,
        lease: Duration,
    ) -> Result<Created> {
        let mut tx = self.pool.begin().await?;
        let version: Option<i64> =
            sqlx::query_scalar("SELECT content_version FROM library_items WHERE id = $1 FOR SHARE")
                .bind(item)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(version) = version else {
            return Ok(Created::NoSuchItem);
        };
        if let Some(token) = client_token {
            // An expired session no longer holds its client token.
            sqlx::query(
                "DELETE FROM download_sessions \
                 WHERE owner_id = $1 AND client_token = $2 AND expiration_time <= now()",
            )
            .bind(owner)
            .bind(token)
            .execute(&mut *tx)
            .await?;
        }
        let id: Option<Uuid> = sqlx::query_scalar(
            "INSERT INTO download_sessions \
               (id, owner_id, library_item_id, content_version, expiration_time, \
                created_with_read_storage, client_token) \
             VALUES ($1, $2, $3, $4, now() + $5 * interval '1 second', $6, $7) \
             ON CONFLICT (owner_id, client_token) DO NOTHING RETURNING id",
        )
        .bind(Uuid::new_v4())
        .bind(owner)
        .bind(item)
        .bind(version)
        .bind(secs(lease))
        .bind(read_storage)
        .bind(client_token)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = id else {
            // Same client token from the same user: the earlier answer stands.
            tx.rollback().await?;
            let existing: Uuid = sqlx::query_scalar(
                "SELECT id FROM download_sessions WHERE owner_id = $1 AND client_token = $2",
            )
            .bind(owner)
            .bind(client_token)
            .fetch_one(&self.pool)
            .await?;
            return Ok(Created::Session(existing));
        };
        sqlx::query(
            "INSERT INTO download_files (session_id, name, expected_size, expected_sha256, content_key) \
             SELECT $1, name, size, sha256, content_key FROM item_files \
             WHERE item_id = $2 AND content_version = $3",
        )
        .bind(id)
        .bind(item)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Created::Session(id))
    }

    /// The caller's live session, its lease renewed (every successful use is activity).
    pub async fn touch_session(
        &self,
        owner: Uuid,
        id: Uuid,
        lease: Duration,
    ) -> Result<Option<SessionRow>> {
        Ok(sqlx::query_as(&format!(
            "UPDATE download_sessions \
             SET expiration_time = GREATEST(expiration_time, now() + $3 * interval '1 second') \
             WHERE id = $1 AND owner_id = $2 AND expiration_time > now() \
             RETURNING {SESSION_COLUMNS}"
        ))
        .bind(id)
        .bind(owner)
        .bind(secs(lease))
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Locks the caller's live session for a state change.
    pub async fn lock_session(&self, owner: Uuid, id: Uuid) -> Result<Option<LockedSession>> {
        let mut tx = self.pool.begin().await?;
        let row: Option<SessionRow> = sqlx::query_as(&format!(
            "SELECT {SESSION_COLUMNS} FROM download_sessions \
             WHERE id = $1 AND owner_id = $2 AND expiration_time > now() FOR UPDATE"
        ))
        .bind(id)
        .bind(owner)
        .fetch_optional(&mut *tx)
        .await?;
        Ok(row.map(|row| LockedSession { tx, row }))
    }

    /// Ids of the caller's live sessions, optionally for one item.
    pub async fn list_sessions(&self, owner: Uuid, item: Option<Uuid>) -> Result<Vec<Uuid>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM download_sessions \
             WHERE owner_id = $1 AND expiration_time > now() \
               AND ($2::uuid IS NULL OR library_item_id = $2) \
             ORDER BY created_at, id",
        )
        .bind(owner)
        .bind(item)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Deletes the caller's live session and its files. False when there was none.
    pub async fn delete_session(&self, owner: Uuid, id: Uuid) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM download_sessions \
             WHERE id = $1 AND owner_id = $2 AND expiration_time > now()",
        )
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes up to `batch` sessions past their expiration time (and their
    /// files, by cascade). Safe on every instance at once.
    pub async fn expire_sessions(&self, batch: i64) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM download_sessions WHERE id IN ( \
                SELECT id FROM download_sessions WHERE expiration_time <= now() \
                ORDER BY expiration_time LIMIT $1 FOR UPDATE SKIP LOCKED)",
        )
        .bind(batch)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

impl LockedSession {
    /// keep_alive: renews the lease, optionally records progress.
    pub async fn renew(mut self, progress: Option<i32>, lease: Duration) -> Result<()> {
        sqlx::query(
            "UPDATE download_sessions \
             SET expiration_time = GREATEST(expiration_time, now() + $2 * interval '1 second'), \
                 client_progress = COALESCE($3, client_progress) \
             WHERE id = $1",
        )
        .bind(self.row.id)
        .bind(secs(lease))
        .bind(progress)
        .execute(&mut *self.tx)
        .await?;
        self.tx.commit().await?;
        Ok(())
    }

    /// cancel / fail: moves the session out of ACTIVE and stops its files'
    /// pending and running preparations (workers see it through their fenced writes).
    pub async fn finish(
        mut self,
        state: &str,
        error: Option<&LocalizableMessage>,
        file_error: &LocalizableMessage,
        lease: Duration,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE download_sessions SET state = $2, error_message = $3, \
                 expiration_time = GREATEST(expiration_time, now() + $4 * interval '1 second') \
             WHERE id = $1",
        )
        .bind(self.row.id)
        .bind(state)
        .bind(error.map(Json))
        .bind(secs(lease))
        .execute(&mut *self.tx)
        .await?;
        sqlx::query(
            "UPDATE download_files SET status = 'ERROR', error_message = $2, \
                 lease_owner = NULL, lease_until = NULL, updated_at = now() \
             WHERE session_id = $1 AND status IN ('PREPARE_REQUESTED', 'PREPARING')",
        )
        .bind(self.row.id)
        .bind(Json(file_error))
        .execute(&mut *self.tx)
        .await?;
        self.tx.commit().await?;
        Ok(())
    }
}
