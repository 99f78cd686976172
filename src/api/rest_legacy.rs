//! The legacy `/rest/com/vmware/...` surface (vSphere 6.5+, govc, Ansible): answers wrapped
//! in `{"value": ...}`, `?~action=`, `id:{id}` path ids, 200 without body for void operations.

use actix_web::{
    cookie::{time::Duration as CookieAge, Cookie},
    http::StatusCode,
    web, HttpRequest, HttpResponse, ResponseError,
};
use serde::{Deserialize, Serialize};

use super::{
    caller, inputs::*, json_body, login_basic, path_param, query_param, session_token, AppState,
    SESSION_HEADER,
};
use crate::{
    domain::{ItemId, LibraryId, SessionId},
    error::{ApiErrorBody, Error},
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

#[derive(Serialize)]
struct RestErrorBody {
    #[serde(rename = "type")]
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

fn unknown_action(action: Option<&str>) -> RestError {
    let a = action.unwrap_or("");
    RestError(Error::invalid_argument(
        "com.vmware.vapi.rest.unknown_action",
        format!("Unknown or missing ~action {a:?}."),
        &[a],
    ))
}

fn action(req: &HttpRequest) -> Result<Option<String>, Error> {
    query_param(req, "~action")
}

/// A query parameter the operation cannot do without.
fn required_query(req: &HttpRequest, name: &str) -> Result<String, Error> {
    query_param(req, name)?.ok_or_else(|| {
        Error::invalid_argument(
            "com.vmware.vapi.rest.missing_parameter",
            format!("Query parameter {name} is required."),
            &[name],
        )
    })
}

/// A JSON body the operation cannot do without.
async fn required_body<T: serde::de::DeserializeOwned>(
    state: &AppState,
    body: web::Payload,
    what: &str,
) -> Result<T, Error> {
    json_body(state, body).await?.ok_or_else(|| {
        Error::invalid_argument(
            "com.vmware.vapi.rest.missing_body",
            format!("This operation needs a JSON body with {what}."),
            &[what],
        )
    })
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

/// `POST /rest/com/vmware/cis/session`: login, or who-am-I with `~action=get`.
async fn session_post(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    match action(&req)?.as_deref() {
        None => login(&state, &req).await,
        Some("get") => {
            let token = session_token(&req).ok_or_else(Error::unauthenticated)?;
            value(state.service.whoami(&token).await?)
        }
        other => Err(unknown_action(other)),
    }
}

async fn login(state: &AppState, req: &HttpRequest) -> Reply {
    let token = login_basic(state, req).await?;
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

async fn logout(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let token = session_token(&req).ok_or_else(Error::unauthenticated)?;
    state.service.logout(&token).await?;
    let mut expired = session_cookie(&req, String::new());
    expired.set_max_age(CookieAge::ZERO);
    Ok(HttpResponse::Ok().cookie(expired).finish())
}

// ------------------------------------------------------------------- catalog

async fn list_libraries(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let caller = caller(&state, &req).await?;
    value(state.service.list_libraries(&caller).await?)
}

async fn get_library(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let caller = caller(&state, &req).await?;
    let id = LibraryId::parse(&path_param(&req, "id"))?;
    value(state.service.get_library(&caller, id).await?)
}

async fn list_items(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let caller = caller(&state, &req).await?;
    let library = LibraryId::parse(&required_query(&req, "library_id")?)?;
    value(state.service.list_items(&caller, library).await?)
}

async fn get_item(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let caller = caller(&state, &req).await?;
    let id = ItemId::parse(&path_param(&req, "id"))?;
    value(state.service.get_item(&caller, id).await?)
}

async fn item_files(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let caller = caller(&state, &req).await?;
    let item = ItemId::parse(&required_query(&req, "library_item_id")?)?;
    value(state.service.list_item_files(&caller, item).await?)
}

async fn item_file_action(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Payload,
) -> Reply {
    let caller = caller(&state, &req).await?;
    let action = action(&req)?;
    if action.as_deref() != Some("get") {
        return Err(unknown_action(action.as_deref()));
    }
    let item = ItemId::parse(&path_param(&req, "id"))?;
    let spec: ItemFileBody = required_body(&state, body, "name").await?;
    value(
        state
            .service
            .get_item_file(&caller, item, &spec.name)
            .await?,
    )
}

// --------------------------------------------------------- download sessions

/// `POST .../download-session`: create, or list with `~action=list`.
async fn download_session_post(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Payload,
) -> Reply {
    let caller = caller(&state, &req).await?;
    match action(&req)?.as_deref() {
        None => {
            let spec: CreateBody = json_body(&state, body).await?.unwrap_or_default();
            let id = state
                .service
                .create_session(
                    &caller,
                    spec.create_spec.library_item_id.as_deref(),
                    spec.client_token.as_deref(),
                )
                .await?;
            value(id.to_string())
        }
        Some("list") => {
            let spec: ListBody = json_body(&state, body).await?.unwrap_or_default();
            let item = match spec.library_item_id {
                Some(item) => Some(item),
                None => query_param(&req, "library_item_id")?,
            };
            value(
                state
                    .service
                    .list_sessions(&caller, item.as_deref())
                    .await?,
            )
        }
        other => Err(unknown_action(other)),
    }
}

async fn list_sessions(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let caller = caller(&state, &req).await?;
    let item = query_param(&req, "library_item_id")?;
    value(
        state
            .service
            .list_sessions(&caller, item.as_deref())
            .await?,
    )
}

async fn get_session(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let caller = caller(&state, &req).await?;
    let id = SessionId::parse(&path_param(&req, "id"))?;
    value(state.service.get_session(&caller, id).await?)
}

/// `POST .../download-session/id:{id}?~action=...`. For `list` the path id
/// names a library item, not a session.
async fn session_action(state: web::Data<AppState>, req: HttpRequest, body: web::Payload) -> Reply {
    let caller = caller(&state, &req).await?;
    let action = action(&req)?;
    let raw_id = path_param(&req, "id");
    match action.as_deref() {
        Some("list") => {
            return value(state.service.list_sessions(&caller, Some(&raw_id)).await?);
        }
        Some("keep-alive") => {
            let id = SessionId::parse(&raw_id)?;
            let spec: KeepAliveSpec = json_body(&state, body).await?.unwrap_or_default();
            state
                .service
                .keep_alive(&caller, id, spec.progress()?)
                .await?;
        }
        Some("cancel") => {
            let id = SessionId::parse(&raw_id)?;
            state.service.cancel(&caller, id).await?;
        }
        Some("fail") => {
            let id = SessionId::parse(&raw_id)?;
            let spec: FailSpec = json_body(&state, body).await?.unwrap_or_default();
            state
                .service
                .fail(&caller, id, spec.client_error_message.as_deref())
                .await?;
        }
        other => return Err(unknown_action(other)),
    }
    void()
}

async fn delete_session(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let caller = caller(&state, &req).await?;
    let id = SessionId::parse(&path_param(&req, "id"))?;
    state.service.delete_session(&caller, id).await?;
    void()
}

// ------------------------------------------------------------------- files

async fn list_files(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let caller = caller(&state, &req).await?;
    let id = SessionId::parse(&required_query(&req, "download_session_id")?)?;
    value(state.service.list_files(&caller, id).await?)
}

/// `POST .../downloadsession/file/id:{id}?~action=get|prepare`.
async fn file_action(state: web::Data<AppState>, req: HttpRequest, body: web::Payload) -> Reply {
    let caller = caller(&state, &req).await?;
    let action = action(&req)?;
    let id = SessionId::parse(&path_param(&req, "id"))?;
    match action.as_deref() {
        Some("get") => {
            let spec: FileNameBody = required_body(&state, body, "file_name").await?;
            value(state.service.get_file(&caller, id, &spec.file_name).await?)
        }
        Some("prepare") => {
            let spec: PrepareSpec = required_body(&state, body, "file_name").await?;
            value(
                state
                    .service
                    .prepare_file(&caller, id, &spec.file_name, spec.endpoint_type)
                    .await?,
            )
        }
        other => Err(unknown_action(other)),
    }
}
