//! Operator tooling, run as the real binary: `policy test`, `policy show`,
//! `policy diff`, `policy replay` and `check-labels`, each with its success
//! and failure output and exit codes.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use glgate::audit::AuditEvent;

const ECHOES: &str = "policies/echoes.yaml";
const ECHOES_TESTS: &str = "policies/echoes.tests.yaml";

fn glgate() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_glgate"));
    command.current_dir(env!("CARGO_MANIFEST_DIR"));
    command.env_remove("CI_MERGE_REQUEST_LABELS");
    command
}

struct Run {
    code: i32,
    out: String,
    err: String,
}

fn output(command: &mut Command) -> Run {
    let output = command.output().expect("glgate runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&output.stdout).into_owned(),
        err: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn run(args: &[&str]) -> Run {
    output(glgate().args(args))
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn echoes_text() -> String {
    std::fs::read_to_string(repo(ECHOES)).unwrap()
}

fn rule_ids(policy: &str) -> Vec<String> {
    policy
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- id: "))
        .map(str::to_owned)
        .collect()
}

/// `text` with `from` replaced, which must occur exactly once.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?}");
    text.replacen(from, to, 1)
}

/// The echoes policy without the rule `id` (up to the next rule or section).
fn without_rule(policy: &str, id: &str) -> String {
    let start = policy.find(&format!("  - id: {id}\n")).unwrap();
    let rest = &policy[start + 1..];
    let end = [rest.find("\n  - id: "), rest.find("\n  # ---")]
        .into_iter()
        .flatten()
        .min()
        .map_or(policy.len(), |i| start + 1 + i + 1);
    format!("{}{}", &policy[..start], &policy[end..])
}

// --- policy test ---------------------------------------------------------------------

#[test]
fn policy_test_passes_on_the_shipped_echoes_tests() {
    let r = run(&["policy", "test", ECHOES_TESTS]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    let lines: Vec<&str> = r.out.lines().collect();
    assert_eq!(lines.len(), 1, "only the summary when all pass:\n{}", r.out);
    let passed: usize = lines[0]
        .strip_suffix(" passed, 0 failed")
        .expect("summary line")
        .parse()
        .unwrap();
    assert!(passed >= 80, "{passed} cases");

    // Every rule of the policy has at least one allow case.
    let tests = std::fs::read_to_string(repo(ECHOES_TESTS)).unwrap();
    for id in rule_ids(&echoes_text()) {
        let allowed = tests.split("\n  - name: ").any(|case| {
            let lines: Vec<&str> = case.lines().map(str::trim).collect();
            lines.contains(&"expect: allow") && lines.contains(&format!("rule: {id}").as_str())
        });
        assert!(allowed, "no allow case for rule {id}");
    }
}

#[test]
fn policy_test_reports_each_failing_case_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wrong.tests.yaml");
    std::fs::write(
        &file,
        format!(
            r#"policy: {}
cases:
  - name: passes
    method: GET
    target: /user
    expect: allow
    rule: self.read
  - name: project delete expected allowed
    method: DELETE
    target: /projects/5
    expect: allow
    rule: projects.read
  - name: wrong reason
    method: PUT
    target: /projects/5/merge_requests/3
    body: {{ add_labels: bug }}
    expect: deny
    reason: unknown_param
  - name: wrong rule
    method: GET
    target: /users/1
    expect: allow
    rule: self.read
  - name: hook elsewhere expected allowed
    method: POST
    target: /api/v4/projects/5/hooks
    body: {{ url: "https://evil.example/" }}
    expect: allow
    rule: project-hooks.create
"#,
            repo(ECHOES).display()
        ),
    )
    .unwrap();
    let r = run(&["policy", "test", file.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}{}", r.out, r.err);
    let f = file.display();
    let expected = [
        format!(
            "FAIL {f}:8: project delete expected allowed: DELETE /projects/5: expected allow (rule projects.read), got deny (method_not_allowed: method DELETE is not allowed here (allowed: GET, HEAD))"
        ),
        format!(
            "FAIL {f}:13: wrong reason: PUT /projects/5/merge_requests/3: expected deny (unknown_param), got deny (rule merge-requests.labels, invalid_param: parameter 'add_labels' must be a value matching /echoes/[^,]+/ (or a list of them))"
        ),
        format!(
            "FAIL {f}:19: wrong rule: GET /users/1: expected allow (rule self.read), got allow (rule users.read)"
        ),
        format!(
            "FAIL {f}:24: hook elsewhere expected allowed: POST /api/v4/projects/5/hooks: expected allow (rule project-hooks.create), got deny (rule project-hooks.create, invalid_param: parameter 'url' must be a value matching /https://api\\.echoeshq\\.com/[^\\s\\\\]*/ of at most 2048 characters)"
        ),
        "1 passed, 4 failed".to_owned(),
    ];
    let lines: Vec<&str> = r.out.lines().collect();
    assert_eq!(lines, expected, "\n{}", r.out);
}

#[test]
fn policy_test_file_errors_are_located_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let policy = repo(ECHOES);
    let broken = dir.path().join("broken.tests.yaml");
    std::fs::write(
        &broken,
        format!(
            "policy: {}\ncases:\n  - name: x\n    method: GET\n    target: /user\n    expected: allow\n",
            policy.display()
        ),
    )
    .unwrap();
    let r = run(&["policy", "test", broken.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}{}", r.out, r.err);
    let b = broken.display();
    assert!(
        r.err
            .contains(&format!("{b}:6:5: unknown field `expected`")),
        "{}",
        r.err
    );
    assert!(r.err.contains("did you mean `expect`?"), "{}", r.err);

    // Shape errors are all reported together, each located, with a hint.
    let checked = dir.path().join("checked.tests.yaml");
    std::fs::write(
        &checked,
        format!(
            r#"policy: {}
cases:
  - name: no reason
    method: DELETE
    target: /projects/5
    expect: deny
  - name: typo in the reason
    method: DELETE
    target: /projects/5
    expect: deny
    reason: method_not_alowed
  - name: no such rule
    method: GET
    target: /user
    expect: allow
    rule: self.reed
  - name: no such rule
    method: GET
    target: /user
    expect: allow
    rule: self.read
"#,
            policy.display()
        ),
    )
    .unwrap();
    let r = run(&["policy", "test", checked.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}{}", r.out, r.err);
    let c = checked.display();
    for expected in [
        format!("{c}:6:13: cases[0].reason: a deny case names the reason code it expects"),
        format!("{c}:11:13: cases[1].reason: unknown reason code 'method_not_alowed'"),
        "hint: did you mean method_not_allowed?".to_owned(),
        format!("{c}:16:11: cases[2].rule: policy 'echoes' has no rule 'self.reed'"),
        "hint: did you mean self.read?".to_owned(),
        format!("{c}:17:11: cases[3].name: case name 'no such rule' is used twice"),
    ] {
        assert!(
            r.err.contains(&expected),
            "missing {expected:?} in:\n{}",
            r.err
        );
    }

    // A policy that does not load, and a good file beside a broken one.
    let missing = dir.path().join("missing.tests.yaml");
    std::fs::write(
        &missing,
        "policy: nowhere.yaml\ncases:\n  - {name: a, method: GET, target: /user, expect: allow, rule: r}\n",
    )
    .unwrap();
    let r = run(&["policy", "test", ECHOES_TESTS, missing.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}{}", r.out, r.err);
    assert!(
        r.err
            .contains(&format!("{}:1:9: policy: the policy", missing.display())),
        "{}",
        r.err
    );
    assert!(r.err.contains("cannot read the policy file"), "{}", r.err);
    assert!(r.out.ends_with(" passed, 0 failed\n"), "{}", r.out);
}

// --- policy show ---------------------------------------------------------------------

#[test]
fn policy_show_lists_every_rule_with_its_constraints() {
    let r = run(&["policy", "show", ECHOES]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    let ids = rule_ids(&echoes_text());
    assert_eq!(ids.len(), 19);
    for id in &ids {
        assert!(
            r.out.lines().any(|line| line == id),
            "rule {id} missing:\n{}",
            r.out
        );
    }
    for expected in [
        "policy echoes (policies/echoes.yaml)\n",
        "19 rules; a request no rule allows is refused.\n",
        "  methods          GET (and HEAD)\n",
        "  path_params      label_id  a value matching /echoes/.+/\n",
        "                   priority     optional  an integer, or null\n",
        "                   name         required  a value matching /echoes/.+/ of at most 255 characters\n",
        "                   enable_ssl_verification     optional  one of true, 1\n",
        "  params           add_labels     optional  a value matching /echoes/[^,]+/ (or a list of them)\n",
        "  body             JSON object or form, at most 16384 bytes\n",
        "  params           none accepted\n",
        "  owned_if         glgate reads the resource first; forwarded only if its url matching /https://api\\.echoeshq\\.com/[^\\s\\\\]*/\n",
        "  response_filter  list items relayed only if their url matching",
    ] {
        assert!(
            r.out.contains(expected),
            "missing {expected:?} in:\n{}",
            r.out
        );
    }
    assert!(!r.out.contains('\u{1b}'), "no color");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "version: 1\nname: bad\nrules:\n  - id: a\n    methods: [GETT]\n    paths: [/user]\n",
    )
    .unwrap();
    let r = run(&["policy", "show", bad.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert!(
        r.err
            .contains("bad.yaml:5:15: rules[0].methods: unknown method 'GETT'"),
        "{}",
        r.err
    );
}

// --- policy diff ---------------------------------------------------------------------

#[test]
fn policy_diff_shows_exactly_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let modified = dir.path().join("echoes-next.yaml");
    let text = echoes_text();
    let text = without_rule(&text, "group-labels.delete");
    let text = replace_once(
        &text,
        "add_labels: { pattern: 'echoes/[^,]+', list: true }",
        "add_labels: { pattern: 'echoes/(intent|initiative|effort)[^,]*', list: true, required: true }",
    );
    let text = replace_once(
        &text,
        "  - id: group-labels.update\n    description: Rename or recolor an echoes/ label (addressed by its name).\n    methods: [PUT]",
        "  - id: group-labels.update\n    description: Rename or recolor an echoes/ label (addressed by its name).\n    methods: [PUT, PATCH]",
    );
    std::fs::write(&modified, text).unwrap();
    let m = modified.to_str().unwrap();

    let r = run(&["policy", "diff", ECHOES, m]);
    assert_eq!(r.code, 1, "{}{}", r.out, r.err);
    let expected = format!(
        "--- policies/echoes.yaml (policy echoes)
+++ {m} (policy echoes)
+ PATCH /groups/{{group}}/labels/{{label_id}}  (rule group-labels.update)
- DELETE /groups/{{group}}/labels/{{label_id}}  (rule group-labels.delete)
~ PUT /projects/{{project}}/merge_requests/{{iid}}  (rule merge-requests.labels)
    ~ param add_labels: a value matching /echoes/[^,]+/ (or a list of them) → a value matching /echoes/(intent|initiative|effort)[^,]*/ (or a list of them)
    ~ param add_labels: optional → required
1 newly allowed, 1 no longer allowed, 1 changed
"
    );
    assert_eq!(r.out, expected);

    // The other way round.
    let r = run(&["policy", "diff", m, ECHOES]);
    assert_eq!(r.code, 1);
    assert!(
        r.out
            .contains("+ DELETE /groups/{group}/labels/{label_id}  (rule group-labels.delete)\n"),
        "{}",
        r.out
    );
    assert!(
        r.out
            .contains("- PATCH /groups/{group}/labels/{label_id}  (rule group-labels.update)\n"),
        "{}",
        r.out
    );

    // Identical (descriptions aside): exit 0.
    let reworded = dir.path().join("reworded.yaml");
    std::fs::write(
        &reworded,
        replace_once(
            &echoes_text(),
            "description: Users, to attribute",
            "description: People, to attribute",
        ),
    )
    .unwrap();
    let r = run(&["policy", "diff", ECHOES, reworded.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(
        r.out
            .ends_with("no difference in what the two policies allow\n"),
        "{}",
        r.out
    );

    // Either file broken: exit 2.
    let r = run(&["policy", "diff", ECHOES, "no-such-policy.yaml"]);
    assert_eq!(r.code, 2);
    assert!(
        r.err
            .contains("no-such-policy.yaml: cannot read the policy file"),
        "{}",
        r.err
    );
}

#[test]
fn policy_diff_reports_conditions_and_body_limits() {
    let dir = tempfile::tempdir().unwrap();
    let modified = dir.path().join("echoes-next.yaml");
    let text = replace_once(
        &echoes_text(),
        "  - id: hooks.delete\n    description: Remove one of Echoes' own webhooks, by id.\n    methods: [DELETE]\n    paths:\n      - /groups/{group}/hooks/{hook_id}\n      - /projects/{project}/hooks/{hook_id}\n    owned_if: *echoes_hook\n",
        "  - id: hooks.delete\n    description: Remove one of Echoes' own webhooks, by id.\n    methods: [DELETE]\n    paths:\n      - /groups/{group}/hooks/{hook_id}\n      - /projects/{project}/hooks/{hook_id}\n",
    );
    let text = replace_once(
        &text,
        "      - /projects/{project}/hooks\n    max_body_bytes: 16384\n    params: &hook_params",
        "      - /projects/{project}/hooks\n    max_body_bytes: 4096\n    params: &hook_params",
    );
    std::fs::write(&modified, text).unwrap();
    let r = run(&["policy", "diff", ECHOES, modified.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}{}", r.out, r.err);
    let changes: Vec<&str> = r.out.lines().skip(2).collect();
    assert_eq!(
        changes,
        [
            "~ DELETE /groups/{group}/hooks/{hook_id}  (rule hooks.delete)",
            "    - owned_if: url matching /https://api\\.echoeshq\\.com/[^\\s\\\\]*/",
            "~ POST /projects/{project}/hooks  (rule project-hooks.create)",
            "    ~ max_body_bytes: 16384 → 4096",
            "~ DELETE /projects/{project}/hooks/{hook_id}  (rule hooks.delete)",
            "    - owned_if: url matching /https://api\\.echoeshq\\.com/[^\\s\\\\]*/",
            "0 newly allowed, 0 no longer allowed, 3 changed",
        ],
        "\n{}",
        r.out
    );
}

// --- policy replay -------------------------------------------------------------------

/// An audit line as src/audit.rs writes it, for `request` (`METHOD path`)
/// decided by `rule` as `(decision, reason, status)`.
fn audit_line(
    id: &str,
    client: &str,
    request: &str,
    rule: &str,
    (decision, reason, status): (&'static str, &str, u16),
) -> String {
    let (method, path) = request.split_once(' ').unwrap();
    let mut event = AuditEvent::start(id.into(), "203.0.113.7:50000".into(), method, path);
    event.client = client.into();
    event.rule = rule.into();
    event.decision = decision;
    event.reason = reason.into();
    event.status = status;
    if decision == "allow" && reason == "allowed" {
        event.upstream_ms = Some(3.5);
    }
    serde_json::to_string(&event).unwrap()
}

/// Echoes, narrowed to reads of users and merge requests and label updates,
/// plus one widening: CI variables (which replay must flag).
const NARROWED: &str = r#"version: 1
name: echoes-narrowed
rules:
  - id: self.read
    methods: [GET]
    paths: ["/user"]
  - id: merge-requests.read
    methods: [GET]
    paths:
      - /projects/{project}/merge_requests
      - /projects/{project}/merge_requests/{iid}
  - id: merge-requests.labels
    methods: [PUT]
    paths: ["/projects/{project}/merge_requests/{iid}"]
    params:
      add_labels: { pattern: 'echoes/[^,]+', list: true }
  - id: ci-variables.read
    methods: [GET]
    paths: ["/projects/{project}/variables"]
"#;

fn write_audit_log(dir: &Path) -> PathBuf {
    let lines = [
        audit_line(
            "r01",
            "echoes",
            "GET /api/v4/user",
            "self.read",
            ("allow", "allowed", 200),
        ),
        audit_line(
            "r02",
            "echoes",
            "GET /api/v4/projects/5/hooks",
            "hooks.list",
            ("allow", "allowed", 200),
        ),
        audit_line(
            "r03",
            "echoes",
            "GET /api/v4/projects/5/hooks",
            "hooks.list",
            ("allow", "allowed", 200),
        ),
        audit_line(
            "r04",
            "echoes",
            "DELETE /api/v4/groups/7/labels/echoes%2Fx",
            "group-labels.delete",
            ("allow", "allowed", 204),
        ),
        audit_line(
            "r05",
            "echoes",
            "DELETE /api/v4/projects/5/hooks/9",
            "hooks.delete",
            ("allow", "not_owned", 403),
        ),
        audit_line(
            "r06",
            "echoes",
            "GET /api/v4/projects/5/variables",
            "",
            ("deny", "no_rule", 403),
        ),
        audit_line(
            "r07",
            "echoes",
            "PUT /api/v4/projects/5/merge_requests/3",
            "merge-requests.labels",
            ("deny", "invalid_param", 403),
        ),
        audit_line(
            "r08",
            "echoes",
            "GET /api/v4/groups/7/hooks",
            "hooks.list",
            ("deny", "body_not_allowed", 403),
        ),
        audit_line(
            "r09",
            "echoes",
            "DELETE /api/v4/projects/5",
            "",
            ("deny", "method_not_allowed", 403),
        ),
        audit_line(
            "r10",
            "-",
            "GET /api/v4/projects/5/variables",
            "",
            ("deny", "unknown_token", 401),
        ),
        audit_line(
            "r11",
            "echoes",
            "GET /api/v4/user",
            "",
            ("deny", "rate_limited", 429),
        ),
        audit_line("r12", "-", "GET /api/v4/", "", ("allow", "api_root", 200)),
        audit_line(
            "r13",
            "other",
            "GET /api/v4/projects/acme%2Fbackend/hooks",
            "hooks.list",
            ("allow", "allowed", 200),
        ),
        "glgate is serving listen=127.0.0.1:8080".to_owned(),
        r#"{"level":"INFO","message":"config reloaded"}"#.to_owned(),
        String::new(),
    ];
    let log = dir.join("audit.log");
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    log
}

#[test]
fn policy_replay_reports_decisions_that_would_change() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("narrowed.yaml");
    std::fs::write(&policy, NARROWED).unwrap();
    let log = write_audit_log(dir.path());
    let (p, l) = (policy.to_str().unwrap(), log.to_str().unwrap());

    let r = run(&["policy", "replay", "--policy", p, l]);
    assert_eq!(r.code, 1, "{}{}", r.out, r.err);
    let lines: Vec<&str> = r.out.lines().collect();
    assert_eq!(
        lines[0],
        format!("replay of {l} against {p} (policy echoes-narrowed)")
    );
    assert!(
        lines[1].starts_with("method and path only: audit lines hold no query string and no body"),
        "{}",
        r.out
    );
    assert_eq!(
        lines[3..],
        [
            "would now refuse  GET /api/v4/projects/5/hooks  hooks.list/allowed → -/no_rule  (2 requests, first client echoes, request_id r02)",
            "would now refuse  DELETE /api/v4/groups/7/labels/echoes%2Fx  group-labels.delete/allowed → -/no_rule  (client echoes, request_id r04)",
            "would now refuse  DELETE /api/v4/projects/5/hooks/9  hooks.delete/not_owned → -/no_rule  (client echoes, request_id r05)",
            "would now allow   GET /api/v4/projects/5/variables  -/no_rule → ci-variables.read/allowed  (client echoes, request_id r06)",
            "would now refuse  GET /api/v4/projects/acme%2Fbackend/hooks  hooks.list/allowed → -/no_rule  (client other, request_id r13)",
            "skipped: 2 not glgate audit lines, 3 never reached the policy (api_root: 1, rate_limited: 1, unknown_token: 1)",
            "4 unchanged, 5 now refused, 1 now allowed, 5 skipped",
        ],
        "\n{}",
        r.out
    );

    // One client only; the others are skipped.
    let r = run(&["policy", "replay", "--policy", p, l, "--client", "echoes"]);
    assert_eq!(r.code, 1);
    assert!(r.out.contains(", client echoes\n"), "{}", r.out);
    assert!(!r.out.contains("request_id r13"), "{}", r.out);
    assert!(
        r.out
            .ends_with("4 unchanged, 4 now refused, 1 now allowed, 6 skipped\n"),
        "{}",
        r.out
    );
    assert!(r.out.contains("3 of other clients"), "{}", r.out);

    // Against the policy in force: nothing changes, exit 0 (also from stdin).
    let mut child = glgate()
        .args(["policy", "replay", "--policy", ECHOES, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(&log).unwrap())
        .unwrap();
    let done = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&done.stdout);
    assert_eq!(done.status.code(), Some(0), "{out}");
    assert!(
        out.ends_with("10 unchanged, 0 now refused, 0 now allowed, 5 skipped\n"),
        "{out}"
    );
    assert!(!out.contains("would now"), "{out}");

    // A log that cannot be read, a policy that does not load: exit 2.
    let r = run(&["policy", "replay", "--policy", p, "no-such.log"]);
    assert_eq!(r.code, 2);
    assert!(
        r.err.contains("cannot read the audit log no-such.log"),
        "{}",
        r.err
    );
    let r = run(&["policy", "replay", "--policy", "no-such.yaml", l]);
    assert_eq!(r.code, 2);
}

// --- check-labels --------------------------------------------------------------------

fn labels(value: Option<&str>, args: &[&str]) -> Run {
    let mut command = glgate();
    command.arg("check-labels").args(args);
    if let Some(value) = value {
        command.env("CI_MERGE_REQUEST_LABELS", value);
    }
    output(&mut command)
}

#[test]
fn check_labels_every_combination() {
    let ok = |value: &str, args: &[&str]| {
        let r = labels(Some(value), args);
        assert_eq!(r.code, 0, "{value:?} {args:?}: {}{}", r.out, r.err);
        assert!(r.out.starts_with("check-labels: ok ("), "{}", r.out);
        r.out
    };
    let fails = |value: &str, args: &[&str], expected: &[&str]| {
        let r = labels(Some(value), args);
        assert_eq!(r.code, 1, "{value:?} {args:?}: {}{}", r.out, r.err);
        for line in expected {
            assert!(
                r.out.contains(line),
                "{value:?} {args:?}: missing {line:?} in:\n{}",
                r.out
            );
        }
        r.out
    };
    let no_purpose = "  - missing: a label starting with 'echoes/intent' (why this change exists) or 'echoes/initiative' (the initiative it serves); add at least one\n";
    let no_effort =
        "  - missing: an effort label, e.g. 'echoes/effort: M' (one of XS, S, M, L, XL)\n";

    // No labels at all.
    let out = fails(
        "",
        &[],
        &[no_purpose, "labels on this merge request: (none)\n"],
    );
    assert!(
        out.contains(
            "what these labels mean: https://docs.echoeshq.com/ (the default; --docs-url points to your own guide)\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("after changing them, run a new pipeline"),
        "{out}"
    );
    // Intent only, initiative only, both.
    assert_eq!(
        ok("echoes/intent: Feature", &[]),
        "check-labels: ok (echoes/intent: Feature)\n"
    );
    ok("bug, echoes/initiative: Billing", &[]);
    ok("echoes/intent: Fix,echoes/initiative: Billing", &[]);
    // Effort required: missing, present, written in other styles, invalid, twice.
    fails("echoes/intent: Fix", &["--require-effort"], &[no_effort]);
    assert_eq!(
        ok("echoes/intent: Fix,echoes/effort: S", &["--require-effort"]),
        "check-labels: ok (echoes/intent: Fix; effort S)\n"
    );
    ok(
        "echoes/initiative: Billing,echoes/effort::XL",
        &["--require-effort=true"],
    );
    ok("echoes/intent: Fix", &["--require-effort=false"]);
    let out = fails(
        "echoes/intent: Fix,echoes/effort: XXL",
        &["--require-effort"],
        &["  - invalid: 'echoes/effort: XXL': the effort must be one of XS, S, M, L, XL\n"],
    );
    assert!(!out.contains("missing"), "one problem, not two:\n{out}");
    fails(
        "echoes/intent: Fix,echoes/effort: S,echoes/effort: M",
        &["--require-effort"],
        &["  - too many: 2 effort labels (echoes/effort: S, echoes/effort: M); keep exactly one\n"],
    );
    // An invalid effort fails even when effort is optional.
    fails(
        "echoes/intent: Fix,echoes/effort: huge",
        &[],
        &["  - invalid: 'echoes/effort: huge'"],
    );
    // No purpose and no effort: both reported.
    fails("echoes/effort: S", &["--require-effort"], &[no_purpose]);
    fails(
        "bug",
        &["--require-effort"],
        &[no_purpose, no_effort, "labels on this merge request: bug\n"],
    );
    // Wrong prefixes.
    fails(
        "intent: Feature,Echoes/Intent: Fix,echoes-intent: x",
        &[],
        &[no_purpose],
    );
    ok(
        "acme/why: Feature,acme/size: M",
        &[
            "--intent-prefix",
            "acme/why",
            "--effort-prefix",
            "acme/size",
            "--require-effort",
        ],
    );
    fails(
        "echoes/intent: Feature",
        &[
            "--intent-prefix",
            "acme/why",
            "--initiative-prefix",
            "acme/goal",
        ],
        &["'acme/why' (why this change exists) or 'acme/goal'"],
    );
    // A docs URL of one's own.
    let out = fails(
        "",
        &["--docs-url", "https://wiki.acme.example/labels"],
        &["what these labels mean: https://wiki.acme.example/labels\n"],
    );
    assert!(!out.contains("the default"), "{out}");

    // Not a merge request pipeline.
    let r = labels(None, &[]);
    assert_eq!(r.code, 2, "{}{}", r.out, r.err);
    assert!(
        r.err.contains(
            "CI_MERGE_REQUEST_LABELS is not set. This check runs only in merge request pipelines"
        ),
        "{}",
        r.err
    );
}

/// The CI component's script, with its inputs at their defaults, runs
/// `glgate check-labels` with flags this binary accepts.
#[test]
fn the_ci_component_calls_check_labels_with_valid_flags() {
    let text = std::fs::read_to_string(repo("deploy/gitlab-ci/echoes-labels.yml")).unwrap();
    let (header, job) = text.split_once("\n---\n").expect("spec header, ---, job");
    assert!(header.contains("spec:\n  inputs:\n"), "{header}");
    assert!(
        job.contains("- if: $CI_PIPELINE_SOURCE == \"merge_request_event\""),
        "{job}"
    );
    // Each input's default, from the header.
    let mut defaults = BTreeMap::new();
    let mut current = None;
    for line in header.lines() {
        if let Some(name) = line.strip_prefix("    ").and_then(|l| l.strip_suffix(':'))
            && !name.starts_with(' ')
        {
            current = Some(name.to_owned());
        }
        if let (Some(name), Some(value)) = (&current, line.trim().strip_prefix("default: ")) {
            defaults.insert(name.clone(), value.to_owned());
        }
    }
    for input in [
        "stage",
        "image",
        "intent_prefix",
        "initiative_prefix",
        "effort_prefix",
        "require_effort",
        "docs_url",
    ] {
        assert!(
            defaults.contains_key(input),
            "input {input} has no default: {defaults:?}"
        );
    }
    assert_eq!(defaults["image"], "registry.example.com/glgate:latest");
    assert_eq!(defaults["require_effort"], "false");
    // The command, inputs interpolated, split as sh would.
    let command = job
        .split_once("glgate check-labels")
        .expect("the job runs glgate check-labels")
        .1;
    let mut command = command.split_whitespace().collect::<Vec<_>>().join(" ");
    for (name, value) in &defaults {
        command = command.replace(&format!("$[[ inputs.{name} ]]"), value);
    }
    assert!(!command.contains("$[["), "{command}");
    let args: Vec<String> = command
        .split(" --")
        .map(|part| part.trim().trim_start_matches("--"))
        .filter(|part| !part.is_empty())
        .flat_map(|part| match part.split_once(' ') {
            Some((flag, value)) => vec![format!("--{flag}"), value.trim_matches('"').to_owned()],
            None => vec![format!("--{part}")],
        })
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert!(args.contains(&"--require-effort=false"), "{args:?}");
    let r = labels(Some("echoes/intent: Feature"), &args);
    assert_eq!(r.code, 0, "{args:?}: {}{}", r.out, r.err);
    let r = labels(Some("bug"), &args);
    assert_eq!(r.code, 1, "{args:?}: {}{}", r.out, r.err);

    let example = std::fs::read_to_string(repo("deploy/gitlab-ci/example-include.yml")).unwrap();
    assert!(
        example.contains(
            "  - component: $CI_SERVER_FQDN/<group>/glgate/echoes-labels@<version>\n    inputs:\n"
        ),
        "{example}"
    );
}
