//! The `/api` surface (vSphere 7.0U2+ REST): plain JSON, `?action=`, 204 for void.
//! Each operation is one block: its documentation, a one-line signature naming what it
//! parses (in the order it is checked), and the core call.

use actix_web::{body::BoxBody, web, HttpRequest, HttpResponse, Responder};
use serde::Serialize;

use super::{
    errors::{
        ApiError, ApiErrors, BadRequest, Conflict, NotFound, PayloadTooLarge, Unauthenticated,
        Unauthorized,
    },
    extract::{delete, get, patch, post, Action, BasicAuth, Body, ClientTokenHeader, Id, Json, Query},
    wire::*,
};
use crate::{
    domain::{
        catalog::{ItemModelSpec, LibraryFindSpec, LibraryModelSpec, LibraryUpdateVia},
        models::{
            DownloadFileInfo, DownloadSessionModel, ItemModel, LibraryModel, SessionInfo, StorageInfo,
            UpdateSessionModel,
        },
        Caller, FileName, ItemId, LibraryId, LoginToken, NewSession, SessionId, UpdateSessionId,
    },
    service::Service,
};

type Reply<T> = Result<T, ApiError>;

/// 200 with the core's answer as JSON.
fn ok<T>(answer: crate::error::Result<T>) -> Reply<web::Json<T>> {
    Ok(web::Json(answer?))
}

/// 204 once the core is done.
fn done(answer: crate::error::Result<()>) -> Reply<NoContent> {
    answer?;
    Ok(NoContent)
}

/// 201 with a JSON body.
pub struct Created<T>(pub T);

impl<T: Serialize> Responder for Created<T> {
    type Body = BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse {
        HttpResponse::Created().json(self.0)
    }
}

/// `POST /api/content/library/item`: 201 with the new id (create), 200 with the ids (find).
pub enum ItemPosted {
    Created(String),
    Found(Vec<String>),
}

impl Responder for ItemPosted {
    type Body = BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse {
        match self {
            ItemPosted::Created(id) => HttpResponse::Created().json(id),
            ItemPosted::Found(ids) => HttpResponse::Ok().json(ids),
        }
    }
}

/// 204: a void operation succeeded.
pub struct NoContent;

impl Responder for NoContent {
    type Body = BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse {
        HttpResponse::NoContent().finish()
    }
}

const SESSIONS: &str = "/api/content/library/item/download-session";
const UPDATES: &str = "/api/content/library/item/update-session";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/session")
            .route(post(login))
            .route(get(whoami))
            .route(delete(logout)),
    )
    .service(
        web::resource(SESSIONS)
            .route(post(create_session))
            .route(get(list_sessions)),
    )
    .service(
        web::resource(format!("{SESSIONS}/{{id}}"))
            .route(get(get_session))
            .route(post(session_action))
            .route(delete(delete_session)),
    )
    .service(
        web::resource(format!("{SESSIONS}/{{id}}/file"))
            .route(get(files))
            .route(post(file_action)),
    )
    .service(
        web::resource(UPDATES)
            .route(post(create_update_session))
            .route(get(list_update_sessions)),
    )
    .service(
        web::resource(format!("{UPDATES}/{{id}}"))
            .route(get(get_update_session))
            .route(post(update_session_action))
            .route(delete(delete_update_session)),
    )
    .service(
        web::resource(format!("{UPDATES}/{{id}}/file"))
            .route(get(update_files))
            .route(post(update_file_action)),
    )
    .service(
        web::resource("/api/content/library")
            .route(get(list_libraries))
            .route(post(find_libraries)),
    )
    // Literal children of /api/content/library before its {id}.
    .service(
        web::resource("/api/content/library/item")
            .route(get(list_items))
            .route(post(item_post)),
    )
    .service(
        web::resource("/api/content/library/item/{id}")
            .route(get(get_item))
            .route(patch(update_item))
            .route(delete(delete_item)),
    )
    .service(web::resource("/api/content/library/item/{id}/file").route(get(item_files)))
    .service(web::resource("/api/content/library/item/{id}/storage").route(get(item_storage)))
    .service(
        web::resource("/api/content/library/{id}")
            .route(get(get_library))
            .route(patch(update_library)),
    )
    .service(
        web::resource("/api/content/local-library")
            .route(post(create_local_library))
            .route(get(list_local_libraries)),
    )
    .service(
        web::resource("/api/content/local-library/{id}")
            .route(get(get_local_library))
            .route(patch(update_local_library))
            .route(delete(delete_local_library)),
    )
    .service(web::resource("/api/content/subscribed-library").route(get(list_subscribed_libraries)))
    .service(web::resource("/api/content/subscribed-library/{id}").route(get(get_subscribed_library)));
}

crate::query_params! {
    /// `GET /api/content/library/item/{id}/file`.
    pub struct ItemFileQuery {
        /// Only this file (`INVALID_ARGUMENT` when the item has none of that name).
        #[param(example = "disk-0.vmdk")]
        pub name: Option<String>,
    }
}

crate::query_params! {
    /// `GET /api/content/library/item/download-session/{id}/file`.
    pub struct SessionFileQuery {
        /// Only this file (`INVALID_ARGUMENT` when the session has none of that name).
        #[param(example = "disk-0.vmdk")]
        pub file_name: Option<String>,
    }
}

// ------------------------------------------------------------------- session

/// Log in
///
/// Checks the user name and password of the Basic header and answers a new
/// login token (a JSON string) for the `vmware-api-session-id` header.
#[utoipa::path(post, path = "/api/session", operation_id = "SessionCreate", tag = "session", security(("basic_auth" = [])),
    responses((status = 201, description = "The login token.", body = String, content_type = "application/json",
        example = json!("q8yW4rXl0d3JvLfS2nHk7tA9bQpZ1mVeC6uGxYiOaNs")), ApiErrors<(Unauthenticated,)>))]
async fn login(service: Service, login: BasicAuth) -> Reply<Created<String>> {
    let token = service.login(&login.user, &login.password, login.client).await?;
    Ok(Created(token.into_string()))
}

/// Who am I
///
/// The user the login token belongs to, and when it was created and last used.
#[utoipa::path(get, path = "/api/session", operation_id = "SessionGet", tag = "session", security(("api_key" = [])),
    responses((status = 200, description = "The token's owner.", body = SessionInfo), ApiErrors<(Unauthenticated,)>))]
async fn whoami(service: Service, token: LoginToken) -> Reply<web::Json<SessionInfo>> {
    ok(service.whoami(&token).await)
}

/// Log out
///
/// Ends the login: the token stops working on every instance.
#[utoipa::path(delete, path = "/api/session", operation_id = "SessionDelete", tag = "session", security(("api_key" = [])),
    responses((status = 204, description = "Logged out."), ApiErrors<(Unauthenticated,)>))]
async fn logout(service: Service, token: LoginToken) -> Reply<NoContent> {
    done(service.logout(&token).await)
}

// ------------------------------------------------------------------- catalog

/// List libraries
///
/// Ids of every library (`System.Read`).
#[utoipa::path(get, path = "/api/content/library", operation_id = "LibraryList", tag = "library", security(("api_key" = [])),
    responses((status = 200, description = "Library ids.", body = Vec<String>, example = json!(["5d2f8a10-7c3b-4e9d-a1f6-0e4b3c2d1a98"])),
        ApiErrors<(Unauthenticated, Unauthorized)>))]
async fn list_libraries(service: Service, caller: Caller) -> Reply<web::Json<Vec<String>>> {
    ok(service.list_libraries(&caller).await)
}

/// Get a library
#[utoipa::path(get, path = "/api/content/library/{id}", operation_id = "LibraryGet", tag = "library", security(("api_key" = [])),
    params(Id<LibraryId>),
    responses((status = 200, description = "The library.", body = LibraryModel), ApiErrors<(Unauthenticated, Unauthorized, NotFound)>))]
async fn get_library(service: Service, caller: Caller, Id(id): Id<LibraryId>) -> Reply<web::Json<LibraryModel>> {
    ok(service.get_library(&caller, id).await)
}

/// List the items of a library
#[utoipa::path(get, path = "/api/content/library/item", operation_id = "LibraryItemList", tag = "library", security(("api_key" = [])),
    params(LibraryItemsQuery),
    responses((status = 200, description = "Item ids.", body = Vec<String>, example = json!(["1c3a9e55-0d6e-4b5e-8f1a-3e2d4c5b6a79"])),
        ApiErrors<(BadRequest, Unauthenticated, Unauthorized, NotFound)>))]
async fn list_items(service: Service, caller: Caller, Query(query): Query<LibraryItemsQuery>) -> Reply<web::Json<Vec<String>>> {
    ok(service.list_items(&caller, query.library_id).await)
}

/// Create a library item (or, with `action=find`, find items)
///
/// Without `action`: creates an item without files in `library_id`
/// (`ContentLibrary.AddLibraryItem`), 201 with its id; `name` unique in the library without
/// case (`ALREADY_EXISTS`), `type` free (`ovf`, `iso`, ...; unset: `file`); the same
/// `Client-Token` from the same user answers the same id. Content comes in through an update session (or `import`).
/// With `action=find`: 200 with the ids of the items matching every property the
/// `FindSpec` sets (`name` and `type` without case); an empty spec is `INVALID_ARGUMENT`.
#[utoipa::path(post, path = "/api/content/library/item", operation_id = "LibraryItemCreateOrFind", tag = "library", security(("api_key" = [])),
    params(
        ("action" = Option<ItemAction>, Query, description = "`find`: find items; absent: create."),
        ("Client-Token" = Option<String>, Header, description = "create: idempotency token, 1 to 256 visible ASCII characters.",
            example = "6f9d2c4e-1b7a-4e0f-9c3d-2a8b5e7f1c90"),
    ),
    request_body(content = ItemCollectionBody, description = "create: an `ItemModelSpec`; find: an `ItemFindSpec`.",
        example = json!({"library_id": "5d2f8a10-7c3b-4e9d-a1f6-0e4b3c2d1a98", "name": "photon", "type": "iso"})),
    responses(
        (status = 201, description = "create: the new item's id.", body = String, content_type = "application/json"),
        (status = 200, description = "find: item ids.", body = Vec<String>, example = json!(["1c3a9e55-0d6e-4b5e-8f1a-3e2d4c5b6a79"])),
        ApiErrors<(BadRequest, Unauthenticated, Unauthorized, NotFound, PayloadTooLarge)>,
    ))]
async fn item_post(service: Service, caller: Caller, Action(action): Action<Option<ItemAction>>, ClientTokenHeader(token): ClientTokenHeader, body: Body) -> Reply<ItemPosted> {
    Ok(match ItemCollectionBody::read(action, body).await? {
        ItemCollectionBody::Create(spec) => ItemPosted::Created(service.create_item(&caller, spec.new_item(token.as_deref())).await?.to_string()),
        ItemCollectionBody::Find(spec) => ItemPosted::Found(service.find_items(&caller, spec.parse()).await?),
    })
}

/// Get a library item
#[utoipa::path(get, path = "/api/content/library/item/{id}", operation_id = "LibraryItemGet", tag = "library", security(("api_key" = [])),
    params(Id<ItemId>),
    responses((status = 200, description = "The item.", body = ItemModel), ApiErrors<(Unauthenticated, Unauthorized, NotFound)>))]
async fn get_item(service: Service, caller: Caller, Id(id): Id<ItemId>) -> Reply<web::Json<ItemModel>> {
    ok(service.get_item(&caller, id).await)
}

/// Update a library item
///
/// Name, description and type (`ContentLibrary.UpdateLibraryItem`); other fields are
/// ignored. A `version` other than the current one is `INVALID_ARGUMENT`; a name another
/// item of the library has (without case) `ALREADY_EXISTS`.
#[utoipa::path(patch, path = "/api/content/library/item/{id}", operation_id = "LibraryItemUpdate", tag = "library", security(("api_key" = [])),
    params(Id<ItemId>), request_body(content = ItemModelSpec, description = "The changes.", example = json!({"description": "Photon OS 5", "version": "1"})),
    responses((status = 204, description = "Updated."), ApiErrors<(BadRequest, Unauthenticated, Unauthorized, NotFound, PayloadTooLarge)>))]
async fn update_item(service: Service, caller: Caller, Id(id): Id<ItemId>, Json(spec): Json<ItemModelSpec>) -> Reply<NoContent> {
    done(service.update_item(&caller, id, spec.update()).await)
}

/// Delete a library item
///
/// The item and its files (`ContentLibrary.DeleteLibraryItem`). Its download sessions go
/// to `ERROR`, their files too, and their URIs stop at once on every instance; the bytes
/// leave the content store once no item references them.
#[utoipa::path(delete, path = "/api/content/library/item/{id}", operation_id = "LibraryItemDelete", tag = "library", security(("api_key" = [])),
    params(Id<ItemId>),
    responses((status = 204, description = "Deleted."), ApiErrors<(Unauthenticated, Unauthorized, NotFound)>))]
async fn delete_item(service: Service, caller: Caller, Id(id): Id<ItemId>) -> Reply<NoContent> {
    done(service.delete_item(&caller, id).await)
}

/// List (or get) the files of a library item
///
/// Without `name`, every file of the item's current content version; with it, that file.
#[utoipa::path(get, path = "/api/content/library/item/{id}/file", operation_id = "LibraryItemFileList", tag = "library",
    security(("api_key" = [])), params(Id<ItemId>, ItemFileQuery),
    responses((status = 200, description = "The files, or the one named.", body = ItemFileInfoOrList),
        ApiErrors<(BadRequest, Unauthenticated, Unauthorized, NotFound)>))]
async fn item_files(service: Service, caller: Caller, Id(id): Id<ItemId>, Query(query): Query<ItemFileQuery>) -> Reply<web::Json<ItemFileInfoOrList>> {
    Ok(web::Json(match query.name {
        Some(name) => ItemFileInfoOrList::One(service.get_item_file(&caller, id, FileName::parse_or_missing(&name)).await?),
        None => ItemFileInfoOrList::List(service.list_item_files(&caller, id).await?),
    }))
}

/// List (or get) the storage of a library item's files
///
/// Where each file of the item's current content version lies: the content store as
/// `storage_backing`, the URIs clients may use (`storage_uris`, possibly none), size,
/// checksum (`ContentLibrary.ReadStorage`). With `file_name`, that file's, still as a list
/// (VMware's `Storage.get` answers one entry per storage backing).
#[utoipa::path(get, path = "/api/content/library/item/{id}/storage", operation_id = "LibraryItemStorageList", tag = "library",
    security(("api_key" = [])), params(Id<ItemId>, StorageQuery),
    responses((status = 200, description = "The storage of the files, or of the one named.", body = Vec<StorageInfo>),
        ApiErrors<(BadRequest, Unauthenticated, Unauthorized, NotFound)>))]
async fn item_storage(service: Service, caller: Caller, Id(id): Id<ItemId>, Query(query): Query<StorageQuery>) -> Reply<web::Json<Vec<StorageInfo>>> {
    ok(match query.file_name {
        Some(name) => service.get_item_storage(&caller, id, FileName::parse_or_not_stored(&name)).await,
        None => service.list_item_storage(&caller, id).await,
    })
}

/// Find libraries
///
/// Ids of the libraries matching every property the `FindSpec` sets (`name` compared
/// without case, `type`); an empty spec is `INVALID_ARGUMENT`, no match `[]` (`System.Read`).
#[utoipa::path(post, path = "/api/content/library", operation_id = "LibraryFind", tag = "library", security(("api_key" = [])),
    params(("action" = LibraryAction, Query, description = "The operation.")),
    request_body(content = LibraryFindSpec, description = "What to match."),
    responses((status = 200, description = "Library ids.", body = Vec<String>, example = json!(["5d2f8a10-7c3b-4e9d-a1f6-0e4b3c2d1a98"])),
        ApiErrors<(BadRequest, Unauthenticated, Unauthorized, PayloadTooLarge)>))]
async fn find_libraries(service: Service, caller: Caller, _find: Action<LibraryAction>, Json(spec): Json<LibraryFindSpec>) -> Reply<web::Json<Vec<String>>> {
    ok(service.find_libraries(&caller, spec.parse()).await)
}

/// Update a library
///
/// Name and description (`ContentLibrary.UpdateLibrary`); other fields are ignored. A
/// `version` other than the current one is `INVALID_ARGUMENT`; a name another library
/// has (without case) is `ALREADY_EXISTS`.
#[utoipa::path(patch, path = "/api/content/library/{id}", operation_id = "LibraryUpdate", tag = "library", security(("api_key" = [])),
    params(Id<LibraryId>), request_body(content = LibraryModelSpec, description = "The changes.", example = json!({"description": "Installer images", "version": "1"})),
    responses((status = 204, description = "Updated."), ApiErrors<(BadRequest, Unauthenticated, Unauthorized, NotFound, PayloadTooLarge)>))]
async fn update_library(service: Service, caller: Caller, Id(id): Id<LibraryId>, Json(spec): Json<LibraryModelSpec>) -> Reply<NoContent> {
    done(service.update_library(&caller, id, spec.update(LibraryUpdateVia::Library), LibraryUpdateVia::Library).await)
}

/// Create a local library
///
/// A library in the service's content store (`ContentLibrary.CreateLocalLibrary`): `name`
/// required and unique without case (`ALREADY_EXISTS`), at most one storage backing
/// (accepted, see README), never published. The same `Client-Token` from the same user
/// answers the same id.
#[utoipa::path(post, path = "/api/content/local-library", operation_id = "LocalLibraryCreate", tag = "local_library", security(("api_key" = [])),
    params(("Client-Token" = Option<String>, Header, description = "Idempotency token, 1 to 256 visible ASCII characters (a UUID, as VMware asks).",
        example = "6f9d2c4e-1b7a-4e0f-9c3d-2a8b5e7f1c90")),
    request_body(content = LibraryModelSpec, description = "The library."),
    responses(
        (status = 201, description = "The new library's id.", body = String, content_type = "application/json",
            links(
                ("get" = (operation_id = "LocalLibraryGet", parameters(("id" = "$response.body")))),
                ("update" = (operation_id = "LocalLibraryUpdate", parameters(("id" = "$response.body")))),
                ("delete" = (operation_id = "LocalLibraryDelete", parameters(("id" = "$response.body")))),
            )),
        ApiErrors<(BadRequest, Unauthenticated, Unauthorized, PayloadTooLarge)>,
    ))]
async fn create_local_library(service: Service, caller: Caller, Json(spec): Json<LibraryModelSpec>, ClientTokenHeader(token): ClientTokenHeader) -> Reply<Created<String>> {
    let id = service.create_library(&caller, spec.new_library(token.as_deref())).await?;
    Ok(Created(id.to_string()))
}

/// List local libraries
///
/// Ids of every library (all are local here; `System.Read`).
#[utoipa::path(get, path = "/api/content/local-library", operation_id = "LocalLibraryList", tag = "local_library", security(("api_key" = [])),
    responses((status = 200, description = "Library ids.", body = Vec<String>, example = json!(["5d2f8a10-7c3b-4e9d-a1f6-0e4b3c2d1a98"])),
        ApiErrors<(Unauthenticated, Unauthorized)>))]
async fn list_local_libraries(service: Service, caller: Caller) -> Reply<web::Json<Vec<String>>> {
    ok(service.list_libraries(&caller).await)
}

/// Get a local library
#[utoipa::path(get, path = "/api/content/local-library/{id}", operation_id = "LocalLibraryGet", tag = "local_library", security(("api_key" = [])),
    params(Id<LibraryId>),
    responses((status = 200, description = "The library.", body = LibraryModel), ApiErrors<(Unauthenticated, Unauthorized, NotFound)>))]
async fn get_local_library(service: Service, caller: Caller, Id(id): Id<LibraryId>) -> Reply<web::Json<LibraryModel>> {
    ok(service.get_library(&caller, id).await)
}

/// Update a local library
///
/// Name and description (`ContentLibrary.UpdateLocalLibrary`). A `version` other than the
/// current one is `CONCURRENT_CHANGE` (409); publishing or a security policy
/// `UNSUPPORTED`; a name another library has `ALREADY_EXISTS`.
#[utoipa::path(patch, path = "/api/content/local-library/{id}", operation_id = "LocalLibraryUpdate", tag = "local_library", security(("api_key" = [])),
    params(Id<LibraryId>), request_body(content = LibraryModelSpec, description = "The changes.", example = json!({"name": "isos-2024", "version": "1"})),
    responses((status = 204, description = "Updated."), ApiErrors<(BadRequest, Unauthenticated, Unauthorized, NotFound, Conflict, PayloadTooLarge)>))]
async fn update_local_library(service: Service, caller: Caller, Id(id): Id<LibraryId>, Json(spec): Json<LibraryModelSpec>) -> Reply<NoContent> {
    done(service.update_library(&caller, id, spec.update(LibraryUpdateVia::LocalLibrary), LibraryUpdateVia::LocalLibrary).await)
}

/// Delete a local library
///
/// The library, its items and their files (`ContentLibrary.DeleteLocalLibrary`). Download
/// sessions of its items go to `ERROR` and their URIs stop at once, on every instance.
#[utoipa::path(delete, path = "/api/content/local-library/{id}", operation_id = "LocalLibraryDelete", tag = "local_library", security(("api_key" = [])),
    params(Id<LibraryId>),
    responses((status = 204, description = "Deleted."), ApiErrors<(Unauthenticated, Unauthorized, NotFound)>))]
async fn delete_local_library(service: Service, caller: Caller, Id(id): Id<LibraryId>) -> Reply<NoContent> {
    done(service.delete_library(&caller, id).await)
}

/// List subscribed libraries
///
/// Always empty: this service has local libraries only (`System.Read`).
#[utoipa::path(get, path = "/api/content/subscribed-library", operation_id = "SubscribedLibraryList", tag = "local_library", security(("api_key" = [])),
    responses((status = 200, description = "No ids.", body = Vec<String>, example = json!([])), ApiErrors<(Unauthenticated, Unauthorized)>))]
async fn list_subscribed_libraries(service: Service, caller: Caller) -> Reply<web::Json<Vec<String>>> {
    ok(service.list_subscribed_libraries(&caller).await)
}

/// Get a subscribed library
///
/// `NOT_FOUND`, or `INVALID_ELEMENT_TYPE` for the id of a local library.
#[utoipa::path(get, path = "/api/content/subscribed-library/{id}", operation_id = "SubscribedLibraryGet", tag = "local_library", security(("api_key" = [])),
    params(Id<LibraryId>),
    responses((status = 200, description = "Never: there are no subscribed libraries.", body = LibraryModel),
        ApiErrors<(BadRequest, Unauthenticated, Unauthorized, NotFound)>))]
async fn get_subscribed_library(service: Service, caller: Caller, Id(id): Id<LibraryId>) -> Reply<web::Json<LibraryModel>> {
    ok(service.get_subscribed_library(&caller, id).await)
}

// --------------------------------------------------------- download sessions

/// Create a download session
///
/// A session for the files of one library item (`ContentLibrary.DownloadSession`). The
/// same `Client-Token` from the same user answers the same session id. Of the
/// DownloadSessionModel only `library_item_id` is used.
#[utoipa::path(post, path = "/api/content/library/item/download-session", operation_id = "DownloadSessionCreate",
    tag = "download_session", security(("api_key" = [])),
    params(("Client-Token" = Option<String>, Header, description = "Idempotency token, 1 to 256 visible ASCII characters.",
        example = "6f9d2c4e-1b7a-4e0f-9c3d-2a8b5e7f1c90")),
    request_body(content = CreateSpec, description = "The create spec.",
        example = json!({"library_item_id": "1c3a9e55-0d6e-4b5e-8f1a-3e2d4c5b6a79"})),
    responses(
        (status = 201, description = "The new session's id.", body = String, content_type = "application/json",
            links(
                ("get" = (operation_id = "DownloadSessionGet", parameters(("id" = "$response.body")))),
                ("files" = (operation_id = "DownloadSessionFileList", parameters(("id" = "$response.body")))),
                ("prepare" = (operation_id = "DownloadSessionFilePrepare", parameters(("id" = "$response.body")))),
                ("action" = (operation_id = "DownloadSessionAction", parameters(("id" = "$response.body")))),
                ("delete" = (operation_id = "DownloadSessionDelete", parameters(("id" = "$response.body")))),
            )),
        ApiErrors<(BadRequest, Unauthenticated, Unauthorized, NotFound, PayloadTooLarge)>,
    ))]
async fn create_session(service: Service, caller: Caller, Json(spec): Json<CreateSpec>, ClientTokenHeader(token): ClientTokenHeader) -> Reply<Created<String>> {
    let spec = NewSession::parse(spec.library_item_id.as_deref(), token.as_deref());
    Ok(Created(service.create_session(&caller, spec).await?.to_string()))
}

/// List download sessions
///
/// Ids of the caller's sessions, optionally of one item (`ContentLibrary.DownloadSession`).
#[utoipa::path(get, path = "/api/content/library/item/download-session", operation_id = "DownloadSessionList",
    tag = "download_session", security(("api_key" = [])), params(SessionsQuery),
    responses((status = 200, description = "Session ids.", body = Vec<String>, example = json!(["0b1e7b3a-2b54-4a57-9a0e-3c9c43b1a2f0"])),
        ApiErrors<(BadRequest, Unauthenticated, Unauthorized, NotFound)>))]
async fn list_sessions(service: Service, caller: Caller, Query(query): Query<SessionsQuery>) -> Reply<web::Json<Vec<String>>> {
    ok(service.list_sessions(&caller, query.library_item_id).await)
}

/// Get a download session
///
/// Renews the session's lease.
#[utoipa::path(get, path = "/api/content/library/item/download-session/{id}", operation_id = "DownloadSessionGet",
    tag = "download_session", security(("api_key" = [])), params(Id<SessionId>),
    responses((status = 200, description = "The session.", body = DownloadSessionModel), ApiErrors<(Unauthenticated, NotFound)>))]
async fn get_session(service: Service, caller: Caller, Id(id): Id<SessionId>) -> Reply<web::Json<DownloadSessionModel>> {
    ok(service.get_session(&caller, id).await)
}

/// Keep alive, cancel or fail a download session
///
/// `action=keep-alive` renews the lease (optional `progress`); `action=cancel` cancels
/// the session and invalidates its download URIs; `action=fail` puts it in ERROR with
/// the client's `client_error_message` (required). Each needs an ACTIVE session
/// (`NOT_ALLOWED_IN_CURRENT_STATE` otherwise).
#[utoipa::path(post, path = "/api/content/library/item/download-session/{id}", operation_id = "DownloadSessionAction",
    tag = "download_session", security(("api_key" = [])),
    params(Id<SessionId>, ("action" = SessionAction, Query, description = "The operation.")),
    request_body(content = Option<SessionActionBody>,
        description = "keep-alive: `{\"progress\"}`; fail: `{\"client_error_message\"}`; cancel: none.", example = json!({"progress": 42})),
    responses((status = 204, description = "Done."), ApiErrors<(BadRequest, Unauthenticated, NotFound, PayloadTooLarge)>))]
async fn session_action(service: Service, caller: Caller, Id(id): Id<SessionId>, Action(action): Action<SessionAction>, body: Body) -> Reply<NoContent> {
    done(SessionActionBody::read(action, body).await?.run(&service, &caller, id).await)
}

/// Delete a download session
#[utoipa::path(delete, path = "/api/content/library/item/download-session/{id}", operation_id = "DownloadSessionDelete",
    tag = "download_session", security(("api_key" = [])), params(Id<SessionId>),
    responses((status = 204, description = "Deleted."), ApiErrors<(Unauthenticated, NotFound)>))]
async fn delete_session(service: Service, caller: Caller, Id(id): Id<SessionId>) -> Reply<NoContent> {
    done(service.delete_session(&caller, id).await)
}

/// List (or get) the files of a download session
///
/// Without `file_name`, every file of the session with its prepare status; with it, that
/// file. A PREPARED file carries its `download_endpoint`. Renews the session's lease.
#[utoipa::path(get, path = "/api/content/library/item/download-session/{id}/file", operation_id = "DownloadSessionFileList",
    tag = "download_session_file", security(("api_key" = [])), params(Id<SessionId>, SessionFileQuery),
    responses((status = 200, description = "The files, or the one named.", body = DownloadFileInfoOrList),
        ApiErrors<(BadRequest, Unauthenticated, NotFound)>))]
async fn files(service: Service, caller: Caller, Id(id): Id<SessionId>, Query(query): Query<SessionFileQuery>) -> Reply<web::Json<DownloadFileInfoOrList>> {
    Ok(web::Json(match query.file_name {
        Some(name) => DownloadFileInfoOrList::One(Box::new(service.get_file(&caller, id, FileName::parse(&name)).await?)),
        None => DownloadFileInfoOrList::List(service.list_files(&caller, id).await?),
    }))
}

/// Prepare a file for download
///
/// Asks for the file to be staged; poll its info until `PREPARED` (then it has a
/// `download_endpoint`) or `ERROR`. A file already requested, preparing or prepared
/// answers its current info. `DIRECT` needs a session created with
/// `ContentLibrary.ReadStorage` (`UNAUTHORIZED` otherwise) and a transfer store
/// clients can reach (S3, or a local one with `storage.transfer.direct_base`;
/// `INVALID_ARGUMENT` `...file.direct_unavailable` otherwise).
#[utoipa::path(post, path = "/api/content/library/item/download-session/{id}/file", operation_id = "DownloadSessionFilePrepare",
    tag = "download_session_file", security(("api_key" = [])),
    params(Id<SessionId>, ("action" = FileAction, Query, description = "The operation.")),
    request_body(content = PrepareSpec, description = "Which file, and how to hand it out.",
        example = json!({"file_name": "disk-0.vmdk", "endpoint_type": "HTTPS"})),
    responses((status = 200, description = "The file's info.", body = DownloadFileInfo),
        ApiErrors<(BadRequest, Unauthenticated, Unauthorized, NotFound, PayloadTooLarge)>))]
async fn file_action(service: Service, caller: Caller, Id(id): Id<SessionId>, _prepare: Action<FileAction>, Json(spec): Json<PrepareSpec>) -> Reply<web::Json<DownloadFileInfo>> {
    let endpoint = spec.endpoint_type()?;
    ok(service.prepare_file(&caller, id, spec.file_name(), endpoint).await)
}

// ----------------------------------------------------------- update sessions

/// 200 with the file's info (add) or the validation result (validate), 204 (remove).
impl Responder for UpdateFileAnswer {
    type Body = BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse {
        match self {
            UpdateFileAnswer::Done(result) => HttpResponse::Ok().json(result),
            UpdateFileAnswer::Removed => HttpResponse::NoContent().finish(),
        }
    }
}

/// Create an update session
///
/// A session that changes the content of one library item (`ContentLibrary.UpdateSession`):
/// add files, send their bytes, complete. One `ACTIVE` session per item (`RESOURCE_BUSY`).
/// The same `Client-Token` from the same user answers the same session id. Of the
/// UpdateSessionModel only `library_item_id` is used.
#[utoipa::path(post, path = "/api/content/library/item/update-session", operation_id = "UpdateSessionCreate",
    tag = "update_session", security(("api_key" = [])),
    params(("Client-Token" = Option<String>, Header, description = "Idempotency token, 1 to 256 visible ASCII characters.",
        example = "6f9d2c4e-1b7a-4e0f-9c3d-2a8b5e7f1c90")),
    request_body(content = CreateSpec, description = "The create spec.",
        example = json!({"library_item_id": "1c3a9e55-0d6e-4b5e-8f1a-3e2d4c5b6a79"})),
    responses(
        (status = 201, description = "The new session's id.", body = String, content_type = "application/json"),
        ApiErrors<(BadRequest, Unauthenticated, Unauthorized, NotFound, PayloadTooLarge)>,
    ))]
async fn create_update_session(service: Service, caller: Caller, Json(spec): Json<CreateSpec>, ClientTokenHeader(token): ClientTokenHeader) -> Reply<Created<String>> {
    let spec = NewSession::parse(spec.library_item_id.as_deref(), token.as_deref());
    Ok(Created(service.create_update_session(&caller, spec).await?.to_string()))
}

/// List update sessions
///
/// Ids of the caller's update sessions, optionally of one item (`ContentLibrary.UpdateSession`).
#[utoipa::path(get, path = "/api/content/library/item/update-session", operation_id = "UpdateSessionList",
    tag = "update_session", security(("api_key" = [])), params(SessionsQuery),
    responses((status = 200, description = "Session ids.", body = Vec<String>, example = json!(["7a4c2e19-5b3d-4f60-8e2a-1d9c0b7f3e45"])),
        ApiErrors<(BadRequest, Unauthenticated, Unauthorized, NotFound)>))]
async fn list_update_sessions(service: Service, caller: Caller, Query(query): Query<SessionsQuery>) -> Reply<web::Json<Vec<String>>> {
    ok(service.list_update_sessions(&caller, query.library_item_id).await)
}

/// Get an update session
///
/// Renews the session's lease.
#[utoipa::path(get, path = "/api/content/library/item/update-session/{id}", operation_id = "UpdateSessionGet",
    tag = "update_session", security(("api_key" = [])), params(Id<UpdateSessionId>),
    responses((status = 200, description = "The session.", body = UpdateSessionModel), ApiErrors<(Unauthenticated, NotFound)>))]
async fn get_update_session(service: Service, caller: Caller, Id(id): Id<UpdateSessionId>) -> Reply<web::Json<UpdateSessionModel>> {
    ok(service.get_update_session(&caller, id).await)
}

/// Keep alive, complete, cancel or fail an update session
///
/// `action=keep-alive` renews the lease (optional `progress`); `action=complete` publishes
/// the session's files as the item's next content version, at once (every file added must
/// be `READY`, else `NOT_ALLOWED_IN_CURRENT_STATE`); `action=cancel` drops what was received;
/// `action=fail` puts the session in ERROR with the client's `client_error_message`. Each
/// needs an ACTIVE session (`NOT_ALLOWED_IN_CURRENT_STATE` otherwise).
#[utoipa::path(post, path = "/api/content/library/item/update-session/{id}", operation_id = "UpdateSessionAction",
    tag = "update_session", security(("api_key" = [])),
    params(Id<UpdateSessionId>, ("action" = UpdateAction, Query, description = "The operation.")),
    request_body(content = Option<UpdateActionBody>,
        description = "keep-alive: `{\"progress\"}`; fail: `{\"client_error_message\"}`; complete, cancel: none.", example = json!({"progress": 42})),
    responses((status = 204, description = "Done."), ApiErrors<(BadRequest, Unauthenticated, NotFound, PayloadTooLarge)>))]
async fn update_session_action(service: Service, caller: Caller, Id(id): Id<UpdateSessionId>, Action(action): Action<UpdateAction>, body: Body) -> Reply<NoContent> {
    done(UpdateActionBody::read(action, body).await?.run(&service, &caller, id).await)
}

/// Delete an update session
///
/// Only once it has ended: an ACTIVE session is `NOT_ALLOWED_IN_CURRENT_STATE`.
#[utoipa::path(delete, path = "/api/content/library/item/update-session/{id}", operation_id = "UpdateSessionDelete",
    tag = "update_session", security(("api_key" = [])), params(Id<UpdateSessionId>),
    responses((status = 204, description = "Deleted."), ApiErrors<(BadRequest, Unauthenticated, NotFound)>))]
async fn delete_update_session(service: Service, caller: Caller, Id(id): Id<UpdateSessionId>) -> Reply<NoContent> {
    done(service.delete_update_session(&caller, id).await)
}

/// List (or get) the files of an update session
///
/// Without `file_name`, every file added (and not removed); with it, that file. While the
/// session is ACTIVE a PUSH file carries its `upload_endpoint`. Renews the lease.
#[utoipa::path(get, path = "/api/content/library/item/update-session/{id}/file", operation_id = "UpdateSessionFileList",
    tag = "update_session_file", security(("api_key" = [])), params(Id<UpdateSessionId>, SessionFileQuery),
    responses((status = 200, description = "The files, or the one named.", body = UpdateFileInfoOrList),
        ApiErrors<(BadRequest, Unauthenticated, NotFound)>))]
async fn update_files(service: Service, caller: Caller, Id(id): Id<UpdateSessionId>, Query(query): Query<SessionFileQuery>) -> Reply<web::Json<UpdateFileInfoOrList>> {
    Ok(web::Json(match query.file_name {
        Some(name) => UpdateFileInfoOrList::One(Box::new(service.get_update_file(&caller, id, FileName::parse_or_missing(&name)).await?)),
        None => UpdateFileInfoOrList::List(service.list_update_files(&caller, id).await?),
    }))
}

/// Add, remove or validate the files of an update session
///
/// `action=add` (an `AddSpec`) adds a file, or starts it over: 200 with its info and
/// `upload_endpoint`, where the client PUTs or POSTs the bytes. `action=remove`
/// (`{"file_name"}`) drops the item's file of that name at complete (204). `action=validate`
/// answers which files are missing or invalid. Each needs an ACTIVE session.
#[utoipa::path(post, path = "/api/content/library/item/update-session/{id}/file", operation_id = "UpdateSessionFileAction",
    tag = "update_session_file", security(("api_key" = [])),
    params(Id<UpdateSessionId>, ("action" = UpdateFileAction, Query, description = "The operation.")),
    request_body(content = Option<UpdateFileActionBody>, description = "add: an `AddSpec`; remove: `{\"file_name\"}`; validate: none.",
        example = json!({"name": "photon.iso", "source_type": "PUSH", "size": 10485760})),
    responses(
        (status = 200, description = "add: the file's info; validate: the result.", body = UpdateFileResult),
        (status = 204, description = "remove: done."),
        ApiErrors<(BadRequest, Unauthenticated, NotFound, PayloadTooLarge)>))]
async fn update_file_action(service: Service, caller: Caller, Id(id): Id<UpdateSessionId>, Action(action): Action<UpdateFileAction>, body: Body) -> Reply<UpdateFileAnswer> {
    Ok(UpdateFileActionBody::read(action, body).await?.run(&service, &caller, id).await?)
}
