//! A real glgate in front of the in-process fake GitLab, configured through
//! real files in a temporary folder. Shared by the integration tests and the
//! demo (`examples/demo.rs` includes this file).

// Test support: a setup that fails stops the test with its reason.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use fake_gitlab::{FakeGitlab, FakeOptions};
use glgate::server::Server;

/// The shipped Echoes policy, embedded.
pub const ECHOES_POLICY: &str = include_str!("../../policies/echoes.yaml");

/// How to set up a sandbox.
#[derive(Clone, Debug)]
pub struct SandboxOptions {
    /// The policy YAML given to the client.
    pub policy: String,
    /// GitLab's relative-URL prefix ("" or e.g. "/gitlab").
    pub path_prefix: String,
    /// Use this upstream URL instead of the fake GitLab's (down or slow upstreams).
    pub upstream_url: Option<String>,
    /// YAML appended under `upstream:` (indented by the caller).
    pub upstream_extra: String,
    /// YAML appended at the top level of the config.
    pub config_extra: String,
    /// Start the admin listener.
    pub admin: bool,
    /// YAML lines added to the `echoes` client entry (4-space indent).
    pub client_extra: String,
    /// Add a second client, `other`, with these extra YAML lines.
    pub other_client: Option<String>,
    /// The second client has no token (it is identified by its certificate).
    pub other_client_cert_only: bool,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            policy: ECHOES_POLICY.to_owned(),
            path_prefix: String::new(),
            upstream_url: None,
            upstream_extra: String::new(),
            config_extra: String::new(),
            admin: true,
            client_extra: String::new(),
            other_client: None,
            other_client_cert_only: false,
        }
    }
}

/// A running glgate with its fake GitLab and its files.
pub struct Sandbox {
    /// The recording fake GitLab.
    pub fake: FakeGitlab,
    /// The running proxy.
    pub server: Server,
    /// The client token glgate accepts.
    pub client_token: String,
    /// The second client's token (when `other_client` was set).
    pub other_token: String,
    /// The GitLab token glgate holds (the fake's).
    pub gitlab_token: String,
    /// The config file.
    pub config_path: PathBuf,
    /// The policy file.
    pub policy_path: PathBuf,
    /// The audit log file.
    pub audit_path: PathBuf,
    /// Keeps the temporary folder alive.
    pub dir: tempfile::TempDir,
    /// Further secrets (rotated GitLab tokens, OAuth tokens) the leak check
    /// looks for too.
    pub extra_secrets: std::sync::Mutex<Vec<String>>,
}

impl Sandbox {
    /// Starts the fake GitLab and glgate with the shipped Echoes policy.
    pub async fn start() -> Sandbox {
        Sandbox::with(SandboxOptions::default()).await
    }

    /// Starts the fake GitLab and glgate as `options` say.
    pub async fn with(options: SandboxOptions) -> Sandbox {
        #[cfg(test)]
        super::logs::install();
        let fake = FakeGitlab::start(FakeOptions {
            path_prefix: options.path_prefix.clone(),
            ..FakeOptions::default()
        })
        .await
        .expect("fake GitLab starts");
        let dir = tempfile::tempdir().expect("temporary folder");
        let client_token = random_token();
        let other_token = random_token();
        let other = match &options.other_client {
            Some(extra) if options.other_client_cert_only => {
                format!("  - name: other\n    policy: policy.yaml\n{extra}")
            }
            Some(extra) => format!(
                "  - name: other\n    token_sha256: \"{}\"\n    policy: policy.yaml\n{extra}",
                glgate::auth::token_digest_hex(&other_token)
            ),
            None => String::new(),
        };
        let policy_path = dir.path().join("policy.yaml");
        let token_path = dir.path().join("gitlab-token");
        let audit_path = dir.path().join("audit.log");
        let config_path = dir.path().join("glgate.yaml");
        std::fs::write(&policy_path, &options.policy).expect("write policy");
        std::fs::write(&token_path, format!("{}\n", fake.token())).expect("write token");
        let upstream_url = options
            .upstream_url
            .clone()
            .unwrap_or_else(|| fake.base_url());
        let admin = if options.admin {
            "admin:\n  listen: 127.0.0.1:0\n"
        } else {
            ""
        };
        let config = format!(
            "version: 1\n\
             listen: 127.0.0.1:0\n\
             upstream:\n  url: {upstream_url}\n  token_file: gitlab-token\n{upstream_extra}\
             clients:\n  - name: echoes\n    token_sha256: \"{digest}\"\n    policy: policy.yaml\n{client_extra}{other}\
             {admin}\
             audit:\n  output: audit.log\n\
             {extra}",
            upstream_extra = options.upstream_extra,
            digest = glgate::auth::token_digest_hex(&client_token),
            extra = options.config_extra,
            client_extra = options.client_extra,
        );
        std::fs::write(&config_path, config).expect("write config");
        let server = Server::start(&config_path).await.expect("glgate starts");
        if options.upstream_url.is_none() {
            // glgate reads the token's expiry as it starts; let that request
            // pass so tests see only the requests they cause.
            for _ in 0..200 {
                if fake
                    .requests()
                    .iter()
                    .any(|r| r.path().ends_with("/personal_access_tokens/self"))
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            fake.clear_requests();
        }
        Sandbox {
            extra_secrets: std::sync::Mutex::default(),
            other_token,
            gitlab_token: fake.token().to_owned(),
            fake,
            server,
            client_token,
            config_path,
            policy_path,
            audit_path,
            dir,
        }
    }

    /// Adds a secret the leak check on drop looks for (a rotated token…).
    pub fn remember_secret(&self, secret: &str) {
        self.extra_secrets.lock().unwrap().push(secret.to_owned());
    }

    /// `http://127.0.0.1:PORT` of the proxy.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    /// The proxy URL of `target`.
    pub fn url(&self, target: &str) -> String {
        format!("{}{target}", self.base_url())
    }

    /// The audit events written so far, waiting until there are at least `count`.
    pub async fn audit_events(&self, count: usize) -> Vec<serde_json::Value> {
        for _ in 0..200 {
            let events = self.read_audit();
            if events.len() >= count {
                return events;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let events = self.read_audit();
        panic!(
            "expected {count} audit events, found {}: {events:?}",
            events.len()
        );
    }

    fn read_audit(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.audit_path)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("audit lines are JSON"))
            .collect()
    }
}

/// The leak check that runs after every test: neither token may appear in
/// the audit log or (in tests) in anything glgate logged.
impl Drop for Sandbox {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let audit = std::fs::read_to_string(&self.audit_path).unwrap_or_default();
        let mut secrets = vec![
            self.gitlab_token.clone(),
            self.client_token.clone(),
            self.other_token.clone(),
        ];
        secrets.extend(self.extra_secrets.lock().unwrap().iter().cloned());
        // The capture is the whole process's (every test's logs): read once.
        #[cfg(test)]
        let logs = super::logs::captured();
        for secret in &secrets {
            assert!(
                !audit.contains(secret.as_str()),
                "a token reached the audit log"
            );
            #[cfg(test)]
            assert!(!logs.contains(secret.as_str()), "a token reached the logs");
        }
    }
}

/// A client token as `glgate client new` makes them.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("OS randomness");
    format!("glg_{}", hex::encode(bytes))
}
