//! The data plane: signed download URIs ([`Endpoints`], used by the core to
//! hand them out) and the serving of prepared bytes through [`DataPlane`].
//!
//! [`DataPlane`] is the download path's own narrow door to session validity,
//! apart from the [`Service`](crate::service::Service): it is the hot path
//! (every request of every download, and a renewal every few seconds while
//! bytes flow), so it answers from the instance's validity cache
//! ([`Validity`]: trusted for at most a second, invalidated by NOTIFY) and
//! writes a lease renewal only when one is due.

pub mod serve;
pub mod signing;
pub mod upload;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};

use crate::{
    domain::{
        models::FileState, models::TransferEndpoint, EndpointType, FileName, PrepareStatus,
        SessionId, SessionState, UpdateSessionId,
    },
    error::Result,
    storage::Bucket,
    store::dataplane::Servable,
    validity::{SessionEntry, Validity},
};
pub use serve::budget::ReadAhead;
pub use signing::Signer;

/// What the download routes may ask of the database, and the bytes' bucket.
#[derive(Clone)]
pub struct DataPlane {
    inner: Arc<DataPlaneInner>,
}

struct DataPlaneInner {
    validity: Validity,
    signer: Signer,
    transfer: Bucket,
    /// The session lease each request (and each renewal during a transfer) grants.
    lease: Duration,
    /// The read-ahead budget of all downloads (`http.download_buffer_bytes`).
    read_ahead: ReadAhead,
}

impl DataPlane {
    pub fn new(
        validity: Validity,
        signer: Signer,
        transfer: Bucket,
        lease: Duration,
        read_ahead: ReadAhead,
    ) -> DataPlane {
        DataPlane {
            inner: Arc::new(DataPlaneInner {
                validity,
                signer,
                transfer,
                lease,
                read_ahead,
            }),
        }
    }

    /// The read-ahead budget downloads from a local transfer store share.
    pub fn read_ahead(&self) -> &ReadAhead {
        &self.inner.read_ahead
    }

    /// The session a URI token was issued for, when it is genuine for `file`.
    pub fn verify(&self, token: &str, file: &FileName) -> Option<SessionId> {
        self.inner.signer.verify(token, file.as_str())
    }

    /// What the endpoint of `file` serves, if it is valid now; renews the
    /// session's lease when due (a download is activity). None for every
    /// reason a URI may be refused.
    pub async fn open(&self, session: SessionId, file: &FileName) -> Result<Option<Servable>> {
        self.check(session, file, None).await
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
        let servable = self.check(session, file, Some(sha256)).await?;
        Ok(servable.map(|s| s.lease_remaining))
    }

    /// The decision: the session is ACTIVE and unexpired, the file PREPARED
    /// with an HTTPS endpoint (a NULL type counts as HTTPS, as where the URI is
    /// built) and a staged object, which is still `artifact` when given.
    async fn check(
        &self,
        session: SessionId,
        file: &FileName,
        artifact: Option<&str>,
    ) -> Result<Option<Servable>> {
        let validity = &self.inner.validity;
        let Some(entry) = validity.session(session).await? else {
            return Ok(None);
        };
        if servable(&entry, file, artifact).is_none() {
            return Ok(None);
        }
        let entry = validity.renew(entry).await;
        Ok(servable(&entry, file, artifact))
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

/// What `file` of a cached session serves, when its URI is valid.
fn servable(entry: &SessionEntry, file: &FileName, artifact: Option<&str>) -> Option<Servable> {
    if entry.row.state != SessionState::Active {
        return None;
    }
    let f = entry.file(file)?;
    let https = f.state.endpoint_type.unwrap_or_default() == EndpointType::Https;
    if f.state.status != PrepareStatus::Prepared || !https {
        return None;
    }
    let staged = f.staged.as_ref()?;
    if artifact.is_some_and(|sha| sha != staged.sha256) {
        return None;
    }
    Some(Servable {
        transfer_key: staged.transfer_key.clone(),
        size: staged.size,
        sha256: staged.sha256.clone(),
        staged_at: staged.staged_at,
        lease_remaining: entry.remaining().as_secs_f64(),
    })
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
    /// Longest life of a DIRECT presigned URL (`storage.direct_url_seconds`).
    pub direct_url_for: std::time::Duration,
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

    /// `{public_url}/cls/upload/{token}/{file_name}`: where a PUSH file of an
    /// update session is sent. The token signs `upload/{file}` (a string no
    /// download file name can be), so no download URI works as an upload URI.
    pub fn upload_endpoint(&self, session: UpdateSessionId, file: &str) -> TransferEndpoint {
        let token = self
            .signer
            .sign(SessionId(session.0), &format!("upload/{file}"));
        let mut url = self.public_url.clone();
        // Always Ok: an http(s) URL with a host (checked at load) has a path.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(["cls", "upload", &token, file]);
        }
        let uri = url.to_string();
        let https = uri.starts_with("https:");
        TransferEndpoint {
            uri,
            ssl_certificate_thumbprint: self
                .cert
                .as_ref()
                .filter(|_| https)
                .map(|c| c.thumbprint.clone()),
            ssl_certificate: self.cert.as_ref().filter(|_| https).map(|c| c.pem.clone()),
        }
    }

    /// The update session an upload token was issued for, when it is genuine for `file`.
    pub fn verify_upload(&self, token: &str, file: &FileName) -> Option<UpdateSessionId> {
        self.signer
            .verify(token, &format!("upload/{file}"))
            .map(|s| UpdateSessionId(s.0))
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
                // A presigned URL cannot be revoked: it lives until the session
                // expires or `direct_url_for` passes, whichever is first, and
                // every `get` signs a fresh one.
                let valid_for = (session_expires - Utc::now())
                    .to_std()
                    .unwrap_or_default()
                    .min(self.direct_url_for);
                // None: no DIRECT location (prepare refuses DIRECT then; a file
                // asked for before the setting went away shows no endpoint).
                match self.transfer.direct_uri(key, valid_for).await? {
                    Some(uri) => uri,
                    None => return Ok(None),
                }
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
