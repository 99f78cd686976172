//! The legacy `/rest/com/vmware/...` surface as one caller speaks it: a method per
//! operation answering the raw response, the `{"value"}` and error checks, and the
//! success steps of a scenario.

use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

use super::http::Http;

pub const LOGIN: &str = "/rest/com/vmware/cis/session";
pub const SESSIONS: &str = "/rest/com/vmware/content/library/item/download-session";
pub const FILES: &str = "/rest/com/vmware/content/library/item/downloadsession/file";
pub const LIBRARY: &str = "/rest/com/vmware/content/library";
pub const ITEM: &str = "/rest/com/vmware/content/library/item";
pub const ITEM_FILE: &str = "/rest/com/vmware/content/library/item/file";
pub const ITEM_STORAGE: &str = "/rest/com/vmware/content/library/item/storage";
pub const LOCAL_LIBRARY: &str = "/rest/com/vmware/content/local-library";
pub const SUBSCRIBED_LIBRARY: &str = "/rest/com/vmware/content/subscribed-library";

#[derive(Clone, Copy)]
pub struct Rest<'a>(pub Http<'a>);

impl Rest<'_> {
    // ------------------------------------------------------------ login

    pub async fn login(&self, user: &str, password: &str) -> Response {
        self.0.post_basic(LOGIN, user, password).await
    }

    pub async fn whoami(&self) -> Response {
        self.0.post(&format!("{LOGIN}?~action=get"), None).await
    }

    pub async fn logout(&self) -> Response {
        self.0.delete(LOGIN).await
    }

    // ---------------------------------------------------------- catalog

    pub async fn list_libraries(&self) -> Response {
        self.0.get(LIBRARY).await
    }

    pub async fn get_library(&self, id: &str) -> Response {
        self.0.get(&format!("{LIBRARY}/id:{id}")).await
    }

    pub async fn list_items(&self, library: &str) -> Response {
        self.0.get(&format!("{ITEM}?library_id={library}")).await
    }

    pub async fn get_item(&self, id: &str) -> Response {
        self.0.get(&format!("{ITEM}/id:{id}")).await
    }

    pub async fn item_files(&self, item: &str) -> Response {
        self.0
            .get(&format!("{ITEM_FILE}?library_item_id={item}"))
            .await
    }

    pub async fn item_file(&self, item: &str, name: &str) -> Response {
        let body = json!({ "name": name });
        self.0
            .post(&format!("{ITEM_FILE}/id:{item}?~action=get"), Some(body))
            .await
    }

    pub async fn item_storage(&self, item: &str) -> Response {
        self.0
            .get(&format!("{ITEM_STORAGE}?library_item_id={item}"))
            .await
    }

    pub async fn item_storage_of(&self, item: &str, name: &str) -> Response {
        let body = json!({ "file_name": name });
        self.0
            .post(&format!("{ITEM_STORAGE}/id:{item}?~action=get"), Some(body))
            .await
    }

    // ------------------------------------------- libraries and items, managed

    /// `POST .../library?~action=find` with `{"spec": spec}`.
    pub async fn find_libraries(&self, spec: Value) -> Response {
        self.0
            .post(
                &format!("{LIBRARY}?~action=find"),
                Some(json!({ "spec": spec })),
            )
            .await
    }

    pub async fn update_library(&self, id: &str, spec: Value) -> Response {
        self.0
            .patch(
                &format!("{LIBRARY}/id:{id}"),
                json!({ "update_spec": spec }),
            )
            .await
    }

    /// `POST .../local-library` with `body` (`None`: no body).
    pub async fn create_library(&self, body: Option<Value>) -> Response {
        self.0.post(LOCAL_LIBRARY, body).await
    }

    /// Creates a local library named `name` and answers its id.
    pub async fn new_library(&self, name: &str) -> String {
        let body = json!({"create_spec": {"name": name, "type": "LOCAL",
            "storage_backings": [{"type": "DATASTORE", "datastore_id": "datastore-12"}]}});
        let id = value_of(self.create_library(Some(body)).await).await;
        id.as_str().expect("id string").to_string()
    }

    pub async fn list_local_libraries(&self) -> Response {
        self.0.get(LOCAL_LIBRARY).await
    }

    pub async fn get_local_library(&self, id: &str) -> Response {
        self.0.get(&format!("{LOCAL_LIBRARY}/id:{id}")).await
    }

    pub async fn update_local_library(&self, id: &str, spec: Value) -> Response {
        self.0
            .patch(
                &format!("{LOCAL_LIBRARY}/id:{id}"),
                json!({ "update_spec": spec }),
            )
            .await
    }

    pub async fn delete_local_library(&self, id: &str) -> Response {
        self.0.delete(&format!("{LOCAL_LIBRARY}/id:{id}")).await
    }

    pub async fn list_subscribed_libraries(&self) -> Response {
        self.0.get(SUBSCRIBED_LIBRARY).await
    }

    pub async fn get_subscribed_library(&self, id: &str) -> Response {
        self.0.get(&format!("{SUBSCRIBED_LIBRARY}/id:{id}")).await
    }

    /// `POST .../library/item` (create) with `body` (`None`: no body).
    pub async fn create_item(&self, body: Option<Value>) -> Response {
        self.0.post(ITEM, body).await
    }

    /// Creates an item as govmomi's `CreateLibraryItem` does and answers its id.
    pub async fn new_item(&self, library: &str, name: &str, item_type: &str) -> String {
        let body = json!({"create_spec": {"name": name, "description": "",
            "library_id": library, "type": item_type}});
        let id = value_of(self.create_item(Some(body)).await).await;
        id.as_str().expect("id string").to_string()
    }

    /// `POST .../library/item?~action=find` with `{"spec": spec}`.
    pub async fn find_items(&self, spec: Value) -> Response {
        self.0
            .post(
                &format!("{ITEM}?~action=find"),
                Some(json!({ "spec": spec })),
            )
            .await
    }

    pub async fn update_item(&self, id: &str, spec: Value) -> Response {
        self.0
            .patch(&format!("{ITEM}/id:{id}"), json!({ "update_spec": spec }))
            .await
    }

    pub async fn delete_item(&self, id: &str) -> Response {
        self.0.delete(&format!("{ITEM}/id:{id}")).await
    }

    // ------------------------------------------------- download sessions

    /// `POST .../download-session` (create) with `body` (`None`: no body).
    pub async fn create_session(&self, body: Option<Value>) -> Response {
        self.0.post(SESSIONS, body).await
    }

    /// Creates a session for `item` and answers its id.
    pub async fn new_session(&self, item: &str) -> String {
        let body = json!({ "create_spec": { "library_item_id": item } });
        let id = value_of(self.create_session(Some(body)).await).await;
        id.as_str().expect("id string").to_string()
    }

    pub async fn list_sessions(&self) -> Response {
        self.0.get(SESSIONS).await
    }

    pub async fn list_sessions_of(&self, item: &str) -> Response {
        self.0
            .get(&format!("{SESSIONS}?library_item_id={item}"))
            .await
    }

    /// `POST .../download-session?~action=list` (the generic vAPI form of list).
    pub async fn list_action(&self, body: Option<Value>) -> Response {
        self.0.post(&format!("{SESSIONS}?~action=list"), body).await
    }

    pub async fn get_session(&self, id: &str) -> Response {
        self.0.get(&format!("{SESSIONS}/id:{id}")).await
    }

    /// The session's model (the get must succeed).
    pub async fn session(&self, id: &str) -> Value {
        value_of(self.get_session(id).await).await
    }

    /// `POST .../id:{id}?~action=ACTION` with `body` (`None`: no body).
    pub async fn session_action(&self, id: &str, action: &str, body: Option<Value>) -> Response {
        self.0
            .post(&format!("{SESSIONS}/id:{id}?~action={action}"), body)
            .await
    }

    pub async fn delete_session(&self, id: &str) -> Response {
        self.0.delete(&format!("{SESSIONS}/id:{id}")).await
    }

    // ------------------------------------------------------------ files

    pub async fn list_files(&self, session: &str) -> Response {
        self.0
            .get(&format!("{FILES}?download_session_id={session}"))
            .await
    }

    /// `POST .../file/id:{id}?~action=ACTION` with `body` (`None`: no body).
    pub async fn file_action(&self, session: &str, action: &str, body: Option<Value>) -> Response {
        self.0
            .post(&format!("{FILES}/id:{session}?~action={action}"), body)
            .await
    }

    pub async fn get_file(&self, session: &str, name: &str) -> Response {
        let body = json!({ "file_name": name });
        self.file_action(session, "get", Some(body)).await
    }

    pub async fn prepare(&self, session: &str, body: Value) -> Response {
        self.file_action(session, "prepare", Some(body)).await
    }
}

/// The `value` of a successful answer (200, nothing but `value`).
pub async fn value_of(r: Response) -> Value {
    assert_eq!(r.status(), StatusCode::OK, "status");
    let body: Value = r.json().await.expect("JSON body");
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(1),
        "only value: {body}"
    );
    body["value"].clone()
}

/// A void answer: 200 and nothing in the body.
pub async fn assert_void(r: Response) {
    assert_eq!(r.status(), StatusCode::OK, "status");
    assert!(
        r.bytes().await.unwrap().is_empty(),
        "void answers have no body"
    );
}

/// Asserts a `/rest` error answer and returns its body.
pub async fn assert_rest_error(r: Response, status: u16, kind: &str) -> Value {
    assert_eq!(r.status().as_u16(), status, "status");
    let body: Value = r.json().await.expect("error body is JSON");
    let vapi_type = format!("com.vmware.vapi.std.errors.{}", kind.to_lowercase());
    assert_eq!(body["type"], vapi_type, "{body}");
    assert_eq!(body["value"]["error_type"], kind, "{body}");
    let messages = body["value"]["messages"].as_array().expect("messages");
    assert!(!messages.is_empty(), "{body}");
    for m in messages {
        assert!(m["id"].is_string() && m["default_message"].is_string() && m["args"].is_array());
    }
    body
}
