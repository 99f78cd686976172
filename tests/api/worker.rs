//! The prepare pipeline: workers claim, stage (verified SHA-256), reuse artifacts,
//! survive cancellation, lapsed leases, several instances and shutdown; maintenance collects.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use download_sessions::{
    config::Settings,
    storage::{stage::TEMP_PREFIX, Buckets},
    worker::{maintenance_pass, Outcome, StageTuning, Worker},
};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::helpers::*;

/// Settings of an instance whose only worker is the test: no background
/// workers, no background maintenance, short heartbeats.
fn manual(s: &mut Settings) {
    s.workers.count = 0;
    s.workers.heartbeat_seconds = 1;
    s.workers.lease_seconds = 3;
    s.maintenance.interval_seconds = 3600;
}

async fn manual_app() -> TestApp {
    spawn_app_with(manual).await
}

fn stores(app: &TestApp) -> Buckets {
    Buckets::from_settings(&app.settings).unwrap()
}

fn worker(app: &TestApp) -> Worker {
    Worker::new(&app.db, &stores(app), &app.settings.workers).with_retry_delay(Duration::ZERO)
}

/// A worker whose copies crawl: 64 KiB per 50 ms, so a 4 MiB copy lasts
/// about 3 s, longer than two heartbeats.
fn slow_worker(app: &TestApp) -> Worker {
    worker(app).with_tuning(StageTuning {
        chunk_size: 64 << 10,
        buffers: 2,
        chunk_delay: Some(Duration::from_millis(50)),
    })
}

fn pool(app: &TestApp) -> &PgPool {
    app.db.pool()
}

/// A user with a session on a fresh item holding `files`; returns (token, session id).
async fn session_with(app: &TestApp, item: &str, files: &[(&str, &[u8])]) -> (String, String) {
    let item_id = app.import("lib", item, files).await;
    let token = app
        .user(&format!("u-{}", Uuid::new_v4().simple()), ALL_PRIVILEGES)
        .await;
    let session = app.api(&token).new_session(&item_id).await;
    (token, session)
}

async fn attempts(app: &TestApp, session: &str, name: &str) -> i32 {
    sqlx::query_scalar("SELECT attempts FROM download_files WHERE session_id = $1 AND name = $2")
        .bind(Uuid::parse_str(session).unwrap())
        .bind(name)
        .fetch_one(pool(app))
        .await
        .unwrap()
}

async fn artifact_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM artifacts")
        .fetch_one(pool(app))
        .await
        .unwrap()
}

async fn artifact_times(app: &TestApp, sha: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    sqlx::query_as("SELECT created_at, last_used_at FROM artifacts WHERE sha256 = $1")
        .bind(sha)
        .fetch_optional(pool(app))
        .await
        .unwrap()
}

fn transfer_dir(app: &TestApp) -> PathBuf {
    app.data_dir.join("transfer")
}

/// The object of the artifact of `sha` (keys are `artifacts/<sha>-<uuid>`, one
/// per copy); a path that does not exist when there is none.
fn artifact_path(app: &TestApp, sha: &str) -> PathBuf {
    let dir = transfer_dir(app).join("artifacts");
    let mut found: Vec<PathBuf> = list(&dir)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{sha}-")))
        })
        .collect();
    assert!(found.len() <= 1, "several objects of {sha}: {found:?}");
    found.pop().unwrap_or_else(|| dir.join(sha))
}

fn content_path(app: &TestApp, sha: &str) -> PathBuf {
    app.data_dir.join("content").join("blobs").join(sha)
}

/// Partial copies: temporary files beside the artifacts (and the staging
/// directory of earlier versions).
fn staging_entries(app: &TestApp) -> Vec<PathBuf> {
    let mut entries = list(&transfer_dir(app).join("staging"));
    entries.extend(
        list(&transfer_dir(app).join("artifacts"))
            .into_iter()
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(TEMP_PREFIX))
            }),
    );
    entries
}

fn list(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

/// Runs `worker` until the queue is empty; returns every non-empty outcome.
async fn drain(worker: &Worker) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    loop {
        match worker.prepare_one().await.unwrap() {
            Outcome::Empty => return outcomes,
            o => outcomes.push(o),
        }
    }
}

/// Waits until a copy has started writing its staging object.
async fn wait_for_staging(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while staging_entries(app).is_empty() {
        assert!(Instant::now() < deadline, "no copy started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn prepared_files_carry_size_checksum_and_bytes_transferred() {
    let app = manual_app().await;
    let big = pseudo_random(5 * 1024 * 1024 + 123, 1);
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("empty.bin", Vec::new()),
        ("one.bin", vec![42]),
        ("big.bin", big),
    ];
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    let (token, session) = session_with(&app, "item", &refs).await;
    for (name, _) in &files {
        let info = app.api(&token).prepare_file(&session, name).await;
        assert_eq!(info["status"], "PREPARE_REQUESTED", "{info}");
    }

    let outcomes = drain(&worker(&app)).await;
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
    for o in &outcomes {
        assert!(
            matches!(o, Outcome::Prepared { reused: false, .. }),
            "{o:?}"
        );
    }

    for (name, content) in &files {
        let info = app.api(&token).file_info(&session, name).await;
        let sha = sha256_hex(content);
        assert_eq!(info["status"], "PREPARED", "{info}");
        assert_eq!(info["size"], content.len() as u64, "{info}");
        assert_eq!(info["bytes_transferred"], content.len() as u64, "{info}");
        assert_eq!(
            info["checksum_info"],
            json!({"algorithm": "SHA256", "checksum": sha}),
            "{info}"
        );
        assert!(info["download_endpoint"]["uri"].is_string(), "{info}");
        assert!(info.get("error_message").is_none(), "{info}");
        assert_eq!(&std::fs::read(artifact_path(&app, &sha)).unwrap(), content);
        assert_eq!(attempts(&app, &session, name).await, 1);
    }
    assert_eq!(artifact_count(&app).await, 3);
    assert!(staging_entries(&app).is_empty());
}

#[tokio::test]
async fn background_workers_prepare_on_their_own() {
    let app = spawn_app_with(|s| {
        s.workers.count = 2;
        // Only NOTIFY can make this quick: the polling fallback is far away.
        s.workers.poll_seconds = 600;
    })
    .await;
    let content = pseudo_random(300_000, 2);
    let (token, session) = session_with(&app, "item", &[("disk.vmdk", &content)]).await;
    // Let the listener subscribe before the request it must hear.
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.api(&token).prepare_file(&session, "disk.vmdk").await;
    let info = app
        .api(&token)
        .wait_for(&session, "disk.vmdk", Duration::from_secs(5), |i| {
            i["status"] == "PREPARED"
        })
        .await;
    assert_eq!(info["checksum_info"]["checksum"], sha256_hex(&content));
    assert_eq!(info["size"], content.len() as u64);
}

#[tokio::test]
async fn imports_are_written_straight_to_their_key_verified() {
    let app = manual_app().await;
    let a = pseudo_random(3 << 20, 21);
    let b = pseudo_random(10, 22);
    app.import("lib", "item", &[("a.bin", &a), ("b.bin", &b)])
        .await;
    // Each object under its content address, no temporary file, no other key.
    for bytes in [&a, &b] {
        assert_eq!(
            &std::fs::read(content_path(&app, &sha256_hex(bytes))).unwrap(),
            bytes
        );
    }
    let blobs = app.data_dir.join("content").join("blobs");
    assert_eq!(list(&blobs).len(), 2, "{:?}", list(&blobs));
    assert_eq!(list(&app.data_dir.join("content")).len(), 1);
    // Importing the same bytes again rewrites the same object, verified again.
    app.import("lib", "other", &[("again.bin", &a)]).await;
    assert_eq!(list(&blobs).len(), 2, "{:?}", list(&blobs));
    assert_eq!(
        std::fs::read(content_path(&app, &sha256_hex(&a))).unwrap(),
        a
    );
}

#[tokio::test]
async fn old_temporary_files_are_swept_by_maintenance() {
    let app = manual_app().await;
    let artifacts = transfer_dir(&app).join("artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let old = artifacts.join(format!("{TEMP_PREFIX}crashed"));
    let fresh = artifacts.join(format!("{TEMP_PREFIX}running"));
    std::fs::write(&old, b"partial").unwrap();
    std::fs::write(&fresh, b"partial").unwrap();
    let day_ago = std::time::SystemTime::now() - Duration::from_secs(25 * 3600);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(day_ago)
        .unwrap();
    let report = maintenance_pass(&app.db, &stores(&app), &app.settings)
        .await
        .unwrap();
    assert_eq!(report.staging_deleted, 1, "{report:?}");
    assert!(!old.exists());
    assert!(fresh.exists());
}

#[tokio::test]
async fn corrupt_content_ends_in_error_never_prepared() {
    let app = manual_app().await;
    let good = pseudo_random(200_000, 3);
    let short = pseudo_random(1000, 4);
    let (token, session) = session_with(
        &app,
        "item",
        &[
            ("flipped.bin", &good),
            ("truncated.bin", &short),
            ("gone.bin", b"abc"),
        ],
    )
    .await;
    // Same length, other bytes: only the hash can tell.
    let mut flipped = good.clone();
    flipped[100_000] ^= 0xff;
    std::fs::write(content_path(&app, &sha256_hex(&good)), &flipped).unwrap();
    std::fs::write(content_path(&app, &sha256_hex(&short)), &short[..10]).unwrap();
    std::fs::remove_file(content_path(&app, &sha256_hex(b"abc"))).unwrap();
    for name in ["flipped.bin", "truncated.bin", "gone.bin"] {
        app.api(&token).prepare_file(&session, name).await;
    }

    let outcomes = drain(&worker(&app)).await;
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
    assert!(
        outcomes.iter().all(|o| matches!(o, Outcome::Failed { .. })),
        "{outcomes:?}"
    );

    for (name, id) in [
        ("flipped.bin", "checksum_mismatch"),
        ("truncated.bin", "size_mismatch"),
        ("gone.bin", "content_missing"),
    ] {
        let info = app.api(&token).file_info(&session, name).await;
        assert_eq!(info["status"], "ERROR", "{info}");
        let message = &info["error_message"];
        assert_eq!(
            message["id"],
            format!("com.vmware.content.library.item.downloadsession.file.{id}"),
            "{info}"
        );
        let text = message["default_message"].as_str().unwrap();
        assert!(text.contains(name), "{text}");
        assert!(
            !text.contains(&app.data_dir.display().to_string()),
            "{text}"
        );
        assert!(info.get("checksum_info").is_none(), "{info}");
        assert!(info.get("download_endpoint").is_none(), "{info}");
    }
    // A mismatch is final: no second attempt.
    assert_eq!(attempts(&app, &session, "flipped.bin").await, 1);
    // Nothing was committed under an artifact key, no temporary file is left.
    assert!(list(&transfer_dir(&app).join("artifacts")).is_empty());
    assert_eq!(artifact_count(&app).await, 0);
    assert!(list(&transfer_dir(&app).join("artifacts")).is_empty());
    assert!(staging_entries(&app).is_empty());
}

#[tokio::test]
async fn cancel_during_staging_stops_the_copy() {
    let app = manual_app().await;
    let content = pseudo_random(4 << 20, 5);
    let (token, session) = session_with(&app, "item", &[("disk.vmdk", &content)]).await;
    app.api(&token).prepare_file(&session, "disk.vmdk").await;

    let w = slow_worker(&app);
    let copy = tokio::spawn(async move { w.prepare_one().await });
    wait_for_staging(&app).await;
    // Progress shows through heartbeats while the copy runs.
    let info = app
        .api(&token)
        .wait_for(&session, "disk.vmdk", Duration::from_secs(5), |i| {
            i["bytes_transferred"].as_u64().unwrap_or(0) > 0
        })
        .await;
    assert_eq!(info["status"], "PREPARING", "{info}");
    assert!(info["bytes_transferred"].as_u64().unwrap() < content.len() as u64);

    let r = app.api(&token).cancel(&session).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let outcome = tokio::time::timeout(Duration::from_secs(5), copy)
        .await
        .expect("the copy stops within a heartbeat")
        .unwrap()
        .unwrap();
    assert!(matches!(outcome, Outcome::Lost { .. }), "{outcome:?}");

    let (status, artifact): (String, Option<String>) =
        sqlx::query_as("SELECT status, artifact_sha256 FROM download_files WHERE session_id = $1")
            .bind(Uuid::parse_str(&session).unwrap())
            .fetch_one(pool(&app))
            .await
            .unwrap();
    assert_eq!(status, "ERROR");
    assert!(artifact.is_none());
    assert!(
        staging_entries(&app).is_empty(),
        "{:?}",
        staging_entries(&app)
    );
    assert_eq!(artifact_count(&app).await, 0);
    assert!(!artifact_path(&app, &sha256_hex(&content)).exists());
}

#[tokio::test]
async fn deleting_the_session_during_staging_stops_the_copy() {
    let app = manual_app().await;
    let content = pseudo_random(4 << 20, 6);
    let (token, session) = session_with(&app, "item", &[("disk.vmdk", &content)]).await;
    app.api(&token).prepare_file(&session, "disk.vmdk").await;

    let w = slow_worker(&app);
    let copy = tokio::spawn(async move { w.prepare_one().await });
    wait_for_staging(&app).await;
    let r = app.api(&token).delete_session(&session).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let outcome = tokio::time::timeout(Duration::from_secs(5), copy)
        .await
        .expect("the copy stops within a heartbeat")
        .unwrap()
        .unwrap();
    assert!(matches!(outcome, Outcome::Lost { .. }), "{outcome:?}");
    assert!(staging_entries(&app).is_empty());
    assert_eq!(artifact_count(&app).await, 0);
}

/// Makes every current claim look like its instance died long ago.
async fn lapse_leases(app: &TestApp) {
    sqlx::query(
        "UPDATE download_files SET lease_until = now() - interval '1 second' \
         WHERE status = 'PREPARING'",
    )
    .execute(pool(app))
    .await
    .unwrap();
}

#[tokio::test]
async fn a_lapsed_claim_is_rescued_and_prepared_again() {
    let app = manual_app().await;
    let content = pseudo_random(10_000, 7);
    let (token, session) = session_with(&app, "item", &[("a.bin", &content)]).await;
    app.api(&token).prepare_file(&session, "a.bin").await;

    // An instance claims the file and dies.
    let dead = worker(&app);
    let claim = dead.claim().await.unwrap().expect("a claim");
    assert_eq!(claim.attempts, 1);
    assert_eq!(claim.owner, dead.id());
    assert_eq!(
        app.api(&token).file_info(&session, "a.bin").await["status"],
        "PREPARING"
    );
    // Nothing to take while the lease runs.
    assert_eq!(worker(&app).prepare_one().await.unwrap(), Outcome::Empty);
    let report = maintenance_pass(&app.db, &stores(&app), &app.settings)
        .await
        .unwrap();
    assert_eq!(report.requeued, 0);

    lapse_leases(&app).await;
    let report = maintenance_pass(&app.db, &stores(&app), &app.settings)
        .await
        .unwrap();
    assert_eq!((report.requeued, report.abandoned), (1, 0), "{report:?}");
    assert_eq!(
        app.api(&token).file_info(&session, "a.bin").await["status"],
        "PREPARE_REQUESTED"
    );

    let outcome = worker(&app).prepare_one().await.unwrap();
    assert!(matches!(outcome, Outcome::Prepared { .. }), "{outcome:?}");
    assert_eq!(attempts(&app, &session, "a.bin").await, 2);
    // The dead instance's late writes are fenced off.
    assert!(!app
        .db
        .renew_claim(&claim, Duration::from_secs(30), 5)
        .await
        .unwrap());
    assert_eq!(
        app.api(&token).file_info(&session, "a.bin").await["status"],
        "PREPARED"
    );
}

#[tokio::test]
async fn claims_that_keep_lapsing_end_in_error() {
    let app = spawn_app_with(|s| {
        manual(s);
        s.workers.max_attempts = 2;
    })
    .await;
    let (token, session) = session_with(&app, "item", &[("a.bin", b"data")]).await;
    app.api(&token).prepare_file(&session, "a.bin").await;

    for round in 1..=2 {
        let claim = worker(&app).claim().await.unwrap().expect("a claim");
        assert_eq!(claim.attempts, round);
        lapse_leases(&app).await;
        let report = maintenance_pass(&app.db, &stores(&app), &app.settings)
            .await
            .unwrap();
        assert_eq!(report.requeued + report.abandoned, 1, "{report:?}");
    }
    let info = app.api(&token).file_info(&session, "a.bin").await;
    assert_eq!(info["status"], "ERROR", "{info}");
    let message = &info["error_message"];
    assert_eq!(
        message["id"],
        "com.vmware.content.library.item.downloadsession.file.prepare_abandoned"
    );
    assert!(
        message["default_message"]
            .as_str()
            .unwrap()
            .contains("abandoned 2 times"),
        "{message}"
    );
    assert_eq!(message["args"], json!(["a.bin", "2"]));
    assert_eq!(worker(&app).prepare_one().await.unwrap(), Outcome::Empty);

    // A file in ERROR may be prepared again, with a fresh count.
    app.api(&token).prepare_file(&session, "a.bin").await;
    let outcome = worker(&app).prepare_one().await.unwrap();
    assert!(matches!(outcome, Outcome::Prepared { .. }), "{outcome:?}");
    assert_eq!(attempts(&app, &session, "a.bin").await, 1);
}

#[tokio::test]
async fn write_failures_are_retried_then_reported() {
    let app = spawn_app_with(|s| {
        manual(s);
        s.workers.max_attempts = 2;
    })
    .await;
    let (token, session) = session_with(&app, "item", &[("a.bin", b"payload")]).await;
    app.api(&token).prepare_file(&session, "a.bin").await;
    // A file where the artifacts directory belongs: every copy fails to write.
    std::fs::create_dir_all(transfer_dir(&app)).unwrap();
    std::fs::write(transfer_dir(&app).join("artifacts"), b"in the way").unwrap();

    let w = worker(&app);
    let first = w.prepare_one().await.unwrap();
    assert!(
        matches!(first, Outcome::Retrying { attempts: 1, .. }),
        "{first:?}"
    );
    assert_eq!(
        app.api(&token).file_info(&session, "a.bin").await["status"],
        "PREPARE_REQUESTED"
    );
    let second = w.prepare_one().await.unwrap();
    let Outcome::Failed { message, .. } = second else {
        panic!("{second:?}");
    };
    assert_eq!(
        message.id,
        "com.vmware.content.library.item.downloadsession.file.write_failed"
    );
    assert!(
        message
            .default_message
            .contains("writing the transfer store"),
        "{message:?}"
    );
    assert!(!message.default_message.contains("staging"), "{message:?}");
    let info = app.api(&token).file_info(&session, "a.bin").await;
    assert_eq!(info["status"], "ERROR");
    assert_eq!(info["error_message"]["id"], message.id.as_str());

    std::fs::remove_file(transfer_dir(&app).join("artifacts")).unwrap();
    app.api(&token).prepare_file(&session, "a.bin").await;
    let third = w.prepare_one().await.unwrap();
    assert!(matches!(third, Outcome::Prepared { .. }), "{third:?}");
}

#[tokio::test]
async fn concurrent_workers_claim_each_file_once() {
    let app = manual_app().await;
    let contents: Vec<Vec<u8>> = (0..8).map(|i| pseudo_random(256 * 1024, 100 + i)).collect();
    let names: Vec<String> = (0..8).map(|i| format!("f{i}.bin")).collect();
    let files: Vec<(&str, &[u8])> = names
        .iter()
        .zip(&contents)
        .map(|(n, c)| (n.as_str(), c.as_slice()))
        .collect();
    let (token, session) = session_with(&app, "item", &files).await;
    for name in &names {
        app.api(&token).prepare_file(&session, name).await;
    }
    let mut runs = Vec::new();
    for _ in 0..4 {
        let w = worker(&app);
        runs.push(tokio::spawn(async move { drain(&w).await }));
    }
    let mut prepared = Vec::new();
    for run in runs {
        for o in run.await.unwrap() {
            match o {
                Outcome::Prepared { file, .. } => prepared.push(file),
                other => panic!("{other:?}"),
            }
        }
    }
    prepared.sort();
    assert_eq!(prepared, names);
    for name in &names {
        assert_eq!(attempts(&app, &session, name).await, 1, "{name}");
    }
    assert_eq!(artifact_count(&app).await, 8);
}

#[tokio::test]
async fn two_instances_never_stage_a_file_twice() {
    let first = spawn_app_with(|s| s.workers.count = 2).await;
    let second = spawn_instance(&first.db_url, &first.data_dir, |s| s.workers.count = 2).await;
    let contents: Vec<Vec<u8>> = (0..6).map(|i| pseudo_random(512 * 1024, 200 + i)).collect();
    let names: Vec<String> = (0..6).map(|i| format!("f{i}.bin")).collect();
    let files: Vec<(&str, &[u8])> = names
        .iter()
        .zip(&contents)
        .map(|(n, c)| (n.as_str(), c.as_slice()))
        .collect();
    // Two sessions over the same bytes: both instances race on identical content too.
    let (token, s1) = session_with(&first, "item", &files).await;
    let item: String = sqlx::query_scalar::<_, Uuid>(
        "SELECT library_item_id FROM download_sessions WHERE id = $1",
    )
    .bind(Uuid::parse_str(&s1).unwrap())
    .fetch_one(pool(&first))
    .await
    .unwrap()
    .to_string();
    let s2 = second.api(&token).new_session(&item).await;
    for name in &names {
        first.api(&token).prepare_file(&s1, name).await;
        second.api(&token).prepare_file(&s2, name).await;
    }
    for (app, session) in [(&first, &s1), (&second, &s2)] {
        for (name, content) in names.iter().zip(&contents) {
            let info = app
                .api(&token)
                .wait_for(session, name, Duration::from_secs(20), |i| {
                    i["status"] == "PREPARED"
                })
                .await;
            assert_eq!(info["checksum_info"]["checksum"], sha256_hex(content));
            assert_eq!(
                attempts(app, session, name).await,
                1,
                "{name} claimed twice"
            );
        }
    }
    // One artifact per distinct content, whoever staged it.
    assert_eq!(artifact_count(&first).await, 6);
    assert_eq!(list(&transfer_dir(&first).join("artifacts")).len(), 6);
    assert!(staging_entries(&first).is_empty());
}

#[tokio::test]
async fn identical_content_is_staged_once_and_reused() {
    let app = manual_app().await;
    let content = pseudo_random(1 << 20, 8);
    let sha = sha256_hex(&content);
    let (token, s1) = session_with(&app, "one", &[("disk.vmdk", &content)]).await;
    app.api(&token).prepare_file(&s1, "disk.vmdk").await;
    let w = worker(&app);
    let first = w.prepare_one().await.unwrap();
    assert!(
        matches!(first, Outcome::Prepared { reused: false, .. }),
        "{first:?}"
    );
    let (created, used) = artifact_times(&app, &sha).await.unwrap();

    // Another item, another session, the same bytes under another name.
    let (token2, s2) = session_with(&app, "two", &[("copy.vmdk", &content)]).await;
    app.api(&token2).prepare_file(&s2, "copy.vmdk").await;
    let second = w.prepare_one().await.unwrap();
    assert!(
        matches!(&second, Outcome::Prepared { reused: true, size, .. } if *size == content.len() as i64),
        "{second:?}"
    );
    let (created_after, used_after) = artifact_times(&app, &sha).await.unwrap();
    assert_eq!(created_after, created, "the artifact was not staged again");
    assert!(used_after > used);
    let info = app.api(&token2).file_info(&s2, "copy.vmdk").await;
    assert_eq!(info["status"], "PREPARED");
    assert_eq!(info["checksum_info"]["checksum"], sha);
    assert_eq!(info["bytes_transferred"], content.len() as u64);
    assert_eq!(artifact_count(&app).await, 1);

    // An artifact whose object went missing is staged again, not handed out.
    std::fs::remove_file(artifact_path(&app, &sha)).unwrap();
    let (token3, s3) = session_with(&app, "three", &[("again.vmdk", &content)]).await;
    app.api(&token3).prepare_file(&s3, "again.vmdk").await;
    let third = w.prepare_one().await.unwrap();
    assert!(
        matches!(third, Outcome::Prepared { reused: false, .. }),
        "{third:?}"
    );
    assert_eq!(std::fs::read(artifact_path(&app, &sha)).unwrap(), content);
}

#[tokio::test]
async fn unreferenced_artifacts_are_collected_after_the_grace_period() {
    let app = spawn_app_with(|s| {
        manual(s);
        s.maintenance.artifact_grace_seconds = 0;
    })
    .await;
    let kept = pseudo_random(50_000, 9);
    let dropped = pseudo_random(60_000, 10);
    let (token, keep_session) = session_with(&app, "keep", &[("k.bin", &kept)]).await;
    let (token2, drop_session) = session_with(&app, "drop", &[("d.bin", &dropped)]).await;
    app.api(&token).prepare_file(&keep_session, "k.bin").await;
    app.api(&token2).prepare_file(&drop_session, "d.bin").await;
    assert_eq!(drain(&worker(&app)).await.len(), 2);

    // Everything is referenced: nothing goes.
    let report = maintenance_pass(&app.db, &stores(&app), &app.settings)
        .await
        .unwrap();
    assert_eq!(report.artifacts_deleted, 0);

    let r = app.api(&token2).delete_session(&drop_session).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let report = maintenance_pass(&app.db, &stores(&app), &app.settings)
        .await
        .unwrap();
    assert_eq!(report.artifacts_deleted, 1, "{report:?}");
    assert!(artifact_times(&app, &sha256_hex(&dropped)).await.is_none());
    assert!(!artifact_path(&app, &sha256_hex(&dropped)).exists());
    assert!(artifact_times(&app, &sha256_hex(&kept)).await.is_some());
    assert_eq!(
        std::fs::read(artifact_path(&app, &sha256_hex(&kept))).unwrap(),
        kept
    );
    assert_eq!(
        app.api(&token).file_info(&keep_session, "k.bin").await["status"],
        "PREPARED"
    );

    // Collected bytes are staged afresh when asked for again.
    let (token3, again) = session_with(&app, "again", &[("d.bin", &dropped)]).await;
    app.api(&token3).prepare_file(&again, "d.bin").await;
    let outcome = worker(&app).prepare_one().await.unwrap();
    assert!(
        matches!(outcome, Outcome::Prepared { reused: false, .. }),
        "{outcome:?}"
    );
    assert_eq!(
        std::fs::read(artifact_path(&app, &sha256_hex(&dropped))).unwrap(),
        dropped
    );
}

#[tokio::test]
async fn recently_used_artifacts_outlive_their_sessions() {
    let app = spawn_app_with(|s| {
        manual(s);
        s.maintenance.artifact_grace_seconds = 600;
    })
    .await;
    let content = pseudo_random(10_000, 11);
    let (token, session) = session_with(&app, "item", &[("a.bin", &content)]).await;
    app.api(&token).prepare_file(&session, "a.bin").await;
    assert_eq!(drain(&worker(&app)).await.len(), 1);
    app.api(&token).delete_session(&session).await;
    let report = maintenance_pass(&app.db, &stores(&app), &app.settings)
        .await
        .unwrap();
    assert_eq!(report.artifacts_deleted, 0);
    assert!(artifact_path(&app, &sha256_hex(&content)).exists());
}

#[tokio::test]
async fn stopping_hands_the_claim_back() {
    let app = manual_app().await;
    let content = pseudo_random(4 << 20, 12);
    let (token, session) = session_with(&app, "item", &[("disk.vmdk", &content)]).await;
    app.api(&token).prepare_file(&session, "disk.vmdk").await;

    let stop = CancellationToken::new();
    let w = slow_worker(&app).with_stop(stop.clone());
    let copy = tokio::spawn(async move { w.prepare_one().await });
    wait_for_staging(&app).await;
    let stopped_at = Instant::now();
    stop.cancel();
    let outcome = tokio::time::timeout(Duration::from_secs(2), copy)
        .await
        .expect("a stop is immediate")
        .unwrap()
        .unwrap();
    assert!(matches!(outcome, Outcome::HandedBack { .. }), "{outcome:?}");
    assert!(stopped_at.elapsed() < Duration::from_secs(1));

    let (status, attempts, owner): (String, i32, Option<Uuid>) = sqlx::query_as(
        "SELECT status, attempts, lease_owner FROM download_files WHERE session_id = $1",
    )
    .bind(Uuid::parse_str(&session).unwrap())
    .fetch_one(pool(&app))
    .await
    .unwrap();
    assert_eq!(
        (status.as_str(), attempts, owner),
        ("PREPARE_REQUESTED", 0, None)
    );
    assert!(staging_entries(&app).is_empty());

    // Another instance picks it up where this one left off.
    let outcome = worker(&app).prepare_one().await.unwrap();
    assert!(matches!(outcome, Outcome::Prepared { .. }), "{outcome:?}");
}

#[tokio::test]
async fn spawned_workers_wake_on_notify_and_stop_promptly() {
    let app = manual_app().await;
    let mut settings = app.settings.clone();
    settings.workers.count = 2;
    settings.workers.poll_seconds = 600;
    let stop = CancellationToken::new();
    let tasks = download_sessions::worker::spawn(&app.db, &stores(&app), &settings, &stop);
    assert_eq!(tasks.len(), 4, "listener, two workers, maintenance");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let content = pseudo_random(100_000, 13);
    let (token, session) = session_with(&app, "item", &[("a.bin", &content)]).await;
    app.api(&token).prepare_file(&session, "a.bin").await;
    app.api(&token)
        .wait_for(&session, "a.bin", Duration::from_secs(5), |i| {
            i["status"] == "PREPARED"
        })
        .await;

    stop.cancel();
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .expect("background tasks end when stopped")
            .unwrap();
    }
}

#[tokio::test]
async fn a_copy_takes_over_an_artifact_being_collected() {
    let app = manual_app().await;
    let content = pseudo_random(70_000, 14);
    let sha = sha256_hex(&content);
    let (token, first) = session_with(&app, "one", &[("a.bin", &content)]).await;
    app.api(&token).prepare_file(&first, "a.bin").await;
    assert_eq!(drain(&worker(&app)).await.len(), 1);
    let old = artifact_path(&app, &sha);
    app.api(&token).delete_session(&first).await;
    // A collector on another instance has marked the artifact and is about to
    // delete its object.
    sqlx::query("UPDATE artifacts SET deleting_since = now() WHERE sha256 = $1")
        .bind(&sha)
        .execute(pool(&app))
        .await
        .unwrap();

    // A copy of the same bytes need not wait: its object has a key of its own.
    let (token2, second) = session_with(&app, "two", &[("b.bin", &content)]).await;
    app.api(&token2).prepare_file(&second, "b.bin").await;
    let outcome = tokio::time::timeout(Duration::from_secs(5), worker(&app).prepare_one())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(outcome, Outcome::Prepared { reused: false, .. }),
        "{outcome:?}"
    );
    // The collector finishes: the object it marked, then its (fenced) row delete.
    std::fs::remove_file(&old).unwrap();
    sqlx::query(
        "DELETE FROM artifacts WHERE sha256 = $1 AND transfer_key = $2 \
         AND deleting_since IS NOT NULL",
    )
    .bind(&sha)
    .bind(format!(
        "artifacts/{}",
        old.file_name().unwrap().to_str().unwrap()
    ))
    .execute(pool(&app))
    .await
    .unwrap();

    assert_eq!(std::fs::read(artifact_path(&app, &sha)).unwrap(), content);
    let (deleting,): (Option<DateTime<Utc>>,) =
        sqlx::query_as("SELECT deleting_since FROM artifacts WHERE sha256 = $1")
            .bind(&sha)
            .fetch_one(pool(&app))
            .await
            .unwrap();
    assert!(deleting.is_none());
    let info = app.api(&token2).file_info(&second, "b.bin").await;
    assert_eq!(info["status"], "PREPARED");
    let uri = info["download_endpoint"]["uri"].as_str().unwrap();
    let got = app.client.get(uri).send().await.unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(&got.bytes().await.unwrap()[..], &content[..]);
}

#[tokio::test]
async fn a_collection_left_half_done_is_finished_later() {
    let app = spawn_app_with(|s| {
        manual(s);
        s.maintenance.artifact_grace_seconds = 3600;
    })
    .await;
    let content = pseudo_random(5_000, 15);
    let sha = sha256_hex(&content);
    let (token, session) = session_with(&app, "item", &[("a.bin", &content)]).await;
    app.api(&token).prepare_file(&session, "a.bin").await;
    assert_eq!(drain(&worker(&app)).await.len(), 1);
    app.api(&token).delete_session(&session).await;
    // Marked by a collector that died ten minutes ago.
    sqlx::query(
        "UPDATE artifacts SET deleting_since = now() - interval '10 minutes' WHERE sha256 = $1",
    )
    .bind(&sha)
    .execute(pool(&app))
    .await
    .unwrap();
    let report = maintenance_pass(&app.db, &stores(&app), &app.settings)
        .await
        .unwrap();
    assert_eq!(report.artifacts_deleted, 1, "{report:?}");
    assert!(!artifact_path(&app, &sha).exists());
}
