//! Scope on the way in: every project or group a request names (a template
//! param bound to `{project}` or `{group}`) is resolved to GitLab's canonical
//! object and checked against the client's scope before anything is
//! forwarded.

use super::error::ProxyError;
use crate::canonical::RequestHead;
use crate::policy::Permit;
use crate::scope::filter::LookupCounts;
use crate::scope::resolve::{Freshness, Lookup, Resolver, Source};
use crate::scope::{Kind, Scope};
use crate::upstream::Upstream;

/// Refuses the request unless every project and group it names is in
/// `scope`: 404 exactly as GitLab answers for an object the caller cannot
/// see, or 503 when GitLab cannot say (fail closed). Writes are checked on
/// a fresh resolution, so a transfer out of scope is never missed by one.
pub async fn check_request(
    scope: &Scope,
    resolver: &Resolver,
    upstream: &Upstream,
    permit: &Permit,
    head: &RequestHead,
    counts: &mut LookupCounts,
) -> Result<(), ProxyError> {
    let freshness = if head.method().is_read() {
        Freshness::Cached
    } else {
        Freshness::Fresh
    };
    for binding in permit.bindings() {
        let Some(kind) = Kind::from_param(&binding.name) else {
            continue;
        };
        let (lookup, source) = resolver
            .resolve(upstream, kind, &binding.value, freshness)
            .await
            .map_err(|error| {
                tracing::warn!(%kind, %error, "scope check failed");
                ProxyError::ScopeUnavailable
            })?;
        match source {
            Source::Hit => counts.hits += 1,
            Source::Miss => counts.misses += 1,
        }
        match lookup {
            Lookup::Found(object) if scope.allows(kind, &object.path) => {}
            Lookup::Found(_) => return Err(ProxyError::OutOfScope { kind, exists: true }),
            Lookup::NotFound => {
                return Err(ProxyError::OutOfScope {
                    kind,
                    exists: false,
                });
            }
        }
    }
    Ok(())
}
