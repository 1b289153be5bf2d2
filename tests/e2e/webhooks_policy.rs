//! `glgate webhooks test` and `glgate webhooks show` through the real
//! binary: the shipped Echoes relay policy against GitLab's documented
//! payloads (tests/fixtures/webhooks/), each outcome's output and exit code.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

const ECHOES: &str = "policies/echoes.webhooks.yaml";

fn glgate() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_glgate"));
    command.current_dir(env!("CARGO_MANIFEST_DIR"));
    command
}

struct Run {
    code: i32,
    out: String,
    err: String,
}

fn run(args: &[&str]) -> Run {
    let output = glgate().args(args).output().expect("glgate runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&output.stdout).into_owned(),
        err: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn fixture(name: &str) -> String {
    format!("tests/fixtures/webhooks/{name}")
}

/// The JSON printed after `payload:`.
fn payload(out: &str) -> serde_json::Value {
    let (_, json) = out.split_once("\npayload:\n").expect("a payload");
    serde_json::from_str(json).unwrap()
}

#[test]
fn a_push_passes_the_echoes_policy_without_emails() {
    let push = fixture("push.json");
    let r = run(&[
        "webhooks",
        "test",
        "--policy",
        ECHOES,
        "--event-file",
        &push,
        "--event",
        "Push Hook",
    ]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    assert!(r.err.is_empty(), "{}", r.err);
    for expected in [
        "decision:  pass\n",
        "kind:      push\n",
        "event:     Push Hook\n",
        "object:    project mike/diaspora (id 15)\n",
        "removed:   commits[*].author.email\n",
        "           user_email\n",
        "           commits[*].message\n",
    ] {
        assert!(r.out.contains(expected), "{expected:?} in:\n{}", r.out);
    }
    let delivered = payload(&r.out);
    assert_eq!(
        delivered["commits"][0]["title"],
        "Update Catalan translation to e38cb41."
    );
    assert_eq!(
        delivered["commits"][0]["author"],
        serde_json::json!({"name": "Jordi Mallach"})
    );
    assert!(delivered.get("user_email").is_none());
    let text = delivered.to_string();
    assert!(
        !text.contains("@softcatala.org") && !text.contains("john@example.com"),
        "{text}"
    );
}

#[test]
fn every_documented_payload_passes_or_drops_as_the_echoes_policy_says() {
    for (file, passes) in [
        ("push.json", true),
        ("tag_push.json", true),
        ("merge_request.json", true),
        ("note_merge_request.json", true),
        ("note_commit.json", true),
        ("pipeline.json", true),
        ("deployment.json", true),
        ("release.json", true),
        ("job.json", false),
        ("issue.json", false),
        ("member.json", false),
        ("subgroup.json", false),
        ("project_create.json", false),
    ] {
        // Without --event: the header GitLab sends with the body's kind.
        let r = run(&[
            "webhooks",
            "test",
            "-p",
            ECHOES,
            "--event-file",
            &fixture(file),
        ]);
        if passes {
            assert_eq!(r.code, 0, "{file}: {}{}", r.out, r.err);
            let text = payload(&r.out).to_string();
            assert!(
                !text.contains("\"email\"") && !text.contains("_email\""),
                "{file}: {text}"
            );
            assert!(!text.contains("\"variables\""), "{file}: {text}");
        } else {
            assert_eq!(r.code, 1, "{file}: {}{}", r.out, r.err);
            assert!(r.out.starts_with("decision:  drop\n"), "{file}: {}", r.out);
            assert!(
                r.out.contains(
                    "reason:    event_kind_not_allowed: the policy does not list this event kind"
                ),
                "{file}: {}",
                r.out
            );
            assert!(!r.out.contains("payload:"), "{file}: {}", r.out);
        }
    }
}

#[test]
fn pipeline_variables_never_pass() {
    let r = run(&[
        "webhooks",
        "test",
        "-p",
        ECHOES,
        "--event-file",
        &fixture("pipeline.json"),
        "--event",
        "Pipeline Hook",
    ]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    assert!(r.out.contains("object_attributes.variables\n"), "{}", r.out);
    let delivered = payload(&r.out);
    assert!(delivered["object_attributes"].get("variables").is_none());
    assert_eq!(delivered["object_attributes"]["status"], "success");
    assert!(
        !r.out.contains("NESTOR_PROD_ENVIRONMENT") && !r.out.contains("us-west-1"),
        "{}",
        r.out
    );
}

#[test]
fn a_header_that_disagrees_with_the_body_is_a_drop() {
    let r = run(&[
        "webhooks",
        "test",
        "-p",
        ECHOES,
        "--event-file",
        &fixture("push.json"),
        "--event",
        "Merge Request Hook",
    ]);
    assert_eq!(r.code, 1, "{}{}", r.out, r.err);
    assert!(r.out.contains("kind:      merge_request\n"), "{}", r.out);
    assert!(
        r.out.contains("object:    project mike/diaspora (id 15)\n"),
        "{}",
        r.out
    );
    assert!(
        r.out.contains("reason:    event_kind_mismatch: "),
        "{}",
        r.out
    );
    let r = run(&[
        "webhooks",
        "test",
        "-p",
        ECHOES,
        "--event-file",
        &fixture("push.json"),
        "--event",
        "Push Hook",
        "--quiet",
    ]);
    assert_eq!((r.code, r.out.as_str(), r.err.as_str()), (0, "", ""));
    let r = run(&[
        "webhooks",
        "test",
        "-p",
        ECHOES,
        "--event-file",
        &fixture("push.json"),
        "--event",
        "Tag Push Hook",
        "-q",
    ]);
    assert_eq!((r.code, r.out.as_str(), r.err.as_str()), (1, "", ""));
}

#[test]
fn a_payload_on_standard_input() {
    let mut child = glgate()
        .args([
            "webhooks",
            "test",
            "-p",
            ECHOES,
            "--event-file",
            "-",
            "--event",
            "Push Hook",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"not json").unwrap();
    let output = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(
        out.contains("reason:    payload_not_json: the body is not JSON"),
        "{out}"
    );
}

#[test]
fn unusable_input_is_exit_2_with_a_located_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.webhooks.yaml");
    std::fs::write(
        &bad,
        "version: 1\nevents:\n  - kind: merge_requests\n    remove: [\"commits[0].id\"]\n",
    )
    .unwrap();
    let bad = bad.to_str().unwrap();
    let r = run(&[
        "webhooks",
        "test",
        "-p",
        bad,
        "--event-file",
        &fixture("push.json"),
    ]);
    assert_eq!(r.code, 2, "{}{}", r.out, r.err);
    assert!(r.out.is_empty(), "{}", r.out);
    assert!(
        r.err.contains(&format!(
            "{bad}:3:11: events[0].kind: unknown event kind 'merge_requests'"
        )),
        "{}",
        r.err
    );
    assert!(
        r.err
            .contains("hint: merge_requests events are `kind: merge_request` here"),
        "{}",
        r.err
    );
    assert!(
        r.err.contains(&format!("{bad}:4:14: events[0].remove[0]:")),
        "{}",
        r.err
    );
    assert_eq!(run(&["webhooks", "show", "-p", bad]).code, 2);

    let r = run(&[
        "webhooks",
        "test",
        "-p",
        ECHOES,
        "--event-file",
        "tests/fixtures/webhooks/nothing.json",
    ]);
    assert_eq!(r.code, 2, "{}{}", r.out, r.err);
    assert!(
        r.err.contains("nothing.json: cannot read the payload"),
        "{}",
        r.err
    );

    // Without --event, a body of no known kind cannot be tested.
    let unknown = dir.path().join("unknown.json");
    std::fs::write(&unknown, r#"{"object_kind": "system"}"#).unwrap();
    let r = run(&[
        "webhooks",
        "test",
        "-p",
        ECHOES,
        "--event-file",
        unknown.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 2, "{}{}", r.out, r.err);
    assert!(r.err.contains("--event"), "{}", r.err);
}

#[test]
fn show_lists_what_the_echoes_policy_passes_and_removes() {
    let r = run(&["webhooks", "show", "--policy", ECHOES]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    assert!(
        r.out
            .contains("7 of 21 event kinds pass; any other is dropped"),
        "{}",
        r.out
    );
    for kind in [
        "merge_request",
        "push",
        "tag_push",
        "note",
        "pipeline",
        "deployment",
        "release",
    ] {
        assert!(
            r.out.contains(&format!("\n{kind}  (X-Gitlab-Event: ")),
            "{kind}: {}",
            r.out
        );
    }
    assert!(r.out.contains("remove       **.variables\n"), "{}", r.out);
    assert!(r.out.contains("dropped: issue (Issue Hook)"), "{}", r.out);
    assert!(r.out.contains("job (Job Hook)"), "{}", r.out);
}

#[test]
fn the_shipped_policy_names_its_schema() {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(ECHOES)).unwrap();
    assert!(
        text.starts_with("# yaml-language-server: $schema=../schemas/webhook-policy.schema.json\n")
    );
}
