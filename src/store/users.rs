//! Users, login tokens (stored as SHA-256 hashes) and failed-login counters.

use std::time::Duration;

use chrono::{DateTime, Utc};
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

#[derive(Clone, Debug)]
pub struct LoginRow {
    pub user_id: Uuid,
    pub name: String,
    pub privileges: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
}

impl Db {
    /// Creates the user, or replaces password and privileges of an existing one.
    /// Returns true when the user is new.
    pub async fn upsert_user(
        &self,
        name: &UserName,
        password_hash: &str,
        privileges: &[String],
    ) -> Result<bool> {
        let inserted = sqlx::query_scalar!(
            r#"INSERT INTO users (id, name, password_hash, privileges) VALUES ($1, $2, $3, $4)
               ON CONFLICT (name) DO UPDATE SET password_hash = EXCLUDED.password_hash,
                   privileges = EXCLUDED.privileges
               RETURNING (xmax = 0) AS "inserted!""#,
            Uuid::new_v4(),
            name.as_str(),
            password_hash,
            privileges
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(inserted)
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

    pub async fn create_login(
        &self,
        token_hash: &[u8],
        user_id: Uuid,
        idle: Duration,
    ) -> Result<()> {
        sqlx::query!(
            "INSERT INTO login_sessions (token_hash, user_id, expires_at) \
             VALUES ($1, $2, now() + $3 * interval '1 second')",
            token_hash,
            user_id,
            secs(idle)
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Resolves a live token and renews its idle expiry in the same statement.
    pub async fn touch_login(&self, token_hash: &[u8], idle: Duration) -> Result<Option<LoginRow>> {
        Ok(sqlx::query_as!(
            LoginRow,
            r#"WITH s AS (
                   UPDATE login_sessions SET last_used_at = now(),
                          expires_at = now() + $2 * interval '1 second'
                   WHERE token_hash = $1 AND expires_at > now()
                   RETURNING user_id, created_at, last_used_at)
               SELECT u.id AS "user_id!", u.name AS "name!", u.privileges AS "privileges!",
                   s.created_at AS "created_at!", s.last_used_at AS "last_used_at!"
               FROM s JOIN users u ON u.id = s.user_id"#,
            token_hash,
            secs(idle)
        )
        .fetch_optional(&self.pool)
        .await?)
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

    /// Failed attempts recorded for this user name.
    pub async fn login_failures(&self, user: &UserName) -> Result<i32> {
        Ok(sqlx::query_scalar!(
            "SELECT failures FROM login_failures WHERE user_name = $1 \
             AND last_failure > now() - interval '15 minutes'",
            user.as_str()
        )
        .fetch_optional(&self.pool)
        .await?
        .unwrap_or(0))
    }

    pub async fn record_login_failure(&self, user: &UserName) -> Result<()> {
        // Counters older than 15 minutes start over.
        sqlx::query!(
            "INSERT INTO login_failures (user_name, failures, last_failure) VALUES ($1, 1, now()) \
             ON CONFLICT (user_name) DO UPDATE SET \
               failures = CASE WHEN login_failures.last_failure > now() - interval '15 minutes' \
                               THEN login_failures.failures + 1 ELSE 1 END, \
               last_failure = now()",
            user.as_str()
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn clear_login_failures(&self, user: &UserName) -> Result<()> {
        sqlx::query!(
            "DELETE FROM login_failures WHERE user_name = $1",
            user.as_str()
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
        sqlx::query!("DELETE FROM login_failures WHERE last_failure < now() - interval '1 hour'")
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
