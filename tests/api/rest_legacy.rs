//! The legacy `/rest/com/vmware/...` surface: every operation, its `{"value"}`
//! wrapping and error bodies, login cookies. govc's sequences are in `govc.rs`.

use reqwest::{header, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::*;

use crate::helpers::rest::{
    FILES as DS_FILE, ITEM, ITEM_FILE, ITEM_STORAGE, LIBRARY, LOGIN as SESSION, SESSIONS as DS,
};

const DISK: &[u8] = b"disk bytes for the legacy surface";
const OVF: &[u8] = b"<Envelope/>";

/// An app with one item (`disk-0.vmdk`, `vm.ovf`) and user alice (downloader).
async fn setup() -> (TestApp, String, String) {
    let app = spawn_app().await;
    let item = app
        .import("lib", "vm", &[("disk-0.vmdk", DISK), ("vm.ovf", OVF)])
        .await;
    let token = app.user("alice", DOWNLOADER).await;
    (app, token, item)
}

// ------------------------------------------------------------------ login

#[tokio::test]
async fn login_answers_the_token_as_value_and_sets_the_cookie() {
    let app = spawn_app().await;
    app.add_user("bob", "secret", DOWNLOADER).await;
    let r = app.rest_anonymous().login("bob", "secret").await;
    let cookie = r
        .headers()
        .get(header::SET_COOKIE)
        .expect("session cookie")
        .to_str()
        .unwrap()
        .to_string();
    let token = value_of(r).await.as_str().unwrap().to_string();
    assert!(
        cookie.starts_with(&format!("vmware-api-session-id={token}")),
        "{cookie}"
    );
    assert!(cookie.contains("Path=/rest"), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");

    // The token works as header on every surface, and as the cookie here.
    let me = value_of(app.rest(&token).whoami().await).await;
    assert_eq!(me["user"], "bob");
    assert!(me["created_time"].as_str().unwrap().ends_with('Z'));
    assert!(me["last_accessed_time"].is_string());
    assert_eq!(
        app.get(&token, "/api/session").await.status(),
        StatusCode::OK
    );
    let r = app
        .client
        .post(app.url(&format!("{SESSION}?~action=get")))
        .header(header::COOKIE, format!("vmware-api-session-id={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(value_of(r).await["user"], "bob");
}

#[tokio::test]
async fn header_authn_login_sets_no_cookie() {
    let app = spawn_app().await;
    app.add_user("bob", "secret", DOWNLOADER).await;
    let r = app
        .client
        .post(app.url(SESSION))
        .basic_auth("bob", Some("secret"))
        .header("vmware-use-header-authn", "true")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get(header::SET_COOKIE).is_none());
    assert!(value_of(r).await.is_string());
}

#[tokio::test]
async fn bad_credentials_and_missing_tokens_are_unauthenticated() {
    let app = spawn_app().await;
    app.add_user("bob", "secret", DOWNLOADER).await;
    let r = app.rest_anonymous().login("bob", "wrong").await;
    assert!(r.headers().get(header::SET_COOKIE).is_none());
    assert_rest_error(r, 401, "UNAUTHENTICATED").await;
    let r = app.client.post(app.url(SESSION)).send().await.unwrap();
    assert_rest_error(r, 401, "UNAUTHENTICATED").await;
    let r = app.client.get(app.url(DS)).send().await.unwrap();
    assert_rest_error(r, 401, "UNAUTHENTICATED").await;
    assert_rest_error(
        app.rest("not-a-token").list_libraries().await,
        401,
        "UNAUTHENTICATED",
    )
    .await;
}

#[tokio::test]
async fn logout_ends_the_token_and_expires_the_cookie() {
    let app = spawn_app().await;
    let token = app.user("bob", DOWNLOADER).await;
    let r = app.rest(&token).logout().await;
    let cookie = r
        .headers()
        .get(header::SET_COOKIE)
        .map(|c| c.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert!(cookie.contains("Max-Age=0"), "{cookie}");
    assert_void(r).await;
    let r = app.rest(&token).whoami().await;
    assert_rest_error(r, 401, "UNAUTHENTICATED").await;
    assert_rest_error(app.rest(&token).logout().await, 401, "UNAUTHENTICATED").await;
}

// ---------------------------------------------------------------- catalog

#[tokio::test]
async fn catalog_reads() {
    let (app, token, item) = setup().await;
    let libraries = value_of(app.rest(&token).list_libraries().await).await;
    let library = libraries[0].as_str().expect("one library").to_string();
    assert_eq!(libraries.as_array().unwrap().len(), 1);

    let lib = value_of(app.rest(&token).get_library(&library).await).await;
    assert_eq!(lib["id"], library);
    assert_eq!(lib["name"], "lib");
    assert_eq!(lib["type"], "LOCAL");

    let items = value_of(app.rest(&token).list_items(&library).await).await;
    assert_eq!(items, json!([item]));
    let model = value_of(app.rest(&token).get_item(&item).await).await;
    assert_eq!(model["id"], item);
    assert_eq!(model["library_id"], library);
    assert_eq!(model["name"], "vm");
    assert_eq!(model["size"], (DISK.len() + OVF.len()) as u64);

    let files = value_of(app.rest(&token).item_files(&item).await).await;
    let mut names: Vec<&str> = files
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["disk-0.vmdk", "vm.ovf"]);

    let r = app
        .post(
            &token,
            &format!("{ITEM_FILE}/id:{item}?~action=get"),
            Some(json!({"name": "disk-0.vmdk"})),
        )
        .await;
    let file = value_of(r).await;
    assert_eq!(file["size"], DISK.len() as u64);
    assert_eq!(file["checksum_info"]["algorithm"], "SHA256");
    assert_eq!(
        file["checksum_info"]["checksum"],
        hex::encode(Sha256::digest(DISK))
    );
    assert_eq!(file["cached"], true);

    // Errors keep the /rest shape.
    let r = app
        .post(
            &token,
            &format!("{ITEM_FILE}/id:{item}?~action=get"),
            Some(json!({"name": "nope"})),
        )
        .await;
    assert_rest_error(r, 400, "INVALID_ARGUMENT").await;
    assert_rest_error(app.get(&token, ITEM).await, 400, "INVALID_ARGUMENT").await;
    assert_rest_error(app.get(&token, ITEM_FILE).await, 400, "INVALID_ARGUMENT").await;
    let unknown = uuid::Uuid::new_v4().to_string();
    let r = app.rest(&token).get_library(&unknown).await;
    assert_rest_error(r, 404, "NOT_FOUND").await;
    let r = app.rest(&token).get_item(&unknown).await;
    assert_rest_error(r, 404, "NOT_FOUND").await;
    let r = app.rest(&token).get_item("not-an-id").await;
    assert_rest_error(r, 404, "NOT_FOUND").await;
    // A bare id (no `id:`) names no operation.
    assert_rest_error(
        app.get(&token, &format!("{ITEM}/{item}")).await,
        404,
        "NOT_FOUND",
    )
    .await;

    // Catalog reads need System.Read.
    let reader_less = app.user("carol", &["ContentLibrary.DownloadSession"]).await;
    assert_rest_error(
        app.rest(&reader_less).list_libraries().await,
        403,
        "UNAUTHORIZED",
    )
    .await;
}

// ------------------------------------------------------ download sessions

#[tokio::test]
async fn session_lifecycle() {
    let (app, token, item) = setup().await;
    let id = app.rest(&token).new_session(&item).await;

    let model = app.rest(&token).session(&id).await;
    assert_eq!(model["library_item_id"], item);
    assert_eq!(model["state"], "ACTIVE");
    assert_eq!(model["client_progress"], 0);
    assert!(model["library_item_content_version"].is_string());
    assert!(model["expiration_time"].as_str().unwrap().ends_with('Z'));
    assert!(model.get("id").is_none(), "get answers carry no id");
    // Clients that percent-encode the colon reach the same operation.
    let r = app.get(&token, &format!("{DS}/id%3A{id}")).await;
    assert_eq!(value_of(r).await["library_item_id"], item);

    let r = app
        .rest(&token)
        .session_action(&id, "keep-alive", Some(json!({"progress": 42})))
        .await;
    assert_void(r).await;
    assert_eq!(app.rest(&token).session(&id).await["client_progress"], 42);
    // Progress is optional.
    assert_void(
        app.rest(&token)
            .session_action(&id, "keep-alive", None)
            .await,
    )
    .await;
    let r = app
        .rest(&token)
        .session_action(&id, "keep-alive", Some(json!({"progress": 101})))
        .await;
    assert_rest_error(r, 400, "INVALID_ARGUMENT").await;

    assert_void(app.rest(&token).session_action(&id, "cancel", None).await).await;
    assert_eq!(app.rest(&token).session(&id).await["state"], "CANCELED");
    let r = app.rest(&token).session_action(&id, "cancel", None).await;
    assert_rest_error(r, 400, "NOT_ALLOWED_IN_CURRENT_STATE").await;
    let r = app
        .rest(&token)
        .session_action(&id, "keep-alive", None)
        .await;
    assert_rest_error(r, 400, "NOT_ALLOWED_IN_CURRENT_STATE").await;

    assert_void(app.rest(&token).delete_session(&id).await).await;
    let r = app.rest(&token).get_session(&id).await;
    assert_rest_error(r, 404, "NOT_FOUND").await;
    assert_rest_error(app.rest(&token).delete_session(&id).await, 404, "NOT_FOUND").await;
}

#[tokio::test]
async fn fail_needs_a_message_and_reports_it() {
    let (app, token, item) = setup().await;
    let id = app.rest(&token).new_session(&item).await;
    let r = app.rest(&token).session_action(&id, "fail", None).await;
    assert_rest_error(r, 400, "INVALID_ARGUMENT").await;
    let r = app
        .rest(&token)
        .session_action(
            &id,
            "fail",
            Some(json!({"client_error_message": "disk full"})),
        )
        .await;
    assert_void(r).await;
    let model = app.rest(&token).session(&id).await;
    assert_eq!(model["state"], "ERROR");
    assert!(model["error_message"]["default_message"]
        .as_str()
        .unwrap()
        .contains("disk full"));
    let r = app
        .rest(&token)
        .session_action(&id, "fail", Some(json!({"client_error_message": "again"})))
        .await;
    assert_rest_error(r, 400, "NOT_ALLOWED_IN_CURRENT_STATE").await;
}

#[tokio::test]
async fn client_token_makes_create_idempotent() {
    let (app, token, item) = setup().await;
    let body = json!({"client_token": "tok-1", "create_spec": {"library_item_id": item}});
    let a = value_of(app.rest(&token).create_session(Some(body.clone())).await).await;
    let b = value_of(app.rest(&token).create_session(Some(body)).await).await;
    assert_eq!(a, b);
    let c = app.rest(&token).new_session(&item).await;
    assert_ne!(a, c);
}

#[tokio::test]
async fn create_errors() {
    let (app, token, _item) = setup().await;
    let unknown = uuid::Uuid::new_v4().to_string();
    let r = app
        .rest(&token)
        .create_session(Some(json!({"create_spec": {"library_item_id": unknown}})))
        .await;
    assert_rest_error(r, 404, "NOT_FOUND").await;
    assert_rest_error(
        app.rest(&token).create_session(None).await,
        400,
        "INVALID_ARGUMENT",
    )
    .await;
    let r = app
        .rest(&token)
        .create_session(Some(json!({"create_spec": {}})))
        .await;
    assert_rest_error(r, 400, "INVALID_ARGUMENT").await;
    let reader = app.user("carol", &["System.Read"]).await;
    let r = app
        .rest(&reader)
        .create_session(Some(json!({"create_spec": {"library_item_id": unknown}})))
        .await;
    assert_rest_error(r, 403, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn list_variants() {
    let (app, token, item) = setup().await;
    let other_item = app.import("lib", "other", &[("x.bin", b"x")]).await;
    let a = app.rest(&token).new_session(&item).await;
    let b = app.rest(&token).new_session(&other_item).await;
    // Bob's sessions never show up in alice's lists.
    let bob = app.user("bob", DOWNLOADER).await;
    app.rest(&bob).new_session(&item).await;

    let sorted = |v: Value| {
        let mut ids: Vec<String> = v
            .as_array()
            .expect("list")
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    let mut both = vec![a.clone(), b.clone()];
    both.sort();

    assert_eq!(
        sorted(value_of(app.rest(&token).list_sessions().await).await),
        both
    );
    let r = app.rest(&token).list_sessions_of(&item).await;
    assert_eq!(sorted(value_of(r).await), vec![a.clone()]);
    let r = app.rest(&token).list_action(None).await;
    assert_eq!(sorted(value_of(r).await), both);
    let r = app
        .rest(&token)
        .list_action(Some(json!({"library_item_id": other_item})))
        .await;
    assert_eq!(sorted(value_of(r).await), vec![b]);
    // Here the path id is an item id.
    let r = app.rest(&token).session_action(&item, "list", None).await;
    assert_eq!(sorted(value_of(r).await), vec![a]);

    let unknown = uuid::Uuid::new_v4().to_string();
    let r = app
        .rest(&token)
        .session_action(&unknown, "list", None)
        .await;
    assert_rest_error(r, 404, "NOT_FOUND").await;
    let r = app.rest(&token).list_sessions_of(&unknown).await;
    assert_rest_error(r, 404, "NOT_FOUND").await;
}

#[tokio::test]
async fn another_users_session_is_not_found() {
    let (app, token, item) = setup().await;
    let id = app.rest(&token).new_session(&item).await;
    let bob = app.user("bob", DOWNLOADER).await;
    assert_rest_error(app.rest(&bob).get_session(&id).await, 404, "NOT_FOUND").await;
    let r = app.rest(&bob).session_action(&id, "cancel", None).await;
    assert_rest_error(r, 404, "NOT_FOUND").await;
    let r = app.rest(&bob).list_files(&id).await;
    assert_rest_error(r, 404, "NOT_FOUND").await;
    assert_rest_error(app.rest(&bob).delete_session(&id).await, 404, "NOT_FOUND").await;
    assert_eq!(app.rest(&token).session(&id).await["state"], "ACTIVE");
}

#[tokio::test]
async fn sessions_are_shared_across_surfaces() {
    let (app, token, item) = setup().await;
    let id = app.rest(&token).new_session(&item).await;
    let r = app
        .get(
            &token,
            &format!("/api/content/library/item/download-session/{id}"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let api_id = app.api(&token).new_session(&item).await;
    assert_eq!(app.rest(&token).session(&api_id).await["state"], "ACTIVE");
}

// ------------------------------------------------------------------ files

#[tokio::test]
async fn file_list_get_and_prepare() {
    let (app, token, item) = setup().await;
    let id = app.rest(&token).new_session(&item).await;

    let files = value_of(app.rest(&token).list_files(&id).await).await;
    let mut names: Vec<&str> = files
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["disk-0.vmdk", "vm.ovf"]);

    let info = value_of(app.rest(&token).get_file(&id, "vm.ovf").await).await;
    assert_eq!(info["name"], "vm.ovf");
    assert!(info["bytes_transferred"].is_i64());
    assert!(info["status"].is_string());

    let info = value_of(
        app.rest(&token)
            .prepare(&id, json!({"file_name": "disk-0.vmdk"}))
            .await,
    )
    .await;
    assert_eq!(info["name"], "disk-0.vmdk");
    let status = info["status"].as_str().unwrap();
    assert!(
        ["PREPARE_REQUESTED", "PREPARING", "PREPARED"].contains(&status),
        "{status}"
    );
    let r = app
        .rest(&token)
        .prepare(
            &id,
            json!({"file_name": "vm.ovf", "endpoint_type": "HTTPS"}),
        )
        .await;
    value_of(r).await;

    // Unknown file, DIRECT without ContentLibrary.ReadStorage, bad enum.
    let r = app.rest(&token).get_file(&id, "nope").await;
    assert_rest_error(r, 400, "INVALID_ARGUMENT").await;
    let r = app
        .rest(&token)
        .prepare(&id, json!({"file_name": "nope"}))
        .await;
    assert_rest_error(r, 400, "INVALID_ARGUMENT").await;
    let r = app
        .rest(&token)
        .prepare(
            &id,
            json!({"file_name": "vm.ovf", "endpoint_type": "DIRECT"}),
        )
        .await;
    assert_rest_error(r, 403, "UNAUTHORIZED").await;
    let r = app
        .rest(&token)
        .prepare(&id, json!({"file_name": "vm.ovf", "endpoint_type": "FTP"}))
        .await;
    assert_rest_error(r, 400, "INVALID_ARGUMENT").await;
    let r = app.rest(&token).file_action(&id, "get", None).await;
    assert_rest_error(r, 400, "INVALID_ARGUMENT").await;
    let r = app.rest(&token).file_action(&id, "nope", None).await;
    assert_rest_error(r, 400, "INVALID_ARGUMENT").await;
    assert_rest_error(app.get(&token, DS_FILE).await, 400, "INVALID_ARGUMENT").await;

    // A session created with ReadStorage may ask for DIRECT: on this local
    // transfer store without a direct_base it is refused as unavailable.
    let storage = app.user("dora", ALL_PRIVILEGES).await;
    let direct = app.rest(&storage).new_session(&item).await;
    let r = app
        .rest(&storage)
        .file_action(
            &direct,
            "prepare",
            Some(json!({"file_name": "vm.ovf", "endpoint_type": "DIRECT"})),
        )
        .await;
    assert_rest_error(r, 400, "INVALID_ARGUMENT").await;

    // Prepare on a session that is no longer ACTIVE.
    assert_void(app.rest(&token).session_action(&id, "cancel", None).await).await;
    let r = app
        .rest(&token)
        .prepare(&id, json!({"file_name": "vm.ovf"}))
        .await;
    assert_rest_error(r, 400, "NOT_ALLOWED_IN_CURRENT_STATE").await;
}

// ------------------------------------------------------- malformed input

#[tokio::test]
async fn malformed_requests_get_rest_errors_never_500() {
    let (app, token, item) = setup().await;
    let id = app.rest(&token).new_session(&item).await;
    let raw = |path: &str, body: &'static str| {
        app.client
            .post(app.url(path))
            .header("vmware-api-session-id", &token)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
    };

    let r = raw(DS, "{not json").send().await.unwrap();
    assert_rest_error(r, 400, "INVALID_ARGUMENT").await;
    let r = raw(DS, r#"{"create_spec": {"library_item_id": 7}}"#)
        .send()
        .await
        .unwrap();
    assert_rest_error(r, 400, "INVALID_ARGUMENT").await;
    let r = raw(DS, r#"{"create_spec": {}, "surprise": 1}"#)
        .send()
        .await
        .unwrap();
    assert_rest_error(r, 400, "INVALID_ARGUMENT").await;
    let r = raw(DS, "[]").send().await.unwrap();
    assert_rest_error(r, 400, "INVALID_ARGUMENT").await;
    let keep_alive = format!("{DS}/id:{id}?~action=keep-alive");
    let r = raw(&keep_alive, r#"{"progress": "half"}"#)
        .send()
        .await
        .unwrap();
    assert_rest_error(r, 400, "INVALID_ARGUMENT").await;
    let r = raw(&keep_alive, r#"{"progress": 5, "extra": true}"#)
        .send()
        .await
        .unwrap();
    assert_rest_error(r, 400, "INVALID_ARGUMENT").await;

    let huge = format!(r#"{{"client_error_message": "{}"}}"#, "x".repeat(200_000));
    let r = app
        .client
        .post(app.url(&format!("{DS}/id:{id}?~action=fail")))
        .header("vmware-api-session-id", &token)
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_rest_error(r, 413, "INVALID_ARGUMENT").await;

    // Missing or unknown actions, unknown paths and methods.
    let r = app.post(&token, &format!("{DS}/id:{id}"), None).await;
    assert_rest_error(r, 400, "INVALID_ARGUMENT").await;
    let r = app
        .post(&token, &format!("{DS}?~action=explode"), None)
        .await;
    assert_rest_error(r, 400, "INVALID_ARGUMENT").await;
    let r = app
        .post(&token, &format!("{SESSION}?~action=explode"), None)
        .await;
    assert_rest_error(r, 400, "INVALID_ARGUMENT").await;
    let r = app
        .post(
            &token,
            &format!("{DS}/id:{id}?~action=cancel&~action=fail"),
            None,
        )
        .await;
    assert_rest_error(r, 400, "INVALID_ARGUMENT").await;
    assert_rest_error(
        app.get(&token, "/rest/com/vmware/nope").await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_rest_error(app.get(&token, "/rest").await, 404, "NOT_FOUND").await;
    let r = app
        .client
        .put(app.url(&format!("{DS}/id:{id}")))
        .send()
        .await
        .unwrap();
    assert_rest_error(r, 404, "NOT_FOUND").await;
    let r = app.rest(&token).get_session("not-a-uuid").await;
    assert_rest_error(r, 404, "NOT_FOUND").await;
    // The session is untouched by all of the above.
    assert_eq!(app.rest(&token).session(&id).await["state"], "ACTIVE");
}

// --------------------------------------------------- the catalog, managed

#[tokio::test]
async fn libraries_and_items_managed_on_rest() {
    let app = spawn_app_with(|s| s.workers.count = 0).await;
    let token = app.user("librarian", LIBRARIAN).await;
    let rest = app.rest(&token);

    // govc library.create: a DATASTORE backing, accepted; the bytes go to the content store.
    let lib = rest.new_library("isos").await;
    let model = value_of(rest.get_local_library(&lib).await).await;
    assert_eq!(model["name"], "isos");
    assert_eq!(model["type"], "LOCAL");
    assert_eq!(model["version"], "1");
    assert_eq!(model["storage_backings"], json!([{"type": "OTHER"}]));
    assert_eq!(model["publish_info"]["published"], false);
    assert_eq!(value_of(rest.get_library(&lib).await).await, model);
    assert_eq!(
        value_of(rest.list_local_libraries().await).await,
        json!([lib])
    );
    assert_eq!(
        value_of(rest.find_libraries(json!({"name": "ISOS"})).await).await,
        json!([lib])
    );
    assert_eq!(
        value_of(rest.find_libraries(json!({"name": "none"})).await).await,
        json!([])
    );
    assert_eq!(
        value_of(rest.list_subscribed_libraries().await).await,
        json!([])
    );
    assert_rest_error(
        rest.get_subscribed_library(&lib).await,
        400,
        "INVALID_ELEMENT_TYPE",
    )
    .await;
    assert_rest_error(
        rest.find_libraries(json!({})).await,
        400,
        "INVALID_ARGUMENT",
    )
    .await;
    let r = app
        .post(&token, &format!("{LIBRARY}?~action=find"), Some(json!({})))
        .await;
    assert_rest_error(r, 400, "INVALID_ARGUMENT").await;
    let r = rest
        .create_library(Some(json!({"create_spec": {"name": "Isos"}})))
        .await;
    assert_rest_error(r, 400, "ALREADY_EXISTS").await;
    assert_rest_error(rest.create_library(None).await, 400, "INVALID_ARGUMENT").await;
    let r = rest
        .create_library(Some(
            json!({"create_spec": {"name": "x"}, "client_token": ""}),
        ))
        .await;
    assert_rest_error(r, 400, "INVALID_ARGUMENT").await;
    // The same client_token answers the same library.
    let body = json!({"client_token": "c1", "create_spec": {"name": "tokened"}});
    let first = value_of(rest.create_library(Some(body.clone())).await).await;
    assert_eq!(value_of(rest.create_library(Some(body)).await).await, first);

    // govc library.update (Library.update) and LocalLibrary.update.
    assert_void(
        rest.update_library(&lib, json!({"name": "isos", "description": "ISOs"}))
            .await,
    )
    .await;
    let r = rest
        .update_local_library(&lib, json!({"description": "x", "version": "1"}))
        .await;
    assert_rest_error(r, 409, "CONCURRENT_CHANGE").await;
    let r = rest
        .update_library(&lib, json!({"description": "x", "version": "1"}))
        .await;
    assert_rest_error(r, 400, "INVALID_ARGUMENT").await;
    assert_void(
        rest.update_local_library(&lib, json!({"description": "y", "version": "2"}))
            .await,
    )
    .await;
    assert_eq!(value_of(rest.get_library(&lib).await).await["version"], "3");
    let r = rest
        .update_local_library(&lib, json!({"publish_info": {"published": true}}))
        .await;
    assert_rest_error(r, 400, "UNSUPPORTED").await;

    // Items as govmomi creates them (description and type always sent, maybe "").
    let item = rest.new_item(&lib, "photon", "").await;
    let model = value_of(rest.get_item(&item).await).await;
    assert_eq!(model["type"], "file");
    assert_eq!(model["description"], "");
    assert_eq!(model["content_version"], "1");
    let found = rest
        .find_items(json!({"library_id": lib, "name": "Photon"}))
        .await;
    assert_eq!(value_of(found).await, json!([item]));
    assert_rest_error(rest.find_items(json!({})).await, 400, "INVALID_ARGUMENT").await;
    let r = rest
        .create_item(Some(
            json!({"create_spec": {"name": "PHOTON", "library_id": lib}}),
        ))
        .await;
    let body = assert_rest_error(r, 400, "ALREADY_EXISTS").await;
    assert_eq!(
        body["value"]["messages"][0]["id"],
        "com.vmware.vdcs.cls-main.duplicate_item_name_unsupported_in_library"
    );
    let r = rest
        .create_item(Some(
            json!({"create_spec": {"name": "x", "library_id": uuid::Uuid::new_v4()}}),
        ))
        .await;
    assert_rest_error(r, 404, "NOT_FOUND").await;
    assert_void(
        rest.update_item(&item, json!({"name": "photon-5", "description": "five"}))
            .await,
    )
    .await;
    let model = value_of(rest.get_item(&item).await).await;
    assert_eq!(
        (model["name"].as_str(), model["version"].as_str()),
        (Some("photon-5"), Some("2"))
    );
    let r = rest
        .update_item(&item, json!({"name": "x", "version": "1"}))
        .await;
    assert_rest_error(r, 400, "INVALID_ARGUMENT").await;

    // Storage of an item with content.
    app.import("isos", "photon-5", &[("photon.iso", b"iso")])
        .await;
    let all = value_of(rest.item_storage(&item).await).await;
    assert_eq!(all[0]["name"], "photon.iso");
    assert_eq!(all[0]["storage_uris"], json!([]));
    let one = value_of(rest.item_storage_of(&item, "photon.iso").await).await;
    assert_eq!(one, all);
    assert_rest_error(rest.item_storage_of(&item, "nope").await, 404, "NOT_FOUND").await;
    let r = app
        .post(
            &token,
            &format!("{ITEM_STORAGE}/id:{item}?~action=list"),
            Some(json!({"file_name": "x"})),
        )
        .await;
    assert_rest_error(r, 400, "INVALID_ARGUMENT").await;

    assert_void(rest.delete_item(&item).await).await;
    assert_rest_error(rest.get_item(&item).await, 404, "NOT_FOUND").await;
    assert_rest_error(rest.delete_item(&item).await, 404, "NOT_FOUND").await;
    assert_void(rest.delete_local_library(&lib).await).await;
    assert_rest_error(rest.get_local_library(&lib).await, 404, "NOT_FOUND").await;
    assert_rest_error(rest.delete_local_library(&lib).await, 404, "NOT_FOUND").await;

    // Writes need their privileges.
    let reader = app.user("reader", &["System.Read"]).await;
    let r = app
        .rest(&reader)
        .create_library(Some(json!({"create_spec": {"name": "n"}})))
        .await;
    assert_rest_error(r, 403, "UNAUTHORIZED").await;
    assert_rest_error(
        app.rest(&reader).item_storage(&item).await,
        403,
        "UNAUTHORIZED",
    )
    .await;
}
