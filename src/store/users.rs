//! Users, login tokens (stored as SHA-256 hashes) and login throttling per
//! user name and client address.

use std::time::Duration;

use uuid::Uuid;

use super::{secs, Db, Result};
use crate::domain::UserName;

#[derive(Clone, Debug)]
pub struct UserRow {
    pub id: Uuid,
    pub name: String,
    pub password_hash: String,
    pub privileges: Vec<String>,
}

/// What `remove_user` removed with the user.
#[derive(Clone, Copy, Debug)]
pub struct RemovedUser {
    pub tokens: u64,
    pub sessions: u64,
}

/// The turn of a login attempt (see [`Db::take_login_turn`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Turn {
    /// Counted; may start after this many seconds.
    After(f64),
    /// Not counted: the pair's next turn is further than the longest wait.
    Refused { next_in: f64 },
}

/// How the throttle of one (user, client) pair behaves.
#[derive(Clone, Copy, Debug)]
pub struct ThrottlePolicy {
    /// Failures in a row that cost no delay.
    pub free_failures: u32,
    /// Longest delay between two attempts, and longest wait for a turn.
    pub max_delay: Duration,
}

impl Db {
    /// Creates the user, or replaces password and privileges of an existing
    /// one and revokes its login tokens (on every instance: the row changes
    /// publish the invalidation). Returns true when the user is new.
    pub async fn upsert_user(
        &self,
        name: &UserName,
        password_hash: &str,
        privileges: &[String],
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query!(
            r#"INSERT INTO users (id, name, password_hash, privileges) VALUES ($1, $2, $3, $4)
               ON CONFLICT (name) DO UPDATE SET password_hash = EXCLUDED.password_hash,
                   privileges = EXCLUDED.privileges
               RETURNING id, (xmax = 0) AS "inserted!""#,
            Uuid::new_v4(),
            name.as_str(),
            password_hash,
            privileges
        )
        .fetch_one(&mut *tx)
        .await?;
        if !row.inserted {
            sqlx::query!("DELETE FROM login_sessions WHERE user_id = $1", row.id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(row.inserted)
    }

    /// Removes a user with its login tokens and its download sessions (their
    /// URIs stop working on every instance). None when there is no such user.
    pub async fn remove_user(&self, name: &UserName) -> Result<Option<RemovedUser>> {
        let mut tx = self.pool.begin().await?;
        let Some(id) = sqlx::query_scalar!(
            "SELECT id FROM users WHERE name = $1 FOR UPDATE",
            name.as_str()
        )
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(None);
        };
        let tokens = sqlx::query!("DELETE FROM login_sessions WHERE user_id = $1", id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let sessions = sqlx::query!("DELETE FROM download_sessions WHERE owner_id = $1", id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query!("DELETE FROM users WHERE id = $1", id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(RemovedUser { tokens, sessions }))
    }

    pub async fn find_user(&self, name: &UserName) -> Result<Option<UserRow>> {
        Ok(sqlx::query_as!(
            UserRow,
            "SELECT id, name, password_hash, privileges FROM users WHERE name = $1",
            name.as_str()
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    /// A new login token of `user_id`: expires after `idle` without use, and
    /// after `max_lifetime` however used.
    pub async fn create_login(
        &self,
        token_hash: &[u8],
        user_id: Uuid,
        idle: Duration,
        max_lifetime: Duration,
    ) -> Result<()> {
        sqlx::query!(
            "INSERT INTO login_sessions (token_hash, user_id, expires_at) \
             VALUES ($1, $2, now() + LEAST($3::float8, $4::float8) * interval '1 second')",
            token_hash,
            user_id,
            secs(idle),
            secs(max_lifetime)
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Returns true when a live token was removed.
    pub async fn delete_login(&self, token_hash: &[u8]) -> Result<bool> {
        let done = sqlx::query!(
            "DELETE FROM login_sessions WHERE token_hash = $1",
            token_hash
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Counts a login attempt of `user` from `client` as a failure before its
    /// password is checked, atomically (parallel attempts see each other), and
    /// answers when it may start: attempts of one pair take turns spaced by
    /// [`ThrottlePolicy`]'s doubling delay. An attempt whose turn would come
    /// later than `max_delay` from now is refused and not counted. A pair's
    /// count starts over 15 minutes after its last attempt.
    pub async fn take_login_turn(
        &self,
        user: &UserName,
        client: &str,
        policy: ThrottlePolicy,
    ) -> Result<Turn> {
        let free = i32::try_from(policy.free_failures).unwrap_or(i32::MAX);
        let max_delay = secs(policy.max_delay);
        let turn = sqlx::query_scalar!(
            r#"INSERT INTO login_throttle AS t (user_name, client, failures, not_before, last_attempt)
               VALUES ($1, $2, 1, now() + dls_login_delay(1, $3, $4), now())
               ON CONFLICT (user_name, client) DO UPDATE SET
                   failures = CASE WHEN t.last_attempt > now() - interval '15 minutes'
                                   THEN t.failures ELSE 0 END + 1,
                   not_before = CASE WHEN t.last_attempt > now() - interval '15 minutes'
                                     THEN GREATEST(t.not_before, now()) ELSE now() END
                       + dls_login_delay(CASE WHEN t.last_attempt > now() - interval '15 minutes'
                                              THEN t.failures ELSE 0 END + 1, $3, $4),
                   last_attempt = now()
               WHERE t.last_attempt <= now() - interval '15 minutes'
                  OR t.not_before <= now() + $4 * interval '1 second'
               RETURNING EXTRACT(EPOCH FROM
                   t.not_before - dls_login_delay(t.failures, $3, $4) - now())::float8 AS "wait!""#,
            user.as_str(),
            client,
            free,
            max_delay
        )
        .fetch_optional(&self.pool)
        .await?;
        if let Some(wait) = turn {
            return Ok(Turn::After(wait.max(0.0)));
        }
        let next_in = sqlx::query_scalar!(
            r#"SELECT EXTRACT(EPOCH FROM not_before - now())::float8 AS "next_in!"
               FROM login_throttle WHERE user_name = $1 AND client = $2"#,
            user.as_str(),
            client
        )
        .fetch_optional(&self.pool)
        .await?
        .unwrap_or(0.0);
        Ok(Turn::Refused { next_in })
    }

    /// Takes back the count of an attempt that was never checked (refused for
    /// load): it was no guess.
    pub async fn uncount_login_attempt(&self, user: &UserName, client: &str) -> Result<()> {
        sqlx::query!(
            "UPDATE login_throttle SET failures = GREATEST(failures - 1, 0) \
             WHERE user_name = $1 AND client = $2",
            user.as_str(),
            client
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A successful login: the pair's count starts over.
    pub async fn clear_login_attempts(&self, user: &UserName, client: &str) -> Result<()> {
        sqlx::query!(
            "DELETE FROM login_throttle WHERE user_name = $1 AND client = $2",
            user.as_str(),
            client
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes login tokens past their idle expiry. Returns how many.
    pub async fn purge_expired_logins(&self) -> Result<u64> {
        let done = sqlx::query!(
            "DELETE FROM login_sessions WHERE token_hash IN ( \
                SELECT token_hash FROM login_sessions WHERE expires_at <= now() \
                LIMIT 1000 FOR UPDATE SKIP LOCKED)"
        )
        .execute(&self.pool)
        .await?;
        sqlx::query!("DELETE FROM login_throttle WHERE last_attempt < now() - interval '1 hour'")
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
