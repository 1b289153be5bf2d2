//! Serving a listener: every listener glgate opens (the proxy's, the
//! admin's) is served by [`serve`], with the same protections.
//!
//! Every connection holds one of the listener's slots until it closes; one
//! over the cap is answered 503 and closed. Headers must arrive within
//! `limits.header_read_timeout` (the TLS handshake too). A connection with no
//! request in flight is closed after `limits.idle_timeout`; a request in
//! flight is never cut for that, but a response the client takes no bytes of
//! for `limits.send_timeout` closes its connection ([`activity`]). At
//! shutdown the listener stops accepting and waits for its connections
//! within `limits.shutdown_grace`.

mod activity;
mod connection;
mod workers;

pub(crate) use workers::Workers;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body, Incoming};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::config::Limits;
use crate::proxy::{BoxError, Connection};
use crate::tls::{ClientIdentity, TlsServer};

/// What a listener does with each request.
pub(crate) trait Handler: Send + Sync + 'static {
    /// The response body.
    type Body: Body<Data = Bytes, Error: Into<BoxError>> + Send + Unpin + 'static;

    /// Answers `request`, which arrived on `connection`. Never fails: an
    /// error is an answer too.
    ///
    /// Boxed: hyper keeps a slot of the service future's size per
    /// connection, allocated even while the connection is idle; the proxy's
    /// whole pipeline future is kilobytes, so it lives on the heap only while
    /// a request is in flight (and is not copied when hyper moves it).
    fn handle(
        &self,
        connection: &Arc<Connection>,
        request: Request<Incoming>,
    ) -> Pin<Box<dyn Future<Output = Response<Self::Body>> + Send>>;

    /// Called on a response body just before it is dropped because the
    /// client took none of its bytes for `limits.send_timeout`.
    fn stalled(_body: &mut Self::Body) {}
}

/// How one listener is bounded.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// Which listener, for logs (`proxy`, `admin`).
    pub name: &'static str,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Header, idle, send and shutdown bounds (`limits:`).
    pub limits: Limits,
    /// Counts connections refused because `max_connections` were open.
    pub refused: Counter,
    /// Connections open now (`glgate_open_connections` of this listener).
    pub open: Gauge,
    /// Where connections are served: on these workers' threads, or (`None`)
    /// as tasks of the runtime the listener runs on.
    pub workers: Option<Arc<Workers>>,
}

/// A connection's slot: taken when it is accepted, given back (and the
/// open-connections gauge lowered) when it closes, however it ends.
struct Slot {
    _permit: OwnedSemaphorePermit,
    open: Gauge,
}

impl Slot {
    fn taken(permit: OwnedSemaphorePermit, open: &Gauge) -> Slot {
        open.inc();
        Slot {
            _permit: permit,
            open: open.clone(),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open.dec();
    }
}

/// Serves `listener` with `handler` until `stopped` changes, then drains.
/// With `tls`, each connection is handshaken first (within
/// `limits.header_read_timeout`).
pub(crate) async fn serve<H: Handler>(
    listener: TcpListener,
    settings: Settings,
    handler: Arc<H>,
    tls: Option<TlsServer>,
    mut stopped: watch::Receiver<bool>,
) {
    let Settings {
        name,
        max_connections,
        limits,
        refused,
        open,
        workers,
    } = settings;
    let limits = Arc::new(limits);
    let builder = Arc::new(connection::builder(&limits));
    let slots = Arc::new(Semaphore::new(max_connections));
    let connection_stop = stopped.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    let Ok(permit) = slots.clone().try_acquire_owned() else {
                        refused.inc();
                        tokio::spawn(refuse_connection(stream));
                        continue;
                    };
                    let slot = Slot::taken(permit, &open);
                    let _ = stream.set_nodelay(true);
                    let stop = connection_stop.clone();
                    let (handler, builder, tls, limits) =
                        (handler.clone(), builder.clone(), tls.clone(), limits.clone());
                    let served = move |stream: TcpStream| async move {
                        let _slot = slot;
                        let Some(tls) = tls else {
                            let connection = Connection::new(remote, None);
                            return connection::serve(&builder, stop, stream, connection, handler, &limits).await;
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
                        let connection = Connection::new(remote, identity);
                        connection::serve(&builder, stop, stream, connection, handler, &limits).await;
                    };
                    place(workers.as_deref(), stream, served);
                }
                Err(error) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!(listener = name, %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = stopped.changed() => break,
        }
    }
    drop(listener);
    // Every connection holds a slot until it ends: all slots back means drained.
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    tokio::select! {
        _ = slots.acquire_many(all) => tracing::info!(listener = name, "all connections drained"),
        () = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!(listener = name, grace = ?limits.shutdown_grace, "shutdown grace period over; closing remaining connections");
        }
    }
}

/// Serves an accepted connection with `serve`: on the least loaded of
/// `workers`, or as a task of the listener's own runtime.
fn place<S, F>(workers: Option<&Workers>, stream: TcpStream, serve: S)
where
    S: FnOnce(TcpStream) -> F + Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let Some(workers) = workers else {
        tokio::spawn(serve(stream));
        return;
    };
    // A tokio socket belongs to the event loop that registered it: moved
    // to the worker as a plain socket and registered there, its readiness
    // is the worker's own, not signalled from the listener's thread.
    let stream = match stream.into_std() {
        Ok(stream) => stream,
        Err(error) => {
            tracing::debug!(%error, "could not hand an accepted connection to a worker");
            return;
        }
    };
    workers.place(async move {
        match TcpStream::from_std(stream) {
            Ok(stream) => serve(stream).await,
            Err(error) => tracing::debug!(%error, "a worker could not take a connection"),
        }
    });
}

/// Answers a connection over the listener's cap with 503, then closes it.
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
