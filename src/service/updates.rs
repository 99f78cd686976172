//! Update sessions (uploads) in the core: the operations of
//! `com.vmware.content.library.item.update_session` and `updatesession.file`,
//! and the receiving end of PUSH uploads (streamed, hashed, verified, durable).

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use object_store::ObjectStoreExt;
use uuid::Uuid;

use super::Service;
use crate::{
    domain::{
        models::{
            ChecksumInfo, UpdateFileInfo, UpdateSessionModel, ValidationError, ValidationResult,
        },
        update::{
            check_received, too_many_bytes, FileAdd, PullPolicy, SourceType, TransferStatus,
            UpdateState,
        },
        Caller, ClientErrorMessage, FileName, ItemId, NewSession, Parsed, Privilege, Progress,
        UpdateSessionId,
    },
    error::{Error, LocalizableMessage, Result},
    storage::{
        content_key,
        stage::{Digest, WriteError},
        Bucket,
    },
    store::updates::{
        Completed, Deleted, LockedUpdate, Recorded, UpdateCreated, UpdateFileRow, UpdateSessionRow,
        UploadStart,
    },
};

/// How often a running upload records its progress (and renews the lease).
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// How long an upload waits for a collector to finish deleting an older
/// object under the key of the bytes it received.
const RESERVE_PATIENCE: Duration = Duration::from_secs(60);
/// Bytes gathered before each write to the store (with the store's own
/// buffers and parts in flight, the memory an upload holds).
const WRITE_BATCH: usize = 1 << 20;

/// One answer for every refused upload URI, whatever the reason.
pub(crate) fn upload_refused() -> Error {
    Error::not_found(
        "com.vmware.content.library.item.updatesession.file.endpoint_not_found",
        "The upload endpoint does not exist or is no longer valid.",
        &[],
    )
}

fn file_error(id: &str, message: String) -> LocalizableMessage {
    LocalizableMessage::new(
        &format!("com.vmware.content.library.item.updatesession.file.{id}"),
        message,
        &[],
    )
}

impl Service {
    // --------------------------------------------------------------- sessions

    /// Creates an update session for the spec's item (`ContentLibrary.UpdateSession`);
    /// one ACTIVE session per item (RESOURCE_BUSY), the same client token from
    /// the same user answers the same id.
    pub async fn create_update_session(
        &self,
        caller: &Caller,
        spec: NewSession,
    ) -> Result<UpdateSessionId> {
        caller.require(Privilege::UpdateSession)?;
        let item = spec.library_item_id?;
        let token = spec.client_token?;
        match self
            .db()
            .create_update_session(caller.user_id, item, token.as_ref(), self.lease())
            .await?
        {
            UpdateCreated::NoSuchItem => Err(ItemId::not_found(&item.to_string())),
            UpdateCreated::Busy => {
                let i = item.to_string();
                Err(Error::resource_busy(
                    "com.vmware.content.library.item.update_session.item_busy",
                    format!("Library item {i} already has an ACTIVE update session."),
                    &[&i],
                ))
            }
            UpdateCreated::Session(id) => Ok(id),
        }
    }

    /// The caller's live update session, its lease renewed when due.
    async fn update_session(
        &self,
        caller: &Caller,
        id: UpdateSessionId,
    ) -> Result<UpdateSessionRow> {
        self.db()
            .touch_update_session(
                caller.user_id,
                id,
                self.lease(),
                crate::validity::granularity(self.lease()),
            )
            .await?
            .ok_or_else(|| UpdateSessionId::not_found(&id.to_string()))
    }

    async fn locked_update(
        &self,
        caller: &Caller,
        id: UpdateSessionId,
        op: &str,
    ) -> Result<LockedUpdate> {
        let locked = self
            .db()
            .lock_update_session(caller.user_id, id)
            .await?
            .ok_or_else(|| UpdateSessionId::not_found(&id.to_string()))?;
        locked.row.state.require_active(op, id)?;
        Ok(locked)
    }

    pub async fn get_update_session(
        &self,
        caller: &Caller,
        id: UpdateSessionId,
    ) -> Result<UpdateSessionModel> {
        let row = self.update_session(caller, id).await?;
        Ok(UpdateSessionModel {
            id: None,
            library_item_id: row.library_item_id.to_string(),
            library_item_content_version: row.content_version.to_string(),
            error_message: row.error_message.map(|j| j.0),
            client_progress: i64::from(row.client_progress),
            state: row.state,
            expiration_time: row.expiration_time,
        })
    }

    /// The caller's live update sessions, all or those of one item.
    pub async fn list_update_sessions(
        &self,
        caller: &Caller,
        item: Option<Parsed<ItemId>>,
    ) -> Result<Vec<String>> {
        caller.require(Privilege::UpdateSession)?;
        let item = item.transpose()?;
        if let Some(id) = item {
            if !self.db().item_exists(id).await? {
                return Err(ItemId::not_found(&id.to_string()));
            }
        }
        let ids = self.db().list_update_sessions(caller.user_id, item).await?;
        Ok(ids.into_iter().map(|id| id.to_string()).collect())
    }

    pub async fn update_keep_alive(
        &self,
        caller: &Caller,
        id: UpdateSessionId,
        progress: Option<Progress>,
    ) -> Result<()> {
        let locked = self.locked_update(caller, id, "keep_alive").await?;
        Ok(locked.renew(progress, self.lease()).await?)
    }

    /// Publishes the session's files as the item's next content version.
    pub async fn complete_update(&self, caller: &Caller, id: UpdateSessionId) -> Result<()> {
        let locked = self.locked_update(caller, id, "complete").await?;
        match locked.complete(self.lease()).await? {
            Completed::Published(version) => {
                tracing::info!(session = %id, version, "update session published");
                Ok(())
            }
            Completed::NotReady(names) => {
                let list = names.join(", ");
                Err(Error::not_allowed(
                    "com.vmware.content.library.item.update_session.files_not_ready",
                    format!("Update session {id} cannot complete: these files are not (correctly) received: {list}."),
                    &[&id.to_string(), &list],
                ))
            }
            Completed::ContentCollected => Err(Error::not_allowed(
                "com.vmware.content.library.item.update_session.content_collected",
                format!("Update session {id} cannot complete: received content was collected while the session was idle; add and send the files again."),
                &[&id.to_string()],
            )),
        }
    }

    pub async fn cancel_update(&self, caller: &Caller, id: UpdateSessionId) -> Result<()> {
        let locked = self.locked_update(caller, id, "cancel").await?;
        let file_error = file_error("canceled", "The update session was canceled.".into());
        Ok(locked
            .finish(UpdateState::Canceled, None, &file_error, self.lease())
            .await?)
    }

    pub async fn fail_update(
        &self,
        caller: &Caller,
        id: UpdateSessionId,
        message: ClientErrorMessage,
    ) -> Result<()> {
        let locked = self.locked_update(caller, id, "fail").await?;
        let error = LocalizableMessage::new(
            "com.vmware.content.library.item.update_session.client_error",
            message.as_str(),
            &[],
        );
        let file_error = file_error(
            "failed",
            "The update session was failed by the client.".into(),
        );
        Ok(locked
            .finish(UpdateState::Error, Some(&error), &file_error, self.lease())
            .await?)
    }

    /// Deletes an ended session (an ACTIVE one: NOT_ALLOWED_IN_CURRENT_STATE).
    pub async fn delete_update_session(&self, caller: &Caller, id: UpdateSessionId) -> Result<()> {
        match self.db().delete_update_session(caller.user_id, id).await? {
            Deleted::Deleted => Ok(()),
            Deleted::NotFound => Err(UpdateSessionId::not_found(&id.to_string())),
            Deleted::Active => UpdateState::Active.require_ended(id),
        }
    }

    // ------------------------------------------------------------------ files

    pub async fn add_update_file(
        &self,
        caller: &Caller,
        id: UpdateSessionId,
        add: Parsed<FileAdd>,
    ) -> Result<UpdateFileInfo> {
        let locked = self.locked_update(caller, id, "add").await?;
        let add = add?;
        let row = locked.row.clone();
        let file = locked.add_file(&add).await?;
        Ok(self.update_file_info(&row, file))
    }

    pub async fn remove_update_file(
        &self,
        caller: &Caller,
        id: UpdateSessionId,
        name: Parsed<FileName>,
    ) -> Result<()> {
        let locked = self.locked_update(caller, id, "remove").await?;
        let name = name?;
        if locked.remove_file(&name).await? {
            Ok(())
        } else {
            Err(FileName::missing(name.as_str()))
        }
    }

    pub async fn list_update_files(
        &self,
        caller: &Caller,
        id: UpdateSessionId,
    ) -> Result<Vec<UpdateFileInfo>> {
        let row = self.update_session(caller, id).await?;
        let files = self.db().list_update_files(id).await?;
        Ok(files
            .into_iter()
            .map(|f| self.update_file_info(&row, f))
            .collect())
    }

    pub async fn get_update_file(
        &self,
        caller: &Caller,
        id: UpdateSessionId,
        name: Parsed<FileName>,
    ) -> Result<UpdateFileInfo> {
        let row = self.update_session(caller, id).await?;
        let name = name?;
        let file = self
            .db()
            .list_update_files(id)
            .await?
            .into_iter()
            .find(|f| f.name == name.as_str())
            .ok_or_else(|| FileName::missing(name.as_str()))?;
        Ok(self.update_file_info(&row, file))
    }

    /// Which files added are not (correctly) received yet.
    pub async fn validate_update_files(
        &self,
        caller: &Caller,
        id: UpdateSessionId,
    ) -> Result<ValidationResult> {
        let row = self.update_session(caller, id).await?;
        row.state.require_active("validate", id)?;
        let mut missing_files = Vec::new();
        let mut invalid_files = Vec::new();
        for f in self.db().list_update_files(id).await? {
            match f.status {
                TransferStatus::Ready => {}
                TransferStatus::Error => invalid_files.push(ValidationError {
                    name: f.name,
                    error_message: f
                        .error_message
                        .map(|j| j.0)
                        .unwrap_or_else(|| file_error("error", "The upload failed.".into())),
                }),
                _ => missing_files.push(f.name),
            }
        }
        Ok(ValidationResult {
            has_errors: !(missing_files.is_empty() && invalid_files.is_empty()),
            missing_files,
            invalid_files,
        })
    }

    fn update_file_info(&self, session: &UpdateSessionRow, f: UpdateFileRow) -> UpdateFileInfo {
        let upload_endpoint = (session.state == UpdateState::Active
            && f.source_type == SourceType::Push)
            .then(|| self.inner.endpoints.upload_endpoint(session.id, &f.name));
        UpdateFileInfo {
            checksum_info: f
                .sha256
                .or(f.declared_sha256)
                .as_deref()
                .map(ChecksumInfo::sha256),
            size: f.size.or(f.declared_size),
            name: f.name,
            source_type: f.source_type,
            upload_endpoint,
            bytes_transferred: f.bytes_transferred,
            status: f.status,
            error_message: f.error_message.map(|j| j.0),
            keep_in_storage: false,
        }
    }

    // ---------------------------------------------------------------- uploads

    /// Receives the bytes of a PUSH file sent to its `upload_endpoint`: the
    /// signed token is the credential. The bytes are hashed on the way and
    /// written durably; the file becomes READY only once its size and checksum
    /// match what `add` declared. Anything else leaves the file in ERROR and
    /// nothing visible; sending the file again starts over.
    pub async fn receive_upload<S>(&self, token: &str, file: &str, body: S) -> Result<()>
    where
        S: Stream<Item = Result<Bytes>> + Unpin,
    {
        let name = FileName::parse(file).map_err(|_| upload_refused())?;
        let session = self
            .inner
            .endpoints
            .verify_upload(token, &name)
            .ok_or_else(upload_refused)?;
        let start = self
            .db()
            .begin_upload(session, &name, self.lease())
            .await?
            .ok_or_else(upload_refused)?;
        self.store_upload(session, &name, &start, body).await
    }

    /// Writes the bytes of a started upload (PUSH or PULL) durably and
    /// verified, and records the file READY; or records why not.
    async fn store_upload<S>(
        &self,
        session: UpdateSessionId,
        name: &FileName,
        start: &UploadStart,
        body: S,
    ) -> Result<()>
    where
        S: Stream<Item = Result<Bytes>> + Unpin,
    {
        let upload_id = start.upload_id;
        let content = self.inner.buckets.content.clone();
        // With a declared checksum the key is known: the bytes go straight to it
        // (reserved first), committed only once verified (no copy, even on S3).
        // Without, they go to a key of their own and are renamed once hashed.
        let target = match &start.declared_sha256 {
            Some(sha) => {
                let key = content_key(sha);
                if let Err(e) = self.reserve(&key).await {
                    let message =
                        file_error("store_failed", "The upload could not be stored.".into());
                    self.db()
                        .upload_failed(session, name, upload_id, &message)
                        .await?;
                    return Err(e);
                }
                key
            }
            None => format!("incoming/{upload_id}"),
        };
        let written = match self
            .write_upload(session, name, start, &content, &target, body)
            .await
        {
            Ok(written) => written,
            Err(Failed { client, message }) => {
                if let Some(message) = &message {
                    self.db()
                        .upload_failed(session, name, upload_id, message)
                        .await?;
                }
                return Err(client);
            }
        };
        let key = content_key(&written.sha256);
        if target != key {
            let stored = async {
                self.reserve(&key).await?;
                rename_durably(&content, &target, &key)
                    .await
                    .map_err(Error::internal)
            }
            .await;
            if let Err(e) = stored {
                content.remove(&target).await;
                let message = file_error("store_failed", "The upload could not be stored.".into());
                self.db()
                    .upload_failed(session, name, upload_id, &message)
                    .await?;
                return Err(e);
            }
        }
        let size = i64::try_from(written.size).map_err(Error::internal)?;
        match self
            .db()
            .upload_ready(session, name, upload_id, size, &written.sha256, &key)
            .await?
        {
            Recorded::Done => Ok(()),
            Recorded::Superseded => Err(superseded()),
            Recorded::ContentCollected => {
                let message = file_error(
                    "content_collected",
                    "The upload was collected before it was recorded; send it again.".into(),
                );
                self.db()
                    .upload_failed(session, name, upload_id, &message)
                    .await?;
                Err(Error::internal(anyhow::anyhow!(
                    "received content collected before it was recorded"
                )))
            }
        }
    }

    /// Streams the body to `key` (a verified write: nothing appears under the
    /// key unless it is committed), counting; commits once every byte is in and
    /// size and checksum match the spec. Returns what was written.
    async fn write_upload<S>(
        &self,
        session: UpdateSessionId,
        name: &FileName,
        start: &UploadStart,
        content: &Bucket,
        key: &str,
        mut body: S,
    ) -> std::result::Result<Digest, Failed>
    where
        S: Stream<Item = Result<Bytes>> + Unpin,
    {
        let expected_size = start.declared_size.map_or(0, |s| s as u64);
        let mut sink = content
            .begin_write(key, expected_size)
            .await
            .map_err(|e| Failed::internal_recorded(Error::internal(e)))?;
        // Small network chunks are gathered so that each write moves a lot.
        let mut pending = BytesMut::with_capacity(WRITE_BATCH);
        let mut size: i64 = 0;
        let mut last_progress = Instant::now();
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    sink.abort().await;
                    let why = format!(
                        "The upload was interrupted after {size} bytes: {}",
                        e.first_message()
                    );
                    return Err(Failed {
                        client: e,
                        message: Some(file_error("interrupted", why)),
                    });
                }
            };
            size += chunk.len() as i64;
            if let Some(declared) = start.declared_size.filter(|d| size > *d) {
                sink.abort().await;
                let why = too_many_bytes(declared);
                return Err(Failed {
                    client: Error::invalid_argument(
                        "com.vmware.content.library.item.updatesession.file.too_many_bytes",
                        why.clone(),
                        &[&declared.to_string()],
                    ),
                    message: Some(file_error("too_many_bytes", why)),
                });
            }
            pending.extend_from_slice(&chunk);
            if pending.len() >= WRITE_BATCH {
                if let Err(e) = sink.write(pending.split().freeze()).await {
                    sink.abort().await;
                    return Err(Failed::internal_recorded(Error::internal(e)));
                }
            }
            if last_progress.elapsed() >= PROGRESS_EVERY {
                last_progress = Instant::now();
                let live = self
                    .db()
                    .upload_progress(
                        session,
                        name,
                        start.upload_id,
                        size,
                        self.lease(),
                        self.inner.pull_lease,
                    )
                    .await
                    .map_err(|e| Failed::internal_recorded(Error::from(e)));
                match live {
                    Ok(true) => {}
                    Ok(false) => {
                        sink.abort().await;
                        return Err(Failed {
                            client: superseded(),
                            message: None,
                        });
                    }
                    Err(e) => {
                        sink.abort().await;
                        return Err(e);
                    }
                }
            }
        }
        if !pending.is_empty() {
            if let Err(e) = sink.write(pending.freeze()).await {
                sink.abort().await;
                return Err(Failed::internal_recorded(Error::internal(e)));
            }
        }
        let written = match sink.written().await {
            Ok(w) => w,
            Err(e) => {
                sink.abort().await;
                return Err(Failed::internal_recorded(Error::internal(e)));
            }
        };
        if let Err(why) = check_received(
            start.declared_size,
            start.declared_sha256.as_deref(),
            size,
            &written.sha256,
        ) {
            sink.abort().await;
            return Err(Failed {
                client: Error::invalid_argument(
                    "com.vmware.content.library.item.updatesession.file.content_mismatch",
                    why.clone(),
                    &[],
                ),
                message: Some(file_error("content_mismatch", why)),
            });
        }
        // Only now, with size and checksum right, does the object become whole.
        sink.commit(&written).await.map_err(|e| match e {
            WriteError::Mismatch { .. } => Failed::internal_recorded(Error::internal(e)),
            WriteError::Store(e) => Failed::internal_recorded(Error::internal(e)),
        })
    }

    /// The hosts PULL files may come from (`uploads.pull_allow`).
    pub fn pull_policy(&self) -> &PullPolicy {
        &self.inner.pull_policy
    }

    /// Fetches one waiting PULL file, if any (claimed with a lease renewed
    /// while bytes flow; another instance takes it over once the lease lapses).
    /// True when one was claimed, whatever its outcome.
    pub async fn pull_one(&self, owner: Uuid) -> Result<bool> {
        let Some(claim) = self.db().claim_pull(owner, self.inner.pull_lease).await? else {
            return Ok(false);
        };
        let name = FileName::parse(&claim.name).map_err(Error::internal)?;
        let fetched = fetch(&claim.uri, claim.thumbprint.as_deref()).await;
        let outcome = match fetched {
            Ok(response) => {
                let body = futures_util::stream::unfold(Some(response), |r| async move {
                    let mut r = r?;
                    match r.chunk().await {
                        Ok(Some(chunk)) => Some((Ok(chunk), Some(r))),
                        Ok(None) => None,
                        Err(e) => Some((
                            Err(Error::invalid_argument(
                                "com.vmware.content.library.item.updatesession.file.pull_failed",
                                format!("Reading the source failed: {e}"),
                                &[],
                            )),
                            None,
                        )),
                    }
                });
                self.store_upload(claim.session, &name, &claim.start, Box::pin(body))
                    .await
            }
            Err(why) => {
                let message = file_error("pull_failed", why);
                self.db()
                    .upload_failed(claim.session, &name, claim.start.upload_id, &message)
                    .await?;
                Ok(())
            }
        };
        if let Err(e) = outcome {
            tracing::info!(session = %claim.session, file = %name, error = %e.first_message(), "PULL failed");
        }
        Ok(true)
    }

    /// This instance's PULL loop: fetches waiting files one at a time, then
    /// sleeps for `poll`. Stops with `stop` (a transfer cut short is taken up
    /// again once its claim lapses).
    pub fn spawn_puller(
        self,
        poll: Duration,
        stop: tokio_util::sync::CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let owner = Uuid::new_v4();
            while !stop.is_cancelled() {
                let pulled = tokio::select! {
                    r = self.pull_one(owner) => r,
                    _ = stop.cancelled() => return,
                };
                let pause = match pulled {
                    Ok(true) => continue,
                    Ok(false) => poll,
                    Err(e) => {
                        tracing::warn!(error = %e.first_message(), "PULL loop cannot reach the database");
                        poll * 2
                    }
                };
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stop.cancelled() => return,
                }
            }
        })
    }

    /// Reserves a content key, waiting while a collector deletes an older object under it.
    async fn reserve(&self, key: &str) -> Result<()> {
        if self
            .db()
            .reserve_content_within(key, RESERVE_PATIENCE)
            .await?
        {
            Ok(())
        } else {
            Err(Error::unavailable(anyhow::anyhow!(
                "content {key} is still being deleted by the collector"
            )))
        }
    }
}

fn superseded() -> Error {
    Error::not_allowed(
        "com.vmware.content.library.item.updatesession.file.upload_superseded",
        "The upload no longer counts: the update session is not ACTIVE any more, or the file was added or sent again.",
        &[],
    )
}

/// Why an upload did not go through: what the client is told, and what the
/// file records (None when the upload was superseded: the file is another's now).
struct Failed {
    client: Error,
    message: Option<LocalizableMessage>,
}

impl Failed {
    fn internal_recorded(e: Error) -> Failed {
        Failed {
            client: e,
            message: Some(file_error(
                "store_failed",
                "The upload could not be stored.".into(),
            )),
        }
    }
}

/// Renames a received object to its content key: on a local store a rename
/// and an fsync of the directory (durable once it returns); on S3 a copy (the
/// one case an upload is copied: no checksum declared, so no key to write to).
async fn rename_durably(content: &Bucket, from: &str, to: &str) -> anyhow::Result<()> {
    if let (Some(from), Some(to)) = (content.local_path(from), content.local_path(to)) {
        return tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let dir = to
                .parent()
                .ok_or_else(|| anyhow::anyhow!("object path has no parent"))?;
            std::fs::create_dir_all(dir)?;
            std::fs::rename(&from, &to)?;
            std::fs::File::open(dir)?.sync_all()?;
            Ok(())
        })
        .await?;
    }
    content
        .inner
        .rename(
            &object_store::path::Path::from(from),
            &object_store::path::Path::from(to),
        )
        .await?;
    Ok(())
}

/// GETs a PULL source: over https the system's trust store, or exactly the
/// certificate of the given SHA-1 thumbprint. The response once it is a 200.
async fn fetch(
    uri: &str,
    thumbprint: Option<&str>,
) -> std::result::Result<reqwest::Response, String> {
    use crate::client::tls::{parse_thumbprint, Trust, TrustMode};
    let mode = match thumbprint {
        Some(tp) => TrustMode::Thumbprint(parse_thumbprint(tp).map_err(|e| e.to_string())?),
        None => TrustMode::System,
    };
    let tls = Trust::new(mode)
        .and_then(|t| t.client_config(None))
        .map_err(|e| format!("TLS set-up failed: {e}"))?;
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .connect_timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("HTTP client set-up failed: {e}"))?;
    let response = client
        .get(uri)
        .send()
        .await
        .map_err(|e| format!("The source {uri} could not be reached: {e}"))?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(format!("The source {uri} answered {}.", response.status()));
    }
    Ok(response)
}
