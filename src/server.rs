//! Listeners and the server's life: bind, serve HTTP/1.1 and HTTP/2 with
//! bounded headers, reload on demand, drain on shutdown.
//!
//! [`Server::start`] binds (port 0 works) and returns a handle that owns the
//! server, so tests and the demo run the real thing in-process.
//!
//! Every connection holds one of `limits.max_connections` slots until it
//! closes. A connection with no request in flight is closed after
//! `limits.idle_timeout` ([`Activity`]), so idle keep-alive and HTTP/2
//! connections give their slot back; a request in flight is never cut.

use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::audit::AuditSink;
use crate::config::{Config, Limits};
use crate::gateway::{Gateway, Snapshot, SnapshotError};
use crate::proxy::Connection;
use crate::tls::{ClientIdentity, TlsError, TlsServer};
use crate::{admin, proxy};

/// Most headers accepted in one request.
const MAX_HEADERS: usize = 100;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Config, policy, token or upstream setup.
    #[error("{0}")]
    Snapshot(#[from] SnapshotError),
    /// Inbound TLS could not be set up.
    #[error("{0}")]
    Tls(#[from] TlsError),
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
            AuditSink::start(&config.audit).map_err(io_error("cannot open the audit log"))?;
        let snapshot = Snapshot::build(config, addr)?;
        if !snapshot.config.upstream.url.is_https() {
            tracing::warn!(
                "upstream.url is plain http: the GitLab token crosses the network unencrypted"
            );
        }
        let tls = match &snapshot.config.tls {
            Some(settings) => Some(TlsServer::new(settings)?),
            None => None,
        };
        let gateway = Arc::new(Gateway::new(snapshot, audit, addr));
        let (stop, stopped) = watch::channel(false);
        let mut tasks = vec![tokio::spawn(serve(
            listener,
            gateway.clone(),
            tls.clone(),
            stopped.clone(),
        ))];
        if let Some(tls) = tls {
            tasks.push(tokio::spawn(tls.watch_files(stopped.clone())));
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

fn connection_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes)
        .max_headers(MAX_HEADERS);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(limits.http2_max_concurrent_streams)
        .max_pending_accept_reset_streams(Some(limits.http2_max_pending_reset_streams))
        .keep_alive_interval(Some(Duration::from_secs(30)));
    builder
}

/// What a connection is doing: how many requests are in flight, and since
/// when none has been. Shared by the connection's task and its requests.
#[derive(Debug)]
struct Activity {
    /// When the connection was accepted; `idle_since` counts from here.
    opened: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds after `opened` when the last request in flight ended.
    idle_since_ms: AtomicU64,
}

impl Activity {
    fn new() -> Arc<Activity> {
        Arc::new(Activity {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
        })
    }

    /// Marks a request in flight until the returned guard is dropped (when its
    /// response body has been sent, or the request was abandoned).
    fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// Resolves once the connection has had no request in flight for `timeout`.
    async fn idle_for(&self, timeout: Duration) {
        let mut deadline = self.opened + timeout;
        loop {
            tokio::time::sleep_until(deadline).await;
            if self.in_flight.load(Ordering::Acquire) > 0 {
                // Busy: look again one timeout later (cheap; one timer per connection).
                deadline = Instant::now() + timeout;
                continue;
            }
            let idle_since =
                self.opened + Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire));
            if idle_since + timeout <= Instant::now() {
                return;
            }
            deadline = idle_since + timeout;
        }
    }
}

/// One request in flight on a connection (see [`Activity::start`]).
#[derive(Debug)]
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let since = u64::try_from(self.0.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        // Stamp before the count can reach zero, so the idle timer never sees
        // "none in flight" with a stale stamp.
        self.0.idle_since_ms.fetch_max(since, Ordering::AcqRel);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request counted in flight until it ends.
struct Tracked<B> {
    inner: B,
    _in_flight: InFlight,
}

impl<B: Body<Data = Bytes> + Unpin> Body for Tracked<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Serves HTTP/1.1 or HTTP/2 on one accepted (and, with TLS, handshaken)
/// connection until it ends, is idle for `limits.idle_timeout`, or the server
/// stops; the last two close it gracefully (an HTTP/1 request in flight
/// finishes; HTTP/2 gets a GOAWAY and its open streams finish).
async fn serve_connection<I>(
    builder: &auto::Builder<TokioExecutor>,
    mut stopped: watch::Receiver<bool>,
    io: I,
    connection: Connection,
    gateway: Arc<Gateway>,
    limits: &Limits,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let remote = connection.remote;
    let connection = Arc::new(connection);
    let activity = Activity::new();
    let tracker = activity.clone();
    let service = service_fn(move |request| {
        let in_flight = tracker.start();
        // Boxed: hyper keeps a slot of the service future's size per
        // connection, allocated even while the connection is idle; the whole
        // pipeline's future is kilobytes, so it lives on the heap only while a
        // request is in flight (and is not copied when hyper moves it).
        let handled = Box::pin(proxy::handle(gateway.clone(), connection.clone(), request));
        async move {
            let response = handled.await?;
            Ok::<_, std::convert::Infallible>(response.map(|inner| Tracked {
                inner,
                _in_flight: in_flight,
            }))
        }
    });
    let served = builder.serve_connection(TokioIo::new(io), service);
    let mut served = std::pin::pin!(served);
    // The stop signal and the idle timer are watched by a small task of
    // their own, which tells this one through a per-connection oneshot:
    // `select!` polls every branch on every wake-up, and polling the shared
    // stop channel on every request would contend on its lock across all
    // connections (perf showed it under 256 busy connections).
    let (close, mut closed) = tokio::sync::oneshot::channel::<&'static str>();
    let idle_timeout = limits.idle_timeout;
    tokio::spawn(async move {
        let mut close = close;
        let why = tokio::select! {
            _ = stopped.wait_for(|stop| *stop) => "stopping",
            () = activity.idle_for(idle_timeout) => "idle",
            () = close.closed() => return,
        };
        let _ = close.send(why);
    });
    let mut closing = false;
    let result = loop {
        tokio::select! {
            biased;
            result = served.as_mut() => break result,
            why = &mut closed, if !closing => {
                if let Ok(why) = why {
                    tracing::debug!(%remote, why, "closing the connection gracefully");
                    served.as_mut().graceful_shutdown();
                }
                closing = true;
            }
        }
    };
    if let Err(error) = result {
        tracing::debug!(%remote, %error, "connection ended with an error");
    }
}

/// Answers a connection over `limits.max_connections` with 503, then closes it.
async fn refuse_connection(mut stream: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    let body = r#"{"message":"503 Service Unavailable - glgate: too many connections","reason":"over_capacity"}"#;
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\n\
         retry-after: 1\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    tls: Option<TlsServer>,
    mut stopped: watch::Receiver<bool>,
) {
    let limits = gateway.snapshot().config.limits.clone();
    let builder = Arc::new(connection_builder(&limits));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let connection_stop = stopped.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        gateway.metrics.connections_refused.inc();
                        tokio::spawn(refuse_connection(stream));
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let stop = connection_stop.clone();
                    let (gateway, builder, tls) = (gateway.clone(), builder.clone(), tls.clone());
                    let limits = limits.clone();
                    tokio::spawn(async move {
                        let _slot = slot;
                        let Some(tls) = tls else {
                            let connection = Connection { remote, identity: None };
                            return serve_connection(&builder, stop, stream, connection, gateway, &limits).await;
                        };
                        let handshake_timeout = limits.header_read_timeout;
                        let stream = match tokio::time::timeout(handshake_timeout, tls.acceptor().accept(stream)).await {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(error)) => {
                                tracing::debug!(%remote, %error, "TLS handshake refused");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%remote, "TLS handshake timed out");
                                return;
                            }
                        };
                        let identity = stream
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|chain| chain.first())
                            .and_then(ClientIdentity::of);
                        let connection = Connection { remote, identity };
                        serve_connection(&builder, stop, stream, connection, gateway, &limits).await;
                    });
                }
                Err(error) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = stopped.changed() => break,
        }
    }
    drop(listener);
    // Every connection holds a slot until it ends: all slots back means drained.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    tokio::select! {
        _ = slots.acquire_many(all) => tracing::info!("all connections drained"),
        () = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!(grace = ?limits.shutdown_grace, "shutdown grace period over; closing remaining connections");
        }
    }
}
