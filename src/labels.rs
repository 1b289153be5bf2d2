//! `glgate check-labels`: fail a merge request pipeline when the merge
//! request lacks the labels Echoes reads.
//!
//! Echoes asks for at least one `echoes/intent…` or `echoes/initiative…`
//! label (why the change exists, or which initiative it serves), and
//! optionally one `echoes/effort…` label whose value is XS, S, M, L or XL
//! (Echoes writes them `echoes/effort: S`). GitLab gives a merge request
//! pipeline its labels in `CI_MERGE_REQUEST_LABELS`, comma-separated, as
//! they were when the pipeline was created.
//!
//! (Writing to a `String` cannot fail, hence the `let _ = writeln!`.)

use std::fmt::{self, Write as _};

/// The variable GitLab sets in merge request pipelines.
pub(crate) const LABELS_VARIABLE: &str = "CI_MERGE_REQUEST_LABELS";
/// Where the failure message points when no `--docs-url` is given.
pub(crate) const DEFAULT_DOCS_URL: &str = "https://docs.echoeshq.com/";
/// Default prefix of intent labels.
pub(crate) const DEFAULT_INTENT_PREFIX: &str = "echoes/intent";
/// Default prefix of initiative labels.
pub(crate) const DEFAULT_INITIATIVE_PREFIX: &str = "echoes/initiative";
/// Default prefix of effort labels.
pub(crate) const DEFAULT_EFFORT_PREFIX: &str = "echoes/effort";
/// The effort values Echoes knows.
pub(crate) const EFFORT_VALUES: &[&str] = &["XS", "S", "M", "L", "XL"];

/// What a merge request's labels must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LabelRules {
    /// Prefix of intent labels, e.g. `echoes/intent`.
    pub intent_prefix: String,
    /// Prefix of initiative labels, e.g. `echoes/initiative`.
    pub initiative_prefix: String,
    /// Prefix of effort labels, e.g. `echoes/effort`.
    pub effort_prefix: String,
    /// Whether exactly one valid effort label is required.
    pub require_effort: bool,
}

impl Default for LabelRules {
    fn default() -> LabelRules {
        LabelRules {
            intent_prefix: DEFAULT_INTENT_PREFIX.to_owned(),
            initiative_prefix: DEFAULT_INITIATIVE_PREFIX.to_owned(),
            effort_prefix: DEFAULT_EFFORT_PREFIX.to_owned(),
            require_effort: false,
        }
    }
}

/// One thing wrong with the labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Problem {
    /// No label starts with the intent or the initiative prefix.
    NoPurpose {
        /// The intent prefix.
        intent_prefix: String,
        /// The initiative prefix.
        initiative_prefix: String,
    },
    /// `--require-effort`, and no effort label.
    NoEffort {
        /// The effort prefix.
        effort_prefix: String,
    },
    /// An effort label whose value is not one of [`EFFORT_VALUES`].
    InvalidEffort {
        /// The label as written.
        label: String,
    },
    /// More than one effort label.
    ManyEfforts {
        /// The effort labels.
        labels: Vec<String>,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sizes = EFFORT_VALUES.join(", ");
        match self {
            Problem::NoPurpose {
                intent_prefix,
                initiative_prefix,
            } => write!(
                f,
                "missing: a label starting with '{intent_prefix}' (why this change exists) or \
                 '{initiative_prefix}' (the initiative it serves); add at least one"
            ),
            Problem::NoEffort { effort_prefix } => write!(
                f,
                "missing: an effort label, e.g. '{effort_prefix}: M' (one of {sizes})"
            ),
            Problem::InvalidEffort { label } => {
                write!(f, "invalid: '{label}': the effort must be one of {sizes}")
            }
            Problem::ManyEfforts { labels } => write!(
                f,
                "too many: {} effort labels ({}); keep exactly one",
                labels.len(),
                labels.join(", ")
            ),
        }
    }
}

/// The labels read, and what they lack.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// Every label, as GitLab listed them.
    pub labels: Vec<String>,
    /// The intent and initiative labels found.
    pub purpose: Vec<String>,
    /// The effort value, when exactly one valid effort label is present.
    pub effort: Option<String>,
    /// What is wrong; empty when the labels pass.
    pub problems: Vec<Problem>,
}

/// Splits `CI_MERGE_REQUEST_LABELS` (comma-separated; names cannot hold a comma).
pub(crate) fn split_labels(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|label| !label.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The value of an effort label: what follows the prefix and an optional
/// separator (`: `, `::`, `/`, `=`), trimmed.
pub(crate) fn effort_value<'a>(label: &'a str, effort_prefix: &str) -> Option<&'a str> {
    let rest = label.strip_prefix(effort_prefix)?;
    Some(
        rest.trim_start_matches(|c: char| matches!(c, ':' | '/' | '=') || c.is_whitespace())
            .trim(),
    )
}

/// Checks `labels` against `rules`.
pub(crate) fn evaluate(labels: &[String], rules: &LabelRules) -> Verdict {
    let purpose: Vec<String> = labels
        .iter()
        .filter(|l| l.starts_with(&rules.intent_prefix) || l.starts_with(&rules.initiative_prefix))
        .cloned()
        .collect();
    let efforts: Vec<(&String, &str)> = labels
        .iter()
        .filter_map(|l| effort_value(l, &rules.effort_prefix).map(|value| (l, value)))
        .collect();
    let mut problems = Vec::new();
    if purpose.is_empty() {
        problems.push(Problem::NoPurpose {
            intent_prefix: rules.intent_prefix.clone(),
            initiative_prefix: rules.initiative_prefix.clone(),
        });
    }
    for (label, value) in &efforts {
        if !EFFORT_VALUES.contains(value) {
            problems.push(Problem::InvalidEffort {
                label: (*label).clone(),
            });
        }
    }
    match efforts.as_slice() {
        [] if rules.require_effort => problems.push(Problem::NoEffort {
            effort_prefix: rules.effort_prefix.clone(),
        }),
        [] | [_] => {}
        many => problems.push(Problem::ManyEfforts {
            labels: many.iter().map(|(label, _)| (*label).clone()).collect(),
        }),
    }
    let effort = match efforts.as_slice() {
        [(_, value)] if EFFORT_VALUES.contains(value) => Some((*value).to_owned()),
        _ => None,
    };
    Verdict {
        labels: labels.to_vec(),
        purpose,
        effort,
        problems,
    }
}

/// The report for a verdict: one line on success; what is missing, the
/// labels seen and where to read more on failure.
pub(crate) fn render(verdict: &Verdict, docs_url: Option<&str>) -> String {
    if verdict.problems.is_empty() {
        let effort = verdict
            .effort
            .as_ref()
            .map(|e| format!("; effort {e}"))
            .unwrap_or_default();
        return format!(
            "check-labels: ok ({}{effort})\n",
            verdict.purpose.join(", ")
        );
    }
    let mut out = String::from("check-labels: this merge request lacks the labels Echoes reads:\n");
    for problem in &verdict.problems {
        let _ = writeln!(out, "  - {problem}");
    }
    let seen = if verdict.labels.is_empty() {
        "(none)".to_owned()
    } else {
        verdict.labels.join(", ")
    };
    let _ = writeln!(out, "labels on this merge request: {seen}");
    match docs_url {
        Some(url) => {
            let _ = writeln!(out, "what these labels mean: {url}");
        }
        None => {
            let _ = writeln!(
                out,
                "what these labels mean: {DEFAULT_DOCS_URL} (the default; --docs-url points to your own guide)"
            );
        }
    }
    out.push_str(
        "labels are read when the pipeline is created: after changing them, run a new pipeline.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(labels: &str, require_effort: bool) -> Verdict {
        evaluate(
            &split_labels(labels),
            &LabelRules {
                require_effort,
                ..LabelRules::default()
            },
        )
    }

    #[test]
    fn effort_values_after_separators() {
        for label in [
            "echoes/effort: S",
            "echoes/effort:S",
            "echoes/effort::S",
            "echoes/effort/S",
            "echoes/effort S",
        ] {
            assert_eq!(effort_value(label, "echoes/effort"), Some("S"), "{label}");
        }
        assert_eq!(effort_value("echoes/intent: x", "echoes/effort"), None);
        assert_eq!(effort_value("echoes/effort", "echoes/effort"), Some(""));
    }

    #[test]
    fn verdicts() {
        assert!(check("echoes/intent: Feature", false).problems.is_empty());
        assert!(check("echoes/initiative: Billing", true).problems.len() == 1);
        let v = check(" echoes/intent: Fix , echoes/effort: XL ", true);
        assert!(v.problems.is_empty(), "{v:?}");
        assert_eq!(v.effort.as_deref(), Some("XL"));
        assert_eq!(
            check("echoes/intent: Fix,echoes/effort: XXL", false).problems,
            [Problem::InvalidEffort {
                label: "echoes/effort: XXL".into()
            }]
        );
        assert!(matches!(
            check(
                "echoes/intent: Fix,echoes/effort: S,echoes/effort: M",
                false
            )
            .problems[..],
            [Problem::ManyEfforts { .. }]
        ));
        assert!(matches!(
            check("", false).problems[..],
            [Problem::NoPurpose { .. }]
        ));
    }
}
