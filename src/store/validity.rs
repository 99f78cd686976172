//! What the validity cache reads and writes: a live login with its user, a live
//! download session with its files and staged objects, the lazy lease renewals,
//! and the listener on the invalidation channel the triggers of migration 0010 feed.
//!
//! Every load answers the remaining lifetime in seconds by the database's clock
//! (`expires_in`), so instances measure it on their own monotonic clock and a
//! skewed wall clock cannot stretch a lease.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{
    postgres::{PgConnectOptions, PgListener, PgPoolOptions},
    types::Json,
    Postgres, Transaction,
};
use uuid::Uuid;

use super::{secs, sessions::SessionRow, Db, Result};
use crate::{
    domain::{models::FileState, EndpointType, ItemId, PrepareStatus, SessionId, SessionState},
    error::LocalizableMessage,
};

/// Channel of the invalidation NOTIFYs (migration 0010).
pub const VALIDITY_CHANNEL: &str = "dls_validity";

/// A live login and its user, as the cache keeps it.
#[derive(Clone, Debug)]
pub struct LoginLoad {
    pub user_id: Uuid,
    pub name: String,
    pub privileges: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    /// Seconds until the token stops working (idle expiry or absolute lifetime).
    pub expires_in: f64,
    /// Seconds until the stored idle expiry falls behind by more than the
    /// renewal granularity; None once no renewal can extend it (absolute lifetime).
    pub renew_in: Option<f64>,
}

/// The staged object a PREPARED file serves.
#[derive(Clone, Debug)]
pub struct StagedObject {
    pub sha256: String,
    pub size: i64,
    pub transfer_key: String,
    /// When the artifact was staged; its bytes never change after that.
    pub staged_at: DateTime<Utc>,
}

/// One file of a cached session: what clients read, and what the data plane serves.
#[derive(Clone, Debug)]
pub struct CachedFile {
    pub state: FileState,
    pub staged: Option<StagedObject>,
}

/// A live download session with its files.
#[derive(Clone, Debug)]
pub struct SessionLoad {
    pub row: SessionRow,
    /// Seconds until the session expires.
    pub expires_in: f64,
    pub files: Vec<CachedFile>,
}

/// A renewal that was written.
#[derive(Clone, Copy, Debug)]
pub struct Renewed {
    pub expires_at: DateTime<Utc>,
    pub expires_in: f64,
    /// Login renewals: seconds until the next renewal is due (None: never).
    pub renew_in: Option<f64>,
}

struct SessionFileRow {
    id: SessionId,
    owner_id: Uuid,
    library_item_id: ItemId,
    content_version: i64,
    state: SessionState,
    client_progress: i32,
    error_message: Option<Json<LocalizableMessage>>,
    expiration_time: DateTime<Utc>,
    created_with_read_storage: bool,
    expires_in: f64,
    file_name: Option<String>,
    file_size: Option<i64>,
    bytes_transferred: Option<i64>,
    file_status: Option<PrepareStatus>,
    endpoint_type: Option<EndpointType>,
    checksum: Option<String>,
    file_error: Option<Json<LocalizableMessage>>,
    sha256: Option<String>,
    artifact_size: Option<i64>,
    transfer_key: Option<String>,
    staged_at: Option<DateTime<Utc>>,
}

impl Db {
    /// The live login behind a token hash (not expired, within its absolute lifetime).
    pub async fn load_login(
        &self,
        token_hash: &[u8],
        idle: Duration,
        max_lifetime: Duration,
        granularity: Duration,
    ) -> Result<Option<LoginLoad>> {
        Ok(sqlx::query_as!(
            LoginLoad,
            r#"SELECT u.id AS user_id, u.name, u.privileges, l.created_at, l.last_used_at,
                   EXTRACT(EPOCH FROM LEAST(l.expires_at,
                       l.created_at + $2 * interval '1 second') - now())::float8 AS "expires_in!",
                   CASE WHEN l.expires_at >= l.created_at + ($2 - $4) * interval '1 second'
                        THEN NULL
                        ELSE EXTRACT(EPOCH FROM l.expires_at
                            - ($3 - $4) * interval '1 second' - now())::float8
                   END AS renew_in
               FROM login_sessions l JOIN users u ON u.id = l.user_id
               WHERE l.token_hash = $1 AND l.expires_at > now()
                 AND l.created_at > now() - $2 * interval '1 second'"#,
            token_hash,
            secs(max_lifetime),
            secs(idle),
            secs(granularity),
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Writes a login's idle renewal if it is due: the stored expiry has fallen
    /// behind `now + idle` (capped by the absolute lifetime) by more than half
    /// the granularity, so instances that renew at once write it once. Without
    /// waiting for the WAL flush: a renewal lost in a crash shortens an idle
    /// expiry by at most the granularity. None when nothing was written.
    pub async fn renew_login(
        &self,
        token_hash: &[u8],
        idle: Duration,
        max_lifetime: Duration,
        granularity: Duration,
    ) -> Result<Option<Renewed>> {
        let mut tx = self.renewal_transaction().await?;
        let renewed = sqlx::query_as!(
            Renewed,
            r#"UPDATE login_sessions SET last_used_at = now(),
                   expires_at = LEAST(now() + $2 * interval '1 second',
                                      created_at + $3 * interval '1 second')
               WHERE token_hash = $1 AND expires_at > now()
                 AND created_at > now() - $3 * interval '1 second'
                 AND expires_at < LEAST(now() + $2 * interval '1 second',
                                        created_at + $3 * interval '1 second')
                                  - $4 * interval '1 second' / 2
               RETURNING expires_at,
                   EXTRACT(EPOCH FROM expires_at - now())::float8 AS "expires_in!",
                   CASE WHEN expires_at >= created_at + ($3 - $4) * interval '1 second'
                        THEN NULL ELSE ($4)::float8 END AS renew_in"#,
            token_hash,
            secs(idle),
            secs(max_lifetime),
            secs(granularity),
        )
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(renewed)
    }

    /// A live session (any state, not expired) with its files and their staged objects.
    pub async fn load_session(&self, id: SessionId) -> Result<Option<SessionLoad>> {
        let rows = sqlx::query_as!(
            SessionFileRow,
            r#"SELECT s.id AS "id: SessionId", s.owner_id,
                   s.library_item_id AS "library_item_id: ItemId", s.content_version,
                   s.state AS "state: SessionState", s.client_progress,
                   s.error_message AS "error_message: Json<LocalizableMessage>",
                   s.expiration_time, s.created_with_read_storage,
                   EXTRACT(EPOCH FROM s.expiration_time - now())::float8 AS "expires_in!",
                   f.name AS "file_name?", f.size AS "file_size?",
                   f.bytes_transferred AS "bytes_transferred?",
                   f.status AS "file_status?: PrepareStatus",
                   f.endpoint_type AS "endpoint_type?: EndpointType",
                   f.checksum AS "checksum?",
                   f.error_message AS "file_error?: Json<LocalizableMessage>",
                   a.sha256 AS "sha256?", a.size AS "artifact_size?",
                   a.transfer_key AS "transfer_key?", a.created_at AS "staged_at?"
               FROM download_sessions s
               LEFT JOIN download_files f ON f.session_id = s.id
               LEFT JOIN artifacts a ON a.sha256 = f.artifact_sha256
               WHERE s.id = $1 AND s.expiration_time > now()
               ORDER BY f.name"#,
            id.0
        )
        .fetch_all(&self.pool)
        .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let row = SessionRow {
            id: first.id,
            owner_id: first.owner_id,
            library_item_id: first.library_item_id,
            content_version: first.content_version,
            state: first.state,
            client_progress: first.client_progress,
            error_message: first.error_message.clone(),
            expiration_time: first.expiration_time,
            created_with_read_storage: first.created_with_read_storage,
        };
        let expires_in = first.expires_in;
        let files = rows
            .into_iter()
            .filter_map(|r| {
                let (name, status) = (r.file_name?, r.file_status?);
                let staged = match (r.sha256, r.artifact_size, r.transfer_key, r.staged_at) {
                    (Some(sha256), Some(size), Some(transfer_key), Some(staged_at)) => {
                        Some(StagedObject {
                            sha256,
                            size,
                            transfer_key,
                            staged_at,
                        })
                    }
                    _ => None,
                };
                Some(CachedFile {
                    state: FileState {
                        name,
                        size: r.file_size,
                        bytes_transferred: r.bytes_transferred.unwrap_or(0),
                        status,
                        endpoint_type: r.endpoint_type,
                        checksum: r.checksum,
                        error_message: r.file_error.map(|j| j.0),
                        artifact_key: staged.as_ref().map(|s| s.transfer_key.clone()),
                    },
                    staged,
                })
            })
            .collect();
        Ok(Some(SessionLoad {
            row,
            expires_in,
            files,
        }))
    }

    /// Writes a session's lease renewal if it is due: the stored expiry has
    /// fallen behind `now + lease` by more than half the granularity. Without
    /// waiting for the WAL flush (a renewal lost in a crash shortens a lease by
    /// at most the granularity). None when nothing was written (not due after
    /// all, or the session is gone).
    pub async fn renew_session(
        &self,
        id: SessionId,
        lease: Duration,
        granularity: Duration,
    ) -> Result<Option<Renewed>> {
        let mut tx = self.renewal_transaction().await?;
        let renewed = sqlx::query_as!(
            Renewed,
            r#"UPDATE download_sessions
               SET expiration_time = session_lease(expiration_time, $2)
               WHERE id = $1 AND expiration_time > now()
                 AND expiration_time < now() + ($2::float8 - $3::float8 / 2) * interval '1 second'
               RETURNING expiration_time AS expires_at,
                   EXTRACT(EPOCH FROM expiration_time - now())::float8 AS "expires_in!",
                   NULL::float8 AS renew_in"#,
            id.0,
            secs(lease),
            secs(granularity),
        )
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(renewed)
    }

    /// A transaction that is only a renewal: it commits without waiting for
    /// the WAL flush.
    async fn renewal_transaction(&self) -> Result<Transaction<'static, Postgres>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query!("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// A listener on the invalidation channel over a connection of its own,
    /// named `application_name` in `pg_stat_activity`. It does not reconnect
    /// by itself: the cache must know when notifications may have been lost.
    pub async fn validity_listener(&self, application_name: &str) -> Result<PgListener> {
        let options: PgConnectOptions = (*self.pool.connect_options()).clone();
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(options.application_name(application_name));
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.eager_reconnect(false);
        listener.listen(VALIDITY_CHANNEL).await?;
        Ok(listener)
    }
}
