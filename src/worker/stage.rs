//! The copy of one file's bytes from the content store straight to their final
//! key in the transfer store (or, for imports, from any local file into the content
//! store), hashed (SHA-256) on the way, in memory bounded by a few buffers. The
//! object is committed there ([`crate::storage::stage`]: durable, verified) only
//! once the bytes matched the expected size and SHA-256.
//!
//! Three stages joined by small bounded channels run at once: a reader, a hasher
//! on its own thread and a writer. Buffers travel reader -> hasher -> writer and
//! back, so a copy never holds more than `StageTuning::buffers` of them and the
//! hash (the slowest stage, one core) overlaps all I/O. Local directories are read
//! and written with plain large-block file I/O on blocking threads; any other
//! object store is read as a stream and written with a multipart upload that is
//! completed only after the check.

use std::{
    fs::File,
    io::Read,
    path::{Path as FsPath, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use futures_util::StreamExt;
use object_store::{path::Path, ObjectStore, ObjectStoreExt};
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use crate::storage::stage::Digest;
use crate::storage::stage::{LocalWrite, RemoteWrite, WriteError};

/// How a copy moves its bytes. The defaults are what production uses; tests slow
/// copies down (`chunk_delay`) to observe them half-way.
#[derive(Clone, Debug)]
pub struct StageTuning {
    /// Bytes per read, hash and write step.
    pub chunk_size: usize,
    /// Buffers in flight between the stages (memory per copy = this x `chunk_size`).
    pub buffers: usize,
    /// Pause after every chunk read: `workers.throttle_bytes_per_second`.
    pub chunk_delay: Option<Duration>,
}

impl StageTuning {
    /// The defaults, slowed to about `bytes_per_second` per copy (0 = unlimited),
    /// for operators who must bound the I/O one staging takes.
    pub fn throttled(bytes_per_second: u64) -> StageTuning {
        let mut tuning = StageTuning::default();
        if bytes_per_second > 0 {
            // Smaller chunks keep a slow copy smooth and its progress visible.
            tuning.chunk_size = tuning
                .chunk_size
                .min(bytes_per_second.clamp(64 << 10, 4 << 20) as usize);
            tuning.chunk_delay = Some(Duration::from_secs_f64(
                tuning.chunk_size as f64 / bytes_per_second as f64,
            ));
        }
        tuning
    }
}

impl Default for StageTuning {
    fn default() -> Self {
        StageTuning {
            // Measured on a 1 GiB local copy: large enough that per-chunk costs
            // vanish, small enough that a chunk is still cache-warm when hashed.
            chunk_size: 4 << 20,
            buffers: 4,
            chunk_delay: None,
        }
    }
}

/// Shared between a copy and the task that supervises it.
#[derive(Debug, Default)]
pub struct Control {
    /// Cancelled when the claim is lost or the instance stops: every stage quits
    /// at its next chunk.
    pub cancel: CancellationToken,
    written: AtomicU64,
}

impl Control {
    /// Bytes written to the staging object so far (what heartbeats report).
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    fn add_written(&self, n: usize) {
        self.written.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Where the bytes come from.
pub enum Source {
    /// A file of a local content store.
    Local(PathBuf),
    Remote(Arc<dyn ObjectStore>, Path),
}

/// Where the bytes go: their final key, which nobody else writes.
pub enum Sink {
    /// A file of a local store.
    Local(PathBuf),
    Remote(Arc<dyn ObjectStore>, Path),
}

/// What a finished copy read and committed.
pub type Staged = Digest;

/// Why a copy did not finish. The worker turns each into a retry or an ERROR.
#[derive(Debug)]
pub enum StageError {
    /// `Control::cancel` fired.
    Canceled,
    /// The source object does not exist (retrying cannot help).
    SourceMissing,
    /// The source holds a different number of bytes than the catalog says.
    SizeMismatch { actual: u64 },
    /// The bytes do not have the expected SHA-256: nothing was committed.
    ChecksumMismatch { actual: String },
    /// Reading the content store failed.
    Read(anyhow::Error),
    /// Writing the transfer store failed.
    Write(anyhow::Error),
    /// A stage panicked or could not be started.
    Internal(anyhow::Error),
    /// A neighbouring stage quit; the real cause is that stage's error.
    Disconnected,
}

impl StageError {
    /// Lower is more telling: the cause a caller reports when several stages fail.
    fn rank(&self) -> u8 {
        match self {
            StageError::Canceled => 0,
            StageError::SourceMissing
            | StageError::SizeMismatch { .. }
            | StageError::ChecksumMismatch { .. } => 1,
            StageError::Read(_) | StageError::Write(_) => 2,
            StageError::Internal(_) => 3,
            StageError::Disconnected => 4,
        }
    }
}

enum Msg {
    Data {
        buf: Vec<u8>,
        len: usize,
    },
    /// The source is exhausted; sent once, after the last data. The reader
    /// sends None, the hasher forwards the digest of everything it passed on.
    End(Option<Digest>),
}

/// Copies `source` to `sink`, hashing every byte written, and commits the sink
/// only when the bytes are `expected` (size and SHA-256). The expected size
/// stops a source that is larger than the catalog says without reading all of
/// it. On any error nothing is left under the sink's key (a multipart upload
/// whose abort failed is left to the bucket's lifecycle rule).
pub async fn stage(
    source: Source,
    sink: Sink,
    expected: &Digest,
    tuning: &StageTuning,
    ctl: Arc<Control>,
) -> Result<Staged, StageError> {
    let expected_size = expected.size;
    let buffers = tuning.buffers.max(2);
    // A small file needs one small buffer, not several large ones.
    let buf_size = usize::try_from(expected_size.saturating_add(1))
        .unwrap_or(usize::MAX)
        .clamp(64 << 10, tuning.chunk_size.max(64 << 10));
    let (filled_tx, filled_rx) = mpsc::channel::<Msg>(buffers);
    let (hashed_tx, hashed_rx) = mpsc::channel::<Msg>(buffers);
    let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>(buffers);
    let pool = Pool {
        free: free_rx,
        allocated: 0,
        max: buffers,
        size: buf_size,
    };
    let delay = tuning.chunk_delay;

    let reader = {
        let ctl = ctl.clone();
        match source {
            Source::Local(path) => tokio::task::spawn_blocking(move || {
                read_local(&path, expected_size, pool, filled_tx, &ctl, delay)
            }),
            Source::Remote(store, path) => tokio::spawn(async move {
                let cancel = ctl.cancel.clone();
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => Err(StageError::Canceled),
                    r = read_remote(store, path, expected_size, pool, filled_tx, delay) => r,
                }
            }),
        }
    };
    let hasher = tokio::task::spawn_blocking(move || hash(filled_rx, hashed_tx));
    let writer = {
        let ctl = ctl.clone();
        match sink {
            Sink::Local(path) => {
                let expected = expected.clone();
                tokio::task::spawn_blocking(move || {
                    write_local(path, &expected, hashed_rx, free_tx, &ctl)
                })
            }
            Sink::Remote(store, path) => {
                let expected = expected.clone();
                tokio::spawn(async move {
                    write_remote(store, path, &expected, hashed_rx, free_tx, &ctl).await
                })
            }
        }
    };

    let (read, hashed, written) = tokio::join!(reader, hasher, writer);
    let read = read.unwrap_or_else(|e| Err(StageError::Internal(e.into())));
    let hashed = hashed.unwrap_or_else(|e| Err(StageError::Internal(e.into())));
    let written = written.unwrap_or_else(|e| Err(StageError::Internal(e.into())));
    if ctl.cancel.is_cancelled() {
        return Err(StageError::Canceled);
    }
    let errors = [read.err(), written.err()];
    match hashed {
        Ok(staged) if errors.iter().all(Option::is_none) => Ok(staged),
        Ok(_) => Err(most_telling(errors.into_iter().flatten())),
        Err(e) => Err(most_telling(errors.into_iter().flatten().chain([e]))),
    }
}

fn most_telling(errors: impl Iterator<Item = StageError>) -> StageError {
    errors
        .min_by_key(StageError::rank)
        .unwrap_or(StageError::Disconnected)
}

/// Buffers of one copy: recycled from the writer, allocated only up to `max`.
struct Pool {
    free: mpsc::Receiver<Vec<u8>>,
    allocated: usize,
    max: usize,
    size: usize,
}

impl Pool {
    fn try_take(&mut self) -> Option<Vec<u8>> {
        if let Ok(buf) = self.free.try_recv() {
            return Some(buf);
        }
        if self.allocated < self.max {
            self.allocated += 1;
            return Some(vec![0; self.size]);
        }
        None
    }

    fn take_blocking(&mut self) -> Result<Vec<u8>, StageError> {
        match self.try_take() {
            Some(buf) => Ok(buf),
            None => self.free.blocking_recv().ok_or(StageError::Disconnected),
        }
    }

    async fn take(&mut self) -> Result<Vec<u8>, StageError> {
        match self.try_take() {
            Some(buf) => Ok(buf),
            None => self.free.recv().await.ok_or(StageError::Disconnected),
        }
    }
}

fn read_local(
    path: &FsPath,
    expected_size: u64,
    mut pool: Pool,
    out: mpsc::Sender<Msg>,
    ctl: &Control,
    delay: Option<Duration>,
) -> Result<(), StageError> {
    let mut file = File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => StageError::SourceMissing,
        _ => StageError::Read(anyhow::Error::new(e).context(format!("open {}", path.display()))),
    })?;
    // The length on disk settles a size mismatch before any byte is copied.
    let len = file
        .metadata()
        .map_err(|e| StageError::Read(e.into()))?
        .len();
    if len != expected_size {
        return Err(StageError::SizeMismatch { actual: len });
    }
    let mut total: u64 = 0;
    loop {
        if ctl.cancel.is_cancelled() {
            return Err(StageError::Canceled);
        }
        let mut buf = pool.take_blocking()?;
        let mut len = 0;
        while len < buf.len() {
            match file.read(&mut buf[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(StageError::Read(e.into())),
            }
        }
        total += len as u64;
        if total > expected_size {
            // The file grew under us; its true size is unknown, only "more".
            return Err(StageError::SizeMismatch { actual: total });
        }
        let eof = len < buf.len();
        if len > 0 {
            out.blocking_send(Msg::Data { buf, len })
                .map_err(|_| StageError::Disconnected)?;
        }
        if eof {
            return out
                .blocking_send(Msg::End(None))
                .map_err(|_| StageError::Disconnected);
        }
        if let Some(d) = delay {
            std::thread::sleep(d);
        }
    }
}

async fn read_remote(
    store: Arc<dyn ObjectStore>,
    path: Path,
    expected_size: u64,
    mut pool: Pool,
    out: mpsc::Sender<Msg>,
    delay: Option<Duration>,
) -> Result<(), StageError> {
    let got = store.get(&path).await.map_err(|e| match e {
        object_store::Error::NotFound { .. } => StageError::SourceMissing,
        e => StageError::Read(e.into()),
    })?;
    if got.meta.size != expected_size {
        return Err(StageError::SizeMismatch {
            actual: got.meta.size,
        });
    }
    let mut stream = got.into_stream();
    let mut total: u64 = 0;
    // Network chunks are small and uneven: gather them into full buffers so the
    // hasher and writer see few, large steps.
    let mut current: Option<(Vec<u8>, usize)> = None;
    while let Some(next) = stream.next().await {
        let mut bytes = next.map_err(|e| StageError::Read(e.into()))?;
        total += bytes.len() as u64;
        if total > expected_size {
            return Err(StageError::SizeMismatch { actual: total });
        }
        while !bytes.is_empty() {
            let (mut buf, mut len) = match current.take() {
                Some(c) => c,
                None => (pool.take().await?, 0),
            };
            let n = bytes.len().min(buf.len() - len);
            buf[len..len + n].copy_from_slice(&bytes.split_to(n));
            len += n;
            if len == buf.len() {
                out.send(Msg::Data { buf, len })
                    .await
                    .map_err(|_| StageError::Disconnected)?;
                if let Some(d) = delay {
                    tokio::time::sleep(d).await;
                }
            } else {
                current = Some((buf, len));
            }
        }
    }
    if let Some((buf, len)) = current {
        out.send(Msg::Data { buf, len })
            .await
            .map_err(|_| StageError::Disconnected)?;
    }
    out.send(Msg::End(None))
        .await
        .map_err(|_| StageError::Disconnected)
}

/// The SHA-256 of everything that passes, forwarded unchanged to the writer.
fn hash(mut input: mpsc::Receiver<Msg>, out: mpsc::Sender<Msg>) -> Result<Staged, StageError> {
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    loop {
        match input.blocking_recv() {
            Some(Msg::Data { buf, len }) => {
                hasher.update(&buf[..len]);
                size += len as u64;
                out.blocking_send(Msg::Data { buf, len })
                    .map_err(|_| StageError::Disconnected)?;
            }
            Some(Msg::End(_)) => {
                let staged = Staged {
                    sha256: hex::encode(hasher.finalize()),
                    size,
                };
                out.blocking_send(Msg::End(Some(staged.clone())))
                    .map_err(|_| StageError::Disconnected)?;
                return Ok(staged);
            }
            // The reader quit early; its own result says why.
            None => return Err(StageError::Disconnected),
        }
    }
}

/// What a commit's failure means for the copy.
fn commit_error(e: WriteError) -> StageError {
    match e {
        WriteError::Mismatch { expected, actual } if expected.size != actual.size => {
            StageError::SizeMismatch {
                actual: actual.size,
            }
        }
        WriteError::Mismatch { actual, .. } => StageError::ChecksumMismatch {
            actual: actual.sha256,
        },
        WriteError::Store(e) => StageError::Write(e),
    }
}

fn write_local(
    dest: PathBuf,
    expected: &Digest,
    mut input: mpsc::Receiver<Msg>,
    free: mpsc::Sender<Vec<u8>>,
    ctl: &Control,
) -> Result<(), StageError> {
    let write_err = |e: std::io::Error, what: &str| {
        StageError::Write(anyhow::Error::new(e).context(format!("{what} {}", dest.display())))
    };
    let mut file = LocalWrite::create(dest.clone()).map_err(|e| write_err(e, "create"))?;
    loop {
        match input.blocking_recv() {
            Some(Msg::Data { buf, len }) => {
                if ctl.cancel.is_cancelled() {
                    return Err(StageError::Canceled);
                }
                file.write(&buf[..len]).map_err(|e| write_err(e, "write"))?;
                ctl.add_written(len);
                // Never blocks: the pool holds at most as many buffers as the channel.
                let _ = free.try_send(buf);
            }
            Some(Msg::End(Some(actual))) => {
                if ctl.cancel.is_cancelled() {
                    return Err(StageError::Canceled);
                }
                return file.commit(expected, &actual).map_err(commit_error);
            }
            Some(Msg::End(None)) | None => return Err(StageError::Disconnected),
        }
    }
}

async fn write_remote(
    store: Arc<dyn ObjectStore>,
    path: Path,
    expected: &Digest,
    mut input: mpsc::Receiver<Msg>,
    free: mpsc::Sender<Vec<u8>>,
    ctl: &Control,
) -> Result<(), StageError> {
    let mut writer = RemoteWrite::new(store, path, expected.size);
    let failure = loop {
        let msg = tokio::select! {
            biased;
            _ = ctl.cancel.cancelled() => break StageError::Canceled,
            m = input.recv() => m,
        };
        match msg {
            Some(Msg::Data { buf, len }) => {
                if let Err(e) = writer.write(&buf[..len]).await {
                    break StageError::Write(e);
                }
                ctl.add_written(len);
                let _ = free.try_send(buf);
            }
            Some(Msg::End(Some(actual))) => {
                if ctl.cancel.is_cancelled() {
                    break StageError::Canceled;
                }
                return writer.commit(expected, &actual).await.map_err(commit_error);
            }
            Some(Msg::End(None)) | None => break StageError::Disconnected,
        }
    };
    writer.abort().await;
    Err(failure)
}

#[cfg(test)]
mod tests {
    #[test]
    fn throttle_spreads_chunks_over_time() {
        assert!(super::StageTuning::throttled(0).chunk_delay.is_none());
        let t = super::StageTuning::throttled(1 << 20);
        let per_second = t.chunk_size as f64 / t.chunk_delay.unwrap().as_secs_f64();
        assert!((per_second - (1 << 20) as f64).abs() < 1.0, "{per_second}");
        assert_eq!(t.chunk_size, 1 << 20);
        // Very low rates still move at least 64 KiB per step.
        assert_eq!(super::StageTuning::throttled(1000).chunk_size, 64 << 10);
    }

    use super::*;

    fn tuning(chunk: usize) -> StageTuning {
        StageTuning {
            chunk_size: chunk,
            buffers: 3,
            chunk_delay: None,
        }
    }

    fn sha(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    fn digest(bytes: &[u8]) -> Digest {
        Digest {
            sha256: sha(bytes),
            size: bytes.len() as u64,
        }
    }

    async fn local_copy(
        bytes: &[u8],
        expected: Digest,
        chunk: usize,
    ) -> Result<Staged, StageError> {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::write(&src, bytes).unwrap();
        let dst = dir.path().join("artifacts").join("x");
        let r = stage(
            Source::Local(src),
            Sink::Local(dst.clone()),
            &expected,
            &tuning(chunk),
            Arc::new(Control::default()),
        )
        .await;
        if r.is_ok() {
            assert_eq!(std::fs::read(&dst).unwrap(), bytes);
        } else {
            // Nothing under the final key, no temporary file either.
            let left: Vec<_> = std::fs::read_dir(dst.parent().unwrap())
                .map(|d| d.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            assert!(left.is_empty(), "{left:?}");
        }
        r
    }

    #[tokio::test]
    async fn local_copies_hash_what_they_write() {
        for len in [
            0usize,
            1,
            (64 << 10) - 1,
            64 << 10,
            (64 << 10) + 1,
            1_000_003,
        ] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let staged = local_copy(&bytes, digest(&bytes), 64 << 10).await.unwrap();
            assert_eq!(staged.size, len as u64);
            assert_eq!(staged.sha256, sha(&bytes));
        }
    }

    #[tokio::test]
    async fn wrong_size_is_reported_before_copying() {
        let r = local_copy(b"hello", digest(b"hell"), 64 << 10).await;
        assert!(
            matches!(r, Err(StageError::SizeMismatch { actual: 5 })),
            "{r:?}"
        );
    }

    #[tokio::test]
    async fn wrong_bytes_are_never_committed() {
        let r = local_copy(b"hello", digest(b"jello"), 64 << 10).await;
        assert!(
            matches!(&r, Err(StageError::ChecksumMismatch { actual }) if *actual == sha(b"hello")),
            "{r:?}"
        );
        // On an object store: the multipart upload is never completed.
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let bytes: Vec<u8> = (0..(9 << 20)).map(|i| (i % 241) as u8).collect();
        store
            .put(&Path::from("src"), bytes.clone().into())
            .await
            .unwrap();
        let mut wrong = digest(&bytes);
        wrong.sha256 = sha(b"something else");
        let r = stage(
            Source::Remote(store.clone(), Path::from("src")),
            Sink::Remote(store.clone(), Path::from("dst")),
            &wrong,
            &tuning(1 << 20),
            Arc::new(Control::default()),
        )
        .await;
        assert!(
            matches!(r, Err(StageError::ChecksumMismatch { .. })),
            "{r:?}"
        );
        assert!(store.head(&Path::from("dst")).await.is_err());
    }

    #[tokio::test]
    async fn missing_source_is_its_own_error() {
        let dir = tempfile::tempdir().unwrap();
        let r = stage(
            Source::Local(dir.path().join("nope")),
            Sink::Local(dir.path().join("out")),
            &digest(b"x"),
            &tuning(64 << 10),
            Arc::new(Control::default()),
        )
        .await;
        assert!(matches!(r, Err(StageError::SourceMissing)), "{r:?}");
    }

    #[tokio::test]
    async fn object_store_copies_match_local_ones() {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let bytes: Vec<u8> = (0..(3 << 20) + 7).map(|i| (i % 253) as u8).collect();
        store
            .put(&Path::from("src"), bytes.clone().into())
            .await
            .unwrap();
        let staged = stage(
            Source::Remote(store.clone(), Path::from("src")),
            Sink::Remote(store.clone(), Path::from("dst")),
            &digest(&bytes),
            &tuning(1 << 20),
            Arc::new(Control::default()),
        )
        .await
        .unwrap();
        assert_eq!(staged.sha256, sha(&bytes));
        let copied = store
            .get(&Path::from("dst"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(copied.as_ref(), bytes.as_slice());
    }

    #[tokio::test]
    async fn cancel_stops_a_copy() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::write(&src, vec![7u8; 4 << 20]).unwrap();
        let ctl = Arc::new(Control::default());
        let t = StageTuning {
            chunk_size: 64 << 10,
            buffers: 2,
            chunk_delay: Some(Duration::from_millis(20)),
        };
        let copy = tokio::spawn({
            let ctl = ctl.clone();
            let dst = dir.path().join("dst");
            let expected = digest(&vec![7u8; 4 << 20]);
            async move { stage(Source::Local(src), Sink::Local(dst), &expected, &t, ctl).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        ctl.cancel.cancel();
        let r = tokio::time::timeout(Duration::from_secs(2), copy)
            .await
            .expect("a canceled copy stops at once")
            .unwrap();
        assert!(matches!(r, Err(StageError::Canceled)), "{r:?}");
        assert!(ctl.written() < 4 << 20);
    }
}
