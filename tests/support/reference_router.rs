//! A deliberately simple, independent model of how GitLab reads a request,
//! and the invariants every request glgate allows must satisfy against it.
//!
//! Shared by `tests/properties/main.rs` (proptest) and the fuzz targets in `fuzz/`
//! (included with `#[path]`), so both check the same thing. It uses nothing
//! of glgate's parsing: only the policy's declared routes, and glgate's
//! decision and parsed head to compare against.
//!
//! The model (docs/gitlab.md §3, Rack 2.2, Grape):
//! - path: split the raw path on literal `/` after `/api/v4/`; a template
//!   literal matches one raw segment whose characters are each the literal's
//!   character or its `%XX` escape (Grape's Mustermann patterns,
//!   [`Literals::Mustermann`], GitLab's reading; [`Literals::Raw`], exact
//!   bytes, is the stricter reading an allowed request must satisfy too), a
//!   `{param}` matches one non-empty raw segment (`[^/]+`); among matching
//!   templates the most specific wins (at each segment from the left a
//!   literal beats a param); each param is then percent-decoded once (`%XX`
//!   only, escapes of unreserved characters included, `+` stays `+`, a stray
//!   `%` stays).
//! - query: split on `&` and `;` (Rack 2.2's `/[&;] */`), decode key and value
//!   once with `+` as space (strict: a bad `%` is a 400), `name[]` appends to
//!   a list, `name[x]` is a nested hash, a key without `=` is `nil`.
//! - form body: the same with `&` only; JSON body: the object's members.
//! - lists (`labels`, …) are split on `,` and each element stripped as Ruby's
//!   `String#strip` does (ASCII whitespace and NUL only), as GitLab's
//!   `CommaSeparatedToArray` does.

use std::collections::BTreeMap;
use std::fmt;

use glgate::canonical::{Param, ParamValue, RequestHead};
use glgate::policy::{Permit, Policy};
use serde::de::{Deserializer, MapAccess, Visitor};

/// GitLab credential, impersonation and override parameter names (docs/gitlab.md §2, threat class 10).
pub const FORBIDDEN: &[&str] = &[
    "private_token",
    "access_token",
    "bearer_token",
    "job_token",
    "sudo",
    "_method",
    "format",
];

/// Rule ids of the Echoes policy whose values [`check_merged`] checks.
pub const CHECKED_RULES: &[&str] = &[
    "merge-requests.labels",
    "project-hooks.create",
    "group-hooks.create",
    "project-hooks.update",
    "group-hooks.update",
    "group-labels.create",
    "group-labels.update-by-name",
    "group-labels.update",
];

/// The only hook URLs Echoes may register.
const ECHOES_HOOK_PREFIX: &str = "https://api.echoeshq.com/";

/// Extensions GitLab's API (Grape) reads as a response format on the last
/// segment: the formats it declares (json, txt, binary).
const FORMAT_SUFFIXES: &[&str] = &[".json", ".txt", ".binary"];

// ---------------------------------------------------------------------------
// Routes and path matching
// ---------------------------------------------------------------------------

/// One declared route: a method and a template relative to `/api/v4`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// `GET`, `PUT`, …
    pub method: String,
    /// E.g. `/projects/{project}/merge_requests/{iid}`.
    pub template: String,
}

/// Every (method, template) a policy declares.
pub fn routes_of(policy: &Policy) -> Vec<Route> {
    let mut routes = Vec::new();
    for rule in policy.rules() {
        for method in rule.methods() {
            for template in rule.templates() {
                routes.push(Route {
                    method: method.as_str().to_owned(),
                    template: template.text().to_owned(),
                });
            }
        }
    }
    routes
}

/// How a template literal is compared with a raw segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Literals {
    /// Exact raw bytes: stricter than GitLab, which a request glgate
    /// allows must satisfy as well.
    Raw,
    /// Grape's Mustermann patterns: each literal character also matches its
    /// `%XX` encoding, so `%70rojects` matches `projects`.
    Mustermann,
}

/// What the reference router picked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteMatch {
    /// The template text.
    pub template: String,
    /// `(param name, decoded value)` in path order.
    pub params: Vec<(String, String)>,
}

/// Routes `method` + raw `target` the way the model says GitLab does.
/// `Ok(None)`: no route. `Err`: the router matched but could not decode a
/// param (invalid UTF-8), or two templates tie.
pub fn route(
    routes: &[Route],
    method: &str,
    target: &str,
    literals: Literals,
) -> Result<Option<RouteMatch>, String> {
    let path = target.split('?').next().unwrap_or_default();
    let Some(rest) = path.strip_prefix("/api/v4/") else {
        return Ok(None);
    };
    let raw: Vec<&str> = rest.split('/').collect();
    // (specificity key, template) of every structural match.
    let mut best: Option<(Vec<bool>, &str)> = None;
    for candidate in routes {
        let method_ok =
            candidate.method == method || (method == "HEAD" && candidate.method == "GET");
        if !method_ok {
            continue;
        }
        let Some(key) = structural_match(&candidate.template, &raw, literals) else {
            continue;
        };
        match &best {
            Some((best_key, best_template)) if *best_key == key => {
                if *best_template != candidate.template {
                    return Err(format!(
                        "templates {best_template} and {} tie",
                        candidate.template
                    ));
                }
            }
            Some((best_key, _)) if *best_key > key => {}
            _ => best = Some((key, &candidate.template)),
        }
    }
    let Some((_, template)) = best else {
        return Ok(None);
    };
    let mut params = Vec::new();
    for (part, segment) in template_parts(template).zip(&raw) {
        if let Some(name) = param_name(part) {
            let decoded = String::from_utf8(path_decode(segment.as_bytes()))
                .map_err(|_| format!("param {name} = {segment:?} decodes to invalid UTF-8"))?;
            params.push((name.to_owned(), decoded));
        }
    }
    Ok(Some(RouteMatch {
        template: template.to_owned(),
        params,
    }))
}

fn template_parts(template: &str) -> impl Iterator<Item = &str> {
    template.trim_start_matches('/').split('/')
}

fn param_name(part: &str) -> Option<&str> {
    part.strip_prefix('{')?.strip_suffix('}')
}

/// `Some(key)` when the template matches the raw segments; `key[i]` is true
/// where the template has a literal, so a greater key is more specific.
fn structural_match(template: &str, raw: &[&str], literals: Literals) -> Option<Vec<bool>> {
    let parts: Vec<&str> = template_parts(template).collect();
    if parts.len() != raw.len() {
        return None;
    }
    let mut key = Vec::with_capacity(parts.len());
    for (part, segment) in parts.iter().zip(raw) {
        if param_name(part).is_some() {
            if segment.is_empty() {
                return None;
            }
            key.push(false);
        } else {
            let same = match literals {
                Literals::Raw => part == segment,
                Literals::Mustermann => path_decode(segment.as_bytes()) == part.as_bytes(),
            };
            if !same {
                return None;
            }
            key.push(true);
        }
    }
    Some(key)
}

/// Decodes every valid `%XX` once; anything else, `+` and a stray `%`
/// included, stays as it is (Rails' and Mustermann's path unescaping).
pub fn path_decode(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                raw.get(i + 1).and_then(|b| hex(*b)),
                raw.get(i + 2).and_then(|b| hex(*b)),
            )
        {
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    out
}

/// Ruby's `URI.decode_www_form_component`: `+` is a space, every `%` must
/// start a valid escape.
pub fn form_decode(raw: &str) -> Result<String, String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|b| hex(*b));
                let lo = bytes.get(i + 2).and_then(|b| hex(*b));
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(format!("invalid %-encoding in {raw:?}"));
                };
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| format!("{raw:?} decodes to invalid UTF-8"))
}

fn hex(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|d| d as u8)
}

// ---------------------------------------------------------------------------
// Parameters: Rack query and form parsing, JSON bodies
// ---------------------------------------------------------------------------

/// One parameter as Rack (or Grape's JSON parser) reads it, before merging.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefParam {
    /// The name Rack files the value under.
    pub name: String,
    /// The value.
    pub value: RefValue,
}

/// A parameter value in the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefValue {
    /// `name=value`; `None` for a bare `name` (Rack's `nil`) or JSON `null`.
    Scalar(Option<String>),
    /// `name[]=value` pieces (one item each) or a JSON array.
    List(Vec<Option<String>>),
    /// `name[x]=…`, a JSON object, or a JSON array holding non-scalars.
    Nested,
}

/// Parses a query (`separators` = `"&;"`) or a form body (`"&"`) as Rack 2.2 does.
pub fn rack_params(text: &str, separators: &str) -> Result<Vec<RefParam>, String> {
    let mut params = Vec::new();
    for (index, piece) in text.split(|c| separators.contains(c)).enumerate() {
        // The separator regex is `/[&;] */`: spaces after a separator go.
        let piece = if index > 0 {
            piece.trim_start_matches(' ')
        } else {
            piece
        };
        if piece.is_empty() {
            continue;
        }
        let (raw_key, raw_value) = match piece.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (piece, None),
        };
        let key = form_decode(raw_key)?;
        let value = raw_value.map(form_decode).transpose()?;
        // Rack::QueryParser#normalize_params: `\A[\[\]]*([^\[\]]+)\]*`.
        let stripped = key.trim_start_matches(['[', ']']);
        let end = stripped.find(['[', ']']).unwrap_or(stripped.len());
        let name = &stripped[..end];
        let after = stripped[end..].trim_start_matches(']');
        if name.is_empty() {
            continue; // Rack drops it.
        }
        let (name, value) = match after {
            "" => (name.to_owned(), RefValue::Scalar(value)),
            "[" => (key.clone(), RefValue::Scalar(value)),
            "[]" => (name.to_owned(), RefValue::List(vec![value])),
            _ => (name.to_owned(), RefValue::Nested),
        };
        params.push(RefParam { name, value });
    }
    Ok(params)
}

/// A JSON object's members in order, duplicates kept.
struct Members(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(V)
    }
}

fn json_scalar(value: &serde_json::Value) -> Option<Option<String>> {
    use serde_json::Value;
    match value {
        Value::Null => Some(None),
        Value::String(text) => Some(Some(text.clone())),
        Value::Number(number) => Some(Some(number.to_string())),
        Value::Bool(flag) => Some(Some(flag.to_string())),
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// A JSON object body's members as parameters (no bracket parsing: Rails
/// and Grape take JSON keys as they are).
pub fn json_params(body: &[u8]) -> Result<Vec<RefParam>, String> {
    let Members(members) =
        serde_json::from_slice(body).map_err(|e| format!("not a JSON object: {e}"))?;
    Ok(members
        .into_iter()
        .map(|(name, value)| {
            let value = match &value {
                serde_json::Value::Array(items) => items
                    .iter()
                    .map(json_scalar)
                    .collect::<Option<Vec<_>>>()
                    .map_or(RefValue::Nested, RefValue::List),
                other => json_scalar(other).map_or(RefValue::Nested, RefValue::Scalar),
            };
            RefParam { name, value }
        })
        .collect())
}

/// The body parameters GitLab reads for a `Content-Type` and body.
pub fn body_params(content_type: Option<&str>, body: &[u8]) -> Result<Vec<RefParam>, String> {
    let media = content_type
        .and_then(|ct| ct.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    match media.as_deref() {
        Some("application/x-www-form-urlencoded") => {
            let text = std::str::from_utf8(body).map_err(|_| "form body is not UTF-8")?;
            rack_params(text, "&")
        }
        // A blank JSON body is no params for Grape and Rails.
        Some("application/json") if body.iter().all(u8::is_ascii_whitespace) => Ok(Vec::new()),
        Some("application/json") => json_params(body),
        // Other types (multipart aside, which glgate refuses) are not parsed.
        _ => Ok(Vec::new()),
    }
}

/// Ruby's `String#strip`: ASCII whitespace and NUL, not Unicode spaces.
pub fn ruby_strip(text: &str) -> &str {
    text.trim_matches(|c: char| matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r' | '\0'))
}

/// GitLab's `CommaSeparatedToArray`: split each item on `,`, strip each element.
pub fn comma_elements(items: &[Option<String>]) -> Vec<String> {
    items
        .iter()
        .flat_map(|item| {
            item.as_deref()
                .unwrap_or_default()
                .split(',')
                .map(|e| ruby_strip(e).to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Invariants
// ---------------------------------------------------------------------------

/// Checks a head glgate parsed from `target`: it round-trips, every segment
/// is decoded exactly once and holds no dot, empty, `%`, backslash or
/// control part, and its query is what Rack reads.
pub fn check_head(head: &RequestHead, target: &str) -> Result<(), String> {
    if head.target() != target {
        return Err(format!("target {:?} became {:?}", target, head.target()));
    }
    let path = target.split('?').next().unwrap_or_default();
    if head.path() != path {
        return Err(format!("path {path:?} became {:?}", head.path()));
    }
    if target.contains('#') {
        return Err("a '#' was accepted".into());
    }
    let rest = path
        .strip_prefix("/api/v4")
        .ok_or("accepted a path outside /api/v4")?;
    let raw: Vec<&str> = match rest {
        "" | "/" => Vec::new(),
        _ => rest
            .strip_prefix('/')
            .ok_or("accepted /api/v4 followed by something other than '/'")?
            .split('/')
            .collect(),
    };
    let glgate_raw: Vec<&str> = head.segments().iter().map(|s| s.raw.as_str()).collect();
    if raw != glgate_raw {
        return Err(format!("raw segments {raw:?}, glgate split {glgate_raw:?}"));
    }
    for segment in head.segments() {
        let decoded = String::from_utf8(path_decode(segment.raw.as_bytes()))
            .map_err(|_| format!("segment {:?} decodes to invalid UTF-8", segment.raw))?;
        if decoded != segment.decoded {
            return Err(format!(
                "segment {:?} decodes once to {decoded:?}, glgate says {:?}",
                segment.raw, segment.decoded
            ));
        }
        check_decoded_segment(&segment.raw, &decoded)?;
    }
    if let Some(last) = head.segments().last() {
        let lower = last.decoded.to_ascii_lowercase();
        if FORMAT_SUFFIXES.iter().any(|s| lower.ends_with(s)) {
            return Err(format!("format suffix accepted on {:?}", last.raw));
        }
    }
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let rack = rack_params(query, "&;")
        .map_err(|e| format!("Rack refuses a query glgate accepted: {e}"))?;
    compare_query(&rack, head.query())
}

/// A '%' followed by two hex digits: what a second decoding would change.
/// A lone '%' (a label named "50%") is data.
fn percent_escape_in(text: &str) -> bool {
    let bytes = text.as_bytes();
    (0..bytes.len()).any(|i| {
        bytes[i] == b'%'
            && bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
            && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
    })
}

fn check_decoded_segment(raw: &str, decoded: &str) -> Result<(), String> {
    if raw.is_empty() {
        return Err("empty segment accepted".into());
    }
    if raw.contains([';', '+', '\\']) {
        return Err(format!("segment {raw:?} holds ';', '+' or '\\'"));
    }
    if percent_escape_in(decoded) {
        return Err(format!(
            "segment {raw:?} still holds a percent escape after one decoding"
        ));
    }
    if decoded.contains('\\') || decoded.chars().any(char::is_control) {
        return Err(format!(
            "segment {raw:?} decodes to a backslash or control char"
        ));
    }
    if let Some(part) = decoded
        .split('/')
        .find(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return Err(format!(
            "segment {raw:?} decodes to {decoded:?}, holding a {part:?} part"
        ));
    }
    Ok(())
}

/// Rack's `nil` (a key without `=`) is compared as `""`: glgate reads it as
/// an empty string and checks that against the rule, and both are blank.
fn blank(value: &Option<String>) -> String {
    value.clone().unwrap_or_default()
}

/// Compares the query piece by piece, order-insensitive: each Rack piece is
/// `(name, is list item, value)`, glgate's lists are expanded item by item.
/// (Whether a name is sent twice is [`check_merged`]'s business.)
fn compare_query(rack: &[RefParam], glgate: &[Param]) -> Result<(), String> {
    let mut expected: Vec<(String, bool, String)> = Vec::new();
    for param in rack {
        match &param.value {
            RefValue::Nested => {
                return Err(format!("nested query param {:?} accepted", param.name));
            }
            RefValue::Scalar(value) => expected.push((param.name.clone(), false, blank(value))),
            RefValue::List(items) => expected.extend(
                items
                    .iter()
                    .map(|item| (param.name.clone(), true, blank(item))),
            ),
        }
    }
    let mut actual: Vec<(String, bool, String)> = Vec::new();
    for param in glgate {
        match &param.value {
            ParamValue::Scalar(text) => actual.push((param.name.clone(), false, text.clone())),
            ParamValue::List(items) => actual.extend(
                items
                    .iter()
                    .map(|item| (param.name.clone(), true, item.clone())),
            ),
            ParamValue::Null => return Err(format!("query param {:?} is null", param.name)),
        }
    }
    expected.sort();
    actual.sort();
    if expected != actual {
        return Err(format!(
            "Rack reads the query as {expected:?}, glgate as {actual:?}"
        ));
    }
    Ok(())
}

/// Checks an allowed request's route: the reference router, reading the
/// exact target glgate forwards, picks the same template and binds the same
/// decoded values.
pub fn check_route(
    routes: &[Route],
    head: &RequestHead,
    permit: &Permit,
    literals: Literals,
) -> Result<(), String> {
    let method = head.method().as_str();
    let reference = route(routes, method, head.target(), literals)?.ok_or_else(|| {
        format!(
            "glgate allowed {method} {} as {}, the reference router finds no route",
            head.target(),
            permit.template()
        )
    })?;
    let bound: Vec<(String, String)> = permit
        .bindings()
        .iter()
        .map(|b| (b.name.to_string(), b.value.clone()))
        .collect();
    if reference.template != permit.template() || reference.params != bound {
        return Err(format!(
            "{method} {}: glgate checked {} {bound:?}, the reference router reads {} {:?}",
            head.target(),
            permit.template(),
            reference.template,
            reference.params
        ));
    }
    for (name, value) in &reference.params {
        if percent_escape_in(value)
            || value
                .split('/')
                .any(|p| p.is_empty() || p == "." || p == "..")
        {
            return Err(format!("param {name} = {value:?} allowed"));
        }
    }
    Ok(())
}

/// Checks an allowed request's merged parameters (query, then body): no name
/// set twice, no credential or override in any letter case, and the values
/// the rule constrains satisfy it as GitLab will read them.
pub fn check_merged(rule: &str, query: &[RefParam], body: &[RefParam]) -> Result<(), String> {
    // How many times each name is set: every scalar, and each source's list.
    let mut sets: BTreeMap<&str, usize> = BTreeMap::new();
    for source in [query, body] {
        let mut lists_here: Vec<&str> = Vec::new();
        for param in source {
            let lower = param.name.to_ascii_lowercase();
            if FORBIDDEN.contains(&lower.as_str()) {
                return Err(format!("forbidden param {:?} allowed", param.name));
            }
            match &param.value {
                RefValue::Nested => return Err(format!("nested param {:?} allowed", param.name)),
                RefValue::List(_) if lists_here.contains(&param.name.as_str()) => continue,
                RefValue::List(_) => lists_here.push(&param.name),
                RefValue::Scalar(_) => {}
            }
            *sets.entry(&param.name).or_default() += 1;
        }
    }
    if let Some((name, count)) = sets.iter().find(|(_, count)| **count > 1) {
        return Err(format!("param {name:?} is set {count} times"));
    }
    let values = |name: &str| -> Vec<Option<String>> {
        query
            .iter()
            .chain(body)
            .filter(|p| p.name == name)
            .flat_map(|p| match &p.value {
                RefValue::Scalar(value) => vec![value.clone()],
                RefValue::List(items) => items.clone(),
                RefValue::Nested => Vec::new(),
            })
            .collect()
    };
    match rule {
        "merge-requests.labels" => {
            // `labels` (the whole new set) is the rule's `changes_only`
            // parameter: what it may change is decided against the merge
            // request's current labels at run time, not by its value alone;
            // here it must only not be empty (which would clear every label).
            if query.iter().chain(body).any(|p| p.name == "labels") {
                let elements: Vec<String> = comma_elements(&values("labels"))
                    .into_iter()
                    .filter(|e| !e.is_empty())
                    .collect();
                if elements.is_empty() {
                    return Err("labels is an empty list (clears labels)".into());
                }
            }
            for name in ["add_labels", "remove_labels"] {
                let items = values(name);
                if query.iter().chain(body).all(|p| p.name != name) {
                    continue;
                }
                let elements: Vec<String> = comma_elements(&items)
                    .into_iter()
                    .filter(|e| !e.is_empty())
                    .collect();
                if elements.is_empty() {
                    return Err(format!(
                        "{name} = {items:?} is an empty list (clears labels)"
                    ));
                }
                if let Some(bad) = elements.iter().find(|e| !e.starts_with("echoes/")) {
                    return Err(format!(
                        "{name} = {items:?}: GitLab reads element {bad:?}, not an echoes/ label"
                    ));
                }
            }
        }
        "project-hooks.create"
        | "group-hooks.create"
        | "project-hooks.update"
        | "group-hooks.update" => {
            let url = values("url");
            let required = rule.ends_with(".create");
            match url.as_slice() {
                [] if !required => {}
                [Some(url)] if url.starts_with(ECHOES_HOOK_PREFIX) => {}
                other => return Err(format!("hook url {other:?} allowed")),
            }
            let ssl = values("enable_ssl_verification");
            if !ssl.is_empty() && ssl != [Some("true".to_owned())] && ssl != [Some("1".to_owned())]
            {
                return Err(format!("enable_ssl_verification {ssl:?} allowed"));
            }
        }
        "group-labels.create" | "group-labels.update-by-name" | "group-labels.update" => {
            for name in ["name", "new_name"] {
                match values(name).as_slice() {
                    [] => {}
                    [Some(label)] if label.starts_with("echoes/") => {}
                    other => return Err(format!("label {name} {other:?} allowed")),
                }
            }
        }
        _ => {}
    }
    Ok(())
}
