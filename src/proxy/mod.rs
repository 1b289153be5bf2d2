//! The request pipeline: accept → snapshot → authenticate → canonicalize →
//! decide → inspect the body → forward → respond → record.
//!
//! [`handle`] never fails: every error becomes a GitLab-shaped JSON response
//! in [`error`], and every request, allowed or not, yields one audit event
//! when its response body ends ([`body::AuditedBody`]).

mod body;
pub mod error;
mod headers;
mod resource;
pub mod rewrite;
mod scoped;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, Version};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

use crate::audit::AuditEvent;
use crate::auth::Principal;
use crate::canonical::{Param, RequestHead};
use crate::gateway::{Gateway, Snapshot};
use crate::policy::{Decision, parse_body};
use crate::scope::filter::Judge;
use body::{AuditedBody, Finish, millis};
use error::ProxyError;

/// Boxed error type of response bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type of every response glgate sends.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// The header carrying glgate's request id (to the client and to GitLab).
pub const REQUEST_ID_HEADER: &str = "x-request-id";

pub(crate) fn full_body(bytes: Bytes) -> ProxyBody {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// What glgate knows about a client connection.
#[derive(Clone, Debug)]
pub struct Connection {
    /// The peer's socket address.
    pub remote: SocketAddr,
    /// The verified client certificate's identity, over mutual TLS.
    pub identity: Option<crate::tls::ClientIdentity>,
}

/// Handles one request on `connection`. Never fails.
pub async fn handle(
    gateway: Arc<Gateway>,
    connection: Arc<Connection>,
    request: Request<Incoming>,
) -> Result<Response<AuditedBody>, std::convert::Infallible> {
    let remote = connection.remote;
    let started = Instant::now();
    let snapshot = gateway.snapshot();
    let request_id = next_request_id();
    let is_head = request.method() == http::Method::HEAD;
    let mut event = AuditEvent::start(
        request_id.clone(),
        remote.to_string(),
        request.method().as_str(),
        request.uri().path(),
    );
    let mut response = match pipeline(&gateway, &snapshot, &connection, &mut event, request).await {
        Ok(response) => response,
        Err(error) => {
            event.reason = error.code().to_owned();
            if matches!(error, ProxyError::Upstream(_)) {
                tracing::warn!(request_id = %event.request_id, error = ?error, "upstream failure");
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
    let finish = Finish {
        event,
        started,
        gateway,
    };
    Ok(response.map(|body| AuditedBody::new(body, finish)))
}

async fn pipeline(
    gateway: &Gateway,
    snapshot: &Snapshot,
    connection: &Connection,
    event: &mut AuditEvent,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, ProxyError> {
    let (parts, body) = request.into_parts();
    let target = origin_form_target(&parts.uri, parts.version)?;
    let head = RequestHead::parse(parts.method.as_str(), target);
    if let Ok(head) = &head
        && head.is_api_root()
        && head.method().is_read()
    {
        event.decision = "allow";
        event.reason = "api_root".into();
        return Ok(error::json_response(StatusCode::OK, &serde_json::json!({})));
    }

    let peer = crate::auth::Peer {
        identity: connection.identity.as_ref(),
        ip: crate::auth::client_ip(
            connection.remote.ip(),
            &parts.headers,
            &snapshot.config.trusted_proxies,
        ),
    };
    let principal = snapshot
        .clients
        .authenticate(&parts.headers, peer)
        .map_err(|rejection| {
            if let Some(client) = rejection.client {
                event.client = client.to_string();
            }
            ProxyError::Unauthenticated(rejection.error)
        })?;
    event.client = principal.name.to_string();
    gateway
        .limiter
        .acquire(&principal.name, principal.rate_limit, Instant::now())
        .map_err(|wait| ProxyError::RateLimited(crate::ratelimit::retry_after_seconds(wait)))?;
    headers::refuse_forbidden(&parts.headers)?;
    let head = head?;

    let matched = principal.policy.route(&head).map_err(|denial| {
        if let Some(template) = &denial.template {
            event.template = template.to_string();
        }
        record_shadow(event, &principal, &head, &[]);
        ProxyError::Denied(denial)
    })?;
    event.template = matched.template().to_owned();
    event.rule = matched.rule().id().to_owned();

    let limit = if matched.accepts_body() {
        matched
            .rule()
            .max_body_bytes()
            .min(snapshot.config.limits.max_body_bytes)
    } else {
        0
    };
    let body = body::read_limited(
        &parts.headers,
        body,
        limit,
        snapshot.config.limits.body_read_timeout,
    )
    .await
    .map_err(|error| {
        record_shadow(event, &principal, &head, &[]);
        match error {
            ProxyError::BodyTooLarge(_) if limit == 0 => {
                ProxyError::Denied(matched.refuse(crate::policy::Reason::BodyNotAllowed))
            }
            other => other,
        }
    })?;
    event.bytes_in = body.len() as u64;
    let content_type = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let body_params = parse_body(content_type, &body).map_err(|reason| {
        record_shadow(event, &principal, &head, &[]);
        ProxyError::Denied(matched.refuse(reason))
    })?;

    record_shadow(event, &principal, &head, &body_params);
    let permit = match matched.check(head.query(), &body_params) {
        Decision::Allow(permit) => permit,
        Decision::Deny(denial) => return Err(ProxyError::Denied(denial)),
    };
    event.decision = "allow";
    event.reason = "allowed".into();

    let mut forwarded = headers::forwarded(&parts.headers, !body.is_empty());
    if let Ok(value) = HeaderValue::from_str(&event.request_id) {
        forwarded.insert(REQUEST_ID_HEADER, value);
    }
    let upstream_started = Instant::now();
    let mut inspected = resource::Inspected::default();
    let result = forward(
        snapshot,
        &principal,
        Forward {
            permit: &permit,
            head: &head,
            body_params: &body_params,
        },
        forwarded,
        body,
        &mut inspected,
    )
    .await;
    let lookups = inspected.lookups;
    for (result, count) in [("hit", lookups.hits), ("miss", lookups.misses)] {
        if count > 0 {
            gateway.metrics.record_scope_lookups(result, count);
        }
    }
    if inspected.hidden > 0 {
        event.hidden_items = Some(inspected.hidden as u64);
        gateway
            .metrics
            .record_hidden_items(&principal.name, inspected.hidden as u64);
    }
    event.upstream_ms = Some(millis(upstream_started.elapsed()));
    if result.as_ref().is_err_and(ProxyError::is_object_refusal) {
        event.decision = "deny";
    }
    let mut response = result?;
    headers::clean_response(response.headers_mut());
    snapshot.rewriter.headers(response.headers_mut());
    Ok(response)
}

/// The checked request, as [`forward`] needs it.
struct Forward<'a> {
    permit: &'a crate::policy::Permit,
    head: &'a RequestHead,
    body_params: &'a [Param],
}

/// Checks scope and ownership, sends the permitted request to GitLab and
/// inspects the answer where the rule or the scope asks for it.
async fn forward(
    snapshot: &Snapshot,
    principal: &Principal,
    request: Forward<'_>,
    mut forwarded: http::HeaderMap,
    body: Bytes,
    inspected: &mut resource::Inspected,
) -> Result<Response<ProxyBody>, ProxyError> {
    let Forward {
        permit,
        head,
        body_params,
    } = request;
    if let Some(scope) = &principal.scope {
        let checker = scoped::Checker {
            scope,
            resolver: &snapshot.resolver,
            upstream: &snapshot.upstream,
        };
        checker
            .check_request(permit, head, body_params, &mut inspected.lookups)
            .await?;
    }
    if let Some(condition) = permit.owned_if() {
        resource::check_owned(&snapshot.upstream, permit, head, condition).await?;
    }
    let inspection = resource::Inspection {
        hook_filter: permit.response_filter(),
        scope: principal.scope.as_deref().map(|scope| Judge {
            scope,
            resolver: &snapshot.resolver,
            upstream: &snapshot.upstream,
            lists_objects: crate::scope::filter::lists_objects(permit.template()),
        }),
        max_bytes: snapshot.config.limits.max_filtered_response_bytes,
    };
    if inspection.is_needed() {
        // The answer is read here: ask GitLab not to compress it.
        forwarded.insert(
            http::header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
    }
    let response = snapshot
        .upstream
        .send(permit, head, forwarded, body)
        .await?;
    if inspection.is_needed() {
        resource::inspect(response, &inspection, inspected).await
    } else {
        Ok(response.map(|body| body.map_err(BoxError::from).boxed_unsync()))
    }
}

/// Evaluates the client's shadow policy, if it has one, on what the real
/// policy saw (the body only when the real rule read it), and records its
/// decision in the audit event. The shadow decision changes nothing else.
fn record_shadow(
    event: &mut AuditEvent,
    principal: &Principal,
    head: &RequestHead,
    body: &[Param],
) {
    let Some(shadow) = &principal.shadow_policy else {
        return;
    };
    let (decision, rule, reason) = match shadow.evaluate(head, body) {
        Decision::Allow(permit) => (
            "allow",
            Some(permit.rule().to_owned()),
            "allowed".to_owned(),
        ),
        Decision::Deny(denial) => (
            "deny",
            denial.rule.map(|rule| rule.to_string()),
            denial.reason.code().to_owned(),
        ),
    };
    event.shadow_decision = Some(decision);
    event.shadow_rule = rule;
    event.shadow_reason = Some(reason);
}

/// The target to check: origin-form only. HTTP/2 always carries scheme and
/// authority as pseudo-headers, so only its path is read; an HTTP/1 request in
/// absolute or authority form is refused.
fn origin_form_target(uri: &http::Uri, version: Version) -> Result<&str, ProxyError> {
    let is_h2 = version == Version::HTTP_2;
    if !is_h2 && (uri.scheme().is_some() || uri.authority().is_some()) {
        return Err(crate::canonical::TargetError::NotOriginForm.into());
    }
    uri.path_and_query()
        .map(|pq| pq.as_str())
        .filter(|t| t.starts_with('/'))
        .ok_or_else(|| crate::canonical::TargetError::NotOriginForm.into())
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
    format!("{prefix}-{:08x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}
