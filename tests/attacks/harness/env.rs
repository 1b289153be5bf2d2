//! The sandbox's addresses and secrets: the placeholders rows are written
//! with, and what no answer may reveal.

use std::net::SocketAddr;

use crate::support::sandbox::Sandbox;

use super::rows::Fwd;

/// The sandbox's addresses and secrets, for placeholders and leak checks.
pub struct Env {
    pub proxy: SocketAddr,
    pub base_url: String,
    pub client_token: String,
    pub gitlab_token: String,
    pub fake_addr: String,
    /// Never anywhere in an answer.
    pub secrets: Vec<String>,
}

impl Env {
    pub fn of(sb: &Sandbox) -> Env {
        Env {
            proxy: sb.server.addr,
            base_url: sb.base_url(),
            client_token: sb.client_token.clone(),
            gitlab_token: sb.gitlab_token.clone(),
            fake_addr: sb.fake.addr().to_string(),
            secrets: vec![sb.client_token.clone(), sb.gitlab_token.clone()],
        }
    }

    pub fn fill(&self, text: &str) -> String {
        text.replace("{TOKEN}", &self.client_token)
            .replace("{GITLAB}", &self.gitlab_token)
            .replace("{FAKE}", &self.fake_addr)
            .replace("{PROXY}", &self.proxy.to_string())
    }

    pub fn fill_bytes(&self, bytes: &[u8]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        for (from, to) in [
            ("{TOKEN}", self.client_token.clone()),
            ("{GITLAB}", self.gitlab_token.clone()),
            ("{FAKE}", self.fake_addr.clone()),
            ("{PROXY}", self.proxy.to_string()),
        ] {
            out = replace_bytes(&out, from.as_bytes(), to.as_bytes());
        }
        out
    }

    pub fn fill_fwd(&self, fwd: &Fwd) -> Fwd {
        Fwd {
            method: fwd.method.clone(),
            target: self.fill(&fwd.target),
            body: self.fill_bytes(&fwd.body),
            content_type: fwd.content_type.clone(),
        }
    }
}

pub fn replace_bytes(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}
