//! What `/api` and `/rest` share on the wire: request bodies, the session actions and
//! the bodies they read, and answers that are one thing or a list. Every type here is
//! both what a handler (de)serializes and what the OpenAPI document shows.

use serde::{Deserialize, Serialize};
use utoipa::{
    openapi::{
        schema::{AnyOfBuilder, OneOfBuilder},
        Ref, RefOr, Schema,
    },
    ToSchema,
};

use super::extract::{json_bodies, ActionName, Body};
use crate::{
    domain::{
        catalog::{ItemFindSpec, ItemModelSpec, LibraryFindSpec, LibraryModelSpec},
        models::{
            ChecksumInfo, DownloadFileInfo, ItemFileInfo, TransferEndpoint, UpdateFileInfo,
            ValidationResult,
        },
        update::{FileAdd, PullPolicy, SourceType},
        Caller, ClientErrorMessage, EndpointType, FileName, ItemId, LibraryId, Parsed, Progress,
        SessionId, UpdateSessionId,
    },
    error::Result,
    service::Service,
};

// ------------------------------------------------------------------ unions

/// A request that is an action with the body it reads: declares the enum (one variant per
/// action, carrying the body that action takes, if any), `read` (which reads exactly that
/// body) and its schema: the union of those bodies (`one_of` when their required fields
/// tell them apart, else `any_of`).
macro_rules! action_bodies {
    ($(
        $(#[$meta:meta])*
        pub enum $name:ident for $action:ident = $union:ident $description:literal {
            $($variant:ident $(($body:ty))?),+ $(,)?
        }
    )*) => {
        $(
            $(#[$meta])*
            pub enum $name {
                $($variant $(($body))?),+
            }

            impl $name {
                pub async fn read(
                    action: $action,
                    body: $crate::api::extract::Body,
                ) -> $crate::error::Result<Self> {
                    Ok(match action {
                        $($action::$variant => $name::$variant $((body.json::<$body>().await?))?),+
                    })
                }
            }

            impl utoipa::PartialSchema for $name {
                fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
                    $crate::api::wire::$union::<($($($body,)?)+)>($description)
                }
            }

            impl utoipa::ToSchema for $name {
                fn schemas(
                    out: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::Schema>)>,
                ) {
                    <($($($body,)?)+) as $crate::api::wire::Alternatives>::schemas(out);
                }
            }
        )*
    };
}

pub(crate) use action_bodies;

/// Named schemas a body may be one of (a tuple of them).
pub trait Alternatives {
    fn refs() -> Vec<RefOr<Schema>>;
    fn schemas(out: &mut Vec<(String, RefOr<Schema>)>);
}

macro_rules! alternatives {
    ($($T:ident),+) => {
        impl<$($T: ToSchema),+> Alternatives for ($($T,)+) {
            fn refs() -> Vec<RefOr<Schema>> {
                vec![$(Ref::from_schema_name($T::name()).into()),+]
            }
            fn schemas(out: &mut Vec<(String, RefOr<Schema>)>) {
                $(
                    out.push(($T::name().into_owned(), $T::schema()));
                    $T::schemas(out);
                )+
            }
        }
    };
}

alternatives!(A, B);

/// The schema of a body that is exactly one of `L` (their required fields tell them apart).
pub fn one_of<L: Alternatives>(description: &str) -> RefOr<Schema> {
    let mut builder = OneOfBuilder::new().description(Some(description));
    for item in L::refs() {
        builder = builder.item(item);
    }
    builder.into()
}

/// The schema of a body that is one or more of `L` (when one may also be valid as another).
pub fn any_of<L: Alternatives>(description: &str) -> RefOr<Schema> {
    let mut builder = AnyOfBuilder::new().description(Some(description));
    for item in L::refs() {
        builder = builder.item(item);
    }
    builder.into()
}

// ------------------------------------------------------------------ bodies

/// Create spec of a download session (a DownloadSessionModel; only
/// `library_item_id` is used, the other fields are accepted and ignored).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSpec {
    /// The library item whose files the session downloads (required).
    // Read as optional so that a missing id gets the contract's own error.
    #[schema(required = true, nullable = false, value_type = String,
        example = "1c3a9e55-0d6e-4b5e-8f1a-3e2d4c5b6a79")]
    pub library_item_id: Option<String>,
    #[schema(value_type = Option<String>)]
    pub id: Option<serde_json::Value>,
    #[schema(value_type = Option<String>)]
    pub library_item_content_version: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub error_message: Option<serde_json::Value>,
    #[schema(value_type = Option<i64>)]
    pub client_progress: Option<serde_json::Value>,
    #[schema(value_type = Option<String>)]
    pub state: Option<serde_json::Value>,
    #[schema(value_type = Option<String>)]
    pub expiration_time: Option<serde_json::Value>,
}

/// Body of keep-alive.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeepAliveSpec {
    /// Client progress, 0..100.
    #[schema(minimum = 0, maximum = 100, example = 42)]
    pub progress: Option<i64>,
}

impl KeepAliveSpec {
    pub fn progress(&self) -> Result<Option<Progress>> {
        self.progress.map(Progress::new).transpose()
    }
}

/// Body of fail.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailSpec {
    /// Why the client gave up; shown in the session's `error_message`.
    // Read as optional so that a missing message gets the contract's own error.
    #[schema(required = true, nullable = false, value_type = String, example = "disk full")]
    pub client_error_message: Option<String>,
}

/// Body of prepare.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrepareSpec {
    #[schema(example = "disk-0.vmdk")]
    pub file_name: String,
    /// `HTTPS` (default) or `DIRECT` (needs a session created with `ContentLibrary.ReadStorage`;
    /// on a local transfer store without `storage.transfer.direct_base`, refused as
    /// `INVALID_ARGUMENT` `...file.direct_unavailable`). A DIRECT presigned URL lives at
    /// most `storage.direct_url_seconds`; each `get` hands a fresh one.
    // Read as text and parsed by the domain, so every surface answers a bad
    // value with the same error.
    #[schema(value_type = Option<EndpointType>)]
    endpoint_type: Option<String>,
}

json_bodies! {
    // Without a body, create finds no item and says so; keep-alive changes no progress;
    // fail has no message and says so.
    CreateSpec: default;
    KeepAliveSpec: default;
    FailSpec: default;
    PrepareSpec: needs "file_name";
    // An absent find spec is an empty one, which find refuses in its turn.
    LibraryFindSpec: default;
    ItemFindSpec: default;
    LibraryModelSpec: needs "a LibraryModel";
    ItemModelSpec: needs "an ItemModel";
}

impl PrepareSpec {
    /// The file, its error reported once the session is known to exist.
    pub fn file_name(&self) -> Parsed<FileName> {
        FileName::parse(&self.file_name)
    }

    pub fn endpoint_type(&self) -> Result<Option<EndpointType>> {
        self.endpoint_type.as_deref().map(str::parse).transpose()
    }
}

// ------------------------------------------------------------------ queries

crate::query_params! {
    /// `GET .../library/item` on both surfaces.
    pub struct LibraryItemsQuery {
        /// The library.
        #[param(value_type = String, example = "5d2f8a10-7c3b-4e9d-a1f6-0e4b3c2d1a98")]
        pub library_id: LibraryId,
    }
}

crate::query_params! {
    /// `GET .../library/item/{id}/storage` on `/api`.
    pub struct StorageQuery {
        /// Only this file (still answered as a list; `NOT_FOUND` when the item has none of that name).
        #[param(example = "disk-0.vmdk")]
        pub file_name: Option<String>,
    }
}

crate::query_params! {
    /// `GET .../download-session` on both surfaces.
    pub struct SessionsQuery {
        /// Only the sessions of this item.
        #[param(value_type = Option<String>, example = "1c3a9e55-0d6e-4b5e-8f1a-3e2d4c5b6a79")]
        pub library_item_id: Option<Parsed<ItemId>>,
    }
}

// ------------------------------------------------------------ session actions

/// `?action=` of `POST /api/content/library/item/download-session/{id}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SessionAction {
    KeepAlive,
    Cancel,
    Fail,
}

impl ActionName for SessionAction {}

action_bodies! {
    /// A session action with the body it read: keep-alive reads a [`KeepAliveSpec`], fail a
    /// [`FailSpec`], cancel nothing. A field the action does not read is `INVALID_ARGUMENT`.
    pub enum SessionActionBody for SessionAction = one_of
        "The body of a session action: keep-alive reads a `KeepAliveSpec`, fail a `FailSpec`, cancel none. A field the action does not read is `INVALID_ARGUMENT`." {
        KeepAlive(KeepAliveSpec),
        Cancel,
        Fail(FailSpec),
    }
}

impl SessionActionBody {
    pub async fn run(self, service: &Service, caller: &Caller, id: SessionId) -> Result<()> {
        match self {
            SessionActionBody::KeepAlive(spec) => {
                service.keep_alive(caller, id, spec.progress()?).await
            }
            SessionActionBody::Cancel => service.cancel(caller, id).await,
            SessionActionBody::Fail(spec) => {
                let message = ClientErrorMessage::parse(spec.client_error_message.as_deref())?;
                service.fail(caller, id, message).await
            }
        }
    }
}

/// `?action=` of `POST /api/content/library/item/download-session/{id}/file`.
#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FileAction {
    Prepare,
}

impl ActionName for FileAction {}

// ------------------------------------------------------------ catalog actions

/// `?action=` of `POST /api/content/library`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LibraryAction {
    Find,
}

impl ActionName for LibraryAction {}

/// `?action=` of `POST /api/content/library/item` (absent: create).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ItemAction {
    Find,
}

impl ActionName for ItemAction {}

/// `POST /api/content/library/item` with the body its action read: create (no
/// `action`) reads an [`ItemModelSpec`], `action=find` an [`ItemFindSpec`].
pub enum ItemCollectionBody {
    Create(Box<ItemModelSpec>),
    Find(ItemFindSpec),
}

impl ItemCollectionBody {
    pub async fn read(action: Option<ItemAction>, body: Body) -> Result<Self> {
        Ok(match action {
            None => ItemCollectionBody::Create(Box::new(body.json().await?)),
            Some(ItemAction::Find) => ItemCollectionBody::Find(body.json().await?),
        })
    }
}

/// The bodies item create and find read.
type ItemCollectionBodies = (ItemModelSpec, ItemFindSpec);

impl utoipa::PartialSchema for ItemCollectionBody {
    fn schema() -> RefOr<Schema> {
        any_of::<ItemCollectionBodies>("Body of `POST /api/content/library/item`: create reads an `ItemModelSpec`, `action=find` an `ItemFindSpec`. A field the action does not read is `INVALID_ARGUMENT`.")
    }
}

impl ToSchema for ItemCollectionBody {
    fn schemas(out: &mut Vec<(String, RefOr<Schema>)>) {
        ItemCollectionBodies::schemas(out);
    }
}

// ----------------------------------------------------------------- answers

/// `GET .../download-session/{id}/file`: the list, or one file with `?file_name=`.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum DownloadFileInfoOrList {
    One(Box<DownloadFileInfo>),
    List(Vec<DownloadFileInfo>),
}

/// `GET /api/content/library/item/{id}/file`: the list, or one file with `?name=`.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum ItemFileInfoOrList {
    One(ItemFileInfo),
    List(Vec<ItemFileInfo>),
}

// ------------------------------------------------------------ update sessions

/// Body of `updatesession.file.add` (`AddSpec`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "photon.iso", "source_type": "PUSH", "size": 10485760,
    "checksum_info": {"algorithm": "SHA256", "checksum": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}}))]
pub struct AddSpec {
    /// The file's name in the item.
    pub name: String,
    /// `PUSH` (the client sends the bytes to `upload_endpoint`); `PULL` needs
    /// `uploads.pull_allow`.
    #[schema(value_type = SourceType)]
    pub source_type: Option<String>,
    /// PULL only: `{"uri", "ssl_certificate_thumbprint"?}` on a host `uploads.pull_allow` names.
    #[schema(value_type = Option<TransferEndpoint>)]
    pub source_endpoint: Option<serde_json::Value>,
    /// Bytes the upload must have (more is refused as it arrives).
    pub size: Option<i64>,
    /// SHA256 the upload must have.
    pub checksum_info: Option<ChecksumInfo>,
}

impl AddSpec {
    /// The add as the core sees it, its error reported once the session is known.
    pub fn parse(&self, policy: &PullPolicy) -> Parsed<FileAdd> {
        let source_type = match self.source_type.as_deref() {
            None => None,
            Some("PUSH") => Some(SourceType::Push),
            Some("PULL") => Some(SourceType::Pull),
            Some("NONE") => Some(SourceType::None),
            Some(other) => {
                return Err(crate::error::Error::invalid_argument(
                    "com.vmware.content.library.item.updatesession.file.invalid_source_type",
                    format!("source_type {other:?} is not one of PUSH, PULL, NONE."),
                    &[other],
                ))
            }
        };
        let endpoint = self.source_endpoint.as_ref().map(|e| {
            (
                e.get("uri").and_then(|u| u.as_str()),
                e.get("ssl_certificate_thumbprint").and_then(|t| t.as_str()),
            )
        });
        FileAdd::parse(
            &self.name,
            source_type,
            endpoint,
            self.size,
            self.checksum_info.as_ref().map(|c| c.algorithm),
            self.checksum_info.as_ref().map(|c| c.checksum.as_str()),
            policy,
        )
    }
}

/// Body of `updatesession.file.remove`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveSpec {
    #[schema(example = "photon.iso")]
    pub file_name: String,
}

json_bodies! {
    AddSpec: needs "an AddSpec";
    RemoveSpec: needs "\"file_name\"";
}

/// `?action=` of `POST /api/content/library/item/update-session/{id}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateAction {
    KeepAlive,
    Complete,
    Cancel,
    Fail,
}

impl ActionName for UpdateAction {}

action_bodies! {
    /// An update-session action with the body it read: keep-alive reads a
    /// [`KeepAliveSpec`], fail a [`FailSpec`], complete and cancel nothing.
    pub enum UpdateActionBody for UpdateAction = one_of
        "The body of an update-session action: keep-alive reads a `KeepAliveSpec`, fail a `FailSpec`, complete and cancel none. A field the action does not read is `INVALID_ARGUMENT`." {
        KeepAlive(KeepAliveSpec),
        Complete,
        Cancel,
        Fail(FailSpec),
    }
}

impl UpdateActionBody {
    pub async fn run(self, service: &Service, caller: &Caller, id: UpdateSessionId) -> Result<()> {
        match self {
            UpdateActionBody::KeepAlive(spec) => {
                service
                    .update_keep_alive(caller, id, spec.progress()?)
                    .await
            }
            UpdateActionBody::Complete => service.complete_update(caller, id).await,
            UpdateActionBody::Cancel => service.cancel_update(caller, id).await,
            UpdateActionBody::Fail(spec) => {
                let message = ClientErrorMessage::parse(spec.client_error_message.as_deref())?;
                service.fail_update(caller, id, message).await
            }
        }
    }
}

/// `?action=` of `POST /api/content/library/item/update-session/{id}/file`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateFileAction {
    Add,
    Remove,
    Validate,
}

impl ActionName for UpdateFileAction {}

action_bodies! {
    /// A file action of an update session with the body it read.
    pub enum UpdateFileActionBody for UpdateFileAction = one_of
        "The body of a file action: add reads an `AddSpec`, remove a `RemoveSpec`, validate none." {
        Add(AddSpec),
        Remove(RemoveSpec),
        Validate,
    }
}

/// The 200 answer of a file action: add's file info or validate's result.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum UpdateFileResult {
    /// add: the file's info.
    Added(Box<UpdateFileInfo>),
    /// validate: what is missing or wrong.
    Validated(ValidationResult),
}

/// What a file action answers.
pub enum UpdateFileAnswer {
    /// add or validate: 200 with a body.
    Done(UpdateFileResult),
    /// remove: nothing.
    Removed,
}

impl UpdateFileActionBody {
    pub async fn run(
        self,
        service: &Service,
        caller: &Caller,
        id: UpdateSessionId,
    ) -> Result<UpdateFileAnswer> {
        Ok(match self {
            UpdateFileActionBody::Add(spec) => {
                UpdateFileAnswer::Done(UpdateFileResult::Added(Box::new(
                    service
                        .add_update_file(caller, id, spec.parse(service.pull_policy()))
                        .await?,
                )))
            }
            UpdateFileActionBody::Remove(spec) => {
                service
                    .remove_update_file(caller, id, FileName::parse_or_missing(&spec.file_name))
                    .await?;
                UpdateFileAnswer::Removed
            }
            UpdateFileActionBody::Validate => UpdateFileAnswer::Done(UpdateFileResult::Validated(
                service.validate_update_files(caller, id).await?,
            )),
        })
    }
}

/// `GET .../update-session/{id}/file`: the list, or one file with `?file_name=`.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum UpdateFileInfoOrList {
    One(Box<UpdateFileInfo>),
    List(Vec<UpdateFileInfo>),
}
