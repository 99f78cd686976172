//! The legacy `/rest/com/vmware/...` surface (vSphere 6.5+, govc, Ansible): answers wrapped
//! in `{"value": ...}`, `?~action=`, `id:{id}` path ids, 200 without body for void operations.
//! Laid out like `rest_api`: one block per operation. Where one path serves several
//! `~action`s, the handler takes the action and reads the body that action takes.

mod wire;

use actix_web::{
    cookie::{time::Duration as CookieAge, Cookie, SameSite},
    web, Either, HttpRequest, HttpResponse,
};

pub use self::wire::*;
use super::{
    errors::{
        no_route, BadRequest, Conflict, NotFound, PayloadTooLarge, RestError, RestErrors, Surface,
        Unauthenticated, Unauthorized,
    },
    extract::{
        delete, get, login_token, patch, post, Action, BasicAuth, Body, FromQuery, Id, Json,
        Query, QueryString,
    },
    wire::{LibraryItemsQuery, SessionAction, SessionActionBody, SessionsQuery, UpdateAction, UpdateActionBody},
    SESSION_HEADER,
};
use crate::{
    domain::{
        catalog::LibraryUpdateVia, Caller, FileName, ItemId, LibraryId, LoginToken, NewSession,
        SessionId, UpdateSessionId,
    },
    service::Service,
};

/// Request header with which a client asks not to get the session cookie.
const HEADER_AUTHN_ONLY: &str = "vmware-use-header-authn";

/// The session cookie is scoped like vCenter's: only this surface reads it back.
const COOKIE_PATH: &str = "/rest";

type Reply<T> = Result<T, RestError>;

/// 200 with `{"value": answer}`.
fn value<T, V: From<T>>(answer: crate::error::Result<T>) -> Reply<V> {
    Ok(V::from(answer?))
}

/// A resource whose unmatched methods answer with the `/rest` error body, not
/// actix's empty 405.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(not_found))
}

const SESSIONS: &str = "/com/vmware/content/library/item/download-session";
const FILES: &str = "/com/vmware/content/library/item/downloadsession/file";
const UPDATES: &str = "/com/vmware/content/library/item/update-session";
const UPDATE_FILES: &str = "/com/vmware/content/library/item/updatesession/file";
const ITEM_STORAGE: &str = "/com/vmware/content/library/item/storage";
const LOCAL_LIBRARY: &str = "/com/vmware/content/local-library";
const SUBSCRIBED_LIBRARY: &str = "/com/vmware/content/subscribed-library";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/rest")
            .app_data(Surface::Rest)
            .service(
                resource("/com/vmware/cis/session")
                    .route(post(session_post))
                    .route(delete(logout)),
            )
            .service(
                resource(SESSIONS)
                    .route(post(download_session_post))
                    .route(get(list_sessions)),
            )
            .service(
                resource(&format!("{SESSIONS}/id:{{id}}"))
                    .route(get(get_session))
                    .route(post(session_action))
                    .route(delete(delete_session)),
            )
            .service(resource(FILES).route(get(list_files)))
            .service(
                resource(UPDATES)
                    .route(post(update_session_post))
                    .route(get(list_update_sessions)),
            )
            .service(
                resource(&format!("{UPDATES}/id:{{id}}"))
                    .route(get(get_update_session))
                    .route(post(update_session_action))
                    .route(delete(delete_update_session)),
            )
            .service(resource(UPDATE_FILES).route(get(list_update_files)))
            .service(resource(&format!("{UPDATE_FILES}/id:{{id}}")).route(post(update_file_action)))
            .service(resource(&format!("{FILES}/id:{{id}}")).route(post(file_action)))
            .service(resource("/com/vmware/content/library/item/file").route(get(item_files)))
            .service(
                resource("/com/vmware/content/library/item/file/id:{id}")
                    .route(post(item_file_action)),
            )
            .service(resource(ITEM_STORAGE).route(get(list_storage)))
            .service(resource(&format!("{ITEM_STORAGE}/id:{{id}}")).route(post(storage_action)))
            .service(
                resource("/com/vmware/content/library/item")
                    .route(get(list_items))
                    .route(post(item_post)),
            )
            .service(
                resource("/com/vmware/content/library/item/id:{id}")
                    .route(get(get_item))
                    .route(patch(update_item))
                    .route(delete(delete_item)),
            )
            .service(
                resource("/com/vmware/content/library")
                    .route(get(list_libraries))
                    .route(post(find_libraries)),
            )
            .service(
                resource("/com/vmware/content/library/id:{id}")
                    .route(get(get_library))
                    .route(patch(update_library)),
            )
            .service(
                resource(LOCAL_LIBRARY)
                    .route(post(create_local_library))
                    .route(get(list_local_libraries)),
            )
            .service(
                resource(&format!("{LOCAL_LIBRARY}/id:{{id}}"))
                    .route(get(get_local_library))
                    .route(patch(update_local_library))
                    .route(delete(delete_local_library)),
            )
            .service(resource(SUBSCRIBED_LIBRARY).route(get(list_subscribed_libraries)))
            .service(resource(&format!("{SUBSCRIBED_LIBRARY}/id:{{id}}")).route(get(get_subscribed_library)))
            // Anything else under /rest still gets this surface's error body.
            .default_service(web::to(not_found)),
    );
}

async fn not_found(req: HttpRequest) -> Reply<HttpResponse> {
    Err(no_route(&req).into())
}

// ------------------------------------------------------------------- session

/// Log in (or, with `~action=get`, who am I)
///
/// Without `~action`: checks the Basic credentials and answers `{"value": token}`, also
/// setting the `vmware-api-session-id` cookie (for path `/rest`) unless the request has
/// `vmware-use-header-authn: true`. With `~action=get`: the owner of the token sent.
#[utoipa::path(post, path = "/rest/com/vmware/cis/session", operation_id = "RestSessionCreate", tag = "rest",
    security(("basic_auth" = []), ("api_key" = [])),
    params(
        ("~action" = Option<RestSessionAction>, Query, description = "`get`: who am I; absent: log in."),
        ("vmware-use-header-authn" = Option<String>, Header, description = "`true`: do not set the session cookie.", example = "true"),
    ),
    responses(
        (status = 200, description = "`{\"value\": token}` (login) or `{\"value\": SessionInfo}` (`~action=get`).", body = RestLoginOrWhoAmI),
        RestErrors<(BadRequest, Unauthenticated)>,
    ))]
async fn session_post(service: Service, Action(action): Action<Option<RestSessionAction>>, req: HttpRequest) -> Reply<HttpResponse> {
    let mut reply = HttpResponse::Ok();
    let answer = match action {
        None => {
            let login = BasicAuth::of(&req)?;
            let token = service.login(&login.user, &login.password, login.client).await?.into_string();
            if !header_authn_only(&req) {
                reply.cookie(session_cookie(&req, token.clone()));
            }
            RestLoginOrWhoAmI::Token(token.into())
        }
        Some(RestSessionAction::Get) => RestLoginOrWhoAmI::WhoAmI(service.whoami(&login_token(&req)?).await?.into()),
    };
    Ok(reply.json(answer))
}

fn header_authn_only(req: &HttpRequest) -> bool {
    let value = req.headers().get(HEADER_AUTHN_ONLY).and_then(|v| v.to_str().ok());
    value.is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

fn session_cookie(req: &HttpRequest, token: String) -> Cookie<'static> {
    // Secure only when the client reached us over TLS (here, or at a trusted proxy):
    // a Secure cookie sent over plain HTTP would never come back. Strict: browsers
    // attach it to no request another site starts (CSRF; see edge::csrf).
    let https = crate::edge::client::is_https(req);
    Cookie::build(SESSION_HEADER, token).path(COOKIE_PATH).http_only(true).secure(https).same_site(SameSite::Strict).finish()
}

/// Log out
///
/// Ends the login everywhere and expires the session cookie.
#[utoipa::path(delete, path = "/rest/com/vmware/cis/session", operation_id = "RestSessionDelete", tag = "rest",
    security(("api_key" = [])), responses((status = 200, description = "Logged out (no body)."), RestErrors<(Unauthenticated,)>))]
async fn logout(service: Service, token: LoginToken, req: HttpRequest) -> Reply<HttpResponse> {
    service.logout(&token).await?;
    let mut expired = session_cookie(&req, String::new());
    expired.set_max_age(CookieAge::ZERO);
    Ok(HttpResponse::Ok().cookie(expired).finish())
}

// ------------------------------------------------------------------- catalog

/// List libraries
#[utoipa::path(get, path = "/rest/com/vmware/content/library", operation_id = "RestLibraryList", tag = "rest",
    security(("api_key" = [])),
    responses((status = 200, description = "Library ids.", body = RestValueStrings), RestErrors<(Unauthenticated, Unauthorized)>))]
async fn list_libraries(service: Service, caller: Caller) -> Reply<RestValueStrings> {
    value(service.list_libraries(&caller).await)
}

/// Get a library
#[utoipa::path(get, path = "/rest/com/vmware/content/library/id:{id}", operation_id = "RestLibraryGet", tag = "rest",
    security(("api_key" = [])), params(Id<LibraryId>),
    responses((status = 200, description = "The library.", body = RestValueLibrary), RestErrors<(Unauthenticated, Unauthorized, NotFound)>))]
async fn get_library(service: Service, caller: Caller, Id(id): Id<LibraryId>) -> Reply<RestValueLibrary> {
    value(service.get_library(&caller, id).await)
}

/// Find libraries
///
/// `{"spec": {"name"?, "type"?}}`: the ids of the libraries matching every property set
/// (`name` without case); an empty spec is `invalid_argument`, no match `[]`.
#[utoipa::path(post, path = "/rest/com/vmware/content/library", operation_id = "RestLibraryFind", tag = "rest",
    security(("api_key" = [])), params(("~action" = RestLibraryAction, Query, description = "The operation.")),
    request_body(content = RestLibraryFindBody, description = "What to match.", example = json!({"spec": {"name": "isos"}})),
    responses((status = 200, description = "Library ids.", body = RestValueStrings),
        RestErrors<(BadRequest, Unauthenticated, Unauthorized, PayloadTooLarge)>))]
async fn find_libraries(service: Service, caller: Caller, _find: Action<RestLibraryAction>, Json(body): Json<RestLibraryFindBody>) -> Reply<RestValueStrings> {
    value(service.find_libraries(&caller, body.spec.parse()).await)
}

/// Update a library
///
/// Name and description (`ContentLibrary.UpdateLibrary`); a stale `version` is `invalid_argument`.
#[utoipa::path(patch, path = "/rest/com/vmware/content/library/id:{id}", operation_id = "RestLibraryUpdate", tag = "rest",
    security(("api_key" = [])), params(Id<LibraryId>),
    request_body(content = RestLibraryUpdateBody, description = "The changes.", example = json!({"update_spec": {"description": "Installer images"}})),
    responses((status = 200, description = "Updated (no body)."), RestErrors<(BadRequest, Unauthenticated, Unauthorized, NotFound, PayloadTooLarge)>))]
async fn update_library(service: Service, caller: Caller, Id(id): Id<LibraryId>, Json(body): Json<RestLibraryUpdateBody>) -> Reply<Void> {
    let via = LibraryUpdateVia::Library;
    service.update_library(&caller, id, body.update_spec.update(via), via).await?;
    Ok(Void)
}

/// Create a local library
///
/// `{"client_token"?, "create_spec"}` (`ContentLibrary.CreateLocalLibrary`): `name` unique
/// without case (`already_exists`); the same `client_token` from the same user answers the same id.
#[utoipa::path(post, path = "/rest/com/vmware/content/local-library", operation_id = "RestLocalLibraryCreate", tag = "rest",
    security(("api_key" = [])),
    request_body(content = RestLibraryCreateBody, description = "The library.",
        example = json!({"create_spec": {"name": "isos", "type": "LOCAL", "storage_backings": [{"type": "OTHER"}]}})),
    responses((status = 200, description = "`{\"value\": id}`.", body = RestValueString),
        RestErrors<(BadRequest, Unauthenticated, Unauthorized, PayloadTooLarge)>))]
async fn create_local_library(service: Service, caller: Caller, Json(body): Json<RestLibraryCreateBody>) -> Reply<RestValueString> {
    let spec = body.create_spec.new_library(body.client_token.as_deref());
    value(service.create_library(&caller, spec).await.map(|id| id.to_string()))
}

/// List local libraries
#[utoipa::path(get, path = "/rest/com/vmware/content/local-library", operation_id = "RestLocalLibraryList", tag = "rest",
    security(("api_key" = [])),
    responses((status = 200, description = "Library ids.", body = RestValueStrings), RestErrors<(Unauthenticated, Unauthorized)>))]
async fn list_local_libraries(service: Service, caller: Caller) -> Reply<RestValueStrings> {
    value(service.list_libraries(&caller).await)
}

/// Get a local library
#[utoipa::path(get, path = "/rest/com/vmware/content/local-library/id:{id}", operation_id = "RestLocalLibraryGet", tag = "rest",
    security(("api_key" = [])), params(Id<LibraryId>),
    responses((status = 200, description = "The library.", body = RestValueLibrary), RestErrors<(Unauthenticated, Unauthorized, NotFound)>))]
async fn get_local_library(service: Service, caller: Caller, Id(id): Id<LibraryId>) -> Reply<RestValueLibrary> {
    value(service.get_library(&caller, id).await)
}

/// Update a local library
///
/// Name and description (`ContentLibrary.UpdateLocalLibrary`); a stale `version` is
/// `concurrent_change` (409).
#[utoipa::path(patch, path = "/rest/com/vmware/content/local-library/id:{id}", operation_id = "RestLocalLibraryUpdate", tag = "rest",
    security(("api_key" = [])), params(Id<LibraryId>),
    request_body(content = RestLibraryUpdateBody, description = "The changes.", example = json!({"update_spec": {"name": "isos-2024"}})),
    responses((status = 200, description = "Updated (no body)."),
        RestErrors<(BadRequest, Unauthenticated, Unauthorized, NotFound, Conflict, PayloadTooLarge)>))]
async fn update_local_library(service: Service, caller: Caller, Id(id): Id<LibraryId>, Json(body): Json<RestLibraryUpdateBody>) -> Reply<Void> {
    let via = LibraryUpdateVia::LocalLibrary;
    service.update_library(&caller, id, body.update_spec.update(via), via).await?;
    Ok(Void)
}

/// Delete a local library
///
/// With its items and their files; their download sessions go to `ERROR` at once.
#[utoipa::path(delete, path = "/rest/com/vmware/content/local-library/id:{id}", operation_id = "RestLocalLibraryDelete", tag = "rest",
    security(("api_key" = [])), params(Id<LibraryId>),
    responses((status = 200, description = "Deleted (no body)."), RestErrors<(Unauthenticated, Unauthorized, NotFound)>))]
async fn delete_local_library(service: Service, caller: Caller, Id(id): Id<LibraryId>) -> Reply<Void> {
    service.delete_library(&caller, id).await?;
    Ok(Void)
}

/// List subscribed libraries
///
/// Always `{"value": []}`: this service has local libraries only.
#[utoipa::path(get, path = "/rest/com/vmware/content/subscribed-library", operation_id = "RestSubscribedLibraryList", tag = "rest",
    security(("api_key" = [])),
    responses((status = 200, description = "No ids.", body = RestValueStrings), RestErrors<(Unauthenticated, Unauthorized)>))]
async fn list_subscribed_libraries(service: Service, caller: Caller) -> Reply<RestValueStrings> {
    value(service.list_subscribed_libraries(&caller).await)
}

/// Get a subscribed library
///
/// `not_found`, or `invalid_element_type` for the id of a local library.
#[utoipa::path(get, path = "/rest/com/vmware/content/subscribed-library/id:{id}", operation_id = "RestSubscribedLibraryGet", tag = "rest",
    security(("api_key" = [])), params(Id<LibraryId>),
    responses((status = 200, description = "Never: there are no subscribed libraries.", body = RestValueLibrary),
        RestErrors<(BadRequest, Unauthenticated, Unauthorized, NotFound)>))]
async fn get_subscribed_library(service: Service, caller: Caller, Id(id): Id<LibraryId>) -> Reply<RestValueLibrary> {
    value(service.get_subscribed_library(&caller, id).await)
}

/// List the items of a library
#[utoipa::path(get, path = "/rest/com/vmware/content/library/item", operation_id = "RestLibraryItemList", tag = "rest",
    security(("api_key" = [])), params(LibraryItemsQuery),
    responses((status = 200, description = "Item ids.", body = RestValueStrings), RestErrors<(BadRequest, Unauthenticated, Unauthorized, NotFound)>))]
async fn list_items(service: Service, caller: Caller, Query(query): Query<LibraryItemsQuery>) -> Reply<RestValueStrings> {
    value(service.list_items(&caller, query.library_id).await)
}

/// Create a library item (or, with `~action=find`, find items)
///
/// Without `~action`: `{"client_token"?, "create_spec"}` creates an item without files
/// (`ContentLibrary.AddLibraryItem`); `{"value": id}`. With `~action=find`: `{"spec": {...}}`,
/// the ids of the items matching every property set (`name`, `type` without case).
#[utoipa::path(post, path = "/rest/com/vmware/content/library/item", operation_id = "RestLibraryItemCreateOrFind", tag = "rest",
    security(("api_key" = [])),
    params(("~action" = Option<RestItemAction>, Query, description = "`find`: find items; absent: create.")),
    request_body(content = RestItemCollectionBody, description = "create: `{\"client_token\"?, \"create_spec\"}`; find: `{\"spec\"}`.",
        example = json!({"spec": {"library_id": "5d2f8a10-7c3b-4e9d-a1f6-0e4b3c2d1a98", "name": "photon"}})),
    responses((status = 200, description = "`{\"value\": id}` (create) or `{\"value\": [id]}` (find).", body = RestIdOrIds),
        RestErrors<(BadRequest, Unauthenticated, Unauthorized, NotFound, PayloadTooLarge)>))]
async fn item_post(service: Service, caller: Caller, Action(action): Action<Option<RestItemAction>>, body: Body) -> Reply<RestIdOrIds> {
    Ok(match RestItemCollectionBody::read(action, body).await? {
        RestItemCollectionBody::Create(body) => {
            let spec = body.create_spec.new_item(body.client_token.as_deref());
            RestIdOrIds::Id(service.create_item(&caller, spec).await?.to_string().into())
        }
        RestItemCollectionBody::Find(body) => RestIdOrIds::Ids(service.find_items(&caller, body.spec.parse()).await?.into()),
    })
}

/// Get a library item
#[utoipa::path(get, path = "/rest/com/vmware/content/library/item/id:{id}", operation_id = "RestLibraryItemGet", tag = "rest",
    security(("api_key" = [])), params(Id<ItemId>),
    responses((status = 200, description = "The item.", body = RestValueItem), RestErrors<(Unauthenticated, Unauthorized, NotFound)>))]
async fn get_item(service: Service, caller: Caller, Id(id): Id<ItemId>) -> Reply<RestValueItem> {
    value(service.get_item(&caller, id).await)
}

/// Update a library item
///
/// Name, description and type (`ContentLibrary.UpdateLibraryItem`); a stale `version` is
/// `invalid_argument`, a name taken in the library `already_exists`.
#[utoipa::path(patch, path = "/rest/com/vmware/content/library/item/id:{id}", operation_id = "RestLibraryItemUpdate", tag = "rest",
    security(("api_key" = [])), params(Id<ItemId>),
    request_body(content = RestItemUpdateBody, description = "The changes.", example = json!({"update_spec": {"name": "photon-5"}})),
    responses((status = 200, description = "Updated (no body)."), RestErrors<(BadRequest, Unauthenticated, Unauthorized, NotFound, PayloadTooLarge)>))]
async fn update_item(service: Service, caller: Caller, Id(id): Id<ItemId>, Json(body): Json<RestItemUpdateBody>) -> Reply<Void> {
    service.update_item(&caller, id, body.update_spec.update()).await?;
    Ok(Void)
}

/// Delete a library item
///
/// With its files (`ContentLibrary.DeleteLibraryItem`); its download sessions go to
/// `ERROR` and their URIs stop at once.
#[utoipa::path(delete, path = "/rest/com/vmware/content/library/item/id:{id}", operation_id = "RestLibraryItemDelete", tag = "rest",
    security(("api_key" = [])), params(Id<ItemId>),
    responses((status = 200, description = "Deleted (no body)."), RestErrors<(Unauthenticated, Unauthorized, NotFound)>))]
async fn delete_item(service: Service, caller: Caller, Id(id): Id<ItemId>) -> Reply<Void> {
    service.delete_item(&caller, id).await?;
    Ok(Void)
}

crate::query_params! {
    /// `GET /rest/com/vmware/content/library/item/file`.
    pub struct ItemFilesQuery {
        /// The item.
        #[param(value_type = String, example = "1c3a9e55-0d6e-4b5e-8f1a-3e2d4c5b6a79")]
        pub library_item_id: ItemId,
    }
}

/// List the files of a library item
#[utoipa::path(get, path = "/rest/com/vmware/content/library/item/file", operation_id = "RestLibraryItemFileList", tag = "rest",
    security(("api_key" = [])), params(ItemFilesQuery),
    responses((status = 200, description = "The files.", body = RestValueItemFiles), RestErrors<(BadRequest, Unauthenticated, Unauthorized, NotFound)>))]
async fn item_files(service: Service, caller: Caller, Query(query): Query<ItemFilesQuery>) -> Reply<RestValueItemFiles> {
    value(service.list_item_files(&caller, query.library_item_id).await)
}

/// Get one file of a library item
#[utoipa::path(post, path = "/rest/com/vmware/content/library/item/file/id:{id}", operation_id = "RestLibraryItemFileGet", tag = "rest",
    security(("api_key" = [])),
    params(Id<ItemId>, ("~action" = RestItemFileAction, Query, description = "The operation.")),
    request_body(content = RestItemFileBody, description = "Which file."),
    responses((status = 200, description = "The file.", body = RestValueItemFile),
        RestErrors<(BadRequest, Unauthenticated, Unauthorized, NotFound, PayloadTooLarge)>))]
async fn item_file_action(service: Service, caller: Caller, _get: Action<RestItemFileAction>, Id(item): Id<ItemId>, Json(spec): Json<RestItemFileBody>) -> Reply<RestValueItemFile> {
    value(service.get_item_file(&caller, item, FileName::parse_or_missing(&spec.name)).await)
}

crate::query_params! {
    /// `GET /rest/com/vmware/content/library/item/storage`.
    pub struct ItemStorageQuery {
        /// The item.
        #[param(value_type = String, example = "1c3a9e55-0d6e-4b5e-8f1a-3e2d4c5b6a79")]
        pub library_item_id: ItemId,
    }
}

/// List the storage of a library item's files
///
/// Where each file lies: `storage_backing`, `storage_uris` clients may use (possibly none),
/// size, checksum (`ContentLibrary.ReadStorage`).
#[utoipa::path(get, path = "/rest/com/vmware/content/library/item/storage", operation_id = "RestLibraryItemStorageList", tag = "rest",
    security(("api_key" = [])), params(ItemStorageQuery),
    responses((status = 200, description = "The storage of every file.", body = RestValueStorageInfos),
        RestErrors<(BadRequest, Unauthenticated, Unauthorized, NotFound)>))]
async fn list_storage(service: Service, caller: Caller, Query(query): Query<ItemStorageQuery>) -> Reply<RestValueStorageInfos> {
    value(service.list_item_storage(&caller, query.library_item_id).await)
}

/// Get the storage of one file of a library item
///
/// `{"file_name"}`; answered as a list, as VMware's `Storage.get` does (one entry per
/// storage backing); a file the item does not have is `not_found`.
#[utoipa::path(post, path = "/rest/com/vmware/content/library/item/storage/id:{id}", operation_id = "RestLibraryItemStorageGet", tag = "rest",
    security(("api_key" = [])),
    params(Id<ItemId>, ("~action" = RestStorageAction, Query, description = "The operation.")),
    request_body(content = RestFileNameBody, description = "Which file."),
    responses((status = 200, description = "The file's storage.", body = RestValueStorageInfos),
        RestErrors<(BadRequest, Unauthenticated, Unauthorized, NotFound, PayloadTooLarge)>))]
async fn storage_action(service: Service, caller: Caller, _get: Action<RestStorageAction>, Id(item): Id<ItemId>, Json(spec): Json<RestFileNameBody>) -> Reply<RestValueStorageInfos> {
    value(service.get_item_storage(&caller, item, FileName::parse_or_not_stored(&spec.file_name)).await)
}

// --------------------------------------------------------- download sessions

/// Create a download session (or, with `~action=list`, list them)
///
/// Without `~action`: creates a session for `create_spec.library_item_id`; the same
/// `client_token` from the same user answers the same id. With `~action=list`: the ids of
/// the caller's sessions, of one item when `library_item_id` is given (body or query).
#[utoipa::path(post, path = "/rest/com/vmware/content/library/item/download-session", operation_id = "RestDownloadSessionCreate",
    tag = "rest", security(("api_key" = [])),
    params(
        ("~action" = Option<RestCollectionAction>, Query, description = "`list`: list sessions; absent: create."),
        ("library_item_id" = Option<String>, Query, description = "list: only the sessions of this item (when the body has none)."),
    ),
    request_body(content = Option<RestCollectionBody>, description = "create: `{\"client_token\"?, \"create_spec\"}`; list: `{\"library_item_id\"?}`.",
        example = json!({"create_spec": {"library_item_id": "1c3a9e55-0d6e-4b5e-8f1a-3e2d4c5b6a79"}})),
    responses(
        // No links: with `~action=list` the value is a list, which a link would paste into a URL.
        (status = 200, description = "`{\"value\": id}` (create) or `{\"value\": [id]}` (list).", body = RestIdOrIds),
        RestErrors<(BadRequest, Unauthenticated, Unauthorized, NotFound, PayloadTooLarge)>,
    ))]
async fn download_session_post(service: Service, caller: Caller, Action(action): Action<Option<RestCollectionAction>>, body: Body, req: HttpRequest) -> Reply<RestIdOrIds> {
    Ok(match RestCollectionBody::read(action, body).await? {
        RestCollectionBody::Create(spec) => {
            let spec = NewSession::parse(spec.create_spec.library_item_id.as_deref(), spec.client_token.as_deref());
            RestIdOrIds::Id(service.create_session(&caller, spec).await?.to_string().into())
        }
        RestCollectionBody::List(spec) => {
            // The query names the item only when the body does not.
            let item = match spec.library_item_id {
                Some(item) => Some(ItemId::parse(&item)),
                None => SessionsQuery::from_query(&QueryString::of(&req))?.library_item_id,
            };
            RestIdOrIds::Ids(service.list_sessions(&caller, item).await?.into())
        }
    })
}

/// List download sessions
#[utoipa::path(get, path = "/rest/com/vmware/content/library/item/download-session", operation_id = "RestDownloadSessionList",
    tag = "rest", security(("api_key" = [])), params(SessionsQuery),
    responses((status = 200, description = "Session ids.", body = RestValueStrings), RestErrors<(BadRequest, Unauthenticated, Unauthorized, NotFound)>))]
async fn list_sessions(service: Service, caller: Caller, Query(query): Query<SessionsQuery>) -> Reply<RestValueStrings> {
    value(service.list_sessions(&caller, query.library_item_id).await)
}

/// Get a download session
///
/// Renews the session's lease.
#[utoipa::path(get, path = "/rest/com/vmware/content/library/item/download-session/id:{id}", operation_id = "RestDownloadSessionGet",
    tag = "rest", security(("api_key" = [])), params(Id<SessionId>),
    responses((status = 200, description = "The session.", body = RestValueDownloadSession), RestErrors<(Unauthenticated, NotFound)>))]
async fn get_session(service: Service, caller: Caller, Id(id): Id<SessionId>) -> Reply<RestValueDownloadSession> {
    value(service.get_session(&caller, id).await)
}

/// Keep alive, cancel or fail a download session (or list the sessions of an item)
///
/// `keep-alive` (optional `progress`), `cancel` and `fail` (required `client_error_message`)
/// act on the session `id` and answer 200 without a body. `list` is the generic vAPI form
/// of list: there `id` names a library item, and the answer is `{"value": [id]}` (JSON).
#[utoipa::path(post, path = "/rest/com/vmware/content/library/item/download-session/id:{id}", operation_id = "RestDownloadSessionAction",
    tag = "rest", security(("api_key" = [])),
    params(
        ("id" = String, Path, description = "Download session id (library item id for `list`).", example = "0b1e7b3a-2b54-4a57-9a0e-3c9c43b1a2f0"),
        ("~action" = RestSessionIdAction, Query, description = "The operation."),
    ),
    request_body(content = Option<SessionActionBody>,
        description = "keep-alive: `{\"progress\"}`; fail: `{\"client_error_message\"}`; cancel, list: none.", example = json!({"client_error_message": "disk full"})),
    responses((status = 200, description = "Done: no body; for `list`, `{\"value\": [id]}`."), RestErrors<(BadRequest, Unauthenticated, NotFound, PayloadTooLarge)>))]
async fn session_action(service: Service, caller: Caller, Action(action): Action<RestSessionIdAction>, req: HttpRequest, body: Body) -> Reply<Either<RestValueStrings, Void>> {
    // The id names a library item for `list`, a session otherwise.
    let raw_id = req.match_info().get("id").unwrap_or_default();
    let action = match action {
        RestSessionIdAction::List => return Ok(Either::Left(value(service.list_sessions(&caller, Some(ItemId::parse(raw_id))).await)?)),
        RestSessionIdAction::KeepAlive => SessionAction::KeepAlive,
        RestSessionIdAction::Cancel => SessionAction::Cancel,
        RestSessionIdAction::Fail => SessionAction::Fail,
    };
    let id = SessionId::parse(raw_id)?;
    SessionActionBody::read(action, body).await?.run(&service, &caller, id).await?;
    Ok(Either::Right(Void))
}

/// Delete a download session
#[utoipa::path(delete, path = "/rest/com/vmware/content/library/item/download-session/id:{id}", operation_id = "RestDownloadSessionDelete",
    tag = "rest", security(("api_key" = [])), params(Id<SessionId>),
    responses((status = 200, description = "Deleted (no body)."), RestErrors<(Unauthenticated, NotFound)>))]
async fn delete_session(service: Service, caller: Caller, Id(id): Id<SessionId>) -> Reply<Void> {
    service.delete_session(&caller, id).await?;
    Ok(Void)
}

// ------------------------------------------------------------------- files

crate::query_params! {
    /// `GET /rest/com/vmware/content/library/item/downloadsession/file`.
    pub struct SessionFilesQuery {
        /// The session.
        #[param(value_type = String, example = "0b1e7b3a-2b54-4a57-9a0e-3c9c43b1a2f0")]
        pub download_session_id: SessionId,
    }
}

/// List the files of a download session
///
/// Renews the session's lease.
#[utoipa::path(get, path = "/rest/com/vmware/content/library/item/downloadsession/file", operation_id = "RestDownloadSessionFileList",
    tag = "rest", security(("api_key" = [])), params(SessionFilesQuery),
    responses((status = 200, description = "The files with their prepare status.", body = RestValueDownloadFiles),
        RestErrors<(BadRequest, Unauthenticated, NotFound)>))]
async fn list_files(service: Service, caller: Caller, Query(query): Query<SessionFilesQuery>) -> Reply<RestValueDownloadFiles> {
    value(service.list_files(&caller, query.download_session_id).await)
}

/// Get or prepare one file of a download session
///
/// `get`: the file's info. `prepare`: asks for the file to be staged (`endpoint_type`
/// `HTTPS` by default; `DIRECT` needs a session created with `ContentLibrary.ReadStorage`
/// and, on a local transfer store, `storage.transfer.direct_base`);
/// poll with `get` until `PREPARED`.
#[utoipa::path(post, path = "/rest/com/vmware/content/library/item/downloadsession/file/id:{id}", operation_id = "RestDownloadSessionFileAction",
    tag = "rest", security(("api_key" = [])),
    params(Id<SessionId>, ("~action" = RestFileAction, Query, description = "The operation.")),
    request_body(content = RestFileActionBody, description = "`{\"file_name\"}`, plus `endpoint_type` for prepare.",
        example = json!({"file_name": "disk-0.vmdk"})),
    responses((status = 200, description = "The file's info.", body = RestValueDownloadFile),
        RestErrors<(BadRequest, Unauthenticated, Unauthorized, NotFound, PayloadTooLarge)>))]
async fn file_action(service: Service, caller: Caller, Id(id): Id<SessionId>, Action(action): Action<RestFileAction>, body: Body) -> Reply<RestValueDownloadFile> {
    value(match RestFileActionBody::read(action, body).await? {
        RestFileActionBody::Get(spec) => service.get_file(&caller, id, FileName::parse(&spec.file_name)).await,
        RestFileActionBody::Prepare(spec) => service.prepare_file(&caller, id, spec.file_name(), spec.endpoint_type()?).await,
    })
}

// ----------------------------------------------------------- update sessions

/// Create an update session (or, with `~action=list`, list them)
///
/// Without `~action`: `{"client_token"?, "create_spec": {"library_item_id"}}`
/// (`ContentLibrary.UpdateSession`); one ACTIVE session per item (`resource_busy`). With
/// `~action=list`: the ids of the caller's update sessions, of one item when given.
#[utoipa::path(post, path = "/rest/com/vmware/content/library/item/update-session", operation_id = "RestUpdateSessionCreate",
    tag = "rest", security(("api_key" = [])),
    params(("~action" = Option<RestCollectionAction>, Query, description = "`list`: list sessions; absent: create.")),
    request_body(content = Option<RestCollectionBody>, description = "create: `{\"client_token\"?, \"create_spec\"}`; list: `{\"library_item_id\"?}`.",
        example = json!({"create_spec": {"library_item_id": "1c3a9e55-0d6e-4b5e-8f1a-3e2d4c5b6a79"}})),
    responses((status = 200, description = "`{\"value\": id}` (create) or `{\"value\": [id]}` (list).", body = RestIdOrIds),
        RestErrors<(BadRequest, Unauthenticated, Unauthorized, NotFound, PayloadTooLarge)>))]
async fn update_session_post(service: Service, caller: Caller, Action(action): Action<Option<RestCollectionAction>>, body: Body, req: HttpRequest) -> Reply<RestIdOrIds> {
    Ok(match RestCollectionBody::read(action, body).await? {
        RestCollectionBody::Create(spec) => {
            let spec = NewSession::parse(spec.create_spec.library_item_id.as_deref(), spec.client_token.as_deref());
            RestIdOrIds::Id(service.create_update_session(&caller, spec).await?.to_string().into())
        }
        RestCollectionBody::List(spec) => {
            let item = match spec.library_item_id {
                Some(item) => Some(ItemId::parse(&item)),
                None => SessionsQuery::from_query(&QueryString::of(&req))?.library_item_id,
            };
            RestIdOrIds::Ids(service.list_update_sessions(&caller, item).await?.into())
        }
    })
}

/// List update sessions
#[utoipa::path(get, path = "/rest/com/vmware/content/library/item/update-session", operation_id = "RestUpdateSessionList",
    tag = "rest", security(("api_key" = [])), params(SessionsQuery),
    responses((status = 200, description = "Session ids.", body = RestValueStrings), RestErrors<(BadRequest, Unauthenticated, Unauthorized, NotFound)>))]
async fn list_update_sessions(service: Service, caller: Caller, Query(query): Query<SessionsQuery>) -> Reply<RestValueStrings> {
    value(service.list_update_sessions(&caller, query.library_item_id).await)
}

/// Get an update session
#[utoipa::path(get, path = "/rest/com/vmware/content/library/item/update-session/id:{id}", operation_id = "RestUpdateSessionGet",
    tag = "rest", security(("api_key" = [])), params(Id<UpdateSessionId>),
    responses((status = 200, description = "The session.", body = RestValueUpdateSession), RestErrors<(Unauthenticated, NotFound)>))]
async fn get_update_session(service: Service, caller: Caller, Id(id): Id<UpdateSessionId>) -> Reply<RestValueUpdateSession> {
    value(service.get_update_session(&caller, id).await)
}

/// Keep alive, complete, cancel or fail an update session
///
/// 200 without a body; `complete` publishes the files as the item's next content version.
#[utoipa::path(post, path = "/rest/com/vmware/content/library/item/update-session/id:{id}", operation_id = "RestUpdateSessionAction",
    tag = "rest", security(("api_key" = [])),
    params(Id<UpdateSessionId>, ("~action" = RestUpdateIdAction, Query, description = "The operation.")),
    request_body(content = Option<UpdateActionBody>,
        description = "keep-alive: `{\"progress\"}`; fail: `{\"client_error_message\"}`; complete, cancel: none.", example = json!({"progress": 50})),
    responses((status = 200, description = "Done (no body)."), RestErrors<(BadRequest, Unauthenticated, NotFound, PayloadTooLarge)>))]
async fn update_session_action(service: Service, caller: Caller, Id(id): Id<UpdateSessionId>, Action(action): Action<RestUpdateIdAction>, body: Body) -> Reply<Void> {
    let action = match action {
        RestUpdateIdAction::KeepAlive => UpdateAction::KeepAlive,
        RestUpdateIdAction::Complete => UpdateAction::Complete,
        RestUpdateIdAction::Cancel => UpdateAction::Cancel,
        RestUpdateIdAction::Fail => UpdateAction::Fail,
    };
    UpdateActionBody::read(action, body).await?.run(&service, &caller, id).await?;
    Ok(Void)
}

/// Delete an update session
///
/// Only once it has ended (`not_allowed_in_current_state` while ACTIVE).
#[utoipa::path(delete, path = "/rest/com/vmware/content/library/item/update-session/id:{id}", operation_id = "RestUpdateSessionDelete",
    tag = "rest", security(("api_key" = [])), params(Id<UpdateSessionId>),
    responses((status = 200, description = "Deleted (no body)."), RestErrors<(BadRequest, Unauthenticated, NotFound)>))]
async fn delete_update_session(service: Service, caller: Caller, Id(id): Id<UpdateSessionId>) -> Reply<Void> {
    service.delete_update_session(&caller, id).await?;
    Ok(Void)
}

crate::query_params! {
    /// `GET /rest/com/vmware/content/library/item/updatesession/file`.
    pub struct UpdateFilesQuery {
        /// The session.
        #[param(value_type = String, example = "7a4c2e19-5b3d-4f60-8e2a-1d9c0b7f3e45")]
        pub update_session_id: UpdateSessionId,
    }
}

/// List the files of an update session
#[utoipa::path(get, path = "/rest/com/vmware/content/library/item/updatesession/file", operation_id = "RestUpdateSessionFileList",
    tag = "rest", security(("api_key" = [])), params(UpdateFilesQuery),
    responses((status = 200, description = "The files.", body = RestValueUpdateFiles), RestErrors<(BadRequest, Unauthenticated, NotFound)>))]
async fn list_update_files(service: Service, caller: Caller, Query(query): Query<UpdateFilesQuery>) -> Reply<RestValueUpdateFiles> {
    value(service.list_update_files(&caller, query.update_session_id).await)
}

/// Add, remove, get, list or validate the files of an update session
///
/// `add`: `{"file_spec": AddSpec}`, answers the file's info with its `upload_endpoint`;
/// `remove` and `get`: `{"file_name"}`; `list` and `validate`: no body.
#[utoipa::path(post, path = "/rest/com/vmware/content/library/item/updatesession/file/id:{id}", operation_id = "RestUpdateSessionFileAction",
    tag = "rest", security(("api_key" = [])),
    params(Id<UpdateSessionId>, ("~action" = RestUpdateFileAction, Query, description = "The operation.")),
    request_body(content = Option<RestAddBody>, description = "add: `{\"file_spec\"}`; remove, get: `{\"file_name\"}`; list, validate: none.",
        example = json!({"file_spec": {"name": "photon.iso", "source_type": "PUSH"}})),
    responses((status = 200, description = "`{\"value\": ...}` (add, get, list, validate) or no body (remove).", body = RestUpdateFileValue),
        RestErrors<(BadRequest, Unauthenticated, NotFound, PayloadTooLarge)>))]
async fn update_file_action(service: Service, caller: Caller, Id(id): Id<UpdateSessionId>, Action(action): Action<RestUpdateFileAction>, body: Body) -> Reply<RestUpdateFileAnswer> {
    Ok(match action {
        RestUpdateFileAction::Add => {
            let spec: RestAddBody = body.json().await?;
            RestUpdateFileAnswer::Value(RestUpdateFileValue::File(service.add_update_file(&caller, id, spec.file_spec.parse(service.pull_policy())).await?.into()))
        }
        RestUpdateFileAction::Remove => {
            let spec: RestFileNameBody = body.json().await?;
            service.remove_update_file(&caller, id, FileName::parse_or_missing(&spec.file_name)).await?;
            RestUpdateFileAnswer::Void
        }
        RestUpdateFileAction::Get => {
            let spec: RestFileNameBody = body.json().await?;
            RestUpdateFileAnswer::Value(RestUpdateFileValue::File(service.get_update_file(&caller, id, FileName::parse_or_missing(&spec.file_name)).await?.into()))
        }
        RestUpdateFileAction::List => RestUpdateFileAnswer::Value(RestUpdateFileValue::Files(service.list_update_files(&caller, id).await?.into())),
        RestUpdateFileAction::Validate => RestUpdateFileAnswer::Value(RestUpdateFileValue::Validation(service.validate_update_files(&caller, id).await?.into())),
    })
}
