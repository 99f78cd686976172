//! Login with user name and password, opaque bearer tokens (only their SHA-256
//! is stored), idle expiry, and a shared slow-down after repeated failures.

use std::time::Duration;

use argon2::{
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};

use super::Service;
use crate::{
    domain::{
        credentials::bad_credentials, models::SessionInfo, Caller, LoginToken, Password, UserName,
    },
    error::{Error, Result},
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

impl Service {
    fn login_idle(&self) -> Duration {
        Duration::from_secs(self.inner.login.idle_timeout_seconds)
    }

    /// Checks the password and returns a new token.
    pub async fn login(&self, user: &UserName, password: &Password) -> Result<LoginToken> {
        let limits = &self.inner.login;
        let failures = self.db().login_failures(user).await?;
        let over = failures.saturating_sub(limits.free_failures as i32);
        if over > 0 {
            // Doubling delay past the free attempts, shared by every instance.
            let delay = 1u64
                .checked_shl(over as u32 - 1)
                .unwrap_or(u64::MAX)
                .min(limits.max_delay_seconds);
            tokio::time::sleep(Duration::from_secs(delay)).await;
        }
        let row = self.db().find_user(user).await?;
        // Unknown users cost as much as wrong passwords: no user-name oracle.
        let stored = match &row {
            Some(r) => r.password_hash.clone(),
            None => dummy_hash().to_string(),
        };
        let password = password.clone();
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&stored)
                .map(|h| {
                    Argon2::default()
                        .verify_password(password.as_str().as_bytes(), &h)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await
        .map_err(Error::internal)?;
        let Some(row) = row.filter(|_| ok) else {
            self.db().record_login_failure(user).await?;
            tracing::warn!(user = user.as_str(), "failed login");
            return Err(bad_credentials());
        };
        if failures > 0 {
            self.db().clear_login_failures(user).await?;
        }
        let token = LoginToken::generate();
        self.db()
            .create_login(&token.hash(), row.id, self.login_idle())
            .await?;
        Ok(token)
    }

    /// The caller behind a token (renewing its idle expiry), or UNAUTHENTICATED.
    pub async fn authenticate(&self, token: &LoginToken) -> Result<Caller> {
        Ok(self.resolve(token).await?.0)
    }

    async fn resolve(&self, token: &LoginToken) -> Result<(Caller, SessionInfo)> {
        let row = self
            .db()
            .touch_login(&token.hash(), self.login_idle())
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

    pub async fn whoami(&self, token: &LoginToken) -> Result<SessionInfo> {
        Ok(self.resolve(token).await?.1)
    }

    pub async fn logout(&self, token: &LoginToken) -> Result<()> {
        if self.db().delete_login(&token.hash()).await? {
            Ok(())
        } else {
            Err(Error::unauthenticated())
        }
    }
}
