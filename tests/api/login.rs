//! Login tokens on /api/session: Basic login, who-am-i, logout, idle expiry,
//! failed-login slow-down, and tokens shared by instances on one database.

use std::time::{Duration, Instant};

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

    // Logout on a ends it on b.
    assert_eq!(a.api(&token).logout().await.status(), 204);
    assert_api_error(b.api(&token).whoami().await, 401, "UNAUTHENTICATED").await;
}
