//! The store against the real database: states stored as text decode strictly,
//! so a value this version does not know is an error, never a silent default.

use download_sessions::domain::{EndpointType, PrepareStatus, SessionState};
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn known_states_decode_and_unknown_ones_are_errors() {
    let app = spawn_app_with(|s| s.workers.count = 0).await;
    let pool = app.db.pool();
    let state: SessionState = sqlx::query_scalar("SELECT 'CANCELED'::text")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(state, SessionState::Canceled);
    let status: PrepareStatus = sqlx::query_scalar("SELECT 'PREPARE_REQUESTED'::text")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(status, PrepareStatus::PrepareRequested);

    // Once these fell back to ACTIVE, UNPREPARED and HTTPS.
    let r = sqlx::query_scalar::<_, SessionState>("SELECT 'PAUSED'::text")
        .fetch_one(pool)
        .await;
    assert!(r.is_err(), "{r:?}");
    let r = sqlx::query_scalar::<_, PrepareStatus>("SELECT 'QUEUED'::text")
        .fetch_one(pool)
        .await;
    assert!(r.is_err(), "{r:?}");
    let r = sqlx::query_scalar::<_, EndpointType>("SELECT 'FTP'::text")
        .fetch_one(pool)
        .await;
    assert!(r.is_err(), "{r:?}");
}

#[tokio::test]
async fn a_session_in_an_unknown_state_is_an_internal_error_not_active() {
    let app = spawn_app_with(|s| s.workers.count = 0).await;
    let item = app.import("lib", "vm", &[("disk-0.vmdk", b"bytes")]).await;
    let token = app.user("u", ALL_PRIVILEGES).await;
    let id = app.api(&token).new_session(&item).await;
    // As if a newer version had written a state this one does not know.
    sqlx::query("ALTER TABLE download_sessions DROP CONSTRAINT download_sessions_state_check")
        .execute(app.db.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE download_sessions SET state = 'PAUSED'")
        .execute(app.db.pool())
        .await
        .unwrap();
    let r = app.api(&token).get_session(&id).await;
    let body: Value = assert_api_error(r, 500, "INTERNAL_SERVER_ERROR").await;
    assert!(!body.to_string().contains("PAUSED"), "{body}");
}
