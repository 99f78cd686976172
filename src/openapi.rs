//! The OpenAPI document of every HTTP surface, built from the handlers' annotations,
//! and the routes that serve it (`/api-docs/openapi.json`, Swagger UI at `/docs`).
//!
//! The committed `openapi/openapi.json` is this document (`download-sessions openapi`);
//! a test fails when they drift. This module only collects: every type it lists is one
//! that a surface (de)serializes at runtime, and no surface imports anything from here.

use actix_web::{web, HttpResponse};
use serde_json::Value;
use utoipa::{
    openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
    Modify, OpenApi,
};
use utoipa_swagger_ui::SwaggerUi;

use crate::{
    api::{
        self,
        errors::{self, ApiErrorBody, RestErrorBody, VapiErrorType},
        jsonrpc::{
            JsonRpcContext, JsonRpcError, JsonRpcMethod, JsonRpcParams, JsonRpcRequest,
            JsonRpcResponse, JsonRpcResult, JsonRpcVersion,
        },
        ops::{Health, Readiness},
        rest_legacy::*,
        wire::*,
        SESSION_HEADER,
    },
    dataplane::{self, serve::FileBytes},
    domain::{
        catalog::{
            ItemFindSpec, ItemModelSpec, LibraryFindSpec, LibraryModelSpec, PublishInfoSpec,
            StorageBackingSpec,
        },
        models::{
            AuthenticationMethod, ChecksumAlgorithm, ChecksumInfo, DownloadFileInfo,
            DownloadSessionModel, ItemFileInfo, ItemModel, LibraryModel, LibraryType, PublishInfo,
            SessionInfo, StorageBacking, StorageBackingType, StorageInfo, TransferEndpoint,
        },
        EndpointType, PrepareStatus, SessionState,
    },
    error::{ErrorKind, LocalizableMessage},
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
        api::rest_api::find_libraries,
        api::rest_api::update_library,
        api::rest_api::create_local_library,
        api::rest_api::list_local_libraries,
        api::rest_api::get_local_library,
        api::rest_api::update_local_library,
        api::rest_api::delete_local_library,
        api::rest_api::list_subscribed_libraries,
        api::rest_api::get_subscribed_library,
        api::rest_api::list_items,
        api::rest_api::item_post,
        api::rest_api::get_item,
        api::rest_api::update_item,
        api::rest_api::delete_item,
        api::rest_api::item_files,
        api::rest_api::item_storage,
        api::rest_api::create_session,
        api::rest_api::list_sessions,
        api::rest_api::get_session,
        api::rest_api::create_update_session,
        api::rest_api::list_update_sessions,
        api::rest_api::get_update_session,
        api::rest_api::update_session_action,
        api::rest_api::delete_update_session,
        api::rest_api::update_files,
        api::rest_api::update_file_action,
        api::rest_api::session_action,
        api::rest_api::delete_session,
        api::rest_api::files,
        api::rest_api::file_action,
        api::rest_legacy::update_session_post,
        api::rest_legacy::list_update_sessions,
        api::rest_legacy::get_update_session,
        api::rest_legacy::update_session_action,
        api::rest_legacy::delete_update_session,
        api::rest_legacy::list_update_files,
        api::rest_legacy::update_file_action,
        api::rest_legacy::session_post,
        api::rest_legacy::logout,
        api::rest_legacy::list_libraries,
        api::rest_legacy::get_library,
        api::rest_legacy::find_libraries,
        api::rest_legacy::update_library,
        api::rest_legacy::create_local_library,
        api::rest_legacy::list_local_libraries,
        api::rest_legacy::get_local_library,
        api::rest_legacy::update_local_library,
        api::rest_legacy::delete_local_library,
        api::rest_legacy::list_subscribed_libraries,
        api::rest_legacy::get_subscribed_library,
        api::rest_legacy::list_items,
        api::rest_legacy::item_post,
        api::rest_legacy::get_item,
        api::rest_legacy::update_item,
        api::rest_legacy::delete_item,
        api::rest_legacy::item_files,
        api::rest_legacy::item_file_action,
        api::rest_legacy::list_storage,
        api::rest_legacy::storage_action,
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
        dataplane::upload::upload,
        dataplane::upload::upload_post,
        api::ops::healthz,
        api::ops::readyz,
        api::ops::prometheus,
    ),
    servers((url = "/", description = "The instance serving this document.")),
    components(schemas(
        // Errors.
        ApiErrorBody,
        ErrorKind,
        LocalizableMessage,
        RestErrorBody,
        VapiErrorType,
        // The contract's models.
        DownloadSessionModel,
        SessionState,
        DownloadFileInfo,
        PrepareStatus,
        TransferEndpoint,
        ChecksumInfo,
        ChecksumAlgorithm,
        EndpointType,
        LibraryModel,
        LibraryType,
        StorageBacking,
        StorageBackingType,
        PublishInfo,
        AuthenticationMethod,
        ItemModel,
        ItemFileInfo,
        StorageInfo,
        SessionInfo,
        // The catalog's specs (every surface).
        LibraryModelSpec,
        StorageBackingSpec,
        PublishInfoSpec,
        ItemModelSpec,
        LibraryFindSpec,
        ItemFindSpec,
        // /api and /rest.
        CreateSpec,
        KeepAliveSpec,
        FailSpec,
        PrepareSpec,
        SessionAction,
        SessionActionBody,
        UpdateAction,
        FileAction,
        UpdateFileAction,
        DownloadFileInfoOrList,
        ItemFileInfoOrList,
        LibraryAction,
        ItemAction,
        ItemCollectionBody,
        // /rest.
        RestValueString,
        RestValueStrings,
        RestValueSessionInfo,
        RestValueLibrary,
        RestValueItem,
        RestValueItemFile,
        RestValueItemFiles,
        RestValueDownloadSession,
        RestValueDownloadFile,
        RestValueDownloadFiles,
        RestValueStorageInfos,
        RestLoginOrWhoAmI,
        RestIdOrIds,
        RestSessionAction,
        RestCollectionAction,
        RestSessionIdAction,
        RestFileAction,
        RestUpdateIdAction,
        RestUpdateFileAction,
        RestItemFileAction,
        RestLibraryAction,
        RestItemAction,
        RestStorageAction,
        RestLibraryFindBody,
        RestItemFindBody,
        RestLibraryCreateBody,
        RestLibraryUpdateBody,
        RestItemCreateBody,
        RestItemUpdateBody,
        RestItemCollectionBody,
        RestCreateBody,
        RestListBody,
        RestCollectionBody,
        RestFileNameBody,
        RestFileActionBody,
        RestItemFileBody,
        // JSON-RPC.
        JsonRpcRequest,
        JsonRpcParams,
        JsonRpcContext,
        JsonRpcMethod,
        JsonRpcVersion,
        JsonRpcResponse,
        JsonRpcResult,
        JsonRpcError,
        // The data plane and ops.
        FileBytes,
        Health,
        Readiness,
    )),
    modifiers(&SecuritySchemes, &ErrorResponses),
    tags(
        (name = "session", description = "Login tokens (`/api/session`)."),
        (name = "download_session", description = "`com.vmware.content.library.item.download_session` on `/api`."),
        (name = "download_session_file", description = "`com.vmware.content.library.item.downloadsession.file` on `/api`."),
        (name = "update_session", description = "`com.vmware.content.library.item.update_session` on `/api`: uploads."),
        (name = "update_session_file", description = "`com.vmware.content.library.item.updatesession.file` on `/api`."),
        (name = "library", description = "The catalog on `/api`: libraries, items, item files, item storage; find, update, create and delete (privileges as vCenter names them)."),
        (name = "local_library", description = "`com.vmware.content.local_library` (and the always empty `subscribed_library`) on `/api`."),
        (name = "rest", description = "The legacy `/rest/com/vmware/...` surface: the same operations, `{\"value\": ...}` envelopes."),
        (name = "vapi", description = "vAPI JSON-RPC 2.0, as spoken by the official vSphere Automation SDKs."),
        (name = "data", description = "The data plane: signed download URIs from `download_endpoint.uri`, upload URIs from `upload_endpoint.uri`."),
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

/// The reusable error responses of each surface.
struct ErrorResponses;

impl Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let responses = errors::response_components::<errors::Api>()
            .into_iter()
            .chain(errors::response_components::<errors::Rest>());
        components.responses.extend(responses);
    }
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
