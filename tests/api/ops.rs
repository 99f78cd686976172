//! Operational endpoints: liveness, readiness and Prometheus metrics.

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app_with(|s| s.workers.count = 0).await;
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Every answer names its request, as the log lines of that request do.
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(id.len(), 36, "{id}");
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["database"], true);
    assert_eq!(body["stores"], true);
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_show_state() {
    let app = spawn_app_with(|s| {
        s.workers.count = 0;
        s.http.metrics_refresh_seconds = 1;
    })
    .await;
    let item = app.import("lib", "item", &[("f", b"x")]).await;
    let token = app.user("u", DOWNLOADER).await;
    let id = app.api(&token).new_session(&item).await;
    app.get(
        &token,
        &format!("/api/content/library/item/download-session/{id}"),
    )
    .await;
    // The gauges read from the database are recounted every second.
    let mut text = String::new();
    for _ in 0..50 {
        text = app.metrics_text().await;
        if text.contains(r#"dls_download_sessions{state="ACTIVE"}"#) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Routes are labelled by template, never by id.
    assert!(
        text.contains(r#"route="/api/content/library/item/download-session/{id}""#),
        "{text}"
    );
    assert!(!text.contains(&id), "ids must not become labels");
    assert!(text.contains("dls_http_request_duration_seconds_bucket"));
    assert!(
        text.contains(r#"dls_download_sessions{state="ACTIVE"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"dls_download_files{status="UNPREPARED"} 1"#),
        "{text}"
    );
    assert!(text.contains("dls_prepare_queue_depth"));
}
