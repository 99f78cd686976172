//! The validity cache and lazy renewals: reads write nothing in the steady
//! state, a failed operation is not activity, leases still expire on time, and
//! with two instances on one database every revocation made on one is refused
//! on the other within a second: under load, and right after the other's
//! LISTEN connection was killed. Tokens and users: password changes,
//! `user remove` and the absolute token lifetime.

use std::time::{Duration, Instant};

use download_sessions::{domain::SessionId, validity::granularity};
use reqwest::{Response, StatusCode};
use serde_json::json;
use uuid::Uuid;

use crate::{
    download::{make_prepared, read_slowly, LARGE},
    helpers::*,
};

/// Seconds until the session expires, as stored.
async fn stored_lease(app: &TestApp, session: &str) -> f64 {
    sqlx::query_scalar(
        "SELECT EXTRACT(EPOCH FROM expiration_time - now())::float8 \
         FROM download_sessions WHERE id = $1",
    )
    .bind(Uuid::parse_str(session).unwrap())
    .fetch_one(app.db.pool())
    .await
    .unwrap()
}

/// The row versions of a session and of every login: they change with any write.
async fn row_versions(app: &TestApp, session: &str) -> (String, Vec<String>) {
    let s: String = sqlx::query_scalar("SELECT xmin::text FROM download_sessions WHERE id = $1")
        .bind(Uuid::parse_str(session).unwrap())
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    let l: Vec<String> =
        sqlx::query_scalar("SELECT xmin::text FROM login_sessions ORDER BY token_hash")
            .fetch_all(app.db.pool())
            .await
            .unwrap();
    (s, l)
}

async fn set_lease(app: &TestApp, session: &str, seconds: u32) {
    sqlx::query(
        "UPDATE download_sessions SET expiration_time = now() + $2 * interval '1 second' \
         WHERE id = $1",
    )
    .bind(Uuid::parse_str(session).unwrap())
    .bind(f64::from(seconds))
    .execute(app.db.pool())
    .await
    .unwrap();
}

/// Waits until the instance's validity cache listens (it starts untrusted).
async fn wait_trusted(app: &TestApp) {
    let start = Instant::now();
    while !app.validity.trusted() {
        assert!(start.elapsed() < Duration::from_secs(10), "never listened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

struct One {
    app: TestApp,
    token: String,
    session: String,
    uri: String,
}

/// One instance, a session with a PREPARED file `f.bin`, its URI.
async fn one(tweak: impl FnOnce(&mut download_sessions::config::Settings)) -> One {
    let app = spawn_app_with(|s| {
        s.workers.count = 0;
        tweak(s)
    })
    .await;
    wait_trusted(&app).await;
    let item = app.import("lib", "vm", &[("f.bin", b"bytes of f")]).await;
    let token = app.user("alice", DOWNLOADER).await;
    let session = app.api(&token).new_session(&item).await;
    make_prepared(&app, &session, "f.bin").await;
    let info = app.api(&token).file_info(&session, "f.bin").await;
    let uri = info["download_endpoint"]["uri"]
        .as_str()
        .unwrap()
        .to_string();
    One {
        app,
        token,
        session,
        uri,
    }
}

#[tokio::test]
async fn reads_write_nothing_in_the_steady_state() {
    let f = one(|_| {}).await;
    // Fresh expiries (a renewal is due only 5 s after them): a keep-alive and a new login.
    let api = f.app.api(&f.token);
    assert_eq!(api.keep_alive(&f.session, None).await.status(), 204);
    let token = f.app.login("alice", "pw-for-tests").await;
    let before = row_versions(&f.app, &f.session).await;
    let start = Instant::now();
    let mut reads = 0;
    while reads < 100 && start.elapsed() < Duration::from_secs(3) {
        let r = f.app.api(&token).get_file(&f.session, "f.bin").await;
        assert_eq!(r.status(), StatusCode::OK);
        let r = f.app.client.get(&f.uri).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.bytes().await.unwrap(), &b"bytes of f"[..]);
        reads += 1;
    }
    assert!(reads >= 10, "only {reads} reads in 3 s");
    assert_eq!(row_versions(&f.app, &f.session).await, before);
}

#[tokio::test]
async fn activity_renews_once_the_stored_expiry_lags_by_the_granularity() {
    let f = one(|_| {}).await;
    // 300 s lease, 5 s granularity: 10 s behind is due, 2 s behind is not.
    set_lease(&f.app, &f.session, 298).await;
    // Due only once it lags by 5 s, 3 s from now.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(1) {
        assert_eq!(f.app.client.get(&f.uri).send().await.unwrap().status(), 200);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        stored_lease(&f.app, &f.session).await < 298.5,
        "no write when not due"
    );
    set_lease(&f.app, &f.session, 290).await;
    let deadline = Instant::now() + STALENESS;
    loop {
        let r = f.app.client.get(&f.uri).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        if stored_lease(&f.app, &f.session).await > 299.0 {
            break;
        }
        assert!(Instant::now() < deadline, "a due renewal was not written");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_failed_operation_is_not_activity() {
    let f = one(|_| {}).await;
    set_lease(&f.app, &f.session, 100).await;
    // The session's row only: the requests are activity of the login all the same.
    let before = row_versions(&f.app, &f.session).await.0;
    let api = f.app.api(&f.token);
    for _ in 0..3 {
        // A file the session does not have; DIRECT without ReadStorage; an unknown URI file.
        assert_api_error(
            api.get_file(&f.session, "nope.bin").await,
            400,
            "INVALID_ARGUMENT",
        )
        .await;
        let r = api
            .prepare(
                &f.session,
                Some(json!({"file_name": "f.bin", "endpoint_type": "DIRECT"})),
            )
            .await;
        assert_api_error(r, 403, "UNAUTHORIZED").await;
        let sid = SessionId(Uuid::parse_str(&f.session).unwrap());
        let other = f.app.endpoints.https_uri(sid, "nope.bin");
        assert_eq!(
            f.app.client.get(&other).send().await.unwrap().status(),
            StatusCode::NOT_FOUND
        );
    }
    assert_eq!(row_versions(&f.app, &f.session).await.0, before);
    assert!(stored_lease(&f.app, &f.session).await < 100.0);
    // A successful one is.
    assert_eq!(api.get_file(&f.session, "f.bin").await.status(), 200);
    assert!(stored_lease(&f.app, &f.session).await > 295.0);
}

#[tokio::test]
async fn leases_expire_on_time_within_the_granularity() {
    let f = one(|s| s.sessions.timeout_seconds = 2).await;
    let g = granularity(Duration::from_secs(2)).as_secs_f64();
    // Steady activity keeps the stored expiry within the granularity of the lease.
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1500) {
        let sent = Instant::now();
        assert_eq!(f.app.client.get(&f.uri).send().await.unwrap().status(), 200);
        // What was stored when the request was made (the lease ran down since).
        let lease = stored_lease(&f.app, &f.session).await + sent.elapsed().as_secs_f64();
        assert!(lease >= 2.0 - g - 0.01, "{lease}");
        assert!(lease <= 2.0 + sent.elapsed().as_secs_f64(), "{lease}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Then, idle, it ends within the lease.
    tokio::time::sleep(Duration::from_millis(2050)).await;
    assert_eq!(
        f.app.client.get(&f.uri).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let r = f.app.api(&f.token).get_session(&f.session).await;
    assert_api_error(r, 404, "NOT_FOUND").await;
}

#[tokio::test]
async fn session_changes_on_this_instance_are_seen_at_once() {
    let f = one(|_| {}).await;
    let api = f.app.api(&f.token);
    assert_eq!(api.session(&f.session).await["client_progress"], 0);
    assert_eq!(
        api.keep_alive(&f.session, Some(json!({"progress": 42})))
            .await
            .status(),
        204
    );
    assert_eq!(api.session(&f.session).await["client_progress"], 42);
    assert_eq!(api.cancel(&f.session).await.status(), 204);
    assert_eq!(api.session(&f.session).await["state"], "CANCELED");
    assert_eq!(f.app.client.get(&f.uri).send().await.unwrap().status(), 404);
}

// ------------------------------------------------------------ two instances

struct Pair {
    a: TestApp,
    b: TestApp,
    item: String,
    token: String,
}

async fn pair(tweak: impl Fn(&mut download_sessions::config::Settings) + Copy) -> Pair {
    let a = spawn_app_with(|s| {
        s.workers.count = 0;
        tweak(s)
    })
    .await;
    let b = spawn_instance(&a.db_url, &a.data_dir, |s| {
        s.workers.count = 0;
        tweak(s)
    })
    .await;
    wait_trusted(&a).await;
    wait_trusted(&b).await;
    let item = a.import("lib", "vm", &[("f.bin", b"bytes of f")]).await;
    let token = a.user("alice", DOWNLOADER).await;
    Pair { a, b, item, token }
}

impl Pair {
    /// A session made on a with `f.bin` PREPARED, and its URI as b serves it
    /// (fetched once on b, so b has it cached).
    async fn session_served_on_b(&self) -> (String, String) {
        let session = self.a.api(&self.token).new_session(&self.item).await;
        make_prepared(&self.a, &session, "f.bin").await;
        assert_eq!(
            self.a.api(&self.token).file_info(&session, "f.bin").await["status"],
            "PREPARED"
        );
        let sid = SessionId(Uuid::parse_str(&session).unwrap());
        let uri = self.b.endpoints.https_uri(sid, "f.bin");
        let r = within_staleness(|| send(self.b.client.get(&uri)), 200).await;
        assert_eq!(r.bytes().await.unwrap(), &b"bytes of f"[..]);
        assert_eq!(
            self.b
                .api(&self.token)
                .get_file(&session, "f.bin")
                .await
                .status(),
            200
        );
        (session, uri)
    }

    /// Revokes a session on a in one of the ways a client can; asserts that b
    /// refuses its URI and its API calls within the staleness bound; returns how long b took.
    async fn revoke_on_a(&self, how: &str, session: &str, uri: &str) -> Duration {
        let api = self.a.api(&self.token);
        let r = match how {
            "cancel" => api.cancel(session).await,
            "fail" => api.fail(session, "disk full").await,
            "delete" => api.delete_session(session).await,
            other => panic!("{other}"),
        };
        assert_eq!(r.status(), 204, "{how}");
        let done = Instant::now();
        within_staleness(|| send(self.b.client.get(uri)), 404).await;
        let took = done.elapsed();
        let r = self.b.api(&self.token).prepare_file_raw(session).await;
        if how == "delete" {
            assert_api_error(r, 404, "NOT_FOUND").await;
        } else {
            assert_api_error(r, 400, "NOT_ALLOWED_IN_CURRENT_STATE").await;
        }
        took
    }
}

async fn send(r: reqwest::RequestBuilder) -> Response {
    r.send().await.unwrap()
}

trait PrepareRaw {
    async fn prepare_file_raw(&self, session: &str) -> Response;
}

impl PrepareRaw for Api<'_> {
    async fn prepare_file_raw(&self, session: &str) -> Response {
        self.prepare(session, Some(json!({"file_name": "f.bin"})))
            .await
    }
}

/// Every kind of revocation on a, three times each: b refuses within a second.
async fn revocations_reach_b(p: &Pair) -> Vec<Duration> {
    let mut took = Vec::new();
    for _ in 0..3 {
        for how in ["cancel", "fail", "delete"] {
            let (session, uri) = p.session_served_on_b().await;
            took.push(p.revoke_on_a(how, &session, &uri).await);
        }
        // Logout on a: b refuses the token.
        let token = p.a.login("alice", "pw-for-tests").await;
        assert_eq!(p.b.api(&token).whoami().await.status(), 200);
        assert_eq!(p.a.api(&token).logout().await.status(), 204);
        let done = Instant::now();
        within_staleness(|| async { p.b.api(&token).whoami().await }, 401).await;
        took.push(done.elapsed());
    }
    took
}

#[tokio::test]
async fn revocations_on_one_instance_are_refused_on_the_other_within_a_second() {
    let p = pair(|_| {}).await;
    let took = revocations_reach_b(&p).await;
    eprintln!("b refused after {took:?}");
}

#[tokio::test]
async fn revocations_reach_an_instance_under_load() {
    let p = pair(|_| {}).await;
    let (_, busy_uri) = p.session_served_on_b().await;
    let stop = tokio_util::sync::CancellationToken::new();
    let mut load = Vec::new();
    for n in 0..8 {
        let (client, uri, stop) = (p.b.client.clone(), busy_uri.clone(), stop.clone());
        let (whoami, token) = (p.b.url("/api/session"), p.token.clone());
        load.push(tokio::spawn(async move {
            let mut served = 0u64;
            while !stop.is_cancelled() {
                let r = if n % 2 == 0 {
                    client.get(&uri).send().await
                } else {
                    client
                        .get(&whoami)
                        .header("vmware-api-session-id", &token)
                        .send()
                        .await
                };
                if r.is_ok_and(|r| r.status() == 200) {
                    served += 1;
                }
            }
            served
        }));
    }
    let took = revocations_reach_b(&p).await;
    stop.cancel();
    let mut served = 0;
    for l in load {
        served += l.await.unwrap();
    }
    assert!(served > 0);
    eprintln!("under load ({served} requests): b refused after {took:?}");
}

/// The backend pid of an instance's LISTEN connection, once it has one.
async fn listener_pid(app: &TestApp) -> i32 {
    let start = Instant::now();
    loop {
        let pid: Option<i32> =
            sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE application_name = $1")
                .bind(app.validity.listener_name())
                .fetch_optional(app.db.pool())
                .await
                .unwrap();
        if let Some(pid) = pid {
            return pid;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no listener");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn revocations_reach_an_instance_whose_listener_was_just_killed() {
    let p = pair(|_| {}).await;
    for how in ["cancel", "delete", "fail", "cancel", "delete", "fail"] {
        let (session, uri) = p.session_served_on_b().await;
        let pid = listener_pid(&p.b).await;
        let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .fetch_one(p.a.db.pool())
            .await
            .unwrap();
        assert!(killed);
        // At once: the notification of this change is lost to b.
        p.revoke_on_a(how, &session, &uri).await;
        // b listens again by itself, on a new connection, and trusts its cache again.
        let start = Instant::now();
        while listener_pid(&p.b).await == pid || !p.b.validity.trusted() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "b never listened again"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // And its cache works again: a token logged out on a is refused on b.
    let token = p.a.login("alice", "pw-for-tests").await;
    assert_eq!(p.b.api(&token).whoami().await.status(), 200);
    assert_eq!(p.a.api(&token).logout().await.status(), 204);
    within_staleness(|| async { p.b.api(&token).whoami().await }, 401).await;
}

#[tokio::test]
async fn tokens_and_uris_issued_by_one_instance_work_on_the_other() {
    let p = pair(|_| {}).await;
    let token_b = p.b.login("alice", "pw-for-tests").await;
    assert_eq!(p.a.api(&token_b).whoami().await.status(), 200);
    let session = p.b.api(&token_b).new_session(&p.item).await;
    make_prepared(&p.b, &session, "f.bin").await;
    let info = p.b.api(&token_b).file_info(&session, "f.bin").await;
    let on_b = info["download_endpoint"]["uri"].as_str().unwrap();
    // The same URI path, sent to a.
    let path = url::Url::parse(on_b).unwrap().path().to_string();
    let r = within_staleness(|| send(p.a.client.get(p.a.url(&path))), 200).await;
    assert_eq!(r.bytes().await.unwrap(), &b"bytes of f"[..]);
}

#[tokio::test]
async fn cancel_on_one_instance_cuts_a_download_running_on_the_other() {
    let p = pair(|s| s.sessions.timeout_seconds = 4).await;
    let large = pattern(LARGE);
    let item = p.a.import("lib", "big", &[("large.bin", &large)]).await;
    let session = p.a.api(&p.token).new_session(&item).await;
    make_prepared(&p.a, &session, "large.bin").await;
    let sid = SessionId(Uuid::parse_str(&session).unwrap());
    let uri = p.b.endpoints.https_uri(sid, "large.bin");
    let r = within_staleness(|| send(p.b.client.get(&uri)), 200).await;
    let (client, token) = (p.a.client.clone(), p.token.clone());
    let cancel_url =
        p.a.url(&format!("{}/{session}?action=cancel", api::SESSIONS));
    let canceled = std::sync::Arc::new(std::sync::Mutex::new(None));
    let at = canceled.clone();
    let (body, failed) = read_slowly(r, 8, move || {
        let (client, token, url, at) = (
            client.clone(),
            token.clone(),
            cancel_url.clone(),
            at.clone(),
        );
        tokio::spawn(async move {
            let r = client
                .post(url)
                .header("vmware-api-session-id", token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 204);
            *at.lock().unwrap() = Some(Instant::now());
        });
    })
    .await;
    assert!(failed, "the body ended cleanly");
    assert!(body.len() < LARGE);
    let canceled = canceled.lock().unwrap().expect("canceled");
    assert!(
        canceled.elapsed() < Duration::from_secs(5),
        "{:?}",
        canceled.elapsed()
    );
}

// ---------------------------------------------------------- tokens and users

#[tokio::test]
async fn a_new_password_revokes_the_users_tokens_everywhere() {
    let p = pair(|_| {}).await;
    assert_eq!(p.b.api(&p.token).whoami().await.status(), 200);
    let other = p.a.user("bob", DOWNLOADER).await;
    // `user add` on an existing name.
    p.a.add_user("alice", "new password", DOWNLOADER).await;
    within_staleness(|| async { p.b.api(&p.token).whoami().await }, 401).await;
    assert_eq!(p.a.api(&p.token).whoami().await.status(), 401);
    // Nobody else's.
    assert_eq!(p.b.api(&other).whoami().await.status(), 200);
    assert_eq!(p.a.login("alice", "new password").await.len(), 43);
}

#[tokio::test]
async fn user_remove_revokes_tokens_and_deletes_sessions_everywhere() {
    let p = pair(|_| {}).await;
    let (session, uri) = p.session_served_on_b().await;
    let bob = p.a.user("bob", DOWNLOADER).await;
    let name = download_sessions::domain::UserName::new("alice").unwrap();
    let removed = p.a.db.remove_user(&name).await.unwrap().unwrap();
    assert_eq!((removed.tokens, removed.sessions), (1, 1));
    within_staleness(|| async { p.b.api(&p.token).whoami().await }, 401).await;
    within_staleness(|| send(p.b.client.get(&uri)), 404).await;
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM download_sessions WHERE id = $1")
        .bind(Uuid::parse_str(&session).unwrap())
        .fetch_one(p.a.db.pool())
        .await
        .unwrap();
    assert_eq!(left, 0);
    assert_api_error(
        p.a.api_anonymous().login("alice", "pw-for-tests").await,
        401,
        "UNAUTHENTICATED",
    )
    .await;
    assert_eq!(p.b.api(&bob).whoami().await.status(), 200);
    assert!(p.a.db.remove_user(&name).await.unwrap().is_none());
}

#[tokio::test]
async fn tokens_end_at_their_absolute_lifetime_however_used() {
    let app = spawn_app_with(|s| s.login.max_lifetime_seconds = 2).await;
    let token = app.user("carol", DOWNLOADER).await;
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1500) {
        assert_eq!(app.api(&token).whoami().await.status(), 200);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_api_error(app.api(&token).whoami().await, 401, "UNAUTHENTICATED").await;
}
