//! `glgate policy permissions POLICY`: the narrowest GitLab token a policy
//! needs, so the credential itself is narrow (defence in depth, should
//! glgate ever be bypassed).
//!
//! Two answers. The classic personal access token scope: `read_user` when
//! every rule only reads `/user` or `/users`, `read_api` when every rule only
//! reads, `api` as soon as one rule writes. And, per rule, the fine-grained
//! permissions ("Resource: Action" at a Project, Group, User or Instance
//! boundary) of the table on GitLab's documentation page "Fine-grained
//! permissions for REST API" (generated from GitLab's route declarations;
//! generally available in GitLab 19.2). Only
//! rows copied from that table are in [`DOCUMENTED`]: an endpoint it does not
//! list is reported as unknown, never given a guessed name.
//!
//! Builds a report and renders it to a `String`; prints nothing.
//! (Writing to a `String` cannot fail, hence the `let _ = writeln!`.)

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::canonical::Method;
use crate::policy::{Policy, TemplateSegment};

/// A classic personal access token scope, narrowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ClassicScope {
    /// GET `/user` and `/users…` only.
    ReadUser,
    /// Every GET of the API.
    ReadApi,
    /// The whole API, writes included.
    Api,
}

impl ClassicScope {
    /// GitLab's name for the scope.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ClassicScope::ReadUser => "read_user",
            ClassicScope::ReadApi => "read_api",
            ClassicScope::Api => "api",
        }
    }
}

/// One fine-grained permission: `resource: action` at a boundary, as
/// GitLab's table names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Permission {
    /// e.g. `Merge Request`.
    pub(crate) resource: &'static str,
    /// e.g. `Read`.
    pub(crate) action: &'static str,
    /// `Project`, `Group`, `User` or `Instance`.
    pub(crate) access: &'static str,
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} ({})", self.resource, self.action, self.access)
    }
}

/// One row of GitLab's table: which permission a method and path need.
struct Documented {
    resource: &'static str,
    action: &'static str,
    access: &'static str,
    method: &'static str,
    /// As GitLab writes it, relative to `/api/v4`, params as `:name`.
    path: &'static str,
}

const fn row(
    resource: &'static str,
    action: &'static str,
    access: &'static str,
    method: &'static str,
    path: &'static str,
) -> Documented {
    Documented {
        resource,
        action,
        access,
        method,
        path,
    }
}

/// Rows of GitLab's "Fine-grained permissions for REST API" table, for the
/// parts of the API a glgate policy typically allows (identity, groups,
/// projects, members, labels, webhooks, merge requests, issues, repository
/// reads, pipelines). Copied, not derived: add rows from the same table
/// when a policy needs more, and never a name that is not in it.
// One row per line, as in GitLab's table, so a reviewer can compare them.
#[rustfmt::skip]
const DOCUMENTED: &[Documented] = &[
    // System Access: User
    row("User", "Read", "User", "GET", "/user"),
    row("User", "Read", "User", "GET", "/users/:id"),
    row("User", "Read", "Instance", "GET", "/users"),
    row("User", "Read", "Instance", "GET", "/users/:user_id/memberships"),
    // System Access: Personal Access Token
    row("Personal Access Token", "Read", "User", "GET", "/personal_access_tokens"),
    row("Personal Access Token", "Read", "User", "GET", "/personal_access_tokens/:id"),
    row("Personal Access Token", "Read", "User", "GET", "/personal_access_tokens/self"),
    row("Personal Access Token", "Read", "User", "GET", "/personal_access_tokens/self/associations"),
    row("Personal Access Token", "Rotate", "User", "POST", "/personal_access_tokens/self/rotate"),
    row("Personal Access Token", "Revoke", "User", "DELETE", "/personal_access_tokens/self"),
    // System Access: Member
    row("Member", "Read", "Project", "GET", "/projects/:id/members"),
    row("Member", "Read", "Project", "GET", "/projects/:id/members/:user_id"),
    row("Member", "Read", "Project", "GET", "/projects/:id/members/all"),
    row("Member", "Read", "Project", "GET", "/projects/:id/members/all/:user_id"),
    row("Member", "Read", "Group", "GET", "/groups/:id/members"),
    row("Member", "Read", "Group", "GET", "/groups/:id/members/:user_id"),
    row("Member", "Read", "Group", "GET", "/groups/:id/members/all"),
    row("Member", "Read", "Group", "GET", "/groups/:id/members/all/:user_id"),
    row("Member", "Create", "Project", "POST", "/projects/:id/members"),
    row("Member", "Create", "Group", "POST", "/groups/:id/members"),
    row("Member", "Update", "Project", "PUT", "/projects/:id/members/:user_id"),
    row("Member", "Update", "Group", "PUT", "/groups/:id/members/:user_id"),
    row("Member", "Delete", "Project", "DELETE", "/projects/:id/members/:user_id"),
    row("Member", "Delete", "Group", "DELETE", "/groups/:id/members/:user_id"),
    // System Access: Metadata
    row("Metadata", "Read", "Instance", "GET", "/metadata"),
    row("Metadata", "Read", "Instance", "GET", "/version"),
    // Groups: Group, Namespace
    row("Group", "Read", "Group", "GET", "/groups/:id"),
    row("Group", "Read", "Group", "GET", "/groups/:id/descendant_groups"),
    row("Group", "Read", "Group", "GET", "/groups/:id/subgroups"),
    row("Group", "Read", "Group", "GET", "/groups/:id/projects/shared"),
    row("Group", "Read", "User", "GET", "/groups"),
    row("Group", "Update", "Group", "PUT", "/groups/:id"),
    row("Group", "Delete", "Group", "DELETE", "/groups/:id"),
    row("Namespace", "Read", "User", "GET", "/namespaces"),
    row("Namespace", "Read", "User", "GET", "/namespaces/:id"),
    row("Namespace", "Read", "User", "GET", "/namespaces/:id/exists"),
    // Projects: Project, Event
    row("Project", "Read", "Project", "GET", "/projects/:id"),
    row("Project", "Read", "Project", "GET", "/projects/:id/forks"),
    row("Project", "Read", "Project", "GET", "/projects/:id/groups"),
    row("Project", "Read", "Project", "GET", "/projects/:id/languages"),
    row("Project", "Read", "Project", "GET", "/projects/:id/users"),
    row("Project", "Read", "Group", "GET", "/groups/:id/projects"),
    row("Project", "Read", "User", "GET", "/projects"),
    row("Project", "Read", "User", "GET", "/users/:user_id/projects"),
    row("Project", "Create", "User", "POST", "/projects"),
    row("Project", "Update", "Project", "PUT", "/projects/:id"),
    row("Project", "Delete", "Project", "DELETE", "/projects/:id"),
    row("Event", "Read", "Project", "GET", "/projects/:id/events"),
    row("Event", "Read", "User", "GET", "/events"),
    row("Event", "Read", "User", "GET", "/users/:id/events"),
    // Project Planning: Label
    row("Label", "Read", "Project", "GET", "/projects/:id/labels"),
    row("Label", "Read", "Project", "GET", "/projects/:id/labels/:name"),
    row("Label", "Read", "Group", "GET", "/groups/:id/labels"),
    row("Label", "Read", "Group", "GET", "/groups/:id/labels/:name"),
    row("Label", "Create", "Project", "POST", "/projects/:id/labels"),
    row("Label", "Create", "Group", "POST", "/groups/:id/labels"),
    row("Label", "Update", "Project", "PUT", "/projects/:id/labels"),
    row("Label", "Update", "Project", "PUT", "/projects/:id/labels/:name"),
    row("Label", "Update", "Group", "PUT", "/groups/:id/labels"),
    row("Label", "Update", "Group", "PUT", "/groups/:id/labels/:name"),
    row("Label", "Delete", "Project", "DELETE", "/projects/:id/labels"),
    row("Label", "Delete", "Project", "DELETE", "/projects/:id/labels/:name"),
    row("Label", "Delete", "Group", "DELETE", "/groups/:id/labels"),
    row("Label", "Delete", "Group", "DELETE", "/groups/:id/labels/:name"),
    // Integrations: Webhook
    row("Webhook", "Read", "Project", "GET", "/projects/:id/hooks"),
    row("Webhook", "Read", "Project", "GET", "/projects/:id/hooks/:hook_id"),
    row("Webhook", "Read", "Project", "GET", "/projects/:id/hooks/:hook_id/events"),
    row("Webhook", "Read", "Group", "GET", "/groups/:id/hooks"),
    row("Webhook", "Read", "Group", "GET", "/groups/:id/hooks/:hook_id"),
    row("Webhook", "Read", "Group", "GET", "/groups/:id/hooks/:hook_id/events"),
    row("Webhook", "Create", "Project", "POST", "/projects/:id/hooks"),
    row("Webhook", "Create", "Group", "POST", "/groups/:id/hooks"),
    row("Webhook", "Update", "Project", "PUT", "/projects/:id/hooks/:hook_id"),
    row("Webhook", "Update", "Group", "PUT", "/groups/:id/hooks/:hook_id"),
    row("Webhook", "Delete", "Project", "DELETE", "/projects/:id/hooks/:hook_id"),
    row("Webhook", "Delete", "Group", "DELETE", "/groups/:id/hooks/:hook_id"),
    // Repository: Merge Request
    row("Merge Request", "Read", "Project", "GET", "/projects/:id/merge_requests"),
    row("Merge Request", "Read", "Project", "GET", "/projects/:id/merge_requests/:eventable_id/resource_label_events"),
    row("Merge Request", "Read", "Project", "GET", "/projects/:id/merge_requests/:eventable_id/resource_label_events/:event_id"),
    row("Merge Request", "Read", "Project", "GET", "/projects/:id/merge_requests/:merge_request_iid"),
    row("Merge Request", "Read", "Project", "GET", "/projects/:id/merge_requests/:merge_request_iid/approvals"),
    row("Merge Request", "Read", "Project", "GET", "/projects/:id/merge_requests/:merge_request_iid/changes"),
    row("Merge Request", "Read", "Project", "GET", "/projects/:id/merge_requests/:merge_request_iid/closes_issues"),
    row("Merge Request", "Read", "Project", "GET", "/projects/:id/merge_requests/:merge_request_iid/commits"),
    row("Merge Request", "Read", "Project", "GET", "/projects/:id/merge_requests/:merge_request_iid/diffs"),
    row("Merge Request", "Read", "Project", "GET", "/projects/:id/merge_requests/:merge_request_iid/participants"),
    row("Merge Request", "Read", "Project", "GET", "/projects/:id/merge_requests/:merge_request_iid/pipelines"),
    row("Merge Request", "Read", "Project", "GET", "/projects/:id/merge_requests/:merge_request_iid/reviewers"),
    row("Merge Request", "Read", "Project", "GET", "/projects/:id/merge_requests/:noteable_id/discussions"),
    row("Merge Request", "Read", "Project", "GET", "/projects/:id/merge_requests/:noteable_id/discussions/:discussion_id"),
    row("Merge Request", "Read", "Group", "GET", "/groups/:id/merge_requests"),
    row("Merge Request", "Read", "User", "GET", "/merge_requests"),
    row("Merge Request", "Create", "Project", "POST", "/projects/:id/merge_requests"),
    row("Merge Request", "Update", "Project", "PUT", "/projects/:id/merge_requests/:merge_request_iid"),
    row("Merge Request", "Delete", "Project", "DELETE", "/projects/:id/merge_requests/:merge_request_iid"),
    row("Merge Request", "Merge", "Project", "PUT", "/projects/:id/merge_requests/:merge_request_iid/merge"),
    row("Merge Request", "Approve", "Project", "POST", "/projects/:id/merge_requests/:merge_request_iid/approve"),
    // Project Planning: Work Item (issues, notes on merge requests)
    row("Work Item", "Read", "Project", "GET", "/projects/:id/issues"),
    row("Work Item", "Read", "Project", "GET", "/projects/:id/issues/:issue_iid"),
    row("Work Item", "Read", "Project", "GET", "/projects/:id/issues/:eventable_id/resource_label_events"),
    row("Work Item", "Read", "Project", "GET", "/projects/:id/issues/:eventable_id/resource_label_events/:event_id"),
    row("Work Item", "Read", "Project", "GET", "/projects/:id/issues/:noteable_id/discussions"),
    row("Work Item", "Read", "Project", "GET", "/projects/:id/issues/:noteable_id/notes"),
    row("Work Item", "Read", "Project", "GET", "/projects/:id/merge_requests/:noteable_id/notes"),
    row("Work Item", "Read", "Project", "GET", "/projects/:id/merge_requests/:eventable_id/resource_state_events"),
    row("Work Item", "Read", "Project", "GET", "/projects/:id/merge_requests/:eventable_id/resource_milestone_events"),
    row("Work Item", "Read", "Project", "GET", "/projects/:id/milestones"),
    row("Work Item", "Read", "Group", "GET", "/groups/:id/issues"),
    row("Work Item", "Read", "Group", "GET", "/groups/:id/milestones"),
    row("Work Item", "Read", "User", "GET", "/issues"),
    row("Work Item", "Create", "Project", "POST", "/projects/:id/issues"),
    row("Work Item", "Create", "Project", "POST", "/projects/:id/merge_requests/:noteable_id/notes"),
    row("Work Item", "Update", "Project", "PUT", "/projects/:id/issues/:issue_iid"),
    // Repository: Commit, Repository Tag, Branch, Repository
    row("Commit", "Read", "Project", "GET", "/projects/:id/repository/commits"),
    row("Commit", "Read", "Project", "GET", "/projects/:id/repository/commits/:sha"),
    row("Commit", "Read", "Project", "GET", "/projects/:id/repository/commits/:sha/diff"),
    row("Commit", "Read", "Project", "GET", "/projects/:id/repository/commits/:sha/merge_requests"),
    row("Commit", "Read", "Project", "GET", "/projects/:id/repository/commits/:sha/refs"),
    row("Commit", "Read", "Project", "GET", "/projects/:id/repository/commits/:sha/statuses"),
    row("Repository Tag", "Read", "Project", "GET", "/projects/:id/repository/tags"),
    row("Repository Tag", "Read", "Project", "GET", "/projects/:id/repository/tags/:tag_name"),
    row("Branch", "Read", "Project", "GET", "/projects/:id/repository/branches"),
    row("Branch", "Read", "Project", "GET", "/projects/:id/repository/branches/:branch"),
    row("Repository", "Read", "Project", "GET", "/projects/:id/repository/archive"),
    row("Repository", "Read", "Project", "GET", "/projects/:id/repository/compare"),
    row("Repository", "Read", "Project", "GET", "/projects/:id/repository/contributors"),
    row("Repository", "Read", "Project", "GET", "/projects/:id/repository/files/:file_path"),
    row("Repository", "Read", "Project", "GET", "/projects/:id/repository/files/:file_path/raw"),
    row("Repository", "Read", "Project", "GET", "/projects/:id/repository/tree"),
    // CI/CD: Pipeline, Job
    row("Pipeline", "Read", "Project", "GET", "/projects/:id/pipelines"),
    row("Pipeline", "Read", "Project", "GET", "/projects/:id/pipelines/:pipeline_id"),
    row("Pipeline", "Read", "Project", "GET", "/projects/:id/pipelines/:pipeline_id/jobs"),
    row("Job", "Read", "Project", "GET", "/projects/:id/jobs"),
    row("Job", "Read", "Project", "GET", "/projects/:id/jobs/:job_id"),
];

/// What GitLab's table says about one method and path template of a rule.
#[derive(Debug)]
pub(crate) enum Mapping {
    /// The table lists it: these permissions (several when the same route is
    /// listed at more than one boundary).
    Documented(Vec<Permission>),
    /// Only a row with a parameter where the policy has a fixed segment
    /// matches (e.g. `/users/:id` for `/users/me`): probably right, but
    /// GitLab may route the fixed segment elsewhere.
    Uncertain(Vec<Permission>),
    /// Not in the table glgate carries: unknown.
    Unknown,
}

/// One method and path template of a rule, with its mapping.
#[derive(Debug)]
pub(crate) struct Endpoint {
    /// e.g. `GET`.
    pub(crate) method: &'static str,
    /// The template as the policy writes it.
    pub(crate) template: String,
    /// What GitLab's table says.
    pub(crate) mapping: Mapping,
}

/// One rule's needs.
#[derive(Debug)]
pub(crate) struct RuleNeeds {
    /// The rule's id.
    pub(crate) id: String,
    /// Every method × template of the rule (HEAD folded into GET).
    pub(crate) endpoints: Vec<Endpoint>,
}

/// The whole answer for a policy.
#[derive(Debug)]
pub(crate) struct Report {
    /// The policy's name.
    pub(crate) policy: String,
    /// The narrowest classic scope.
    pub(crate) classic: ClassicScope,
    /// Why that scope: the first rule that needs it.
    pub(crate) classic_reason: String,
    /// Per rule, in file order.
    pub(crate) rules: Vec<RuleNeeds>,
}

impl Report {
    /// Every documented or uncertain permission, deduplicated and sorted.
    pub(crate) fn permissions(&self) -> BTreeSet<Permission> {
        self.endpoints()
            .flat_map(|e| match &e.mapping {
                Mapping::Documented(p) | Mapping::Uncertain(p) => p.clone(),
                Mapping::Unknown => Vec::new(),
            })
            .collect()
    }

    /// Endpoints with no documented permission.
    pub(crate) fn unknown(&self) -> impl Iterator<Item = &Endpoint> {
        self.endpoints()
            .filter(|e| matches!(e.mapping, Mapping::Unknown))
    }

    /// Endpoints whose permission is uncertain.
    pub(crate) fn uncertain(&self) -> impl Iterator<Item = &Endpoint> {
        self.endpoints()
            .filter(|e| matches!(e.mapping, Mapping::Uncertain(_)))
    }

    fn endpoints(&self) -> impl Iterator<Item = &Endpoint> {
        self.rules.iter().flat_map(|r| r.endpoints.iter())
    }
}

/// The calls glgate itself makes with the GitLab token, beyond what the
/// policy forwards: `doctor` (version, user, token, group membership),
/// scope resolution (`scope show`, `serve` with scopes) and `token rotate`
/// / `auto_rotate`.
pub(crate) const OWN_CALLS: &[(&str, &str, &str)] = &[
    ("GET", "/version", "doctor"),
    ("GET", "/user", "doctor"),
    (
        "GET",
        "/personal_access_tokens/self",
        "doctor, token expiry",
    ),
    ("GET", "/groups/:id/members/all/:user_id", "doctor"),
    ("GET", "/groups/:id", "client scopes"),
    ("GET", "/projects/:id", "client scopes"),
    ("GET", "/namespaces/:id", "client scopes"),
    (
        "POST",
        "/personal_access_tokens/self/rotate",
        "token rotate, auto_rotate",
    ),
];

/// Builds the report for `policy`.
pub(crate) fn report(policy: &Policy) -> Report {
    let mut classic = ClassicScope::ReadUser;
    let mut classic_reason = String::from("every rule only reads /user or /users");
    let mut rules = Vec::new();
    for rule in policy.rules() {
        let methods: BTreeSet<&'static str> = rule
            .methods()
            .iter()
            .map(|m| match m {
                // GitLab's table lists HEAD for a few routes only; HEAD is
                // served as GET.
                Method::Head => "GET",
                other => other.as_str(),
            })
            .collect();
        let mut endpoints = Vec::new();
        for template in rule.templates() {
            let segments = policy_segments(template.segments());
            for method in &methods {
                let needed = scope_for(method, &segments);
                if needed > classic {
                    classic = needed;
                    classic_reason = match needed {
                        ClassicScope::Api => {
                            format!("rule {} writes: {method} {}", rule.id(), template.text())
                        }
                        _ => format!(
                            "rule {} reads beyond /user: {method} {}",
                            rule.id(),
                            template.text()
                        ),
                    };
                }
                endpoints.push(Endpoint {
                    method,
                    template: template.text().to_owned(),
                    mapping: lookup(method, &segments),
                });
            }
        }
        rules.push(RuleNeeds {
            id: rule.id().to_owned(),
            endpoints,
        });
    }
    Report {
        policy: policy.name().to_owned(),
        classic,
        classic_reason,
        rules,
    }
}

/// A path segment of either side: a fixed word or a parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param,
}

fn policy_segments(segments: &[TemplateSegment]) -> Vec<Segment> {
    segments
        .iter()
        .map(|s| match s {
            TemplateSegment::Literal(word) => Segment::Literal(word.clone()),
            TemplateSegment::Param { .. } => Segment::Param,
        })
        .collect()
}

fn documented_segments(path: &str) -> Vec<Segment> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            if s.starts_with(':') {
                Segment::Param
            } else {
                Segment::Literal(s.to_owned())
            }
        })
        .collect()
}

/// The classic scope one method and path needs.
fn scope_for(method: &str, segments: &[Segment]) -> ClassicScope {
    if method != "GET" {
        return ClassicScope::Api;
    }
    match segments.first() {
        Some(Segment::Literal(first)) if first == "user" || first == "users" => {
            ClassicScope::ReadUser
        }
        _ => ClassicScope::ReadApi,
    }
}

/// How a documented path matches a policy path: `None` when it does not;
/// otherwise whether it matched exactly (parameter for parameter, word for
/// word) or only by a documented parameter standing for a policy word.
fn matches(documented: &[Segment], policy: &[Segment]) -> Option<bool> {
    if documented.len() != policy.len() {
        return None;
    }
    let mut exact = true;
    for (d, p) in documented.iter().zip(policy) {
        match (d, p) {
            (Segment::Literal(a), Segment::Literal(b)) if a == b => {}
            (Segment::Param, Segment::Param) => {}
            (Segment::Param, Segment::Literal(_)) => exact = false,
            _ => return None,
        }
    }
    Some(exact)
}

/// What the table says about `method` on `segments`: exact rows first;
/// rows matching only through a parameter are reported as uncertain.
fn lookup(method: &str, segments: &[Segment]) -> Mapping {
    let mut exact = Vec::new();
    let mut loose = Vec::new();
    for documented in DOCUMENTED.iter().filter(|d| d.method == method) {
        let permission = Permission {
            resource: documented.resource,
            action: documented.action,
            access: documented.access,
        };
        match matches(&documented_segments(documented.path), segments) {
            Some(true) => exact.push(permission),
            Some(false) => loose.push(permission),
            None => {}
        }
    }
    exact.sort();
    exact.dedup();
    loose.sort();
    loose.dedup();
    if !exact.is_empty() {
        Mapping::Documented(exact)
    } else if !loose.is_empty() {
        Mapping::Uncertain(loose)
    } else {
        Mapping::Unknown
    }
}

/// The permissions glgate's own calls need ([`OWN_CALLS`]).
pub(crate) fn own_calls() -> Vec<(&'static str, &'static str, &'static str, Mapping)> {
    OWN_CALLS
        .iter()
        .map(|(method, path, what)| {
            (
                *method,
                *path,
                *what,
                lookup(method, &documented_segments(path)),
            )
        })
        .collect()
}

/// The report as text for `glgate policy permissions`.
pub(crate) fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "policy {}", report.policy);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "classic personal access token: scope {} ({})",
        report.classic.as_str(),
        report.classic_reason
    );
    match report.classic {
        ClassicScope::Api => {}
        ClassicScope::ReadApi => {
            let _ = writeln!(
                out,
                "  glgate's own `token rotate` / `auto_rotate` also needs `self_rotate` \
                 (or `api`); without it, rotate the token by hand."
            );
        }
        ClassicScope::ReadUser => {
            let _ = writeln!(
                out,
                "  glgate's own `doctor` and client scopes read groups and projects: they \
                 need `read_api`; `token rotate` needs `self_rotate` (or `api`)."
            );
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "fine-grained personal access token (permissions as GitLab's table \
         \"Fine-grained permissions for REST API\" names them: Resource: Action (boundary)):"
    );
    let permissions = report.permissions();
    if permissions.is_empty() {
        let _ = writeln!(out, "  none documented for this policy's endpoints");
    }
    for permission in &permissions {
        let _ = writeln!(out, "  {permission}");
    }
    let own = own_calls();
    let width = report
        .endpoints()
        .map(|e| e.template.len())
        .chain(own.iter().map(|(_, path, _, _)| path.len()))
        .max()
        .unwrap_or(0);
    let _ = writeln!(out);
    let _ = writeln!(out, "per rule:");
    for rule in &report.rules {
        let _ = writeln!(out, "  {}", rule.id);
        for endpoint in &rule.endpoints {
            let _ = writeln!(
                out,
                "    {:<6} {:<width$}  {}",
                endpoint.method,
                endpoint.template,
                describe(&endpoint.mapping)
            );
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "glgate's own calls with the token:");
    for (method, path, what, mapping) in own {
        let _ = writeln!(
            out,
            "    {method:<6} {path:<width$}  {} [{what}]",
            describe(&mapping)
        );
    }
    let unknown = report.unknown().count();
    let uncertain = report.uncertain().count();
    let _ = writeln!(out);
    if unknown + uncertain == 0 {
        let _ = writeln!(
            out,
            "every endpoint of the policy is in GitLab's table. Grant the permissions \
             above, limited to the groups and projects of the clients' scopes."
        );
    } else {
        let _ = writeln!(
            out,
            "{unknown} endpoint(s) unknown and {uncertain} uncertain: GitLab's table does not \
             list them as written. A fine-grained token may be refused there (GitLab answers 403 \
             and names the missing permission); until GitLab lists them, use the classic scope \
             above or check GitLab's documentation."
        );
    }
    let _ = writeln!(
        out,
        "The mapping comes from GitLab's documentation (generally available in GitLab 19.2); \
         an older GitLab may name or cover permissions differently."
    );
    out
}

fn describe(mapping: &Mapping) -> String {
    let join = |p: &[Permission]| {
        p.iter()
            .map(Permission::to_string)
            .collect::<Vec<_>>()
            .join(" or ")
    };
    match mapping {
        Mapping::Documented(p) => join(p),
        Mapping::Uncertain(p) => format!("uncertain: probably {}", join(p)),
        Mapping::Unknown => "unknown: not in GitLab's table".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(rules: &str) -> Policy {
        let text = format!("version: 1\nname: t\nrules:\n{rules}");
        Policy::compile(std::path::Path::new("t.yaml"), &text).unwrap()
    }

    #[test]
    fn a_policy_that_writes_needs_api() {
        let report = report(&policy(
            "  - id: r\n    methods: [GET]\n    paths: ['/projects/{project}']\n  - id: w\n    methods: [POST]\n    paths: ['/groups/{group}/labels']\n    params: {}\n",
        ));
        assert_eq!(report.classic, ClassicScope::Api);
        assert!(
            report.classic_reason.contains("rule w writes"),
            "{}",
            report.classic_reason
        );
        let permissions: Vec<String> = report.permissions().iter().map(|p| p.to_string()).collect();
        assert_eq!(
            permissions,
            ["Label: Create (Group)", "Project: Read (Project)"]
        );
    }

    #[test]
    fn a_read_only_policy_needs_read_api_and_user_only_read_user() {
        let read = report(&policy(
            "  - id: r\n    methods: [GET]\n    paths: [/user, '/projects/{project}/merge_requests']\n",
        ));
        assert_eq!(read.classic, ClassicScope::ReadApi);
        let user = report(&policy(
            "  - id: r\n    methods: [GET]\n    paths: [/user, '/users/{id}']\n",
        ));
        assert_eq!(user.classic, ClassicScope::ReadUser);
    }

    #[test]
    fn unknown_and_uncertain_endpoints_are_named_not_guessed() {
        let report = report(&policy(
            "  - id: r\n    methods: [GET]\n    paths: ['/projects/{project}/secret_things', /users/me]\n",
        ));
        let endpoints = &report.rules[0].endpoints;
        assert!(matches!(endpoints[0].mapping, Mapping::Unknown));
        match &endpoints[1].mapping {
            Mapping::Uncertain(p) => assert_eq!(p[0].to_string(), "User: Read (User)"),
            other => panic!("{other:?}"),
        }
        let text = render(&report);
        assert!(text.contains("unknown: not in GitLab's table"), "{text}");
        assert!(
            text.contains("1 endpoint(s) unknown and 1 uncertain"),
            "{text}"
        );
    }

    #[test]
    fn a_literal_beats_a_parameter_of_the_same_shape() {
        // /groups/:id/members/all is its own row, not /groups/:id/members/:user_id.
        let report = report(&policy(
            "  - id: r\n    methods: [GET]\n    paths: ['/groups/{group}/members/all', /personal_access_tokens/self]\n",
        ));
        for endpoint in &report.rules[0].endpoints {
            assert!(
                matches!(endpoint.mapping, Mapping::Documented(_)),
                "{endpoint:?}"
            );
        }
    }

    #[test]
    fn glgates_own_calls_are_all_documented() {
        for (method, path, _, mapping) in own_calls() {
            assert!(
                matches!(mapping, Mapping::Documented(_)),
                "{method} {path}: {mapping:?}"
            );
        }
    }

    #[test]
    fn every_row_is_well_formed() {
        for d in DOCUMENTED {
            assert!(d.path.starts_with('/'), "{}", d.path);
            assert!(
                ["Project", "Group", "User", "Instance"].contains(&d.access),
                "{}",
                d.access
            );
            assert!(
                ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&d.method),
                "{}",
                d.method
            );
        }
    }
}
