//! How a client command fails: one kind per documented exit code, and a
//! message written for the person at the terminal (what happened, what to do).

use std::fmt;

/// What went wrong, as far as a script cares: each kind has its own exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// Anything else: the server refused or failed in a way not listed below.
    Other,
    /// Bad arguments or unusable local input (also what clap exits with).
    Usage,
    /// Login refused, the login expired, or the user lacks a privilege.
    Authentication,
    /// The library, item or file does not exist (or is not visible to the user).
    NotFound,
    /// The bytes received do not hash to the checksum the server announced.
    ChecksumMismatch,
    /// The server could not be reached, or stayed unavailable through the retries.
    Unreachable,
    /// The server's TLS certificate is not trusted with the given options.
    UntrustedCertificate,
    /// SIGINT or SIGTERM: the session was deleted, partial files kept.
    Interrupted,
}

impl FailureKind {
    /// The process exit code (documented in the README; never change one).
    pub fn exit_code(self) -> u8 {
        match self {
            FailureKind::Other => 1,
            FailureKind::Usage => 2,
            FailureKind::Authentication => 3,
            FailureKind::NotFound => 4,
            FailureKind::ChecksumMismatch => 5,
            FailureKind::Unreachable => 6,
            FailureKind::UntrustedCertificate => 7,
            FailureKind::Interrupted => 130,
        }
    }

    /// Stable name for `--json` output.
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::Other => "other",
            FailureKind::Usage => "usage",
            FailureKind::Authentication => "authentication",
            FailureKind::NotFound => "not_found",
            FailureKind::ChecksumMismatch => "checksum_mismatch",
            FailureKind::Unreachable => "unreachable",
            FailureKind::UntrustedCertificate => "untrusted_certificate",
            FailureKind::Interrupted => "interrupted",
        }
    }
}

/// A failed client command: its kind and a message that says what to do.
#[derive(Debug, Clone)]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
}

impl Failure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
        }
    }

    pub fn other(message: impl Into<String>) -> Failure {
        Failure::new(FailureKind::Other, message)
    }

    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::new(FailureKind::Usage, message)
    }

    pub fn not_found(message: impl Into<String>) -> Failure {
        Failure::new(FailureKind::NotFound, message)
    }

    /// A local file operation that failed (the path and the OS error).
    pub fn local(what: &str, path: &std::path::Path, e: std::io::Error) -> Failure {
        Failure::other(format!("cannot {what} {}: {e}", path.display()))
    }

    /// The same failure with `prefix: ` in front of its message.
    pub fn context(self, prefix: impl fmt::Display) -> Failure {
        Failure {
            kind: self.kind,
            message: format!("{prefix}: {}", self.message),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

pub type Result<T, E = Failure> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_distinct() {
        let kinds = [
            FailureKind::Other,
            FailureKind::Usage,
            FailureKind::Authentication,
            FailureKind::NotFound,
            FailureKind::ChecksumMismatch,
            FailureKind::Unreachable,
            FailureKind::UntrustedCertificate,
            FailureKind::Interrupted,
        ];
        let mut codes: Vec<u8> = kinds.iter().map(|k| k.exit_code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), kinds.len());
        assert!(!codes.contains(&0));
    }
}
