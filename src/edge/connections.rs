//! The cap on open connections (`http.max_connections`): every accepted connection
//! takes a slot; one accepted above the cap is answered, not left waiting.
//!
//! "Graceful" here: a connection over the cap still gets an HTTP answer, `503
//! SERVICE_UNAVAILABLE` in the contract's body with `Retry-After` and `Connection:
//! close`, so clients and balancers see a clear, retryable refusal at once. actix's
//! own limit only stops accepting: clients then wait in the kernel's backlog until
//! they time out, learning nothing, and probes time out with them. The probes
//! (`/healthz`, `/readyz`, `/metrics`) are answered even over the cap, so an
//! instance under a connection flood still reports itself alive. A reserve above
//! the cap bounds what the refusals themselves may hold; past it actix stops
//! accepting.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use actix_web::{
    body::{EitherBody, MessageBody},
    dev::{Extensions, ServiceRequest, ServiceResponse},
    http::header::{HeaderValue, RETRY_AFTER},
    middleware::Next,
    HttpResponse, ResponseError,
};

use crate::{
    api::errors::{ApiError, RestError},
    error::Error,
};

/// Open connections of one listener, shared by all its workers.
#[derive(Clone, Debug)]
pub struct ConnectionGate {
    open: Arc<AtomicUsize>,
    cap: usize,
}

/// A connection's hold on the gate, released when actix drops the connection.
pub struct Slot {
    gate: ConnectionGate,
    over_cap: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.gate.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ConnectionGate {
    pub fn new(cap: usize) -> ConnectionGate {
        ConnectionGate {
            open: Arc::new(AtomicUsize::new(0)),
            cap,
        }
    }

    /// Connections that may be open at once, refusals included: past this, actix
    /// stops accepting. A refusal lives for one request head (bounded by
    /// `http.head_timeout_seconds`), so a modest reserve suffices.
    pub fn hard_limit(&self) -> usize {
        self.cap + (self.cap / 8).max(64)
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// For `HttpServer::on_connect`: takes a slot for the new connection.
    pub fn on_connect(&self, extensions: &mut Extensions) {
        let now_open = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        extensions.insert(Slot {
            gate: self.clone(),
            over_cap: now_open > self.cap,
        });
    }
}

/// The paths answered over the cap: cheap, and what tells operators the instance lives.
fn is_probe(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics")
}

/// Middleware: requests on a connection accepted over the cap are refused (probes excepted).
pub async fn refuse_over_cap<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    // Accepted over the cap, and still over it (connections that were open then
    // may have closed since: this one is then as good as any).
    let over = req.conn_data::<Slot>().and_then(|slot| {
        let open = slot.gate.open();
        (slot.over_cap && open > slot.gate.cap).then_some(open)
    });
    let Some(open) = over else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    if is_probe(req.path()) {
        let mut res = next.call(req).await?.map_into_left_body();
        // Answered from the reserve: the connection does not stay to hold it.
        res.response_mut()
            .head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
        return Ok(res);
    }
    tracing::warn!(open, "connection over http.max_connections refused");
    let error = Error::new(
        crate::error::ErrorKind::ServiceUnavailable,
        "com.vmware.vapi.std.errors.service_unavailable",
        "The service has too many open connections; try again shortly.",
        &[],
    );
    let mut response: HttpResponse = if req.path().starts_with("/rest/") {
        RestError::from(error).error_response()
    } else {
        ApiError::from(error).error_response()
    };
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    // The connection was over the cap from its start: it ends with this answer.
    response
        .head_mut()
        .set_connection_type(actix_web::http::ConnectionType::Close);
    Ok(req.into_response(response).map_into_right_body())
}
