//! The service core: every operation of the contract and every rule, once.
//! The three wire surfaces (`/api`, `/rest`, JSON-RPC) only translate to and from these calls.

mod auth;
pub mod import;

pub use auth::hash_password;

use std::{sync::Arc, time::Duration};

use crate::{
    config::Settings,
    dataplane::Endpoints,
    domain::{
        models::{
            ChecksumInfo, DownloadFileInfo, DownloadSessionModel, FileState, ItemFileInfo,
            ItemModel, LibraryModel,
        },
        Caller, EndpointType, FileName, ItemId, LibraryId, Privilege, Progress, SessionId,
        SessionState,
    },
    error::{Error, LocalizableMessage, Result},
    storage::Stores,
    store::{
        catalog::{ItemRow, LibraryRow},
        sessions::{Created, SessionRow},
        Store,
    },
};

/// Longest accepted `client_error_message` / `Client-Token`.
const MAX_TEXT: usize = 4096;
const MAX_CLIENT_TOKEN: usize = 256;

/// Shared, cheaply cloned handle to the core.
#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    stores: Stores,
    settings: Arc<Settings>,
    endpoints: Endpoints,
}

impl Service {
    pub fn new(
        store: Store,
        stores: Stores,
        settings: Arc<Settings>,
        endpoints: Endpoints,
    ) -> Service {
        Service {
            inner: Arc::new(Inner {
                store,
                stores,
                settings,
                endpoints,
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The content and transfer object stores.
    pub fn stores(&self) -> &Stores {
        &self.inner.stores
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.inner.endpoints
    }

    fn lease(&self) -> Duration {
        self.inner.settings.session_timeout()
    }

    // ---------------------------------------------------------------- catalog

    pub async fn list_libraries(&self, caller: &Caller) -> Result<Vec<String>> {
        caller.require(Privilege::Read)?;
        let rows = self.store().list_libraries().await?;
        Ok(rows.into_iter().map(|r| r.id.to_string()).collect())
    }

    pub async fn get_library(&self, caller: &Caller, id: LibraryId) -> Result<LibraryModel> {
        caller.require(Privilege::Read)?;
        let row = self.store().get_library(id.0).await?;
        row.map(library_model)
            .ok_or_else(|| LibraryId::not_found(&id.to_string()))
    }

    pub async fn list_items(&self, caller: &Caller, library: LibraryId) -> Result<Vec<String>> {
        caller.require(Privilege::Read)?;
        if !self.store().library_exists(library.0).await? {
            return Err(LibraryId::not_found(&library.to_string()));
        }
        let ids = self.store().list_item_ids(library.0).await?;
        Ok(ids.into_iter().map(|id| id.to_string()).collect())
    }

    pub async fn get_item(&self, caller: &Caller, id: ItemId) -> Result<ItemModel> {
        caller.require(Privilege::Read)?;
        let row = self.store().get_item(id.0).await?;
        row.map(item_model)
            .ok_or_else(|| ItemId::not_found(&id.to_string()))
    }

    pub async fn list_item_files(
        &self,
        caller: &Caller,
        item: ItemId,
    ) -> Result<Vec<ItemFileInfo>> {
        caller.require(Privilege::Read)?;
        if !self.store().item_exists(item.0).await? {
            return Err(ItemId::not_found(&item.to_string()));
        }
        let rows = self.store().list_item_files(item.0).await?;
        Ok(rows
            .into_iter()
            .map(|f| ItemFileInfo {
                name: f.name,
                size: f.size,
                checksum_info: ChecksumInfo::sha256(&f.sha256),
                cached: true,
                version: f.content_version.to_string(),
            })
            .collect())
    }

    pub async fn get_item_file(
        &self,
        caller: &Caller,
        item: ItemId,
        name: &str,
    ) -> Result<ItemFileInfo> {
        let files = self.list_item_files(caller, item).await?;
        files
            .into_iter()
            .find(|f| f.name == name)
            .ok_or_else(|| no_such_file(name))
    }

    // ------------------------------------------------------- download sessions

    /// Creates a session for `library_item_id`; the same client token from the
    /// same user answers the same id.
    pub async fn create_session(
        &self,
        caller: &Caller,
        library_item_id: Option<&str>,
        client_token: Option<&str>,
    ) -> Result<SessionId> {
        caller.require(Privilege::DownloadSession)?;
        let raw = library_item_id.ok_or_else(|| {
            Error::invalid_argument(
                "com.vmware.content.library.item.download_session.missing_library_item_id",
                "The create spec must name a library_item_id.",
                &[],
            )
        })?;
        let item = ItemId::parse(raw)?;
        let token = match client_token {
            // NUL: PostgreSQL text cannot hold it.
            Some(t) if t.is_empty() || t.len() > MAX_CLIENT_TOKEN || t.contains('\0') => {
                return Err(Error::invalid_argument(
                    "com.vmware.vapi.std.errors.invalid_client_token",
                    format!(
                        "The client token must be 1 to {MAX_CLIENT_TOKEN} characters, none of them NUL."
                    ),
                    &[],
                ))
            }
            other => other,
        };
        let created = self
            .store()
            .create_session(
                caller.user_id,
                item.0,
                caller.has(Privilege::ReadStorage),
                token,
                self.lease(),
            )
            .await?;
        match created {
            Created::NoSuchItem => Err(ItemId::not_found(raw)),
            Created::Session(id) => Ok(SessionId(id)),
        }
    }

    /// The caller's live session, renewed by this use.
    async fn session(&self, caller: &Caller, id: SessionId) -> Result<SessionRow> {
        self.store()
            .touch_session(caller.user_id, id.0, self.lease())
            .await?
            .ok_or_else(|| SessionId::not_found(&id.to_string()))
    }

    pub async fn get_session(
        &self,
        caller: &Caller,
        id: SessionId,
    ) -> Result<DownloadSessionModel> {
        let row = self.session(caller, id).await?;
        Ok(session_model(row))
    }

    pub async fn list_sessions(&self, caller: &Caller, item: Option<&str>) -> Result<Vec<String>> {
        caller.require(Privilege::DownloadSession)?;
        let item = match item {
            Some(raw) => {
                let id = ItemId::parse(raw)?;
                if !self.store().item_exists(id.0).await? {
                    return Err(ItemId::not_found(raw));
                }
                Some(id.0)
            }
            None => None,
        };
        let ids = self.store().list_sessions(caller.user_id, item).await?;
        Ok(ids.into_iter().map(|id| id.to_string()).collect())
    }

    pub async fn keep_alive(
        &self,
        caller: &Caller,
        id: SessionId,
        progress: Option<Progress>,
    ) -> Result<()> {
        let locked = self.locked_active(caller, id, "keep_alive").await?;
        locked
            .renew(progress.map(Progress::get), self.lease())
            .await
    }

    pub async fn cancel(&self, caller: &Caller, id: SessionId) -> Result<()> {
        let locked = self.locked_active(caller, id, "cancel").await?;
        let file_error = LocalizableMessage::new(
            "com.vmware.content.library.item.download_session.canceled",
            "The download session was canceled.",
            &[],
        );
        locked
            .finish(
                SessionState::Canceled.as_str(),
                None,
                &file_error,
                self.lease(),
            )
            .await
    }

    pub async fn fail(&self, caller: &Caller, id: SessionId, message: Option<&str>) -> Result<()> {
        let message = match message {
            Some(m) if m.contains('\0') => {
                // PostgreSQL (jsonb) cannot hold it.
                return Err(Error::invalid_argument(
                    "com.vmware.content.library.item.download_session.fail.invalid_message",
                    "client_error_message must not contain NUL characters.",
                    &[],
                ));
            }
            Some(m) if m.len() <= MAX_TEXT => m,
            Some(_) => {
                return Err(Error::invalid_argument(
                    "com.vmware.content.library.item.download_session.fail.message_too_long",
                    format!("client_error_message is longer than {MAX_TEXT} bytes."),
                    &[],
                ))
            }
            None => {
                return Err(Error::invalid_argument(
                    "com.vmware.content.library.item.download_session.fail.missing_message",
                    "fail requires a client_error_message.",
                    &[],
                ))
            }
        };
        let locked = self.locked_active(caller, id, "fail").await?;
        let error = LocalizableMessage::new(
            "com.vmware.content.library.item.download_session.client_error",
            message,
            &[],
        );
        let file_error = LocalizableMessage::new(
            "com.vmware.content.library.item.download_session.failed",
            "The download session was failed by the client.",
            &[],
        );
        locked
            .finish(
                SessionState::Error.as_str(),
                Some(&error),
                &file_error,
                self.lease(),
            )
            .await
    }

    pub async fn delete_session(&self, caller: &Caller, id: SessionId) -> Result<()> {
        if self.store().delete_session(caller.user_id, id.0).await? {
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
    ) -> Result<crate::store::sessions::LockedSession> {
        let locked = self
            .store()
            .lock_session(caller.user_id, id.0)
            .await?
            .ok_or_else(|| SessionId::not_found(&id.to_string()))?;
        SessionState::from_db(&locked.row.state).require_active(op, id)?;
        Ok(locked)
    }

    // ------------------------------------------------------------------ files

    pub async fn list_files(
        &self,
        caller: &Caller,
        id: SessionId,
    ) -> Result<Vec<DownloadFileInfo>> {
        let session = self.session(caller, id).await?;
        let files = self.store().list_files(session.id).await?;
        let mut out = Vec::with_capacity(files.len());
        for f in files {
            out.push(self.file_info(&session, f).await?);
        }
        Ok(out)
    }

    pub async fn get_file(
        &self,
        caller: &Caller,
        id: SessionId,
        name: &str,
    ) -> Result<DownloadFileInfo> {
        let session = self.session(caller, id).await?;
        let name = FileName::parse(name)?;
        let file = self
            .store()
            .get_file(session.id, name.as_str())
            .await?
            .ok_or_else(|| no_such_file(name.as_str()))?;
        self.file_info(&session, file).await
    }

    pub async fn prepare_file(
        &self,
        caller: &Caller,
        id: SessionId,
        name: &str,
        endpoint: Option<EndpointType>,
    ) -> Result<DownloadFileInfo> {
        let session = self.session(caller, id).await?;
        let name = FileName::parse(name)?;
        SessionState::from_db(&session.state).require_active("prepare", id)?;
        let endpoint = endpoint.unwrap_or_default();
        if endpoint == EndpointType::Direct && !session.created_with_read_storage {
            return Err(Error::unauthorized(
                "com.vmware.content.library.item.downloadsession.file.direct_not_authorized",
                format!(
                    "DIRECT endpoints need the privilege {} when the session is created.",
                    Privilege::ReadStorage.as_str()
                ),
                &[Privilege::ReadStorage.as_str()],
            ));
        }
        let file = self
            .store()
            .request_prepare(session.id, name.as_str(), endpoint)
            .await?
            .ok_or_else(|| no_such_file(name.as_str()))?;
        self.file_info(&session, file).await
    }

    async fn file_info(&self, session: &SessionRow, f: FileState) -> Result<DownloadFileInfo> {
        let active = SessionState::from_db(&session.state) == SessionState::Active;
        let download_endpoint = if active {
            self.endpoints()
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

fn no_such_file(name: &str) -> Error {
    Error::invalid_argument(
        "com.vmware.content.library.item.file.not_found",
        format!("File {name:?} does not exist in the library item."),
        &[name],
    )
}

fn session_model(row: SessionRow) -> DownloadSessionModel {
    DownloadSessionModel {
        id: None,
        library_item_id: row.library_item_id.to_string(),
        library_item_content_version: row.content_version.to_string(),
        error_message: row.error_message.map(|j| j.0),
        client_progress: i64::from(row.client_progress),
        state: SessionState::from_db(&row.state),
        expiration_time: row.expiration_time,
    }
}

fn library_model(r: LibraryRow) -> LibraryModel {
    LibraryModel {
        id: r.id.to_string(),
        name: r.name,
        description: r.description,
        library_type: "LOCAL".into(),
        creation_time: r.creation_time,
        last_modified_time: r.last_modified_time,
    }
}

fn item_model(r: ItemRow) -> ItemModel {
    ItemModel {
        id: r.id.to_string(),
        library_id: r.library_id.to_string(),
        name: r.name,
        item_type: r.r#type,
        description: r.description,
        size: r.size,
        content_version: r.content_version.to_string(),
        cached: true,
        creation_time: r.creation_time,
        last_modified_time: r.last_modified_time,
    }
}
