//! `owned_if`: a rule's condition on the existing GitLab object a request
//! would touch, checked by reading it with glgate's own token before the
//! request is forwarded. Fails closed: an object that cannot be read is
//! refused.

use super::error::ProxyError;
use crate::canonical::RequestHead;
use crate::policy::{FieldMatch, Permit};
use crate::upstream::Upstream;

/// Reads the resource at the request's path with glgate's token and checks
/// `condition` on it. A resource that cannot be read is refused (503).
pub(super) async fn check_owned(
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
