//! The config file: raw serde structs compiled into a [`Config`] that cannot
//! be invalid. Every problem of the config and of every policy it names is
//! reported at once, with file, line, column and key. No network I/O here.

mod raw;
mod startup;
mod url;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_saphyr::Spanned;

pub use startup::{StartupChange, StartupSettings};
pub use url::BaseUrl;

use crate::diagnostic::{Diagnostic, Diagnostics, Position, parse_yaml, read_source};
use crate::policy::Policy;
use crate::scope::{FullPath, Scope};
use ipnet::IpNet;
use raw::{
    RawClient, RawClientCert, RawConfig, RawDigests, RawLimits, RawOAuth, RawRateLimit, RawScope,
    RawScopeCache, RawTls, RawUpstream,
};

/// The config file format version this build reads.
pub const CONFIG_VERSION: u32 = 1;

/// Default cap on a response body relayed from GitLab (large MR diffs fit).
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;

/// Where the GitLab token is read from. The token itself is never in the YAML.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSource {
    /// An environment variable.
    Env(String),
    /// A file (trailing newline ignored), re-read when it changes.
    File(PathBuf),
    /// OAuth access tokens obtained with a refresh token.
    OAuth(OAuthSettings),
}

/// The redirect URI `glgate oauth login` listens on when none is configured.
pub const DEFAULT_OAUTH_REDIRECT_URI: &str = "http://127.0.0.1:7171/callback";

/// How often `token_file` is checked for a new token by default.
pub const DEFAULT_TOKEN_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// The compiled `upstream.oauth:` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthSettings {
    /// The application's id.
    pub client_id: String,
    /// File holding the application's secret.
    pub client_secret_file: PathBuf,
    /// File holding the current refresh token.
    pub refresh_token_file: PathBuf,
    /// The registered (loopback) redirect URI.
    pub redirect_uri: String,
}

/// The compiled `upstream:` section.
#[derive(Clone, Debug)]
pub struct UpstreamConfig {
    /// Where glgate sends requests.
    pub url: BaseUrl,
    /// The base GitLab writes into `Link` and `Location` (defaults to `url`).
    pub external_url: BaseUrl,
    /// Where the token comes from.
    pub token: TokenSource,
    /// How often `token_file` is checked for a new token.
    pub token_reload_interval: Duration,
    /// Rotate the token when it expires within this long (`auto_rotate`).
    pub auto_rotate: Option<Duration>,
    /// Extra CA certificates for GitLab.
    pub ca_file: Option<PathBuf>,
    /// Bound on connecting.
    pub connect_timeout: Duration,
    /// Bound on waiting for response headers.
    pub response_timeout: Duration,
    /// Longest pause while a response body streams.
    pub body_idle_timeout: Duration,
    /// Largest response body relayed.
    pub max_response_bytes: u64,
    /// Client certificate and key for a GitLab behind mutual TLS.
    pub client_identity: Option<(PathBuf, PathBuf)>,
}

/// The compiled `tls:` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM certificate chain.
    pub cert_file: PathBuf,
    /// PEM private key.
    pub key_file: PathBuf,
    /// CA for client certificates.
    pub client_ca_file: Option<PathBuf>,
    /// Refuse handshakes without a client certificate.
    pub require_client_cert: bool,
    /// How often the files are checked.
    pub reload_interval: Duration,
}

/// Bounds of the scope lookup cache (`scope_cache`); the cache itself lives in
/// `scope::resolve`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheSettings {
    /// How long an answer is reused.
    pub ttl: Duration,
    /// Most ids kept; the oldest go first.
    pub max_entries: usize,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            ttl: Duration::from_secs(60),
            max_entries: 10_000,
        }
    }
}

/// Which client certificate identifies a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertMatch {
    /// A subject common name.
    SubjectCn(String),
    /// A DNS or URI subject alternative name.
    San(String),
}

/// One compiled client.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Its name.
    pub name: Arc<str>,
    /// SHA-256 digests of its tokens: usually one, two while its token
    /// rotates, none for a certificate-only client.
    pub token_sha256: Vec<[u8; 32]>,
    /// The client certificate identity it must present, if any.
    pub client_cert: Option<CertMatch>,
    /// Networks it may call from (empty: anywhere).
    pub source_cidrs: Vec<IpNet>,
    /// Its compiled policy.
    pub policy: Arc<Policy>,
    /// A policy evaluated beside the real one and never enforced.
    pub shadow_policy: Option<Arc<Policy>>,
    /// Its rate limit.
    pub rate_limit: RateLimit,
    /// The groups and projects it may reach (`None`: all the token can see).
    pub scope: Option<Arc<Scope>>,
}

/// A token-bucket rate limit: `per_second` sustained, `burst` above it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: f64,
    /// Extra requests allowed at once.
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            per_second: 50.0,
            burst: 100,
        }
    }
}

/// Where audit lines go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditOutput {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// A file, appended to.
    File(PathBuf),
}

/// Size and time bounds.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Largest request body read for any rule.
    pub max_body_bytes: u64,
    /// Largest request head.
    pub max_header_bytes: usize,
    /// Bound on receiving headers.
    pub header_read_timeout: Duration,
    /// How long a connection with no request in flight stays open.
    pub idle_timeout: Duration,
    /// Bound on receiving a body.
    pub body_read_timeout: Duration,
    /// Drain deadline at shutdown.
    pub shutdown_grace: Duration,
    /// Most client connections open at once.
    pub max_connections: usize,
    /// Most concurrent HTTP/2 streams per connection.
    pub http2_max_concurrent_streams: u32,
    /// Most client-reset HTTP/2 streams pending before the connection is closed.
    pub http2_max_pending_reset_streams: usize,
    /// Default rate limit of every client.
    pub client_rate_limit: RateLimit,
    /// Largest GitLab answer read whole to filter it.
    pub max_filtered_response_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1024 * 1024,
            max_header_bytes: 32 * 1024,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_read_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
            max_connections: 1024,
            http2_max_concurrent_streams: 100,
            http2_max_pending_reset_streams: 20,
            client_rate_limit: RateLimit::default(),
            max_filtered_response_bytes: 8 * 1024 * 1024,
        }
    }
}

/// A whole, valid configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it was read from.
    pub source: PathBuf,
    /// The proxy's listen address.
    pub listen: SocketAddr,
    /// The public URL, when configured (otherwise derived from the bound address).
    pub public_url: Option<BaseUrl>,
    /// The GitLab behind glgate.
    pub upstream: UpstreamConfig,
    /// The clients.
    pub clients: Vec<ClientConfig>,
    /// The admin listener, if any.
    pub admin_listen: Option<SocketAddr>,
    /// Audit destination.
    pub audit: AuditOutput,
    /// Bounds.
    pub limits: Limits,
    /// Inbound TLS, if configured.
    pub tls: Option<TlsSettings>,
    /// Proxies whose forwarding headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// How scope resolutions are cached.
    pub scope_cache: CacheSettings,
}

/// The JSON Schema of config files, generated from the types that read them.
pub fn json_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(RawConfig).to_value();
    schema["title"] = "glgate config".into();
    schema
}

impl Config {
    /// Reads and compiles a config file and every policy it names.
    pub fn load(path: &Path) -> Result<Config, Diagnostics> {
        let text = read_source(path, "config")?;
        Config::compile(path, &text)
    }

    /// Compiles config `text`; `source` names the file and anchors relative paths.
    pub fn compile(source: &Path, text: &str) -> Result<Config, Diagnostics> {
        parse_yaml::<RawConfig>(source, text)
            .and_then(|raw| Compiler::new(source).compile(raw))
            .map_err(|problems| problems.with_source(source, text))
    }

    /// The distinct policies in use, in client order.
    pub fn policies(&self) -> Vec<&Arc<Policy>> {
        let mut seen: Vec<&Arc<Policy>> = Vec::new();
        for client in &self.clients {
            if !seen.iter().any(|p| Arc::ptr_eq(p, &client.policy)) {
                seen.push(&client.policy);
            }
        }
        seen
    }
}

struct Compiler<'a> {
    source: &'a Path,
    folder: PathBuf,
    problems: Diagnostics,
    policies: HashMap<PathBuf, Option<Arc<Policy>>>,
}

impl<'a> Compiler<'a> {
    fn new(source: &'a Path) -> Compiler<'a> {
        let folder = source
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Compiler {
            source,
            folder,
            problems: Diagnostics::default(),
            policies: HashMap::new(),
        }
    }

    fn problem<T>(&mut self, at: &Spanned<T>, key: &str, message: String, hint: Option<&str>) {
        let mut diagnostic = Diagnostic::new(self.source, Position::of(at), key, message);
        diagnostic.hint = hint.map(str::to_owned);
        self.problems.push(diagnostic);
    }

    fn compile(mut self, raw: RawConfig) -> Result<Config, Diagnostics> {
        if raw.version.value != CONFIG_VERSION {
            self.problem(
                &raw.version,
                "version",
                format!("unsupported config version {}", raw.version.value),
                Some("this glgate reads version 1"),
            );
        }
        let listen = self.address(&raw.listen, "listen");
        if listen.is_some_and(|addr| !addr.ip().is_loopback()) && raw.public_url.is_none() {
            self.problem(
                &raw.listen,
                "public_url",
                "glgate listens beyond this host, so clients need to be told how to reach it"
                    .into(),
                Some("set public_url to the URL clients use, e.g. https://glgate.acme.com"),
            );
        }
        let public_url = raw
            .public_url
            .as_ref()
            .and_then(|url| self.base_url(url, "public_url"));
        let upstream = self.upstream(&raw.upstream);
        let limits = self.limits(raw.limits.as_ref());
        let tls = raw.tls.as_ref().map(|tls| self.tls(tls));
        let clients = self.clients(&raw.clients, limits.client_rate_limit, tls.as_ref());
        let trusted_proxies = self.networks(&raw.trusted_proxies, "trusted_proxies");
        let scope_cache = self.scope_cache(raw.scope_cache.as_ref());
        let admin_listen = raw
            .admin
            .as_ref()
            .and_then(|admin| self.address(&admin.listen, "admin.listen"));
        let audit = match raw.audit.as_ref().map(|a| a.output.value.as_str()) {
            None | Some("stdout") => AuditOutput::Stdout,
            Some("stderr") => AuditOutput::Stderr,
            Some(path) => AuditOutput::File(self.resolve(path)),
        };
        let (Some(listen), Some(upstream)) = (listen, upstream) else {
            return Err(self.problems);
        };
        let config = Config {
            source: self.source.to_path_buf(),
            listen,
            public_url,
            upstream,
            clients,
            admin_listen,
            audit,
            limits,
            tls,
            trusted_proxies,
            scope_cache,
        };
        self.problems.into_result(config)
    }

    fn resolve(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.folder.join(path)
        }
    }

    fn address(&mut self, value: &Spanned<String>, key: &str) -> Option<SocketAddr> {
        match value.value.parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                self.problem(
                    value,
                    key,
                    format!("'{}' is not an address", value.value),
                    Some("an IP address and port, e.g. 127.0.0.1:8080 or [::]:8443"),
                );
                None
            }
        }
    }

    fn base_url(&mut self, value: &Spanned<String>, key: &str) -> Option<BaseUrl> {
        match BaseUrl::parse(&value.value) {
            Ok(url) => Some(url),
            Err(message) => {
                self.problem(
                    value,
                    key,
                    message,
                    Some("e.g. https://gitlab.example.com or https://host/gitlab"),
                );
                None
            }
        }
    }

    fn duration(
        &mut self,
        value: Option<&Spanned<String>>,
        key: &str,
        default: Duration,
    ) -> Duration {
        let Some(value) = value else {
            return default;
        };
        match humantime::parse_duration(&value.value) {
            Ok(duration) if !duration.is_zero() => duration,
            _ => {
                self.problem(
                    value,
                    key,
                    format!("'{}' is not a duration", value.value),
                    Some("e.g. 500ms, 10s, 2m"),
                );
                default
            }
        }
    }

    fn upstream(&mut self, raw: &Spanned<RawUpstream>) -> Option<UpstreamConfig> {
        let upstream = &raw.value;
        let url = self.base_url(&upstream.url, "upstream.url");
        let external_url = match &upstream.external_url {
            Some(external) => self.base_url(external, "upstream.external_url"),
            None => url.clone(),
        };
        let token = match (&upstream.token_env, &upstream.token_file, &upstream.oauth) {
            (Some(env), None, None) if !env.value.is_empty() => {
                Some(TokenSource::Env(env.value.clone()))
            }
            (None, Some(file), None) if !file.value.is_empty() => {
                Some(TokenSource::File(self.resolve(&file.value)))
            }
            (None, None, Some(oauth)) => self.oauth(oauth).map(TokenSource::OAuth),
            _ => {
                self.problem(
                    raw,
                    "upstream",
                    "give exactly one of 'token_env', 'token_file' or 'oauth'".into(),
                    Some(
                        "token_env: GITLAB_TOKEN, or token_file: /run/secrets/gitlab-token, or oauth: {client_id, client_secret_file, refresh_token_file}",
                    ),
                );
                None
            }
        };
        let token_reload_interval = self.duration(
            upstream.token_reload_interval.as_ref(),
            "upstream.token_reload_interval",
            DEFAULT_TOKEN_RELOAD_INTERVAL,
        );
        if let Some(interval) = &upstream.token_reload_interval
            && upstream.token_file.is_none()
        {
            self.problem(
                interval,
                "upstream.token_reload_interval",
                "only a token_file is reloaded".into(),
                Some("remove token_reload_interval, or read the token from token_file"),
            );
        }
        let auto_rotate = upstream.auto_rotate.as_ref().map(|rotate| {
            if upstream.token_file.is_none() {
                self.problem(
                    rotate,
                    "upstream.auto_rotate",
                    "auto_rotate needs a token_file to write the new token to: GitLab revokes the old token at once, so a rotated token that is not saved is lost".into(),
                    Some("read the token from token_file: /run/secrets/gitlab-token, or remove auto_rotate"),
                );
            }
            self.duration(
                Some(&rotate.value.before_expiry),
                "upstream.auto_rotate.before_expiry",
                Duration::from_secs(7 * 86_400),
            )
        });
        let plain_http_elsewhere = url
            .as_ref()
            .is_some_and(|url| !url.is_https() && !url.is_loopback());
        if plain_http_elsewhere && !upstream.danger_allow_plain_http {
            self.problem(
                &upstream.url,
                "upstream.url",
                "plain http to a GitLab on another host would send the GitLab token unencrypted".into(),
                Some("use https://, or set upstream.danger_allow_plain_http: true on a network you trust"),
            );
        }
        let ca_file = upstream.ca_file.as_ref().map(|f| self.resolve(&f.value));
        let connect_timeout = self.duration(
            upstream.connect_timeout.as_ref(),
            "upstream.connect_timeout",
            Duration::from_secs(5),
        );
        let response_timeout = self.duration(
            upstream.response_timeout.as_ref(),
            "upstream.response_timeout",
            Duration::from_secs(60),
        );
        let body_idle_timeout = self.duration(
            upstream.body_idle_timeout.as_ref(),
            "upstream.body_idle_timeout",
            Duration::from_secs(30),
        );
        let max_response_bytes = upstream
            .max_response_bytes
            .as_ref()
            .map_or(DEFAULT_MAX_RESPONSE_BYTES, |v| v.value);
        let client_identity = match (&upstream.client_cert_file, &upstream.client_key_file) {
            (Some(cert), Some(key)) => Some((self.resolve(&cert.value), self.resolve(&key.value))),
            (None, None) => None,
            (Some(file), None) | (None, Some(file)) => {
                self.problem(
                    file,
                    "upstream",
                    "client_cert_file and client_key_file go together".into(),
                    None,
                );
                None
            }
        };
        Some(UpstreamConfig {
            client_identity,
            body_idle_timeout,
            max_response_bytes,
            url: url?,
            external_url: external_url?,
            token: token?,
            token_reload_interval,
            auto_rotate,
            ca_file,
            connect_timeout,
            response_timeout,
        })
    }

    fn oauth(&mut self, raw: &Spanned<RawOAuth>) -> Option<OAuthSettings> {
        let oauth = &raw.value;
        let mut ok = true;
        for (value, key) in [
            (&oauth.client_id, "upstream.oauth.client_id"),
            (
                &oauth.client_secret_file,
                "upstream.oauth.client_secret_file",
            ),
            (
                &oauth.refresh_token_file,
                "upstream.oauth.refresh_token_file",
            ),
        ] {
            if value.value.trim().is_empty() {
                self.problem(value, key, "must not be empty".into(), None);
                ok = false;
            }
        }
        let redirect_uri = match &oauth.redirect_uri {
            Some(uri) => {
                let loopback = uri
                    .value
                    .strip_prefix("http://127.0.0.1:")
                    .and_then(|rest| rest.split_once('/'))
                    .is_some_and(|(port, _)| port.parse::<u16>().is_ok_and(|p| p != 0));
                if !loopback {
                    self.problem(
                        uri,
                        "upstream.oauth.redirect_uri",
                        format!("'{}' is not a loopback redirect URI", uri.value),
                        Some("http://127.0.0.1:PORT/callback, as registered for the application"),
                    );
                    ok = false;
                }
                uri.value.clone()
            }
            None => DEFAULT_OAUTH_REDIRECT_URI.to_owned(),
        };
        ok.then(|| OAuthSettings {
            client_id: oauth.client_id.value.clone(),
            client_secret_file: self.resolve(&oauth.client_secret_file.value),
            refresh_token_file: self.resolve(&oauth.refresh_token_file.value),
            redirect_uri,
        })
    }

    fn clients(
        &mut self,
        raw: &Spanned<Vec<Spanned<RawClient>>>,
        default_rate: RateLimit,
        tls: Option<&TlsSettings>,
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
            if let (
                Some(token_sha256),
                Some(policy),
                Some(shadow_policy),
                Some(rate_limit),
                Some(scope),
                true,
            ) = (digest, policy, shadow_policy, rate_limit, scope, name_ok)
            {
                clients.push(ClientConfig {
                    name: Arc::from(client.name.value.as_str()),
                    token_sha256,
                    client_cert,
                    source_cidrs,
                    policy,
                    shadow_policy,
                    rate_limit,
                    scope,
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

    fn tls(&mut self, raw: &Spanned<RawTls>) -> TlsSettings {
        let tls = &raw.value;
        if tls.require_client_cert && tls.client_ca_file.is_none() {
            self.problem(
                raw,
                "tls.require_client_cert",
                "client certificates cannot be required without a CA to check them".into(),
                Some("set tls.client_ca_file"),
            );
        }
        TlsSettings {
            cert_file: self.resolve(&tls.cert_file.value),
            key_file: self.resolve(&tls.key_file.value),
            client_ca_file: tls.client_ca_file.as_ref().map(|f| self.resolve(&f.value)),
            require_client_cert: tls.require_client_cert,
            reload_interval: self.duration(
                tls.reload_interval.as_ref(),
                "tls.reload_interval",
                Duration::from_secs(10),
            ),
        }
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

    fn networks(&mut self, raw: &[Spanned<String>], key: &str) -> Vec<IpNet> {
        raw.iter()
            .filter_map(|text| {
                let value = text.value.trim();
                let parsed = value
                    .parse::<IpNet>()
                    .or_else(|_| value.parse::<std::net::IpAddr>().map(IpNet::from));
                match parsed {
                    Ok(net) => Some(net.trunc()),
                    Err(_) => {
                        self.problem(
                            text,
                            key,
                            format!("'{value}' is not a network"),
                            Some(
                                "an address or a CIDR block, e.g. 203.0.113.0/24 or 2001:db8::/32",
                            ),
                        );
                        None
                    }
                }
            })
            .collect()
    }

    fn rate_limit(&mut self, raw: &Spanned<RawRateLimit>, key: &str) -> Option<RateLimit> {
        let rate = &raw.value;
        if rate.per_second.is_finite() && rate.per_second > 0.0 && rate.burst >= 1 {
            Some(RateLimit {
                per_second: rate.per_second,
                burst: rate.burst,
            })
        } else {
            self.problem(
                raw,
                key,
                "a rate limit needs per_second > 0 and burst >= 1".into(),
                Some("e.g. { per_second: 20, burst: 40 }"),
            );
            None
        }
    }

    fn positive<T: Copy + Into<u64>>(
        &mut self,
        value: Option<&Spanned<T>>,
        key: &str,
        default: u64,
    ) -> u64 {
        match value {
            Some(v) if v.value.into() > 0 => v.value.into(),
            Some(v) => {
                self.problem(v, key, "must be at least 1".into(), None);
                default
            }
            None => default,
        }
    }

    fn limits(&mut self, raw: Option<&RawLimits>) -> Limits {
        let defaults = Limits::default();
        let Some(raw) = raw else {
            return defaults;
        };
        let max_body_bytes = raw
            .max_body_bytes
            .as_ref()
            .map_or(defaults.max_body_bytes, |v| v.value);
        let max_header_bytes = match &raw.max_header_bytes {
            Some(v) if (8192..=1024 * 1024).contains(&v.value) => v.value as usize,
            Some(v) => {
                self.problem(
                    v,
                    "limits.max_header_bytes",
                    format!("{} is out of range", v.value),
                    Some("from 8192 to 1048576"),
                );
                defaults.max_header_bytes
            }
            None => defaults.max_header_bytes,
        };
        Limits {
            max_body_bytes,
            max_header_bytes,
            header_read_timeout: self.duration(
                raw.header_read_timeout.as_ref(),
                "limits.header_read_timeout",
                defaults.header_read_timeout,
            ),
            idle_timeout: self.duration(
                raw.idle_timeout.as_ref(),
                "limits.idle_timeout",
                defaults.idle_timeout,
            ),
            body_read_timeout: self.duration(
                raw.body_read_timeout.as_ref(),
                "limits.body_read_timeout",
                defaults.body_read_timeout,
            ),
            shutdown_grace: self.duration(
                raw.shutdown_grace.as_ref(),
                "limits.shutdown_grace",
                defaults.shutdown_grace,
            ),
            max_connections: self.positive(
                raw.max_connections.as_ref(),
                "limits.max_connections",
                defaults.max_connections as u64,
            ) as usize,
            http2_max_concurrent_streams: self.positive(
                raw.http2_max_concurrent_streams.as_ref(),
                "limits.http2_max_concurrent_streams",
                u64::from(defaults.http2_max_concurrent_streams),
            ) as u32,
            http2_max_pending_reset_streams: self.positive(
                raw.http2_max_pending_reset_streams.as_ref(),
                "limits.http2_max_pending_reset_streams",
                defaults.http2_max_pending_reset_streams as u64,
            ) as usize,
            client_rate_limit: match &raw.client_rate_limit {
                Some(rate) => self
                    .rate_limit(rate, "limits.client_rate_limit")
                    .unwrap_or(defaults.client_rate_limit),
                None => defaults.client_rate_limit,
            },
            max_filtered_response_bytes: self.positive(
                raw.max_filtered_response_bytes.as_ref(),
                "limits.max_filtered_response_bytes",
                defaults.max_filtered_response_bytes as u64,
            ) as usize,
        }
    }

    /// A client's scope: every path well formed, the whole neither empty nor
    /// contradictory.
    fn scope(&mut self, raw: &Spanned<RawScope>, key: &str) -> Option<Arc<Scope>> {
        let mut lists = Vec::with_capacity(3);
        let mut valid = true;
        for (name, entries) in [
            ("groups", &raw.value.groups),
            ("projects", &raw.value.projects),
            ("exclude", &raw.value.exclude),
        ] {
            let mut paths = Vec::with_capacity(entries.len());
            for entry in entries {
                match FullPath::parse(entry.value.trim()) {
                    Ok(path) => paths.push((path, entry)),
                    Err(message) => {
                        valid = false;
                        self.problem(
                            entry,
                            &format!("{key}.{name}"),
                            message,
                            Some("a full path as GitLab shows it, e.g. acme/platform"),
                        );
                    }
                }
            }
            lists.push(paths);
        }
        if !valid {
            return None;
        }
        let plain = |list: &[(FullPath, &Spanned<String>)]| -> Vec<FullPath> {
            list.iter().map(|(path, _)| path.clone()).collect()
        };
        match Scope::new(plain(&lists[0]), plain(&lists[1]), plain(&lists[2])) {
            Ok(scope) => Some(Arc::new(scope)),
            Err(error) => {
                // Point at the entry the error names, else at `scope:` itself.
                let named = match &error {
                    crate::scope::ScopeError::Duplicate(p)
                    | crate::scope::ScopeError::NestedGroup(p, _)
                    | crate::scope::ScopeError::ProjectInGroup(p, _)
                    | crate::scope::ScopeError::ExcludesNothing(p) => Some(p),
                    crate::scope::ScopeError::IncludedAndExcluded(_, excluded) => Some(excluded),
                    crate::scope::ScopeError::Empty => None,
                };
                // A duplicate is reported at its second appearance.
                let names = ["groups", "projects", "exclude"];
                let at = named.and_then(|path| {
                    lists
                        .iter()
                        .zip(names)
                        .flat_map(|(list, name)| list.iter().map(move |entry| (entry, name)))
                        .rfind(|((p, _), _)| p == path)
                        .map(|((_, entry), name)| (*entry, name))
                });
                let hint = Some(error.hint());
                match at {
                    Some((entry, name)) => {
                        self.problem(entry, &format!("{key}.{name}"), error.to_string(), hint)
                    }
                    None => self.problem(raw, key, error.to_string(), hint),
                }
                None
            }
        }
    }

    /// A scoped client's policy must bind every project, group or namespace
    /// position to the param scope checks.
    fn scope_checkable(&mut self, raw: &Spanned<RawScope>, key: &str, policy: &Policy) {
        for rule in policy.rules() {
            for template in rule.templates() {
                if let Some(problem) = crate::scope::unchecked_position(template) {
                    self.problem(
                        raw,
                        key,
                        format!("policy {} rule {}: {problem}", policy.source().display(), rule.id()),
                        Some("a scoped client's policy names projects as {project}, groups as {group}, namespaces as {namespace}"),
                    );
                }
            }
        }
    }

    fn scope_cache(&mut self, raw: Option<&Spanned<RawScopeCache>>) -> CacheSettings {
        let defaults = CacheSettings::default();
        let Some(raw) = raw else {
            return defaults;
        };
        CacheSettings {
            ttl: self.duration(raw.value.ttl.as_ref(), "scope_cache.ttl", defaults.ttl),
            max_entries: self.positive(
                raw.value.max_entries.as_ref(),
                "scope_cache.max_entries",
                defaults.max_entries as u64,
            ) as usize,
        }
    }
}

#[cfg(test)]
mod tests;
