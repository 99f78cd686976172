//! `download-sessions export` as users run it: the real binary against the
//! real server (in this process, port 0, a fresh database), with a TCP proxy
//! in front of the data plane that counts, cuts, throttles or damages bytes.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use download_sessions::{config::Settings, Application};
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

mod common;

use common::{fresh_database, pseudo_random, sha256_hex, Api, Http};

const BIN: &str = env!("CARGO_BIN_EXE_download-sessions");
const PASSWORD: &str = "export-test-pw";
const DOWNLOADER: &[&str] = &["System.Read", "ContentLibrary.DownloadSession"];

// ---------------------------------------------------------------------------
// The server

/// A running service on a fresh database, with its data plane behind a proxy.
struct Server {
    base: String,
    db_url: String,
    data_dir: tempfile::TempDir,
    proxy: Proxy,
    _task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start() -> Server {
        Server::start_with(|_| {}).await
    }

    /// `tweak` adjusts the settings (TLS, lease); download URIs point at the proxy.
    async fn start_with(tweak: impl FnOnce(&mut Settings)) -> Server {
        let db_url = fresh_database("dls_test_").await;
        let data_dir = tempfile::tempdir().unwrap();
        let proxy = Proxy::start().await;
        let mut s = Settings::load_with_env(None, Vec::<(String, String)>::new()).unwrap();
        s.http.listen = "127.0.0.1:0".parse().unwrap();
        s.http.threads = 2;
        s.http.shutdown_grace_seconds = 1;
        s.database.url = Some(db_url.clone());
        s.database.max_connections = 6;
        s.data_dir = data_dir.path().to_path_buf();
        s.login.max_delay_seconds = 1;
        tweak(&mut s);
        let scheme = if s.http.tls.is_some() {
            "https"
        } else {
            "http"
        };
        s.http.public_url = Some(
            format!("{scheme}://127.0.0.1:{}", proxy.port)
                .parse()
                .unwrap(),
        );
        let app = Application::build(s).await.expect("application builds");
        let port = app.port();
        proxy.target.store(port, Ordering::SeqCst);
        let task = tokio::spawn(app.run_until_stopped());
        Server {
            base: format!("{scheme}://127.0.0.1:{port}"),
            db_url,
            data_dir,
            proxy,
            _task: task,
        }
    }

    /// The binary's own commands (`user add`, `import`) on this server's database.
    async fn admin(&self, args: &[&str], stdin: &str) -> String {
        let mut child = tokio::process::Command::new(BIN)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DATABASE_URL", &self.db_url)
            .env("DLS__DATA_DIR", self.data_dir.path())
            .env("DLS__LOG__LEVEL", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .await
            .unwrap();
        let out = child.wait_with_output().await.unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    async fn add_user(&self, name: &str, privileges: &[&str]) {
        let mut args = vec!["user", "add", name, "--password-stdin"];
        for p in privileges {
            args.extend(["--privilege", p]);
        }
        self.admin(&args, &format!("{PASSWORD}\n")).await;
    }

    /// Imports `files` as library/item; the item id.
    async fn import(&self, library: &str, item: &str, files: &[(&str, &[u8])]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec![
            "import".to_string(),
            "--library".into(),
            library.into(),
            "--item".into(),
            item.into(),
        ];
        for (name, bytes) in files {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            args.push(p.display().to_string());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.admin(&args, "").await;
        out.lines().last().unwrap().trim().to_string()
    }

    /// The ids of `user`'s download sessions (the public API, as the user).
    async fn sessions_of(&self, user: &str) -> Vec<String> {
        let http = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .build()
            .unwrap();
        let api = Api(Http::new(&http, &self.base));
        let token = api.logged_in(user, PASSWORD).await;
        let api = Api(api.0.with_token(&token));
        let ids = api.session_ids().await;
        api.logout().await;
        ids
    }

    /// Deletes every download session of `user`; how many there were.
    async fn delete_sessions_of(&self, user: &str) -> usize {
        let http = reqwest::Client::new();
        let api = Api(Http::new(&http, &self.base));
        let token = api.logged_in(user, PASSWORD).await;
        let api = Api(api.0.with_token(&token));
        let ids = api.session_ids().await;
        for id in &ids {
            assert_eq!(api.delete_session(id).await.status().as_u16(), 204);
        }
        api.logout().await;
        ids.len()
    }
}

// ---------------------------------------------------------------------------
// The proxy in front of the data plane

#[derive(Clone, Copy, Debug, PartialEq)]
enum Behaviour {
    Pass,
    /// Close every connection once this many bytes went to clients in all,
    /// and close new ones at once (a link that died).
    CutAfter(u64),
    /// Flip one bit of the byte at this offset of the first response stream.
    FlipAt(u64),
    /// At most this many bytes per second, per connection.
    Throttle(u64),
}

struct Proxy {
    port: u16,
    target: Arc<AtomicU16>,
    /// Bytes sent towards clients, every connection together.
    served: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
    behaviour: Arc<Mutex<Behaviour>>,
    dead: Arc<AtomicBool>,
    flipped: Arc<AtomicBool>,
}

impl Proxy {
    async fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Proxy {
            port: listener.local_addr().unwrap().port(),
            target: Arc::new(AtomicU16::new(0)),
            served: Arc::new(AtomicU64::new(0)),
            connections: Arc::new(AtomicU64::new(0)),
            behaviour: Arc::new(Mutex::new(Behaviour::Pass)),
            dead: Arc::new(AtomicBool::new(false)),
            flipped: Arc::new(AtomicBool::new(false)),
        };
        let (target, served, connections, behaviour, dead, flipped) = (
            proxy.target.clone(),
            proxy.served.clone(),
            proxy.connections.clone(),
            proxy.behaviour.clone(),
            proxy.dead.clone(),
            proxy.flipped.clone(),
        );
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if dead.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                connections.fetch_add(1, Ordering::SeqCst);
                let port = target.load(Ordering::SeqCst);
                let (served, behaviour, dead, flipped) = (
                    served.clone(),
                    behaviour.clone(),
                    dead.clone(),
                    flipped.clone(),
                );
                tokio::spawn(async move {
                    let Ok(upstream) = TcpStream::connect(("127.0.0.1", port)).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let (mut cr, mut cw) = client.into_split();
                    let (mut ur, mut uw) = upstream.into_split();
                    let up = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut cr, &mut uw).await;
                        let _ = uw.shutdown().await;
                    });
                    let mut buf = vec![0u8; 64 << 10];
                    let mut at = 0u64;
                    let started = Instant::now();
                    loop {
                        let b = *behaviour.lock().unwrap();
                        let want = match b {
                            Behaviour::Throttle(rate) => (rate / 20).clamp(1, buf.len() as u64),
                            _ => buf.len() as u64,
                        } as usize;
                        let n = match ur.read(&mut buf[..want]).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if dead.load(Ordering::SeqCst) {
                            break;
                        }
                        let mut n = n;
                        match b {
                            Behaviour::CutAfter(limit) => {
                                let before = served.load(Ordering::SeqCst);
                                if before + n as u64 >= limit {
                                    n = limit.saturating_sub(before) as usize;
                                    dead.store(true, Ordering::SeqCst);
                                }
                            }
                            Behaviour::FlipAt(offset)
                                if offset >= at
                                    && offset < at + n as u64
                                    && !flipped.swap(true, Ordering::SeqCst) =>
                            {
                                buf[(offset - at) as usize] ^= 0x01;
                            }
                            _ => {}
                        }
                        if cw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        at += n as u64;
                        served.fetch_add(n as u64, Ordering::SeqCst);
                        if dead.load(Ordering::SeqCst) {
                            break;
                        }
                        if let Behaviour::Throttle(rate) = b {
                            let due = Duration::from_secs_f64(at as f64 / rate as f64);
                            let elapsed = started.elapsed();
                            if due > elapsed {
                                tokio::time::sleep(due - elapsed).await;
                            }
                        }
                    }
                    // Dropping both halves closes the client's connection.
                    up.abort();
                });
            }
        });
        proxy
    }

    fn set(&self, b: Behaviour) {
        *self.behaviour.lock().unwrap() = b;
        self.dead.store(false, Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------------------
// The client

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect()
    }

    fn summary(&self) -> Value {
        self.json()
            .into_iter()
            .find(|v| v["event"] == "summary")
            .unwrap_or_else(|| panic!("no summary:\n{}\n{}", self.stdout, self.stderr))
    }
}

fn export_command(server: &str, user: &str, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.arg("export")
        .args(["--server", server, "--user", user, "--password-stdin"])
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Starts an export as alice that runs in the background (password given).
async fn start_export(s: &Server, args: &[&str]) -> tokio::process::Child {
    let mut child = export_command(&s.base, "alice", args).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .await
        .unwrap();
    child
}

async fn finish(mut child: tokio::process::Child, password: &str) -> Run {
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(format!("{password}\n").as_bytes()).await;
    }
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("export ends within two minutes")
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

async fn export_as(server: &str, user: &str, password: &str, args: &[&str]) -> Run {
    let child = export_command(server, user, args).spawn().unwrap();
    finish(child, password).await
}

async fn export(s: &Server, args: &[&str]) -> Run {
    export_as(&s.base, "alice", PASSWORD, args).await
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

// ---------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_by_path_and_by_id() {
    let s = Server::start().await;
    s.add_user("alice", DOWNLOADER).await;
    let disk = pseudo_random(5 << 20, 1);
    let ovf = b"<Envelope/>\n".to_vec();
    let item = s
        .import(
            "isos",
            "demo",
            &[("disk-0.vmdk", &disk), ("demo.ovf", &ovf)],
        )
        .await;
    let out = tempfile::tempdir().unwrap();

    let by_path = out.path().join("by-path");
    let r = export(&s, &["isos/demo", path_str(&by_path)]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(names_in(&by_path), vec!["demo.ovf", "disk-0.vmdk"]);
    assert_eq!(std::fs::read(by_path.join("disk-0.vmdk")).unwrap(), disk);
    assert_eq!(std::fs::read(by_path.join("demo.ovf")).unwrap(), ovf);
    // Without --json: plain lines on stderr, the paths on stdout.
    assert!(r.stderr.contains("SHA-256 verified"), "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 2, "{}", r.stdout);

    let by_id = out.path().join("by-id");
    let r = export(&s, &["--json", &item, path_str(&by_id)]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(std::fs::read(by_id.join("disk-0.vmdk")).unwrap(), disk);
    assert_eq!(std::fs::read(by_id.join("demo.ovf")).unwrap(), ovf);
    let events = r.json();
    assert_eq!(events[0]["event"], "session", "{}", r.stdout);
    assert_eq!(events[0]["item_id"], item.as_str());
    let summary = r.summary();
    assert_eq!(summary["status"], "ok");
    let files = summary["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    for f in files {
        let (bytes, name) = match f["name"].as_str().unwrap() {
            "disk-0.vmdk" => (&disk, "disk-0.vmdk"),
            "demo.ovf" => (&ovf, "demo.ovf"),
            other => panic!("unexpected file {other}"),
        };
        assert_eq!(f["size"], bytes.len() as u64, "{name}");
        assert_eq!(f["sha256"], sha256_hex(bytes), "{name}");
        assert_eq!(f["downloaded_bytes"], bytes.len() as u64, "{name}");
    }
    assert_eq!(summary["downloaded_bytes"], (disk.len() + ovf.len()) as u64);

    // --file picks one; a verified file already there is not fetched again.
    let r = export(
        &s,
        &["--json", "--file", "disk-0.vmdk", &item, path_str(&by_id)],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let summary = r.summary();
    assert_eq!(summary["files"].as_array().unwrap().len(), 1);
    assert_eq!(summary["files"][0]["already_present"], true);
    assert_eq!(summary["downloaded_bytes"], 0);

    assert!(s.sessions_of("alice").await.is_empty(), "no session left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_after_a_cut_connection_without_fetching_twice() {
    let s = Server::start().await;
    s.add_user("alice", DOWNLOADER).await;
    let size = 8 << 20;
    let disk = pseudo_random(size, 2);
    s.import("lib", "big", &[("disk.vmdk", &disk)]).await;
    let out = tempfile::tempdir().unwrap();
    let dir = path_str(out.path());

    s.proxy.set(Behaviour::CutAfter(3 << 20));
    let r = export(&s, &["--retries", "1", "lib/big", dir]).await;
    assert_eq!(r.code, 6, "unreachable: {}", r.stderr);
    assert!(
        r.stderr.contains("run the same command again"),
        "{}",
        r.stderr
    );
    assert_eq!(
        names_in(out.path()),
        vec!["disk.vmdk.part", "disk.vmdk.part.state"]
    );
    assert!(s.sessions_of("alice").await.is_empty(), "session deleted");
    let first = s.proxy.served.load(Ordering::SeqCst);
    assert!(first <= (3 << 20), "{first}");

    s.proxy.set(Behaviour::Pass);
    let r = export(&s, &["--json", "lib/big", dir]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(std::fs::read(out.path().join("disk.vmdk")).unwrap(), disk);
    assert_eq!(names_in(out.path()), vec!["disk.vmdk"]);
    let summary = r.summary();
    let resumed = summary["files"][0]["resumed_bytes"].as_u64().unwrap();
    assert!(resumed > 2 << 20, "resumed {resumed}");
    let served = s.proxy.served.load(Ordering::SeqCst);
    assert!(
        served as f64 <= 1.15 * size as f64,
        "the data plane served {served} bytes for a {size}-byte file"
    );
    assert!(s.sessions_of("alice").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_is_a_checksum_mismatch_and_no_file() {
    let s = Server::start().await;
    s.add_user("alice", DOWNLOADER).await;
    let disk = pseudo_random(3 << 20, 3);
    s.import("lib", "item", &[("disk.vmdk", &disk)]).await;
    let out = tempfile::tempdir().unwrap();
    let dir = path_str(out.path());

    s.proxy.set(Behaviour::FlipAt(100_000));
    let r = export(&s, &["--json", "lib/item", dir]).await;
    assert!(s.proxy.flipped.load(Ordering::SeqCst));
    assert_eq!(r.code, 5, "checksum mismatch: {}", r.stderr);
    assert!(r.stderr.contains("checksum mismatch"), "{}", r.stderr);
    let error = r
        .json()
        .into_iter()
        .find(|v| v["event"] == "error")
        .unwrap();
    assert_eq!(error["kind"], "checksum_mismatch");
    assert_eq!(error["exit_code"], 5);
    // No final file, and nothing to resume from: the damaged bytes are gone.
    assert!(
        names_in(out.path()).is_empty(),
        "{:?}",
        names_in(out.path())
    );
    assert!(s.sessions_of("alice").await.is_empty());

    s.proxy.set(Behaviour::Pass);
    let r = export(&s, &["lib/item", dir]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(std::fs::read(out.path().join("disk.vmdk")).unwrap(), disk);
}

/// Waits until `path` holds at least `min` bytes of progress in its state file.
async fn wait_for_state(path: &Path, child: &mut tokio::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if v["have"].as_array().is_some_and(|h| !h.is_empty()) {
                return;
            }
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "export ended before the test could signal it"
        );
        assert!(Instant::now() < deadline, "no progress recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn signal(child: &tokio::process::Child, sig: &str) {
    let pid = child.id().unwrap().to_string();
    let ok = std::process::Command::new("kill")
        .args([sig, &pid])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_deletes_the_session_and_a_rerun_resumes() {
    let s = Server::start().await;
    s.add_user("alice", DOWNLOADER).await;
    let disk = pseudo_random(6 << 20, 4);
    s.import("lib", "item", &[("disk.vmdk", &disk)]).await;
    let out = tempfile::tempdir().unwrap();
    let dir = path_str(out.path());

    // About 1.5 MiB/s: the transfer takes seconds, long enough to interrupt.
    s.proxy.set(Behaviour::Throttle(3 << 19));
    let mut child = start_export(&s, &["--json", "lib/item", dir]).await;
    wait_for_state(&out.path().join("disk.vmdk.part.state"), &mut child).await;
    assert_eq!(
        s.sessions_of("alice").await.len(),
        1,
        "a session while it runs"
    );
    signal(&child, "-INT");
    let r = finish(child, PASSWORD).await;
    assert_eq!(r.code, 130, "interrupted: {}", r.stderr);
    assert!(
        r.stderr.contains("run the same command again"),
        "{}",
        r.stderr
    );
    assert!(s.sessions_of("alice").await.is_empty(), "session deleted");
    assert_eq!(
        names_in(out.path()),
        vec!["disk.vmdk.part", "disk.vmdk.part.state"]
    );

    s.proxy.set(Behaviour::Pass);
    let r = export(&s, &["--json", "lib/item", dir]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.summary()["files"][0]["resumed_bytes"].as_u64().unwrap() > 0);
    assert_eq!(std::fs::read(out.path().join("disk.vmdk")).unwrap(), disk);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_client_resumes_and_sigterm_cleans_up() {
    let s = Server::start().await;
    s.add_user("alice", DOWNLOADER).await;
    let disk = pseudo_random(6 << 20, 5);
    s.import("lib", "item", &[("disk.vmdk", &disk)]).await;
    let out = tempfile::tempdir().unwrap();
    let dir = path_str(out.path());

    s.proxy.set(Behaviour::Throttle(3 << 19));
    let mut child = start_export(&s, &["lib/item", dir]).await;
    wait_for_state(&out.path().join("disk.vmdk.part.state"), &mut child).await;
    signal(&child, "-KILL");
    let _ = child.wait().await;
    // SIGKILL leaves its session to expire; take it away so the next check is clean.
    assert_eq!(s.delete_sessions_of("alice").await, 1);

    // The rerun continues from what the killed one recorded; SIGTERM it too.
    let child = start_export(&s, &["--json", "lib/item", dir]).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.sessions_of("alice").await.is_empty() {
        assert!(Instant::now() < deadline, "the rerun made no session");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    signal(&child, "-TERM");
    let r = finish(child, PASSWORD).await;
    assert_eq!(r.code, 130, "{}", r.stderr);
    assert!(s.sessions_of("alice").await.is_empty());

    s.proxy.set(Behaviour::Pass);
    let r = export(&s, &["--json", "lib/item", dir]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.summary()["files"][0]["resumed_bytes"].as_u64().unwrap() > 0);
    assert_eq!(std::fs::read(out.path().join("disk.vmdk")).unwrap(), disk);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_disappears_is_replaced_mid_transfer() {
    let s = Server::start().await;
    s.add_user("alice", DOWNLOADER).await;
    let disk = pseudo_random(6 << 20, 6);
    s.import("lib", "item", &[("disk.vmdk", &disk)]).await;
    let out = tempfile::tempdir().unwrap();
    let dir = path_str(out.path());

    s.proxy.set(Behaviour::Throttle(3 << 19));
    let mut child = start_export(&s, &["--json", "lib/item", dir]).await;
    wait_for_state(&out.path().join("disk.vmdk.part.state"), &mut child).await;
    // What an expiry does: the session and its URIs are gone.
    assert_eq!(s.delete_sessions_of("alice").await, 1);
    s.proxy.set(Behaviour::Pass);
    let r = finish(child, PASSWORD).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("continuing in a new one"), "{}", r.stderr);
    assert_eq!(std::fs::read(out.path().join("disk.vmdk")).unwrap(), disk);
    assert!(s.sessions_of("alice").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_ranges_join_on_a_slow_link() {
    let s = Server::start().await;
    s.add_user("alice", DOWNLOADER).await;
    let size = 12 << 20;
    let disk = pseudo_random(size, 7);
    s.import("lib", "item", &[("disk.vmdk", &disk)]).await;
    let out = tempfile::tempdir().unwrap();

    // 3 MiB/s per connection: one connection leaves the writer and the hasher idle.
    s.proxy.set(Behaviour::Throttle(3 << 20));
    let r = export(
        &s,
        &[
            "--json",
            "--parallel",
            "4",
            "lib/item",
            path_str(out.path()),
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(std::fs::read(out.path().join("disk.vmdk")).unwrap(), disk);
    let used = r.summary()["files"][0]["connections"].as_u64().unwrap();
    assert!((2..=4).contains(&used), "{used} connection(s) at once");
    let opened = s.proxy.connections.load(Ordering::SeqCst);
    assert!(opened >= 2, "{opened} data connection(s)");
    let served = s.proxy.served.load(Ordering::SeqCst);
    assert!(served as f64 <= 1.01 * size as f64, "served {served}");

    // --parallel 1 never downloads over two at once.
    let again = tempfile::tempdir().unwrap();
    let r = export(
        &s,
        &[
            "--json",
            "--parallel",
            "1",
            "lib/item",
            path_str(again.path()),
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.summary()["files"][0]["connections"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_have_their_documented_exit_codes() {
    let s = Server::start().await;
    s.add_user("alice", DOWNLOADER).await;
    s.add_user("reader", &["System.Read"]).await;
    let item = s.import("lib", "item", &[("a.bin", b"abc")]).await;
    s.import("twins", "x", &[("a.bin", b"1")]).await;
    let out = tempfile::tempdir().unwrap();
    let dir = path_str(out.path());

    // 3: wrong password; a user without ContentLibrary.DownloadSession.
    let r = export_as(&s.base, "alice", "wrong", &["lib/item", dir]).await;
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("wrong user name or password"),
        "{}",
        r.stderr
    );
    let r = export_as(&s.base, "reader", PASSWORD, &["lib/item", dir]).await;
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("ContentLibrary.DownloadSession"),
        "{}",
        r.stderr
    );

    // 4: unknown library, item, item id, file.
    for (what, needle) in [
        ("nolib/item", "no library named"),
        ("lib/nothing", "has no item named"),
        (
            "7d1e0a52-3b1c-4c4e-9a59-0d2f5c1e8b77",
            "no library item with id",
        ),
    ] {
        let r = export(&s, &["--json", what, dir]).await;
        assert_eq!(r.code, 4, "{what}: {}", r.stderr);
        assert!(r.stderr.contains(needle), "{what}: {}", r.stderr);
        let error = r
            .json()
            .into_iter()
            .find(|v| v["event"] == "error")
            .unwrap();
        assert_eq!(error["kind"], "not_found");
    }
    let r = export(&s, &["--file", "b.bin", &item, dir]).await;
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("it has: a.bin"), "{}", r.stderr);

    // 6: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let r = export_as(
        &format!("http://127.0.0.1:{port}"),
        "alice",
        PASSWORD,
        &["lib/item", dir],
    )
    .await;
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(r.stderr.contains("check --server"), "{}", r.stderr);

    // 2: arguments that cannot work.
    for args in [
        vec!["item-without-library", dir],
        vec!["--thumbprint", "12:34", "lib/item", dir],
        vec!["--file", "../escape", "lib/item", dir],
    ] {
        let r = export(&s, &args).await;
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
    }
    let r = export_as(&s.base, "alice", "", &["lib/item", dir]).await;
    assert_eq!(r.code, 2, "empty password: {}", r.stderr);

    assert!(names_in(out.path()).is_empty());
    assert!(s.sessions_of("alice").await.is_empty());
}

/// A CA, and a server certificate for 127.0.0.1 it signed (openssl).
fn make_ca_and_cert(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl is installed");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "server.pem",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

fn openssl_thumbprint(cert: &Path) -> String {
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha1", "-in"])
        .arg(cert)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.trim().split_once('=').unwrap().1.to_uppercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_trust_by_thumbprint_ca_file_or_insecure() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_ca_and_cert(certs.path());
    let s = Server::start_with(|s| {
        s.http.tls = Some(download_sessions::config::TlsSettings {
            cert_file: cert.clone(),
            key_file: key.clone(),
        })
    })
    .await;
    s.add_user("alice", DOWNLOADER).await;
    let data = pseudo_random(1 << 20, 8);
    s.import("lib", "item", &[("disk.vmdk", &data)]).await;
    let thumbprint = openssl_thumbprint(&cert);
    let out = tempfile::tempdir().unwrap();

    // The system store does not know our CA: refused, and the message shows the thumbprint.
    let r = export(&s, &["lib/item", path_str(&out.path().join("none"))]).await;
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(r.stderr.contains(&thumbprint), "{}", r.stderr);

    let wrong = "00:".repeat(19) + "00";
    let r = export(
        &s,
        &["--thumbprint", &wrong, "lib/item", path_str(out.path())],
    )
    .await;
    assert_eq!(r.code, 7, "{}", r.stderr);

    for (i, args) in [
        vec!["--thumbprint".to_string(), thumbprint.clone()],
        vec![
            "--thumbprint".into(),
            thumbprint.replace(':', "").to_lowercase(),
        ],
        vec!["--ca-file".into(), ca.display().to_string()],
        vec!["--insecure".into()],
    ]
    .into_iter()
    .enumerate()
    {
        let dir = out.path().join(format!("ok-{i}"));
        let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
        all.extend(["lib/item", path_str(&dir)]);
        let r = export(&s, &all).await;
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        assert_eq!(std::fs::read(dir.join("disk.vmdk")).unwrap(), data);
    }
    assert!(s.sessions_of("alice").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_match_case_insensitively_like_find() {
    let s = Server::start().await;
    s.add_user("alice", DOWNLOADER).await;
    // Library and item names are unique regardless of case on this server (as on
    // vCenter), and find matches them that way: any case variant names the one item.
    s.import("Lib", "Item", &[("a.bin", b"upper")]).await;
    let out = tempfile::tempdir().unwrap();
    let r = export(&s, &["LIB/item", path_str(&out.path().join("x"))]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(std::fs::read(out.path().join("x/a.bin")).unwrap(), b"upper");

    s.import("Only", "Thing", &[("a.bin", b"only")]).await;
    let r = export(&s, &["only/thing", path_str(&out.path().join("loose"))]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        std::fs::read(out.path().join("loose/a.bin")).unwrap(),
        b"only"
    );
    let r = export(&s, &["only/nothing", path_str(&out.path().join("none"))]).await;
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(s.sessions_of("alice").await.is_empty());
}
