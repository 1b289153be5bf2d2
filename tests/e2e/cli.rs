//! The `glgate` binary: check, policy explain, client new, and serve with
//! SIGHUP reload and SIGTERM drain, run as a real process.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::client::get;

fn glgate() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_glgate"));
    command.current_dir(env!("CARGO_MANIFEST_DIR"));
    command
}

fn run(args: &[&str]) -> (i32, String, String) {
    let output = glgate().args(args).output().expect("glgate runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn check_refuses_the_example_placeholder_and_passes_with_a_real_digest() {
    // Copied verbatim, the example names a placeholder digest: refused, with
    // what to do instead.
    let (code, out, err) = run(&["check", "--config", "config/glgate.example.yaml"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("glgate.example.yaml:") && err.contains("clients[0].token_sha256"),
        "{err}"
    );
    assert!(
        err.contains("placeholder") && err.contains("glgate client new"),
        "{err}"
    );
    // The old example's published demo digest is refused the same way.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("config")).unwrap();
    std::fs::create_dir_all(dir.path().join("policies")).unwrap();
    std::fs::copy(
        "policies/echoes.yaml",
        dir.path().join("policies/echoes.yaml"),
    )
    .unwrap();
    let example = std::fs::read_to_string("config/glgate.example.yaml").unwrap();
    let config = dir.path().join("config/glgate.yaml");
    let placeholder = "0".repeat(64);
    let published = "3c7fdfc09d50f1159d4bc1cc5478c7b37edcce58c36a71fd4a2b93053fb9e416";
    std::fs::write(&config, example.replace(&placeholder, published)).unwrap();
    let (code, _, err) = run(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("placeholder"), "{err}");
    // With the digest `client new` printed, the example is a valid config.
    let digest = glgate::auth::token_digest_hex("glg_a_token_of_this_operators_own");
    std::fs::write(&config, example.replace(&placeholder, &digest)).unwrap();
    let (code, out, err) = run(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("glgate.yaml: ok"), "{out}");
    assert!(out.contains("echoes") && out.contains("rules"), "{out}");
}

#[test]
fn check_reports_every_problem_with_file_line_key_and_hint() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad-policy.yaml"),
        "version: 1\nname: bad\nrules:\n  - id: a\n    methods: [GETT]\n    paths: ['/projects/{proj}']\n",
    )
    .unwrap();
    let config = dir.path().join("glgate.yaml");
    std::fs::write(
        &config,
        "version: 1\nlisten: localhost\nupstream:\n  url: gitlab.example.com\n  token_env: X\nclients:\n  - name: echoes\n    token_sha256: nothex\n    policy: bad-policy.yaml\n",
    )
    .unwrap();
    let (code, out, err) = run(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    for expected in [
        "glgate.yaml:2:9: listen: 'localhost' is not an address",
        "glgate.yaml:4:8: upstream.url:",
        "glgate.yaml:8:19: clients[0].token_sha256: not a SHA-256 digest",
        "bad-policy.yaml:5:15: rules[0].methods: unknown method 'GETT'",
        "hint: did you mean GET?",
        "bad-policy.yaml:6:13: rules[0].paths: unknown path param '{proj}'",
        "5 problem(s) found",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    std::fs::write(&config, "version: 1\nlisten: 127.0.0.1:1\nupstreams: {}\n").unwrap();
    let (code, _, err) = run(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("glgate.yaml:3:1") && err.contains("unknown field `upstreams`"),
        "{err}"
    );
}

#[test]
fn policy_explain_exit_codes_and_output() {
    let (code, out, _) = run(&[
        "policy",
        "explain",
        "--policy",
        "policies/echoes.yaml",
        "GET",
        "/api/v4/projects/acme%2Fbackend/merge_requests/3",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("decision: allow"), "{out}");
    assert!(out.contains("rule:     merge-requests.read"), "{out}");
    assert!(
        out.contains("params:   project=acme/backend iid=3"),
        "{out}"
    );

    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("hook.json");
    std::fs::write(&body, r#"{"url":"https://attacker.example/x"}"#).unwrap();
    let (code, out, _) = run(&[
        "policy",
        "explain",
        "--policy",
        "policies/echoes.yaml",
        "POST",
        "/projects/101/hooks",
        "--body",
        body.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("decision: deny") && out.contains("invalid_param: parameter 'url'"),
        "{out}"
    );

    let (code, out, _) = run(&[
        "policy",
        "explain",
        "--policy",
        "policies/echoes.yaml",
        "DELETE",
        "/projects/101",
    ]);
    assert_eq!(code, 1);
    assert!(out.contains("method_not_allowed"), "{out}");

    let (code, _, err) = run(&[
        "policy",
        "explain",
        "--policy",
        "missing.yaml",
        "GET",
        "/user",
    ]);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = run(&["policy", "explain", "--policy", "policies/echoes.yaml"]);
    assert_eq!(code, 2, "usage error");
}

#[test]
fn client_new_prints_a_token_and_its_digest() {
    let (code, out, _) = run(&["client", "new", "echoes"]);
    assert_eq!(code, 0);
    let token = out
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("glg_"))
        .expect("a token line")
        .to_owned();
    assert_eq!(token.len(), 4 + 64, "32 random bytes, hex");
    assert!(out.contains(&format!(
        "token_sha256: \"{}\"",
        glgate::auth::token_digest_hex(&token)
    )));
    assert!(out.contains("- name: echoes"));
    let (_, again, _) = run(&["client", "new", "echoes"]);
    assert!(!again.contains(&token), "a fresh token every time");
    assert_eq!(run(&["client", "new", "bad name"]).0, 2);
}

/// Runs `glgate serve` as a process: it serves, reloads on SIGHUP, refuses a
/// bad reload, drains on SIGTERM with exit 0, and never logs a token.
#[tokio::test]
async fn serve_reloads_on_sighup_and_exits_cleanly_on_sigterm() {
    let fake = fake_gitlab::FakeGitlab::start(Default::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let client_token = crate::support::sandbox::random_token();
    std::fs::write(
        dir.path().join("policy.yaml"),
        crate::support::sandbox::ECHOES_POLICY,
    )
    .unwrap();
    let config = dir.path().join("glgate.yaml");
    std::fs::write(
        &config,
        format!(
            "version: 1\nlisten: 127.0.0.1:0\nupstream:\n  url: {}\n  token_env: GLGATE_CLI_TEST_TOKEN\nclients:\n  - name: echoes\n    token_sha256: \"{}\"\n    policy: policy.yaml\naudit:\n  output: stderr\n",
            fake.base_url(),
            glgate::auth::token_digest_hex(&client_token)
        ),
    )
    .unwrap();
    let mut child = KillOnDrop(Some(
        glgate()
            .args(["serve", "--config", config.to_str().unwrap()])
            .env("GLGATE_CLI_TEST_TOKEN", fake.token())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    let stderr = child.0.as_mut().unwrap().stderr.take().unwrap();
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut log = String::new();
    let addr = loop {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.recv())
            .await
            .unwrap()
            .unwrap();
        log.push_str(&line);
        log.push('\n');
        if let Some(rest) = line.split("listen=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    let url = |path: &str| format!("http://{addr}{path}");
    assert_eq!(
        get(&url("/api/v4/projects/101/repository/tags"), &client_token)
            .await
            .status,
        200
    );

    let pid = child.0.as_ref().unwrap().id().to_string();
    std::fs::write(
        dir.path().join("policy.yaml"),
        "version: 1\nname: n\nrules:\n  - {id: me, methods: [GET], paths: [/user]}\n",
    )
    .unwrap();
    signal("HUP", &pid);
    wait_for(&mut lines, &mut log, "config reloaded").await;
    assert_eq!(
        get(&url("/api/v4/projects/101/repository/tags"), &client_token)
            .await
            .status,
        403
    );

    std::fs::write(dir.path().join("policy.yaml"), "version: 2\n").unwrap();
    signal("HUP", &pid);
    wait_for(&mut lines, &mut log, "reload refused").await;
    assert_eq!(
        get(&url("/api/v4/user"), &client_token).await.status,
        200,
        "old policy kept"
    );

    signal("TERM", &pid);
    let mut process = child.0.take().unwrap();
    let status = tokio::task::spawn_blocking(move || process.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status}");
    while let Ok(line) = lines.try_recv() {
        log.push_str(&line);
        log.push('\n');
    }
    assert!(
        log.contains("\"decision\":\"allow\""),
        "audit lines on stderr: {log}"
    );
    assert!(!log.contains(fake.token()), "GitLab token in the logs");
    assert!(!log.contains(&client_token), "client token in the logs");
}

/// Kills the server if the test fails before stopping it.
struct KillOnDrop(Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn signal(name: &str, pid: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), pid])
        .status()
        .unwrap();
    assert!(status.success());
}

async fn wait_for(
    lines: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
    log: &mut String,
    needle: &str,
) {
    loop {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.recv())
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} in:\n{log}"))
            .unwrap();
        log.push_str(&line);
        log.push('\n');
        if line.contains(needle) {
            return;
        }
    }
}

#[test]
fn the_binary_exists_where_cargo_says() {
    assert!(Path::new(env!("CARGO_BIN_EXE_glgate")).exists());
}

#[test]
fn schema_prints_the_shipped_schemas() {
    for kind in ["config", "policy", "webhook-policy"] {
        let (code, out, _) = run(&["schema", kind]);
        assert_eq!(code, 0);
        let shipped = std::fs::read_to_string(format!("schemas/{kind}.schema.json")).unwrap();
        assert_eq!(out, shipped, "{kind}");
        let schema: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(schema["additionalProperties"], false);
    }
    assert_eq!(run(&["schema", "nonsense"]).0, 2);
}
