//! The server's life: bind the listeners, serve them, reload on demand,
//! drain on shutdown.
//!
//! [`Server::start`] binds (port 0 works) and returns a handle that owns the
//! server, so tests and the demo run the real thing in-process. Each
//! listener is served by `listener::serve` with the same protections
//! (connection cap, header-read, idle and send timeouts, graceful drain);
//! the proxy's requests go to `proxy::handle`, the admin's to `admin`.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::audit::AuditSink;
use crate::config::{AuditOutput, Config};
use crate::gateway::{Gateway, Snapshot, SnapshotError};
use crate::proxy::Connection;
use crate::tls::{TlsError, TlsServer};
use crate::webhooks::deliver::{DeliverySettings, Worker};
use crate::webhooks::destinations::RelayDestinations;
use crate::webhooks::spool::{OpenMode, Spool, SpoolSettings};
use crate::{admin, listener, proxy};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Config, policy, token or upstream setup.
    #[error("{0}")]
    Snapshot(#[from] SnapshotError),
    /// Inbound TLS could not be set up.
    #[error("{0}")]
    Tls(#[from] TlsError),
    /// The webhook spool could not be opened (held by another process,
    /// a folder open to others, a storage error).
    #[error("{0}")]
    WebhookSpool(String),
    /// Binding a listener or opening the audit log.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

fn io_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StartError {
    let what = what.into();
    move |source| StartError::Io { what, source }
}

/// A running glgate.
#[derive(Debug)]
pub struct Server {
    /// The proxy's bound address.
    pub addr: SocketAddr,
    /// The admin listener's bound address, if configured.
    pub admin_addr: Option<SocketAddr>,
    /// Shared state (snapshot, audit, metrics).
    pub gateway: Arc<Gateway>,
    stop: watch::Sender<bool>,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl Server {
    /// Loads `config_path`, binds the listeners and starts serving.
    pub async fn start(config_path: &Path) -> Result<Server, StartError> {
        let config = Config::load(config_path).map_err(SnapshotError::from)?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(io_error(format!("cannot listen on {}", config.listen)))?;
        let addr = listener
            .local_addr()
            .map_err(io_error("listener address"))?;
        let admin_listener = match config.admin_listen {
            Some(admin) => Some(
                TcpListener::bind(admin)
                    .await
                    .map_err(io_error(format!("cannot listen on {admin} (admin)")))?,
            ),
            None => None,
        };
        let audit =
            AuditSink::start(&config.audit).map_err(io_error(match &config.audit {
            AuditOutput::File(path) => format!(
                "cannot open the audit log {} (audit.output): create its folder or point audit.output elsewhere",
                path.display()
            ),
            _ => "cannot open the audit log".to_owned(),
        }))?;
        // Opened before serving: a second server on the same spool stops
        // here, naming the folder, before it answers anything.
        let webhook_spool = match &config.webhooks {
            Some(webhooks) => Some(
                Spool::open(&SpoolSettings::of(webhooks), OpenMode::Create)
                    .map_err(|error| StartError::WebhookSpool(error.to_string()))?,
            ),
            None => None,
        };
        let snapshot = Snapshot::build(config, addr)?;
        if let Some(warning) = crate::config::webhook_receive_warning(&snapshot.config) {
            tracing::warn!("{warning}");
        }
        if !snapshot.config.upstream.url.is_https() {
            tracing::warn!(
                "upstream.url is plain http: the GitLab token crosses the network unencrypted"
            );
        }
        let gateway = Arc::new(Gateway::new(snapshot, audit, addr, webhook_spool));
        // Built after the gateway, whose metrics it keeps the certificate's end in.
        let tls = match &gateway.snapshot().config.tls {
            Some(settings) => Some(TlsServer::with_expiry_metric(
                settings,
                gateway.metrics.tls_certificate_expiry.clone(),
            )?),
            None => None,
        };
        let (stop, stopped) = watch::channel(false);
        let limits = gateway.snapshot().config.limits.clone();
        let worker_count = limits.workers.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        });
        let (workers, workers_stopper) = listener::Workers::start(worker_count, "worker")
            .map_err(io_error("cannot start the worker threads"))?;
        tracing::debug!(workers = workers.count(), "proxy workers started");
        let settings = listener::Settings {
            name: "proxy",
            max_connections: limits.max_connections,
            limits,
            refused: gateway.metrics.connections_refused.clone(),
            open: gateway.metrics.open_connections_of("proxy"),
            workers: Some(workers),
        };
        let proxy = listener::serve(
            listener,
            settings,
            Arc::new(ProxyHandler(gateway.clone())),
            tls.clone(),
            stopped.clone(),
        );
        let mut tasks = vec![tokio::spawn(async move {
            proxy.await;
            // Drained (or past the grace): what the workers still run goes.
            workers_stopper.stop().await;
        })];
        if let Some(tls) = tls {
            tasks.push(tokio::spawn(tls.clone().watch_files(stopped.clone())));
            tasks.push(tokio::spawn(tls.warn_daily_on_expiry(stopped.clone())));
        }
        if let (Some(spool), Some(webhooks)) =
            (&gateway.webhook_spool, &gateway.snapshot().config.webhooks)
        {
            let worker = Worker::new(
                spool.clone(),
                Arc::new(RelayDestinations(gateway.clone())),
                DeliverySettings::of(webhooks),
                gateway.audit.clone(),
                gateway.metrics.webhooks.clone(),
            )
            .map_err(|error| StartError::WebhookSpool(crate::diagnostic::describe(&error)))?;
            tasks.push(tokio::spawn(worker.run(stopped.clone())));
        }
        let admin_addr = match admin_listener {
            Some(listener) => {
                let admin_addr = listener.local_addr().map_err(io_error("admin address"))?;
                tasks.push(tokio::spawn(admin::serve(
                    listener,
                    gateway.clone(),
                    stopped,
                )));
                Some(admin_addr)
            }
            None => None,
        };
        Ok(Server {
            addr,
            admin_addr,
            gateway,
            stop,
            tasks: std::sync::Mutex::new(tasks),
        })
    }

    /// Re-reads the config; keeps the current snapshot if the new one is invalid.
    pub fn reload(&self) -> Result<(), SnapshotError> {
        self.gateway.reload()
    }

    /// Stops accepting, lets in-flight requests finish within the configured
    /// grace period, and returns when done.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        // A poisoned lock still holds the task list; take it either way.
        let tasks = std::mem::take(
            &mut *self
                .tasks
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        for task in tasks {
            let _ = task.await;
        }
    }
}

/// The proxy's requests go to [`proxy::handle`].
struct ProxyHandler(Arc<Gateway>);

impl listener::Handler for ProxyHandler {
    type Body = proxy::AuditedBody;

    fn handle(
        &self,
        connection: &Arc<Connection>,
        request: Request<Incoming>,
    ) -> Pin<Box<dyn Future<Output = Response<proxy::AuditedBody>> + Send>> {
        let (gateway, connection) = (self.0.clone(), connection.clone());
        Box::pin(async move {
            // Only a path naming the relay's endpoint costs a snapshot load here.
            let relay_path = request.uri().path().contains("/-/webhooks/") && {
                let snapshot = gateway.snapshot();
                snapshot.config.webhooks.is_some()
                    && crate::webhooks::receive::is_relay_path(
                        request.uri().path(),
                        crate::webhooks::receive::receive_prefix(&snapshot.receive_url),
                    )
            };
            if relay_path {
                let answer = crate::webhooks::receive::handle(
                    &gateway,
                    gateway.webhook_spool.as_ref(),
                    connection.remote.to_string(),
                    request,
                )
                .await;
                return answer.map(|body| proxy::AuditedBody::unaudited(proxy::full_body(body)));
            }
            match proxy::handle(gateway, connection, request).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        })
    }

    fn stalled(body: &mut proxy::AuditedBody) {
        body.stalled();
    }
}
