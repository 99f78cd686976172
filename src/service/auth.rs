//! Login with user name and password, opaque bearer tokens (only their SHA-256
//! is stored), idle expiry, and a shared slow-down after repeated failures.

use std::time::Duration;

use argon2::{
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use sha2::{Digest, Sha256};

use super::Service;
use crate::{
    domain::{is_user_name, models::SessionInfo, Caller},
    error::{Error, ErrorKind, Result},
};

/// Hashes a password for storage (argon2id, random salt).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash password: {e}"))
}

/// A real hash to verify against when the user does not exist.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("no such user").unwrap_or_default())
}

fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn bad_credentials() -> Error {
    Error::new(
        ErrorKind::Unauthenticated,
        "com.vmware.vapi.endpoint.failedToLoginMaxAttemptsReached",
        "Authentication failed: wrong user name or password.",
        &[],
    )
}

impl Service {
    fn login_idle(&self) -> Duration {
        Duration::from_secs(self.settings().login.idle_timeout_seconds)
    }

    /// Checks the password and returns a new token.
    pub async fn login(&self, user: &str, password: &str) -> Result<String> {
        // No user has such a name (user add refuses it), and the store could not
        // even count a failure for it (NUL, or too long for the index).
        if !is_user_name(user) {
            tracing::warn!("failed login with an impossible user name");
            return Err(bad_credentials());
        }
        let limits = &self.settings().login;
        let failures = self.store().login_failures(user).await?;
        let over = failures.saturating_sub(limits.free_failures as i32);
        if over > 0 {
            // Doubling delay past the free attempts, shared by every instance.
            let delay = 1u64
                .checked_shl(over as u32 - 1)
                .unwrap_or(u64::MAX)
                .min(limits.max_delay_seconds);
            tokio::time::sleep(Duration::from_secs(delay)).await;
        }
        let row = self.store().find_user(user).await?;
        // Unknown users cost as much as wrong passwords: no user-name oracle.
        let stored = match &row {
            Some(r) => r.password_hash.clone(),
            None => dummy_hash().to_string(),
        };
        let password = password.to_string();
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&stored)
                .map(|h| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &h)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await
        .map_err(Error::internal)?;
        let Some(row) = row.filter(|_| ok) else {
            self.store().record_login_failure(user).await?;
            tracing::warn!(user, "failed login");
            return Err(bad_credentials());
        };
        if failures > 0 {
            self.store().clear_login_failures(user).await?;
        }
        let raw: [u8; 32] = rand::random();
        let token = URL_SAFE_NO_PAD.encode(raw);
        self.store()
            .create_login(&token_hash(&token), row.id, self.login_idle())
            .await?;
        Ok(token)
    }

    /// The caller behind a token (renewing its idle expiry), or UNAUTHENTICATED.
    pub async fn authenticate(&self, token: &str) -> Result<Caller> {
        Ok(self.resolve(token).await?.0)
    }

    async fn resolve(&self, token: &str) -> Result<(Caller, SessionInfo)> {
        if token.is_empty() || token.len() > 512 {
            return Err(Error::unauthenticated());
        }
        let row = self
            .store()
            .touch_login(&token_hash(token), self.login_idle())
            .await?
            .ok_or_else(Error::unauthenticated)?;
        let caller = Caller {
            user_id: row.user_id,
            name: row.name.clone(),
            privileges: row
                .privileges
                .iter()
                .filter_map(|p| p.parse().ok())
                .collect(),
        };
        let info = SessionInfo {
            user: row.name,
            created_time: row.created_at,
            last_accessed_time: row.last_used_at,
        };
        Ok((caller, info))
    }

    pub async fn whoami(&self, token: &str) -> Result<SessionInfo> {
        Ok(self.resolve(token).await?.1)
    }

    pub async fn logout(&self, token: &str) -> Result<()> {
        if self.store().delete_login(&token_hash(token)).await? {
            Ok(())
        } else {
            Err(Error::unauthenticated())
        }
    }
}
