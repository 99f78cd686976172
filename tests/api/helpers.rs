//! Starting the real application against a fresh database, and small client helpers.

use std::path::PathBuf;

use download_sessions::{
    config::Settings, dataplane::Endpoints, domain::UserName, store::Db, Application,
};
use reqwest::{Response, StatusCode};
use serde_json::Value;
use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

/// Server used for test databases (`TEST_DATABASE_URL`, default the local cluster).
pub fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// Creates an empty database and returns its URL.
pub async fn fresh_database() -> String {
    let server = server_url();
    let name = format!("dls_test_{}", Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(&server)
        .await
        .expect("PostgreSQL must run for the tests (see README)");
    conn.execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
        .await
        .expect("create test database");
    let mut url = url::Url::parse(&server).unwrap();
    url.set_path(&name);
    url.to_string()
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub db_url: String,
    pub data_dir: PathBuf,
    pub settings: Settings,
    pub db: Db,
    pub endpoints: Endpoints,
    pub client: reqwest::Client,
    _data_dir: Option<tempfile::TempDir>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Settings every test starts from: port 0, quiet logs.
pub fn test_settings(db_url: &str, data_dir: &std::path::Path) -> Settings {
    let mut s = Settings::load_with_env(None, Vec::<(String, String)>::new()).unwrap();
    s.http.listen = "127.0.0.1:0".parse().unwrap();
    s.http.threads = 2;
    s.http.shutdown_grace_seconds = 1;
    s.database.url = Some(db_url.to_string());
    s.database.max_connections = 8;
    s.data_dir = data_dir.to_path_buf();
    s.login.max_delay_seconds = 1;
    // The in-process S3 server logs every refused request at ERROR.
    s.log.level = std::env::var("TEST_LOG").unwrap_or_else(|_| "error,s3s=off".into());
    s
}

/// An application on a fresh database with default settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// An application on a fresh database; `tweak` adjusts its settings.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let db_url = fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let mut app = spawn_instance(&db_url, &path, tweak).await;
    app._data_dir = Some(dir);
    app
}

/// Another instance on an existing database and data dir (multi-instance tests).
pub async fn spawn_instance(
    db_url: &str,
    data_dir: &std::path::Path,
    tweak: impl FnOnce(&mut Settings),
) -> TestApp {
    let mut settings = test_settings(db_url, data_dir);
    tweak(&mut settings);
    download_sessions::telemetry::init(&settings.log);
    let app = Application::build(settings.clone())
        .await
        .expect("application builds");
    let port = app.port();
    let db = app.db().clone();
    let endpoints = app.endpoints().clone();
    let server = tokio::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        db_url: db_url.to_string(),
        data_dir: data_dir.to_path_buf(),
        settings,
        db,
        endpoints,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        _data_dir: None,
        server,
    }
}

pub const ALL_PRIVILEGES: &[&str] = &[
    "System.Read",
    "ContentLibrary.DownloadSession",
    "ContentLibrary.ReadStorage",
];

pub const DOWNLOADER: &[&str] = &["System.Read", "ContentLibrary.DownloadSession"];

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn add_user(&self, name: &str, password: &str, privileges: &[&str]) {
        let hash = download_sessions::service::hash_password(password).unwrap();
        let privileges: Vec<String> = privileges.iter().map(|p| p.to_string()).collect();
        self.db
            .upsert_user(&UserName::new(name).unwrap(), &hash, &privileges)
            .await
            .unwrap();
    }

    /// Logs in on `/api/session` and returns the token.
    pub async fn login(&self, name: &str, password: &str) -> String {
        let r = self
            .client
            .post(self.url("/api/session"))
            .basic_auth(name, Some(password))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "login of {name}");
        r.json::<String>().await.unwrap()
    }

    /// A user with `privileges`, logged in.
    pub async fn user(&self, name: &str, privileges: &[&str]) -> String {
        self.add_user(name, "pw-for-tests", privileges).await;
        self.login(name, "pw-for-tests").await
    }

    /// Imports files (name, bytes) as the next content version of library/item; returns the item id.
    pub async fn import(&self, library: &str, item: &str, files: &[(&str, &[u8])]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let mut paths = Vec::new();
        for (name, bytes) in files {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            paths.push(p);
        }
        let refs: Vec<&std::path::Path> = paths.iter().map(|p| p.as_path()).collect();
        let stores = download_sessions::storage::Buckets::from_settings(&self.settings).unwrap();
        let (id, _) = download_sessions::service::import::import_files(
            &self.db,
            &stores.content,
            library,
            item,
            &refs,
        )
        .await
        .unwrap();
        id.to_string()
    }

    pub async fn get(&self, token: &str, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .header("vmware-api-session-id", token)
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, token: &str, path: &str, body: Option<Value>) -> Response {
        let mut r = self
            .client
            .post(self.url(path))
            .header("vmware-api-session-id", token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send().await.unwrap()
    }

    pub async fn delete(&self, token: &str, path: &str) -> Response {
        self.client
            .delete(self.url(path))
            .header("vmware-api-session-id", token)
            .send()
            .await
            .unwrap()
    }

    /// Creates a download session for `item` on `/api`; returns its id.
    pub async fn create_session(&self, token: &str, item: &str) -> String {
        let r = self
            .post(
                token,
                "/api/content/library/item/download-session",
                Some(serde_json::json!({ "library_item_id": item })),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json::<String>().await.unwrap()
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
