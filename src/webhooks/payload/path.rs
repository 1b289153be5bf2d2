//! Field paths of a payload policy: their syntax, and removing or keeping
//! what they name in a parsed JSON payload.
//!
//! A path is dot-separated segments, each one of:
//!
//! | segment | names |
//! | --- | --- |
//! | `key` | the field `key` of an object (letters, digits, `_`, `-`) |
//! | `*` | every field of an object |
//! | `prefix*suffix` | the fields whose name matches, e.g. `*_email`, `user_*` |
//! | `**` | any depth: zero or more levels of objects and lists (at most once per path, never last) |
//!
//! and a segment may be followed by `[*]` (each element of a list), as in
//! `commits[*].author.email`. A field segment that meets a list applies to
//! each of its elements, so `commits.author.email` reaches the same fields:
//! a path written without `[*]` never silently misses a list (for `remove`,
//! that would leak what the operator meant to remove). `[*]` on something
//! that is not a list matches nothing. A path that matches nothing in a
//! given payload is fine: GitLab leaves out optional fields.

use std::collections::HashSet;

use serde_json::{Map, Value};

/// One segment of a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// A field, by exact name.
    Key(String),
    /// The fields whose name starts with `prefix` and ends with `suffix`
    /// (`*` alone: both empty, every field).
    Glob { prefix: String, suffix: String },
    /// Each element of a list (`[*]`).
    Each,
    /// Zero or more levels of objects and lists (`**`).
    Deep,
}

impl Step {
    fn matches_key(&self, key: &str) -> bool {
        match self {
            Step::Key(name) => name == key,
            Step::Glob { prefix, suffix } => {
                key.len() >= prefix.len() + suffix.len()
                    && key.starts_with(prefix.as_str())
                    && key.ends_with(suffix.as_str())
            }
            Step::Each | Step::Deep => false,
        }
    }
}

/// A checked field path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FieldPath {
    text: String,
    steps: Vec<Step>,
}

/// Why a path does not parse, and what would be valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PathError {
    /// What is wrong.
    pub(crate) message: String,
    /// What would be valid.
    pub(crate) hint: &'static str,
}

const SYNTAX_HINT: &str = "dot-separated field names, `*` for every field, `[*]` for each element \
     of a list, `**` for any depth, e.g. commits[*].author.email or **.email";

fn error(message: String) -> PathError {
    PathError {
        message,
        hint: SYNTAX_HINT,
    }
}

impl FieldPath {
    /// Parses one path as written in a policy.
    pub(crate) fn parse(text: &str) -> Result<FieldPath, PathError> {
        if text.trim().is_empty() {
            return Err(error("the path is empty".into()));
        }
        let mut steps = Vec::new();
        for segment in text.split('.') {
            let (name, mut rest) = match segment.find('[') {
                Some(at) => segment.split_at(at),
                None => (segment, ""),
            };
            match name {
                "" if segment.is_empty() => {
                    return Err(error(format!(
                        "'{text}' has an empty segment (a leading, trailing or doubled '.')"
                    )));
                }
                "" => {
                    return Err(error(format!(
                        "'{segment}' in '{text}': [*] follows a field name, as in labels[*]"
                    )));
                }
                "**" => {
                    if steps.contains(&Step::Deep) {
                        return Err(error(format!("'{text}' uses ** more than once")));
                    }
                    if !rest.is_empty() {
                        return Err(error(format!(
                            "'{segment}' in '{text}': ** already reaches into lists; write **.field"
                        )));
                    }
                    steps.push(Step::Deep);
                    continue;
                }
                _ => steps.push(parse_name(name, text)?),
            }
            while !rest.is_empty() {
                match rest.strip_prefix("[*]") {
                    Some(after) => {
                        steps.push(Step::Each);
                        rest = after;
                    }
                    None => {
                        return Err(error(format!(
                            "'{segment}' in '{text}': only [*] (each element) may follow a field; \
                             list indices such as [0] are not supported"
                        )));
                    }
                }
            }
        }
        if steps.last() == Some(&Step::Deep) {
            return Err(error(format!(
                "'{text}' ends with **: name the field to find at any depth, e.g. **.email"
            )));
        }
        Ok(FieldPath {
            text: text.to_owned(),
            steps,
        })
    }

    /// The path as written.
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// A path naming one top-level field (the kind's discriminator).
    pub(super) fn field(name: &str) -> FieldPath {
        FieldPath {
            text: name.to_owned(),
            steps: vec![Step::Key(name.to_owned())],
        }
    }

    /// Whether the path names anything in `value`.
    pub(crate) fn matches(&self, value: &Value) -> bool {
        let mut copy = value.clone();
        let mut removed = Removed::default();
        self.remove_from(&mut copy, &mut removed);
        !removed.paths.is_empty()
    }

    /// Removes what the path names from `value`, recording each concrete
    /// path removed (list indices written `[*]`).
    pub(super) fn remove_from(&self, value: &mut Value, removed: &mut Removed) {
        let mut at = String::new();
        remove_at(value, &self.steps, &mut at, removed);
    }
}

fn parse_name(name: &str, text: &str) -> Result<Step, PathError> {
    let valid = |part: &str| {
        part.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
    };
    match name.split_once('*') {
        None if valid(name) => Ok(Step::Key(name.to_owned())),
        Some((prefix, suffix)) if valid(prefix) && valid(suffix) && !suffix.contains('*') => {
            Ok(Step::Glob {
                prefix: prefix.to_owned(),
                suffix: suffix.to_owned(),
            })
        }
        _ => Err(error(format!(
            "'{name}' in '{text}' is not a field name (letters, digits, '_' and '-', with at \
             most one '*')"
        ))),
    }
}

/// The concrete paths removed from one payload, in the order met, each once.
#[derive(Debug, Default)]
pub(super) struct Removed {
    paths: Vec<String>,
    seen: HashSet<String>,
}

impl Removed {
    fn record(&mut self, path: &str) {
        if self.seen.insert(path.to_owned()) {
            self.paths.push(path.to_owned());
        }
    }

    fn mark(&self) -> usize {
        self.paths.len()
    }

    /// Forgets what was recorded since `mark` (a container removed whole
    /// is recorded instead of each of its fields).
    fn rollback(&mut self, mark: usize) {
        for path in self.paths.drain(mark..) {
            self.seen.remove(&path);
        }
    }

    /// The list, at most `limit` entries: past it, the last entry says how
    /// many more were removed.
    pub(super) fn into_list(mut self, limit: usize) -> Vec<String> {
        let limit = limit.max(1);
        if self.paths.len() > limit {
            let more = self.paths.len() - (limit - 1);
            self.paths.truncate(limit - 1);
            self.paths.push(format!("(and {more} more)"));
        }
        self.paths
    }
}

fn push_key(at: &mut String, key: &str) {
    if !at.is_empty() {
        at.push('.');
    }
    at.push_str(key);
}

fn remove_at(value: &mut Value, steps: &[Step], at: &mut String, removed: &mut Removed) {
    let Some((first, rest)) = steps.split_first() else {
        return;
    };
    let mark = at.len();
    match (first, value) {
        (Step::Deep, value) => {
            // Zero levels here, then one more level with `**` still first.
            remove_at(value, rest, at, removed);
            match value {
                Value::Object(map) => {
                    for (key, child) in map.iter_mut() {
                        push_key(at, key);
                        remove_at(child, steps, at, removed);
                        at.truncate(mark);
                    }
                }
                Value::Array(items) => {
                    at.push_str("[*]");
                    for item in items {
                        remove_at(item, steps, at, removed);
                    }
                    at.truncate(mark);
                }
                _ => {}
            }
        }
        (Step::Key(_) | Step::Glob { .. }, Value::Object(map)) => {
            let keys: Vec<String> = map
                .keys()
                .filter(|key| first.matches_key(key))
                .cloned()
                .collect();
            for key in keys {
                push_key(at, &key);
                if rest.is_empty() {
                    map.remove(&key);
                    removed.record(at);
                } else if let Some(child) = map.get_mut(&key) {
                    remove_at(child, rest, at, removed);
                }
                at.truncate(mark);
            }
        }
        // A field step meeting a list applies to each element.
        (Step::Key(_) | Step::Glob { .. }, Value::Array(items)) => {
            at.push_str("[*]");
            for item in items {
                remove_at(item, steps, at, removed);
            }
            at.truncate(mark);
        }
        (Step::Each, Value::Array(items)) => {
            at.push_str("[*]");
            if rest.is_empty() {
                if !items.is_empty() {
                    items.clear();
                    removed.record(at);
                }
            } else {
                for item in items {
                    remove_at(item, rest, at, removed);
                }
            }
            at.truncate(mark);
        }
        _ => {}
    }
}

/// Keeps only what `paths` name in `value` (whole subtrees), and the objects
/// and lists on the way to them; everything else is removed and recorded
/// at the highest level it was removed at.
pub(super) fn keep_only(value: Value, paths: &[FieldPath], removed: &mut Removed) -> Value {
    let continuations: Vec<&[Step]> = paths.iter().map(|p| p.steps.as_slice()).collect();
    let mut at = String::new();
    select(value, continuations, &mut at, removed).unwrap_or_else(|| Value::Object(Map::new()))
}

/// What survives of `value` given the remaining steps of every path that
/// reached it; `None` (recorded at `at`) when nothing does.
fn select(
    value: Value,
    mut continuations: Vec<&[Step]>,
    at: &mut String,
    removed: &mut Removed,
) -> Option<Value> {
    // `**` matches zero levels too: its rest applies here as well.
    let deep_rests: Vec<&[Step]> = continuations
        .iter()
        .filter_map(|c| match c.split_first() {
            Some((Step::Deep, rest)) => Some(rest),
            _ => None,
        })
        .collect();
    continuations.extend(deep_rests);
    if continuations.iter().any(|c| c.is_empty()) {
        return Some(value);
    }
    let mark = at.len();
    let since = removed.mark();
    let kept = match value {
        Value::Object(map) => {
            let mut kept = Map::new();
            for (key, child) in map {
                let next: Vec<&[Step]> = continuations
                    .iter()
                    .filter_map(|c| match c.split_first() {
                        Some((Step::Deep, _)) => Some(*c),
                        Some((step, rest)) if step.matches_key(&key) => Some(rest),
                        _ => None,
                    })
                    .collect();
                push_key(at, &key);
                if next.is_empty() {
                    removed.record(at);
                } else if let Some(child) = select(child, next, at, removed) {
                    kept.insert(key, child);
                }
                at.truncate(mark);
            }
            (!kept.is_empty()).then_some(Value::Object(kept))
        }
        Value::Array(items) => {
            let next: Vec<&[Step]> = continuations
                .iter()
                .filter_map(|c| match c.split_first() {
                    Some((Step::Each, rest)) => Some(rest),
                    // A field step (or `**`) meeting a list reaches into its elements.
                    Some(_) => Some(*c),
                    None => None,
                })
                .collect();
            at.push_str("[*]");
            let kept: Vec<Value> = items
                .into_iter()
                .filter_map(|item| select(item, next.clone(), at, removed))
                .collect();
            at.truncate(mark);
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        _ => None,
    };
    if kept.is_none() && !at.is_empty() {
        // Nothing survived inside: record the container itself, not each part.
        removed.rollback(since);
        removed.record(at);
    }
    kept
}
