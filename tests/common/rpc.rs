//! vAPI JSON-RPC on `POST /api` as the official SDKs speak it
//! (reference/vapi-jsonrpc-capture.txt): the envelope, security contexts, and checks
//! of outputs and vAPI errors.

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::http::Http;

pub const CIS_SESSION: &str = "com.vmware.cis.session";
pub const DS: &str = "com.vmware.content.library.item.download_session";
pub const DS_FILE: &str = "com.vmware.content.library.item.downloadsession.file";
pub const DS_MODEL: &str = "com.vmware.content.library.item.download_session_model";
pub const FILE_INFO: &str = "com.vmware.content.library.item.downloadsession.file.info";
pub const LIBRARY: &str = "com.vmware.content.library";
pub const LOCAL_LIBRARY: &str = "com.vmware.content.local_library";
pub const SUBSCRIBED_LIBRARY: &str = "com.vmware.content.subscribed_library";
pub const ITEM: &str = "com.vmware.content.library.item";
pub const ITEM_STORAGE: &str = "com.vmware.content.library.item.storage";
pub const LIBRARY_MODEL: &str = "com.vmware.content.library_model";
pub const ITEM_MODEL: &str = "com.vmware.content.library.item_model";

/// A `LibraryModel` as the SDK sends it: every field, those not in `set` unset.
pub fn library_model(set: Value) -> Value {
    let mut fields = serde_json::Map::new();
    for name in [
        "id",
        "creation_time",
        "description",
        "last_modified_time",
        "last_sync_time",
        "name",
        "storage_backings",
        "type",
        "optimization_info",
        "version",
        "publish_info",
        "subscription_info",
        "server_guid",
        "security_policy_id",
        "unset_security_policy_id",
    ] {
        fields.insert(name.into(), json!({"OPTIONAL": set.get(name).cloned()}));
    }
    json!({"STRUCTURE": {LIBRARY_MODEL: fields}})
}

/// A `StorageBacking` as the SDK sends it.
pub fn storage_backing(backing_type: &str, datastore_id: Option<&str>) -> Value {
    json!({"STRUCTURE": {"com.vmware.content.library.storage_backing": {
        "type": {"OPTIONAL": backing_type}, "datastore_id": {"OPTIONAL": datastore_id},
        "storage_uri": {"OPTIONAL": null}}}})
}

/// An `ItemModel` as the SDK sends it: every field, those not in `set` unset.
pub fn item_model(set: Value) -> Value {
    let mut fields = serde_json::Map::new();
    for name in [
        "id",
        "library_id",
        "content_version",
        "creation_time",
        "description",
        "last_modified_time",
        "last_sync_time",
        "metadata_version",
        "name",
        "cached",
        "size",
        "type",
        "version",
        "source_id",
        "security_compliance",
        "certificate_verification_info",
    ] {
        fields.insert(name.into(), json!({"OPTIONAL": set.get(name).cloned()}));
    }
    json!({"STRUCTURE": {ITEM_MODEL: fields}})
}

/// A find spec of structure `name` as the SDK sends it: `fields` set, `unset` unset.
pub fn find_spec(name: &str, fields: &[&str], set: Value) -> Value {
    let mut out = serde_json::Map::new();
    for f in fields {
        out.insert((*f).into(), json!({"OPTIONAL": set.get(*f).cloned()}));
    }
    json!({"STRUCTURE": {name: out}})
}

/// `Library.FindSpec` as the SDK sends it.
pub fn library_find(set: Value) -> Value {
    find_spec(
        "com.vmware.content.library.find_spec",
        &["name", "type"],
        set,
    )
}

/// `Item.FindSpec` as the SDK sends it.
pub fn item_find(set: Value) -> Value {
    find_spec(
        "com.vmware.content.library.item.find_spec",
        &["name", "library_id", "source_id", "type", "cached"],
        set,
    )
}

/// The security context of a login token.
pub fn session_ctx(token: &str) -> Value {
    json!({"schemeId": "com.vmware.vapi.std.security.session_id", "sessionId": token})
}

/// The security context of a user name and password.
pub fn user_pass_ctx(user: &str, password: &str) -> Value {
    json!({"schemeId": "com.vmware.vapi.std.security.user_pass", "userName": user, "password": password})
}

/// The fields of structure `name` in a vAPI value.
pub fn structure<'v>(v: &'v Value, name: &str) -> &'v Value {
    let s = &v["STRUCTURE"][name];
    assert!(s.is_object(), "expected structure {name}: {v}");
    s
}

/// The input of `download_session.create` as the SDK sends it.
pub fn create_input(item: &str, client_token: Option<&str>) -> Value {
    json!({
        "client_token": {"OPTIONAL": client_token},
        "create_spec": {"STRUCTURE": {DS_MODEL: {
            "id": {"OPTIONAL": null},
            "library_item_id": {"OPTIONAL": item},
            "library_item_content_version": {"OPTIONAL": null},
            "error_message": {"OPTIONAL": null},
            "client_progress": {"OPTIONAL": null},
            "state": {"OPTIONAL": null},
            "expiration_time": {"OPTIONAL": null},
        }}},
    })
}

#[derive(Clone, Copy)]
pub struct Rpc<'a>(pub Http<'a>);

impl Rpc<'_> {
    /// Posts a raw body; JSON-RPC always answers HTTP 200 with JSON.
    pub async fn post_raw(&self, body: impl Into<reqwest::Body>) -> Value {
        let r = self
            .0
            .request(reqwest::Method::POST, "/api")
            .header("content-type", "application/json")
            .body(body);
        let r = Http::send(r).await;
        assert_eq!(r.status(), StatusCode::OK, "JSON-RPC answers 200");
        r.json().await.expect("JSON-RPC answer is JSON")
    }

    /// One `invoke` as the SDK sends it (headers, app context, id "7"); the whole answer.
    pub async fn invoke(&self, security: Value, service: &str, op: &str, input: Value) -> Value {
        let body = json!({
            "jsonrpc": "2.0",
            "method": "invoke",
            "params": {
                "serviceId": service,
                "operationId": op,
                "input": {"STRUCTURE": {"operation-input": input}},
                "ctx": {"appCtx": {"opId": "test-op"}, "securityCtx": security},
            },
            "id": "7",
        });
        let r = self
            .0
            .request(reqwest::Method::POST, "/api")
            .header("vapi-service", service)
            .header("vapi-operation", op)
            .json(&body);
        let r = Http::send(r).await;
        assert_eq!(r.status(), StatusCode::OK, "JSON-RPC answers 200");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["jsonrpc"], "2.0");
        assert_eq!(v["id"], "7", "{v}");
        v
    }

    /// The output of a call as `token` that must succeed.
    pub async fn output(&self, token: &str, service: &str, op: &str, input: Value) -> Value {
        let v = self.invoke(session_ctx(token), service, op, input).await;
        assert!(
            v["result"].get("error").is_none(),
            "{service}.{op} failed: {v}"
        );
        v["result"]["output"].clone()
    }

    /// The error of a call that must fail with `kind` (e.g. `not_found`); its fields.
    pub async fn error(
        &self,
        security: Value,
        service: &str,
        op: &str,
        input: Value,
        kind: &str,
    ) -> Value {
        let v = self.invoke(security, service, op, input).await;
        assert!(v["result"].get("output").is_none(), "{v}");
        let name = format!("com.vmware.vapi.std.errors.{kind}");
        let fields = v["result"]["error"]["ERROR"][&name].clone();
        assert!(fields.is_object(), "expected {name}: {v}");
        assert_eq!(fields["data"], json!({"OPTIONAL": null}));
        assert_eq!(
            fields["error_type"],
            json!({"OPTIONAL": kind.to_uppercase()})
        );
        let messages = fields["messages"].as_array().expect("messages");
        assert!(!messages.is_empty());
        for m in messages {
            let m = &m["STRUCTURE"]["com.vmware.vapi.std.localizable_message"];
            assert!(
                m["id"].is_string() && m["default_message"].is_string(),
                "{m}"
            );
            assert!(m["args"].is_array(), "{m}");
        }
        fields
    }

    /// The vAPI error type of a call (`None` when it succeeded).
    pub async fn error_type(
        &self,
        security: Value,
        service: &str,
        op: &str,
        input: Value,
    ) -> Option<String> {
        let v = self.invoke(security, service, op, input).await;
        let error = v["result"].get("error")?;
        let (kind, _) = error["ERROR"].as_object().unwrap().iter().next().unwrap();
        Some(kind.clone())
    }

    /// Logs in (`com.vmware.cis.session.create`) and answers the token.
    pub async fn login(&self, user: &str, password: &str) -> String {
        let v = self
            .invoke(
                user_pass_ctx(user, password),
                CIS_SESSION,
                "create",
                json!({}),
            )
            .await;
        v["result"]["output"]["SECRET"]
            .as_str()
            .unwrap_or_else(|| panic!("token as SECRET: {v}"))
            .to_string()
    }

    /// Creates a download session as `token` and answers its id.
    pub async fn new_session(&self, token: &str, item: &str) -> String {
        let out = self
            .output(token, DS, "create", create_input(item, None))
            .await;
        out.as_str().expect("id string").to_string()
    }
}
