//! Background work of an instance: prepare workers (woken by NOTIFY, polling as
//! a fallback), the listener that wakes them, and the periodic maintenance pass.
//!
//! Nothing here is shared between instances except through PostgreSQL: claims
//! and artifacts live in the database, bytes in the object stores. Background
//! work holds its own handles (database, buckets, settings), built at start-up.

mod maintenance;
mod prepare;
pub mod stage;

use std::{sync::Arc, time::Duration};

use rand::Rng;
use tokio::{sync::Notify, task::JoinHandle};
use tokio_util::sync::CancellationToken;

pub use crate::store::worker::Claim;
pub use maintenance::{maintenance_pass, Maintenance, MaintenanceReport};
pub use prepare::{Outcome, Worker};
pub use stage::StageTuning;

use crate::{config::Settings, storage::Buckets, store::Db};

/// Longest pause after a database error before a worker or the listener tries again.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Starts this instance's background tasks: `workers.count` prepare workers and
/// their listener (none when the count is 0), and the maintenance loop. They
/// stop when `stop` is cancelled; running copies hand their claims back first.
pub fn spawn(
    db: &Db,
    buckets: &Buckets,
    settings: &Settings,
    stop: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    let count = settings.workers.count;
    if count > 0 {
        let wake = Arc::new(Notify::new());
        tasks.push(tokio::spawn(listen(db.clone(), wake.clone(), stop.clone())));
        let poll = Duration::from_secs(settings.workers.poll_seconds);
        for _ in 0..count {
            let worker = Worker::new(db, buckets, &settings.workers).with_stop(stop.clone());
            tasks.push(tokio::spawn(work(worker, wake.clone(), poll, stop.clone())));
        }
    }
    let every = Duration::from_secs(settings.maintenance.interval_seconds);
    tasks.push(tokio::spawn(maintain(
        Maintenance::new(db, buckets, settings),
        every,
        stop.clone(),
    )));
    tracing::info!(workers = count, "background work started");
    tasks
}

/// One worker's loop: drains the queue, then sleeps until woken or the poll period ends.
async fn work(worker: Worker, wake: Arc<Notify>, poll: Duration, stop: CancellationToken) {
    let mut backoff = Duration::from_secs(1);
    while !stop.is_cancelled() {
        // Registered before the claim, so a NOTIFY sent while it runs is not lost.
        let woken = wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        match worker.prepare_one().await {
            Ok(Outcome::Empty) => {
                backoff = Duration::from_secs(1);
                tokio::select! {
                    _ = &mut woken => {}
                    _ = tokio::time::sleep(jitter(poll)) => {}
                    _ = stop.cancelled() => {}
                }
            }
            Ok(Outcome::HandedBack { .. }) => break,
            Ok(_) => backoff = Duration::from_secs(1),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), retry_in_s = backoff.as_secs(),
                    "prepare worker cannot reach the database");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.cancelled() => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    tracing::debug!(worker = %worker.id(), "prepare worker stopped");
}

/// Turns NOTIFYs on the prepare channel into wake-ups of this instance's idle
/// workers. Reconnects after losing the database; every reconnect wakes the
/// workers too, since notifications sent meanwhile are lost.
async fn listen(db: Db, wake: Arc<Notify>, stop: CancellationToken) {
    let mut backoff = Duration::from_secs(1);
    while !stop.is_cancelled() {
        let mut listener = match db.prepare_listener().await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = ?e, retry_in_s = backoff.as_secs(),
                    "cannot listen for prepare requests; workers poll meanwhile");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.cancelled() => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        backoff = Duration::from_secs(1);
        wake.notify_waiters();
        loop {
            let received = tokio::select! {
                r = listener.try_recv() => r,
                _ = stop.cancelled() => return,
            };
            match received {
                Ok(Some(_)) => wake.notify_waiters(),
                Ok(None) => {
                    // Connection lost; the next try_recv reconnects.
                    tracing::warn!("prepare listener lost its connection; reconnecting");
                    wake.notify_waiters();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "prepare listener failed; reconnecting");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.cancelled() => return,
                    }
                    break;
                }
            }
        }
    }
}

/// Runs a maintenance pass every `every` (jittered, so instances spread out).
async fn maintain(mut maintenance: Maintenance, every: Duration, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(jitter(every)) => {}
            _ = stop.cancelled() => return,
        }
        let pass = tokio::select! {
            r = maintenance.pass() => r,
            _ = stop.cancelled() => return,
        };
        if let Err(e) = pass {
            tracing::warn!(error = %format!("{e:#}"), "maintenance pass failed");
        }
    }
}

/// `d` give or take 10%.
fn jitter(d: Duration) -> Duration {
    d.mul_f64(rand::thread_rng().gen_range(0.9..1.1))
}
