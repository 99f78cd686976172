//! Builds a running instance from settings: database, stores, signer, HTTP
//! server bound to its listener, background workers. Tests start exactly this on port 0.

use std::{net::TcpListener, sync::Arc, time::Duration};

use actix_web::{dev::Server, web, App, HttpRequest, HttpResponse, HttpServer};
use anyhow::Context;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use actix_web::middleware::from_fn;

use crate::{
    api::{self, errors::ApiError, AppState},
    config::Settings,
    dataplane::{DataPlane, Endpoints, ReadAhead, Signer},
    edge::{
        body::{BodyRules, ReadRule},
        client::TrustedProxies,
        connections::ConnectionGate,
    },
    metrics::DatabaseGauges,
    service::Service,
    storage::Buckets,
    store::Db,
    validity::Validity,
};

pub struct Application {
    port: u16,
    server: Server,
    /// The listener of `http.metrics_listen`, when configured.
    metrics: Option<(u16, Server)>,
    service: Service,
    db: Db,
    endpoints: Endpoints,
    validity: Validity,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Application {
    /// Connects, migrates and binds; nothing is served until `run_until_stopped`.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let settings = Arc::new(settings);
        let url = settings
            .database
            .url
            .clone()
            .context("no database URL configured")?;
        let db = Db::connect(&settings, &url)
            .await
            .context("cannot connect to PostgreSQL")?;
        db.migrate().await.context("migrations failed")?;
        let buckets = Buckets::from_settings(&settings)?;
        let signer = signer(&settings, &db).await?;

        let listener = TcpListener::bind(settings.http.listen)
            .with_context(|| format!("cannot listen on {}", settings.http.listen))?;
        // Streamed downloads stall ~40 ms per write without TCP_NODELAY. Set on
        // the listener, every accepted socket inherits it (Linux), TLS ones included.
        socket2::SockRef::from(&listener).set_nodelay(true)?;
        let local = listener.local_addr()?;
        let endpoints = Endpoints {
            signer: signer.clone(),
            public_url: settings
                .public_url(local)
                .context("cannot build the public URL")?,
            cert: crate::tls::advertised(&settings.http)?,
            transfer: buckets.transfer.clone(),
            direct_url_for: std::time::Duration::from_secs(settings.storage.direct_url_seconds),
        };
        let validity = Validity::new(db.clone(), &settings);
        let service = Service::new(
            db.clone(),
            buckets.clone(),
            endpoints.clone(),
            validity.clone(),
            &settings,
        );
        let gauges = DatabaseGauges::new();
        let dataplane = DataPlane::new(
            validity.clone(),
            signer,
            buckets.transfer.clone(),
            settings.session_timeout(),
            ReadAhead::new(
                settings.http.download_buffer_bytes,
                gauges.download_buffer_bytes(),
            ),
        );
        let state = AppState {
            service: service.clone(),
            max_body: settings.http.max_body_bytes,
        };

        let stop = CancellationToken::new();
        let mut tasks = crate::worker::spawn(&db, &buckets, &settings, &stop);
        if settings.workers.count > 0 {
            tasks.push(service.clone().spawn_puller(
                Duration::from_secs(settings.workers.poll_seconds),
                stop.clone(),
            ));
        }
        tasks.push(gauges.spawn_refresh(
            service.clone(),
            Duration::from_secs(settings.http.metrics_refresh_seconds),
            stop.clone(),
        ));
        let edge = Edge::new(&settings);
        let metrics = match settings.http.metrics_listen {
            Some(address) => Some(metrics_server(address, &state, &gauges, &edge)?),
            None => None,
        };
        let metrics_here = metrics.is_none();
        tasks.extend(validity.spawn(&stop));

        let threads = match settings.http.threads {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let gate = ConnectionGate::new(settings.http.max_connections);
        let app_edge = edge.clone();
        let app_gauges = gauges.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(state.clone()))
                .app_data(web::Data::new(dataplane.clone()))
                .app_data(web::Data::new(app_gauges.clone()))
                .app_data(app_edge.proxies.clone())
                .app_data(app_edge.bodies.clone())
                .wrap(from_fn(crate::edge::body::pace))
                .wrap(from_fn(crate::edge::connections::refuse_over_cap))
                .wrap(from_fn(api::ops::track))
                .configure(api::ops::configure)
                .configure(|cfg| {
                    if metrics_here {
                        api::ops::configure_metrics(cfg)
                    }
                })
                .configure(crate::dataplane::serve::configure)
                .configure(crate::dataplane::upload::configure)
                .configure(api::rest_api::configure)
                .configure(api::rest_legacy::configure)
                .configure(api::jsonrpc::configure)
                .configure(crate::openapi::configure)
                .default_service(web::to(not_found))
        })
        .workers(threads)
        .keep_alive(edge.keep_alive)
        .client_request_timeout(edge.head_timeout)
        // actix's own limit is per worker, and stops accepting: the hard ceiling
        // above the cap, past which not even a refusal can be sent.
        .max_connections(gate.hard_limit().div_ceil(threads))
        .on_connect(move |_, extensions| gate.on_connect(extensions))
        .shutdown_timeout(settings.http.shutdown_grace_seconds)
        .disable_signals();
        let server = match crate::tls::server_config(&settings.http)? {
            Some(tls) => server.listen_rustls_0_23(listener, tls)?,
            None => server.listen(listener)?,
        }
        .run();

        tracing::info!(address = %local, public_url = %endpoints.public_url, "listening");
        Ok(Application {
            port: local.port(),
            server,
            metrics,
            service,
            db,
            endpoints,
            validity,
            stop,
            tasks,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of `http.metrics_listen`, when configured.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, _)| *port)
    }

    pub fn service(&self) -> &Service {
        &self.service
    }

    /// The instance's database handle (tests set up data and inspect it with this).
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The instance's validity cache (tests find its LISTEN connection by name).
    pub fn validity(&self) -> &Validity {
        &self.validity
    }

    /// How the instance builds download URIs (tests sign URIs of their own with this).
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// Serves until SIGTERM/SIGINT (or the server stops): background work stops
    /// at once (handing claims back), requests and downloads drain for the grace period.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let stop = self.stop.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down");
            stop.cancel();
            handle.stop(true).await;
        });
        // The metrics listener lives as long as the main one.
        let metrics = self.metrics.map(|(_, server)| {
            let handle = server.handle();
            tokio::spawn(server);
            handle
        });
        let result = self.server.await;
        if let Some(handle) = metrics {
            handle.stop(false).await;
        }
        self.stop.cancel();
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        result
    }
}

/// What the HTTP edge enforces, from the settings (shared by both listeners).
#[derive(Clone)]
struct Edge {
    proxies: web::Data<TrustedProxies>,
    bodies: web::Data<BodyRules>,
    keep_alive: Duration,
    head_timeout: Duration,
}

impl Edge {
    fn new(settings: &Settings) -> Edge {
        let http = &settings.http;
        Edge {
            proxies: web::Data::new(http.trusted_proxies.clone()),
            bodies: web::Data::new(BodyRules {
                api: ReadRule::Deadline(Duration::from_secs(http.body_timeout_seconds)),
                // Uploads take as long as they take, as long as bytes keep coming.
                upload: ReadRule::MinRate {
                    bytes: 1,
                    window: Duration::from_secs(http.body_timeout_seconds),
                },
                drain_limit: http.max_body_bytes,
            }),
            keep_alive: Duration::from_secs(http.keep_alive_seconds),
            head_timeout: Duration::from_secs(http.head_timeout_seconds),
        }
    }
}

/// `/metrics` and the probes on a listener of their own (plain HTTP, one worker):
/// scrapes stay off the public listener, and keep working when it is saturated.
fn metrics_server(
    address: std::net::SocketAddr,
    state: &AppState,
    gauges: &DatabaseGauges,
    edge: &Edge,
) -> anyhow::Result<(u16, Server)> {
    let listener = TcpListener::bind(address)
        .with_context(|| format!("cannot listen on {address} (http.metrics_listen)"))?;
    let port = listener.local_addr()?.port();
    let (state, gauges, app_edge) = (state.clone(), gauges.clone(), edge.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .app_data(web::Data::new(gauges.clone()))
            .app_data(app_edge.proxies.clone())
            .app_data(app_edge.bodies.clone())
            .wrap(from_fn(crate::edge::body::pace))
            .configure(api::ops::configure)
            .configure(api::ops::configure_metrics)
            .default_service(web::to(not_found))
    })
    .workers(1)
    .max_connections(256)
    .keep_alive(edge.keep_alive)
    .client_request_timeout(edge.head_timeout)
    .shutdown_timeout(1)
    .disable_signals()
    .listen(listener)?
    .run();
    tracing::info!(address = %address, "metrics listening");
    Ok((port, server))
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}

/// Keys from config, or the generated key kept in the database.
async fn signer(settings: &Settings, db: &Db) -> anyhow::Result<Signer> {
    if settings.signing.keys.is_empty() {
        let keys = db
            .generated_signing_keys()
            .await
            .context("cannot load signing keys")?;
        return Signer::new(keys, None);
    }
    let keys = settings
        .signing
        .keys
        .iter()
        .map(|k| (k.id.clone(), k.secret.bytes().to_vec()))
        .collect();
    Signer::new(keys, settings.signing.active_key.as_deref())
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(api::errors::no_route(&req).into())
}
