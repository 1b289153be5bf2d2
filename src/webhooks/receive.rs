//! The receiving endpoint: `POST /-/webhooks/v1/<sealed>`, where GitLab
//! delivers the events of relay hooks.
//!
//! A delivery is accepted only if its relay URL opens with glgate's key and
//! `X-Gitlab-Token` is that hook's secret (compared in constant time; and,
//! when configured, GitLab's `webhook-signature` is valid). It never carries
//! or needs a client token: one is refused. The body is read within bounds,
//! the event's project or group is checked against the client's scope as it
//! is now, and the client's payload policy decides what passes and what is
//! removed. What passes is written to the durable queue before GitLab is
//! answered, so a 2xx means "will be delivered"; what is dropped (an event
//! kind not allowed, out of scope) is answered 2xx too, so GitLab does not
//! disable the hook, and counted and audited. Only a full or failing queue
//! answers 503: GitLab then counts a failure, and the event is not lost
//! silently.

use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;

use super::payload::EventObject;
use super::seal::{RELAY_PATH, SigningSecret};
use super::spool::{EnqueueError, Spool, now_ms};
use super::{HookTarget, QueuedDelivery};
use crate::audit::WebhookAuditEvent;
use crate::config::ClientConfig;
use crate::gateway::{Gateway, Snapshot};
use crate::policy::{ParamSpec, Policy};
use crate::proxy::error::ProxyError;
use crate::proxy::read_limited;
use crate::scope::resolve::{Freshness, Lookup};
use crate::scope::{FullPath, Kind};

/// GitLab's headers a delivery keeps on its way to the client, in order.
/// Not `X-Gitlab-Token` (the client gets its own), not `X-Gitlab-Instance`
/// (it names the internal GitLab) and not `User-Agent` (it tells GitLab's
/// version).
pub(crate) const KEPT_HEADERS: &[&str] = &[
    "x-gitlab-event",
    "x-gitlab-event-uuid",
    "x-gitlab-webhook-uuid",
    "idempotency-key",
];

/// Longest kept header value; GitLab's are short (UUIDs, event names).
const MAX_KEPT_HEADER_CHARS: usize = 256;

/// Whether `path` is under the relay's receiving endpoint (for `prefix`,
/// the receive URL's own path, e.g. `/glgate`, or empty).
pub(crate) fn is_relay_path(path: &str, prefix: &str) -> bool {
    sealed_in_path(path, prefix).is_some() || path.starts_with("/-/webhooks/")
}

fn sealed_in_path<'p>(path: &'p str, prefix: &str) -> Option<&'p str> {
    let rest = path
        .strip_prefix(RELAY_PATH)
        .or_else(|| path.strip_prefix(prefix)?.strip_prefix(RELAY_PATH))?;
    super::seal::one_segment(rest)
}

/// What happened to one delivery from GitLab.
struct Outcome {
    status: StatusCode,
    /// `accept`, `drop` or `refuse`.
    decision: &'static str,
    reason: &'static str,
}

impl Outcome {
    fn refuse(status: StatusCode, reason: &'static str) -> Outcome {
        Outcome {
            status,
            decision: "refuse",
            reason,
        }
    }

    fn drop(reason: &'static str) -> Outcome {
        Outcome {
            status: StatusCode::OK,
            decision: "drop",
            reason,
        }
    }
}

/// Handles one request to the receiving endpoint and records its audit line.
pub(crate) async fn handle(
    gateway: &Gateway,
    spool: Option<&Spool>,
    remote: String,
    request: Request<Incoming>,
) -> Response<Bytes> {
    let started = Instant::now();
    let snapshot = gateway.snapshot();
    let mut event = WebhookAuditEvent::start("received", new_delivery_id());
    event.remote = remote;
    event.event = "-".into();
    let outcome = receive(&snapshot, spool, request, &mut event).await;
    event.decision = outcome.decision;
    event.reason = outcome.reason.to_owned();
    event.status = Some(outcome.status.as_u16());
    event.latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    gateway.metrics.webhook_received(match outcome.decision {
        "accept" => "accepted",
        "drop" => "dropped",
        _ => "refused",
    });
    if outcome.decision != "accept" {
        gateway.metrics.webhook_dropped(outcome.reason);
    }
    gateway.audit.record_webhook(event).await;
    answer(outcome)
}

/// GitLab reads only the status; the body says what happened, in GitLab's
/// error shape, naming nothing of the client or the upstream.
fn answer(outcome: Outcome) -> Response<Bytes> {
    let message = match outcome.decision {
        "accept" => "accepted".to_owned(),
        "drop" => format!("dropped by glgate: {}", outcome.reason),
        _ => format!(
            "{} {} - glgate: {}",
            outcome.status.as_u16(),
            outcome.status.canonical_reason().unwrap_or("Error"),
            outcome.reason
        ),
    };
    let body = serde_json::json!({ "message": message, "reason": outcome.reason });
    let mut response = Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = outcome.status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

async fn receive(
    snapshot: &Snapshot,
    spool: Option<&Spool>,
    request: Request<Incoming>,
    event: &mut WebhookAuditEvent,
) -> Outcome {
    let (Some(settings), Some(spool)) = (snapshot.config.webhooks.as_ref(), spool) else {
        return Outcome::refuse(StatusCode::NOT_FOUND, "webhook_relay_disabled");
    };
    let (parts, body) = request.into_parts();
    let prefix = receive_prefix(&snapshot.receive_url);
    let Some(sealed) = sealed_in_path(parts.uri.path(), prefix) else {
        return Outcome::refuse(StatusCode::NOT_FOUND, "relay_url_unknown");
    };
    if parts.uri.query().is_some() {
        return Outcome::refuse(StatusCode::NOT_FOUND, "relay_url_unknown");
    }
    let Ok(target) = settings.sealer.open(sealed) else {
        return Outcome::refuse(StatusCode::NOT_FOUND, "relay_url_unknown");
    };
    event.client = target.client.clone();
    if parts.method != Method::POST {
        return Outcome::refuse(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    }
    if carries_client_credential(&parts.headers) {
        return Outcome::refuse(StatusCode::BAD_REQUEST, "client_credential_on_webhook");
    }
    let mut tokens = parts.headers.get_all("x-gitlab-token").iter();
    let presented = match (tokens.next(), tokens.next()) {
        (Some(token), None) => token.as_bytes(),
        _ => return Outcome::refuse(StatusCode::UNAUTHORIZED, "webhook_secret_invalid"),
    };
    if !settings.sealer.verify_secret(sealed, presented) {
        return Outcome::refuse(StatusCode::UNAUTHORIZED, "webhook_secret_invalid");
    }
    // Only GitLab's words go into the audit line, never a stranger's.
    event.event = header_text(&parts.headers, "x-gitlab-event")
        .unwrap_or("-")
        .chars()
        .take(64)
        .collect();
    event.idempotency_key = header_text(&parts.headers, "idempotency-key")
        .map(|key| key.chars().take(MAX_KEPT_HEADER_CHARS).collect());
    let limits = &snapshot.config.limits;
    let body = match read_body(
        &parts.headers,
        body,
        settings.max_body_bytes,
        limits.body_read_timeout,
    )
    .await
    {
        Ok(body) => body,
        Err(outcome) => return outcome,
    };
    if let Some(signing) = &settings.signing
        && !signed(signing, &parts.headers, &body)
    {
        return Outcome::refuse(StatusCode::UNAUTHORIZED, "webhook_signature_invalid");
    }
    let Some(client) = snapshot
        .config
        .clients
        .iter()
        .find(|c| *c.name == *target.client)
    else {
        return Outcome::drop("client_unknown");
    };
    let Some(payload_policy) = &client.webhooks else {
        return Outcome::drop("client_not_relayed");
    };
    if !destination_allowed(client, &target) {
        return Outcome::drop("destination_not_allowed");
    }
    let header_event = header_text(&parts.headers, "x-gitlab-event");
    let minimized = match payload_policy.apply(header_event, &body) {
        Ok(minimized) => minimized,
        Err(dropped) => {
            if let Some(path) = dropped.object.and_then(|object| object.path) {
                event.object = path;
            }
            return Outcome::drop(dropped.reason);
        }
    };
    let (kind, path) = match object_path(snapshot, minimized.object.as_ref()).await {
        Ok(Some(found)) => found,
        Ok(None) => return Outcome::drop("event_object_unknown"),
        Err(()) => {
            return Outcome::refuse(StatusCode::SERVICE_UNAVAILABLE, "scope_check_failed");
        }
    };
    event.object = path.clone();
    if !in_scope(client, kind, &path) {
        return Outcome::drop("out_of_scope");
    }
    event.fields_removed = minimized.removed.clone();
    let delivery = QueuedDelivery {
        id: event.delivery_id.clone(),
        client: target.client.clone(),
        sealed: sealed.to_owned(),
        event: header_event.unwrap_or(&minimized.kind).to_owned(),
        object: path,
        object_kind: kind.to_string(),
        headers: kept_headers(&parts.headers),
        body: minimized.body,
        received_unix_ms: now_ms(),
    };
    match spool.enqueue(delivery).await {
        Ok(()) => Outcome {
            status: StatusCode::OK,
            decision: "accept",
            reason: "queued",
        },
        Err(EnqueueError::Full) => Outcome::refuse(StatusCode::SERVICE_UNAVAILABLE, "queue_full"),
        Err(EnqueueError::ClientFull) => {
            Outcome::refuse(StatusCode::SERVICE_UNAVAILABLE, "client_queue_full")
        }
        Err(EnqueueError::Storage(error)) => {
            tracing::error!(error = %crate::diagnostic::describe(&error), "cannot queue a webhook delivery");
            Outcome::refuse(StatusCode::SERVICE_UNAVAILABLE, "queue_unavailable")
        }
    }
}

/// The path part of the receive URL (`/glgate` in `https://host/glgate`), or empty.
pub(crate) fn receive_prefix(receive_url: &str) -> &str {
    receive_url
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|at| &rest[at..]))
        .unwrap_or("")
}

/// The kind and full path of the event's object: as the payload names it,
/// or, when it gives only an id (member events, vulnerability events),
/// resolved at GitLab the way API requests are (cached). `Ok(None)`: the
/// payload names none, or GitLab does not know it; `Err`: GitLab could not
/// be asked (fail closed: the delivery is not accepted).
async fn object_path(
    snapshot: &Snapshot,
    object: Option<&EventObject>,
) -> Result<Option<(Kind, String)>, ()> {
    let Some(object) = object else {
        return Ok(None);
    };
    let kind = match object.kind {
        Kind::Project => Kind::Project,
        Kind::Group | Kind::Namespace => Kind::Group,
    };
    if let Some(path) = &object.path {
        return Ok(Some((kind, path.clone())));
    }
    let Some(id) = object.id else {
        return Ok(None);
    };
    match snapshot
        .resolver
        .resolve(&snapshot.upstream, kind, &id.to_string(), Freshness::Cached)
        .await
    {
        Ok((Lookup::Found(resolved), _)) => Ok(Some((kind, resolved.path.as_str().to_owned()))),
        Ok((Lookup::NotFound, _)) => Ok(None),
        Err(error) => {
            tracing::warn!(%kind, %error, "webhook delivery: the event's object could not be resolved");
            Err(())
        }
    }
}

/// Whether the object of `kind` at `path` is in the client's scope now.
pub(crate) fn in_scope(client: &ClientConfig, kind: Kind, path: &str) -> bool {
    client
        .scope
        .as_deref()
        .is_none_or(|scope| scope.allows(kind, &FullPath::from_gitlab(path)))
}

/// Whether the client rule that registered `target` still allows its URL:
/// the rule exists in the client's policy and its `url` parameter accepts it.
pub(crate) fn destination_allowed(client: &ClientConfig, target: &HookTarget) -> bool {
    url_spec(&client.policy, &target.rule).is_some_and(|spec| spec.accepts_scalar(&target.url))
}

/// The `url` parameter's constraint in the policy's rule `rule`: what the
/// relay checks a hook's destination against (none: nothing may register
/// or receive through the relay under that rule).
pub(crate) fn url_spec<'p>(policy: &'p Policy, rule: &str) -> Option<&'p ParamSpec> {
    policy
        .rules()
        .iter()
        .find(|candidate| candidate.id() == rule)
        .and_then(|rule| rule.params())
        .and_then(|params| params.specs().get("url"))
}

/// A client's credential on a delivery: GitLab never sends one.
fn carries_client_credential(headers: &HeaderMap) -> bool {
    headers.contains_key("private-token")
        || headers.contains_key(header::AUTHORIZATION)
        || headers.contains_key("job-token")
}

/// The delivery's body, read within the bounds every request has (a
/// declared length over the limit is refused before reading).
async fn read_body(
    headers: &HeaderMap,
    body: Incoming,
    limit: u64,
    timeout: std::time::Duration,
) -> Result<Bytes, Outcome> {
    read_limited(headers, body, limit, timeout)
        .await
        .map_err(|error| match error {
            ProxyError::BodyTooLarge(_) => {
                Outcome::refuse(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
            }
            ProxyError::BodyTimeout => Outcome::refuse(StatusCode::REQUEST_TIMEOUT, "body_timeout"),
            _ => Outcome::refuse(StatusCode::BAD_REQUEST, "body_read_error"),
        })
}

fn signed(signing: &SigningSecret, headers: &HeaderMap, body: &[u8]) -> bool {
    let (Some(id), Some(timestamp), Some(signature)) = (
        header_text(headers, "webhook-id"),
        header_text(headers, "webhook-timestamp"),
        header_text(headers, "webhook-signature"),
    ) else {
        return false;
    };
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    signing.verify(id, timestamp, signature, body, now)
}

/// The kept identifying headers, in [`KEPT_HEADERS`] order, bounded.
fn kept_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    KEPT_HEADERS
        .iter()
        .filter_map(|name| {
            let value = header_text(headers, name)?;
            (value.len() <= MAX_KEPT_HEADER_CHARS).then(|| ((*name).to_owned(), value.to_owned()))
        })
        .collect()
}

/// One header's value as text, if it is there once and printable.
fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    value.to_str().ok()
}

/// A random delivery id (128 bits, hex).
fn new_delivery_id() -> String {
    let mut bytes = [0u8; 16];
    // Without OS randomness the id is only less unique; the spool keys on
    // it, so fall back to the time and a counter rather than a constant.
    if getrandom::fill(&mut bytes).is_err() {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        bytes[..8].copy_from_slice(&now_ms().to_be_bytes());
        bytes[8..].copy_from_slice(&n.to_be_bytes());
    }
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_paths_are_found_with_or_without_the_receive_prefix() {
        assert_eq!(sealed_in_path("/-/webhooks/v1/abc", ""), Some("abc"));
        assert_eq!(
            sealed_in_path("/glgate/-/webhooks/v1/abc", "/glgate"),
            Some("abc")
        );
        assert_eq!(sealed_in_path("/-/webhooks/v1/abc", "/glgate"), Some("abc"));
        assert_eq!(sealed_in_path("/-/webhooks/v1/", ""), None);
        assert_eq!(sealed_in_path("/-/webhooks/v1/a/b", ""), None);
        assert_eq!(sealed_in_path("/api/v4/projects", ""), None);
        assert!(is_relay_path("/-/webhooks/v2/x", ""));
        assert!(!is_relay_path("/api/v4/-/webhooks/v1/x", ""));
        assert_eq!(receive_prefix("https://host:8443/glgate"), "/glgate");
        assert_eq!(receive_prefix("https://host"), "");
    }

    #[test]
    fn kept_headers_leave_out_the_token_and_the_instance() {
        let mut headers = HeaderMap::new();
        headers.insert("x-gitlab-event", "Push Hook".parse().unwrap());
        headers.insert("x-gitlab-token", "secret".parse().unwrap());
        headers.insert(
            "x-gitlab-instance",
            "https://gitlab.internal".parse().unwrap(),
        );
        headers.insert("idempotency-key", "k-1".parse().unwrap());
        headers.insert("user-agent", "GitLab/18.0".parse().unwrap());
        let kept = kept_headers(&headers);
        let names: Vec<&str> = kept.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["x-gitlab-event", "idempotency-key"]);
    }
}
