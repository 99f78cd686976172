//! Password checks off the request threads: a few dedicated threads, each with
//! one argon2 work area it reuses, behind a bounded queue.
//!
//! An argon2id check of our hashes fills ~19 MiB. Run on the blocking pool,
//! every one of its (up to 512) threads kept its own 19 MiB in its malloc arena
//! after a check; here the memory is `threads x 19 MiB`, allocated once, and a
//! login that finds the queue full is refused at once instead of waiting.

use std::{
    sync::{mpsc, Arc, Mutex},
    thread,
};

use argon2::{password_hash::Output, Algorithm, Argon2, Block, Params, PasswordHash, Version};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use crate::{
    domain::Password,
    error::{Error, Result},
};

/// The hash unknown users are checked against, so that they cost as much as a
/// wrong password (no user-name oracle): argon2id with the default parameters
/// and an output no password produces in practice.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$ZHVtbXktc2FsdC1mb3ItdW5rbm93bg$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// The largest work area a thread keeps between checks (64 MiB); a stored hash
/// that needs more is checked with memory of its own, freed afterwards.
const MAX_KEPT_BLOCKS: usize = 64 * 1024;

struct Job {
    hash: Option<String>,
    password: Password,
    done: oneshot::Sender<bool>,
}

/// The verification threads and their queue.
pub struct Verifier {
    jobs: mpsc::Sender<Job>,
    /// Threads plus queue places: a login holds one from admission to answer.
    places: Arc<Semaphore>,
}

/// A login's place at the verifier.
pub struct Place {
    permit: OwnedSemaphorePermit,
}

impl Verifier {
    /// `threads` threads (started now, their work areas allocated at first
    /// use) and `queue` places for logins waiting for one.
    pub fn new(threads: usize, queue: usize) -> Verifier {
        let threads = threads.max(1);
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..threads {
            let rx = rx.clone();
            let spawned = thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || work(&rx));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password verification thread");
            }
        }
        Verifier {
            jobs: tx,
            places: Arc::new(Semaphore::new(threads + queue)),
        }
    }

    /// A place in the queue, or None when every place is taken.
    pub fn admit(&self) -> Option<Place> {
        self.places
            .clone()
            .try_acquire_owned()
            .ok()
            .map(|permit| Place { permit })
    }
}

impl Place {
    /// Whether `password` matches `hash` (None: an unknown user, checked
    /// against a dummy at the same cost).
    pub async fn verify(
        self,
        verifier: &Verifier,
        hash: Option<String>,
        password: Password,
    ) -> Result<bool> {
        let (done, answer) = oneshot::channel();
        let job = Job {
            hash,
            password,
            done,
        };
        verifier
            .jobs
            .send(job)
            .map_err(|_| Error::internal(anyhow::anyhow!("no password verification thread")))?;
        let ok = answer
            .await
            .map_err(|_| Error::internal(anyhow::anyhow!("a password verification failed")))?;
        drop(self.permit);
        Ok(ok)
    }
}

/// One verification thread: takes jobs until the verifier is dropped.
fn work(jobs: &Mutex<mpsc::Receiver<Job>>) {
    let mut area: Vec<Block> = Vec::new();
    loop {
        let job = match jobs.lock().unwrap_or_else(|p| p.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        let hash = job.hash.as_deref().unwrap_or(DUMMY_HASH);
        let ok = check(&mut area, hash, job.password.as_str().as_bytes()) && job.hash.is_some();
        // The login may have gone (client disconnected): nobody to tell.
        let _ = job.done.send(ok);
    }
}

/// argon2 verification of `password` against a PHC string, in `area`.
fn check(area: &mut Vec<Block>, phc: &str, password: &[u8]) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(expected), Some(salt)) = (hash.hash, hash.salt) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let blocks = params.block_count();
    let argon2 = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    let hashed = if blocks <= MAX_KEPT_BLOCKS {
        if area.len() < blocks {
            area.resize(blocks, Block::default());
        }
        argon2.hash_password_into_with_memory(password, salt, &mut out, &mut area[..blocks])
    } else {
        argon2.hash_password_into(password, salt, &mut out)
    };
    // Output's comparison takes constant time.
    hashed.is_ok() && Output::new(&out).is_ok_and(|o| o == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_real_hashes_and_refuses_the_dummy() {
        let hash = crate::service::hash_password("s3cret").unwrap();
        let mut area = Vec::new();
        assert!(check(&mut area, &hash, b"s3cret"));
        assert!(!check(&mut area, &hash, b"s3cret!"));
        assert_eq!(
            area.len(),
            Params::DEFAULT.block_count(),
            "one reused work area"
        );
        assert!(!check(&mut area, DUMMY_HASH, b""));
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
        assert!(!check(&mut area, "not a hash", b"x"));
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let v = Verifier::new(1, 1);
        let first = v.admit().expect("a thread");
        let second = v.admit().expect("a queue place");
        assert!(v.admit().is_none());
        let hash = crate::service::hash_password("pw").unwrap();
        assert!(first
            .verify(&v, Some(hash.clone()), Password::new("pw"))
            .await
            .unwrap());
        assert!(v.admit().is_some(), "a place is free again");
        assert!(!second.verify(&v, None, Password::new("pw")).await.unwrap());
    }
}
