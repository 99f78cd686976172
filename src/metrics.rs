//! Prometheus metrics of the process: HTTP traffic by route, staging, downloads
//! and worker events. Database-derived gauges are computed at scrape time.

use std::sync::OnceLock;

use prometheus::{
    core::Collector, Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_seconds: HistogramVec,
    pub staged_bytes: IntCounter,
    pub staging_seconds: Histogram,
    pub staged_files: IntCounterVec,
    pub download_bytes: IntCounter,
    pub worker_claims: IntCounter,
    pub worker_rescues: IntCounter,
    pub worker_errors: IntCounter,
    pub sessions: IntGaugeVec,
    pub files: IntGaugeVec,
    pub queue_depth: IntGauge,
}

fn build() -> Result<Metrics, prometheus::Error> {
    let registry = Registry::new_custom(Some("dls".into()), None)?;
    let r = &registry;
    Ok(Metrics {
        http_requests: registered(
            r,
            IntCounterVec::new(
                Opts::new(
                    "http_requests_total",
                    "HTTP requests by route, method and status",
                ),
                &["route", "method", "status"],
            )?,
        )?,
        http_seconds: registered(
            r,
            HistogramVec::new(
                HistogramOpts::new(
                    "http_request_duration_seconds",
                    "HTTP request latency by route",
                )
                .buckets(vec![
                    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0,
                ]),
                &["route", "method"],
            )?,
        )?,
        staged_bytes: counter(
            r,
            "staged_bytes_total",
            "Bytes copied into the transfer store",
        )?,
        staging_seconds: registered(
            r,
            Histogram::with_opts(
                HistogramOpts::new("staging_duration_seconds", "Time to stage one file")
                    .buckets(vec![0.01, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 1800.0]),
            )?,
        )?,
        staged_files: registered(
            r,
            IntCounterVec::new(
                Opts::new(
                    "staged_files_total",
                    "Files finished by workers, by outcome",
                ),
                &["outcome"],
            )?,
        )?,
        download_bytes: counter(
            r,
            "download_bytes_total",
            "Bytes served from download endpoints",
        )?,
        worker_claims: counter(r, "worker_claims_total", "Files claimed by prepare workers")?,
        worker_rescues: counter(
            r,
            "worker_rescues_total",
            "Lapsed claims rescued by maintenance",
        )?,
        worker_errors: counter(r, "worker_errors_total", "Staging attempts that failed")?,
        sessions: registered(
            r,
            IntGaugeVec::new(
                Opts::new("download_sessions", "Live download sessions by state"),
                &["state"],
            )?,
        )?,
        files: registered(
            r,
            IntGaugeVec::new(
                Opts::new("download_files", "Files of live sessions by prepare status"),
                &["status"],
            )?,
        )?,
        queue_depth: registered(
            r,
            IntGauge::new("prepare_queue_depth", "Files waiting for a worker")?,
        )?,
        registry,
    })
}

/// `metric`, once `registry` collects it.
fn registered<M: Collector + Clone + 'static>(
    registry: &Registry,
    metric: M,
) -> Result<M, prometheus::Error> {
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

fn counter(registry: &Registry, name: &str, help: &str) -> Result<IntCounter, prometheus::Error> {
    registered(registry, IntCounter::new(name, help)?)
}

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| build().expect("metric definitions are static and valid"))
}

impl Metrics {
    /// Prometheus text exposition of everything registered.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}
