//! The data plane: downloading prepared files through their signed HTTPS
//! endpoints: bodies, HEAD, Range/If-Range, refusals, revocation and leases.
//! Files are made PREPARED by a fixture that leaves exactly the state the
//! prepare workers leave, so these tests do not depend on the workers.

use std::time::{Duration, Instant};

use download_sessions::domain::SessionId;
use futures_util::StreamExt;
use reqwest::{header, Response, StatusCode};
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::helpers::*;

const NOT_FOUND_ID: &str =
    "com.vmware.content.library.item.downloadsession.file.endpoint_not_found";

struct Fixture {
    app: TestApp,
    token: String,
    session: String,
}

const BIG: usize = 3 * (1 << 20) + 17;

async fn fixture_with(
    files: &[(&str, &[u8])],
    tweak: impl FnOnce(&mut download_sessions::config::Settings),
) -> Fixture {
    let app = spawn_app_with(|s| {
        // No worker may touch the rows the fixture sets up.
        s.workers.count = 0;
        tweak(s)
    })
    .await;
    let item = app.import("lib", "vm", files).await;
    let token = app.user("alice", DOWNLOADER).await;
    let session = app.api(&token).new_session(&item).await;
    Fixture {
        app,
        token,
        session,
    }
}

/// The usual files: empty, one byte, a few MiB, and a name with a space.
async fn fixture() -> (Fixture, Vec<u8>) {
    let big = pattern(BIG);
    let f = fixture_with(
        &[
            ("empty.bin", b""),
            ("one.bin", b"x"),
            ("disk-0.vmdk", &big),
            ("my disk.iso", b"iso bytes"),
        ],
        |_| {},
    )
    .await;
    (f, big)
}

async fn db(app: &TestApp) -> PgConnection {
    PgConnection::connect(&app.db_url).await.unwrap()
}

/// Makes a file PREPARED exactly as a prepare worker does: the bytes staged
/// in the transfer store under `artifacts/<sha256>`, the artifact recorded,
/// the file row PREPARED with an HTTPS endpoint, size and checksum.
pub(crate) async fn make_prepared(app: &TestApp, session: &str, name: &str) {
    let session = Uuid::parse_str(session).unwrap();
    let mut conn = db(app).await;
    let (sha256, size, content_key): (String, i64, String) = sqlx::query_as(
        "SELECT expected_sha256, expected_size, content_key FROM download_files \
         WHERE session_id = $1 AND name = $2",
    )
    .bind(session)
    .bind(name)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let bytes = std::fs::read(app.data_dir.join("content").join(&content_key)).unwrap();
    assert_eq!(bytes.len() as i64, size);
    assert_eq!(sha256_hex(&bytes), sha256);
    let key = format!("artifacts/{sha256}");
    let dest = app.data_dir.join("transfer").join(&key);
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::write(&dest, &bytes).unwrap();
    sqlx::query(
        "INSERT INTO artifacts (sha256, size, transfer_key) VALUES ($1, $2, $3) \
         ON CONFLICT (sha256) DO NOTHING",
    )
    .bind(&sha256)
    .bind(size)
    .bind(&key)
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE download_files SET status = 'PREPARED', endpoint_type = 'HTTPS', size = $3, \
             checksum = $4, bytes_transferred = $3, artifact_sha256 = $4, \
             lease_owner = NULL, lease_until = NULL, updated_at = now() \
         WHERE session_id = $1 AND name = $2",
    )
    .bind(session)
    .bind(name)
    .bind(size)
    .bind(&sha256)
    .execute(&mut conn)
    .await
    .unwrap();
    // A change made outside the service reaches the instance's validity cache
    // through NOTIFY; wait for it, so the scenario goes on from this state.
    let start = std::time::Instant::now();
    loop {
        let entry = app.validity.session(SessionId(session)).await.unwrap();
        let file = entry
            .as_ref()
            .and_then(|e| e.files.iter().find(|f| f.state.name == name));
        if file.is_some_and(|f| f.staged.is_some()) {
            break;
        }
        assert!(
            start.elapsed() < STALENESS,
            "{name} not PREPARED in the cache"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// File.Info of `name` over /api.
async fn file_info(f: &Fixture, name: &str) -> Value {
    f.app.api(&f.token).file_info(&f.session, name).await
}

/// Prepares `name` and returns its download URI as the API hands it out.
async fn prepared_uri(f: &Fixture, name: &str) -> String {
    make_prepared(&f.app, &f.session, name).await;
    let info = file_info(f, name).await;
    assert_eq!(info["status"], "PREPARED", "{info}");
    info["download_endpoint"]["uri"]
        .as_str()
        .unwrap_or_else(|| panic!("no endpoint: {info}"))
        .to_string()
}

async fn fetch(app: &TestApp, uri: &str, headers: &[(&str, &str)]) -> Response {
    let mut r = app.client.get(uri);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.send().await.unwrap()
}

fn header_of<'a>(r: &'a Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

/// Asserts the one refusal answer every invalid URI gets; returns the body.
async fn assert_refused(r: Response) -> Value {
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error_type"], "NOT_FOUND", "{body}");
    assert_eq!(body["messages"][0]["id"], NOT_FOUND_ID, "{body}");
    assert_eq!(body["messages"][0]["args"], json!([]), "{body}");
    assert!(body["messages"][0]["default_message"].is_string(), "{body}");
    body
}

async fn expiration(app: &TestApp, session: &str) -> chrono::DateTime<chrono::Utc> {
    sqlx::query_scalar("SELECT expiration_time FROM download_sessions WHERE id = $1")
        .bind(Uuid::parse_str(session).unwrap())
        .fetch_one(&mut db(app).await)
        .await
        .unwrap()
}

#[tokio::test]
async fn full_downloads_match_their_checksums() {
    let (f, big) = fixture().await;
    for (name, bytes, ctype) in [
        ("empty.bin", &b""[..], "application/octet-stream"),
        ("one.bin", &b"x"[..], "application/octet-stream"),
        ("disk-0.vmdk", &big[..], "application/octet-stream"),
    ] {
        let uri = prepared_uri(&f, name).await;
        let info = file_info(&f, name).await;
        let sha = sha256_hex(bytes);
        assert_eq!(info["checksum_info"]["algorithm"], "SHA256");
        assert_eq!(info["checksum_info"]["checksum"], sha.as_str());
        assert_eq!(info["size"], bytes.len());

        let r = fetch(&f.app, &uri, &[]).await;
        assert_eq!(r.status(), StatusCode::OK, "{name}");
        assert_eq!(header_of(&r, "content-length"), bytes.len().to_string());
        assert_eq!(header_of(&r, "etag"), format!("\"{sha}\""));
        assert_eq!(header_of(&r, "accept-ranges"), "bytes");
        assert_eq!(header_of(&r, "content-type"), ctype);
        assert_eq!(header_of(&r, "cache-control"), "private, no-store");
        assert_eq!(header_of(&r, "x-content-type-options"), "nosniff");
        assert!(header_of(&r, "content-disposition").starts_with("attachment;"));
        assert!(r.headers().get("last-modified").is_some());
        assert!(r.headers().get("content-range").is_none());
        assert!(r.headers().get("transfer-encoding").is_none());
        let body = r.bytes().await.unwrap();
        assert_eq!(body.len(), bytes.len(), "{name}");
        assert_eq!(sha256_hex(&body), sha, "{name}");
    }
}

/// `dls_download_bytes_total` as /metrics shows it.
async fn download_bytes_metric(app: &TestApp) -> u64 {
    let text = app.metrics_text().await;
    text.lines()
        .find_map(|l| l.strip_prefix("dls_download_bytes_total "))
        .expect("the counter is exported")
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn served_bytes_are_counted_in_the_metrics() {
    let (f, big) = fixture().await;
    let uri = prepared_uri(&f, "disk-0.vmdk").await;
    let before = download_bytes_metric(&f.app).await;
    let body = fetch(&f.app, &uri, &[]).await.bytes().await.unwrap();
    assert_eq!(body.len(), big.len());
    // Process-wide counter: other tests may add to it, never take away.
    let after = download_bytes_metric(&f.app).await;
    assert!(after - before >= big.len() as u64, "{before} -> {after}");
}

#[tokio::test]
async fn head_describes_without_a_body() {
    let (f, big) = fixture().await;
    let uri = prepared_uri(&f, "disk-0.vmdk").await;
    let r = f.app.client.head(&uri).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header_of(&r, "content-length"), BIG.to_string());
    assert_eq!(header_of(&r, "etag"), format!("\"{}\"", sha256_hex(&big)));
    assert_eq!(header_of(&r, "accept-ranges"), "bytes");
    assert!(r.bytes().await.unwrap().is_empty());
    // Range is defined for GET only: HEAD describes the whole file.
    let r = f
        .app
        .client
        .head(&uri)
        .header("range", "bytes=0-0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header_of(&r, "content-length"), BIG.to_string());
    // The connection is still usable afterwards (no stray body bytes).
    let r = fetch(&f.app, &uri, &[("range", "bytes=1-2")]).await;
    assert_eq!(r.bytes().await.unwrap(), &big[1..3]);
    // An unknown URI answers HEAD with the refusal status.
    let r = f
        .app
        .client
        .head(f.app.url("/cls/data/x/y"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn ranges() {
    let (f, big) = fixture().await;
    let uri = prepared_uri(&f, "disk-0.vmdk").await;
    let size = BIG as u64;
    let etag = format!("\"{}\"", sha256_hex(&big));
    let cases: &[(&str, u64, u64)] = &[
        ("bytes=0-0", 0, 0),
        (
            &format!("bytes={}-{}", size - 1, size - 1),
            size - 1,
            size - 1,
        ),
        ("bytes=-10", size - 10, size - 1),
        ("bytes=1048570-", 1_048_570, size - 1),
        ("bytes=100-199", 100, 199),
        ("bytes=5-99999999999", 5, size - 1),
    ];
    for (range, start, end) in cases {
        let r = fetch(&f.app, &uri, &[("range", range)]).await;
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            header_of(&r, "content-range"),
            format!("bytes {start}-{end}/{size}"),
            "{range}"
        );
        assert_eq!(
            header_of(&r, "content-length"),
            (end - start + 1).to_string()
        );
        assert_eq!(header_of(&r, "etag"), etag);
        let body = r.bytes().await.unwrap();
        assert_eq!(&body[..], &big[*start as usize..=*end as usize], "{range}");
    }

    // Nothing at or past the end: 416 naming the size.
    for range in [
        format!("bytes={size}-"),
        format!("bytes={}-{}", size + 5, size + 9),
        "bytes=-0".into(),
    ] {
        let r = fetch(&f.app, &uri, &[("range", &range)]).await;
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
        assert_eq!(header_of(&r, "content-range"), format!("bytes */{size}"));
        assert!(r.bytes().await.unwrap().is_empty());
    }

    // Invalid syntax and several ranges are ignored: the full body.
    for range in ["bytes=5-2", "bytes=abc", "lines=0-1", "bytes=0-1,5-6"] {
        let r = fetch(&f.app, &uri, &[("range", range)]).await;
        assert_eq!(r.status(), StatusCode::OK, "{range}");
        assert!(r.headers().get("content-range").is_none());
        assert_eq!(sha256_hex(&r.bytes().await.unwrap()), sha256_hex(&big));
    }

    // If-Range: the current ETag honours the Range, anything else gets it all.
    let r = fetch(
        &f.app,
        &uri,
        &[("range", "bytes=10-19"), ("if-range", &etag)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.bytes().await.unwrap(), &big[10..20]);
    let stale = format!("\"{}\"", "0".repeat(64));
    for if_range in [
        stale.as_str(),
        &format!("W/{etag}"),
        "Mon, 01 Jan 2001 00:00:00 GMT",
    ] {
        let r = fetch(
            &f.app,
            &uri,
            &[("range", "bytes=10-19"), ("if-range", if_range)],
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK, "{if_range}");
        assert_eq!(r.bytes().await.unwrap().len(), BIG);
    }
    // If-Range with the Last-Modified date the server sent.
    let head = f.app.client.head(&uri).send().await.unwrap();
    let last_modified = header_of(&head, "last-modified").to_string();
    let r = fetch(
        &f.app,
        &uri,
        &[("range", "bytes=-1"), ("if-range", &last_modified)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.bytes().await.unwrap(), &big[BIG - 1..]);
}

#[tokio::test]
async fn ranges_on_tiny_and_empty_files() {
    let (f, _) = fixture().await;
    let empty = prepared_uri(&f, "empty.bin").await;
    for range in ["bytes=0-", "bytes=0-0", "bytes=-1"] {
        let r = fetch(&f.app, &empty, &[("range", range)]).await;
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
        assert_eq!(header_of(&r, "content-range"), "bytes */0");
    }
    let one = prepared_uri(&f, "one.bin").await;
    let r = fetch(&f.app, &one, &[("range", "bytes=-5")]).await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header_of(&r, "content-range"), "bytes 0-0/1");
    assert_eq!(r.bytes().await.unwrap(), &b"x"[..]);
    let r = fetch(&f.app, &one, &[("range", "bytes=1-")]).await;
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header_of(&r, "content-range"), "bytes */1");
}

#[tokio::test]
async fn forged_and_misused_tokens_are_refused_alike() {
    let (f, _) = fixture().await;
    let one = prepared_uri(&f, "one.bin").await;
    prepared_uri(&f, "disk-0.vmdk").await;
    let url = url::Url::parse(&one).unwrap();
    // The URI points at this instance (public_url defaults to the bound address).
    assert_eq!(url.port(), Some(f.app.port));
    let segments: Vec<String> = url.path_segments().unwrap().map(String::from).collect();
    assert_eq!(segments[..2], ["cls", "data"]);
    let token = segments[2].clone();

    // The last character of the MAC changed.
    let mut tampered = token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    // The session part of the token swapped for another (valid-looking) session.
    let other_session = {
        let mut parts: Vec<&str> = token.splitn(3, '.').collect();
        let fake = base64_url(Uuid::new_v4().as_bytes());
        parts[0] = &fake;
        parts.join(".")
    };
    let mut bodies = Vec::new();
    for path in [
        format!("/cls/data/{tampered}/one.bin"),
        // A genuine token, but for another (prepared) file.
        format!("/cls/data/{token}/disk-0.vmdk"),
        format!("/cls/data/{other_session}/one.bin"),
        "/cls/data/garbage/one.bin".to_string(),
        "/cls/data/a.b.c/one.bin".to_string(),
        format!("/cls/data/{token}/one.bin%00"),
    ] {
        bodies.push(assert_refused(fetch(&f.app, &f.app.url(&path), &[]).await).await);
    }
    // A genuine URI of a file that is not prepared, and of one with a DIRECT endpoint.
    let sid = Uuid::parse_str(&f.session).unwrap();
    let unprepared = f.app.endpoints.https_uri(SessionId(sid), "my disk.iso");
    bodies.push(assert_refused(fetch(&f.app, &unprepared, &[]).await).await);
    sqlx::query("UPDATE download_files SET endpoint_type = 'DIRECT' WHERE session_id = $1 AND name = 'disk-0.vmdk'")
        .bind(sid)
        .execute(&mut db(&f.app).await)
        .await
        .unwrap();
    let direct = f.app.endpoints.https_uri(SessionId(sid), "disk-0.vmdk");
    // A change made outside the service reaches its cache through NOTIFY.
    let r = within_staleness(|| fetch(&f.app, &direct, &[]), 404).await;
    bodies.push(assert_refused(r).await);
    // Nothing in the answer tells the cases apart.
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
    // The genuine URI still works.
    assert_eq!(fetch(&f.app, &one, &[]).await.status(), StatusCode::OK);
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn cancel_revokes_the_uri() {
    let (f, _) = fixture().await;
    let uri = prepared_uri(&f, "one.bin").await;
    assert_eq!(fetch(&f.app, &uri, &[]).await.status(), StatusCode::OK);
    let r = f.app.api(&f.token).cancel(&f.session).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_refused(fetch(&f.app, &uri, &[]).await).await;
    let r = f.app.client.head(&uri).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn fail_and_delete_revoke_the_uri() {
    let (f, _) = fixture().await;
    let uri = prepared_uri(&f, "one.bin").await;
    let r = f
        .app
        .api(&f.token)
        .session_action(
            &f.session,
            "fail",
            Some(json!({"client_error_message": "disk full"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_refused(fetch(&f.app, &uri, &[]).await).await;

    let (g, _) = fixture().await;
    let uri = prepared_uri(&g, "one.bin").await;
    let r = g.app.api(&g.token).delete_session(&g.session).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_refused(fetch(&g.app, &uri, &[]).await).await;
}

#[tokio::test]
async fn expiry_revokes_the_uri() {
    let f = fixture_with(&[("one.bin", b"x")], |s| s.sessions.timeout_seconds = 1).await;
    let uri = prepared_uri(&f, "one.bin").await;
    assert_eq!(fetch(&f.app, &uri, &[]).await.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_refused(fetch(&f.app, &uri, &[]).await).await;
}

#[tokio::test]
async fn keep_alive_keeps_the_same_uri_valid() {
    let (f, _) = fixture().await;
    let uri = prepared_uri(&f, "one.bin").await;
    let before = expiration(&f.app, &f.session).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = f.app.api(&f.token).keep_alive(&f.session, None).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(expiration(&f.app, &f.session).await > before);
    let again = file_info(&f, "one.bin").await;
    assert_eq!(again["download_endpoint"]["uri"], uri.as_str());
    let r = fetch(&f.app, &uri, &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap(), &b"x"[..]);
}

/// Shortens a session's lease to 5 s in the database, and waits until this
/// instance's validity cache has seen it: a download renews the lease it
/// knows of, so going on before the notification arrives tests nothing (and
/// failed now and then under load).
async fn shorten_lease(app: &TestApp, session: &str) {
    let id = Uuid::parse_str(session).unwrap();
    sqlx::query(
        "UPDATE download_sessions SET expiration_time = now() + interval '5 seconds' WHERE id = $1",
    )
    .bind(id)
    .execute(&mut db(app).await)
    .await
    .unwrap();
    let start = std::time::Instant::now();
    loop {
        let entry = app.validity.session(SessionId(id)).await.unwrap();
        let left = entry.map(|e| e.row.expiration_time - chrono::Utc::now());
        if left.is_some_and(|left| left.num_seconds() <= 5) {
            break;
        }
        assert!(
            start.elapsed() < STALENESS,
            "the cache never saw the shorter lease"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_download_renews_the_session() {
    let (f, _) = fixture().await;
    let uri = prepared_uri(&f, "one.bin").await;
    shorten_lease(&f.app, &f.session).await;
    let before = expiration(&f.app, &f.session).await;
    assert_eq!(fetch(&f.app, &uri, &[]).await.status(), StatusCode::OK);
    let after = expiration(&f.app, &f.session).await;
    let ahead = (after - chrono::Utc::now()).num_seconds();
    assert!(after > before, "{before} -> {after}");
    assert!((290..=300).contains(&ahead), "{ahead}");
    // HEAD counts as activity too.
    shorten_lease(&f.app, &f.session).await;
    assert_eq!(
        f.app.client.head(&uri).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert!((expiration(&f.app, &f.session).await - chrono::Utc::now()).num_seconds() >= 290);
}

#[tokio::test]
async fn file_name_with_a_space() {
    let (f, _) = fixture().await;
    let uri = prepared_uri(&f, "my disk.iso").await;
    assert!(uri.ends_with("/my%20disk.iso"), "{uri}");
    let r = fetch(&f.app, &uri, &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header_of(&r, "content-type"), "application/x-iso9660-image");
    assert_eq!(
        header_of(&r, header::CONTENT_DISPOSITION.as_str()),
        "attachment; filename=\"my disk.iso\"; filename*=UTF-8''my%20disk.iso"
    );
    assert_eq!(r.bytes().await.unwrap(), &b"iso bytes"[..]);
}

pub(crate) const LARGE: usize = 64 << 20;

/// Reads a body at about `mib_per_s`, returning what arrived and whether it ended in an error.
pub(crate) async fn read_slowly(
    r: Response,
    mib_per_s: u64,
    mut on_first: impl FnMut(),
) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    let mut stream = r.bytes_stream();
    let started = Instant::now();
    let mut first = true;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => body.extend_from_slice(&c),
            Err(_) => return (body, true),
        }
        if first {
            first = false;
            on_first();
        }
        let due = Duration::from_secs_f64(body.len() as f64 / (mib_per_s << 20) as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
    (body, false)
}

#[tokio::test]
async fn a_slow_download_outlives_the_session_timeout() {
    let large = pattern(LARGE);
    let f = fixture_with(&[("large.bin", &large)], |s| s.sessions.timeout_seconds = 2).await;
    let uri = prepared_uri(&f, "large.bin").await;
    let r = fetch(&f.app, &uri, &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    // ~4 s at 16 MiB/s: twice the session timeout, only the download's renewals keep it alive.
    let started = Instant::now();
    let (body, failed) = read_slowly(r, 16, || {}).await;
    assert!(!failed, "the transfer was cut after {} bytes", body.len());
    assert!(
        started.elapsed() > Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(body.len(), LARGE);
    assert_eq!(sha256_hex(&body), sha256_hex(&large));
    // The session outlived its timeout thanks to the download.
    assert!(expiration(&f.app, &f.session).await > chrono::Utc::now());
}

#[tokio::test]
async fn cancel_stops_a_transfer_in_progress() {
    let large = pattern(LARGE);
    let f = fixture_with(&[("large.bin", &large)], |s| s.sessions.timeout_seconds = 2).await;
    let uri = prepared_uri(&f, "large.bin").await;
    let r = fetch(&f.app, &uri, &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let (client, token) = (f.app.client.clone(), f.token.clone());
    let cancel_url = f
        .app
        .url(&format!("{}/{}?action=cancel", api::SESSIONS, f.session));
    let cancel = move || {
        // Canceled while the client is busy reading the body.
        let (client, token, url) = (client.clone(), token.clone(), cancel_url.clone());
        tokio::spawn(async move {
            let r = client
                .post(url)
                .header("vmware-api-session-id", token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::NO_CONTENT);
        });
    };
    let (body, failed) = read_slowly(r, 8, cancel).await;
    assert!(failed, "the body ended cleanly");
    assert!(body.len() < LARGE, "all {} bytes arrived", body.len());
    assert_eq!(body[..], large[..body.len()]);
}

/// `dls_download_buffer_bytes_in_use` as /metrics shows it (per instance).
async fn buffer_bytes_in_use(app: &TestApp) -> i64 {
    let text = app.metrics_text().await;
    text.lines()
        .find_map(|l| l.strip_prefix("dls_download_buffer_bytes_in_use "))
        .expect("the gauge is exported")
        .trim()
        .parse()
        .unwrap()
}

/// Starts a GET of `uri` on a socket with a small receive buffer and never reads it.
async fn stalled_get(uri: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let url = url::Url::parse(uri).unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let addr = url.socket_addrs(|| None).unwrap()[0];
    let mut stream = socket.connect(addr).await.unwrap();
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\n\r\n",
        url.path(),
        url.host_str().unwrap()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    stream
}

/// Issue 10 item 4 / issue 11 item 6: clients that stop reading pin the
/// read-ahead budget at most, plus a small floor each past it; a download
/// started while the budget is spent still runs to its end; the buffers come
/// back when the clients go.
#[tokio::test]
async fn stalled_downloads_stay_within_the_read_ahead_budget() {
    const BUDGET: usize = 4 << 20;
    const STALLED: usize = 8;
    let large = pattern(32 << 20);
    let f = fixture_with(&[("large.bin", &large)], |s| {
        s.http.download_buffer_bytes = BUDGET
    })
    .await;
    let uri = prepared_uri(&f, "large.bin").await;
    assert_eq!(buffer_bytes_in_use(&f.app).await, 0);
    let mut stalled = Vec::new();
    for _ in 0..STALLED {
        stalled.push(stalled_get(&uri).await);
    }
    // Each stalled transfer fills the kernel's buffers, then its own.
    let floor = (STALLED * 2 * (64 << 10)) as i64;
    let mut held = 0;
    for _ in 0..100 {
        held = buffer_bytes_in_use(&f.app).await;
        if held >= BUDGET as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(held >= BUDGET as i64, "the budget was never spent: {held}");
    // Settled: no more than the budget and the small buffers past it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let held = buffer_bytes_in_use(&f.app).await;
    assert!(
        held <= BUDGET as i64 + floor,
        "{held} bytes held by {STALLED} stalled downloads (budget {BUDGET})"
    );
    // With the budget spent, another download still completes.
    let body = fetch(&f.app, &uri, &[]).await.bytes().await.unwrap();
    assert_eq!(body.len(), large.len());
    assert_eq!(sha256_hex(&body), sha256_hex(&large));
    // The clients go; every buffer comes back.
    drop(stalled);
    let mut held = -1;
    for _ in 0..100 {
        held = buffer_bytes_in_use(&f.app).await;
        if held == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(held, 0, "buffers still held after the clients left");
}
