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
mod users;

use std::sync::Mutex;

use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderMap, Method, StatusCode};

use crate::params::{Params, percent_decode};
use crate::reply::Reply;
use crate::store::{Render, Store};

/// Site-wide settings a request is answered with.
pub(crate) struct Site<'a> {
    pub token: &'a str,
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
    let Some(rest) = api_rest(site.prefix, raw_path) else {
        return Reply::route_not_found();
    };
    if !authorized(&parts.headers, site.token) {
        return Reply::status_message(StatusCode::UNAUTHORIZED);
    }
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let (params, query) = match Params::from_request(parts.uri.query(), content_type, body) {
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
    // Poisoned only if a handler panicked earlier; acceptable in a test tool.
    let mut store = store.lock().unwrap();
    route(&ctx, &mut store, &segments)
}

/// The raw path after `{prefix}/api/v4/`, if the request is for the API.
fn api_rest<'p>(prefix: &str, path: &'p str) -> Option<&'p str> {
    path.strip_prefix(prefix)?.strip_prefix("/api/v4/")
}

/// Whether the request carries the accepted token. `PRIVATE-TOKEN` wins
/// over `Authorization: Bearer` when both are sent.
fn authorized(headers: &HeaderMap, token: &str) -> bool {
    if let Some(private) = headers.get("private-token") {
        return private.as_bytes() == token.as_bytes();
    }
    let Some(auth) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    match auth.trim().split_once(' ') {
        Some((scheme, value)) => scheme.eq_ignore_ascii_case("bearer") && value.trim() == token,
        None => false,
    }
}

/// Top-level dispatch on method and decoded segments.
fn route(ctx: &Ctx<'_>, store: &mut Store, segments: &[&str]) -> Reply {
    match (ctx.method, segments) {
        ("GET", ["version"]) => misc::version(),
        ("GET", ["metadata"]) => misc::metadata(),
        ("GET", ["personal_access_tokens", "self"]) => misc::token_self(),
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
