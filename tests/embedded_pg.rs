//! The embedded cluster: first start, reuse by a second value, and stop by the owner only.

use std::os::unix::fs::PermissionsExt;

use download_sessions::embedded_pg::EmbeddedPostgres;
use sqlx::{Connection, PgConnection};

async fn select_one(url: &str) -> anyhow::Result<i32> {
    let mut conn = PgConnection::connect(url).await?;
    let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&mut conn).await?;
    conn.close().await?;
    Ok(one)
}

#[tokio::test]
async fn starts_reuses_and_stops_a_private_cluster() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // As root the server runs as `postgres`, which must be able to enter the (0700) temp dir.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    let data_dir = dir.path().join("data");

    let mut first = EmbeddedPostgres::start(&data_dir).await?;
    assert_eq!(first.data_dir(), data_dir.join("postgres"));
    let url = first.url();
    assert!(url.contains("/download_sessions?host=/"), "{url}");
    assert_eq!(select_one(&url).await?, 1);

    let second = EmbeddedPostgres::start(&data_dir).await?;
    assert_eq!(second.url(), url);
    assert_eq!(select_one(&second.url()).await?, 1);
    drop(second);
    assert_eq!(
        select_one(&url).await?,
        1,
        "dropping the reusing value must not stop the cluster"
    );

    first.stop();
    assert!(
        select_one(&url).await.is_err(),
        "the cluster still accepts connections after stop"
    );
    first.stop();

    // A restart finds the initialised cluster and the database again.
    let third = EmbeddedPostgres::start(&data_dir).await?;
    assert_eq!(select_one(&third.url()).await?, 1);
    drop(third);
    assert!(select_one(&url).await.is_err());
    Ok(())
}
