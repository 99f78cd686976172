//! TLS termination (rustls) and the certificate facts HTTPS endpoints
//! advertise: SHA-1 thumbprint in colon-separated upper-case hex, and the PEM.

use std::path::Path;

use anyhow::Context;
use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use sha1::{Digest, Sha1};

use crate::{config::HttpSettings, dataplane::CertInfo};

/// `AB:CD:...` SHA-1 of a DER certificate, as vSphere writes thumbprints.
pub fn thumbprint(der: &[u8]) -> String {
    Sha1::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn read_chain(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("cannot read certificates from {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} is not a PEM certificate file", path.display()))?;
    anyhow::ensure!(!chain.is_empty(), "{} holds no certificate", path.display());
    Ok(chain)
}

/// Thumbprint and PEM of the leaf certificate of a chain file.
pub fn cert_info(path: &Path) -> anyhow::Result<CertInfo> {
    let chain = read_chain(path)?;
    let leaf = &chain[0];
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, leaf.as_ref());
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    Ok(CertInfo {
        thumbprint: thumbprint(leaf.as_ref()),
        pem,
    })
}

/// Server config for `http.tls`, or None when TLS is not terminated here.
pub fn server_config(http: &HttpSettings) -> anyhow::Result<Option<rustls::ServerConfig>> {
    let Some(tls) = &http.tls else {
        return Ok(None);
    };
    let chain = read_chain(&tls.cert_file)?;
    let key = PrivateKeyDer::from_pem_file(&tls.key_file)
        .with_context(|| format!("cannot read a private key from {}", tls.key_file.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .context("the TLS certificate and key do not match")?;
    Ok(Some(config))
}

/// What endpoints advertise: our own certificate when we terminate TLS,
/// else the configured certificate of the proxy in front of us.
pub fn advertised(http: &HttpSettings) -> anyhow::Result<Option<CertInfo>> {
    if let Some(tls) = &http.tls {
        return cert_info(&tls.cert_file).map(Some);
    }
    http.advertised_certificate
        .as_deref()
        .map(cert_info)
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_format() {
        let t = thumbprint(b"abc");
        // SHA-1("abc") = a9993e36...
        assert!(t.starts_with("A9:99:3E:36"), "{t}");
        assert_eq!(t.len(), 20 * 3 - 1);
    }
}
