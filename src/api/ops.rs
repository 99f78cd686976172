//! Operational endpoints: liveness, readiness (database and stores reachable)
//! and Prometheus metrics, plus the middleware that counts HTTP traffic.

use std::{
    borrow::Cow,
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};

use actix_web::{
    body::{BodySize, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::header::{HeaderName, HeaderValue},
    middleware::Next,
    web, HttpMessage, HttpResponse,
};
use bytes::Bytes;
use serde::Serialize;
use tracing::Instrument;
use utoipa::ToSchema;
use uuid::Uuid;

use super::AppState;
use crate::metrics::{metrics, DatabaseGauges};

/// The probes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz));
}

/// `/metrics`: on the public listener, or on `http.metrics_listen` when set.
pub fn configure_metrics(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(prometheus));
}

/// `GET /healthz`.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`: the process answers.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// `GET /readyz`.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    #[schema(example = "ready")]
    pub status: &'static str,
    /// The database answers.
    pub database: bool,
    /// Both object stores can be read.
    pub stores: bool,
}

/// Liveness
#[utoipa::path(get, path = "/healthz", operation_id = "Healthz", tag = "ops", security(),
    responses((status = 200, description = "The process answers.", body = Health)))]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Readiness
///
/// Ready when the database answers and both stores can be read.
#[utoipa::path(get, path = "/readyz", operation_id = "Readyz", tag = "ops", security(),
    responses((status = 200, description = "Ready.", body = Readiness),
        (status = 503, description = "Not ready: the database or a store cannot be reached.", body = Readiness,
            example = json!({"status": "unavailable", "database": false, "stores": true}))))]
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let probe = state.service.probe().await;
    let (database, stores) = (probe.database, probe.stores);
    let body = Readiness {
        status: if database && stores {
            "ready"
        } else {
            "unavailable"
        },
        database,
        stores,
    };
    if database && stores {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Prometheus metrics
///
/// Requests and latency by route template, sessions by state, files by prepare status,
/// prepare queue depth; text exposition format 0.0.4. The gauges read from the
/// database are recounted in the background every `http.metrics_refresh_seconds`:
/// a scrape costs the same whatever the size of the tables.
#[utoipa::path(get, path = "/metrics", operation_id = "Metrics", tag = "ops", security(),
    responses((status = 200, description = "The metrics.", body = String, content_type = "text/plain",
        example = "dls_prepare_queue_depth 0\n")))]
async fn prometheus(gauges: web::Data<DatabaseGauges>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics().render(&gauges))
}

/// Counts requests and latency by route template (never by raw path: ids
/// would explode the label set; `unmatched` for a path no route has) and by
/// method (`other` for any but HTTP's own: actix accepts any token), and
/// writes the request's one access-log line once its body is sent (or
/// dropped): status, bytes, duration, the client, the target with its secrets
/// redacted ([`crate::telemetry::redact_target`]). The request runs in a span
/// holding only its id, so anything else it logs carries that id; the id is
/// returned as `x-request-id` for clients to quote.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    // The request's id: returned as `x-request-id`, carried by every log line of the request.
    let id = Uuid::new_v4();
    let method = crate::edge::method_label(req.method());
    let span = tracing::info_span!("request", request_id = %id);
    let res = next.call(req).instrument(span).await;
    let (status, route) = match &res {
        Ok(res) => (res.status(), route_of(res.request())),
        // Handlers' errors are responses; only a middleware's error lands here.
        Err(e) => (e.as_response_error().status_code(), None),
    };
    let route_label = route.as_deref().unwrap_or("unmatched");
    let m = metrics();
    m.http_requests
        .with_label_values(&[route_label, method, status.as_str()])
        .inc();
    m.http_seconds
        .with_label_values(&[route_label, method])
        .observe(start.elapsed().as_secs_f64());
    let mut res = match res {
        Ok(res) => res,
        Err(e) => {
            // Refused by a middleware before any handler: no request left to describe.
            tracing::info!(target: "access", request_id = %id, method, route = route_label,
                status = status.as_u16(), "request");
            return Err(e);
        }
    };
    let access = Access {
        http: res.request().clone(),
        route,
        id,
        method,
        status: status.as_u16(),
        start,
        sent: 0,
    };
    let mut buf = Uuid::encode_buffer();
    if let Ok(value) = HeaderValue::from_str(id.hyphenated().encode_lower(&mut buf)) {
        res.headers_mut()
            .insert(HeaderName::from_static("x-request-id"), value);
    }
    Ok(res.map_body(move |_, body| Logged {
        body,
        access: Some(access),
    }))
}

/// The route template a handler names for its request, sparing [`track`]
/// actix's `match_pattern` (a regex walk over every route).
#[derive(Clone, Copy)]
pub struct RouteLabel(pub &'static str);

/// The route template of a routed request: the one its handler named, else actix's.
fn route_of(req: &actix_web::HttpRequest) -> Option<Cow<'static, str>> {
    if let Some(RouteLabel(route)) = req.extensions().get::<RouteLabel>() {
        return Some(Cow::Borrowed(*route));
    }
    req.match_pattern().map(Cow::Owned)
}

/// What the access line says about a request.
struct Access {
    http: actix_web::HttpRequest,
    route: Option<Cow<'static, str>>,
    id: Uuid,
    method: &'static str,
    status: u16,
    start: Instant,
    sent: u64,
}

impl Drop for Access {
    fn drop(&mut self) {
        let http = &self.http;
        let target = http.uri().path_and_query().map_or("", |p| p.as_str());
        let agent = http
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        tracing::info!(
            target: "access",
            request_id = %self.id,
            method = self.method,
            route = self.route.as_deref().unwrap_or("unmatched"),
            path = %crate::telemetry::redact_target(target),
            status = self.status,
            bytes = self.sent,
            duration_us = self.start.elapsed().as_micros() as u64,
            client = %crate::edge::client::client_addr(http),
            https = crate::edge::client::is_https(http),
            user_agent = &agent[..agent.floor_char_boundary_compat(160)],
            "request"
        );
    }
}

/// The largest char boundary at or below `at` (str::floor_char_boundary is unstable).
trait FloorCharBoundary {
    fn floor_char_boundary_compat(&self, at: usize) -> usize;
}

impl FloorCharBoundary for str {
    fn floor_char_boundary_compat(&self, at: usize) -> usize {
        if at >= self.len() {
            return self.len();
        }
        (0..=at)
            .rev()
            .find(|&i| self.is_char_boundary(i))
            .unwrap_or(0)
    }
}

pin_project_lite::pin_project! {
    /// A response body that counts what it sends and writes the access line when
    /// dropped: after the last byte, or when the client went away.
    struct Logged<B> {
        #[pin]
        body: B,
        access: Option<Access>,
    }
}

impl<B: MessageBody> MessageBody for Logged<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.project();
        let polled = this.body.poll_next(cx);
        if let (Poll::Ready(Some(Ok(chunk))), Some(access)) = (&polled, this.access.as_mut()) {
            access.sent += chunk.len() as u64;
        }
        polled
    }

    fn try_into_bytes(mut self) -> Result<Bytes, Self> {
        let Some(access) = self.access.take() else {
            return Err(self);
        };
        match self.body.try_into_bytes() {
            Ok(bytes) => {
                let mut access = access;
                access.sent = bytes.len() as u64;
                drop(access);
                Ok(bytes)
            }
            Err(body) => Err(Logged {
                body,
                access: Some(access),
            }),
        }
    }
}
