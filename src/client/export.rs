//! `download-sessions export`: from a library item to verified files in a
//! directory, through one download session that is always cleaned up.

use std::{
    io::BufRead,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::{atomic::Ordering, Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{
    api::{server_url, transport_failure, Api, Login},
    content::{item_file_sizes, resolve_item, DownloadSession, FileInfo, ItemRef, ResolvedItem},
    failure::{Failure, FailureKind, Result},
    progress::{FileProgress, Mode, Reporter},
    tls::{parse_thumbprint, Trust, TrustMode},
    transfer::{
        self,
        checksum::{AlgorithmExt, Checksum},
        state::Paths,
        Options, Stop,
    },
};

/// How long the clean-up after a run (delete the session, log out) may take.
const CLEANUP: Duration = Duration::from_secs(15);
/// New sessions a run may start when its session expires under it.
const MAX_NEW_SESSIONS: u32 = 3;

/// The exit codes as `export --help` lists them (the README has the same table).
pub const EXIT_CODES: &str = "\
Exit codes:
  0    every file is in DIR and matches the server's checksum
  1    another failure (the message says which)
  2    bad arguments
  3    authentication: login refused, or a privilege is missing
  4    not found: no such library, item or file
  5    checksum mismatch (that download was discarded)
  6    server unreachable or unavailable (partial files are kept)
  7    the server's certificate is not trusted
  130  interrupted by SIGINT/SIGTERM (session deleted, partial files kept)

Interrupted or failed runs keep NAME.part and NAME.part.state in DIR: run the
same command again and it continues where it stopped.";

/// Server, user and output options every client command shares.
#[derive(clap::Args, Debug)]
pub struct ConnectArgs {
    /// The vSphere API endpoint: https://HOST[:PORT] (https:// when no scheme is given).
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// User name to log in as.
    #[arg(long)]
    pub user: String,
    /// Read the password from the first line of standard input (the only way to pass it).
    #[arg(long, required = true)]
    pub password_stdin: bool,
    /// Accept any server certificate without checking it.
    #[arg(long, conflicts_with_all = ["thumbprint", "ca_file"])]
    pub insecure: bool,
    /// Trust exactly the server certificate with this SHA-1 thumbprint (AB:CD:... as vSphere prints it).
    #[arg(long, value_name = "SHA1", conflicts_with = "ca_file")]
    pub thumbprint: Option<String>,
    /// Trust the CA certificates in this PEM file instead of the system's.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Write one JSON object per line to stdout: progress, then a summary (or an error).
    #[arg(long)]
    pub json: bool,
}

impl ConnectArgs {
    fn trust_mode(&self) -> Result<TrustMode> {
        Ok(if self.insecure {
            TrustMode::Insecure
        } else if let Some(tp) = &self.thumbprint {
            TrustMode::Thumbprint(parse_thumbprint(tp)?)
        } else if let Some(ca) = &self.ca_file {
            TrustMode::CaFile(ca.clone())
        } else {
            TrustMode::System
        })
    }
}

/// `export` arguments.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Parallel Range requests per file, at most; more than one are used only
    /// while they speed the transfer up.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    /// Export only this file of the item (repeatable).
    #[arg(long = "file", value_name = "NAME")]
    pub files: Vec<String>,
    /// Failed attempts in a row, per connection, before giving up (partial files are kept).
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub retries: u32,
    /// LIBRARY/ITEM (names), or a library item id.
    #[arg(value_name = "LIBRARY/ITEM|ITEM_ID")]
    pub item: String,
    /// Directory for the files (created when missing).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// Runs `export` to the end and says how it went as an exit code.
pub fn main(args: ExportArgs) -> ExitCode {
    let reporter = Arc::new(Reporter::new(Mode::choose(args.connect.json)));
    let outcome = read_password().and_then(|password| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| Failure::other(format!("cannot start the runtime: {e}")))?;
        runtime.block_on(run(args, password, reporter.clone()))
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            reporter.failed(&f);
            ExitCode::from(f.kind.exit_code())
        }
    }
}

fn read_password() -> Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| {
        Failure::usage(format!("cannot read the password from standard input: {e}"))
    })?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        return Err(Failure::usage(
            "no password on standard input: pipe it in, e.g. `cat ~/.vc-password | download-sessions export ...`",
        ));
    }
    Ok(password)
}

/// The first SIGINT or SIGTERM cancels the run (which then cleans up); a
/// second one ends the process at once.
fn watch_signals(cancel: CancellationToken, reporter: Arc<Reporter>) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| Failure::other(format!("cannot watch SIGINT: {e}")))?;
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| Failure::other(format!("cannot watch SIGTERM: {e}")))?;
    tokio::spawn(async move {
        tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
        reporter.note("interrupted: stopping, keeping what arrived, deleting the session (again to quit at once)");
        cancel.cancel();
        tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
        std::process::exit(FailureKind::Interrupted.exit_code().into());
    });
    Ok(())
}

async fn run(args: ExportArgs, password: String, reporter: Arc<Reporter>) -> Result<()> {
    let started = Instant::now();
    let cancel = CancellationToken::new();
    watch_signals(cancel.clone(), reporter.clone())?;
    let server = server_url(&args.connect.server)?;
    let what = ItemRef::parse(&args.item)?;
    for name in &args.files {
        safe_file_name(name).map_err(|_| {
            Failure::usage(format!(
                "--file {name:?} is not a file name (no '/', not '.' or '..')"
            ))
        })?;
    }
    let trust = Trust::new(args.connect.trust_mode()?)?;
    std::fs::create_dir_all(&args.dir).map_err(|e| Failure::local("create", &args.dir, e))?;
    let login = Login {
        server,
        user: args.connect.user.clone(),
        password,
        trust,
    };
    // Not raced with a signal: a login whose answer is dropped cannot be logged out.
    let api = Arc::new(Api::login(login).await?);
    let item = tokio::select! {
        r = resolve_item(&api, &what) => r,
        _ = cancel.cancelled() => Err(interrupted(&args.dir, false)),
    };
    let result = match item {
        Ok(item) => {
            let options = Options {
                parallel: args.parallel as usize,
                retries: args.retries,
            };
            export_item(&api, &item, &args, options, &reporter, &cancel, started).await
        }
        Err(e) => Err(e),
    };
    let _ = tokio::time::timeout(CLEANUP, api.logout()).await;
    result
}

fn interrupted(dir: &Path, session: bool) -> Failure {
    let what = if session {
        "the download session was deleted"
    } else {
        "nothing was started"
    };
    Failure::new(
        FailureKind::Interrupted,
        format!(
            "interrupted: {what}; partial files stay in {} (*.part): run the same command again to resume",
            dir.display()
        ),
    )
}

/// A file name from the server is only written if it cannot leave DIR.
fn safe_file_name(name: &str) -> std::result::Result<(), ()> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        Err(())
    } else {
        Ok(())
    }
}

/// The session in use (a new one replaces it when it expires under us).
struct Current {
    session: Mutex<DownloadSession>,
}

impl Current {
    fn get(&self) -> DownloadSession {
        self.session
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set(&self, s: DownloadSession) {
        *self.session.lock().unwrap_or_else(|p| p.into_inner()) = s;
    }
}

/// One file's result for the summary.
struct Done {
    name: String,
    path: PathBuf,
    size: u64,
    checksum: Checksum,
    fetched: u64,
    resumed: u64,
    connections: usize,
    already_present: bool,
}

async fn new_session(api: &Api, item: &ResolvedItem) -> Result<DownloadSession> {
    // The same token on every retry of this create: a create whose answer
    // was lost answers the same session instead of leaking a second one.
    let token = uuid::Uuid::new_v4().to_string();
    DownloadSession::create(api, &item.id, &token).await
}

async fn export_item(
    api: &Arc<Api>,
    item: &ResolvedItem,
    args: &ExportArgs,
    options: Options,
    reporter: &Arc<Reporter>,
    cancel: &CancellationToken,
    started: Instant,
) -> Result<()> {
    // Not raced with a signal either: a session whose id never arrived could
    // not be deleted. A signal meanwhile is seen by the first wait that follows.
    let session = new_session(api, item).await?;
    let mut run = Export {
        api,
        item,
        args,
        options,
        reporter,
        cancel,
        current: Arc::new(Current {
            session: Mutex::new(session),
        }),
        new_sessions: 0,
        started,
    };
    let result = run.all_files().await;
    // Delete whatever session is current, on every path out.
    let session = run.current.get();
    let deleted = tokio::time::timeout(CLEANUP, session.delete(api)).await;
    match deleted {
        Ok(Ok(())) => {}
        Ok(Err(e)) if e.status() == Some(reqwest::StatusCode::NOT_FOUND) => {}
        _ => reporter.note(&format!(
            "note: could not delete download session {}; the server expires it after its idle timeout",
            session.id
        )),
    }
    result
}

/// One run of `export` once the item is known: what every step needs.
struct Export<'a> {
    api: &'a Arc<Api>,
    item: &'a ResolvedItem,
    args: &'a ExportArgs,
    options: Options,
    reporter: &'a Arc<Reporter>,
    cancel: &'a CancellationToken,
    current: Arc<Current>,
    /// Sessions started because the previous one ended under this run.
    new_sessions: u32,
    started: Instant,
}

impl Export<'_> {
    /// Prepares every wanted file, then downloads them one after the other.
    async fn all_files(&mut self) -> Result<()> {
        let (api, reporter) = (self.api, self.reporter);
        let session = self.current.get();
        let listed = session
            .files(api)
            .await
            .map_err(|e| api.failure(e, "listing the item's files"))?;
        let names = choose_files(&listed, &self.args.files, &self.item.label)?;
        for name in &names {
            safe_file_name(name).map_err(|_| {
                Failure::other(format!(
                    "the server names a file {name:?}, which is not a safe local file name; refusing to write it"
                ))
            })?;
        }
        reporter.event(json!({
            "event": "session",
            "item_id": self.item.id,
            "item": self.item.label,
            "session_id": session.id,
            "files": names,
        }));
        let catalog = item_file_sizes(api, &self.item.id).await;
        let progress: Vec<Arc<FileProgress>> = names
            .iter()
            .map(|n| {
                let size = listed
                    .iter()
                    .find(|f| &f.name == n)
                    .and_then(|f| f.size)
                    .or_else(|| catalog.iter().find(|f| &f.name == n).and_then(|f| f.size))
                    .unwrap_or(0);
                reporter.add_file(n, size)
            })
            .collect();
        prepare_all(api, &session, &names).await?;

        let keep_alive = tokio::spawn(keep_alive(
            api.clone(),
            self.current.clone(),
            progress.clone(),
            interval_for(api, &session).await,
        ));
        let ticker = {
            let reporter = reporter.clone();
            tokio::spawn(async move {
                let mut t = tokio::time::interval(Duration::from_millis(100));
                loop {
                    t.tick().await;
                    reporter.tick();
                }
            })
        };
        let mut done = Vec::new();
        let mut outcome = Ok(());
        for (name, prog) in names.iter().zip(&progress) {
            match self.one_file(name, prog, &names).await {
                Ok(d) => done.push(d),
                Err(f) => {
                    outcome = Err(f);
                    break;
                }
            }
        }
        ticker.abort();
        keep_alive.abort();
        outcome?;

        // Tell the server we are through before the session goes.
        let _ = self.current.get().keep_alive(api, 100).await;
        reporter.clear();
        self.summary(&done);
        Ok(())
    }

    fn summary(&self, done: &[Done]) {
        let fetched: u64 = done.iter().map(|d| d.fetched).sum();
        let total: u64 = done.iter().map(|d| d.size).sum();
        let seconds = self.started.elapsed().as_secs_f64();
        self.reporter.event(json!({
            "event": "summary",
            "status": "ok",
            "item_id": self.item.id,
            "item": self.item.label,
            "dir": self.args.dir,
            "seconds": (seconds * 1000.0).round() / 1000.0,
            "downloaded_bytes": fetched,
            "files": done.iter().map(|d| {
                let mut v = json!({
                    "name": d.name,
                    "path": d.path,
                    "size": d.size,
                    "checksum_algorithm": d.checksum.algorithm.name(),
                    "checksum": d.checksum.hex,
                    "downloaded_bytes": d.fetched,
                    "resumed_bytes": d.resumed,
                    "connections": d.connections,
                    "already_present": d.already_present,
                });
                v[d.checksum.algorithm.key()] = json!(d.checksum.hex);
                v
            }).collect::<Vec<_>>(),
        }));
        self.reporter.note(&format!(
            "exported {} file(s), {} in all, of {} into {} in {:.1}s ({} downloaded); every checksum verified",
            done.len(),
            indicatif::HumanBytes(total),
            self.item.label,
            self.args.dir.display(),
            seconds,
            indicatif::HumanBytes(fetched),
        ));
        if self.reporter.mode() != Mode::Json {
            for d in done {
                println!("{}", d.path.display());
            }
        }
    }

    /// Waits for one file, downloads and verifies it, carrying on through an
    /// expired session or changed content where that can work.
    async fn one_file(
        &mut self,
        name: &str,
        progress: &Arc<FileProgress>,
        all: &[String],
    ) -> Result<Done> {
        let (api, args, reporter) = (self.api, self.args, self.reporter);
        let paths = Paths::new(&args.dir, name);
        let mut started_over = false;
        loop {
            let session = self.current.get();
            let info = match self.wait_prepared(&session, name).await {
                Wait::Prepared(info) => info,
                Wait::Failed(f) => return Err(f),
                Wait::SessionGone => {
                    self.replace_session(all).await?;
                    continue;
                }
            };
            let size = info.size.ok_or_else(|| {
                Failure::other(format!(
                    "{name}: the server announces no size for the prepared file"
                ))
            })?;
            let checksum = match &info.checksum_info {
                Some(c) => Checksum::from_info(name, c)?,
                None => {
                    return Err(Failure::other(format!(
                        "{name}: the server announces no checksum, so the file cannot be verified; \
                         nothing was downloaded"
                    )))
                }
            };
            progress.size.store(size, Ordering::Relaxed);
            if transfer::already_there(&paths.done, size, &checksum).await {
                progress.have.store(size, Ordering::Relaxed);
                reporter.note(&format!(
                    "{name}: already in {} with the right {}; skipped",
                    args.dir.display(),
                    checksum.algorithm.display()
                ));
                return Ok(Done {
                    name: name.to_string(),
                    path: paths.done.clone(),
                    size,
                    checksum,
                    fetched: 0,
                    resumed: 0,
                    connections: 0,
                    already_present: true,
                });
            }
            let endpoint = info.download_endpoint.as_ref().ok_or_else(|| {
                Failure::other(format!("{name}: PREPARED but without a download endpoint"))
            })?;
            let uri = url::Url::parse(&endpoint.uri).map_err(|e| {
                Failure::other(format!(
                    "{name}: the download endpoint {:?} is not a URL: {e}",
                    endpoint.uri
                ))
            })?;
            let advertised = endpoint
                .ssl_certificate_thumbprint
                .as_deref()
                .and_then(|t| parse_thumbprint(t).ok());
            let http = api.data_client(advertised)?;
            let describe = {
                let trust: Trust = api.trust().clone();
                // The origin only: the full URI carries the session's signature.
                let mut base = uri.clone();
                base.set_path("");
                base.set_query(None);
                let name = name.to_string();
                Arc::new(move |e: &reqwest::Error| {
                    transport_failure(&base, &trust, e, &format!("downloading {name}"))
                })
            };
            let job = transfer::Job {
                name: name.to_string(),
                paths: paths.clone(),
                size,
                checksum: checksum.clone(),
                uri,
                http,
                describe,
                options: self.options,
                progress: progress.clone(),
                cancel: self.cancel.clone(),
            };
            reporter.start_file(progress);
            let result = transfer::download(&job).await;
            match result {
                Ok(v) => {
                    let resumed = if v.resumed > 0 {
                        format!(
                            ", {} of it from an earlier run",
                            indicatif::HumanBytes(v.resumed)
                        )
                    } else {
                        String::new()
                    };
                    reporter.end_file(
                        progress,
                        Some(&format!(
                            "{name}: {}{resumed}, {} verified -> {}",
                            indicatif::HumanBytes(size),
                            checksum.algorithm.display(),
                            paths.done.display()
                        )),
                    );
                    return Ok(Done {
                        name: name.to_string(),
                        path: paths.done.clone(),
                        size,
                        checksum,
                        fetched: v.fetched,
                        resumed: v.resumed,
                        connections: v.connections,
                        already_present: false,
                    });
                }
                Err(Stop::EndpointGone(why)) => {
                    reporter.end_file(progress, Some(&format!("{name}: {why}")));
                    match self.current.get().get(api).await {
                        Ok(m) if m.state == "ACTIVE" => {
                            return Err(Failure::other(format!(
                                "{name}: {why}, although the download session is still active; \
                                 run the command again to resume"
                            )))
                        }
                        _ => self.replace_session(all).await?,
                    }
                }
                Err(Stop::ContentChanged(why)) if !started_over => {
                    reporter.end_file(
                        progress,
                        Some(&format!("{name}: {why}; starting this file over")),
                    );
                    started_over = true;
                }
                Err(Stop::ContentChanged(why)) => {
                    reporter.end_file(progress, Some(&format!("{name}: {why}")));
                    return Err(Failure::other(format!(
                        "{name}: {why} twice in a row; the content keeps changing on the server"
                    )));
                }
                Err(Stop::Failed(f)) => {
                    reporter.end_file(progress, None);
                    let have = progress.have.load(Ordering::Relaxed);
                    return Err(match f.kind {
                        FailureKind::Interrupted => interrupted(&args.dir, true),
                        FailureKind::ChecksumMismatch => f,
                        FailureKind::Unreachable => Failure::new(
                            f.kind,
                            format!(
                                "{name}: {}; {} of {} are kept in {}: run the same command again to resume",
                                f.message,
                                indicatif::HumanBytes(have),
                                indicatif::HumanBytes(size),
                                paths.part.display()
                            ),
                        ),
                        _ => f.context(name),
                    });
                }
            }
        }
    }

    /// The session expired or was revoked under us: start another, ask for
    /// the files again, and carry on from the partial files.
    async fn replace_session(&mut self, names: &[String]) -> Result<()> {
        if self.new_sessions >= MAX_NEW_SESSIONS {
            return Err(Failure::other(format!(
                "the download session ended under this run {MAX_NEW_SESSIONS} times; \
                 run the command again to resume"
            )));
        }
        self.new_sessions += 1;
        let old = self.current.get();
        self.reporter.note(&format!(
            "download session {} is gone (expired or canceled); continuing in a new one",
            old.id
        ));
        let session = new_session(self.api, self.item).await?;
        self.current.set(session.clone());
        prepare_all(self.api, &session, names).await
    }

    /// Polls the file until PREPARED, backing off from 50 ms to 2 s.
    async fn wait_prepared(&self, session: &DownloadSession, name: &str) -> Wait {
        let api = self.api;
        let mut delay = Duration::from_millis(50);
        let since = Instant::now();
        let mut told = false;
        loop {
            match session.file(api, name).await {
                Ok(info) => match info.status.as_str() {
                    "PREPARED" => return Wait::Prepared(info),
                    "ERROR" => {
                        let why = info
                            .error_message
                            .map(|m| m.text())
                            .unwrap_or_else(|| "no reason given".into());
                        return Wait::Failed(Failure::other(format!(
                            "the server could not prepare {name}: {why}; run the command again, \
                             and if it keeps failing, ask the server's administrator"
                        )));
                    }
                    "UNPREPARED" => {
                        // Forgotten (e.g. a server-side reset): ask again.
                        if let Err(e) = session.prepare(api, name).await {
                            return Wait::Failed(api.failure(e, &format!("preparing {name}")));
                        }
                    }
                    _ => {}
                },
                Err(e) if e.status() == Some(reqwest::StatusCode::NOT_FOUND) => {
                    return Wait::SessionGone
                }
                Err(e) => {
                    return Wait::Failed(api.failure(e, &format!("reading the state of {name}")))
                }
            }
            if !told && since.elapsed() > Duration::from_secs(2) {
                self.reporter
                    .note(&format!("{name}: waiting for the server to prepare it"));
                told = true;
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.cancel.cancelled() => return Wait::Failed(interrupted(&self.args.dir, true)),
            }
            delay = (delay * 8 / 5).min(Duration::from_secs(2));
        }
    }
}

/// The session's files the user asked for, in the server's order.
fn choose_files(listed: &[FileInfo], wanted: &[String], label: &str) -> Result<Vec<String>> {
    if listed.is_empty() {
        return Err(Failure::not_found(format!(
            "the library item {label} has no files to export"
        )));
    }
    if wanted.is_empty() {
        return Ok(listed.iter().map(|f| f.name.clone()).collect());
    }
    let unknown: Vec<&String> = wanted
        .iter()
        .filter(|w| !listed.iter().any(|f| &f.name == *w))
        .collect();
    if !unknown.is_empty() {
        let have: Vec<&str> = listed.iter().map(|f| f.name.as_str()).collect();
        return Err(Failure::not_found(format!(
            "the library item {label} has no file named {}; it has: {}",
            unknown
                .iter()
                .map(|u| format!("{u:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            have.join(", ")
        )));
    }
    Ok(listed
        .iter()
        .filter(|f| wanted.contains(&f.name))
        .map(|f| f.name.clone())
        .collect())
}

/// Asks for every file at once: the server prepares them while we download
/// the first ones.
async fn prepare_all(api: &Api, session: &DownloadSession, names: &[String]) -> Result<()> {
    for name in names {
        session
            .prepare(api, name)
            .await
            .map_err(|e| api.failure(e, &format!("asking the server to prepare {name}")))?;
    }
    Ok(())
}

/// Half the lease the server grants (from `expiration_time`), within 1-60 s.
async fn interval_for(api: &Api, session: &DownloadSession) -> Duration {
    let lease = session.get(api).await.ok().and_then(|m| {
        let exp = chrono::DateTime::parse_from_rfc3339(m.expiration_time.as_deref()?).ok()?;
        (exp.with_timezone(&chrono::Utc) - chrono::Utc::now())
            .to_std()
            .ok()
    });
    lease
        .map(|l| (l / 2).clamp(Duration::from_secs(1), Duration::from_secs(60)))
        .unwrap_or(Duration::from_secs(60))
}

/// Renews the session and reports overall progress (0-100) until aborted.
/// Failures are left to the transfer to notice (an expired session refuses its URIs).
async fn keep_alive(
    api: Arc<Api>,
    current: Arc<Current>,
    files: Vec<Arc<FileProgress>>,
    every: Duration,
) {
    loop {
        tokio::time::sleep(every).await;
        let (have, size) = files.iter().fold((0u64, 0u64), |(h, s), f| {
            (
                h + f.have.load(Ordering::Relaxed),
                s + f.size.load(Ordering::Relaxed),
            )
        });
        let pct = have
            .saturating_mul(100)
            .checked_div(size)
            .map_or(0, |p| p.min(100) as u8);
        let _ = current.get().keep_alive(&api, pct).await;
    }
}

/// Why waiting for a file stopped.
enum Wait {
    Prepared(FileInfo),
    SessionGone,
    Failed(Failure),
}
