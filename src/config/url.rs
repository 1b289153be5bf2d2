//! Base URLs: scheme, authority and an optional path prefix.

use std::fmt;

/// An `http` or `https` URL with no query, fragment or user info; its path,
/// if any, is a prefix (GitLab's relative URL, or glgate's public prefix).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseUrl {
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    /// `authority` as a `Host` header, checked once here.
    host: http::HeaderValue,
    prefix: String,
}

impl BaseUrl {
    /// Parses and validates a base URL; the error says what is wrong.
    pub fn parse(text: &str) -> Result<BaseUrl, String> {
        let uri: http::Uri = text
            .parse()
            .map_err(|e| format!("'{text}' is not a URL ({e})"))?;
        let scheme = match uri.scheme_str() {
            Some("http") | Some("https") => uri.scheme().cloned(),
            _ => None,
        }
        .ok_or_else(|| format!("'{text}' must start with https:// or http://"))?;
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| format!("'{text}' has no host"))?;
        if authority.as_str().contains('@') {
            return Err(format!("'{text}' must not carry user info"));
        }
        if uri.query().is_some() || text.contains('#') {
            return Err(format!("'{text}' must not carry a query or fragment"));
        }
        let prefix = uri.path().trim_end_matches('/').to_owned();
        if prefix.contains("//") || prefix.split('/').any(|s| s == "." || s == "..") {
            return Err(format!("'{text}' has an unusual path"));
        }
        let host = http::HeaderValue::from_str(authority.as_str())
            .map_err(|_| format!("'{text}' has a host that cannot be sent as a Host header"))?;
        Ok(BaseUrl {
            scheme,
            authority,
            host,
            prefix,
        })
    }

    /// `http(s)://ADDR` for a bound address: parsed as any base URL is (a
    /// socket address always renders as a valid host and port, so the error
    /// is only carried, never expected).
    pub(crate) fn for_address(addr: std::net::SocketAddr, https: bool) -> Result<BaseUrl, String> {
        let scheme = if https { "https" } else { "http" };
        BaseUrl::parse(&format!("{scheme}://{addr}"))
    }

    /// Host and port.
    pub(crate) fn authority(&self) -> &http::uri::Authority {
        &self.authority
    }

    /// Host and port as a `Host` header value.
    pub(crate) fn host_header(&self) -> &http::HeaderValue {
        &self.host
    }

    /// The path prefix without a trailing slash (empty for none).
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The URI of `target` (origin-form: a path, maybe a query) under this
    /// base: the same URI as parsing `"{self}{target}"`, without formatting
    /// the base and parsing it back on every request (scheme and authority
    /// are already parsed; only the path is).
    pub(crate) fn uri_for(&self, target: &str) -> Result<http::Uri, http::Error> {
        let mut path = String::with_capacity(self.prefix.len() + target.len());
        path.push_str(&self.prefix);
        path.push_str(target);
        if !path.starts_with('/') {
            // Not origin-form (glgate sends none): parsed whole, as before.
            return Ok(format!("{self}{target}").parse::<http::Uri>()?);
        }
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        parts.path_and_query = Some(http::uri::PathAndQuery::try_from(path)?);
        Ok(http::Uri::from_parts(parts)?)
    }

    /// Whether the URL is `https`.
    pub(crate) fn is_https(&self) -> bool {
        self.scheme == http::uri::Scheme::HTTPS
    }

    /// Whether the host is this machine (`localhost` or a loopback address).
    pub(crate) fn is_loopback(&self) -> bool {
        let host = self
            .authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_under_the_base_are_those_of_the_formatted_url() {
        for base in [
            "https://git.example.com/gitlab/",
            "http://127.0.0.1:8080",
            "http://[::1]:9/a/b",
        ] {
            let base = BaseUrl::parse(base).unwrap();
            for target in [
                "/api/v4/projects/101",
                "/api/v4/projects/acme%2Fbackend?statistics=true&x=%20",
                "/api/v4/projects/1/merge_requests?state=opened&per_page=20",
                "/",
            ] {
                let built = base.uri_for(target).unwrap();
                let parsed: http::Uri = format!("{base}{target}").parse().unwrap();
                assert_eq!(built, parsed, "{base} {target}");
                assert_eq!(built.to_string(), parsed.to_string());
            }
            // What the path parser refuses stays refused.
            assert!(base.uri_for("/a b").is_err());
            assert!(base.uri_for("/a\u{7f}").is_err());
        }
    }

    #[test]
    fn parses_prefixes() {
        let url = BaseUrl::parse("https://git.example.com/gitlab/").unwrap();
        assert_eq!(url.prefix(), "/gitlab");
        assert_eq!(url.to_string(), "https://git.example.com/gitlab");
        assert_eq!(
            BaseUrl::parse("http://h:8080").unwrap().to_string(),
            "http://h:8080"
        );
        for bad in [
            "ftp://h",
            "h:80",
            "https://u:p@h",
            "https://h/?q=1",
            "https://h/a/../b",
        ] {
            assert!(BaseUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
