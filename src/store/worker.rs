//! SQL of the prepare pipeline: claiming a requested file, fenced heartbeats and
//! outcomes, content-addressed artifacts, and the maintenance statements (rescue, GC).
//!
//! Every write of a worker is fenced on (session, file, claim owner, PREPARING):
//! zero rows means the claim is gone (canceled, deleted, rescued) and the worker
//! must stop without touching anything else.
//!
//! A worker's claim on a file is held in the columns `lease_owner` and
//! `lease_until` (named before claims had a name of their own; renaming them
//! would break the previous version's instances during a rolling upgrade).
//! In code it is always a claim: session leases are the only leases.

use std::time::Duration;

use sqlx::{
    postgres::{PgListener, PgPoolOptions},
    types::Json,
};
use uuid::Uuid;

use super::{
    files::{notify_prepare, PREPARE_CHANNEL},
    secs, Db, Result,
};
use crate::{
    domain::{PrepareStatus, SessionId},
    error::LocalizableMessage,
};

/// A file a worker has claimed, with what the catalog promises for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    pub session_id: SessionId,
    pub name: String,
    pub expected_size: i64,
    pub expected_sha256: String,
    pub content_key: String,
    /// Claims of this file so far, this one included.
    pub attempts: i32,
    /// The worker holding the claim (column `lease_owner`).
    pub owner: Uuid,
}

/// An artifact row: staged bytes in the transfer store, keyed by their SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArtifactRow {
    pub sha256: String,
    pub size: i64,
    pub transfer_key: String,
}

/// What the final write of a claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// The file is PREPARED and references the artifact.
    Prepared,
    /// The claim was gone: nothing was written to the file.
    Lost,
    /// The artifact row vanished or is being collected: nothing was written.
    ArtifactGone,
}

/// Result of one rescue batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rescued {
    /// Lapsed claims put back in the queue.
    pub requeued: u64,
    /// Lapsed claims that had used up their attempts, now ERROR.
    pub failed: u64,
}

/// Message of a file whose claims all lapsed; `%s` are the file name and the count.
const ABANDONED_ID: &str = "com.vmware.content.library.item.downloadsession.file.prepare_abandoned";
const ABANDONED_TEXT: &str =
    "Preparation of file %s was abandoned %s times (the instance preparing it stopped); giving up.";

/// A collector that marked an artifact and then died is relieved after this long.
const STALE_DELETION: Duration = Duration::from_secs(300);

impl Db {
    /// Claims the oldest requested file of a live session for `owner`, valid
    /// for `valid_for`, in one statement committed before any I/O. None when
    /// nothing is waiting.
    pub async fn claim_next_file(&self, owner: Uuid, valid_for: Duration) -> Result<Option<Claim>> {
        Ok(sqlx::query_as!(
            Claim,
            r#"UPDATE download_files AS d
               SET status = 'PREPARING', lease_owner = $1,
                   lease_until = now() + $2 * interval '1 second',
                   attempts = d.attempts + 1, bytes_transferred = 0, error_message = NULL,
                   updated_at = now()
               WHERE (d.session_id, d.name) = (
                   SELECT f.session_id, f.name FROM download_files f
                   JOIN download_sessions s ON s.id = f.session_id
                   WHERE f.status = 'PREPARE_REQUESTED' AND f.requested_at <= now()
                     AND s.state = 'ACTIVE' AND s.expiration_time > now()
                   ORDER BY f.requested_at
                   LIMIT 1
                   FOR UPDATE OF f SKIP LOCKED)
                 AND d.status = 'PREPARE_REQUESTED'
               RETURNING session_id AS "session_id: SessionId", name, expected_size,
                   expected_sha256, content_key, attempts, lease_owner AS "owner!""#,
            owner,
            secs(valid_for)
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Heartbeat: renews the claim for `valid_for` and publishes progress. False
    /// when the claim is gone or its session is no longer live: the copy must stop.
    pub async fn renew_claim(
        &self,
        claim: &Claim,
        valid_for: Duration,
        bytes: u64,
    ) -> Result<bool> {
        let done = sqlx::query!(
            "UPDATE download_files AS d \
             SET lease_until = now() + $4 * interval '1 second', bytes_transferred = $5, \
                 updated_at = now() \
             WHERE d.session_id = $1 AND d.name = $2 AND d.lease_owner = $3 \
               AND d.status = 'PREPARING' \
               AND EXISTS (SELECT 1 FROM download_sessions s WHERE s.id = d.session_id \
                           AND s.state = 'ACTIVE' AND s.expiration_time > now())",
            claim.session_id.0,
            claim.name,
            claim.owner,
            secs(valid_for),
            i64::try_from(bytes).unwrap_or(i64::MAX)
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Puts a claim back in the queue for another attempt, not before `delay`.
    pub async fn retry_claim(&self, claim: &Claim, delay: Duration) -> Result<bool> {
        let done = sqlx::query!(
            "UPDATE download_files \
             SET status = 'PREPARE_REQUESTED', lease_owner = NULL, lease_until = NULL, \
                 bytes_transferred = 0, requested_at = now() + $4 * interval '1 second', \
                 updated_at = now() \
             WHERE session_id = $1 AND name = $2 AND lease_owner = $3 AND status = 'PREPARING'",
            claim.session_id.0,
            claim.name,
            claim.owner,
            secs(delay)
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Ends a claim in ERROR with `message` for the client.
    pub async fn fail_claim(&self, claim: &Claim, message: &LocalizableMessage) -> Result<bool> {
        let done = sqlx::query!(
            "UPDATE download_files \
             SET status = 'ERROR', error_message = $4, lease_owner = NULL, lease_until = NULL, \
                 updated_at = now() \
             WHERE session_id = $1 AND name = $2 AND lease_owner = $3 AND status = 'PREPARING'",
            claim.session_id.0,
            claim.name,
            claim.owner,
            Json(message) as _
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Gives a claim back at shutdown: queued again at once, and the attempt
    /// does not count (the file did nothing wrong). Wakes the other instances.
    pub async fn hand_back_claim(&self, claim: &Claim) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query!(
            "UPDATE download_files \
             SET status = 'PREPARE_REQUESTED', attempts = GREATEST(attempts - 1, 0), \
                 lease_owner = NULL, lease_until = NULL, bytes_transferred = 0, \
                 updated_at = now() \
             WHERE session_id = $1 AND name = $2 AND lease_owner = $3 AND status = 'PREPARING'",
            claim.session_id.0,
            claim.name,
            claim.owner
        )
        .execute(&mut *tx)
        .await?;
        let handed_back = done.rows_affected() > 0;
        if handed_back {
            notify_prepare(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(handed_back)
    }

    /// The usable artifact holding these bytes, marked as just used; None when
    /// there is none or a collector is deleting it. Blocks while a collector
    /// holds the row, so an artifact seen here is not deleted under the caller
    /// (whose PREPARING claim on the same bytes keeps collectors away from now on).
    pub async fn touch_artifact(&self, sha256: &str) -> Result<Option<ArtifactRow>> {
        Ok(sqlx::query_as!(
            ArtifactRow,
            "UPDATE artifacts SET last_used_at = now() \
             WHERE sha256 = $1 AND deleting_since IS NULL \
             RETURNING sha256, size, transfer_key",
            sha256
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Records an artifact whose object is already committed under its own,
    /// fresh key, and returns the row in effect. A live row of the same bytes
    /// stays as it is (the caller drops its redundant object); a row being
    /// collected is taken over: it names the new key and is no longer marked, so
    /// the collector only deletes the old key's object and, its row delete being
    /// fenced on that key, leaves the row.
    pub async fn publish_artifact(&self, artifact: &ArtifactRow) -> Result<ArtifactRow> {
        Ok(sqlx::query_as!(
            ArtifactRow,
            "INSERT INTO artifacts (sha256, size, transfer_key) VALUES ($1, $2, $3) \
             ON CONFLICT (sha256) DO UPDATE SET last_used_at = now(), \
                 size = CASE WHEN artifacts.deleting_since IS NULL \
                        THEN artifacts.size ELSE EXCLUDED.size END, \
                 transfer_key = CASE WHEN artifacts.deleting_since IS NULL \
                        THEN artifacts.transfer_key ELSE EXCLUDED.transfer_key END, \
                 deleting_since = NULL \
             RETURNING sha256, size, transfer_key",
            artifact.sha256,
            artifact.size,
            artifact.transfer_key
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Points the live row `current` at `replacement`'s object instead (the
    /// caller found `current`'s object missing). False when the row changed meanwhile.
    pub async fn replace_artifact_object(
        &self,
        current: &ArtifactRow,
        replacement: &ArtifactRow,
    ) -> Result<bool> {
        let done = sqlx::query!(
            "UPDATE artifacts SET transfer_key = $3, size = $4, last_used_at = now() \
             WHERE sha256 = $1 AND transfer_key = $2 AND deleting_since IS NULL",
            current.sha256,
            current.transfer_key,
            replacement.transfer_key,
            replacement.size
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The final write of a claim: touches the artifact (so a collector cannot
    /// take it) and marks the file PREPARED referencing it. One statement, not a
    /// transaction: the worker's heartbeat may wait on this row, and a
    /// transaction left open between its statements (the worker is busy awaiting
    /// that heartbeat) would never commit.
    pub async fn mark_prepared(&self, claim: &Claim, sha256: &str, size: i64) -> Result<Published> {
        let found = sqlx::query!(
            r#"WITH a AS (
                  UPDATE artifacts SET last_used_at = now()
                  WHERE sha256 = $5 AND deleting_since IS NULL RETURNING sha256),
               f AS (
                  UPDATE download_files
                  SET status = 'PREPARED', size = $4, checksum = $5, bytes_transferred = $4,
                      artifact_sha256 = $5, error_message = NULL, lease_owner = NULL,
                      lease_until = NULL, updated_at = now()
                  WHERE session_id = $1 AND name = $2 AND lease_owner = $3
                    AND status = 'PREPARING' AND EXISTS (SELECT 1 FROM a)
                  RETURNING 1)
               SELECT EXISTS (SELECT 1 FROM a) AS "touched!", EXISTS (SELECT 1 FROM f) AS "prepared!""#,
            claim.session_id.0,
            claim.name,
            claim.owner,
            size,
            sha256
        )
        .fetch_one(&self.pool)
        .await?;
        // A touched but unreferenced artifact (claim lost) is simply collected
        // after the grace period.
        Ok(match (found.touched, found.prepared) {
            (false, _) => Published::ArtifactGone,
            (true, true) => Published::Prepared,
            (true, false) => Published::Lost,
        })
    }

    /// Claims that lapsed (their instance died) go back to the queue, or to
    /// ERROR once `max_attempts` claims were made. Safe on every instance at once.
    pub async fn rescue_lapsed_claims(&self, max_attempts: i32, batch: i64) -> Result<Rescued> {
        let mut tx = self.pool.begin().await?;
        let statuses = sqlx::query_scalar!(
            r#"WITH lapsed AS (
                   SELECT session_id, name FROM download_files
                   WHERE status = 'PREPARING' AND lease_until < now()
                   ORDER BY lease_until LIMIT $2
                   FOR UPDATE SKIP LOCKED)
               UPDATE download_files AS d
               SET status = CASE WHEN d.attempts < $1 THEN 'PREPARE_REQUESTED' ELSE 'ERROR' END,
                   error_message = CASE WHEN d.attempts < $1 THEN NULL ELSE jsonb_build_object(
                       'id', $3::text,
                       'default_message', format($4::text, d.name, d.attempts),
                       'args', jsonb_build_array(d.name, d.attempts::text)) END,
                   lease_owner = NULL, lease_until = NULL, bytes_transferred = 0,
                   updated_at = now()
               FROM lapsed
               WHERE d.session_id = lapsed.session_id AND d.name = lapsed.name
               RETURNING d.status AS "status: PrepareStatus""#,
            max_attempts,
            batch,
            ABANDONED_ID,
            ABANDONED_TEXT
        )
        .fetch_all(&mut *tx)
        .await?;
        let requeued = statuses
            .iter()
            .filter(|s| **s == PrepareStatus::PrepareRequested)
            .count() as u64;
        if requeued > 0 {
            notify_prepare(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(Rescued {
            requeued,
            failed: statuses.len() as u64 - requeued,
        })
    }

    /// First step of collecting artifacts: marks up to `batch` artifacts that no
    /// file references, no worker is staging and nobody used for `grace` (plus
    /// any whose collector died half-way). Marked rows are no longer reused.
    pub async fn mark_artifacts_for_deletion(
        &self,
        grace: Duration,
        batch: i64,
    ) -> Result<Vec<ArtifactRow>> {
        Ok(sqlx::query_as!(
            ArtifactRow,
            "UPDATE artifacts SET deleting_since = now() \
             WHERE sha256 IN ( \
                 SELECT a.sha256 FROM artifacts a \
                 WHERE (a.deleting_since IS NULL \
                        AND a.last_used_at < now() - $1 * interval '1 second' \
                        AND NOT EXISTS (SELECT 1 FROM download_files f \
                                        WHERE f.artifact_sha256 = a.sha256) \
                        AND NOT EXISTS (SELECT 1 FROM download_files f \
                                        WHERE f.expected_sha256 = a.sha256 \
                                          AND f.status = 'PREPARING')) \
                    OR a.deleting_since < now() - $3 * interval '1 second' \
                 ORDER BY a.last_used_at \
                 LIMIT $2 \
                 FOR UPDATE SKIP LOCKED) \
             RETURNING sha256, size, transfer_key",
            secs(grace),
            batch,
            secs(STALE_DELETION)
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Last step of collecting artifacts: drops marked rows whose objects are gone.
    pub async fn delete_marked_artifacts(&self, sha256s: &[String]) -> Result<u64> {
        if sha256s.is_empty() {
            return Ok(0);
        }
        let done = sqlx::query!(
            "DELETE FROM artifacts WHERE sha256 = ANY($1) AND deleting_since IS NOT NULL",
            sha256s
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// A listener on the prepare channel over a connection of its own (not one
    /// of the request pool's); it reconnects by itself when the database returns.
    pub async fn prepare_listener(&self) -> Result<PgListener> {
        let options = (*self.pool.connect_options()).clone();
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(options);
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(PREPARE_CHANNEL).await?;
        Ok(listener)
    }
}
