//! CLI conventions, through the real binary: shell completions and man pages
//! generated from the clap tree, every environment variable glgate reads
//! named in `--help`, and `policy permissions`.

use std::path::Path;
use std::process::{Command, Stdio};

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

/// The top-level commands, as a completion script or man page must name them.
const COMMANDS: &[&str] = &[
    "serve",
    "check",
    "policy",
    "schema",
    "probe",
    "scope",
    "doctor",
    "token",
    "oauth",
    "client",
    "check-labels",
    "webhooks",
    "completions",
    "man",
    "webhooks",
];

#[test]
fn completions_for_each_shell_name_every_command() {
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, err) = run(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(err.is_empty(), "{shell}: {err}");
        for command in COMMANDS {
            assert!(out.contains(command), "{shell} script lacks {command}");
        }
        // Nested commands and flags too, not only the first level (fish
        // spells a long flag `-l config`).
        assert!(out.contains("explain") && out.contains("config"), "{shell}");
    }
}

#[test]
fn the_bash_completion_script_parses() {
    let (code, script, err) = run(&["completions", "bash"]);
    assert_eq!(code, 0, "{err}");
    let mut bash = Command::new("bash")
        .arg("-n")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash runs");
    std::io::Write::write_all(&mut bash.stdin.take().unwrap(), script.as_bytes()).unwrap();
    let output = bash.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // And sourcing it registers the completion function.
    let output = Command::new("bash")
        .arg("-c")
        .arg(format!("{script}\ncomplete -p glgate"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("glgate"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn an_unknown_shell_is_a_usage_error_naming_the_shells() {
    let (code, out, err) = run(&["completions", "tcsh"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("bash") && err.contains("zsh") && err.contains("fish"),
        "{err}"
    );
}

#[test]
fn the_man_page_is_roff_with_every_command_and_the_environment() {
    let (code, page, err) = run(&["man"]);
    assert_eq!(code, 0, "{err}");
    assert!(page.contains(".TH GLGATE 1"), "{page}");
    assert!(
        page.contains(".SH NAME") && page.contains(".SH SYNOPSIS"),
        "{page}"
    );
    for command in COMMANDS {
        assert!(
            page.contains(&format!("glgate\\-{}", command.replace('-', "\\-"))),
            "{command}"
        );
    }
    assert!(page.contains("GLGATE_LOG"), "{page}");
}

#[test]
fn man_out_dir_writes_one_page_per_command() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(&["man", "--out-dir", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.is_empty(), "{out}");
    for name in [
        "glgate.1",
        "glgate-serve.1",
        "glgate-policy.1",
        "glgate-policy-explain.1",
        "glgate-check-labels.1",
    ] {
        let page = std::fs::read_to_string(dir.path().join(name))
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        assert!(page.starts_with(".ie") || page.contains(".TH "), "{name}");
    }
    let serve = std::fs::read_to_string(dir.path().join("glgate-serve.1")).unwrap();
    assert!(serve.contains(".TH GLGATE-SERVE 1"), "{serve}");
    assert!(serve.contains(env!("CARGO_PKG_VERSION")), "{serve}");

    let missing = dir.path().join("no/such/folder");
    let (code, _, err) = run(&["man", "--out-dir", missing.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("no/such/folder"), "{err}");
}

/// Every variable named in a literal `env::var`/`var_os`/`try_from_env`
/// call in src/, outside test code (GLGATE_BLESS rewrites shipped schemas in
/// a unit test), plus the ones read through constants or crates.
fn variables_read() -> Vec<String> {
    let pattern =
        regex::Regex::new(r#"(?:env::var(?:_os)?|try_from_env)\(\s*"([A-Z0-9_]+)"\s*\)"#).unwrap();
    let constant = regex::Regex::new(r#"const [A-Z_]*VARIABLE: &str = "([A-Z0-9_]+)""#).unwrap();
    let mut found = Vec::new();
    let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for captures in pattern
            .captures_iter(&text)
            .chain(constant.captures_iter(&text))
        {
            let name = captures[1].to_owned();
            if name != "GLGATE_BLESS" && !found.contains(&name) {
                found.push(name);
            }
        }
    }
    // rustls-native-certs reads these when loading the system's roots.
    found.extend(["SSL_CERT_FILE".to_owned(), "SSL_CERT_DIR".to_owned()]);
    found
}

#[test]
fn help_names_every_environment_variable_glgate_reads() {
    let read = variables_read();
    for expected in [
        "GLGATE_LOG",
        "CI_MERGE_REQUEST_LABELS",
        "CI_PIPELINE_SOURCE",
        "CI_MERGE_REQUEST_IID",
    ] {
        assert!(
            read.contains(&expected.to_owned()),
            "the scan misses {expected}: {read:?}"
        );
    }
    for flag in ["--help", "-h"] {
        let (code, help, err) = run(&[flag]);
        assert_eq!(code, 0, "{err}");
        assert!(help.contains("Environment:"), "{help}");
        for variable in &read {
            assert!(
                help.contains(variable.as_str()),
                "glgate {flag} lacks {variable}"
            );
        }
        assert!(help.contains("upstream.token_env"), "{help}");
    }
}

#[test]
fn each_command_that_reads_a_variable_names_it_in_its_help() {
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["serve"],
            &["GLGATE_LOG", "upstream.token_env", "SSL_CERT_FILE"],
        ),
        (&["check"], &["upstream.token_env"]),
        (&["doctor"], &["upstream.token_env", "SSL_CERT_DIR"]),
        (&["scope", "show"], &["upstream.token_env", "SSL_CERT_FILE"]),
        (&["token", "rotate"], &["SSL_CERT_FILE"]),
        (&["oauth", "login"], &["SSL_CERT_FILE"]),
        (
            &["check-labels"],
            &[
                "CI_MERGE_REQUEST_LABELS",
                "CI_PIPELINE_SOURCE",
                "CI_MERGE_REQUEST_IID",
            ],
        ),
    ];
    for (command, variables) in cases {
        let mut args = command.to_vec();
        args.push("--help");
        let (code, help, err) = run(&args);
        assert_eq!(code, 0, "{command:?}: {err}");
        assert!(help.contains("Environment"), "{command:?}: {help}");
        for variable in *variables {
            assert!(
                help.contains(variable),
                "{command:?} --help lacks {variable}"
            );
        }
    }
    // A command that reads none has no such section.
    let (_, help, _) = run(&["policy", "show", "--help"]);
    assert!(!help.contains("Environment"), "{help}");
}

#[test]
fn policy_permissions_names_api_for_a_policy_that_writes() {
    let (code, out, err) = run(&["policy", "permissions", "policies/echoes.yaml"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("classic personal access token: scope api (rule "),
        "{out}"
    );
    // Fine-grained permissions as GitLab's table names them, per rule.
    for expected in [
        "Label: Create (Group)",
        "Webhook: Delete (Project)",
        "Merge Request: Update (Project)",
        "User: Read (User)",
        "Personal Access Token: Rotate (User) [token rotate, auto_rotate]",
    ] {
        assert!(out.contains(expected), "lacks {expected}:\n{out}");
    }
    assert!(
        out.contains("every endpoint of the policy is in GitLab's table"),
        "{out}"
    );
}

#[test]
fn policy_permissions_names_read_api_for_a_read_only_policy_and_flags_the_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reader.yaml");
    std::fs::write(
        &path,
        "version: 1\nname: reader\nrules:\n  - id: mrs\n    methods: [GET]\n    paths:\n      - /projects/{project}/merge_requests\n      - /projects/{project}/secret_things\n",
    )
    .unwrap();
    let (code, out, err) = run(&["policy", "permissions", path.to_str().unwrap()]);
    // 1: an endpoint GitLab's table does not map.
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("scope read_api"), "{out}");
    assert!(!out.contains("scope api"), "{out}");
    assert!(out.contains("self_rotate"), "{out}");
    assert!(out.contains("Merge Request: Read (Project)"), "{out}");
    assert!(
        out.contains("/projects/{project}/secret_things")
            && out.contains("unknown: not in GitLab's table"),
        "{out}"
    );

    let (code, _, err) = run(&["policy", "permissions", "no/such/policy.yaml"]);
    assert_eq!(code, 2);
    assert!(err.contains("no/such/policy.yaml"), "{err}");
}

#[test]
fn doctor_names_the_narrowest_token_each_policy_needs() {
    // The policy line comes right after the config compiles, before any
    // GitLab call: an upstream that refuses connections is enough.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gitlab-token"), "glpat-x\n").unwrap();
    let policy = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/echoes.yaml");
    let config = dir.path().join("glgate.yaml");
    std::fs::write(
        &config,
        format!(
            "version: 1\nlisten: 127.0.0.1:0\nupstream:\n  url: http://127.0.0.1:{port}\n  token_file: gitlab-token\n  connect_timeout: 2s\nclients:\n  - name: echoes\n    token_sha256: \"{}\"\n    policy: {}\n",
            "a".repeat(64),
            policy.display()
        ),
    )
    .unwrap();
    let (code, out, err) = run(&["doctor", "--config", config.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("✓ policy echoes: narrowest classic token scope api (rule "),
        "{out}"
    );
    assert!(out.contains("`glgate policy permissions "), "{out}");
}
