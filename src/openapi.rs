//! The OpenAPI document of every HTTP surface, built from the handlers' annotations,
//! and the routes that serve it (`/api-docs/openapi.json`, Swagger UI at `/docs`).
//!
//! The committed `openapi/openapi.json` is this document (`download-sessions openapi`);
//! a test fails when they drift. Types here exist only to describe the wire: envelopes
//! the handlers build ad hoc, and the bodies of operations that one handler serves for
//! several `?action=` values (OpenAPI cannot key operations on query values).

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{
    openapi::{
        security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
        ContentBuilder, Ref, RefOr, Response, ResponseBuilder,
    },
    Modify, OpenApi, ToSchema,
};
use utoipa_swagger_ui::SwaggerUi;

use crate::{
    api::{self, inputs, SESSION_HEADER},
    dataplane,
    domain::{
        models::{
            ChecksumAlgorithm, ChecksumInfo, DownloadFileInfo, DownloadSessionModel, ItemFileInfo,
            ItemModel, LibraryModel, SessionInfo, TransferEndpoint,
        },
        EndpointType, PrepareStatus, SessionState,
    },
    error::{ApiErrorBody, ErrorKind, LocalizableMessage},
};

/// Where the document is served.
pub const SPEC_PATH: &str = "/api-docs/openapi.json";

/// Security scheme of the login token (`vmware-api-session-id` header).
pub const API_KEY: &str = "api_key";
/// Security scheme of the login operations (HTTP Basic).
pub const BASIC_AUTH: &str = "basic_auth";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "vSphere Content Library download sessions",
        description = "A persistent, multi-instance implementation of the vSphere Content Library \
download-session API.\n\n\
Three wire surfaces reach the same core:\n\
- `/api/...`: REST of vSphere 7.0U2+; plain JSON, actions as `?action=NAME`, void operations answer 204.\n\
- `/rest/com/vmware/...`: the legacy REST of vSphere 6.5+; results wrapped in `{\"value\": ...}`, \
actions as `?~action=NAME`, ids in the path as `id:{id}`, void operations answer 200 without a body.\n\
- `POST /api`: vAPI JSON-RPC 2.0, the protocol of the official vSphere Automation SDKs.\n\n\
Log in with HTTP Basic on `POST /api/session` (or `POST /rest/com/vmware/cis/session`) and send \
the token in the `vmware-api-session-id` header. Prepared files are downloaded from the \
`download_endpoint.uri` of their file info (`GET`/`HEAD /cls/data/...`, with Range)."
    ),
    paths(
        api::rest_api::login,
        api::rest_api::whoami,
        api::rest_api::logout,
        api::rest_api::list_libraries,
        api::rest_api::get_library,
        api::rest_api::list_items,
        api::rest_api::get_item,
        api::rest_api::item_files,
        api::rest_api::create_session,
        api::rest_api::list_sessions,
        api::rest_api::get_session,
        api::rest_api::session_action,
        api::rest_api::delete_session,
        api::rest_api::files,
        api::rest_api::file_action,
        api::rest_legacy::session_post,
        api::rest_legacy::logout,
        api::rest_legacy::list_libraries,
        api::rest_legacy::get_library,
        api::rest_legacy::list_items,
        api::rest_legacy::get_item,
        api::rest_legacy::item_files,
        api::rest_legacy::item_file_action,
        api::rest_legacy::download_session_post,
        api::rest_legacy::list_sessions,
        api::rest_legacy::get_session,
        api::rest_legacy::session_action,
        api::rest_legacy::delete_session,
        api::rest_legacy::list_files,
        api::rest_legacy::file_action,
        api::jsonrpc::invoke,
        dataplane::serve::download,
        dataplane::serve::download_head,
        api::ops::healthz,
        api::ops::readyz,
        api::ops::prometheus,
    ),
    components(
        schemas(
            ApiErrorBody,
            ErrorKind,
            LocalizableMessage,
            RestErrorBody,
            VapiErrorType,
            DownloadSessionModel,
            SessionState,
            DownloadFileInfo,
            PrepareStatus,
            TransferEndpoint,
            ChecksumInfo,
            ChecksumAlgorithm,
            EndpointType,
            LibraryModel,
            ItemModel,
            ItemFileInfo,
            SessionInfo,
            inputs::CreateSpec,
            inputs::KeepAliveSpec,
            inputs::FailSpec,
            inputs::PrepareSpec,
            FileBytes,
            SessionAction,
            FileAction,
            RestSessionAction,
            RestCollectionAction,
            RestSessionIdAction,
            RestFileAction,
            RestItemFileAction,
        ),
        responses(
            ApiBadRequest,
            ApiUnauthenticated,
            ApiUnauthorized,
            ApiNotFound,
            ApiPayloadTooLarge,
            ApiInternalServerError,
            ApiServiceUnavailable,
            RestBadRequest,
            RestUnauthenticated,
            RestUnauthorized,
            RestNotFound,
            RestPayloadTooLarge,
            RestInternalServerError,
            RestServiceUnavailable,
        )
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "session", description = "Login tokens (`/api/session`)."),
        (name = "download_session", description = "`com.vmware.content.library.item.download_session` on `/api`."),
        (name = "download_session_file", description = "`com.vmware.content.library.item.downloadsession.file` on `/api`."),
        (name = "library", description = "The catalog on `/api`: libraries, items, item files (`System.Read`)."),
        (name = "rest", description = "The legacy `/rest/com/vmware/...` surface: the same operations, `{\"value\": ...}` envelopes."),
        (name = "vapi", description = "vAPI JSON-RPC 2.0, as spoken by the official vSphere Automation SDKs."),
        (name = "data", description = "The data plane: signed download URIs from `download_endpoint.uri`."),
        (name = "ops", description = "Liveness, readiness and Prometheus metrics (no login)."),
    )
)]
pub struct ApiDoc;

/// The document as the service serves it and `openapi/openapi.json` holds it.
pub fn document() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes");
    fix_link_keys(&mut doc);
    doc
}

/// utoipa 5 writes the fields of a Link Object in snake case (`operation_id`);
/// OpenAPI, and every tool that follows links, wants `operationId`.
fn fix_link_keys(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(links)) = map.get_mut("links") {
                for link in links.values_mut() {
                    let Value::Object(link) = link else { continue };
                    for (from, to) in [
                        ("operation_id", "operationId"),
                        ("operation_ref", "operationRef"),
                        ("request_body", "requestBody"),
                    ] {
                        if let Some(v) = link.remove(from) {
                            link.insert(to.to_string(), v);
                        }
                    }
                }
            }
            map.values_mut().for_each(fix_link_keys);
        }
        Value::Array(items) => items.iter_mut().for_each(fix_link_keys),
        _ => {}
    }
}

/// The document as committed in `openapi/openapi.json`: pretty JSON, trailing newline.
pub fn pretty_json() -> String {
    let mut text =
        serde_json::to_string_pretty(&document()).expect("the OpenAPI document serializes");
    text.push('\n');
    text
}

/// `/api-docs/openapi.json` and Swagger UI at `/docs/` (`/docs` redirects there). No login.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(SwaggerUi::new("/docs/{_:.*}").external_url_unchecked(SPEC_PATH, document()))
        .route("/docs", web::get().to(docs_redirect));
}

async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header(("Location", "/docs/"))
        .finish()
}

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            API_KEY,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                SESSION_HEADER,
                "The login token from `POST /api/session` (or `POST /rest/com/vmware/cis/session`). \
                 A cookie of the same name is accepted too.",
            ))),
        );
        components.add_security_scheme(
            BASIC_AUTH,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "User name and password; only the login operations take them.",
                    ))
                    .build(),
            ),
        );
    }
}

// ------------------------------------------------------------------ errors

/// `com.vmware.vapi.std.errors.*`: the `type` of a `/rest` error body.
#[derive(Serialize, ToSchema)]
pub enum VapiErrorType {
    #[serde(rename = "com.vmware.vapi.std.errors.invalid_argument")]
    InvalidArgument,
    #[serde(rename = "com.vmware.vapi.std.errors.not_allowed_in_current_state")]
    NotAllowedInCurrentState,
    #[serde(rename = "com.vmware.vapi.std.errors.already_exists")]
    AlreadyExists,
    #[serde(rename = "com.vmware.vapi.std.errors.unauthenticated")]
    Unauthenticated,
    #[serde(rename = "com.vmware.vapi.std.errors.unauthorized")]
    Unauthorized,
    #[serde(rename = "com.vmware.vapi.std.errors.not_found")]
    NotFound,
    #[serde(rename = "com.vmware.vapi.std.errors.concurrent_change")]
    ConcurrentChange,
    #[serde(rename = "com.vmware.vapi.std.errors.internal_server_error")]
    InternalServerError,
    #[serde(rename = "com.vmware.vapi.std.errors.service_unavailable")]
    ServiceUnavailable,
}

pub use crate::api::rest_legacy::RestErrorBody;

fn api_error_example(kind: ErrorKind, id: &str, message: &str, args: &[&str]) -> Value {
    json!({
        "error_type": kind.as_str(),
        "messages": [{ "id": id, "default_message": message, "args": args }],
    })
}

fn rest_error_example(kind: ErrorKind, id: &str, message: &str, args: &[&str]) -> Value {
    json!({
        "type": kind.vapi_type(),
        "value": api_error_example(kind, id, message, args),
    })
}

fn error_response(description: &str, schema: &str, example: Value) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(schema)))
                .example(Some(example))
                .build(),
        )
        .build()
        .into()
}

/// One reusable error response per status and surface; operations list the
/// statuses they can answer with and reference these.
macro_rules! error_responses {
    ($($name:ident => $schema:literal, $example:ident, $description:literal, $kind:ident, $id:literal, $message:literal;)*) => {
        $(
            #[doc = $description]
            pub struct $name;

            impl<'r> utoipa::ToResponse<'r> for $name {
                fn response() -> (&'r str, RefOr<Response>) {
                    (
                        stringify!($name),
                        error_response(
                            $description,
                            $schema,
                            $example(ErrorKind::$kind, $id, $message, &[]),
                        ),
                    )
                }
            }
        )*
    };
}

error_responses! {
    ApiBadRequest => "ApiErrorBody", api_error_example,
        "`INVALID_ARGUMENT` (malformed body or parameter, unknown action, no such file), `NOT_ALLOWED_IN_CURRENT_STATE` or `ALREADY_EXISTS`.",
        InvalidArgument, "com.vmware.vapi.rest.json_parse_error", "The request body is not valid: expected value at line 1 column 1";
    ApiUnauthenticated => "ApiErrorBody", api_error_example,
        "`UNAUTHENTICATED`: no valid login token (or wrong user name or password on login).",
        Unauthenticated, "com.vmware.vapi.endpoint.method.authentication.required", "This method requires authentication.";
    ApiUnauthorized => "ApiErrorBody", api_error_example,
        "`UNAUTHORIZED`: the user lacks the privilege the operation needs.",
        Unauthorized, "com.vmware.vapi.std.errors.unauthorized", "User alice does not have the privilege ContentLibrary.DownloadSession required by this operation.";
    ApiNotFound => "ApiErrorBody", api_error_example,
        "`NOT_FOUND`: the object does not exist, is not the caller's, or its id is not even well-formed.",
        NotFound, "com.vmware.content.library.item.download_session.not_found", "Download session 0b1e7b3a-2b54-4a57-9a0e-3c9c43b1a2f0 does not exist.";
    ApiPayloadTooLarge => "ApiErrorBody", api_error_example,
        "The request body is larger than `http.max_body_bytes` (kind `INVALID_ARGUMENT`).",
        InvalidArgument, "com.vmware.vapi.rest.payload_too_large", "The request body is larger than 65536 bytes.";
    ApiInternalServerError => "ApiErrorBody", api_error_example,
        "`INTERNAL_SERVER_ERROR`: never carries internals; the service log has the cause.",
        InternalServerError, "com.vmware.vapi.std.errors.internal_server_error", "Internal server error; see the service log.";
    ApiServiceUnavailable => "ApiErrorBody", api_error_example,
        "`SERVICE_UNAVAILABLE`: the database cannot be reached; try again.",
        ServiceUnavailable, "com.vmware.vapi.std.errors.service_unavailable", "The service is temporarily unavailable; try again.";
    RestBadRequest => "RestErrorBody", rest_error_example,
        "`invalid_argument` (malformed body or parameter, unknown `~action`, no such file), `not_allowed_in_current_state` or `already_exists`.",
        InvalidArgument, "com.vmware.vapi.rest.unknown_action", "Unknown or missing ~action \"nope\".";
    RestUnauthenticated => "RestErrorBody", rest_error_example,
        "`unauthenticated`: no valid login token (or wrong user name or password on login).",
        Unauthenticated, "com.vmware.vapi.endpoint.method.authentication.required", "This method requires authentication.";
    RestUnauthorized => "RestErrorBody", rest_error_example,
        "`unauthorized`: the user lacks the privilege the operation needs.",
        Unauthorized, "com.vmware.vapi.std.errors.unauthorized", "User alice does not have the privilege System.Read required by this operation.";
    RestNotFound => "RestErrorBody", rest_error_example,
        "`not_found`: the object does not exist, is not the caller's, or its id is not even well-formed.",
        NotFound, "com.vmware.content.library.item.not_found", "Library item 0b1e7b3a-2b54-4a57-9a0e-3c9c43b1a2f0 does not exist.";
    RestPayloadTooLarge => "RestErrorBody", rest_error_example,
        "The request body is larger than `http.max_body_bytes` (kind `invalid_argument`).",
        InvalidArgument, "com.vmware.vapi.rest.payload_too_large", "The request body is larger than 65536 bytes.";
    RestInternalServerError => "RestErrorBody", rest_error_example,
        "`internal_server_error`: never carries internals; the service log has the cause.",
        InternalServerError, "com.vmware.vapi.std.errors.internal_server_error", "Internal server error; see the service log.";
    RestServiceUnavailable => "RestErrorBody", rest_error_example,
        "`service_unavailable`: the database cannot be reached; try again.",
        ServiceUnavailable, "com.vmware.vapi.std.errors.service_unavailable", "The service is temporarily unavailable; try again.";
}

// ------------------------------------------------------- /api action bodies

/// `?action=` of `POST /api/content/library/item/download-session/{id}`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SessionAction {
    KeepAlive,
    Cancel,
    Fail,
}

/// `?action=` of `POST /api/content/library/item/download-session/{id}/file`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FileAction {
    Prepare,
}

/// Body of a session action: `keep-alive` reads `progress` (optional), `fail` reads
/// `client_error_message` (required for fail), `cancel` takes no body. A field the
/// action does not read is `INVALID_ARGUMENT`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionActionBody {
    /// keep-alive: the client's progress, 0..100.
    #[schema(minimum = 0, maximum = 100, example = 42)]
    pub progress: Option<i64>,
    /// fail: why the client gave up; shown in the session's `error_message`.
    #[schema(example = "disk full")]
    pub client_error_message: Option<String>,
}

/// `GET .../download-session/{id}/file`: the list, or one file with `?file_name=`.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum DownloadFileInfoOrList {
    One(Box<DownloadFileInfo>),
    List(Vec<DownloadFileInfo>),
}

/// `GET /api/content/library/item/{id}/file`: the list, or one file with `?name=`.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum ItemFileInfoOrList {
    One(ItemFileInfo),
    List(Vec<ItemFileInfo>),
}

// ------------------------------------------------------------ /rest envelopes

/// Every successful `/rest` answer with a result is `{"value": ...}`.
macro_rules! rest_values {
    ($($name:ident($ty:ty) $doc:literal;)*) => {
        $(
            #[doc = $doc]
            #[derive(Serialize, ToSchema)]
            pub struct $name {
                pub value: $ty,
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

/// `?~action=` of `POST /rest/com/vmware/cis/session` (absent: login).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RestSessionAction {
    Get,
}

/// `?~action=` of `POST /rest/.../download-session` (absent: create).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RestCollectionAction {
    List,
}

/// `?~action=` of `POST /rest/.../download-session/id:{id}`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RestSessionIdAction {
    List,
    KeepAlive,
    Cancel,
    Fail,
}

/// `?~action=` of `POST /rest/.../downloadsession/file/id:{id}`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RestFileAction {
    Get,
    Prepare,
}

/// `?~action=` of `POST /rest/.../library/item/file/id:{id}`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RestItemFileAction {
    Get,
}

/// Body of `POST /rest/.../download-session`: create reads `client_token` and
/// `create_spec`; `~action=list` reads `library_item_id`. A field the action does
/// not read is `invalid_argument`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestCollectionBody {
    /// create: the same token from the same user answers the same session id.
    #[schema(example = "6f9d2c4e-1b7a-4e0f-9c3d-2a8b5e7f1c90")]
    pub client_token: Option<String>,
    /// create: only `library_item_id` is used.
    pub create_spec: Option<inputs::CreateSpec>,
    /// list: only the sessions of this item.
    pub library_item_id: Option<String>,
}

/// Body of `POST /rest/.../downloadsession/file/id:{id}`: `file_name` for both
/// actions, `endpoint_type` for prepare only.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestFileActionBody {
    #[schema(example = "disk-0.vmdk")]
    pub file_name: String,
    /// prepare: `HTTPS` (default) or `DIRECT`.
    pub endpoint_type: Option<EndpointType>,
}

/// Body of `POST /rest/.../library/item/file/id:{id}?~action=get`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestItemFileBody {
    #[schema(example = "disk-0.vmdk")]
    pub name: String,
}

// ------------------------------------------------------------------ data plane

/// The bytes of a file (`GET /cls/data/...`).
pub struct FileBytes;

impl utoipa::PartialSchema for FileBytes {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .content_media_type("application/octet-stream")
            .description(Some("The file's bytes (the requested range for 206)."))
            .into()
    }
}

impl ToSchema for FileBytes {}

// ------------------------------------------------------------------ JSON-RPC

/// `"2.0"`.
#[derive(Serialize, ToSchema)]
pub enum JsonRpcVersion {
    #[serde(rename = "2.0")]
    V2,
}

/// vAPI defines one method.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JsonRpcMethod {
    Invoke,
}

/// A vAPI call: `POST /api` with this envelope.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "jsonrpc": "2.0",
    "method": "invoke",
    "id": "7",
    "params": {
        "serviceId": "com.vmware.content.library.item.download_session",
        "operationId": "get",
        "input": {"STRUCTURE": {"operation-input": {"download_session_id": "0b1e7b3a-2b54-4a57-9a0e-3c9c43b1a2f0"}}},
        "ctx": {"securityCtx": {"schemeId": "com.vmware.vapi.std.security.session_id", "sessionId": "<token>"}}
    }
}))]
pub struct JsonRpcRequest {
    pub jsonrpc: JsonRpcVersion,
    pub method: JsonRpcMethod,
    /// Echoed in the answer.
    #[schema(schema_with = json_rpc_id)]
    pub id: Option<Value>,
    pub params: JsonRpcParams,
}

/// `params` of `invoke`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JsonRpcParams {
    /// e.g. `com.vmware.content.library.item.download_session`, `com.vmware.cis.session`.
    #[schema(example = "com.vmware.content.library.item.download_session")]
    pub service_id: String,
    /// e.g. `create`, `get`, `list`, `keep_alive`, `prepare`.
    #[schema(example = "get")]
    pub operation_id: String,
    /// `{"STRUCTURE": {"operation-input": {...}}}`; optional fields as `{"OPTIONAL": v}`.
    #[schema(value_type = Object)]
    pub input: Value,
    pub ctx: Option<JsonRpcContext>,
}

/// `params.ctx`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JsonRpcContext {
    /// `{"schemeId": "com.vmware.vapi.std.security.user_pass", "userName", "password"}` to log
    /// in, then `{"schemeId": "com.vmware.vapi.std.security.session_id", "sessionId"}`.
    #[schema(value_type = Option<Object>)]
    pub security_ctx: Option<Value>,
    /// Application context (e.g. `opId`); ignored.
    #[schema(value_type = Option<Object>)]
    pub app_ctx: Option<Value>,
}

/// The answer to every call, always HTTP 200: `result` (with `output` or a vAPI
/// `error`) or, when the envelope could not be understood, a JSON-RPC `error`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "jsonrpc": "2.0",
    "id": "7",
    "result": {"output": {"STRUCTURE": {"com.vmware.content.library.item.download_session_model": {
        "library_item_id": "1c3a9e55-0d6e-4b5e-8f1a-3e2d4c5b6a79",
        "library_item_content_version": "1",
        "error_message": {"OPTIONAL": null},
        "client_progress": 0,
        "state": "ACTIVE",
        "expiration_time": "2030-01-01T00:05:00.000Z"
    }}}}
}))]
pub struct JsonRpcResponse {
    pub jsonrpc: JsonRpcVersion,
    /// The request's id (null when it could not be read).
    #[schema(schema_with = json_rpc_id)]
    pub id: Value,
    pub result: Option<JsonRpcResult>,
    pub error: Option<JsonRpcError>,
}

/// `result`: `output` on success (`null` for void), `error` for a vAPI error.
#[derive(Serialize, ToSchema)]
pub struct JsonRpcResult {
    /// The operation's output in vAPI encoding (`STRUCTURE`, `OPTIONAL`, `SECRET`, lists).
    #[schema(value_type = Value, required = false)]
    pub output: Option<Value>,
    /// `{"ERROR": {"com.vmware.vapi.std.errors.<kind>": {"messages", "data", "error_type"}}}`.
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
}

/// A JSON-RPC error: the envelope could not be parsed or understood.
#[derive(Serialize, ToSchema)]
pub struct JsonRpcError {
    /// -32700 parse error, -32600 invalid request, -32601 method not found,
    /// -32602 invalid params, -31001 header/body mismatch.
    #[schema(example = -32700)]
    pub code: i64,
    pub message: String,
}

/// A JSON-RPC `id`: a string, a number or null.
fn json_rpc_id() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([
            Type::String,
            Type::Number,
            Type::Null,
        ]))
        .examples([json!("7")])
        .build()
}
