//! What the policy decided, and why.

use std::fmt;
use std::sync::Arc;

use crate::canonical::Method;

/// A path param bound by the matched template, e.g. `project` = `acme/backend`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    /// The param name.
    pub name: Arc<str>,
    /// The decoded value.
    pub value: String,
}

/// Proof that the policy allowed a request. Only [`super`] can make one, and
/// forwarding requires one: nothing reaches GitLab without a decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permit {
    pub(super) rule: Arc<str>,
    pub(super) template: Arc<str>,
    pub(super) bindings: Vec<Binding>,
    pub(super) owned_if: Option<Arc<super::FieldMatch>>,
    pub(super) changes_only: Option<Arc<super::FieldMatch>>,
    pub(super) response_filter: Option<Arc<super::FieldMatch>>,
}

impl Permit {
    /// The id of the rule that allowed the request.
    pub fn rule(&self) -> &str {
        &self.rule
    }

    /// The path template that matched.
    pub fn template(&self) -> &str {
        &self.template
    }

    /// The bound path params.
    pub fn bindings(&self) -> &[Binding] {
        &self.bindings
    }

    /// The condition the existing resource must meet before forwarding.
    pub(crate) fn owned_if(&self) -> Option<&super::FieldMatch> {
        self.owned_if.as_deref()
    }

    /// Which items of a set-valued field the request may add or remove.
    pub(crate) fn changes_only(&self) -> Option<&super::FieldMatch> {
        self.changes_only.as_deref()
    }

    /// The condition list items must meet to be relayed.
    pub(crate) fn response_filter(&self) -> Option<&super::FieldMatch> {
        self.response_filter.as_deref()
    }
}

/// Why a request was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// No template matches the path.
    NoRoute,
    /// A path segment spells a route name with percent escapes
    /// (`%70rojects`): GitLab's router reads it as that name, glgate
    /// compares route names as sent. Refused like an ambiguous target.
    EncodedRouteName {
        /// The segment as sent (bounded, printable).
        segment: String,
        /// The route name its decoding spells.
        literal: String,
    },
    /// A template matches, but not for this method.
    MethodNotAllowed {
        /// The method asked for.
        method: Method,
        /// The methods the matching template allows.
        allowed: Vec<Method>,
    },
    /// A path param fits its type but not the rule's constraint.
    InvalidPathParam {
        /// The param name.
        name: String,
        /// What would be valid.
        expected: String,
    },
    /// A parameter GitLab reads as a credential or an impersonation or method override.
    ForbiddenParam {
        /// The parameter name as sent.
        name: String,
    },
    /// The rule accepts a closed set of parameters and this one is not in it.
    UnknownParam {
        /// The parameter name.
        name: String,
        /// The parameters the rule accepts.
        accepted: Vec<String>,
    },
    /// A parameter's value does not satisfy its constraint.
    InvalidParam {
        /// The parameter name.
        name: String,
        /// What would be valid.
        expected: String,
    },
    /// A required parameter is absent.
    MissingParam {
        /// The parameter name.
        name: String,
    },
    /// A parameter appears twice (in the query and the body, or twice in one).
    DuplicateParam {
        /// The parameter name.
        name: String,
    },
    /// The rule takes no request body.
    BodyNotAllowed,
    /// The body's content type cannot be checked.
    UnsupportedContentType {
        /// The content type sent (bounded, printable).
        content_type: String,
    },
    /// The body could not be parsed as its content type says.
    MalformedBody {
        /// What is wrong.
        detail: String,
    },
}

impl Reason {
    /// A stable short code for audit lines, metrics and JSON errors.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Reason::NoRoute => "no_rule",
            Reason::EncodedRouteName { .. } => "ambiguous_target",
            Reason::MethodNotAllowed { .. } => "method_not_allowed",
            Reason::InvalidPathParam { .. } => "invalid_path_param",
            Reason::ForbiddenParam { .. } => "forbidden_param",
            Reason::UnknownParam { .. } => "unknown_param",
            Reason::InvalidParam { .. } => "invalid_param",
            Reason::MissingParam { .. } => "missing_param",
            Reason::DuplicateParam { .. } => "duplicate_param",
            Reason::BodyNotAllowed => "body_not_allowed",
            Reason::UnsupportedContentType { .. } => "unsupported_content_type",
            Reason::MalformedBody { .. } => "malformed_body",
        }
    }

    /// Whether the request is malformed (400) rather than refused by policy (403).
    pub(crate) fn is_bad_request(&self) -> bool {
        matches!(
            self,
            Reason::EncodedRouteName { .. }
                | Reason::ForbiddenParam { .. }
                | Reason::DuplicateParam { .. }
                | Reason::MalformedBody { .. }
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NoRoute => f.write_str("no rule allows this path"),
            Reason::EncodedRouteName { segment, literal } => write!(
                f,
                "path segment '{segment}' spells the route name '{literal}' with percent escapes, which GitLab's router reads differently from glgate: send '{literal}' unencoded"
            ),
            Reason::MethodNotAllowed { method, allowed } => {
                let allowed: Vec<&str> = allowed.iter().map(|m| m.as_str()).collect();
                write!(
                    f,
                    "method {method} is not allowed here (allowed: {})",
                    allowed.join(", ")
                )
            }
            Reason::InvalidPathParam { name, expected } => {
                write!(f, "path param '{name}' must be {expected}")
            }
            Reason::ForbiddenParam { name } => write!(
                f,
                "parameter '{name}' is a GitLab credential, impersonation, method or format override and is never accepted"
            ),
            Reason::UnknownParam { name, accepted } => {
                if accepted.is_empty() {
                    write!(
                        f,
                        "parameter '{name}' is not accepted (this rule accepts no parameters)"
                    )
                } else {
                    write!(
                        f,
                        "parameter '{name}' is not accepted (accepted: {})",
                        accepted.join(", ")
                    )
                }
            }
            Reason::InvalidParam { name, expected } => {
                write!(f, "parameter '{name}' must be {expected}")
            }
            Reason::MissingParam { name } => write!(f, "parameter '{name}' is required"),
            Reason::DuplicateParam { name } => {
                write!(
                    f,
                    "parameter '{name}' is sent more than once (query and body are merged)"
                )
            }
            Reason::BodyNotAllowed => f.write_str("this endpoint takes no request body"),
            Reason::UnsupportedContentType { content_type } => write!(
                f,
                "content type '{content_type}' cannot be checked: send application/json or application/x-www-form-urlencoded"
            ),
            Reason::MalformedBody { detail } => {
                write!(f, "the request body is malformed: {detail}")
            }
        }
    }
}

/// A refusal: the reason, and the rule and template when one matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    /// The rule whose constraints refused the request, if a template matched.
    pub rule: Option<Arc<str>>,
    /// The template that matched, if any.
    pub template: Option<Arc<str>>,
    /// Why.
    pub reason: Reason,
}

impl Denial {
    /// A refusal with no matching rule.
    pub(crate) fn unmatched(reason: Reason) -> Denial {
        Denial {
            rule: None,
            template: None,
            reason,
        }
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.reason)?;
        match (&self.rule, &self.template) {
            (Some(rule), Some(template)) => write!(f, " [rule {rule}, {template}]"),
            (None, Some(template)) => write!(f, " [{template}]"),
            _ => Ok(()),
        }
    }
}

/// The outcome of evaluating one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Forward it.
    Allow(Permit),
    /// Refuse it.
    Deny(Denial),
}
