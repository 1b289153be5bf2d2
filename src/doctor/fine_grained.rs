//! A fine-grained personal access token, as `doctor` reads it.
//!
//! GitLab (beta in 18.10, generally available in 19.2) describes such a
//! token in `GET /personal_access_tokens/self` with `granular: true`,
//! `scopes: ["granular"]` and `granular_scopes`: a list of `{access,
//! permissions, project_id, group_id}`, where `access` is the boundary
//! (`user`, `instance`, `all_memberships`, `personal_projects`,
//! `selected_memberships` with one project or group) and `permissions` the
//! assignable permissions granted there (`read_job`). Classic scopes mean
//! nothing for it, so `doctor` lists its boundaries and compares their
//! permissions with what each policy needs according to GitLab's table
//! (`crate::review::permissions`). That table names a permission
//! "Resource: Action"; GitLab files an assignable permission under
//! `<resource>/<action>` and names it `<action>_<resource>` (`run_job`), so
//! the comparison is by that name, and says so: a mismatch is a warning,
//! never a failure, and an endpoint the table does not list is reported as
//! unknown, not guessed.

use std::collections::BTreeSet;

use serde_json::Value;

use super::Report;
use crate::review::permissions::{Permission, Report as Needs};

/// Whether GitLab describes the token as a fine-grained one.
pub(super) fn is_fine_grained(token: &Value) -> bool {
    token["granular"] == true
        || token["granular_scopes"]
            .as_array()
            .is_some_and(|scopes| !scopes.is_empty())
}

/// One boundary of the token and the permissions granted at it.
#[derive(Debug, PartialEq, Eq)]
struct Grant {
    /// GitLab's `access`: `user`, `instance`, `all_memberships`, …
    access: String,
    /// `project 12`, `group 5` for `selected_memberships`.
    target: Option<String>,
    permissions: BTreeSet<String>,
}

impl Grant {
    fn describe(&self) -> String {
        let target = self
            .target
            .as_ref()
            .map(|t| format!(" ({t})"))
            .unwrap_or_default();
        let permissions: Vec<&str> = self.permissions.iter().map(String::as_str).collect();
        format!(
            "{}{target}: {}",
            self.access,
            if permissions.is_empty() {
                "no permission".to_owned()
            } else {
                permissions.join(", ")
            }
        )
    }

    /// Whether a permission needed at `access` (the table's `Project`,
    /// `Group`, `User` or `Instance`) can be granted at this boundary.
    fn serves(&self, access: &str) -> bool {
        matches!(
            (access, self.access.as_str()),
            (
                "Project",
                "all_memberships" | "selected_memberships" | "personal_projects"
            ) | ("Group", "all_memberships" | "selected_memberships")
                | ("User", "user")
                | ("Instance", "instance")
        )
    }
}

/// The lines `doctor` prints for a fine-grained token: its boundaries, then
/// per policy what GitLab's table says it needs and whether the token has it.
pub(super) fn check(token: &Value, needs: &[Needs], report: &mut Report) {
    let Some(grants) = grants(token) else {
        report.warn(
            "fine-grained permissions: GitLab did not list them in GET /personal_access_tokens/self",
            "glgate cannot compare them with the policies: compare the token's page in GitLab \
             with `glgate policy permissions POLICY`",
        );
        return;
    };
    if grants.is_empty() {
        report.fail(
            "fine-grained permissions: the token has no boundary and no permission",
            "add the permissions `glgate policy permissions POLICY` lists, or create a new token",
        );
        return;
    }
    for grant in &grants {
        report.pass(format!("fine-grained boundary {}", grant.describe()));
    }
    for policy in needs {
        policy_coverage(policy, &grants, report);
    }
}

/// The token's boundaries, or `None` when GitLab did not list them.
fn grants(token: &Value) -> Option<Vec<Grant>> {
    let scopes = token["granular_scopes"].as_array()?;
    Some(
        scopes
            .iter()
            .map(|scope| Grant {
                access: scope["access"].as_str().unwrap_or("?").to_owned(),
                target: match (scope["project_id"].as_u64(), scope["group_id"].as_u64()) {
                    (Some(project), _) => Some(format!("project {project}")),
                    (None, Some(group)) => Some(format!("group {group}")),
                    (None, None) => None,
                },
                permissions: scope["permissions"]
                    .as_array()
                    .map(|p| {
                        p.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect(),
    )
}

/// GitLab's name for the assignable permission behind "Resource: Action":
/// `Merge Request: Read` is `read_merge_request`.
fn permission_name(permission: &Permission) -> String {
    format!(
        "{}_{}",
        permission.action.to_lowercase().replace(' ', "_"),
        permission.resource.to_lowercase().replace(' ', "_")
    )
}

fn policy_coverage(policy: &Needs, grants: &[Grant], report: &mut Report) {
    let needed = policy.permissions();
    let missing: Vec<String> = needed
        .iter()
        .filter(|permission| {
            let name = permission_name(permission);
            !grants
                .iter()
                .any(|g| g.serves(permission.access) && g.permissions.contains(&name))
        })
        .map(|permission| format!("{permission} as {}", permission_name(permission)))
        .collect();
    if missing.is_empty() {
        report.pass(format!(
            "policy {}: the token holds each of the {} fine-grained permission(s) GitLab's table names for it",
            policy.policy,
            needed.len()
        ));
    } else {
        report.warn(
            format!(
                "policy {}: not found in the token: {}",
                policy.policy,
                missing.join("; ")
            ),
            "requests the policy allows will be refused by GitLab without them: add them at a \
             boundary that reaches the groups and projects the clients use\n(glgate compares \
             GitLab's `<action>_<resource>` names; if the token's page in GitLab shows them \
             granted, trust the page)",
        );
    }
    let mut unknown: Vec<String> = policy
        .unknown()
        .map(|e| format!("{} {}", e.method, e.template))
        .collect();
    unknown.dedup();
    let uncertain: Vec<String> = policy
        .uncertain()
        .map(|e| format!("{} {}", e.method, e.template))
        .collect();
    if !unknown.is_empty() {
        report.warn(
            format!(
                "policy {}: cannot tell which permission {} endpoint(s) need (not in GitLab's table): {}",
                policy.policy,
                unknown.len(),
                unknown.join(", ")
            ),
            "check them on GitLab's \"Fine-grained permissions for REST API\" page before relying on the token",
        );
    }
    if !uncertain.is_empty() {
        report.warn(
            format!(
                "policy {}: the permission of {} endpoint(s) is uncertain (matched through a parameter): {}",
                policy.policy,
                uncertain.len(),
                uncertain.join(", ")
            ),
            "`glgate policy permissions POLICY` shows which rows matched",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Mark;

    fn echoes() -> Needs {
        let policy = crate::policy::Policy::compile(
            std::path::Path::new("p.yaml"),
            "version: 1\nname: p\nrules:\n  - id: mr\n    methods: [GET]\n    paths: ['/projects/{project}/merge_requests', '/user']\n  - id: labels\n    methods: [POST]\n    paths: ['/groups/{group}/labels']\n    params: {name: {type: any, max_length: 50}}\n  - id: odd\n    methods: [GET]\n    paths: ['/projects/{project}/not_in_the_table']\n",
        )
        .unwrap();
        crate::review::permissions::report(&policy)
    }

    fn lines(token: &Value) -> Vec<(Mark, String)> {
        let mut report = Report::default();
        check(token, &[echoes()], &mut report);
        report
            .checks
            .into_iter()
            .map(|c| (c.mark, c.line))
            .collect()
    }

    #[test]
    fn names_follow_gitlabs_action_resource_files() {
        let permission = Permission {
            resource: "Merge Request",
            action: "Read",
            access: "Project",
        };
        assert_eq!(permission_name(&permission), "read_merge_request");
    }

    #[test]
    fn a_token_holding_every_documented_permission_passes_and_unknowns_are_named() {
        let token = serde_json::json!({
            "granular": true,
            "scopes": ["granular"],
            "granular_scopes": [
                {"access": "all_memberships", "permissions": ["read_merge_request", "create_label"], "project_id": null, "group_id": null},
                {"access": "user", "permissions": ["read_user"], "project_id": null, "group_id": null},
            ]
        });
        assert!(is_fine_grained(&token));
        let lines = lines(&token);
        assert_eq!(
            lines[0],
            (
                Mark::Pass,
                "fine-grained boundary all_memberships: create_label, read_merge_request".into()
            )
        );
        assert_eq!(lines[1].1, "fine-grained boundary user: read_user");
        assert_eq!(
            lines[2],
            (
                Mark::Pass,
                "policy p: the token holds each of the 3 fine-grained permission(s) GitLab's table names for it".into()
            )
        );
        assert_eq!(lines[3].0, Mark::Warn);
        assert!(
            lines[3].1.contains("cannot tell")
                && lines[3]
                    .1
                    .contains("GET /projects/{project}/not_in_the_table"),
            "{lines:?}"
        );
    }

    #[test]
    fn a_permission_at_the_wrong_boundary_or_absent_is_a_warning_naming_it() {
        let token = serde_json::json!({
            "granular": true,
            "granular_scopes": [
                {"access": "selected_memberships", "permissions": ["read_merge_request"], "project_id": 12, "group_id": null},
                {"access": "user", "permissions": ["create_label"], "project_id": null, "group_id": null},
            ]
        });
        let lines = lines(&token);
        assert_eq!(
            lines[0].1,
            "fine-grained boundary selected_memberships (project 12): read_merge_request"
        );
        let missing = &lines[2];
        assert_eq!(missing.0, Mark::Warn);
        assert!(
            missing.1.contains("Label: Create (Group) as create_label")
                && missing.1.contains("User: Read (User) as read_user")
                && !missing.1.contains("Merge Request"),
            "{missing:?}"
        );
        assert!(lines.iter().all(|(mark, _)| *mark != Mark::Fail));
    }

    #[test]
    fn a_classic_token_is_not_fine_grained_and_unlisted_permissions_are_not_guessed() {
        assert!(!is_fine_grained(
            &serde_json::json!({"granular": false, "scopes": ["api"]})
        ));
        let lines = lines(&serde_json::json!({"granular": true, "scopes": ["granular"]}));
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].0, Mark::Warn);
        assert!(lines[0].1.contains("did not list them"), "{lines:?}");
    }
}
