//! Conditions on GitLab's own objects: `owned_if` checks the existing
//! resource before a request touches it; `response_filter` removes list items
//! the client may not see. Both fail closed.

use bytes::Bytes;
use http::{HeaderValue, Response, header};
use http_body_util::BodyExt;

use super::error::ProxyError;
use super::{BoxError, ProxyBody};
use crate::canonical::RequestHead;
use crate::policy::{FieldMatch, Permit};
use crate::scope::filter::{Filtered, Judge, LookupCounts};
use crate::upstream::{BoundedBody, Upstream};

/// Reads the resource at the request's path with glgate's token and checks
/// `condition` on it. A resource that cannot be read is refused (503).
pub async fn check_owned(
    upstream: &Upstream,
    permit: &Permit,
    head: &RequestHead,
    condition: &FieldMatch,
) -> Result<(), ProxyError> {
    // The path the policy allowed, without its query: glgate's own read.
    let read = upstream
        .read_own(head.path())
        .await
        .map_err(|_| ProxyError::OwnershipUnknown)?;
    match read.status.as_u16() {
        200 => {
            let object: serde_json::Value =
                serde_json::from_slice(&read.body).map_err(|_| ProxyError::OwnershipUnknown)?;
            if condition.matches(&object) {
                Ok(())
            } else {
                Err(ProxyError::NotOwned(resource_noun(permit.template())))
            }
        }
        404 => Err(ProxyError::ResourceNotFound),
        _ => Err(ProxyError::OwnershipUnknown),
    }
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

/// "hook" for `/projects/{project}/hooks/{hook_id}`: the collection's name, singular.
fn resource_noun(template: &str) -> String {
    let collection = template
        .split('/')
        .rev()
        .find(|s| !s.is_empty() && !s.starts_with('{'))
        .unwrap_or("resource");
    collection
        .strip_suffix('s')
        .unwrap_or(collection)
        .replace('_', " ")
}

/// What to check in GitLab's answer before relaying it.
pub struct Inspection<'a> {
    /// The rule's `response_filter`: list items must meet it.
    pub hook_filter: Option<&'a FieldMatch>,
    /// The client's scope, when it has one.
    pub scope: Option<Judge<'a>>,
    /// Largest answer read whole (`limits.max_filtered_response_bytes`).
    pub max_bytes: usize,
}

impl Inspection<'_> {
    /// Whether anything is to be checked (otherwise the answer streams through).
    pub fn is_needed(&self) -> bool {
        self.hook_filter.is_some() || self.scope.is_some()
    }
}

/// What inspecting an answer removed.
#[derive(Debug, Default)]
pub struct Inspected {
    /// List items (or nested entries) removed.
    pub hidden: usize,
    /// Scope resolutions made on the way.
    pub lookups: LookupCounts,
}

/// Relays GitLab's answer once `inspection` holds: list items that fail the
/// rule's `response_filter` or lie outside the client's scope are removed;
/// an object outside the scope is answered as GitLab answers for an object
/// the caller cannot see. Totals that would count removed items are dropped;
/// pagination links stay. An answer that should be checked but cannot be is
/// refused (fail closed).
pub async fn inspect(
    response: Response<BoundedBody>,
    inspection: &Inspection<'_>,
    inspected: &mut Inspected,
) -> Result<Response<ProxyBody>, ProxyError> {
    let (mut parts, body) = response.into_parts();
    // Counts and the last page would tell how many items are hidden, on
    // every answer (HEAD included).
    parts.headers.remove("x-total");
    parts.headers.remove("x-total-pages");
    drop_last_link(&mut parts.headers);
    if parts.status.is_redirection()
        && let Some(judge) = &inspection.scope
        && let Some(location) = parts
            .headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
    {
        match judge
            .redirect_allowed(location, &mut inspected.lookups)
            .await
        {
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
    // Errors are GitLab's own words; a non-JSON answer (a raw file, say) is
    // about the object the request named, already checked. A hook list must
    // be JSON, so only scope lets such answers through.
    if !parts.status.is_success() || (!json && inspection.hook_filter.is_none()) {
        let body = body.map_err(BoxError::from).boxed_unsync();
        return Ok(Response::from_parts(parts, body));
    }
    let bytes = http_body_util::Limited::new(body, inspection.max_bytes)
        .collect()
        .await
        .map_err(|error| {
            if error.is::<http_body_util::LengthLimitError>() {
                ProxyError::TooLargeToFilter(inspection.max_bytes)
            } else {
                ProxyError::Upstream(crate::upstream::UpstreamError::Truncated)
            }
        })?
        .to_bytes();
    if bytes.is_empty() {
        return Ok(Response::from_parts(parts, super::full_body(bytes)));
    }
    let mut value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| ProxyError::Unfilterable)?;
    if let Some(condition) = inspection.hook_filter {
        // A successful answer that is not a JSON list cannot be filtered:
        // refuse it rather than relay it unchecked.
        let serde_json::Value::Array(items) = &mut value else {
            return Err(ProxyError::Unfilterable);
        };
        let before = items.len();
        items.retain(|item| condition.matches(item));
        inspected.hidden += before - items.len();
    }
    if let Some(judge) = &inspection.scope {
        match judge.filter(value, &mut inspected.lookups).await {
            Ok(Filtered::Visible {
                value: kept,
                hidden,
            }) => {
                inspected.hidden += hidden;
                value = kept;
            }
            Ok(Filtered::OutOfScope(kind)) => {
                return Err(ProxyError::OutOfScope { kind, exists: true });
            }
            Err(_) => return Err(ProxyError::ScopeUnavailable),
        }
    }
    let relayed = if inspected.hidden == 0 {
        bytes
    } else {
        Bytes::from(value.to_string())
    };
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(relayed.len()));
    parts.headers.remove(header::CONTENT_ENCODING);
    Ok(Response::from_parts(parts, super::full_body(relayed)))
}

#[cfg(test)]
mod tests {
    use super::resource_noun;

    #[test]
    fn nouns() {
        assert_eq!(resource_noun("/projects/{project}/hooks/{hook_id}"), "hook");
        assert_eq!(resource_noun("/groups/{group}/labels/{label_id}"), "label");
        assert_eq!(resource_noun("/{id}"), "resource");
    }
}
