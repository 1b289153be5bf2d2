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

use std::net::IpAddr;

use ipnet::IpNet;

use crate::config::{CertMatch, ClientConfig, RateLimit};
use crate::policy::Policy;
use crate::tls::ClientIdentity;

/// Longest client token accepted, in bytes.
const MAX_TOKEN_BYTES: usize = 512;

/// An authenticated client and the policy bound to it.
#[derive(Clone, Debug)]
pub(crate) struct Principal {
    /// The client's configured name.
    pub name: Arc<str>,
    /// Its policy.
    pub policy: Arc<Policy>,
    /// Its request rate limit.
    pub rate_limit: RateLimit,
    /// The policy evaluated beside the real one, never enforced.
    pub shadow_policy: Option<Arc<Policy>>,
    /// The groups and projects it may reach (`None`: all the token can see).
    pub scope: Option<Arc<crate::scope::Scope>>,
    /// Whether its hooks are relayed through glgate (it has a payload policy).
    pub relays_webhooks: bool,
}

/// Why a request is not authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AuthError {
    /// No client token (and no certificate that identifies a client) was sent.
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
    /// The client must also present its client certificate.
    #[error("this client must present its client certificate")]
    CertificateRequired,
    /// The client called from a network it is not allowed to call from.
    #[error("this client may not call from this address")]
    SourceNotAllowed,
}

impl AuthError {
    /// A stable short code for audit lines and metrics.
    pub(crate) fn code(self) -> &'static str {
        match self {
            AuthError::Missing => "missing_token",
            AuthError::Unknown => "unknown_token",
            AuthError::Malformed => "malformed_token",
            AuthError::CertificateRequired => "certificate_required",
            AuthError::SourceNotAllowed => "source_not_allowed",
        }
    }
}

/// A refused authentication: why, and which client it was when the token
/// (or certificate) named one, so the audit line can say so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rejection {
    /// Why.
    pub error: AuthError,
    /// The client the credential belongs to, when it names one.
    pub client: Option<Arc<str>>,
}

impl From<AuthError> for Rejection {
    fn from(error: AuthError) -> Rejection {
        Rejection {
            error,
            client: None,
        }
    }
}

/// What the connection says about the caller, beyond its headers.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Peer<'a> {
    /// The verified client certificate's identity (mutual TLS).
    pub identity: Option<&'a ClientIdentity>,
    /// The caller's address (behind trusted proxies, the one they report).
    pub ip: Option<IpAddr>,
}

/// The configured clients, ready to authenticate requests.
#[derive(Debug, Default)]
pub struct ClientTable {
    clients: Vec<ClientConfig>,
}

impl ClientTable {
    /// A table of `clients`.
    pub(crate) fn new(clients: Vec<ClientConfig>) -> ClientTable {
        ClientTable { clients }
    }

    /// Authenticates the request: its client token (or, for a
    /// certificate-only client, its client certificate), then the
    /// certificate and source network the client's config requires.
    pub(crate) fn authenticate(
        &self,
        headers: &HeaderMap,
        peer: Peer<'_>,
    ) -> Result<Principal, Rejection> {
        let client = match presented_token(headers) {
            Ok(token) => self.by_token(token)?,
            Err(AuthError::Missing) => self.by_certificate(peer.identity)?,
            Err(error) => return Err(error.into()),
        };
        let rejected = |error| Rejection {
            error,
            client: Some(client.name.clone()),
        };
        if let Some(required) = &client.client_cert
            && !peer
                .identity
                .is_some_and(|identity| certificate_matches(required, identity))
        {
            return Err(rejected(AuthError::CertificateRequired));
        }
        let allowed_source = client.source_cidrs.is_empty()
            || peer
                .ip
                .is_some_and(|ip| client.source_cidrs.iter().any(|net| net.contains(&ip)));
        if !allowed_source {
            return Err(rejected(AuthError::SourceNotAllowed));
        }
        Ok(Principal {
            name: client.name.clone(),
            policy: client.policy.clone(),
            rate_limit: client.rate_limit,
            shadow_policy: client.shadow_policy.clone(),
            scope: client.scope.clone(),
            relays_webhooks: client.webhooks.is_some(),
        })
    }

    fn by_token(&self, token: &[u8]) -> Result<&ClientConfig, AuthError> {
        let digest: [u8; 32] = Sha256::digest(token).into();
        // Compare against every client without stopping early, so timing
        // tells nothing about which entry (if any) matched.
        let mut found: Option<&ClientConfig> = None;
        for client in &self.clients {
            // Every digest of a client is compared too: during a rotation
            // both the old and the new token are valid.
            for expected in &client.token_sha256 {
                if bool::from(expected.ct_eq(&digest)) {
                    found = Some(client);
                }
            }
        }
        found.ok_or(AuthError::Unknown)
    }

    fn by_certificate(
        &self,
        identity: Option<&ClientIdentity>,
    ) -> Result<&ClientConfig, AuthError> {
        let identity = identity.ok_or(AuthError::Missing)?;
        self.clients
            .iter()
            .filter(|client| client.token_sha256.is_empty())
            .find(|client| {
                client
                    .client_cert
                    .as_ref()
                    .is_some_and(|m| certificate_matches(m, identity))
            })
            .ok_or(AuthError::Missing)
    }
}

/// Whether the verified certificate `identity` is the one `required` names.
/// Lives here, not in config, because deciding who a client is belongs to
/// authentication (and keeps config free of TLS types).
fn certificate_matches(required: &CertMatch, identity: &ClientIdentity) -> bool {
    match required {
        CertMatch::SubjectCn(cn) => identity.common_names.iter().any(|c| c == cn),
        CertMatch::San(san) => identity.alt_names.iter().any(|s| s == san),
    }
}

/// The caller's address: the peer's, or, when the peer is a trusted proxy,
/// the nearest `X-Forwarded-For` address that is not a trusted proxy.
/// `None` when a hop cannot be read (fail closed).
///
/// Only `X-Forwarded-For` is read: it is what proxies append to; a
/// `Forwarded` header is usually passed through from the client unchanged,
/// so believing it would let a client choose its own address.
pub(crate) fn client_ip(remote: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&remote) {
        return Some(remote);
    }
    let mut hops = Vec::new();
    for value in headers.get_all(X_FORWARDED_FOR) {
        hops.extend(value.to_str().ok()?.split(','));
    }
    let mut nearest = remote;
    for hop in hops.iter().rev() {
        nearest = parse_hop(hop)?;
        if !is_trusted(&nearest) {
            return Some(nearest);
        }
    }
    Some(nearest)
}

/// `203.0.113.7`, `"[2001:db8::1]:4711"`, `203.0.113.7:80`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim().trim_matches('"');
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(inner) = hop.strip_prefix('[') {
        return inner.split(']').next()?.parse().ok();
    }
    hop.rsplit_once(':')?.0.parse().ok()
}

/// `PRIVATE-TOKEN`, parsed once (a `&str` name is parsed and hashed at every lookup).
const PRIVATE_TOKEN: http::HeaderName = http::HeaderName::from_static("private-token");
/// `X-Forwarded-For`, parsed once.
const X_FORWARDED_FOR: http::HeaderName = http::HeaderName::from_static("x-forwarded-for");

/// The one client token in the request, from `PRIVATE-TOKEN` or `Authorization: Bearer`.
fn presented_token(headers: &HeaderMap) -> Result<&[u8], AuthError> {
    let mut private = headers.get_all(PRIVATE_TOKEN).iter();
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
            token_sha256: vec![digest],
            client_cert: None,
            source_cidrs: Vec::new(),
            shadow_policy: None,
            policy: Arc::new(policy),
            rate_limit: RateLimit::default(),
            scope: None,
            webhooks: None,
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
            &*t.authenticate(
                &headers(&[("private-token", "glg_secret")]),
                Peer::default()
            )
            .unwrap()
            .name,
            "echoes"
        );
        assert_eq!(
            &*t.authenticate(
                &headers(&[("authorization", "Bearer glg_secret")]),
                Peer::default()
            )
            .unwrap()
            .name,
            "echoes"
        );
        assert_eq!(
            &*t.authenticate(
                &headers(&[("authorization", "bearer glg_secret")]),
                Peer::default()
            )
            .unwrap()
            .name,
            "echoes"
        );
    }

    #[test]
    fn refusals() {
        let t = table();
        assert_eq!(
            t.authenticate(&headers(&[]), Peer::default())
                .unwrap_err()
                .error,
            AuthError::Missing
        );
        assert_eq!(
            t.authenticate(&headers(&[("private-token", "nope")]), Peer::default())
                .unwrap_err()
                .error,
            AuthError::Unknown
        );
        assert_eq!(
            t.authenticate(
                &headers(&[("authorization", "Basic Z2xnOng=")]),
                Peer::default()
            )
            .unwrap_err()
            .error,
            AuthError::Malformed
        );
        assert_eq!(
            t.authenticate(
                &headers(&[
                    ("private-token", "glg_secret"),
                    ("authorization", "Bearer glg_secret")
                ]),
                Peer::default()
            )
            .unwrap_err()
            .error,
            AuthError::Malformed
        );
        assert_eq!(
            t.authenticate(
                &headers(&[
                    ("private-token", "glg_secret"),
                    ("private-token", "glg_secret")
                ]),
                Peer::default()
            )
            .unwrap_err()
            .error,
            AuthError::Malformed
        );
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let trusted = nets(&["10.0.0.0/8"]);
        let spoofed = headers(&[("x-forwarded-for", "203.0.113.9")]);
        let stranger: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(client_ip(stranger, &spoofed, &trusted), Some(stranger));
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        let chain = headers(&[("x-forwarded-for", "203.0.113.9, 198.51.100.7, 10.9.9.9")]);
        assert_eq!(
            client_ip(proxy, &chain, &trusted),
            Some("198.51.100.7".parse().unwrap())
        );
        let spoofed_forwarded = headers(&[
            ("forwarded", "for=203.0.113.5"),
            ("x-forwarded-for", "198.51.100.66"),
        ]);
        assert_eq!(
            client_ip(proxy, &spoofed_forwarded, &trusted),
            Some("198.51.100.66".parse().unwrap()),
            "a client's own Forwarded header is not believed"
        );
        let v6 = headers(&[("x-forwarded-for", "[2001:db8::1]:443")]);
        assert_eq!(
            client_ip(proxy, &v6, &trusted),
            Some("2001:db8::1".parse().unwrap())
        );
        let garbage = headers(&[("x-forwarded-for", "not-an-ip")]);
        assert_eq!(client_ip(proxy, &garbage, &trusted), None, "fail closed");
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &trusted), Some(proxy));
    }
}
