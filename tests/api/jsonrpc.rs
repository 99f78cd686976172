//! vAPI JSON-RPC on `POST /api`: raw requests shaped like the official SDK's
//! (reference/vapi-jsonrpc-capture.txt), error encoding, malformed envelopes,
//! and the official Python SDK itself (`official_python_sdk`).

use std::{path::PathBuf, process::Stdio, time::Duration};

use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::*;

use crate::helpers::rpc::{
    create_input, item_find, item_model, library_find, library_model, storage_backing, DS, DS_FILE,
    DS_MODEL, FILE_INFO, ITEM, ITEM_MODEL, ITEM_STORAGE, LIBRARY, LIBRARY_MODEL, LOCAL_LIBRARY,
    SUBSCRIBED_LIBRARY,
};

const DISK: &[u8] = b"bytes of disk-0 for the JSON-RPC surface";

/// An app with one item and alice (downloader), logged in over JSON-RPC.
async fn setup() -> (TestApp, String, String) {
    let app = spawn_app().await;
    let item = app
        .import(
            "lib",
            "vm",
            &[("disk-0.vmdk", DISK), ("vm.ovf", b"<Envelope/>")],
        )
        .await;
    app.add_user("alice", "Secr3t!", DOWNLOADER).await;
    let token = app.rpc().login("alice", "Secr3t!").await;
    (app, token, item)
}

// ------------------------------------------------------------------ session

#[tokio::test]
async fn cis_session_create_get_delete() {
    let (app, token, _item) = setup().await;
    let info = app
        .rpc()
        .output(&token, "com.vmware.cis.session", "get", json!({}))
        .await;
    let info = structure(&info, "com.vmware.cis.session.info");
    assert_eq!(info["user"], "alice");
    assert!(info["created_time"].as_str().unwrap().ends_with('Z'));
    assert!(info["last_accessed_time"].is_string());

    // The JSON-RPC token is an ordinary login token.
    assert_eq!(app.api(&token).whoami().await.status(), StatusCode::OK);

    let out = app
        .rpc()
        .output(&token, "com.vmware.cis.session", "delete", json!({}))
        .await;
    assert!(out.is_null());
    let e = app
        .rpc()
        .error(
            session_ctx(&token),
            "com.vmware.cis.session",
            "get",
            json!({}),
            "unauthenticated",
        )
        .await;
    assert_eq!(e["challenge"], json!({"OPTIONAL": null}));

    app.rpc()
        .error(
            user_pass_ctx("alice", "wrong"),
            "com.vmware.cis.session",
            "create",
            json!({}),
            "unauthenticated",
        )
        .await;
    app.rpc()
        .error(
            json!({"schemeId": "com.vmware.vapi.std.security.saml_hok_token"}),
            DS,
            "list",
            json!({"library_item_id": {"OPTIONAL": null}}),
            "unauthenticated",
        )
        .await;
    app.rpc()
        .error(
            Value::Null,
            DS,
            "list",
            json!({"library_item_id": {"OPTIONAL": null}}),
            "unauthenticated",
        )
        .await;
}

#[tokio::test]
async fn rest_session_header_and_user_pass_also_authenticate() {
    let (app, token, _item) = setup().await;
    // No securityCtx: the REST session header is honoured.
    let body = json!({"jsonrpc": "2.0", "method": "invoke", "id": 3, "params": {
        "serviceId": "com.vmware.content.library", "operationId": "list",
        "input": {"STRUCTURE": {"operation-input": {}}}, "ctx": {"appCtx": {}}}});
    let r = app
        .client
        .post(app.url("/api"))
        .header("vmware-api-session-id", &token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["id"], 3);
    assert_eq!(
        v["result"]["output"].as_array().map(Vec::len),
        Some(1),
        "{v}"
    );
    // user_pass on an ordinary operation works for that one call.
    let v = app
        .rpc()
        .invoke(
            user_pass_ctx("alice", "Secr3t!"),
            "com.vmware.content.library",
            "list",
            json!({}),
        )
        .await;
    assert_eq!(
        v["result"]["output"].as_array().map(Vec::len),
        Some(1),
        "{v}"
    );
}

// ------------------------------------------------------------------ catalog

#[tokio::test]
async fn catalog_services() {
    let (app, token, item) = setup().await;
    let libraries = app
        .rpc()
        .output(&token, "com.vmware.content.library", "list", json!({}))
        .await;
    let library = libraries[0].as_str().unwrap().to_string();
    let lib = app
        .rpc()
        .output(
            &token,
            "com.vmware.content.library",
            "get",
            json!({"library_id": library}),
        )
        .await;
    let lib = structure(&lib, "com.vmware.content.library_model");
    assert_eq!(lib["id"], json!({"OPTIONAL": library}));
    assert_eq!(lib["name"], json!({"OPTIONAL": "lib"}));
    assert_eq!(lib["type"], json!({"OPTIONAL": "LOCAL"}));
    assert_eq!(lib["last_sync_time"], json!({"OPTIONAL": null}));

    let items = app
        .rpc()
        .output(
            &token,
            "com.vmware.content.library.item",
            "list",
            json!({"library_id": library}),
        )
        .await;
    assert_eq!(items, json!([item]));
    let model = app
        .rpc()
        .output(
            &token,
            "com.vmware.content.library.item",
            "get",
            json!({"library_item_id": item}),
        )
        .await;
    let model = structure(&model, "com.vmware.content.library.item_model");
    assert_eq!(model["name"], json!({"OPTIONAL": "vm"}));
    assert_eq!(model["library_id"], json!({"OPTIONAL": library}));
    assert_eq!(model["cached"], json!({"OPTIONAL": true}));
    assert!(model["size"]["OPTIONAL"].is_i64());

    let files = app
        .rpc()
        .output(
            &token,
            "com.vmware.content.library.item.file",
            "list",
            json!({"library_item_id": item}),
        )
        .await;
    assert_eq!(files.as_array().unwrap().len(), 2);
    let file = app
        .rpc()
        .output(
            &token,
            "com.vmware.content.library.item.file",
            "get",
            json!({"library_item_id": item, "name": "disk-0.vmdk"}),
        )
        .await;
    let file = structure(&file, "com.vmware.content.library.item.file.info");
    assert_eq!(file["name"], "disk-0.vmdk");
    assert_eq!(file["size"], DISK.len() as u64);
    assert_eq!(file["cached"], true);
    assert!(file["version"].is_string());
    let checksum = structure(
        &file["checksum_info"]["OPTIONAL"],
        "com.vmware.content.library.item.file.checksum_info",
    );
    assert_eq!(checksum["algorithm"], json!({"OPTIONAL": "SHA256"}));
    assert_eq!(checksum["checksum"], hex::encode(Sha256::digest(DISK)));

    app.rpc()
        .error(
            session_ctx(&token),
            "com.vmware.content.library.item.file",
            "get",
            json!({"library_item_id": item, "name": "nope"}),
            "invalid_argument",
        )
        .await;
    app.rpc()
        .error(
            session_ctx(&token),
            "com.vmware.content.library",
            "get",
            json!({"library_id": "nope"}),
            "not_found",
        )
        .await;
    app.rpc()
        .error(
            session_ctx(&token),
            "com.vmware.content.library.item",
            "get",
            json!({"library_item_id": uuid::Uuid::new_v4().to_string()}),
            "not_found",
        )
        .await;
}

// -------------------------------------------------------- download sessions

#[tokio::test]
async fn download_session_operations() {
    let (app, token, item) = setup().await;
    let id = app.rpc().new_session(&token, &item).await;

    let model = app
        .rpc()
        .output(&token, DS, "get", json!({"download_session_id": id}))
        .await;
    let model = structure(&model, DS_MODEL);
    assert_eq!(model["id"], json!({"OPTIONAL": null}));
    assert_eq!(model["library_item_id"], json!({"OPTIONAL": item}));
    assert_eq!(model["state"], json!({"OPTIONAL": "ACTIVE"}));
    assert_eq!(model["client_progress"], json!({"OPTIONAL": 0}));
    assert_eq!(model["error_message"], json!({"OPTIONAL": null}));
    assert!(model["library_item_content_version"]["OPTIONAL"].is_string());
    let expires = model["expiration_time"]["OPTIONAL"].as_str().unwrap();
    assert_eq!(expires.len(), "2030-01-01T00:05:00.000Z".len(), "{expires}");
    assert!(expires.ends_with('Z'));

    let out = app
        .rpc()
        .output(
            &token,
            DS,
            "keep_alive",
            json!({"download_session_id": id, "progress": {"OPTIONAL": 100}}),
        )
        .await;
    assert!(out.is_null());
    let model = app
        .rpc()
        .output(&token, DS, "get", json!({"download_session_id": id}))
        .await;
    assert_eq!(
        structure(&model, DS_MODEL)["client_progress"],
        json!({"OPTIONAL": 100})
    );
    app.rpc()
        .output(
            &token,
            DS,
            "keep_alive",
            json!({"download_session_id": id, "progress": {"OPTIONAL": null}}),
        )
        .await;
    app.rpc()
        .error(
            session_ctx(&token),
            DS,
            "keep_alive",
            json!({"download_session_id": id, "progress": {"OPTIONAL": 101}}),
            "invalid_argument",
        )
        .await;

    // list, with and without the item filter.
    let other = app.import("lib", "other", &[("x.bin", b"x")]).await;
    app.rpc().new_session(&token, &other).await;
    let all = app
        .rpc()
        .output(
            &token,
            DS,
            "list",
            json!({"library_item_id": {"OPTIONAL": null}}),
        )
        .await;
    assert_eq!(all.as_array().unwrap().len(), 2);
    let filtered = app
        .rpc()
        .output(
            &token,
            DS,
            "list",
            json!({"library_item_id": {"OPTIONAL": item}}),
        )
        .await;
    assert_eq!(filtered, json!([id]));

    // cancel, then the state rule.
    assert!(app
        .rpc()
        .output(&token, DS, "cancel", json!({"download_session_id": id}))
        .await
        .is_null());
    let model = app
        .rpc()
        .output(&token, DS, "get", json!({"download_session_id": id}))
        .await;
    assert_eq!(
        structure(&model, DS_MODEL)["state"],
        json!({"OPTIONAL": "CANCELED"})
    );
    app.rpc()
        .error(
            session_ctx(&token),
            DS,
            "cancel",
            json!({"download_session_id": id}),
            "not_allowed_in_current_state",
        )
        .await;

    // delete, then NOT_FOUND.
    assert!(app
        .rpc()
        .output(&token, DS, "delete", json!({"download_session_id": id}))
        .await
        .is_null());
    app.rpc()
        .error(
            session_ctx(&token),
            DS,
            "get",
            json!({"download_session_id": id}),
            "not_found",
        )
        .await;
    app.rpc()
        .error(
            session_ctx(&token),
            DS,
            "get",
            json!({"download_session_id": "nope"}),
            "not_found",
        )
        .await;
    app.rpc()
        .error(
            session_ctx(&token),
            DS,
            "create",
            create_input("nope", None),
            "not_found",
        )
        .await;
}

#[tokio::test]
async fn fail_and_idempotent_create() {
    let (app, token, item) = setup().await;
    let a = app
        .rpc()
        .output(&token, DS, "create", create_input(&item, Some("ct-1")))
        .await;
    let b = app
        .rpc()
        .output(&token, DS, "create", create_input(&item, Some("ct-1")))
        .await;
    assert_eq!(a, b);
    let id = a.as_str().unwrap();
    app.rpc()
        .error(
            session_ctx(&token),
            DS,
            "fail",
            json!({"download_session_id": id}),
            "invalid_argument",
        )
        .await;
    app.rpc().output(&token,
        DS,
        "fail",
        json!({"download_session_id": id, "client_error_message": "client could not write file"}),
    )
    .await;
    let model = app
        .rpc()
        .output(&token, DS, "get", json!({"download_session_id": id}))
        .await;
    let model = structure(&model, DS_MODEL);
    assert_eq!(model["state"], json!({"OPTIONAL": "ERROR"}));
    let message = structure(
        &model["error_message"]["OPTIONAL"],
        "com.vmware.vapi.std.localizable_message",
    );
    assert_eq!(message["default_message"], "client could not write file");
    assert_eq!(message["params"], json!({"OPTIONAL": null}));
    assert_eq!(message["localized"], json!({"OPTIONAL": null}));
}

#[tokio::test]
async fn downloadsession_file_operations() {
    let (app, token, item) = setup().await;
    let id = app.rpc().new_session(&token, &item).await;
    let files = app
        .rpc()
        .output(&token, DS_FILE, "list", json!({"download_session_id": id}))
        .await;
    let files = files.as_array().unwrap();
    assert_eq!(files.len(), 2);
    for f in files {
        let f = structure(f, FILE_INFO);
        assert!(f["name"].is_string());
        assert!(f["bytes_transferred"].is_i64());
        assert!(f["status"].is_string());
        for optional in [
            "size",
            "download_endpoint",
            "checksum_info",
            "error_message",
        ] {
            assert!(f[optional].get("OPTIONAL").is_some(), "{optional}: {f}");
        }
    }

    let info = app.rpc().output(&token,
        DS_FILE,
        "prepare",
        json!({"download_session_id": id, "file_name": "disk-0.vmdk", "endpoint_type": {"OPTIONAL": "HTTPS"}}),
    )
    .await;
    let info = structure(&info, FILE_INFO);
    assert_eq!(info["name"], "disk-0.vmdk");
    let status = info["status"].as_str().unwrap();
    assert!(
        ["PREPARE_REQUESTED", "PREPARING", "PREPARED"].contains(&status),
        "{status}"
    );
    let info = app
        .rpc()
        .output(
            &token,
            DS_FILE,
            "get",
            json!({"download_session_id": id, "file_name": "disk-0.vmdk"}),
        )
        .await;
    assert_eq!(structure(&info, FILE_INFO)["name"], "disk-0.vmdk");

    app.rpc().error(session_ctx(&token),
        DS_FILE,
        "prepare",
        json!({"download_session_id": id, "file_name": "nope.bin", "endpoint_type": {"OPTIONAL": null}}),
        "invalid_argument",
    )
    .await;
    app.rpc()
        .error(
            session_ctx(&token),
            DS_FILE,
            "get",
            json!({"download_session_id": id, "file_name": "nope.bin"}),
            "invalid_argument",
        )
        .await;
    app.rpc().error(session_ctx(&token),
        DS_FILE,
        "prepare",
        json!({"download_session_id": id, "file_name": "vm.ovf", "endpoint_type": {"OPTIONAL": "DIRECT"}}),
        "unauthorized",
    )
    .await;
    app.rpc().error(session_ctx(&token),
        DS_FILE,
        "prepare",
        json!({"download_session_id": id, "file_name": "vm.ovf", "endpoint_type": {"OPTIONAL": "FTP"}}),
        "invalid_argument",
    )
    .await;
}

#[tokio::test]
async fn sessions_are_shared_across_surfaces() {
    let (app, token, item) = setup().await;
    let id = app.rpc().new_session(&token, &item).await;
    let r = app
        .get(
            &token,
            &format!("/rest/com/vmware/content/library/item/download-session/id:{id}"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let api_id = app.api(&token).new_session(&item).await;
    let model = app
        .rpc()
        .output(&token, DS, "get", json!({"download_session_id": api_id}))
        .await;
    assert_eq!(
        structure(&model, DS_MODEL)["state"],
        json!({"OPTIONAL": "ACTIVE"})
    );
}

// ---------------------------------------------------------- bad requests

#[tokio::test]
async fn unknown_operations_and_bad_inputs() {
    let (app, token, item) = setup().await;
    let ctx = session_ctx(&token);
    let e = app
        .rpc()
        .error(ctx.clone(), DS, "explode", json!({}), "operation_not_found")
        .await;
    assert_eq!(e["error_type"], json!({"OPTIONAL": "OPERATION_NOT_FOUND"}));
    app.rpc()
        .error(
            ctx.clone(),
            "com.vmware.nope",
            "list",
            json!({}),
            "operation_not_found",
        )
        .await;
    // Unknown operations are reported before authentication.
    app.rpc()
        .error(Value::Null, DS, "explode", json!({}), "operation_not_found")
        .await;

    let id = app.rpc().new_session(&token, &item).await;
    // Wrong types, missing required fields, unexpected set fields.
    app.rpc()
        .error(
            ctx.clone(),
            DS,
            "get",
            json!({"download_session_id": 5}),
            "invalid_argument",
        )
        .await;
    app.rpc()
        .error(ctx.clone(), DS, "get", json!({}), "invalid_argument")
        .await;
    app.rpc()
        .error(
            ctx.clone(),
            DS,
            "get",
            json!({"download_session_id": id, "surprise": "x"}),
            "invalid_argument",
        )
        .await;
    app.rpc()
        .error(
            ctx.clone(),
            DS,
            "keep_alive",
            json!({"download_session_id": id, "progress": {"OPTIONAL": "half"}}),
            "invalid_argument",
        )
        .await;
    app.rpc()
        .error(
            ctx.clone(),
            DS,
            "create",
            json!({"create_spec": "not a structure"}),
            "invalid_argument",
        )
        .await;
    app.rpc()
        .error(ctx.clone(), DS, "create", json!({}), "invalid_argument")
        .await;
    // An unset optional the operation does not know is tolerated (newer SDKs).
    app.rpc()
        .output(
            &token,
            DS,
            "get",
            json!({"download_session_id": id, "future_option": {"OPTIONAL": null}}),
        )
        .await;
    // Plain (unwrapped) values are accepted where the SDK wraps them.
    let plain = app
        .rpc()
        .output(
            &token,
            DS,
            "create",
            json!({"create_spec": {"library_item_id": item}}),
        )
        .await;
    assert!(plain.is_string());
}

#[tokio::test]
async fn another_users_session_is_not_found() {
    let (app, token, item) = setup().await;
    let id = app.rpc().new_session(&token, &item).await;
    app.add_user("bob", "pw", DOWNLOADER).await;
    let bob = app.rpc().login("bob", "pw").await;
    for (service, op, input) in [
        (DS, "get", json!({"download_session_id": id})),
        (DS, "cancel", json!({"download_session_id": id})),
        (DS, "delete", json!({"download_session_id": id})),
        (DS_FILE, "list", json!({"download_session_id": id})),
    ] {
        app.rpc()
            .error(session_ctx(&bob), service, op, input, "not_found")
            .await;
    }
    let none = app
        .rpc()
        .output(
            &bob,
            DS,
            "list",
            json!({"library_item_id": {"OPTIONAL": null}}),
        )
        .await;
    assert_eq!(none, json!([]));
}

fn rpc_error_code(v: &Value) -> i64 {
    assert_eq!(v["jsonrpc"], "2.0", "{v}");
    assert!(v.get("result").is_none(), "{v}");
    assert!(v["error"]["message"].is_string(), "{v}");
    v["error"]["code"].as_i64().expect("error code")
}

#[tokio::test]
async fn malformed_json_rpc_gets_json_rpc_errors() {
    let app = spawn_app().await;
    let v = app.rpc().post_raw("{not json").await;
    assert_eq!(rpc_error_code(&v), -32700);
    assert!(v["id"].is_null());

    let v = app.rpc().post_raw(r#"[{"jsonrpc":"2.0"}]"#).await;
    assert_eq!(rpc_error_code(&v), -32600);
    let v = app
        .rpc()
        .post_raw(r#"{"jsonrpc":"2.0","id":"1","params":{}}"#)
        .await;
    assert_eq!(rpc_error_code(&v), -32600);
    assert!(v["id"].is_null(), "invalid requests answer a null id");
    let v = app
        .rpc()
        .post_raw(r#"{"jsonrpc":"1.0","id":"1","method":"invoke","params":{}}"#)
        .await;
    assert_eq!(rpc_error_code(&v), -32600);
    let v = app
        .rpc()
        .post_raw(r#"{"jsonrpc":"2.0","id":{"x":1},"method":"invoke","params":{}}"#)
        .await;
    assert_eq!(rpc_error_code(&v), -32600);

    let v = app
        .rpc()
        .post_raw(r#"{"jsonrpc":"2.0","id":"2","method":"frobnicate","params":{}}"#)
        .await;
    assert_eq!(rpc_error_code(&v), -32601);
    assert_eq!(v["id"], "2");

    let v = app
        .rpc()
        .post_raw(r#"{"jsonrpc":"2.0","id":"3","method":"invoke"}"#)
        .await;
    assert_eq!(rpc_error_code(&v), -32602);
    assert_eq!(v["id"], "3");
    let v = app.rpc().post_raw(r#"{"jsonrpc":"2.0","id":"4","method":"invoke","params":{"serviceId":"com.vmware.cis.session"}}"#,
    )
    .await;
    assert_eq!(rpc_error_code(&v), -32602);
    let v = app.rpc().post_raw(r#"{"jsonrpc":"2.0","id":"5","method":"invoke","params":{"serviceId":"com.vmware.cis.session","operationId":"get","input":"x"}}"#,
    )
    .await;
    assert_eq!(rpc_error_code(&v), -32602);
    let v = app.rpc().post_raw(r#"{"jsonrpc":"2.0","id":"6","method":"invoke","params":{"serviceId":"com.vmware.cis.session","operationId":"get","input":{"STRUCTURE":{"operation-input":{}}},"ctx":7}}"#,
    )
    .await;
    assert_eq!(rpc_error_code(&v), -32602);

    // Headers that disagree with the body.
    let r = app
        .client
        .post(app.url("/api"))
        .header("vapi-service", "com.vmware.cis.session")
        .header("vapi-operation", "delete")
        .body(r#"{"jsonrpc":"2.0","id":"8","method":"invoke","params":{"serviceId":"com.vmware.cis.session","operationId":"get","input":{"STRUCTURE":{"operation-input":{}}}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(rpc_error_code(&v), -31001);

    // Oversize bodies are refused without reading them whole.
    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":"9","pad":"{}"}}"#,
        "x".repeat(200_000)
    );
    let v = app.rpc().post_raw(huge).await;
    assert_eq!(rpc_error_code(&v), -32600);

    // Numeric ids are echoed as sent.
    let v = app.rpc().post_raw(r#"{"jsonrpc":"2.0","id":42,"method":"invoke","params":{"serviceId":"com.vmware.cis.session","operationId":"get","input":{"STRUCTURE":{"operation-input":{}}}}}"#,
    )
    .await;
    assert_eq!(v["id"], 42);
    assert!(
        v["result"]["error"]["ERROR"]["com.vmware.vapi.std.errors.unauthenticated"].is_object(),
        "{v}"
    );
}

// ------------------------------------------------------ official Python SDK

/// The SDK packages, pinned.
const SDK_PACKAGES: &[&str] = &[
    "vmware-vcenter==8.0.3.0",
    "vmware-vapi-runtime==2.52.0",
    "vmware-vapi-common-client==2.52.0",
    "requests",
];

pub(crate) fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `target/sdk-venv` with the SDK installed, created on first use.
pub(crate) async fn sdk_python() -> PathBuf {
    let venv = manifest_dir().join("target/sdk-venv");
    let python = venv.join("bin/python");
    let ready = venv.join(".sdk-installed");
    if ready.exists() {
        return python;
    }
    let run = |program: PathBuf, args: Vec<String>| async move {
        let status = tokio::process::Command::new(&program)
            .args(&args)
            .status()
            .await
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
        assert!(
            status.success(),
            "{} {args:?} failed: {status}",
            program.display()
        );
    };
    if !python.exists() {
        run(
            PathBuf::from("python3"),
            vec!["-m".into(), "venv".into(), venv.display().to_string()],
        )
        .await;
    }
    let cache = manifest_dir().join("target/pip-cache");
    let mut args: Vec<String> = vec![
        "-m".into(),
        "pip".into(),
        "install".into(),
        "--quiet".into(),
        "--cache-dir".into(),
        cache.display().to_string(),
    ];
    args.extend(SDK_PACKAGES.iter().map(|p| p.to_string()));
    run(python.clone(), args).await;
    std::fs::write(&ready, SDK_PACKAGES.join("\n")).expect("mark the venv ready");
    python
}

/// Drives tests/sdk/test_sdk.py (the official vSphere Automation SDK for
/// Python) against a running instance. Set `SKIP_SDK_TESTS=1` where neither
/// PyPI nor a prepared `target/sdk-venv` is available.
#[tokio::test]
async fn official_python_sdk() {
    if std::env::var_os("SKIP_SDK_TESTS").is_some() {
        eprintln!("SKIP_SDK_TESTS is set: official Python SDK not run");
        return;
    }
    let python = sdk_python().await;
    let app = spawn_app().await;
    let disk: Vec<u8> = (0..1_000_000u32)
        .map(|i| (i.wrapping_mul(7) % 253) as u8)
        .collect();
    let item = app
        .import(
            "lib",
            "vm",
            &[("disk-0.vmdk", &disk), ("vm.ovf", b"<Envelope/>")],
        )
        .await;
    let other_item = app.import("lib", "other", &[("x.bin", b"x")]).await;
    app.add_user("administrator@vsphere.local", "Secr3t!", DOWNLOADER)
        .await;
    app.add_user("librarian@vsphere.local", "L1brarian!", LIBRARIAN)
        .await;

    let script = manifest_dir().join("tests/sdk/test_sdk.py");
    let child = tokio::process::Command::new(&python)
        .arg(&script)
        .env("SDK_URL", &app.address)
        .env("SDK_USER", "administrator@vsphere.local")
        .env("SDK_PASSWORD", "Secr3t!")
        .env("SDK_ADMIN_USER", "librarian@vsphere.local")
        .env("SDK_ADMIN_PASSWORD", "L1brarian!")
        .env("SDK_ITEM_ID", &item)
        .env("SDK_OTHER_ITEM_ID", &other_item)
        .env("SDK_FILE_NAME", "disk-0.vmdk")
        .env("SDK_FILE_SHA256", hex::encode(Sha256::digest(&disk)))
        .env("SDK_FILE_SIZE", disk.len().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the SDK script");
    let out = tokio::time::timeout(Duration::from_secs(180), child.wait_with_output())
        .await
        .expect("SDK script finishes within 3 minutes")
        .expect("SDK script output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("--- SDK stdout ---\n{stdout}\n--- SDK stderr ---\n{stderr}");
    assert!(
        out.status.success(),
        "official Python SDK run failed ({}); see its output above",
        out.status
    );
}

// ------------------------------------------------- the catalog, managed

#[tokio::test]
async fn catalog_writes_as_the_sdk_sends_them() {
    let app = spawn_app_with(|s| s.workers.count = 0).await;
    app.add_user("admin", "pw", LIBRARIAN).await;
    let token = app.rpc().login("admin", "pw").await;
    let rpc = app.rpc();
    let ctx = || session_ctx(&token);

    // LocalLibrary.create as library_crud.py sends it (a DATASTORE backing, a client token).
    let create = json!({
        "client_token": {"OPTIONAL": "11111111-2222-3333-4444-555555555555"},
        "create_spec": library_model(json!({"name": "demo-local-lib", "description": "d",
            "type": "LOCAL", "storage_backings": [storage_backing("DATASTORE", Some("datastore-12"))]})),
    });
    let lib = rpc
        .output(&token, LOCAL_LIBRARY, "create", create.clone())
        .await;
    let lib = lib.as_str().expect("id").to_string();
    assert_eq!(
        rpc.output(&token, LOCAL_LIBRARY, "create", create).await,
        json!(lib)
    );
    assert_eq!(
        rpc.output(&token, LOCAL_LIBRARY, "list", json!({})).await,
        json!([lib])
    );
    let model = rpc
        .output(&token, LOCAL_LIBRARY, "get", json!({"library_id": lib}))
        .await;
    let model = structure(&model, LIBRARY_MODEL);
    assert_eq!(model["id"], json!({"OPTIONAL": lib}));
    assert_eq!(model["name"], json!({"OPTIONAL": "demo-local-lib"}));
    assert_eq!(model["type"], json!({"OPTIONAL": "LOCAL"}));
    assert_eq!(model["version"], json!({"OPTIONAL": "1"}));
    assert!(model["server_guid"]["OPTIONAL"].is_string());
    assert!(model["creation_time"]["OPTIONAL"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    assert_eq!(model["subscription_info"], json!({"OPTIONAL": null}));
    let backings = model["storage_backings"]["OPTIONAL"].as_array().unwrap();
    let backing = structure(&backings[0], "com.vmware.content.library.storage_backing");
    assert_eq!(backing["type"], json!({"OPTIONAL": "OTHER"}));
    let publish = structure(
        &model["publish_info"]["OPTIONAL"],
        "com.vmware.content.library.publish_info",
    );
    assert_eq!(publish["published"], json!({"OPTIONAL": false}));
    assert_eq!(
        publish["authentication_method"],
        json!({"OPTIONAL": "NONE"})
    );

    // Library.find and the always empty SubscribedLibrary (Ansible lists it).
    let find = json!({"spec": library_find(json!({"name": "DEMO-LOCAL-LIB"}))});
    assert_eq!(
        rpc.output(&token, LIBRARY, "find", find).await,
        json!([lib])
    );
    let find = json!({"spec": library_find(json!({"type": "SUBSCRIBED"}))});
    assert_eq!(rpc.output(&token, LIBRARY, "find", find).await, json!([]));
    rpc.error(
        ctx(),
        LIBRARY,
        "find",
        json!({"spec": library_find(json!({}))}),
        "invalid_argument",
    )
    .await;
    rpc.error(ctx(), LIBRARY, "find", json!({}), "invalid_argument")
        .await;
    assert_eq!(
        rpc.output(&token, SUBSCRIBED_LIBRARY, "list", json!({}))
            .await,
        json!([])
    );
    rpc.error(
        ctx(),
        SUBSCRIBED_LIBRARY,
        "get",
        json!({"library_id": lib}),
        "invalid_element_type",
    )
    .await;

    // Updates: LocalLibrary.update (description only, as library_crud.py), Library.update,
    // and each one's answer to a stale version.
    let update = |spec: Value| json!({"library_id": lib, "update_spec": library_model(spec)});
    let out = rpc
        .output(
            &token,
            LOCAL_LIBRARY,
            "update",
            update(json!({"description": "new description"})),
        )
        .await;
    assert_eq!(out, Value::Null);
    rpc.output(
        &token,
        LIBRARY,
        "update",
        update(json!({"name": "renamed", "version": "2"})),
    )
    .await;
    let model = rpc
        .output(&token, LIBRARY, "get", json!({"library_id": lib}))
        .await;
    let model = structure(&model, LIBRARY_MODEL);
    assert_eq!(model["name"], json!({"OPTIONAL": "renamed"}));
    assert_eq!(model["description"], json!({"OPTIONAL": "new description"}));
    assert_eq!(model["version"], json!({"OPTIONAL": "3"}));
    rpc.error(
        ctx(),
        LOCAL_LIBRARY,
        "update",
        update(json!({"name": "x", "version": "1"})),
        "concurrent_change",
    )
    .await;
    rpc.error(
        ctx(),
        LIBRARY,
        "update",
        update(json!({"name": "x", "version": "1"})),
        "invalid_argument",
    )
    .await;
    let publish = json!({"publish_info": {"STRUCTURE": {"com.vmware.content.library.publish_info": {
        "published": {"OPTIONAL": true}, "authentication_method": {"OPTIONAL": "NONE"}}}}});
    rpc.error(
        ctx(),
        LOCAL_LIBRARY,
        "update",
        update(publish),
        "unsupported",
    )
    .await;
    let dup = json!({"create_spec": library_model(json!({"name": "RENAMED"}))});
    rpc.error(ctx(), LOCAL_LIBRARY, "create", dup, "already_exists")
        .await;
    let two = json!({"create_spec": library_model(json!({"name": "two",
        "storage_backings": [storage_backing("OTHER", None), storage_backing("OTHER", None)]}))});
    rpc.error(ctx(), LOCAL_LIBRARY, "create", two, "unsupported")
        .await;
    rpc.error(
        ctx(),
        LOCAL_LIBRARY,
        "create",
        json!({"client_token": {"OPTIONAL": null}}),
        "invalid_argument",
    )
    .await;
    let typo = json!({"create_spec": {"STRUCTURE": {LIBRARY_MODEL: {"nmae": {"OPTIONAL": "x"}}}}});
    rpc.error(ctx(), LOCAL_LIBRARY, "create", typo, "invalid_argument")
        .await;

    // Items as cls_api_helper.create_library_item and get_item_id_by_name send them.
    let create = json!({
        "client_token": {"OPTIONAL": "66666666-2222-3333-4444-555555555555"},
        "create_spec": item_model(json!({"library_id": lib, "name": "demo", "description": "Sample iso file", "type": "iso"})),
    });
    let item = rpc
        .output(&token, ITEM, "create", create)
        .await
        .as_str()
        .unwrap()
        .to_string();
    let found = rpc
        .output(
            &token,
            ITEM,
            "find",
            json!({"spec": item_find(json!({"name": "DEMO"}))}),
        )
        .await;
    assert_eq!(found, json!([item]));
    let all = item_find(json!({"name": "demo", "library_id": lib, "type": "ISO", "cached": true}));
    assert_eq!(
        rpc.output(&token, ITEM, "find", json!({"spec": all})).await,
        json!([item])
    );
    let source = item_find(json!({"name": "demo", "source_id": "s"}));
    assert_eq!(
        rpc.output(&token, ITEM, "find", json!({"spec": source}))
            .await,
        json!([])
    );
    rpc.error(
        ctx(),
        ITEM,
        "find",
        json!({"spec": item_find(json!({}))}),
        "invalid_argument",
    )
    .await;
    let model = rpc
        .output(&token, ITEM, "get", json!({"library_item_id": item}))
        .await;
    let model = structure(&model, ITEM_MODEL);
    assert_eq!(model["name"], json!({"OPTIONAL": "demo"}));
    assert_eq!(model["type"], json!({"OPTIONAL": "iso"}));
    for field in ["version", "metadata_version", "content_version"] {
        assert_eq!(model[field], json!({"OPTIONAL": "1"}), "{field}");
    }
    assert_eq!(model["size"], json!({"OPTIONAL": 0}));
    assert_eq!(model["source_id"], json!({"OPTIONAL": null}));
    let dup = json!({"create_spec": item_model(json!({"library_id": lib, "name": "Demo"}))});
    let error = rpc
        .error(ctx(), ITEM, "create", dup, "already_exists")
        .await;
    let message = structure(
        &error["messages"][0],
        "com.vmware.vapi.std.localizable_message",
    );
    assert_eq!(
        message["id"],
        "com.vmware.vdcs.cls-main.duplicate_item_name_unsupported_in_library"
    );
    let nowhere = json!({"create_spec": item_model(json!({"library_id": uuid::Uuid::new_v4().to_string(), "name": "x"}))});
    rpc.error(ctx(), ITEM, "create", nowhere, "not_found").await;
    let update = |spec: Value| json!({"library_item_id": item, "update_spec": item_model(spec)});
    rpc.output(&token, ITEM, "update", update(json!({"name": "demo2"})))
        .await;
    rpc.error(
        ctx(),
        ITEM,
        "update",
        update(json!({"name": "x", "version": "1"})),
        "invalid_argument",
    )
    .await;

    // Storage of its files once they are in.
    app.import("renamed", "demo2", &[("demo.iso", b"iso")])
        .await;
    let listed = rpc
        .output(
            &token,
            ITEM_STORAGE,
            "list",
            json!({"library_item_id": item}),
        )
        .await;
    let info = structure(&listed[0], "com.vmware.content.library.item.storage.info");
    assert_eq!(info["name"], "demo.iso");
    assert_eq!(info["size"], 3);
    assert_eq!(info["cached"], true);
    assert_eq!(info["storage_uris"], json!([]));
    assert_eq!(info["version"], "2");
    let got = rpc
        .output(
            &token,
            ITEM_STORAGE,
            "get",
            json!({"library_item_id": item, "file_name": "demo.iso"}),
        )
        .await;
    assert_eq!(got, listed);
    let missing = json!({"library_item_id": item, "file_name": "nope"});
    rpc.error(ctx(), ITEM_STORAGE, "get", missing, "not_found")
        .await;

    // Deletes: the item, then the library (its other items with it).
    let other = rpc
        .output(
            &token,
            ITEM,
            "create",
            json!({"create_spec": item_model(json!({"library_id": lib, "name": "other"}))}),
        )
        .await;
    assert_eq!(
        rpc.output(&token, ITEM, "delete", json!({"library_item_id": item}))
            .await,
        Value::Null
    );
    rpc.error(
        ctx(),
        ITEM,
        "get",
        json!({"library_item_id": item}),
        "not_found",
    )
    .await;
    assert_eq!(
        rpc.output(&token, LOCAL_LIBRARY, "delete", json!({"library_id": lib}))
            .await,
        Value::Null
    );
    rpc.error(
        ctx(),
        ITEM,
        "get",
        json!({"library_item_id": other}),
        "not_found",
    )
    .await;
    rpc.error(
        ctx(),
        LOCAL_LIBRARY,
        "get",
        json!({"library_id": lib}),
        "not_found",
    )
    .await;
    rpc.error(
        ctx(),
        LOCAL_LIBRARY,
        "delete",
        json!({"library_id": lib}),
        "not_found",
    )
    .await;

    // Privileges: a reader may find, not create.
    app.add_user("reader", "pw", &["System.Read"]).await;
    let reader = rpc.login("reader", "pw").await;
    let create = json!({"create_spec": library_model(json!({"name": "n"}))});
    rpc.error(
        session_ctx(&reader),
        LOCAL_LIBRARY,
        "create",
        create,
        "unauthorized",
    )
    .await;
    rpc.error(
        session_ctx(&reader),
        ITEM_STORAGE,
        "list",
        json!({"library_item_id": item}),
        "unauthorized",
    )
    .await;
}
