//! The two threads behind the connections: a writer that puts every chunk
//! at its offset in the `.part` file, and a hasher that hashes the file in
//! order while it arrives, from memory when it can and from the file otherwise.

use std::{
    fs::File,
    os::unix::fs::FileExt,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc::{Receiver, Sender, TryRecvError},
        Arc, Mutex,
    },
    time::Instant,
};

use sha2::digest::DynDigest;
use tokio::sync::Semaphore;

use super::{
    checksum::{Algorithm, AlgorithmExt},
    ranges::RangeSet,
};

/// Bytes that arrived for `offset`, in a pool buffer that goes back to the
/// pool when the last thread that needs it drops it.
pub struct Chunk {
    pub offset: u64,
    pub data: PoolBuf,
}

/// The memory budget of one transfer as a fixed set of reused buffers.
/// Received bytes are copied out of the HTTP client's buffers at once, so
/// those are reused as well: a long transfer touches no fresh memory, which
/// costs more than the copy (page faults, and zeroing on every new page).
pub struct Pool {
    free: Mutex<Vec<Vec<u8>>>,
    available: Semaphore,
    size: usize,
}

impl Pool {
    /// `count` buffers of `size` bytes, allocated on first use.
    pub fn new(count: usize, size: usize) -> Arc<Pool> {
        Arc::new(Pool {
            free: Mutex::new(Vec::with_capacity(count)),
            available: Semaphore::new(count),
            size,
        })
    }

    pub fn buffer_size(&self) -> usize {
        self.size
    }

    /// A buffer holding a copy of `bytes` (at most `buffer_size()`), once one is free.
    pub async fn fill(self: &Arc<Self>, bytes: &[u8]) -> PoolBuf {
        let permit = self
            .available
            .acquire()
            .await
            .expect("the pool's semaphore is never closed");
        permit.forget();
        let mut buf = self
            .free
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.size));
        buf.clear();
        buf.extend_from_slice(&bytes[..bytes.len().min(self.size)]);
        PoolBuf {
            buf,
            pool: self.clone(),
        }
    }
}

/// A filled pool buffer; dropping it returns it to the pool.
pub struct PoolBuf {
    buf: Vec<u8>,
    pool: Arc<Pool>,
}

impl std::ops::Deref for PoolBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for PoolBuf {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        self.pool
            .free
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(buf);
        self.pool.available.add_permits(1);
    }
}

/// What the threads share with the connections and the progress display.
pub struct Shared {
    pub file: File,
    pub size: u64,
    /// Ranges durably handed to the kernel (written with `pwrite`).
    pub written: Mutex<RangeSet>,
    /// Total of `written`, for progress without taking the lock.
    pub written_bytes: AtomicU64,
    /// How far the hasher got.
    pub hashed: AtomicU64,
    /// Time the hasher and the writer spent waiting for data: when both
    /// starve, the link (not this machine) is the bound, and more
    /// connections may help.
    pub hasher_idle_nanos: AtomicU64,
    pub writer_idle_nanos: AtomicU64,
    /// Set to make the hasher give up (the transfer stopped).
    pub stop: AtomicBool,
}

impl Shared {
    pub fn new(file: File, size: u64, written: RangeSet) -> Shared {
        let total = written.total();
        Shared {
            file,
            size,
            written: Mutex::new(written),
            written_bytes: AtomicU64::new(total),
            hashed: AtomicU64::new(0),
            hasher_idle_nanos: AtomicU64::new(0),
            writer_idle_nanos: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        }
    }

    pub fn written(&self) -> RangeSet {
        self.written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Writes chunks in arrival order, records them, and passes them on to the
/// hasher. Ends when every sender is gone (or on a write error).
pub fn write_chunks(
    shared: Arc<Shared>,
    chunks: Receiver<Chunk>,
    to_hasher: Sender<Chunk>,
) -> std::io::Result<()> {
    loop {
        let waiting = Instant::now();
        let Ok(chunk) = chunks.recv() else {
            return Ok(());
        };
        shared
            .writer_idle_nanos
            .fetch_add(waiting.elapsed().as_nanos() as u64, Ordering::Relaxed);
        shared.file.write_all_at(&chunk.data, chunk.offset)?;
        let end = chunk.offset + chunk.data.len() as u64;
        shared
            .written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(chunk.offset, end);
        shared
            .written_bytes
            .fetch_add(chunk.data.len() as u64, Ordering::Relaxed);
        // A hasher that already stopped needs nothing more.
        let _ = to_hasher.send(chunk);
    }
}

/// Hashes `[0, size)` in order. Chunks that arrive exactly at the hash
/// frontier are hashed from memory (one fast link never touches the disk
/// again); anything else is dropped at once, releasing its memory, and read
/// back from the file (page cache) when the frontier gets there. Returns the
/// digest in lower-case hex, or None when stopped before the end.
pub fn hash_in_order(
    shared: Arc<Shared>,
    algorithm: Algorithm,
    chunks: Receiver<Chunk>,
) -> std::io::Result<Option<String>> {
    let mut hasher = algorithm.hasher();
    let mut frontier = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    let mut senders_gone = false;
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        // Memory first: whatever is queued may be the frontier itself.
        loop {
            match chunks.try_recv() {
                Ok(chunk) => take(chunk, &mut frontier, hasher.as_mut()),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    senders_gone = true;
                    break;
                }
            }
        }
        shared.hashed.store(frontier, Ordering::Relaxed);
        if frontier >= shared.size {
            return Ok(Some(hex::encode(hasher.finalize())));
        }
        let on_disk = shared
            .written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .run_end(frontier);
        if let Some(end) = on_disk {
            let n = (end - frontier).min(buf.len() as u64) as usize;
            shared.file.read_exact_at(&mut buf[..n], frontier)?;
            hasher.update(&buf[..n]);
            frontier += n as u64;
            continue;
        }
        if senders_gone {
            return Ok(None);
        }
        let waiting = Instant::now();
        match chunks.recv() {
            Ok(chunk) => take(chunk, &mut frontier, hasher.as_mut()),
            Err(_) => senders_gone = true,
        }
        shared
            .hasher_idle_nanos
            .fetch_add(waiting.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
}

/// Hashes the part of `chunk` that starts at the frontier; drops the rest.
fn take(chunk: Chunk, frontier: &mut u64, hasher: &mut (dyn DynDigest + Send)) {
    let end = chunk.offset + chunk.data.len() as u64;
    if chunk.offset <= *frontier && end > *frontier {
        let skip = (*frontier - chunk.offset) as usize;
        hasher.update(&chunk.data[skip..]);
        *frontier = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};
    use std::sync::mpsc;

    /// Chunks out of order, some already on disk from an earlier run: the
    /// digest is the file's, whichever way each byte reached the hasher.
    #[test]
    fn hashes_in_order_from_memory_and_file() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let expect = hex::encode(Sha256::digest(&data));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.part");
        let file = File::options()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        file.set_len(data.len() as u64).unwrap();
        // An earlier run left [0, 50_000).
        file.write_all_at(&data[..50_000], 0).unwrap();
        let shared = Arc::new(Shared::new(
            file,
            data.len() as u64,
            RangeSet::from_ranges([(0, 50_000)]),
        ));
        let pool = Pool::new(4, 128 << 10);
        let (to_writer, writer_rx) = mpsc::channel();
        let (to_hasher, hasher_rx) = mpsc::channel();
        let w = {
            let shared = shared.clone();
            std::thread::spawn(move || write_chunks(shared, writer_rx, to_hasher))
        };
        let h = {
            let shared = shared.clone();
            std::thread::spawn(move || hash_in_order(shared, Algorithm::Sha256, hasher_rx))
        };
        // The tail first, then the middle in pieces.
        let pieces = [(200_000, 300_000), (50_000, 120_000), (120_000, 200_000)];
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for (s, e) in pieces {
            to_writer
                .send(Chunk {
                    offset: s as u64,
                    data: rt.block_on(pool.fill(&data[s..e])),
                })
                .unwrap();
        }
        drop(to_writer);
        w.join().unwrap().unwrap();
        assert_eq!(h.join().unwrap().unwrap(), Some(expect));
        assert_eq!(shared.written().ranges(), &[(0, 300_000)]);
        assert_eq!(std::fs::read(&path).unwrap(), data);
        // Every buffer came back. How many were ever allocated depends on how
        // fast the threads returned them (1 to 3 for 3 pieces), but a free one
        // is always reused rather than a new one allocated.
        assert_eq!(pool.available.available_permits(), 4);
        let allocated = pool.free.lock().unwrap().len();
        assert!(
            (1..=3).contains(&allocated),
            "{allocated} buffers for 3 pieces"
        );
        let again = rt.block_on(pool.fill(b"x"));
        assert_eq!(pool.free.lock().unwrap().len(), allocated - 1);
        drop(again);
        assert_eq!(pool.free.lock().unwrap().len(), allocated);
    }

    #[test]
    fn stops_when_data_stops_coming() {
        let dir = tempfile::tempdir().unwrap();
        let file = File::create(dir.path().join("f")).unwrap();
        let shared = Arc::new(Shared::new(file, 10, RangeSet::new()));
        let (tx, rx) = mpsc::channel::<Chunk>();
        drop(tx);
        assert_eq!(hash_in_order(shared, Algorithm::Sha256, rx).unwrap(), None);
    }
}
