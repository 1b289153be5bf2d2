//! An operator's first day (issue 17): what the tools say is what the proxy
//! does, through the real binary and a real proxy.

use std::process::Command;

use crate::support::client::{raw, raw_status};
use crate::support::sandbox::Sandbox;

/// `glgate policy explain` with the shipped policy: its decision line and output.
fn explain(method: &str, target: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_glgate"))
        .args([
            "policy",
            "explain",
            "--policy",
            "policies/echoes.yaml",
            method,
            target,
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A lower-case method and an absolute-form target: `policy explain` refuses
/// them for the same reason the proxy does, where it used to allow them.
#[tokio::test]
async fn explain_reads_methods_and_targets_as_the_proxy_does() {
    let sb = Sandbox::start().await;
    let cases = [
        ("get", "/api/v4/user", "unsupported_method"),
        (
            "GET",
            "http://gitlab.example.com/api/v4/user",
            "not_origin_form",
        ),
    ];
    for (method, target, reason) in cases {
        let told = explain(method, target);
        assert!(told.contains("decision: deny"), "{method} {target}: {told}");
        assert!(told.contains(reason), "{method} {target}: {told}");
        let request = format!(
            "{method} {target} HTTP/1.1\r\nHost: x\r\nPRIVATE-TOKEN: {}\r\nConnection: close\r\n\r\n",
            sb.client_token
        );
        let response = raw(sb.server.addr, request.as_bytes()).await;
        assert!(
            response.contains(&format!("\"reason\":\"{reason}\"")),
            "{method} {target}: the proxy said {response}"
        );
        assert!(raw_status(&response) >= 400);
    }
    assert!(explain("GET", "/api/v4/user").contains("decision: allow"));
    assert!(
        sb.fake.requests().is_empty(),
        "nothing refused reached GitLab"
    );
}

/// `glgate check-labels` with the environment GitLab gives a job.
fn check_labels(env: &[(&str, &str)]) -> (i32, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_glgate"));
    command
        .arg("check-labels")
        .env_remove("CI_MERGE_REQUEST_LABELS")
        .env_remove("CI_PIPELINE_SOURCE")
        .env_remove("CI_MERGE_REQUEST_IID");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

/// GitLab sets CI_MERGE_REQUEST_LABELS only when the merge request has
/// labels: in a merge request pipeline its absence means "no labels" (exit 1
/// with what is missing), not "wrong pipeline" (exit 2).
#[test]
fn check_labels_reads_a_missing_variable_in_a_merge_request_pipeline_as_no_labels() {
    for env in [
        &[("CI_PIPELINE_SOURCE", "merge_request_event")][..],
        &[("CI_MERGE_REQUEST_IID", "7")][..],
    ] {
        let (code, text) = check_labels(env);
        assert_eq!(code, 1, "{env:?}: {text}");
        assert!(
            !text.contains("runs only in merge request pipelines"),
            "{text}"
        );
    }
    let (code, text) = check_labels(&[("CI_PIPELINE_SOURCE", "push")]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("runs only in merge request pipelines"),
        "{text}"
    );
}

/// A folder holding a policy, a token file (mode `token_mode`) and `glgate.yaml`
/// made of `extra` after a minimal valid config; the config's path.
fn config_folder(extra: &str, token_mode: u32) -> (tempfile::TempDir, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.yaml"),
        "version: 1\nname: p\nrules: [{id: a, methods: [GET], paths: [/user]}]\n",
    )
    .unwrap();
    let token = dir.path().join("gitlab-token");
    std::fs::write(&token, "glpat-not-a-real-token\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(token_mode)).unwrap();
    let digest = glgate::auth::token_digest_hex("glg_first_day_client_token");
    let config = dir.path().join("glgate.yaml");
    std::fs::write(
        &config,
        format!(
            "version: 1\nlisten: 127.0.0.1:8443\npublic_url: https://glgate.example.com\nupstream:\n  url: https://git.example.com\n  token_file: gitlab-token\nclients:\n  - name: echoes\n    token_sha256: \"{digest}\"\n    policy: p.yaml\n{extra}"
        ),
    )
    .unwrap();
    (dir, config)
}

fn check(config: &std::path::Path) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_glgate"))
        .args(["check", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `check` runs what `serve` checks at start: a certificate whose key is
/// another's, an expired certificate, an audit folder that does not exist
/// are problems (exit 1, naming the file); a token file others can read is a
/// warning naming `chmod 600`.
#[test]
fn check_runs_the_start_time_checks_of_serve() {
    let ca = crate::support::tls::TestCa::new("first-day");
    let good = ca.leaf(&["glgate.example.com"], false);
    let other = ca.leaf(&["glgate.example.com"], false);
    let expired = ca.leaf(&["glgate.example.com"], true);
    let tls = |cert: &crate::support::tls::Leaf,
               key: &crate::support::tls::Leaf,
               dir: &std::path::Path| {
        std::fs::write(dir.join("cert.pem"), &cert.cert_pem).unwrap();
        std::fs::write(dir.join("key.pem"), &key.key_pem).unwrap();
    };
    let tls_yaml = "tls:\n  cert_file: cert.pem\n  key_file: key.pem\n";

    let (dir, config) = config_folder(tls_yaml, 0o600);
    tls(&good, &good, dir.path());
    let (code, out, err) = check(&config);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("warning"), "{out}");

    tls(&good, &other, dir.path());
    let (code, _, err) = check(&config);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("key.pem") && err.contains("does not match"),
        "{err}"
    );

    tls(&expired, &expired, dir.path());
    let (code, _, err) = check(&config);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cert.pem") && err.contains("expired"), "{err}");

    let (_dir, config) = config_folder("audit:\n  output: no-such-folder/audit.log\n", 0o600);
    let (code, _, err) = check(&config);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no-such-folder/audit.log"), "{err}");

    let (_dir, config) = config_folder("", 0o644);
    let (code, out, err) = check(&config);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("upstream.token_file") && out.contains("chmod 600"),
        "{out}"
    );
}

/// Typos in config keys are all reported in one run of `check`, each with
/// its file, line, section and the key that was meant; the same for a policy.
#[test]
fn check_reports_every_unknown_key_at_once() {
    let (dir, config) = config_folder("limits:\n  max_body_byte: 10\n  idle_timout: 5s\n", 0o600);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("listen:", "listn:")
        .replace("upstream:", "upstrem:");
    std::fs::write(&config, text).unwrap();
    let (code, out, err) = check(&config);
    assert_eq!(code, 1, "{out}{err}");
    let file = config.display();
    for expected in [
        format!("{file}:2:1: unknown field `listn`"),
        "hint: did you mean `listen`?".to_owned(),
        format!("{file}:4:1: unknown field `upstrem`"),
        "hint: did you mean `upstream`?".to_owned(),
        format!("{file}:12:3: limits: unknown field `max_body_byte`"),
        "hint: did you mean `max_body_bytes`?".to_owned(),
        format!("{file}:13:3: limits: unknown field `idle_timout`"),
        "hint: did you mean `idle_timeout`?".to_owned(),
        "4 problem(s) found".to_owned(),
    ] {
        assert!(err.contains(&expected), "missing {expected:?} in:\n{err}");
    }

    std::fs::write(
        dir.path().join("p.yaml"),
        "version: 1\nname: p\nrules:\n  - id: a\n    method: [GET]\n    path: [/user]\n",
    )
    .unwrap();
    let fixed = std::fs::read_to_string(&config)
        .unwrap()
        .replace("listn:", "listen:")
        .replace("upstrem:", "upstream:")
        .replace("max_body_byte:", "max_body_bytes:")
        .replace("idle_timout:", "idle_timeout:");
    std::fs::write(&config, fixed).unwrap();
    let (code, out, err) = check(&config);
    assert_eq!(code, 1, "{out}{err}");
    let policy = dir.path().join("p.yaml");
    let policy = policy.display();
    for expected in [
        format!("{policy}:5:5: rules[0]: unknown field `method`"),
        format!("{policy}:6:5: rules[0]: unknown field `path`"),
        "hint: did you mean `paths`?".to_owned(),
        "2 problem(s) found".to_owned(),
    ] {
        assert!(err.contains(&expected), "missing {expected:?} in:\n{err}");
    }
}

/// A line of the shipped policy indented one space too far or too short is
/// reported at that line (the parser notices it a line later, or as a
/// missing field at the rule's first line), with a hint naming it.
#[test]
fn a_policy_indentation_slip_is_reported_at_its_line() {
    let shipped = std::fs::read_to_string("policies/echoes.yaml").unwrap();
    let lines: Vec<&str> = shipped.lines().collect();
    // The first rule with a `paths:` list of two items or more.
    let paths = (0..lines.len())
        .find(|&i| {
            lines[i] == "    paths:" && lines.get(i + 2).is_some_and(|l| l.starts_with("      - "))
        })
        .unwrap();
    let methods = paths - 1;
    assert!(
        lines[methods].starts_with("    methods:"),
        "{}",
        lines[methods]
    );
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.yaml");
    // (line index, what it becomes)
    let slips = [
        (paths + 1, format!(" {}", lines[paths + 1])),
        (methods, format!(" {}", lines[methods])),
        (methods, lines[methods][1..].to_owned()),
        (paths, lines[paths][1..].to_owned()),
    ];
    for (index, slipped) in slips {
        let mut text: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
        text[index] = slipped;
        std::fs::write(&policy, text.join("\n") + "\n").unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_glgate"))
            .args(["policy", "explain", "--policy", policy.to_str().unwrap()])
            .args(["GET", "/api/v4/user"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{err}");
        let line = index + 1;
        assert!(
            err.starts_with(&format!("{}:{line}:", policy.display())),
            "line {line} ({:?}) should be reported:\n{err}",
            text[index]
        );
        assert!(
            err.contains(&format!("hint: line {line} is indented")),
            "{err}"
        );
    }
}

/// The policy example in README.md parses as written (a newcomer copies it),
/// and the YAML trap it once fell into gets a hint saying what to write.
#[test]
fn the_readme_policy_example_compiles_and_the_flow_list_trap_has_a_hint() {
    let readme = std::fs::read_to_string("README.md").unwrap();
    let start = readme
        .find("```yaml\nversion: 1\nname: echoes\nrules:")
        .expect("README's policy example");
    let block = &readme[start + "```yaml\n".len()..];
    let block = &block[..block.find("```").unwrap()];
    let policy = glgate::policy::Policy::compile(std::path::Path::new("README.md"), block);
    assert!(policy.is_ok(), "{}", policy.unwrap_err());

    let trap = block.replace(
        "paths: ['/projects/{project}/hooks']",
        "paths: [/projects/{project}/hooks]",
    );
    assert_ne!(trap, block);
    let error = glgate::policy::Policy::compile(std::path::Path::new("README.md"), &trap)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("hint: inside [ … ] a '{' starts a YAML mapping"),
        "{error}"
    );
}

/// A misspelled template parameter and a type that does not exist get a
/// suggestion, not only the list of what is valid.
#[test]
fn policy_typos_get_suggestions() {
    let source = std::path::Path::new("p.yaml");
    let misspelled = "version: 1\nname: p\nrules:\n  - id: a\n    methods: [GET]\n    paths: ['/projects/{prject}/hooks']\n";
    let error = glgate::policy::Policy::compile(source, misspelled)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("p.yaml:6:") && error.contains("did you mean '{project}'?"),
        "{error}"
    );
    let typed = "version: 1\nname: p\nrules:\n  - id: a\n    methods: [PUT]\n    paths: ['/user']\n    params:\n      note: { type: string }\n";
    let error = glgate::policy::Policy::compile(source, typed)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("p.yaml:8:") && error.contains("`type: any`"),
        "{error}"
    );
}

/// What a person reads says what happened in words: a start failure under
/// `--log-format json` is JSON too, and `probe` names the cause of a failed
/// connection rather than the client library's category.
#[test]
fn operator_messages_are_words_in_the_chosen_format() {
    let (_dir, config) = config_folder("listen_typo: 1\n", 0o600);
    let output = Command::new(env!("CARGO_BIN_EXE_glgate"))
        .args([
            "serve",
            "--log-format",
            "json",
            "--config",
            config.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for line in &lines {
        let event: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|_| panic!("not JSON under --log-format json: {line}"));
        assert!(
            event["fields"]["message"]
                .as_str()
                .unwrap()
                .contains("cannot start"),
            "{line}"
        );
    }

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let output = Command::new(env!("CARGO_BIN_EXE_glgate"))
        .args(["probe", &format!("http://127.0.0.1:{port}/live")])
        .output()
        .unwrap();
    assert_ne!(output.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.to_lowercase().contains("refused"), "{stderr}");
}

/// `serve` with an audit file in a folder that does not exist names the path.
#[test]
fn serve_names_the_audit_file_it_cannot_open() {
    let (_dir, config) = config_folder(
        "listen: 127.0.0.1:0\naudit:\n  output: missing-folder/audit.log\n",
        0o600,
    );
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("listen: 127.0.0.1:8443\n", "");
    std::fs::write(&config, text).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_glgate"))
        .args(["serve", "--config", config.to_str().unwrap()])
        .env("GLGATE_LOG", "error")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("missing-folder/audit.log"), "{stderr}");
}

/// docs/try-it.md's path, as written: its config (with the stand-in's URL
/// and a digest) passes `check`, serves, allows and refuses as the page says,
/// and its scope step hides what the page says it hides.
#[tokio::test]
async fn the_try_it_page_works_as_written() {
    let page = std::fs::read_to_string("docs/try-it.md").unwrap();
    let yaml_blocks: Vec<&str> = page
        .split("```yaml\n")
        .skip(1)
        .map(|rest| &rest[..rest.find("```").unwrap()])
        .collect();
    let (config_text, scope_text) = (yaml_blocks[0], yaml_blocks[1]);
    let fake = fake_gitlab::FakeGitlab::start(fake_gitlab::FakeOptions::default())
        .await
        .unwrap();
    let token = "glg_try_it_page_client_token";
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("policies")).unwrap();
    std::fs::copy(
        "policies/echoes.yaml",
        dir.path().join("policies/echoes.yaml"),
    )
    .unwrap();
    let config = dir.path().join("glgate-try.yaml");
    let text = config_text
        .replace("GITLAB_URL", &fake.base_url())
        .replace("DIGEST", &glgate::auth::token_digest_hex(token));
    std::fs::write(&config, &text).unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_glgate"))
        .args(["check", "--config", config.to_str().unwrap()])
        .env("GITLAB_TOKEN", fake.token())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(
        out.contains("plain http"),
        "the page says check warns: {out}"
    );

    // Served in-process on a free port (the page's 8080 may be taken here),
    // with the token in a file: this process's environment is shared.
    std::fs::write(dir.path().join("gitlab-token"), fake.token()).unwrap();
    let served = text
        .replace("127.0.0.1:8080", "127.0.0.1:0")
        .replace("token_env: GITLAB_TOKEN", "token_file: gitlab-token");
    std::fs::write(&config, served).unwrap();
    let server = glgate::server::Server::start(&config).await.unwrap();
    let url = |target: &str| format!("http://{}{target}", server.addr);
    let reply =
        crate::support::client::get(&url("/api/v4/groups?top_level_only=true"), token).await;
    assert_eq!(reply.status, 200);
    let reply = crate::support::client::get(
        &url("/api/v4/projects/acme%2Fbackend/merge_requests"),
        token,
    )
    .await;
    assert_eq!(reply.status, 200);
    fake.clear_requests();
    let reply = crate::support::client::send(
        http::Version::HTTP_11,
        "DELETE",
        &url("/api/v4/projects/101"),
        &[("private-token", token)],
        b"",
    )
    .await;
    assert_eq!(reply.status, 403);
    assert!(fake.requests().is_empty());

    // The scope step.
    let scoped = std::fs::read_to_string(&config).unwrap().replace(
        "    policy: policies/echoes.yaml\n",
        &format!("    policy: policies/echoes.yaml\n{scope_text}"),
    );
    std::fs::write(&config, scoped).unwrap();
    server.reload().unwrap();
    let reply = crate::support::client::get(
        &url("/api/v4/groups/acme/projects?include_subgroups=true&per_page=100"),
        token,
    )
    .await;
    assert_eq!(reply.status, 200);
    let listed = String::from_utf8_lossy(&reply.body).into_owned();
    assert!(
        listed.contains("acme/backend") && !listed.contains("acme/secret-stuff"),
        "{listed}"
    );
    let reply = crate::support::client::get(&url("/api/v4/projects/104"), token).await;
    assert_eq!(reply.status, 404);
    server.shutdown().await;
}

/// `/ready` on the admin listener says why GitLab cannot be reached, in words.
#[tokio::test]
async fn ready_names_why_gitlab_is_unreachable() {
    let down = crate::support::upstreams::refused_address().await;
    let sb = Sandbox::with(crate::support::sandbox::SandboxOptions {
        upstream_url: Some(format!("http://{down}")),
        ..Default::default()
    })
    .await;
    let admin = sb
        .server
        .admin_addr
        .expect("the sandbox starts the admin listener");
    let reply = crate::support::client::get(&format!("http://{admin}/ready"), "").await;
    assert_eq!(reply.status, 503);
    let said = reply.json()["upstream"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(said.starts_with("unreachable: "), "{said}");
    assert!(said.to_lowercase().contains("refused"), "{said}");
}

/// docs/try-it.md's OAuth step through the real binary: `glgate oauth login`
/// with the page's `upstream.oauth` section against the stand-in's OAuth
/// provider (the authorization URL fetched, and the redirect it answers
/// delivered by hand, as the deploy guide's copy-the-redirect path does),
/// then a proxied request that reaches GitLab with the OAuth access token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_try_it_oauth_login_works_end_to_end() {
    use std::io::BufRead;
    use std::os::unix::fs::PermissionsExt;

    let page = std::fs::read_to_string("docs/try-it.md").unwrap();
    let yaml_blocks: Vec<&str> = page
        .split("```yaml\n")
        .skip(1)
        .map(|rest| &rest[..rest.find("```").unwrap()])
        .collect();
    let (config_text, oauth_upstream) = (yaml_blocks[0], yaml_blocks[2]);
    // The application the page names is the one the demo registers.
    let demo = std::fs::read_to_string("examples/demo.rs").unwrap();
    for value in [
        "glgate-try",
        "glgate-try-secret",
        "http://127.0.0.1:7171/callback",
    ] {
        assert!(page.contains(value) && demo.contains(&format!("\"{value}\"")));
    }
    assert!(page.contains("printf '%s\\n' glgate-try-secret > oauth-secret"));

    let fake = fake_gitlab::FakeGitlab::start(fake_gitlab::FakeOptions::default())
        .await
        .unwrap();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let redirect = format!("http://127.0.0.1:{port}/callback");
    fake.oauth_client("glgate-try", "glgate-try-secret", &redirect);

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("policies")).unwrap();
    std::fs::copy(
        "policies/echoes.yaml",
        dir.path().join("policies/echoes.yaml"),
    )
    .unwrap();
    let secret = dir.path().join("oauth-secret");
    std::fs::write(&secret, "glgate-try-secret\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let client_token = "glg_try_it_oauth_client_token";
    let start = config_text.find("upstream:\n").unwrap();
    let end = config_text.find("clients:\n").unwrap();
    let text = format!(
        "{}{}{}",
        &config_text[..start],
        oauth_upstream,
        &config_text[end..]
    )
    .replace("GITLAB_URL", &fake.base_url())
    .replace("DIGEST", &glgate::auth::token_digest_hex(client_token))
    .replace("127.0.0.1:7171", &format!("127.0.0.1:{port}"))
    .replace("127.0.0.1:8080", "127.0.0.1:0");
    let config = dir.path().join("glgate-try.yaml");
    std::fs::write(&config, &text).unwrap();

    let mut login = std::process::Command::new(env!("CARGO_BIN_EXE_glgate"))
        .args(["oauth", "login", "--config", config.to_str().unwrap()])
        .args(["--wait", "60s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    let stdout = login.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut said = String::new();
    let url = loop {
        let line = lines_rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no authorization URL printed:\n{said}"));
        said.push_str(&line);
        said.push('\n');
        if line.contains("/oauth/authorize?") {
            break line.trim().to_owned();
        }
    };
    assert!(
        url.starts_with(&format!("{}/oauth/authorize?", fake.base_url())),
        "{url}"
    );
    // The browser's part: GitLab approves and redirects to the callback.
    let authorize =
        crate::support::client::send(http::Version::HTTP_11, "GET", &url, &[], b"").await;
    assert_eq!(authorize.status, 302);
    let location = authorize.header("location").unwrap().to_owned();
    assert!(location.starts_with(&redirect), "{location}");
    let callback =
        crate::support::client::send(http::Version::HTTP_11, "GET", &location, &[], b"").await;
    assert_eq!(callback.status, 200);
    let status = tokio::task::spawn_blocking(move || login.wait().unwrap())
        .await
        .unwrap();
    while let Ok(line) = lines_rx.recv_timeout(std::time::Duration::from_secs(5)) {
        said.push_str(&line);
        said.push('\n');
    }
    assert_eq!(status.code(), Some(0), "{said}");
    assert!(
        said.contains("authorized: the refresh token is in"),
        "{said}"
    );
    let refresh_file = dir.path().join("oauth-refresh");
    let saved = std::fs::read_to_string(&refresh_file).unwrap();
    assert_eq!(fake.valid_refresh_tokens(), vec![saved.trim().to_owned()]);
    let mode = std::fs::metadata(&refresh_file)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(
        !said.contains(saved.trim()),
        "the refresh token was printed"
    );

    // Serving with it: a proxied request reaches GitLab with a Bearer
    // access token the provider issued, never a personal access token.
    let server = glgate::server::Server::start(&config).await.unwrap();
    fake.clear_requests();
    let reply = crate::support::client::get(
        &format!("http://{}/api/v4/groups?top_level_only=true", server.addr),
        client_token,
    )
    .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let requests = fake.requests();
    let groups = requests
        .iter()
        .find(|r| r.target.starts_with("/api/v4/groups?"))
        .expect("the request reached GitLab");
    let bearer = groups
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .expect("an OAuth bearer token");
    assert!(fake.valid_tokens().iter().any(|t| t == bearer));
    assert!(bearer.starts_with("oauth-access-"), "{bearer}");
    assert!(groups.header("private-token").is_none());
    // The refresh at start rotated the refresh token, and glgate saved it.
    let rotated = std::fs::read_to_string(&refresh_file).unwrap();
    assert_ne!(rotated.trim(), saved.trim());
    assert_eq!(fake.valid_refresh_tokens(), vec![rotated.trim().to_owned()]);
    server.shutdown().await;
}
