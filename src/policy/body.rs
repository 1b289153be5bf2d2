//! Request bodies read as GitLab reads them: JSON objects and form encoding
//! become parameters, merged with the query.

use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};

use super::decision::Reason;
use crate::canonical::{Param, ParamSource, ParamValue, parse_query, printable};

/// The body encodings glgate can check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyKind {
    /// `application/json`
    Json,
    /// `application/x-www-form-urlencoded`
    Form,
}

/// Reads a `Content-Type` header value; `None` is refused on a non-empty body.
pub(crate) fn body_kind(content_type: Option<&str>) -> Result<BodyKind, Reason> {
    let Some(content_type) = content_type else {
        return Err(Reason::UnsupportedContentType {
            content_type: "(none)".to_owned(),
        });
    };
    let mut parts = content_type.split(';');
    let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let charset_ok = parts.all(|param| match param.split_once('=') {
        Some((key, value)) if key.trim().eq_ignore_ascii_case("charset") => {
            value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        }
        _ => false,
    });
    match media.as_str() {
        "application/json" if charset_ok => Ok(BodyKind::Json),
        "application/x-www-form-urlencoded" if charset_ok => Ok(BodyKind::Form),
        _ => Err(Reason::UnsupportedContentType {
            content_type: printable(content_type),
        }),
    }
}

/// Parses a body into parameters. An empty body has none, whatever its type.
pub fn parse_body(content_type: Option<&str>, body: &[u8]) -> Result<Vec<Param>, Reason> {
    if body.is_empty() {
        return Ok(Vec::new());
    }
    match body_kind(content_type)? {
        BodyKind::Json => parse_json(body),
        BodyKind::Form => {
            let text = std::str::from_utf8(body).map_err(|_| malformed("the form is not UTF-8"))?;
            parse_query(text, ParamSource::Body).map_err(|e| malformed(&e.to_string()))
        }
    }
}

fn malformed(detail: &str) -> Reason {
    Reason::MalformedBody {
        detail: detail.to_owned(),
    }
}

fn parse_json(body: &[u8]) -> Result<Vec<Param>, Reason> {
    let pairs = serde_json::from_slice::<JsonPairs>(body)
        .map_err(|e| malformed(&format!("invalid JSON object ({e})")))?;
    pairs
        .0
        .into_iter()
        .map(|(name, value)| {
            if name.contains(['[', ']']) || name.is_empty() || name.chars().any(char::is_control) {
                return Err(malformed(&format!(
                    "invalid parameter name '{}'",
                    printable(&name)
                )));
            }
            let value = json_value(&name, value)?;
            Ok(Param {
                name,
                value,
                source: ParamSource::Body,
            })
        })
        .collect()
}

fn json_value(name: &str, value: serde_json::Value) -> Result<ParamValue, Reason> {
    use serde_json::Value;
    let nested = || Reason::InvalidParam {
        name: printable(name),
        expected: "a scalar or a list of scalars (nested objects are not accepted)".to_owned(),
    };
    let scalar = |value: Value| -> Result<String, Reason> {
        let text = match value {
            Value::String(text) => text,
            Value::Number(number) => number.to_string(),
            Value::Bool(flag) => flag.to_string(),
            Value::Null | Value::Array(_) | Value::Object(_) => return Err(nested()),
        };
        crate::canonical::check_value_text(&text).map_err(|e| malformed(&e.to_string()))?;
        Ok(text)
    };
    match value {
        Value::Null => Ok(ParamValue::Null),
        Value::Array(items) => Ok(ParamValue::List(
            items.into_iter().map(scalar).collect::<Result<_, _>>()?,
        )),
        Value::Object(_) => Err(nested()),
        other => Ok(ParamValue::Scalar(scalar(other)?)),
    }
}

/// A JSON object's members in order, duplicates kept so that the merge step
/// refuses them (a JSON parser keeping only the last one would hide them).
struct JsonPairs(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for JsonPairs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PairsVisitor;
        impl<'de> Visitor<'de> for PairsVisitor {
            type Value = JsonPairs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonPairs, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry::<String, serde_json::Value>()? {
                    pairs.push(pair);
                }
                Ok(JsonPairs(pairs))
            }
        }
        deserializer.deserialize_map(PairsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_form() {
        let params = parse_body(
            Some("application/json; charset=utf-8"),
            br#"{"url":"https://x","push_events":true,"labels":["a","b"],"n":3}"#,
        )
        .unwrap();
        assert_eq!(params.len(), 4);
        assert_eq!(params[1].value, ParamValue::Scalar("true".into()));
        assert_eq!(
            params[2].value,
            ParamValue::List(vec!["a".into(), "b".into()])
        );
        let params = parse_body(
            Some("application/x-www-form-urlencoded"),
            b"name=echoes%2Fa&color=%23fff",
        )
        .unwrap();
        assert_eq!(params[0].value, ParamValue::Scalar("echoes/a".into()));
    }

    #[test]
    fn refusals() {
        assert!(matches!(
            parse_body(Some("multipart/form-data; boundary=x"), b"--x"),
            Err(Reason::UnsupportedContentType { .. })
        ));
        assert!(matches!(
            parse_body(None, b"a=b"),
            Err(Reason::UnsupportedContentType { .. })
        ));
        assert!(matches!(
            parse_body(Some("application/json; charset=latin1"), b"{}"),
            Err(Reason::UnsupportedContentType { .. })
        ));
        assert!(matches!(
            parse_body(Some("application/json"), b"[1]"),
            Err(Reason::MalformedBody { .. })
        ));
        assert!(matches!(
            parse_body(Some("application/json"), br#"{"a":{"b":1}}"#),
            Err(Reason::InvalidParam { .. })
        ));
        let dup = parse_body(Some("application/json"), br#"{"a":1,"a":2}"#).unwrap();
        assert_eq!(
            dup.len(),
            2,
            "duplicates are kept for the merge step to refuse"
        );
        assert!(parse_body(None, b"").unwrap().is_empty());
    }
}
