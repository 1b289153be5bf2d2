//! Header lists the checks and transports read: what may reach GitLab, what
//! glgate copies, what HTTP/2 forbids.

/// Header names glgate may send to GitLab: its allowlist, plus what it sets itself.
pub const UPSTREAM_HEADERS: &[&str] = &[
    "host",
    "private-token",
    "content-length",
    "content-type",
    "x-request-id",
    "accept",
    "accept-encoding",
    "accept-language",
    "user-agent",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "cache-control",
];

/// Client headers glgate copies to GitLab unchanged (unless a row says otherwise).
pub const COPIED_HEADERS: &[&str] = &[
    "accept",
    "accept-encoding",
    "accept-language",
    "user-agent",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "cache-control",
];

/// Connection-specific headers that HTTP/2 forbids (hyper's client strips
/// them silently, so a row carrying one would test nothing over HTTP/2).
pub const H2_FORBIDDEN: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];
