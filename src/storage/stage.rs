//! A verified, durable write of one object straight under its final key: the
//! object appears there only once its bytes matched the SHA-256 and size they
//! were expected to have, and (local store) once they are on disk. Callers
//! record the object in the catalog only after [`commit`](LocalWrite::commit)
//! returned, so a committed row never points at bytes a crash could lose.
//!
//! - Local store: the bytes go to a temporary file in the final directory
//!   (`.dls-tmp-<uuid>`), which is fsync'ed, renamed to the final name, and the
//!   directory fsync'ed. A crash leaves at most a temporary file, swept by
//!   maintenance once a day old ([`sweep_local_temp_files`]).
//! - S3: a multipart upload to the final key, completed only after the check
//!   (aborted otherwise), or a single PUT, sent only after the check, for an
//!   object smaller than one part. No CopyObject, so no 5 GiB limit; parts grow
//!   with the object so that 10,000 parts always suffice.
//!
//! The worker's copy pipeline hashes on a thread of its own and uses
//! [`LocalWrite`]/[`RemoteWrite`] with the digest it computed; everything else
//! uses [`ObjectWrite`], which hashes what it is given itself.

use std::{
    fs::File,
    io::Write,
    path::{Path as FsPath, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
};

use object_store::{buffered::BufWriter, path::Path, ObjectStore};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use super::Bucket;

/// Name prefix of the temporary files of local writes.
pub const TEMP_PREFIX: &str = ".dls-tmp-";

/// A temporary file this old belongs to no running write.
pub const TEMP_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// Smallest part of a multipart upload (S3 needs 5 MiB); below it, a single PUT.
pub const UPLOAD_PART: usize = 8 << 20;
/// Parts uploaded at once per object.
const UPLOAD_CONCURRENCY: usize = 4;
/// S3 allows 10,000 parts; keep a margin for an object larger than announced.
const MAX_PARTS: u64 = 9_000;

/// Bytes between two background `fdatasync` calls of a local temporary file.
const FLUSH_EVERY: u64 = 64 << 20;

/// SHA-256 (lower-case hex) and size of some bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    pub sha256: String,
    pub size: u64,
}

/// Why a write did not end under its final key.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The bytes written are not the expected ones: nothing was committed.
    #[error(
        "the bytes written ({} bytes, SHA-256 {}) are not the expected ones ({} bytes, SHA-256 {})",
        actual.size, actual.sha256, expected.size, expected.sha256
    )]
    Mismatch { expected: Digest, actual: Digest },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

fn check(expected: &Digest, actual: &Digest) -> Result<(), WriteError> {
    if expected.size == actual.size && expected.sha256.eq_ignore_ascii_case(&actual.sha256) {
        Ok(())
    } else {
        Err(WriteError::Mismatch {
            expected: expected.clone(),
            actual: actual.clone(),
        })
    }
}

/// Part size of a multipart upload of about `size` bytes: [`UPLOAD_PART`], or
/// larger (whole MiB) when that many parts would not do.
pub fn part_size(size: u64) -> usize {
    let needed = size.div_ceil(MAX_PARTS).div_ceil(1 << 20) << 20;
    usize::try_from(needed)
        .unwrap_or(usize::MAX)
        .max(UPLOAD_PART)
}

/// A write into a local store (blocking I/O: run it on a blocking thread).
pub struct LocalWrite {
    file: Option<File>,
    temp: PathBuf,
    dest: PathBuf,
    flusher: Option<Flusher>,
    since_flush: u64,
    committed: bool,
}

impl LocalWrite {
    /// Creates the temporary file beside `dest` (and the directory if needed).
    pub fn create(dest: PathBuf) -> std::io::Result<LocalWrite> {
        let dir = dest
            .parent()
            .ok_or_else(|| std::io::Error::other(format!("{} has no parent", dest.display())))?
            .to_path_buf();
        let temp = dir.join(format!("{TEMP_PREFIX}{}", Uuid::new_v4().simple()));
        // The store removes a directory it empties (a collector deleting the
        // last object in it), which can happen between these two calls.
        let mut tries = 0;
        let file = loop {
            std::fs::create_dir_all(&dir)?;
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp)
            {
                Ok(file) => break file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && tries < 3 => tries += 1,
                Err(e) => return Err(e),
            }
        };
        // Durability costs a write-back of the whole file. Started in the
        // background as the bytes come, it overlaps the write instead of
        // following it, and the final sync only waits for the tail.
        let flusher = Flusher::start(&file);
        Ok(LocalWrite {
            file: Some(file),
            temp,
            dest,
            flusher,
            since_flush: 0,
            committed: false,
        })
    }

    pub fn write(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let file = self.file.as_mut().ok_or_else(closed)?;
        file.write_all(buf)?;
        self.since_flush += buf.len() as u64;
        if self.since_flush >= FLUSH_EVERY {
            self.since_flush = 0;
            if let Some(f) = &self.flusher {
                f.request();
            }
        }
        Ok(())
    }

    /// Checks `actual` (the digest of every byte written) against `expected`,
    /// then makes the file durable under its final name. On a mismatch or an
    /// error before the rename nothing is left behind. If syncing the directory
    /// fails after the rename, the file stays under its name: the key may be a
    /// content key other items share, so only the caller knows whether it may
    /// delete it (staging does: its artifact keys are its own).
    pub fn commit(mut self, expected: &Digest, actual: &Digest) -> Result<(), WriteError> {
        check(expected, actual)?;
        let file = self.file.take().ok_or_else(closed).map_err(io_err)?;
        if let Some(f) = self.flusher.take() {
            f.finish();
        }
        file.sync_all().map_err(io_err)?;
        drop(file);
        std::fs::rename(&self.temp, &self.dest).map_err(io_err)?;
        self.committed = true;
        // The rename is only durable once the directory entry is.
        if let Some(dir) = self.dest.parent() {
            File::open(dir).and_then(|d| d.sync_all()).map_err(io_err)?;
        }
        Ok(())
    }
}

impl Drop for LocalWrite {
    fn drop(&mut self) {
        if let Some(f) = self.flusher.take() {
            f.finish();
        }
        if !self.committed {
            self.file = None;
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

fn closed() -> std::io::Error {
    std::io::Error::other("write already finished")
}

fn io_err(e: std::io::Error) -> WriteError {
    WriteError::Store(e.into())
}

/// A thread that runs `fdatasync` on a file when asked, skipping requests while busy.
struct Flusher {
    requests: Option<std::sync::mpsc::SyncSender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Flusher {
    /// None when it cannot start: only an optimisation, the final sync does all the work.
    fn start(file: &File) -> Option<Flusher> {
        let file = file.try_clone().ok()?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("dls-flush".into())
            .spawn(move || {
                while rx.recv().is_ok() {
                    // Errors resurface in the final sync_all, which decides.
                    let _ = file.sync_data();
                }
            })
            .ok()?;
        Some(Flusher {
            requests: Some(tx),
            thread: Some(thread),
        })
    }

    fn request(&self) {
        if let Some(tx) = &self.requests {
            let _ = tx.try_send(());
        }
    }

    fn finish(mut self) {
        self.requests = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A write into an object store (S3): a multipart upload straight to the final
/// key once the bytes exceed one part, else a single PUT at commit.
pub struct RemoteWrite {
    writer: BufWriter,
}

impl RemoteWrite {
    /// A write of about `expected_size` bytes (it sizes the parts).
    pub fn new(store: Arc<dyn ObjectStore>, key: Path, expected_size: u64) -> RemoteWrite {
        RemoteWrite {
            writer: BufWriter::with_capacity(store, key, part_size(expected_size))
                .with_max_concurrency(UPLOAD_CONCURRENCY),
        }
    }

    pub async fn write(&mut self, buf: &[u8]) -> anyhow::Result<()> {
        Ok(self.writer.write_all(buf).await?)
    }

    /// Completes the upload only when `actual` matches `expected`; aborts it otherwise.
    pub async fn commit(mut self, expected: &Digest, actual: &Digest) -> Result<(), WriteError> {
        if let Err(e) = check(expected, actual) {
            self.abort().await;
            return Err(e);
        }
        self.writer
            .shutdown()
            .await
            .map_err(|e| WriteError::Store(e.into()))
    }

    /// Drops the parts already uploaded; a failure here leaves them to the
    /// bucket's lifecycle rule for incomplete multipart uploads.
    pub async fn abort(mut self) {
        if let Err(e) = self.writer.abort().await {
            tracing::warn!(error = %e, "cannot abort a multipart upload");
        }
    }
}

/// A verified write that hashes what it is given itself (uploads):
/// [`Bucket::begin_write`], [`write`](ObjectWrite::write) every byte, then
/// [`commit`](ObjectWrite::commit) with the digest the bytes must have.
/// Dropped without a commit, a local write leaves nothing; an S3 write
/// should be [`abort`](ObjectWrite::abort)ed.
pub struct ObjectWrite {
    target: Target,
}

enum Target {
    /// A thread of its own hashes and writes, fed through a short queue of
    /// batches, so receiving the next batch overlaps hashing and writing the
    /// last one.
    Local {
        batches: Option<tokio::sync::mpsc::Sender<bytes::Bytes>>,
        writer: Option<tokio::task::JoinHandle<std::io::Result<(LocalWrite, Digest)>>>,
        done: Option<(LocalWrite, Digest)>,
    },
    Remote {
        write: RemoteWrite,
        hasher: Sha256,
        size: u64,
    },
}

/// Batches queued for a local write's thread.
const LOCAL_QUEUE: usize = 4;

impl Bucket {
    /// Starts a verified write of about `expected_size` bytes under `key`.
    pub async fn begin_write(&self, key: &str, expected_size: u64) -> anyhow::Result<ObjectWrite> {
        let target = match self.local_path(key) {
            Some(dest) => {
                let mut local =
                    tokio::task::spawn_blocking(move || LocalWrite::create(dest)).await??;
                let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(LOCAL_QUEUE);
                let writer = tokio::task::spawn_blocking(move || {
                    let mut hasher = Sha256::new();
                    let mut size = 0u64;
                    while let Some(batch) = rx.blocking_recv() {
                        hasher.update(&batch);
                        local.write(&batch)?;
                        size += batch.len() as u64;
                    }
                    let digest = Digest {
                        sha256: hex::encode(hasher.finalize()),
                        size,
                    };
                    Ok((local, digest))
                });
                Target::Local {
                    batches: Some(tx),
                    writer: Some(writer),
                    done: None,
                }
            }
            None => Target::Remote {
                write: RemoteWrite::new(self.inner.clone(), Path::from(key), expected_size),
                hasher: Sha256::new(),
                size: 0,
            },
        };
        Ok(ObjectWrite { target })
    }
}

impl ObjectWrite {
    pub async fn write(&mut self, buf: bytes::Bytes) -> anyhow::Result<()> {
        match &mut self.target {
            Target::Local { batches, .. } => {
                let tx = batches.as_ref().ok_or_else(closed)?;
                if tx.send(buf).await.is_err() {
                    // The writer stopped: its error says why.
                    self.finish_local().await?;
                    anyhow::bail!("the write's thread stopped");
                }
                Ok(())
            }
            Target::Remote {
                write,
                hasher,
                size,
            } => {
                hasher.update(&buf);
                *size += buf.len() as u64;
                write.write(&buf).await
            }
        }
    }

    /// Waits for a local write's thread to have written and hashed everything.
    async fn finish_local(&mut self) -> anyhow::Result<()> {
        if let Target::Local {
            batches,
            writer,
            done,
        } = &mut self.target
        {
            batches.take();
            if let Some(w) = writer.take() {
                *done = Some(w.await??);
            }
        }
        Ok(())
    }

    /// Digest of everything written; ends the writing.
    pub async fn written(&mut self) -> anyhow::Result<Digest> {
        self.finish_local().await?;
        Ok(match &self.target {
            Target::Local { done, .. } => {
                done.as_ref().map(|(_, d)| d.clone()).ok_or_else(closed)?
            }
            Target::Remote { hasher, size, .. } => Digest {
                sha256: hex::encode(hasher.clone().finalize()),
                size: *size,
            },
        })
    }

    /// Makes the object durable under its key when what was written is `expected`.
    pub async fn commit(mut self, expected: &Digest) -> Result<Digest, WriteError> {
        let actual = self.written().await?;
        match self.target {
            Target::Local { done, .. } => {
                let (local, _) = done.ok_or_else(closed).map_err(io_err)?;
                let (e, a) = (expected.clone(), actual.clone());
                tokio::task::spawn_blocking(move || local.commit(&e, &a))
                    .await
                    .map_err(|e| WriteError::Store(e.into()))??;
            }
            Target::Remote { write, .. } => write.commit(expected, &actual).await?,
        }
        Ok(actual)
    }

    /// Drops what was written (a local temporary file is removed on drop).
    pub async fn abort(mut self) {
        match self.target {
            Target::Local { .. } => {
                let _ = self.finish_local().await;
            }
            Target::Remote { write, .. } => write.abort().await,
        }
    }
}

/// Deletes the temporary files of local writes older than `max_age` under
/// `root` (a local store's directory, walked a few levels deep). Returns how many.
pub fn sweep_local_temp_files(root: &FsPath, max_age: Duration) -> u64 {
    let cutoff = SystemTime::now() - max_age;
    let mut removed = 0;
    let mut dirs = vec![(root.to_path_buf(), 0)];
    while let Some((dir, depth)) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if depth < 4 {
                    dirs.push((entry.path(), depth + 1));
                }
                continue;
            }
            // The name first: only temporary files are worth a stat.
            if !entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                continue;
            }
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < cutoff);
            if old {
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => removed += 1,
                    Err(e) => tracing::warn!(error = %e, path = %entry.path().display(),
                        "cannot delete a temporary file"),
                }
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;

    fn digest(bytes: &[u8]) -> Digest {
        Digest {
            sha256: hex::encode(Sha256::digest(bytes)),
            size: bytes.len() as u64,
        }
    }

    fn entries(dir: &FsPath) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    #[test]
    fn local_writes_appear_only_once_verified() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a").join("obj");
        let mut w = LocalWrite::create(dest.clone()).unwrap();
        w.write(b"hello ").unwrap();
        w.write(b"world").unwrap();
        // Before the commit only a temporary file exists.
        assert!(!dest.exists());
        let names = entries(&dir.path().join("a"));
        assert_eq!(names.len(), 1);
        assert!(names[0].starts_with(TEMP_PREFIX), "{names:?}");
        w.commit(&digest(b"hello world"), &digest(b"hello world"))
            .unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"hello world");
        assert_eq!(entries(&dir.path().join("a")), vec!["obj".to_string()]);
    }

    #[test]
    fn a_mismatch_commits_nothing_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("obj");
        let mut w = LocalWrite::create(dest.clone()).unwrap();
        w.write(b"tampered").unwrap();
        let r = w.commit(&digest(b"expected"), &digest(b"tampered"));
        assert!(matches!(r, Err(WriteError::Mismatch { .. })), "{r:?}");
        assert!(entries(dir.path()).is_empty());
        // Dropped half-way: nothing either.
        let mut w = LocalWrite::create(dest.clone()).unwrap();
        w.write(b"partial").unwrap();
        drop(w);
        assert!(entries(dir.path()).is_empty());
    }

    #[test]
    fn parts_grow_with_the_object() {
        assert_eq!(part_size(0), UPLOAD_PART);
        assert_eq!(part_size(5 << 30), UPLOAD_PART);
        let huge = 5u64 << 40; // S3's largest object
        assert!(part_size(huge) as u64 * MAX_PARTS >= huge);
        assert_eq!(part_size(huge) % (1 << 20), 0);
    }

    #[tokio::test]
    async fn object_writes_verify_on_s3_like_stores() {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let bucket = Bucket {
            inner: store.clone(),
            local_root: None,
            presigner: None,
            direct_base: None,
        };
        let big: Vec<u8> = (0..(UPLOAD_PART + 1000)).map(|i| (i % 251) as u8).collect();
        for (key, bytes) in [("small", &b"tiny"[..]), ("big", &big[..])] {
            // A wrong digest: no object at all.
            let mut w = bucket.begin_write(key, bytes.len() as u64).await.unwrap();
            for chunk in bytes.chunks(1 << 20) {
                w.write(bytes::Bytes::copy_from_slice(chunk)).await.unwrap();
            }
            let r = w.commit(&digest(b"other")).await;
            assert!(matches!(r, Err(WriteError::Mismatch { .. })), "{r:?}");
            assert!(store.head(&Path::from(key)).await.is_err(), "{key}");
            // The right one: the object, whole.
            let mut w = bucket.begin_write(key, bytes.len() as u64).await.unwrap();
            for chunk in bytes.chunks(1 << 20) {
                w.write(bytes::Bytes::copy_from_slice(chunk)).await.unwrap();
            }
            w.commit(&digest(bytes)).await.unwrap();
            let got = store.get(&Path::from(key)).await.unwrap().bytes().await;
            assert_eq!(got.unwrap().as_ref(), bytes, "{key}");
        }
    }

    #[test]
    fn old_temporary_files_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("blobs");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join(format!("{TEMP_PREFIX}x")), b"left").unwrap();
        std::fs::write(sub.join("kept"), b"object").unwrap();
        assert_eq!(sweep_local_temp_files(dir.path(), TEMP_MAX_AGE), 0);
        assert_eq!(sweep_local_temp_files(dir.path(), Duration::ZERO), 1);
        assert_eq!(entries(&sub), vec!["kept".to_string()]);
    }
}
