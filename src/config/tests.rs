use std::path::Path;

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
