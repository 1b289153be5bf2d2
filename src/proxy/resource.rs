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
use crate::upstream::{BoundedBody, Upstream};

/// Reads the resource at the request's path with glgate's token and checks
/// `condition` on it. A resource that cannot be read is refused (503).
pub async fn check_owned(
    upstream: &Upstream,
    permit: &Permit,
    head: &RequestHead,
    condition: &FieldMatch,
) -> Result<(), ProxyError> {
    let (status, body) = upstream
        .read_resource(permit, head.path())
        .await
        .map_err(|_| ProxyError::OwnershipUnknown)?;
    match status.as_u16() {
        200 => {
            let object: serde_json::Value =
                serde_json::from_slice(&body).map_err(|_| ProxyError::OwnershipUnknown)?;
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

/// Relays only the items of a JSON list that meet `condition`. Totals that
/// would count the removed items are dropped; pagination links stay.
/// Anything that is not a successful JSON list is relayed as it is.
pub async fn filter_list(
    response: Response<BoundedBody>,
    condition: &FieldMatch,
) -> Result<Response<ProxyBody>, ProxyError> {
    let (mut parts, body) = response.into_parts();
    let bytes = body
        .collect()
        .await
        .map_err(|_| ProxyError::Upstream(crate::upstream::UpstreamError::Truncated))?
        .to_bytes();
    // Counts and the last page would tell how many items are hidden, on
    // every answer (HEAD included).
    parts.headers.remove("x-total");
    parts.headers.remove("x-total-pages");
    drop_last_link(&mut parts.headers);
    let filtered = if parts.status.is_success() && !bytes.is_empty() {
        match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(serde_json::Value::Array(items)) => {
                let kept: Vec<serde_json::Value> = items
                    .into_iter()
                    .filter(|item| condition.matches(item))
                    .collect();
                Bytes::from(serde_json::Value::Array(kept).to_string())
            }
            // A successful answer that is not a JSON list cannot be filtered:
            // refuse it rather than relay it unchecked.
            _ => {
                return Err(ProxyError::Upstream(
                    crate::upstream::UpstreamError::Truncated,
                ));
            }
        }
    } else {
        bytes
    };
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(filtered.len()));
    parts.headers.remove(header::CONTENT_ENCODING);
    let body = http_body_util::Full::new(filtered)
        .map_err(|never| -> BoxError { match never {} })
        .boxed_unsync();
    Ok(Response::from_parts(parts, body))
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
