//! Downloading one prepared file: Range requests over up to N connections
//! into `NAME.part`, hashed while it arrives, resumable, renamed only once
//! the checksum matches.
//!
//! One connection starts. Another joins on trial only while both the writer
//! and the hasher wait for data (the link, not this machine, is the bound),
//! and stays only if the transfer got clearly faster with it; otherwise it
//! leaves after its current segment and no other joins for a while. So
//! parallel ranges never slow down a link one connection already fills.
//! Memory is bounded: received bytes live in a fixed pool of buffers
//! until written and hashed.

pub mod checksum;
pub mod pipeline;
pub mod ranges;
pub mod state;

use std::{
    collections::VecDeque,
    fs::File,
    os::unix::fs::FileExt,
    path::Path,
    sync::{
        atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
        mpsc, Arc, Mutex,
    },
    time::{Duration, Instant},
};

use reqwest::{header, StatusCode};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use url::Url;

use self::{
    checksum::{AlgorithmExt, Checksum},
    pipeline::{hash_in_order, write_chunks, Chunk, Pool, Shared},
    ranges::RangeSet,
    state::{discard, Paths, ResumeState},
};
use super::{
    api::short_cause,
    failure::{Failure, FailureKind},
    progress::FileProgress,
};

/// Received bytes waiting to be written or hashed, at most: this many
/// buffers of this size (larger than what the HTTP client reads at once).
const BUFFERS: usize = 64;
const BUFFER_SIZE: usize = 512 << 10;
/// Segment sizes one Range request asks for: a segment takes about
/// `SEGMENT_SECONDS` at the connection's last rate, within these bounds.
const MIN_SEGMENT: u64 = 4 << 20;
const MAX_SEGMENT: u64 = 256 << 20;
const SEGMENT_SECONDS: f64 = 2.0;
const TICK: Duration = Duration::from_millis(100);
/// Another connection is tried at most once per window, when the writer and
/// the hasher both waited for data this share of the window; it stays when the
/// next window is this much faster, else none is tried for `RAMP_PAUSE`.
const RAMP_WINDOW: Duration = Duration::from_millis(500);
const RAMP_IDLE: f64 = 0.5;
const RAMP_GAIN: f64 = 1.15;
const RAMP_PAUSE: Duration = Duration::from_secs(30);
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// Transfer knobs from the command line.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Most connections per file.
    pub parallel: usize,
    /// Failed attempts in a row (without progress) before a connection gives up.
    pub retries: u32,
}

/// One file to download.
pub struct Job {
    pub name: String,
    pub paths: Paths,
    pub size: u64,
    pub checksum: Checksum,
    pub uri: Url,
    pub http: reqwest::Client,
    /// Reads transport errors for the user (untrusted certificate, unreachable).
    pub describe: Arc<dyn Fn(&reqwest::Error) -> Failure + Send + Sync>,
    pub options: Options,
    pub progress: Arc<FileProgress>,
    pub cancel: CancellationToken,
}

/// A verified file under its final name.
#[derive(Clone, Debug)]
pub struct Verified {
    /// Lower-case hex digest (of the algorithm the server announced).
    pub digest: String,
    /// Bytes received from the server by this run.
    pub fetched: u64,
    /// Bytes a previous run had left.
    pub resumed: u64,
    /// Most connections that were open at once.
    pub connections: usize,
}

/// Why a transfer stopped without a verified file.
#[derive(Debug)]
pub enum Stop {
    /// The data endpoint refused the URI (401/403/404/410): the session
    /// expired or was revoked. A new session can continue the same file.
    EndpointGone(String),
    /// The server's content is not what the partial file holds; the partial
    /// file was discarded.
    ContentChanged(String),
    Failed(Failure),
}

/// Whether `path` already holds exactly this content (a finished earlier run).
pub async fn already_there(path: &Path, size: u64, checksum: &Checksum) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    if !meta.is_file() || meta.len() != size {
        return false;
    }
    let path = path.to_path_buf();
    let algorithm = checksum.algorithm;
    let digest = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
        let file = File::open(&path)?;
        let mut hasher = algorithm.hasher();
        let mut buf = vec![0u8; 1 << 20];
        let mut at = 0u64;
        while at < size {
            let n = (size - at).min(buf.len() as u64) as usize;
            file.read_exact_at(&mut buf[..n], at)?;
            hasher.update(&buf[..n]);
            at += n as u64;
        }
        Ok(hex::encode(hasher.finalize()))
    })
    .await;
    matches!(digest, Ok(Ok(d)) if d == checksum.hex)
}

/// Downloads, verifies and renames one file.
pub async fn download(job: &Job) -> Result<Verified, Stop> {
    let paths = &job.paths;
    let local =
        |what: &str, path: &Path, e: std::io::Error| Stop::Failed(Failure::local(what, path, e));
    let resumed_state = ResumeState::load(paths, job.size, &job.checksum);
    let (file, have, etag) = match resumed_state {
        Some(st) => {
            let file = File::options()
                .read(true)
                .write(true)
                .open(&paths.part)
                .map_err(|e| local("open", &paths.part, e))?;
            let have = st.have();
            (file, have, st.etag)
        }
        None => {
            discard(paths).map_err(|e| local("remove", &paths.part, e))?;
            let file = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&paths.part)
                .map_err(|e| local("create", &paths.part, e))?;
            file.set_len(job.size)
                .map_err(|e| local("size", &paths.part, e))?;
            (file, RangeSet::new(), None)
        }
    };
    let resumed = have.total();
    let missing = have.missing(job.size);
    let shared = Arc::new(Shared::new(file, job.size, have));
    job.progress.have.store(resumed, Ordering::Relaxed);
    job.progress.size.store(job.size, Ordering::Relaxed);

    let (to_writer, writer_rx) = mpsc::channel::<Chunk>();
    let (to_hasher, hasher_rx) = mpsc::channel::<Chunk>();
    let writer = tokio::task::spawn_blocking({
        let shared = shared.clone();
        move || write_chunks(shared, writer_rx, to_hasher)
    });
    let hasher = tokio::task::spawn_blocking({
        let shared = shared.clone();
        let algorithm = job.checksum.algorithm;
        move || hash_in_order(shared, algorithm, hasher_rx)
    });

    let ctx = Arc::new(Conn {
        http: job.http.clone(),
        uri: job.uri.clone(),
        size: job.size,
        etag: Mutex::new(etag),
        schedule: Mutex::new(missing.into_iter().collect()),
        pool: Pool::new(BUFFERS, BUFFER_SIZE),
        stop: job.cancel.child_token(),
        retries: job.options.retries,
        describe: job.describe.clone(),
        fetched: AtomicU64::new(0),
        ranges_honoured: AtomicBool::new(false),
        no_ranges: AtomicBool::new(false),
        backing_off: AtomicU32::new(0),
    });
    let save = |ctx: &Conn| {
        let etag = ctx.etag.lock().unwrap_or_else(|p| p.into_inner()).clone();
        // A record that cannot be written only costs the resume; keep going.
        let _ =
            ResumeState::new(job.size, job.checksum.clone(), etag, &shared.written()).save(paths);
    };

    let mut conns = JoinSet::new();
    if ctx.remaining() > 0 {
        conns.spawn(connection(ctx.clone(), to_writer.clone(), Role::steady()));
    }
    let mut ramp = Ramp::new(&shared, &ctx);
    let mut tick = tokio::time::interval(TICK);
    let mut last_save = Instant::now();
    let ended: Result<(), Stop> = loop {
        if conns.is_empty() {
            if ctx.remaining() == 0 {
                break Ok(());
            }
            // Retired connections left work behind them (their last segment
            // ran into trouble): someone has to do it.
            conns.spawn(connection(ctx.clone(), to_writer.clone(), Role::steady()));
        }
        tokio::select! {
            _ = job.cancel.cancelled() => break Err(Stop::Failed(Failure::new(
                FailureKind::Interrupted, "interrupted"))),
            joined = conns.join_next() => match joined {
                Some(Ok(Ok(()))) | None => {}
                Some(Ok(Err(stop))) => break Err(stop),
                Some(Err(e)) => break Err(Stop::Failed(Failure::other(format!(
                    "a download connection failed: {e}")))),
            },
            _ = tick.tick() => {
                job.progress.have.store(shared.written_bytes.load(Ordering::Relaxed), Ordering::Relaxed);
                job.progress.fetched.store(ctx.fetched.load(Ordering::Relaxed), Ordering::Relaxed);
                if last_save.elapsed() >= SAVE_EVERY {
                    save(&ctx);
                    last_save = Instant::now();
                }
                let wanted = conns.len() < job.options.parallel
                    && ctx.ranges_honoured.load(Ordering::Relaxed)
                    && !ctx.no_ranges.load(Ordering::Relaxed)
                    && ctx.backing_off.load(Ordering::Relaxed) == 0
                    && ctx.remaining() >= MIN_SEGMENT;
                if let Some(role) = ramp.step(&shared, &ctx, wanted) {
                    conns.spawn(connection(ctx.clone(), to_writer.clone(), role));
                    ramp.peak = ramp.peak.max(conns.len());
                }
            }
        }
    };

    // Stop what still runs, let the writer put down what it holds, record.
    ctx.stop.cancel();
    while conns.join_next().await.is_some() {}
    drop(to_writer);
    let written = writer.await;
    let write_error = match written {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(Failure::local("write", &paths.part, e)),
        Err(e) => Some(Failure::other(format!("the writer failed: {e}"))),
    };
    job.progress.have.store(
        shared.written_bytes.load(Ordering::Relaxed),
        Ordering::Relaxed,
    );
    job.progress
        .fetched
        .store(ctx.fetched.load(Ordering::Relaxed), Ordering::Relaxed);
    let ended = match (ended, write_error) {
        (_, Some(f)) => Err(Stop::Failed(f)),
        (e, None) => e,
    };
    if let Err(stop) = ended {
        shared.stop.store(true, Ordering::Relaxed);
        let _ = hasher.await;
        if let Stop::ContentChanged(_) = stop {
            let _ = discard(paths);
        } else {
            save(&ctx);
        }
        return Err(stop);
    }
    let digest = match hasher.await {
        Ok(Ok(Some(d))) => d,
        Ok(Ok(None)) => {
            save(&ctx);
            return Err(Stop::Failed(Failure::other(format!(
                "{}: the download ended before the file was complete; run the command again",
                job.name
            ))));
        }
        Ok(Err(e)) => return Err(Stop::Failed(Failure::local("read back", &paths.part, e))),
        Err(e) => {
            return Err(Stop::Failed(Failure::other(format!(
                "the hasher failed: {e}"
            ))))
        }
    };
    if digest != job.checksum.hex {
        // Never resume from bytes that failed the check: the next run starts clean.
        let _ = discard(paths);
        return Err(Stop::Failed(Failure::new(
            FailureKind::ChecksumMismatch,
            format!(
                "{}: checksum mismatch: the {} of what arrived is {digest}, the server announced {}; \
                 the damaged download was discarded (no {} was written). Run the command again; \
                 if it fails the same way, the data is damaged on the way (a proxy?) or on the server",
                job.name,
                job.checksum.algorithm.display(),
                job.checksum.hex,
                paths.done.display()
            ),
        )));
    }
    std::fs::rename(&paths.part, &paths.done)
        .map_err(|e| Stop::Failed(Failure::local("rename into place", &paths.done, e)))?;
    let _ = std::fs::remove_file(&paths.state);
    Ok(Verified {
        digest,
        fetched: ctx.fetched.load(Ordering::Relaxed),
        resumed,
        connections: ramp.peak,
    })
}

/// What a connection is told by the ramp: a trial connection takes small
/// segments and may be asked to leave after the one it has.
struct Role {
    trial: AtomicBool,
    retire: AtomicBool,
}

impl Role {
    fn steady() -> Arc<Role> {
        Arc::new(Role {
            trial: AtomicBool::new(false),
            retire: AtomicBool::new(false),
        })
    }
}

/// Decides, once per window, whether another connection is worth a try and
/// whether the last one tried made the transfer faster.
struct Ramp {
    since: Instant,
    fetched: u64,
    writer_idle: u64,
    hasher_idle: u64,
    /// The connection on trial and the rate before it joined.
    trial: Option<(Arc<Role>, f64)>,
    paused_until: Option<Instant>,
    peak: usize,
}

impl Ramp {
    fn new(shared: &Shared, ctx: &Conn) -> Ramp {
        Ramp {
            since: Instant::now(),
            fetched: ctx.fetched.load(Ordering::Relaxed),
            writer_idle: shared.writer_idle_nanos.load(Ordering::Relaxed),
            hasher_idle: shared.hasher_idle_nanos.load(Ordering::Relaxed),
            trial: None,
            paused_until: None,
            peak: 1,
        }
    }

    /// At the end of each window: settles a trial, or returns the role of a
    /// new connection to start when `wanted` and the link looks like the bound.
    fn step(&mut self, shared: &Shared, ctx: &Conn, wanted: bool) -> Option<Arc<Role>> {
        let elapsed = self.since.elapsed();
        if elapsed < RAMP_WINDOW {
            return None;
        }
        let nanos = elapsed.as_nanos() as f64;
        let fetched = ctx.fetched.load(Ordering::Relaxed);
        let writer_idle = shared.writer_idle_nanos.load(Ordering::Relaxed);
        let hasher_idle = shared.hasher_idle_nanos.load(Ordering::Relaxed);
        let rate = (fetched - self.fetched) as f64 / elapsed.as_secs_f64();
        let starving = (writer_idle - self.writer_idle) as f64 / nanos > RAMP_IDLE
            && (hasher_idle - self.hasher_idle) as f64 / nanos > RAMP_IDLE;
        (self.since, self.fetched, self.writer_idle, self.hasher_idle) =
            (Instant::now(), fetched, writer_idle, hasher_idle);
        if let Some((role, before)) = self.trial.take() {
            if rate >= before * RAMP_GAIN {
                role.trial.store(false, Ordering::Relaxed);
            } else {
                role.retire.store(true, Ordering::Relaxed);
                self.paused_until = Some(Instant::now() + RAMP_PAUSE);
            }
            return None;
        }
        let paused = self.paused_until.is_some_and(|t| Instant::now() < t);
        if !wanted || paused || !starving {
            return None;
        }
        let role = Arc::new(Role {
            trial: AtomicBool::new(true),
            retire: AtomicBool::new(false),
        });
        self.trial = Some((role.clone(), rate));
        Some(role)
    }
}

/// What the connections of one file share.
struct Conn {
    http: reqwest::Client,
    uri: Url,
    size: u64,
    /// The ETag the data plane sent first; later Range requests carry it in `If-Range`.
    etag: Mutex<Option<String>>,
    /// Ranges nobody fetches yet, in file order.
    schedule: Mutex<VecDeque<(u64, u64)>>,
    pool: Arc<Pool>,
    stop: CancellationToken,
    retries: u32,
    describe: Arc<dyn Fn(&reqwest::Error) -> Failure + Send + Sync>,
    fetched: AtomicU64,
    /// A 206 came back: more connections can split the work.
    ranges_honoured: AtomicBool,
    /// A 200 answered a Range request: one connection reads everything.
    no_ranges: AtomicBool,
    /// Connections waiting to retry: no new ones join meanwhile.
    backing_off: AtomicU32,
}

impl Conn {
    fn schedule(&self) -> std::sync::MutexGuard<'_, VecDeque<(u64, u64)>> {
        self.schedule.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn remaining(&self) -> u64 {
        self.schedule().iter().map(|(s, e)| e - s).sum()
    }

    /// The next segment in file order, at most `max` bytes.
    fn take(&self, max: u64) -> Option<(u64, u64)> {
        let mut q = self.schedule();
        let (s, e) = q.pop_front()?;
        if e - s > max {
            q.push_front((s + max, e));
            Some((s, s + max))
        } else {
            Some((s, e))
        }
    }

    /// Puts an unfinished range back, keeping file order.
    fn give_back(&self, s: u64, e: u64) {
        if s >= e {
            return;
        }
        let mut q = self.schedule();
        let at = q.iter().position(|(a, _)| *a > s).unwrap_or(q.len());
        q.insert(at, (s, e));
    }
}

enum FetchError {
    Stop(Stop),
    /// Worth another attempt: connection trouble, 5xx.
    Transient(String),
    Cancelled,
}

/// One connection: takes segments in file order until none are left (or
/// until the ramp retires it).
async fn connection(
    ctx: Arc<Conn>,
    to_writer: mpsc::Sender<Chunk>,
    role: Arc<Role>,
) -> Result<(), Stop> {
    let mut segment = MIN_SEGMENT;
    let mut failures = 0u32;
    loop {
        if role.retire.load(Ordering::Relaxed) {
            return Ok(());
        }
        let max = if role.trial.load(Ordering::Relaxed) {
            MIN_SEGMENT
        } else {
            segment
        };
        let Some((start, mut end)) = ctx.take(max) else {
            return Ok(());
        };
        let began = Instant::now();
        let mut pos = start;
        let result = fetch(&ctx, &to_writer, start, &mut end, &mut pos).await;
        ctx.give_back(pos, end);
        match result {
            Ok(()) => {
                failures = 0;
                let rate = (end - start) as f64 / began.elapsed().as_secs_f64().max(1e-3);
                segment = ((rate * SEGMENT_SECONDS) as u64).clamp(MIN_SEGMENT, MAX_SEGMENT);
            }
            Err(FetchError::Cancelled) => return Ok(()),
            Err(FetchError::Stop(stop)) => return Err(stop),
            Err(FetchError::Transient(why)) => {
                if pos > start {
                    failures = 0;
                }
                failures += 1;
                if failures > ctx.retries {
                    let origin = ctx.uri.origin().ascii_serialization();
                    return Err(Stop::Failed(Failure::new(
                        FailureKind::Unreachable,
                        format!("the download from {origin} keeps failing ({why})"),
                    )));
                }
                let wait = Duration::from_millis(500 << (failures - 1).min(5));
                ctx.backing_off.fetch_add(1, Ordering::Relaxed);
                let cancelled = tokio::select! {
                    _ = tokio::time::sleep(wait.min(Duration::from_secs(10))) => false,
                    _ = ctx.stop.cancelled() => true,
                };
                ctx.backing_off.fetch_sub(1, Ordering::Relaxed);
                if cancelled {
                    return Ok(());
                }
            }
        }
    }
}

/// `bytes a-b/total` of a 206.
fn content_range(headers: &header::HeaderMap) -> Option<(u64, u64, Option<u64>)> {
    let v = headers.get(header::CONTENT_RANGE)?.to_str().ok()?;
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?, total))
}

/// Fetches `[start, end)` (a whole-file GET when that is the file), sending
/// chunks to the writer; `pos` tells how far it got.
async fn fetch(
    ctx: &Conn,
    to_writer: &mpsc::Sender<Chunk>,
    start: u64,
    end: &mut u64,
    pos: &mut u64,
) -> Result<(), FetchError> {
    let whole = start == 0 && *end == ctx.size;
    let mut req = ctx.http.get(ctx.uri.clone());
    let mut sent_if_range = false;
    if !whole {
        req = req.header(header::RANGE, format!("bytes={start}-{}", *end - 1));
        let etag = ctx.etag.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(tag) = etag {
            req = req.header(header::IF_RANGE, tag);
            sent_if_range = true;
        }
    }
    let sent = tokio::select! {
        r = req.send() => r,
        _ = ctx.stop.cancelled() => return Err(FetchError::Cancelled),
    };
    let mut resp = match sent {
        Ok(r) => r,
        Err(e) => {
            let failure = (ctx.describe)(&e);
            return Err(match failure.kind {
                FailureKind::UntrustedCertificate => FetchError::Stop(Stop::Failed(failure)),
                _ => FetchError::Transient(short_cause(&e)),
            });
        }
    };
    let status = resp.status();
    match status {
        StatusCode::PARTIAL_CONTENT if !whole => {
            match content_range(resp.headers()) {
                Some((a, b, total)) if a == start && b + 1 == *end => {
                    if total.is_some_and(|t| t != ctx.size) {
                        return Err(FetchError::Stop(Stop::ContentChanged(
                            "the file's size changed on the server".into(),
                        )));
                    }
                }
                _ => {
                    return Err(FetchError::Stop(Stop::Failed(Failure::other(format!(
                        "the download endpoint answered a different range than asked \
                         (bytes={start}-{}, got {:?})",
                        *end - 1,
                        resp.headers().get(header::CONTENT_RANGE)
                    )))))
                }
            }
            ctx.ranges_honoured.store(true, Ordering::Relaxed);
        }
        StatusCode::OK if whole => {}
        StatusCode::OK if sent_if_range => {
            return Err(FetchError::Stop(Stop::ContentChanged(
                "the file changed on the server (If-Range did not match)".into(),
            )))
        }
        StatusCode::OK if start == 0 => {
            // The server ignores Range: this connection reads the whole file.
            ctx.no_ranges.store(true, Ordering::Relaxed);
            ctx.schedule().clear();
            *end = ctx.size;
        }
        StatusCode::OK => {
            return Err(FetchError::Stop(Stop::Failed(Failure::other(
                "the download endpoint ignored a Range request in the middle of the file; \
                 delete the .part file and run again with --parallel 1",
            ))))
        }
        StatusCode::UNAUTHORIZED
        | StatusCode::FORBIDDEN
        | StatusCode::NOT_FOUND
        | StatusCode::GONE => {
            return Err(FetchError::Stop(Stop::EndpointGone(format!(
                "the download endpoint answered HTTP {status}"
            ))))
        }
        StatusCode::RANGE_NOT_SATISFIABLE => {
            return Err(FetchError::Stop(Stop::ContentChanged(
                "the file is shorter on the server than announced".into(),
            )))
        }
        s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
            return Err(FetchError::Transient(format!(
                "the download endpoint answered HTTP {status}"
            )))
        }
        _ => {
            return Err(FetchError::Stop(Stop::Failed(Failure::other(format!(
                "the download endpoint answered HTTP {status}"
            )))))
        }
    }
    if let Some(tag) = resp
        .headers()
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
    {
        let mut known = ctx.etag.lock().unwrap_or_else(|p| p.into_inner());
        match known.as_deref() {
            None => *known = Some(tag.to_string()),
            Some(k) if k != tag => {
                return Err(FetchError::Stop(Stop::ContentChanged(
                    "the file changed on the server (its ETag differs)".into(),
                )))
            }
            _ => {}
        }
    }
    loop {
        let next = tokio::select! {
            c = resp.chunk() => c,
            _ = ctx.stop.cancelled() => return Err(FetchError::Cancelled),
        };
        let mut data = match next {
            Ok(Some(d)) => d,
            Ok(None) => break,
            Err(e) => return Err(FetchError::Transient(short_cause(&e))),
        };
        let room = *end - *pos;
        if data.len() as u64 > room {
            // More than asked for: keep what belongs to the range, drop the connection.
            data.truncate(room as usize);
        }
        if data.is_empty() {
            if room == 0 {
                break;
            }
            continue;
        }
        let mut rest = &data[..];
        while !rest.is_empty() {
            let buf = tokio::select! {
                b = ctx.pool.fill(rest) => b,
                _ = ctx.stop.cancelled() => return Err(FetchError::Cancelled),
            };
            let len = buf.len();
            rest = &rest[len..];
            let offset = *pos;
            if to_writer.send(Chunk { offset, data: buf }).is_err() {
                // The writer stopped on an error; the caller reports it.
                return Err(FetchError::Cancelled);
            }
            *pos += len as u64;
            ctx.fetched.fetch_add(len as u64, Ordering::Relaxed);
        }
    }
    if *pos < *end {
        return Err(FetchError::Transient(format!(
            "the connection ended after {} of {} bytes of a range",
            *pos - start,
            *end - start
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_content_range() {
        let mut h = header::HeaderMap::new();
        h.insert(header::CONTENT_RANGE, "bytes 0-99/1000".parse().unwrap());
        assert_eq!(content_range(&h), Some((0, 99, Some(1000))));
        h.insert(header::CONTENT_RANGE, "bytes 5-9/*".parse().unwrap());
        assert_eq!(content_range(&h), Some((5, 9, None)));
        h.insert(header::CONTENT_RANGE, "items 5-9/10".parse().unwrap());
        assert_eq!(content_range(&h), None);
    }
}
