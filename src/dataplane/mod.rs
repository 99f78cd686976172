//! The data plane: signed download URIs and the serving of prepared bytes.

pub mod serve;
pub mod signing;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{
    domain::{models::FileState, models::TransferEndpoint, EndpointType, PrepareStatus},
    error::Result,
    storage,
};
pub use signing::Signer;

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
    pub public_url: String,
    pub cert: Option<CertInfo>,
    pub transfer: storage::Store,
}

impl Endpoints {
    /// `{public_url}/cls/data/{token}/{file_name}`; stable for the life of the session.
    pub fn https_uri(&self, session: Uuid, file: &str) -> String {
        let token = self.signer.sign(session, file);
        let mut url = url::Url::parse(&self.public_url).expect("validated public URL");
        url.path_segments_mut()
            .expect("http URL has a path")
            .pop_if_empty()
            .extend(["cls", "data", &token, file]);
        url.to_string()
    }

    /// The endpoint of a PREPARED file; None otherwise.
    pub async fn endpoint(
        &self,
        session: Uuid,
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
