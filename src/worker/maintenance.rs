//! The maintenance pass, safe on every instance at once: rescue of lapsed claims,
//! expiry of sessions and logins, collection of unused artifacts, unreferenced
//! content and stale staging objects.

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use anyhow::Context;
use futures_util::StreamExt;
use object_store::path::Path;
use tokio::sync::Semaphore;

use crate::{
    config::Settings,
    metrics::metrics,
    storage::{Bucket, Buckets, STAGING_PREFIX},
    store::Db,
};

/// Rows handled per statement: bounded so no pass holds many locks for long.
const BATCH: i64 = 500;
/// Batches per step and pass; what is left waits for the next pass.
const MAX_BATCHES: usize = 20;
/// A staging object this old belongs to no running copy (heartbeats stop far sooner).
const STAGING_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// Listing the staging prefix is the one costly step: at most this often per instance.
const STAGING_SWEEP_EVERY: Duration = Duration::from_secs(3600);
/// A collector that marked content and then died is relieved after this long.
const STALE_DELETION: Duration = Duration::from_secs(300);

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MaintenanceReport {
    /// Lapsed claims queued again.
    pub requeued: u64,
    /// Lapsed claims that used up their attempts (now ERROR).
    pub abandoned: u64,
    pub expired_sessions: u64,
    /// Update sessions expired (what they received is collected with the content).
    pub expired_update_sessions: u64,
    pub expired_logins: u64,
    /// Artifacts deleted (row and object).
    pub artifacts_deleted: u64,
    /// Leftover staging objects and temporary files (of writes that never
    /// committed, a day old) deleted.
    pub staging_deleted: u64,
    /// Content objects deleted (row and object): no item file referenced them.
    pub content_deleted: u64,
}

impl MaintenanceReport {
    fn is_empty(&self) -> bool {
        *self == MaintenanceReport::default()
    }
}

/// Maintenance of one instance; remembers when it last swept the staging prefix.
pub struct Maintenance {
    db: Db,
    transfer: Bucket,
    content: Bucket,
    max_attempts: i32,
    grace: Duration,
    content_grace: Duration,
    last_sweep: Option<Instant>,
    stall: Option<Arc<Semaphore>>,
}

impl Maintenance {
    pub fn new(db: &Db, buckets: &Buckets, settings: &Settings) -> Maintenance {
        Maintenance {
            db: db.clone(),
            transfer: buckets.transfer.clone(),
            content: buckets.content.clone(),
            max_attempts: settings.workers.max_attempts,
            grace: Duration::from_secs(settings.maintenance.artifact_grace_seconds),
            content_grace: Duration::from_secs(settings.maintenance.content_grace_seconds),
            last_sweep: None,
            stall: None,
        }
    }

    /// Tests: after marking a batch of artifacts, the collector takes a permit
    /// of `gate` before it deletes anything, playing a collector that stalls.
    pub fn with_collector_stall(mut self, gate: Arc<Semaphore>) -> Maintenance {
        self.stall = Some(gate);
        self
    }

    /// One full pass. A database error ends it early (the next pass resumes);
    /// object-store errors are logged per object and the pass goes on.
    pub async fn pass(&mut self) -> anyhow::Result<MaintenanceReport> {
        let mut report = MaintenanceReport::default();
        let this = &*self;
        let rescued = in_batches(
            move || this.db.rescue_lapsed_claims(this.max_attempts, BATCH),
            |r| r.requeued + r.failed,
        )
        .await
        .context("rescue of lapsed claims")?;
        for r in rescued {
            report.requeued += r.requeued;
            report.abandoned += r.failed;
            metrics().worker_rescues.inc_by(r.requeued + r.failed);
        }
        let (requeued, failed) = self
            .db
            .rescue_pulls(self.max_attempts)
            .await
            .context("rescue of lapsed PULL claims")?;
        report.requeued += requeued;
        report.abandoned += failed;
        let expired = in_batches(move || this.db.expire_sessions(BATCH), |n| *n)
            .await
            .context("expiry of sessions")?;
        report.expired_sessions = expired.iter().sum();
        let expired = in_batches(move || this.db.expire_update_sessions(BATCH), |n| *n)
            .await
            .context("expiry of update sessions")?;
        report.expired_update_sessions = expired.iter().sum();
        report.expired_logins = self
            .db
            .purge_expired_logins()
            .await
            .context("expiry of logins")?;
        report.artifacts_deleted = self.collect_artifacts().await?;
        report.content_deleted = self.collect_content().await?;
        if self
            .last_sweep
            .is_none_or(|t| t.elapsed() >= STAGING_SWEEP_EVERY)
        {
            self.last_sweep = Some(Instant::now());
            report.staging_deleted = self.sweep_staging().await
                + self.transfer.sweep_temp_files().await
                + self.content.sweep_temp_files().await;
        }
        if report.is_empty() {
            tracing::debug!("maintenance pass: nothing to do");
        } else {
            tracing::info!(
                requeued = report.requeued,
                abandoned = report.abandoned,
                expired_sessions = report.expired_sessions,
                expired_logins = report.expired_logins,
                artifacts_deleted = report.artifacts_deleted,
                staging_deleted = report.staging_deleted,
                content_deleted = report.content_deleted,
                "maintenance pass"
            );
        }
        Ok(report)
    }

    /// Mark (rows stop being reusable), delete objects, then drop the rows of the
    /// objects really gone. A worker staging the same bytes meanwhile writes
    /// under a key of its own and takes the row over: however long this
    /// collector stalls (and another finishes its work), it deletes only the
    /// object of the key it marked, and its row delete is fenced on that key.
    async fn collect_artifacts(&self) -> anyhow::Result<u64> {
        let batches = in_batches(move || self.collect_batch(), |(marked, _)| *marked).await?;
        Ok(batches.iter().map(|(_, deleted)| deleted).sum())
    }

    /// One batch of [`Maintenance::collect_artifacts`]: (rows marked, rows deleted).
    async fn collect_batch(&self) -> anyhow::Result<(u64, u64)> {
        let marked = self
            .db
            .mark_artifacts_for_deletion(self.grace, BATCH)
            .await
            .context("marking artifacts")?;
        if let (Some(gate), false) = (&self.stall, marked.is_empty()) {
            gate.acquire().await?.forget();
        }
        let mut gone = Vec::with_capacity(marked.len());
        for artifact in &marked {
            match self.transfer.delete(&artifact.transfer_key).await {
                Ok(()) => gone.push(artifact.clone()),
                // The row stays marked; a later pass retries it.
                Err(e) => tracing::warn!(error = %e, sha256 = %artifact.sha256,
                    "cannot delete an artifact object"),
            }
        }
        let deleted = self
            .db
            .delete_marked_artifacts(&gone)
            .await
            .context("deleting artifact rows")?;
        Ok((marked.len() as u64, deleted))
    }

    /// Deletes content objects that no item file references (a deleted item's,
    /// unless another item has the same bytes), as artifacts are collected:
    /// mark, delete the objects, drop the rows of those really gone.
    async fn collect_content(&self) -> anyhow::Result<u64> {
        let batches = in_batches(move || self.collect_content_batch(), |(m, _)| *m).await?;
        Ok(batches.iter().map(|(_, deleted)| deleted).sum())
    }

    /// One batch of [`Maintenance::collect_content`]: (rows marked, rows deleted).
    async fn collect_content_batch(&self) -> anyhow::Result<(u64, u64)> {
        let marked = self
            .db
            .mark_content_for_deletion(self.content_grace, STALE_DELETION, BATCH)
            .await
            .context("marking content")?;
        let mut gone = Vec::with_capacity(marked.len());
        for key in marked.iter() {
            match self.content.delete(key).await {
                Ok(()) => gone.push(key.clone()),
                // The row stays marked; a later pass retries it.
                Err(e) => tracing::warn!(error = %e, key, "cannot delete a content object"),
            }
        }
        let deleted = self
            .db
            .delete_marked_content(&gone)
            .await
            .context("deleting content rows")?;
        Ok((marked.len() as u64, deleted))
    }

    /// Deletes staging objects a crashed copy left behind. Returns how many.
    async fn sweep_staging(&self) -> u64 {
        let cutoff = SystemTime::now() - STAGING_MAX_AGE;
        let prefix = Path::from(STAGING_PREFIX);
        let mut listing = self.transfer.inner.list(Some(&prefix));
        let mut old = Vec::new();
        while let Some(item) = listing.next().await {
            match item {
                Ok(meta) if SystemTime::from(meta.last_modified) < cutoff => {
                    old.push(meta.location.to_string())
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cannot list staging objects");
                    break;
                }
            }
        }
        for key in &old {
            self.transfer.remove(key).await;
        }
        old.len() as u64
    }
}

/// Repeats `step` while its batches come back full (`size` of a result is the
/// rows it handled), at most [`MAX_BATCHES`] times: what is left waits for the
/// next pass. Returns every batch's result.
async fn in_batches<T, E, Fut>(
    mut step: impl FnMut() -> Fut,
    size: impl Fn(&T) -> u64,
) -> Result<Vec<T>, E>
where
    Fut: Future<Output = Result<T, E>>,
{
    let mut done = Vec::new();
    for _ in 0..MAX_BATCHES {
        let batch = step().await?;
        let full = size(&batch) >= BATCH as u64;
        done.push(batch);
        if !full {
            break;
        }
    }
    Ok(done)
}

/// One pass with fresh state (tests drive maintenance with this).
pub async fn maintenance_pass(
    db: &Db,
    buckets: &Buckets,
    settings: &Settings,
) -> anyhow::Result<MaintenanceReport> {
    Maintenance::new(db, buckets, settings).pass().await
}
