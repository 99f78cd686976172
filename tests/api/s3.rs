//! Both stores on a real S3-protocol server: s3s-fs in-process on 127.0.0.1:0,
//! checking SigV4 (headers and presigned query) with one key pair. Prepare,
//! multipart staging, download with Range, readiness, and DIRECT presigned URLs
//! that the server refuses once tampered with or expired.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::{DateTime, NaiveDateTime, Utc};
use download_sessions::{
    config::{Settings, StoreSettings},
    storage::Buckets,
};
use hyper_util::rt::{TokioExecutor, TokioIo};
use reqwest::StatusCode;
use s3s::{auth::SimpleAuth, service::S3ServiceBuilder};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::helpers::*;

const ACCESS_KEY: &str = "dls-test-access-key";
const SECRET_KEY: &str = "dls-test-secret-key-0123456789abcdef";

/// One request the S3 server saw.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    query: String,
}

/// An S3 server over a temporary directory (one subdirectory per bucket).
struct S3Server {
    endpoint: String,
    root: tempfile::TempDir,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: CancellationToken,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl S3Server {
    async fn start(buckets: &[&str]) -> S3Server {
        let root = tempfile::tempdir().unwrap();
        for bucket in buckets {
            std::fs::create_dir(root.path().join(bucket)).unwrap();
        }
        let fs = s3s_fs::FileSystem::new(root.path()).unwrap();
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        tokio::spawn({
            let seen = seen.clone();
            let stop = stop.clone();
            async move {
                loop {
                    let socket = tokio::select! {
                        r = listener.accept() => match r {
                            Ok((socket, _)) => socket,
                            Err(_) => continue,
                        },
                        _ = stop.cancelled() => return,
                    };
                    let service = service.clone();
                    let seen = seen.clone();
                    let logged = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            seen.lock().unwrap().push(Seen {
                                method: req.method().to_string(),
                                path: req.uri().path().to_string(),
                                query: req.uri().query().unwrap_or("").to_string(),
                            });
                            let service = service.clone();
                            async move { hyper::service::Service::call(&service, req).await }
                        },
                    );
                    let stop = stop.clone();
                    tokio::spawn(async move {
                        let builder =
                            hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                        let conn = builder.serve_connection(TokioIo::new(socket), logged);
                        // Stopping the server drops open connections too.
                        tokio::select! {
                            _ = conn => {}
                            _ = stop.cancelled() => {}
                        }
                    });
                }
            }
        });
        S3Server {
            endpoint,
            root,
            seen,
            stop,
        }
    }

    fn settings(&self, bucket: &str) -> StoreSettings {
        StoreSettings {
            kind: "s3".into(),
            path: None,
            bucket: Some(bucket.into()),
            region: Some("us-east-1".into()),
            endpoint: Some(self.endpoint.clone()),
            access_key_id: Some(ACCESS_KEY.into()),
            secret_access_key: Some(SECRET_KEY.into()),
            path_style: true,
            allow_http: true,
            public_endpoint: None,
            direct_base: None,
        }
    }

    /// Points both stores of `s` at this server.
    fn configure(&self, s: &mut Settings) {
        s.storage.content = self.settings("content");
        s.storage.transfer = self.settings("transfer");
    }

    /// How many requests under `prefix` (`/bucket/key...`) the server saw with
    /// `method` and a query holding `query`.
    fn count(&self, prefix: &str, method: &str, query: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.path.starts_with(prefix) && s.method == method && s.query.contains(query))
            .count()
    }

    /// The file behind an object.
    fn object_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.root.path().join(bucket).join(key)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn ranged(client: &reqwest::Client, uri: &str, range: &str) -> reqwest::Response {
    client.get(uri).header("Range", range).send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_stores_on_s3_prepare_stage_multipart_and_serve_ranges() {
    let s3 = S3Server::start(&["content", "transfer"]).await;
    let app = spawn_app_with(|s| s3.configure(s)).await;

    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["stores"], true, "{ready}");

    // Larger than one 8 MiB part: staged with a multipart upload.
    let big = pseudo_random(12 << 20, 1);
    let small = pseudo_random(1000, 2);
    let item = app
        .import(
            "lib",
            "item",
            &[("disk-0.vmdk", &big), ("descriptor.ovf", &small)],
        )
        .await;
    // The import went to the content bucket, nothing to local directories.
    let big_sha = sha256_hex(&big);
    let blob = std::fs::read(s3.object_path("content", &format!("blobs/{big_sha}"))).unwrap();
    assert_eq!(blob.len(), big.len());
    assert!(!app.data_dir.join("content").exists());
    assert!(!app.data_dir.join("transfer").exists());

    let token = app.user("alice", DOWNLOADER).await;
    let session = app.api(&token).new_session(&item).await;
    for name in ["disk-0.vmdk", "descriptor.ovf"] {
        let r = app
            .api(&token)
            .prepare(&session, Some(json!({ "file_name": name })))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let info = app
        .api(&token)
        .wait_prepared(&session, "disk-0.vmdk", Duration::from_secs(60))
        .await;
    assert_eq!(info["size"], big.len() as u64, "{info}");
    assert_eq!(info["checksum_info"]["algorithm"], "SHA256");
    assert_eq!(info["checksum_info"]["checksum"], big_sha.as_str());
    let small_info = app
        .api(&token)
        .wait_prepared(&session, "descriptor.ovf", Duration::from_secs(60))
        .await;

    // The artifact lies in the transfer bucket under its content address (and
    // a suffix of its own); nothing else was written there.
    let key = artifact_key(&app, &big_sha).await;
    assert!(key.starts_with(&format!("artifacts/{big_sha}-")), "{key}");
    let artifact =
        std::fs::read(s3.object_path("transfer", &key)).expect("artifact in the transfer bucket");
    assert_eq!(sha256_hex(&artifact), big_sha);
    let mut objects: Vec<_> = std::fs::read_dir(s3.object_path("transfer", "artifacts"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    objects.sort();
    assert_eq!(objects.len(), 2, "{objects:?}");
    assert!(!s3.object_path("transfer", "staging").exists());

    // Staging the large file used a multipart upload of several parts straight
    // to its final key; the small one a single PUT. No copy, no rename.
    let seen = s3.seen();
    assert!(
        !seen
            .iter()
            .any(|s| s.path.contains("/staging/") || s.path.contains("/incoming/")),
        "{seen:#?}"
    );
    let to_staging = |s: &&Seen| s.path.starts_with("/transfer/artifacts/");
    let created = seen
        .iter()
        .filter(to_staging)
        .filter(|s| {
            s.method == "POST"
                && s.query
                    .split('&')
                    .any(|q| q == "uploads" || q == "uploads=")
        })
        .count();
    let parts = s3.count("/transfer/artifacts/", "PUT", "partNumber=");
    let completed = s3.count("/transfer/artifacts/", "POST", "uploadId=");
    let single_puts = seen
        .iter()
        .filter(to_staging)
        .filter(|s| s.method == "PUT" && s.query.is_empty())
        .count();
    assert_eq!(created, 1, "one multipart upload: {seen:#?}");
    assert!(parts >= 2, "{parts} parts: {seen:#?}");
    assert_eq!(completed, 1, "{seen:#?}");
    assert_eq!(single_puts, 1, "the small file: {seen:#?}");

    // Downloads through the service read the transfer bucket.
    let uri = info["download_endpoint"]["uri"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(uri.starts_with(&app.address), "{uri}");
    let client = reqwest::Client::new();
    let whole = client.get(&uri).send().await.unwrap();
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(
        whole.headers()["etag"].to_str().unwrap(),
        format!("\"{big_sha}\"")
    );
    assert_eq!(sha256_hex(&whole.bytes().await.unwrap()), big_sha);

    let r = ranged(&client, &uri, "bytes=1000-1999").await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        r.headers()["content-range"].to_str().unwrap(),
        format!("bytes 1000-1999/{}", big.len())
    );
    assert_eq!(&r.bytes().await.unwrap()[..], &big[1000..2000]);

    // Across the boundary of the first upload part.
    let (a, b) = ((8 << 20) - 10, (8 << 20) + 9);
    let r = ranged(&client, &uri, &format!("bytes={a}-{b}")).await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(&r.bytes().await.unwrap()[..], &big[a..=b]);

    let r = ranged(&client, &uri, "bytes=-100").await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(&r.bytes().await.unwrap()[..], &big[big.len() - 100..]);

    let r = ranged(&client, &uri, &format!("bytes={}-", big.len())).await;
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    let head = client.head(&uri).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        head.headers()["content-length"].to_str().unwrap(),
        big.len().to_string()
    );

    let small_uri = small_info["download_endpoint"]["uri"].as_str().unwrap();
    let got = client
        .get(small_uri)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&got[..], &small[..]);
}

/// The transfer key of the artifact of `sha`.
async fn artifact_key(app: &TestApp, sha: &str) -> String {
    sqlx::query_scalar("SELECT transfer_key FROM artifacts WHERE sha256 = $1")
        .bind(sha)
        .fetch_one(app.db.pool())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staging_on_s3_is_verified_before_its_multipart_upload_completes() {
    let s3 = S3Server::start(&["content", "transfer"]).await;
    let app = spawn_app_with(|s| s3.configure(s)).await;
    let good = pseudo_random(12 << 20, 3);
    let item = app.import("lib", "item", &[("disk.vmdk", &good)]).await;
    // The content object rots in the bucket: same size, other bytes.
    let blob = s3.object_path("content", &format!("blobs/{}", sha256_hex(&good)));
    let mut bad = good.clone();
    bad[(9 << 20) + 5] ^= 0xff;
    std::fs::write(&blob, &bad).unwrap();

    let token = app.user("alice", DOWNLOADER).await;
    let session = app.api(&token).new_session(&item).await;
    let r = app
        .api(&token)
        .prepare(&session, Some(json!({ "file_name": "disk.vmdk" })))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let info = app
        .api(&token)
        .wait_for(&session, "disk.vmdk", Duration::from_secs(60), |info| {
            info["status"] == "ERROR" || info["status"] == "PREPARED"
        })
        .await;
    assert_eq!(info["status"], "ERROR", "{info}");
    assert_eq!(
        info["error_message"]["id"],
        "com.vmware.content.library.item.downloadsession.file.checksum_mismatch"
    );
    // Parts went up, straight to the final key, but the upload was aborted,
    // never completed: no object, no artifact.
    let seen = s3.seen();
    let parts = s3.count("/transfer/artifacts/", "PUT", "partNumber=");
    let completed = s3.count("/transfer/artifacts/", "POST", "uploadId=");
    let aborted = s3.count("/transfer/artifacts/", "DELETE", "uploadId=");
    assert!(parts >= 1, "{seen:#?}");
    assert_eq!(completed, 0, "{seen:#?}");
    assert!(aborted >= 1, "{seen:#?}");
    let objects = std::fs::read_dir(s3.object_path("transfer", "artifacts"))
        .map(|d| d.flatten().count())
        .unwrap_or(0);
    assert_eq!(objects, 0);
    let artifacts: i64 = sqlx::query_scalar("SELECT count(*) FROM artifacts")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(artifacts, 0);
}

/// (X-Amz-Date, X-Amz-Expires) of a presigned URL.
fn presigned_window(uri: &str) -> (DateTime<Utc>, i64) {
    let url = url::Url::parse(uri).unwrap();
    let q = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.to_string())
            .unwrap_or_else(|| panic!("{name} missing from {uri}"))
    };
    let date = NaiveDateTime::parse_from_str(&q("X-Amz-Date"), "%Y%m%dT%H%M%SZ")
        .unwrap()
        .and_utc();
    (date, q("X-Amz-Expires").parse().unwrap())
}

async fn session_expiration(app: &TestApp, token: &str, session: &str) -> DateTime<Utc> {
    let s: Value = app
        .api(token)
        .get_session(session)
        .await
        .json()
        .await
        .unwrap();
    s["expiration_time"].as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_endpoints_are_presigned_urls_that_expire_with_the_session() {
    let s3 = S3Server::start(&["content", "transfer"]).await;
    let app = spawn_app_with(|s| {
        s3.configure(s);
        s.sessions.timeout_seconds = 4;
    })
    .await;
    let data = pseudo_random(3 << 20, 3);
    let sha = sha256_hex(&data);
    let item = app.import("lib", "direct", &[("disk.vmdk", &data)]).await;

    // DIRECT needs a session created with ContentLibrary.ReadStorage.
    let plain = app.user("bob", DOWNLOADER).await;
    let plain_session = app.api(&plain).new_session(&item).await;
    let r = app
        .api(&plain)
        .prepare(
            &plain_session,
            Some(json!({ "file_name": "disk.vmdk", "endpoint_type": "DIRECT" })),
        )
        .await;
    assert_api_error(r, 403, "UNAUTHORIZED").await;

    let token = app.user("carol", ALL_PRIVILEGES).await;
    let session = app.api(&token).new_session(&item).await;
    let r = app
        .api(&token)
        .prepare(
            &session,
            Some(json!({ "file_name": "disk.vmdk", "endpoint_type": "DIRECT" })),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let info = app
        .api(&token)
        .wait_prepared(&session, "disk.vmdk", Duration::from_secs(60))
        .await;
    let first = info["download_endpoint"]["uri"]
        .as_str()
        .unwrap()
        .to_string();
    let expires_at = session_expiration(&app, &token, &session).await;

    // A presigned URL straight into the transfer bucket, not through the service.
    assert!(
        first.starts_with(&format!("{}/transfer/artifacts/{sha}-", s3.endpoint)),
        "{first}"
    );
    assert!(first.contains("X-Amz-Signature="), "{first}");
    assert!(info["download_endpoint"]["ssl_certificate_thumbprint"].is_null());
    // It ends with the session's lease, never after it (S3 counts whole
    // seconds from a whole-second date: up to 2 s early).
    let (signed_at, valid_s) = presigned_window(&first);
    let url_end = signed_at + chrono::Duration::seconds(valid_s);
    assert!(url_end <= expires_at, "{url_end} after {expires_at}");
    assert!(
        expires_at - url_end <= chrono::Duration::seconds(3),
        "{url_end} long before {expires_at}"
    );

    // It downloads the right bytes, ranges included, with no credentials.
    let client = reqwest::Client::new();
    let r = client.get(&first).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(sha256_hex(&r.bytes().await.unwrap()), sha);
    let r = ranged(&client, &first, "bytes=10-19").await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(&r.bytes().await.unwrap()[..], &data[10..20]);

    // The S3 server checks the signature: tampered, moved to another key or
    // stripped, the URL is refused.
    let mut url = url::Url::parse(&first).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "X-Amz-Signature" {
                let mut s = v.to_string();
                let last = if s.ends_with('0') { '1' } else { '0' };
                s.pop();
                s.push(last);
                s
            } else {
                v.to_string()
            };
            (k.to_string(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    let r = client.get(url.as_str()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("SignatureDoesNotMatch"));
    let other_key = first.replace(&format!("artifacts/{sha}"), "artifacts/other");
    let r = client.get(&other_key).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let bare = first.split('?').next().unwrap();
    let r = client.get(bare).send().await.unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());

    // The session lives on (keep-alive), the URL does not: once its window is
    // over the S3 server refuses it, and `get` hands a fresh one.
    let refuse_after = url_end + chrono::Duration::milliseconds(1500);
    while Utc::now() < refuse_after {
        let r = app.api(&token).keep_alive(&session, None).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let r = client.get(&first).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("expired"));

    let info = app.api(&token).file_info(&session, "disk.vmdk").await;
    let fresh = info["download_endpoint"]["uri"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(fresh, first);
    let (fresh_signed, fresh_valid) = presigned_window(&fresh);
    let expires_at = session_expiration(&app, &token, &session).await;
    let fresh_end = fresh_signed + chrono::Duration::seconds(fresh_valid);
    assert!(fresh_end <= expires_at && fresh_end > Utc::now());
    let r = client.get(&fresh).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(sha256_hex(&r.bytes().await.unwrap()), sha);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_urls_live_at_most_direct_url_seconds_and_each_get_signs_a_fresh_one() {
    let s3 = S3Server::start(&["content", "transfer"]).await;
    let app = spawn_app_with(|s| {
        s3.configure(s);
        s.sessions.timeout_seconds = 3600;
        s.storage.direct_url_seconds = 2;
    })
    .await;
    let data = pseudo_random(100_000, 6);
    let sha = sha256_hex(&data);
    let item = app.import("lib", "bounded", &[("disk.vmdk", &data)]).await;
    let token = app.user("frank", ALL_PRIVILEGES).await;
    let session = app.api(&token).new_session(&item).await;
    let r = app
        .api(&token)
        .prepare(
            &session,
            Some(json!({ "file_name": "disk.vmdk", "endpoint_type": "DIRECT" })),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let info = app
        .api(&token)
        .wait_prepared(&session, "disk.vmdk", Duration::from_secs(60))
        .await;
    let first = info["download_endpoint"]["uri"]
        .as_str()
        .unwrap()
        .to_string();
    // The session lives an hour; its URL two seconds.
    let (signed_at, valid_s) = presigned_window(&first);
    assert_eq!(valid_s, 2, "{first}");
    let client = reqwest::Client::new();
    let r = client.get(&first).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(sha256_hex(&r.bytes().await.unwrap()), sha);

    // Each `get` signs a fresh URL.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let info = app.api(&token).file_info(&session, "disk.vmdk").await;
    let second = info["download_endpoint"]["uri"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(second, first);
    let (second_signed, second_valid) = presigned_window(&second);
    assert!(second_signed > signed_at, "{second}");
    assert_eq!(second_valid, 2);

    // Canceled, the session hands out no URL; those already handed out are
    // refused once their short window is over (the residual window).
    let r = app
        .api(&token)
        .session_action(&session, "cancel", None)
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    let info = app.api(&token).file_info(&session, "disk.vmdk").await;
    assert!(info.get("download_endpoint").is_none(), "{info}");
    let refuse_after = second_signed + chrono::Duration::milliseconds(2000 + 1500);
    while Utc::now() < refuse_after {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for uri in [&first, &second] {
        let r = client.get(uri).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(r.text().await.unwrap().contains("expired"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gone_s3_server_means_not_ready_and_503_on_downloads() {
    let s3 = S3Server::start(&["content", "transfer"]).await;
    let app = spawn_app_with(|s| s3.configure(s)).await;
    let data = pseudo_random(50_000, 5);
    let item = app.import("lib", "gone", &[("disk.vmdk", &data)]).await;
    let token = app.user("erin", DOWNLOADER).await;
    let session = app.api(&token).new_session(&item).await;
    let r = app
        .api(&token)
        .prepare(&session, Some(json!({ "file_name": "disk.vmdk" })))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let info = app
        .api(&token)
        .wait_prepared(&session, "disk.vmdk", Duration::from_secs(60))
        .await;
    let uri = info["download_endpoint"]["uri"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    s3.stop.cancel();
    let asked = Instant::now();
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    // Retries are bounded: a dead store is reported in seconds, not minutes.
    let waited = asked.elapsed();
    assert!(waited < Duration::from_secs(10), "{waited:?}");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["stores"], false, "{body}");
    assert_eq!(body["database"], true, "{body}");

    // A download cannot reach its bytes: 503 in the contract's shape, so
    // clients and balancers retry, rather than a 500.
    let asked = Instant::now();
    let r = app.client.get(&uri).send().await.unwrap();
    assert!(asked.elapsed() < Duration::from_secs(10));
    assert_api_error(r, 503, "SERVICE_UNAVAILABLE").await;
}

#[tokio::test]
async fn a_probe_tells_a_missing_bucket_and_bad_credentials() {
    let s3 = S3Server::start(&["content", "transfer"]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings("postgres://unused/db", dir.path());
    let local = Buckets::from_settings(&settings).unwrap();
    local.content.probe().await.unwrap();
    s3.configure(&mut settings);
    let stores = Buckets::from_settings(&settings).unwrap();
    stores.content.probe().await.unwrap();
    stores.transfer.probe().await.unwrap();

    settings.storage.transfer.bucket = Some("no-such-bucket".into());
    settings.storage.content.secret_access_key = Some("wrong-secret".into());
    let stores = Buckets::from_settings(&settings).unwrap();
    assert!(stores.transfer.probe().await.is_err());
    assert!(stores.content.probe().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_urls_are_signed_for_the_public_endpoint() {
    let s3 = S3Server::start(&["content", "transfer"]).await;
    // The service reaches S3 at 127.0.0.1, clients at "localhost".
    let public = s3.endpoint.replace("127.0.0.1", "localhost");
    let app = spawn_app_with(|s| {
        s3.configure(s);
        s.storage.transfer.public_endpoint = Some(public.clone());
    })
    .await;
    let data = pseudo_random(100_000, 4);
    let item = app.import("lib", "public", &[("disk.vmdk", &data)]).await;
    let token = app.user("dave", ALL_PRIVILEGES).await;
    let session = app.api(&token).new_session(&item).await;
    let r = app
        .api(&token)
        .prepare(
            &session,
            Some(json!({ "file_name": "disk.vmdk", "endpoint_type": "DIRECT" })),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let info = app
        .api(&token)
        .wait_prepared(&session, "disk.vmdk", Duration::from_secs(60))
        .await;
    let uri = info["download_endpoint"]["uri"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(uri.starts_with(&format!("{public}/transfer/")), "{uri}");

    let client = reqwest::Client::new();
    let r = client.get(&uri).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(&r.bytes().await.unwrap()[..], &data[..]);
    // The host is part of what is signed.
    let moved = uri.replace("localhost", "127.0.0.1");
    let r = client.get(&moved).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn item_storage_and_content_collection_on_s3() {
    let s3 = S3Server::start(&["content", "transfer"]).await;
    let app = spawn_app_with(|s| {
        s3.configure(s);
        s.workers.count = 0;
        s.maintenance.content_grace_seconds = 0;
    })
    .await;
    let bytes = pseudo_random(5000, 3);
    let item = app.import("lib", "item", &[("disk-0.vmdk", &bytes)]).await;
    let token = app.user("erin", ALL_PRIVILEGES).await;
    let sha = sha256_hex(&bytes);

    // An S3 content store is addressed as s3://bucket/key.
    let all: Vec<Value> = app
        .api(&token)
        .item_storage(&item)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        all[0]["storage_uris"],
        json!([format!("s3://content/blobs/{sha}")])
    );
    assert_eq!(
        all[0]["storage_backing"],
        json!({"type": "OTHER", "storage_uri": "s3://content/"})
    );

    // Deleting the item leaves the bytes unreferenced: the collector deletes the object.
    let blob = s3.object_path("content", &format!("blobs/{sha}"));
    assert!(blob.exists());
    assert_eq!(
        app.api(&token).delete_item(&item).await.status(),
        StatusCode::NO_CONTENT
    );
    let stores = download_sessions::storage::Buckets::from_settings(&app.settings).unwrap();
    let report = download_sessions::worker::maintenance_pass(&app.db, &stores, &app.settings)
        .await
        .unwrap();
    assert_eq!(report.content_deleted, 1);
    assert!(!blob.exists());
}

/// Uploads on S3: with a declared checksum the bytes go as a multipart upload
/// straight to the content key, completed only once verified (a wrong checksum
/// aborts it: nothing under the key, no copy); without one they go to a key of
/// their own and are renamed. Complete publishes both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_on_s3_complete_their_multipart_upload_only_when_verified() {
    let s3 = S3Server::start(&["content", "transfer"]).await;
    let app = spawn_app_with(|s| {
        s3.configure(s);
        s.workers.count = 0;
    })
    .await;
    let item = app.import("lib", "item", &[("old.bin", b"old")]).await;
    let token = app
        .user("up", &["System.Read", "ContentLibrary.UpdateSession"])
        .await;
    let api = app.api(&token);
    let id = api.new_update(&item).await;
    let big = pseudo_random(20 << 20, 5);
    let sha = sha256_hex(&big);
    let info = api.add_upload(&id, "disk.vmdk", Some(&big)).await;
    let uri = info["upload_endpoint"]["uri"].as_str().unwrap().to_string();

    // Same size, one byte off: refused, the multipart upload aborted.
    let mut bad = big.clone();
    bad[(13 << 20) + 1] ^= 0xff;
    let r = app.client.put(&uri).body(bad).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let key_path = format!("/content/blobs/{sha}");
    let seen = s3.seen();
    let to_key = |s: &&Seen| s.path == key_path;
    assert!(
        seen.iter()
            .filter(to_key)
            .any(|s| s.method == "PUT" && s.query.contains("partNumber=")),
        "{seen:#?}"
    );
    assert!(
        !seen
            .iter()
            .filter(to_key)
            .any(|s| s.method == "POST" && s.query.contains("uploadId=")),
        "{seen:#?}"
    );
    assert!(!s3.object_path("content", &format!("blobs/{sha}")).exists());

    // The right bytes: completed under the key, no copy.
    let r = app.client.put(&uri).body(big.clone()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
    assert_eq!(
        std::fs::read(s3.object_path("content", &format!("blobs/{sha}"))).unwrap(),
        big
    );

    // No checksum declared: a key of its own, then renamed.
    let notes = api.add_upload(&id, "notes.txt", None).await;
    let r = app
        .client
        .post(notes["upload_endpoint"]["uri"].as_str().unwrap())
        .body("notes")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(api.update_action(&id, "complete", None).await.status(), 204);
    let files: Vec<Value> = api.item_files(&item).await.json().await.unwrap();
    let mut names: Vec<&str> = files.iter().map(|f| f["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, vec!["disk.vmdk", "notes.txt", "old.bin"]);
    let notes_key = format!("blobs/{}", sha256_hex(b"notes"));
    assert_eq!(
        std::fs::read(s3.object_path("content", &notes_key)).unwrap(),
        b"notes"
    );
}
