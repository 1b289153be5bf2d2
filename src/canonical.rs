//! The request target, read the way GitLab will read it.
//!
//! GitLab's router splits the path on literal `/` first, matches `:id`-like
//! params as `[^/]+`, then decodes each param once; Rack decodes query keys and
//! values once (`+` is a space). [`RequestHead::parse`] does exactly that and
//! refuses every target where a proxy and GitLab could disagree (threat classes
//! 1–8 in docs/threat-model.md): dot segments, empty segments, `;` parameters, double
//! encoding, control bytes, invalid UTF-8, format suffixes, nested query keys.
//! The raw target is kept so that what is forwarded is byte for byte what was
//! checked.

use std::fmt;

/// Every API path starts with this prefix; policy templates are relative to it.
pub(crate) const API_PREFIX: &str = "/api/v4";

/// Longest request target accepted, in bytes.
pub(crate) const MAX_TARGET_BYTES: usize = 8192;
/// Most path segments accepted below `/api/v4`.
pub(crate) const MAX_SEGMENTS: usize = 32;
/// Most query parameters accepted.
pub(crate) const MAX_QUERY_PARAMS: usize = 256;

/// Extensions GitLab's API router reads as a response format on the last
/// segment (it declares json, txt and binary), plus the suffixes GitLab
/// refuses in project paths anyway.
pub(crate) const FORMAT_SUFFIXES: &[&str] = &[".json", ".txt", ".binary", ".atom", ".git"];

/// Percent-encodes everything but RFC 3986 unreserved characters, so that
/// `text` stays one path segment or one form value (`acme/backend` →
/// `acme%2Fbackend`). For targets glgate builds itself, never for forwarding.
pub(crate) fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The HTTP methods glgate knows. Anything else is refused before routing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD` (GitLab serves it as `GET` without a body)
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
}

impl Method {
    /// All methods, in a stable order (used for bit sets and listings).
    pub(crate) const ALL: [Method; 6] = [
        Method::Get,
        Method::Head,
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
    ];

    /// Parses a method name exactly as sent on the wire (upper case).
    pub(crate) fn parse(name: &str) -> Option<Method> {
        Some(match name {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            _ => return None,
        })
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    /// Whether the method only reads (GitLab changes nothing for it).
    pub(crate) fn is_read(self) -> bool {
        matches!(self, Method::Get | Method::Head)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a parameter came from. GitLab merges both, so policy checks the union.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamSource {
    /// The URL query string.
    Query,
    /// The request body (JSON or form encoded).
    Body,
}

/// One value of a request parameter, decoded once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParamValue {
    /// A scalar: a string, or a JSON number or boolean written as text.
    Scalar(String),
    /// JSON `null`.
    Null,
    /// An array of scalars (`labels[]=a&labels[]=b`, or a JSON array).
    List(Vec<String>),
}

/// One request parameter (query or body), decoded once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    /// The decoded name, without any `[]` suffix.
    pub name: String,
    /// The decoded value.
    pub value: ParamValue,
    /// Query or body.
    pub source: ParamSource,
}

/// One path segment below `/api/v4`: the raw bytes and their single decoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Exactly as received (may hold `%2F`).
    pub raw: String,
    /// Percent-decoded once.
    pub decoded: String,
}

/// A request target that glgate and GitLab read the same way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    method: Method,
    target: String,
    path_len: usize,
    segments: Vec<Segment>,
    query: Vec<Param>,
}

/// Why a request target was refused before any policy was consulted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// The method is not one glgate forwards.
    #[error("method {0} is not supported by glgate")]
    UnsupportedMethod(String),
    /// Absolute-form, authority-form or `*` targets.
    #[error("the request target must be a path starting with '/'")]
    NotOriginForm,
    /// The target is longer than [`MAX_TARGET_BYTES`].
    #[error("the request target is longer than {MAX_TARGET_BYTES} bytes")]
    TooLong,
    /// The path is not under `/api/v4`.
    #[error("only the GitLab REST API under /api/v4 is served")]
    NotApi,
    /// More than [`MAX_SEGMENTS`] segments.
    #[error("the path has more than {MAX_SEGMENTS} segments")]
    TooManySegments,
    /// More than [`MAX_QUERY_PARAMS`] query parameters.
    #[error("the query has more than {MAX_QUERY_PARAMS} parameters")]
    TooManyParams,
    /// A path or query byte glgate will not forward.
    #[error("{0}")]
    Ambiguous(String),
}

impl TargetError {
    /// A stable short code for audit lines, metrics and JSON errors.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            TargetError::UnsupportedMethod(_) => "unsupported_method",
            TargetError::NotOriginForm => "not_origin_form",
            TargetError::TooLong => "target_too_long",
            TargetError::NotApi => "not_api",
            TargetError::TooManySegments => "too_many_segments",
            TargetError::TooManyParams => "too_many_params",
            TargetError::Ambiguous(_) => "ambiguous_target",
        }
    }
}

fn ambiguous(message: impl Into<String>) -> TargetError {
    TargetError::Ambiguous(message.into())
}

impl RequestHead {
    /// Reads `target` (origin-form: path and optional query) for `method`.
    ///
    /// `/api/v4` and `/api/v4/` parse to a head with no segments: the API root.
    pub fn parse(method: &str, target: &str) -> Result<RequestHead, TargetError> {
        let method = Method::parse(method)
            .ok_or_else(|| TargetError::UnsupportedMethod(printable(method)))?;
        if target.len() > MAX_TARGET_BYTES {
            return Err(TargetError::TooLong);
        }
        if !target.starts_with('/') {
            return Err(TargetError::NotOriginForm);
        }
        if target.contains('#') {
            return Err(ambiguous(
                "a '#' fragment is not allowed in the request target",
            ));
        }
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (target, None),
        };
        let rest = path.strip_prefix(API_PREFIX).ok_or(TargetError::NotApi)?;
        let segments = match rest {
            "" | "/" => Vec::new(),
            _ => {
                let inner = rest.strip_prefix('/').ok_or(TargetError::NotApi)?;
                parse_segments(inner)?
            }
        };
        let query = match query {
            Some(query) => parse_query(query, ParamSource::Query)?,
            None => Vec::new(),
        };
        Ok(RequestHead {
            method,
            target: target.to_owned(),
            path_len: path.len(),
            segments,
            query,
        })
    }

    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The raw target as received: this exact string is forwarded.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The raw path (no query).
    pub fn path(&self) -> &str {
        &self.target[..self.path_len]
    }

    /// Segments below `/api/v4`.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Query parameters, decoded once, in order.
    pub fn query(&self) -> &[Param] {
        &self.query
    }

    /// Whether this is the API root probe (`/api/v4` or `/api/v4/`).
    pub(crate) fn is_api_root(&self) -> bool {
        self.segments.is_empty()
    }
}

fn parse_segments(inner: &str) -> Result<Vec<Segment>, TargetError> {
    let count = inner.split('/').count();
    if count > MAX_SEGMENTS {
        return Err(TargetError::TooManySegments);
    }
    let mut segments = Vec::with_capacity(count);
    for raw in inner.split('/') {
        segments.push(parse_segment(raw)?);
    }
    if let Some(last) = segments.last() {
        let lower = last.decoded.to_ascii_lowercase();
        if let Some(suffix) = FORMAT_SUFFIXES.iter().find(|s| lower.ends_with(*s)) {
            return Err(ambiguous(format!(
                "a '{suffix}' suffix on the last path segment can be read by GitLab as a response format"
            )));
        }
    }
    Ok(segments)
}

fn parse_segment(raw: &str) -> Result<Segment, TargetError> {
    if raw.is_empty() {
        return Err(ambiguous("empty path segment ('//' or a trailing '/')"));
    }
    if raw == "." || raw == ".." {
        return Err(ambiguous("dot segment ('.' or '..') in the path"));
    }
    for byte in raw.bytes() {
        if !is_path_byte(byte) {
            return Err(ambiguous(match byte {
                b';' => "';' path parameters are not allowed".to_owned(),
                b'+' => "a raw '+' in the path is ambiguous: encode it as %2B".to_owned(),
                b'\\' => "a backslash in the path is not allowed".to_owned(),
                _ => format!("byte 0x{byte:02x} is not allowed in the path"),
            }));
        }
    }
    // Escapes of unreserved characters are decoded like any other: clients
    // send them (go-gitlab escapes every '.' as %2E, GitLab's docs show
    // `lib%2Fclass%2Erb`), and every check below reads the decoding. Whether
    // an escaped segment spells a route name is for the policy matcher to
    // say (only it knows the route names): GitLab's router would read
    // `%70rojects` as `projects`.
    let decoded = decode_once(raw, false)?;
    // A '%' left after one decoding is data (a label named "50%") unless it
    // starts another escape: then something decoding again would read other
    // bytes than were checked (`%252F` would become '/').
    if holds_escape(&decoded) {
        return Err(ambiguous(
            "double percent-encoding ('%25' followed by two hex digits) in the path",
        ));
    }
    if decoded.contains('\\') {
        return Err(ambiguous("an encoded backslash in the path is not allowed"));
    }
    if decoded
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(ambiguous(
            "an encoded path segment holds an empty, '.' or '..' part",
        ));
    }
    Ok(Segment {
        raw: raw.to_owned(),
        decoded,
    })
}

/// Whether `text` holds a percent escape (`%` and two hex digits).
fn holds_escape(text: &str) -> bool {
    text.as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && hex_value(w[1]).is_some() && hex_value(w[2]).is_some())
}

/// RFC 3986 `pchar` minus `;` (path parameters) and `+` (read as a space by some routers).
fn is_path_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(
            byte,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'%'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b','
                | b'='
                | b':'
                | b'@'
        )
}

/// Parses an `application/x-www-form-urlencoded` string (a query or a form body).
pub(crate) fn parse_query(query: &str, source: ParamSource) -> Result<Vec<Param>, TargetError> {
    let mut params: Vec<Param> = Vec::new();
    for piece in query.split('&') {
        if piece.is_empty() {
            continue;
        }
        if params.len() == MAX_QUERY_PARAMS {
            return Err(TargetError::TooManyParams);
        }
        if piece.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(ambiguous(
                "a raw space or control byte in a query or form (Rack skips spaces after '&'): encode it",
            ));
        }
        if piece.contains(';') {
            return Err(ambiguous(
                "';' in a query or form is read as a separator by some servers: encode it as %3B",
            ));
        }
        let (raw_key, raw_value) = piece.split_once('=').unwrap_or((piece, ""));
        let key = decode_once(raw_key, true)?;
        let value = decode_once(raw_value, true)?;
        check_value_text(&value)?;
        let (name, is_list) = split_param_name(&key)?;
        params.push(Param {
            name,
            value: if is_list {
                ParamValue::List(vec![value])
            } else {
                ParamValue::Scalar(value)
            },
            source,
        });
    }
    Ok(fold_lists(params))
}

/// `labels[]=a&labels[]=b` arrives as two one-element lists; GitLab sees one
/// array. Fold consecutive and non-consecutive repeats of the same list name.
fn fold_lists(params: Vec<Param>) -> Vec<Param> {
    let mut folded: Vec<Param> = Vec::with_capacity(params.len());
    for param in params {
        if let ParamValue::List(mut items) = param.value {
            if let Some(existing) = folded
                .iter_mut()
                .find(|p| p.name == param.name && matches!(p.value, ParamValue::List(_)))
            {
                if let ParamValue::List(all) = &mut existing.value {
                    all.append(&mut items);
                }
                continue;
            }
            folded.push(Param {
                value: ParamValue::List(items),
                ..param
            });
        } else {
            folded.push(param);
        }
    }
    folded
}

/// Splits `name[]` into (`name`, true); refuses every other bracket form
/// (`a[b]`, `a[][c]`), which Rack would read as a nested hash.
pub(crate) fn split_param_name(key: &str) -> Result<(String, bool), TargetError> {
    let (name, is_list) = match key.strip_suffix("[]") {
        Some(name) => (name, true),
        None => (key, false),
    };
    if name.is_empty() {
        return Err(ambiguous("a parameter has an empty name"));
    }
    if name.contains(['[', ']']) {
        return Err(ambiguous(format!(
            "parameter '{}' uses a nested form ('a[b]'), which is not allowed",
            printable(name)
        )));
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(ambiguous("a parameter name holds a control character"));
    }
    Ok((name.to_owned(), is_list))
}

/// Values may hold tabs and line breaks (descriptions) but no other control bytes.
pub(crate) fn check_value_text(value: &str) -> Result<(), TargetError> {
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(ambiguous("a parameter value holds a control character"));
    }
    Ok(())
}

/// Percent-decodes once, strictly: every `%` must start a valid escape and the
/// result must be UTF-8 (which also refuses overlong encodings such as `%c0%af`).
/// `plus_is_space` follows form encoding (queries and form bodies).
fn decode_once(raw: &str, plus_is_space: bool) -> Result<String, TargetError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|b| hex_value(*b));
                let lo = bytes.get(i + 2).and_then(|b| hex_value(*b));
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                    _ => return Err(ambiguous("a '%' is not followed by two hex digits")),
                }
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    let text =
        String::from_utf8(out).map_err(|_| ambiguous("percent-decoding gives invalid UTF-8"))?;
    if text.chars().any(|c| c == '\0') {
        return Err(ambiguous("a NUL byte is not allowed"));
    }
    if !plus_is_space && text.chars().any(char::is_control) {
        return Err(ambiguous("a control character is not allowed in the path"));
    }
    Ok(text)
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Makes attacker-supplied text safe to quote in a message: printable ASCII
/// only, bounded length.
pub(crate) fn printable(text: &str) -> String {
    const LIMIT: usize = 64;
    let mut out: String = text
        .chars()
        .take(LIMIT)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if text.chars().count() > LIMIT {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(target: &str) -> Result<RequestHead, TargetError> {
        RequestHead::parse("GET", target)
    }

    #[test]
    fn splits_before_decoding() {
        let head = parse("/api/v4/projects/acme%2Fbackend/merge_requests?state=opened").unwrap();
        let decoded: Vec<_> = head.segments().iter().map(|s| s.decoded.as_str()).collect();
        assert_eq!(decoded, ["projects", "acme/backend", "merge_requests"]);
        assert_eq!(head.segments()[1].raw, "acme%2Fbackend");
        assert_eq!(head.query()[0].name, "state");
        assert_eq!(
            head.target(),
            "/api/v4/projects/acme%2Fbackend/merge_requests?state=opened"
        );
        assert_eq!(
            head.path(),
            "/api/v4/projects/acme%2Fbackend/merge_requests"
        );
    }

    #[test]
    fn api_root() {
        assert!(parse("/api/v4").unwrap().is_api_root());
        assert!(parse("/api/v4/").unwrap().is_api_root());
        assert_eq!(parse("/api/v4x"), Err(TargetError::NotApi));
        assert_eq!(parse("/API/V4/projects"), Err(TargetError::NotApi));
    }

    #[test]
    fn refuses_confusing_paths() {
        for target in [
            "/api/v4/projects//5",
            "/api/v4/projects/5/",
            "/api/v4/projects/./5",
            "/api/v4/projects/../5",
            "/api/v4/projects/%2e%2e",
            "/api/v4/projects/.%2e",
            "/api/v4/projects/%2E",
            "/api/v4/projects/acme%2F%2E%2E%2Fx",
            "/api/v4/projects/x%2Ejson",
            "/api/v4/projects/x%2EJSON",
            "/api/v4/projects/acme%2F%2E",
            "/api/v4/projects/g%2F..%2Fother%2Fp",
            "/api/v4/projects/g%2F%2Fp",
            "/api/v4/projects/%252F",
            "/api/v4/projects/5;x=y",
            "/api/v4/projects/5%00",
            "/api/v4/projects/5%0d%0a",
            "/api/v4/projects/%c0%af",
            "/api/v4/projects/%ff",
            "/api/v4/projects/5%zz",
            "/api/v4/projects/5%2",
            "/api/v4/projects/a%5Cb",
            "/api/v4/projects/a+b",
            "/api/v4/projects/5.json",
            "/api/v4/projects/5#x",
            "/api/v4/projects?a[b]=1",
            "/api/v4/projects?a=1;b=2",
            "/api/v4/projects?a=%00",
            "http://x/api/v4/projects",
            "*",
        ] {
            assert!(parse(target).is_err(), "{target} should be refused");
        }
    }

    /// go-gitlab escapes every '.' (and python-gitlab or gitbeaker may
    /// escape other unreserved characters): each segment is decoded once and
    /// forwarded as sent. Route names are the matcher's business.
    #[test]
    fn escaped_unreserved_characters_are_decoded_once() {
        let head = parse("/api/v4/projects/other%2Fdocs%2Esite/labels/v1%2E0").unwrap();
        let decoded: Vec<_> = head.segments().iter().map(|s| s.decoded.as_str()).collect();
        assert_eq!(decoded, ["projects", "other/docs.site", "labels", "v1.0"]);
        assert_eq!(head.segments()[1].raw, "other%2Fdocs%2Esite");
        assert_eq!(
            head.target(),
            "/api/v4/projects/other%2Fdocs%2Esite/labels/v1%2E0"
        );
        let head = parse("/api/v4/%70rojects/5").unwrap();
        assert_eq!(head.segments()[0].raw, "%70rojects");
        assert_eq!(head.segments()[0].decoded, "projects");
    }

    #[test]
    fn query_lists_fold_and_plus_is_space() {
        let head = parse("/api/v4/x?labels[]=a&b=c+d&labels[]=e%2Cf").unwrap();
        assert_eq!(
            head.query()[0].value,
            ParamValue::List(vec!["a".into(), "e,f".into()])
        );
        assert_eq!(head.query()[1].value, ParamValue::Scalar("c d".into()));
    }

    #[test]
    fn unsupported_methods() {
        for method in ["OPTIONS", "TRACE", "CONNECT", "get", "PROPFIND"] {
            assert!(matches!(
                RequestHead::parse(method, "/api/v4/x"),
                Err(TargetError::UnsupportedMethod(_))
            ));
        }
    }
}
