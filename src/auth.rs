//! Client credentials → [`Principal`].
//!
//! A client sends its glgate token the way GitLab clients send theirs
//! (`PRIVATE-TOKEN: …` or `Authorization: Bearer …`), so an unmodified GitLab
//! client works against glgate. Tokens are compared as SHA-256 digests, in
//! constant time, against every configured client.

use std::sync::Arc;

use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{ClientConfig, RateLimit};
use crate::policy::Policy;

/// Longest client token accepted, in bytes.
const MAX_TOKEN_BYTES: usize = 512;

/// An authenticated client and the policy bound to it.
#[derive(Clone, Debug)]
pub struct Principal {
    /// The client's configured name.
    pub name: Arc<str>,
    /// Its policy.
    pub policy: Arc<Policy>,
    /// Its request rate limit.
    pub rate_limit: RateLimit,
}

/// Why a request is not authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No client token was sent.
    #[error(
        "no client token: send it as 'PRIVATE-TOKEN: <token>' or 'Authorization: Bearer <token>'"
    )]
    Missing,
    /// The token matches no client.
    #[error("invalid client token")]
    Unknown,
    /// More than one credential, or a malformed one.
    #[error("send exactly one client token, in one PRIVATE-TOKEN or Authorization: Bearer header")]
    Malformed,
}

impl AuthError {
    /// A stable short code for audit lines and metrics.
    pub fn code(self) -> &'static str {
        match self {
            AuthError::Missing => "missing_token",
            AuthError::Unknown => "unknown_token",
            AuthError::Malformed => "malformed_token",
        }
    }
}

/// The configured clients, ready to authenticate requests.
#[derive(Debug, Default)]
pub struct ClientTable {
    clients: Vec<ClientConfig>,
}

impl ClientTable {
    /// A table of `clients`.
    pub fn new(clients: Vec<ClientConfig>) -> ClientTable {
        ClientTable { clients }
    }

    /// Authenticates the request's client token.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        let token = presented_token(headers)?;
        let digest: [u8; 32] = Sha256::digest(token).into();
        // Compare against every client without stopping early, so timing
        // tells nothing about which entry (if any) matched.
        let mut found: Option<&ClientConfig> = None;
        for client in &self.clients {
            if bool::from(client.token_sha256.ct_eq(&digest)) {
                found = Some(client);
            }
        }
        let client = found.ok_or(AuthError::Unknown)?;
        Ok(Principal {
            name: client.name.clone(),
            policy: client.policy.clone(),
            rate_limit: client.rate_limit,
        })
    }
}

/// The one client token in the request, from `PRIVATE-TOKEN` or `Authorization: Bearer`.
fn presented_token(headers: &HeaderMap) -> Result<&[u8], AuthError> {
    let mut private = headers.get_all("private-token").iter();
    let mut authorization = headers.get_all(http::header::AUTHORIZATION).iter();
    let token = match (private.next(), authorization.next()) {
        (Some(_), Some(_)) => return Err(AuthError::Malformed),
        (Some(value), None) => value.as_bytes(),
        (None, Some(value)) => bearer(value.as_bytes()).ok_or(AuthError::Malformed)?,
        (None, None) => return Err(AuthError::Missing),
    };
    if private.next().is_some() || authorization.next().is_some() {
        return Err(AuthError::Malformed);
    }
    let token = token.trim_ascii();
    if token.is_empty() || token.len() > MAX_TOKEN_BYTES || !token.iter().all(u8::is_ascii_graphic)
    {
        return Err(AuthError::Malformed);
    }
    Ok(token)
}

fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    scheme.eq_ignore_ascii_case(b"bearer ").then_some(rest)
}

/// The hex SHA-256 of a client token, as written in `token_sha256`.
pub fn token_digest_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn table() -> ClientTable {
        let policy = Policy::compile(
            Path::new("p.yaml"),
            "version: 1\nname: p\nrules: [{id: a, methods: [GET], paths: [/user]}]\n",
        )
        .unwrap();
        let mut digest = [0u8; 32];
        hex::decode_to_slice(token_digest_hex("glg_secret"), &mut digest).unwrap();
        ClientTable::new(vec![ClientConfig {
            name: "echoes".into(),
            token_sha256: digest,
            policy: Arc::new(policy),
            rate_limit: RateLimit::default(),
        }])
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    #[test]
    fn both_header_forms() {
        let t = table();
        assert_eq!(
            &*t.authenticate(&headers(&[("private-token", "glg_secret")]))
                .unwrap()
                .name,
            "echoes"
        );
        assert_eq!(
            &*t.authenticate(&headers(&[("authorization", "Bearer glg_secret")]))
                .unwrap()
                .name,
            "echoes"
        );
        assert_eq!(
            &*t.authenticate(&headers(&[("authorization", "bearer glg_secret")]))
                .unwrap()
                .name,
            "echoes"
        );
    }

    #[test]
    fn refusals() {
        let t = table();
        assert_eq!(
            t.authenticate(&headers(&[])).unwrap_err(),
            AuthError::Missing
        );
        assert_eq!(
            t.authenticate(&headers(&[("private-token", "nope")]))
                .unwrap_err(),
            AuthError::Unknown
        );
        assert_eq!(
            t.authenticate(&headers(&[("authorization", "Basic Z2xnOng=")]))
                .unwrap_err(),
            AuthError::Malformed
        );
        assert_eq!(
            t.authenticate(&headers(&[
                ("private-token", "glg_secret"),
                ("authorization", "Bearer glg_secret")
            ]))
            .unwrap_err(),
            AuthError::Malformed
        );
        assert_eq!(
            t.authenticate(&headers(&[
                ("private-token", "glg_secret"),
                ("private-token", "glg_secret")
            ]))
            .unwrap_err(),
            AuthError::Malformed
        );
    }
}
