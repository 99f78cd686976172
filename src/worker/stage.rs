//! The copy of one file's bytes from the content store into a staging object of
//! the transfer store, hashed (SHA-256) on the way, in memory bounded by a few buffers.
//!
//! Three stages joined by small bounded channels run at once: a reader, a hasher
//! on its own thread and a writer. Buffers travel reader -> hasher -> writer and
//! back, so a copy never holds more than `StageTuning::buffers` of them and the
//! hash (the slowest stage, one core) overlaps all I/O. Local directories are read
//! and written with plain large-block file I/O on blocking threads; any other
//! object store is read as a stream and written with a multipart upload.

use std::{
    fs::File,
    io::{Read, Write},
    path::{Path as FsPath, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use futures_util::StreamExt;
use object_store::{buffered::BufWriter, path::Path, ObjectStore, ObjectStoreExt};
use sha2::{Digest, Sha256};
use tokio::{io::AsyncWriteExt, sync::mpsc};
use tokio_util::sync::CancellationToken;

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

/// Where the bytes go (a staging key that nobody else writes).
pub enum Sink {
    /// A file of a local transfer store.
    Local(PathBuf),
    Remote(Arc<dyn ObjectStore>, Path),
}

/// What a finished copy read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staged {
    /// Lower-case hex SHA-256 of the bytes written.
    pub sha256: String,
    pub size: u64,
}

/// Why a copy did not finish. The worker turns each into a retry or an ERROR.
#[derive(Debug)]
pub enum StageError {
    /// `Control::cancel` fired.
    Canceled,
    /// The source object does not exist (retrying cannot help).
    SourceMissing,
    /// The source holds a different number of bytes than the catalog says.
    SizeMismatch { actual: u64 },
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
            StageError::SourceMissing | StageError::SizeMismatch { .. } => 1,
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
    /// The source is exhausted; sent once, after the last data.
    End,
}

/// Copies `source` to `sink`, hashing every byte written. `expected_size` stops
/// a source that is larger than the catalog says without reading all of it.
/// On any error the sink may hold a partial object: the caller deletes it.
pub async fn stage(
    source: Source,
    sink: Sink,
    expected_size: u64,
    tuning: &StageTuning,
    ctl: Arc<Control>,
) -> Result<Staged, StageError> {
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
    let writer =
        {
            let ctl = ctl.clone();
            match sink {
                Sink::Local(path) => tokio::task::spawn_blocking(move || {
                    write_local(&path, hashed_rx, free_tx, &ctl)
                }),
                Sink::Remote(store, path) => tokio::spawn(async move {
                    write_remote(store, path, hashed_rx, free_tx, &ctl).await
                }),
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
                .blocking_send(Msg::End)
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
    out.send(Msg::End)
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
            Some(Msg::End) => {
                out.blocking_send(Msg::End)
                    .map_err(|_| StageError::Disconnected)?;
                return Ok(Staged {
                    sha256: hex::encode(hasher.finalize()),
                    size,
                });
            }
            // The reader quit early; its own result says why.
            None => return Err(StageError::Disconnected),
        }
    }
}

/// Bytes between two background `fdatasync` calls of a local staging file.
const FLUSH_EVERY: u64 = 64 << 20;

fn write_local(
    path: &FsPath,
    mut input: mpsc::Receiver<Msg>,
    free: mpsc::Sender<Vec<u8>>,
    ctl: &Control,
) -> Result<(), StageError> {
    let write_err = |e: std::io::Error, what: &str| {
        StageError::Write(anyhow::Error::new(e).context(format!("{what} {}", path.display())))
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| write_err(e, "create directory for"))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| write_err(e, "create"))?;
    // Durability before the rename costs a full write-back of the file. Started
    // in the background as the copy goes, it overlaps the copy instead of
    // following it, and the final sync only waits for the tail.
    let flusher = Flusher::start(&file);
    let mut since_flush: u64 = 0;
    let result = loop {
        match input.blocking_recv() {
            Some(Msg::Data { buf, len }) => {
                if ctl.cancel.is_cancelled() {
                    break Err(StageError::Canceled);
                }
                if let Err(e) = file.write_all(&buf[..len]) {
                    break Err(write_err(e, "write"));
                }
                ctl.add_written(len);
                // Never blocks: the pool holds at most as many buffers as the channel.
                let _ = free.try_send(buf);
                since_flush += len as u64;
                if since_flush >= FLUSH_EVERY {
                    since_flush = 0;
                    flusher.request();
                }
            }
            Some(Msg::End) => break file.sync_all().map_err(|e| write_err(e, "sync")),
            None => break Err(StageError::Disconnected),
        }
    };
    flusher.finish();
    result
}

/// A thread that runs `fdatasync` on a file when asked, skipping requests while busy.
struct Flusher {
    requests: Option<std::sync::mpsc::SyncSender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Flusher {
    fn start(file: &File) -> Flusher {
        let Ok(file) = file.try_clone() else {
            // Only an optimisation: without it the final sync does all the work.
            return Flusher {
                requests: None,
                thread: None,
            };
        };
        let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("dls-flush".into())
            .spawn(move || {
                while rx.recv().is_ok() {
                    // Errors resurface in the final sync_all, which decides.
                    let _ = file.sync_data();
                }
            })
            .ok();
        Flusher {
            requests: thread.as_ref().map(|_| tx),
            thread,
        }
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

/// Part size of multipart uploads (S3 needs at least 5 MiB) and parts in flight.
const UPLOAD_PART: usize = 8 << 20;
const UPLOAD_CONCURRENCY: usize = 4;

async fn write_remote(
    store: Arc<dyn ObjectStore>,
    path: Path,
    mut input: mpsc::Receiver<Msg>,
    free: mpsc::Sender<Vec<u8>>,
    ctl: &Control,
) -> Result<(), StageError> {
    let mut writer =
        BufWriter::with_capacity(store, path, UPLOAD_PART).with_max_concurrency(UPLOAD_CONCURRENCY);
    let failure = loop {
        let msg = tokio::select! {
            biased;
            _ = ctl.cancel.cancelled() => break StageError::Canceled,
            m = input.recv() => m,
        };
        match msg {
            Some(Msg::Data { buf, len }) => {
                if let Err(e) = writer.write_all(&buf[..len]).await {
                    break StageError::Write(e.into());
                }
                ctl.add_written(len);
                let _ = free.try_send(buf);
            }
            Some(Msg::End) => {
                return writer
                    .shutdown()
                    .await
                    .map_err(|e| StageError::Write(e.into()));
            }
            None => break StageError::Disconnected,
        }
    };
    // Drops the parts already uploaded; a failure here leaves them to the
    // store's own lifecycle rules, which is all that can be done.
    if let Err(e) = writer.abort().await {
        tracing::warn!(error = %e, "cannot abort a multipart upload");
    }
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

    async fn local_copy(bytes: &[u8], expected: u64, chunk: usize) -> Result<Staged, StageError> {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::write(&src, bytes).unwrap();
        let dst = dir.path().join("staging").join("x");
        let r = stage(
            Source::Local(src),
            Sink::Local(dst.clone()),
            expected,
            &tuning(chunk),
            Arc::new(Control::default()),
        )
        .await;
        if r.is_ok() {
            assert_eq!(std::fs::read(&dst).unwrap(), bytes);
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
            let staged = local_copy(&bytes, len as u64, 64 << 10).await.unwrap();
            assert_eq!(staged.size, len as u64);
            assert_eq!(staged.sha256, sha(&bytes));
        }
    }

    #[tokio::test]
    async fn wrong_size_is_reported_before_copying() {
        let r = local_copy(b"hello", 4, 64 << 10).await;
        assert!(
            matches!(r, Err(StageError::SizeMismatch { actual: 5 })),
            "{r:?}"
        );
    }

    #[tokio::test]
    async fn missing_source_is_its_own_error() {
        let dir = tempfile::tempdir().unwrap();
        let r = stage(
            Source::Local(dir.path().join("nope")),
            Sink::Local(dir.path().join("out")),
            1,
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
            bytes.len() as u64,
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
            async move { stage(Source::Local(src), Sink::Local(dst), 4 << 20, &t, ctl).await }
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
