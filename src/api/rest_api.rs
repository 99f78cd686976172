//! The `/api` surface (vSphere 7.0U2+ REST): plain JSON, `?action=`, 204 for void.

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse, ResponseError};

use super::{
    caller, inputs::*, json_body, login_basic, path_param, query_param, required_body,
    required_query, required_token, unknown_action, AppState, SessionAction,
};
use crate::{
    domain::{
        models::{DownloadFileInfo, DownloadSessionModel, ItemModel, LibraryModel, SessionInfo},
        FileName, ItemId, LibraryId, NewSession, SessionId,
    },
    error::{ApiErrorBody, Error},
    openapi as doc,
};

/// An error rendered as the `/api` body `{"error_type", "messages"}`.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        self.0.log();
        HttpResponse::build(self.status_code()).json(ApiErrorBody::from(&self.0))
    }
}

type Reply = Result<HttpResponse, ApiError>;

fn no_content() -> Reply {
    Ok(HttpResponse::NoContent().finish())
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/session")
            .route(web::post().to(login))
            .route(web::get().to(whoami))
            .route(web::delete().to(logout)),
    )
    .service(
        web::resource("/api/content/library/item/download-session")
            .route(web::post().to(create_session))
            .route(web::get().to(list_sessions)),
    )
    .service(
        web::resource("/api/content/library/item/download-session/{id}")
            .route(web::get().to(get_session))
            .route(web::post().to(session_action))
            .route(web::delete().to(delete_session)),
    )
    .service(
        web::resource("/api/content/library/item/download-session/{id}/file")
            .route(web::get().to(files))
            .route(web::post().to(file_action)),
    )
    .service(web::resource("/api/content/library").route(web::get().to(list_libraries)))
    .service(web::resource("/api/content/library/item").route(web::get().to(list_items)))
    .service(web::resource("/api/content/library/item/{id}").route(web::get().to(get_item)))
    .service(web::resource("/api/content/library/item/{id}/file").route(web::get().to(item_files)))
    .service(web::resource("/api/content/library/{id}").route(web::get().to(get_library)));
}

// ------------------------------------------------------------------- session

/// Log in
///
/// Checks the user name and password of the Basic header and answers a new
/// login token (a JSON string) for the `vmware-api-session-id` header.
#[utoipa::path(
    post,
    path = "/api/session",
    operation_id = "SessionCreate",
    tag = "session",
    security(("basic_auth" = [])),
    responses(
        (status = 201, description = "The login token.", body = String, content_type = "application/json",
            example = json!("q8yW4rXl0d3JvLfS2nHk7tA9bQpZ1mVeC6uGxYiOaNs")),
        (status = 401, response = doc::ApiUnauthenticated),
        (status = 500, response = doc::ApiInternalServerError),
        (status = 503, response = doc::ApiServiceUnavailable),
    )
)]
async fn login(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let token = login_basic(&state, &req).await?.into_string();
    Ok(HttpResponse::Created().json(token))
}

/// Who am I
///
/// The user the login token belongs to, and when it was created and last used.
#[utoipa::path(
    get,
    path = "/api/session",
    operation_id = "SessionGet",
    tag = "session",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The token's owner.", body = SessionInfo),
        (status = 401, response = doc::ApiUnauthenticated),
        (status = 500, response = doc::ApiInternalServerError),
        (status = 503, response = doc::ApiServiceUnavailable),
    )
)]
async fn whoami(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let token = required_token(&req)?;
    Ok(HttpResponse::Ok().json(state.service.whoami(&token).await?))
}

/// Log out
///
/// Ends the login: the token stops working on every instance.
#[utoipa::path(
    delete,
    path = "/api/session",
    operation_id = "SessionDelete",
    tag = "session",
    security(("api_key" = [])),
    responses(
        (status = 204, description = "Logged out."),
        (status = 401, response = doc::ApiUnauthenticated),
        (status = 500, response = doc::ApiInternalServerError),
        (status = 503, response = doc::ApiServiceUnavailable),
    )
)]
async fn logout(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let token = required_token(&req)?;
    state.service.logout(&token).await?;
    no_content()
}

// ------------------------------------------------------------------- catalog

/// List libraries
///
/// Ids of every library (`System.Read`).
#[utoipa::path(
    get,
    path = "/api/content/library",
    operation_id = "LibraryList",
    tag = "library",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Library ids.", body = Vec<String>,
            example = json!(["5d2f8a10-7c3b-4e9d-a1f6-0e4b3c2d1a98"])),
        (status = 401, response = doc::ApiUnauthenticated),
        (status = 403, response = doc::ApiUnauthorized),
        (status = 500, response = doc::ApiInternalServerError),
        (status = 503, response = doc::ApiServiceUnavailable),
    )
)]
async fn list_libraries(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let caller = caller(&state, &req).await?;
    Ok(HttpResponse::Ok().json(state.service.list_libraries(&caller).await?))
}

/// Get a library
#[utoipa::path(
    get,
    path = "/api/content/library/{id}",
    operation_id = "LibraryGet",
    tag = "library",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "Library id.", example = "5d2f8a10-7c3b-4e9d-a1f6-0e4b3c2d1a98")),
    responses(
        (status = 200, description = "The library.", body = LibraryModel),
        (status = 401, response = doc::ApiUnauthenticated),
        (status = 403, response = doc::ApiUnauthorized),
        (status = 404, response = doc::ApiNotFound),
        (status = 500, response = doc::ApiInternalServerError),
        (status = 503, response = doc::ApiServiceUnavailable),
    )
)]
async fn get_library(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let caller = caller(&state, &req).await?;
    let id = LibraryId::parse(&path_param(&req, "id"))?;
    Ok(HttpResponse::Ok().json(state.service.get_library(&caller, id).await?))
}

/// List the items of a library
#[utoipa::path(
    get,
    path = "/api/content/library/item",
    operation_id = "LibraryItemList",
    tag = "library",
    security(("api_key" = [])),
    params(("library_id" = String, Query, description = "The library.", example = "5d2f8a10-7c3b-4e9d-a1f6-0e4b3c2d1a98")),
    responses(
        (status = 200, description = "Item ids.", body = Vec<String>,
            example = json!(["1c3a9e55-0d6e-4b5e-8f1a-3e2d4c5b6a79"])),
        (status = 400, response = doc::ApiBadRequest),
        (status = 401, response = doc::ApiUnauthenticated),
        (status = 403, response = doc::ApiUnauthorized),
        (status = 404, response = doc::ApiNotFound),
        (status = 500, response = doc::ApiInternalServerError),
        (status = 503, response = doc::ApiServiceUnavailable),
    )
)]
async fn list_items(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let caller = caller(&state, &req).await?;
    let library = required_query(&req, "library_id")?;
    let library = LibraryId::parse(&library)?;
    Ok(HttpResponse::Ok().json(state.service.list_items(&caller, library).await?))
}

/// Get a library item
#[utoipa::path(
    get,
    path = "/api/content/library/item/{id}",
    operation_id = "LibraryItemGet",
    tag = "library",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "Library item id.", example = "1c3a9e55-0d6e-4b5e-8f1a-3e2d4c5b6a79")),
    responses(
        (status = 200, description = "The item.", body = ItemModel),
        (status = 401, response = doc::ApiUnauthenticated),
        (status = 403, response = doc::ApiUnauthorized),
        (status = 404, response = doc::ApiNotFound),
        (status = 500, response = doc::ApiInternalServerError),
        (status = 503, response = doc::ApiServiceUnavailable),
    )
)]
async fn get_item(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let caller = caller(&state, &req).await?;
    let id = ItemId::parse(&path_param(&req, "id"))?;
    Ok(HttpResponse::Ok().json(state.service.get_item(&caller, id).await?))
}

/// List (or get) the files of a library item
///
/// Without `name`, every file of the item's current content version; with it, that file.
#[utoipa::path(
    get,
    path = "/api/content/library/item/{id}/file",
    operation_id = "LibraryItemFileList",
    tag = "library",
    security(("api_key" = [])),
    params(
        ("id" = String, Path, description = "Library item id.", example = "1c3a9e55-0d6e-4b5e-8f1a-3e2d4c5b6a79"),
        ("name" = Option<String>, Query, description = "Only this file (`INVALID_ARGUMENT` when the item has none of that name).", example = "disk-0.vmdk"),
    ),
    responses(
        (status = 200, description = "The files, or the one named.", body = doc::ItemFileInfoOrList),
        (status = 400, response = doc::ApiBadRequest),
        (status = 401, response = doc::ApiUnauthenticated),
        (status = 403, response = doc::ApiUnauthorized),
        (status = 404, response = doc::ApiNotFound),
        (status = 500, response = doc::ApiInternalServerError),
        (status = 503, response = doc::ApiServiceUnavailable),
    )
)]
async fn item_files(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let caller = caller(&state, &req).await?;
    let id = ItemId::parse(&path_param(&req, "id"))?;
    match query_param(&req, "name")? {
        Some(name) => {
            let name = FileName::parse_or_missing(&name);
            Ok(HttpResponse::Ok().json(state.service.get_item_file(&caller, id, name).await?))
        }
        None => Ok(HttpResponse::Ok().json(state.service.list_item_files(&caller, id).await?)),
    }
}

// --------------------------------------------------------- download sessions

/// Create a download session
///
/// A session for the files of one library item (`ContentLibrary.DownloadSession`). The
/// same `Client-Token` from the same user answers the same session id. Of the
/// DownloadSessionModel only `library_item_id` is used.
#[utoipa::path(
    post,
    path = "/api/content/library/item/download-session",
    operation_id = "DownloadSessionCreate",
    tag = "download_session",
    security(("api_key" = [])),
    params(("Client-Token" = Option<String>, Header, description = "Idempotency token, 1 to 256 visible ASCII characters.", example = "6f9d2c4e-1b7a-4e0f-9c3d-2a8b5e7f1c90")),
    request_body(content = super::inputs::CreateSpec, description = "The create spec.",
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
        (status = 400, response = doc::ApiBadRequest),
        (status = 401, response = doc::ApiUnauthenticated),
        (status = 403, response = doc::ApiUnauthorized),
        (status = 404, response = doc::ApiNotFound),
        (status = 413, response = doc::ApiPayloadTooLarge),
        (status = 500, response = doc::ApiInternalServerError),
        (status = 503, response = doc::ApiServiceUnavailable),
    )
)]
async fn create_session(state: web::Data<AppState>, req: HttpRequest, body: web::Payload) -> Reply {
    let caller = caller(&state, &req).await?;
    let spec: CreateSpec = json_body(&state, body).await?.unwrap_or_default();
    let client_token = match req.headers().get("client-token") {
        Some(v) => Some(v.to_str().map_err(|_| {
            Error::invalid_argument(
                "com.vmware.vapi.std.errors.invalid_client_token",
                "The Client-Token header must be visible ASCII.",
                &[],
            )
        })?),
        None => None,
    };
    let spec = NewSession::parse(spec.library_item_id.as_deref(), client_token);
    let id = state.service.create_session(&caller, spec).await?;
    Ok(HttpResponse::Created().json(id.to_string()))
}

/// List download sessions
///
/// Ids of the caller's sessions, optionally of one item (`ContentLibrary.DownloadSession`).
#[utoipa::path(
    get,
    path = "/api/content/library/item/download-session",
    operation_id = "DownloadSessionList",
    tag = "download_session",
    security(("api_key" = [])),
    params(("library_item_id" = Option<String>, Query, description = "Only the sessions of this item.", example = "1c3a9e55-0d6e-4b5e-8f1a-3e2d4c5b6a79")),
    responses(
        (status = 200, description = "Session ids.", body = Vec<String>,
            example = json!(["0b1e7b3a-2b54-4a57-9a0e-3c9c43b1a2f0"])),
        (status = 400, response = doc::ApiBadRequest),
        (status = 401, response = doc::ApiUnauthenticated),
        (status = 403, response = doc::ApiUnauthorized),
        (status = 404, response = doc::ApiNotFound),
        (status = 500, response = doc::ApiInternalServerError),
        (status = 503, response = doc::ApiServiceUnavailable),
    )
)]
async fn list_sessions(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let caller = caller(&state, &req).await?;
    let item = query_param(&req, "library_item_id")?;
    let item = item.as_deref().map(ItemId::parse);
    Ok(HttpResponse::Ok().json(state.service.list_sessions(&caller, item).await?))
}

/// Get a download session
///
/// Renews the session's lease.
#[utoipa::path(
    get,
    path = "/api/content/library/item/download-session/{id}",
    operation_id = "DownloadSessionGet",
    tag = "download_session",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "Download session id.", example = "0b1e7b3a-2b54-4a57-9a0e-3c9c43b1a2f0")),
    responses(
        (status = 200, description = "The session.", body = DownloadSessionModel),
        (status = 401, response = doc::ApiUnauthenticated),
        (status = 404, response = doc::ApiNotFound),
        (status = 500, response = doc::ApiInternalServerError),
        (status = 503, response = doc::ApiServiceUnavailable),
    )
)]
async fn get_session(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let caller = caller(&state, &req).await?;
    let id = SessionId::parse(&path_param(&req, "id"))?;
    Ok(HttpResponse::Ok().json(state.service.get_session(&caller, id).await?))
}

/// Keep alive, cancel or fail a download session
///
/// `action=keep-alive` renews the lease (optional `progress`); `action=cancel` cancels
/// the session and invalidates its download URIs; `action=fail` puts it in ERROR with
/// the client's `client_error_message` (required). Each needs an ACTIVE session
/// (`NOT_ALLOWED_IN_CURRENT_STATE` otherwise).
#[utoipa::path(
    post,
    path = "/api/content/library/item/download-session/{id}",
    operation_id = "DownloadSessionAction",
    tag = "download_session",
    security(("api_key" = [])),
    params(
        ("id" = String, Path, description = "Download session id.", example = "0b1e7b3a-2b54-4a57-9a0e-3c9c43b1a2f0"),
        ("action" = doc::SessionAction, Query, description = "The operation."),
    ),
    request_body(content = Option<doc::SessionActionBody>, description = "keep-alive: `{\"progress\"}`; fail: `{\"client_error_message\"}`; cancel: none.",
        example = json!({"progress": 42})),
    responses(
        (status = 204, description = "Done."),
        (status = 400, response = doc::ApiBadRequest),
        (status = 401, response = doc::ApiUnauthenticated),
        (status = 404, response = doc::ApiNotFound),
        (status = 413, response = doc::ApiPayloadTooLarge),
        (status = 500, response = doc::ApiInternalServerError),
        (status = 503, response = doc::ApiServiceUnavailable),
    )
)]
async fn session_action(state: web::Data<AppState>, req: HttpRequest, body: web::Payload) -> Reply {
    let caller = caller(&state, &req).await?;
    let action = query_param(&req, "action")?;
    let id = SessionId::parse(&path_param(&req, "id"))?;
    SessionAction::parse("action", action.as_deref())?
        .run(&state, &caller, id, body)
        .await?;
    no_content()
}

/// Delete a download session
#[utoipa::path(
    delete,
    path = "/api/content/library/item/download-session/{id}",
    operation_id = "DownloadSessionDelete",
    tag = "download_session",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "Download session id.", example = "0b1e7b3a-2b54-4a57-9a0e-3c9c43b1a2f0")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 401, response = doc::ApiUnauthenticated),
        (status = 404, response = doc::ApiNotFound),
        (status = 500, response = doc::ApiInternalServerError),
        (status = 503, response = doc::ApiServiceUnavailable),
    )
)]
async fn delete_session(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let caller = caller(&state, &req).await?;
    let id = SessionId::parse(&path_param(&req, "id"))?;
    state.service.delete_session(&caller, id).await?;
    no_content()
}

/// List (or get) the files of a download session
///
/// Without `file_name`, every file of the session with its prepare status; with it, that
/// file. A PREPARED file carries its `download_endpoint`. Renews the session's lease.
#[utoipa::path(
    get,
    path = "/api/content/library/item/download-session/{id}/file",
    operation_id = "DownloadSessionFileList",
    tag = "download_session_file",
    security(("api_key" = [])),
    params(
        ("id" = String, Path, description = "Download session id.", example = "0b1e7b3a-2b54-4a57-9a0e-3c9c43b1a2f0"),
        ("file_name" = Option<String>, Query, description = "Only this file (`INVALID_ARGUMENT` when the session has none of that name).", example = "disk-0.vmdk"),
    ),
    responses(
        (status = 200, description = "The files, or the one named.", body = doc::DownloadFileInfoOrList),
        (status = 400, response = doc::ApiBadRequest),
        (status = 401, response = doc::ApiUnauthenticated),
        (status = 404, response = doc::ApiNotFound),
        (status = 500, response = doc::ApiInternalServerError),
        (status = 503, response = doc::ApiServiceUnavailable),
    )
)]
async fn files(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let caller = caller(&state, &req).await?;
    let id = SessionId::parse(&path_param(&req, "id"))?;
    match query_param(&req, "file_name")? {
        Some(name) => {
            let name = FileName::parse(&name);
            Ok(HttpResponse::Ok().json(state.service.get_file(&caller, id, name).await?))
        }
        None => Ok(HttpResponse::Ok().json(state.service.list_files(&caller, id).await?)),
    }
}

/// Prepare a file for download
///
/// Asks for the file to be staged; poll its info until `PREPARED` (then it has a
/// `download_endpoint`) or `ERROR`. A file already requested, preparing or prepared
/// answers its current info. `DIRECT` needs a session created with
/// `ContentLibrary.ReadStorage` (`UNAUTHORIZED` otherwise).
#[utoipa::path(
    post,
    path = "/api/content/library/item/download-session/{id}/file",
    operation_id = "DownloadSessionFilePrepare",
    tag = "download_session_file",
    security(("api_key" = [])),
    params(
        ("id" = String, Path, description = "Download session id.", example = "0b1e7b3a-2b54-4a57-9a0e-3c9c43b1a2f0"),
        ("action" = doc::FileAction, Query, description = "The operation."),
    ),
    request_body(content = super::inputs::PrepareSpec, description = "Which file, and how to hand it out.",
        example = json!({"file_name": "disk-0.vmdk", "endpoint_type": "HTTPS"})),
    responses(
        (status = 200, description = "The file's info.", body = DownloadFileInfo),
        (status = 400, response = doc::ApiBadRequest),
        (status = 401, response = doc::ApiUnauthenticated),
        (status = 403, response = doc::ApiUnauthorized),
        (status = 404, response = doc::ApiNotFound),
        (status = 413, response = doc::ApiPayloadTooLarge),
        (status = 500, response = doc::ApiInternalServerError),
        (status = 503, response = doc::ApiServiceUnavailable),
    )
)]
async fn file_action(state: web::Data<AppState>, req: HttpRequest, body: web::Payload) -> Reply {
    let caller = caller(&state, &req).await?;
    let action = query_param(&req, "action")?;
    let id = SessionId::parse(&path_param(&req, "id"))?;
    if action.as_deref() != Some("prepare") {
        return Err(unknown_action("action", action.as_deref()).into());
    }
    let spec: PrepareSpec = required_body(&state, body, "file_name").await?;
    let info = state
        .service
        .prepare_file(
            &caller,
            id,
            FileName::parse(&spec.file_name),
            spec.endpoint_type()?,
        )
        .await?;
    Ok(HttpResponse::Ok().json(info))
}
