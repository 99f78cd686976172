//! Download sessions and their files on /api: every operation, every error row
//! of CONTRACT.md, per-user isolation, idempotent create, leases and bad input.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

use crate::helpers::api::SESSIONS as DS;

struct Fixture {
    app: TestApp,
    token: String,
    item: String,
}

impl Fixture {
    /// `/api` as alice.
    fn api(&self) -> Api<'_> {
        self.app.api(&self.token)
    }
}

async fn fixture() -> Fixture {
    fixture_with(|_| {}).await
}

async fn fixture_with(tweak: impl FnOnce(&mut download_sessions::config::Settings)) -> Fixture {
    let app = spawn_app_with(|s| {
        s.workers.count = 0;
        tweak(s)
    })
    .await;
    let item = app
        .import(
            "lib",
            "ubuntu",
            &[("disk-0.vmdk", b"disk"), ("ubuntu.ovf", b"<ovf/>")],
        )
        .await;
    let token = app.user("alice", ALL_PRIVILEGES).await;
    Fixture { app, token, item }
}

#[tokio::test]
async fn create_get_list_delete() {
    let f = fixture().await;
    let id = f.api().new_session(&f.item).await;
    let s = f.api().session(&id).await;
    assert_eq!(s["library_item_id"], f.item.as_str());
    assert_eq!(s["library_item_content_version"], "1");
    assert_eq!(s["client_progress"], 0);
    assert_eq!(s["state"], "ACTIVE");
    assert!(s.get("id").is_none(), "{s}");
    assert!(s.get("error_message").is_none(), "{s}");
    let exp = chrono::DateTime::parse_from_rfc3339(s["expiration_time"].as_str().unwrap()).unwrap();
    let ahead = exp.signed_duration_since(chrono::Utc::now()).num_seconds();
    assert!((280..=301).contains(&ahead), "{ahead}");

    let listed: Vec<String> = f.api().session_ids().await;
    assert_eq!(listed, vec![id.clone()]);
    let by_item: Vec<String> = f
        .api()
        .list_sessions_of(&f.item)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_item, vec![id.clone()]);

    assert_eq!(f.api().delete_session(&id).await.status(), 204);
    assert_api_error(f.api().get_session(&id).await, 404, "NOT_FOUND").await;
    assert_api_error(f.api().delete_session(&id).await, 404, "NOT_FOUND").await;
    let listed: Vec<String> = f.api().session_ids().await;
    assert!(listed.is_empty());
}

#[tokio::test]
async fn list_filters_by_item_and_rejects_unknown_items() {
    let f = fixture().await;
    let other = f.app.import("lib", "other", &[("x", b"x")]).await;
    let a = f.api().new_session(&f.item).await;
    let b = f.api().new_session(&other).await;
    let all: Vec<String> = f.api().session_ids().await;
    assert_eq!(all.len(), 2);
    assert!(all.contains(&a) && all.contains(&b));
    let only_b: Vec<String> = f.api().list_sessions_of(&other).await.json().await.unwrap();
    assert_eq!(only_b, vec![b]);
    for bad in ["nope", "6f3c2b7e-0000-4000-8000-000000000000"] {
        let r = f.api().list_sessions_of(bad).await;
        assert_api_error(r, 404, "NOT_FOUND").await;
    }
}

#[tokio::test]
async fn create_errors() {
    let f = fixture().await;
    // Unknown and malformed item ids.
    for item in ["6f3c2b7e-0000-4000-8000-000000000000", "nope"] {
        let r = f
            .api()
            .create_session(Some(json!({ "library_item_id": item })))
            .await;
        assert_api_error(r, 404, "NOT_FOUND").await;
    }
    // No item, no body, wrong types, unknown field, malformed JSON.
    for body in [
        json!({}),
        json!({"library_item_id": 5}),
        json!({"library_itme_id": f.item}),
        json!([1]),
    ] {
        let r = f.api().create_session(Some(body.clone())).await;
        assert_api_error(r, 400, "INVALID_ARGUMENT").await;
    }
    let r = f.api().create_session(None).await;
    assert_api_error(r, 400, "INVALID_ARGUMENT").await;
    let r = f
        .app
        .client
        .post(f.app.url(DS))
        .header("vmware-api-session-id", &f.token)
        .header("content-type", "application/json")
        .body("{\"library_item_id\": ")
        .send()
        .await
        .unwrap();
    let body = assert_api_error(r, 400, "INVALID_ARGUMENT").await;
    assert!(body["messages"][0]["default_message"]
        .as_str()
        .unwrap()
        .contains("not valid"));
    // Without ContentLibrary.DownloadSession.
    let reader = f.app.user("reader", &["System.Read"]).await;
    let r = f
        .app
        .api(&reader)
        .create_session(Some(json!({ "library_item_id": f.item })))
        .await;
    assert_api_error(r, 403, "UNAUTHORIZED").await;
    assert_api_error(
        f.app.api(&reader).list_sessions().await,
        403,
        "UNAUTHORIZED",
    )
    .await;
}

#[tokio::test]
async fn oversize_body_is_413_with_contract_body() {
    let f = fixture_with(|s| s.http.max_body_bytes = 2048).await;
    let big = "x".repeat(4096);
    let r = f
        .api()
        .create_session(Some(json!({ "library_item_id": big })))
        .await;
    assert_api_error(r, 413, "INVALID_ARGUMENT").await;
}

#[tokio::test]
async fn client_token_makes_create_idempotent_per_user() {
    let f = fixture().await;
    let create = |token: String, client_token: &'static str| {
        let app = &f.app;
        let item = f.item.clone();
        async move {
            let r = app
                .client
                .post(app.url(DS))
                .header("vmware-api-session-id", token)
                .header("Client-Token", client_token)
                .json(&json!({ "library_item_id": item }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            r.json::<String>().await.unwrap()
        }
    };
    let first = create(f.token.clone(), "ct-1").await;
    assert_eq!(create(f.token.clone(), "ct-1").await, first);
    assert_ne!(create(f.token.clone(), "ct-2").await, first);
    // Another user's identical client token makes that user's own session.
    let bob = f.app.user("bob", ALL_PRIVILEGES).await;
    assert_ne!(create(bob, "ct-1").await, first);
    // Concurrent creates with one token agree on one session.
    let (a, b) = tokio::join!(
        create(f.token.clone(), "ct-3"),
        create(f.token.clone(), "ct-3")
    );
    assert_eq!(a, b);
}

#[tokio::test]
async fn sessions_belong_to_their_owner() {
    let f = fixture().await;
    let id = f.api().new_session(&f.item).await;
    let mallory = f.app.user("mallory", ALL_PRIVILEGES).await;
    let paths_get = [
        format!("{DS}/{id}"),
        format!("{DS}/{id}/file"),
        format!("{DS}/{id}/file?file_name=disk-0.vmdk"),
    ];
    for p in &paths_get {
        assert_api_error(f.app.get(&mallory, p).await, 404, "NOT_FOUND").await;
    }
    for action in ["keep-alive", "cancel"] {
        let r = f.app.api(&mallory).session_action(&id, action, None).await;
        assert_api_error(r, 404, "NOT_FOUND").await;
    }
    let r = f.app.api(&mallory).fail(&id, "x").await;
    assert_api_error(r, 404, "NOT_FOUND").await;
    let r = f
        .app
        .api(&mallory)
        .prepare(&id, Some(json!({"file_name": "disk-0.vmdk"})))
        .await;
    assert_api_error(r, 404, "NOT_FOUND").await;
    assert_api_error(
        f.app.api(&mallory).delete_session(&id).await,
        404,
        "NOT_FOUND",
    )
    .await;
    let listed: Vec<String> = f.app.api(&mallory).session_ids().await;
    assert!(listed.is_empty());
    // Still intact for its owner.
    assert_eq!(f.api().session(&id).await["state"], "ACTIVE");
}

#[tokio::test]
async fn keep_alive_renews_and_records_progress() {
    let f = fixture_with(|s| s.sessions.timeout_seconds = 60).await;
    let id = f.api().new_session(&f.item).await;
    let before = f.api().session(&id).await["expiration_time"]
        .as_str()
        .unwrap()
        .to_string();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = f.api().keep_alive(&id, Some(json!({"progress": 42}))).await;
    assert_eq!(r.status(), 204);
    let s = f.api().session(&id).await;
    assert_eq!(s["client_progress"], 42);
    assert!(s["expiration_time"].as_str().unwrap() > before.as_str());
    // Without a body progress stays.
    let r = f.api().keep_alive(&id, None).await;
    assert_eq!(r.status(), 204);
    assert_eq!(f.api().session(&id).await["client_progress"], 42);
    // Out of range and wrong types.
    for body in [
        json!({"progress": 101}),
        json!({"progress": -1}),
        json!({"progress": "50"}),
        json!({"progress": 1.5}),
        json!({"progres": 1}),
    ] {
        let r = f.api().keep_alive(&id, Some(body)).await;
        assert_api_error(r, 400, "INVALID_ARGUMENT").await;
    }
    assert_eq!(f.api().session(&id).await["client_progress"], 42);
}

#[tokio::test]
async fn cancel_and_fail_state_rules() {
    let f = fixture().await;
    let id = f.api().new_session(&f.item).await;
    // Prepare one file so cancel has something to stop.
    let r = f
        .api()
        .prepare(&id, Some(json!({"file_name": "disk-0.vmdk"})))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(f.api().cancel(&id).await.status(), 204);
    let s = f.api().session(&id).await;
    assert_eq!(s["state"], "CANCELED");
    let file: Value = f
        .api()
        .get_file(&id, "disk-0.vmdk")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(file["status"], "ERROR");
    assert!(file.get("download_endpoint").is_none());
    // Nothing more is allowed on a canceled session but get/list/delete.
    for action in ["keep-alive", "cancel"] {
        let r = f.api().session_action(&id, action, None).await;
        assert_api_error(r, 400, "NOT_ALLOWED_IN_CURRENT_STATE").await;
    }
    let r = f.api().fail(&id, "late").await;
    assert_api_error(r, 400, "NOT_ALLOWED_IN_CURRENT_STATE").await;
    let r = f
        .api()
        .prepare(&id, Some(json!({"file_name": "ubuntu.ovf"})))
        .await;
    assert_api_error(r, 400, "NOT_ALLOWED_IN_CURRENT_STATE").await;

    // fail needs a message, and records it.
    let id2 = f.api().new_session(&f.item).await;
    let r = f.api().session_action(&id2, "fail", Some(json!({}))).await;
    assert_api_error(r, 400, "INVALID_ARGUMENT").await;
    let r = f.api().session_action(&id2, "fail", None).await;
    assert_api_error(r, 400, "INVALID_ARGUMENT").await;
    let r = f.api().fail(&id2, "disk full").await;
    assert_eq!(r.status(), 204);
    let s = f.api().session(&id2).await;
    assert_eq!(s["state"], "ERROR");
    assert_eq!(s["error_message"]["default_message"], "disk full");
    assert!(s["error_message"]["id"].as_str().is_some());
    assert!(s["error_message"]["args"].is_array());
    let r = f.api().keep_alive(&id2, None).await;
    assert_api_error(r, 400, "NOT_ALLOWED_IN_CURRENT_STATE").await;
    // Unknown and missing actions.
    for q in ["?action=explode", ""] {
        let r = f.app.post(&f.token, &format!("{DS}/{id2}{q}"), None).await;
        assert_api_error(r, 400, "INVALID_ARGUMENT").await;
    }
}

#[tokio::test]
async fn unknown_and_malformed_session_ids_are_not_found() {
    let f = fixture().await;
    for id in ["6f3c2b7e-0000-4000-8000-000000000000", "nope", "%20"] {
        assert_api_error(f.api().get_session(id).await, 404, "NOT_FOUND").await;
        assert_api_error(f.api().list_files(id).await, 404, "NOT_FOUND").await;
        let r = f.api().keep_alive(id, None).await;
        assert_api_error(r, 404, "NOT_FOUND").await;
        let r = f.api().cancel(id).await;
        assert_api_error(r, 404, "NOT_FOUND").await;
        let r = f.api().fail(id, "x").await;
        assert_api_error(r, 404, "NOT_FOUND").await;
        assert_api_error(f.api().delete_session(id).await, 404, "NOT_FOUND").await;
        let r = f
            .api()
            .prepare(id, Some(json!({"file_name": "disk-0.vmdk"})))
            .await;
        assert_api_error(r, 404, "NOT_FOUND").await;
    }
}

#[tokio::test]
async fn files_list_get_prepare() {
    let f = fixture().await;
    let id = f.api().new_session(&f.item).await;
    let files: Vec<Value> = f.api().list_files(&id).await.json().await.unwrap();
    let names: Vec<&str> = files.iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["disk-0.vmdk", "ubuntu.ovf"]);
    for file in &files {
        assert_eq!(file["status"], "UNPREPARED");
        assert_eq!(file["bytes_transferred"], 0);
        assert!(file.get("download_endpoint").is_none());
        assert!(file.get("checksum_info").is_none());
    }
    let r = f.api().get_file(&id, "ubuntu.ovf").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["name"], "ubuntu.ovf");
    let r = f.api().get_file(&id, "missing.bin").await;
    assert_api_error(r, 400, "INVALID_ARGUMENT").await;

    // prepare: UNPREPARED -> PREPARE_REQUESTED; again: unchanged, nothing new.
    let api = f.api();
    let prep = |body: Value| api.prepare(&id, Some(body));
    let r = prep(json!({"file_name": "disk-0.vmdk"})).await;
    assert_eq!(r.status(), 200);
    let info: Value = r.json().await.unwrap();
    assert_eq!(info["status"], "PREPARE_REQUESTED");
    let r = prep(json!({"file_name": "disk-0.vmdk", "endpoint_type": "HTTPS"})).await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["status"],
        "PREPARE_REQUESTED"
    );
    let queued: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM download_files WHERE status = 'PREPARE_REQUESTED'",
    )
    .fetch_one(f.app.db.pool())
    .await
    .unwrap();
    assert_eq!(queued, 1);

    // Errors: unknown file, bad names, bad endpoint type, unknown fields, no body.
    for body in [
        json!({"file_name": "missing.bin"}),
        json!({"file_name": "../etc/passwd"}),
        json!({"file_name": ""}),
        json!({"file_name": "disk-0.vmdk", "endpoint_type": "FTP"}),
        json!({"file_name": "disk-0.vmdk", "extra": 1}),
        json!({"name": "disk-0.vmdk"}),
    ] {
        assert_api_error(prep(body).await, 400, "INVALID_ARGUMENT").await;
    }
    // A bad endpoint type gets the domain's error, as on /rest and JSON-RPC.
    let body = assert_api_error(
        prep(json!({"file_name": "disk-0.vmdk", "endpoint_type": "FTP"})).await,
        400,
        "INVALID_ARGUMENT",
    )
    .await;
    assert_eq!(
        body["messages"][0]["id"],
        "com.vmware.content.library.item.downloadsession.file.invalid_endpoint_type"
    );
    let r = f.api().prepare(&id, None).await;
    assert_api_error(r, 400, "INVALID_ARGUMENT").await;
    let r = f
        .app
        .post(
            &f.token,
            &format!("{DS}/{id}/file?action=destroy"),
            Some(json!({"file_name": "x"})),
        )
        .await;
    assert_api_error(r, 400, "INVALID_ARGUMENT").await;
}

#[tokio::test]
async fn direct_endpoints_need_read_storage_at_creation() {
    let f = fixture().await;
    let plain = f.app.user("plain", DOWNLOADER).await;
    let id = f.app.api(&plain).new_session(&f.item).await;
    let r = f
        .app
        .api(&plain)
        .prepare(
            &id,
            Some(json!({"file_name": "disk-0.vmdk", "endpoint_type": "DIRECT"})),
        )
        .await;
    assert_api_error(r, 403, "UNAUTHORIZED").await;
    // HTTPS is fine for the same session.
    let r = f
        .app
        .api(&plain)
        .prepare(&id, Some(json!({"file_name": "disk-0.vmdk"})))
        .await;
    assert_eq!(r.status(), 200);
    // A session created with ReadStorage may ask for DIRECT (on a local store
    // only with a direct_base: see direct_on_a_local_store_never_discloses_server_paths).
    let f = fixture_with(|s| {
        s.storage.transfer.direct_base = Some("file:///mnt/transfer".into());
    })
    .await;
    let id = f.api().new_session(&f.item).await;
    let r = f
        .api()
        .prepare(
            &id,
            Some(json!({"file_name": "disk-0.vmdk", "endpoint_type": "DIRECT"})),
        )
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn direct_on_a_local_store_never_discloses_server_paths() {
    // No direct_base: DIRECT is refused with a clear error, HTTPS still works.
    let f = fixture().await;
    let id = f.api().new_session(&f.item).await;
    let r = f
        .api()
        .prepare(
            &id,
            Some(json!({"file_name": "disk-0.vmdk", "endpoint_type": "DIRECT"})),
        )
        .await;
    let body = assert_api_error(r, 400, "INVALID_ARGUMENT").await;
    assert_eq!(
        body["messages"][0]["id"],
        "com.vmware.content.library.item.downloadsession.file.direct_unavailable",
        "{body}"
    );
    let data_dir = f.app.data_dir.display().to_string();
    assert!(!body.to_string().contains(&data_dir), "{body}");
    assert!(!body.to_string().contains("file://"), "{body}");
    let info = f.api().file_info(&id, "disk-0.vmdk").await;
    assert_eq!(info["status"], "UNPREPARED", "{info}");
    let r = f
        .api()
        .prepare(&id, Some(json!({"file_name": "disk-0.vmdk"})))
        .await;
    assert_eq!(r.status(), 200);

    // With one, DIRECT URIs extend it: the share as clients mount it.
    let f = fixture_with(|s| {
        s.storage.transfer.direct_base = Some("nfs://nas.example.com/transfer".into());
    })
    .await;
    let id = f.api().new_session(&f.item).await;
    let r = f
        .api()
        .prepare(
            &id,
            Some(json!({"file_name": "disk-0.vmdk", "endpoint_type": "DIRECT"})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let stores = download_sessions::storage::Buckets::from_settings(&f.app.settings).unwrap();
    let w = download_sessions::worker::Worker::new(&f.app.db, &stores, &f.app.settings.workers);
    w.prepare_one().await.unwrap();
    let info = f.api().file_info(&id, "disk-0.vmdk").await;
    assert_eq!(info["status"], "PREPARED", "{info}");
    let uri = info["download_endpoint"]["uri"].as_str().unwrap();
    let sha = sha256_hex(b"disk");
    assert!(
        uri.starts_with(&format!("nfs://nas.example.com/transfer/artifacts/{sha}-")),
        "{uri}"
    );
    assert!(
        !info
            .to_string()
            .contains(&f.app.data_dir.display().to_string()),
        "{info}"
    );
    assert!(
        info["download_endpoint"]["ssl_certificate_thumbprint"].is_null(),
        "{info}"
    );
}

#[tokio::test]
async fn sessions_pin_the_content_version_at_creation() {
    let f = fixture().await;
    let id = f.api().new_session(&f.item).await;
    let again = f
        .app
        .import(
            "lib",
            "ubuntu",
            &[("disk-0.vmdk", b"disk v2"), ("new.txt", b"n")],
        )
        .await;
    assert_eq!(again, f.item);
    let s = f.api().session(&id).await;
    assert_eq!(s["library_item_content_version"], "1");
    let names: Vec<String> = f
        .api()
        .list_files(&id)
        .await
        .json::<Vec<Value>>()
        .await
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["disk-0.vmdk", "ubuntu.ovf"]);
    let id2 = f.api().new_session(&f.item).await;
    assert_eq!(
        f.api().session(&id2).await["library_item_content_version"],
        "2"
    );
}

#[tokio::test]
async fn idle_sessions_expire_and_are_removed() {
    let f = fixture_with(|s| s.sessions.timeout_seconds = 1).await;
    let id = f.api().new_session(&f.item).await;
    let kept = f.api().new_session(&f.item).await;
    // Activity on one keeps it; the other lapses.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let r = f.api().keep_alive(&kept, None).await;
        assert_eq!(r.status(), 204);
    }
    assert_api_error(f.api().get_session(&id).await, 404, "NOT_FOUND").await;
    let r = f.api().keep_alive(&id, None).await;
    assert_api_error(r, 404, "NOT_FOUND").await;
    let listed: Vec<String> = f.api().session_ids().await;
    assert_eq!(listed, vec![kept.clone()]);
    // The maintenance pass deletes expired rows.
    let removed = f.app.db.expire_sessions(100).await.unwrap();
    assert_eq!(removed, 1);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM download_sessions")
        .fetch_one(f.app.db.pool())
        .await
        .unwrap();
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn unknown_routes_answer_contract_404() {
    let f = fixture().await;
    let r = f.app.get(&f.token, "/api/no/such/thing").await;
    assert_api_error(r, 404, "NOT_FOUND").await;
}

/// Cancel racing prepare: whichever commits first, a file of a session that is no
/// longer ACTIVE is never left waiting for a worker (or held by one).
#[tokio::test]
async fn cancel_racing_prepare_leaves_no_file_requested() {
    let f = fixture().await;
    let mut ids = Vec::new();
    for _ in 0..60 {
        ids.push(f.api().new_session(&f.item).await);
    }
    let f = &f;
    let races = ids.iter().map(|id| async move {
        let api = f.api();
        let body = json!({"file_name": "disk-0.vmdk"});
        let (prepared, canceled) = tokio::join!(api.prepare(id, Some(body)), api.cancel(id));
        assert_eq!(canceled.status(), 204);
        // Prepare either won (PREPARE_REQUESTED, then canceled) or saw the canceled state.
        let status = prepared.status().as_u16();
        if status != 200 {
            assert_api_error(prepared, 400, "NOT_ALLOWED_IN_CURRENT_STATE").await;
        }
        status
    });
    let statuses = futures_util::future::join_all(races).await;
    let stuck: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM download_files f JOIN download_sessions s ON s.id = f.session_id \
         WHERE s.state <> 'ACTIVE' AND f.status IN ('PREPARE_REQUESTED', 'PREPARING')",
    )
    .fetch_one(f.app.db.pool())
    .await
    .unwrap();
    let won = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(
        stuck, 0,
        "{stuck} of 60 files stuck ({won} prepares answered 200)"
    );
    // Every file that prepare requested was stopped with the cancel's message.
    let stopped: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM download_files WHERE status = 'ERROR' AND name = 'disk-0.vmdk'",
    )
    .fetch_one(f.app.db.pool())
    .await
    .unwrap();
    assert_eq!(stopped as usize, won);
}
