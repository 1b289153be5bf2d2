//! Reviewing a policy offline, without GitLab: how it decides one request
//! ([`decide`], as the proxy does), its test case files ([`cases`]), its
//! rules as a table ([`show`]), what changes between two versions
//! ([`diff`]), which past requests it would decide differently
//! ([`replay`]) and the narrowest GitLab token it needs ([`permissions`]).
//!
//! Everything here builds a report (no printing, no environment, no exit
//! code) so that it can be tested directly; `src/cli/policy.rs` prints the
//! reports for `glgate policy test/show/diff/replay/permissions`.

pub(crate) mod cases;
pub(crate) mod diff;
pub(crate) mod permissions;
pub(crate) mod replay;
pub(crate) mod show;

use crate::canonical::{API_PREFIX, RequestHead};
use crate::policy::{Decision, Policy, Reason, parse_body};

/// Reason codes the policy itself gives ([`Reason::code`]).
pub(crate) const POLICY_REASON_CODES: &[&str] = &[
    "no_rule",
    "method_not_allowed",
    "invalid_path_param",
    "forbidden_param",
    "unknown_param",
    "invalid_param",
    "missing_param",
    "duplicate_param",
    "body_not_allowed",
    "unsupported_content_type",
    "malformed_body",
];

/// Reason codes for targets refused before any policy is consulted
/// ([`crate::canonical::TargetError::code`]).
pub(crate) const TARGET_REASON_CODES: &[&str] = &[
    "unsupported_method",
    "not_origin_form",
    "target_too_long",
    "not_api",
    "too_many_segments",
    "too_many_params",
    "ambiguous_target",
];

/// The reason code for a body over the matched rule's `max_body_bytes`.
pub(crate) const BODY_TOO_LARGE: &str = "body_too_large";

/// Reason codes a refusal can carry once the policy matched method and path
/// but refused the parameters or the body.
pub(crate) const AFTER_ROUTE_CODES: &[&str] = &[
    "forbidden_param",
    "unknown_param",
    "invalid_param",
    "missing_param",
    "duplicate_param",
    "body_not_allowed",
    "unsupported_content_type",
    "malformed_body",
    BODY_TOO_LARGE,
    "body_timeout",
    "body_read_error",
];

/// What the policy decided for one request, flattened for comparison and printing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Whether the request would be forwarded.
    pub allow: bool,
    /// The rule that allowed or refused it, when a template matched.
    pub rule: Option<String>,
    /// The reason code: `allowed`, or why it was refused.
    pub reason: String,
    /// The reason in words.
    pub message: String,
}

impl Outcome {
    fn deny(rule: Option<&str>, reason: &str, message: String) -> Outcome {
        Outcome {
            allow: false,
            rule: rule.map(str::to_owned),
            reason: reason.to_owned(),
            message,
        }
    }

    fn from_reason(rule: Option<&str>, reason: &Reason) -> Outcome {
        Outcome::deny(rule, reason.code(), reason.to_string())
    }

    /// `allow (rule x)` or `deny (code: message)`, for one-line reports.
    pub(crate) fn summary(&self) -> String {
        match (self.allow, &self.rule) {
            (true, Some(rule)) => format!("allow (rule {rule})"),
            (true, None) => "allow".to_owned(),
            (false, Some(rule)) => {
                format!("deny (rule {rule}, {}: {})", self.reason, self.message)
            }
            (false, None) => format!("deny ({}: {})", self.reason, self.message),
        }
    }
}

/// Decides one request the way the proxy does, as far as the policy goes:
/// the target is read as GitLab reads it, the method and path are routed,
/// the body is refused if the rule reads none or it is over the rule's
/// `max_body_bytes`, then it is parsed and the merged parameters are checked.
///
/// Not covered: the config's `limits.max_body_bytes`, headers, the client's
/// credentials, and the `owned_if`/`changes_only`/`response_filter`
/// conditions, which need GitLab's answer at run time.
pub(crate) fn decide(
    policy: &Policy,
    method: &str,
    target: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Outcome {
    let target = normalize_target(target);
    let head = match RequestHead::parse(method, &target) {
        Ok(head) => head,
        Err(error) => return Outcome::deny(None, error.code(), error.to_string()),
    };
    let matched = match policy.route(&head) {
        Ok(matched) => matched,
        Err(denial) => return Outcome::from_reason(denial.rule.as_deref(), &denial.reason),
    };
    let rule = Some(matched.rule().id());
    if !body.is_empty() {
        if !matched.accepts_body() {
            return Outcome::from_reason(rule, &Reason::BodyNotAllowed);
        }
        let limit = matched.rule().max_body_bytes();
        if body.len() as u64 > limit {
            return Outcome::deny(
                rule,
                BODY_TOO_LARGE,
                format!("the body is over this rule's max_body_bytes ({limit})"),
            );
        }
    }
    let params = match parse_body(content_type, body) {
        Ok(params) => params,
        Err(reason) => return Outcome::from_reason(rule, &reason),
    };
    match matched.check(head.query(), &params) {
        Decision::Allow(permit) => Outcome {
            allow: true,
            rule: Some(permit.rule().to_owned()),
            reason: "allowed".to_owned(),
            message: "allowed".to_owned(),
        },
        Decision::Deny(denial) => Outcome::from_reason(denial.rule.as_deref(), &denial.reason),
    }
}

/// Accepts `/api/v4/...` or a template-relative `/projects/...`. Anything
/// else (a full URL, say) is left as it is, so that it is refused exactly as
/// the proxy refuses it over HTTP/1.1 (`not_origin_form`); the method is not
/// changed either (`get` is not `GET`, to GitLab or to the proxy).
pub(crate) fn normalize_target(target: &str) -> String {
    if !target.starts_with('/') || target.starts_with(API_PREFIX) {
        target.to_owned()
    } else {
        format!("{API_PREFIX}{target}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(normalize_target("/projects/5"), "/api/v4/projects/5");
        assert_eq!(normalize_target("/api/v4/projects/5"), "/api/v4/projects/5");
        assert_eq!(
            normalize_target("https://g.example/api/v4/user?x=1"),
            "https://g.example/api/v4/user?x=1"
        );
    }

    #[test]
    fn the_tools_read_targets_and_methods_as_the_proxy_does() {
        let policy = Policy::compile(
            std::path::Path::new("p.yaml"),
            "version: 1\nname: p\nrules:\n  - id: me\n    methods: [GET]\n    paths: ['/user']\n",
        )
        .unwrap();
        assert!(decide(&policy, "GET", "/user", None, b"").allow);
        let absolute = decide(&policy, "GET", "https://g.example/api/v4/user", None, b"");
        assert!(!absolute.allow);
        assert_eq!(absolute.reason, "not_origin_form");
        let lower = decide(&policy, "get", "/user", None, b"");
        assert!(!lower.allow);
        assert_eq!(lower.reason, "unsupported_method");
    }

    /// Fails to compile when `Reason` gains a variant, so that the list
    /// above is revisited.
    fn listed(reason: &Reason) -> bool {
        match reason {
            Reason::NoRoute
            | Reason::MethodNotAllowed { .. }
            | Reason::InvalidPathParam { .. }
            | Reason::ForbiddenParam { .. }
            | Reason::UnknownParam { .. }
            | Reason::InvalidParam { .. }
            | Reason::MissingParam { .. }
            | Reason::DuplicateParam { .. }
            | Reason::BodyNotAllowed
            | Reason::UnsupportedContentType { .. }
            | Reason::MalformedBody { .. } => POLICY_REASON_CODES.contains(&reason.code()),
            // Only the matcher knows route names, but the refusal is the
            // canonicalizer's: an ambiguous target.
            Reason::EncodedRouteName { .. } => TARGET_REASON_CODES.contains(&reason.code()),
        }
    }

    #[test]
    fn every_reason_code_is_listed() {
        let empty = String::new;
        let reasons = [
            Reason::NoRoute,
            Reason::MethodNotAllowed {
                method: crate::canonical::Method::Get,
                allowed: Vec::new(),
            },
            Reason::InvalidPathParam {
                name: empty(),
                expected: empty(),
            },
            Reason::ForbiddenParam { name: empty() },
            Reason::UnknownParam {
                name: empty(),
                accepted: Vec::new(),
            },
            Reason::InvalidParam {
                name: empty(),
                expected: empty(),
            },
            Reason::MissingParam { name: empty() },
            Reason::DuplicateParam { name: empty() },
            Reason::BodyNotAllowed,
            Reason::UnsupportedContentType {
                content_type: empty(),
            },
            Reason::MalformedBody { detail: empty() },
        ];
        assert!(reasons.iter().all(listed));
        assert_eq!(reasons.len(), POLICY_REASON_CODES.len());
        assert!(listed(&Reason::EncodedRouteName {
            segment: empty(),
            literal: empty(),
        }));

        use crate::canonical::TargetError;
        let targets = [
            TargetError::UnsupportedMethod(empty()),
            TargetError::NotOriginForm,
            TargetError::TooLong,
            TargetError::NotApi,
            TargetError::TooManySegments,
            TargetError::TooManyParams,
            TargetError::Ambiguous(empty()),
        ];
        for target in &targets {
            // Exhaustive on purpose: a new variant must be added to the list.
            match target {
                TargetError::UnsupportedMethod(_)
                | TargetError::NotOriginForm
                | TargetError::TooLong
                | TargetError::NotApi
                | TargetError::TooManySegments
                | TargetError::TooManyParams
                | TargetError::Ambiguous(_) => {
                    assert!(TARGET_REASON_CODES.contains(&target.code()));
                }
            }
        }
        assert_eq!(targets.len(), TARGET_REASON_CODES.len());
    }
}
