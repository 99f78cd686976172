//! The per-instance validity cache: which login tokens and download sessions are
//! live, with what the data plane needs to serve a URI, and their lazy renewals.
//!
//! Reads write nothing in the steady state. An entry is trusted for at most
//! [`MAX_STALENESS`] after it was read, and only while this instance's LISTEN
//! connection on the invalidation channel is up: the triggers of migration
//! 0010 publish every change of a cached row, whoever makes it, and every
//! instance drops what a notification names on receipt. Activity renews a
//! lease or an idle expiry only when the stored expiry has fallen behind by
//! more than the renewal granularity ([`granularity`]); such a write does not
//! wait for the WAL flush.

mod cache;

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use cache::{Cache, Claim, Lookup};
pub use cache::{MAX_STALENESS, REFRESH_AHEAD};

use crate::{
    config::Settings,
    domain::{Caller, FileName, ItemId, SessionId},
    store::{
        sessions::SessionRow,
        validity::{CachedFile, LoginLoad, Renewed, SessionLoad},
        Db, DbError,
    },
};

/// The renewal granularity of a timeout: a tenth of it, at most 5 s. A lease
/// renewal is written only once the stored expiry lags `now + timeout` by more
/// than this, so a session or login expires between `timeout - granularity`
/// and `timeout` after its last activity.
pub fn granularity(timeout: Duration) -> Duration {
    (timeout / 10).min(Duration::from_secs(5))
}

/// A live login as the cache holds it.
#[derive(Debug)]
pub struct LoginEntry {
    pub caller: Caller,
    pub load: LoginLoad,
    /// When the token stops working, on this instance's monotonic clock.
    expires: Instant,
    /// When a renewal is due (None: it can no longer be extended).
    renew_at: Option<Instant>,
}

impl LoginEntry {
    fn new(load: LoginLoad, sent: Instant) -> LoginEntry {
        let caller = Caller {
            user_id: load.user_id,
            name: load.name.clone(),
            privileges: load
                .privileges
                .iter()
                .filter_map(|p| p.parse().ok())
                .collect(),
        };
        LoginEntry {
            caller,
            expires: after(sent, load.expires_in),
            renew_at: load.renew_in.map(|s| after(sent, s)),
            load,
        }
    }

    fn live(&self) -> bool {
        Instant::now() < self.expires
    }

    fn renewal_due(&self) -> bool {
        self.renew_at.is_some_and(|at| Instant::now() >= at)
    }

    fn renewed(&self, r: &Renewed, sent: Instant) -> LoginEntry {
        let mut load = self.load.clone();
        load.last_used_at = chrono::Utc::now();
        load.expires_in = r.expires_in;
        load.renew_in = r.renew_in;
        LoginEntry {
            caller: self.caller.clone(),
            expires: after(sent, r.expires_in),
            renew_at: r.renew_in.map(|s| after(sent, s)),
            load,
        }
    }
}

/// A live download session (any state) with its files, as the cache holds it.
#[derive(Debug)]
pub struct SessionEntry {
    pub row: SessionRow,
    pub files: Vec<CachedFile>,
    /// When the session expires, on this instance's monotonic clock.
    expires: Instant,
}

impl SessionEntry {
    fn new(load: SessionLoad, sent: Instant) -> SessionEntry {
        SessionEntry {
            row: load.row,
            files: load.files,
            expires: after(sent, load.expires_in),
        }
    }

    fn live(&self) -> bool {
        Instant::now() < self.expires
    }

    /// Time left before the session expires unless renewed.
    pub fn remaining(&self) -> Duration {
        self.expires.saturating_duration_since(Instant::now())
    }

    pub fn file(&self, name: &FileName) -> Option<&CachedFile> {
        self.files.iter().find(|f| f.state.name == name.as_str())
    }
}

fn counted(kind: &str, answer: &str) {
    crate::metrics::metrics()
        .validity_lookups
        .with_label_values(&[kind, answer])
        .inc();
}

fn renewal_written(kind: &str) {
    crate::metrics::metrics()
        .lease_renewals
        .with_label_values(&[kind])
        .inc();
}

/// `sent + seconds`, never before `sent` (a negative or absurd value is "now").
fn after(sent: Instant, seconds: f64) -> Instant {
    sent + Duration::try_from_secs_f64(seconds).unwrap_or_default()
}

/// Shared, cheaply cloned handle to this instance's cache.
#[derive(Clone)]
pub struct Validity {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    logins: Cache<[u8; 32], LoginEntry>,
    sessions: Cache<SessionId, SessionEntry>,
    /// The epoch entries are trusted in; 0 while not listening.
    epoch: Arc<AtomicU64>,
    epochs: AtomicU64,
    lease: Duration,
    idle: Duration,
    max_lifetime: Duration,
    /// Name of the LISTEN connection in `pg_stat_activity`.
    listener_name: String,
}

impl Validity {
    pub fn new(db: Db, settings: &Settings) -> Validity {
        let epoch = Arc::new(AtomicU64::new(0));
        Validity {
            inner: Arc::new(Inner {
                db,
                logins: Cache::new(settings.cache.max_logins, epoch.clone()),
                sessions: Cache::new(settings.cache.max_sessions, epoch.clone()),
                epoch,
                epochs: AtomicU64::new(0),
                lease: settings.session_timeout(),
                idle: Duration::from_secs(settings.login.idle_timeout_seconds),
                max_lifetime: Duration::from_secs(settings.login.max_lifetime_seconds),
                listener_name: format!("dls-validity {}", Uuid::new_v4()),
            }),
        }
    }

    fn db(&self) -> &Db {
        &self.inner.db
    }

    /// The session lease activity grants.
    pub fn lease(&self) -> Duration {
        self.inner.lease
    }

    /// `application_name` of this instance's LISTEN connection.
    pub fn listener_name(&self) -> &str {
        &self.inner.listener_name
    }

    /// Whether cached entries may be used now (the LISTEN connection is up).
    pub fn trusted(&self) -> bool {
        self.inner.epoch.load(Ordering::Acquire) != 0
    }

    // ----------------------------------------------------------------- logins

    /// The live login behind a token hash, its idle expiry renewed when due
    /// (any authenticated request is activity of its login).
    pub async fn login(&self, hash: &[u8; 32]) -> Result<Option<Arc<LoginEntry>>, DbError> {
        let cache = &self.inner.logins;
        let entry = match cache.get(hash) {
            Lookup::Fresh(e) if e.live() => {
                counted("login", "cache");
                e
            }
            Lookup::Refresh(e) => match self.load_login(hash, true).await {
                Ok(Some(fresh)) => fresh,
                Ok(None) => return Ok(None),
                Err(err) => {
                    cache.release(hash);
                    // The entry is still within the staleness bound.
                    if !e.live() {
                        return Err(err);
                    }
                    e
                }
            },
            _ => match self.load_login(hash, false).await? {
                Some(e) => e,
                None => return Ok(None),
            },
        };
        if !entry.renewal_due() {
            return Ok(Some(entry));
        }
        Ok(Some(self.renew_login(hash, entry).await))
    }

    async fn load_login(
        &self,
        hash: &[u8; 32],
        refreshing: bool,
    ) -> Result<Option<Arc<LoginEntry>>, DbError> {
        let cache = &self.inner.logins;
        counted("login", "database");
        let ticket = cache.ticket(hash);
        let i = &self.inner;
        let loaded = self
            .db()
            .load_login(hash, i.idle, i.max_lifetime, granularity(i.idle))
            .await?;
        let Some(load) = loaded else {
            cache.remove(hash);
            return Ok(None);
        };
        let entry = Arc::new(LoginEntry::new(load, ticket.sent));
        if !cache.insert(*hash, entry.clone(), ticket) && refreshing {
            cache.release(hash);
        }
        Ok(Some(entry))
    }

    async fn renew_login(&self, hash: &[u8; 32], entry: Arc<LoginEntry>) -> Arc<LoginEntry> {
        let cache = &self.inner.logins;
        let cached = match cache.claim(hash) {
            Claim::Busy => return entry,
            Claim::Claimed => true,
            Claim::Absent => false,
        };
        let i = &self.inner;
        let sent = Instant::now();
        match self
            .db()
            .renew_login(hash, i.idle, i.max_lifetime, granularity(i.idle))
            .await
        {
            Ok(Some(r)) => {
                renewal_written("login");
                let renewed = Arc::new(entry.renewed(&r, sent));
                if cached {
                    cache.update(hash, |_| entry.renewed(&r, sent));
                }
                renewed
            }
            Ok(None) => {
                // Renewed elsewhere just now (or gone): read it again next time.
                cache.remove(hash);
                entry
            }
            Err(e) => {
                // Best effort: the next request tries again; the token lives on meanwhile.
                tracing::warn!(error = ?e, "cannot renew a login's idle expiry");
                if cached {
                    cache.release(hash);
                }
                entry
            }
        }
    }

    /// Drops a login this instance just changed (the notification follows).
    pub fn forget_login(&self, hash: &[u8; 32]) {
        self.inner.logins.remove(hash);
    }

    // --------------------------------------------------------------- sessions

    /// The live session `id` (any state), from the cache when it may be
    /// trusted. Not renewed: call [`Validity::renew`] once the operation succeeded.
    pub async fn session(&self, id: SessionId) -> Result<Option<Arc<SessionEntry>>, DbError> {
        let cache = &self.inner.sessions;
        match cache.get(&id) {
            Lookup::Fresh(e) if e.live() => {
                counted("session", "cache");
                Ok(Some(e))
            }
            Lookup::Refresh(e) => match self.load_session(id, true).await {
                Err(err) => {
                    cache.release(&id);
                    if e.live() {
                        Ok(Some(e))
                    } else {
                        Err(err)
                    }
                }
                other => other,
            },
            // Expired as far as this instance knows: another may have renewed it.
            _ => self.load_session(id, false).await,
        }
    }

    async fn load_session(
        &self,
        id: SessionId,
        refreshing: bool,
    ) -> Result<Option<Arc<SessionEntry>>, DbError> {
        let cache = &self.inner.sessions;
        counted("session", "database");
        let ticket = cache.ticket(&id);
        let Some(load) = self.db().load_session(id).await? else {
            cache.remove(&id);
            return Ok(None);
        };
        let entry = Arc::new(SessionEntry::new(load, ticket.sent));
        if !cache.insert(id, entry.clone(), ticket) && refreshing {
            cache.release(&id);
        }
        Ok(Some(entry))
    }

    /// Activity on the session: writes a renewal when the stored expiry lags
    /// `now + lease` by more than the granularity, else nothing. Best effort:
    /// a renewal that cannot be written now is tried again by the next activity.
    pub async fn renew(&self, entry: Arc<SessionEntry>) -> Arc<SessionEntry> {
        let i = &self.inner;
        let g = granularity(i.lease);
        // Due once the stored expiry is more than `g` behind `now + lease`.
        if entry.remaining() + g > i.lease {
            return entry;
        }
        let cache = &i.sessions;
        let id = entry.row.id;
        let cached = match cache.claim(&id) {
            Claim::Busy => return entry,
            Claim::Claimed => true,
            Claim::Absent => false,
        };
        let sent = Instant::now();
        match self.db().renew_session(id, i.lease, g).await {
            Ok(Some(r)) => {
                renewal_written("session");
                let renewed = |old: &SessionEntry| {
                    let mut row = old.row.clone();
                    row.expiration_time = r.expires_at;
                    SessionEntry {
                        row,
                        files: old.files.clone(),
                        expires: after(sent, r.expires_in),
                    }
                };
                if cached {
                    cache.update(&id, renewed);
                }
                Arc::new(renewed(&entry))
            }
            Ok(None) => {
                cache.remove(&id);
                entry
            }
            Err(e) => {
                tracing::warn!(session = %id, error = ?e, "cannot renew a session's lease");
                if cached {
                    cache.release(&id);
                }
                entry
            }
        }
    }

    /// Drops a session this instance just changed, so its next read here sees
    /// the change even before the notification arrives.
    pub fn forget_session(&self, id: SessionId) {
        self.inner.sessions.remove(&id);
    }

    /// Drops the sessions of an item this instance just deleted.
    pub fn forget_item_sessions(&self, item: ItemId) {
        self.inner
            .sessions
            .remove_where(|e| e.row.library_item_id == item);
    }

    /// Drops every cached session (a library this instance just deleted: the
    /// cache does not know which items were its own).
    pub fn forget_all_sessions(&self) {
        self.inner.sessions.clear();
    }

    // ----------------------------------------------------------- invalidation

    /// Applies one notification of the invalidation channel.
    pub fn apply(&self, payload: &str) {
        crate::metrics::metrics().validity_invalidations.inc();
        let i = &self.inner;
        let (kind, what) = payload.split_once(':').unwrap_or(("", ""));
        match kind {
            "l" => match hex::decode(what)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
            {
                Some(hash) => i.logins.remove(&hash),
                None => self.drop_all(payload),
            },
            "u" => match Uuid::parse_str(what) {
                Ok(user) => {
                    i.logins.remove_where(|e| e.caller.user_id == user);
                    i.sessions.remove_where(|e| e.row.owner_id == user);
                }
                Err(_) => self.drop_all(payload),
            },
            "s" => match Uuid::parse_str(what) {
                Ok(id) => i.sessions.remove(&SessionId(id)),
                Err(_) => self.drop_all(payload),
            },
            "a" => i.sessions.remove_where(|e| {
                e.files
                    .iter()
                    .any(|f| f.staged.as_ref().is_some_and(|s| s.sha256 == what))
            }),
            _ => self.drop_all(payload),
        }
    }

    /// A notification this version does not understand (a newer instance's):
    /// whatever it names, nothing cached may outlive it.
    fn drop_all(&self, payload: &str) {
        tracing::warn!(payload, "unknown invalidation; dropping the whole cache");
        self.inner.logins.clear();
        self.inner.sessions.clear();
    }

    /// Starts the listener that keeps the cache trusted, and the sweeper that
    /// frees entries past the staleness bound. Both stop with `stop`.
    pub fn spawn(&self, stop: &CancellationToken) -> Vec<JoinHandle<()>> {
        vec![
            tokio::spawn(self.clone().listen(stop.clone())),
            tokio::spawn(self.clone().sweep(stop.clone())),
        ]
    }

    /// Holds a LISTEN connection; while it is down nothing cached is trusted,
    /// and each new connection starts over with an empty cache, since
    /// notifications sent meanwhile are lost.
    async fn listen(self, stop: CancellationToken) {
        const FIRST_RETRY: Duration = Duration::from_millis(100);
        const LAST_RETRY: Duration = Duration::from_secs(2);
        let i = &self.inner;
        let mut backoff = FIRST_RETRY;
        let mut was_down = false;
        while !stop.is_cancelled() {
            i.epoch.store(0, Ordering::Release);
            let mut listener = match tokio::select! {
                l = self.db().validity_listener(&i.listener_name) => l,
                _ = stop.cancelled() => return,
            } {
                Ok(l) => l,
                Err(e) => {
                    if !was_down {
                        tracing::warn!(error = ?e, "validity cache cannot listen; every request asks the database");
                    }
                    was_down = true;
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.cancelled() => return,
                    }
                    backoff = (backoff * 2).min(LAST_RETRY);
                    continue;
                }
            };
            backoff = FIRST_RETRY;
            i.logins.clear();
            i.sessions.clear();
            i.epoch.store(
                i.epochs.fetch_add(1, Ordering::AcqRel) + 1,
                Ordering::Release,
            );
            if was_down {
                tracing::info!("validity cache listening again");
            }
            loop {
                let received = tokio::select! {
                    r = listener.try_recv() => r,
                    _ = stop.cancelled() => return,
                };
                match received {
                    Ok(Some(n)) => self.apply(n.payload()),
                    Ok(None) | Err(_) => {
                        i.epoch.store(0, Ordering::Release);
                        tracing::warn!("validity cache lost its LISTEN connection; reconnecting");
                        was_down = true;
                        break;
                    }
                }
            }
        }
    }

    async fn sweep(self, stop: CancellationToken) {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = stop.cancelled() => return,
            }
            self.inner.logins.sweep();
            self.inner.sessions.sweep();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn granularity_is_a_tenth_of_the_timeout_at_most_five_seconds() {
        assert_eq!(
            granularity(Duration::from_secs(300)),
            Duration::from_secs(5)
        );
        assert_eq!(
            granularity(Duration::from_secs(1800)),
            Duration::from_secs(5)
        );
        assert_eq!(granularity(Duration::from_secs(20)), Duration::from_secs(2));
        assert_eq!(
            granularity(Duration::from_secs(1)),
            Duration::from_millis(100)
        );
    }
}
