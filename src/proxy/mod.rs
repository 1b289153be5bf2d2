//! The request path: [`handle`] takes the current snapshot, runs the
//! request's phases ([`pipeline`]: target → authenticate → decide → check
//! objects → send → filter the answer) and records it.
//!
//! [`handle`] never fails: every error becomes a GitLab-shaped JSON response
//! in [`error`], and every request, allowed or not, yields one audit event
//! when its response body ends ([`body::AuditedBody`]).

mod answer;
mod body;
pub(crate) mod error;
mod headers;
mod ownership;
mod pipeline;
pub mod rewrite;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

use crate::audit::AuditEvent;
use crate::gateway::Gateway;
use crate::upstream::UpstreamError;
use body::{AuditDraft, InFlight};
pub(crate) use body::{AuditedBody, read_limited};
use error::ProxyError;
use pipeline::RequestContext;

/// Boxed error type of response bodies.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type of every response glgate sends.
pub(crate) type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// The header carrying glgate's request id (to the client and to GitLab).
/// A parsed name: inserting a `&str` would parse and hash it again on every request.
pub(crate) const REQUEST_ID_HEADER: http::HeaderName =
    http::HeaderName::from_static("x-request-id");

pub(crate) fn full_body(bytes: Bytes) -> ProxyBody {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// What glgate knows about a client connection.
#[derive(Clone, Debug)]
pub(crate) struct Connection {
    /// The peer's socket address.
    pub remote: SocketAddr,
    /// The verified client certificate's identity, over mutual TLS.
    pub identity: Option<crate::tls::ClientIdentity>,
    /// `remote` as text, for every audit line of the connection: formatted
    /// once (`SocketAddr`'s `Display` was ~1.7k instructions per request).
    remote_text: String,
}

impl Connection {
    /// A connection from `remote`, with the client certificate's identity if any.
    pub(crate) fn new(
        remote: SocketAddr,
        identity: Option<crate::tls::ClientIdentity>,
    ) -> Connection {
        Connection {
            remote,
            identity,
            remote_text: remote.to_string(),
        }
    }
}

/// Handles one request on `connection`. Never fails.
pub(crate) async fn handle(
    gateway: Arc<Gateway>,
    connection: Arc<Connection>,
    request: Request<Incoming>,
) -> Result<Response<AuditedBody>, std::convert::Infallible> {
    let started = Instant::now();
    let in_flight = InFlight::start(&gateway.metrics.requests_in_flight);
    let snapshot = gateway.snapshot();
    let request_id = next_request_id();
    let is_head = request.method() == http::Method::HEAD;
    let event = AuditEvent::start(
        request_id.clone(),
        connection.remote_text.clone(),
        request.method().as_str(),
        request.uri().path(),
    );
    let mut context = RequestContext::new(&gateway, &snapshot, &connection, event);
    let answer = context.run(request).await;
    let mut event = context.event;
    let mut response = match answer {
        Ok(response) => response,
        Err(error) => {
            event.reason = error.code().to_owned();
            if let ProxyError::Upstream(UpstreamError::CredentialRejected {
                upstream_request_id,
            }) = &error
            {
                gateway.metrics.upstream_credential_rejections.inc();
                tracing::warn!(
                    request_id = %event.request_id,
                    upstream_request_id = upstream_request_id.as_deref().unwrap_or("-"),
                    "GitLab rejected glgate's own GitLab token (401): renew or replace it \
                     (upstream.token_file); clients get 503 upstream_credential_rejected meanwhile"
                );
            } else if matches!(error, ProxyError::Upstream(_)) {
                tracing::warn!(request_id = %event.request_id, error = %crate::diagnostic::describe(&error), "upstream failure");
            }
            error.into_response()
        }
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    if is_head {
        // HTTP/1 drops a HEAD response's body itself; HTTP/2 would send it as
        // DATA frames, which clients reject. Headers (with Content-Length) stay.
        *response.body_mut() = full_body(Bytes::new());
    }
    event.status = response.status().as_u16();
    let draft = AuditDraft {
        event,
        started,
        gateway,
        in_flight,
    };
    Ok(response.map(|body| AuditedBody::new(body, draft)))
}

/// A process-unique request id: a random prefix chosen at start, then a counter.
fn next_request_id() -> String {
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| {
        let mut bytes = [0u8; 6];
        // Without OS randomness the prefix is only less unique across restarts;
        // request ids are for correlation, not security.
        let _ = getrandom::fill(&mut bytes);
        hex::encode(bytes)
    });
    // What `format!("{prefix}-{count:08x}")` gives, without the formatting
    // machinery (~1k instructions per request).
    let mut id = String::with_capacity(prefix.len() + 1 + 16);
    id.push_str(prefix);
    id.push('-');
    push_counter(&mut id, COUNTER.fetch_add(1, Ordering::Relaxed));
    id
}

/// Appends `count` as `{:08x}` would: lowercase hex, at least 8 digits.
fn push_counter(id: &mut String, count: u64) {
    let digits = (16 - count.leading_zeros() as usize / 4).max(8);
    for shift in (0..digits).rev() {
        let nibble = (count >> (4 * shift)) & 0xf;
        id.push(char::from(HEX[nibble as usize]));
    }
}

/// Lowercase hex digits, for request ids.
const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    /// The request id's counter reads as `{:08x}` would write it.
    #[test]
    fn request_ids_count_in_hex_of_at_least_eight_digits() {
        let first = super::next_request_id();
        let (prefix, count) = first.split_once('-').unwrap();
        assert_eq!(prefix.len(), 12);
        let count = u64::from_str_radix(count, 16).unwrap();
        let next = super::next_request_id();
        assert!(next.starts_with(prefix));
        assert!(u64::from_str_radix(next.split_once('-').unwrap().1, 16).unwrap() > count);
        for value in [0u64, 1, 0xf, 0xabc, 0xffff_ffff, 0x1_0000_0000, u64::MAX] {
            let mut text = String::new();
            super::push_counter(&mut text, value);
            assert_eq!(text, format!("{value:08x}"));
        }
    }
}
