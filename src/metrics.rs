//! Prometheus metrics of the process: HTTP traffic by route, staging, downloads
//! and worker events. Database-derived gauges are recounted in the background, so
//! a scrape never waits on (or loads) the database.

use std::{sync::OnceLock, time::Duration};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{domain::PrepareStatus, service::Service};

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
    pub validity_lookups: IntCounterVec,
    pub lease_renewals: IntCounterVec,
    pub validity_invalidations: IntCounter,
    pub log_lines_dropped: IntCounter,
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
        validity_lookups: registered(
            r,
            IntCounterVec::new(
                Opts::new(
                    "validity_lookups_total",
                    "Login and session lookups by kind, answered from the cache or the database",
                ),
                &["kind", "answer"],
            )?,
        )?,
        lease_renewals: registered(
            r,
            IntCounterVec::new(
                Opts::new(
                    "lease_renewals_total",
                    "Lazy renewals written (session leases, login idle expiries)",
                ),
                &["kind"],
            )?,
        )?,
        validity_invalidations: counter(
            r,
            "validity_invalidations_total",
            "Invalidation notifications applied to the validity cache",
        )?,
        log_lines_dropped: counter(
            r,
            "log_lines_dropped_total",
            "Log lines dropped because the log queue was full (the writer fell behind)",
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
    /// Prometheus text exposition of everything registered, and of `instance`'s gauges.
    pub fn render(&self, instance: &DatabaseGauges) -> String {
        let mut families = self.registry.gather();
        families.extend(instance.registry.gather());
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&families, &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Gauges read from the database, per application instance (tests run several
/// instances, on different databases, in one process).
#[derive(Clone)]
pub struct DatabaseGauges {
    registry: Registry,
    sessions: IntGaugeVec,
    files: IntGaugeVec,
    queue_depth: IntGauge,
    refreshed: IntGauge,
    download_buffer_bytes: IntGauge,
}

impl DatabaseGauges {
    pub fn new() -> DatabaseGauges {
        Self::build().expect("metric definitions are static and valid")
    }

    fn build() -> Result<DatabaseGauges, prometheus::Error> {
        let registry = Registry::new_custom(Some("dls".into()), None)?;
        let r = &registry;
        Ok(DatabaseGauges {
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
            refreshed: registered(
                r,
                IntGauge::new(
                    "database_gauges_refreshed_timestamp_seconds",
                    "When the gauges read from the database were last recounted (Unix time)",
                )?,
            )?,
            download_buffer_bytes: registered(
                r,
                IntGauge::new(
                    "download_buffer_bytes_in_use",
                    "Bytes of download read-ahead buffers held now (the http.download_buffer_bytes budget, plus small buffers outside it once it is spent)",
                )?,
            )?,
            registry,
        })
    }

    /// This instance's gauge of download read-ahead buffers in use.
    pub fn download_buffer_bytes(&self) -> IntGauge {
        self.download_buffer_bytes.clone()
    }

    /// Recounts them now and every `every` until `stop`. A count that fails keeps
    /// the previous values; `dls_database_gauges_refreshed_timestamp_seconds` says
    /// how old they are.
    pub fn spawn_refresh(
        &self,
        service: Service,
        every: Duration,
        stop: CancellationToken,
    ) -> JoinHandle<()> {
        let gauges = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                if let Err(e) = gauges.refresh(&service).await {
                    tracing::debug!(error = %e, "database gauges not refreshed");
                }
            }
        })
    }

    async fn refresh(&self, service: &Service) -> crate::error::Result<()> {
        let sessions = service.session_counts().await?;
        let files = service.file_counts().await?;
        self.sessions.reset();
        for (s, n) in sessions {
            self.sessions.with_label_values(&[s.as_str()]).set(n);
        }
        self.files.reset();
        let mut queued = 0;
        for (s, n) in files {
            if s == PrepareStatus::PrepareRequested {
                queued = n;
            }
            self.files.with_label_values(&[s.as_str()]).set(n);
        }
        self.queue_depth.set(queued);
        self.refreshed.set(chrono::Utc::now().timestamp());
        Ok(())
    }
}

impl Default for DatabaseGauges {
    fn default() -> Self {
        Self::new()
    }
}
