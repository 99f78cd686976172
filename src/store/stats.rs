//! Counts for the metrics endpoint.

use super::{Db, Result};
use crate::domain::{PrepareStatus, SessionState};

impl Db {
    /// Live sessions by state.
    pub async fn session_counts(&self) -> Result<Vec<(SessionState, i64)>> {
        let rows = sqlx::query!(
            r#"SELECT state AS "state: SessionState", count(*) AS "count!"
               FROM download_sessions WHERE expiration_time > now() GROUP BY state"#
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|r| (r.state, r.count)).collect())
    }

    /// Files of live sessions by prepare status.
    pub async fn file_counts(&self) -> Result<Vec<(PrepareStatus, i64)>> {
        let rows = sqlx::query!(
            r#"SELECT f.status AS "status: PrepareStatus", count(*) AS "count!"
               FROM download_files f JOIN download_sessions s ON s.id = f.session_id
               WHERE s.expiration_time > now() GROUP BY f.status"#
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|r| (r.status, r.count)).collect())
    }
}
