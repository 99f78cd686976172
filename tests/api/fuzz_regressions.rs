//! Cases schemathesis found (scripts/test.sh fuzzes the live service against
//! openapi/openapi.json), each pinned on every surface it reaches. Text the store
//! cannot hold (NUL) must be the client's error, never a 500.

use serde_json::{json, Value};

use crate::helpers::*;

const FILE: &str = "disk-0.vmdk";

async fn setup() -> (TestApp, String, String, String) {
    let app = spawn_app_with(|s| s.workers.count = 0).await;
    let item = app.import("lib", "vm", &[(FILE, b"disk bytes")]).await;
    let token = app.user("fuzz", ALL_PRIVILEGES).await;
    let session = app.api(&token).new_session(&item).await;
    (app, item, token, session)
}

/// Found by schemathesis: `POST /rest/.../downloadsession/file/id:{id}?~action=get`
/// with `{"file_name": "\u00b5\u0000"}` answered 500 (PostgreSQL refused the NUL).
#[tokio::test]
async fn nul_in_file_name_of_file_get_is_invalid_argument() {
    let (app, _item, token, session) = setup().await;

    let r = app
        .post(
            &token,
            &format!(
                "/rest/com/vmware/content/library/item/downloadsession/file/id:{session}?~action=get"
            ),
            Some(json!({"file_name": "\u{b5}\u{0}"})),
        )
        .await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["type"], "com.vmware.vapi.std.errors.invalid_argument",
        "{body}"
    );

    let r = app
        .get(
            &token,
            &format!(
                "/api/content/library/item/download-session/{session}/file?file_name=%C2%B5%00"
            ),
        )
        .await;
    assert_api_error(r, 400, "INVALID_ARGUMENT").await;

    let kind = app
        .rpc()
        .error_type(
            session_ctx(&token),
            "com.vmware.content.library.item.downloadsession.file",
            "get",
            json!({"download_session_id": session, "file_name": "a\u{0}"}),
        )
        .await;
    assert_eq!(
        kind.as_deref(),
        Some("com.vmware.vapi.std.errors.invalid_argument")
    );

    // The real name still works.
    let r = app
        .get(
            &token,
            &format!("/api/content/library/item/download-session/{session}/file?file_name={FILE}"),
        )
        .await;
    assert_eq!(r.status(), 200);
}

/// Found while fixing the case above (same cause, create): a `client_token`
/// with NUL answered 500.
#[tokio::test]
async fn nul_in_client_token_is_invalid_argument() {
    let (app, item, token, _session) = setup().await;
    let r = app
        .post(
            &token,
            "/rest/com/vmware/content/library/item/download-session",
            Some(json!({"client_token": "a\u{0}", "create_spec": {"library_item_id": item}})),
        )
        .await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["type"], "com.vmware.vapi.std.errors.invalid_argument",
        "{body}"
    );

    let kind = app.rpc().error_type(session_ctx(&token),
        "com.vmware.content.library.item.download_session",
        "create",
        json!({
            "client_token": {"OPTIONAL": "b\u{0}"},
            "create_spec": {"STRUCTURE": {"com.vmware.content.library.item.download_session_model": {
                "library_item_id": {"OPTIONAL": item}
            }}},
        }),
    )
    .await;
    assert_eq!(
        kind.as_deref(),
        Some("com.vmware.vapi.std.errors.invalid_argument")
    );
}

/// Same cause, fail: a `client_error_message` with NUL answered 500 (jsonb
/// cannot hold it), and the session must stay ACTIVE.
#[tokio::test]
async fn nul_in_fail_message_is_invalid_argument() {
    let (app, _item, token, session) = setup().await;
    let path = format!("/api/content/library/item/download-session/{session}");
    let r = app
        .post(
            &token,
            &format!("{path}?action=fail"),
            Some(json!({"client_error_message": "x\u{0}y"})),
        )
        .await;
    assert_api_error(r, 400, "INVALID_ARGUMENT").await;
    let model: Value = app.get(&token, &path).await.json().await.unwrap();
    assert_eq!(model["state"], "ACTIVE");
}

/// Same cause, login: a user name with NUL answered 500 (the failure counter
/// could not be stored); no user can have such a name, so it is UNAUTHENTICATED.
#[tokio::test]
async fn nul_in_user_name_is_unauthenticated() {
    let (app, _item, _token, _session) = setup().await;
    let r = app.api_anonymous().login("fu\u{0}zz", "pw-for-tests").await;
    assert_api_error(r, 401, "UNAUTHENTICATED").await;

    let r = app
        .client
        .post(app.url("/rest/com/vmware/cis/session"))
        .basic_auth("x".repeat(5000), Some("pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let kind = app.rpc().error_type(json!({"schemeId": "com.vmware.vapi.std.security.user_pass", "userName": "a\u{0}", "password": "p"}),
        "com.vmware.cis.session",
        "create",
        json!({}),
    )
    .await;
    assert_eq!(
        kind.as_deref(),
        Some("com.vmware.vapi.std.errors.unauthenticated")
    );

    // The real user still logs in: the bad names counted nothing against it.
    app.login("fuzz", "pw-for-tests").await;
}

/// The spec declares optional bodies nullable (generated clients send `null`):
/// a JSON `null` body is the same as no body.
#[tokio::test]
async fn null_body_is_no_body() {
    let (app, _item, token, session) = setup().await;
    let r = app
        .api(&token)
        .keep_alive(&session, Some(Value::Null))
        .await;
    assert_eq!(r.status(), 204);
    let r = app.api(&token).prepare(&session, Some(Value::Null)).await;
    assert_api_error(r, 400, "INVALID_ARGUMENT").await;
}
