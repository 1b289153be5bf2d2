//! Conditions on GitLab's own JSON objects: which existing resources a client
//! may touch (`owned_if`), which items of a set-valued field it may change
//! (`changes_only`), and which list items it may see (`response_filter`).

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

impl FieldMatch {
    /// The field (for `changes_only`, also the request parameter's name).
    pub(crate) fn field(&self) -> &str {
        &self.field
    }

    /// For `changes_only`: the items that setting the field to `new` would
    /// add to or remove from `object`'s current value and that do not match
    /// the pattern, sorted. GitLab sends the field as a JSON array of names
    /// (or a comma-separated string); a request sends a list or a
    /// comma-separated string, `null` or `""` for none.
    pub(crate) fn disallowed_changes(
        &self,
        object: &serde_json::Value,
        new: &[String],
    ) -> Vec<String> {
        let current: std::collections::BTreeSet<String> = match object.get(&self.field) {
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(|item| {
                    item.as_str()
                        .or_else(|| item.get("name").and_then(serde_json::Value::as_str))
                })
                .map(str::to_owned)
                .collect(),
            Some(serde_json::Value::String(text)) => split_names(text).collect(),
            _ => std::collections::BTreeSet::new(),
        };
        let new: std::collections::BTreeSet<String> =
            new.iter().flat_map(|value| split_names(value)).collect();
        current
            .symmetric_difference(&new)
            .filter(|item| !self.regex.is_match(item))
            .cloned()
            .collect()
    }
}

/// Names in a comma-separated list as GitLab reads them (each trimmed of
/// what Ruby's `strip` trims, never of Unicode spaces: `\u{a0}echoes/x` is
/// not an echoes/ label), empty ones left out.
fn split_names(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(',')
        .map(super::params::ruby_strip)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
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

    #[test]
    fn changes_outside_the_pattern_are_named() {
        let raw: RawFieldMatch =
            serde_saphyr::from_str("{field: labels, pattern: 'echoes/.+'}").unwrap();
        let m = FieldMatch::compile(&raw).unwrap();
        let object = serde_json::json!({"labels": ["bug", "echoes/intent: fix"]});
        let set = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        assert!(
            m.disallowed_changes(&object, &set(&["bug", "echoes/effort: S"]))
                .is_empty()
        );
        assert!(
            m.disallowed_changes(&object, &set(&["bug,echoes/intent: fix,echoes/x"]))
                .is_empty()
        );
        assert_eq!(
            m.disallowed_changes(&object, &set(&["echoes/intent: fix"])),
            ["bug"]
        );
        assert_eq!(
            m.disallowed_changes(&object, &set(&["bug", "team/x"])),
            ["echoes/intent: fix", "team/x"]
                .map(str::to_owned)
                .to_vec()
                .into_iter()
                .filter(|n| !n.starts_with("echoes/"))
                .collect::<Vec<_>>()
        );
        assert_eq!(m.disallowed_changes(&object, &[]), ["bug"]);
        // Read as GitLab reads it: a Unicode space is part of the name.
        assert_eq!(
            m.disallowed_changes(&object, &set(&["bug, echoes/intent: fix,\u{a0}echoes/x"])),
            ["\u{a0}echoes/x"]
        );
    }
}
