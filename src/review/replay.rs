//! `glgate policy replay --policy FILE AUDIT_LOG`: which past requests a
//! policy would decide differently.
//!
//! An audit line holds the method and the path, never the query string nor
//! the body (src/audit.rs), so replay decides method and path only:
//!
//! - a request that was allowed and whose path no rule of the new policy
//!   allows (no template, wrong method, path param constraint) *would now be
//!   refused*;
//! - a request refused for its method or path whose path a rule now allows
//!   *would now be allowed* (its parameters are then checked by that rule,
//!   which replay cannot do);
//! - a request refused for its parameters or body stays counted as
//!   unchanged while its path still matches a rule.
//!
//! Lines that are not glgate audit lines, and requests that never reached the
//! policy (no or unknown credential, rate limit, a refused header or target,
//! the API root), are skipped and counted.
//!
//! (Writing to a `String` cannot fail, hence the `let _ = writeln!`.)

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::BufRead;
use std::path::Path;

use serde::Deserialize;

use super::{AFTER_ROUTE_CODES, POLICY_REASON_CODES};
use crate::canonical::RequestHead;
use crate::policy::Policy;

/// Why replay could not run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReplayError {
    /// The audit log could not be read.
    #[error("cannot read the audit log {path}: {source}")]
    Read {
        /// The log file (`-` for standard input).
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The fields of a glgate audit line that replay reads.
#[derive(Debug, Deserialize)]
struct AuditLine {
    method: String,
    path: String,
    decision: String,
    #[serde(default)]
    rule: String,
    reason: String,
    #[serde(default)]
    client: String,
    #[serde(default)]
    request_id: String,
}

/// Which way a decision changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Direction {
    /// Allowed then, refused by the new policy.
    NowRefused,
    /// Refused then, allowed by the new policy (parameters permitting).
    NowAllowed,
}

/// Requests whose decision changes the same way, on the same method and path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ChangeGroup {
    /// Which way.
    pub direction: Direction,
    /// The method.
    pub method: String,
    /// The path (no query).
    pub path: String,
    /// The rule that decided then (`-` for none).
    pub old_rule: String,
    /// The reason code then.
    pub old_reason: String,
    /// The rule that would decide now (`-` for none).
    pub new_rule: String,
    /// The reason code now.
    pub new_reason: String,
    /// How many requests.
    pub count: usize,
    /// The first request's client.
    pub client: String,
    /// The first request's id.
    pub request_id: String,
}

/// Lines replay did not evaluate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Skipped {
    /// Lines that are not glgate audit lines.
    pub not_audit: usize,
    /// Requests that never reached the policy, by reason code.
    pub before_policy: BTreeMap<String, usize>,
    /// Requests of other clients than the one asked for.
    pub other_clients: usize,
}

impl Skipped {
    /// All skipped lines.
    pub(crate) fn total(&self) -> usize {
        self.not_audit + self.before_policy.values().sum::<usize>() + self.other_clients
    }
}

/// The outcome of a replay.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Replay {
    /// Requests decided the same way (as far as method and path tell).
    pub unchanged: usize,
    /// Changed decisions, grouped, in order of first appearance.
    pub changes: Vec<ChangeGroup>,
    /// What was not evaluated.
    pub skipped: Skipped,
}

impl Replay {
    /// How many requests change in `direction`.
    pub(crate) fn count(&self, direction: Direction) -> usize {
        self.changes
            .iter()
            .filter(|c| c.direction == direction)
            .map(|c| c.count)
            .sum()
    }

    /// The report: header, changed requests, skipped lines, summary.
    pub(crate) fn render(&self, policy: &Policy, log: &Path, client: Option<&str>) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "replay of {} against {} (policy {}){}",
            log.display(),
            policy.source().display(),
            policy.name(),
            client.map(|c| format!(", client {c}")).unwrap_or_default()
        );
        out.push_str(
            "method and path only: audit lines hold no query string and no body, so parameters \
             are not re-checked;\na request refused for its parameters or body counts as \
             unchanged while its path still matches a rule.\n",
        );
        for change in &self.changes {
            let verb = match change.direction {
                Direction::NowRefused => "would now refuse",
                Direction::NowAllowed => "would now allow ",
            };
            let times = if change.count > 1 {
                format!("{} requests, first ", change.count)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "{verb}  {} {}  {}/{} → {}/{}  ({times}client {}, request_id {})",
                change.method,
                change.path,
                change.old_rule,
                change.old_reason,
                change.new_rule,
                change.new_reason,
                change.client,
                change.request_id
            );
        }
        if self.skipped.total() > 0 {
            let mut parts = Vec::new();
            if self.skipped.not_audit > 0 {
                parts.push(format!("{} not glgate audit lines", self.skipped.not_audit));
            }
            if !self.skipped.before_policy.is_empty() {
                let reasons: Vec<String> = self
                    .skipped
                    .before_policy
                    .iter()
                    .map(|(reason, count)| format!("{reason}: {count}"))
                    .collect();
                parts.push(format!(
                    "{} never reached the policy ({})",
                    self.skipped.before_policy.values().sum::<usize>(),
                    reasons.join(", ")
                ));
            }
            if self.skipped.other_clients > 0 {
                parts.push(format!("{} of other clients", self.skipped.other_clients));
            }
            let _ = writeln!(out, "skipped: {}", parts.join(", "));
        }
        let _ = writeln!(
            out,
            "{} unchanged, {} now refused, {} now allowed, {} skipped",
            self.unchanged,
            self.count(Direction::NowRefused),
            self.count(Direction::NowAllowed),
            self.skipped.total()
        );
        out
    }
}

/// What the log says was decided.
enum Then {
    Allowed { rule: String },
    RefusedAtRoute { rule: String, reason: String },
    RefusedAfterRoute,
}

/// What the policy decides on method and path alone.
enum Now {
    Routes { rule: String },
    Refuses { rule: String, reason: String },
}

/// Direction, method, path, old rule and reason, new rule and reason.
type GroupKey = (Direction, String, String, String, String, String, String);

/// Replays every line of `log` against `policy`; only requests of `client`
/// when one is given.
pub(crate) fn replay(
    policy: &Policy,
    mut log: impl BufRead,
    client: Option<&str>,
) -> std::io::Result<Replay> {
    let mut result = Replay::default();
    let mut groups: HashMap<GroupKey, usize> = HashMap::new();
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        if log.read_until(b'\n', &mut buffer)? == 0 {
            break;
        }
        let Ok(text) = std::str::from_utf8(&buffer) else {
            result.skipped.not_audit += 1;
            continue;
        };
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let Some(line) = serde_json::from_str::<AuditLine>(text)
            .ok()
            .filter(|line| matches!(line.decision.as_str(), "allow" | "deny"))
        else {
            result.skipped.not_audit += 1;
            continue;
        };
        if client.is_some_and(|c| c != line.client) {
            result.skipped.other_clients += 1;
            continue;
        }
        let Some(then) = then(&line) else {
            *result
                .skipped
                .before_policy
                .entry(line.reason.clone())
                .or_default() += 1;
            continue;
        };
        let now = now(policy, &line.method, &line.path);
        let change = match (&then, &now) {
            (
                Then::Allowed { rule },
                Now::Refuses {
                    rule: new_rule,
                    reason,
                },
            ) => Some((
                Direction::NowRefused,
                rule.clone(),
                line.reason.clone(),
                new_rule.clone(),
                reason.clone(),
            )),
            (Then::RefusedAtRoute { rule, reason }, Now::Routes { rule: new_rule }) => Some((
                Direction::NowAllowed,
                rule.clone(),
                reason.clone(),
                new_rule.clone(),
                "allowed".to_owned(),
            )),
            _ => None,
        };
        let Some((direction, old_rule, old_reason, new_rule, new_reason)) = change else {
            result.unchanged += 1;
            continue;
        };
        let key = (
            direction,
            line.method.clone(),
            line.path.clone(),
            old_rule.clone(),
            old_reason.clone(),
            new_rule.clone(),
            new_reason.clone(),
        );
        match groups.get(&key) {
            Some(&index) => result.changes[index].count += 1,
            None => {
                groups.insert(key, result.changes.len());
                result.changes.push(ChangeGroup {
                    direction,
                    method: line.method,
                    path: line.path,
                    old_rule,
                    old_reason,
                    new_rule,
                    new_reason,
                    count: 1,
                    client: line.client,
                    request_id: line.request_id,
                });
            }
        }
    }
    Ok(result)
}

/// What the line says the policy decided, or `None` when the request never
/// reached the policy (its reason is not one the policy or the body gives).
fn then(line: &AuditLine) -> Option<Then> {
    let rule = if line.rule.is_empty() {
        "-".to_owned()
    } else {
        line.rule.clone()
    };
    match line.decision.as_str() {
        "allow" if line.reason != "api_root" => Some(Then::Allowed { rule }),
        "deny" if AFTER_ROUTE_CODES.contains(&line.reason.as_str()) => {
            Some(Then::RefusedAfterRoute)
        }
        "deny" if POLICY_REASON_CODES.contains(&line.reason.as_str()) => {
            Some(Then::RefusedAtRoute {
                rule,
                reason: line.reason.clone(),
            })
        }
        _ => None,
    }
}

fn now(policy: &Policy, method: &str, path: &str) -> Now {
    let head = match RequestHead::parse(method, path) {
        Ok(head) => head,
        Err(error) => {
            return Now::Refuses {
                rule: "-".to_owned(),
                reason: error.code().to_owned(),
            };
        }
    };
    match policy.route(&head) {
        Ok(matched) => Now::Routes {
            rule: matched.rule().id().to_owned(),
        },
        Err(denial) => Now::Refuses {
            rule: denial.rule.as_deref().unwrap_or("-").to_owned(),
            reason: denial.reason.code().to_owned(),
        },
    }
}
