//! Operational endpoints: liveness, readiness (database and stores reachable)
//! and Prometheus metrics, plus the middleware that counts HTTP traffic.

use std::time::Instant;

use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::header::{HeaderName, HeaderValue},
    middleware::Next,
    web, HttpMessage, HttpResponse,
};
use serde::Serialize;
use utoipa::ToSchema;

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
/// method (`other` for any but HTTP's own: actix accepts any token), writes one access-log line per request (in
/// the request's span, so it carries the request id) and returns that id as
/// `x-request-id` for clients to quote.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let method = crate::edge::method_label(req.method());
    let request_id = req
        .extensions()
        .get::<tracing_actix_web::RequestId>()
        .map(|id| id.to_string());
    let mut res = next.call(req).await?;
    let status = res.status().as_u16().to_string();
    tracing::info!(
        route = %route,
        method = %method,
        status = res.status().as_u16(),
        duration_ms = start.elapsed().as_millis() as u64,
        "request"
    );
    if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        res.headers_mut()
            .insert(HeaderName::from_static("x-request-id"), id);
    }
    let m = metrics();
    m.http_requests
        .with_label_values(&[route.as_str(), method, status.as_str()])
        .inc();
    m.http_seconds
        .with_label_values(&[route.as_str(), method])
        .observe(start.elapsed().as_secs_f64());
    Ok(res)
}
