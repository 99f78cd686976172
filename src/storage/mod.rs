//! The two object stores (content, transfer) as [`Bucket`]s built from config,
//! where objects live in them, and the object operations the rest of the
//! service needs (probe, presign, verified durable writes, remove).

pub mod location;
pub mod stage;

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use object_store::{
    aws::{AmazonS3, AmazonS3Builder},
    local::LocalFileSystem,
    path::Path,
    signer::Signer,
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig,
};

use crate::config::{Settings, StoreSettings};

/// Prefix that readiness probes list (nothing is ever stored under it).
const PROBE_PREFIX: &str = "readyz-probe";

/// Content-bucket key of imported bytes with this SHA-256.
pub fn content_key(sha256: &str) -> String {
    format!("blobs/{sha256}")
}

/// A fresh transfer-bucket key for prepared bytes with this SHA-256: unique per
/// copy, so a collector deleting an older object of the same bytes (under the
/// key its row named) can never hit this one.
pub fn artifact_key(sha256: &str) -> String {
    format!("artifacts/{sha256}-{}", uuid::Uuid::new_v4().simple())
}

/// Prefix of the transfer-bucket keys that copies of earlier versions wrote
/// before they were verified (still swept for their leftovers).
pub const STAGING_PREFIX: &str = "staging";

/// Network behaviour of S3 clients. object_store's defaults (30 s per request,
/// 10 retries within 3 minutes) would cut a download streamed to a slow client
/// every 30 s and hold a request for minutes when the store is down.
fn client_options(cfg: &StoreSettings) -> ClientOptions {
    ClientOptions::new()
        .with_allow_http(cfg.allow_http)
        .with_connect_timeout(Duration::from_secs(5))
        // Bodies stream at the pace of their reader: no bound on the whole
        // request, only on each wait for the server (stall detection).
        .with_timeout_disabled()
        .with_read_timeout(Duration::from_secs(60))
}

fn retry_config() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: 4,
        retry_timeout: Duration::from_secs(15),
    }
}

/// An S3 client for `cfg` that talks to `endpoint` (None: AWS by region).
fn s3_builder(cfg: &StoreSettings, endpoint: Option<&str>) -> AmazonS3Builder {
    let bucket = cfg.bucket.clone().unwrap_or_default();
    // AWS_* variables (credentials from the environment, web identity, instance
    // metadata) apply unless config names the value.
    let mut b = AmazonS3Builder::from_env()
        .with_bucket_name(&bucket)
        .with_region(cfg.region.clone().unwrap_or_else(|| "us-east-1".into()))
        .with_virtual_hosted_style_request(!cfg.path_style)
        .with_allow_http(cfg.allow_http)
        .with_client_options(client_options(cfg))
        .with_retry(retry_config());
    if let Some(endpoint) = endpoint {
        b = b.with_endpoint(virtual_hosted_endpoint(endpoint, &bucket, cfg.path_style));
    }
    if let Some(key) = &cfg.access_key_id {
        b = b.with_access_key_id(key);
    }
    if let Some(secret) = &cfg.secret_access_key {
        b = b.with_secret_access_key(secret);
    }
    b
}

/// object_store expects a virtual-hosted endpoint to name the bucket already
/// (`https://bucket.s3.example.com`); config gives the service's address.
fn virtual_hosted_endpoint(endpoint: &str, bucket: &str, path_style: bool) -> String {
    let endpoint = endpoint.trim_end_matches('/');
    if path_style || bucket.is_empty() {
        return endpoint.to_string();
    }
    match url::Url::parse(endpoint) {
        Ok(mut url) => match url.host_str() {
            Some(host) if !host.starts_with(&format!("{bucket}.")) => {
                let host = format!("{bucket}.{host}");
                if url.set_host(Some(&host)).is_ok() {
                    url.as_str().trim_end_matches('/').to_string()
                } else {
                    endpoint.to_string()
                }
            }
            _ => endpoint.to_string(),
        },
        Err(_) => endpoint.to_string(),
    }
}

/// Longest validity S3 accepts for a presigned URL.
const MAX_PRESIGN: Duration = Duration::from_secs(7 * 24 * 3600);

/// One configured object store: the generic handle plus backend specifics.
#[derive(Clone, Debug)]
pub struct Bucket {
    pub inner: Arc<dyn ObjectStore>,
    /// Root directory when the store is a local directory (served with large reads).
    pub local_root: Option<PathBuf>,
    /// Signs DIRECT URLs: the S3 client itself, or one for `public_endpoint`.
    presigner: Option<Arc<AmazonS3>>,
}

/// Both object stores of an instance.
#[derive(Clone, Debug)]
pub struct Buckets {
    pub content: Bucket,
    pub transfer: Bucket,
}

impl Buckets {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Buckets> {
        Ok(Buckets {
            content: Bucket::build(settings, &settings.storage.content)?,
            transfer: Bucket::build(settings, &settings.storage.transfer)?,
        })
    }
}

impl Bucket {
    fn build(settings: &Settings, cfg: &StoreSettings) -> anyhow::Result<Bucket> {
        match cfg.kind.as_str() {
            "local" => {
                let root = settings.under_data_dir(cfg.path.as_deref().unwrap_or("".as_ref()));
                std::fs::create_dir_all(&root)
                    .with_context(|| format!("cannot create store directory {}", root.display()))?;
                let root = root.canonicalize()?;
                let fs = LocalFileSystem::new_with_prefix(&root)?.with_automatic_cleanup(true);
                Ok(Bucket {
                    inner: Arc::new(fs),
                    local_root: Some(root),
                    presigner: None,
                })
            }
            _ => {
                let s3 = Arc::new(s3_builder(cfg, cfg.endpoint.as_deref()).build()?);
                // Presigned URLs carry the host they were signed for: sign with
                // the address clients use when it differs from the service's.
                let presigner = match &cfg.public_endpoint {
                    Some(public) => Arc::new(s3_builder(cfg, Some(public)).build()?),
                    None => s3.clone(),
                };
                Ok(Bucket {
                    inner: s3.clone(),
                    local_root: None,
                    presigner: Some(presigner),
                })
            }
        }
    }

    /// Whether the store answers: lists a prefix that need not exist. Unlike a
    /// HEAD of a missing key (404 either way), this fails for a missing bucket.
    pub async fn probe(&self) -> object_store::Result<()> {
        self.inner
            .list_with_delimiter(Some(&Path::from(PROBE_PREFIX)))
            .await
            .map(|_| ())
    }

    /// The filesystem path of `key` in a local store.
    pub fn local_path(&self, key: &str) -> Option<PathBuf> {
        let root = self.local_root.as_ref()?;
        let mut p = root.clone();
        for part in Path::from(key).parts() {
            p.push(part.as_ref());
        }
        Some(p)
    }

    /// A URI that reads `key` without this service: presigned for S3 (valid
    /// for `valid_for`, at most S3's limit of 7 days), `file://` for a local directory.
    pub async fn direct_uri(&self, key: &str, valid_for: Duration) -> object_store::Result<String> {
        if let Some(s3) = &self.presigner {
            let url = s3
                .signed_url(
                    object_store::signer::Method::GET,
                    &Path::from(key),
                    valid_for.clamp(Duration::from_secs(1), MAX_PRESIGN),
                )
                .await?;
            return Ok(url.to_string());
        }
        let path = self.local_path(key).unwrap_or_default();
        Ok(url::Url::from_file_path(&path)
            .map(|u| u.to_string())
            .unwrap_or_else(|_| format!("file://{}", path.display())))
    }
}

impl Bucket {
    /// Whether `key` exists with `size` bytes. An unreachable store answers
    /// false (logged): copying again is the safe answer, and the copy reports
    /// a real outage.
    pub async fn has_object(&self, key: &str, size: i64) -> bool {
        match self.inner.head(&Path::from(key)).await {
            Ok(meta) => i64::try_from(meta.size) == Ok(size),
            Err(object_store::Error::NotFound { .. }) => false,
            Err(e) => {
                tracing::warn!(error = %e, key, "cannot check an object");
                false
            }
        }
    }

    /// Deletes the temporary files of local writes ([`stage`]) older than a
    /// day; returns how many. Nothing to do on S3, whose incomplete multipart
    /// uploads are invisible: a bucket lifecycle rule aborts them.
    pub async fn sweep_temp_files(&self) -> u64 {
        let Some(root) = self.local_root.clone() else {
            return 0;
        };
        tokio::task::spawn_blocking(move || {
            stage::sweep_local_temp_files(&root, stage::TEMP_MAX_AGE)
        })
        .await
        .unwrap_or(0)
    }

    /// Deletes `key` through the store (a local store also drops the
    /// directories it empties); an object already gone counts as deleted.
    pub async fn delete(&self, key: &str) -> object_store::Result<()> {
        match self.inner.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Removes a staging object when it exists; a failure is only logged (the
    /// maintenance sweep of old staging objects catches what is left).
    pub async fn remove(&self, key: &str) {
        let removed = match self.local_path(key) {
            // A plain unlink: the staging directory stays for the next copy.
            Some(path) => match tokio::fs::remove_file(&path).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(anyhow::Error::new(e)),
                _ => Ok(()),
            },
            None => self.delete(key).await.map_err(anyhow::Error::new),
        };
        if let Err(e) = removed {
            tracing::warn!(error = %e, key, "cannot delete a staging object");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_hosted_endpoints_name_the_bucket() {
        for (endpoint, path_style, expected) in [
            ("https://s3.example.com/", false, "https://b.s3.example.com"),
            (
                "https://b.s3.example.com",
                false,
                "https://b.s3.example.com",
            ),
            ("http://minio:9000", true, "http://minio:9000"),
            ("http://minio:9000", false, "http://b.minio:9000"),
        ] {
            assert_eq!(
                virtual_hosted_endpoint(endpoint, "b", path_style),
                expected,
                "{endpoint} path_style={path_style}"
            );
        }
    }
}
