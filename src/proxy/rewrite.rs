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
    upstream: Vec<String>,
    public: String,
}

impl UrlRewriter {
    /// Rewrites URLs under any of `upstream` to `public`.
    pub fn new<'a>(
        upstream: impl IntoIterator<Item = &'a BaseUrl>,
        public: &BaseUrl,
    ) -> UrlRewriter {
        let mut bases: Vec<String> = upstream.into_iter().map(ToString::to_string).collect();
        bases.dedup();
        UrlRewriter {
            upstream: bases,
            public: public.to_string(),
        }
    }

    /// The rewritten URL; the URL itself when relative; `None` for an
    /// absolute URL to a foreign origin (the caller drops it).
    pub fn url(&self, url: &str) -> Option<String> {
        if !is_absolute(url) {
            return Some(url.to_owned());
        }
        self.upstream.iter().find_map(|base| {
            let head = url.get(..base.len())?;
            let rest = &url[base.len()..];
            let boundary = rest.is_empty() || rest.starts_with(['/', '?', '#']);
            (head.eq_ignore_ascii_case(base) && boundary).then(|| format!("{}{rest}", self.public))
        })
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
    pub fn headers(&self, headers: &mut HeaderMap) {
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

fn is_absolute(url: &str) -> bool {
    url.starts_with("//")
        || url.split_once(':').is_some_and(|(scheme, _)| {
            !scheme.is_empty()
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
        })
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
