//! Which request headers reach GitLab, and which response headers reach the client
//! (both are allowlists).
//!
//! Requests: an allowlist. Only headers that describe the content or the
//! client's preferences are copied; every credential (the client's own token
//! included), hop-by-hop, forwarding and override header stays behind. The
//! credential and override headers GitLab would act on are refused outright
//! so that the caller learns they are not honoured.

use http::{HeaderMap, HeaderName, header};

use super::error::ProxyError;

/// Headers GitLab reads as a credential, an impersonation or a method override
/// (docs/gitlab.md §2; docs/threat-model.md classes 10 and 12). A request carrying one is refused.
/// `Cookie` is not in the list: load balancers add affinity cookies, and the
/// allowlist below never forwards it.
const REFUSED: &[&str] = &[
    "job-token",
    "deploy-token",
    "sudo",
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

/// Response headers relayed to the client: content description, caching,
/// pagination and rate-limit headers. Everything else stays behind: hop-by-hop
/// headers, `Set-Cookie`, and whatever could name GitLab's host.
const RELAYED: &[&str] = &[
    "content-type",
    "content-length",
    "content-encoding",
    "content-disposition",
    "content-language",
    "cache-control",
    "etag",
    "last-modified",
    "expires",
    "vary",
    "date",
    "link",
    "location",
    "retry-after",
    "x-total",
    "x-total-pages",
    "x-page",
    "x-per-page",
    "x-next-page",
    "x-prev-page",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "ratelimit-resettime",
    "ratelimit-observed",
    "ratelimit-name",
    "x-content-type-options",
    "x-frame-options",
];

/// Headers whose value decides how GitLab reads the request: sent twice,
/// glgate and GitLab could each read a different one.
const SINGLE_VALUED: &[HeaderName] = &[header::CONTENT_TYPE, header::CONTENT_LENGTH, header::HOST];

/// End-to-end headers a client may not name in `Connection`: how the body is
/// framed and typed (what glgate parsed and checked it as), where it goes, and
/// credentials. Named there, they would be dropped as hop-by-hop on the way to
/// GitLab, which could then read the checked bytes as something else (a form
/// with other fields, say) (docs/threat-model.md class 10).
const NOT_HOP_BY_HOP: &[&str] = &[
    "content-type",
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "host",
    "private-token",
    "authorization",
    "cookie",
];

/// Refuses requests carrying a credential or override header GitLab would
/// honour, a repeated header that glgate and GitLab could read differently,
/// or a `Connection` header that names an end-to-end header that matters.
pub(super) fn refuse_forbidden(headers: &HeaderMap) -> Result<(), ProxyError> {
    // A scan of the few names the request has: looking each refused name up
    // by `&str` would parse and hash it into a header name on every request.
    if let Some(name) = REFUSED
        .iter()
        .find(|name| headers.keys().any(|key| key.as_str() == **name))
    {
        return Err(ProxyError::ForbiddenHeader(name));
    }
    if let Some(name) = SINGLE_VALUED
        .iter()
        .find(|name| headers.get_all(*name).iter().nth(1).is_some())
    {
        return Err(ProxyError::RepeatedHeader(name.as_str().to_owned()));
    }
    match connection_options(headers).find(|option| {
        NOT_HOP_BY_HOP.contains(&option.as_str()) || REFUSED.contains(&option.as_str())
    }) {
        Some(option) => Err(ProxyError::EndToEndInConnection(option)),
        None => Ok(()),
    }
}

/// The header names listed in `Connection`, lowercase. A value that is not
/// visible ASCII is read as the bytes it is, so that it cannot hide a name.
fn connection_options(headers: &HeaderMap) -> impl Iterator<Item = String> + '_ {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .map(|value| String::from_utf8_lossy(value.as_bytes()))
        .flat_map(|value| {
            value
                .split(',')
                .map(|name| name.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
}

/// The headers to send to GitLab: the allowlist only. `with_body` keeps
/// `Content-Type` only when a body is forwarded.
pub(super) fn forwarded(headers: &HeaderMap, with_body: bool) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(FORWARDED.len() + 3);
    let hop_by_hop: Vec<String> = connection_options(headers).collect();
    // One pass over the request's few headers, each checked against the
    // allowlist (a comparison of parsed names): looking every allowlisted
    // name up instead hashed ten names per request. Every value of a name is
    // kept, in order.
    for (name, value) in headers {
        // A header the client names in `Connection` is hop-by-hop: it ends here.
        if !FORWARDED.contains(name)
            || (*name == header::CONTENT_TYPE && !with_body)
            || hop_by_hop.iter().any(|h| h == name.as_str())
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// Keeps only the relayed response headers.
pub(super) fn clean_response(headers: &mut HeaderMap) {
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|name| !RELAYED.contains(&name.as_str()))
        .cloned()
        .collect();
    for name in names {
        headers.remove(&name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_relayed_response_headers_survive() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("content-type", "application/json"),
            ("x-total", "3"),
            ("link", "<x>"),
            ("set-cookie", "_gitlab_session=1"),
            ("connection", "keep-alive"),
            ("x-gitlab-meta", "{\"correlation_id\":\"x\"}"),
            ("server", "nginx/gitlab.internal"),
        ] {
            headers.insert(HeaderName::from_static(name), value.parse().unwrap());
        }
        clean_response(&mut headers);
        let mut kept: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
        kept.sort();
        assert_eq!(kept, ["content-type", "link", "x-total"]);
    }

    #[test]
    fn only_allowlisted_headers_are_forwarded_with_every_value_in_order() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("accept", "application/json"),
            ("private-token", "glg_secret"),
            ("accept", "text/plain"),
            ("cookie", "a=1"),
            ("content-type", "application/json"),
            ("x-forwarded-for", "10.0.0.1"),
            ("if-none-match", "\"e1\""),
            ("host", "glgate.example"),
        ] {
            headers.append(
                HeaderName::from_static(name),
                http::HeaderValue::from_static(value),
            );
        }
        let out = forwarded(&headers, false);
        let kept: Vec<(&str, &str)> = out
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_str().unwrap()))
            .collect();
        assert_eq!(
            kept,
            [
                ("accept", "application/json"),
                ("accept", "text/plain"),
                ("if-none-match", "\"e1\""),
            ]
        );
        let with_body = forwarded(&headers, true);
        assert_eq!(
            with_body.get(header::CONTENT_TYPE).unwrap(),
            "application/json"
        );
        assert_eq!(with_body.len(), 4);
    }

    #[test]
    fn headers_named_in_connection_are_not_forwarded() {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, "application/json".parse().unwrap());
        headers.insert(header::USER_AGENT, "x".parse().unwrap());
        headers.insert(header::CONNECTION, "Accept".parse().unwrap());
        let out = forwarded(&headers, false);
        assert!(out.get(header::ACCEPT).is_none());
        assert!(out.get(header::USER_AGENT).is_some());
    }

    #[test]
    fn connection_may_not_name_what_was_checked() {
        for value in [
            "Content-Type",
            "keep-alive, content-type",
            " CONTENT-LENGTH ",
            "Transfer-Encoding",
            "content-encoding",
            "Host",
            "Private-Token",
            "authorization",
            "Sudo",
            "x-http-method-override",
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
            headers.insert(header::CONNECTION, value.parse().unwrap());
            let refused = refuse_forbidden(&headers);
            assert!(
                matches!(refused, Err(ProxyError::EndToEndInConnection(_))),
                "{value}: {refused:?}"
            );
        }
        for value in [
            "keep-alive",
            "close",
            "Keep-Alive, TE",
            "upgrade",
            "x-anything",
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONNECTION, value.parse().unwrap());
            assert!(refuse_forbidden(&headers).is_ok(), "{value}");
        }
    }

    proptest::proptest! {
        /// Whatever a client names in `Connection`, a request glgate accepts
        /// reaches GitLab typed as glgate parsed it: the one `Content-Type`
        /// it read, and no framing header of the client's.
        #[test]
        fn an_accepted_request_reaches_gitlab_typed_as_checked(
            options in proptest::collection::vec(
                proptest::sample::select(vec![
                    "keep-alive", "close", "te", "upgrade", "accept", "user-agent",
                    "content-type", "Content-Type", "content-length", "transfer-encoding",
                    "content-encoding", "host", "private-token", "authorization", "cookie",
                    "if-match", "x-foo", " CONTENT-TYPE ", "sudo",
                ]),
                0..4,
            ),
            content_type in proptest::sample::select(vec![
                "application/json", "application/x-www-form-urlencoded", "text/plain",
            ]),
        ) {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, content_type.parse().unwrap());
            headers.insert(header::CONTENT_LENGTH, "2".parse().unwrap());
            headers.insert(header::CONNECTION, options.join(", ").parse().unwrap());
            if refuse_forbidden(&headers).is_ok() {
                let out = forwarded(&headers, true);
                proptest::prop_assert_eq!(
                    out.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()),
                    Some(content_type)
                );
                for framing in [header::CONTENT_LENGTH, header::TRANSFER_ENCODING, header::CONTENT_ENCODING, header::HOST] {
                    proptest::prop_assert!(out.get(&framing).is_none());
                }
            }
        }
    }
}
