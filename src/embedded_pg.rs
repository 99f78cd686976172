//! Private PostgreSQL cluster under the data dir, for commands run with no database configured:
//! it owns `<data_dir>/postgres` (initdb, pg_ctl start/stop) and the `download_sessions` database in it.
//!
//! The server listens only on a Unix socket inside the cluster directory (mode 0700), so trust
//! authentication reaches nobody but the cluster's owner (and root). Because that socket path must
//! fit in `sun_path`, an over-long data dir is refused with a message rather than worked around with
//! a socket directory elsewhere. As root, the server runs as the cluster directory's owner, or the
//! `postgres` system user for a new cluster, since PostgreSQL refuses to run as root. A cluster that
//! is already running (another command of this service) is reused and left running on drop.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::{Connection, PgConnection};

const DATABASE: &str = "download_sessions";
const SUPERUSER: &str = "postgres";
/// No TCP listener exists, so the port only names the socket file (`.s.PGSQL.<port>`).
const PORT: u16 = 5432;
/// `sizeof(sun_path)` on Linux, including the terminating NUL.
const SUN_PATH_LEN: usize = 108;
/// How long to wait for a server someone else is starting (or recovering) to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

const INSTALL_HINT: &str = "install the PostgreSQL server (e.g. `apt-get install postgresql`) \
     or configure a database with `database.url` / DATABASE_URL";

/// A private PostgreSQL cluster; stops it on drop if this value started it.
pub struct EmbeddedPostgres {
    cluster_dir: PathBuf,
    bindir: PathBuf,
    run_as: Option<RunAs>,
    socket_dir: PathBuf,
    port: u16,
    /// Only the process that started the server stops it, so a second command leaves `serve` running.
    owned: bool,
}

/// The unprivileged user the server runs as when this process is root.
#[derive(Clone, Copy, Debug)]
struct RunAs {
    uid: u32,
    gid: u32,
}

impl EmbeddedPostgres {
    /// Starts (initdb on first run) a private cluster under `<data_dir>/postgres`, listening only on
    /// a Unix socket in that directory, and ensures the `download_sessions` database exists.
    /// Returns when it accepts connections; reuses a cluster that is already running.
    pub async fn start(data_dir: &Path) -> Result<EmbeddedPostgres> {
        let data_dir = data_dir.to_path_buf();
        let pg = tokio::task::spawn_blocking(move || Self::launch(&data_dir))
            .await
            .context("the embedded PostgreSQL start task failed")??;
        // pg_ctl -w already waited for a server we started; a reused one may still be recovering.
        // An error here drops `pg`, which stops a server we started.
        pg.wait_ready(READY_TIMEOUT).await?;
        pg.ensure_database().await?;
        Ok(pg)
    }

    /// A sqlx/libpq URL for the `download_sessions` database over the Unix socket.
    pub fn url(&self) -> String {
        format!(
            "postgres://{SUPERUSER}@localhost:{}/{DATABASE}?host={}&sslmode=disable",
            self.port,
            encode_query_value(&self.socket_dir.to_string_lossy())
        )
    }

    /// The cluster directory.
    pub fn data_dir(&self) -> &Path {
        &self.cluster_dir
    }

    /// Stops the cluster (fast shutdown) and waits for it, if this value started it.
    pub fn stop(&mut self) {
        if !self.owned {
            return;
        }
        self.owned = false;
        tracing::info!(dir = %self.cluster_dir.display(), "stopping the embedded PostgreSQL cluster");
        let result = self.pg_ctl("stop").args(["-m", "fast", "-w"]).output();
        match result {
            Ok(out) if out.status.success() => {}
            Ok(out) => tracing::warn!(
                dir = %self.cluster_dir.display(),
                output = %describe_output(&out),
                "pg_ctl stop failed"
            ),
            Err(e) => {
                tracing::warn!(dir = %self.cluster_dir.display(), error = %e, "cannot run pg_ctl stop")
            }
        }
    }

    fn launch(data_dir: &Path) -> Result<EmbeddedPostgres> {
        fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create the data dir {}", data_dir.display()))?;
        let data_dir = std::path::absolute(data_dir)
            .with_context(|| format!("cannot resolve the data dir {}", data_dir.display()))?;
        let cluster_dir = data_dir.join("postgres");
        check_socket_path(&cluster_dir)?;

        match fs::DirBuilder::new().mode(0o700).create(&cluster_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(e).with_context(|| format!("cannot create {}", cluster_dir.display()))
            }
        }
        let meta = fs::metadata(&cluster_dir)
            .with_context(|| format!("cannot read {}", cluster_dir.display()))?;
        anyhow::ensure!(
            meta.is_dir(),
            "{} is not a directory",
            cluster_dir.display()
        );
        let initialised = cluster_dir.join("PG_VERSION").exists();

        let euid = effective_uid()?;
        let run_as = if euid == 0 {
            let user = if meta.uid() != 0 {
                RunAs {
                    uid: meta.uid(),
                    gid: meta.gid(),
                }
            } else {
                postgres_system_user()?
            };
            if meta.uid() != user.uid || meta.gid() != user.gid {
                std::os::unix::fs::chown(&cluster_dir, Some(user.uid), Some(user.gid))
                    .with_context(|| {
                        format!("cannot hand {} to uid {}", cluster_dir.display(), user.uid)
                    })?;
            }
            check_reachable(&data_dir, user)?;
            Some(user)
        } else {
            anyhow::ensure!(
                meta.uid() == euid,
                "the embedded PostgreSQL cluster {} belongs to uid {}, not to this user (uid {euid}): \
                 run as that user, or configure `database.url` / DATABASE_URL",
                cluster_dir.display(),
                meta.uid()
            );
            None
        };

        let cluster_version = fs::read_to_string(cluster_dir.join("PG_VERSION"))
            .ok()
            .map(|v| v.trim().to_owned());
        let bindir = find_bindir(cluster_version.as_deref())?;
        let mut pg = EmbeddedPostgres {
            cluster_dir,
            bindir,
            run_as,
            socket_dir: PathBuf::new(),
            port: PORT,
            owned: false,
        };
        pg.socket_dir = pg.cluster_dir.clone();

        if !initialised {
            pg.initdb()?;
        } else if let Some(running) = pg.running_server() {
            tracing::info!(dir = %pg.cluster_dir.display(), "reusing the running embedded PostgreSQL cluster");
            (pg.socket_dir, pg.port) = running;
            return Ok(pg);
        }
        pg.pg_ctl_start()?;
        Ok(pg)
    }

    fn initdb(&self) -> Result<()> {
        let mut entries = fs::read_dir(&self.cluster_dir)
            .with_context(|| format!("cannot list {}", self.cluster_dir.display()))?;
        anyhow::ensure!(
            entries.next().is_none(),
            "{} is neither empty nor a PostgreSQL cluster (no PG_VERSION): move it away to start afresh",
            self.cluster_dir.display()
        );
        tracing::info!(dir = %self.cluster_dir.display(), "initialising the embedded PostgreSQL cluster");
        let out = self
            .command("initdb")
            .arg("-D")
            .arg(&self.cluster_dir)
            .args(["-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--locale=C"])
            .output()
            .context("cannot run initdb")?;
        anyhow::ensure!(
            out.status.success(),
            "initdb of {} failed: {}",
            self.cluster_dir.display(),
            describe_output(&out)
        );
        Ok(())
    }

    /// Starts the server; if that fails because another process started it meanwhile, reuses it.
    fn pg_ctl_start(&mut self) -> Result<()> {
        let socket_dir = self.cluster_dir.to_str().with_context(|| {
            format!(
                "the data dir {} is not valid UTF-8",
                self.cluster_dir.display()
            )
        })?;
        // pg_ctl hands `-o` to /bin/sh and postgres splits the socket list on commas.
        anyhow::ensure!(
            !socket_dir.contains(['\'', '"', ',', '\\', '\n']),
            "the data dir {socket_dir} contains quotes, commas or backslashes, which PostgreSQL \
             cannot take as a socket directory: choose another data dir or configure `database.url`"
        );
        let log = self.cluster_dir.join("server.log");
        tracing::info!(dir = %self.cluster_dir.display(), "starting the embedded PostgreSQL cluster");
        let out = self
            .pg_ctl("start")
            .arg("-l")
            .arg(&log)
            .arg("-w")
            .arg("-o")
            .arg(format!(
                "-p {PORT} -c listen_addresses='' -k '{socket_dir}' -c unix_socket_permissions=0700"
            ))
            .output()
            .context("cannot run pg_ctl start")?;
        if out.status.success() {
            self.owned = true;
            return Ok(());
        }
        // Lost a race with another command starting the same cluster: use theirs.
        if let Some(running) = self.running_server() {
            (self.socket_dir, self.port) = running;
            return Ok(());
        }
        bail!(
            "cannot start the embedded PostgreSQL cluster in {}: {}{}",
            self.cluster_dir.display(),
            describe_output(&out),
            log_tail(&log)
        )
    }

    /// The socket directory and port of a live server on this cluster, per `pg_ctl status`
    /// (which checks that postmaster.pid names a live process).
    fn running_server(&self) -> Option<(PathBuf, u16)> {
        let status = self
            .command("pg_ctl")
            .arg("status")
            .arg("-D")
            .arg(&self.cluster_dir)
            .output()
            .ok()?;
        if !status.status.success() {
            return None;
        }
        let pid_file = fs::read_to_string(self.cluster_dir.join("postmaster.pid")).ok()?;
        let lines: Vec<&str> = pid_file.lines().collect();
        let port = lines.get(3)?.trim().parse().ok()?;
        let socket_dir = lines.get(4)?.trim();
        if socket_dir.is_empty() {
            return None;
        }
        Some((PathBuf::from(socket_dir), port))
    }

    fn connect_options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new_without_pgpass()
            .socket(&self.socket_dir)
            .port(self.port)
            .username(SUPERUSER)
            .database(database)
            .ssl_mode(PgSslMode::Disable)
    }

    async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let options = self.connect_options(SUPERUSER);
        let deadline = Instant::now() + timeout;
        loop {
            let attempt =
                tokio::time::timeout(Duration::from_secs(5), PgConnection::connect_with(&options))
                    .await;
            let error = match attempt {
                Ok(Ok(conn)) => {
                    let _ = conn.close().await;
                    return Ok(());
                }
                Ok(Err(e)) => anyhow!(e),
                Err(_) => anyhow!("connecting timed out"),
            };
            if Instant::now() >= deadline {
                return Err(error).context(format!(
                    "the embedded PostgreSQL cluster in {} does not accept connections on {}{}",
                    self.cluster_dir.display(),
                    self.socket_dir.display(),
                    log_tail(&self.cluster_dir.join("server.log"))
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn ensure_database(&self) -> Result<()> {
        let mut conn = PgConnection::connect_with(&self.connect_options(SUPERUSER))
            .await
            .context("cannot connect to the embedded PostgreSQL cluster")?;
        let exists = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS "exists!""#,
            DATABASE
        )
        .fetch_one(&mut conn)
        .await
        .context("cannot list the databases of the embedded PostgreSQL cluster")?;
        if !exists {
            tracing::info!(
                database = DATABASE,
                "creating the database in the embedded PostgreSQL cluster"
            );
            // The name is DATABASE's: SQL checked at compile time is a literal.
            if let Err(e) = sqlx::query!("CREATE DATABASE download_sessions")
                .execute(&mut conn)
                .await
            {
                // duplicate_database, or unique_violation when a concurrent CREATE won the race.
                let raced = e
                    .as_database_error()
                    .and_then(|d| d.code())
                    .is_some_and(|c| c == "42P04" || c == "23505");
                if !raced {
                    return Err(e).context(format!("cannot create the database {DATABASE}"));
                }
            }
        }
        let _ = conn.close().await;
        Ok(())
    }

    /// `pg_ctl <action> -D <cluster>`.
    fn pg_ctl(&self, action: &str) -> Command {
        let mut cmd = self.command("pg_ctl");
        cmd.arg(action).arg("-D").arg(&self.cluster_dir);
        cmd
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bindir.join(program));
        // The server user may not be able to enter the caller's working directory.
        cmd.current_dir(&self.cluster_dir);
        if let Some(user) = self.run_as {
            cmd.uid(user.uid).gid(user.gid);
        }
        cmd
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

fn check_socket_path(cluster_dir: &Path) -> Result<()> {
    let socket = cluster_dir.join(format!(".s.PGSQL.{PORT}"));
    let len = socket.as_os_str().len();
    anyhow::ensure!(
        len < SUN_PATH_LEN,
        "the data dir path is too long for the embedded PostgreSQL socket {} ({len} bytes, at most {}): \
         use a shorter data dir, or configure `database.url` / DATABASE_URL",
        socket.display(),
        SUN_PATH_LEN - 1
    );
    Ok(())
}

/// The effective uid, read from procfs because libc calls would need `unsafe`.
fn effective_uid() -> Result<u32> {
    if let Ok(status) = fs::read_to_string("/proc/self/status") {
        let euid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            .and_then(|euid| euid.parse().ok());
        if let Some(euid) = euid {
            return Ok(euid);
        }
    }
    Ok(fs::metadata("/proc/self")
        .context("cannot determine the current user (no /proc/self)")?
        .uid())
}

fn postgres_system_user() -> Result<RunAs> {
    let passwd = fs::read_to_string("/etc/passwd").context("cannot read /etc/passwd")?;
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.first() != Some(&"postgres") {
                return None;
            }
            Some(RunAs {
                uid: fields.get(2)?.parse().ok()?,
                gid: fields.get(3)?.parse().ok()?,
            })
        })
        .filter(|u| u.uid != 0)
        .ok_or_else(|| {
            anyhow!(
                "PostgreSQL cannot run as root and there is no `postgres` system user to run the embedded \
                 cluster as: {INSTALL_HINT}, or run this command as an unprivileged user"
            )
        })
}

/// Asks the kernel, as the server user, whether it can reach the data dir: permission bits alone
/// would miss ACLs and supplementary groups.
fn check_reachable(data_dir: &Path, user: RunAs) -> Result<()> {
    let probe = Command::new("test")
        .arg("-x")
        .arg(data_dir)
        .current_dir("/")
        .uid(user.uid)
        .gid(user.gid)
        .status();
    match probe {
        Ok(status) if !status.success() => bail!(
            "the PostgreSQL server user (uid {}) cannot enter {}: make it and its parents traversable \
             (e.g. chmod o+x), or configure `database.url` / DATABASE_URL",
            user.uid,
            data_dir.display()
        ),
        // Without `test` the check is skipped; initdb or pg_ctl will report the problem.
        _ => Ok(()),
    }
}

/// The PostgreSQL server binaries: the cluster's own major version in the Debian layout, then
/// `pg_config --bindir`, then the newest Debian install, then PATH.
fn find_bindir(cluster_version: Option<&str>) -> Result<PathBuf> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    let debian = Path::new("/usr/lib/postgresql");

    if let Some(version) = cluster_version {
        let dir = debian.join(version).join("bin");
        if has_server(&dir) {
            return Ok(dir);
        }
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        if out.status.success() {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if has_server(&dir) {
                return Ok(dir);
            }
        }
    }
    let mut versions: Vec<(Vec<u32>, PathBuf)> = fs::read_dir(debian)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let version = name
                .to_str()?
                .split('.')
                .map(|n| n.parse().ok())
                .collect::<Option<Vec<u32>>>()?;
            let dir = entry.path().join("bin");
            has_server(&dir).then_some((version, dir))
        })
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return Ok(dir);
    }
    if let Some(path) = std::env::var_os("PATH") {
        if let Some(dir) = std::env::split_paths(&path).find(|d| has_server(d)) {
            return Ok(dir);
        }
    }
    bail!("no PostgreSQL server binaries (initdb, pg_ctl) found to run the embedded database: {INSTALL_HINT}")
}

/// Percent-encodes a URL query value so both sqlx (form decoding, `+` is a space) and libpq
/// (plain percent decoding) read it back unchanged.
fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn describe_output(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let text = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    };
    format!("{} ({})", text.trim(), out.status)
}

fn log_tail(log: &Path) -> String {
    match fs::read_to_string(log) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(10)..].join("\n");
            if tail.is_empty() {
                String::new()
            } else {
                format!("\nlast lines of {}:\n{tail}", log.display())
            }
        }
        Err(_) => String::new(),
    }
}
