//! Construction of the two object stores (content, transfer) from config, and
//! what the rest of the service needs to know about each backend.

use std::{path::PathBuf, sync::Arc, time::Duration};

use object_store::{
    aws::{AmazonS3, AmazonS3Builder},
    local::LocalFileSystem,
    path::Path,
    signer::Signer,
    ObjectStore,
};

use crate::config::{Settings, StoreSettings};

/// One configured store: the generic handle plus backend specifics.
#[derive(Clone, Debug)]
pub struct Store {
    pub inner: Arc<dyn ObjectStore>,
    /// Root directory when the store is a local directory (served with large reads).
    pub local_root: Option<PathBuf>,
    /// The S3 client when the store is S3-like (presigned DIRECT URLs).
    pub s3: Option<Arc<AmazonS3>>,
}

/// Both stores of an instance.
#[derive(Clone, Debug)]
pub struct Stores {
    pub content: Store,
    pub transfer: Store,
}

impl Stores {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Stores> {
        Ok(Stores {
            content: Store::build(settings, &settings.storage.content)?,
            transfer: Store::build(settings, &settings.storage.transfer)?,
        })
    }
}

impl Store {
    fn build(settings: &Settings, cfg: &StoreSettings) -> anyhow::Result<Store> {
        match cfg.kind.as_str() {
            "local" => {
                let root = settings.under_data_dir(cfg.path.as_deref().unwrap_or("".as_ref()));
                std::fs::create_dir_all(&root).map_err(|e| {
                    anyhow::anyhow!("cannot create store directory {}: {e}", root.display())
                })?;
                let root = root.canonicalize()?;
                let fs = LocalFileSystem::new_with_prefix(&root)?.with_automatic_cleanup(true);
                Ok(Store {
                    inner: Arc::new(fs),
                    local_root: Some(root),
                    s3: None,
                })
            }
            _ => {
                let mut b = AmazonS3Builder::from_env()
                    .with_bucket_name(cfg.bucket.clone().unwrap_or_default())
                    .with_region(cfg.region.clone().unwrap_or_else(|| "us-east-1".into()))
                    .with_virtual_hosted_style_request(!cfg.path_style)
                    .with_allow_http(cfg.allow_http);
                if let Some(endpoint) = &cfg.endpoint {
                    b = b.with_endpoint(endpoint);
                }
                if let Some(key) = &cfg.access_key_id {
                    b = b.with_access_key_id(key);
                }
                if let Some(secret) = &cfg.secret_access_key {
                    b = b.with_secret_access_key(secret);
                }
                let s3 = Arc::new(b.build()?);
                Ok(Store {
                    inner: s3.clone(),
                    local_root: None,
                    s3: Some(s3),
                })
            }
        }
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
    /// for `valid_for`), `file://` for a local directory.
    pub async fn direct_uri(&self, key: &str, valid_for: Duration) -> object_store::Result<String> {
        if let Some(s3) = &self.s3 {
            let url = s3
                .signed_url(
                    object_store::signer::Method::GET,
                    &Path::from(key),
                    valid_for.max(Duration::from_secs(1)),
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
