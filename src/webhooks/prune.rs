//! `glgate scope prune-hooks`: the relay hooks that lie outside their
//! client's scope, found through GitLab with glgate's own token.
//!
//! The relay already drops every event of an object outside the scope; a
//! hook left behind only costs GitLab a delivery. Pruning removes them so
//! the hook list says what the scope says. Only relay hooks are considered
//! (their URL opens with the webhook key and names the client): hooks of
//! other integrations are never listed or touched.

use serde_json::Value;

use super::seal::{self, Sealer};
use crate::config::ClientConfig;
use crate::scope::Kind;
use crate::upstream::{Upstream, UpstreamError};

/// Pages read per listing at most (100 items each).
const MAX_PAGES: u64 = 1000;

/// One relay hook found on a project or group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RelayHook {
    /// The client whose hook it is.
    pub(crate) client: String,
    /// Whether it is on a project or a group.
    pub(crate) owner_kind: Kind,
    /// The project's or group's full path.
    pub(crate) owner_path: String,
    /// The project's or group's id.
    pub(crate) owner_id: u64,
    /// The hook's id.
    pub(crate) hook_id: u64,
    /// The client's own URL, as it registered it.
    pub(crate) url: String,
    /// Whether the project or group is in the client's scope.
    pub(crate) in_scope: bool,
}

impl RelayHook {
    /// The API path of the hook.
    pub(crate) fn api_path(&self) -> String {
        format!(
            "/api/v4/{}/{}/hooks/{}",
            self.owner_kind.collection(),
            self.owner_id,
            self.hook_id
        )
    }
}

/// Why the hooks could not be listed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PruneError {
    /// GitLab could not be asked.
    #[error("GitLab could not be asked: {0}")]
    Upstream(#[from] UpstreamError),
    /// GitLab answered with an error.
    #[error("GitLab answered {status} to {target}")]
    Status {
        /// The status.
        status: u16,
        /// What was asked.
        target: String,
    },
    /// GitLab's answer was not the JSON expected.
    #[error("GitLab's answer to {0} is not the list expected")]
    Unexpected(String),
}

/// Every relay hook of `clients` on the projects and groups glgate's token
/// maintains, with whether each is in its client's scope.
pub(crate) async fn relay_hooks(
    upstream: &Upstream,
    sealer: &Sealer,
    clients: &[ClientConfig],
) -> Result<Vec<RelayHook>, PruneError> {
    let mut found = Vec::new();
    for (kind, listing, path_key) in [
        (
            Kind::Group,
            "/api/v4/groups?min_access_level=50",
            "full_path",
        ),
        (
            Kind::Project,
            "/api/v4/projects?min_access_level=40&simple=true",
            "path_with_namespace",
        ),
    ] {
        for owner in list_all(upstream, listing).await? {
            let (Some(owner_id), Some(owner_path)) = (
                owner.get("id").and_then(Value::as_u64),
                owner.get(path_key).and_then(Value::as_str),
            ) else {
                continue;
            };
            let hooks = format!("/api/v4/{}/{owner_id}/hooks", kind.collection());
            for hook in list_all(upstream, &hooks).await? {
                let (Some(hook_id), Some(url)) = (
                    hook.get("id").and_then(Value::as_u64),
                    hook.get("url").and_then(Value::as_str),
                ) else {
                    continue;
                };
                let Some(target) =
                    seal::sealed_part_anywhere(url).and_then(|sealed| sealer.open(sealed).ok())
                else {
                    continue;
                };
                let Some(client) = clients.iter().find(|c| *c.name == *target.client) else {
                    continue;
                };
                let in_scope = super::receive::in_scope(client, kind, owner_path);
                found.push(RelayHook {
                    client: target.client.clone(),
                    owner_kind: kind,
                    owner_path: owner_path.to_owned(),
                    owner_id,
                    hook_id,
                    url: target.url,
                    in_scope,
                });
            }
        }
    }
    Ok(found)
}

/// Every item of a paginated GitLab list.
async fn list_all(upstream: &Upstream, target: &str) -> Result<Vec<Value>, PruneError> {
    let separator = if target.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut page = 1;
    while page <= MAX_PAGES {
        let asked = format!("{target}{separator}per_page=100&page={page}");
        let read = upstream.read_own(&asked).await?;
        if !read.status.is_success() {
            return Err(PruneError::Status {
                status: read.status.as_u16(),
                target: target.to_owned(),
            });
        }
        let Ok(Value::Array(batch)) = serde_json::from_slice::<Value>(&read.body) else {
            return Err(PruneError::Unexpected(target.to_owned()));
        };
        items.extend(batch);
        match read.next_page {
            Some(next) if next > page => page = next,
            _ => break,
        }
    }
    Ok(items)
}

/// Deletes `hook` at GitLab.
pub(crate) async fn delete(upstream: &Upstream, hook: &RelayHook) -> Result<(), PruneError> {
    let target = hook.api_path();
    let status = upstream.delete_own(&target).await?;
    if status.is_success() || status == http::StatusCode::NOT_FOUND {
        Ok(())
    } else {
        Err(PruneError::Status {
            status: status.as_u16(),
            target,
        })
    }
}
