//! One accepted connection, served with HTTP/1.1 or HTTP/2 until it ends or
//! one of its timers closes it.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::sync::watch;

use super::Handler;
use super::activity::{Activity, Tracked};
use crate::config::Limits;
use crate::proxy::Connection;

/// Most headers accepted in one request.
const MAX_HEADERS: usize = 100;

/// hyper's connection settings from `limits`.
pub(super) fn builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
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
        // Also the most streams a client can stall on one connection, each
        // for at most `limits.send_timeout`.
        .max_concurrent_streams(limits.http2_max_concurrent_streams)
        .max_pending_accept_reset_streams(Some(limits.http2_max_pending_reset_streams))
        .keep_alive_interval(Some(Duration::from_secs(30)));
    builder
}

/// Why a connection's watcher wants it closed.
#[derive(Clone, Copy, Debug)]
enum Close {
    /// The server stops: close gracefully.
    Stopping,
    /// No request in flight for `limits.idle_timeout`: close gracefully.
    Idle,
    /// A response waited `limits.send_timeout` on a client that took none
    /// of its bytes: close at once (the client reads nothing, so a graceful
    /// close would wait on it too).
    Stalled,
}

/// Serves HTTP/1.1 or HTTP/2 on one accepted (and, with TLS, handshaken)
/// connection until it ends, is idle for `limits.idle_timeout`, the server
/// stops, or a response stalls for `limits.send_timeout`.
///
/// Idle and stopping close gracefully (an HTTP/1 request in flight finishes;
/// HTTP/2 gets a GOAWAY and its open streams finish); once nothing has been
/// in flight for `limits.header_read_timeout` after that, the connection is
/// dropped even if the peer never acknowledged the GOAWAY's PING (which
/// would otherwise hold it until hyper's keep-alive gives up, ~50 s). A
/// stall drops the connection at once: its streams end, their upstream
/// bodies are dropped, and the stalled ones are told so
/// ([`Handler::stalled`]) before they are.
pub(super) async fn serve<H: Handler, I>(
    builder: &auto::Builder<TokioExecutor>,
    mut stopped: watch::Receiver<bool>,
    io: I,
    connection: Connection,
    handler: Arc<H>,
    limits: &Limits,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let remote = connection.remote;
    let connection = Arc::new(connection);
    let activity = Activity::new();
    let tracker = activity.clone();
    let send_timeout = limits.send_timeout;
    let service = service_fn(move |request| {
        let in_flight = tracker.start();
        let handled = handler.handle(&connection, request);
        async move {
            let response = handled.await;
            Ok::<_, std::convert::Infallible>(
                response.map(|inner| Tracked::new(inner, in_flight, send_timeout, H::stalled)),
            )
        }
    });
    let served = builder.serve_connection(TokioIo::new(io), service);
    let mut served = std::pin::pin!(served);
    // The stop signal and the timers are watched by a small task of their
    // own, which tells this one through a per-connection oneshot: `select!`
    // polls every branch on every wake-up, and polling the shared stop
    // channel on every request would contend on its lock across all
    // connections (perf showed it under 256 busy connections).
    let (close, mut closed) = tokio::sync::oneshot::channel::<Close>();
    let (idle_timeout, watched) = (limits.idle_timeout, activity.clone());
    tokio::spawn(async move {
        let mut close = close;
        let why = tokio::select! {
            _ = stopped.wait_for(|stop| *stop) => Close::Stopping,
            () = watched.idle_for(idle_timeout) => Close::Idle,
            () = watched.stalled_for(send_timeout) => Close::Stalled,
            () = close.closed() => return,
        };
        let _ = close.send(why);
    });
    // Once closing gracefully: the end of the grace, or a stall meanwhile.
    let close_grace = limits.header_read_timeout;
    let mut closing = false;
    let mut after_close: Pin<Box<dyn Future<Output = Close> + Send>> =
        Box::pin(std::future::pending());
    let result = loop {
        tokio::select! {
            biased;
            result = served.as_mut() => break Some(result),
            why = &mut closed, if !closing => {
                // The watcher is gone only if it panicked: close all the same.
                let why = why.unwrap_or(Close::Stopping);
                tracing::debug!(%remote, ?why, "closing the connection");
                if let Close::Stalled = why {
                    break None;
                }
                served.as_mut().graceful_shutdown();
                let watched = activity.clone();
                after_close = Box::pin(async move {
                    tokio::select! {
                        () = watched.quiet_for(close_grace) => Close::Idle,
                        () = watched.stalled_for(send_timeout) => Close::Stalled,
                    }
                });
                closing = true;
            }
            why = after_close.as_mut(), if closing => {
                tracing::debug!(%remote, ?why, "dropping a connection that did not finish closing");
                break None;
            }
        }
    };
    if let Some(Err(error)) = result {
        tracing::debug!(%remote, %error, "connection ended with an error");
    }
}
