//! The HTTP edge under abuse: metrics labels clients cannot grow, bodies that never
//! arrive, idle and surplus connections, cross-site requests riding the session
//! cookie, and forwarding headers from whoever sends them.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;

use crate::helpers::{api::SESSIONS, *};

// ------------------------------------------------------------------ metrics

#[tokio::test]
async fn metrics_stay_small_whatever_methods_and_paths_clients_send() {
    let app = spawn_app_with(|s| s.workers.count = 0).await;
    let before = app.metrics_text().await;
    let client = &app.client;
    let sent = futures_util::stream::iter(0..3000u32)
        .map(|i| {
            let noise = pseudo_random(6, u64::from(i) + 7);
            let method = format!("X{}", hex_upper(&noise));
            let path = match i % 4 {
                0 => format!("/api/{}", hex_upper(&noise)),
                1 => format!("/rest/com/vmware/{}", hex_upper(&noise)),
                2 => format!("/cls/data/{}/f", hex_upper(&noise)),
                _ => "/healthz".to_string(),
            };
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let url = app.url(&path);
            async move {
                let r = client.request(method, url).send().await.unwrap();
                r.status()
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    assert!(sent.iter().all(|s| s.is_client_error()), "{sent:?}");
    let after = app.metrics_text().await;
    // Every random method is `other`; no method or path of theirs is a label.
    assert!(after.contains(r#"method="other""#), "{after}");
    for line in after.lines().filter(|l| l.contains("method=")) {
        let method = line
            .split("method=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert!(
            ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other"].contains(&method),
            "{line}"
        );
        let route = line
            .split("route=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert!(!route.contains("/X"), "a raw path became a label: {line}");
    }
    // Bounded: the same few label sets whatever was sent (the reviewer's run grew
    // 39 KB to 4.4 MB). Other tests in this process add their own routes.
    assert!(
        after.len() < before.len() + 64 * 1024,
        "/metrics grew from {} to {} bytes",
        before.len(),
        after.len()
    );
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[tokio::test]
async fn database_gauges_are_recounted_in_the_background_not_per_scrape() {
    let app = spawn_app_with(|s| {
        s.workers.count = 0;
        s.http.metrics_refresh_seconds = 3600;
    })
    .await;
    let item = app.import("lib", "item", &[("f", b"x")]).await;
    let token = app.user("u", DOWNLOADER).await;
    app.api(&token).new_session(&item).await;
    // The first count ran at start, on empty tables; a scrape does not count again.
    let text = app.metrics_text().await;
    assert!(
        text.contains("dls_database_gauges_refreshed_timestamp_seconds"),
        "{text}"
    );
    assert!(
        !text.contains(r#"dls_download_sessions{state="ACTIVE"}"#),
        "{text}"
    );
    assert!(
        !text.contains(r#"dls_download_files{status="UNPREPARED"}"#),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_on_their_own_listener_leave_the_public_one() {
    let app = spawn_app_with(|s| {
        s.workers.count = 0;
        s.http.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let metrics = app.metrics_port.expect("a metrics listener");
    assert_ne!(metrics, app.port);
    app.http().get("/healthz").await;
    let there = format!("http://127.0.0.1:{metrics}");
    let there = Http::new(&app.client, &there);
    let r = there.get("/metrics").await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.contains("dls_http_requests_total"), "{text}");
    // The probes answer there too; /metrics is gone from the public listener.
    assert_eq!(there.get("/healthz").await.status(), 200);
    assert_eq!(there.get("/readyz").await.status(), 200);
    let r = app.http().get("/metrics").await;
    assert_api_error(r, 404, "NOT_FOUND").await;
}

// ------------------------------------------------------------ slow bodies

/// A request head promising a body of 100 bytes, then one byte every 300 ms.
async fn trickling(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> Raw {
    let mut raw = Raw::connect(app.port).await;
    let mut all = vec![
        ("Content-Type", "application/json"),
        ("Content-Length", "100"),
    ];
    all.extend_from_slice(headers);
    raw.head("POST", path, &all).await;
    raw.trickle(b" ", Duration::from_millis(300));
    raw
}

#[tokio::test]
async fn slow_bodies_are_answered_408_and_their_connections_closed() {
    let app = spawn_app_with(|s| {
        s.workers.count = 0;
        s.http.body_timeout_seconds = 2;
    })
    .await;
    let token = app.user("u", DOWNLOADER).await;
    let auth = [("vmware-api-session-id", token.as_str())];
    let mut api = trickling(&app, SESSIONS, &auth).await;
    let mut rest = trickling(
        &app,
        "/rest/com/vmware/content/library/item/download-session",
        &auth,
    )
    .await;
    let mut rpc = trickling(&app, "/api", &[]).await;
    // A chunked body sent to an operation that reads none: answered at once, and
    // not drained for as long as the client keeps sending.
    let mut ignored = Raw::connect(app.port).await;
    ignored
        .head("GET", "/healthz", &[("Transfer-Encoding", "chunked")])
        .await;
    ignored.trickle(b"1\r\nx\r\n", Duration::from_millis(300));

    let within = Duration::from_secs(10);
    let r = api.response(within).await.expect("an answer");
    assert_eq!(r.status, 408);
    assert_eq!(r.json()["error_type"], "INVALID_ARGUMENT", "{:?}", r.json());
    assert_eq!(
        r.json()["messages"][0]["id"],
        "com.vmware.vapi.rest.request_body_timeout"
    );
    assert!(r.closes(), "{:?}", r.headers);
    let r = rest.response(within).await.expect("an answer");
    assert_eq!(r.status, 408);
    assert_eq!(
        r.json()["type"],
        "com.vmware.vapi.std.errors.invalid_argument"
    );
    // JSON-RPC answers HTTP 200 with a JSON-RPC error, as for any unreadable envelope.
    let r = rpc.response(within).await.expect("an answer");
    assert_eq!(r.status, 200);
    let text = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(text.contains("did not arrive within 2 seconds"), "{text}");
    let r = ignored.response(within).await.expect("an answer");
    assert_eq!(r.status, 200);
    for raw in [&mut api, &mut rest, &mut rpc, &mut ignored] {
        assert!(raw.closed_within(within).await, "the connection stays open");
    }

    // A body sent in time is read whole, and the connection stays for the next request.
    let mut fine = Raw::connect(app.port).await;
    let body = json!({"library_item_id": "nope"}).to_string();
    let headers = [
        ("vmware-api-session-id", token.as_str()),
        ("Content-Type", "application/json"),
    ];
    fine.request("POST", SESSIONS, &headers, body.as_bytes())
        .await;
    let r = fine.response(within).await.expect("an answer");
    assert_eq!(r.status, 404, "{:?}", String::from_utf8_lossy(&r.body));
    assert!(!r.closes());
    fine.head("GET", "/healthz", &[]).await;
    assert_eq!(fine.response(within).await.expect("kept alive").status, 200);
}

#[tokio::test]
async fn idle_connections_close_after_the_keep_alive_time() {
    let app = spawn_app_with(|s| {
        s.workers.count = 0;
        s.http.keep_alive_seconds = 1;
    })
    .await;
    let mut raw = Raw::connect(app.port).await;
    raw.head("GET", "/healthz", &[]).await;
    let r = raw
        .response(Duration::from_secs(5))
        .await
        .expect("an answer");
    assert_eq!(r.status, 200);
    assert!(!r.closes());
    assert!(
        raw.closed_within(Duration::from_secs(4)).await,
        "idle connection kept"
    );
}

// ------------------------------------------------------------ connection cap

#[tokio::test]
async fn over_the_connection_cap_requests_are_refused_and_probes_answered() {
    let app = spawn_app_with(|s| {
        s.workers.count = 0;
        s.http.max_connections = 4;
        s.http.body_timeout_seconds = 60;
    })
    .await;
    // The cap is reached by clients trickling bodies.
    let mut hogs = Vec::new();
    for _ in 0..4 {
        hogs.push(trickling(&app, "/api", &[]).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let within = Duration::from_secs(10);

    let mut probe = Raw::connect(app.port).await;
    probe.head("GET", "/healthz", &[]).await;
    let r = probe.response(within).await.expect("the probe answers");
    assert_eq!(r.status, 200);
    assert!(r.closes(), "a connection over the cap does not stay");

    let mut refused = Raw::connect(app.port).await;
    refused.head("GET", "/api/session", &[]).await;
    let r = refused
        .response(within)
        .await
        .expect("an answer, not a hang");
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error_type"], "SERVICE_UNAVAILABLE");
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(r.closes());
    let mut refused = Raw::connect(app.port).await;
    refused
        .head("GET", "/rest/com/vmware/content/library", &[])
        .await;
    let r = refused
        .response(within)
        .await
        .expect("an answer, not a hang");
    assert_eq!(r.status, 503);
    assert_eq!(
        r.json()["type"],
        "com.vmware.vapi.std.errors.service_unavailable"
    );

    // Once the hogs are gone, requests are served again.
    drop(hogs);
    let mut served = None;
    for _ in 0..50 {
        let mut raw = Raw::connect(app.port).await;
        raw.head("GET", "/api/session", &[]).await;
        let r = raw.response(within).await.expect("an answer");
        if r.status != 503 {
            served = Some(r.status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(served, Some(401), "still refused after the cap cleared");
}

// ------------------------------------------------------------------- CSRF

const REST_SESSIONS: &str = "/rest/com/vmware/content/library/item/download-session";

/// Logs in on /rest and returns the session cookie as the browser would send it,
/// and the Set-Cookie header it came in.
async fn rest_cookie(app: &TestApp, headers: &[(&str, &str)]) -> (String, String) {
    let mut r = app
        .client
        .post(app.url("/rest/com/vmware/cis/session"))
        .basic_auth("alice", Some("pw-for-tests"));
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let r = r.send().await.unwrap();
    assert_eq!(r.status(), 200);
    let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    let pair = set_cookie.split(';').next().unwrap().to_string();
    (pair, set_cookie)
}

#[tokio::test]
async fn the_session_cookie_does_not_authenticate_what_a_cross_site_page_can_send() {
    let app = spawn_app_with(|s| s.workers.count = 0).await;
    let item = app.import("lib", "item", &[("f", b"x")]).await;
    app.add_user("alice", "pw-for-tests", DOWNLOADER).await;
    let (cookie, set_cookie) = rest_cookie(&app, &[]).await;
    assert!(set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");

    let body = json!({"create_spec": {"library_item_id": item}}).to_string();
    let post = |content_type: &'static str, extra: Option<(&'static str, &'static str)>| {
        let mut r = app
            .client
            .post(app.url(REST_SESSIONS))
            .header("cookie", &cookie)
            .header("origin", "https://evil.example")
            .header("content-type", content_type)
            .body(body.clone());
        if let Some((k, v)) = extra {
            r = r.header(k, v);
        }
        r.send()
    };
    for content_type in [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
    ] {
        let r = post(content_type, None).await.unwrap();
        let body = assert_rest_error(r, 401, "UNAUTHENTICATED").await;
        assert_eq!(
            body["value"]["messages"][0]["id"],
            "com.vmware.vapi.rest.cookie_authentication_refused",
            "{content_type}: {body}"
        );
    }
    // A browser telling us the page is another site's: refused whatever the type.
    let r = post("application/json", Some(("sec-fetch-site", "cross-site")))
        .await
        .unwrap();
    assert_rest_error(r, 401, "UNAUTHENTICATED").await;
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM download_sessions")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(sessions, 0, "a refused request created a session");

    // JSON (what vSphere clients send) with the cookie works.
    let r = post("application/json", None).await.unwrap();
    assert_eq!(r.status(), 200);
    // So does no body at all.
    let r = app
        .client
        .get(app.url(REST_SESSIONS))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(value_of(r).await.as_array().unwrap().len(), 1);
    // The token in the header is not the browser's doing: any body type is read.
    let token = cookie.split_once('=').unwrap().1;
    let r = app
        .client
        .post(app.url(REST_SESSIONS))
        .header("vmware-api-session-id", token)
        .header("content-type", "text/plain")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

// -------------------------------------------------------- forwarding headers

#[tokio::test]
async fn forwarded_proto_counts_only_from_trusted_proxies() {
    let app = spawn_app_with(|s| s.workers.count = 0).await;
    app.add_user("alice", "pw-for-tests", DOWNLOADER).await;
    // A client saying it came over HTTPS does not make the cookie Secure.
    let (_, set_cookie) = rest_cookie(&app, &[("x-forwarded-proto", "https")]).await;
    assert!(!set_cookie.contains("Secure"), "{set_cookie}");
    let (_, set_cookie) = rest_cookie(&app, &[("forwarded", "for=1.2.3.4;proto=https")]).await;
    assert!(!set_cookie.contains("Secure"), "{set_cookie}");

    // From a proxy we trust (this test's client, on loopback), it does.
    let app = spawn_app_with(|s| {
        s.workers.count = 0;
        s.http.trusted_proxies =
            download_sessions::edge::client::TrustedProxies::parse(["127.0.0.1/32"]);
    })
    .await;
    app.add_user("alice", "pw-for-tests", DOWNLOADER).await;
    let (_, set_cookie) = rest_cookie(&app, &[("x-forwarded-proto", "https")]).await;
    assert!(set_cookie.contains("Secure"), "{set_cookie}");
    let (_, set_cookie) = rest_cookie(&app, &[]).await;
    assert!(!set_cookie.contains("Secure"), "{set_cookie}");
}
