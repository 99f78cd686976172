//! Tracing subscriber: JSON lines in production, human-readable on a terminal,
//! written off the request path by a thread of its own; and the redaction of
//! request targets for the access log.
//!
//! A request never waits on the log: each line goes into a bounded queue
//! ([`QUEUE_LINES`] lines) that one thread drains to stderr. When the queue is
//! full (stderr slower than the traffic), the line is dropped and counted in
//! `dls_log_lines_dropped_total`.

use std::{
    borrow::Cow,
    io::{IsTerminal, Write},
    sync::{
        mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError},
        OnceLock,
    },
    time::Duration,
};

use tracing_subscriber::{fmt, fmt::MakeWriter, prelude::*, EnvFilter};

use crate::config::LogSettings;

/// Lines the log queue holds before it drops (about 6 MiB of access lines).
pub const QUEUE_LINES: usize = 16_384;

/// Installs the global subscriber once; later calls are no-ops (tests call it repeatedly).
pub fn init(settings: &LogSettings) {
    // sqlx reports every migration notice at INFO; only its warnings matter to
    // operators. actix reports each download cut short (a revoked URI, a client
    // gone) as an ERROR; the data plane logs every transfer's outcome itself.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "sqlx=warn,actix_http::h1::dispatcher=off,{}",
            settings.level
        ))
    });
    let json = match settings.format.as_str() {
        "json" => true,
        "pretty" => false,
        _ => !std::io::stderr().is_terminal(),
    };
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if json {
        // One object per event, its fields at the top level; the innermost span
        // (a request's id) once, not again in a span list.
        registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(Queued),
            )
            .try_init()
    } else {
        registry.with(fmt::layer().with_writer(Queued)).try_init()
    };
}

/// Waits (at most 2 s) until the lines queued so far are written: call before
/// the process exits.
pub fn flush() {
    let Some(queue) = QUEUE.get() else { return };
    let (done, wait) = mpsc::sync_channel(1);
    if queue.send(Entry::Flush(done)).is_ok() {
        let _ = wait.recv_timeout(Duration::from_secs(2));
    }
}

enum Entry {
    Line(Vec<u8>),
    Flush(SyncSender<()>),
}

static QUEUE: OnceLock<SyncSender<Entry>> = OnceLock::new();

/// The queue, and its writer thread on first use.
fn queue() -> &'static SyncSender<Entry> {
    QUEUE.get_or_init(|| {
        let (tx, rx) = mpsc::sync_channel(QUEUE_LINES);
        let spawned = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || drain(rx, std::io::stderr()));
        if let Err(e) = spawned {
            eprintln!("cannot start the log writer thread: {e}");
        }
        tx
    })
}

/// Writes queued lines to `out`, flushing whenever the queue runs empty.
fn drain(rx: Receiver<Entry>, out: impl Write) {
    let mut out = std::io::BufWriter::with_capacity(64 << 10, out);
    loop {
        let entry = match rx.try_recv() {
            Ok(entry) => entry,
            Err(TryRecvError::Empty) => {
                let _ = out.flush();
                match rx.recv() {
                    Ok(entry) => entry,
                    Err(_) => return,
                }
            }
            Err(TryRecvError::Disconnected) => {
                let _ = out.flush();
                return;
            }
        };
        match entry {
            Entry::Line(line) => {
                let _ = out.write_all(&line);
            }
            Entry::Flush(done) => {
                let _ = out.flush();
                let _ = done.try_send(());
            }
        }
    }
}

/// The subscriber's writer: one buffer per event, queued whole when dropped.
struct Queued;

impl<'a> MakeWriter<'a> for Queued {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line(Vec::new())
    }
}

struct Line(Vec<u8>);

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        enqueue(queue(), std::mem::take(&mut self.0));
    }
}

/// Queues `line` without waiting: a full queue drops it, and counts it.
fn enqueue(queue: &SyncSender<Entry>, line: Vec<u8>) {
    match queue.try_send(Entry::Line(line)) {
        Ok(()) | Err(TrySendError::Disconnected(_)) => {}
        Err(TrySendError::Full(_)) => crate::metrics::metrics().log_lines_dropped.inc(),
    }
}

/// What replaces a secret in the log.
pub const REDACTED: &str = "REDACTED";

/// Query parameters whose values are credentials (compared without case).
const SECRET_PARAMS: &[&str] = &[
    "token",
    "session_token",
    "vmware-api-session-id",
    "vmware_api_session_id",
    "session_id",
    "sessionid",
    "access_token",
    "api_key",
    "apikey",
    "key",
    "password",
    "passwd",
    "secret",
    "sig",
    "signature",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
];

/// A request target (path and query) as the log may show it: the signed
/// segment of `/cls/data/{token}/...` and `/cls/upload/{token}/...`, every path segment that looks like a
/// token (long, of URL-safe base64 characters, not a UUID) and the values of
/// credential-like query parameters are replaced by `REDACTED`.
pub fn redact_target(target: &str) -> Cow<'_, str> {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    // The data plane's URIs, downloads and uploads alike: "", "cls", kind, the token, ...
    let signed = path.starts_with("/cls/data/") || path.starts_with("/cls/upload/");
    let path_clean = !signed && !path.split('/').any(token_like);
    let query_clean = query.is_none_or(|q| !q.split('&').any(secret_pair));
    if path_clean && query_clean {
        return Cow::Borrowed(target);
    }
    let mut out = String::with_capacity(target.len());
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if (signed && i == 3) || token_like(segment) {
            out.push_str(REDACTED);
        } else {
            out.push_str(segment);
        }
    }
    if let Some(query) = query {
        out.push('?');
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            if secret_pair(pair) {
                let name = pair.split_once('=').map_or(pair, |(n, _)| n);
                out.push_str(name);
                out.push('=');
                out.push_str(REDACTED);
            } else {
                out.push_str(pair);
            }
        }
    }
    Cow::Owned(out)
}

/// A query pair whose name is a credential's, or whose value looks like a token.
fn secret_pair(pair: &str) -> bool {
    let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
    SECRET_PARAMS.iter().any(|s| name.eq_ignore_ascii_case(s)) || token_like(value)
}

/// Long runs of URL-safe base64 (login tokens are 43 characters, download
/// tokens longer): secrets, unless they are UUIDs (ids, not credentials).
fn token_like(s: &str) -> bool {
    s.len() >= 32
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'%' | b'='))
        && s.bytes().any(|b| b.is_ascii_digit())
        && s.bytes().any(|b| b.is_ascii_alphabetic())
        && !(s.len() == 36 && uuid::Uuid::parse_str(s).is_ok())
        && !looks_like_file_name(s)
}

/// `name.ext` with a short extension: a file name (they appear in paths and
/// queries), not a token.
fn looks_like_file_name(s: &str) -> bool {
    s.rsplit_once('.').is_some_and(|(stem, ext)| {
        !stem.is_empty()
            && (1..=5).contains(&ext.len())
            && ext.bytes().all(|b| b.is_ascii_alphanumeric())
            && ext.bytes().any(|b| b.is_ascii_alphabetic())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signed_segment_of_a_download_uri_is_redacted() {
        let t = "/cls/data/AAECAwQFBgcICQoLDA0ODw.k1.9vJ2cXw3mQb6nH8sT0aRkLq4ZyUeW1oPiN7dGxCfVjE/disk-0.vmdk";
        assert_eq!(redact_target(t), "/cls/data/REDACTED/disk-0.vmdk");
        // Whatever the segment holds, even something short or malformed.
        assert_eq!(redact_target("/cls/data/x/y"), "/cls/data/REDACTED/y");
        // Upload URIs are signed the same way, short (tampered) tokens too.
        assert_eq!(redact_target("/cls/upload/x/y"), "/cls/upload/REDACTED/y");
        assert_eq!(
            redact_target("/cls/data/abc/f.iso?foo=1"),
            "/cls/data/REDACTED/f.iso?foo=1"
        );
    }

    #[test]
    fn token_like_path_segments_are_redacted() {
        let login = "bpdUwXQF5c1_ehYqSalHnzz8kCnLI8wSsbRiioaKGPA";
        assert_eq!(
            redact_target(&format!("/api/session/{login}")),
            "/api/session/REDACTED"
        );
        // Ids, words and file names stay.
        for t in [
            "/api/content/library/item/download-session/9b7c6f1e-2d3a-4b5c-8d9e-0f1a2b3c4d5e/file",
            "/rest/com/vmware/content/library/item/download-session/id:9b7c6f1e-2d3a-4b5c-8d9e-0f1a2b3c4d5e",
            "/api/content/library/item/download-session/abc?action=prepare",
            "/rest/com/vmware/content/library/item/downloadsession/file",
            "/x/ubuntu-22.04.3-live-server-amd64-disk1.vmdk",
            "/healthz",
            "",
            "/",
        ] {
            assert_eq!(redact_target(t), t);
            assert!(matches!(redact_target(t), Cow::Borrowed(_)), "{t}");
        }
    }

    #[test]
    fn credential_query_parameters_are_redacted() {
        assert_eq!(
            redact_target("/api/session?session_token=abc&x=1"),
            "/api/session?session_token=REDACTED&x=1"
        );
        assert_eq!(
            redact_target("/a?X-Amz-Signature=deadbeef&X-Amz-Credential=AK%2Fx&part=2"),
            "/a?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED&part=2"
        );
        assert_eq!(redact_target("/a?Token"), "/a?Token=REDACTED");
        // A token under any name is still a token.
        assert_eq!(
            redact_target("/a?q=bpdUwXQF5c1_ehYqSalHnzz8kCnLI8wSsbRiioaKGPA"),
            "/a?q=REDACTED"
        );
        let plain = "/api/content/library/item/download-session/x/file?file_name=a.ovf&~action=get";
        assert_eq!(redact_target(plain), plain);
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_waiting() {
        let (tx, rx) = mpsc::sync_channel(2);
        let dropped = || crate::metrics::metrics().log_lines_dropped.get();
        let before = dropped();
        let start = std::time::Instant::now();
        for i in 0..5 {
            enqueue(&tx, format!("{i}\n").into_bytes());
        }
        assert!(start.elapsed() < Duration::from_secs(1));
        assert_eq!(dropped() - before, 3);
        let kept: Vec<_> = rx
            .try_iter()
            .map(|e| match e {
                Entry::Line(l) => l,
                Entry::Flush(_) => unreachable!(),
            })
            .collect();
        assert_eq!(kept, [b"0\n".to_vec(), b"1\n".to_vec()]);
    }

    #[test]
    fn the_writer_drains_lines_in_order() {
        let (tx, rx) = mpsc::sync_channel(4);
        let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let writer = std::thread::spawn({
            let out = Shared(out.clone());
            move || drain(rx, out)
        });
        tx.send(Entry::Line(b"one\n".to_vec())).unwrap();
        tx.send(Entry::Line(b"two\n".to_vec())).unwrap();
        let (done, wait) = mpsc::sync_channel(1);
        tx.send(Entry::Flush(done)).unwrap();
        wait.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(out.lock().unwrap().as_slice(), b"one\ntwo\n");
        drop(tx);
        writer.join().unwrap();
    }
}
