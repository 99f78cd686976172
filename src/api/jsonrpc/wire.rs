//! The JSON-RPC 2.0 envelope of `POST /api`: the request as it is read (strictly, each
//! refusal with its JSON-RPC code) and the answer as it is written; the same types are
//! what the OpenAPI document shows.

use actix_web::HttpRequest;
use serde::Serialize;
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use super::value::Input;

// JSON-RPC 2.0 error codes, plus vAPI's own for a header/payload mismatch.
pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INVALID_OPERATION: i64 = -31001;

/// `"2.0"`.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
pub enum JsonRpcVersion {
    #[serde(rename = "2.0")]
    V2,
}

/// vAPI defines one method.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JsonRpcMethod {
    Invoke,
}

/// A vAPI call: `POST /api` with this envelope.
#[derive(Debug, ToSchema)]
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
#[derive(Debug, ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct JsonRpcParams {
    /// e.g. `com.vmware.content.library.item.download_session`, `com.vmware.cis.session`.
    #[schema(example = "com.vmware.content.library.item.download_session")]
    pub service_id: String,
    /// e.g. `create`, `get`, `list`, `keep_alive`, `prepare`.
    #[schema(example = "get")]
    pub operation_id: String,
    /// `{"STRUCTURE": {"operation-input": {...}}}`; optional fields as `{"OPTIONAL": v}`.
    #[schema(value_type = Object)]
    pub input: Input,
    pub ctx: Option<JsonRpcContext>,
}

/// `params.ctx`.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "camelCase")]
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
#[derive(Debug, Serialize, ToSchema)]
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<JsonRpcResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<JsonRpcError>,
}

/// `result`: `output` on success (`null` for void), `error` for a vAPI error.
#[derive(Debug, Serialize, ToSchema)]
pub struct JsonRpcResult {
    /// The operation's output in vAPI encoding (`STRUCTURE`, `OPTIONAL`, `SECRET`, lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Value, required = false)]
    pub output: Option<Value>,
    /// `{"ERROR": {"com.vmware.vapi.std.errors.<kind>": {"messages", "data", "error_type"}}}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
}

/// A JSON-RPC error: the envelope could not be parsed or understood.
#[derive(Debug, Serialize, ToSchema)]
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

impl JsonRpcResponse {
    /// The answer of a call the envelope of which was understood.
    pub fn result(id: Value, result: Result<Value, Value>) -> JsonRpcResponse {
        let result = match result {
            Ok(output) => JsonRpcResult {
                output: Some(output),
                error: None,
            },
            Err(error) => JsonRpcResult {
                output: None,
                error: Some(error),
            },
        };
        JsonRpcResponse {
            jsonrpc: JsonRpcVersion::V2,
            id,
            result: Some(result),
            error: None,
        }
    }
}

/// A request whose envelope could not be understood: answered with a JSON-RPC
/// error object (still HTTP 200), not a vAPI error.
pub struct Rejection {
    id: Value,
    code: i64,
    message: String,
}

impl Rejection {
    pub fn new(id: Value, code: i64, message: impl Into<String>) -> Self {
        Rejection {
            id,
            code,
            message: message.into(),
        }
    }

    pub fn response(self) -> JsonRpcResponse {
        // The SDK checks that parse errors and invalid requests carry a null
        // id (the server may not have been able to read one).
        let id = if matches!(self.code, PARSE_ERROR | INVALID_REQUEST) {
            Value::Null
        } else {
            self.id
        };
        JsonRpcResponse {
            jsonrpc: JsonRpcVersion::V2,
            id,
            result: None,
            error: Some(JsonRpcError {
                code: self.code,
                message: self.message,
            }),
        }
    }
}

/// The one JSON-RPC method vAPI defines.
const INVOKE: &str = "invoke";

impl JsonRpcRequest {
    /// Reads the envelope: batches, a wrong version or method, and malformed params
    /// are refused with their JSON-RPC codes; the vAPI headers must agree with the body.
    pub fn read(request: Value, req: &HttpRequest) -> Result<JsonRpcRequest, Rejection> {
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
        let Some(Value::Object(params)) = envelope.remove("params") else {
            return Err(Rejection::new(
                id,
                INVALID_PARAMS,
                "params must be an object.",
            ));
        };
        let params = JsonRpcParams::read(params, req)
            .map_err(|(code, message)| Rejection::new(id.clone(), code, message))?;
        Ok(JsonRpcRequest {
            jsonrpc: JsonRpcVersion::V2,
            method: JsonRpcMethod::Invoke,
            id: Some(id),
            params,
        })
    }
}

impl JsonRpcParams {
    fn read(mut params: Map<String, Value>, req: &HttpRequest) -> Result<Self, (i64, String)> {
        let mut name = |key: &str| match params.remove(key) {
            Some(Value::String(s)) => Ok(s),
            _ => Err((INVALID_PARAMS, format!("params.{key} must be a string."))),
        };
        let service_id = name("serviceId")?;
        let operation_id = name("operationId")?;
        // The SDK repeats service and operation in headers; a proxy or client
        // that lets them disagree with the body is refused, as vAPI does.
        for (header, expected) in [
            ("vapi-service", &service_id),
            ("vapi-operation", &operation_id),
        ] {
            if let Some(sent) = req.headers().get(header) {
                if sent.to_str().ok() != Some(expected.as_str()) {
                    return Err((
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
                (
                    INVALID_PARAMS,
                    "params.input must be {\"STRUCTURE\":{\"operation-input\":{...}}}.".to_string(),
                )
            })?;
        let ctx = match params.remove("ctx") {
            None | Some(Value::Null) => None,
            Some(Value::Object(mut ctx)) => Some(JsonRpcContext {
                security_ctx: ctx.remove("securityCtx").filter(|v| !v.is_null()),
                app_ctx: ctx.remove("appCtx"),
            }),
            Some(_) => return Err((INVALID_PARAMS, "params.ctx must be an object.".into())),
        };
        Ok(JsonRpcParams {
            service_id,
            operation_id,
            input,
            ctx,
        })
    }
}
