//! `Link` and `Location` URLs pointing at GitLab, rewritten to glgate's public URL.
//!
//! GitLab builds pagination links from its own external URL. A client that
//! follows them verbatim (python-gitlab, glab) would bypass glgate and send
//! its glgate token to GitLab. Every absolute URL under a GitLab base is
//! rewritten; an absolute URL to any other origin is dropped, so no upstream
//! host ever reaches the client.

use http::{HeaderMap, HeaderValue, header};

use crate::config::BaseUrl;

/// Rewrites URLs from the upstream bases to the public base.
#[derive(Clone, Debug)]
pub struct UrlRewriter {
    /// `host[:port]/prefix` of each GitLab base, lower-case host, default port removed.
    upstream: Vec<String>,
    public: String,
}

impl UrlRewriter {
    /// Rewrites URLs under any of `upstream` to `public`.
    pub fn new<'a>(
        upstream: impl IntoIterator<Item = &'a BaseUrl>,
        public: &BaseUrl,
    ) -> UrlRewriter {
        let mut bases: Vec<String> = upstream
            .into_iter()
            .map(|base| {
                format!(
                    "{}{}",
                    normalize_authority(base.authority().as_str()),
                    base.prefix()
                )
            })
            .collect();
        bases.dedup();
        UrlRewriter {
            upstream: bases,
            public: public.to_string(),
        }
    }

    /// The rewritten URL; the URL itself when it is a plain relative path;
    /// `None` for anything else (another origin, a backslash trick), which
    /// the caller drops.
    ///
    /// The scheme is not compared: GitLab builds `Link` URLs with the scheme
    /// of the request it received but the host and port of its own
    /// `external_url`, so `http://gitlab:443/…` is GitLab too.
    pub(crate) fn url(&self, url: &str) -> Option<String> {
        if url.contains('\\') {
            return None;
        }
        let Some(rest) = strip_scheme(url) else {
            return (url.starts_with('/') && !url.starts_with("//")).then(|| url.to_owned());
        };
        let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        let target = format!("{}{path}", normalize_authority(authority));
        let rewritten = self.upstream.iter().find_map(|base| {
            let tail = target.strip_prefix(base.as_str())?;
            let boundary = tail.is_empty() || tail.starts_with(['/', '?', '#']);
            boundary.then(|| format!("{}{tail}", self.public))
        });
        if rewritten.is_none() {
            tracing::warn!(
                host = %crate::canonical::printable(authority),
                "dropped a Link/Location URL outside GitLab's configured URLs (set upstream.external_url to GitLab's external_url)"
            );
        }
        rewritten
    }

    /// Rewrites a `Link` header value; entries to foreign origins are dropped.
    pub fn link(&self, value: &str) -> String {
        split_link_entries(value)
            .filter_map(|entry| {
                let entry = entry.trim();
                let open = entry.find('<')?;
                let close = entry[open..].find('>')? + open;
                let url = self.url(&entry[open + 1..close])?;
                Some(format!("<{url}>{}", &entry[close + 1..]))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Rewrites `Link` and `Location` in a response's headers.
    pub(crate) fn headers(&self, headers: &mut HeaderMap) {
        let links: Vec<String> = headers
            .get_all(header::LINK)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| self.link(v))
            .filter(|v| !v.is_empty())
            .collect();
        headers.remove(header::LINK);
        for link in links {
            if let Ok(value) = HeaderValue::from_str(&link) {
                headers.append(header::LINK, value);
            }
        }
        let location = headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| self.url(v));
        headers.remove(header::LOCATION);
        if let Some(value) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            headers.insert(header::LOCATION, value);
        }
    }
}

/// The part after `scheme://` (or after `//`), when `url` is absolute.
fn strip_scheme(url: &str) -> Option<&str> {
    if let Some(rest) = url.strip_prefix("//") {
        return Some(rest);
    }
    let (scheme, rest) = url.split_once("://")?;
    let is_scheme = !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    is_scheme.then_some(rest)
}

/// Lower-case host, without a default port (80 or 443) and without user info.
fn normalize_authority(authority: &str) -> String {
    let host_port = authority
        .rsplit('@')
        .next()
        .unwrap_or(authority)
        .to_ascii_lowercase();
    match host_port.rsplit_once(':') {
        Some((host, "80" | "443")) => host.to_owned(),
        _ => host_port,
    }
}

/// Splits a `Link` value on the commas between entries (not those inside `<…>`).
fn split_link_entries(value: &str) -> impl Iterator<Item = &str> {
    let mut entries = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in value.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                entries.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    entries.push(&value[start..]);
    entries.into_iter().filter(|e| !e.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewriter() -> UrlRewriter {
        let upstream = BaseUrl::parse("https://gitlab.internal:8443/gitlab").unwrap();
        let external = BaseUrl::parse("https://gitlab.acme.com/gitlab").unwrap();
        let public = BaseUrl::parse("https://glgate.acme.com").unwrap();
        UrlRewriter::new([&upstream, &external], &public)
    }

    #[test]
    fn rewrites_links() {
        let r = rewriter();
        let link = r#"<https://gitlab.acme.com/gitlab/api/v4/groups/10/projects?page=2&per_page=20>; rel="next", <https://GITLAB.acme.com/gitlab/api/v4/groups/10/projects?page=1&per_page=20>; rel="first", <https://evil.example/api/v4/x>; rel="last""#;
        assert_eq!(
            r.link(link),
            r#"<https://glgate.acme.com/api/v4/groups/10/projects?page=2&per_page=20>; rel="next", <https://glgate.acme.com/api/v4/groups/10/projects?page=1&per_page=20>; rel="first""#
        );
    }

    #[test]
    fn scheme_and_default_ports_are_not_compared() {
        let r = rewriter();
        assert_eq!(
            r.url("http://gitlab.acme.com:443/gitlab/api/v4/x?page=2"),
            Some("https://glgate.acme.com/api/v4/x?page=2".into())
        );
        assert_eq!(r.url("/\\evil.example/x"), None);
        assert_eq!(r.url("javascript:alert(1)"), None);
        assert_eq!(r.url("https://user@evil.example/gitlab/api"), None);
    }

    #[test]
    fn prefix_boundary_and_relative() {
        let r = rewriter();
        assert_eq!(r.url("https://gitlab.acme.com/gitlabx/api"), None);
        assert_eq!(r.url("/api/v4/x"), Some("/api/v4/x".into()));
        assert_eq!(r.url("//evil.example/x"), None);
        assert_eq!(
            r.url("https://gitlab.internal:8443/gitlab/api/v4/projects/acme%2Fbackend"),
            Some("https://glgate.acme.com/api/v4/projects/acme%2Fbackend".into())
        );
    }
}
