use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::*;

fn folder_with_policy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(
        dir.path().join("policies/p.yaml"),
        "version: 1\nname: p\nrules: [{id: a, methods: [GET], paths: [/user]}]\n",
    )
    .unwrap();
    dir
}

fn config(body: &str) -> String {
    format!(
        "version: 1\nlisten: 127.0.0.1:8080\nupstream:\n  url: https://git.example.com/gitlab\n  token_env: T\n{body}"
    )
}

const CLIENT: &str = "clients:\n  - name: echoes\n    token_sha256: \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\n    policy: policies/p.yaml\n";

#[test]
fn compiles_with_defaults_and_relative_paths() {
    let dir = folder_with_policy();
    let source = dir.path().join("glgate.yaml");
    let config = Config::compile(&source, &config(CLIENT)).unwrap();
    assert_eq!(config.upstream.url.prefix(), "/gitlab");
    assert_eq!(config.upstream.external_url, config.upstream.url);
    assert_eq!(config.upstream.token, TokenSource::Env("T".into()));
    assert_eq!(config.limits, Limits::default());
    assert_eq!(config.audit, AuditOutput::Stdout);
    assert_eq!(
        config.clients[0].policy.source(),
        dir.path().join("policies/p.yaml")
    );
}

#[test]
fn one_policy_file_is_compiled_once_for_many_clients() {
    let dir = folder_with_policy();
    let two = format!(
        "{CLIENT}  - name: other\n    token_sha256: \"{}\"\n    policy: policies/p.yaml\n",
        "b".repeat(64)
    );
    let config = Config::compile(&dir.path().join("c.yaml"), &config(&two)).unwrap();
    assert!(Arc::ptr_eq(
        &config.clients[0].policy,
        &config.clients[1].policy
    ));
    assert_eq!(config.policies().len(), 1);
}

#[test]
fn every_problem_is_reported_with_its_key() {
    let dir = folder_with_policy();
    let text = "version: 2\nlisten: nowhere\npublic_url: ftp://x\nupstream:\n  url: https://git.example.com\n  token_env: T\n  token_file: t\n  connect_timeout: soon\nclients:\n  - name: a b\n    token_sha256: \"aa\"\n    policy: policies/missing.yaml\nlimits:\n  max_header_bytes: 10\n";
    let errors = Config::compile(&dir.path().join("c.yaml"), text).unwrap_err();
    let keys: Vec<&str> = errors.0.iter().map(|d| d.key.as_str()).collect();
    for key in [
        "version",
        "listen",
        "public_url",
        "upstream",
        "upstream.connect_timeout",
        "clients[0].name",
        "clients[0].token_sha256",
        "clients[0].policy",
        "limits.max_header_bytes",
    ] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}\n{errors}");
    }
    assert!(errors.0.iter().all(|d| d.position.line > 0), "{errors}");
}

#[test]
fn every_unknown_key_is_reported_in_one_run() {
    // serde stops at the first unknown key; the operator must learn of all
    // four typos at once, each located, each with the key it meant.
    let dir = folder_with_policy();
    let text = "version: 1\nlistn: 127.0.0.1:8080\nupstrem:\n  url: https://git.example.com\n  token_env: T\nclients:\n  - name: echoes\n    token_sha265: \"aa\"\n    policy: policies/p.yaml\nlimits:\n  max_body_byte: 10\n";
    let source = dir.path().join("c.yaml");
    let errors = Config::compile(&source, text).unwrap_err();
    let found: Vec<(u64, u64, &str, &str, Option<&str>)> = errors
        .0
        .iter()
        .map(|d| {
            let unknown = d.message.split('`').nth(1).unwrap_or_default();
            (
                d.position.line,
                d.position.column,
                d.key.as_str(),
                unknown,
                d.hint.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (2, 1, "", "listn", Some("did you mean `listen`?")),
            (3, 1, "", "upstrem", Some("did you mean `upstream`?")),
            (
                8,
                5,
                "clients[0]",
                "token_sha265",
                Some("did you mean `token_sha256`?")
            ),
            (
                11,
                3,
                "limits",
                "max_body_byte",
                Some("did you mean `max_body_bytes`?")
            ),
        ],
        "{errors}"
    );
    assert!(errors.0.iter().all(|d| d.file == source), "{errors}");
    assert!(
        errors.0[3].message.contains("expected one of")
            && errors.0[3].message.contains("max_header_bytes"),
        "{errors}"
    );
}

#[test]
fn an_unknown_key_and_a_wrong_value_are_both_reported() {
    // The typed read stops at the wrong value on line 2; the unknown key
    // further down is still reported beside it.
    let dir = folder_with_policy();
    let text = "version: one\nlisten: 127.0.0.1:8080\nupstream:\n  url: https://git.example.com\n  tokn_env: T\n";
    let errors = Config::compile(&dir.path().join("c.yaml"), text).unwrap_err();
    let lines: Vec<u64> = errors.0.iter().map(|d| d.position.line).collect();
    assert_eq!(lines, [1, 5], "{errors}");
    assert_eq!(errors.0[1].key, "upstream", "{errors}");
    assert_eq!(
        errors.0[1].hint.as_deref(),
        Some("did you mean `token_env`?"),
        "{errors}"
    );
}

#[test]
fn shared_tokens_and_names_are_refused() {
    let dir = folder_with_policy();
    let twice = format!("{CLIENT}{}", &CLIENT["clients:\n".len()..]);
    let errors = Config::compile(&dir.path().join("c.yaml"), &config(&twice))
        .unwrap_err()
        .to_string();
    assert!(
        errors.contains("client name 'echoes' is used twice"),
        "{errors}"
    );
    assert!(errors.contains("two clients share one token"), "{errors}");
}

#[test]
fn policy_errors_name_the_policy_file() {
    let dir = folder_with_policy();
    std::fs::write(
        dir.path().join("policies/p.yaml"),
        "version: 1\nname: p\nrules: []\n",
    )
    .unwrap();
    let errors =
        Config::compile(Path::new(&dir.path().join("c.yaml")), &config(CLIENT)).unwrap_err();
    assert!(errors.0[0].file.ends_with("policies/p.yaml"), "{errors}");
    assert!(errors.to_string().contains("at least one rule"), "{errors}");
}

#[test]
fn beyond_loopback_a_public_url_is_required() {
    let dir = folder_with_policy();
    let text = config(CLIENT).replace("listen: 127.0.0.1:8080", "listen: 0.0.0.0:8080");
    let errors = Config::compile(&dir.path().join("c.yaml"), &text)
        .unwrap_err()
        .to_string();
    assert!(errors.contains("public_url"), "{errors}");
    let with_public = text.replace(
        "version: 1\n",
        "version: 1\npublic_url: https://glgate.acme.com\n",
    );
    assert!(Config::compile(&dir.path().join("c.yaml"), &with_public).is_ok());
}

#[test]
fn plain_http_to_another_host_needs_the_danger_switch() {
    let dir = folder_with_policy();
    let text = config(CLIENT).replace("https://git.example.com/gitlab", "http://git.example.com");
    let errors = Config::compile(&dir.path().join("c.yaml"), &text)
        .unwrap_err()
        .to_string();
    assert!(
        errors.contains("unencrypted") && errors.contains("danger_allow_plain_http"),
        "{errors}"
    );
    let allowed = text.replace(
        "  token_env: T\n",
        "  token_env: T\n  danger_allow_plain_http: true\n",
    );
    assert!(Config::compile(&dir.path().join("c.yaml"), &allowed).is_ok());
    let local = config(CLIENT).replace("https://git.example.com/gitlab", "http://127.0.0.1:8081");
    assert!(
        Config::compile(&dir.path().join("c.yaml"), &local).is_ok(),
        "loopback needs no switch"
    );
}

#[test]
fn client_certificates_and_networks_are_validated() {
    let dir = folder_with_policy();
    let cert_only = "clients:\n  - name: echoes\n    client_cert: { san: echoes.example }\n    source_cidrs: [10.0.0.0/8, 2001:db8::1, nonsense]\n    policy: policies/p.yaml\n";
    let errors = Config::compile(&dir.path().join("c.yaml"), &config(cert_only))
        .unwrap_err()
        .to_string();
    assert!(
        errors.contains("client certificates need inbound TLS"),
        "{errors}"
    );
    assert!(errors.contains("'nonsense' is not a network"), "{errors}");
    let neither = "clients:\n  - name: echoes\n    policy: policies/p.yaml\n";
    let errors = Config::compile(&dir.path().join("c.yaml"), &config(neither))
        .unwrap_err()
        .to_string();
    assert!(
        errors.contains("needs a token_sha256, a client_cert, or both"),
        "{errors}"
    );
    let with_tls = format!(
        "{}tls:\n  cert_file: t.crt\n  key_file: t.key\n  client_ca_file: ca.pem\ntrusted_proxies: [10.0.0.0/8]\n",
        config(&cert_only.replace(", nonsense", ""))
    );
    let config = Config::compile(&dir.path().join("c.yaml"), &with_tls).unwrap();
    assert!(config.clients[0].token_sha256.is_empty());
    assert_eq!(
        config.clients[0].client_cert,
        Some(CertMatch::San("echoes.example".into()))
    );
    assert_eq!(config.clients[0].source_cidrs.len(), 2);
    assert_eq!(config.tls.unwrap().cert_file, dir.path().join("t.crt"));
    assert_eq!(config.trusted_proxies.len(), 1);
}

#[test]
fn tls_and_identity_mistakes_are_load_errors() {
    let dir = folder_with_policy();
    let two = "clients:\n  - name: a\n    client_cert: { san: x.example }\n    policy: policies/p.yaml\n  - name: b\n    client_cert: { san: x.example }\n    policy: policies/p.yaml\n";
    let text = format!(
        "{}tls:\n  cert_file: t.crt\n  key_file: t.key\n  client_ca_file: ca.pem\n",
        config(two)
    );
    let errors = Config::compile(&dir.path().join("c.yaml"), &text)
        .unwrap_err()
        .to_string();
    assert!(errors.contains("same identity"), "{errors}");
    let text = format!(
        "{}tls:\n  cert_file: t.crt\n  key_file: t.key\n  require_client_cert: true\n",
        config(CLIENT)
    );
    let errors = Config::compile(&dir.path().join("c.yaml"), &text)
        .unwrap_err()
        .to_string();
    assert!(errors.contains("without a CA"), "{errors}");
}

#[test]
fn scopes_compile_and_bad_ones_name_line_key_and_fix() {
    let dir = folder_with_policy();
    let source = dir.path().join("c.yaml");
    let good = format!(
        "{CLIENT}    scope:\n      groups: [acme, partners/shared]\n      projects: [tools/ci-templates]\n      exclude: [acme/secret-stuff]\nscope_cache:\n  ttl: 30s\n  max_entries: 50\n"
    );
    let compiled = Config::compile(&source, &config(&good)).unwrap();
    let scope = compiled.clients[0].scope.as_ref().unwrap();
    assert_eq!(scope.groups().len(), 2);
    assert_eq!(compiled.scope_cache.ttl, Duration::from_secs(30));
    assert_eq!(compiled.scope_cache.max_entries, 50);
    let unscoped = Config::compile(&source, &config(CLIENT)).unwrap();
    assert!(unscoped.clients[0].scope.is_none());

    let cases = [
        // (scope lines, line of the problem, key, words of the message)
        ("    scope: {}\n", 10, "clients[0].scope", "empty scope"),
        (
            "    scope:\n      exclude: [acme/x]\n",
            11,
            "clients[0].scope",
            "empty scope",
        ),
        (
            "    scope:\n      groups: [acme, https://gitlab.com/x]\n",
            11,
            "clients[0].scope.groups",
            "not its URL",
        ),
        (
            "    scope:\n      groups: [acme/]\n",
            11,
            "clients[0].scope.groups",
            "not a GitLab full path",
        ),
        (
            "    scope:\n      groups: [acme]\n      projects: [Acme/backend]\n",
            12,
            "clients[0].scope.projects",
            "already in scope",
        ),
        (
            "    scope:\n      groups: [acme, acme/platform]\n",
            11,
            "clients[0].scope.groups",
            "already in scope",
        ),
        (
            "    scope:\n      groups: [acme]\n      exclude: [acme]\n",
            12,
            "clients[0].scope.exclude",
            "listed twice",
        ),
        (
            "    scope:\n      groups: [acme/platform]\n      exclude: [acme]\n",
            12,
            "clients[0].scope.exclude",
            "both included and excluded",
        ),
        (
            "    scope:\n      groups: [acme]\n      exclude: [partners/x]\n",
            12,
            "clients[0].scope.exclude",
            "excludes nothing",
        ),
        ("    scope:\n      group: [acme]\n", 11, "", "group"),
    ];
    for (lines, line, key, words) in cases {
        let text = config(&format!("{CLIENT}{lines}"));
        let errors = Config::compile(&source, &text).unwrap_err();
        let problem = &errors.0[0];
        assert_eq!(problem.position.line, line, "{lines}: {errors}");
        if !key.is_empty() {
            assert_eq!(problem.key, key, "{lines}");
            assert!(problem.hint.is_some(), "{lines}: says what would be valid");
        }
        assert!(errors.to_string().contains(words), "{lines}: {errors}");
    }
}

#[test]
fn a_client_may_list_several_token_digests() {
    let dir = folder_with_policy();
    let list = format!(
        "clients:\n  - name: echoes\n    token_sha256: [\"{}\", \"{}\"]\n    policy: policies/p.yaml\n",
        "a".repeat(64),
        "b".repeat(64)
    );
    let compiled = Config::compile(&dir.path().join("c.yaml"), &config(&list)).unwrap();
    assert_eq!(
        compiled.clients[0].token_sha256,
        vec![[0xaa; 32], [0xbb; 32]]
    );

    for (digests, problem) in [
        ("[]", "an empty list of digests"),
        (
            &*format!("[\"{}\", \"nothex\"]", "a".repeat(64)),
            "not a SHA-256 digest",
        ),
        (
            &*format!("[\"{0}\", \"{0}\"]", "a".repeat(64)),
            "a digest is listed twice",
        ),
    ] {
        let text = config(&format!(
            "clients:\n  - name: echoes\n    token_sha256: {digests}\n    policy: policies/p.yaml\n"
        ));
        let errors = Config::compile(&dir.path().join("c.yaml"), &text)
            .unwrap_err()
            .with_source(&dir.path().join("c.yaml"), &text)
            .to_string();
        assert!(errors.contains("c.yaml:8:"), "{errors}");
        assert!(errors.contains("clients[0].token_sha256"), "{errors}");
        assert!(errors.contains(problem), "{errors}");
    }
    // The same token in two clients is refused, in a list too.
    let shared = format!(
        "{CLIENT}  - name: other\n    token_sha256: [\"{}\", \"{}\"]\n    policy: policies/p.yaml\n",
        "b".repeat(64),
        "a".repeat(64)
    );
    let errors = Config::compile(&dir.path().join("c.yaml"), &config(&shared))
        .unwrap_err()
        .to_string();
    assert!(errors.contains("two clients share one token"), "{errors}");
}

#[test]
fn credential_keys_are_checked() {
    let dir = folder_with_policy();
    let source = dir.path().join("c.yaml");
    let upstream = |keys: &str| {
        format!(
            "version: 1\nlisten: 127.0.0.1:8080\nupstream:\n  url: https://git.example.com\n{keys}{CLIENT}"
        )
    };
    let oauth = "  oauth:\n    client_id: app\n    client_secret_file: secret\n    refresh_token_file: refresh\n";
    let compiled = Config::compile(&source, &upstream(oauth)).unwrap();
    let TokenSource::OAuth(settings) = &compiled.upstream.token else {
        panic!("an OAuth source");
    };
    assert_eq!(settings.redirect_uri, DEFAULT_OAUTH_REDIRECT_URI);
    assert_eq!(settings.refresh_token_file, dir.path().join("refresh"));

    let file = "  token_file: t\n  token_reload_interval: 2s\n  auto_rotate: {before_expiry: 7d}\n";
    let compiled = Config::compile(&source, &upstream(file)).unwrap();
    assert_eq!(
        compiled.upstream.token_reload_interval,
        Duration::from_secs(2)
    );
    assert_eq!(
        compiled.upstream.auto_rotate,
        Some(Duration::from_secs(7 * 86_400))
    );

    for (keys, key, problem) in [
        (
            &*format!("  token_file: t\n{oauth}"),
            "upstream",
            "exactly one of 'token_env', 'token_file' or 'oauth'",
        ),
        (
            "  token_env: T\n  token_reload_interval: 2s\n",
            "upstream.token_reload_interval",
            "only a token_file is reloaded",
        ),
        (
            "  token_env: T\n  auto_rotate: {before_expiry: 7d}\n",
            "upstream.auto_rotate",
            "auto_rotate needs a token_file",
        ),
        (
            "  token_file: t\n  auto_rotate: {before_expiry: soon}\n",
            "upstream.auto_rotate.before_expiry",
            "is not a duration",
        ),
        (
            &*format!("{oauth}    redirect_uri: https://evil.example/callback\n"),
            "upstream.oauth.redirect_uri",
            "is not a loopback redirect URI",
        ),
    ] {
        let text = upstream(keys);
        let errors = Config::compile(&source, &text).unwrap_err();
        assert!(
            errors
                .0
                .iter()
                .any(|d| d.key == key && d.message.contains(problem)),
            "{keys}: {errors}"
        );
    }
}

#[test]
fn start_only_changes_are_named_field_by_field() {
    let dir = folder_with_policy();
    let source = dir.path().join("glgate.yaml");
    let running = Config::compile(&source, &config(CLIENT)).unwrap();
    let same = Config::compile(&source, &config(CLIENT)).unwrap();
    assert!(
        StartupSettings::of(&running)
            .changes(&StartupSettings::of(&same))
            .is_empty()
    );
    let edited = config(&format!(
        "{CLIENT}admin:\n  listen: 127.0.0.1:9090\nlimits:\n  idle_timeout: 5s\n  max_body_bytes: 2048\n"
    ));
    let edited = Config::compile(&source, &edited).unwrap();
    let changes = StartupSettings::of(&running).changes(&StartupSettings::of(&edited));
    let keys: Vec<&str> = changes.iter().map(|c| c.key).collect();
    // max_body_bytes is read per request, so a reload applies it: not listed.
    assert_eq!(keys, ["admin.listen", "limits.idle_timeout"]);
    assert_eq!(changes[0].running, "None");
    assert_eq!(changes[0].in_file, "Some(127.0.0.1:9090)");
    assert_eq!(changes[1].running, "60s");
    assert_eq!(changes[1].in_file, "5s");
}

#[test]
fn admin_connection_cap_and_send_timeout_are_checked() {
    let dir = folder_with_policy();
    let source = dir.path().join("glgate.yaml");
    let defaults = Config::compile(&source, &config(CLIENT)).unwrap();
    assert_eq!(defaults.admin_max_connections, 64);
    assert_eq!(defaults.limits.send_timeout, Duration::from_secs(30));
    let set = config(&format!(
        "{CLIENT}admin:\n  listen: 127.0.0.1:9090\n  max_connections: 8\nlimits:\n  send_timeout: 5s\n"
    ));
    let set = Config::compile(&source, &set).unwrap();
    assert_eq!(set.admin_max_connections, 8);
    assert_eq!(set.limits.send_timeout, Duration::from_secs(5));
    let keys: Vec<&str> = StartupSettings::of(&defaults)
        .changes(&StartupSettings::of(&set))
        .iter()
        .map(|c| c.key)
        .collect();
    assert_eq!(
        keys,
        [
            "admin.listen",
            "admin.max_connections",
            "limits.send_timeout"
        ]
    );
    let wrong = config(&format!(
        "{CLIENT}admin:\n  listen: 127.0.0.1:9090\n  max_connections: 0\nlimits:\n  send_timeout: never\n"
    ));
    let errors = Config::compile(&source, &wrong).unwrap_err();
    let located: Vec<(&str, u64)> = errors
        .0
        .iter()
        .map(|d| (d.key.as_str(), d.position.line))
        .collect();
    // Lines of the file as written: the two values, where they stand.
    let line_of = |needle: &str| wrong.lines().position(|l| l.contains(needle)).unwrap() as u64 + 1;
    assert_eq!(
        located,
        [
            ("limits.send_timeout", line_of("send_timeout")),
            ("admin.max_connections", line_of("max_connections")),
        ],
        "{errors}"
    );
}

#[test]
fn the_webhook_relay_is_checked_with_located_errors() {
    let dir = folder_with_policy();
    std::fs::write(
        dir.path().join("policies/hooks.yaml"),
        "version: 1\nevents:\n  - kind: push\n",
    )
    .unwrap();
    let relayed = format!("{CLIENT}    webhooks:\n      policy: policies/hooks.yaml\n");
    // A relayed client needs the top-level section (its keys).
    let problems = Config::compile(&dir.path().join("c.yaml"), &config(&relayed))
        .unwrap_err()
        .to_string();
    assert!(problems.contains("clients[0].webhooks"), "{problems}");
    assert!(problems.contains("no top-level webhooks:"), "{problems}");
    // A key file that is not a key names its line and how to make one.
    std::fs::write(dir.path().join("key"), "not a key\n").unwrap();
    let section =
        "webhooks:\n  key_file: key\n  spool: spool\n  retry_initial: 1m\n  retry_max: 10s\n";
    let problems = Config::compile(
        &dir.path().join("c.yaml"),
        &config(&format!("{relayed}{section}")),
    )
    .unwrap_err()
    .to_string();
    assert!(problems.contains("webhooks.key_file"), "{problems}");
    assert!(
        problems.contains(":1: a webhook key is 64 hex digits"),
        "{problems}"
    );
    assert!(problems.contains("webhooks.retry_max"), "{problems}");
    // A good one compiles, with the defaults and the client's payload policy.
    std::fs::write(dir.path().join("key"), "ab".repeat(32)).unwrap();
    let section = "webhooks:\n  key_file: key\n  spool: spool\n";
    let config = Config::compile(
        &dir.path().join("c.yaml"),
        &config(&format!("{relayed}{section}")),
    )
    .unwrap();
    let webhooks = config.webhooks.as_ref().unwrap();
    assert_eq!(webhooks.spool, dir.path().join("spool"));
    assert_eq!(webhooks.max_age, Duration::from_secs(72 * 3600));
    assert_eq!(webhooks.max_queued, DEFAULT_WEBHOOK_QUEUED);
    assert!(config.clients[0].webhooks.is_some());
}

#[test]
fn workers_default_to_one_per_core_and_are_bounded() {
    let dir = folder_with_policy();
    let source = dir.path().join("c.yaml");
    let unset = Config::compile(&source, &config(CLIENT)).unwrap();
    assert_eq!(unset.limits.workers, None);
    let three = Config::compile(
        &source,
        &config(&format!("{CLIENT}limits:\n  workers: 3\n")),
    );
    assert_eq!(three.unwrap().limits.workers, Some(3));
    for (value, hint) in [("0", None), ("257", Some("from 1 to 256"))] {
        let text = config(&format!("{CLIENT}limits:\n  workers: {value}\n"));
        let errors = Config::compile(&source, &text).unwrap_err();
        let problem = &errors.0[0];
        assert_eq!(problem.key, "limits.workers", "{errors}");
        assert_eq!(problem.position.line, 11, "{errors}");
        assert!(
            problem
                .hint
                .as_deref()
                .unwrap_or_default()
                .contains(hint.unwrap_or("")),
            "{errors}"
        );
    }
}
