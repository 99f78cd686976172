//! What a client logs in with and then presents: user names, passwords and
//! opaque login tokens. Secrets never appear in `Debug` output.

use std::fmt;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, Result};

/// Longest user name, in bytes (login failures are counted in an index by name).
pub const MAX_USER_NAME: usize = 256;

/// Longest login token accepted; ours are 43 characters.
const MAX_LOGIN_TOKEN: usize = 512;

/// The answer to every failed login, whatever failed: no user-name oracle.
pub fn bad_credentials() -> Error {
    Error::new(
        ErrorKind::Unauthenticated,
        "com.vmware.vapi.endpoint.failedToLoginMaxAttemptsReached",
        "Authentication failed: wrong user name or password.",
        &[],
    )
}

/// A name a user can have: 1 to [`MAX_USER_NAME`] bytes, no NUL (which
/// PostgreSQL text cannot hold).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserName(String);

impl UserName {
    /// A name to log in with. No user has any other name (`user add` refuses
    /// it), so logging in with one is a failed login like any other.
    pub fn parse(raw: &str) -> Result<UserName> {
        UserName::new(raw).ok_or_else(bad_credentials)
    }

    /// A name to give a user; None when no user can have it.
    pub fn new(raw: &str) -> Option<UserName> {
        let possible = !raw.is_empty() && raw.len() <= MAX_USER_NAME && !raw.contains('\0');
        possible.then(|| UserName(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A password as the client sent it; any text is a candidate.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn new(raw: impl Into<String>) -> Password {
        Password(raw.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// An opaque bearer token naming a login. Only its SHA-256 is stored.
#[derive(Clone, PartialEq, Eq)]
pub struct LoginToken(String);

impl LoginToken {
    /// A token we could have issued is 1 to 512 characters; anything else is
    /// refused without a look at the database.
    pub fn parse(raw: &str) -> Result<LoginToken> {
        if raw.is_empty() || raw.len() > MAX_LOGIN_TOKEN {
            return Err(Error::unauthenticated());
        }
        Ok(LoginToken(raw.to_string()))
    }

    /// A fresh token: 256 random bits, URL-safe base64.
    pub fn generate() -> LoginToken {
        let raw: [u8; 32] = rand::random();
        LoginToken(URL_SAFE_NO_PAD.encode(raw))
    }

    /// What the database keeps of the token.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Debug for LoginToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LoginToken(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names() {
        assert!(UserName::parse("administrator@vsphere.local").is_ok());
        for bad in [String::new(), "a\0b".into(), "x".repeat(MAX_USER_NAME + 1)] {
            let e = UserName::parse(&bad).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Unauthenticated);
        }
    }

    #[test]
    fn login_tokens() {
        let t = LoginToken::generate();
        assert_eq!(LoginToken::parse(t.as_str()).unwrap(), t);
        assert_eq!(t.as_str().len(), 43);
        assert!(LoginToken::parse("").is_err());
        assert!(LoginToken::parse(&"t".repeat(513)).is_err());
        assert!(!format!("{t:?}").contains(t.as_str()));
        assert_ne!(t.hash(), LoginToken::generate().hash());
    }
}
