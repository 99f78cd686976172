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
}

fn invalid(id: &str, message: String, args: &[&str]) -> Error {
    Error::invalid_argument(
        &format!("com.vmware.content.library.item.updatesession.file.{id}"),
        message,
        args,
    )
}

impl FileAdd {
    /// `source_type` PUSH only for now: PULL needs `uploads.pull_allow`, which
    /// allows no host by default; NONE supplies no bytes at all.
    pub fn parse(
        name: &str,
        source_type: Option<SourceType>,
        size: Option<i64>,
        algorithm: Option<Option<ChecksumAlgorithm>>,
        checksum: Option<&str>,
    ) -> Result<FileAdd> {
        let name = FileName::parse(name)?;
        match source_type {
            Some(SourceType::Push) => {}
            Some(SourceType::Pull) => {
                return Err(invalid(
                    "pull_not_allowed",
                    "PULL sources are not allowed: the setting uploads.pull_allow names no host (the default).".into(),
                    &["uploads.pull_allow"],
                ))
            }
            Some(SourceType::None) | None => {
                return Err(invalid(
                    "invalid_source_type",
                    "source_type must be PUSH (the client sends the bytes to the file's upload_endpoint).".into(),
                    &[],
                ))
            }
        }
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
        Ok(FileAdd { name, size, sha256 })
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
        let ok = FileAdd::parse(
            "a.iso",
            Some(SourceType::Push),
            Some(4),
            Some(Some(ChecksumAlgorithm::Sha256)),
            Some(&SHA.to_uppercase()),
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
            let e = FileAdd::parse("a", source, size, alg, sum).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidArgument);
            assert!(e.messages[0].id.ends_with(id), "{e:?}");
        }
        let pull = FileAdd::parse("a", Some(SourceType::Pull), None, None, None).unwrap_err();
        assert!(pull.first_message().contains("uploads.pull_allow"));
        assert!(FileAdd::parse("a/b", Some(SourceType::Push), None, None, None).is_err());
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
