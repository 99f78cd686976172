//! Update sessions (uploads) on /api and the upload data plane: every operation
//! and error, one ACTIVE session per item, idempotent create, per-user
//! isolation, verified streaming uploads, and complete publishing atomically.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

const UPLOADER: &[&str] = &[
    "System.Read",
    "ContentLibrary.UpdateSession",
    "ContentLibrary.DownloadSession",
];

struct Fixture {
    app: TestApp,
    token: String,
    item: String,
}

impl Fixture {
    fn api(&self) -> Api<'_> {
        self.app.api(&self.token)
    }

    /// PUTs (or POSTs) `bytes` to `uri`.
    async fn send(&self, method: reqwest::Method, uri: &str, bytes: Vec<u8>) -> reqwest::Response {
        self.app
            .client
            .request(method, uri)
            .header("Content-Type", "application/octet-stream")
            .body(bytes)
            .send()
            .await
            .unwrap()
    }

    async fn put(&self, uri: &str, bytes: &[u8]) -> reqwest::Response {
        self.send(reqwest::Method::PUT, uri, bytes.to_vec()).await
    }

    async fn file(&self, session: &str, name: &str) -> Value {
        let r = self.api().update_file(session, name).await;
        assert_eq!(r.status(), 200, "get {name}");
        r.json().await.unwrap()
    }

    /// The bytes of `name` as a new download session serves them.
    async fn download(&self, name: &str) -> Vec<u8> {
        let api = self.api();
        let session = api.new_session(&self.item).await;
        api.prepare_file(&session, name).await;
        let info = api
            .wait_prepared(&session, name, Duration::from_secs(30))
            .await;
        let uri = info["download_endpoint"]["uri"].as_str().unwrap();
        let r = self.app.client.get(uri).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap().to_vec()
    }

    async fn item_file_names(&self) -> Vec<String> {
        let files: Vec<Value> = self
            .api()
            .item_files(&self.item)
            .await
            .json()
            .await
            .unwrap();
        files
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_string())
            .collect()
    }
}

async fn fixture_with(
    workers: usize,
    tweak: impl FnOnce(&mut download_sessions::config::Settings),
) -> Fixture {
    let app = spawn_app_with(|s| {
        s.workers.count = workers;
        tweak(s)
    })
    .await;
    let item = app
        .import(
            "lib",
            "vm",
            &[("disk.vmdk", b"old disk"), ("vm.ovf", b"<ovf/>")],
        )
        .await;
    let token = app.user("alice", UPLOADER).await;
    Fixture { app, token, item }
}

async fn fixture() -> Fixture {
    fixture_with(0, |_| {}).await
}

fn uri_of(info: &Value) -> String {
    info["upload_endpoint"]["uri"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn create_get_list_keep_alive_cancel_delete() {
    let f = fixture().await;
    let id = f.api().new_update(&f.item).await;
    let s = f.api().update(&id).await;
    assert_eq!(s["library_item_id"], f.item.as_str());
    assert_eq!(s["library_item_content_version"], "1");
    assert_eq!(s["state"], "ACTIVE");
    assert_eq!(s["client_progress"], 0);
    assert!(s.get("id").is_none(), "{s}");

    let all: Vec<String> = f.api().list_updates(None).await.json().await.unwrap();
    assert_eq!(all, vec![id.clone()]);
    let of_item: Vec<String> = f
        .api()
        .list_updates(Some(&f.item))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(of_item, vec![id.clone()]);
    let r = f
        .api()
        .list_updates(Some("5d2f8a10-7c3b-4e9d-a1f6-0e4b3c2d1a98"))
        .await;
    assert_api_error(r, 404, "NOT_FOUND").await;

    let r = f
        .api()
        .update_action(&id, "keep-alive", Some(json!({"progress": 42})))
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(f.api().update(&id).await["client_progress"], 42);
    let r = f
        .api()
        .update_action(&id, "keep-alive", Some(json!({"progress": 101})))
        .await;
    assert_api_error(r, 400, "INVALID_ARGUMENT").await;
    let r = f.api().update_action(&id, "explode", None).await;
    assert_api_error(r, 400, "INVALID_ARGUMENT").await;

    // An ACTIVE session cannot be deleted.
    let r = f.api().delete_update(&id).await;
    assert_api_error(r, 400, "NOT_ALLOWED_IN_CURRENT_STATE").await;
    assert_eq!(
        f.api().update_action(&id, "cancel", None).await.status(),
        204
    );
    assert_eq!(f.api().update(&id).await["state"], "CANCELED");
    for action in ["cancel", "complete", "keep-alive"] {
        let r = f.api().update_action(&id, action, None).await;
        assert_api_error(r, 400, "NOT_ALLOWED_IN_CURRENT_STATE").await;
    }
    let r = f
        .api()
        .update_file_action(
            &id,
            "add",
            Some(json!({"name": "a", "source_type": "PUSH"})),
        )
        .await;
    assert_api_error(r, 400, "NOT_ALLOWED_IN_CURRENT_STATE").await;
    assert_eq!(f.api().delete_update(&id).await.status(), 204);
    assert_api_error(f.api().get_update(&id).await, 404, "NOT_FOUND").await;
    assert_api_error(f.api().delete_update(&id).await, 404, "NOT_FOUND").await;
    assert_api_error(f.api().get_update("nope").await, 404, "NOT_FOUND").await;
}

#[tokio::test]
async fn fail_records_the_clients_message() {
    let f = fixture().await;
    let id = f.api().new_update(&f.item).await;
    let r = f.api().update_action(&id, "fail", None).await;
    assert_api_error(r, 400, "INVALID_ARGUMENT").await;
    let r = f
        .api()
        .update_action(
            &id,
            "fail",
            Some(json!({"client_error_message": "disk full"})),
        )
        .await;
    assert_eq!(r.status(), 204);
    let s = f.api().update(&id).await;
    assert_eq!(s["state"], "ERROR");
    assert_eq!(s["error_message"]["default_message"], "disk full");
}

#[tokio::test]
async fn one_active_session_per_item_and_idempotent_create() {
    let f = fixture().await;
    let spec = json!({ "library_item_id": f.item });
    let r = f
        .api()
        .create_update(Some(spec.clone()), Some("tok-1"))
        .await;
    assert_eq!(r.status(), 201);
    let id: String = r.json().await.unwrap();
    let r = f
        .api()
        .create_update(Some(spec.clone()), Some("tok-1"))
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.json::<String>().await.unwrap(), id);

    let bob = f.app.user("bob", UPLOADER).await;
    let r = f
        .app
        .api(&bob)
        .create_update(Some(spec.clone()), None)
        .await;
    let e = assert_api_error(r, 400, "RESOURCE_BUSY").await;
    assert!(e["messages"][0]["default_message"]
        .as_str()
        .unwrap()
        .contains(&f.item));
    // bob sees nothing of alice's session.
    assert_api_error(f.app.api(&bob).get_update(&id).await, 404, "NOT_FOUND").await;
    let r = f.app.api(&bob).update_action(&id, "cancel", None).await;
    assert_api_error(r, 404, "NOT_FOUND").await;
    let listed: Vec<String> = f
        .app
        .api(&bob)
        .list_updates(None)
        .await
        .json()
        .await
        .unwrap();
    assert!(listed.is_empty());

    assert_eq!(
        f.api().update_action(&id, "cancel", None).await.status(),
        204
    );
    let r = f.app.api(&bob).create_update(Some(spec), None).await;
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn create_errors() {
    let f = fixture().await;
    let r = f.api().create_update(Some(json!({})), None).await;
    assert_api_error(r, 400, "INVALID_ARGUMENT").await;
    let r = f
        .api()
        .create_update(
            Some(json!({"library_item_id": "5d2f8a10-7c3b-4e9d-a1f6-0e4b3c2d1a98"})),
            None,
        )
        .await;
    assert_api_error(r, 404, "NOT_FOUND").await;
    let downloader = f.app.user("dl", DOWNLOADER).await;
    let r = f
        .app
        .api(&downloader)
        .create_update(Some(json!({"library_item_id": f.item})), None)
        .await;
    let e = assert_api_error(r, 403, "UNAUTHORIZED").await;
    assert!(
        e.to_string().contains("ContentLibrary.UpdateSession"),
        "{e}"
    );
    let r = f
        .app
        .api_anonymous()
        .create_update(Some(json!({"library_item_id": f.item})), None)
        .await;
    assert_api_error(r, 401, "UNAUTHENTICATED").await;
}

#[tokio::test]
async fn upload_complete_and_download_the_new_content() {
    let f = fixture_with(2, |_| {}).await;
    // A download session open on the old content keeps it.
    let before = f.api().new_session(&f.item).await;

    let id = f.api().new_update(&f.item).await;
    let disk = pattern(3 * (1 << 20) + 5);
    let info = f.api().add_upload(&id, "disk.vmdk", Some(&disk)).await;
    assert_eq!(info["status"], "WAITING_FOR_TRANSFER");
    assert_eq!(info["source_type"], "PUSH");
    assert_eq!(info["size"], disk.len());
    assert_eq!(info["checksum_info"]["algorithm"], "SHA256");
    let uri = uri_of(&info);
    assert!(uri.contains("/cls/upload/"), "{uri}");
    let extra = f.api().add_upload(&id, "notes.txt", None).await;

    let v = f.api().update_file_action(&id, "validate", None).await;
    let v: Value = v.json().await.unwrap();
    assert_eq!(v["has_errors"], true);
    assert_eq!(v["missing_files"], json!(["disk.vmdk", "notes.txt"]));
    let r = f.api().update_action(&id, "complete", None).await;
    let e = assert_api_error(r, 400, "NOT_ALLOWED_IN_CURRENT_STATE").await;
    assert!(e.to_string().contains("disk.vmdk"), "{e}");

    // PUT the disk in many small chunks; POST the notes (as the SDK samples do).
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        disk.chunks(64 * 1024 + 3).map(|c| Ok(c.to_vec())).collect();
    let r = f
        .app
        .client
        .put(&uri)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let r = f
        .send(reqwest::Method::POST, &uri_of(&extra), b"hello".to_vec())
        .await;
    assert_eq!(r.status(), 200);
    let got = f.file(&id, "disk.vmdk").await;
    assert_eq!(got["status"], "READY");
    assert_eq!(got["bytes_transferred"], disk.len());
    let notes = f.file(&id, "notes.txt").await;
    assert_eq!(notes["checksum_info"]["checksum"], sha256_hex(b"hello"));
    let v: Value = f
        .api()
        .update_file_action(&id, "validate", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        v,
        json!({"has_errors": false, "missing_files": [], "invalid_files": []})
    );

    // Nothing is visible before complete.
    assert_eq!(f.api().item(&f.item).await["content_version"], "1");
    assert_eq!(
        f.api().update_action(&id, "complete", None).await.status(),
        204
    );
    let s = f.api().update(&id).await;
    assert_eq!(s["state"], "DONE");
    // The upload URI no longer works once the session is done.
    assert_eq!(f.put(&uri, &disk).await.status(), 404);

    let mut names = f.item_file_names().await;
    names.sort();
    assert_eq!(names, vec!["disk.vmdk", "notes.txt", "vm.ovf"]);
    assert_eq!(f.download("disk.vmdk").await, disk);
    assert_eq!(f.download("vm.ovf").await, b"<ovf/>");
    let after = f.api().new_session(&f.item).await;
    assert_eq!(
        f.api().session(&after).await["library_item_content_version"],
        "2"
    );
    // The session opened before still downloads the old bytes.
    assert_eq!(
        f.api().session(&before).await["library_item_content_version"],
        "1"
    );
    f.api().prepare_file(&before, "disk.vmdk").await;
    let info = f
        .api()
        .wait_prepared(&before, "disk.vmdk", Duration::from_secs(30))
        .await;
    let old = f
        .app
        .client
        .get(info["download_endpoint"]["uri"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(old.bytes().await.unwrap().as_ref(), b"old disk");
}

#[tokio::test]
async fn remove_drops_a_file_at_complete() {
    let f = fixture().await;
    let id = f.api().new_update(&f.item).await;
    let r = f
        .api()
        .update_file_action(&id, "remove", Some(json!({"file_name": "vm.ovf"})))
        .await;
    assert_eq!(r.status(), 204);
    let r = f
        .api()
        .update_file_action(&id, "remove", Some(json!({"file_name": "nope.bin"})))
        .await;
    assert_api_error(r, 400, "INVALID_ARGUMENT").await;
    let r = f.api().update_file_action(&id, "remove", None).await;
    assert_api_error(r, 400, "INVALID_ARGUMENT").await;
    // A file added then removed is gone from the session.
    f.api().add_upload(&id, "tmp.bin", None).await;
    let r = f
        .api()
        .update_file_action(&id, "remove", Some(json!({"file_name": "tmp.bin"})))
        .await;
    assert_eq!(r.status(), 204);
    let files: Vec<Value> = f.api().update_files(&id).await.json().await.unwrap();
    assert!(files.is_empty(), "{files:?}");
    assert_api_error(
        f.api().update_file(&id, "tmp.bin").await,
        400,
        "INVALID_ARGUMENT",
    )
    .await;
    assert_eq!(
        f.api().update_action(&id, "complete", None).await.status(),
        204
    );
    assert_eq!(f.item_file_names().await, vec!["disk.vmdk"]);
    assert_eq!(f.api().item(&f.item).await["content_version"], "2");
}

#[tokio::test]
async fn add_errors() {
    let f = fixture().await;
    let id = f.api().new_update(&f.item).await;
    for (spec, needle) in [
        (json!({"name": "a/b", "source_type": "PUSH"}), "file name"),
        (
            json!({"name": "a", "source_type": "PULL"}),
            "uploads.pull_allow",
        ),
        (json!({"name": "a", "source_type": "SIDEWAYS"}), "SIDEWAYS"),
        (json!({"name": "a"}), "PUSH"),
        (
            json!({"name": "a", "source_type": "PUSH", "size": -1}),
            "negative",
        ),
        (
            json!({"name": "a", "source_type": "PUSH", "checksum_info": {"algorithm": "SHA256", "checksum": "zz"}}),
            "SHA256",
        ),
        (
            json!({"name": "a", "source_type": "PUSH", "checksum_info": {"algorithm": "MD5", "checksum": "00"}}),
            "SHA256",
        ),
        (
            json!({"name": "a", "source_type": "PUSH", "bogus": 1}),
            "bogus",
        ),
    ] {
        let r = f
            .api()
            .update_file_action(&id, "add", Some(spec.clone()))
            .await;
        let e = assert_api_error(r, 400, "INVALID_ARGUMENT").await;
        assert!(e.to_string().contains(needle), "{spec}: {e}");
    }
    let r = f.api().update_file_action(&id, "add", None).await;
    assert_api_error(r, 400, "INVALID_ARGUMENT").await;
    let other = "7a4c2e19-5b3d-4f60-8e2a-1d9c0b7f3e45";
    let r = f
        .api()
        .update_file_action(
            other,
            "add",
            Some(json!({"name": "a", "source_type": "PUSH"})),
        )
        .await;
    assert_api_error(r, 404, "NOT_FOUND").await;
    assert_api_error(f.api().update_files(other).await, 404, "NOT_FOUND").await;
}

#[tokio::test]
async fn bad_uploads_are_refused_and_a_retry_starts_over() {
    let f = fixture().await;
    let id = f.api().new_update(&f.item).await;
    let bytes = b"exactly these bytes".to_vec();
    let info = f.api().add_upload(&id, "disk.vmdk", Some(&bytes)).await;
    let uri = uri_of(&info);

    // More bytes than declared.
    let mut more = bytes.clone();
    more.push(b'!');
    let r = f.put(&uri, &more).await;
    let e = assert_api_error(r, 400, "INVALID_ARGUMENT").await;
    assert!(e.to_string().contains("more than"), "{e}");
    let got = f.file(&id, "disk.vmdk").await;
    assert_eq!(got["status"], "ERROR");
    let v: Value = f
        .api()
        .update_file_action(&id, "validate", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["has_errors"], true);
    assert_eq!(v["invalid_files"][0]["name"], "disk.vmdk");

    // Fewer bytes, or the same number with another checksum.
    let r = f.put(&uri, &bytes[1..]).await;
    assert_api_error(r, 400, "INVALID_ARGUMENT").await;
    let mut other = bytes.clone();
    other[0] = b'E';
    let r = f.put(&uri, &other).await;
    let e = assert_api_error(r, 400, "INVALID_ARGUMENT").await;
    assert!(e.to_string().contains("checksum"), "{e}");
    assert_eq!(f.file(&id, "disk.vmdk").await["status"], "ERROR");
    let r = f.api().update_action(&id, "complete", None).await;
    assert_api_error(r, 400, "NOT_ALLOWED_IN_CURRENT_STATE").await;

    // Tampered token, other file name, download path: refused alike.
    let tampered = uri.replacen("/cls/upload/", "/cls/upload/x", 1);
    assert_api_error(f.put(&tampered, &bytes).await, 404, "NOT_FOUND").await;
    let renamed = uri.replace("disk.vmdk", "vm.ovf");
    assert_api_error(f.put(&renamed, &bytes).await, 404, "NOT_FOUND").await;
    let as_download = uri.replace("/cls/upload/", "/cls/data/");
    assert_eq!(
        f.app
            .client
            .get(&as_download)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    // Sending again starts over and succeeds.
    assert_eq!(f.put(&uri, &bytes).await.status(), 200);
    let got = f.file(&id, "disk.vmdk").await;
    assert_eq!(got["status"], "READY");
    assert!(got.get("error_message").is_none(), "{got}");
    assert_eq!(
        f.api().update_action(&id, "complete", None).await.status(),
        204
    );
    let files: Vec<Value> = f.api().item_files(&f.item).await.json().await.unwrap();
    let disk = files.iter().find(|x| x["name"] == "disk.vmdk").unwrap();
    assert_eq!(disk["checksum_info"]["checksum"], sha256_hex(&bytes));
}

#[tokio::test]
async fn cancel_revokes_upload_uris_and_publishes_nothing() {
    let f = fixture().await;
    let id = f.api().new_update(&f.item).await;
    let info = f.api().add_upload(&id, "disk.vmdk", None).await;
    let uri = uri_of(&info);
    assert_eq!(f.put(&uri, b"new disk").await.status(), 200);
    assert_eq!(
        f.api().update_action(&id, "cancel", None).await.status(),
        204
    );
    assert_api_error(f.put(&uri, b"new disk").await, 404, "NOT_FOUND").await;
    let after = f.file(&id, "disk.vmdk").await;
    assert!(after.get("upload_endpoint").is_none(), "{after}");
    assert_eq!(f.api().item(&f.item).await["content_version"], "1");
}

/// The update session's row version and its stored lease, in seconds from now.
async fn update_row(app: &TestApp, id: &str) -> (String, f64) {
    sqlx::query_as(
        "SELECT xmin::text, EXTRACT(EPOCH FROM expiration_time - now())::float8 \
         FROM update_sessions WHERE id = $1",
    )
    .bind(uuid::Uuid::parse_str(id).unwrap())
    .fetch_one(app.db.pool())
    .await
    .unwrap()
}

/// Reads of an update session renew its lease as download sessions do: the
/// row is written only once the stored expiry lags by more than the
/// granularity (5 s for the 300 s lease), so a read in the steady state
/// writes nothing.
#[tokio::test]
async fn reads_renew_the_lease_only_when_it_lags() {
    let f = fixture().await;
    let api = f.api();
    let id = api.new_update(&f.item).await;
    let (before, _) = update_row(&f.app, &id).await;
    for _ in 0..20 {
        assert_eq!(api.get_update(&id).await.status(), StatusCode::OK);
        assert_eq!(api.update_files(&id).await.status(), StatusCode::OK);
    }
    assert_eq!(
        update_row(&f.app, &id).await.0,
        before,
        "a read wrote the row"
    );
    sqlx::query(
        "UPDATE update_sessions SET expiration_time = now() + interval '290 seconds' WHERE id = $1",
    )
    .bind(uuid::Uuid::parse_str(&id).unwrap())
    .execute(f.app.db.pool())
    .await
    .unwrap();
    let model = api.update(&id).await;
    let (_, left) = update_row(&f.app, &id).await;
    assert!(left > 299.0, "a due renewal was not written: {left} s left");
    let shown =
        chrono::DateTime::parse_from_rfc3339(model["expiration_time"].as_str().unwrap()).unwrap();
    assert!(
        (shown.timestamp() - chrono::Utc::now().timestamp()) > 298,
        "the answer shows the renewed expiry: {model}"
    );
}

#[tokio::test]
async fn idle_update_sessions_expire() {
    let f = fixture_with(0, |s| s.sessions.timeout_seconds = 1).await;
    let id = f.api().new_update(&f.item).await;
    let info = f.api().add_upload(&id, "disk.vmdk", None).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_api_error(f.api().get_update(&id).await, 404, "NOT_FOUND").await;
    assert_api_error(f.put(&uri_of(&info), b"late").await, 404, "NOT_FOUND").await;
    // An expired session no longer holds the item.
    let again = f.api().new_update(&f.item).await;
    assert_ne!(again, id);
    assert_eq!(f.app.db.expire_update_sessions(100).await.unwrap(), 0);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM update_sessions")
        .fetch_one(f.app.db.pool())
        .await
        .unwrap();
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn upload_status_codes_for_unknown_routes() {
    let f = fixture().await;
    let r = f
        .app
        .client
        .put(f.app.url("/cls/upload/garbage/x.bin"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

// ------------------------------------------------------------------- /rest

const REST_UPDATES: &str = "/rest/com/vmware/content/library/item/update-session";
const REST_UPDATE_FILES: &str = "/rest/com/vmware/content/library/item/updatesession/file";

#[tokio::test]
async fn rest_surface_every_operation() {
    let f = fixture().await;
    let rest = f.app.rest(&f.token).0;
    // Create (create_spec wrapping, client_token), busy, get, list.
    let body = json!({"client_token": "t1", "create_spec": {"library_item_id": f.item}});
    let id = value_of(rest.post(REST_UPDATES, Some(body.clone())).await).await;
    let id = id.as_str().unwrap().to_string();
    assert_eq!(
        value_of(rest.post(REST_UPDATES, Some(body)).await).await,
        id.as_str()
    );
    let bob = f.app.user("bob", UPLOADER).await;
    let busy = json!({"create_spec": {"library_item_id": f.item}});
    let r = f.app.rest(&bob).0.post(REST_UPDATES, Some(busy)).await;
    assert_rest_error(r, 400, "RESOURCE_BUSY").await;
    let s = value_of(rest.get(&format!("{REST_UPDATES}/id:{id}")).await).await;
    assert_eq!(s["state"], "ACTIVE");
    assert_eq!(value_of(rest.get(REST_UPDATES).await).await, json!([id]));
    let listed = rest
        .post(
            &format!("{REST_UPDATES}?~action=list"),
            Some(json!({"library_item_id": f.item})),
        )
        .await;
    assert_eq!(value_of(listed).await, json!([id]));
    let r = rest.get(&format!("{REST_UPDATES}/id:nope")).await;
    assert_rest_error(r, 404, "NOT_FOUND").await;

    // Files: add, get, list, validate, upload, remove.
    let file_path = format!("{REST_UPDATE_FILES}/id:{id}");
    let add = json!({"file_spec": {"name": "disk.vmdk", "source_type": "PUSH", "size": 3}});
    let info = value_of(
        rest.post(&format!("{file_path}?~action=add"), Some(add))
            .await,
    )
    .await;
    assert_eq!(info["status"], "WAITING_FOR_TRANSFER");
    let r = rest
        .post(
            &format!("{file_path}?~action=add"),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_rest_error(r, 400, "INVALID_ARGUMENT").await;
    let v = value_of(
        rest.post(&format!("{file_path}?~action=validate"), None)
            .await,
    )
    .await;
    assert_eq!(v["missing_files"], json!(["disk.vmdk"]));
    assert_eq!(f.put(&uri_of(&info), b"new").await.status(), 200);
    let got = rest
        .post(
            &format!("{file_path}?~action=get"),
            Some(json!({"file_name": "disk.vmdk"})),
        )
        .await;
    assert_eq!(value_of(got).await["status"], "READY");
    let r = rest
        .post(
            &format!("{file_path}?~action=get"),
            Some(json!({"file_name": "nope"})),
        )
        .await;
    assert_rest_error(r, 400, "INVALID_ARGUMENT").await;
    let listed = value_of(rest.post(&format!("{file_path}?~action=list"), None).await).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let listed = value_of(
        rest.get(&format!("{REST_UPDATE_FILES}?update_session_id={id}"))
            .await,
    )
    .await;
    assert_eq!(listed[0]["name"], "disk.vmdk");
    let r = rest
        .post(
            &format!("{file_path}?~action=remove"),
            Some(json!({"file_name": "vm.ovf"})),
        )
        .await;
    assert_void(r).await;

    // Actions: keep-alive, delete refused while ACTIVE, complete, delete.
    let r = rest
        .post(
            &format!("{REST_UPDATES}/id:{id}?~action=keep-alive"),
            Some(json!({"progress": 10})),
        )
        .await;
    assert_void(r).await;
    let r = rest.delete(&format!("{REST_UPDATES}/id:{id}")).await;
    assert_rest_error(r, 400, "NOT_ALLOWED_IN_CURRENT_STATE").await;
    assert_void(
        rest.post(&format!("{REST_UPDATES}/id:{id}?~action=complete"), None)
            .await,
    )
    .await;
    assert_eq!(f.item_file_names().await, vec!["disk.vmdk"]);
    let r = rest
        .post(
            &format!("{REST_UPDATES}/id:{id}?~action=fail"),
            Some(json!({"client_error_message": "x"})),
        )
        .await;
    assert_rest_error(r, 400, "NOT_ALLOWED_IN_CURRENT_STATE").await;
    assert_void(rest.delete(&format!("{REST_UPDATES}/id:{id}")).await).await;

    // cancel and fail on fresh sessions.
    let id2 = value_of(
        rest.post(
            REST_UPDATES,
            Some(json!({"create_spec": {"library_item_id": f.item}})),
        )
        .await,
    )
    .await;
    let id2 = id2.as_str().unwrap();
    assert_void(
        rest.post(&format!("{REST_UPDATES}/id:{id2}?~action=cancel"), None)
            .await,
    )
    .await;
    let id3 = value_of(
        rest.post(
            REST_UPDATES,
            Some(json!({"create_spec": {"library_item_id": f.item}})),
        )
        .await,
    )
    .await;
    let id3 = id3.as_str().unwrap();
    let r = rest
        .post(
            &format!("{REST_UPDATES}/id:{id3}?~action=fail"),
            Some(json!({"client_error_message": "gave up"})),
        )
        .await;
    assert_void(r).await;
    let s = value_of(rest.get(&format!("{REST_UPDATES}/id:{id3}")).await).await;
    assert_eq!(s["state"], "ERROR");
    let r = f.app.rest_anonymous().0.get(REST_UPDATES).await;
    assert_rest_error(r, 401, "UNAUTHENTICATED").await;
}

// --------------------------------------------------------------- JSON-RPC

const RPC_US: &str = "com.vmware.content.library.item.update_session";
const RPC_UF: &str = "com.vmware.content.library.item.updatesession.file";
const US_MODEL: &str = "com.vmware.content.library.item.update_session_model";

#[tokio::test]
async fn jsonrpc_every_operation_as_the_sdk_sends_it() {
    let f = fixture().await;
    let rpc = f.app.rpc();
    let token = rpc.login("alice", "pw-for-tests").await;
    let sec = session_ctx(&token);
    let create = json!({
        "client_token": {"OPTIONAL": "rpc-1"},
        "create_spec": {"STRUCTURE": {US_MODEL: {
            "id": {"OPTIONAL": null},
            "library_item_id": {"OPTIONAL": f.item},
            "library_item_content_version": {"OPTIONAL": null},
            "error_message": {"OPTIONAL": null},
            "client_progress": {"OPTIONAL": null},
            "state": {"OPTIONAL": null},
            "expiration_time": {"OPTIONAL": null},
            "preview_info": {"OPTIONAL": null},
            "warning_behavior": {"OPTIONAL": null},
        }}},
    });
    let id = rpc.output(&token, RPC_US, "create", create.clone()).await;
    let id = id.as_str().unwrap().to_string();
    assert_eq!(
        rpc.output(&token, RPC_US, "create", create).await,
        id.as_str()
    );
    let us = json!({"update_session_id": id});
    let got = rpc.output(&token, RPC_US, "get", us.clone()).await;
    let model = structure(&got, US_MODEL);
    assert_eq!(model["state"], json!({"OPTIONAL": "ACTIVE"}));
    let listed = rpc
        .output(
            &token,
            RPC_US,
            "list",
            json!({"library_item_id": {"OPTIONAL": f.item}}),
        )
        .await;
    assert_eq!(listed, json!([id]));
    let ka = json!({"update_session_id": id, "client_progress": {"OPTIONAL": 5}});
    assert_eq!(
        rpc.output(&token, RPC_US, "keep_alive", ka).await,
        Value::Null
    );
    rpc.error(
        sec.clone(),
        RPC_US,
        "delete",
        us.clone(),
        "not_allowed_in_current_state",
    )
    .await;

    // The AddSpec as the SDK's sample helper sends it.
    let data = b"uploaded through the SDK".to_vec();
    let add = json!({
        "update_session_id": id,
        "file_spec": {"STRUCTURE": {"com.vmware.content.library.item.updatesession.file.add_spec": {
            "name": "disk.vmdk",
            "source_type": "PUSH",
            "source_endpoint": {"OPTIONAL": null},
            "size": {"OPTIONAL": data.len()},
            "checksum_info": {"OPTIONAL": {"STRUCTURE": {"com.vmware.content.library.item.file.checksum_info": {
                "algorithm": {"OPTIONAL": "SHA256"}, "checksum": sha256_hex(&data)}}}},
        }}},
    });
    let info = rpc.output(&token, RPC_UF, "add", add).await;
    let info = structure(
        &info,
        "com.vmware.content.library.item.updatesession.file.info",
    );
    assert_eq!(info["status"], "WAITING_FOR_TRANSFER");
    let uri = info["upload_endpoint"]["OPTIONAL"]["STRUCTURE"]
        ["com.vmware.content.library.item.transfer_endpoint"]["uri"]
        .as_str()
        .unwrap()
        .to_string();
    let v = rpc.output(&token, RPC_UF, "validate", us.clone()).await;
    let v = structure(
        &v,
        "com.vmware.content.library.item.updatesession.file.validation_result",
    );
    assert_eq!(v["has_errors"], true);
    assert_eq!(v["missing_files"], json!(["disk.vmdk"]));
    assert_eq!(
        f.send(reqwest::Method::POST, &uri, data.clone())
            .await
            .status(),
        200
    );
    let one = json!({"update_session_id": id, "file_name": "disk.vmdk"});
    let got = rpc.output(&token, RPC_UF, "get", one).await;
    assert_eq!(
        structure(
            &got,
            "com.vmware.content.library.item.updatesession.file.info"
        )["status"],
        "READY"
    );
    let all = rpc.output(&token, RPC_UF, "list", us.clone()).await;
    assert_eq!(all.as_array().unwrap().len(), 1);
    let rm = json!({"update_session_id": id, "file_name": "vm.ovf"});
    assert_eq!(rpc.output(&token, RPC_UF, "remove", rm).await, Value::Null);
    let rm = json!({"update_session_id": id, "file_name": "nope"});
    rpc.error(sec.clone(), RPC_UF, "remove", rm, "invalid_argument")
        .await;
    assert_eq!(
        rpc.output(&token, RPC_US, "complete", us.clone()).await,
        Value::Null
    );
    assert_eq!(f.item_file_names().await, vec!["disk.vmdk"]);
    assert_eq!(
        rpc.output(&token, RPC_US, "delete", us.clone()).await,
        Value::Null
    );
    rpc.error(sec.clone(), RPC_US, "get", us, "not_found").await;

    // busy, cancel, fail
    let new = |t: &str| json!({"client_token": {"OPTIONAL": t}, "create_spec": {"STRUCTURE": {US_MODEL: {"library_item_id": {"OPTIONAL": f.item}}}}});
    let id2 = rpc.output(&token, RPC_US, "create", new("a")).await;
    f.app.add_user("bob", "pw-for-tests", UPLOADER).await;
    let bob = rpc.login("bob", "pw-for-tests").await;
    rpc.error(
        session_ctx(&bob),
        RPC_US,
        "create",
        new("b"),
        "resource_busy",
    )
    .await;
    assert_eq!(
        rpc.output(&token, RPC_US, "cancel", json!({"update_session_id": id2}))
            .await,
        Value::Null
    );
    let id3 = rpc.output(&token, RPC_US, "create", new("c")).await;
    let fail = json!({"update_session_id": id3, "client_error_message": {"OPTIONAL": "gave up"}});
    assert_eq!(rpc.output(&token, RPC_US, "fail", fail).await, Value::Null);
    rpc.error(
        session_ctx(&bob),
        RPC_US,
        "get",
        json!({"update_session_id": id3}),
        "not_found",
    )
    .await;
}

// -------------------------------------------------------- the official SDK

/// The official Python SDK uploads a file as VMware's sample helper does and
/// downloads it back (tests/sdk/test_sdk_upload.py).
#[tokio::test]
async fn official_python_sdk_uploads() {
    if std::env::var_os("SKIP_SDK_TESTS").is_some() {
        eprintln!("SKIP_SDK_TESTS is set: official Python SDK not run");
        return;
    }
    let python = crate::jsonrpc::sdk_python().await;
    let app = spawn_app().await;
    let item = app.import("lib", "vm", &[("vm.ovf", b"<Envelope/>")]).await;
    app.add_user("administrator@vsphere.local", "Secr3t!", UPLOADER)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("photon.iso");
    std::fs::write(&path, pattern(2_500_000)).unwrap();
    let script = crate::jsonrpc::manifest_dir().join("tests/sdk/test_sdk_upload.py");
    let child = tokio::process::Command::new(&python)
        .arg(&script)
        .env("SDK_URL", &app.address)
        .env("SDK_USER", "administrator@vsphere.local")
        .env("SDK_PASSWORD", "Secr3t!")
        .env("SDK_ITEM_ID", &item)
        .env("SDK_UPLOAD_PATH", &path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the SDK script");
    let out = tokio::time::timeout(Duration::from_secs(180), child.wait_with_output())
        .await
        .expect("SDK script finishes within 3 minutes")
        .expect("SDK script output");
    println!(
        "--- SDK stdout ---\n{}\n--- SDK stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "SDK upload run failed ({})",
        out.status
    );
    let files: Vec<Value> = app
        .api(&app.login("administrator@vsphere.local", "Secr3t!").await)
        .item_files(&item)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(files.len(), 2, "{files:?}");
}

// -------------------------------------------------------------------- PULL

#[tokio::test]
async fn pull_fetches_from_allowed_hosts_only() {
    let f = fixture_with(2, |s| s.uploads.pull_allow = vec!["127.0.0.1".into()]).await;
    let source = pattern(1 << 20);
    let src_item = f.app.import("lib", "source", &[("src.bin", &source)]).await;
    let dl = f.api().new_session(&src_item).await;
    f.api().prepare_file(&dl, "src.bin").await;
    let info = f
        .api()
        .wait_prepared(&dl, "src.bin", Duration::from_secs(30))
        .await;
    let uri = info["download_endpoint"]["uri"]
        .as_str()
        .unwrap()
        .to_string();

    let id = f.api().new_update(&f.item).await;
    // Not an allowed host: refused, naming the setting.
    let r = f
        .api()
        .update_file_action(
            &id,
            "add",
            Some(json!({"name": "x", "source_type": "PULL",
            "source_endpoint": {"uri": "http://localhost:9/x"}})),
        )
        .await;
    let e = assert_api_error(r, 400, "INVALID_ARGUMENT").await;
    assert!(e.to_string().contains("uploads.pull_allow"), "{e}");
    // A wrong checksum ends in ERROR; the right one in READY.
    let add = |name: &str, sha: String| {
        json!({"name": name, "source_type": "PULL", "source_endpoint": {"uri": uri},
            "size": source.len(), "checksum_info": {"algorithm": "SHA256", "checksum": sha}})
    };
    let r = f
        .api()
        .update_file_action(&id, "add", Some(add("bad.bin", "0".repeat(64))))
        .await;
    assert_eq!(r.status(), 200);
    let r = f
        .api()
        .update_file_action(&id, "add", Some(add("disk.vmdk", sha256_hex(&source))))
        .await;
    assert_eq!(r.status(), 200);
    let added: Value = r.json().await.unwrap();
    assert_eq!(added["source_type"], "PULL");
    let wait = |name: &'static str| {
        let f = &f;
        let id = id.clone();
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            loop {
                let info = f.file(&id, name).await;
                if info["status"] == "READY" || info["status"] == "ERROR" {
                    return info;
                }
                assert!(std::time::Instant::now() < deadline, "{info}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let bad = wait("bad.bin").await;
    assert_eq!(bad["status"], "ERROR", "{bad}");
    let good = wait("disk.vmdk").await;
    assert_eq!(good["status"], "READY", "{good}");
    assert_eq!(good["bytes_transferred"], source.len());
    let r = f
        .api()
        .update_file_action(&id, "remove", Some(json!({"file_name": "bad.bin"})))
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        f.api().update_action(&id, "complete", None).await.status(),
        204
    );
    assert_eq!(f.download("disk.vmdk").await, source);
}
