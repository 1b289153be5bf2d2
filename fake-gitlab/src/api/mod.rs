//! The `/api/v4` routes: prefix check, authentication, parameter parsing and
//! dispatch to the handlers.

mod groups;
mod hooks;
mod labels;
mod merge_requests;
mod misc;
mod pagination;
mod projects;
mod repository;
mod tokens;
mod users;

use std::sync::Mutex;

use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderMap, Method, StatusCode};

use crate::credentials::Credentials;
use crate::params::{Params, percent_decode};
use crate::reply::Reply;
use crate::store::{Render, Store};

/// Site-wide settings a request is answered with.
pub(crate) struct Site<'a> {
    pub credentials: &'a Mutex<Credentials>,
    pub base_url: &'a str,
    pub origin: &'a str,
    pub prefix: &'a str,
}

/// One parsed API request, as seen by handlers.
pub(crate) struct Ctx<'a> {
    /// The method; `HEAD` is answered like `GET`.
    pub method: &'a str,
    /// The external URL, e.g. `http://127.0.0.1:1234/gitlab`.
    pub base_url: &'a str,
    /// `http://127.0.0.1:1234`.
    pub origin: &'a str,
    /// The raw (still encoded) request path.
    pub raw_path: &'a str,
    /// The raw query string, if any.
    pub raw_query: Option<&'a str>,
    /// The raw path segments after `/api/v4/`.
    pub raw_segments: Vec<&'a str>,
    /// Decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    /// Query, form and JSON parameters merged.
    pub params: Params,
}

impl Ctx<'_> {
    /// A renderer for `store` with this request's external URL.
    pub(crate) fn render<'s>(&'s self, store: &'s Store) -> Render<'s> {
        Render {
            store,
            base: self.base_url,
        }
    }
}

/// Answers one request (body already read) against `store`.
pub(crate) fn respond(site: &Site<'_>, parts: &Parts, body: &[u8], store: &Mutex<Store>) -> Reply {
    let raw_path = parts.uri.path();
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let parsed = Params::from_request(parts.uri.query(), content_type, body);
    // Poisoned only if a handler panicked earlier; acceptable in a test tool.
    let mut credentials = site.credentials.lock().unwrap();
    if let Some(oauth_path) = raw_path.strip_prefix(site.prefix)
        && oauth_path.starts_with("/oauth/")
    {
        let params = parsed.map(|(params, _)| params).unwrap_or_default();
        return tokens::oauth(oauth_path, parts.method.as_str(), &params, &mut credentials)
            .unwrap_or_else(Reply::route_not_found);
    }
    let Some(rest) = api_rest(site.prefix, raw_path) else {
        return Reply::route_not_found();
    };
    let presented = presented_token(&parts.headers);
    let Some(token) = presented.and_then(|secret| credentials.authenticate(secret).cloned()) else {
        // GitLab's reuse detection: rotating a token that was already
        // rotated (so revoked) revokes its whole family.
        if parts.method == Method::POST
            && rest == "personal_access_tokens/self/rotate"
            && let Some(secret) = presented
        {
            credentials.rotate(secret, None);
        }
        return Reply::status_message(StatusCode::UNAUTHORIZED);
    };
    let (params, query) = match parsed {
        Ok(parsed) => parsed,
        Err(message) => return Reply::bad_request(message),
    };
    let method = if parts.method == Method::HEAD {
        "GET"
    } else {
        parts.method.as_str()
    };
    let ctx = Ctx {
        method,
        base_url: site.base_url,
        origin: site.origin,
        raw_path,
        raw_query: parts.uri.query(),
        raw_segments: rest.split('/').collect(),
        query,
        params,
    };
    // Split on `/` first, then decode each segment once.
    let decoded: Vec<String> = ctx
        .raw_segments
        .iter()
        .map(|s| percent_decode(s, false))
        .collect();
    let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
    if let Some(reply) = tokens::route(&ctx, &mut credentials, &token, store, &segments) {
        return reply;
    }
    drop(credentials);
    // Poisoned only if a handler panicked earlier; acceptable in a test tool.
    let mut store = store.lock().unwrap();
    route(&ctx, &mut store, &segments)
}

/// The raw path after `{prefix}/api/v4/`, if the request is for the API.
fn api_rest<'p>(prefix: &str, path: &'p str) -> Option<&'p str> {
    path.strip_prefix(prefix)?.strip_prefix("/api/v4/")
}

/// The credential the request carries. `PRIVATE-TOKEN` wins over
/// `Authorization: Bearer` when both are sent.
fn presented_token(headers: &HeaderMap) -> Option<&str> {
    if let Some(private) = headers.get("private-token") {
        return private.to_str().ok();
    }
    let auth = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok())?;
    match auth.trim().split_once(' ') {
        Some((scheme, value)) if scheme.eq_ignore_ascii_case("bearer") => Some(value.trim()),
        _ => None,
    }
}

/// Whether the request carries `token`.
#[cfg(test)]
fn authorized(headers: &HeaderMap, token: &str) -> bool {
    presented_token(headers) == Some(token)
}

/// Top-level dispatch on method and decoded segments.
fn route(ctx: &Ctx<'_>, store: &mut Store, segments: &[&str]) -> Reply {
    match (ctx.method, segments) {
        ("GET", ["version"]) => misc::version(),
        ("GET", ["metadata"]) => misc::metadata(),
        ("GET", ["user"]) => users::current(ctx, store),
        ("GET", ["users"]) => users::list(ctx, store),
        ("GET", ["users", id]) => users::show(ctx, store, id),
        ("GET", ["users", id, "projects"]) => projects::user_projects(ctx, store, id),
        ("GET", ["namespaces"]) => users::namespaces(ctx, store),
        ("GET", ["namespaces", id]) => users::namespace(ctx, store, id),
        ("GET", ["groups"]) => groups::list(ctx, store),
        (_, ["groups", id, rest @ ..]) => groups::route(ctx, store, id, rest),
        ("GET", ["projects"]) => projects::list(ctx, store),
        (_, ["projects", id, rest @ ..]) => projects::route(ctx, store, id, rest),
        _ => Reply::route_not_found(),
    }
}

/// Parses a numeric path or query parameter, else 400 `<name> is invalid`.
pub(crate) fn parse_id(value: &str, name: &str) -> crate::reply::Result<u64> {
    value.parse().map_err(|_| Reply::invalid(name))
}

/// The `sort` parameter: `true` for descending; `default_desc` if absent.
pub(crate) fn sort_desc(ctx: &Ctx<'_>, default_desc: bool) -> crate::reply::Result<bool> {
    match ctx
        .params
        .str("sort")
        .as_deref()
        .map(str::to_ascii_lowercase)
    {
        None => Ok(default_desc),
        Some(s) if s.is_empty() => Ok(default_desc),
        Some(s) if s == "asc" => Ok(false),
        Some(s) if s == "desc" => Ok(true),
        Some(_) => Err(Reply::bad_request("sort does not have a valid value")),
    }
}

/// The `order_by` parameter, checked against `allowed`; `default` if absent.
pub(crate) fn order_by(
    ctx: &Ctx<'_>,
    default: &'static str,
    allowed: &[&'static str],
) -> crate::reply::Result<&'static str> {
    let Some(given) = ctx.params.str("order_by").filter(|s| !s.is_empty()) else {
        return Ok(default);
    };
    allowed
        .iter()
        .find(|a| **a == given)
        .copied()
        .ok_or_else(|| Reply::bad_request("order_by does not have a valid value"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn auth_variants() {
        assert!(authorized(&headers(&[("private-token", "t")]), "t"));
        assert!(authorized(&headers(&[("authorization", "bearer t")]), "t"));
        assert!(!authorized(&headers(&[("authorization", "Basic t")]), "t"));
        assert!(!authorized(&headers(&[("private-token", "x")]), "t"));
        assert!(!authorized(&headers(&[]), "t"));
    }

    #[test]
    fn api_prefix() {
        assert_eq!(api_rest("", "/api/v4/user"), Some("user"));
        assert_eq!(api_rest("/gitlab", "/gitlab/api/v4/user"), Some("user"));
        assert_eq!(api_rest("/gitlab", "/api/v4/user"), None);
        assert_eq!(api_rest("", "/api/v4"), None);
    }
}
