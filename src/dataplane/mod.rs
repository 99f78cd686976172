//! The data plane: signed download URIs ([`Endpoints`], used by the core to
//! hand them out) and the serving of prepared bytes through [`DataPlane`].
//!
//! [`DataPlane`] is the download path's own narrow door to the database, apart
//! from the [`Service`](crate::service::Service): it is the hot path (every
//! request of every download, and a renewal every few seconds while bytes
//! flow), so it makes exactly one statement per check and nothing else. It is
//! also where an in-process cache of session validity can live, invalidated by
//! NOTIFY, without the API's operations having to know.

pub mod serve;
pub mod signing;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};

use crate::{
    domain::{
        models::FileState, models::TransferEndpoint, EndpointType, FileName, PrepareStatus,
        SessionId,
    },
    error::Result,
    storage::Bucket,
    store::{dataplane::Servable, Db},
};
pub use signing::Signer;

/// What the download routes may ask of the database, and the bytes' bucket.
#[derive(Clone)]
pub struct DataPlane {
    inner: Arc<DataPlaneInner>,
}

struct DataPlaneInner {
    db: Db,
    signer: Signer,
    transfer: Bucket,
    /// The session lease each request (and each renewal during a transfer) grants.
    lease: Duration,
}

impl DataPlane {
    pub fn new(db: Db, signer: Signer, transfer: Bucket, lease: Duration) -> DataPlane {
        DataPlane {
            inner: Arc::new(DataPlaneInner {
                db,
                signer,
                transfer,
                lease,
            }),
        }
    }

    /// The session a URI token was issued for, when it is genuine for `file`.
    pub fn verify(&self, token: &str, file: &FileName) -> Option<SessionId> {
        self.inner.signer.verify(token, file.as_str())
    }

    /// What the endpoint of `file` serves, if it is valid now; renews the
    /// session's lease (a download is activity). None for every reason a URI
    /// may be refused.
    pub async fn open(&self, session: SessionId, file: &FileName) -> Result<Option<Servable>> {
        Ok(self
            .inner
            .db
            .open_download(session, file, None, self.inner.lease)
            .await?)
    }

    /// Renewal during a long transfer: the same checks as [`DataPlane::open`],
    /// also requiring the bytes being streamed (`sha256`) to be the file's still.
    /// Returns the seconds the session is now guaranteed to live, or None once
    /// the URI has been revoked (cancel, fail, delete, expiry).
    pub async fn renew(
        &self,
        session: SessionId,
        file: &FileName,
        sha256: &str,
    ) -> Result<Option<f64>> {
        let servable = self
            .inner
            .db
            .open_download(session, file, Some(sha256), self.inner.lease)
            .await?;
        Ok(servable.map(|s| s.lease_remaining))
    }

    /// The session lease each request grants.
    pub fn lease(&self) -> Duration {
        self.inner.lease
    }

    /// The transfer store, where prepared bytes live.
    pub fn transfer(&self) -> &Bucket {
        &self.inner.transfer
    }
}

/// What a client needs to pin our TLS certificate.
#[derive(Clone, Debug)]
pub struct CertInfo {
    /// SHA-1 of the DER certificate, colon-separated upper-case hex.
    pub thumbprint: String,
    pub pem: String,
}

/// Builds the `download_endpoint` of prepared files.
#[derive(Clone, Debug)]
pub struct Endpoints {
    pub signer: Signer,
    /// Base of the URIs (`http.public_url`, or this instance), no trailing slash.
    pub public_url: url::Url,
    pub cert: Option<CertInfo>,
    pub transfer: Bucket,
}

impl Endpoints {
    /// `{public_url}/cls/data/{token}/{file_name}`; stable for the life of the session.
    pub fn https_uri(&self, session: SessionId, file: &str) -> String {
        let token = self.signer.sign(session, file);
        let mut url = self.public_url.clone();
        // Always Ok: an http(s) URL with a host (checked at load) has a path.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(["cls", "data", &token, file]);
        }
        url.to_string()
    }

    /// The endpoint of a PREPARED file; None otherwise.
    pub async fn endpoint(
        &self,
        session: SessionId,
        file: &FileState,
        session_expires: DateTime<Utc>,
    ) -> Result<Option<TransferEndpoint>> {
        if file.status != PrepareStatus::Prepared {
            return Ok(None);
        }
        let endpoint_type = file.endpoint_type.unwrap_or_default();
        let uri = match endpoint_type {
            EndpointType::Https => self.https_uri(session, &file.name),
            EndpointType::Direct => {
                let Some(key) = &file.artifact_key else {
                    return Ok(None);
                };
                let valid_for = (session_expires - Utc::now()).to_std().unwrap_or_default();
                self.transfer.direct_uri(key, valid_for).await?
            }
        };
        // Our certificate describes our own HTTPS endpoints only, never a
        // presigned URL into the object store (which has its own).
        let https = endpoint_type == EndpointType::Https && uri.starts_with("https:");
        Ok(Some(TransferEndpoint {
            uri,
            ssl_certificate_thumbprint: self
                .cert
                .as_ref()
                .filter(|_| https)
                .map(|c| c.thumbprint.clone()),
            ssl_certificate: self.cert.as_ref().filter(|_| https).map(|c| c.pem.clone()),
        }))
    }
}
