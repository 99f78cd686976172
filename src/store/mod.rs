//! Every SQL statement of the service, behind functions named for what they do.
//! Handlers and workers never build SQL themselves.

pub mod catalog;
pub mod dataplane;
pub mod files;
pub mod keys;
pub mod sessions;
pub mod stats;
pub mod users;
pub mod worker;

use std::time::Duration;

use sqlx::{postgres::PgPoolOptions, PgPool};

use crate::config::Settings;

/// Handle to the shared database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: PgPool,
}

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Store {
    /// Connects lazily-validated: the pool retries, so a database that comes back is used again.
    pub async fn connect(settings: &Settings, url: &str) -> anyhow::Result<Store> {
        let pool = PgPoolOptions::new()
            .max_connections(settings.database.max_connections)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(
                settings.database.acquire_timeout_seconds,
            ))
            .test_before_acquire(true)
            .connect(url)
            .await?;
        Ok(Store { pool })
    }

    pub fn from_pool(pool: PgPool) -> Store {
        Store { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies pending migrations; safe to run from several instances at once
    /// (sqlx takes an advisory lock).
    pub async fn migrate(&self) -> anyhow::Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// Cheap liveness probe of the database.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }
}

/// Seconds as a PostgreSQL interval argument (`$n * interval '1 second'`).
pub(crate) fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}
