//! `glgate check-labels`: the CI job that checks a merge request's labels
//! (the check itself is `crate::labels`).

use std::process::ExitCode;

use super::exit::Exit;
use crate::labels::{LABELS_VARIABLE, LabelRules, evaluate, render, split_labels};

/// `glgate check-labels`: checks the labels in `CI_MERGE_REQUEST_LABELS`.
/// Exit 0 when the labels pass, 1 when they do not, 2 when the variable is unset (not a merge
/// request pipeline) or a prefix is empty.
pub(super) fn run(rules: &LabelRules, docs_url: Option<&str>) -> ExitCode {
    let value = std::env::var_os(LABELS_VARIABLE);
    for (flag, prefix) in [
        ("--intent-prefix", &rules.intent_prefix),
        ("--initiative-prefix", &rules.initiative_prefix),
        ("--effort-prefix", &rules.effort_prefix),
    ] {
        if prefix.trim().is_empty() {
            eprintln!("check-labels: {flag} must not be empty");
            return Exit::Error.into();
        }
    }
    let Some(value) = value else {
        eprintln!(
            "check-labels: {LABELS_VARIABLE} is not set. This check runs only in merge request \
             pipelines (rules: - if: $CI_PIPELINE_SOURCE == \"merge_request_event\"), where \
             GitLab sets it."
        );
        return Exit::Error.into();
    };
    let Ok(value) = value.into_string() else {
        eprintln!("check-labels: {LABELS_VARIABLE} is not valid UTF-8");
        return Exit::Error.into();
    };
    let verdict = evaluate(&split_labels(&value), rules);
    print!("{}", render(&verdict, docs_url));
    ExitCode::from(if verdict.problems.is_empty() {
        Exit::Ok
    } else {
        Exit::Found
    })
}
