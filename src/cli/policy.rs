//! `glgate policy …`: `explain` one request, `test` case files, `show` a
//! policy's rules, `diff` two policies, `replay` an audit log, `permissions`
//! the GitLab token a policy needs. The reports
//! are built in `crate::review`; here they are printed and become exit codes
//! (0 nothing to report, 1 something to report, 2 a usage or file error).

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::exit::Exit;
use crate::canonical::RequestHead;
use crate::policy::{Decision, Policy, parse_body};
use crate::review::{cases, diff, normalize_target, permissions, replay, show};

/// `glgate policy explain --policy FILE METHOD TARGET`: prints the decision,
/// its rule and reason; exit 0 allow, 1 deny, 2 when the policy or the body
/// cannot be read.
pub(super) fn explain(
    policy_path: &Path,
    method: &str,
    target: &str,
    body_path: Option<&Path>,
    content_type: Option<&str>,
) -> ExitCode {
    let policy = match Policy::load(policy_path) {
        Ok(policy) => policy,
        Err(problems) => {
            eprintln!("{problems}");
            return Exit::Error.into();
        }
    };
    let body = match body_path.map(read_body).transpose() {
        Ok(body) => body.unwrap_or_default(),
        Err(error) => {
            eprintln!("cannot read the body: {error}");
            return Exit::Error.into();
        }
    };
    let target = normalize_target(target);
    let head = match RequestHead::parse(method, &target) {
        Ok(head) => head,
        Err(error) => {
            println!("decision: deny");
            println!("reason:   {}: {error}", error.code());
            return Exit::Found.into();
        }
    };
    let content_type = content_type.or((!body.is_empty()).then_some("application/json"));
    let decision = match parse_body(content_type, &body) {
        Ok(params) => policy.evaluate(&head, &params),
        Err(reason) => match policy.route(&head) {
            Ok(matched) => Decision::Deny(matched.refuse(reason)),
            Err(denial) => Decision::Deny(denial),
        },
    };
    match decision {
        Decision::Allow(permit) => {
            println!("decision: allow");
            println!("rule:     {}", permit.rule());
            println!("template: {}", permit.template());
            let bound: Vec<String> = permit
                .bindings()
                .iter()
                .map(|b| format!("{}={}", b.name, b.value))
                .collect();
            println!("params:   {}", bound.join(" "));
            if let Some(condition) = permit.owned_if() {
                println!(
                    "then:     glgate reads the existing resource and forwards only if its {condition}"
                );
            }
            if let Some(condition) = permit.response_filter() {
                println!("then:     list items are relayed only if their {condition}");
            }
            println!("reason:   allowed");
            Exit::Ok.into()
        }
        Decision::Deny(denial) => {
            println!("decision: deny");
            println!("rule:     {}", denial.rule.as_deref().unwrap_or("-"));
            println!("template: {}", denial.template.as_deref().unwrap_or("-"));
            println!("reason:   {}: {}", denial.reason.code(), denial.reason);
            Exit::Found.into()
        }
    }
}

fn read_body(path: &Path) -> std::io::Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut body = Vec::new();
        std::io::stdin().read_to_end(&mut body)?;
        Ok(body)
    } else {
        std::fs::read(path)
    }
}

/// `glgate policy test FILE…`: runs every file, prints one line per failing
/// case, then `N passed, M failed`. Exit 0 when all pass, 1 when a case fails, 2 when a file cannot be used
/// (its problems are printed, located, and its cases are not run).
pub(super) fn test(paths: &[PathBuf]) -> ExitCode {
    let mut report = cases::Report::default();
    let mut broken = false;
    for path in paths {
        match cases::TestFile::load(path) {
            Ok(file) => file.run(&mut report),
            Err(problems) => {
                eprintln!("{problems}");
                broken = true;
            }
        }
    }
    for failure in &report.failures {
        println!("{failure}");
    }
    println!("{} passed, {} failed", report.passed, report.failures.len());
    ExitCode::from(if broken {
        Exit::Error
    } else if report.failures.is_empty() {
        Exit::Ok
    } else {
        Exit::Found
    })
}

/// `glgate policy show FILE`: prints the policy's rules; exit 0, or 2 when it
/// does not load.
pub(super) fn show(path: &Path) -> ExitCode {
    match Policy::load(path) {
        Ok(policy) => {
            print!("{}", show::render(&policy));
            Exit::Ok.into()
        }
        Err(problems) => {
            eprintln!("{problems}");
            Exit::Error.into()
        }
    }
}

/// `glgate policy permissions FILE`: prints the narrowest GitLab token the
/// policy needs; exit 0 when GitLab's table maps every endpoint, 1 when some
/// are unknown or uncertain, 2 when the policy does not load.
pub(super) fn permissions(path: &Path) -> ExitCode {
    match Policy::load(path) {
        Ok(policy) => {
            let report = permissions::report(&policy);
            print!("{}", permissions::render(&report));
            if report.unknown().next().is_some() || report.uncertain().next().is_some() {
                Exit::Found.into()
            } else {
                Exit::Ok.into()
            }
        }
        Err(problems) => {
            eprintln!("{problems}");
            Exit::Error.into()
        }
    }
}

/// `glgate policy diff OLD NEW`: prints the differences of two policies: exit
/// 0 when they allow the same, 1 when they differ, 2 when either does not load.
pub(super) fn diff(old_path: &Path, new_path: &Path) -> ExitCode {
    let old = Policy::load(old_path);
    let new = Policy::load(new_path);
    let (old, new) = match (old, new) {
        (Ok(old), Ok(new)) => (old, new),
        (old, new) => {
            for problems in [old.err(), new.err()].into_iter().flatten() {
                eprintln!("{problems}");
            }
            return Exit::Error.into();
        }
    };
    let diff = diff::compare(&old, &new);
    print!("{}", diff.render(&old, &new));
    ExitCode::from(if diff.is_empty() {
        Exit::Ok
    } else {
        Exit::Found
    })
}

/// `glgate policy replay --policy FILE AUDIT_LOG`: replays the log (`-` for
/// standard input) against the policy and prints the report. Exit 0 when no decision changes, 1 when one does, 2 on an error.
pub(super) fn replay(policy_path: &Path, log_path: &Path, client: Option<&str>) -> ExitCode {
    let policy = match Policy::load(policy_path) {
        Ok(policy) => policy,
        Err(problems) => {
            eprintln!("{problems}");
            return Exit::Error.into();
        }
    };
    let reader: Box<dyn Read> = if log_path == Path::new("-") {
        Box::new(std::io::stdin())
    } else {
        match std::fs::File::open(log_path) {
            Ok(file) => Box::new(file),
            Err(source) => {
                eprintln!(
                    "{}",
                    replay::ReplayError::Read {
                        path: log_path.display().to_string(),
                        source
                    }
                );
                return Exit::Error.into();
            }
        }
    };
    let replay = match replay::replay(&policy, BufReader::new(reader), client) {
        Ok(replay) => replay,
        Err(source) => {
            eprintln!(
                "{}",
                replay::ReplayError::Read {
                    path: log_path.display().to_string(),
                    source
                }
            );
            return Exit::Error.into();
        }
    };
    print!("{}", replay.render(&policy, log_path, client));
    ExitCode::from(if replay.changes.is_empty() {
        Exit::Ok
    } else {
        Exit::Found
    })
}
