//! The accept loop, per-request plumbing and the state shared with handles.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use crate::RecordedRequest;
use crate::api::{self, Site};
use crate::credentials::Credentials;
use crate::reply::Reply;
use crate::store::Store;

/// Largest request body accepted (larger ones get 413).
const MAX_BODY: usize = 16 * 1024 * 1024;
/// How long [`crate::FakeGitlab::shutdown`] waits for open connections.
const GRACE: Duration = Duration::from_secs(5);

/// Locks `m`. A poisoned mutex means a handler panicked earlier; this is a
/// test tool, so propagating that panic is acceptable.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap()
}

/// State shared by the server task and the [`crate::FakeGitlab`] handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) token: String,
    pub(crate) credentials: Mutex<Credentials>,
    pub(crate) base_url: String,
    origin: String,
    prefix: String,
    log: Mutex<Vec<RecordedRequest>>,
    recording: AtomicBool,
    fail_next: Mutex<Option<StatusCode>>,
    /// Targets (path and query) whose next request fails, with the status.
    fail_target: Mutex<Vec<(String, StatusCode)>>,
    /// Targets whose next request is answered 200 with these JSON bytes.
    answer_target: Mutex<Vec<(String, Vec<u8>)>>,
    store: Mutex<Store>,
    request_counter: AtomicU64,
    /// `POST /oauth/token` answers 500 this many more times, each after the delay.
    oauth_token_failures: Mutex<(u32, Duration)>,
    /// Webhook deliveries made so far (numbers their event UUIDs).
    deliveries: AtomicU64,
}

impl Shared {
    /// Fresh state for a server listening on `addr` under `prefix`.
    pub(crate) fn new(token: String, addr: SocketAddr, prefix: String) -> Shared {
        let origin = format!("http://{addr}");
        Shared {
            credentials: Mutex::new(Credentials::new(&token)),
            token,
            base_url: format!("{origin}{prefix}"),
            origin,
            prefix,
            log: Mutex::new(Vec::new()),
            recording: AtomicBool::new(true),
            fail_next: Mutex::new(None),
            fail_target: Mutex::new(Vec::new()),
            answer_target: Mutex::new(Vec::new()),
            store: Mutex::new(Store::seeded()),
            request_counter: AtomicU64::new(0),
            oauth_token_failures: Mutex::new((0, Duration::ZERO)),
            deliveries: AtomicU64::new(0),
        }
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.log).clone()
    }

    pub(crate) fn clear_requests(&self) {
        lock(&self.log).clear();
    }

    pub(crate) fn set_fail_next(&self, status: u16) {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        *lock(&self.fail_next) = Some(status);
    }

    pub(crate) fn fail_oauth_token(&self, times: u32, delay: Duration) {
        *lock(&self.oauth_token_failures) = (times, delay);
    }

    /// The delay before a 500, when `POST /oauth/token` is to fail now.
    fn oauth_token_failure(&self, parts: &Parts) -> Option<Duration> {
        if parts.method != Method::POST || !parts.uri.path().ends_with("/oauth/token") {
            return None;
        }
        let mut failures = lock(&self.oauth_token_failures);
        if failures.0 == 0 {
            return None;
        }
        failures.0 -= 1;
        Some(failures.1)
    }

    pub(crate) fn set_fail_target(&self, target: &str, status: u16) {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        lock(&self.fail_target).push((target.to_owned(), status));
    }

    pub(crate) fn set_answer_target(&self, target: &str, json: &str) {
        lock(&self.answer_target).push((target.to_owned(), json.as_bytes().to_vec()));
    }

    /// Runs `change` on the dataset (test controls such as transfers).
    /// The next webhook delivery's number.
    pub(crate) fn next_delivery_number(&self) -> u64 {
        self.deliveries.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn with_store<R>(&self, change: impl FnOnce(&mut Store) -> R) -> R {
        let mut store = self
            .store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        change(&mut store)
    }

    pub(crate) fn set_recording(&self, on: bool) {
        self.recording.store(on, Ordering::Relaxed);
    }

    fn record(&self, parts: &Parts, body: &[u8]) {
        if self.recording.load(Ordering::Relaxed) {
            let request = recorded(parts, body);
            lock(&self.log).push(request);
        }
    }

    fn next_request_id(&self) -> String {
        let n = self.request_counter.fetch_add(1, Ordering::Relaxed) + 1;
        format!("01FAKEGITLAB{n:014}")
    }

    /// Answers one fully read request.
    fn respond(&self, parts: &Parts, body: &[u8]) -> Reply {
        if let Some(status) = lock(&self.fail_next).take() {
            return Reply::status_message(status);
        }
        let target = parts.uri.path_and_query().map_or("", |pq| pq.as_str());
        let mut failing = lock(&self.fail_target);
        if let Some(index) = failing.iter().position(|(t, _)| t == target) {
            let (_, status) = failing.remove(index);
            return Reply::status_message(status);
        }
        drop(failing);
        let mut answers = lock(&self.answer_target);
        if let Some(index) = answers.iter().position(|(t, _)| t == target) {
            let (_, json) = answers.remove(index);
            return Reply::raw("application/json", json);
        }
        drop(answers);
        let site = Site {
            credentials: &self.credentials,
            base_url: &self.base_url,
            origin: &self.origin,
            prefix: &self.prefix,
        };
        api::respond(&site, parts, body, &self.store)
    }
}

/// Accepts connections until `stop` fires (or the task is aborted, which
/// also aborts every connection since they live in a [`JoinSet`]).
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stop: oneshot::Receiver<()>,
) {
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let shared = Arc::clone(&shared);
                    let service = service_fn(move |req| handle(Arc::clone(&shared), req));
                    let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                    let conn = graceful.watch(conn);
                    // Connection errors (client went away, bad HTTP) are not
                    // interesting to a fake server.
                    connections.spawn(async move { let _ = conn.await; });
                }
                // E.g. too many open files: back off briefly and go on.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = &mut stop => break,
        }
    }
    drop(listener);
    // Timing out just means some connection lingered; dropping the JoinSet
    // aborts it.
    let _ = tokio::time::timeout(GRACE, graceful.shutdown()).await;
}

/// Reads the body, records the request, and answers it.
async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let collected = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map(|c| c.to_bytes());
    let body_bytes = collected.as_ref().map(Bytes::clone).unwrap_or_default();
    shared.record(&parts, &body_bytes);
    if let Some(delay) = shared.oauth_token_failure(&parts) {
        tokio::time::sleep(delay).await;
        let reply = Reply::status_message(StatusCode::INTERNAL_SERVER_ERROR);
        return Ok(reply.into_response(&shared.next_request_id(), false));
    }
    let reply = match collected {
        Ok(body) => shared.respond(&parts, &body),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Reply::status_message(StatusCode::PAYLOAD_TOO_LARGE)
        }
        Err(_) => Reply::status_message(StatusCode::BAD_REQUEST),
    };
    let head = parts.method == Method::HEAD;
    Ok(reply.into_response(&shared.next_request_id(), head))
}

/// The request as it will be shown to tests.
fn recorded(parts: &Parts, body: &[u8]) -> RecordedRequest {
    RecordedRequest {
        method: parts.method.as_str().to_string(),
        target: raw_target(parts),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_string(), value)
            })
            .collect(),
        body: body.to_vec(),
        version: format!("{:?}", parts.version),
    }
}

/// The request target as sent: origin-form (`/path?query`) for HTTP/2 and
/// for ordinary HTTP/1 requests; the full URI for absolute-form HTTP/1.
fn raw_target(parts: &Parts) -> String {
    let origin_form = parts.uri.path_and_query().map(|pq| pq.as_str().to_string());
    match (parts.version, origin_form) {
        (Version::HTTP_2, Some(pq)) => pq,
        _ => parts.uri.to_string(),
    }
}
