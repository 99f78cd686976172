//! Layered configuration: built-in defaults <- optional file <- `DLS__SECTION__KEY`
//! environment variables (and `DATABASE_URL`). Validated once at start-up, and
//! typed from then on (addresses, URLs, decoded keys); secrets never printed.

use std::{fmt, net::SocketAddr, path::PathBuf, time::Duration};

use base64::Engine;
use serde::{Deserialize, Deserializer};
use url::Url;

use crate::edge::client::TrustedProxies;

/// Everything the service can be told. Field names are the config keys.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Root of the local stores and the embedded database cluster.
    pub data_dir: PathBuf,
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub sessions: SessionSettings,
    pub login: LoginSettings,
    pub cache: CacheSettings,
    pub workers: WorkerSettings,
    pub maintenance: MaintenanceSettings,
    pub signing: SigningSettings,
    pub storage: StorageSettings,
    pub log: LogSettings,
    #[serde(default)]
    pub uploads: UploadSettings,
}

/// Update sessions (uploads).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadSettings {
    /// Hosts a PULL file may be fetched from (`host`, `host:port`, `*.domain`);
    /// empty (the default): PULL is refused. Pulling reaches into the network
    /// the service runs in, so it is opt-in per host.
    #[serde(default)]
    pub pull_allow: Vec<String>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    pub listen: SocketAddr,
    /// Base of the download URIs handed to clients (http or https, with a
    /// host); defaults to `http://{listen}`.
    #[serde(default)]
    pub public_url: Option<Url>,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// HTTP worker threads; 0 = one per core.
    pub threads: usize,
    /// How long SIGTERM waits for in-flight requests and downloads.
    pub shutdown_grace_seconds: u64,
    /// Terminate TLS here with this certificate chain and key (PEM files).
    #[serde(default)]
    pub tls: Option<TlsSettings>,
    /// Behind a TLS-terminating proxy: PEM file of the certificate clients see,
    /// advertised in HTTPS endpoints (thumbprint and PEM).
    #[serde(default)]
    pub advertised_certificate: Option<PathBuf>,
    /// Open connections on `listen` above which requests are refused (503).
    pub max_connections: usize,
    /// How long an idle keep-alive connection stays open.
    pub keep_alive_seconds: u64,
    /// How long a client has to send a request's head.
    pub head_timeout_seconds: u64,
    /// How long a client has to send an API request's body, after its head.
    pub body_timeout_seconds: u64,
    /// Peers whose `Forwarded` / `X-Forwarded-For` / `X-Forwarded-Proto` are believed.
    #[serde(default)]
    pub trusted_proxies: TrustedProxies,
    /// Serve `/metrics` (and the probes) on this address only, not on `listen`.
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
    /// How often the gauges read from the database are recounted.
    pub metrics_refresh_seconds: u64,
    /// Read-ahead memory of all downloads together (1 MiB buffers, at most 2
    /// per download; past it, downloads read 64 KiB at a time outside it).
    pub download_buffer_bytes: usize,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// PostgreSQL URL. Unset: `DATABASE_URL`, else an embedded private cluster.
    #[serde(default)]
    pub url: Option<String>,
    pub max_connections: u32,
    pub acquire_timeout_seconds: u64,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSettings {
    /// Download-session lease: idle time after which a session expires.
    pub timeout_seconds: u64,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginSettings {
    /// Idle time after which a login token stops working.
    pub idle_timeout_seconds: u64,
    /// Failed logins for a user name before each further attempt is delayed.
    pub free_failures: u32,
    /// Upper bound of that delay.
    pub max_delay_seconds: u64,
    /// Absolute lifetime of a login token, however active.
    pub max_lifetime_seconds: u64,
    /// Threads that check passwords (argon2, ~19 MiB each, kept for reuse);
    /// 0 = one per core, at most 4.
    pub verify_threads: usize,
    /// Logins that may wait for a verification thread; beyond them a login
    /// answers SERVICE_UNAVAILABLE at once.
    pub verify_queue: usize,
}

impl LoginSettings {
    /// Verification threads after resolving 0 (one per core, at most 4).
    pub fn verify_threads(&self) -> usize {
        match self.verify_threads {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get().min(4)),
            n => n,
        }
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSettings {
    /// Login tokens the validity cache holds at most (0: none; every request asks the database).
    pub max_logins: usize,
    /// Download sessions (with their files) the validity cache holds at most (0: none).
    pub max_sessions: usize,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSettings {
    /// Prepare workers per instance (0 = this instance stages nothing).
    pub count: usize,
    /// How long a claim stays valid without a heartbeat.
    pub lease_seconds: u64,
    /// Heartbeat period (renews the lease, reports progress, sees cancellation).
    pub heartbeat_seconds: u64,
    /// Claims of one file before it goes to ERROR.
    pub max_attempts: i32,
    /// Polling fallback when no NOTIFY arrives.
    pub poll_seconds: u64,
    /// Upper bound of one staging copy's rate in bytes per second; 0 = unlimited.
    #[serde(default)]
    pub throttle_bytes_per_second: u64,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceSettings {
    /// Period of the expiry / rescue / garbage-collection pass.
    pub interval_seconds: u64,
    /// How long an unreferenced artifact is kept before it is deleted.
    pub artifact_grace_seconds: u64,
    /// How long a content object nothing references is kept before deletion.
    pub content_grace_seconds: u64,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningSettings {
    /// Keys that verify download URIs; empty = one generated key kept in the database.
    #[serde(default)]
    pub keys: Vec<SigningKeySetting>,
    /// Key id that signs new URIs; defaults to the last key listed.
    #[serde(default)]
    pub active_key: Option<String>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKeySetting {
    pub id: String,
    /// Base64 (standard or URL-safe) secret of at least 32 bytes.
    pub secret: SigningSecret,
}

/// The bytes of a configured signing key, decoded from base64 (standard or
/// URL-safe, padded or not) as the settings load. Text that is not base64
/// decodes to no bytes, which validation refuses with every other problem.
#[derive(Clone, Default)]
pub struct SigningSecret(Vec<u8>);

impl SigningSecret {
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl<'de> Deserialize<'de> for SigningSecret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let s = text.trim();
        let engines = [
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::STANDARD_NO_PAD,
            base64::engine::general_purpose::URL_SAFE,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ];
        let bytes = engines.iter().find_map(|e| e.decode(s).ok());
        Ok(SigningSecret(bytes.unwrap_or_default()))
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningSecret(<{} bytes>)", self.0.len())
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    /// Longest life of a DIRECT presigned URL (S3): each `get` hands a fresh
    /// one, valid this long or until the session expires, whichever is first.
    pub direct_url_seconds: u64,
    pub content: StoreSettings,
    pub transfer: StoreSettings,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// `local` or `s3`.
    pub kind: String,
    /// Directory for `local`; relative paths are under `data_dir`.
    #[serde(default)]
    pub path: Option<PathBuf>,
    #[serde(default)]
    pub bucket: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub access_key_id: Option<String>,
    #[serde(default)]
    pub secret_access_key: Option<String>,
    /// Address buckets as `endpoint/bucket` (MinIO and most S3 clones) instead of `bucket.endpoint`.
    #[serde(default = "default_true")]
    pub path_style: bool,
    /// Allow plain-HTTP endpoints.
    #[serde(default)]
    pub allow_http: bool,
    /// Address clients use to reach the S3 service, when it differs from
    /// `endpoint` (DIRECT presigned URLs are signed for this host).
    #[serde(default)]
    pub public_endpoint: Option<String>,
    /// Base URI under which clients reach this store's objects themselves (e.g. the
    /// share as clients mount it, `file:///mnt/library/`). The content store's
    /// `storage_uris` and `storage_backings` are built on it; without one, a local
    /// store discloses no location.
    #[serde(default)]
    pub direct_base: Option<String>,
}

fn default_true() -> bool {
    true
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `auto` (pretty on a terminal, JSON otherwise), `json` or `pretty`.
    pub format: String,
    /// Filter in `RUST_LOG` syntax; `RUST_LOG` wins when set.
    pub level: String,
}

/// The built-in defaults: `serve` with nothing configured runs on these.
pub const DEFAULTS: &str = r#"
data_dir = "./data"

[http]
listen = "127.0.0.1:8080"
max_body_bytes = 65536
threads = 0
shutdown_grace_seconds = 30
max_connections = 4096
keep_alive_seconds = 5
head_timeout_seconds = 5
body_timeout_seconds = 10
trusted_proxies = []
metrics_refresh_seconds = 15
download_buffer_bytes = 8388608

[database]
max_connections = 16
acquire_timeout_seconds = 5

[sessions]
timeout_seconds = 300

[login]
idle_timeout_seconds = 1800
free_failures = 3
max_delay_seconds = 8
max_lifetime_seconds = 86400
verify_threads = 0
verify_queue = 32

[cache]
max_logins = 10000
max_sessions = 10000

[workers]
count = 2
lease_seconds = 30
heartbeat_seconds = 5
max_attempts = 3
poll_seconds = 5
throttle_bytes_per_second = 0

[maintenance]
interval_seconds = 15
artifact_grace_seconds = 600
content_grace_seconds = 600

[signing]
keys = []

[storage]
direct_url_seconds = 300

[storage.content]
kind = "local"
path = "content"

[storage.transfer]
kind = "local"
path = "transfer"

[log]
format = "auto"
level = "info"
"#;

/// A configuration that could not be loaded or failed validation; one line per problem.
#[derive(Debug)]
pub struct ConfigError(pub Vec<String>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration:")?;
        for problem in &self.0 {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl Settings {
    /// Defaults, then `file` when given, then the process environment.
    pub fn load(file: Option<&std::path::Path>) -> Result<Settings, ConfigError> {
        Self::load_with_env(file, std::env::vars())
    }

    /// Like [`Settings::load`] with an explicit environment (tests use this).
    pub fn load_with_env(
        file: Option<&std::path::Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let env: std::collections::HashMap<String, String> = env.into_iter().collect();
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError(vec![format!(
                    "config file {} does not exist",
                    file.display()
                )]));
            }
            builder = builder.add_source(config::File::from(file).required(true));
        }
        let dls_env: std::collections::HashMap<String, String> = env
            .iter()
            .filter(|(k, _)| k.starts_with("DLS__"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("DLS")
                .separator("__")
                .source(Some(dls_env))
                .try_parsing(true),
        );
        let mut raw = builder
            .build()
            .map_err(|e| ConfigError(vec![e.to_string()]))?;
        let mut problems = Vec::new();
        let stand_ins = check_typed_text(&raw, &mut problems);
        if !stand_ins.is_empty() {
            let mut patched = config::Config::builder().add_source(raw);
            for (key, value) in stand_ins {
                patched = patched
                    .set_override(key, value)
                    .map_err(|e| ConfigError(vec![e.to_string()]))?;
            }
            raw = patched
                .build()
                .map_err(|e| ConfigError(vec![e.to_string()]))?;
        }
        let mut settings: Settings = raw
            .try_deserialize()
            .map_err(|e| ConfigError(vec![e.to_string()]))?;
        if settings.database.url.is_none() {
            settings.database.url = env.get("DATABASE_URL").filter(|u| !u.is_empty()).cloned();
        }
        settings.validate(problems)?;
        Ok(settings)
    }

    fn validate(&self, mut problems: Vec<String>) -> Result<(), ConfigError> {
        if let Some(tls) = &self.http.tls {
            for (key, path) in [
                ("http.tls.cert_file", &tls.cert_file),
                ("http.tls.key_file", &tls.key_file),
            ] {
                if !path.is_file() {
                    problems.push(format!("{key}: {} is not a readable file", path.display()));
                }
            }
        }
        if let Some(path) = &self.http.advertised_certificate {
            if !path.is_file() {
                problems.push(format!(
                    "http.advertised_certificate: {} is not a readable file",
                    path.display()
                ));
            }
        }
        if self.http.max_body_bytes < 1024 {
            problems.push("http.max_body_bytes: must be at least 1024".into());
        }
        if self.http.max_connections == 0 {
            problems.push("http.max_connections: must be positive".into());
        }
        for (key, value) in [
            ("http.keep_alive_seconds", self.http.keep_alive_seconds),
            ("http.head_timeout_seconds", self.http.head_timeout_seconds),
            ("http.body_timeout_seconds", self.http.body_timeout_seconds),
            (
                "http.metrics_refresh_seconds",
                self.http.metrics_refresh_seconds,
            ),
        ] {
            if value == 0 || value > 3600 {
                problems.push(format!("{key}: must be between 1 and 3600"));
            }
        }
        for bad in &self.http.trusted_proxies.invalid {
            problems.push(format!("http.trusted_proxies: {bad}"));
        }
        if let Some(metrics) = self.http.metrics_listen {
            if metrics == self.http.listen && metrics.port() != 0 {
                problems.push("http.metrics_listen: must differ from http.listen".into());
            }
        }
        if let Some(url) = &self.database.url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                problems.push("database.url: must start with postgres:// or postgresql://".into());
            }
        }
        if self.database.max_connections < 2 {
            problems.push("database.max_connections: must be at least 2".into());
        }
        if self.database.acquire_timeout_seconds == 0 {
            problems.push("database.acquire_timeout_seconds: must be positive".into());
        }
        if self.sessions.timeout_seconds == 0 || self.sessions.timeout_seconds > 86_400 * 7 {
            problems.push("sessions.timeout_seconds: must be between 1 and 604800".into());
        }
        if self.storage.direct_url_seconds == 0 || self.storage.direct_url_seconds > 86_400 * 7 {
            problems.push("storage.direct_url_seconds: must be between 1 and 604800".into());
        }
        if self.login.idle_timeout_seconds == 0 {
            problems.push("login.idle_timeout_seconds: must be positive".into());
        }
        if self.login.max_lifetime_seconds == 0 {
            problems.push("login.max_lifetime_seconds: must be positive".into());
        }
        if self.login.verify_threads > 256 {
            problems.push("login.verify_threads: at most 256".into());
        }
        if self.workers.count > 256 {
            problems.push("workers.count: at most 256".into());
        }
        if self.workers.heartbeat_seconds == 0 || self.workers.lease_seconds == 0 {
            problems.push(
                "workers.heartbeat_seconds and workers.lease_seconds: must be positive".into(),
            );
        } else if self.workers.heartbeat_seconds * 2 > self.workers.lease_seconds {
            problems.push(
                "workers.lease_seconds: must be at least twice workers.heartbeat_seconds".into(),
            );
        }
        if self.workers.max_attempts < 1 {
            problems.push("workers.max_attempts: must be at least 1".into());
        }
        if self.workers.poll_seconds == 0 {
            problems.push("workers.poll_seconds: must be positive".into());
        }
        if self.maintenance.interval_seconds == 0 {
            problems.push("maintenance.interval_seconds: must be positive".into());
        }
        let mut ids = std::collections::HashSet::new();
        for key in &self.signing.keys {
            if key.id.is_empty()
                || !key
                    .id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                problems.push(format!(
                    "signing.keys: id {:?} must be non-empty letters, digits, '-' or '_'",
                    key.id
                ));
            }
            if !ids.insert(key.id.clone()) {
                problems.push(format!("signing.keys: id {:?} appears twice", key.id));
            }
            if key.secret.bytes().len() < 32 {
                problems.push(format!(
                    "signing.keys: secret of key {:?} must be base64 of at least 32 bytes",
                    key.id
                ));
            }
        }
        if let Some(active) = &self.signing.active_key {
            if !self.signing.keys.iter().any(|k| &k.id == active) {
                problems.push(format!(
                    "signing.active_key: {active:?} is not one of signing.keys"
                ));
            }
        }
        for (name, store) in [
            ("storage.content", &self.storage.content),
            ("storage.transfer", &self.storage.transfer),
        ] {
            if let Some(base) = &store.direct_base {
                match url::Url::parse(base) {
                    Ok(u) if !u.cannot_be_a_base() => {}
                    _ => problems.push(format!(
                        "{name}.direct_base: {base:?} is not an absolute URI that paths can extend"
                    )),
                }
            }
            match store.kind.as_str() {
                "local" => {
                    if store.path.is_none() {
                        problems.push(format!("{name}.path: required for kind \"local\""));
                    }
                }
                "s3" => {
                    if store.bucket.as_deref().unwrap_or("").is_empty() {
                        problems.push(format!("{name}.bucket: required for kind \"s3\""));
                    }
                    for (key, value) in [
                        ("endpoint", &store.endpoint),
                        ("public_endpoint", &store.public_endpoint),
                    ] {
                        if let Some(endpoint) = value {
                            match url::Url::parse(endpoint) {
                                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                                _ => problems.push(format!(
                                    "{name}.{key}: {endpoint:?} is not an http(s) URL"
                                )),
                            }
                        }
                    }
                }
                other => problems.push(format!(
                    "{name}.kind: {other:?} is not one of \"local\", \"s3\""
                )),
            }
        }
        if !matches!(self.log.format.as_str(), "auto" | "json" | "pretty") {
            problems.push(format!(
                "log.format: {:?} is not one of auto, json, pretty",
                self.log.format
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(problems))
        }
    }

    /// Base URL for download URIs: `http.public_url`, else this instance at
    /// the address it is bound to.
    pub fn public_url(&self, bound: SocketAddr) -> Result<Url, url::ParseError> {
        match &self.http.public_url {
            Some(url) => {
                // Download URIs extend the path: no trailing slashes to double.
                let mut url = url.clone();
                let path = url.path().trim_end_matches('/').to_string();
                url.set_path(&path);
                Ok(url)
            }
            None if self.http.tls.is_some() => Url::parse(&format!("https://{bound}")),
            None => Url::parse(&format!("http://{bound}")),
        }
    }

    pub fn session_timeout(&self) -> Duration {
        Duration::from_secs(self.sessions.timeout_seconds)
    }

    /// A path from config, taken relative to `data_dir` when not absolute.
    pub fn under_data_dir(&self, path: &std::path::Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.data_dir.join(path)
        }
    }
}

/// Settings that deserialize into types (an address, a URL) are checked as
/// text first, so that a bad one is named together with every other problem
/// instead of ending the load at the first. Returns a stand-in for each bad
/// value, which lets deserialization go on; the load fails anyway.
fn check_typed_text(
    raw: &config::Config,
    problems: &mut Vec<String>,
) -> Vec<(&'static str, &'static str)> {
    let mut stand_ins = Vec::new();
    if let Ok(listen) = raw.get_string("http.listen") {
        if listen.parse::<SocketAddr>().is_err() {
            problems.push(format!(
                "http.listen: {listen:?} is not an address like 127.0.0.1:8080"
            ));
            stand_ins.push(("http.listen", "127.0.0.1:0"));
        }
    }
    if let Ok(listen) = raw.get_string("http.metrics_listen") {
        if listen.parse::<SocketAddr>().is_err() {
            problems.push(format!(
                "http.metrics_listen: {listen:?} is not an address like 127.0.0.1:9090"
            ));
            stand_ins.push(("http.metrics_listen", "127.0.0.1:0"));
        }
    }
    if let Ok(url) = raw.get_string("http.public_url") {
        match Url::parse(&url) {
            // A base with a host: download URIs extend its path.
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => {
                problems.push(format!(
                    "http.public_url: {url:?} is not an absolute http(s) URL"
                ));
                stand_ins.push(("http.public_url", "http://127.0.0.1/"));
            }
        }
    }
    stand_ins
}

impl fmt::Debug for Settings {
    // Secrets (database password, signing keys, S3 credentials) stay out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("data_dir", &self.data_dir)
            .field("listen", &self.http.listen)
            .field(
                "public_url",
                &self.http.public_url.as_ref().map(Url::as_str),
            )
            .field(
                "database",
                &self.database.url.as_ref().map(|_| "<configured>"),
            )
            .field("workers", &self.workers.count)
            .field("session_timeout_seconds", &self.sessions.timeout_seconds)
            .field("signing_keys", &self.signing.keys.len())
            .field("content_store", &self.storage.content.kind)
            .field("transfer_store", &self.storage.transfer.kind)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_load_and_validate() {
        let s = Settings::load_with_env(None, env(&[])).unwrap();
        assert_eq!(s.sessions.timeout_seconds, 300);
        assert_eq!(s.http.listen.to_string(), "127.0.0.1:8080");
        assert!(s.database.url.is_none());
        assert_eq!(
            s.public_url("127.0.0.1:8080".parse().unwrap())
                .unwrap()
                .as_str(),
            "http://127.0.0.1:8080/"
        );
    }

    #[test]
    fn env_overrides_and_database_url() {
        let s = Settings::load_with_env(
            None,
            env(&[
                ("DLS__SESSIONS__TIMEOUT_SECONDS", "7"),
                ("DLS__WORKERS__COUNT", "5"),
                ("DLS__DATA_DIR", "/tmp/x"),
                ("DATABASE_URL", "postgres://localhost/db"),
            ]),
        )
        .unwrap();
        assert_eq!(s.sessions.timeout_seconds, 7);
        assert_eq!(s.workers.count, 5);
        assert_eq!(s.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(s.database.url.as_deref(), Some("postgres://localhost/db"));
    }

    #[test]
    fn bad_values_are_all_reported() {
        let err = Settings::load_with_env(
            None,
            env(&[
                ("DLS__HTTP__LISTEN", "nowhere"),
                ("DLS__SESSIONS__TIMEOUT_SECONDS", "0"),
                ("DLS__STORAGE__TRANSFER__KIND", "ftp"),
                ("DLS__STORAGE__CONTENT__DIRECT_BASE", "/mnt/library"),
            ]),
        )
        .err()
        .unwrap();
        let text = err.to_string();
        assert!(text.contains("storage.content.direct_base"), "{text}");
        assert!(text.contains("http.listen"), "{text}");
        assert!(text.contains("sessions.timeout_seconds"), "{text}");
        assert!(text.contains("storage.transfer.kind"), "{text}");
    }

    #[test]
    fn s3_stores_from_env() {
        let s = Settings::load_with_env(
            None,
            env(&[
                ("DLS__STORAGE__TRANSFER__KIND", "s3"),
                ("DLS__STORAGE__TRANSFER__BUCKET", "dls-transfer"),
                ("DLS__STORAGE__TRANSFER__ENDPOINT", "http://minio:9000"),
                (
                    "DLS__STORAGE__TRANSFER__PUBLIC_ENDPOINT",
                    "https://s3.example.com",
                ),
                ("DLS__STORAGE__TRANSFER__ACCESS_KEY_ID", "ak"),
                ("DLS__STORAGE__TRANSFER__SECRET_ACCESS_KEY", "sk"),
                ("DLS__STORAGE__TRANSFER__PATH_STYLE", "true"),
                ("DLS__STORAGE__TRANSFER__ALLOW_HTTP", "true"),
            ]),
        )
        .unwrap();
        let t = &s.storage.transfer;
        assert_eq!(t.kind, "s3");
        assert_eq!(t.bucket.as_deref(), Some("dls-transfer"));
        assert_eq!(t.endpoint.as_deref(), Some("http://minio:9000"));
        assert_eq!(t.public_endpoint.as_deref(), Some("https://s3.example.com"));
        assert_eq!(t.secret_access_key.as_deref(), Some("sk"));
        assert!(t.path_style && t.allow_http);
        assert_eq!(s.storage.content.kind, "local");

        let err = Settings::load_with_env(
            None,
            env(&[
                ("DLS__STORAGE__CONTENT__KIND", "s3"),
                ("DLS__STORAGE__CONTENT__PUBLIC_ENDPOINT", "minio:9000"),
            ]),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("storage.content.bucket"), "{err}");
        assert!(err.contains("storage.content.public_endpoint"), "{err}");
    }

    #[test]
    fn shipped_config_files_load() {
        for file in ["config.example.toml", "deploy/download-sessions.toml"] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
            let s = Settings::load_with_env(Some(&path), env(&[]))
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            if file.starts_with("deploy") {
                // No secret in the repository: the key is generated into the database.
                assert!(s.signing.keys.is_empty());
                assert_eq!(s.http.listen.to_string(), "0.0.0.0:8080");
            }
        }
    }

    #[test]
    fn typed_values_are_parsed_once_and_bad_ones_reported_with_the_rest() {
        let key = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 32]);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dls.toml");
        std::fs::write(
            &file,
            format!(
                "[http]\npublic_url = \"https://dl.example.com/base//\"\n\
                 [signing]\nkeys = [{{ id = \"a\", secret = \"{key}\" }}]\n"
            ),
        )
        .unwrap();
        let s = Settings::load_with_env(Some(&file), env(&[])).unwrap();
        assert_eq!(s.signing.keys[0].secret.bytes(), &[7u8; 32]);
        assert!(!format!("{:?}", s.signing.keys[0].secret).contains(&key));
        let bound = "127.0.0.1:1".parse().unwrap();
        assert_eq!(
            s.public_url(bound).unwrap().as_str(),
            "https://dl.example.com/base"
        );

        std::fs::write(
            &file,
            "[signing]\nkeys = [{ id = \"a\", secret = \"not base64!\" }]\n",
        )
        .unwrap();
        let err = Settings::load_with_env(
            Some(&file),
            env(&[
                ("DLS__HTTP__LISTEN", "nowhere"),
                ("DLS__HTTP__PUBLIC_URL", "ftp://x"),
                ("DLS__SESSIONS__TIMEOUT_SECONDS", "0"),
            ]),
        )
        .err()
        .unwrap()
        .to_string();
        for key in [
            "http.listen",
            "http.public_url",
            "signing.keys",
            "sessions.timeout_seconds",
        ] {
            assert!(err.contains(key), "{key}: {err}");
        }
    }

    #[test]
    fn edge_settings_from_env() {
        let s = Settings::load_with_env(
            None,
            env(&[
                ("DLS__HTTP__TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.5"),
                ("DLS__HTTP__METRICS_LISTEN", "127.0.0.1:9090"),
                ("DLS__HTTP__MAX_CONNECTIONS", "100"),
            ]),
        )
        .unwrap();
        assert!(s.http.trusted_proxies.trusts("10.9.8.7".parse().unwrap()));
        assert!(s
            .http
            .trusted_proxies
            .trusts("192.168.1.5".parse().unwrap()));
        assert!(!s
            .http
            .trusted_proxies
            .trusts("192.168.1.6".parse().unwrap()));
        assert_eq!(
            s.http.metrics_listen,
            Some("127.0.0.1:9090".parse().unwrap())
        );
        assert_eq!(s.http.max_connections, 100);
        let defaults = Settings::load_with_env(None, env(&[])).unwrap();
        assert!(defaults.http.trusted_proxies.ranges().is_empty());
        assert!(defaults.http.metrics_listen.is_none());

        let err = Settings::load_with_env(
            None,
            env(&[
                ("DLS__HTTP__TRUSTED_PROXIES", "10.0.0.0/8,proxy.local"),
                ("DLS__HTTP__METRICS_LISTEN", "nowhere"),
                ("DLS__HTTP__BODY_TIMEOUT_SECONDS", "0"),
                ("DLS__HTTP__MAX_CONNECTIONS", "0"),
            ]),
        )
        .err()
        .unwrap()
        .to_string();
        for key in [
            "http.trusted_proxies",
            "proxy.local",
            "http.metrics_listen",
            "http.body_timeout_seconds",
            "http.max_connections",
        ] {
            assert!(err.contains(key), "{key}: {err}");
        }
    }

    #[test]
    fn wrong_type_is_an_error_not_a_panic() {
        let err = Settings::load_with_env(None, env(&[("DLS__WORKERS__COUNT", "many")]))
            .err()
            .unwrap();
        assert!(err.to_string().contains("workers.count"), "{err}");
    }
}
