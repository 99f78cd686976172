//! The legacy `/rest/com/vmware/...` surface (vSphere 6.5+, govc, Ansible): answers wrapped
//! in `{"value": ...}`, `?~action=`, `id:{id}` path ids, 200 without body for void operations.

use actix_web::{
    cookie::{time::Duration as CookieAge, Cookie},
    http::StatusCode,
    web, HttpRequest, HttpResponse, ResponseError,
};
use serde::{Deserialize, Serialize};

use super::{
    caller, inputs::*, json_body, login_basic, path_param, query_param, required_body,
    required_query, required_token, unknown_action, AppState, SessionAction, SESSION_HEADER,
};
use crate::{
    domain::{FileName, ItemId, LibraryId, NewSession, SessionId},
    error::{ApiErrorBody, Error},
    openapi as doc,
};

/// Request header with which a client asks not to get the session cookie.
const HEADER_AUTHN_ONLY: &str = "vmware-use-header-authn";

/// The session cookie is scoped like vCenter's: only this surface reads it back.
const COOKIE_PATH: &str = "/rest";

/// An error rendered as the `/rest` body
/// `{"type": "com.vmware.vapi.std.errors.<kind>", "value": {"error_type", "messages"}}`.
#[derive(Debug)]
pub struct RestError(pub Error);

impl From<Error> for RestError {
    fn from(e: Error) -> Self {
        RestError(e)
    }
}

impl std::fmt::Display for RestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// `/rest` error body: `{"type": "com.vmware.vapi.std.errors.<kind>", "value": {"error_type", "messages"}}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RestErrorBody {
    #[serde(rename = "type")]
    #[schema(value_type = doc::VapiErrorType)]
    vapi_type: &'static str,
    value: ApiErrorBody,
}

impl ResponseError for RestError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        self.0.log();
        HttpResponse::build(self.status_code()).json(RestErrorBody {
            vapi_type: self.0.kind.vapi_type(),
            value: ApiErrorBody::from(&self.0),
        })
    }
}

type Reply = Result<HttpResponse, RestError>;

/// Every successful answer with a result is wrapped in `{"value": ...}`.
#[derive(Serialize)]
struct Wrapped<T> {
    value: T,
}

fn value<T: Serialize>(v: T) -> Reply {
    Ok(HttpResponse::Ok().json(Wrapped { value: v }))
}

/// Void operations answer 200 with no body (not 204 as on `/api`).
fn void() -> Reply {
    Ok(HttpResponse::Ok().finish())
}

fn action(req: &HttpRequest) -> Result<Option<String>, Error> {
    query_param(req, "~action")
}

// ------------------------------------------------------------ request bodies
// Only the /rest envelopes live here; their contents are the shared inputs.

/// `POST .../download-session`: the spec travels inside `create_spec`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    client_token: Option<String>,
    #[serde(default)]
    create_spec: CreateSpec,
}

/// `POST .../download-session?~action=list`: the generic vAPI REST form of list.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListBody {
    library_item_id: Option<String>,
}

/// `POST .../downloadsession/file/id:{id}?~action=get`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileNameBody {
    file_name: String,
}

/// `POST .../library/item/file/id:{item}?~action=get`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemFileBody {
    name: String,
}

// -------------------------------------------------------------------- routes

/// A resource whose unmatched methods answer with the `/rest` error body, not
/// actix's empty 405.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(not_found))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/rest")
            .service(
                resource("/com/vmware/cis/session")
                    .route(web::post().to(session_post))
                    .route(web::delete().to(logout)),
            )
            .service(
                resource("/com/vmware/content/library/item/download-session")
                    .route(web::post().to(download_session_post))
                    .route(web::get().to(list_sessions)),
            )
            .service(
                resource("/com/vmware/content/library/item/download-session/id:{id}")
                    .route(web::get().to(get_session))
                    .route(web::post().to(session_action))
                    .route(web::delete().to(delete_session)),
            )
            .service(
                resource("/com/vmware/content/library/item/downloadsession/file")
                    .route(web::get().to(list_files)),
            )
            .service(
                resource("/com/vmware/content/library/item/downloadsession/file/id:{id}")
                    .route(web::post().to(file_action)),
            )
            .service(
                resource("/com/vmware/content/library/item/file").route(web::get().to(item_files)),
            )
            .service(
                resource("/com/vmware/content/library/item/file/id:{id}")
                    .route(web::post().to(item_file_action)),
            )
            .service(resource("/com/vmware/content/library/item").route(web::get().to(list_items)))
            .service(
                resource("/com/vmware/content/library/item/id:{id}").route(web::get().to(get_item)),
            )
            .service(resource("/com/vmware/content/library").route(web::get().to(list_libraries)))
            .service(
                resource("/com/vmware/content/library/id:{id}").route(web::get().to(get_library)),
            )
            // Anything else under /rest still gets this surface's error body.
            .default_service(web::to(not_found)),
    );
}

async fn not_found(req: HttpRequest) -> Reply {
    let path = req.path().to_string();
    Err(RestError(Error::not_found(
        "com.vmware.vapi.rest.not_found",
        format!("No operation at {} {path}.", req.method()),
        &[&path],
    )))
}

// ------------------------------------------------------------------- session

/// Log in (or, with `~action=get`, who am I)
///
/// Without `~action`: checks the Basic credentials and answers `{"value": token}`, also
/// setting the `vmware-api-session-id` cookie (for path `/rest`) unless the request has
/// `vmware-use-header-authn: true`. With `~action=get`: the owner of the token sent.
#[utoipa::path(
    post,
    path = "/rest/com/vmware/cis/session",
    operation_id = "RestSessionCreate",
    tag = "rest",
    security(("basic_auth" = []), ("api_key" = [])),
    params(
        ("~action" = Option<doc::RestSessionAction>, Query, description = "`get`: who am I; absent: log in."),
        ("vmware-use-header-authn" = Option<String>, Header, description = "`true`: do not set the session cookie.", example = "true"),
    ),
    responses(
        (status = 200, description = "`{\"value\": token}` (login) or `{\"value\": SessionInfo}` (`~action=get`).", body = doc::RestLoginOrWhoAmI),
        (status = 400, response = doc::RestBadRequest),
        (status = 401, response = doc::RestUnauthenticated),
        (status = 500, response = doc::RestInternalServerError),
        (status = 503, response = doc::RestServiceUnavailable),
    )
)]
async fn session_post(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    match action(&req)?.as_deref() {
        None => login(&state, &req).await,
        Some("get") => {
            let token = required_token(&req)?;
            value(state.service.whoami(&token).await?)
        }
        other => Err(unknown_action("~action", other).into()),
    }
}

async fn login(state: &AppState, req: &HttpRequest) -> Reply {
    let token = login_basic(state, req).await?.into_string();
    let mut reply = HttpResponse::Ok();
    let header_only = req
        .headers()
        .get(HEADER_AUTHN_ONLY)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if !header_only {
        reply.cookie(session_cookie(req, token.clone()));
    }
    Ok(reply.json(Wrapped { value: token }))
}

fn session_cookie(req: &HttpRequest, token: String) -> Cookie<'static> {
    // Secure only when the client reached us over TLS: a Secure cookie sent
    // over plain HTTP would never come back.
    let https = req.connection_info().scheme() == "https";
    Cookie::build(SESSION_HEADER, token)
        .path(COOKIE_PATH)
        .http_only(true)
        .secure(https)
        .finish()
}

/// Log out
///
/// Ends the login everywhere and expires the session cookie.
#[utoipa::path(
    delete,
    path = "/rest/com/vmware/cis/session",
    operation_id = "RestSessionDelete",
    tag = "rest",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Logged out (no body)."),
        (status = 401, response = doc::RestUnauthenticated),
        (status = 500, response = doc::RestInternalServerError),
        (status = 503, response = doc::RestServiceUnavailable),
    )
)]
async fn logout(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let token = required_token(&req)?;
    state.service.logout(&token).await?;
    let mut expired = session_cookie(&req, String::new());
    expired.set_max_age(CookieAge::ZERO);
    Ok(HttpResponse::Ok().cookie(expired).finish())
}

// ------------------------------------------------------------------- catalog

/// List libraries
#[utoipa::path(
    get,
    path = "/rest/com/vmware/content/library",
    operation_id = "RestLibraryList",
    tag = "rest",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Library ids.", body = doc::RestValueStrings),
        (status = 401, response = doc::RestUnauthenticated),
        (status = 403, response = doc::RestUnauthorized),
        (status = 500, response = doc::RestInternalServerError),
        (status = 503, response = doc::RestServiceUnavailable),
    )
)]
async fn list_libraries(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let caller = caller(&state, &req).await?;
    value(state.service.list_libraries(&caller).await?)
}

/// Get a library
#[utoipa::path(
    get,
    path = "/rest/com/vmware/content/library/id:{id}",
    operation_id = "RestLibraryGet",
    tag = "rest",
    security(("api_key" = [])),
    params(
        ("id" = String, Path, description = "Library id.", example = "5d2f8a10-7c3b-4e9d-a1f6-0e4b3c2d1a98"),
    ),
    responses(
        (status = 200, description = "The library.", body = doc::RestValueLibrary),
        (status = 401, response = doc::RestUnauthenticated),
        (status = 403, response = doc::RestUnauthorized),
        (status = 404, response = doc::RestNotFound),
        (status = 500, response = doc::RestInternalServerError),
        (status = 503, response = doc::RestServiceUnavailable),
    )
)]
async fn get_library(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let caller = caller(&state, &req).await?;
    let id = LibraryId::parse(&path_param(&req, "id"))?;
    value(state.service.get_library(&caller, id).await?)
}

/// List the items of a library
#[utoipa::path(
    get,
    path = "/rest/com/vmware/content/library/item",
    operation_id = "RestLibraryItemList",
    tag = "rest",
    security(("api_key" = [])),
    params(
        ("library_id" = String, Query, description = "The library.", example = "5d2f8a10-7c3b-4e9d-a1f6-0e4b3c2d1a98"),
    ),
    responses(
        (status = 200, description = "Item ids.", body = doc::RestValueStrings),
        (status = 400, response = doc::RestBadRequest),
        (status = 401, response = doc::RestUnauthenticated),
        (status = 403, response = doc::RestUnauthorized),
        (status = 404, response = doc::RestNotFound),
        (status = 500, response = doc::RestInternalServerError),
        (status = 503, response = doc::RestServiceUnavailable),
    )
)]
async fn list_items(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let caller = caller(&state, &req).await?;
    let library = LibraryId::parse(&required_query(&req, "library_id")?)?;
    value(state.service.list_items(&caller, library).await?)
}

/// Get a library item
#[utoipa::path(
    get,
    path = "/rest/com/vmware/content/library/item/id:{id}",
    operation_id = "RestLibraryItemGet",
    tag = "rest",
    security(("api_key" = [])),
    params(
        ("id" = String, Path, description = "Library item id.", example = "1c3a9e55-0d6e-4b5e-8f1a-3e2d4c5b6a79"),
    ),
    responses(
        (status = 200, description = "The item.", body = doc::RestValueItem),
        (status = 401, response = doc::RestUnauthenticated),
        (status = 403, response = doc::RestUnauthorized),
        (status = 404, response = doc::RestNotFound),
        (status = 500, response = doc::RestInternalServerError),
        (status = 503, response = doc::RestServiceUnavailable),
    )
)]
async fn get_item(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let caller = caller(&state, &req).await?;
    let id = ItemId::parse(&path_param(&req, "id"))?;
    value(state.service.get_item(&caller, id).await?)
}

/// List the files of a library item
#[utoipa::path(
    get,
    path = "/rest/com/vmware/content/library/item/file",
    operation_id = "RestLibraryItemFileList",
    tag = "rest",
    security(("api_key" = [])),
    params(
        ("library_item_id" = String, Query, description = "The item.", example = "1c3a9e55-0d6e-4b5e-8f1a-3e2d4c5b6a79"),
    ),
    responses(
        (status = 200, description = "The files.", body = doc::RestValueItemFiles),
        (status = 400, response = doc::RestBadRequest),
        (status = 401, response = doc::RestUnauthenticated),
        (status = 403, response = doc::RestUnauthorized),
        (status = 404, response = doc::RestNotFound),
        (status = 500, response = doc::RestInternalServerError),
        (status = 503, response = doc::RestServiceUnavailable),
    )
)]
async fn item_files(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let caller = caller(&state, &req).await?;
    let item = ItemId::parse(&required_query(&req, "library_item_id")?)?;
    value(state.service.list_item_files(&caller, item).await?)
}

/// Get one file of a library item
#[utoipa::path(
    post,
    path = "/rest/com/vmware/content/library/item/file/id:{id}",
    operation_id = "RestLibraryItemFileGet",
    tag = "rest",
    security(("api_key" = [])),
    params(
        ("id" = String, Path, description = "Library item id.", example = "1c3a9e55-0d6e-4b5e-8f1a-3e2d4c5b6a79"),
        ("~action" = doc::RestItemFileAction, Query, description = "The operation."),
    ),
    request_body(content = doc::RestItemFileBody, description = "Which file."),
    responses(
        (status = 200, description = "The file.", body = doc::RestValueItemFile),
        (status = 400, response = doc::RestBadRequest),
        (status = 401, response = doc::RestUnauthenticated),
        (status = 403, response = doc::RestUnauthorized),
        (status = 404, response = doc::RestNotFound),
        (status = 413, response = doc::RestPayloadTooLarge),
        (status = 500, response = doc::RestInternalServerError),
        (status = 503, response = doc::RestServiceUnavailable),
    )
)]
async fn item_file_action(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Payload,
) -> Reply {
    let caller = caller(&state, &req).await?;
    let action = action(&req)?;
    if action.as_deref() != Some("get") {
        return Err(unknown_action("~action", action.as_deref()).into());
    }
    let item = ItemId::parse(&path_param(&req, "id"))?;
    let spec: ItemFileBody = required_body(&state, body, "name").await?;
    let name = FileName::parse_or_missing(&spec.name);
    value(state.service.get_item_file(&caller, item, name).await?)
}

// --------------------------------------------------------- download sessions

/// Create a download session (or, with `~action=list`, list them)
///
/// Without `~action`: creates a session for `create_spec.library_item_id`; the same
/// `client_token` from the same user answers the same id. With `~action=list`: the ids of
/// the caller's sessions, of one item when `library_item_id` is given (body or query).
#[utoipa::path(
    post,
    path = "/rest/com/vmware/content/library/item/download-session",
    operation_id = "RestDownloadSessionCreate",
    tag = "rest",
    security(("api_key" = [])),
    params(
        ("~action" = Option<doc::RestCollectionAction>, Query, description = "`list`: list sessions; absent: create."),
        ("library_item_id" = Option<String>, Query, description = "list: only the sessions of this item (when the body has none)."),
    ),
    request_body(content = Option<doc::RestCollectionBody>, description = "create: `{\"client_token\"?, \"create_spec\"}`; list: `{\"library_item_id\"?}`.", example = json!({"create_spec": {"library_item_id": "1c3a9e55-0d6e-4b5e-8f1a-3e2d4c5b6a79"}})),
    responses(
        // No links: with `~action=list` the value is a list, which a link would paste into a URL.
        (status = 200, description = "`{\"value\": id}` (create) or `{\"value\": [id]}` (list).", body = doc::RestIdOrIds),
        (status = 400, response = doc::RestBadRequest),
        (status = 401, response = doc::RestUnauthenticated),
        (status = 403, response = doc::RestUnauthorized),
        (status = 404, response = doc::RestNotFound),
        (status = 413, response = doc::RestPayloadTooLarge),
        (status = 500, response = doc::RestInternalServerError),
        (status = 503, response = doc::RestServiceUnavailable),
    )
)]
async fn download_session_post(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Payload,
) -> Reply {
    let caller = caller(&state, &req).await?;
    match action(&req)?.as_deref() {
        None => {
            let spec: CreateBody = json_body(&state, body).await?.unwrap_or_default();
            let spec = NewSession::parse(
                spec.create_spec.library_item_id.as_deref(),
                spec.client_token.as_deref(),
            );
            let id = state.service.create_session(&caller, spec).await?;
            value(id.to_string())
        }
        Some("list") => {
            let spec: ListBody = json_body(&state, body).await?.unwrap_or_default();
            let item = match spec.library_item_id {
                Some(item) => Some(item),
                None => query_param(&req, "library_item_id")?,
            };
            let item = item.as_deref().map(ItemId::parse);
            value(state.service.list_sessions(&caller, item).await?)
        }
        other => Err(unknown_action("~action", other).into()),
    }
}

/// List download sessions
#[utoipa::path(
    get,
    path = "/rest/com/vmware/content/library/item/download-session",
    operation_id = "RestDownloadSessionList",
    tag = "rest",
    security(("api_key" = [])),
    params(
        ("library_item_id" = Option<String>, Query, description = "Only the sessions of this item.", example = "1c3a9e55-0d6e-4b5e-8f1a-3e2d4c5b6a79"),
    ),
    responses(
        (status = 200, description = "Session ids.", body = doc::RestValueStrings),
        (status = 400, response = doc::RestBadRequest),
        (status = 401, response = doc::RestUnauthenticated),
        (status = 403, response = doc::RestUnauthorized),
        (status = 404, response = doc::RestNotFound),
        (status = 500, response = doc::RestInternalServerError),
        (status = 503, response = doc::RestServiceUnavailable),
    )
)]
async fn list_sessions(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let caller = caller(&state, &req).await?;
    let item = query_param(&req, "library_item_id")?;
    let item = item.as_deref().map(ItemId::parse);
    value(state.service.list_sessions(&caller, item).await?)
}

/// Get a download session
///
/// Renews the session's lease.
#[utoipa::path(
    get,
    path = "/rest/com/vmware/content/library/item/download-session/id:{id}",
    operation_id = "RestDownloadSessionGet",
    tag = "rest",
    security(("api_key" = [])),
    params(
        ("id" = String, Path, description = "Download session id.", example = "0b1e7b3a-2b54-4a57-9a0e-3c9c43b1a2f0"),
    ),
    responses(
        (status = 200, description = "The session.", body = doc::RestValueDownloadSession),
        (status = 401, response = doc::RestUnauthenticated),
        (status = 404, response = doc::RestNotFound),
        (status = 500, response = doc::RestInternalServerError),
        (status = 503, response = doc::RestServiceUnavailable),
    )
)]
async fn get_session(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let caller = caller(&state, &req).await?;
    let id = SessionId::parse(&path_param(&req, "id"))?;
    value(state.service.get_session(&caller, id).await?)
}

/// Keep alive, cancel or fail a download session (or list the sessions of an item)
///
/// `keep-alive` (optional `progress`), `cancel` and `fail` (required `client_error_message`)
/// act on the session `id` and answer 200 without a body. `list` is the generic vAPI form
/// of list: there `id` names a library item, and the answer is `{"value": [id]}` (JSON).
#[utoipa::path(
    post,
    path = "/rest/com/vmware/content/library/item/download-session/id:{id}",
    operation_id = "RestDownloadSessionAction",
    tag = "rest",
    security(("api_key" = [])),
    params(
        ("id" = String, Path, description = "Download session id (library item id for `list`).", example = "0b1e7b3a-2b54-4a57-9a0e-3c9c43b1a2f0"),
        ("~action" = doc::RestSessionIdAction, Query, description = "The operation."),
    ),
    request_body(content = Option<doc::SessionActionBody>, description = "keep-alive: `{\"progress\"}`; fail: `{\"client_error_message\"}`; cancel, list: none.", example = json!({"client_error_message": "disk full"})),
    responses(
        (status = 200, description = "Done: no body; for `list`, `{\"value\": [id]}`."),
        (status = 400, response = doc::RestBadRequest),
        (status = 401, response = doc::RestUnauthenticated),
        (status = 404, response = doc::RestNotFound),
        (status = 413, response = doc::RestPayloadTooLarge),
        (status = 500, response = doc::RestInternalServerError),
        (status = 503, response = doc::RestServiceUnavailable),
    )
)]
async fn session_action(state: web::Data<AppState>, req: HttpRequest, body: web::Payload) -> Reply {
    let caller = caller(&state, &req).await?;
    let action = action(&req)?;
    let raw_id = path_param(&req, "id");
    match action.as_deref() {
        Some("list") => {
            let item = Some(ItemId::parse(&raw_id));
            return value(state.service.list_sessions(&caller, item).await?);
        }
        other => {
            let action = SessionAction::parse("~action", other)?;
            action
                .run(&state, &caller, SessionId::parse(&raw_id)?, body)
                .await?;
        }
    }
    void()
}

/// Delete a download session
#[utoipa::path(
    delete,
    path = "/rest/com/vmware/content/library/item/download-session/id:{id}",
    operation_id = "RestDownloadSessionDelete",
    tag = "rest",
    security(("api_key" = [])),
    params(
        ("id" = String, Path, description = "Download session id.", example = "0b1e7b3a-2b54-4a57-9a0e-3c9c43b1a2f0"),
    ),
    responses(
        (status = 200, description = "Deleted (no body)."),
        (status = 401, response = doc::RestUnauthenticated),
        (status = 404, response = doc::RestNotFound),
        (status = 500, response = doc::RestInternalServerError),
        (status = 503, response = doc::RestServiceUnavailable),
    )
)]
async fn delete_session(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let caller = caller(&state, &req).await?;
    let id = SessionId::parse(&path_param(&req, "id"))?;
    state.service.delete_session(&caller, id).await?;
    void()
}

// ------------------------------------------------------------------- files

/// List the files of a download session
///
/// Renews the session's lease.
#[utoipa::path(
    get,
    path = "/rest/com/vmware/content/library/item/downloadsession/file",
    operation_id = "RestDownloadSessionFileList",
    tag = "rest",
    security(("api_key" = [])),
    params(
        ("download_session_id" = String, Query, description = "The session.", example = "0b1e7b3a-2b54-4a57-9a0e-3c9c43b1a2f0"),
    ),
    responses(
        (status = 200, description = "The files with their prepare status.", body = doc::RestValueDownloadFiles),
        (status = 400, response = doc::RestBadRequest),
        (status = 401, response = doc::RestUnauthenticated),
        (status = 404, response = doc::RestNotFound),
        (status = 500, response = doc::RestInternalServerError),
        (status = 503, response = doc::RestServiceUnavailable),
    )
)]
async fn list_files(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let caller = caller(&state, &req).await?;
    let id = SessionId::parse(&required_query(&req, "download_session_id")?)?;
    value(state.service.list_files(&caller, id).await?)
}

/// Get or prepare one file of a download session
///
/// `get`: the file's info. `prepare`: asks for the file to be staged (`endpoint_type`
/// `HTTPS` by default; `DIRECT` needs a session created with `ContentLibrary.ReadStorage`);
/// poll with `get` until `PREPARED`.
#[utoipa::path(
    post,
    path = "/rest/com/vmware/content/library/item/downloadsession/file/id:{id}",
    operation_id = "RestDownloadSessionFileAction",
    tag = "rest",
    security(("api_key" = [])),
    params(
        ("id" = String, Path, description = "Download session id.", example = "0b1e7b3a-2b54-4a57-9a0e-3c9c43b1a2f0"),
        ("~action" = doc::RestFileAction, Query, description = "The operation."),
    ),
    request_body(content = doc::RestFileActionBody, description = "`{\"file_name\"}`, plus `endpoint_type` for prepare.", example = json!({"file_name": "disk-0.vmdk"})),
    responses(
        (status = 200, description = "The file's info.", body = doc::RestValueDownloadFile),
        (status = 400, response = doc::RestBadRequest),
        (status = 401, response = doc::RestUnauthenticated),
        (status = 403, response = doc::RestUnauthorized),
        (status = 404, response = doc::RestNotFound),
        (status = 413, response = doc::RestPayloadTooLarge),
        (status = 500, response = doc::RestInternalServerError),
        (status = 503, response = doc::RestServiceUnavailable),
    )
)]
async fn file_action(state: web::Data<AppState>, req: HttpRequest, body: web::Payload) -> Reply {
    let caller = caller(&state, &req).await?;
    let action = action(&req)?;
    let id = SessionId::parse(&path_param(&req, "id"))?;
    match action.as_deref() {
        Some("get") => {
            let spec: FileNameBody = required_body(&state, body, "file_name").await?;
            let name = FileName::parse(&spec.file_name);
            value(state.service.get_file(&caller, id, name).await?)
        }
        Some("prepare") => {
            let spec: PrepareSpec = required_body(&state, body, "file_name").await?;
            value(
                state
                    .service
                    .prepare_file(
                        &caller,
                        id,
                        FileName::parse(&spec.file_name),
                        spec.endpoint_type()?,
                    )
                    .await?,
            )
        }
        other => Err(unknown_action("~action", other).into()),
    }
}
