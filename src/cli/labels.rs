//! `glgate check-labels`: the CI job that checks a merge request's labels
//! (the check itself is `crate::labels`).

use std::process::ExitCode;

use super::exit::Exit;
use crate::labels::{LABELS_VARIABLE, LabelRules, evaluate, render, split_labels};

/// `glgate check-labels`: checks the labels in `CI_MERGE_REQUEST_LABELS`.
/// Exit 0 when the labels pass, 1 when they do not (no labels at all included), 2 outside a
/// merge request pipeline or when a prefix is empty.
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
    // GitLab sets the variable only when the merge request has labels: in a
    // merge request pipeline, its absence means no labels at all.
    let value = match value {
        Some(value) => value,
        None if in_merge_request_pipeline() => std::ffi::OsString::new(),
        None => {
            eprintln!(
                "check-labels: {LABELS_VARIABLE} is not set. This check runs only in merge \
                 request pipelines (rules: - if: $CI_PIPELINE_SOURCE == \"merge_request_event\"), \
                 where GitLab sets it when the merge request has labels."
            );
            return Exit::Error.into();
        }
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

/// Whether GitLab runs this job in a merge request pipeline
/// (`CI_PIPELINE_SOURCE=merge_request_event`, or `CI_MERGE_REQUEST_IID` set).
fn in_merge_request_pipeline() -> bool {
    std::env::var("CI_PIPELINE_SOURCE").is_ok_and(|source| source == "merge_request_event")
        || std::env::var_os("CI_MERGE_REQUEST_IID").is_some()
}
