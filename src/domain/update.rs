//! Update sessions (uploads): their states, the file statuses, the add spec as
//! the core sees it, and the rules that decide an upload's outcome. Pure: no I/O.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{models::ChecksumAlgorithm, FileName, UpdateSessionId};
use crate::error::{Error, Result};

/// State of an update session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UpdateState {
    Active,
    Done,
    Error,
    Canceled,
}

impl UpdateState {
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateState::Active => "ACTIVE",
            UpdateState::Done => "DONE",
            UpdateState::Error => "ERROR",
            UpdateState::Canceled => "CANCELED",
        }
    }

    /// keep_alive, complete, cancel, fail and the file operations need an ACTIVE session.
    pub fn require_active(self, op: &str, session: UpdateSessionId) -> Result<()> {
        if self == UpdateState::Active {
            return Ok(());
        }
        let sid = session.to_string();
        Err(Error::not_allowed(
            "com.vmware.content.library.item.update_session.not_active",
            format!(
                "Operation {op} is not allowed: update session {sid} is {}.",
                self.as_str()
            ),
            &[op, &sid, self.as_str()],
        ))
    }

    /// delete is refused while the session is ACTIVE (cancel, fail or complete it first).
    pub fn require_ended(self, session: UpdateSessionId) -> Result<()> {
        if self != UpdateState::Active {
            return Ok(());
        }
        let sid = session.to_string();
        Err(Error::not_allowed(
            "com.vmware.content.library.item.update_session.delete_active",
            format!(
                "Update session {sid} is ACTIVE: complete, cancel or fail it before deleting it."
            ),
            &[&sid],
        ))
    }
}

/// Status of one file of an update session (`updatesession.file.info.status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TransferStatus {
    WaitingForTransfer,
    Transferring,
    Ready,
    Validating,
    Error,
}

/// Where a file's bytes come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SourceType {
    None,
    Push,
    Pull,
}

/// A SHA-256 digest, lower-case hex.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sha256Hex(String);

impl Sha256Hex {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What `file.add` asks for, parsed.
#[derive(Clone, Debug)]
pub struct FileAdd {
    pub name: FileName,
    pub size: Option<i64>,
    pub sha256: Option<Sha256Hex>,
    /// PULL: where the service fetches the bytes.
    pub pull: Option<PullSource>,
}

/// The source of a PULL file: an http(s) URI on an allowed host, and the
/// SHA-1 thumbprint its certificate must have, when given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullSource {
    pub uri: String,
    /// Upper-case hex, colon-separated (as vSphere prints it).
    pub thumbprint: Option<String>,
}

/// The hosts PULL may fetch from (`uploads.pull_allow`): `host`, `host:port`
/// or `*.domain`, without case. Empty: none.
#[derive(Clone, Debug, Default)]
pub struct PullPolicy(Vec<String>);

impl PullPolicy {
    pub fn new(patterns: &[String]) -> PullPolicy {
        PullPolicy(
            patterns
                .iter()
                .map(|p| p.trim().to_ascii_lowercase())
                .collect(),
        )
    }

    pub fn allows(&self, url: &url::Url) -> bool {
        let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
            return false;
        };
        let with_port = format!("{host}:{}", url.port_or_known_default().unwrap_or(0));
        self.0.iter().any(|p| match p.strip_prefix("*.") {
            Some(domain) => host.ends_with(&format!(".{domain}")),
            None if p.contains(':') && !p.starts_with('[')
                || p.starts_with('[') && p.contains("]:") =>
            {
                *p == with_port
            }
            None => *p == host,
        })
    }

    /// Checks a PULL source against the policy.
    fn source(&self, uri: &str, thumbprint: Option<&str>) -> Result<PullSource> {
        if self.0.is_empty() {
            return Err(invalid(
                "pull_not_allowed",
                "PULL sources are not allowed: the setting uploads.pull_allow names no host (the default).".into(),
                &["uploads.pull_allow"],
            ));
        }
        let url = url::Url::parse(uri)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| {
                invalid(
                    "invalid_source_uri",
                    format!("source_endpoint.uri {uri:?} is not an http or https URI."),
                    &[uri],
                )
            })?;
        if !self.allows(&url) {
            let host = url.host_str().unwrap_or_default().to_string();
            return Err(invalid(
                "pull_host_not_allowed",
                format!("PULL from {host} is not allowed: the host is not in the setting uploads.pull_allow."),
                &[&host, "uploads.pull_allow"],
            ));
        }
        let thumbprint = thumbprint
            .map(|t| {
                let hex: String = t.chars().filter(|c| *c != ':').collect();
                if hex.len() == 40 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    let upper = hex.to_ascii_uppercase();
                    Ok(upper
                        .as_bytes()
                        .chunks(2)
                        .map(|c| std::str::from_utf8(c).unwrap_or_default())
                        .collect::<Vec<_>>()
                        .join(":"))
                } else {
                    Err(invalid(
                        "invalid_thumbprint",
                        format!("ssl_certificate_thumbprint {t:?} is not a SHA-1 thumbprint (20 bytes in hex)."),
                        &[t],
                    ))
                }
            })
            .transpose()?;
        Ok(PullSource {
            uri: url.to_string(),
            thumbprint,
        })
    }
}

fn invalid(id: &str, message: String, args: &[&str]) -> Error {
    Error::invalid_argument(
        &format!("com.vmware.content.library.item.updatesession.file.{id}"),
        message,
        args,
    )
}

impl FileAdd {
    /// `source_type` PUSH, or PULL from a host `policy` allows (none by
    /// default); NONE supplies no bytes at all.
    pub fn parse(
        name: &str,
        source_type: Option<SourceType>,
        source_endpoint: Option<(Option<&str>, Option<&str>)>,
        size: Option<i64>,
        algorithm: Option<Option<ChecksumAlgorithm>>,
        checksum: Option<&str>,
        policy: &PullPolicy,
    ) -> Result<FileAdd> {
        let name = FileName::parse(name)?;
        let pull = match source_type {
            Some(SourceType::Push) => None,
            Some(SourceType::Pull) => {
                if policy.0.is_empty() {
                    return Err(policy.source("", None).unwrap_err());
                }
                let Some((Some(uri), thumbprint)) = source_endpoint else {
                    return Err(invalid(
                        "missing_source_endpoint",
                        "A PULL file needs a source_endpoint with a uri.".into(),
                        &[],
                    ));
                };
                Some(policy.source(uri, thumbprint)?)
            }
            Some(SourceType::None) | None => {
                return Err(invalid(
                    "invalid_source_type",
                    "source_type must be PUSH (the client sends the bytes to the file's upload_endpoint) or PULL.".into(),
                    &[],
                ))
            }
        };
        if let Some(s) = size {
            if s < 0 {
                let v = s.to_string();
                return Err(invalid(
                    "invalid_size",
                    format!("size {s} is negative."),
                    &[&v],
                ));
            }
        }
        let sha256 = match (algorithm, checksum) {
            (_, None) => None,
            (Some(Some(ChecksumAlgorithm::Sha256)), Some(c)) => {
                let c = c.trim().to_ascii_lowercase();
                if c.len() != 64 || !c.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(invalid(
                        "invalid_checksum",
                        format!("checksum {c:?} is not a SHA256 digest (64 hex digits)."),
                        &[&c],
                    ));
                }
                Some(Sha256Hex(c))
            }
            (_, Some(_)) => {
                return Err(invalid(
                    "unsupported_checksum_algorithm",
                    "checksum_info.algorithm must be SHA256 (an absent algorithm means SHA1)."
                        .into(),
                    &[],
                ))
            }
        };
        Ok(FileAdd {
            name,
            size,
            sha256,
            pull,
        })
    }
}

/// What an upload received, checked against what `add` declared.
pub fn check_received(
    add_size: Option<i64>,
    add_sha256: Option<&str>,
    size: i64,
    sha256: &str,
) -> std::result::Result<(), String> {
    if let Some(expected) = add_size {
        if expected != size {
            return Err(format!(
                "The upload has {size} bytes; the file was added with size {expected}."
            ));
        }
    }
    if let Some(expected) = add_sha256 {
        if expected != sha256 {
            return Err(format!(
                "The upload's SHA256 is {sha256}; the file was added with checksum {expected}."
            ));
        }
    }
    Ok(())
}

/// The error message of a file whose upload sent more bytes than declared.
pub fn too_many_bytes(declared: i64) -> String {
    format!("The upload sent more than the {declared} bytes the file was added with.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn add_specs() {
        let none = PullPolicy::default();
        let ok = FileAdd::parse(
            "a.iso",
            Some(SourceType::Push),
            None,
            Some(4),
            Some(Some(ChecksumAlgorithm::Sha256)),
            Some(&SHA.to_uppercase()),
            &none,
        )
        .unwrap();
        assert_eq!(ok.sha256.unwrap().as_str(), SHA);
        for (source, size, alg, sum, id) in [
            (Some(SourceType::Pull), None, None, None, "pull_not_allowed"),
            (None, None, None, None, "invalid_source_type"),
            (Some(SourceType::Push), Some(-1), None, None, "invalid_size"),
            (
                Some(SourceType::Push),
                None,
                Some(Some(ChecksumAlgorithm::Sha256)),
                Some("xyz"),
                "invalid_checksum",
            ),
            (
                Some(SourceType::Push),
                None,
                Some(None),
                Some(SHA),
                "unsupported_checksum_algorithm",
            ),
            (
                Some(SourceType::Push),
                None,
                Some(Some(ChecksumAlgorithm::Md5)),
                Some(SHA),
                "unsupported_checksum_algorithm",
            ),
        ] {
            let e = FileAdd::parse("a", source, None, size, alg, sum, &none).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidArgument);
            assert!(e.messages[0].id.ends_with(id), "{e:?}");
        }
        let pull =
            FileAdd::parse("a", Some(SourceType::Pull), None, None, None, None, &none).unwrap_err();
        assert!(pull.first_message().contains("uploads.pull_allow"));
        assert!(
            FileAdd::parse("a/b", Some(SourceType::Push), None, None, None, None, &none).is_err()
        );
    }

    #[test]
    fn pull_sources_need_an_allowed_host() {
        let policy = PullPolicy::new(&[
            "Files.example.com".into(),
            "*.corp".into(),
            "10.0.0.5:8080".into(),
        ]);
        let add = |uri: &str, tp: Option<&str>| {
            FileAdd::parse(
                "a",
                Some(SourceType::Pull),
                Some((Some(uri), tp)),
                None,
                None,
                None,
                &policy,
            )
        };
        assert_eq!(
            add("https://files.example.com/a.iso", None)
                .unwrap()
                .pull
                .unwrap()
                .uri,
            "https://files.example.com/a.iso"
        );
        assert!(add("http://mirror.corp/x", None).is_ok());
        assert!(add("http://10.0.0.5:8080/x", None).is_ok());
        for (uri, id) in [
            ("http://10.0.0.5/x", "pull_host_not_allowed"),
            ("http://corp/x", "pull_host_not_allowed"),
            ("http://evil.com/files.example.com", "pull_host_not_allowed"),
            ("ftp://files.example.com/x", "invalid_source_uri"),
            ("not a uri", "invalid_source_uri"),
        ] {
            let e = add(uri, None).unwrap_err();
            assert!(e.messages[0].id.ends_with(id), "{uri}: {e:?}");
        }
        let tp = add(
            "https://files.example.com/a",
            Some("ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01"),
        )
        .unwrap();
        assert_eq!(
            tp.pull.unwrap().thumbprint.unwrap(),
            "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01"
        );
        assert!(add("https://files.example.com/a", Some("zz")).is_err());
        let e = FileAdd::parse("a", Some(SourceType::Pull), None, None, None, None, &policy)
            .unwrap_err();
        assert!(e.messages[0].id.ends_with("missing_source_endpoint"));
    }

    #[test]
    fn received_bytes_must_match_the_spec() {
        assert!(check_received(None, None, 3, SHA).is_ok());
        assert!(check_received(Some(3), Some(SHA), 3, SHA).is_ok());
        assert!(check_received(Some(4), None, 3, SHA)
            .unwrap_err()
            .contains("size 4"));
        assert!(check_received(None, Some(&"0".repeat(64)), 3, SHA).is_err());
    }

    #[test]
    fn states() {
        let id = UpdateSessionId::new_random();
        assert!(UpdateState::Active.require_active("complete", id).is_ok());
        assert_eq!(
            UpdateState::Done
                .require_active("complete", id)
                .unwrap_err()
                .kind,
            ErrorKind::NotAllowedInCurrentState
        );
        assert_eq!(
            UpdateState::Active.require_ended(id).unwrap_err().kind,
            ErrorKind::NotAllowedInCurrentState
        );
        assert!(UpdateState::Canceled.require_ended(id).is_ok());
    }
}
