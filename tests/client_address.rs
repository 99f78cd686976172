//! The client address in the request log: `X-Forwarded-For` is believed only from
//! the proxies `http.trusted_proxies` names (a binary of its own: it owns the
//! process's log subscriber and reads back what the service wrote).

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

mod common;

use download_sessions::{config::Settings, edge::client::TrustedProxies, Application};
use serde_json::Value;

/// Everything the service logs, as JSON lines.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// The client address logged for the request with this id.
    fn client_of(&self, request_id: &str) -> Option<String> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| l["target"] == "access" && l["fields"]["request_id"] == request_id)
            .find_map(|l| l["fields"]["client"].as_str().map(str::to_string))
    }
}

/// An instance trusting `trusted`; its port, and its data dir to keep while it runs.
async fn start(trusted: &[&str]) -> (u16, tempfile::TempDir) {
    let url = common::fresh_database("dls_test_").await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = Settings::load_with_env(None, Vec::<(String, String)>::new()).unwrap();
    s.http.listen = "127.0.0.1:0".parse().unwrap();
    s.http.threads = 1;
    s.http.trusted_proxies = TrustedProxies::parse(trusted.iter().copied());
    s.database.url = Some(url);
    s.database.max_connections = 4;
    s.data_dir = dir.path().to_path_buf();
    s.workers.count = 0;
    let app = Application::build(s).await.expect("application builds");
    let port = app.port();
    tokio::spawn(app.run_until_stopped());
    (port, dir)
}

/// Sends `/healthz` with a forged `X-Forwarded-For`; the request id.
async fn forged(port: u16) -> String {
    let r = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .header("x-forwarded-for", "203.0.113.7")
        .header("forwarded", "for=198.51.100.9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.headers()["x-request-id"].to_str().unwrap().to_string()
}

#[tokio::test]
async fn the_logged_client_is_the_peer_unless_a_trusted_proxy_forwarded_it() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_env_filter("info,sqlx=warn")
        .with_writer(move || writer.clone())
        .init();

    // Nobody trusted (the default): the forged headers change nothing.
    let (port, _dir) = start(&[]).await;
    let id = forged(port).await;
    assert_eq!(logs.client_of(&id).as_deref(), Some("127.0.0.1"));

    // The loopback peer as a trusted proxy: its RFC 7239 header names the client.
    let (port, _dir2) = start(&["127.0.0.0/8"]).await;
    let id = forged(port).await;
    assert_eq!(logs.client_of(&id).as_deref(), Some("198.51.100.9"));
}
