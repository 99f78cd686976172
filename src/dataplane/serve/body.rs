//! Response bodies of the data plane: large pipelined reads from a local
//! transfer directory or a ranged object-store GET, wrapped in a stream that
//! renews the session lease while bytes flow and logs a transfer cut short.

use std::{
    future::Future,
    io,
    os::unix::fs::FileExt,
    path::PathBuf,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bytes::Bytes;
use futures_util::{stream::BoxStream, Stream, StreamExt, TryStreamExt};
use object_store::{path::Path as ObjectPath, GetOptions, GetRange};
use tokio::{
    sync::{mpsc, Semaphore},
    task::JoinHandle,
};

use super::super::DataPlane;
use super::budget::{self, ReadAhead};
use crate::{
    domain::{FileName, SessionId},
    error::Result,
};

/// Floor of the renewal period, so tiny test timeouts do not hammer the database.
const MIN_RENEWAL: Duration = Duration::from_millis(100);
/// Ceiling of the renewal period: each renewal also re-checks the URI, so a
/// cancel, fail or delete stops a running transfer within this time.
const MAX_RENEWAL: Duration = Duration::from_secs(5);

pub type ByteStream = BoxStream<'static, io::Result<Bytes>>;

/// Streams `len` bytes at `offset` of a local file that is already open.
///
/// Each buffer is one positional read on the blocking pool, issued by a small
/// task that runs ahead of the response by at most [`budget::PER_DOWNLOAD`]
/// buffers, taken from the instance's read-ahead budget (see [`budget`]). A
/// blocking thread is held only while a read runs, never while a slow client
/// drains; the response hands the HTTP layer [`budget::SLICE`] bytes at a time.
pub fn local_file(file: std::fs::File, offset: u64, len: u64, read_ahead: ReadAhead) -> ByteStream {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(budget::PER_DOWNLOAD);
    let file = Arc::new(file);
    let slots = Arc::new(Semaphore::new(budget::PER_DOWNLOAD));
    tokio::spawn(async move {
        let mut pos = offset;
        let end = offset + len;
        while pos < end {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let want = usize::try_from(end - pos).unwrap_or(usize::MAX);
            let mut buf = read_ahead.buffer(want).holding(slot);
            let n = buf.len();
            let reader = file.clone();
            let read = tokio::task::spawn_blocking(move || {
                // A file shorter than the artifact's recorded size ends the
                // stream with UnexpectedEof: the client sees a truncated body.
                reader
                    .read_exact_at(buf.bytes_mut(), pos)
                    .map(|()| buf.freeze())
            })
            .await
            .unwrap_or_else(|e| Err(io::Error::other(e)));
            let failed = read.is_err();
            if tx.send(read).await.is_err() || failed {
                // The client went away (receiver dropped), or the read failed.
                return;
            }
            pos += n as u64;
        }
    });
    futures_util::stream::unfold((rx, Bytes::new()), |(mut rx, mut rest)| async move {
        if rest.is_empty() {
            match rx.recv().await? {
                Ok(bytes) => rest = bytes,
                Err(e) => return Some((Err(e), (rx, rest))),
            }
        }
        // The last slice takes the buffer along: it returns to the budget once
        // the HTTP layer has copied it.
        let slice = rest.split_to(rest.len().min(budget::SLICE));
        Some((Ok(slice), (rx, rest)))
    })
    .boxed()
}

/// Streams `len` bytes at `offset` of `key` from any object store (S3 and the like).
pub async fn object(
    store: &dyn object_store::ObjectStore,
    key: &str,
    offset: u64,
    len: u64,
    expected_size: u64,
) -> Result<ByteStream> {
    if len == 0 {
        return Ok(futures_util::stream::empty().boxed());
    }
    let options = GetOptions {
        range: Some(GetRange::Bounded(offset..offset + len)),
        ..GetOptions::default()
    };
    let got = store.get_opts(&ObjectPath::from(key), options).await?;
    if got.meta.size != expected_size || got.range != (offset..offset + len) {
        return Err(crate::error::Error::internal(anyhow::anyhow!(
            "transfer object {key} is {} bytes (range {:?}), the artifact says {expected_size}",
            got.meta.size,
            got.range
        )));
    }
    Ok(got.into_stream().map_err(io::Error::other).boxed())
}

/// What the lease keeper needs to know about one download.
pub struct Download {
    pub dataplane: DataPlane,
    pub session: SessionId,
    pub file: FileName,
    pub sha256: String,
    /// When the lease granted at the start of the request runs out.
    pub valid_until: Instant,
    /// Bytes the response promised.
    pub expected: u64,
}

/// Wraps a body: renews the session lease every `lease / 4` (at most 5 s) while
/// the client keeps reading, ends the body with an error once the URI is
/// revoked (or its validity can no longer be confirmed), and logs the
/// transfer when the body is dropped (completed or not).
pub struct Leased {
    inner: ByteStream,
    d: Download,
    period: Duration,
    next_renewal: Instant,
    renewal: Option<JoinHandle<(Instant, Result<Option<f64>>)>>,
    started: Instant,
    sent: u64,
    outcome: Option<&'static str>,
}

impl Leased {
    pub fn new(inner: ByteStream, d: Download) -> Leased {
        let period = (d.dataplane.lease() / 4).clamp(MIN_RENEWAL, MAX_RENEWAL);
        let now = Instant::now();
        Leased {
            inner,
            d,
            period,
            next_renewal: now + period,
            renewal: None,
            started: now,
            sent: 0,
            outcome: None,
        }
    }

    fn end(&mut self, outcome: &'static str, why: &str) -> Poll<Option<io::Result<Bytes>>> {
        self.outcome = Some(outcome);
        Poll::Ready(Some(Err(io::Error::other(why.to_string()))))
    }

    fn spawn_renewal(&mut self) {
        let dataplane = self.d.dataplane.clone();
        let (session, file, sha256) = (self.d.session, self.d.file.clone(), self.d.sha256.clone());
        self.renewal = Some(tokio::spawn(async move {
            // The lease the database grants runs from before the request at the latest.
            let asked = Instant::now();
            let r = dataplane.renew(session, &file, &sha256).await;
            (asked, r)
        }));
    }
}

impl Stream for Leased {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.outcome.is_some() {
            return Poll::Ready(None);
        }
        if let Some(handle) = this.renewal.as_mut() {
            if let Poll::Ready(joined) = Pin::new(handle).poll(cx) {
                this.renewal = None;
                match joined {
                    Ok((asked, Ok(Some(remaining)))) => {
                        this.d.valid_until =
                            asked + Duration::try_from_secs_f64(remaining).unwrap_or_default();
                    }
                    Ok((_, Ok(None))) => {
                        return this.end("revoked", "the download URI was revoked");
                    }
                    // A database hiccup does not end a transfer whose lease
                    // still holds; the next period tries again.
                    Ok((_, Err(e))) => {
                        tracing::warn!(session = %this.d.session, error = ?e, "download lease renewal failed");
                    }
                    Err(e) => {
                        tracing::warn!(session = %this.d.session, error = %e, "download lease renewal task failed");
                    }
                }
            }
        }
        let now = Instant::now();
        if now >= this.d.valid_until {
            return this.end("lease lost", "the session lease could not be renewed");
        }
        if this.renewal.is_none() && now >= this.next_renewal {
            this.next_renewal = now + this.period;
            this.spawn_renewal();
        }
        match this.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.sent += chunk.len() as u64;
                // Per chunk, so a long transfer shows in the rate while it runs.
                crate::metrics::metrics()
                    .download_bytes
                    .inc_by(chunk.len() as u64);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                tracing::error!(session = %this.d.session, file = %this.d.file, error = %e, "reading the transfer store failed mid-download");
                this.outcome = Some("read error");
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                this.outcome = Some(if this.sent == this.d.expected {
                    "complete"
                } else {
                    "short"
                });
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Leased {
    fn drop(&mut self) {
        let elapsed = self.started.elapsed();
        let secs = elapsed.as_secs_f64();
        let mib_per_s = if secs > 0.0 {
            self.sent as f64 / secs / f64::from(1u32 << 20)
        } else {
            0.0
        };
        let outcome = self.outcome.unwrap_or("client gone");
        // A complete transfer is the request's access line (bytes, duration);
        // only one cut short says more by default.
        macro_rules! ended {
            ($level:ident) => {
                tracing::$level!(
                    session = %self.d.session,
                    file = %self.d.file,
                    bytes = self.sent,
                    expected = self.d.expected,
                    duration_ms = elapsed.as_millis() as u64,
                    mib_per_s = format!("{mib_per_s:.1}"),
                    outcome,
                    "download ended"
                )
            };
        }
        if outcome == "complete" {
            ended!(debug);
        } else {
            ended!(info);
        }
    }
}

/// Reads `len` bytes at `offset` of a small local transfer file at once,
/// checking it holds the artifact's `size` bytes.
pub fn read_small(path: &std::path::Path, size: u64, offset: u64, len: u64) -> io::Result<Bytes> {
    let file = std::fs::File::open(path)?;
    let actual = file.metadata()?.len();
    if actual != size {
        return Err(io::Error::other(format!(
            "{} is {actual} bytes, the artifact says {size}",
            path.display()
        )));
    }
    let mut buf = vec![0; usize::try_from(len).map_err(io::Error::other)?];
    file.read_exact_at(&mut buf, offset)?;
    Ok(Bytes::from(buf))
}

/// Opens a local transfer file and checks it holds the artifact's bytes.
pub async fn open_local(path: PathBuf, size: u64) -> io::Result<std::fs::File> {
    tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&path)?;
        let actual = file.metadata()?.len();
        if actual != size {
            return Err(io::Error::other(format!(
                "{} is {actual} bytes, the artifact says {size}",
                path.display()
            )));
        }
        Ok(file)
    })
    .await
    .unwrap_or_else(|e| Err(io::Error::other(e)))
}
