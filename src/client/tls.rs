//! Whom the client trusts over TLS: the system roots, a CA file, one pinned
//! SHA-1 thumbprint (as vSphere prints it), or nobody checked at all.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use rustls::{
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::CryptoProvider,
    pki_types::{pem::PemObject, CertificateDer, ServerName, UnixTime},
    DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use sha1::{Digest, Sha1};

use super::failure::{Failure, Result};

/// A SHA-1 certificate thumbprint.
pub type Thumbprint = [u8; 20];

/// The trust the user chose on the command line.
#[derive(Clone, Debug)]
pub enum TrustMode {
    /// The operating system's trust store.
    System,
    /// Only the CA certificates in this PEM file.
    CaFile(PathBuf),
    /// Exactly the certificate with this SHA-1 thumbprint (no name check).
    Thumbprint(Thumbprint),
    /// No certificate check (`--insecure`).
    Insecure,
}

/// Parses `AB:CD:...` (vSphere's form) or 40 plain hex digits, any case.
pub fn parse_thumbprint(text: &str) -> Result<Thumbprint> {
    let hex_digits: String = text
        .trim()
        .chars()
        .filter(|c| *c != ':' && *c != ' ')
        .collect();
    let mut out = [0u8; 20];
    match hex::decode_to_slice(&hex_digits, &mut out) {
        Ok(()) => Ok(out),
        Err(_) => Err(Failure::usage(format!(
            "--thumbprint {text:?} is not a SHA-1 thumbprint: expected 20 bytes in hex, \
             e.g. 3A:9F:...:C2 as vSphere prints it"
        ))),
    }
}

/// `AB:CD:...`: the form vSphere prints and `--thumbprint` takes.
pub fn format_thumbprint(tp: &Thumbprint) -> String {
    tp.iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn thumbprint_of(der: &[u8]) -> Thumbprint {
    Sha1::digest(der).into()
}

/// Trust as configured, ready to build TLS configurations from, and the
/// thumbprint of the last certificate a server showed (for error messages).
#[derive(Clone, Debug)]
pub struct Trust {
    mode: TrustMode,
    roots: Option<Arc<RootCertStore>>,
    seen: Arc<Mutex<Option<Thumbprint>>>,
}

impl Trust {
    /// Loads the roots the mode needs (system store or CA file).
    pub fn new(mode: TrustMode) -> Result<Trust> {
        let roots = match &mode {
            TrustMode::System => Some(Arc::new(system_roots())),
            TrustMode::CaFile(path) => Some(Arc::new(ca_file_roots(path)?)),
            TrustMode::Thumbprint(_) | TrustMode::Insecure => None,
        };
        Ok(Trust {
            mode,
            roots,
            seen: Arc::new(Mutex::new(None)),
        })
    }

    pub fn mode(&self) -> &TrustMode {
        &self.mode
    }

    /// The thumbprint of the last server certificate checked, if any.
    pub fn last_seen(&self) -> Option<Thumbprint> {
        *self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A client configuration trusting what the user chose, plus `also`: the
    /// thumbprint a download endpoint advertises (it came over the trusted API
    /// connection, so vSphere clients pin it for that endpoint).
    pub fn client_config(&self, also: Option<Thumbprint>) -> Result<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let webpki = match &self.roots {
            Some(roots) => Some(
                rustls::client::WebPkiServerVerifier::builder_with_provider(
                    roots.clone(),
                    provider.clone(),
                )
                .build()
                .map_err(|e| Failure::usage(format!("no usable trust roots: {e}")))?,
            ),
            None => None,
        };
        let mut pins = Vec::new();
        if let TrustMode::Thumbprint(tp) = &self.mode {
            pins.push(*tp);
        }
        pins.extend(also);
        let verifier = Arc::new(Verifier {
            webpki,
            pins,
            insecure: matches!(self.mode, TrustMode::Insecure),
            provider: provider.clone(),
            seen: self.seen.clone(),
        });
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Failure::other(format!("TLS set-up failed: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        // Only HTTP/1.1 is built in; say so, or an h2-only server would pick h2.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    // Unreadable entries of the system store are skipped, as curl does; an
    // empty store simply trusts nobody, and the error message then says how
    // to pin the server.
    let found = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(found.certs);
    roots
}

fn ca_file_roots(path: &Path) -> Result<RootCertStore> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| Failure::usage(format!("cannot read --ca-file {}: {e}", path.display())))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| {
            Failure::usage(format!(
                "--ca-file {} is not a PEM certificate file: {e}",
                path.display()
            ))
        })?;
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(Failure::usage(format!(
            "--ca-file {} holds no usable CA certificate",
            path.display()
        )));
    }
    Ok(roots)
}

/// Accepts a pinned thumbprint or anything in `--insecure` mode, else defers
/// to the WebPKI verifier. Handshake signatures are always checked, so a
/// pinned certificate only works for whoever holds its key.
#[derive(Debug)]
struct Verifier {
    webpki: Option<Arc<rustls::client::WebPkiServerVerifier>>,
    pins: Vec<Thumbprint>,
    insecure: bool,
    provider: Arc<CryptoProvider>,
    seen: Arc<Mutex<Option<Thumbprint>>>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let tp = thumbprint_of(end_entity.as_ref());
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(tp);
        if self.insecure || self.pins.contains(&tp) {
            return Ok(ServerCertVerified::assertion());
        }
        match &self.webpki {
            Some(v) => {
                v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Whether an error (anywhere in its source chain) is a TLS certificate refusal.
pub fn is_certificate_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return matches!(
                r,
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
            );
        }
        // hyper-rustls hands rustls errors up inside io::Error.
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                if is_certificate_error(inner) {
                    return true;
                }
            }
        }
        cur = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprints_in_both_spellings() {
        let colon = "3a:9F:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:01:C2";
        let tp = parse_thumbprint(colon).unwrap();
        assert_eq!(tp[0], 0x3a);
        assert_eq!(tp[19], 0xc2);
        assert_eq!(
            parse_thumbprint("3A9F00112233445566778899AABBCCDDEEFF01C2").unwrap(),
            tp
        );
        assert_eq!(format_thumbprint(&tp), colon.to_uppercase());
        for bad in [
            "",
            "3A:9F",
            "zz:9F:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:01:C2",
        ] {
            let e = parse_thumbprint(bad).unwrap_err();
            assert_eq!(e.kind, super::super::failure::FailureKind::Usage);
        }
    }
}
