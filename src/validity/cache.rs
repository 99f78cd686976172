//! A bounded, sharded map of entries that are trusted only while they are
//! fresh and the instance is listening for invalidations.
//!
//! Three rules make a cached answer safe:
//! - **freshness**: an entry is used for at most [`MAX_STALENESS`] after the
//!   query that loaded it was sent; the first use after [`REFRESH_AHEAD`]
//!   reloads it, so a busy key never goes stale and never sees a stampede;
//! - **epochs**: entries belong to the epoch of the listening connection they
//!   were loaded under; while no connection listens the epoch is 0 and nothing
//!   is trusted or stored, and a new connection starts a new, empty epoch;
//! - **tickets**: a load takes a ticket (its shard's invalidation count) before
//!   it queries and stores its answer only if no invalidation touched the
//!   shard meanwhile, so an answer read before a change cannot outlive the
//!   change's notification.
//!
//! Memory is bounded by `capacity` entries: a full shard first drops entries
//! that can no longer be trusted, then the least recently used of a sample.

use std::{
    collections::HashMap,
    hash::{BuildHasher, Hash, RandomState},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::{Duration, Instant},
};

/// The longest an entry is used without asking the database again.
pub const MAX_STALENESS: Duration = Duration::from_secs(1);
/// Age from which the next use reloads an entry while others still use it.
pub const REFRESH_AHEAD: Duration = Duration::from_millis(750);
/// Shards: lock contention stays low with a few dozen request threads.
const SHARDS: usize = 32;
/// Entries sampled to find one to evict when a shard is full of trusted entries.
const EVICTION_SAMPLE: usize = 8;

struct Slot<V> {
    value: Arc<V>,
    loaded: Instant,
    epoch: u64,
    used: u64,
    /// A reload (refresh ahead) or a renewal is in flight: others do not start another.
    busy: bool,
}

struct Shard<K, V> {
    map: HashMap<K, Slot<V>>,
    invalidations: u64,
}

/// What a lookup found.
pub enum Lookup<V> {
    /// Trusted as it is.
    Fresh(Arc<V>),
    /// Trusted, and the caller was chosen to reload it now (others go on using it).
    Refresh(Arc<V>),
    /// Not cached, or no longer trustworthy: load it.
    Miss,
}

/// What [`Cache::claim`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The caller holds the entry's claim; `update` or `release` gives it back.
    Claimed,
    /// Another request is renewing or reloading it.
    Busy,
    /// Not cached: the caller acts alone (the database decides).
    Absent,
}

/// Taken before a load; the load's answer is stored only if it is still good.
#[derive(Clone, Copy, Debug)]
pub struct Ticket {
    shard: usize,
    invalidations: u64,
    epoch: u64,
    pub sent: Instant,
}

pub struct Cache<K, V> {
    shards: Box<[Mutex<Shard<K, V>>]>,
    per_shard: usize,
    hasher: RandomState,
    /// 0 while nothing may be trusted (no listening connection).
    epoch: Arc<AtomicU64>,
    tick: AtomicU64,
}

impl<K: Hash + Eq + Clone, V> Cache<K, V> {
    /// A cache of at most `capacity` entries (0: nothing is ever stored),
    /// trusting entries of the epoch `epoch` holds.
    pub fn new(capacity: usize, epoch: Arc<AtomicU64>) -> Cache<K, V> {
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    map: HashMap::new(),
                    invalidations: 0,
                })
            })
            .collect();
        Cache {
            shards,
            per_shard: capacity.div_ceil(SHARDS),
            hasher: RandomState::new(),
            epoch,
            tick: AtomicU64::new(0),
        }
    }

    fn shard_of(&self, key: &K) -> usize {
        (self.hasher.hash_one(key) as usize) % SHARDS
    }

    fn lock(&self, shard: usize) -> MutexGuard<'_, Shard<K, V>> {
        // A panic while holding a shard cannot leave it inconsistent (every
        // update is a single map operation), so a poisoned lock is still usable.
        self.shards[shard]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn current_epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The entry for `key` if it may be used now.
    pub fn get(&self, key: &K) -> Lookup<V> {
        if self.per_shard == 0 {
            return Lookup::Miss;
        }
        let epoch = self.current_epoch();
        if epoch == 0 {
            return Lookup::Miss;
        }
        let tick = self.tick.fetch_add(1, Ordering::Relaxed);
        let mut shard = self.lock(self.shard_of(key));
        let Some(slot) = shard.map.get_mut(key) else {
            return Lookup::Miss;
        };
        let age = slot.loaded.elapsed();
        if slot.epoch != epoch || age >= MAX_STALENESS {
            return Lookup::Miss;
        }
        slot.used = tick;
        if age >= REFRESH_AHEAD && !slot.busy {
            slot.busy = true;
            return Lookup::Refresh(slot.value.clone());
        }
        Lookup::Fresh(slot.value.clone())
    }

    /// Taken just before the query of a load.
    pub fn ticket(&self, key: &K) -> Ticket {
        let shard = self.shard_of(key);
        // The epoch is read before the count: an invalidation or a new epoch
        // after this point makes `insert` refuse the answer.
        let epoch = self.current_epoch();
        let invalidations = self.lock(shard).invalidations;
        Ticket {
            shard,
            invalidations,
            epoch,
            sent: Instant::now(),
        }
    }

    /// Stores a load's answer unless an invalidation or a reconnection came
    /// after its ticket. Returns whether it was stored.
    pub fn insert(&self, key: K, value: Arc<V>, ticket: Ticket) -> bool {
        if self.per_shard == 0 || ticket.epoch == 0 {
            return false;
        }
        let mut shard = self.lock(ticket.shard);
        if shard.invalidations != ticket.invalidations || self.current_epoch() != ticket.epoch {
            return false;
        }
        if shard.map.len() >= self.per_shard && !shard.map.contains_key(&key) {
            self.make_room(&mut shard, ticket.epoch);
        }
        let used = self.tick.fetch_add(1, Ordering::Relaxed);
        shard.map.insert(
            key,
            Slot {
                value,
                loaded: ticket.sent,
                epoch: ticket.epoch,
                used,
                busy: false,
            },
        );
        true
    }

    fn make_room(&self, shard: &mut Shard<K, V>, epoch: u64) {
        shard
            .map
            .retain(|_, s| s.epoch == epoch && s.loaded.elapsed() < MAX_STALENESS);
        if shard.map.len() < self.per_shard {
            return;
        }
        let victim = shard
            .map
            .iter()
            .take(EVICTION_SAMPLE)
            .min_by_key(|(_, s)| s.used)
            .map(|(k, _)| k.clone());
        if let Some(k) = victim {
            shard.map.remove(&k);
        }
    }

    /// Claims the entry for a renewal, so that one request per key writes it.
    pub fn claim(&self, key: &K) -> Claim {
        let mut shard = self.lock(self.shard_of(key));
        match shard.map.get_mut(key) {
            Some(slot) if slot.busy => Claim::Busy,
            Some(slot) => {
                slot.busy = true;
                Claim::Claimed
            }
            None => Claim::Absent,
        }
    }

    /// Releases a claim without changing the entry (a reload or renewal failed).
    pub fn release(&self, key: &K) {
        if let Some(slot) = self.lock(self.shard_of(key)).map.get_mut(key) {
            slot.busy = false;
        }
    }

    /// Replaces the value of a present entry (after a renewal this instance
    /// wrote) and releases its claim; the entry keeps its load time.
    pub fn update(&self, key: &K, f: impl FnOnce(&V) -> V) {
        if let Some(slot) = self.lock(self.shard_of(key)).map.get_mut(key) {
            slot.value = Arc::new(f(&slot.value));
            slot.busy = false;
        }
    }

    /// Drops `key` (an invalidation): a load in flight for it will not store its answer.
    pub fn remove(&self, key: &K) {
        let mut shard = self.lock(self.shard_of(key));
        shard.invalidations += 1;
        shard.map.remove(key);
    }

    /// Drops every entry `matches` (invalidations by user or artifact): loads
    /// in flight for any key will not store their answers.
    pub fn remove_where(&self, matches: impl Fn(&V) -> bool) {
        for i in 0..SHARDS {
            let mut shard = self.lock(i);
            shard.invalidations += 1;
            shard.map.retain(|_, s| !matches(&s.value));
        }
    }

    /// Drops everything (a new epoch begins: notifications may have been lost).
    pub fn clear(&self) {
        self.remove_where(|_| true);
    }

    /// Drops entries no longer trusted, so memory follows the keys in use.
    pub fn sweep(&self) {
        let epoch = self.current_epoch();
        for i in 0..SHARDS {
            self.lock(i)
                .map
                .retain(|_, s| s.epoch == epoch && s.loaded.elapsed() < MAX_STALENESS);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        (0..SHARDS).map(|i| self.lock(i).map.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(capacity: usize) -> (Cache<u32, &'static str>, Arc<AtomicU64>) {
        let epoch = Arc::new(AtomicU64::new(1));
        (Cache::new(capacity, epoch.clone()), epoch)
    }

    fn fresh(l: Lookup<&'static str>) -> Option<&'static str> {
        match l {
            Lookup::Fresh(v) | Lookup::Refresh(v) => Some(*v),
            Lookup::Miss => None,
        }
    }

    #[test]
    fn stores_and_answers_fresh_entries() {
        let (c, _) = cache(100);
        let t = c.ticket(&1);
        assert!(c.insert(1, Arc::new("one"), t));
        assert_eq!(fresh(c.get(&1)), Some("one"));
        assert_eq!(fresh(c.get(&2)), None);
    }

    #[test]
    fn an_invalidation_during_a_load_wins() {
        let (c, _) = cache(100);
        let t = c.ticket(&1);
        c.remove(&1);
        assert!(!c.insert(1, Arc::new("stale"), t));
        assert_eq!(fresh(c.get(&1)), None);
    }

    #[test]
    fn nothing_is_trusted_without_a_listener_and_a_new_epoch_starts_empty() {
        let (c, epoch) = cache(100);
        let t = c.ticket(&1);
        assert!(c.insert(1, Arc::new("one"), t));
        epoch.store(0, Ordering::Release);
        assert_eq!(fresh(c.get(&1)), None);
        let t = c.ticket(&1);
        assert!(!c.insert(1, Arc::new("while down"), t));
        epoch.store(2, Ordering::Release);
        assert_eq!(fresh(c.get(&1)), None, "an entry of the old epoch");
    }

    #[test]
    fn entries_older_than_the_bound_are_not_used() {
        let (c, _) = cache(100);
        let mut t = c.ticket(&1);
        t.sent = Instant::now() - MAX_STALENESS;
        assert!(c.insert(1, Arc::new("old"), t));
        assert_eq!(fresh(c.get(&1)), None);
        // One caller at a time is asked to refresh an ageing entry.
        let mut t = c.ticket(&2);
        t.sent = Instant::now() - REFRESH_AHEAD;
        assert!(c.insert(2, Arc::new("ageing"), t));
        assert!(matches!(c.get(&2), Lookup::Refresh(_)));
        assert!(matches!(c.get(&2), Lookup::Fresh(_)));
    }

    #[test]
    fn memory_is_bounded() {
        let (c, _) = cache(64);
        for i in 0..10_000 {
            let t = c.ticket(&i);
            c.insert(i, Arc::new("v"), t);
        }
        assert!(c.len() <= 64, "{}", c.len());
        // A disabled cache stores nothing.
        let (off, _) = cache(0);
        let t = off.ticket(&1);
        assert!(!off.insert(1, Arc::new("v"), t));
    }

    #[test]
    fn removal_by_value() {
        let (c, _) = cache(100);
        for (k, v) in [(1, "alice"), (2, "bob"), (3, "alice")] {
            let t = c.ticket(&k);
            c.insert(k, Arc::new(v), t);
        }
        c.remove_where(|v| *v == "alice");
        assert_eq!(fresh(c.get(&1)), None);
        assert_eq!(fresh(c.get(&2)), Some("bob"));
        assert_eq!(fresh(c.get(&3)), None);
    }
}
