//! The config file as written: serde structs with source locations.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

/// The whole config file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    /// Format version; must be 1.
    #[schemars(with = "u32")]
    pub version: Spanned<u32>,
    /// Address the proxy listens on, e.g. `127.0.0.1:8080`.
    #[schemars(with = "String")]
    pub listen: Spanned<String>,
    /// How clients reach glgate; `Link` and `Location` are rewritten to it.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub public_url: Option<Spanned<String>>,
    /// The GitLab behind glgate.
    #[schemars(with = "RawUpstream")]
    pub upstream: Spanned<RawUpstream>,
    /// The clients allowed to call glgate.
    #[schemars(with = "Vec<RawClient>")]
    pub clients: Spanned<Vec<Spanned<RawClient>>>,
    /// The admin listener (`/live`, `/ready`, `/metrics`).
    #[serde(default)]
    pub admin: Option<RawAdmin>,
    /// Where audit lines go.
    #[serde(default)]
    pub audit: Option<RawAudit>,
    /// Size and time bounds.
    #[serde(default)]
    pub limits: Option<RawLimits>,
    /// Inbound TLS; without it glgate speaks plain HTTP.
    #[serde(default)]
    #[schemars(with = "Option<RawTls>")]
    pub tls: Option<Spanned<RawTls>>,
    /// Networks of proxies in front of glgate whose `X-Forwarded-For` is
    /// believed (for `source_cidrs`); `Forwarded` is never read, because
    /// proxies pass a client's own one through.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub trusted_proxies: Vec<Spanned<String>>,
    /// How scope resolutions (project and group lookups) are cached.
    #[serde(default)]
    #[schemars(with = "Option<RawScopeCache>")]
    pub scope_cache: Option<Spanned<RawScopeCache>>,
    /// The webhook relay: GitLab's deliveries for the clients' hooks come
    /// through glgate (scoped, minimized, queued on disk, retried).
    #[serde(default)]
    #[schemars(with = "Option<RawWebhooks>")]
    pub webhooks: Option<Spanned<RawWebhooks>>,
}

/// `webhooks:`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhooks {
    /// File of webhook keys, 64 hex digits per line (`glgate webhooks
    /// new-key`); the first seals new relay URLs, every line opens them.
    #[schemars(with = "String")]
    pub key_file: Spanned<String>,
    /// The URL GitLab reaches glgate at, when it differs from `public_url`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub receive_url: Option<Spanned<String>>,
    /// The folder of the durable delivery queue.
    #[schemars(with = "String")]
    pub spool: Spanned<String>,
    /// Most bytes of deliveries queued at once; beyond it GitLab is answered
    /// 503 (GitLab records a failed delivery, which can be resent from the
    /// hook's recent events), never dropped silently.
    #[serde(default)]
    #[schemars(with = "Option<u64>")]
    pub max_queue_bytes: Option<Spanned<u64>>,
    /// Most deliveries queued at once.
    #[serde(default)]
    #[schemars(with = "Option<u64>")]
    pub max_queued: Option<Spanned<u64>>,
    /// The part of max_queued and max_queue_bytes one client may fill, in
    /// percent (default 75: a client whose receiver stays down never gets
    /// the other clients' hooks refused); 100 turns the share off.
    #[serde(default)]
    #[schemars(with = "Option<u64>")]
    pub max_client_share_percent: Option<Spanned<u64>>,
    /// How long a delivery is retried before it goes to the dead letters, e.g. `72h`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub max_age: Option<Spanned<String>>,
    /// First retry delay, doubled at each failure up to `retry_max`, e.g. `10s`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub retry_initial: Option<Spanned<String>>,
    /// Longest retry delay, e.g. `15m`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub retry_max: Option<Spanned<String>>,
    /// How long one delivery attempt may take, e.g. `10s`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub delivery_timeout: Option<Spanned<String>>,
    /// Largest delivery accepted from GitLab, in bytes.
    #[serde(default)]
    #[schemars(with = "Option<u64>")]
    pub max_body_bytes: Option<Spanned<u64>>,
    /// Extra CA certificates (PEM) trusted for the clients' receivers.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub ca_file: Option<Spanned<String>>,
    /// File holding GitLab's webhook signing secret (`whsec_…`); when set,
    /// deliveries must also carry a valid `webhook-signature`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub signing_secret_file: Option<Spanned<String>>,
}

/// A client's `webhooks:`: enables the relay for its hooks.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClientWebhooks {
    /// The payload policy: which event kinds pass and which fields are removed.
    #[schemars(with = "String")]
    pub policy: Spanned<String>,
}

/// `tls:`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    /// PEM certificate chain.
    #[schemars(with = "String")]
    pub cert_file: Spanned<String>,
    /// PEM private key.
    #[schemars(with = "String")]
    pub key_file: Spanned<String>,
    /// PEM CA certificates that sign client certificates (mutual TLS).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub client_ca_file: Option<Spanned<String>>,
    /// Refuse handshakes without a valid client certificate.
    #[serde(default)]
    pub require_client_cert: bool,
    /// How often the certificate files are checked for changes, e.g. `10s`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub reload_interval: Option<Spanned<String>>,
}

/// A client certificate identity: exactly one of the two.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClientCert {
    /// The subject common name.
    #[serde(default)]
    pub subject_cn: Option<String>,
    /// A DNS or URI subject alternative name.
    #[serde(default)]
    pub san: Option<String>,
}

/// `upstream:`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUpstream {
    /// GitLab's base URL, possibly with a relative-URL prefix.
    #[schemars(with = "String")]
    pub url: Spanned<String>,
    /// The URL GitLab itself puts in `Link`/`Location` (its `external_url`), when it differs from `url`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub external_url: Option<Spanned<String>>,
    /// Environment variable holding the GitLab token.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub token_env: Option<Spanned<String>>,
    /// File holding the GitLab token; re-read when it changes.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub token_file: Option<Spanned<String>>,
    /// How often `token_file` is checked for a new token, e.g. `5s`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub token_reload_interval: Option<Spanned<String>>,
    /// Rotate the personal access token in `token_file` before it expires.
    /// Exactly one process may rotate a token.
    #[serde(default)]
    #[schemars(with = "Option<RawAutoRotate>")]
    pub auto_rotate: Option<Spanned<RawAutoRotate>>,
    /// An OAuth application's refresh token instead of a static token.
    #[serde(default)]
    #[schemars(with = "Option<RawOAuth>")]
    pub oauth: Option<Spanned<RawOAuth>>,
    /// Extra CA certificates (PEM) trusted for GitLab.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub ca_file: Option<Spanned<String>>,
    /// Bound on connecting to GitLab, e.g. `5s`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub connect_timeout: Option<Spanned<String>>,
    /// Bound on waiting for GitLab's response headers, e.g. `60s`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub response_timeout: Option<Spanned<String>>,
    /// Longest pause allowed while GitLab streams a response body, e.g. `30s`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub body_idle_timeout: Option<Spanned<String>>,
    /// Largest response body relayed from GitLab, in bytes.
    #[serde(default)]
    #[schemars(with = "Option<u64>")]
    pub max_response_bytes: Option<Spanned<u64>>,
    /// PEM client certificate for a GitLab that requires mutual TLS.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub client_cert_file: Option<Spanned<String>>,
    /// PEM key of `client_cert_file`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub client_key_file: Option<Spanned<String>>,
    /// Allows a plain `http://` URL to a GitLab that is not on this host: the
    /// GitLab token then crosses the network unencrypted.
    #[serde(default)]
    pub danger_allow_plain_http: bool,
}

/// `upstream.auto_rotate:`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAutoRotate {
    /// Rotate when the token expires within this long, e.g. `7d`.
    #[schemars(with = "String")]
    pub before_expiry: Spanned<String>,
}

/// `upstream.oauth:`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOAuth {
    /// The OAuth application's id.
    #[schemars(with = "String")]
    pub client_id: Spanned<String>,
    /// File holding the application's secret.
    #[schemars(with = "String")]
    pub client_secret_file: Spanned<String>,
    /// File holding the current refresh token (`glgate oauth login` writes it;
    /// glgate rewrites it atomically on every refresh).
    #[schemars(with = "String")]
    pub refresh_token_file: Spanned<String>,
    /// The redirect URI registered for the application (a loopback
    /// `http://127.0.0.1:PORT/callback`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub redirect_uri: Option<Spanned<String>>,
}

/// One or several SHA-256 digests (several while a client token rotates).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(super) enum RawDigests {
    /// One digest.
    One(String),
    /// Several digests, e.g. the old and the new token during a rotation.
    Many(Vec<String>),
}

/// One entry of `clients:`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClient {
    /// The client's name (audit lines, metrics).
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// SHA-256 of the client token, 64 hex characters (`glgate client new`
    /// prints it); a list of digests while a client token rotates.
    #[serde(default)]
    #[schemars(with = "Option<RawDigests>")]
    pub token_sha256: Option<Spanned<RawDigests>>,
    /// A client certificate identity required in addition to (or, without
    /// `token_sha256`, instead of) the token.
    #[serde(default)]
    #[schemars(with = "Option<RawClientCert>")]
    pub client_cert: Option<Spanned<RawClientCert>>,
    /// Networks this client may call from (default: anywhere).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub source_cidrs: Vec<Spanned<String>>,
    /// The policy file for this client, relative to the config file's folder.
    #[schemars(with = "String")]
    pub policy: Spanned<String>,
    /// A second policy evaluated on this client's live traffic beside the
    /// real one, only to record where they disagree (never enforced).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub shadow_policy: Option<Spanned<String>>,
    /// This client's request rate limit (default: `limits.client_rate_limit`).
    #[serde(default)]
    #[schemars(with = "Option<RawRateLimit>")]
    pub rate_limit: Option<Spanned<RawRateLimit>>,
    /// The groups and projects this client may reach (default: everything
    /// the GitLab token can see).
    #[serde(default)]
    #[schemars(with = "Option<RawScope>")]
    pub scope: Option<Spanned<RawScope>>,
    /// Relay this client's webhooks through glgate (needs the top-level
    /// `webhooks:` section): hooks it registers point at glgate, and each
    /// delivery is scoped and minimized by this payload policy.
    #[serde(default)]
    #[schemars(with = "Option<RawClientWebhooks>")]
    pub webhooks: Option<Spanned<RawClientWebhooks>>,
}

/// A client's `scope:`. Full paths, any letter case.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScope {
    /// Groups in scope, each with its subgroups and their projects, e.g. `acme`.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub groups: Vec<Spanned<String>>,
    /// Individual projects in scope outside those groups, e.g. `tools/ci-templates`.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub projects: Vec<Spanned<String>>,
    /// Subgroups or projects carved out of `groups`.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub exclude: Vec<Spanned<String>>,
}

/// `scope_cache:`, how long and how many scope resolutions are kept.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScopeCache {
    /// How long a resolved project or group is reused, e.g. `60s`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub ttl: Option<Spanned<String>>,
    /// Most resolutions kept at once.
    #[serde(default)]
    #[schemars(with = "Option<u64>")]
    pub max_entries: Option<Spanned<u64>>,
}

/// A token-bucket rate limit.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRateLimit {
    /// Sustained requests per second.
    pub per_second: f64,
    /// Requests allowed in a burst above the sustained rate.
    pub burst: u32,
}

/// `admin:`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdmin {
    /// Address of the admin listener.
    #[schemars(with = "String")]
    pub listen: Spanned<String>,
    /// Most admin connections open at once (default 64), apart from the
    /// proxy's `limits.max_connections`: flooding one listener never starves
    /// the other.
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub max_connections: Option<Spanned<u32>>,
}

/// `audit:`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAudit {
    /// `stdout` (default), `stderr`, or a file path (appended to).
    #[schemars(with = "String")]
    pub output: Spanned<String>,
}

/// `limits:`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    /// Largest request body read for any rule, in bytes.
    #[serde(default)]
    #[schemars(with = "Option<u64>")]
    pub max_body_bytes: Option<Spanned<u64>>,
    /// Largest request head (request line and headers), in bytes.
    #[serde(default)]
    #[schemars(with = "Option<u64>")]
    pub max_header_bytes: Option<Spanned<u64>>,
    /// Bound on receiving a request's headers, e.g. `10s`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub header_read_timeout: Option<Spanned<String>>,
    /// How long a connection with no request in flight (an idle HTTP/1
    /// keep-alive connection, an HTTP/2 connection with no open stream) stays
    /// open before glgate closes it, e.g. `60s`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub idle_timeout: Option<Spanned<String>>,
    /// Bound on receiving a request's body, e.g. `30s`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub body_read_timeout: Option<Spanned<String>>,
    /// Longest time a response may make no progress because the client does
    /// not take its bytes (it stopped reading, or never opens its HTTP/2
    /// flow-control window), e.g. `30s`; then the connection is closed.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub send_timeout: Option<Spanned<String>>,
    /// How long in-flight requests may finish at shutdown, e.g. `30s`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub shutdown_grace: Option<Spanned<String>>,
    /// Most client connections open at once.
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub max_connections: Option<Spanned<u32>>,
    /// Most concurrent HTTP/2 streams per connection.
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub http2_max_concurrent_streams: Option<Spanned<u32>>,
    /// Most streams a client may reset before the connection is closed
    /// (HTTP/2 rapid-reset protection).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub http2_max_pending_reset_streams: Option<Spanned<u32>>,
    /// Default rate limit of every client.
    #[serde(default)]
    #[schemars(with = "Option<RawRateLimit>")]
    pub client_rate_limit: Option<Spanned<RawRateLimit>>,
    /// Largest GitLab answer glgate reads whole to filter it (scoped
    /// clients, `response_filter`), in bytes.
    #[serde(default)]
    #[schemars(with = "Option<u64>")]
    pub max_filtered_response_bytes: Option<Spanned<u64>>,
    /// Threads serving the proxy's connections, each with its own event loop
    /// and its own connections to GitLab (a request stays on one thread from
    /// its first byte to its last); default: one per CPU core.
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub workers: Option<Spanned<u32>>,
}
