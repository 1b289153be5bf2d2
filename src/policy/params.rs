//! Parameter constraints, and the check of a request's merged parameters.

use std::collections::BTreeMap;

use regex::Regex;

use super::decision::Reason;
use super::raw::{RawParam, RawParamType};
use crate::canonical::{Param, ParamValue, printable};

/// Parameters GitLab reads as a credential, an impersonation, a method
/// override or a response format override (Grape reads `format` like a
/// `.json` path suffix; docs/gitlab.md §2). They are refused on every rule,
/// in any letter case.
pub(crate) const FORBIDDEN_PARAMS: &[&str] = &[
    "private_token",
    "access_token",
    "bearer_token",
    "job_token",
    "sudo",
    "_method",
    "format",
];

/// Largest compiled size of a policy regex, so that a policy cannot make
/// glgate allocate without bound.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// What a parameter's value must be.
#[derive(Clone, Debug)]
pub(crate) enum Check {
    /// Any scalar.
    Any,
    /// `true`, `false`, `1`, `0`.
    Bool,
    /// A decimal integer.
    Integer,
    /// A regex matching the whole value.
    Pattern {
        /// Compiled with `^(?:…)$` around the source.
        regex: Regex,
        /// As written in the policy.
        source: String,
    },
    /// One of a fixed set of values.
    OneOf(Vec<String>),
}

/// The compiled constraint on one parameter.
#[derive(Clone, Debug)]
pub(crate) struct ParamSpec {
    check: Check,
    required: bool,
    list: bool,
    nullable: bool,
    max_length: Option<usize>,
}

impl ParamSpec {
    /// Compiles a raw constraint; the error says what would be valid.
    pub(crate) fn compile(raw: &RawParam) -> Result<ParamSpec, String> {
        if raw.nullable && raw.required {
            return Err("a required parameter cannot also be nullable".to_owned());
        }
        let given = [
            raw.kind.is_some(),
            raw.pattern.is_some(),
            raw.one_of.is_some(),
        ];
        let check = match (&raw.kind, &raw.pattern, &raw.one_of) {
            (Some(kind), None, None) => match kind.value {
                RawParamType::Any => Check::Any,
                RawParamType::Bool => Check::Bool,
                RawParamType::Integer => Check::Integer,
            },
            (None, Some(pattern), None) => Check::Pattern {
                regex: compile_anchored(&pattern.value)?,
                source: pattern.value.clone(),
            },
            (None, None, Some(values)) if !values.value.is_empty() => {
                Check::OneOf(values.value.clone())
            }
            (None, None, Some(_)) => return Err("'enum' needs at least one value".to_owned()),
            _ if given.iter().filter(|g| **g).count() > 1 => {
                return Err("give only one of 'type', 'pattern' or 'enum'".to_owned());
            }
            _ => {
                return Err(
                    "give one of 'type' (any, bool, integer), 'pattern' (a regex) or 'enum' (a list of values)"
                        .to_owned(),
                );
            }
        };
        Ok(ParamSpec {
            check,
            required: raw.required,
            list: raw.list,
            nullable: raw.nullable,
            max_length: raw.max_length,
        })
    }

    /// Whether the request must carry the parameter.
    pub(crate) fn required(&self) -> bool {
        self.required
    }

    /// Whether JSON `null` is accepted.
    pub(crate) fn nullable(&self) -> bool {
        self.nullable
    }

    /// The constraint.
    pub(crate) fn check(&self) -> &Check {
        &self.check
    }

    /// What a valid value looks like, in words.
    pub(crate) fn describe(&self) -> String {
        let one = match &self.check {
            Check::Any => "any value".to_owned(),
            Check::Bool => "true or false".to_owned(),
            Check::Integer => "an integer".to_owned(),
            Check::Pattern { source, .. } => format!("a value matching /{source}/"),
            Check::OneOf(values) => format!("one of {}", values.join(", ")),
        };
        let one = match self.max_length {
            Some(max) => format!("{one} of at most {max} characters"),
            None => one,
        };
        if self.list {
            format!("{one} (or a list of them)")
        } else {
            one
        }
    }

    /// Whether one scalar value is valid.
    pub(crate) fn accepts_scalar(&self, value: &str) -> bool {
        if let Some(max) = self.max_length
            && value.chars().count() > max
        {
            return false;
        }
        match &self.check {
            Check::Any => true,
            Check::Bool => matches!(value, "true" | "false" | "1" | "0"),
            Check::Integer => {
                let digits = value.strip_prefix('-').unwrap_or(value);
                !digits.is_empty()
                    && digits.len() <= 18
                    && digits.bytes().all(|b| b.is_ascii_digit())
            }
            Check::Pattern { regex, .. } => regex.is_match(value),
            Check::OneOf(values) => values.iter().any(|v| v == value),
        }
    }

    /// Checks one parameter value. Lists, and comma-separated strings on list
    /// params, are checked element by element the way GitLab splits them.
    fn accepts(&self, value: &ParamValue) -> bool {
        match value {
            ParamValue::Null => self.nullable && !self.required,
            ParamValue::Scalar(text) if self.list => self.accepts_elements(std::iter::once(text)),
            ParamValue::Scalar(text) => self.accepts_scalar(text),
            ParamValue::List(items) => self.list && self.accepts_elements(items.iter()),
        }
    }

    /// Every element must be valid, and there must be at least one: an empty
    /// list can mean "remove all" to GitLab (`labels=` clears every label).
    fn accepts_elements<'a>(&self, items: impl Iterator<Item = &'a String>) -> bool {
        let mut count = 0;
        let all_valid = items
            .flat_map(|item| item.split(','))
            .map(ruby_strip)
            .filter(|element| !element.is_empty())
            .all(|element| {
                count += 1;
                self.accepts_scalar(element)
            });
        all_valid && count > 0
    }
}

/// Trims what Ruby's `String#strip` trims (GitLab splits comma lists with it):
/// ASCII whitespace and NUL only. Unicode spaces stay, so `\u{a0}echoes/x`
/// is checked as GitLab will store it.
pub(super) fn ruby_strip(text: &str) -> &str {
    text.trim_matches(|c: char| matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | '\0'))
}

/// Compiles `pattern` so that it must match a whole value.
pub(super) fn compile_anchored(pattern: &str) -> Result<Regex, String> {
    let build = |text: &str| {
        regex::RegexBuilder::new(text)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
    };
    // Check the pattern as written first, so an error points into it rather
    // than into the anchored wrapper.
    build(pattern).map_err(|e| {
        format!(
            "invalid regex ({})",
            e.to_string().replace('\n', "\n      ")
        )
    })?;
    build(&format!("^(?:{pattern})$")).map_err(|e| format!("invalid regex: {e}"))
}

/// The closed set of parameters a rule accepts.
#[derive(Clone, Debug, Default)]
pub(crate) struct ParamRules {
    specs: BTreeMap<String, ParamSpec>,
}

impl ParamRules {
    /// A closed set from compiled specs.
    pub(crate) fn new(specs: BTreeMap<String, ParamSpec>) -> ParamRules {
        ParamRules { specs }
    }

    /// The accepted parameters by name.
    pub(crate) fn specs(&self) -> &BTreeMap<String, ParamSpec> {
        &self.specs
    }

    /// Checks the merged parameters against the closed set.
    pub(crate) fn check(&self, params: &[&Param]) -> Result<(), Reason> {
        for param in params {
            let Some(spec) = self.specs.get(&param.name) else {
                return Err(Reason::UnknownParam {
                    name: printable(&param.name),
                    accepted: self.specs.keys().cloned().collect(),
                });
            };
            if !spec.accepts(&param.value) {
                return Err(Reason::InvalidParam {
                    name: param.name.clone(),
                    expected: spec.describe(),
                });
            }
        }
        for (name, spec) in &self.specs {
            if spec.required && !params.iter().any(|p| &p.name == name) {
                return Err(Reason::MissingParam { name: name.clone() });
            }
        }
        Ok(())
    }
}

/// Merges query and body parameters the way GitLab does, refusing what it
/// could read differently: credentials and overrides anywhere, and any name
/// sent twice.
pub(super) fn merge<'a>(query: &'a [Param], body: &'a [Param]) -> Result<Vec<&'a Param>, Reason> {
    let mut merged: Vec<&Param> = Vec::with_capacity(query.len() + body.len());
    for param in query.iter().chain(body) {
        if is_forbidden(&param.name) {
            return Err(Reason::ForbiddenParam {
                name: printable(&param.name),
            });
        }
        if merged.iter().any(|seen| seen.name == param.name) {
            return Err(Reason::DuplicateParam {
                name: printable(&param.name),
            });
        }
        merged.push(param);
    }
    Ok(merged)
}

fn is_forbidden(name: &str) -> bool {
    FORBIDDEN_PARAMS
        .iter()
        .any(|f| f.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::ParamSource;

    fn spec(yaml: &str) -> ParamSpec {
        let raw: RawParam = serde_saphyr::from_str(yaml).unwrap();
        ParamSpec::compile(&raw).unwrap()
    }

    fn scalar(name: &str, value: &str) -> Param {
        Param {
            name: name.into(),
            value: ParamValue::Scalar(value.into()),
            source: ParamSource::Body,
        }
    }

    #[test]
    fn patterns_are_anchored() {
        let s = spec("pattern: 'echoes/.+'");
        assert!(s.accepts_scalar("echoes/x"));
        assert!(!s.accepts_scalar("xechoes/x"));
        assert!(!s.accepts_scalar("echoes/x\nother"));
        let s = spec("pattern: 'a|b'");
        assert!(!s.accepts_scalar("ab"));
    }

    #[test]
    fn lists_check_every_element() {
        let s = spec("{pattern: 'echoes/.+', list: true}");
        assert!(s.accepts(&ParamValue::Scalar("echoes/a, echoes/b".into())));
        assert!(!s.accepts(&ParamValue::Scalar("echoes/a,bug".into())));
        assert!(s.accepts(&ParamValue::List(vec![
            "echoes/a".into(),
            "echoes/b".into()
        ])));
        assert!(!s.accepts(&ParamValue::List(vec!["echoes/a,bug".into()])));
        assert!(
            !s.accepts(&ParamValue::Scalar("".into())),
            "an empty list clears labels"
        );
        assert!(!s.accepts(&ParamValue::List(vec![])));
        assert!(
            !s.accepts(&ParamValue::Scalar("\u{a0}echoes/x".into())),
            "GitLab keeps Unicode spaces, so the label would not start with echoes/"
        );
        assert!(s.accepts(&ParamValue::Scalar(" echoes/x\t".into())));
        let single = spec("pattern: 'echoes/.+'");
        assert!(!single.accepts(&ParamValue::List(vec!["echoes/a".into()])));
    }

    #[test]
    fn compile_errors() {
        let raw: RawParam = serde_saphyr::from_str("{type: bool, pattern: x}").unwrap();
        assert!(ParamSpec::compile(&raw).unwrap_err().contains("only one"));
        let raw: RawParam = serde_saphyr::from_str("{required: true}").unwrap();
        assert!(
            ParamSpec::compile(&raw)
                .unwrap_err()
                .contains("give one of")
        );
        let raw: RawParam = serde_saphyr::from_str("{pattern: '('}").unwrap();
        assert!(
            ParamSpec::compile(&raw)
                .unwrap_err()
                .contains("invalid regex")
        );
    }

    #[test]
    fn merge_refuses_forbidden_and_duplicates() {
        let q = [scalar("Private_Token", "x")];
        assert!(matches!(merge(&q, &[]), Err(Reason::ForbiddenParam { .. })));
        let q = [scalar("name", "a")];
        let b = [scalar("name", "b")];
        assert!(matches!(merge(&q, &b), Err(Reason::DuplicateParam { .. })));
    }
}
