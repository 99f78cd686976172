//! The service core: every operation of the contract and every rule, once.
//! The three wire surfaces (`/api`, `/rest`, JSON-RPC) only translate to and from these calls.

mod auth;
mod catalog;
pub mod import;
mod updates;
mod verifier;

pub use auth::hash_password;
pub(crate) use updates::upload_refused;

use std::{sync::Arc, time::Duration};

use crate::{
    config::{LoginSettings, Settings},
    dataplane::Endpoints,
    domain::{
        models::{ChecksumInfo, DownloadFileInfo, DownloadSessionModel, FileState},
        Caller, ClientErrorMessage, EndpointType, FileName, ItemId, NewSession, Parsed,
        PrepareStatus, Privilege, Progress, SessionId, SessionState,
    },
    error::{Error, LocalizableMessage, Result},
    storage::{location::ContentLocation, Buckets},
    store::{
        files::PrepareRequest,
        sessions::{Created, LockedSession, SessionRow},
        Db, DbError,
    },
    validity::{SessionEntry, Validity},
};

/// The one place a database failure becomes an API error: a database that
/// cannot be reached is SERVICE_UNAVAILABLE (the client's cue to retry, not a
/// bug); anything else is an internal error, logged with its cause chain.
impl From<DbError> for Error {
    fn from(e: DbError) -> Self {
        if e.is_unavailable() {
            Error::unavailable(e)
        } else {
            Error::internal(e)
        }
    }
}

/// Shared, cheaply cloned handle to the core: the one door to the database
/// for the API surfaces and the ops routes.
#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    buckets: Buckets,
    endpoints: Endpoints,
    /// Which logins and sessions are live, without asking the database every time.
    validity: Validity,
    /// How long activity keeps a download session alive.
    session_lease: Duration,
    login: LoginSettings,
    /// Hosts PULL files may come from.
    pull_policy: crate::domain::update::PullPolicy,
    /// How long a PULL claim lives without progress.
    pull_lease: Duration,
    /// Where clients may find the content store's objects (item storage).
    content: ContentLocation,
    /// Password checks: dedicated threads behind a bounded queue.
    verifier: verifier::Verifier,
    /// The share of the connection pool logins may hold at once.
    login_db: tokio::sync::Semaphore,
    /// Attempts of one (user, client) pair take turns on this instance.
    login_pairs: auth::PairLocks,
}

/// What the readiness probe found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    /// The database answers.
    pub database: bool,
    /// Both object stores can be listed.
    pub stores: bool,
}

impl Service {
    pub fn new(
        db: Db,
        buckets: Buckets,
        endpoints: Endpoints,
        validity: Validity,
        settings: &Settings,
    ) -> Service {
        // A quarter of the pool at most: a login flood leaves the rest to other requests.
        let login_connections = (settings.database.max_connections as usize / 4).max(1);
        Service {
            inner: Arc::new(Inner {
                db,
                buckets,
                endpoints,
                validity,
                session_lease: settings.session_timeout(),
                login: settings.login.clone(),
                content: ContentLocation::from_settings(&settings.storage.content),
                pull_policy: crate::domain::update::PullPolicy::new(&settings.uploads.pull_allow),
                pull_lease: Duration::from_secs(settings.workers.lease_seconds),
                verifier: verifier::Verifier::new(
                    settings.login.verify_threads(),
                    settings.login.verify_queue,
                ),
                login_db: tokio::sync::Semaphore::new(login_connections),
                login_pairs: auth::PairLocks::default(),
            }),
        }
    }

    fn db(&self) -> &Db {
        &self.inner.db
    }

    fn lease(&self) -> Duration {
        self.inner.session_lease
    }

    // -------------------------------------------------------------------- ops

    /// Whether the database and both object stores answer (readiness).
    pub async fn probe(&self) -> Probe {
        let database = self.db().ping().await.is_ok();
        let mut stores = true;
        let buckets = &self.inner.buckets;
        // A listing, unlike a HEAD of some key, fails on a missing bucket.
        for bucket in [&buckets.content, &buckets.transfer] {
            if let Err(e) = bucket.probe().await {
                tracing::warn!(error = %e, "store not reachable");
                stores = false;
            }
        }
        Probe { database, stores }
    }

    /// Live sessions by state (a metrics gauge).
    pub async fn session_counts(&self) -> Result<Vec<(SessionState, i64)>> {
        Ok(self.db().session_counts().await?)
    }

    /// Files of live sessions by prepare status (a metrics gauge).
    pub async fn file_counts(&self) -> Result<Vec<(PrepareStatus, i64)>> {
        Ok(self.db().file_counts().await?)
    }

    // ------------------------------------------------------- download sessions

    /// Creates a session for the spec's item; the same client token from the
    /// same user answers the same id.
    pub async fn create_session(&self, caller: &Caller, spec: NewSession) -> Result<SessionId> {
        caller.require(Privilege::DownloadSession)?;
        let item = spec.library_item_id?;
        let token = spec.client_token?;
        let created = self
            .db()
            .create_session(
                caller.user_id,
                item,
                caller.has(Privilege::ReadStorage),
                token.as_ref(),
                self.lease(),
            )
            .await?;
        match created {
            Created::NoSuchItem => Err(ItemId::not_found(&item.to_string())),
            Created::Session(id) => Ok(id),
        }
    }

    /// The caller's live session (any state), from the validity cache. Not
    /// renewed: an operation calls [`Service::activity`] once it has succeeded.
    async fn session(&self, caller: &Caller, id: SessionId) -> Result<Arc<SessionEntry>> {
        self.inner
            .validity
            .session(id)
            .await?
            .filter(|s| s.row.owner_id == caller.user_id)
            .ok_or_else(|| SessionId::not_found(&id.to_string()))
    }

    /// A successful use of the session by its owner: its lease is renewed
    /// (written when the stored expiry lags by more than the granularity).
    async fn activity(&self, session: Arc<SessionEntry>) -> Arc<SessionEntry> {
        self.inner.validity.renew(session).await
    }

    pub async fn get_session(
        &self,
        caller: &Caller,
        id: SessionId,
    ) -> Result<DownloadSessionModel> {
        let session = self.session(caller, id).await?;
        let session = self.activity(session).await;
        Ok(session_model(session.row.clone()))
    }

    /// The caller's live sessions, all or those of one item.
    pub async fn list_sessions(
        &self,
        caller: &Caller,
        item: Option<Parsed<ItemId>>,
    ) -> Result<Vec<String>> {
        caller.require(Privilege::DownloadSession)?;
        let item = item.transpose()?;
        if let Some(id) = item {
            if !self.db().item_exists(id).await? {
                return Err(ItemId::not_found(&id.to_string()));
            }
        }
        let ids = self.db().list_sessions(caller.user_id, item).await?;
        Ok(ids.into_iter().map(|id| id.to_string()).collect())
    }

    pub async fn keep_alive(
        &self,
        caller: &Caller,
        id: SessionId,
        progress: Option<Progress>,
    ) -> Result<()> {
        let locked = self.locked_active(caller, id, "keep_alive").await?;
        locked.renew(progress, self.lease()).await?;
        self.inner.validity.forget_session(id);
        Ok(())
    }

    pub async fn cancel(&self, caller: &Caller, id: SessionId) -> Result<()> {
        let locked = self.locked_active(caller, id, "cancel").await?;
        let file_error = LocalizableMessage::new(
            "com.vmware.content.library.item.download_session.canceled",
            "The download session was canceled.",
            &[],
        );
        locked
            .finish(SessionState::Canceled, None, &file_error, self.lease())
            .await?;
        self.inner.validity.forget_session(id);
        Ok(())
    }

    pub async fn fail(
        &self,
        caller: &Caller,
        id: SessionId,
        message: ClientErrorMessage,
    ) -> Result<()> {
        let locked = self.locked_active(caller, id, "fail").await?;
        let error = LocalizableMessage::new(
            "com.vmware.content.library.item.download_session.client_error",
            message.as_str(),
            &[],
        );
        let file_error = LocalizableMessage::new(
            "com.vmware.content.library.item.download_session.failed",
            "The download session was failed by the client.",
            &[],
        );
        locked
            .finish(SessionState::Error, Some(&error), &file_error, self.lease())
            .await?;
        self.inner.validity.forget_session(id);
        Ok(())
    }

    pub async fn delete_session(&self, caller: &Caller, id: SessionId) -> Result<()> {
        let deleted = self.db().delete_session(caller.user_id, id).await?;
        self.inner.validity.forget_session(id);
        if deleted {
            Ok(())
        } else {
            Err(SessionId::not_found(&id.to_string()))
        }
    }

    /// Locks the caller's session and checks it is ACTIVE.
    async fn locked_active(
        &self,
        caller: &Caller,
        id: SessionId,
        op: &str,
    ) -> Result<LockedSession> {
        let locked = self
            .db()
            .lock_session(caller.user_id, id)
            .await?
            .ok_or_else(|| SessionId::not_found(&id.to_string()))?;
        locked.row.state.require_active(op, id)?;
        Ok(locked)
    }

    // ------------------------------------------------------------------ files

    pub async fn list_files(
        &self,
        caller: &Caller,
        id: SessionId,
    ) -> Result<Vec<DownloadFileInfo>> {
        let session = self.session(caller, id).await?;
        let mut out = Vec::with_capacity(session.files.len());
        for f in &session.files {
            out.push(self.file_info(&session.row, f.state.clone()).await?);
        }
        self.activity(session).await;
        Ok(out)
    }

    pub async fn get_file(
        &self,
        caller: &Caller,
        id: SessionId,
        name: Parsed<FileName>,
    ) -> Result<DownloadFileInfo> {
        let session = self.session(caller, id).await?;
        let name = name?;
        let file = session
            .file(&name)
            .ok_or_else(|| FileName::missing(name.as_str()))?;
        let info = self.file_info(&session.row, file.state.clone()).await?;
        self.activity(session).await;
        Ok(info)
    }

    pub async fn prepare_file(
        &self,
        caller: &Caller,
        id: SessionId,
        name: Parsed<FileName>,
        endpoint: Option<EndpointType>,
    ) -> Result<DownloadFileInfo> {
        let session = self.session(caller, id).await?;
        let name = name?;
        session.row.state.require_active("prepare", id)?;
        let endpoint = endpoint.unwrap_or_default();
        if endpoint == EndpointType::Direct && !session.row.created_with_read_storage {
            return Err(Error::unauthorized(
                "com.vmware.content.library.item.downloadsession.file.direct_not_authorized",
                format!(
                    "DIRECT endpoints need the privilege {} when the session is created.",
                    Privilege::ReadStorage.as_str()
                ),
                &[Privilege::ReadStorage.as_str()],
            ));
        }
        if endpoint == EndpointType::Direct && !self.inner.endpoints.transfer.offers_direct() {
            return Err(Error::invalid_argument(
                "com.vmware.content.library.item.downloadsession.file.direct_unavailable",
                "DIRECT endpoints are not available: the transfer store is a local directory \
                 and no location for clients (storage.transfer.direct_base) is configured. \
                 Use HTTPS.",
                &[],
            ));
        }
        let file = match self.db().request_prepare(id, &name, endpoint).await? {
            PrepareRequest::File(file) => file,
            PrepareRequest::NoSuchFile => return Err(FileName::missing(name.as_str())),
            PrepareRequest::NoSession => return Err(SessionId::not_found(&id.to_string())),
            // Canceled or failed since the state was read above.
            PrepareRequest::NotActive(state) => return Err(state.refuses("prepare", id)),
        };
        self.inner.validity.forget_session(id);
        let info = self.file_info(&session.row, file).await?;
        self.activity(session).await;
        Ok(info)
    }

    async fn file_info(&self, session: &SessionRow, f: FileState) -> Result<DownloadFileInfo> {
        let download_endpoint = if session.state == SessionState::Active {
            self.inner
                .endpoints
                .endpoint(session.id, &f, session.expiration_time)
                .await?
        } else {
            None
        };
        Ok(DownloadFileInfo {
            checksum_info: f.checksum.as_deref().map(ChecksumInfo::sha256),
            name: f.name,
            size: f.size,
            bytes_transferred: f.bytes_transferred,
            status: f.status,
            download_endpoint,
            error_message: f.error_message,
        })
    }
}

fn session_model(row: SessionRow) -> DownloadSessionModel {
    DownloadSessionModel {
        id: None,
        library_item_id: row.library_item_id.to_string(),
        library_item_content_version: row.content_version.to_string(),
        error_message: row.error_message.map(|j| j.0),
        client_progress: i64::from(row.client_progress),
        state: row.state,
        expiration_time: row.expiration_time,
    }
}
