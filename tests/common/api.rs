//! `/api` (vSphere 7.0U2+ REST) as one caller speaks it: a method per operation that
//! answers the raw response, and the success steps of a scenario that check and decode it.

use std::time::{Duration, Instant};

use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

use super::http::{encode, Http};

/// `/api/content/library/item/download-session`.
pub const SESSIONS: &str = "/api/content/library/item/download-session";
pub const LOGIN: &str = "/api/session";
/// `/api/content/library/item/update-session`.
pub const UPDATES: &str = "/api/content/library/item/update-session";
pub const LIBRARY: &str = "/api/content/library";
pub const LOCAL_LIBRARY: &str = "/api/content/local-library";
pub const ITEM: &str = "/api/content/library/item";

#[derive(Clone, Copy)]
pub struct Api<'a>(pub Http<'a>);

impl Api<'_> {
    // ------------------------------------------------------------ login

    pub async fn login(&self, user: &str, password: &str) -> Response {
        self.0.post_basic(LOGIN, user, password).await
    }

    /// Logs in and answers the token.
    pub async fn logged_in(&self, user: &str, password: &str) -> String {
        let r = self.login(user, password).await;
        assert_eq!(r.status(), StatusCode::CREATED, "login of {user}");
        r.json().await.unwrap()
    }

    pub async fn whoami(&self) -> Response {
        self.0.get(LOGIN).await
    }

    pub async fn logout(&self) -> Response {
        self.0.delete(LOGIN).await
    }

    // ---------------------------------------------------------- catalog

    pub async fn list_libraries(&self) -> Response {
        self.0.get("/api/content/library").await
    }

    pub async fn get_library(&self, id: &str) -> Response {
        self.0.get(&format!("/api/content/library/{id}")).await
    }

    pub async fn list_items(&self, library: &str) -> Response {
        self.0
            .get(&format!("/api/content/library/item?library_id={library}"))
            .await
    }

    pub async fn get_item(&self, id: &str) -> Response {
        self.0.get(&format!("/api/content/library/item/{id}")).await
    }

    pub async fn item_files(&self, item: &str) -> Response {
        self.0
            .get(&format!("/api/content/library/item/{item}/file"))
            .await
    }

    pub async fn item_file(&self, item: &str, name: &str) -> Response {
        let name = encode(name);
        self.0
            .get(&format!(
                "/api/content/library/item/{item}/file?name={name}"
            ))
            .await
    }

    pub async fn item_storage(&self, item: &str) -> Response {
        self.0.get(&format!("{ITEM}/{item}/storage")).await
    }

    pub async fn item_storage_of(&self, item: &str, name: &str) -> Response {
        let name = encode(name);
        self.0
            .get(&format!("{ITEM}/{item}/storage?file_name={name}"))
            .await
    }

    // ------------------------------------------- libraries and items, managed

    /// `POST /api/content/library?action=find` with `spec` (`None`: no body).
    pub async fn find_libraries(&self, spec: Option<Value>) -> Response {
        self.0.post(&format!("{LIBRARY}?action=find"), spec).await
    }

    /// The ids a library find answers (it must succeed).
    pub async fn found_libraries(&self, spec: Value) -> Vec<String> {
        let r = self.find_libraries(Some(spec)).await;
        assert_eq!(r.status(), StatusCode::OK, "find libraries");
        r.json().await.unwrap()
    }

    pub async fn update_library(&self, id: &str, spec: Value) -> Response {
        self.0.patch(&format!("{LIBRARY}/{id}"), spec).await
    }

    /// `POST /api/content/local-library` with `spec` (`None`: no body), and a `Client-Token`.
    pub async fn create_library(
        &self,
        spec: Option<Value>,
        client_token: Option<&str>,
    ) -> Response {
        let mut r = self.0.request(reqwest::Method::POST, LOCAL_LIBRARY);
        if let Some(token) = client_token {
            r = r.header("Client-Token", token);
        }
        if let Some(spec) = spec {
            r = r.json(&spec);
        }
        Http::send(r).await
    }

    /// Creates a local library named `name` and answers its id.
    pub async fn new_library(&self, name: &str) -> String {
        let spec = json!({"name": name, "type": "LOCAL", "storage_backings": [{"type": "OTHER"}]});
        let r = self.create_library(Some(spec), None).await;
        assert_eq!(r.status(), StatusCode::CREATED, "create library {name}");
        r.json().await.unwrap()
    }

    pub async fn list_local_libraries(&self) -> Response {
        self.0.get(LOCAL_LIBRARY).await
    }

    pub async fn get_local_library(&self, id: &str) -> Response {
        self.0.get(&format!("{LOCAL_LIBRARY}/{id}")).await
    }

    /// The library's model (the get must succeed).
    pub async fn library(&self, id: &str) -> Value {
        let r = self.get_local_library(id).await;
        assert_eq!(r.status(), StatusCode::OK, "get library {id}");
        r.json().await.unwrap()
    }

    pub async fn update_local_library(&self, id: &str, spec: Value) -> Response {
        self.0.patch(&format!("{LOCAL_LIBRARY}/{id}"), spec).await
    }

    pub async fn delete_local_library(&self, id: &str) -> Response {
        self.0.delete(&format!("{LOCAL_LIBRARY}/{id}")).await
    }

    pub async fn list_subscribed_libraries(&self) -> Response {
        self.0.get("/api/content/subscribed-library").await
    }

    pub async fn get_subscribed_library(&self, id: &str) -> Response {
        self.0
            .get(&format!("/api/content/subscribed-library/{id}"))
            .await
    }

    /// `POST /api/content/library/item` (create) with `spec` and a `Client-Token`.
    pub async fn create_item(&self, spec: Option<Value>, client_token: Option<&str>) -> Response {
        let mut r = self.0.request(reqwest::Method::POST, ITEM);
        if let Some(token) = client_token {
            r = r.header("Client-Token", token);
        }
        if let Some(spec) = spec {
            r = r.json(&spec);
        }
        Http::send(r).await
    }

    /// Creates an item `name` of `item_type` in `library` and answers its id.
    pub async fn new_item(&self, library: &str, name: &str, item_type: &str) -> String {
        let spec = json!({"library_id": library, "name": name, "type": item_type});
        let r = self.create_item(Some(spec), None).await;
        assert_eq!(r.status(), StatusCode::CREATED, "create item {name}");
        r.json().await.unwrap()
    }

    /// `POST /api/content/library/item?action=find` with `spec` (`None`: no body).
    pub async fn find_items(&self, spec: Option<Value>) -> Response {
        self.0.post(&format!("{ITEM}?action=find"), spec).await
    }

    /// The ids an item find answers (it must succeed).
    pub async fn found_items(&self, spec: Value) -> Vec<String> {
        let r = self.find_items(Some(spec)).await;
        assert_eq!(r.status(), StatusCode::OK, "find items");
        r.json().await.unwrap()
    }

    /// The item's model (the get must succeed).
    pub async fn item(&self, id: &str) -> Value {
        let r = self.get_item(id).await;
        assert_eq!(r.status(), StatusCode::OK, "get item {id}");
        r.json().await.unwrap()
    }

    pub async fn update_item(&self, id: &str, spec: Value) -> Response {
        self.0.patch(&format!("{ITEM}/{id}"), spec).await
    }

    pub async fn delete_item(&self, id: &str) -> Response {
        self.0.delete(&format!("{ITEM}/{id}")).await
    }

    // ------------------------------------------------- download sessions

    /// `POST` of a create spec (`None`: no body at all).
    pub async fn create_session(&self, spec: Option<Value>) -> Response {
        self.0.post(SESSIONS, spec).await
    }

    /// Creates a session for `item` and answers its id.
    pub async fn new_session(&self, item: &str) -> String {
        let r = self
            .create_session(Some(json!({ "library_item_id": item })))
            .await;
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "create a session of {item}"
        );
        r.json().await.unwrap()
    }

    pub async fn list_sessions(&self) -> Response {
        self.0.get(SESSIONS).await
    }

    pub async fn list_sessions_of(&self, item: &str) -> Response {
        self.0
            .get(&format!("{SESSIONS}?library_item_id={item}"))
            .await
    }

    /// The ids the caller's list answers.
    pub async fn session_ids(&self) -> Vec<String> {
        let r = self.list_sessions().await;
        assert_eq!(r.status(), StatusCode::OK, "list sessions");
        r.json().await.unwrap()
    }

    pub async fn get_session(&self, id: &str) -> Response {
        self.0.get(&format!("{SESSIONS}/{id}")).await
    }

    /// The session's model (the get must succeed).
    pub async fn session(&self, id: &str) -> Value {
        let r = self.get_session(id).await;
        assert_eq!(r.status(), StatusCode::OK, "get session {id}");
        r.json().await.unwrap()
    }

    /// `POST .../{id}?action=ACTION` with `body` (`None`: no body).
    pub async fn session_action(&self, id: &str, action: &str, body: Option<Value>) -> Response {
        self.0
            .post(&format!("{SESSIONS}/{id}?action={action}"), body)
            .await
    }

    pub async fn keep_alive(&self, id: &str, body: Option<Value>) -> Response {
        self.session_action(id, "keep-alive", body).await
    }

    pub async fn cancel(&self, id: &str) -> Response {
        self.session_action(id, "cancel", None).await
    }

    pub async fn fail(&self, id: &str, message: &str) -> Response {
        let body = json!({ "client_error_message": message });
        self.session_action(id, "fail", Some(body)).await
    }

    pub async fn delete_session(&self, id: &str) -> Response {
        self.0.delete(&format!("{SESSIONS}/{id}")).await
    }

    // ------------------------------------------------------------ files

    pub async fn list_files(&self, session: &str) -> Response {
        self.0.get(&format!("{SESSIONS}/{session}/file")).await
    }

    pub async fn get_file(&self, session: &str, name: &str) -> Response {
        let name = encode(name);
        self.0
            .get(&format!("{SESSIONS}/{session}/file?file_name={name}"))
            .await
    }

    /// The file's info (the get must succeed).
    pub async fn file_info(&self, session: &str, name: &str) -> Value {
        let r = self.get_file(session, name).await;
        assert_eq!(r.status(), StatusCode::OK, "get file {name}");
        r.json().await.unwrap()
    }

    /// `POST .../file?action=prepare` with `body` (`None`: no body).
    pub async fn prepare(&self, session: &str, body: Option<Value>) -> Response {
        self.0
            .post(&format!("{SESSIONS}/{session}/file?action=prepare"), body)
            .await
    }

    /// Asks for `name` to be prepared (HTTPS) and answers its info.
    pub async fn prepare_file(&self, session: &str, name: &str) -> Value {
        let r = self
            .prepare(session, Some(json!({ "file_name": name })))
            .await;
        assert_eq!(r.status(), StatusCode::OK, "prepare {name}");
        r.json().await.unwrap()
    }

    /// Polls the file's info until `done` holds (panics after `within`).
    pub async fn wait_for(
        &self,
        session: &str,
        name: &str,
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let info = self.file_info(session, name).await;
            if done(&info) {
                return info;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting on {name}: {info}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls until the file is PREPARED (panics on ERROR or after `within`).
    pub async fn wait_prepared(&self, session: &str, name: &str, within: Duration) -> Value {
        let info = self
            .wait_for(session, name, within, |info| {
                info["status"] == "PREPARED" || info["status"] == "ERROR"
            })
            .await;
        assert_eq!(info["status"], "PREPARED", "{name} failed: {info}");
        info
    }

    /// Prepares `name`, waits until it is PREPARED and answers its download URI.
    pub async fn prepared_uri(&self, session: &str, name: &str, within: Duration) -> String {
        self.prepare_file(session, name).await;
        let info = self.wait_prepared(session, name, within).await;
        info["download_endpoint"]["uri"]
            .as_str()
            .expect("a PREPARED file has a download URI")
            .to_string()
    }

    // --------------------------------------------------- update sessions

    /// `POST` of an update-session create spec, with a `Client-Token` when given.
    pub async fn create_update(&self, spec: Option<Value>, client_token: Option<&str>) -> Response {
        let mut r = self.0.request(reqwest::Method::POST, UPDATES);
        if let Some(spec) = spec {
            r = r.json(&spec);
        }
        if let Some(t) = client_token {
            r = r.header("Client-Token", t);
        }
        Http::send(r).await
    }

    /// Creates an update session of `item` and answers its id.
    pub async fn new_update(&self, item: &str) -> String {
        let r = self
            .create_update(Some(json!({ "library_item_id": item })), None)
            .await;
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "create an update session of {item}"
        );
        r.json().await.unwrap()
    }

    pub async fn list_updates(&self, item: Option<&str>) -> Response {
        match item {
            Some(i) => self.0.get(&format!("{UPDATES}?library_item_id={i}")).await,
            None => self.0.get(UPDATES).await,
        }
    }

    pub async fn get_update(&self, id: &str) -> Response {
        self.0.get(&format!("{UPDATES}/{id}")).await
    }

    /// The update session's model (the get must succeed).
    pub async fn update(&self, id: &str) -> Value {
        let r = self.get_update(id).await;
        assert_eq!(r.status(), StatusCode::OK, "get update session {id}");
        r.json().await.unwrap()
    }

    /// `POST .../update-session/{id}?action=ACTION` with `body` (`None`: no body).
    pub async fn update_action(&self, id: &str, action: &str, body: Option<Value>) -> Response {
        self.0
            .post(&format!("{UPDATES}/{id}?action={action}"), body)
            .await
    }

    pub async fn delete_update(&self, id: &str) -> Response {
        self.0.delete(&format!("{UPDATES}/{id}")).await
    }

    /// `POST .../update-session/{id}/file?action=ACTION` with `body`.
    pub async fn update_file_action(
        &self,
        id: &str,
        action: &str,
        body: Option<Value>,
    ) -> Response {
        self.0
            .post(&format!("{UPDATES}/{id}/file?action={action}"), body)
            .await
    }

    /// Adds a PUSH file (size and SHA256 of `bytes` when given) and answers its info.
    pub async fn add_upload(&self, id: &str, name: &str, bytes: Option<&[u8]>) -> Value {
        let mut spec = json!({ "name": name, "source_type": "PUSH" });
        if let Some(b) = bytes {
            spec["size"] = json!(b.len());
            spec["checksum_info"] =
                json!({ "algorithm": "SHA256", "checksum": super::sha256_hex(b) });
        }
        let r = self.update_file_action(id, "add", Some(spec)).await;
        assert_eq!(r.status(), StatusCode::OK, "add {name}");
        r.json().await.unwrap()
    }

    pub async fn update_files(&self, id: &str) -> Response {
        self.0.get(&format!("{UPDATES}/{id}/file")).await
    }

    pub async fn update_file(&self, id: &str, name: &str) -> Response {
        let name = encode(name);
        self.0
            .get(&format!("{UPDATES}/{id}/file?file_name={name}"))
            .await
    }
}

/// Asserts an `/api` error answer: status and `error_type`; returns the body.
pub async fn assert_api_error(r: Response, status: u16, kind: &str) -> Value {
    assert_eq!(r.status().as_u16(), status, "status");
    let body: Value = r.json().await.expect("error body is JSON");
    assert_eq!(body["error_type"], kind, "{body}");
    assert!(
        body["messages"].as_array().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body
}
