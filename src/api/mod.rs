//! The HTTP surfaces. Each module translates one wire format to the service
//! core and back; what they share (credentials, bounded body reading, query
//! parsing) lives here so no surface re-implements it.

pub mod inputs;
pub mod jsonrpc;
pub mod ops;
pub mod rest_api;
pub mod rest_legacy;

use actix_web::{web, HttpRequest};
use base64::{engine::general_purpose::STANDARD, Engine};
use bytes::BytesMut;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use self::inputs::{FailSpec, KeepAliveSpec};
use crate::{
    domain::{Caller, ClientErrorMessage, LoginToken, Password, SessionId, UserName},
    error::{Error, Result},
    service::Service,
};

/// Header (and cookie) carrying the login token.
pub const SESSION_HEADER: &str = "vmware-api-session-id";

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub service: Service,
    pub max_body: usize,
}

/// The login token of a request: header first, then cookie.
pub fn session_token(req: &HttpRequest) -> Option<String> {
    if let Some(v) = req.headers().get(SESSION_HEADER) {
        return v.to_str().ok().map(|s| s.trim().to_string());
    }
    req.cookie(SESSION_HEADER).map(|c| c.value().to_string())
}

/// The login token of a request, or UNAUTHENTICATED.
pub fn required_token(req: &HttpRequest) -> Result<LoginToken> {
    LoginToken::parse(&session_token(req).ok_or_else(Error::unauthenticated)?)
}

/// The authenticated caller, or UNAUTHENTICATED.
pub async fn caller(state: &AppState, req: &HttpRequest) -> Result<Caller> {
    state.service.authenticate(&required_token(req)?).await
}

/// User name and password of an `Authorization: Basic` header.
pub fn basic_credentials(req: &HttpRequest) -> Option<(String, String)> {
    let value = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(rest.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Logs in with Basic credentials (shared by `/api` and `/rest`).
pub async fn login_basic(state: &AppState, req: &HttpRequest) -> Result<LoginToken> {
    let (user, password) = basic_credentials(req).ok_or_else(Error::unauthenticated)?;
    state
        .service
        .login(&login_name(&user)?, &Password::new(password))
        .await
}

/// The user name of a login; one no user can have is a failed login.
pub fn login_name(raw: &str) -> Result<UserName> {
    UserName::parse(raw).inspect_err(|_| {
        tracing::warn!("failed login with an impossible user name");
    })
}

/// Reads a request body of at most `limit` bytes (413 beyond).
pub async fn read_body(mut payload: web::Payload, limit: usize) -> Result<bytes::Bytes> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            Error::invalid_argument(
                "com.vmware.vapi.rest.bad_request_body",
                format!("The request body could not be read: {e}"),
                &[],
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(Error::payload_too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Parses a JSON body; an empty body and a JSON `null` are `None` (the spec
/// declares optional bodies nullable, so generated clients may send `null`).
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<Option<T>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice::<Option<T>>(body).map_err(|e| {
        Error::invalid_argument(
            "com.vmware.vapi.rest.json_parse_error",
            format!("The request body is not valid: {e}"),
            &[&e.to_string()],
        )
    })
}

/// Reads and parses a JSON body in one step.
pub async fn json_body<T: DeserializeOwned>(
    state: &AppState,
    payload: web::Payload,
) -> Result<Option<T>> {
    let body = read_body(payload, state.max_body).await?;
    parse_json(&body)
}

/// A JSON body the operation cannot do without (INVALID_ARGUMENT when absent).
pub async fn required_body<T: DeserializeOwned>(
    state: &AppState,
    payload: web::Payload,
    what: &str,
) -> Result<T> {
    json_body(state, payload).await?.ok_or_else(|| {
        Error::invalid_argument(
            "com.vmware.vapi.rest.missing_body",
            format!("This operation needs a JSON body with {what}."),
            &[what],
        )
    })
}

/// An action query value no operation answers to; `param` is `action` on
/// `/api`, `~action` on `/rest`.
pub fn unknown_action(param: &str, action: Option<&str>) -> Error {
    let a = action.unwrap_or("");
    Error::invalid_argument(
        "com.vmware.vapi.rest.unknown_action",
        format!("Unknown or missing {param} {a:?}."),
        &[a],
    )
}

/// The void state actions on one session, shared by both REST surfaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionAction {
    KeepAlive,
    Cancel,
    Fail,
}

impl SessionAction {
    pub fn parse(param: &str, action: Option<&str>) -> Result<SessionAction> {
        match action {
            Some("keep-alive") => Ok(SessionAction::KeepAlive),
            Some("cancel") => Ok(SessionAction::Cancel),
            Some("fail") => Ok(SessionAction::Fail),
            other => Err(unknown_action(param, other)),
        }
    }

    /// Reads the action's body (keep-alive and fail) and calls the core.
    pub async fn run(
        self,
        state: &AppState,
        caller: &Caller,
        id: SessionId,
        payload: web::Payload,
    ) -> Result<()> {
        match self {
            SessionAction::KeepAlive => {
                let spec: KeepAliveSpec = json_body(state, payload).await?.unwrap_or_default();
                state.service.keep_alive(caller, id, spec.progress()?).await
            }
            SessionAction::Cancel => state.service.cancel(caller, id).await,
            SessionAction::Fail => {
                let spec: FailSpec = json_body(state, payload).await?.unwrap_or_default();
                let message = ClientErrorMessage::parse(spec.client_error_message.as_deref())?;
                state.service.fail(caller, id, message).await
            }
        }
    }
}

/// Decoded query parameters (never fails: undecodable bytes are replaced).
pub fn query_params(req: &HttpRequest) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// One query parameter; a repeated parameter is INVALID_ARGUMENT.
pub fn query_param(req: &HttpRequest, name: &str) -> Result<Option<String>> {
    let mut values = query_params(req).into_iter().filter(|(k, _)| k == name);
    let first = values.next().map(|(_, v)| v);
    if values.next().is_some() {
        return Err(Error::invalid_argument(
            "com.vmware.vapi.rest.duplicate_query_parameter",
            format!("Query parameter {name} is given more than once."),
            &[name],
        ));
    }
    Ok(first)
}

/// A query parameter the operation cannot do without (INVALID_ARGUMENT when missing).
pub fn required_query(req: &HttpRequest, name: &str) -> Result<String> {
    query_param(req, name)?.ok_or_else(|| {
        Error::invalid_argument(
            "com.vmware.vapi.rest.missing_parameter",
            format!("Query parameter {name} is required."),
            &[name],
        )
    })
}

/// The `{id}` (or similar) path segment of the matched route.
pub fn path_param(req: &HttpRequest, name: &str) -> String {
    req.match_info().get(name).unwrap_or_default().to_string()
}
