//! Counts for the metrics endpoint.

use super::Store;
use crate::error::Result;

impl Store {
    /// Live sessions by state.
    pub async fn session_counts(&self) -> Result<Vec<(String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT state, count(*) FROM download_sessions WHERE expiration_time > now() GROUP BY state",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Files of live sessions by prepare status.
    pub async fn file_counts(&self) -> Result<Vec<(String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT f.status, count(*) FROM download_files f \
             JOIN download_sessions s ON s.id = f.session_id \
             WHERE s.expiration_time > now() GROUP BY f.status",
        )
        .fetch_all(&self.pool)
        .await?)
    }
}
