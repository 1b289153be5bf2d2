//! The scope filter's fast path: GitLab's answer checked without building it
//! whole.
//!
//! Building a `serde_json::Value` of a list of 20 merge requests (32 KiB)
//! costs about a million instructions (an allocation per string, a map per
//! object, all freed again), where the scope filter reads a handful of
//! fields per item. Here each list item stays a slice of GitLab's bytes, and
//! only the fields that tie an object to a project or group ([`TieFields`])
//! are read into a small value, which the full path's own functions
//! (`classify`, `nested_or_top_tie`, `observe`, `decide`) then judge: the
//! decision is the full path's, only the parsing is cheaper. What is relayed
//! is GitLab's bytes, the hidden items' slices left out.
//!
//! Whatever this path could read differently from the full path is handed
//! back to it ([`Shallow::FullParse`]): invalid JSON, an object with a key
//! twice (the full path keeps the last), a single object with nested lists
//! or objects to filter (a group's `projects`, a project's
//! `forked_from_project`).

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::Kind;
use super::filter::{classify, nested_or_top_tie, tie_kind};
use super::guard::{LookupCounts, ScopeGuard};
use super::resolve::ResolveError;

/// The outcome of the fast path.
#[derive(Debug, PartialEq)]
pub(crate) enum Shallow {
    /// Everything in the answer is in scope: GitLab's bytes go out as they are.
    Unchanged,
    /// List items outside the scope were removed: the rest, GitLab's bytes.
    Kept {
        /// The list without the hidden items.
        body: Vec<u8>,
        /// How many were removed.
        hidden: usize,
    },
    /// The answer is an object outside the scope.
    OutOfScope(Kind),
    /// Not for this path: the full path filters the built value.
    FullParse,
}

/// The fields of a JSON object that tie it to a project or group. Every
/// other field is skipped unread. A field present with `null` is kept as
/// `null` (the full path sees it so too); a field given twice is an error
/// (handed to the full path).
#[derive(Deserialize)]
struct TieFields {
    #[serde(default, deserialize_with = "present")]
    id: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    path_with_namespace: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    full_path: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    kind: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    project_id: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    group_id: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    project: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    group: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    group_full_path: Option<Value>,
    /// Nested lists and objects the full path filters inside a single
    /// object (`filter::NESTED_LISTS`, `filter::NESTED_OBJECTS`): only
    /// whether one is there is read.
    #[serde(default, deserialize_with = "seen")]
    projects: bool,
    #[serde(default, deserialize_with = "seen")]
    shared_projects: bool,
    #[serde(default, deserialize_with = "seen")]
    shared_with_groups: bool,
    #[serde(default, deserialize_with = "seen")]
    forked_from_project: bool,
}

/// A field that is there, whatever its value (`null` included).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// Whether a field is there; its value is skipped unread.
fn seen<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(deserializer).map(|_| true)
}

impl TieFields {
    /// Whether the object has nested lists or objects the full path filters.
    fn has_nested(&self) -> bool {
        self.projects || self.shared_projects || self.shared_with_groups || self.forked_from_project
    }

    /// The object reduced to its tie fields, as the full path would see them.
    fn into_value(self) -> Value {
        let mut map = Map::new();
        for (name, value) in [
            ("id", self.id),
            ("path_with_namespace", self.path_with_namespace),
            ("full_path", self.full_path),
            ("kind", self.kind),
            ("project_id", self.project_id),
            ("group_id", self.group_id),
            ("project", self.project),
            ("group", self.group),
            ("group_full_path", self.group_full_path),
        ] {
            if let Some(value) = value {
                map.insert(name.to_owned(), value);
            }
        }
        Value::Object(map)
    }
}

/// What the full path sees of one list item: an object reduced to its tie
/// fields; anything else is tied to nothing (`null` stands for it).
struct ItemTies(Value);

impl<'de> Deserialize<'de> for ItemTies {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ItemTies, D::Error> {
        deserializer.deserialize_any(ItemVisitor)
    }
}

struct ItemVisitor;

impl<'de> serde::de::Visitor<'de> for ItemVisitor {
    type Value = ItemTies;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<ItemTies, A::Error> {
        let fields = TieFields::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        Ok(ItemTies(fields.into_value()))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<ItemTies, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(ItemTies(Value::Null))
    }

    fn visit_bool<E>(self, _: bool) -> Result<ItemTies, E> {
        Ok(ItemTies(Value::Null))
    }

    fn visit_i64<E>(self, _: i64) -> Result<ItemTies, E> {
        Ok(ItemTies(Value::Null))
    }

    fn visit_u64<E>(self, _: u64) -> Result<ItemTies, E> {
        Ok(ItemTies(Value::Null))
    }

    fn visit_f64<E>(self, _: f64) -> Result<ItemTies, E> {
        Ok(ItemTies(Value::Null))
    }

    fn visit_str<E>(self, _: &str) -> Result<ItemTies, E> {
        Ok(ItemTies(Value::Null))
    }

    fn visit_unit<E>(self) -> Result<ItemTies, E> {
        Ok(ItemTies(Value::Null))
    }
}

/// One list item's ties, read alone (tests).
#[cfg(test)]
fn item_ties(raw: &str) -> Option<Value> {
    serde_json::from_str::<ItemTies>(raw)
        .ok()
        .map(|item| item.0)
}

impl ScopeGuard<'_> {
    /// Filters GitLab's JSON answer `body` as
    /// [`filter_answer`](ScopeGuard::filter_answer) would, without building
    /// it: see the module's documentation.
    pub(crate) async fn filter_shallow(
        &self,
        body: &[u8],
        counts: &mut LookupCounts,
    ) -> Result<Shallow, ResolveError> {
        let Ok(text) = std::str::from_utf8(body) else {
            return Ok(Shallow::FullParse);
        };
        match text
            .trim_start_matches([' ', '\t', '\n', '\r'])
            .as_bytes()
            .first()
        {
            Some(b'[') => self.filter_list(text, counts).await,
            Some(b'{') => self.filter_object(text, counts).await,
            _ => Ok(Shallow::FullParse),
        }
    }

    async fn filter_list(
        &self,
        text: &str,
        counts: &mut LookupCounts,
    ) -> Result<Shallow, ResolveError> {
        // One pass reads every item's ties; a second cuts the kept items'
        // bytes out, only when some are hidden.
        let Ok(items) = serde_json::from_str::<Vec<ItemTies>>(text) else {
            return Ok(Shallow::FullParse);
        };
        let mut ties = Vec::with_capacity(items.len());
        for ItemTies(value) in &items {
            let tie = nested_or_top_tie(value);
            self.observe(value, &tie);
            ties.push(tie);
        }
        let visible = self.decide(&ties, counts).await?;
        let hidden = visible.iter().filter(|visible| !**visible).count();
        if hidden == 0 {
            return Ok(Shallow::Unchanged);
        }
        let Ok(raw_items) = serde_json::from_str::<Vec<&RawValue>>(text) else {
            return Ok(Shallow::FullParse);
        };
        if raw_items.len() != visible.len() {
            return Ok(Shallow::FullParse);
        }
        let mut body = Vec::with_capacity(text.len());
        body.push(b'[');
        for (item, _) in raw_items
            .iter()
            .zip(&visible)
            .filter(|(_, visible)| **visible)
        {
            if body.len() > 1 {
                body.push(b',');
            }
            body.extend_from_slice(item.get().as_bytes());
        }
        body.push(b']');
        Ok(Shallow::Kept { body, hidden })
    }

    async fn filter_object(
        &self,
        text: &str,
        counts: &mut LookupCounts,
    ) -> Result<Shallow, ResolveError> {
        let Ok(fields) = serde_json::from_str::<TieFields>(text) else {
            return Ok(Shallow::FullParse);
        };
        if fields.has_nested() {
            return Ok(Shallow::FullParse);
        }
        let value = fields.into_value();
        let tie = classify(&value);
        self.observe(&value, &tie);
        let visible = self.decide(std::slice::from_ref(&tie), counts).await?;
        Ok(if visible[0] {
            Shallow::Unchanged
        } else {
            Shallow::OutOfScope(tie_kind(&tie))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The tie the full path reads from `object`, and the one read here.
    fn both(object: &Value) -> (super::super::filter::Tie, Option<super::super::filter::Tie>) {
        let text = object.to_string();
        (
            nested_or_top_tie(object),
            item_ties(&text).map(|value| nested_or_top_tie(&value)),
        )
    }

    #[test]
    fn the_tie_read_here_is_the_full_paths() {
        for object in [
            json!({"id": 1, "path_with_namespace": "Acme/Backend", "description": "x", "namespace": {"full_path": "other"}}),
            json!({"id": 10, "full_path": "acme", "parent_id": null}),
            json!({"id": 2, "kind": "user", "full_path": "alice"}),
            json!({"iid": 1, "project_id": 101, "title": "t", "labels": ["a"], "author": {"id": 3}}),
            json!({"iid": 1, "project_id": "101"}),
            json!({"iid": 1, "project_id": 101.0}),
            json!({"iid": 1, "project_id": -4}),
            json!({"iid": 1, "project_id": null, "group_id": 9}),
            json!({"id": 7, "project": {"id": 301, "path_with_namespace": "secret/vault"}}),
            json!({"id": 7, "project": {"id": 301}}),
            json!({"id": 7, "project": null, "group": {"id": 30, "full_path": "secret"}}),
            json!({"group_id": 30, "group_full_path": "secret"}),
            json!({"path_with_namespace": 5, "full_path": "acme"}),
            json!({"id": 2, "username": "alice"}),
            json!({}),
        ] {
            let (full, here) = both(&object);
            assert_eq!(Some(full), here, "{object}");
        }
    }

    #[test]
    fn what_could_be_read_differently_goes_to_the_full_path() {
        // A key given twice: the full path keeps the last one.
        assert_eq!(item_ties(r#"{"project_id": 1, "project_id": 2}"#), None);
        assert_eq!(item_ties(r#"{"project_id": 1"#), None);
        // Not an object: tied to nothing, unread.
        assert_eq!(item_ties("[1, 2]"), Some(Value::Null));
        assert_eq!(item_ties(r#""text""#), Some(Value::Null));
        let nested: TieFields =
            serde_json::from_str(r#"{"id": 1, "full_path": "acme", "projects": []}"#).unwrap();
        assert!(nested.has_nested());
        let forked: TieFields = serde_json::from_str(
            r#"{"id": 1, "path_with_namespace": "a/b", "forked_from_project": null}"#,
        )
        .unwrap();
        assert!(forked.has_nested());
    }

    #[test]
    fn escaped_field_names_and_values_are_read_as_the_full_path_reads_them() {
        let text = r#"{"path_with_\u006eamespace": "Acme\/Back\u0065nd", "id": 4}"#;
        let full: Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            item_ties(text).map(|value| classify(&value)),
            Some(classify(&full))
        );
    }
}
