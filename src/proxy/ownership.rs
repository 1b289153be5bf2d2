//! Conditions on the existing GitLab object a request would touch, checked
//! by reading it once with glgate's own token before the request is
//! forwarded: `owned_if` (the object must be the client's own) and
//! `changes_only` (a set-valued field such as a merge request's `labels` may
//! change only by items matching a pattern). Fails closed: an object that
//! cannot be read is refused.

use super::error::ProxyError;
use crate::canonical::{Param, ParamValue, RequestHead};
use crate::policy::Permit;
use crate::upstream::Upstream;
use crate::webhooks::relay::{RelayView, Seen};

/// Reads the resource at the request's path with glgate's token when the
/// rule has `owned_if` or `changes_only`, and checks them on it. A resource
/// that cannot be read is refused (503); one that does not exist, 404. For a
/// client whose hooks are relayed (`relay`), a hook is judged as the client
/// sees it: its own relay hook by the URL it registered, another client's
/// never its own. `read_anyway`: read (and check) even without those
/// conditions. Returns the resource as GitLab gave it, when it was read.
pub(crate) async fn check_existing(
    upstream: &Upstream,
    permit: &Permit,
    head: &RequestHead,
    body: &[Param],
    relay: Option<&RelayView<'_>>,
    read_anyway: bool,
) -> Result<Option<serde_json::Value>, ProxyError> {
    let change = permit.changes_only().and_then(|condition| {
        head.query()
            .iter()
            .chain(body)
            .find(|param| param.name == condition.field())
            .map(|param| (condition, param))
    });
    if permit.owned_if().is_none() && change.is_none() && !read_anyway {
        return Ok(None);
    }
    let gitlab_object = read_existing(upstream, head).await?;
    let mut object = gitlab_object.clone();
    if let Some(relay) = relay
        && relay.unseal_hook(&mut object) == Seen::Foreign
    {
        return Err(ProxyError::NotOwned(resource_noun(permit.template())));
    }
    if let Some(condition) = permit.owned_if()
        && !condition.matches(&object)
    {
        return Err(ProxyError::NotOwned(resource_noun(permit.template())));
    }
    if let Some((condition, param)) = change {
        let values: &[String] = match &param.value {
            ParamValue::Scalar(value) => std::slice::from_ref(value),
            ParamValue::List(values) => values,
            ParamValue::Null => &[],
        };
        let outside = condition.disallowed_changes(&object, values);
        if !outside.is_empty() {
            return Err(ProxyError::ChangeNotAllowed {
                field: condition.field().to_owned(),
                items: outside,
            });
        }
    }
    Ok(Some(gitlab_object))
}

/// The resource at the request's path (without its query), read with
/// glgate's own token: 404 if it does not exist, 503 if it cannot be read.
pub(crate) async fn read_existing(
    upstream: &Upstream,
    head: &RequestHead,
) -> Result<serde_json::Value, ProxyError> {
    let read = upstream
        .read_own(head.path())
        .await
        .map_err(|_| ProxyError::OwnershipUnknown)?;
    match read.status.as_u16() {
        200 => serde_json::from_slice(&read.body).map_err(|_| ProxyError::OwnershipUnknown),
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
