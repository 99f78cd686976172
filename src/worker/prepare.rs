//! One prepare worker: claims a requested file, reuses or stages its bytes under a
//! heartbeat-renewed claim, and records the outcome with fenced writes.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use object_store::path::Path;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::stage::{self, Control, Digest, Sink, Source, StageError, StageTuning};
use crate::{
    config::WorkerSettings,
    domain::SessionId,
    error::LocalizableMessage,
    metrics::metrics,
    storage::{artifact_key, Buckets},
    store::{
        worker::{ArtifactRow, Claim, Published},
        Db,
    },
};

/// What `Worker::prepare_one` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// No file was waiting.
    Empty,
    /// The file is PREPARED; `reused`: an artifact with its bytes existed, nothing was copied.
    Prepared {
        session: SessionId,
        file: String,
        size: i64,
        reused: bool,
    },
    /// The file is in ERROR with `message`.
    Failed {
        session: SessionId,
        file: String,
        message: LocalizableMessage,
    },
    /// A transient failure: the file is queued again for another attempt.
    Retrying {
        session: SessionId,
        file: String,
        attempts: i32,
    },
    /// The claim went away while working (session canceled, failed, deleted or
    /// expired; claim rescued): nothing was written.
    Lost { session: SessionId, file: String },
    /// The worker was told to stop: the claim was handed back, not counted as an attempt.
    HandedBack { session: SessionId, file: String },
}

impl Outcome {
    /// Short name of the outcome (metrics label).
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Empty => "empty",
            Outcome::Prepared { reused: false, .. } => "prepared",
            Outcome::Prepared { reused: true, .. } => "reused",
            Outcome::Failed { .. } => "failed",
            Outcome::Retrying { .. } => "retrying",
            Outcome::Lost { .. } => "lost",
            Outcome::HandedBack { .. } => "handed_back",
        }
    }
}

/// A prepare worker; each has its own id, the owner of its claims. Cheap to build.
#[derive(Clone)]
pub struct Worker {
    id: Uuid,
    db: Db,
    buckets: Buckets,
    settings: WorkerSettings,
    stop: CancellationToken,
    tuning: StageTuning,
    retry_delay: Duration,
}

/// How a claim ended, before it is written down.
enum Done {
    Prepared {
        reused: bool,
    },
    /// The final fenced write found the claim gone.
    Lost,
    /// Control::cancel fired: the supervisor knows why.
    Canceled,
    /// Retrying cannot help.
    Permanent(LocalizableMessage),
    /// Another attempt may succeed; `class` names the cause for the client,
    /// `detail` (paths, store errors) is only logged.
    Transient {
        class: Cause,
        detail: anyhow::Error,
    },
}

#[derive(Debug, Clone, Copy)]
enum Cause {
    Read,
    Write,
    Internal,
}

impl Worker {
    pub fn new(db: &Db, buckets: &Buckets, settings: &WorkerSettings) -> Worker {
        Worker {
            id: Uuid::new_v4(),
            db: db.clone(),
            buckets: buckets.clone(),
            settings: settings.clone(),
            stop: CancellationToken::new(),
            tuning: StageTuning::throttled(settings.throttle_bytes_per_second),
            retry_delay: Duration::from_secs(2),
        }
    }

    /// When `stop` fires, a running copy is abandoned and its claim handed back.
    pub fn with_stop(mut self, stop: CancellationToken) -> Worker {
        self.stop = stop;
        self
    }

    /// Buffer sizes and an optional per-chunk delay (tests, benchmarks).
    pub fn with_tuning(mut self, tuning: StageTuning) -> Worker {
        self.tuning = tuning;
        self
    }

    /// Base delay before a failed attempt is retried (doubled per attempt, at most a minute).
    pub fn with_retry_delay(mut self, delay: Duration) -> Worker {
        self.retry_delay = delay;
        self
    }

    /// The claim owner this worker writes into the files it claims.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// Claims the oldest requested file and prepares it; `Outcome::Empty` when
    /// nothing is waiting. Errors are database failures: the claim, if any, is
    /// then left to lapse and be rescued.
    pub async fn prepare_one(&self) -> anyhow::Result<Outcome> {
        match self.claim().await? {
            Some(claim) => self.process(claim).await,
            None => Ok(Outcome::Empty),
        }
    }

    /// Only the claim step: the file becomes PREPARING under this worker's claim
    /// and nothing else happens. Tests use it to play an instance that dies.
    pub async fn claim(&self) -> anyhow::Result<Option<Claim>> {
        let claim = self
            .db
            .claim_next_file(self.id, self.claim_duration())
            .await
            .context("cannot claim a file")?;
        if claim.is_some() {
            metrics().worker_claims.inc();
        }
        Ok(claim)
    }

    /// Prepares a claimed file, renewing its claim until the outcome is written.
    pub async fn process(&self, claim: Claim) -> anyhow::Result<Outcome> {
        let started = Instant::now();
        let ctl = Arc::new(Control::default());
        // Dropping this future (a test's timeout, a runtime shutdown) must not
        // leave copy threads running.
        let _stop_copy = ctl.cancel.clone().drop_guard();
        let claim_for = self.claim_duration();
        let every = Duration::from_secs(self.settings.heartbeat_seconds.max(1));
        let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut renewed = Instant::now();

        #[derive(PartialEq)]
        enum Why {
            Lost,
            Stopping,
        }
        let mut interrupted: Option<Why> = None;
        let work = self.run(&claim, &ctl);
        tokio::pin!(work);
        let done = loop {
            tokio::select! {
                done = &mut work => break done,
                _ = heartbeat.tick(), if interrupted.is_none() => {
                    // The database starts the renewed claim before we hear back:
                    // count it from the request, so we never outlive it.
                    let sent = Instant::now();
                    match self.db.renew_claim(&claim, claim_for, ctl.written()).await {
                        Ok(true) => renewed = sent,
                        Ok(false) => {
                            interrupted = Some(Why::Lost);
                            ctl.cancel.cancel();
                        }
                        Err(e) => {
                            tracing::warn!(error = ?e, session = %claim.session_id,
                                file = %claim.name, "heartbeat failed");
                            // Past its validity the claim may be rescued by another
                            // instance: stop before two copies publish.
                            if renewed.elapsed() >= claim_for {
                                interrupted = Some(Why::Lost);
                                ctl.cancel.cancel();
                            }
                        }
                    }
                }
                _ = self.stop.cancelled(), if interrupted.is_none() => {
                    interrupted = Some(Why::Stopping);
                    ctl.cancel.cancel();
                }
            }
        };
        let done = done?;
        if matches!(done, Done::Permanent(_) | Done::Transient { .. }) {
            metrics().worker_errors.inc();
        }
        let session = claim.session_id;
        let file = claim.name.clone();
        let outcome = match done {
            Done::Prepared { reused } => {
                let secs = started.elapsed().as_secs_f64();
                if !reused {
                    let m = metrics();
                    m.staged_bytes
                        .inc_by(u64::try_from(claim.expected_size).unwrap_or(0));
                    m.staging_seconds.observe(secs);
                }
                tracing::info!(
                    session = %session,
                    file = %file,
                    size = claim.expected_size,
                    duration_ms = (secs * 1000.0) as u64,
                    throughput_mb_s = throughput(claim.expected_size, secs, reused),
                    reused,
                    attempt = claim.attempts,
                    "file prepared"
                );
                Outcome::Prepared {
                    session,
                    file,
                    size: claim.expected_size,
                    reused,
                }
            }
            Done::Lost => Outcome::Lost { session, file },
            Done::Canceled if interrupted == Some(Why::Stopping) => {
                if self
                    .db
                    .hand_back_claim(&claim)
                    .await
                    .context("cannot hand a claim back")?
                {
                    tracing::info!(session = %session, file = %file, "claim handed back at shutdown");
                    Outcome::HandedBack { session, file }
                } else {
                    Outcome::Lost { session, file }
                }
            }
            Done::Canceled => {
                tracing::info!(session = %session, file = %file,
                    "preparation stopped: the file is no longer this worker's");
                Outcome::Lost { session, file }
            }
            Done::Permanent(message) => {
                tracing::warn!(session = %session, file = %file,
                    error = %message.default_message, "preparation failed");
                self.fail(&claim, message).await?
            }
            Done::Transient { class, detail } => {
                tracing::warn!(session = %session, file = %file, attempt = claim.attempts,
                    error = ?detail, "preparation attempt failed");
                if claim.attempts < self.settings.max_attempts {
                    let delay = self.retry_delay_after(claim.attempts);
                    if self
                        .db
                        .retry_claim(&claim, delay)
                        .await
                        .context("cannot queue a file again")?
                    {
                        Outcome::Retrying {
                            session,
                            file,
                            attempts: claim.attempts,
                        }
                    } else {
                        Outcome::Lost { session, file }
                    }
                } else {
                    self.fail(&claim, gave_up(&claim, class)).await?
                }
            }
        };
        metrics()
            .staged_files
            .with_label_values(&[outcome.label()])
            .inc();
        Ok(outcome)
    }

    async fn fail(&self, claim: &Claim, message: LocalizableMessage) -> anyhow::Result<Outcome> {
        let session = claim.session_id;
        let file = claim.name.clone();
        Ok(
            if self
                .db
                .fail_claim(claim, &message)
                .await
                .context("cannot record a failed preparation")?
            {
                Outcome::Failed {
                    session,
                    file,
                    message,
                }
            } else {
                Outcome::Lost { session, file }
            },
        )
    }

    /// The work of a claim without its bookkeeping: reuse or copy, then publish.
    /// Leaves no staging object behind whatever happens.
    async fn run(&self, claim: &Claim, ctl: &Arc<Control>) -> anyhow::Result<Done> {
        let sha = claim.expected_sha256.as_str();
        let size = claim.expected_size;
        let transfer = &self.buckets.transfer;

        let reusable = self
            .db
            .touch_artifact(sha)
            .await
            .context("cannot look for an artifact")?;
        if let Some(artifact) = reusable {
            if artifact.size == size && transfer.has_object(&artifact.transfer_key, size).await {
                if ctl.cancel.is_cancelled() {
                    return Ok(Done::Canceled);
                }
                match self
                    .db
                    .mark_prepared(claim, sha, size)
                    .await
                    .context("cannot record a prepared file")?
                {
                    Published::Prepared => return Ok(Done::Prepared { reused: true }),
                    Published::Lost => return Ok(Done::Lost),
                    // Marked for collection after all: stage the bytes afresh.
                    Published::ArtifactGone => {}
                }
            }
        }

        self.copy_and_publish(claim, ctl).await
    }

    /// Copies the bytes straight to a fresh artifact key (committed there only
    /// once verified and durable), then records the artifact and the file.
    async fn copy_and_publish(&self, claim: &Claim, ctl: &Arc<Control>) -> anyhow::Result<Done> {
        let sha = claim.expected_sha256.as_str();
        let size = claim.expected_size;
        let expected = Digest {
            sha256: sha.to_string(),
            size: u64::try_from(size).unwrap_or(0),
        };
        let content = &self.buckets.content;
        let transfer = &self.buckets.transfer;
        let source = match content.local_path(&claim.content_key) {
            Some(path) => Source::Local(path),
            None => Source::Remote(
                content.inner.clone(),
                Path::from(claim.content_key.as_str()),
            ),
        };
        let key = artifact_key(sha);
        let sink = match transfer.local_path(&key) {
            Some(path) => Sink::Local(path),
            None => Sink::Remote(transfer.inner.clone(), Path::from(key.as_str())),
        };
        let staged = match stage::stage(source, sink, &expected, &self.tuning, ctl.clone()).await {
            Ok(staged) => staged,
            Err(e) => {
                // Nothing is committed on a failure, except after a rename whose
                // directory sync failed: no row will ever name this key, drop it.
                if matches!(e, StageError::Write(_)) {
                    let _ = transfer.delete(&key).await;
                }
                return Ok(stage_failure(claim, e));
            }
        };
        // The object is durable under `key`, which no row names yet: until one
        // does, any ending deletes it.
        let artifact = ArtifactRow {
            sha256: sha.to_string(),
            size,
            transfer_key: key,
        };
        let published = self.publish(claim, ctl, &artifact, staged.size).await;
        // Unless ours is the copy published (not published at all, or another
        // copy of the same bytes was first), no row will name it: delete it.
        if !matches!(published, Ok(Some(true))) {
            if let Err(e) = transfer.delete(&artifact.transfer_key).await {
                tracing::warn!(error = %e, key = %artifact.transfer_key,
                    "cannot delete an unpublished artifact object");
            }
        }
        if published?.is_none() {
            return Ok(if ctl.cancel.is_cancelled() {
                Done::Canceled
            } else {
                Done::Lost
            });
        }
        if ctl.cancel.is_cancelled() {
            // The artifact stays, unreferenced: reused or collected later.
            return Ok(Done::Canceled);
        }
        Ok(
            match self
                .db
                .mark_prepared(claim, sha, size)
                .await
                .context("cannot record a prepared file")?
            {
                Published::Prepared => Done::Prepared { reused: false },
                Published::Lost => Done::Lost,
                Published::ArtifactGone => Done::Transient {
                    class: Cause::Internal,
                    detail: anyhow::anyhow!("artifact {sha} was collected while being published"),
                },
            },
        )
    }

    /// Records the artifact whose object was committed under its key. None: the
    /// claim went away first (nothing recorded). Some(true): the row names our
    /// object; Some(false): it names another, live copy of the same bytes.
    async fn publish(
        &self,
        claim: &Claim,
        ctl: &Control,
        artifact: &ArtifactRow,
        written: u64,
    ) -> anyhow::Result<Option<bool>> {
        // A claim lost while the last chunks were copied (canceled session) is
        // caught here rather than leaving an artifact nobody asked for.
        if ctl.cancel.is_cancelled()
            || !self
                .db
                .renew_claim(claim, self.claim_duration(), written)
                .await
                .context("cannot renew a claim")?
        {
            return Ok(None);
        }
        let row = self
            .db
            .publish_artifact(artifact)
            .await
            .context("cannot record an artifact")?;
        if row.transfer_key == artifact.transfer_key {
            return Ok(Some(true));
        }
        let transfer = &self.buckets.transfer;
        if transfer.has_object(&row.transfer_key, row.size).await {
            return Ok(Some(false));
        }
        // The row names an object that is not there (lost, or an older
        // version's copy that never arrived): ours replaces it.
        let replaced = self
            .db
            .replace_artifact_object(&row, artifact)
            .await
            .context("cannot record an artifact")?;
        Ok(Some(replaced))
    }

    /// How long a claim holds without a heartbeat (`workers.lease_seconds`).
    fn claim_duration(&self) -> Duration {
        Duration::from_secs(self.settings.lease_seconds)
    }

    fn retry_delay_after(&self, attempts: i32) -> Duration {
        let factor = 1u32 << attempts.clamp(1, 6).saturating_sub(1);
        (self.retry_delay * factor).min(Duration::from_secs(60))
    }
}

/// MB/s of a copy; 0 for a reuse (nothing moved) or an instant.
fn throughput(size: i64, secs: f64, reused: bool) -> f64 {
    if reused || secs <= 0.0 {
        return 0.0;
    }
    let mb_s = size as f64 / 1e6 / secs;
    (mb_s * 10.0).round() / 10.0
}

fn stage_failure(claim: &Claim, e: StageError) -> Done {
    match e {
        StageError::Canceled => Done::Canceled,
        StageError::SourceMissing => Done::Permanent(LocalizableMessage::new(
            "com.vmware.content.library.item.downloadsession.file.content_missing",
            format!(
                "The content of file {} is missing from the content store.",
                claim.name
            ),
            &[&claim.name],
        )),
        StageError::SizeMismatch { actual } => Done::Permanent(size_mismatch(claim, actual)),
        StageError::ChecksumMismatch { actual } => {
            let sha = claim.expected_sha256.as_str();
            Done::Permanent(LocalizableMessage::new(
                "com.vmware.content.library.item.downloadsession.file.checksum_mismatch",
                format!(
                    "The content of file {} does not match its catalog checksum \
                     (SHA-256 expected {sha}, found {actual}).",
                    claim.name
                ),
                &[&claim.name, sha, &actual],
            ))
        }
        StageError::Read(detail) => Done::Transient {
            class: Cause::Read,
            detail,
        },
        StageError::Write(detail) => Done::Transient {
            class: Cause::Write,
            detail,
        },
        StageError::Internal(detail) => Done::Transient {
            class: Cause::Internal,
            detail,
        },
        StageError::Disconnected => Done::Transient {
            class: Cause::Internal,
            detail: anyhow::anyhow!("a copy stage quit without a cause"),
        },
    }
}

fn size_mismatch(claim: &Claim, actual: u64) -> LocalizableMessage {
    let expected = claim.expected_size.to_string();
    let actual = actual.to_string();
    LocalizableMessage::new(
        "com.vmware.content.library.item.downloadsession.file.size_mismatch",
        format!(
            "The content of file {} has {actual} bytes where the catalog says {expected}.",
            claim.name
        ),
        &[&claim.name, &expected, &actual],
    )
}

/// The ERROR message once every attempt failed for a transient cause.
fn gave_up(claim: &Claim, class: Cause) -> LocalizableMessage {
    let attempts = claim.attempts.to_string();
    let (id, what) = match class {
        Cause::Read => (
            "com.vmware.content.library.item.downloadsession.file.read_failed",
            "reading the content store",
        ),
        Cause::Write => (
            "com.vmware.content.library.item.downloadsession.file.write_failed",
            "writing the transfer store",
        ),
        Cause::Internal => (
            "com.vmware.content.library.item.downloadsession.file.prepare_failed",
            "an internal error",
        ),
    };
    LocalizableMessage::new(
        id,
        format!(
            "Preparation of file {} failed {attempts} times: {what} failed.",
            claim.name
        ),
        &[&claim.name, &attempts],
    )
}
