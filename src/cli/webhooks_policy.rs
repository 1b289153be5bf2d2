//! `glgate webhooks test` and `glgate webhooks show`: a webhook payload
//! policy checked against one GitLab delivery, and listed. The decision is
//! `crate::webhooks::payload`'s, the same code the relay runs; here it is
//! printed and becomes an exit code (0 pass, 1 drop, 2 a usage or file error).

use std::fmt::Write as _;
use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use super::exit::Exit;
use crate::webhooks::payload::{Fields, KINDS, PayloadPolicy, describe_reason, infer_header};

/// Width of the labels of `webhooks test`'s output.
const LABEL: usize = 10;

fn read_payload(path: &Path) -> std::io::Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut body = Vec::new();
        std::io::stdin().read_to_end(&mut body)?;
        Ok(body)
    } else {
        std::fs::read(path)
    }
}

fn line(out: &mut String, label: &str, value: &str) {
    let label = if label.is_empty() {
        String::new()
    } else {
        format!("{label}:")
    };
    let _ = writeln!(out, "{label:<LABEL$} {value}");
}

fn lines(out: &mut String, label: &str, values: &[&str]) {
    for (i, value) in values.iter().enumerate() {
        line(out, if i == 0 { label } else { "" }, value);
    }
}

/// `glgate webhooks test --policy FILE --event-file PAYLOAD.json [--event HEADER]`:
/// prints the decision, the event's object, the fields removed and the
/// payload delivered. Exit 0 pass, 1 drop, 2 when the policy or the payload
/// cannot be used.
pub(super) fn test(
    policy_path: &Path,
    payload_path: &Path,
    event: Option<&str>,
    quiet: bool,
) -> ExitCode {
    let policy = match PayloadPolicy::load(policy_path) {
        Ok(policy) => policy,
        Err(problems) => {
            eprintln!("{problems}");
            return Exit::Error.into();
        }
    };
    let body = match read_payload(payload_path) {
        Ok(body) => body,
        Err(error) => {
            eprintln!(
                "{}: cannot read the payload: {error}",
                payload_path.display()
            );
            return Exit::Error.into();
        }
    };
    let (header, inferred) = match event {
        Some(header) => (header, false),
        None => match infer_header(&body) {
            Some(header) => (header, true),
            None => {
                eprintln!(
                    "{}: no object_kind or event_name glgate knows: give the delivery's header with --event, e.g. --event \"Push Hook\"",
                    payload_path.display()
                );
                return Exit::Error.into();
            }
        },
    };
    let result = policy.apply(Some(header), &body);
    if quiet {
        return if result.is_ok() {
            Exit::Ok
        } else {
            Exit::Found
        }
        .into();
    }
    let mut out = String::new();
    let header_line = if inferred {
        format!("{header} (from the body's kind; a real delivery carries its own)")
    } else {
        header.to_owned()
    };
    match result {
        Ok(minimized) => {
            line(&mut out, "decision", "pass");
            line(&mut out, "kind", &minimized.kind);
            line(&mut out, "event", &header_line);
            line(
                &mut out,
                "object",
                &minimized.object.as_ref().map_or_else(
                    || "none found: the relay drops this delivery (fail closed)".to_owned(),
                    ToString::to_string,
                ),
            );
            if minimized.removed.is_empty() {
                line(&mut out, "removed", "nothing");
            } else {
                let removed: Vec<&str> = minimized.removed.iter().map(String::as_str).collect();
                lines(&mut out, "removed", &removed);
            }
            let unmatched = policy.unmatched(&minimized.kind, &body);
            if !unmatched.is_empty() {
                lines(&mut out, "unmatched", &unmatched);
                line(&mut out, "", "(these paths name nothing in this payload)");
            }
            let pretty = serde_json::from_slice::<serde_json::Value>(&minimized.body)
                .ok()
                .and_then(|v| serde_json::to_string_pretty(&v).ok())
                .unwrap_or_else(|| String::from_utf8_lossy(&minimized.body).into_owned());
            let _ = writeln!(out, "payload:\n{pretty}");
            print!("{out}");
            Exit::Ok.into()
        }
        Err(dropped) => {
            line(&mut out, "decision", "drop");
            line(&mut out, "kind", &dropped.kind);
            line(&mut out, "event", &header_line);
            line(
                &mut out,
                "object",
                &dropped
                    .object
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), ToString::to_string),
            );
            line(
                &mut out,
                "reason",
                &format!("{}: {}", dropped.reason, describe_reason(dropped.reason)),
            );
            print!("{out}");
            Exit::Found.into()
        }
    }
}

/// `glgate webhooks show --policy FILE`: every listed kind with what it
/// removes or keeps, then the kinds it drops. Exit 0, or 2 when it does not load.
pub(super) fn show(path: &Path) -> ExitCode {
    let policy = match PayloadPolicy::load(path) {
        Ok(policy) => policy,
        Err(problems) => {
            eprintln!("{problems}");
            return Exit::Error.into();
        }
    };
    print!("{}", render(&policy));
    Exit::Ok.into()
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn render(policy: &PayloadPolicy) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "webhook payload policy {}", policy.source().display());
    if let Some(description) = policy.description() {
        let _ = writeln!(out, "{}", one_line(description));
    }
    let _ = writeln!(
        out,
        "{} of {} event kinds pass; any other is dropped (event_kind_not_allowed).",
        policy.events().len(),
        KINDS.len()
    );
    for rule in policy.events() {
        let kind = rule.kind();
        let _ = writeln!(
            out,
            "\n{}  (X-Gitlab-Event: {}; {} {}; belongs to a {})",
            kind.name,
            kind.header,
            kind.field,
            kind.values.join(" | "),
            kind.belongs_to
        );
        let mut table = String::new();
        if let Some(description) = rule.description() {
            let _ = writeln!(table, "  {:<12} {}", "description", one_line(description));
        }
        let (label, paths): (&str, Vec<&str>) = match rule.fields() {
            Fields::All => ("fields", vec!["all, unchanged"]),
            Fields::Remove(paths) => ("remove", paths.iter().map(|p| p.as_str()).collect()),
            Fields::Keep(paths) => {
                let mut kept: Vec<&str> = paths.iter().map(|p| p.as_str()).collect();
                kept.push(kind.field);
                ("keep only", kept)
            }
        };
        for (i, path) in paths.iter().enumerate() {
            let _ = writeln!(table, "  {:<12} {path}", if i == 0 { label } else { "" });
        }
        out.push_str(&table);
    }
    let dropped: Vec<String> = KINDS
        .iter()
        .filter(|k| policy.rule(k.name).is_none())
        .map(|k| format!("{} ({})", k.name, k.header))
        .collect();
    if !dropped.is_empty() {
        let _ = writeln!(out, "\ndropped: {}", dropped.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_lists_each_kind_its_fields_and_the_dropped_kinds() {
        let policy = PayloadPolicy::compile(
            Path::new("w.yaml"),
            "version: 1\ndescription: For\n  tests.\nevents:\n  - kind: push\n    remove: [user_email, \"**.email\"]\n  - kind: job\n    keep: [build_status]\n  - kind: release\n",
        )
        .unwrap();
        let shown = render(&policy);
        assert!(
            shown
                .starts_with("webhook payload policy w.yaml\nFor tests.\n3 of 21 event kinds pass"),
            "{shown}"
        );
        assert!(shown.contains("\npush  (X-Gitlab-Event: Push Hook; object_kind push; belongs to a project)\n  remove       user_email\n               **.email\n"), "{shown}");
        assert!(
            shown.contains("job  (X-Gitlab-Event: Job Hook; object_kind build;"),
            "{shown}"
        );
        assert!(
            shown.contains("  keep only    build_status\n               object_kind\n"),
            "{shown}"
        );
        assert!(shown.contains("release  (X-Gitlab-Event: Release Hook; object_kind release; belongs to a project)\n  fields       all, unchanged\n"), "{shown}");
        assert!(
            shown.contains("dropped: tag_push (Tag Push Hook), issue (Issue Hook)"),
            "{shown}"
        );
        assert!(!shown.contains("dropped: push"), "{shown}");
    }
}
