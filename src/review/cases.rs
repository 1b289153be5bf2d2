//! `glgate policy test FILE...`: table-driven tests of a policy's decisions.
//!
//! A test file names its policy (relative to the test file) and lists cases:
//!
//! ```yaml
//! policy: echoes.yaml
//! cases:
//!   - name: hooks to another host are refused
//!     method: POST
//!     target: /projects/101/hooks            # with or without /api/v4
//!     body: { url: "https://evil.example/" } # a mapping is sent as JSON
//!     expect: deny
//!     rule: project-hooks.create             # optional on denies
//!     reason: invalid_param                  # required on denies
//!   - name: merge request labels
//!     method: PUT
//!     target: /projects/5/merge_requests/3
//!     content_type: application/x-www-form-urlencoded
//!     body: add_labels=echoes%2Fintent%3A%20fix  # a string is sent as is
//!     expect: allow
//!     rule: merge-requests.labels            # required on allows
//! ```
//!
//! Each case is decided as [`super::decide`] decides it. A mapping body is
//! sent as JSON, or form-encoded when `content_type` says form; a string body
//! is sent as written. The file is checked before any case runs: unknown
//! keys, a deny without a reason, an unknown reason code or rule id are file
//! errors, located.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;

use super::{BODY_TOO_LARGE, Outcome, POLICY_REASON_CODES, TARGET_REASON_CODES, decide};
use crate::diagnostic::{Diagnostic, Diagnostics, Position, nearest, parse_yaml, read_source};
use crate::policy::Policy;

/// A test file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTestFile {
    /// The policy under test, relative to the test file.
    policy: Spanned<String>,
    /// What the file tests (for the reader only).
    #[serde(default, rename = "description")]
    _description: Option<String>,
    /// The cases.
    cases: Spanned<Vec<Spanned<RawCase>>>,
}

/// One case as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    name: Spanned<String>,
    method: Spanned<String>,
    target: Spanned<String>,
    #[serde(default)]
    body: Option<Spanned<Value>>,
    #[serde(default)]
    content_type: Option<Spanned<String>>,
    expect: Spanned<Expect>,
    #[serde(default)]
    rule: Option<Spanned<String>>,
    #[serde(default)]
    reason: Option<Spanned<String>>,
}

/// The expected decision.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Expect {
    /// The policy forwards the request.
    Allow,
    /// The policy refuses it.
    Deny,
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Expect::Allow => "allow",
            Expect::Deny => "deny",
        })
    }
}

/// One checked case, ready to run.
#[derive(Clone, Debug)]
pub(crate) struct Case {
    /// Where it is written.
    pub position: Position,
    /// Its name.
    pub name: String,
    /// The request method.
    pub method: String,
    /// The request target.
    pub target: String,
    /// The content type sent, if any.
    pub content_type: Option<String>,
    /// The body bytes sent.
    pub body: Vec<u8>,
    /// The expected decision.
    pub expect: Expect,
    /// The expected rule, if given.
    pub rule: Option<String>,
    /// The expected reason code, if given.
    pub reason: Option<String>,
}

/// A loaded test file: its policy and its checked cases.
#[derive(Debug)]
pub(crate) struct TestFile {
    /// The test file.
    pub path: PathBuf,
    /// The policy under test.
    pub policy: Policy,
    /// The cases, in file order.
    pub cases: Vec<Case>,
}

/// A case whose decision was not the expected one.
#[derive(Clone, Debug)]
pub(crate) struct Failure {
    /// The test file.
    pub file: PathBuf,
    /// The case.
    pub case: Case,
    /// What the policy decided.
    pub got: Outcome,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let case = &self.case;
        let mut expected = case.expect.to_string();
        let details: Vec<String> = [
            case.rule.as_ref().map(|rule| format!("rule {rule}")),
            case.reason.clone(),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !details.is_empty() {
            expected = format!("{expected} ({})", details.join(", "));
        }
        write!(
            f,
            "FAIL {}:{}: {}: {} {}: expected {expected}, got {}",
            self.file.display(),
            case.position.line,
            case.name,
            case.method,
            case.target,
            self.got.summary()
        )
    }
}

/// The result of running test files.
#[derive(Debug, Default)]
pub(crate) struct Report {
    /// Cases that passed.
    pub passed: usize,
    /// Cases that failed, in file order.
    pub failures: Vec<Failure>,
}

impl TestFile {
    /// Reads a test file and the policy it names; every problem is reported, located.
    pub(crate) fn load(path: &Path) -> Result<TestFile, Diagnostics> {
        let text = read_source(path, "policy test")?;
        TestFile::compile(path, &text).map_err(|problems| problems.with_source(path, &text))
    }

    fn compile(path: &Path, text: &str) -> Result<TestFile, Diagnostics> {
        let raw: RawTestFile = parse_yaml(path, text)?;
        let folder = path.parent().unwrap_or_else(|| Path::new(""));
        let policy_path = folder.join(&raw.policy.value);
        let policy = Policy::load(&policy_path).map_err(|mut problems| {
            problems.0.insert(
                0,
                Diagnostic::new(
                    path,
                    Position::of(&raw.policy),
                    "policy",
                    format!(
                        "the policy {} does not load (problems below)",
                        policy_path.display()
                    ),
                ),
            );
            problems
        })?;
        let mut problems = Diagnostics::default();
        let mut names: BTreeMap<String, Position> = BTreeMap::new();
        let mut cases = Vec::with_capacity(raw.cases.value.len());
        if raw.cases.value.is_empty() {
            problems.push(Diagnostic::new(
                path,
                Position::of(&raw.cases),
                "cases",
                "a test file needs at least one case",
            ));
        }
        for (index, spanned) in raw.cases.value.into_iter().enumerate() {
            let key = format!("cases[{index}]");
            let position = Position::of(&spanned);
            let name = &spanned.value.name;
            if let Some(first) = names.get(&name.value) {
                problems.push(
                    Diagnostic::new(
                        path,
                        Position::of(name),
                        format!("{key}.name"),
                        format!("case name '{}' is used twice", name.value),
                    )
                    .hint(format!("first used at line {}", first.line)),
                );
            } else {
                names.insert(name.value.clone(), Position::of(name));
            }
            if let Some(case) =
                check_case(path, &key, position, spanned.value, &policy, &mut problems)
            {
                cases.push(case);
            }
        }
        problems.into_result(TestFile {
            path: path.to_path_buf(),
            policy,
            cases,
        })
    }

    /// Runs every case, adding to `report`.
    pub(crate) fn run(&self, report: &mut Report) {
        for case in &self.cases {
            let got = decide(
                &self.policy,
                &case.method,
                &case.target,
                case.content_type.as_deref(),
                &case.body,
            );
            if case.matches(&got) {
                report.passed += 1;
            } else {
                report.failures.push(Failure {
                    file: self.path.clone(),
                    case: case.clone(),
                    got,
                });
            }
        }
    }
}

impl Case {
    /// Whether `got` is what the case expects.
    pub(crate) fn matches(&self, got: &Outcome) -> bool {
        let decision = got.allow == (self.expect == Expect::Allow);
        let rule = self
            .rule
            .as_ref()
            .is_none_or(|rule| got.rule.as_ref() == Some(rule));
        let reason = self.reason.as_ref().is_none_or(|code| &got.reason == code);
        decision && rule && reason
    }
}

/// Every reason code a case may expect.
fn known_reasons() -> impl Iterator<Item = &'static str> {
    POLICY_REASON_CODES
        .iter()
        .chain(TARGET_REASON_CODES)
        .copied()
        .chain(std::iter::once(BODY_TOO_LARGE))
}

fn check_case(
    path: &Path,
    key: &str,
    position: Position,
    raw: RawCase,
    policy: &Policy,
    problems: &mut Diagnostics,
) -> Option<Case> {
    let before = problems.0.len();
    let mut problem = |at: Position, field: &str, message: String, hint: Option<String>| {
        let mut diagnostic = Diagnostic::new(path, at, format!("{key}.{field}"), message);
        diagnostic.hint = hint;
        problems.push(diagnostic);
    };
    if raw.name.value.trim().is_empty() {
        problem(
            Position::of(&raw.name),
            "name",
            "a case needs a name".into(),
            None,
        );
    }
    let expect = raw.expect.value;
    match (expect, &raw.rule, &raw.reason) {
        (Expect::Allow, None, _) => problem(
            Position::of(&raw.expect),
            "rule",
            "an allow case names the rule that allows it".into(),
            Some("add 'rule: <rule id>'".into()),
        ),
        (Expect::Allow, _, Some(reason)) if reason.value != "allowed" => problem(
            Position::of(reason),
            "reason",
            "an allow case has no reason code".into(),
            Some("remove 'reason', or expect deny".into()),
        ),
        (Expect::Deny, _, None) => problem(
            Position::of(&raw.expect),
            "reason",
            "a deny case names the reason code it expects".into(),
            Some(format!(
                "add 'reason: <code>', one of: {}",
                known_reasons().collect::<Vec<_>>().join(", ")
            )),
        ),
        (Expect::Deny, _, Some(reason)) if !known_reasons().any(|c| c == reason.value) => {
            let hint = match nearest(&reason.value, known_reasons()) {
                Some(near) => format!("did you mean {near}?"),
                None => format!("one of: {}", known_reasons().collect::<Vec<_>>().join(", ")),
            };
            problem(
                Position::of(reason),
                "reason",
                format!("unknown reason code '{}'", reason.value),
                Some(hint),
            );
        }
        _ => {}
    }
    if let Some(rule) = &raw.rule
        && !policy.rules().iter().any(|r| r.id() == rule.value)
    {
        let hint = nearest(&rule.value, policy.rules().iter().map(|r| r.id()))
            .map(|near| format!("did you mean {near}?"));
        problem(
            Position::of(rule),
            "rule",
            format!("policy '{}' has no rule '{}'", policy.name(), rule.value),
            hint,
        );
    }
    let content_type = raw.content_type.as_ref().map(|c| c.value.clone());
    let body = match &raw.body {
        None => Vec::new(),
        Some(body) => match encode_body(&body.value, content_type.as_deref()) {
            Ok(bytes) => bytes,
            Err(message) => {
                problem(Position::of(body), "body", message, None);
                Vec::new()
            }
        },
    };
    (problems.0.len() == before).then(|| Case {
        position,
        name: raw.name.value,
        method: raw.method.value,
        target: raw.target.value,
        content_type: content_type
            .or_else(|| (!body.is_empty()).then(|| "application/json".to_owned())),
        body,
        expect,
        rule: raw.rule.map(|r| r.value),
        reason: raw
            .reason
            .map(|r| r.value)
            .filter(|r| expect == Expect::Deny || r != "allowed"),
    })
}

/// The body bytes for a case: a string as written; anything else as JSON,
/// or, for a form content type, a mapping form-encoded (lists as `name[]=`).
fn encode_body(body: &Value, content_type: Option<&str>) -> Result<Vec<u8>, String> {
    let is_form = content_type.is_some_and(|c| {
        c.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    });
    match body {
        Value::String(text) => Ok(text.as_bytes().to_vec()),
        Value::Object(fields) if is_form => {
            let mut pairs = Vec::new();
            for (name, value) in fields {
                match value {
                    Value::Array(items) => {
                        for item in items {
                            pairs.push(form_pair(&format!("{name}[]"), item)?);
                        }
                    }
                    other => pairs.push(form_pair(name, other)?),
                }
            }
            Ok(pairs.join("&").into_bytes())
        }
        _ if is_form => Err("a form body is a mapping or a string (sent as written)".into()),
        other => serde_json::to_vec(other).map_err(|e| format!("cannot encode the body: {e}")),
    }
}

fn form_pair(name: &str, value: &Value) -> Result<String, String> {
    let text = match value {
        Value::String(text) => text.clone(),
        Value::Bool(_) | Value::Number(_) => value.to_string(),
        _ => {
            return Err(format!(
                "form field '{name}' must be a scalar or a list of scalars"
            ));
        }
    };
    Ok(format!("{}={}", form_encode(name), form_encode(&text)))
}

/// Percent-encodes everything but unreserved characters (a space is `%20`).
fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_bodies_are_encoded() {
        let body = serde_json::json!({"add_labels": ["echoes/a b", "echoes/c"], "n": 1});
        let form = encode_body(&body, Some("application/x-www-form-urlencoded")).unwrap();
        assert_eq!(
            String::from_utf8(form).unwrap(),
            "add_labels%5B%5D=echoes%2Fa%20b&add_labels%5B%5D=echoes%2Fc&n=1"
        );
        assert!(
            encode_body(
                &serde_json::json!([1]),
                Some("application/x-www-form-urlencoded")
            )
            .is_err()
        );
        assert_eq!(
            encode_body(&serde_json::json!({"a": null}), None).unwrap(),
            br#"{"a":null}"#
        );
        assert_eq!(encode_body(&serde_json::json!("{"), None).unwrap(), b"{");
    }
}
