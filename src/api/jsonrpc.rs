//! vAPI JSON-RPC 2.0 on `POST /api`, the protocol of the official vSphere Automation SDKs:
//! the envelope, security contexts and the service/operation table, over the same core calls.

mod structs;
mod value;
mod wire;

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use serde_json::{Map, Value};

pub use self::wire::{
    JsonRpcContext, JsonRpcError, JsonRpcMethod, JsonRpcParams, JsonRpcRequest, JsonRpcResponse,
    JsonRpcResult, JsonRpcVersion,
};
use self::{
    structs::ToVapi,
    value::Input,
    wire::{Rejection, INVALID_REQUEST, PARSE_ERROR},
};
use super::{
    extract::{self, basic_credentials, client_addr, login_name, session_token, Body},
    wire::AddSpec,
};
use crate::{
    domain::{
        catalog::{
            ItemFindSpec, ItemModelSpec, LibraryFindSpec, LibraryModelSpec, LibraryUpdateVia,
        },
        Caller, ClientErrorMessage, EndpointType, FileName, ItemId, LibraryId, LoginToken,
        NewSession, Password, Progress, SessionId, UpdateSessionId,
    },
    error::{Error, ErrorKind, LocalizableMessage, Result},
    service::Service,
};

const USER_PASS_SCHEME: &str = "com.vmware.vapi.std.security.user_pass";
const SESSION_ID_SCHEME: &str = "com.vmware.vapi.std.security.session_id";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api").route(extract::post(invoke)));
}

/// vAPI JSON-RPC 2.0 call
///
/// The one endpoint of the official vSphere Automation SDKs: `serviceId` and
/// `operationId` in the body name the operation (`com.vmware.cis.session`,
/// `com.vmware.content.library[.item[.file|.storage]]`,
/// `com.vmware.content.local_library`, `com.vmware.content.subscribed_library`,
/// `com.vmware.content.library.item.download_session`,
/// `com.vmware.content.library.item.downloadsession.file`,
/// `com.vmware.content.library.item.update_session`,
/// `com.vmware.content.library.item.updatesession.file`). Log in with
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
    security(),
    request_body(content = JsonRpcRequest, description = "The JSON-RPC envelope."),
    responses(
        (status = 200, description = "The JSON-RPC answer (success or error).", body = JsonRpcResponse),
    )
)]
async fn invoke(service: Service, req: HttpRequest, body: Body) -> HttpResponse {
    let mut retry_after = None;
    let answer = match read(&req, body).await {
        Ok(call) => {
            let id = call.id.clone().unwrap_or(Value::Null);
            let result = execute(&service, &req, call).await;
            if let Err(Failure::Core(e)) = &result {
                retry_after = e.retry_after_secs();
            }
            JsonRpcResponse::result(id, result.map_err(|failure| failure.to_vapi()))
        }
        Err(rejection) => rejection.response(),
    };
    let mut response = HttpResponse::Ok();
    // The vAPI error is in the body; the header tells an HTTP client when to retry.
    if let Some(secs) = retry_after {
        response.insert_header((header::RETRY_AFTER, secs));
    }
    response.json(answer)
}

/// The call of a request, or why its envelope was refused.
async fn read(req: &HttpRequest, body: Body) -> Result<JsonRpcRequest, Rejection> {
    let body = body
        .bytes()
        .await
        .map_err(|e| Rejection::new(Value::Null, INVALID_REQUEST, e.first_message()))?;
    let request: Value = serde_json::from_slice(&body)
        .map_err(|e| Rejection::new(Value::Null, PARSE_ERROR, format!("Parse error: {e}")))?;
    let call = JsonRpcRequest::read(request, req)?;
    let params = &call.params;
    tracing::debug!(service = %params.service_id, operation = %params.operation_id, "vAPI invoke");
    Ok(call)
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
    LibraryFind,
    LibraryUpdate,
    LocalLibraryCreate,
    LocalLibraryUpdate,
    LocalLibraryDelete,
    SubscribedLibraryList,
    SubscribedLibraryGet,
    ItemList,
    ItemGet,
    ItemFind,
    ItemCreate,
    ItemUpdate,
    ItemDelete,
    StorageList,
    StorageGet,
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
    UpdateCreate,
    UpdateGet,
    UpdateList,
    UpdateKeepAlive,
    UpdateComplete,
    UpdateCancel,
    UpdateFail,
    UpdateDelete,
    UpdateFileAdd,
    UpdateFileRemove,
    UpdateFileList,
    UpdateFileGet,
    UpdateFileValidate,
}

const CIS_SESSION: &str = "com.vmware.cis.session";
const LIBRARY: &str = "com.vmware.content.library";
const LOCAL_LIBRARY: &str = "com.vmware.content.local_library";
const SUBSCRIBED_LIBRARY: &str = "com.vmware.content.subscribed_library";
const ITEM: &str = "com.vmware.content.library.item";
const ITEM_FILE: &str = "com.vmware.content.library.item.file";
const ITEM_STORAGE: &str = "com.vmware.content.library.item.storage";
const DOWNLOAD_SESSION: &str = "com.vmware.content.library.item.download_session";
const DOWNLOAD_FILE: &str = "com.vmware.content.library.item.downloadsession.file";
const UPDATE_SESSION: &str = "com.vmware.content.library.item.update_session";
const UPDATE_FILE: &str = "com.vmware.content.library.item.updatesession.file";

/// Every operation, by service and operation name.
const OPERATIONS: &[(&str, &[(&str, Op)])] = {
    use CallerOp::*;
    use Op::As;
    &[
        (
            CIS_SESSION,
            &[
                ("create", Op::Login),
                ("delete", Op::Logout),
                ("get", Op::WhoAmI),
            ],
        ),
        (
            LIBRARY,
            &[
                ("list", As(LibraryList)),
                ("get", As(LibraryGet)),
                ("find", As(LibraryFind)),
                ("update", As(LibraryUpdate)),
            ],
        ),
        (
            LOCAL_LIBRARY,
            &[
                ("create", As(LocalLibraryCreate)),
                // Every library is local: the same answers as `library`.
                ("get", As(LibraryGet)),
                ("list", As(LibraryList)),
                ("update", As(LocalLibraryUpdate)),
                ("delete", As(LocalLibraryDelete)),
            ],
        ),
        (
            SUBSCRIBED_LIBRARY,
            &[
                ("list", As(SubscribedLibraryList)),
                ("get", As(SubscribedLibraryGet)),
            ],
        ),
        (
            ITEM,
            &[
                ("list", As(ItemList)),
                ("get", As(ItemGet)),
                ("find", As(ItemFind)),
                ("create", As(ItemCreate)),
                ("update", As(ItemUpdate)),
                ("delete", As(ItemDelete)),
            ],
        ),
        (
            ITEM_FILE,
            &[("list", As(ItemFileList)), ("get", As(ItemFileGet))],
        ),
        (
            ITEM_STORAGE,
            &[("list", As(StorageList)), ("get", As(StorageGet))],
        ),
        (
            DOWNLOAD_SESSION,
            &[
                ("create", As(SessionCreate)),
                ("get", As(SessionGet)),
                ("list", As(SessionList)),
                ("keep_alive", As(SessionKeepAlive)),
                ("cancel", As(SessionCancel)),
                ("fail", As(SessionFail)),
                ("delete", As(SessionDelete)),
            ],
        ),
        (
            DOWNLOAD_FILE,
            &[
                ("list", As(FileList)),
                ("get", As(FileGet)),
                ("prepare", As(FilePrepare)),
            ],
        ),
        (
            UPDATE_SESSION,
            &[
                ("create", As(UpdateCreate)),
                ("get", As(UpdateGet)),
                ("list", As(UpdateList)),
                ("keep_alive", As(UpdateKeepAlive)),
                ("complete", As(UpdateComplete)),
                ("cancel", As(UpdateCancel)),
                ("fail", As(UpdateFail)),
                ("delete", As(UpdateDelete)),
            ],
        ),
        (
            UPDATE_FILE,
            &[
                ("add", As(UpdateFileAdd)),
                ("remove", As(UpdateFileRemove)),
                ("list", As(UpdateFileList)),
                ("get", As(UpdateFileGet)),
                ("validate", As(UpdateFileValidate)),
            ],
        ),
    ]
};

/// The operation `operation` of service `service`, if there is one.
fn operation(service: &str, operation: &str) -> Option<Op> {
    let (_, operations) = OPERATIONS.iter().find(|(s, _)| *s == service)?;
    operations
        .iter()
        .find(|(o, _)| *o == operation)
        .map(|(_, op)| *op)
}

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
            if let Some(token) = session_token(req)? {
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

async fn execute(
    service: &Service,
    req: &HttpRequest,
    call: JsonRpcRequest,
) -> Result<Value, Failure> {
    let JsonRpcParams {
        service_id,
        operation_id,
        input,
        ctx,
    } = call.params;
    let op = operation(&service_id, &operation_id).ok_or(Failure::OperationNotFound {
        service: service_id,
        operation: operation_id,
    })?;
    let credentials = Credentials::of(ctx.and_then(|c| c.security_ctx), req)?;
    match op {
        Op::Login => {
            // Checked first: a login must not be created for a call that fails.
            input.finish()?;
            let Credentials::UserPass { user, password } = credentials else {
                return Err(Error::unauthenticated().into());
            };
            let token = service
                .login(
                    &login_name(&user)?,
                    &Password::new(password),
                    client_addr(req),
                )
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
                        .login(
                            &login_name(&user)?,
                            &Password::new(password),
                            client_addr(req),
                        )
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

/// Decodes the input of `op`, calls the core and encodes its answer. Each input is
/// read whole (unknown fields refused) before the core is called.
async fn run(service: &Service, caller: &Caller, op: CallerOp, input: Input) -> Result<Value> {
    use CallerOp::*;
    match op {
        LibraryList => {
            input.finish()?;
            out(service.list_libraries(caller).await)
        }
        LibraryGet => out(service.get_library(caller, input.read(library)?).await),
        LibraryFind => {
            let spec: LibraryFindSpec = input.read(|i| i.spec("spec"))?;
            out(service.find_libraries(caller, spec.parse()).await)
        }
        LibraryUpdate | LocalLibraryUpdate => {
            let via = match op {
                LibraryUpdate => LibraryUpdateVia::Library,
                _ => LibraryUpdateVia::LocalLibrary,
            };
            let (id, spec) =
                input.read(|i| Ok((library(i)?, i.spec::<LibraryModelSpec>("update_spec")?)))?;
            void(
                service
                    .update_library(caller, id, spec.update(via), via)
                    .await,
            )
        }
        LocalLibraryCreate => {
            let (token, spec) = input.read(|i| {
                Ok((
                    i.opt_string("client_token")?,
                    i.spec::<LibraryModelSpec>("create_spec")?,
                ))
            })?;
            let id = service
                .create_library(caller, spec.new_library(token.as_deref()))
                .await?;
            Ok(Value::String(id.to_string()))
        }
        LocalLibraryDelete => void(service.delete_library(caller, input.read(library)?).await),
        SubscribedLibraryList => {
            input.finish()?;
            out(service.list_subscribed_libraries(caller).await)
        }
        SubscribedLibraryGet => out(service
            .get_subscribed_library(caller, input.read(library)?)
            .await),
        ItemList => out(service.list_items(caller, input.read(library)?).await),
        ItemGet => out(service.get_item(caller, input.read(item)?).await),
        ItemFind => {
            let spec: ItemFindSpec = input.read(|i| i.spec("spec"))?;
            out(service.find_items(caller, spec.parse()).await)
        }
        ItemCreate => {
            let (token, spec) = input.read(|i| {
                Ok((
                    i.opt_string("client_token")?,
                    i.spec::<ItemModelSpec>("create_spec")?,
                ))
            })?;
            let id = service
                .create_item(caller, spec.new_item(token.as_deref()))
                .await?;
            Ok(Value::String(id.to_string()))
        }
        ItemUpdate => {
            let (id, spec) =
                input.read(|i| Ok((item(i)?, i.spec::<ItemModelSpec>("update_spec")?)))?;
            void(service.update_item(caller, id, spec.update()).await)
        }
        ItemDelete => void(service.delete_item(caller, input.read(item)?).await),
        StorageList => out(service.list_item_storage(caller, input.read(item)?).await),
        StorageGet => {
            let (id, name) = input.read(|i| Ok((item(i)?, i.string("file_name")?)))?;
            let name = FileName::parse_or_not_stored(&name);
            out(service.get_item_storage(caller, id, name).await)
        }
        ItemFileList => out(service.list_item_files(caller, input.read(item)?).await),
        ItemFileGet => {
            let (id, name) = input.read(|i| Ok((item(i)?, i.string("name")?)))?;
            let name = FileName::parse_or_missing(&name);
            out(service.get_item_file(caller, id, name).await)
        }
        SessionCreate => {
            let spec = input.read(|i| {
                let client_token = i.opt_string("client_token")?;
                let item = match i.opt_structure("create_spec")? {
                    // The rest of a DownloadSessionModel is accepted and ignored.
                    Some(spec) => spec.read(|s| {
                        let item = s.opt_string(ITEM_ID)?;
                        s.ignore(&[
                            "id",
                            "library_item_content_version",
                            "error_message",
                            "client_progress",
                            "state",
                            "expiration_time",
                        ]);
                        Ok(item)
                    })?,
                    None => None,
                };
                Ok(NewSession::parse(item.as_deref(), client_token.as_deref()))
            })?;
            let id = service.create_session(caller, spec).await?;
            Ok(Value::String(id.to_string()))
        }
        SessionGet => out(service.get_session(caller, input.read(session)?).await),
        SessionList => {
            let item = input.read(|i| i.opt_string(ITEM_ID))?;
            out(service
                .list_sessions(caller, item.as_deref().map(ItemId::parse))
                .await)
        }
        SessionKeepAlive => {
            let (id, progress) = input.read(|i| {
                let id = session(i)?;
                Ok((
                    id,
                    i.opt_integer("progress")?.map(Progress::new).transpose()?,
                ))
            })?;
            void(service.keep_alive(caller, id, progress).await)
        }
        SessionCancel => void(service.cancel(caller, input.read(session)?).await),
        SessionFail => {
            let (id, message) =
                input.read(|i| Ok((session(i)?, i.opt_string("client_error_message")?)))?;
            let message = ClientErrorMessage::parse(message.as_deref())?;
            void(service.fail(caller, id, message).await)
        }
        SessionDelete => void(service.delete_session(caller, input.read(session)?).await),
        FileList => out(service.list_files(caller, input.read(session)?).await),
        FileGet => {
            let (id, name) = input.read(|i| Ok((session(i)?, i.string("file_name")?)))?;
            out(service.get_file(caller, id, FileName::parse(&name)).await)
        }
        FilePrepare => {
            let (id, name, endpoint) = input.read(|i| {
                let (id, name) = (session(i)?, i.string("file_name")?);
                let endpoint = i.opt_string("endpoint_type")?;
                Ok((
                    id,
                    name,
                    endpoint.map(|e| e.parse::<EndpointType>()).transpose()?,
                ))
            })?;
            out(service
                .prepare_file(caller, id, FileName::parse(&name), endpoint)
                .await)
        }
        UpdateCreate => {
            let spec = input.read(|i| {
                let client_token = i.opt_string("client_token")?;
                let item = match i.opt_structure("create_spec")? {
                    // The rest of an UpdateSessionModel is accepted and ignored.
                    Some(spec) => spec.read(|s| {
                        let item = s.opt_string(ITEM_ID)?;
                        s.ignore(&[
                            "id",
                            "library_item_content_version",
                            "error_message",
                            "client_progress",
                            "state",
                            "expiration_time",
                            "preview_info",
                            "warning_behavior",
                        ]);
                        Ok(item)
                    })?,
                    None => None,
                };
                Ok(NewSession::parse(item.as_deref(), client_token.as_deref()))
            })?;
            let id = service.create_update_session(caller, spec).await?;
            Ok(Value::String(id.to_string()))
        }
        UpdateGet => out(service
            .get_update_session(caller, input.read(update)?)
            .await),
        UpdateList => {
            let item = input.read(|i| i.opt_string(ITEM_ID))?;
            out(service
                .list_update_sessions(caller, item.as_deref().map(ItemId::parse))
                .await)
        }
        UpdateKeepAlive => {
            let (id, progress) = input.read(|i| {
                let id = update(i)?;
                Ok((
                    id,
                    i.opt_integer("client_progress")?
                        .map(Progress::new)
                        .transpose()?,
                ))
            })?;
            void(service.update_keep_alive(caller, id, progress).await)
        }
        UpdateComplete => void(service.complete_update(caller, input.read(update)?).await),
        UpdateCancel => void(service.cancel_update(caller, input.read(update)?).await),
        UpdateFail => {
            let (id, message) =
                input.read(|i| Ok((update(i)?, i.opt_string("client_error_message")?)))?;
            let message = ClientErrorMessage::parse(message.as_deref())?;
            void(service.fail_update(caller, id, message).await)
        }
        UpdateDelete => void(
            service
                .delete_update_session(caller, input.read(update)?)
                .await,
        ),
        UpdateFileAdd => {
            let (id, spec) = input.read(|i| Ok((update(i)?, i.spec::<AddSpec>("file_spec")?)))?;
            out(service
                .add_update_file(caller, id, spec.parse(service.pull_policy()))
                .await)
        }
        UpdateFileRemove => {
            let (id, name) = input.read(|i| Ok((update(i)?, i.string("file_name")?)))?;
            void(
                service
                    .remove_update_file(caller, id, FileName::parse_or_missing(&name))
                    .await,
            )
        }
        UpdateFileList => out(service.list_update_files(caller, input.read(update)?).await),
        UpdateFileGet => {
            let (id, name) = input.read(|i| Ok((update(i)?, i.string("file_name")?)))?;
            out(service
                .get_update_file(caller, id, FileName::parse_or_missing(&name))
                .await)
        }
        UpdateFileValidate => out(service
            .validate_update_files(caller, input.read(update)?)
            .await),
    }
}

const ITEM_ID: &str = "library_item_id";

fn update(input: &mut Input) -> Result<UpdateSessionId> {
    input.id("update_session_id")
}

fn library(input: &mut Input) -> Result<LibraryId> {
    input.id("library_id")
}

fn item(input: &mut Input) -> Result<ItemId> {
    input.id(ITEM_ID)
}

fn session(input: &mut Input) -> Result<SessionId> {
    input.id("download_session_id")
}

/// An operation's output in vAPI encoding.
fn out<T: ToVapi>(answer: Result<T>) -> Result<Value> {
    Ok(answer?.to_vapi())
}

/// A void operation's output: `null`.
fn void(answer: Result<()>) -> Result<Value> {
    answer.map(|()| Value::Null)
}
