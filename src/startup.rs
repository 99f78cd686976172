//! Builds a running instance from settings: database, stores, signer, HTTP
//! server bound to its listener, background workers. Tests start exactly this on port 0.

use std::{net::TcpListener, sync::Arc, time::Duration};

use actix_web::{dev::Server, web, App, HttpRequest, HttpResponse, HttpServer};
use anyhow::Context;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    api::{self, errors::ApiError, AppState},
    config::Settings,
    dataplane::{DataPlane, Endpoints, Signer},
    service::Service,
    storage::Buckets,
    store::Db,
};

pub struct Application {
    port: u16,
    server: Server,
    service: Service,
    db: Db,
    endpoints: Endpoints,
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
        };
        let service = Service::new(db.clone(), buckets.clone(), endpoints.clone(), &settings);
        let dataplane = DataPlane::new(
            db.clone(),
            signer,
            buckets.transfer.clone(),
            settings.session_timeout(),
        );
        let state = AppState {
            service: service.clone(),
            max_body: settings.http.max_body_bytes,
        };

        let stop = CancellationToken::new();
        let tasks = crate::worker::spawn(&db, &buckets, &settings, &stop);

        let threads = match settings.http.threads {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(state.clone()))
                .app_data(web::Data::new(dataplane.clone()))
                .wrap(actix_web::middleware::from_fn(api::ops::track))
                .wrap(tracing_actix_web::TracingLogger::default())
                .configure(api::ops::configure)
                .configure(crate::dataplane::serve::configure)
                .configure(api::rest_api::configure)
                .configure(api::rest_legacy::configure)
                .configure(api::jsonrpc::configure)
                .configure(crate::openapi::configure)
                .default_service(web::to(not_found))
        })
        .workers(threads)
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
            service,
            db,
            endpoints,
            stop,
            tasks,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn service(&self) -> &Service {
        &self.service
    }

    /// The instance's database handle (tests set up data and inspect it with this).
    pub fn db(&self) -> &Db {
        &self.db
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
        let result = self.server.await;
        self.stop.cancel();
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        result
    }
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
