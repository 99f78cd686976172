//! The `/api` surface (vSphere 7.0U2+ REST): plain JSON, `?action=`, 204 for void.

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse, ResponseError};

use super::{
    caller, inputs::*, json_body, login_basic, path_param, query_param, session_token, AppState,
};
use crate::{
    domain::{ItemId, LibraryId, SessionId},
    error::{ApiErrorBody, Error},
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

fn unknown_action(action: Option<&str>) -> ApiError {
    let a = action.unwrap_or("");
    ApiError(Error::invalid_argument(
        "com.vmware.vapi.rest.unknown_action",
        format!("Unknown or missing action {a:?}."),
        &[a],
    ))
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

async fn login(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let token = login_basic(&state, &req).await?;
    Ok(HttpResponse::Created().json(token))
}

async fn whoami(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let token = session_token(&req).ok_or_else(Error::unauthenticated)?;
    Ok(HttpResponse::Ok().json(state.service.whoami(&token).await?))
}

async fn logout(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let token = session_token(&req).ok_or_else(Error::unauthenticated)?;
    state.service.logout(&token).await?;
    no_content()
}

// ------------------------------------------------------------------- catalog

async fn list_libraries(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let caller = caller(&state, &req).await?;
    Ok(HttpResponse::Ok().json(state.service.list_libraries(&caller).await?))
}

async fn get_library(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let caller = caller(&state, &req).await?;
    let id = LibraryId::parse(&path_param(&req, "id"))?;
    Ok(HttpResponse::Ok().json(state.service.get_library(&caller, id).await?))
}

async fn list_items(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let caller = caller(&state, &req).await?;
    let library = query_param(&req, "library_id")?.ok_or_else(|| {
        Error::invalid_argument(
            "com.vmware.vapi.rest.missing_parameter",
            "Query parameter library_id is required.",
            &["library_id"],
        )
    })?;
    let library = LibraryId::parse(&library)?;
    Ok(HttpResponse::Ok().json(state.service.list_items(&caller, library).await?))
}

async fn get_item(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let caller = caller(&state, &req).await?;
    let id = ItemId::parse(&path_param(&req, "id"))?;
    Ok(HttpResponse::Ok().json(state.service.get_item(&caller, id).await?))
}

async fn item_files(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let caller = caller(&state, &req).await?;
    let id = ItemId::parse(&path_param(&req, "id"))?;
    match query_param(&req, "name")? {
        Some(name) => {
            Ok(HttpResponse::Ok().json(state.service.get_item_file(&caller, id, &name).await?))
        }
        None => Ok(HttpResponse::Ok().json(state.service.list_item_files(&caller, id).await?)),
    }
}

// --------------------------------------------------------- download sessions

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
    let id = state
        .service
        .create_session(&caller, spec.library_item_id.as_deref(), client_token)
        .await?;
    Ok(HttpResponse::Created().json(id.to_string()))
}

async fn list_sessions(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let caller = caller(&state, &req).await?;
    let item = query_param(&req, "library_item_id")?;
    Ok(HttpResponse::Ok().json(
        state
            .service
            .list_sessions(&caller, item.as_deref())
            .await?,
    ))
}

async fn get_session(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let caller = caller(&state, &req).await?;
    let id = SessionId::parse(&path_param(&req, "id"))?;
    Ok(HttpResponse::Ok().json(state.service.get_session(&caller, id).await?))
}

async fn session_action(state: web::Data<AppState>, req: HttpRequest, body: web::Payload) -> Reply {
    let caller = caller(&state, &req).await?;
    let action = query_param(&req, "action")?;
    let id = SessionId::parse(&path_param(&req, "id"))?;
    match action.as_deref() {
        Some("keep-alive") => {
            let spec: KeepAliveSpec = json_body(&state, body).await?.unwrap_or_default();
            state
                .service
                .keep_alive(&caller, id, spec.progress()?)
                .await?;
        }
        Some("cancel") => {
            state.service.cancel(&caller, id).await?;
        }
        Some("fail") => {
            let spec: FailSpec = json_body(&state, body).await?.unwrap_or_default();
            state
                .service
                .fail(&caller, id, spec.client_error_message.as_deref())
                .await?;
        }
        other => return Err(unknown_action(other)),
    }
    no_content()
}

async fn delete_session(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let caller = caller(&state, &req).await?;
    let id = SessionId::parse(&path_param(&req, "id"))?;
    state.service.delete_session(&caller, id).await?;
    no_content()
}

async fn files(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let caller = caller(&state, &req).await?;
    let id = SessionId::parse(&path_param(&req, "id"))?;
    match query_param(&req, "file_name")? {
        Some(name) => {
            Ok(HttpResponse::Ok().json(state.service.get_file(&caller, id, &name).await?))
        }
        None => Ok(HttpResponse::Ok().json(state.service.list_files(&caller, id).await?)),
    }
}

async fn file_action(state: web::Data<AppState>, req: HttpRequest, body: web::Payload) -> Reply {
    let caller = caller(&state, &req).await?;
    let action = query_param(&req, "action")?;
    let id = SessionId::parse(&path_param(&req, "id"))?;
    if action.as_deref() != Some("prepare") {
        return Err(unknown_action(action.as_deref()));
    }
    let spec: PrepareSpec = json_body(&state, body).await?.ok_or_else(|| {
        Error::invalid_argument(
            "com.vmware.vapi.rest.missing_body",
            "prepare needs a body with file_name.",
            &[],
        )
    })?;
    let info = state
        .service
        .prepare_file(&caller, id, &spec.file_name, spec.endpoint_type)
        .await?;
    Ok(HttpResponse::Ok().json(info))
}
