//! Every SQL statement of the service, behind functions named for what they do,
//! checked against the schema at compile time (`sqlx::query!`, offline data in `.sqlx/`).
//!
//! Handlers and workers never build SQL themselves; the store speaks domain
//! types (ids, names, states) and answers with its own error, [`DbError`].

pub mod catalog;
pub mod dataplane;
pub mod files;
pub mod keys;
pub mod sessions;
pub mod stats;
pub mod updates;
pub mod users;
pub mod validity;
pub mod worker;

use std::time::Duration;

use sqlx::{postgres::PgPoolOptions, PgPool};

use crate::config::Settings;

/// Handle to the shared PostgreSQL database; cheap to clone.
#[derive(Clone)]
pub struct Db {
    pub(crate) pool: PgPool,
}

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Why a statement failed. The service answers [`DbError::Unavailable`] with
/// SERVICE_UNAVAILABLE (the client retries) and anything else as an internal error.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database cannot be reached: down, restarting, failing over, or the
    /// pool exhausted. Transient.
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// The statement failed for another reason (a bug, or a value the code
    /// does not know, such as an unknown state in a column).
    #[error("a database statement failed")]
    Statement(#[source] sqlx::Error),
    #[error("database migrations failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T, E = DbError> = std::result::Result<T, E>;

impl DbError {
    pub fn is_unavailable(&self) -> bool {
        matches!(self, DbError::Unavailable(_))
    }
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        let unavailable = match &e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => true,
            // admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections
            sqlx::Error::Database(db) => db
                .code()
                .is_some_and(|c| matches!(c.as_ref(), "57P01" | "57P02" | "57P03" | "53300")),
            _ => false,
        };
        if unavailable {
            DbError::Unavailable(e)
        } else {
            DbError::Statement(e)
        }
    }
}

impl Db {
    /// Connects lazily-validated: the pool retries, so a database that comes back is used again.
    pub async fn connect(settings: &Settings, url: &str) -> Result<Db> {
        let pool = PgPoolOptions::new()
            .max_connections(settings.database.max_connections)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(
                settings.database.acquire_timeout_seconds,
            ))
            .test_before_acquire(true)
            .connect(url)
            .await?;
        Ok(Db { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies pending migrations; safe to run from several instances at once
    /// (sqlx takes an advisory lock).
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// Cheap liveness probe of the database.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query!("SELECT 1 AS one")
            .fetch_one(&self.pool)
            .await?;
        Ok(())
    }
}

/// Seconds as a PostgreSQL interval argument (`$n * interval '1 second'`).
pub(crate) fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}
