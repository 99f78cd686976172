//! The `/rest` wire: `{"value": ...}` answers, the request envelopes and `~action`
//! values of its operations. What handlers (de)serialize is what the document shows.

use actix_web::{body::BoxBody, HttpRequest, HttpResponse, Responder};
use serde::{Deserialize, Serialize};
use utoipa::{
    openapi::{RefOr, Schema},
    PartialSchema, ToSchema,
};

use crate::{
    api::{
        extract::{json_bodies, ActionName, Body},
        wire::{action_bodies, one_of, AddSpec, Alternatives, CreateSpec, PrepareSpec},
    },
    domain::{
        catalog::{ItemFindSpec, ItemModelSpec, LibraryFindSpec, LibraryModelSpec},
        models::{
            DownloadFileInfo, DownloadSessionModel, ItemFileInfo, ItemModel, LibraryModel,
            SessionInfo, StorageInfo, UpdateFileInfo, UpdateSessionModel, ValidationResult,
        },
    },
    error::Result,
};

// ----------------------------------------------------------------- answers

/// Every successful `/rest` answer with a result is `{"value": ...}` (200).
macro_rules! rest_values {
    ($($name:ident($ty:ty) $doc:literal;)*) => {
        $(
            #[doc = $doc]
            #[derive(Serialize, ToSchema)]
            pub struct $name {
                pub value: $ty,
            }

            impl From<$ty> for $name {
                fn from(value: $ty) -> Self {
                    $name { value }
                }
            }

            impl Responder for $name {
                type Body = BoxBody;

                fn respond_to(self, _: &HttpRequest) -> HttpResponse {
                    HttpResponse::Ok().json(self)
                }
            }
        )*
    };
}

rest_values! {
    RestValueString(String) "`{\"value\": string}`: a new id, or the login token.";
    RestValueStrings(Vec<String>) "`{\"value\": [string]}`: a list of ids.";
    RestValueSessionInfo(SessionInfo) "`{\"value\": SessionInfo}`: who the login token belongs to.";
    RestValueLibrary(LibraryModel) "`{\"value\": LibraryModel}`.";
    RestValueItem(ItemModel) "`{\"value\": ItemModel}`.";
    RestValueItemFile(ItemFileInfo) "`{\"value\": ItemFileInfo}`.";
    RestValueItemFiles(Vec<ItemFileInfo>) "`{\"value\": [ItemFileInfo]}`.";
    RestValueDownloadSession(DownloadSessionModel) "`{\"value\": DownloadSessionModel}`.";
    RestValueDownloadFile(DownloadFileInfo) "`{\"value\": DownloadFileInfo}`.";
    RestValueDownloadFiles(Vec<DownloadFileInfo>) "`{\"value\": [DownloadFileInfo]}`.";
    RestValueStorageInfos(Vec<StorageInfo>) "`{\"value\": [StorageInfo]}`.";
    RestValueUpdateSession(UpdateSessionModel) "`{\"value\": UpdateSessionModel}`.";
    RestValueUpdateFile(UpdateFileInfo) "`{\"value\": UpdateFileInfo}`.";
    RestValueUpdateFiles(Vec<UpdateFileInfo>) "`{\"value\": [UpdateFileInfo]}`.";
    RestValueValidation(ValidationResult) "`{\"value\": ValidationResult}`.";
}

/// `POST /rest/com/vmware/cis/session`: the token (login) or, with `~action=get`, its owner.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum RestLoginOrWhoAmI {
    Token(RestValueString),
    WhoAmI(RestValueSessionInfo),
}

/// `POST /rest/.../download-session`: the new id (create) or, with `~action=list`, the ids.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum RestIdOrIds {
    Id(RestValueString),
    Ids(RestValueStrings),
}

impl Responder for RestIdOrIds {
    type Body = BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse {
        HttpResponse::Ok().json(self)
    }
}

/// Void operations answer 200 with no body (not 204 as on `/api`).
pub struct Void;

impl Responder for Void {
    type Body = BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse {
        HttpResponse::Ok().finish()
    }
}

// ----------------------------------------------------------------- actions

macro_rules! actions {
    ($($(#[$meta:meta])* $name:ident { $($variant:ident),+ })*) => {
        $(
            $(#[$meta])*
            #[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, ToSchema)]
            #[serde(rename_all = "kebab-case")]
            pub enum $name {
                $($variant),+
            }

            impl ActionName for $name {}
        )*
    };
}

actions! {
    /// `?~action=` of `POST /rest/com/vmware/cis/session` (absent: login).
    RestSessionAction { Get }
    /// `?~action=` of `POST /rest/.../download-session` (absent: create).
    RestCollectionAction { List }
    /// `?~action=` of `POST /rest/.../download-session/id:{id}`.
    RestSessionIdAction { List, KeepAlive, Cancel, Fail }
    /// `?~action=` of `POST /rest/.../downloadsession/file/id:{id}`.
    RestFileAction { Get, Prepare }
    /// `?~action=` of `POST /rest/.../library/item/file/id:{id}`.
    RestItemFileAction { Get }
    /// `?~action=` of `POST /rest/com/vmware/content/library`.
    RestLibraryAction { Find }
    /// `?~action=` of `POST /rest/com/vmware/content/library/item` (absent: create).
    RestItemAction { Find }
    /// `?~action=` of `POST /rest/.../library/item/storage/id:{id}`.
    RestStorageAction { Get }
    /// `?~action=` of `POST /rest/.../update-session/id:{id}`.
    RestUpdateIdAction { KeepAlive, Complete, Cancel, Fail }
    /// `?~action=` of `POST /rest/.../updatesession/file/id:{id}`.
    RestUpdateFileAction { Add, Remove, Get, List, Validate }
}

/// Body of `POST /rest/.../updatesession/file/id:{id}?~action=add`: the AddSpec inside `file_spec`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestAddBody {
    pub file_spec: AddSpec,
}

/// The 200 answer with a body of a file action of an update session on `/rest`:
/// `{"value": ...}` of one file (add, get), the files (list) or the validation.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum RestUpdateFileValue {
    File(RestValueUpdateFile),
    Files(RestValueUpdateFiles),
    Validation(RestValueValidation),
}

/// What a file action of an update session answers on `/rest` (built once per
/// request and moved once into the response: its size does not matter).
#[allow(clippy::large_enum_variant)]
pub enum RestUpdateFileAnswer {
    Value(RestUpdateFileValue),
    Void,
}

impl Responder for RestUpdateFileAnswer {
    type Body = BoxBody;

    fn respond_to(self, req: &HttpRequest) -> HttpResponse {
        match self {
            RestUpdateFileAnswer::Value(RestUpdateFileValue::File(v)) => v.respond_to(req),
            RestUpdateFileAnswer::Value(RestUpdateFileValue::Files(v)) => v.respond_to(req),
            RestUpdateFileAnswer::Value(RestUpdateFileValue::Validation(v)) => v.respond_to(req),
            RestUpdateFileAnswer::Void => Void.respond_to(req),
        }
    }
}

// ------------------------------------------------------------------ bodies

/// Body of create (`POST /rest/.../download-session`): the spec travels inside `create_spec`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestCreateBody {
    /// The same token from the same user answers the same session id.
    #[schema(example = "6f9d2c4e-1b7a-4e0f-9c3d-2a8b5e7f1c90")]
    pub client_token: Option<String>,
    /// Only `library_item_id` is used.
    // Defaulted so that a missing spec gets the contract's own error (no item).
    #[serde(default)]
    #[schema(required = true)]
    pub create_spec: CreateSpec,
}

/// Body of `POST /rest/.../download-session?~action=list`, the generic vAPI form of list.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestListBody {
    /// Only the sessions of this item.
    pub library_item_id: Option<String>,
}

/// Body of `POST /rest/.../downloadsession/file/id:{id}?~action=get`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestFileNameBody {
    #[schema(example = "disk-0.vmdk")]
    pub file_name: String,
}

/// Body of `POST /rest/.../library/item/file/id:{id}?~action=get`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestItemFileBody {
    #[schema(example = "disk-0.vmdk")]
    pub name: String,
}

/// Body of `POST /rest/com/vmware/content/library?~action=find`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestLibraryFindBody {
    /// An absent spec is an empty one: `invalid_argument`.
    #[serde(default)]
    #[schema(required = true)]
    pub spec: LibraryFindSpec,
}

/// Body of `POST /rest/com/vmware/content/library/item?~action=find`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestItemFindBody {
    /// An absent spec is an empty one: `invalid_argument`.
    #[serde(default)]
    #[schema(required = true)]
    pub spec: ItemFindSpec,
}

/// Body of `POST /rest/com/vmware/content/local-library`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestLibraryCreateBody {
    /// The same token from the same user answers the same library id.
    #[schema(example = "6f9d2c4e-1b7a-4e0f-9c3d-2a8b5e7f1c90")]
    pub client_token: Option<String>,
    pub create_spec: LibraryModelSpec,
}

/// Body of `PATCH /rest/com/vmware/content/{local-library,library}/id:{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestLibraryUpdateBody {
    pub update_spec: LibraryModelSpec,
}

/// Body of `POST /rest/com/vmware/content/library/item` (create).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestItemCreateBody {
    /// The same token from the same user answers the same item id.
    #[schema(example = "6f9d2c4e-1b7a-4e0f-9c3d-2a8b5e7f1c90")]
    pub client_token: Option<String>,
    pub create_spec: ItemModelSpec,
}

/// Body of `PATCH /rest/com/vmware/content/library/item/id:{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestItemUpdateBody {
    pub update_spec: ItemModelSpec,
}

json_bodies! {
    // Without a body, create finds no item and says so; list lists every session.
    RestCreateBody: default;
    RestListBody: default;
    RestAddBody: needs "\"file_spec\"";
    RestFileNameBody: needs "file_name";
    RestItemFileBody: needs "name";
    RestLibraryFindBody: default;
    RestItemFindBody: default;
    RestLibraryCreateBody: needs "create_spec";
    RestLibraryUpdateBody: needs "update_spec";
    RestItemCreateBody: needs "create_spec";
    RestItemUpdateBody: needs "update_spec";
}

/// `POST /rest/com/vmware/content/library/item` with the body its action read:
/// create (no `~action`) reads a [`RestItemCreateBody`], `~action=find` a [`RestItemFindBody`].
pub enum RestItemCollectionBody {
    Create(Box<RestItemCreateBody>),
    Find(RestItemFindBody),
}

impl RestItemCollectionBody {
    pub async fn read(action: Option<RestItemAction>, body: Body) -> Result<Self> {
        Ok(match action {
            None => RestItemCollectionBody::Create(Box::new(body.json().await?)),
            Some(RestItemAction::Find) => RestItemCollectionBody::Find(body.json().await?),
        })
    }
}

/// The bodies item create and find read.
type ItemCollectionBodies = (RestItemCreateBody, RestItemFindBody);

impl PartialSchema for RestItemCollectionBody {
    fn schema() -> RefOr<Schema> {
        one_of::<ItemCollectionBodies>("Body of `POST /rest/com/vmware/content/library/item`: create reads a `RestItemCreateBody`, `~action=find` a `RestItemFindBody`. A field the action does not read is `invalid_argument`.")
    }
}

impl ToSchema for RestItemCollectionBody {
    fn schemas(out: &mut Vec<(String, RefOr<Schema>)>) {
        ItemCollectionBodies::schemas(out);
    }
}

/// `POST /rest/.../download-session` with the body its action read: create (no
/// `~action`) reads a [`RestCreateBody`], `~action=list` a [`RestListBody`].
pub enum RestCollectionBody {
    Create(Box<RestCreateBody>),
    List(RestListBody),
}

impl RestCollectionBody {
    pub async fn read(action: Option<RestCollectionAction>, body: Body) -> Result<Self> {
        Ok(match action {
            None => RestCollectionBody::Create(Box::new(body.json().await?)),
            Some(RestCollectionAction::List) => RestCollectionBody::List(body.json().await?),
        })
    }
}

/// The bodies create and list read.
type CollectionBodies = (RestCreateBody, RestListBody);

impl PartialSchema for RestCollectionBody {
    fn schema() -> RefOr<Schema> {
        one_of::<CollectionBodies>("Body of `POST /rest/.../download-session`: create reads a `RestCreateBody`, `~action=list` a `RestListBody`. A field the action does not read is `invalid_argument`.")
    }
}

impl ToSchema for RestCollectionBody {
    fn schemas(out: &mut Vec<(String, RefOr<Schema>)>) {
        CollectionBodies::schemas(out);
    }
}

action_bodies! {
    /// `POST /rest/.../downloadsession/file/id:{id}` with the body its action read.
    pub enum RestFileActionBody for RestFileAction = any_of
        "Body of `POST /rest/.../downloadsession/file/id:{id}`: `get` reads a `RestFileNameBody`, `prepare` a `PrepareSpec`." {
        Get(RestFileNameBody),
        Prepare(PrepareSpec),
    }
}
