//! The one road every failure takes: a typed error mapped to a status and a
//! GitLab-shaped JSON body (`{"message": "..."}` plus a stable `reason` code).
//! Messages say what happened and what to do, and never name the upstream
//! host or carry a credential.

use crate::webhooks::relay::RelayError;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use super::ProxyBody;
use crate::auth::AuthError;
use crate::canonical::TargetError;
use crate::policy::Denial;
use crate::scope::Kind;
use crate::scope::guard::ScopeRefusal;
use crate::upstream::UpstreamError;

/// Everything that can end a request before (or instead of) GitLab's answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyError {
    /// The target cannot be read unambiguously.
    #[error("{0}")]
    Target(#[from] TargetError),
    /// No valid client credential.
    #[error("{0}")]
    Unauthenticated(#[from] AuthError),
    /// A header GitLab reads as a credential, impersonation or method override.
    #[error("header '{0}' is not accepted: glgate holds the only GitLab credential")]
    ForbiddenHeader(&'static str),
    /// A header that must appear once appears more than once.
    #[error("header '{0}' is sent more than once")]
    RepeatedHeader(String),
    /// `Connection` names an end-to-end header glgate checked or GitLab
    /// reads as a credential: dropping it would change what GitLab reads.
    #[error(
        "header 'Connection' names '{0}', which is end-to-end here: send Connection with keep-alive or close only"
    )]
    EndToEndInConnection(String),
    /// The policy refused the request.
    #[error("{0}")]
    Denied(Denial),
    /// The existing resource does not meet the rule's `owned_if`.
    #[error("this {0} is not one this client may touch")]
    NotOwned(String),
    /// The request would add or remove items of a set-valued field that the
    /// rule's `changes_only` does not let this client change.
    #[error(
        "this request would change {field} this client may not change: {}",
        quoted(items)
    )]
    ChangeNotAllowed {
        /// The field, e.g. `labels`.
        field: String,
        /// The items added or removed outside the rule's pattern.
        items: Vec<String>,
    },
    /// The resource to check does not exist.
    #[error("not found")]
    ResourceNotFound,
    /// The resource could not be read to check `owned_if`: refused, fail closed.
    #[error("GitLab could not confirm this resource may be touched; retry later")]
    OwnershipUnknown,
    /// The client is over its request rate.
    #[error("too many requests from this client; retry after {0} s")]
    RateLimited(u64),
    /// The body is larger than the rule or the config allows.
    #[error("the request body is larger than {0} bytes")]
    BodyTooLarge(u64),
    /// The body did not arrive in time.
    #[error("the request body did not arrive in time")]
    BodyTimeout,
    /// The body could not be read.
    #[error("the request body could not be read")]
    BodyRead,
    /// GitLab failed or was too slow.
    #[error("{0}")]
    Upstream(#[from] UpstreamError),
    /// The project or group is outside the client's scope (or does not
    /// exist): answered exactly as GitLab answers for one the caller cannot see.
    #[error("{kind} not found")]
    OutOfScope {
        /// Project or group.
        kind: Kind,
        /// Whether GitLab knows it (audit only: the client cannot tell).
        exists: bool,
    },
    /// The scope could not be checked (GitLab unreachable or failing): refused, fail closed.
    #[error(
        "GitLab could not confirm this project or group is within this client's scope; retry later"
    )]
    ScopeUnavailable,
    /// A group hook would deliver the events of projects outside the scope
    /// (something below the group is excluded): refused until deliveries are
    /// filtered per project. Names nothing of what lies outside.
    #[error(
        "a group hook on this group would also deliver events of projects outside this client's scope; register hooks on the projects instead"
    )]
    GroupHookBeyondScope,
    /// A group request asks for something computed over the whole subtree
    /// (`statistics`, `include_descendant_groups`) while something below the
    /// group lies outside the scope.
    #[error(
        "'{0}' would be computed over projects or groups outside this client's scope; ask without it, or for each group wholly in scope"
    )]
    AggregateBeyondScope(&'static str),
    /// The request names more projects, groups or namespaces than glgate
    /// checks for one request (each may cost a lookup at GitLab).
    #[error(
        "this request names more than {} projects, groups or namespaces; glgate checks at most that many per request: split it",
        crate::scope::guard::MAX_NAMED_OBJECTS
    )]
    TooManyObjects,
    /// GitLab's answer is larger than glgate reads whole to filter it.
    #[error(
        "GitLab's answer is larger than glgate filters ({0} bytes, limits.max_filtered_response_bytes); ask for fewer items per page (per_page)"
    )]
    TooLargeToFilter(usize),
    /// GitLab's answer should be filtered but is not the JSON expected.
    #[error("GitLab's answer could not be checked, so it is not relayed")]
    Unfilterable,
    /// A hook registration the webhook relay cannot rewrite.
    #[error("{0}")]
    Relay(RelayError),
}

impl From<ScopeRefusal> for ProxyError {
    fn from(refusal: ScopeRefusal) -> ProxyError {
        match refusal {
            ScopeRefusal::OutOfScope { kind, exists } => ProxyError::OutOfScope { kind, exists },
            ScopeRefusal::Unavailable => ProxyError::ScopeUnavailable,
            ScopeRefusal::GroupHookBeyondScope => ProxyError::GroupHookBeyondScope,
            ScopeRefusal::TooManyObjects => ProxyError::TooManyObjects,
            ScopeRefusal::AggregateBeyondScope(param) => ProxyError::AggregateBeyondScope(param),
        }
    }
}

impl ProxyError {
    /// The status sent to the client.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ProxyError::Target(TargetError::NotApi) => StatusCode::NOT_FOUND,
            ProxyError::Target(TargetError::UnsupportedMethod(_)) => StatusCode::METHOD_NOT_ALLOWED,
            ProxyError::Target(TargetError::TooLong) => StatusCode::URI_TOO_LONG,
            ProxyError::Target(_)
            | ProxyError::ForbiddenHeader(_)
            | ProxyError::RepeatedHeader(_)
            | ProxyError::EndToEndInConnection(_)
            | ProxyError::BodyRead => StatusCode::BAD_REQUEST,
            ProxyError::Unauthenticated(AuthError::SourceNotAllowed) => StatusCode::FORBIDDEN,
            ProxyError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ProxyError::Denied(denial) if denial.reason.is_bad_request() => StatusCode::BAD_REQUEST,
            ProxyError::Denied(denial) if denial.reason.code() == "unsupported_content_type" => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            ProxyError::Denied(_) => StatusCode::FORBIDDEN,
            ProxyError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::NotOwned(_) | ProxyError::ChangeNotAllowed { .. } => StatusCode::FORBIDDEN,
            ProxyError::ResourceNotFound => StatusCode::NOT_FOUND,
            ProxyError::OwnershipUnknown => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ProxyError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ProxyError::Upstream(UpstreamError::Timeout) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Upstream(
                UpstreamError::CredentialUnavailable(_) | UpstreamError::CredentialRejected { .. },
            ) => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ProxyError::OutOfScope { .. } => StatusCode::NOT_FOUND,
            ProxyError::ScopeUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::GroupHookBeyondScope => StatusCode::FORBIDDEN,
            ProxyError::TooManyObjects => StatusCode::BAD_REQUEST,
            ProxyError::AggregateBeyondScope(_) => StatusCode::FORBIDDEN,
            ProxyError::TooLargeToFilter(_) | ProxyError::Unfilterable => StatusCode::BAD_GATEWAY,
            ProxyError::Relay(RelayError::Seal) => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::Relay(RelayError::NeedsMigration | RelayError::CustomTemplate) => {
                StatusCode::FORBIDDEN
            }
            ProxyError::Relay(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// Whether this refuses a request the policy allowed, on a check of
    /// GitLab's own objects (scope, `owned_if`): the decision is then `deny`.
    pub(crate) fn is_object_refusal(&self) -> bool {
        matches!(
            self,
            ProxyError::OutOfScope { .. }
                | ProxyError::ScopeUnavailable
                | ProxyError::GroupHookBeyondScope
                | ProxyError::TooManyObjects
                | ProxyError::AggregateBeyondScope(_)
                | ProxyError::NotOwned(_)
                | ProxyError::ChangeNotAllowed { .. }
                | ProxyError::ResourceNotFound
                | ProxyError::OwnershipUnknown
        )
    }

    /// The stable reason code (audit `reason`, metrics, JSON `reason`).
    pub(crate) fn code(&self) -> &'static str {
        match self {
            ProxyError::Target(error) => error.code(),
            ProxyError::Unauthenticated(error) => error.code(),
            ProxyError::ForbiddenHeader(_) => "forbidden_header",
            ProxyError::RepeatedHeader(_) => "repeated_header",
            ProxyError::EndToEndInConnection(_) => "end_to_end_header_in_connection",
            ProxyError::Denied(denial) => denial.reason.code(),
            ProxyError::BodyTooLarge(_) => "body_too_large",
            ProxyError::NotOwned(_) => "not_owned",
            ProxyError::ChangeNotAllowed { .. } => "change_not_allowed",
            ProxyError::ResourceNotFound => "not_found",
            ProxyError::OwnershipUnknown => "ownership_check_failed",
            ProxyError::RateLimited(_) => "rate_limited",
            ProxyError::BodyTimeout => "body_timeout",
            ProxyError::BodyRead => "body_read_error",
            ProxyError::Upstream(UpstreamError::Timeout) => "upstream_timeout",
            ProxyError::Upstream(UpstreamError::ResponseTooLarge(_)) => "response_too_large",
            ProxyError::Upstream(UpstreamError::CredentialUnavailable(_)) => {
                "upstream_credential_unavailable"
            }
            ProxyError::Upstream(UpstreamError::CredentialRejected { .. }) => {
                "upstream_credential_rejected"
            }
            ProxyError::Upstream(_) => "upstream_unavailable",
            ProxyError::OutOfScope { exists: true, .. } => "out_of_scope",
            ProxyError::OutOfScope { exists: false, .. } => "not_found",
            ProxyError::ScopeUnavailable => "scope_check_failed",
            ProxyError::GroupHookBeyondScope => "group_hook_beyond_scope",
            ProxyError::TooManyObjects => "too_many_objects",
            ProxyError::AggregateBeyondScope(_) => "aggregate_beyond_scope",
            ProxyError::TooLargeToFilter(_) => "response_too_large_to_filter",
            ProxyError::Unfilterable => "response_unfilterable",
            ProxyError::Relay(RelayError::InQuery(_)) => "webhook_relay_query_field",
            ProxyError::Relay(RelayError::Loop) => "webhook_relay_loop",
            ProxyError::Relay(RelayError::NotText(_)) => "webhook_relay_not_text",
            ProxyError::Relay(RelayError::NeedsMigration) => "webhook_relay_migration_needed",
            ProxyError::Relay(RelayError::MissingUrl) => "webhook_relay_missing_url",
            ProxyError::Relay(RelayError::CustomTemplate) => "webhook_relay_custom_template",
            ProxyError::Relay(RelayError::Body) => "webhook_relay_body",
            ProxyError::Relay(RelayError::Seal) => "webhook_relay_unavailable",
        }
    }

    /// The response sent to the client.
    pub(crate) fn into_response(self) -> Response<ProxyBody> {
        let status = self.status();
        if let ProxyError::OutOfScope { kind, .. } = &self {
            // Byte for byte what GitLab sends for a project or group the
            // caller cannot see: scope must not reveal what exists.
            let message = format!("404 {} Not Found", kind.noun());
            return json_response(status, &serde_json::json!({ "message": message }));
        }
        let label = format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("Error")
        );
        let mut body = serde_json::json!({
            "message": format!("{label} - glgate: {self}"),
            "reason": self.code(),
        });
        if let ProxyError::Denied(denial) = &self
            && let Some(rule) = &denial.rule
        {
            body["rule"] = serde_json::Value::from(&**rule);
        }
        let mut response = json_response(status, &body);
        if let ProxyError::RateLimited(seconds) = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// A JSON response with `status`.
pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<ProxyBody> {
    let mut response = Response::new(super::full_body(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `'a', 'b'`: names as the client sent or GitLab holds them, quoted, control
/// characters escaped.
fn quoted(items: &[String]) -> String {
    items
        .iter()
        .map(|item| format!("'{}'", crate::canonical::printable(item)))
        .collect::<Vec<_>>()
        .join(", ")
}
