//! The request pipeline as named phases over one [`RequestContext`]:
//!
//! 1. [`target`](RequestContext::target): the origin-form target, parsed into
//!    its canonical head; a read of the API root is answered here.
//! 2. [`authenticate`](RequestContext::authenticate): the client, its rate
//!    limit, and the headers no client may send.
//! 3. [`decide`](RequestContext::decide): route, read the body, parse it,
//!    check the parameters; a [`Permit`] or a refusal.
//! 4. [`check_objects`](RequestContext::check_objects): scope on the way in,
//!    then `owned_if` on the existing object.
//! 5. [`send`](RequestContext::send): the permitted request to GitLab.
//! 6. [`filter_answer`](RequestContext::filter_answer): scope on the way out
//!    and the rule's `response_filter`.
//!
//! Each phase writes what it learned into the audit event as it learns it;
//! the shadow policy is evaluated once, after the decision, on exactly what
//! the real policy saw. Recording the event is [`super::handle`]'s, when the
//! response body ends.

use std::time::Instant;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Response, StatusCode, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::answer::AnswerChecks;
use super::body::millis;
use super::error::{self, ProxyError};
use super::{BoxError, Connection, ProxyBody, REQUEST_ID_HEADER, headers};
use crate::audit::AuditEvent;
use crate::auth::Principal;
use crate::canonical::{Param, RequestHead, TargetError};
use crate::gateway::{Gateway, Snapshot};
use crate::policy::{Decision, Matched, Permit, parse_body};
use crate::scope::guard::{LookupCounts, ScopeGuard};
use crate::upstream::{BoundedBody, UpstreamError};
use crate::webhooks::relay::{Existing, HookRoute, RelayError, RelayView};

/// One request on its way through glgate: where it came from, what glgate
/// runs on for it, and what its phases have learned so far.
pub(super) struct RequestContext<'a> {
    gateway: &'a Gateway,
    snapshot: &'a Snapshot,
    connection: &'a Connection,
    /// The audit event, filled in phase by phase.
    pub(super) event: AuditEvent,
    /// The body parameters the policy read (empty until the body is parsed,
    /// and when the rule reads no body).
    body_params: Vec<Param>,
    /// Scope resolutions made for this request, both ways.
    lookups: LookupCounts,
    /// Items removed from GitLab's answer.
    hidden: usize,
}

/// What the target phase found.
enum Target {
    /// A read of the API root (`/api/v4`), answered by glgate itself.
    ApiRoot,
    /// A request to check; a target the canonicalizer refuses is refused
    /// after authentication, so an unauthenticated caller is only ever told
    /// to authenticate.
    Api(Result<RequestHead, TargetError>),
}

impl<'a> RequestContext<'a> {
    /// A context for a request that arrived on `connection`, decided on `snapshot`.
    pub(super) fn new(
        gateway: &'a Gateway,
        snapshot: &'a Snapshot,
        connection: &'a Connection,
        event: AuditEvent,
    ) -> RequestContext<'a> {
        RequestContext {
            gateway,
            snapshot,
            connection,
            event,
            body_params: Vec::new(),
            lookups: LookupCounts::default(),
            hidden: 0,
        }
    }

    /// Runs the phases in order; the first refusal ends the request.
    pub(super) async fn run(
        &mut self,
        request: http::Request<Incoming>,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        let (parts, body) = request.into_parts();
        let head = match self.target(&parts)? {
            Target::ApiRoot => {
                self.event.decision = "allow";
                self.event.reason = "api_root".into();
                return Ok(error::json_response(StatusCode::OK, &serde_json::json!({})));
            }
            Target::Api(head) => head,
        };
        let principal = self.authenticate(&parts)?;
        let head = head?;
        let decision = self.decide(&principal, &head, &parts.headers, body).await;
        self.record_shadow(&principal, &head);
        let (permit, body) = decision?;

        let snapshot = self.snapshot;
        // On a hook route, a client whose hooks are relayed sees them through the relay.
        let hook_route = HookRoute::of(head.method(), permit.template());
        let relay = hook_route
            .and_then(|_| snapshot.relay_view(&principal.name, principal.relays_webhooks));
        // A relayed registration is delivered only while its rule's `url`
        // pattern allows the destination: a rule without one could register
        // hooks whose every event would then be undeliverable.
        if relay.as_ref().is_some_and(|view| view.relays)
            && matches!(hook_route, Some(HookRoute::Create | HookRoute::Update))
            && crate::webhooks::receive::url_spec(&principal.policy, permit.rule()).is_none()
        {
            self.event.decision = "deny";
            return Err(ProxyError::Relay(RelayError::RuleWithoutUrl));
        }
        let scope = principal.scope.as_deref().map(|scope| {
            ScopeGuard::new(
                scope,
                &snapshot.resolver,
                &snapshot.upstream,
                permit.template(),
            )
            .with_relayed_hooks(principal.relays_webhooks && snapshot.config.webhooks.is_some())
        });
        let checks = AnswerChecks {
            relay: relay.as_ref(),
            response_filter: permit.response_filter(),
            scope: scope.as_ref(),
            max_bytes: snapshot.config.limits.max_filtered_response_bytes,
            raw_content: super::answer::serves_raw_content(permit.template()),
            head: head.method() == crate::canonical::Method::Head,
        };
        let upstream_started = Instant::now();
        let relayed = relay.as_ref().zip(hook_route);
        let answer = self
            .reach_gitlab(&permit, &head, &parts.headers, body, &checks, relayed)
            .await;
        self.event.upstream_ms = Some(millis(upstream_started.elapsed()));
        self.count_answer_work(&principal);
        if answer.as_ref().is_err_and(ProxyError::is_object_refusal) {
            self.event.decision = "deny";
        }
        let mut response = answer?;
        headers::clean_response(response.headers_mut());
        snapshot.rewriter.headers(response.headers_mut());
        Ok(response)
    }

    /// Phase 1: the target, origin-form only. HTTP/2 always carries scheme
    /// and authority as pseudo-headers, so only its path is read; an HTTP/1
    /// request in absolute or authority form is refused.
    fn target(&self, parts: &Parts) -> Result<Target, ProxyError> {
        let is_h2 = parts.version == Version::HTTP_2;
        if !is_h2 && (parts.uri.scheme().is_some() || parts.uri.authority().is_some()) {
            return Err(TargetError::NotOriginForm.into());
        }
        let target = parts
            .uri
            .path_and_query()
            .map(|pq| pq.as_str())
            .filter(|t| t.starts_with('/'))
            .ok_or(TargetError::NotOriginForm)?;
        let head = RequestHead::parse(parts.method.as_str(), target);
        if let Ok(head) = &head
            && head.is_api_root()
            && head.method().is_read()
        {
            return Ok(Target::ApiRoot);
        }
        Ok(Target::Api(head))
    }

    /// Phase 2: who is asking (token, certificate, source address), whether
    /// it is within its rate, and whether it sent a header only glgate may send.
    fn authenticate(&mut self, parts: &Parts) -> Result<Principal, ProxyError> {
        let snapshot = self.snapshot;
        let peer = crate::auth::Peer {
            identity: self.connection.identity.as_ref(),
            ip: crate::auth::client_ip(
                self.connection.remote.ip(),
                &parts.headers,
                &snapshot.config.trusted_proxies,
            ),
        };
        let principal = snapshot
            .clients
            .authenticate(&parts.headers, peer)
            .map_err(|rejection| {
                if let Some(client) = rejection.client {
                    self.event.client = client.to_string();
                }
                ProxyError::Unauthenticated(rejection.error)
            })?;
        self.event.client = principal.name.to_string();
        self.gateway
            .limiter
            .acquire(&principal.name, principal.rate_limit, Instant::now())
            .map_err(|wait| ProxyError::RateLimited(crate::ratelimit::retry_after_seconds(wait)))?;
        headers::refuse_forbidden(&parts.headers)?;
        Ok(principal)
    }

    /// Phase 3: the client's policy decides. The route picks the rule, which
    /// says how much body may be read; the body is parsed as the policy reads
    /// it, and the merged parameters are checked. Yields the permit and the
    /// body to forward.
    async fn decide(
        &mut self,
        principal: &Principal,
        head: &RequestHead,
        headers: &HeaderMap,
        body: Incoming,
    ) -> Result<(Permit, Bytes), ProxyError> {
        let matched = principal.policy.route(head).map_err(|denial| {
            if let Some(template) = &denial.template {
                self.event.template = template.to_string();
            }
            ProxyError::Denied(denial)
        })?;
        self.event.template = matched.template().to_owned();
        self.event.rule = matched.rule().id().to_owned();

        let body = self.read_body(&matched, headers, body).await?;
        self.event.bytes_in = body.len() as u64;
        let content_type = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        self.body_params = parse_body(content_type, &body)
            .map_err(|reason| ProxyError::Denied(matched.refuse(reason)))?;

        match matched.check(head.query(), &self.body_params) {
            Decision::Allow(permit) => {
                self.event.decision = "allow";
                self.event.reason = "allowed".into();
                Ok((permit, body))
            }
            Decision::Deny(denial) => Err(ProxyError::Denied(denial)),
        }
    }

    /// Reads the request body within the rule's and the config's limits; a
    /// body sent to a rule that reads none is the rule's refusal.
    async fn read_body(
        &self,
        matched: &Matched<'_>,
        headers: &HeaderMap,
        body: Incoming,
    ) -> Result<Bytes, ProxyError> {
        let limits = &self.snapshot.config.limits;
        let limit = if matched.accepts_body() {
            matched.rule().max_body_bytes().min(limits.max_body_bytes)
        } else {
            0
        };
        super::body::read_limited(headers, body, limit, limits.body_read_timeout)
            .await
            .map_err(|error| match error {
                ProxyError::BodyTooLarge(_) if limit == 0 => {
                    ProxyError::Denied(matched.refuse(crate::policy::Reason::BodyNotAllowed))
                }
                other => other,
            })
    }

    /// Evaluates the client's shadow policy, if it has one, on what the real
    /// policy saw (the body only when the real rule read it), and records its
    /// decision in the audit event. The shadow decision changes nothing else.
    fn record_shadow(&mut self, principal: &Principal, head: &RequestHead) {
        let Some(shadow) = &principal.shadow_policy else {
            return;
        };
        let (decision, rule, reason) = match shadow.evaluate(head, &self.body_params) {
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
        self.event.shadow_decision = Some(decision);
        self.event.shadow_rule = rule;
        self.event.shadow_reason = Some(reason);
    }

    /// Phases 4 to 6: what happens with GitLab once the policy has allowed
    /// the request (all of it counts as upstream time in the audit event).
    async fn reach_gitlab(
        &mut self,
        permit: &Permit,
        head: &RequestHead,
        headers: &HeaderMap,
        body: Bytes,
        checks: &AnswerChecks<'_>,
        relayed: Option<(&RelayView<'_>, HookRoute)>,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        // Whenever the relay is configured, a request on one hook reads it
        // first, whatever the rule says: another client's relay hook is
        // never touched, and an update knows what it updates.
        let read_hook = relayed.is_some_and(|(_, route)| route.names_one_hook());
        let existing = self
            .check_objects(permit, head, checks.scope, checks.relay, read_hook)
            .await?;
        let body = match relayed {
            Some((relay, route @ (HookRoute::Create | HookRoute::Update))) if relay.relays => {
                self.relay_registration(relay, route, permit, head, headers, body, existing)?
            }
            _ => body,
        };
        let response = self.send(permit, head, headers, body, checks).await?;
        self.filter_answer(response, checks).await
    }

    /// Between the checks and the send, for a hook create or update of a
    /// client whose hooks are relayed: the body to forward, with `url` and
    /// `token` replaced by the relay's (the checked body when an update of
    /// one of its relay hooks sets neither). `existing` is the hook as
    /// GitLab holds it (updates: always read, see `reach_gitlab`).
    #[allow(clippy::too_many_arguments)]
    fn relay_registration(
        &mut self,
        relay: &RelayView<'_>,
        route: HookRoute,
        permit: &Permit,
        head: &RequestHead,
        headers: &HeaderMap,
        body: Bytes,
        existing: Option<serde_json::Value>,
    ) -> Result<Bytes, ProxyError> {
        let existing = match (route, existing) {
            (HookRoute::Create, _) => None,
            (_, None) => return Err(ProxyError::OwnershipUnknown),
            (_, Some(hook)) => {
                let url = hook.get("url").and_then(|u| u.as_str()).unwrap_or_default();
                match relay.own_target(url) {
                    Ok(Some(target)) => Some(Existing::Relay(target)),
                    Ok(None) => Some(Existing::Direct),
                    Err(()) => return Err(ProxyError::NotOwned("hook".into())),
                }
            }
        };
        let content_type = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let rewritten = relay
            .registration_body(
                permit.rule(),
                head.query(),
                &self.body_params,
                content_type,
                &body,
                existing.as_ref(),
            )
            .map_err(ProxyError::Relay)?;
        match rewritten {
            Some(rewritten) => {
                self.event.webhook_relay = true;
                Ok(rewritten)
            }
            None => Ok(body),
        }
    }

    /// Phase 4: every object the request names must be in the client's
    /// scope, and the existing object must meet the rule's `owned_if` and
    /// `changes_only`.
    async fn check_objects(
        &mut self,
        permit: &Permit,
        head: &RequestHead,
        scope: Option<&ScopeGuard<'_>>,
        relay: Option<&RelayView<'_>>,
        read_hook: bool,
    ) -> Result<Option<serde_json::Value>, ProxyError> {
        if let Some(scope) = scope {
            scope
                .check_request(permit, head, &self.body_params, &mut self.lookups)
                .await?;
        }
        super::ownership::check_existing(
            &self.snapshot.upstream,
            permit,
            head,
            &self.body_params,
            relay,
            read_hook,
        )
        .await
    }

    /// Phase 5: the permitted request, with the headers GitLab may see and
    /// glgate's request id, goes to GitLab.
    async fn send(
        &mut self,
        permit: &Permit,
        head: &RequestHead,
        headers: &HeaderMap,
        body: Bytes,
        checks: &AnswerChecks<'_>,
    ) -> Result<Response<BoundedBody>, ProxyError> {
        let mut forwarded = headers::forwarded(headers, !body.is_empty());
        if let Ok(value) = HeaderValue::from_str(&self.event.request_id) {
            forwarded.insert(REQUEST_ID_HEADER, value);
        }
        if checks.any() {
            // The answer is read here: ask GitLab not to compress it. And the
            // client gets no validator of GitLab's whole answer, so it may not
            // ask whether that changed (a 304 would tell of hidden items).
            forwarded.insert(
                http::header::ACCEPT_ENCODING,
                HeaderValue::from_static("identity"),
            );
            forwarded.remove(http::header::IF_NONE_MATCH);
            forwarded.remove(http::header::IF_MODIFIED_SINCE);
        }
        let response = self
            .snapshot
            .upstream
            .send(permit, head, forwarded, body)
            .await;
        // GitLab's own id is replaced by glgate's towards the client
        // (`headers::clean_response`): keep it for support, in the audit line.
        self.event.upstream_request_id = match &response {
            Ok(response) => crate::upstream::upstream_request_id(response.headers()),
            Err(UpstreamError::CredentialRejected {
                upstream_request_id,
            }) => upstream_request_id.clone(),
            Err(_) => None,
        };
        Ok(response?)
    }

    /// Phase 6: GitLab's answer streams through unless it is to be checked.
    async fn filter_answer(
        &mut self,
        response: Response<BoundedBody>,
        checks: &AnswerChecks<'_>,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        if checks.any() {
            super::answer::filter_answer(response, checks, &mut self.hidden, &mut self.lookups)
                .await
        } else {
            Ok(response.map(|body| body.map_err(BoxError::from).boxed_unsync()))
        }
    }

    /// Counts the scope resolutions and the removed items in the metrics and
    /// the audit event.
    fn count_answer_work(&mut self, principal: &Principal) {
        let metrics = &self.gateway.metrics;
        for (result, count) in [("hit", self.lookups.hits), ("miss", self.lookups.misses)] {
            if count > 0 {
                metrics.record_scope_lookups(result, count);
            }
        }
        if self.hidden > 0 {
            self.event.hidden_items = Some(self.hidden as u64);
            metrics.record_hidden_items(&principal.name, self.hidden as u64);
        }
    }
}
