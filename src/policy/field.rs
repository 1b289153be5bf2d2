//! Conditions on GitLab's own JSON objects: which existing resources a client
//! may touch (`owned_if`), and which list items it may see (`response_filter`).

use regex::Regex;

use super::params::compile_anchored;
use super::raw::RawFieldMatch;

/// A string field of a JSON object that must match a regex (whole value).
#[derive(Clone, Debug)]
pub(crate) struct FieldMatch {
    field: String,
    regex: Regex,
    source: String,
}

impl FieldMatch {
    /// Compiles a raw condition; the error says what is wrong.
    pub(crate) fn compile(raw: &RawFieldMatch) -> Result<FieldMatch, String> {
        if raw.field.is_empty() {
            return Err("'field' names a field of GitLab's JSON object, e.g. url".into());
        }
        Ok(FieldMatch {
            field: raw.field.clone(),
            regex: compile_anchored(&raw.pattern.value)?,
            source: raw.pattern.value.clone(),
        })
    }

    /// Whether `object` has the field as a string matching the pattern.
    /// Anything else (missing field, not a string, not an object) does not match.
    pub(crate) fn matches(&self, object: &serde_json::Value) -> bool {
        object
            .get(&self.field)
            .and_then(serde_json::Value::as_str)
            .is_some_and(|value| self.regex.is_match(value))
    }
}

/// Two conditions are equal when written the same (a compiled regex has no equality).
impl PartialEq for FieldMatch {
    fn eq(&self, other: &Self) -> bool {
        self.field == other.field && self.source == other.source
    }
}

impl Eq for FieldMatch {}

impl std::fmt::Display for FieldMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} matching /{}/", self.field, self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_only_string_fields() {
        let raw: RawFieldMatch =
            serde_saphyr::from_str("{field: url, pattern: 'https://a\\.example/.*'}").unwrap();
        let m = FieldMatch::compile(&raw).unwrap();
        assert!(m.matches(&serde_json::json!({"url": "https://a.example/x"})));
        assert!(!m.matches(&serde_json::json!({"url": "https://b.example/x"})));
        assert!(!m.matches(&serde_json::json!({"url": 1})));
        assert!(!m.matches(&serde_json::json!({})));
        assert!(!m.matches(&serde_json::json!([{"url": "https://a.example/x"}])));
    }
}
