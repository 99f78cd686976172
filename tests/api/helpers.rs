//! Starting the real application against a fresh database (zero2prod's `TestApp`),
//! and what tests do with it: users, imports, and the surface clients of `tests/common`.

use std::path::PathBuf;

use download_sessions::{
    config::Settings, dataplane::Endpoints, domain::UserName, store::Db, validity::Validity,
    Application,
};
use reqwest::Response;
use serde_json::Value;

pub use crate::common::{
    self,
    api::{self, assert_api_error},
    pattern, pseudo_random,
    raw::Raw,
    rest::{self, assert_rest_error, assert_void, value_of},
    rpc::{self, session_ctx, structure, user_pass_ctx},
    sha256_hex, Api, Http, Rest, Rpc,
};

/// A fresh database for one test.
pub async fn fresh_database() -> String {
    common::fresh_database("dls_test_").await
}

/// The test application: the real service on port 0 with a fresh database, and a
/// client for each surface (`app.api(&token)`, `app.rest(&token)`, `app.rpc()`) with a
/// method per operation, so tests read as the scenario they check.
pub struct TestApp {
    pub address: String,
    pub port: u16,
    /// The port of `http.metrics_listen`, when the test configured one.
    pub metrics_port: Option<u16>,
    pub db_url: String,
    pub data_dir: PathBuf,
    pub settings: Settings,
    pub db: Db,
    pub endpoints: Endpoints,
    /// The instance's validity cache (its LISTEN connection's name, whether it is trusted).
    pub validity: Validity,
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
    let metrics_port = app.metrics_port();
    let db = app.db().clone();
    let endpoints = app.endpoints().clone();
    let validity = app.validity().clone();
    let server = tokio::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        metrics_port,
        db_url: db_url.to_string(),
        data_dir: data_dir.to_path_buf(),
        settings,
        db,
        endpoints,
        validity,
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
    "ContentLibrary.CreateLocalLibrary",
    "ContentLibrary.UpdateLocalLibrary",
    "ContentLibrary.DeleteLocalLibrary",
    "ContentLibrary.UpdateLibrary",
    "ContentLibrary.AddLibraryItem",
    "ContentLibrary.UpdateLibraryItem",
    "ContentLibrary.DeleteLibraryItem",
];

/// What managing the catalog takes: reading it and every write privilege.
pub const LIBRARIAN: &[&str] = &[
    "System.Read",
    "ContentLibrary.ReadStorage",
    "ContentLibrary.CreateLocalLibrary",
    "ContentLibrary.UpdateLocalLibrary",
    "ContentLibrary.DeleteLocalLibrary",
    "ContentLibrary.UpdateLibrary",
    "ContentLibrary.AddLibraryItem",
    "ContentLibrary.UpdateLibraryItem",
    "ContentLibrary.DeleteLibraryItem",
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

    /// This instance, spoken to without a login.
    pub fn http(&self) -> Http<'_> {
        Http::new(&self.client, &self.address)
    }

    /// `/api` as the holder of `token`.
    pub fn api<'a>(&'a self, token: &'a str) -> Api<'a> {
        Api(self.http().with_token(token))
    }

    /// `/api` without a login.
    pub fn api_anonymous(&self) -> Api<'_> {
        Api(self.http())
    }

    /// `/rest` as the holder of `token`.
    pub fn rest<'a>(&'a self, token: &'a str) -> Rest<'a> {
        Rest(self.http().with_token(token))
    }

    /// `/rest` without a login.
    pub fn rest_anonymous(&self) -> Rest<'_> {
        Rest(self.http())
    }

    /// JSON-RPC on `POST /api` (credentials travel in each call's security context).
    pub fn rpc(&self) -> Rpc<'_> {
        Rpc(self.http())
    }

    /// Logs in on `/api/session` and returns the token.
    pub async fn login(&self, name: &str, password: &str) -> String {
        self.api_anonymous().logged_in(name, password).await
    }

    /// A user with `privileges`, logged in.
    pub async fn user(&self, name: &str, privileges: &[&str]) -> String {
        self.add_user(name, "pw-for-tests", privileges).await;
        self.login(name, "pw-for-tests").await
    }

    /// Imports files (name, bytes) as the next content version of library/item; returns the item id.
    pub async fn import(&self, library: &str, item: &str, files: &[(&str, &[u8])]) -> String {
        self.import_as(library, item, None, files).await
    }

    /// [`TestApp::import`] with `import --type`.
    pub async fn import_as(
        &self,
        library: &str,
        item: &str,
        item_type: Option<&str>,
        files: &[(&str, &[u8])],
    ) -> String {
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
            item_type,
            &refs,
        )
        .await
        .unwrap();
        id.to_string()
    }

    /// `/metrics` of this instance's public listener, as Prometheus reads it.
    pub async fn metrics_text(&self) -> String {
        let r = self.http().get("/metrics").await;
        assert_eq!(r.status(), 200);
        r.text().await.unwrap()
    }

    /// A raw `GET` of `path` as the holder of `token` (odd requests the clients do not make).
    pub async fn get(&self, token: &str, path: &str) -> Response {
        self.http().with_token(token).get(path).await
    }

    /// A raw `POST` of `body` (or none) to `path` as the holder of `token`.
    pub async fn post(&self, token: &str, path: &str, body: Option<Value>) -> Response {
        self.http().with_token(token).post(path, body).await
    }
}

/// How long a change made elsewhere (another instance, a statement of a test)
/// may take to reach an instance's validity cache: its staleness bound.
pub const STALENESS: std::time::Duration = download_sessions::validity::MAX_STALENESS;

/// Sends `probe` until it answers `status` and returns that answer; panics if
/// it still has not after [`STALENESS`] (notifications usually take milliseconds).
pub async fn within_staleness<F, Fut>(mut probe: F, status: u16) -> Response
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let start = std::time::Instant::now();
    loop {
        let r = probe().await;
        if r.status().as_u16() == status {
            return r;
        }
        assert!(
            start.elapsed() < STALENESS,
            "still {} after {:?}, want {status}",
            r.status(),
            start.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
