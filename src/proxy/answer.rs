//! The answer phase: GitLab's answer is read and checked before it is
//! relayed when the rule has a `response_filter` or the client has a scope.
//! List items that fail either are removed; an object outside the scope is
//! refused whole; counts that would reveal what was removed are dropped.
//! Fails closed: an answer that should be checked but cannot be is refused.

use bytes::Bytes;
use http::{HeaderValue, Response, header};
use http_body_util::BodyExt;

use super::error::ProxyError;
use super::{BoxError, ProxyBody};
use crate::policy::FieldMatch;
use crate::scope::filter::Filtered;
use crate::scope::guard::{LookupCounts, ScopeGuard};
use crate::scope::shallow::Shallow;
use crate::upstream::BoundedBody;
use crate::webhooks::relay::RelayView;

/// What to check in GitLab's answer before relaying it.
pub(crate) struct AnswerChecks<'a> {
    /// The rule's `response_filter`: list items must meet it.
    pub(crate) response_filter: Option<&'a FieldMatch>,
    /// The client's scope, when it has one.
    pub(crate) scope: Option<&'a ScopeGuard<'a>>,
    /// Largest answer read whole (`limits.max_filtered_response_bytes`).
    pub(crate) max_bytes: usize,
    /// Whether the route serves raw content (a file, an archive, a log)
    /// rather than JSON ([`serves_raw_content`]).
    pub(crate) raw_content: bool,
    /// Whether the request is a `HEAD` (no body to filter, but GitLab's
    /// `Content-Length` sizes the unfiltered one).
    pub(crate) head: bool,
    /// On a hook route of a client whose hooks are relayed: relay URLs are
    /// turned back into the client's own, other clients' hooks removed.
    pub(crate) relay: Option<&'a RelayView<'a>>,
}

impl AnswerChecks<'_> {
    /// Whether anything is to be checked (otherwise the answer streams through).
    pub(crate) fn any(&self) -> bool {
        self.response_filter.is_some() || self.scope.is_some() || self.relay.is_some()
    }
}

/// The last literal segments of GitLab routes that answer raw content
/// rather than JSON: a file (`…/files/{path}/raw`, `…/blobs/{sha}/raw`,
/// `…/snippets/{id}/raw`), an archive, job artifacts or a job log, a diff.
const RAW_CONTENT_SEGMENTS: &[&str] = &["raw", "archive", "artifacts", "trace", "raw_diffs"];

/// Whether `template` names a route that answers raw content: such an answer
/// is about the object the request named (already checked) and passes
/// unread. On every other route a filtered answer must be JSON.
pub(crate) fn serves_raw_content(template: &str) -> bool {
    template
        .rsplit('/')
        .find(|segment| !segment.is_empty() && !segment.starts_with('{'))
        .is_some_and(|segment| RAW_CONTENT_SEGMENTS.contains(&segment))
}

/// Relays GitLab's answer once `checks` hold: list items that fail the
/// rule's `response_filter` or lie outside the client's scope are removed;
/// an object outside the scope is answered as GitLab answers for an object
/// the caller cannot see. Totals that would count removed items are dropped;
/// pagination links stay. An answer that should be checked but cannot be is
/// refused (fail closed). Removed items are counted in `hidden` (also when
/// the answer is then refused), scope resolutions in `lookups`.
pub(super) async fn filter_answer(
    response: Response<BoundedBody>,
    checks: &AnswerChecks<'_>,
    hidden: &mut usize,
    lookups: &mut LookupCounts,
) -> Result<Response<ProxyBody>, ProxyError> {
    let (mut parts, body) = response.into_parts();
    // Counts and the last page would tell how many items are hidden, and
    // validators computed over the whole answer would tell when hidden items
    // exist or change, on every answer (HEAD included). Also when this page
    // hides nothing: totals count every page, and this one hiding nothing
    // says nothing of the others (README, "Lists without totals").
    parts.headers.remove("x-total");
    parts.headers.remove("x-total-pages");
    parts.headers.remove(header::ETAG);
    parts.headers.remove(header::LAST_MODIFIED);
    drop_last_link(&mut parts.headers);
    if checks.head {
        // The length of the GET it stands for: the unfiltered size.
        parts.headers.remove(header::CONTENT_LENGTH);
    }
    if parts.status.is_redirection()
        && let Some(guard) = checks.scope
        && let Some(location) = parts
            .headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
    {
        match guard.redirect_allowed(location, lookups).await {
            Ok(Some((kind, false))) => {
                return Err(ProxyError::OutOfScope { kind, exists: true });
            }
            Ok(Some((_, true))) => {}
            // A redirect that names no project or group cannot be checked.
            Ok(None) => return Err(ProxyError::Unfilterable),
            Err(_) => return Err(ProxyError::ScopeUnavailable),
        }
    }
    // An answer that does not say what it is gets checked as JSON (and is
    // refused if it is not): only a declared non-JSON type passes unread.
    let json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.to_ascii_lowercase().starts_with("application/json"));
    // Errors are GitLab's own words; raw content (a file, say) is about the
    // object the request named, already checked, and only scope lets it
    // through (a `response_filter` reads JSON). Anything else that is not
    // JSON could hold what the filter would have removed: refused.
    if !parts.status.is_success()
        || (!json && checks.raw_content && checks.response_filter.is_none())
    {
        let body = body.map_err(BoxError::from).boxed_unsync();
        return Ok(Response::from_parts(parts, body));
    }
    if !json {
        return Err(ProxyError::Unfilterable);
    }
    let bytes = http_body_util::Limited::new(body, checks.max_bytes)
        .collect()
        .await
        .map_err(|error| {
            if error.is::<http_body_util::LengthLimitError>() {
                ProxyError::TooLargeToFilter(checks.max_bytes)
            } else {
                ProxyError::Upstream(crate::upstream::UpstreamError::Truncated)
            }
        })?
        .to_bytes();
    if bytes.is_empty() {
        return Ok(Response::from_parts(parts, super::full_body(bytes)));
    }
    if checks.relay.is_none()
        && checks.response_filter.is_none()
        && let Some(scope) = checks.scope
    {
        // Scope alone: judged from the tie fields, without building the answer.
        match scope.filter_shallow(&bytes, lookups).await {
            Ok(Shallow::Unchanged) => return Ok(relay(parts, bytes)),
            Ok(Shallow::Kept { body, hidden: n }) => {
                *hidden += n;
                return Ok(relay(parts, Bytes::from(body)));
            }
            Ok(Shallow::OutOfScope(kind)) => {
                return Err(ProxyError::OutOfScope { kind, exists: true });
            }
            Ok(Shallow::FullParse) => {}
            Err(_) => return Err(ProxyError::ScopeUnavailable),
        }
    }
    let mut value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| ProxyError::Unfilterable)?;
    let mut removed = 0;
    let mut changed = false;
    if let Some(relay) = checks.relay {
        // Before the response filter: it judges the URL the client registered.
        let (unsealed, foreign) = relay
            .unseal_answer(&mut value)
            .map_err(|_| ProxyError::NotOwned("hook".into()))?;
        changed = unsealed;
        removed += foreign;
        *hidden += foreign;
    }
    if let Some(condition) = checks.response_filter {
        // A successful answer that is not a JSON list cannot be filtered:
        // refuse it rather than relay it unchecked.
        let serde_json::Value::Array(items) = &mut value else {
            return Err(ProxyError::Unfilterable);
        };
        let before = items.len();
        items.retain(|item| condition.matches(item));
        removed += before - items.len();
        *hidden += before - items.len();
    }
    if let Some(scope) = checks.scope {
        match scope.filter_answer(value, lookups).await {
            Ok(Filtered::Visible {
                value: kept,
                hidden: out_of_scope,
            }) => {
                removed += out_of_scope;
                *hidden += out_of_scope;
                value = kept;
            }
            Ok(Filtered::OutOfScope(kind)) => {
                return Err(ProxyError::OutOfScope { kind, exists: true });
            }
            Err(_) => return Err(ProxyError::ScopeUnavailable),
        }
    }
    let relayed = if removed == 0 && !changed {
        bytes
    } else {
        Bytes::from(value.to_string())
    };
    Ok(relay(parts, relayed))
}

/// The checked answer `body` with GitLab's head `parts`, its length set.
fn relay(mut parts: http::response::Parts, body: Bytes) -> Response<ProxyBody> {
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    parts.headers.remove(header::CONTENT_ENCODING);
    Response::from_parts(parts, super::full_body(body))
}

/// Removes `rel="last"` entries from `Link` (the last page number counts the hidden items).
fn drop_last_link(headers: &mut http::HeaderMap) {
    let kept: Vec<String> = headers
        .get_all(header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(", "))
        .filter(|entry| !entry.contains("rel=\"last\""))
        .map(str::to_owned)
        .collect();
    headers.remove(header::LINK);
    if !kept.is_empty()
        && let Ok(value) = HeaderValue::from_str(&kept.join(", "))
    {
        headers.insert(header::LINK, value);
    }
}

#[cfg(test)]
mod tests {
    use super::serves_raw_content;

    #[test]
    fn raw_content_routes_are_named_by_their_last_literal_segment() {
        for template in [
            "/projects/{project}/repository/files/{file_path}/raw",
            "/projects/{project}/repository/blobs/{sha}/raw",
            "/projects/{project}/repository/archive",
            "/projects/{project}/jobs/{job_id}/trace",
            "/projects/{project}/jobs/{job_id}/artifacts",
        ] {
            assert!(serves_raw_content(template), "{template}");
        }
        for template in [
            "/projects/{project}",
            "/groups/{group}/projects",
            "/projects/{project}/repository/files/{file_path}",
            "/projects/{project}/merge_requests/{iid}",
        ] {
            assert!(!serves_raw_content(template), "{template}");
        }
    }
}
