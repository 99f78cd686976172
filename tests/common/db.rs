//! Test databases: one fresh database per test on the shared server.

use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

/// Server used for test databases (`TEST_DATABASE_URL`, default the local cluster).
pub fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// Creates an empty database named `{prefix}{random}` and returns its URL. The
/// test command drops leftover `dls_test_*` databases nobody uses.
pub async fn fresh_database(prefix: &str) -> String {
    let server = server_url();
    let name = format!("{prefix}{}", Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(&server)
        .await
        .expect("PostgreSQL must run for the tests (see README)");
    conn.execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
        .await
        .expect("create test database");
    let mut url = url::Url::parse(&server).unwrap();
    url.set_path(&name);
    url.to_string()
}
