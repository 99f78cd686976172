//! Login with user name and password, opaque bearer tokens (only their SHA-256
//! is stored) with an idle expiry and an absolute lifetime, throttling per user
//! name and client address, and bounded password checking.
//!
//! A login's path: attempts of one (user, client) pair run one at a time on an
//! instance (an attempt that cannot start within `max_delay_seconds` is
//! refused); each is counted against the pair in the database before its
//! password is checked and waits for the pair's turn there (which spaces
//! attempts across instances too), holding no connection; then it takes a
//! place at the verifier or is refused at once with SERVICE_UNAVAILABLE. Its
//! statements use a small share of the connection pool, so a login flood
//! cannot starve other requests of connections.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use argon2::{
    password_hash::{PasswordHasher, SaltString},
    Argon2,
};
use tokio::sync::{OwnedMutexGuard, SemaphorePermit};

use super::Service;
use crate::{
    domain::{
        credentials::bad_credentials, models::SessionInfo, Caller, ClientAddr, LoginToken,
        Password, UserName,
    },
    error::{Error, ErrorKind, Result},
    store::users::{ThrottlePolicy, Turn},
};

/// Hashes a password for storage (argon2id, random salt).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash password: {e}"))
}

/// Every verification thread is busy and the queue is full.
fn too_many_logins() -> Error {
    let mut e = Error::new(
        ErrorKind::ServiceUnavailable,
        "com.vmware.cis.session.too_many_logins",
        "Too many logins are being checked right now; try again shortly.",
        &[],
    );
    e.retry_after = Some(1);
    e
}

/// This user name has failed too often from this client address.
fn throttled(retry_after: u64) -> Error {
    let secs = retry_after.to_string();
    let mut e = Error::new(
        ErrorKind::ServiceUnavailable,
        "com.vmware.cis.session.login_throttled",
        format!("Too many failed logins for this user from this address; try again in {secs} s."),
        &[&secs],
    );
    e.retry_after = Some(retry_after);
    e
}

/// One lock per (user, client) pair with an attempt in flight on this
/// instance: parallel attempts of a pair take turns; the map holds only pairs
/// in use.
#[derive(Default)]
pub(super) struct PairLocks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// The turn of one pair on this instance; released on drop.
struct PairTurn<'a> {
    locks: &'a PairLocks,
    key: String,
    guard: Option<OwnedMutexGuard<()>>,
}

impl PairLocks {
    /// Waits at most `within` for the pair's turn.
    async fn turn(&self, key: String, within: Duration) -> Option<PairTurn<'_>> {
        let lock = self
            .locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.clone())
            .or_default()
            .clone();
        let guard = tokio::time::timeout(within, lock.lock_owned()).await.ok();
        let turn = PairTurn {
            locks: self,
            key,
            guard,
        };
        // A turn that never came still tidies the map on drop.
        turn.guard.is_some().then_some(turn)
    }
}

impl Drop for PairTurn<'_> {
    fn drop(&mut self) {
        self.guard.take();
        let mut locks = self.locks.locks.lock().unwrap_or_else(|p| p.into_inner());
        // Nobody else holds or waits for it: only the map's reference is left.
        if locks
            .get(&self.key)
            .is_some_and(|l| Arc::strong_count(l) == 1)
        {
            locks.remove(&self.key);
        }
    }
}

impl Service {
    fn login_idle(&self) -> Duration {
        Duration::from_secs(self.inner.login.idle_timeout_seconds)
    }

    fn login_max_lifetime(&self) -> Duration {
        Duration::from_secs(self.inner.login.max_lifetime_seconds)
    }

    /// A connection's worth of the login budget: logins use at most this
    /// share of the pool at once.
    async fn login_budget(&self) -> SemaphorePermit<'_> {
        self.inner
            .login_db
            .acquire()
            .await
            .expect("the login budget is never closed")
    }

    /// Checks the password and returns a new token.
    pub async fn login(
        &self,
        user: &UserName,
        password: &Password,
        client: ClientAddr,
    ) -> Result<LoginToken> {
        let limits = &self.inner.login;
        let max_delay = Duration::from_secs(limits.max_delay_seconds);
        let key = client.throttle_key();
        let pair = format!("{}\n{key}", user.as_str());
        let Some(pair_turn) = self.inner.login_pairs.turn(pair, max_delay).await else {
            tracing::warn!(user = user.as_str(), client = %client, "login throttled");
            return Err(throttled(limits.max_delay_seconds.max(1)));
        };
        let turn = {
            let _budget = self.login_budget().await;
            let policy = ThrottlePolicy {
                free_failures: limits.free_failures,
                max_delay,
            };
            self.db().take_login_turn(user, &key, policy).await?
        };
        match turn {
            Turn::After(wait) => {
                if wait > 0.0 {
                    tokio::time::sleep(Duration::from_secs_f64(wait)).await;
                }
            }
            Turn::Refused { next_in } => {
                // Answered late, so that a burst of guesses is answered slowly
                // whether its attempts are checked or refused.
                drop(pair_turn);
                tokio::time::sleep(max_delay).await;
                tracing::warn!(user = user.as_str(), client = %client, "login throttled");
                let left = (next_in - max_delay.as_secs_f64()).ceil().max(1.0);
                return Err(throttled(left as u64));
            }
        }
        let Some(place) = self.inner.verifier.admit() else {
            let _budget = self.login_budget().await;
            if let Err(e) = self.db().uncount_login_attempt(user, &key).await {
                tracing::warn!(error = ?e, "cannot take back a login attempt");
            }
            return Err(too_many_logins());
        };
        let row = {
            let _budget = self.login_budget().await;
            self.db().find_user(user).await?
        };
        let stored = row.as_ref().map(|r| r.password_hash.clone());
        let ok = place
            .verify(&self.inner.verifier, stored, password.clone())
            .await?;
        let Some(row) = row.filter(|_| ok) else {
            tracing::warn!(user = user.as_str(), client = %client, "failed login");
            return Err(bad_credentials());
        };
        let _budget = self.login_budget().await;
        self.db().clear_login_attempts(user, &key).await?;
        let token = LoginToken::generate();
        self.db()
            .create_login(
                &token.hash(),
                row.id,
                self.login_idle(),
                self.login_max_lifetime(),
            )
            .await?;
        Ok(token)
    }

    /// The caller behind a token (renewing its idle expiry when due), or UNAUTHENTICATED.
    pub async fn authenticate(&self, token: &LoginToken) -> Result<Caller> {
        Ok(self.resolve(token).await?.0)
    }

    async fn resolve(&self, token: &LoginToken) -> Result<(Caller, SessionInfo)> {
        let entry = self
            .inner
            .validity
            .login(&token.hash())
            .await?
            .ok_or_else(Error::unauthenticated)?;
        let info = SessionInfo {
            user: entry.load.name.clone(),
            created_time: entry.load.created_at,
            last_accessed_time: entry.load.last_used_at,
        };
        Ok((entry.caller.clone(), info))
    }

    pub async fn whoami(&self, token: &LoginToken) -> Result<SessionInfo> {
        Ok(self.resolve(token).await?.1)
    }

    pub async fn logout(&self, token: &LoginToken) -> Result<()> {
        let hash = token.hash();
        let removed = self.db().delete_login(&hash).await?;
        self.inner.validity.forget_login(&hash);
        if removed {
            Ok(())
        } else {
            Err(Error::unauthenticated())
        }
    }
}
