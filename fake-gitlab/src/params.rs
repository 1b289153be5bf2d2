//! Percent-encoding helpers and Rails-like request parameters (query string,
//! form body and JSON body merged into one map).

use serde_json::{Map, Value};

/// Decodes `%XX` escapes once (and `+` as a space when `plus_as_space`).
/// Invalid escapes are kept literally; invalid UTF-8 is replaced lossily.
pub(crate) fn percent_decode(input: &str, plus_as_space: bool) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => match decode_escape(bytes.get(i + 1..i + 3)) {
                Some(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                None => out.push(b'%'),
            },
            b'+' if plus_as_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The byte of a two-hex-digit escape, if `pair` is one.
fn decode_escape(pair: Option<&[u8]>) -> Option<u8> {
    let pair = pair?;
    let hi = char::from(*pair.first()?).to_digit(16)?;
    let lo = char::from(*pair.get(1)?).to_digit(16)?;
    u8::try_from(hi * 16 + lo).ok()
}

/// Percent-encodes everything except RFC 3986 unreserved characters.
pub(crate) fn percent_encode(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    for b in input.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Parses `application/x-www-form-urlencoded` text (also query strings) into
/// decoded `(key, value)` pairs, in order.
pub(crate) fn parse_form(input: &str) -> Vec<(String, String)> {
    input
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

/// What kind of body a request carries, judged by its `Content-Type`.
fn body_kind(content_type: Option<&str>) -> BodyKind {
    let mime = content_type
        .and_then(|ct| ct.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if mime == "application/json" || mime.ends_with("+json") {
        BodyKind::Json
    } else if mime == "application/x-www-form-urlencoded" {
        BodyKind::Form
    } else {
        BodyKind::Other
    }
}

enum BodyKind {
    Json,
    Form,
    Other,
}

/// Request parameters: query string, then the body on top (like Rails).
#[derive(Debug, Default)]
pub(crate) struct Params {
    map: Map<String, Value>,
}

impl Params {
    /// Merges the query string and the body. Returns the decoded query pairs
    /// too (for pagination links). A body that is not valid JSON (or not a
    /// JSON object) is an error message for a 400.
    pub(crate) fn from_request(
        query: Option<&str>,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<(Params, Vec<(String, String)>), String> {
        let query_pairs = parse_form(query.unwrap_or_default());
        let mut params = Params::default();
        params.merge_pairs(&query_pairs);
        match body_kind(content_type) {
            BodyKind::Json => params.merge_json(body)?,
            BodyKind::Form => params.merge_pairs(&parse_form(&String::from_utf8_lossy(body))),
            BodyKind::Other => {}
        }
        Ok((params, query_pairs))
    }

    /// Adds form pairs; `key[]` keys accumulate into an array.
    fn merge_pairs(&mut self, pairs: &[(String, String)]) {
        for (key, value) in pairs {
            let value = Value::String(value.clone());
            match key.strip_suffix("[]") {
                Some(base) => match self.map.get_mut(base) {
                    Some(Value::Array(items)) => items.push(value),
                    _ => {
                        self.map.insert(base.to_string(), Value::Array(vec![value]));
                    }
                },
                None => {
                    self.map.insert(key.clone(), value);
                }
            }
        }
    }

    /// Adds the top-level members of a JSON object body.
    fn merge_json(&mut self, body: &[u8]) -> Result<(), String> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(obj)) => {
                self.map.extend(obj);
                Ok(())
            }
            Ok(_) => Err("400 Bad request - The request body must be a JSON object".into()),
            Err(e) => Err(format!("400 Bad request - Invalid JSON: {e}")),
        }
    }

    /// The raw value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key)
    }

    /// Whether `key` was given at all.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// All parameters.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.map.iter()
    }

    /// `key` as text, if it is a scalar (string, number or boolean).
    pub(crate) fn str(&self, key: &str) -> Option<String> {
        self.map.get(key).and_then(scalar_text)
    }

    /// `key` as a boolean (`true`/`false`, `1`/`0`, `yes`/`no`, ...).
    pub(crate) fn bool(&self, key: &str) -> Option<bool> {
        self.map.get(key).and_then(as_bool)
    }

    /// `key` as a boolean, `false` when absent or unparsable.
    pub(crate) fn flag(&self, key: &str) -> bool {
        self.bool(key).unwrap_or(false)
    }

    /// `key` as a list: a JSON array, `key[]=..` pairs, or a comma-separated
    /// string. Items are trimmed and empty ones dropped.
    pub(crate) fn list(&self, key: &str) -> Option<Vec<String>> {
        let items: Vec<String> = match self.map.get(key)? {
            Value::Array(items) => items.iter().filter_map(scalar_text).collect(),
            Value::Null => Vec::new(),
            other => scalar_text(other)
                .map(|s| s.split(',').map(str::to_string).collect())
                .unwrap_or_default(),
        };
        Some(
            items
                .into_iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        )
    }
}

/// Text of a scalar JSON value.
pub(crate) fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A JSON value read as a boolean the way Grape coerces parameters.
pub(crate) fn as_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_i64().map(|n| n != 0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "t" | "1" | "yes" | "y" | "on" => Some(true),
            "false" | "f" | "0" | "no" | "n" | "off" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_once() {
        assert_eq!(percent_decode("acme%2Fbackend", false), "acme/backend");
        assert_eq!(percent_decode("a%252F", false), "a%2F");
        assert_eq!(percent_decode("a+b%zz%4", false), "a+b%zz%4");
        assert_eq!(percent_decode("a+b", true), "a b");
    }

    #[test]
    fn encode_reserved() {
        assert_eq!(percent_encode("labels[]"), "labels%5B%5D");
        assert_eq!(percent_encode("a b/é"), "a%20b%2F%C3%A9");
    }

    #[test]
    fn merges_query_form_and_arrays() {
        let (p, q) = Params::from_request(
            Some("labels[]=a&labels[]=b&x=1"),
            Some("application/x-www-form-urlencoded; charset=utf-8"),
            b"x=2&title=hello+world",
        )
        .unwrap();
        assert_eq!(p.list("labels").unwrap(), vec!["a", "b"]);
        assert_eq!(p.str("x").as_deref(), Some("2"));
        assert_eq!(p.str("title").as_deref(), Some("hello world"));
        assert_eq!(q.len(), 3);
    }

    #[test]
    fn json_body_and_comma_lists() {
        let (p, _) = Params::from_request(
            None,
            Some("application/json"),
            br#"{"add_labels":"a, b,,c","push_events":"false","n":3}"#,
        )
        .unwrap();
        assert_eq!(p.list("add_labels").unwrap(), vec!["a", "b", "c"]);
        assert_eq!(p.bool("push_events"), Some(false));
        assert_eq!(p.str("n").as_deref(), Some("3"));
        assert!(Params::from_request(None, Some("application/json"), b"{").is_err());
        assert!(Params::from_request(None, Some("application/json"), b"[1]").is_err());
    }
}
