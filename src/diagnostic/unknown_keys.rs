//! Every unknown key of a YAML file, not only the first.
//!
//! The typed structs refuse unknown keys (`deny_unknown_fields`), but serde
//! stops at the first one, so an operator with two typos would fix one, run
//! again and only then learn of the second. When the typed read fails, the
//! file is read once more as an untyped tree that keeps where each key was
//! written, and walked beside the JSON Schema generated from the same types
//! (so the set of valid keys per section cannot drift from the code): each
//! key a closed section does not know becomes one located diagnostic.

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_saphyr::Spanned;

use super::{Diagnostic, Position, nearest};

/// Every key of `text` that `schema` does not allow where it is written, in
/// file order; empty when the text is not YAML (the parser's own error says why).
pub(super) fn find(file: &Path, text: &str, schema: &Value) -> Vec<Diagnostic> {
    let Ok(tree) = serde_saphyr::from_str::<Spanned<Node>>(text) else {
        return Vec::new();
    };
    let mut walk = Walk {
        file,
        root: schema,
        found: Vec::new(),
    };
    walk.node(&tree.value, schema, "");
    walk.found
        .sort_by_key(|d| (d.position.line, d.position.column));
    walk.found
}

/// A YAML node as written: only its shape and where its keys are.
enum Node {
    Mapping(Vec<(Spanned<Key>, Spanned<Node>)>),
    Sequence(Vec<Spanned<Node>>),
    Scalar,
}

/// A mapping key: its text when it is a scalar, `None` for a complex key
/// (a mapping or a list used as a key, which no glgate file uses).
struct Key(Option<String>);

struct Walk<'a> {
    file: &'a Path,
    root: &'a Value,
    found: Vec<Diagnostic>,
}

impl<'a> Walk<'a> {
    fn node(&mut self, node: &Node, schema: &'a Value, path: &str) {
        match node {
            Node::Mapping(entries) => {
                let Some(object) = self.object(schema) else {
                    return;
                };
                let properties = object.get("properties").and_then(Value::as_object);
                let additional = object.get("additionalProperties");
                for (key, value) in entries {
                    let Some(name) = &key.value.0 else { continue };
                    let child = join(path, name);
                    if let Some(known) = properties.and_then(|p| p.get(name)) {
                        self.node(&value.value, known, &child);
                    } else if let Some(any_key) = additional.filter(|a| a.is_object()) {
                        self.node(&value.value, any_key, &child);
                    } else if additional == Some(&Value::Bool(false)) {
                        let valid: Vec<&str> = properties
                            .map(|p| p.keys().map(String::as_str).collect())
                            .unwrap_or_default();
                        self.unknown(key, name, path, &valid);
                    }
                }
            }
            Node::Sequence(items) => {
                let Some(item) = self.items(schema) else {
                    return;
                };
                for (index, value) in items.iter().enumerate() {
                    self.node(&value.value, item, &format!("{path}[{index}]"));
                }
            }
            Node::Scalar => {}
        }
    }

    fn unknown(&mut self, key: &Spanned<Key>, name: &str, section: &str, valid: &[&str]) {
        let position = Position::of(key);
        let expected = if valid.is_empty() {
            "no key is allowed here".to_owned()
        } else {
            format!("expected one of {}", valid.join(", "))
        };
        let mut diagnostic = Diagnostic::new(
            self.file,
            position,
            section,
            format!("unknown field `{name}`, {expected}"),
        );
        if let Some(near) = nearest(name, valid.iter().copied()) {
            diagnostic = diagnostic.hint(format!("did you mean `{near}`?"));
        }
        self.found.push(diagnostic);
    }

    /// The schema of a mapping at `schema`: itself, what its `$ref` names, or
    /// the one object among its `anyOf`/`oneOf` alternatives (`Option<T>`).
    fn object(&self, schema: &'a Value) -> Option<&'a Value> {
        self.pick(schema, &|s| {
            s.get("properties").is_some() || s.get("additionalProperties").is_some()
        })
    }

    /// The schema of a list's items at `schema`, found the same way.
    fn items(&self, schema: &'a Value) -> Option<&'a Value> {
        self.pick(schema, &|s| s.get("items").is_some())
            .and_then(|s| s.get("items"))
    }

    fn pick(&self, schema: &'a Value, fits: &dyn Fn(&Value) -> bool) -> Option<&'a Value> {
        let schema = self.resolve(schema);
        if fits(schema) {
            return Some(schema);
        }
        let alternatives = schema
            .get("anyOf")
            .or_else(|| schema.get("oneOf"))
            .and_then(Value::as_array)?;
        let mut fitting = alternatives
            .iter()
            .map(|a| self.resolve(a))
            .filter(|a| fits(a));
        match (fitting.next(), fitting.next()) {
            (Some(one), None) => Some(one),
            // Several shapes could be meant: saying which key is unknown
            // would be a guess, and the typed read reports the mismatch.
            _ => None,
        }
    }

    /// Follows a local `$ref` (`#/$defs/Name`), as schemars writes them.
    fn resolve(&self, schema: &'a Value) -> &'a Value {
        let mut schema = schema;
        // A bound, so a schema whose references loop cannot hang the walk.
        for _ in 0..8 {
            let Some(reference) = schema.get("$ref").and_then(Value::as_str) else {
                break;
            };
            let Some(pointer) = reference.strip_prefix('#') else {
                break;
            };
            match self.root.pointer(pointer) {
                Some(target) => schema = target,
                None => break,
            }
        }
        schema
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Key>>()? {
            let value = map.next_value::<Spanned<Node>>()?;
            entries.push((key, value));
        }
        Ok(Node::Mapping(entries))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Sequence(items))
    }

    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }

    fn visit_newtype_struct<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Node, A::Error> {
        // A tagged value: its shape does not matter for key names.
        let (IgnoredAny, variant) = data.variant::<IgnoredAny>()?;
        de::VariantAccess::newtype_variant::<IgnoredAny>(variant)?;
        Ok(Node::Scalar)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_any(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(Key(Some(v.to_owned())))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Key, E> {
        Ok(Key(Some(v.to_string())))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Key, E> {
        Ok(Key(Some(v.to_string())))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Key, E> {
        Ok(Key(Some(v.to_string())))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Key, E> {
        Ok(Key(Some(v.to_string())))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Key, E> {
        Ok(Key(None))
    }
    fn visit_none<E: de::Error>(self) -> Result<Key, E> {
        Ok(Key(None))
    }
    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_any(KeyVisitor)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Key, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Key(None))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Key, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Key(None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        serde_json::json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "listen": {"type": "string"},
                "upstream": {"$ref": "#/$defs/Upstream"},
                "limits": {"anyOf": [{"$ref": "#/$defs/Limits"}, {"type": "null"}]},
                "clients": {"type": "array", "items": {"$ref": "#/$defs/Client"}},
                "params": {"type": "object", "additionalProperties": {"$ref": "#/$defs/Limits"}}
            },
            "$defs": {
                "Upstream": {"type": "object", "additionalProperties": false,
                             "properties": {"url": {}, "token_env": {}}},
                "Limits": {"type": "object", "additionalProperties": false,
                           "properties": {"max_body_bytes": {}, "max_header_bytes": {}}},
                "Client": {"type": "object", "additionalProperties": false,
                           "properties": {"name": {}, "policy": {}}}
            }
        })
    }

    fn found(text: &str) -> Vec<String> {
        find(Path::new("c.yaml"), text, &schema())
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn every_unknown_key_is_found_in_every_section() {
        let text = "listn: x\nupstrem:\n  url: u\nlimits:\n  max_body_byte: 1\nclients:\n  - name: a\n  - nmae: b\n    policy: p\nparams:\n  anything:\n    max_header_byte: 2\n";
        assert_eq!(
            found(text),
            [
                "c.yaml:1:1: unknown field `listn`, expected one of clients, limits, listen, params, upstream\n    hint: did you mean `listen`?",
                "c.yaml:2:1: unknown field `upstrem`, expected one of clients, limits, listen, params, upstream\n    hint: did you mean `upstream`?",
                "c.yaml:5:3: limits: unknown field `max_body_byte`, expected one of max_body_bytes, max_header_bytes\n    hint: did you mean `max_body_bytes`?",
                "c.yaml:8:5: clients[1]: unknown field `nmae`, expected one of name, policy\n    hint: did you mean `name`?",
                "c.yaml:12:5: params.anything: unknown field `max_header_byte`, expected one of max_body_bytes, max_header_bytes\n    hint: did you mean `max_header_bytes`?",
            ]
        );
    }

    #[test]
    fn known_keys_and_broken_yaml_find_nothing() {
        assert!(found("listen: x\nupstream: {url: u, token_env: T}\nlimits: ~\n").is_empty());
        assert!(found("listen: [x\n").is_empty());
    }
}
