//! Process-level failover: real `download-sessions serve` processes on one
//! database and one data dir, killed (SIGKILL), stopped (SIGTERM) and restarted
//! under client load, and a PostgreSQL restart underneath a running service.
//!
//! Every instance listens on 127.0.0.1 only. Tests in this binary run one at a
//! time (they measure failover times on a two-core machine) and each is bounded
//! to a minute or two.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

mod common;

use common::{fresh_database, pseudo_random, sha256_hex, Api, Http};
use download_sessions::embedded_pg::EmbeddedPostgres;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_download-sessions");
use common::api::SESSIONS as DS;
const PASSWORD: &str = "failover-pw";

/// Tests of this binary run one after another: timing figures mean nothing
/// when two of them share two cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ---------------------------------------------------------------------------
// Processes

/// A free loopback port (bound and released; good enough on a test machine).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The environment every process of one test shares: database, data dir, and
/// short leases so failover happens in seconds.
#[derive(Clone)]
struct Env {
    vars: Vec<(String, String)>,
    logs: PathBuf,
}

impl Env {
    fn new(database_url: &str, data_dir: &Path, logs: &Path) -> Env {
        let vars = [
            ("DATABASE_URL", database_url.to_string()),
            ("DLS__DATA_DIR", data_dir.display().to_string()),
            ("DLS__LOG__FORMAT", "json".into()),
            ("DLS__LOG__LEVEL", "info,sqlx=warn".into()),
            ("DLS__HTTP__THREADS", "2".into()),
            ("DLS__DATABASE__MAX_CONNECTIONS", "6".into()),
            ("DLS__WORKERS__COUNT", "2".into()),
            ("DLS__WORKERS__LEASE_SECONDS", "4".into()),
            ("DLS__WORKERS__HEARTBEAT_SECONDS", "1".into()),
            ("DLS__WORKERS__POLL_SECONDS", "1".into()),
            ("DLS__MAINTENANCE__INTERVAL_SECONDS", "2".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Env {
            vars,
            logs: logs.to_path_buf(),
        }
    }

    /// The same environment with `key` set to `value`.
    fn with(&self, key: &str, value: impl ToString) -> Env {
        let mut env = self.clone();
        env.vars.retain(|(k, _)| k != key);
        env.vars.push((key.to_string(), value.to_string()));
        env
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(self.vars.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Runs a one-shot command (`user add`, `import`) to completion; its stdout.
    fn run(&self, args: &[&str], stdin: &str) -> String {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary runs");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn add_user(&self, name: &str, privileges: &[&str]) {
        let mut args = vec!["user", "add", name, "--password-stdin"];
        for p in privileges {
            args.extend(["--privilege", p]);
        }
        self.run(&args, &format!("{PASSWORD}\n"));
    }

    /// Imports `files` through the content store; the item id.
    fn import(&self, item: &str, files: &[&Path]) -> String {
        let mut args = vec!["import", "--library", "lib", "--item", item];
        let paths: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
        args.extend(paths.iter().map(String::as_str));
        let out = self.run(&args, "");
        out.lines().last().unwrap().trim().to_string()
    }
}

/// One `serve` process.
struct Instance {
    name: String,
    port: u16,
    child: Child,
    log: PathBuf,
}

impl Instance {
    fn start(name: &str, port: u16, env: &Env) -> Instance {
        let log = env.logs.join(format!("{name}.log"));
        let out = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = env
            .with("DLS__HTTP__LISTEN", format!("127.0.0.1:{port}"))
            .command(&["serve"])
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("serve starts");
        Instance {
            name: name.to_string(),
            port,
            child,
            log,
        }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }

    /// Waits until `/readyz` answers 200.
    async fn ready(&mut self, client: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("{} exited ({status}):\n{}", self.name, self.log_tail());
            }
            if let Ok(r) = client.get(self.url("/readyz")).send().await {
                if r.status() == StatusCode::OK {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{} not ready:\n{}",
                self.name,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {signal} {}", self.name);
    }

    fn sigkill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits for the process to exit by itself.
    async fn exited(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} still running:\n{}",
                self.name,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn assert_no_panic(&self) {
        let text = self.log_text();
        assert!(
            !text.contains("panicked"),
            "{} panicked:\n{}",
            self.name,
            self.log_tail()
        );
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if self.alive() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------
// Database and files

/// (status, lease_owner, bytes_transferred, attempts, checksum) of a file row.
type Row = (String, Option<Uuid>, i64, i32, Option<String>);

async fn file_row(db: &str, session: &str, name: &str) -> Row {
    let mut conn = PgConnection::connect(db).await.unwrap();
    let row = sqlx::query_as(
        "SELECT status, lease_owner, bytes_transferred, attempts, checksum \
         FROM download_files WHERE session_id = $1 AND name = $2",
    )
    .bind(Uuid::parse_str(session).unwrap())
    .bind(name)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let _ = conn.close().await;
    row
}

/// `len` pseudo-random bytes written to `dir/name`; (path, sha256).
fn make_file(dir: &Path, name: &str, len: usize, seed: u64) -> (PathBuf, String) {
    let bytes = pseudo_random(len, seed);
    let path = dir.join(name);
    std::fs::write(&path, &bytes).unwrap();
    (path, sha256_hex(&bytes))
}

/// A temp dir the embedded cluster's server user can enter (we may be root).
fn open_tempdir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("dls-fo").tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

// ---------------------------------------------------------------------------
// Client

/// `/api` of the instance at `base` as the holder of `token`.
fn api<'a>(client: &'a reqwest::Client, base: &'a str, token: &'a str) -> Api<'a> {
    Api(Http::new(client, base).with_token(token))
}

/// Logs `user` in on the instance at `base`.
async fn login(client: &reqwest::Client, base: &str, user: &str) -> String {
    Api(Http::new(client, base)).logged_in(user, PASSWORD).await
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The endpoint URI of a prepared file, moved to another instance's address.
fn on(uri: &str, base: &str) -> String {
    let url = url::Url::parse(uri).unwrap();
    let mut tail = url.path().to_string();
    if let Some(q) = url.query() {
        tail = format!("{tail}?{q}");
    }
    format!("{base}{tail}")
}

async fn download_sha(client: &reqwest::Client, uri: &str) -> String {
    let r = client.get(uri).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "GET {uri}");
    sha256_hex(&r.bytes().await.unwrap())
}

// ---------------------------------------------------------------------------
// Tests

/// Keys of the throttle that slows staging down so it can be interrupted.
const THROTTLE: &str = "DLS__WORKERS__THROTTLE_BYTES_PER_SECOND";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_staging_another_instance_finishes_the_file() {
    let _serial = SERIAL.lock().await;
    let db = fresh_database("dls_test_failover_").await;
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    // 48 MiB at 6 MiB/s: staging takes about 8 s per attempt.
    let env = Env::new(&db, data.path(), logs.path()).with(THROTTLE, 6 << 20);
    let lease = 4u64;
    let maintenance = 2u64;
    env.add_user("alice", &["System.Read", "ContentLibrary.DownloadSession"]);
    let (small, small_sha) = make_file(files.path(), "small.ovf", 200_000, 1);
    let (big, big_sha) = make_file(files.path(), "disk-0.vmdk", 48 << 20, 2);
    let item = env.import("vm", &[&small, &big]);

    let client = client();
    let (port_a, port_b) = (free_port(), free_port());
    let mut a = Instance::start("a", port_a, &env);
    a.ready(&client).await;

    // A logs alice in; the small file is prepared by A.
    let token = login(&client, &a.base(), "alice").await;
    let session = api(&client, &a.base(), &token).new_session(&item).await;
    api(&client, &a.base(), &token)
        .prepare_file(&session, "small.ovf")
        .await;
    let small_info = api(&client, &a.base(), &token)
        .wait_prepared(&session, "small.ovf", Duration::from_secs(30))
        .await;

    // The big file: A alone runs workers, so A claims it.
    api(&client, &a.base(), &token)
        .prepare_file(&session, "disk-0.vmdk")
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let owner_a = loop {
        let (status, owner, bytes, _, _) = file_row(&db, &session, "disk-0.vmdk").await;
        if status == "PREPARING" && bytes > 0 {
            break owner.unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "A never started staging ({status})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let mut b = Instance::start("b", port_b, &env);
    b.ready(&client).await;

    // Both live: A's login token and A's signed URI work on B, B's on A.
    let token_b = login(&client, &b.base(), "alice").await;
    let r = client
        .get(a.url(&format!("{DS}/{session}")))
        .header("vmware-api-session-id", &token_b)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let info_b = api(&client, &b.base(), &token)
        .file_info(&session, "small.ovf")
        .await;
    assert_eq!(info_b["status"], "PREPARED");
    let uri = small_info["download_endpoint"]["uri"].as_str().unwrap();
    assert!(uri.starts_with(&a.base()), "{uri}");
    assert_eq!(download_sha(&client, uri).await, small_sha);
    assert_eq!(download_sha(&client, &on(uri, &b.base())).await, small_sha);

    // SIGKILL A in the middle of staging: nothing hands the claim back.
    let (status, owner, bytes_before, _, _) = file_row(&db, &session, "disk-0.vmdk").await;
    assert_eq!(status, "PREPARING", "A finished too early");
    assert_eq!(owner, Some(owner_a));
    a.sigkill();
    let killed = Instant::now();
    eprintln!("killed A at {bytes_before} bytes staged");

    // B's maintenance rescues the lapsed claim and B's workers stage it again.
    let deadline = killed + Duration::from_secs(90);
    let mut reclaimed = None;
    let prepared_at = loop {
        let (status, owner, _, attempts, checksum) = file_row(&db, &session, "disk-0.vmdk").await;
        if reclaimed.is_none() && owner.is_some_and(|o| o != owner_a) {
            reclaimed = Some(killed.elapsed());
            assert_eq!(attempts, 2, "the killed attempt counts");
        }
        if status == "PREPARED" {
            assert_eq!(checksum.as_deref(), Some(big_sha.as_str()));
            break killed.elapsed();
        }
        assert_ne!(status, "ERROR");
        assert!(Instant::now() < deadline, "B never finished ({status})");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let reclaimed = reclaimed.expect("B claimed the file");
    eprintln!(
        "failover: claimed by B {:.1} s after SIGKILL (lease {lease} s, maintenance every \
         {maintenance} s), PREPARED {:.1} s after SIGKILL",
        reclaimed.as_secs_f64(),
        prepared_at.as_secs_f64()
    );
    // Lease lapses within `lease` s of the last heartbeat, the next pass (every
    // `maintenance` s, jittered 10%) rescues it, NOTIFY wakes B at once.
    let bound = Duration::from_secs(lease + maintenance + 2);
    assert!(
        reclaimed <= bound,
        "reclaimed after {reclaimed:?} > {bound:?}"
    );

    let info = api(&client, &b.base(), &token)
        .file_info(&session, "disk-0.vmdk")
        .await;
    assert_eq!(info["checksum_info"]["checksum"], big_sha.as_str());
    let big_uri = info["download_endpoint"]["uri"]
        .as_str()
        .unwrap()
        .to_string();

    // A comes back; the file downloads through either instance.
    let mut a = Instance::start("a2", port_a, &env);
    a.ready(&client).await;
    assert_eq!(
        download_sha(&client, &on(&big_uri, &a.base())).await,
        big_sha
    );
    assert_eq!(
        download_sha(&client, &on(&big_uri, &b.base())).await,
        big_sha
    );
    // The login made on B still works on the restarted A.
    let r = client
        .get(a.url("/api/session"))
        .header("vmware-api-session-id", &token_b)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    a.assert_no_panic();
    b.assert_no_panic();
}

/// One request of the client loops: when, what it got, and how long it took.
#[derive(Debug, Clone)]
struct Sample {
    at: Duration,
    status: Option<u16>,
    error_type: Option<String>,
    took: Duration,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_under_load_answers_503_then_recovers_by_itself() {
    let _serial = SERIAL.lock().await;
    // A private cluster this test may stop: never the shared one.
    let pg_root = open_tempdir();
    let pg = EmbeddedPostgres::start(pg_root.path()).await.unwrap();
    let db = pg.url();
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let acquire_timeout = 2u64;
    let env = Env::new(&db, data.path(), logs.path())
        .with("DLS__DATABASE__ACQUIRE_TIMEOUT_SECONDS", acquire_timeout);
    env.add_user("alice", &["System.Read", "ContentLibrary.DownloadSession"]);
    let (disk, disk_sha) = make_file(files.path(), "disk.vmdk", 1 << 20, 3);
    let item = env.import("vm", &[&disk]);

    let client = client();
    let mut app = Instance::start("app", free_port(), &env);
    app.ready(&client).await;
    let base = app.base();
    let token = login(&client, &base, "alice").await;
    let session = api(&client, &base, &token).new_session(&item).await;
    let uri = api(&client, &base, &token)
        .prepared_uri(&session, "disk.vmdk", Duration::from_secs(30))
        .await;
    assert_eq!(download_sha(&client, &uri).await, disk_sha);

    // A steady client: session get, file get, ranged download, in turn.
    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn({
        let (client, base, token, session, uri, stop) = (
            client.clone(),
            base.clone(),
            token.clone(),
            session.clone(),
            uri.clone(),
            stop.clone(),
        );
        async move {
            let mut samples = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let request = match i % 3 {
                    0 => client.get(format!("{base}{DS}/{session}")),
                    1 => client.get(format!("{base}{DS}/{session}/file?file_name=disk.vmdk")),
                    _ => client.get(&uri).header("Range", "bytes=0-4095"),
                };
                let r = request.header("vmware-api-session-id", &token).send().await;
                let (status, error_type) = match r {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let body: Value = if status >= 400 {
                            r.json().await.unwrap_or(Value::Null)
                        } else {
                            let _ = r.bytes().await;
                            Value::Null
                        };
                        (Some(status), body["error_type"].as_str().map(String::from))
                    }
                    Err(_) => (None, None),
                };
                samples.push(Sample {
                    at: t0.elapsed(),
                    status,
                    error_type,
                    took: started.elapsed(),
                });
                i += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            samples
        }
    });

    tokio::time::sleep(Duration::from_secs(2)).await;
    let stopping = t0.elapsed();
    let mut pg = pg;
    let pg = tokio::task::spawn_blocking(move || {
        pg.stop();
        pg
    })
    .await
    .unwrap();
    let stopped = t0.elapsed();

    // While it is down: 503 with the contract's body; liveness holds, readiness does not.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let healthz = client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(healthz.status(), StatusCode::OK);
    let readyz = client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(readyz.status(), StatusCode::SERVICE_UNAVAILABLE);
    let readyz: Value = readyz.json().await.unwrap();
    assert_eq!(readyz["database"], false, "{readyz}");
    let r = client
        .post(format!("{base}/api/session"))
        .basic_auth("alice", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "login while down"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error_type"], "SERVICE_UNAVAILABLE", "{body}");
    assert!(app.alive(), "the service died with its database");

    drop(pg); // stopped already; the next start takes the cluster over
    let restarting = t0.elapsed();
    let pg = EmbeddedPostgres::start(pg_root.path()).await.unwrap();
    let restarted = t0.elapsed();

    // The service finds the database again by itself.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = client.get(app.url("/readyz")).send().await.unwrap();
        if r.status() == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "never ready again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let samples = load.await.unwrap();

    // Before the stop: all fine.
    let before: Vec<&Sample> = samples.iter().filter(|s| s.at < stopping).collect();
    assert!(!before.is_empty());
    assert!(
        before.iter().all(|s| matches!(s.status, Some(200 | 206))),
        "{before:?}"
    );
    // Any failure is a 503 SERVICE_UNAVAILABLE: no 500, no dropped connection.
    let failed: Vec<&Sample> = samples
        .iter()
        .filter(|s| !matches!(s.status, Some(200 | 206)))
        .collect();
    assert!(!failed.is_empty(), "no request saw the outage");
    for s in &failed {
        assert_eq!(s.status, Some(503), "{s:?}");
        assert_eq!(
            s.error_type.as_deref(),
            Some("SERVICE_UNAVAILABLE"),
            "{s:?}"
        );
        // A request waits at most about the pool's acquire timeout.
        assert!(
            s.took <= Duration::from_secs(acquire_timeout + 2),
            "{s:?} waited too long"
        );
    }
    let first_503 = failed.first().unwrap().at;
    let last_503 = failed.last().unwrap().at;
    assert!(first_503 >= stopping, "{first_503:?}");
    let first_ok_after = samples
        .iter()
        .find(|s| s.at > last_503 && matches!(s.status, Some(200 | 206)))
        .expect("success after the restart")
        .at;
    // Once back, it stays back.
    assert!(samples
        .iter()
        .filter(|s| s.at > first_ok_after)
        .all(|s| matches!(s.status, Some(200 | 206))));
    let recovery = first_ok_after.saturating_sub(restarted);
    eprintln!(
        "postgres restart: stop at {:.1} s (down at {:.1} s), start at {:.1} s (up at {:.1} s); \
         {} requests, {} answered 503 between {:.1} s and {:.1} s; first success {:.2} s after \
         PostgreSQL was back",
        stopping.as_secs_f64(),
        stopped.as_secs_f64(),
        restarting.as_secs_f64(),
        restarted.as_secs_f64(),
        samples.len(),
        failed.len(),
        first_503.as_secs_f64(),
        last_503.as_secs_f64(),
        recovery.as_secs_f64()
    );
    assert!(
        recovery < Duration::from_secs(15),
        "recovered after {recovery:?}"
    );

    // Nothing was lost and nothing panicked; the process never restarted.
    assert!(app.alive());
    assert_eq!(download_sha(&client, &uri).await, disk_sha);
    app.assert_no_panic();
    drop(app);
    drop(pg);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_a_slow_download_and_hands_claims_back() {
    let _serial = SERIAL.lock().await;
    let db = fresh_database("dls_test_failover_").await;
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let grace = 20u64;
    // Leases far longer than the test's bounds: only a hand-back explains a
    // quick move to the other instance.
    let env = Env::new(&db, data.path(), logs.path())
        .with("DLS__HTTP__SHUTDOWN_GRACE_SECONDS", grace)
        .with("DLS__WORKERS__LEASE_SECONDS", 60)
        .with("DLS__WORKERS__HEARTBEAT_SECONDS", 1)
        .with(THROTTLE, 6 << 20);
    env.add_user("alice", &["System.Read", "ContentLibrary.DownloadSession"]);
    let (served, served_sha) = make_file(files.path(), "served.vmdk", 48 << 20, 4);
    let (staged, staged_sha) = make_file(files.path(), "staged.vmdk", 48 << 20, 5);
    let item = env.import("vm", &[&served, &staged]);

    let client = client();
    let mut a = Instance::start("a", free_port(), &env);
    a.ready(&client).await;
    let token = login(&client, &a.base(), "alice").await;
    let session = api(&client, &a.base(), &token).new_session(&item).await;
    let uri = api(&client, &a.base(), &token)
        .prepared_uri(&session, "served.vmdk", Duration::from_secs(60))
        .await;

    // A stages the second file; B waits with workers of its own.
    api(&client, &a.base(), &token)
        .prepare_file(&session, "staged.vmdk")
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let owner_a = loop {
        let (status, owner, bytes, _, _) = file_row(&db, &session, "staged.vmdk").await;
        if status == "PREPARING" && bytes > 0 {
            break owner.unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "A never started staging ({status})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut b = Instance::start("b", free_port(), &env);
    b.ready(&client).await;

    // A slow client: 48 MiB at about 8 MiB/s, so about 6 s; SIGTERM once 4 MiB are in.
    let rate = 8u64 << 20;
    let mut download = client.get(&uri).send().await.unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    let mut got = Vec::with_capacity(48 << 20);
    let reading = Instant::now();
    let mut signalled = None;
    let (mut handback, mut refused) = (None, None);
    while let Some(chunk) = download.chunk().await.unwrap() {
        got.extend_from_slice(&chunk);
        if signalled.is_none() && got.len() >= 4 << 20 {
            a.signal("-TERM");
            let at = Instant::now();
            signalled = Some(at);
            handback = Some(tokio::spawn(moved_from(
                db.clone(),
                session.clone(),
                owner_a,
                at,
            )));
            refused = Some(tokio::spawn(refuses_connections(a.url("/healthz"), at)));
        }
        let due = Duration::from_secs_f64(got.len() as f64 / rate as f64);
        if let Some(ahead) = due.checked_sub(reading.elapsed()) {
            tokio::time::sleep(ahead).await;
        }
    }
    let signalled = signalled.expect("SIGTERM sent");
    let drained = signalled.elapsed();
    assert_eq!(
        sha256_hex(&got),
        served_sha,
        "the download completed intact"
    );
    eprintln!(
        "sigterm: download of 48 MiB finished {:.1} s after SIGTERM",
        drained.as_secs_f64()
    );
    assert!(
        drained > Duration::from_secs(1),
        "the download was not slow"
    );

    // New connections were refused at once while the download went on.
    let refused = refused.unwrap().await.unwrap();
    assert!(
        refused < Duration::from_secs(2),
        "refused after {refused:?}"
    );
    // The claim went back at once (lease 60 s): B took the file over.
    let handed_back = handback.unwrap().await.unwrap();
    eprintln!(
        "sigterm: new connections refused {:.2} s and the claim left A {:.2} s after SIGTERM",
        refused.as_secs_f64(),
        handed_back.as_secs_f64()
    );
    assert!(
        handed_back < Duration::from_secs(3),
        "claim left A after {handed_back:?}"
    );
    let status = a.exited(Duration::from_secs(grace)).await;
    assert!(status.success(), "A exited with {status}");
    let exited_after = signalled.elapsed();
    eprintln!(
        "sigterm: A exited {:.1} s after SIGTERM",
        exited_after.as_secs_f64()
    );
    assert!(a.log_text().contains("claim handed back at shutdown"));

    let info = api(&client, &b.base(), &token)
        .wait_prepared(&session, "staged.vmdk", Duration::from_secs(60))
        .await;
    assert_eq!(info["checksum_info"]["checksum"], staged_sha.as_str());
    let (_, _, _, attempts, _) = file_row(&db, &session, "staged.vmdk").await;
    assert_eq!(attempts, 1, "a handed-back claim is not an attempt");
    a.assert_no_panic();
    b.assert_no_panic();
}

/// How long after `since` the file stopped being `owner`'s (polled every 20 ms).
async fn moved_from(db: String, session: String, owner: Uuid, since: Instant) -> Duration {
    let deadline = since + Duration::from_secs(30);
    loop {
        let (_, now, _, _, _) = file_row(&db, &session, "staged.vmdk").await;
        if now != Some(owner) {
            return since.elapsed();
        }
        assert!(Instant::now() < deadline, "the claim never left {owner}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How long after `since` a new connection to `url` was refused.
async fn refuses_connections(url: String, since: Instant) -> Duration {
    let client = reqwest::Client::new();
    let deadline = since + Duration::from_secs(10);
    loop {
        match client
            .get(&url)
            .timeout(Duration::from_secs(1))
            .send()
            .await
        {
            Err(e) if e.is_connect() => return since.elapsed(),
            Err(e) if e.is_timeout() => panic!("{url}: {e:?} (a hang, not a refusal)"),
            // Accepted just before the listener closed, then dropped unanswered:
            // a balancer resends those (HAProxy `retry-on empty-response`).
            Err(e) => eprintln!("sigterm: a connection made during shutdown was dropped: {e:?}"),
            Ok(_) => {}
        }
        assert!(Instant::now() < deadline, "{url} still accepts connections");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A request of the rolling-restart client; idempotent or made so (Client-Token).
#[derive(Clone, Copy, Debug)]
enum Op {
    GetSession,
    GetFile,
    KeepAlive,
    Download,
    Create(u64),
    Login,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_under_load_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let db = fresh_database("dls_test_failover_").await;
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let env = Env::new(&db, data.path(), logs.path())
        .with("DLS__HTTP__SHUTDOWN_GRACE_SECONDS", 10)
        .with(THROTTLE, 8 << 20);
    env.add_user("alice", &["System.Read", "ContentLibrary.DownloadSession"]);
    let (small, small_sha) = make_file(files.path(), "small.ovf", 300_000, 6);
    let (big, big_sha) = make_file(files.path(), "disk.vmdk", 32 << 20, 7);
    let item = env.import("vm", &[&small, &big]);

    let client = client();
    let ports = [free_port(), free_port()];
    let mut instances = [
        Instance::start("a", ports[0], &env),
        Instance::start("b", ports[1], &env),
    ];
    for i in instances.iter_mut() {
        i.ready(&client).await;
    }
    let bases: Vec<String> = instances.iter().map(Instance::base).collect();
    let token = login(&client, &bases[0], "alice").await;
    let session = api(&client, &bases[0], &token).new_session(&item).await;
    let uri = api(&client, &bases[0], &token)
        .prepared_uri(&session, "small.ovf", Duration::from_secs(30))
        .await;
    // Staging of the big file (about 4 s) runs into the restarts.
    api(&client, &bases[1], &token)
        .prepare_file(&session, "disk.vmdk")
        .await;

    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn({
        let (client, bases, token, session, uri, item, stop) = (
            client.clone(),
            bases.clone(),
            token.clone(),
            session.clone(),
            uri.clone(),
            item.clone(),
            stop.clone(),
        );
        async move {
            let target = Target {
                token: &token,
                session: &session,
                uri: &uri,
                item: &item,
            };
            let (mut sent, mut retried, mut failed) = (0u64, 0u64, Vec::new());
            let mut first_errors = Vec::new();
            let mut created = std::collections::BTreeMap::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let op = match i % 12 {
                    0 | 6 => Op::GetSession,
                    1 | 7 => Op::GetFile,
                    2 | 8 => Op::Download,
                    3 | 9 => Op::KeepAlive,
                    4 => Op::Create(i),
                    5 => Op::Login,
                    _ => Op::GetFile,
                };
                let first = (i % 2) as usize;
                let mut outcome = Err(String::new());
                for attempt in 0..2 {
                    let base = &bases[(first + attempt) % 2];
                    if attempt == 1 {
                        retried += 1;
                    }
                    sent += 1;
                    outcome = send(&client, base, &target, op).await;
                    match &outcome {
                        Ok(_) => break,
                        Err(e) => first_errors.push(e.clone()),
                    }
                }
                match outcome {
                    Ok(Some(id)) => {
                        if let Op::Create(n) = op {
                            created.insert(n, id);
                        }
                    }
                    Ok(None) => {}
                    Err(e) => failed.push(format!("{op:?}: {e}")),
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (i, sent, retried, failed, created, first_errors)
        }
    });

    // Roll: stop A (SIGTERM), start it again, wait ready; then B.
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (n, name) in ["a", "b"].iter().enumerate() {
        instances[n].signal("-TERM");
        let status = instances[n].exited(Duration::from_secs(20)).await;
        assert!(status.success(), "{name} exited with {status}");
        instances[n].assert_no_panic();
        instances[n] = Instance::start(&format!("{name}2"), ports[n], &env);
        instances[n].ready(&client).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let rolled = t0.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let (requests, sent, retried, failed, created, first_errors) = load.await.unwrap();
    eprintln!(
        "rolling restart in {:.1} s: {requests} client requests ({sent} sent, {retried} \
         retried on the other instance), {} lost",
        rolled.as_secs_f64(),
        failed.len()
    );
    let mut kinds = std::collections::BTreeMap::new();
    for e in &first_errors {
        *kinds.entry(e.as_str()).or_insert(0) += 1;
    }
    eprintln!("rolling restart: failures that a retry saved: {kinds:?}");
    assert!(failed.is_empty(), "lost requests: {failed:#?}");
    assert!(requests > 50, "{requests} requests");

    // No file state lost: both files PREPARED with their checksums, every
    // created session there exactly once (idempotent creates), the session active.
    let info = api(&client, &bases[0], &token)
        .wait_prepared(&session, "disk.vmdk", Duration::from_secs(60))
        .await;
    assert_eq!(info["checksum_info"]["checksum"], big_sha.as_str());
    let big_uri = info["download_endpoint"]["uri"]
        .as_str()
        .unwrap()
        .to_string();
    // Claims went back at each SIGTERM instead of lapsing: one counted attempt.
    let (_, _, _, attempts, _) = file_row(&db, &session, "disk.vmdk").await;
    assert_eq!(attempts, 1);
    for base in &bases {
        assert_eq!(download_sha(&client, &on(&uri, base)).await, small_sha);
        assert_eq!(download_sha(&client, &on(&big_uri, base)).await, big_sha);
    }
    let listed: Vec<String> = client
        .get(format!("{}{DS}", bases[1]))
        .header("vmware-api-session-id", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.len(), created.len() + 1, "{listed:?}");
    for id in created.values() {
        assert!(listed.contains(id), "{id} missing");
    }
    let s: Value = client
        .get(format!("{}{DS}/{session}", bases[1]))
        .header("vmware-api-session-id", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["state"], "ACTIVE");
    for i in instances.iter() {
        i.assert_no_panic();
    }
}

/// What the rolling-restart client works on.
struct Target<'a> {
    token: &'a str,
    session: &'a str,
    uri: &'a str,
    item: &'a str,
}

/// One request of the rolling-restart loop. Ok(Some(id)) for a create.
/// Failures: no answer, or a 5xx (what a load balancer retries).
async fn send(
    client: &reqwest::Client,
    base: &str,
    t: &Target<'_>,
    op: Op,
) -> Result<Option<String>, String> {
    let session = t.session;
    let request = match op {
        Op::GetSession => client.get(format!("{base}{DS}/{session}")),
        Op::GetFile => client.get(format!("{base}{DS}/{session}/file?file_name=small.ovf")),
        Op::KeepAlive => client.post(format!("{base}{DS}/{session}?action=keep-alive")),
        Op::Download => client
            .get(on(t.uri, base))
            .header("Range", "bytes=100-4195"),
        Op::Create(n) => client
            .post(format!("{base}{DS}"))
            .header("Client-Token", format!("rolling-{n}"))
            .json(&json!({ "library_item_id": t.item })),
        Op::Login => client
            .post(format!("{base}/api/session"))
            .basic_auth("alice", Some(PASSWORD)),
    };
    let r = request
        .header("vmware-api-session-id", t.token)
        .timeout(Duration::from_secs(15))
        .send()
        .await
        .map_err(|e| match e.is_connect() {
            true => "connection refused".to_string(),
            false => format!("no answer: {e}"),
        })?;
    let status = r.status();
    if status.is_server_error() {
        return Err(format!("status {status}"));
    }
    let expected = match op {
        Op::KeepAlive => StatusCode::NO_CONTENT,
        Op::Download => StatusCode::PARTIAL_CONTENT,
        Op::Create(_) | Op::Login => StatusCode::CREATED,
        _ => StatusCode::OK,
    };
    // A wrong answer is a bug, not something to retry: fail loudly.
    assert_eq!(status, expected, "{op:?} at {base}");
    let body = r.bytes().await.map_err(|e| format!("{base}: body: {e}"))?;
    match op {
        Op::Download => assert_eq!(body.len(), 4096),
        Op::Create(_) => {
            let id: String = serde_json::from_slice(&body).unwrap();
            return Ok(Some(id));
        }
        _ => {}
    }
    Ok(None)
}

/// Issue 11 item 4: whoever reads the logs must not be able to download or act as
/// a user. A full flow on the real binary (login, create, prepare, download, a
/// revoked download, delete, logout), then the whole log is searched for the
/// login token and the signed segment of the download URI: neither appears, and
/// the data-plane requests are logged with the segment redacted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_carry_no_login_token_and_no_signed_uri() {
    let _serial = SERIAL.lock().await;
    let db = fresh_database("dls_test_failover_").await;
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let env = Env::new(&db, data.path(), logs.path()).with("DLS__LOG__LEVEL", "debug,sqlx=warn");
    env.add_user("alice", &["System.Read", "ContentLibrary.DownloadSession"]);
    let (small, small_sha) = make_file(files.path(), "small.ovf", 4096, 7);
    let item = env.import("vm", &[&small]);

    let client = client();
    let mut a = Instance::start("a", free_port(), &env);
    a.ready(&client).await;
    let token = login(&client, &a.base(), "alice").await;
    let session = api(&client, &a.base(), &token).new_session(&item).await;
    let uri = api(&client, &a.base(), &token)
        .prepared_uri(&session, "small.ovf", Duration::from_secs(30))
        .await;
    assert_eq!(download_sha(&client, &uri).await, small_sha);
    let head = client.head(&uri).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    // The token where a careless client might put it: a query parameter and a
    // path segment (both refused, both logged).
    let r = client
        .get(a.url(&format!("/api/session?session_token={token}&x=1")))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    let r = client
        .get(a.url(&format!("/api/session/{token}")))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    let r = api(&client, &a.base(), &token)
        .delete_session(&session)
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    // The revoked URI is refused, and that refusal is logged too.
    let r = client.get(&uri).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = api(&client, &a.base(), &token).logout().await;
    assert!(r.status().is_success(), "{}", r.status());

    a.signal("-TERM");
    assert!(a.exited(Duration::from_secs(30)).await.success());
    let log = a.log_text();
    let signed = url::Url::parse(&uri).unwrap();
    let segment = signed.path_segments().unwrap().nth(2).unwrap().to_string();
    assert!(segment.len() > 40, "{uri}");
    let mac = segment.rsplit('.').next().unwrap();
    for (what, secret) in [
        ("signed URI segment", segment.as_str()),
        ("URI signature", mac),
        ("login token", token.as_str()),
    ] {
        if let Some(line) = log.lines().find(|l| l.contains(secret)) {
            panic!("the {what} is in the log:\n{line}");
        }
    }
    // Every request was logged, each once, the data-plane ones redacted.
    let lines: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    let data_plane: Vec<&Value> = lines
        .iter()
        .filter(|l| l["route"] == "/cls/data/{token}/{file_name}")
        .collect();
    assert_eq!(data_plane.len(), 3, "GET, HEAD, revoked GET:\n{log}");
    for l in &data_plane {
        assert_eq!(l["path"], "/cls/data/REDACTED/small.ovf", "{l}");
    }
    // One compact line per request: no span repeated in a span list.
    let access: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(r#""target":"access""#))
        .collect();
    eprintln!("{} access lines, e.g.\n{}", access.len(), access[0]);
    for l in &access {
        assert!(l.len() < 512, "{} bytes: {l}", l.len());
        assert!(!l.contains(r#""spans""#), "{l}");
    }
    a.assert_no_panic();
}

/// Update sessions across instances and a SIGKILL mid-upload: the session is
/// created on A, an upload to A is killed with A half-way (nothing becomes
/// visible: no object under the content key, the item unchanged, complete
/// refused), and the same upload URI sent to B starts over and succeeds; B
/// completes and serves the new bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_upload_publishes_nothing_and_instance_b_takes_the_upload() {
    let _serial = SERIAL.lock().await;
    let db = fresh_database("dls_test_failover_").await;
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let env = Env::new(&db, data.path(), logs.path());
    env.add_user(
        "alice",
        &[
            "System.Read",
            "ContentLibrary.DownloadSession",
            "ContentLibrary.UpdateSession",
        ],
    );
    let (old, old_sha) = make_file(files.path(), "disk.vmdk", 100_000, 3);
    let item = env.import("vm", &[&old]);
    let new = pseudo_random(24 << 20, 4);
    let new_sha = sha256_hex(&new);

    let client = client();
    let mut a = Instance::start("a", free_port(), &env);
    let mut b = Instance::start("b", free_port(), &env);
    a.ready(&client).await;
    b.ready(&client).await;
    let token = login(&client, &a.base(), "alice").await;
    let (base_a, base_b) = (a.base(), b.base());
    let on_a = api(&client, &base_a, &token);
    let id = on_a.new_update(&item).await;
    let info = on_a.add_upload(&id, "disk.vmdk", Some(&new)).await;
    let uri = info["upload_endpoint"]["uri"].as_str().unwrap().to_string();
    assert!(uri.starts_with(&a.base()), "{uri}");

    // A slow upload to A: 4 MiB at once, then 1 MiB every 200 ms.
    let body = new.clone();
    let slow = futures_util::stream::unfold(0usize, move |at| {
        let body = body.clone();
        async move {
            if at >= body.len() {
                return None;
            }
            if at > 0 {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let len = if at == 0 { 4 << 20 } else { 1 << 20 };
            let end = (at + len).min(body.len());
            Some((Ok::<_, std::io::Error>(body[at..end].to_vec()), end))
        }
    });
    let upload = tokio::spawn({
        let client = client.clone();
        let uri = uri.clone();
        async move {
            client
                .put(&uri)
                .body(reqwest::Body::wrap_stream(slow))
                .send()
                .await
        }
    });
    // Wait until A has recorded progress, then SIGKILL it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut conn = PgConnection::connect(&db).await.unwrap();
        let (status, bytes): (String, i64) = sqlx::query_as(
            "SELECT status, bytes_transferred FROM update_files WHERE session_id = $1::uuid",
        )
        .bind(&id)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        if status == "TRANSFERRING" && bytes > 0 {
            assert!(bytes < new.len() as i64, "the upload finished too early");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "A never received bytes ({status})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.sigkill();
    let killed = upload.await.unwrap();
    assert!(
        killed.map(|r| r.status() != StatusCode::OK).unwrap_or(true),
        "an upload cut by SIGKILL did not succeed"
    );

    // Nothing half-written is visible: no object under the content key, the
    // item still at version 1, complete refused.
    let blob = data.path().join("content/blobs").join(&new_sha);
    assert!(!blob.exists(), "{} exists after SIGKILL", blob.display());
    let on_b = api(&client, &base_b, &token);
    let item_model = on_b.item(&item).await;
    assert_eq!(item_model["content_version"], "1");
    let r = on_b.update_action(&id, "complete", None).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // The same upload URI, sent to B: starts over and succeeds.
    let r = client
        .put(on(&uri, &b.base()))
        .body(new.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
    let file: Value = on_b
        .update_file(&id, "disk.vmdk")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(file["status"], "READY", "{file}");
    assert!(blob.exists());
    assert_eq!(
        on_b.update_action(&id, "complete", None).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(on_b.item(&item).await["content_version"], "2");

    // B serves the new bytes to a new download session.
    let session = on_b.new_session(&item).await;
    on_b.prepare_file(&session, "disk.vmdk").await;
    let info = on_b
        .wait_prepared(&session, "disk.vmdk", Duration::from_secs(60))
        .await;
    let got = download_sha(&client, info["download_endpoint"]["uri"].as_str().unwrap()).await;
    assert_eq!(got, new_sha);
    assert_ne!(got, old_sha);
    b.assert_no_panic();
}
