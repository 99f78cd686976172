//! Download-URI tokens: HMAC-SHA256 over (key id, session, file) with a set of
//! keys for rotation: every key verifies, one signs. A token reveals the
//! session id (needed to look it up) but cannot be forged or moved to another file.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::domain::SessionId;

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone)]
pub struct Signer {
    keys: Vec<(String, Vec<u8>)>,
    active: usize,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("active", &self.keys[self.active].0)
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl Signer {
    /// `keys` must be non-empty; `active` names the signing key (default: the last).
    pub fn new(keys: Vec<(String, Vec<u8>)>, active: Option<&str>) -> anyhow::Result<Signer> {
        anyhow::ensure!(!keys.is_empty(), "no signing key");
        let active = match active {
            Some(kid) => keys
                .iter()
                .position(|(k, _)| k == kid)
                .ok_or_else(|| anyhow::anyhow!("signing key {kid:?} is not configured"))?,
            None => keys.len() - 1,
        };
        Ok(Signer { keys, active })
    }

    fn mac(secret: &[u8], kid: &str, session: SessionId, file: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
        // Length-prefixed fields: no two (kid, session, file) triples collide.
        for part in [kid.as_bytes(), session.0.as_bytes(), file.as_bytes()] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac
    }

    /// `{session}.{kid}.{mac}`, URL-safe.
    pub fn sign(&self, session: SessionId, file: &str) -> String {
        let (kid, secret) = &self.keys[self.active];
        let tag = Self::mac(secret, kid, session, file)
            .finalize()
            .into_bytes();
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(session.0.as_bytes()),
            kid,
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// The session a token was issued for, when it is genuine for `file`.
    pub fn verify(&self, token: &str, file: &str) -> Option<SessionId> {
        let mut parts = token.splitn(3, '.');
        let (session, kid, tag) = (parts.next()?, parts.next()?, parts.next()?);
        let session = SessionId(Uuid::from_slice(&URL_SAFE_NO_PAD.decode(session).ok()?).ok()?);
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        let (_, secret) = self.keys.iter().find(|(k, _)| k == kid)?;
        Self::mac(secret, kid, session, file)
            .verify_slice(&tag)
            .ok()
            .map(|_| session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(keys: &[(&str, u8)], active: Option<&str>) -> Signer {
        Signer::new(
            keys.iter()
                .map(|(k, b)| (k.to_string(), vec![*b; 32]))
                .collect(),
            active,
        )
        .unwrap()
    }

    #[test]
    fn round_trip_and_tamper() {
        let s = signer(&[("a", 1)], None);
        let id = SessionId::new_random();
        let t = s.sign(id, "disk.vmdk");
        assert_eq!(s.verify(&t, "disk.vmdk"), Some(id));
        assert_eq!(s.verify(&t, "other.vmdk"), None);
        let mut bad = t.clone();
        bad.pop();
        bad.push(if t.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(s.verify(&bad, "disk.vmdk"), None);
        assert_eq!(s.verify("garbage", "disk.vmdk"), None);
        assert_eq!(s.verify("a.b.c", "disk.vmdk"), None);
    }

    #[test]
    fn rotation_old_keys_verify_new_key_signs() {
        let old = signer(&[("a", 1)], None);
        let rotated = signer(&[("a", 1), ("b", 2)], Some("b"));
        let id = SessionId::new_random();
        let old_token = old.sign(id, "f");
        assert_eq!(rotated.verify(&old_token, "f"), Some(id));
        let new_token = rotated.sign(id, "f");
        assert!(new_token.contains(".b."));
        assert_eq!(old.verify(&new_token, "f"), None);
        // A foreign key with the same id does not verify.
        let foreign = signer(&[("a", 9)], None);
        assert_eq!(foreign.verify(&old_token, "f"), None);
    }
}
