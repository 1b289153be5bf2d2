//! The checked model: the types the rest of glgate reads. A value of these
//! types has passed the compiler (`compile/`), so readers need not re-check it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;

use super::BaseUrl;
use crate::policy::Policy;
use crate::scope::Scope;
use crate::webhooks::payload::PayloadPolicy;
use crate::webhooks::seal::{Sealer, SigningSecret};

/// The config file format version this build reads.
pub(crate) const CONFIG_VERSION: u32 = 1;

/// Default cap on a response body relayed from GitLab (large MR diffs fit).
pub(crate) const DEFAULT_MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;

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
pub(crate) const DEFAULT_OAUTH_REDIRECT_URI: &str = "http://127.0.0.1:7171/callback";

/// How often `token_file` is checked for a new token by default.
pub(crate) const DEFAULT_TOKEN_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

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
pub(crate) struct TlsSettings {
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
pub(crate) struct CacheSettings {
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
pub(crate) enum CertMatch {
    /// A subject common name.
    SubjectCn(String),
    /// A DNS or URI subject alternative name.
    San(String),
}

/// One compiled client.
#[derive(Clone, Debug)]
pub(crate) struct ClientConfig {
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
    /// Its payload policy when its webhooks are relayed through glgate.
    pub webhooks: Option<Arc<PayloadPolicy>>,
}

/// A token-bucket rate limit: `per_second` sustained, `burst` above it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct RateLimit {
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
pub(crate) enum AuditOutput {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// A file, appended to.
    File(PathBuf),
}

/// Size and time bounds.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Limits {
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
    /// Longest a response may wait on a client that takes none of its bytes.
    pub send_timeout: Duration,
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
    /// Threads serving the proxy's connections; `None`: one per CPU core.
    pub workers: Option<usize>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1024 * 1024,
            max_header_bytes: 32 * 1024,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_read_timeout: Duration::from_secs(30),
            send_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
            max_connections: 1024,
            http2_max_concurrent_streams: 100,
            http2_max_pending_reset_streams: 20,
            client_rate_limit: RateLimit::default(),
            max_filtered_response_bytes: 8 * 1024 * 1024,
            workers: None,
        }
    }
}

/// Default of `webhooks.max_queue_bytes`: 256 MiB of queued deliveries.
pub(crate) const DEFAULT_WEBHOOK_QUEUE_BYTES: u64 = 256 * 1024 * 1024;
/// Default of `webhooks.max_queued`.
pub(crate) const DEFAULT_WEBHOOK_QUEUED: u64 = 100_000;
/// Default of `webhooks.max_body_bytes`: GitLab's payloads are large (a push
/// lists up to 20 commits with their files), rarely over a few MiB.
pub(crate) const DEFAULT_WEBHOOK_BODY_BYTES: u64 = 8 * 1024 * 1024;

/// The webhook relay (`webhooks:`).
#[derive(Clone, Debug)]
pub(crate) struct WebhookSettings {
    /// The keys that seal and open relay URLs.
    pub sealer: Arc<Sealer>,
    /// The file they were read from.
    pub key_file: PathBuf,
    /// The file GitLab's signing secret was read from, if any.
    pub signing_secret_file: Option<PathBuf>,
    /// The URL GitLab reaches glgate at (`None`: the public URL).
    pub receive_url: Option<BaseUrl>,
    /// The durable queue's folder (read at start only).
    pub spool: PathBuf,
    /// Most bytes queued.
    pub max_queue_bytes: u64,
    /// Most deliveries queued.
    pub max_queued: u64,
    /// The part of each queue bound one client may fill, in percent.
    pub max_client_share_percent: u64,
    /// Retried for this long after receipt, then dead-lettered.
    pub max_age: Duration,
    /// First retry delay.
    pub retry_initial: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// Bound on one delivery attempt.
    pub delivery_timeout: Duration,
    /// Largest delivery accepted from GitLab.
    pub max_body_bytes: u64,
    /// Extra CA for the clients' receivers.
    pub ca_file: Option<PathBuf>,
    /// GitLab's signing secret, when deliveries must be signed.
    pub signing: Option<Arc<SigningSecret>>,
}

/// The warning for a relay GitLab reaches over plain http beyond this host:
/// each delivery's secret and payload cross the network readable, and one
/// captured secret lets its holder post events for that hook.
pub(crate) fn webhook_receive_warning(config: &Config) -> Option<&'static str> {
    let webhooks = config.webhooks.as_ref()?;
    let url = webhooks
        .receive_url
        .as_ref()
        .or(config.public_url.as_ref())?;
    (!url.is_https() && !url.is_loopback()).then_some(
        "the webhook relay's receive URL is plain http: each delivery's secret and payload cross the network unencrypted; serve glgate over TLS (tls:) and use https",
    )
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
    pub(crate) clients: Vec<ClientConfig>,
    /// The admin listener, if any.
    pub admin_listen: Option<SocketAddr>,
    /// Most admin connections open at once.
    pub(crate) admin_max_connections: usize,
    /// Audit destination.
    pub(crate) audit: AuditOutput,
    /// Bounds.
    pub(crate) limits: Limits,
    /// Inbound TLS, if configured.
    pub(crate) tls: Option<TlsSettings>,
    /// Proxies whose forwarding headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// How scope resolutions are cached.
    pub(crate) scope_cache: CacheSettings,
    /// The webhook relay, when configured.
    pub(crate) webhooks: Option<WebhookSettings>,
}

impl Config {
    /// The distinct policies in use, in client order.
    pub(crate) fn policies(&self) -> Vec<&Arc<Policy>> {
        let mut seen: Vec<&Arc<Policy>> = Vec::new();
        for client in &self.clients {
            if !seen.iter().any(|p| Arc::ptr_eq(p, &client.policy)) {
                seen.push(&client.policy);
            }
        }
        seen
    }
}
