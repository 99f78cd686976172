//! vAPI JSON-RPC 2.0 on `POST /api`, the protocol of the official vSphere Automation SDKs:
//! the envelope, security contexts and the service/operation table, over the same core calls.

mod structs;
mod value;

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use self::{structs::ToVapi, value::Input};
use super::{basic_credentials, login_name, read_body, session_token, AppState};
use crate::{
    domain::{
        Caller, ClientErrorMessage, EndpointType, FileName, ItemId, LibraryId, LoginToken,
        NewSession, Password, Progress, SessionId,
    },
    error::{Error, ErrorKind, LocalizableMessage, Result},
    service::Service,
};

// JSON-RPC 2.0 error codes, plus vAPI's own for a header/payload mismatch.
const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;
const INVALID_OPERATION: i64 = -31001;

/// The one JSON-RPC method vAPI defines.
const INVOKE: &str = "invoke";

const USER_PASS_SCHEME: &str = "com.vmware.vapi.std.security.user_pass";
const SESSION_ID_SCHEME: &str = "com.vmware.vapi.std.security.session_id";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api").route(web::post().to(invoke)));
}

// ------------------------------------------------------------------ envelope

/// A request whose envelope could not be understood: answered with a
/// JSON-RPC error object (still HTTP 200), not a vAPI error.
struct Rejection {
    id: Value,
    code: i64,
    message: String,
}

impl Rejection {
    fn new(id: Value, code: i64, message: impl Into<String>) -> Self {
        Rejection {
            id,
            code,
            message: message.into(),
        }
    }

    fn response(self) -> HttpResponse {
        // The SDK checks that parse errors and invalid requests carry a null
        // id (the server may not have been able to read one).
        let id = if matches!(self.code, PARSE_ERROR | INVALID_REQUEST) {
            Value::Null
        } else {
            self.id
        };
        HttpResponse::Ok().json(json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": { "code": self.code, "message": self.message },
        }))
    }
}

/// One decoded `invoke` call.
struct Call {
    id: Value,
    service: String,
    operation: String,
    input: Input,
    security: Option<Value>,
}

fn parse_call(request: Value, req: &HttpRequest) -> Result<Call, Rejection> {
    let invalid = |message: &str| Rejection::new(Value::Null, INVALID_REQUEST, message);
    let Value::Object(mut envelope) = request else {
        return Err(invalid(
            "The request must be one JSON-RPC 2.0 object (batches are not supported).",
        ));
    };
    let id = envelope.remove("id").unwrap_or(Value::Null);
    if !matches!(id, Value::Null | Value::String(_) | Value::Number(_)) {
        return Err(invalid("id must be a string, a number or null."));
    }
    if envelope.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid("jsonrpc must be \"2.0\"."));
    }
    let method = match envelope.remove("method") {
        Some(Value::String(m)) => m,
        _ => return Err(invalid("method must be a string.")),
    };
    if method != INVOKE {
        return Err(Rejection::new(
            id,
            METHOD_NOT_FOUND,
            format!("Method {method:?} not found; vAPI defines only \"{INVOKE}\"."),
        ));
    }
    let bad_params = |message: String| Rejection::new(id.clone(), INVALID_PARAMS, message);
    let Some(Value::Object(mut params)) = envelope.remove("params") else {
        return Err(bad_params("params must be an object.".into()));
    };
    let mut name = |key: &str| match params.remove(key) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(bad_params(format!("params.{key} must be a string."))),
    };
    let service = name("serviceId")?;
    let operation = name("operationId")?;
    // The SDK repeats service and operation in headers; a proxy or client
    // that lets them disagree with the body is refused, as vAPI does.
    for (header, expected) in [("vapi-service", &service), ("vapi-operation", &operation)] {
        if let Some(sent) = req.headers().get(header) {
            if sent.to_str().ok() != Some(expected.as_str()) {
                return Err(Rejection::new(
                    id,
                    INVALID_OPERATION,
                    format!("Header {header} does not match the request body."),
                ));
            }
        }
    }
    let input = params
        .remove("input")
        .and_then(|v| Input::from_structure("operation-input", v))
        .ok_or_else(|| {
            bad_params("params.input must be {\"STRUCTURE\":{\"operation-input\":{...}}}.".into())
        })?;
    let security = match params.remove("ctx") {
        None | Some(Value::Null) => None,
        Some(Value::Object(mut ctx)) => ctx.remove("securityCtx").filter(|v| !v.is_null()),
        Some(_) => return Err(bad_params("params.ctx must be an object.".into())),
    };
    Ok(Call {
        id,
        service,
        operation,
        input,
        security,
    })
}

/// vAPI JSON-RPC 2.0 call
///
/// The one endpoint of the official vSphere Automation SDKs: `serviceId` and
/// `operationId` in the body name the operation (`com.vmware.cis.session`,
/// `com.vmware.content.library[.item[.file]]`,
/// `com.vmware.content.library.item.download_session`,
/// `com.vmware.content.library.item.downloadsession.file`). Log in with
/// `ctx.securityCtx` scheme `com.vmware.vapi.std.security.user_pass`, then send
/// `com.vmware.vapi.std.security.session_id`. Always answers HTTP 200: a vAPI error is
/// `result.error`, an envelope that cannot be understood a JSON-RPC `error`.
#[utoipa::path(
    post,
    path = "/api",
    operation_id = "VapiJsonRpcInvoke",
    tag = "vapi",
    params(
        ("vapi-service" = Option<String>, Header, description = "When sent, must equal `params.serviceId`."),
        ("vapi-operation" = Option<String>, Header, description = "When sent, must equal `params.operationId`."),
    ),
    request_body(content = crate::openapi::JsonRpcRequest, description = "The JSON-RPC envelope."),
    responses(
        (status = 200, description = "The JSON-RPC answer (success or error).", body = crate::openapi::JsonRpcResponse),
    )
)]
async fn invoke(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let body = match read_body(payload, state.max_body).await {
        Ok(body) => body,
        Err(e) => {
            return Rejection::new(Value::Null, INVALID_REQUEST, e.first_message()).response()
        }
    };
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return Rejection::new(Value::Null, PARSE_ERROR, format!("Parse error: {e}")).response()
        }
    };
    let call = match parse_call(request, &req) {
        Ok(call) => call,
        Err(rejection) => return rejection.response(),
    };
    tracing::debug!(service = %call.service, operation = %call.operation, "vAPI invoke");
    let id = call.id.clone();
    let result = match execute(&state, &req, call).await {
        Ok(output) => json!({ "output": output }),
        Err(failure) => json!({ "error": failure.to_vapi() }),
    };
    HttpResponse::Ok().json(json!({ "jsonrpc": "2.0", "id": id, "result": result }))
}

// ------------------------------------------------------------------- errors

/// Why an operation produced no output: a core error, or an operation the
/// table does not have (a vAPI error kind the core never raises).
enum Failure {
    Core(Error),
    OperationNotFound { service: String, operation: String },
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Core(e)
    }
}

impl Failure {
    fn to_vapi(&self) -> Value {
        match self {
            Failure::Core(e) => {
                e.log();
                let messages = e.messages.iter().map(ToVapi::to_vapi).collect();
                // Of the errors used here only Unauthenticated has an extra
                // (optional) field in the IDL.
                let extra =
                    (e.kind == ErrorKind::Unauthenticated).then(|| ("challenge", value::unset()));
                value::error(e.kind.vapi_type(), e.kind.as_str(), messages, extra)
            }
            Failure::OperationNotFound { service, operation } => {
                let message = LocalizableMessage::new(
                    "com.vmware.vapi.rpc.operation_not_found",
                    format!("Operation {operation} of service {service} does not exist."),
                    &[service, operation],
                );
                value::error(
                    "com.vmware.vapi.std.errors.operation_not_found",
                    "OPERATION_NOT_FOUND",
                    vec![message.to_vapi()],
                    None,
                )
            }
        }
    }
}

// --------------------------------------------------------------- operations

/// Every operation of the surface.
#[derive(Clone, Copy, Debug)]
enum Op {
    Login,
    Logout,
    WhoAmI,
    /// Operations on behalf of an authenticated caller.
    As(CallerOp),
}

#[derive(Clone, Copy, Debug)]
enum CallerOp {
    LibraryList,
    LibraryGet,
    ItemList,
    ItemGet,
    ItemFileList,
    ItemFileGet,
    SessionCreate,
    SessionGet,
    SessionList,
    SessionKeepAlive,
    SessionCancel,
    SessionFail,
    SessionDelete,
    FileList,
    FileGet,
    FilePrepare,
}

const CIS_SESSION: &str = "com.vmware.cis.session";
const LIBRARY: &str = "com.vmware.content.library";
const ITEM: &str = "com.vmware.content.library.item";
const ITEM_FILE: &str = "com.vmware.content.library.item.file";
const DOWNLOAD_SESSION: &str = "com.vmware.content.library.item.download_session";
const DOWNLOAD_FILE: &str = "com.vmware.content.library.item.downloadsession.file";

const OPERATIONS: &[(&str, &str, Op)] = &[
    (CIS_SESSION, "create", Op::Login),
    (CIS_SESSION, "delete", Op::Logout),
    (CIS_SESSION, "get", Op::WhoAmI),
    (LIBRARY, "list", Op::As(CallerOp::LibraryList)),
    (LIBRARY, "get", Op::As(CallerOp::LibraryGet)),
    (ITEM, "list", Op::As(CallerOp::ItemList)),
    (ITEM, "get", Op::As(CallerOp::ItemGet)),
    (ITEM_FILE, "list", Op::As(CallerOp::ItemFileList)),
    (ITEM_FILE, "get", Op::As(CallerOp::ItemFileGet)),
    (DOWNLOAD_SESSION, "create", Op::As(CallerOp::SessionCreate)),
    (DOWNLOAD_SESSION, "get", Op::As(CallerOp::SessionGet)),
    (DOWNLOAD_SESSION, "list", Op::As(CallerOp::SessionList)),
    (
        DOWNLOAD_SESSION,
        "keep_alive",
        Op::As(CallerOp::SessionKeepAlive),
    ),
    (DOWNLOAD_SESSION, "cancel", Op::As(CallerOp::SessionCancel)),
    (DOWNLOAD_SESSION, "fail", Op::As(CallerOp::SessionFail)),
    (DOWNLOAD_SESSION, "delete", Op::As(CallerOp::SessionDelete)),
    (DOWNLOAD_FILE, "list", Op::As(CallerOp::FileList)),
    (DOWNLOAD_FILE, "get", Op::As(CallerOp::FileGet)),
    (DOWNLOAD_FILE, "prepare", Op::As(CallerOp::FilePrepare)),
];

/// What the request proves about its sender.
enum Credentials {
    UserPass { user: String, password: String },
    Token(String),
    None,
}

impl Credentials {
    /// The security context of the call; without one, the REST session
    /// header (or cookie) or Basic credentials, as the REST surfaces accept.
    fn of(security: Option<Value>, req: &HttpRequest) -> Result<Credentials> {
        let Some(security) = security else {
            if let Some(token) = session_token(req) {
                return Ok(Credentials::Token(token));
            }
            return Ok(match basic_credentials(req) {
                Some((user, password)) => Credentials::UserPass { user, password },
                None => Credentials::None,
            });
        };
        let Value::Object(ctx) = security else {
            return Err(Error::unauthenticated());
        };
        let scheme = ctx.get("schemeId").and_then(Value::as_str).unwrap_or("");
        match scheme {
            USER_PASS_SCHEME => match (secret_field(&ctx, "userName"), secret_field(&ctx, "password")) {
                (Some(user), Some(password)) => Ok(Credentials::UserPass { user, password }),
                _ => Err(Error::unauthenticated()),
            },
            SESSION_ID_SCHEME => secret_field(&ctx, "sessionId")
                .map(Credentials::Token)
                .ok_or_else(Error::unauthenticated),
            other => Err(Error::new(
                ErrorKind::Unauthenticated,
                "com.vmware.vapi.rpc.unsupported_security_scheme",
                format!(
                    "Security scheme {other:?} is not supported; use {USER_PASS_SCHEME} or {SESSION_ID_SCHEME}."
                ),
                &[other],
            )),
        }
    }

    /// The login token for operations on the login itself.
    fn token(self) -> Result<LoginToken> {
        match self {
            Credentials::Token(token) => LoginToken::parse(&token),
            _ => Err(Error::unauthenticated()),
        }
    }
}

/// A security-context field, sent plain or as a vAPI secret.
fn secret_field(ctx: &Map<String, Value>, name: &str) -> Option<String> {
    match ctx.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("SECRET")?.as_str().map(str::to_string),
        _ => None,
    }
}

async fn execute(state: &AppState, req: &HttpRequest, call: Call) -> Result<Value, Failure> {
    let op = OPERATIONS
        .iter()
        .find(|(s, o, _)| *s == call.service && *o == call.operation)
        .map(|(_, _, op)| *op)
        .ok_or_else(|| Failure::OperationNotFound {
            service: call.service.clone(),
            operation: call.operation.clone(),
        })?;
    let credentials = Credentials::of(call.security, req)?;
    let service = &state.service;
    let input = call.input;
    match op {
        Op::Login => {
            // Checked first: a login must not be created for a call that fails.
            input.finish()?;
            let Credentials::UserPass { user, password } = credentials else {
                return Err(Error::unauthenticated().into());
            };
            let token = service
                .login(&login_name(&user)?, &Password::new(password))
                .await?;
            Ok(value::secret(token.as_str()))
        }
        Op::Logout => {
            input.finish()?;
            service.logout(&credentials.token()?).await?;
            Ok(Value::Null)
        }
        Op::WhoAmI => {
            input.finish()?;
            Ok(service.whoami(&credentials.token()?).await?.to_vapi())
        }
        Op::As(op) => {
            // user_pass on an ordinary operation: a login that lives for this call only.
            let (token, one_shot) = match credentials {
                Credentials::Token(token) => (LoginToken::parse(&token)?, false),
                Credentials::UserPass { user, password } => {
                    let token = service
                        .login(&login_name(&user)?, &Password::new(password))
                        .await?;
                    (token, true)
                }
                Credentials::None => return Err(Error::unauthenticated().into()),
            };
            let result = match service.authenticate(&token).await {
                Ok(caller) => run(service, &caller, op, input).await,
                Err(e) => Err(e),
            };
            if one_shot {
                if let Err(e) = service.logout(&token).await {
                    tracing::warn!(error = ?e, "cannot end a one-call login");
                }
            }
            Ok(result?)
        }
    }
}

fn session_id(input: &mut Input) -> Result<SessionId> {
    SessionId::parse(&input.string("download_session_id")?)
}

fn item_id(input: &mut Input) -> Result<ItemId> {
    ItemId::parse(&input.string("library_item_id")?)
}

/// Decodes the input of `op`, calls the core and encodes its answer.
async fn run(service: &Service, caller: &Caller, op: CallerOp, mut input: Input) -> Result<Value> {
    let output = match op {
        CallerOp::LibraryList => {
            input.finish()?;
            service.list_libraries(caller).await?.to_vapi()
        }
        CallerOp::LibraryGet => {
            let id = LibraryId::parse(&input.string("library_id")?)?;
            input.finish()?;
            service.get_library(caller, id).await?.to_vapi()
        }
        CallerOp::ItemList => {
            let library = LibraryId::parse(&input.string("library_id")?)?;
            input.finish()?;
            service.list_items(caller, library).await?.to_vapi()
        }
        CallerOp::ItemGet => {
            let id = item_id(&mut input)?;
            input.finish()?;
            service.get_item(caller, id).await?.to_vapi()
        }
        CallerOp::ItemFileList => {
            let id = item_id(&mut input)?;
            input.finish()?;
            service.list_item_files(caller, id).await?.to_vapi()
        }
        CallerOp::ItemFileGet => {
            let id = item_id(&mut input)?;
            let name = input.string("name")?;
            input.finish()?;
            let name = FileName::parse_or_missing(&name);
            service.get_item_file(caller, id, name).await?.to_vapi()
        }
        CallerOp::SessionCreate => {
            let client_token = input.opt_string("client_token")?;
            let item = match input.opt_structure("create_spec")? {
                Some(mut spec) => {
                    let item = spec.opt_string("library_item_id")?;
                    // The rest of a DownloadSessionModel is accepted and ignored.
                    spec.ignore(&[
                        "id",
                        "library_item_content_version",
                        "error_message",
                        "client_progress",
                        "state",
                        "expiration_time",
                    ]);
                    spec.finish()?;
                    item
                }
                None => None,
            };
            input.finish()?;
            let spec = NewSession::parse(item.as_deref(), client_token.as_deref());
            let id = service.create_session(caller, spec).await?;
            Value::String(id.to_string())
        }
        CallerOp::SessionGet => {
            let id = session_id(&mut input)?;
            input.finish()?;
            service.get_session(caller, id).await?.to_vapi()
        }
        CallerOp::SessionList => {
            let item = input.opt_string("library_item_id")?;
            input.finish()?;
            let item = item.as_deref().map(ItemId::parse);
            service.list_sessions(caller, item).await?.to_vapi()
        }
        CallerOp::SessionKeepAlive => {
            let id = session_id(&mut input)?;
            let progress = input
                .opt_integer("progress")?
                .map(Progress::new)
                .transpose()?;
            input.finish()?;
            service.keep_alive(caller, id, progress).await?;
            Value::Null
        }
        CallerOp::SessionCancel => {
            let id = session_id(&mut input)?;
            input.finish()?;
            service.cancel(caller, id).await?;
            Value::Null
        }
        CallerOp::SessionFail => {
            let id = session_id(&mut input)?;
            let message = input.opt_string("client_error_message")?;
            input.finish()?;
            let message = ClientErrorMessage::parse(message.as_deref())?;
            service.fail(caller, id, message).await?;
            Value::Null
        }
        CallerOp::SessionDelete => {
            let id = session_id(&mut input)?;
            input.finish()?;
            service.delete_session(caller, id).await?;
            Value::Null
        }
        CallerOp::FileList => {
            let id = session_id(&mut input)?;
            input.finish()?;
            service.list_files(caller, id).await?.to_vapi()
        }
        CallerOp::FileGet => {
            let id = session_id(&mut input)?;
            let name = input.string("file_name")?;
            input.finish()?;
            service
                .get_file(caller, id, FileName::parse(&name))
                .await?
                .to_vapi()
        }
        CallerOp::FilePrepare => {
            let id = session_id(&mut input)?;
            let name = input.string("file_name")?;
            let endpoint = input
                .opt_string("endpoint_type")?
                .map(|e| e.parse::<EndpointType>())
                .transpose()?;
            input.finish()?;
            service
                .prepare_file(caller, id, FileName::parse(&name), endpoint)
                .await?
                .to_vapi()
        }
    };
    Ok(output)
}
