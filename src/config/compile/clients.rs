//! The `clients:` list: names, token digests, certificate identities,
//! source networks, and the policies each client names (each policy file is
//! compiled once however many clients share it).

use std::sync::Arc;

use serde_saphyr::Spanned;

use super::Compiler;
use crate::config::raw::{RawClient, RawClientCert, RawDigests};
use crate::config::{CertMatch, ClientConfig, RateLimit, TlsSettings};
use crate::policy::Policy;

/// Client-token digests that ship in glgate's repository: the placeholder of
/// the example and deployment configs, and the digest of the demo token an
/// earlier example config carried (`glg_example_only_replace_me`, printed in
/// its comments). A config naming one would let anyone who read the
/// repository in, so `check` and `serve` refuse it.
const PUBLISHED_DIGESTS: &[&str] = &[
    "0000000000000000000000000000000000000000000000000000000000000000",
    "3c7fdfc09d50f1159d4bc1cc5478c7b37edcce58c36a71fd4a2b93053fb9e416",
];

impl Compiler<'_> {
    pub(super) fn clients(
        &mut self,
        raw: &Spanned<Vec<Spanned<RawClient>>>,
        default_rate: RateLimit,
        tls: Option<&TlsSettings>,
        relay: bool,
    ) -> Vec<ClientConfig> {
        if raw.value.is_empty() {
            self.problem(
                raw,
                "clients",
                "no clients: glgate would refuse every request".into(),
                Some("add a client; `glgate client new NAME` prints one"),
            );
        }
        let mut clients: Vec<ClientConfig> = Vec::new();
        for (index, spanned) in raw.value.iter().enumerate() {
            let client = &spanned.value;
            let key = format!("clients[{index}]");
            if clients.iter().any(|c| *c.name == *client.name.value) {
                self.problem(
                    &client.name,
                    &format!("{key}.name"),
                    format!("client name '{}' is used twice", client.name.value),
                    None,
                );
            }
            let name_ok = !client.name.value.is_empty()
                && client
                    .name
                    .value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !name_ok {
                self.problem(
                    &client.name,
                    &format!("{key}.name"),
                    format!("invalid client name '{}'", client.name.value),
                    Some("letters, digits, '-', '_' and '.'"),
                );
            }
            let digest = match &client.token_sha256 {
                Some(token) => {
                    let digests = self.digests(token, &format!("{key}.token_sha256"));
                    let shared = digests.as_ref().is_some_and(|digests| {
                        digests
                            .iter()
                            .any(|d| clients.iter().any(|c| c.token_sha256.contains(d)))
                    });
                    if shared {
                        self.problem(
                            token,
                            &format!("{key}.token_sha256"),
                            "two clients share one token".into(),
                            Some("give each client its own token: `glgate client new NAME`"),
                        );
                    }
                    digests
                }
                None => Some(Vec::new()),
            };
            let client_cert = client
                .client_cert
                .as_ref()
                .and_then(|cert| self.cert_match(cert, &format!("{key}.client_cert"), tls));
            if client.token_sha256.is_none() && client.client_cert.is_none() {
                self.problem(
                    &client.name,
                    &key,
                    "a client needs a token_sha256, a client_cert, or both".into(),
                    Some("`glgate client new NAME` prints a token and its digest"),
                );
            }
            let source_cidrs = self.networks(&client.source_cidrs, &format!("{key}.source_cidrs"));
            if let (Some(identity), Some(raw_cert)) = (&client_cert, &client.client_cert)
                && client.token_sha256.is_none()
                && clients
                    .iter()
                    .any(|c| c.token_sha256.is_empty() && c.client_cert.as_ref() == Some(identity))
            {
                self.problem(
                    raw_cert,
                    &format!("{key}.client_cert"),
                    "another certificate-only client has the same identity".into(),
                    Some("give each client its own certificate identity"),
                );
            }
            let policy = self.policy(&client.policy, &format!("{key}.policy"));
            let shadow_policy = match &client.shadow_policy {
                Some(path) => self.policy(path, &format!("{key}.shadow_policy")).map(Some),
                None => Some(None),
            };
            let rate_limit = match &client.rate_limit {
                Some(rate) => self.rate_limit(rate, &format!("{key}.rate_limit")),
                None => Some(default_rate),
            };
            let scope = match &client.scope {
                Some(raw_scope) => self.scope(raw_scope, &format!("{key}.scope")).map(Some),
                None => Some(None),
            };
            if let (Some(raw_scope), Some(policy)) = (&client.scope, &policy) {
                self.scope_checkable(raw_scope, &format!("{key}.scope"), policy);
            }
            let webhooks = match &client.webhooks {
                Some(raw) => self.client_webhooks(raw, &key, relay).map(Some),
                None => Some(None),
            };
            if let (
                Some(token_sha256),
                Some(policy),
                Some(shadow_policy),
                Some(rate_limit),
                Some(scope),
                Some(webhooks),
                true,
            ) = (
                digest,
                policy,
                shadow_policy,
                rate_limit,
                scope,
                webhooks,
                name_ok,
            ) {
                clients.push(ClientConfig {
                    name: Arc::from(client.name.value.as_str()),
                    token_sha256,
                    client_cert,
                    source_cidrs,
                    policy,
                    shadow_policy,
                    rate_limit,
                    scope,
                    webhooks,
                });
            }
        }
        clients
    }

    /// One digest, or a non-empty list of distinct digests.
    fn digests(&mut self, value: &Spanned<RawDigests>, key: &str) -> Option<Vec<[u8; 32]>> {
        let texts: Vec<&str> = match &value.value {
            RawDigests::One(text) => vec![text.as_str()],
            RawDigests::Many(texts) => texts.iter().map(String::as_str).collect(),
        };
        if texts.is_empty() {
            self.problem(
                value,
                key,
                "an empty list of digests".into(),
                Some("one digest, or a list such as [\"<old>\", \"<new>\"] while a token rotates"),
            );
            return None;
        }
        let mut digests = Vec::new();
        for text in texts {
            let mut digest = [0u8; 32];
            if hex::decode_to_slice(text.trim(), &mut digest).is_err() {
                self.problem(
                    value,
                    key,
                    "not a SHA-256 digest".into(),
                    Some(
                        "64 hex characters; `glgate client new NAME` prints a token and its digest",
                    ),
                );
                return None;
            }
            if digests.contains(&digest) {
                self.problem(value, key, "a digest is listed twice".into(), None);
                return None;
            }
            if PUBLISHED_DIGESTS.contains(&text.trim().to_ascii_lowercase().as_str()) {
                self.problem(
                    value,
                    key,
                    "this digest is a placeholder published with glgate (or the digest of a token printed in its repository): anyone could send that token".into(),
                    Some("run `glgate client new NAME`, hand the token to the client once, and put the digest it prints here"),
                );
                return None;
            }
            digests.push(digest);
        }
        Some(digests)
    }

    fn policy(&mut self, value: &Spanned<String>, key: &str) -> Option<Arc<Policy>> {
        let path = self.resolve(&value.value);
        if let Some(cached) = self.policies.get(&path) {
            return cached.clone();
        }
        let loaded = if path.is_file() {
            match Policy::load(&path) {
                Ok(policy) => Some(Arc::new(policy)),
                Err(problems) => {
                    self.problems.0.extend(problems.0);
                    None
                }
            }
        } else {
            self.problem(
                value,
                key,
                format!("policy file {} does not exist", path.display()),
                Some("paths are relative to the config file's folder"),
            );
            None
        };
        self.policies.insert(path, loaded.clone());
        loaded
    }

    fn cert_match(
        &mut self,
        raw: &Spanned<RawClientCert>,
        key: &str,
        tls: Option<&TlsSettings>,
    ) -> Option<CertMatch> {
        if tls.and_then(|t| t.client_ca_file.as_ref()).is_none() {
            self.problem(
                raw,
                key,
                "client certificates need inbound TLS with a client CA".into(),
                Some("set tls.cert_file, tls.key_file and tls.client_ca_file"),
            );
        }
        match (&raw.value.subject_cn, &raw.value.san) {
            (Some(cn), None) if !cn.is_empty() => Some(CertMatch::SubjectCn(cn.clone())),
            (None, Some(san)) if !san.is_empty() => Some(CertMatch::San(san.clone())),
            _ => {
                self.problem(
                    raw,
                    key,
                    "give exactly one of subject_cn or san".into(),
                    Some("e.g. { san: echoes.example.com }"),
                );
                None
            }
        }
    }
}
