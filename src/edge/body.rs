//! How fast a request body must arrive, and what becomes of a connection whose body
//! was not read to its end.
//!
//! actix times out request heads only: a client trickling a body (one byte every
//! few seconds) holds its connection for as long as it likes, and a chunked body
//! nobody reads is drained for ever. Here every body is read under a [`ReadRule`]:
//! a reader that breaks it gets an error (the surfaces answer `408` in the
//! contract's body), and a response to a request whose body was not read to the
//! end closes the connection.

use std::{
    any::Any,
    cell::RefCell,
    future::Future,
    pin::Pin,
    rc::Rc,
    task::{Context, Poll, Waker},
    time::Duration,
};

use actix_web::{
    body::{BodySize, MessageBody},
    dev::{Payload, ServiceRequest, ServiceResponse},
    error::PayloadError,
    http::ConnectionType,
    middleware::Next,
    HttpMessage,
};
use bytes::Bytes;
use futures_util::Stream;
use tokio::time::{Instant, Sleep};

/// How a body must arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadRule {
    /// All of it within this time of the request head (API bodies: small, so a
    /// client that cannot send them in this time is not trying).
    Deadline(Duration),
    /// At least `bytes` in every `window` (long bodies such as uploads: any
    /// duration, as long as they keep moving).
    MinRate { bytes: u64, window: Duration },
}

impl ReadRule {
    /// What a client that broke the rule is told.
    pub fn describe(&self) -> String {
        match self {
            ReadRule::Deadline(d) => format!("within {} seconds", d.as_secs()),
            ReadRule::MinRate { bytes, window } => {
                format!(
                    "at {bytes} bytes per {} seconds or faster",
                    window.as_secs()
                )
            }
        }
    }
}

/// The error a body stream yields when its rule is broken (an I/O `TimedOut`
/// carrying the rule, so readers can tell it from a client that went away).
#[derive(Debug)]
pub struct TooSlow(pub ReadRule);

impl std::fmt::Display for TooSlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the request body did not arrive {}", self.0.describe())
    }
}

impl std::error::Error for TooSlow {}

impl TooSlow {
    /// The rule `e` reports broken, if it is this error.
    pub fn of(e: &PayloadError) -> Option<ReadRule> {
        match e {
            PayloadError::Io(io) => io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<TooSlow>())
                .map(|t| t.0),
            _ => None,
        }
    }
}

/// A request body read under a rule. The handler reads it through a [`PacedBody`];
/// the middleware keeps a handle to see, after the response, whether it was read
/// to its end.
struct Pacer<S> {
    inner: S,
    rule: ReadRule,
    timer: Pin<Box<Sleep>>,
    /// Bytes received in the current window ([`ReadRule::MinRate`]).
    window_bytes: u64,
    /// Nothing more will be read: the body ended, or failed.
    done: bool,
    /// The body reached its end.
    ended: bool,
}

impl<S: Stream<Item = Result<Bytes, PayloadError>> + Unpin> Pacer<S> {
    fn new(inner: S, rule: ReadRule) -> Self {
        let first = match rule {
            ReadRule::Deadline(d) => d,
            ReadRule::MinRate { window, .. } => window,
        };
        Pacer {
            inner,
            rule,
            timer: Box::pin(tokio::time::sleep(first)),
            window_bytes: 0,
            done: false,
            ended: false,
        }
    }

    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, PayloadError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        // The clock first: a client sending a byte at every poll must not escape it.
        while self.timer.as_mut().poll(cx).is_ready() {
            match self.rule {
                ReadRule::MinRate { bytes, window } if self.window_bytes >= bytes => {
                    self.window_bytes = 0;
                    self.timer.as_mut().reset(Instant::now() + window);
                }
                rule => {
                    self.done = true;
                    let e = std::io::Error::new(std::io::ErrorKind::TimedOut, TooSlow(rule));
                    return Poll::Ready(Some(Err(PayloadError::Io(e))));
                }
            }
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.window_bytes += chunk.len() as u64;
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(other) => {
                self.done = true;
                self.ended = other.is_none();
                Poll::Ready(other)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// Reads what has already arrived, without waiting: true when that reaches the
    /// end of the body (a small body the handler did not need).
    fn drain_ready(&mut self, limit: usize) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        let mut drained = 0;
        while !self.done && drained <= limit {
            match self.poll_chunk(&mut cx) {
                Poll::Ready(Some(Ok(chunk))) => drained += chunk.len(),
                Poll::Ready(_) | Poll::Pending => break,
            }
        }
        self.ended
    }
}

/// The body as the handler reads it.
pub struct PacedBody<S>(Rc<RefCell<Pacer<S>>>);

impl<S: Stream<Item = Result<Bytes, PayloadError>> + Unpin> Stream for PacedBody<S> {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.borrow_mut().poll_chunk(cx)
    }
}

/// A body under `rule`, and the handle that tells whether it was read to the end.
fn paced<S: Stream<Item = Result<Bytes, PayloadError>> + Unpin>(
    inner: S,
    rule: ReadRule,
) -> (PacedBody<S>, Rc<RefCell<Pacer<S>>>) {
    let pacer = Rc::new(RefCell::new(Pacer::new(inner, rule)));
    (PacedBody(pacer.clone()), pacer)
}

/// The rules of one listener.
#[derive(Clone, Copy, Debug)]
pub struct BodyRules {
    /// API requests (`/api`, `/rest`, JSON-RPC): the whole body by a deadline.
    pub api: ReadRule,
    /// Upload bodies (`/cls/upload/`): any length, as long as they keep moving.
    pub upload: ReadRule,
    /// Unread bytes drained after the response before the connection is given up.
    pub drain_limit: usize,
}

/// Middleware: reads every request body under its rule; a response to a request
/// whose body did not reach its end closes the connection (actix would otherwise
/// wait for a chunked body's end for as long as the client keeps sending).
pub async fn pace(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + Unpin + 'static>,
) -> Result<ServiceResponse<HoldingBody<impl MessageBody>>, actix_web::Error> {
    let rules = req
        .app_data::<actix_web::web::Data<BodyRules>>()
        .map(|r| *r.get_ref());
    let payload = req.take_payload();
    let (Some(rules), false) = (rules, matches!(payload, Payload::None)) else {
        req.set_payload(payload);
        return Ok(next
            .call(req)
            .await?
            .map_body(|_, body| HoldingBody { body, unread: None }));
    };
    let rule = if req.path().starts_with("/cls/upload/") {
        rules.upload
    } else {
        rules.api
    };
    let (body, pacer) = paced(payload, rule);
    req.set_payload(Payload::Stream {
        payload: Box::pin(body),
    });
    let mut res = next.call(req).await?;
    let finished = pacer.borrow_mut().drain_ready(rules.drain_limit);
    if !finished {
        res.response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    // actix drains a dropped chunked body before it closes, for as long as the client
    // keeps sending; one still held when the response has been written makes it close.
    let unread = (!finished).then_some(pacer as Rc<dyn Any>);
    Ok(res.map_body(|_, body| HoldingBody { body, unread }))
}

/// A response body that holds its request's unread body until it has been written.
pub struct HoldingBody<B> {
    body: B,
    unread: Option<Rc<dyn Any>>,
}

impl<B: MessageBody + Unpin> MessageBody for HoldingBody<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
    }

    fn try_into_bytes(self) -> Result<Bytes, Self> {
        match self.unread {
            None => self
                .body
                .try_into_bytes()
                .map_err(|body| HoldingBody { body, unread: None }),
            unread => Err(HoldingBody {
                body: self.body,
                unread,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;
    use tokio::sync::mpsc;

    use super::*;

    type Chunks = Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>;

    /// A body whose chunks the test sends.
    fn chunks() -> (mpsc::UnboundedSender<&'static [u8]>, Chunks) {
        let (tx, mut rx) = mpsc::unbounded_channel::<&'static [u8]>();
        let stream = futures_util::stream::poll_fn(move |cx| {
            rx.poll_recv(cx)
                .map(|b| b.map(|b| Ok(Bytes::from_static(b))))
        });
        (tx, Box::pin(stream))
    }

    fn body(rule: ReadRule) -> (mpsc::UnboundedSender<&'static [u8]>, PacedBody<Chunks>) {
        let (tx, stream) = chunks();
        (tx, paced(stream, rule).0)
    }

    /// Reads until the rule breaks: the bytes that came before, and the error.
    async fn read_until_broken(body: &mut PacedBody<Chunks>) -> (usize, PayloadError) {
        let mut received = 0;
        loop {
            match body.next().await {
                Some(Ok(chunk)) => received += chunk.len(),
                Some(Err(e)) => return (received, e),
                None => panic!("ended without the rule"),
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_ends_a_trickling_body() {
        let (tx, mut body) = body(ReadRule::Deadline(Duration::from_secs(10)));
        let start = Instant::now();
        let sender = tokio::spawn(async move {
            // One byte a second, for longer than the deadline.
            for _ in 0..30 {
                if tx.send(b"x").is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        let (received, error) = read_until_broken(&mut body).await;
        assert_eq!(
            TooSlow::of(&error),
            Some(ReadRule::Deadline(Duration::from_secs(10)))
        );
        assert_eq!(start.elapsed(), Duration::from_secs(10));
        assert_eq!(received, 10);
        assert!(body.next().await.is_none(), "nothing after the error");
        sender.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_within_its_deadline_reads_whole() {
        let (tx, mut body) = body(ReadRule::Deadline(Duration::from_secs(10)));
        tx.send(b"hello ").unwrap();
        tx.send(b"world").unwrap();
        drop(tx);
        let mut all = Vec::new();
        while let Some(chunk) = body.next().await {
            all.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(all, b"hello world");
    }

    #[tokio::test(start_paused = true)]
    async fn a_minimum_rate_lets_a_long_body_run_while_it_moves() {
        let rule = ReadRule::MinRate {
            bytes: 4,
            window: Duration::from_secs(5),
        };
        let (tx, mut body) = body(rule);
        let start = Instant::now();
        let sender = tokio::spawn(async move {
            // A byte a second (5 per window) for a minute: well past any deadline.
            for _ in 0..60 {
                tx.send(b"x").unwrap();
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            // Then one byte every 2 s: 2 or 3 per window, under the rate.
            loop {
                if tx.send(b"x").is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        });
        let (received, error) = read_until_broken(&mut body).await;
        assert_eq!(TooSlow::of(&error), Some(rule));
        assert!(received >= 60, "{received}");
        let took = start.elapsed();
        assert!(
            took > Duration::from_secs(60) && took <= Duration::from_secs(70),
            "{took:?}"
        );
        sender.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn what_has_arrived_drains_without_waiting() {
        let (tx, stream) = chunks();
        let (_, pacer) = paced(stream, ReadRule::Deadline(Duration::from_secs(10)));
        tx.send(b"{}").unwrap();
        assert!(
            !pacer.borrow_mut().drain_ready(1024),
            "the end has not arrived"
        );
        drop(tx);
        assert!(pacer.borrow_mut().drain_ready(1024));
    }
}
