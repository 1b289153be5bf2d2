//! Which request headers reach GitLab, and which response headers reach the client.
//!
//! Requests: an allowlist. Only headers that describe the content or the
//! client's preferences are copied; every credential (the client's own token
//! included), hop-by-hop, forwarding and override header stays behind. The
//! credential and override headers GitLab would act on are refused outright
//! so that the caller learns they are not honoured.

use http::{HeaderMap, HeaderName, header};

use super::error::ProxyError;

/// Headers GitLab reads as a credential, an impersonation or a method override
/// (GITLAB.md §2, THREATS.md 10 and 12). A request carrying one is refused.
const REFUSED: &[&str] = &[
    "job-token",
    "deploy-token",
    "sudo",
    "cookie",
    "x-csrf-token",
    "dpop",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// Request headers copied to GitLab. Everything else is dropped.
const FORWARDED: &[HeaderName] = &[
    header::ACCEPT,
    header::ACCEPT_ENCODING,
    header::ACCEPT_LANGUAGE,
    header::CONTENT_TYPE,
    header::USER_AGENT,
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_UNMODIFIED_SINCE,
    header::CACHE_CONTROL,
];

/// Hop-by-hop response headers (RFC 9110 §7.6.1) plus `Set-Cookie`.
const DROPPED_RESPONSE: &[HeaderName] = &[
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
    header::PROXY_AUTHENTICATE,
    header::SET_COOKIE,
];

/// Headers whose value decides how GitLab reads the request: sent twice,
/// glgate and GitLab could each read a different one.
const SINGLE_VALUED: &[HeaderName] = &[header::CONTENT_TYPE, header::CONTENT_LENGTH, header::HOST];

/// Refuses requests carrying a credential or override header GitLab would
/// honour, or a repeated header that glgate and GitLab could read differently.
pub fn refuse_forbidden(headers: &HeaderMap) -> Result<(), ProxyError> {
    if let Some(name) = REFUSED.iter().find(|name| headers.contains_key(**name)) {
        return Err(ProxyError::ForbiddenHeader(name));
    }
    match SINGLE_VALUED
        .iter()
        .find(|name| headers.get_all(*name).iter().nth(1).is_some())
    {
        Some(name) => Err(ProxyError::RepeatedHeader(name.as_str().to_owned())),
        None => Ok(()),
    }
}

/// The headers to send to GitLab: the allowlist only. `with_body` keeps
/// `Content-Type` only when a body is forwarded.
pub fn forwarded(headers: &HeaderMap, with_body: bool) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(FORWARDED.len() + 3);
    for name in FORWARDED {
        if *name == header::CONTENT_TYPE && !with_body {
            continue;
        }
        for value in headers.get_all(name) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// Removes hop-by-hop headers, the headers `Connection` names, and `Set-Cookie`.
pub fn clean_response(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in DROPPED_RESPONSE.iter().chain(&named) {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
}
