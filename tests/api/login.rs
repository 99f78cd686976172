//! Login tokens on /api/session: Basic login, who-am-i, logout, idle expiry,
//! throttling per user and client address, the bounded verification queue,
//! and tokens shared by instances on one database.

use std::time::{Duration, Instant};

use download_sessions::domain::UserName;

use crate::helpers::*;

#[tokio::test]
async fn login_whoami_logout() {
    let app = spawn_app().await;
    app.add_user("alice", "s3cret", DOWNLOADER).await;
    let token = app.login("alice", "s3cret").await;
    assert!(token.len() >= 32);

    let r = app.api(&token).whoami().await;
    assert_eq!(r.status(), 200);
    let me: serde_json::Value = r.json().await.unwrap();
    assert_eq!(me["user"], "alice");
    assert!(me["created_time"].as_str().unwrap().ends_with('Z'));

    // The token also works as a cookie.
    let r = app
        .client
        .get(app.url("/api/session"))
        .header("cookie", format!("vmware-api-session-id={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let r = app.api(&token).logout().await;
    assert_eq!(r.status(), 204);
    assert_api_error(app.api(&token).whoami().await, 401, "UNAUTHENTICATED").await;
    assert_api_error(app.api(&token).logout().await, 401, "UNAUTHENTICATED").await;
}

#[tokio::test]
async fn bad_credentials_are_unauthenticated() {
    let app = spawn_app().await;
    app.add_user("bob", "right", DOWNLOADER).await;
    for (user, pw) in [("bob", "wrong"), ("nobody", "right"), ("", "")] {
        let r = app.api_anonymous().login(user, pw).await;
        assert_api_error(r, 401, "UNAUTHENTICATED").await;
    }
    // No credentials, a non-Basic scheme, and garbage base64.
    let r = app
        .client
        .post(app.url("/api/session"))
        .send()
        .await
        .unwrap();
    assert_api_error(r, 401, "UNAUTHENTICATED").await;
    for header in ["Bearer abc", "Basic !!!", "Basic"] {
        let r = app
            .client
            .post(app.url("/api/session"))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_api_error(r, 401, "UNAUTHENTICATED").await;
    }
}

#[tokio::test]
async fn missing_or_unknown_token_is_unauthenticated() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/api/content/library/item/download-session"))
        .send()
        .await
        .unwrap();
    assert_api_error(r, 401, "UNAUTHENTICATED").await;
    let r = app.api("not-a-token").get_item("download-session").await;
    assert_api_error(r, 401, "UNAUTHENTICATED").await;
    let long = "x".repeat(5000);
    let r = app.api(&long).whoami().await;
    assert_api_error(r, 401, "UNAUTHENTICATED").await;
}

#[tokio::test]
async fn repeated_failures_slow_down_further_attempts() {
    let app = spawn_app_with(|s| {
        s.login.free_failures = 2;
        s.login.max_delay_seconds = 1;
    })
    .await;
    app.add_user("carol", "pw", DOWNLOADER).await;
    let attempt = |pw: &'static str| {
        let app = &app;
        async move {
            let start = Instant::now();
            let r = app.api_anonymous().login("carol", pw).await;
            (r.status().as_u16(), start.elapsed())
        }
    };
    for _ in 0..3 {
        assert_eq!(attempt("bad").await.0, 401);
    }
    // Past the free failures every attempt waits, even the right password...
    let (status, took) = attempt("pw").await;
    assert_eq!(status, 201);
    assert!(took >= Duration::from_millis(900), "{took:?}");
    // ...and a success clears the counter.
    let (status, took) = attempt("pw").await;
    assert_eq!(status, 201);
    assert!(took < Duration::from_millis(900), "{took:?}");
}

#[tokio::test]
async fn idle_tokens_expire() {
    let app = spawn_app_with(|s| s.login.idle_timeout_seconds = 1).await;
    let token = app.user("dave", DOWNLOADER).await;
    assert_eq!(app.api(&token).whoami().await.status(), 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_api_error(app.api(&token).whoami().await, 401, "UNAUTHENTICATED").await;
}

#[tokio::test]
async fn tokens_are_stored_hashed() {
    let app = spawn_app().await;
    let token = app.user("erin", DOWNLOADER).await;
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT token_hash FROM login_sessions")
        .fetch_all(app.db.pool())
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], token.as_bytes());
    assert_eq!(stored[0].len(), 32);
}

#[tokio::test]
async fn two_instances_share_tokens_and_sessions() {
    let a = spawn_app().await;
    let b = spawn_instance(&a.db_url, &a.data_dir, |_| {}).await;
    let item = a.import("lib", "item", &[("f.bin", b"abc")]).await;
    let token = a.user("frank", DOWNLOADER).await;

    // A token from instance a works on b, a session made on b is visible on a.
    assert_eq!(b.api(&token).whoami().await.status(), 200);
    let id = b.api(&token).new_session(&item).await;
    let r = a
        .get(
            &token,
            &format!("/api/content/library/item/download-session/{id}"),
        )
        .await;
    assert_eq!(r.status(), 200);
    let listed: Vec<String> = a
        .api(&token)
        .get_item("download-session")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed, vec![id.clone()]);

    // Logout on a ends it on b (through b's validity cache: within its staleness bound).
    assert_eq!(a.api(&token).logout().await.status(), 204);
    let r = within_staleness(|| async { b.api(&token).whoami().await }, 401).await;
    assert_api_error(r, 401, "UNAUTHENTICATED").await;
}

/// A password hash that takes a few seconds to check (argon2id, t = 200), so a
/// login holds the one verification thread long enough for the others to find it busy.
fn slow_hash(password: &str) -> String {
    use argon2::{password_hash::SaltString, Algorithm, Argon2, Params, PasswordHasher, Version};
    let params = Params::new(19 * 1024, 200, 1, None).unwrap();
    let salt = SaltString::encode_b64(b"a slow salt here").unwrap();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_full_verification_queue_answers_503_with_retry_after_on_every_surface() {
    let app = spawn_app_with(|s| {
        s.login.verify_threads = 1;
        s.login.verify_queue = 0;
    })
    .await;
    let name = UserName::new("slow").unwrap();
    app.db
        .upsert_user(&name, &slow_hash("pw"), &[])
        .await
        .unwrap();
    // One login occupies the only verification thread for seconds (started
    // again should it ever lose the race for the place to a probe).
    let busy = loop {
        let (client, url) = (app.client.clone(), app.url(api::LOGIN));
        let busy = tokio::spawn(async move {
            let r = client.post(url).basic_auth("slow", Some("pw")).send().await;
            r.unwrap().status()
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        if !busy.is_finished() {
            break busy;
        }
    };
    let first = app.api_anonymous().login("nobody", "x").await;
    assert_eq!(first.headers()["retry-after"], "1");
    let body = assert_api_error(first, 503, "SERVICE_UNAVAILABLE").await;
    assert_eq!(
        body["messages"][0]["id"],
        "com.vmware.cis.session.too_many_logins"
    );

    let r = app.rest_anonymous().login("nobody", "x").await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body["type"], "com.vmware.vapi.std.errors.service_unavailable",
        "{body}"
    );
    assert_eq!(body["value"]["error_type"], "SERVICE_UNAVAILABLE", "{body}");

    let r = app
        .client
        .post(app.url("/api"))
        .json(&serde_json::json!({
            "jsonrpc": "2.0", "method": "invoke", "id": "1",
            "params": {"serviceId": rpc::CIS_SESSION, "operationId": "create",
                       "input": {"STRUCTURE": {"operation-input": {}}},
                       "ctx": {"securityCtx": user_pass_ctx("nobody", "x")}},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["retry-after"], "1");
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(
        v["result"]["error"]["ERROR"]["com.vmware.vapi.std.errors.service_unavailable"].is_object(),
        "{v}"
    );
    // The refused attempts were not counted against anyone, and the busy login succeeds.
    assert_eq!(busy.await.unwrap(), 201);
    let counted: Option<i32> =
        sqlx::query_scalar("SELECT failures FROM login_throttle WHERE user_name = 'nobody'")
            .fetch_optional(app.db.pool())
            .await
            .unwrap();
    assert_eq!(counted.unwrap_or(0), 0);
}

/// A client that connects from `ip` (any 127.0.0.0/8 address reaches the service).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn login_from(
    app: &TestApp,
    client: &reqwest::Client,
    user: &str,
    pw: &str,
) -> reqwest::Response {
    client
        .post(app.url(api::LOGIN))
        .basic_auth(user, Some(pw))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn parallel_guesses_from_one_client_take_turns_and_spare_other_clients() {
    let app = spawn_app_with(|s| {
        s.login.free_failures = 2;
        s.login.max_delay_seconds = 1;
    })
    .await;
    app.add_user("gina", "right", DOWNLOADER).await;
    let guesser = client_from("127.0.0.1");
    let guesses: Vec<_> = (0..20)
        .map(|_| {
            let (app, guesser) = (&app, &guesser);
            async move { login_from(app, guesser, "gina", "wrong").await }
        })
        .collect();
    let answers = futures_util::future::join_all(guesses).await;
    let mut checked = 0;
    for r in answers {
        match r.status().as_u16() {
            401 => checked += 1,
            503 => {
                assert!(r.headers().contains_key("retry-after"));
                let body = assert_api_error(r, 503, "SERVICE_UNAVAILABLE").await;
                assert_eq!(
                    body["messages"][0]["id"],
                    "com.vmware.cis.session.login_throttled"
                );
            }
            other => panic!("{other}"),
        }
    }
    // Two free turns, then turns a second apart, at most a second ahead: a few
    // guesses were checked, the rest refused unchecked.
    assert!((2..=5).contains(&checked), "{checked} guesses checked");
    let counted: i32 = sqlx::query_scalar(
        "SELECT failures FROM login_throttle WHERE user_name = 'gina' AND client = '127.0.0.1'",
    )
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    assert_eq!(
        counted, checked,
        "every checked guess was counted before its check"
    );

    // The same user from another client is not slowed: its first try gets in,
    // on a count of its own, and its success leaves the guesser's count alone.
    let other = client_from("127.0.0.2");
    let r = login_from(&app, &other, "gina", "right").await;
    assert_eq!(r.status(), 201);
    let counts: Vec<(String, i32)> = sqlx::query_as(
        "SELECT client, failures FROM login_throttle WHERE user_name = 'gina' ORDER BY client",
    )
    .fetch_all(app.db.pool())
    .await
    .unwrap();
    assert_eq!(counts, vec![("127.0.0.1".to_string(), checked)]);
}
