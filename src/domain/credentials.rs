//! What a client logs in with and then presents: user names, passwords and
//! opaque login tokens. Secrets never appear in `Debug` output.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr},
};

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

/// Where a login comes from. Throttling keys failures by user name and this
/// address; an IPv6 client by its /64, the block one subscriber usually holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(IpAddr);

impl ClientAddr {
    pub fn new(ip: IpAddr) -> ClientAddr {
        ClientAddr(ip.to_canonical())
    }

    /// A request whose peer is not known (not over TCP).
    pub fn unknown() -> ClientAddr {
        ClientAddr(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    /// The text throttling counts under.
    pub fn throttle_key(&self) -> String {
        match self.0 {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        }
    }
}

impl fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
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
    fn client_addresses_key_ipv6_by_its_64() {
        let a = |s: &str| ClientAddr::new(s.parse().unwrap()).throttle_key();
        assert_eq!(a("192.0.2.7"), "192.0.2.7");
        assert_eq!(a("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(a("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(a("2001:db8:1:2:bbbb::9"), a("2001:db8:1:2::5"));
        assert_eq!(ClientAddr::unknown().throttle_key(), "0.0.0.0");
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
