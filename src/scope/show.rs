//! `glgate scope show`: what a client's scope reaches, read from GitLab with
//! glgate's own token and decided by the same [`Scope::allows`] the proxy
//! uses, so the customer reviews exactly what the third party will see.

use std::fmt::Write as _;

use serde_json::Value;

use super::resolve::{Resolved, object_target, parse_object};
use super::{FullPath, Kind, Scope};
use crate::canonical::API_PREFIX;
use crate::canonical::encode_component;
use crate::upstream::{Upstream, UpstreamError};

/// Most pages read from one list (100 items each).
const MAX_PAGES: u64 = 1000;

/// One project or group and whether the scope lets the client reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The object.
    pub object: Resolved,
    /// Whether the client may reach it.
    pub in_scope: bool,
}

/// What a scope reaches, as GitLab sees it now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Reach {
    /// Every group and project found under the scope's entries, sorted by kind then path.
    pub entries: Vec<Entry>,
    /// Scope entries GitLab does not know (or the token cannot see), with the list they are in.
    pub missing: Vec<(&'static str, FullPath, Missing)>,
}

/// Why a scope entry reaches nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Missing {
    /// GitLab answers 404: no such object, or the token cannot see it.
    Unknown,
    /// GitLab redirects: the entry names an old path (the `Location` given).
    Moved(String),
}

impl Reach {
    /// Counts of (groups in scope, projects in scope, groups excluded, projects excluded).
    pub(crate) fn counts(&self) -> (usize, usize, usize, usize) {
        let count = |kind: Kind, in_scope: bool| {
            self.entries
                .iter()
                .filter(|e| e.object.kind == kind && e.in_scope == in_scope)
                .count()
        };
        (
            count(Kind::Group, true),
            count(Kind::Project, true),
            count(Kind::Group, false),
            count(Kind::Project, false),
        )
    }
}

/// Why the reach could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ShowError {
    /// GitLab could not be asked.
    #[error("{0}")]
    Upstream(#[from] UpstreamError),
    /// GitLab answered something else than expected.
    #[error("GitLab answered {status} to {target}")]
    Status {
        /// The status.
        status: u16,
        /// What was asked.
        target: String,
    },
    /// GitLab's answer was not the JSON expected.
    #[error("GitLab's answer to {0} is not the JSON expected")]
    Malformed(String),
}

/// Reads from GitLab every group and project `scope` names or includes.
pub(crate) async fn reach(upstream: &Upstream, scope: &Scope) -> Result<Reach, ShowError> {
    let mut found: Vec<Resolved> = Vec::new();
    let mut reach = Reach::default();
    for group in scope.groups() {
        match object(upstream, Kind::Group, group).await? {
            Ok(resolved) => {
                let id = resolved.id;
                found.push(resolved);
                let subgroups = format!("{API_PREFIX}/groups/{id}/descendant_groups?per_page=100");
                found.extend(list(upstream, Kind::Group, &subgroups).await?);
                let projects = format!(
                    "{API_PREFIX}/groups/{id}/projects?include_subgroups=true&with_shared=false&simple=true&per_page=100"
                );
                found.extend(list(upstream, Kind::Project, &projects).await?);
            }
            Err(missing) => reach.missing.push(("groups", group.clone(), missing)),
        }
    }
    for (list_name, kind, paths) in [
        ("projects", Kind::Project, scope.projects()),
        ("exclude", Kind::Group, scope.exclude()),
    ] {
        for path in paths {
            let mut resolved = object(upstream, kind, path).await?;
            if resolved == Err(Missing::Unknown) && list_name == "exclude" {
                // An exclusion may name a project as well as a group.
                resolved = object(upstream, Kind::Project, path).await?;
            }
            match resolved {
                Ok(object) => found.push(object),
                Err(missing) => reach.missing.push((list_name, path.clone(), missing)),
            }
        }
    }
    found.sort_by(|a, b| {
        (a.kind == Kind::Project, a.path.as_str()).cmp(&(b.kind == Kind::Project, b.path.as_str()))
    });
    found.dedup_by(|a, b| a.kind == b.kind && a.id == b.id);
    reach.entries = found
        .into_iter()
        .map(|object| Entry {
            in_scope: scope.allows(object.kind, &object.path),
            object,
        })
        .collect();
    Ok(reach)
}

/// Renders the reach for a terminal.
pub(crate) fn render(client: &str, scope: &Scope, reach: &Reach) -> String {
    let mut out = String::new();
    let join = |paths: &[FullPath]| {
        if paths.is_empty() {
            "-".to_owned()
        } else {
            paths
                .iter()
                .map(FullPath::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let _ = writeln!(out, "client {client}");
    let _ = writeln!(out, "  scope.groups:   {}", join(scope.groups()));
    let _ = writeln!(out, "  scope.projects: {}", join(scope.projects()));
    let _ = writeln!(out, "  scope.exclude:  {}", join(scope.exclude()));
    for (title, in_scope) in [("in scope", true), ("excluded", false)] {
        let entries: Vec<&Entry> = reach
            .entries
            .iter()
            .filter(|e| e.in_scope == in_scope)
            .collect();
        if entries.is_empty() && !in_scope {
            continue;
        }
        let _ = writeln!(out, "  {title}:");
        for entry in entries {
            let _ = writeln!(
                out,
                "    {:<8}{:<56} id {}",
                entry.object.kind.to_string(),
                entry.object.path.as_str(),
                entry.object.id
            );
        }
    }
    for (list, path, missing) in &reach.missing {
        let _ = match missing {
            Missing::Unknown => writeln!(
                out,
                "  ✗ scope.{list}: '{path}' is not known to GitLab, or the token cannot see it (check the spelling and the token's memberships)"
            ),
            Missing::Moved(location) => writeln!(
                out,
                "  ✗ scope.{list}: '{path}' is an old path (GitLab redirects to {location}); scope decides on current paths: write the new one"
            ),
        };
    }
    let (groups, projects, excluded_groups, excluded_projects) = reach.counts();
    let _ = writeln!(
        out,
        "  reach: {groups} group(s) and {projects} project(s) in scope; {excluded_groups} group(s) and {excluded_projects} project(s) excluded; {} entr(y/ies) not found",
        reach.missing.len()
    );
    out
}

/// One object by full path; `Err(Missing)` when GitLab answers 404 or
/// redirects (the entry names an old path, which scope never matches).
async fn object(
    upstream: &Upstream,
    kind: Kind,
    path: &FullPath,
) -> Result<Result<Resolved, Missing>, ShowError> {
    let target = object_target(kind, &encode_component(path.as_str()));
    let read = upstream.read_own(&target).await?;
    match read.status.as_u16() {
        200 => parse_object(kind, &read.body)
            .map(Ok)
            .map_err(|_| ShowError::Malformed(target)),
        404 => Ok(Err(Missing::Unknown)),
        301 | 302 | 307 | 308 => Ok(Err(Missing::Moved(read.location.unwrap_or_default()))),
        status => Err(ShowError::Status { status, target }),
    }
}

/// Every item of a paginated list, following `X-Next-Page`.
async fn list(upstream: &Upstream, kind: Kind, first: &str) -> Result<Vec<Resolved>, ShowError> {
    let mut items = Vec::new();
    let mut page = 1;
    loop {
        let target = format!("{first}&page={page}");
        let read = upstream.read_own(&target).await?;
        if read.status.as_u16() != 200 {
            return Err(ShowError::Status {
                status: read.status.as_u16(),
                target,
            });
        }
        let value: Value =
            serde_json::from_slice(&read.body).map_err(|_| ShowError::Malformed(target.clone()))?;
        let Value::Array(list) = value else {
            return Err(ShowError::Malformed(target));
        };
        for item in &list {
            items.push(resolved(kind, item).ok_or_else(|| ShowError::Malformed(target.clone()))?);
        }
        match read.next_page {
            Some(next) if next > page && next <= MAX_PAGES => page = next,
            _ => return Ok(items),
        }
    }
}

fn resolved(kind: Kind, value: &Value) -> Option<Resolved> {
    let field = match kind {
        Kind::Project => "path_with_namespace",
        Kind::Group | Kind::Namespace => "full_path",
    };
    Some(Resolved {
        kind,
        id: value.get("id")?.as_u64()?,
        path: FullPath::from_gitlab(value.get(field)?.as_str()?),
    })
}
